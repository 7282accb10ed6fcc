internal import CSupport

/// One-shot AES-256-GCM over memory ([`EVP_aes_256_gcm`](https://docs.openssl.org/3.0/man3/EVP_EncryptInit/#gcm-and-ocb-modes)).
/// Objects are sealed by the streaming `Envelope`; this exists for small data and the test vectors.
public enum AESGCM {
    public static func seal(key: [UInt8], iv: [UInt8], aad: [UInt8] = [], plaintext: [UInt8],
                            tagLength: Int = 16) throws -> (ciphertext: [UInt8], tag: [UInt8]) {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        var out = [UInt8](repeating: 0, count: plaintext.count)
        var tag = [UInt8](repeating: 0, count: tagLength)
        try cCall { err in
            out.withUnsafeMutableBytes { o in tag.withUnsafeMutableBytes { t in
                cs_aes256gcm_encrypt(key, iv, iv.count, aad, aad.count, plaintext, plaintext.count,
                                     o.baseAddress, t.baseAddress, t.count, err)
            } }
        }
        return (out, tag)
    }

    /// Throws `CError` with status `.authentication` when the tag does not verify.
    public static func open(key: [UInt8], iv: [UInt8], aad: [UInt8] = [], ciphertext: [UInt8],
                            tag: [UInt8]) throws -> [UInt8] {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        var out = [UInt8](repeating: 0, count: ciphertext.count)
        try cCall { err in
            out.withUnsafeMutableBytes { o in
                cs_aes256gcm_decrypt(key, iv, iv.count, aad, aad.count, ciphertext, ciphertext.count,
                                     o.baseAddress, tag, tag.count, err)
            }
        }
        return out
    }
}
