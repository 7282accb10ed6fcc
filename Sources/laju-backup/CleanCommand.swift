import ArgumentParser
import LajuBackup

struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Delete old backups by retention policy, or (--orphans) reconcile the store with the catalog.",
        discussion: """
            Retention (default) considers active rows (deleted_at IS NULL) whose storage column is \
            the configured store's. Without --keep-*: rows with uploaded_at older than --retention-days \
            (else BACKUP_RETENTION_DAYS, else 30) days go, as in the original. With any --keep-*: GFS in \
            local time, as restic; a backup kept by any rule survives, and --retention-days then also \
            keeps everything younger than N days. The newest backup, and the newest one whose object \
            exists with the catalog's size, are never deleted.

            For each backup that goes: the object at the row's key is deleted, then the row's \
            deleted_at is set (epoch ms); rows are never removed. An object already gone counts as \
            deleted. Any other failure leaves that row untouched, the run goes on, and the exit status \
            is non-zero. Only keys the catalog names are deleted.

            --orphans lists objects under BACKUP_PREFIX that no active row names, and active rows whose \
            object is missing. It changes nothing unless --delete-orphans, which deletes orphan objects \
            older than --grace (default 24h). Rows are never changed by --orphans.

            --dry-run prints the plan and changes nothing (it still reads the catalog and the store).
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(
        name: .customLong("retention-days"),
        help: ArgumentHelp(
            "Delete backups older than N days (default: BACKUP_RETENTION_DAYS, else 30). With --keep-*: also keep everything younger than N days.",
            valueName: "n"))
    var retentionDays: Int?

    @Option(name: .customLong("keep-last"), help: ArgumentHelp("Keep the N newest backups.", valueName: "n"))
    var keepLast: Int?

    @Option(
        name: .customLong("keep-daily"),
        help: ArgumentHelp(
            "Keep the newest backup of each of the last N days that have one (local time).", valueName: "n"))
    var keepDaily: Int?

    @Option(
        name: .customLong("keep-weekly"),
        help: ArgumentHelp("Keep the newest backup of each of the last N ISO weeks that have one.", valueName: "n"))
    var keepWeekly: Int?

    @Option(
        name: .customLong("keep-monthly"),
        help: ArgumentHelp("Keep the newest backup of each of the last N months that have one.", valueName: "n"))
    var keepMonthly: Int?

    @Flag(name: .customLong("dry-run"), help: "Print what would be deleted; change nothing.")
    var dryRun = false

    @Flag(
        help:
            "Apply retention to the incremental restore points instead of the catalog rows (the newest point and the points it needs are always kept; packs go when no kept point needs them and they are older than --grace)."
    )
    var points = false

    @Flag(
        name: .customLong("if-enabled"),
        help:
            "With --points: do nothing (exit 0) unless BACKUP_INCREMENTAL is true for this database (for the weekly cron line)."
    )
    var ifEnabled = false

    @Flag(help: "Reconcile instead of applying retention: report orphan objects and rows whose object is missing.")
    var orphans = false

    @Flag(name: .customLong("delete-orphans"), help: "With --orphans: delete orphan objects older than --grace.")
    var deleteOrphans = false

    @Option(
        help: ArgumentHelp(
            "Orphan objects younger than this are never deleted (e.g. 24h, 90m, 2d).", valueName: "duration"))
    var grace: String = "24h"

    var retentionFlagsGiven: Bool {
        retentionDays != nil || keepLast != nil || keepDaily != nil || keepWeekly != nil || keepMonthly != nil
    }

    func validate() throws {
        for (name, v, max) in [
            ("--retention-days", retentionDays, Settings.maxRetentionDays),
            ("--keep-last", keepLast, Settings.maxKeepCount),
            ("--keep-daily", keepDaily, Settings.maxKeepCount), ("--keep-weekly", keepWeekly, Settings.maxKeepCount),
            ("--keep-monthly", keepMonthly, Settings.maxKeepCount)
        ] {
            if let v, !(1...max).contains(v) { throw ValidationError("\(name) must be between 1 and \(max)") }
        }
        do { _ = try DurationText.seconds(grace) } catch let e as LajuError {
            throw ValidationError("--grace: \(e.description)")
        }
        if points && (orphans || deleteOrphans) {
            throw ValidationError("--points applies retention; it does not go with --orphans")
        }
        if ifEnabled && !points { throw ValidationError("--if-enabled goes with --points") }
        if (orphans || deleteOrphans) && retentionFlagsGiven {
            throw ValidationError("--orphans reconciles only; run retention (--retention-days, --keep-*) separately")
        }
    }

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        if ifEnabled, !(try settings.bool("BACKUP_INCREMENTAL", default: false)) {
            out.log(
                "clean skipped: incremental backups are off for \(settings.databasePath) (BACKUP_INCREMENTAL is not true)"
            )
            return
        }
        try monitored(settings, "clean", out) { monitor in
            if points {
                try pointRetention(settings, out)
            } else if orphans || deleteOrphans {
                try reconcile(settings, out)
            } else {
                try retention(settings, out)
            }
            monitor.succeeded(key: nil, storedBytes: nil, sourceBytes: nil)
        }
    }

    func retention(_ settings: Settings, _ out: Output) throws {
        let policy =
            try retentionFlagsGiven
            ? RetentionPolicy(
                retentionDays: retentionDays, keepLast: keepLast, keepDaily: keepDaily, keepWeekly: keepWeekly,
                keepMonthly: keepMonthly,
                fallbackDays: settings.integer(
                    "BACKUP_RETENTION_DAYS", default: 30, range: 1...Settings.maxRetentionDays))
            : settings.retentionPolicy()
        let o = try FullCleanJob(settings: settings, policy: policy, dryRun: dryRun, events: out.sink).run()
        if common.json {
            out.printJSON(o)
        } else if dryRun || !common.quiet {
            print(
                Table.render(
                    header: ["ACTION", "UPLOADED", "SIZE", "KEY", "WHY"],
                    rows: o.plan.decisions.map {
                        [
                            $0.keep ? "keep" : (dryRun ? "would delete" : "delete"),
                            LocalTime.minuteStamp(epochMilliseconds: $0.uploadedAt),
                            Human.bytes($0.fileSize), $0.key, $0.reasons.joined(separator: ", ")
                        ]
                    }))
        }
        let removed = o.deleted.count + o.alreadyGone.count
        if dryRun {
            out.log("clean (dry run): would delete \(o.plan.remove.count), keep \(o.plan.keep.count); nothing changed")
            return
        }
        guard o.failed.isEmpty else {
            throw LajuError(
                .storage,
                "clean: \(o.failed.count) of \(o.plan.remove.count) deletion(s) failed (first: \(o.failed[0].key): \(o.failed[0].error)); their rows are untouched; \(removed) deleted, \(o.plan.keep.count) kept",
                hint: "fix the store's permissions or connectivity and run clean again")
        }
        out.log(
            "clean ok: deleted \(removed) (\(o.alreadyGone.count) already gone), kept \(o.plan.keep.count)"
                + (o.locked.isEmpty
                    ? "" : ", \(o.locked.count) still locked by S3 Object Lock (deleted by a later clean)"))
    }

    func pointRetention(_ settings: Settings, _ out: Output) throws {
        let policy =
            try retentionFlagsGiven
            ? RetentionPolicy(
                retentionDays: retentionDays, keepLast: keepLast, keepDaily: keepDaily, keepWeekly: keepWeekly,
                keepMonthly: keepMonthly,
                fallbackDays: settings.integer(
                    "BACKUP_RETENTION_DAYS", default: 30, range: 1...Settings.maxRetentionDays))
            : settings.retentionPolicy()
        let o = try PointCleanJob(
            settings: settings, policy: policy, dryRun: dryRun, graceSeconds: try DurationText.seconds(grace),
            events: out.sink
        ).run()
        if common.json {
            out.printJSON(o)
        } else if dryRun || !common.quiet {
            print(
                Table.render(
                    header: ["ACTION", "TIME", "KIND", "POINT", "WHY"],
                    rows: o.points.map {
                        [
                            $0.keep ? "keep" : (dryRun ? "would delete" : "delete"), $0.time, $0.kind.rawValue,
                            $0.point, $0.reasons.joined(separator: ", ")
                        ]
                    }))
        }
        let lockedPoints = o.locked.filter { $0.contains("/points/") }.count
        let removed = o.points.filter { !$0.keep }.count - lockedPoints
        let verb = dryRun ? "would delete" : "deleted"
        guard o.failures.isEmpty else {
            throw LajuError(
                .storage,
                "clean --points: \(o.failures.count) deletion(s) failed (first: \(o.failures[0])); packs were left in place",
                hint: "fix the store's permissions or connectivity and run clean --points again")
        }
        out.log(
            "clean --points\(dryRun ? " (dry run)" : ""): \(verb) \(removed) point(s) and \(o.deletedPacks.count) pack(s), \(Human.bytes(o.freedBytes)); kept \(o.points.count - removed) point(s) and \(o.keptPacks) pack(s)\(o.locked.isEmpty ? "" : ", \(o.locked.count) still locked by S3 Object Lock (deleted by a later clean)")\(dryRun ? "; nothing changed" : "")"
        )
    }

    func reconcile(_ settings: Settings, _ out: Output) throws {
        let graceSeconds = try DurationText.seconds(grace)
        let o = try OrphanCleanJob(
            settings: settings, deleteOrphans: deleteOrphans, graceSeconds: graceSeconds,
            dryRun: dryRun, events: out.sink
        ).run()
        if common.json {
            out.printJSON(o)
        } else {
            if !o.orphanObjects.isEmpty {
                print(
                    Table.render(
                        header: ["ORPHAN OBJECT", "MODIFIED", "SIZE", "REASON", "ACTION"],
                        rows: o.orphanObjects.map {
                            [
                                $0.key,
                                $0.lastModified.map { LocalTime.minuteStamp(epochMilliseconds: Int64($0) * 1000) }
                                    ?? "-",
                                Human.bytes($0.size), $0.reason, $0.action
                            ]
                        }))
            }
            if !o.unattributed.isEmpty {
                print(
                    Table.render(
                        header: ["NOT ATTRIBUTABLE (never deleted)", "MODIFIED", "SIZE", "WHY"],
                        rows: o.unattributed.map {
                            [
                                $0.key,
                                $0.lastModified.map { LocalTime.minuteStamp(epochMilliseconds: Int64($0) * 1000) }
                                    ?? "-",
                                Human.bytes($0.size), $0.reason
                            ]
                        }))
            }
            if !o.missingObjects.isEmpty {
                print(
                    Table.render(
                        header: ["ROW WITHOUT OBJECT", "UPLOADED", "ID"],
                        rows: o.missingObjects.map {
                            [$0.key, LocalTime.minuteStamp(epochMilliseconds: $0.uploadedAt), $0.id]
                        }))
            }
            if !o.partials.isEmpty {
                print(
                    Table.render(
                        header: ["PARTIAL UPLOAD", "STARTED", "ACTION"],
                        rows: o.partials.map {
                            [
                                $0.upload.key + ($0.upload.uploadID.map { " (upload \($0))" } ?? ""),
                                $0.upload.started.map { LocalTime.minuteStamp(epochMilliseconds: Int64($0) * 1000) }
                                    ?? "-", $0.action
                            ]
                        }))
            }
        }
        var summary =
            "reconcile: \(o.objects) object(s) under \(o.prefix) in \(o.store), \(o.activeRows) active row(s); \(o.orphanObjects.count) orphan object(s), \(o.missingObjects.count) row(s) without object, \(o.partials.count) partial upload(s)"
        if !o.unattributed.isEmpty { summary += ", \(o.unattributed.count) object(s) not attributable" }
        if o.otherObjects > 0 { summary += ", \(o.otherObjects) object(s) of other databases or prefixes left alone" }
        if !o.badRows.isEmpty { summary += ", \(o.badRows.count) bad catalog row(s) skipped" }
        out.log(summary)
        if o.failures > 0 {
            throw LajuError(
                .storage, "reconcile: \(o.failures) orphan object(s) or partial upload(s) could not be deleted",
                hint: "see the table above; fix the store's permissions and run again")
        }
    }
}
