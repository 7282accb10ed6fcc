/// `backup --incremental`: the same consistent snapshot as a full backup, cut into pages; only
/// blocks the store lacks are sealed into one pack; one manifest records the new restore point
/// (docs/format-incremental.md, 5).
public struct PointBackupJob {
    public struct Outcome: Codable, Sendable {
        /// The point's name (`<stamp>-<nonce>.<base|incr>`), nil when nothing changed.
        public var point: String?
        public var key: String?
        public var kind: PointKind?
        /// RFC 3339 UTC time of the snapshot.
        public var time: String?
        public var parent: String?
        /// Why this run wrote a base point that uploads every page it needs, if it did.
        public var newChain: String?
        public var pageSize: Int
        public var pages: Int
        public var databaseBytes: Int64
        public var changedPages: Int
        public var uploadedBlocks: Int
        public var uploadedBytes: Int64
        public var pack: String?
        public var check: String
        public var totalSeconds: Double
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var lockWait: Double
    public var events: JobEventSink

    /// `backup --incremental --new-base`: a base that seals every page again, whatever the chain.
    public var newBase: Bool
    /// `--claim-name`: take BACKUP_NAME over from the database its identity record names.
    public var claimName: Bool

    public init(
        settings: Settings, repository: Repository? = nil, lockWait: Double = 0, newBase: Bool = false,
        claimName: Bool = false, events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.lockWait = lockWait
        self.newBase = newBase
        self.claimName = claimName
        self.events = events
    }

    public func run() throws -> Outcome {
        let started = monotonicSeconds()
        let database = settings.databasePath
        try Snapshot.checkSource(database)
        let encryptionKey = try settings.encryptionKey()
        let check = try settings.pointCheck()
        let busy = try settings.busyTimeout()
        let (store, readStore, identity) = try stores(database: database, encryptionKey: encryptionKey)
        // Points are written under the identity (its namespace, its keys), never under a path.
        let namespace = try PointNamespace(settings: settings, identity: identity)
        let keys = try PointKeys(encryptionKey, identity: identity)

        // 1. Snapshot, exactly as a full backup; its time is the point's.
        let stage = try SnapshotStage(
            settings: settings, database: database, check: check,
            busyTimeoutMilliseconds: busy, lockWait: lockWait, events: events)
        defer { stage.close() }
        let ws = stage.workspace

        // 2. The parent: the newest point's page map, from the cache or rebuilt from the store.
        let chain = PointChain(store: readStore, namespace: namespace, keys: keys, scratch: ws.path)
        let listing = try chain.listPoints()
        let pointTime = time(of: stage, after: listing.last)
        let cache = StateCache(directory: try settings.pointStateDirectory(), namespace: namespace, keys: keys)
        var (parent, newChainReason, avoid) = try parentAndDamage(
            chain: chain, listing: listing, cache: cache, store: store, workspace: ws)

        // 3. Pages, one by one, from the snapshot.
        let reader = try PageReader(path: stage.path)
        defer { reader.closeFile() }
        let pageSize = reader.pageSize, pageCount = reader.pageCount
        let kind = chainKind(parent: &parent, reason: &newChainReason, pageSize: pageSize, base: !avoid.isEmpty)
        let newMap = try cache.begin()
        defer { cache.discard() }
        let scan = try PageScan(
            parent: parent, kind: kind, pageCount: pageCount, keys: keys, newMap: newMap, workspace: ws, avoid: avoid)
        let sha256 = try scanPages(reader, into: scan)
        let parentLink = parent.map {
            ParentLink(point: $0.point, summary: $0.summary, manifests: $0.manifests, pageCount: $0.pageCount)
        }
        parent = nil
        try stage.requireSound(database: database, what: "points", events: events)

        if let parentLink, scan.changed == 0, parentLink.pageCount == pageCount {
            events(
                .step(name: "point", summary: "no changes since \(PointChain.display(parentLink.point))", seconds: 0))
            // The cache now describes this snapshot too: the next run need not rebuild it.
            try? cache.commit(
                newMap, point: parentLink.point, summary: parentLink.summary, packs: Array(scan.packs.dropLast()),
                manifests: parentLink.manifests)
            return Outcome(
                unchangedSince: parentLink.point, pageSize: pageSize, pages: pageCount, check: stage.checkName,
                totalSeconds: monotonicSeconds() - started)
        }
        scan.settlePacks()

        // 4. The manifest, then 5. the pack and the manifest in the store.
        let summary = PointSummary(
            kind: kind, check: check, pageSize: pageSize, pageCount: pageCount, time: pointTime, sha256: sha256,
            scan: scan, parent: parentLink, keys: keys)
        let name = try PointName.fresh(time: pointTime, kind: kind)
        let manifest = try writeManifest(name: name, summary: summary, scan: scan, parent: parentLink, workspace: ws)
        let (packKey, manifestKey) = try upload(
            scan: scan, manifest: manifest, name: name, kind: kind, store: store,
            namespace: namespace, fingerprint: encryptionKey.fingerprint)

        remember(name, manifest: manifest, scan: scan, parent: parentLink, cache: cache, newMap: newMap)
        // The new chain no longer points at the damaged packs.
        if kind == .base { cache.clearDamage() }
        return Outcome(
            point: PointChain.display(name), key: manifestKey, kind: kind, time: PointTime.rfc3339(pointTime),
            parent: parentLink.map { PointChain.display($0.point) }, newChain: newChainReason,
            pageSize: pageSize, pages: pageCount, databaseBytes: Int64(pageSize) * Int64(pageCount),
            changedPages: scan.changed, uploadedBlocks: scan.newBlocks,
            uploadedBytes: manifest.summary.uploadedBytes, pack: packKey, check: stage.checkName,
            totalSeconds: monotonicSeconds() - started)
    }

