import Foundation
import XCTest

/// The run lock: kept where only the running user can create files, opened
/// without following symlinks, named after the database file itself (device and inode).
final class LockSecurityTests: XCTestCase {
    func lockName(_ db: URL) throws -> String {
        let id = try sh(
            "python3 -c 'import os,sys; s=os.stat(sys.argv[1]); print(\"%x-%x\" % (s.st_dev, s.st_ino))' '\(db.path)'"
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        return "laju-backup-\(id).lock"
    }

    /// A world-writable lock directory (such as /run/lock) is refused: any user could plant a
    /// symlink there or hold the lock.
    func testWorldWritableLockDirectoryIsRefused() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let shared = try s.sub("shared-locks")
        try sh("chmod 1777 '\(shared.path)'")
        f.env["BACKUP_LOCK_DIR"] = shared.path
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("is writable by other users"), r.stderr)
        try f.assertNothingLeft(rows: 0)
    }

    /// A symlink planted at the lock file's name is never followed: the file it points to keeps
    /// its content, and the run stops with a clear message.
    func testPlantedSymlinkIsNotFollowed() throws {
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let locks = try s.sub("locks")
        try sh("chmod 0700 '\(locks.path)'")
        f.env["BACKUP_LOCK_DIR"] = locks.path
        let victim = s.url.appendingPathComponent("precious.conf")
        try Data("precious\n".utf8).write(to: victim)
        try FileManager.default.createSymbolicLink(
            atPath: locks.appendingPathComponent(try lockName(f.database)).path,
            withDestinationPath: victim.path)
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("it is a symlink"), r.stderr)
        XCTAssertEqual(
            try String(contentsOf: victim, encoding: .utf8), "precious\n", "the symlink's target was written")
        try f.assertNothingLeft(rows: 0)
    }

    /// A lock file that belongs to another user is refused (it could be held by that user).
    func testLockFileOfAnotherUserIsRefused() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to chown") }
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        let locks = try s.sub("locks")
        f.env["BACKUP_LOCK_DIR"] = locks.path
        let lock = locks.appendingPathComponent(try lockName(f.database)).path
        try sh("touch '\(lock)' && chown nobody '\(lock)'")
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 6, r.output)
        XCTAssertTrue(r.stderr.contains("is not a plain file of this user's"), r.stderr)
    }

    /// The lock belongs to the file, not to its spelling: `//dir/./db`, a symlink and a hard link
    /// all meet the same lock.
    func testEverySpellingOfTheDatabaseTakesTheSameLock() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let holder = try holdFlock(f.tmp.appendingPathComponent(try lockName(f.database)).path, seconds: 30, scratch: s)
        defer { holder.terminate(); holder.waitUntilExit() }
        let dir = f.database.deletingLastPathComponent().path
        let link = s.url.appendingPathComponent("link.sqlite3").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: f.database.path)
        let hard = s.url.appendingPathComponent("hard.sqlite3").path
        try sh("ln '\(f.database.path)' '\(hard)'")
        for spelling in ["/" + f.database.path, dir + "/./" + f.database.lastPathComponent, link, hard] {
            var env = f.env
            env["BACKUP_DATABASE"] = spelling
            let r = try CLI.run(["backup"], env: env)
            XCTAssertEqual(r.status, 7, "\(spelling): \(r.output)")
        }
        try f.assertNothingLeft(rows: 0)
    }

    /// Without BACKUP_LOCK_DIR, root's locks live in /run/laju-backup, a directory only root
    /// can write.
    func testDefaultLockDirectoryIsPrivate() throws {
        guard geteuid() == 0 else { throw XCTSkip("the default for root") }
        let s = try Scratch()
        var f = try LocalFixture(scratch: s)
        f.env["BACKUP_LOCK_DIR"] = nil
        let r = try CLI.run(["backup"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let mode = try sh("stat -c '%a %U' /run/laju-backup").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(mode, "700 root")
        let lock = "/run/laju-backup/" + (try lockName(f.database))
        XCTAssertTrue(FileManager.default.fileExists(atPath: lock))
        try? FileManager.default.removeItem(atPath: lock)
    }
}
