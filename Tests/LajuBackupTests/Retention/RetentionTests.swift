import XCTest
@testable import LajuBackup

/// The retention policies as pure functions over rows and dates.
final class RetentionTests: XCTestCase {
    /// Milliseconds of a UTC date and time.
    func ms(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 12) -> Int64 {
        var tm = tm()
        tm.tm_year = Int32(y - 1900); tm.tm_mon = Int32(m - 1); tm.tm_mday = Int32(d); tm.tm_hour = Int32(h)
        return Int64(timegm(&tm)) * 1000
    }

    func row(_ name: String, _ at: Int64, deleted: Int64? = nil) -> BackupRecord {
        BackupRecord(
            id: name, key: "backups/\(name)", fileName: name, fileSize: 10, storage: "s3", checksum: "x",
            uploadedAt: at, deletedAt: deleted, encIV: "", encTag: "")
    }

    func kept(_ plan: RetentionPlan) -> [String] { plan.keep.map { $0.key.lastPathComponentOf } }
    func removed(_ plan: RetentionPlan) -> [String] { plan.remove.map { $0.key.lastPathComponentOf } }

    func testDaysPolicyIsTheOriginalsCutoff() {
        let now = ms(2026, 3, 31)
        let day = Retention.dayMilliseconds
        let rows = [
            row("a", now - day), row("b", now - 30 * day), row("c", now - 30 * day - 1), row("d", now - 90 * day),
            row("e", now - 100 * day, deleted: now)
        ]
        let plan = Retention.plan(rows, policy: RetentionPolicy(retentionDays: 30), now: now, periods: Periods.utc)
        XCTAssertEqual(kept(plan), ["a", "b"], "exactly 30 days old is not < now - 30 days")
        XCTAssertEqual(removed(plan), ["c", "d"], "rows already deleted are ignored")
        XCTAssertEqual(plan.remove.first?.reasons, ["older than 30 days"])
    }

    func testNewestIsAlwaysKept() {
        let now = ms(2026, 3, 31)
        let rows = [row("old1", ms(2025, 1, 1)), row("old2", ms(2025, 2, 1))]
        let plan = Retention.plan(rows, policy: RetentionPolicy(retentionDays: 30), now: now, periods: Periods.utc)
        XCTAssertEqual(kept(plan), ["old2"])
        XCTAssertEqual(plan.keep.first?.reasons, ["newest"])
        XCTAssertEqual(removed(plan), ["old1"])
    }

    func testProtectedNewestVerifiedIsKept() {
        let now = ms(2026, 3, 31)
        let rows = [row("a", ms(2025, 1, 1)), row("b", ms(2025, 2, 1)), row("c", ms(2025, 3, 1))]
        let plan = Retention.plan(
            rows, policy: RetentionPolicy(retentionDays: 30), now: now, protect: ["backups/b"], periods: Periods.utc)
        XCTAssertEqual(kept(plan), ["c", "b"])
        XCTAssertEqual(plan.keep[1].reasons, ["newest verified"])
        XCTAssertEqual(removed(plan), ["a"])
    }

    /// Fixed calendar (UTC): 2025-06-30 is a Monday (ISO 2025-W27), 06-23..06-29 is W26.
    var calendarRows: [BackupRecord] {
        [
            row("A", ms(2025, 6, 30)), row("B", ms(2025, 6, 29)), row("C", ms(2025, 6, 29, 8)),
            row("D", ms(2025, 6, 23)),
            row("E", ms(2025, 6, 10)), row("F", ms(2025, 5, 20)), row("G", ms(2025, 5, 2)), row("H", ms(2025, 4, 15)),
            row("I", ms(2025, 3, 1)), row("J", ms(2024, 12, 31))
        ]
    }

    func plan(_ p: RetentionPolicy) -> RetentionPlan {
        Retention.plan(calendarRows.shuffled(), policy: p, now: ms(2026, 1, 1), periods: Periods.utc)
    }

