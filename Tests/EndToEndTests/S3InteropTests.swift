import Foundation
import XCTest

/// Independent clients: awscli and a few lines of Python (`cryptography`'s AESGCM + gzip) read what
/// laju-backup wrote, and laju-backup restores what they wrote the way the original backup.ts did.
final class S3InteropTests: XCTestCase {
    /// Decrypts a Laju object with its S3 metadata: AES-256-GCM (tag from metadata, appended for
    /// AESGCM), then gunzip. Checks the MD5 checksum first.
    static let decryptPy = """
        import base64, gzip, hashlib, json, sys
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        head = json.load(open(sys.argv[1]))
        meta = head["Metadata"]
        assert meta["algo"] == "aes-256-gcm" and meta["comp"] == "gzip", meta
        assert head["ContentType"] == "application/octet-stream", head["ContentType"]
        data = open(sys.argv[3], "rb").read()
        assert hashlib.md5(data).hexdigest() == meta["checksum"], "checksum"
        key = base64.b64decode(sys.argv[2])
        plain = AESGCM(key).decrypt(base64.b64decode(meta["iv"]), data + base64.b64decode(meta["tag"]), None)
        open(sys.argv[4], "wb").write(gzip.decompress(plain))
        """

    /// Seals a SQLite file exactly as backup.ts did: gzip, AES-256-GCM with a random 12-byte IV,
    /// tag NOT appended; prints the metadata JSON for `aws s3api put-object --metadata`.
    static let sealPy = """
        import base64, gzip, hashlib, json, os, sys
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        key = base64.b64decode(sys.argv[1])
        iv = os.urandom(12)
        sealed = AESGCM(key).encrypt(iv, gzip.compress(open(sys.argv[2], "rb").read(), 6), None)
        body, tag = sealed[:-16], sealed[-16:]
        open(sys.argv[3], "wb").write(body)
        print(json.dumps({"algo": "aes-256-gcm", "iv": base64.b64encode(iv).decode(),
                          "tag": base64.b64encode(tag).decode(), "comp": "gzip",
                          "checksum": hashlib.md5(body).hexdigest()}))
        """

    func testAwsCliAndPythonReadOurObject() throws {
        let s = try Scratch()
        let f = try S3Fixture(scratch: s)
        let key = try f.backup()
        let headFile = s.url.appendingPathComponent("head.json")
        let objectFile = s.url.appendingPathComponent("object.bin")
        let plainFile = s.url.appendingPathComponent("plain.sqlite3")
        try f.aws("s3api head-object --bucket \(f.bucket) --key '\(key)' --output json > '\(headFile.path)'")
        let head = try JSONSerialization.jsonObject(with: Data(contentsOf: headFile)) as! [String: Any]
        let meta = try XCTUnwrap(head["Metadata"] as? [String: String])
        for name in ["algo", "iv", "tag", "comp", "checksum"] {
            XCTAssertNotNil(meta[name], "metadata \(name) missing: \(meta)")
        }
        XCTAssertEqual(meta["iv"]?.count, 16)
        XCTAssertEqual(meta["tag"]?.count, 24)
        // The catalog row and the object metadata agree.
        let row = try sh(
            "sqlite3 '\(f.database.path)' 'SELECT enc_iv || \" \" || enc_tag || \" \" || checksum FROM backup_files'")
        XCTAssertEqual(
            row.trimmingCharacters(in: .whitespacesAndNewlines), "\(meta["iv"]!) \(meta["tag"]!) \(meta["checksum"]!)")

        try f.aws("s3api get-object --bucket \(f.bucket) --key '\(key)' '\(objectFile.path)' >/dev/null")
        let script = s.url.appendingPathComponent("decrypt.py")
        try S3InteropTests.decryptPy.write(to: script, atomically: true, encoding: .utf8)
        try sh("python3 '\(script.path)' '\(headFile.path)' '\(f.local.key)' '\(objectFile.path)' '\(plainFile.path)'")
        XCTAssertEqual(try S3Fixture.content(plainFile), try S3Fixture.content(f.database))
    }

    func testObjectUploadedByAwsCliRestoresWithoutCatalog() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        let snapshot = s.url.appendingPathComponent("snap.sqlite3")
        try sh("sqlite3 '\(f.database.path)' \".backup '\(snapshot.path)'\"")
        let sealed = s.url.appendingPathComponent("sealed.bin")
        let script = s.url.appendingPathComponent("seal.py")
        try S3InteropTests.sealPy.write(to: script, atomically: true, encoding: .utf8)
        let metadata = try sh("python3 '\(script.path)' '\(f.local.key)' '\(snapshot.path)' '\(sealed.path)'")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let key = "backups/production.sqlite3-2025-10-24T12:07-1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed.db.gz.enc"
        try f.aws(
            "s3api put-object --bucket \(f.bucket) --key '\(key)' --body '\(sealed.path)' --content-type application/octet-stream --metadata '\(metadata)' >/dev/null"
        )

        f.env["BACKUP_DATABASE"] = s.url.appendingPathComponent("lost.sqlite3").path
        let restored = s.url.appendingPathComponent("restored.db")
        let r = try CLI.run(["restore", "--key", key, "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try S3Fixture.content(restored), try S3Fixture.content(snapshot))
        XCTAssertEqual(f.tempFiles(), [])

        // The same object with a wrong key: refused as an integrity failure, nothing written.
        f.env["BACKUP_ENCRYPTION_KEY"] = try sh("head -c 32 /dev/urandom | base64").trimmingCharacters(
            in: .whitespacesAndNewlines)
        let other = s.url.appendingPathComponent("other.db")
        let w = try CLI.run(["restore", "--key", key, "--output", other.path], env: f.env)
        XCTAssertEqual(w.status, 4, w.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: other.path))
        XCTAssertEqual(f.tempFiles(), [])
    }
}
