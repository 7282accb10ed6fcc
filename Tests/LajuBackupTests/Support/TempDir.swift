import XCTest
@testable import LajuBackup

/// knex's reference SQL (copied from the knex capture, not from our Swift strings).
enum KnexReference {
    static var directory: URL {
        TestPaths.resources.appendingPathComponent("knex")
    }

    /// The statements of a reference file, in order, without comments or the trailing `;`.
    static func statements(_ file: String) throws -> [String] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
            .filter { !$0.hasPrefix("--") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.hasSuffix(";") ? String($0.dropLast()) : $0 }
    }

    /// The DDL statements of `file` that create `table` (and its indexes) or knex's own tables.
    static func creates(_ file: String, on table: String) throws -> [String] {
        try statements(file).filter {
            $0.hasPrefix("create ") && ($0.contains("on `\(table)`") || $0.hasPrefix("create table `\(table)`"))
        }
    }

    /// What SQLite keeps in sqlite_master.sql for a CREATE statement: the text verbatim except
    /// the leading keywords, which it upper-cases (see the reference file's header).
    static func asStored(_ ddl: String) -> String {
        for kw in ["create table ", "create unique index ", "create index "] where ddl.hasPrefix(kw) {
            return kw.uppercased() + ddl.dropFirst(kw.count)
        }
        return ddl
    }
}

/// A scratch folder per test.
final class TempDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectoryPath() + "/lbunit-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

func NSTemporaryDirectoryPath() -> String {
    ProcessInfo.processInfo.environment["TMPDIR"].map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "/tmp"
}

/// A SQLite file with an app table (and optionally some SQL run on it).
@discardableResult
func makeDatabase(_ path: String, _ sql: [String] = []) throws -> Database {
    let db = try Database(path: path, mode: [.readWrite, .create])
    try db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    try db.execute("INSERT INTO users (name) VALUES ('ann'), ('bob')")
    for s in sql { try db.execute(s) }
    return db
}

/// `name -> sql` of every schema object, as SQLite stores it.
func schema(_ path: String) throws -> [String: String] {
    let db = try Database(path: path, mode: .readOnly)
    var out: [String: String] = [:]
    for r in try db.query("SELECT name, sql FROM sqlite_master") {
        out[r["name"]?.string ?? ""] = r["sql"]?.string ?? ""
    }
    return out
}

func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }
