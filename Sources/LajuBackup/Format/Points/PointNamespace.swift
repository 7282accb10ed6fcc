/// Where one database's incremental objects live: `<prefix>incremental/<db name>.<source id>/`.
/// The `/` after the prefix is what keeps `clean --orphans` from ever calling them orphans.
public struct PointNamespace: Sendable, Equatable {
    public let root: String

    public init(prefix: String, databaseName: String, sourceID: String) throws {
        root = "\(prefix)incremental/\(databaseName).\(sourceID)/"
        try ObjectKey.validate(root + "points/x", origin: "the incremental namespace")
    }

    /// The namespace of the database `settings` name, under its profile's prefix: the one rule
    /// every command that touches points follows.
    init(settings: Settings, encryptionKey: EncryptionKey) throws {
        let scope = try settings.scope()
        try self.init(
            prefix: scope.prefix, databaseName: scope.databaseName,
            sourceID: encryptionKey.sourceID(databasePath: settings.databasePath))
    }

    public var points: String { root + "points/" }
    public var packs: String { root + "packs/" }
    func key(_ relative: String) -> String { root + relative }
}
