/// Point manifests (docs/format-incremental.md, 4.2): names, summary and body (sealed by
/// `ManifestSeal`, read with `ByteReader`).
/// Everything read from the store is hostile: every count, length and offset is bounded before
/// anything is allocated or indexed.

/// Base (every page) or incremental (the pages that changed since the parent).
public enum PointKind: String, Sendable, Codable {
    case base
    case incremental

    var nameSuffix: String { self == .base ? "base" : "incr" }
    var code: UInt8 { self == .base ? 0 : 1 }
}

/// `points/<YYYYMMDDTHHMMSS.mmmZ>-<8 hex>.<base|incr>`: time and kind readable from a listing.
public struct PointName: Sendable, Hashable, Comparable {
    /// Snapshot time, milliseconds since the epoch (UTC).
    public let time: Int64
    public let nonce: String
    public let kind: PointKind

    /// "points/" + 20-byte stamp + "-" + 8 hex + "." + "base" | "incr".
    static let relativeLength = 7 + 20 + 1 + 8 + 1 + 4

    public var relative: String { "points/\(Self.stamp(time))-\(nonce).\(kind.nameSuffix)" }

    init(time: Int64, nonce: String, kind: PointKind) {
        self.time = time
        self.nonce = nonce
        self.kind = kind
    }

    static func fresh(time: Int64, kind: PointKind) throws -> PointName {
        PointName(time: time, nonce: try secureRandomBytes(4).hexString, kind: kind)
    }

    /// Parses a relative name; nil for anything else (other files in the folder are ignored).
    public static func parse(_ relative: String) -> PointName? {
        let u = Array(relative.utf8)
        guard u.count == relativeLength, relative.hasPrefix("points/") else { return nil }
        guard let time = parseStamp(Array(u[7..<27])), u[27] == UInt8(ascii: "-"), u[36] == UInt8(ascii: ".") else {
            return nil
        }
        let nonce = u[28..<36]
        guard
            nonce.allSatisfy({
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            })
        else { return nil }
        let kind: PointKind
        switch String(decoding: u[37...], as: UTF8.self) {
        case "base": kind = .base
        case "incr": kind = .incremental
        default: return nil
        }
        return PointName(time: time, nonce: String(decoding: nonce, as: UTF8.self), kind: kind)
    }

    public static func < (a: PointName, b: PointName) -> Bool { (a.time, a.nonce) < (b.time, b.nonce) }

    /// `YYYYMMDDTHHMMSS.mmmZ`.
    static func stamp(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        func p(_ v: Int32, _ w: Int) -> String { LocalTime.pad(Int(v), w) }
        return
            "\(p(tm.tm_year + 1900, 4))\(p(tm.tm_mon + 1, 2))\(p(tm.tm_mday, 2))T\(p(tm.tm_hour, 2))\(p(tm.tm_min, 2))\(p(tm.tm_sec, 2)).\(LocalTime.pad(Int(ms % 1000), 3))Z"
    }

    /// Milliseconds of a `YYYYMMDDTHHMMSS.mmmZ` stamp; nil unless it is exactly what `stamp`
    /// writes for that time (so out-of-range fields are refused by the round trip).
    static func parseStamp(_ b: [UInt8]) -> Int64? {
        guard b.count == 20, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "."), b[19] == UInt8(ascii: "Z") else {
            return nil
        }
        func num(_ r: Range<Int>) -> Int32? {
            var v: Int32 = 0
            for i in r {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) else { return nil }
                v = v * 10 + Int32(b[i] - UInt8(ascii: "0"))
            }
            return v
        }
        guard let y = num(0..<4), let mo = num(4..<6), let d = num(6..<8), let h = num(9..<11),
            let mi = num(11..<13), let s = num(13..<15), let ms = num(16..<19), y >= 1970
        else { return nil }
        var tm = tm()
        tm.tm_year = y - 1900
        tm.tm_mon = mo - 1
        tm.tm_mday = d
        tm.tm_hour = h
        tm.tm_min = mi
        tm.tm_sec = s
        let t = timegm(&tm)
        guard t >= 0 else { return nil }
        let value = Int64(t) * 1000 + Int64(ms)
        return stamp(value) == String(decoding: b, as: UTF8.self) ? value : nil
    }
}

