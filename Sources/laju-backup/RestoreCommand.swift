import ArgumentParser
import LajuBackup

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore the latest backup (or --key) into a new file, or with --activate into the live database.",
        discussion: """
            Checks the key fingerprint and the MD5 before decrypting, writes into a temp file beside the
            target, and renames it into place only after the GCM tag verified and PRAGMA integrity_check
            said ok. Default target: backups/restored-<YYYY-MM-DDTHH:mm of uploaded_at>.db under the
            working directory. With --key and no readable catalog, IV and tag come from the object's
            metadata.

            With --activate the verified backup replaces the content of the live database in place
            through SQLite's backup API, after a safety copy of its current state (BACKUP_SAFETY_DIR);
            the command to undo is printed. See laju-backup-restore(1).
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(
        help: ArgumentHelp(
            "How the restored database is checked: auto (the default: no check to run when the backup recorded that its snapshot passed PRAGMA integrity_check and the restored bytes match that record; else as full), full (PRAGMA integrity_check always) or quick (PRAGMA quick_check: O(N), skips matching indexes against rows).",
            valueName: "auto|full|quick"))
    var check: RestoreCheck = .auto

    @Option(
        help: ArgumentHelp(
            "Object key of the backup to restore (default: the newest in the catalog).", valueName: "key"))
    var key: String?

    @Option(
        help: ArgumentHelp(
            "Restore the newest incremental restore point at or before this time: RFC 3339 (2026-12-02T10:15:03Z, 2026-12-02T17:15:03+07:00) or latest.",
            valueName: "time"))
    var at: String?

    @Option(help: ArgumentHelp("Write the restored database to this file.", valueName: "file"))
    var output: String?

    @Option(
        name: .customLong("output-dir"),
        help: ArgumentHelp("Write restored-<time>.db into this directory (default: ./backups).", valueName: "dir"))
    var outputDir: String?

    @Flag(help: "Replace the output file if it exists.")
    var force = false

    @OptionGroup var from: FromFileOptions

    @Flag(
        help:
            "Put the verified backup into the live database (BACKUP_DATABASE) in place, after a safety copy of its current state; the application may keep running."
    )
    var activate = false

    @Flag(help: "With --activate: do not ask for confirmation (needed when not on a terminal).")
    var yes = false

    @Option(
        name: .customLong("lock-wait"),
        help: ArgumentHelp(
            "With --activate: wait up to this many seconds for another laju-backup run on the database instead of failing at once.",
            valueName: "seconds"))
    var lockWait: Double = 0

    func validate() throws {
        if output != nil && outputDir != nil {
            throw ValidationError("--output and --output-dir exclude each other")
        }
        try validateKey(key)
        if output == "" || outputDir == "" { throw ValidationError("--output and --output-dir must not be empty") }
        try from.validate(key: key)
        try validateAt(at, key: key, from: from)
        if activate {
            if output != nil || outputDir != nil || force {
                throw ValidationError(
                    "--activate writes into the live database; it takes no --output, --output-dir or --force")
            }
            if !yes && !(isatty(0) == 1 && isatty(2) == 1) {
                throw ValidationError("--activate replaces the live database: pass --yes when not on a terminal")
            }
        } else if yes {
            throw ValidationError("--yes goes with --activate")
        }
        if !(lockWait.isFinite && (0...86_400).contains(lockWait)) {
            throw ValidationError("--lock-wait must be between 0 and 86400 seconds")
        }
    }

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        if activate {
            let job = ActivateJob(
                settings: settings, source: try from.source(key: key), at: at.flatMap(PointRestoreJob.At.parse),
                check: check, lockWait: lockWait, events: out.sink)
            let outcome = try job.run { plan in yes || confirm(plan) }
            out.log("activate ok: \(outcome.live) now holds \(outcome.key); previous state in \(outcome.safetyCopy)")
            out.log("to undo: \(outcome.undo)")
            if common.json { out.printJSON(outcome) }
            return
        }
        if let at, let when = PointRestoreJob.At.parse(at) {
            let o = try PointRestoreJob(settings: settings, at: when, check: check, events: out.sink)
                .run(target: .file(path: output, directory: outputDir ?? "backups", force: force))
            out.log(
                "restore ok: point \(o.point) (\(o.time)) -> \(o.output ?? "-") (\(Human.bytes(o.restoredBytes)), \(Human.seconds(o.totalSeconds)))"
            )
            if common.json { out.printJSON(o) }
            return
        }
        let job = FullRestoreJob(settings: settings, source: try from.source(key: key), check: check, events: out.sink)
        let outcome = try job.run(target: .file(path: output, directory: outputDir ?? "backups", force: force))
        out.log(
            "restore ok: \(outcome.key) -> \(outcome.output ?? "-") (\(Human.bytes(outcome.restoredBytes)), \(Human.seconds(outcome.totalSeconds)))"
        )
        if common.json { out.printJSON(outcome) }
    }
}

extension RestoreCheck: ExpressibleByArgument {}

/// `--from-file` with its IV and tag: restore or verify an object downloaded by other means.
struct FromFileOptions: ParsableArguments {
    @Option(
        name: .customLong("from-file"),
        help: ArgumentHelp(
            "Restore this downloaded object instead of one from the store (IV and tag from --iv/--tag, else from FILE.meta.json).",
            valueName: "file"))
    var fromFile: String?

    @Option(
        help: ArgumentHelp(
            "With --from-file: the IV, base64 (the catalog's enc_iv, or the object's iv metadata).", valueName: "base64"
        ))
    var iv: String?

    @Option(
        help: ArgumentHelp(
            "With --from-file: the GCM tag, base64 (the catalog's enc_tag, or the object's tag metadata).",
            valueName: "base64"))
    var tag: String?

    func validate(key: String?) throws {
        if fromFile != nil && key != nil { throw ValidationError("--from-file and --key exclude each other") }
        if (iv != nil || tag != nil) && fromFile == nil { throw ValidationError("--iv and --tag go with --from-file") }
        if (iv == nil) != (tag == nil) { throw ValidationError("give both --iv and --tag, or neither") }
        if let iv, Data(base64Encoded: iv)?.count != 12 {
            throw ValidationError("--iv must be 12 bytes in base64 (16 characters)")
        }
        if let tag, Data(base64Encoded: tag)?.count != 16 {
            throw ValidationError("--tag must be 16 bytes in base64 (24 characters)")
        }
    }

    func source(key: String?) throws -> FullRestoreJob.Source {
        if let fromFile {
            return .file(
                path: fromFile, iv: iv.flatMap { Data(base64Encoded: $0) }.map(Array.init),
                tag: tag.flatMap { Data(base64Encoded: $0) }.map(Array.init))
        }
        return key.map(FullRestoreJob.Source.key) ?? .latest
    }
}

/// `--at` is `latest` or an RFC 3339 time, and names a point, not an object.
func validateAt(_ at: String?, key: String?, from: FromFileOptions) throws {
    guard let at else { return }
    if PointRestoreJob.At.parse(at) == nil {
        throw ValidationError(
            "--at \(Display.quoted(at)) is not a time: give RFC 3339 with a zone (2026-12-02T10:15:03Z, 2026-12-02T17:15:03+07:00) or latest"
        )
    }
    if key != nil || from.fromFile != nil {
        throw ValidationError("--at names a restore point; it does not go with --key or --from-file")
    }
}

/// `--key` names one object: an empty or unusable key is a usage error (exit 2), found before
/// anything else runs, never a request on the bucket itself.
func validateKey(_ key: String?) throws {
    if let key, let problem = ObjectKey.problem(key) {
        throw ValidationError("--key \(Display.quoted(key)) cannot be used: \(problem)")
    }
}

/// Asks on the terminal, after the backup was verified and before anything changes.
func confirm(_ plan: ActivateJob.Plan) -> Bool {
    var text =
        "\nReplace the content of the live database \(plan.live)\n  with \(plan.key) (\(Human.bytes(plan.restoredBytes))"
    if let at = plan.uploadedAt { text += ", made \(LocalTime.logStamp(epochSeconds: Double(at) / 1000))" }
    text += ")?\n"
    if !plan.schemaDifferences.isEmpty { text += "  The schemas differ (see the warnings above).\n" }
    text += "  A safety copy of the current state is saved first. Type yes to go on: "
    Output.writeStderr(text)
    guard let answer = readLine() else { return false }
    return answer.split(separator: " ").joined().lowercased() == "yes"
}
