import LajuBackup

/// How results reach people and cron logs: one timestamped line per step on stderr, a live
/// progress line when stderr is a terminal, and JSON on stdout with --json.
final class Output {
    let json: Bool
    let quiet: Bool
    let isTerminal = isatty(2) == 1
    private var progressShown = false

    init(json: Bool, quiet: Bool) {
        self.json = json
        self.quiet = quiet
    }

    static func writeError(_ text: String) {
        var t = text
        if !t.hasSuffix("\n") { t += "\n" }
        writeStderr(t)
    }

    /// write(2) to fd 2: unbuffered, so log lines and a dying process never lose or interleave
    /// half-lines, and no shared C `FILE *` (not concurrency-safe in Swift 6) is touched.
    static func writeStderr(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// One log line. `text` may hold keys, S3 messages and SQLite findings from outside: control
    /// characters (escape sequences, line breaks) are shown escaped, so a line stays one line and
    /// nothing reaches the terminal as a command.
    static func line(_ level: String?, _ text: String) -> String {
        let stamp = LocalTime.logStamp(epochSeconds: Double(LocalTime.nowMilliseconds()) / 1000)
        return "\(stamp) laju-backup[\(getpid())]: \(level.map { "\($0): " } ?? "")\(Display.safe(text))\n"
    }

    /// The one line every failure ends with.
    static func failure(_ error: LajuError) {
        writeError(line("error", error.description))
    }

    func log(_ text: String) {
        guard !quiet else { return }
        clearProgress()
        Output.writeStderr(Output.line(nil, text))
    }

    func warn(_ text: String) {
        clearProgress()
        Output.writeStderr(Output.line("warning", text))
    }

    func handle(_ event: JobEvent) {
        switch event {
        case .step(let name, let summary, let seconds):
            log(seconds > 0 ? "\(name): \(summary) in \(Human.seconds(seconds))" : "\(name): \(summary)")
        case .warning(let text):
            warn(text)
        case .progress(let p):
            guard isTerminal, !quiet else { return }
            var s = "\r\u{1B}[K  \(p.step) \(Human.bytes(p.done))"
            if p.total > 0 { s += " / \(Human.bytes(p.total)) (\(Int(p.fraction * 100))%)" }
            s += "  \(Human.bytes(Int64(p.bytesPerSecond)))/s"
            if let left = p.secondsLeft { s += "  ETA \(Int(left.rounded())) s" }
            Output.writeStderr(s)
            progressShown = true
        }
    }

    var sink: JobEventSink { { [self] event in self.handle(event) } }

    private func clearProgress() {
        if progressShown {
            Output.writeStderr("\r\u{1B}[K")
            progressShown = false
        }
    }

    /// Prints `value` as JSON on stdout, in the one contract every command follows (laju-backup(1),
    /// JSON OUTPUT): an object, snake_case keys, `"version": 1`; fields are added in later versions,
    /// never renamed or removed, and readers ignore fields they do not know.
    func printJSON<T: Encodable>(_ value: T) {
        Output.printJSONObject(value)
    }

    static let jsonVersion = 1

    static func printJSONObject<T: Encodable>(_ value: T) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        enc.keyEncodingStrategy = .convertToSnakeCase
        if let data = try? enc.encode(Versioned(value: value)) {
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// With --json a failure is a JSON object on stdout too (the error line still goes to stderr).
    static func printJSONError(_ error: LajuError) {
        printJSONObject(
            ErrorObject(
                error: .init(
                    kind: "\(error.kind)", exitStatus: error.kind.exitCode,
                    message: error.message, hint: error.hint)))
    }

    struct ErrorObject: Encodable {
        struct Detail: Encodable {
            var kind: String
            var exitStatus: Int32
            var message: String
            var hint: String?
        }
        var error: Detail
    }

    /// `value`'s own fields plus `version`, at the same level.
    struct Versioned<T: Encodable>: Encodable {
        let value: T
        enum Key: String, CodingKey { case version }
        func encode(to encoder: Encoder) throws {
            try value.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(Output.jsonVersion, forKey: .version)
        }
    }
}