    /// The store to write to (checked), the one to read back from, and this database's identity,
    /// settled before anything is snapshotted.
    func stores(database: String, encryptionKey: EncryptionKey) throws -> (ObjectStore, ObjectStore, Identity) {
        let store = try repository.store()
        try store.checkAccess()
        // Points are read back (the chain, the pack listing): with the read credentials when they
        // are configured (BACKUP_READ_ACCESS_KEY), since the nightly ones may only write.
        let readStore = try repository.store(role: .read)
        let identity = try Identity.forWriting(
            settings: settings, database: database, readStore: readStore, writeStore: store,
            encryptionKey: encryptionKey, claim: claimName, events: events)
        // Points are made with the key of the newest full backup (a changed key is recorded by a
        // full backup with --new-key first).
        if let catalog = try? repository.catalog(readOnly: true), (try? catalog.requireTable(forWriting: false)) != nil
        {
            try KeyContinuity(catalog: catalog, scope: try settings.scope(), store: readStore, events: events)
                .check(encryptionKey, newKey: false)
        }
        return (store, readStore, identity)
    }

    /// Every page of the snapshot through `scan`; the SHA-256 of the whole snapshot.
    func scanPages(_ reader: PageReader, into scan: PageScan) throws -> [UInt8] {
        let pageSize = reader.pageSize, pageCount = reader.pageCount
        let (_, seconds) = try timedStep("pages", events: events) { progress in
            try reader.forEachPage { index, page in
                try scan.add(index, page)
                if index % 4096 == 0 {
                    _ = progress(Int64(index) * Int64(pageSize), Int64(pageCount) * Int64(pageSize))
                }
            }
        }
        let sha256 = try scan.finish()
        let compacted =
            scan.resealed > 0
            ? ", \(scan.resealed) of them sealed again out of \(scan.sparseCount) pack(s) the new base does not point at (mostly superseded, damaged, or --new-base)"
            : ""
        events(
            .step(
                name: "pages",
                summary:
                    "\(pageCount) pages of \(pageSize) bytes, \(scan.changed) changed, \(scan.newBlocks) new block(s)\(compacted) (\(Human.bytes(scan.packSize)) pack)",
                seconds: seconds))
        return sha256
    }

