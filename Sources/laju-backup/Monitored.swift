import LajuBackup

/// Runs a monitored command (backup, clean, verify): the start ping first, then the body, then
/// metrics, the success or failure ping and the webhook (`Monitor`), whatever the outcome; a
/// signal that ends the run is reported as a failure too. The body calls
/// `monitor.succeeded(...)` with what it produced; errors are reported and rethrown unchanged.
func monitored<T>(_ settings: Settings, _ command: String, _ out: Output, _ body: (Monitor) throws -> T) throws -> T {
    let monitor = Monitor(settings: settings, command: command, events: out.sink)
    monitor.start()
    let token = CleanupRegistry.shared.add(action: { signal in
        monitor.failed(exitStatus: 128 + (signal ?? 15), error: "interrupted by signal \(signal ?? 15)")
    })
    defer { CleanupRegistry.shared.remove(token) }
    do {
        return try body(monitor)
    } catch let e as LajuError {
        monitor.failed(exitStatus: e.kind.exitCode, error: e.description)
        throw e
    } catch {
        monitor.failed(exitStatus: LajuError.Kind.internal.exitCode, error: "\(error)")
        throw error
    }
}
