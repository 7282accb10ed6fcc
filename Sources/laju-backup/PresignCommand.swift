import ArgumentParser
import LajuBackup

struct PresignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presign",
        abstract: "Print a time-limited download URL for a backup object (S3 storage only).",
        discussion: """
            The URL lets anyone holding it download the (still encrypted) object until it expires;
            they also need BACKUP_ENCRYPTION_KEY to restore it. It is printed on stdout only, never logged.
            """
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: ArgumentHelp("Object key, as `laju-backup list` shows it.", valueName: "key"))
    var key: String

    @Option(
        help: ArgumentHelp(
            "How long the URL stays valid: seconds, or a number with s, m, h or d (max 7d).", valueName: "duration"))
    var expires: String = "1h"

    func validate() throws { try validateKey(key) }

    func run() throws {
        let seconds = try PresignCommand.parseDuration(expires)
        let settings = try common.settings()
        guard let store = try settings.makeStore(role: .read) as? PresigningStore else {
            throw LajuError(.usage, "presign needs S3 storage; BACKUP_STORAGE points at a local directory")
        }
        // A URL for a missing key would only fail later, in someone else's hands: check now.
        _ = try store.head(key: key)
        let url = store.presignedGetURL(key: key, expires: seconds, date: Date())
        if common.json {
            common.output().printJSON(Presigned(key: key, url: url, expiresInSeconds: seconds))
        } else {
            print(url)
        }
    }

    struct Presigned: Encodable {
        var key: String
        var url: String
        var expiresInSeconds: Int
    }

    /// "90", "30m", "12h", "7d" → seconds, 1...604800 (S3's limit for SigV4 presigned URLs).
    static func parseDuration(_ text: String) throws -> Int {
        var t = text.lowercased()
        var unit = 1
        switch t.last {
        case "s": unit = 1; t.removeLast()
        case "m": unit = 60; t.removeLast()
        case "h": unit = 3600; t.removeLast()
        case "d": unit = 86400; t.removeLast()
        default: break
        }
        guard let n = Int(t), n > 0, n <= 604_800 / unit else {
            throw LajuError(.usage, "--expires \(text) must be between 1s and 7d (e.g. 30m, 12h, 7d)")
        }
        return n * unit
    }
}
