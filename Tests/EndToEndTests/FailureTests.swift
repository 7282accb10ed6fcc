import Foundation
import XCTest

/// Every failure the CLI can meet on the backup → restore loop: exit status, the one-line message,
/// and that nothing is left behind (no temp file, no `.partial`, no catalog row, no created source).
final class FailureTests: XCTestCase {
    // MARK: source and configuration

    func testMissingDatabaseIsNotCreated() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let missing = s.url.appendingPathComponent("data/missing.sqlite3").path
        f.env["BACKUP_DATABASE"] = missing
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.stderr.contains("database \(missing) does not exist"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one line: \(r.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing), "the original's defect: it created the source")
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing + "-journal"))
        try f.assertNothingLeft(rows: 0)
    }

    func testFileThatIsNotSQLite() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let text = s.url.appendingPathComponent("notes.txt")
        let body = String(repeating: "not a database\n", count: 500)
        try body.write(to: text, atomically: true, encoding: .utf8)
        f.env["BACKUP_DATABASE"] = text.path
        f.env["BACKUP_CATALOG"] = f.database.path
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.stderr.contains("is not a SQLite database"), r.stderr)
        XCTAssertEqual(try String(contentsOf: text, encoding: .utf8), body, "the source is never written")
        try f.assertNothingLeft(rows: 0)
    }

    /// A file with the SQLite header whose pages are garbage: a source problem (3), found before
    /// anything is stored.
    func testDamagedSQLiteFile() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let bad = s.url.appendingPathComponent("damaged.sqlite3").path
        try sh("(printf 'SQLite format 3\\000'; head -c 65536 /dev/urandom) > '\(bad)'")
        f.env["BACKUP_DATABASE"] = bad
        f.env["BACKUP_CATALOG"] = f.database.path
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.stderr.contains(bad), r.stderr)
        try f.assertNothingLeft(rows: 0)
    }

    func testMalformedKeyIsRefusedWithoutEchoingIt() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        f.env["BACKUP_ENCRYPTION_KEY"] = "3q2+7wAAAAAAAAAAAAAAAAAAAA=="  // the guide's own example: 19 bytes
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stderr.contains("as base64: 19 bytes, as hex: 0 bytes, as text: 28 bytes"), r.stderr)
        XCTAssertFalse(r.output.contains("3q2+7w"), "key echoed: \(r.output)")
        try f.assertNothingLeft(rows: 0)
        // The same for restore, which must not need the catalog to say so.
        let rr = try CLI.run(["restore", "--output", s.url.appendingPathComponent("out.db").path], env: f.env)
        XCTAssertEqual(rr.status, 2, rr.output)
        XCTAssertFalse(rr.output.contains("3q2+7w"))
    }

    func testMissingStoreAndMissingCatalogTableFailBeforeAnyTempFile() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        var noStore = f.env
        noStore["BACKUP_STORAGE"] = "file://\(s.path)/no-such-store"
        let r = try CLI.run(["backup"], env: noStore)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stderr.contains("local store \(s.path)/no-such-store does not exist"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(s.path)/no-such-store"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.tmp.path), [], "not even a lock file")

        try f.sql("DROP TABLE backup_files;")
        let t = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(t.status, 8, t.output)
        XCTAssertTrue(t.stderr.contains("table backup_files does not exist"), t.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.tmp.path), [])
        XCTAssertEqual(Scratch.files(in: f.store), [])
    }

    /// The row cannot be written (a trigger refuses it): the stored object is removed again, so
    /// store and catalog stay in step, and the run fails with the catalog status.
    func testCatalogInsertFailureRemovesTheObject() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        try f.sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON backup_files BEGIN SELECT RAISE(ABORT, 'catalog is read-only today'); END;"
        )
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 8, r.output)
        XCTAssertTrue(r.stderr.contains("catalog is read-only today"), r.stderr)
        XCTAssertTrue(r.stderr.contains("removed again"), r.stderr)
        try f.assertNothingLeft(rows: 0)
        XCTAssertEqual(Scratch.files(in: f.store), [], "object or metadata left without a row")
    }

    // MARK: damaged or mismatched backups

    func testTamperedByteIsCaughtByChecksum() throws {
        let (s, f, key) = try backedUp()
        try f.flipByte(key, at: 1000)
        try f.assertRestoreRefused(s, exit: 4, message: "is damaged: MD5")
        let v = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(v.status, 4, v.output)
        XCTAssertTrue(v.stderr.contains("is damaged: MD5"), v.stderr)
        try f.assertNothingLeft(rows: 1)
    }

    /// With the recorded checksums updated to match the tampered bytes, the GCM tag still catches it.
    func testTamperedByteWithChecksumRecomputedIsCaughtByTag() throws {
        let (s, f, key) = try backedUp()
        try f.flipByte(key, at: 1000)
        let md5 = try sh("md5sum '\(f.objectPath(key))' | cut -c1-32").trimmingCharacters(in: .whitespacesAndNewlines)
        try f.sql("UPDATE backup_files SET checksum = '\(md5)'")
        try f.editMeta(key) { $0["checksum"] = md5 }
        try f.assertRestoreRefused(s, exit: 4, message: "backup does not authenticate")
    }

    func testTruncatedObject() throws {
        let (s, f, key) = try backedUp()
        try sh("truncate -s -100 '\(f.objectPath(key))'")
        try f.assertRestoreRefused(s, exit: 4, message: "truncated or altered object")
        // And with the checksum gone (an original row without one), the tag refuses it.
        try f.sql("UPDATE backup_files SET checksum = ''")
        try f.editMeta(key) { $0["checksum"] = nil }
        try f.assertRestoreRefused(s, exit: 4, message: "backup does not authenticate")
    }

    func testWrongKeyNamedByFingerprint() throws {
        let (s, f0, _) = try backedUp()
        var f = f0
        let otherKey = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
        f.env["BACKUP_ENCRYPTION_KEY"] = otherKey
        let r = try f.assertRestoreRefused(s, exit: 4, message: "wrong encryption key")
        XCTAssertFalse(r.output.contains(otherKey) || r.output.contains(f0.key), "a key was printed")
    }

    /// Without our fingerprint (an object the original made), a wrong key is caught by the tag.
    func testWrongKeyWithoutFingerprintCaughtByTag() throws {
        let (s, f0, key) = try backedUp()
        var f = f0
        try f.editMeta(key) { $0["key-fingerprint"] = nil }
        f.env["BACKUP_ENCRYPTION_KEY"] = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(
            in: .whitespacesAndNewlines)
        try f.assertRestoreRefused(s, exit: 4, message: "backup does not authenticate")
    }

    func testWrongIVOrTagInCatalogRow() throws {
        let (s, f, _) = try backedUp()
        let row = try f.sql("SELECT enc_iv || '|' || enc_tag FROM backup_files").split(separator: "|").map(String.init)
        let otherIV = try sh("head -c 12 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
        let otherTag = try sh("head -c 16 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
        try f.sql("UPDATE backup_files SET enc_iv = '\(otherIV)'")
        try f.assertRestoreRefused(s, exit: 4, message: "backup does not authenticate")
        try f.sql("UPDATE backup_files SET enc_iv = '\(row[0])', enc_tag = '\(otherTag)'")
        try f.assertRestoreRefused(s, exit: 4, message: "backup does not authenticate")
        // Put back, the same backup restores: the refusals were the IV and tag, nothing else.
        try f.sql("UPDATE backup_files SET enc_tag = '\(row[1].trimmingCharacters(in: .whitespacesAndNewlines))'")
        let ok = try CLI.run(["restore", "--output", s.url.appendingPathComponent("out/ok.db").path], env: f.env)
        XCTAssertEqual(ok.status, 0, ok.output)
    }

    func testMissingObjectIsAStorageFailure() throws {
        let (s, f, key) = try backedUp()
        try FileManager.default.removeItem(atPath: f.objectPath(key))
        try f.assertRestoreRefused(s, exit: 5, message: "object \(key) not found")
        let v = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(v.status, 5, v.output)
    }

    /// A row without IV/tag (the nullable schema variant, or a hand-edited row) falls back to the
    /// object's metadata instead of failing.
    func testRowWithoutIVAndTagUsesObjectMetadata() throws {
        let (s, f, _) = try backedUp()
        try f.sql("UPDATE backup_files SET enc_iv = '', enc_tag = '';")
        let out = s.url.appendingPathComponent("from-meta.db")
        let r = try CLI.run(["restore", "--output", out.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try sh("sqlite3 '\(out.path)' 'SELECT count(*) FROM items'"), "2000\n")
    }

    /// An application holding an exclusive lock (rollback-journal mode): backup waits as long as
    /// BACKUP_BUSY_TIMEOUT says, no less (the catalog check included) and no more; when the lock
    /// outlasts it, exit 7 with a message saying so, and nothing left.
    func testDatabaseLockedHonoursBusyTimeout() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s, rows: 200, journalMode: "delete")

        let shortHold = try holdExclusive(f, seconds: 6, scratch: s)
        f.env["BACKUP_BUSY_TIMEOUT"] = "20000"
        var began = Date()
        let waited = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(waited.status, 0, "BACKUP_BUSY_TIMEOUT=20000 but it gave up: \(waited.output)")
        XCTAssertGreaterThan(Date().timeIntervalSince(began), 4, "it cannot have finished while the lock was held")
        shortHold.waitUntilExit()

        let longHold = try holdExclusive(f, seconds: 30, scratch: s)
        defer { longHold.terminate(); longHold.waitUntilExit() }
        f.env["BACKUP_BUSY_TIMEOUT"] = "1000"
        began = Date()
        let r = try CLI.run(["backup"], env: f.env)
        let took = Date().timeIntervalSince(began)
        XCTAssertEqual(r.status, 7, r.output)
        XCTAssertTrue(r.stderr.contains("is locked") || r.stderr.contains("stayed locked"), r.stderr)
        XCTAssertTrue(r.stderr.contains("BACKUP_BUSY_TIMEOUT"), r.stderr)
        XCTAssertLessThan(took, 4, "BACKUP_BUSY_TIMEOUT=1000 ms, yet it waited \(took) s")
        longHold.terminate()
        longHold.waitUntilExit()
        try f.assertNothingLeft(rows: 1)
    }

    /// With the catalog in its own file, the snapshot itself meets the lock: the same bound holds
    /// for its retries (each attempt already waits out the busy timeout inside SQLite).
    func testSnapshotBusyRetriesStayWithinTheTimeout() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s, rows: 200, journalMode: "delete")
        let catalog = s.url.appendingPathComponent("catalog.sqlite3").path
        try sh("sqlite3 '\(catalog)' < '\(LocalFixture.knexDDL.path)'")
        f.env["BACKUP_CATALOG"] = catalog
        f.env["BACKUP_BUSY_TIMEOUT"] = "1000"
        let hold = try holdExclusive(f, seconds: 30, scratch: s)
        defer { hold.terminate(); hold.waitUntilExit() }
        let began = Date()
        let r = try CLI.run(["backup"], env: f.env)
        let took = Date().timeIntervalSince(began)
        XCTAssertEqual(r.status, 7, r.output)
        XCTAssertTrue(r.stderr.contains("stayed locked"), r.stderr)
        XCTAssertTrue(r.stderr.contains("BACKUP_BUSY_TIMEOUT"), r.stderr)
        XCTAssertLessThan(took, 4, "BACKUP_BUSY_TIMEOUT=1000 ms, yet the snapshot retried for \(took) s")
        XCTAssertEqual(try sh("sqlite3 '\(catalog)' 'SELECT count(*) FROM backup_files'"), "0\n")
        let tmpEntries = try FileManager.default.contentsOfDirectory(atPath: f.tmp.path)
        XCTAssertEqual(tmpEntries.filter { !$0.hasSuffix(".lock") }, [])
        XCTAssertEqual(Scratch.files(in: f.store), [])
    }

    /// Another process holding `BEGIN EXCLUSIVE` on the fixture database for `seconds`.
    func holdExclusive(_ f: LocalFixture, seconds: Int, scratch s: Scratch) throws -> Process {
        let ready = s.url.appendingPathComponent("locked-\(UUID().uuidString.prefix(4))").path
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            """
            import sqlite3, sys, time
            con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
            con.execute("BEGIN EXCLUSIVE")
            open(sys.argv[2], "w").close()
            time.sleep(int(sys.argv[3]))
            con.execute("COMMIT")
            """, f.database.path, ready, String(seconds)
        ]
        try holder.run()
        let start = Date()
        while !FileManager.default.fileExists(atPath: ready) && Date().timeIntervalSince(start) < 10 { usleep(20_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: ready), "could not take the exclusive lock")
        return holder
    }

    // MARK: the output side

    func testOutputUnderARegularFile() throws {
        let (s, f, _) = try backedUp()
        let blocker = s.url.appendingPathComponent("blocker")
        try "x".write(to: blocker, atomically: true, encoding: .utf8)
        let r = try CLI.run(["restore", "--output", blocker.appendingPathComponent("out.db").path], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("cannot create output directory \(blocker.path)"), r.stderr)
        try f.assertNothingLeft(rows: 1)
    }

    func testReadOnlyOutputDirectory() throws {
        let (s, f, _) = try backedUp()
        let ro = try Tmpfs(in: s, size: "1m", readOnly: true)
        let r = try CLI.run(["restore", "--output-dir", ro.path], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("output directory \(ro.path) is not writable"), r.stderr)
        XCTAssertEqual(Scratch.files(in: URL(fileURLWithPath: ro.path)), [])
        try f.assertNothingLeft(rows: 1)
    }

    func testExistingOutputNeedsForce() throws {
        let (s, f, _) = try backedUp()
        let out = s.url.appendingPathComponent("restored.db")
        try "precious".write(to: out, atomically: true, encoding: .utf8)
        try "stale wal".write(toFile: out.path + "-wal", atomically: true, encoding: .utf8)
        let r = try CLI.run(["restore", "--output", out.path], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("\(out.path) already exists"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--force"), r.stderr)
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), "precious")
        XCTAssertEqual(try f.partials(near: out), [])

        let forced = try CLI.run(["restore", "--output", out.path, "--force"], env: f.env)
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertEqual(try sh("sqlite3 '\(out.path)' 'SELECT count(*) FROM items'"), "2000\n")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: out.path + "-wal"),
            "a stale -wal beside the replaced file would corrupt it")
        XCTAssertEqual(try f.partials(near: out), [])
    }

    // MARK: full disks (tmpfs mounts, root only)

    func testBackupTempDirTooSmall() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        try f.grow(megabytes: 4)
        let small = try Tmpfs(in: s, size: "2m")
        f.env["BACKUP_TMPDIR"] = small.path
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("not enough free space for temporary files: need "), r.stderr)
        XCTAssertTrue(r.stderr.contains(" in \(small.path)"), r.stderr)
        XCTAssertEqual(Scratch.files(in: URL(fileURLWithPath: small.path)).filter { !$0.hasSuffix(".lock") }, [])
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: small.path).filter { !$0.hasSuffix(".lock") }, [])
        try f.assertNothingLeft(rows: 0)
    }

    func testRestoreOntoTooSmallDisk() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        try f.grow(megabytes: 4)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let small = try Tmpfs(in: s, size: "2m")
        let r = try CLI.run(["restore", "--output-dir", small.path], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("need "), r.stderr)
        XCTAssertTrue(r.stderr.contains("in \(small.path)"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: small.path), [])
    }

    /// The free-space estimate passes (a very compressible database, no size in the metadata) but
    /// the disk fills while writing: ENOSPC ends the run with exit 6 and no partial file.
    func testRestoreHitsENOSPCAndLeavesNoPartial() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        try f.sql(
            "CREATE TABLE zeros(b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 48) INSERT INTO zeros SELECT zeroblob(65536) FROM n;"
        )
        let b = try CLI.run(["backup", "--json"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        let key = try f.latestKey()
        try f.editMeta(key) { $0["source-bytes"] = nil }
        let small = try Tmpfs(in: s, size: "1m")
        let r = try CLI.run(["restore", "--output-dir", small.path], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("No space left on device"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: small.path), [], "partial plaintext left")
    }

    // MARK: helpers

    /// A fixture with one good backup in its local store.
    func backedUp(_ name: String = #function) throws -> (Scratch, LocalFixture, String) {
        let s = try Scratch(name)
        let f = try LocalFixture(scratch: s)
        let b = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        return (s, f, try f.latestKey())
    }
}

