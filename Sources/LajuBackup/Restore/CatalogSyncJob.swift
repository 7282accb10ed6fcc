/// `laju-backup catalog sync`: puts back in the catalog the backups of this database that the
/// store holds and no row names. After a disaster restore the catalog is the restored database's,
/// which cannot know the backup it was restored from (each row is written after its own
/// snapshot); and objects uploaded by a run killed before its row was written are valid backups
/// too. An object is adopted only when its metadata proves, under the key, that it is a backup of
/// this database stored under that very key (`StoreSearch.Verdict.ours`); everything else (another
/// database's, metadata that does not authenticate, backups made before identities, whose
/// metadata proves nothing) is reported with the reason.
public struct CatalogSyncJob {
    public struct Adopted: Codable, Sendable, Equatable {
        public var key: String
        public var id: String
        public var uploadedAt: Int64
        public var fileSize: Int64
    }
    public struct Skipped: Codable, Sendable, Equatable {
        public var key: String
        public var reason: String
    }
    public struct Outcome: Codable, Sendable {
        public var store: String
        public var prefix: String
        public var catalog: String
        public var dryRun: Bool
        public var adopted: [Adopted] = []
        public var skipped: [Skipped] = []
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var dryRun: Bool
    public var events: JobEventSink

    public init(settings: Settings, repository: Repository? = nil, dryRun: Bool = false, events: @escaping JobEventSink)
    {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.dryRun = dryRun
        self.events = events
    }

    public func run() throws -> Outcome {
        let encryptionKey = try settings.encryptionKey()
        let catalog = try repository.catalog(readOnly: dryRun)
        try catalog.requireTable(forWriting: !dryRun)
        let scope = try settings.scope()
        let store = try repository.store(role: .read)
        let scan = try catalog.scan(includeDeleted: true)
        let named = Set(scan.records.map(\.key) + scan.bad.compactMap(\.key))
        let search = try StoreSearch(
            store: store, scope: scope, encryptionKey: encryptionKey, identity: try settings.knownIdentity(),
            databasePath: settings.databasePath)
        var outcome = Outcome(store: store.displayName, prefix: scope.prefix, catalog: catalog.path, dryRun: dryRun)
        for o in try store.list(prefix: scope.prefix) where !named.contains(o.key) {
            guard ObjectKey.problem(o.key) == nil, scope.ownsObject(key: o.key) else { continue }
            let (info, verdict) = try search.classify(key: o.key)
            guard case .ours(let meta) = verdict else {
                outcome.skipped.append(Skipped(key: o.key, reason: verdict.reason))
                continue
            }
            guard !meta.checksum.isEmpty else {
                outcome.skipped.append(Skipped(key: o.key, reason: "its metadata has no checksum"))
                continue
            }
            // The upload time the row would have had: the object's own time in the store.
            var uploadedAt = Int64((o.lastModified ?? info.lastModified ?? 0) * 1000)
            if uploadedAt < BackupRecord.earliestMilliseconds { uploadedAt = LocalTime.nowMilliseconds() }
            let record = BackupRecord(
                id: UUID().uuidString.lowercased(), key: o.key, fileName: o.key.lastPathComponentOf,
                fileSize: info.size, compression: meta.compression.rawValue,
                storage: store.storageLabel, checksum: meta.checksum,
                uploadedAt: uploadedAt, encIV: Data(meta.iv).base64EncodedString(),
                encTag: Data(meta.tag).base64EncodedString())
            if !dryRun { try catalog.insert(record, location: store.displayName) }
            outcome.adopted.append(Adopted(key: o.key, id: record.id, uploadedAt: uploadedAt, fileSize: info.size))
            events(.step(name: "adopt", summary: "\(o.key)\(dryRun ? " (dry run)" : ""): row \(record.id)", seconds: 0))
        }
        return outcome
    }
}
