/// S3 Object Lock and versions: backups an intruder with the server's credentials cannot delete.
///
/// - every object written carries `x-amz-object-lock-mode` and `-retain-until-date`
///   (`BACKUP_OBJECT_LOCK_MODE`, `BACKUP_OBJECT_LOCK_DAYS`), and a bucket without Object Lock is an
///   error at backup time, never a silent unlocked object;
/// - Object Lock implies versioning, where DeleteObject only adds a delete marker: `clean`
///   (`removeBackup`) deletes the versions themselves once their lock has expired, and the delete
///   markers, and reports a version still locked instead of failing;
/// - the rescue path: an intruder can hide every backup behind delete markers without destroying
///   one; `list --remote` shows such hidden backups and restore falls back to the newest surviving
///   version (`newestSurvivingVersion`, `hiddenBackups`).
extension S3Store {
    /// One entry of ListObjectVersions.
    public struct ObjectVersion: Sendable, Equatable {
        public var key: String
        public var versionID: String
        public var isLatest: Bool
        public var isDeleteMarker: Bool
        public var size: Int64
        public var lastModified: Double?
    }

    /// The headers that lock a new object, when Object Lock is configured.
    func objectLockHeaders(now: Double = Double(LocalTime.nowMilliseconds()) / 1000) -> [(String, String)] {
        guard let mode = configuration.objectLockMode else { return [] }
        let until = now + Double(configuration.objectLockDays) * 86_400
        return [("x-amz-object-lock-mode", mode), ("x-amz-object-lock-retain-until-date", HTTPDate.iso8601(until))]
    }

    /// Before a backup with Object Lock: the bucket must have it enabled. Credentials that may
    /// not read the configuration cannot tell; then the upload itself is refused by a bucket
    /// without Object Lock (InvalidRequest), with the same hint.
    func checkObjectLock() throws {
        let r = try attempt(method: "GET", key: nil, query: [("object-lock", "")])
        if let failure = r.failure {
            throw transportError(failure, operation: "GetObjectLockConfiguration", attempts: 1)
        }
        if (200...299).contains(r.status) {
            let enabled = XMLScan(r.body).first("ObjectLockEnabled")?.trimmingSpaces == "Enabled"
            guard enabled else { throw noObjectLock("its Object Lock configuration is not Enabled") }
            return
        }
        let e = S3ErrorResponse(status: r.status, body: r.body, headers: r.headers)
        if e.code == "AccessDenied" || e.code == "Forbidden" { return }
        if e.code == "ObjectLockConfigurationNotFoundError" || r.status == 404 {
            throw noObjectLock("it has no Object Lock configuration")
        }
        throw mapError(e, operation: "GetObjectLockConfiguration", key: nil, attempts: 1)
    }

    func noObjectLock(_ why: String) -> LajuError {
        LajuError(
            .storage,
            "BACKUP_OBJECT_LOCK_MODE=\(configuration.objectLockMode ?? "") is set, but bucket \(configuration.bucket) cannot lock objects: \(why); nothing was uploaded",
            hint:
                "enable Object Lock when creating a bucket (aws s3api create-bucket --object-lock-enabled-for-bucket; on Wasabi, \"Object Locking\" in the bucket's creation dialog) and point WASABI_BUCKET at it, or on AWS on this bucket after enabling versioning (aws s3api put-object-lock-configuration); or unset BACKUP_OBJECT_LOCK_MODE; see laju-backup.env(5), OBJECT LOCK"
        )
    }

