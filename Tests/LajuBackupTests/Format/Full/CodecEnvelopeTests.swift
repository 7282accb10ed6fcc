import Foundation
import XCTest
@testable import LajuBackup

/// HKDF-SHA256 against RFC 5869's own test vectors (appendix A, cases 1 to 3).
final class HKDFTests: XCTestCase {
    func hex(_ s: String) -> [UInt8] { ObjectMetadata.hexBytes(s)! }

    func testRFC5869Vectors() throws {
        // A.1: basic test case with SHA-256.
        XCTAssertEqual(
            try hkdfSHA256(
                key: hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), salt: hex("000102030405060708090a0b0c"),
                info: hex("f0f1f2f3f4f5f6f7f8f9"), count: 42
            ).hexString,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        // A.2: longer inputs and outputs.
        let ikm = hex((0x00...0x4f).map { String(format: "%02x", $0) }.joined())
        let salt = hex((0x60...0xaf).map { String(format: "%02x", $0) }.joined())
        let info = hex((0xb0...0xff).map { String(format: "%02x", $0) }.joined())
        XCTAssertEqual(
            try hkdfSHA256(key: ikm, salt: salt, info: info, count: 82).hexString,
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"
        )
        // A.3: zero-length salt and info.
        XCTAssertEqual(
            try hkdfSHA256(key: hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), info: [], count: 42).hexString,
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    }

    func testMACKeyIsDerivedNotTheKeyItself() throws {
        let key = try EncryptionKey.generate()
        let mac = try key.integrityMACKey()
        XCTAssertEqual(mac.count, 32)
        XCTAssertNotEqual(mac, key.bytes)
        XCTAssertEqual(mac, try key.integrityMACKey(), "deterministic")
        XCTAssertNotEqual(mac, try EncryptionKey.generate().integrityMACKey())
    }
}

/// gzip, zstd and xz through the envelope (`cs_seal_file_ex` / `cs_open_file_ex`), in process:
/// round trips at several levels and shapes, the digests of the seal pass against digests of the
/// finished file, the plaintext MAC both ways, and authentic objects whose stream is wrong.
final class CodecEnvelopeTests: XCTestCase {
    var dir: CoreTestDir!
    var key: EncryptionKey!

    override func setUpWithError() throws {
        dir = try CoreTestDir()
        key = try EncryptionKey.generate()
    }

    override func tearDown() { dir = nil }

    func write(_ bytes: [UInt8]) throws -> String {
        let p = dir.file("in-\(UUID().uuidString.prefix(6))")
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    var sample: [UInt8] {
        get throws {
            // Text that compresses and random bytes that do not, across several 1 MiB chunks.
            var b = Array(
                String(repeating: "INSERT INTO orders VALUES (7, 'shipped to customer');\n", count: 40_000).utf8)
            b += try secureRandomBytes(1_500_000)
            b += Array(String(repeating: "events token payload ", count: 30_000).utf8)
            return b
        }
    }

    func testRoundTripsEveryCodecAndLevel() throws {
        let bytes = try sample
        let input = try write(bytes)
        let macKey = try key.integrityMACKey()
        let cases: [(Codec, Int32, Int32)] = [
            (.gzip, 1, 2), (.gzip, 6, 1), (.gzip, 9, 2), (.zstd, 1, 1), (.zstd, 3, 2),
            (.zstd, 19, 2), (.xz, 0, 2), (.xz, 3, 1), (.xz, 6, 1)
        ]
        for (codec, level, threads) in cases {
            let label = "\(codec) -\(level) x\(threads)"
            let object = dir.file("obj-\(codec)-\(level)-\(threads)")
            let sealed = try Envelope.seal(
                input: input, output: object, encryptionKey: key,
                options: .init(codec: codec, level: level, threads: threads, macKey: macKey))
            XCTAssertEqual(sealed.plainBytes, Int64(bytes.count), label)
            XCTAssertLessThan(sealed.objectBytes, Int64(bytes.count), label)
            let stored = try read(object)
            XCTAssertEqual(Int64(stored.count), sealed.objectBytes, label)
            XCTAssertEqual(sealed.md5, Digest.hash(.md5, stored), label)
            XCTAssertEqual(sealed.plainMAC, hmacSHA256(key: macKey, data: bytes), "\(label): MAC of the plaintext")
            // The stream inside starts with its codec's magic (decrypting with the same key stream).
            let magic: [UInt8] =
                switch codec {
                case .gzip: [0x1f, 0x8b]
                case .zstd: [0x28, 0xb5, 0x2f, 0xfd]
                case .xz: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]
                }
            let out = object + ".out"
            let opened = try Envelope.open(
                input: object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag,
                codec: codec, macKey: macKey, expectedMD5: sealed.md5)
            XCTAssertEqual(try read(out), bytes, label)
            XCTAssertEqual(opened.plainMAC, sealed.plainMAC, label)
            XCTAssertEqual(opened.md5, sealed.md5, label)
            let raw = dir.file("raw-\(codec)-\(level)")
            try Data(
                try CoreShell.run(
                    "python3 \(CoreShell.quote(Self.tools + "/laju_envelope.py")) open-raw \(CoreShell.quote(object)) \(CoreShell.quote(Data(key.bytes).base64EncodedString())) \(Data(sealed.iv).base64EncodedString()) \(Data(sealed.tag).base64EncodedString())"
                )
            ).write(to: URL(fileURLWithPath: raw))
            XCTAssertEqual(Array(try read(raw).prefix(magic.count)), magic, label)
        }
    }

