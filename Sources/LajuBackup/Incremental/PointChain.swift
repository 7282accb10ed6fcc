/// Reads points back from the store: the listing, manifests, a point's chain down to its base
/// with every link checked, and the page map the chain adds up to. Shared by backup (the parent
/// state), restore/verify and `list --points`.
struct PointChain {
    /// Incremental points after a base, at most: a restore reads at most 64 manifests.
    static let maxDepth = 63

    let store: ObjectStore
    let namespace: IncrementalNamespace
    let keys: IncrementalKeys

    struct Listed { var name: PointName; var size: Int64 }

    struct Loaded {
        var name: PointName
        var summary: PointSummary
        var body: PointBody
        /// The manifest object's size.
        var size: Int64 = 0
    }

    /// Every point in the store, oldest first. Other names in the folder are ignored.
    func listPoints() throws -> [Listed] {
        try store.list(prefix: namespace.points).compactMap { o -> Listed? in
            guard o.key.hasPrefix(namespace.root), let n = PointName.parse(String(o.key.dropFirst(namespace.root.count))) else { return nil }
            return Listed(name: n, size: o.size)
        }.sorted { $0.name < $1.name }
    }

    /// Packs in the store: relative name -> size.
    func listPacks() throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for o in try store.list(prefix: namespace.packs) where o.key.hasPrefix(namespace.root) {
            out[String(o.key.dropFirst(namespace.root.count))] = o.size
        }
        return out
    }

    /// How points are named in messages.
    static func display(_ p: PointName) -> String { String(p.relative.dropFirst("points/".count)) }
    static func display(_ ps: [PointName]) -> String { ps.map(display).joined(separator: ", ") }

    /// The points that cannot be restored without `p`: itself and every later point up to the
    /// next base (chains are linear: each point's parent is the newest point before it).
    static func dependents(of p: PointName, in listing: [Listed]) -> [PointName] {
        var out: [PointName] = []
        for l in listing where l.name >= p {
            if l.name != p && l.name.kind == .base { break }
            out.append(l.name)
        }
        return out.isEmpty ? [p] : out
    }

    /// Reads and opens one manifest, its entries kept in `body.entries`.
    func read(_ p: PointName, size: Int64, listing: [Listed]) throws -> Loaded {
        var entries: [PageEntry] = []
        var loaded = try read(p, size: size, listing: listing, prepare: { _, count, _ in entries.reserveCapacity(count) }) { entries.append($0) }
        loaded.body.entries = entries
        return loaded
    }

    /// Reads and opens one manifest, handing its packs and then its entries to `prepare` and
    /// `visit` as they are decoded (the returned body has no entries): the manifest is decrypted
    /// where it was downloaded, and no second copy of a large one is made.
    func read(_ p: PointName, size: Int64, listing: [Listed], prepare: (PointSummary, Int, [PackRef]) throws(FormatError) -> Void,
              visit: (PageEntry) -> Void) throws -> Loaded {
        let key = namespace.key(p.relative)
        func damaged(_ why: String) -> LajuError {
            LajuError(.integrity, "point manifest \(Display.safe(key)) is damaged: \(why); points that depend on it: \(Self.display(Self.dependents(of: p, in: listing)))",
                      hint: "restore an earlier point (`laju-backup list --points`); the next `backup --incremental` starts a new base")
        }
        guard size >= Int64(ManifestSeal.summaryEnd + 28), size <= ManifestSeal.maxObjectSize else {
            throw damaged("its size \(size) is impossible")
        }
        var bytes: [UInt8]
        do {
            bytes = try store.getRange(key: key, offset: 0, length: size)
        } catch let e as LajuError where e.isNotFound {
            throw missing(key, Self.dependents(of: p, in: listing), what: "point manifest")
        }
        do {
            let (summary, body) = try ManifestSeal.open(&bytes, point: p, key: keys.point, prepare: prepare, visit: visit)
            return Loaded(name: p, summary: summary, body: body, size: size)
        } catch {
            throw damaged(error.message)
        }
    }

    func missing(_ key: String, _ dependents: [PointName], what: String) -> LajuError {
        missing(key, dependents: Self.display(dependents), what: what)
    }

    func missing(_ key: String, dependents: String, what: String) -> LajuError {
        LajuError(.storage, "\(what) \(Display.safe(key)) is missing from \(store.displayName); points that depend on it: \(dependents)",
                  hint: "restore an earlier point (`laju-backup list --points`); the next `backup --incremental` starts a new base",
                  isNotFound: true)
    }

    /// The page map of `target`, read from its chain newest first, one manifest at a time (a
    /// restore holds the map and one manifest, never the whole chain), every link checked against
    /// its child: same page size, earlier time, depth one less, and the digest the child recorded
    /// for its parent. Also returns the links, newest first, without their entries.
    func pageMap(to target: PointName, listing: [Listed]) throws -> (PageMap, [Loaded]) {
        let sizes = Dictionary(listing.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        var links: [Loaded] = []
        var builder: PageMap.Builder?
        var current = target
        while true {
            guard let size = sizes[current] else {
                throw missing(namespace.key(current.relative), Self.dependents(of: current, in: listing), what: "point manifest")
            }
            // The first link read is the target: its summary sizes the map before its entries come.
            let loaded = try read(current, size: size, listing: listing, prepare: { summary, _, packs throws(FormatError) in
                if builder == nil { builder = PageMap.Builder(pageCount: summary.pageCount) }
                try builder!.begin(packs: packs)
            }, visit: { builder!.fill($0) })
            if let child = links.last {
                let problem: String? =
                    loaded.summary.pageSize != child.summary.pageSize ? "its page size differs from its child's" :
                    loaded.summary.time >= child.summary.time ? "it is not older than its child" :
                    loaded.summary.depth + 1 != child.summary.depth ? "its depth does not precede its child's" :
                    loaded.summary.digest != child.body.parentDigest ? "its file digest is not the one its child recorded" : nil
                if let problem {
                    throw LajuError(.integrity, "point manifest \(Display.safe(namespace.key(current.relative))) does not fit its chain: \(problem); points that depend on it: \(Self.display(Self.dependents(of: current, in: listing)))")
                }
            }
            links.append(loaded)
            if loaded.summary.kind == .base { break }
            guard links.count <= Self.maxDepth, let parent = loaded.body.parent.flatMap(PointName.parse) else {
                throw LajuError(.integrity, "point manifest \(Display.safe(namespace.key(current.relative))) has an unusable parent link")
            }
            current = parent
        }
        do {
            return (try builder!.finish(links: links), links)
        } catch {
            throw LajuError(.integrity, "the chain of point \(Self.display(target)) does not add up: \(error.message)",
                            hint: "restore an earlier point (`laju-backup list --points`)")
        }
    }
}

