/// `laju-backup migrate`: creates `backup_files` the way knex would, so the app's next
/// `knex migrate:latest` neither re-creates it ("table already exists"), nor finds a row naming a
/// file its folder lacks ("migration directory is corrupt"), nor finds its lock held.
///
/// Cases, decided before anything is written:
/// - the table exists: nothing changes; the shape is checked against both known variants;
/// - absent, no knex tables, no name: the table and its index are created with knex's DDL,
///   nothing is recorded;
/// - absent, a name known (`--migration-name`, or found/written in `--migrations-dir`): one
///   `BEGIN IMMEDIATE` transaction creates knex's tracking tables if missing (one lock row at 0),
///   refuses if the lock is held, creates the table and index and inserts the `knex_migrations`
///   row (batch = max + 1, or 1; `migration_time` = integer epoch ms). The lock is never flipped;
/// - absent, knex tables present, no name: refused (exit 8), nothing written.
public struct Migrator {
    public struct Options: Sendable {
        public var catalogPath: String
        /// The app's database: when the catalog is the database itself, a missing file is an
        /// error (we never create an empty app database); a separate catalog file is created.
        public var databasePath: String
        public var migrationName: String?
        public var migrationsDirectory: String?
        public var writeMigration: Bool
        /// Clock for `migration_time` and the written file's timestamp (ms since the epoch).
        public var now: @Sendable () -> Int64

        public init(
            catalogPath: String, databasePath: String, migrationName: String? = nil,
            migrationsDirectory: String? = nil, writeMigration: Bool = false,
            now: @escaping @Sendable () -> Int64 = { LocalTime.nowMilliseconds() }
        ) {
            self.catalogPath = catalogPath
            self.databasePath = databasePath
            self.migrationName = migrationName
            self.migrationsDirectory = migrationsDirectory
            self.writeMigration = writeMigration
            self.now = now
        }
    }

    public struct Outcome: Codable, Sendable {
        public enum Action: String, Codable, Sendable {
            /// The table was there; nothing changed.
            case existing
            /// Created with knex's DDL; no knex bookkeeping touched.
            case created
            /// Created and recorded in knex_migrations.
            case createdAndRecorded = "created-and-recorded"
        }
        public var action: Action
        public var catalog: String
        public var createdCatalogFile = false
        /// For an existing table: the variant it matched, else nil (see `differences`).
        public var variant: SchemaVariant?
        public var differences: [String] = []
        public var migrationName: String?
        public var batch: Int64?
        public var migrationTime: Int64?
        /// knex_migrations / knex_migrations_lock created by this run.
        public var createdTrackingTables: [String] = []
        /// The migration file written by `--write-migration`.
        public var migrationFile: String?
        /// True when knex_migrations already named the migration (the table had been dropped by
        /// hand): the table was re-created and no second row added.
        public var alreadyRecorded = false
        /// Warnings for the operator (a table knex does not know about, say).
        public var warnings: [String] = []
    }

    public static let migrationsTable = "knex_migrations"
    public static let lockTable = "knex_migrations_lock"
    /// Extensions knex loads that a hand-named migration may carry.
    static let extensions = [".ts", ".js", ".cjs", ".mjs"]

    public let options: Options
    public init(options: Options) { self.options = options }

