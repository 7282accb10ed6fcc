// BACKUP_ENCRYPTION_KEY decoding: Node-compatible base64, then hex, then raw UTF-8
// (EncryptionKey(parsing:), Envelope/EncryptionKey.swift). The value comes from env files and the
// environment, i.e. from whoever can write /etc/laju-backup/*.env or the app's .env.
import FuzzSupport
@testable import LajuBackup

@_cdecl("fuzz_key_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    // The decoders on their own: Node's lenient base64 yields 3 bytes per 4 symbols at most, hex
    // one byte per two characters.
    let b64 = EncryptionKey.nodeBase64(text)
    let hex = EncryptionKey.nodeHex(text)
    fuzzCheck(
        b64.count <= text.utf16.count * 3 / 4 + 1, "base64 gave \(b64.count) bytes from \(text.utf16.count) code units")
    fuzzCheck(hex.count <= text.utf16.count / 2, "hex gave \(hex.count) bytes from \(text.utf16.count) code units")
    do {
        let key = try EncryptionKey(parsing: text)
        fuzzCheck(key.bytes.count == 32, "a key of \(key.bytes.count) bytes was accepted")
        // The first decoding that gives 32 bytes wins, in the original's order.
        if b64.count == 32 {
            fuzzCheck(key.bytes == b64, "base64 should win")
        } else if hex.count == 32 {
            fuzzCheck(key.bytes == hex, "hex should win")
        } else {
            fuzzCheck(key.bytes == Array(text.utf8), "raw text should win")
        }
        // Its description never shows the key (only the fingerprint).
        fuzzCheck(!key.description.contains(text) || text.isEmpty, "description shows the key text")
    } catch is LajuError {
        // Refused: the decodings gave no 32-byte value.
        fuzzCheck(b64.count != 32 && hex.count != 32 && text.utf8.count != 32, "a 32-byte decoding was refused")
    } catch {
        fuzzCheck(false, "unexpected error type \(type(of: error))")
    }
    return 0
}
