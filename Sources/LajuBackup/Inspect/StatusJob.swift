/// `laju-backup status`: is this database backed up recently, and does its newest backup exist?
/// Answers in the monitoring-plugin convention (Nagios, Icinga, Zabbix): 0 OK, 1 WARNING,
/// 2 CRITICAL, 3 UNKNOWN; the worst profile decides.
public struct StatusJob {
    public enum Level: String, Codable, Sendable, Comparable {
        case ok, warning, critical, unknown

        public var exitStatus: Int32 {
            switch self {
            case .ok: return 0
            case .warning: return 1
            case .critical: return 2
            case .unknown: return 3
            }
        }

        /// Worse is greater; UNKNOWN counts as worse than CRITICAL only when nothing is critical.
        var rank: Int { [.ok: 0, .warning: 1, .unknown: 2, .critical: 3][self]! }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }

    public struct Backup: Codable, Sendable {
        public var key: String
        public var uploadedAt: Int64
        public var ageSeconds: Double
        public var bytes: Int64
    }

    public struct Verified: Codable, Sendable {
        public var key: String
        public var verifiedAt: Int64
        public var ageSeconds: Double
    }

    /// The newest restore point (incremental backups), for databases that turn them on.
    public struct Point: Codable, Sendable {
        public var point: String
        public var time: Int64
        public var ageSeconds: Double
        public var count: Int
    }

    public struct Report: Codable, Sendable {
        public var profile: String
        public var database: String
        public var level: Level
        /// One line: what is wrong, or that all is well.
        public var message: String
        public var newest: Backup?
        public var newestVerified: Verified?
        public var activeBackups: Int
        public var storeReachable: Bool?
        public var newestObjectPresent: Bool?
        /// Set when BACKUP_INCREMENTAL is true.
        public var newestPoint: Point?

        public init(profile: String, database: String, level: Level, message: String, activeBackups: Int = 0) {
            self.profile = profile
            self.database = database
            self.level = level
            self.message = message
            self.activeBackups = activeBackups
        }
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var profile: String
    public var maxAge: Double
    /// Age of the newest restore point beyond which status is WARNING (twice: CRITICAL), for
    /// databases with BACKUP_INCREMENTAL=true.
    public var maxPointAge: Double

    public init(
        settings: Settings, repository: Repository? = nil, profile: String, maxAge: Double, maxPointAge: Double = 3600
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.profile = profile
        self.maxAge = maxAge
        self.maxPointAge = maxPointAge
    }

    /// The nightly backups, then the restore points where they are on: the worse decides, and
    /// the message says what is wrong first.
    public func run() -> Report {
        var r = fullBackups()
        let enabled: Bool
        do { enabled = try settings.bool("BACKUP_INCREMENTAL", default: false) } catch {
            r.level = max(r.level, .unknown)
            r.message = "configuration: \(error); " + r.message
            return r
        }
        guard enabled else { return r }
        let (level, message) = points(&r)
        if level > r.level {
            r.message = message + "; " + r.message
            r.level = level
        } else {
            r.message += "; " + message
        }
        return r
    }

    /// The newest restore point: listed, its summary authentic, young enough.
    func points(_ r: inout Report) -> (Level, String) {
        let now = LocalTime.nowMilliseconds()
        do {
            let (chain, listing) = try PointChain.newestWithPoints(
                try PointChain.forReading(
                    settings: settings, encryptionKey: try settings.encryptionKey(),
                    store: try repository.store(role: .read), scratch: settings.tempBase, events: { _ in }))
            guard let newest = listing.last else {
                return (
                    .critical,
                    "BACKUP_INCREMENTAL is true but there is no restore point (is the 15-minute line of /etc/cron.d/laju-backup uncommented?)"
                )
            }
            do { _ = try chain.summary(of: newest) } catch let e as FormatError {
                return (
                    .critical,
                    "the newest restore point \(chain.namespace.key(newest.name.relative)) is damaged: \(e.message)"
                )
            }
            let age = Double(now - newest.name.time) / 1000
            r.newestPoint = Point(
                point: PointChain.display(newest.name), time: newest.name.time, ageSeconds: age, count: listing.count)
            let ageText = StatusJob.human(age)
            if age > 2 * maxPointAge {
                return (
                    .critical,
                    "the newest restore point is \(ageText) old (more than twice \(StatusJob.human(maxPointAge)))"
                )
            }
            if age > maxPointAge {
                return (
                    .warning, "the newest restore point is \(ageText) old (more than \(StatusJob.human(maxPointAge)))"
                )
            }
            return (.ok, "newest restore point \(ageText) old, \(listing.count) points")
        } catch let e as LajuError {
            return (e.kind == .usage ? .unknown : .critical, "restore points: \(e.message)")
        } catch {
            return (.critical, "restore points: \(error)")
        }
    }

