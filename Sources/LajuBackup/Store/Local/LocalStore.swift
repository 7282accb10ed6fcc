internal import CSupport

/// A store in a local directory (`BACKUP_STORAGE=file:///dir`): each object is a file at
/// `dir/<key>`, its metadata in `dir/<key>.meta.json` beside it, so restore by key works
/// without the catalog. Writes go to a hidden temp name and are renamed into place after fsync.
public final class LocalStore: FileBackedStore {
    public let root: String
    static let metaSuffix = ".meta.json"
    /// Hidden files being written (`TempName`): `.laju-put-<pid>-<random>[.meta.json]`.
    static let partialKind = "put"

    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    public var displayName: String { "file://\(root)" }
    public var storageLabel: String { "local" }
    public var uploadDigestNeeds: UploadDigestNeeds { .md5Only }

    public func localPath(key: String) throws -> String { try path(key) }

    func path(_ key: String) throws -> String {
        // Keys are hostile until checked: nothing may escape the root or name a directory.
        try ObjectKey.validate(key, origin: "a request to \(displayName)")
        return root + "/" + key
    }

    public func checkAccess() throws {
        var st = stat()
        guard stat(root, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw LajuError(
                .storage, "local store \(root) does not exist or is not a directory",
                hint: "create it (mkdir -p \(root)) or fix BACKUP_STORAGE")
        }
        guard access(root, W_OK | X_OK) == 0 else {
            throw LajuError(.storage, "local store \(root) is not writable", hint: "fix its permissions")
        }
    }

