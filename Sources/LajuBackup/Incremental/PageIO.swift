/// Reads a snapshot page by page in bounded memory (1 MiB at a time), with the page size from the
/// file's own header.
final class PageReader {
    let path: String
    let fd: Int32
    let pageSize: Int
    let pageCount: Int

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LajuError(.local, "cannot open the snapshot \(path): \(String(cString: strerror(errno)))") }
        var header = [UInt8](repeating: 0, count: 100)
        var st = stat()
        guard pread(fd, &header, 100, 0) == 100, fstat(fd, &st) == 0 else {
            closeDescriptor(fd)
            throw LajuError(.source, "the snapshot \(path) is shorter than a SQLite header")
        }
        // Offset 16, big-endian; 1 means 65536.
        let raw = Int(header[16]) << 8 | Int(header[17])
        let size = raw == 1 ? 65536 : raw
        guard (512...65536).contains(size), size & (size - 1) == 0, Int64(st.st_size) % Int64(size) == 0, st.st_size > 0 else {
            closeDescriptor(fd)
            throw LajuError(.source, "the snapshot \(path) has page size \(raw) and \(st.st_size) bytes: not a whole number of pages")
        }
        pageSize = size
        pageCount = Int(Int64(st.st_size) / Int64(size))
    }

    func closeFile() { closeDescriptor(fd) }

    /// Calls `body` with every page in order; the buffer is only valid during the call.
    func forEachPage(_ body: (Int, UnsafeRawBufferPointer) throws -> Void) throws {
        let perChunk = max(1, (1 << 20) / pageSize)
        var buffer = [UInt8](repeating: 0, count: perChunk * pageSize)
        var index = 0
        while index < pageCount {
            let want = min(perChunk, pageCount - index) * pageSize
            var got = 0
            while got < want {
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, want - got, off_t(index * pageSize + got)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw LajuError(.local, "cannot read the snapshot \(path) at page \(index)") }
                got += n
            }
            try buffer.withUnsafeBytes { all in
                for k in 0..<(want / pageSize) {
                    try body(index + k, UnsafeRawBufferPointer(rebasing: all[(k * pageSize)..<((k + 1) * pageSize)]))
                }
            }
            index += want / pageSize
        }
    }
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
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else {
            let e = errno
            throw LajuError(.local, "cannot write \(path): \(String(cString: strerror(e)))",
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
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
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

/// RFC 3339 times for `--at` and for output.
public enum PointTime {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func rfc3339(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        func p(_ v: Int32, _ w: Int) -> String { LocalTime.pad(Int(v), w) }
        return "\(p(tm.tm_year + 1900, 4))-\(p(tm.tm_mon + 1, 2))-\(p(tm.tm_mday, 2))T\(p(tm.tm_hour, 2)):\(p(tm.tm_min, 2)):\(p(tm.tm_sec, 2)).\(LocalTime.pad(Int(ms % 1000), 3))Z"
    }

    /// Milliseconds of an RFC 3339 date-time (`2026-12-02T10:15:03Z`, `...T17:15:03.5+07:00`);
    /// nil for anything else. Fractions beyond milliseconds are cut (never rounded up past the
    /// time asked for).
    public static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count >= 20 else { return nil }
        func digits(_ r: Range<Int>) -> Int32? {
            guard r.upperBound <= u.count else { return nil }
            var v: Int32 = 0
            for i in r {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(u[i]) else { return nil }
                v = v * 10 + Int32(u[i] - UInt8(ascii: "0"))
            }
            return v
        }
        guard let y = digits(0..<4), u[4] == UInt8(ascii: "-"), let mo = digits(5..<7), u[7] == UInt8(ascii: "-"),
              let d = digits(8..<10), u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t"),
              let h = digits(11..<13), u[13] == UInt8(ascii: ":"), let mi = digits(14..<16), u[16] == UInt8(ascii: ":"),
              let s = digits(17..<19) else { return nil }
        guard (1970...9999).contains(y), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        var i = 19
        var ms: Int64 = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            var scale: Int64 = 100
            while i < u.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(u[i]) {
                if n < 3 { ms += Int64(u[i] - UInt8(ascii: "0")) * scale; scale /= 10 }
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
        }
        guard i < u.count else { return nil }
        var offset: Int64 = 0
        if u[i] == UInt8(ascii: "Z") || u[i] == UInt8(ascii: "z") {
            guard i + 1 == u.count else { return nil }
        } else {
            guard u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-"), i + 6 == u.count, u[i + 3] == UInt8(ascii: ":"),
                  let oh = digits((i + 1)..<(i + 3)), let om = digits((i + 4)..<(i + 6)), oh < 24, om < 60 else { return nil }
            offset = Int64(oh) * 3600 + Int64(om) * 60
            if u[i] == UInt8(ascii: "-") { offset = -offset }
        }
        var parts = tm()
        parts.tm_year = y - 1900
        parts.tm_mon = mo - 1
        parts.tm_mday = d
        parts.tm_hour = h
        parts.tm_min = mi
        parts.tm_sec = min(s, 59)
        let t = Int64(timegm(&parts))
        // timegm normalises 31 February into March: refuse a day the month does not have.
        var back = time_t(t)
        var check = tm()
        gmtime_r(&back, &check)
        guard check.tm_mday == d else { return nil }
        return (t - offset) * 1000 + ms
    }
}

/// close(2), callable from types that have a `close` of their own.
func closeDescriptor(_ fd: Int32) { _ = close(fd) }
