import Synchronization

/// What a run must undo if it is interrupted: paths that hold plaintext or partial results
/// (workspaces, restore candidates) and actions such as aborting a multipart upload whose parts
/// are billed until aborted. Normal exits undo them through `defer`; the CLI's signal handler calls
/// `runAll()` so that SIGINT/SIGTERM/SIGHUP leave nothing behind either.
public final class CleanupRegistry: Sendable {
    public static let shared = CleanupRegistry()

    /// A registered action; `remove(_:)` forgets it once its owner finished normally.
    public struct Token: Hashable, Sendable { let id: Int }

    private struct State {
        var paths: Set<String> = []
        var actions: [Int: @Sendable (Int32?) -> Void] = [:]
        var nextID = 0
    }
    private let state = Mutex(State())

    private init() {}

    public func add(_ path: String) { state.withLock { _ = $0.paths.insert(path) } }
    public func remove(_ path: String) { state.withLock { _ = $0.paths.remove(path) } }

    /// Registers `action` to run if the process is interrupted before `remove(token)`; it gets
    /// the signal's number.
    public func add(action: @escaping @Sendable (Int32?) -> Void) -> Token {
        state.withLock { s in
            s.nextID += 1
            s.actions[s.nextID] = action
            return Token(id: s.nextID)
        }
    }

    public func remove(_ token: Token) { state.withLock { _ = $0.actions.removeValue(forKey: token.id) } }

    /// Runs every registered action, then deletes every registered path (files or directory
    /// trees). Safe to call from any thread; each item runs at most once.
    public func runAll(signal: Int32? = nil) {
        let (paths, actions) = state.withLock { s in
            defer { s.paths = []; s.actions = [:] }
            return (s.paths, s.actions.sorted { $0.key < $1.key }.map(\.value))
        }
        for action in actions { action(signal) }
        for p in paths { try? FileManager.default.removeItem(atPath: p) }
    }
}
