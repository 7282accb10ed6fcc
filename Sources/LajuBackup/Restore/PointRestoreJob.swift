/// `restore --at TIME` and `verify --at TIME`: the newest point at or before TIME, rebuilt from
/// its chain with ranged GETs of only the blocks it needs; every block's tag and id, the whole
/// file's keyed digest and the integrity check are verified before the file is renamed into place
/// (the same output rules as `restore`: `RestoreOutput`).
public struct PointRestoreJob {
    /// Which point: the newest, or the newest at or before a time (ms since the epoch).
    public enum At: Sendable, Equatable {
        case latest
        case time(Int64)

        /// `latest` or an RFC 3339 date-time; nil for anything else.
        public static func parse(_ text: String) -> At? {
            if text == "latest" { return .latest }
            return PointTime.parse(text).map(At.time)
        }
    }

    public struct Outcome: Codable, Sendable {
        public var point: String
        public var key: String
        public var kind: PointKind
        public var time: String
        public var output: String?
        public var restoredBytes: Int64
        /// Manifests read (the point and its chain down to its base).
        public var manifests: Int
        public var blocks: Int
        public var requests: Int
        public var bytesFetched: Int64
        /// `integrity_check`, `quick_check`, or `point_digest` (the bytes are those checked at backup).
        public var check: String
        public var ownership: String?
        public var totalSeconds: Double
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var at: At
    public var check: RestoreCheck
    public var events: JobEventSink

    /// Blocks closer than this in a pack are fetched by one request; a request reads at most
    /// `maxRequest` bytes (the memory a restore holds at once).
    static let coalesceGap: Int64 = 64 << 10
    static let maxRequest: Int64 = 4 << 20

    public init(
        settings: Settings, repository: Repository? = nil, at: At, check: RestoreCheck = .auto,
        events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.at = at
        self.check = check
        self.events = events
    }

    public func run(target: RestoreTarget) throws -> Outcome {
        let started = monotonicSeconds()
        let encryptionKey = try settings.encryptionKey()
        let scope = try settings.scope()
        // Every check of the target that needs nothing from the store comes first.
        let tail = try RestoreTail(target: target, settings: settings)
        defer { tail.close() }

        let store = try repository.store(role: .read)
        // Manifests, the fetch plan and (for verify) the rebuilt file: a private workspace.
        let workspace = try Workspace(base: settings.tempBase, events: events)
        defer { workspace.remove() }
        let (chain, listing, chosen) = try choose(
            from: try PointChain.forReading(
                settings: settings, encryptionKey: encryptionKey, store: store, scratch: workspace.path,
                events: events),
            scope: scope, store: store)
        let namespace = chain.namespace, keys = chain.keys
        events(
            .step(
                name: "point", summary: "\(PointChain.display(chosen)) (\(PointTime.rfc3339(chosen.time)))", seconds: 0)
        )
        // Every manifest of the chain is downloaded, authenticated and linked before a block is read.
        let links = try chain.links(to: chosen, listing: listing)
        let summary = links[0].summary
        let (table, dependents) = try packs(of: links, chosen: chosen, listing: listing)
        try notingDamage(namespace: namespace, keys: keys) {
            try checkStoredPacks(table.packs, chain: chain, namespace: namespace, dependents: dependents)
        }

        // The file is assembled beside the target (atomic rename), or in the workspace.
        let bytes = summary.databaseBytes
        try tail.prepare(
            time: chosen.time, needed: bytes.addingSaturating(1 << 20), scratch: workspace.path, events: events)
        let partial = try tail.partialFile(events: events)
        let fetched = try notingDamage(namespace: namespace, keys: keys) {
            try rebuild(
                partial, links: links, table: table, keys: keys, store: store, namespace: namespace,
                dependents: dependents, workspace: workspace)
        }
        let (checkName, _, ownership) = try tail.finish(
            check: check,
            proof: summary.check == 2
                ? ("point_digest", "the restored bytes are the snapshot that passed integrity_check at backup time")
                : nil,
            damagedHint: "the point was taken from a damaged database; try an earlier point", events: events)
        return Outcome(
            point: PointChain.display(chosen), key: namespace.key(chosen.relative), kind: chosen.kind,
            time: PointTime.rfc3339(chosen.time), output: tail.output?.path, restoredBytes: bytes,
            manifests: links.count,
            blocks: fetched.blocks, requests: fetched.requests, bytesFetched: fetched.bytes, check: checkName,
            ownership: ownership, totalSeconds: monotonicSeconds() - started)
    }

