import Foundation
import XCTest

/// Issue 8, cases 10, 12 and 13: a body that trickles in forever, numbers from the server that do
/// not fit, and a backup interrupted by SIGTERM or `kill -9` in the middle of a multipart upload.
/// See S3HostileTests.swift for the proxy and how these tests are run against the old binary.
final class S3HostileTransferTests: XCTestCase {
    /// Issue 8, case 10: GetObject's body relayed one byte every 0.5 s (2 B/s: above curl's
    /// low-speed limit of 1 B/s over BACKUP_S3_STALL_TIMEOUT, so only the size-dependent deadline
    /// can end it). The restore must give up in bounded time with nothing left on disk.
    func testTrickledDownloadGivesUpWithinItsDeadline() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        let key = try f.backup()
        let size = Double(try f.objectSize(key))
        let (connect, stall, minRate, retries) = (2.0, 2.0, 1024.0, 2.0)
        // The deadline: a request moving n bytes must finish within
        //     BACKUP_S3_CONNECT_TIMEOUT + BACKUP_S3_STALL_TIMEOUT + n / BACKUP_S3_MIN_RATE
        // seconds, or it fails as a timeout (curl code 28, "transfer too slow") and is retried.
        // GetObject resumes with Range after a failure that brought bytes (a trickle always does):
        // at most 2 * BACKUP_S3_RETRIES rounds, each moving at most `size` bytes, so at most
        // 2 * retries * (connect + stall + size / minRate) seconds of transfer, plus the back-off
        // between rounds (2 * retries - 1 sleeps of at most 0.25 s while no round came back empty;
        // retries * 0.5 s budgeted), plus 5 s for process start-up, the catalog and the HEAD.
        // Here: 4 rounds of 2 + 2 + ~1.5 s, about 28 s in all; before the fix it took size / 2 s.
        let perRound = connect + stall + size / minRate
        let bound = 2 * retries * perRound + retries * 0.5 + 5
        let proxy = try FaultProxy(
            upstream: f.s3.endpoint, fault: "trickle", count: -1, methods: "GET",
            extra: ["--trickle-interval", "0.5"])
        let out = try s.sub("out")
        let r = try CLI.run(
            ["restore", "--key", key, "--output", out.appendingPathComponent("r.db").path],
            env: f.env.merging([
                "WASABI_ENDPOINT": proxy.endpoint, "BACKUP_S3_CONNECT_TIMEOUT": "2",
                "BACKUP_S3_STALL_TIMEOUT": "2", "BACKUP_S3_MIN_RATE": "1024",
                "BACKUP_S3_RETRIES": "2"
            ]) { $1 },
            timeout: bound + 15)
        let faults = proxy.stop()
        print(
            "trickle: object \(Int(size)) B, gave up after \(String(format: "%.1f", r.seconds)) s (bound \(String(format: "%.1f", bound)) s), exit \(r.status)"
        )
        XCTAssertFalse(faults.isEmpty, "the proxy never trickled a body")
        XCTAssertFalse(r.timedOut, "still downloading after \(Int(bound + 15)) s (killed); object \(Int(size)) bytes")
        XCTAssertLessThan(r.seconds, bound, "gave up after \(r.seconds) s; the deadline allows \(bound) s: \(r.stderr)")
        // It did wait for a deadline: a failure in less than one round's base is some other error.
        XCTAssertGreaterThanOrEqual(r.seconds, connect + stall, r.stderr)
        XCTAssertEqual(r.status, 5, r.output)
        r.assertOneErrorLine(containing: "GetObject")
        XCTAssertEqual(Scratch.files(in: out), [], "restored or partial file left in the output directory")
        XCTAssertEqual(f.tempFiles(), [])
    }

    /// Issue 8, case 12: HeadObject answers `Content-Length: 99999999999999999999` (more than
    /// Int64 holds). A clear storage error, not a trap and not a restore built on a wrong size.
    func testImpossibleContentLengthIsAStorageError() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        let key = try f.backup()
        let proxy = try FaultProxy(
            upstream: f.s3.endpoint, fault: "header", count: -1, methods: "HEAD",
            extra: ["--header", "Content-Length: 99999999999999999999"])
        let out = try s.sub("out")
        let r = try CLI.run(
            ["restore", "--key", key, "--output", out.appendingPathComponent("r.db").path],
            env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 }, timeout: 60)
        XCTAssertFalse(proxy.stop().isEmpty, "the proxy never rewrote a HEAD answer")
        r.assertNoCrash()
        XCTAssertEqual(r.status, 5, r.output)
        r.assertOneErrorLine(containing: "99999999999999999999")
        XCTAssertEqual(Scratch.files(in: out), [])
        XCTAssertEqual(f.tempFiles(), [])
    }

    /// Issue 8, case 12: an object stored with `x-amz-meta-source-bytes: 9223372036854775807`
    /// (Int64.max; laju-backup sizes temp space from it). Without a catalog the metadata is all
    /// there is: an integrity error naming source-bytes. With the catalog row, the metadata is
    /// only advisory: the restore succeeds with a warning.
    func testHugeSourceBytesMetadata() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        let key = try f.backup()
        // The same bytes stored again under the same key, with the other metadata copied.
        try sh(
            """
            cd '\(s.path)'
            aws --endpoint-url \(f.s3.endpoint) s3api get-object --bucket \(f.bucket) --key '\(key)' object.bin > head.json
            python3 -c 'import json; m = json.load(open("head.json"))["Metadata"]; m["source-bytes"] = "9223372036854775807"; json.dump(m, open("meta.json", "w"))'
            aws --endpoint-url \(f.s3.endpoint) s3api put-object --bucket \(f.bucket) --key '\(key)' --body object.bin --metadata file://meta.json > /dev/null
            rm object.bin
            """, env: f.s3.awsEnv())
        let meta = try f.aws("s3api head-object --bucket \(f.bucket) --key '\(key)' --query Metadata --output json")
        XCTAssertTrue(meta.contains("\"source-bytes\": \"9223372036854775807\"") && meta.contains("\"iv\""), meta)
        let out = try s.sub("out")

        var r = try CLI.run(
            ["restore", "--key", key, "--output", out.appendingPathComponent("a.db").path],
            env: f.env.merging(["BACKUP_CATALOG": s.url.appendingPathComponent("missing/catalog.db").path]) { $1 },
            timeout: 60)
        r.assertNoCrash()
        XCTAssertEqual(r.status, 4, r.output)
        r.assertOneErrorLine(containing: "source-bytes")
        XCTAssertEqual(Scratch.files(in: out), [])

        r = try CLI.run(
            ["restore", "--key", key, "--output", out.appendingPathComponent("b.db").path], env: f.env, timeout: 60)
        r.assertNoCrash()
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(
            r.stderr.split(separator: "\n").contains { $0.contains("warning: ") && $0.contains("source-bytes") },
            "no warning about the metadata: \(r.stderr)")
        XCTAssertEqual(try S3Fixture.content(out.appendingPathComponent("b.db")), try S3Fixture.content(f.database))
        XCTAssertEqual(f.tempFiles(), [])
    }

    /// Issue 8, case 13: SIGTERM while UploadPart requests are in flight (stalled by the proxy).
    /// The run aborts the multipart upload before it exits with 128 + 15: no billed parts, no
    /// object, no row, no temp file.
    func testSIGTERMDuringMultipartUploadAbortsIt() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        try f.grow(megabytes: 30)
        let proxy = try FaultProxy(
            upstream: f.s3.endpoint, fault: "stall", count: -1, methods: "PUT", stallSeconds: 120)
        let run = try BackgroundRun(["backup"], env: f.multipartEnv(endpoint: proxy.endpoint))
        XCTAssertTrue(
            proxy.waitForRequest(timeout: 90) { $0.hasPrefix("REQ PUT") && $0.contains("partNumber=") },
            "no UploadPart seen: \(proxy.requests)")
        let signalled = Date()
        kill(run.process.processIdentifier, SIGTERM)
        let exited = run.wait(timeout: 15)
        let seconds = Date().timeIntervalSince(signalled)
        _ = proxy.stop()
        XCTAssertTrue(exited, "still running 15 s after SIGTERM")
        XCTAssertEqual(run.process.terminationReason, .exit, run.stderr)
        XCTAssertEqual(run.process.terminationStatus, 143, run.stderr)
        XCTAssertLessThan(seconds, 10, run.stderr)
        XCTAssertEqual(try f.pendingUploads(), 0, "the multipart upload was left behind: \(run.stderr)")
        XCTAssertEqual(try f.keys(), [])
        XCTAssertEqual(try f.rowCount(), 0)
        XCTAssertEqual(f.tempFiles(), [])
    }

    /// Issue 8, case 13: `kill -9` cannot clean up, so the incomplete upload stays. `clean --orphans`
    /// reports it (JSON `partials`) and `--delete-orphans --grace 0` aborts it.
    func testKilledMultipartUploadIsReportedAndAbortedByCleanOrphans() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        try f.grow(megabytes: 30)
        let proxy = try FaultProxy(
            upstream: f.s3.endpoint, fault: "stall", count: -1, methods: "PUT", stallSeconds: 120)
        let run = try BackgroundRun(["backup"], env: f.multipartEnv(endpoint: proxy.endpoint))
        XCTAssertTrue(
            proxy.waitForRequest(timeout: 90) { $0.hasPrefix("REQ PUT") && $0.contains("partNumber=") },
            "no UploadPart seen: \(proxy.requests)")
        kill(run.process.processIdentifier, SIGKILL)
        XCTAssertTrue(run.wait(timeout: 15))
        _ = proxy.stop()
        XCTAssertEqual(try f.pendingUploads(), 1, "kill -9 should leave the incomplete upload")
        let pendingKey = try f.aws(
            "s3api list-multipart-uploads --bucket \(f.bucket) --query 'Uploads[0].Key' --output text"
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)

        var r = try CLI.run(["clean", "--orphans", "--json"], env: f.env, timeout: 60)
        XCTAssertEqual(r.status, 0, r.output)
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let partials = report?["partials"] as? [[String: Any]] ?? []
        XCTAssertEqual(partials.count, 1, "no partial upload reported: \(r.stdout)")
        XCTAssertEqual((partials.first?["upload"] as? [String: Any])?["key"] as? String, pendingKey, r.stdout)
        XCTAssertEqual(partials.first?["action"] as? String, "reported", r.stdout)
        XCTAssertEqual(try f.pendingUploads(), 1, "reporting must not abort")

        r = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0"], env: f.env, timeout: 60)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try f.pendingUploads(), 0, "the partial upload was not aborted: \(r.output)")
        XCTAssertEqual(try f.keys(), [])
        XCTAssertEqual(try f.rowCount(), 0)
    }
}

