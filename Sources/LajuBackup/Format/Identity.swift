/// Which database a backup, a point or an identity record belongs to: known, not inferred from a
/// path, a file name or a host.
///
/// - Declared, `name:<BACKUP_NAME>`: the administrator names the database, as pgBackRest's stanza
///   does. The store keeps an identity record binding the name to one database (`IdentityRecord`),
///   so that another database cannot write under it; the name survives a restore to another host
///   and another path, and a disaster restore needs nothing but the settings and the key.
/// - Otherwise the database's own id, `db:<32 hex>` (`DatabaseID`, kept inside the database).
///
/// Every full backup (metadata version 2) and every point (format version 2) is bound to its
/// identity under the key (the metadata's `auth`; keys derived for the identity): one copied in
/// from another database, or metadata written without the key, does not authenticate and is
/// never taken for this database's.
public struct Identity: Sendable, Hashable, CustomStringConvertible {
    /// `name:<name>` or `db:<32 hex>`.
    public let text: String

    public static func declared(_ name: String) -> Identity { Identity(text: "name:" + name) }
    public static func database(_ id: DatabaseID) -> Identity { Identity(text: "db:" + id.hex) }

    private init(text: String) { self.text = text }

    /// An identity as metadata and records spell it; nil for anything else.
    public init?(parsing text: String) {
        if text.hasPrefix("name:"), Identity.isValidName(String(text.dropFirst(5))) {
            self.text = text
        } else if text.hasPrefix("db:"), DatabaseID(hex: String(text.dropFirst(3))) != nil {
            self.text = text
        } else {
            return nil
        }
    }

    public var description: String { text }
    public var declaredName: String? { text.hasPrefix("name:") ? String(text.dropFirst(5)) : nil }
    public var databaseID: DatabaseID? { text.hasPrefix("db:") ? DatabaseID(hex: String(text.dropFirst(3))) : nil }

    /// How messages name it: `BACKUP_NAME=shop` or `database id 1f3c...`.
    public var display: String { declaredName.map { "BACKUP_NAME=\($0)" } ?? "database id \(text.dropFirst(3))" }

    /// A declared name: 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or a
    /// digit (it becomes part of object keys).
    public static func isValidName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        func ok(_ c: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
        }
        guard (1...64).contains(u.count), ok(u[0]) else { return false }
        return u.allSatisfy { ok($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }
}

extension Settings {
    /// `BACKUP_NAME`, the database's declared identity, when set.
    public func declaredName() throws -> String? {
        guard let name = environment["BACKUP_NAME"] else { return nil }
        guard Identity.isValidName(name) else {
            throw LajuError(
                .usage, "BACKUP_NAME=\(Display.quoted(name)) is not a usable name",
                hint: "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit")
        }
        return name
    }

    /// This database's identity as a reading command sees it: the declared name; else the id
    /// recorded in the database, read without changing it; nil when neither exists (no name
    /// declared and the database gone, or made before identities: its backups are then found by
    /// a search of the store, `StoreSearch`).
    public func knownIdentity() throws -> Identity? {
        if let name = try declaredName() { return .declared(name) }
        let path = databasePath
        guard Snapshot.isDatabase(path) else { return nil }
        return try DatabaseID.read(path: path, busyTimeoutMilliseconds: try busyTimeout()).map(Identity.database)
    }
}
