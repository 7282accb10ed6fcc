import ArgumentParser
import LajuBackup

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that a backup is intact and restorable, without keeping the result.",
        discussion: """
            Runs every check restore runs (fingerprint, MD5, GCM tag, gzip, PRAGMA integrity_check) in a \
            private temp directory. Exit 0 only if the backup restores. A backup that verified is recorded \
            in the catalog (laju-backup status shows the newest one). --sample N also verifies N randomly \
            chosen older active backups, so that over the weeks every backup gets exercised.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(
        help: ArgumentHelp(
            "How the restored database is checked: auto (the default: no check to run when the backup recorded that its snapshot passed PRAGMA integrity_check and the restored bytes match that record; else as full), full (PRAGMA integrity_check always) or quick (PRAGMA quick_check: O(N), skips matching indexes against rows).",
            valueName: "auto|full|quick"))
    var check: RestoreCheck = .auto

    @Option(
        help: ArgumentHelp("Object key of the backup to verify (default: the newest in the catalog).", valueName: "key")
    )
    var key: String?

    @Option(
        help: ArgumentHelp(
            "Verify the newest incremental restore point at or before this time (RFC 3339, or latest) instead of a full backup.",
            valueName: "time"))
    var at: String?

    @Option(
        help: ArgumentHelp(
            "Also verify this many randomly chosen older active backups of this database.", valueName: "n"))
    var sample: Int = 0

    @Flag(
        name: .customLong("if-enabled"),
        help:
            "With --at: do nothing (exit 0) unless BACKUP_INCREMENTAL is true for this database (for the weekly cron drill of restore points)."
    )
    var ifEnabled = false

    @OptionGroup var from: FromFileOptions

    func validate() throws {
        if ifEnabled && at == nil { throw ValidationError("--if-enabled goes with --at") }
        try validateKey(key)
        try from.validate(key: key)
        if !(0...1000).contains(sample) { throw ValidationError("--sample must be between 0 and 1000") }
        try validateAt(at, key: key, from: from)
        if at != nil && sample > 0 { throw ValidationError("--sample verifies full backups; it does not go with --at") }
        if sample > 0 && from.fromFile != nil {
            throw ValidationError("--sample verifies backups of the catalog, not --from-file")
        }
    }

    struct Result: Encodable {
        var verified: [FullRestoreJob.Outcome]
        var failed: [Failure]
        struct Failure: Encodable { var key: String; var error: String }
    }

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        if let at, let when = PointRestoreJob.At.parse(at) {
            if ifEnabled, !(try settings.bool("BACKUP_INCREMENTAL", default: false)) {
                out.log(
                    "verify skipped: incremental backups are off for \(settings.databasePath) (BACKUP_INCREMENTAL is not true)"
                )
                return
            }
            // A command of its own for monitoring: its series and payloads never replace the
            // full-backup drill's, and it pings no URL of the nightly backup.
            let o = try monitored(settings, "verify-points", out) { monitor in
                let o = try PointRestoreJob(settings: settings, at: when, check: check, events: out.sink).run(
                    target: .verifyOnly)
                monitor.succeeded(key: o.key, storedBytes: o.bytesFetched, sourceBytes: o.restoredBytes)
                return o
            }
            out.log(
                "verify ok: point \(o.point) (\(o.time)) restores to a sound \(Human.bytes(o.restoredBytes)) database")
            if common.json { out.printJSON(o) }
            return
        }
        let result = try monitored(settings, "verify", out) { monitor in
            let first = try verify(settings, try from.source(key: key), out)
            var result = Result(verified: [first], failed: [])
            for k in try sampleKeys(settings, excluding: first.key) {
                do {
                    result.verified.append(try verify(settings, .key(k), out))
                } catch {
                    out.warn("sample \(k) does not verify: \(error)")
                    result.failed.append(.init(key: k, error: "\(error)"))
                }
            }
            if let f = result.failed.first {
                throw LajuError(
                    .integrity,
                    "verify: \(result.failed.count) of \(sample) sampled backup(s) do not restore (first: \(f.key): \(f.error))",
                    hint: "restore and inspect them; the newest backup verified")
            }
            monitor.succeeded(key: first.key, storedBytes: first.objectBytes, sourceBytes: first.restoredBytes)
            return result
        }
        if common.json { out.printJSON(result) }
    }

    /// One verification, recorded in the catalog when it passed.
    func verify(_ settings: Settings, _ source: FullRestoreJob.Source, _ out: Output) throws -> FullRestoreJob.Outcome {
        let o = try FullRestoreJob(settings: settings, source: source, check: check, events: out.sink).run(
            target: .verifyOnly)
        if !o.source.hasPrefix("file ") {
            do {
                try settings.openCatalog().recordVerification(
                    key: o.key, at: LocalTime.nowMilliseconds(), check: o.check == "quick_check" ? "quick" : "full")
            } catch {
                out.warn("the verification of \(o.key) was not recorded in the catalog: \(error)")
            }
        }
        out.log("verify ok: \(o.key) restores to a sound \(Human.bytes(o.restoredBytes)) database")
        return o
    }

    /// `sample` random active backups of this database other than `excluding`.
    func sampleKeys(_ settings: Settings, excluding: String) throws -> [String] {
        guard sample > 0 else { return [] }
        let ours = try settings.openCatalog(readOnly: true).scan(includeDeleted: false).split(try settings.scope()).ours
        return Array(ours.map(\.key).filter { $0 != excluding }.shuffled().prefix(sample))
    }
}
