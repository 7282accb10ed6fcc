import Foundation
import XCTest

/// Where a restore may write: never over the live database by any
/// spelling, never beside stale `-wal`/`-shm` files, paths starting with `//`, dangling symlinks,
/// long names.
final class RestoreSafetyTests: XCTestCase {
    /// A fixture with one backup, and a process that keeps the live database open in WAL mode
    /// with rows that live only in its -wal (autocheckpoint off), as a running app does.
    func liveApp(_ s: Scratch) throws -> (LocalFixture, Process) {
        let f = try LocalFixture(scratch: s)
        let b = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        let ready = s.url.appendingPathComponent("app-ready").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c",
            """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("PRAGMA wal_autocheckpoint=0")
            c.execute("CREATE TABLE IF NOT EXISTS live(x)")
            c.executemany("INSERT INTO live VALUES (?)", [(i,) for i in range(500)])
            open(sys.argv[2], "w").close()
            time.sleep(120)
            """, f.database.path, ready
        ]
        try p.run()
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: ready) && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.database.path + "-wal"), "the app's WAL exists")
        return (f, p)
    }

    func digest(_ paths: [String]) throws -> String {
        try sh("sha256sum " + paths.map { "'\($0)'" }.joined(separator: " ") + " 2>/dev/null; stat -c %i '\(paths[0])'")
    }

    /// Case 1: every spelling of the live database (or of its side files) is refused, even with
    /// --force; the database, its WAL and the rows that live only there are untouched.
    func testRestoreNeverReplacesTheLiveDatabase() throws {
        let s = try Scratch()
        let (f, app) = try liveApp(s)
        defer { app.terminate(); app.waitUntilExit() }
        let db = f.database.path
        let dir = f.database.deletingLastPathComponent().path
        let before = try digest([db, db + "-wal"])
        try FileManager.default.createSymbolicLink(
            atPath: s.url.appendingPathComponent("link.db").path, withDestinationPath: db)
        try sh("ln '\(db)' '\(s.url.appendingPathComponent("hard.db").path)'")
        try FileManager.default.createSymbolicLink(
            atPath: s.url.appendingPathComponent("dirlink").path, withDestinationPath: dir)
        let spellings = [
            db, "/" + db, dir + "/./" + db.lastPathComponentOfTest,
            dir + "/../" + dir.lastPathComponentOfTest + "/" + db.lastPathComponentOfTest,
            s.url.appendingPathComponent("link.db").path, s.url.appendingPathComponent("hard.db").path,
            s.url.appendingPathComponent("dirlink").path + "/" + db.lastPathComponentOfTest,
            db + "-wal", db + "-shm", db + "-journal"
        ]
        for out in spellings {
            let r = try CLI.run(["restore", "--force", "--output", out], env: f.env)
            XCTAssertEqual(r.status, 2, "\(out): \(r.output)")
            XCTAssertTrue(r.stderr.contains("refusing to restore over"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.contains("error:") }.count, 1, r.stderr)
        }
        // Relative to the working directory, too.
        let rel = try CLI.run(
            ["restore", "--force", "--output", db.lastPathComponentOfTest], env: f.env,
            cwd: f.database.deletingLastPathComponent())
        XCTAssertEqual(rel.status, 2, rel.output)
        XCTAssertEqual(try digest([db, db + "-wal"]), before, "the live database or its WAL changed")
        XCTAssertEqual(
            try sh("sqlite3 '\(db)' 'SELECT count(*) FROM live'").trimmingCharacters(in: .whitespacesAndNewlines), "500"
        )
        XCTAssertFalse(FileManager.default.fileExists(atPath: db + "-journal"))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".laju") }, [],
            "partial files left")
    }

    /// Case 1, the catalog: a separate catalog file is live too.
    func testRestoreNeverReplacesASeparateCatalog() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let catalog = s.url.appendingPathComponent("catalog.sqlite3").path
        f.env["BACKUP_CATALOG"] = catalog
        XCTAssertEqual(try CLI.run(["migrate"], env: f.env).status, 0)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let before = try digest([catalog])
        let r = try CLI.run(["restore", "--force", "--output", catalog], env: f.env)
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertEqual(try digest([catalog]), before)
    }

    /// Case 4: stale -wal/-shm beside the target (from an earlier database) would be applied by
    /// SQLite to the restored file. Without --force the restore stops; with --force they are
    /// removed first, and the file as SQLite then opens it is the backup, intact.
    func testStaleWalBesideTheTargetIsNeverApplied() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let expected = try SQLiteContent.of(f.database)
        let outDir = try s.sub("out")
        let out = outDir.appendingPathComponent("restored.db").path
        // An earlier database at that name, killed with its WAL full of frames.
        try sh(
            """
            python3 - '\(s.url.appendingPathComponent("earlier.db").path)' '\(out)' <<'PY'
            import sqlite3, shutil, sys
            src, target = sys.argv[1], sys.argv[2]
            c = sqlite3.connect(src, isolation_level=None)
            c.execute("PRAGMA journal_mode=wal"); c.execute("PRAGMA wal_autocheckpoint=0")
            c.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, junk BLOB)")
            c.executemany("INSERT INTO items (junk) VALUES (randomblob(3000))", [()] * 300)
            shutil.copy(src + "-wal", target + "-wal"); shutil.copy(src + "-shm", target + "-shm")
            c.close()
            PY
            """)
        let refused = try CLI.run(["restore", "--output", out], env: f.env)
        XCTAssertEqual(refused.status, 6, refused.output)
        XCTAssertTrue(refused.stderr.contains("restored.db-wal is left beside"), refused.stderr)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: out), "restored file appeared although the restore was refused")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "-wal"), "without --force nothing is removed")

        let forced = try CLI.run(["restore", "--force", "--output", out], env: f.env)
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertEqual(
            try sh("sqlite3 '\(out)' 'PRAGMA integrity_check'").trimmingCharacters(in: .whitespacesAndNewlines), "ok")
        XCTAssertEqual(
            try SQLiteContent.of(URL(fileURLWithPath: out), immutable: false), expected,
            "the file as opened is the backup")
    }

    /// Case 8: paths starting with // are plain paths (SQLite must not read them as a URI
    /// authority), for the output directory and for the temp directory.
    func testDoubleSlashPathsWork() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let out = "/" + s.url.appendingPathComponent("out/restored.db").path
        let r = try CLI.run(["restore", "--output", out], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(
            try SQLiteContent.of(URL(fileURLWithPath: String(out.dropFirst()))), try SQLiteContent.of(f.database))
        f.env["BACKUP_TMPDIR"] = "/" + f.tmp.path
        let v = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(v.status, 0, v.output)
        let d = try CLI.run(["restore", "--output-dir", "//" + s.url.appendingPathComponent("out2").path], env: f.env)
        XCTAssertEqual(d.status, 0, d.output)
    }

    /// Case 16: a dangling symlink at --output is an existing name: replaced only with --force,
    /// and then the link itself is replaced (nothing is created where it pointed).
    func testDanglingSymlinkAtOutputNeedsForce() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let out = s.url.appendingPathComponent("restored.db").path
        let nowhere = s.url.appendingPathComponent("nowhere/target.db").path
        try FileManager.default.createSymbolicLink(atPath: out, withDestinationPath: nowhere)
        let r = try CLI.run(["restore", "--output", out], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("already exists (a symlink)"), r.stderr)
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(atPath: out), nowhere, "the symlink was touched")
        let forced = try CLI.run(["restore", "--force", "--output", out], env: f.env)
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertNil(try? FileManager.default.destinationOfSymbolicLink(atPath: out), "still a symlink")
        XCTAssertFalse(FileManager.default.fileExists(atPath: nowhere))
    }

    /// Case 16: a 243-byte output name is valid (NAME_MAX is 255); the temp name must not be
    /// derived from it.
    func testLongOutputNameWorks() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let name = String(repeating: "n", count: 240) + ".db"
        let out = try s.sub("long").appendingPathComponent(name).path
        let r = try CLI.run(["restore", "--output", out], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
        let tooLong = s.url.appendingPathComponent("long/" + String(repeating: "n", count: 256)).path
        let t = try CLI.run(["restore", "--output", tooLong], env: f.env)
        XCTAssertEqual(t.status, 2, t.output)
    }
}

/// The user tables of a database as text (sqlite3 CLI), to compare two databases by content.
/// `immutable` reads the file alone (no -wal, no locks); otherwise SQLite opens it as an
/// application would, side files included.
enum SQLiteContent {
    static func of(_ db: URL, immutable: Bool = true) throws -> String {
        let name = immutable ? "file:\(db.path)?immutable=1" : db.path
        return try sh("sqlite3 '\(name)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'")
    }
}
