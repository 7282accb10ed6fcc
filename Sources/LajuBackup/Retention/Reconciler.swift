/// `laju-backup clean --orphans`: compares the store under the prefix with the catalog.
///
/// - orphan objects: objects under the prefix that no active row names (left by a crash between
///   upload and row, by another host, or by a row marked deleted whose object survived);
/// - missing objects: active rows of this store whose object is not there.
/// Both are reported. Orphan objects are deleted only when asked (`deleteOrphans`) and only
/// when older than `graceSeconds` (default 24 h), so an upload in flight is never touched.
/// Rows are never changed.
public struct Reconciler {
    public struct OrphanObject: Codable, Sendable, Equatable {
        public var key: String
        public var size: Int64
        public var lastModified: Double?
        /// `no row` or `row marked deleted`.
        public var reason: String
        /// `reported`, `deleted`, `kept: younger than grace`, `would delete` (dry run), `failed: ...`.
        public var action: String
    }
    public struct MissingObject: Codable, Sendable, Equatable {
        public var key: String
        public var id: String
        public var uploadedAt: Int64
    }
    public struct Outcome: Codable, Sendable {
        public var store: String
        public var prefix: String
        public var objects: Int
        public var activeRows: Int
        public var orphanObjects: [OrphanObject] = []
        public var missingObjects: [MissingObject] = []
        public var graceSeconds: Double
        public var dryRun: Bool
        public var failures: Int { orphanObjects.filter { $0.action.hasPrefix("failed") }.count }
    }

    public var settings: Settings
    public var deleteOrphans: Bool
    public var graceSeconds: Double
    public var dryRun: Bool
    public var now: () -> Int64
    public var events: JobEventSink

    public init(settings: Settings, deleteOrphans: Bool = false, graceSeconds: Double = 86_400, dryRun: Bool = false,
                now: @escaping () -> Int64 = { LocalTime.nowMilliseconds() }, events: @escaping JobEventSink) {
        self.settings = settings
        self.deleteOrphans = deleteOrphans
        self.graceSeconds = graceSeconds
        self.dryRun = dryRun
        self.now = now
        self.events = events
    }

    public func run() throws -> Outcome {
        let catalog = try settings.openCatalog(readOnly: true)
        try catalog.requireTable()
        let store = try settings.makeStore()
        let prefix = settings.prefix
        if deleteOrphans && prefix.isEmpty {
            throw LajuError(.usage, "refusing to delete orphans with an empty BACKUP_PREFIX (that would be the whole bucket)")
        }
        let rows = try catalog.all(includeDeleted: true)
        let objects = try store.list(prefix: prefix)
        let active = rows.filter { $0.deletedAt == nil && $0.storage == store.storageLabel }
        let activeKeys = Set(active.map(\.key))
        let deletedKeys = Set(rows.filter { $0.deletedAt != nil }.map(\.key))
        var outcome = Outcome(store: store.displayName, prefix: prefix, objects: objects.count, activeRows: active.count,
                              graceSeconds: graceSeconds, dryRun: dryRun)
        let nowSeconds = Double(now()) / 1000

        for o in objects where !activeKeys.contains(o.key) {
            var orphan = OrphanObject(key: o.key, size: o.size, lastModified: o.lastModified,
                                      reason: deletedKeys.contains(o.key) ? "row marked deleted" : "no row", action: "reported")
            if deleteOrphans {
                // Unknown age counts as young: never delete what might be an upload in flight.
                guard let modified = o.lastModified, nowSeconds - modified >= graceSeconds else {
                    orphan.action = "kept: younger than grace"
                    outcome.orphanObjects.append(orphan)
                    continue
                }
                if dryRun {
                    orphan.action = "would delete"
                } else {
                    do {
                        try store.delete(key: o.key)
                        orphan.action = "deleted"
                    } catch let e as LajuError where e.isNotFound {
                        orphan.action = "deleted"
                    } catch {
                        orphan.action = "failed: \(error)"
                    }
                }
            }
            outcome.orphanObjects.append(orphan)
        }

        let listed = Set(objects.map(\.key))
        for r in active where !listed.contains(r.key) {
            if r.key.hasPrefix(prefix) {
                outcome.missingObjects.append(MissingObject(key: r.key, id: r.id, uploadedAt: r.uploadedAt))
                continue
            }
            // Outside the prefix the listing cannot tell: ask for the object itself.
            do { _ = try store.head(key: r.key) } catch let e as LajuError where e.isNotFound {
                outcome.missingObjects.append(MissingObject(key: r.key, id: r.id, uploadedAt: r.uploadedAt))
            }
        }
        return outcome
    }
}
