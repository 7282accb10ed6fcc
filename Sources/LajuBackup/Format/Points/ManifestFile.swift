/// Manifests as files, sealed and opened in bounded memory whatever their size (a base point
/// lists every page: 36 bytes a page, 23 MiB for a 2.5 GiB database). The object format is
/// `ManifestSeal`'s (docs/format-incremental.md, 4.2); only the way through it differs.

/// Writes a manifest object: the sealed summary, then the body encrypted 1 MiB at a time as the
/// caller produces it, then the body's tag.
final class ManifestWriter {
    private let file: FileWriter
    private let gcm: GCMStream
    private var plain: [UInt8] = []
    private let bodyLength: Int
    private var produced = 0

    init(path: String, name: String, summary: PointSummary, keys: PointKeys, bodyLength: Int) throws {
        let key = keys.point
        let s = summary.encoded()
        let n1 = try secureRandomBytes(12), n2 = try secureRandomBytes(12)
        let nameBytes = Array(name.utf8)
        let (c1, t1) = try AESGCM.seal(key: key, iv: n1, aad: ManifestSeal.summaryLabel + nameBytes, plaintext: s)
        file = try FileWriter(path: path)
        try file.append(keys.manifestMagic + n1 + c1 + t1 + n2)
        gcm = try GCMStream(sealing: true, key: key, iv: n2, aad: ManifestSeal.bodyLabel + nameBytes + s)
        self.bodyLength = bodyLength
        plain.reserveCapacity(1 << 20)
    }

    /// Appends body bytes through `write`, which adds them to the buffer it is given.
    func append(_ write: (inout [UInt8]) -> Void) throws {
        let before = plain.count
        write(&plain)
        produced += plain.count - before
        if plain.count >= 1 << 20 { try flush() }
    }

    private func flush() throws {
        try plain.withUnsafeMutableBytes { try gcm.update($0) }
        try file.append(plain)
        plain.removeAll(keepingCapacity: true)
    }

    /// The object's size and MD5.
    func finish() throws -> (size: Int64, md5: [UInt8]) {
        precondition(produced == bodyLength, "the manifest body is not the length announced")
        try flush()
        try file.append(try gcm.finish())
        return try file.finish()
    }
}

/// A manifest object downloaded to a file. `open` checks the summary against the name and
/// authenticates the whole body before anything of it is used, keeping only its header (parent
/// link and packs); `forEachEntry` then decrypts it again, entry by entry, and authenticates it
/// again at its end (the file is read twice, never held).
struct ManifestFile {
    let path: String
    let point: PointName
    let summary: PointSummary
    /// Parent link and packs; `entries` is empty.
    let header: PointBody
    let entryCount: Int
    /// The object's size.
    let size: Int64
    private let key: [UInt8]

    static func open(path: String, point: PointName, keys: PointKeys) throws -> ManifestFile {
        let key = keys.point
        let reader = try FileReader(path: path)
        guard reader.size >= Int64(ManifestSeal.summaryEnd + 28) else {
            throw FormatError("its size \(reader.size) is impossible")
        }
        var head = [UInt8](repeating: 0, count: ManifestSeal.summaryEnd + 12)
        guard try head.withUnsafeMutableBytes({ try reader.read(into: $0) }) == head.count else {
            throw FormatError("it is truncated")
        }
        let summary = try ManifestSeal.openSummary(
            Array(head.prefix(ManifestSeal.summaryEnd)), name: point.relative, keys: keys)
        guard summary.kind == point.kind, summary.time == point.time else {
            throw FormatError("its summary does not match its name")
        }
        guard reader.size <= ManifestSeal.maxObjectSize(for: summary) else {
            throw FormatError("its size \(reader.size) is impossible for \(summary.pageCount) pages")
        }
        var partial = ManifestFile(
            path: path, point: point, summary: summary,
            header: PointBody(parent: nil, parentDigest: [], packs: [], entries: []),
            entryCount: 0, size: reader.size, key: key)
        // First pass: the tag decides before any decoding error is reported (a damaged object
        // says so, whatever its decrypted bytes would have looked like).
        var stream = try partial.stream()
        try stream.drain()
        var count = 0
        stream = try partial.stream()
        let header = try PointBody.decode(&stream, summary: summary, prepare: { _, n, _ in count = n }, visit: { _ in })
        try stream.drain()
        partial = ManifestFile(
            path: path, point: point, summary: summary, header: header, entryCount: count, size: reader.size, key: key)
        return partial
    }

    private init(
        path: String, point: PointName, summary: PointSummary, header: PointBody, entryCount: Int, size: Int64,
        key: [UInt8]
    ) {
        self.path = path
        self.size = size
        self.point = point
        self.summary = summary
        self.header = header
        self.entryCount = entryCount
        self.key = key
    }

    /// Every entry, checked and in page order; throws (after some entries were visited) only when
    /// the file changed since `open`: the caller drops what it built.
    func forEachEntry(_ visit: (PageEntry) -> Void) throws {
        var stream = try stream()
        _ = try PointBody.decode(&stream, summary: summary, visit: visit)
        try stream.drain()
    }

