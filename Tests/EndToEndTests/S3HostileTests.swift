import Foundation
import TestSupport
import XCTest

/// Issue 8: a hostile or broken S3 server, played by Tests/tools/fault_proxy.py in front of the
/// real SeaweedFS (requests are forwarded byte for byte, so signatures verify; only answers are
/// rewritten). This file: keys that must never reach the store, and listings that must never be
/// acted on. S3HostileTransferTests.swift: slow bodies, untrusted numbers, signals.
///
/// Every test passes against the hardened binary and fails against the binary before the fix
/// (`LAJU_BACKUP_BIN=/path/to/old/laju-backup swift test --filter S3Hostile`); runs that would hang
/// forever before the fix are bounded by `CLI.run`'s watchdog and then fail as timeouts.
final class S3HostileKeyTests: XCTestCase {
    /// Issue 8, case 5: catalog rows whose key is empty (a DELETE on it is DeleteBucket), holds a
    /// `..` segment or `//` (URL normalisation would send the DELETE elsewhere) or an ESC. Retention
    /// must act on the good rows only: no request ever names the bucket itself or a bad key, the
    /// bad rows are reported by id (escaped) and stay active.
    func testUnusableCatalogKeysNeverReachTheStore() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        let old = try f.backup()
        let newest = try f.backup()
        // Where `backups/../x` lands once a URL is normalised: it must survive.
        try f.aws("s3api put-object --bucket \(f.bucket) --key x --body '\(f.database.path)'")
        let oldMs = Int64(Date().timeIntervalSince1970 * 1000) - 40 * 86_400_000
        let bad = [
            "bad-empty": "''", "bad-dotdot": "'backups/../x'", "bad-slashes": "'backups//x'",
            "bad-esc": "'backups/' || char(27) || '[31mx.db.gz.enc'"
        ]
        // One more whose id itself holds an ESC: reported, but escaped.
        let escID = "bad-\u{1B}[2Jid"
        let planted =
            (bad.map { "SELECT '\($0.key)' AS bid, \($0.value) AS bkey" }
            + ["SELECT 'bad-' || char(27) || '[2Jid', 'backups/./x'"]).joined(separator: " UNION ALL ")
        // The bad rows copy the old backup's columns (a real size, IV, tag), 40 days old.
        try sh(
            """
            sqlite3 '\(f.database.path)' <<'SQL'
            UPDATE backup_files SET uploaded_at = \(oldMs) WHERE key = '\(old)';
            INSERT INTO backup_files (id, key, file_name, file_size, compression, storage, checksum, uploaded_at,
                                      deleted_at, encryption, enc_iv, enc_tag)
              SELECT b.bid, b.bkey, o.file_name, o.file_size, o.compression, o.storage, o.checksum, o.uploaded_at,
                     NULL, o.encryption, o.enc_iv, o.enc_tag
              FROM backup_files o, (\(planted)) b WHERE o.key = '\(old)';
            SQL
            """)
        XCTAssertEqual(try f.rowCount(), 7)

