import Foundation
import XCTest
@testable import LajuBackup

/// The envelope's inner stream is plain gzip, interchangeable with the system `gzip`, and the
/// encryption is plain AES-256-GCM as pyca/cryptography does it (Tests/tools/laju_envelope.py).
final class GzipInteropTests: XCTestCase {
    var dir: CoreTestDir!
    var key: EncryptionKey!
    var keyB64: String { Data(key.bytes).base64EncodedString() }
    var py: String { "python3 \(CoreShell.quote(CoreShell.tools + "/laju_envelope.py"))" }

    override func setUpWithError() throws {
        dir = try CoreTestDir()
        key = try EncryptionKey.generate()
        _ = try CoreShell.run("command -v gzip && python3 -c 'import cryptography'")
    }

    override func tearDown() { dir = nil }

    /// Mixed data: a real SQLite file made by the sqlite3 CLI, so the stream looks like a backup.
    func makeDatabase() throws -> String {
        let db = dir.file("sample.sqlite3")
        _ = try CoreShell.run(
            """
            sqlite3 \(CoreShell.quote(db)) "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, blob BLOB);
              WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)
              INSERT INTO t SELECT i, 'name ' || i, randomblob(i % 64) FROM n;"
            """)
        return db
    }

    func testOurStreamDecryptsWithPythonAndGunzipsWithSystemGzip() throws {
        let db = try makeDatabase()
        let object = dir.file("object.enc")
        let s = try Envelope.seal(input: db, output: object, encryptionKey: key, level: 6)
        let iv = Data(s.iv).base64EncodedString(), tag = Data(s.tag).base64EncodedString()
        let q = CoreShell.quote
        // Python decrypts (tag appended, as its AESGCM wants), the system gzip decompresses.
        _ = try CoreShell.run("\(py) open-raw \(q(object)) \(keyB64) \(iv) \(tag) > \(q(dir.file("stream.gz")))")
        _ = try CoreShell.run("gzip -t \(q(dir.file("stream.gz")))")
        _ = try CoreShell.run("gzip -dc < \(q(dir.file("stream.gz"))) | cmp - \(q(db))")
        // The header is what zlib's gzip writer emits: magic, deflate, no name (as Node's createGzip).
        let header = try CoreShell.run("head -c 4 \(q(dir.file("stream.gz"))) | od -An -tx1 | tr -d ' \\n'")
        XCTAssertEqual(String(decoding: header, as: UTF8.self), "1f8b0800")

        // The same check must fail on a damaged tag: the pipeline above is not a rubber stamp.
        var badTag = s.tag; badTag[0] ^= 1
        XCTAssertThrowsError(
            try CoreShell.run(
                "\(py) open-raw \(q(object)) \(keyB64) \(iv) \(Data(badTag).base64EncodedString()) > /dev/null")
        ) { error in
            XCTAssertTrue("\(error)".contains("InvalidTag"), "\(error)")
        }
    }

    /// `gzip -6` output (with its FNAME header) encrypted by Python opens with Envelope.open.
    func testSystemGzipEncryptedByPythonOpens() throws {
        let db = try makeDatabase()
        let q = CoreShell.quote
        _ = try CoreShell.run("gzip -6 -k \(q(db))")
        let sealed = try sealWithPython(gz: db + ".gz")
        let out = dir.file("restored.db")
        let opened = try Envelope.open(
            input: sealed.object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag)
        _ = try CoreShell.run("cmp \(q(out)) \(q(db))")
        XCTAssertEqual(opened.md5.hexString, sealed.checksum, "our MD5 of the object matches Python's")
    }

    /// Concatenated gzip members (what `cat a.gz b.gz` or a resumed gzip writes) are one stream to
    /// gunzip(1) and Node; we must agree.
    func testMultiMemberGzipIsAccepted() throws {
        let q = CoreShell.quote
        let a = dir.file("a"), b = dir.file("b"), c = dir.file("c")
        _ = try CoreShell.run(
            """
            seq 1 100000 > \(q(a)); head -c 300000 /dev/urandom > \(q(b)); printf 'tail' > \(q(c))
            (gzip -1 -c \(q(a)); gzip -9 -c \(q(b)); gzip -c \(q(c))) > \(q(dir.file("multi.gz")))
            cat \(q(a)) \(q(b)) \(q(c)) > \(q(dir.file("expected")))
            gzip -dc \(q(dir.file("multi.gz"))) | cmp - \(q(dir.file("expected")))
            """)
        let sealed = try sealWithPython(gz: dir.file("multi.gz"))
        let out = dir.file("multi.out")
        let opened = try Envelope.open(
            input: sealed.object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag)
        _ = try CoreShell.run("cmp \(q(out)) \(q(dir.file("expected")))")
        XCTAssertEqual(opened.plainBytes, Int64(try CoreShell.text("stat -c %s \(q(dir.file("expected")))"))!)
    }

    /// gzip data followed by garbage that is not a gzip member is damage, not success.
    func testTrailingGarbageAfterGzipIsRefused() throws {
        let q = CoreShell.quote
        _ = try CoreShell.run("(seq 1 1000 | gzip -c; printf 'garbage-garbage') > \(q(dir.file("junk.gz")))")
        let sealed = try sealWithPython(gz: dir.file("junk.gz"))
        let out = dir.file("junk.out")
        XCTAssertThrowsError(
            try Envelope.open(input: sealed.object, output: out, encryptionKey: key, iv: sealed.iv, tag: sealed.tag)
        ) { error in
            XCTAssertEqual((error as? LajuError)?.kind, .integrity, "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    struct PySealed { var object: String; var iv: [UInt8]; var tag: [UInt8]; var checksum: String }

    func sealWithPython(gz: String) throws -> PySealed {
        let object = gz + ".enc"
        let json = try CoreShell.run("\(py) seal-gz \(CoreShell.quote(gz)) \(CoreShell.quote(object)) \(keyB64)")
        let d = try JSONDecoder().decode([String: String].self, from: Data(json))
        return PySealed(
            object: object, iv: Array(Data(base64Encoded: d["iv"]!)!), tag: Array(Data(base64Encoded: d["tag"]!)!),
            checksum: d["checksum"]!)
    }
}
