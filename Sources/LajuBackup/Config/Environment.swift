/// Layered settings lookup. Precedence, highest first:
/// command-line flags (applied by the caller) > process environment > `--env-file` files (later
/// ones win) > `./.env` > `/etc/laju-backup/laju-backup.env`.
public struct Environment: Sendable {
    public static let systemFile = "/etc/laju-backup/laju-backup.env"
    public static let localFile = ".env"

    /// Highest precedence first.
    public private(set) var layers: [(source: String, values: [String: String])]
    /// Things the operator should know about the files read (a key readable by others, a system
    /// file skipped): the CLI prints them as warnings.
    public private(set) var warnings: [String] = []

    public init(layers: [(source: String, values: [String: String])], warnings: [String] = []) {
        self.layers = layers
        self.warnings = warnings
    }

    /// Builds the standard layering. Missing default files are skipped; an unreadable or
    /// malformed one is an error, so a misconfiguration is never silently ignored (except the
    /// root-only system file for a user who is not root: skipped with a warning, so that
    /// `--env-file` runs and `--version` work for everyone).
    public static func load(envFiles: [String], process: [String: String] = ProcessInfo.processInfo.environment,
                            systemFile: String = Environment.systemFile,
                            localFile: String = Environment.localFile) throws -> Environment {
        var layers: [(String, [String: String])] = [("environment", process)]
        var warnings: [String] = []
        for f in envFiles.reversed() {
            let r = try EnvFile.read(path: f)
            layers.append((f, r.values))
            warnings += r.warnings
        }
        // LAJU_BACKUP_CONFIG replaces the system file's path (empty: no system file), so tests
        // and unusual layouts never pick up a host's real configuration by accident.
        let system = process["LAJU_BACKUP_CONFIG"] ?? systemFile
        for f in [localFile, system] where !f.isEmpty && access(f, F_OK) == 0 {
            if f == system && geteuid() != 0 && access(f, R_OK) != 0 {
                warnings.append("\(f) is readable only by root; skipped (pass your settings with --env-file FILE)")
                continue
            }
            let r = try EnvFile.read(path: f)
            layers.append((f, r.values))
            warnings += r.warnings
        }
        return Environment(layers: layers.map { (source: $0.0, values: $0.1) }, warnings: warnings)
    }

    /// The value of `name`, empty strings counting as unset (as dotenv users expect).
    public subscript(name: String) -> String? {
        for layer in layers {
            if let v = layer.values[name], !v.isEmpty { return v }
        }
        return nil
    }

    /// The first of several names that is set.
    public func first(_ names: String...) -> String? {
        for n in names { if let v = self[n] { return v } }
        return nil
    }

    /// Where `name` came from, for `config` output and error messages.
    public func source(of name: String) -> String? {
        layers.first { ($0.values[name].map { !$0.isEmpty }) ?? false }?.source
    }

    /// A copy where `overrides` (command-line flags) win over everything.
    public func overriding(_ overrides: [String: String]) -> Environment {
        var copy = self
        copy.layers.insert((source: "command line", values: overrides), at: 0)
        return copy
    }
}
