/// An exclusive advisory lock (`flock`) per database, so that two runs never overlap.
///
/// The lock is named after the database file itself (device and inode), not the spelling of its
/// path: `//srv/./app.db`, a symlink and a hard link all take the same lock. Lock files live in a
/// directory only the running user can write (`LockDirectory`), are opened without following
/// symlinks, and must be regular files owned by that user, so that no other local user can
/// redirect them or hold them.
public final class RunLock {
    let fd: Int32
    public let path: String

    /// Takes the lock for the database at `database` (which must exist), waiting up to `wait`
    /// seconds for another run to finish.
    public init(directory: String, database: String, wait: Double) throws {
        guard let file = FileID(path: database) else {
            throw LajuError(.source, "database \(database) does not exist")
        }
        try LockDirectory.prepare(directory)
        path = "\(directory)/laju-backup-\(file.name).lock"
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw LajuError(
                .local, "cannot open lock file \(path): \(String(cString: strerror(e)))",
                hint: e == ELOOP ? "it is a symlink: remove it (someone may be tampering with \(directory))" : nil)
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == geteuid(), st.st_nlink == 1 else {
            close(fd)
            throw LajuError(
                .local, "lock file \(path) is not a plain file of this user's",
                hint: "remove it; only laju-backup should create files in \(directory)")
        }
        let deadline = monotonicSeconds() + wait
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if monotonicSeconds() >= deadline {
                var buf = [UInt8](repeating: 0, count: 64)
                let n = pread(fd, &buf, 63, 0)
                let holder = n > 0 ? String(decoding: buf.prefix(n), as: UTF8.self).trimmingCharacters(in: " \n") : "?"
                close(fd)
                throw LajuError(
                    .busy, "another laju-backup run (pid \(Display.safe(holder))) is already working on \(database)",
                    hint: "wait for it to finish, or pass --lock-wait SECONDS to queue behind it")
            }
            usleep(200_000)
        }
        _ = ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pwrite(fd, pid, pid.count, 0)
    }

    deinit {
        _ = ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Where run locks live, and the checks that keep other users out of it.
public enum LockDirectory {
    /// `BACKUP_LOCK_DIR` when set; else `/run/laju-backup` for root, `$XDG_RUNTIME_DIR/laju-backup`
    /// for other users (their private runtime directory), else `<temp dir>/laju-backup-locks.<uid>`.
    public static func choose(configured: String?, runtimeDirectory: String?, tempBase: String) -> String {
        if let configured { return configured }
        if geteuid() == 0 { return "/run/laju-backup" }
        if let r = runtimeDirectory, r.hasPrefix("/") { return r + "/laju-backup" }
        return "\(tempBase)/laju-backup-locks.\(geteuid())"
    }

    /// Creates `dir` (mode 0700) when missing, then insists that it is a real directory owned
    /// by this user (or root) that nobody else can write into: a world-writable directory such as
    /// /run/lock or /tmp would let any local user plant a symlink or hold the lock.
    public static func prepare(_ dir: String) throws {
        try PrivateDirectory.prepare(dir, what: "lock directory", setting: "BACKUP_LOCK_DIR")
    }
}
