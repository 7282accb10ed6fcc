// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for laju-backup's parsers of untrusted input (see README.md, "Fuzzing").
// A package of its own, so the main `swift build` / `swift test` never see them. Build and run them
// with `bash scripts/fuzz.sh`, which passes the flags they need:
//   swift build --package-path Fuzz --scratch-path Fuzz/.build \
//       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//       -Xcc -fsanitize=fuzzer-no-link,address
// (debug configuration: `@testable import LajuBackup` needs its -enable-testing). The C target,
// Fuzz/c/fuzz_envelope.c, is built by the script with clang directly.
let swiftTargets = ["xml", "s3error", "http", "metadata-headers", "metadata-json", "envfile", "key", "incremental"]

let package = Package(
    name: "laju-backup-fuzz",
    dependencies: [
        .package(name: "laju-backup", path: "..")
    ],
    targets: [
        .target(name: "FuzzSupport", path: "Sources/FuzzSupport")
    ]
        + swiftTargets.map { name in
            .executableTarget(
                name: "fuzz-\(name)",
                dependencies: ["FuzzSupport", .product(name: "LajuBackup", package: "laju-backup")],
                path: "Sources/fuzz-\(name)"
            )
        },
    swiftLanguageModes: [.v6]
)
