import Foundation
import XCTest
@testable import LajuBackup

/// `doctor` on a database with BACKUP_INCREMENTAL=true: the package ships the 15-minute line of
/// its cron file commented, and a setting without that line takes no restore point at all.
final class DoctorPointsTests: XCTestCase {
    func cronCheck(_ cron: String?, incremental: String) throws -> DoctorJob.Check? {
        let dir = NSTemporaryDirectory() + "laju-doctor-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var job = DoctorJob(
            settings: Settings(
                environment: Environment(layers: [
                    (
                        source: "test",
                        values: [
                            "BACKUP_INCREMENTAL": incremental, "BACKUP_DATABASE": "\(dir)/app.db",
                            "BACKUP_STORAGE": "file://\(dir)/store"
                        ]
                    )
                ])))
        job.cronFile = "\(dir)/cron"
        if let cron { try cron.write(toFile: job.cronFile, atomically: true, encoding: .utf8) }
        return job.restorePoints(encryptionKey: nil).first { $0.name == "points cron" }
    }

    func testTheFifteenMinuteLineMustBeOnWherePointsAre() throws {
        let shipped = """
            # m h dom mon dow user command
            15 1 * * * root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles backup
            #*/15 * * * * root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles backup --incremental --if-enabled
            30 2 * * 0 root [ -x /usr/bin/laju-backup ] && /usr/lib/laju-backup/run-profiles clean --points --if-enabled
            """
        let off = try XCTUnwrap(try cronCheck(shipped, incremental: "true"))
        XCTAssertEqual(off.level, .warning)
        XCTAssertTrue(off.fix?.contains("uncomment") ?? false, "\(off)")
        let uncommented = shipped.replacingOccurrences(of: "#*/15", with: "*/15")
        XCTAssertEqual(try cronCheck(uncommented, incremental: "true")?.level, .ok)
        XCTAssertEqual(
            try cronCheck("  \t*/15 * * * * root laju-backup backup --incremental\n", incremental: "true")?.level, .ok)
        // Points off, or no cron file (not installed from the package): nothing to say here.
        XCTAssertNil(try cronCheck(shipped, incremental: "false"))
        XCTAssertNil(try cronCheck(nil, incremental: "true"))
    }
}
