import Foundation
import XCTest

/// `restore --activate`: the verified backup goes into the live database in place
/// while the application keeps writing and reading, a safety copy holds the state it replaced, a
/// lock held too long leaves everything untouched (exit 7), and the safety copy undoes it.
final class ActivateTests: XCTestCase {
    /// Commits ledger rows numbered by `seq` (1, 2, ...), each in its own transaction that also
    /// updates `totals`; a row's seq is written to `progress` only after its COMMIT returned. Any
    /// error but SQLITE_BUSY ends it with status 1.
    static let writer = """
        import os, random, sqlite3, sys, time
        db, stop, progress = sys.argv[1:4]
        con = sqlite3.connect(db, timeout=60, isolation_level=None)
        k, busy = 0, 0
        while not os.path.exists(stop):
            v = random.randint(1, 1000)
            try:
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO ledger(v, seq, pad) VALUES (?, ?, randomblob(512))", (v, k + 1))
                con.execute("UPDATE totals SET n = n + 1, s = s + ?", (v,))
                con.execute("COMMIT")
            except sqlite3.OperationalError as e:
                if "locked" in str(e) or "busy" in str(e):
                    busy += 1
                    if con.in_transaction: con.execute("ROLLBACK")
                    continue
                print("writer failed after seq %d: %s" % (k, e), file=sys.stderr)
                sys.exit(1)
            k += 1
            with open(progress + ".tmp", "w") as f: f.write(str(k))
            os.replace(progress + ".tmp", progress)
            time.sleep(0.002)
        print("%d %d" % (k, busy))
        """

    /// Reads the invariant in a loop; prints reads and violations. A state mixing the old and new
    /// pages breaks it.
    static let reader = """
        import os, sqlite3, sys
        db, stop = sys.argv[1:3]
        con = sqlite3.connect(db, timeout=60, isolation_level=None)
        reads, bad = 0, 0
        while not os.path.exists(stop):
            try:
                r = con.execute(sys.argv[3]).fetchone()[0]
            except sqlite3.OperationalError as e:
                if "locked" in str(e) or "busy" in str(e): continue
                print("reader failed: %s" % e, file=sys.stderr)
                sys.exit(1)
            reads += 1
            if r != 1: bad += 1
        print("%d %d" % (reads, bad))
        """

    static let invariant =
        "SELECT (SELECT count(*) FROM ledger) = n AND (SELECT max(id) FROM ledger) = n AND (SELECT sum(v) FROM ledger) = s FROM totals"

    struct Ledger {
        let f: LocalFixture
        let safety: URL
        var env: [String: String]

        init(_ s: Scratch, journalMode: String = "wal", rows: Int = 4000) throws {
            f = try LocalFixture(scratch: s, rows: 100, journalMode: journalMode)
            safety = try s.sub("safety", create: false)
            env = f.env
            env["BACKUP_SAFETY_DIR"] = safety.path
            try sql(
                """
                CREATE TABLE ledger(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, seq INTEGER NOT NULL, pad BLOB);
                CREATE TABLE totals(n INTEGER NOT NULL, s INTEGER NOT NULL);
                WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM k WHERE i < \(rows))
                  INSERT INTO ledger(id, v, seq, pad) SELECT i, i % 997, 0, randomblob(512) FROM k;
                INSERT INTO totals SELECT count(*), sum(v) FROM ledger;
                """)
        }

        @discardableResult
        func sql(_ text: String, _ db: String? = nil) throws -> String {
            try sh("sqlite3 '\(db ?? f.database.path)' <<'SQL'\n\(text)\nSQL").trimmingCharacters(
                in: .whitespacesAndNewlines)
        }

        /// A digest of the rows of `where`, in id order.
        func digest(_ db: String, where cond: String = "1") throws -> String {
            try sh("sqlite3 '\(db)' \"SELECT id, v, seq, hex(pad) FROM ledger WHERE \(cond) ORDER BY id\" | md5sum")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func safetyFiles() -> [String] { Scratch.files(in: safety) }
    }

