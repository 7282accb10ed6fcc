/// The newest point's page map, kept on this host so that a run need not read the chain back
/// from the store. Only a cache: it is used when its MAC verifies and it names the newest point
/// in the store (the caller also checks its packs are listed), else ignored and rebuilt.
struct StateCache {
    let directory: String
    let namespace: IncrementalNamespace
    let keys: IncrementalKeys

    static let maxSize = 128 << 20

    /// One file per namespace, named by a keyed hash (the database path stays off the disk name).
    var path: String {
        let h = hmacSHA256(key: keys.cache, data: Array(namespace.root.utf8)).prefix(16).hexString
        return "\(directory)/\(h).state"
    }

    func save(_ map: PageMap) throws {
        try LockDirectory.prepare(directory)
        var b: [UInt8] = []
        let name = Array(map.point.relative.utf8)
        b.appendBE(UInt16(name.count))
        b += name
        b.appendBE(UInt16(map.manifests.count))
        for m in map.manifests {
            let n = Array(m.name.utf8)
            b.appendBE(UInt16(n.count))
            b += n
            b.appendBE(UInt64(m.size))
        }
        b += map.summary.encoded()
        b += PointBody.encode(parent: nil, parentDigest: [], packs: map.packs, entryCount: map.pageCount,
                              entries: (0..<map.pageCount).lazy.map { i in
                                  PageEntry(page: UInt32(i), id: map.ids[i], location: map.locations[i])
                              })
        b += hmacSHA256(key: keys.cache, data: b)
        // One fixed name: runs on one database never overlap (RunLock), and a killed run's
        // leftover is replaced here by the next.
        let tmp = "\(path).tmp"
        unlink(tmp)
        CleanupRegistry.shared.add(tmp)
        defer { CleanupRegistry.shared.remove(tmp); unlink(tmp) }
        try writeFile(b, to: tmp)
        guard rename(tmp, path) == 0 else {
            throw LajuError(.local, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The cached map when it is intact and describes `newest`; nil otherwise (never an error:
    /// the store is the truth).
    func load(expecting newest: PointName) -> PageMap? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_size > 32, st.st_size <= Self.maxSize,
              let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = [UInt8](data)
        let content = Array(bytes.dropLast(32))
        guard hmacSHA256(key: keys.cache, data: content) == Array(bytes.suffix(32)) else { return nil }
        do {
            var r = ByteReader(content)
            let name = String(decoding: try r.bytes(Int(try r.u16())), as: UTF8.self)
            guard name == newest.relative else { return nil }
            var manifests: [PackRef] = []
            for _ in 0..<Int(try r.u16()) {
                let n = String(decoding: try r.bytes(Int(try r.u16())), as: UTF8.self)
                manifests.append(PackRef(name: n, size: Int64(bitPattern: try r.u64())))
            }
            guard manifests.count <= PointChain.maxDepth + 1, manifests.last?.name == name else { return nil }
            let summary = try PointSummary.decode(try r.bytes(PointSummary.size))
            var asBase = summary
            asBase.kind = .base
            asBase.depth = 0
            let body = try PointBody.decode(try r.bytes(r.remaining), summary: asBase)
            var map = PageMap(point: newest, summary: summary, ids: body.entries.map(\.id),
                              locations: body.entries.map(\.location), packs: [], manifests: manifests)
            for p in body.packs { _ = try map.intern(p) }
            return map.packs.count == body.packs.count ? map : nil
        } catch {
            return nil
        }
    }
}

extension Settings {
    /// Where incremental backups keep their cache: `<temp dir>/laju-backup-state.<uid>`, a
    /// private directory (checked like the lock directory).
    public var incrementalStateDirectory: String { "\(tempBase)/laju-backup-state.\(geteuid())" }
}