/// The page map of a point: for every page, its block id and where the block is.
struct PageMap {
    var point: PointName
    var summary: PointSummary
    var ids: [BlockID] = []
    /// `length == 0`: no block yet (only while a chain is applied).
    var locations: [BlockLocation] = []
    var packs: [PackRef] = []
    var packIndex: [String: UInt32] = [:]
    /// The manifests of the chain (relative name and size), base first: a cached map is used
    /// only while every one of them is still listed with that size.
    var manifests: [PackRef] = []

    var pageSize: Int { summary.pageSize }
    var pageCount: Int { ids.count }

    init(point: PointName, summary: PointSummary, ids: [BlockID], locations: [BlockLocation], packs: [PackRef], manifests: [PackRef]) {
        self.manifests = manifests
        self.point = point
        self.summary = summary
        self.ids = ids
        self.locations = locations
        self.packs = packs
        for (i, p) in packs.enumerated() { packIndex[p.name] = UInt32(i) }
    }

    /// Adds the chain up (base first, entries included): the same rule as `PointChain.pageMap`.
    init(chain: [PointChain.Loaded]) throws(FormatError) {
        guard let last = chain.last else { throw FormatError("the chain is empty") }
        var b = Builder(pageCount: last.summary.pageCount)
        for link in chain.reversed() {
            try b.begin(packs: link.body.packs)
            for e in link.body.entries { b.fill(e) }
        }
        self = try b.finish(links: chain.reversed())
    }

    /// Builds a point's page map from its chain read newest link first: each page takes the
    /// block of the newest link that lists it. That is right because a point lists every page
    /// past its parent's end, so a page that a shrink cut off is listed again by the point that
    /// brings it back. Only the map is held, never the chain's entries.
    struct Builder {
        private var ids: [BlockID]
        private var locations: [BlockLocation]
        private var packs: [PackRef] = []
        private var packIndex: [String: UInt32] = [:]
        /// The current link's pack indices, in the map's pack table.
        private var local: [UInt32] = []
        private var filled = 0

        init(pageCount: Int) {
            ids = [BlockID](repeating: .zero, count: pageCount)
            // Length 0: no block yet (a stored block is never that short).
            locations = [BlockLocation](repeating: BlockLocation(pack: 0, offset: 0, length: 0), count: pageCount)
        }

        /// The next (older) link's packs; one pack recorded with two sizes is refused.
        mutating func begin(packs linkPacks: [PackRef]) throws(FormatError) {
            local = []
            for p in linkPacks {
                if let i = packIndex[p.name] {
                    guard packs[Int(i)].size == p.size else { throw FormatError("pack \(p.name) is recorded with two sizes") }
                    local.append(i)
                } else {
                    packs.append(p)
                    packIndex[p.name] = UInt32(packs.count - 1)
                    local.append(UInt32(packs.count - 1))
                }
            }
        }

        /// An entry of the current link: used unless a newer link gave the page, or the page is
        /// past the end of the point being built.
        mutating func fill(_ e: PageEntry) {
            let i = Int(e.page)
            guard i < ids.count, locations[i].length == 0 else { return }
            ids[i] = e.id
            locations[i] = BlockLocation(pack: local[Int(e.location.pack)], offset: e.location.offset, length: e.location.length)
            filled += 1
        }

        /// The map, once every page has a block; `links` newest first, the last a base.
        func finish(links: [PointChain.Loaded]) throws(FormatError) -> PageMap {
            guard let newest = links.first, links.last?.summary.kind == .base else {
                throw FormatError("the chain does not start with a base point")
            }
            if filled < ids.count, let hole = locations.firstIndex(where: { $0.length == 0 }) {
                throw FormatError("page \(hole) of \(PointChain.display(newest.name)) has no block")
            }
            return PageMap(point: newest.name, summary: newest.summary, ids: ids, locations: locations, packs: packs,
                           manifests: links.reversed().map { PackRef(name: $0.name.relative, size: $0.size) })
        }
    }

    /// The global index of a pack, added when new; one pack with two sizes is refused.
    mutating func intern(_ p: PackRef) throws(FormatError) -> UInt32 {
        if let i = packIndex[p.name] {
            guard packs[Int(i)].size == p.size else { throw FormatError("pack \(p.name) is recorded with two sizes") }
            return i
        }
        packs.append(p)
        packIndex[p.name] = UInt32(packs.count - 1)
        return UInt32(packs.count - 1)
    }
}
