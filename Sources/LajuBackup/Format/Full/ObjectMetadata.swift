/// The user metadata stored with every object (S3 `x-amz-meta-*`, or the local store's
/// side file). The first five names and values are the Laju format's and must not change;
/// the rest are ours and the original ignores them.
public struct ObjectMetadata: Equatable, Sendable {
    public var iv: [UInt8]
    public var tag: [UInt8]
    /// MD5 hex of the object bytes.
    public var checksum: String
    public var keyFingerprint: String?
    public var sourceName: String?
    public var sourceBytes: Int64?
    /// Which database this is a backup of, as a keyed hash of its path (`EncryptionKey.sourceID`):
    /// tells two databases with the same file name apart without revealing the path.
    public var sourceID: String?
    public var tool: String?
    /// `comp`: gzip (the Laju format) unless the object says zstd or xz.
    public var compression: Codec
    /// `integrity-mac`: present only when `PRAGMA integrity_check` passed on the snapshot at
    /// backup time; HMAC-SHA256 of the plaintext under `EncryptionKey.integrityMACKey()`. A restore
    /// whose plaintext has the same MAC has rebuilt, byte for byte, a database that passed.
    public var integrityMAC: [UInt8]?
    /// `identity` (format 2): the database this backup belongs to.
    public var identity: Identity?
    /// `auth` (format 2): HMAC-SHA256 under `EncryptionKey.metadataKey()` of every other pair and
    /// the object's full key (`authenticated(pairs:key:macKey:)`): only a holder of the key can
    /// write metadata that says "this is a backup of that database, stored under this key".
    public var auth: [UInt8]?

    public init(
        iv: [UInt8], tag: [UInt8], checksum: String, keyFingerprint: String? = nil,
        sourceName: String? = nil, sourceBytes: Int64? = nil, sourceID: String? = nil, tool: String? = nil,
        compression: Codec = .gzip, integrityMAC: [UInt8]? = nil
    ) {
        self.compression = compression
        self.integrityMAC = integrityMAC
        self.iv = iv
        self.tag = tag
        self.checksum = checksum
        self.keyFingerprint = keyFingerprint
        self.sourceName = sourceName
        self.sourceBytes = sourceBytes
        self.sourceID = sourceID
        self.tool = tool
    }

    /// Header-style pairs, lowercase names without the `x-amz-meta-` prefix.
    public var pairs: [String: String] {
        var m = [
            "algo": "aes-256-gcm",
            "iv": Data(iv).base64EncodedString(),
            "tag": Data(tag).base64EncodedString(),
            "comp": compression.rawValue,
            "checksum": checksum
        ]
        m["key-fingerprint"] = keyFingerprint
        m["source-name"] = sourceName
        m["source-bytes"] = sourceBytes.map(String.init)
        m["source-id"] = sourceID
        m["tool"] = tool
        m["integrity-mac"] = integrityMAC?.hexString
        m["identity"] = identity?.text
        m["auth"] = auth?.hexString
        return m
    }

    /// Binds this metadata to `identity` and to the key the object is stored under.
    public mutating func bind(to identity: Identity, objectKey: String, macKey: [UInt8]) {
        self.identity = identity
        auth = nil
        auth = ObjectMetadata.mac(pairs: pairs, objectKey: objectKey, macKey: macKey)
    }

    /// True when `pairs` carry an `auth` that a holder of the key made for exactly these pairs and
    /// this object key. False for metadata without one (older versions, the Laju scripts) and for
    /// metadata written or changed without the key, or copied from another key.
    public static func authenticated(pairs raw: [String: String], objectKey: String, macKey: [UInt8]) -> Bool {
        var m: [String: String] = [:]
        for (k, v) in raw { m[k.lowercased()] = v }
        guard let text = m.removeValue(forKey: "auth"), let recorded = hexBytes(text), recorded.count == 32 else {
            return false
        }
        return mac(pairs: m, objectKey: objectKey, macKey: macKey) == recorded
    }

    /// HMAC-SHA256 of a label, the object key and every pair but `auth`, sorted by name, each
    /// length-prefixed (so that no two inputs encode alike).
    static func mac(pairs: [String: String], objectKey: String, macKey: [UInt8]) -> [UInt8] {
        var data = Array("laju-backup object metadata v2\0".utf8)
        func field(_ s: String) {
            let b = Array(s.utf8)
            data.append(contentsOf: withUnsafeBytes(of: UInt32(b.count).bigEndian, Array.init))
            data += b
        }
        field(objectKey)
        for (k, v) in pairs.sorted(by: { $0.key < $1.key }) where k != "auth" {
            field(k)
            field(v)
        }
        return hmacSHA256(key: macKey, data: data)
    }

    /// The largest database size we believe (SQLite's own limit is about 281 TB).
    public static let maxSourceBytes: Int64 = 1 << 50

    /// Reads metadata written by us or by the original scripts. Names are case-insensitive.
    public init(pairs raw: [String: String]) throws {
        var m: [String: String] = [:]
        for (k, v) in raw { m[k.lowercased()] = v }
        if let algo = m["algo"], algo.lowercased() != "aes-256-gcm" {
            throw LajuError(.integrity, "object uses encryption \(Display.quoted(algo)), not aes-256-gcm")
        }
        if let comp = m["comp"] {
            guard let codec = Codec(stored: comp) else {
                throw LajuError(.integrity, "object uses compression \(Display.quoted(comp)), not gzip, zstd or xz")
            }
            self.compression = codec
        } else {
            self.compression = .gzip
        }
        guard let ivText = m["iv"], let iv = Data(base64Encoded: ivText), iv.count == 12,
            let tagText = m["tag"], let tag = Data(base64Encoded: tagText), tag.count == 16
        else {
            throw LajuError(
                .integrity, "object metadata lacks a valid iv/tag",
                hint: "it was not made by laju-backup or the Laju scripts")
        }
        self.iv = Array(iv)
        self.tag = Array(tag)
        self.checksum = m["checksum"]?.lowercased() ?? ""
        self.keyFingerprint = m["key-fingerprint"]
        self.sourceName = m["source-name"]
        if let text = m["source-bytes"] {
            // Used to size temp space: a hostile value must not overflow the arithmetic.
            guard let n = Int64(text), (0...ObjectMetadata.maxSourceBytes).contains(n) else {
                throw LajuError(
                    .integrity, "object metadata source-bytes=\(Display.quoted(text)) is not a database size")
            }
            self.sourceBytes = n
        } else {
            self.sourceBytes = nil
        }
        self.sourceID = m["source-id"]
        self.tool = m["tool"]
        if let text = m["integrity-mac"] {
            // Exactly 64 hex digits, or the record is refused: it decides whether a check runs.
            guard text.utf8.count == 64, let mac = ObjectMetadata.hexBytes(text) else {
                throw LajuError(
                    .integrity, "object metadata integrity-mac=\(Display.quoted(text)) is not an HMAC-SHA256")
            }
            self.integrityMAC = mac
        } else {
            self.integrityMAC = nil
        }
        if let text = m["identity"] {
            guard let identity = Identity(parsing: text) else {
                throw LajuError(.integrity, "object metadata identity=\(Display.quoted(text)) is not an identity")
            }
            self.identity = identity
        }
        if let text = m["auth"] {
            guard text.utf8.count == 64, let mac = ObjectMetadata.hexBytes(text) else {
                throw LajuError(.integrity, "object metadata auth=\(Display.quoted(text)) is not an HMAC-SHA256")
            }
            self.auth = mac
        }
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = hexDigitValue(u[i]), let lo = hexDigitValue(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
