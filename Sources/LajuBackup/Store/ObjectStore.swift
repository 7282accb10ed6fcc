/// What a store knows about one object.
public struct ObjectInfo: Sendable, Equatable {
    /// S3's largest object (5 TiB).
    public static let maxBytes: Int64 = 5 << 40

    public var key: String
    public var size: Int64
    /// Seconds since the epoch, when the store reports it.
    public var lastModified: Double?
    /// User metadata, lowercase names without any `x-amz-meta-` prefix. Empty from `list`.
    public var metadata: [String: String]
    /// The S3 version this describes, when the store versions objects.
    public var versionID: String?
    /// S3 Object Lock: until when the version cannot be deleted (seconds since the epoch).
    public var lockedUntil: Double?

    public init(
        key: String, size: Int64, lastModified: Double? = nil, metadata: [String: String] = [:],
        versionID: String? = nil, lockedUntil: Double? = nil
    ) {
        self.key = key
        self.size = size
        self.lastModified = lastModified
        self.metadata = metadata
        self.versionID = versionID
        self.lockedUntil = lockedUntil
    }
}

/// What retention's delete did (`ObjectStore.removeBackup`).
public enum RemoveResult: Sendable, Equatable {
    case deleted
    /// Nothing was there.
    case absent
    /// S3 Object Lock keeps it (until when, when known): not a failure; a later run deletes it.
    case locked(until: Double?)
}

/// An upload that never finished: a hidden partial file of a killed run in a local store, or an
/// incomplete multipart upload in S3 (whose parts are billed until it is aborted).
public struct PartialUpload: Sendable, Equatable, Codable {
    /// The object key it was meant for (S3), or the partial file's path under the root (local).
    public var key: String
    /// The multipart UploadId (S3), or nil.
    public var uploadID: String?
    /// When it started (S3 `Initiated`) or was last written (local), seconds since the epoch.
    public var started: Double?
    /// The run that made it is known to be gone (local: its pid is dead).
    public var ownerGone: Bool
}

/// Where backups are kept. Implementations: `LocalStore` (a directory), `S3Store`.
///
/// Every method throws `LajuError`; a missing object is reported with `isNotFound == true`.
/// `put` is all-or-nothing: when it throws, nothing is visible under `key` (multipart uploads
/// are aborted, partial files removed), so the catalog never points at a half-stored object.
/// A store is safe to use from several threads at once (restores fetch on two).
///
/// What only some stores can do is an optional protocol of its own (`VersionedStore`,
/// `FileBackedStore`, `PresigningStore`, `ServerClock`), asked for with `as?`: a job learns what
/// a store can do from those, never from its concrete type.
public protocol ObjectStore: AnyObject, Sendable {
    /// Shown to users, never containing secrets (e.g. `file:///srv/backups`, `s3://bucket at https://host`).
    var displayName: String { get }
    /// The catalog's `storage` column value for objects in this store (`s3` for S3, as the original).
    var storageLabel: String { get }
    /// The digests an upload to this store uses, so that the seal pass computes them on its way
    /// and the upload never reads the object again to hash it.
    var uploadDigestNeeds: UploadDigestNeeds { get }
    /// Cheap preflight, before any temp file exists: the store is reachable and accepts writes.
    func checkAccess() throws
    /// Stores `size` bytes of `file` under `key`; `digests` are the object's (Content-MD5, and
    /// what the seal pass computed besides, so that the upload need not read the object again).
    func put(
        key: String, file: String, size: Int64, digests: ObjectDigests, metadata: [String: String],
        progress: TransferProgress?) throws
    /// Size and metadata of `key`.
    func head(key: String) throws -> ObjectInfo
    /// Downloads `key` into the new file `file`. On failure `file` does not exist.
    func get(key: String, to file: String, progress: TransferProgress?) throws
    /// `length` bytes of `key` from `offset`, into memory (a ranged GET on S3): for the small
    /// pieces point restores need. The caller bounds `length`; fewer bytes is an error.
    func getRange(key: String, offset: Int64, length: Int64) throws -> [UInt8]
    /// Deletes `key`. Deleting an object that does not exist succeeds (returns false).
    @discardableResult
    func delete(key: String) throws -> Bool
    /// Every object whose key starts with `prefix`, in key order.
    func list(prefix: String) throws -> [ObjectInfo]
    /// Uploads under `prefix` that never finished (see `PartialUpload`).
    func partialUploads(prefix: String) throws -> [PartialUpload]
    /// Removes (aborts) one of them.
    func removePartialUpload(_ upload: PartialUpload) throws
}

/// What an upload needs from the seal pass besides the MD5 (`ObjectStore.uploadDigestNeeds`).
public struct UploadDigestNeeds: Sendable, Equatable {
    /// The digests of each part of this size (a multipart upload); 0: one PUT, no parts.
    public var partSize: Int64
    /// The SHA-256 of the object and of each part (payloads signed into the request).
    public var sha256: Bool

