import XCTest
@testable import LajuBackup

/// The contract of `ObjectStore` (its documentation), checked the same way against every store, in
/// the manner of restic's backend test suite and Litestream's `RunWithReplicaClient`: a store
/// joins by getting a test class that hands `run` a store and a way to leave a partial upload
/// behind, as a killed run would (`StoreConformanceTests`).
///
/// Each check works under a fresh prefix of its own, so that stores need not start empty.
struct StoreConformance {
    let store: ObjectStore
    /// Files to upload and download (a private temp folder).
    let scratch: String
    /// Leaves an upload that never finished under the key, as a run killed mid-upload does.
    let leavePartialUpload: (String) throws -> Void

    typealias Check = (name: String, run: @Sendable (StoreConformance, String) throws -> Void)

    static let checks: [Check] = [
        ("put, head, get and getRange agree", { try $0.putThenRead(prefix: $1) }),
        ("a failed put leaves nothing and keeps the object it would replace", { try $0.putIsAllOrNothing(prefix: $1) }),
        ("a missing object is not found, for every call", { try $0.missingIsNotFound(prefix: $1) }),
        ("ranges are exact; one past the end is an error, never fewer bytes", { try $0.rangesAreExact(prefix: $1) }),
        (
            "list gives exactly the prefix's objects, in key order, with their sizes",
            { try $0.listIsOrdered(prefix: $1) }
        ),
        ("delete is idempotent", { try $0.deleteIsIdempotent(prefix: $1) }),
        ("partial uploads are listed, not as objects, and removed", { try $0.partialUploadsAreRemoved(prefix: $1) })
    ]

    /// Runs every check; each failure is reported with the check's name, and the others still run.
    static func run(_ make: () throws -> StoreConformance, file: StaticString = #filePath, line: UInt = #line) {
        for check in checks {
            let prefix = "conformance-\(UUID().uuidString.prefix(8).lowercased())/"
            do {
                try check.run(try make(), prefix)
            } catch {
                XCTFail("\(check.name): \(error)", file: file, line: line)
            }
        }
    }

    // MARK: - Checks

    func putThenRead(prefix: String) throws {
        let key = prefix + "object"
        let bytes = Self.pattern(count: 300_000, seed: 1)
        try put(key, bytes, metadata: ["checksum": Digest.hash(.md5, bytes).hexString, "iv": "aXY="])
        let info = try store.head(key: key)
        XCTAssertEqual(info.key, key)
        XCTAssertEqual(info.size, Int64(bytes.count))
        XCTAssertEqual(info.metadata["checksum"], Digest.hash(.md5, bytes).hexString)
        XCTAssertEqual(info.metadata["iv"], "aXY=")
        XCTAssertEqual(try download(key), bytes)
        XCTAssertEqual(try store.getRange(key: key, offset: 0, length: Int64(bytes.count)), bytes)
        XCTAssertEqual(try store.getRange(key: key, offset: 123_457, length: 1000), Array(bytes[123_457..<124_457]))
    }

    /// Digests that do not match the file (a flipped byte between the seal pass and the upload):
    /// the put throws, nothing is visible under the key but what was there before, and no
    /// unfinished upload (billed parts, a hidden file) is left.
    func putIsAllOrNothing(prefix: String) throws {
        let key = prefix + "object"
        let old = Self.pattern(count: 1000, seed: 2)
        try put(key, old)
        // Larger than a part where the store uploads in parts, so that the part path is checked.
        let partSize = store.uploadDigestNeeds.partSize
        let new = Self.pattern(count: partSize > 0 ? Int(partSize) + 1_000_000 : 2_000_000, seed: 3)
        let wrong = [UInt8](repeating: 0xAB, count: 16)
        var digests = ObjectDigests(md5: wrong)
        if partSize > 0 {
            let count = (Int64(new.count) + partSize - 1) / partSize
            digests.parts = PartDigests(
                partSize: partSize, md5: Array(repeating: wrong, count: Int(count)), sha256: nil)
        }
        let file = try write(new)
        XCTAssertThrowsError(
            try store.put(
                key: key, file: file, size: Int64(new.count), digests: digests, metadata: [:],
                progress: nil)
        ) { error in
            XCTAssertFalse((error as? LajuError)?.isNotFound ?? true, "\(error)")
        }
        XCTAssertEqual(try download(key), old, "the object the failed put would have replaced")
        XCTAssertEqual(try store.list(prefix: prefix).map(\.key), [key])
        XCTAssertEqual(try store.partialUploads(prefix: prefix), [])
        // And a put that fails where nothing was before leaves nothing.
        let fresh = prefix + "fresh"
        XCTAssertThrowsError(
            try store.put(
                key: fresh, file: file, size: Int64(new.count), digests: digests, metadata: [:],
                progress: nil))
        try assertNotFound { try store.head(key: fresh) }
        XCTAssertEqual(try store.partialUploads(prefix: prefix), [])
    }

