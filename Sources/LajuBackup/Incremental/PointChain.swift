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

    /// Reads and opens one manifest.
    func read(_ p: PointName, size: Int64, listing: [Listed]) throws -> Loaded {
        let key = namespace.key(p.relative)
        func damaged(_ why: String) -> LajuError {
            LajuError(.integrity, "point manifest \(Display.safe(key)) is damaged: \(why); points that depend on it: \(Self.display(Self.dependents(of: p, in: listing)))",
                      hint: "restore an earlier point (`laju-backup list --points`); the next `backup --incremental` starts a new base")
        }
        guard size >= Int64(ManifestSeal.summaryEnd + 28), size <= ManifestSeal.maxObjectSize else {
            throw damaged("its size \(size) is impossible")
        }
        let bytes: [UInt8]
        do {
            bytes = try store.getRange(key: key, offset: 0, length: size)
        } catch let e as LajuError where e.isNotFound {
            throw missing(key, Self.dependents(of: p, in: listing), what: "point manifest")
        }
        do {
            let (summary, body) = try ManifestSeal.open(bytes, point: p, key: keys.point)
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

    /// The chain ending at `target`, base first, every link checked: same page size, earlier
    /// time, depth one less, and the digest the child recorded for its parent.
    func chain(to target: PointName, listing: [Listed]) throws -> [Loaded] {
        let sizes = Dictionary(listing.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        var out: [Loaded] = []
        var current = target
        while true {
            guard let size = sizes[current] else {
                throw missing(namespace.key(current.relative), Self.dependents(of: current, in: listing), what: "point manifest")
            }
            let loaded = try read(current, size: size, listing: listing)
            if let child = out.last {
                let problem: String? =
                    loaded.summary.pageSize != child.summary.pageSize ? "its page size differs from its child's" :
                    loaded.summary.time >= child.summary.time ? "it is not older than its child" :
                    loaded.summary.depth + 1 != child.summary.depth ? "its depth does not precede its child's" :
                    loaded.summary.digest != child.body.parentDigest ? "its file digest is not the one its child recorded" : nil
                if let problem {
                    throw LajuError(.integrity, "point manifest \(Display.safe(namespace.key(current.relative))) does not fit its chain: \(problem); points that depend on it: \(Self.display(Self.dependents(of: current, in: listing)))")
                }
            }
            out.append(loaded)
            if loaded.summary.kind == .base { break }
            guard out.count <= Self.maxDepth, let parent = loaded.body.parent.flatMap(PointName.parse) else {
                throw LajuError(.integrity, "point manifest \(Display.safe(namespace.key(current.relative))) has an unusable parent link")
            }
            current = parent
        }
        return out.reversed()
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

    /// Adds the chain up (base first).
    init(chain: [PointChain.Loaded]) throws(FormatError) {
        guard let first = chain.first, first.summary.kind == .base, let last = chain.last else {
            throw FormatError("the chain does not start with a base point")
        }
        point = last.name
        summary = last.summary
        for link in chain { try apply(link) }
    }

    mutating func apply(_ link: PointChain.Loaded) throws(FormatError) {
        let n = link.summary.pageCount
        if ids.count > n {
            ids.removeLast(ids.count - n)
            locations.removeLast(locations.count - n)
        } else if ids.count < n {
            ids.append(contentsOf: repeatElement(BlockID.zero, count: n - ids.count))
            locations.append(contentsOf: repeatElement(BlockLocation(pack: 0, offset: 0, length: 0), count: n - locations.count))
        }
        var global: [UInt32] = []
        for p in link.body.packs { global.append(try intern(p)) }
        for e in link.body.entries {
            ids[Int(e.page)] = e.id
            locations[Int(e.page)] = BlockLocation(pack: global[Int(e.location.pack)], offset: e.location.offset, length: e.location.length)
        }
        if let hole = locations.firstIndex(where: { $0.length == 0 }) {
            throw FormatError("page \(hole) of \(PointChain.display(link.name)) has no block")
        }
        point = link.name
        summary = link.summary
        manifests.append(PackRef(name: link.name.relative, size: link.size))
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
