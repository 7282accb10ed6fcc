/// Where a restore writes, and the checks that keep it from harming anything else.
///
/// - The live database (and the catalog, when it is a separate file) is never a target, under any
///   spelling, through a symlink or a hard link, nor are their `-wal`, `-shm` and `-journal` files:
///   replacing a database under a running application loses the writes that live only in its WAL
///   and leaves the application writing to an unlinked file.
/// - An existing file (or symlink, even a dangling one) is replaced only with `--force`.
/// - `-wal`, `-shm` and `-journal` files left beside the target by an earlier database would be
///   applied by SQLite to the restored file the first time it is opened, corrupting it: without
///   `--force` they stop the restore, with `--force` they are removed before the rename, so that
///   the file as it will be opened is exactly the file that passed the checks.
/// - The restored bytes are written to a hidden `.laju-restore-<pid>-<random>.partial` in the
///   target's directory (same filesystem: the final rename is atomic); partial files of killed
///   runs are removed by the next restore into that directory.
struct RestoreOutput {
    static let sideSuffixes = ["-wal", "-shm", "-journal"]
    static let partialKind = "restore"

    let path: String
    let force: Bool
    /// Live files that must never be replaced: the database and the catalog.
    let protected: [String]

    var directory: String { path.deletingLastPathComponent }

    init(path: String, force: Bool, protected: [String]) {
        self.path = absolutePath(path)
        self.force = force
        self.protected = protected.map(absolutePath)
    }

    /// Every check that can be made before a byte is downloaded.
    func check() throws {
        let name = path.lastPathComponentOf
        guard name.utf8.count <= 255 else {
            throw LajuError(.usage, "output file name is longer than 255 bytes: \(Display.safe(name))")
        }
        try refuseLiveFiles()
        var st = stat()
        if lstat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR {
                throw LajuError(
                    .local, "\(Display.safe(path)) is a directory",
                    hint: "name a file with --output, or use --output-dir")
            }
            if !force {
                let what = (st.st_mode & S_IFMT) == S_IFLNK ? "a symlink" : "a file"
                throw LajuError(
                    .local, "\(Display.safe(path)) already exists (\(what))",
                    hint: "pass --force to replace it, or choose --output")
            }
        }
        if !force, let stale = staleSideFiles().first {
            throw LajuError(
                .local,
                "\(Display.safe(stale)) is left beside \(Display.safe(path)) from an earlier database; SQLite would apply it to the restored file and corrupt it",
                hint: "remove it, or pass --force to have restore remove it")
        }
    }

    /// Refuses a target that is, or is a side file of, a protected live file. A live file that does
    /// not exist protects nothing: restoring to the path of a database that is gone is the
    /// disaster restore (its leftover side files are then stale files, see `check()`).
    func refuseLiveFiles() throws {
        let target = FileID(path: path)
        let targetName = canonicalPath(path)
        for live in protected where FileID(path: live) != nil {
            let names = [live] + Self.sideSuffixes.map { live + $0 }
            for candidate in names {
                let sameFile = target != nil && FileID(path: candidate) == target
                let sameName = targetName != nil && canonicalPath(candidate) == targetName
                if sameFile || sameName {
                    let what =
                        candidate == live
                        ? "the live database" : "a side file of the live database (\(candidate.lastPathComponentOf))"
                    throw LajuError(
                        .usage,
                        "refusing to restore over \(what) \(Display.safe(live)): the application may have it open, and its newest writes live in the WAL",
                        hint: "restore into another file (--output) and switch the application over while it is stopped"
                    )
                }
            }
        }
    }

    /// `-wal`, `-shm`, `-journal` files that exist beside the target.
    func staleSideFiles() -> [String] {
        Self.sideSuffixes.map { path + $0 }.filter { p in
            var st = stat()
            return lstat(p, &st) == 0
        }
    }

    /// A fresh partial file name in the target's directory, after removing those of killed runs.
    func partialPath(events: JobEventSink) throws -> String {
        for name in TempName.removeStale(kind: Self.partialKind, in: directory) {
            events(.warning("removed \(directory)/\(Display.safe(name)) left by an interrupted restore"))
        }
        return "\(directory)/\(try TempName.make(Self.partialKind)).partial"
    }

    /// Puts the verified `partial` in place: stale side files go first (only with --force: without
    /// it `check()` already refused them), then one atomic rename, then the directory is flushed.
    func install(partial: String) throws {
        try refuseLiveFiles()
        var st = stat()
        if !force && lstat(path, &st) == 0 {
            throw LajuError(
                .local, "\(Display.safe(path)) appeared while restoring", hint: "pass --force to replace it")
        }
        for side in staleSideFiles() {
            guard force else {
                throw LajuError(
                    .local, "\(Display.safe(side)) appeared beside \(Display.safe(path)) while restoring",
                    hint: "remove it, or pass --force")
            }
            if unlink(side) != 0 && errno != ENOENT {
                throw LajuError(
                    .local, "cannot remove the stale \(Display.safe(side)): \(String(cString: strerror(errno)))",
                    hint: "remove it by hand; the restored file was not put in place")
            }
        }
        guard rename(partial, path) == 0 else {
            throw LajuError(
                .local,
                "cannot move the restored database to \(Display.safe(path)): \(String(cString: strerror(errno)))")
        }
        _ = try? cFsyncDirectory(directory)
    }
}

/// Who should own the restored file. A restore runs as root from cron or by hand, but the file is
/// for the application: left root-owned 0600, the application could not open it.
extension RestoreOutput {
    struct Ownership {
        var uid: uid_t
        var gid: gid_t
        var mode: mode_t
        /// `the file it replaces`, `the database in that folder`, `the folder`.
        var from: String
    }

    /// The owner, group and mode the restored file should take, decided before the rename: those
    /// of the file it replaces, else of the live database when restoring into its folder, else
    /// the folder's owner and group with mode 0600.
    func ownershipReference(liveDatabase: String) -> Ownership? {
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
            return Ownership(uid: st.st_uid, gid: st.st_gid, mode: st.st_mode & 0o777, from: "the file it replaces")
        }
        if let here = canonicalPath(directory + "/x"), let there = canonicalPath(liveDatabase),
            here.deletingLastPathComponent == there.deletingLastPathComponent, stat(liveDatabase, &st) == 0
        {
            return Ownership(
                uid: st.st_uid, gid: st.st_gid, mode: st.st_mode & 0o777, from: "the database in that folder")
        }
        guard stat(directory, &st) == 0 else { return nil }
        return Ownership(uid: st.st_uid, gid: st.st_gid, mode: 0o600, from: "the folder")
    }

    /// Gives the installed file `reference`'s owner, group and mode. Returns what was done, or
    /// the exact commands to run when this user may not do it; nil when nothing was needed.
    func adoptOwnership(from reference: Ownership?) -> String? {
        guard let r = reference else { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        if st.st_uid == r.uid && st.st_gid == r.gid && (st.st_mode & 0o777) == r.mode { return nil }
        let who = "\(userName(r.uid)):\(groupName(r.gid))"
        let mode = String(r.mode, radix: 8)
        if chown(path, r.uid, r.gid) == 0 && chmod(path, r.mode) == 0 {
            return "owner \(who), mode \(mode), as \(r.from)"
        }
        return
            "could not give it \(r.from)'s owner and mode; to let the application open it, run: chown \(who) \(path) && chmod \(mode) \(path)"
    }
}
