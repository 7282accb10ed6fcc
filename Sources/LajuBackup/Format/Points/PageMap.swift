/// The page map of a point: for every page, its block id and where the block is. It lives in a
/// file of 32-byte records in page order (the state cache, or a map rebuilt from the chain in
/// the run's workspace), read front to back: a run's memory does not grow with the database.
struct PageMap {
    /// id (16 bytes), pack index (4), length (4), offset (8), big-endian.
    static let recordSize = 32

    var point: PointName
    var summary: PointSummary
    /// The file whose first `pageCount` records are the map.
    var path: String
    var packs: [PackRef]
    /// The manifests of the chain (relative name and size), base first: a cached map is used
    /// only while every one of them is still listed with that size.
    var manifests: [PackRef]

    var pageSize: Int { summary.pageSize }
    var pageCount: Int { summary.pageCount }

    /// The records, front to back.
    func records() throws -> MapReader { try MapReader(path: path, count: pageCount, packCount: packs.count) }

    static func appendRecord(_ id: BlockID, _ l: BlockLocation, to b: inout [UInt8]) {
        b.appendBE(id.hi)
        b.appendBE(id.lo)
        b.appendBE(l.pack)
        b.appendBE(l.length)
        b.appendBE(UInt64(l.offset))
    }

    /// Builds a point's page map from its chain read newest link first: each page takes the
    /// block of the newest link that lists it. That is right because a point lists every page
    /// past its parent's end, so a page that a shrink cut off is listed again by the point that
    /// brings it back. Records are written where they belong in the file; memory holds one bit a
    /// page (which pages are filled) and one run of records.
    struct Builder {
        private let file: RecordFile
        private let pageCount: Int
        private var filled: PageSet
        private var packs = PackTable()
        /// The current link's pack indices, in the map's pack table.
        private var local: [UInt32] = []
        /// Records of consecutive pages waiting to be written from `runStart`.
        private var run: [UInt8] = []
        private var runStart = 0
        private var failure: LajuError?

        init(path: String, pageCount: Int) throws {
            file = try RecordFile(path: path, size: Int64(pageCount) * Int64(PageMap.recordSize))
            self.pageCount = pageCount
            filled = PageSet(count: pageCount)
            run.reserveCapacity(1 << 20)
        }

        /// The next (older) link's packs; one pack recorded with two sizes is refused.
        mutating func begin(packs linkPacks: [PackRef]) throws(FormatError) {
            local = []
            for p in linkPacks { local.append(try packs.intern(p)) }
        }

        /// An entry of the current link: used unless a newer link gave the page, or the page is
        /// past the end of the point being built.
        mutating func fill(_ e: PageEntry) {
            let i = Int(e.page)
            guard filled.insert(i) else { return }
            if run.count >= 1 << 20 || runStart + run.count / PageMap.recordSize != i { flushRun() }
            if run.isEmpty { runStart = i }
            PageMap.appendRecord(
                e.id,
                BlockLocation(pack: local[Int(e.location.pack)], offset: e.location.offset, length: e.location.length),
                to: &run)
        }

        private mutating func flushRun() {
            guard !run.isEmpty else { return }
            if failure == nil {
                do { try file.write(run, at: Int64(runStart) * Int64(PageMap.recordSize)) } catch let e as LajuError {
                    failure = e
                } catch {}
            }
            run.removeAll(keepingCapacity: true)
        }

        /// Writes what the link gave.
        mutating func endLink() throws {
            flushRun()
            if let failure { throw failure }
        }

        /// The map of `point`, once every page has a block; `manifests` base first.
        func finish(point: PointName, summary: PointSummary, manifests: [PackRef]) throws(FormatError) -> PageMap {
            if let hole = filled.firstMissing() {
                throw FormatError("page \(hole) of \(PointChain.display(point)) has no block")
            }
            return PageMap(point: point, summary: summary, path: file.path, packs: packs.packs, manifests: manifests)
        }
    }
}

/// Which pages of a point are done: one bit a page (a 2.5 GiB database of 4 KiB pages: 80 KiB).
struct PageSet {
    private var bits: [UInt64]
    let capacity: Int
    private(set) var count = 0

