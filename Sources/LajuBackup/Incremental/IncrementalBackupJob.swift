/// `backup --incremental`: the same consistent snapshot as a full backup, cut into pages; only
/// blocks the store lacks are sealed into one pack; one manifest records the new restore point
/// (docs/format-incremental.md, 5).
public struct IncrementalBackupJob {
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
        let key = try settings.encryptionKey()
        let keys = try IncrementalKeys(key)
        let check = try settings.incrementalCheck()
        let busy = try settings.busyTimeout()
        let namespace = try IncrementalNamespace(settings: settings, key: key)
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
        let chain = PointChain(store: readStore, namespace: namespace, keys: keys)
        let listing = try chain.listPoints()
        if let newest = listing.last, pointTime <= newest.name.time {
            events(.warning("the clock is behind the newest point \(PointChain.display(newest.name)); this point is dated just after it"))
            pointTime = newest.name.time + 1
        }
        let cache = StateCache(directory: settings.incrementalStateDirectory, namespace: namespace, keys: keys)
        var (parent, newChainReason) = try parentState(chain: chain, listing: listing, cache: cache, store: store)

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
        let packPath = ws.file("pack")
        let pack = try PackWriter(path: packPath)
        var parentIDs = parent?.ids ?? [], parentLocations = parent?.locations ?? []
        // The parent's blocks by id (a page that moved is not uploaded again), and the blocks
        // sealed by this run (equal pages in one run are stored once): positions in the id arrays.
        var known = BlockIndex(capacity: parentIDs.count)
        for i in parentIDs.indices where known.find(parentIDs[i], in: parentIDs) == nil { known.insert(i, of: parentIDs) }
        var sealedHere = BlockIndex(capacity: pageCount)
        var newBlocks = 0
        let sealer = try BlockSealer(keys: keys)
        var ids: [BlockID] = [], locations: [BlockLocation] = []
        ids.reserveCapacity(pageCount)
        locations.reserveCapacity(pageCount)
        var changed: [UInt32] = []
        let sha = Digest(.sha256)
        let (_, scanSeconds) = try timedStep("pages", events: events) { progress in
            try reader.forEachPage { index, page in
                sha.update(page)
                let id = keys.blockID(page)
                var location: BlockLocation
                var sealedNow = false
                if index < parentIDs.count, parentIDs[index] == id {
                    location = parentLocations[index]
                } else {
                    changed.append(UInt32(index))
                    if let j = known.find(id, in: parentIDs) {
                        location = parentLocations[j]
                    } else if let j = sealedHere.find(id, in: ids) {
                        location = locations[j]
                    } else {
                        let sealed = try sealer.seal(page: page, id: id)
                        location = BlockLocation(pack: newPack, offset: pack.size, length: UInt32(sealed.count))
                        try pack.append(sealed)
                        sealedNow = true
                        newBlocks += 1
                    }
                }
                ids.append(id)
                locations.append(location)
                if sealedNow { sealedHere.insert(ids.count - 1, of: ids) }
                if index % 4096 == 0 { _ = progress(Int64(index) * Int64(pageSize), Int64(pageCount) * Int64(pageSize)) }
            }
        }
        // Only the parent's identity is needed from here on: its page map can go (memory).
        known = BlockIndex(capacity: 0)
        sealedHere = BlockIndex(capacity: 0)
        parentIDs = []
        parentLocations = []
        let parentPoint = parent?.point, parentSummary = parent?.summary, parentManifests = parent?.manifests ?? []
        let parentPageCount = parent?.pageCount
        parent = nil
        let packSummary = try pack.finish()
        events(.step(name: "pages", summary: "\(pageCount) pages of \(pageSize) bytes, \(changed.count) changed, \(newBlocks) new block(s) (\(Format.bytes(packSummary.size)) pack)", seconds: scanSeconds))
        try stage.requireSound(database: database, what: "points", events: events)

        if let parentPoint, let parentSummary, changed.isEmpty, parentPageCount == pageCount {
            events(.step(name: "point", summary: "no changes since \(PointChain.display(parentPoint))", seconds: 0))
            try? cache.save(PageMap(point: parentPoint, summary: parentSummary, ids: ids, locations: locations, packs: Array(packs.dropLast()), manifests: parentManifests))
            return Outcome(point: nil, key: nil, kind: nil, time: nil, parent: PointChain.display(parentPoint), newChain: nil,
                           pageSize: pageSize, pages: pageCount, databaseBytes: Int64(pageSize) * Int64(pageCount),
                           changedPages: 0, uploadedBlocks: 0, uploadedBytes: 0, pack: nil, check: checkName,
                           totalSeconds: monotonicSeconds() - started)
        }
        if newBlocks > 0 { packs[Int(newPack)].size = packSummary.size } else { packs.removeLast() }

