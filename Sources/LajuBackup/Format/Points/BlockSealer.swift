internal import CSupport

/// A reusable zlib compressor/decompressor for pages (`cs_zblock`); owns its C handle.
final class ZBlock {
    private let handle: OpaquePointer

    init(level: Int32 = 6) throws {
        var err = cs_error()
        guard let h = cs_zblock_new(level, &err) else {
            throw LajuError(.internal, "zlib could not be initialised")
        }
        handle = h
    }
    deinit { cs_zblock_free(handle) }

    /// The zlib stream of `input`, or nil when it would not be smaller than `input`.
    func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: max(input.count - 1, 1))
        var n = 0
        let rc = out.withUnsafeMutableBytes { o in
            cs_zblock_compress(handle, input.baseAddress, input.count, o.baseAddress, o.count, &n, nil)
        }
        guard rc == CS_OK else { return nil }
        out.removeLast(out.count - n)
        return out
    }

    /// Inflates into exactly `size` bytes; nil when the stream is damaged or of another size.
    func decompress(_ input: ArraySlice<UInt8>, size: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: size)
        var n = 0
        let rc = out.withUnsafeMutableBytes { o in
            input.withUnsafeBytes { i in
                cs_zblock_decompress(handle, i.baseAddress, i.count, o.baseAddress, o.count, &n, nil)
            }
        }
        guard rc == CS_OK, n == size else { return nil }
        return out
    }
}

/// Sealed blocks (docs/format-incremental.md, 4.1): `nonce || GCM(codec || payload) || tag`
/// under K_block, the block id bound as AAD.
struct BlockSealer {
    static let codecStored: UInt8 = 0
    static let codecZlib: UInt8 = 1
    static let aadLabel = Array("laju-backup incremental block v1".utf8)
    static let overhead = 12 + 16 + 1

    /// The largest sealed block a page of `pageSize` may have; anything longer is refused
    /// before it is read.
    static func maxSealedLength(pageSize: Int) -> Int { overhead + pageSize + 1024 }

    let keys: PointKeys
    let zlib: ZBlock

    init(keys: PointKeys) throws {
        self.keys = keys
        zlib = try ZBlock()
    }

    func seal(page: UnsafeRawBufferPointer, id: BlockID) throws -> [UInt8] {
        var plain: [UInt8]
        if let z = zlib.compress(page) {
            plain = [Self.codecZlib] + z
        } else {
            plain = [Self.codecStored]
            plain.append(contentsOf: page)
        }
        let nonce = try secureRandomBytes(12)
        let (ct, tag) = try AESGCM.seal(key: keys.block, iv: nonce, aad: Self.aadLabel + id.bytes, plaintext: plain)
        return nonce + ct + tag
    }

    /// The page in `sealed`, checked: tag, codec, size, and that its keyed id is `id`. The
    /// failure says what was wrong, for the message naming the pack.
    func open(_ sealed: ArraySlice<UInt8>, id: BlockID, pageSize: Int) -> Result<[UInt8], BlockError> {
        guard sealed.count >= Self.overhead, sealed.count <= Self.maxSealedLength(pageSize: pageSize) else {
            return .failure(.init("a block has an impossible length \(sealed.count)"))
        }
        let s = sealed.startIndex
        let nonce = Array(sealed[s..<(s + 12)])
        let ct = Array(sealed[(s + 12)..<(sealed.endIndex - 16)])
        let tag = Array(sealed[(sealed.endIndex - 16)...])
        guard
            let plain = try? AESGCM.open(
                key: keys.block, iv: nonce, aad: Self.aadLabel + id.bytes, ciphertext: ct, tag: tag)
        else {
            return .failure(.init("a block's authentication tag does not verify"))
        }
        let page: [UInt8]
        switch plain.first {
        case Self.codecStored:
            guard plain.count == pageSize + 1 else {
                return .failure(.init("a stored block has \(plain.count - 1) bytes, not \(pageSize)"))
            }
            page = Array(plain.dropFirst())
        case Self.codecZlib:
            guard let p = zlib.decompress(plain.dropFirst(), size: pageSize) else {
                return .failure(.init("a block's zlib stream is damaged"))
            }
            page = p
        default:
            return .failure(.init("a block names unknown codec \(plain.first ?? 255)"))
        }
        let actual = page.withUnsafeBytes { keys.blockID($0) }
        guard actual == id else { return .failure(.init("a block's content does not match its id")) }
        return .success(page)
    }
}

struct BlockError: Error {
    let message: String
    init(_ m: String) { message = m }
}
