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
    public var source: FullRestoreJob.Source
    /// A restore point to activate instead of `source` (`restore --activate --at`).
    public var at: PointRestoreJob.At?
    public var check: FullRestoreJob.Check
    public var lockWait: Double
    public var events: JobEventSink

    public init(settings: Settings, source: FullRestoreJob.Source, at: PointRestoreJob.At? = nil, check: FullRestoreJob.Check = .auto,
                lockWait: Double = 0, events: @escaping JobEventSink) {
        self.settings = settings
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
            throw LajuError(.source, "\(e.message): --activate replaces the content of an existing database",
                            hint: "to bring back a lost database, `laju-backup restore --output \(live)` writes a new file")
        }
        let busy = try settings.busyTimeout()
        let safetyDir = try settings.safetyDirectory()
        let lock = try RunLock(directory: settings.lockDirectory, database: live, wait: lockWait)
        defer { withExtendedLifetime(lock) {} }

        // 1. The verified database, in a private workspace (or a plain SQLite file as given).
        let ws = try Workspace(base: settings.tempBase, events: events)
        defer { ws.remove() }
        let restored: String
        var key: String, from: String, uploadedAt: Int64?
        if let at {
            // A point is rebuilt and checked exactly as `restore --at` does, into the workspace.
            restored = ws.file("restored.db")
            let r = try PointRestoreJob(settings: settings, at: at, check: check, events: events)
                .run(target: .file(path: restored, directory: ws.path, force: false))
            (key, from, uploadedAt) = (r.key, "restore point \(r.point)", PointTime.parse(r.time))
        } else if case .file(let path, _, _) = source, Snapshot.isDatabase(absolutePath(path)) {
            restored = absolutePath(path)
            key = restored.lastPathComponentOf
            from = "file \(restored)"
            if FileIdentity(path: restored + "-wal") != nil {
                throw LajuError(.usage, "\(restored) has a -wal file beside it: it may be in use, and its newest pages are not in the file itself",
                                hint: "stop what uses it, or run `sqlite3 \(restored) 'PRAGMA wal_checkpoint(TRUNCATE)'`, then try again")
            }
            // A plain file records no proof of an earlier check: auto means the full one.
            let level: Database.Check = check == .quick ? .quick : .full
            let checkName = level == .full ? "integrity_check" : "quick_check"
            let (problems, seconds) = try timedStep(checkName, events: events) { _ in try Snapshot.problems(restored, check: level) }
            if let problems {
                throw LajuError(.integrity, "\(restored) fails PRAGMA \(checkName): \(problems)", hint: "choose another file or backup")
            }
            events(.step(name: checkName, summary: "plain SQLite file \(restored): ok", seconds: seconds))
        } else {
            restored = ws.file("restored.db")
            let job = FullRestoreJob(settings: settings, source: source, check: check, events: events)
            let r = try job.run(target: .file(path: restored, directory: ws.path, force: false))
            (key, from, uploadedAt) = (r.key, r.source, r.uploadedAt)
        }
        if let a = FileIdentity(path: restored), let b = FileIdentity(path: live), a == b {
            throw LajuError(.usage, "\(restored) is the live database \(live) itself; nothing to activate",
                            hint: "name a backup, or a copy made before the change you want to undo")
        }

        // 2. What changes, then the operator's word.
        let schema = try SchemaComparison.compare(live: live, restored: restored, busyTimeoutMilliseconds: busy)
        for d in schema.differences { events(.warning("schema differs: \(d)")) }
        let restoredBytes = fileSize(restored)
        let plan = Plan(key: key, source: from, live: live, uploadedAt: uploadedAt, restoredBytes: restoredBytes,
                        schemaDifferences: schema.differences)
        guard try confirm(plan) else {
            throw LajuError(.usage, "activation cancelled; the live database \(live) is unchanged")
        }

        // 3. The safety copy's file, then the switch.
        let liveBytes = fileSize(live).addingSaturating(fileSize(live + "-wal"))
        let safety = try SafetyCopy.create(directory: safetyDir, databaseName: live.lastPathComponentOf, needed: liveBytes)
        CleanupRegistry.shared.add(safety)
        var switched = false
        defer {
            CleanupRegistry.shared.remove(safety)
            if !switched { unlink(safety) }
        }
        let (result, seconds) = try timedStep("activate", events: events) { _ in
            try LiveReplacement.run(source: restored, live: live, safetyCopy: safety, busyTimeoutMilliseconds: busy)
        }
        switched = true
        events(.step(name: "activate", summary: "\(live): \(result.pages) pages of \(key) in place; previous state (\(result.safetyPages) pages) in \(safety)", seconds: seconds))

        // 4. The live database as the application now sees it.
        let undo = "laju-backup restore --activate --from-file \(Display.safe(safety)) --database \(Display.safe(live))"
        let problems: String?
        do {
            problems = try Database(path: live, mode: [.readOnly], busyTimeoutMilliseconds: busy).integrityProblems(.quick)
        } catch let e as CError {
            problems = e.message
        }
        if let problems {
            throw LajuError(.integrity, "after activation, PRAGMA quick_check of \(live) says: \(problems); the previous state is in \(safety)",
                            hint: "undo with `\(undo)`")
        }
        events(.step(name: "quick_check", summary: "\(live) ok", seconds: 0))

        // 5. A catalog inside the database went back to the backup's time: record the newer
        // backups again, so that restore and clean see them.
        var added: Int?
        if canonicalPath(settings.catalogPath) == canonicalPath(live) {
            do {
                added = try CatalogSyncJob(settings: settings, events: events).run().adopted.count
            } catch {
                events(.warning("the catalog in \(live) now lists only backups made before \(Display.safe(key)); recording the newer ones failed (\(error)): run `laju-backup catalog sync`"))
            }
        }
        return Outcome(key: key, source: from, live: live, safetyCopy: safety, pages: result.pages, pageSize: result.pageSize,
                       restoredBytes: restoredBytes, uploadedAt: uploadedAt, schemaDifferences: schema.differences,
                       quickCheck: "ok", catalogRowsAdded: added, undo: undo, totalSeconds: monotonicSeconds() - started)
    }
}
