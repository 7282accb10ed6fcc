/// How the schema of a backup differs from the live database it is about to replace: the
/// application may be running a newer version whose migrations the backup has not seen (or the
/// reverse), and then it fails on the first query after the switch. Reported as warnings: going
/// back to an older schema can be exactly what the operator wants.
public struct SchemaComparison: Sendable {
    /// One line per difference; empty when the schemas agree.
    public var differences: [String] = []

    struct Side {
        var userVersion: Int64
        /// Names in `knex_migrations`, nil when the table does not exist.
        var migrations: Set<String>?
        /// `type name` -> its SQL, from sqlite_schema (SQLite's objects and our own bookkeeping tables, which are made on demand, left out).
        var objects: [String: String]
    }

    static func read(_ db: Database) throws -> Side {
        let version = try db.query("PRAGMA user_version").first?.values.first?.int64 ?? 0
        let rows = try db.query(
            "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' AND substr(name, 1, 12) <> 'laju_backup_'"
        )
        var objects: [String: String] = [:]
        for r in rows {
            guard let type = r["type"]?.string, let name = r["name"]?.string else { continue }
            objects["\(type) \(name)"] = r["sql"]?.string ?? ""
        }
        var migrations: Set<String>?
        if objects["table knex_migrations"] != nil {
            let names = try db.query("SELECT name FROM knex_migrations").compactMap { $0["name"]?.string }
            migrations = Set(names)
        }
        return Side(userVersion: version, migrations: migrations, objects: objects)
    }

    /// Compares the live database (read through the application's locks) with the restored file
    /// (private, read immutable).
    public static func compare(live: String, restored: String, busyTimeoutMilliseconds: Int32) throws
        -> SchemaComparison
    {
        let l = try read(Database(path: live, mode: [.readOnly], busyTimeoutMilliseconds: busyTimeoutMilliseconds))
        let r = try read(Database(path: restored, mode: [.readOnly, .immutable]))
        return compare(live: l, restored: r)
    }

    static func compare(live l: Side, restored r: Side) -> SchemaComparison {
        var out = SchemaComparison()
        if l.userVersion != r.userVersion {
            out.differences.append(
                "PRAGMA user_version is \(l.userVersion) in the live database, \(r.userVersion) in the backup")
        }
        switch (l.migrations, r.migrations) {
        case (let lm?, let rm?):
            let onlyLive = lm.subtracting(rm).sorted(), onlyBackup = rm.subtracting(lm).sorted()
            if !onlyLive.isEmpty {
                out.differences.append(
                    "knex_migrations: \(onlyLive.count) migration(s) ran on the live database but not in the backup: \(names(onlyLive))"
                )
            }
            if !onlyBackup.isEmpty {
                out.differences.append(
                    "knex_migrations: \(onlyBackup.count) migration(s) in the backup are unknown to the live database: \(names(onlyBackup))"
                )
            }
        case (.some, nil): out.differences.append("knex_migrations exists in the live database but not in the backup")
        case (nil, .some): out.differences.append("knex_migrations exists in the backup but not in the live database")
        case (nil, nil): break
        }
        let onlyLive = Set(l.objects.keys).subtracting(r.objects.keys).sorted()
        let onlyBackup = Set(r.objects.keys).subtracting(l.objects.keys).sorted()
        let changed = Set(l.objects.keys).intersection(r.objects.keys).filter { l.objects[$0] != r.objects[$0] }
            .sorted()
        if !onlyLive.isEmpty { out.differences.append("only in the live database: \(names(onlyLive))") }
        if !onlyBackup.isEmpty { out.differences.append("only in the backup: \(names(onlyBackup))") }
        if !changed.isEmpty { out.differences.append("defined differently: \(names(changed))") }
        return out
    }

    static func names(_ list: [String]) -> String {
        let shown = list.prefix(5).map(Display.safe).joined(separator: ", ")
        return list.count > 5 ? "\(shown) and \(list.count - 5) more" : shown
    }
}
