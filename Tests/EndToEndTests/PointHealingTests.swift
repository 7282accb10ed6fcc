import Foundation
import TestSupport
import XCTest

/// Restore points that something went wrong with: a pack with a rotten block, a newest point that
/// cannot be restored, garbage named like a point. Nothing is built on damage, retention never
/// deletes the last chain that restores, and nothing it cannot prove is this database's. Each
/// case runs on the local store and on SeaweedFS.
final class PointHealingTests: XCTestCase {
    /// The store of a fixture, as the test needs to reach into it behind laju-backup's back.
    struct Place {
        var env: [String: String]
        var database: URL
        var scratch: Scratch
        var read: (String) throws -> Data
        var write: (String, Data) throws -> Void
        var delete: (String) throws -> Void
        var keys: () throws -> [String]

        static func local(_ s: Scratch) throws -> Place {
            let f = try LocalFixture(scratch: s, rows: 5000)
            return Place(
                env: f.env, database: f.database, scratch: s,
                read: { try Data(contentsOf: URL(fileURLWithPath: f.objectPath($0))) },
                write: { try $1.write(to: URL(fileURLWithPath: f.objectPath($0))) },
                delete: { try FileManager.default.removeItem(atPath: f.objectPath($0)) },
                keys: { Scratch.files(in: f.store).filter { !$0.hasSuffix(".meta.json") }.sorted() })
        }

        static func s3(_ s: Scratch) throws -> Place {
            let f = try S3Fixture(scratch: s, rows: 5000)
            let file = s.url.appendingPathComponent("transfer.bin").path
            return Place(
                env: f.env, database: f.database, scratch: s,
                read: { key in
                    try f.aws("s3api get-object --bucket \(f.bucket) --key '\(key)' '\(file)'")
                    return try Data(contentsOf: URL(fileURLWithPath: file))
                },
                write: { key, data in
                    try data.write(to: URL(fileURLWithPath: file))
                    try f.aws("s3api put-object --bucket \(f.bucket) --key '\(key)' --body '\(file)'")
                },
                delete: { try f.aws("s3api delete-object --bucket \(f.bucket) --key '\($0)'") },
                keys: { try f.keys().sorted() })
        }
    }

