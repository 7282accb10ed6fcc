internal import CSupport

/// The Laju envelope: gzip (or zstd/xz, `Codec`) then AES-256-GCM, 12-byte IV, 16-byte tag kept
/// apart, no AAD. Streams file to file in bounded memory through `cs_seal_file_ex` /
/// `cs_open_file_ex`, which also compute in the same pass every digest the store needs.
public enum Envelope {
    public struct Sealed: Sendable {
        public let iv: [UInt8]
        public let tag: [UInt8]
        public let md5: [UInt8]
        public let plainBytes: Int64
        public let objectBytes: Int64
        /// SHA-256 of the object (only when asked for: signed S3 payloads).
        public let sha256: [UInt8]?
        /// Digests of each `partSize` piece of the object, for a multipart upload.
        public let parts: PartDigests?
        /// HMAC-SHA256 of the plaintext under the given MAC key.
        public let plainMAC: [UInt8]?
    }

    /// What the seal pass computes besides the object.
    public struct Options: Sendable {
        public var codec: Codec = .gzip
        public var level: Int32 = 6
        public var threads: Int32 = 1
        /// > 0: the digests of each piece of this size (the upload's part size).
        public var partSize: Int64 = 0
        /// SHA-256 of the object and of each part too.
        public var sha256 = false
        /// 32 bytes: HMAC-SHA256 of the plaintext.
        public var macKey: [UInt8]?
        public init(
            codec: Codec = .gzip, level: Int32 = 6, threads: Int32 = 1, partSize: Int64 = 0,
            sha256: Bool = false, macKey: [UInt8]? = nil
        ) {
            self.codec = codec
            self.level = level
            self.threads = threads
            self.partSize = partSize
            self.sha256 = sha256
            self.macKey = macKey
        }
    }

    /// Seals `input` into the new file `output` with a fresh random IV.
    /// `progress` gets (plaintext bytes done, total) and returns false to cancel.
    public static func seal(
        input: String, output: String, encryptionKey: EncryptionKey, level: Int32, threads: Int32 = 1,
        progress: ((Int64, Int64) -> Bool)? = nil
    ) throws -> Sealed {
        try seal(
            input: input, output: output, encryptionKey: encryptionKey,
            options: Options(level: level, threads: threads), progress: progress)
    }

    public static func seal(
        input: String, output: String, encryptionKey: EncryptionKey, options: Options,
        progress: ((Int64, Int64) -> Bool)? = nil
    ) throws -> Sealed {
        if let k = options.macKey, k.count != 32 { throw LajuError(.internal, "MAC key must be 32 bytes") }
        let iv = try secureRandomBytes(12)
        var r = cs_seal_result()
        let box = ProgressTrampoline(progress ?? { _, _ in true })
        let collector = PartCollector()
        do {
            try box.with { ctx in
                try withExtendedLifetime(collector) {
                    var o = cs_seal_options()
                    o.codec = options.codec.cValue
                    o.level = options.level
                    o.threads = options.threads
                    o.part_size = options.partSize
                    o.sha256 = options.sha256 ? 1 : 0
                    o.part_fn = PartCollector.callback
                    o.part_ctx = Unmanaged.passUnretained(collector).toOpaque()
                    if let macKey = options.macKey {
                        try macKey.withUnsafeBytes { mk in
                            o.mac_key = mk.baseAddress
                            try cCall {
                                cs_seal_file_ex(
                                    input, output, encryptionKey.bytes, iv, &o, ProgressTrampoline.callback, ctx, &r, $0
                                )
                            }
                        }
                    } else {
                        try cCall {
                            cs_seal_file_ex(
                                input, output, encryptionKey.bytes, iv, &o, ProgressTrampoline.callback, ctx, &r, $0)
                        }
                    }
                }
            }
        } catch let error as CError {
            if error.status == .noSpace {
                throw LajuError(
                    .local, error.message, hint: "free space in the temporary directory or set BACKUP_TMPDIR")
            }
            throw LajuError(error.status == .io ? .local : .internal, "sealing failed: \(error.message)")
        }
        let parts =
            options.partSize > 0
            ? PartDigests(
                partSize: options.partSize, md5: collector.md5, sha256: options.sha256 ? collector.sha256 : nil)
            : nil
        return Sealed(
            iv: iv, tag: withUnsafeBytes(of: r.tag) { Array($0) },
            md5: withUnsafeBytes(of: r.md5) { Array($0) },
            plainBytes: r.plain_bytes, objectBytes: r.object_bytes,
            sha256: options.sha256 ? withUnsafeBytes(of: r.sha256) { Array($0) } : nil,
            parts: parts,
            plainMAC: options.macKey == nil ? nil : withUnsafeBytes(of: r.plain_mac) { Array($0) })
    }

