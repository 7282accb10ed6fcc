import Foundation
import TestSupport
import XCTest

/// `backup --incremental`, `restore --at`, `verify --at` and `list --points` through the binary,
/// on a local store and on SeaweedFS (docs/format-incremental.md).
final class PointTests: XCTestCase {
    // MARK: - Helpers

    /// One point; returns the run's JSON outcome.
    @discardableResult
    func point(_ env: [String: String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = try CLI.run(["backup", "--incremental", "--json"], env: env)
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        return try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.output, file: file,
            line: line)
    }

    /// A digest of everything in a database (schema and rows).
    func dump(_ db: String) throws -> String {
        try sh("sqlite3 '\(db)' .dump | sha256sum").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func restore(_ env: [String: String], at: String, to path: String, force: Bool = false) throws -> CLI.Result {
        try CLI.run(["restore", "--at", at, "--output", path] + (force ? ["--force"] : []), env: env)
    }

    func points(_ env: [String: String]) throws -> [[String: Any]] {
        let r = try CLI.run(["list", "--points", "--json"], env: env)
        XCTAssertEqual(r.status, 0, r.output)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return obj?["points"] as? [[String: Any]] ?? []
    }

    /// Round trip, change detection, zero-change run, list: the same on both stores.
    func roundTrip(env: [String: String], database: URL, scratch: Scratch) throws {
        let first = try CLI.run(["backup", "--incremental", "--json"], env: env)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(
            first.stderr.contains("first incremental backup") && first.stderr.contains("uploads every page"),
            first.stderr)
        let p1 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(p1["kind"] as? String, "base")
        let d1 = try dump(database.path)

        try sh(
            "sqlite3 '\(database.path)' \"UPDATE items SET qty = qty + 1 WHERE id = 77; INSERT INTO items(name, qty) VALUES ('new', 5);\""
        )
        let p2 = try point(env)
        XCTAssertEqual(p2["kind"] as? String, "incremental")
        let changed = try XCTUnwrap(p2["changed_pages"] as? Int)
        let pages = try XCTUnwrap(p2["pages"] as? Int)
        XCTAssertTrue(changed >= 1 && changed <= 6, "changed \(changed) of \(pages) pages")
        XCTAssertLessThan(try XCTUnwrap(p2["uploaded_bytes"] as? Int), try XCTUnwrap(p1["uploaded_bytes"] as? Int) / 2)
        let d2 = try dump(database.path)
        XCTAssertNotEqual(d1, d2)

        // Nothing changed: no point, said so, exit 0.
        let same = try CLI.run(["backup", "--incremental"], env: env)
        XCTAssertEqual(same.status, 0, same.output)
        XCTAssertTrue(same.stderr.contains("no changes since"), same.stderr)

        let listed = try points(env)
        XCTAssertEqual(listed.map { $0["kind"] as? String }, ["incremental", "base"], "newest first")
        XCTAssertEqual(listed.first?["time"] as? String, p2["time"] as? String)
        XCTAssertEqual(listed.first?["uploaded_bytes"] as? Int, p2["uploaded_bytes"] as? Int)
        XCTAssertEqual(listed.first?["database_bytes"] as? Int, p2["database_bytes"] as? Int)

        let out1 = scratch.url.appendingPathComponent("r/p1.db").path
        let r1 = try restore(env, at: try XCTUnwrap(p1["time"] as? String), to: out1)
        XCTAssertEqual(r1.status, 0, r1.output)
        XCTAssertEqual(try dump(out1), d1)
        let out2 = scratch.url.appendingPathComponent("r/p2.db").path
        let r2 = try restore(env, at: "latest", to: out2)
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertEqual(try dump(out2), d2)
        XCTAssertEqual(try sh("sqlite3 '\(out2)' 'PRAGMA integrity_check'"), "ok\n")
        // A time between the points gives the first; before the first, nothing.
        let t2 = try XCTUnwrap(p2["time"] as? String)
        let out3 = scratch.url.appendingPathComponent("r/p3.db").path
        let early = try restore(env, at: "2001-01-01T00:00:00Z", to: out3)
        XCTAssertEqual(early.status, 5, early.output)
        XCTAssertTrue(early.stderr.contains("no restore point"), early.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out3))
        // Existing output needs --force.
        let again = try restore(env, at: t2, to: out2)
        XCTAssertEqual(again.status, 6, again.output)
        XCTAssertEqual(try restore(env, at: t2, to: out2, force: true).status, 0)
        let v = try CLI.run(["verify", "--at", t2], env: env)
        XCTAssertEqual(v.status, 0, v.output)
        XCTAssertEqual(
            Scratch.files(in: scratch.url.appendingPathComponent("r")), ["p1.db", "p2.db"], "partial files left")
        // The live database is never a target.
        let live = try restore(env, at: "latest", to: database.path, force: true)
        XCTAssertEqual(live.status, 2, live.output)
        XCTAssertFalse(first.output.contains(env["BACKUP_ENCRYPTION_KEY"]!))
    }

