import ArgumentParser
import LajuBackup
import Glibc

@main
struct LajuBackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "laju-backup",
        abstract: "Consistent, compressed, encrypted backups of a live SQLite database to S3 or a directory.",
        discussion: """
            Settings come from flags, then the process environment, then --env-file files, then ./.env,
            then /etc/laju-backup/laju-backup.env. Exit status: 0 ok, 1 internal error, 2 usage or
            configuration, 3 source database, 4 integrity/authentication, 5 storage, 6 local filesystem,
            7 busy (another run), 8 catalog. See laju-backup(1).
            """,
        version: "laju-backup \(LajuBackupVersion.string)",
        subcommands: commandList
    )

    /// Maps every failure to one clear line and a documented exit status.
    static func main() {
        SignalCleanup.install()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as LajuError {
            Output.failure(error)
            if CommandLine.arguments.contains("--json") { Output.printJSONError(error) }
            Glibc.exit(error.kind.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                exit(withError: error)  // --help, --version
            }
            if code == .validationFailure {
                // Usage errors: ArgumentParser's message, our exit status for configuration errors.
                Output.writeError(fullMessage(for: error))
                Glibc.exit(LajuError.Kind.usage.exitCode)
            }
            if let code = error as? ExitCode { Glibc.exit(code.rawValue) }
            Output.failure(LajuError(.internal, "\(error)"))
            Glibc.exit(LajuError.Kind.internal.exitCode)
        }
    }
}
