import ArgumentParser
import LajuBackup

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print every effective setting and where it came from (secrets hidden).",
        discussion: """
            Reads the settings exactly as every other command does and prints, for each one, its value \
            and its source: file:line, environment, command line, or default. Secrets are never shown: \
            the encryption key appears as its fingerprint. Then what they resolve to: the database, the \
            catalog, the store and the prefix. Exit status 2 when a setting is unusable.
            """
    )

    @OptionGroup var common: CommonOptions

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        let report = SettingsReport(settings: settings)
        if common.json {
            out.printJSON(report)
        } else {
            print(
                Table.render(
                    header: ["SETTING", "VALUE", "FROM"],
                    rows: report.settings.map {
                        [$0.name, $0.value ?? "-", $0.source]
                    }))
            print("")
            var lines = ["database: \(report.database)", "catalog:  \(report.catalog)"]
            if let a = report.appDirectory { lines.append("app dir:  \(a)") }
            if let s = report.store { lines.append("store:    \(s)\(report.prefix ?? "")") }
            if let f = report.keyFingerprint { lines.append("key:      fingerprint \(f)") }
            for line in lines { print(Display.safe(line)) }
        }
        if let first = report.problems.first {
            throw LajuError(.usage, "settings are not usable: \(first)")
        }
    }
}
