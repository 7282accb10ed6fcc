/// A small realistic app database for `demo` and the benchmarks: users, orders with text and
/// numbers, plus the catalog table, all in WAL mode as Laju apps run.
public enum SampleDatabase {
    public static func create(at path: String, rows: Int) throws {
        let db = try Database(path: path, mode: [.readWrite, .create])
        try db.execute(
            """
            PRAGMA journal_mode = WAL;
            CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, created_at INTEGER);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), total_cents INTEGER,
                                 status TEXT, note TEXT, created_at INTEGER);
            CREATE INDEX orders_user ON orders(user_id);
            """)
        try db.execute(KnexSchema.createBackupFiles + ";" + KnexSchema.createBackupFilesKeyIndex)
        try db.execute("BEGIN")
        let users = max(1, rows / 10)
        try db.query(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO users (id, email, name, created_at)
            SELECT i, 'user' || i || '@example.com', 'User ' || i, 1700000000000 + i * 1000 FROM n
            """, [.integer(Int64(users))])
        try db.query(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO orders (id, user_id, total_cents, status, note, created_at)
            SELECT i, 1 + (i * 7919) % ?, (i * 104729) % 100000,
                   CASE i % 4 WHEN 0 THEN 'paid' WHEN 1 THEN 'shipped' WHEN 2 THEN 'pending' ELSE 'refunded' END,
                   'order ' || i || ' ' || hex(randomblob(16)) || ' deliver to street ' || (i % 997),
                   1700000000000 + i * 60000 FROM n
            """, [.integer(Int64(rows)), .integer(Int64(users))])
        try db.execute("COMMIT")
    }

    /// A digest of every user table's rows (not the file bytes), to compare two databases.
    /// `immutable` reads a file nobody else uses without creating -wal/-shm files beside it.
    public static func fingerprint(_ path: String, immutable: Bool = false) throws -> String {
        let db = try Database(path: path, mode: immutable ? [.readOnly, .immutable] : [.readOnly])
        let d = Digest(.sha256)
        for table in ["users", "orders"] {
            for row in try db.query("SELECT * FROM \(table) ORDER BY id") {
                for k in row.keys.sorted() { d.update("\(k)=\(row[k]?.string ?? "NULL");") }
            }
        }
        return d.finalize().hexString
    }
}
