import Foundation
import TestSupport
import XCTest

/// backup → restore through a real S3 server (SeaweedFS verifying every signature).
final class S3BackupRestoreTests: XCTestCase {
    func testRoundTripThroughS3() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s)
        let key = try f.backup()
        XCTAssertTrue(key.hasPrefix("backups/app.sqlite3-") && key.contains(":"), key)
        XCTAssertEqual(try f.keys(), [key])
        XCTAssertEqual(try f.rowCount(), 1)
        let row = try sh("sqlite3 '\(f.database.path)' \"SELECT storage, file_size, checksum FROM backup_files\"")
        XCTAssertTrue(row.hasPrefix("s3|"), row)

        let restored = s.url.appendingPathComponent("out/restored.db")
        let r = try CLI.run(["restore", "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try S3Fixture.content(f.database), try S3Fixture.content(restored))
        XCTAssertTrue(r.output.contains("s3://\(f.bucket)/ at \(f.s3.endpoint)"), r.output)
        XCTAssertFalse(r.output.contains(f.s3.secretKey))
        XCTAssertEqual(f.tempFiles(), [], "temp files left behind")
        XCTAssertEqual(Scratch.files(in: restored.deletingLastPathComponent()), ["restored.db"])
    }

    /// Large enough for at least 3 parts of 5 MiB; random blobs so gzip cannot shrink it.
    func testMultipartUploadOfALargeDatabase() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        try f.grow(megabytes: 13)
        f.env["BACKUP_PART_SIZE"] = "5M"
        f.env["BACKUP_UPLOAD_CONCURRENCY"] = "3"
        let key = try f.backup()
        let head = try f.aws("s3api head-object --bucket \(f.bucket) --key '\(key)' --output json")
        let obj = try JSONSerialization.jsonObject(with: Data(head.utf8)) as! [String: Any]
        let etag = try XCTUnwrap(obj["ETag"] as? String)
        let parts = Int(etag.split(separator: "-").last?.filter(\.isNumber) ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(parts, 3, "multipart ETag \(etag)")
        XCTAssertGreaterThan(obj["ContentLength"] as? Int ?? 0, 10 << 20)
        // Metadata set on CreateMultipartUpload reaches the object.
        let meta = try XCTUnwrap(obj["Metadata"] as? [String: String])
        XCTAssertEqual(meta["algo"], "aes-256-gcm")
        XCTAssertEqual(meta["comp"], "gzip")
        XCTAssertEqual(try f.pendingUploads(), 0)

        let restored = s.url.appendingPathComponent("restored.db")
        let r = try CLI.run(["restore", "--key", key, "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try S3Fixture.content(f.database), try S3Fixture.content(restored))
        XCTAssertEqual(
            try sh("sqlite3 '\(restored.path)' 'SELECT count(*), sum(length(data)) FROM blobs'"),
            try sh("sqlite3 '\(f.database.path)' 'SELECT count(*), sum(length(data)) FROM blobs'"))
        XCTAssertEqual(f.tempFiles(), [])
    }

    func testVirtualHostedStyleAddressing() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        f.env["BACKUP_S3_ADDRESSING"] = "virtual"
        // libcurl resolves *.localhost to loopback; SeaweedFS runs with -s3.domainName=s3.localhost.
        f.env["WASABI_ENDPOINT"] = f.s3.endpoint.replacingOccurrences(of: "127.0.0.1", with: "s3.localhost")
        let key = try f.backup()
        XCTAssertEqual(try f.keys(), [key])
        let restored = s.url.appendingPathComponent("restored.db")
        let r = try CLI.run(["restore", "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try S3Fixture.content(f.database), try S3Fixture.content(restored))
        let l = try CLI.run(["list", "--remote"], env: f.env)
        XCTAssertEqual(l.status, 0, l.output)
        XCTAssertTrue(l.stdout.contains(key), l.output)
    }

    func testWrongSecretFailsBeforeAnyTempFile() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        let wrong = "Wr0ngSecretValue-\(UUID().uuidString)"
        f.env["WASABI_SECRET_KEY"] = wrong
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stderr.contains("SignatureDoesNotMatch"), r.output)
        XCTAssertTrue(r.stderr.contains("check the credentials"), r.output)
        XCTAssertTrue(r.stderr.contains("RequestId"), r.output)
        XCTAssertFalse(r.output.contains(wrong), "secret leaked: \(r.output)")
        XCTAssertEqual(try f.rowCount(), 0)
        XCTAssertEqual(try f.keys(), [])
        XCTAssertEqual(f.tempFiles(), [])
    }

    func testReadOnlyIdentityCannotBackUp() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        f.env["WASABI_ACCESS_KEY"] = f.s3.readerAccessKey
        f.env["WASABI_SECRET_KEY"] = f.s3.readerSecretKey
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stderr.contains("AccessDenied"), r.output)
        XCTAssertFalse(r.output.contains(f.s3.readerSecretKey))
        XCTAssertEqual(try f.rowCount(), 0)
        XCTAssertEqual(try f.keys(), [])
        XCTAssertEqual(f.tempFiles(), [])
    }

    func testMissingSettingsAreNamed() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        for k in ["WASABI_ACCESS_KEY", "WASABI_SECRET_KEY", "WASABI_BUCKET"] { f.env.removeValue(forKey: k) }
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 2, r.output)
        for name in ["WASABI_ACCESS_KEY", "WASABI_SECRET_KEY", "WASABI_BUCKET"] {
            XCTAssertTrue(r.stderr.contains(name), r.output)
        }
        // The standard AWS names work as fallbacks.
        f.env["AWS_ACCESS_KEY_ID"] = f.s3.accessKey
        f.env["AWS_SECRET_ACCESS_KEY"] = f.s3.secretKey
        f.env["WASABI_BUCKET"] = f.bucket
        f.env.removeValue(forKey: "WASABI_ENDPOINT")
        f.env["AWS_ENDPOINT_URL_S3"] = f.s3.endpoint
        XCTAssertFalse(try f.backup().isEmpty)
    }

    func testRestoreByKeyWithoutCatalog() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        let key = try f.backup()
        let expected = try S3Fixture.content(f.database)
        // The server is lost: no database, no catalog.
        let moved = s.url.appendingPathComponent("gone.sqlite3")
        try FileManager.default.moveItem(at: f.database, to: moved)
        f.env["BACKUP_DATABASE"] = f.database.path

        // Without --key, the newest backup of this database is found in the bucket by itself.
        let noKey = try CLI.run(["restore", "--output", s.url.appendingPathComponent("x.db").path], env: f.env)
        XCTAssertEqual(noKey.status, 0, noKey.output)
        XCTAssertTrue(noKey.stderr.contains("restoring the newest backup of app.sqlite3 found in s3://"), noKey.output)
        XCTAssertEqual(try S3Fixture.content(s.url.appendingPathComponent("x.db")), expected)

        let restored = s.url.appendingPathComponent("restored.db")
        let r = try CLI.run(["restore", "--key", key, "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try S3Fixture.content(restored), expected)
        XCTAssertTrue(r.stderr.contains("metadata"), r.output)

        let v = try CLI.run(["verify", "--key", key], env: f.env)
        XCTAssertEqual(v.status, 0, v.output)

        let missing = try CLI.run(
            ["restore", "--key", "backups/does-not-exist:1", "--output", s.url.appendingPathComponent("y.db").path],
            env: f.env)
        XCTAssertEqual(missing.status, 5, missing.output)
        XCTAssertTrue(missing.stderr.contains("not found"), missing.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.url.appendingPathComponent("y.db").path))
        XCTAssertEqual(f.tempFiles(), [])
    }

    func testListRemoteMarksOrphans() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s)
        let key = try f.backup()
        let orphanFile = s.url.appendingPathComponent("orphan.bin")
        try Data(repeating: 7, count: 1234).write(to: orphanFile)
        try f.aws(
            "s3api put-object --bucket \(f.bucket) --key 'backups/orphan:1.db.gz.enc' --body '\(orphanFile.path)' >/dev/null"
        )
        try f.aws(
            "s3api put-object --bucket \(f.bucket) --key 'elsewhere/not-listed' --body '\(orphanFile.path)' >/dev/null")

        let r = try CLI.run(["list", "--remote", "--json"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let entries =
            (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["objects"]
            as! [[String: Any]]
        let byKey = Dictionary(uniqueKeysWithValues: entries.map { ($0["key"] as! String, $0) })
        XCTAssertEqual(Set(byKey.keys), [key, "backups/orphan:1.db.gz.enc"])
        XCTAssertEqual(byKey[key]?["in_catalog"] as? Bool, true)
        XCTAssertEqual(byKey["backups/orphan:1.db.gz.enc"]?["in_catalog"] as? Bool, false)
        XCTAssertEqual(byKey["backups/orphan:1.db.gz.enc"]?["size"] as? Int, 1234)
        XCTAssertNotNil(byKey[key]?["last_modified"] as? Double)

        let text = try CLI.run(["list", "--remote"], env: f.env)
        XCTAssertTrue(text.stdout.contains("orphan"), text.output)
    }

    /// More keys than one ListObjectsV2 page (1000) holds: pagination with continuation tokens.
    func testListRemotePaginates() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        f.env["BACKUP_PREFIX"] = "many/"
        let empty = s.url.appendingPathComponent("e")
        try Data("x".utf8).write(to: empty)
        // 1003 small objects through awscli's sync (parallel), then list them with ours.
        let dir = try s.sub("many")
        for i in 0..<1003 { try Data("\(i)".utf8).write(to: dir.appendingPathComponent("k:\(i)")) }
        try f.aws("s3 sync '\(dir.path)' s3://\(f.bucket)/many/ --only-show-errors")
        let r = try CLI.run(["list", "--remote", "--json"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let entries =
            (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["objects"]
            as! [[String: Any]]
        XCTAssertEqual(entries.count, 1003)
    }

    func testPresignedURLDownloadsWithPlainCurl() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s)
        let key = try f.backup()
        let r = try CLI.run(["presign", key, "--expires", "10m"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let url = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(url.hasPrefix("\(f.s3.endpoint)/\(f.bucket)/"), url)
        XCTAssertTrue(url.contains("X-Amz-Expires=600"), url)
        XCTAssertFalse(url.contains(f.s3.secretKey))
        let viaCurl = s.url.appendingPathComponent("curl.bin")
        let viaAws = s.url.appendingPathComponent("aws.bin")
        try sh("curl -sf -o '\(viaCurl.path)' '\(url)'")
        try f.aws("s3api get-object --bucket \(f.bucket) --key '\(key)' '\(viaAws.path)' >/dev/null")
        XCTAssertEqual(try Data(contentsOf: viaCurl), try Data(contentsOf: viaAws))
        XCTAssertGreaterThan(try Data(contentsOf: viaCurl).count, 0)
        // A tampered signature is refused by the server.
        let tampered = url.replacingOccurrences(of: "X-Amz-Expires=600", with: "X-Amz-Expires=6000")
        XCTAssertEqual(try sh("curl -s -o /dev/null -w '%{http_code}' '\(tampered)'"), "403")

        for bad in ["8d", "0", "abc"] {
            let b = try CLI.run(["presign", key, "--expires", bad], env: f.env)
            XCTAssertEqual(b.status, 2, "\(bad): \(b.output)")
        }
        let missing = try CLI.run(["presign", "backups/nope:1"], env: f.env)
        XCTAssertEqual(missing.status, 5, missing.output)
    }
}
