/// The `backup_files` table, in the application's own SQLite database (as the original) or in
/// a separate catalog file (`--catalog`). Reads and writes rows; never changes the schema
/// (that is `Migrator`'s job).
public final class Catalog {
    public static let table = "backup_files"
    public let path: String
    let db: Database
    /// The `migrate` command that creates the table for these settings (shown in hints).
    public var migrateCommand = "laju-backup migrate"

    /// Opens an existing database; never creates one. `busyTimeoutMilliseconds` is how long to
    /// wait for the application's write lock (backup passes BACKUP_BUSY_TIMEOUT).
    public init(path: String, readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 5000) throws {
        guard access(path, F_OK) == 0 else {
            throw LajuError(
                .catalog, "catalog database \(path) does not exist",
                hint: "run `laju-backup migrate` to create it, or fix --catalog / BACKUP_CATALOG")
        }
        do {
            db = try Database(
                path: path, mode: readOnly ? .readOnly : .readWrite, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        } catch let e as CError {
            throw LajuError(.catalog, "cannot open catalog \(path): \(e.message)")
        }
        self.path = path
    }

    public func hasTable() throws -> Bool {
        try wrap {
            try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(Self.table)]).isEmpty
        }
    }

    /// Fails with a clear message when the table is absent or cannot hold our rows: the first
    /// thing `backup` checks, before any temp file exists. Reading commands pass
    /// `forWriting: false`, which only needs the twelve columns to exist.
    public func requireTable(forWriting: Bool = true) throws {
        guard try hasTable() else {
            throw LajuError(
                .catalog, "table backup_files does not exist in \(path)",
                hint: "run `\(migrateCommand)` (or the app's knex migration) first")
        }
        let check = try wrap { try SchemaCheck.check(db) }
        guard let check else { return }
        let blocking = forWriting ? check.blocking : check.blocking.filter { $0.hasPrefix("missing column") }
        if !blocking.isEmpty {
            throw LajuError(
                .catalog, "table backup_files in \(path) has an unexpected shape: \(blocking.joined(separator: "; "))",
                hint: "compare it with the app's migration; laju-backup needs the twelve columns of the Laju format")
        }
    }

    /// Our own table beside `backup_files`: where each backup was stored (the store as
    /// `ObjectStore.displayName`, e.g. `s3://bucket/ at https://host`), so that a restore can say
    /// so when the settings now point elsewhere. knex ignores tables it did not create.
    public static let locationsTable = "laju_backup_locations"

    /// Inserts the row and, when `location` is given, records where its object lives, in one
    /// transaction: both or neither.
    public func insert(_ r: BackupRecord, location: String? = nil) throws {
        guard let location else { return try insertRow(r) }
        try wrap {
            try db.execute("BEGIN IMMEDIATE")
            do {
                try db.execute(
                    "CREATE TABLE IF NOT EXISTS \(Self.locationsTable) (key TEXT PRIMARY KEY, store TEXT NOT NULL, recorded_at INTEGER NOT NULL)"
                )
                try insertRow(r)
                try db.query(
                    "INSERT OR REPLACE INTO \(Self.locationsTable) (key, store, recorded_at) VALUES (?, ?, ?)",
                    [.text(r.key), .text(location), .integer(LocalTime.nowMilliseconds())])
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// Our own table of successful verifications (`verify`, the weekly drill), so that `status` can
    /// name the newest backup known to restore.
    public static let verificationsTable = "laju_backup_verifications"

    /// Records that `key` restored and passed `check` at `ms`.
    public func recordVerification(key: String, at ms: Int64, check: String) throws {
        try wrap {
            try db.execute(
                "CREATE TABLE IF NOT EXISTS \(Self.verificationsTable) (key TEXT PRIMARY KEY, verified_at INTEGER NOT NULL, check_level TEXT NOT NULL)"
            )
            try db.query(
                "INSERT OR REPLACE INTO \(Self.verificationsTable) (key, verified_at, check_level) VALUES (?, ?, ?)",
                [.text(key), .integer(ms), .text(check)])
        }
    }

    /// When each key last verified (milliseconds), for the keys this catalog has a record of.
    public func verifications() -> [String: Int64] {
        guard let rows = try? db.query("SELECT key, verified_at FROM \(Self.verificationsTable)") else { return [:] }
        var out: [String: Int64] = [:]
        for r in rows {
            if let k = r["key"]?.string, let t = r["verified_at"]?.int64 { out[k] = t }
        }
        return out
    }

    /// Where `key` was stored when it was made, if this catalog recorded it.
    public func location(key: String) -> String? {
        guard let rows = try? db.query("SELECT store FROM \(Self.locationsTable) WHERE key = ?", [.text(key)]) else {
            return nil
        }
        return rows.first?["store"]?.string
    }

    func insertRow(_ r: BackupRecord) throws {
        _ = try wrap {
            try db.query(
                """
                INSERT INTO backup_files (id, key, file_name, file_size, compression, storage, checksum,
                  uploaded_at, deleted_at, encryption, enc_iv, enc_tag)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(r.id), .text(r.key), .text(r.fileName), .integer(r.fileSize), .text(r.compression),
                    .text(r.storage), .text(r.checksum), .integer(r.uploadedAt),
                    r.deletedAt.map { .integer($0) } ?? .null, .text(r.encryption), .text(r.encIV), .text(r.encTag)
                ])
        }
    }

    /// Every row, checked one by one (`BackupRecord.decode`), newest first. Rows that cannot be
    /// trusted come back in `bad`, so every command skips the same rows and can say which.
    public func scan(includeDeleted: Bool = true) throws -> CatalogScan {
        let rows = try wrap {
            try db.query(
                """
                SELECT id, key, file_name, file_size, compression, storage, checksum, uploaded_at,
                  deleted_at, encryption, enc_iv, enc_tag FROM backup_files
                """ + (includeDeleted ? "" : " WHERE deleted_at IS NULL"))
        }
        var scan = CatalogScan(records: [], bad: [])
        for row in rows {
            switch BackupRecord.decode(row) {
            case .success(let r): scan.records.append(r)
            case .failure(let bad): scan.bad.append(bad)
            }
        }
        // Sorted here, not in SQL: SQLite orders a text uploaded_at above every number.
        scan.records.sort { ($0.uploadedAt, $0.key) > ($1.uploadedAt, $1.key) }
        return scan
    }

    /// The row for `key`, deleted or not; a row that fails the checks is an error naming it.
    public func record(key: String) throws -> BackupRecord? {
        let rows = try wrap {
            try db.query(
                """
                SELECT id, key, file_name, file_size, compression, storage, checksum, uploaded_at,
                  deleted_at, encryption, enc_iv, enc_tag FROM backup_files WHERE key = ? LIMIT 1
                """, [.text(key)])
        }
        guard let row = rows.first else { return nil }
        switch BackupRecord.decode(row) {
        case .success(let r): return r
        case .failure(let bad):
            throw LajuError(
                .catalog,
                "catalog row \(Display.safe(bad.id)) for \(Display.quoted(key)) cannot be used: \(bad.problem)",
                hint: "fix or delete that row in \(path)")
        }
    }

    /// Sets `deleted_at` (ms) on the row of `key`; rows are never removed.
    public func markDeleted(key: String, at ms: Int64) throws {
        _ = try wrap {
            try db.query("UPDATE backup_files SET deleted_at = ? WHERE key = ?", [.integer(ms), .text(key)])
        }
    }

    func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as CError {
            if e.status == .busy {
                throw LajuError(
                    .busy, "catalog \(path) is locked: \(e.message)",
                    hint: "the application held its write lock too long; raise BACKUP_BUSY_TIMEOUT (ms)")
            }
            throw LajuError(.catalog, "catalog \(path): \(e.message)")
        }
    }
}

extension Settings {
    /// The catalog at `catalogPath`, waiting up to `BACKUP_BUSY_TIMEOUT` for the application's
    /// write lock. Every command opens it here, so they all honour the same settings.
    public func openCatalog(readOnly: Bool = false) throws -> Catalog {
        let database = databasePath, catalog = catalogPath
        if catalog == database && access(database, F_OK) != 0 {
            // The catalog is the database: the database is what is missing, not a table.
            throw LajuError(
                .source, "database \(database) does not exist",
                hint:
                    "check BACKUP_DATABASE, BACKUP_APP_DIR or DB_CONNECTION (`laju-backup config` shows where each comes from)"
            )
        }
        let c = try Catalog(path: catalog, readOnly: readOnly, busyTimeoutMilliseconds: busyTimeout())
        c.migrateCommand =
            "laju-backup migrate --database \(database)" + (catalog == database ? "" : " --catalog \(catalog)")
        return c
    }
}
