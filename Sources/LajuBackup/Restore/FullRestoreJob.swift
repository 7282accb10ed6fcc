/// Restore and verify of a full backup: find the backup (catalog, the store itself, or a
/// downloaded file), check the key fingerprint before downloading, then in one pass over the object
/// its MD5, the GCM tag, decompression (gzip, zstd or xz) into a partial file beside the target and
/// the MAC of the plaintext; then the check and the rename into place (`RestoreTail`). `verify`
/// does all of it and throws the result away.
public struct FullRestoreJob {
    /// Which backup.
    public enum Source: Sendable {
        /// The newest of this database: from the catalog, else (no catalog, or no row of this
        /// database in it, as after a disaster) from the store's own listing and metadata.
        case latest
        /// This object key.
        case key(String)
        /// A downloaded object (e.g. fetched with a presigned link); IV and tag from the
        /// arguments, else from `<file>.meta.json` beside it.
        case file(path: String, iv: [UInt8]?, tag: [UInt8]?)
    }

    public struct Outcome: Codable, Sendable {
        public var key: String
        public var output: String?
        /// Where the backup was found: `catalog <path>`, `store listing`, `object metadata`, `file`.
        public var source: String
        public var objectBytes: Int64
        public var restoredBytes: Int64
        public var uploadedAt: Int64?
        public var downloadSeconds: Double
        public var openSeconds: Double
        public var checkSeconds: Double
        public var totalSeconds: Double
        /// gzip, zstd or xz.
        public var compression: String?
        /// What vouches for the restored database: `integrity_check` or `quick_check` (run now), or
        /// `integrity_mac` (the bytes are those that passed integrity_check at backup time).
        public var check: String?
        /// What was done about the restored file's owner and mode (`RestoreOutput.adoptOwnership`).
        public var ownership: String?
    }

    public var settings: Settings
    /// Where the backups are kept and recorded (by default, where the settings say).
    public var repository: Repository
    public var source: Source
    /// `auto` (the default), `full` or `quick`: see `RestoreCheck`.
    public var check: RestoreCheck
    public var events: JobEventSink

    public init(
        settings: Settings, repository: Repository? = nil, source: Source = .latest, check: RestoreCheck = .auto,
        events: @escaping JobEventSink
    ) {
        self.settings = settings
        self.repository = repository ?? Repository(settings: settings)
        self.source = source
        self.check = check
        self.events = events
    }

    public init(
        settings: Settings, repository: Repository? = nil, key: String?, check: RestoreCheck = .auto,
        events: @escaping JobEventSink
    ) {
        self.init(
            settings: settings, repository: repository, source: key.map(Source.key) ?? .latest, check: check,
            events: events)
    }

    /// What restore works from: the object's key, IV, tag and checksum.
    struct Selection {
        var key: String
        var iv: [UInt8]?
        var tag: [UInt8]?
        var checksum: String?
        var uploadedAt: Int64?
        var source: String
        /// The catalog row's `compression`, when the backup came from the catalog.
        var compression: String?
        /// The object's metadata, when it was read.
        var metadata: ObjectMetadata?
        /// Where the catalog says the object was stored when it was made.
        var recordedLocation: String?
        /// Picked without the catalog: its metadata must say it is this database's.
        var needsIdentityCheck = false
        /// The S3 version to read (a backup hidden behind a delete marker), nil for the current one.
        var versionID: String?
    }

    /// The default output: `backups/restored-<YYYY-MM-DDTHH:mm of uploaded_at>.db`.

