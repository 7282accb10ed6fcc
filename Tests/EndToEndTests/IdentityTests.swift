import Foundation
import XCTest

/// Which database a full backup belongs to is known, not inferred: two databases with the same
/// file name share a store, a prefix and a key, and someone who may write to the store but has no
/// key copies objects between them and rewrites their metadata. Nothing of the other database's,
/// and nothing whose metadata does not authenticate, is restored, adopted or preferred; a
/// disaster restore at another path finds the database's own newest backup; a declared name
/// cannot be taken by a second database. Each case runs on the local store and on SeaweedFS.
final class IdentityTests: XCTestCase {
    typealias Two = TwoDatabases

    func sleepPastTheStoreClock() { usleep(1_100_000) }

    // MARK: - Transplanted and forged full backups

    func testTransplantedAndForgedBackupsAreNotThisDatabasesLocal() throws {
        try transplantedAndForged(try Two.local())
    }
    func testTransplantedAndForgedBackupsAreNotThisDatabasesS3() throws { try transplantedAndForged(try Two.s3()) }

    /// A's newest backup is copied under a new name in B's scope twice: once with its metadata
    /// claiming B's identity and B's source id (the MAC left as it was), once stripped to the Laju
    /// fields with B's source id (as an object of the Laju scripts would look). B's disaster restore
    /// restores B's own backup and names both copies as skipped; `restore --key` of the forged copy
    /// is refused (exit 4) and writes nothing; B's `catalog sync` adopts only B's own backup.
    func transplantedAndForged(_ t: Two) throws {
        try Two.backup(t.envA)
        sleepPastTheStoreClock()
        let b1 = try Two.backup(t.envB)
        let bContent = try SQLiteContent.of(t.b.database, immutable: false)
        sleepPastTheStoreClock()
        let a2 = try Two.backup(t.envA)
        let bMeta = try t.intruder.get(b1).metadata
        let bSource = try XCTUnwrap(bMeta["source-id"])
        sleepPastTheStoreClock()
        let forged = Two.freshKey("2031-01-01T00:00")
        try t.intruder.copy(a2, to: forged) { m in
            m["identity"] = bMeta["identity"]
            m["source-id"] = bSource
        }
        sleepPastTheStoreClock()
        let stripped = Two.freshKey("2031-01-01T00:01")
        try t.intruder.copy(a2, to: stripped) { m in
            m = m.filter { ["algo", "iv", "tag", "comp", "checksum"].contains($0.key) }
            m["source-id"] = bSource
        }

        Two.lose(t.b.database)
        let r = try CLI.run(["restore", "--output", t.b.database.path], env: t.envB)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try SQLiteContent.of(t.b.database), bContent, "B's restore brought back another database")
        XCTAssertTrue(r.stderr.contains("skipped \(forged): its metadata does not authenticate"), r.stderr)
        XCTAssertTrue(r.stderr.contains("skipped \(a2): a backup of another database"), r.stderr)
        let done = try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.contains("restore ok:") }, r.stderr)
        XCTAssertTrue(done.contains(b1), String(done))

        let out = t.scratch.url.appendingPathComponent("forged.db")
        let k = try CLI.run(["restore", "--key", forged, "--output", out.path], env: t.envB)
        XCTAssertEqual(k.status, 4, k.output)
        XCTAssertTrue(k.stderr.contains("\(forged) is not restored: its metadata does not authenticate"), k.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))

        let sync = try CLI.run(["catalog", "sync", "--json"], env: t.envB)
        XCTAssertEqual(sync.status, 0, sync.output)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(sync.stdout.utf8)) as? [String: Any])
        let adopted = ((o["adopted"] as? [[String: Any]]) ?? []).compactMap { $0["key"] as? String }
        XCTAssertEqual(adopted, [b1], sync.stdout)
        let skipped = ((o["skipped"] as? [[String: Any]]) ?? []).compactMap { $0["key"] as? String }
        XCTAssertTrue(Set([forged, stripped, a2]).isSubset(of: Set(skipped)), sync.stdout)
    }

    // MARK: - A disaster restore on a new host

    func testDisasterRestoreAtAnotherPathFindsItsOwnNewestLocal() throws {
        try disasterAtAnotherPath(try Two.local())
    }
    func testDisasterRestoreAtAnotherPathFindsItsOwnNewestS3() throws { try disasterAtAnotherPath(try Two.s3()) }

    /// The database's first backup is also in the store as the Laju scripts would have made it
    /// (their five metadata fields, nothing else), older than its two later backups. With the
    /// database gone and the same settings pointing at another folder (a new host), restore brings
    /// back the newest own backup, not the older Laju object. Once another database with the same
    /// file name has backups there too, nothing tells the two apart without a declared name: the
    /// restore stops, lists both, and writes nothing.
    func disasterAtAnotherPath(_ t: Two) throws {
        let first = try Two.backup(t.envA)
        try t.intruder.copy(first, to: Two.freshKey("2020-01-01T00:00")) { m in
            m = m.filter { ["algo", "iv", "tag", "comp", "checksum"].contains($0.key) }
        }
        for n in 1...2 {
            sleepPastTheStoreClock()
            try t.a.sql("UPDATE items SET name = 'change \(n)' WHERE id <= \(n * 10);")
            try Two.backup(t.envA)
        }
        let newest = try SQLiteContent.of(t.a.database, immutable: false)
        Two.lose(t.a.database)

        let (moved, host) = try t.newHost(t.envA)
        let r = try CLI.run(["restore", "--output", host.path], env: moved)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try SQLiteContent.of(host), newest, r.stderr)

        sleepPastTheStoreClock()
        try Two.backup(t.envB)
        let other = t.scratch.url.appendingPathComponent("other-host.sqlite3")
        let elsewhere = try t.newHost(t.envA, "third-host").env
        let s = try CLI.run(["restore", "--output", other.path], env: elsewhere)
        XCTAssertEqual(s.status, 5, s.output)
        XCTAssertTrue(s.stderr.contains("2 databases named app.sqlite3 have backups"), s.stderr)
        XCTAssertTrue(s.stderr.contains("database id \(try Two.databaseID(t.b.database))"), s.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: other.path))
    }

    // MARK: - A declared name

    func testADeclaredNameIsOneDatabasesLocal() throws { try declaredName(try Two.local()) }
    func testADeclaredNameIsOneDatabasesS3() throws { try declaredName(try Two.s3()) }

    /// A declares BACKUP_NAME=shop, B BACKUP_NAME=blog, and B's backups are the newest in the
    /// store. A's disaster restore at another path restores A's newest and skips B's. A second
    /// database declaring shop is refused with both named; the database restored from A's backup
    /// is shop's and may back up at its new path; `--claim-name` moves the name, after which the
    /// old holder is refused. An identity record rewritten without the key stops the backup.
    func declaredName(_ t: Two) throws {
        var a = t.envA, b = t.envB
        a["BACKUP_NAME"] = "shop"
        b["BACKUP_NAME"] = "blog"
        try Two.backup(a)
        sleepPastTheStoreClock()
        try Two.backup(b)
        sleepPastTheStoreClock()
        try t.a.sql("UPDATE items SET name = 'shop now' WHERE id <= 5;")
        try Two.backup(a)
        let shop = try SQLiteContent.of(t.a.database, immutable: false)
        let shopID = try Two.databaseID(t.a.database), blogID = try Two.databaseID(t.b.database)
        sleepPastTheStoreClock()
        let b2 = try Two.backup(b)
        Two.lose(t.a.database)

        let (moved, host) = try t.newHost(a)
        let r = try CLI.run(["restore", "--output", host.path], env: moved)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try SQLiteContent.of(host), shop)
        XCTAssertTrue(r.stderr.contains("skipped \(b2): a backup of another database (BACKUP_NAME=blog)"), r.stderr)

        var intruding = b
        intruding["BACKUP_NAME"] = "shop"
        let refused = try CLI.run(["backup"], env: intruding)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("BACKUP_NAME=shop is the identity of another database (id \(shopID)"))
        XCTAssertTrue(refused.stderr.contains("has id \(blogID)"), refused.stderr)
        XCTAssertEqual(try CLI.run(["backup", "--incremental"], env: intruding).status, 2, "a point slipped in")

        XCTAssertEqual(try Two.databaseID(host), shopID, "the restored database lost its id")
        try Two.backup(moved)
        let claim = try CLI.run(["backup", "--claim-name"], env: intruding)
        XCTAssertEqual(claim.status, 0, claim.output)
        XCTAssertTrue(claim.stderr.contains("BACKUP_NAME=shop taken over from database \(shopID)"), claim.stderr)
        let old = try CLI.run(["backup"], env: moved)
        XCTAssertEqual(old.status, 2, old.output)
        XCTAssertTrue(old.stderr.contains("id \(blogID)"), old.stderr)

        let record = "backups/identities/shop.json"
        var (body, meta) = try t.intruder.get(record)
        body = Data(String(decoding: body, as: UTF8.self).replacingOccurrences(of: blogID, with: shopID).utf8)
        try t.intruder.put(record, body, meta)
        let forged = try CLI.run(["backup"], env: moved)
        XCTAssertEqual(forged.status, 4, forged.output)
        XCTAssertTrue(forged.stderr.contains("the identity record \(record) does not authenticate"), forged.stderr)
    }

    /// Only another database's backups carry the file name: a declared name finds none of its own
    /// and says so (exit 5), each skipped one named; nothing is written.
    func testOnlyAnotherDatabasesBackupsAreNeverRestored() throws {
        let t = try Two.local()
        var b = t.envB
        b["BACKUP_NAME"] = "blog"
        let b1 = try Two.backup(b)
        var a = t.envA
        a["BACKUP_NAME"] = "shop"
        Two.lose(t.a.database)
        let r = try CLI.run(["restore", "--output", t.a.database.path], env: a)
        XCTAssertEqual(r.status, 5, r.output)
        XCTAssertTrue(r.stderr.contains("skipped \(b1): a backup of another database (BACKUP_NAME=blog)"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: t.a.database.path))
    }

    /// The MACs are the ones docs/design.md and docs/format-incremental.md specify, computed by an
    /// implementation of our own from that text alone (Python's hmac and hashlib): the object's
    /// `auth` over its key and pairs, the identity record's over its key and body, and a version 2
    /// pack's header under the keys derived for the identity. The object's metadata names the
    /// identity that the database recorded inside itself.
    func testTheMACsAreTheOnesTheDesignSpecifies() throws {
        let t = try Two.local()
        var a = t.envA
        a["BACKUP_NAME"] = "shop"
        let key = try Two.backup(a)
        let plain = try Two.backup(t.envB)
        let tool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/metadata_auth.py").path
        for (k, identity) in [(key, "name:shop"), (plain, "db:" + (try Two.databaseID(t.b.database)))] {
            let meta = t.a.store.appendingPathComponent(k + ".meta.json").path
            let pairs = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: meta)))
                    as? [String: String])
            XCTAssertEqual(pairs["identity"], identity)
            let expected = try sh("python3 '\(tool)' object '\(t.a.key)' '\(k)' '\(meta)'")
            XCTAssertEqual(pairs["auth"], expected.trimmingCharacters(in: .whitespacesAndNewlines), k)
        }
        let record = "backups/identities/shop.json"
        let body = t.a.store.appendingPathComponent(record).path
        let (_, recordMeta) = try t.intruder.get(record)
        let expected = try sh("python3 '\(tool)' record '\(t.a.key)' '\(record)' '\(body)'")
        XCTAssertEqual(recordMeta["auth"], expected.trimmingCharacters(in: .whitespacesAndNewlines))
        let fields = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: body))) as? [String: Any])
        XCTAssertEqual(fields["database_id"] as? String, try Two.databaseID(t.a.database))
        XCTAssertEqual(fields["format"] as? String, "laju-backup identity v1")

        // A point's pack starts with the header docs/format-incremental.md gives for the identity.
        let r = try CLI.run(["backup", "--incremental", "--json"], env: a)
        XCTAssertEqual(r.status, 0, r.output)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let pack = try XCTUnwrap(o["pack"] as? String, r.stdout)
        XCTAssertTrue(pack.hasPrefix("backups/incremental/v2/name-shop/packs/"), pack)
        let relative = String(pack.dropFirst("backups/incremental/v2/name-shop/".count))
        let header = try Data(contentsOf: t.a.store.appendingPathComponent(pack)).prefix(40)
        let expectedHeader = try sh("python3 '\(tool)' pack '\(t.a.key)' 'name:shop' '\(relative)'")
        XCTAssertEqual(
            header.map { String(format: "%02x", $0) }.joined(),
            expectedHeader.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// `restore --activate` keeps the live database's identity: content from before ids were
    /// recorded gets the live id; another database's backup, even named by --key, is not put live.
    func testActivationKeepsTheDatabasesIdentity() throws {
        let t = try Two.local()
        try Two.backup(t.envA)
        let id = try Two.databaseID(t.a.database)
        let old = t.scratch.url.appendingPathComponent("before-ids.sqlite3")
        try sh("sqlite3 '\(t.a.database.path)' \".backup '\(old.path)'\"")
        try sh("sqlite3 '\(old.path)' 'DROP TABLE laju_backup_identity; PRAGMA journal_mode=DELETE;'")
        let r = try CLI.run(["restore", "--activate", "--yes", "--from-file", old.path], env: t.envA)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try Two.databaseID(t.a.database), id, "activation changed the database's identity")
        XCTAssertTrue(try sh("sqlite3 '\(old.path)' .tables").contains("items"))
        XCTAssertFalse(
            try sh("sqlite3 '\(old.path)' .tables").contains("laju_backup_identity"), "--from-file was changed")

        let b1 = try Two.backup(t.envB)
        let live = try SQLiteContent.of(t.a.database, immutable: false)
        let other = try CLI.run(["restore", "--activate", "--yes", "--key", b1], env: t.envA)
        XCTAssertEqual(other.status, 2, other.output)
        XCTAssertTrue(
            other.stderr.contains("the backup is of another database (id \(try Two.databaseID(t.b.database)))"))
        XCTAssertEqual(try SQLiteContent.of(t.a.database, immutable: false), live)
        XCTAssertEqual(try Two.databaseID(t.a.database), id)
    }

    /// A name that cannot be part of an object key is refused before anything happens.
    func testAnUnusableNameIsRefused() throws {
        let t = try Two.local()
        for bad in ["../x", "a/b", "-x", String(repeating: "n", count: 65), "naïve"] {
            var e = t.envA
            e["BACKUP_NAME"] = bad
            let r = try CLI.run(["backup"], env: e)
            XCTAssertEqual(r.status, 2, "\(bad): \(r.output)")
            XCTAssertTrue(r.stderr.contains("is not a usable name"), r.stderr)
        }
        XCTAssertEqual(try t.intruder.keys(), [])
    }
}
