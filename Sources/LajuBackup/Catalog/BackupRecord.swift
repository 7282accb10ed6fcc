/// One row of `backup_files`, all twelve columns, as the Laju format defines them.
public struct BackupRecord: Sendable, Equatable, Codable {
    public var id: String
    public var key: String
    public var fileName: String
    public var fileSize: Int64
    public var compression: String
    public var storage: String
    /// MD5 hex (lowercase) of the object bytes.
    public var checksum: String
    /// Milliseconds since the epoch, taken after the upload.
    public var uploadedAt: Int64
    public var deletedAt: Int64?
    public var encryption: String
    /// Base64 of the 12-byte IV.
    public var encIV: String
    /// Base64 of the 16-byte tag.
    public var encTag: String

    public init(id: String, key: String, fileName: String, fileSize: Int64, compression: String = "gzip",
                storage: String, checksum: String, uploadedAt: Int64, deletedAt: Int64? = nil,
                encryption: String = "aes-256-gcm", encIV: String, encTag: String) {
        self.id = id
        self.key = key
        self.fileName = fileName
        self.fileSize = fileSize
        self.compression = compression
        self.storage = storage
        self.checksum = checksum
        self.uploadedAt = uploadedAt
        self.deletedAt = deletedAt
        self.encryption = encryption
        self.encIV = encIV
        self.encTag = encTag
    }

    enum CodingKeys: String, CodingKey {
        case id, key, fileName = "file_name", fileSize = "file_size", compression, storage, checksum,
             uploadedAt = "uploaded_at", deletedAt = "deleted_at", encryption, encIV = "enc_iv", encTag = "enc_tag"
    }

    /// All twelve columns, `deleted_at` as `null` while the backup is live (the synthesized
    /// encoder would drop the key, and `list --json` consumers expect the table's shape).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(key, forKey: .key)
        try c.encode(fileName, forKey: .fileName)
        try c.encode(fileSize, forKey: .fileSize)
        try c.encode(compression, forKey: .compression)
        try c.encode(storage, forKey: .storage)
        try c.encode(checksum, forKey: .checksum)
        try c.encode(uploadedAt, forKey: .uploadedAt)
        try c.encode(deletedAt, forKey: .deletedAt)
        try c.encode(encryption, forKey: .encryption)
        try c.encode(encIV, forKey: .encIV)
        try c.encode(encTag, forKey: .encTag)
    }

    /// IV and tag decoded; `nil` when the row holds something else (a row the original wrote
    /// with nullable columns, say).
    public var ivAndTag: (iv: [UInt8], tag: [UInt8])? {
        guard let iv = Data(base64Encoded: encIV), iv.count == 12,
              let tag = Data(base64Encoded: encTag), tag.count == 16 else { return nil }
        return (Array(iv), Array(tag))
    }
}
