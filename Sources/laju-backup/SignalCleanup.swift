import Dispatch
import Glibc
import LajuBackup

/// On SIGINT, SIGTERM or SIGHUP (Ctrl-C, a cron or systemd timeout, a closed terminal) remove the
/// run's temp files and partial restores, then exit with 128 + signal as shells expect.
/// Handled on a dispatch queue, not in signal context, so the cleanup may use ordinary code.
enum SignalCleanup {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                CleanupRegistry.shared.runAll(signal: sig)
                let name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP"
                Output.writeError(Output.line("error", "interrupted by \(name); temporary files removed"))
                _exit(128 + sig)
            }
            source.resume()
            sources.append(source)
        }
    }
}
