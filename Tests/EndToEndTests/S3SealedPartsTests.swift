import Foundation
import TestSupport
import XCTest

/// The digests of a multipart upload come from the seal pass (one pass over the object): every
/// part carries the Content-MD5 of exactly its bytes, SeaweedFS accepts them, and a part whose
/// bytes changed after sealing is refused by the server (BadDigest), with nothing left behind.
final class S3SealedPartsTests: XCTestCase {
    func testMultipartSendsTheSealPassDigestsOnEveryPart() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        try f.grow(megabytes: 14)
        f.env["BACKUP_PART_SIZE"] = "5M"
        for sign in ["false", "true"] {
            let proxy = try FaultProxy(upstream: f.s3.endpoint, fault: "none", count: 0)
            let key = try f.backup(env: [
                "WASABI_ENDPOINT": proxy.endpoint, "BACKUP_S3_SIGN_PAYLOAD": sign,
                "BACKUP_COMPRESSION": "gzip", "BACKUP_GZIP_LEVEL": "0"
            ])
            _ = proxy.stop()
            let parts = proxy.requests.filter { $0.hasPrefix("REQ PUT") && $0.contains("partNumber=") }
            XCTAssertGreaterThanOrEqual(parts.count, 3, "sign=\(sign): \(proxy.requests)")
            let sent = parts.compactMap { $0.components(separatedBy: " md5=").last }.filter { !$0.isEmpty }
            XCTAssertEqual(sent.count, parts.count, "Content-MD5 on every part: \(parts)")
            // Those are the MD5s of the stored object's 5 MiB ranges.
            let object = s.url.appendingPathComponent("object-\(sign)").path
            try f.aws("s3 cp --only-show-errors s3://\(f.bucket)/\(key) '\(object)'")
            let expected = try sh(
                """
                python3 - '\(object)' <<'PY'
                import base64, hashlib, sys
                data = open(sys.argv[1], 'rb').read()
                step = 5 << 20
                print(" ".join(sorted(base64.b64encode(hashlib.md5(data[i:i + step]).digest()).decode() for i in range(0, len(data), step))))
                PY
                """
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(sent.sorted().joined(separator: " "), expected, "sign=\(sign)")
            XCTAssertEqual(try CLI.run(["verify", "--key", key], env: f.env).status, 0)
        }
    }

    func testPartChangedAfterSealingIsRefused() throws {
        let s = try Scratch()
        var f = try S3Fixture(scratch: s)
        f.env["BACKUP_PART_SIZE"] = "5M"
        let plain = s.url.appendingPathComponent("plain.bin").path
        try sh("head -c \(14 << 20) /dev/urandom > '\(plain)'")
        for sign in ["false", "true"] {
            let env = f.env.merging(["BACKUP_S3_SIGN_PAYLOAD": sign, "BACKUP_COMPRESSION": "zstd"]) { $1 }
            let object = s.url.appendingPathComponent("sealed-\(sign).enc").path
            let sealed = try CLI.run(["debug-store", "seal", plain, object], env: env)
            XCTAssertEqual(sealed.status, 0, sealed.output)
            // The second part changes after the seal pass hashed it.
            try sh("printf 'X' | dd of='\(object)' bs=1 seek=\((5 << 20) + 1234) conv=notrunc status=none")
            let r = try CLI.run(["debug-store", "put-sealed", object, "backups/changed-\(sign).db.zst.enc"], env: env)
            XCTAssertEqual(r.status, 5, "sign=\(sign): \(r.output)")
            XCTAssertTrue(
                r.stderr.contains("BadDigest") || r.stderr.contains("XAmzContentSHA256Mismatch"),
                "sign=\(sign): \(r.stderr)")
            XCTAssertEqual(try f.keys(), [], "sign=\(sign)")
            XCTAssertEqual(try f.pendingUploads(), 0, "the refused upload was aborted")
        }
        // Unchanged, the same path stores it.
        let object = s.url.appendingPathComponent("sealed-ok.enc").path
        XCTAssertEqual(try CLI.run(["debug-store", "seal", plain, object], env: f.env).status, 0)
        let ok = try CLI.run(["debug-store", "put-sealed", object, "backups/ok.db.gz.enc"], env: f.env)
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertEqual(try f.keys(), ["backups/ok.db.gz.enc"])
    }
}
