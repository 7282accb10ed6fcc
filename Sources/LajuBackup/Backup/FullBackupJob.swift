/// One backup: check → lock → snapshot → seal → put → catalog row → clean up.
///
/// Everything that can be checked is checked before any temp file exists. The catalog row is
/// written only after the store accepted the object; if the row cannot be written the object is
/// deleted again, so neither side points at something the other lacks.
public struct FullBackupJob {
    public struct Outcome: Codable, Sendable {
        public var key: String
        /// gzip, zstd or xz.
        public var compression: String
        /// What ran on the snapshot: integrity_check or quick_check.
        public var check: String
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
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var lockWait: Double = 0
    /// `--claim-name`: take BACKUP_NAME over from the database its identity record names.
    public var claimName: Bool
    /// `--new-key`: the key differs from the newest backup's on purpose.
    public var newKey: Bool
    public var events: JobEventSink

    public init(
        settings: Settings, repository: Repository? = nil, lockWait: Double = 0, claimName: Bool = false,
        newKey: Bool = false, events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.lockWait = lockWait
        self.claimName = claimName
        self.newKey = newKey
        self.events = events
    }

    /// Seconds since this database's newest active backup in the catalog (nil: none), for
    /// `backup --if-older-than` (the catch-up run after boot: cron does not run jobs missed while
    /// the host was down).
    public func newestBackupAge() throws -> Double? {
        let catalog = try repository.catalog(readOnly: true)
        try catalog.requireTable(forWriting: false)
        let newest = try catalog.scan(includeDeleted: false).split(try settings.scope()).ours.first
        return newest.map { Double(LocalTime.nowMilliseconds() - $0.uploadedAt) / 1000 }
    }

    public func run() throws -> Outcome {
        let started = monotonicSeconds()
        let database = settings.databasePath
        // 1. Checks, cheapest first, before anything is written.
        try Snapshot.checkSource(database)
        let encryptionKey = try settings.encryptionKey()
        let codec = try settings.compression()
        let level = try settings.compressionLevel(for: codec)
        let threads = try settings.threads()
        let check = try settings.backupCheck()
        let busy = try settings.busyTimeout()
        let prefix = try settings.prefix
        let catalog = try repository.catalog()
        try catalog.requireTable(forWriting: true)
        let store = try repository.store()
        try store.checkAccess()
        let identity = try settle(database: database, catalog: catalog, store: store, encryptionKey: encryptionKey)

        // 2. Snapshot, and its check on a connection and thread of its own while it is sealed: a
        // database with a broken b-tree is not stored, so that it never becomes the "latest" backup
        // that a restore would then refuse. With the full check, the seal pass also computes a MAC
        // of the plaintext; recorded with the object, it lets restores prove they rebuilt exactly
        // these checked bytes instead of running the check again (see FullRestoreJob).
        let stage = try SnapshotStage(
            settings: settings, database: database, check: check,
            busyTimeoutMilliseconds: busy, lockWait: lockWait, events: events)
        defer { stage.close() }
        let ws = stage.workspace
        let snapshotPath = stage.path
        let snapBytes = fileSize(snapshotPath)
        let snapSeconds = stage.seconds
        let checkName = stage.checkName
        let needs = store.uploadDigestNeeds
        let options = Envelope.Options(
            codec: codec, level: level, threads: codec.encoderThreads(threads, level: level),
            partSize: needs.partSize, sha256: needs.sha256,
            macKey: check == .full ? try encryptionKey.integrityMACKey() : nil)
        let objectPath = ws.file("object\(codec.keySuffix)")
        let sealing = try timedStep("seal", events: events) { progress in
            try Envelope.seal(
                input: snapshotPath, output: objectPath, encryptionKey: encryptionKey, options: options,
                progress: progress)
        }
        let (sealed, sealSeconds) = sealing
        try stage.requireSound(database: database, what: "backups", events: events)
        events(
            .step(
                name: "seal",
                summary:
                    "\(codec.rawValue) -\(level) + aes-256-gcm: \(Human.bytes(sealed.plainBytes)) -> \(Human.bytes(sealed.objectBytes)) (\(Human.rate(sealed.plainBytes, sealSeconds)))",
                seconds: sealSeconds))

        // 3. Put.
        let (objectKey, putSeconds) = try upload(
            sealed, from: objectPath, prefix: prefix, codec: codec, sourceBytes: snapBytes,
            identity: identity, encryptionKey: encryptionKey, store: store)
        let checksum = sealed.md5.hexString

        // 4. Catalog row, only now that the object is stored.
        let uploadedAt = LocalTime.nowMilliseconds()
        let record = BackupRecord(
            id: UUID().uuidString.lowercased(), key: objectKey, fileName: objectKey.lastPathComponentOf,
            fileSize: sealed.objectBytes, compression: codec.rawValue, storage: store.storageLabel, checksum: checksum,
            uploadedAt: uploadedAt, encIV: Data(sealed.iv).base64EncodedString(),
            encTag: Data(sealed.tag).base64EncodedString())
        try insert(record, into: catalog, store: store)
        events(.step(name: "catalog", summary: "row \(record.id) in \(catalog.path)", seconds: 0))
        return Outcome(
            key: objectKey, compression: codec.rawValue, check: checkName, id: record.id, database: database,
            store: store.displayName,
            databaseBytes: snapBytes, objectBytes: sealed.objectBytes, checksum: checksum,
            uploadedAt: uploadedAt, snapshotSeconds: snapSeconds, sealSeconds: sealSeconds,
            uploadSeconds: putSeconds, totalSeconds: monotonicSeconds() - started)
    }

