/// A manifest object: magic, sealed summary, sealed body, both bound to the point's name.
enum ManifestSeal {
    static let summaryEnd = 8 + 12 + PointSummary.size + 16  // 108
    /// Manifests up to this size are downloaded at once; a larger one only after its summary
    /// (a ranged GET) shows that its point has pages enough to need it (`maxObjectSize(for:)`).
    static let smallObjectSize: Int64 = 1 << 20

    /// The largest manifest a point of this summary can have: every page listed, the longest
    /// parent name, the most packs a body may name.
    static func maxObjectSize(for summary: PointSummary) -> Int64 {
        objectSize(bodyLength: 2 + PointName.relativeLength + 32 + 4 + 65535 * (2 + PackNames.nameLength + 8) + 4)
            + Int64(summary.pageCount) * Int64(PointBody.entrySize)
    }
    static let summaryLabel = Array("laju-backup incremental point summary v1\0".utf8)
    static let bodyLabel = Array("laju-backup incremental point body v1\0".utf8)

    static func seal(name: String, summary: PointSummary, body: [UInt8], keys: PointKeys) throws -> [UInt8] {
        try seal(name: name, summary: summary, keys: keys, bodyLength: body.count) { $0 += body }
    }

    /// Seals a manifest whose body `writeBody` appends (exactly `bodyLength` bytes) to the object
    /// being built; the body is then encrypted where it lies (GCM allows it), so the object is
    /// the only copy: a base point of a 1 GiB database has a 9 MiB body.
    static func seal(
        name: String, summary: PointSummary, keys: PointKeys, bodyLength: Int,
        writeBody: (inout [UInt8]) -> Void
    ) throws -> [UInt8] {
        let key = keys.point
        let s = summary.encoded()
        let n1 = try secureRandomBytes(12), n2 = try secureRandomBytes(12)
        let nameBytes = Array(name.utf8)
        let (c1, t1) = try AESGCM.seal(key: key, iv: n1, aad: summaryLabel + nameBytes, plaintext: s)
        var out: [UInt8] = []
        out.reserveCapacity(Int(objectSize(bodyLength: bodyLength)))
        out += keys.manifestMagic + n1 + c1 + t1 + n2
        let start = out.count
        writeBody(&out)
        precondition(out.count == start + bodyLength, "the manifest body is not the length announced")
        let aad = bodyLabel + nameBytes + s
        let t2 = try out.withUnsafeMutableBytes { all in
            try AESGCM.sealInPlace(
                key: key, iv: n2, aad: aad, buffer: UnsafeMutableRawBufferPointer(rebasing: all[start...]))
        }
        out += t2
        return out
    }

    static func objectSize(bodyLength: Int) -> Int64 { Int64(summaryEnd + 12 + bodyLength + 16) }

    /// Opens the summary from the first 108 bytes (or more) of a manifest object.
    static func openSummary(_ bytes: [UInt8], name: String, keys: PointKeys) throws(FormatError) -> PointSummary {
        guard bytes.count >= summaryEnd, Array(bytes[0..<8]) == keys.manifestMagic else {
            throw FormatError("not a point manifest (bad magic or too short)")
        }
        guard
            let s = try? AESGCM.open(
                key: keys.point, iv: Array(bytes[8..<20]), aad: summaryLabel + Array(name.utf8),
                ciphertext: Array(bytes[20..<(20 + PointSummary.size)]),
                tag: Array(bytes[(20 + PointSummary.size)..<summaryEnd]))
        else {
            throw FormatError(
                "its summary does not authenticate (damaged, renamed, made with another key, or another database's)")
        }
        return try PointSummary.decode(s)
    }

    /// Opens and checks a whole manifest: summary, body, and that the name agrees with both.
    static func open(_ bytes: [UInt8], point: PointName, keys: PointKeys) throws(FormatError) -> (
        PointSummary, PointBody
    ) {
        var copy = bytes
        var entries: [PageEntry] = []
        var (summary, body) = try open(
            &copy, point: point, keys: keys, prepare: { _, count, _ in entries.reserveCapacity(count) }
        ) { entries.append($0) }
        body.entries = entries
        return (summary, body)
    }

    /// Opens a whole manifest with its body decrypted in place in `bytes` (which then holds
    /// plaintext, or garbage after a failure: the caller drops it), handing each entry to `visit`.
    static func open(
        _ bytes: inout [UInt8], point: PointName, keys: PointKeys,
        prepare: (PointSummary, Int, [PackRef]) throws(FormatError) -> Void = { _, _, _ in },
        visit: (PageEntry) -> Void
    ) throws(FormatError) -> (PointSummary, PointBody) {
        let name = point.relative
        let summary = try openSummary(bytes, name: name, keys: keys)
        guard summary.kind == point.kind, summary.time == point.time else {
            throw FormatError("its summary does not match its name")
        }
        guard bytes.count >= summaryEnd + 28 else { throw FormatError("it is truncated") }
        let n = Array(bytes[summaryEnd..<(summaryEnd + 12)])
        let tag = Array(bytes[(bytes.count - 16)...])
        let start = summaryEnd + 12, end = bytes.count - 16
        let aad = bodyLabel + Array(name.utf8) + summary.encoded()
        let authentic = bytes.withUnsafeMutableBytes { all in
            (try? AESGCM.openInPlace(
                key: keys.point, iv: n, aad: aad, buffer: UnsafeMutableRawBufferPointer(rebasing: all[start..<end]),
                tag: tag))
                != nil
        }
        guard authentic else { throw FormatError("its body does not authenticate (damaged or truncated)") }
        var r = ByteReader(bytes, from: start, to: end)
        return (summary, try PointBody.decode(&r, summary: summary, prepare: prepare, visit: visit))
    }
}
