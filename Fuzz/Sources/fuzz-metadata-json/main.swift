// Object metadata from the local store's side file (`<object>.meta.json`, Storage/LocalStore.swift):
// JSONSerializationLite.decode (JSONDecoder into [String: String]) then ObjectMetadata(pairs:).
// The file sits in the backup directory, which may be a shared or mounted volume.
import FuzzSupport
import Foundation
@testable import LajuBackup

@_cdecl("fuzz_metadata_json_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // As LocalStore.head(key:) reads it.
    guard let pairs = try? JSONSerializationLite.decode(Data(fuzzBytes(data, size))) else { return 0 }
    // What decoding accepted, encoding writes and decoding reads back the same.
    if let json = try? JSONSerializationLite.encode(pairs) {
        fuzzCheck((try? JSONSerializationLite.decode(json)) == pairs, "the side file does not round-trip")
    }
    guard let meta = try? ObjectMetadata(pairs: pairs) else { return 0 }
    fuzzCheck(
        meta.iv.count == 12 && meta.tag.count == 16,
        "accepted an IV of \(meta.iv.count) or a tag of \(meta.tag.count) bytes")
    fuzzCheck((try? ObjectMetadata(pairs: meta.pairs)) == meta, "metadata changes when written and read again")
    return 0
}