/// A laju-backup run in the background, to be signalled while it works.
final class BackgroundRun {
    let process = Process()
    private let out: PipeDrain
    private let err: PipeDrain

    init(_ arguments: [String], env: [String: String]) throws {
        process.executableURL = CLI.binary
        process.arguments = arguments
        process.environment = CLI.environment(env)
        let o = Pipe(), e = Pipe()
        process.standardOutput = o
        process.standardError = e
        process.standardInput = FileHandle.nullDevice
        try process.run()
        out = PipeDrain(o)
        err = PipeDrain(e)
    }

    /// Waits up to `timeout` seconds for the run to end; false (and SIGKILL) when it did not.
    func wait(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return false
        }
        process.waitUntilExit()
        return true
    }

    /// Its stderr, once it has ended.
    var stderr: String { String(decoding: err.wait(), as: UTF8.self) }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

extension S3Fixture {
    /// The object's size as the server reports it (awscli).
    func objectSize(_ key: String) throws -> Int {
        Int(
            try aws("s3api head-object --bucket \(bucket) --key '\(key)' --query ContentLength --output text")
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// 5 MiB parts through `endpoint`, with a stall timeout long enough that nothing times out
    /// before the test signals the run.
    func multipartEnv(endpoint: String) -> [String: String] {
        env.merging(["WASABI_ENDPOINT": endpoint, "BACKUP_PART_SIZE": "5M", "BACKUP_S3_STALL_TIMEOUT": "60"]) { $1 }
    }
}
