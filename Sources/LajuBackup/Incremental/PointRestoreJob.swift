import Synchronization

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
    public var at: At
    public var check: RestoreJob.Check
    public var events: JobEventSink

    /// Blocks closer than this in a pack are fetched by one request; a request reads at most
    /// `maxRequest` bytes (the memory a restore holds at once).
    static let coalesceGap: Int64 = 64 << 10
    static let maxRequest: Int64 = 8 << 20

    public init(settings: Settings, at: At, check: RestoreJob.Check = .auto, events: @escaping JobEventSink) {
        self.settings = settings
        self.at = at
        self.check = check
        self.events = events
    }

    public func run(target: RestoreJob.Target) throws -> Outcome {
        let started = monotonicSeconds()
        let key = try settings.encryptionKey()
        let keys = try IncrementalKeys(key)
        let scope = try settings.scope()
        let namespace = try IncrementalNamespace(settings: settings, key: key)
        let protected = [settings.databasePath, settings.catalogPath]
        var output: RestoreOutput?
        if case .file(let path, _, let force) = target, let path {
            output = RestoreOutput(path: path, force: force, protected: protected)
            try RestoreJob.prepareOutputDirectory(output!.directory)
            try output!.check()
        }

        let store = try settings.makeStore(role: .read)
        let chain = PointChain(store: store, namespace: namespace, keys: keys)
        let listing = try chain.listPoints()
        let candidates: [PointChain.Listed]
        switch at {
        case .latest: candidates = listing
        case .time(let t): candidates = listing.filter { $0.name.time <= t }
        }
        guard let chosen = candidates.last?.name else {
            let when: String
            if case .time(let t) = at { when = " at or before \(PointTime.rfc3339(t))" } else { when = "" }
            throw LajuError(.storage, "no restore point of \(scope.databaseName)\(when) in \(store.displayName) under \(Display.safe(namespace.root))",
                            hint: listing.isEmpty ? "make one with `laju-backup backup --incremental`" : "the oldest is \(PointTime.rfc3339(listing[0].name.time)); see `laju-backup list --points`",
                            isNotFound: true)
        }
        events(.step(name: "point", summary: "\(PointChain.display(chosen)) (\(PointTime.rfc3339(chosen.time)))", seconds: 0))
        let (map, packUsers, manifestCount) = try loadMap(chain: chain, chosen: chosen, listing: listing)
        func dependents(_ pack: String) -> String {
            var names = packUsers[pack] ?? []
            if !names.contains(chosen) { names.append(chosen) }
            return PointChain.display(names)
        }
        let stored = try chain.listPacks()
        for p in map.packs {
            guard let size = stored[p.name] else {
                throw chain.missing(namespace.key(p.name), dependents: dependents(p.name), what: "pack")
            }
            guard size == p.size else {
                throw LajuError(.integrity, "pack \(Display.safe(namespace.key(p.name))) is damaged: it has \(size) bytes, the points recorded \(p.size); points that depend on it: \(dependents(p.name))",
                                hint: "restore a point that does not use it (`laju-backup list --points`)")
            }
        }

        // Where the file is assembled: beside the target (atomic rename), or a private workspace.
        var workspace: Workspace?
        defer { workspace?.remove() }
        let tempDir: String
        switch target {
        case .file(_, let directory, let force):
            if output == nil {
                output = RestoreOutput(path: "\(directory)/\(RestoreJob.defaultFileName(uploadedAt: chosen.time))", force: force, protected: protected)
                try RestoreJob.prepareOutputDirectory(output!.directory)
                try output!.check()
            }
            tempDir = output!.directory
        case .verifyOnly:
            workspace = try Workspace(base: settings.tempBase, events: events)
            tempDir = workspace!.path
        }
        let bytes = map.summary.databaseBytes
        try Workspace.checkFreeSpace(in: tempDir, needed: bytes.addingSaturating(1 << 20))
        let partial = try output?.partialPath(events: events) ?? "\(tempDir)/verify.db"
        var keepPartial = false
        CleanupRegistry.shared.add(partial)
        defer {
            CleanupRegistry.shared.remove(partial)
            if !keepPartial { for p in [partial] + RestoreOutput.sideSuffixes.map({ partial + $0 }) { unlink(p) } }
        }
        let fd = open(partial, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LajuError(.local, "cannot create \(partial): \(String(cString: strerror(errno)))") }
        defer { closeDescriptor(fd) }
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            throw LajuError(.local, "cannot size \(partial) to \(bytes) bytes: \(String(cString: strerror(errno)))")
        }

        let (fetched, fetchSeconds) = try timedStep("blocks", events: events) { progress in
            try fetch(map: map, keys: keys, store: store, namespace: namespace, fd: fd, partial: partial,
                      dependents: dependents, progress: progress)
        }
        events(.step(name: "blocks", summary: "\(map.pageCount) pages from \(manifestCount) manifest(s): \(fetched.blocks) block(s) in \(fetched.requests) request(s), \(Format.bytes(fetched.bytes)) (\(Format.rate(fetched.bytes, fetchSeconds)))", seconds: fetchSeconds))
        guard fsync(fd) == 0 else { throw LajuError(.local, "cannot flush \(partial): \(String(cString: strerror(errno)))") }

        // The whole file, as it is on disk, against the digest the point recorded.
        let sha = try Digest.hash(.sha256, fileDescriptor: fd)
        guard keys.fileDigest(sha256: sha, pageSize: map.pageSize, pageCount: map.pageCount) == map.summary.digest else {
            throw LajuError(.integrity, "the file rebuilt from point \(PointChain.display(chosen)) does not match the digest the point recorded",
                            hint: "its chain is inconsistent; restore an earlier point (`laju-backup list --points`)")
        }
        let (checkName, _, ownership) = try RestoreJob.finish(
            partial: partial, output: output, check: check,
            proof: map.summary.check == 2 ? ("point_digest", "the restored bytes are the snapshot that passed integrity_check at backup time") : nil,
            damagedHint: "the point was taken from a damaged database; try an earlier point",
            liveDatabase: settings.databasePath, events: events)
        keepPartial = output != nil
        return Outcome(point: PointChain.display(chosen), key: namespace.key(chosen.relative), kind: chosen.kind,
                       time: PointTime.rfc3339(chosen.time), output: output?.path, restoredBytes: bytes, manifests: manifestCount,
                       blocks: fetched.blocks, requests: fetched.requests, bytesFetched: fetched.bytes, check: checkName,
                       ownership: ownership, totalSeconds: monotonicSeconds() - started)
    }

    /// The chosen point's page map, which points of its chain use each pack (for messages), and
    /// how many manifests were read. The manifests themselves are dropped on return (memory).
    func loadMap(chain: PointChain, chosen: PointName, listing: [PointChain.Listed]) throws -> (PageMap, [String: [PointName]], Int) {
        let (map, links) = try chain.pageMap(to: chosen, listing: listing)
        var users: [String: [PointName]] = [:]
        for link in links.reversed() {
            for p in link.body.packs { users[p.name, default: []].append(link.name) }
        }
        return (map, users, links.count)
    }

    /// Fetches every block the map needs, pack by pack in offset order, a few MiB per ranged
    /// request, checks each (tag, codec, size, id) and writes its page(s) into `fd`. Two workers
    /// (this thread and one more) take requests in turn: checking blocks is CPU work, and a
    /// ranged GET waits on the network.
    func fetch(map: PageMap, keys: IncrementalKeys, store: ObjectStore, namespace: IncrementalNamespace, fd: Int32,
               partial: String, dependents: (String) -> String, progress: TransferProgress) throws -> (blocks: Int, requests: Int, bytes: Int64) {
        // (pack, offset, page), sorted: pages that share a block sit next to each other.
        var order = Array(0..<UInt32(map.pageCount))
        order.sort { a, b in
            let x = map.locations[Int(a)], y = map.locations[Int(b)]
            return (x.pack, x.offset, a) < (y.pack, y.offset, b)
        }
        // One request: as many following blocks of the same pack as fit.
        var requests: [FetchRequest] = []
        var i = 0
        while i < order.count {
            let first = map.locations[Int(order[i])]
            var end = first.offset + Int64(first.length)
            var j = i + 1
            while j < order.count {
                let l = map.locations[Int(order[j])]
                let newEnd = max(end, l.offset + Int64(l.length))
                guard l.pack == first.pack, l.offset <= end + Self.coalesceGap, newEnd - first.offset <= Self.maxRequest else { break }
                end = newEnd
                j += 1
            }
            requests.append(FetchRequest(from: i, to: j, pack: first.pack, offset: first.offset, length: end - first.offset))
            i = j
        }
        var messages: [String: String] = [:]
        for p in map.packs { messages[p.name] = dependents(p.name) }
        let job = FetchJob(map: map, order: order, requests: requests, keys: keys, store: StoreBox(store), namespace: namespace,
                           fd: fd, partial: partial, dependents: messages)
        let helper = BackgroundTask { try job.work() }
        let mine = Result { try withoutActuallyEscaping(progress) { try job.work(progress: $0) } }
        let theirs = Result { try helper.wait() }
        let a = try mine.get(), b = try theirs.get()
        return (a.blocks + b.blocks, requests.count, a.bytes + b.bytes)
    }
}

