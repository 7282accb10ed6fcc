/// The `backup_files` table, in the application's own SQLite database (as the original) or in
/// a separate catalog file (`--catalog`). Reads and writes rows; never changes the schema
/// (that is `Migrator`'s job).
public final class Catalog {
    public static let table = "backup_files"
    public let path: String
    let db: Database

    /// Opens an existing database; never creates one. `busyTimeoutMilliseconds` is how long to
    /// wait for the application's write lock (backup passes BACKUP_BUSY_TIMEOUT).
    public init(path: String, readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 5000) throws {
        guard access(path, F_OK) == 0 else {
            throw LajuError(.catalog, "catalog database \(path) does not exist",
                            hint: "run `laju-backup migrate` to create it, or fix --catalog / BACKUP_CATALOG")
        }
        do {
            db = try Database(path: path, mode: readOnly ? .readOnly : .readWrite, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
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

    /// Fails with a clear message when the table is absent: the first thing `backup` checks.
    public func requireTable() throws {
        guard try hasTable() else {
            throw LajuError(.catalog, "table backup_files does not exist in \(path)",
                            hint: "run `laju-backup migrate` (or the app's knex migration) first")
        }
    }

    public func insert(_ r: BackupRecord) throws {
        _ = try wrap {
            try db.query("""
                INSERT INTO backup_files (id, key, file_name, file_size, compression, storage, checksum,
                  uploaded_at, deleted_at, encryption, enc_iv, enc_tag)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(r.id), .text(r.key), .text(r.fileName), .integer(r.fileSize), .text(r.compression),
                      .text(r.storage), .text(r.checksum), .integer(r.uploadedAt),
                      r.deletedAt.map { .integer($0) } ?? .null, .text(r.encryption), .text(r.encIV), .text(r.encTag)])
        }
    }

    /// The original's "latest": not deleted, newest `uploaded_at`.
    public func latest() throws -> BackupRecord? {
        try select("WHERE deleted_at IS NULL ORDER BY uploaded_at DESC LIMIT 1").first
    }

    /// The row for `key`, deleted or not.
    public func record(key: String) throws -> BackupRecord? {
        try select("WHERE key = ? LIMIT 1", [.text(key)]).first
    }

    /// All rows, newest first.
    public func all(includeDeleted: Bool = false) throws -> [BackupRecord] {
        try select(includeDeleted ? "ORDER BY uploaded_at DESC" : "WHERE deleted_at IS NULL ORDER BY uploaded_at DESC")
    }

    /// Sets `deleted_at` (ms) on the row of `key`; rows are never removed.
    public func markDeleted(key: String, at ms: Int64) throws {
        _ = try wrap { try db.query("UPDATE backup_files SET deleted_at = ? WHERE key = ?", [.integer(ms), .text(key)]) }
    }

    func select(_ tail: String, _ args: [Database.Value] = []) throws -> [BackupRecord] {
        let rows = try wrap {
            try db.query("""
                SELECT id, key, file_name, file_size, compression, storage, checksum, uploaded_at,
                  deleted_at, encryption, enc_iv, enc_tag FROM backup_files \(tail)
                """, args)
        }
        return rows.map { r in
            BackupRecord(id: r["id"]?.string ?? "", key: r["key"]?.string ?? "",
                         fileName: r["file_name"]?.string ?? "", fileSize: r["file_size"]?.int64 ?? 0,
                         compression: r["compression"]?.string ?? "gzip", storage: r["storage"]?.string ?? "s3",
                         checksum: r["checksum"]?.string ?? "", uploadedAt: r["uploaded_at"]?.int64 ?? 0,
                         deletedAt: r["deleted_at"]?.int64, encryption: r["encryption"]?.string ?? "aes-256-gcm",
                         encIV: r["enc_iv"]?.string ?? "", encTag: r["enc_tag"]?.string ?? "")
        }
    }

    func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as CError {
            if e.status == .busy {
                throw LajuError(.busy, "catalog \(path) is locked: \(e.message)",
                                hint: "the application held its write lock too long; raise BACKUP_BUSY_TIMEOUT (ms)")
            }
            throw LajuError(.catalog, "catalog \(path): \(e.message)")
        }
    }
}
