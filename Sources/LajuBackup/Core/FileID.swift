/// A file as the kernel knows it (device and inode), whatever path spelling, symlink or hard link
/// led to it. Two paths name the same file exactly when their FileIDs are equal.
public struct FileID: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64

    /// The device and inode of the file at `path` (following symlinks unless `followSymlinks` is false),
    /// or nil when nothing is there.
    public init?(path: String, followSymlinks: Bool = true) {
        var st = stat()
        let rc = followSymlinks ? stat(path, &st) : lstat(path, &st)
        guard rc == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    /// `<device>-<inode>` in hex: a name for lock files that does not depend on spelling.
    public var name: String { String(device, radix: 16) + "-" + String(inode, radix: 16) }
}

/// `path` with its directory resolved (`realpath`, so `//a/./b/../c` and symlinked folders give
/// one spelling) and its last component kept as written. Nil when the directory does not exist.
public func canonicalPath(_ path: String) -> String? {
    let abs = absolutePath(path)
    let dir = abs.deletingLastPathComponent
    let name = abs.lastPathComponentOf
    guard let resolved = realpath(dir, nil) else { return nil }
    defer { free(resolved) }
    let d = String(cString: resolved)
    if abs.hasSuffix("/") || name == "/" { return d }
    return (d == "/" ? "" : d) + "/" + name
}

/// Names of temporary files and directories that carry the pid of the run that made them, so that
/// a later run can tell the leftovers of a killed run (`kill -9`, power loss) from those of a run
/// still going, and remove them: `.laju-<kind>-<pid>-<random>` plus a suffix.
public enum TempName {
    /// A fresh name for `kind` (`restore`, `put`...).
    public static func make(_ kind: String) throws -> String {
        ".laju-\(kind)-\(getpid())-\(try secureRandomBytes(6).hexString)"
    }

    /// The pid in a name made by `make(kind)`, or nil when the name is not one of ours.
    public static func pid(in name: String, kind: String) -> Int32? {
        let head = ".laju-\(kind)-"
        guard name.hasPrefix(head) else { return nil }
        let parts = name.dropFirst(head.count).split(separator: "-", maxSplits: 1)
        guard parts.count == 2, let pid = Int32(parts[0]), pid > 0,
            parts[1].utf8.prefix(12).allSatisfy({ hexDigitValue($0) != nil })
        else { return nil }
        return pid
    }

    /// True when `pid` is not a running laju-backup (gone, or reused by another program).
    public static func isDead(_ pid: Int32) -> Bool {
        if pid == getpid() { return false }
        if kill(pid, 0) != 0 { return errno == ESRCH }
        // The pid exists: is it still a laju-backup? (pids are reused, e.g. after a reboot)
        let fd = open("/proc/\(pid)/comm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buf, buf.count)
        guard n > 0 else { return false }
        return !String(decoding: buf.prefix(n), as: UTF8.self).hasPrefix("laju-backup")
    }

    /// Removes the leftovers of dead runs named `.laju-<kind>-...` in `directory` (one level, no
    /// recursion); returns the names removed.
    @discardableResult
    public static func removeStale(kind: String, in directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let pid = pid(in: name, kind: kind), isDead(pid) else { continue }
            let path = directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                try? FileManager.default.removeItem(atPath: path)
            } else {
                unlink(path)
            }
            removed.append(name)
        }
        return removed
    }
}
