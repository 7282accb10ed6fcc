import Foundation
import XCTest

/// Rows and objects belong to one database and one prefix: a shared
/// catalog, nested prefixes, rows outside the prefix, rows of the first Laju scripts, bad rows.
final class ScopeTests: XCTestCase {
    /// Two apps (app.sqlite3 with an `items` table, blog.sqlite3 with `posts`) sharing one catalog
    /// file and one local store under the same prefix.
    struct Shared {
        let s: Scratch
        let store: URL
        let catalog: String
        var app: [String: String]
        var blog: [String: String]
        let appDB: URL
        let blogDB: URL

        init(_ s: Scratch) throws {
            self.s = s
            let a = try LocalFixture(scratch: s)
            store = a.store
            appDB = a.database
            blogDB = try s.sub("blog").appendingPathComponent("blog.sqlite3")
            try sh(
                "sqlite3 '\(blogDB.path)' 'PRAGMA journal_mode=wal; CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT); INSERT INTO posts(title) VALUES (\"hello\"), (\"world\");'"
            )
            catalog = s.url.appendingPathComponent("catalog.sqlite3").path
            app = a.env
            app["BACKUP_CATALOG"] = catalog
            blog = app
            blog["BACKUP_DATABASE"] = blogDB.path
            XCTAssertEqual(try CLI.run(["migrate"], env: app).status, 0)
        }

        func rows() throws -> [String] {
            try sh(
                "sqlite3 '\(catalog)' 'SELECT key || \"|\" || ifnull(deleted_at, \"active\") FROM backup_files ORDER BY key'"
            )
            .split(separator: "\n").map(String.init)
        }

        func objects() -> [String] { Scratch.files(in: store).filter { $0.hasSuffix(".enc") } }

        func backup(_ env: [String: String]) throws -> String {
            let r = try CLI.run(["backup", "--json"], env: env)
            XCTAssertEqual(r.status, 0, r.output)
            let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            return try XCTUnwrap(o?["key"] as? String)
        }
    }

    /// Case 2: restore picks this database's newest backup, never another's; retention counts only
    /// this database's backups.
    func testSharedCatalogKeepsDatabasesApart() throws {
        let s = try Scratch()
        let sh_ = try Shared(s)
        let app1 = try sh_.backup(sh_.app)
        let blog1 = try sh_.backup(sh_.blog)
        usleep(5_000)
        let app2 = try sh_.backup(sh_.app)
        XCTAssertTrue(blog1.contains("blog.sqlite3-") && app2.contains("app.sqlite3-"))

        // The newest row is app's: blog's restore must still return blog.
        let out = s.url.appendingPathComponent("blog-restored.db").path
        let r = try CLI.run(["restore", "--output", out], env: sh_.blog)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains(blog1), r.stderr)
        XCTAssertEqual(
            try sh("sqlite3 'file:\(out)?immutable=1' 'SELECT group_concat(title) FROM posts'").trimmingCharacters(
                in: .newlines), "hello,world")

        // keep-last 1 for blog keeps blog's only backup and touches nothing of app's.
        let cb = try CLI.run(["clean", "--keep-last", "1"], env: sh_.blog)
        XCTAssertEqual(cb.status, 0, cb.output)
        XCTAssertEqual(Set(sh_.objects()), [app1, app2, blog1])
        let ca = try CLI.run(["clean", "--keep-last", "1"], env: sh_.app)
        XCTAssertEqual(ca.status, 0, ca.output)
        XCTAssertEqual(Set(sh_.objects()), [app2, blog1])
        XCTAssertEqual(
            try sh_.rows().filter { $0.hasSuffix("|active") }.map { String($0.split(separator: "|")[0]) }.sorted(),
            [app2, blog1].sorted())

