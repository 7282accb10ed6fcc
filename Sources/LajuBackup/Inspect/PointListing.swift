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
        let chain = try PointChain(
            settings: settings, encryptionKey: try settings.encryptionKey(), store: try repository.store(role: .read),
            scratch: settings.tempBase)
        let namespace = chain.namespace, store = chain.store
        var entries: [Entry] = []
        for listed in try chain.listPoints().reversed() {
            let k = namespace.key(listed.name.relative)
            var e = Entry(
                point: PointChain.display(listed.name), key: k, time: PointTime.rfc3339(listed.name.time),
                kind: listed.name.kind)
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
        return (entries, store.displayName, namespace.root)
    }
}
