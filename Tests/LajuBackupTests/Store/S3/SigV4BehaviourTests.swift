import Foundation
import XCTest
@testable import LajuBackup

/// S3-specific behaviour of the signer beyond the AWS vectors: key encoding, dates, the key cache,
/// session tokens, presigned URLs with a port, and secrets kept out of descriptions.
final class SigV4BehaviourTests: XCTestCase {
    let creds = AWSCredentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    let date = SigV4Vectors.date(iso: "2013-05-24T00:00:00Z")

    func testS3PathEncodesColonSpaceAndUnicode() {
        // "é" written as U+00E9 so the source file's normalisation cannot change the test.
        XCTAssertEqual(SigV4Encoding.s3Path("/bucket/backups/a:b c-\u{E9}"), "/bucket/backups/a%3Ab%20c-%C3%A9")
        XCTAssertEqual(
            SigV4Encoding.s3Path("/bucket/backups/db-2024-01-02T03:04:05Z.sqlite.gz.enc"),
            "/bucket/backups/db-2024-01-02T03%3A04%3A05Z.sqlite.gz.enc")
        // No normalisation: `//`, `.` and `..` are legal in S3 keys.
        XCTAssertEqual(SigV4Encoding.s3Path("/b/a//./../k"), "/b/a//./../k")
        XCTAssertEqual(SigV4Encoding.s3Path("/b/test$file+x=y&z"), "/b/test%24file%2Bx%3Dy%26z")
        XCTAssertEqual(SigV4Encoding.s3Path("key"), "/key")
        XCTAssertEqual(SigV4Encoding.s3Path(""), "/")
    }

    func testURIEncodeRules() {
        XCTAssertEqual(SigV4Encoding.uriEncode("-._~AZaz09", encodeSlash: true), "-._~AZaz09")
        XCTAssertEqual(SigV4Encoding.uriEncode("a/b c+d*e%", encodeSlash: true), "a%2Fb%20c%2Bd%2Ae%25")
        XCTAssertEqual(SigV4Encoding.uriEncode("a/b", encodeSlash: false), "a/b")
        XCTAssertEqual(SigV4Encoding.uriEncode("\u{1234}", encodeSlash: true), "%E1%88%B4")
        XCTAssertEqual(SigV4Encoding.percentDecode("%E1%88%B4=a%2Fb%zz+"), "\u{1234}=a/b%zz+")
    }

    func testAmzDateFormatting() {
        XCTAssertEqual(SigV4.amzDate(Date(timeIntervalSince1970: 0)), "19700101T000000Z")
        // The fraction is dropped.
        XCTAssertEqual(SigV4.amzDate(Date(timeIntervalSince1970: 951_782_399.999)), "20000228T235959Z")
        XCTAssertEqual(SigV4.amzDate(SigV4Vectors.date(iso: "2024-02-29T07:08:09Z")), "20240229T070809Z")
        XCTAssertEqual(SigV4.amzDate(SigV4Vectors.suiteDate), "20150830T123600Z")
    }

    func testPayloadHashes() {
        XCTAssertEqual(sha256Hex([UInt8]()), emptyPayloadSHA256)
        XCTAssertEqual(
            sha256Hex(Array("Welcome to Amazon S3.".utf8)),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
    }

    private static func sign(_ signer: SigV4Signer, at date: Date) -> String {
        let h = signer.authorizationHeaders(
            method: "GET", canonicalURI: "/examplebucket/test.txt", query: [],
            headers: [("Host", "s3.amazonaws.com")], payloadSHA256: emptyPayloadSHA256, date: date)
        return h.first { $0.0 == "Authorization" }!.1
    }

    func testSigningKeyCacheGivesSameSignatureAndDerivesOncePerDay() {
        let signer = SigV4Signer(credentials: creds, region: "us-east-1")
        let first = Self.sign(signer, at: date)
        for _ in 0..<20 { XCTAssertEqual(Self.sign(signer, at: date), first) }
        XCTAssertEqual(signer.keyDerivations, 1)
        // Same day, other time: cached key, different signature (the date is signed).
        XCTAssertNotEqual(Self.sign(signer, at: date.addingTimeInterval(3600)), first)
        XCTAssertEqual(signer.keyDerivations, 1)
        // Next UTC day: a new key; a fresh signer gives the same result as the cached one.
        let nextDay = date.addingTimeInterval(86_400)
        let cached = Self.sign(signer, at: nextDay)
        XCTAssertEqual(signer.keyDerivations, 2)
        XCTAssertEqual(cached, Self.sign(SigV4Signer(credentials: creds, region: "us-east-1"), at: nextDay))
        // Back to the first day: re-derived, still the first signature.
        XCTAssertEqual(Self.sign(signer, at: date), first)
    }

    func testConcurrentSigningAgrees() {
        let signer = SigV4Signer(credentials: creds, region: "us-east-1")
        let expected = Self.sign(SigV4Signer(credentials: creds, region: "us-east-1"), at: date)
        let results = ResultBox()
        let date = self.date
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            results.set(i, Self.sign(signer, at: date))
        }
        XCTAssertEqual(results.all().count, 64)
        XCTAssertEqual(Set(results.all()), [expected])
    }

