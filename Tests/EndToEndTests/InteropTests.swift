import Foundation
import XCTest

/// The Laju format against independent implementations (Tests/tools): an object laju-backup stored
/// opens with a few lines of Python (pyca/cryptography + gzip) and with Node's built-in
/// crypto/zlib; an object made the way the original backup.ts makes it restores with laju-backup.
final class InteropTests: XCTestCase {
    static let tools = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools").path

    func testOurObjectOpensWithPythonAndNode() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 30000)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let key = try f.latestKey()
        let object = f.objectPath(key)
        let restored = s.url.appendingPathComponent("restored.db").path
        let r = try CLI.run(["restore", "--output", restored], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)

        // The .meta.json holds the original's five names with the original's encodings.
        let meta = try JSONDecoder().decode(
            [String: String].self, from: Data(contentsOf: URL(fileURLWithPath: object + ".meta.json")))
        XCTAssertEqual(meta["algo"], "aes-256-gcm")
        XCTAssertEqual(meta["comp"], "gzip")
        XCTAssertEqual(meta["iv"]?.count, 16)
        XCTAssertEqual(meta["tag"]?.count, 24)
        XCTAssertEqual(
            meta["checksum"], try sh("md5sum '\(object)' | cut -c1-32").trimmingCharacters(in: .whitespacesAndNewlines))

        let py = s.url.appendingPathComponent("python.db").path, node = s.url.appendingPathComponent("node.db").path
        try sh("python3 '\(Self.tools)/laju_envelope.py' open-meta '\(object)' '\(f.key)' > '\(py)'")
        try sh(
            "node '\(Self.tools)/laju_envelope.mjs' open '\(object)' '\(node)'", env: ["BACKUP_ENCRYPTION_KEY": f.key])
        try sh("cmp '\(restored)' '\(py)' && cmp '\(restored)' '\(node)'")
        XCTAssertEqual(try sh("sqlite3 '\(node)' 'SELECT count(*) FROM items'"), "30000\n")

        // And Node refuses the same object under another key (the check is real).
        let otherKey = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
        let refused = try sh(
            "node '\(Self.tools)/laju_envelope.mjs' open '\(object)' '\(s.path)/bad.db' 2>&1 && echo accepted || echo refused",
            env: ["BACKUP_ENCRYPTION_KEY": otherKey])
        // (Node's gunzip usually trips over the garbage before the tag is checked, as in restore.ts.)
        XCTAssertTrue(refused.hasSuffix("refused\n"), refused)
    }

    /// An object and row made like backup.ts (Node crypto/zlib, metadata names, ms timestamps,
    /// `storage = s3`) restores from the catalog, verifies, and restores by --key with no catalog.
    func testObjectMadeLikeTheOriginalRestores() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000)
        let out = try sh(
            "node '\(Self.tools)/laju_envelope.mjs' backup '\(f.database.path)' '\(f.store.path)' '\(f.database.path)'",
            env: ["BACKUP_ENCRYPTION_KEY": f.key])
        let made = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let key = try XCTUnwrap(made["key"] as? String)
        XCTAssertEqual(try f.rowCount(), 1)
        XCTAssertNil(
            try JSONDecoder().decode(
                [String: String].self, from: Data(contentsOf: URL(fileURLWithPath: f.objectPath(key) + ".meta.json")))[
                    "key-fingerprint"],
            "the original writes no fingerprint: the tag alone must carry the check")

        let expected = try sh("sqlite3 '\(f.database.path)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'")
        let fromCatalog = s.url.appendingPathComponent("from-catalog.db").path
        let r = try CLI.run(["restore", "--output", fromCatalog], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains(key), r.stderr)
        XCTAssertEqual(
            try sh("sqlite3 '\(fromCatalog)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'"), expected)
        XCTAssertEqual(try CLI.run(["verify"], env: f.env).status, 0)

        // The database (and so the catalog) is gone: --key reads IV and tag from the metadata.
        var noCatalog = f.env
        noCatalog["BACKUP_DATABASE"] = s.url.appendingPathComponent("gone/app.sqlite3").path
        let byKey = s.url.appendingPathComponent("by-key.db").path
        let k = try CLI.run(["restore", "--key", key, "--output", byKey], env: noCatalog)
        XCTAssertEqual(k.status, 0, k.output)
        XCTAssertTrue(k.stderr.contains("catalog not used"), k.stderr)
        XCTAssertEqual(
            try sh("sqlite3 '\(byKey)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'"), expected)
        try sh("cmp '\(fromCatalog)' '\(byKey)'")
        // Without --key the store itself is searched for the newest backup named for this
        // database (the original's objects carry no fingerprint or source id to refuse), and
        // restore says which one it picked.
        let none = try CLI.run(["restore", "--output", s.url.appendingPathComponent("none.db").path], env: noCatalog)
        XCTAssertEqual(none.status, 0, none.output)
        XCTAssertTrue(none.stderr.contains("restoring the newest backup of app.sqlite3 found in"), none.stderr)
        XCTAssertTrue(none.stderr.contains(key), none.stderr)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: s.url.appendingPathComponent("gone").path),
            "restore created the missing database's folder")
    }

    /// A row written by the original with a 64-hex key (hex wins over base64) restores with the
    /// same key text.
    func testHexKeyTextIsTheSameKeyForBoth() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s, rows: 500)
        let hexKey = try sh("head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'").trimmingCharacters(
            in: .whitespacesAndNewlines)
        XCTAssertEqual(hexKey.count, 64)
        f.env["BACKUP_ENCRYPTION_KEY"] = hexKey
        try sh(
            "node '\(Self.tools)/laju_envelope.mjs' backup '\(f.database.path)' '\(f.store.path)' '\(f.database.path)' > /dev/null",
            env: ["BACKUP_ENCRYPTION_KEY": hexKey])
        let r = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.output.contains(hexKey))
    }
}
