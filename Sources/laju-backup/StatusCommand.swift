import ArgumentParser
import LajuBackup

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Report whether each database has a recent backup, as a monitoring plugin (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).",
        discussion: """
            For every profile (see `laju-backup profiles`), or for the database the options and environment \
            name: the newest backup (age, size, key), the newest one that verified, the active backups, \
            and whether the store holds the newest object. Exit status follows the monitoring-plugin \
            convention, unlike every other command: 0 OK; 1 WARNING when the newest backup is older than \
            --max-age; 2 CRITICAL when there is no backup, it is older than twice --max-age, the store is \
            unreachable or the newest object is missing; 3 UNKNOWN for a configuration error. For a \
            database with BACKUP_INCREMENTAL=true, the newest restore point too: WARNING past \
            --max-point-age, CRITICAL past twice that or when there is none or it does not open. The worst \
            database decides.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(
        name: .customLong("max-age"),
        help: ArgumentHelp(
            "Age of the newest backup beyond which status is WARNING (twice that: CRITICAL).", valueName: "duration"))
    var maxAge: String = "26h"

    @Option(
        name: .customLong("max-point-age"),
        help: ArgumentHelp(
            "Age of the newest restore point beyond which status is WARNING (twice that: CRITICAL); only for databases with BACKUP_INCREMENTAL=true.",
            valueName: "duration"))
    var maxPointAge: String = "1h"

    func validate() throws {
        do { _ = try DurationText.seconds(maxAge) } catch let e as LajuError {
            throw ValidationError("--max-age: \(e.description)")
        }
        do { _ = try DurationText.seconds(maxPointAge) } catch let e as LajuError {
            throw ValidationError("--max-point-age: \(e.description)")
        }
    }

    /// Options or environment that name one database: then only that one is checked.
    var namesOneDatabase: Bool {
        let env = ProcessInfo.processInfo.environment
        return common.database != nil || common.appDir != nil || !common.envFiles.isEmpty
            || env["BACKUP_DATABASE"].map { !$0.isEmpty } ?? false || env["BACKUP_APP_DIR"].map { !$0.isEmpty } ?? false
    }

    func run() throws {
        let out = common.output()
        let max = try DurationText.seconds(maxAge)
        let maxPoint = try DurationText.seconds(maxPointAge)
        var reports: [StatusJob.Report] = []
        var unknown: String?
        do {
            if namesOneDatabase {
                let settings = try common.settings()
                reports.append(
                    StatusJob(
                        settings: settings,
                        profile: settings.environment["BACKUP_PROFILE"]
                            ?? (settings.databasePath.split(separator: "/").last.map(String.init) ?? "database"),
                        maxAge: max, maxPointAge: maxPoint
                    ).run())
            } else {
                let main =
                    ProcessInfo.processInfo.environment["LAJU_BACKUP_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
                    ?? Environment.systemFile
                switch try Profiles.discover(main: main) {
                case .notConfigured:
                    unknown = "nothing is configured in \(main)"
                case .noDatabase(let why):
                    unknown = "no database is configured: \(why)"
                case .profiles(let list):
                    for p in list {
                        do {
                            let env = try Environment.load(envFiles: p.envFiles).overriding(["BACKUP_PROFILE": p.name])
                            reports.append(
                                StatusJob(
                                    settings: Settings(environment: env), profile: p.name, maxAge: max,
                                    maxPointAge: maxPoint
                                ).run())
                        } catch {
                            reports.append(
                                StatusJob.Report(
                                    profile: p.name, database: "?", level: .unknown,
                                    message: "configuration: \(error)", activeBackups: 0))
                        }
                    }
                }
            }
        } catch {
            unknown = "configuration: \(error)"
        }
        var level = reports.map(\.level).max() ?? .ok
        if unknown != nil { level = Swift.max(level, .unknown) }
        if common.json {
            out.printJSON(
                StatusOutput(status: level, exitStatus: level.exitStatus, message: unknown, databases: reports))
        } else {
            let summary = unknown ?? reports.map { "\($0.profile): \($0.message)" }.joined(separator: "; ")
            let perf =
                reports.compactMap { r in
                    r.newest.map {
                        "'age_\(r.profile)'=\(Int($0.ageSeconds))s;\(Int(max));\(Int(2 * max)) 'active_\(r.profile)'=\(r.activeBackups)"
                    }
                }
                + reports.compactMap { r in
                    r.newestPoint.map {
                        "'point_age_\(r.profile)'=\(Int($0.ageSeconds))s;\(Int(maxPoint));\(Int(2 * maxPoint))"
                    }
                }
            print(
                Display.safe("\(level.rawValue.uppercased()) - \(summary)")
                    + (perf.isEmpty ? "" : " | " + perf.joined(separator: " ")))
            if reports.count > 1 {
                for r in reports {
                    print(Display.safe("\(r.profile) (\(r.database)): \(r.level.rawValue.uppercased()) - \(r.message)"))
                }
            }
        }
        if level != .ok { throw ExitCode(level.exitStatus) }
    }

    struct StatusOutput: Encodable {
        var status: StatusJob.Level
        var exitStatus: Int32
        var message: String?
        var databases: [StatusJob.Report]
    }
}
