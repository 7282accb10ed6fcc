import Foundation
import Synchronization
import XCTest

/// Runs the built `laju-backup` binary as a user would: separate process, explicit environment
/// (nothing inherited but PATH, so a developer's own settings never leak into a test), captured
/// output and exit status.
struct CLI {
    struct Result {
        /// The exit status, or 128 + N when signal N ended the run (as a shell reports it), so a
        /// trap (SIGILL = 4, SIGTRAP = 5) is never mistaken for exit status 4 or 5.
        var status: Int32
        var stdout: String
        var stderr: String
        /// The run outlived `timeout` and was killed (SIGKILL): a hang, not an answer.
        var timedOut = false
        /// The signal that ended the run (a trap, a crash, the watchdog), nil when it exited.
        var signal: Int32? = nil
        var seconds: Double = 0
        var output: String { stdout + stderr }
    }

    /// The binary SwiftPM built next to the test bundle (override with LAJU_BACKUP_BIN).
    static var binary: URL {
        if let p = ProcessInfo.processInfo.environment["LAJU_BACKUP_BIN"] { return URL(fileURLWithPath: p) }
        // The test runner is `<build dir>/<package>PackageTests.xctest`; the binary sits beside it.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return runner.deletingLastPathComponent().appendingPathComponent("laju-backup")
    }

    /// The environment a run gets: nothing inherited but PATH, plus `env`.
    static func environment(_ env: [String: String]) -> [String: String] {
        var environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "TZ": "UTC",
            "LAJU_BACKUP_CONFIG": ""
        ]  // never read the host's /etc/laju-backup
        for (k, v) in env { environment[k] = v }
        return environment
    }

    @discardableResult
    static func run(
        _ arguments: [String], env: [String: String] = [:], cwd: URL? = nil,
        timeout: TimeInterval = 300
    ) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        p.environment = environment(env)
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        let started = Date()
        try p.run()
        // A watchdog: a run that hangs is killed after `timeout` seconds and reported as such,
        // so a hanging binary fails its test instead of hanging the suite.
        let watch = Watchdog()
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
            watch.state.withLock { w in
                guard !w.finished else { return }
                w.killed = true
                kill(pid, SIGKILL)
            }
        }
        // Read both pipes concurrently so a chatty child never blocks on a full pipe.
        let outData = PipeDrain(out), errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let killed = watch.state.withLock { w in
            w.finished = true; return w.killed
        }
        let signal = p.terminationReason == .uncaughtSignal ? p.terminationStatus : nil
        return Result(
            status: signal.map { 128 + $0 } ?? p.terminationStatus,
            stdout: String(decoding: outData.wait(), as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self), timedOut: killed, signal: signal,
            seconds: Date().timeIntervalSince(started))
    }
}

/// Whether a run finished before its watchdog fired, and whether the watchdog killed it.
private final class Watchdog: Sendable {
    let state = Mutex((finished: false, killed: false))
}

/// A scratch directory per test, removed afterwards.
final class Scratch {
    let url: URL
    var path: String { url.path }

    init(_ name: String = #function) throws {
        let clean = name.filter { $0.isLetter || $0.isNumber }
        url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "lbtest-\(clean)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func sub(_ name: String, create: Bool = true) throws -> URL {
        let u = url.appendingPathComponent(name)
        if create { try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true) }
        return u
    }

    /// Every file under `dir`, relative paths, sorted (for "nothing left behind" asserts).
    static func files(in dir: URL) -> [String] {
        (FileManager.default.subpaths(atPath: dir.path) ?? []).filter {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path, isDirectory: &isDir)
                && !isDir.boolValue
        }.sorted()
    }
}

/// Runs a shell snippet (sqlite3, python3, node, gzip...) and returns its stdout; fails the test
/// on a non-zero exit.
@discardableResult
func sh(_ script: String, env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws
    -> String
{
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-euo", "pipefail", "-c", script]
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let outData = PipeDrain(out)
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    let stdout = outData.wait()
    p.waitUntilExit()
    if p.terminationStatus != 0 {
        XCTFail(
            "shell failed (\(p.terminationStatus)): \(script)\n\(String(decoding: errData, as: UTF8.self))", file: file,
            line: line)
        throw NSError(domain: "sh", code: Int(p.terminationStatus))
    }
    return String(decoding: stdout, as: UTF8.self)
}

/// Reads a pipe to its end on a background thread, so that two pipes never deadlock.
final class PipeDrain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }
    func wait() -> Data { done.wait(); return data }
}

/// A ready-to-back-up app: a sample database with the catalog table, a key, a local store and a
/// private temp directory, and the environment that points laju-backup at them.
struct LocalFixture {
    let scratch: Scratch
    let database: URL
    let store: URL
    let tmp: URL
    let key: String
    var env: [String: String]

    init(scratch: Scratch, rows: Int = 2000, journalMode: String = "wal") throws {
        self.scratch = scratch
        database = scratch.url.appendingPathComponent("app.sqlite3")
        store = try scratch.sub("store")
        tmp = try scratch.sub("tmp")
        key = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(in: .whitespacesAndNewlines)
        try sh(
            """
            sqlite3 '\(database.path)' <<'SQL'
            PRAGMA journal_mode=\(journalMode);
            CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < \(rows))
              INSERT INTO items SELECT i, 'item ' || i || ' ' || hex(randomblob(8)), i % 100 FROM n;
            SQL
            """)
        try sh("sqlite3 '\(database.path)' < '\(LocalFixture.knexDDL.path)'")
        env = [
            "BACKUP_DATABASE": database.path,
            "BACKUP_STORAGE": "file://\(store.path)",
            "BACKUP_ENCRYPTION_KEY": key,
            "BACKUP_TMPDIR": tmp.path,
            "BACKUP_LOCK_DIR": tmp.path,
            // The point cache in the test's own folder, never the host's /var/cache/laju-backup.
            "BACKUP_STATE_DIR": tmp.appendingPathComponent("laju-backup-state.\(getuid())").path
        ]
    }

    /// knex's own DDL for backup_files (the reference, not our Swift copy of it).
    static var knexDDL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Resources/knex-backup-files-table.sql")
    }
}

/// Holds the lock (flock(2), as flock(1) would, but in one process so that terminating it
/// releases the lock: flock(1) leaves its child holding the descriptor) for `seconds`;
/// returns once it is held.
func holdFlock(_ path: String, seconds: Double, scratch: Scratch) throws -> Process {
    let ready = scratch.url.appendingPathComponent("held-\(UUID().uuidString.prefix(4))").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [
        "python3", "-c",
        """
        import fcntl, sys, time
        f = open(sys.argv[1], "a")
        fcntl.flock(f, fcntl.LOCK_EX)
        open(sys.argv[2], "w").close()
        time.sleep(float(sys.argv[3]))
        """, path, ready, String(seconds)
    ]
    try p.run()
    let start = Date()
    while !FileManager.default.fileExists(atPath: ready) && Date().timeIntervalSince(start) < 10 { usleep(20_000) }
    XCTAssertTrue(FileManager.default.fileExists(atPath: ready), "the helper never got the lock")
    return p
}