    func testKeepLast() {
        XCTAssertEqual(kept(plan(RetentionPolicy(keepLast: 3))), ["A", "B", "C"])
    }

    func testKeepDailyTakesTheNewestOfEachDay() {
        let p = plan(RetentionPolicy(keepDaily: 3))
        XCTAssertEqual(kept(p), ["A", "B", "D"], "C shares 06-29 with the newer B")
        XCTAssertEqual(p.keep[1].reasons, ["daily 2025-06-29"])
    }

    func testKeepWeeklyUsesISOWeeks() {
        let p = plan(RetentionPolicy(keepWeekly: 3))
        XCTAssertEqual(kept(p), ["A", "B", "E"])
        XCTAssertEqual(p.keep.map(\.reasons), [["newest", "weekly 2025-W27"], ["weekly 2025-W26"], ["weekly 2025-W24"]])
    }

    func testKeepMonthly() {
        XCTAssertEqual(kept(plan(RetentionPolicy(keepMonthly: 4))), ["A", "F", "H", "I"])
    }

    func testISOWeekYearBoundary() {
        // 2024-12-31 is a Tuesday of ISO week 2025-W01.
        XCTAssertEqual(Periods.utc(ms(2024, 12, 31)).week, "2025-W01")
        XCTAssertEqual(Periods.utc(ms(2021, 1, 3)).week, "2020-W53")
    }

    func testRulesCombineAsUnion() {
        let p = plan(RetentionPolicy(keepDaily: 2, keepWeekly: 3, keepMonthly: 3))
        XCTAssertEqual(kept(p), ["A", "B", "E", "F", "H"])
        XCTAssertEqual(removed(p), ["C", "D", "G", "I", "J"])
        XCTAssertEqual(p.remove.first?.reasons, ["matched no keep rule"])
    }

    func testKeepWithinWithGFS() {
        let p = Retention.plan(
            calendarRows, policy: RetentionPolicy(keepWithinDays: 40, keepLast: 1), now: ms(2025, 7, 10),
            periods: Periods.utc)
        XCTAssertEqual(kept(p), ["A", "B", "C", "D", "E"])
    }

    func testGFSUsesLocalTime() {
        let saved = getenv("TZ").map { String(cString: $0) }
        setenv("TZ", "Asia/Jakarta", 1); tzset()
        defer {
            if let saved { setenv("TZ", saved, 1) } else { unsetenv("TZ") }
            tzset()
        }
        // 20:00 UTC on 06-29 is 03:00 on 06-30 in Jakarta (UTC+7): same local day as A.
        let rows = [row("A", ms(2025, 6, 30, 12)), row("B", ms(2025, 6, 29, 20)), row("C", ms(2025, 6, 29, 10))]
        let p = Retention.plan(rows, policy: RetentionPolicy(keepDaily: 2), now: ms(2026, 1, 1))
        XCTAssertEqual(kept(p), ["A", "C"])
        XCTAssertEqual(Periods.local(ms(2025, 6, 29, 20)).day, "2025-06-30")
    }

    func testNoRowsNoPlan() {
        XCTAssertEqual(Retention.plan([], policy: RetentionPolicy(), now: 0).decisions, [])
    }

    func testDurations() throws {
        XCTAssertEqual(try DurationText.seconds("24h"), 86_400)
        XCTAssertEqual(try DurationText.seconds("1h30m"), 5_400)
        XCTAssertEqual(try DurationText.seconds("2d"), 172_800)
        XCTAssertEqual(try DurationText.seconds("0"), 0)
        XCTAssertEqual(try DurationText.seconds("90s"), 90)
        // A number without a unit is refused: `--max-age 26` meant 26 hours, not seconds.
        for bad in ["", "h", "24x", "1.5h", "-3", "90", "26"] {
            XCTAssertThrowsError(try DurationText.seconds(bad), bad)
        }
    }
}