/// The fixed 72-byte summary at the start of a manifest: enough for `list --points` (one ranged
/// GET of 108 bytes) and for checking a chain link.
public struct PointSummary: Sendable, Equatable {
    public static let size = 72
    public var kind: PointKind
    /// 0 none, 1 quick_check, 2 integrity_check passed on the snapshot.
    public var check: UInt8
    public var pageSize: Int
    public var pageCount: Int
    public var time: Int64
    public var uploadedBytes: Int64
    public var uploadedBlocks: Int
    public var depth: Int
    public var digest: [UInt8]

    public var databaseBytes: Int64 { Int64(pageSize) * Int64(pageCount) }

    func encoded() -> [UInt8] {
        var b: [UInt8] = [1, kind.code, check, 0]
        b.appendBE(UInt32(pageSize))
        b.appendBE(UInt64(pageCount))
        b.appendBE(UInt64(bitPattern: time))
        b.appendBE(UInt64(bitPattern: uploadedBytes))
        b.appendBE(UInt32(uploadedBlocks))
        b.appendBE(UInt32(depth))
        b += digest
        precondition(b.count == Self.size)
        return b
    }

    static func decode(_ bytes: [UInt8]) throws(FormatError) -> PointSummary {
        var r = ByteReader(bytes)
        guard try r.u8() == 1 else { throw FormatError("unknown manifest version \(bytes[0])") }
        let kind: PointKind
        switch try r.u8() {
        case 0: kind = .base
        case 1: kind = .incremental
        case let k: throw FormatError("unknown point kind \(k)")
        }
        let check = try r.u8()
        guard check <= 2 else { throw FormatError("unknown check \(check)") }
        // Reserved: a reader that ignored it would accept two encodings of one summary.
        guard try r.u8() == 0 else { throw FormatError("the reserved byte is not 0") }
        let pageSize = Int(try r.u32())
        guard (512...65536).contains(pageSize), pageSize & (pageSize - 1) == 0 else {
            throw FormatError("impossible page size \(pageSize)")
        }
        let pageCount = try r.u64()
        // SQLite's own limit is 2^32 - 2 pages.
        guard pageCount >= 1, pageCount <= UInt64(UInt32.max) else {
            throw FormatError("impossible page count \(pageCount)")
        }
        let time = Int64(bitPattern: try r.u64())
        let uploaded = Int64(bitPattern: try r.u64())
        let blocks = Int(try r.u32())
        let depth = Int(try r.u32())
        guard depth <= PointChain.maxDepth, (depth == 0) == (kind == .base) else {
            throw FormatError("impossible chain depth \(depth) for a \(kind.rawValue) point")
        }
        let digest = try r.bytes(32)
        try r.end()
        return PointSummary(
            kind: kind, check: check, pageSize: pageSize, pageCount: Int(pageCount), time: time,
            uploadedBytes: uploaded, uploadedBlocks: blocks, depth: depth, digest: digest)
    }
}

/// A pack as manifests name it: relative name (`packs/<hex>.pack`) and its size.
struct PackRef: Sendable, Equatable, Hashable {
    var name: String
    var size: Int64
}

/// Where a block is: pack index (in the manifest's, or the page map's, pack table), offset, length.
/// The offset is declared first so that the struct packs into 16 bytes (a 1 GiB database of
/// 4 KiB pages holds 2^18 of them, twice, while a backup runs).
struct BlockLocation: Sendable, Equatable {
    var offset: Int64
    var pack: UInt32
    var length: UInt32

    init(pack: UInt32, offset: Int64, length: UInt32) {
        self.offset = offset
        self.pack = pack
        self.length = length
    }
}

