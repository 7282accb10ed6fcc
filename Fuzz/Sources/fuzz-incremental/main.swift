// Incremental backups' parsers of store bytes (Incremental/PointFormat.swift, BlockCodec.swift):
// byte 0 picks what the rest feeds. Manifests and blocks are authenticated, so the harness seals
// the input under a fixed key first: that reaches the parsers behind the tag, which is what a
// holder of the key (or a bug in a writer) could hand them.
//   0: PointSummary.decode          1: PointBody.decode (incremental summary)
//   2: PointBody.decode (base)      3: a sealed manifest whose body is the input (ManifestSeal.open,
//                                      and ManifestFile, the streamed reader, which must agree)
//   4: a sealed block whose plaintext is the input (BlockSealer.open)
//   5: PointName.parse and PointTime.parse of the input as text
import FuzzSupport
import Foundation
@testable import LajuBackup

let keys = try! PointKeys(try! EncryptionKey(bytes: Array(repeating: 7, count: 32)), identity: .declared("fuzz"))
// Fuzzing runs on one thread: the sealer (and its zlib streams) is never shared.
nonisolated(unsafe) let sealer = try! BlockSealer(keys: keys)
let incremental = PointSummary(
    kind: .incremental, check: 2, pageSize: 4096, pageCount: 64, time: 1_700_000_000_000,
    uploadedBytes: 0, uploadedBlocks: 0, depth: 1, digest: Array(repeating: 0, count: 32))
var base: PointSummary { var s = incremental; s.kind = .base; s.depth = 0; return s }
let point = PointName(time: 1_700_000_000_000, nonce: "00000000", kind: .incremental)
let manifestPath = NSTemporaryDirectory() + "laju-fuzz-manifest.\(getpid())"

@_cdecl("fuzz_incremental_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

/// What a body decoder accepted must be within the summary's bounds and encode back to the input.
func checkBody(_ bytes: [UInt8], _ summary: PointSummary) {
    guard let body = try? PointBody.decode(bytes, summary: summary) else { return }
    fuzzCheck(body.encoded() == bytes, "an accepted body does not encode back to its bytes")
    for e in body.entries {
        fuzzCheck(
            Int(e.page) < summary.pageCount && Int(e.location.pack) < body.packs.count,
            "an accepted entry is out of bounds")
        fuzzCheck(
            e.location.offset + Int64(e.location.length) <= body.packs[Int(e.location.pack)].size,
            "an accepted block is past its pack's end")
    }
    if summary.kind == .base {
        fuzzCheck(body.entries.count == summary.pageCount, "a base that does not list every page")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let all = fuzzBytes(data, size)
    guard let mode = all.first else { return 0 }
    let rest = Array(all.dropFirst())
    switch mode % 6 {
    case 0:
        if let s = try? PointSummary.decode(rest) {
            fuzzCheck(s.encoded() == rest, "an accepted summary does not encode back to its bytes")
        }
    case 1: checkBody(rest, incremental)
    case 2: checkBody(rest, base)
    case 3:
        guard !rest.isEmpty else { return 0 }
        let sealed = try! ManifestSeal.seal(name: point.relative, summary: incremental, body: rest, keys: keys)
        let opened = try? ManifestSeal.open(sealed, point: point, keys: keys)
        fuzzCheck((opened?.1) == (try? PointBody.decode(rest, summary: incremental)), "open and decode disagree")
        unlink(manifestPath)
        _ = FileManager.default.createFile(atPath: manifestPath, contents: Data(sealed))
        var streamed: PointBody?
        if let file = try? ManifestFile.open(path: manifestPath, point: point, keys: keys) {
            var entries: [PageEntry] = []
            if (try? file.forEachEntry({ entries.append($0) })) != nil {
                streamed = file.header
                streamed!.entries = entries
                fuzzCheck(file.entryCount == entries.count, "the streamed reader miscounts entries")
            }
        }
        fuzzCheck(streamed == opened?.1, "the streamed reader and the in-memory opener disagree")
    case 4:
        guard !rest.isEmpty else { return 0 }
        let id = BlockID(hi: 1, lo: 2)
        let nonce = Array(repeating: UInt8(3), count: 12)
        let (ct, tag) = try! AESGCM.seal(
            key: keys.block, iv: nonce, aad: BlockSealer.aadLabel + id.bytes, plaintext: rest)
        let sealed: [UInt8] = nonce + ct + tag
        if case .success(let page) = sealer.open(sealed[...], id: id, pageSize: 512) {
            fuzzCheck(page.count == 512, "an accepted block is not one page")
            fuzzCheck(page.withUnsafeBytes { keys.blockID($0) } == id, "an accepted block does not have its id")
        }
    default:
        let text = String(decoding: rest, as: UTF8.self)
        if let n = PointName.parse(text) { fuzzCheck(n.relative == text, "an accepted point name does not print back") }
        if let t = PointTime.parse(text) {
            fuzzCheck(PointTime.parse(PointTime.rfc3339(t)) == t, "a parsed time does not round-trip")
        }
    }
    return 0
}
