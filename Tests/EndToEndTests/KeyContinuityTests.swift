import Foundation
import XCTest

/// A changed key is caught when the backup runs, not on the day of a restore: a settings file that
/// sets the key twice is refused, a backup or a point under another key than the newest backup's
/// is refused naming both fingerprints until `--new-key`, and `status` is CRITICAL while the newest
/// backup would not open with the configured key. On the local store and on SeaweedFS.
final class KeyContinuityTests: XCTestCase {
    func testAChangedKeyIsCaughtAtBackupTimeLocal() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        try changedKey(env: f.env, scratch: s, objects: { Scratch.files(in: f.store).filter { $0.hasSuffix(".enc") } })
    }

    func testAChangedKeyIsCaughtAtBackupTimeS3() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s)
        try changedKey(env: f.env, scratch: s, objects: { try f.keys().filter { $0.hasSuffix(".enc") } })
    }

    func fingerprint(_ env: [String: String]) throws -> String {
        let c = try CLI.run(["config", "--json"], env: env)
        XCTAssertEqual(c.status, 0, c.output)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any])
        return try XCTUnwrap(o["key_fingerprint"] as? String, c.stdout)
    }

    func changedKey(env: [String: String], scratch s: Scratch, objects: () throws -> [String]) throws {
        XCTAssertEqual(try CLI.run(["backup"], env: env).status, 0)
        let old = try fingerprint(env)

        // A second key line appended to a settings file: refused, the value never printed.
        let key2 = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
        let file = s.url.appendingPathComponent("twice.env").path
        try "BACKUP_ENCRYPTION_KEY=\(env["BACKUP_ENCRYPTION_KEY"]!)\n# later\nBACKUP_ENCRYPTION_KEY=\(key2)\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        try sh("chmod 0600 '\(file)'")
        var fromFile = env
        fromFile.removeValue(forKey: "BACKUP_ENCRYPTION_KEY")
        let twice = try CLI.run(["backup", "--env-file", file], env: fromFile)
        XCTAssertEqual(twice.status, 2, twice.output)
        XCTAssertTrue(twice.stderr.contains("sets BACKUP_ENCRYPTION_KEY more than once (lines 1 and 3)"), twice.stderr)
        XCTAssertFalse(twice.output.contains(key2))
        XCTAssertEqual(try CLI.run(["config", "--env-file", file], env: fromFile).status, 2)

        // Another valid key: full backups and points are refused, status is CRITICAL.
        var changed = env
        changed["BACKUP_ENCRYPTION_KEY"] = key2
        let new = try fingerprint(changed)
        let before = try objects()
        let r = try CLI.run(["backup"], env: changed)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stderr.contains("fingerprint \(new)") && r.stderr.contains("fingerprint \(old)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--new-key"), r.stderr)
        XCTAssertEqual(try objects(), before, "a backup under the changed key was stored")
        let p = try CLI.run(["backup", "--incremental"], env: changed)
        XCTAssertEqual(p.status, 2, p.output)
        let st = try CLI.run(["status"], env: changed)
        XCTAssertEqual(st.status, 2, st.output)
        XCTAssertTrue(st.stdout.contains("CRITICAL") && st.stdout.contains("would not restore"), st.stdout)

        // On purpose: --new-key backs up and says so; from then on the new key is the one.
        let n = try CLI.run(["backup", "--new-key"], env: changed)
        XCTAssertEqual(n.status, 0, n.output)
        XCTAssertTrue(
            n.stderr.contains("the encryption key changed (fingerprint \(old) -> \(new), --new-key)"), n.stderr)
        XCTAssertEqual(try CLI.run(["backup"], env: changed).status, 0)
        XCTAssertEqual(try CLI.run(["backup", "--incremental"], env: changed).status, 0)
        XCTAssertEqual(try CLI.run(["status"], env: changed).status, 0)
        XCTAssertEqual(try CLI.run(["backup"], env: env).status, 2, "the old key is now the changed one")
    }

    /// A duration without a unit is refused: `--max-age 26` meant hours.
    func testDurationsNeedAUnit() throws {
        let f = try LocalFixture(scratch: try Scratch())
        for args in [["status", "--max-age", "26"], ["backup", "--if-older-than", "90"], ["clean", "--grace", "30"]] {
            let r = try CLI.run(args, env: f.env)
            XCTAssertNotEqual(r.status, 0, "\(args): \(r.output)")
            XCTAssertTrue(r.stderr.contains("has no unit"), "\(args): \(r.stderr)")
        }
    }
}
