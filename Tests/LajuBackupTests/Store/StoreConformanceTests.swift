import TestSupport
import XCTest
@testable import LajuBackup

/// Every store runs `StoreConformance`, in this process: the local directory store, and the S3
/// store against a real S3 server (SeaweedFS, on loopback) with a part size small enough that
/// uploads also take the multipart path.
final class StoreConformanceTests: XCTestCase {
    func testLocalStore() throws {
        let dir = try TempDir()
        let root = dir.path + "/store"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let scratch = try TempDir()
        StoreConformance.run {
            StoreConformance(store: LocalStore(root: root), scratch: scratch.path) { key in
                // What a killed put leaves: its hidden temp file beside where the object would be.
                let target = root + "/" + key
                let folder = target.deletingLastPathComponent
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let name = ".laju-\(LocalStore.partialKind)-\(try Self.deadPID())-0123456789ab"
                try Data([1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/" + name))
            }
        }
    }

    func testS3Store() throws {
        let server = try SeaweedFS.shared()
        let bucket = try server.makeBucket()
        var values = server.env(bucket: bucket)
        values["BACKUP_PART_SIZE"] = "5M"
        let settings = Settings(environment: Environment(layers: [(source: "test", values: values)]))
        let store = try S3Store(configuration: S3Configuration(settings: settings))
        XCTAssertEqual(store.uploadDigestNeeds.partSize, 5 << 20)
        let scratch = try TempDir()
        StoreConformance.run {
            StoreConformance(store: store, scratch: scratch.path) { key in
                // What a killed multipart upload leaves: an upload created, never completed.
                _ = try store.send(
                    operation: "CreateMultipartUpload \(key)", method: "POST", key: key, query: [("uploads", "")])
            }
        }
    }

    /// The pid of a process that has ended (and was reaped): what a killed run's temp file names.
    static func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }
}
