/// `laju-backup doctor`: checks what a new setup gets wrong, one line per check with the fix.
/// Nothing here changes anything but one probe object under the prefix, written, read, listed and
/// deleted again to find out which of those the store allows (put-only credentials shows as such).
public struct DoctorJob {
    public enum Level: String, Codable, Sendable { case ok, warning, error }

    public struct Check: Codable, Sendable {
        public var name: String
        public var level: Level
        public var message: String
        /// What to do, for warnings and errors.
        public var fix: String?
        /// The exit status class of an error (2 configuration, 3 source, 5 storage, 6 local, 8 catalog).
        public var exitStatus: Int32?
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    /// The cron file and the log whose presence and permissions are checked.
    public var cronFile = "/etc/cron.d/laju-backup"
    public var logFile = "/var/log/laju-backup.log"

    public init(settings: Settings, repository: Repository? = nil) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
    }

    public func run() -> [Check] {
        var list = CheckList()
        settingsFiles(&list)
        let encryptionKey = key(&list)
        database(&list)
        let ours = catalog(&list)
        tempSpace(&list)
        store(&list, ours: ours, encryptionKey: encryptionKey)
        // The schedule and its log (installed by the Debian package).
        if access(cronFile, F_OK) == 0 {
            list.ok("cron", "\(cronFile) is installed")
        } else {
            list.warn(
                "cron", "\(cronFile) is missing: nothing runs nightly backups",
                "install the laju-backup package, or schedule `laju-backup backup` yourself")
        }
        list.checks += restorePoints(encryptionKey: encryptionKey)
        if access(logFile, F_OK) != 0 {
            list.warn(
                "log", "\(logFile) does not exist", "install the laju-backup package (it creates it 0640 root:adm)")
        } else if access(logFile, W_OK) != 0 {
            list.warn("log", "\(logFile) is not writable by this user", "run the scheduled jobs as root")
        } else {
            list.ok("log", "\(logFile) is writable")
        }
        return list.checks
    }

    /// The checks so far, and the three ways to add one.
    struct CheckList {
        var checks: [Check] = []
        mutating func ok(_ name: String, _ message: String) {
            checks.append(Check(name: name, level: .ok, message: message))
        }
        mutating func warn(_ name: String, _ message: String, _ fix: String) {
            checks.append(Check(name: name, level: .warning, message: message, fix: fix))
        }
        mutating func fail(_ name: String, _ message: String, _ fix: String?, _ kind: LajuError.Kind) {
            checks.append(Check(name: name, level: .error, message: message, fix: fix, exitStatus: kind.exitCode))
        }
        mutating func fail(_ name: String, _ e: Error, _ fix: String? = nil) {
            let le = e as? LajuError
            fail(name, le?.message ?? "\(e)", fix ?? le?.hint, le?.kind ?? .internal)
        }
    }

    /// Settings files: those holding a secret must not be readable by others.
    func settingsFiles(_ list: inout CheckList) {
        for layer in settings.environment.layers {
            guard let file = layer.file else { continue }
            var st = stat()
            guard stat(file, &st) == 0 else { continue }
            let secrets = EnvFile.secretNames.filter { layer.values[$0].map { !$0.isEmpty } ?? false }
            let mode = String(st.st_mode & 0o777, radix: 8)
            if !secrets.isEmpty && st.st_mode & 0o044 != 0 {
                list.warn(
                    "settings file",
                    "\(file) holds \(secrets.joined(separator: ", ")) and is mode \(mode) (readable by \(st.st_mode & 0o004 != 0 ? "every user" : "its group"))",
                    "chmod 600 \(file)")
            } else {
                list.ok("settings file", "\(file) (mode \(mode))")
            }
        }
    }

    /// The key; whether it is the key of the newest backup is checked with the store.
    func key(_ list: inout CheckList) -> EncryptionKey? {
        do {
            let encryptionKey = try settings.encryptionKey()
            list.ok("key", "BACKUP_ENCRYPTION_KEY decodes to 32 bytes, fingerprint \(encryptionKey.fingerprint)")
            return encryptionKey
        } catch {
            list.fail("key", error)
            return nil
        }
    }

    /// The database: readable, and in WAL mode so that backups never block writers.
    func database(_ list: inout CheckList) {
        let database = settings.databasePath
        do {
            try Snapshot.checkSource(database)
            let db = try Database(path: database, mode: .readOnly, busyTimeoutMilliseconds: 2000)
            let mode = try db.query("PRAGMA journal_mode").first?.values.first?.string ?? "?"
            if mode.lowercased() == "wal" {
                list.ok("database", "\(database) is readable, journal mode wal")
            } else {
                list.warn(
                    "database", "\(database) is in journal mode \(mode): writers wait while a backup reads it",
                    "switch the application's database to WAL (PRAGMA journal_mode=WAL) so that backups never block writes"
                )
            }
        } catch let e as CError {
            list.fail("database", "\(database): \(e.message)", "check that this user can read it", .source)
        } catch { list.fail("database", error) }
    }