    /// Every version and delete marker under `prefix`, in the listing's order. Complete and well
    /// formed, or an error (as `list`).
    public func versions(prefix: String) throws -> [ObjectVersion] {
        var out: [ObjectVersion] = []
        var keyMarker: String?
        var idMarker: String?
        var seen = Set<String>()
        for _ in 0..<S3Store.maxListPages {
            var query: [(String, String)] = [("versions", "")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let idMarker { query.append(("version-id-marker", idMarker)) }
            let operation = "ListObjectVersions \(prefix)"
            let r = try send(
                operation: operation, method: "GET", key: nil, query: query, responseBufferCap: S3Store.listBufferCap)
            func malformed(_ why: String) -> LajuError {
                LajuError(
                    .storage, "S3 \(Display.safe(operation)): malformed answer: \(why)",
                    hint: "the S3 server is misbehaving; nothing was changed")
            }
            if r.bodyTruncated { throw malformed("larger than \(S3Store.listBufferCap >> 20) MiB") }
            guard let root = XMLScan(r.body).elements("ListVersionsResult").first else {
                throw malformed("no complete <ListVersionsResult> document")
            }
            let doc = XMLScan(text: String(root))
            for (tag, marker) in [("Version", false), ("DeleteMarker", true)] {
                let entries = doc.elements(tag)
                guard entries.count == doc.count(opening: tag) else {
                    throw malformed("a <\(tag)> element is not closed")
                }
                for entry in entries {
                    let e = XMLScan(text: String(entry))
                    guard let key = e.first("Key"), let id = e.first("VersionId"), !id.isEmpty else {
                        throw malformed("a <\(tag)> without <Key> or <VersionId>")
                    }
                    guard key.hasPrefix(prefix) else {
                        throw malformed("key \(Display.quoted(key)) is outside the prefix")
                    }
                    let size = marker ? 0 : try S3Store.objectSize(e.first("Size"), what: "version \(id) of \(key)")
                    out.append(
                        ObjectVersion(
                            key: key, versionID: id,
                            isLatest: e.first("IsLatest")?.trimmingSpaces.lowercased() == "true",
                            isDeleteMarker: marker, size: size,
                            lastModified: e.first("LastModified").flatMap(HTTPDate.parseISO)))
                }
            }
            let top = XMLScan(text: doc.text.replacingContents(of: "Version").replacingContents(of: "DeleteMarker"))
            guard top.first("IsTruncated")?.trimmingSpaces.lowercased() == "true" else { return out }
            keyMarker = top.first("NextKeyMarker")
            idMarker = top.first("NextVersionIdMarker")
            let marker = (keyMarker ?? "") + "\u{0}" + (idMarker ?? "")
            guard keyMarker != nil, seen.insert(marker).inserted else {
                throw malformed("the listing does not advance")
            }
        }
        throw LajuError(
            .storage,
            "S3 ListObjectVersions \(Display.safe(prefix)): more than \(S3Store.maxListPages) pages; giving up")
    }

    /// The newest version of `key` that is not a delete marker, when the key's current version is
    /// one (a deleted or hidden backup); nil when the key is not deleted or nothing survives.
    public func newestSurvivingVersion(key: String) throws -> ObjectInfo? {
        try ObjectKey.validate(key, origin: "ListObjectVersions")
        let all = try versions(prefix: key).filter { $0.key == key }
        guard all.contains(where: { $0.isLatest && $0.isDeleteMarker }) || !all.contains(where: \.isLatest) else {
            return nil
        }
        guard let v = all.filter({ !$0.isDeleteMarker }).max(by: { ($0.lastModified ?? 0) < ($1.lastModified ?? 0) })
        else { return nil }
        return try head(key: key, versionID: v.versionID)
    }

    /// Backups under `prefix` whose current version is a delete marker but a version survives:
    /// the newest surviving version of each such key.
    public func hiddenBackups(prefix: String) throws -> [ObjectInfo] {
        let all = try versions(prefix: prefix)
        var out: [ObjectInfo] = []
        for (key, vs) in Dictionary(grouping: all, by: \.key) {
            guard vs.contains(where: { $0.isLatest && $0.isDeleteMarker }),
                let v = vs.filter({ !$0.isDeleteMarker }).max(by: { ($0.lastModified ?? 0) < ($1.lastModified ?? 0) })
            else { continue }
            out.append(ObjectInfo(key: key, size: v.size, lastModified: v.lastModified, versionID: v.versionID))
        }
        return out.sorted { $0.key < $1.key }
    }

    /// Retention's delete. Without Object Lock, DeleteObject as always. With it, every version
    /// of `key` goes once its lock has expired, then the delete markers; a version still locked
    /// keeps everything (`locked`), and a later run deletes it.
    public func removeEveryVersion(key: String) throws -> RemoveResult {
        guard configuration.objectLockMode != nil else { return try delete(key: key) ? .deleted : .absent }
        let all = try versions(prefix: key).filter { $0.key == key }
        if all.isEmpty { return .absent }
        let now = Double(LocalTime.nowMilliseconds()) / 1000
        var lockedUntil: Double?
        for v in all where !v.isDeleteMarker {
            let info = try head(key: key, versionID: v.versionID)
            if let until = info.lockedUntil, until > now {
                lockedUntil = max(lockedUntil ?? 0, until)
            }
        }
        if let lockedUntil { return .locked(until: lockedUntil) }
        for v in all.sorted(by: { !$0.isDeleteMarker && $1.isDeleteMarker }) {
            do {
                try deleteVersion(key: key, versionID: v.versionID)
            } catch let e as LajuError where e.isAccessDenied && !v.isDeleteMarker {
                // The server still holds it (a lock we could not read, a legal hold).
                return .locked(until: nil)
            }
        }
        return .deleted
    }

    /// DeleteObject of one version: removes it for good (a delete marker too).
    func deleteVersion(key: String, versionID: String) throws {
        _ = try send(
            operation: "DeleteObject \(key) version \(versionID)", method: "DELETE", key: key,
            query: [("versionId", versionID)], passthrough: [404])
    }
}