        let proxy = try FaultProxy(upstream: f.s3.endpoint, fault: "none", count: 0)
        let r = try CLI.run(
            ["clean", "--retention-days", "1"], env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 },
            timeout: 60)
        _ = proxy.stop()
        XCTAssertFalse(r.timedOut, r.output)
        XCTAssertEqual(r.status, 0, "the good rows were cleaned; bad rows are skipped, not fatal: \(r.output)")

        let calls = proxy.calls(bucket: f.bucket)
        XCTAssertFalse(
            calls.contains { $0.key == nil && $0.method != "GET" },
            "a request addressed the bucket itself (DELETE on it is DeleteBucket): \(proxy.requests)")
        XCTAssertTrue(
            Set(calls.compactMap(\.key)).isSubset(of: [old, newest]), "a request named a bad key: \(proxy.requests)")
        // The control: the proxy was in the path, and clean did delete what retention condemned.
        XCTAssertEqual(calls.filter { $0.method == "DELETE" }.map(\.key), [old], "\(proxy.requests)")

        guard try f.bucketExists() else { return XCTFail("the bucket is gone (DeleteBucket): \(proxy.requests)") }
        let keys = try f.keys()
        XCTAssertTrue(keys.contains(newest) && keys.contains("x"), "\(keys)")
        XCTAssertFalse(keys.contains(old), "\(keys)")
        for id in bad.keys.sorted() {
            XCTAssertTrue(r.stderr.contains("catalog row \(id) "), "bad row \(id) is not reported: \(r.stderr)")
        }
        XCTAssertTrue(
            r.stderr.split(separator: "\n").contains { $0.contains("catalog row bad-") && $0.contains("[2Jid") },
            "the bad row with an ESC in its id is not reported: \(r.stderr)")
        XCTAssertFalse(r.output.utf8.contains(0x1B), "a raw ESC reached the terminal: \(r.output.debugDescription)")
        let active = Set(
            try f.sql("SELECT id FROM backup_files WHERE deleted_at IS NULL").split(separator: "\n").map(String.init))
        let newestID = try f.sql("SELECT id FROM backup_files WHERE key = '\(newest)'")
        XCTAssertEqual(
            active, Set(bad.keys).union([newestID, escID]), "bad rows must stay active, the old good one marked deleted"
        )
    }

    /// Issue 8, case 5: `restore --key ''` / `verify --key ''` (and the other unusable keys) are
    /// usage errors before any request is made.
    func testUnusableKeyOnTheCommandLineMakesNoRequest() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        let out = try s.sub("out")
        let proxy = try FaultProxy(upstream: f.s3.endpoint, fault: "none", count: 0)
        let env = f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 }
        for key in ["", "backups/../x", "backups//x", "/backups/x", "backups/x/", "backups/\u{1B}[31mx"] {
            for command in [
                ["restore", "--key", key, "--output", out.appendingPathComponent("r.db").path], ["verify", "--key", key]
            ] {
                let r = try CLI.run(command, env: env, timeout: 60)
                XCTAssertEqual(r.status, 2, "\(command.debugDescription): \(r.output)")
                r.assertOneErrorLine(usage: true)
                XCTAssertFalse(
                    r.output.utf8.contains(0x1B), "a raw ESC reached the terminal: \(r.output.debugDescription)")
            }
        }
        _ = proxy.stop()
        XCTAssertEqual(proxy.requests, [], "requests were made for unusable keys")
        XCTAssertEqual(Scratch.files(in: out), [])
    }
}

/// Issue 8, cases 3, 9 and 11: ListObjectsV2 answers that must never be acted on. Each test runs
/// `list --remote` and `clean --orphans --delete-orphans --grace 0` through the proxy (exit 5,
/// one error line, no DELETE, every object still there), then the same clean without the proxy
/// as a control: it does delete the orphan, so "nothing deleted" above meant something.
final class S3HostileListingTests: XCTestCase {
    func testListingWithKeyOutsideThePrefixIsRefused() throws {
        try assertListingRefused(
            fault: "list-inject", extra: ["--inject-key", "other/x.db.gz.enc"],
            victim: "other/x.db.gz.enc", message: "outside")
    }

