/// Layered settings lookup. One precedence, the same for a run from cron and a run by hand,
/// highest first:
///
/// 1. command-line flags (applied by the caller with `overriding`);
/// 2. the process environment;
/// 3. `--env-file` files, a later one before an earlier one;
/// 4. the system file `/etc/laju-backup/laju-backup.env` (`LAJU_BACKUP_CONFIG`);
/// 5. the application's `.env`: `<BACKUP_APP_DIR>/.env` when `BACKUP_APP_DIR` (or `--app-dir`)
///    names the Laju application, else `./.env` of the working directory.
///
/// The application's `.env` comes last on purpose: it holds the app's own settings (its asset
/// bucket may be `WASABI_BUCKET`), so it may fill what laju-backup's files leave unset (the key,
/// the Laju `WASABI_*` account, `DB_CONNECTION`) but never override them. Relative paths resolve
/// against `BACKUP_APP_DIR` when it is set, else the working directory.
public struct Environment: Sendable {
    public static let systemFile = "/etc/laju-backup/laju-backup.env"
    public static let localFile = ".env"

    /// One source of settings: where it came from, the values, the line of each (files only).
    public struct Layer: Sendable {
        /// Shown to people: a path, `environment`, `command line`.
        public var source: String
        /// The file read, for `file:line` origins.
        public var file: String?
        public var values: [String: String]
        public var lines: [String: Int]

        public init(source: String, file: String? = nil, values: [String: String], lines: [String: Int] = [:]) {
            self.source = source
            self.file = file
            self.values = values
            self.lines = lines
        }
    }

    /// Highest precedence first.
    public private(set) var layers: [Layer]
    /// Things the operator should know about the files read (a key readable by others, a system
    /// file skipped): the CLI prints them as warnings.
    public private(set) var warnings: [String] = []
    /// `BACKUP_APP_DIR` (absolute): the Laju application whose `.env` was read and against which
    /// relative paths resolve.
    public private(set) var appDirectory: String?

    public init(
        layers: [(source: String, values: [String: String])], warnings: [String] = [], appDirectory: String? = nil
    ) {
        self.layers = layers.map { Layer(source: $0.source, values: $0.values) }
        self.warnings = warnings
        self.appDirectory = appDirectory
    }

    public init(layers: [Layer], warnings: [String] = [], appDirectory: String? = nil) {
        self.layers = layers
        self.warnings = warnings
        self.appDirectory = appDirectory
    }

    /// Builds the standard layering. Missing default files are skipped; an unreadable or
    /// malformed one is an error, so a misconfiguration is never silently ignored (except the
    /// root-only system file for a user who is not root: skipped with a warning, so that
    /// `--env-file` runs and `--version` work for everyone).
    public static func load(
        envFiles: [String], process: [String: String] = ProcessInfo.processInfo.environment,
        systemFile: String = Environment.systemFile,
        localFile: String = Environment.localFile,
        appDirectory flag: String? = nil
    ) throws -> Environment {
        var layers = [Layer(source: "environment", values: process)]
        var warnings: [String] = []
        for f in envFiles.reversed() {
            let r = try EnvFile.layer(path: f)
            layers.append(r.layer)
            warnings += r.warnings
        }
        // LAJU_BACKUP_CONFIG replaces the system file's path (empty: no system file), so tests
        // and unusual layouts never pick up a host's real configuration by accident.
        let system = process["LAJU_BACKUP_CONFIG"] ?? systemFile
        if !system.isEmpty && access(system, F_OK) == 0 {
            if geteuid() != 0 && access(system, R_OK) != 0 {
                warnings.append("\(system) is readable only by root; skipped (pass your settings with --env-file FILE)")
            } else {
                let r = try EnvFile.layer(path: system)
                layers.append(r.layer)
                warnings += r.warnings
            }
        }
        var env = Environment(layers: layers, warnings: warnings)
        let appDir = flag.map(absolutePath) ?? env["BACKUP_APP_DIR"]
        if let appDir {
            guard appDir.hasPrefix("/") else {
                throw LajuError(
                    .usage,
                    "BACKUP_APP_DIR=\(Display.safe(appDir)) must be an absolute path (\(env.origin(of: "BACKUP_APP_DIR") ?? "?"))"
                )
            }
            var st = stat()
            guard stat(appDir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                throw LajuError(
                    .usage,
                    "BACKUP_APP_DIR=\(Display.safe(appDir)) is not a directory (\(env.origin(of: "BACKUP_APP_DIR") ?? "--app-dir"))",
                    hint: "point it at the Laju application's folder (the one holding its .env)")
            }
            let dotenv = appDir.hasSuffix("/") ? appDir + localFile : appDir + "/" + localFile
            if access(dotenv, F_OK) == 0 { try env.addApplicationFile(dotenv) }
            env.appDirectory = appDir
        } else if !localFile.isEmpty && access(localFile, F_OK) == 0 {
            try env.addApplicationFile(absolutePath(localFile))
        }
        return env
    }