    static let tools = TestPaths.tools

    func testEmptyAndTinyInputs() throws {
        for codec in Codec.allCases {
            for bytes in [[UInt8](), [42]] {
                let input = try write(bytes)
                let object = input + ".\(codec)"
                let sealed = try Envelope.seal(
                    input: input, output: object, encryptionKey: key,
                    options: .init(codec: codec, level: codec.levelSetting.defaultLevel.asInt32, threads: 2))
                let out = object + ".out"
                _ = try Envelope.open(
                    input: object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag, codec: codec)
                XCTAssertEqual(try read(out), bytes, "\(codec) \(bytes.count) bytes")
            }
        }
    }

    /// The per-part digests of the seal pass are those of the finished object's byte ranges.
    func testPartDigestsMatchTheObject() throws {
        let input = try write(try sample)
        for (codec, partSize) in [(Codec.gzip, Int64(1 << 20)), (.zstd, 300_000), (.xz, 5 << 20)] {
            let object = dir.file("parts-\(codec)")
            let sealed = try Envelope.seal(
                input: input, output: object, encryptionKey: key,
                options: .init(codec: codec, level: 1, threads: 2, partSize: partSize, sha256: true))
            let stored = try read(object)
            let parts = try XCTUnwrap(sealed.parts)
            XCTAssertEqual(parts.partSize, partSize)
            let count = (stored.count + Int(partSize) - 1) / Int(partSize)
            XCTAssertEqual(parts.md5.count, count, "\(codec)")
            XCTAssertEqual(parts.sha256?.count, count, "\(codec)")
            for i in 0..<count {
                let slice = Array(stored[(i * Int(partSize))..<min(stored.count, (i + 1) * Int(partSize))])
                XCTAssertEqual(parts.md5[i], Digest.hash(.md5, slice), "\(codec) part \(i)")
                XCTAssertEqual(parts.sha256?[i], Digest.hash(.sha256, slice), "\(codec) part \(i)")
            }
            XCTAssertEqual(sealed.sha256, Digest.hash(.sha256, stored))
            XCTAssertEqual(sealed.md5, Digest.hash(.md5, stored))
        }
    }