    func json(_ r: CLI.Result) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.output)
    }

    func testActivateWhileTheApplicationWritesAndReadsWAL() throws { try activateUnderLoad(journalMode: "wal") }

    func testActivateWhileTheApplicationWritesAndReadsRollbackJournal() throws {
        try activateUnderLoad(journalMode: "delete")
    }

    func activateUnderLoad(journalMode: String, _ name: String = #function) throws {
        let s = try Scratch(name)
        let l = try Ledger(s, journalMode: journalMode)
        let backup = try CLI.run(["backup", "--json"], env: l.env)
        XCTAssertEqual(backup.status, 0, backup.output)
        let key = try XCTUnwrap(try json(backup)["key"] as? String)
        // The backup's state as a plain file, to compare with afterwards.
        let reference = s.url.appendingPathComponent("reference.db").path
        let r = try CLI.run(["restore", "--key", key, "--output", reference], env: l.env)
        XCTAssertEqual(r.status, 0, r.output)

        let writerScript = s.url.appendingPathComponent("writer.py"),
            readerScript = s.url.appendingPathComponent("reader.py")
        try Self.writer.write(to: writerScript, atomically: true, encoding: .utf8)
        try Self.reader.write(to: readerScript, atomically: true, encoding: .utf8)
        let stop = s.url.appendingPathComponent("stop").path, progress = s.url.appendingPathComponent("progress").path
        func start(_ args: [String]) throws -> (Process, Pipe, Pipe) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3"] + args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            return (p, out, err)
        }
        let (writer, writerOut, writerErr) = try start([writerScript.path, l.f.database.path, stop, progress])
        let (reader, readerOut, readerErr) = try start([readerScript.path, l.f.database.path, stop, Self.invariant])
        defer {
            _ = FileManager.default.createFile(atPath: stop, contents: nil)
            for p in [writer, reader] where p.isRunning { p.terminate() }
        }
        func written() -> Int { Int((try? String(contentsOfFile: progress, encoding: .utf8)) ?? "0") ?? 0 }
        func waitFor(_ n: Int) {
            let t = Date()
            while written() < n && Date().timeIntervalSince(t) < 60 { usleep(20_000) }
        }
        waitFor(100)
        XCTAssertGreaterThanOrEqual(written(), 100, "the writer did not get going")

        let a = try CLI.run(["restore", "--activate", "--yes", "--json"], env: l.env, timeout: 120)
        XCTAssertEqual(a.status, 0, a.output)
        let atSwitch = written()
        waitFor(atSwitch + 100)  // the application goes on writing into the new state
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        writer.waitUntilExit()
        reader.waitUntilExit()
        let writerResult = String(decoding: writerOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let readerResult = String(decoding: readerOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let writerErrors = String(decoding: writerErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let readerErrors = String(decoding: readerErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(writer.terminationStatus, 0, "the application's writer failed: \(writerErrors)")
        XCTAssertEqual(reader.terminationStatus, 0, "the application's reader failed: \(readerErrors)")
        let finalSeq = Int(writerResult.split(separator: " ").first ?? "") ?? -1
        let readerParts = readerResult.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        XCTAssertEqual(readerParts.count, 2, readerResult)
        XCTAssertGreaterThan(readerParts.first ?? 0, 0, "the reader never read")
        XCTAssertEqual(
            readerParts.last, 0, "the reader saw \(readerParts.last ?? -1) states that mix old and new pages")

        let outcome = try json(a)
        let safety = try XCTUnwrap(outcome["safety_copy"] as? String)
        XCTAssertEqual(outcome["key"] as? String, key)
        XCTAssertTrue(safety.hasPrefix(l.safety.path + "/"), safety)
        XCTAssertTrue((outcome["undo"] as? String ?? "").contains("--from-file \(safety)"), a.output)
        XCTAssertEqual(l.safetyFiles().count, 1, "\(l.safetyFiles())")
        XCTAssertEqual(try sh("stat -c %a '\(safety)'").trimmingCharacters(in: .newlines), "600")

        // The safety copy is the state just before the switch: seed rows plus writer rows
        // 1...Ks without a gap, and consistent.
        let ks = Int(try l.sql("SELECT max(seq) FROM ledger", safety)) ?? -1
        XCTAssertEqual(try l.sql("SELECT count(*) FROM ledger WHERE seq > 0", safety), String(ks))
        XCTAssertGreaterThanOrEqual(ks, 100)
        XCTAssertEqual(try l.sql(Self.invariant, safety), "1")
        XCTAssertEqual(try l.sql("PRAGMA integrity_check", safety), "ok")

        // The live database: exactly the backup's rows, then only the writes committed after the
        // switch (Ks+1 ... the writer's last), none lost and none from before.
        let seedMax = Int(try l.sql("SELECT max(id) FROM ledger", reference)) ?? -1
        XCTAssertEqual(try l.digest(l.f.database.path, where: "id <= \(seedMax)"), try l.digest(reference))
        XCTAssertEqual(try l.sql("SELECT count(*) FROM ledger WHERE id <= \(seedMax) AND seq > 0"), "0")
        let after = try l.sql("SELECT count(*), min(seq), max(seq) FROM ledger WHERE seq > 0").split(separator: "|")
            .map(String.init)
        XCTAssertEqual(
            after, [String(finalSeq - ks), String(ks + 1), String(finalSeq)],
            "writes after the switch: \(after), safety copy up to \(ks), writer ended at \(finalSeq)")
        XCTAssertGreaterThan(finalSeq, ks)
        XCTAssertEqual(try l.sql(Self.invariant), "1")
        XCTAssertEqual(try l.sql("PRAGMA integrity_check"), "ok")
        XCTAssertEqual(try l.sql("PRAGMA journal_mode"), journalMode)

        // Undo: the safety copy goes back in, and the live rows are the pre-switch state again.
        let safetyDigest = try l.digest(safety)
        let u = try CLI.run(["restore", "--activate", "--yes", "--from-file", safety], env: l.env)
        XCTAssertEqual(u.status, 0, u.output)
        XCTAssertEqual(try l.digest(l.f.database.path), safetyDigest)
        XCTAssertEqual(try l.sql(Self.invariant), "1")
        XCTAssertEqual(l.safetyFiles().count, 2, "the undo keeps its own safety copy: \(l.safetyFiles())")
    }

    /// The application holds its write lock for longer than BACKUP_BUSY_TIMEOUT: exit 7, the
    /// live database unchanged, no safety copy left.
    func testLockHeldLongerThanTheBusyTimeoutLeavesTheDatabaseUntouched() throws {
        let s = try Scratch()
        var l = try Ledger(s, rows: 500)
        let b = try CLI.run(["backup"], env: l.env)
        XCTAssertEqual(b.status, 0, b.output)
        try l.sql("INSERT INTO ledger(v, seq, pad) VALUES (1, 1, x'00'); UPDATE totals SET n = n + 1, s = s + 1;")
        let before = try l.digest(l.f.database.path)
        let ready = s.url.appendingPathComponent("ready").path
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "python3", "-c",
            """
            import sqlite3, sys, time
            con = sqlite3.connect(sys.argv[1], isolation_level=None)
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE totals SET n = n")
            open(sys.argv[2], "w").close()
            time.sleep(8)
            con.execute("ROLLBACK")
            """, l.f.database.path, ready
        ]
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        let t = Date()
        while !FileManager.default.fileExists(atPath: ready) && Date().timeIntervalSince(t) < 10 { usleep(20_000) }
        l.env["BACKUP_BUSY_TIMEOUT"] = "1000"
        let a = try CLI.run(["restore", "--activate", "--yes"], env: l.env, timeout: 60)
        XCTAssertTrue(holder.isRunning, "the lock holder ended before the activation gave up")
        XCTAssertEqual(a.status, 7, a.output)
        XCTAssertTrue(a.stderr.contains("unchanged"), a.stderr)
        XCTAssertLessThan(a.seconds, 7, "it waited longer than the busy timeout")
        holder.terminate()
        holder.waitUntilExit()
        XCTAssertEqual(try l.digest(l.f.database.path), before)
        XCTAssertEqual(l.safetyFiles(), [], "a safety copy of a failed activation was left")
        XCTAssertEqual(Scratch.files(in: l.f.tmp).filter { !$0.hasSuffix(".lock") }, [], "temp files left")
    }

    /// The refusals that need no backup to be wrong, each before anything changes; schema
    /// differences are warned about; the JSON names the safety copy.
    func testRefusalsWarningsAndJSON() throws {
        let s = try Scratch()
        let l = try Ledger(s, rows: 200)
        let b = try CLI.run(["backup"], env: l.env)
        XCTAssertEqual(b.status, 0, b.output)
        let before = try l.digest(l.f.database.path)

        // Not on a terminal and no --yes: a usage error before anything is read.
        var r = try CLI.run(["restore", "--activate"], env: l.env)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stderr.contains("--yes"), r.stderr)
        r = try CLI.run(
            ["restore", "--activate", "--yes", "--output", s.url.appendingPathComponent("x.db").path], env: l.env)
        XCTAssertEqual(r.status, 2, r.output)
        // The live database given as the backup to activate.
        r = try CLI.run(["restore", "--activate", "--yes", "--from-file", l.f.database.path], env: l.env)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stderr.contains("-wal file beside it") || r.stderr.contains("is the live database"), r.stderr)
        try l.sql("PRAGMA wal_checkpoint(TRUNCATE)")
        let hard = s.url.appendingPathComponent("same.db").path
        XCTAssertEqual(link(l.f.database.path, hard), 0)
        r = try CLI.run(["restore", "--activate", "--yes", "--from-file", hard], env: l.env)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stderr.contains("is the live database"), r.stderr)
        // A plain SQLite file is for --activate only.
        r = try CLI.run(
            ["restore", "--from-file", hard, "--output", s.url.appendingPathComponent("y.db").path], env: l.env)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stderr.contains("plain SQLite database"), r.stderr)
        // No live database: nothing to replace; the hint says how to restore into a new file.
        var missing = l.env
        missing["BACKUP_DATABASE"] = s.url.appendingPathComponent("gone.db").path
        r = try CLI.run(["restore", "--activate", "--yes"], env: missing)
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.stderr.contains("restore --output"), r.stderr)
        XCTAssertEqual(try l.digest(l.f.database.path), before)
        XCTAssertEqual(l.safetyFiles(), [])

        // The application migrated after the backup: the activation says what differs.
        try l.sql(
            """
            PRAGMA user_version = 7;
            CREATE TABLE knex_migrations(id INTEGER PRIMARY KEY, name TEXT, batch INTEGER, migration_time DATETIME);
            INSERT INTO knex_migrations(name, batch) VALUES ('20261101_add_orders.ts', 1), ('20261120_add_index.ts', 2);
            """)
        r = try CLI.run(["restore", "--activate", "--yes", "--json"], env: l.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("user_version is 7 in the live database, 0 in the backup"), r.stderr)
        XCTAssertTrue(r.stderr.contains("knex_migrations exists in the live database but not in the backup"), r.stderr)
        XCTAssertTrue(r.stderr.contains("only in the live database: table knex_migrations"), r.stderr)
        let o = try json(r)
        XCTAssertEqual((o["schema_differences"] as? [String])?.count, 3, "\(o)")
        XCTAssertEqual(o["quick_check"] as? String, "ok")
        XCTAssertEqual(o["version"] as? Int, 1)
        let safety = try XCTUnwrap(o["safety_copy"] as? String)
        XCTAssertEqual(try l.sql("SELECT count(*) FROM knex_migrations", safety), "2")
        XCTAssertEqual(try l.sql("PRAGMA user_version"), "0")
        // The catalog is in the database and went back in time: the backup's own row came back.
        XCTAssertEqual(o["catalog_rows_added"] as? Int, 1, "\(o)")
        XCTAssertEqual(try l.sql("SELECT count(*) FROM backup_files"), "1")

        // Undo brings the migrated schema back, with its knex_migrations rows.
        r = try CLI.run(["restore", "--activate", "--yes", "--from-file", safety], env: l.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try l.sql("PRAGMA user_version"), "7")
        XCTAssertEqual(
            try l.sql("SELECT group_concat(name) FROM knex_migrations"), "20261101_add_orders.ts,20261120_add_index.ts")
    }

    /// On a terminal it asks after verifying; anything but "yes" leaves the database alone.
    func testTheTerminalPromptCanSayNo() throws {
        guard (try? sh("command -v script")) != nil else { throw XCTSkip("script(1) is not installed") }
        let s = try Scratch()
        let l = try Ledger(s, rows: 100)
        XCTAssertEqual(try CLI.run(["backup"], env: l.env).status, 0)
        try l.sql("INSERT INTO ledger(v, seq) VALUES (1, 1)")
        let before = try l.digest(l.f.database.path)
        let envLine = l.env.map { "\($0.key)='\($0.value)'" }.sorted().joined(separator: " ")
        let out = try sh(
            "echo no | script -qec \"env \(envLine) '\(CLI.binary.path)' restore --activate\" /dev/null || rc=$?; echo \"rc=${rc:-0}\""
        )
        XCTAssertTrue(out.contains("Type yes to go on"), out)
        XCTAssertTrue(out.contains("activation cancelled"), out)
        XCTAssertTrue(out.contains("rc=2"), out)
        XCTAssertEqual(try l.digest(l.f.database.path), before)
        XCTAssertEqual(l.safetyFiles(), [])
    }
}