    /// Whose backup this is, settled before the snapshot (which then carries the database's id),
    /// and that it is made with the key of this database's newest backup.
    func settle(database: String, catalog: Catalog, store: ObjectStore, encryptionKey: EncryptionKey) throws
        -> Identity
    {
        let readStore = try repository.store(role: .read)
        let identity = try Identity.forWriting(
            settings: settings, database: database, readStore: readStore, writeStore: store,
            encryptionKey: encryptionKey, claim: claimName, events: events)
        try KeyContinuity(catalog: catalog, scope: try settings.scope(), store: readStore, events: events)
            .check(encryptionKey, newKey: newKey)
        return identity
    }

    /// Stores the sealed object under a fresh key, `<prefix><db name>-<YYYY-MM-DDTHH:mm>-<uuid><suffix>`,
    /// with the metadata that lets a restore work without the catalog. Returns the key and the
    /// upload's seconds.
    func upload(
        _ sealed: Envelope.Sealed, from objectPath: String, prefix: String, codec: Codec, sourceBytes: Int64,
        identity: Identity, encryptionKey: EncryptionKey, store: ObjectStore
    ) throws -> (String, Double) {
        let database = settings.databasePath
        let dbName = database.lastPathComponentOf
        let objectKey =
            "\(prefix)\(dbName)-\(LocalTime.minuteStamp(epochMilliseconds: LocalTime.nowMilliseconds()))-\(UUID().uuidString.lowercased())\(codec.keySuffix)"
        var metadata = ObjectMetadata(
            iv: sealed.iv, tag: sealed.tag, checksum: sealed.md5.hexString,
            keyFingerprint: encryptionKey.fingerprint, sourceName: dbName,
            sourceBytes: sourceBytes, sourceID: encryptionKey.sourceID(databasePath: database),
            tool: "laju-backup/\(LajuBackupVersion.string)",
            compression: codec, integrityMAC: sealed.plainMAC)
        metadata.bind(to: identity, objectKey: objectKey, macKey: try encryptionKey.metadataKey())
        let (_, seconds) = try timedStep("upload", events: events) { progress in
            try store.put(
                key: objectKey, file: objectPath, size: sealed.objectBytes,
                digests: ObjectDigests(md5: sealed.md5, sha256: sealed.sha256, parts: sealed.parts),
                metadata: metadata.pairs, progress: progress)
        }
        events(
            .step(
                name: "upload",
                summary: "\(store.displayName) \(objectKey) (\(Human.rate(sealed.objectBytes, seconds)))",
                seconds: seconds))
        return (objectKey, seconds)
    }

    /// Writes the row of a stored object. Bucket and catalog stay in step: when the row cannot be
    /// written, the object is removed again. Write-only credentials (or Object Lock) cannot remove
    /// it: then the object is named, with the ways to adopt or remove it.
    func insert(_ record: BackupRecord, into catalog: Catalog, store: ObjectStore) throws {
        do {
            try catalog.insert(record, location: store.displayName)
        } catch {
            let kind = (error as? LajuError)?.kind ?? .catalog
            do {
                try store.delete(key: record.key)
            } catch let deleteError {
                throw LajuError(
                    kind,
                    "\(error); the uploaded object is now orphaned: \(record.key) (removing it failed: \((deleteError as? LajuError)?.message ?? "\(deleteError)"))",
                    hint:
                        "it is a complete backup: once the catalog works, `laju-backup catalog sync` records it (or delete it with credentials that may)"
                )
            }
            throw LajuError(kind, "\(error) (the uploaded object was removed again)")
        }
    }
}