/// One ranged request of a restore: pages `order[from..<to]`, bytes `offset..<offset+length` of a pack.
struct FetchRequest: Sendable {
    var from: Int
    var to: Int
    var pack: UInt32
    var offset: Int64
    var length: Int64
}

/// A store handed to the second fetch worker: both stores are safe to read from two threads
/// (LocalStore reads with pread; S3Store keeps a pool of connections).
final class StoreBox: @unchecked Sendable {
    let store: ObjectStore
    init(_ store: ObjectStore) { self.store = store }
}

/// What the fetch workers share: the plan, and which request is next (a failure stops both).
final class FetchJob: Sendable {
    let map: PageMap
    let order: [UInt32]
    let requests: [FetchRequest]
    let keys: IncrementalKeys
    let store: StoreBox
    let namespace: IncrementalNamespace
    let fd: Int32
    let partial: String
    let dependents: [String: String]
    private let cursor = Mutex((next: 0, failed: false))

    init(map: PageMap, order: [UInt32], requests: [FetchRequest], keys: IncrementalKeys, store: StoreBox,
         namespace: IncrementalNamespace, fd: Int32, partial: String, dependents: [String: String]) {
        self.map = map
        self.order = order
        self.requests = requests
        self.keys = keys
        self.store = store
        self.namespace = namespace
        self.fd = fd
        self.partial = partial
        self.dependents = dependents
    }