    /// The snapshot's time, or just after the newest point when this host's clock is behind it
    /// (a point's name carries its time, and times must grow along a chain).
    func time(of stage: SnapshotStage, after newest: PointChain.Listed?) -> Int64 {
        guard let newest, stage.time <= newest.name.time else { return stage.time }
        events(
            .warning(
                "the clock is behind the newest point \(PointChain.display(newest.name)); this point is dated just after it"
            ))
        return newest.name.time + 1
    }

    /// A base when there is no usable parent (none, or one of another page size) or its chain is
    /// at its longest; else an incremental point. Says why when a new chain starts.
    func chainKind(parent: inout PageMap?, reason: inout String?, pageSize: Int, base: Bool) -> PointKind {
        if let p = parent, p.pageSize != pageSize {
            reason = "the page size changed from \(p.pageSize) to \(pageSize)"
            parent = nil
        }
        if let reason {
            events(
                .step(
                    name: "chain", summary: "\(reason): this run starts a new chain and uploads every page it needs",
                    seconds: 0))
        }
        return base || parent == nil || parent!.summary.depth >= PointChain.maxDepth ? .base : .incremental
    }

    /// The parent (`parentState`), why a new chain starts if one does, and the parent's packs
    /// this run must not point at (`packsToAvoid`).
    func parentAndDamage(
        chain: PointChain, listing: [PointChain.Listed], cache: StateCache, store: ObjectStore, workspace: Workspace
    ) throws -> (PageMap?, String?, Set<String>) {
        var (parent, reason) = try parentState(
            chain: chain, listing: listing, cache: cache, store: store, workspace: workspace)
        let avoid = packsToAvoid(parent: parent, cache: cache, reason: &reason)
        return (parent, reason, avoid)
    }

    /// The parent's packs this run must not point at: every one with `--new-base`, else those a
    /// restore or a drill found damaged (`StateCache.recordDamage`). Their pages are sealed again
    /// into a new base, and `reason` says why.
    func packsToAvoid(parent: PageMap?, cache: StateCache, reason: inout String?) -> Set<String> {
        guard let parent else { return [] }
        let names = Set(parent.packs.map(\.name))
        if newBase {
            reason = reason ?? "a new base was asked for (--new-base): every page is sealed again"
            return names
        }
        let damaged = cache.damagedPacks().intersection(names)
        guard !damaged.isEmpty else { return [] }
        reason =
            reason
            ?? "\(damaged.count) pack(s) of the chain were found damaged by a restore or a drill (\(damaged.sorted().joined(separator: ", ")))"
        return damaged
    }

    /// The new point's page map becomes the state cache. The cache is an optimisation: failing to
    /// write it costs the next run a rebuild.
    func remember(
        _ name: PointName, manifest: WrittenManifest, scan: PageScan, parent: ParentLink?, cache: StateCache,
        newMap: FileWriter
    ) {
        let chainManifests =
            (name.kind == .base ? [] : parent?.manifests ?? []) + [PackRef(name: name.relative, size: manifest.size)]
        do {
            try cache.commit(
                newMap, point: name, summary: manifest.summary, packs: scan.packs, manifests: chainManifests)
        } catch {
            events(
                .warning("the local state cache was not written (\(error)); the next run rebuilds it from the store"))
        }
    }

    /// What the new point needs of its parent once the parent's page map is released.
    struct ParentLink {
        var point: PointName
        var summary: PointSummary
        var manifests: [PackRef]
        var pageCount: Int
    }

    /// A sealed manifest in the workspace.
    struct WrittenManifest {
        var path: String
        var size: Int64
        var md5: [UInt8]
        /// `summary` with the bytes this point uploads.
        var summary: PointSummary
    }

