/// Runs `work` on a POSIX thread of its own from the start; `wait` joins it (once) and returns
/// its result. For work that overlaps with the caller's, such as the snapshot check with sealing.
/// `@unchecked Sendable` because `thread` is written in `init` and read only by the creating
/// thread in `wait`; the result crosses threads through `Box`, ordered by pthread_join.
final class BackgroundTask<T: Sendable>: @unchecked Sendable {
    /// Holds the outcome: written by the thread before it ends and read only after
    /// pthread_join, so no lock is needed.
    final class Box: @unchecked Sendable {
        var outcome: Result<T, Error>?
    }
    private let box = Box()
    private var thread: pthread_t?

    init(_ work: @escaping @Sendable () throws -> T) {
        let box = self.box
        let body: @Sendable () -> Void = { box.outcome = Result { try work() } }
        thread = startThread(body)
        // No thread: do the work here, so that it still gets done.
        if thread == nil { body() }
    }

    func wait() throws -> T {
        if let t = thread {
            pthread_join(t, nil)
            thread = nil
        }
        return try box.outcome!.get()
    }
}

/// Starts `body` on a new POSIX thread; nil when none could be made.
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
    final class Holder { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    var tid = pthread_t()
    let arg = Unmanaged.passRetained(Holder(body)).toOpaque()
    let rc = pthread_create(
        &tid, nil,
        { raw in
            Unmanaged<Holder>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, arg)
    guard rc == 0 else {
        Unmanaged<Holder>.fromOpaque(arg).release()
        return nil
    }
    return tid
}

/// Runs `body` on `count` POSIX threads and waits for all of them. Plain pthreads rather than
/// Dispatch: the workers block in network I/O, and a fixed thread count is what we want.
func runThreads(_ count: Int, _ body: @escaping @Sendable () -> Void) {
    final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
    var threads: [pthread_t] = []
    for _ in 0..<count {
        var tid = pthread_t()
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(
            &tid, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, arg)
        if rc == 0 {
            threads.append(tid)
        } else {
            // No thread: run the work here instead, so the parts still get uploaded.
            Unmanaged<Box>.fromOpaque(arg).release()
            body()
        }
    }
    for t in threads { pthread_join(t, nil) }
}
