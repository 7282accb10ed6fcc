import Foundation
import XCTest

/// Where a run keeps private state (the point cache, safety copies), and what it never does to a
/// folder it finds: change its mode. A path someone else took first is reported with the setting
/// that fixes it. And `restore --activate` keeps the live database's journal mode.
final class PrivateStateTests: XCTestCase {
    func mode(_ path: String) throws -> String {
        try sh("stat -c %a '\(path)'").trimmingCharacters(in: .newlines)
    }

    /// A shared folder as BACKUP_STATE_DIR: the cache goes into a private subdirectory of it,
    /// and the folder keeps its mode. That subdirectory taken first by another user: refused with
    /// the setting to change, nothing stored.
    func testStateDirectoryIsPrivateAndASquattedOneIsReported() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to play the other user")
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let shared = try s.sub("shared")
        try sh("chmod 1777 '\(shared.path)'")
        f.env["BACKUP_STATE_DIR"] = shared.path
        let private_ = shared.appendingPathComponent("laju-backup-state.\(geteuid())")

        // Taken first by another user: refused, and the message names the setting.
        try sh("mkdir '\(private_.path)' && chown nobody '\(private_.path)' && chmod 0777 '\(private_.path)'")
        let r = try CLI.run(["backup", "--incremental"], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("state directory \(private_.path) belongs to another user"), r.stderr)
        XCTAssertTrue(r.stderr.contains("BACKUP_STATE_DIR"), r.stderr)
        XCTAssertFalse(r.stderr.contains("BACKUP_LOCK_DIR"), r.stderr)
        XCTAssertEqual(Scratch.files(in: f.store), [], "a point was stored")
        XCTAssertEqual(try mode(shared.path), "1777")

        // Once it is gone, the cache is made there, private, and the shared folder is as it was.
        try FileManager.default.removeItem(at: private_)
        let ok = try CLI.run(["backup", "--incremental"], env: f.env)
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertEqual(try mode(private_.path), "700")
        XCTAssertEqual(try sh("stat -c %U '\(private_.path)'").trimmingCharacters(in: .newlines), "root")
        XCTAssertEqual(Scratch.files(in: private_).filter { $0.hasSuffix(".state") }.count, 1)
        XCTAssertEqual(try mode(shared.path), "1777")
    }

    /// BACKUP_SAFETY_DIR naming a shared folder (here world-writable with the sticky bit, as
    /// /tmp): the safety copy goes into a private subdirectory; the folder's mode is untouched.
    func testASharedSafetyDirectoryKeepsItsMode() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let shared = try s.sub("shared-safety")
        try sh("chmod 1777 '\(shared.path)'")
        f.env["BACKUP_SAFETY_DIR"] = shared.path
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let a = try CLI.run(["restore", "--activate", "--yes", "--json"], env: f.env)
        XCTAssertEqual(a.status, 0, a.output)
        XCTAssertEqual(try mode(shared.path), "1777", "the shared folder's mode was changed")
        let inside = shared.appendingPathComponent("laju-backup-safety.\(geteuid())")
        XCTAssertEqual(try mode(inside.path), "700")
        let copies = Scratch.files(in: inside)
        XCTAssertEqual(copies.count, 1, "\(copies)")
        XCTAssertTrue(a.stdout.contains(inside.path + "/"), a.stdout)
        if let copy = copies.first { XCTAssertEqual(try mode(inside.appendingPathComponent(copy).path), "600") }
    }

    /// A backup taken while the database was in WAL mode, activated into it after the
    /// application switched it to a rollback journal: it stays a rollback journal (header bytes
    /// 18 and 19 say 1). A plain WAL file given with --from-file is not changed where it is.
    func testActivationKeepsTheLiveJournalMode() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        XCTAssertEqual(try CLI.run(["backup"], env: f.env).status, 0)
        let plain = s.url.appendingPathComponent("plain-wal.db").path
        try sh("sqlite3 '\(f.database.path)' \".backup '\(plain)'\" && sqlite3 '\(plain)' 'PRAGMA journal_mode=WAL'")
        func header(_ path: String) throws -> String {
            try sh("od -An -tu1 -j18 -N2 '\(path)'").split(separator: " ").joined(separator: " ")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertEqual(try header(plain), "2 2")
        XCTAssertEqual(
            try sh("sqlite3 '\(f.database.path)' 'PRAGMA journal_mode=DELETE'").trimmingCharacters(in: .newlines),
            "delete")
        for source in [["restore", "--activate", "--yes"], ["restore", "--activate", "--yes", "--from-file", plain]] {
            let a = try CLI.run(source, env: f.env)
            XCTAssertEqual(a.status, 0, a.output)
            XCTAssertEqual(try header(f.database.path), "1 1", "\(source): the live database was switched to WAL")
            XCTAssertEqual(
                try sh("sqlite3 '\(f.database.path)' 'PRAGMA journal_mode'").trimmingCharacters(in: .newlines),
                "delete")
            XCTAssertEqual(try sh("sqlite3 '\(f.database.path)' 'PRAGMA integrity_check'"), "ok\n")
        }
        XCTAssertEqual(try header(plain), "2 2", "the --from-file database was changed where it is")
        XCTAssertFalse(FileManager.default.fileExists(atPath: plain + "-wal"))
    }
}
