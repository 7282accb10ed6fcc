/// `laju-backup clean`: applies a `RetentionPolicy` to the catalog and the store.
///
/// Per doomed backup: delete the object, then set `deleted_at` (ms) on its row. An object
/// already gone (404 / missing file) counts as deleted. Any other failure leaves the row as it is
/// and the run goes on; the outcome lists the failures and the command exits non-zero.
/// Only keys the catalog names are ever deleted, and only rows whose `storage` is this store's.
///
/// "The newest backup that verified" is, without a verification log, the newest active row whose
/// object exists in the store (HEAD succeeds) with exactly `file_size` bytes. It is never
/// deleted, nor is the newest row itself.
public struct FullCleanJob {
    public struct Failure: Codable, Sendable, Equatable {
        public var key: String
        public var error: String
    }
    public struct Outcome: Codable, Sendable {
        public var policy: String
        public var dryRun: Bool
        public var plan: RetentionPlan
        /// The newest active backup whose object exists with the catalog's size.
        public var newestVerified: String?
        public var deleted: [String] = []
        /// Deleted rows whose object was already gone.
        public var alreadyGone: [String] = []
        public var failed: [Failure] = []
        /// Active rows left alone because they belong to another storage (`storage` column).
        public var otherStorage: Int = 0
        /// Active rows left alone because they belong to another database or prefix.
        public var otherScope: Int = 0
        /// Rows no command acts on (unusable key, `uploaded_at` not in milliseconds...).
        public var badRows: [BadRow] = []
        /// Backups retention would delete that S3 Object Lock still protects.
        public var locked: [Locked] = []
    }

    public struct Locked: Codable, Sendable, Equatable {
        public var key: String
        /// Seconds since the epoch, when the store said.
        public var until: Double?
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var policy: RetentionPolicy
    public var dryRun: Bool
    public var now: () -> Int64
    public var events: JobEventSink

    public init(
        settings: Settings, repository: Repository? = nil, policy: RetentionPolicy, dryRun: Bool = false,
        now: @escaping () -> Int64 = { LocalTime.nowMilliseconds() }, events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.policy = policy
        self.dryRun = dryRun
        self.now = now
        self.events = events
    }

    public func run() throws -> Outcome {
        let catalog = try repository.catalog(readOnly: dryRun)
        try catalog.requireTable(forWriting: false)
        let scope = try settings.scope()
        let store = try repository.store(role: .clean)
        let scan = try catalog.scan(includeDeleted: false)
        var outcome = Outcome(policy: policy.summary, dryRun: dryRun, plan: RetentionPlan(decisions: []))
        outcome.badRows = scan.bad
        for bad in scan.bad {
            events(.warning("catalog row \(Display.safe(bad.id)) skipped (never deleted): \(bad.problem)"))
        }
        let (ours, others) = scan.split(scope)
        outcome.otherScope = others.count
        if !others.isEmpty {
            events(
                .warning(
                    "\(others.count) active row(s) belong to other databases or prefixes than \(scope.databaseName) under \(Display.safe(scope.prefix)); left alone"
                ))
        }
        // A row written for another store (e.g. s3 rows while cleaning a file:// store) would
        // "404" here and be marked deleted while its object lives on: leave such rows alone.
        let rows = ours.filter { $0.storage == store.storageLabel }
        outcome.otherStorage = ours.count - rows.count
        if outcome.otherStorage > 0 {
            events(
                .warning(
                    "\(outcome.otherStorage) active row(s) name storage other than '\(store.storageLabel)'; left alone")
            )
        }
        outcome.newestVerified = try newestVerified(rows, store: store)
        if outcome.newestVerified == nil && !rows.isEmpty {
            events(
                .warning(
                    "no active backup has its object in \(store.displayName) with the catalog's size; only the newest row is protected"
                ))
        }
        let plan = Retention.plan(
            rows, policy: policy, now: now(), protect: Set(outcome.newestVerified.map { [$0] } ?? []))
        outcome.plan = plan
        events(
            .step(
                name: "plan",
                summary:
                    "\(plan.decisions.count) active backup(s) in \(store.displayName): keep \(plan.keep.count), delete \(plan.remove.count) (\(policy.summary))",
                seconds: 0))
        guard !dryRun else { return outcome }

        for d in plan.remove {
            // The plan only holds rows of this scope; say so again where it matters most.
            guard scope.ownsRow(key: d.key) else { continue }
            remove(d.key, store: store, catalog: catalog, outcome: &outcome)
        }
        return outcome
    }

    /// Deletes one doomed backup: the object first, then its row is marked deleted. An object
    /// already gone counts as deleted; one that S3 Object Lock keeps is neither deleted nor a
    /// failure (a later run deletes it); any other failure leaves the row as it is.
    func remove(_ key: String, store: ObjectStore, catalog: Catalog, outcome: inout Outcome) {
        do {
            let result: RemoveResult
            do {
                result = try store.removeBackup(key: key)
            } catch let e as LajuError where e.isNotFound {
                result = .absent
            }
            if case .locked(let until) = result {
                outcome.locked.append(Locked(key: key, until: until))
                events(
                    .step(
                        name: "locked",
                        summary:
                            "\(key) is locked\(until.map { " until \(HTTPDate.iso8601($0))" } ?? "") (S3 Object Lock); kept, a later clean deletes it",
                        seconds: 0))
                return
            }
            let existed = result == .deleted
            try catalog.markDeleted(key: key, at: now())
            if existed { outcome.deleted.append(key) } else { outcome.alreadyGone.append(key) }
            events(
                .step(
                    name: "delete",
                    summary: "\(key)\(existed ? "" : " (object was already gone)"); row marked deleted",
                    seconds: 0))
        } catch {
            outcome.failed.append(Failure(key: key, error: "\(error)"))
            events(.warning("could not delete \(key): \(error); its row is untouched"))
        }
    }

    /// HEADs active rows newest first until one has its object with the catalog's size.
    /// A store error other than "not found" stops the run before anything is deleted: without
    /// knowing which backup is intact, nothing may go.
    func newestVerified(_ rows: [BackupRecord], store: ObjectStore) throws -> String? {
        for r in rows.sorted(by: { ($0.uploadedAt, $0.key) > ($1.uploadedAt, $1.key) }) {
            do {
                let info = try store.head(key: r.key)
                if info.size == r.fileSize { return r.key }
                events(.warning("\(r.key) is \(info.size) bytes in the store but \(r.fileSize) in the catalog"))
            } catch let e as LajuError where e.isNotFound {
                events(.warning("\(r.key) is in the catalog but not in \(store.displayName)"))
            } catch let e as LajuError {
                throw LajuError(
                    e.kind, "cannot check which backup is the newest intact one: \(e.message); nothing was deleted",
                    hint: e.hint)
            }
        }
        return nil
    }
}
