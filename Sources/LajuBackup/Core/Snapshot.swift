internal import CSupport

/// A consistent copy of a live SQLite database, taken with the online backup API
/// ([`sqlite3_backup_step`](https://sqlite.org/c3ref/backup_finish.html)) via `cs_snapshot`.
public enum Snapshot {
    public struct Result: Sendable {
        public let pages: Int64
        public let pageSize: Int64
        public let attempts: Int
        public var bytes: Int64 { pages * pageSize }
    }

    /// The first 16 bytes of every SQLite 3 database file.
    static let magic = Array("SQLite format 3\0".utf8)

    /// Checks, without opening it through SQLite (which could create it), that `path` is an
    /// existing regular file that starts like a SQLite database.
    public static func checkSource(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw LajuError(
                .source, "database \(path) does not exist",
                hint: "check --database, BACKUP_DATABASE or DB_CONNECTION")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw LajuError(.source, "database \(path) is not a regular file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LajuError(
                .source, "cannot read database \(path): \(String(cString: strerror(errno)))",
                hint: "run as a user that can read it")
        }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 16)
        let n = read(fd, &header, 16)
        guard n == 16, header == magic else {
            throw LajuError(.source, "\(path) is not a SQLite database (\(n == 0 ? "empty file" : "wrong header"))")
        }
    }

    /// Copies `source` into a new database at `destination`.
    public static func take(
        source: String, destination: String,
        busyTimeoutMilliseconds: Int32
    ) throws -> Result {
        var r = cs_snapshot_result()
        do {
            try cCall { cs_snapshot(source, destination, busyTimeoutMilliseconds, &r, $0) }
        } catch {
            switch error.status {
            case .notADatabase: throw LajuError(.source, error.message)
            case .busy: throw LajuError(.busy, error.message)
            case .noSpace:
                throw LajuError(
                    .local, error.message, hint: "free space in the temporary directory or set BACKUP_TMPDIR")
            default: throw LajuError(.source, "snapshot failed: \(error.message)")
            }
        }
        return Result(pages: r.pages, pageSize: r.page_size, attempts: Int(r.attempts))
    }

    /// True when the database file's header marks it as in WAL mode (file format version 2 at
    /// bytes 18 and 19; 1 is a rollback journal).
    public static func isWAL(_ path: String) throws -> Bool {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw LajuError(.local, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 20)
        guard pread(fd, &header, 20, 0) == 20, Array(header[0..<16]) == magic else {
            throw LajuError(.source, "\(path) is not a SQLite database")
        }
        return header[18] == 2 || header[19] == 2
    }

    /// True when `path` is a regular file that starts with the SQLite header (a plain database,
    /// not a sealed backup object).
    public static func isDatabase(_ path: String) -> Bool { (try? checkSource(path)) != nil }

    /// `nil` when `PRAGMA quick_check` (or `integrity_check`) finds the snapshot sound, else its
    /// findings on one line. The snapshot is a private file: opened immutable, with no locks and
    /// no side files.
    public static func problems(_ snapshot: String, check: Database.Check = .quick) throws -> String? {
        do {
            let db = try Database(path: snapshot, mode: [.readOnly, .immutable])
            return try db.integrityProblems(check)
        } catch let e as CError {
            return e.message
        }
    }
}
