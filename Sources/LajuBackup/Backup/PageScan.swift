/// The page pass of a point (`PointBackupJob`): each page of the snapshot is hashed, given its
/// keyed id and compared with the parent's page at the same place; a page the store lacks is
/// sealed into this run's pack.
///
/// Memory does not grow with the database: the parent's map is read front to back beside the
/// snapshot, the new map is written to the cache file as pages go, the changed pages' entries to a
/// file of their own; only the bounded tables are held (`BlockTable`).
final class PageScan {
    let keys: PointKeys
    /// The parent's packs, then this run's (`newPack`, sized by `finish()`, dropped when empty).
    private(set) var packs: [PackRef]
    let packName: String
    let newPack: UInt32
    let pack: FileWriter
    /// The changed pages' entries, in page order.
    let entries: FileWriter
    /// The new page map (the state cache's file): one record a page.
    let newMap: FileWriter
    /// Which packs the new map uses.
    private(set) var usedPacks: [Bool]
    private(set) var newBlocks = 0
    private(set) var changed = 0
    /// Blocks sealed again out of mostly superseded packs (`sparsePacks`) or packs to avoid.
    private(set) var resealed = 0
    private(set) var packSize: Int64 = 0
    private(set) var packMD5: [UInt8] = []
    private let sparse: [Bool]
    private let parentRecords: MapReader?
    /// The parent's blocks by id (a page that moved is not uploaded again), and the blocks
    /// sealed by this run (equal pages in one run are stored once).
    private var known: BlockTable
    private var sealedHere: BlockTable
    private let sealer: BlockSealer
    private let sha = Digest(.sha256)

    var sparseCount: Int { sparse.filter { $0 }.count }

    init(
        parent: PageMap?, kind: PointKind, pageCount: Int, keys: PointKeys, newMap: FileWriter,
        workspace: Workspace, avoid: Set<String> = []
    ) throws {
        self.keys = keys
        self.newMap = newMap
        var packs = parent?.packs ?? []
        packName = try PackNames.fresh()
        newPack = UInt32(packs.count)
        packs.append(PackRef(name: packName, size: 0))
        self.packs = packs
        pack = try FileWriter(path: workspace.file("pack"))
        try pack.append(keys.packHeader(name: packName))
        parentRecords = try parent?.records()
        known = BlockTable(capacity: parent == nil ? 0 : min(parent!.pageCount, Self.knownBlocks))
        if let parent {
            let prefill = try parent.records()
            while !known.isFull, let r = try prefill.next() { known.insert(r.id, at: r.location) }
        }
        sealedHere = BlockTable(capacity: min(pageCount, Self.sealedBlocks))
        // A base that follows a full chain seals again the blocks it would take from packs that
        // are mostly superseded: restores then read fewer dead bytes, and `clean --points`
        // deletes those packs once the old chain's points expire.
        // Packs the run must not point at (damaged ones, or all with --new-base) are treated the
        // same way: their blocks are sealed again.
        var sparse = packs.map { avoid.contains($0.name) }
        if kind == .base, let parent {
            for i in try Self.sparsePacks(parent) { sparse[i] = true }
        }
        self.sparse = sparse
        entries = try FileWriter(path: workspace.file("entries"))
        usedPacks = [Bool](repeating: false, count: packs.count)
        sealer = try BlockSealer(keys: keys)
    }

    /// Blocks of the parent a run can find by id (5 MiB: every page of a 512 MiB database of
    /// 4 KiB pages; the first 2^17 pages of a larger one), and blocks of its own (1.25 MiB).
    static let knownBlocks = 1 << 17
    static let sealedBlocks = 1 << 15

    /// The packs of which `map` uses less than half of the bytes (counted once per page: a
    /// block that several pages share counts more than once, which only keeps a pack).
    static func sparsePacks(_ map: PageMap) throws -> [Int] {
        var live = [Int64](repeating: 0, count: map.packs.count)
        let records = try map.records()
        while let r = try records.next() { live[Int(r.location.pack)] += Int64(r.location.length) }
        return map.packs.indices.filter { live[$0] * 2 < map.packs[$0].size }
    }

    /// One page, in page order.
    func add(_ index: Int, _ page: UnsafeRawBufferPointer) throws {
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
                try entries.append {
                    PointBody.appendEntry(PageEntry(page: UInt32(index), id: id, location: location), to: &$0)
                }
            }
        }
        usedPacks[Int(location.pack)] = true
        try newMap.append { PageMap.appendRecord(id, location, to: &$0) }
    }

    /// Ends the pass: the pack and the entries are written out, the lookup tables released.
    /// Returns the SHA-256 of the whole snapshot.
    func finish() throws -> [UInt8] {
        known = BlockTable(capacity: 0)
        sealedHere = BlockTable(capacity: 0)
        (packSize, packMD5) = try pack.finish()
        _ = try entries.finish()
        return sha.finalize()
    }

    /// This run's pack takes its size, or leaves the list when no block went into it.
    func settlePacks() {
        if newBlocks > 0 { packs[Int(newPack)].size = packSize } else { packs.removeLast() }
    }
}
