/// The Prometheus node_exporter textfile (`BACKUP_METRICS_FILE`): after each monitored run, the
/// series of that command and database are replaced, the others kept, and the file is written
/// to a temp name and renamed, so the exporter never reads half a file. A failed run updates
/// `last_exit_code` and keeps the previous `last_success_timestamp_seconds`.
///
/// Names are a stable contract (laju-backup(1), METRICS): series are added, never renamed.
struct MetricsFile {
    let path: String

    static let metrics: [(name: String, help: String)] = [
        ("laju_backup_last_success_timestamp_seconds", "Unix time of the last successful run of the command."),
        ("laju_backup_last_run_timestamp_seconds", "Unix time of the last run of the command, successful or not."),
        ("laju_backup_last_exit_code", "Exit status of the last run (0 ok; see laju-backup(1), EXIT STATUS)."),
        ("laju_backup_last_duration_seconds", "Duration of the last run."),
        ("laju_backup_last_stored_bytes", "Bytes stored by the last successful backup (the encrypted object)."),
        (
            "laju_backup_last_source_bytes",
            "Bytes of the database of the last successful run (backup: the snapshot; verify: the restored file)."
        )
    ]

    struct Sample: Equatable {
        var name: String
        var labels: [(String, String)]
        var value: Double

        static func == (a: Sample, b: Sample) -> Bool {
            a.name == b.name && a.value == b.value
                && a.labels.map { $0.0 + "=" + $0.1 } == b.labels.map { $0.0 + "=" + $0.1 }
        }

        func label(_ k: String) -> String? { labels.first { $0.0 == k }?.1 }
    }

    /// Reads the samples of an existing file (ours; lines it cannot read are dropped).
    func read() -> [Sample] {
        guard let data = try? readRegularFile(path, limit: 4 << 20).bytes else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { MetricsFile.parse(String($0)) }
    }

    /// `name{a="x",b="y"} value` with the text format's escapes (`\\`, `\"`, `\n`).
    static func parse(_ line: String) -> Sample? {
        guard !line.hasPrefix("#"), let brace = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"),
            brace < close
        else { return nil }
        let name = String(line[..<brace])
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }),
            let value = Double(line[line.index(after: close)...].trimmingCharacters(in: " "))
        else { return nil }
        var labels: [(String, String)] = []
        var s = line[line.index(after: brace)..<close][...]
        while !s.isEmpty {
            guard let eq = s.firstIndex(of: "="), s[s.index(after: eq)...].first == "\"" else { return nil }
            let key = String(s[..<eq])
            var v = ""
            var i = s.index(eq, offsetBy: 2)
            var closed = false
            while i < s.endIndex {
                let c = s[i]
                if c == "\\" {
                    i = s.index(after: i)
                    guard i < s.endIndex else { return nil }
                    v.append(s[i] == "n" ? "\n" : s[i])
                } else if c == "\"" {
                    closed = true
                    break
                } else {
                    v.append(c)
                }
                i = s.index(after: i)
            }
            guard closed else { return nil }
            labels.append((key, v))
            s = s[s.index(after: i)...]
            if s.first == "," { s = s.dropFirst() }
        }
        return Sample(name: name, labels: labels, value: value)
    }

    static func escape(_ v: String) -> String {
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func render(_ samples: [Sample]) -> String {
        var text = ""
        for m in metrics {
            let these = samples.filter { $0.name == m.name }
            guard !these.isEmpty else { continue }
            text += "# HELP \(m.name) \(m.help)\n# TYPE \(m.name) gauge\n"
            for s in these.sorted(by: {
                $0.labels.map(\.1).joined(separator: "\u{0}") < $1.labels.map(\.1).joined(separator: "\u{0}")
            }) {
                let labels = s.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
                text += "\(s.name){\(labels)} \(format(s.value))\n"
            }
        }
        return text
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// Replaces the series of `r.command` and `r.database` and writes the file atomically.
    func update(with r: RunReport) throws {
        let old = read()
        let labels = [("command", r.command), ("database", r.database), ("profile", r.profile)]
        func mine(_ s: Sample) -> Bool { s.label("command") == r.command && s.label("database") == r.database }
        let known = Set(MetricsFile.metrics.map(\.name))
        var samples = old.filter { !mine($0) && known.contains($0.name) }
        let previousSuccess = old.first { mine($0) && $0.name == "laju_backup_last_success_timestamp_seconds" }?.value
        let end = (r.startedAt + r.seconds).rounded()
        func add(_ name: String, _ value: Double?) {
            if let value { samples.append(Sample(name: name, labels: labels, value: value)) }
        }
        add("laju_backup_last_success_timestamp_seconds", r.succeeded ? end : previousSuccess)
        add("laju_backup_last_run_timestamp_seconds", end)
        add("laju_backup_last_exit_code", Double(r.exitStatus))
        add("laju_backup_last_duration_seconds", (r.seconds * 1000).rounded() / 1000)
        let previous = { (n: String) in old.first { mine($0) && $0.name == n }?.value }
        add(
            "laju_backup_last_stored_bytes",
            r.succeeded ? r.storedBytes.map(Double.init) : previous("laju_backup_last_stored_bytes"))
        add(
            "laju_backup_last_source_bytes",
            r.succeeded ? r.sourceBytes.map(Double.init) : previous("laju_backup_last_source_bytes"))
        try write(MetricsFile.render(samples))
    }

    func write(_ text: String) throws {
        let dir = path.deletingLastPathComponent
        let tmp = "\(dir)/\(try TempName.make("metrics"))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LajuError(.local, "cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var off = 0
        var ok = true
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n < 0 { if errno == EINTR { continue }; ok = false; break }
            off += n
        }
        ok = ok && fchmod(fd, 0o644) == 0 && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw LajuError(.local, "cannot write \(path): \(String(cString: strerror(e)))")
        }
    }
}
