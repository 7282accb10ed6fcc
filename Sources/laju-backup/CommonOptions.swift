import ArgumentParser
import LajuBackup

/// Options every command that reads settings, the database or the catalog shares.
struct CommonOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "SQLite database to back up (default: BACKUP_DATABASE, else ./data/<dev|production|test>.sqlite3 from DB_CONNECTION).",
            valueName: "path"))
    var database: String?

    @Option(
        help: ArgumentHelp(
            "SQLite file holding the backup_files table (default: BACKUP_CATALOG, else the database itself).",
            valueName: "path"))
    var catalog: String?

    @Option(
        help: ArgumentHelp(
            "Where backups are stored: file:///absolute/dir or s3 (default: BACKUP_STORAGE, else s3).", valueName: "url"
        ))
    var storage: String?

    @Option(
        name: .customLong("app-dir"),
        help: ArgumentHelp(
            "The Laju application's folder: its .env supplies what laju-backup's own settings leave unset, and relative paths resolve against it (default: BACKUP_APP_DIR).",
            valueName: "dir"))
    var appDir: String?

    @Option(
        name: .customLong("env-file"),
        help: ArgumentHelp(
            "Read settings from this dotenv file (repeatable; later files win; the process environment wins over all files).",
            valueName: "file"))
    var envFiles: [String] = []

    @Flag(help: "Print the result as JSON on stdout (log lines still go to stderr).")
    var json = false

    @Flag(name: .shortAndLong, help: "Print only errors and warnings.")
    var quiet = false

    /// Settings with these flags applied on top of every other source.
    func settings(_ extra: [String: String] = [:]) throws -> Settings {
        var overrides = extra
        // Paths on the command line are the user's, relative to where they stand.
        overrides["BACKUP_DATABASE"] = database.map(absolutePath)
        overrides["BACKUP_CATALOG"] = catalog.map(absolutePath)
        overrides["BACKUP_STORAGE"] = storage
        let environment = try Environment.load(envFiles: envFiles, appDirectory: appDir)
        let out = output()
        for w in environment.warnings { out.warn(w) }
        return Settings(environment: environment.overriding(overrides))
    }

    func output() -> Output { Output(json: json, quiet: quiet) }
}
