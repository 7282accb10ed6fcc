import Foundation
import TestSupport
import XCTest

/// Issue 13 against SeaweedFS: objects written with S3 Object Lock survive `clean` and a direct
/// delete until their lock expires, then `clean` removes every version and delete marker; a bucket
/// without Object Lock is refused before anything is uploaded; backups hidden behind delete
/// markers are still restored; least-privilege credentials (write-only, read-only) do their part
/// and are refused clearly beyond it.
final class ObjectLockTests: XCTestCase {
    func lockedFixture(_ s: Scratch) throws -> S3Fixture {
        var f = try S3Fixture(scratch: s, rows: 300, objectLock: true)
        f.env["BACKUP_OBJECT_LOCK_MODE"] = "GOVERNANCE"
        f.env["BACKUP_OBJECT_LOCK_DAYS"] = "1"
        return f
    }

    /// Versions and delete markers of `key` (awscli's view).
    func versions(_ f: S3Fixture, _ key: String) throws -> (versions: [[String: Any]], markers: [[String: Any]]) {
        let out = try f.aws("s3api list-object-versions --bucket \(f.bucket) --prefix '\(key)' --output json")
        let obj =
            (try JSONSerialization.jsonObject(with: Data((out.isEmpty ? "{}" : out).utf8)) as? [String: Any]) ?? [:]
        let v = (obj["Versions"] as? [[String: Any]] ?? []).filter { $0["Key"] as? String == key }
        let m = (obj["DeleteMarkers"] as? [[String: Any]] ?? []).filter { $0["Key"] as? String == key }
        return (v, m)
    }

    func age(_ f: S3Fixture, key: String, days: Int) throws {
        let ms = Int64(Date().timeIntervalSince1970 * 1000) - Int64(days) * 86_400_000
        try sh("sqlite3 '\(f.database.path)' \"UPDATE backup_files SET uploaded_at = \(ms) WHERE key = '\(key)'\"")
    }

