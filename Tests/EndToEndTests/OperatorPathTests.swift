import Foundation
import XCTest

/// The operator's path: settings that do not depend on where you stand, a Laju app
/// configured in one line, a disaster restore that needs only the key and the bucket, a catalog
/// rebuilt from the store, two apps with the same database file name, keep rules and catch-up runs
/// from the settings, and hints that point the right way.
final class OperatorPathTests: XCTestCase {
    /// A Laju application folder: `.env` with the key, DB_CONNECTION and the app's own asset
    /// bucket settings, `data/production.sqlite3` with the catalog table.
    struct LajuApp {
        let dir: URL
        let database: URL
        let key: String

        init(_ s: Scratch, name: String = "shop", rows: Int = 500) throws {
            dir = try s.sub(name)
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
            database = dir.appendingPathComponent("data/production.sqlite3")
            key = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
            try sh(
                """
                sqlite3 '\(database.path)' <<'SQL'
                PRAGMA journal_mode=wal;
                CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < \(rows))
                  INSERT INTO items SELECT i, '\(name) item ' || i, i % 7 FROM n;
                SQL
                """)
            try sh("sqlite3 '\(database.path)' < '\(LocalFixture.knexDDL.path)'")
            // The app's own settings: its asset bucket, which backups must never go to.
            try """
            NODE_ENV=production
            DB_CONNECTION=production
            BACKUP_ENCRYPTION_KEY=\(key)
            WASABI_BUCKET=\(name)-assets
            BACKUP_STORAGE=file://\(dir.path)/assets-store
            """.write(to: dir.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
            try sh("chmod 0600 '\(dir.path)/.env'")
        }
    }

    func systemFile(_ s: Scratch, _ text: String) throws -> String {
        let path = s.url.appendingPathComponent("laju-backup.env").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try sh("chmod 0600 '\(path)'")
        return path
    }

    func env(_ s: Scratch, system: String) throws -> [String: String] {
        let tmp = try s.sub("tmp")
        return ["LAJU_BACKUP_CONFIG": system, "BACKUP_TMPDIR": tmp.path, "BACKUP_LOCK_DIR": tmp.path]
    }

    func objects(_ store: URL) -> [String] { Scratch.files(in: store).filter { $0.hasSuffix(".enc") } }

    /// Items 2 and 3: BACKUP_APP_DIR in the system file; the app's .env supplies the key and the
    /// database, laju-backup's own file the store. From the app folder and from / the backups land
    /// in the same place, and the app's BACKUP_STORAGE (its asset store) never wins.
    func testAppDirSettingsAreTheSameFromAnyFolder() throws {
        let s = try Scratch()
        let app = try LajuApp(s)
        let store = try s.sub("backups")
        let system = try systemFile(s, "BACKUP_APP_DIR=\(app.dir.path)\nBACKUP_STORAGE=file://\(store.path)\n")
        let e = try env(s, system: system)
        for cwd in [app.dir, URL(fileURLWithPath: "/")] {
            let r = try CLI.run(["backup"], env: e, cwd: cwd)
            XCTAssertEqual(r.status, 0, "from \(cwd.path): \(r.output)")
        }
        XCTAssertEqual(objects(store).count, 2)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: app.dir.appendingPathComponent("assets-store").path),
            "a backup went to the app's asset store")
        XCTAssertEqual(
            try sh("sqlite3 '\(app.database.path)' 'SELECT count(*) FROM backup_files'").trimmingCharacters(
                in: .newlines), "2")

