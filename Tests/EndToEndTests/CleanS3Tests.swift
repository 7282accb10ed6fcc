import Foundation
import TestSupport
import XCTest

/// `clean` against the SeaweedFS S3 server (real SigV4, real 403s).
final class CleanS3Tests: XCTestCase {
    func fixture(_ name: String = #function) throws -> CleanFixture { try CleanFixture(.s3, name: name) }

    func testRetentionDays() throws { try CleanScenarios.retentionDays(fixture()) }
    func testGFS() throws { try CleanScenarios.gfs(fixture()) }
    func testDryRunChangesNothing() throws { try CleanScenarios.dryRun(fixture()) }
    func testObjectAlreadyGoneCountsAsDeleted() throws { try CleanScenarios.alreadyGone(fixture()) }
    func testNeverDeletesTheNewestVerified() throws { try CleanScenarios.neverDeleteTheLast(fixture()) }
    func testReconcileReportsBothSides() throws { try CleanScenarios.reconcileReports(fixture()) }
    func testReconcileDeletesOrphansPastGrace() throws { try CleanScenarios.reconcileDeletesPastGrace(fixture()) }

    /// Read-only credentials: HEAD works, DELETE gets 403; rows untouched, exit 5, a summary.
    func testForbiddenDeleteLeavesRowsAndExitsNonZero() throws {
        let f = try fixture()
        typealias P = CleanFixture.Plant
        try f.plant([
            P(name: "new", uploadedAt: CleanFixture.daysAgo(1)),
            P(name: "locked", uploadedAt: CleanFixture.daysAgo(60)),
            P(name: "old", uploadedAt: CleanFixture.daysAgo(70))
        ])
        let before = (try f.catalogDump(), try f.keys())
        try CleanScenarios.refusedDelete(f, env: f.readOnlyEnv, expectedInMessage: "2 of 2")
        let r = try CLI.run(["clean", "--retention-days", "30"], env: f.readOnlyEnv)
        XCTAssertTrue(
            ["403", "AccessDenied", "Forbidden"].contains { r.stderr.contains($0) },
            "the store's refusal is named: \(r.stderr)")
        XCTAssertEqual(try f.catalogDump(), before.0, "no row changes when every delete is refused")
        XCTAssertEqual(try f.keys(), before.1)
        let out = try CLI.run(["clean"], env: f.readOnlyEnv)
        XCTAssertFalse(out.output.contains(try XCTUnwrap(f.readOnlyEnv["WASABI_SECRET_KEY"])), "no secret in output")
    }
}
