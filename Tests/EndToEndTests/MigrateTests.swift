import Foundation
import XCTest

/// `laju-backup migrate` through the binary, checked with the sqlite3 CLI against knex's SQL.
final class MigrateTests: XCTestCase {
    static var referenceDir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LajuBackupTests/Resources/knex")
    }
    static var reference: URL { referenceDir.appendingPathComponent("knex-backup-files.sql") }
    static var lajuReference: URL { referenceDir.appendingPathComponent("knex-backup-files-laju-orig.sql") }

    /// Statements of a reference file that match `filter`, one per line, as SQLite stores them.
    func stored(_ file: URL, _ filter: (String) -> Bool) throws -> [String] {
        try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("create ") && filter($0) }
            .map { line in
                var s = String(line.dropLast())  // the ';'
                for kw in ["create table ", "create unique index ", "create index "] where s.hasPrefix(kw) {
                    s = kw.uppercased() + s.dropFirst(kw.count)
                }
                return s
            }
    }

    func app(_ s: Scratch, _ extraSQL: String = "") throws -> URL {
        let db = s.url.appendingPathComponent("app.sqlite3")
        try sh(
            "sqlite3 '\(db.path)' \"PRAGMA journal_mode=wal; CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ann');\(extraSQL)\" >/dev/null"
        )
        return db
    }

    func knexTrackingSQL() throws -> String {
        try String(contentsOf: Self.reference, encoding: .utf8).split(separator: "\n")
            .filter {
                ($0.hasPrefix("create table `knex_migrations") || $0.hasPrefix("insert into `knex_migrations_lock`"))
            }
            .joined(separator: "\n")
    }

    func sqlite(_ db: URL, _ sql: String) throws -> String {
        try sh("sqlite3 '\(db.path)' \"\(sql)\"")
    }

    func testFreshDatabaseMatchesKnex() throws {
        let s = try Scratch()
        let db = try app(s)
        let r = try CLI.run(["migrate", "--database", db.path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("created backup_files"), r.stderr)
        XCTAssertTrue(r.stderr.contains("nothing recorded in knex_migrations"), r.stderr)
        let master = try sqlite(
            db, "SELECT sql FROM sqlite_master WHERE tbl_name = 'backup_files' AND sql IS NOT NULL ORDER BY rowid")
        let expected = try stored(Self.reference) { $0.contains("`backup_files`") }
        XCTAssertEqual(master, expected.joined(separator: "\n") + "\n")
        XCTAssertEqual(try sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'knex%'"), "0\n")
        // Running it again changes nothing and says so.
        let again = try CLI.run(["migrate", "--database", db.path])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.stderr.contains("already exists") && again.stderr.contains("nothing changed"), again.stderr)
        XCTAssertTrue(again.stderr.contains("the guide's schema"), again.stderr)
    }

    func testKnexAppWithMigrationsDirWritesFileAndNextBatch() throws {
        let s = try Scratch()
        let db = try app(s)
        try sh(
            "sqlite3 '\(db.path)' < /dev/stdin <<'SQL'\n\(try knexTrackingSQL())\ninsert into `knex_migrations` (`batch`, `migration_time`, `name`) values (1, 1700000000000, '20240101000000_users.ts');\ninsert into `knex_migrations` (`batch`, `migration_time`, `name`) values (2, 1700000100000, '20240201000000_posts.ts');\nSQL"
        )
        let dir = try s.sub("migrations")
        try "export async function up() {}\n".write(
            to: dir.appendingPathComponent("20240101000000_users.ts"), atomically: true, encoding: .utf8)
        try "export async function up() {}\n".write(
            to: dir.appendingPathComponent("20240201000000_posts.ts"), atomically: true, encoding: .utf8)
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let r = try CLI.run([
            "migrate", "--database", db.path, "--migrations-dir", dir.path, "--write-migration", "--json"
        ])
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        XCTAssertEqual(r.status, 0, r.output)
        let files = Scratch.files(in: dir)
        XCTAssertEqual(files.count, 3, "\(files)")
        let written = try XCTUnwrap(files.first { $0.contains("_create_backup_files_table.ts") })
        XCTAssertTrue(r.stderr.contains("wrote \(dir.path)/\(written)"), r.stderr)
        let row = try sqlite(
            db,
            "SELECT name, batch, typeof(migration_time), migration_time FROM knex_migrations ORDER BY id DESC LIMIT 1")
        let parts = row.trimmingCharacters(in: .newlines).split(separator: "|").map(String.init)
        XCTAssertEqual(Array(parts.prefix(3)), [written, "3", "integer"])
        let time = try XCTUnwrap(Int64(parts[3]))
        XCTAssertTrue(time >= before && time <= after, "\(time) not in [\(before), \(after)]")
        XCTAssertEqual(try sqlite(db, "SELECT count(*), sum(is_locked) FROM knex_migrations_lock"), "1|0\n")
        let master = try sqlite(
            db, "SELECT sql FROM sqlite_master WHERE tbl_name = 'backup_files' AND sql IS NOT NULL ORDER BY rowid")
        XCTAssertEqual(
            master, try stored(Self.reference) { $0.contains("`backup_files`") }.joined(separator: "\n") + "\n")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["action"] as? String, "created-and-recorded")
        XCTAssertEqual(json["batch"] as? Int, 3)
    }

    func testNameOnFreshDatabaseCreatesKnexTablesAsKnexDoes() throws {
        let s = try Scratch()
        let db = try app(s)
        let r = try CLI.run([
            "migrate", "--database", db.path, "--migration-name", "20250110123456_create_backup_files_table.ts"
        ])
        XCTAssertEqual(r.status, 0, r.output)
        let master = try sqlite(
            db,
            "SELECT sql FROM sqlite_master WHERE (name LIKE 'knex%' OR tbl_name = 'backup_files') AND sql IS NOT NULL ORDER BY rowid"
        )
        // knex's order: its tracking tables first, then the migration's table and index.
        XCTAssertEqual(master, try stored(Self.reference) { _ in true }.joined(separator: "\n") + "\n")
        XCTAssertEqual(
            try sqlite(db, "SELECT name, batch FROM knex_migrations"), "20250110123456_create_backup_files_table.ts|1\n"
        )
        XCTAssertEqual(try sqlite(db, "SELECT \\`index\\`, is_locked FROM knex_migrations_lock"), "1|0\n")
    }

    func testLajuVariantIsAcceptedUnchanged() throws {
        let s = try Scratch()
        let db = try app(s)
        try sh("sqlite3 '\(db.path)' < '\(Self.lajuReference.path)'")
        let before = try sh("sha256sum '\(db.path)'; sqlite3 '\(db.path)' .dump")
        let r = try CLI.run([
            "migrate", "--database", db.path, "--migration-name", "20251023082000_create_backup_files.ts"
        ])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("Laju's migration schema"), r.stderr)
        XCTAssertTrue(r.stderr.contains("nothing changed"), r.stderr)
        XCTAssertEqual(try sh("sha256sum '\(db.path)'; sqlite3 '\(db.path)' .dump"), before)
        let master = try sqlite(
            db, "SELECT sql FROM sqlite_master WHERE tbl_name = 'backup_files' AND sql IS NOT NULL ORDER BY rowid")
        XCTAssertEqual(master, try stored(Self.lajuReference) { _ in true }.joined(separator: "\n") + "\n")
    }

    func testHeldLockIsRefusedAndNothingChanges() throws {
        let s = try Scratch()
        let db = try app(s)
        try sh(
            "sqlite3 '\(db.path)' <<'SQL'\n\(try knexTrackingSQL())\nupdate knex_migrations_lock set is_locked = 1;\nSQL"
        )
        let before = try sh("sqlite3 '\(db.path)' .dump")
        let r = try CLI.run([
            "migrate", "--database", db.path, "--migration-name", "20250110123456_create_backup_files_table.ts"
        ])
        XCTAssertEqual(r.status, 7, r.output)
        XCTAssertTrue(r.stderr.contains("knex_migrations_lock is held"), r.stderr)
        XCTAssertTrue(r.stderr.contains("npx knex migrate:unlock"), r.stderr)
        XCTAssertEqual(try sh("sqlite3 '\(db.path)' .dump"), before)
    }

    func testKnexAppWithoutNameIsRefused() throws {
        let s = try Scratch()
        let db = try app(s)
        try sh("sqlite3 '\(db.path)' <<'SQL'\n\(try knexTrackingSQL())\nSQL")
        let before = try sh("sqlite3 '\(db.path)' .dump")
        let r = try CLI.run(["migrate", "--database", db.path])
        XCTAssertEqual(r.status, 8, r.output)
        XCTAssertTrue(r.stderr.contains("managed by knex"), r.stderr)
        XCTAssertTrue(r.stderr.contains("npx knex migrate:latest"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--migrations-dir"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one clear line: \(r.stderr)")
        XCTAssertEqual(try sh("sqlite3 '\(db.path)' .dump"), before)
    }

    func testSeparateCatalogThenBackupWorks() throws {
        let s = try Scratch()
        let db = try app(s)
        let catalog = s.url.appendingPathComponent("catalog/catalog.sqlite3")
        try FileManager.default.createDirectory(
            at: catalog.deletingLastPathComponent(), withIntermediateDirectories: true)
        let store = try s.sub("store"), tmp = try s.sub("tmp")
        let key = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
        let env = [
            "BACKUP_DATABASE": db.path, "BACKUP_CATALOG": catalog.path, "BACKUP_STORAGE": "file://\(store.path)",
            "BACKUP_ENCRYPTION_KEY": key, "BACKUP_TMPDIR": tmp.path
        ]
        // Before migrate, backup fails early and points at migrate.
        let early = try CLI.run(["backup"], env: env)
        XCTAssertEqual(early.status, 8, early.output)
        XCTAssertTrue(early.stderr.contains("laju-backup migrate"), early.stderr)
        XCTAssertEqual(Scratch.files(in: store), [])
        let before = try sh("sqlite3 '\(db.path)' .dump")
        let m = try CLI.run(["migrate"], env: env)
        XCTAssertEqual(m.status, 0, m.output)
        XCTAssertTrue(m.stderr.contains("created catalog file \(catalog.path)"), m.stderr)
        XCTAssertEqual(try sh("sqlite3 '\(db.path)' .dump"), before, "the app's database is not altered")
        let b = try CLI.run(["backup"], env: env)
        XCTAssertEqual(b.status, 0, b.output)
        XCTAssertEqual(try sqlite(catalog, "SELECT count(*) FROM backup_files"), "1\n")
    }

    func testBadNameAndOptionCombinationsAreUsageErrors() throws {
        let s = try Scratch()
        let db = try app(s)
        let noExt = try CLI.run([
            "migrate", "--database", db.path, "--migration-name", "20250110123456_create_backup_files_table"
        ])
        XCTAssertEqual(noExt.status, 2, noExt.output)
        XCTAssertTrue(noExt.stderr.contains("with its extension"), noExt.stderr)
        let both = try CLI.run([
            "migrate", "--database", db.path, "--migration-name", "a_create_backup_files.ts", "--migrations-dir", s.path
        ])
        XCTAssertEqual(both.status, 2, both.output)
        let missingDir = try CLI.run([
            "migrate", "--database", db.path, "--migrations-dir", s.url.appendingPathComponent("nope").path
        ])
        XCTAssertEqual(missingDir.status, 2, missingDir.output)
        XCTAssertEqual(try sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name = 'backup_files'"), "0\n")
    }
}
