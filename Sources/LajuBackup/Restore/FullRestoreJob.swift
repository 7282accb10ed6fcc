/// Restore and verify: find the backup (catalog, the store itself, or a downloaded file), check
/// the key fingerprint before downloading, then in one pass over the object its MD5, the GCM tag,
/// decompression (gzip, zstd or xz) into a temp file beside the target and the MAC of the
/// plaintext; then the check (`Check`), and only then rename into place. `verify` does all of it
/// and throws the result away.
public struct FullRestoreJob {
    /// How the restored database is checked (`--check`).
    public enum Check: String, Sendable, CaseIterable {
        /// The default: when the object records that its snapshot passed `PRAGMA integrity_check`
        /// at backup time (`ObjectMetadata.integrityMAC`) and the restored bytes have that very
        /// MAC, the restored file is byte for byte a database that passed the full check: nothing
        /// more to run. Otherwise (backups of the original scripts, of older versions, or made
        /// with BACKUP_CHECK=quick) `PRAGMA integrity_check` runs, as with `full`.
        case auto
        /// `PRAGMA integrity_check` on the restored file, whatever the backup recorded.
        case full
        /// `PRAGMA quick_check` only (O(N): page structure, but not indexes against their rows).
        case quick
    }

    public enum Target: Sendable {
        /// Keep the result at `path`, or when `path` is nil at
        /// `directory/restored-<YYYY-MM-DDTHH:mm of uploaded_at>.db`.
        case file(path: String?, directory: String, force: Bool)
        /// Check only.
        case verifyOnly
    }

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
    public var source: Source
    /// `auto` (the default), `full` or `quick`: see `Check`.
    public var check: Check
    public var events: JobEventSink

    public init(settings: Settings, source: Source = .latest, check: Check = .auto, events: @escaping JobEventSink) {
        self.settings = settings
        self.source = source
        self.check = check
        self.events = events
    }

