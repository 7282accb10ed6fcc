import Foundation
import XCTest
@testable import LajuBackup

/// The incremental format's parsers (docs/format-incremental.md): names, times, manifests and
/// blocks round-trip, and hostile bytes are refused before anything is allocated from them.
final class IncrementalFormatTests: XCTestCase {
    let keys = try! IncrementalKeys(try! EncryptionKey(bytes: Array(repeating: 7, count: 32)))

    func testPointNamesRoundTripAndRejectOthers() throws {
        let n = try PointName.fresh(time: 1_764_670_503_123, kind: .incremental)
        XCTAssertTrue(n.relative.hasPrefix("points/20251202T101503.123Z-"), n.relative)
        XCTAssertTrue(n.relative.hasSuffix(".incr"))
        XCTAssertEqual(PointName.parse(n.relative), n)
        let base = PointName(time: 0, nonce: "0123abcd", kind: .base)
        XCTAssertEqual(PointName.parse("points/19700101T000000.000Z-0123abcd.base"), base)
        for bad in ["points/20251302T101503.123Z-0123abcd.base", "points/20251202T101503.123Z-0123ABCD.base",
                    "points/20251202T101503.123Z-0123abcd.full", "points/20250230T101503.123Z-0123abcd.base",
                    "points/20251202T101503.123-0123abcd.base.", "packs/20251202T101503.123Z-0123abcd.base", ""] {
            XCTAssertNil(PointName.parse(bad), bad)
        }
    }

    func testRFC3339() {
        XCTAssertEqual(PointTime.parse("2026-12-02T10:15:03Z"), PointTime.parse("2026-12-02T17:15:03+07:00"))
        XCTAssertEqual(PointTime.parse("1970-01-01T00:00:01.5Z"), 1500)
        XCTAssertEqual(PointTime.parse("1970-01-01T00:00:01.123999Z"), 1123)
        XCTAssertEqual(PointTime.parse("1970-01-01T01:00:00+01:00"), 0)
        XCTAssertEqual(PointTime.rfc3339(1_764_670_503_123), "2025-12-02T10:15:03.123Z")
        XCTAssertEqual(PointTime.parse(PointTime.rfc3339(1_764_670_503_123)), 1_764_670_503_123)
        for bad in ["2026-12-02T10:15:03", "2026-02-30T00:00:00Z", "2026-12-02 10:15:03Z", "2026-12-02T10:15:03+0700", "latest", "2026-12-02T10:15:03.Z", ""] {
            XCTAssertNil(PointTime.parse(bad), bad)
        }
    }

    func sample() -> (PointName, PointSummary, PointBody) {
        let name = PointName(time: 1_700_000_000_000, nonce: "deadbeef", kind: .incremental)
        let summary = PointSummary(kind: .incremental, check: 2, pageSize: 4096, pageCount: 10, time: name.time,
                                   uploadedBytes: 1234, uploadedBlocks: 2, depth: 3, digest: Array(repeating: 9, count: 32))
        let body = PointBody(parent: "points/20231114T221319.999Z-00000001.base", parentDigest: Array(repeating: 1, count: 32),
                             packs: [PackRef(name: "packs/" + String(repeating: "a", count: 32) + ".pack", size: 10_000)],
                             entries: [PageEntry(page: 2, id: BlockID(hi: 1, lo: 2), location: BlockLocation(pack: 0, offset: 8, length: 100)),
                                       PageEntry(page: 9, id: BlockID(hi: 3, lo: 4), location: BlockLocation(pack: 0, offset: 108, length: 200))])
        return (name, summary, body)
    }

    func testManifestRoundTrip() throws {
        let (name, summary, body) = sample()
        let sealed = try ManifestSeal.seal(name: name.relative, summary: summary, body: body.encoded(), key: keys.point)
        XCTAssertEqual(Int64(sealed.count), ManifestSeal.objectSize(bodyLength: body.encoded().count))
        let (s, b) = try ManifestSeal.open(sealed, point: name, key: keys.point)
        XCTAssertEqual(s, summary)
        XCTAssertEqual(b, body)
        XCTAssertEqual(try ManifestSeal.openSummary(Array(sealed.prefix(108)), name: name.relative, key: keys.point), summary)
    }

