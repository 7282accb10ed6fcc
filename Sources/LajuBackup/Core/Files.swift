internal import CSupport

/// Size of a file, 0 when absent.
func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

/// Absolute form of a path, relative to the working directory.
public func absolutePath(_ p: String) -> String {
    if p.hasPrefix("/") { return p }
    let cwd = FileManager.default.currentDirectoryPath
    return p == "." ? cwd : "\(cwd)/\(p.hasPrefix("./") ? String(p.dropFirst(2)) : p)"
}

/// Writes a new private file through a 1 MiB buffer, with the MD5 an upload needs and, when
/// asked, an HMAC of everything written: packs, manifests and page maps, which are written front
/// to back and never held whole.
final class FileWriter {
    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let md5 = Digest(.md5)
    /// Fed with every byte until set to nil (the state cache's MAC).
    var mac: HMACStream?
    private var flushed: Int64 = 0
    var size: Int64 { flushed + Int64(buffer.count) }

    init(path: String, mac: HMACStream? = nil) throws {
        self.path = path
        self.mac = mac
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LajuError(.local, "cannot create \(path): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(1 << 20)
    }

    deinit { closeDescriptor(fd) }

    func append<D: ContiguousBytes>(_ bytes: D) throws {
        bytes.withUnsafeBytes { buffer.append(contentsOf: $0) }
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Appends what `write` adds to the buffer (records encoded in place, no array of their own).
    func append(_ write: (inout [UInt8]) -> Void) throws {
        write(&buffer)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        md5.update(buffer)
        mac?.update(buffer)
        try writeAll(fd, buffer, at: flushed, path: path)
        flushed += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes; the file's size and MD5.
    func finish() throws -> (size: Int64, md5: [UInt8]) {
        try flush()
        return (size, md5.finalize())
    }
}

/// Writes all of `bytes` at `offset` of a private temp file (pwrite, retried on EINTR); a full
/// disk says where to find room.
func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int64, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes {
            pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done))
        }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else {
            let e = errno
            throw LajuError(
                .local, "cannot write \(path): \(String(cString: strerror(e)))",
                hint: e == ENOSPC ? "free space or set BACKUP_TMPDIR to a larger disk" : nil)
        }
        done += n
    }
}

/// Reads a file front to back through a buffer of its own (page maps and manifests: one pass,
/// bounded memory). `fill` hands out at most what is asked for.
final class FileReader {
    let path: String
    let fd: Int32
    let size: Int64
    private(set) var position: Int64

    init(path: String, from offset: Int64 = 0) throws {
        self.path = path
        // Without blocking: a FIFO planted in place of the file must fail the check below, not
        // wait for a writer.
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw LajuError(.local, "cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            closeDescriptor(fd)
            throw LajuError(.local, "\(path) is not a regular file")
        }
        size = Int64(st.st_size)
        position = offset
    }

    deinit { closeDescriptor(fd) }

    /// Reads exactly `buffer.count` bytes from the current position (fewer only at the end of
    /// the file); the number read.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var got = 0
        while got < buffer.count {
            let n = pread(fd, buffer.baseAddress! + got, buffer.count - got, off_t(position) + off_t(got))
            if n < 0 && errno == EINTR { continue }
            if n == 0 { break }
            guard n > 0 else { throw LajuError(.local, "cannot read \(path): \(String(cString: strerror(errno)))") }
            got += n
        }
        position += Int64(got)
        return got
    }

    func seek(to offset: Int64) { position = offset }
}

/// close(2), callable from types that have a `close` of their own.
func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// Path helpers without NSString (not in FoundationEssentials).
extension String {
    var lastPathComponentOf: String { split(separator: "/").last.map(String.init) ?? self }
    var deletingLastPathComponent: String {
        guard let i = lastIndex(of: "/") else { return "." }
        return i == startIndex ? "/" : String(self[..<i])
    }
}

/// Why `readRegularFile` refused a path.
public enum RegularFileError: Error, Equatable {
    /// Nothing there.
    case missing
    /// A directory, a FIFO, a socket, a device: `what` says which.
    case notRegular(what: String)
    /// Larger than the caller's limit.
    case tooLarge(limit: Int)
    /// open(2) or read(2) failed otherwise (`EACCES`...): strerror's text.
    case unreadable(String)

    /// The reason, for a message that names the file itself.
    public var reason: String {
        switch self {
        case .missing: return "no such file"
        case .notRegular(let what): return "it is \(what), not a regular file"
        case .tooLarge(let limit): return "it is larger than \(Human.bytes(Int64(limit)))"
        case .unreadable(let why): return why
        }
    }
}

/// Reads a whole small file that someone else may have put in place (settings, side files,
/// metrics): opened without blocking, so that a FIFO or a device never hangs the run, and
/// refused unless it is a regular file of at most `limit` bytes. Symlinks are followed; the
/// checks apply to what they point at. Returns the bytes and the file's status as read (owner and
/// mode checks use it, not a second look at the path).
func readRegularFile(_ path: String, limit: Int) throws(RegularFileError) -> (bytes: [UInt8], status: stat) {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else {
        let e = errno
        if e == ENOENT || e == ENOTDIR { throw .missing }
        throw e == EACCES ? .unreadable("permission denied") : .unreadable(String(cString: strerror(e)))
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw .unreadable(String(cString: strerror(errno))) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw .notRegular(what: fileKind(st.st_mode)) }
    guard st.st_size <= limit else { throw .tooLarge(limit: limit) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw .unreadable(String(cString: strerror(errno)))
        }
        if n == 0 { return (bytes, st) }
        bytes += buf[0..<n]
        if bytes.count > limit { throw .tooLarge(limit: limit) }
    }
}

/// `a directory`, `a FIFO`, `a socket`, `a device`, `a symlink`, for messages.
func fileKind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFIFO: return "a FIFO"
    case S_IFSOCK: return "a socket"
    case S_IFCHR, S_IFBLK: return "a device"
    case S_IFLNK: return "a symlink"
    case S_IFREG: return "a regular file"
    default: return "a special file"
    }
}

/// The login name of `uid`, or the number when it has none.
func userName(_ uid: uid_t) -> String {
    guard let pw = getpwuid(uid), let name = pw.pointee.pw_name else { return String(uid) }
    return String(cString: name)
}

/// The name of group `gid`, or the number when it has none.
func groupName(_ gid: gid_t) -> String {
    guard let gr = getgrgid(gid), let name = gr.pointee.gr_name else { return String(gid) }
    return String(cString: name)
}

/// Copies `source` into the new file `destination` (mode 0600), durably.
func copyFile(_ source: String, to destination: String) throws {
    do {
        try cCall { cs_file_copy(source, destination, nil, nil, $0) }
    } catch {
        throw LajuError(
            .local, "cannot copy \(source) to \(destination): \(error.message)",
            hint: error.status == .noSpace ? "free space or set BACKUP_TMPDIR to a larger disk" : nil)
    }
}