    /// The backup to restore from the catalog: `--key` (the row when there is one), or the newest
    /// active row of this profile's scope (`BackupScope`). Rows of other databases or prefixes and
    /// rows that fail the checks are never "latest". Nil when the catalog cannot say (`why`).
    func selectFromCatalog(scope: BackupScope, key: String?) -> (Selection?, why: String?) {
        do {
            let catalog = try repository.catalog(readOnly: true)
            try catalog.requireTable(forWriting: false)
            let record: BackupRecord?
            if let key {
                record = try catalog.record(key: key)
            } else {
                let scan = try catalog.scan(includeDeleted: false)
                for bad in scan.bad {
                    events(.warning("catalog row \(Display.safe(bad.id)) skipped: \(bad.problem)"))
                }
                let (ours, others) = scan.split(scope)
                if ours.isEmpty && !others.isEmpty {
                    events(
                        .warning(
                            "\(others.count) active row(s) in the catalog belong to other databases or prefixes; none is \(scope.databaseName)'s under \(Display.safe(scope.prefix))"
                        ))
                }
                record = ours.first
            }
            guard let r = record else {
                return (
                    nil,
                    key == nil
                        ? "the catalog \(catalog.path) lists no backup of \(scope.databaseName) under \(Display.safe(scope.prefix))"
                        : nil
                )
            }
            let pair = r.ivAndTag
            return (
                Selection(
                    key: r.key, iv: pair?.iv, tag: pair?.tag,
                    checksum: r.checksum.isEmpty ? nil : r.checksum.lowercased(),
                    uploadedAt: r.uploadedAt, source: "catalog \(settings.catalogPath)", compression: r.compression,
                    recordedLocation: catalog.location(key: r.key)), nil
            )
        } catch let e as LajuError {
            return (nil, e.message)
        } catch {
            return (nil, "\(error)")
        }
    }

    func select(scope: BackupScope, store: ObjectStore, encryptionKey: EncryptionKey) throws -> Selection {
        switch source {
        case .key(let key):
            try ObjectKey.validate(key, origin: "--key")
            let (fromCatalog, why) = selectFromCatalog(scope: scope, key: key)
            if let fromCatalog { return fromCatalog }
            if let why { events(.warning("catalog not used (\(why)); reading IV and tag from the object's metadata")) }
            return Selection(key: key, source: "object metadata", needsIdentityCheck: true)
        case .latest:
            let (fromCatalog, why) = selectFromCatalog(scope: scope, key: nil)
            if let fromCatalog { return fromCatalog }
            // The disaster path: no database, so no catalog. The store's own names and
            // authenticated metadata say which objects are this database's backups.
            let search = try StoreSearch(
                store: store, scope: scope, encryptionKey: encryptionKey, identity: try settings.knownIdentity(),
                databasePath: settings.databasePath)
            guard let found = try search.newest(events: events) else {
                throw LajuError(
                    .storage,
                    "no backup of \(scope.databaseName) under \(Display.safe(scope.prefix)) in \(store.displayName), and \(why ?? "no catalog")",
                    hint:
                        "check BACKUP_PREFIX, the bucket and the key (`laju-backup list --remote` shows what the store holds), or pass --key KEY",
                    isNotFound: true)
            }
            events(
                .warning(
                    "\(why ?? "no catalog"): restoring the newest backup of \(scope.databaseName) found in \(store.displayName): \(Display.safe(found.info.key))\(found.info.lastModified.map { " (stored \(LocalTime.logStamp(epochSeconds: $0)))" } ?? "")"
                ))
            let meta = found.metadata
            return Selection(
                key: found.info.key, iv: meta.iv, tag: meta.tag, checksum: meta.checksum.isEmpty ? nil : meta.checksum,
                uploadedAt: found.info.lastModified.map { Int64($0 * 1000) }, source: "store listing", metadata: meta,
                versionID: found.info.versionID)
        case .file:
            preconditionFailure("files are not selected from a store")
        }
    }

