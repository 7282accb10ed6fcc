import Foundation
import XCTest
@testable import LajuBackup

/// The incremental format's parsers (docs/format-incremental.md): names, times, manifests and
/// blocks round-trip, and hostile bytes are refused before anything is allocated from them.
final class PointFormatTests: XCTestCase {
    let keys = try! PointKeys(try! EncryptionKey(bytes: Array(repeating: 7, count: 32)), identity: .declared("shop"))

    func testPointNamesRoundTripAndRejectOthers() throws {
        let n = try PointName.fresh(time: 1_764_670_503_123, kind: .incremental)
        XCTAssertTrue(n.relative.hasPrefix("points/20251202T101503.123Z-"), n.relative)
        XCTAssertTrue(n.relative.hasSuffix(".incr"))
        XCTAssertEqual(PointName.parse(n.relative), n)
        let base = PointName(time: 0, nonce: "0123abcd", kind: .base)
        XCTAssertEqual(PointName.parse("points/19700101T000000.000Z-0123abcd.base"), base)
        for bad in [
            "points/20251302T101503.123Z-0123abcd.base", "points/20251202T101503.123Z-0123ABCD.base",
            "points/20251202T101503.123Z-0123abcd.full", "points/20250230T101503.123Z-0123abcd.base",
            "points/20251202T101503.123-0123abcd.base.", "packs/20251202T101503.123Z-0123abcd.base", ""
        ] {
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
        for bad in [
            "2026-12-02T10:15:03", "2026-02-30T00:00:00Z", "2026-12-02 10:15:03Z", "2026-12-02T10:15:03+0700", "latest",
            "2026-12-02T10:15:03.Z", ""
        ] {
            XCTAssertNil(PointTime.parse(bad), bad)
        }
    }

    func sample() -> (PointName, PointSummary, PointBody) {
        let name = PointName(time: 1_700_000_000_000, nonce: "deadbeef", kind: .incremental)
        let summary = PointSummary(
            kind: .incremental, check: 2, pageSize: 4096, pageCount: 10, time: name.time,
            uploadedBytes: 1234, uploadedBlocks: 2, depth: 3, digest: Array(repeating: 9, count: 32))
        let body = PointBody(
            parent: "points/20231114T221319.999Z-00000001.base", parentDigest: Array(repeating: 1, count: 32),
            packs: [PackRef(name: "packs/" + String(repeating: "a", count: 32) + ".pack", size: 10_000)],
            entries: [
                PageEntry(page: 2, id: BlockID(hi: 1, lo: 2), location: BlockLocation(pack: 0, offset: 8, length: 100)),
                PageEntry(
                    page: 9, id: BlockID(hi: 3, lo: 4), location: BlockLocation(pack: 0, offset: 108, length: 200))
            ])
        return (name, summary, body)
    }

    func testManifestRoundTrip() throws {
        let (name, summary, body) = sample()
        let sealed = try ManifestSeal.seal(name: name.relative, summary: summary, body: body.encoded(), keys: keys)
        XCTAssertEqual(Int64(sealed.count), ManifestSeal.objectSize(bodyLength: body.encoded().count))
        let (s, b) = try ManifestSeal.open(sealed, point: name, keys: keys)
        XCTAssertEqual(s, summary)
        XCTAssertEqual(b, body)
        XCTAssertEqual(
            try ManifestSeal.openSummary(Array(sealed.prefix(108)), name: name.relative, keys: keys), summary)
    }

    /// Version 2 keys belong to one identity: a manifest, a block or a pack header made for one
    /// database does not open as another's (or as a version 1 point), which is what makes points
    /// copied between namespaces damage rather than state. Version 1 keys keep their labels.
    func testVersion2KeysBindTheIdentity() throws {
        let key = try EncryptionKey(bytes: Array(repeating: 7, count: 32))
        let (name, summary, body) = sample()
        let sealed = try ManifestSeal.seal(name: name.relative, summary: summary, body: body.encoded(), keys: keys)
        XCTAssertEqual(Array(sealed.prefix(8)), Array("LJINCPT2".utf8))
        let dbID = Identity.database(DatabaseID(hex: String(repeating: "ab", count: 16))!)
        for other in [
            try PointKeys(key, identity: .declared("blog")), try PointKeys(key, identity: dbID),
            try PointKeys(key, identity: nil)
        ] {
            XCTAssertThrowsError(try ManifestSeal.open(sealed, point: name, keys: other))
            let page = [UInt8](repeating: 3, count: 4096)
            let block = try page.withUnsafeBytes { try BlockSealer(keys: keys).seal(page: $0, id: keys.blockID($0)) }
            let id = page.withUnsafeBytes { keys.blockID($0) }
            if case .success = try BlockSealer(keys: other).open(block[...], id: id, pageSize: 4096) {
                XCTFail("a block opened under another identity's keys")
            }
            XCTAssertNotEqual(other.packHeader(name: "packs/x.pack"), keys.packHeader(name: "packs/x.pack"))
        }
        let header = keys.packHeader(name: "packs/x.pack")
        XCTAssertEqual(header.count, keys.packHeaderSize)
        XCTAssertNotEqual(header, keys.packHeader(name: "packs/y.pack"))
        let v1 = try PointKeys(key, identity: nil)
        XCTAssertEqual(
            v1.point, try hkdfSHA256(key: key.bytes, info: Array("laju-backup incremental manifest v1".utf8), count: 32)
        )
        XCTAssertEqual(v1.packHeader(name: "packs/x.pack"), Array("LJINCPK1".utf8))
        XCTAssertEqual(v1.manifestMagic, Array("LJINCPT1".utf8))
    }

    func testManifestBoundToItsNameAndBytes() throws {
        let (name, summary, body) = sample()
        let sealed = try ManifestSeal.seal(name: name.relative, summary: summary, body: body.encoded(), keys: keys)
        let renamed = PointName(time: name.time, nonce: "deadbeee", kind: .incremental)
        XCTAssertThrowsError(try ManifestSeal.open(sealed, point: renamed, keys: keys))
        for offset in [0, 10, 50, 107, 108, 130, sealed.count - 1] {
            var bad = sealed
            bad[offset] ^= 1
            XCTAssertThrowsError(try ManifestSeal.open(bad, point: name, keys: keys), "flip at \(offset)")
        }
        XCTAssertThrowsError(try ManifestSeal.open(Array(sealed.dropLast(5)), point: name, keys: keys))
        let other = try PointKeys(try EncryptionKey(bytes: Array(repeating: 8, count: 32)), identity: .declared("shop"))
        XCTAssertThrowsError(try ManifestSeal.open(sealed, point: name, keys: other))
    }

    /// Bodies that authenticate (an attacker with the key, or a bug) but lie: each is refused.
    func testHostileBodies() throws {
        let (_, summary, body) = sample()
        func refused(_ b: PointBody, _ s: PointSummary? = nil, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try PointBody.decode(b.encoded(), summary: s ?? summary), file: file, line: line)
        }
        var b = body
        b.entries.reverse()
        refused(b)  // out of order
        b = body; b.entries[1].page = 10
        refused(b)  // past the end
        b = body; b.entries[0].location.pack = 1
        refused(b)  // no such pack
        b = body; b.entries[1].location.offset = 9_900
        refused(b)  // past the pack's end
        b = body; b.entries[0].location.offset = 0
        refused(b)  // inside the pack header
        b = body; b.entries[0].location.length = 70_000
        refused(b)  // longer than a block can be
        b = body; b.packs[0].name = "packs/../x"
        refused(b)
        b = body; b.parent = nil
        refused(b)  // an incremental point without a parent
        var base = summary
        base.kind = .base
        base.depth = 0
        b = body; b.parent = nil
        refused(b, base)  // a base that lists 2 of 10 pages
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
        XCTAssertThrowsError(try PointSummary.decode(s))  // version
        s = summary.encoded(); s[4...7] = [0, 0, 0x30, 0]
        XCTAssertThrowsError(try PointSummary.decode(s))  // page size 12288
        s = summary.encoded(); s[8...15] = [0, 0, 0, 1, 0, 0, 0, 0]
        XCTAssertThrowsError(try PointSummary.decode(s))  // 2^32 pages
        s = summary.encoded(); s[3] = 1
        XCTAssertThrowsError(try PointSummary.decode(s))  // reserved byte (found by fuzz-incremental)
        s = summary.encoded(); s[2] = 3
        XCTAssertThrowsError(try PointSummary.decode(s))  // unknown check
        s = summary.encoded(); s[36...39] = [0, 0, 0, 64]
        XCTAssertThrowsError(try PointSummary.decode(s))  // depth past the limit
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
            XCTAssertThrowsError(
                try sealer.open(sealed[...], id: BlockID(hi: id.hi, lo: id.lo ^ 1), pageSize: 4096).get())
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
        let other = try PointKeys(try EncryptionKey(bytes: Array(repeating: 8, count: 32)), identity: .declared("shop"))
        XCTAssertNotEqual(text.withUnsafeBytes { keys.blockID($0) }, text.withUnsafeBytes { other.blockID($0) })
    }

