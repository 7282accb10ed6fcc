import Synchronization

/// A pack whose bytes are not what the points recorded (a block that does not authenticate, a
/// size that differs): the restore stops with `error`, and the damage is noted so that the next
/// point does not build on it (`StateCache.recordDamage`).
struct DamagedPack: Error {
    let pack: String
    let error: LajuError

    /// The message every kind of damage shares: what is wrong, every point that depends on the
    /// pack, and how to get past it.
    init(pack: String, key: String, why: String, dependents: String) {
        self.pack = pack
        error = LajuError(
            .integrity, "pack \(Display.safe(key)) is damaged: \(why); points that depend on it: \(dependents)",
            hint:
                "restore a point that does not use it (`laju-backup list --points`); the next `backup --incremental` starts a new base that does not use it (`laju-backup backup --incremental --new-base` starts one now)"
        )
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

/// What every fetch of a restore shares: the chain's packs, the key, the store, the file.
struct FetchContext: Sendable {
    let packs: [PackRef]
    let pageSize: Int
    let keys: PointKeys
    let store: ObjectStore
    let namespace: PointNamespace
    let fd: Int32
    let partial: String
    /// Pack name -> the points that depend on it (for messages).
    let dependents: [String: String]
}

/// What the fetch workers share: the plan, and which request is next (a failure stops both).
final class FetchQueue: Sendable {
    let entries: [PageEntry]
    let requests: [FetchRequest]
    let context: FetchContext
    private let cursor = Mutex((next: 0, failed: false))

    init(entries: [PageEntry], requests: [FetchRequest], context: FetchContext) {
        self.entries = entries
        self.requests = requests
        self.context = context
    }

    private func take() -> Int? {
        cursor.withLock { c in
            guard !c.failed, c.next < requests.count else { return nil }
            c.next += 1
            return c.next - 1
        }
    }

    /// Takes requests until none is left; the blocks checked and bytes read by this worker.
    func work() throws -> (blocks: Int, bytes: Int64) {
        do {
            return try run()
        } catch {
            cursor.withLock { $0.failed = true }
            throw error
        }
    }

    private func run() throws -> (blocks: Int, bytes: Int64) {
        let c = context
        let sealer = try BlockSealer(keys: c.keys)
        let pageSize = c.pageSize
        var blocks = 0
        var bytes: Int64 = 0
        while let n = take() {
            let r = requests[n]
            let pack = c.packs[Int(r.pack)].name
            let packKey = c.namespace.key(pack)
            let data: [UInt8]
            do {
                data = try c.store.getRange(key: packKey, offset: r.offset, length: r.length)
            } catch let e as LajuError where e.isNotFound {
                throw LajuError(
                    .storage,
                    "pack \(Display.safe(packKey)) is missing from \(c.store.displayName); points that depend on it: \(c.dependents[pack] ?? "?")",
                    hint: "restore a point that does not use it (`laju-backup list --points`)", isNotFound: true)
            }
            bytes += Int64(data.count)
            var lastLocation: BlockLocation?
            var lastID: BlockID?
            var page: [UInt8] = []
            for e in entries[r.from..<r.to] {
                let l = e.location
                if l != lastLocation || e.id != lastID {
                    let start = Int(l.offset - r.offset)
                    guard start >= 0, start + Int(l.length) <= data.count else {
                        throw DamagedPack(
                            pack: pack, key: packKey, why: "it is shorter than recorded (offset \(l.offset))",
                            dependents: c.dependents[pack] ?? "?")
                    }
                    switch sealer.open(data[start..<(start + Int(l.length))], id: e.id, pageSize: pageSize) {
                    case .success(let p): page = p
                    case .failure(let err):
                        throw DamagedPack(
                            pack: pack, key: packKey, why: "\(err.message) (offset \(l.offset))",
                            dependents: c.dependents[pack] ?? "?")
                    }
                    blocks += 1
                    lastLocation = l
                    lastID = e.id
                }
                let written = page.withUnsafeBytes {
                    pwrite(c.fd, $0.baseAddress, pageSize, off_t(e.page) * off_t(pageSize))
                }
                guard written == pageSize else {
                    let err = errno
                    throw LajuError(
                        .local, "cannot write \(c.partial): \(String(cString: strerror(err)))",
                        hint: err == ENOSPC ? "free space in the target's folder" : nil)
                }
            }
        }
        return (blocks, bytes)
    }
}
