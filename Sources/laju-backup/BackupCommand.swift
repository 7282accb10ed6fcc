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

    @Option(name: .customLong("if-older-than"), help: ArgumentHelp("Back up only when this database's newest backup is older than this (e.g. 24h; for a catch-up run after boot); otherwise say so and exit 0.", valueName: "duration"))
    var ifOlderThan: String?

    func validate() throws {
        if let ifOlderThan {
            do { _ = try DurationText.seconds(ifOlderThan) } catch let e as LajuError { throw ValidationError("--if-older-than: \(e.description)") }
        }
        if let level, !(0...9).contains(level) { throw ValidationError("--level must be 0 to 9") }
        if !(lockWait.isFinite && (0...86_400).contains(lockWait)) { throw ValidationError("--lock-wait must be between 0 and 86400 seconds") }
    }

    func run() throws {
        let out = common.output()
        var extra: [String: String] = [:]
        if let level { extra["BACKUP_GZIP_LEVEL"] = String(level) }
        let settings = try common.settings(extra)
        let job = BackupJob(settings: settings, lockWait: lockWait, events: out.sink)
        if let ifOlderThan, let age = try job.newestBackupAge(), age < (try DurationText.seconds(ifOlderThan)) {
            out.log("backup skipped: the newest backup of \(settings.databasePath) is \(Format.seconds(age)) old, younger than \(ifOlderThan)")
            return
        }
        let outcome = try monitored(settings, "backup", out) { monitor in
            let o = try job.run()
            monitor.succeeded(key: o.key, storedBytes: o.objectBytes, sourceBytes: o.databaseBytes)
            return o
        }
        out.log("backup ok: \(outcome.key) (\(Format.bytes(outcome.databaseBytes)) -> \(Format.bytes(outcome.objectBytes)), \(Format.seconds(outcome.totalSeconds)))")
        if common.json { out.printJSON(outcome) }
    }
}
