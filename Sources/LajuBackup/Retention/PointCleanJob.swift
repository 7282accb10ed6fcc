/// `clean --points`: the retention policy applied to restore points. The newest point that can be
/// restored is always kept, and nothing is deleted when none can; points newer than it are left
/// alone; a point is also kept while a later point of its chain is (restoring that one reads it);
/// a manifest is deleted only once its summary authenticates;
/// a pack is deleted only when no kept point's manifest names it and it is older than the grace
/// period (so the pack of a run still in flight is never touched). Manifests go first, then packs:
/// a run killed in between leaves only unreferenced packs, which the next clean removes.
public struct PointCleanJob {
    public struct Decision: Codable, Sendable {
        public var point: String
        public var time: String
        public var kind: PointKind
        public var keep: Bool
        public var reasons: [String]
        public var bytes: Int64
    }

    public struct Outcome: Codable, Sendable {
        /// Newest first.
        public var points: [Decision]
        public var deletedPacks: [String]
        public var keptPacks: Int
        /// Manifests and packs deleted (or that would be, with --dry-run).
        public var freedBytes: Int64
        public var dryRun: Bool
        public var failures: [String]
        /// Manifests and packs retention wanted gone but S3 Object Lock still protects: kept (with
        /// every pack a locked manifest names), deleted by a later clean once the lock expires.
        public var locked: [String] = []
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var policy: RetentionPolicy
    public var dryRun: Bool
    public var graceSeconds: Double
    public var now: () -> Int64
    public var events: JobEventSink

    public init(
        settings: Settings, repository: Repository? = nil, policy: RetentionPolicy, dryRun: Bool,
        graceSeconds: Double = 86_400,
        now: @escaping () -> Int64 = { LocalTime.nowMilliseconds() }, events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.policy = policy
        self.dryRun = dryRun
        self.graceSeconds = graceSeconds
        self.now = now
        self.events = events
    }

    public func run() throws -> Outcome {
        let encryptionKey = try settings.encryptionKey()
        let store = try repository.store(role: .clean)
        // Kept manifests are downloaded to learn their packs: one at a time, into a workspace.
        let workspace = try Workspace(base: settings.tempBase, events: events)
        defer { workspace.remove() }
        // This database's own namespace, then the one its path named before identities.
        let chains = try PointChain.forReading(
            settings: settings, encryptionKey: encryptionKey, store: store, scratch: workspace.path, events: events)
        let listings = try chains.map { try $0.listPoints() }
        var outcome = Outcome(points: [], deletedPacks: [], keptPacks: 0, freedBytes: 0, dryRun: dryRun, failures: [])
        guard listings.contains(where: { !$0.isEmpty }) else { return outcome }
        // The newest point that restores anchors everything: points after it (that do not restore,
        // or are not this database's) are left alone and never count as "the newest".
        let restorable = try zip(chains, listings).map { try newestRestorable($1, chain: $0) }
        guard let anchor = restorable.compactMap(\.newest).first else {
            throw noneRestorable(listings.first { !$0.isEmpty } ?? [], unusable: restorable.first?.unusable ?? [:])
        }
        // The policy sees every point up to the anchor, of both namespaces, as one history.
        let timeline = listings.flatMap { $0 }.filter { $0.name <= anchor.name }
        for (i, chain) in chains.enumerated() where !listings[i].isEmpty {
            clean(
                chain, listing: listings[i], unusable: restorable[i].unusable, anchor: anchor, timeline: timeline,
                store: store, outcome: &outcome)
            guard outcome.failures.isEmpty else { break }
        }
        return outcome
    }

