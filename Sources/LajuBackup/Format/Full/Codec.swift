internal import CSupport

/// The compression inside the envelope (`BACKUP_COMPRESSION`). gzip is the Laju format, the one
/// the original `restore.ts` reads; zstd and xz are ours (libarchive's filters in the C core) and
/// are named in the catalog row's `compression`, the object's `comp` metadata and the key suffix.
public enum Codec: String, Sendable, CaseIterable, Codable {
    case gzip, zstd, xz

    var cValue: Int32 {
        switch self {
        case .gzip: CS_CODEC_GZIP
        case .zstd: CS_CODEC_ZSTD
        case .xz: CS_CODEC_XZ
        }
    }

    /// What the key ends with (`BackupScope` recognises all three).
    public var keySuffix: String {
        switch self {
        case .gzip: ".db.gz.enc"
        case .zstd: ".db.zst.enc"
        case .xz: ".db.xz.enc"
        }
    }

    /// The setting that holds this codec's level, its range and default. zstd 3 is its own
    /// default; xz 3 is the highest level whose encoder fits the 64 MiB memory budget (xz -6 alone
    /// takes 94 MiB).
    public var levelSetting: (name: String, range: ClosedRange<Int>, defaultLevel: Int) {
        switch self {
        case .gzip: ("BACKUP_GZIP_LEVEL", 0...9, 6)
        case .zstd: ("BACKUP_ZSTD_LEVEL", 1...19, 3)
        case .xz: ("BACKUP_XZ_LEVEL", 0...9, 3)
        }
    }

    /// Encoder threads for `threads` cores. zstd always gets one: libzstd's multi-threaded mode
    /// (any `nbWorkers`, 1 included) keeps job buffers of input and output per worker, 89 MiB of
    /// peak RSS against 40 MiB single-threaded on a 1 GiB database, and sealed no faster: at level
    /// 3 the seal pass is bound by reading, AES-GCM and the digests, not by zstd. liblzma's
    /// multi-threaded encoder (which libarchive 3.6.2 turns on with its `threads` option) buffers
    /// three dictionaries of input and of output per thread: from xz level 2 up that breaks the
    /// memory budget, so xz runs on one thread there.
    public func encoderThreads(_ threads: Int32, level: Int32) -> Int32 {
        switch self {
        case .gzip: threads
        case .zstd: 1
        case .xz: level >= 2 ? 1 : threads
        }
    }

    /// Reads a codec name as stored (`comp` metadata, the catalog's `compression`), any case.
    /// Nil for anything else: such a name is hostile until proven otherwise.
    public init?(stored text: String) {
        switch text.lowercased() {
        case "gzip": self = .gzip
        case "zstd": self = .zstd
        case "xz": self = .xz
        default: return nil
        }
    }
}

extension Settings {
    /// gzip level, `BACKUP_GZIP_LEVEL` (default 6, as Node's zlib).
    public func compressionLevel() throws -> Int32 { try compressionLevel(for: .gzip) }

    /// `BACKUP_COMPRESSION`: gzip (the default, the Laju format), zstd or xz.
    public func compression() throws -> Codec {
        guard let text = environment["BACKUP_COMPRESSION"] else { return .gzip }
        guard let codec = Codec(stored: text) else {
            throw LajuError(
                .usage, "BACKUP_COMPRESSION=\(Display.quoted(text)) is not understood",
                hint: "use gzip (readable by the original restore.ts), zstd or xz")
        }
        return codec
    }

    /// The level of `codec`: `BACKUP_GZIP_LEVEL` (0-9, 6), `BACKUP_ZSTD_LEVEL` (1-19, 3),
    /// `BACKUP_XZ_LEVEL` (0-9, 3).
    public func compressionLevel(for codec: Codec) throws -> Int32 {
        let s = codec.levelSetting
        return Int32(try integer(s.name, default: s.defaultLevel, range: s.range))
    }
}
