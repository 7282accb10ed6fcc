/// The databases a host backs up: one profile per `conf.d/*.env` file beside the system settings
/// file, and the system file itself when it names a database (`BACKUP_DATABASE` or
/// `BACKUP_APP_DIR`). The cron runner (`laju-backup profiles`) and `status` walk the same list,
/// so no database is skipped by one and seen by the other.
public struct Profile: Sendable, Codable, Equatable {
    /// `main` for the system file, else the profile file's name without `.env`.
    public var name: String
    /// What a run of this profile reads with `--env-file`, in order (the system file, then the
    /// profile's own file).
    public var envFiles: [String]
}

public enum Profiles {
    public enum State: Equatable, Sendable {
        /// Nothing at all is set: a fresh install.
        case notConfigured
        /// Some settings exist but no database is named anywhere: an error, never a silent pass.
        case noDatabase(String)
        case profiles([Profile])
    }

    /// Profiles of the system file `main` (and its `conf.d` folder).
    public static func discover(main: String) throws -> State {
        let confDir = main.deletingLastPathComponent + "/conf.d"
        var profiles: [Profile] = []
        let mainValues =
            access(main, F_OK) == 0 ? try EnvFile.read(path: main).values.filter { !$0.value.isEmpty } : [:]
        if mainValues["BACKUP_DATABASE"] != nil || mainValues["BACKUP_APP_DIR"] != nil {
            profiles.append(Profile(name: "main", envFiles: [main]))
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: confDir)) ?? [])
            .filter { $0.hasSuffix(".env") && !$0.hasPrefix(".") && $0.count > 4 }.sorted()
        for n in names {
            var files = [confDir + "/" + n]
            if access(main, F_OK) == 0 { files.insert(main, at: 0) }
            profiles.append(Profile(name: String(n.dropLast(4)), envFiles: files))
        }
        if !profiles.isEmpty { return .profiles(profiles) }
        if mainValues.isEmpty { return .notConfigured }
        return .noDatabase(
            "\(main) sets \(mainValues.keys.sorted().joined(separator: ", ")) but no BACKUP_DATABASE or BACKUP_APP_DIR, and \(confDir) has no NAME.env profile"
        )
    }
}