    public struct Opened: Sendable {
        public let md5: [UInt8]
        public let objectBytes: Int64
        public let plainBytes: Int64
        /// HMAC-SHA256 of the plaintext written, when a MAC key was given.
        public let plainMAC: [UInt8]?
    }

    /// Opens `input` into the new file `output`. The output is removed on any failure, so an
    /// unauthenticated plaintext never outlives the call. When the tag does not verify and
    /// `expectedMD5` is given, the MD5 of the same pass tells a damaged object from a wrong key.
    public static func open(
        input: String, output: String, encryptionKey: EncryptionKey, iv: [UInt8],
        tag: [UInt8], codec: Codec = .gzip, macKey: [UInt8]? = nil,
        expectedMD5: [UInt8]? = nil,
        progress: ((Int64, Int64) -> Bool)? = nil
    ) throws -> Opened {
        guard iv.count == 12, tag.count == 16 else {
            throw LajuError(.integrity, "IV must be 12 bytes and tag 16 bytes (got \(iv.count) and \(tag.count))")
        }
        if let k = macKey, k.count != 32 { throw LajuError(.internal, "MAC key must be 32 bytes") }
        var r = cs_open_result()
        let box = ProgressTrampoline(progress ?? { _, _ in true })
        do {
            try box.with { ctx in
                if let macKey {
                    try macKey.withUnsafeBytes { mk in
                        try cCall {
                            cs_open_file_ex(
                                input, output, encryptionKey.bytes, iv, tag, codec.cValue, mk.baseAddress,
                                ProgressTrampoline.callback, ctx, &r, $0)
                        }
                    }
                } else {
                    try cCall {
                        cs_open_file_ex(
                            input, output, encryptionKey.bytes, iv, tag, codec.cValue, nil, ProgressTrampoline.callback,
                            ctx, &r, $0)
                    }
                }
            }
        } catch let error as CError {
            switch error.status {
            case .authentication:
                let md5 = withUnsafeBytes(of: r.md5) { Array($0) }
                if let expectedMD5, md5 != expectedMD5 {
                    throw LajuError(
                        .integrity,
                        "backup is damaged: MD5 \(md5.hexString) differs from the recorded \(expectedMD5.hexString) (truncated or altered object)",
                        hint: "restore an older backup (`laju-backup list`)")
                }
                throw LajuError(
                    .integrity,
                    "backup does not authenticate: wrong encryption key, or IV/tag that do not belong to this object, or the object was altered",
                    hint: "check BACKUP_ENCRYPTION_KEY is the key that made this backup")
            case .zlib, .archive:
                throw LajuError(.integrity, "backup is damaged: \(error.message)")
            case .noSpace:
                throw LajuError(.local, error.message, hint: "free space where the restored file is written")
            case .io:
                throw LajuError(.local, error.message)
            default:
                throw LajuError(.internal, "opening failed: \(error.message)")
            }
        }
        return Opened(
            md5: withUnsafeBytes(of: r.md5) { Array($0) }, objectBytes: r.object_bytes,
            plainBytes: r.plain_bytes,
            plainMAC: macKey == nil ? nil : withUnsafeBytes(of: r.plain_mac) { Array($0) })
    }
}

/// Collects the per-part digests the C seal pass reports (`cs_part_fn`), on the sealing thread.
final class PartCollector {
    var md5: [[UInt8]] = []
    var sha256: [[UInt8]] = []

    static let callback: cs_part_fn = { ctx, index, _, _, md5, sha in
        guard let ctx, let md5 else { return 1 }
        let box = Unmanaged<PartCollector>.fromOpaque(ctx).takeUnretainedValue()
        guard index == Int64(box.md5.count) else { return 1 }
        box.md5.append(Array(UnsafeRawBufferPointer(start: md5, count: 16)))
        if let sha { box.sha256.append(Array(UnsafeRawBufferPointer(start: sha, count: 32))) }
        return 0
    }
}
