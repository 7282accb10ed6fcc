import Foundation
import XCTest
@testable import LajuBackup

/// dotenv parsing and the documented precedence (flags > process environment > --env-file > ./.env
/// > /etc/laju-backup/laju-backup.env), on real files.
final class EnvFileTests: XCTestCase {
    func testParsesTheShapesLajuAppsUse() throws {
        let text = """
            # Laju .env
            DB_CONNECTION=production

            BACKUP_ENCRYPTION_KEY="q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
            WASABI_BUCKET='my bucket # not a comment'
            export WASABI_REGION = us-east-1   # trailing comment
            HASH_IN_VALUE=abc#def
            ESCAPED="line1\\nline2 \\"quoted\\" back\\\\slash"
            EMPTY=
            CRLF=value\r
              INDENTED=yes
            """
        let env = try EnvFile.parse(text, source: "test.env")
        XCTAssertEqual(env["DB_CONNECTION"], "production")
        XCTAssertEqual(env["BACKUP_ENCRYPTION_KEY"], "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=")
        XCTAssertEqual(env["WASABI_BUCKET"], "my bucket # not a comment")
        XCTAssertEqual(env["WASABI_REGION"], "us-east-1")
        XCTAssertEqual(env["HASH_IN_VALUE"], "abc#def", "a # not preceded by a blank is part of the value")
        XCTAssertEqual(env["ESCAPED"], "line1\nline2 \"quoted\" back\\slash")
        XCTAssertEqual(env["EMPTY"], "")
        XCTAssertEqual(env["CRLF"], "value")
        XCTAssertEqual(env["INDENTED"], "yes")
        XCTAssertEqual(env.count, 9)
    }

    func testMalformedLinesAreErrorsWithLineNumbers() {
        for (text, expect) in [
            ("OK=1\nno equals sign\n", "bad.env:2: expected NAME=value"),
            ("A=1\nB=2\nC=\"open quote\n", "bad.env:3: unterminated quoted value for C"),
            ("BAD-NAME=1", "bad.env:1: invalid variable name"),
            ("=value", "bad.env:1: invalid variable name")
        ] {
            XCTAssertThrowsError(try EnvFile.parse(text, source: "bad.env"), text) { error in
                XCTAssertEqual((error as? LajuError)?.kind, .usage)
                XCTAssertTrue("\(error)".contains(expect), "\(error)")
            }
        }
    }

    func testSecretsInAMalformedFileAreNotEchoed() {
        XCTAssertThrowsError(try EnvFile.parse("BACKUP_ENCRYPTION_KEY=\"s3cr3t-key-material", source: "x.env")) {
            error in
            XCTAssertFalse("\(error)".contains("s3cr3t"), "\(error)")
        }
    }

    /// One precedence for cron and hand runs: flags, process, --env-file files, the system file,
    /// and last the application's .env (which fills gaps but never overrides laju-backup's files;
    /// it may set only the names the Laju scripts read, such as WASABI_BUCKET).
    func testPrecedenceFlagsThenProcessThenFilesThenSystemThenAppEnv() throws {
        let dir = try CoreTestDir()
        let system = dir.file("system.env"), local = dir.file("local.env")
        let first = dir.file("first.env"), second = dir.file("second.env")
        try "A=system\nB=system\nC=system\nD=system\nE=system\n".write(
            toFile: system, atomically: true, encoding: .utf8)
        try "A=local\nB=local\nC=local\nD=local\nE=local\nWASABI_BUCKET=local\n".write(
            toFile: local, atomically: true, encoding: .utf8)
        try "A=first\nB=first\nC=first\nD=first\n".write(toFile: first, atomically: true, encoding: .utf8)
        try "A=second\nB=second\nC=second\n".write(toFile: second, atomically: true, encoding: .utf8)
        let env = try Environment.load(
            envFiles: [first, second], process: ["A": "process", "B": "process", "G": ""],
            systemFile: system, localFile: local
        )
        .overriding(["A": "flag"])
        XCTAssertEqual(env["A"], "flag")
        XCTAssertEqual(env["B"], "process")
        XCTAssertEqual(env["C"], "second", "a later --env-file wins over an earlier one")
        XCTAssertEqual(env["D"], "first")
        XCTAssertEqual(env["E"], "system", "the system file wins over the working directory's .env")
        XCTAssertEqual(env["WASABI_BUCKET"], "local", "the app's .env fills what nothing else sets")
        XCTAssertNil(env["G"], "an empty value counts as unset")
        XCTAssertEqual(env.source(of: "C"), second)
        XCTAssertEqual(env.source(of: "E"), system)
        XCTAssertEqual(env.origin(of: "E"), system + ":5")
    }

    func testMissingDefaultFilesAreSkippedButMissingEnvFileIsAnError() throws {
        let dir = try CoreTestDir()
        XCTAssertNoThrow(
            try Environment.load(
                envFiles: [], process: [:], systemFile: dir.file("none1"), localFile: dir.file("none2")))
        XCTAssertThrowsError(
            try Environment.load(
                envFiles: [dir.file("missing.env")], process: [:],
                systemFile: dir.file("none1"), localFile: dir.file("none2"))
        ) { error in
            XCTAssertEqual((error as? LajuError)?.kind, .usage)
            XCTAssertTrue("\(error)".contains("missing.env: no such file"), "\(error)")
        }
    }

    func testDatabasePathFollowsLajuConvention() {
        let cwd = FileManager.default.currentDirectoryPath
        func path(_ vars: [String: String], app: String? = nil) -> String {
            Settings(environment: Environment(layers: [("t", vars)], appDirectory: app)).databasePath
        }
        XCTAssertEqual(path([:]), cwd + "/data/dev.sqlite3")
        XCTAssertEqual(path(["DB_CONNECTION": "production"]), cwd + "/data/production.sqlite3")
        XCTAssertEqual(path(["DB_CONNECTION": "test"]), cwd + "/data/test.sqlite3")
        XCTAssertEqual(path(["DB_CONNECTION": "production", "BACKUP_DATABASE": "/srv/app.db"]), "/srv/app.db")
        // With BACKUP_APP_DIR, relative paths belong to the application, wherever the run starts.
        XCTAssertEqual(path(["DB_CONNECTION": "production"], app: "/srv/shop"), "/srv/shop/data/production.sqlite3")
        XCTAssertEqual(path(["BACKUP_DATABASE": "./db/main.sqlite3"], app: "/srv/shop"), "/srv/shop/db/main.sqlite3")
    }
}
