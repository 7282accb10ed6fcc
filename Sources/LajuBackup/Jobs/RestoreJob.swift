/// Restore and verify: find the backup (catalog, or the object's own metadata), check the key
/// fingerprint and the MD5 before decrypting, decrypt + gunzip into a temp file beside the target,
/// `PRAGMA integrity_check`, and only then rename into place. `verify` does all of it and throws
/// the result away.
public struct RestoreJob {
    public enum Target: Sendable {
        /// Keep the result at `path`, or when `path` is nil at
        /// `directory/restored-<YYYY-MM-DDTHH:mm of uploaded_at>.db`.
        case file(path: String?, directory: String, force: Bool)
        /// Check only.
        case verifyOnly
    }

    public struct Outcome: Codable, Sendable {
        public var key: String
        public var output: String?
        public var source: String
        public var objectBytes: Int64
        public var restoredBytes: Int64
        public var uploadedAt: Int64?
        public var downloadSeconds: Double
        public var openSeconds: Double
        public var checkSeconds: Double
        public var totalSeconds: Double
    }

    public var settings: Settings
    public var key: String?
    /// `full` (PRAGMA integrity_check, the default) or `quick` (PRAGMA quick_check).
    public var check: Database.Check
    public var events: JobEventSink

    public init(settings: Settings, key: String?, check: Database.Check = .full, events: @escaping JobEventSink) {
        self.settings = settings
        self.key = key
        self.check = check
        self.events = events
    }

    /// What restore works from: the object's key, IV, tag and checksum.
    struct Selection {
        var key: String
        var iv: [UInt8]?
        var tag: [UInt8]?
        var checksum: String?
        var uploadedAt: Int64?
        var source: String
    }

    /// The default output: `backups/restored-<YYYY-MM-DDTHH:mm of uploaded_at>.db`.
    public static func defaultFileName(uploadedAt: Int64?) -> String {
        "restored-\(LocalTime.minuteStamp(epochMilliseconds: uploadedAt ?? LocalTime.nowMilliseconds())).db"
    }

    /// The backup to restore: `--key` (any key, from the catalog row when there is one, else from
    /// the object's metadata), or the newest active row of this profile's scope (`BackupScope`).
    /// Rows of other databases or prefixes and rows that fail the checks are never "latest".
    func select(scope: BackupScope) throws -> Selection {
        if let key { try ObjectKey.validate(key, origin: "--key") }
        var catalogError: LajuError?
        var record: BackupRecord?
        do {
            let catalog = try settings.openCatalog(readOnly: true)
            try catalog.requireTable(forWriting: false)
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
        } catch let e as LajuError {
            catalogError = e
        }
        if let r = record {
            if key != nil, let why = scope.whyNotOurs(r.key) {
                events(.warning("\(Display.safe(r.key)) is not a backup of \(scope.databaseName) under \(Display.safe(scope.prefix)) (\(why)); restoring it because --key names it"))
            }
            let pair = r.ivAndTag
            return Selection(key: r.key, iv: pair?.iv, tag: pair?.tag, checksum: r.checksum.isEmpty ? nil : r.checksum.lowercased(),
                             uploadedAt: r.uploadedAt, source: "catalog \(settings.catalogPath)")
        }
        guard let key else {
            if let catalogError {
                throw LajuError(catalogError.kind, "cannot find the latest backup: \(catalogError.message)",
                                hint: "pass --key KEY to restore from the object's own metadata (`laju-backup list --remote` shows the keys)")
            }
            throw LajuError(.storage, "the catalog lists no backup of \(scope.databaseName) under \(Display.safe(scope.prefix))",
                            hint: "run a backup first, or pass --key KEY", isNotFound: true)
        }
        if let catalogError { events(.warning("catalog not used (\(catalogError.message)); reading IV and tag from the object's metadata")) }
        return Selection(key: key, source: "object metadata")
    }

