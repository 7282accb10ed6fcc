/// Paths that hold plaintext or partial results while a job runs (workspaces, restore
/// candidates). Normal exits remove them through `defer`; the CLI's signal handler calls
/// `removeAll()` so that SIGINT/SIGTERM/SIGHUP leave nothing behind either.
public final class CleanupRegistry: @unchecked Sendable {
    public static let shared = CleanupRegistry()
    private var mutex = pthread_mutex_t()
    private var paths: Set<String> = []

    private init() { pthread_mutex_init(&mutex, nil) }

    public func add(_ path: String) { locked { _ = paths.insert(path) } }
    public func remove(_ path: String) { locked { _ = paths.remove(path) } }

    /// Deletes every registered path (files or directory trees). Safe to call from any thread.
    public func removeAll() {
        let all = locked { () -> Set<String> in defer { paths = [] }; return paths }
        for p in all { try? FileManager.default.removeItem(atPath: p) }
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
