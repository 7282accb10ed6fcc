import Foundation
import XCTest

/// A backup taken while another process keeps writing is consistent: it finishes in bounded time,
/// the restore passes integrity_check, and its content is one committed state (an invariant that
/// every transaction keeps holds in it), in WAL and in rollback-journal mode.
final class SnapshotConcurrencyTests: XCTestCase {
    func testSnapshotUnderConcurrentWritesWAL() throws { try snapshotUnderWrites(journalMode: "wal") }

    func testSnapshotUnderConcurrentWritesRollbackJournal() throws { try snapshotUnderWrites(journalMode: "delete") }

    /// Each writer transaction inserts a ledger row (with 2 KB of padding, so the file grows and
    /// pages move) and adds it to `totals`: in every committed state count = max(id) = totals.n and
    /// sum(v) = totals.s. A torn snapshot breaks that.
    static let writer = """
        import os, random, sqlite3, sys, time
        db, stop, progress = sys.argv[1:4]
        con = sqlite3.connect(db, timeout=60, isolation_level=None)
        n, deadline = 0, time.time() + 100
        while not os.path.exists(stop) and time.time() < deadline:
            v = random.randint(1, 1000)
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO ledger(v, pad) VALUES (?, randomblob(2048))", (v,))
            con.execute("UPDATE totals SET n = n + 1, s = s + ?", (v,))
            if n % 7 == 0:
                # Rewrite old pages too, not only append.
                con.execute("UPDATE ledger SET pad = randomblob(2048) WHERE id = ?", (random.randint(1, 1000),))
            con.execute("COMMIT")
            n += 1
            if n % 20 == 0:
                with open(progress + ".tmp", "w") as f: f.write(str(n))
                os.replace(progress + ".tmp", progress)
            time.sleep(0.001)
        with open(progress, "w") as f: f.write(str(n))
        """

    static let invariant = """
        SELECT (SELECT count(*) FROM ledger) = n AND (SELECT max(id) FROM ledger) = n
               AND (SELECT sum(v) FROM ledger) = s FROM totals;
        """

    func snapshotUnderWrites(journalMode: String, _ name: String = #function) throws {
        let s = try Scratch(name)
        let f = try LocalFixture(scratch: s, rows: 100, journalMode: journalMode)
        try f.sql(
            """
            CREATE TABLE ledger(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad BLOB);
            CREATE TABLE totals(n INTEGER NOT NULL, s INTEGER NOT NULL);
            WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i < 3000)
              INSERT INTO ledger(id, v, pad) SELECT i, i % 997, randomblob(2048) FROM k;
            INSERT INTO totals SELECT count(*), sum(v) FROM ledger;
            """)
        XCTAssertEqual(try f.sql("PRAGMA journal_mode;").trimmingCharacters(in: .whitespacesAndNewlines), journalMode)
        let script = s.url.appendingPathComponent("writer.py")
        try Self.writer.write(to: script, atomically: true, encoding: .utf8)
        let stop = s.url.appendingPathComponent("stop").path, progress = s.url.appendingPathComponent("progress").path

        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = ["python3", script.path, f.database.path, stop, progress]
        let writerErr = Pipe()
        writer.standardError = writerErr
        try writer.run()
        defer { if writer.isRunning { writer.terminate() } }
        func written() -> Int { Int((try? String(contentsOfFile: progress, encoding: .utf8)) ?? "0") ?? 0 }
        let waitStart = Date()
        while written() < 100 && Date().timeIntervalSince(waitStart) < 30 { usleep(50_000) }
        XCTAssertGreaterThanOrEqual(written(), 100, "the writer did not get going")

        // Two backups back to back while the writer runs: each must finish in bounded time.
        var keys: [String] = []
        for _ in 0..<2 {
            let before = written()
            let started = Date()
            let b = try CLI.run(["backup", "--json"], env: f.env, timeout: 60)
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertEqual(b.status, 0, b.output)
            XCTAssertLessThan(elapsed, 30, "backup under writes took \(elapsed) s")
            let outcome = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any]
            keys.append(try XCTUnwrap(outcome?["key"] as? String))
            XCTAssertGreaterThanOrEqual(written(), before)
        }
        usleep(200_000)
        let duringBackups = written()
        try "".write(toFile: stop, atomically: true, encoding: .utf8)
        writer.waitUntilExit()
        XCTAssertEqual(
            writer.terminationStatus, 0,
            String(decoding: writerErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        let final = written()
        XCTAssertGreaterThan(final, 100)
        XCTAssertGreaterThanOrEqual(final, duringBackups)

        for key in keys {
            let out = s.url.appendingPathComponent("restored-\(keys.firstIndex(of: key)!).db")
            let r = try CLI.run(["restore", "--key", key, "--output", out.path], env: f.env)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(try sh("sqlite3 '\(out.path)' 'PRAGMA integrity_check'"), "ok\n")
            XCTAssertEqual(
                try sh("sqlite3 '\(out.path)' '\(Self.invariant)'"), "1\n", "restored \(key) is not a committed state")
            let n = Int(
                try sh("sqlite3 '\(out.path)' 'SELECT n FROM totals'").trimmingCharacters(in: .whitespacesAndNewlines))!
            XCTAssertGreaterThan(
                n, 3000 + 99, "the snapshot predates writes that had committed before the backup started")
            XCTAssertLessThanOrEqual(n, 3000 + final)
            // A backup never contains its own catalog row (it is written after the upload).
            XCTAssertEqual(
                try sh("sqlite3 '\(out.path)' \"SELECT count(*) FROM backup_files WHERE key = '\(key)'\""), "0\n")
        }
        // The live database is intact and consistent too.
        XCTAssertEqual(try f.sql(Self.invariant).trimmingCharacters(in: .whitespacesAndNewlines), "1")
        try f.assertNothingLeft(rows: 2)
    }
}
