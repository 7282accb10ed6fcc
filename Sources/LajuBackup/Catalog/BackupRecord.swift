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

    public init(
        id: String, key: String, fileName: String, fileSize: Int64, compression: String = "gzip",
        storage: String, checksum: String, uploadedAt: Int64, deletedAt: Int64? = nil,
        encryption: String = "aes-256-gcm", encIV: String, encTag: String
    ) {
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
            let tag = Data(base64Encoded: encTag), tag.count == 16
        else { return nil }
        return (Array(iv), Array(tag))
    }

    /// Milliseconds before which an `uploaded_at` is taken for seconds (1973-03-03): the
    /// original guide calls the column a "Unix timestamp", and a row in seconds would sort as 1970
    /// and be deleted by the first retention run.
    public static let earliestMilliseconds: Int64 = 100_000_000_000
    /// 9999-12-31T23:59:59.999Z: later values are not times.
    public static let latestMilliseconds: Int64 = 253_402_300_799_999

    /// Checks one raw row. Hard failures (unusable key, no id, an `uploaded_at` that is not a time
    /// in milliseconds) make it a `BadRow`; missing optional values of Laju's nullable schema get
    /// the original's defaults (`gzip`, `s3`) or stay empty (IV, tag, checksum then come from the
    /// object's metadata at restore).
    public static func decode(_ r: Database.Row) -> Result<BackupRecord, BadRow> {
        let id = r["id"]?.string
        let key = r["key"].flatMap { v -> String? in
            if case .text(let t) = v { return t }; return nil
        }
        func bad(_ problem: String) -> Result<BackupRecord, BadRow> {
            .failure(BadRow(id: id ?? "(null)", key: key, problem: problem))
        }
        guard let id, !id.isEmpty else { return bad("id is empty") }
        guard let key else { return bad("key is not text") }
        if let p = ObjectKey.problem(key) { return bad(p) }
        guard case .integer(let uploadedAt) = r["uploaded_at"] ?? .null else {
            return bad(
                "uploaded_at is not a whole number of milliseconds (\(Display.safe(r["uploaded_at"]?.string ?? "NULL")))"
            )
        }
        guard (earliestMilliseconds...latestMilliseconds).contains(uploadedAt) else {
            return bad(
                "uploaded_at \(uploadedAt) is not a time in milliseconds since 1970 (seconds instead of milliseconds?)")
        }
        var deletedAt: Int64?
        switch r["deleted_at"] ?? .null {
        case .null: deletedAt = nil
        case .integer(let v): deletedAt = v
        default: return bad("deleted_at is not NULL or a whole number")
        }
        var fileSize: Int64 = 0
        switch r["file_size"] ?? .null {
        case .null: fileSize = 0
        case .integer(let v) where (0...ObjectInfo.maxBytes).contains(v): fileSize = v
        default: return bad("file_size is not a size in bytes")
        }
        func text(_ name: String, _ fallback: String) -> String {
            if case .text(let t) = r[name] ?? .null { return t }
            return fallback
        }
        return .success(
            BackupRecord(
                id: id, key: key, fileName: text("file_name", key.lastPathComponentOf),
                fileSize: fileSize, compression: text("compression", "gzip"),
                storage: text("storage", "s3"), checksum: text("checksum", ""),
                uploadedAt: uploadedAt, deletedAt: deletedAt,
                encryption: text("encryption", "aes-256-gcm"),
                encIV: text("enc_iv", ""), encTag: text("enc_tag", "")))
    }
}

/// A catalog row that no command acts on, and why.
public struct BadRow: Error, Codable, Sendable, Equatable {
    public var id: String
    public var key: String?
    public var problem: String
}

/// All rows of the catalog after checking: usable ones newest first, and the bad ones.
public struct CatalogScan: Sendable {
    public var records: [BackupRecord]
    public var bad: [BadRow]

    /// Rows of `scope` (see `BackupScope`); `others` are rows of other databases or prefixes.
    public func split(_ scope: BackupScope) -> (ours: [BackupRecord], others: [BackupRecord]) {
        var ours: [BackupRecord] = [], others: [BackupRecord] = []
        for r in records { if scope.ownsRow(key: r.key) { ours.append(r) } else { others.append(r) } }
        return (ours, others)
    }
}
