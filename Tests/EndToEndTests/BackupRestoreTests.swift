import Foundation
import XCTest

/// The whole loop through the binary against a local-directory store.
final class BackupRestoreTests: XCTestCase {
    func testRoundTripWALDatabase() throws {
        let s = try Scratch()
        let f = try LocalFixture(scratch: s)
        let b = try CLI.run(["backup", "--json"], env: f.env)
        XCTAssertEqual(b.status, 0, b.output)
        let outcome = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as! [String: Any]
        let key = try XCTUnwrap(outcome["key"] as? String)
        XCTAssertTrue(key.hasPrefix("backups/app.sqlite3-"), key)
        XCTAssertTrue(key.hasSuffix(".db.gz.enc"), key)

        let restored = s.url.appendingPathComponent("out/restored.db")
        let r = try CLI.run(["restore", "--output", restored.path], env: f.env)
        XCTAssertEqual(r.status, 0, r.output)
        let original = try sh("sqlite3 '\(f.database.path)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'")
        let copy = try sh("sqlite3 '\(restored.path)' 'SELECT count(*), sum(qty), group_concat(name) FROM items'")
        XCTAssertEqual(original, copy)
        XCTAssertEqual(Scratch.files(in: f.tmp).filter { !$0.hasSuffix(".lock") }, [], "temp files left behind")
    }
}