        // list shows only this database's rows.
        let l = try CLI.run(["list", "--json"], env: sh_.blog)
        XCTAssertEqual(l.status, 0, l.output)
        let listed =
            ((try JSONSerialization.jsonObject(with: Data(l.stdout.utf8)) as? [String: Any])?["backups"]
            as? [[String: Any]])?.compactMap { $0["key"] as? String }
        XCTAssertEqual(listed, [blog1])
    }

    /// Case 2: a row outside the prefix, and an unnamed row of the first Laju scripts in a shared
    /// catalog, are never deleted nor restored as "latest".
    func testRowsThatCannotBeAttributedAreLeftAlone() throws {
        let s = try Scratch()
        let sh_ = try Shared(s)
        let app1 = try sh_.backup(sh_.app)
        let blog1 = try sh_.backup(sh_.blog)
        let old = Int64(Date().timeIntervalSince1970 * 1000) - 400 * 86_400_000
        let newest = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
        let outside = "elsewhere/app.sqlite3-2025-01-01T00:00-11111111-2222-4333-8444-555555555555.db.gz.enc"
        let unnamed = "backups/2025-01-01T00:00-22222222-2222-4333-8444-555555555555.db.gz.enc"
        // Real objects at both keys (copies of blog's backup), so a deletion would show.
        for key in [outside, unnamed] {
            let dst = sh_.store.appendingPathComponent(key)
            try FileManager.default.createDirectory(
                at: dst.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: sh_.store.appendingPathComponent(blog1), to: dst)
            try FileManager.default.copyItem(
                at: sh_.store.appendingPathComponent(blog1 + ".meta.json"),
                to: URL(fileURLWithPath: dst.path + ".meta.json"))
        }
        try sh(
            """
            sqlite3 '\(sh_.catalog)' "INSERT INTO backup_files SELECT 'out-1', '\(outside)', 'x', file_size, compression, storage, checksum, \(old), NULL, encryption, enc_iv, enc_tag FROM backup_files WHERE key = '\(blog1)';
              INSERT INTO backup_files SELECT 'legacy-1', '\(unnamed)', 'x', file_size, compression, storage, checksum, \(newest), NULL, encryption, enc_iv, enc_tag FROM backup_files WHERE key = '\(blog1)';"
            """)
        // "latest" for app is app's own backup, not the newer unnamed row nor blog's.
        let out = s.url.appendingPathComponent("app-restored.db").path
        let r = try CLI.run(["restore", "--output", out], env: sh_.app)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains(app1), r.stderr)
        // Retention of 1 day would delete the 400-day-old row outside the prefix if it were ours.
        let c = try CLI.run(["clean", "--retention-days", "1"], env: sh_.app)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertTrue(c.stderr.contains("belong to other databases or prefixes"), c.stderr)
        XCTAssertTrue(sh_.objects().contains(outside) && sh_.objects().contains(unnamed))
        XCTAssertTrue(try sh_.rows().contains("\(outside)|active"))
        XCTAssertTrue(try sh_.rows().contains("\(unnamed)|active"))
    }

    /// Case 2: in the database's own catalog (the original layout) an unnamed row is that
    /// database's: it is restored as latest when it is the newest.
    func testUnnamedRowsInTheDatabasesOwnCatalogAreItsOwn() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let key = try f.latestKey()
        let unnamed = "backups/2025-01-01T00:00-33333333-2222-4333-8444-555555555555.db.gz.enc"
        try FileManager.default.copyItem(atPath: f.objectPath(key), toPath: f.objectPath(unnamed))
        try FileManager.default.copyItem(
            atPath: f.objectPath(key) + ".meta.json", toPath: f.objectPath(unnamed) + ".meta.json")
        try f.sql(
            "INSERT INTO backup_files SELECT 'legacy', '\(unnamed)', 'x', file_size, compression, storage, checksum, uploaded_at + 1000, NULL, encryption, enc_iv, enc_tag FROM backup_files WHERE key = '\(key)';"
        )
        let r = try CLI.run(["restore", "--output", s.url.appendingPathComponent("r.db").path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains(unnamed), r.stderr)
    }

    /// Case 3: with `backups/` for one profile and `backups/blog/` for another in one store,
    /// reconciling the first never deletes the second's backups, nor another database's object
    /// directly under its prefix.
    func testNestedPrefixesAreNotOrphans() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let blogDB = try s.sub("blog").appendingPathComponent("blog.sqlite3")
        try sh("sqlite3 '\(blogDB.path)' 'CREATE TABLE posts(id INTEGER PRIMARY KEY);'")
        try sh("sqlite3 '\(blogDB.path)' < '\(LocalFixture.knexDDL.path)'")
        var blog = f.env
        blog["BACKUP_DATABASE"] = blogDB.path
        blog["BACKUP_PREFIX"] = "backups/blog/"
        XCTAssertEqual(try CLI.run(["backup"], env: blog).status, 0)
        let blogKey = try sh("sqlite3 '\(blogDB.path)' 'SELECT key FROM backup_files'").trimmingCharacters(
            in: .newlines)
        XCTAssertTrue(blogKey.hasPrefix("backups/blog/blog.sqlite3-"), blogKey)
        let foreign = "backups/shop.sqlite3-2025-01-01T00:00-44444444-2222-4333-8444-555555555555.db.gz.enc"
        try FileManager.default.copyItem(atPath: f.objectPath(blogKey), toPath: f.objectPath(foreign))
        // Old enough for any grace.
        try sh("find '\(f.store.path)' -type f -exec touch -d '-3 days' {} +")
        let before = Set(Scratch.files(in: f.store))
        let r = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0", "--json"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(Set(Scratch.files(in: f.store)), before, "reconcile of backups/ deleted something not its own")
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((o?["orphan_objects"] as? [Any])?.count, 0, r.stdout)
        XCTAssertEqual(o?["other_objects"] as? Int, 2, r.stdout)
        // list --remote marks them as others' (not orphans).
        let l = try CLI.run(["list", "--remote"], env: f.env)
        XCTAssertEqual(l.status, 0, l.output)
        XCTAssertFalse(l.stdout.contains("orphan"), l.stdout)
    }

    /// Case 5 and 14: rows with an empty, dot-dot or escape-laden key, and rows whose uploaded_at
    /// is text or seconds, are reported by id and skipped the same way by every command; they
    /// never make clean fail, never sort as latest, and never reach the store.
    func testBadRowsAreReportedAndSkippedByEveryCommand() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let good = try f.latestKey()
        let decoy = "backups/app.sqlite3-2025-01-01T00:00-55555555-2222-4333-8444-555555555555.db.gz.enc"
        try Data("not a backup".utf8).write(to: URL(fileURLWithPath: f.objectPath(decoy)))
        let old = Int64(Date().timeIntervalSince1970 * 1000) - 400 * 86_400_000
        try f.sql(
            """
            INSERT INTO backup_files VALUES ('bad-empty', '', 'x', 1, 'gzip', 'local', 'x', \(old), NULL, 'aes-256-gcm', 'iv', 'tag');
            INSERT INTO backup_files VALUES ('bad-dots', 'backups/../escape', 'x', 1, 'gzip', 'local', 'x', \(old), NULL, 'aes-256-gcm', 'iv', 'tag');
            INSERT INTO backup_files VALUES ('bad-esc', 'backups/x' || char(27) || '[2J', 'x', 1, 'gzip', 'local', 'x', \(old), NULL, 'aes-256-gcm', 'iv', 'tag');
            INSERT INTO backup_files VALUES ('bad-text-time', '\(decoy)', 'x', 12, 'gzip', 'local', 'x', 'tomorrow', NULL, 'aes-256-gcm', 'iv', 'tag');
            INSERT INTO backup_files VALUES ('bad-seconds', 'backups/app.sqlite3-2025-01-01T00:00-66666666-2222-4333-8444-555555555555.db.gz.enc', 'x', 1, 'gzip', 'local', 'x', 1700000000, NULL, 'aes-256-gcm', 'iv', 'tag');
            """)
        let storeBefore = Set(Scratch.files(in: f.store))
        // restore: the text uploaded_at row (which SQLite sorts above every number) is not latest.
        let r = try CLI.run(["restore", "--output", s.url.appendingPathComponent("r.db").path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains(good), r.stderr)
        for id in ["bad-empty", "bad-dots", "bad-esc", "bad-text-time", "bad-seconds"] {
            XCTAssertTrue(r.stderr.contains("catalog row \(id) skipped"), "\(id): \(r.stderr)")
        }
        XCTAssertFalse(r.output.contains("\u{1B}"), "a raw escape character reached the output")
        // list: the same rows reported, no 1970 dates, no raw escapes.
        let l = try CLI.run(["list", "--all"], env: f.env)
        XCTAssertEqual(l.status, 0, l.output)
        XCTAssertFalse(l.stdout.contains("1970"), l.stdout)
        XCTAssertFalse(l.output.contains("\u{1B}"), "a raw escape character reached the output")
        XCTAssertTrue(l.stderr.contains("catalog row bad-esc skipped"), l.stderr)
        // clean: succeeds, deletes none of them.
        let c = try CLI.run(["clean", "--retention-days", "1"], env: f.env)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertEqual(Set(Scratch.files(in: f.store)), storeBefore)
        XCTAssertEqual(
            try f.sql("SELECT count(*) FROM backup_files WHERE deleted_at IS NOT NULL;").trimmingCharacters(
                in: .newlines), "0")
        // reconcile: an object a bad row names is never an orphan to delete.
        try sh("touch -d '-3 days' '\(f.objectPath(decoy))'")
        let o = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0"], env: f.env)
        XCTAssertEqual(o.status, 0, o.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.objectPath(decoy)))
        XCTAssertFalse(o.output.contains("\u{1B}"))
        // --key '' is a usage error, before anything else.
        for cmd in ["restore", "verify"] {
            let k = try CLI.run([cmd, "--key", ""], env: f.env)
            XCTAssertEqual(k.status, 2, k.output)
            XCTAssertTrue(k.stderr.contains("the key is empty"), k.stderr)
        }
    }
}
