import Foundation
import XCTest
@testable import LajuBackup

/// `BACKUP_ENCRYPTION_KEY` parsing must match the original exactly, and the original's decoder is
/// Node's `Buffer.from`. So every row of the table is decoded by Node in the test itself and our
/// parser is compared with what Node says, not with values we wrote down.
final class EncryptionKeyTests: XCTestCase {
    func testGuideExampleIsRefusedWithLengths() {
        XCTAssertThrowsError(try EncryptionKey(parsing: "3q2+7wAAAAAAAAAAAAAAAAAAAA==")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("as base64: 19 bytes"), text)
            XCTAssertTrue(text.contains("as hex: 0 bytes"), text)
            XCTAssertTrue(text.contains("as text: 28 bytes"), text)
            XCTAssertEqual((error as? LajuError)?.kind, .usage)
            XCTAssertFalse(text.contains("3q2+7w"), "the key must never be echoed: \(text)")
        }
    }

    func testHexKeyWinsOverBase64() throws {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        let key = try EncryptionKey(parsing: hex)
        XCTAssertEqual(key.bytes.hexString, hex)
    }

    /// 32 bytes whose base64 uses '+' and '/' (and so '-' and '_' in the URL-safe alphabet).
    static let sample: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: 0xf8 &+ $0 &* 37) }

    static var table: [(name: String, text: String)] {
        let std = Data(sample).base64EncodedString()
        let url = std.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let hex = sample.hexString
        var wrapped = ""
        for (i, c) in std.enumerated() { wrapped.append(c); if i % 16 == 15 { wrapped += "\n" } }
        return [
            ("base64 standard", std),
            ("base64 standard, trailing newline (output of base64(1))", std + "\n"),
            ("base64 no padding", std.replacingOccurrences(of: "=", with: "")),
            ("base64 URL-safe", url),
            ("base64 URL-safe no padding", url.replacingOccurrences(of: "=", with: "")),
            ("base64 wrapped at 16 with spaces", " " + wrapped + "  \t"),
            ("base64 with foreign characters", std.replacingOccurrences(of: "A", with: "A.")),
            ("base64 padding in the middle stops decoding", "AAAA=" + std),
            ("hex lower", hex),
            ("hex upper", hex.uppercased()),
            ("hex with trailing junk", hex + "zz"),
            ("hex one digit short", String(hex.dropLast())),
            ("64-hex that is also valid base64 (hex wins, 48 as base64)", String(repeating: "ab", count: 32)),
            ("raw 32-byte ASCII", "abcdefghijklmnopqrstuvwxyz012345"),
            ("raw 32-byte with punctuation", "correct horse battery staple!!!!"),
            ("raw 32 bytes of UTF-8 (16 Cyrillic letters)", "ключключключключ"),
            ("43 base64 digits, no padding", String(repeating: "B", count: 43)),
            // Node reads UTF-16 code units truncated to a byte: "Ł" (U+0141) decodes as "A", and an
            // emoji's high surrogate (0xD83D) as "=", which ends base64 decoding.
            ("non-ASCII read as low bytes (43 x U+0141)", String(repeating: "\u{141}", count: 43)),
            ("emoji ends base64 early", String(std.prefix(20)) + "\u{1F600}" + String(std.dropFirst(20))),
            ("non-ASCII inside hex", String(repeating: "\u{161}\u{162}", count: 32)),
            ("guide example (19 bytes)", "3q2+7wAAAAAAAAAAAAAAAAAAAA=="),
            ("too short", "c2hvcnQ="),
            ("31 raw bytes", "abcdefghijklmnopqrstuvwxyz01234"),
            ("empty-ish", "   ")
        ]
    }

    /// What Node's Buffer.from gives for each string as base64, hex and UTF-8.
    func nodeDecodings(_ strings: [String]) throws -> [[String: String]] {
        _ = try CoreShell.run("command -v node")
        let input = try JSONEncoder().encode(strings)
        let out = try CoreShell.run(
            """
            node -e 'const s = JSON.parse(require("fs").readFileSync(0, "utf8"));
              process.stdout.write(JSON.stringify(s.map(t => ({
                b64: Buffer.from(t, "base64").toString("hex"),
                hex: Buffer.from(t, "hex").toString("hex"),
                raw: Buffer.from(t, "utf8").toString("hex")}))))'
            """, stdin: Array(input))
        return try JSONDecoder().decode([[String: String]].self, from: Data(out))
    }

    func testParsingMatchesNodeBufferForEveryRow() throws {
        let table = Self.table
        let node = try nodeDecodings(table.map(\.text))
        XCTAssertEqual(node.count, table.count)
        var accepted = 0, refused = 0
        for (row, n) in zip(table, node) {
            // Each decoding, byte for byte.
            XCTAssertEqual(EncryptionKey.nodeBase64(row.text).hexString, n["b64"], "base64: \(row.name)")
            XCTAssertEqual(EncryptionKey.nodeHex(row.text).hexString, n["hex"], "hex: \(row.name)")
            // The original's rule: first of base64, hex, UTF-8 that is 32 bytes.
            let expected = [n["b64"]!, n["hex"]!, n["raw"]!].first { $0.count == 64 }
            do {
                let key = try EncryptionKey(parsing: row.text)
                XCTAssertEqual(key.bytes.hexString, expected, row.name)
                accepted += 1
            } catch let e as LajuError {
                XCTAssertNil(expected, "\(row.name): Node finds a 32-byte decoding but we refused: \(e)")
                XCTAssertEqual(e.kind, .usage)
                let lengths =
                    "as base64: \(n["b64"]!.count / 2) bytes, as hex: \(n["hex"]!.count / 2) bytes, as text: \(n["raw"]!.count / 2) bytes"
                XCTAssertTrue(e.message.contains(lengths), "\(row.name): \(e.message)")
                if row.text.trimmingCharacters(in: .whitespaces).count > 3 {
                    XCTAssertFalse(e.description.contains(row.text), "key echoed: \(row.name)")
                }
                refused += 1
            }
        }
        XCTAssertGreaterThanOrEqual(accepted, 15)
        XCTAssertGreaterThanOrEqual(refused, 4)
        // The rows that pin the precedence: hex beats base64, standard and URL-safe agree.
        XCTAssertEqual(
            try EncryptionKey(parsing: String(repeating: "ab", count: 32)).bytes, [UInt8](repeating: 0xab, count: 32))
        XCTAssertEqual(try EncryptionKey(parsing: table[3].text).bytes, Self.sample)
    }

    func testRandomKeysAgreeWithNode() throws {
        // Fresh random keys in each spelling users paste: 20 of each, all checked against Node.
        var strings: [String] = []
        for _ in 0..<20 {
            let k = try secureRandomBytes(32)
            let b64 = Data(k).base64EncodedString()
            strings += [
                b64,
                b64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: ""),
                k.hexString.uppercased()
            ]
        }
        let node = try nodeDecodings(strings)
        for (s, n) in zip(strings, node) {
            let expected = [n["b64"]!, n["hex"]!, n["raw"]!].first { $0.count == 64 }
            XCTAssertEqual(try EncryptionKey(parsing: s).bytes.hexString, expected)
        }
    }

    func testKeyNeverAppearsInDescriptionOrFingerprint() throws {
        let key = try EncryptionKey.generate()
        let b64 = Data(key.bytes).base64EncodedString()
        XCTAssertFalse("\(key)".contains(b64))
        XCTAssertFalse("\(key)".contains(key.bytes.hexString))
        XCTAssertEqual(key.fingerprint.count, 16)
        XCTAssertEqual(try EncryptionKey(bytes: key.bytes).fingerprint, key.fingerprint)
        XCTAssertNotEqual(try EncryptionKey.generate().fingerprint, key.fingerprint)
        XCTAssertThrowsError(try EncryptionKey(bytes: [1, 2, 3]))
    }
}
