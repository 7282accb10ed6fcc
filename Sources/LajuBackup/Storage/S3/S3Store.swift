/// Placeholder until the S3 store lands (issue 3): fails with a clear message.
public struct S3Configuration: Sendable {
    public init(settings: Settings) throws {
        throw LajuError(.usage, "S3 storage is not available in this build",
                        hint: "set BACKUP_STORAGE=file:///absolute/dir")
    }
}

public final class S3Store: ObjectStore {
    public init(configuration: S3Configuration) throws {}
    public var displayName: String { "s3" }
    public var storageLabel: String { "s3" }
    public func checkAccess() throws {}
    public func put(key: String, file: String, size: Int64, md5: [UInt8], metadata: [String: String], progress: TransferProgress?) throws {}
    public func head(key: String) throws -> ObjectInfo { ObjectInfo(key: key, size: 0) }
    public func get(key: String, to file: String, progress: TransferProgress?) throws {}
    public func delete(key: String) throws -> Bool { false }
    public func list(prefix: String) throws -> [ObjectInfo] { [] }
}