    func fullBackups() -> Report {
        var r = Report(profile: profile, database: settings.databasePath, level: .ok, message: "", activeBackups: 0)
        let now = LocalTime.nowMilliseconds()
        let catalog: Catalog
        let ours: [BackupRecord]
        do {
            catalog = try repository.catalog(readOnly: true)
            try catalog.requireTable(forWriting: false)
            ours = try catalog.scan(includeDeleted: false).split(try settings.scope()).ours
        } catch let e as LajuError {
            r.level = e.kind == .usage ? .unknown : .critical
            r.message = "cannot read the catalog: \(e.message)"
            return r
        } catch {
            r.level = .critical
            r.message = "cannot read the catalog: \(error)"
            return r
        }
        r.activeBackups = ours.count
        let verified = catalog.verifications()
        if let v = ours.first(where: { verified[$0.key] != nil }), let at = verified[v.key] {
            r.newestVerified = Verified(key: v.key, verifiedAt: at, ageSeconds: Double(now - at) / 1000)
        }
        guard let newest = ours.first else {
            r.level = .critical
            r.message = "no backup of \(r.database) in the catalog"
            return r
        }
        let age = Double(now - newest.uploadedAt) / 1000
        r.newest = Backup(key: newest.key, uploadedAt: newest.uploadedAt, ageSeconds: age, bytes: newest.fileSize)
        do {
            let store = try repository.store(role: .read)
            let info = try store.head(key: newest.key)
            r.storeReachable = true
            r.newestObjectPresent = true
            if let problem = keyProblem(info) {
                r.level = .critical
                r.message = problem
                return r
            }
        } catch let e as LajuError where e.isNotFound {
            r.storeReachable = true
            r.newestObjectPresent = false
            r.level = .critical
            r.message = "the newest backup \(newest.key) is missing from the store"
            return r
        } catch let e as LajuError {
            r.storeReachable = e.kind == .usage ? nil : false
            r.level = e.kind == .usage ? .unknown : .critical
            r.message = e.kind == .usage ? "configuration: \(e.message)" : "store unreachable: \(e.message)"
            return r
        } catch {
            r.storeReachable = false
            r.level = .critical
            r.message = "store unreachable: \(error)"
            return r
        }
        let ageText = StatusJob.human(age)
        if age > 2 * maxAge {
            r.level = .critical
            r.message = "the newest backup is \(ageText) old (more than twice \(StatusJob.human(maxAge)))"
        } else if age > maxAge {
            r.level = .warning
            r.message = "the newest backup is \(ageText) old (more than \(StatusJob.human(maxAge)))"
        } else {
            r.message = "newest backup \(ageText) old, \(Human.bytes(newest.fileSize)), \(ours.count) active"
            if let v = r.newestVerified { r.message += ", last verified \(StatusJob.human(v.ageSeconds)) ago" }
        }
        return r
    }

    /// The newest backup was made with another key than the configured one: it would not restore.
    func keyProblem(_ info: ObjectInfo) -> String? {
        guard let recorded = (try? ObjectMetadata(pairs: info.metadata))?.keyFingerprint,
            let key = try? settings.encryptionKey(), recorded != key.fingerprint
        else { return nil }
        return
            "the newest backup \(Display.safe(info.key)) was made with key fingerprint \(Display.safe(recorded)), but BACKUP_ENCRYPTION_KEY has fingerprint \(key.fingerprint): it would not restore with the configured key"
    }

    /// `3h`, `26h`, `2d 4h`, `45 min`.
    public static func human(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s < 120 { return "\(Int(s)) s" }
        if s < 7200 { return "\(Int(s / 60)) min" }
        if s < 172_800 { return "\(Int(s / 3600))h" }
        return "\(Int(s / 86_400))d \(Int(s.truncatingRemainder(dividingBy: 86_400) / 3600))h"
    }
}
