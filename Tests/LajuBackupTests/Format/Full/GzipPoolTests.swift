import CSupport
import Foundation
import XCTest
@testable import LajuBackup

/// The gzip seal runs a pool of deflate workers: what it writes must not depend on how many there
/// are (nor on how the blocks' compression interleaves), and it must open back to the input.
/// (GzipInteropTests has the system's gzip read the stream.)
final class GzipPoolTests: XCTestCase {
    var dir: CoreTestDir!

    override func setUpWithError() throws { dir = try CoreTestDir() }
    override func tearDown() { dir = nil }

    /// Input that spans many more blocks (1 MiB each) than there are slots for 1 to 8 workers, with
    /// parts that compress well and parts that do not, and a short last block.
    func input(blocks: Int) throws -> String {
        var bytes: [UInt8] = []
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for b in 0..<blocks {
            for i in 0..<(1 << 20) {
                if b % 3 == 1 {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    bytes.append(UInt8(truncatingIfNeeded: state >> 33))
                } else {
                    bytes.append(UInt8(truncatingIfNeeded: (i / 7) % 61 + b))
                }
            }
        }
        bytes.append(contentsOf: Array("the end".utf8))
        let path = dir.file("input")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func seal(_ input: String, threads: Int32, key: [UInt8], iv: [UInt8]) throws -> [UInt8] {
        let out = dir.file("object-\(threads)")
        var r = cs_seal_result()
        var err = cs_error()
        let status = cs_seal_file(input, out, key, iv, 6, threads, nil, nil, &r, &err)
        XCTAssertEqual(status, 0, "threads \(threads)")
        return Array(try Data(contentsOf: URL(fileURLWithPath: out)))
    }

    func testObjectIsTheSameWhateverTheNumberOfWorkers() throws {
        let path = try input(blocks: 23)
        let key = (0..<32).map { UInt8($0) }, iv = (0..<12).map { UInt8(100 + $0) }
        let one = try seal(path, threads: 1, key: key, iv: iv)
        XCTAssertGreaterThan(one.count, 16)
        for threads: Int32 in [2, 3, 8] {
            let other = try seal(path, threads: threads, key: key, iv: iv)
            XCTAssertEqual(other.count, one.count, "threads \(threads)")
            XCTAssertTrue(other == one, "the object sealed with \(threads) workers differs from one worker's")
        }
    }

    func testEveryWorkerCountRoundTrips() throws {
        let path = try input(blocks: 9)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let key = try EncryptionKey.generate()
        for threads: Int32 in [1, 2, 5] {
            let object = dir.file("rt-\(threads).gz.enc")
            let sealed = try Envelope.seal(input: path, output: object, encryptionKey: key, level: 6, threads: threads)
            XCTAssertEqual(sealed.plainBytes, Int64(original.count))
            let restored = dir.file("rt-\(threads).db")
            _ = try Envelope.open(input: object, output: restored, encryptionKey: key, iv: sealed.iv, tag: sealed.tag)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: restored)), original, "threads \(threads)")
        }
    }
}