    /// The manifest (docs/format-incremental.md, 4): every page for a base (the new map's
    /// records), the changed ones otherwise (the entries file), sealed as it is written. A base
    /// names every pack its pages use; an incremental point only those of the changed pages.
    func writeManifest(
        name: PointName, summary unsized: PointSummary, scan: PageScan, parent: ParentLink?,
        workspace: Workspace
    ) throws -> WrittenManifest {
        let kind = unsized.kind
        var used = scan.usedPacks
        if kind == .incremental {
            used = [Bool](repeating: false, count: used.count)
            try EntryFile.read(scan.entries.path, count: scan.changed, chunk: 1 << 15) {
                for e in $0 { used[Int(e.location.pack)] = true }
            }
        }
        var localOf = [UInt32](repeating: 0, count: used.count)
        var manifestPacks: [PackRef] = []
        for g in used.indices where used[g] && g < scan.packs.count {
            localOf[g] = UInt32(manifestPacks.count)
            manifestPacks.append(scan.packs[g])
        }
        let count = kind == .base ? unsized.pageCount : scan.changed
        let parentName = kind == .incremental ? parent?.point.relative : nil
        let bodyLength = PointBody.encodedSize(
            parentLength: parentName?.utf8.count ?? 0, packs: manifestPacks, entryCount: count)
        var summary = unsized
        summary.uploadedBytes =
            (scan.newBlocks > 0 ? scan.packSize : 0) + ManifestSeal.objectSize(bodyLength: bodyLength)
        let path = workspace.file("manifest")
        let manifest = try ManifestWriter(
            path: path, name: name.relative, summary: summary, keys: scan.keys, bodyLength: bodyLength)
        try manifest.append {
            PointBody.encodeHeader(
                into: &$0, parent: parentName, parentDigest: kind == .incremental ? parent?.summary.digest ?? [] : [],
                packs: manifestPacks, entryCount: count)
        }
        func local(_ e: PageEntry) -> PageEntry {
            PageEntry(
                page: e.page, id: e.id,
                location: BlockLocation(
                    pack: localOf[Int(e.location.pack)], offset: e.location.offset, length: e.location.length))
        }
        if kind == .base {
            try scan.newMap.flush()
            let records = try MapReader(path: scan.newMap.path, count: unsized.pageCount, packCount: scan.packs.count)
            var page: UInt32 = 0
            while let r = try records.next() {
                let e = local(PageEntry(page: page, id: r.id, location: r.location))
                try manifest.append { PointBody.appendEntry(e, to: &$0) }
                page += 1
            }
        } else {
            try EntryFile.read(scan.entries.path, count: scan.changed, chunk: 1 << 15) { chunk in
                try manifest.append { for e in chunk { PointBody.appendEntry(local(e), to: &$0) } }
            }
        }
        let (size, md5) = try manifest.finish()
        return WrittenManifest(path: path, size: size, md5: md5, summary: summary)
    }

    /// The pack first, then the manifest: a point exists only once all it names is stored.
    /// Returns the keys of both (no pack when no block was new).
    func upload(
        scan: PageScan, manifest: WrittenManifest, name: PointName, kind: PointKind, store: ObjectStore,
        namespace: PointNamespace, fingerprint: String
    ) throws -> (pack: String?, manifest: String) {
        let metadata = ["format": "laju-backup-incremental-v1", "key-fingerprint": fingerprint]
        var packKey: String?
        if scan.newBlocks > 0 {
            let k = namespace.key(scan.packName)
            let size = scan.packSize, md5 = scan.packMD5, path = scan.pack.path
            let (_, seconds) = try timedStep("upload", events: events) { progress in
                try store.put(key: k, file: path, size: size, md5: md5, metadata: metadata, progress: progress)
            }
            events(
                .step(
                    name: "upload",
                    summary: "\(store.displayName) \(k) (\(Human.bytes(size)), \(Human.rate(size, seconds)))",
                    seconds: seconds))
            packKey = k
        }
        let manifestKey = namespace.key(name.relative)
        try store.put(
            key: manifestKey, file: manifest.path, size: manifest.size, md5: manifest.md5,
            metadata: metadata, progress: nil)
        events(.step(name: "point", summary: "\(kind.rawValue) point \(manifestKey)", seconds: 0))
        return (packKey, manifestKey)
    }

