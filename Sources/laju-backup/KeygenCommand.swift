import ArgumentParser
import LajuBackup

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Print a new random 32-byte encryption key in base64."
    )

    func run() throws {
        let key = try EncryptionKey.generate()
        print(Data(key.bytes).base64EncodedString())
        if isatty(1) == 1 || isatty(2) == 1 {
            Output.writeError(
                """
                Store it as BACKUP_ENCRYPTION_KEY=<key> in /etc/laju-backup/laju-backup.env (mode 0600): every run,
                cron's included, reads it there. A key kept only in a Laju app's .env is found only by runs whose
                profile sets BACKUP_APP_DIR to that app's folder (or that pass --app-dir).
                Keep a copy somewhere safe off this host: without it no backup can be restored.
                Key fingerprint (safe to share): \(key.fingerprint)
                """)
        }
    }
}
