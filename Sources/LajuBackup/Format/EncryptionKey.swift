/// The 32-byte AES-256 key, parsed from `BACKUP_ENCRYPTION_KEY` exactly as the original Laju
/// scripts do (Node's `Buffer.from`): the first of base64, hex, raw UTF-8 that yields 32 bytes.
///
/// The key bytes never appear in `description`, messages or logs.
public struct EncryptionKey: CustomStringConvertible, Sendable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else {
            throw LajuError(.usage, "encryption key must be 32 bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// Parses a key string as the original does; on failure says what each decoding gave.
    public init(parsing text: String) throws {
        let b64 = EncryptionKey.nodeBase64(text)
        if b64.count == 32 { self.bytes = b64; return }
        let hex = EncryptionKey.nodeHex(text)
        if hex.count == 32 { self.bytes = hex; return }
        let raw = Array(text.utf8)
        if raw.count == 32 { self.bytes = raw; return }
        throw LajuError(
            .usage,
            "BACKUP_ENCRYPTION_KEY does not decode to 32 bytes (as base64: \(b64.count) bytes, as hex: \(hex.count) bytes, as text: \(raw.count) bytes)",
            hint: "generate one with `laju-backup keygen` (a key that made existing backups must be kept as it is)")
    }

    /// A short, one-way fingerprint (HMAC-SHA256 of a fixed label under the key, 8 bytes hex).
    /// Stored in our object metadata so restore can say "wrong key" before downloading.
    public var fingerprint: String {
        Array(hmacSHA256(key: bytes, data: Array("laju-backup key fingerprint v1".utf8)).prefix(8)).hexString
    }

    /// The source id of a database in our metadata: HMAC-SHA256 under the key of a fixed label and
    /// the database's path (its folder resolved, its name as configured), 8 bytes hex. Two
    /// applications whose databases share a file name, a bucket and a key still differ here; the
    /// path itself never reaches the store.
    public func sourceID(databasePath: String) -> String {
        let path = canonicalPath(databasePath) ?? databasePath
        return Array(hmacSHA256(key: bytes, data: Array("laju-backup source id v1\n\(path)".utf8)).prefix(8)).hexString
    }

    public var description: String { "EncryptionKey(fingerprint: \(fingerprint))" }

    /// The key of the integrity MAC (`ObjectMetadata.integrityMAC`): HKDF-SHA256 of the encryption
    /// key with a label that names the claim, so the MAC vouches for "these are the bytes of a
    /// snapshot that passed PRAGMA integrity_check" and for nothing else, and reveals nothing
    /// about the encryption key. Only a holder of the key can make or check it.
    public func integrityMACKey() throws -> [UInt8] {
        try hkdfSHA256(
            key: bytes,
            info: Array("laju-backup v1: HMAC-SHA256 of a snapshot that passed PRAGMA integrity_check".utf8), count: 32)
    }

    /// The key of the metadata MAC (`ObjectMetadata.auth`), which binds a full backup's metadata to
    /// its database's identity and to its object key.
    public func metadataKey() throws -> [UInt8] {
        try hkdfSHA256(
            key: bytes, info: Array("laju-backup v2: HMAC-SHA256 of a full backup's metadata".utf8), count: 32)
    }

    /// A fresh random key.
    public static func generate() throws -> EncryptionKey { try EncryptionKey(bytes: secureRandomBytes(32)) }

    /// The characters Node's decoders see: `Buffer.from(s, 'base64' | 'hex')` reads the string's
    /// UTF-16 code units truncated to their low byte (so "ł" U+0142 reads as "B", and the first
    /// half of an emoji as "="), not its UTF-8 bytes.
    static func nodeCodeUnits(_ text: String) -> [UInt8] {
        text.utf16.map { UInt8(truncatingIfNeeded: $0) }
    }

    /// Node's lenient base64 decoder: both alphabets, padding optional, decoding stops at the
    /// first `=`, any other character (whitespace included) is skipped.
    static func nodeBase64(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for c in nodeCodeUnits(text) {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): v = 63
            case UInt8(ascii: "="): return out
            default: continue
            }
            acc = (acc << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xff))
            }
        }
        return out
    }

    /// Node's hex decoder: pairs of hex digits, stopping at the first pair that is not hex.
    static func nodeHex(_ text: String) -> [UInt8] {
        let u = nodeCodeUnits(text)
        var out: [UInt8] = []
        var i = 0
        while i + 1 < u.count, let hi = hexDigitValue(u[i]), let lo = hexDigitValue(u[i + 1]) {
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

extension Settings {
    /// The encryption key, parsed the Laju way. Never logged.
    public func encryptionKey() throws -> EncryptionKey {
        guard let text = environment["BACKUP_ENCRYPTION_KEY"] else {
            throw LajuError(
                .usage, "BACKUP_ENCRYPTION_KEY is not set",
                hint: "generate one with `laju-backup keygen` and put it in the env file")
        }
        return try EncryptionKey(parsing: text)
    }
}
