/// Where one database's incremental objects live.
///
/// - Version 2, named by the database's identity: `<prefix>incremental/v2/name-<BACKUP_NAME>/`,
///   else `<prefix>incremental/v2/db-<database id>/`. The same on every host and at every path,
///   so a disaster restore finds its points; its keys are this identity's (`PointKeys`).
/// - Version 1, points made before identities: `<prefix>incremental/<db name>.<source id>/`, named
///   by the database's path. Read (restore, verify, list) and cleaned, never written.
///
/// The `/` after the prefix is what keeps `clean --orphans` from ever calling them orphans.
public struct PointNamespace: Sendable, Equatable {
    public let root: String
    /// The identity a version 2 namespace belongs to; nil for version 1.
    public let identity: Identity?

    public var version: Int { identity == nil ? 1 : 2 }

    /// The version 2 namespace of `identity` under `prefix`.
    public init(prefix: String, identity: Identity) throws {
        root = "\(prefix)incremental/v2/\(Self.folder(of: identity))/"
        self.identity = identity
        try ObjectKey.validate(root + "points/x", origin: "the incremental namespace")
    }

    /// The version 1 namespace of the database at a path.
    public init(prefix: String, databaseName: String, sourceID: String) throws {
        root = "\(prefix)incremental/\(databaseName).\(sourceID)/"
        identity = nil
        try ObjectKey.validate(root + "points/x", origin: "the incremental namespace")
    }

    /// `name-<name>` or `db-<hex>`: distinct from each other (a declared name cannot start with
    /// `db-` and be 35 characters of this shape only by accident, and then its identity differs:
    /// the keys tell them apart) and from every version 1 folder (those are not under `v2/`).
    static func folder(of identity: Identity) -> String {
        if let name = identity.declaredName { return "name-" + name }
        return "db-" + (identity.databaseID?.hex ?? "")
    }

    /// The identity a version 2 folder names, nil for anything else.
    static func identity(ofFolder folder: String) -> Identity? {
        if folder.hasPrefix("name-") { return Identity(parsing: "name:" + folder.dropFirst(5)) }
        if folder.hasPrefix("db-") { return Identity(parsing: "db:" + folder.dropFirst(3)) }
        return nil
    }

    /// The version 2 namespace of `identity` in the profile `settings` names: where its points
    /// are written.
    init(settings: Settings, identity: Identity) throws {
        try self.init(prefix: try settings.prefix, identity: identity)
    }

    /// The version 1 namespace of the database `settings` names (by its path).
    static func legacy(settings: Settings, encryptionKey: EncryptionKey) throws -> PointNamespace {
        let scope = try settings.scope()
        return try PointNamespace(
            prefix: scope.prefix, databaseName: scope.databaseName,
            sourceID: encryptionKey.sourceID(databasePath: settings.databasePath))
    }

    public var points: String { root + "points/" }
    public var packs: String { root + "packs/" }
    func key(_ relative: String) -> String { root + relative }

    /// How messages name it.
    public var display: String {
        identity.map { "the points of \($0.display)" } ?? "the points made before identities"
    }
}