    /// The names an application's `.env` may set: those the Laju scripts read. Everything else
    /// laju-backup does (which database, which paths, which URLs and commands) is decided by its
    /// own files, which only root (or the invoking user) can change.
    public static let applicationNames: Set<String> = [
        "DB_CONNECTION", "WASABI_ACCESS_KEY", "WASABI_SECRET_KEY", "WASABI_BUCKET", "WASABI_REGION",
        "WASABI_ENDPOINT", "BACKUP_ENCRYPTION_KEY", "BACKUP_RETENTION_DAYS", "BACKUP_SSE"
    ]

    /// Adds the application's `.env` as the lowest layer, keeping only `applicationNames`. Another
    /// setting of laju-backup's found there is refused when it would take effect (no file of
    /// laju-backup's sets it), and ignored with a warning when laju-backup's own files set it
    /// anyway. The application's `AWS_*` and other names are its own: not read.
    mutating func addApplicationFile(_ path: String) throws {
        let r = try EnvFile.layer(path: path, authority: .application)
        var layer = r.layer
        let ours = Set(SettingNames.all.map(\.name)).filter { !$0.hasPrefix("AWS_") }
        for name in layer.values.keys.sorted() where !Environment.applicationNames.contains(name) {
            let value = layer.values.removeValue(forKey: name) ?? ""
            guard ours.contains(name), !value.isEmpty else { continue }
            let place = "\(path):\(layer.lines[name] ?? 0)"
            guard self[name] != nil else {
                throw LajuError(
                    .usage,
                    "\(place) sets \(name), which the application's .env may not set: it may set only \(Environment.applicationNames.sorted().joined(separator: ", ")) (what the Laju scripts read)",
                    hint: "move \(name) to \(Environment.systemFile) or the profile's file, which only root can change")
            }
            warnings.append(
                "\(place) sets \(name): ignored (the application's .env may not set it; \(origin(of: name) ?? "?") does)"
            )
        }
        layers.append(layer)
        warnings += r.warnings
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

    /// `file:line` for a setting read from a file, else its layer (`environment`, `command line`).
    public func origin(of name: String) -> String? {
        guard let layer = layers.first(where: { ($0.values[name].map { !$0.isEmpty }) ?? false }) else { return nil }
        if let line = layer.lines[name] { return "\(layer.file ?? layer.source):\(line)" }
        return layer.source
    }

    /// A copy where `overrides` (command-line flags) win over everything.
    public func overriding(_ overrides: [String: String]) -> Environment {
        var copy = self
        copy.layers.insert(Layer(source: "command line", values: overrides), at: 0)
        return copy
    }

    /// `path` made absolute: against `BACKUP_APP_DIR` when set, else the working directory.
    public func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let base = appDirectory else { return absolutePath(path) }
        let p = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        return p == "." ? base : (base.hasSuffix("/") ? base : base + "/") + p
    }
}
