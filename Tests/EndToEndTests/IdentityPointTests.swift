import Foundation
import XCTest

/// Restore points belong to an identity, not a path: points and packs copied from another
/// database's namespace do not authenticate and are never restored or deleted as this
/// database's; a disaster restore at another path finds this database's points; points made
/// before identities stay restorable, listable and cleanable. Store cases run on the local store
/// and on SeaweedFS.
final class IdentityPointTests: XCTestCase {
    typealias Two = TwoDatabases

    /// `backup --incremental --json` that must succeed; the manifest's object key and the
    /// point's time (RFC 3339).
    @discardableResult
    func point(_ env: [String: String], file: StaticString = #filePath, line: UInt = #line) throws -> (
        key: String, time: String
    ) {
        let r = try CLI.run(["backup", "--incremental", "--json"], env: env)
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return (
            try XCTUnwrap(o?["key"] as? String, r.output, file: file, line: line),
            try XCTUnwrap(o?["time"] as? String, r.output, file: file, line: line)
        )
    }

    /// The namespace a point's key lies in (up to and including the `/` before `points/`).
    func root(of key: String) -> String { String(key[..<key.range(of: "points/")!.lowerBound]) }

    // MARK: - Points copied between databases

    func testTransplantedPointsAreNotThisDatabasesLocal() throws { try transplantedPoints(try Two.local()) }
    func testTransplantedPointsAreNotThisDatabasesS3() throws { try transplantedPoints(try Two.s3()) }

