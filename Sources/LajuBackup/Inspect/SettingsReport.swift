/// What `laju-backup config` shows: every setting with its effective value and where it came
/// from, secrets hidden, and what the settings resolve to.
public struct SettingsReport: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var name: String
        /// The value, `(hidden)` for secrets, nil when unset.
        public var value: String?
        /// `file:line`, `environment`, `command line`, or `default`.
        public var source: String
        public var secret: Bool
    }
    public var settings: [Entry]
    public var database: String
    public var catalog: String
    public var appDirectory: String?
    public var store: String?
    public var prefix: String?
    public var keyFingerprint: String?
    /// What is wrong with the settings as they stand (a key that does not decode...).
    public var problems: [String]

    public init(settings s: Settings) {
        let env = s.environment
        settings = SettingNames.all.map { n in
            guard let v = env[n.name] else {
                return Entry(name: n.name, value: n.fallback, source: "default", secret: n.secret)
            }
            return Entry(
                name: n.name, value: n.secret ? "(hidden, \(v.count) characters)" : v,
                source: env.origin(of: n.name) ?? "?", secret: n.secret)
        }
        database = s.databasePath
        catalog = s.catalogPath
        appDirectory = env.appDirectory
        problems = []
        do { keyFingerprint = try s.encryptionKey().fingerprint } catch { problems.append("\(error)") }
        do { prefix = try s.prefix } catch { problems.append("\(error)") }
        do { store = try s.makeStore().displayName } catch { problems.append("\(error)") }
        if let i = settings.firstIndex(where: { $0.name == "BACKUP_ENCRYPTION_KEY" }), let fp = keyFingerprint {
            settings[i].value = "(hidden; fingerprint \(fp))"
        }
    }
}
