import Foundation
import Synchronization
import TestSupport
import XCTest

/// A `LocalFixture` (sample app database with the catalog table, key, private temp dir) whose
/// environment points at a fresh bucket on the shared SeaweedFS instead of a local directory.
struct S3Fixture {
    let s3: SeaweedFS
    let bucket: String
    let local: LocalFixture
    var env: [String: String]

    init(scratch: Scratch, rows: Int = 2000, objectLock: Bool = false) throws {
        s3 = try SeaweedFS.shared()
        bucket = try s3.makeBucket(objectLock: objectLock)
        local = try LocalFixture(scratch: scratch, rows: rows)
        env = local.env
        for (k, v) in s3.env(bucket: bucket) { env[k] = v }
        // Stalls are detected within seconds in tests (curl's low-speed window adds about 6 s).
        env["BACKUP_S3_STALL_TIMEOUT"] = "2"
    }

    var database: URL { local.database }
    var tmp: URL { local.tmp }

    /// Runs awscli against the server with the full-access credentials.
    @discardableResult
    func aws(_ arguments: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try sh("aws --endpoint-url \(s3.endpoint) \(arguments)", env: s3.awsEnv(), file: file, line: line)
    }

    /// Every key in the bucket (awscli's view, not ours).
    func keys() throws -> [String] {
        let out = try aws("s3api list-objects-v2 --bucket \(bucket) --query 'Contents[].Key' --output json")
        let trimmed = out.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed == "null" || trimmed.isEmpty { return [] }
        return (try JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String]) ?? []
    }

    /// Incomplete multipart uploads left in the bucket.
    func pendingUploads() throws -> Int {
        let out = try aws("s3api list-multipart-uploads --bucket \(bucket) --output json")
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return (obj?["Uploads"] as? [Any])?.count ?? 0
    }

    /// Rows in the catalog table.
    func rowCount() throws -> Int {
        Int(
            try sh("sqlite3 '\(database.path)' 'SELECT count(*) FROM backup_files'").trimmingCharacters(
                in: .whitespacesAndNewlines)) ?? -1
    }

    /// Files left in the private temp dir, lock files aside.
    func tempFiles() -> [String] {
        Scratch.files(in: tmp).filter { !$0.hasSuffix(".lock") }
    }

    /// `backup --json` that must succeed; returns the object key.
    func backup(env extra: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> String
    {
        let r = try CLI.run(["backup", "--json"], env: env.merging(extra) { $1 })
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        let outcome = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return try XCTUnwrap(outcome?["key"] as? String, r.output, file: file, line: line)
    }

    /// Content fingerprint of the items table of a database file.
    static func content(_ db: URL) throws -> String {
        try sh("sqlite3 '\(db.path)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'")
    }

    /// Adds incompressible rows so the sealed object is about `megabytes` large.
    func grow(megabytes: Int) throws {
        try sh(
            """
            sqlite3 '\(database.path)' <<'SQL'
            CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, data BLOB);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < \(megabytes * 16))
              INSERT INTO blobs(data) SELECT randomblob(65536) FROM n;
            SQL
            """)
    }
}

/// The fault proxy (Tests/tools/fault_proxy.py) in front of the shared SeaweedFS.
final class FaultProxy: @unchecked Sendable {
    let process = Process()
    let port: Int
    private let output: Pipe
    /// Everything the proxy printed after its PORT line, read as it arrives (so a test can wait
    /// for a request while the client is still running, and the pipe never fills up).
    private let log = Mutex("")
    private let drained = DispatchSemaphore(value: 0)

    /// `extra`: more proxy options, e.g. `["--inject-key", "other/x"]` for the hostile modes.
    init(
        upstream: String, fault: String, count: Int, methods: String = "", minBody: Int = 1,
        stallSeconds: Int = 30, extra: [String] = []
    ) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/fault_proxy.py")
        let host = upstream.replacingOccurrences(of: "http://", with: "")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                "python3", script.path, "--upstream", host, "--fault", fault, "--count", String(count),
                "--methods", methods, "--min-body", String(minBody),
                "--stall-seconds", String(stallSeconds), "--lifetime", "300"
            ] + extra
        output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // First line: "PORT n".
        var line = Data()
        while !line.contains(0x0A) {
            let d = output.fileHandleForReading.availableData
            if d.isEmpty { break }
            line.append(d)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let p = text.split(separator: "\n").first?.split(separator: " ").last.flatMap({ Int($0) }) else {
            process.terminate()
            throw NSError(
                domain: "FaultProxy", code: 1, userInfo: [NSLocalizedDescriptionKey: "proxy did not start: \(text)"])
        }
        port = p
        let rest =
            line.firstIndex(of: 0x0A).map { String(decoding: line[line.index(after: $0)...], as: UTF8.self) } ?? ""
        log.withLock { $0 = rest }
        let handle = output.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let d = handle.availableData
                if d.isEmpty { break }
                let s = String(decoding: d, as: UTF8.self)
                log.withLock { $0 += s }
            }
            drained.signal()
        }
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    private var stopped = false

    /// Stops the proxy and returns its fault lines.
    func stop() -> [String] {
        if !stopped {
            stopped = true
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            drained.wait()
        }
        return lines.filter { $0.hasPrefix("FAULT") }
    }

    private var lines: [String] { log.withLock { $0 }.split(separator: "\n").map(String.init) }

    /// Every request the proxy saw so far ("REQ METHOD PATH range=..."); complete after `stop()`.
    var requests: [String] { lines.filter { $0.hasPrefix("REQ") } }

    /// Waits until a request line satisfies `match`; false after `timeout` seconds.
    func waitForRequest(timeout: TimeInterval, _ match: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if requests.contains(where: match) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    deinit { if process.isRunning { process.terminate() } }
}
