/// Reads points back from the store: the listing, manifests, a point's chain down to its base
/// with every link checked, and the page map the chain adds up to. Shared by backup (the parent
/// state), restore/verify and `list --points`.
struct PointChain {
    /// Incremental points after a base, at most: a restore reads at most 64 manifests.
    static let maxDepth = 63

    let store: ObjectStore
    let namespace: PointNamespace
    let keys: PointKeys

    struct Listed { var name: PointName; var size: Int64 }

    /// Where manifests are downloaded: the run's private workspace.
    let scratch: String

    /// One opened manifest: its summary and header (parent link, packs) in memory, its entries
    /// in its file.
    struct Loaded {
        var name: PointName
        var summary: PointSummary
        var body: PointBody
        /// The manifest object's size.
        var size: Int64
        var file: ManifestFile
    }

    /// A point's summary from the first bytes of its manifest (one ranged GET), authentic and
    /// matching its name: FormatError when damaged, the store's error when missing.
    func summary(of listed: Listed) throws -> PointSummary {
        guard listed.size >= Int64(ManifestSeal.summaryEnd) else {
            throw FormatError("the object is too short (\(listed.size) bytes)")
        }
        let head = try store.getRange(
            key: namespace.key(listed.name.relative), offset: 0, length: Int64(ManifestSeal.summaryEnd))
        let s = try ManifestSeal.openSummary(head, name: listed.name.relative, keys: keys)
        guard s.kind == listed.name.kind, s.time == listed.name.time else {
            throw FormatError("its summary does not match its name")
        }
        return s
    }

