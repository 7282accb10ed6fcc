import Foundation
import XCTest

/// `kill -9` at random moments (and the kill loop CI runs): whatever a killed run
/// left, one more run of any command that touches the place removes every plaintext and partial
/// file, and every catalog row still names a stored object.
final class KillTests: XCTestCase {
    static let kills = 12

    /// Starts the binary without waiting for it.
    func start(_ arguments: [String], env: [String: String]) throws -> Process {
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = arguments
        var environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "TZ": "UTC",
            "LAJU_BACKUP_CONFIG": ""
        ]
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs `arguments` `kills` times, each killed with SIGKILL after a random delay within the
    /// duration of one complete run (timed first), so the kills land all along the run.
    func killLoop(_ arguments: [String], env: [String: String]) throws -> Int {
        let t0 = Date()
        let full = try CLI.run(arguments, env: env)
        XCTAssertEqual(full.status, 0, full.output)
        let maxDelay = max(0.05, Date().timeIntervalSince(t0) * 0.9)
        var killedInFlight = 0
        for _ in 0..<Self.kills {
            let p = try start(arguments, env: env)
            usleep(UInt32(Double.random(in: 0.01...maxDelay) * 1_000_000))
            if p.isRunning { killedInFlight += 1 }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        return killedInFlight
    }

    /// Every file under `dir` whose name says it is a snapshot, a partial restore or upload.
    func leftovers(under dir: URL) -> [String] {
        Scratch.files(in: dir).filter {
            let name = $0.lastPathComponentOfTest
            return name.hasPrefix(".laju-") || name == "snapshot.db" || name.contains(".partial")
                || name.contains("laju-backup.")
        }
    }

    func testKilledRestoresLeaveNoPlaintextAfterTheNextRestore() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 2000)
        try f.grow(megabytes: 24)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let outDir = try s.sub("restore-here")
        let out = outDir.appendingPathComponent("restored.db").path
        let inFlight = try killLoop(["restore", "--force", "--output", out], env: f.env)
        XCTAssertGreaterThan(inFlight, Self.kills / 2, "most kills should hit a running restore")
        let r = try CLI.run(["restore", "--force", "--output", out], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: outDir.path), ["restored.db"],
            "plaintext or partial files outlived the next restore")
        XCTAssertEqual(leftovers(under: s.url), [])
        XCTAssertEqual(
            try sh("sqlite3 'file:\(out)?immutable=1' 'PRAGMA integrity_check'").trimmingCharacters(in: .newlines), "ok"
        )
    }

    func testKilledBackupsLeaveNothingAfterTheNextBackup() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 2000)
        try f.grow(megabytes: 24)
        let inFlight = try killLoop(["backup"], env: f.env)
        XCTAssertGreaterThan(inFlight, Self.kills / 2, "most kills should hit a running backup")
        let b = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        XCTAssertEqual(leftovers(under: s.url), [], "temp files of killed runs survived the next run")
        XCTAssertEqual(Scratch.files(in: f.tmp).filter { !$0.hasSuffix(".lock") }, [])
        // Every row names an object that exists (objects without a row may exist: a kill
        // between upload and row; clean --orphans reports them).
        let keys = try f.sql("SELECT key FROM backup_files;").split(separator: "\n").map(String.init)
        XCTAssertGreaterThanOrEqual(keys.count, 1)
        for k in keys {
            XCTAssertTrue(FileManager.default.fileExists(atPath: f.objectPath(k)), "row without object: \(k)")
        }
        let v = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(v.status, 0, v.output)
    }

    /// Hidden partial uploads of dead runs in a local store: reported by clean --orphans,
    /// removed by --delete-orphans and by the next upload into that folder; those of a live run
    /// are left alone.
    func testPartialUploadsOfDeadRunsAreReportedAndRemoved() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let dead = gone.processIdentifier
        let dir = f.store.appendingPathComponent("backups")
        let partial = dir.appendingPathComponent(".laju-put-\(dead)-abcdefabcdef").path
        let live = dir.appendingPathComponent(".laju-put-\(getpid())-0123456789ab").path
        for p in [partial, partial + ".meta.json", live] { try Data("plain".utf8).write(to: URL(fileURLWithPath: p)) }
        let r = try CLI.run(["clean", "--orphans", "--json"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let partials = (o?["partials"] as? [[String: Any]]) ?? []
        let reported = partials.compactMap { ($0["upload"] as? [String: Any])?["key"] as? String }
        XCTAssertTrue(reported.contains("backups/.laju-put-\(dead)-abcdefabcdef"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: partial), "reporting removed it")
        let d = try CLI.run(["clean", "--orphans", "--delete-orphans"], env: f.env)
        XCTAssertEqual(d.status, 0, d.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial))
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial + ".meta.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live), "a running upload's file was removed")
        // The next backup into the folder removes a dead run's leftovers by itself.
        try Data("plain".utf8).write(to: URL(fileURLWithPath: partial))
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial))
        try FileManager.default.removeItem(atPath: live)
    }
}
