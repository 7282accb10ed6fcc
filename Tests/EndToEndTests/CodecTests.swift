import Foundation
import XCTest

/// BACKUP_COMPRESSION=gzip|zstd|xz end to end, and the full check at backup time that lets a
/// default restore prove sameness instead of checking again (`--check auto`).
final class CodecTests: XCTestCase {
    static let tools = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools").path

    func meta(_ f: LocalFixture, _ key: String) throws -> [String: String] {
        try JSONDecoder().decode(
            [String: String].self, from: Data(contentsOf: URL(fileURLWithPath: f.objectPath(key) + ".meta.json")))
    }

    /// Each codec: the key suffix, the row's `compression` and the metadata's `comp` name it; the
    /// object opens with Python's `cryptography` and the codec's own command-line tool into the
    /// same bytes laju-backup restores; every backup restores whatever BACKUP_COMPRESSION says now.
    func testEachCodecRoundTripsAndOpensWithIndependentTools() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 20000)
        var keys: [String: String] = [:]
        for (codec, suffix, tool) in [
            ("gzip", ".db.gz.enc", "gzip -dc"), ("zstd", ".db.zst.enc", "zstd -q -dc"), ("xz", ".db.xz.enc", "xz -dc")
        ] {
            let b = try CLI.run(["backup", "--compression", codec], env: f.env)
            XCTAssertEqual(b.status, 0, b.output)
            let key = try f.latestKey()
            keys[codec] = key
            XCTAssertTrue(key.hasSuffix(suffix), key)
            XCTAssertEqual(try f.sql("SELECT compression FROM backup_files WHERE key = '\(key)';"), "\(codec)\n")
            let m = try meta(f, key)
            XCTAssertEqual(m["comp"], codec)
            XCTAssertEqual(m["algo"], "aes-256-gcm")
            XCTAssertEqual(m["integrity-mac"]?.count, 64, "the full check ran at backup time and is recorded")
            XCTAssertTrue(b.stderr.contains("integrity_check: snapshot ok"), b.stderr)

            let restored = s.url.appendingPathComponent("restored-\(codec).db").path
            let r = try CLI.run(
                ["restore", "--key", key, "--output", restored],
                env: f.env.merging(["BACKUP_COMPRESSION": "gzip"]) { $1 })
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(
                r.stderr.contains("integrity_mac: the restored bytes are the snapshot that passed integrity_check"),
                r.stderr)
            let independent = s.url.appendingPathComponent("independent-\(codec).db").path
            try sh(
                "python3 '\(Self.tools)/laju_envelope.py' open-raw '\(f.objectPath(key))' '\(f.key)' '\(m["iv"]!)' '\(m["tag"]!)' | \(tool) > '\(independent)'"
            )
            try sh("cmp '\(restored)' '\(independent)'")
            XCTAssertEqual(
                try sh("md5sum < '\(f.objectPath(key))' | cut -c1-32").trimmingCharacters(in: .whitespacesAndNewlines),
                m["checksum"])
            XCTAssertEqual(try sh("sqlite3 '\(restored)' 'SELECT count(*) FROM items'"), "20000\n")
        }
        // zstd and xz make smaller objects than gzip on this data; the level setting is read.
        let size = { (k: String) in try FileManager.default.attributesOfItem(atPath: f.objectPath(k))[.size] as! Int }
        XCTAssertLessThan(try size(keys["zstd"]!), try size(keys["gzip"]!))
        let hi = try CLI.run(["backup", "--compression", "zstd", "--level", "19"], env: f.env)
        XCTAssertEqual(hi.status, 0, hi.output)
        XCTAssertTrue(hi.stderr.contains("zstd -19"), hi.stderr)
        XCTAssertLessThan(try size(try f.latestKey()), try size(keys["zstd"]!))
        // verify reads all three by default; a level outside the codec's range is a usage error.
        for key in keys.values { XCTAssertEqual(try CLI.run(["verify", "--key", key], env: f.env).status, 0) }
        XCTAssertEqual(try CLI.run(["backup", "--compression", "gzip", "--level", "12"], env: f.env).status, 2)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env.merging(["BACKUP_COMPRESSION": "brotli"]) { $1 }).status, 2)
    }

    /// `catalog sync` records what the object is: a zstd or xz backup it adopts gets a row that
    /// names its codec, so that restoring it from the catalog works (a row saying gzip would be
    /// refused as disagreeing with the object's metadata).
    func testCatalogSyncRecordsTheObjectsCodec() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 2000)
        for codec in ["zstd", "xz"] {
            XCTAssertEqual(try CLI.run(["backup", "--compression", codec], env: f.env).status, 0)
            let key = try f.latestKey()
            _ = try f.sql("DELETE FROM backup_files WHERE key = '\(key)';")
            let sync = try CLI.run(["catalog", "sync"], env: f.env)
            XCTAssertEqual(sync.status, 0, sync.output)
            XCTAssertEqual(try f.sql("SELECT compression FROM backup_files WHERE key = '\(key)';"), "\(codec)\n")
            let restored = s.url.appendingPathComponent("restored-\(codec).db").path
            let r = try CLI.run(["restore", "--output", restored], env: f.env)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.stderr.contains(key), r.stderr)
        }
    }

    /// A zstd or xz stream that is truncated or corrupted inside an authentic envelope (sealed
    /// by the independent Python implementation, so that the tag verifies): exit 4, no output file.
    func testBrokenStreamInAuthenticEnvelopeIsRefused() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 20000)
        for (codec, suffix, tool) in [("zstd", ".db.zst.enc", "zstd -q -3 -c"), ("xz", ".db.xz.enc", "xz -3 -c")] {
            let stream = s.url.appendingPathComponent("good.\(codec)").path
            try sh("\(tool) '\(f.database.path)' > '\(stream)'")
            let size = try FileManager.default.attributesOfItem(atPath: stream)[.size] as! Int
            for (shape, make) in [
                ("truncated", "head -c \(size * 2 / 3) '\(stream)'"),
                (
                    "corrupted",
                    "python3 -c \"import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[len(b) // 2] ^= 0x55; sys.stdout.buffer.write(b)\" '\(stream)'"
                )
            ] {
                let label = "\(codec) \(shape)"
                let key = "backups/app.sqlite3-2026-01-01T00:00-\(UUID().uuidString.lowercased())\(suffix)"
                let object = f.objectPath(key)
                try FileManager.default.createDirectory(
                    atPath: (object as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let broken = s.url.appendingPathComponent("broken").path
                try sh("\(make) > '\(broken)'")
                let sealed = try sh(
                    "python3 '\(Self.tools)/laju_envelope.py' seal-gz '\(broken)' '\(object)' '\(f.key)'")
                var m = try JSONSerialization.jsonObject(with: Data(sealed.utf8)) as! [String: String]
                m["algo"] = "aes-256-gcm"
                m["comp"] = codec
                try JSONSerialization.data(withJSONObject: m).write(to: URL(fileURLWithPath: object + ".meta.json"))

                let out = s.url.appendingPathComponent("out-\(codec)-\(shape).db")
                let r = try CLI.run(["restore", "--key", key, "--output", out.path], env: f.env)
                XCTAssertEqual(r.status, 4, "\(label): \(r.output)")
                XCTAssertTrue(r.stderr.contains("is damaged") && r.stderr.contains(codec), "\(label): \(r.stderr)")
                XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), label)
                XCTAssertEqual(Scratch.files(in: s.url).filter { $0.contains(".partial") }, [], label)
                XCTAssertEqual(try CLI.run(["verify", "--key", key], env: f.env).status, 4, label)
                // The same object named as gzip is refused too: never passed through as it is.
                try f.editMeta(key) { $0["comp"] = "gzip" }
                XCTAssertEqual(
                    try CLI.run(["restore", "--key", key, "--output", out.path], env: f.env).status, 4, label)
                XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), label)
            }
        }
    }

    /// An index that disagrees with its table passes quick_check but not integrity_check: with the
    /// full check at backup time (the default) such a database is not stored (exit 3); with
    /// BACKUP_CHECK=quick it is, no MAC is recorded, and the default restore then runs the full
    /// check itself and refuses it.
    func testFullCheckAtBackupTimeKeepsADamagedDatabaseOut() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s, rows: 500)
        try f.sql(
            """
            CREATE TABLE t (a INTEGER, b TEXT);
            CREATE INDEX ti ON t(b);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 500)
              INSERT INTO t SELECT i, 'v' || i FROM n;
            PRAGMA writable_schema = ON;
            UPDATE sqlite_master SET sql = 'CREATE INDEX ti ON t(a)' WHERE name = 'ti';
            """)
        XCTAssertEqual(try f.sql("PRAGMA quick_check;"), "ok\n")
        for codec in ["gzip", "zstd"] {
            let r = try CLI.run(["backup", "--compression", codec], env: f.env)
            XCTAssertEqual(r.status, 3, r.output)
            XCTAssertTrue(r.stderr.contains("PRAGMA integrity_check on its snapshot says"), r.stderr)
            XCTAssertTrue(r.stderr.contains("nothing was stored"), r.stderr)
            try f.assertNothingLeft(rows: 0)
        }
        f.env["BACKUP_CHECK"] = "quick"
        let q = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(q.status, 0, q.output)
        XCTAssertTrue(q.stderr.contains("quick_check: snapshot ok"), q.stderr)
        XCTAssertNil(try meta(f, try f.latestKey())["integrity-mac"])
        let out = s.url.appendingPathComponent("restored.db")
        let restore = try CLI.run(["restore", "--output", out.path], env: f.env)
        XCTAssertEqual(restore.status, 4, restore.output)
        XCTAssertTrue(restore.stderr.contains("fails PRAGMA integrity_check"), restore.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        let quick = try CLI.run(["restore", "--check", "quick", "--output", out.path], env: f.env)
        XCTAssertEqual(quick.status, 0, quick.output)
    }

    /// The recorded MAC decides whether the full check runs again; it is checked at every level,
    /// and a forged or damaged one (the key is needed to make a valid one) stops the restore.
    func testTheIntegrityMACDecidesAndCannotBeForged() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 3000)
        XCTAssertEqual(try CLI.run(["backup", "--compression", "zstd"], env: f.env).status, 0)
        let key = try f.latestKey()
        let out = s.url.appendingPathComponent("r.db")
        let auto = try CLI.run(["restore", "--output", out.path, "--json"], env: f.env)
        XCTAssertEqual(auto.status, 0, auto.output)
        XCTAssertFalse(auto.stderr.contains("integrity_check: ok"), auto.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(auto.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["check"] as? String, "integrity_mac")
        XCTAssertEqual(json["compression"] as? String, "zstd")
        try FileManager.default.removeItem(at: out)
        let full = try CLI.run(["restore", "--output", out.path, "--check", "full"], env: f.env)
        XCTAssertEqual(full.status, 0, full.output)
        XCTAssertTrue(full.stderr.contains("integrity_check: ok"), full.stderr)
        try FileManager.default.removeItem(at: out)

        // Another well-formed MAC (as anyone without the key could write): refused at every level.
        let original = try meta(f, key)["integrity-mac"]!
        try f.editMeta(key) { $0["integrity-mac"] = String(repeating: "ab", count: 32) }
        for level in ["auto", "full", "quick"] {
            let r = try CLI.run(["restore", "--output", out.path, "--check", level], env: f.env)
            XCTAssertEqual(r.status, 4, "\(level): \(r.output)")
            XCTAssertTrue(r.stderr.contains("integrity-mac differs"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
        // Malformed: the metadata is not used (the catalog row has IV and tag), so nothing vouches
        // for the bytes and the full check runs. Absent, as in backups of the original and of older
        // versions: the same.
        try f.editMeta(key) { $0["integrity-mac"] = "not hex" }
        let malformed = try CLI.run(["restore", "--output", out.path], env: f.env)
        XCTAssertEqual(malformed.status, 0, malformed.output)
        XCTAssertTrue(
            malformed.stderr.contains("not used") && malformed.stderr.contains("integrity_check: ok"), malformed.stderr)
        try FileManager.default.removeItem(at: out)
        try f.editMeta(key) { $0["integrity-mac"] = nil }
        let none = try CLI.run(["restore", "--output", out.path], env: f.env)
        XCTAssertEqual(none.status, 0, none.output)
        XCTAssertTrue(none.stderr.contains("integrity_check: ok"), none.stderr)
        XCTAssertFalse(original.isEmpty)
    }
}
