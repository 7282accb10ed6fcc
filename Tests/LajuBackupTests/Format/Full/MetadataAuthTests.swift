import Foundation
import XCTest

@testable import LajuBackup

/// What the metadata MAC binds: every pair, the identity and the object's own key, under the key.
/// Anything changed, added, removed or moved without the key fails; metadata without a MAC (the
/// Laju scripts', earlier versions') is never "authenticated".
final class MetadataAuthTests: XCTestCase {
    let macKey = Array(repeating: UInt8(7), count: 32)
    let objectKey = "backups/app.sqlite3-2026-12-07T01:00-1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed.db.gz.enc"

    func bound() -> [String: String] {
        var m = ObjectMetadata(
            iv: Array(repeating: 1, count: 12), tag: Array(repeating: 2, count: 16), checksum: "ab",
            keyFingerprint: "0011223344556677", sourceName: "app.sqlite3", sourceBytes: 4096,
            sourceID: "8899aabbccddeeff", tool: "laju-backup/0.1.0")
        m.bind(to: .declared("shop"), objectKey: objectKey, macKey: macKey)
        return m.pairs
    }

    func testBoundMetadataAuthenticatesAndSurvivesParsing() throws {
        let pairs = bound()
        XCTAssertTrue(ObjectMetadata.authenticated(pairs: pairs, objectKey: objectKey, macKey: macKey))
        let parsed = try ObjectMetadata(pairs: pairs)
        XCTAssertEqual(parsed.identity, .declared("shop"))
        XCTAssertEqual(parsed.pairs, pairs)
        // S3 may hand header names back in another case.
        let upper = Dictionary(uniqueKeysWithValues: pairs.map { ($0.key.uppercased(), $0.value) })
        XCTAssertTrue(ObjectMetadata.authenticated(pairs: upper, objectKey: objectKey, macKey: macKey))
    }

    func testAnyChangeWithoutTheKeyFails() {
        let pairs = bound()
        var changes: [(String, [String: String])] = []
        for name in pairs.keys where name != "auth" {
            var p = pairs
            p[name] = (p[name] ?? "") + "x"
            changes.append(("changed \(name)", p))
            p = pairs
            p.removeValue(forKey: name)
            changes.append(("removed \(name)", p))
        }
        var added = pairs
        added["extra"] = "1"
        changes.append(("added a pair", added))
        var noMAC = pairs
        noMAC.removeValue(forKey: "auth")
        changes.append(("no auth", noMAC))
        var other = pairs
        other["identity"] = "db:" + String(repeating: "ab", count: 16)
        changes.append(("another identity", other))
        for (label, p) in changes {
            XCTAssertFalse(ObjectMetadata.authenticated(pairs: p, objectKey: objectKey, macKey: macKey), label)
        }
        XCTAssertFalse(
            ObjectMetadata.authenticated(pairs: pairs, objectKey: objectKey + "x", macKey: macKey), "moved")
        XCTAssertFalse(
            ObjectMetadata.authenticated(pairs: pairs, objectKey: objectKey, macKey: Array(repeating: 8, count: 32)),
            "another key")
    }

    /// Length prefixes keep a pair's name and value apart: moving bytes between them changes the MAC.
    func testFieldsDoNotRunTogether() {
        let a = ObjectMetadata.mac(pairs: ["ab": "c"], objectKey: "k", macKey: macKey)
        let b = ObjectMetadata.mac(pairs: ["a": "bc"], objectKey: "k", macKey: macKey)
        let c = ObjectMetadata.mac(pairs: ["a": "b"], objectKey: "kc", macKey: macKey)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(b, c)
    }

    func testIdentitiesAndNames() {
        for good in ["shop", "a", "Shop-2.prod_x", String(repeating: "n", count: 64)] {
            XCTAssertTrue(Identity.isValidName(good), good)
            XCTAssertEqual(Identity(parsing: "name:" + good)?.declaredName, good)
        }
        for bad in ["", "-x", ".x", "_x", "a/b", "../x", "a b", "naïve", String(repeating: "n", count: 65)] {
            XCTAssertFalse(Identity.isValidName(bad), bad)
            XCTAssertNil(Identity(parsing: "name:" + bad), bad)
        }
        let hex = String(repeating: "0f", count: 16)
        XCTAssertEqual(Identity(parsing: "db:" + hex)?.databaseID?.hex, hex)
        for bad in ["db:" + hex.uppercased(), "db:" + hex.dropLast(), "db:", "shop", "name", "x:shop"] {
            XCTAssertNil(Identity(parsing: bad), bad)
        }
    }
}
