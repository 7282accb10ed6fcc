/// `list --points`: every restore point of this database, newest first, from the store's listing
/// and each manifest's 108-byte summary (one small ranged GET per point).
public struct PointListing {
    public struct Entry: Codable, Sendable {
        public var point: String
        public var key: String
        /// RFC 3339, UTC.
        public var time: String
        public var kind: PointKind
        /// Pack and manifest bytes the run that made it uploaded.
        public var uploadedBytes: Int64?
        public var databaseBytes: Int64?
        /// Incremental points since its base.
        public var depth: Int?
        /// Why its summary could not be read (then the point will not restore).
        public var problem: String?
        /// True for a point made before identities (format 1, in the namespace of the path):
        /// restorable, but nothing proves it is this database's.
        public var madeBeforeIdentities: Bool?
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

    public func run() throws -> (entries: [Entry], store: String, namespace: String) {
        // Only summaries are read (ranged GETs): nothing is downloaded.
        let store = try repository.store(role: .read)
        let chains = try PointChain.forReading(
            settings: settings, encryptionKey: try settings.encryptionKey(), store: store,
            scratch: settings.tempBase, events: events)
        var entries: [Entry] = []
        for chain in chains {
            entries += try self.entries(of: chain)
        }
        return (entries, store.displayName, chains.map(\.namespace.root).joined(separator: ", "))
    }

    /// The points of one namespace, newest first.
    func entries(of chain: PointChain) throws -> [Entry] {
        let namespace = chain.namespace
        var entries: [Entry] = []
        for listed in try chain.listPoints().reversed() {
            let k = namespace.key(listed.name.relative)
            var e = Entry(
                point: PointChain.display(listed.name), key: k, time: PointTime.rfc3339(listed.name.time),
                kind: listed.name.kind)
            if namespace.version == 1 { e.madeBeforeIdentities = true }
            do {
                let s = try chain.summary(of: listed)
                e.uploadedBytes = s.uploadedBytes
                e.databaseBytes = s.databaseBytes
                e.depth = s.depth
            } catch let f as FormatError {
                e.problem = "damaged: \(f.message)"
            } catch let l as LajuError where l.isNotFound {
                e.problem = "missing"
            }
            entries.append(e)
        }
        return entries
    }
}
