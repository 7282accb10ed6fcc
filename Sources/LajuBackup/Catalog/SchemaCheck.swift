/// The shape of a `backup_files` table as SQLite reports it (`PRAGMA table_info`,
/// `PRAGMA index_list`), compared with the two variants found in the wild.
///
/// The expected shapes are not hand-written lists: they are read back from an in-memory database
/// after running knex's own DDL (`KnexSchema.guide`, `KnexSchema.lajuOriginal`), so the check and
/// the DDL can never drift apart.
public struct TableShape: Equatable, Sendable {
    public struct Column: Equatable, Sendable {
        public var name: String
        /// Declared type, lowercased (`varchar(255)`, `bigint`, `char(36)`).
        public var type: String
        public var notNull: Bool
        /// The default expression as declared (`'gzip'`), if any.
        public var defaultValue: String?
        public var primaryKey: Bool
    }
    public struct Index: Equatable, Sendable, Hashable {
        public var name: String
        public var unique: Bool
        public var columns: [String]
    }
    public var columns: [Column]
    /// Declared indexes (SQLite's automatic primary-key index left out), sorted by name.
    public var indexes: [Index]

    /// Reads the shape of `table`; `nil` when there is no such table.
    public static func read(_ db: Database, table: String = Catalog.table) throws -> TableShape? {
        let cols = try db.query(
            "SELECT name, type, \"notnull\" AS nn, dflt_value, pk FROM pragma_table_info(?)", [.text(table)])
        guard !cols.isEmpty else { return nil }
        let columns = cols.map {
            Column(
                name: $0["name"]?.string ?? "", type: ($0["type"]?.string ?? "").lowercased(),
                notNull: ($0["nn"]?.int64 ?? 0) != 0, defaultValue: $0["dflt_value"]?.string,
                primaryKey: ($0["pk"]?.int64 ?? 0) != 0)
        }
        var indexes: [Index] = []
        for ix in try db.query("SELECT name, \"unique\" AS u, origin FROM pragma_index_list(?)", [.text(table)]) {
            guard ix["origin"]?.string != "pk", let name = ix["name"]?.string else { continue }
            let cols = try db.query("SELECT name FROM pragma_index_info(?) ORDER BY seqno", [.text(name)])
            indexes.append(
                Index(name: name, unique: (ix["u"]?.int64 ?? 0) != 0, columns: cols.compactMap { $0["name"]?.string }))
        }
        return TableShape(columns: columns, indexes: indexes.sorted { $0.name < $1.name })
    }

    /// The shape knex's DDL produces, built in a private in-memory database.
    static func of(ddl: [String]) -> TableShape {
        do {
            let db = try Database(path: ":memory:", mode: [.readWrite, .create])
            for s in ddl { try db.execute(s) }
            return try read(db)!
        } catch {
            fatalError("built-in DDL does not run on this SQLite: \(error)")
        }
    }
}

/// Which `backup_files` variant a database holds, or precisely how it differs.
public enum SchemaVariant: String, Sendable, Codable {
    /// The guide's migration (all NOT NULL, varchar(255)); what `migrate` creates.
    case guide
    /// Laju's real migration (char(36) id, varchar(500) key, nullable columns, extra indexes).
    case laju
}

public struct SchemaCheck: Sendable {
    /// The variant matched exactly, else `nil`.
    public var variant: SchemaVariant?
    /// Differences from the nearest variant, one short phrase each (`missing column enc_tag`).
    public var differences: [String]
    /// Differences that make the table unusable (a missing column, a NOT NULL column we never fill).
    public var blocking: [String]

    public var isUsable: Bool { blocking.isEmpty }

    static let guideShape = TableShape.of(ddl: KnexSchema.guide)
    static let lajuShape = TableShape.of(ddl: KnexSchema.lajuOriginal)

    /// Compares `actual` with both variants.
    public init(_ actual: TableShape) {
        let g = Self.compare(actual, Self.guideShape, name: "guide")
        let l = Self.compare(actual, Self.lajuShape, name: "laju")
        if g.0.isEmpty { variant = .guide; differences = []; blocking = []; return }
        if l.0.isEmpty { variant = .laju; differences = []; blocking = []; return }
        let nearest = l.0.count < g.0.count ? l : g
        variant = nil
        differences = nearest.0
        blocking = nearest.1
    }

    /// Reads and checks the table in `db`; `nil` when the table is absent.
    public static func check(_ db: Database) throws -> SchemaCheck? {
        try TableShape.read(db).map(SchemaCheck.init)
    }

    /// One line for people: which variant, or what differs.
    public var summary: String {
        if let variant { return "matches the \(variant == .guide ? "guide's" : "Laju migration's") schema" }
        return "matches neither known schema: " + differences.joined(separator: "; ")
    }

    static func compare(_ a: TableShape, _ e: TableShape, name: String) -> ([String], [String]) {
        var diffs: [String] = []
        var blocking: [String] = []
        let actual = Dictionary(a.columns.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        for want in e.columns {
            guard let have = actual[want.name] else {
                let d = "missing column \(want.name)"
                diffs.append(d); blocking.append(d); continue
            }
            if have.type != want.type {
                diffs.append(
                    "column \(want.name) is \(have.type.isEmpty ? "untyped" : have.type), expected \(want.type)")
            }
            if have.notNull != want.notNull {
                let d =
                    "column \(want.name) is \(have.notNull ? "NOT NULL" : "nullable"), expected \(want.notNull ? "NOT NULL" : "nullable")"
                diffs.append(d)
                // deleted_at must take NULL: every new row has it.
                if want.name == "deleted_at" && have.notNull && have.defaultValue == nil { blocking.append(d) }
            }
            if have.defaultValue != want.defaultValue {
                diffs.append(
                    "column \(want.name) has default \(have.defaultValue ?? "none"), expected \(want.defaultValue ?? "none")"
                )
            }
            if have.primaryKey != want.primaryKey {
                diffs.append(
                    want.primaryKey
                        ? "column \(want.name) is not the primary key, expected it to be"
                        : "column \(want.name) is in the primary key, expected not")
            }
        }
        let known = Set(e.columns.map(\.name))
        for extra in a.columns where !known.contains(extra.name) {
            let d =
                "extra column \(extra.name)\(extra.notNull && extra.defaultValue == nil ? " (NOT NULL without default: inserts would fail)" : "")"
            diffs.append(d)
            if extra.notNull && extra.defaultValue == nil { blocking.append(d) }
        }
        let haveIx = Set(a.indexes), wantIx = Set(e.indexes)
        for ix in e.indexes where !haveIx.contains(ix) {
            diffs.append(
                "missing \(ix.unique ? "unique " : "")index \(ix.name) on (\(ix.columns.joined(separator: ", ")))")
        }
        for ix in a.indexes where !wantIx.contains(ix) {
            diffs.append(
                "extra \(ix.unique ? "unique " : "")index \(ix.name) on (\(ix.columns.joined(separator: ", ")))")
        }
        return (diffs, blocking)
    }
}
