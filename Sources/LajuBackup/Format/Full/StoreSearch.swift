/// Finds this database's backups in the store itself, from object names and metadata, for when the
/// catalog cannot help: a disaster restore (the database, and with it the catalog, is gone),
/// `catalog sync` (rebuilding rows), and telling orphans of ours from backups of another database
/// that shares the file name and the prefix.
///
/// What decides "ours" is authenticated: since format 2 every object's metadata carries the
/// database's identity and a MAC over it and the object's key (`ObjectMetadata.auth`). Metadata
/// without one (earlier versions, the Laju scripts) is legacy: it can say nothing that cannot be
/// forged, so such an object is found only when no authenticated backup of this database exists,
/// and only when what it says does not contradict this database.
struct StoreSearch {
    let store: ObjectStore
    let scope: BackupScope
    let encryptionKey: EncryptionKey
    /// This database's identity, when known (`Settings.knownIdentity`): nil in a disaster restore
    /// of a database with no declared name, whose id went with it.
    let identity: Identity?
    /// `EncryptionKey.sourceID` of the configured path: legacy metadata's only claim, and what
    /// tells apart several databases' backups with one file name on the host that made them.
    let sourceID: String
    let macKey: [UInt8]

    init(
        store: ObjectStore, scope: BackupScope, encryptionKey: EncryptionKey, identity: Identity?, databasePath: String
    )
        throws
    {
        self.store = store
        self.scope = scope
        self.encryptionKey = encryptionKey
        self.identity = identity
        sourceID = encryptionKey.sourceID(databasePath: databasePath)
        macKey = try encryptionKey.metadataKey()
    }

    enum Verdict: Equatable {
        /// A backup of this database: authenticated metadata naming its identity.
        case ours(ObjectMetadata)
        /// Authenticated metadata of a database whose identity is unknown here (a disaster
        /// restore without a declared name): a candidate, grouped by identity.
        case candidate(ObjectMetadata)
        /// Metadata without authentication (an earlier version, the Laju scripts) that does not
        /// contradict this database: restorable, never preferred to an authenticated backup.
        case legacy(ObjectMetadata)
        /// Made with another key (its fingerprint differs): not readable with ours.
        case otherKey(String)
        /// A backup of another database: authenticated under another identity, or legacy metadata
        /// naming another path.
        case otherDatabase(String)
        /// Metadata that claims to authenticate but does not: written without the key, copied
        /// from another object, or changed.
        case forged(String)
        /// Not a backup (no usable IV and tag in its metadata, or no metadata).
        case notABackup(String)

