import ArgumentParser
import LajuBackup

/// Hidden: exercises only the configured store (no snapshot, no encryption), for bench/s3-bench.sh
/// and for diagnosing storage problems. `put FILE KEY` / `get KEY FILE` / `head KEY` / `delete KEY`;
/// `seal FILE OBJECT` seals FILE as a backup would (settings' codec and key; the digests of the
/// seal pass, at the settings' part size, go to OBJECT.digests.json) and `put-sealed OBJECT KEY`
/// uploads it with those digests, reading nothing again: the upload path of a backup, alone.
struct DebugStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug-store",
        abstract: "Low-level store operations (for benchmarks and diagnosis).",
        shouldDisplay: false
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: "put, get, head, delete, seal or put-sealed")
    var operation: String

    @Argument(help: "put: FILE KEY; get: KEY FILE; head/delete: KEY; seal: FILE OBJECT; put-sealed: OBJECT KEY")
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
            try store.put(
                key: operands[1], file: operands[0], size: bytes, md5: md5, metadata: ["checksum": md5.hexString],
                progress: nil)
        case ("seal", 2):
            let settings = try common.settings()
            let codec = try settings.compression()
            let level = try settings.compressionLevel(for: codec)
            let needs = store.uploadDigestNeeds
            let sealed = try Envelope.seal(
                input: operands[0], output: operands[1], encryptionKey: try settings.encryptionKey(),
                options: Envelope.Options(
                    codec: codec, level: level,
                    threads: codec.encoderThreads(try settings.threads(), level: level),
                    partSize: needs.partSize, sha256: needs.sha256))
            let digests = SealDigests(
                md5: sealed.md5.hexString, size: sealed.objectBytes, sha256: sealed.sha256?.hexString,
                partSize: sealed.parts?.partSize, partsMD5: sealed.parts?.md5.map(\.hexString),
                partsSHA256: sealed.parts?.sha256?.map(\.hexString))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try encoder.encode(digests).write(to: URL(fileURLWithPath: operands[1] + ".digests.json"))
            bytes = sealed.plainBytes
        case ("put-sealed", 2):
            let data = try Data(contentsOf: URL(fileURLWithPath: operands[0] + ".digests.json"))
            guard let d = try? JSONDecoder().decode(SealDigests.self, from: data),
                let md5 = DebugStoreCommand.hex(d.md5)
            else {
                throw LajuError(.usage, "\(operands[0]).digests.json is not what `debug-store seal` writes")
            }
            let size = d.size
            var parts: PartDigests?
            if let partSize = d.partSize, let m = d.partsMD5 {
                parts = PartDigests(
                    partSize: partSize, md5: m.compactMap(DebugStoreCommand.hex),
                    sha256: d.partsSHA256?.compactMap(DebugStoreCommand.hex))
            }
            bytes = size
            try store.put(
                key: operands[1], file: operands[0], size: size,
                digests: ObjectDigests(md5: md5, sha256: d.sha256.flatMap(DebugStoreCommand.hex), parts: parts),
                metadata: ["checksum": md5.hexString], progress: nil)
        case ("get", 2):
            try store.get(key: operands[0], to: operands[1], progress: nil)
            var st = stat()
            if stat(operands[1], &st) == 0 { bytes = Int64(st.st_size) }
        case ("head", 1):
            let info = try store.head(key: operands[0])
            print(
                "\(info.key) \(info.size) \(info.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
            )
            return
        case ("delete", 1):
            print(try store.delete(key: operands[0]) ? "deleted" : "absent")
            return
        default:
            throw ValidationError(
                "usage: debug-store put FILE KEY | get KEY FILE | head KEY | delete KEY | seal FILE OBJECT | put-sealed OBJECT KEY"
            )
        }
        let seconds = monotonicSeconds() - started
        print("\(operation) \(bytes) bytes in \(Human.seconds(seconds)) (\(Human.rate(bytes, seconds)))")
    }
}

/// What `seal` leaves beside the object for `put-sealed`. Codable rather than JSONSerialization:
/// that lives in full Foundation, whose ICU tables would be linked statically into the binary.
struct SealDigests: Codable {
    var md5: String
    var size: Int64
    var sha256: String?
    var partSize: Int64?
    var partsMD5: [String]?
    var partsSHA256: [String]?

    enum CodingKeys: String, CodingKey {
        case md5, size, sha256
        case partSize = "part_size", partsMD5 = "parts_md5", partsSHA256 = "parts_sha256"
    }
}

extension DebugStoreCommand {
    static func hex(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < u.count {
            guard let hi = UInt8(String(decoding: u[i...i], as: UTF8.self), radix: 16),
                let lo = UInt8(String(decoding: u[(i + 1)...(i + 1)], as: UTF8.self), radix: 16)
            else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
