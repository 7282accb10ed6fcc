/// `laju-backup clean --orphans`: compares the store under the prefix with the catalog.
///
/// - orphan objects: objects of this profile (`BackupScope.ownsObject`: this database's backup
///   names directly under the prefix) that no active row names (left by a crash between upload
///   and row, or by a row marked deleted whose object survived);
/// - objects it cannot attribute (the first Laju scripts' unnamed keys, names that are not
///   backup names) are reported, never deleted; objects of other databases and deeper prefixes
///   are counted and left alone;
/// - missing objects: active rows of this profile and store whose object is not there;
/// - partial uploads: hidden files of killed runs (local store) and incomplete multipart uploads
///   of this profile (S3).
/// Orphan objects and partial uploads are deleted only when asked (`deleteOrphans`) and only when
/// older than `graceSeconds` (default 24 h), so an upload in flight is never touched. An object
/// that any row of the catalog names (another profile's, a deleted one's, a bad one's) is never
/// deleted. Rows are never changed.
public struct OrphanCleanJob {
    public struct OrphanObject: Codable, Sendable, Equatable {
        public var key: String
        public var size: Int64
        public var lastModified: Double?
        /// `no row`, `row marked deleted`, or why it cannot be attributed.
        public var reason: String
        /// `reported`, `deleted`, `kept: younger than grace`, `would delete` (dry run), `failed: ...`.
        public var action: String
    }
    public struct MissingObject: Codable, Sendable, Equatable {
        public var key: String
        public var id: String
        public var uploadedAt: Int64
    }
    public struct Partial: Codable, Sendable, Equatable {
        public var upload: PartialUpload
        /// `reported`, `removed`, `kept: ...`, `would remove`, `failed: ...`.
        public var action: String
    }
    public struct Outcome: Codable, Sendable {
        public var store: String
        public var prefix: String
        public var objects: Int
        public var activeRows: Int
        public var orphanObjects: [OrphanObject] = []
        /// Objects under the prefix that cannot be attributed to any database: reported only.
        public var unattributed: [OrphanObject] = []
        /// Objects of other databases or deeper prefixes: left alone.
        public var otherObjects: Int = 0
        public var missingObjects: [MissingObject] = []
        public var partials: [Partial] = []
        public var badRows: [BadRow] = []
        public var graceSeconds: Double
        public var dryRun: Bool
        public var failures: Int {
            orphanObjects.filter { $0.action.hasPrefix("failed") }.count
                + partials.filter { $0.action.hasPrefix("failed") }.count
        }
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var deleteOrphans: Bool
    public var graceSeconds: Double
    public var dryRun: Bool
    public var now: () -> Int64
    public var events: JobEventSink

    public init(
        settings: Settings, repository: Repository? = nil, deleteOrphans: Bool = false, graceSeconds: Double = 86_400,
        dryRun: Bool = false,
        now: @escaping () -> Int64 = { LocalTime.nowMilliseconds() }, events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.deleteOrphans = deleteOrphans
        self.graceSeconds = graceSeconds
        self.dryRun = dryRun
        self.now = now
        self.events = events
    }

    public func run() throws -> Outcome {
        let catalog = try repository.catalog(readOnly: true)
        try catalog.requireTable(forWriting: false)
        let store = try repository.store(role: .clean)
        let scope = try settings.scope()
        let prefix = scope.prefix
        if deleteOrphans && prefix.isEmpty {
            throw LajuError(
                .usage, "refusing to delete orphans with an empty BACKUP_PREFIX (that would be the whole bucket)")
        }
        let scan = try catalog.scan(includeDeleted: true)
        let objects = try store.list(prefix: prefix)
        let ours = scan.split(scope).ours
        let active = ours.filter { $0.deletedAt == nil && $0.storage == store.storageLabel }
        let activeKeys = Set(active.map(\.key))
        // Objects that rows of any scope still count on, and keys of bad rows: never deleted.
        let named = NamedKeys(
            protected: Set(scan.records.filter { $0.deletedAt == nil }.map(\.key) + scan.bad.compactMap(\.key)),
            deleted: Set(scan.records.filter { $0.deletedAt != nil }.map(\.key)))
        var outcome = Outcome(
            store: store.displayName, prefix: prefix, objects: objects.count, activeRows: active.count,
            badRows: scan.bad, graceSeconds: graceSeconds, dryRun: dryRun)
        for bad in scan.bad {
            events(.warning("catalog row \(Display.safe(bad.id)) skipped: \(bad.problem)"))
        }
        // Objects without a row are looked at (one HEAD each): a valid backup of this database
        // under the current key is never deleted (`catalog sync` adopts it), and a backup of
        // another database with the same file name is not ours at all.
        var search: StoreSearch?
        do {
            search = try StoreSearch(
                store: store, scope: scope, encryptionKey: try settings.encryptionKey(),
                identity: try settings.knownIdentity(), databasePath: settings.databasePath)
        } catch {
            events(
                .warning(
                    "cannot read object metadata without a usable BACKUP_ENCRYPTION_KEY (\(error)); objects without a row are only reported"
                ))
        }
        let nowSeconds = Double(now()) / 1000
        for o in objects where !activeKeys.contains(o.key) {
            try sort(o, scope: scope, search: search, named: named, store: store, now: nowSeconds, into: &outcome)
        }

        let listed = Set(objects.map(\.key))
        for r in active where !listed.contains(r.key) {
            outcome.missingObjects.append(MissingObject(key: r.key, id: r.id, uploadedAt: r.uploadedAt))
        }
        outcome.partials = try partials(in: store, scope: scope, now: nowSeconds)
        return outcome
    }