    /// `backups/../victim` is under `backups/` as text, but names `victim` once normalised. The
    /// safety half: whatever the listing says, nothing is ever sent for that key (nor for
    /// `victim`), the victim survives, and the entry is never taken for an orphan.
    func testListingWithDotDotKeyNeverTouchesWhatItNames() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        _ = try f.backup()
        try f.aws("s3api put-object --bucket \(f.bucket) --key victim --body '\(f.database.path)'")
        let proxy = try FaultProxy(
            upstream: f.s3.endpoint, fault: "list-inject", count: -1,
            extra: ["--inject-key", "backups/../victim"])
        let r = try CLI.run(
            ["clean", "--orphans", "--delete-orphans", "--grace", "0", "--json"],
            env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 }, timeout: 60)
        XCTAssertFalse(proxy.stop().isEmpty, "the proxy never rewrote a listing")
        XCTAssertFalse(r.timedOut, r.output)
        let touched = proxy.calls(bucket: f.bucket).filter { ["victim", "backups/../victim"].contains($0.key) }
        XCTAssertTrue(touched.isEmpty, "requests for the injected key: \(touched)")
        XCTAssertTrue(try f.keys().contains("victim"), "the victim is gone")
        if r.status == 0 {
            // Accepted as a listing: then the entry is counted, never an orphan to delete.
            let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            XCTAssertEqual(report?["objects"] as? Int, 2, r.stdout)
            let orphans = (report?["orphan_objects"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            XCTAssertFalse(orphans.contains("backups/../victim"), r.stdout)
        } else {
            XCTAssertEqual(r.status, 5, r.output)
        }
    }

    /// `backups/../victim` is a legal S3 key under the prefix, so the listing itself is sound (a
    /// bucket holding such a key must not stop every clean); the key is reported as unusable,
    /// marked `other` by list --remote, and never requested or deleted.
    func testListingWithDotDotKeyIsReportedAsUnusable() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s, rows: 50)
        _ = try f.backup()
        try f.aws("s3api put-object --bucket \(f.bucket) --key victim --body '\(f.database.path)'")
        let proxy = try FaultProxy(
            upstream: f.s3.endpoint, fault: "list-inject", count: -1,
            extra: ["--inject-key", "backups/../victim"])
        let env = f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 }
        let r = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0", "--json"], env: env, timeout: 60)
        let l = try CLI.run(["list", "--remote"], env: env, timeout: 60)
        _ = proxy.stop()
        XCTAssertEqual(r.status, 0, r.output)
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let unusable = (report?["unattributed"] as? [[String: Any]] ?? []).first {
            $0["key"] as? String == "backups/../victim"
        }
        XCTAssertTrue((unusable?["reason"] as? String)?.contains("unusable key") ?? false, r.stdout)
        XCTAssertEqual(l.status, 0, l.output)
        let row = l.stdout.split(separator: "\n").first { $0.hasSuffix("backups/../victim") }
        XCTAssertTrue(row?.contains("other") ?? false, l.stdout)
        XCTAssertTrue(proxy.calls(bucket: f.bucket).filter { ["victim", "backups/../victim"].contains($0.key) }.isEmpty)
        XCTAssertTrue(try f.keys().contains("victim"))
    }

    /// Issue 8, case 12 in a listing: a `<Size>` that does not fit in Int64, on an entry that
    /// looks like one of this database's backups without a row (an orphan to delete).
    func testListingWithImpossibleSizeIsRefused() throws {
        try assertListingRefused(
            fault: "list-inject",
            extra: [
                "--inject-key", "backups/app.sqlite3-2020-01-01T00:00-00000000-0000-4000-8000-000000000000.db.gz.enc",
                "--inject-size", "99999999999999999999"
            ],
            message: "99999999999999999999")
    }

    /// Every page says IsTruncated=true with the same NextContinuationToken.
    func testListingThatDoesNotAdvanceEndsQuickly() throws {
        try assertListingRefused(fault: "list-loop", message: "does not advance")
    }

    /// A well-formed page padded beyond 16 MiB (the largest real page is about 1.5 MB).
    func testOversizedListingPageIsRefused() throws {
        try assertListingRefused(fault: "list-pad", message: "16 MiB")
    }

    func testListingCutInTheMiddleIsRefused() throws {
        try assertListingRefused(fault: "list-cut", message: "ListBucketResult")
    }

    func testListingWithoutClosingTagIsRefused() throws {
        try assertListingRefused(fault: "list-unclosed", message: "ListBucketResult")
    }

    func testTruncatedListingWithoutTokenIsRefused() throws {
        try assertListingRefused(fault: "list-notoken", message: "NextContinuationToken")
    }

    /// A bucket with a backup that has its row, an orphan (an object named for this database that
    /// is not a backup: what `--delete-orphans --grace 0` deletes when the listing is sound) and,
    /// optionally, a victim object the hostile listing points at.
    func assertListingRefused(
        fault: String, extra: [String] = [], victim: String? = nil, message: String,
        within seconds: Double = 30, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let s = try Scratch("listing-\(fault)")
        let f = try S3Fixture(scratch: s, rows: 50)
        let kept = try f.backup()
        // An orphan to delete: named for this database, no row, and not a backup (a valid backup
        // without a row is never deleted; `catalog sync` adopts it).
        let orphan = "backups/app.sqlite3-2020-01-01T00:00-99999999-0000-4000-8000-000000000000.db.gz.enc"
        try f.aws("s3api put-object --bucket \(f.bucket) --key '\(orphan)' --body '\(f.database.path)'")
        if let victim {
            try f.aws("s3api put-object --bucket \(f.bucket) --key '\(victim)' --body '\(f.database.path)'")
        }
        let before = try f.keys()

        for command in [["list", "--remote"], ["clean", "--orphans", "--delete-orphans", "--grace", "0"]] {
            let proxy = try FaultProxy(upstream: f.s3.endpoint, fault: fault, count: -1, extra: extra)
            let r = try CLI.run(
                command, env: f.env.merging(["WASABI_ENDPOINT": proxy.endpoint]) { $1 }, timeout: seconds)
            let faults = proxy.stop()
            let what = "\(fault) \(command.joined(separator: " "))"
            print(
                "\(what): exit \(r.status) in \(String(format: "%.1f", r.seconds)) s: \(r.errorLines.last ?? "(no error line)")"
            )
            XCTAssertFalse(faults.isEmpty, "\(what): the proxy never rewrote a listing", file: file, line: line)
            XCTAssertFalse(
                r.timedOut, "\(what): still running after \(Int(seconds)) s (killed): \(r.stderr.suffix(500))",
                file: file, line: line)
            XCTAssertLessThan(r.seconds, seconds, what, file: file, line: line)
            XCTAssertEqual(r.status, 5, "\(what): \(r.output)", file: file, line: line)
            r.assertOneErrorLine(containing: message, file: file, line: line)
            let deletes = proxy.requests.filter { $0.hasPrefix("REQ DELETE") }
            XCTAssertEqual(deletes, [], "\(what): deleted on a bad listing", file: file, line: line)
            XCTAssertEqual(try f.keys(), before, "\(what): objects changed", file: file, line: line)
        }

        // Control: the same clean with the real server's listing deletes the orphan, and only it.
        let r = try CLI.run(["clean", "--orphans", "--delete-orphans", "--grace", "0"], env: f.env, timeout: 60)
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertEqual(try f.keys(), before.filter { $0 != orphan }, "control run", file: file, line: line)
        XCTAssertTrue(before.contains(kept) && before.contains(orphan), file: file, line: line)
    }
}

