import ArgumentParser
import LajuBackup

/// Hidden: exercises only the configured store (no snapshot, no encryption), for bench/s3-bench.sh
/// and for diagnosing storage problems. `put FILE KEY` / `get KEY FILE` / `head KEY` / `delete KEY`.
struct DebugStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug-store",
        abstract: "Low-level store operations (for benchmarks and diagnosis).",
        shouldDisplay: false
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: "put, get, head or delete")
    var operation: String

    @Argument(help: "put: FILE KEY; get: KEY FILE; head/delete: KEY")
    var operands: [String]

    func run() throws {
        let store = try common.settings().makeStore()
        let started = monotonicSeconds()
        var bytes: Int64 = 0
        switch (operation, operands.count) {
        case ("put", 2):
            let md5 = try Digest.hash(.md5, filePath: operands[0])
            var st = stat()
            guard stat(operands[0], &st) == 0 else { throw LajuError(.local, "cannot stat \(operands[0])") }
            bytes = Int64(st.st_size)
            try store.put(key: operands[1], file: operands[0], size: bytes, md5: md5, metadata: ["checksum": md5.hexString], progress: nil)
        case ("get", 2):
            try store.get(key: operands[0], to: operands[1], progress: nil)
            var st = stat()
            if stat(operands[1], &st) == 0 { bytes = Int64(st.st_size) }
        case ("head", 1):
            let info = try store.head(key: operands[0])
            print("\(info.key) \(info.size) \(info.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
            return
        case ("delete", 1):
            print(try store.delete(key: operands[0]) ? "deleted" : "absent")
            return
        default:
            throw ValidationError("usage: debug-store put FILE KEY | get KEY FILE | head KEY | delete KEY")
        }
        let seconds = monotonicSeconds() - started
        print("\(operation) \(bytes) bytes in \(Format.seconds(seconds)) (\(Format.rate(bytes, seconds)))")
    }
}
