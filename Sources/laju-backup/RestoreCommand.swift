import ArgumentParser
import LajuBackup

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore the latest backup (or --key) into a new file; never touches the live database.",
        discussion: """
            Checks the key fingerprint and the MD5 before decrypting, writes into a temp file beside the
            target, and renames it into place only after the GCM tag verified and PRAGMA integrity_check
            said ok. Default target: backups/restored-<YYYY-MM-DDTHH:mm of uploaded_at>.db under the
            working directory. With --key and no readable catalog, IV and tag come from the object's
            metadata.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("How the restored database is checked: full (PRAGMA integrity_check) or quick (PRAGMA quick_check: O(N), skips matching indexes against rows; for large emergency restores).", valueName: "full|quick"))
    var check: Database.Check = .full

    @Option(help: ArgumentHelp("Object key of the backup to restore (default: the newest in the catalog).", valueName: "key"))
    var key: String?

    @Option(help: ArgumentHelp("Write the restored database to this file.", valueName: "file"))
    var output: String?

    @Option(name: .customLong("output-dir"), help: ArgumentHelp("Write restored-<time>.db into this directory (default: ./backups).", valueName: "dir"))
    var outputDir: String?

    @Flag(help: "Replace the output file if it exists.")
    var force = false

    func validate() throws {
        if output != nil && outputDir != nil {
            throw ValidationError("--output and --output-dir exclude each other")
        }
        try validateKey(key)
        if output == "" || outputDir == "" { throw ValidationError("--output and --output-dir must not be empty") }
    }

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        let job = RestoreJob(settings: settings, key: key, check: check, events: out.sink)
        let outcome = try job.run(target: .file(path: output, directory: outputDir ?? "backups", force: force))
        out.log("restore ok: \(outcome.key) -> \(outcome.output ?? "-") (\(Format.bytes(outcome.restoredBytes)), \(Format.seconds(outcome.totalSeconds)))")
        if common.json { out.printJSON(outcome) }
    }
}

extension Database.Check: ExpressibleByArgument {}

/// `--key` names one object: an empty or unusable key is a usage error (exit 2), found before
/// anything else runs, never a request on the bucket itself.
func validateKey(_ key: String?) throws {
    if let key, let problem = ObjectKey.problem(key) {
        throw ValidationError("--key \(Display.quoted(key)) cannot be used: \(problem)")
    }
}
