/// The newest point's page map, kept on this host so that a run need not read the chain back
/// from the store. Only a cache: it is used when its MAC verifies and it names the newest point
/// in the store (the caller also checks its packs are listed), else ignored and rebuilt.
struct StateCache {
    let directory: String
    let namespace: PointNamespace
    let keys: PointKeys

    /// The file is `pageCount` map records, a trailer (the point, its chain's manifests, its
    /// summary, the packs), the trailer's length (4 bytes) and an HMAC-SHA256 of all before it.
    static let maxTrailer = 4 << 20

    /// One file per namespace, named by a keyed hash (the database path stays off the disk name).
    var path: String {
        let h = hmacSHA256(key: keys.cache, data: Array(namespace.root.utf8)).prefix(16).hexString
        return "\(directory)/\(h).state"
    }

    /// Packs a restore or a drill found damaged (a block that does not authenticate, a size that
    /// differs), one name a line: the next point must not build on them.
    var damagePath: String { String(path.dropLast(".state".count)) + ".damaged" }

    /// Notes that `packs` are damaged, so that the next `backup --incremental` starts a new base
    /// that seals their pages again instead of pointing at them. Best effort: a restore that
    /// cannot write here still reports the damage (the note only spares a run).
    func recordDamage(_ packs: Set<String>) {
        guard !packs.isEmpty,
            (try? PrivateDirectory.prepare(
                directory, what: "state directory", setting: "BACKUP_STATE_DIR", parents: true))
                != nil
        else { return }
        let all = damagedPacks().union(packs).sorted().joined(separator: "\n") + "\n"
        let temporary = damagePath + ".tmp"
        unlink(temporary)
        guard let writer = try? FileWriter(path: temporary), (try? writer.append(Array(all.utf8))) != nil,
            (try? writer.finish()) != nil
        else {
            unlink(temporary)
            return
        }
        if rename(temporary, damagePath) != 0 { unlink(temporary) }
    }

