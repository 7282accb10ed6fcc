import Foundation
import XCTest

/// The whole loop through the binary against a local-directory store.
final class BackupRestoreTests: XCTestCase {
    func testRoundTripWALDatabase() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let b = try CLI.run(["backup", "--json"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        let outcome = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        let key = try XCTUnwrap(outcome["key"] as? String)
        XCTAssertTrue(key.hasPrefix("backups/app.sqlite3-"), key)
        XCTAssertTrue(key.hasSuffix(".db.gz.enc"), key)

        let restored = s.url.appendingPathComponent("out/restored.db")
        let r = try CLI.run(["restore", "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let original = try sh("sqlite3 '\(f.database.path)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'")
        let copy = try sh("sqlite3 '\(restored.path)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'")
        XCTAssertEqual(original, copy)
        XCTAssertEqual(Scratch.files(in: f.tmp).filter { !$0.hasSuffix(".lock") }, [], "temp files left behind")
    }

    func testRoundTripRollbackJournalDatabase() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000, journalMode: "delete")
        XCTAssertEqual(try f.sql("PRAGMA journal_mode;"), "delete\n")
        let b = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        let restored = s.url.appendingPathComponent("restored.db")
        let r = try CLI.run(["restore", "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let query = "SELECT count(*), sum(qty), group_concat(name) FROM items"
        XCTAssertEqual(
            try sh("sqlite3 '\(restored.path)' '\(query)'"), try sh("sqlite3 '\(f.database.path)' '\(query)'"))
        XCTAssertEqual(
            try sh("sqlite3 '\(restored.path)' 'PRAGMA integrity_check; PRAGMA journal_mode'"), "ok\ndelete\n")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: f.database.path + "-wal"), "backup switched the source to WAL")
        try f.assertNothingLeft(rows: 1)
    }

    /// The row and the metadata are exactly the Laju format's (see laju-format.md).
    func testCatalogRowAndMetadataFollowTheFormat() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let b = try CLI.run(["backup", "--json"], env: f.env)
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertEqual(b.status, 0, b.output)
        let row = try f.sql(".mode line\nSELECT * FROM backup_files;")
        var cols: [String: String] = [:]
        for line in row.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            cols[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        let key = try XCTUnwrap(cols["key"])
        let object = f.objectPath(key)
        let uuid = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
        XCTAssertNotNil(
            key.range(
                of: "^backups/app\\.sqlite3-\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}-\(uuid)\\.db\\.gz\\.enc$",
                options: .regularExpression), key)
        XCTAssertNotNil(cols["id"]?.range(of: "^\(uuid)$", options: .regularExpression), cols["id"] ?? "")
        XCTAssertFalse(key.contains(cols["id"]!), "the row id is a fresh UUID, not the key's")
        XCTAssertEqual(cols["file_name"], String(key.split(separator: "/").last!))
        XCTAssertEqual(
            cols["file_size"], try sh("stat -c %s '\(object)'").trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(cols["compression"], "gzip")
        XCTAssertEqual(cols["encryption"], "aes-256-gcm")
        XCTAssertEqual(
            cols["checksum"], try sh("md5sum '\(object)' | cut -c1-32").trimmingCharacters(in: .whitespacesAndNewlines))
        let uploaded = try XCTUnwrap(Int64(cols["uploaded_at"] ?? ""))
        XCTAssertTrue((before...after).contains(uploaded), "uploaded_at \(uploaded) is not milliseconds of the run")
        XCTAssertEqual(cols["deleted_at"], "")
        XCTAssertEqual(cols["enc_iv"]?.count, 16)
        XCTAssertEqual(cols["enc_tag"]?.count, 24)
        let meta = try JSONDecoder().decode(
            [String: String].self, from: Data(contentsOf: URL(fileURLWithPath: object + ".meta.json")))
        XCTAssertEqual(meta["iv"], cols["enc_iv"])
        XCTAssertEqual(meta["tag"], cols["enc_tag"])
        XCTAssertEqual(meta["checksum"], cols["checksum"])
        XCTAssertEqual(meta["algo"], "aes-256-gcm")
        XCTAssertEqual(meta["comp"], "gzip")
        // Key material never reaches the output.
        XCTAssertFalse(b.output.contains(f.key))
    }

    func testVerifyGoodAndTampered() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let ok = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertTrue(ok.stderr.contains("verify ok"), ok.stderr)
        // The backup ran integrity_check on its snapshot and recorded it: verify proves that the
        // restored bytes are those, and `--check full` runs the check again all the same.
        XCTAssertTrue(
            ok.stderr.contains("integrity_mac: the restored bytes are the snapshot that passed integrity_check"),
            ok.stderr)
        let full = try CLI.run(["verify", "--check", "full"], env: f.env)
        XCTAssertEqual(full.status, 0, full.output)
        XCTAssertTrue(full.stderr.contains("integrity_check: ok"), full.stderr)
        try f.flipByte(try f.latestKey(), at: 200)
        let bad = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(bad.status, 4, bad.output)
        XCTAssertTrue(bad.stderr.contains("error: backup"), bad.stderr)
        try f.assertNothingLeft(rows: 1)
    }

    func testListJSONShapeAndNewestFirst() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 200)
        for _ in 0..<3 {
            XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
            usleep(5_000)  // distinct millisecond timestamps
        }
        let l = try CLI.run(["list", "--json"], env: f.env)
        XCTAssertEqual(l.status, 0, l.output)
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(l.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(list["version"] as? Int, 1, "the JSON contract's version")
        let rows = try XCTUnwrap(list["backups"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 3)
        let twelve: Set<String> = [
            "id", "key", "file_name", "file_size", "compression", "storage", "checksum",
            "uploaded_at", "deleted_at", "encryption", "enc_iv", "enc_tag"
        ]
        for row in rows { XCTAssertEqual(Set(row.keys), twelve, "\(row.keys.sorted())") }
        let times = rows.compactMap { ($0["uploaded_at"] as? NSNumber)?.int64Value }
        XCTAssertEqual(times.count, 3)
        XCTAssertEqual(times, times.sorted(by: >), "newest first")
        let keysNewestFirst = try f.sql("SELECT key FROM backup_files ORDER BY uploaded_at DESC;").split(
            separator: "\n"
        ).map(String.init)
        XCTAssertEqual(rows.compactMap { $0["key"] as? String }, keysNewestFirst)

        let human = try CLI.run(["list"], env: f.env)
        XCTAssertEqual(human.status, 0, human.output)
        let lines = human.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("UPLOADED") ?? false, human.stdout)
        XCTAssertTrue(lines[1].hasSuffix(keysNewestFirst[0]) && lines[3].hasSuffix(keysNewestFirst[2]), human.stdout)
    }

    /// Without --output: `backups/restored-<YYYY-MM-DDTHH:mm of uploaded_at>.db` under the working directory.
    func testDefaultRestoreTargetAndKeygen() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 100)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let ms = Int64(
            try f.sql("SELECT uploaded_at FROM backup_files;").trimmingCharacters(in: .whitespacesAndNewlines))!
        let stamp = try sh("TZ=UTC date -d @\(ms / 1000) +%Y-%m-%dT%H:%M").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let work = try s.sub("app")
        let r = try CLI.run(["restore"], env: f.env, cwd: work)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: work.appendingPathComponent("backups/restored-\(stamp).db").path),
            "\(Scratch.files(in: work))")

        let k = try CLI.run(["keygen"])
        XCTAssertEqual(k.status, 0, k.output)
        let text = k.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(Data(base64Encoded: text)?.count, 32, text)
        XCTAssertNotEqual(try CLI.run(["keygen"]).stdout, k.stdout)
    }
}