    /// Keys the catalog names: by a row not marked deleted (of any scope) or a bad row
    /// (`protected`), or by a row marked deleted.
    struct NamedKeys {
        var protected: Set<String>
        var deleted: Set<String>
    }

    /// Unknown age counts as young: never delete what might be an upload in flight.
    func oldEnough(_ t: Double?, now nowSeconds: Double) -> Bool {
        guard let t else { return false }
        return nowSeconds - t >= graceSeconds
    }

    /// One object under the prefix that no active row of this profile names: an object nobody
    /// can attribute (reported), another database's or a deeper prefix's (counted), or an orphan
    /// of this profile's (deleted when asked, old enough, and neither a valid backup of ours nor
    /// named by any row).
    func sort(
        _ o: ObjectInfo, scope: BackupScope, search: StoreSearch?, named: NamedKeys, store: ObjectStore,
        now nowSeconds: Double, into outcome: inout Outcome
    ) throws {
        if let problem = ObjectKey.problem(o.key) {
            // A legal S3 key that no command of ours can name safely (`..`, controls...):
            // reported, never requested, never deleted.
            outcome.unattributed.append(
                OrphanObject(
                    key: o.key, size: o.size, lastModified: o.lastModified,
                    reason: "unusable key: \(problem)", action: "reported"))
            return
        }
        if !scope.ownsObject(key: o.key) {
            switch scope.attribute(o.key) {
            case .unnamed, .unrecognised:
                outcome.unattributed.append(
                    OrphanObject(
                        key: o.key, size: o.size, lastModified: o.lastModified,
                        reason: scope.whyNotOurs(o.key) ?? "not a usable key", action: "reported"))
            default:
                outcome.otherObjects += 1
            }
            return
        }
        var orphan = OrphanObject(
            key: o.key, size: o.size, lastModified: o.lastModified,
            reason: named.deleted.contains(o.key) ? "row marked deleted" : "no row", action: "reported")
        var keep = false
        if !named.protected.contains(o.key) && !named.deleted.contains(o.key) {
            if let search {
                let (_, verdict) = try search.classify(key: o.key)
                switch verdict {
                case .ours:
                    orphan.reason = "no row; a valid backup of this database under the current key"
                    orphan.action = "kept: adopt it with `laju-backup catalog sync`"
                    keep = true
                case .legacy:
                    orphan.reason = "no row; a backup made before identities, perhaps this database's"
                    orphan.action = "kept: restore it with `laju-backup restore --key KEY` if it is"
                    keep = true
                case .otherDatabase, .candidate:
                    outcome.otherObjects += 1
                    return
                case .forged:
                    // Perhaps one of ours whose metadata was changed, perhaps planted: not
                    // provably junk, so not deleted on a guess.
                    orphan.reason = "no row; \(verdict.reason)"
                    orphan.action =
                        "kept: inspect it (`laju-backup list --remote`) and delete it by hand if it is not yours"
                    keep = true
                default:
                    orphan.reason = "no row; \(verdict.reason)"
                }
            } else {
                keep = true
            }
        }
        if named.protected.contains(o.key) {
            orphan.reason = "an active row of another scope names it"
        } else if deleteOrphans && !keep {
            orphan.action = remove(o, store: store, now: nowSeconds)
        }
        outcome.orphanObjects.append(orphan)
    }

    /// Deletes an orphan that may go, unless it is young or this is a dry run; what was done.
    func remove(_ o: ObjectInfo, store: ObjectStore, now nowSeconds: Double) -> String {
        if !oldEnough(o.lastModified, now: nowSeconds) { return "kept: younger than grace" }
        if dryRun { return "would delete" }
        do {
            if case .locked(let until) = try store.removeBackup(key: o.key) {
                return "kept: locked\(until.map { " until \(HTTPDate.iso8601($0))" } ?? "") by S3 Object Lock"
            }
            return "deleted"
        } catch let e as LajuError where e.isNotFound {
            return "deleted"
        } catch {
            return "failed: \(error)"
        }
    }

    /// Uploads that never finished: S3's only when meant for this profile's keys; local: any dead
    /// run's file. Removed when asked, unless their run may still be going.
    func partials(in store: ObjectStore, scope: BackupScope, now nowSeconds: Double) throws -> [Partial] {
        var out: [Partial] = []
        for upload in try store.partialUploads(prefix: scope.prefix) {
            if upload.uploadID != nil && !scope.ownsObject(key: upload.key) { continue }
            var p = Partial(upload: upload, action: "reported")
            if deleteOrphans {
                if upload.uploadID == nil && !upload.ownerGone {
                    p.action = "kept: its run is still going"
                } else if !oldEnough(upload.started, now: nowSeconds) && !upload.ownerGone {
                    p.action = "kept: younger than grace"
                } else if dryRun {
                    p.action = "would remove"
                } else {
                    do {
                        try store.removePartialUpload(upload)
                        p.action = "removed"
                    } catch {
                        p.action = "failed: \(error)"
                    }
                }
            }
            out.append(p)
        }
        return out
    }
}
