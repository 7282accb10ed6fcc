/// The store's record of a declared identity: `<prefix>identities/<BACKUP_NAME>.json`, binding the
/// name to the one database allowed to write under it (its `DatabaseID`), authenticated under the
/// key. The first backup of a database with a new name writes it; every later backup under that
/// name checks that it comes from the same database, so that a second database (a new app that
/// copied the settings, another host) is refused instead of mixing its backups and points in.
public struct IdentityRecord: Codable, Sendable, Equatable {
    public static let format = "laju-backup identity v1"
    public var format: String
    public var name: String
    /// `DatabaseID.hex` of the database that may write under the name.
    public var databaseID: String
    /// The database's file name when the record was written, and when.
    public var databaseName: String
    public var created: Int64
    /// The database id this record replaced (`backup --claim-name`), if any.
    public var replaces: String?

    enum CodingKeys: String, CodingKey {
        case format, name, created, replaces
        case databaseID = "database_id"
        case databaseName = "database_name"
    }

    public static func key(prefix: String, name: String) -> String { "\(prefix)identities/\(name).json" }

    /// The record of `name`, authenticated; nil when there is none. One that does not
    /// authenticate (written without the key, or altered) is an error, never trusted.
    public static func load(name: String, prefix: String, store: ObjectStore, macKey: [UInt8]) throws -> IdentityRecord?
    {
        let key = Self.key(prefix: prefix, name: name)
        let info: ObjectInfo
        do {
            info = try store.head(key: key)
        } catch let e as LajuError where e.isNotFound {
            return nil
        }
        guard (1...65536).contains(info.size) else {
            throw LajuError(.integrity, "the identity record \(Display.safe(key)) has an impossible size \(info.size)")
        }
        let body = try store.getRange(key: key, offset: 0, length: info.size)
        guard let auth = info.metadata["auth"].flatMap(ObjectMetadata.hexBytes),
            auth == mac(body: body, key: key, macKey: macKey),
            let record = try? JSONDecoder().decode(IdentityRecord.self, from: Data(body)),
            record.format == format, record.name == name, DatabaseID(hex: record.databaseID) != nil
        else {
            throw LajuError(
                .integrity,
                "the identity record \(Display.safe(key)) does not authenticate: it was written without this key, or changed",
                hint:
                    "check BACKUP_ENCRYPTION_KEY; if someone without the key wrote it, delete it and back up again to record this database"
            )
        }
        return record
    }

    /// Stores the record (a new object, or a new version of it where the bucket keeps versions).
    public func write(prefix: String, store: ObjectStore, macKey: [UInt8], scratch: String) throws {
        let key = Self.key(prefix: prefix, name: name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = Array(try encoder.encode(self))
        let file = scratch + "/identity.json"
        unlink(file)
        let writer = try FileWriter(path: file)
        try writer.append(body)
        let (size, md5) = try writer.finish()
        defer { unlink(file) }
        try store.put(
            key: key, file: file, size: size, md5: md5,
            metadata: ["auth": Self.mac(body: body, key: key, macKey: macKey).hexString], progress: nil)
    }

    static func mac(body: [UInt8], key: String, macKey: [UInt8]) -> [UInt8] {
        hmacSHA256(key: macKey, data: Array("laju-backup identity record v1\0\(key)\0".utf8) + body)
    }
}

extension Identity {
    /// The identity a backup (full or point) of the database at `database` writes under, checked
    /// before anything is snapshotted: the database's id is recorded in it when missing; a declared
    /// name must be recorded as this database's (the first backup under a name records it), else
    /// the run is refused naming both databases, unless `claim` takes the name over.
    public static func forWriting(
        settings: Settings, database: String, readStore: ObjectStore, writeStore: ObjectStore,
        encryptionKey: EncryptionKey, claim: Bool, events: @escaping JobEventSink
    ) throws -> Identity {
        let id = try DatabaseID.ensure(path: database, busyTimeoutMilliseconds: try settings.busyTimeout())
        guard let name = try settings.declaredName() else { return .database(id) }
        let prefix = try settings.prefix
        let macKey = try encryptionKey.metadataKey()
        let record: IdentityRecord?
        do {
            record = try IdentityRecord.load(name: name, prefix: prefix, store: readStore, macKey: macKey)
        } catch let e as LajuError where e.isAccessDenied {
            events(
                .warning(
                    "cannot read the identity record of BACKUP_NAME=\(name) with these credentials (\(e.message)): that no other database writes under this name is not checked; set BACKUP_READ_ACCESS_KEY/_SECRET_KEY"
                ))
            return .declared(name)
        }
        if let record, record.databaseID == id.hex { return .declared(name) }
        if let record, !claim {
            throw LajuError(
                .usage,
                "BACKUP_NAME=\(name) is the identity of another database (id \(record.databaseID), \(Display.safe(record.databaseName)), recorded \(LocalTime.logStamp(epochSeconds: Double(record.created) / 1000))); this database, \(database), has id \(id.hex)",
                hint:
                    "give this database a name of its own in BACKUP_NAME; if it replaces that database, pass --claim-name once to take the name over"
            )
        }
        let fresh = IdentityRecord(
            format: IdentityRecord.format, name: name, databaseID: id.hex, databaseName: database.lastPathComponentOf,
            created: LocalTime.nowMilliseconds(), replaces: record?.databaseID)
        let ws = try Workspace(base: settings.tempBase, events: events)
        defer { ws.remove() }
        try fresh.write(prefix: prefix, store: writeStore, macKey: macKey, scratch: ws.path)
        events(
            .step(
                name: "identity",
                summary: record == nil
                    ? "BACKUP_NAME=\(name) recorded as this database's (id \(id.hex))"
                    : "BACKUP_NAME=\(name) taken over from database \(record!.databaseID) (--claim-name)",
                seconds: 0))
        return .declared(name)
    }
}