    func missingIsNotFound(prefix: String) throws {
        let key = prefix + "missing"
        try assertNotFound { try store.head(key: key) }
        let target = scratch + "/missing-\(UUID().uuidString)"
        try assertNotFound { try store.get(key: key, to: target, progress: nil) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "a failed get leaves no file")
        try assertNotFound { try store.getRange(key: key, offset: 0, length: 1) }
        XCTAssertFalse(try store.delete(key: key))
        XCTAssertEqual(try store.list(prefix: prefix), [])
    }

    func rangesAreExact(prefix: String) throws {
        let key = prefix + "object"
        let bytes = Self.pattern(count: 10_000, seed: 4)
        try put(key, bytes)
        XCTAssertEqual(try store.getRange(key: key, offset: 9_990, length: 10), Array(bytes[9_990...]))
        XCTAssertEqual(try store.getRange(key: key, offset: 0, length: 1), [bytes[0]])
        // Fewer bytes than asked for is an error: a reader must never take a short answer as whole.
        XCTAssertThrowsError(try store.getRange(key: key, offset: 9_990, length: 11))
        XCTAssertThrowsError(try store.getRange(key: key, offset: 10_000, length: 1))
    }

    func listIsOrdered(prefix: String) throws {
        let sizes = ["b": 3, "a/c": 1, "a-b": 7, "a/b": 2, "c/d/e": 5, "B": 4]
        for (name, size) in sizes.sorted(by: { $0.key > $1.key }) {
            try put(prefix + name, Self.pattern(count: size, seed: size))
        }
        try put("x" + prefix + "outside", [1])
        defer { _ = try? store.delete(key: "x" + prefix + "outside") }
        let listed = try store.list(prefix: prefix)
        // Byte order of the UTF-8 keys, as S3 lists them.
        XCTAssertEqual(
            listed.map(\.key),
            sizes.keys.map { prefix + $0 }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        for o in listed {
            XCTAssertEqual(o.size, Int64(sizes[String(o.key.dropFirst(prefix.count))]!), o.key)
        }
        XCTAssertEqual(try store.list(prefix: prefix + "a/").map(\.key), [prefix + "a/b", prefix + "a/c"])
        XCTAssertEqual(try store.list(prefix: prefix + "zzz"), [])
    }

    func deleteIsIdempotent(prefix: String) throws {
        let key = prefix + "object"
        try put(key, [1, 2, 3])
        XCTAssertTrue(try store.delete(key: key))
        XCTAssertFalse(try store.delete(key: key))
        try assertNotFound { try store.head(key: key) }
        XCTAssertEqual(try store.list(prefix: prefix), [])
    }

    func partialUploadsAreRemoved(prefix: String) throws {
        let key = prefix + "interrupted"
        try leavePartialUpload(key)
        let partials = try store.partialUploads(prefix: prefix)
        XCTAssertEqual(partials.count, 1, "\(partials)")
        guard let partial = partials.first else { return }
        XCTAssertTrue(partial.key == key || partial.key.hasPrefix(prefix), partial.key)
        XCTAssertTrue(partial.uploadID != nil || partial.ownerGone, "a local partial file of a dead run says so")
        XCTAssertEqual(try store.list(prefix: prefix), [], "an unfinished upload is not an object")
        try store.removePartialUpload(partial)
        XCTAssertEqual(try store.partialUploads(prefix: prefix), [])
    }

    // MARK: - Helpers

    /// Bytes that differ at every offset that matters (a range from the wrong place shows).
    static func pattern(count: Int, seed: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var x = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
        for i in 0..<count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            out[i] = UInt8(truncatingIfNeeded: x)
        }
        return out
    }

    func write(_ bytes: [UInt8]) throws -> String {
        let path = scratch + "/upload-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func put(_ key: String, _ bytes: [UInt8], metadata: [String: String] = [:]) throws {
        let file = try write(bytes)
        defer { unlink(file) }
        try store.put(
            key: key, file: file, size: Int64(bytes.count), md5: Digest.hash(.md5, bytes), metadata: metadata,
            progress: nil)
    }

    func download(_ key: String) throws -> [UInt8] {
        let path = scratch + "/download-\(UUID().uuidString)"
        defer { unlink(path) }
        try store.get(key: key, to: path, progress: nil)
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func assertNotFound<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) throws {
        do {
            _ = try body()
            XCTFail("expected not found", file: file, line: line)
        } catch let e as LajuError {
            XCTAssertTrue(e.isNotFound, "expected not found, got \(e)", file: file, line: line)
        }
    }
}
