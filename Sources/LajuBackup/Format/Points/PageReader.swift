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
        guard fd >= 0 else {
            throw LajuError(.local, "cannot open the snapshot \(path): \(String(cString: strerror(errno)))")
        }
        var header = [UInt8](repeating: 0, count: 100)
        var st = stat()
        guard pread(fd, &header, 100, 0) == 100, fstat(fd, &st) == 0 else {
            closeDescriptor(fd)
            throw LajuError(.source, "the snapshot \(path) is shorter than a SQLite header")
        }
        // Offset 16, big-endian; 1 means 65536.
        let raw = Int(header[16]) << 8 | Int(header[17])
        let size = raw == 1 ? 65536 : raw
        guard (512...65536).contains(size), size & (size - 1) == 0, Int64(st.st_size) % Int64(size) == 0, st.st_size > 0
        else {
            closeDescriptor(fd)
            throw LajuError(
                .source,
                "the snapshot \(path) has page size \(raw) and \(st.st_size) bytes: not a whole number of pages")
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
                let n = buffer.withUnsafeMutableBytes {
                    pread(fd, $0.baseAddress! + got, want - got, off_t(index * pageSize + got))
                }
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