    func testPageMapAppliesAChain() throws {
        let pack = PackRef(name: "packs/" + String(repeating: "b", count: 32) + ".pack", size: 100_000)
        let dir = NSTemporaryDirectory() + "laju-pagemap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        typealias Link = (kind: PointKind, time: Int64, count: Int, pages: [UInt32])
        // The chain base first, as a backup writes it; the builder reads it newest first.
        func build(_ chain: [Link]) throws -> [BlockID] {
            let path = "\(dir)/\(chain.count)-\(chain.last!.time)-\(UInt32.random(in: 0...UInt32.max)).map"
            let newest = chain.last!
            var b = try PageMap.Builder(path: path, pageCount: newest.count)
            for link in chain.reversed() {
                try b.begin(packs: [pack])
                for p in link.pages {
                    b.fill(
                        PageEntry(
                            page: p, id: BlockID(hi: UInt64(link.time), lo: UInt64(p)),
                            location: BlockLocation(pack: 0, offset: 8 + Int64(p) * 100, length: 100)))
                }
                try b.endLink()
            }
            let name = PointName(time: newest.time, nonce: "00000000", kind: newest.kind)
            let s = PointSummary(
                kind: newest.kind, check: 2, pageSize: 4096, pageCount: newest.count, time: newest.time,
                uploadedBytes: 0,
                uploadedBlocks: 0, depth: chain.count - 1, digest: Array(repeating: 0, count: 32))
            let map = try b.finish(point: name, summary: s, manifests: [])
            let reader = try map.records()
            var ids: [BlockID] = []
            while let r = try reader.next() {
                XCTAssertEqual(r.location, BlockLocation(pack: 0, offset: 8 + Int64(r.id.lo) * 100, length: 100))
                ids.append(r.id)
            }
            XCTAssertEqual(ids.count, newest.count)
            return ids
        }
        XCTAssertEqual(
            try build([(.base, 1, 4, [0, 1, 2, 3]), (.incremental, 2, 6, [1, 4, 5]), (.incremental, 3, 3, [0])]),
            [BlockID(hi: 3, lo: 0), BlockID(hi: 2, lo: 1), BlockID(hi: 1, lo: 2)])
        // Growth that leaves a page without a block is refused.
        XCTAssertThrowsError(try build([(.base, 1, 2, [0, 1]), (.incremental, 2, 4, [3])]))
        // Shrink, then growth: the pages past the shrunk end come from the point that lists them
        // again, never from the base that had them before.
        XCTAssertEqual(
            try build([(.base, 1, 4, [0, 1, 2, 3]), (.incremental, 2, 2, []), (.incremental, 3, 4, [2, 3])]),
            [BlockID(hi: 1, lo: 0), BlockID(hi: 1, lo: 1), BlockID(hi: 3, lo: 2), BlockID(hi: 3, lo: 3)])
        // Runs of records longer than one write, with holes left for newer links.
        let many = (0..<70_000).map { UInt32($0) }
        let ids = try build([(.base, 1, 70_000, many), (.incremental, 2, 70_000, many.filter { $0 % 1000 == 7 })])
        XCTAssertEqual(ids.filter { $0.hi == 2 }.count, 70)
        XCTAssertEqual(ids[7], BlockID(hi: 2, lo: 7))
        XCTAssertEqual(ids[69_999], BlockID(hi: 1, lo: 69_999))
    }

