/// Reads dotenv-style files (`KEY=value`), as Laju apps keep their settings in `.env`.
///
/// Accepted: blank lines, `# comments`, an optional `export ` prefix, values in single quotes
/// (literal), double quotes (`\n`, `\"`, `\\` escapes) or bare (trimmed, ` #` starts a comment).
public enum EnvFile {
    public static func parse(_ text: String, source: String) throws -> [String: String] {
        try parseWithLines(text, source: source).values
    }

    /// The values, and the line each one was set on (the last one wins, as in a shell); `twice`
    /// holds, for a name set more than once, the line of its first setting.
    public static func parseWithLines(_ text: String, source: String) throws -> (
        values: [String: String], lines: [String: Int], twice: [String: Int]
    ) {
        var out: [String: String] = [:]
        var lines: [String: Int] = [:]
        var twice: [String: Int] = [:]
        // "\r\n" is one Character in Swift, so split on both: .env files edited on Windows have CRLF.
        for (n, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .enumerated()
        {
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            line = line.drop(while: { $0 == " " || $0 == "\t" })
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).drop(while: { $0 == " " }) }
            guard let eq = line.firstIndex(of: "=") else {
                throw LajuError(.usage, "\(source):\(n + 1): expected NAME=value")
            }
            let name = line[..<eq].trimmingCharacters(in: " \t")
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw LajuError(.usage, "\(source):\(n + 1): invalid variable name")
            }
            var value = line[line.index(after: eq)...].drop(while: { $0 == " " || $0 == "\t" })
            if let q = value.first, q == "\"" || q == "'" {
                value = value.dropFirst()
                guard let end = closingQuote(q, in: value) else {
                    throw LajuError(.usage, "\(source):\(n + 1): unterminated quoted value for \(name)")
                }
                // After the closing quote only blanks and a comment may follow: `KEY="a"b` is
                // a typo whose meaning nobody can guess.
                let rest = value[value.index(after: end)...].drop(while: { $0 == " " || $0 == "\t" })
                guard rest.isEmpty || rest.hasPrefix("#") else {
                    throw LajuError(.usage, "\(source):\(n + 1): unexpected text after the closing quote of \(name)")
                }
                out[name] = q == "\"" ? unescape(value[..<end]) : String(value[..<end])
            } else {
                if let hash = commentStart(value) { value = value[..<hash] }
                out[name] = value.trimmingCharacters(in: " \t")
            }
            if let first = lines[name], twice[name] == nil { twice[name] = first }
            lines[name] = n + 1
        }
        return (out, lines, twice)
    }

    /// The quote that ends a value: in double quotes a backslash escapes the next character, so
    /// `"say \"hi\""` ends at the last quote; single quotes are literal.
    static func closingQuote(_ q: Character, in s: Substring) -> Substring.Index? {
        var escaped = false
        for i in s.indices {
            if escaped { escaped = false; continue }
            if q == "\"" && s[i] == "\\" { escaped = true; continue }
            if s[i] == q { return i }
        }
        return nil
    }

    /// `\n`, `\t`, `\"` and `\\` inside double quotes.
    static func unescape(_ s: Substring) -> String {
        var out = ""
        var escaped = false
        for c in s {
            if escaped {
                switch c {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(c)
                }
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Where ` #` (or a tab and `#`) starts a trailing comment in a bare value.
    static func commentStart(_ s: Substring) -> Substring.Index? {
        var prev: Character = "x"
        for i in s.indices {
            if s[i] == "#" && (prev == " " || prev == "\t") { return i }
            prev = s[i]
        }
        return nil
    }

    public static func load(path: String) throws -> [String: String] {
        try read(path: path).values
    }

    /// Who may have written a file, and so what it may decide.
    public enum Authority: Sendable {
        /// laju-backup's own settings (the system file, a profile, `--env-file`): it may point
        /// this run at any database, store, path or command, so only root or the invoking user
        /// may own it, and nobody else may write it (as sshd's StrictModes treats
        /// `authorized_keys`).
        case settings
        /// The application's `.env`, owned by the application's user: read for the names the Laju
        /// scripts define only (`Environment.applicationNames`); nobody but its owner may write it.
        case application
    }

    /// `read(path:)` as a settings layer.
    public static func layer(path: String, label: String? = nil, authority: Authority = .settings) throws -> (
        layer: Environment.Layer, warnings: [String]
    ) {
        let r = try read(path: path, authority: authority)
        return (Environment.Layer(source: label ?? path, file: path, values: r.values, lines: r.lines), r.warnings)
    }

    /// Settings whose values are secrets: a file holding one must not be readable by others.
    public static let secretNames = [
        "BACKUP_ENCRYPTION_KEY", "WASABI_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"
    ]

    /// Reads and parses `path` (a regular file, opened without blocking, at most 1 MiB) after
    /// checking its owner and mode for `authority`; `warnings` says when the file holds a secret
    /// and other users can read it.
    public static func read(path: String, authority: Authority = .settings) throws -> (
        values: [String: String], lines: [String: Int], warnings: [String]
    ) {
        let (bytes, st): ([UInt8], stat)
        do {
            (bytes, st) = try readRegularFile(path, limit: 1 << 20)
        } catch {
            throw LajuError(.usage, "cannot read env file \(path): \(error.reason)")
        }
        try checkOwner(path, st, authority: authority)
        let (values, lines, twice) = try parseWithLines(String(decoding: bytes, as: UTF8.self), source: path)
        try refuseTwice(twice, lines: lines, path: path, authority: authority)
        var warnings: [String] = []
        let secrets = secretNames.filter { values[$0].map { !$0.isEmpty } ?? false }
        if st.st_mode & 0o004 != 0, !secrets.isEmpty {
            warnings.append(
                "\(path) holds \(secrets.joined(separator: ", ")) and is readable by every user on this host; run: chmod o-r \(path)"
            )
        }
        return (values, lines, warnings)
    }

    /// A name set twice in one file: the last setting wins, which silently undoes the first (an
    /// appended second key, a pasted block). Refused for every name of our own files, and for the
    /// names laju-backup reads from an application's `.env`.
    static func refuseTwice(_ twice: [String: Int], lines: [String: Int], path: String, authority: Authority) throws {
        let names = twice.keys.filter {
            authority == .settings || Environment.applicationNames.contains($0)
        }.sorted()
        guard let name = names.first, let first = twice[name], let last = lines[name] else { return }
        throw LajuError(
            .usage,
            "\(path) sets \(name) more than once (lines \(first) and \(last)); the last would silently win",
            hint: "keep one \(name) line in \(path)")
    }

    /// Refuses a settings file that someone other than root or this user owns, or that others may
    /// write; an application's `.env` that every user may write.
    static func checkOwner(_ path: String, _ st: stat, authority: Authority) throws {
        let me = geteuid()
        let mode = String(st.st_mode & 0o7777, radix: 8)
        switch authority {
        case .settings:
            guard st.st_uid == 0 || st.st_uid == me else {
                throw LajuError(
                    .usage,
                    "settings file \(path) belongs to \(userName(st.st_uid)), not to root\(me == 0 ? "" : " or \(userName(me))"): refused, since it could point this run at any database and store",
                    hint: "if its content is yours to trust: chown \(me == 0 ? "root" : userName(me)) \(path)")
            }
            guard st.st_mode & 0o022 == 0 else {
                throw LajuError(
                    .usage,
                    "settings file \(path) is writable by \(st.st_mode & 0o002 != 0 ? "every user" : "its group") (mode \(mode)): refused, since whoever can write it could point this run at any database and store",
                    hint: "chmod go-w \(path)")
            }
        case .application:
            guard st.st_mode & 0o002 == 0 else {
                throw LajuError(
                    .usage,
                    "the application's settings file \(path) is writable by every user (mode \(mode)): refused, since any user could set the key and the bucket",
                    hint: "chmod o-w \(path)")
            }
        }
    }
}