        // config names every source, hides the key, shows its fingerprint.
        let c = try CLI.run(["config", "--json"], env: e, cwd: URL(fileURLWithPath: "/"))
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertFalse(c.output.contains(app.key), "config printed the key")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [String: Any])
        let entries = Dictionary(
            uniqueKeysWithValues: ((report["settings"] as? [[String: Any]]) ?? []).map { ($0["name"] as! String, $0) })
        XCTAssertEqual(entries["BACKUP_STORAGE"]?["source"] as? String, "\(system):2")
        XCTAssertEqual(entries["BACKUP_APP_DIR"]?["source"] as? String, "\(system):1")
        XCTAssertEqual(entries["BACKUP_ENCRYPTION_KEY"]?["source"] as? String, "\(app.dir.path)/.env:3")
        XCTAssertEqual(entries["DB_CONNECTION"]?["value"] as? String, "production")
        XCTAssertEqual(report["database"] as? String, app.database.path)
        XCTAssertNotNil(report["key_fingerprint"] as? String)
        let text = try CLI.run(["config"], env: e)
        XCTAssertTrue(text.stdout.contains("fingerprint"), text.stdout)
        XCTAssertFalse(text.output.contains(app.key))
    }

    /// Item 3: without BACKUP_APP_DIR the working directory's .env is read last: it fills gaps but
    /// never overrides laju-backup's own file.
    func testWorkingDirectoryEnvNeverOverridesTheSystemFile() throws {
        let s = try Scratch()
        let app = try LajuApp(s)
        let store = try s.sub("backups")
        let system = try systemFile(s, "BACKUP_DATABASE=\(app.database.path)\nBACKUP_STORAGE=file://\(store.path)\n")
        let r = try CLI.run(["backup"], env: try env(s, system: system), cwd: app.dir)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(objects(store).count, 1, "the system file's store lost to ./.env")
        let c = try CLI.run(["config", "--json"], env: try env(s, system: system), cwd: app.dir)
        XCTAssertTrue(c.stdout.contains("\(app.dir.path)/.env:3"), c.stdout)
    }

    /// Item 4: with the database (and so the catalog) gone, restore finds the newest backup of this
    /// database in the store by itself, says so, gives the file the folder's owner; `catalog sync`
    /// then puts back the row the restored catalog lacks; reconcile deletes no valid backup.
    func testDisasterRestoreNeedsOnlyTheSettings() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        try f.sql("INSERT INTO items (name, qty) VALUES ('after first backup', 1);")
        usleep(1_100_000)  // distinct times in the store, whatever its clock resolution
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let newest = try f.latestKey()
        let expected = try SQLiteContent.of(f.database)
        try sh("chown nobody:nogroup '\(f.database.deletingLastPathComponent().path)' 2>/dev/null || true")
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: f.database.path + suffix) }

        let r = try CLI.run(["restore", "--output", f.database.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("restoring the newest backup of app.sqlite3 found in"), r.stderr)
        XCTAssertTrue(r.stderr.contains(newest), r.stderr)
        XCTAssertEqual(try SQLiteContent.of(f.database, immutable: false), expected)
        if getuid() == 0 {
            XCTAssertEqual(
                try sh("stat -c %U '\(f.database.path)'").trimmingCharacters(in: .newlines), "nobody",
                "the restored file did not get its folder's owner")
        }
        // The restored catalog knows the first backup (its row was written before the second
        // snapshot) but not the one it was restored from.
        XCTAssertEqual(try f.rowCount(), 1)
        let sync = try CLI.run(["catalog", "sync", "--json"], env: f.env)
        XCTAssertEqual(sync.status, 0, sync.output)
        let o = try JSONSerialization.jsonObject(with: Data(sync.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((o?["adopted"] as? [[String: Any]])?.compactMap { $0["key"] as? String }, [newest])
        XCTAssertEqual(try f.rowCount(), 2)
        XCTAssertEqual(try f.latestKey(), newest)
        let again = try CLI.run(["catalog", "sync"], env: f.env)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(try f.rowCount(), 2, "sync is idempotent")
        // Nothing valid is an orphan now; before the sync, reconcile keeps it and points to sync.
        try sh("find '\(f.store.path)' -type f -exec touch -d '-3 days' {} +")
        let c = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0"], env: f.env)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertEqual(objects(f.store).count, 2)
        XCTAssertEqual(try CLI.run(["verify"], env: f.env).status, 0)
    }

    /// Item 5: an object that is a valid backup of this database but has no row is kept by
    /// --delete-orphans, which says to adopt it.
    func testValidBackupWithoutRowIsNeverDeletedAsAnOrphan() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let first = try f.sql("SELECT key FROM backup_files ORDER BY uploaded_at LIMIT 1;").trimmingCharacters(
            in: .newlines)
        try f.sql("DELETE FROM backup_files WHERE key = '\(first)';")
        try sh("find '\(f.store.path)' -type f -exec touch -d '-3 days' {} +")
        let r = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.objectPath(first)), "a valid backup was deleted")
        XCTAssertTrue(r.stdout.contains("catalog sync"), r.stdout)
    }

    /// Two apps whose databases have the same file name share a store and a prefix (and a key):
    /// neither sees, restores or deletes the other's backups.
    func testTwoAppsWithTheSameDatabaseNameStayApart() throws {
        let s = try Scratch()
        let one = try LajuApp(s, name: "one"), two = try LajuApp(s, name: "two")
        let store = try s.sub("backups")
        try sh("sed -i 's|^BACKUP_ENCRYPTION_KEY=.*|BACKUP_ENCRYPTION_KEY=\(one.key)|' '\(two.dir.path)/.env'")
        var e1 = try env(s, system: "")
        e1["BACKUP_STORAGE"] = "file://\(store.path)"
        var e2 = e1
        e1["BACKUP_APP_DIR"] = one.dir.path
        e2["BACKUP_APP_DIR"] = two.dir.path
        XCTAssertEqual(try CLI.run(["backup"], env: e1).status, 0)
        usleep(1_100_000)
        XCTAssertEqual(try CLI.run(["backup"], env: e2).status, 0)
        let twoKey = try sh("sqlite3 '\(two.database.path)' 'SELECT key FROM backup_files'").trimmingCharacters(
            in: .newlines)
        XCTAssertTrue(twoKey.contains("production.sqlite3-"), twoKey)
        try sh("find '\(store.path)' -type f -exec touch -d '-3 days' {} +")
        try sh("touch -d '-1 days' '\(store.path)/\(twoKey)'")  // two's backup is the newest

        let l = try CLI.run(["list", "--remote"], env: e1)
        XCTAssertEqual(l.status, 0, l.output)
        XCTAssertFalse(l.stdout.contains("orphan"), l.stdout)
        let c = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0"], env: e1)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertEqual(objects(store).count, 2, "one's reconcile deleted two's backup")
        // A restore of one never picks two's backup, even with one's database gone.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: one.database.path + suffix) }
        let r = try CLI.run(["restore", "--output", one.database.path], env: e1)
        XCTAssertEqual(r.status, 0, r.output)
        let done = try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.contains("restore ok:") })
        XCTAssertFalse(done.contains(twoKey), r.stderr)
        XCTAssertTrue(r.stderr.contains("skipped \(twoKey): a backup of another database"), r.stderr)
        XCTAssertTrue(try sh("sqlite3 '\(one.database.path)' 'SELECT name FROM items LIMIT 1'").contains("one item"))
        // Naming two's backup explicitly works, and says whose it is.
        let k = try CLI.run(
            ["restore", "--key", twoKey, "--output", s.url.appendingPathComponent("k.db").path], env: e1)
        XCTAssertEqual(k.status, 0, k.output)
        XCTAssertTrue(k.stderr.contains("is a backup of another database"), k.stderr)
    }

    /// Item 6 and 7: keep rules from the settings file; a catch-up run that backs up only when
    /// the newest backup is older than a duration.
    func testKeepRulesAndCatchUpFromSettings() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        for _ in 0..<3 { XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0) }
        let skipped = try CLI.run(["backup", "--if-older-than", "1h"], env: f.env)
        XCTAssertEqual(skipped.status, 0, skipped.output)
        XCTAssertTrue(skipped.stderr.contains("backup skipped"), skipped.stderr)
        XCTAssertEqual(try f.rowCount(), 3)
        f.env["BACKUP_KEEP_LAST"] = "1"
        let c = try CLI.run(["clean"], env: f.env)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertTrue(c.stdout.contains("keep-last 1") || c.stderr.contains("keep-last 1"), c.output)
        XCTAssertEqual(objects(f.store).count, 1)
        f.env["BACKUP_KEEP_DAILY"] = "zero"
        XCTAssertEqual(try CLI.run(["clean"], env: f.env).status, 2)
    }

    /// Item 4: a downloaded object restores with its metadata file, or with --iv and --tag.
    func testRestoreFromADownloadedFile() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let key = try f.latestKey()
        let dl = try s.sub("downloads")
        let obj = dl.appendingPathComponent("object.enc").path
        try FileManager.default.copyItem(atPath: f.objectPath(key), toPath: obj)
        let noMeta = try CLI.run(
            ["restore", "--from-file", obj, "--output", s.url.appendingPathComponent("a.db").path], env: f.env)
        XCTAssertEqual(noMeta.status, 2, noMeta.output)
        let row = try f.sql("SELECT enc_iv || ' ' || enc_tag FROM backup_files;").trimmingCharacters(in: .newlines)
            .split(separator: " ")
        let r = try CLI.run(
            [
                "restore", "--from-file", obj, "--iv", String(row[0]), "--tag", String(row[1]),
                "--output", s.url.appendingPathComponent("b.db").path
            ], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try SQLiteContent.of(s.url.appendingPathComponent("b.db")), try SQLiteContent.of(f.database))
        try FileManager.default.copyItem(atPath: f.objectPath(key) + ".meta.json", toPath: obj + ".meta.json")
        let m = try CLI.run(["verify", "--from-file", obj], env: f.env)
        XCTAssertEqual(m.status, 0, m.output)
    }

    /// Item 3: where each backup was stored is recorded; restore says so when the settings now
    /// point elsewhere, and names the recorded place when the object is not found.
    func testRestoreNamesWhereABackupWasStored() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let elsewhere = try s.sub("other-store")
        f.env["BACKUP_STORAGE"] = "file://\(elsewhere.path)"
        let r = try CLI.run(["restore", "--output", s.url.appendingPathComponent("r.db").path], env: f.env)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stderr.contains("was stored in file://\(f.store.path)"), r.stderr)
        XCTAssertTrue(
            r.stderr.split(separator: "\n").last!.contains("the catalog recorded it in file://\(f.store.path)"),
            r.stderr)
    }

    /// Item 8: hints that point the right way.
    func testHintsPointTheRightWay() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        // A missing database is a missing database, not a missing catalog table.
        var gone = f.env
        gone["BACKUP_DATABASE"] = s.url.appendingPathComponent("nope.sqlite3").path
        for cmd in ["list", "clean", "backup"] {
            let m = try CLI.run([cmd], env: gone)
            XCTAssertEqual(m.status, 3, "\(cmd): \(m.output)")
            XCTAssertTrue(m.stderr.contains("does not exist"), m.stderr)
            XCTAssertFalse(m.stderr.contains("migrate"), m.stderr)
        }
        // restore of a database that is gone looks in the store, and says what it found.
        let m = try CLI.run(["restore"], env: gone)
        XCTAssertEqual(m.status, 5, m.output)
        XCTAssertFalse(m.stderr.contains("migrate"), m.stderr)
        // A profile's database without the table: the hint names that database.
        let other = s.url.appendingPathComponent("profile.sqlite3").path
        try sh("sqlite3 '\(other)' 'CREATE TABLE t(x);'")
        f.env["BACKUP_DATABASE"] = other
        let t = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(t.status, 8, t.output)
        XCTAssertTrue(t.stderr.contains("laju-backup migrate --database \(other)"), t.stderr)
        // The demo suggests a command that runs as printed.
        let d = try CLI.run(["demo", "--dir", s.url.appendingPathComponent("demo").path, "--rows", "100"], env: [:])
        XCTAssertEqual(d.status, 0, d.output)
        let tryLine = try XCTUnwrap(d.stdout.split(separator: "\n").first { $0.contains("Try:") })
        let command = tryLine.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
        XCTAssertEqual(
            try sh("LAJU_BACKUP_CONFIG= \(command) >/dev/null && echo ran").trimmingCharacters(in: .newlines), "ran")
    }
}
