import XCTest
@testable import LajuBackup

/// The pure parts of the S3 store: settings, part sizing, XML scanning, dates, error mapping.
final class S3ConfigurationTests: XCTestCase {
    func settings(_ values: [String: String]) -> Settings {
        Settings(environment: Environment(layers: [(source: "test", values: values)]))
    }

    let base = [
        "WASABI_ACCESS_KEY": "AK", "WASABI_SECRET_KEY": "topsecret-value", "WASABI_BUCKET": "my-bucket",
        "WASABI_REGION": "eu-central-1"
    ]

    func testDefaultsAndAWSEndpoint() throws {
        let c = try S3Configuration(settings: settings(base))
        XCTAssertEqual(c.endpointString, "https://s3.eu-central-1.amazonaws.com")
        XCTAssertEqual(c.addressing, .path)
        XCTAssertEqual(c.partSize, 64 << 20)
        XCTAssertEqual(c.concurrency, 4)
        XCTAssertEqual(c.prefix, "backups/")
        XCTAssertFalse(c.description.contains("topsecret"))
        XCTAssertEqual(
            try S3Store(configuration: c).displayName, "s3://my-bucket/ at https://s3.eu-central-1.amazonaws.com")
    }

    func testAWSFallbacksAndEndpointParsing() throws {
        let c = try S3Configuration(
            settings: settings([
                "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "AWS_SESSION_TOKEN": "T",
                "WASABI_BUCKET": "b-1",
                "AWS_ENDPOINT_URL": "http://Minio.local:9000/", "BACKUP_S3_ADDRESSING": "virtual"
            ]))
        XCTAssertEqual(c.credentials.sessionToken, "T")
        XCTAssertEqual(c.region, "us-east-1")
        XCTAssertEqual(c.host, "minio.local")
        XCTAssertEqual(c.port, 9000)
        XCTAssertEqual(c.addressing, .virtual)
        let store = try S3Store(configuration: c)
        XCTAssertEqual(store.location(key: "backups/a:b c").host, "b-1.minio.local:9000")
        XCTAssertEqual(store.location(key: "backups/a:b c").path, "/backups/a%3Ab%20c")
        let https = try S3Configuration(
            settings: settings(base.merging(["WASABI_ENDPOINT": "s3.wasabisys.com:443"]) { $1 }))
        XCTAssertEqual(https.endpointString, "https://s3.wasabisys.com")
        XCTAssertEqual(try S3Store(configuration: https).location(key: "k").path, "/my-bucket/k")
    }

    func testMissingSettingsNameTheVariables() {
        XCTAssertThrowsError(try S3Configuration(settings: settings([:]))) { error in
            let e = error as! LajuError
            XCTAssertEqual(e.kind, .usage)
            for name in ["WASABI_ACCESS_KEY", "WASABI_SECRET_KEY", "WASABI_BUCKET", "WASABI_REGION"] {
                XCTAssertTrue(e.message.contains(name), e.message)
            }
        }
        for (name, value) in [
            ("BACKUP_PART_SIZE", "4M"), ("BACKUP_PART_SIZE", "lots"), ("BACKUP_S3_ADDRESSING", "dns"),
            ("BACKUP_UPLOAD_CONCURRENCY", "0"), ("WASABI_ENDPOINT", "ftp://x"), ("WASABI_BUCKET", "A")
        ] {
            XCTAssertThrowsError(
                try S3Configuration(settings: settings(base.merging([name: value]) { $1 })), "\(name)=\(value)")
        }
    }

    func testPartSizes() throws {
        XCTAssertEqual(S3Configuration.parseSize("8M"), 8 << 20)
        XCTAssertEqual(S3Configuration.parseSize("8MiB"), 8 << 20)
        XCTAssertEqual(S3Configuration.parseSize("1g"), 1 << 30)
        XCTAssertEqual(S3Configuration.parseSize("5242880"), 5 << 20)
        XCTAssertNil(S3Configuration.parseSize("M"))
        let c = try S3Configuration(settings: settings(base.merging(["BACKUP_PART_SIZE": "5M"]) { $1 }))
        XCTAssertEqual(c.effectivePartSize(for: 100 << 20), 5 << 20)
        // 1 TiB in 5 MiB parts would be 209,716 parts: sized up to stay within 10,000.
        let p = c.effectivePartSize(for: 1 << 40)
        XCTAssertLessThanOrEqual((Int64(1) << 40 + p - 1) / p, 10_000)
    }

    func testXMLScanning() throws {
        let page = try S3Store.parseListPage(
            Array(
                """
                <?xml version="1.0"?><ListBucketResult><IsTruncated>true</IsTruncated>
                <Contents><Key>backups/a&amp;b:1</Key><LastModified>2025-10-24T12:07:00.000Z</LastModified><Size>42</Size></Contents>
                <Contents><Key>backups/c</Key><Size>7</Size></Contents>
                <NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>
                """.utf8))
        XCTAssertEqual(page.objects.map(\.key), ["backups/a&b:1", "backups/c"])
        XCTAssertEqual(page.objects[0].size, 42)
        XCTAssertEqual(page.objects[0].lastModified, 1761307620)
        XCTAssertEqual(page.nextToken, "tok/+=")
        let err = S3ErrorResponse(
            status: 403,
            body: Array(
                "<Error><Code>RequestTimeTooSkewed</Code><Message>skew</Message><RequestId>R1</RequestId></Error>".utf8),
            headers: [:])
        let c = try! S3Configuration(settings: settings(base))
        let e = err.lajuError(operation: "PutObject k", configuration: c, attempts: 1)
        XCTAssertTrue(e.message.contains("RequestTimeTooSkewed") && e.message.contains("R1"), e.message)
        XCTAssertTrue(e.hint?.contains("clock") ?? false)
        XCTAssertFalse(err.isRetryable)
        XCTAssertTrue(S3ErrorResponse(status: 503, body: [], headers: [:]).isRetryable)
        XCTAssertTrue(
            S3ErrorResponse(status: 400, body: Array("<Error><Code>RequestTimeout</Code></Error>".utf8), headers: [:])
                .isRetryable)
        XCTAssertEqual(HTTPDate.parse("Fri, 24 Oct 2025 12:07:00 GMT"), 1761307620)
        XCTAssertEqual(S3Store.redact("x topsecret-value y", c), "x <redacted> y")
    }
}
