/// Everything a job needs, resolved from an `Environment`. Secrets stay inside; nothing here
/// prints them.
public struct Settings: Sendable {
    public let environment: Environment

    public init(environment: Environment) { self.environment = environment }

    /// Upper bounds for the retention settings (100 years; a million backups): larger numbers are
    /// typos, and the day count must never overflow a millisecond cutoff.
    public static let maxRetentionDays = 36_500
    public static let maxKeepCount = 1_000_000

    /// `BACKUP_DATABASE`, else the Laju convention from `DB_CONNECTION`:
    /// `./data/<dev|production|test>.sqlite3`; absolute, relative paths resolved against
    /// `BACKUP_APP_DIR` when set, else the working directory (`Environment.resolve`).
    public var databasePath: String {
        if let p = environment["BACKUP_DATABASE"] { return environment.resolve(p) }
        return environment.resolve(Settings.lajuDatabase(connection: environment["DB_CONNECTION"]))
    }

    /// The Laju convention: `DB_CONNECTION` picks the file under `./data`.
    public static func lajuDatabase(connection: String?) -> String {
        switch connection ?? "development" {
        case "production": return "data/production.sqlite3"
        case "test": return "data/test.sqlite3"
        default: return "data/dev.sqlite3"
        }
    }

    /// Where `backup_files` lives: `BACKUP_CATALOG`, else the database itself (as the original).
    public var catalogPath: String { environment["BACKUP_CATALOG"].map(environment.resolve) ?? databasePath }

    /// Integer setting with range check.
    public func integer(_ name: String, default def: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = environment[name] else { return def }
        guard let v = Int(text), range.contains(v) else {
            throw LajuError(
                .usage,
                "\(name)=\(Display.safe(text)) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    /// What `backup` checks on the snapshot, `BACKUP_CHECK`: `full` (the default: PRAGMA
    /// integrity_check, alongside sealing, recorded in the object so that restores need not run it
    /// again) or `quick` (PRAGMA quick_check; restores then run the full check themselves).
    public func backupCheck() throws -> Database.Check {
        guard let text = environment["BACKUP_CHECK"] else { return .full }
        guard let check = Database.Check(rawValue: text.lowercased()) else {
            throw LajuError(.usage, "BACKUP_CHECK=\(Display.quoted(text)) is not understood", hint: "use full or quick")
        }
        return check
    }

    /// What `backup --incremental` checks on the snapshot, `BACKUP_INCREMENTAL_CHECK`: `quick`
    /// (the default: PRAGMA quick_check, a few seconds per GiB, so that a point every few minutes
    /// stays cheap; the nightly full backup runs integrity_check, and a restore of such a point runs
    /// it on the rebuilt file) or `full` (integrity_check on every point, recorded in the point so
    /// that its restores need not run it).
    public func pointCheck() throws -> Database.Check {
        guard let text = environment["BACKUP_INCREMENTAL_CHECK"] else { return .quick }
        guard let check = Database.Check(rawValue: text.lowercased()) else {
            throw LajuError(
                .usage, "BACKUP_INCREMENTAL_CHECK=\(Display.quoted(text)) is not understood", hint: "use quick or full")
        }
        return check
    }

    /// How long to wait for an application's write lock, `BACKUP_BUSY_TIMEOUT` in ms.
    public func busyTimeout() throws -> Int32 {
        Int32(try integer("BACKUP_BUSY_TIMEOUT", default: 30_000, range: 100...3_600_000))
    }

    /// Base directory for temp files: `BACKUP_TMPDIR`, else `TMPDIR`, else `/var/tmp` (on disk,
    /// unlike `/tmp` which is a tmpfs on many hosts, and a snapshot is as large as the database).
    public var tempBase: String { environment["BACKUP_TMPDIR"] ?? environment["TMPDIR"] ?? "/var/tmp" }

    /// Where the per-database run locks live (see `LockDirectory.choose`).
    public var lockDirectory: String {
        LockDirectory.choose(
            configured: environment["BACKUP_LOCK_DIR"],
            runtimeDirectory: environment["XDG_RUNTIME_DIR"], tempBase: tempBase)
    }

    /// Where `restore --activate` keeps the safety copy of the state it replaces:
    /// `BACKUP_SAFETY_DIR`; else `/var/lib/laju-backup/safety` for root, else
    /// `$XDG_STATE_HOME/laju-backup/safety` (`~/.local/state/...`). Never a temp directory: the
    /// copy is the way back and must outlive a reboot and tmp cleaners.
    public func safetyDirectory() throws -> String {
        if let d = environment["BACKUP_SAFETY_DIR"] {
            guard d.hasPrefix("/") else {
                throw LajuError(.usage, "BACKUP_SAFETY_DIR=\(Display.quoted(d)) is not an absolute path")
            }
            return d
        }
        if geteuid() == 0 { return "/var/lib/laju-backup/safety" }
        if let s = environment["XDG_STATE_HOME"], s.hasPrefix("/") { return s + "/laju-backup/safety" }
        guard let home = environment["HOME"], home.hasPrefix("/") else {
            throw LajuError(.usage, "no place for the safety copy: HOME is not set", hint: "set BACKUP_SAFETY_DIR")
        }
        return home + "/.local/state/laju-backup/safety"
    }

    /// A yes/no setting: `true`/`1` or `false`/`0` (any case). Anything else is refused, so that
    /// `BACKUP_SSE=yes` (which the original scripts would quietly take as "off") is not misread.
    public func bool(_ name: String, default def: Bool) throws -> Bool {
        guard let text = environment[name] else { return def }
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default:
            throw LajuError(.usage, "\(name)=\(Display.quoted(text)) is not understood", hint: "use true or false")
        }
    }

    /// `BACKUP_SSE` true/1: ask S3 for server-side encryption (AES256), as the original.
    public func serverSideEncryption() throws -> Bool { try bool("BACKUP_SSE", default: false) }

    /// Compression threads, `BACKUP_THREADS` (default: the number of cores, at most 8).
    public func threads() throws -> Int32 {
        let cores = max(1, min(8, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        return Int32(try integer("BACKUP_THREADS", default: cores, range: 1...64))
    }

    public enum StorageKind: Equatable, Sendable {
        case local(String)
        case s3
    }

    /// `BACKUP_STORAGE`: `file:///absolute/dir` for a local directory, `s3` (the default).
    public func storageKind() throws -> StorageKind {
        guard let v = environment["BACKUP_STORAGE"] else { return .s3 }
        if v.lowercased() == "s3" { return .s3 }
        if v.hasPrefix("file://") {
            let path = String(v.dropFirst("file://".count))
            guard path.hasPrefix("/") else {
                throw LajuError(.usage, "BACKUP_STORAGE=\(v) must name an absolute directory (file:///srv/backups)")
            }
            return .local(path)
        }
        throw LajuError(.usage, "BACKUP_STORAGE=\(v) is not understood", hint: "use file:///absolute/dir or s3")
    }

}
