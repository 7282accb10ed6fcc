/// `restore --activate`: restore and verify as usual, then put the backup's content into the live
/// database in place (`LiveReplacement`), after a safety copy of what it replaces. The
/// application may keep running; its writes wait for the switch like for any other writer.
public struct ActivateJob {
    /// What is about to happen, for the confirmation prompt.
    public struct Plan: Sendable {
        public var key: String
        public var source: String
        public var live: String
        public var uploadedAt: Int64?
        public var restoredBytes: Int64
        public var schemaDifferences: [String]
    }

    public struct Outcome: Codable, Sendable {
        public var key: String
        /// Where the backup was found (see `FullRestoreJob.Outcome.source`).
        public var source: String
        public var live: String
        /// The state the live database had just before the switch: a plain SQLite file.
        public var safetyCopy: String
        public var pages: Int64
        public var pageSize: Int64
        public var restoredBytes: Int64
        public var uploadedAt: Int64?
        public var schemaDifferences: [String]
        /// `ok`: PRAGMA quick_check of the live database after the switch.
        public var quickCheck: String
        /// Catalog rows recorded again (the catalog is in the database, and went back in time).
        public var catalogRowsAdded: Int?
        /// The command that puts the previous state back.
        public var undo: String
        public var totalSeconds: Double
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var source: FullRestoreJob.Source
    /// A restore point to activate instead of `source` (`restore --activate --at`).
    public var at: PointRestoreJob.At?
    public var check: RestoreCheck
    public var lockWait: Double
    public var events: JobEventSink

    public init(
        settings: Settings, repository: Repository? = nil, source: FullRestoreJob.Source, at: PointRestoreJob.At? = nil,
        check: RestoreCheck = .auto,
        lockWait: Double = 0, events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.source = source
        self.at = at
        self.check = check
        self.lockWait = lockWait
        self.events = events
    }

    /// `confirm` is asked once the backup is verified and nothing has been changed yet; false
    /// cancels.
    public func run(confirm: (Plan) throws -> Bool) throws -> Outcome {
        let started = monotonicSeconds()
        let live = settings.databasePath
        do { try Snapshot.checkSource(live) } catch let e as LajuError {
            throw LajuError(
                .source, "\(e.message): --activate replaces the content of an existing database",
                hint: "to bring back a lost database, `laju-backup restore --output \(live)` writes a new file")
        }
        let busy = try settings.busyTimeout()
        let safetyDir = try settings.safetyDirectory()
        let lock = try RunLock(directory: settings.lockDirectory, database: live, wait: lockWait)
        defer { withExtendedLifetime(lock) {} }

        // 1. The verified database, in a private workspace (or a plain SQLite file as given).
        let ws = try Workspace(base: settings.tempBase, events: events)
        defer { ws.remove() }
        var restored = try restore(into: ws)
        if let a = FileID(path: restored.path), let b = FileID(path: live), a == b {
            throw LajuError(
                .usage, "\(restored.path) is the live database \(live) itself; nothing to activate",
                hint: "name a backup, or a copy made before the change you want to undo")
        }

        restored.path = try keepJournalMode(of: live, for: restored.path, workspace: ws, busy: busy)
        restored.path = try keepIdentity(of: live, for: restored.path, workspace: ws, busy: busy)

        // 2. What changes, then the operator's word.
        let schema = try SchemaComparison.compare(live: live, restored: restored.path, busyTimeoutMilliseconds: busy)
        for d in schema.differences { events(.warning("schema differs: \(d)")) }
        let restoredBytes = fileSize(restored.path)
        let plan = Plan(
            key: restored.key, source: restored.from, live: live, uploadedAt: restored.uploadedAt,
            restoredBytes: restoredBytes, schemaDifferences: schema.differences)
        guard try confirm(plan) else {
            throw LajuError(.usage, "activation cancelled; the live database \(live) is unchanged")
        }

        // 3. The safety copy's file, then the switch.
        let (result, safety) = try switchLive(to: restored, safetyDirectory: safetyDir, busy: busy)

        // 4. The live database as the application now sees it.
        let undo = "laju-backup restore --activate --from-file \(Display.safe(safety)) --database \(Display.safe(live))"
        try checkLive(safety: safety, undo: undo, busy: busy)

        // 5. A catalog inside the database went back to the backup's time: record the newer
        // backups again, so that restore and clean see them.
        let added = recordNewerBackups(after: restored.key)
        return Outcome(
            key: restored.key, source: restored.from, live: live, safetyCopy: safety, pages: result.pages,
            pageSize: result.pageSize, restoredBytes: restoredBytes, uploadedAt: restored.uploadedAt,
            schemaDifferences: schema.differences, quickCheck: "ok", catalogRowsAdded: added, undo: undo,
            totalSeconds: monotonicSeconds() - started)
    }