    public func run(target: Target) throws -> Outcome {
        let started = monotonicSeconds()
        let encryptionKey = try settings.encryptionKey()
        let scope = try settings.scope()
        // Every check of the target that needs no download comes first.
        var output: RestoreOutput?
        if case .file(let path, _, let force) = target, let path {
            output = RestoreOutput(path: path, force: force, protected: [settings.databasePath, settings.catalogPath])
            try prepareOutputDirectory(output!.directory)
            try output!.check()
        }
        let store = try settings.makeStore()
        var sel = try select(scope: scope)

        // The object must exist; its metadata fills what the catalog lacks and lets us say
        // "wrong key" before downloading anything.
        let info = try store.head(key: sel.key)
        var meta: ObjectMetadata?
        do { meta = try ObjectMetadata(pairs: info.metadata) } catch {
            if sel.iv == nil { throw error }
            events(.warning("metadata of \(Display.safe(sel.key)) not used: \(error)"))
        }
        if sel.iv == nil || sel.tag == nil { sel.iv = meta?.iv; sel.tag = meta?.tag }
        if sel.checksum == nil, let c = meta?.checksum, !c.isEmpty { sel.checksum = c }
        guard let iv = sel.iv, let tag = sel.tag else {
            throw LajuError(.integrity, "no IV/tag for \(Display.safe(sel.key)) in the catalog or the object's metadata")
        }
        if let fp = meta?.keyFingerprint, fp != encryptionKey.fingerprint {
            throw LajuError(.integrity, "wrong encryption key: \(Display.safe(sel.key)) was made with key fingerprint \(Display.safe(fp)), BACKUP_ENCRYPTION_KEY has fingerprint \(encryptionKey.fingerprint)",
                            hint: "use the key that made this backup")
        }

        // Where the plaintext goes: a temp file beside the target (same filesystem, so the final
        // rename is atomic), or inside a private workspace when only verifying.
        var tempDir: String
        var workspace: Workspace?
        switch target {
        case .file(_, let directory, let force):
            if output == nil {
                output = RestoreOutput(path: "\(directory)/\(RestoreJob.defaultFileName(uploadedAt: sel.uploadedAt))",
                                      force: force, protected: [settings.databasePath, settings.catalogPath])
                try prepareOutputDirectory(output!.directory)
                try output!.check()
            }
            tempDir = output!.directory
        case .verifyOnly:
            workspace = try Workspace(base: settings.tempBase, events: events)
            tempDir = workspace!.path
        }
        defer { workspace?.remove() }
        // The restored file (its recorded size, else a guess of 4x the object) plus, when the
        // object is downloaded to the same disk, the object itself.
        let plainGuess = meta?.sourceBytes ?? info.size.multipliedSaturating(by: 4)
        try Workspace.checkFreeSpace(in: tempDir, needed: plainGuess.addingSaturating(info.size))

        // Download (or read in place from a local store).
        var downloadWS: Workspace?
        defer { downloadWS?.remove() }
        var objectPath: String
        var downloadSeconds = 0.0
        if let local = store as? LocalStore {
            objectPath = try local.path(sel.key)
        } else {
            downloadWS = try workspace ?? Workspace(base: settings.tempBase, events: events)
            objectPath = downloadWS!.file("object.db.gz.enc")
            (_, downloadSeconds) = try timedStep("download", events: events) { progress in
                try store.get(key: sel.key, to: objectPath, progress: progress)
            }
            events(.step(name: "download", summary: "\(store.displayName) \(sel.key): \(Format.bytes(info.size)) (\(Format.rate(info.size, downloadSeconds)))", seconds: downloadSeconds))
        }

        // MD5 before decrypting: a damaged object is named as such, not as a wrong key.
        if let expected = sel.checksum {
            let (actual, md5Seconds) = try timedStep("checksum", events: events) { _ in
                try Digest.hash(.md5, filePath: objectPath).hexString
            }
            guard actual == expected else {
                throw LajuError(.integrity, "backup \(sel.key) is damaged: MD5 \(actual) differs from the recorded \(expected) (truncated or altered object)",
                                hint: "restore an older backup (`laju-backup list`)")
            }
            events(.step(name: "checksum", summary: "md5 \(actual) ok", seconds: md5Seconds))
        } else {
            events(.warning("no checksum recorded for \(sel.key); relying on the GCM tag alone"))
        }

        let partial = try output?.partialPath(events: events) ?? "\(tempDir)/verify.db"
        var keepPartial = false
        CleanupRegistry.shared.add(partial)
        defer {
            CleanupRegistry.shared.remove(partial)
            if !keepPartial { for p in [partial] + RestoreOutput.sideSuffixes.map({ partial + $0 }) { unlink(p) } }
        }
        let (opened, openSeconds) = try timedStep("decrypt", events: events) { progress in
            try Envelope.open(input: objectPath, output: partial, key: encryptionKey, iv: iv, tag: tag, progress: progress)
        }
        events(.step(name: "decrypt", summary: "tag ok, \(Format.bytes(opened.objectBytes)) -> \(Format.bytes(opened.plainBytes)) (\(Format.rate(opened.plainBytes, openSeconds)))", seconds: openSeconds))

        let checkName = check == .full ? "integrity_check" : "quick_check"
        let (problems, checkSeconds) = try timedStep(checkName, events: events) { _ -> String? in
            do {
                let db = try Database(path: partial, mode: [.readOnly, .immutable])
                return try db.integrityProblems(check)
            } catch let e as CError {
                return e.message
            }
        }
        if let problems {
            throw LajuError(.integrity, "restored database fails PRAGMA \(checkName): \(problems)",
                            hint: "the backup was taken from a damaged database; try an older backup")
        }
        events(.step(name: checkName, summary: "ok", seconds: checkSeconds))

        if let output {
            try output.install(partial: partial)
            keepPartial = true
        }
        return Outcome(key: sel.key, output: output?.path, source: sel.source, objectBytes: opened.objectBytes,
                       restoredBytes: opened.plainBytes, uploadedAt: sel.uploadedAt, downloadSeconds: downloadSeconds,
                       openSeconds: openSeconds, checkSeconds: checkSeconds, totalSeconds: monotonicSeconds() - started)
    }

    func prepareOutputDirectory(_ dir: String) throws {
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