    /// The catalog table; this database's active rows, newest first.
    func catalog(_ list: inout CheckList) -> [BackupRecord] {
        do {
            let catalog = try repository.catalog(readOnly: true)
            try catalog.requireTable(forWriting: true)
            let ours = try catalog.scan(includeDeleted: false).split(try settings.scope()).ours
            list.ok("catalog", "\(catalog.path) has backup_files; \(ours.count) active backup(s) of this database")
            return ours
        } catch {
            list.fail("catalog", error)
            return []
        }
    }

    /// Room for temporary files: a snapshot and an object of up to the database's size.
    func tempSpace(_ list: inout CheckList) {
        let base = settings.tempBase
        let database = settings.databasePath
        var vfs = statvfs()
        if statvfs(base, &vfs) == 0 {
            let have = Int64(vfs.f_bavail) * Int64(vfs.f_frsize)
            let need = fileSize(database).addingSaturating(fileSize(database + "-wal")).multipliedSaturating(by: 2)
            if have < need {
                list.fail(
                    "temp space", "\(base) has \(Human.bytes(have)) free; a backup needs about \(Human.bytes(need))",
                    "free space there or set BACKUP_TMPDIR to a larger disk", .local)
            } else {
                list.ok(
                    "temp space", "\(base) has \(Human.bytes(have)) free (a backup needs about \(Human.bytes(need)))")
            }
        } else {
            list.fail(
                "temp space", "temporary directory \(base) does not exist", "create it or set BACKUP_TMPDIR", .local)
        }
    }

    /// The store: each permission on its own, the clock, and the key of the newest backup.
    func store(_ list: inout CheckList, ours: [BackupRecord], encryptionKey: EncryptionKey?) {
        do {
            let store = try repository.store()
            let prefix = try settings.prefix
            list.checks += probe(store: store, prefix: prefix)
            if let clock = store as? ServerClock, let offset = try? clock.clockOffset() {
                if abs(offset) > 900 {
                    list.fail(
                        "clock",
                        "this host's clock is \(Int(offset)) s off the S3 server's; S3 refuses requests more than 15 minutes off",
                        "sync the clock (timedatectl set-ntp true, or chrony)", .storage)
                } else if abs(offset) > 60 {
                    list.warn(
                        "clock", "this host's clock is \(Int(offset)) s off the S3 server's",
                        "sync the clock (timedatectl set-ntp true, or chrony)")
                } else {
                    list.ok("clock", "within \(Int(abs(offset))) s of the S3 server's")
                }
            }
            guard let encryptionKey, let newest = ours.first else { return }
            do {
                let meta = try ObjectMetadata(pairs: try store.head(key: newest.key).metadata)
                if let fp = meta.keyFingerprint, fp != encryptionKey.fingerprint {
                    list.fail(
                        "key",
                        "the newest backup \(newest.key) was made with key fingerprint \(fp), not \(encryptionKey.fingerprint)",
                        "put back the key that made the backups (restores need it)", .integrity)
                } else {
                    list.ok(
                        "newest backup",
                        "\(newest.key) exists\(meta.keyFingerprint == nil ? "" : " and was made with this key")")
                }
            } catch { list.fail("newest backup", error) }
        } catch { list.fail("store", error) }
    }

    /// Where BACKUP_INCREMENTAL is true: the 15-minute cron line is on (it ships commented), and
    /// the newest restore point opens with this key. Nothing is said for other databases.
    func restorePoints(encryptionKey: EncryptionKey?) -> [Check] {
        guard (try? settings.bool("BACKUP_INCREMENTAL", default: false)) == true else { return [] }
        var list = CheckList()
        pointsCron(&list)
        guard let encryptionKey else { return list.checks }
        do {
            let (chain, listing) = try PointChain.newestWithPoints(
                try PointChain.forReading(
                    settings: settings, encryptionKey: encryptionKey, store: try repository.store(role: .read),
                    scratch: settings.tempBase, events: { _ in }))
            guard let newest = listing.last else {
                try noPoints(&list, chain: chain)
                return list.checks
            }
            do {
                _ = try chain.summary(of: newest)
                list.ok(
                    "restore points",
                    "\(listing.count) point(s), the newest \(PointTime.rfc3339(newest.name.time)) opens with this key")
            } catch let e as FormatError {
                list.fail(
                    "restore points",
                    "the newest restore point \(chain.namespace.key(newest.name.relative)) does not open with this key (\(e.message))",
                    "put back the key that made the points; or, if the object is damaged, the next `backup --incremental` starts a new base",
                    .integrity)
            }
        } catch {
            let le = error as? LajuError
            list.fail("restore points", le?.message ?? "\(error)", le?.hint, le?.kind ?? .storage)
        }
        return list.checks
    }

