/// Big-endian fields, as every point format structure stores them; `ByteReader` reads them back.
extension Array where Element == UInt8 {
    mutating func appendBE(_ v: UInt64) {
        for s in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }
    mutating func appendBE(_ v: UInt32) {
        for s in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    mutating func appendBE(_ v: UInt16) { append(UInt8(v >> 8)); append(UInt8(truncatingIfNeeded: v)) }
}

/// Why stored bytes were refused; the caller names the object.
struct FormatError: Error, CustomStringConvertible {
    let message: String
    init(_ m: String) { message = m }
    var description: String { message }
}

/// What the body decoder reads from: bytes in memory (`ByteReader`) or a manifest decrypted as it
/// is read from a file (`ManifestFile.BodyStream`). Every read is bounds-checked.
protocol BodyBytes {
    /// Bytes left to read.
    var remaining: Int { get }
    mutating func bytes(_ n: Int) throws(FormatError) -> [UInt8]
    mutating func u8() throws(FormatError) -> UInt8
    mutating func u16() throws(FormatError) -> UInt16
    mutating func u32() throws(FormatError) -> UInt32
    mutating func u64() throws(FormatError) -> UInt64
}

/// A bounds-checked big-endian reader over hostile bytes.
struct ByteReader: BodyBytes {
    let data: [UInt8]
    var at = 0
    /// Where reading stops (exclusive): a reader can cover part of a larger buffer without a copy.
    let limit: Int
    init(_ b: [UInt8]) { data = b; limit = b.count }
    init(_ b: [UInt8], from: Int, to: Int) {
        precondition(0 <= from && from <= to && to <= b.count)
        data = b
        at = from
        limit = to
    }

    var remaining: Int { limit - at }

    mutating func bytes(_ n: Int) throws(FormatError) -> [UInt8] {
        guard n >= 0, n <= remaining else { throw FormatError("truncated (wanted \(n) bytes, \(remaining) left)") }
        defer { at += n }
        return Array(data[at..<(at + n)])
    }
    mutating func u8() throws(FormatError) -> UInt8 { try int(1, UInt8.self) }
    mutating func u16() throws(FormatError) -> UInt16 { try int(2, UInt16.self) }
    mutating func u32() throws(FormatError) -> UInt32 { try int(4, UInt32.self) }
    mutating func u64() throws(FormatError) -> UInt64 { try int(8, UInt64.self) }

    private mutating func int<T: FixedWidthInteger>(_ n: Int, _: T.Type) throws(FormatError) -> T {
        guard n <= remaining else { throw FormatError("truncated (wanted \(n) bytes, \(remaining) left)") }
        var v: T = 0
        for i in at..<(at + n) { v = v << 8 | T(data[i]) }
        at += n
        return v
    }
    func end() throws(FormatError) {
        guard remaining == 0 else { throw FormatError("\(remaining) unexpected bytes at the end") }
    }
}
