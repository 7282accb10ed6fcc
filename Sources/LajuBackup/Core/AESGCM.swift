internal import CSupport

/// One-shot AES-256-GCM over memory ([`EVP_aes_256_gcm`](https://docs.openssl.org/3.0/man3/EVP_EncryptInit/#gcm-and-ocb-modes)).
/// Objects are sealed by the streaming `Envelope`; this exists for small data and the test vectors.
public enum AESGCM {
    public static func seal(
        key: [UInt8], iv: [UInt8], aad: [UInt8] = [], plaintext: [UInt8],
        tagLength: Int = 16
    ) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        var out = [UInt8](repeating: 0, count: plaintext.count)
        var tag = [UInt8](repeating: 0, count: tagLength)
        try cCall { err in
            out.withUnsafeMutableBytes { o in
                tag.withUnsafeMutableBytes { t in
                    cs_aes256gcm_encrypt(
                        key, iv, iv.count, aad, aad.count, plaintext, plaintext.count,
                        o.baseAddress, t.baseAddress, t.count, err)
                }
            }
        }
        return (out, tag)
    }

    /// Throws `CError` with status `.authentication` when the tag does not verify.
    public static func open(
        key: [UInt8], iv: [UInt8], aad: [UInt8] = [], ciphertext: [UInt8],
        tag: [UInt8]
    ) throws -> [UInt8] {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        var out = [UInt8](repeating: 0, count: ciphertext.count)
        try cCall { err in
            out.withUnsafeMutableBytes { o in
                cs_aes256gcm_decrypt(
                    key, iv, iv.count, aad, aad.count, ciphertext, ciphertext.count,
                    o.baseAddress, tag, tag.count, err)
            }
        }
        return out
    }

    /// Seals `buffer` where it lies (OpenSSL's GCM allows the output to be the input): for large
    /// messages whose second copy would count against the memory bound. Returns the tag.
    static func sealInPlace(
        key: [UInt8], iv: [UInt8], aad: [UInt8], buffer: UnsafeMutableRawBufferPointer,
        tagLength: Int = 16
    ) throws -> [UInt8] {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        var tag = [UInt8](repeating: 0, count: tagLength)
        try cCall { err in
            tag.withUnsafeMutableBytes { t in
                cs_aes256gcm_encrypt(
                    key, iv, iv.count, aad, aad.count, buffer.baseAddress, buffer.count,
                    buffer.baseAddress, t.baseAddress, t.count, err)
            }
        }
        return tag
    }

    /// Opens `buffer` where it lies; throws like `open` when the tag does not verify, and the
    /// buffer then holds unauthenticated bytes that the caller must discard.
    static func openInPlace(
        key: [UInt8], iv: [UInt8], aad: [UInt8], buffer: UnsafeMutableRawBufferPointer,
        tag: [UInt8]
    ) throws {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        try cCall { err in
            cs_aes256gcm_decrypt(
                key, iv, iv.count, aad, aad.count, buffer.baseAddress, buffer.count,
                buffer.baseAddress, tag, tag.count, err)
        }
    }
}

/// One AES-256-GCM message sealed or opened piece by piece ([`cs_gcm_new`], OpenSSL's EVP
/// update/final), so that a message larger than memory should hold (the manifest of a large
/// database) never needs one buffer. Owns its C context.
final class GCMStream {
    private let ctx: OpaquePointer
    let sealing: Bool

    init(sealing: Bool, key: [UInt8], iv: [UInt8], aad: [UInt8]) throws {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        var made: OpaquePointer?
        try cCall { err in
            made = cs_gcm_new(sealing ? 1 : 0, key, iv, iv.count, aad, aad.count, err)
            return made == nil ? err.pointee.status : CS_OK
        }
        ctx = made!
        self.sealing = sealing
    }

    deinit { cs_gcm_free(ctx) }

    /// Encrypts or decrypts `buffer` where it lies.
    func update(_ buffer: UnsafeMutableRawBufferPointer) throws {
        guard buffer.count > 0 else { return }
        try cCall { err in cs_gcm_update(ctx, buffer.baseAddress, buffer.count, buffer.baseAddress, err) }
    }

    /// Sealing: the tag. Opening: checks `tag` (CError `.authentication` when it does not verify).
    func finish(tag: [UInt8] = []) throws -> [UInt8] {
        var t = sealing ? [UInt8](repeating: 0, count: 16) : tag
        try cCall { err in t.withUnsafeMutableBytes { cs_gcm_final(ctx, $0.baseAddress, $0.count, err) } }
        return t
    }
}
