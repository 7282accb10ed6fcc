import ArgumentParser
import LajuBackup

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check everything a setup gets wrong, one line per check with the fix.",
        discussion: """
            Settings files and their modes (a key readable by others is a warning), the key and whether it \
            made the newest backup, the database (readable, journal mode), the catalog table, free space \
            for temporary files, the store (write, read, list and delete of a probe object under the \
            prefix, each reported on its own, so write-only credentials shows as such), the clock against \
            the S3 server's, the cron file and the log. Exit status 0 when no check failed, else the \
            status class of the first failure (see laju-backup(1)); warnings alone exit 0.
            """
    )

    @OptionGroup var common: CommonOptions

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        let checks = DoctorJob(settings: settings).run()
        if common.json {
            out.printJSON(Report(checks: checks))
        } else {
            for c in checks {
                var line = "\(c.level.rawValue.uppercased().padding(7)) \(c.name): \(c.message)"
                if let fix = c.fix { line += " -> \(fix)" }
                print(Display.safe(line))
            }
        }
        let errors = checks.filter { $0.level == .error }
        if let first = errors.first {
            out.warn(
                "doctor: \(errors.count) check(s) failed, \(checks.filter { $0.level == .warning }.count) warning(s)")
            throw ExitCode(first.exitStatus ?? 1)
        }
        out.log(
            "doctor: all \(checks.count) checks passed\(checks.contains { $0.level == .warning } ? " (with warnings)" : "")"
        )
    }

    struct Report: Encodable { var checks: [DoctorJob.Check] }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
