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
        if key.unicodeScalars.contains(where: isControl) { return "the key contains control characters" }
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

    /// C0 and C1 controls and DEL: never part of a key we make.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x20 || (0x7F...0x9F).contains(s.value)
    }
}

/// Text from outside (keys, S3 messages, file names) made safe to print on a terminal or in a log:
/// control characters, which could move the cursor or rewrite earlier lines, become `\u{..}`.
public enum Display {
    public static func safe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for s in text.unicodeScalars {
            if needsEscape(s) {
                out += "\\u{" + String(s.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(s)
            }
        }
        return out
    }

    /// `safe(text)` in quotes, for values that may be empty or hold spaces.
    public static func quoted(_ text: String) -> String { "'" + safe(text) + "'" }

    static func needsEscape(_ s: Unicode.Scalar) -> Bool {
        ObjectKey.isControl(s) || s.value == 0x2028 || s.value == 0x2029
    }
}
