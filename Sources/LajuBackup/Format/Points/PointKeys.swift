/// The sub-keys of incremental backups (docs/format-incremental.md, 3), each derived from the
/// encryption key with HKDF-SHA256 and a label of its own, so that ids, blocks, manifests and the
/// file digest never share a key with each other or with the full backups' AES-GCM.
///
/// Version 2 keys are derived for one database's identity as well: a manifest, a block or a
/// pack header made for another database does not authenticate under them, so points copied in
/// from another database's namespace are damage, never that database's state. Version 1 keys
/// (points made before identities) are derived from the encryption key alone.
struct PointKeys: Sendable {
    /// 1 or 2, as the namespace the keys belong to.
    let version: Int
    let id: [UInt8]
    let block: [UInt8]
    let point: [UInt8]
    let digest: [UInt8]
    let cache: [UInt8]
    /// Version 2: the key of the MAC in a pack's header; empty for version 1.
    let pack: [UInt8]

    /// The keys of `namespace`: version 2 for a namespace of an identity, else version 1.
    init(_ encryptionKey: EncryptionKey, identity: Identity?) throws {
        func derive(_ use: String) throws -> [UInt8] {
            let label =
                identity.map { "laju-backup incremental \(use) v2\0\($0.text)" } ?? "laju-backup incremental \(use) v1"
            return try hkdfSHA256(key: encryptionKey.bytes, info: Array(label.utf8), count: 32)
        }
        version = identity == nil ? 1 : 2
        id = try derive("block-id")
        block = try derive("block-enc")
        point = try derive("manifest")
        digest = try derive("file-digest")
        cache = try derive("state-cache")
        pack = identity == nil ? [] : try derive("pack-header")
    }

    /// The first bytes of a manifest object.
    var manifestMagic: [UInt8] { Array((version == 1 ? "LJINCPT1" : "LJINCPT2").utf8) }

    /// A pack's header: its magic, and in version 2 a MAC of its name under this identity's key,
    /// which proves the pack is this database's before retention deletes it.
    func packHeader(name: String) -> [UInt8] {
        guard version == 2 else { return Array("LJINCPK1".utf8) }
        return Array("LJINCPK2".utf8) + hmacSHA256(key: pack, data: Array("laju-backup pack header v2\0\(name)".utf8))
    }

    /// The bytes of `packHeader` for this version: what a ranged GET reads to check one.
    var packHeaderSize: Int { version == 1 ? 8 : 40 }

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
