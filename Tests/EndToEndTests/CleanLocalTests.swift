import Foundation
import XCTest

/// `clean` against a local-directory store.
final class CleanLocalTests: XCTestCase {
    func fixture(_ name: String = #function) throws -> CleanFixture { try CleanFixture(.local, name: name) }

    func testRetentionDays() throws { try CleanScenarios.retentionDays(fixture()) }
    func testGFS() throws { try CleanScenarios.gfs(fixture()) }
    func testDryRunChangesNothing() throws { try CleanScenarios.dryRun(fixture()) }
    func testObjectAlreadyGoneCountsAsDeleted() throws {
        let f = try fixture()
        try CleanScenarios.alreadyGone(f)
    }
    func testNeverDeletesTheNewestVerified() throws { try CleanScenarios.neverDeleteTheLast(fixture()) }
    func testReconcileReportsBothSides() throws { try CleanScenarios.reconcileReports(fixture()) }
    func testReconcileDeletesOrphansPastGrace() throws { try CleanScenarios.reconcileDeletesPastGrace(fixture()) }
    func testUsageErrors() throws { try CleanScenarios.usageErrors(fixture()) }

    /// A delete the store refuses (here: a directory where the object should be, which unlink
    /// refuses even for root) leaves that row untouched while the others are cleaned.
    func testRefusedDeleteLeavesRowAndExitsNonZero() throws {
        let f = try fixture()
        typealias P = CleanFixture.Plant
        try f.plant([
            P(name: "new", uploadedAt: CleanFixture.daysAgo(1)),
            P(name: "locked", uploadedAt: CleanFixture.daysAgo(60), object: false),
            P(name: "old", uploadedAt: CleanFixture.daysAgo(70))
        ])
        let blocker = f.storeDir.appendingPathComponent(P(name: "locked", uploadedAt: 0).key)
        try FileManager.default.createDirectory(
            at: blocker.appendingPathComponent("inside"), withIntermediateDirectories: true)
        try CleanScenarios.refusedDelete(f, env: f.env, expectedInMessage: "cannot delete")
        XCTAssertNotNil(try f.rows()[P(name: "old", uploadedAt: 0).key] ?? nil, "the run went on with the rest")
        XCTAssertFalse(
            FileManager.default.fileExists(
                atPath: f.storeDir.appendingPathComponent(P(name: "old", uploadedAt: 0).key).path))
    }

    /// Rows written for another store are never touched by cleaning this one.
    func testRowsOfOtherStorageAreLeftAlone() throws {
        let f = try fixture()
        typealias P = CleanFixture.Plant
        try f.plant([P(name: "new", uploadedAt: CleanFixture.daysAgo(1))])
        let s3Key = CleanFixture.key("s3-old")
        try sh(
            "sqlite3 '\(f.database.path)' \"INSERT INTO backup_files VALUES ('s3row', '\(s3Key)', 's3-old.db.gz.enc', 10, 'gzip', 's3', 'x', \(CleanFixture.daysAgo(300)), NULL, 'aes-256-gcm', 'iv', 'tag')\""
        )
        let r = try CLI.run(["clean"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("1 active row(s) name storage other than 'local'; left alone"), r.stderr)
        XCTAssertEqual(try f.activeKeys(), [s3Key, P(name: "new", uploadedAt: 0).key].sorted())
    }

    /// Real backups, then their dates moved back: clean removes the old ones and restore of the
    /// kept newest still works.
    func testRealBackupsSpreadOverMonths() throws {
        let f = try fixture()
        for _ in 0..<3 {
            let b = try CLI.run(["backup"], env: f.env)
            XCTAssertEqual(b.status, 0, b.output)
        }
        // Oldest two moved back 90 and 60 days; the newest stays.
        try sh(
            """
            sqlite3 '\(f.database.path)' "UPDATE backup_files SET uploaded_at = uploaded_at - 90*86400000 WHERE rowid = (SELECT min(rowid) FROM backup_files);
              UPDATE backup_files SET uploaded_at = uploaded_at - 60*86400000 WHERE rowid = (SELECT min(rowid) + 1 FROM backup_files);"
            """)
        let newest = try sh(
            "sqlite3 '\(f.database.path)' 'SELECT key FROM backup_files ORDER BY uploaded_at DESC LIMIT 1'"
        ).trimmingCharacters(in: .newlines)
        let r = try CLI.run(["clean", "--retention-days", "30"], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try f.activeKeys(), [newest])
        XCTAssertEqual(try f.keys(), [newest])
        let v = try CLI.run(["verify"], env: f.env)
        XCTAssertEqual(v.status, 0, v.output)
    }
}
