internal import CSupport

/// A SQLite connection owned by Swift ([`sqlite3_open_v2`](https://sqlite.org/c3ref/open.html)),
/// closed in `deinit`. Used for the catalog and for checks; the snapshot has its own C path.
public final class Database {
    public struct OpenMode: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readOnly = OpenMode(rawValue: 1)  // CS_OPEN_READONLY
        public static let readWrite = OpenMode(rawValue: 2)  // CS_OPEN_READWRITE
        public static let create = OpenMode(rawValue: 4)  // CS_OPEN_CREATE
        /// No locks, no -wal/-shm side files: for a file only we are using.
        public static let immutable = OpenMode(rawValue: 8)  // CS_OPEN_IMMUTABLE
    }

    /// A value bound to or read from SQL.
    public enum Value: Equatable, Sendable {
        case null, integer(Int64), real(Double), text(String)
        public var int64: Int64? { if case .integer(let v) = self { return v }; return nil }
        public var string: String? {
            switch self {
            case .text(let s): return s
            case .integer(let v): return String(v)
            case .real(let v): return String(v)
            case .null: return nil
            }
        }
    }

    public typealias Row = [String: Value]

    public let path: String
    private let handle: OpaquePointer

    public init(path: String, mode: OpenMode, busyTimeoutMilliseconds: Int32 = 5000) throws {
        var h: OpaquePointer?
        try cCall { cs_db_open(path, mode.rawValue, busyTimeoutMilliseconds, &h, $0) }
        self.path = path
        self.handle = h!
    }
    deinit { cs_db_close(handle) }

    /// Runs statements that return no rows ([`sqlite3_exec`](https://sqlite.org/c3ref/exec.html)).
    public func execute(_ sql: String) throws {
        try cCall { cs_db_exec(handle, sql, $0) }
    }

    /// Runs one statement with bound parameters; returns its rows.
    @discardableResult
    public func query(_ sql: String, _ arguments: [Value] = []) throws -> [Row] {
        var st: OpaquePointer?
        try cCall { cs_stmt_prepare(handle, sql, &st, $0) }
        defer { cs_stmt_finalize(st) }
        for (i, arg) in arguments.enumerated() {
            let index = Int32(i + 1)
            try cCall { err in
                switch arg {
                case .null: return cs_stmt_bind_null(st, index, err)
                case .integer(let v): return cs_stmt_bind_int64(st, index, v, err)
                case .real(let v): return cs_stmt_bind_text(st, index, String(v), err)
                case .text(let s): return cs_stmt_bind_text(st, index, s, err)
                }
            }
        }
        var rows: [Row] = []
        while try cCall({ cs_stmt_step(st, $0) }) == CS_ROW {
            var row: Row = [:]
            for c in 0..<cs_stmt_column_count(st) {
                let name = String(cString: cs_stmt_column_name(st, c))
                switch cs_stmt_column_type(st, c) {
                case CS_TYPE_INTEGER: row[name] = .integer(cs_stmt_column_int64(st, c))
                case CS_TYPE_FLOAT: row[name] = .real(cs_stmt_column_double(st, c))
                case CS_TYPE_NULL: row[name] = .null
                default: row[name] = cs_stmt_column_text(st, c).map { .text(String(cString: $0)) } ?? .null
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Rows changed by the last statement ([`sqlite3_changes64`](https://sqlite.org/c3ref/changes.html)).
    public var changes: Int64 { cs_db_changes(handle) }

    /// How thoroughly `integrityProblems` checks.
    public enum Check: String, Sendable, CaseIterable {
        /// [`PRAGMA integrity_check`](https://sqlite.org/pragma.html#pragma_integrity_check):
        /// everything, including that every index entry matches its row (O(N log N)).
        case full
        /// [`PRAGMA quick_check`](https://sqlite.org/pragma.html#pragma_quick_check): page
        /// structure, free list, NOT NULL/CHECK constraints, but not index against table (O(N)).
        case quick
    }

    /// `nil` when the database is sound, else the first problems SQLite reports.
    public func integrityProblems(_ check: Check = .full, limit: Int = 5) throws -> String? {
        let pragma = check == .full ? "integrity_check" : "quick_check"
        // A 16 MiB page cache for integrity_check: with SQLite's default 2 MiB it reads the pages
        // of a 1 GiB database again and again through the kernel (10.6 s of system time, 17.7 s
        // of CPU in all; 13.7 s with 16 MiB). quick_check reads each page once and gains nothing.
        // The cache grows only as pages are read, within the 64 MiB a backup or restore may use.
        if check == .full { _ = try query("PRAGMA cache_size = -16384") }
        let rows = try query("PRAGMA \(pragma)(\(limit))")
        let lines = rows.compactMap { $0.values.first?.string }
        // SQLite's findings can span lines ("*** in database main ***\nPage 5: ..."): one line.
        return lines == ["ok"]
            ? nil : lines.joined(separator: "; ").split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// The linked SQLite version ([`sqlite3_libversion`](https://sqlite.org/c3ref/libversion.html)).
    public static var libraryVersion: String { String(cString: cs_sqlite_version()) }
}