    init(count: Int) {
        capacity = count
        bits = [UInt64](repeating: 0, count: (count + 63) / 64)
    }

    /// Adds page `i`; false when it was there already or is past the end.
    mutating func insert(_ i: Int) -> Bool {
        guard i >= 0, i < capacity, bits[i >> 6] & (1 << UInt64(i & 63)) == 0 else { return false }
        bits[i >> 6] |= 1 << UInt64(i & 63)
        count += 1
        return true
    }

    /// The first page not added, if any.
    func firstMissing() -> Int? {
        guard count < capacity else { return nil }
        return (0..<capacity).first { bits[$0 >> 6] & (1 << UInt64($0 & 63)) == 0 }
    }
}

/// The packs of a chain, each once, by name: what manifests call pack 0, 1... becomes an index
/// into this table. One pack recorded with two sizes is refused.
struct PackTable {
    private(set) var packs: [PackRef] = []
    private var index: [String: UInt32] = [:]

    /// The pack's index, added when new.
    mutating func intern(_ p: PackRef) throws(FormatError) -> UInt32 {
        if let i = index[p.name] {
            guard packs[Int(i)].size == p.size else { throw FormatError("pack \(p.name) is recorded with two sizes") }
            return i
        }
        packs.append(p)
        index[p.name] = UInt32(packs.count - 1)
        return UInt32(packs.count - 1)
    }

    func index(of name: String) -> UInt32? { index[name] }
}

/// One record of a page map.
struct MapRecord: Equatable {
    var id: BlockID
    var location: BlockLocation
}

/// Reads the records of a page map front to back, 1 MiB at a time.
final class MapReader {
    private let file: FileReader
    private let count: Int
    private let packCount: Int
    private var buffer: [UInt8]
    private var at = 0
    private var filledTo = 0
    private(set) var index = 0

    init(path: String, count: Int, packCount: Int) throws {
        file = try FileReader(path: path)
        guard file.size >= Int64(count) * Int64(PageMap.recordSize) else {
            throw LajuError(.local, "the page map \(path) is shorter than its \(count) records")
        }
        self.count = count
        self.packCount = packCount
        buffer = [UInt8](repeating: 0, count: min(1 << 20, max(count, 1) * PageMap.recordSize))
    }

    /// The next record; nil after the last.
    func next() throws -> MapRecord? {
        guard index < count else { return nil }
        if at == filledTo {
            let want = min(buffer.count, (count - index) * PageMap.recordSize)
            let got = try buffer.withUnsafeMutableBytes {
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<want]))
            }
            guard got == want else { throw LajuError(.local, "the page map \(file.path) ends early") }
            at = 0
            filledTo = want
        }
        func u(_ o: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<n { v = v << 8 | UInt64(buffer[at + o + k]) }
            return v
        }
        let r = MapRecord(
            id: BlockID(hi: u(0, 8), lo: u(8, 8)),
            location: BlockLocation(
                pack: UInt32(u(16, 4)), offset: Int64(bitPattern: u(24, 8)), length: UInt32(u(20, 4))))
        // A map is MACed or built from checked manifests; this only keeps a bad one from crashing.
        guard Int(r.location.pack) < packCount else {
            throw LajuError(.integrity, "the page map \(file.path) names pack \(r.location.pack) of \(packCount)")
        }
        at += PageMap.recordSize
        index += 1
        return r
    }
}

/// A file written at chosen offsets (a page map filled newest link first).
final class RecordFile {
    let path: String
    private let fd: Int32

    /// Creates the file (it must not exist) with `size` bytes of zeros (sparse).
    init(path: String, size: Int64) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LajuError(.local, "cannot create \(path): \(String(cString: strerror(errno)))") }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = errno
            closeDescriptor(fd)
            throw LajuError(.local, "cannot size \(path): \(String(cString: strerror(e)))")
        }
    }

    deinit { closeDescriptor(fd) }

    func write(_ bytes: [UInt8], at offset: Int64) throws { try writeAll(fd, bytes, at: offset, path: path) }
}
