/// Reads dotenv-style files (`KEY=value`), as Laju apps keep their settings in `.env`.
///
/// Accepted: blank lines, `# comments`, an optional `export ` prefix, values in single quotes
/// (literal), double quotes (`\n`, `\"`, `\\` escapes) or bare (trimmed, ` #` starts a comment).
public enum EnvFile {
    public static func parse(_ text: String, source: String) throws -> [String: String] {
        try parseWithLines(text, source: source).values
    }

    /// The values, and the line each one was set on (the last one wins, as in a shell).
    public static func parseWithLines(_ text: String, source: String) throws -> (
        values: [String: String], lines: [String: Int]
    ) {
        var out: [String: String] = [:]
        var lines: [String: Int] = [:]
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
            lines[name] = n + 1
        }
        return (out, lines)
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

    /// `read(path:)` as a settings layer.
    public static func layer(path: String, label: String? = nil) throws -> (
        layer: Environment.Layer, warnings: [String]
    ) {
        let r = try read(path: path)
        return (Environment.Layer(source: label ?? path, file: path, values: r.values, lines: r.lines), r.warnings)
    }

    /// Settings whose values are secrets: a file holding one must not be readable by others.
    public static let secretNames = [
        "BACKUP_ENCRYPTION_KEY", "WASABI_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"
    ]

    /// Reads and parses `path`; `warnings` says when the file holds a secret and other users can
    /// read it.
    public static func read(path: String) throws -> (values: [String: String], lines: [String: Int], warnings: [String])
    {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            let reason = e == ENOENT ? "no such file" : e == EACCES ? "permission denied" : String(cString: strerror(e))
            throw LajuError(.usage, "cannot read env file \(path): \(reason)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LajuError(.usage, "cannot read env file \(path)") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            let what = (st.st_mode & S_IFMT) == S_IFDIR ? "it is a directory" : "it is not a regular file"
            throw LajuError(.usage, "cannot read env file \(path): \(what)")
        }
        guard st.st_size <= 1 << 20 else { throw LajuError(.usage, "env file \(path) is larger than 1 MiB") }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(fd, &buf, buf.count)
            if n < 0 {
                if errno == EINTR { continue };
                throw LajuError(.usage, "cannot read env file \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += buf[0..<n]
            if bytes.count > 1 << 20 { throw LajuError(.usage, "env file \(path) is larger than 1 MiB") }
        }
        let (values, lines) = try parseWithLines(String(decoding: bytes, as: UTF8.self), source: path)
        var warnings: [String] = []
        let secrets = secretNames.filter { values[$0].map { !$0.isEmpty } ?? false }
        if st.st_mode & 0o004 != 0, !secrets.isEmpty {
            warnings.append(
                "\(path) holds \(secrets.joined(separator: ", ")) and is readable by every user on this host; run: chmod o-r \(path)"
            )
        }
        return (values, lines, warnings)
    }
}
