import ArgumentParser
import LajuBackup

struct ProfilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles",
        abstract: "List the databases this host backs up (what the cron jobs walk).",
        discussion: """
            One profile per /etc/laju-backup/conf.d/NAME.env, and the main settings file itself (profile \
            main) when it sets BACKUP_DATABASE or BACKUP_APP_DIR; LAJU_BACKUP_CONFIG moves both. Prints one \
            line per profile, tab-separated: its name, its database, then the files a run of it reads with \
            --env-file. Exit status 0; \
            3 with one line when nothing at all is configured (a fresh install); 2 when settings exist but \
            name no database.
            """
    )

    @Flag(help: "Print the profiles as JSON.")
    var json = false

    func run() throws {
        let main =
            ProcessInfo.processInfo.environment["LAJU_BACKUP_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Environment.systemFile
        switch try Profiles.discover(main: main) {
        case .notConfigured:
            if json { Output(json: true, quiet: false).printJSON(ProfileList(profiles: [])) }
            throw ExitCode(3)
        case .noDatabase(let why):
            throw LajuError(.usage, "no database is configured: \(why)", hint: "see laju-backup(1), Several databases")
        case .profiles(let list):
            if json {
                Output(json: true, quiet: false).printJSON(ProfileList(profiles: list))
            } else {
                for p in list { print(([p.name, database(p)] + p.envFiles).map(Display.safe).joined(separator: "\t")) }
            }
        }
    }

    struct ProfileList: Encodable { var profiles: [Profile] }

    /// The profile's database as its settings resolve it, or `?` when they cannot be read.
    func database(_ p: Profile) -> String {
        (try? Environment.load(envFiles: p.envFiles)).map { Settings(environment: $0).databasePath } ?? "?"
    }
}
