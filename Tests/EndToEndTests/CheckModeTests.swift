import Foundation
import XCTest

/// `--check full|quick`: what each level of checking catches in a restored database. The object
/// is sealed by the independent Python implementation, so a database that SQLite itself would
/// never back up damaged can still be offered to restore.
final class CheckModeTests: XCTestCase {
    static let tools = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools").path

    /// Stores `database` in the fixture's local store under `key`, as the original script would.
    func plant(_ database: URL, key: String, in f: LocalFixture) throws {
        let object = f.store.appendingPathComponent(key)
        try FileManager.default.createDirectory(
            at: object.deletingLastPathComponent(), withIntermediateDirectories: true)
        let gz = f.scratch.url.appendingPathComponent("planted.gz")
        try sh("gzip -6 -c '\(database.path)' > '\(gz.path)'")
        let sealed = try sh("python3 '\(Self.tools)/laju_envelope.py' seal-gz '\(gz.path)' '\(object.path)' '\(f.key)'")
        let m = try JSONSerialization.jsonObject(with: Data(sealed.utf8)) as! [String: String]
        let meta = ["algo": "aes-256-gcm", "comp": "gzip", "iv": m["iv"]!, "tag": m["tag"]!, "checksum": m["checksum"]!]
        try JSONSerialization.data(withJSONObject: meta).write(to: URL(fileURLWithPath: object.path + ".meta.json"))
    }

    func testFullCheckCatchesAnIndexThatDisagreesWithItsTableQuickDoesNot() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        // Index `ti` holds entries for column b, but the schema now says it indexes column a:
        // page structure is sound, index content is wrong.
        let bad = s.url.appendingPathComponent("bad.sqlite3")
        try sh(
            """
            sqlite3 '\(bad.path)' <<'SQL'
            CREATE TABLE t (a INTEGER, b TEXT);
            CREATE INDEX ti ON t(b);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 500)
              INSERT INTO t SELECT i, 'v' || i FROM n;
            PRAGMA writable_schema = ON;
            UPDATE sqlite_master SET sql = 'CREATE INDEX ti ON t(a)' WHERE name = 'ti';
            SQL
            """)
        XCTAssertEqual(
            try sh("sqlite3 '\(bad.path)' 'PRAGMA quick_check'").trimmingCharacters(in: .whitespacesAndNewlines), "ok")
        XCTAssertNotEqual(
            try sh("sqlite3 '\(bad.path)' 'PRAGMA integrity_check'").trimmingCharacters(in: .whitespacesAndNewlines),
            "ok")
        let key = "backups/bad.sqlite3-2026-01-01T00:00-11111111-2222-4333-8444-555555555555.db.gz.enc"
        try plant(bad, key: key, in: f)

        let out = s.url.appendingPathComponent("restored.db")
        let full = try CLI.run(["restore", "--key", key, "--output", out.path], env: f.env)
        XCTAssertEqual(full.status, 4, full.output)
        XCTAssertTrue(full.stderr.contains("fails PRAGMA integrity_check"), full.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a database that failed the check appeared")
        XCTAssertEqual(Scratch.files(in: s.url).filter { $0.hasSuffix(".partial") }, [])

        let verify = try CLI.run(["verify", "--key", key], env: f.env)
        XCTAssertEqual(verify.status, 4, verify.output)

        let quick = try CLI.run(["restore", "--key", key, "--output", out.path, "--check", "quick"], env: f.env)
        XCTAssertEqual(quick.status, 0, quick.output)
        XCTAssertTrue(quick.stderr.contains("quick_check: ok"), quick.stderr)
    }

    func testBothChecksCatchADamagedPage() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000)
        let bad = s.url.appendingPathComponent("torn.sqlite3")
        try FileManager.default.copyItem(at: f.database, to: bad)
        try sh("sqlite3 '\(bad.path)' 'PRAGMA journal_mode=DELETE'")
        // Overwrite page 3 (inside the items table's b-tree) with garbage, keeping the header.
        try sh("dd if=/dev/urandom of='\(bad.path)' bs=4096 seek=2 count=1 conv=notrunc status=none")
        let key = "backups/torn.sqlite3-2026-01-01T00:00-aaaaaaaa-2222-4333-8444-555555555555.db.gz.enc"
        try plant(bad, key: key, in: f)
        for mode in ["full", "quick"] {
            let out = s.url.appendingPathComponent("restored-\(mode).db")
            let r = try CLI.run(["restore", "--key", key, "--output", out.path, "--check", mode], env: f.env)
            XCTAssertEqual(r.status, 4, "\(mode): \(r.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), mode)
        }
    }
}
