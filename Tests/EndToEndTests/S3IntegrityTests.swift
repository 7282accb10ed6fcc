import Foundation
import XCTest

/// Object bodies go up as UNSIGNED-PAYLOAD by default; what protects them is the signed
/// Content-MD5 that the server verifies. A byte flipped in transit must make the upload fail
/// cleanly (and the same with BACKUP_S3_SIGN_PAYLOAD=true), never store a damaged backup.
final class S3IntegrityTests: XCTestCase {
    func testBodyCorruptedInTransitIsRefusedByTheServer() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        f.env["BACKUP_S3_RETRIES"] = "2"
        for signPayload in ["false", "true"] {
            for partSize in ["64M", "5M"] {  // single PUT, then multipart UploadPart
                if partSize == "5M" { try f.grow(megabytes: 11) }
                let proxy = try FaultProxy(upstream: f.s3.endpoint, fault: "flip", count: -1, methods: "PUT")
                let env = f.env.merging([
                    "WASABI_ENDPOINT": proxy.endpoint, "BACKUP_PART_SIZE": partSize,
                    "BACKUP_S3_SIGN_PAYLOAD": signPayload
                ]) { $1 }
                let r = try CLI.run(["backup"], env: env)
                XCTAssertTrue(proxy.stop().contains { $0.hasPrefix("FAULT flip") }, "the proxy never flipped a byte")
                let label = "sign=\(signPayload) part=\(partSize)"
                XCTAssertEqual(r.status, 5, "\(label): \(r.output)")
                XCTAssertTrue(
                    r.stderr.contains("BadDigest") || r.stderr.contains("XAmzContentSHA256Mismatch"),
                    "\(label): \(r.stderr)")
                XCTAssertEqual(try f.rowCount(), 0, label)
                XCTAssertEqual(try f.keys(), [], label)
                XCTAssertEqual(try f.pendingUploads(), 0, label)
                XCTAssertEqual(f.tempFiles(), [], label)
            }
        }
        // And without the proxy the same settings store a backup that restores.
        let key = try f.backup(env: ["BACKUP_S3_SIGN_PAYLOAD": "true", "BACKUP_PART_SIZE": "5M"])
        let r = try CLI.run(["verify", "--key", key], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
    }
}
