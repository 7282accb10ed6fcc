import ArgumentParser
import LajuBackup

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the backup_files table the way knex would, without breaking the app's knex migrations.",
        discussion: """
            Touches only the catalog database (the app's database, or the --catalog file):

            - backup_files exists: nothing is changed. Its shape is checked: the guide's schema and \
            Laju's own migration are accepted; anything else is reported column by column.
            - absent, no knex tables, no migration name: creates backup_files and its unique index \
            backup_files_key_unique with knex's exact DDL; knex_migrations is not created.
            - absent, a migration name known (--migration-name, a *_create_backup_files*.ts/.js file \
            in --migrations-dir, or one written there by --write-migration): one BEGIN IMMEDIATE \
            transaction creates knex_migrations and knex_migrations_lock if missing (one lock row, \
            is_locked = 0), refuses if the lock is held (exit 7), creates backup_files and its index, \
            and inserts one knex_migrations row (name with extension, batch = max + 1, \
            migration_time = epoch ms). The lock is never changed.
            - absent, knex tables present, no name: refused (exit 8), nothing written.

            With --catalog FILE the table goes into FILE (created if missing) and knex bookkeeping does \
            not apply. --write-migration writes <YYYYMMDDHHMMSS>_create_backup_files_table.ts into \
            --migrations-dir (never replacing a file), so the folder and knex_migrations agree.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(
        name: .customLong("migration-name"),
        help: ArgumentHelp(
            "Record the table in knex_migrations under this file name (with extension, as in the app's migrations folder).",
            valueName: "name"))
    var migrationName: String?

    @Option(
        name: .customLong("migrations-dir"),
        help: ArgumentHelp(
            "The app's knex migrations folder: use its *_create_backup_files*.ts/.js file name.", valueName: "dir"))
    var migrationsDir: String?

    @Flag(
        name: .customLong("write-migration"),
        help:
            "With --migrations-dir and no such file there: write the guide's migration file into it and record that name."
    )
    var writeMigration = false

    func validate() throws {
        if migrationName != nil && migrationsDir != nil {
            throw ValidationError("--migration-name and --migrations-dir exclude each other")
        }
        if writeMigration && migrationsDir == nil {
            throw ValidationError("--write-migration needs --migrations-dir")
        }
    }

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        let options = Migrator.Options(
            catalogPath: settings.catalogPath,
            databasePath: settings.databasePath,
            migrationName: migrationName, migrationsDirectory: migrationsDir.map(absolutePath),
            writeMigration: writeMigration)
        let o = try Migrator(options: options).run()
        for w in o.warnings { out.warn(w) }
        switch o.action {
        case .existing:
            let shape =
                o.variant.map { $0 == .guide ? "the guide's schema" : "Laju's migration schema" }
                ?? "an unrecognised but usable schema"
            out.log("migrate: backup_files already exists in \(o.catalog) (\(shape)); nothing changed")
            if let n = o.migrationName { out.log("migrate: knex_migrations records it as \(n)") }
        case .created:
            if o.createdCatalogFile { out.log("migrate: created catalog file \(o.catalog)") }
            if o.alreadyRecorded {
                out.log(
                    "migrate: re-created backup_files in \(o.catalog); knex_migrations already records \(o.migrationName ?? "-")"
                )
            } else {
                out.log(
                    "migrate: created backup_files and index backup_files_key_unique in \(o.catalog) (knex's DDL); nothing recorded in knex_migrations"
                )
            }
        case .createdAndRecorded:
            if let f = o.migrationFile { out.log("migrate: wrote \(f)") }
            if !o.createdTrackingTables.isEmpty {
                out.log(
                    "migrate: created \(o.createdTrackingTables.joined(separator: " and ")) (knex's DDL, lock at 0)")
            }
            out.log(
                "migrate: created backup_files and index backup_files_key_unique in \(o.catalog); recorded \(o.migrationName ?? "-") in knex_migrations (batch \(o.batch ?? 0))"
            )
        }
        if common.json { out.printJSON(o) }
    }
}
