import Foundation
import XCTest
@testable import LajuBackup

/// NIST CAVP AES-256-GCM known-answer vectors (SP 800-38D, CAVS 14.0) through the C core
/// (`AESGCM.seal/open` → `cs_aes256gcm_encrypt/decrypt`, the EVP setup the envelope uses).
/// The files are whole sections of NIST's own; see Resources/vectors/NOTICE.
final class AESGCMVectorTests: XCTestCase {
    static let dir = TestPaths.resources.appendingPathComponent("vectors")

    func testEncryptVectors() throws {
        let vectors = try CAVP.load(Self.dir.appendingPathComponent("gcmEncryptExtIV256.rsp"))
        var checked = 0
        for v in vectors {
            let tagLength = v.header["Taglen"]! / 8
            let (ct, tag) = try AESGCM.seal(
                key: v["Key"], iv: v["IV"], aad: v["AAD"], plaintext: v["PT"],
                tagLength: tagLength)
            XCTAssertEqual(ct.hexString, v["CT"].hexString, v.name)
            XCTAssertEqual(tag.hexString, v["Tag"].hexString, v.name)
            checked += 1
        }
        // Sections with 96-bit IVs (the envelope's), tags of 128/96/32 bits, and 8/1024-bit IVs.
        XCTAssertGreaterThan(checked, 700, "too few vectors were read: the file or the parser broke")
        XCTAssertTrue(vectors.contains { $0.header["IVlen"] == 1024 })
        XCTAssertTrue(vectors.contains { $0.header["PTlen"] == 408 && $0.header["AADlen"] == 720 })
    }

    func testDecryptVectorsIncludingForgeries() throws {
        let vectors = try CAVP.load(Self.dir.appendingPathComponent("gcmDecrypt256.rsp"))
        var passed = 0, refused = 0
        for v in vectors {
            if v.fails {
                XCTAssertThrowsError(
                    try AESGCM.open(key: v["Key"], iv: v["IV"], aad: v["AAD"], ciphertext: v["CT"], tag: v["Tag"]),
                    v.name
                ) { error in
                    XCTAssertEqual((error as? CError)?.status, .authentication, "\(v.name): \(error)")
                }
                refused += 1
            } else {
                let pt = try AESGCM.open(key: v["Key"], iv: v["IV"], aad: v["AAD"], ciphertext: v["CT"], tag: v["Tag"])
                XCTAssertEqual(pt.hexString, v["PT"].hexString, v.name)
                passed += 1
            }
        }
        XCTAssertGreaterThan(passed, 300)
        XCTAssertGreaterThan(
            refused, 300, "the FAIL cases are the point: a tag check that accepts anything passes the others")
    }

    /// Our own negative checks on a NIST vector: every single-bit flip of ciphertext, tag or IV,
    /// and a wrong key, must be refused (the envelope relies on exactly this).
    func testEveryBitFlipIsRefused() throws {
        let v = try XCTUnwrap(
            CAVP.load(Self.dir.appendingPathComponent("gcmEncryptExtIV256.rsp")).first {
                $0.header["IVlen"] == 96 && $0.header["PTlen"] == 408 && $0.header["Taglen"] == 128
                    && $0.header["AADlen"] == 0
            })
        XCTAssertEqual(try AESGCM.open(key: v["Key"], iv: v["IV"], ciphertext: v["CT"], tag: v["Tag"]), v["PT"])
        var refused = 0
        for field in ["CT", "Tag", "IV", "Key"] {
            for bit in stride(from: 0, to: v[field].count * 8, by: 7) {
                var f = v.fields
                f[field]![bit / 8] ^= UInt8(1 << (bit % 8))
                XCTAssertThrowsError(
                    try AESGCM.open(key: f["Key"]!, iv: f["IV"]!, ciphertext: f["CT"]!, tag: f["Tag"]!),
                    "\(field) bit \(bit)"
                ) { error in
                    XCTAssertEqual((error as? CError)?.status, .authentication)
                }
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 100)
    }
}

/// A minimal reader for NIST `.rsp` files: `[Name = n]` section headers, then `Count = i` entries
/// of `Name = hex` lines; a bare `FAIL` line marks a vector whose tag must not verify.
struct CAVP {
    struct Vector {
        var header: [String: Int]
        var fields: [String: [UInt8]]
        var fails = false
        var name: String
        subscript(_ key: String) -> [UInt8] { fields[key] ?? [] }
    }

    static func load(_ url: URL) throws -> [Vector] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var header: [String: Int] = [:]
        var inHeader = false
        var out: [Vector] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                if !inHeader { header = [:]; inHeader = true }
                let kv = line.dropFirst().dropLast().components(separatedBy: " = ")
                header[kv[0]] = Int(kv[1])
                continue
            }
            inHeader = false
            if line == "FAIL" { out[out.count - 1].fails = true; continue }
            let kv = line.components(separatedBy: " = ")
            let name = kv[0], value = kv.count > 1 ? kv[1] : ""
            if name == "Count" {
                out.append(
                    Vector(header: header, fields: [:], name: "\(url.lastPathComponent) \(header) Count \(value)"))
            } else {
                out[out.count - 1].fields[name] = try hexBytes(value)
            }
        }
        return out
    }
}

/// Hex to bytes for test data; throws on odd length or a non-hex digit.
func hexBytes(_ s: String) throws -> [UInt8] {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { throw CocoaError(.formatting) }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let b = UInt8(String(decoding: u[i..<i + 2], as: UTF8.self), radix: 16) else {
            throw CocoaError(.formatting)
        }
        out.append(b)
        i += 2
    }
    return out
}