        // 4. The manifest: every page for a base, the changed ones otherwise.
        let digest = keys.fileDigest(sha256: sha.finalize(), pageSize: pageSize, pageCount: pageCount)
        let name = try PointName.fresh(time: pointTime, kind: kind)
        let manifestPath = ws.file("manifest")
        // The manifest (36 bytes a page for a base) is built and sealed in one buffer that exists
        // only inside this function: it is gone before the cache is written.
        func writeManifest<S: Sequence>(pages pagesOut: S, count: Int) throws -> (PointSummary, Int64, [UInt8]) where S.Element == UInt32 {
            var localOf: [UInt32: UInt32] = [:]
            var manifestPacks: [PackRef] = []
            for i in pagesOut {
                let g = locations[Int(i)].pack
                if localOf[g] == nil { localOf[g] = UInt32(manifestPacks.count); manifestPacks.append(packs[Int(g)]) }
            }
            let parentName = kind == .incremental ? parentPoint?.relative : nil
            let bodyLength = PointBody.encodedSize(parentLength: parentName?.utf8.count ?? 0, packs: manifestPacks, entryCount: count)
            let size = ManifestSeal.objectSize(bodyLength: bodyLength)
            let summary = PointSummary(kind: kind, check: check == .full ? 2 : 1, pageSize: pageSize, pageCount: pageCount,
                                       time: pointTime, uploadedBytes: (newBlocks > 0 ? packSummary.size : 0) + size,
                                       uploadedBlocks: newBlocks, depth: kind == .base ? 0 : parentSummary!.depth + 1, digest: digest)
            let manifest = try ManifestSeal.seal(name: name.relative, summary: summary, key: keys.point, bodyLength: bodyLength) { out in
                PointBody.encode(into: &out, parent: parentName,
                                 parentDigest: kind == .incremental ? parentSummary?.digest ?? [] : [],
                                 packs: manifestPacks, entryCount: count,
                                 entries: pagesOut.lazy.map { i in
                                     let l = locations[Int(i)]
                                     return PageEntry(page: i, id: ids[Int(i)], location: BlockLocation(pack: localOf[l.pack]!, offset: l.offset, length: l.length))
                                 })
            }
            try writeFile(manifest, to: manifestPath)
            return (summary, Int64(manifest.count), Digest.hash(.md5, manifest))
        }
        let (summary, manifestSize, manifestMD5) = kind == .base
            ? try writeManifest(pages: 0..<UInt32(pageCount), count: pageCount)
            : try writeManifest(pages: changed, count: changed.count)
        let uploaded = summary.uploadedBytes

        // 5. Pack first, then the manifest: a point exists only once all it names is stored.
        let metadata = ["format": "laju-backup-incremental-v1", "key-fingerprint": key.fingerprint]
        var packKey: String?
        if newBlocks > 0 {
            let k = namespace.key(packName)
            let (_, seconds) = try timedStep("upload", events: events) { progress in
                try store.put(key: k, file: packPath, size: packSummary.size, md5: packSummary.md5, metadata: metadata, progress: progress)
            }
            events(.step(name: "upload", summary: "\(store.displayName) \(k) (\(Format.bytes(packSummary.size)), \(Format.rate(packSummary.size, seconds)))", seconds: seconds))
            packKey = k
        }
        let manifestKey = namespace.key(name.relative)
        try store.put(key: manifestKey, file: manifestPath, size: manifestSize, md5: manifestMD5,
                      metadata: metadata, progress: nil)
        events(.step(name: "point", summary: "\(kind.rawValue) point \(manifestKey)", seconds: 0))

        // The cache is an optimisation: failing to write it costs the next run a rebuild.
        let chainManifests = (kind == .base ? [] : parentManifests) + [PackRef(name: name.relative, size: manifestSize)]
        let map = PageMap(point: name, summary: summary, ids: ids, locations: locations, packs: packs, manifests: chainManifests)
        do { try cache.save(map) } catch {
            events(.warning("the local state cache was not written (\(error)); the next run rebuilds it from the store"))
        }
        return Outcome(point: PointChain.display(name), key: manifestKey, kind: kind, time: PointTime.rfc3339(pointTime),
                       parent: parentPoint.map { PointChain.display($0) }, newChain: newChainReason,
                       pageSize: pageSize, pages: pageCount, databaseBytes: Int64(pageSize) * Int64(pageCount),
                       changedPages: changed.count, uploadedBlocks: newBlocks,
                       uploadedBytes: uploaded, pack: packKey, check: checkName, totalSeconds: monotonicSeconds() - started)
    }

    /// The newest point's page map: from the cache when it proves current, else rebuilt from the
    /// store's manifests. Nil (with the reason) when there is no usable chain.
    func parentState(chain: PointChain, listing: [PointChain.Listed], cache: StateCache,
                     store: ObjectStore) throws -> (PageMap?, String?) {
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
            let (map, links) = try chain.pageMap(to: newest.name, listing: listing)
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

/// Writes `bytes` to a new private file.
func writeFile(_ bytes: [UInt8], to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw LajuError(.local, "cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw LajuError(.local, "cannot write \(path): \(String(cString: strerror(errno)))") }
        done += n
    }
}