    public func run() throws -> Outcome {
        let path = options.catalogPath
        let separate = path != options.databasePath
        if separate && (options.migrationName != nil || options.migrationsDirectory != nil) {
            throw LajuError(
                .usage,
                "--migration-name/--migrations-dir record the table in the app's knex_migrations, but the catalog is a separate file (\(path)) that knex never reads",
                hint:
                    "drop those options to create the table in \(path), or drop --catalog to keep it in the app's database"
            )
        }
        if let n = options.migrationName { try Self.validate(name: n) }

        var createdFile = false
        if access(path, F_OK) != 0 {
            guard separate else {
                throw LajuError(
                    .source, "database \(path) does not exist",
                    hint: "check --database / BACKUP_DATABASE (migrate never creates an app database)")
            }
            createdFile = true
        }
        let db: Database
        do {
            db = try Database(path: path, mode: createdFile ? [.readWrite, .create] : .readWrite)
        } catch let e as CError {
            throw LajuError(.catalog, "cannot open \(path): \(e.message)")
        }
        var outcome = try wrap(path) { try inspectExisting(db) }
        if let existing = outcome {
            return existing
        }
        outcome = Outcome(action: .created, catalog: path, createdCatalogFile: createdFile)

        // Decide the migration name before writing anything.
        let (name, fileToWrite) = try migrationName(warnings: &outcome!.warnings)

        let knexTables = try wrap(path) { try tableNames(db) }.intersection([Self.migrationsTable, Self.lockTable])
        guard let name else {
            if !knexTables.isEmpty {
                throw LajuError(
                    .catalog,
                    "\(path) is managed by knex (it has \(knexTables.sorted().joined(separator: ", "))) and no migration name is known, so creating backup_files now would make the app's next `knex migrate:latest` fail",
                    hint:
                        "either add the backup_files migration to the app and run `npx knex migrate:latest`, or run `laju-backup migrate --migrations-dir <app>/migrations [--write-migration]` (or --migration-name <file name with extension>) so the table and its knex_migrations row are created together"
                )
            }
            try wrap(path) {
                try transaction(db) {
                    try db.execute(KnexSchema.createBackupFiles)
                    try db.execute(KnexSchema.createBackupFilesKeyIndex)
                }
            }
            return outcome!
        }

        // Write the migration file first (durably): a folder file without a row is harmless
        // (knex would run it and create the table); a row without its file is not.
        var written: String?
        if let f = fileToWrite {
            try Self.writeDurably(f.text, to: f.path)
            written = f.path
        }
        do {
            try wrap(path) {
                try transaction(db) {
                    try recordedCreate(db, name: name, outcome: &outcome!)
                }
            }
        } catch {
            if let written { unlink(written) }
            throw error
        }
        outcome!.migrationFile = written
        return outcome!
    }

    /// The knex migration that records the table: `--migration-name`, the one found in
    /// `--migrations-dir`, or the file `--write-migration` will write there (returned too); nil
    /// when no name is known.
    func migrationName(warnings: inout [String]) throws -> (String?, (path: String, text: String)?) {
        guard let dir = options.migrationsDirectory else {
            if options.writeMigration {
                throw LajuError(
                    .usage, "--write-migration needs --migrations-dir DIR (the app's knex migrations folder)")
            }
            return (options.migrationName, nil)
        }
        if let found = try Self.findMigration(in: dir) {
            if options.writeMigration { warnings.append("\(dir)/\(found) already exists; not writing another") }
            return (found, nil)
        }
        guard options.writeMigration else {
            throw LajuError(
                .usage, "no *_create_backup_files*.ts or .js migration in \(dir)",
                hint: "pass --write-migration to write one there (and record it), or --migration-name NAME")
        }
        let file = try Self.migrationFile(in: dir, now: options.now())
        return (file.path.lastPathComponentOf, file)
    }

    /// The table exists: report its shape and what knex knows; change nothing.
    func inspectExisting(_ db: Database) throws -> Outcome? {
        guard let check = try SchemaCheck.check(db) else { return nil }
        var o = Outcome(
            action: .existing, catalog: options.catalogPath, variant: check.variant, differences: check.differences)
        guard check.isUsable else {
            throw LajuError(
                .catalog,
                "table backup_files in \(options.catalogPath) has an unexpected shape: \(check.blocking.joined(separator: "; "))",
                hint: "compare it with the app's migration; laju-backup needs the twelve columns of the Laju format")
        }
        if !check.differences.isEmpty {
            o.warnings.append(
                "backup_files matches neither known schema (\(check.differences.joined(separator: "; "))); it is usable, nothing was changed"
            )
        }
        let names = try tableNames(db)
        if names.contains(Self.migrationsTable) {
            let rows = try db.query(
                "SELECT name FROM knex_migrations WHERE name LIKE '%create_backup_files%' ORDER BY id")
            if let n = rows.first?["name"]?.string {
                o.migrationName = n
            } else {
                o.warnings.append(
                    "knex_migrations names no *create_backup_files* migration: if the app's migrations folder has one, its next `knex migrate:latest` will fail with \"table already exists\""
                )
            }
        }
        return o
    }

