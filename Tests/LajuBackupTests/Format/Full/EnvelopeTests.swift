import Foundation
import XCTest
@testable import LajuBackup

/// The streaming envelope (`Envelope.seal` / `Envelope.open`, over `cs_seal_file_ex` / `cs_open_file_ex`): round trips of several shapes, and
/// every way an object can be wrong ends in `.integrity` with no output file left.
final class EnvelopeTests: XCTestCase {
    var dir: CoreTestDir!
    var key: EncryptionKey!

    override func setUpWithError() throws {
        dir = try CoreTestDir()
        key = try EncryptionKey.generate()
    }

    override func tearDown() { dir = nil }

    /// Seals `bytes`, returns the object path and the seal result.
    func seal(_ bytes: [UInt8], level: Int32 = 6) throws -> (String, Envelope.Sealed) {
        let input = dir.file("in-\(UUID().uuidString.prefix(6))")
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        let object = input + ".gz.enc"
        let sealed = try Envelope.seal(input: input, output: object, encryptionKey: key, level: level)
        return (object, sealed)
    }

    func read(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    func testRoundTripShapes() throws {
        // Empty, one byte, exactly a chunk-ish size, multi-chunk compressible and incompressible.
        let random = try secureRandomBytes(3 << 20)
        let text = Array(String(repeating: "INSERT INTO items VALUES (42, 'laju');\n", count: 60_000).utf8)
        for (name, bytes, level) in [
            ("empty", [UInt8](), Int32(6)), ("one", [7], 6), ("text", text, 6),
            ("random", random, 1), ("stored", Array(random.prefix(200_000)), 0)
        ] {
            let (object, sealed) = try seal(bytes, level: level)
            XCTAssertEqual(sealed.iv.count, 12, name)
            XCTAssertEqual(sealed.tag.count, 16, name)
            XCTAssertEqual(sealed.plainBytes, Int64(bytes.count), name)
            let objectBytes = try read(object)
            XCTAssertEqual(Int64(objectBytes.count), sealed.objectBytes, name)
            XCTAssertEqual(Digest.hash(.md5, objectBytes), sealed.md5, "MD5 is of the stored bytes: \(name)")
            let out = object + ".out"
            let opened = try Envelope.open(
                input: object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag)
            XCTAssertEqual(try read(out), bytes, name)
            XCTAssertEqual(opened.md5, sealed.md5, name)
            XCTAssertEqual(opened.plainBytes, Int64(bytes.count), name)
        }
        // Compression happened (text) and no IV is ever reused.
        let (_, a) = try seal(text)
        let (_, b) = try seal(text)
        XCTAssertLessThan(a.objectBytes, Int64(text.count) / 20)
        XCTAssertNotEqual(a.iv, b.iv)
    }

    func testOutputIsCreatedExclusively() throws {
        let (object, sealed) = try seal([1, 2, 3])
        let out = dir.file("exists")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out))
        XCTAssertThrowsError(
            try Envelope.open(input: object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag))
        XCTAssertEqual(
            String(decoding: try read(out), as: UTF8.self), "keep me", "an existing file is never overwritten")
    }

    /// Each damage case: `.integrity`, a message naming authentication, and no output file.
    func assertRefused(
        _ object: String, key: EncryptionKey? = nil, iv: [UInt8], tag: [UInt8], expect: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let out = object + ".out-\(UUID().uuidString.prefix(6))"
        XCTAssertThrowsError(
            try Envelope.open(input: object, output: out, encryptionKey: key ?? self.key, iv: iv, tag: tag),
            file: file, line: line
        ) { error in
            guard let e = error as? LajuError else {
                return XCTFail("not a LajuError: \(error)", file: file, line: line)
            }
            XCTAssertEqual(e.kind, .integrity, "\(e)", file: file, line: line)
            XCTAssertTrue(e.message.contains(expect), e.message, file: file, line: line)
        }
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: out), "unauthenticated plaintext left at \(out)", file: file,
            line: line)
    }

    func testDamagedObjectsAreRefusedAndLeaveNothing() throws {
        // Large enough that plaintext is written before the tag is checked at the end.
        let bytes =
            Array(String(repeating: "row,data,more data\n", count: 200_000).utf8) + (try secureRandomBytes(300_000))
        let (object, s) = try seal(bytes)
        let good = try read(object)

        var tampered = good
        tampered[good.count / 2] ^= 0x01
        let tamperedPath = object + ".tampered"
        try Data(tampered).write(to: URL(fileURLWithPath: tamperedPath))
        assertRefused(tamperedPath, iv: s.iv, tag: s.tag, expect: "does not authenticate")

        let truncatedPath = object + ".truncated"
        try Data(good.prefix(good.count - 1000)).write(to: URL(fileURLWithPath: truncatedPath))
        assertRefused(truncatedPath, iv: s.iv, tag: s.tag, expect: "does not authenticate")

        let emptyPath = object + ".empty"
        try Data().write(to: URL(fileURLWithPath: emptyPath))
        assertRefused(emptyPath, iv: s.iv, tag: s.tag, expect: "does not authenticate")

        assertRefused(object, key: try EncryptionKey.generate(), iv: s.iv, tag: s.tag, expect: "does not authenticate")
        var iv = s.iv; iv[0] ^= 0x80
        assertRefused(object, iv: iv, tag: s.tag, expect: "does not authenticate")
        var tag = s.tag; tag[15] ^= 0x01
        assertRefused(object, iv: s.iv, tag: tag, expect: "does not authenticate")
        assertRefused(object, iv: Array(s.iv.prefix(8)), tag: s.tag, expect: "IV must be 12 bytes")
        assertRefused(object, iv: s.iv, tag: Array(s.tag.prefix(12)), expect: "IV must be 12 bytes")

        // The good object still opens: the failures above were the damage, not the setup.
        let out = object + ".ok"
        _ = try Envelope.open(input: object, output: out, encryptionKey: key, iv: s.iv, tag: s.tag)
        XCTAssertEqual(try read(out), bytes)
    }

    /// An authentic object that holds a broken gzip stream is "damaged", not "wrong key".
    func testAuthenticButCorruptGzipIsIntegrityError() throws {
        let notGzip = Array("this is not a gzip stream at all".utf8)
        let iv = try secureRandomBytes(12)
        let (ct, tag) = try AESGCM.seal(key: key.bytes, iv: iv, plaintext: notGzip)
        let object = dir.file("notgzip.enc")
        try Data(ct).write(to: URL(fileURLWithPath: object))
        assertRefused(object, iv: iv, tag: tag, expect: "damaged")

        // A gzip stream cut short (authentic, but the member never ends).
        let full = dir.file("full.gz")
        _ = try CoreShell.run("head -c 200000 /dev/urandom | gzip -6 > \(CoreShell.quote(full))")
        let gz = try CoreShell.run("head -c 50000 \(CoreShell.quote(full))")
        let (ct2, tag2) = try AESGCM.seal(key: key.bytes, iv: iv, plaintext: gz)
        let object2 = dir.file("cutgzip.enc")
        try Data(ct2).write(to: URL(fileURLWithPath: object2))
        assertRefused(object2, iv: iv, tag: tag2, expect: "truncated")
    }

    func testMissingInputIsLocalErrorAndCreatesNothing() throws {
        let out = dir.file("never")
        XCTAssertThrowsError(try Envelope.seal(input: dir.file("missing"), output: out, encryptionKey: key, level: 6)) {
            error in
            XCTAssertEqual((error as? LajuError)?.kind, .local, "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}

/// A private temporary directory for one unit test, removed afterwards.
final class CoreTestDir {
    let path: String
    init() throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("lbcore-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { "\(path)/\(name)" }
}

/// Runs a bash snippet for unit tests that compare against system tools (gzip, python3, node).
enum CoreShell {
    struct Failed: Error, CustomStringConvertible {
        let status: Int32, stderr: String, script: String
        var description: String { "exit \(status): \(script)\n\(stderr)" }
    }

    /// Returns stdout as bytes; throws `Failed` on a non-zero exit.
    static func run(_ script: String, stdin: [UInt8]? = nil) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-euo", "pipefail", "-c", script]
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try p.run()
        if let stdin {
            let h = input.fileHandleForWriting
            Thread.detachNewThread {
                h.write(Data(stdin)); try? h.close()
            }
        }
        let errBox = CoreDrain(err)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = errBox.wait()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failed(status: p.terminationStatus, stderr: String(decoding: errData, as: UTF8.self), script: script)
        }
        return Array(data)
    }

    static func text(_ script: String) throws -> String {
        String(decoding: try run(script), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Single-quotes `s` for bash.
    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Tests/tools, where the independent implementations live.
    static let tools = TestPaths.tools
}

final class CoreDrain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ pipe: Pipe) {
        let h = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            self.data = h.readDataToEndOfFile(); self.done.signal()
        }
    }
    func wait() -> Data { done.wait(); return data }
}
