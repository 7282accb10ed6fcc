import Foundation
import XCTest
@testable import LajuBackup

/// The parsers and checks that stand between hostile input (catalog rows, S3 answers, metadata,
/// settings, flags) and any action: each refusal below is a way the tool once lost data or crashed.
final class HostileInputTests: XCTestCase {
    // MARK: S3 answers

    /// Entities end within 10 characters of their `&` (the scan for `;` stops there, which keeps
    /// a body of ampersands linear; its fuzz reproducer is in Fuzz/corpus/s3error); anything else
    /// is text, and a body of 200,000 ampersands comes back unchanged.
    func testXMLEntityDecodingIsBounded() {
        XCTAssertEqual(
            XMLScan.decode("a & b; &amp; &#x41;&#66; &lt;&gt; &abcdefghijk; &quot;"), "a & b; & AB <> &abcdefghijk; \"")
        let amps = String(repeating: "&", count: 200_000)
        XCTAssertEqual(XMLScan.decode(amps + "amp;"), amps, "the last & with amp; is one &")
        XCTAssertEqual(XMLScan.decode(amps).count, 200_000)
    }

    func testRepeatedHeadersAreJoinedInOrder() {
        let block = (0..<5000).map { "x-amz-meta-n: \($0)" }.joined(separator: "\n") + "\ncontent-length: 7\n"
        let h = HTTPClient.parseHeaderBlock(block)
        XCTAssertEqual(h["content-length"], "7")
        XCTAssertEqual(h["x-amz-meta-n"]?.split(separator: ",").count, 5000)
        XCTAssertEqual(h["x-amz-meta-n"]?.split(separator: ",").last, "4999")
    }

    // MARK: keys

    func testObjectKeyRefusesWhatCouldAddressSomethingElse() {
        for bad in [
            "", "/backups/x", "backups/", "backups//x", "backups/./x", "backups/../x", "..", ".",
            "backups/x\u{1B}[2J", "a\nb", "a\u{9B}b", String(repeating: "k", count: 1025)
        ] {
            XCTAssertNotNil(ObjectKey.problem(bad), "accepted \(bad.debugDescription)")
        }
        for good in [
            "backups/production.sqlite3-2025-10-24T12:07-1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed.db.gz.enc",
            "a:b c+d=e", "x", "deep/er/key.bin", "back..ups/x", String(repeating: "k", count: 1024)
        ] {
            XCTAssertNil(ObjectKey.problem(good), good)
        }
        XCTAssertThrowsError(try ObjectKey.validate("", origin: "--key")) { e in
            XCTAssertEqual((e as? LajuError)?.kind, .usage)
        }
    }