// MARK: - Helpers shared by the S3Hostile tests

extension CLI.Result {
    /// Lines of stderr that are a failure line: `<stamp> laju-backup[pid]: error: ...`, or
    /// ArgumentParser's `Error: ...` for usage errors found while parsing the command line.
    var errorLines: [String] {
        stderr.split(separator: "\n").map(String.init).filter { $0.contains("]: error: ") || $0.hasPrefix("Error: ") }
    }

    /// The run failed with exactly one error line, holding `text`. It is the last line on stderr,
    /// except for usage errors (`usage`), where ArgumentParser's usage synopsis follows it.
    func assertOneErrorLine(
        containing text: String? = nil, usage: Bool = false, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(errorLines.count, 1, "want one error line: \(stderr)", file: file, line: line)
        let errorLine = usage ? (errorLines.first ?? "") : (stderr.split(separator: "\n").last.map(String.init) ?? "")
        XCTAssertTrue(
            errorLine.contains("]: error: ") || (usage && errorLine.hasPrefix("Error: ")),
            "the error line is not the last line: \(stderr)", file: file, line: line)
        if let text {
            XCTAssertTrue(
                errorLine.contains(text), "the error line does not say \(text.debugDescription): \(errorLine)",
                file: file, line: line)
        }
    }

    /// Not a crash: no signal status, no Swift runtime trap report.
    func assertNoCrash(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNil(signal, "killed by signal \(signal ?? 0): \(stderr.suffix(2000))", file: file, line: line)
        XCTAssertLessThan(status, 128, "killed by a signal or trapped: \(stderr.suffix(2000))", file: file, line: line)
        for marker in ["Fatal error", "Crash", "Backtrace", "Thread 0"] {
            XCTAssertFalse(
                stderr.contains(marker), "\(marker) in stderr: \(stderr.suffix(2000))", file: file, line: line)
        }
    }
}

extension FaultProxy {
    /// What each request the proxy saw addressed: its method and the object key (percent-decoded;
    /// nil when it addressed the bucket itself, as `/bucket`, `/bucket/` or `/bucket?...`).
    func calls(bucket: String) -> [(method: String, key: String?)] {
        requests.compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            guard parts.count >= 3 else { return nil }
            let path = String(parts[2].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
            let decoded = path.removingPercentEncoding ?? path
            let root = "/" + bucket
            guard decoded.hasPrefix(root) else { return (parts[1], decoded) }
            let rest = decoded.dropFirst(root.count)
            let key = rest.hasPrefix("/") ? String(rest.dropFirst()) : String(rest)
            return (parts[1], key.isEmpty ? nil : key)
        }
    }
}

extension S3Fixture {
    /// Runs one SQL statement on the fixture's database (the catalog); returns its output.
    @discardableResult
    func sql(_ statement: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try sh("sqlite3 '\(database.path)' \"\(statement)\"", file: file, line: line).trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// HeadBucket through awscli, without failing the test when the bucket is gone.
    func bucketExists() throws -> Bool {
        let out = try sh(
            "aws --endpoint-url \(s3.endpoint) s3api head-bucket --bucket \(bucket) >/dev/null 2>&1 && echo yes || echo no",
            env: s3.awsEnv())
        return out.trimmingCharacters(in: .whitespacesAndNewlines) == "yes"
    }
}
