import ArgumentParser
import LajuBackup

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Maintain the backup_files catalog: put back rows for backups the store holds.",
        subcommands: [CatalogSyncCommand.self]
    )
}

struct CatalogSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract:
            "Add a row for every valid backup of this database that the store holds and the catalog does not name.",
        discussion: """
            Lists the store under BACKUP_PREFIX and reads the metadata of each object named for this \
            database that no row names. One that is a backup of this database under the current key \
            (IV, tag and checksum present; key fingerprint and source id matching) gets a row, with the \
            object's time in the store as uploaded_at; the others are reported with the reason. Run it \
            after a disaster restore, whose catalog cannot know the backup it came from.
            """
    )

    @OptionGroup var common: CommonOptions

    @Flag(name: .customLong("dry-run"), help: "Print what would be added; change nothing.")
    var dryRun = false

    func run() throws {
        let out = common.output()
        let settings = try common.settings()
        let o = try CatalogSyncJob(settings: settings, dryRun: dryRun, events: out.sink).run()
        if common.json {
            out.printJSON(o)
        } else {
            if !o.skipped.isEmpty {
                print(Table.render(header: ["NOT ADOPTED", "WHY"], rows: o.skipped.map { [$0.key, $0.reason] }))
            }
        }
        out.log(
            "catalog sync\(dryRun ? " (dry run)" : ""): \(o.adopted.count) backup(s) \(dryRun ? "would be added" : "added") to \(o.catalog), \(o.skipped.count) object(s) not adopted"
        )
    }
}