    /// The 15-minute cron line is on (it ships commented).
    func pointsCron(_ list: inout CheckList) {
        guard let bytes = try? readRegularFile(cronFile, limit: 1 << 20).bytes else { return }
        let cron = String(decoding: bytes, as: UTF8.self)
        let on = cron.split(separator: "\n").contains { line in
            let t = line.drop(while: { $0 == " " || $0 == "\t" })
            return !t.hasPrefix("#") && t.contains("backup --incremental")
        }
        if on {
            list.ok("points cron", "\(cronFile) runs `backup --incremental` for the profiles that turn it on")
        } else {
            list.warn(
                "points cron",
                "BACKUP_INCREMENTAL is true but no line of \(cronFile) runs `backup --incremental`: no restore points are taken",
                "uncomment the 15-minute line (run-profiles backup --incremental --if-enabled) in \(cronFile)")
        }
    }

    /// No point in this database's namespace. Points live under a namespace derived from the key
    /// and the database's path: another key finds none, which should not read as "none were ever
    /// made".
    func noPoints(_ list: inout CheckList, chain: PointChain) throws {
        let scope = try settings.scope()
        let family = "\(scope.prefix)incremental/\(scope.databaseName)."
        let others = Set(
            try chain.store.list(prefix: family).compactMap { o -> String? in
                guard !o.key.hasPrefix(chain.namespace.root) else { return nil }
                return o.key.dropFirst(family.count).split(separator: "/").first.map(String.init)
            })
        if others.isEmpty {
            list.warn(
                "restore points", "no restore point of this database yet",
                "run `laju-backup backup --incremental` (the cron line does it every 15 minutes once uncommented)")
        } else {
            list.warn(
                "restore points",
                "no restore point made with this key for \(settings.databasePath); the store holds points of a database named \(scope.databaseName) under \(others.count) other namespace(s) (another key, or another path)",
                "if they are this database's, put back the key that made them (restores need it)")
        }
    }

    /// Write, read, list and delete a probe object under the prefix, each reported on its own.
    func probe(store: ObjectStore, prefix: String) -> [Check] {
        var checks: [Check] = []
        let key = prefix + ".laju-doctor-probe-\((try? secureRandomBytes(6).hexString) ?? "0")"
        let body = Array("laju-backup doctor probe\n".utf8)
        let dir = (try? Workspace(base: settings.tempBase, events: { _ in }))
        defer { dir?.remove() }
        guard let dir else {
            return [
                Check(
                    name: "store", level: .error, message: "no temporary directory for the probe",
                    fix: "set BACKUP_TMPDIR", exitStatus: 6)
            ]
        }
        let file = dir.file("probe")
        _ = FileManager.default.createFile(atPath: file, contents: Data(body))
        func record(_ what: String, _ body: () throws -> String) -> Bool {
            do {
                checks.append(Check(name: "store \(what)", level: .ok, message: try body()))
                return true
            } catch let e as LajuError {
                let denied =
                    e.message.contains("AccessDenied") || e.message.contains("Forbidden") || e.message.contains("403")
                checks.append(
                    Check(
                        name: "store \(what)", level: .error,
                        message: denied ? "\(what) denied in \(store.displayName): \(e.message)" : e.message,
                        fix: e.hint, exitStatus: e.kind.exitCode))
                return false
            } catch {
                checks.append(Check(name: "store \(what)", level: .error, message: "\(error)", exitStatus: 5))
                return false
            }
        }
        let wrote = record("write") {
            try store.put(
                key: key, file: file, size: Int64(body.count), md5: Digest.hash(.md5, body), metadata: [:],
                progress: nil)
            return "wrote \(key) in \(store.displayName)"
        }
        if wrote {
            _ = record("read") {
                let back = dir.file("back")
                try store.get(key: key, to: back, progress: nil)
                guard FileManager.default.contents(atPath: back) == Data(body) else {
                    throw LajuError(.storage, "the probe read back differs from what was written")
                }
                return "read it back"
            }
        }
        _ = record("list") {
            let n = try store.list(prefix: prefix).count
            return "listed \(prefix): \(n) object(s)"
        }
        if wrote {
            let deleted = record("delete") {
                try store.delete(key: key)
                return "deleted the probe"
            }
            if !deleted, let i = checks.lastIndex(where: { $0.name == "store delete" }) {
                checks[i].level = .warning
                checks[i].exitStatus = nil
                checks[i].message +=
                    " (the probe \(key) stays; write-only credentials for backups is fine, clean needs delete rights)"
            }
        }
        return checks
    }
}