/// One page of a manifest: the page index and the block holding it.
struct PageEntry: Sendable, Equatable {
    var page: UInt32
    var id: BlockID
    var location: BlockLocation
}

/// The body of a manifest: its parent link, the packs its entries use, and the entries.
struct PointBody: Sendable, Equatable {
    var parent: String?
    var parentDigest: [UInt8]
    var packs: [PackRef]
    var entries: [PageEntry]

    static let entrySize = 36

    /// Encodes `entries` given as a sequence, so a base needs no second copy of its page map.
    static func encode<S: Sequence>(
        parent: String?, parentDigest: [UInt8], packs: [PackRef], entryCount: Int,
        entries: S
    ) -> [UInt8] where S.Element == PageEntry {
        var b: [UInt8] = []
        encode(
            into: &b, parent: parent, parentDigest: parentDigest, packs: packs, entryCount: entryCount, entries: entries
        )
        return b
    }

    /// Appends the encoding to `b`, whose capacity is grown once to what it needs: a base point's
    /// body (36 bytes a page) is then built in place, never copied.
    static func encode<S: Sequence>(
        into b: inout [UInt8], parent: String?, parentDigest: [UInt8], packs: [PackRef], entryCount: Int,
        entries: S
    ) where S.Element == PageEntry {
        b.reserveCapacity(
            b.count + encodedSize(parentLength: parent?.utf8.count ?? 0, packs: packs, entryCount: entryCount))
        encodeHeader(into: &b, parent: parent, parentDigest: parentDigest, packs: packs, entryCount: entryCount)
        var written = 0
        for e in entries {
            appendEntry(e, to: &b)
            written += 1
        }
        precondition(written == entryCount)
    }

    /// Everything before the entries: parent link, packs, entry count.
    static func encodeHeader(
        into b: inout [UInt8], parent: String?, parentDigest: [UInt8], packs: [PackRef], entryCount: Int
    ) {
        let parentBytes = Array((parent ?? "").utf8)
        b.appendBE(UInt16(parentBytes.count))
        b += parentBytes
        b += parentDigest.count == 32 ? parentDigest : [UInt8](repeating: 0, count: 32)
        b.appendBE(UInt32(packs.count))
        for p in packs {
            let n = Array(p.name.utf8)
            b.appendBE(UInt16(n.count))
            b += n
            b.appendBE(UInt64(p.size))
        }
        b.appendBE(UInt32(entryCount))
    }

    static func appendEntry(_ e: PageEntry, to b: inout [UInt8]) {
        b.appendBE(e.page)
        b.appendBE(e.id.hi)
        b.appendBE(e.id.lo)
        b.appendBE(e.location.pack)
        b.appendBE(UInt64(e.location.offset))
        b.appendBE(e.location.length)
    }

    static func encodedSize(parentLength: Int, packs: [PackRef], entryCount: Int) -> Int {
        2 + parentLength + 32 + 4 + packs.reduce(0) { $0 + 2 + $1.name.utf8.count + 8 } + 4 + entryCount * entrySize
    }

    func encoded() -> [UInt8] {
        Self.encode(
            parent: parent, parentDigest: parentDigest, packs: packs, entryCount: entries.count, entries: entries)
    }

    /// Parses and checks a body against its summary (docs/format-incremental.md, 4.2).
    static func decode(_ bytes: [UInt8], summary: PointSummary) throws(FormatError) -> PointBody {
        var r = ByteReader(bytes)
        var entries: [PageEntry] = []
        var body = try decode(&r, summary: summary, prepare: { _, count, _ in entries.reserveCapacity(count) }) {
            entries.append($0)
        }
        body.entries = entries
        return body
    }

