import Foundation
import XCTest

/// Hostile or careless input that once crashed the tool or was silently misread: numbers out of range, a catalog of the wrong shape, a damaged source database,
/// settings with values that mean nothing, env file mistakes.
final class InputHardeningTests: XCTestCase {
    /// The run ended by itself with a documented status and one error line, not a trap.
    func assertCleanFailure(
        _ r: CLI.Result, _ status: Int32, _ message: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(r.status, status, r.output, file: file, line: line)
        XCTAssertFalse(
            r.stderr.contains("Fatal error") || r.stderr.contains("Backtrace"), r.stderr, file: file, line: line)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(
            last.contains("error:") && last.contains(message), "last line: \(last)\n\(r.stderr)", file: file, line: line
        )
    }

    /// Case 15: a database with a broken b-tree is not stored; the last good backup stays latest.
    func testDamagedSourceDatabaseIsNotBackedUp() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let good = try f.latestKey()
        // Scribble over the middle of a table page: the header stays valid, the b-tree does not.
        try sh(
            """
            python3 - '\(f.database.path)' <<'PY'
            import sys
            p = sys.argv[1]
            b = bytearray(open(p, 'rb').read())
            size = int.from_bytes(b[16:18], 'big')
            page = 4
            for i in range(page * size + 8, page * size + 400):
                b[i] = 0x5A
            open(p, 'wb').write(b)
            PY
            """)
        XCTAssertNotEqual(
            try sh("sqlite3 '\(f.database.path)' 'PRAGMA quick_check' || true").trimmingCharacters(in: .newlines), "ok")
        // The full check by default, the quick one on request: both keep the damaged copy out.
        let q = try CLI.run(["backup"], env: f.env.merging(["BACKUP_CHECK": "quick"]) { $1 })
        assertCleanFailure(q, 3, "is damaged: PRAGMA quick_check")
        let r = try CLI.run(["backup"], env: f.env)
        assertCleanFailure(r, 3, "is damaged: PRAGMA integrity_check")
        XCTAssertTrue(r.stderr.split(separator: "\n").last!.contains("nothing was stored"), r.stderr)
        XCTAssertEqual(try f.latestKey(), good)
        try f.assertNothingLeft(rows: 1)
    }

    /// Case 14: a catalog table that cannot take our rows is refused before any snapshot or upload.
    func testCatalogShapeIsCheckedFirst() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        // An extra NOT NULL column without a default: every insert of ours would fail.
        try f.sql(
            """
            DROP TABLE backup_files;
            CREATE TABLE backup_files (id varchar(255), key varchar(255) not null, file_name varchar(255) not null, file_size bigint not null, compression varchar(255) not null, storage varchar(255) not null, checksum varchar(255) not null, uploaded_at bigint not null, deleted_at bigint null, encryption varchar(255) not null, enc_iv varchar(255) not null, enc_tag varchar(255) not null, tenant text not null, primary key (id));
            """)
        let r = try CLI.run(["backup"], env: f.env)
        assertCleanFailure(r, 8, "unexpected shape")
        XCTAssertFalse(
            r.stderr.contains("snapshot:") || r.stderr.contains("upload:"), "work started before the check: \(r.stderr)"
        )
        try f.assertNothingLeft(rows: 0)
    }

    /// Case 12: numbers from metadata, flags and settings are range-checked with a clear error.
    func testOutOfRangeNumbersAreClearErrors() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let key = try f.latestKey()
        try f.editMeta(key) { $0["source-bytes"] = "9223372036854775807" }
        // With the catalog row, the metadata is only advisory: restore works and says why it
        // did not use it.
        let r = try CLI.run(["restore", "--output", s.url.appendingPathComponent("a.db").path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("source-bytes"), r.stderr)
        // Without a catalog, the metadata is all there is: a clear integrity error.
        f.env["BACKUP_CATALOG"] = s.url.appendingPathComponent("no-catalog.sqlite3").path
        let k = try CLI.run(
            ["restore", "--key", key, "--output", s.url.appendingPathComponent("b.db").path], env: f.env)
        assertCleanFailure(k, 4, "source-bytes")
        f.env["BACKUP_CATALOG"] = nil

        for args in [
            ["clean", "--retention-days", "999999999999999999"], ["clean", "--keep-last", "99999999999"],
            ["clean", "--orphans", "--grace", "1e400"], ["clean", "--orphans", "--grace", "inf"],
            ["backup", "--lock-wait", "nan"], ["backup", "--lock-wait", "inf"], ["backup", "--lock-wait", "1e300"],
            ["demo", "--rows", "-5", "--dir", s.url.appendingPathComponent("demo").path]
        ] {
            let u = try CLI.run(args, env: f.env)
            XCTAssertEqual(u.status, 2, "\(args): \(u.output)")
            XCTAssertFalse(u.stderr.contains("Fatal error"), u.stderr)
        }
        for (name, value) in [
            ("BACKUP_RETENTION_DAYS", "99999999999"), ("BACKUP_BUSY_TIMEOUT", "99999999999999999999"),
            ("BACKUP_GZIP_LEVEL", "-1")
        ] {
            var env = f.env
            env[name] = value
            let u = try CLI.run([name == "BACKUP_RETENTION_DAYS" ? "clean" : "backup"], env: env)
            XCTAssertEqual(u.status, 2, "\(name)=\(value): \(u.output)")
        }
    }

    /// Case 16: settings whose value means nothing are refused instead of silently read as a
    /// default (BACKUP_SSE=yes was "off").
    func testMeaninglessSettingsAreRefused() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        for v in ["abc", "0", "9999"] {
            var env = f.env
            env["BACKUP_THREADS"] = v
            let r = try CLI.run(["backup"], env: env)
            assertCleanFailure(r, 2, "BACKUP_THREADS")
        }
        var s3 = f.env
        for (k, v) in [
            "BACKUP_STORAGE": "s3", "WASABI_ACCESS_KEY": "a", "WASABI_SECRET_KEY": "b", "WASABI_BUCKET": "bucket",
            "WASABI_ENDPOINT": "http://127.0.0.1:9", "BACKUP_SSE": "yes"
        ] { s3[k] = v }
        assertCleanFailure(try CLI.run(["backup"], env: s3), 2, "BACKUP_SSE")
        s3["BACKUP_SSE"] = nil
        s3["BACKUP_S3_SIGN_PAYLOAD"] = "on"
        assertCleanFailure(try CLI.run(["backup"], env: s3), 2, "BACKUP_S3_SIGN_PAYLOAD")
        var p = f.env
        p["BACKUP_PREFIX"] = "../elsewhere"
        assertCleanFailure(try CLI.run(["backup"], env: p), 2, "BACKUP_PREFIX")
        try f.assertNothingLeft(rows: 0)
    }

    /// A FIFO where a settings file, the application's .env or a downloaded object's metadata
    /// should be: every command answers at once with one line naming it, never waits for a writer
    /// (which would hang every cron run on the host). Each run has a 20 s deadline.
    func testFIFOsInPlaceOfFilesNeverHang() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let app = try s.sub("app")
        XCTAssertEqual(mkfifo(app.appendingPathComponent(".env").path, 0o600), 0)
        let system = s.url.appendingPathComponent("laju-backup.env").path
        try "BACKUP_APP_DIR=\(app.path)\nBACKUP_DATABASE=\(f.database.path)\n".write(
            toFile: system, atomically: false, encoding: .utf8)
        var env = f.env
        env["LAJU_BACKUP_CONFIG"] = system
        for command in [["config"], ["doctor"], ["backup"], ["status"]] {
            let r = try CLI.run(command, env: env, timeout: 20)
            XCTAssertFalse(r.timedOut, "\(command) waited on the FIFO")
            XCTAssertNotEqual(r.status, 0, "\(command): \(r.output)")
            XCTAssertTrue(r.output.contains("it is a FIFO, not a regular file"), "\(command): \(r.output)")
        }
        let fifo = s.url.appendingPathComponent("settings.env").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let e = try CLI.run(["list", "--env-file", fifo], env: f.env, timeout: 20)
        XCTAssertFalse(e.timedOut)
        assertCleanFailure(e, 2, "cannot read env file \(fifo): it is a FIFO, not a regular file")
        // A downloaded object whose side file is a FIFO.
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let object = s.url.appendingPathComponent("object.enc").path
        try FileManager.default.copyItem(atPath: f.objectPath(try f.latestKey()), toPath: object)
        XCTAssertEqual(mkfifo(object + ".meta.json", 0o600), 0)
        let out = s.url.appendingPathComponent("restored.db").path
        let r = try CLI.run(["restore", "--from-file", object, "--output", out], env: f.env, timeout: 20)
        XCTAssertFalse(r.timedOut)
        assertCleanFailure(r, 2, "it is a FIFO, not a regular file")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// Case 16: env file mistakes are named precisely; a key readable by every user is warned about.
    func testEnvFileMistakes() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let dir = try s.sub("a-directory")
        assertCleanFailure(try CLI.run(["list", "--env-file", dir.path], env: f.env), 2, "it is a directory")
        let typo = s.url.appendingPathComponent("typo.env")
        try Data("BACKUP_PREFIX=\"backups/\"x\n".utf8).write(to: typo)
        assertCleanFailure(try CLI.run(["list", "--env-file", typo.path], env: f.env), 2, "after the closing quote")

        let keyFile = s.url.appendingPathComponent("key.env")
        try Data("BACKUP_ENCRYPTION_KEY=\(f.key)\n".utf8).write(to: keyFile)
        var env = f.env
        env["BACKUP_ENCRYPTION_KEY"] = nil
        try sh("chmod 0644 '\(keyFile.path)'")
        let open = try CLI.run(["backup", "--env-file", keyFile.path], env: env)
        XCTAssertEqual(open.status, 0, open.output)
        XCTAssertTrue(
            open.stderr.contains("warning: \(keyFile.path) holds BACKUP_ENCRYPTION_KEY and is readable by every user"),
            open.stderr)
        XCTAssertFalse(open.output.contains(f.key), "the key was printed")
        try sh("chmod 0600 '\(keyFile.path)'")
        let closed = try CLI.run(["backup", "--env-file", keyFile.path], env: env)
        XCTAssertEqual(closed.status, 0, closed.output)
        XCTAssertFalse(closed.stderr.contains("readable by every user"), closed.stderr)
    }
}
