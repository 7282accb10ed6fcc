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
    public var lockWait: Double
    public var events: JobEventSink

    public init(settings: Settings, lockWait: Double = 0, events: @escaping JobEventSink) {
        self.settings = settings
        self.lockWait = lockWait
        self.events = events
    }

    public func run() throws -> Outcome {
        let started = monotonicSeconds()
        let database = settings.databasePath
        try Snapshot.checkSource(database)
        let encryptionKey = try settings.encryptionKey()
        let keys = try PointKeys(encryptionKey)
        let check = try settings.pointCheck()
        let busy = try settings.busyTimeout()
        let namespace = try PointNamespace(settings: settings, encryptionKey: encryptionKey)
        let store = try settings.makeStore()
        try store.checkAccess()
        // Points are read back (the chain, the pack listing): with the read identity when one is
        // configured (BACKUP_READ_ACCESS_KEY), since the nightly one may only write.
        let readStore = try settings.makeStore(role: .read)

        // 1. Snapshot, exactly as a full backup; its time is the point's.
        let stage = try SnapshotStage(settings: settings, database: database, check: check,
                                      busyTimeoutMilliseconds: busy, lockWait: lockWait, events: events)
        defer { stage.close() }
        let ws = stage.workspace
        let snapshotPath = stage.path
        var pointTime = stage.time
        let checkName = stage.checkName

        // 2. The parent: the newest point's page map, from the cache or rebuilt from the store.
        let chain = PointChain(store: readStore, namespace: namespace, keys: keys, scratch: ws.path)
        let listing = try chain.listPoints()
        if let newest = listing.last, pointTime <= newest.name.time {
            events(.warning("the clock is behind the newest point \(PointChain.display(newest.name)); this point is dated just after it"))
            pointTime = newest.name.time + 1
        }
        let cache = StateCache(directory: settings.pointStateDirectory, namespace: namespace, keys: keys)
        var (parent, newChainReason) = try parentState(chain: chain, listing: listing, cache: cache, store: store, workspace: ws)

        // 3. Pages, one by one, from the snapshot.
        let reader = try PageReader(path: snapshotPath)
        defer { reader.closeFile() }
        let pageSize = reader.pageSize, pageCount = reader.pageCount
        if let p = parent, p.pageSize != pageSize {
            newChainReason = "the page size changed from \(p.pageSize) to \(pageSize)"
            parent = nil
        }
        let kind: PointKind = parent == nil || parent!.summary.depth >= PointChain.maxDepth ? .base : .incremental
        if let newChainReason {
            events(.step(name: "chain", summary: "\(newChainReason): this run starts a new chain and uploads every page it needs", seconds: 0))
        }

        var packs = parent?.packs ?? []
        let packName = try PackNames.fresh()
        let newPack = UInt32(packs.count)
        packs.append(PackRef(name: packName, size: 0))
        let pack = try FileWriter(path: ws.file("pack"))
        try pack.append(PackNames.magic)
        // Memory does not grow with the database: the parent's map is read front to back beside
        // the snapshot, the new map is written to the cache file as pages go, the changed pages'
        // entries to a file of their own; only the bounded tables below are held (`BlockTable`).
        let parentRecords = try parent?.records()
        // The parent's blocks by id (a page that moved is not uploaded again), and the blocks
        // sealed by this run (equal pages in one run are stored once).
        var known = BlockTable(capacity: parent == nil ? 0 : min(parent!.pageCount, Self.knownBlocks))
        if let parent {
            let prefill = try parent.records()
            while !known.isFull, let r = try prefill.next() { known.insert(r.id, at: r.location) }
        }
        var sealedHere = BlockTable(capacity: min(pageCount, Self.sealedBlocks))
        // A base that follows a full chain seals again the blocks it would take from packs that
        // are mostly superseded (`sparsePacks`): restores then read fewer dead bytes, and
        // `clean --points` deletes those packs once the old chain's points expire.
        var sparse = [Bool](repeating: false, count: packs.count)
        if kind == .base, let parent {
            for i in try Self.sparsePacks(parent) { sparse[i] = true }
        }
        let newMap = try cache.begin()
        defer { cache.discard() }
        let entries = try FileWriter(path: ws.file("entries"))
        var usedPacks = [Bool](repeating: false, count: packs.count)
        var newBlocks = 0, changed = 0, resealed = 0
        let sealer = try BlockSealer(keys: keys)
        let sha = Digest(.sha256)
        let (_, scanSeconds) = try timedStep("pages", events: events) { progress in
            try reader.forEachPage { index, page in
                sha.update(page)
                let id = keys.blockID(page)
                var location: BlockLocation
                let was = try parentRecords?.next()
                let same = was?.id == id
                if same, let was, !sparse[Int(was.location.pack)] {
                    location = was.location
                } else {
                    if !same { changed += 1 }
                    // A block of a sparse pack does not count as stored (sealed again, once).
                    if let l = known.find(id).flatMap({ sparse[Int($0.pack)] ? nil : $0 }) ?? sealedHere.find(id) {
                        location = l
                    } else {
                        let sealed = try sealer.seal(page: page, id: id)
                        location = BlockLocation(pack: newPack, offset: pack.size, length: UInt32(sealed.count))
                        try pack.append(sealed)
                        sealedHere.insert(id, at: location)
                        newBlocks += 1
                        if same { resealed += 1 }
                    }
                    if !same {
                        try entries.append { PointBody.appendEntry(PageEntry(page: UInt32(index), id: id, location: location), to: &$0) }
                    }
                }
                usedPacks[Int(location.pack)] = true
                try newMap.append { PageMap.appendRecord(id, location, to: &$0) }
                if index % 4096 == 0 { _ = progress(Int64(index) * Int64(pageSize), Int64(pageCount) * Int64(pageSize)) }
            }
        }
        known = BlockTable(capacity: 0)
        sealedHere = BlockTable(capacity: 0)
        let parentPoint = parent?.point, parentSummary = parent?.summary, parentManifests = parent?.manifests ?? []
        let parentPageCount = parent?.pageCount
        parent = nil
        let packSummary = try pack.finish()
        _ = try entries.finish()
        let compacted = resealed > 0 ? ", \(resealed) of them sealed again out of \(sparse.filter { $0 }.count) mostly superseded pack(s)" : ""
        events(.step(name: "pages", summary: "\(pageCount) pages of \(pageSize) bytes, \(changed) changed, \(newBlocks) new block(s)\(compacted) (\(Human.bytes(packSummary.size)) pack)", seconds: scanSeconds))
        try stage.requireSound(database: database, what: "points", events: events)

        if let parentPoint, let parentSummary, changed == 0, parentPageCount == pageCount {
            events(.step(name: "point", summary: "no changes since \(PointChain.display(parentPoint))", seconds: 0))
            try? cache.commit(newMap, point: parentPoint, summary: parentSummary, packs: Array(packs.dropLast()), manifests: parentManifests)
            return Outcome(point: nil, key: nil, kind: nil, time: nil, parent: PointChain.display(parentPoint), newChain: nil,
                           pageSize: pageSize, pages: pageCount, databaseBytes: Int64(pageSize) * Int64(pageCount),
                           changedPages: 0, uploadedBlocks: 0, uploadedBytes: 0, pack: nil, check: checkName,
                           totalSeconds: monotonicSeconds() - started)
        }
        if newBlocks > 0 { packs[Int(newPack)].size = packSummary.size } else { packs.removeLast() }

        // 4. The manifest: every page for a base (the new map's records), the changed ones
        // otherwise (the entries file), sealed as it is written.
        let digest = keys.fileDigest(sha256: sha.finalize(), pageSize: pageSize, pageCount: pageCount)
        let name = try PointName.fresh(time: pointTime, kind: kind)
        let manifestPath = ws.file("manifest")
        var localOf = [UInt32](repeating: 0, count: usedPacks.count)
        var manifestPacks: [PackRef] = []
        for g in usedPacks.indices where usedPacks[g] && g < packs.count {
            localOf[g] = UInt32(manifestPacks.count)
            manifestPacks.append(packs[g])
        }
        // A base lists every page; an incremental point only the changed ones, and only the
        // packs they use.
        if kind == .incremental {
            manifestPacks = []
            usedPacks = [Bool](repeating: false, count: usedPacks.count)
            try EntryFile.read(entries.path, count: changed, chunk: 1 << 15) { for e in $0 { usedPacks[Int(e.location.pack)] = true } }
            for g in usedPacks.indices where usedPacks[g] {
                localOf[g] = UInt32(manifestPacks.count)
                manifestPacks.append(packs[g])
            }
        }
        let count = kind == .base ? pageCount : changed
        let parentName = kind == .incremental ? parentPoint?.relative : nil
        let bodyLength = PointBody.encodedSize(parentLength: parentName?.utf8.count ?? 0, packs: manifestPacks, entryCount: count)
        let summary = PointSummary(kind: kind, check: check == .full ? 2 : 1, pageSize: pageSize, pageCount: pageCount,
                                   time: pointTime, uploadedBytes: (newBlocks > 0 ? packSummary.size : 0) + ManifestSeal.objectSize(bodyLength: bodyLength),
                                   uploadedBlocks: newBlocks, depth: kind == .base ? 0 : parentSummary!.depth + 1, digest: digest)
        let manifest = try ManifestWriter(path: manifestPath, name: name.relative, summary: summary, key: keys.point, bodyLength: bodyLength)
        try manifest.append {
            PointBody.encodeHeader(into: &$0, parent: parentName, parentDigest: kind == .incremental ? parentSummary?.digest ?? [] : [],
                                   packs: manifestPacks, entryCount: count)
        }
        func local(_ e: PageEntry) -> PageEntry {
            PageEntry(page: e.page, id: e.id, location: BlockLocation(pack: localOf[Int(e.location.pack)], offset: e.location.offset, length: e.location.length))
        }
        if kind == .base {
            try newMap.flush()
            let records = try MapReader(path: newMap.path, count: pageCount, packCount: packs.count)
            var page: UInt32 = 0
            while let r = try records.next() {
                let e = local(PageEntry(page: page, id: r.id, location: r.location))
                try manifest.append { PointBody.appendEntry(e, to: &$0) }
                page += 1
            }
        } else {
            try EntryFile.read(entries.path, count: changed, chunk: 1 << 15) { chunk in
                try manifest.append { for e in chunk { PointBody.appendEntry(local(e), to: &$0) } }
            }
        }
        let (manifestSize, manifestMD5) = try manifest.finish()
        let uploaded = summary.uploadedBytes

        // 5. Pack first, then the manifest: a point exists only once all it names is stored.
        let metadata = ["format": "laju-backup-incremental-v1", "key-fingerprint": encryptionKey.fingerprint]
        var packKey: String?
        if newBlocks > 0 {
            let k = namespace.key(packName)
            let (_, seconds) = try timedStep("upload", events: events) { progress in
                try store.put(key: k, file: pack.path, size: packSummary.size, md5: packSummary.md5, metadata: metadata, progress: progress)
            }
            events(.step(name: "upload", summary: "\(store.displayName) \(k) (\(Human.bytes(packSummary.size)), \(Human.rate(packSummary.size, seconds)))", seconds: seconds))
            packKey = k
        }
        let manifestKey = namespace.key(name.relative)
        try store.put(key: manifestKey, file: manifestPath, size: manifestSize, md5: manifestMD5,
                      metadata: metadata, progress: nil)
        events(.step(name: "point", summary: "\(kind.rawValue) point \(manifestKey)", seconds: 0))

        // The cache is an optimisation: failing to write it costs the next run a rebuild.
        let chainManifests = (kind == .base ? [] : parentManifests) + [PackRef(name: name.relative, size: manifestSize)]
        do { try cache.commit(newMap, point: name, summary: summary, packs: packs, manifests: chainManifests) } catch {
            events(.warning("the local state cache was not written (\(error)); the next run rebuilds it from the store"))
        }
        return Outcome(point: PointChain.display(name), key: manifestKey, kind: kind, time: PointTime.rfc3339(pointTime),
                       parent: parentPoint.map { PointChain.display($0) }, newChain: newChainReason,
                       pageSize: pageSize, pages: pageCount, databaseBytes: Int64(pageSize) * Int64(pageCount),
                       changedPages: changed, uploadedBlocks: newBlocks,
                       uploadedBytes: uploaded, pack: packKey, check: checkName, totalSeconds: monotonicSeconds() - started)
    }

    /// The packs of which `map` uses less than half of the bytes (counted once per page: a
    /// block that several pages share counts more than once, which only keeps a pack).
    static func sparsePacks(_ map: PageMap) throws -> [Int] {
        var live = [Int64](repeating: 0, count: map.packs.count)
        let records = try map.records()
        while let r = try records.next() { live[Int(r.location.pack)] += Int64(r.location.length) }
        return map.packs.indices.filter { live[$0] * 2 < map.packs[$0].size }
    }

    /// Blocks of the parent a run can find by id (5 MiB: every page of a 512 MiB database of
    /// 4 KiB pages; the first 2^17 pages of a larger one), and blocks of its own (1.25 MiB).
    static let knownBlocks = 1 << 17
    static let sealedBlocks = 1 << 15

    /// The newest point's page map: from the cache when it proves current, else rebuilt from the
    /// store's manifests. Nil (with the reason) when there is no usable chain.
    func parentState(chain: PointChain, listing: [PointChain.Listed], cache: StateCache,
                     store: ObjectStore, workspace: Workspace) throws -> (PageMap?, String?) {
        guard let newest = listing.last else {
            return (nil, "first incremental backup of this database in \(store.displayName)")
        }
        let packs = try chain.listPacks()
        func packsPresent(_ map: PageMap) -> String? {
            for p in map.packs where packs[p.name] != p.size {
                return packs[p.name] == nil ? "pack \(p.name) is missing" : "pack \(p.name) has \(packs[p.name]!) bytes, not \(p.size)"
            }
            return nil
        }
        let listed = Dictionary(listing.map { ($0.name.relative, $0.size) }, uniquingKeysWith: { a, _ in a })
        if let cached = cache.load(expecting: newest.name), packsPresent(cached) == nil,
           !cached.manifests.isEmpty, cached.manifests.allSatisfy({ listed[$0.name] == $0.size }) {
            return (cached, nil)
        }
        do {
            let (map, links) = try chain.pageMap(to: newest.name, listing: listing, path: workspace.file("parent.map"))
            if let problem = packsPresent(map) {
                return (nil, "the chain ending at \(PointChain.display(newest.name)) cannot be used (\(problem))")
            }
            events(.step(name: "chain", summary: "local state missing or stale: rebuilt from \(links.count) manifest(s) in the store", seconds: 0))
            return (map, nil)
        } catch let e as FormatError {
            return (nil, "the chain ending at \(PointChain.display(newest.name)) cannot be used (\(e.message))")
        } catch let e as LajuError where e.kind == .integrity || e.isNotFound {
            return (nil, "the chain ending at \(PointChain.display(newest.name)) cannot be used (\(e.message))")
        }
    }
}
