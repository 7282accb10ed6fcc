/// The one place where an object key is judged before any request is made with it.
///
/// Keys reach us from catalog rows, store listings and `--key`: all hostile until checked. A key
/// we act on must name one object, inside the store, unambiguously: an empty key would address the
/// bucket itself (a DELETE on it is DeleteBucket), `..` or `.` segments are collapsed by URL
/// normalisation and local paths (a DELETE would land elsewhere), and control characters would
/// reach terminals and logs.
public enum ObjectKey {
    /// S3's limit on a key's length, in UTF-8 bytes.
    public static let maxBytes = 1024

    /// Why `key` is refused, or nil when it may be used.
    public static func problem(_ key: String) -> String? {
        if key.isEmpty { return "the key is empty" }
        if key.utf8.count > maxBytes { return "the key is longer than \(maxBytes) bytes" }
        if key.unicodeScalars.contains(where: Display.isControl) { return "the key contains control characters" }
        if key.hasPrefix("/") { return "the key starts with /" }
        if key.hasSuffix("/") { return "the key ends with / (a folder, not an object)" }
        for segment in key.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { return "the key contains //" }
            if segment == "." || segment == ".." { return "the key contains a . or .. segment" }
        }
        return nil
    }

    /// Throws a usage error naming where the key came from (`--key`, `catalog row <id>`...).
    public static func validate(_ key: String, origin: String) throws {
        if let problem = problem(key) {
            throw LajuError(.usage, "refusing object key \(Display.quoted(key)) from \(origin): \(problem)")
        }
    }
}

extension Settings {
    /// Object key prefix, `backups/` by default (the original's), always ending in `/` unless
    /// empty. It must be usable inside a key (`ObjectKey`): no `..`, no leading `/`.
    public var prefix: String {
        get throws {
            var p = environment["BACKUP_PREFIX"] ?? "backups/"
            if !p.isEmpty && !p.hasSuffix("/") { p += "/" }
            if !p.isEmpty, let problem = ObjectKey.problem(String(p.dropLast()) + "/x") {
                throw LajuError(
                    .usage, "BACKUP_PREFIX=\(Display.quoted(p)) cannot start object keys: \(problem)",
                    hint: "use a plain folder name such as backups/ or myapp/backups/")
            }
            return p
        }
    }
}
