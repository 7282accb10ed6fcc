/// `list --remote`: what the store holds under the prefix, each object marked against the
/// catalog and the scope: `yes` (a row names it), `orphan` (this database's, no row), `other`
/// (another database's or a deeper prefix's, or not a backup name).
public struct RemoteListing {
    public struct Entry: Codable, Sendable {
        public var key: String
        public var size: Int64
        public var lastModified: Double?
        public var inCatalog: Bool
        /// `ours`, or why the object is not this database's.
        public var scope: String
        /// Deleted or hidden behind a delete marker; `version_id` survives and restore can use it.
        public var hidden: Bool = false
        public var versionId: String?
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var events: JobEventSink

    public init(settings: Settings, repository: Repository? = nil, events: @escaping JobEventSink) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.events = events
    }

    /// Newest first. Objects named for this database that no row names are looked at (one HEAD
    /// each, when the key is available): a backup of another database with the same file name is
    /// `other`, not an orphan.
    public func run() throws -> (entries: [Entry], catalogReadable: Bool, store: String, prefix: String) {
        let scope = try settings.scope()
        let store = try repository.store(role: .read)
        let objects = try store.list(prefix: scope.prefix)
        var known = Set<String>()
        var catalogReadable = true
        do {
            let scan = try repository.catalog(readOnly: true).scan(includeDeleted: true)
            known = Set(scan.records.map(\.key) + scan.bad.compactMap(\.key))
        } catch {
            catalogReadable = false
            events(.warning("catalog not readable, orphans cannot be marked: \(error)"))
        }
        let identity = try? settings.knownIdentity()
        let search = (try? settings.encryptionKey()).flatMap {
            try? StoreSearch(
                store: store, scope: scope, encryptionKey: $0, identity: identity ?? nil,
                databasePath: settings.databasePath)
        }
        var entries: [Entry] = []
        for o in objects.sorted(by: { ($0.lastModified ?? 0, $0.key) > ($1.lastModified ?? 0, $1.key) }) {
            var e = Entry(
                key: o.key, size: o.size, lastModified: o.lastModified, inCatalog: known.contains(o.key),
                scope: scope.whyNotOurs(o.key) ?? "ours")
            if e.scope == "ours", !e.inCatalog, catalogReadable, let search,
                let (_, verdict) = try? search.classify(key: o.key)
            {
                switch verdict {
                case .otherDatabase, .forged, .candidate: e.scope = verdict.reason
                default: break
                }
            }
            entries.append(e)
        }
        // Backups hidden behind delete markers (versioned buckets): shown, since restore can
        // still bring them back. Stores without versions, or credentials that may not list
        // versions, have none to show.
        for h in (try? store.versions?.hiddenBackups(prefix: scope.prefix)) ?? [] {
            entries.append(
                Entry(
                    key: h.key, size: h.size, lastModified: h.lastModified, inCatalog: known.contains(h.key),
                    scope: scope.whyNotOurs(h.key) ?? "ours", hidden: true, versionId: h.versionID))
        }
        return (entries, catalogReadable, store.displayName, scope.prefix)
    }
}
