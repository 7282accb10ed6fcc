/// What a running job reports, as values: the CLI decides how to show them (log lines, a
/// progress bar on a terminal, JSON).
public enum JobEvent: Sendable {
    /// A step finished: a short name (`snapshot`, `seal`, `upload`...), a human summary, seconds.
    case step(name: String, summary: String, seconds: Double)
    /// Progress of a long step.
    case progress(JobProgress)
    /// Something the operator should know that does not stop the job.
    case warning(String)
}

/// Progress of a long step, as a value (in the manner of GRDB's `DatabaseBackupProgress`).
public struct JobProgress: Sendable {
    public let step: String
    public let done: Int64
    public let total: Int64
    /// Seconds since the step started.
    public let elapsed: Double

    public var fraction: Double { total > 0 ? min(1, Double(done) / Double(total)) : 0 }
    public var bytesPerSecond: Double { elapsed > 0 ? Double(done) / elapsed : 0 }
    public var secondsLeft: Double? {
        guard total > 0, done > 0, bytesPerSecond > 0 else { return nil }
        return Double(total - done) / bytesPerSecond
    }
}

public typealias JobEventSink = (JobEvent) -> Void

/// Runs `body`, reporting its progress (throttled to a few updates a second) and its duration.
func timedStep<T>(
    _ name: String, events: @escaping JobEventSink,
    _ body: (@escaping TransferProgress) throws -> T
) rethrows -> (T, Double) {
    let start = monotonicSeconds()
    var last = 0.0
    let result = try body { done, total in
        let now = monotonicSeconds()
        if now - last >= 0.25 || done == total {
            last = now
            events(.progress(JobProgress(step: name, done: done, total: total, elapsed: now - start)))
        }
        return true
    }
    return (result, monotonicSeconds() - start)
}

/// Progress callback for transfers: (bytes done, total bytes); return false to cancel.
public typealias TransferProgress = (Int64, Int64) -> Bool