    func testManifestBoundToItsNameAndBytes() throws {
        let (name, summary, body) = sample()
        let sealed = try ManifestSeal.seal(name: name.relative, summary: summary, body: body.encoded(), key: keys.point)
        let renamed = PointName(time: name.time, nonce: "deadbeee", kind: .incremental)
        XCTAssertThrowsError(try ManifestSeal.open(sealed, point: renamed, key: keys.point))
        for offset in [0, 10, 50, 107, 108, 130, sealed.count - 1] {
            var bad = sealed
            bad[offset] ^= 1
            XCTAssertThrowsError(try ManifestSeal.open(bad, point: name, key: keys.point), "flip at \(offset)")
        }
        XCTAssertThrowsError(try ManifestSeal.open(Array(sealed.dropLast(5)), point: name, key: keys.point))
        let other = try IncrementalKeys(try EncryptionKey(bytes: Array(repeating: 8, count: 32)))
        XCTAssertThrowsError(try ManifestSeal.open(sealed, point: name, key: other.point))
    }

    /// Bodies that authenticate (an attacker with the key, or a bug) but lie: each is refused.
    func testHostileBodies() throws {
        let (_, summary, body) = sample()
        func refused(_ b: PointBody, _ s: PointSummary? = nil, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try PointBody.decode(b.encoded(), summary: s ?? summary), file: file, line: line)
        }
        var b = body
        b.entries.reverse()
        refused(b)   // out of order
        b = body; b.entries[1].page = 10
        refused(b)   // past the end
        b = body; b.entries[0].location.pack = 1
        refused(b)   // no such pack
        b = body; b.entries[1].location.offset = 9_900
        refused(b)   // past the pack's end
        b = body; b.entries[0].location.offset = 0
        refused(b)   // inside the pack header
        b = body; b.entries[0].location.length = 70_000
        refused(b)   // longer than a block can be
        b = body; b.packs[0].name = "packs/../x"
        refused(b)
        b = body; b.parent = nil
        refused(b)   // an incremental point without a parent
        var base = summary
        base.kind = .base
        base.depth = 0
        b = body; b.parent = nil
        refused(b, base)   // a base that lists 2 of 10 pages
        // Truncated or padded encodings, and a huge count with no entries behind it.
        let enc = body.encoded()
        XCTAssertThrowsError(try PointBody.decode(Array(enc.dropLast()), summary: summary))
        XCTAssertThrowsError(try PointBody.decode(enc + [0], summary: summary))
        var huge = Array(enc.prefix(enc.count - 2 * 36 - 4))
        huge += [0xff, 0xff, 0xff, 0xff]
        XCTAssertThrowsError(try PointBody.decode(huge, summary: summary))
        XCTAssertNoThrow(try PointBody.decode(enc, summary: summary))
    }

    func testHostileSummaries() throws {
        let (_, summary, _) = sample()
        var s = summary.encoded()
        s[0] = 2
        XCTAssertThrowsError(try PointSummary.decode(s))        // version
        s = summary.encoded(); s[4...7] = [0, 0, 0x30, 0]
        XCTAssertThrowsError(try PointSummary.decode(s))        // page size 12288
        s = summary.encoded(); s[8...15] = [0, 0, 0, 1, 0, 0, 0, 0]
        XCTAssertThrowsError(try PointSummary.decode(s))        // 2^32 pages
        s = summary.encoded(); s[3] = 1
        XCTAssertThrowsError(try PointSummary.decode(s))        // reserved byte (found by fuzz-incremental)
        s = summary.encoded(); s[2] = 3
        XCTAssertThrowsError(try PointSummary.decode(s))        // unknown check
        s = summary.encoded(); s[36...39] = [0, 0, 0, 64]
        XCTAssertThrowsError(try PointSummary.decode(s))        // depth past the limit
        XCTAssertThrowsError(try PointSummary.decode(Array(summary.encoded().dropLast())))
    }

    func testBlocksRoundTripAndAreBoundToTheirId() throws {
        let sealer = try BlockSealer(keys: keys)
        let text = [UInt8](repeating: 65, count: 4096)
        var random = [UInt8](repeating: 0, count: 4096)
        for i in random.indices { random[i] = UInt8.random(in: 0...255) }
        for page in [text, random] {
            let id = page.withUnsafeBytes { keys.blockID($0) }
            let sealed = try page.withUnsafeBytes { try sealer.seal(page: $0, id: id) }
            XCTAssertLessThanOrEqual(sealed.count, BlockSealer.maxSealedLength(pageSize: 4096))
            XCTAssertEqual(try sealer.open(sealed[...], id: id, pageSize: 4096).get(), page)
            XCTAssertThrowsError(try sealer.open(sealed[...], id: BlockID(hi: id.hi, lo: id.lo ^ 1), pageSize: 4096).get())
            XCTAssertThrowsError(try sealer.open(sealed[...], id: id, pageSize: 8192).get())
            var bad = sealed
            bad[bad.count / 2] ^= 0x40
            XCTAssertThrowsError(try sealer.open(bad[...], id: id, pageSize: 4096).get())
        }
        // Compressible pages are compressed, random ones stored.
        let a = try text.withUnsafeBytes { try sealer.seal(page: $0, id: keys.blockID($0)) }
        XCTAssertLessThan(a.count, 200)
        let b = try random.withUnsafeBytes { try sealer.seal(page: $0, id: keys.blockID($0)) }
        XCTAssertEqual(b.count, 4096 + BlockSealer.overhead)
        // The ids are keyed: another key, another id.
        let other = try IncrementalKeys(try EncryptionKey(bytes: Array(repeating: 8, count: 32)))
        XCTAssertNotEqual(text.withUnsafeBytes { keys.blockID($0) }, text.withUnsafeBytes { other.blockID($0) })
    }

    func testPageMapAppliesAChain() throws {
        let pack = PackRef(name: "packs/" + String(repeating: "b", count: 32) + ".pack", size: 100_000)
        func link(_ kind: PointKind, time: Int64, count: Int, pages: [UInt32], depth: Int) -> PointChain.Loaded {
            let name = PointName(time: time, nonce: "00000000", kind: kind)
            let s = PointSummary(kind: kind, check: 2, pageSize: 4096, pageCount: count, time: time, uploadedBytes: 0,
                                 uploadedBlocks: 0, depth: depth, digest: Array(repeating: 0, count: 32))
            let entries = pages.map { PageEntry(page: $0, id: BlockID(hi: UInt64(time), lo: UInt64($0)), location: BlockLocation(pack: 0, offset: 8 + Int64($0) * 100, length: 100)) }
            return PointChain.Loaded(name: name, summary: s, body: PointBody(parent: nil, parentDigest: [], packs: [pack], entries: entries))
        }
        let map = try PageMap(chain: [link(.base, time: 1, count: 4, pages: [0, 1, 2, 3], depth: 0),
                                      link(.incremental, time: 2, count: 6, pages: [1, 4, 5], depth: 1),
                                      link(.incremental, time: 3, count: 3, pages: [0], depth: 2)])
        XCTAssertEqual(map.pageCount, 3)
        XCTAssertEqual(map.ids, [BlockID(hi: 3, lo: 0), BlockID(hi: 2, lo: 1), BlockID(hi: 1, lo: 2)])
        // Growth that leaves a page without a block is refused.
        XCTAssertThrowsError(try PageMap(chain: [link(.base, time: 1, count: 2, pages: [0, 1], depth: 0),
                                                 link(.incremental, time: 2, count: 4, pages: [3], depth: 1)]))
        XCTAssertThrowsError(try PageMap(chain: [link(.incremental, time: 2, count: 4, pages: [3], depth: 1)]))
        // Shrink, then growth: the pages past the shrunk end come from the point that lists them
        // again, never from the base that had them before.
        let regrown = try PageMap(chain: [link(.base, time: 1, count: 4, pages: [0, 1, 2, 3], depth: 0),
                                          link(.incremental, time: 2, count: 2, pages: [], depth: 1),
                                          link(.incremental, time: 3, count: 4, pages: [2, 3], depth: 2)])
        XCTAssertEqual(regrown.ids, [BlockID(hi: 1, lo: 0), BlockID(hi: 1, lo: 1), BlockID(hi: 3, lo: 2), BlockID(hi: 3, lo: 3)])
        XCTAssertEqual(regrown.manifests.map(\.name), [1, 2, 3].map { PointName(time: $0, nonce: "00000000", kind: $0 == 1 ? .base : .incremental).relative })
    }

    /// The id table used by backups finds what was inserted, by position, and nothing else.
    func testBlockIndexFindsInsertedIdsOnly() {
        var ids: [BlockID] = []
        var index = BlockIndex(capacity: 5000)
        for i in 0..<5000 {
            // Equal high halves force probing past occupied slots.
            ids.append(BlockID(hi: UInt64(i % 7), lo: UInt64(i)))
            if i % 2 == 0 { index.insert(i, of: ids) }
        }
        for i in 0..<5000 {
            XCTAssertEqual(index.find(ids[i], in: ids), i % 2 == 0 ? i : nil, "id \(i)")
        }
        XCTAssertNil(index.find(BlockID(hi: 3, lo: 99_999), in: ids))
    }
}
