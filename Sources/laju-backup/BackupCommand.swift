import ArgumentParser
import LajuBackup

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Snapshot the database, check, compress and encrypt it, store it, and record it in backup_files.",
        discussion: """
            Checks the database, key, catalog table and store before writing anything. Temp files live
            in a private directory under BACKUP_TMPDIR (else TMPDIR, else /var/tmp) and are removed on
            every exit path. Two runs against the same database never overlap.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(
        help: ArgumentHelp(
            "Compression inside the envelope: gzip (the Laju format, the only one the original restore.ts reads), zstd or xz (default: BACKUP_COMPRESSION, else gzip).",
            valueName: "gzip|zstd|xz"))
    var compression: Codec?

    @Option(
        help: ArgumentHelp(
            "Compression level of the codec in use: gzip 0-9, zstd 1-19, xz 0-9 (default: BACKUP_GZIP_LEVEL 6, BACKUP_ZSTD_LEVEL 3, BACKUP_XZ_LEVEL 3).",
            valueName: "n"))
    var level: Int?

    @Option(
        name: .customLong("lock-wait"),
        help: ArgumentHelp(
            "Wait up to this many seconds for another run on the same database instead of failing at once.",
            valueName: "seconds"))
    var lockWait: Double = 0

    @Option(
        name: .customLong("if-older-than"),
        help: ArgumentHelp(
            "Back up only when this database's newest backup is older than this (e.g. 24h; for a catch-up run after boot); otherwise say so and exit 0.",
            valueName: "duration"))
    var ifOlderThan: String?

    @Flag(
        help:
            "Record a restore point instead of a full backup: upload only the pages that changed since the newest point (see laju-backup-backup(1), INCREMENTAL)."
    )
    var incremental = false

    @Flag(
        name: .customLong("if-enabled"),
        help:
            "With --incremental: do nothing (exit 0) unless BACKUP_INCREMENTAL is true for this database (for the 15-minute cron line)."
    )
    var ifEnabled = false

    @Flag(
        name: .customLong("new-base"),
        help:
            "With --incremental: start a new chain whose base seals every page again instead of pointing at stored blocks (after a damaged pack)."
    )
    var newBase = false

    @Flag(
        name: .customLong("claim-name"),
        help:
            "Take BACKUP_NAME over for this database when the store records it as another database's (this database replaces that one)."
    )
    var claimName = false

    @Flag(
        name: .customLong("new-key"),
        help:
            "The encryption key was changed on purpose: back up although the newest backup was made with another key (keep the old key for the older backups)."
    )
    var newKey = false

    func validate() throws {
        if incremental && (compression != nil || level != nil || ifOlderThan != nil) {
            throw ValidationError(
                "--incremental takes no --compression, --level or --if-older-than (points use zlib per page)")
        }
        if ifEnabled && !incremental { throw ValidationError("--if-enabled goes with --incremental") }
        if newBase && !incremental { throw ValidationError("--new-base goes with --incremental") }
        if newKey && incremental {
            throw ValidationError(
                "--new-key goes with a full backup: the first full backup under the new key records the change")
        }
        if let ifOlderThan {
            do { _ = try DurationText.seconds(ifOlderThan) } catch let e as LajuError {
                throw ValidationError("--if-older-than: \(e.description)")
            }
        }
        if let level, !(0...19).contains(level) {
            throw ValidationError("--level must be 0 to 19 (gzip and xz 0-9, zstd 1-19)")
        }
        if !(lockWait.isFinite && (0...86_400).contains(lockWait)) {
            throw ValidationError("--lock-wait must be between 0 and 86400 seconds")
        }
    }

    func run() throws {
        let out = common.output()
        var extra: [String: String] = [:]
        if let compression { extra["BACKUP_COMPRESSION"] = compression.rawValue }
        // --level is the level of the codec in effect, which the settings may name.
        if let level { extra[try common.settings(extra).compression().levelSetting.name] = String(level) }
        let settings = try common.settings(extra)
        if incremental {
            if ifEnabled, !(try settings.bool("BACKUP_INCREMENTAL", default: false)) {
                out.log(
                    "backup skipped: incremental backups are off for \(settings.databasePath) (BACKUP_INCREMENTAL is not true)"
                )
                return
            }
            // Monitored as a command of its own: its metrics series, webhook payloads and ping URL
            // (BACKUP_PING_URL_INCREMENTAL only) never stand in for the nightly backup's.
            let o = try monitored(settings, "backup-incremental", out) { monitor in
                let o = try PointBackupJob(
                    settings: settings, lockWait: lockWait, newBase: newBase, claimName: claimName, events: out.sink
                ).run()
                monitor.succeeded(key: o.key, storedBytes: o.uploadedBytes, sourceBytes: o.databaseBytes)
                return o
            }
            if let point = o.point {
                out.log(
                    "backup ok: \(o.kind?.rawValue ?? "") point \(point): \(o.changedPages) of \(o.pages) pages changed, uploaded \(Human.bytes(o.uploadedBytes)) for a \(Human.bytes(o.databaseBytes)) database (\(Human.seconds(o.totalSeconds)))"
                )
            } else {
                out.log("backup ok: no changes since \(o.parent ?? "the newest point"); no point recorded")
            }
            if common.json { out.printJSON(o) }
            return
        }
        let job = FullBackupJob(
            settings: settings, lockWait: lockWait, claimName: claimName, newKey: newKey, events: out.sink)
        if let ifOlderThan, let age = try job.newestBackupAge(), age < (try DurationText.seconds(ifOlderThan)) {
            out.log(
                "backup skipped: the newest backup of \(settings.databasePath) is \(Human.seconds(age)) old, younger than \(ifOlderThan)"
            )
            return
        }
        let outcome = try monitored(settings, "backup", out) { monitor in
            let o = try job.run()
            monitor.succeeded(key: o.key, storedBytes: o.objectBytes, sourceBytes: o.databaseBytes)
            return o
        }
        out.log(
            "backup ok: \(outcome.key) (\(Human.bytes(outcome.databaseBytes)) -> \(Human.bytes(outcome.objectBytes)), \(Human.seconds(outcome.totalSeconds)))"
        )
        if common.json { out.printJSON(outcome) }
    }
}

extension Codec: ExpressibleByArgument {}
