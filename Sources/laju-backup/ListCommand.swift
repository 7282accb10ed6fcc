import ArgumentParser
import LajuBackup

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List backups: the catalog's (newest first) or, with --remote, what the store holds.",
        discussion: "With --remote, objects under the prefix that the catalog does not know are marked `orphan`."
    )

    @OptionGroup var common: CommonOptions

    @Flag(help: "Include rows that retention marked deleted.")
    var all = false

    @Flag(help: "List the objects in the store under the prefix instead of the catalog rows.")
    var remote = false

    @Flag(help: "List the incremental restore points in the store (newest first) instead of the catalog rows.")
    var points = false

    func validate() throws {
        if points && (remote || all) { throw ValidationError("--points goes alone (not with --remote or --all)") }
    }

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        let scope = try settings.scope()
        if points {
            let listing = try PointListing(settings: settings, events: out.sink).run()
            if common.json { out.printJSON(Points(points: listing.entries)); return }
            print(
                Table.render(
                    header: ["TIME", "KIND", "UPLOADED", "DATABASE", "POINT"],
                    rows: listing.entries.map {
                        [
                            $0.time, $0.kind.rawValue, $0.uploadedBytes.map(Human.bytes) ?? "-",
                            $0.databaseBytes.map(Human.bytes) ?? "-",
                            $0.point + ($0.problem.map { " (\($0))" } ?? "")
                                + ($0.madeBeforeIdentities == true ? " (made before identities)" : "")
                        ]
                    }))
            print(
                Display.safe(
                    "\(listing.entries.count) restore point(s) of \(scope.databaseName) in \(listing.store) under \(listing.namespace)"
                ))
            return
        }
        if remote {
            let listing = try RemoteListing(settings: settings, events: out.sink).run()
            let entries = listing.entries
            if common.json { out.printJSON(Objects(objects: entries)); return }
            print(
                Table.render(
                    header: ["MODIFIED", "SIZE", "CATALOG", "KEY"],
                    rows: entries.map {
                        [
                            $0.lastModified.map { LocalTime.minuteStamp(epochMilliseconds: Int64($0) * 1000) } ?? "-",
                            Human.bytes($0.size),
                            $0.hidden
                                ? "hidden"
                                : $0.scope != "ours"
                                    ? "other" : listing.catalogReadable ? ($0.inCatalog ? "yes" : "orphan") : "?",
                            $0.key + ($0.hidden ? " (deleted; version \($0.versionId ?? "?") survives)" : "")
                        ]
                    }))
            let others = entries.filter { $0.scope != "ours" }.count
            print(
                Display.safe(
                    "\(entries.count) object(s) in \(listing.store) under \(listing.prefix)"
                        + (others > 0
                            ? "; \(others) marked other belong to other databases or deeper prefixes, or are not backup names"
                            : "")))
            return
        }
        let catalog = try settings.openCatalog(readOnly: true)
        try catalog.requireTable(forWriting: false)
        let scan = try catalog.scan(includeDeleted: all)
        for bad in scan.bad { out.warn("catalog row \(bad.id) skipped: \(bad.problem)") }
        let (rows, others) = scan.split(scope)
        if common.json { out.printJSON(Backups(backups: rows, otherRows: others.count, badRows: scan.bad)); return }
        print(
            Table.render(
                header: ["UPLOADED", "SIZE", "STATE", "KEY"],
                rows: rows.map {
                    [
                        LocalTime.minuteStamp(epochMilliseconds: $0.uploadedAt), Human.bytes($0.fileSize),
                        $0.deletedAt == nil ? "active" : "deleted", $0.key
                    ]
                }))
        var summary = "\(rows.count) backup(s) of \(scope.databaseName) under \(scope.prefix) in \(catalog.path)"
        if !others.isEmpty { summary += "; \(others.count) row(s) of other databases or prefixes not shown" }
        print(Display.safe(summary))
    }
}

extension ListCommand {
    struct Objects: Encodable { var objects: [RemoteListing.Entry] }
    struct Points: Encodable { var points: [PointListing.Entry] }
    struct Backups: Encodable {
        var backups: [BackupRecord]
        /// Rows of other databases or prefixes, not listed.
        var otherRows: Int
        /// Rows that fail the catalog checks, skipped.
        var badRows: [BadRow]
    }
}

/// A plain text table for terminals and logs.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        // Cells hold keys from the catalog and the store: never let them drive the terminal.
        let header = header.map(Display.safe)
        let rows = rows.map { $0.map(Display.safe) }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
