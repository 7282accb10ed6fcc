/// Finds this database's backups in the store itself, from object names and metadata, for when the
/// catalog cannot help: a disaster restore (the database, and with it the catalog, is gone),
/// `catalog sync` (rebuilding rows), and telling orphans of ours from backups of another database
/// that shares the file name and the prefix.
struct StoreSearch {
    let store: ObjectStore
    let scope: BackupScope
    let encryptionKey: EncryptionKey
    /// `EncryptionKey.sourceID` of the configured database.
    let sourceID: String

    init(store: ObjectStore, scope: BackupScope, encryptionKey: EncryptionKey, databasePath: String) {
        self.store = store
        self.scope = scope
        self.encryptionKey = encryptionKey
        sourceID = encryptionKey.sourceID(databasePath: databasePath)
    }

    enum Verdict: Equatable {
        /// A backup of this database under this key (or one that predates our metadata and
        /// cannot say otherwise).
        case ours(ObjectMetadata)
        /// Made with another key (its fingerprint differs): not readable with ours.
        case otherKey(String)
        /// A backup of another database with the same file name.
        case otherDatabase
        /// Not a backup (no usable IV and tag in its metadata, or no metadata).
        case notABackup(String)

        var isOurs: Bool { if case .ours = self { return true }; return false }

        var reason: String {
            switch self {
            case .ours: return "a backup of this database"
            case .otherKey(let fp): return "made with another key (fingerprint \(fp))"
            case .otherDatabase: return "a backup of another database with the same file name"
            case .notABackup(let why): return "not a backup: \(why)"
            }
        }
    }

    /// Looks at the object's metadata (one HEAD, of `version` when given).
    func classify(key objectKey: String, version: String? = nil) throws -> (ObjectInfo, Verdict) {
        let info = try store.head(key: objectKey, version: version)
        let meta: ObjectMetadata
        do { meta = try ObjectMetadata(pairs: info.metadata) } catch let e as LajuError {
            return (info, .notABackup(e.message))
        }
        if let fp = meta.keyFingerprint, fp != encryptionKey.fingerprint { return (info, .otherKey(fp)) }
        if let id = meta.sourceID, id != sourceID { return (info, .otherDatabase) }
        return (info, .ours(meta))
    }

    /// The newest backup of this database in the store: objects named for it under the prefix,
    /// newest first, the first whose metadata does not say it is someone else's.
    func newest(events: JobEventSink) throws -> (ObjectInfo, ObjectMetadata)? {
        let candidates = try store.list(prefix: scope.prefix)
            .filter { ObjectKey.problem($0.key) == nil && scope.ownsObject(key: $0.key) }
            .sorted { ($0.lastModified ?? 0, $0.key) > ($1.lastModified ?? 0, $1.key) }
        for c in candidates {
            let (info, verdict) = try classify(key: c.key)
            if case .ours(let meta) = verdict {
                return (
                    ObjectInfo(
                        key: c.key, size: info.size, lastModified: c.lastModified ?? info.lastModified,
                        metadata: info.metadata), meta
                )
            }
            events(.warning("skipped \(Display.safe(c.key)): \(verdict.reason)"))
        }
        // Nothing current: every backup may be hidden behind a delete marker (an intruder with
        // the server's credentials, or a mistaken delete) while its version survives.
        let hidden = ((try? store.versions?.hiddenBackups(prefix: scope.prefix)) ?? [])
            .filter { ObjectKey.problem($0.key) == nil && scope.ownsObject(key: $0.key) }
            .sorted { ($0.lastModified ?? 0, $0.key) > ($1.lastModified ?? 0, $1.key) }
        for h in hidden {
            let (info, verdict) = try classify(key: h.key, version: h.versionID)
            if case .ours(let meta) = verdict {
                events(
                    .warning(
                        "\(Display.safe(h.key)) is deleted (its current version is a delete marker); using its surviving version \(h.versionID ?? "?")"
                    ))
                return (
                    ObjectInfo(
                        key: h.key, size: info.size, lastModified: h.lastModified ?? info.lastModified,
                        metadata: info.metadata, versionID: h.versionID), meta
                )
            }
        }
        return nil
    }
}
