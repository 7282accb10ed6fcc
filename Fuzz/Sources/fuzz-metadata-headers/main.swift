// Object metadata from S3 response headers: the header block is parsed as HTTPClient does, the
// x-amz-meta-* headers are collected as S3Store.head does, and ObjectMetadata(pairs:)
// (Envelope/ObjectMetadata.swift) reads the IV, tag, checksum and our own fields from them.
import FuzzSupport
@testable import LajuBackup

@_cdecl("fuzz_metadata_headers_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let headers = HTTPClient.parseHeaderBlock(fuzzText(data, size))
    // As in S3Store.head(key:).
    var pairs: [String: String] = [:]
    for (name, value) in headers where name.hasPrefix("x-amz-meta-") {
        pairs[String(name.dropFirst("x-amz-meta-".count))] = value
    }
    checkMetadata(pairs)
    return 0
}

/// Reads `pairs` as restore does; when accepted, the metadata must survive being written again
/// (as S3 headers and as the local store's JSON side file) and read back.
func checkMetadata(_ pairs: [String: String]) {
    guard let meta = try? ObjectMetadata(pairs: pairs) else { return }
    fuzzCheck(
        meta.iv.count == 12 && meta.tag.count == 16,
        "accepted an IV of \(meta.iv.count) or a tag of \(meta.tag.count) bytes")
    let again = try? ObjectMetadata(pairs: meta.pairs)
    fuzzCheck(again == meta, "metadata changes when written and read again")
    if let json = try? JSONSerializationLite.encode(meta.pairs) {
        fuzzCheck((try? JSONSerializationLite.decode(json)) == meta.pairs, "the side file does not round-trip")
    } else {
        fuzzCheck(false, "metadata that was read cannot be written as a side file")
    }
}
