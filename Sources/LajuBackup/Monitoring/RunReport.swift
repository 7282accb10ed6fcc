/// What one run of a monitored command (backup, clean, verify) did, as the pings, the webhook and
/// the metrics file report it. Holds nothing secret: error messages are redacted where they are
/// made, and keys are object names.
public struct RunReport: Sendable, Codable {
    public var command: String
    /// `BACKUP_PROFILE` (the cron runner sets it to the profile's name), else the database's file name.
    public var profile: String
    public var database: String
    public var host: String
    /// The object a backup stored, or the backup a verify checked.
    public var key: String?
    /// Bytes stored (backup: the object) and of the source (backup: the snapshot; verify: restored).
    public var storedBytes: Int64?
    public var sourceBytes: Int64?
    public var startedAt: Double
    public var seconds: Double
    public var exitStatus: Int32
    /// The one-line error, nil on success.
    public var error: String?

    public var succeeded: Bool { exitStatus == 0 }

    public init(command: String, profile: String, database: String, startedAt: Double) {
        self.command = command
        self.profile = profile
        self.database = database
        self.startedAt = startedAt
        host = RunReport.hostName()
        seconds = 0
        exitStatus = 0
    }

    /// One human line: `laju-backup backup blog on web1: ok in 4.2 s (backups/...)`.
    public var text: String {
        var t = "laju-backup \(command) \(profile) on \(host): "
        if succeeded {
            t += "ok in \(Human.seconds(seconds))"
            if let key { t += " (\(key))" }
        } else {
            t += "FAILED with exit status \(exitStatus) after \(Human.seconds(seconds)): \(error ?? "unknown error")"
        }
        return Display.safe(t)
    }

    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "localhost" }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
