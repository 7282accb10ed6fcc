import XCTest
@testable import LajuBackup

final class EncryptionKeyTests: XCTestCase {
    func testGuideExampleIsRefusedWithLengths() {
        XCTAssertThrowsError(try EncryptionKey(parsing: "3q2+7wAAAAAAAAAAAAAAAAAAAA==")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("as base64: 19 bytes"), text)
            XCTAssertFalse(text.contains("3q2+7w"), "the key must never be echoed: \(text)")
        }
    }

    func testHexKeyWinsOverBase64() throws {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        let key = try EncryptionKey(parsing: hex)
        XCTAssertEqual(key.bytes.hexString, hex)
    }
}
