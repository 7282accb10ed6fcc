import ArgumentParser
import LajuBackup

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Back up and restore a sample database through a local-directory store (no S3 account needed).",
        discussion:
            "Creates DIR with a sample app database, a fresh key, a file:// store and a restored copy, then checks that the restored rows equal the original's."
    )

    @Option(
        help: ArgumentHelp("Working directory for the demo (created; must not hold an earlier demo).", valueName: "dir")
    )
    var dir: String = "laju-backup-demo"

    @Option(help: ArgumentHelp("Rows in the sample table.", valueName: "n"))
    var rows: Int = 20_000

    /// How this binary was started, so the suggested command works as pasted (`swift run` leaves
    /// it under .build, not on PATH).
    static var invokedBinary: String {
        let arg0 = CommandLine.arguments.first ?? "laju-backup"
        return arg0.contains("/") ? absolutePath(arg0) : arg0
    }

    func validate() throws {
        if !(1...10_000_000).contains(rows) { throw ValidationError("--rows must be between 1 and 10000000") }
    }

    func run() throws {
        let out = Output(json: false, quiet: false)
        let root = absolutePath(dir)
        if FileManager.default.fileExists(atPath: root + "/app.sqlite3") {
            throw LajuError(.local, "\(root) already holds a demo", hint: "remove it or pass --dir")
        }
        for sub in ["", "/store", "/tmp"] {
            try FileManager.default.createDirectory(atPath: root + sub, withIntermediateDirectories: true)
        }
        let dbPath = root + "/app.sqlite3"
        out.log("demo: creating \(dbPath) with \(rows) rows")
        try SampleDatabase.create(at: dbPath, rows: rows)
        let key = try EncryptionKey.generate()
        let env = Environment(layers: [
            (
                source: "demo",
                values: [
                    "BACKUP_DATABASE": dbPath,
                    "BACKUP_STORAGE": "file://\(root)/store",
                    "BACKUP_ENCRYPTION_KEY": Data(key.bytes).base64EncodedString(),
                    "BACKUP_TMPDIR": root + "/tmp"
                ]
            )
        ])
        let settings = Settings(environment: env)
        let backup = try FullBackupJob(settings: settings, events: out.sink).run()
        let restoredPath = root + "/restored.sqlite3"
        let restored = try FullRestoreJob(settings: settings, key: nil, events: out.sink)
            .run(target: .file(path: restoredPath, directory: root, force: false))
        let same = try SampleDatabase.fingerprint(dbPath) == SampleDatabase.fingerprint(restoredPath, immutable: true)
        guard same else {
            throw LajuError(.integrity, "demo: the restored database differs from the original")
        }
        print(
            """
            demo ok: backed up \(Human.bytes(backup.databaseBytes)) to \(backup.store)/\(backup.key)
                     (\(Human.bytes(backup.objectBytes)) stored) and restored it to \(restored.output ?? "-");
                     the restored rows equal the original's.
            Try:     \(DemoCommand.invokedBinary) list --database \(dbPath)
            """)
    }
}
