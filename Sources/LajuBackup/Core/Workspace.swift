/// A private temp directory (mode 0700) for one run, removed on every exit path; and the
/// per-database lock that keeps two runs from overlapping.
public final class Workspace {
    public let path: String
    static let namePrefix = "laju-backup."

    /// Creates `<base>/laju-backup.<pid>.<random>` after removing what killed runs left behind.
    public init(base: String, events: JobEventSink) throws {
        var st = stat()
        guard stat(base, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw LajuError(
                .local, "temporary directory \(base) does not exist", hint: "create it or set BACKUP_TMPDIR")
        }
        Workspace.removeStale(in: base, events: events)
        var template = Array("\(base)/\(Workspace.namePrefix)\(getpid()).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw LajuError(
                .local, "cannot create a temporary directory in \(base): \(String(cString: strerror(errno)))",
                hint: "set BACKUP_TMPDIR to a writable directory")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }  // mkdtemp creates it 0700
        CleanupRegistry.shared.add(path)
    }

    deinit { remove() }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
        CleanupRegistry.shared.remove(path)
    }

    /// Temp directories of runs whose process is gone (killed by cron, OOM, power loss).
    static func removeStale(in base: String, events: JobEventSink) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix(namePrefix) {
            let parts = name.dropFirst(namePrefix.count).split(separator: ".")
            guard parts.count == 2, let pid = Int32(parts[0]), pid != getpid() else { continue }
            if TempName.isDead(pid) {
                try? FileManager.default.removeItem(atPath: "\(base)/\(name)")
                events(.warning("removed \(base)/\(name) left by an interrupted run (pid \(pid))"))
            }
        }
    }

    /// Fails with "need N, have M in DIR" when `base` has less than `needed` bytes free.
    public static func checkFreeSpace(in base: String, needed: Int64) throws {
        var s = statvfs()
        guard statvfs(base, &s) == 0 else { return }
        let have = Int64(s.f_bavail) * Int64(s.f_frsize)
        if have < needed {
            throw LajuError(
                .local,
                "not enough free space for temporary files: need \(Human.bytes(needed)), have \(Human.bytes(have)) in \(base)",
                hint: "free space or set BACKUP_TMPDIR to a larger disk")
        }
    }
}