    public init(settings: Settings, key: String?, check: Check = .auto, events: @escaping JobEventSink) {
        self.init(settings: settings, source: key.map(Source.key) ?? .latest, check: check, events: events)
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
    public static func defaultFileName(uploadedAt: Int64?) -> String {
        "restored-\(LocalTime.minuteStamp(epochMilliseconds: uploadedAt ?? LocalTime.nowMilliseconds())).db"
    }

    /// The backup to restore from the catalog: `--key` (the row when there is one), or the newest
    /// active row of this profile's scope (`BackupScope`). Rows of other databases or prefixes and
    /// rows that fail the checks are never "latest". Nil when the catalog cannot say (`why`).
    func selectFromCatalog(scope: BackupScope, key: String?) -> (Selection?, why: String?) {
        do {
            let catalog = try settings.openCatalog(readOnly: true)
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
                    events(.warning("\(others.count) active row(s) in the catalog belong to other databases or prefixes; none is \(scope.databaseName)'s under \(Display.safe(scope.prefix))"))
                }
                record = ours.first
            }
            guard let r = record else {
                return (nil, key == nil ? "the catalog \(catalog.path) lists no backup of \(scope.databaseName) under \(Display.safe(scope.prefix))" : nil)
            }
            let pair = r.ivAndTag
            return (Selection(key: r.key, iv: pair?.iv, tag: pair?.tag, checksum: r.checksum.isEmpty ? nil : r.checksum.lowercased(),
                              uploadedAt: r.uploadedAt, source: "catalog \(settings.catalogPath)", compression: r.compression,
                              recordedLocation: catalog.location(key: r.key)), nil)
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
            // The disaster path: no database, so no catalog. The store's own names and metadata
            // (key fingerprint, source id) say which objects are this database's backups.
            let search = StoreSearch(store: store, scope: scope, encryptionKey: encryptionKey, databasePath: settings.databasePath)
            guard let (info, meta) = try search.newest(events: events) else {
                throw LajuError(.storage, "no backup of \(scope.databaseName) under \(Display.safe(scope.prefix)) in \(store.displayName), and \(why ?? "no catalog")",
                                hint: "check BACKUP_PREFIX, the bucket and the key (`laju-backup list --remote` shows what the store holds), or pass --key KEY",
                                isNotFound: true)
            }
            events(.warning("\(why ?? "no catalog"): restoring the newest backup of \(scope.databaseName) found in \(store.displayName): \(Display.safe(info.key))\(info.lastModified.map { " (stored \(LocalTime.logStamp(epochSeconds: $0)))" } ?? "")"))
            return Selection(key: info.key, iv: meta.iv, tag: meta.tag, checksum: meta.checksum.isEmpty ? nil : meta.checksum,
                             uploadedAt: info.lastModified.map { Int64($0 * 1000) }, source: "store listing", metadata: meta, versionID: info.versionID)
        case .file:
            preconditionFailure("files are not selected from a store")
        }
    }

    public func run(target: Target) throws -> Outcome {
        let started = monotonicSeconds()
        let encryptionKey = try settings.encryptionKey()
        let scope = try settings.scope()
        let protected = [settings.databasePath, settings.catalogPath]
        // Every check of the target that needs no download comes first.
        var output: RestoreOutput?
        if case .file(let path, _, let force) = target, let path {
            output = RestoreOutput(path: path, force: force, protected: protected)
            try prepareOutputDirectory(output!.directory)
            try output!.check()
        }

        var sel: Selection
        var objectPath: String
        var objectSize: Int64
        var sourceBytes: Int64?
        var downloadSeconds = 0.0
        var downloadWS: Workspace?
        defer { downloadWS?.remove() }
        if case .file(let path, let iv, let tag) = source {
            (sel, objectSize) = try selectFile(path: path, iv: iv, tag: tag)
            objectPath = absolutePath(path)
        } else {
            let store = try settings.makeStore(role: .read)
            sel = try select(scope: scope, store: store, encryptionKey: encryptionKey)
            if let recorded = sel.recordedLocation, recorded != store.displayName {
                events(.warning("\(Display.safe(sel.key)) was stored in \(recorded), but the settings now point at \(store.displayName)"))
            }
            // The object must exist; its metadata fills what the catalog lacks and lets us say
            // "wrong key" before downloading anything.
            var info: ObjectInfo
            do {
                info = try store.head(key: sel.key, version: sel.versionID)
            } catch let e as LajuError where e.isNotFound {
                // Deleted, or hidden behind a delete marker: a version may survive (S3 versioning,
                // Object Lock). ListObjectVersions needs its own permission; without it, not found.
                if let survivor = try? store.versions?.newestSurvivingVersion(key: sel.key) {
                    events(.warning("the current version of \(Display.safe(sel.key)) is a delete marker (deleted, or hidden by someone with the bucket's credentials); restoring its newest surviving version \(survivor.versionID ?? "?")\(survivor.lastModified.map { ", stored \(LocalTime.logStamp(epochSeconds: $0))" } ?? "")"))
                    info = survivor
                    sel.versionID = survivor.versionID
                } else {
                    guard let recorded = sel.recordedLocation, recorded != store.displayName else { throw e }
                    throw LajuError(.storage, e.message, hint: "the catalog recorded it in \(recorded): point the settings there (`laju-backup config` shows where they come from)", isNotFound: true)
                }
            }
            var meta: ObjectMetadata?
            do { meta = try ObjectMetadata(pairs: info.metadata) } catch {
                if sel.iv == nil { throw error }
                events(.warning("metadata of \(Display.safe(sel.key)) not used: \(error)"))
            }
            if sel.iv == nil || sel.tag == nil { sel.iv = meta?.iv; sel.tag = meta?.tag }
            if let meta { sel.metadata = meta }
            if sel.checksum == nil, let c = meta?.checksum, !c.isEmpty { sel.checksum = c }
            if let fp = meta?.keyFingerprint, fp != encryptionKey.fingerprint {
                throw LajuError(.integrity, "wrong encryption key: \(Display.safe(sel.key)) was made with key fingerprint \(Display.safe(fp)), BACKUP_ENCRYPTION_KEY has fingerprint \(encryptionKey.fingerprint)",
                                hint: "use the key that made this backup")
            }
            if sel.needsIdentityCheck, let id = meta?.sourceID, id != encryptionKey.sourceID(databasePath: settings.databasePath) {
                events(.warning("\(Display.safe(sel.key)) is a backup of another database than \(settings.databasePath) (its source id differs); restoring it because --key names it"))
            } else if sel.needsIdentityCheck, let why = scope.whyNotOurs(sel.key) {
                events(.warning("\(Display.safe(sel.key)) is not a backup of \(scope.databaseName) under \(Display.safe(scope.prefix)) (\(why)); restoring it because --key names it"))
            }
            sourceBytes = meta?.sourceBytes
            objectSize = info.size
            if let files = store as? FileBackedStore {
                objectPath = try files.localPath(key: sel.key)
            } else {
                downloadWS = try Workspace(base: settings.tempBase, events: events)
                objectPath = downloadWS!.file("object.db.gz.enc")
                try Workspace.checkFreeSpace(in: downloadWS!.path, needed: info.size)
                let key = sel.key, version = sel.versionID
                (_, downloadSeconds) = try timedStep("download", events: events) { progress in
                    try store.get(key: key, version: version, to: objectPath, progress: progress)
                }
                events(.step(name: "download", summary: "\(store.displayName) \(sel.key): \(Human.bytes(info.size)) (\(Human.rate(info.size, downloadSeconds)))", seconds: downloadSeconds))
            }
        }
        guard let iv = sel.iv, let tag = sel.tag else {
            throw LajuError(.integrity, "no IV/tag for \(Display.safe(sel.key)) in the catalog or the object's metadata")
        }

        // Where the plaintext goes: a temp file beside the target (same filesystem, so the final
        // rename is atomic), or inside a private workspace when only verifying.
        var workspace: Workspace?
        defer { workspace?.remove() }
        let tempDir: String
        switch target {
        case .file(_, let directory, let force):
            if output == nil {
                output = RestoreOutput(path: "\(directory)/\(FullRestoreJob.defaultFileName(uploadedAt: sel.uploadedAt))",
                                      force: force, protected: protected)
                try prepareOutputDirectory(output!.directory)
                try output!.check()
            }
            tempDir = output!.directory
        case .verifyOnly:
            workspace = try Workspace(base: settings.tempBase, events: events)
            tempDir = workspace!.path
        }
        // The restored file: its recorded size, else a guess of 4x the object.
        try Workspace.checkFreeSpace(in: tempDir, needed: sourceBytes ?? objectSize.multipliedSaturating(by: 4))

        // The codec: the catalog row's, else the object's metadata (`comp`), which must agree.
        let codec = try FullRestoreJob.codec(selection: sel)
        // The MD5 is checked in the decrypting pass (no pass of its own): when the tag fails, it
        // tells a damaged object from a wrong key.
        let expectedMD5 = sel.checksum.flatMap { ObjectMetadata.hexBytes($0) }.flatMap { $0.count == 16 ? $0 : nil }
        if sel.checksum != nil && expectedMD5 == nil {
            throw LajuError(.integrity, "the recorded checksum of \(Display.safe(sel.key)) is not an MD5: \(Display.quoted(sel.checksum!))")
        }
        if expectedMD5 == nil { events(.warning("no checksum recorded for \(sel.key); relying on the GCM tag alone")) }
        let recordedMAC = sel.metadata?.integrityMAC
        let macKey = recordedMAC == nil ? nil : try encryptionKey.integrityMACKey()

        let partial = try output?.partialPath(events: events) ?? "\(tempDir)/verify.db"
        var keepPartial = false
        CleanupRegistry.shared.add(partial)
        defer {
            CleanupRegistry.shared.remove(partial)
            if !keepPartial { for p in [partial] + RestoreOutput.sideSuffixes.map({ partial + $0 }) { unlink(p) } }
        }
        let (opened, openSeconds) = try timedStep("decrypt", events: events) { progress in
            try Envelope.open(input: objectPath, output: partial, encryptionKey: encryptionKey, iv: iv, tag: tag, codec: codec,
                              macKey: macKey, expectedMD5: expectedMD5, progress: progress)
        }
        if let expectedMD5, opened.md5 != expectedMD5 {
            throw LajuError(.integrity, "backup \(sel.key) is damaged: MD5 \(opened.md5.hexString) differs from the recorded \(expectedMD5.hexString) (truncated or altered object)",
                            hint: "restore an older backup (`laju-backup list`)")
        }
        events(.step(name: "decrypt", summary: "tag ok\(expectedMD5 == nil ? "" : ", md5 ok"), \(codec.rawValue): \(Human.bytes(opened.objectBytes)) -> \(Human.bytes(opened.plainBytes)) (\(Human.rate(opened.plainBytes, openSeconds)))", seconds: openSeconds))

        // The record of a full check at backup time, when there is one, must hold whatever the
        // level: the tag already proved the object authentic, so a MAC that differs means the
        // metadata was altered, and nothing it vouches for can be trusted.
        let identity: Bool
        if let recordedMAC {
            guard opened.plainMAC == recordedMAC else {
                throw LajuError(.integrity, "the restored bytes of \(sel.key) are not those whose integrity_check passed at backup time (the object's integrity-mac differs): its metadata was altered",
                                hint: "restore another backup (`laju-backup list`)")
            }
            identity = true
        } else {
            identity = false
        }
        let finished = try FullRestoreJob.finish(partial: partial, output: output, check: check,
                                             proof: identity ? ("integrity_mac", "the restored bytes are the snapshot that passed integrity_check at backup time") : nil,
                                             damagedHint: "the backup was taken from a damaged database; try an older backup",
                                             liveDatabase: settings.databasePath, events: events)
        keepPartial = output != nil
        let (checkName, checkSeconds, ownership) = finished
        return Outcome(key: sel.key, output: output?.path, source: sel.source, objectBytes: opened.objectBytes,
                       restoredBytes: opened.plainBytes, uploadedAt: sel.uploadedAt, downloadSeconds: downloadSeconds,
                       openSeconds: openSeconds, checkSeconds: checkSeconds, totalSeconds: monotonicSeconds() - started,
                       compression: codec.rawValue, check: checkName, ownership: ownership)
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
            throw LajuError(.usage, "\(Display.safe(file)) is a plain SQLite database, not a backup object",
                            hint: "copy it where you want it, or put it into the live database with `restore --activate --from-file`")
        }
        var sel = Selection(key: file.lastPathComponentOf, iv: iv, tag: tag, source: "file \(file)")
        let sideFile = file + LocalStore.metaSuffix
        if iv == nil || tag == nil {
            guard let data = FileManager.default.contents(atPath: sideFile) else {
                throw LajuError(.usage, "no IV and tag for \(Display.safe(file)): pass --iv and --tag (base64, from the catalog row or the object's metadata) or put its metadata in \(Display.safe(sideFile))")
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
                throw LajuError(.integrity, "wrong encryption key: \(Display.safe(file)) was made with key fingerprint \(Display.safe(fp))",
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
                throw LajuError(.integrity, "the catalog row of \(Display.safe(sel.key)) names compression \(Display.quoted(text)), not gzip, zstd or xz")
            }
            fromRow = c
        }
        if let fromRow, let meta = sel.metadata, meta.compression != fromRow {
            throw LajuError(.integrity, "the catalog row of \(Display.safe(sel.key)) says \(fromRow.rawValue) but the object's metadata says \(meta.compression.rawValue)")
        }
        if let c = fromRow ?? sel.metadata?.compression { return c }
        return Codec.allCases.first { sel.key.hasSuffix($0.keySuffix) } ?? .gzip
    }

    /// The end every restore shares (full backups and points): the check, skipped only when
    /// `proof` shows these are the very bytes that passed `integrity_check` at backup time and no
    /// level was asked for; then the atomic rename into place, and the owner and mode of the file
    /// it replaces. Returns the check's name and duration, and what was done about ownership.
    static func finish(partial: String, output: RestoreOutput?, check: Check, proof: (name: String, summary: String)?,
                       damagedHint: String, liveDatabase: String,
                       events: @escaping JobEventSink) throws -> (check: String, seconds: Double, ownership: String?) {
        var checkName: String
        var checkSeconds = 0.0
        if check == .auto, let proof {
            checkName = proof.name
            events(.step(name: proof.name, summary: proof.summary, seconds: 0))
        } else {
            (checkName, checkSeconds) = try checkRestored(partial, level: check == .quick ? .quick : .full,
                                                          hint: damagedHint, events: events)
        }
        guard let output else { return (checkName, checkSeconds, nil) }
        let reference = output.ownershipReference(liveDatabase: liveDatabase)
        try output.install(partial: partial)
        let ownership = output.adoptOwnership(from: reference)
        if let ownership { events(.step(name: "ownership", summary: ownership, seconds: 0)) }
        return (checkName, checkSeconds, ownership)
    }

    /// Runs `PRAGMA integrity_check` (or `quick_check`) on a restored file that is not in place
    /// yet; throws (exit 4) with its findings. Returns the check's name and duration.
    static func checkRestored(_ partial: String, level: Database.Check, hint: String,
                              events: @escaping JobEventSink) throws -> (String, Double) {
        let checkName = level == .full ? "integrity_check" : "quick_check"
        let (problems, seconds) = try timedStep(checkName, events: events) { _ -> String? in
            do {
                let db = try Database(path: partial, mode: [.readOnly, .immutable])
                return try db.integrityProblems(level)
            } catch let e as CError {
                return e.message
            }
        }
        if let problems {
            throw LajuError(.integrity, "restored database fails PRAGMA \(checkName): \(problems)", hint: hint)
        }
        events(.step(name: checkName, summary: "ok", seconds: seconds))
        return (checkName, seconds)
    }

    func prepareOutputDirectory(_ dir: String) throws { try FullRestoreJob.prepareOutputDirectory(dir) }

    static func prepareOutputDirectory(_ dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw LajuError(.local, "cannot create output directory \(Display.safe(dir))", hint: "check the path and its permissions")
        }
        guard access(dir, W_OK | X_OK) == 0 else {
            throw LajuError(.local, "output directory \(dir) is not writable", hint: "choose another --output-dir or fix its permissions")
        }
    }
}