    func testLockedBackupsSurviveCleanAndDirectDeleteUntilTheLockExpires() throws {
        let s = try Scratch()
        let f = try lockedFixture(s)
        let old = try f.backup()
        let newest = try f.backup()

        // The object carries the lock, about BACKUP_OBJECT_LOCK_DAYS from now.
        let head =
            try JSONSerialization.jsonObject(
                with: Data(try f.aws("s3api head-object --bucket \(f.bucket) --key '\(old)' --output json").utf8))
            as? [String: Any]
        XCTAssertEqual(head?["ObjectLockMode"] as? String, "GOVERNANCE", "\(head ?? [:])")
        let until = try XCTUnwrap(head?["ObjectLockRetainUntilDate"] as? String)
        let untilDate = try XCTUnwrap(ISO8601DateFormatter().date(from: String(until.prefix(19)) + "Z"), until)
        XCTAssertEqual(untilDate.timeIntervalSinceNow, 86_400, accuracy: 600)

        // An intruder with the bucket's credentials cannot destroy the version.
        let versionID = try XCTUnwrap(try versions(f, old).versions.first?["VersionId"] as? String)
        let refused = try sh(
            "aws --endpoint-url \(f.s3.endpoint) s3api delete-object --bucket \(f.bucket) --key '\(old)' --version-id '\(versionID)' 2>&1 || echo REFUSED",
            env: f.s3.awsEnv())
        XCTAssertTrue(refused.contains("REFUSED") && refused.contains("AccessDenied"), refused)
        XCTAssertEqual(try versions(f, old).versions.count, 1)

        // clean wants it gone (older than the retention), finds it locked: kept, reported, ok.
        try age(f, key: old, days: 40)
        let c1 = try CLI.run(["clean", "--json"], env: f.env)
        XCTAssertEqual(c1.status, 0, c1.output)
        XCTAssertTrue(c1.stderr.contains("\(old) is locked until"), c1.stderr)
        XCTAssertTrue(c1.stderr.contains("1 still locked"), c1.stderr)
        let o1 = try JSONSerialization.jsonObject(with: Data(c1.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((o1?["locked"] as? [[String: Any]])?.first?["key"] as? String, old, c1.stdout)
        XCTAssertEqual(
            try sh("sqlite3 '\(f.database.path)' \"SELECT deleted_at IS NULL FROM backup_files WHERE key = '\(old)'\"")
                .trimmingCharacters(in: .newlines), "1", "a locked object's row was marked deleted")
        XCTAssertEqual(try versions(f, old).versions.count, 1)
        XCTAssertEqual(try versions(f, old).markers.count, 0, "clean left a delete marker on a locked object")

        // The lock expires (shortened by the bucket's owner, as GOVERNANCE allows): the next
        // clean removes the version itself, and nothing of the object is left.
        let soon = ISO8601DateFormatter().string(from: Date().addingTimeInterval(2))
        try f.aws(
            "s3api put-object-retention --bucket \(f.bucket) --key '\(old)' --version-id '\(versionID)' --bypass-governance-retention --retention 'Mode=GOVERNANCE,RetainUntilDate=\(soon)'"
        )
        sleep(3)
        let c2 = try CLI.run(["clean"], env: f.env)
        XCTAssertEqual(c2.status, 0, c2.output)
        XCTAssertTrue(c2.stderr.contains("clean ok: deleted 1"), c2.stderr)
        let left = try versions(f, old)
        XCTAssertEqual(left.versions.count + left.markers.count, 0, "left in the bucket: \(left)")
        XCTAssertEqual(
            try sh(
                "sqlite3 '\(f.database.path)' \"SELECT deleted_at IS NOT NULL FROM backup_files WHERE key = '\(old)'\""
            ).trimmingCharacters(in: .newlines), "1")
        XCTAssertEqual(try versions(f, newest).versions.count, 1, "the newest backup was touched")
    }

    /// Restore points under Object Lock: packs and manifests carry the lock, an intruder cannot
    /// delete them, `clean --points` keeps and reports the locked ones (exit 0) together with every
    /// pack they name, and every point still restores.
    func testRestorePointsUnderObjectLock() throws {
        let s = try Scratch()
        let f = try lockedFixture(s)
        func point() throws {
            let r = try CLI.run(["backup", "--incremental"], env: f.env)
            XCTAssertEqual(r.status, 0, r.output)
        }
        try point()
        try sh("sqlite3 '\(f.database.path)' \"INSERT INTO items(name, qty) VALUES ('a', 1);\"")
        try point()
        // A new chain (page size changed): the two points above are no longer needed by the newest.
        try sh("sqlite3 '\(f.database.path)' 'PRAGMA journal_mode=DELETE; PRAGMA page_size=8192; VACUUM;'")
        try point()
        let keys = try f.keys().filter { $0.contains("/incremental/") }
        let manifests = keys.filter { $0.contains("/points/") }, packs = keys.filter { $0.contains("/packs/") }
        XCTAssertEqual(manifests.count, 3, "\(keys)")
        for k in [manifests[0], packs[0]] {
            let head =
                try JSONSerialization.jsonObject(
                    with: Data(try f.aws("s3api head-object --bucket \(f.bucket) --key '\(k)' --output json").utf8))
                as? [String: Any]
            XCTAssertEqual(head?["ObjectLockMode"] as? String, "GOVERNANCE", "\(k): \(head ?? [:])")
            let versionID = try XCTUnwrap(try versions(f, k).versions.first?["VersionId"] as? String)
            let refused = try sh(
                "aws --endpoint-url \(f.s3.endpoint) s3api delete-object --bucket \(f.bucket) --key '\(k)' --version-id '\(versionID)' 2>&1 || echo REFUSED",
                env: f.s3.awsEnv())
            XCTAssertTrue(refused.contains("REFUSED"), refused)
        }

        let c = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0", "--json"], env: f.env)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertTrue(c.stderr.contains("is locked until"), c.stderr)
        XCTAssertTrue(c.stderr.contains("still locked by S3 Object Lock"), c.stderr)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((o["locked"] as? [String])?.filter { $0.contains("/points/") }.count, 2, c.stdout)
        XCTAssertEqual((o["failures"] as? [String])?.count, 0, c.stdout)
        // Nothing that a locked point needs is gone: every point still restores.
        XCTAssertEqual(try f.keys().filter { $0.contains("/incremental/") }.sorted(), keys.sorted())
        let listed =
            try JSONSerialization.jsonObject(
                with: Data(try CLI.run(["list", "--points", "--json"], env: f.env).stdout.utf8)) as? [String: Any]
        let times = (listed?["points"] as? [[String: Any]] ?? []).compactMap { $0["time"] as? String }
        XCTAssertEqual(times.count, 3)
        for t in times {
            let v = try CLI.run(["verify", "--at", t], env: f.env)
            XCTAssertEqual(v.status, 0, "\(t): \(v.output)")
        }
    }

    func testBucketWithoutObjectLockIsRefusedBeforeUploading() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s, rows: 100)
        f.env["BACKUP_OBJECT_LOCK_MODE"] = "COMPLIANCE"
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(
            r.stderr.contains("cannot lock objects: it has no Object Lock configuration; nothing was uploaded"),
            r.stderr)
        XCTAssertTrue(r.stderr.contains("--object-lock-enabled-for-bucket"), r.stderr)
        XCTAssertEqual(try f.keys(), [])
        XCTAssertEqual(try f.rowCount(), 0)
        XCTAssertEqual(f.tempFiles(), [])
        // A mode that is not one.
        f.env["BACKUP_OBJECT_LOCK_MODE"] = "forever"
        let bad = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.stderr.contains("GOVERNANCE or COMPLIANCE"), bad.stderr)
    }

    /// An intruder hides every backup behind a delete marker (a plain DeleteObject on a
    /// versioned bucket). list --remote shows them; restore from the catalog, restore --key and
    /// the disaster restore (no database, no catalog) bring the database back.
    func testBackupsHiddenBehindDeleteMarkersAreStillRestored() throws {
        let s = try Scratch()
        let f = try lockedFixture(s)
        let first = try f.backup()
        try sh("sqlite3 '\(f.database.path)' 'UPDATE items SET qty = qty + 1'")
        // Without a catalog, "newest" is the store's Last-Modified, which has one-second resolution.
        sleep(1)
        let second = try f.backup()
        let expected = try S3Fixture.content(f.database)
        for key in [first, second] {
            try f.aws("s3api delete-object --bucket \(f.bucket) --key '\(key)'")
            XCTAssertEqual(try versions(f, key).markers.count, 1)
        }
        XCTAssertEqual(try f.keys(), [], "the delete markers do not hide the objects")

        let l = try CLI.run(["list", "--remote", "--json"], env: f.env)
        XCTAssertEqual(l.status, 0, l.output)
        let listed =
            (try JSONSerialization.jsonObject(with: Data(l.stdout.utf8)) as? [String: Any])?["objects"]
            as? [[String: Any]] ?? []
        XCTAssertEqual(
            Set(listed.filter { $0["hidden"] as? Bool == true }.compactMap { $0["key"] as? String }), [first, second],
            l.stdout)

        let out1 = s.url.appendingPathComponent("latest.db")
        let r1 = try CLI.run(["restore", "--output", out1.path], env: f.env)
        XCTAssertEqual(r1.status, 0, r1.output)
        XCTAssertTrue(r1.stderr.contains("is a delete marker"), r1.stderr)
        XCTAssertEqual(try S3Fixture.content(out1), expected)

        let out2 = s.url.appendingPathComponent("first.db")
        let r2 = try CLI.run(["restore", "--key", first, "--output", out2.path], env: f.env)
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertEqual(
            try sh("sqlite3 '\(out2.path)' 'PRAGMA integrity_check'").trimmingCharacters(in: .newlines), "ok")

        // Disaster: the database (and so the catalog) is gone.
        try FileManager.default.removeItem(at: f.database)
        for side in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: f.database.path + side) }
        let out3 = s.url.appendingPathComponent("disaster.db")
        let r3 = try CLI.run(["restore", "--output", out3.path], env: f.env)
        XCTAssertEqual(r3.status, 0, r3.output)
        XCTAssertEqual(try S3Fixture.content(out3), expected)
        XCTAssertEqual(try versions(f, second).versions.count, 1, "restore changed the bucket")
    }

    /// The nightly job runs with credentials that may only write: the backup works; a restore with
    /// it is refused with a permission message naming the read credentials; the read credentials
    /// restores; a wrong secret is still caught by the preflight with no temp file.
    func testWriteOnlyAndReadOnlyIdentities() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s, rows: 300)
        f.env["WASABI_ACCESS_KEY"] = f.s3.writerAccessKey
        f.env["WASABI_SECRET_KEY"] = f.s3.writerSecretKey
        let key = try f.backup()
        XCTAssertEqual(try f.keys(), [key])
        XCTAssertEqual(try f.rowCount(), 1)

        let out = s.url.appendingPathComponent("r.db")
        let denied = try CLI.run(["restore", "--output", out.path], env: f.env)
        XCTAssertEqual(denied.status, 5, denied.output)
        XCTAssertTrue(denied.stderr.contains("403") && denied.stderr.contains("may not read"), denied.stderr)
        XCTAssertTrue(denied.stderr.contains("BACKUP_READ_ACCESS_KEY"), denied.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        XCTAssertEqual(f.tempFiles(), [])

        var reading = f.env
        reading["BACKUP_READ_ACCESS_KEY"] = f.s3.readerAccessKey
        reading["BACKUP_READ_SECRET_KEY"] = f.s3.readerSecretKey
        let ok = try CLI.run(["restore", "--output", out.path], env: reading)
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertEqual(try S3Fixture.content(out), try S3Fixture.content(f.database))
        // The reader cannot delete: clean with it is refused, the clean credentials may.
        try age(f, key: key, days: 40)
        _ = try f.backup()
        reading["BACKUP_CLEAN_ACCESS_KEY"] = f.s3.readerAccessKey
        reading["BACKUP_CLEAN_SECRET_KEY"] = f.s3.readerSecretKey
        let c1 = try CLI.run(["clean"], env: reading)
        XCTAssertNotEqual(c1.status, 0, c1.output)
        XCTAssertTrue(c1.stderr.contains("BACKUP_CLEAN_ACCESS_KEY"), c1.stderr)
        reading["BACKUP_CLEAN_ACCESS_KEY"] = f.s3.accessKey
        reading["BACKUP_CLEAN_SECRET_KEY"] = f.s3.secretKey
        let c2 = try CLI.run(["clean"], env: reading)
        XCTAssertEqual(c2.status, 0, c2.output)
        XCTAssertFalse(try f.keys().contains(key))
        for secret in [f.s3.readerSecretKey, f.s3.secretKey, f.s3.writerSecretKey] {
            XCTAssertFalse((denied.output + ok.output + c1.output + c2.output).contains(secret), "a secret was printed")
        }

        // Wrong secret: the preflight fails (the signature is not accepted), nothing is made.
        var wrong = f.env
        wrong["WASABI_SECRET_KEY"] = "not-the-secret"
        let before = try f.keys()
        let w = try CLI.run(["backup"], env: wrong)
        XCTAssertEqual(w.status, 5, w.output)
        XCTAssertTrue(w.stderr.contains("SignatureDoesNotMatch") || w.stderr.contains("InvalidAccessKeyId"), w.stderr)
        XCTAssertFalse(
            w.stderr.contains("snapshot:"), "a snapshot was taken before the credentials were checked: \(w.stderr)")
        XCTAssertEqual(f.tempFiles(), [])
        XCTAssertEqual(try f.keys(), before)
    }

    /// The catalog insert fails after the upload, and the write-only credentials cannot delete what
    /// it stored: the message names the orphaned object and how to deal with it.
    func testCatalogFailureWithAWriteOnlyIdentityNamesTheOrphan() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s, rows: 100)
        f.env["WASABI_ACCESS_KEY"] = f.s3.writerAccessKey
        f.env["WASABI_SECRET_KEY"] = f.s3.writerSecretKey
        try sh(
            "sqlite3 '\(f.database.path)' \"CREATE TRIGGER no_rows BEFORE INSERT ON backup_files BEGIN SELECT RAISE(ABORT, 'catalog is refusing rows'); END;\""
        )
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertNotEqual(r.status, 0, r.output)
        let keys = try f.keys()
        XCTAssertEqual(keys.count, 1)
        XCTAssertTrue(r.stderr.contains("orphaned: \(keys[0])"), r.stderr)
        XCTAssertTrue(r.stderr.contains("catalog sync"), r.stderr)
    }
}