    public func run(target: RestoreTarget) throws -> Outcome {
        let started = monotonicSeconds()
        let encryptionKey = try settings.encryptionKey()
        let scope = try settings.scope()
        // Every check of the target that needs no download comes first.
        let tail = try RestoreTail(target: target, settings: settings)
        defer { tail.close() }
        let object = try fetch(scope: scope, encryptionKey: encryptionKey)
        defer { object.workspace?.remove() }
        let sel = object.selection
        guard let iv = sel.iv, let tag = sel.tag else {
            throw LajuError(
                .integrity, "no IV/tag for \(Display.safe(sel.key)) in the catalog or the object's metadata")
        }
        // The restored file: its recorded size, else a guess of 4x the object.
        try tail.prepare(
            time: sel.uploadedAt, needed: object.sourceBytes ?? object.size.multipliedSaturating(by: 4), events: events)

        // The codec: the catalog row's, else the object's metadata (`comp`), which must agree.
        let codec = try FullRestoreJob.codec(selection: sel)
        let expectedMD5 = try expectedMD5(of: sel)
        let recordedMAC = sel.metadata?.integrityMAC
        let macKey = recordedMAC == nil ? nil : try encryptionKey.integrityMACKey()
        let partial = try tail.partialFile(events: events)
        let (opened, openSeconds) = try timedStep("decrypt", events: events) { progress in
            try Envelope.open(
                input: object.path, output: partial, encryptionKey: encryptionKey, iv: iv, tag: tag, codec: codec,
                macKey: macKey, expectedMD5: expectedMD5, progress: progress)
        }
        if let expectedMD5, opened.md5 != expectedMD5 {
            throw LajuError(
                .integrity,
                "backup \(sel.key) is damaged: MD5 \(opened.md5.hexString) differs from the recorded \(expectedMD5.hexString) (truncated or altered object)",
                hint: "restore an older backup (`laju-backup list`)")
        }
        events(
            .step(
                name: "decrypt",
                summary:
                    "tag ok\(expectedMD5 == nil ? "" : ", md5 ok"), \(codec.rawValue): \(Human.bytes(opened.objectBytes)) -> \(Human.bytes(opened.plainBytes)) (\(Human.rate(opened.plainBytes, openSeconds)))",
                seconds: openSeconds))

        // The record of a full check at backup time, when there is one, must hold whatever the
        // level: the tag already proved the object authentic, so a MAC that differs means the
        // metadata was altered, and nothing it vouches for can be trusted.
        if let recordedMAC, opened.plainMAC != recordedMAC {
            throw LajuError(
                .integrity,
                "the restored bytes of \(sel.key) are not those whose integrity_check passed at backup time (the object's integrity-mac differs): its metadata was altered",
                hint: "restore another backup (`laju-backup list`)")
        }
        let (checkName, checkSeconds, ownership) = try tail.finish(
            check: check,
            proof: recordedMAC != nil
                ? ("integrity_mac", "the restored bytes are the snapshot that passed integrity_check at backup time")
                : nil,
            damagedHint: "the backup was taken from a damaged database; try an older backup", events: events)
        if case .latest = source { mentionNewerPoint(sel, encryptionKey: encryptionKey) }
        return Outcome(
            key: sel.key, output: tail.output?.path, source: sel.source, objectBytes: opened.objectBytes,
            restoredBytes: opened.plainBytes, uploadedAt: sel.uploadedAt, downloadSeconds: object.downloadSeconds,
            openSeconds: openSeconds, checkSeconds: checkSeconds, totalSeconds: monotonicSeconds() - started,
            compression: codec.rawValue, check: checkName, ownership: ownership)
    }

    /// After the newest full backup was restored: a restore point of this database newer than it
    /// is newer state, and the operator should hear of it. Best effort: it only adds a line.
    func mentionNewerPoint(_ sel: Selection, encryptionKey: EncryptionKey) {
        let proven = sel.metadata.flatMap { m in
            (try? encryptionKey.metadataKey()).flatMap {
                ObjectMetadata.authenticated(pairs: m.pairs, objectKey: sel.key, macKey: $0) ? m.identity : nil
            }
        }
        guard let identity = ((try? settings.knownIdentity()) ?? nil) ?? proven, let backupTime = sel.uploadedAt,
            let store = try? repository.store(role: .read),
            let namespace = try? PointNamespace(settings: settings, identity: identity),
            let keys = try? PointKeys(encryptionKey, identity: identity)
        else { return }
        let chain = PointChain(store: store, namespace: namespace, keys: keys, scratch: settings.tempBase)
        guard let newest = (try? chain.listPoints())?.last, newest.name.time > backupTime,
            (try? chain.summary(of: newest)) != nil
        else { return }
        events(
            .warning(
                "a restore point newer than this backup exists: \(PointChain.display(newest.name)) (\(PointTime.rfc3339(newest.name.time))); `laju-backup restore --at latest` restores it"
            ))
    }

