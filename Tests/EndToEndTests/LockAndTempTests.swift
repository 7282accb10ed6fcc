import Foundation
import XCTest

/// Two runs on one database never overlap (the lock in BACKUP_TMPDIR), and what a killed run
/// left in BACKUP_TMPDIR is cleaned by the next one.
final class LockAndTempTests: XCTestCase {
    /// The lock file laju-backup uses for `database` (Workspace.swift's RunLock naming:
    /// `laju-backup-<first 8 bytes of SHA-256 of the absolute path, hex>.lock`), computed here with
    /// sha256sum so the test does not share the code it checks.
    /// The lock is named after the database file's device and inode (in hex), not its path.
    func lockPath(_ f: LocalFixture) throws -> String {
        let id = try sh(
            "python3 -c 'import os,sys; s=os.stat(sys.argv[1]); print(\"%x-%x\" % (s.st_dev, s.st_ino))' '\(f.database.path)'"
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        return "\(f.tmp.path)/laju-backup-\(id).lock"
    }

    func holdLock(_ path: String, seconds: Double, scratch: Scratch) throws -> Process {
        try holdFlock(path, seconds: seconds, scratch: scratch)
    }

    func testSecondRunFailsWhileLockIsHeld() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let holder = try holdLock(try lockPath(f), seconds: 30, scratch: s)
        defer { holder.terminate(); holder.waitUntilExit() }
        let started = Date()
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 7, r.output)
        XCTAssertTrue(r.stderr.contains("another laju-backup run"), r.stderr)
        XCTAssertTrue(r.stderr.contains("is already working on \(f.database.path)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--lock-wait"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "without --lock-wait it fails at once")
        try f.assertNothingLeft(rows: 0)

        let waited = Date()
        let w = try CLI.run(["backup", "--lock-wait", "1"], env: f.env)
        XCTAssertEqual(w.status, 7, w.output)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(waited), 0.9, "--lock-wait 1 gave up early")
        try f.assertNothingLeft(rows: 0)
    }

    func testLockWaitQueuesBehindTheHolder() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let holder = try holdLock(try lockPath(f), seconds: 2, scratch: s)
        defer { holder.terminate(); holder.waitUntilExit() }
        let started = Date()
        let r = try CLI.run(["backup", "--lock-wait", "30"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 1.0, "it did not wait for the holder")
        try f.assertNothingLeft(rows: 1)
    }

    /// Two real runs started together: with --lock-wait both succeed, one after the other.
    func testConcurrentRunsSerialize() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 20000)
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var all: [CLI.Result?] = [nil, nil]
        }
        let results = Results()
        let group = DispatchGroup()
        let env = f.env
        for i in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                let r = try? CLI.run(["backup", "--lock-wait", "60"], env: env)
                results.lock.lock(); results.all[i] = r; results.lock.unlock()
                group.leave()
            }
        }
        group.wait()
        for r in results.all { XCTAssertEqual(r?.status, 0, r?.output ?? "no result") }
        try f.assertNothingLeft(rows: 2)
    }

    func testStaleTempDirOfAKilledRunIsRemoved() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        // A pid that is certainly gone: a process that already exited.
        let deadPid = try sh("sh -c 'echo $$'").trimmingCharacters(in: .whitespacesAndNewlines)
        let stale = f.tmp.appendingPathComponent("laju-backup.\(deadPid).Ab12Cd")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 4096).write(to: stale.appendingPathComponent("snapshot.db"))
        try Data(repeating: 8, count: 4096).write(to: stale.appendingPathComponent("object.db.gz.enc"))
        // A run that is still alive (this test process) must keep its directory.
        let alive = f.tmp.appendingPathComponent("laju-backup.\(getpid()).Zz99Yy")
        try FileManager.default.createDirectory(at: alive, withIntermediateDirectories: true)
        // Something that merely looks similar is not ours to delete.
        let other = f.tmp.appendingPathComponent("laju-backup-notes.txt")
        try "keep".write(to: other, atomically: true, encoding: .utf8)

        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path), "stale temp dir of pid \(deadPid) survived")
        XCTAssertTrue(r.stderr.contains("removed \(stale.path) left by an interrupted run (pid \(deadPid))"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: alive.path), "a live run's directory was removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: other.path))
        try FileManager.default.removeItem(at: alive)
        try FileManager.default.removeItem(at: other)
        try f.assertNothingLeft(rows: 1)
    }

    /// A run really killed (SIGKILL) mid-backup leaves its directory; the next run removes it.
    func testKilledRunIsCleanedByTheNextOne() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        try f.grow(megabytes: 24)
        f.env["BACKUP_GZIP_LEVEL"] = "9"
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["backup"]
        p.environment = f.env.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a }
        p.standardError = FileHandle.nullDevice
        try p.run()
        var workspace: String?
        let start = Date()
        while workspace == nil && Date().timeIntervalSince(start) < 20 {
            workspace = (try? FileManager.default.contentsOfDirectory(atPath: f.tmp.path))?.first {
                $0.hasPrefix("laju-backup.")
            }
            if workspace == nil { usleep(10_000) }
        }
        let dir = try XCTUnwrap(workspace, "the run never made its temp directory")
        usleep(50_000)  // inside the snapshot or the seal of 24 MiB at gzip -9
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: "\(f.tmp.path)/\(dir)"), "nothing to clean: the test proves nothing")
        XCTAssertEqual(try f.rowCount(), 0)

        f.env["BACKUP_GZIP_LEVEL"] = "1"
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("left by an interrupted run"), r.stderr)
        try f.assertNothingLeft(rows: 1)
    }

    /// The private temp directory is mode 0700 and on the configured base, observed during a run.
    func testWorkspaceIsPrivateAndRemoved() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        try f.grow(megabytes: 24)
        f.env["BACKUP_GZIP_LEVEL"] = "9"  // slow enough to look inside while it runs
        let seen = s.url.appendingPathComponent("seen").path
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: "/bin/bash")
        watcher.arguments = [
            "-c",
            "for i in $(seq 1 400); do d=$(ls -d '\(f.tmp.path)'/laju-backup.*.* 2>/dev/null | head -1); if [ -n \"$d\" ]; then stat -c %a \"$d\" > '\(seen)'; exit 0; fi; sleep 0.01; done"
        ]
        try watcher.run()
        let r = try CLI.run(["backup"], env: f.env)
        watcher.waitUntilExit()
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(
            try String(contentsOfFile: seen, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), "700")
        try f.assertNothingLeft(rows: 1)
    }
}
