import Foundation
import XCTest

/// The `clean` scenarios, each run against the local store and the S3 server (see
/// CleanLocalTests / CleanS3Tests).
enum CleanScenarios {
    typealias P = CleanFixture.Plant

    /// The original's rule: uploaded_at < now - N days goes, from the flag or BACKUP_RETENTION_DAYS.
    static func retentionDays(_ f: CleanFixture) throws {
        try f.plant([
            P(name: "d1", uploadedAt: CleanFixture.daysAgo(1)), P(name: "d10", uploadedAt: CleanFixture.daysAgo(10)),
            P(name: "d29", uploadedAt: CleanFixture.daysAgo(29)), P(name: "d31", uploadedAt: CleanFixture.daysAgo(31)),
            P(name: "d60", uploadedAt: CleanFixture.daysAgo(60)), P(name: "d120", uploadedAt: CleanFixture.daysAgo(120))
        ])
        var env = f.env
        env["BACKUP_RETENTION_DAYS"] = "50"
        let started = Int64(Date().timeIntervalSince1970 * 1000)
        let r1 = try CLI.run(["clean"], env: env)
        XCTAssertEqual(r1.status, 0, r1.output)
        XCTAssertTrue(r1.stderr.contains("clean ok: deleted 2"), r1.stderr)
        XCTAssertEqual(try f.activeKeys(), ["d1", "d10", "d29", "d31"].map { P(name: $0, uploadedAt: 0).key }.sorted())
        let rows = try f.rows()
        for gone in ["d60", "d120"] {
            let at = try XCTUnwrap(rows[P(name: gone, uploadedAt: 0).key] ?? nil, "\(gone) not marked")
            XCTAssertGreaterThanOrEqual(at, started, "deleted_at is epoch milliseconds")
            XCTAssertLessThan(at, started + 600_000)
        }
        XCTAssertEqual(try f.keys(), try f.activeKeys(), "objects of marked rows are gone, the rest stay")
        // The flag wins over the environment.
        let r2 = try CLI.run(["clean", "--retention-days", "30"], env: env)
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertEqual(try f.activeKeys(), ["d1", "d10", "d29"].map { P(name: $0, uploadedAt: 0).key }.sorted())
        XCTAssertEqual(try f.keys(), try f.activeKeys())
        XCTAssertEqual(try f.rows().count, 6, "rows are never removed")
    }