    /// The object to open, as a file on this host, and what is known of it.
    struct Fetched {
        var selection: Selection
        var path: String
        var size: Int64
        /// The size of the database it holds, from its metadata.
        var sourceBytes: Int64?
        var downloadSeconds = 0.0
        /// The private folder of a download, removed when the restore ends.
        var workspace: Workspace?
    }

    /// The object to restore: a file given as such, the local store's own file (read in place),
    /// or a download into a private workspace.
    func fetch(scope: BackupScope, encryptionKey: EncryptionKey) throws -> Fetched {
        if case .file(let path, let iv, let tag) = source {
            let (sel, size) = try selectFile(path: path, iv: iv, tag: tag)
            return Fetched(selection: sel, path: absolutePath(path), size: size)
        }
        let store = try repository.store(role: .read)
        var sel = try select(scope: scope, store: store, encryptionKey: encryptionKey)
        if let recorded = sel.recordedLocation, recorded != store.displayName {
            events(
                .warning(
                    "\(Display.safe(sel.key)) was stored in \(recorded), but the settings now point at \(store.displayName)"
                ))
        }
        // The object must exist; its metadata fills what the catalog lacks and lets us say
        // "wrong key" before downloading anything.
        let info = try locate(&sel, in: store)
        let sourceBytes = try adoptMetadata(&sel, info: info, scope: scope, encryptionKey: encryptionKey)
        if let files = store as? FileBackedStore {
            return Fetched(
                selection: sel, path: try files.localPath(key: sel.key), size: info.size, sourceBytes: sourceBytes)
        }
        let ws = try Workspace(base: settings.tempBase, events: events)
        var fetched = Fetched(
            selection: sel, path: ws.file("object.db.gz.enc"), size: info.size, sourceBytes: sourceBytes, workspace: ws)
        try Workspace.checkFreeSpace(in: ws.path, needed: info.size)
        let key = sel.key, version = sel.versionID, objectPath = fetched.path
        let (_, seconds) = try timedStep("download", events: events) { progress in
            try store.get(key: key, version: version, to: objectPath, progress: progress)
        }
        fetched.downloadSeconds = seconds
        events(
            .step(
                name: "download",
                summary:
                    "\(store.displayName) \(sel.key): \(Human.bytes(info.size)) (\(Human.rate(info.size, seconds)))",
                seconds: seconds))
        return fetched
    }

    /// HEAD of the selected object. A deleted object, or one hidden behind a delete marker, may
    /// survive as a version (S3 versioning, Object Lock): then that version is selected.
    /// ListObjectVersions needs its own permission; without it, not found.
    func locate(_ sel: inout Selection, in store: ObjectStore) throws -> ObjectInfo {
        do {
            return try store.head(key: sel.key, version: sel.versionID)
        } catch let e as LajuError where e.isNotFound {
            if let survivor = try? store.versions?.newestSurvivingVersion(key: sel.key) {
                events(
                    .warning(
                        "the current version of \(Display.safe(sel.key)) is a delete marker (deleted, or hidden by someone with the bucket's credentials); restoring its newest surviving version \(survivor.versionID ?? "?")\(survivor.lastModified.map { ", stored \(LocalTime.logStamp(epochSeconds: $0))" } ?? "")"
                    ))
                sel.versionID = survivor.versionID
                return survivor
            }
            guard let recorded = sel.recordedLocation, recorded != store.displayName else { throw e }
            throw LajuError(
                .storage, e.message,
                hint:
                    "the catalog recorded it in \(recorded): point the settings there (`laju-backup config` shows where they come from)",
                isNotFound: true)
        }
    }

