/// Everything a job needs, resolved from an `Environment`. Secrets stay inside; nothing here
/// prints them.
public struct Settings: Sendable {
    public let environment: Environment

    public init(environment: Environment) { self.environment = environment }

    /// `BACKUP_DATABASE`, else the Laju convention from `DB_CONNECTION`:
    /// `./data/<dev|production|test>.sqlite3` relative to the working directory.
    public var databasePath: String {
        if let p = environment["BACKUP_DATABASE"] { return p }
        switch environment["DB_CONNECTION"] ?? "development" {
        case "production": return "data/production.sqlite3"
        case "test": return "data/test.sqlite3"
        default: return "data/dev.sqlite3"
        }
    }

    /// Where `backup_files` lives: `BACKUP_CATALOG`, else the database itself (as the original).
    public var catalogPath: String { environment["BACKUP_CATALOG"] ?? databasePath }

    /// The encryption key, parsed the Laju way. Never logged.
    public func encryptionKey() throws -> EncryptionKey {
        guard let text = environment["BACKUP_ENCRYPTION_KEY"] else {
            throw LajuError(.usage, "BACKUP_ENCRYPTION_KEY is not set",
                            hint: "generate one with `laju-backup keygen` and put it in the env file")
        }
        return try EncryptionKey(parsing: text)
    }

    /// Object key prefix, `backups/` by default (the original's), always ending in `/` unless
    /// empty. It must be usable inside a key (`ObjectKey`): no `..`, no leading `/`.
    public var prefix: String {
        get throws {
            var p = environment["BACKUP_PREFIX"] ?? "backups/"
            if !p.isEmpty && !p.hasSuffix("/") { p += "/" }
            if !p.isEmpty, let problem = ObjectKey.problem(String(p.dropLast()) + "/x") {
                throw LajuError(.usage, "BACKUP_PREFIX=\(Display.quoted(p)) cannot start object keys: \(problem)",
                                hint: "use a plain folder name such as backups/ or myapp/backups/")
            }
            return p
        }
    }

    /// The rows and objects this profile may act on (see `BackupScope`).
    public func scope() throws -> BackupScope {
        let database = absolutePath(databasePath)
        let catalog = absolutePath(catalogPath)
        let same = catalog == database || {
            guard let a = FileIdentity(path: catalog), let b = FileIdentity(path: database) else { return false }
            return a == b
        }()
        return BackupScope(prefix: try prefix, databaseName: database.lastPathComponentOf, catalogIsDatabase: same)
    }

    /// Integer setting with range check.
    public func integer(_ name: String, default def: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = environment[name] else { return def }
        guard let v = Int(text), range.contains(v) else {
            throw LajuError(.usage, "\(name)=\(Display.safe(text)) is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    /// gzip level, `BACKUP_GZIP_LEVEL` (default 6, as Node's zlib).
    public func compressionLevel() throws -> Int32 { Int32(try integer("BACKUP_GZIP_LEVEL", default: 6, range: 0...9)) }

    /// How long to wait for an application's write lock, `BACKUP_BUSY_TIMEOUT` in ms.
    public func busyTimeout() throws -> Int32 { Int32(try integer("BACKUP_BUSY_TIMEOUT", default: 30_000, range: 100...3_600_000)) }

    /// Base directory for temp files: `BACKUP_TMPDIR`, else `TMPDIR`, else `/var/tmp` (on disk,
    /// unlike `/tmp` which is a tmpfs on many hosts, and a snapshot is as large as the database).
    public var tempBase: String { environment["BACKUP_TMPDIR"] ?? environment["TMPDIR"] ?? "/var/tmp" }

    /// Where the per-database run locks live (see `LockDirectory.choose`).
    public var lockDirectory: String {
        LockDirectory.choose(configured: environment["BACKUP_LOCK_DIR"],
                             runtimeDirectory: environment["XDG_RUNTIME_DIR"], tempBase: tempBase)
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

    /// The catalog at `catalogPath`, waiting up to `BACKUP_BUSY_TIMEOUT` for the application's
    /// write lock. Every command opens it here, so they all honour the same settings.
    public func openCatalog(readOnly: Bool = false) throws -> Catalog {
        try Catalog(path: absolutePath(catalogPath), readOnly: readOnly, busyTimeoutMilliseconds: busyTimeout())
    }

    /// The configured store.
    public func makeStore() throws -> ObjectStore {
        switch try storageKind() {
        case .local(let path): return LocalStore(root: path)
        case .s3: return try S3Store(configuration: S3Configuration(settings: self))
        }
    }
}