    public func put(
        key: String, file: String, size: Int64, digests: ObjectDigests, metadata: [String: String],
        progress: TransferProgress?
    ) throws {
        let md5 = digests.md5
        let target = try path(key)
        let dir = target.deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw LajuError(.storage, "cannot create \(dir) in the local store: \(error)")
        }
        // What killed runs left here goes first; ours is registered so a signal removes it too.
        TempName.removeStale(kind: Self.partialKind, in: dir)
        let tmpObject = "\(dir)/\(try TempName.make(Self.partialKind))"
        let tmpMeta = tmpObject + Self.metaSuffix
        CleanupRegistry.shared.add(tmpObject)
        CleanupRegistry.shared.add(tmpMeta)
        defer {
            unlink(tmpObject); unlink(tmpMeta)
            CleanupRegistry.shared.remove(tmpObject); CleanupRegistry.shared.remove(tmpMeta)
        }
        let box = ProgressTrampoline(progress ?? { _, _ in true })
        do {
            try box.with { ctx in try cCall { cs_file_copy(file, tmpObject, ProgressTrampoline.callback, ctx, $0) } }
            let copied = try Digest.hash(.md5, filePath: tmpObject)
            guard copied == md5 else {
                throw LajuError(
                    .storage, "object copied into the local store does not match its checksum (disk or memory fault?)")
            }
            let json = try JSONSerializationLite.encode(metadata)
            try writeDurably(json, to: tmpMeta)
            // Metadata first: an object file is only ever visible with its metadata beside it.
            guard rename(tmpMeta, target + Self.metaSuffix) == 0 else {
                throw posixError("cannot store metadata for \(key)")
            }
            guard rename(tmpObject, target) == 0 else { throw posixError("cannot store \(key)") }
            try cCall { cs_fsync_path(dir, $0) }
        } catch let e as CError {
            unlink(target + Self.metaSuffix)
            throw LajuError(e.status == .noSpace ? .local : .storage, "local store: \(e.message)")
        }
    }

    public func head(key: String) throws -> ObjectInfo {
        let p = try path(key)
        var st = stat()
        guard stat(p, &st) == 0 else {
            throw LajuError(.storage, "object \(key) not found in \(displayName)", isNotFound: true)
        }
        var meta: [String: String] = [:]
        // A side file that is not a small regular file (a FIFO planted in the store) is no metadata.
        if let read = try? readRegularFile(p + Self.metaSuffix, limit: 1 << 20) {
            meta = (try? JSONSerializationLite.decode(Data(read.bytes))) ?? [:]
        }
        return ObjectInfo(key: key, size: Int64(st.st_size), lastModified: Self.seconds(st.st_mtim), metadata: meta)
    }

    public func get(key: String, to file: String, progress: TransferProgress?) throws {
        let p = try path(key)
        guard access(p, F_OK) == 0 else {
            throw LajuError(.storage, "object \(key) not found in \(displayName)", isNotFound: true)
        }
        let box = ProgressTrampoline(progress ?? { _, _ in true })
        do {
            try box.with { ctx in try cCall { cs_file_copy(p, file, ProgressTrampoline.callback, ctx, $0) } }
        } catch let error as CError {
            throw LajuError(
                error.status == .noSpace ? .local : .storage, "reading \(key) from the local store: \(error.message)")
        }
    }

    public func getRange(key: String, offset: Int64, length: Int64) throws -> [UInt8] {
        let p = try path(key)
        guard offset >= 0, length >= 0, length <= 1 << 30 else {
            throw LajuError(.internal, "invalid range \(offset)+\(length) of \(key)")
        }
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT {
                throw LajuError(.storage, "object \(key) not found in \(displayName)", isNotFound: true)
            }
            throw posixError("cannot open \(key)")
        }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: Int(length))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw posixError("cannot read \(key)") }
            if n == 0 {
                throw LajuError(
                    .storage,
                    "object \(key) in \(displayName) ends before \(offset + length) (at \(offset + Int64(done)))")
            }
            done += n
        }
        return out
    }

    @discardableResult
    public func delete(key: String) throws -> Bool {
        let p = try path(key)
        if unlink(p) != 0 {
            if errno == ENOENT { unlink(p + Self.metaSuffix); return false }
            throw posixError("cannot delete \(key)")
        }
        unlink(p + Self.metaSuffix)
        return true
    }

    /// Every path under the root; a missing or unreadable root said in words, not as a
    /// Foundation error dump.
    func subpaths() throws -> [String] {
        try checkReadable()
        do { return try FileManager.default.subpathsOfDirectory(atPath: root) } catch {
            throw LajuError(
                .storage, "cannot list \(displayName): \(error)",
                hint: "check the permissions of \(root) and the folders in it")
        }
    }

    func checkReadable() throws {
        var st = stat()
        guard stat(root, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw LajuError(
                .storage, "local store \(root) does not exist or is not a directory",
                hint: "check BACKUP_STORAGE (a file:/// URL of the store's folder) and that its disk is mounted")
        }
        guard access(root, R_OK | X_OK) == 0 else {
            throw LajuError(.storage, "local store \(root) is not readable", hint: "run as a user that can read it")
        }
    }

    public func list(prefix: String) throws -> [ObjectInfo] {
        let paths: [String]
        paths = try subpaths()
        var out: [ObjectInfo] = []
        for rel in paths {
            let name = rel.lastPathComponentOf
            guard rel.hasPrefix(prefix), !name.hasSuffix(Self.metaSuffix), !name.hasPrefix(".") else { continue }
            var st = stat()
            guard stat(root + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            out.append(ObjectInfo(key: rel, size: Int64(st.st_size), lastModified: Self.seconds(st.st_mtim)))
        }
        return out.sorted { $0.key < $1.key }
    }

    /// Hidden `.laju-put-...` files under `prefix`: uploads whose run was killed before the rename.
    public func partialUploads(prefix: String) throws -> [PartialUpload] {
        let paths: [String]
        paths = try subpaths()
        var out: [PartialUpload] = []
        for rel in paths where rel.hasPrefix(prefix) {
            guard let pid = TempName.pid(in: rel.lastPathComponentOf, kind: Self.partialKind) else { continue }
            var st = stat()
            guard lstat(root + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            out.append(
                PartialUpload(
                    key: rel, uploadID: nil, started: Double(st.st_mtim.tv_sec), ownerGone: TempName.isDead(pid)))
        }
        return out.sorted { $0.key < $1.key }
    }

    public func removePartialUpload(_ upload: PartialUpload) throws {
        guard let pid = TempName.pid(in: upload.key.lastPathComponentOf, kind: Self.partialKind), TempName.isDead(pid)
        else {
            throw LajuError(.usage, "\(Display.quoted(upload.key)) is not the partial upload of a finished run")
        }
        if unlink(root + "/" + upload.key) != 0 && errno != ENOENT { throw posixError("cannot remove \(upload.key)") }
    }

    /// A file time with its fraction: two backups within a second must still sort.
    static func seconds(_ t: timespec) -> Double { Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }

    private func posixError(_ what: String) -> LajuError {
        let e = errno
        return LajuError(e == ENOSPC ? .local : .storage, "\(what): \(String(cString: strerror(e)))")
    }

    private func writeDurably(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw posixError("cannot create \(path)") }
        defer { close(fd) }
        let ok = data.withUnsafeBytes { buf -> Bool in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return fsync(fd) == 0
        }
        guard ok else { throw posixError("cannot write \(path)") }
    }
}
