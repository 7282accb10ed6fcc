/// Which catalog rows and which store objects belong to one profile: one database, one prefix.
///
/// Several profiles may share a catalog (`BACKUP_CATALOG`) or a bucket, even a prefix, so nothing
/// may act on a row or an object just because it is there. The rule (laju-backup-clean(1), SCOPE):
///
/// - a key is in scope only directly under the profile's prefix: `backups/blog/x` is another
///   profile's when this one's prefix is `backups/`;
/// - its file name must be a backup name: `<database file name>-<YYYY-MM-DDTHH:mm>-<uuid>.db.<gz|zst|xz>.enc`
///   (what laju-backup and the later Laju scripts write), with this database's file name;
/// - the first Laju scripts wrote `<YYYY-MM-DDTHH:mm>-<uuid>.db.gz.enc`, with no name. Such a
///   *row* is this database's only when the catalog is the database's own table (the scripts wrote
///   each row into the database they had just backed up); in a shared catalog, and as a bare
///   object in the store, it cannot be attributed and is only reported;
/// - everything else belongs to someone else and is never deleted, restored as "latest" or
///   counted as an orphan.
public struct BackupScope: Sendable, Equatable {
    public let prefix: String
    /// The database's file name, as it appears in keys.
    public let databaseName: String
    /// The catalog is the database's own `backup_files` table (the original layout).
    public let catalogIsDatabase: Bool

    public init(prefix: String, databaseName: String, catalogIsDatabase: Bool) {
        self.prefix = prefix
        self.databaseName = databaseName
        self.catalogIsDatabase = catalogIsDatabase
    }

    public enum Attribution: Equatable, Sendable {
        /// `<prefix><this database>-<stamp>-<uuid>.db.*.enc`.
        case ours
        /// `<prefix><stamp>-<uuid>.db.gz.enc`: the first scripts' form, no database name.
        case unnamed
        /// A backup name of another database.
        case otherDatabase(String)
        /// Under a deeper prefix (`backups/blog/...` for `backups/`): another profile's.
        case nested
        /// Not under the prefix at all.
        case outsidePrefix
        /// Directly under the prefix, but not a backup name.
        case unrecognised
    }

    public func attribute(_ key: String) -> Attribution {
        guard key.hasPrefix(prefix) else { return .outsidePrefix }
        let name = key.dropFirst(prefix.count)
        if name.contains("/") { return .nested }
        guard let parsed = BackupName.parse(name) else { return .unrecognised }
        guard let database = parsed.database else { return .unnamed }
        return database == databaseName ? .ours : .otherDatabase(database)
    }

    /// A catalog row this profile may restore as "latest", list, and delete by retention.
    public func ownsRow(key: String) -> Bool {
        switch attribute(key) {
        case .ours: return true
        case .unnamed: return catalogIsDatabase
        default: return false
        }
    }

    /// A store object this profile may call its own (and so an orphan when no row names it).
    public func ownsObject(key: String) -> Bool { attribute(key) == .ours }

    /// Why a row or object is not this profile's, for reports.
    public func whyNotOurs(_ key: String) -> String? {
        if let problem = ObjectKey.problem(key) { return "unusable key: \(problem)" }
        switch attribute(key) {
        case .ours: return nil
        case .unnamed:
            return catalogIsDatabase
                ? nil
                : "unnamed key of the first Laju scripts in a shared catalog: cannot tell which database it belongs to"
        case .otherDatabase(let d): return "a backup of another database (\(Display.safe(d)))"
        case .nested: return "under a deeper prefix (another profile's)"
        case .outsidePrefix: return "outside the prefix \(Display.safe(prefix))"
        case .unrecognised: return "not a backup name"
        }
    }
}

/// The file-name part of a backup key: `[<database>-]<YYYY-MM-DDTHH:mm>-<uuid>.db.<codec>.enc`.
public struct BackupName: Equatable, Sendable {
    public var database: String?
    public var stamp: String
    public var uuid: String
    /// `gz`, `zst` or `xz`.
    public var codecExtension: String

    public static let extensions = ["gz", "zst", "xz"]

    public static func parse<S: StringProtocol>(_ name: S) -> BackupName? {
        let u = Array(name.utf8)
        var end = u.count
        var codec: String?
        for ext in extensions {
            let suffix = Array(".db.\(ext).enc".utf8)
            if u.count > suffix.count, Array(u[(u.count - suffix.count)...]) == suffix {
                codec = ext
                end = u.count - suffix.count
                break
            }
        }
        guard let codec, end >= 16 + 1 + 36 else { return nil }
        let uuid = Array(u[(end - 36)..<end])
        guard isUUID(uuid), u[end - 37] == UInt8(ascii: "-") else { return nil }
        let stampEnd = end - 37
        let stamp = Array(u[(stampEnd - 16)..<stampEnd])
        guard isStamp(stamp) else { return nil }
        let rest = stampEnd - 16
        var database: String?
        if rest > 0 {
            guard rest >= 2, u[rest - 1] == UInt8(ascii: "-") else { return nil }
            database = String(decoding: u[0..<(rest - 1)], as: UTF8.self)
        }
        return BackupName(
            database: database, stamp: String(decoding: stamp, as: UTF8.self),
            uuid: String(decoding: uuid, as: UTF8.self), codecExtension: codec)
    }

    /// 8-4-4-4-12 hex digits, either case.
    static func isUUID(_ b: [UInt8]) -> Bool {
        guard b.count == 36 else { return false }
        for (i, c) in b.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                if c != UInt8(ascii: "-") { return false }
            } else if hexDigitValue(c) == nil {
                return false
            }
        }
        return true
    }

    /// `YYYY-MM-DDTHH:mm`.
    static func isStamp(_ b: [UInt8]) -> Bool {
        guard b.count == 16 else { return false }
        for (i, c) in b.enumerated() {
            switch i {
            case 4, 7: if c != UInt8(ascii: "-") { return false }
            case 10: if c != UInt8(ascii: "T") { return false }
            case 13: if c != UInt8(ascii: ":") { return false }
            default: if !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { return false }
            }
        }
        return true
    }
}

extension Settings {
    /// The rows and objects this profile may act on (see `BackupScope`).
    public func scope() throws -> BackupScope {
        let database = databasePath
        let catalog = catalogPath
        let same =
            catalog == database
            || {
                guard let a = FileID(path: catalog), let b = FileID(path: database) else { return false }
                return a == b
            }()
        return BackupScope(prefix: try prefix, databaseName: database.lastPathComponentOf, catalogIsDatabase: same)
    }
}
