import Foundation
import XCTest

/// A store as someone sees it who may write to it but has no key: objects and their metadata,
/// read and written behind laju-backup's back (the files of a local store; awscli on S3).
struct Intruder {
    var keys: () throws -> [String]
    var get: (String) throws -> (data: Data, metadata: [String: String])
    var put: (String, Data, [String: String]) throws -> Void

    static func local(store: URL) -> Intruder {
        func path(_ key: String) -> URL { store.appendingPathComponent(key) }
        return Intruder(
            keys: { Scratch.files(in: store).filter { !$0.hasSuffix(".meta.json") }.sorted() },
            get: { key in
                let meta = try Data(contentsOf: URL(fileURLWithPath: path(key).path + ".meta.json"))
                return (
                    try Data(contentsOf: path(key)),
                    try XCTUnwrap(try JSONSerialization.jsonObject(with: meta) as? [String: String])
                )
            },
            put: { key, data, metadata in
                try FileManager.default.createDirectory(
                    at: path(key).deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: path(key))
                try JSONSerialization.data(withJSONObject: metadata).write(
                    to: URL(fileURLWithPath: path(key).path + ".meta.json"))
            })
    }

    static func s3(_ f: S3Fixture, scratch: Scratch) -> Intruder {
        let body = scratch.url.appendingPathComponent("intruder.bin").path
        let meta = scratch.url.appendingPathComponent("intruder.json").path
        return Intruder(
            keys: { try f.keys().sorted() },
            get: { key in
                try f.aws("s3api get-object --bucket \(f.bucket) --key '\(key)' '\(body)' >/dev/null")
                let m = try f.aws(
                    "s3api head-object --bucket \(f.bucket) --key '\(key)' --query Metadata --output json")
                return (
                    try Data(contentsOf: URL(fileURLWithPath: body)),
                    try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(m.utf8)) as? [String: String])
                )
            },
            put: { key, data, metadata in
                try data.write(to: URL(fileURLWithPath: body))
                try JSONSerialization.data(withJSONObject: metadata).write(to: URL(fileURLWithPath: meta))
                try f.aws(
                    "s3api put-object --bucket \(f.bucket) --key '\(key)' --body '\(body)' --metadata 'file://\(meta)' >/dev/null"
                )
            })
    }

    /// Copies `from` to `to`, its metadata changed by `edit` (the object's bytes unchanged).
    func copy(_ from: String, to: String, edit: (inout [String: String]) -> Void = { _ in }) throws {
        var (data, metadata) = try get(from)
        edit(&metadata)
        try put(to, data, metadata)
    }
}

/// Two databases with the same file name (`app.sqlite3`) sharing one store, prefix and key: the
/// setting in which only an identity, not a name or a path, can tell their backups apart.
struct TwoDatabases {
    var a: LocalFixture
    var b: LocalFixture
    var envA: [String: String]
    var envB: [String: String]
    var intruder: Intruder
    var scratch: Scratch

    static func local() throws -> TwoDatabases {
        let s = try Scratch()
        let a = try LocalFixture(scratch: Scratch("identityA"))
        let b = try LocalFixture(scratch: Scratch("identityB"))
        var envB = b.env
        envB["BACKUP_STORAGE"] = a.env["BACKUP_STORAGE"]
        envB["BACKUP_ENCRYPTION_KEY"] = a.key
        return TwoDatabases(a: a, b: b, envA: a.env, envB: envB, intruder: .local(store: a.store), scratch: s)
    }

    static func s3() throws -> TwoDatabases {
        let s = try Scratch()
        let f = try S3Fixture(scratch: Scratch("identityA"))
        let b = try LocalFixture(scratch: Scratch("identityB"))
        var envB = b.env
        for (k, v) in f.env
        where !["BACKUP_DATABASE", "BACKUP_TMPDIR", "BACKUP_LOCK_DIR", "BACKUP_STATE_DIR"].contains(k) {
            envB[k] = v
        }
        return TwoDatabases(a: f.local, b: b, envA: f.env, envB: envB, intruder: .s3(f, scratch: s), scratch: s)
    }

    /// `backup --json` that must succeed; the object key.
    @discardableResult
    static func backup(_ env: [String: String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try CLI.run(["backup", "--json"], env: env)
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return try XCTUnwrap(o?["key"] as? String, r.output, file: file, line: line)
    }

    /// The same settings on a new host: BACKUP_DATABASE in a folder of its own.
    func newHost(_ env: [String: String], _ folder: String = "new-host") throws -> (
        env: [String: String], database: URL
    ) {
        let database = try scratch.sub(folder).appendingPathComponent("app.sqlite3")
        var moved = env
        moved["BACKUP_DATABASE"] = database.path
        return (moved, database)
    }

    /// The id laju-backup recorded inside a database.
    static func databaseID(_ db: URL) throws -> String {
        try sh("sqlite3 '\(db.path)' 'SELECT id FROM laju_backup_identity'").trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// Removes a database and its side files, as a lost disk or host would.
    static func lose(_ db: URL) {
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: db.path + suffix) }
    }

    /// A fresh object key for `app.sqlite3` under `backups/`, named like a backup.
    static func freshKey(_ stamp: String = "2031-01-01T00:00") -> String {
        "backups/app.sqlite3-\(stamp)-\(UUID().uuidString.lowercased()).db.gz.enc"
    }
}