    /// Fills what the selection lacks from the object's metadata (IV, tag, checksum), refuses an
    /// object made with another key, and warns when `--key` names another database's backup.
    /// Returns the size of the database the object holds, when recorded.
    func adoptMetadata(_ sel: inout Selection, info: ObjectInfo, scope: BackupScope, encryptionKey: EncryptionKey)
        throws -> Int64?
    {
        var meta: ObjectMetadata?
        do { meta = try ObjectMetadata(pairs: info.metadata) } catch {
            if sel.iv == nil { throw error }
            events(.warning("metadata of \(Display.safe(sel.key)) not used: \(error)"))
        }
        if let fp = meta?.keyFingerprint, fp != encryptionKey.fingerprint {
            throw LajuError(
                .integrity,
                "wrong encryption key: \(Display.safe(sel.key)) was made with key fingerprint \(Display.safe(fp)), BACKUP_ENCRYPTION_KEY has fingerprint \(encryptionKey.fingerprint)",
                hint: "use the key that made this backup")
        }
        meta = try authenticate(meta, of: sel, pairs: info.metadata, encryptionKey: encryptionKey)
        if sel.iv == nil || sel.tag == nil { sel.iv = meta?.iv; sel.tag = meta?.tag }
        if let meta { sel.metadata = meta }
        if sel.checksum == nil, let c = meta?.checksum, !c.isEmpty { sel.checksum = c }
        if sel.needsIdentityCheck { try warnIfNotOurs(sel, meta: meta, scope: scope, encryptionKey: encryptionKey) }
        return meta?.sourceBytes
    }

    /// Metadata that claims an identity must prove it under the key (`ObjectMetadata.auth`). Without
    /// a catalog row to go by, metadata that does not is refused: it would decide the IV, the tag
    /// and whose backup this is. With a row (which gives IV, tag and checksum) it is only what
    /// legacy metadata always was: a claim checked against the restored bytes (a codec that
    /// disagrees with the row, an integrity-mac that differs, stop the restore).
    func authenticate(_ meta: ObjectMetadata?, of sel: Selection, pairs: [String: String], encryptionKey: EncryptionKey)
        throws -> ObjectMetadata?
    {
        guard let meta, meta.auth != nil || meta.identity != nil else { return meta }
        if ObjectMetadata.authenticated(pairs: pairs, objectKey: sel.key, macKey: try encryptionKey.metadataKey()) {
            return meta
        }
        let why =
            "its metadata does not authenticate (written without this key, copied from another object, or changed)"
        guard sel.iv != nil else {
            throw LajuError(
                .integrity, "\(Display.safe(sel.key)) is not restored: \(why)",
                hint:
                    "restore another backup (`laju-backup list --remote`), or pass --iv and --tag from its catalog row")
        }
        events(
            .warning(
                "\(why): \(Display.safe(sel.key)) is restored as its catalog row says, its metadata checked against it")
        )
        return meta
    }

    /// `--key` named an object no row of this database names: say so when it is someone else's.
    func warnIfNotOurs(_ sel: Selection, meta: ObjectMetadata?, scope: BackupScope, encryptionKey: EncryptionKey) throws
    {
        let otherIdentity = meta?.identity.flatMap { owner in
            (try? settings.knownIdentity()).flatMap { $0 }.flatMap { $0 == owner ? nil : owner }
        }
        if let otherIdentity {
            events(
                .warning(
                    "\(Display.safe(sel.key)) is a backup of another database (\(otherIdentity.display)); restoring it because --key names it"
                ))
        } else if meta?.identity == nil, let id = meta?.sourceID,
            id != encryptionKey.sourceID(databasePath: settings.databasePath)
        {
            events(
                .warning(
                    "\(Display.safe(sel.key)) is a backup of another database than \(settings.databasePath) (its source id differs); restoring it because --key names it"
                ))
        } else if let why = scope.whyNotOurs(sel.key) {
            events(
                .warning(
                    "\(Display.safe(sel.key)) is not a backup of \(scope.databaseName) under \(Display.safe(scope.prefix)) (\(why)); restoring it because --key names it"
                ))
        }
    }