    func testDisplayEscapesControlCharacters() {
        XCTAssertEqual(Display.safe("plain: ok"), "plain: ok")
        XCTAssertEqual(Display.safe("a\u{1B}[31mb"), "a\\u{1b}[31mb")
        XCTAssertEqual(Display.safe("line1\nline2"), "line1\\u{a}line2")
        XCTAssertEqual(Display.safe("csi\u{9B}2J"), "csi\\u{9b}2J")
        XCTAssertFalse(Display.safe("x\u{7F}\u{0}\r").unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
    }

    // MARK: scope

    func testScopeAttributesKeysByDatabaseAndPrefix() {
        let uuid = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
        let own = BackupScope(prefix: "backups/", databaseName: "production.sqlite3", catalogIsDatabase: true)
        let shared = BackupScope(prefix: "backups/", databaseName: "production.sqlite3", catalogIsDatabase: false)
        XCTAssertEqual(own.attribute("backups/production.sqlite3-2025-10-24T12:07-\(uuid).db.gz.enc"), .ours)
        XCTAssertEqual(own.attribute("backups/production.sqlite3-2025-10-24T12:07-\(uuid).db.zst.enc"), .ours)
        XCTAssertEqual(own.attribute("backups/2025-10-24T12:07-\(uuid).db.gz.enc"), .unnamed)
        XCTAssertEqual(
            own.attribute("backups/blog.sqlite3-2025-10-24T12:07-\(uuid).db.gz.enc"), .otherDatabase("blog.sqlite3"))
        // A name that merely starts with ours is another database.
        XCTAssertEqual(
            own.attribute("backups/production.sqlite3-old-2025-10-24T12:07-\(uuid).db.gz.enc"),
            .otherDatabase("production.sqlite3-old"))
        XCTAssertEqual(own.attribute("backups/blog/production.sqlite3-2025-10-24T12:07-\(uuid).db.gz.enc"), .nested)
        XCTAssertEqual(own.attribute("elsewhere/production.sqlite3-2025-10-24T12:07-\(uuid).db.gz.enc"), .outsidePrefix)
        for junk in [
            "backups/production.sqlite3.db.gz.enc", "backups/notes.txt",
            "backups/production.sqlite3-2025-10-24T12:07-\(uuid).db.gz",
            "backups/production.sqlite3-2025-13-xxT12:07-\(uuid).db.gz.enc",
            "backups/production.sqlite3-2025-10-24T12:07-not-a-uuid-at-all-0000000000000.db.gz.enc",
            "backups/-2025-10-24T12:07-\(uuid).db.gz.enc"
        ] {
            XCTAssertEqual(own.attribute(junk), .unrecognised, junk)
        }
        // Rows of the first scripts (no name) are ours only in the database's own catalog.
        XCTAssertTrue(own.ownsRow(key: "backups/2025-10-24T12:07-\(uuid).db.gz.enc"))
        XCTAssertFalse(shared.ownsRow(key: "backups/2025-10-24T12:07-\(uuid).db.gz.enc"))
        XCTAssertFalse(
            own.ownsObject(key: "backups/2025-10-24T12:07-\(uuid).db.gz.enc"),
            "an unnamed object is never an orphan of ours")
        // Names with dashes and dots work; an empty prefix means the top level only.
        let dashed = BackupScope(prefix: "", databaseName: "my-app.v2.sqlite3", catalogIsDatabase: false)
        XCTAssertEqual(dashed.attribute("my-app.v2.sqlite3-2026-01-02T03:04-\(uuid).db.gz.enc"), .ours)
        XCTAssertEqual(dashed.attribute("x/my-app.v2.sqlite3-2026-01-02T03:04-\(uuid).db.gz.enc"), .nested)
    }

    // MARK: S3 listings

    func page(_ body: String) -> [UInt8] {
        Array("<?xml version=\"1.0\"?><ListBucketResult>\(body)</ListBucketResult>".utf8)
    }

    func testListPagesMustBeCompleteAndInsideThePrefix() throws {
        let ok = try S3Store.parseListPage(
            page(
                "<KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>backups/a</Key><Size>3</Size></Contents>"
            ), prefix: "backups/")
        XCTAssertEqual(ok.objects.map(\.key), ["backups/a"])
        XCTAssertNil(ok.nextToken)
        let refused: [(String, [UInt8])] = [
            (
                "truncated document",
                Array(
                    "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>backups/a</Key><Size>3</Si".utf8)
            ),
            ("no document", Array("<Error><Code>x</Code></Error>".utf8)),
            ("empty body", []),
            (
                "truncated without token",
                page("<IsTruncated>true</IsTruncated><Contents><Key>backups/a</Key><Size>3</Size></Contents>")
            ),
            ("no IsTruncated", page("<Contents><Key>backups/a</Key><Size>3</Size></Contents>")),
            ("two IsTruncated", page("<IsTruncated>false</IsTruncated><IsTruncated>true</IsTruncated>")),
            ("odd IsTruncated", page("<IsTruncated>maybe</IsTruncated>")),
            (
                "key outside prefix",
                page("<IsTruncated>false</IsTruncated><Contents><Key>other/a</Key><Size>3</Size></Contents>")
            ),
            (
                "dot-dot key outside prefix",
                page("<IsTruncated>false</IsTruncated><Contents><Key>../backups/a</Key><Size>3</Size></Contents>")
            ),
            ("no key", page("<IsTruncated>false</IsTruncated><Contents><Size>3</Size></Contents>")),
            ("no size", page("<IsTruncated>false</IsTruncated><Contents><Key>backups/a</Key></Contents>")),
            (
                "huge size",
                page(
                    "<IsTruncated>false</IsTruncated><Contents><Key>backups/a</Key><Size>9223372036854775807</Size></Contents>"
                )
            ),
            (
                "negative size",
                page("<IsTruncated>false</IsTruncated><Contents><Key>backups/a</Key><Size>-1</Size></Contents>")
            ),
            (
                "KeyCount mismatch",
                page(
                    "<KeyCount>2</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>backups/a</Key><Size>3</Size></Contents>"
                )
            ),
            ("unclosed Contents", page("<IsTruncated>false</IsTruncated><Contents><Key>backups/a</Key><Size>3</Size>"))
        ]
        for (name, body) in refused {
            XCTAssertThrowsError(try S3Store.parseListPage(body, prefix: "backups/"), name) { e in
                XCTAssertEqual((e as? LajuError)?.kind, .storage, name)
            }
        }
    }

    func testServerSizesAndDatesAreRangeChecked() {
        XCTAssertEqual(try S3Store.objectSize("42", what: "x"), 42)
        for bad in ["99999999999999999999", "9223372036854775807", "-5", "abc", ""] {
            XCTAssertThrowsError(try S3Store.objectSize(bad, what: "x"), bad)
        }
        XCTAssertThrowsError(try S3Store.objectSize(nil, what: "x"))
        XCTAssertNil(HTTPDate.parseISO("2147483647-01-01T00:00:00Z"))
        XCTAssertNil(HTTPDate.parseISO("0001-01-01T00:00:00Z"))
        XCTAssertNil(HTTPDate.parse("Fri, 24 Oct 2147483647 12:07:00 GMT"))
        XCTAssertNil(HTTPDate.parse("Fri, 99 Oct 2025 12:07:00 GMT"))
        XCTAssertEqual(HTTPDate.parseISO("2025-10-24T12:07:00.000Z"), 1_761_307_620)
    }

    // MARK: catalog rows

    func row(_ overrides: [String: Database.Value]) -> Database.Row {
        var r: Database.Row = [
            "id": .text("r1"), "key": .text("backups/x"), "file_name": .text("x"), "file_size": .integer(10),
            "compression": .text("gzip"), "storage": .text("s3"), "checksum": .text("c"),
            "uploaded_at": .integer(1_761_307_620_000), "deleted_at": .null, "encryption": .text("aes-256-gcm"),
            "enc_iv": .text("iv"), "enc_tag": .text("tag")
        ]
        for (k, v) in overrides { r[k] = v }
        return r
    }

    func testCatalogRowsAreCheckedOneByOne() {
        guard case .success(let good) = BackupRecord.decode(row([:])) else { return XCTFail("a good row refused") }
        XCTAssertEqual(good.uploadedAt, 1_761_307_620_000)
        // Laju's nullable columns: defaults, not failures.
        guard
            case .success(let sparse) = BackupRecord.decode(
                row([
                    "file_size": .null, "enc_iv": .null, "enc_tag": .null,
                    "compression": .null, "storage": .null, "checksum": .null
                ]))
        else {
            return XCTFail("a sparse row refused")
        }
        XCTAssertEqual(sparse.storage, "s3")
        XCTAssertEqual(sparse.encIV, "")
        let bad: [(String, [String: Database.Value])] = [
            ("empty key", ["key": .text("")]),
            ("NULL key", ["key": .null]),
            ("dot-dot key", ["key": .text("backups/../x")]),
            ("escape in key", ["key": .text("backups/\u{1B}]0;x")]),
            ("text uploaded_at", ["uploaded_at": .text("yesterday")]),
            ("NULL uploaded_at", ["uploaded_at": .null]),
            ("seconds, not ms", ["uploaded_at": .integer(1_761_307_620)]),
            ("Int64.max", ["uploaded_at": .integer(.max)]),
            ("Int64.min", ["uploaded_at": .integer(.min)]),
            ("negative size", ["file_size": .integer(-1)]),
            ("text size", ["file_size": .text("big")]),
            ("text deleted_at", ["deleted_at": .text("yes")]),
            ("NULL id", ["id": .null])
        ]
        for (name, o) in bad {
            guard case .failure(let b) = BackupRecord.decode(row(o)) else { XCTFail("\(name) accepted"); continue }
            XCTAssertFalse(b.problem.isEmpty, name)
        }
    }

    func testObjectMetadataSourceBytesIsRangeChecked() throws {
        let base = ["iv": "AAAAAAAAAAAAAAAA", "tag": "AAAAAAAAAAAAAAAAAAAAAA==", "checksum": "00"]
        XCTAssertEqual(try ObjectMetadata(pairs: base.merging(["source-bytes": "4096"]) { $1 }).sourceBytes, 4096)
        for bad in ["9223372036854775807", "-1", "1e9", "lots"] {
            XCTAssertThrowsError(try ObjectMetadata(pairs: base.merging(["source-bytes": bad]) { $1 }), bad)
        }
    }

    // MARK: settings and flags

    func settings(_ values: [String: String]) -> Settings {
        Settings(environment: Environment(layers: [(source: "test", values: values)]))
    }

    func testYesNoSettingsAreStrict() throws {
        XCTAssertTrue(try settings(["BACKUP_SSE": "TRUE"]).serverSideEncryption())
        XCTAssertTrue(try settings(["BACKUP_SSE": "1"]).serverSideEncryption())
        XCTAssertFalse(try settings(["BACKUP_SSE": "false"]).serverSideEncryption())
        XCTAssertFalse(try settings([:]).serverSideEncryption())
        for v in ["yes", "on", "enabled", "ture"] {
            XCTAssertThrowsError(try settings(["BACKUP_SSE": v]).serverSideEncryption(), v)
        }
    }

    func testThreadsAndPrefixAreChecked() throws {
        XCTAssertEqual(try settings(["BACKUP_THREADS": "3"]).threads(), 3)
        for v in ["abc", "0", "9999", "-1", "2.5"] {
            XCTAssertThrowsError(try settings(["BACKUP_THREADS": v]).threads(), v)
        }
        XCTAssertEqual(try settings(["BACKUP_PREFIX": "myapp"]).prefix, "myapp/")
        XCTAssertEqual(try settings([:]).prefix, "backups/")
        for v in ["../x", "/abs", "a//b", "a/./b", "x\u{1B}"] {
            XCTAssertThrowsError(try settings(["BACKUP_PREFIX": v]).prefix, v)
        }
    }

    func testDurationsMustBeFinite() throws {
        XCTAssertEqual(try DurationText.seconds("1h30m"), 5400)
        for v in ["inf", "nan", "1e400", "99999999999999999999d", "-1"] {
            XCTAssertThrowsError(try DurationText.seconds(v), v)
        }
    }

    func testEnvFileRefusesTextAfterAClosingQuote() throws {
        XCTAssertThrowsError(try EnvFile.parse("A=\"x\"y\n", source: "f"))
        XCTAssertThrowsError(try EnvFile.parse("A='x' y\n", source: "f"))
        XCTAssertEqual(try EnvFile.parse("A=\"x\"  # note\nB='y'\t\n", source: "f"), ["A": "x", "B": "y"])
    }

    /// Found by fuzzing: a secret followed by a combining mark is one grapheme cluster with its last
    /// letter, so a Character-wise search missed it and the secret reached the message.
    func testRedactionWorksOnBytes() throws {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        let c = try S3Configuration(
            settings: settings([
                "WASABI_ACCESS_KEY": "AK", "WASABI_SECRET_KEY": secret,
                "WASABI_BUCKET": "bucket", "WASABI_REGION": "us-east-1"
            ]))
        let leaked = "Secret: \(secret)\u{301} end"
        let red = S3Store.redact(leaked, c)
        XCTAssertFalse(Array(red.utf8).containsSubsequence(Array(secret.utf8)), red)
        XCTAssertTrue(Array(red.utf8).containsSubsequence(Array("<redacted>".utf8)), red)
        XCTAssertNil(HTTPDate.parse("Wed, 01 Jan -2147483648 00:00:00 GMT"))
    }

    func testSaturatingArithmetic() {
        XCTAssertEqual(Int64.max.addingSaturating(1), .max)
        XCTAssertEqual(Int64.min.addingSaturating(-1), .min)
        XCTAssertEqual(Int64.max.multipliedSaturating(by: 4), .max)
        XCTAssertEqual(Int64(-3).multipliedSaturating(by: Int64.max), .min)
        XCTAssertEqual(Int64(6).multipliedSaturating(by: 7), 42)
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ n: [UInt8]) -> Bool {
        guard !n.isEmpty, count >= n.count else { return false }
        return (0...(count - n.count)).contains { Array(self[$0..<($0 + n.count)]) == n }
    }
}