    /// Runs `body`; a damaged pack it finds is noted in the state directory, so that the next
    /// `backup --incremental` starts a new base that does not use it, before the error is thrown.
    func notingDamage<T>(namespace: PointNamespace, keys: PointKeys, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let damage as DamagedPack {
            if let directory = try? settings.pointStateDirectory() {
                StateCache(directory: directory, namespace: namespace, keys: keys).recordDamage([damage.pack])
            }
            throw damage.error
        }
    }

    /// The newest point at or before `at`, in the first chain that has one (this database's own
    /// namespace before the one of its path from before identities); a clear "none" that names
    /// the oldest point otherwise.
    func choose(from chains: [PointChain], scope: BackupScope, store: ObjectStore) throws -> (
        PointChain, [PointChain.Listed], PointName
    ) {
        var oldest: PointName?
        for chain in chains {
            let listing = try chain.listPoints()
            let candidates: [PointChain.Listed]
            switch at {
            case .latest: candidates = listing
            case .time(let t): candidates = listing.filter { $0.name.time <= t }
            }
            if let chosen = candidates.last?.name {
                if chain.namespace.version == 1 {
                    events(
                        .warning(
                            "\(PointChain.display(chosen)) was made before identities: it is restored as this path's point, which nothing authenticates as this database's"
                        ))
                }
                return (chain, listing, chosen)
            }
            if let first = listing.first?.name, oldest.map({ first < $0 }) ?? true { oldest = first }
        }
        let when: String
        if case .time(let t) = at { when = " at or before \(PointTime.rfc3339(t))" } else { when = "" }
        throw LajuError(
            .storage,
            "no restore point of \(scope.databaseName)\(when) in \(store.displayName) under \(chains.map { Display.safe($0.namespace.root) }.joined(separator: " or "))",
            hint: oldest.map { "the oldest is \(PointTime.rfc3339($0.time)); see `laju-backup list --points`" }
                ?? "make one with `laju-backup backup --incremental`",
            isNotFound: true)
    }

    /// The packs the chain's manifests name, in one table, and for each the points that depend
    /// on it (for messages).
    func packs(of links: [PointChain.Loaded], chosen: PointName, listing: [PointChain.Listed]) throws -> (
        PackTable, [String: String]
    ) {
        var users: [String: [PointName]] = [:]
        var table = PackTable()
        for link in links.reversed() {
            for p in link.body.packs {
                users[p.name, default: []].append(link.name)
                do { _ = try table.intern(p) } catch {
                    throw LajuError(
                        .integrity,
                        "the chain of point \(PointChain.display(chosen)) does not add up: \(error.message)",
                        hint: "restore an earlier point (`laju-backup list --points`)")
                }
            }
        }
        // Every point from the first that names a pack to the end of its chain may read it: the
        // ones in between and after the chosen one too, not only those that name it.
        var dependents: [String: String] = [:]
        for p in table.packs {
            let first = users[p.name]?.first ?? chosen
            dependents[p.name] = PointChain.display(PointChain.dependents(of: first, in: listing))
        }
        return (table, dependents)
    }

    /// Every pack the chain needs is in the store with the size the points recorded.
    func checkStoredPacks(
        _ packs: [PackRef], chain: PointChain, namespace: PointNamespace,
        dependents: [String: String]
    ) throws {
        let stored = try chain.listPacks()
        for p in packs {
            guard let size = stored[p.name] else {
                throw chain.missing(namespace.key(p.name), dependents: dependents[p.name] ?? "?", what: "pack")
            }
            guard size == p.size else {
                throw DamagedPack(
                    pack: p.name, key: namespace.key(p.name),
                    why: "it has \(size) bytes, the points recorded \(p.size)", dependents: dependents[p.name] ?? "?")
            }
        }
    }

    /// Writes every page of the point into the new file `partial`, then checks the whole file,
    /// as it is on disk, against the digest the point recorded.
    func rebuild(
        _ partial: String, links: [PointChain.Loaded], table: PackTable, keys: PointKeys, store: ObjectStore,
        namespace: PointNamespace, dependents: [String: String],
        workspace: Workspace
    ) throws -> (blocks: Int, requests: Int, bytes: Int64) {
        let summary = links[0].summary
        let bytes = summary.databaseBytes
        let fd = open(partial, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LajuError(.local, "cannot create \(partial): \(String(cString: strerror(errno)))") }
        defer { closeDescriptor(fd) }
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            throw LajuError(.local, "cannot size \(partial) to \(bytes) bytes: \(String(cString: strerror(errno)))")
        }
        let context = FetchContext(
            packs: table.packs, pageSize: summary.pageSize, keys: keys, store: store,
            namespace: namespace, fd: fd, partial: partial, dependents: dependents)
        let (fetched, fetchSeconds) = try timedStep("blocks", events: events) { progress in
            try fetch(links: links, packs: table, context: context, workspace: workspace, progress: progress)
        }
        events(
            .step(
                name: "blocks",
                summary:
                    "\(summary.pageCount) pages from \(links.count) manifest(s): \(fetched.blocks) block(s) in \(fetched.requests) request(s), \(Human.bytes(fetched.bytes)) (\(Human.rate(fetched.bytes, fetchSeconds)))",
                seconds: fetchSeconds))
        guard fsync(fd) == 0 else {
            throw LajuError(.local, "cannot flush \(partial): \(String(cString: strerror(errno)))")
        }
        let sha = try Digest.hash(.sha256, fileDescriptor: fd)
        guard keys.fileDigest(sha256: sha, pageSize: summary.pageSize, pageCount: summary.pageCount) == summary.digest
        else {
            throw LajuError(
                .integrity,
                "the file rebuilt from point \(PointChain.display(links[0].name)) does not match the digest the point recorded",
                hint: "its chain is inconsistent; restore an earlier point (`laju-backup list --points`)")
        }
        return fetched
    }

