internal import CSupport

/// The Laju envelope: gzip then AES-256-GCM, 12-byte IV, 16-byte tag kept apart, no AAD.
/// Streams file to file in bounded memory through `cs_seal_file` / `cs_open_file`.
public enum Envelope {
    public struct Sealed: Sendable {
        public let iv: [UInt8]
        public let tag: [UInt8]
        public let md5: [UInt8]
        public let plainBytes: Int64
        public let objectBytes: Int64
    }

    /// Seals `input` into the new file `output` with a fresh random IV.
    /// `progress` gets (plaintext bytes done, total) and returns false to cancel.
    public static func seal(input: String, output: String, key: EncryptionKey, level: Int32, threads: Int32 = 1,
                            progress: ((Int64, Int64) -> Bool)? = nil) throws -> Sealed {
        let iv = try secureRandomBytes(12)
        var r = cs_seal_result()
        let box = ProgressTrampoline(progress ?? { _, _ in true })
        do {
            try box.with { ctx in
                try cCall { cs_seal_file(input, output, key.bytes, iv, level, threads, ProgressTrampoline.callback, ctx, &r, $0) }
            }
        } catch let error as CError {
            if error.status == .noSpace {
                throw LajuError(.local, error.message, hint: "free space in the temporary directory or set BACKUP_TMPDIR")
            }
            throw LajuError(error.status == .io ? .local : .internal, "sealing failed: \(error.message)")
        }
        return Sealed(iv: iv, tag: withUnsafeBytes(of: r.tag) { Array($0) },
                      md5: withUnsafeBytes(of: r.md5) { Array($0) },
                      plainBytes: r.plain_bytes, objectBytes: r.object_bytes)
    }

    public struct Opened: Sendable {
        public let md5: [UInt8]
        public let objectBytes: Int64
        public let plainBytes: Int64
    }

    /// Opens `input` into the new file `output`. The output is removed on any failure, so an
    /// unauthenticated plaintext never outlives the call.
    public static func open(input: String, output: String, key: EncryptionKey, iv: [UInt8],
                            tag: [UInt8], progress: ((Int64, Int64) -> Bool)? = nil) throws -> Opened {
        guard iv.count == 12, tag.count == 16 else {
            throw LajuError(.integrity, "IV must be 12 bytes and tag 16 bytes (got \(iv.count) and \(tag.count))")
        }
        var r = cs_open_result()
        let box = ProgressTrampoline(progress ?? { _, _ in true })
        do {
            try box.with { ctx in
                try cCall { cs_open_file(input, output, key.bytes, iv, tag, ProgressTrampoline.callback, ctx, &r, $0) }
            }
        } catch let error as CError {
            switch error.status {
            case .authentication:
                throw LajuError(.integrity, "backup does not authenticate: wrong encryption key, or IV/tag that do not belong to this object, or the object was altered",
                                hint: "check BACKUP_ENCRYPTION_KEY is the key that made this backup")
            case .zlib:
                throw LajuError(.integrity, "backup is damaged: \(error.message)")
            case .noSpace:
                throw LajuError(.local, error.message, hint: "free space where the restored file is written")
            case .io:
                throw LajuError(.local, error.message)
            default:
                throw LajuError(.internal, "opening failed: \(error.message)")
            }
        }
        return Opened(md5: withUnsafeBytes(of: r.md5) { Array($0) }, objectBytes: r.object_bytes,
                      plainBytes: r.plain_bytes)
    }
}
