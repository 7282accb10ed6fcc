import ArgumentParser
import LajuBackup

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Snapshot the database, gzip and encrypt it, store it, and record it in backup_files.",
        discussion: """
            Checks the database, key, catalog table and store before writing anything. Temp files live
            in a private directory under BACKUP_TMPDIR (else TMPDIR, else /var/tmp) and are removed on
            every exit path. Two runs against the same database never overlap.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("gzip level 0-9 (default: BACKUP_GZIP_LEVEL, else 6).", valueName: "n"))
    var level: Int?

    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("Wait up to this many seconds for another run on the same database instead of failing at once.", valueName: "seconds"))
    var lockWait: Double = 0

    func validate() throws {
        if let level, !(0...9).contains(level) { throw ValidationError("--level must be 0 to 9") }
        if !(lockWait.isFinite && (0...86_400).contains(lockWait)) { throw ValidationError("--lock-wait must be between 0 and 86400 seconds") }
    }

    func run() throws {
        let out = common.output()
        var extra: [String: String] = [:]
        if let level { extra["BACKUP_GZIP_LEVEL"] = String(level) }
        let settings = try common.settings(extra)
        let outcome = try BackupJob(settings: settings, lockWait: lockWait, events: out.sink).run()
        out.log("backup ok: \(outcome.key) (\(Format.bytes(outcome.databaseBytes)) -> \(Format.bytes(outcome.objectBytes)), \(Format.seconds(outcome.totalSeconds)))")
        if common.json { out.printJSON(outcome) }
    }
}