    func testSecretChangesSignature() {
        var other = creds
        other.secretAccessKey += "x"
        XCTAssertNotEqual(
            Self.sign(SigV4Signer(credentials: creds, region: "us-east-1"), at: date),
            Self.sign(SigV4Signer(credentials: other, region: "us-east-1"), at: date))
        XCTAssertNotEqual(
            Self.sign(SigV4Signer(credentials: creds, region: "us-east-1"), at: date),
            Self.sign(SigV4Signer(credentials: creds, region: "eu-central-1"), at: date))
    }

    func testHeadersReturnedAndCallerDuplicatesReplaced() {
        var withToken = creds
        withToken.sessionToken = "TOKEN/with+chars="
        let signer = SigV4Signer(credentials: withToken, region: "us-east-1")
        let out = signer.signHeaders(
            method: "PUT", canonicalURI: "/b/k", query: [],
            headers: [
                ("Host", "localhost:8333"), ("x-amz-date", "stale"),
                ("X-Amz-Content-SHA256", "stale"), ("User-Agent", "laju-backup/1"),
                ("Expect", ""), ("x-amz-meta-iv", "  abc  ")
            ],
            payloadHash: "UNSIGNED-PAYLOAD", date: date, addContentSHA256: true, signSessionToken: true)
        XCTAssertEqual(
            out.result.signedHeaders, "host;x-amz-content-sha256;x-amz-date;x-amz-meta-iv;x-amz-security-token")
        XCTAssertTrue(out.result.canonicalRequest.contains("\nhost:localhost:8333\n"))
        XCTAssertTrue(out.result.canonicalRequest.contains("\nx-amz-meta-iv:abc\n"))
        XCTAssertFalse(out.result.canonicalRequest.contains("stale"))
        XCTAssertEqual(
            out.headers.map(\.0), ["Authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"])
        XCTAssertEqual(out.headers.last?.1, "TOKEN/with+chars=")
        // The public API returns the same headers.
        let pub = signer.authorizationHeaders(
            method: "PUT", canonicalURI: "/b/k", query: [],
            headers: [("Host", "localhost:8333"), ("x-amz-meta-iv", "abc"), ("User-Agent", "other")],
            payloadSHA256: "UNSIGNED-PAYLOAD", date: date)
        XCTAssertEqual(pub.map(\.0), out.headers.map(\.0))
        XCTAssertEqual(pub[0].1, out.headers[0].1)
    }

    func testPresignedURLWithPortQueryAndToken() {
        var withToken = creds
        withToken.sessionToken = "tok/en+="
        let signer = SigV4Signer(credentials: withToken, region: "us-east-1")
        let url = signer.presignedURL(
            method: "GET", scheme: "http", host: "127.0.0.1:8333",
            canonicalURI: SigV4Encoding.s3Path("/bucket/backups/a:b c"),
            query: [("response-content-disposition", "attachment; filename=\"x y\"")],
            expires: 3600, date: date)
        XCTAssertTrue(
            url.hasPrefix("http://127.0.0.1:8333/bucket/backups/a%3Ab%20c?X-Amz-Algorithm=AWS4-HMAC-SHA256&"), url)
        XCTAssertTrue(
            url.contains("&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&"), url)
        XCTAssertTrue(
            url.contains("&X-Amz-Expires=3600&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-SignedHeaders=host&"), url)
        XCTAssertTrue(
            url.contains("&response-content-disposition=attachment%3B%20filename%3D%22x%20y%22&X-Amz-Signature="), url)
        let sig = String(url.split(separator: "=").last!)
        XCTAssertEqual(sig.count, 64)
        // The signature is the one of the canonical request with host signed and UNSIGNED-PAYLOAD.
        let q = signer.presign(
            method: "GET", canonicalURI: "/bucket/backups/a%3Ab%20c",
            query: [("response-content-disposition", "attachment; filename=\"x y\"")],
            headers: [("host", "127.0.0.1:8333")], payloadHash: "UNSIGNED-PAYLOAD",
            expires: 3600, date: date, signSessionToken: true)
        XCTAssertEqual(q.result.signature, sig)
        XCTAssertTrue(q.result.canonicalRequest.hasSuffix("\nhost:127.0.0.1:8333\n\nhost\nUNSIGNED-PAYLOAD"))
    }

    func testCredentialsNeverDescribeTheSecret() {
        var c = creds
        c.sessionToken = "SESSIONTOKEN"
        for text in [
            "\(c)", String(reflecting: c),
            {
                var s = ""; dump(c, to: &s); return s
            }()
        ] {
            XCTAssertFalse(text.contains("EXAMPLEKEY"), text)
            XCTAssertFalse(text.contains("SESSIONTOKEN"), text)
            XCTAssertTrue(text.contains("AKIAIOSFODNN7EXAMPLE"), text)
        }
    }
}

/// Results slot per thread for the concurrency test (NSLock is fine in tests; the library avoids it).
private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: String] = [:]
    func set(_ i: Int, _ v: String) { lock.lock(); values[i] = v; lock.unlock() }
    func all() -> [String] { lock.lock(); defer { lock.unlock() }; return Array(values.values) }
}