    /// Applies the policy to the points of one namespace (those after the anchor left alone).
    func clean(
        _ chain: PointChain, listing: [PointChain.Listed], unusable: [String: String], anchor: PointChain.Listed,
        timeline: [PointChain.Listed], store: ObjectStore, outcome: inout Outcome
    ) {
        let namespace = chain.namespace
        let candidates = listing.filter { $0.name <= anchor.name }
        var (keep, reasons) = keptPoints(candidates, timeline: timeline, storageLabel: store.storageLabel)
        for l in listing where l.name > anchor.name && unusable[l.name.relative] == nil {
            keep.insert(l.name.relative)
            reasons[l.name.relative] = ["newer than the newest point that restores; left alone"]
        }
        for (name, why) in unusable {
            keep.insert(name)
            reasons[name] = [why]
        }

        // Every pack a kept point's manifest names stays. A kept manifest that does not open is
        // left alone and needs nothing (it restores nothing).
        var neededPacks = Set<String>()
        for l in listing where keep.contains(l.name.relative) && unusable[l.name.relative] == nil {
            do {
                for p in try chain.packs(of: l.name, size: l.size, listing: listing) { neededPacks.insert(p.name) }
            } catch let e as LajuError where e.kind == .integrity {
                reasons[l.name.relative] = ["cannot be opened (\(e.message)); left alone"]
            } catch {
                outcome.failures.append("\(namespace.key(l.name.relative)): \(error)")
                return
            }
        }
        outcome.points += decisions(listing, keep: keep, reasons: reasons)
        guard
            let packsToDelete = try? unneededPacks(
                store: store, namespace: namespace, needed: neededPacks, outcome: &outcome)
        else {
            outcome.failures.append("\(namespace.packs): the packs cannot be listed")
            return
        }
        let lockedPoints = deletePoints(
            listing.filter { !keep.contains($0.name.relative) }, chain: chain, store: store, outcome: &outcome)
        // A failed manifest delete leaves its packs needed: delete packs only after a clean pass.
        guard outcome.failures.isEmpty else { return }
        // A manifest that Object Lock keeps still needs its packs (it stays restorable until then).
        for l in lockedPoints {
            do {
                for p in try chain.packs(of: l.name, size: l.size, listing: listing) { neededPacks.insert(p.name) }
            } catch {
                outcome.failures.append(
                    "\(namespace.key(l.name.relative)): locked, and its manifest cannot be read to keep its packs (\(error))"
                )
                return
            }
        }
        deletePacks(packsToDelete, needed: neededPacks, store: store, chain: chain, outcome: &outcome)
    }

    /// The newest point that can be restored: every manifest of its chain authentic and linked to
    /// the next, every pack they name in the store with the size recorded (nil when none can).
    /// Also, for each newer point, why it cannot.
    func newestRestorable(_ listing: [PointChain.Listed], chain: PointChain) throws -> (
        newest: PointChain.Listed?, unusable: [String: String]
    ) {
        var unusable: [String: String] = [:]
        var stored: [String: Int64]?
        for l in listing.reversed() {
            do {
                let links = try chain.links(to: l.name, listing: listing)
                defer { for link in links { unlink(link.file.path) } }
                if stored == nil { stored = try chain.listPacks() }
                let packs = stored ?? [:]
                if let p = links.flatMap(\.body.packs).first(where: { packs[$0.name] != $0.size }) {
                    throw LajuError(
                        .integrity,
                        packs[p.name] == nil ? "its pack \(p.name) is missing" : "its pack \(p.name) has another size")
                }
                return (l, unusable)
            } catch let e as LajuError where e.kind == .integrity || e.isNotFound {
                unusable[l.name.relative] = "cannot be restored (\(e.message)); left alone"
            }
        }
        return (nil, unusable)
    }

    /// When no point can be restored, nothing is deleted: the run stops.
    func noneRestorable(_ listing: [PointChain.Listed], unusable: [String: String]) -> LajuError {
        let newest = listing.last.map { PointChain.display($0.name) } ?? "?"
        return LajuError(
            .integrity,
            "no restore point of \(settings.databasePath) can be restored, so clean --points deletes nothing; the newest, \(newest), \(unusable[listing.last?.name.relative ?? ""] ?? "cannot be restored")",
            hint:
                "`laju-backup verify --at latest` says what is wrong; `laju-backup backup --incremental --new-base` starts a new chain"
        )
    }

    /// Newest first, each with why it stays or goes.
    func decisions(_ listing: [PointChain.Listed], keep: Set<String>, reasons: [String: [String]]) -> [Decision] {
        listing.reversed().map { l in
            Decision(
                point: PointChain.display(l.name), time: PointTime.rfc3339(l.name.time), kind: l.name.kind,
                keep: keep.contains(l.name.relative),
                reasons: reasons[l.name.relative] ?? [
                    policy.isGFS ? "matched no keep rule" : "older than \(policy.retentionDays) days"
                ],
                bytes: l.size)
        }
    }

    /// Deletes the manifests of the points that go, each only once its summary proves it is this
    /// database's point (a manifest that does not authenticate is left alone). Returns the points
    /// that S3 Object Lock keeps.
    func deletePoints(
        _ doomed: [PointChain.Listed], chain: PointChain, store: ObjectStore, outcome: inout Outcome
    ) -> [PointChain.Listed] {
        var locked: [PointChain.Listed] = []
        for l in doomed {
            if (try? chain.summary(of: l)) == nil {
                if let i = outcome.points.firstIndex(where: { $0.point == PointChain.display(l.name) }) {
                    outcome.points[i].keep = true
                    outcome.points[i].reasons = [
                        "its manifest does not authenticate: not provably this database's; left alone"
                    ]
                }
                continue
            }
            outcome.freedBytes += l.size
            if dryRun { continue }
            if remove(chain.namespace.key(l.name.relative), store: store, outcome: &outcome) == .locked {
                outcome.freedBytes -= l.size
                locked.append(l)
            }
        }
        return locked
    }