    /// GFS over a fixed calendar (UTC): 2025-06-30 is a Monday of ISO week 27.
    static func gfs(_ f: CleanFixture) throws {
        let u = CleanFixture.utc
        let plants = [
            P(name: "A", uploadedAt: u(2025, 6, 30, 12)), P(name: "B", uploadedAt: u(2025, 6, 29, 12)),
            P(name: "C", uploadedAt: u(2025, 6, 29, 8)), P(name: "D", uploadedAt: u(2025, 6, 23, 12)),
            P(name: "E", uploadedAt: u(2025, 6, 10, 12)), P(name: "F", uploadedAt: u(2025, 5, 20, 12)),
            P(name: "G", uploadedAt: u(2025, 5, 2, 12)), P(name: "H", uploadedAt: u(2025, 4, 15, 12)),
            P(name: "I", uploadedAt: u(2025, 3, 1, 12))
        ]
        try f.plant(plants)
        let key = { (n: String) in P(name: n, uploadedAt: 0).key }
        let r = try CLI.run(["clean", "--keep-daily", "2", "--keep-weekly", "3", "--keep-monthly", "3"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        // daily: A, B; weekly: A (W27), B (W26), E (W24); monthly: A (06), F (05), H (04).
        XCTAssertEqual(try f.activeKeys(), ["A", "B", "E", "F", "H"].map(key).sorted())
        XCTAssertEqual(try f.keys(), try f.activeKeys())
        XCTAssertTrue(r.stdout.contains("weekly 2025-W24"), r.stdout)
        XCTAssertTrue(r.stdout.contains("monthly 2025-04"), r.stdout)
        // keep-last 1 then leaves only the newest.
        let r2 = try CLI.run(["clean", "--keep-last", "1", "--json"], env: f.env)
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertEqual(try f.activeKeys(), [key("A")])
        let json = try JSONSerialization.jsonObject(with: Data(r2.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((json["deleted"] as? [String])?.sorted(), ["B", "E", "F", "H"].map(key).sorted())
        XCTAssertEqual(json["newest_verified"] as? String, key("A"))
    }

    /// --dry-run prints the plan and changes neither the catalog nor the store.
    static func dryRun(_ f: CleanFixture) throws {
        try f.plant([
            P(name: "new", uploadedAt: CleanFixture.daysAgo(2)), P(name: "old1", uploadedAt: CleanFixture.daysAgo(40)),
            P(name: "old2", uploadedAt: CleanFixture.daysAgo(400))
        ])
        let before = (try f.catalogDump(), try f.keys())
        let dbBytes = try Data(contentsOf: f.database)
        let r = try CLI.run(["clean", "--dry-run"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("would delete"), r.stdout)
        XCTAssertTrue(r.stdout.contains(P(name: "old2", uploadedAt: 0).key), r.stdout)
        XCTAssertTrue(r.stderr.contains("would delete 2, keep 1; nothing changed"), r.stderr)
        XCTAssertEqual(try f.catalogDump(), before.0)
        XCTAssertEqual(try f.keys(), before.1)
        XCTAssertEqual(try Data(contentsOf: f.database), dbBytes)
        let g = try CLI.run(["clean", "--dry-run", "--keep-last", "1"], env: f.env)
        XCTAssertEqual(g.status, 0, g.output)
        XCTAssertEqual(try f.catalogDump(), before.0)
        XCTAssertEqual(try f.keys(), before.1)
    }

    /// An object already gone counts as deleted: the row is marked, exit 0.
    static func alreadyGone(_ f: CleanFixture) throws {
        try f.plant([
            P(name: "new", uploadedAt: CleanFixture.daysAgo(1)),
            P(name: "gone", uploadedAt: CleanFixture.daysAgo(90), object: false)
        ])
        let r = try CLI.run(["clean"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertNotNil(try f.rows()[P(name: "gone", uploadedAt: 0).key] ?? nil, "row of the missing object is marked")
        XCTAssertTrue(r.stderr.contains("(object was already gone); row marked deleted"), r.stderr)
        XCTAssertTrue(r.stderr.contains("clean ok: deleted 1 (1 already gone), kept 1"), r.stderr)
        XCTAssertEqual(try f.activeKeys(), [P(name: "new", uploadedAt: 0).key])
    }

    /// A delete the store refuses leaves the row untouched; the rest goes on; exit non-zero.
    static func refusedDelete(_ f: CleanFixture, env: [String: String], expectedInMessage: String) throws {
        let key = { (n: String) in P(name: n, uploadedAt: 0).key }
        let rowsBefore = try f.rows()
        let r = try CLI.run(["clean", "--retention-days", "30"], env: env)
        XCTAssertEqual(r.status, 5, r.output)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(last.contains("error: clean: "), last)
        XCTAssertTrue(last.contains("deletion(s) failed"), last)
        XCTAssertTrue(last.contains(expectedInMessage), last)
        XCTAssertTrue(last.contains("rows are untouched"), last)
        XCTAssertEqual(try f.rows()[key("locked")] ?? nil, nil, "the refused row stays active")
        _ = rowsBefore
    }

    /// Never delete the newest backup, nor the newest whose object exists with its size.
    static func neverDeleteTheLast(_ f: CleanFixture) throws {
        let key = { (n: String) in P(name: n, uploadedAt: 0).key }
        try f.plant([
            P(name: "newest-missing", uploadedAt: CleanFixture.daysAgo(100), object: false),
            P(name: "verified", uploadedAt: CleanFixture.daysAgo(200)),
            P(name: "older", uploadedAt: CleanFixture.daysAgo(300))
        ])
        let r = try CLI.run(["clean", "--retention-days", "30"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try f.activeKeys(), [key("newest-missing"), key("verified")].sorted())
        XCTAssertEqual(try f.keys(), [key("verified")])
        XCTAssertTrue(r.stderr.contains("is in the catalog but not in"), r.stderr)
        XCTAssertTrue(r.stdout.contains("newest verified"), r.stdout)
        // Even the strictest GFS rule keeps them.
        let g = try CLI.run(["clean", "--keep-last", "1"], env: f.env)
        XCTAssertEqual(g.status, 0, g.output)
        XCTAssertEqual(try f.activeKeys(), [key("newest-missing"), key("verified")].sorted())
        XCTAssertEqual(try f.keys(), [key("verified")])
    }

    /// Orphans on both sides are reported; nothing changes without --delete-orphans.
    static func reconcileReports(_ f: CleanFixture) throws {
        let key = { (n: String) in P(name: n, uploadedAt: 0).key }
        try f.plant([
            P(name: "ok", uploadedAt: CleanFixture.daysAgo(1)),
            P(name: "lost", uploadedAt: CleanFixture.daysAgo(2), object: false)
        ])
        try f.putObjects([(key("stray"), 10), ("elsewhere/not-ours.bin", 5)])
        let before = (try f.catalogDump(), try f.keys())
        let r = try CLI.run(["clean", "--orphans", "--json"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let orphans = (json["orphan_objects"] as? [[String: Any]]) ?? []
        XCTAssertEqual(orphans.map { $0["key"] as? String }, [key("stray")], "only objects under the prefix")
        XCTAssertTrue((orphans.first?["reason"] as? String)?.hasPrefix("no row; not a backup") ?? false, "\(orphans)")
        XCTAssertEqual(orphans.first?["action"] as? String, "reported")
        let missing = (json["missing_objects"] as? [[String: Any]]) ?? []
        XCTAssertEqual(missing.map { $0["key"] as? String }, [key("lost")])
        XCTAssertTrue(r.stderr.contains("1 orphan object(s), 1 row(s) without object"), r.stderr)
        XCTAssertEqual(try f.catalogDump(), before.0)
        XCTAssertEqual(try f.keys(), before.1)
    }

    /// --delete-orphans removes orphans only past the grace period; rows never change.
    static func reconcileDeletesPastGrace(_ f: CleanFixture) throws {
        let key = { (n: String) in P(name: n, uploadedAt: 0).key }
        try f.plant([
            P(name: "ok", uploadedAt: CleanFixture.daysAgo(1)),
            P(name: "lost", uploadedAt: CleanFixture.daysAgo(2), object: false)
        ])
        try f.putObjects([(key("fresh-orphan"), 10)])
        let catalog = try f.catalogDump()
        if f.kind == .local {
            try f.putObjects([(key("old-orphan"), 10)])
            try f.age(key("old-orphan"), days: 3)
        }
        // Default grace 24h: a just-written orphan is kept (an upload may be in flight).
        let r = try CLI.run(["clean", "--orphans", "--delete-orphans"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("kept: younger than grace"), r.stdout)
        XCTAssertTrue(try f.keys().contains(key("fresh-orphan")))
        if f.kind == .local {
            XCTAssertFalse(try f.keys().contains(key("old-orphan")), "an orphan past the grace period is deleted")
        }
        // Dry run with grace 0 says what it would do and does nothing.
        let d = try CLI.run(["clean", "--delete-orphans", "--grace", "0s", "--dry-run"], env: f.env)
        XCTAssertEqual(d.status, 0, d.output)
        XCTAssertTrue(d.stdout.contains("would delete"), d.stdout)
        XCTAssertTrue(try f.keys().contains(key("fresh-orphan")))
        let z = try CLI.run(["clean", "--delete-orphans", "--grace", "0s"], env: f.env)
        XCTAssertEqual(z.status, 0, z.output)
        XCTAssertEqual(try f.keys(), [key("ok")])
        XCTAssertEqual(try f.catalogDump(), catalog, "reconcile never changes rows")
    }

    /// Option mistakes are usage errors (exit 2) and touch nothing.
    static func usageErrors(_ f: CleanFixture) throws {
        try f.plant([
            P(name: "old", uploadedAt: CleanFixture.daysAgo(100)), P(name: "new", uploadedAt: CleanFixture.daysAgo(1))
        ])
        let before = try f.catalogDump()
        for args in [
            ["clean", "--keep-last", "0"], ["clean", "--orphans", "--keep-last", "2"],
            ["clean", "--orphans", "--grace", "soon"]
        ] {
            let r = try CLI.run(args, env: f.env)
            XCTAssertEqual(r.status, 2, "\(args): \(r.output)")
        }
        var env = f.env
        env["BACKUP_RETENTION_DAYS"] = "thirty"
        let r = try CLI.run(["clean"], env: env)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.stderr.contains("BACKUP_RETENTION_DAYS=thirty"), r.stderr)
        XCTAssertEqual(try f.catalogDump(), before)
    }
}
