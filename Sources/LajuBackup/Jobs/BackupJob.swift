/// One backup: check → lock → snapshot → seal → put → catalog row → clean up.
///
/// Everything that can be checked is checked before any temp file exists. The catalog row is
/// written only after the store accepted the object; if the row cannot be written the object is
/// deleted again, so neither side points at something the other lacks.
public struct BackupJob {
    public struct Outcome: Codable, Sendable {
        public var key: String
        public var id: String
        public var database: String
        public var store: String
        public var databaseBytes: Int64
        public var objectBytes: Int64
        public var checksum: String
        public var uploadedAt: Int64
        public var snapshotSeconds: Double
        public var sealSeconds: Double
        public var uploadSeconds: Double
        public var totalSeconds: Double
    }

    public var settings: Settings
    public var lockWait: Double = 0
    public var events: JobEventSink

    public init(settings: Settings, lockWait: Double = 0, events: @escaping JobEventSink) {
        self.settings = settings
        self.lockWait = lockWait
        self.events = events
    }

    /// Seconds since this database's newest active backup in the catalog (nil: none), for
    /// `backup --if-older-than` (the catch-up run after boot: cron does not run jobs missed while
    /// the host was down).
    public func newestBackupAge() throws -> Double? {
        let catalog = try settings.openCatalog(readOnly: true)
        try catalog.requireTable(forWriting: false)
        let newest = try catalog.scan(includeDeleted: false).split(try settings.scope()).ours.first
        return newest.map { Double(LocalTime.nowMilliseconds() - $0.uploadedAt) / 1000 }
    }

