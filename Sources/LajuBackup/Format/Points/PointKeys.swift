/// The sub-keys of incremental backups (docs/format-incremental.md, 3), each derived from the
/// encryption key with HKDF-SHA256 and a label of its own, so that ids, blocks, manifests and the
/// file digest never share a key with each other or with the full backups' AES-GCM.
struct PointKeys: Sendable {
    let id: [UInt8]
    let block: [UInt8]
    let point: [UInt8]
    let digest: [UInt8]
    let cache: [UInt8]

    init(_ encryptionKey: EncryptionKey) throws {
        func derive(_ label: String) throws -> [UInt8] {
            try hkdfSHA256(key: encryptionKey.bytes, info: Array(label.utf8), count: 32)
        }
        id = try derive("laju-backup incremental block-id v1")
        block = try derive("laju-backup incremental block-enc v1")
        point = try derive("laju-backup incremental manifest v1")
        digest = try derive("laju-backup incremental file-digest v1")
        cache = try derive("laju-backup incremental state-cache v1")
    }

    /// The keyed id of a page: the store never sees it, and it reveals nothing without the key.
    func blockID(_ page: UnsafeRawBufferPointer) -> BlockID {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { o in
            id.withUnsafeBytes { k in _ = cHMAC(k, page, o) }
        }
        return BlockID(bytes: out[0..<16])
    }

    /// HMAC(K_digest, label || page size || page count || SHA-256 of the file).
    func fileDigest(sha256: [UInt8], pageSize: Int, pageCount: Int) -> [UInt8] {
        var data = Array("laju-backup file digest v1".utf8)
        data.appendBE(UInt32(pageSize))
        data.appendBE(UInt64(pageCount))
        data += sha256
        return hmacSHA256(key: digest, data: data)
    }
}

/// The 128-bit keyed id of a block, as two words so that it hashes and compares cheaply.
struct BlockID: Hashable, Sendable {
    var hi: UInt64
    var lo: UInt64

    init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }

    init<C: Collection>(bytes: C) where C.Element == UInt8 {
        precondition(bytes.count == 16)
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        hi = h
        lo = l
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        out.appendBE(hi)
        out.appendBE(lo)
        return out
    }

    /// No HMAC output is all zeros in practice; used to mark "no block yet" in page maps.
    static let zero = BlockID(hi: 0, lo: 0)
}
