import Foundation
import XCTest

/// The man pages in `man/` are hand-written; these tests keep them in step with the CLI that is
/// actually built: every subcommand has a page, every long option appears in its page, the
/// overview names every subcommand, and laju-backup.env(5) names every setting of the template.
final class ManPageTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let manDir = repo.appendingPathComponent("man")

    /// Options every command inherits from swift-argument-parser; documented once in laju-backup(1).
    static let generic: Set<String> = ["help", "version"]

    /// Subcommand name -> long option names, from `laju-backup --experimental-dump-help`
    /// (swift-argument-parser's JSON description of the whole command tree).
    static func commandsFromBinary() throws -> [String: [String]] {
        let r = try CLI.run(["--experimental-dump-help"])
        XCTAssertEqual(r.status, 0, r.output)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let command = try XCTUnwrap(root["command"] as? [String: Any])
        let subs = try XCTUnwrap(command["subcommands"] as? [[String: Any]])
        var out: [String: [String]] = [:]
        for sub in subs {
            let name = try XCTUnwrap(sub["commandName"] as? String)
            if name == "help" { continue }  // the parser's own `help` command
            // Hidden commands and options (shouldDisplay false) are test hooks, not user interface.
            if sub["shouldDisplay"] as? Bool == false { continue }
            var longs: [String] = []
            for arg in sub["arguments"] as? [[String: Any]] ?? [] where arg["shouldDisplay"] as? Bool != false {
                for n in arg["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                    if let long = n["name"] as? String, !generic.contains(long) { longs.append(long) }
                }
            }
            out[name] = longs
        }
        return out
    }

    /// True when the mdoc source mentions `--name` as an option: `Fl -name` (mdoc) or a literal
    /// `--name` / `\-\-name`, not followed by more of an option name (so `--key` is not found in
    /// `--keep-last`).
    static func mentions(_ page: String, option name: String) -> Bool {
        for needle in ["Fl -\(name)", "\\-\\-\(name)", "--\(name)"] {
            var rest = page[...]
            while let r = rest.range(of: needle) {
                let next = rest[r.upperBound...].first
                if next == nil || !(next!.isLetter || next!.isNumber || next! == "-") { return true }
                rest = rest[r.upperBound...]
            }
        }
        return false
    }

    /// Problems found for `commands` against the pages in `dir`: one line each.
    static func problems(_ commands: [String: [String]], in dir: URL) -> [String] {
        var found: [String] = []
        for (name, options) in commands.sorted(by: { $0.key < $1.key }) {
            let page = dir.appendingPathComponent("laju-backup-\(name).1")
            guard let text = try? String(contentsOf: page, encoding: .utf8) else {
                found.append("subcommand \(name) has no man page \(page.lastPathComponent)")
                continue
            }
            for option in options where !mentions(text, option: option) {
                found.append("\(page.lastPathComponent) does not mention --\(option)")
            }
        }
        return found
    }

    func testEverySubcommandHasAPageNamingEachOption() throws {
        let commands = try Self.commandsFromBinary()
        XCTAssertTrue(commands.keys.contains("backup"), "dump-help did not list backup: \(commands.keys.sorted())")
        let problems = Self.problems(commands, in: Self.manDir)
        XCTAssertEqual(problems, [], "\n" + problems.joined(separator: "\n"))
    }

    /// The check must be able to fail: an option the page lacks and a command without a page.
    func testCheckDetectsMissingOptionAndMissingPage() throws {
        var commands = try Self.commandsFromBinary()
        commands["backup"] = (commands["backup"] ?? []) + ["no-such-option"]
        commands["no-such-command"] = ["database"]
        let problems = Self.problems(commands, in: Self.manDir)
        XCTAssertTrue(problems.contains("laju-backup-backup.1 does not mention --no-such-option"), "\(problems)")
        XCTAssertTrue(
            problems.contains("subcommand no-such-command has no man page laju-backup-no-such-command.1"), "\(problems)"
        )
        // A prefix is not a mention: `--key` does not count as `--ke`.
        XCTAssertFalse(Self.mentions(".Fl -key Ar key", option: "ke"))
        XCTAssertTrue(Self.mentions(".It Fl -key Ar key", option: "key"))
        XCTAssertTrue(Self.mentions("run `laju-backup list --remote`", option: "remote"))
    }

    func testOverviewPageNamesEverySubcommand() throws {
        let commands = try Self.commandsFromBinary()
        let text = try String(contentsOf: Self.manDir.appendingPathComponent("laju-backup.1"), encoding: .utf8)
        for name in commands.keys.sorted() {
            XCTAssertTrue(text.contains(".It Cm \(name)\n"), "laju-backup.1 COMMANDS lacks \(name)")
            XCTAssertTrue(
                text.contains(".Xr laju-backup-\(name) 1"), "laju-backup.1 does not refer to laju-backup-\(name)(1)")
        }
        for section in ["CONFIGURATION", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "RESTORE DRILL"] {
            XCTAssertTrue(text.contains(".Sh \(section)\n"), "laju-backup.1 lacks section \(section)")
        }
        for code in 0...8 {
            XCTAssertTrue(text.contains(".It \(code)\n"), "EXIT STATUS lacks \(code)")
        }
    }

    /// Every setting name the library reads (a string literal such as "BACKUP_PART_SIZE") is in
    /// the shipped template, so a new setting cannot go undocumented.
    func testTemplateListsEverySettingTheCodeReads() throws {
        let template = try String(
            contentsOf: Self.repo.appendingPathComponent("packaging/laju-backup.env"), encoding: .utf8)
        let sources = Self.repo.appendingPathComponent("Sources")
        let names = try NSRegularExpression(pattern: "\"((?:BACKUP|WASABI|AWS|DB)_[A-Z0-9_]+)\"")
        var used = Set<String>()
        for case let path as String in FileManager.default.enumerator(atPath: sources.path)!
        where path.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
            for m in names.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                used.insert((text as NSString).substring(with: m.range(at: 1)))
            }
        }
        XCTAssertTrue(used.contains("BACKUP_ENCRYPTION_KEY"), "scan found no settings: \(used)")
        for name in used.sorted() {
            XCTAssertTrue(template.contains("#\(name)="), "packaging/laju-backup.env lacks #\(name)=")
        }
    }

    /// `laju-backup config` shows every setting the code reads, so none can hide from an operator.
    func testConfigShowsEverySettingTheCodeReads() throws {
        let sources = Self.repo.appendingPathComponent("Sources")
        let names = try NSRegularExpression(pattern: "\"((?:BACKUP|WASABI|AWS|DB|LAJU)_[A-Z0-9_]+)\"")
        var used = Set<String>()
        for case let path as String in FileManager.default.enumerator(atPath: sources.path)!
        where path.hasSuffix(".swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
            for m in names.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                used.insert((text as NSString).substring(with: m.range(at: 1)))
            }
        }
        let r = try CLI.run(
            ["config", "--json"],
            env: ["BACKUP_STORAGE": "file:///nonexistent", "BACKUP_ENCRYPTION_KEY": String(repeating: "a", count: 32)])
        let report = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.output)
        let shown = Set(((report["settings"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String })
        XCTAssertTrue(shown.contains("BACKUP_ENCRYPTION_KEY"), "\(shown)")
        XCTAssertEqual(used.subtracting(shown).sorted(), [], "settings the code reads but config does not show")
    }

    /// Every setting of the shipped template is documented in laju-backup.env(5), and the template
    /// ships nothing set (so no secret, and no value that would silently override a default).
    func testEnvPageDocumentsEveryTemplateSetting() throws {
        let template = try String(
            contentsOf: Self.repo.appendingPathComponent("packaging/laju-backup.env"), encoding: .utf8)
        let page = try String(contentsOf: Self.manDir.appendingPathComponent("laju-backup.env.5"), encoding: .utf8)
        var names: [String] = []
        for line in template.split(separator: "\n") {
            let trimmed = line.drop(while: { $0 == " " })
            XCTAssertTrue(trimmed.isEmpty || trimmed.hasPrefix("#"), "template sets a value: \(line)")
            guard trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
            let name = trimmed[trimmed.index(after: trimmed.startIndex)..<eq]
            if !name.isEmpty, name.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) {
                names.append(String(name))
            }
        }
        XCTAssertGreaterThan(names.count, 20, "template settings not found: \(names)")
        for required in ["BACKUP_DATABASE", "BACKUP_ENCRYPTION_KEY", "BACKUP_STORAGE", "WASABI_BUCKET", "BACKUP_TMPDIR"]
        {
            XCTAssertTrue(names.contains(required), "template lacks \(required)")
        }
        for name in names {
            XCTAssertTrue(page.contains("Ev \(name)"), "laju-backup.env.5 does not document \(name)")
        }
    }
}
