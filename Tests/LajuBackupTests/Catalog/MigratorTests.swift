import XCTest
@testable import LajuBackup

/// `Migrator` against real SQLite files, checked against knex's captured SQL.
final class MigratorTests: XCTestCase {
    let reference = "knex-backup-files.sql"
    let lajuReference = "knex-backup-files-laju-orig.sql"
    let migrationName = "20250110123456_create_backup_files_table.ts"

    func migrator(
        _ path: String, name: String? = nil, dir: String? = nil, write: Bool = false,
        catalog: String? = nil, now: Int64 = 1_736_512_496_000
    ) -> Migrator {
        Migrator(
            options: .init(
                catalogPath: catalog ?? path, databasePath: path, migrationName: name,
                migrationsDirectory: dir, writeMigration: write, now: { now }))
    }

    /// knex's knex_migrations / knex_migrations_lock DDL and lock row, from the reference file.
    func knexTrackingSQL() throws -> [String] {
        try KnexReference.statements(reference).filter {
            $0.contains("knex_migrations") && !$0.contains("values (?")
                && !$0.hasPrefix("insert into `knex_migrations` (`batch`")
        }
    }

    func testFreshDatabaseGetsKnexDDLAndNoBookkeeping() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path)
        let o = try migrator(path).run()
        XCTAssertEqual(o.action, .created)
        let s = try schema(path)
        let expected = try KnexReference.creates(reference, on: "backup_files").map(KnexReference.asStored)
        XCTAssertEqual(expected.count, 2)
        XCTAssertEqual(s["backup_files"], expected[0])
        XCTAssertEqual(s["backup_files_key_unique"], expected[1])
        XCTAssertNil(s["knex_migrations"], "no knex tables on a database that had none")
        XCTAssertNil(s["knex_migrations_lock"])
        XCTAssertEqual(
            Set(s.keys), ["users", "backup_files", "backup_files_key_unique", "sqlite_autoindex_backup_files_1"])
        // The table is usable by the catalog.
        let c = try Catalog(path: path)
        XCTAssertNoThrow(try c.requireTable())
    }

    func testFreshDatabaseWithNameCreatesKnexTablesExactly() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path)
        let o = try migrator(path, name: migrationName).run()
        XCTAssertEqual(o.action, .createdAndRecorded)
        XCTAssertEqual(o.createdTrackingTables, ["knex_migrations", "knex_migrations_lock"])
        let s = try schema(path)
        for ddl in try KnexReference.statements(reference) where ddl.hasPrefix("create ") {
            let object = ddl.split(separator: "`")[1]
            XCTAssertEqual(s[String(object)], KnexReference.asStored(ddl), "sqlite_master text of \(object)")
        }
        let db = try Database(path: path, mode: .readOnly)
        XCTAssertEqual(
            try db.query("SELECT `index`, is_locked FROM knex_migrations_lock"),
            [["index": .integer(1), "is_locked": .integer(0)]])
        // The row as the reference's example: batch 1, integer epoch ms, the name with extension.
        let rows = try db.query(
            "SELECT id, name, batch, migration_time, typeof(migration_time) AS t FROM knex_migrations")
        XCTAssertEqual(
            rows,
            [
                [
                    "id": .integer(1), "name": .text(migrationName), "batch": .integer(1),
                    "migration_time": .integer(1_736_512_496_000), "t": .text("integer")
                ]
            ])
        let example = try KnexReference.statements(reference).last!
        XCTAssertTrue(example.contains("values (1, 1736512496000, '\(migrationName)')"), example)
    }

    func testKnexAppWithOtherMigrationsGetsNextBatch() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        let tracking = try knexTrackingSQL()
        XCTAssertEqual(tracking.count, 3)
        try makeDatabase(
            path,
            tracking + [
                "insert into `knex_migrations` (`batch`, `migration_time`, `name`) values (1, 1700000000000, '20240101000000_users.ts')",
                "insert into `knex_migrations` (`batch`, `migration_time`, `name`) values (1, 1700000000001, '20240101000001_posts.ts')",
                "insert into `knex_migrations` (`batch`, `migration_time`, `name`) values (2, 1700000100000, '20240201000000_tags.ts')"
            ])
        let before = try schema(path)
        let o = try migrator(path, name: "20250301000000_create_backup_files.ts", now: 1_740_000_000_123).run()
        XCTAssertEqual(o.action, .createdAndRecorded)
        XCTAssertEqual(o.createdTrackingTables, [])
        XCTAssertEqual(o.batch, 3)
        let after = try schema(path)
        XCTAssertEqual(after["knex_migrations"], before["knex_migrations"])
        XCTAssertEqual(after["knex_migrations_lock"], before["knex_migrations_lock"])
        let db = try Database(path: path, mode: .readOnly)
        let last = try db.query("SELECT id, name, batch, migration_time FROM knex_migrations ORDER BY id DESC LIMIT 1")
        XCTAssertEqual(
            last,
            [
                [
                    "id": .integer(4), "name": .text("20250301000000_create_backup_files.ts"), "batch": .integer(3),
                    "migration_time": .integer(1_740_000_000_123)
                ]
            ])
        XCTAssertEqual(
            try db.query("SELECT count(*) AS n, max(is_locked) AS l FROM knex_migrations_lock"),
            [["n": .integer(1), "l": .integer(0)]])
    }

    func testLajuVariantIsAcceptedAndUnchanged() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path, try KnexReference.statements(lajuReference))
        let before = try XCTUnwrap(fileBytes(path))
        let o = try migrator(path).run()
        XCTAssertEqual(o.action, .existing)
        XCTAssertEqual(o.variant, .laju)
        XCTAssertEqual(o.differences, [])
        XCTAssertEqual(fileBytes(path), before, "an existing table means nothing changes")
    }

    func testGuideVariantIsRecognised() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path, try KnexReference.creates(reference, on: "backup_files"))
        let o = try migrator(path, name: migrationName).run()
        XCTAssertEqual(o.action, .existing)
        XCTAssertEqual(o.variant, .guide)
        XCTAssertNil(try schema(path)["knex_migrations"], "an existing table is never recorded")
    }

    func testHeldLockIsRefusedAndNothingChanges() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path, try knexTrackingSQL() + ["update `knex_migrations_lock` set `is_locked` = 1"])
        let before = try XCTUnwrap(fileBytes(path))
        XCTAssertThrowsError(try migrator(path, name: migrationName).run()) { e in
            let err = e as! LajuError
            XCTAssertEqual(err.kind, .busy)
            XCTAssertTrue(err.message.contains("knex_migrations_lock is held"), err.message)
            XCTAssertTrue(err.hint?.contains("migrate:unlock") ?? false)
        }
        XCTAssertEqual(fileBytes(path), before)
        XCTAssertNil(try schema(path)["backup_files"])
    }

    func testKnexAppWithoutNameIsRefusedAndNothingChanges() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path, try knexTrackingSQL())
        let before = try XCTUnwrap(fileBytes(path))
        XCTAssertThrowsError(try migrator(path).run()) { e in
            let err = e as! LajuError
            XCTAssertEqual(err.kind, .catalog)
            XCTAssertEqual(err.kind.exitCode, 8)
            XCTAssertTrue(err.message.contains("managed by knex"), err.message)
            XCTAssertTrue(err.hint?.contains("npx knex migrate:latest") ?? false, err.description)
            XCTAssertTrue(err.hint?.contains("--migrations-dir") ?? false, err.description)
        }
        XCTAssertEqual(fileBytes(path), before)
    }

    func testOtherShapeIsReportedPrecisely() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(
            path,
            [
                "CREATE TABLE backup_files (id varchar(255), key varchar(255) not null, file_name varchar(255), file_size bigint, compression varchar(255), storage varchar(255), checksum varchar(255), uploaded_at bigint, deleted_at bigint, encryption varchar(255), enc_iv varchar(255), owner text not null)"
            ])
        XCTAssertThrowsError(try migrator(path).run()) { e in
            let err = e as! LajuError
            XCTAssertEqual(err.kind, .catalog)
            XCTAssertTrue(err.message.contains("missing column enc_tag"), err.message)
            XCTAssertTrue(err.message.contains("extra column owner"), err.message)
        }
    }

    func testUsableUnknownShapeIsAcceptedWithWarning() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(
            path,
            try KnexReference.creates(reference, on: "backup_files") + ["ALTER TABLE backup_files ADD COLUMN note text"]
        )
        let o = try migrator(path).run()
        XCTAssertEqual(o.action, .existing)
        XCTAssertNil(o.variant)
        XCTAssertEqual(o.differences, ["extra column note"])
        XCTAssertTrue(o.warnings.joined().contains("extra column note"))
    }

    func testMigrationsDirNameIsUsed() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        let dir = t.file("migrations")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["20240101000000_users.ts", "20251023082000_create_backup_files.ts"] {
            _ = FileManager.default.createFile(atPath: dir + "/" + f, contents: Data("// x\n".utf8))
        }
        try makeDatabase(path)
        let o = try migrator(path, dir: dir).run()
        XCTAssertEqual(o.migrationName, "20251023082000_create_backup_files.ts")
        XCTAssertEqual(o.batch, 1)
        XCTAssertNil(o.migrationFile)
    }

    func testWriteMigrationWritesFileMatchingTheRow() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        let dir = t.file("migrations")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir + "/20240101000000_users.ts", contents: Data("// x\n".utf8))
        try makeDatabase(path)
        let o = try migrator(path, dir: dir, write: true).run()
        let file = try XCTUnwrap(o.migrationFile)
        let fileName = file.lastPathComponentOf
        XCTAssertEqual(o.migrationName, fileName)
        XCTAssertTrue(fileName.hasSuffix("_create_backup_files_table.ts"), fileName)
        XCTAssertEqual(fileName.count, "YYYYMMDDHHMMSS_create_backup_files_table.ts".count)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.contains("knex.schema.createTable(\"backup_files\""))
        XCTAssertTrue(text.contains("knex.schema.dropTable(\"backup_files\")"))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir).sorted(),
            ["20240101000000_users.ts", fileName].sorted(),
            "no temp file left in the app's folder")
        let db = try Database(path: path, mode: .readOnly)
        XCTAssertEqual(try db.query("SELECT name FROM knex_migrations"), [["name": .text(fileName)]])
    }

    func testWrittenFileIsRemovedWhenTheLockIsHeld() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        let dir = t.file("migrations")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try makeDatabase(path, try knexTrackingSQL() + ["update `knex_migrations_lock` set `is_locked` = 1"])
        XCTAssertThrowsError(try migrator(path, dir: dir, write: true).run())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testNameWithoutExtensionIsRefused() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path)
        XCTAssertThrowsError(try migrator(path, name: "20250110123456_create_backup_files_table").run()) { e in
            XCTAssertEqual((e as! LajuError).kind, .usage)
        }
        XCTAssertNil(try schema(path)["backup_files"])
    }

    func testSeparateCatalogFileIsCreated() throws {
        let t = try TempDir()
        let db = t.file("app.sqlite3")
        try makeDatabase(db)
        let before = try XCTUnwrap(fileBytes(db))
        let catalog = t.file("catalog.sqlite3")
        let o = try migrator(db, catalog: catalog).run()
        XCTAssertTrue(o.createdCatalogFile)
        XCTAssertEqual(
            try schema(catalog)["backup_files"],
            KnexReference.asStored(try KnexReference.creates(reference, on: "backup_files")[0]))
        XCTAssertEqual(fileBytes(db), before, "the app's database is not touched")
        XCTAssertThrowsError(try migrator(db, name: migrationName, catalog: t.file("other.sqlite3")).run())
    }

    func testMissingAppDatabaseIsNotCreated() throws {
        let t = try TempDir()
        let path = t.file("nope.sqlite3")
        XCTAssertThrowsError(try migrator(path).run()) { e in XCTAssertEqual((e as! LajuError).kind, .source) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }

    func testDroppedTableWithRecordedMigrationIsRecreatedWithoutSecondRow() throws {
        let t = try TempDir()
        let path = t.file("app.sqlite3")
        try makeDatabase(path)
        _ = try migrator(path, name: migrationName).run()
        let db = try Database(path: path, mode: .readWrite)
        try db.execute("DROP TABLE backup_files")
        let o = try migrator(path, name: migrationName).run()
        XCTAssertTrue(o.alreadyRecorded)
        XCTAssertEqual(try db.query("SELECT count(*) AS n FROM knex_migrations"), [["n": .integer(1)]])
        XCTAssertNotNil(try schema(path)["backup_files"])
    }
}