    /// The database to put in place: where it is, what it was (a backup's key or a file name),
    /// where it came from, and its time.
    struct Restored {
        var path: String
        var key: String
        var from: String
        var uploadedAt: Int64?
    }

    /// A point or a full backup is rebuilt and checked exactly as `restore` does, into the
    /// workspace; a plain SQLite file is checked where it is.
    func restore(into ws: Workspace) throws -> Restored {
        let restored = ws.file("restored.db")
        let target = RestoreTarget.file(path: restored, directory: ws.path, force: false)
        if let at {
            let r = try PointRestoreJob(
                settings: settings, repository: repository, at: at, check: check, events: events
            ).run(target: target)
            return Restored(
                path: restored, key: r.key, from: "restore point \(r.point)", uploadedAt: PointTime.parse(r.time))
        }
        if case .file(let path, _, _) = source, Snapshot.isDatabase(absolutePath(path)) {
            let file = absolutePath(path)
            try checkPlainFile(file)
            return Restored(path: file, key: file.lastPathComponentOf, from: "file \(file)")
        }
        let r = try FullRestoreJob(
            settings: settings, repository: repository, source: source, check: check, events: events
        ).run(target: target)
        return Restored(path: restored, key: r.key, from: r.source, uploadedAt: r.uploadedAt)
    }

    /// The live database keeps its journal mode. SQLite's backup API copies the restored file's
    /// header as it is, and the header says whether a database is in WAL mode: a backup taken in
    /// WAL mode would switch a rollback-journal database to WAL behind the application's back. (A
    /// WAL database stays WAL: the backup API sees to that itself.) The restored file is set to
    /// rollback mode first, in the workspace; a plain file given with `--from-file` is copied
    /// there for that, never changed where it is. Returns the file to put in place.
    func keepJournalMode(of live: String, for restored: String, workspace ws: Workspace, busy: Int32) throws -> String {
        let liveMode = try Database(path: live, mode: [.readOnly], busyTimeoutMilliseconds: busy)
            .query("PRAGMA journal_mode").first?.values.first?.string?.lowercased()
        guard liveMode != "wal", try Snapshot.isWAL(restored) else { return restored }
        let file = try privateCopy(of: restored, workspace: ws)
        _ = try Database(path: file, mode: [.readWrite]).query("PRAGMA journal_mode=DELETE")
        guard try !Snapshot.isWAL(file) else {
            throw LajuError(.internal, "could not take \(file) out of WAL mode before activating it")
        }
        events(
            .step(name: "journal_mode", summary: "the live database is in \(liveMode ?? "?") mode: kept", seconds: 0))
        return file
    }

    /// The live database keeps its id (`DatabaseID`): content made before ids were recorded gets
    /// the live one, so that its backups and points stay under one identity; content that records
    /// another id is another database's, and is not put live in this one's place.
    func keepIdentity(of live: String, for restored: String, workspace ws: Workspace, busy: Int32) throws -> String {
        guard let liveID = try DatabaseID.read(path: live, busyTimeoutMilliseconds: busy) else { return restored }
        let restoredID = try DatabaseID.read(path: restored, immutable: true)
        if restoredID == liveID { return restored }
        if let restoredID {
            throw LajuError(
                .usage,
                "the backup is of another database (id \(restoredID)); the live database \(live) has id \(liveID): not activated",
                hint:
                    "restore it with --output to look at it; if this database is to become that one, delete the row of laju_backup_identity in that copy and activate it with --from-file"
            )
        }
        let file = try privateCopy(of: restored, workspace: ws)
        try DatabaseID.record(liveID, path: file)
        events(
            .step(name: "identity", summary: "the restored content keeps the live database's id \(liveID)", seconds: 0))
        return file
    }