// MARK: - Fixture helpers shared by the end-to-end tests of the core loop

extension LocalFixture {
    /// Runs SQL against the fixture database with the sqlite3 CLI; returns its output.
    @discardableResult
    func sql(_ statements: String) throws -> String {
        try sh("sqlite3 '\(database.path)' <<'SQL'\n\(statements)\nSQL")
    }

    func rowCount() throws -> Int {
        Int(try sql("SELECT count(*) FROM backup_files;").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func latestKey() throws -> String {
        try sql("SELECT key FROM backup_files ORDER BY uploaded_at DESC LIMIT 1;").trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    func objectPath(_ key: String) -> String { store.path + "/" + key }

    /// Adds about `megabytes` MiB of incompressible rows.
    func grow(megabytes: Int) throws {
        try sql(
            "CREATE TABLE IF NOT EXISTS filler(b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < \(megabytes * 16)) INSERT INTO filler SELECT randomblob(65536) FROM n;"
        )
    }

    func flipByte(_ key: String, at offset: Int) throws {
        try sh(
            """
            python3 - '\(objectPath(key))' \(offset) <<'PY'
            import sys
            p, o = sys.argv[1], int(sys.argv[2])
            b = bytearray(open(p, 'rb').read()); b[o] ^= 0x01; open(p, 'wb').write(b)
            PY
            """)
    }

    /// Rewrites `<object>.meta.json` (the local store's copy of the S3 user metadata).
    func editMeta(_ key: String, _ change: (inout [String: String]) -> Void) throws {
        let url = URL(fileURLWithPath: objectPath(key) + ".meta.json")
        var meta = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: url))
        change(&meta)
        try JSONEncoder().encode(meta).write(to: url)
    }

    /// Temp files of any kind next to `output` (`.partial`, `-journal`...).
    func partials(near output: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: output.deletingLastPathComponent().path)
            .filter { $0.contains(".partial") }
    }

