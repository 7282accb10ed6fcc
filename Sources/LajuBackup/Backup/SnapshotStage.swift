/// The head every backup shares, full or incremental: the run lock, room for the snapshot and
/// what is made of it, a private workspace, the snapshot itself, and its check started on a
/// thread of its own so that sealing (or page hashing) runs beside it.
///
/// One place, so that the two kinds of backup cannot drift apart on the rules that keep a run
/// safe: one run per database, never a half-written snapshot in a shared folder, never a damaged
/// database stored.
final class SnapshotStage {
    let lock: RunLock
    let workspace: Workspace
    /// The snapshot file inside the workspace (removed once checked).
    let path: String
    let snapshot: Snapshot.Result
    let seconds: Double
    /// Wall-clock time (ms) just before the snapshot was taken: the time of what it holds.
    let time: Int64
    let check: Database.Check
    var checkName: String { check == .full ? "integrity_check" : "quick_check" }
    private let checking: BackgroundTask<(String?, Double)>
    private var checked = false

    /// Takes the lock, checks free space, takes the snapshot and starts its check.
    init(
        settings: Settings, database: String, check: Database.Check, busyTimeoutMilliseconds busy: Int32,
        lockWait: Double, events: @escaping JobEventSink
    ) throws {
        let base = settings.tempBase
        lock = try RunLock(directory: settings.lockDirectory, database: database, wait: lockWait)
        // A snapshot can be as large as the database plus its WAL; what is made of it (a sealed
        // object, a pack of incompressible pages) at most as large again, and both exist together
        // for a moment.
        let sourceBytes = fileSize(database).addingSaturating(fileSize(database + "-wal"))
        try Workspace.checkFreeSpace(
            in: base, needed: sourceBytes.multipliedSaturating(by: 2).addingSaturating(16 << 20))
        let ws = try Workspace(base: base, events: events)
        workspace = ws
        path = ws.file("snapshot.db")
        time = LocalTime.nowMilliseconds()
        let snapshotPath = path
        do {
            (snapshot, seconds) = try timedStep("snapshot", events: events) { _ in
                try Snapshot.take(source: database, destination: snapshotPath, busyTimeoutMilliseconds: busy)
            }
        } catch {
            ws.remove()
            throw error
        }
        events(
            .step(
                name: "snapshot",
                summary:
                    "\(database): \(Human.bytes(fileSize(path))), \(snapshot.pages) pages\(snapshot.attempts > 1 ? ", \(snapshot.attempts) attempts" : "")",
                seconds: seconds))
        self.check = check
        checking = BackgroundTask { () -> (String?, Double) in
            let started = monotonicSeconds()
            return (try Snapshot.problems(snapshotPath, check: check), monotonicSeconds() - started)
        }
    }

    /// Waits for the check and removes the snapshot; throws when the database is damaged, so
    /// that nothing made of it is stored. `what` names what a failure leaves untouched
    /// ("backups", "points").
    func requireSound(database: String, what: String, events: JobEventSink) throws {
        let (problems, checkSeconds) = try checking.wait()
        checked = true
        unlink(path)
        if let problems {
            throw LajuError(
                .source,
                "database \(database) is damaged: PRAGMA \(checkName) on its snapshot says: \(problems); nothing was stored",
                hint:
                    "the previous \(what) are untouched; repair the database (sqlite3 DB '.recover'), or restore the last good \(what.dropLast())"
            )
        }
        events(.step(name: checkName, summary: "snapshot ok", seconds: checkSeconds))
    }

    /// Ends the stage on every path: the check's thread is joined (it reads the snapshot) before
    /// the workspace goes; the lock goes with this object.
    func close() {
        if !checked { _ = try? checking.wait() }
        workspace.remove()
    }
}
