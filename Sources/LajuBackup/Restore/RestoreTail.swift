/// How a restored database is checked (`--check`).
public enum RestoreCheck: String, Sendable, CaseIterable {
    /// The default: when the backup records that its snapshot passed `PRAGMA integrity_check` at
    /// backup time (a full backup's `integrity-mac`, a point's digest with check level 2) and the
    /// restored bytes are exactly those, the restored file is byte for byte a database that passed
    /// the full check: nothing more to run. Otherwise (backups of the original scripts, of older
    /// versions, or made with BACKUP_CHECK=quick) `PRAGMA integrity_check` runs, as with `full`.
    case auto
    /// `PRAGMA integrity_check` on the restored file, whatever the backup recorded.
    case full
    /// `PRAGMA quick_check` only (O(N): page structure, but not indexes against their rows).
    case quick
}

/// Where a restore puts what it rebuilt.
public enum RestoreTarget: Sendable {
    /// Keep the result at `path`, or when `path` is nil at
    /// `directory/restored-<YYYY-MM-DDTHH:mm of the backup's time>.db`.
    case file(path: String?, directory: String, force: Bool)
    /// Check only.
    case verifyOnly
}

/// The end every restore shares, full backup or point (and so `restore --activate`, which
/// restores into a private workspace first): the target's rules (`RestoreOutput`), room for the
/// restored file, a partial file that the cleanup registry removes if the run is interrupted, the
/// check, and the atomic rename into place with the owner of what it replaces.
///
/// One place, as `SnapshotStage` is the one head of every backup, so that the two kinds of
/// restore cannot drift apart on the rules that keep a restore safe: no partial file ever under
/// the requested name, nothing installed that no check vouches for, no live file replaced.
final class RestoreTail {
    let target: RestoreTarget
    /// The database and the catalog: never a target, under any spelling.
    let protected: [String]
    let liveDatabase: String
    let tempBase: String
    private(set) var output: RestoreOutput?
    /// Where the partial file goes (`prepare`), and the partial file itself (`partialFile`).
    private(set) var directory: String?
    private(set) var partial: String?
    private var workspace: Workspace?
    private var installed = false

    /// Every check of a named target that needs nothing from the backup: made before anything is
    /// downloaded.
    init(target: RestoreTarget, settings: Settings) throws {
        self.target = target
        liveDatabase = settings.databasePath
        protected = [settings.databasePath, settings.catalogPath]
        tempBase = settings.tempBase
        if case .file(let path, _, let force) = target, let path {
            output = try Self.checkedOutput(path: path, force: force, protected: protected)
        }
    }

    /// The default output, `restored-<YYYY-MM-DDTHH:mm of time>.db`.
    static func defaultFileName(time: Int64?) -> String {
        "restored-\(LocalTime.minuteStamp(epochMilliseconds: time ?? LocalTime.nowMilliseconds())).db"
    }

    /// Once the backup is chosen: the default name from its `time`, and room for `needed` bytes
    /// where the partial file will be: beside the target (same filesystem, so that the final
    /// rename is atomic), or in a private workspace (`scratch`, else one of its own) when only
    /// verifying.
    func prepare(time: Int64?, needed: Int64, scratch: String? = nil, events: JobEventSink) throws {
        switch target {
        case .file(_, let dir, let force):
            if output == nil {
                output = try Self.checkedOutput(
                    path: "\(dir)/\(Self.defaultFileName(time: time))", force: force,
                    protected: protected)
            }
            directory = output!.directory
        case .verifyOnly:
            if let scratch {
                directory = scratch
            } else {
                let ws = try Workspace(base: tempBase, events: events)
                workspace = ws
                directory = ws.path
            }
        }
        try Workspace.checkFreeSpace(in: directory!, needed: needed)
    }

    /// A fresh partial file's path (partial files of killed runs in that folder are removed
    /// first), registered for removal if the run is interrupted.
    func partialFile(events: JobEventSink) throws -> String {
        guard let directory else { throw LajuError(.internal, "restore target not prepared") }
        let path = try output?.partialPath(events: events) ?? "\(directory)/verify.db"
        CleanupRegistry.shared.add(path)
        partial = path
        return path
    }

    /// The check, skipped only when `proof` shows these are the very bytes that passed
    /// `integrity_check` at backup time and no level was asked for; then, for a file target, the
    /// atomic rename into place and the owner and mode of the file it replaces. Returns the
    /// check's name and duration, and what was done about ownership.
    func finish(
        check: RestoreCheck, proof: (name: String, summary: String)?, damagedHint: String,
        events: @escaping JobEventSink
    ) throws -> (check: String, seconds: Double, ownership: String?) {
        guard let partial else { throw LajuError(.internal, "restore finished before it began") }
        var checkName: String
        var checkSeconds = 0.0
        if check == .auto, let proof {
            checkName = proof.name
            events(.step(name: proof.name, summary: proof.summary, seconds: 0))
        } else {
            (checkName, checkSeconds) = try Self.checkRestored(
                partial, level: check == .quick ? .quick : .full,
                hint: damagedHint, events: events)
        }
        guard let output else { return (checkName, checkSeconds, nil) }
        let reference = output.ownershipReference(liveDatabase: liveDatabase)
        try output.install(partial: partial)
        installed = true
        let ownership = output.adoptOwnership(from: reference)
        if let ownership { events(.step(name: "ownership", summary: ownership, seconds: 0)) }
        return (checkName, checkSeconds, ownership)
    }

    /// Ends the tail on every path: a partial file that was not installed goes, with any side
    /// files SQLite made beside it, and so does the verify workspace.
    func close() {
        if let partial {
            CleanupRegistry.shared.remove(partial)
            if !installed { for p in [partial] + RestoreOutput.sideSuffixes.map({ partial + $0 }) { unlink(p) } }
        }
        workspace?.remove()
    }

    /// Runs `PRAGMA integrity_check` (or `quick_check`) on a restored file that is not in place
    /// yet; throws (exit 4) with its findings. Returns the check's name and duration.
    static func checkRestored(
        _ partial: String, level: Database.Check, hint: String,
        events: @escaping JobEventSink
    ) throws -> (String, Double) {
        let checkName = level == .full ? "integrity_check" : "quick_check"
        let (problems, seconds) = try timedStep(checkName, events: events) { _ -> String? in
            do {
                let db = try Database(path: partial, mode: [.readOnly, .immutable])
                return try db.integrityProblems(level)
            } catch let e as CError {
                return e.message
            }
        }
        if let problems {
            throw LajuError(.integrity, "restored database fails PRAGMA \(checkName): \(problems)", hint: hint)
        }
        events(.step(name: checkName, summary: "ok", seconds: seconds))
        return (checkName, seconds)
    }

    /// A target whose folder exists (made when missing) and is writable, and that passes
    /// `RestoreOutput.check()`.
    static func checkedOutput(path: String, force: Bool, protected: [String]) throws -> RestoreOutput {
        let output = RestoreOutput(path: path, force: force, protected: protected)
        try prepareOutputDirectory(output.directory)
        try output.check()
        return output
    }

    static func prepareOutputDirectory(_ dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw LajuError(
                .local, "cannot create output directory \(Display.safe(dir))",
                hint: "check the path and its permissions")
        }
        guard access(dir, W_OK | X_OK) == 0 else {
            throw LajuError(
                .local, "output directory \(dir) is not writable",
                hint: "choose another --output-dir or fix its permissions")
        }
    }
}