    func point(_ p: Place, _ extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws
        -> [String: Any]
    {
        let r = try CLI.run(["backup", "--incremental", "--json"] + extra, env: p.env)
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        var o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        o["stderr"] = r.stderr
        return o
    }

    func change(_ p: Place, _ n: Int) throws {
        try sh(
            "sqlite3 '\(p.database.path)' \"UPDATE items SET name = 'change \(n)' WHERE id BETWEEN \(n * 700) AND \(n * 700 + 40)\""
        )
    }

    func dump(_ db: String) throws -> String {
        try sh("sqlite3 '\(db)' .dump | sha256sum").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func name(_ key: Any?) -> String { String((key as? String ?? "").split(separator: "/").last ?? "") }

    // MARK: - A rotten block

    func testADamagedBlockIsNotBuiltOnLocal() throws { try damagedBlockIsNotBuiltOn(try Place.local(try Scratch())) }
    func testADamagedBlockIsNotBuiltOnS3() throws { try damagedBlockIsNotBuiltOn(try Place.s3(try Scratch())) }

    /// A bit flip in the base's pack (same size) is found by the drill. The message lists every
    /// point that needs the pack, the ones in between too, and says how to get past it; the next
    /// point is a new base that seals those pages again, and it restores. `--new-base` does the
    /// same on demand.
    func damagedBlockIsNotBuiltOn(_ p: Place) throws {
        let base = try point(p)
        try change(p, 1)
        let middle = try point(p)
        try change(p, 2)
        let newest = try point(p)
        let pack = try XCTUnwrap(base["pack"] as? String)
        var bytes = try p.read(pack)
        for i in (bytes.count / 2)..<(bytes.count / 2 + 8) { bytes[i] ^= 0x5A }
        try p.write(pack, bytes)

        let v = try CLI.run(["verify", "--at", "latest"], env: p.env)
        XCTAssertEqual(v.status, 4, v.output)
        XCTAssertTrue(v.stderr.contains(pack) && v.stderr.contains("is damaged"), v.stderr)
        for o in [base, middle, newest] {
            XCTAssertTrue(v.stderr.contains(name(o["key"])), "\(name(o["key"])) is not named: \(v.stderr)")
        }
        XCTAssertTrue(v.stderr.contains("--new-base"), v.stderr)

        try change(p, 3)
        let healed = try point(p)
        XCTAssertEqual(healed["kind"] as? String, "base", "the next point built on the damaged pack")
        XCTAssertTrue((healed["stderr"] as? String ?? "").contains("found damaged by a restore"), "\(healed)")
        let out = p.scratch.url.appendingPathComponent("healed.db").path
        let r = try CLI.run(["restore", "--at", "latest", "--output", out], env: p.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try dump(out), try dump(p.database.path))
        // The note is gone with the damage: the next point is incremental again.
        try change(p, 4)
        XCTAssertEqual(try point(p)["kind"] as? String, "incremental")

        // --new-base: a new chain that points at no stored block: with every older pack gone,
        // its point still restores.
        let oldPacks = try p.keys().filter { $0.contains("/packs/") }
        try change(p, 5)
        let fresh = try point(p, ["--new-base"])
        XCTAssertEqual(fresh["kind"] as? String, "base")
        XCTAssertTrue((fresh["stderr"] as? String ?? "").contains("a new base was asked for"), "\(fresh)")
        for pack in oldPacks { try p.delete(pack) }
        let again = p.scratch.url.appendingPathComponent("fresh.db").path
        XCTAssertEqual(try CLI.run(["restore", "--at", "latest", "--output", again], env: p.env).status, 0)
        XCTAssertEqual(try dump(again), try dump(p.database.path))
    }

    // MARK: - Retention

    func testRetentionKeepsTheNewestChainThatRestoresLocal() throws {
        try retentionKeepsTheNewestChainThatRestores(try Place.local(try Scratch()))
    }
    func testRetentionKeepsTheNewestChainThatRestoresS3() throws {
        try retentionKeepsTheNewestChainThatRestores(try Place.s3(try Scratch()))
    }

    /// The newest point's pack is gone, and garbage named like a point, newer still, was planted:
    /// `clean --points --keep-last 1` keeps the newest point that restores (and its chain), leaves
    /// the two it cannot use alone, and that point still restores. When no point restores at all,
    /// it deletes nothing and says so.
    func retentionKeepsTheNewestChainThatRestores(_ p: Place) throws {
        let first = try point(p)
        try change(p, 1)
        let second = try point(p)
        let restorable = p.scratch.url.appendingPathComponent("second.db").path
        try sh("sqlite3 '\(p.database.path)' \".backup '\(restorable)'\"")
        try change(p, 2)
        let third = try point(p)
        try p.delete(try XCTUnwrap(third["pack"] as? String))
        let root = (third["key"] as! String).split(separator: "/").dropLast(2).joined(separator: "/")
        let garbage = "\(root)/points/29991231T235959.000Z-0badc0de.incr"
        try p.write(garbage, Data((0..<400).map { UInt8(truncatingIfNeeded: $0 &* 37) }))

        let c = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0"], env: p.env)
        XCTAssertEqual(c.status, 0, c.output)
        let keys = try p.keys()
        for o in [first, second, third] {
            XCTAssertTrue(keys.contains(o["key"] as! String), "\(o["key"]!) was deleted: \(keys)")
        }
        XCTAssertTrue(keys.contains(garbage), "the planted object was deleted")
        XCTAssertTrue(c.output.contains("left alone"), c.output)
        let out = p.scratch.url.appendingPathComponent("restored.db").path
        let r = try CLI.run(["restore", "--at", second["time"] as! String, "--output", out], env: p.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try dump(out), try dump(restorable))

        // Nothing restores any more: nothing is deleted.
        try p.delete(try XCTUnwrap(first["pack"] as? String))
        let before = try p.keys()
        let none = try CLI.run(["clean", "--points", "--keep-last", "1", "--grace", "0"], env: p.env)
        XCTAssertEqual(none.status, 4, none.output)
        XCTAssertTrue(none.stderr.contains("deletes nothing"), none.stderr)
        XCTAssertEqual(try p.keys(), before)
    }
}