    /// The bounded id table of backups finds what was inserted and nothing else, and takes no
    /// more than its capacity.
    func testBlockTableFindsInsertedIdsOnlyUpToItsCapacity() {
        var table = BlockTable(capacity: 5000)
        func id(_ i: Int) -> BlockID { BlockID(hi: UInt64(i % 7), lo: UInt64(i)) }  // equal high halves force probing
        func at(_ i: Int) -> BlockLocation { BlockLocation(pack: UInt32(i % 3), offset: Int64(i) * 10, length: 100) }
        for i in 0..<12_000 where i % 2 == 0 { table.insert(id(i), at: at(i)) }
        XCTAssertTrue(table.isFull)
        XCTAssertEqual(table.count, 5000)
        for i in 0..<12_000 {
            XCTAssertEqual(table.find(id(i)), i % 2 == 0 && i < 10_000 ? at(i) : nil, "id \(i)")
        }
        // An id already held keeps its first location.
        var small = BlockTable(capacity: 4)
        small.insert(id(1), at: at(1))
        small.insert(id(1), at: at(2))
        XCTAssertEqual(small.count, 1)
        XCTAssertEqual(small.find(id(1)), at(1))
    }

    /// Manifests written and read as files (bounded memory) are the objects `ManifestSeal` makes
    /// in memory, and any change to the file is refused before an entry is handed out.
    func testManifestFilesMatchTheInMemoryFormat() throws {
        let dir = NSTemporaryDirectory() + "laju-manifest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (name, _, _) = sample()
        let pack = PackRef(name: "packs/" + String(repeating: "c", count: 32) + ".pack", size: 1 << 40)
        let count = 40_000  // 1.4 MiB: more than one buffer
        let entries = (0..<count).map {
            PageEntry(
                page: UInt32($0), id: BlockID(hi: UInt64($0) &* 0x9e3779b97f4a7c15, lo: UInt64($0)),
                location: BlockLocation(pack: 0, offset: 8 + Int64($0) * 50, length: 40))
        }
        let summary = PointSummary(
            kind: .incremental, check: 1, pageSize: 4096, pageCount: count + 5, time: name.time, uploadedBytes: 1,
            uploadedBlocks: 1, depth: 3, digest: Array(repeating: 9, count: 32))
        let body = PointBody(
            parent: "points/20231114T221319.999Z-00000001.base", parentDigest: Array(repeating: 1, count: 32),
            packs: [pack], entries: entries)
        let path2 = "\(dir)/m2"
        let w2 = try ManifestWriter(
            path: path2, name: name.relative, summary: summary, keys: keys, bodyLength: body.encoded().count)
        try w2.append {
            PointBody.encodeHeader(
                into: &$0, parent: body.parent, parentDigest: body.parentDigest, packs: body.packs, entryCount: count)
        }
        try w2.append { for e in entries { PointBody.appendEntry(e, to: &$0) } }
        let (size, md5) = try w2.finish()
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path2))
        XCTAssertEqual(Int64(bytes.count), size)
        XCTAssertEqual(Digest.hash(.md5, Array(bytes)), md5)
        // The in-memory opener agrees, and so does the file reader.
        let (s, b) = try ManifestSeal.open(Array(bytes), point: name, keys: keys)
        XCTAssertEqual(s, summary)
        XCTAssertEqual(b, body)
        let file = try ManifestFile.open(path: path2, point: name, keys: keys)
        XCTAssertEqual(file.summary, summary)
        XCTAssertEqual(file.header.packs, [pack])
        XCTAssertEqual(file.header.parent, body.parent)
        XCTAssertEqual(file.entryCount, count)
        var read: [PageEntry] = []
        try file.forEachEntry { read.append($0) }
        XCTAssertEqual(read, entries)
        // One flipped byte anywhere, a truncation, another name or key: refused at open.
        for offset in [0, 30, 108, 125, 5000, bytes.count / 2, bytes.count - 1] {
            var bad = Array(bytes)
            bad[offset] ^= 1
            XCTAssertTrue(FileManager.default.createFile(atPath: "\(dir)/bad\(offset)", contents: Data(bad)))
            XCTAssertThrowsError(
                try ManifestFile.open(path: "\(dir)/bad\(offset)", point: name, keys: keys), "flip at \(offset)")
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: "\(dir)/short", contents: Data(bytes.dropLast(16))))
        XCTAssertThrowsError(try ManifestFile.open(path: "\(dir)/short", point: name, keys: keys))
        let other = try PointKeys(try EncryptionKey(bytes: Array(repeating: 8, count: 32)), identity: .declared("shop"))
        XCTAssertThrowsError(try ManifestFile.open(path: path2, point: name, keys: other))
        XCTAssertThrowsError(
            try ManifestFile.open(
                path: path2, point: PointName(time: name.time, nonce: "ffffffff", kind: name.kind), keys: keys))
        // Changed after it was opened: the second read fails at its end.
        var tampered = Array(bytes)
        tampered[bytes.count / 2] ^= 1
        XCTAssertTrue(FileManager.default.createFile(atPath: path2, contents: Data(tampered)))
        XCTAssertThrowsError(try file.forEachEntry { _ in })
    }

    /// The streaming primitives equal their one-shot forms.
    func testStreamingGCMAndHMACEqualTheOneShotForms() throws {
        let key = (0..<32).map { UInt8($0) }, iv = [UInt8](repeating: 3, count: 12), aad = Array("aad".utf8)
        let plain = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let (cipher, tag) = try AESGCM.seal(key: key, iv: iv, aad: aad, plaintext: plain)
        let sealer = try GCMStream(sealing: true, key: key, iv: iv, aad: aad)
        var buf = plain
        for r in [0..<1, 1..<4096, 4096..<70_000, 70_000..<100_003] {
            try buf.withUnsafeMutableBytes { try sealer.update(UnsafeMutableRawBufferPointer(rebasing: $0[r])) }
        }
        XCTAssertEqual(buf, cipher)
        XCTAssertEqual(try sealer.finish(), tag)
        let opener = try GCMStream(sealing: false, key: key, iv: iv, aad: aad)
        try buf.withUnsafeMutableBytes { try opener.update($0) }
        XCTAssertEqual(buf, plain)
        XCTAssertNoThrow(try opener.finish(tag: tag))
        let wrong = try GCMStream(sealing: false, key: key, iv: iv, aad: aad)
        var c2 = cipher
        try c2.withUnsafeMutableBytes { try wrong.update($0) }
        var badTag = tag
        badTag[0] ^= 1
        XCTAssertThrowsError(try wrong.finish(tag: badTag)) { XCTAssertEqual(($0 as? CError)?.status, .authentication) }

        for k in [key, [UInt8](repeating: 1, count: 100)] {
            let h = HMACStream(key: k)
            h.update(plain[..<10])
            h.update(plain[10...])
            XCTAssertEqual(h.finalize(), hmacSHA256(key: k, data: plain))
        }
    }
}
