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
        // Built in place in one buffer (36 bytes a page), the MAC appended to it.
        PointBody.encode(into: &b, parent: nil, parentDigest: [], packs: map.packs, entryCount: map.pageCount,
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
        // Read once into one buffer; MAC and decoding work on it in place (a 1 GiB database's
        // cache is 9 MiB, and copies of it would count against the run's memory bound).
        guard let bytes = readSmallFile(path, maxSize: Self.maxSize), bytes.count > 32 else { return nil }
        let end = bytes.count - 32
        let mac = bytes.withUnsafeBytes { hmacSHA256(key: keys.cache, data: UnsafeRawBufferPointer(rebasing: $0[..<end])) }
        guard mac[...] == bytes[end...] else { return nil }
        do {
            var r = ByteReader(bytes, from: 0, to: end)
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
            var ids: [BlockID] = [], locations: [BlockLocation] = []
            let body = try PointBody.decode(&r, summary: asBase, prepare: { _, count, _ in ids.reserveCapacity(count); locations.reserveCapacity(count) }) { e in
                ids.append(e.id)
                locations.append(e.location)
            }
            var map = PageMap(point: newest, summary: summary, ids: ids, locations: locations, packs: [], manifests: manifests)
            for p in body.packs { _ = try map.intern(p) }
            return map.packs.count == body.packs.count ? map : nil
        } catch {
            return nil
        }
    }
}

/// The bytes of a regular file of at most `maxSize` bytes, read into one buffer; nil when it is
/// absent, unreadable, not a regular file or larger.
func readSmallFile(_ path: String, maxSize: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
    guard fd >= 0 else { return nil }
    defer { closeDescriptor(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= off_t(maxSize) else { return nil }
    let size = Int(st.st_size)
    var out = [UInt8](repeating: 0, count: size)
    var got = 0
    while got < size {
        let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, size - got) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return nil }
        got += n
    }
    return out
}

extension Settings {
    /// Where incremental backups keep their cache: `<temp dir>/laju-backup-state.<uid>`, a
    /// private directory (checked like the lock directory).
    public var incrementalStateDirectory: String { "\(tempBase)/laju-backup-state.\(geteuid())" }
}