    /// The MD5 the object must have, when one is recorded. It is checked in the decrypting pass
    /// (no pass of its own): when the tag fails, it tells a damaged object from a wrong key.
    func expectedMD5(of sel: Selection) throws -> [UInt8]? {
        let expected = sel.checksum.flatMap { ObjectMetadata.hexBytes($0) }.flatMap { $0.count == 16 ? $0 : nil }
        if sel.checksum != nil && expected == nil {
            throw LajuError(
                .integrity,
                "the recorded checksum of \(Display.safe(sel.key)) is not an MD5: \(Display.quoted(sel.checksum!))")
        }
        if expected == nil { events(.warning("no checksum recorded for \(sel.key); relying on the GCM tag alone")) }
        return expected
    }

    /// `--from-file`: a downloaded object. IV and tag from the flags, else from the metadata file
    /// beside it (`<file>.meta.json`, the local store's format); the checksum from there too.
    func selectFile(path: String, iv: [UInt8]?, tag: [UInt8]?) throws -> (Selection, Int64) {
        let file = absolutePath(path)
        var st = stat()
        guard stat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw LajuError(.usage, "--from-file \(Display.safe(file)) is not a readable file")
        }
        if Snapshot.isDatabase(file) {
            throw LajuError(
                .usage, "\(Display.safe(file)) is a plain SQLite database, not a backup object",
                hint:
                    "copy it where you want it, or put it into the live database with `restore --activate --from-file`")
        }
        var sel = Selection(key: file.lastPathComponentOf, iv: iv, tag: tag, source: "file \(file)")
        let sideFile = file + LocalStore.metaSuffix
        if iv == nil || tag == nil {
            let data: Data
            do {
                data = Data(try readRegularFile(sideFile, limit: 1 << 20).bytes)
            } catch .missing {
                throw LajuError(
                    .usage,
                    "no IV and tag for \(Display.safe(file)): pass --iv and --tag (base64, from the catalog row or the object's metadata) or put its metadata in \(Display.safe(sideFile))"
                )
            } catch {
                throw LajuError(.usage, "cannot read \(Display.safe(sideFile)): \(error.reason)")
            }
            let meta: ObjectMetadata
            do { meta = try ObjectMetadata(pairs: try JSONSerializationLite.decode(data)) } catch let e as LajuError {
                throw LajuError(e.kind, "\(sideFile): \(e.message)")
            } catch {
                throw LajuError(.usage, "\(sideFile) is not a metadata file: \(error)")
            }
            sel.iv = meta.iv
            sel.tag = meta.tag
            sel.checksum = meta.checksum.isEmpty ? nil : meta.checksum
            sel.metadata = meta
            if let fp = meta.keyFingerprint, fp != (try settings.encryptionKey()).fingerprint {
                throw LajuError(
                    .integrity,
                    "wrong encryption key: \(Display.safe(file)) was made with key fingerprint \(Display.safe(fp))",
                    hint: "use the key that made this backup")
            }
        }
        return (sel, Int64(st.st_size))
    }

    /// The codec of the selected backup: the catalog row's `compression`, else the metadata's
    /// `comp`; both are hostile until checked, and two that disagree are refused. A downloaded
    /// file with neither (IV and tag given as flags) is read by its name's suffix, else as gzip:
    /// a wrong guess can only fail (exit 4), never yield a wrong database.
    static func codec(selection sel: Selection) throws -> Codec {
        var fromRow: Codec?
        if let text = sel.compression, !text.isEmpty {
            guard let c = Codec(stored: text) else {
                throw LajuError(
                    .integrity,
                    "the catalog row of \(Display.safe(sel.key)) names compression \(Display.quoted(text)), not gzip, zstd or xz"
                )
            }
            fromRow = c
        }
        if let fromRow, let meta = sel.metadata, meta.compression != fromRow {
            throw LajuError(
                .integrity,
                "the catalog row of \(Display.safe(sel.key)) says \(fromRow.rawValue) but the object's metadata says \(meta.compression.rawValue)"
            )
        }
        if let c = fromRow ?? sel.metadata?.compression { return c }
        return Codec.allCases.first { sel.key.hasSuffix($0.keySuffix) } ?? .gzip
    }

    /// The end every restore shares (full backups and points): the check, skipped only when
    /// `proof` shows these are the very bytes that passed `integrity_check` at backup time and no
    /// level was asked for; then the atomic rename into place, and the owner and mode of the file
}