    private func stream() throws -> BodyStream {
        let reader = try FileReader(path: path)
        guard reader.size >= Int64(ManifestSeal.summaryEnd + 28) else { throw FormatError("it is truncated") }
        var iv = [UInt8](repeating: 0, count: 12)
        reader.seek(to: Int64(ManifestSeal.summaryEnd))
        _ = try iv.withUnsafeMutableBytes { try reader.read(into: $0) }
        var tag = [UInt8](repeating: 0, count: 16)
        reader.seek(to: reader.size - 16)
        _ = try tag.withUnsafeMutableBytes { try reader.read(into: $0) }
        reader.seek(to: Int64(ManifestSeal.summaryEnd + 12))
        let gcm = try GCMStream(
            sealing: false, key: key, iv: iv,
            aad: ManifestSeal.bodyLabel + Array(point.relative.utf8) + summary.encoded())
        return BodyStream(
            reader: reader, gcm: gcm, tag: tag, length: Int(reader.size) - ManifestSeal.summaryEnd - 12 - 16)
    }

    /// The body, decrypted as it is read; `drain` reads what is left and checks the tag.
    struct BodyStream: BodyBytes {
        let reader: FileReader
        let gcm: GCMStream
        let tag: [UInt8]
        let length: Int
        private var buffer: [UInt8] = []
        private var at = 0
        /// Body bytes decrypted so far (in `buffer` or consumed).
        private var decrypted = 0

        init(reader: FileReader, gcm: GCMStream, tag: [UInt8], length: Int) {
            self.reader = reader
            self.gcm = gcm
            self.tag = tag
            self.length = length
        }

        var remaining: Int { length - decrypted + (buffer.count - at) }

        /// Makes `n` bytes available at `at`.
        private mutating func need(_ n: Int) throws(FormatError) {
            guard n <= remaining else { throw FormatError("truncated (wanted \(n) bytes, \(remaining) left)") }
            if buffer.count - at >= n { return }
            buffer.removeSubrange(0..<at)
            at = 0
            let chunk = min(max(n - buffer.count, 1 << 20), length - decrypted)
            let old = buffer.count
            buffer += repeatElement(0, count: chunk)
            let ok = buffer.withUnsafeMutableBytes { all -> Bool in
                let part = UnsafeMutableRawBufferPointer(rebasing: all[old...])
                guard (try? reader.read(into: part)) == chunk else { return false }
                return (try? gcm.update(part)) != nil
            }
            guard ok else { throw FormatError("it cannot be read to its end") }
            decrypted += chunk
        }

        mutating func bytes(_ n: Int) throws(FormatError) -> [UInt8] {
            guard n >= 0 else { throw FormatError("negative length") }
            try need(n)
            defer { at += n }
            return Array(buffer[at..<(at + n)])
        }
        mutating func u8() throws(FormatError) -> UInt8 { try int(1, UInt8.self) }
        mutating func u16() throws(FormatError) -> UInt16 { try int(2, UInt16.self) }
        mutating func u32() throws(FormatError) -> UInt32 { try int(4, UInt32.self) }
        mutating func u64() throws(FormatError) -> UInt64 { try int(8, UInt64.self) }

        private mutating func int<T: FixedWidthInteger>(_ n: Int, _: T.Type) throws(FormatError) -> T {
            try need(n)
            var v: T = 0
            for i in at..<(at + n) { v = v << 8 | T(buffer[i]) }
            at += n
            return v
        }

        /// Decrypts what is left and checks the tag: nothing read from this stream counts before.
        mutating func drain() throws(FormatError) {
            while decrypted < length {
                at = buffer.count
                try need(min(1 << 20, length - decrypted))
            }
            at = buffer.count
            guard (try? gcm.finish(tag: tag)) != nil else {
                throw FormatError("its body does not authenticate (damaged or truncated)")
            }
        }
    }
}

/// Page entries in a private temp file, in the manifest's 36-byte encoding (4.2) and unchecked
/// (this run wrote them): a backup's changed pages, a restore's plan of one link.
enum EntryFile {
    /// Reads `count` entries back, handing them over `chunk` at a time.
    static func read(_ path: String, count: Int, chunk: Int, _ body: ([PageEntry]) throws -> Void) throws {
        let file = try FileReader(path: path)
        var buffer = [UInt8](repeating: 0, count: min(chunk, max(count, 1)) * PointBody.entrySize)
        var left = count
        while left > 0 {
            let n = min(left, chunk)
            let got = try buffer.withUnsafeMutableBytes {
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<(n * PointBody.entrySize)]))
            }
            guard got == n * PointBody.entrySize else {
                throw LajuError(.local, "cannot read back \(path): it ends early")
            }
            var r = ByteReader(buffer, from: 0, to: got)
            var entries: [PageEntry] = []
            entries.reserveCapacity(n)
            for _ in 0..<n {
                entries.append(
                    PageEntry(
                        page: try r.u32(), id: BlockID(hi: try r.u64(), lo: try r.u64()),
                        location: BlockLocation(
                            pack: try r.u32(), offset: Int64(bitPattern: try r.u64()), length: try r.u32())))
            }
            try body(entries)
            left -= n
        }
    }
}