    public init(partSize: Int64, sha256: Bool) {
        self.partSize = partSize
        self.sha256 = sha256
    }

    /// The MD5 alone.
    public static let md5Only = UploadDigestNeeds(partSize: 0, sha256: false)
}

/// A store that keeps versions of an object (S3: versioned buckets, Object Lock), so that a
/// deleted or overwritten backup may survive, and deleting one for good means every version.
public protocol VersionedStore: ObjectStore {
    /// Size and metadata of one version of `key`.
    func head(key: String, versionID: String) throws -> ObjectInfo
    /// Downloads one version of `key` into the new file `file`.
    func get(key: String, versionID: String, to file: String, progress: TransferProgress?) throws
    /// Retention's delete: every version once its lock has expired, then the delete markers.
    func removeEveryVersion(key: String) throws -> RemoveResult
    /// When `key` is deleted (its current version a delete marker) but a version survives: the
    /// newest surviving version.
    func newestSurvivingVersion(key: String) throws -> ObjectInfo?
    /// Backups under `prefix` hidden behind delete markers (newest surviving version each).
    func hiddenBackups(prefix: String) throws -> [ObjectInfo]
}

/// A store whose objects are files on this host: a restore reads one where it lies instead of
/// downloading a copy.
public protocol FileBackedStore: ObjectStore {
    /// The file that holds `key` (the key is checked first: nothing outside the store).
    func localPath(key: String) throws -> String
}

/// A store that can hand out a time-limited link to one object (an S3 presigned GET).
public protocol PresigningStore: ObjectStore {
    func presignedGetURL(key: String, expires: Int, date: Date) -> String
}

/// A store whose server checks this host's clock (S3 refuses signatures more than 15 minutes off).
public protocol ServerClock: ObjectStore {
    /// Seconds this host's clock is ahead of the server's (negative: behind).
    func clockOffset() throws -> Double
}

extension ObjectStore {
    /// The store's versions, when it keeps them.
    public var versions: VersionedStore? { self as? VersionedStore }

    /// Size and metadata of one version of `key` (nil: the current one). A store without versions
    /// has only the current one.
    public func head(key: String, version: String?) throws -> ObjectInfo {
        guard let version else { return try head(key: key) }
        guard let versions else { throw LajuError(.storage, "\(displayName) keeps no versions", isNotFound: true) }
        return try versions.head(key: key, versionID: version)
    }

    /// Downloads one version of `key` (nil: the current one).
    public func get(key: String, version: String?, to file: String, progress: TransferProgress?) throws {
        guard let version else { return try get(key: key, to: file, progress: progress) }
        guard let versions else { throw LajuError(.storage, "\(displayName) keeps no versions", isNotFound: true) }
        try versions.get(key: key, versionID: version, to: file, progress: progress)
    }

    /// Retention's delete: every version where the store keeps them (S3 with Object Lock: once
    /// unlocked), else the object.
    public func removeBackup(key: String) throws -> RemoveResult {
        if let versions { return try versions.removeEveryVersion(key: key) }
        return try delete(key: key) ? .deleted : .absent
    }
}

/// The digests of an object to store. `md5` is always there (the format's `checksum`); the rest
/// comes from the seal pass when it was asked for (`FullBackupJob`): the SHA-256 for a signed single
/// PUT, and the digests of each part for a multipart upload in parts of `parts.partSize`.
public struct ObjectDigests: Sendable {
    public var md5: [UInt8]
    public var sha256: [UInt8]?
    public var parts: PartDigests?

    public init(md5: [UInt8], sha256: [UInt8]? = nil, parts: PartDigests? = nil) {
        self.md5 = md5
        self.sha256 = sha256
        self.parts = parts
    }
}

extension ObjectStore {
    /// A put for which only the MD5 is known: any other digest is computed from the file.
    public func put(
        key: String, file: String, size: Int64, md5: [UInt8], metadata: [String: String],
        progress: TransferProgress?
    ) throws {
        try put(
            key: key, file: file, size: size, digests: ObjectDigests(md5: md5), metadata: metadata, progress: progress)
    }
}

/// The digests of each part of an object as the seal pass computed them: an upload in parts of
/// exactly `partSize` bytes sends them as Content-MD5 (and signed SHA-256) without reading the
/// object again.
public struct PartDigests: Sendable, Equatable {
    public let partSize: Int64
    public let md5: [[UInt8]]
    public let sha256: [[UInt8]]?

    public init(partSize: Int64, md5: [[UInt8]], sha256: [[UInt8]]?) {
        self.partSize = partSize
        self.md5 = md5
        self.sha256 = sha256
    }
}

extension Settings {
    /// The configured store, with the credentials of `role` (S3: see `S3Configuration.Role`).
    public func makeStore(role: S3Configuration.Role = .write) throws -> ObjectStore {
        switch try storageKind() {
        case .local(let path): return LocalStore(root: path)
        case .s3: return try S3Store(configuration: S3Configuration(settings: self, role: role))
        }
    }
}
