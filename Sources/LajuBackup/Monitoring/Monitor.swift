import Synchronization

/// Makes a command's outcome known outside the process, whatever starts it (cron or a person):
/// health pings (`BACKUP_PING_URL`, per command `BACKUP_PING_URL_CLEAN` / `_VERIFY`), the
/// webhook (`BACKUP_NOTIFY_URL`, on failure, or always with `BACKUP_NOTIFY_ON=always`) and the
/// Prometheus textfile (`BACKUP_METRICS_FILE`). Nothing here can change the command's own result
/// or exit status: every problem becomes one warning line.
///
/// `@unchecked Sendable` because a signal handler may report the run as failed while the main
/// thread is still in it: the report and whether it was sent live in a `Mutex`, so exactly one
/// outcome is reported; the event sink writes whole lines with write(2).
public final class Monitor: @unchecked Sendable {
    let command: String
    let pingURL: String?
    let notifyURL: String?
    let notifyAlways: Bool
    let metricsPath: String?
    let http: NotifyHTTP
    let events: JobEventSink
    private let state: Mutex<(report: RunReport, finished: Bool)>
    public var report: RunReport { state.withLock { $0.report } }

    /// Default folder of node_exporter's textfile collector on Debian.
    public static let defaultMetricsDirectory = "/var/lib/prometheus/node-exporter"

    public init(settings: Settings, command: String, events: @escaping JobEventSink) {
        self.command = command
        self.events = events
        let env = settings.environment
        let own = [
            "clean": "BACKUP_PING_URL_CLEAN", "verify": "BACKUP_PING_URL_VERIFY",
            "backup-incremental": "BACKUP_PING_URL_INCREMENTAL"
        ][command]
        // Points every 15 minutes must not ping the nightly backup's check: their successes would
        // hide a failed nightly run. They ping only a URL of their own.
        pingURL =
            command == "backup-incremental" || command == "verify-points"
            ? own.flatMap { env[$0] } : own.flatMap { env[$0] } ?? env["BACKUP_PING_URL"]
        notifyURL = env["BACKUP_NOTIFY_URL"]
        var warnings: [String] = []
        switch env["BACKUP_NOTIFY_ON"]?.lowercased() {
        case nil, "failure": notifyAlways = false
        case "always": notifyAlways = true
        case let other?:
            warnings.append(
                "BACKUP_NOTIFY_ON=\(Display.safe(other)) is not understood (failure or always); notifying on failure only"
            )
            notifyAlways = false
        }
        var http = NotifyHTTP()
        if let t = env["BACKUP_NOTIFY_TIMEOUT"] {
            if let v = Int32(t), (1...300).contains(v) {
                http.timeout = v
            } else {
                warnings.append(
                    "BACKUP_NOTIFY_TIMEOUT=\(Display.safe(t)) is not a number of seconds in 1...300; using 10")
            }
        }
        self.http = http
        let profile = Monitor.profileName(settings)
        state = Mutex(
            (
                RunReport(
                    command: command, profile: profile, database: settings.databasePath,
                    startedAt: Double(LocalTime.nowMilliseconds()) / 1000), false
            ))
        switch env["BACKUP_METRICS_FILE"] {
        case "off"?, "none"?: metricsPath = nil
        case let p?: metricsPath = p
        case nil:
            var st = stat()
            let dir = Monitor.defaultMetricsDirectory
            metricsPath =
                stat(dir, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
                ? "\(dir)/laju-backup-\(Monitor.fileSafe(profile)).prom" : nil
        }
        for w in warnings { events(.warning(w)) }
    }

    /// `BACKUP_PROFILE`, else the database's file name.
    static func profileName(_ settings: Settings) -> String {
        settings.environment["BACKUP_PROFILE"] ?? settings.databasePath.lastPathComponentOf
    }

    static func fileSafe(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    /// The `/start` ping.
    public func start() {
        state.withLock { $0.report.startedAt = Double(LocalTime.nowMilliseconds()) / 1000 }
        if let pingURL, let w = HealthPing(url: pingURL, http: http).start() { events(.warning(w)) }
    }

    /// Success: what the run produced.
    public func succeeded(key: String?, storedBytes: Int64?, sourceBytes: Int64?) {
        finish { r in
            r.key = key
            r.storedBytes = storedBytes
            r.sourceBytes = sourceBytes
            r.exitStatus = 0
        }
    }

    /// Failure: the error line and the exit status the process will end with.
    public func failed(exitStatus: Int32, error: String) {
        finish { r in
            r.exitStatus = exitStatus
            r.error = Display.safe(error)
        }
    }

    /// Reports the outcome once; later calls (a signal after the end, say) do nothing.
    func finish(_ update: (inout RunReport) -> Void) {
        let report: RunReport? = state.withLock { s in
            guard !s.finished else { return nil }
            s.finished = true
            update(&s.report)
            s.report.seconds = max(0, Double(LocalTime.nowMilliseconds()) / 1000 - s.report.startedAt)
            return s.report
        }
        guard let report else { return }
        if let metricsPath {
            do { try MetricsFile(path: metricsPath).update(with: report) } catch {
                events(.warning("metrics file not written: \(error)"))
            }
        }
        if let pingURL, let w = HealthPing(url: pingURL, http: http).finish(report) { events(.warning(w)) }
        if let notifyURL, notifyAlways || !report.succeeded, let w = Webhook(url: notifyURL, http: http).send(report) {
            events(.warning(w))
        }
    }
}