    /// Every point in the store, oldest first. Other names in the folder are ignored.
    func listPoints() throws -> [Listed] {
        try store.list(prefix: namespace.points).compactMap { o -> Listed? in
            guard o.key.hasPrefix(namespace.root),
                let n = PointName.parse(String(o.key.dropFirst(namespace.root.count)))
            else { return nil }
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

    /// Downloads one manifest into `scratch` and opens it (summary and name checked, the whole
    /// body authenticated); its entries stay in the file (`file.forEachEntry`).
    func read(_ p: PointName, size: Int64, listing: [Listed]) throws -> Loaded {
        let key = namespace.key(p.relative)
        func damaged(_ why: String) -> LajuError {
            LajuError(
                .integrity,
                "point manifest \(Display.safe(key)) is damaged: \(why); points that depend on it: \(Self.display(Self.dependents(of: p, in: listing)))",
                hint:
                    "restore an earlier point (`laju-backup list --points`); the next `backup --incremental` starts a new base"
            )
        }
        guard size >= Int64(ManifestSeal.summaryEnd + 28) else { throw damaged("its size \(size) is impossible") }
        let path = "\(scratch)/\(Self.display(p)).manifest"
        unlink(path)
        do {
            // A large object is downloaded (to disk) only when its authenticated summary has
            // pages enough to need that size: a hostile listing cannot fill the disk.
            if size > ManifestSeal.smallObjectSize {
                let summary: PointSummary
                do { summary = try self.summary(of: Listed(name: p, size: size)) } catch let e as FormatError {
                    throw damaged(e.message)
                }
                guard size <= ManifestSeal.maxObjectSize(for: summary) else {
                    throw damaged("its size \(size) is impossible for \(summary.pageCount) pages")
                }
            }
            try store.get(key: key, to: path, progress: nil)
        } catch let e as LajuError where e.isNotFound {
            throw missing(key, Self.dependents(of: p, in: listing), what: "point manifest")
        }
        do {
            let file = try ManifestFile.open(path: path, point: p, keys: keys)
            guard file.size == size else { throw FormatError("it has \(file.size) bytes, the listing \(size)") }
            return Loaded(name: p, summary: file.summary, body: file.header, size: size, file: file)
        } catch let e as FormatError {
            unlink(path)
            throw damaged(e.message)
        }
    }

    /// The packs a manifest names (retention); its file is removed again.
    func packs(of p: PointName, size: Int64, listing: [Listed]) throws -> [PackRef] {
        let loaded = try read(p, size: size, listing: listing)
        unlink(loaded.file.path)
        return loaded.body.packs
    }

    func missing(_ key: String, _ dependents: [PointName], what: String) -> LajuError {
        missing(key, dependents: Self.display(dependents), what: what)
    }

    func missing(_ key: String, dependents: String, what: String) -> LajuError {
        LajuError(
            .storage,
            "\(what) \(Display.safe(key)) is missing from \(store.displayName); points that depend on it: \(dependents)",
            hint:
                "restore an earlier point (`laju-backup list --points`); the next `backup --incremental` starts a new base",
            isNotFound: true)
    }

    /// The chain of `target`, newest first down to its base, every manifest opened and every
    /// link checked against its child: same page size, earlier time, depth one less, and the
    /// digest the child recorded for its parent. Entries stay in the downloaded files.
    func links(to target: PointName, listing: [Listed]) throws -> [Loaded] {
        let sizes = Dictionary(listing.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        var links: [Loaded] = []
        var current = target
        while true {
            guard let size = sizes[current] else {
                throw missing(
                    namespace.key(current.relative), Self.dependents(of: current, in: listing), what: "point manifest")
            }
            let loaded = try read(current, size: size, listing: listing)
            if let child = links.last {
                let problem: String? =
                    loaded.summary.pageSize != child.summary.pageSize
                    ? "its page size differs from its child's"
                    : loaded.summary.time >= child.summary.time
                        ? "it is not older than its child"
                        : loaded.summary.depth + 1 != child.summary.depth
                            ? "its depth does not precede its child's"
                            : loaded.summary.digest != child.body.parentDigest
                                ? "its file digest is not the one its child recorded" : nil
                if let problem {
                    throw LajuError(
                        .integrity,
                        "point manifest \(Display.safe(namespace.key(current.relative))) does not fit its chain: \(problem); points that depend on it: \(Self.display(Self.dependents(of: current, in: listing)))"
                    )
                }
            }
            links.append(loaded)
            if loaded.summary.kind == .base { break }
            guard links.count <= Self.maxDepth, let parent = loaded.body.parent.flatMap(PointName.parse) else {
                throw LajuError(
                    .integrity,
                    "point manifest \(Display.safe(namespace.key(current.relative))) has an unusable parent link")
            }
            current = parent
        }
        return links
    }

    /// The page map of `target`, written to `path` from its chain (`PageMap.Builder`).
    func pageMap(to target: PointName, listing: [Listed], path: String) throws -> (PageMap, [Loaded]) {
        let links = try links(to: target, listing: listing)
        do {
            var builder = try PageMap.Builder(path: path, pageCount: links[0].summary.pageCount)
            for link in links {
                try builder.begin(packs: link.body.packs)
                try link.file.forEachEntry { builder.fill($0) }
                try builder.endLink()
            }
            return (
                try builder.finish(
                    point: target, summary: links[0].summary,
                    manifests: links.reversed().map { PackRef(name: $0.name.relative, size: $0.size) }), links
            )
        } catch let e as FormatError {
            throw LajuError(
                .integrity, "the chain of point \(Self.display(target)) does not add up: \(e.message)",
                hint: "restore an earlier point (`laju-backup list --points`)")
        }
    }
}

extension PointChain {
    /// The chains of the database `settings` names, for the commands that read points: its
    /// identity's (version 2) when the identity can be known (and, under a declared name, its id's,
    /// where points made before the name was declared are), then the one its path named before
    /// identities (version 1, read so that older points stay restorable).
    static func forReading(
        settings: Settings, encryptionKey: EncryptionKey, store: ObjectStore, scratch: String,
        events: JobEventSink
    ) throws -> [PointChain] {
        var identities: [Identity] = []
        if let identity = try readingIdentity(
            settings: settings, encryptionKey: encryptionKey, store: store, events: events)
        {
            identities.append(identity)
            // A database that declared its name after making points keeps them under its id.
            if identity.declaredName != nil, Snapshot.isDatabase(settings.databasePath),
                let id = try? DatabaseID.read(
                    path: settings.databasePath, busyTimeoutMilliseconds: settings.busyTimeout())
            {
                identities.append(.database(id))
            }
        }
        var chains: [PointChain] = []
        for identity in identities {
            chains.append(
                PointChain(
                    store: store, namespace: try PointNamespace(settings: settings, identity: identity),
                    keys: try PointKeys(encryptionKey, identity: identity), scratch: scratch))
        }
        chains.append(
            PointChain(
                store: store, namespace: try PointNamespace.legacy(settings: settings, encryptionKey: encryptionKey),
                keys: try PointKeys(encryptionKey, identity: nil), scratch: scratch))
        return chains
    }

    /// Whose points to read: the declared name, else the id recorded in the database. Without
    /// either (a disaster restore without a declared name) the identity of this database's newest
    /// full backup in the store; without one, points of other identities under the prefix stop
    /// the command with a list, since nothing tells whether one is this database's.
    static func readingIdentity(
        settings: Settings, encryptionKey: EncryptionKey, store: ObjectStore, events: JobEventSink
    ) throws -> Identity? {
        if let known = try settings.knownIdentity() { return known }
        let search = try StoreSearch(
            store: store, scope: try settings.scope(), encryptionKey: encryptionKey, identity: nil,
            databasePath: settings.databasePath)
        if let found = try? search.newest(events: { _ in }), !found.legacy, let identity = found.metadata.identity {
            events(
                .warning(
                    "no declared name and no database here: reading the points of \(identity.display), whose newest full backup is \(Display.safe(found.info.key))"
                ))
            return identity
        }
        let base = try settings.prefix + "incremental/v2/"
        let identities = Set(
            try store.list(prefix: base).compactMap { o -> Identity? in
                let rest = o.key.dropFirst(base.count)
                guard o.key.hasPrefix(base), let slash = rest.firstIndex(of: "/") else { return nil }
                return PointNamespace.identity(ofFolder: String(rest[..<slash]))
            })
        // Folder names prove nothing, and points do not carry the database's file name: even a
        // single identity found here may be another database's. Stop and list rather than guess.
        guard identities.isEmpty else {
            throw LajuError(
                .storage,
                "no declared name, no database and no full backup of \(try settings.scope().databaseName) say which points are this database's; \(identities.count) database(s) have points under \(Display.safe(base)): \(identities.map(\.display).sorted().joined(separator: ", "))",
                hint:
                    "set BACKUP_NAME to the name the database was backed up under, or restore its full backup first (`laju-backup restore`): the restored database knows its id"
            )
        }
        return nil
    }

    /// The first of `chains` that has points, and its listing; the first chain when none has.
    static func newestWithPoints(_ chains: [PointChain]) throws -> (chain: PointChain, listing: [Listed]) {
        for chain in chains {
            let listing = try chain.listPoints()
            if !listing.isEmpty { return (chain, listing) }
        }
        return (chains[0], [])
    }
}
