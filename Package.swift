// swift-tools-version:6.0
import PackageDescription

// swift-argument-parser, pinned exactly (git ignores Package.resolved on our machines). The Debian
// build sets LAJU_ARGUMENT_PARSER_PATH to the copy the source package carries (its component
// tarball, unpacked into swift-argument-parser/), so that building needs neither git nor the network.
let argumentParser: Package.Dependency =
    if let path = Context.environment["LAJU_ARGUMENT_PARSER_PATH"], !path.isEmpty {
        .package(path: path)
    } else {
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2")
    }

// The C target is the only code that includes sqlite3.h, zlib.h, openssl/*.h and curl/curl.h.
// Swift sees it through one narrow header, CSupport/include/csupport.h.
let package = Package(
    name: "laju-backup",
    products: [
        .executable(name: "laju-backup", targets: ["laju-backup"]),
        .library(name: "LajuBackup", targets: ["LajuBackup"])  // for the fuzz targets in Fuzz/
    ],
    dependencies: [argumentParser],
    targets: [
        .target(
            name: "CSupport",
            path: "CSupport",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [
                .linkedLibrary("sqlite3"),
                .linkedLibrary("crypto"),  // EVP lives in libcrypto; libssl would be a useless dependency
                .linkedLibrary("z"),
                .linkedLibrary("curl"),
                .linkedLibrary("archive")  // zstd and xz (BACKUP_COMPRESSION), through its raw format
            ]
        ),
        .target(
            name: "LajuBackup",
            dependencies: ["CSupport"],
            path: "Sources/LajuBackup"
        ),
        .executableTarget(
            name: "laju-backup",
            dependencies: [
                "LajuBackup",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ],
            path: "Sources/laju-backup"
        ),
        // What both test targets share: the real S3 server (SeaweedFS) they run against.
        .target(
            name: "TestSupport",
            path: "Tests/Support"
        ),
        .testTarget(
            name: "LajuBackupTests",
            dependencies: ["LajuBackup", "CSupport", "TestSupport"],
            path: "Tests/LajuBackupTests",
            resources: [.copy("Resources")]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["laju-backup", "TestSupport"],
            path: "Tests/EndToEndTests",
            exclude: ["Resources"]
        )
    ],
    swiftLanguageModes: [.v6]
)
