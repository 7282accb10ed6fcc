internal import CSupport

/// Replacing the content of a live database in place, through the online backup API
/// ([`sqlite3_backup_step`](https://sqlite.org/c3ref/backup_finish.html)) via `cs_activate`.
///
/// Why in place and not by renaming a file over it: the application keeps its open handles (and
/// its -wal/-shm files) on the live inode; a rename would leave it writing into the old file,
/// and copying over the file would let it read half-old, half-new pages. The backup API writes
/// the new pages in one write transaction of the live database, so every connection sees the old
/// state or the new one.
public enum LiveReplacement {
    public struct Result: Sendable {
        public let pages: Int64
        public let pageSize: Int64
        public let safetyPages: Int64
    }

    /// Takes the live database's write lock (waiting up to `busyTimeoutMilliseconds`), writes a
    /// consistent copy of its current state into `safetyCopy` (an empty file the caller created),
    /// then replaces its pages with those of `source`. On failure the live database is unchanged.
    public static func run(
        source: String, live: String, safetyCopy: String,
        busyTimeoutMilliseconds: Int32
    ) throws -> Result {
        var r = cs_activate_result()
        do {
            try cCall { cs_activate(source, live, safetyCopy, busyTimeoutMilliseconds, &r, $0) }
        } catch {
            switch error.status {
            case .busy:
                throw LajuError(
                    .busy, "\(error.message); the live database is unchanged",
                    hint: "retry when the application is quieter, or raise BACKUP_BUSY_TIMEOUT (milliseconds)")
            case .noSpace:
                throw LajuError(
                    .local, "\(error.message); the live database is unchanged",
                    hint: "free space on the filesystems of the live database and of the safety copy")
            case .argument:
                throw LajuError(.local, "\(error.message); the live database is unchanged")
            default:
                throw LajuError(.local, "activation failed: \(error.message); the live database is unchanged")
            }
        }
        return Result(pages: r.pages, pageSize: r.page_size, safetyPages: r.safety_pages)
    }
}
