/// A backup is made with the key of this database's newest backup, unless the operator says the
/// key changed on purpose (`backup --new-key`). A key replaced by mistake (a second
/// `BACKUP_ENCRYPTION_KEY` line, a profile with another valid key) would otherwise give nights of
/// backups that exit 0 and that no restore made with the key kept off the host can open.
struct KeyContinuity {
    let catalog: Catalog
    let scope: BackupScope
    /// Read with the read credentials when configured: the nightly ones may only write.
    let store: ObjectStore
    let events: JobEventSink

    /// The newest backup's recorded key fingerprint, when its row and its object's metadata say;
    /// nil when nothing can be compared (no backup yet, the object unreadable with these
    /// credentials, an object of the Laju scripts, which records no fingerprint).
    func newestFingerprint() throws -> (key: String, uploadedAt: Int64, fingerprint: String)? {
        guard let newest = try catalog.scan(includeDeleted: false).split(scope).ours.first else { return nil }
        let info: ObjectInfo
        do { info = try store.head(key: newest.key) } catch let e as LajuError where e.isNotFound || e.isAccessDenied {
            return nil
        }
        guard let fp = (try? ObjectMetadata(pairs: info.metadata))?.keyFingerprint else { return nil }
        return (newest.key, newest.uploadedAt, fp)
    }

    /// Refuses a key other than the newest backup's, unless `newKey`; then says what changed.
    func check(_ encryptionKey: EncryptionKey, newKey: Bool) throws {
        guard let newest = try newestFingerprint(), newest.fingerprint != encryptionKey.fingerprint else {
            if newKey {
                events(
                    .warning(
                        "--new-key given, but the key is the one of this database's newest backup: nothing changed"))
            }
            return
        }
        let when = LocalTime.logStamp(epochSeconds: Double(newest.uploadedAt) / 1000)
        if newKey {
            events(
                .warning(
                    "the encryption key changed (fingerprint \(Display.safe(newest.fingerprint)) -> \(encryptionKey.fingerprint), --new-key): backups up to \(Display.safe(newest.key)) need the old key; keep it"
                ))
            return
        }
        throw LajuError(
            .usage,
            "BACKUP_ENCRYPTION_KEY has fingerprint \(encryptionKey.fingerprint), but the newest backup of \(scope.databaseName), \(Display.safe(newest.key)) (\(when)), was made with fingerprint \(Display.safe(newest.fingerprint)): refused, a backup under a changed key is one no restore with the old key can open",
            hint:
                "put back the key with fingerprint \(Display.safe(newest.fingerprint)) (`laju-backup config` shows where each setting comes from); if the key was changed on purpose, run `laju-backup backup --new-key` once, and keep the old key for the older backups"
        )
    }
}