    /// Decodes the body that fills the rest of `r`, handing each entry to `visit` (checked, in
    /// order) instead of keeping them: the returned body's `entries` is empty. `prepare` learns
    /// the entry count and the packs first. This is how a large manifest is read without a copy
    /// of its entries.
    static func decode<R: BodyBytes>(
        _ r: inout R, summary: PointSummary,
        prepare: (PointSummary, Int, [PackRef]) throws(FormatError) -> Void = { _, _, _ in },
        visit: (PageEntry) -> Void
    ) throws(FormatError) -> PointBody {
        let parentLength = Int(try r.u16())
        // Names have fixed lengths: refusing others before reading keeps a hostile header small.
        guard parentLength == 0 || parentLength == PointName.relativeLength else {
            throw FormatError("impossible parent name length \(parentLength)")
        }
        let parentBytes = try r.bytes(parentLength)
        let parent = parentLength == 0 ? nil : String(decoding: parentBytes, as: UTF8.self)
        let parentDigest = try r.bytes(32)
        if summary.kind == .base {
            guard parent == nil else { throw FormatError("a base point names a parent") }
        } else {
            guard let parent, PointName.parse(parent) != nil else {
                throw FormatError("an incremental point names no valid parent")
            }
        }
        let packCount = Int(try r.u32())
        guard packCount <= 65535, packCount * 11 <= r.remaining else {
            throw FormatError("impossible pack count \(packCount)")
        }
        var packs: [PackRef] = []
        packs.reserveCapacity(packCount)
        for _ in 0..<packCount {
            let n = Int(try r.u16())
            guard n == PackNames.nameLength else { throw FormatError("impossible pack name length \(n)") }
            let name = String(decoding: try r.bytes(n), as: UTF8.self)
            guard PackNames.isValid(name) else { throw FormatError("invalid pack name \(Display.quoted(name))") }
            let size = Int64(bitPattern: try r.u64())
            guard size >= Int64(PackNames.headerSize), size < 1 << 50 else {
                throw FormatError("impossible pack size \(size)")
            }
            packs.append(PackRef(name: name, size: size))
        }
        let count = Int(try r.u32())
        guard count <= summary.pageCount, count * entrySize == r.remaining else {
            throw FormatError("entry count \(count) does not match the manifest's length")
        }
        if summary.kind == .base && count != summary.pageCount {
            throw FormatError("a base point lists \(count) of \(summary.pageCount) pages")
        }
        let maxLength = BlockSealer.maxSealedLength(pageSize: summary.pageSize)
        try prepare(summary, count, packs)
        var previous: Int64 = -1
        for _ in 0..<count {
            let page = try r.u32()
            let id = BlockID(hi: try r.u64(), lo: try r.u64())
            let pack = try r.u32()
            let offset = Int64(bitPattern: try r.u64())
            let length = try r.u32()
            guard Int64(page) > previous, Int(page) < summary.pageCount else {
                throw FormatError("page \(page) is out of order or past the end")
            }
            previous = Int64(page)
            guard Int(pack) < packs.count else {
                throw FormatError("page \(page) names pack \(pack) of \(packs.count)")
            }
            guard offset >= Int64(PackNames.headerSize), Int(length) >= BlockSealer.overhead, Int(length) <= maxLength,
                offset <= packs[Int(pack)].size - Int64(length)
            else {
                throw FormatError(
                    "page \(page) has an impossible block at \(offset)+\(length) in \(packs[Int(pack)].name)")
            }
            visit(PageEntry(page: page, id: id, location: BlockLocation(pack: pack, offset: offset, length: length)))
        }
        return PointBody(parent: parent, parentDigest: parentDigest, packs: packs, entries: [])
    }
}

/// Pack object names and header (`PointKeys.packHeader`).
enum PackNames {
    /// The shortest header (version 1's magic): no block starts before it.
    static let headerSize = 8
    /// "packs/" + 32 hex + ".pack".
    static let nameLength = 6 + 32 + 5

    static func fresh() throws -> String { "packs/\(try secureRandomBytes(16).hexString).pack" }

    static func isValid(_ name: String) -> Bool {
        let u = Array(name.utf8)
        guard u.count == nameLength, name.hasPrefix("packs/"), name.hasSuffix(".pack") else { return false }
        return u[6..<38].allSatisfy {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
        }
    }
}