    /// The points the policy keeps, as for catalog rows (newest first, the newest always kept),
    /// and every point a kept point of its chain needs (chains are linear, oldest first); with the
    /// reasons of each.
    func keptPoints(_ listing: [PointChain.Listed], timeline: [PointChain.Listed], storageLabel: String) -> (
        Set<String>, [String: [String]]
    ) {
        let records = timeline.map {
            BackupRecord(
                id: $0.name.relative, key: $0.name.relative, fileName: $0.name.relative, fileSize: $0.size,
                storage: storageLabel, checksum: "", uploadedAt: $0.name.time, encIV: "", encTag: "")
        }
        let plan = Retention.plan(records, policy: policy, now: now())
        var reasons: [String: [String]] = [:]
        let here = Set(listing.map(\.name.relative))
        for d in plan.decisions where d.keep && here.contains(d.key) { reasons[d.key] = d.reasons }
        var keep = Set(reasons.keys)
        var later: String?
        for l in listing.reversed() {
            let name = l.name.relative
            if keep.contains(name), l.name.kind == .incremental { later = later ?? name }
            if let later, !keep.contains(name) {
                keep.insert(name)
                reasons[name] = ["needed by \(PointChain.display(PointName.parse(later)!))"]
            }
            if l.name.kind == .base { later = nil }
        }
        return (keep, reasons)
    }

    /// The packs no kept point needs and older than the grace period; the others are counted as
    /// kept. Unknown age counts as young: a pack may belong to a run in flight.
    func unneededPacks(
        store: ObjectStore, namespace: PointNamespace, needed: Set<String>,
        outcome: inout Outcome
    ) throws -> [ObjectInfo] {
        let nowSeconds = Double(now()) / 1000
        var packs: [ObjectInfo] = []
        for o in try store.list(prefix: namespace.packs) where o.key.hasPrefix(namespace.root) {
            let name = String(o.key.dropFirst(namespace.root.count))
            if needed.contains(name) { outcome.keptPacks += 1; continue }
            guard let t = o.lastModified, nowSeconds - t >= graceSeconds else { outcome.keptPacks += 1; continue }
            packs.append(o)
        }
        return packs
    }

    /// Deletes the candidate packs that are still not needed (a locked manifest may have claimed
    /// some since), or counts them for a dry run.
    func deletePacks(
        _ candidates: [ObjectInfo], needed: Set<String>, store: ObjectStore, chain: PointChain,
        outcome: inout Outcome
    ) {
        let namespace = chain.namespace
        for o in candidates where !needed.contains(String(o.key.dropFirst(namespace.root.count))) {
            guard isOurs(pack: o, chain: chain) else {
                outcome.keptPacks += 1
                events(
                    .warning(
                        "\(Display.safe(o.key)): its header does not authenticate as this database's pack; left alone"))
                continue
            }
            if dryRun {
                outcome.freedBytes += o.size
                outcome.deletedPacks.append(o.key)
                continue
            }
            switch remove(o.key, store: store, outcome: &outcome) {
            case .removed:
                outcome.freedBytes += o.size
                outcome.deletedPacks.append(o.key)
            case .locked, .failed:
                outcome.keptPacks += 1
            }
        }
        outcome.keptPacks += candidates.count(where: { needed.contains(String($0.key.dropFirst(namespace.root.count))) }
        )
    }

    /// A version 2 pack proves whose it is by its header (`PointKeys.packHeader`); version 1 packs
    /// cannot, and go by their namespace alone.
    func isOurs(pack o: ObjectInfo, chain: PointChain) -> Bool {
        guard chain.keys.version == 2 else { return true }
        let name = String(o.key.dropFirst(chain.namespace.root.count))
        let size = chain.keys.packHeaderSize
        guard o.size >= Int64(size),
            let head = try? chain.store.getRange(key: o.key, offset: 0, length: Int64(size))
        else { return false }
        return head == chain.keys.packHeader(name: name)
    }

    enum Removal { case removed, locked, failed }

    /// Retention's delete (every version, on a versioned bucket). A locked object is kept and
    /// reported, as `clean` does for full backups; any other failure is one.
    @discardableResult
    func remove(_ key: String, store: ObjectStore, outcome: inout Outcome) -> Removal {
        do {
            if case .locked(let until) = try store.removeBackup(key: key) {
                let line =
                    "\(key) is locked\(until.map { " until \(HTTPDate.iso8601($0))" } ?? "") (S3 Object Lock); kept, a later clean deletes it"
                outcome.locked.append(key)
                events(.step(name: "locked", summary: line, seconds: 0))
                return .locked
            }
            return .removed
        } catch let e as LajuError where e.isNotFound {
            return .removed  // already gone: what retention wanted
        } catch {
            outcome.failures.append("\(key): \(error)")
            return .failed
        }
    }
}
