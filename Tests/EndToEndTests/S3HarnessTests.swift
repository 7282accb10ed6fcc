import Foundation
import TestSupport
import XCTest

/// The SeaweedFS harness itself: the server verifies signatures and the reader credentials are read-only.
final class S3HarnessTests: XCTestCase {
    func testServerVerifiesSignaturesAndIdentities() throws {
        let s3 = try SeaweedFS.shared()
        let bucket = try s3.makeBucket()
        let s = try Scratch()
        let file = s.url.appendingPathComponent("f.txt")
        try "hello".write(to: file, atomically: true, encoding: .utf8)
        try sh(
            "aws --endpoint-url \(s3.endpoint) s3api put-object --bucket \(bucket) --key 'a:b' --body '\(file.path)' >/dev/null",
            env: s3.awsEnv())
        let head = try sh(
            "aws --endpoint-url \(s3.endpoint) s3api head-object --bucket \(bucket) --key 'a:b'", env: s3.awsEnv())
        XCTAssertTrue(head.contains("\"ContentLength\": 5"), head)
        // The reader may read but not write.
        var reader = s3.awsEnv()
        reader["AWS_ACCESS_KEY_ID"] = s3.readerAccessKey
        reader["AWS_SECRET_ACCESS_KEY"] = s3.readerSecretKey
        let denied = try sh(
            "aws --endpoint-url \(s3.endpoint) s3api put-object --bucket \(bucket) --key x --body '\(file.path)' 2>&1 && echo WROTE || echo DENIED",
            env: reader)
        XCTAssertTrue(denied.contains("DENIED") && denied.contains("AccessDenied"), denied)
        // A wrong secret is refused.
        var wrong = s3.awsEnv()
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let refused = try sh(
            "aws --endpoint-url \(s3.endpoint) s3api head-object --bucket \(bucket) --key 'a:b' 2>&1 && echo OK || echo REFUSED",
            env: wrong)
        XCTAssertTrue(refused.contains("REFUSED"), refused)
    }
}