    /// Pages planned and fetched at once: their entries (36 bytes each, 1.2 MiB) are sorted by
    /// pack and offset so that neighbouring blocks share a ranged request.
    static let planChunk = 1 << 15

    /// Fetches every page of the point, newest link first: a page comes from the newest link
    /// that lists it (`PageMap.Builder`'s rule), one bit a page remembers which are done. A
    /// link's pages are planned into a file, then fetched a chunk at a time: memory does not
    /// grow with the database.
    func fetch(
        links: [PointChain.Loaded], packs: PackTable, context: FetchContext, workspace: Workspace,
        progress: TransferProgress
    ) throws -> (blocks: Int, requests: Int, bytes: Int64) {
        let pageCount = links[0].summary.pageCount
        var filled = PageSet(count: pageCount)
        var done = 0
        var total = (blocks: 0, requests: 0, bytes: Int64(0))
        for (n, link) in links.enumerated() {
            let global = link.body.packs.map { packs.index(of: $0.name)! }
            let planPath = workspace.file("plan.\(n)")
            defer { unlink(planPath) }
            let plan = try FileWriter(path: planPath)
            var planned = 0
            var failure: Error?
            try link.file.forEachEntry { e in
                guard failure == nil, filled.insert(Int(e.page)) else { return }
                planned += 1
                let g = PageEntry(
                    page: e.page, id: e.id,
                    location: BlockLocation(
                        pack: global[Int(e.location.pack)], offset: e.location.offset, length: e.location.length))
                do { try plan.append { PointBody.appendEntry(g, to: &$0) } } catch { failure = error }
            }
            if let failure { throw failure }
            _ = try plan.finish()
            try EntryFile.read(planPath, count: planned, chunk: Self.planChunk) { entries in
                let result = try fetchChunk(entries, context: context)
                total.blocks += result.blocks
                total.requests += result.requests
                total.bytes += result.bytes
                done += entries.count
                _ = progress(Int64(done), Int64(pageCount))
            }
        }
        if let hole = filled.firstMissing() {
            throw LajuError(
                .integrity,
                "the chain of point \(PointChain.display(links[0].name)) does not add up: page \(hole) has no block",
                hint: "restore an earlier point (`laju-backup list --points`)")
        }
        return total
    }

    /// Fetches the blocks of some pages: sorted by pack and offset (pages that share a block sit
    /// next to each other), cut into ranged requests of neighbouring blocks, taken in turn by two
    /// workers (this thread and one more): checking blocks is CPU work, a ranged GET waits on the
    /// network.
    func fetchChunk(_ unsorted: [PageEntry], context: FetchContext) throws -> (blocks: Int, requests: Int, bytes: Int64)
    {
        let entries = unsorted.sorted { a, b in
            (a.location.pack, a.location.offset, a.page) < (b.location.pack, b.location.offset, b.page)
        }
        var requests: [FetchRequest] = []
        var i = 0
        while i < entries.count {
            let first = entries[i].location
            var end = first.offset + Int64(first.length)
            var j = i + 1
            while j < entries.count {
                let l = entries[j].location
                let newEnd = max(end, l.offset + Int64(l.length))
                guard l.pack == first.pack, l.offset <= end + Self.coalesceGap, newEnd - first.offset <= Self.maxRequest
                else { break }
                end = newEnd
                j += 1
            }
            requests.append(
                FetchRequest(from: i, to: j, pack: first.pack, offset: first.offset, length: end - first.offset))
            i = j
        }
        let job = FetchQueue(entries: entries, requests: requests, context: context)
        let helper = BackgroundTask { try job.work() }
        let mine = Result { try job.work() }
        let theirs = Result { try helper.wait() }
        let a = try mine.get(), b = try theirs.get()
        return (a.blocks + b.blocks, requests.count, a.bytes + b.bytes)
    }
}
