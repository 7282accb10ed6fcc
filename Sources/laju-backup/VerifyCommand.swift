import ArgumentParser
import LajuBackup

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that a backup is intact and restorable, without keeping the result.",
        discussion: "Runs every check restore runs (fingerprint, MD5, GCM tag, gzip, PRAGMA integrity_check) in a private temp directory. Exit 0 only if the backup restores."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("How the restored database is checked: full (PRAGMA integrity_check) or quick (PRAGMA quick_check: O(N), skips matching indexes against rows; for large emergency restores).", valueName: "full|quick"))
    var check: Database.Check = .full

    @Option(help: ArgumentHelp("Object key of the backup to verify (default: the newest in the catalog).", valueName: "key"))
    var key: String?

    @OptionGroup var from: FromFileOptions

    func validate() throws {
        try validateKey(key)
        try from.validate(key: key)
    }

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        let outcome = try RestoreJob(settings: settings, source: try from.source(key: key), check: check, events: out.sink).run(target: .verifyOnly)
        out.log("verify ok: \(outcome.key) restores to a sound \(Format.bytes(outcome.restoredBytes)) database")
        if common.json { out.printJSON(outcome) }
    }
}