    /// Inside the transaction: knex's tracking tables, the lock check, the table, the row.
    func recordedCreate(_ db: Database, name: String, outcome: inout Outcome) throws {
        let names = try tableNames(db)
        if names.contains(Catalog.table) {
            throw LajuError(
                .busy, "backup_files appeared while migrate was starting (another migration running?)",
                hint: "run migrate again")
        }
        // knex creates knex_migrations, then the lock table with its single row at 0.
        if !names.contains(Self.migrationsTable) {
            try db.execute(KnexSchema.createMigrations)
            outcome.createdTrackingTables.append(Self.migrationsTable)
        }
        if !names.contains(Self.lockTable) {
            try db.execute(KnexSchema.createMigrationsLock)
            outcome.createdTrackingTables.append(Self.lockTable)
        }
        let locks = try db.query("SELECT is_locked FROM knex_migrations_lock")
        if locks.contains(where: { ($0["is_locked"]?.int64 ?? 0) != 0 }) {
            throw LajuError(
                .busy,
                "knex_migrations_lock is held (is_locked = 1) in \(options.catalogPath): a knex migration is running or one crashed; nothing was changed",
                hint:
                    "wait for it, or if none is running release it with `npx knex migrate:unlock`, then run migrate again"
            )
        }
        if locks.isEmpty {
            // What knex itself does when the lock table has no row.
            try db.execute(KnexSchema.insertLockRow)
        }
        try db.execute(KnexSchema.createBackupFiles)
        try db.execute(KnexSchema.createBackupFilesKeyIndex)
        let prior = try db.query("SELECT batch FROM knex_migrations WHERE name = ? ORDER BY id LIMIT 1", [.text(name)])
        if let row = prior.first {
            outcome.alreadyRecorded = true
            outcome.batch = row["batch"]?.int64
            outcome.migrationName = name
            outcome.action = .created
            outcome.warnings.append(
                "knex_migrations already records \(name); the table was re-created and no second row added")
            return
        }
        let batch = (try db.query("SELECT max(batch) AS b FROM knex_migrations").first?["b"]?.int64 ?? 0) + 1
        let time = options.now()
        try db.query(
            "insert into `knex_migrations` (`batch`, `migration_time`, `name`) values (?, ?, ?)",
            [.integer(batch), .integer(time), .text(name)])
        outcome.action = .createdAndRecorded
        outcome.migrationName = name
        outcome.batch = batch
        outcome.migrationTime = time
    }