    public func run() throws -> Outcome {
        let started = monotonicSeconds()
        let database = settings.databasePath
        // 1. Checks, cheapest first, before anything is written.
        try Snapshot.checkSource(database)
        let key = try settings.encryptionKey()
        let level = try settings.compressionLevel()
        let threads = try settings.threads()
        let busy = try settings.busyTimeout()
        let prefix = try settings.prefix
        let catalog = try settings.openCatalog()
        try catalog.requireTable(forWriting: true)
        let store = try settings.makeStore()
        try store.checkAccess()

        let base = settings.tempBase
        let lock = try RunLock(directory: settings.lockDirectory, database: database, wait: lockWait)
        defer { withExtendedLifetime(lock) {} }
        // A snapshot can be as large as the database plus its WAL; the sealed object at most as
        // large again (incompressible data), and both exist together for a moment.
        let sourceBytes = fileSize(database).addingSaturating(fileSize(database + "-wal"))
        try Workspace.checkFreeSpace(in: base, needed: sourceBytes.multipliedSaturating(by: 2).addingSaturating(16 << 20))
        let ws = try Workspace(base: base, events: events)
        defer { ws.remove() }

        // 2. Snapshot, and a structural check of it: a database with a broken b-tree is not
        // stored, so that it never becomes the "latest" backup that a restore would then refuse.
        let snapshotPath = ws.file("snapshot.db")
        let (snap, snapSeconds) = try timedStep("snapshot", events: events) { _ in
            try Snapshot.take(source: database, destination: snapshotPath, busyTimeoutMilliseconds: busy)
        }
        let snapBytes = fileSize(snapshotPath)
        events(.step(name: "snapshot", summary: "\(database): \(Format.bytes(snapBytes)), \(snap.pages) pages\(snap.attempts > 1 ? ", \(snap.attempts) attempts" : "")", seconds: snapSeconds))
        let (problems, checkSeconds) = try timedStep("quick_check", events: events) { _ in
            try Snapshot.problems(snapshotPath)
        }
        if let problems {
            throw LajuError(.source, "database \(database) is damaged: PRAGMA quick_check on its snapshot says: \(problems); nothing was stored",
                            hint: "the previous backups are untouched; repair the database (sqlite3 DB '.recover'), or restore the last good backup")
        }
        events(.step(name: "quick_check", summary: "snapshot ok", seconds: checkSeconds))

        // 3. Seal (gzip + AES-256-GCM + MD5 in one pass); the plaintext snapshot goes right after.
        let objectPath = ws.file("object.db.gz.enc")
        let (sealed, sealSeconds) = try timedStep("seal", events: events) { progress in
            try Envelope.seal(input: snapshotPath, output: objectPath, key: key, level: level, threads: threads, progress: progress)
        }
        unlink(snapshotPath)
        events(.step(name: "seal", summary: "gzip -\(level) + aes-256-gcm: \(Format.bytes(sealed.plainBytes)) -> \(Format.bytes(sealed.objectBytes)) (\(Format.rate(sealed.plainBytes, sealSeconds)))", seconds: sealSeconds))

        // 4. Put.
        let dbName = database.lastPathComponentOf
        let objectKey = "\(prefix)\(dbName)-\(LocalTime.minuteStamp(epochMilliseconds: LocalTime.nowMilliseconds()))-\(UUID().uuidString.lowercased()).db.gz.enc"
        let checksum = sealed.md5.hexString
        let metadata = ObjectMetadata(iv: sealed.iv, tag: sealed.tag, checksum: checksum,
                                      keyFingerprint: key.fingerprint, sourceName: dbName,
                                      sourceBytes: snapBytes, sourceID: key.sourceID(databasePath: database), tool: "laju-backup/\(LajuBackupVersion.string)")
        let (_, putSeconds) = try timedStep("upload", events: events) { progress in
            try store.put(key: objectKey, file: objectPath, size: sealed.objectBytes, md5: sealed.md5,
                          metadata: metadata.pairs, progress: progress)
        }
        events(.step(name: "upload", summary: "\(store.displayName) \(objectKey) (\(Format.rate(sealed.objectBytes, putSeconds)))", seconds: putSeconds))

        // 5. Catalog row, only now that the object is stored.
        let uploadedAt = LocalTime.nowMilliseconds()
        let record = BackupRecord(id: UUID().uuidString.lowercased(), key: objectKey, fileName: objectKey.lastPathComponentOf,
                                  fileSize: sealed.objectBytes, storage: store.storageLabel, checksum: checksum,
                                  uploadedAt: uploadedAt, encIV: Data(sealed.iv).base64EncodedString(),
                                  encTag: Data(sealed.tag).base64EncodedString())
        do {
            try catalog.insert(record, location: store.displayName)
        } catch {
            // Keep bucket and catalog in step: an object without its row is removed again. A
            // write-only identity (or Object Lock) cannot: then the object is named, with the
            // ways to adopt or remove it.
            let kind = (error as? LajuError)?.kind ?? .catalog
            do {
                try store.delete(key: objectKey)
            } catch let deleteError {
                throw LajuError(kind, "\(error); the uploaded object is now orphaned: \(objectKey) (removing it failed: \((deleteError as? LajuError)?.message ?? "\(deleteError)"))",
                                hint: "it is a complete backup: once the catalog works, `laju-backup catalog sync` records it (or delete it with an identity that may)")
            }
            throw LajuError(kind, "\(error) (the uploaded object was removed again)")
        }
        events(.step(name: "catalog", summary: "row \(record.id) in \(catalog.path)", seconds: 0))
        return Outcome(key: objectKey, id: record.id, database: database, store: store.displayName,
                       databaseBytes: snapBytes, objectBytes: sealed.objectBytes, checksum: checksum,
                       uploadedAt: uploadedAt, snapshotSeconds: snapSeconds, sealSeconds: sealSeconds,
                       uploadSeconds: putSeconds, totalSeconds: monotonicSeconds() - started)
    }
}

/// Size of a file, 0 when absent.
func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

extension Int64 {
    /// `self + other`, clamped at `Int64.max`/`.min` instead of trapping: sizes from headers
    /// and metadata are hostile until checked, and a sum must never crash the run.
    public func addingSaturating(_ other: Int64) -> Int64 {
        let (v, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : v
    }

    public func multipliedSaturating(by other: Int64) -> Int64 {
        let (v, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : v
    }
}

public enum LajuBackupVersion {
    public static let string = "0.1.0"
}
