/// Sends monitoring signals over HTTP: short, bounded in time, and never able to change the
/// result of the command that sends them. Each signal gets `timeout` seconds in all
/// (`BACKUP_NOTIFY_TIMEOUT`, default 10), retries included: up to `attempts` tries, a second
/// apart, when the connection is refused or reset or the receiver answers 5xx; a receiver that
/// does not answer in time is not retried. What still fails comes back as one warning line that
/// names the receiver's host, never its full URL (a ping URL or a webhook URL is a credential).
struct NotifyHTTP {
    var timeout: Int32 = 10
    var attempts = 3

    /// nil when delivered, else a warning line.
    func send(method: String, url: String, body: [UInt8], contentType: String?, what: String) -> String? {
        guard let host = NotifyHTTP.host(of: url) else {
            return "\(what): not an http(s) URL; nothing sent"
        }
        var last = ""
        let deadline = monotonicSeconds() + Double(timeout)
        for attempt in 1...attempts {
            let left = Int32((deadline - monotonicSeconds()).rounded(.down))
            guard left >= 1 else { break }
            var headers: [(String, String)] = []
            if let contentType { headers.append(("Content-Type", contentType)) }
            let request = HTTPRequest(
                method: method, url: url, headers: headers,
                body: body.isEmpty ? .none : .bytes(body), connectTimeout: left,
                stallTimeout: left, responseBufferCap: 4096, totalTimeout: left)
            let r: HTTPResponse
            do { r = try HTTPClient().perform(request) } catch { return "\(what) to \(host) failed: \(error)" }
            if let failure = r.failure {
                last = "\(what) to \(host) failed: \(failure.message)"
                // A receiver that does not answer in time gets no second chance: the budget is spent.
                if failure.libraryCode == 28 { return last }
            } else if (200...299).contains(r.status) {
                return nil
            } else if r.status < 500 {
                return "\(what) to \(host) was refused: HTTP \(r.status)"
            } else {
                last = "\(what) to \(host) failed: HTTP \(r.status)"
            }
            if attempt < attempts && monotonicSeconds() + 1 < deadline { usleep(1_000_000) }
        }
        return last
    }

    /// `scheme://host[:port]` of an http(s) URL, or nil for anything else.
    static func host(of url: String) -> String? {
        let lower = url.lowercased()
        guard lower.hasPrefix("https://") || lower.hasPrefix("http://"),
            !url.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F })
        else { return nil }
        let rest = url[url.index(url.startIndex, offsetBy: lower.hasPrefix("https://") ? 8 : 7)...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty else { return nil }
        // user:password@host: never shown.
        let hostPart = authority.split(separator: "@").last.map(String.init) ?? String(authority)
        return (lower.hasPrefix("https://") ? "https://" : "http://") + hostPart
    }
}

/// Health pings, the Healthchecks.io protocol (hc-ping.com and self-hosted Healthchecks):
/// `<url>/start` when the command begins, `<url>` on success, `<url>/fail` on failure, each a
/// POST whose body is the run's one-line summary. Uptime Kuma push monitors (`.../api/push/<token>`)
/// are driven in their own form: `?status=up|down&msg=...&ping=<ms>`, no start signal.
struct HealthPing {
    let url: String
    var http = NotifyHTTP()

    var isUptimeKuma: Bool { url.contains("/api/push/") }

    func start() -> String? {
        guard !isUptimeKuma else { return nil }
        return http.send(method: "POST", url: join("start"), body: [], contentType: nil, what: "start ping")
    }

    func finish(_ report: RunReport) -> String? {
        if isUptimeKuma {
            let base = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
            let msg = SigV4Encoding.uriEncode(String(report.text.prefix(200)), encodeSlash: true)
            let target =
                base + "?status=\(report.succeeded ? "up" : "down")&msg=\(msg)&ping=\(Int(report.seconds * 1000))"
            return http.send(method: "GET", url: target, body: [], contentType: nil, what: "ping")
        }
        let body = Array(
            (report.succeeded
                ? report.text : "exit status \(report.exitStatus): \(report.error ?? "failed")\n\(report.text)").utf8)
        return http.send(
            method: "POST", url: report.succeeded ? url : join("fail"), body: Array(body.prefix(10_000)),
            contentType: "text/plain; charset=utf-8", what: report.succeeded ? "success ping" : "failure ping")
    }

    func join(_ suffix: String) -> String {
        let parts = url.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var base = String(parts[0])
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/" + suffix + (parts.count > 1 ? "?" + parts[1] : "")
    }
}

/// The webhook (`BACKUP_NOTIFY_URL`): one JSON POST per run that fails (every run with
/// `BACKUP_NOTIFY_ON=always`). The payload is a stable contract (laju-backup(1), NOTIFICATIONS):
/// fields are added, never renamed. `text` (and `message`, for ntfy) is the human line that chat
/// webhooks show.
struct Webhook {
    let url: String
    var http = NotifyHTTP()

    struct Payload: Encodable {
        var version = 1
        var event: String
        var command: String
        var profile: String
        var database: String
        var host: String
        var key: String?
        var bytes: Int64?
        var sourceBytes: Int64?
        var seconds: Double
        var exitStatus: Int32
        var error: String?
        var text: String
        var message: String

        enum CodingKeys: String, CodingKey {
            case version, event, command, profile, database, host, key, bytes, seconds, error, text, message
            case sourceBytes = "source_bytes", exitStatus = "exit_status"
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(version, forKey: .version)
            try c.encode(event, forKey: .event)
            try c.encode(command, forKey: .command)
            try c.encode(profile, forKey: .profile)
            try c.encode(database, forKey: .database)
            try c.encode(host, forKey: .host)
            try c.encode(key, forKey: .key)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(sourceBytes, forKey: .sourceBytes)
            try c.encode(seconds, forKey: .seconds)
            try c.encode(exitStatus, forKey: .exitStatus)
            try c.encode(error, forKey: .error)
            try c.encode(text, forKey: .text)
            try c.encode(message, forKey: .message)
        }
    }

    static func payload(_ r: RunReport) -> Payload {
        Payload(
            event: r.succeeded ? "success" : "failure", command: r.command, profile: r.profile, database: r.database,
            host: r.host, key: r.key, bytes: r.storedBytes, sourceBytes: r.sourceBytes,
            seconds: (r.seconds * 1000).rounded() / 1000, exitStatus: r.exitStatus, error: r.error, text: r.text,
            message: r.text)
    }

    func send(_ report: RunReport) -> String? {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? enc.encode(Webhook.payload(report)) else { return "webhook: cannot encode the payload" }
        return http.send(method: "POST", url: url, body: Array(data), contentType: "application/json", what: "webhook")
    }
}
