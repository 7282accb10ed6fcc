/// The file that keeps the live state `restore --activate` replaced.
enum SafetyCopy {
    /// Creates `<dir>/<db name>-before-activate-<YYYY-MM-DDTHH:mm>-<random>.db`, empty, mode 0600
    /// (it holds the application's data), in a directory only this user can write.
    static func create(directory configured: String, databaseName: String, needed: Int64) throws -> String {
        // A shared folder (BACKUP_SAFETY_DIR=/tmp, an application's folder) keeps its mode: the
        // copies go into a private subdirectory of it instead.
        let directory = PrivateDirectory.within(configured, name: "laju-backup-safety")
        try PrivateDirectory.prepare(
            directory, what: "safety copy directory", setting: "BACKUP_SAFETY_DIR", parents: true)
        var fs = statvfs()
        if statvfs(directory, &fs) == 0 {
            let have = Int64(fs.f_bavail) * Int64(fs.f_frsize)
            if have < needed {
                throw LajuError(
                    .local,
                    "not enough free space for the safety copy: need \(Human.bytes(needed)), have \(Human.bytes(have)) in \(directory)",
                    hint: "free space, or set BACKUP_SAFETY_DIR to a larger disk")
            }
        }
        let stamp = LocalTime.minuteStamp(epochMilliseconds: LocalTime.nowMilliseconds())
        let path = "\(directory)/\(databaseName)-before-activate-\(stamp)-\(try secureRandomBytes(3).hexString).db"
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw LajuError(
                .local, "cannot create the safety copy \(path): \(String(cString: strerror(errno)))",
                hint: "set BACKUP_SAFETY_DIR to a directory this user can write")
        }
        close(fd)
        return path
    }
}
