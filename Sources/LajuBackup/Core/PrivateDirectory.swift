/// Directories that hold a run's private state: run locks, the point cache, safety copies. Only
/// this user (or root) may write them, since whoever can write there can plant a symlink, hold a
/// lock or replace a cache; and no run ever changes the mode of a directory that already exists,
/// since a shared folder (/tmp, an application's folder) belongs to everyone who uses it.
public enum PrivateDirectory {
    /// Creates `dir` (mode 0700; with `parents`, its missing parents too) when missing, then
    /// insists that it is a real directory, not a symlink, owned by this user or root, that
    /// nobody else can write. `what` names it in messages, `setting` is what moves it.
    public static func prepare(_ dir: String, what: String, setting: String, parents: Bool = false) throws {
        if parents { try makeParents(of: dir, what: what, setting: setting) }
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            let e = errno
            throw LajuError(
                .local, "cannot create \(what) \(dir): \(String(cString: strerror(e)))",
                hint: "set \(setting) to a directory only this user can write")
        }
        var st = stat()
        guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw LajuError(
                .local, "\(what) \(dir) is not a directory (a symlink?)",
                hint: "remove it, or set \(setting) to a directory only this user can write")
        }
        guard st.st_uid == geteuid() || st.st_uid == 0 else {
            throw LajuError(
                .local, "\(what) \(dir) belongs to another user (uid \(st.st_uid))",
                hint:
                    "remove it if nobody should have made it, or set \(setting) to a directory only this user can write"
            )
        }
        guard st.st_mode & 0o022 == 0 else {
            throw LajuError(
                .local, "\(what) \(dir) is writable by other users",
                hint: "chmod go-w \(dir), or set \(setting) to a directory only this user can write")
        }
    }

    /// Where to keep private state under a configured `base`: `base` itself when it is this
    /// user's (or root's) and nobody else can write it (or it does not exist yet); else, for a
    /// shared folder, the subdirectory `<base>/<name>.<uid>`, which `prepare` then makes private.
    public static func within(_ base: String, name: String) -> String {
        var st = stat()
        guard stat(base, &st) == 0 else { return base }
        if (st.st_uid == geteuid() || st.st_uid == 0) && st.st_mode & 0o022 == 0 { return base }
        return "\(base.hasSuffix("/") ? String(base.dropLast()) : base)/\(name).\(geteuid())"
    }

    /// The missing parents of `dir`, made 0700 one by one (never touching one that exists).
    static func makeParents(of dir: String, what: String, setting: String) throws {
        var missing: [String] = []
        var p = dir.deletingLastPathComponent
        while p != "/" && p != "." && access(p, F_OK) != 0 {
            missing.append(p)
            p = p.deletingLastPathComponent
        }
        for parent in missing.reversed() where mkdir(parent, 0o700) != 0 && errno != EEXIST {
            let e = errno
            throw LajuError(
                .local, "cannot create \(parent) for the \(what): \(String(cString: strerror(e)))",
                hint: "set \(setting) to a directory this user can write")
        }
    }
}
