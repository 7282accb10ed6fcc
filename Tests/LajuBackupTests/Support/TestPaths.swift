import Foundation

/// Where the unit tests' files are, from this file's place in the tree (the test folders mirror
/// Sources/, so each test would otherwise need its own count of `..`).
enum TestPaths {
    /// Tests/LajuBackupTests.
    static let target = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    /// Tests/LajuBackupTests/Resources: test data copied into the repository (vectors, knex DDL).
    static let resources = target.appendingPathComponent("Resources")
    /// Tests/tools, where the independent implementations live (Python, Node).
    static let tools = target.deletingLastPathComponent().appendingPathComponent("tools").path
}