    /// Someone with write access but no key copies A's points and packs into B's namespace, A's
    /// newest point being newer than B's. B's `restore --at latest` (and with `--activate`) is
    /// refused with exit 4 naming the copied point, and writes nothing; B's own point still
    /// restores; `clean --points` keeps B's point and deletes none of the copies, whose manifests
    /// and packs do not prove they are B's.
    func transplantedPoints(_ t: Two) throws {
        let a1 = try point(t.envA).key
        let (b1, b1Time) = try point(t.envB)
        let bState = try SQLiteContent.of(t.b.database, immutable: false)
        usleep(1_100_000)
        try t.a.sql("UPDATE items SET name = 'a later' WHERE id <= 30;")
        let a2 = try point(t.envA).key
        let (fromA, toB) = (root(of: a1), root(of: b1))
        XCTAssertEqual(root(of: a2), fromA)
        XCTAssertNotEqual(fromA, toB)
        var copies: [String] = []
        for k in try t.intruder.keys() where k.hasPrefix(fromA) {
            let copy = toB + k.dropFirst(fromA.count)
            try t.intruder.copy(k, to: copy)
            copies.append(copy)
        }
        let copiedNewest = toB + a2.dropFirst(fromA.count)

        let out = t.scratch.url.appendingPathComponent("latest.db")
        let r = try CLI.run(["restore", "--at", "latest", "--output", out.path], env: t.envB)
        XCTAssertEqual(r.status, 4, r.output)
        XCTAssertTrue(r.stderr.contains(String(copiedNewest.split(separator: "/").last!)), r.stderr)
        XCTAssertTrue(r.stderr.contains("does not authenticate"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        let live = try SQLiteContent.of(t.b.database, immutable: false)
        let act = try CLI.run(["restore", "--at", "latest", "--activate", "--yes"], env: t.envB)
        XCTAssertEqual(act.status, 4, act.output)
        XCTAssertEqual(try SQLiteContent.of(t.b.database, immutable: false), live, "another database was put live")

        let own = try CLI.run(["restore", "--at", b1Time, "--output", out.path], env: t.envB)
        XCTAssertEqual(own.status, 0, own.output)
        XCTAssertEqual(try SQLiteContent.of(out), bState)

        let c = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0"], env: t.envB)
        XCTAssertEqual(c.status, 0, c.output)
        let left = Set(try t.intruder.keys())
        XCTAssertTrue(left.contains(b1), c.output)
        XCTAssertEqual(
            copies.filter { !left.contains($0) }, [], "clean deleted copies it cannot prove are B's: \(c.output)")
    }

    // MARK: - A disaster restore of points on a new host

    func testDisasterRestoreFindsThePointsAtAnotherPathLocal() throws { try pointsAtAnotherPath(try Two.local()) }
    func testDisasterRestoreFindsThePointsAtAnotherPathS3() throws { try pointsAtAnotherPath(try Two.s3()) }

    /// A full backup, then a newer point. With the database gone and the settings pointing at
    /// another folder, the full restore says a newer point exists, and `restore --at latest`
    /// finds it and brings back its state.
    func pointsAtAnotherPath(_ t: Two) throws {
        try Two.backup(t.envA)
        usleep(1_100_000)
        try t.a.sql("UPDATE items SET name = 'after the full backup' WHERE id <= 25;")
        try point(t.envA)
        let newest = try SQLiteContent.of(t.a.database, immutable: false)
        Two.lose(t.a.database)

        let (moved, database) = try t.newHost(t.envA)
        let full = try CLI.run(
            ["restore", "--output", database.deletingLastPathComponent().appendingPathComponent("full.sqlite3").path],
            env: moved)
        XCTAssertEqual(full.status, 0, full.output)
        XCTAssertTrue(full.stderr.contains("a restore point newer than this backup exists"), full.stderr)
        let r = try CLI.run(["restore", "--at", "latest", "--output", database.path], env: moved)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try SQLiteContent.of(database), newest)
    }

    /// No declared name, no database and no full backup: nothing says which points are this
    /// database's, so another database's points, even the only ones there, are not restored.
    func testPointsOfAnUnknownIdentityAreNotGuessed() throws {
        let t = try Two.local()
        try point(t.envB)
        Two.lose(t.a.database)
        let out = t.scratch.url.appendingPathComponent("guess.db")
        let r = try CLI.run(["restore", "--at", "latest", "--output", out.path], env: t.envA)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stderr.contains("database id \(try Two.databaseID(t.b.database))"), r.stderr)
        XCTAssertTrue(r.stderr.contains("BACKUP_NAME"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    /// Points made before the database declared its name stay under its id: after BACKUP_NAME is
    /// set, a new point goes to the name's namespace, and a time before it still finds the old one.
    func testPointsFromBeforeANameWasDeclaredStayFound() throws {
        let t = try Two.local()
        let (old, oldTime) = try point(t.envA)
        XCTAssertTrue(old.contains("/incremental/v2/db-"), old)
        let before = try SQLiteContent.of(t.a.database, immutable: false)
        usleep(1_100_000)
        try t.a.sql("UPDATE items SET name = 'named now' WHERE id <= 10;")
        var named = t.envA
        named["BACKUP_NAME"] = "shop"
        XCTAssertTrue(try point(named).key.contains("/incremental/v2/name-shop/"))
        let out = t.scratch.url.appendingPathComponent("old.db")
        let r = try CLI.run(["restore", "--at", oldTime, "--output", out.path], env: named)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try SQLiteContent.of(out), before)
    }

    // MARK: - Points made before identities

    /// A store holding points of format 1 (made by an earlier laju-backup, see
    /// Resources/points-v1/README), moved to the namespace of this test's path. They restore
    /// (with a line saying what they cannot prove), are listed, and after the first new point
    /// the newest state comes from the new namespace while an earlier time still reaches the
    /// old one; `clean --points --keep-last 1` then deletes the old points and their packs.
    func testPointsMadeBeforeIdentitiesStayUsable() throws {
        let s = try Scratch()
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources/points-v1")
        let store = try s.sub("store")
        try sh("cp -r '\(fixture.path)/store/.' '\(store.path)/'")
        let key = try String(contentsOf: fixture.appendingPathComponent("key.txt"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let database = s.url.appendingPathComponent("app.sqlite3")
        let sourceID = try sh(
            """
            python3 -c 'import hmac,hashlib,base64,os,sys; p=os.path.realpath(sys.argv[1])+"/app.sqlite3"; print(hmac.new(base64.b64decode(sys.argv[2]), ("laju-backup source id v1\\n"+p).encode(), hashlib.sha256).hexdigest()[:16])' '\(s.path)' '\(key)'
            """
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        let old = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: store.path + "/backups/incremental").first)
        try sh(
            "mv '\(store.path)/backups/incremental/\(old)' '\(store.path)/backups/incremental/app.sqlite3.\(sourceID)'")
        let tmp = try s.sub("tmp")
        let env = [
            "BACKUP_DATABASE": database.path, "BACKUP_STORAGE": "file://\(store.path)", "BACKUP_ENCRYPTION_KEY": key,
            "BACKUP_TMPDIR": tmp.path, "BACKUP_LOCK_DIR": tmp.path, "BACKUP_STATE_DIR": tmp.path + "/state"
        ]
        let expected = try SQLiteContent.of(fixture.appendingPathComponent("latest.sqlite3"))

        let r = try CLI.run(["restore", "--at", "latest", "--output", database.path], env: env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("was made before identities"), r.stderr)
        XCTAssertEqual(try SQLiteContent.of(database), expected)
        let l = try CLI.run(["list", "--points", "--json"], env: env)
        XCTAssertEqual(l.status, 0, l.output)
        XCTAssertEqual(l.stdout.components(separatedBy: "\"point\"").count - 1, 2, l.stdout)
        XCTAssertEqual(l.stdout.components(separatedBy: "made_before_identities").count - 1, 2, l.stdout)

        try sh("sqlite3 '\(database.path)' \"UPDATE items SET name = 'new era' WHERE id <= 10\"")
        usleep(1_100_000)
        let fresh = try point(env).key
        XCTAssertTrue(fresh.contains("/incremental/v2/db-"), fresh)
        let now = try SQLiteContent.of(database, immutable: false)
        let latest = try CLI.run(["restore", "--at", "latest", "--output", s.path + "/latest.db"], env: env)
        XCTAssertEqual(latest.status, 0, latest.output)
        XCTAssertEqual(try SQLiteContent.of(URL(fileURLWithPath: s.path + "/latest.db")), now)
        // The fixture's points were made at 2026-12-07T23:53:14.933Z, long before the new one.
        let earlier = try CLI.run(["restore", "--at", "2026-12-07T23:53:20Z", "--output", s.path + "/e.db"], env: env)
        XCTAssertEqual(earlier.status, 0, earlier.output)
        XCTAssertTrue(earlier.stderr.contains("was made before identities"), earlier.stderr)
        XCTAssertEqual(try SQLiteContent.of(URL(fileURLWithPath: s.path + "/e.db")), expected)

        let c = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0"], env: env)
        XCTAssertEqual(c.status, 0, c.output)
        let files = Scratch.files(in: store).filter { !$0.hasSuffix(".meta.json") }
        XCTAssertEqual(files.filter { $0.contains("/incremental/app.sqlite3.") }, [], c.output)
        XCTAssertTrue(files.contains(fresh), c.output)
        let after = try CLI.run(["restore", "--at", "latest", "--output", s.path + "/after.db"], env: env)
        XCTAssertEqual(after.status, 0, after.output)
    }
}
