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
            Output.writeError("""
                Store it as BACKUP_ENCRYPTION_KEY=<key> in /etc/laju-backup/laju-backup.env (mode 0600) or the app's .env,
                and keep a copy somewhere safe off this host: without it no backup can be restored.
                Key fingerprint (safe to share): \(key.fingerprint)
                """)
        }
    }
}