    // MARK: - Tests

    func testRoundTripLocalStore() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000)
        try roundTrip(env: f.env, database: f.database, scratch: s)
        // Nothing but the private state cache and the lock stays in the temp directory.
        let left = Scratch.files(in: f.tmp).filter { !$0.hasSuffix(".lock") && !$0.hasPrefix("laju-backup-state.") }
        XCTAssertEqual(left, [])
        // Objects live under the namespace, not as backup_files rows.
        XCTAssertEqual(try sh("sqlite3 '\(f.database.path)' 'SELECT count(*) FROM backup_files'"), "0\n")
        let files = Scratch.files(in: f.store).filter { !$0.hasSuffix(".meta.json") }
        // ... the namespace of the database's identity (its id, recorded inside it), not of its path.
        let id = try sh("sqlite3 '\(f.database.path)' 'SELECT id FROM laju_backup_identity'").trimmingCharacters(
            in: .whitespacesAndNewlines)
        XCTAssertTrue(files.allSatisfy { $0.hasPrefix("backups/incremental/v2/db-\(id)/") }, "\(files)")
        XCTAssertEqual(files.filter { $0.contains("/points/") }.count, 2)
        XCTAssertEqual(files.filter { $0.contains("/packs/") }.count, 2)
    }

    func testRoundTripS3() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 5000)
        try roundTrip(env: f.env, database: f.database, scratch: s)
        let keys = try f.keys()
        XCTAssertEqual(keys.filter { $0.contains("/points/") }.count, 2, "\(keys)")
        XCTAssertEqual(try f.pendingUploads(), 0)
    }

    /// The cache is only a cache: without it, and with a forged one, the run rebuilds the
    /// parent from the store and still uploads only what changed.
    func testMissingOrForgedStateIsRebuiltFromTheStore() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000)
        try point(f.env)
        let state = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: f.tmp.path).first { $0.hasPrefix("laju-backup-state.") }
        )
        let stateDir = f.tmp.appendingPathComponent(state)
        for forge in [false, true] {
            for name in try FileManager.default.contentsOfDirectory(atPath: stateDir.path) {
                let p = stateDir.appendingPathComponent(name).path
                if forge {
                    try sh("printf 'X' | dd of='\(p)' bs=1 seek=40 conv=notrunc status=none")
                } else {
                    try FileManager.default.removeItem(atPath: p)
                }
            }
            try sh("sqlite3 '\(f.database.path)' \"UPDATE items SET qty = qty + 1 WHERE id = \(forge ? 10 : 20)\"")
            let r = try CLI.run(["backup", "--incremental", "--json"], env: f.env)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.stderr.contains("rebuilt from"), r.stderr)
            let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(o["kind"] as? String, "incremental")
            XCTAssertLessThanOrEqual(o["changed_pages"] as? Int ?? 99, 3)
        }
        let out = s.url.appendingPathComponent("out.db").path
        XCTAssertEqual(try restore(f.env, at: "latest", to: out).status, 0)
        XCTAssertEqual(try dump(out), try dump(f.database.path))
    }

    /// A writer commits rows (id, its wall-clock ms) while points are taken: every point
    /// restores to a consistent prefix of the commits, containing every commit made before the
    /// point's time and none made after the next point's.
    func testPointsOfADatabaseAWriterKeepsChanging() throws {
        try writerScenario(journalMode: "wal")
    }

    func testRollbackJournalDatabaseWithAWriter() throws {
        try writerScenario(journalMode: "delete")
    }

    func writerScenario(journalMode: String) throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 3000, journalMode: journalMode)
        try sh(
            "sqlite3 '\(f.database.path)' 'CREATE TABLE commits (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, pad BLOB)'"
        )
        let stop = s.url.appendingPathComponent("stop").path
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = [
            "python3", "-c",
            """
            import os, sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
            i = 0
            while not os.path.exists(sys.argv[2]):
                i += 1
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO commits VALUES (?, ?, randomblob(300))", (i, int(time.time() * 1000)))
                if i % 7 == 0:
                    db.execute("UPDATE items SET qty = qty + 1 WHERE id = ?", (i % 3000 + 1,))
                db.execute("COMMIT")
                time.sleep(0.003)
            """, f.database.path, stop
        ]
        try writer.run()
        defer { if writer.isRunning { writer.terminate() } }
        var taken: [[String: Any]] = []
        for _ in 0..<5 {
            Thread.sleep(forTimeInterval: 0.4)
            taken.append(try point(f.env))
        }
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        writer.waitUntilExit()
        XCTAssertEqual(
            taken.compactMap { $0["kind"] as? String },
            ["base", "incremental", "incremental", "incremental", "incremental"])
        var previous = 0
        for (n, p) in taken.enumerated() {
            let time = try XCTUnwrap(p["time"] as? String)
            let out = s.url.appendingPathComponent("p\(n).db").path
            let r = try restore(f.env, at: time, to: out)
            XCTAssertEqual(r.status, 0, r.output)
            let stats = try sh(
                "sqlite3 '\(out)' 'PRAGMA integrity_check; SELECT count(*), coalesce(max(id), 0), coalesce(min(id), 1) FROM commits'"
            )
            let lines = stats.split(separator: "\n")
            XCTAssertEqual(lines.first, "ok")
            let parts = lines.last!.split(separator: "|").compactMap { Int($0) }
            XCTAssertEqual(parts[0], parts[1], "point \(n): commits are not a gapless prefix: \(stats)")
            XCTAssertEqual(parts[2], 1)
            XCTAssertGreaterThanOrEqual(parts[1], previous, "points go back in time")
            previous = parts[1]
            let pointMs = try XCTUnwrap(msOf(time))
            // Every commit stamped well before the snapshot began is in it ...
            let before = Int(
                try sh("sqlite3 '\(f.database.path)' 'SELECT count(*) FROM commits WHERE at < \(pointMs - 300)'")
                    .trimmingCharacters(in: .whitespacesAndNewlines))!
            XCTAssertGreaterThanOrEqual(parts[1], before, "point \(n) lacks commits made before it")
            // ... and none stamped after the next point began.
            if n + 1 < taken.count, let next = msOf(taken[n + 1]["time"] as? String ?? "") {
                let after = try sh("sqlite3 '\(out)' 'SELECT count(*) FROM commits WHERE at >= \(next)'")
                XCTAssertEqual(after, "0\n", "point \(n) holds commits made after the next point")
            }
        }
        XCTAssertGreaterThan(previous, 10, "the writer did not write")
    }

    func msOf(_ rfc: String) -> Int? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: rfc).map { Int(($0.timeIntervalSince1970 * 1000).rounded()) }
    }

    /// VACUUM, a page-size change and a shrinking file between points: each restores exactly.
    func testVacuumPageSizeChangeAndShrink() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 20000)
        var expected: [(String, String)] = []
        func take(_ check: ((String) -> Void)? = nil) throws {
            let r = try CLI.run(["backup", "--incremental", "--json"], env: f.env)
            XCTAssertEqual(r.status, 0, r.output)
            check?(r.stderr)
            let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            expected.append((o["time"] as! String, try dump(f.database.path)))
        }
        try take()
        let pages0 = Int(
            try sh("sqlite3 '\(f.database.path)' 'PRAGMA page_count'").trimmingCharacters(in: .whitespacesAndNewlines))!
        try sh("sqlite3 '\(f.database.path)' 'DELETE FROM items WHERE id > 5000; VACUUM;'")
        let pages1 = Int(
            try sh("sqlite3 '\(f.database.path)' 'PRAGMA page_count'").trimmingCharacters(in: .whitespacesAndNewlines))!
        XCTAssertLessThan(pages1, pages0 / 2, "the database did not shrink")
        try take()
        try sh(
            "sqlite3 '\(f.database.path)' 'PRAGMA journal_mode=delete; PRAGMA page_size=8192; VACUUM; PRAGMA journal_mode=wal;'"
        )
        XCTAssertEqual(try sh("sqlite3 '\(f.database.path)' 'PRAGMA page_size'"), "8192\n")
        try take { XCTAssertTrue($0.contains("page size changed from 4096 to 8192"), $0) }
        try sh(
            "sqlite3 '\(f.database.path)' \"INSERT INTO items(name, qty) SELECT name || 'x', qty FROM items WHERE id < 2000\""
        )
        try take()
        let listed = try points(f.env)
        XCTAssertEqual(listed.map { $0["kind"] as? String }, ["incremental", "base", "incremental", "base"])
        for (n, (time, digest)) in expected.enumerated() {
            let out = s.url.appendingPathComponent("v\(n).db").path
            let r = try restore(f.env, at: time, to: out)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(try dump(out), digest, "point \(n)")
        }
    }

    /// A damaged or missing pack or manifest: verify and restore fail naming it and the points
    /// that depend on it, leave no file, and points that do not need it still restore.
    func testDamagedAndMissingObjects() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000)
        var times: [String] = [], packs: [String] = [], manifests: [String] = []
        for n in 0..<3 {
            if n > 0 {
                try sh(
                    "sqlite3 '\(f.database.path)' \"UPDATE items SET name = 'changed \(n)' WHERE id BETWEEN \(n * 1000) AND \(n * 1000 + 50)\""
                )
            }
            let o = try point(f.env)
            times.append(o["time"] as! String)
            packs.append(try XCTUnwrap(o["pack"] as? String))
            manifests.append(try XCTUnwrap(o["key"] as? String))
        }
        let outDir = try s.sub("out")
        let out = outDir.appendingPathComponent("x.db").path
        // Corrupt the third run's pack in its middle.
        let pack3 = f.objectPath(packs[2])
        let size = Int(try sh("stat -c %s '\(pack3)'").trimmingCharacters(in: .whitespacesAndNewlines))!
        try sh("printf '\\x55\\x55\\x55\\x55' | dd of='\(pack3)' bs=1 seek=\(size / 2) conv=notrunc status=none")
        let v = try CLI.run(["verify", "--at", "latest"], env: f.env)
        XCTAssertEqual(v.status, 4, v.output)
        XCTAssertTrue(v.stderr.contains(packs[2]) && v.stderr.contains("damaged"), v.stderr)
        let point3 = String(manifests[2].split(separator: "/").last!)
        XCTAssertTrue(v.stderr.contains(point3), "the message names the dependent point: \(v.stderr)")
        let r = try restore(f.env, at: "latest", to: out)
        XCTAssertEqual(r.status, 4, r.output)
        XCTAssertEqual(Scratch.files(in: outDir), [], "no output and no partial file")
        let ok = try restore(f.env, at: times[1], to: out)
        XCTAssertEqual(ok.status, 0, ok.output)
        try FileManager.default.removeItem(atPath: out)

        // A missing manifest in the middle of the chain.
        try FileManager.default.removeItem(atPath: f.objectPath(manifests[1]))
        let m = try CLI.run(["verify", "--at", "latest"], env: f.env)
        XCTAssertEqual(m.status, 5, m.output)
        XCTAssertTrue(m.stderr.contains(manifests[1]) && m.stderr.contains("missing"), m.stderr)
        XCTAssertTrue(m.stderr.contains(point3), m.stderr)
        XCTAssertEqual(try restore(f.env, at: "latest", to: out).status, 5)
        XCTAssertEqual(Scratch.files(in: outDir), [])
        let base = try restore(f.env, at: times[0], to: out)
        XCTAssertEqual(base.status, 0, base.output)
        try FileManager.default.removeItem(atPath: out)

        // A damaged manifest.
        let manifest1 = f.objectPath(manifests[0])
        try sh("printf 'Z' | dd of='\(manifest1)' bs=1 seek=200 conv=notrunc status=none")
        let d = try CLI.run(["restore", "--at", times[0], "--output", out], env: f.env)
        XCTAssertEqual(d.status, 4, d.output)
        XCTAssertTrue(d.stderr.contains(manifests[0]) && d.stderr.contains("damaged"), d.stderr)
        XCTAssertEqual(Scratch.files(in: outDir), [])

        // The next backup cannot use this chain: it starts a new one, which restores.
        let next = try CLI.run(["backup", "--incremental", "--json"], env: f.env)
        XCTAssertEqual(next.status, 0, next.output)
        XCTAssertTrue(next.stderr.contains("uploads every page"), next.stderr)
        XCTAssertEqual(try restore(f.env, at: "latest", to: out).status, 0)
        XCTAssertEqual(try dump(out), try dump(f.database.path))
    }

    /// A deleted pack: named, exit 5.
    func testMissingPack() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 3000)
        let o = try point(f.env)
        try FileManager.default.removeItem(atPath: f.objectPath(try XCTUnwrap(o["pack"] as? String)))
        let v = try CLI.run(["verify", "--at", "latest"], env: f.env)
        XCTAssertEqual(v.status, 5, v.output)
        XCTAssertTrue(v.stderr.contains(o["pack"] as! String) && v.stderr.contains("missing"), v.stderr)
    }

    /// After 63 incremental points a new chain starts with a base. It takes unchanged pages from
    /// the old packs, except from packs of which less than half is still in use: those pages are
    /// sealed again, so that once the old chain expires, `clean --points` deletes such a pack.
    /// Points of both chains restore to the database as it was.
    func testANewChainAfter63PointsLeavesMostlySupersededPacksBehind() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 4000)
        let first = try point(f.env)
        let basePack = f.objectPath(try XCTUnwrap(first["pack"] as? String))
        var middle: (time: String, dump: String)?
        for round in 1...63 {
            // Rows of the first 70% of the table change every round: most of the base pack is
            // superseded after the first round, the rest of it stays in use.
            try sh(
                "sqlite3 '\(f.database.path)' \"UPDATE items SET qty = qty + 1 WHERE id % 50 = \(round % 50) AND id <= 2800\""
            )
            let o = try point(f.env)
            XCTAssertEqual(o["kind"] as? String, "incremental", "round \(round)")
            if round == 30 { middle = (try XCTUnwrap(o["time"] as? String), try dump(f.database.path)) }
        }
        try sh("sqlite3 '\(f.database.path)' \"UPDATE items SET qty = qty + 1 WHERE id = 3\"")
        let rollover = try CLI.run(["backup", "--incremental", "--json"], env: f.env)
        XCTAssertEqual(rollover.status, 0, rollover.output)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(rollover.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(o["kind"] as? String, "base")
        XCTAssertTrue(rollover.stderr.contains("sealed again out of"), rollover.stderr)
        XCTAssertLessThan(
            try XCTUnwrap(o["uploaded_bytes"] as? Int), try XCTUnwrap(first["uploaded_bytes"] as? Int),
            "the new base seals only what it takes from mostly superseded packs")
        let latest = try dump(f.database.path)
        let out = s.url.appendingPathComponent("latest.db").path
        XCTAssertEqual(try restore(f.env, at: "latest", to: out).status, 0)
        XCTAssertEqual(try dump(out), latest)
        let old = s.url.appendingPathComponent("middle.db").path
        let m = try XCTUnwrap(middle)
        XCTAssertEqual(try restore(f.env, at: m.time, to: old).status, 0)
        XCTAssertEqual(try dump(old), m.dump)
        // The old chain expires: its base pack is no longer needed and goes.
        XCTAssertTrue(FileManager.default.fileExists(atPath: basePack))
        let c = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0"], env: f.env)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: basePack), c.output)
        try FileManager.default.removeItem(atPath: out)
        XCTAssertEqual(try restore(f.env, at: "latest", to: out).status, 0)
        XCTAssertEqual(try dump(out), latest)
    }

    /// A manifest grown past what its point's page count allows (a hostile or broken store) is
    /// refused from its authenticated summary, before it is downloaded; one grown less fails its
    /// tag. Either way: exit 4, the object named, no output.
    func testOversizedManifestIsRefusedBeforeDownload() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 300)
        let o = try point(f.env)
        let manifest = f.objectPath(try XCTUnwrap(o["key"] as? String))
        let out = s.url.appendingPathComponent("out.db").path
        // 65,535 pack names of 53 bytes is the largest header: past that, no point this small fits.
        try sh("head -c 8000000 /dev/zero >> '\(manifest)'")
        let big = try restore(f.env, at: "latest", to: out)
        XCTAssertEqual(big.status, 4, big.output)
        XCTAssertTrue(big.stderr.contains(o["key"] as! String) && big.stderr.contains("is impossible for"), big.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        try sh("truncate -s 2000000 '\(manifest)'")
        let grown = try restore(f.env, at: "latest", to: out)
        XCTAssertEqual(grown.status, 4, grown.output)
        XCTAssertTrue(grown.stderr.contains(o["key"] as! String) && grown.stderr.contains("damaged"), grown.stderr)
        XCTAssertFalse(grown.stderr.contains("is impossible for"), grown.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// `clean --orphans --delete-orphans` never touches incremental objects, and the original
    /// restore's "latest row" is still the full backup.
    func testCleanOrphansLeavesPointsAlone() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 3000)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        try point(f.env)
        try sh("sqlite3 '\(f.database.path)' \"UPDATE items SET qty = 0 WHERE id = 5\"")
        try point(f.env)
        let before = Scratch.files(in: f.store)
        // Make everything look old enough to be an orphan.
        try sh("find '\(f.store.path)' -type f -exec touch -d '2020-01-01' {} +")
        let c = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "1m"], env: f.env)
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertEqual(Scratch.files(in: f.store), before, c.output)
        XCTAssertEqual(try sh("sqlite3 '\(f.database.path)' 'SELECT count(*) FROM backup_files'"), "1\n")
        let out = s.url.appendingPathComponent("out.db").path
        XCTAssertEqual(try restore(f.env, at: "latest", to: out).status, 0)
        XCTAssertEqual(try dump(out), try dump(f.database.path))
    }

    /// `clean --points`: old chains go (manifests, then their packs), the newest chain stays and
    /// restores; --dry-run changes nothing.
    func testRetentionOfPoints() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 5000)
        var times: [String] = []
        try point(f.env)
        try sh("sqlite3 '\(f.database.path)' \"UPDATE items SET qty = 1 WHERE id = 3\"")
        try point(f.env)
        // A page-size change starts a new chain (a new base).
        try sh(
            "sqlite3 '\(f.database.path)' 'PRAGMA journal_mode=delete; PRAGMA page_size=8192; VACUUM; PRAGMA journal_mode=wal;'"
        )
        times.append(try point(f.env)["time"] as! String)
        try sh("sqlite3 '\(f.database.path)' \"UPDATE items SET qty = 2 WHERE id = 4\"")
        times.append(try point(f.env)["time"] as! String)
        let before = Scratch.files(in: f.store)
        let dry = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0", "--dry-run"], env: f.env)
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.stdout.contains("would delete"), dry.stdout)
        XCTAssertTrue(dry.stderr.contains("would delete 2 point(s) and 2 pack(s)"), dry.stderr)
        XCTAssertEqual(Scratch.files(in: f.store), before)
        let c = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0"], env: f.env)
        XCTAssertEqual(c.status, 0, c.output)
        let listed = try points(f.env)
        XCTAssertEqual(listed.compactMap { $0["time"] as? String }, times.reversed())
        XCTAssertEqual(
            Scratch.files(in: f.store).filter { $0.contains("/packs/") && !$0.hasSuffix(".meta.json") }.count, 2)
        for (n, t) in times.enumerated() {
            let out = s.url.appendingPathComponent("k\(n).db").path
            let r = try restore(f.env, at: t, to: out)
            XCTAssertEqual(r.status, 0, r.output)
        }
        // Every point of the newest chain is needed by the newest: nothing goes.
        try sh("sqlite3 '\(f.database.path)' \"UPDATE items SET qty = 3 WHERE id = 5\"")
        try point(f.env)
        let young = try CLI.run(["clean", "--points", "--keep-last", "1"], env: f.env)
        XCTAssertEqual(young.status, 0, young.output)
        XCTAssertTrue(young.stderr.contains("0 point(s) and 0 pack(s)"), young.stderr)
    }

    /// `kill -9` at random moments of incremental runs: the next run succeeds, no temp file of
    /// the killed runs survives it, and every listed point restores to a sound database.
    func testKilledIncrementalRunsLeaveNothingAndEveryPointRestores() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 2000)
        try f.grow(megabytes: 16)
        try point(f.env)
        func change(_ n: Int) throws {
            try sh(
                "sqlite3 '\(f.database.path)' \"UPDATE filler SET b = randomblob(65536) WHERE rowid % 5 = \(n % 5)\"")
        }
        let t0 = Date()
        try change(0)
        try point(f.env)
        let maxDelay = max(0.05, Date().timeIntervalSince(t0) * 0.9)
        var inFlight = 0
        for n in 1...8 {
            try change(n)
            let p = Process()
            p.executableURL = CLI.binary
            p.arguments = ["backup", "--incremental"]
            p.environment = CLI.environment(f.env)
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(Double.random(in: 0.01...maxDelay) * 1_000_000))
            if p.isRunning { inFlight += 1 }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        XCTAssertGreaterThan(inFlight, 3, "most kills should hit a running backup")
        try change(9)
        try point(f.env)
        let left = Scratch.files(in: s.url).filter {
            let name = $0.split(separator: "/").last.map(String.init) ?? $0
            return name.hasPrefix(".laju-") || name == "snapshot.db" || name == "pack" || name == "manifest"
                || $0.contains("/laju-backup.")
        }
        XCTAssertEqual(left, [], "temp files of killed runs survived the next run")
        for (n, p) in try points(f.env).enumerated() {
            let out = s.url.appendingPathComponent("k\(n).db").path
            let r = try restore(f.env, at: try XCTUnwrap(p["time"] as? String), to: out)
            XCTAssertEqual(r.status, 0, r.output)
        }
        let out = s.url.appendingPathComponent("latest.db").path
        XCTAssertEqual(try restore(f.env, at: "latest", to: out).status, 0)
        XCTAssertEqual(try dump(out), try dump(f.database.path))
    }

    /// Points are checked with quick_check unless BACKUP_INCREMENTAL_CHECK=full; a restore of a
    /// quick-checked point runs integrity_check on the rebuilt file, one of a fully checked point
    /// proves the bytes by the digest instead; a setting that means nothing is refused.
    func testCheckLevelOfPointsAndWhatRestoreDoesWithIt() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 2000)
        let quick = try point(f.env)
        XCTAssertEqual(quick["check"] as? String, "quick_check")
        let out = s.url.appendingPathComponent("q.db").path
        let r1 = try restore(f.env, at: "latest", to: out)
        XCTAssertEqual(r1.status, 0, r1.output)
        XCTAssertTrue(r1.stderr.contains("integrity_check: ok"), r1.stderr)
        XCTAssertFalse(r1.stderr.contains("point_digest"), r1.stderr)

        var full = f.env
        full["BACKUP_INCREMENTAL_CHECK"] = "full"
        try sh("sqlite3 '\(f.database.path)' \"INSERT INTO items(name, qty) VALUES ('x', 1);\"")
        XCTAssertEqual(try point(full)["check"] as? String, "integrity_check")
        let out2 = s.url.appendingPathComponent("f.db").path
        let r2 = try restore(f.env, at: "latest", to: out2)
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertTrue(r2.stderr.contains("point_digest"), r2.stderr)
        XCTAssertFalse(r2.stderr.contains("integrity_check: ok"), r2.stderr)

        var bad = f.env
        bad["BACKUP_INCREMENTAL_CHECK"] = "sometimes"
        let refused = try CLI.run(["backup", "--incremental"], env: bad)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("BACKUP_INCREMENTAL_CHECK"), refused.stderr)
        XCTAssertEqual(try points(f.env).count, 2)
    }

    /// The 15-minute cron line runs `backup --incremental --if-enabled` for every profile: a
    /// database without BACKUP_INCREMENTAL=true is skipped (exit 0, no point), one with it gets a
    /// point, and a value that means nothing is an error, not a silent skip.
    func testIfEnabledRunsOnlyWhereIncrementalBackupsAreOn() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 100)
        let off = try CLI.run(["backup", "--incremental", "--if-enabled"], env: f.env)
        XCTAssertEqual(off.status, 0, off.output)
        XCTAssertTrue(off.stderr.contains("incremental backups are off"), off.stderr)
        XCTAssertEqual(try points(f.env).count, 0)
        var on = f.env
        on["BACKUP_INCREMENTAL"] = "true"
        let r = try CLI.run(["backup", "--incremental", "--if-enabled"], env: on)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try points(f.env).count, 1)
        on["BACKUP_INCREMENTAL"] = "maybe"
        let bad = try CLI.run(["backup", "--incremental", "--if-enabled"], env: on)
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertEqual(try points(f.env).count, 1)
    }

    /// `restore --activate --at` puts a point's content into the live database in place, after
    /// the same checks as `restore --at`, with a safety copy of what it replaced.
    func testActivateARestorePoint() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 2000)
        let p1 = try point(f.env)
        let before = try dump(f.database.path)
        try sh(
            "sqlite3 '\(f.database.path)' \"DELETE FROM items WHERE id > 100; INSERT INTO items(name, qty) VALUES ('after', 1);\""
        )
        try point(f.env)
        XCTAssertNotEqual(try dump(f.database.path), before)
        let r = try CLI.run(
            ["restore", "--activate", "--yes", "--at", try XCTUnwrap(p1["time"] as? String), "--json"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try dump(f.database.path), before)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let safety = try XCTUnwrap(o["safety_copy"] as? String)
        XCTAssertEqual(try sh("sqlite3 '\(safety)' \"SELECT count(*) FROM items WHERE name = 'after'\""), "1\n")
        XCTAssertTrue((o["source"] as? String)?.hasPrefix("restore point ") ?? false, r.stdout)
        // No point at that time: nothing changes.
        let none = try CLI.run(["restore", "--activate", "--yes", "--at", "2001-01-01T00:00:00Z"], env: f.env)
        XCTAssertEqual(none.status, 5, none.output)
        XCTAssertEqual(try dump(f.database.path), before)
    }

    func testUsageErrors() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s, rows: 10)
        for args in [
            ["restore", "--at", "yesterday"], ["restore", "--at", "2026-12-02T10:15:03"],
            ["restore", "--at", "latest", "--key", "backups/x"],
            ["verify", "--at", "2026-13-01T00:00:00Z"], ["backup", "--incremental", "--compression", "xz"],
            ["list", "--points", "--remote"]
        ] {
            let r = try CLI.run(args, env: f.env)
            XCTAssertEqual(r.status, 2, "\(args): \(r.output)")
        }
        let none = try CLI.run(
            ["restore", "--at", "latest", "--output", s.url.appendingPathComponent("o.db").path], env: f.env)
        XCTAssertEqual(none.status, 5, none.output)
        XCTAssertTrue(none.stderr.contains("backup --incremental"), none.stderr)
    }
}
