/// A database's own identifier: 16 random bytes kept inside the database (table
/// `laju_backup_identity`, one row), as PostgreSQL keeps its system identifier in the cluster.
/// It travels with every snapshot, so it survives a restore to another host and another path, and
/// two databases never share one unless one is a copy of the other.
///
/// It is created by the first backup of the database (full or point), in a write transaction of
/// its own; knex ignores the table, and `restore --activate` compares schemas without it.
public struct DatabaseID: Sendable, Hashable, CustomStringConvertible {
    public static let table = "laju_backup_identity"
    static let createTable =
        "CREATE TABLE IF NOT EXISTS \(table) (id TEXT NOT NULL PRIMARY KEY, created_at INTEGER NOT NULL)"
    /// 32 lowercase hex digits.
    public let hex: String

    public init?(hex: String) {
        guard hex.utf8.count == 32, hex.utf8.allSatisfy({ hexDigitValue($0) != nil && !(65...70).contains($0) }) else {
            return nil
        }
        self.hex = hex
    }

    public var description: String { hex }

    /// The id recorded in the database at `path`, or nil when it has none yet (no table, no row).
    /// `immutable` reads a private file (a snapshot, a restored copy) without locks or side files.
    public static func read(path: String, immutable: Bool = false, busyTimeoutMilliseconds: Int32 = 5000) throws
        -> DatabaseID?
    {
        let db = try open(path, mode: immutable ? [.readOnly, .immutable] : [.readOnly], busy: busyTimeoutMilliseconds)
        return try read(db, path: path, busy: busyTimeoutMilliseconds)
    }

    /// The id of the database at `path`, recorded first when it has none (the live database:
    /// through its locks, waiting up to `busyTimeoutMilliseconds` for the application's writers).
    public static func ensure(path: String, busyTimeoutMilliseconds: Int32) throws -> DatabaseID {
        if let id = try read(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds) { return id }
        let db = try open(path, mode: .readWrite, busy: busyTimeoutMilliseconds)
        let fresh = try secureRandomBytes(16).hexString
        do {
            try db.execute("BEGIN IMMEDIATE")
            try db.execute(
                createTable)
            // Another run may have recorded one since the read above: its id stands.
            if try read(db, path: path, busy: busyTimeoutMilliseconds) == nil {
                _ = try db.query(
                    "INSERT INTO \(table) (id, created_at) VALUES (?, ?)",
                    [.text(fresh), .integer(LocalTime.nowMilliseconds())])
            }
            try db.execute("COMMIT")
        } catch let e as CError {
            try? db.execute("ROLLBACK")
            if e.status == .busy { throw locked(path, busy: busyTimeoutMilliseconds) }
            throw LajuError(
                .source, "cannot record this database's identity in \(path): \(e.message)",
                hint:
                    "run one backup as a user that may write \(path): the id is recorded once and then only read")
        }
        guard let id = try read(db, path: path, busy: busyTimeoutMilliseconds) else {
            throw LajuError(.source, "\(path) holds no identity after recording one")
        }
        return id
    }

    /// Records `id` in the private file at `path`, which holds none (content activated in a
    /// database's place keeps that database's id).
    public static func record(_ id: DatabaseID, path: String) throws {
        let db = try open(path, mode: .readWrite, busy: 5000)
        do {
            try db.execute(
                createTable)
            try db.execute("DELETE FROM \(table)")
            _ = try db.query(
                "INSERT INTO \(table) (id, created_at) VALUES (?, ?)",
                [.text(id.hex), .integer(LocalTime.nowMilliseconds())])
        } catch let e as CError {
            throw LajuError(.local, "cannot record the database id in \(path): \(e.message)")
        }
    }

    static func open(_ path: String, mode: Database.OpenMode, busy: Int32) throws -> Database {
        do {
            return try Database(path: path, mode: mode, busyTimeoutMilliseconds: busy)
        } catch let e as CError {
            throw LajuError(.source, "cannot open \(path) to read its identity: \(e.message)")
        }
    }

    static func read(_ db: Database, path: String, busy: Int32) throws -> DatabaseID? {
        do {
            guard
                !(try db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(table)]).isEmpty)
            else { return nil }
            let rows = try db.query("SELECT id FROM \(table) LIMIT 2")
            guard let text = rows.first?["id"]?.string else { return nil }
            guard rows.count == 1, let id = DatabaseID(hex: text) else {
                throw LajuError(
                    .source, "the table \(table) of \(path) does not hold one identity of 32 hex digits",
                    hint: "do not edit it; restore the database from a backup if it was changed")
            }
            return id
        } catch let e as CError {
            if e.status == .busy { throw locked(path, busy: busy) }
            throw LajuError(.source, "cannot read the identity of \(path): \(e.message)")
        }
    }

    /// The application held its lock longer than laju-backup may wait.
    static func locked(_ path: String, busy: Int32) -> LajuError {
        LajuError(
            .busy,
            "\(path) stayed locked by another connection for longer than BACKUP_BUSY_TIMEOUT (\(busy) ms) while its identity was read",
            hint: "retry when the application is quieter, or raise BACKUP_BUSY_TIMEOUT (milliseconds)")
    }
}