    private func take() -> Int? {
        cursor.withLock { c in
            guard !c.failed, c.next < requests.count else { return nil }
            c.next += 1
            return c.next - 1
        }
    }

    /// Takes requests until none is left; the blocks checked and bytes read by this worker.
    func work(progress: TransferProgress? = nil) throws -> (blocks: Int, bytes: Int64) {
        do {
            return try run(progress: progress)
        } catch {
            cursor.withLock { $0.failed = true }
            throw error
        }
    }

    private func run(progress: TransferProgress?) throws -> (blocks: Int, bytes: Int64) {
        let sealer = try BlockSealer(keys: keys)
        let pageSize = map.pageSize
        var blocks = 0
        var bytes: Int64 = 0
        while let n = take() {
            let r = requests[n]
            let pack = map.packs[Int(r.pack)].name
            let packKey = namespace.key(pack)
            let data: [UInt8]
            do {
                data = try store.store.getRange(key: packKey, offset: r.offset, length: r.length)
            } catch let e as LajuError where e.isNotFound {
                throw LajuError(.storage, "pack \(Display.safe(packKey)) is missing from \(store.store.displayName); points that depend on it: \(dependents[pack] ?? "?")",
                                hint: "restore a point that does not use it (`laju-backup list --points`)", isNotFound: true)
            }
            bytes += Int64(data.count)
            var lastLocation: BlockLocation?
            var lastID: BlockID?
            var page: [UInt8] = []
            for k in r.from..<r.to {
                let index = Int(order[k])
                let l = map.locations[index], id = map.ids[index]
                if l != lastLocation || id != lastID {
                    let start = Int(l.offset - r.offset)
                    switch sealer.open(data[start..<(start + Int(l.length))], id: id, pageSize: pageSize) {
                    case .success(let p): page = p
                    case .failure(let e):
                        throw LajuError(.integrity, "pack \(Display.safe(packKey)) is damaged: \(e.message) (offset \(l.offset)); points that depend on it: \(dependents[pack] ?? "?")",
                                        hint: "restore a point that does not use it (`laju-backup list --points`)")
                    }
                    blocks += 1
                    lastLocation = l
                    lastID = id
                }
                let written = page.withUnsafeBytes { pwrite(fd, $0.baseAddress, pageSize, off_t(index) * off_t(pageSize)) }
                guard written == pageSize else {
                    let e = errno
                    throw LajuError(.local, "cannot write \(partial): \(String(cString: strerror(e)))",
                                    hint: e == ENOSPC ? "free space in the target's folder" : nil)
                }
            }
            _ = progress?(Int64(r.to), Int64(order.count))
        }
        return (blocks, bytes)
    }
}
