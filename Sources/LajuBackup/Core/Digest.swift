internal import CSupport

/// Streaming MD5 or SHA-256 over OpenSSL EVP ([`EVP_DigestInit_ex`](https://docs.openssl.org/3.0/man3/EVP_DigestInit/)).
/// Owns its `cs_digest` context and frees it in `deinit`.
public final class Digest {
    public enum Algorithm: Int32, Sendable {
        case md5 = 1  // CS_DIGEST_MD5
        case sha256 = 2  // CS_DIGEST_SHA256
    }
    private let handle: OpaquePointer

    public init(_ algorithm: Algorithm) {
        guard let h = cs_digest_new(algorithm.rawValue) else {
            fatalError("OpenSSL could not create a \(algorithm) context")  // out of memory
        }
        handle = h
    }
    deinit { cs_digest_free(handle) }

    public func update<D: ContiguousBytes>(_ data: D) {
        data.withUnsafeBytes { _ = cs_digest_update(handle, $0.baseAddress, $0.count) }
    }
    public func update(_ string: String) { update(Array(string.utf8)) }

    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let n = out.withUnsafeMutableBytes { cs_digest_final(handle, $0.baseAddress, $0.count) }
        return Array(out.prefix(Int(max(n, 0))))
    }

    /// One-shot convenience.
    public static func hash<D: ContiguousBytes>(_ algorithm: Algorithm, _ data: D) -> [UInt8] {
        let d = Digest(algorithm)
        d.update(data)
        return d.finalize()
    }

    /// Digest of `length` bytes of an open file from `offset` (`nil`: to the end), read in
    /// bounded chunks ([`cs_digest_fd_range`]).
    public static func hash(
        _ algorithm: Algorithm, fileDescriptor fd: Int32, offset: Int64 = 0,
        length: Int64? = nil
    ) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        _ = try out.withUnsafeMutableBytes { buf in
            try cCall {
                cs_digest_fd_range(algorithm.rawValue, fd, offset, length ?? -1, buf.baseAddress, buf.count, $0)
            }
        }
        return Array(out.prefix(algorithm == .md5 ? 16 : 32))
    }

    /// Digest of a whole file by path.
    public static func hash(_ algorithm: Algorithm, filePath: String) throws -> [UInt8] {
        let fd = open(filePath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CError(
                status: .io, libraryCode: Int64(errno),
                message: "cannot open \(filePath): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        return try hash(algorithm, fileDescriptor: fd)
    }
}

/// HMAC-SHA256 ([`HMAC`](https://docs.openssl.org/3.0/man3/HMAC/)), the SigV4 signing primitive.
public func hmacSHA256<K: ContiguousBytes, D: ContiguousBytes>(key: K, data: D) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    key.withUnsafeBytes { k in
        data.withUnsafeBytes { d in
            out.withUnsafeMutableBytes { o in
                // Cannot fail with valid buffers; a failure would be an OpenSSL bug.
                _ = cs_hmac_sha256(k.baseAddress, k.count, d.baseAddress, d.count, o.baseAddress, nil)
            }
        }
    }
    return out
}

/// HMAC-SHA256 fed in pieces (RFC 2104 over the streaming `Digest`): for files MACed without
/// being held in memory (the incremental state cache of a large database). Equals `hmacSHA256`.
final class HMACStream {
    private let inner = Digest(.sha256)
    private let outerPad: [UInt8]

    init(key: [UInt8]) {
        var k = key.count > 64 ? Digest.hash(.sha256, key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        inner.update(k.map { $0 ^ 0x36 })
        outerPad = k.map { $0 ^ 0x5c }
    }

    func update<D: ContiguousBytes>(_ data: D) { inner.update(data) }

    func finalize() -> [UInt8] {
        let outer = Digest(.sha256)
        outer.update(outerPad)
        outer.update(inner.finalize())
        return outer.finalize()
    }
}

/// Bytes from OpenSSL's CSPRNG ([`RAND_bytes`](https://docs.openssl.org/3.0/man3/RAND_bytes/)).
public func secureRandomBytes(_ count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    _ = try out.withUnsafeMutableBytes { buf in
        try cCall { cs_random_bytes(buf.baseAddress, buf.count, $0) }
    }
    return out
}

/// The value of one ASCII hex digit (either case), or nil.
func hexDigitValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hex, as the Laju format stores checksums.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF ([`cs_hkdf_sha256`]): a key of its own for
/// each purpose (`info`) the encryption key is put to besides AES-GCM.
public func hkdfSHA256(key: [UInt8], salt: [UInt8] = [], info: [UInt8], count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    _ = try out.withUnsafeMutableBytes { o in
        try cCall { cs_hkdf_sha256(key, key.count, salt, salt.count, info, info.count, o.baseAddress, o.count, $0) }
    }
    return out
}

/// HMAC-SHA256 of raw buffers into a 32-byte `out`, without copying the page into an array.
@discardableResult
func cHMAC(_ key: UnsafeRawBufferPointer, _ data: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer) -> Int32
{
    cs_hmac_sha256(key.baseAddress, key.count, data.baseAddress, data.count, out.baseAddress, nil)
}
