import Foundation
import TestSupport
import XCTest

/// An app database with knex's backup_files table, a store (a local directory or a bucket on the
/// SeaweedFS S3 server) and helpers to plant rows and objects with chosen dates, so retention
/// and reconcile can be run against months of history in a second.
final class CleanFixture {
    enum Kind { case local, s3 }
    let kind: Kind
    let scratch: Scratch
    let base: LocalFixture
    var env: [String: String]
    private var s3: SeaweedFS?
    private(set) var bucket = ""

    init(_ kind: Kind, name: String = #function) throws {
        self.kind = kind
        scratch = try Scratch(name)
        base = try LocalFixture(scratch: scratch, rows: 50)
        env = base.env
        if kind == .s3 {
            let server = try SeaweedFS.shared()
            s3 = server
            bucket = try server.makeBucket()
            for (k, v) in server.env(bucket: bucket) { env[k] = v }
        }
    }

    var database: URL { base.database }
    /// The catalog's `storage` value for this store.
    var label: String { kind == .s3 ? "s3" : "local" }
    var storeDir: URL { base.store }

    /// Read+list only credentials: DELETE gets 403.
    var readOnlyEnv: [String: String] {
        guard let s3 else { return env }
        var e = env
        e["WASABI_ACCESS_KEY"] = s3.readerAccessKey
        e["WASABI_SECRET_KEY"] = s3.readerSecretKey
        return e
    }

    struct Plant {
        var name: String
        var uploadedAt: Int64
        var object = true
        var size = 64
        /// A real backup name (`<db>-<stamp>-<uuid>.db.gz.enc`): retention and reconcile only act
        /// on names of this database. The uuid is derived from `name`, so a test can rebuild a key.
        var key: String { CleanFixture.key(name) }
    }

    static func key(_ name: String, database: String = "app.sqlite3", prefix: String = "backups/") -> String {
        func fnv(_ seed: UInt64) -> String {
            var h: UInt64 = seed
            for b in name.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
            return String(format: "%016llx", h)
        }
        let hex = fnv(14_695_981_039_346_656_037) + fnv(1_099_511_628_211)
        let u = Array(hex)
        let uuid =
            "\(String(u[0..<8]))-\(String(u[8..<12]))-\(String(u[12..<16]))-\(String(u[16..<20]))-\(String(u[20..<32]))"
        return "\(prefix)\(database)-2025-01-01T00:00-\(uuid).db.gz.enc"
    }

    static func daysAgo(_ d: Double) -> Int64 { Int64((Date().timeIntervalSince1970 - d * 86_400) * 1000) }

    /// Milliseconds of a UTC date at noon (the CLI runs with TZ=UTC).
    static func utc(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 12) -> Int64 {
        var c = DateComponents()
        c.year = y; c.month = m; c.day = d; c.hour = h
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        return Int64(cal.date(from: c)!.timeIntervalSince1970 * 1000)
    }

    /// Inserts a row per plant (file_size = the object's size) and uploads the objects.
    func plant(_ plants: [Plant]) throws {
        var sql = "BEGIN;\n"
        for p in plants {
            sql +=
                "INSERT INTO backup_files VALUES ('id-\(p.name)', '\(p.key)', '\(p.key.split(separator: "/").last!)', \(p.size), 'gzip', '\(label)', 'md5-\(p.name)', \(p.uploadedAt), NULL, 'aes-256-gcm', 'aXZpdml2aXZpdml2', 'dGFndGFndGFndGFndGFnIQ==');\n"
        }
        sql += "COMMIT;\n"
        try sh("sqlite3 '\(database.path)' <<'SQL'\n\(sql)SQL")
        try putObjects(plants.filter(\.object).map { ($0.key, $0.size) })
    }

    /// Objects with random bytes, no catalog row.
    func putObjects(_ objects: [(key: String, size: Int)]) throws {
        guard !objects.isEmpty else { return }
        switch kind {
        case .local:
            for o in objects {
                let url = storeDir.appendingPathComponent(o.key)
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data((0..<o.size).map { _ in UInt8.random(in: 0...255) }).write(to: url)
            }
        case .s3:
            let list = objects.map { "(\"\($0.key)\", \($0.size))" }.joined(separator: ", ")
            try boto(
                """
                import os
                for key, size in [\(list)]:
                    s3.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(size))
                """)
        }
    }

    /// Every object key in the store, sorted.
    func keys() throws -> [String] {
        switch kind {
        case .local:
            return Scratch.files(in: storeDir).filter { !$0.hasSuffix(".meta.json") }
        case .s3:
            let out = try boto(
                """
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
                    for o in page.get("Contents", []):
                        print(o["Key"])
                """)
            return out.split(separator: "\n").map(String.init).sorted()
        }
    }

    /// Sets a local object's modification time `days` back (S3 cannot backdate objects).
    func age(_ key: String, days: Double) throws {
        precondition(kind == .local)
        let t = Int(Date().timeIntervalSince1970 - days * 86_400)
        try sh("touch -d @\(t) '\(storeDir.appendingPathComponent(key).path)'")
    }

    /// key -> deleted_at (nil while active), for every row.
    func rows() throws -> [String: Int64?] {
        let out = try sh("sqlite3 '\(database.path)' \"SELECT key, ifnull(deleted_at, 'NULL') FROM backup_files\"")
        var d: [String: Int64?] = [:]
        for line in out.split(separator: "\n") {
            let p = line.split(separator: "|")
            d[String(p[0])] = Int64(p[1])
        }
        return d
    }

    /// Keys of active rows, sorted.
    func activeKeys() throws -> [String] { try rows().filter { $0.value == nil }.map(\.key).sorted() }

    /// The catalog table, byte-comparable.
    func catalogDump() throws -> String {
        try sh("sqlite3 '\(database.path)' 'SELECT * FROM backup_files ORDER BY key'")
    }

    @discardableResult
    private func boto(_ body: String) throws -> String {
        guard let s3 else { return "" }
        let script = """
            import boto3
            from botocore.config import Config
            s3 = boto3.client("s3", endpoint_url="\(s3.endpoint)", config=Config(s3={"addressing_style": "path"}))
            BUCKET = "\(bucket)"
            \(body)
            """
        return try sh("python3 - <<'PY'\n\(script)\nPY", env: s3.awsEnv())
    }
}