    func tableNames(_ db: Database) throws -> Set<String> {
        Set(try db.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0["name"]?.string })
    }

    func transaction(_ db: Database, _ body: () throws -> Void) throws {
        try db.execute("BEGIN IMMEDIATE")
        do {
            try body()
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    func wrap<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as CError {
            if e.status == .busy {
                throw LajuError(
                    .busy, "\(path) is locked by another connection: \(e.message)",
                    hint: "try again when the app's write finished")
            }
            throw LajuError(.catalog, "\(path): \(e.message)")
        }
    }

    // MARK: migration names and files

    /// knex records the file name with its extension; anything else breaks `migrate:latest`.
    static func validate(name: String) throws {
        guard !name.contains("/"), extensions.contains(where: { name.hasSuffix($0) && name.count > $0.count }) else {
            throw LajuError(
                .usage,
                "migration name \(name) must be the migration's file name with its extension, as in the app's migrations folder",
                hint: "e.g. --migration-name 20250110123456_create_backup_files_table.ts")
        }
    }

    /// The single `*_create_backup_files*.{ts,js}` file in `dir`, if any.
    static func findMigration(in dir: String) throws -> String? {
        let entries: [String]
        do { entries = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw LajuError(.usage, "cannot read migrations folder \(dir): \(error)")
        }
        let hits = entries.filter { n in
            !n.hasPrefix(".") && (n.hasSuffix(".ts") || n.hasSuffix(".js")) && !n.hasSuffix(".d.ts")
                && n.split(separator: "_", maxSplits: 1).count == 2 && n.contains("_create_backup_files")
        }.sorted()
        if hits.count > 1 {
            throw LajuError(
                .usage, "\(dir) has several backup_files migrations: \(hits.joined(separator: ", "))",
                hint: "pass the one knex should see with --migration-name")
        }
        return hits.first
    }

    /// `<YYYYMMDDHHMMSS>_create_backup_files_table.ts` (local time, as `knex migrate:make`), or
    /// `.js` when the folder holds only JavaScript migrations.
    static func migrationFile(in dir: String, now: Int64) throws -> (path: String, text: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let jsOnly = entries.contains { $0.hasSuffix(".js") } && !entries.contains { $0.hasSuffix(".ts") }
        var t = time_t(now / 1000)
        var tm = tm()
        localtime_r(&t, &tm)
        let p = LocalTime.pad
        let stamp =
            "\(p(Int(tm.tm_year) + 1900, 4))\(p(Int(tm.tm_mon) + 1, 2))\(p(Int(tm.tm_mday), 2))\(p(Int(tm.tm_hour), 2))\(p(Int(tm.tm_min), 2))\(p(Int(tm.tm_sec), 2))"
        let name = "\(stamp)_create_backup_files_table.\(jsOnly ? "js" : "ts")"
        return ("\(dir.hasSuffix("/") ? String(dir.dropLast()) : dir)/\(name)", jsOnly ? migrationJS : migrationTS)
    }

    /// The guide's column definitions, shared by the TypeScript and CommonJS files.
    static let columnBuilders = """
            table.string("id").primary();
            table.string("key").notNullable().unique();
            table.string("file_name").notNullable();
            table.bigInteger("file_size").notNullable();
            table.string("compression").notNullable();
            table.string("storage").notNullable();
            table.string("checksum").notNullable();
            table.bigInteger("uploaded_at").notNullable();
            table.bigInteger("deleted_at").nullable();
            table.string("encryption").notNullable();
            table.string("enc_iv").notNullable();
            table.string("enc_tag").notNullable();
        """

    /// The guide's migration, verbatim.
    public static let migrationTS = """
        import { Knex } from "knex";

        export async function up(knex: Knex): Promise<void> {
          await knex.schema.createTable("backup_files", (table) => {
        \(columnBuilders)
          });
        }

        export async function down(knex: Knex): Promise<void> {
          await knex.schema.dropTable("backup_files");
        }

        """

    /// The same migration for apps whose migrations are CommonJS.
    public static let migrationJS = """
        /** @param {import("knex").Knex} knex */
        exports.up = function (knex) {
          return knex.schema.createTable("backup_files", (table) => {
        \(columnBuilders)
          });
        };

        /** @param {import("knex").Knex} knex */
        exports.down = function (knex) {
          return knex.schema.dropTable("backup_files");
        };

        """

    /// Temp file, fsync, rename without replacing, fsync the folder.
    static func writeDurably(_ text: String, to path: String) throws {
        let dir = path.deletingLastPathComponent
        let tmp = "\(dir)/.\(path.lastPathComponentOf).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LajuError(.local, "cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var off = 0
        var ok = true
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 { if errno == EINTR { continue }; ok = false; break }
            off += n
        }
        ok = ok && fsync(fd) == 0
        let e = errno
        close(fd)
        // link() fails if the target exists: never replace a file in the app's folder.
        guard ok, link(tmp, path) == 0 else {
            let err = ok ? errno : e
            unlink(tmp)
            throw LajuError(.local, "cannot write \(path): \(String(cString: strerror(err)))")
        }
        unlink(tmp)
        try? cFsyncDirectory(dir)
    }
}