    /// Nothing left in BACKUP_TMPDIR but lock files, no hidden temp in the store, `rows` catalog rows.
    func assertNothingLeft(rows: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let tmpEntries = (try? FileManager.default.contentsOfDirectory(atPath: env["BACKUP_TMPDIR"] ?? tmp.path)) ?? []
        XCTAssertEqual(
            tmpEntries.filter { !($0.hasPrefix("laju-backup-") && $0.hasSuffix(".lock")) }, [],
            "left in BACKUP_TMPDIR", file: file, line: line)
        XCTAssertEqual(
            Scratch.files(in: store).filter { $0.contains(".partial") || $0.lastPathComponentOfTest.hasPrefix(".") },
            [],
            "temp files in the store", file: file, line: line)
        if FileManager.default.fileExists(atPath: database.path) {
            XCTAssertEqual(try rowCount(), rows, "catalog rows", file: file, line: line)
        }
        XCTAssertEqual(
            Scratch.files(in: store).filter { $0.hasSuffix(".enc") }.count, rows,
            "objects in the store (one per row)", file: file, line: line)
    }

    /// Restore must fail with `exit` and `message`, leave no output and no `.partial`.
    @discardableResult
    func assertRestoreRefused(
        _ s: Scratch, exit: Int32, message: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> CLI.Result {
        let out = s.url.appendingPathComponent("restore-out/restored.db")
        let r = try CLI.run(["restore", "--output", out.path], env: env)
        XCTAssertEqual(r.status, exit, r.output, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(message), r.stderr, file: file, line: line)
        XCTAssertTrue(
            r.stderr.hasSuffix("\n") && r.stderr.split(separator: "\n").last!.contains("error: "), r.stderr, file: file,
            line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "output written", file: file, line: line)
        if FileManager.default.fileExists(atPath: out.deletingLastPathComponent().path) {
            XCTAssertEqual(
                try FileManager.default.contentsOfDirectory(atPath: out.deletingLastPathComponent().path), [],
                "partial files left", file: file, line: line)
        }
        XCTAssertEqual(
            Scratch.files(in: tmp).filter { !$0.hasSuffix(".lock") }, [], "temp left", file: file, line: line)
        return r
    }
}

extension String {
    var lastPathComponentOfTest: String { split(separator: "/").last.map(String.init) ?? self }
}

/// A small tmpfs mounted for one test (root only; skipped elsewhere), to make a disk full or
/// read-only for real. Unmounted when released.
final class Tmpfs {
    let path: String
    /// Kept alive so the scratch directory is removed only after the unmount.
    let scratch: Scratch
    init(in scratch: Scratch, size: String, readOnly: Bool = false) throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        self.scratch = scratch
        path = scratch.url.appendingPathComponent("tmpfs-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let opts = "size=\(size),mode=0755\(readOnly ? ",ro" : "")"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", opts, "laju-test", path]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw XCTSkip("cannot mount a tmpfs here (mount exit \(p.terminationStatus))")
        }
    }
    deinit {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = ["-l", path]
        try? p.run()
        p.waitUntilExit()
        try? FileManager.default.removeItem(atPath: path)
    }
}