    /// The newest point's page map: from the cache when it proves current, else rebuilt from the
    /// store's manifests. Nil (with the reason) when there is no usable chain.
    func parentState(
        chain: PointChain, listing: [PointChain.Listed], cache: StateCache,
        store: ObjectStore, workspace: Workspace
    ) throws -> (PageMap?, String?) {
        guard let newest = listing.last else {
            return (nil, "first incremental backup of this database in \(store.displayName)")
        }
        let packs = try chain.listPacks()
        func packsPresent(_ map: PageMap) -> String? {
            for p in map.packs where packs[p.name] != p.size {
                return packs[p.name] == nil
                    ? "pack \(p.name) is missing" : "pack \(p.name) has \(packs[p.name]!) bytes, not \(p.size)"
            }
            return nil
        }
        let listed = Dictionary(listing.map { ($0.name.relative, $0.size) }, uniquingKeysWith: { a, _ in a })
        if let cached = cache.load(expecting: newest.name), packsPresent(cached) == nil,
            !cached.manifests.isEmpty, cached.manifests.allSatisfy({ listed[$0.name] == $0.size })
        {
            return (cached, nil)
        }
        do {
            let (map, links) = try chain.pageMap(to: newest.name, listing: listing, path: workspace.file("parent.map"))
            if let problem = packsPresent(map) {
                return (nil, "the chain ending at \(PointChain.display(newest.name)) cannot be used (\(problem))")
            }
            events(
                .step(
                    name: "chain",
                    summary: "local state missing or stale: rebuilt from \(links.count) manifest(s) in the store",
                    seconds: 0))
            return (map, nil)
        } catch let e as FormatError {
            return (nil, "the chain ending at \(PointChain.display(newest.name)) cannot be used (\(e.message))")
        } catch let e as LajuError where e.kind == .integrity || e.isNotFound {
            return (nil, "the chain ending at \(PointChain.display(newest.name)) cannot be used (\(e.message))")
        }
    }
}

extension PointBackupJob.Outcome {
    /// A run that found nothing changed since `parent`: no point, nothing uploaded.
    init(unchangedSince parent: PointName, pageSize: Int, pages: Int, check: String, totalSeconds: Double) {
        self.init(
            point: nil, key: nil, kind: nil, time: nil, parent: PointChain.display(parent), newChain: nil,
            pageSize: pageSize, pages: pages, databaseBytes: Int64(pageSize) * Int64(pages),
            changedPages: 0, uploadedBlocks: 0, uploadedBytes: 0, pack: nil, check: check, totalSeconds: totalSeconds)
    }
}

extension PointSummary {
    /// The summary of a point about to be written (its uploaded bytes are set with its manifest).
    init(
        kind: PointKind, check: Database.Check, pageSize: Int, pageCount: Int, time: Int64, sha256: [UInt8],
        scan: PageScan, parent: PointBackupJob.ParentLink?, keys: PointKeys
    ) {
        self.init(
            kind: kind, check: check == .full ? 2 : 1, pageSize: pageSize, pageCount: pageCount,
            time: time, uploadedBytes: 0, uploadedBlocks: scan.newBlocks,
            depth: kind == .base ? 0 : (parent?.summary.depth ?? 0) + 1,
            digest: keys.fileDigest(sha256: sha256, pageSize: pageSize, pageCount: pageCount))
    }
}