    /// The packs noted as damaged (names that are not pack names are ignored).
    func damagedPacks() -> Set<String> {
        guard let bytes = try? readRegularFile(damagePath, limit: 1 << 20).bytes else { return [] }
        return Set(
            String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init).filter(PackNames.isValid))
    }

    /// Forgets the damage once a new base no longer uses those packs.
    func clearDamage() { unlink(damagePath) }

    /// One fixed name: runs on one database never overlap (RunLock), and a killed run's leftover
    /// is replaced by the next.
    var temporaryPath: String { "\(path).tmp" }

    /// A new cache file, to which a run appends the records of its map as it scans pages; it
    /// replaces the cache at `commit`, and is removed on every other way out.
    func begin() throws -> FileWriter {
        try PrivateDirectory.prepare(directory, what: "state directory", setting: "BACKUP_STATE_DIR", parents: true)
        unlink(temporaryPath)
        CleanupRegistry.shared.add(temporaryPath)
        return try FileWriter(path: temporaryPath, mac: HMACStream(key: keys.cache))
    }

    /// Removes a cache file that will not be committed.
    func discard() {
        unlink(temporaryPath)
        CleanupRegistry.shared.remove(temporaryPath)
    }

    /// Completes the file `writer` holds the records of, and puts it in place.
    func commit(_ writer: FileWriter, point: PointName, summary: PointSummary, packs: [PackRef], manifests: [PackRef])
        throws
    {
        defer { discard() }
        var t: [UInt8] = []
        let name = Array(point.relative.utf8)
        t.appendBE(UInt16(name.count))
        t += name
        t.appendBE(UInt16(manifests.count))
        for m in manifests {
            let n = Array(m.name.utf8)
            t.appendBE(UInt16(n.count))
            t += n
            t.appendBE(UInt64(m.size))
        }
        t += summary.encoded()
        t.appendBE(UInt32(packs.count))
        for p in packs {
            let n = Array(p.name.utf8)
            t.appendBE(UInt16(n.count))
            t += n
            t.appendBE(UInt64(p.size))
        }
        t.appendBE(UInt32(t.count))
        try writer.append(t)
        try writer.flush()
        let mac = writer.mac!.finalize()
        writer.mac = nil
        try writer.append(mac)
        _ = try writer.finish()
        guard rename(temporaryPath, path) == 0 else {
            throw LajuError(.local, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The cached map when it is intact and describes `newest`; nil otherwise (never an error:
    /// the store is the truth). The MAC is checked over the whole file, read once front to back.
    func load(expecting newest: PointName) -> PageMap? {
        guard let reader = try? FileReader(path: path), reader.size > 36 else { return nil }
        let macAt = reader.size - 32
        let mac = HMACStream(key: keys.cache)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var stored = [UInt8](repeating: 0, count: 36)
        while reader.position < macAt {
            let want = Int(min(Int64(chunk.count), macAt - reader.position))
            guard
                let got = try? chunk.withUnsafeMutableBytes({
                    try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<want]))
                }),
                got == want
            else { return nil }
            mac.update(chunk[..<want])
        }
        reader.seek(to: macAt - 4)
        guard (try? stored.withUnsafeMutableBytes({ try reader.read(into: $0) })) == 36,
            mac.finalize()[...] == stored[4...]
        else { return nil }
        let trailerLength = Int64(stored[0]) << 24 | Int64(stored[1]) << 16 | Int64(stored[2]) << 8 | Int64(stored[3])
        guard trailerLength <= Int64(Self.maxTrailer), trailerLength <= macAt - 4 else { return nil }
        var t = [UInt8](repeating: 0, count: Int(trailerLength))
        reader.seek(to: macAt - 4 - trailerLength)
        guard (try? t.withUnsafeMutableBytes({ try reader.read(into: $0) })) == t.count else { return nil }
        do {
            var r = ByteReader(t)
            let name = String(decoding: try r.bytes(Int(try r.u16())), as: UTF8.self)
            guard name == newest.relative else { return nil }
            var manifests: [PackRef] = []
            for _ in 0..<Int(try r.u16()) {
                let n = String(decoding: try r.bytes(Int(try r.u16())), as: UTF8.self)
                manifests.append(PackRef(name: n, size: Int64(bitPattern: try r.u64())))
            }
            guard manifests.count <= PointChain.maxDepth + 1, manifests.last?.name == name else { return nil }
            let summary = try PointSummary.decode(try r.bytes(PointSummary.size))
            var packs: [PackRef] = []
            let packCount = Int(try r.u32())
            guard packCount <= 65535 else { return nil }
            for _ in 0..<packCount {
                let n = String(decoding: try r.bytes(Int(try r.u16())), as: UTF8.self)
                guard PackNames.isValid(n) else { return nil }
                packs.append(PackRef(name: n, size: Int64(bitPattern: try r.u64())))
            }
            try r.end()
            guard Set(packs.map(\.name)).count == packs.count,
                Int64(summary.pageCount) * Int64(PageMap.recordSize) == macAt - 4 - trailerLength
            else { return nil }
            return PageMap(point: newest, summary: summary, path: path, packs: packs, manifests: manifests)
        } catch {
            return nil
        }
    }
}

extension Settings {
    /// Where incremental backups keep their cache: `<temp dir>/laju-backup-state.<uid>`, a
    /// private directory (checked like the lock directory).
    /// Where the point cache lives: `BACKUP_STATE_DIR` (a private subdirectory of it when others
    /// may write there); else `/var/cache/laju-backup` for root, `$XDG_CACHE_HOME/laju-backup`
    /// (`~/.cache/laju-backup`) for other users. Never a world-writable folder, where any local
    /// user could take the name first.
    public func pointStateDirectory() throws -> String {
        if let d = environment["BACKUP_STATE_DIR"] {
            guard d.hasPrefix("/") else {
                throw LajuError(.usage, "BACKUP_STATE_DIR=\(Display.quoted(d)) is not an absolute path")
            }
            return PrivateDirectory.within(d, name: "laju-backup-state")
        }
        if geteuid() == 0 { return "/var/cache/laju-backup" }
        if let c = environment["XDG_CACHE_HOME"], c.hasPrefix("/") { return c + "/laju-backup" }
        if let home = environment["HOME"], home.hasPrefix("/") { return home + "/.cache/laju-backup" }
        return PrivateDirectory.within(tempBase, name: "laju-backup-state")
    }
}