        var reason: String {
            switch self {
            case .ours: return "a backup of this database"
            case .candidate(let m): return "a backup of \(m.identity?.display ?? "?")"
            case .legacy: return "a backup made before identities (not authenticated)"
            case .otherKey(let fp): return "made with another key (fingerprint \(fp))"
            case .otherDatabase(let who): return "a backup of another database (\(who))"
            case .forged(let why): return "its metadata does not authenticate: \(why)"
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
        guard meta.auth != nil || meta.identity != nil else {
            // Legacy: its source id (a keyed hash of the path that made it) is all it says.
            if let id = meta.sourceID, id != sourceID { return (info, .otherDatabase("another path")) }
            return (info, .legacy(meta))
        }
        guard ObjectMetadata.authenticated(pairs: info.metadata, objectKey: objectKey, macKey: macKey),
            let owner = meta.identity
        else {
            return (info, .forged("written without this key, copied from another object, or changed"))
        }
        guard let identity else { return (info, .candidate(meta)) }
        return (info, owner == identity ? .ours(meta) : .otherDatabase(owner.display))
    }

    /// One backup found by the search: where, whose, and from which metadata.
    struct Found {
        var info: ObjectInfo
        var metadata: ObjectMetadata
        var legacy: Bool
    }

    /// The newest backup of this database in the store, for a restore without the catalog.
    /// Authenticated backups of this database come first; legacy ones only when there is none.
    /// Without a known identity, the backups with this file name are grouped by the identity
    /// they prove: one group is this database's; several are told apart by the path that made
    /// them, or the search stops and lists them. Nil when nothing at all matches.
    func newest(events: JobEventSink) throws -> Found? {
        let candidates = try store.list(prefix: scope.prefix)
            .filter { ObjectKey.problem($0.key) == nil && scope.ownsObject(key: $0.key) }
            .sorted { ($0.lastModified ?? 0, $0.key) > ($1.lastModified ?? 0, $1.key) }
        var legacy: [Found] = []
        var groups: [Identity: [Found]] = [:]
        var skipped: [(key: String, reason: String)] = []
        for c in candidates {
            let (info, verdict) = try classify(key: c.key)
            let found = { (m: ObjectMetadata, legacy: Bool) in
                Found(
                    info: ObjectInfo(
                        key: c.key, size: info.size, lastModified: c.lastModified ?? info.lastModified,
                        metadata: info.metadata), metadata: m, legacy: legacy)
            }
            switch verdict {
            case .ours(let m): return found(m, false)
            case .candidate(let m): groups[m.identity!, default: []].append(found(m, false))
            case .legacy(let m): legacy.append(found(m, true))
            default:
                events(.warning("skipped \(Display.safe(c.key)): \(verdict.reason)"))
                if legacy.isEmpty { skipped.append((c.key, verdict.reason)) }
            }
        }
        if let chosen = try choose(groups, events: events) { return chosen }
        if let newest = try newestLegacy(legacy, skippedNewer: skipped, events: events) { return newest }
        return try hidden(events: events)
    }

    /// Among the identities that proved backups with this file name: the only one; else the one
    /// whose newest backup was made from this path; else a stop that lists them.
    func choose(_ groups: [Identity: [Found]], events: JobEventSink) throws -> Found? {
        guard !groups.isEmpty else { return nil }
        let newest = groups.values.map { $0[0] }.sorted { ($0.info.lastModified ?? 0) > ($1.info.lastModified ?? 0) }
        if newest.count == 1 {
            events(
                .warning(
                    "no declared name and no database here: the backups of \(scope.databaseName) under \(Display.safe(scope.prefix)) are all \(newest[0].metadata.identity!.display)'s"
                ))
            return newest[0]
        }
        let here = newest.filter { $0.metadata.sourceID == sourceID }
        if here.count == 1 {
            for (identity, found) in groups where identity != here[0].metadata.identity {
                for f in found {
                    events(
                        .warning(
                            "skipped \(Display.safe(f.info.key)): a backup of another database (\(identity.display))"))
                }
            }
            events(
                .warning(
                    "\(newest.count) databases named \(scope.databaseName) have backups under \(Display.safe(scope.prefix)); using \(here[0].metadata.identity!.display)'s, made from this path"
                ))
            return here[0]
        }
        let list = newest.map { "\($0.metadata.identity!.display): newest \(Display.safe($0.info.key))" }
        throw LajuError(
            .storage,
            "\(newest.count) databases named \(scope.databaseName) have backups under \(Display.safe(scope.prefix)) and none can be told to be this one: \(list.joined(separator: "; "))",
            hint:
                "restore the right one with --key KEY; declare BACKUP_NAME on each database so that this cannot happen again"
        )
    }

    /// A backup made before identities, only when no authenticated one exists, and only when no
    /// newer backup with this file name was skipped: then the newest is probably this database's,
    /// made under another path or identity, and restoring an older one on a guess would exit 0
    /// with the wrong state. The search stops and lists them instead.
    func newestLegacy(_ legacy: [Found], skippedNewer: [(key: String, reason: String)], events: JobEventSink) throws
        -> Found?
    {
        guard let newest = legacy.first else { return nil }
        if !skippedNewer.isEmpty {
            let list = skippedNewer.prefix(5).map { "\(Display.safe($0.key)) (\($0.reason))" }
            throw LajuError(
                .storage,
                "the newest backups named \(scope.databaseName) under \(Display.safe(scope.prefix)) are not provably this database's: \(list.joined(separator: "; ")); the newest that does not contradict it, \(Display.safe(newest.info.key)), is older, and is not restored on a guess",
                hint:
                    "restore the right one with --key KEY; declare BACKUP_NAME so that the next disaster restore knows")
        }
        events(
            .warning(
                "no authenticated backup of \(scope.databaseName) is in \(store.displayName); using \(Display.safe(newest.info.key)), made before identities (its metadata proves nothing about whose it is)"
            ))
        return newest
    }

    /// Nothing current: every backup may be hidden behind a delete marker (an intruder with the
    /// server's credentials, or a mistaken delete) while its version survives.
    func hidden(events: JobEventSink) throws -> Found? {
        let hidden = ((try? store.versions?.hiddenBackups(prefix: scope.prefix)) ?? [])
            .filter { ObjectKey.problem($0.key) == nil && scope.ownsObject(key: $0.key) }
            .sorted { ($0.lastModified ?? 0, $0.key) > ($1.lastModified ?? 0, $1.key) }
        for h in hidden {
            let (info, verdict) = try classify(key: h.key, version: h.versionID)
            let meta: ObjectMetadata
            switch verdict {
            case .ours(let m), .candidate(let m), .legacy(let m): meta = m
            default: continue
            }
            events(
                .warning(
                    "\(Display.safe(h.key)) is deleted (its current version is a delete marker); using its surviving version \(h.versionID ?? "?")"
                ))
            return Found(
                info: ObjectInfo(
                    key: h.key, size: info.size, lastModified: h.lastModified ?? info.lastModified,
                    metadata: info.metadata, versionID: h.versionID), metadata: meta, legacy: verdict.isLegacy)
        }
        return nil
    }
}

extension StoreSearch.Verdict {
    var isLegacy: Bool { if case .legacy = self { return true } else { return false } }
}