    /// A stream of another codec than the one named, inside an authentic envelope, is refused as
    /// damaged (never passed through as it is), and no output is left.
    func testWrongCodecIsRefused() throws {
        let input = try write(try sample)
        for (made, named) in [(Codec.gzip, Codec.zstd), (.zstd, .xz), (.xz, .gzip), (.zstd, .gzip)] {
            let object = dir.file("wrong-\(made)-\(named)")
            let sealed = try Envelope.seal(
                input: input, output: object, encryptionKey: key, options: .init(codec: made, level: 1))
            let out = object + ".out"
            XCTAssertThrowsError(
                try Envelope.open(
                    input: object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag, codec: named)
            ) { e in
                XCTAssertEqual((e as? LajuError)?.kind, .integrity, "\(made) as \(named): \(e)")
                XCTAssertTrue("\(e)".contains("damaged"), "\(e)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }

    /// An authentic envelope around a truncated or corrupted zstd/xz stream (sealed with the
    /// independent Python implementation): `.integrity` ("damaged"), not "wrong key", and no output.
    func testAuthenticButBrokenStreamsAreRefused() throws {
        let bytes = try sample
        let input = try write(bytes)
        for codec in [Codec.zstd, .xz] {
            let tool = codec == .zstd ? "zstd -q -3 -c" : "xz -3 -c"
            let stream = try CoreShell.run("\(tool) \(CoreShell.quote(input))")
            var corrupt = stream
            corrupt[stream.count / 2] ^= 0x55
            var trailing = stream
            trailing += [1, 2, 3, 4]
            for (shape, broken) in [
                ("truncated", Array(stream.prefix(stream.count * 2 / 3))),
                ("cut at the end", Array(stream.dropLast(3))),
                ("corrupted", corrupt), ("garbage after", trailing)
            ] {
                let label = "\(codec) \(shape)"
                let raw = try write(broken)
                let object = raw + ".enc"
                let made = try CoreShell.text(
                    "python3 \(CoreShell.quote(Self.tools + "/laju_envelope.py")) seal-gz \(CoreShell.quote(raw)) \(CoreShell.quote(object)) \(CoreShell.quote(Data(key.bytes).base64EncodedString()))"
                )
                let m = try JSONSerialization.jsonObject(with: Data(made.utf8)) as! [String: String]
                let out = object + ".out"
                XCTAssertThrowsError(
                    try Envelope.open(
                        input: object, output: out, encryptionKey: key, iv: Array(Data(base64Encoded: m["iv"]!)!),
                        tag: Array(Data(base64Encoded: m["tag"]!)!), codec: codec)
                ) { e in
                    XCTAssertEqual((e as? LajuError)?.kind, .integrity, "\(label): \(e)")
                    XCTAssertTrue("\(e)".contains("damaged"), "\(label): \(e)")
                }
                XCTAssertFalse(FileManager.default.fileExists(atPath: out), label)
            }
        }
    }

    func testMetadataNamesTheCodecAndChecksItsMAC() throws {
        var m = ObjectMetadata(
            iv: Array(repeating: 1, count: 12), tag: Array(repeating: 2, count: 16), checksum: "ab",
            compression: .zstd, integrityMAC: Array(repeating: 0xcd, count: 32))
        XCTAssertEqual(m.pairs["comp"], "zstd")
        XCTAssertEqual(m.pairs["integrity-mac"], String(repeating: "cd", count: 32))
        XCTAssertEqual(try ObjectMetadata(pairs: m.pairs), m)
        m.compression = .gzip
        m.integrityMAC = nil
        XCTAssertEqual(m.pairs["comp"], "gzip")
        XCTAssertNil(m.pairs["integrity-mac"])
        for (name, value) in [
            ("comp", "brotli"), ("comp", ""), ("integrity-mac", "cd"),
            ("integrity-mac", String(repeating: "zz", count: 32)),
            ("integrity-mac", String(repeating: "cd", count: 33))
        ] {
            var p = m.pairs
            p[name] = value
            XCTAssertThrowsError(try ObjectMetadata(pairs: p), "\(name)=\(value)") { e in
                XCTAssertEqual((e as? LajuError)?.kind, .integrity)
            }
        }
        var p = m.pairs
        p["comp"] = "XZ"
        XCTAssertEqual(try ObjectMetadata(pairs: p).compression, .xz)
    }
}

extension Int {
    var asInt32: Int32 { Int32(self) }
}