    /// The restored file, or for a plain file given with `--from-file` a copy of it in the
    /// workspace: what activation changes is always its own, never the operator's file.
    func privateCopy(of restored: String, workspace ws: Workspace) throws -> String {
        if restored.hasPrefix(ws.path + "/") { return restored }
        let file = ws.file("from-file.db")
        try copyFile(restored, to: file)
        return file
    }

    /// A plain SQLite file given with `--from-file`: not in use, and sound. It records no proof of
    /// an earlier check, so `auto` means the full one.
    func checkPlainFile(_ file: String) throws {
        if FileID(path: file + "-wal") != nil {
            throw LajuError(
                .usage,
                "\(file) has a -wal file beside it: it may be in use, and its newest pages are not in the file itself",
                hint: "stop what uses it, or run `sqlite3 \(file) 'PRAGMA wal_checkpoint(TRUNCATE)'`, then try again")
        }
        let level: Database.Check = check == .quick ? .quick : .full
        let checkName = level == .full ? "integrity_check" : "quick_check"
        let (problems, seconds) = try timedStep(checkName, events: events) { _ in
            try Snapshot.problems(file, check: level)
        }
        if let problems {
            throw LajuError(
                .integrity, "\(file) fails PRAGMA \(checkName): \(problems)", hint: "choose another file or backup")
        }
        events(.step(name: checkName, summary: "plain SQLite file \(file): ok", seconds: seconds))
    }

    /// Creates the safety copy's file, then replaces the live database's content in place
    /// (`LiveReplacement`), which first copies the state it replaces into it. A safety file of a
    /// switch that did not happen is removed again.
    func switchLive(to restored: Restored, safetyDirectory: String, busy: Int32) throws -> (
        LiveReplacement.Result, String
    ) {
        let live = settings.databasePath
        let liveBytes = fileSize(live).addingSaturating(fileSize(live + "-wal"))
        let safety = try SafetyCopy.create(
            directory: safetyDirectory, databaseName: live.lastPathComponentOf, needed: liveBytes)
        CleanupRegistry.shared.add(safety)
        var switched = false
        defer {
            CleanupRegistry.shared.remove(safety)
            if !switched { unlink(safety) }
        }
        let (result, seconds) = try timedStep("activate", events: events) { _ in
            try LiveReplacement.run(
                source: restored.path, live: live, safetyCopy: safety, busyTimeoutMilliseconds: busy)
        }
        switched = true
        events(
            .step(
                name: "activate",
                summary:
                    "\(live): \(result.pages) pages of \(restored.key) in place; previous state (\(result.safetyPages) pages) in \(safety)",
                seconds: seconds))
        return (result, safety)
    }

    /// `PRAGMA quick_check` of the live database after the switch, through the application's locks.
    func checkLive(safety: String, undo: String, busy: Int32) throws {
        let live = settings.databasePath
        let problems: String?
        do {
            problems = try Database(path: live, mode: [.readOnly], busyTimeoutMilliseconds: busy).integrityProblems(
                .quick)
        } catch let e as CError {
            problems = e.message
        }
        if let problems {
            throw LajuError(
                .integrity,
                "after activation, PRAGMA quick_check of \(live) says: \(problems); the previous state is in \(safety)",
                hint: "undo with `\(undo)`")
        }
        events(.step(name: "quick_check", summary: "\(live) ok", seconds: 0))
    }

    /// When the catalog is the database itself, it now lists only the backups made before the
    /// activated one: the newer ones are recorded again (`catalog sync`). The number recorded, or
    /// nil when the catalog is a file of its own (or recording failed, with a warning).
    func recordNewerBackups(after key: String) -> Int? {
        let live = settings.databasePath
        guard canonicalPath(settings.catalogPath) == canonicalPath(live) else { return nil }
        do {
            return try CatalogSyncJob(settings: settings, repository: repository, events: events).run().adopted.count
        } catch {
            events(
                .warning(
                    "the catalog in \(live) now lists only backups made before \(Display.safe(key)); recording the newer ones failed (\(error)): run `laju-backup catalog sync`"
                ))
            return nil
        }
    }
}
