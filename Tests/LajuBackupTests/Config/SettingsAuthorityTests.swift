import Foundation
import XCTest
@testable import LajuBackup

/// Who may decide what: laju-backup's own settings files only when root (or the invoking user)
/// owns them and nobody else can write them; the application's `.env` only for the names the Laju
/// scripts read; no file read blocks (a FIFO in place of a settings file must not hang cron).
final class SettingsAuthorityTests: XCTestCase {
    var dir: TempDir!

    override func setUpWithError() throws { dir = try TempDir() }

    func write(_ name: String, _ text: String, mode: mode_t = 0o600) throws -> String {
        let path = dir.path + "/" + name
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertEqual(chmod(path, mode), 0)
        return path
    }

    static func message(_ body: () throws -> Any) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    /// A FIFO where a settings file should be is refused at once, not waited on. The read runs on
    /// a thread of its own with a deadline; if it blocks, the test opens the FIFO's other end so
    /// that the thread can finish, and fails.
    func testAFIFOIsRefusedWithoutBlocking() throws {
        let fifo = dir.path + "/fifo.env"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let done = DispatchSemaphore(value: 0)
        // Written by the thread before it signals, read only after the signal.
        final class Outcome: @unchecked Sendable { var text = "" }
        let outcome = Outcome()
        Thread.detachNewThread {
            outcome.text = Self.message { try EnvFile.read(path: fifo) }
            done.signal()
        }
        if done.wait(timeout: .now() + 5) == .timedOut {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            _ = done.wait(timeout: .now() + 5)
            XCTFail("reading a FIFO settings file blocked")
            return
        }
        let text = outcome.text
        XCTAssertTrue(text.contains("it is a FIFO, not a regular file"), text)
        XCTAssertTrue(text.contains(fifo), text)
    }

    func testSettingsWritableByOthersAreRefused() throws {
        for (mode, who) in [(mode_t(0o666), "every user"), (0o620, "its group")] {
            let path = try write("main-\(mode).env", "BACKUP_DATABASE=/srv/app.db\n", mode: mode)
            let text = Self.message { try EnvFile.read(path: path) }
            XCTAssertTrue(text.contains("is writable by \(who)"), text)
            XCTAssertTrue(text.contains("chmod go-w \(path)"), text)
        }
        let fine = try write("main.env", "BACKUP_DATABASE=/srv/app.db\n", mode: 0o644)
        XCTAssertEqual(try EnvFile.read(path: fine).values["BACKUP_DATABASE"], "/srv/app.db")
    }

    func testSettingsOfAnotherOwnerAreRefused() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to give a file to another user")
        let path = try write("other.env", "BACKUP_DATABASE=/etc/shadow\n", mode: 0o600)
        XCTAssertEqual(chown(path, 65534, 65534), 0)
        let text = Self.message { try EnvFile.read(path: path) }
        XCTAssertTrue(text.contains("belongs to \(userName(65534)), not to root"), text)
        XCTAssertTrue(text.contains("chown root \(path)"), text)
        // The same file through the whole load, as --env-file: refused too.
        let load = Self.message {
            try Environment.load(envFiles: [path], process: [:], systemFile: "", localFile: "")
        }
        XCTAssertTrue(load.contains("belongs to"), load)
    }

    /// The application's `.env` (owned by the application's user, who may be compromised) sets a
    /// path: refused when it would take effect, ignored with a warning when laju-backup's own
    /// file sets it anyway. The Laju names still come from it; its AWS_* are the app's own.
    func testTheApplicationsEnvMaySetOnlyTheLajuNames() throws {
        let app = dir.path + "/app"
        try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
        let dotenv = app + "/.env"
        try """
        DB_CONNECTION=production
        BACKUP_ENCRYPTION_KEY=q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=
        WASABI_BUCKET=app-bucket
        AWS_ACCESS_KEY_ID=the-apps-own
        PORT=3000
        BACKUP_METRICS_FILE=/etc/passwd
        """.write(toFile: dotenv, atomically: false, encoding: .utf8)
        XCTAssertEqual(chmod(dotenv, 0o640), 0)
        let system = try write("system.env", "BACKUP_APP_DIR=\(app)\n", mode: 0o600)
        let refused = Self.message { try Environment.load(envFiles: [], process: [:], systemFile: system) }
        XCTAssertTrue(refused.contains("\(dotenv):6 sets BACKUP_METRICS_FILE"), refused)
        XCTAssertTrue(refused.contains("may set only BACKUP_ENCRYPTION_KEY"), refused)

        let both = try write("both.env", "BACKUP_APP_DIR=\(app)\nBACKUP_METRICS_FILE=/var/lib/m.prom\n", mode: 0o600)
        let env = try Environment.load(envFiles: [], process: [:], systemFile: both)
        XCTAssertEqual(env["BACKUP_METRICS_FILE"], "/var/lib/m.prom")
        XCTAssertTrue(
            env.warnings.contains { $0.contains("\(dotenv):6 sets BACKUP_METRICS_FILE: ignored") }, "\(env.warnings)")
        XCTAssertEqual(env["WASABI_BUCKET"], "app-bucket")
        XCTAssertEqual(env["DB_CONNECTION"], "production")
        XCTAssertNotNil(env["BACKUP_ENCRYPTION_KEY"])
        XCTAssertNil(env["AWS_ACCESS_KEY_ID"], "the application's AWS_* are its own")
        XCTAssertNil(env["PORT"])

        XCTAssertEqual(chmod(dotenv, 0o646), 0)
        let open = Self.message { try Environment.load(envFiles: [], process: [:], systemFile: both) }
        XCTAssertTrue(open.contains("is writable by every user"), open)
        XCTAssertTrue(open.contains("chmod o-w \(dotenv)"), open)
    }
}
