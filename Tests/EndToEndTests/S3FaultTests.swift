import Foundation
import TestSupport
import XCTest

/// Faults injected by Tests/tools/fault_proxy.py between laju-backup and SeaweedFS: 500/503,
/// connections reset mid-body, stalled connections. Transient faults are retried through;
/// permanent ones fail cleanly with nothing left behind.
final class S3FaultTests: XCTestCase {
    func testBackupRetriesThroughServerErrorsAndResets() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        try f.grow(megabytes: 12)
        f.env["BACKUP_PART_SIZE"] = "5M"
        for (fault, methods, count) in [("503", "PUT", 2), ("500", "POST", 2), ("reset", "PUT", 2)] {
            let proxy = try FaultProxy(upstream: f.s3.endpoint, fault: fault, count: count, methods: methods)
            let key = try f.backup(env: ["WASABI_ENDPOINT": proxy.endpoint])
            let faults = proxy.stop()
            XCTAssertEqual(faults.count, count, "\(fault): \(faults)")
            XCTAssertTrue(try f.keys().contains(key))
            XCTAssertEqual(try f.pendingUploads(), 0)
            // The stored object is whole: it restores (directly, no proxy).
            let restored = s.url.appendingPathComponent("restored-\(fault).db")
            let r = try CLI.run(["restore", "--key", key, "--output", restored.path], env: f.env)
            XCTAssertEqual(r.status, 0, "\(fault): \(r.output)")
        }
        XCTAssertEqual(try f.rowCount(), 3)
        XCTAssertEqual(f.tempFiles(), [])
    }

    func testRestoreResumesAfterResetsAndStalls() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s)
        try f.grow(megabytes: 6)
        let key = try f.backup()
        let expected = try S3Fixture.content(f.database)
        for (fault, count) in [("reset", 2), ("503", 2), ("stall", 1)] {
            let proxy = try FaultProxy(
                upstream: f.s3.endpoint, fault: fault, count: count, methods: "GET", stallSeconds: 20)
            let restored = s.url.appendingPathComponent("restored-\(fault).db")
            let r = try CLI.run(
                ["restore", "--key", key, "--output", restored.path],
                env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 })
            let faults = proxy.stop()
            XCTAssertEqual(r.status, 0, "\(fault): \(r.output)")
            XCTAssertEqual(faults.count, count, "\(fault): \(faults)")
            if fault != "503" {
                // A broken body resumes where it stopped instead of starting over.
                XCTAssertTrue(
                    proxy.requests.contains { $0.hasPrefix("REQ GET") && $0.contains("range=bytes=") },
                    "\(proxy.requests)")
            }
            XCTAssertEqual(try S3Fixture.content(restored), expected)
        }
        XCTAssertEqual(f.tempFiles(), [])
    }

    func testPermanentFaultsFailCleanly() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        try f.grow(megabytes: 12)
        f.env["BACKUP_PART_SIZE"] = "5M"
        f.env["BACKUP_S3_RETRIES"] = "3"

        // Every part upload answered 503: the backup fails, the multipart upload is aborted.
        var proxy = try FaultProxy(upstream: f.s3.endpoint, fault: "503", count: -1, methods: "PUT")
        var r = try CLI.run(["backup"], env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 })
        XCTAssertFalse(proxy.stop().isEmpty)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stderr.contains("SlowDown") && r.stderr.contains("after 3 attempts"), r.output)
        XCTAssertFalse(r.output.contains(f.s3.secretKey))
        XCTAssertEqual(try f.rowCount(), 0)
        XCTAssertEqual(try f.keys(), [])
        XCTAssertEqual(try f.pendingUploads(), 0, "incomplete multipart upload left behind")
        XCTAssertEqual(f.tempFiles(), [])

        // Every connection reset mid-upload: same outcome.
        proxy = try FaultProxy(upstream: f.s3.endpoint, fault: "reset", count: -1, methods: "PUT")
        r = try CLI.run(["backup"], env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 })
        XCTAssertFalse(proxy.stop().isEmpty)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertEqual(try f.rowCount(), 0)
        XCTAssertEqual(try f.keys(), [])
        XCTAssertEqual(try f.pendingUploads(), 0)
        XCTAssertEqual(f.tempFiles(), [])

        // A restore whose download keeps breaking: no restored file, no partial file, no temp file.
        f.env.removeValue(forKey: "BACKUP_PART_SIZE")
        let key = try f.backup()
        let outDir = try s.sub("out")
        for fault in ["reset", "503"] {
            proxy = try FaultProxy(upstream: f.s3.endpoint, fault: fault, count: -1, methods: "GET")
            r = try CLI.run(
                ["restore", "--key", key, "--output", outDir.appendingPathComponent("r.db").path],
                env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint, "BACKUP_S3_RETRIES": "2"]) { $1 })
            XCTAssertFalse(proxy.stop().isEmpty)
            XCTAssertEqual(r.status, 5, "\(fault): \(r.output)")
            XCTAssertTrue(r.stderr.contains("GetObject"), r.output)
            XCTAssertEqual(Scratch.files(in: outDir), [], "\(fault): files left in the output directory")
            XCTAssertEqual(f.tempFiles(), [])
        }
    }
}
