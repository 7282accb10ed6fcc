/// Everything the S3 store needs, read from the environment once. The Laju names (`WASABI_*`) win;
/// the standard AWS names are fallbacks. Never printed whole: `description` hides the secret.
public struct S3Configuration: Sendable, CustomStringConvertible {
    public enum Addressing: String, Sendable { case path, virtual }

    public var credentials: AWSCredentials
    public var bucket: String
    public var region: String
    /// `http` or `https`.
    public var scheme: String
    /// Host name (no port).
    public var host: String
    public var port: Int?
    /// Path under the endpoint (usually empty), without a trailing slash.
    public var basePath: String
    public var addressing: Addressing
    public var prefix: String
    public var partSize: Int64
    public var concurrency: Int
    public var serverSideEncryption: Bool
    /// Attempts per request (first try included), `BACKUP_S3_RETRIES`.
    public var maxAttempts: Int
    /// `BACKUP_S3_SIGN_PAYLOAD=true`: put the SHA-256 of every uploaded body into the signature.
    /// Off by default: object bodies are sent as `UNSIGNED-PAYLOAD` with a signed `Content-MD5`,
    /// which S3 checks, so the body is still protected end to end without a second hash pass.
    public var signPayload: Bool
    /// Seconds without progress before a connection counts as stalled, `BACKUP_S3_STALL_TIMEOUT`.
    public var stallTimeout: Int32
    public var connectTimeout: Int32
    /// Bytes per second below which a transfer counts as too slow, `BACKUP_S3_MIN_RATE`: a request
    /// moving `n` bytes must finish within `stallTimeout + n / minRate` seconds (`deadline(bytes:)`),
    /// so a server that trickles a byte now and then cannot keep a run going forever.
    public var minRate: Int64

    public static let minPartSize: Int64 = 5 << 20
    public static let maxPartSize: Int64 = 5 << 30
    public static let maxParts: Int64 = 10_000

    /// Reads the settings; a missing or malformed one is a usage error naming the variables.
    /// What a command does with the bucket, so that each can run with the least privilege it
    /// needs: the nightly backup only writes, `clean` also deletes, restores and drills only read.
    public enum Role: String, Sendable {
        /// Backup: PutObject and the multipart calls. The default credentials.
        case write
        /// Restore, verify, list, status, presign, catalog sync: `BACKUP_READ_ACCESS_KEY`/`_SECRET_KEY` when set.
        case read
        /// Clean: `BACKUP_CLEAN_ACCESS_KEY`/`_SECRET_KEY` when set.
        case clean
    }

    public var role: Role
    /// `BACKUP_OBJECT_LOCK_MODE`: every object written gets this S3 Object Lock mode.
    public var objectLockMode: String?
    /// `BACKUP_OBJECT_LOCK_DAYS`: how long from the upload (default: retention days + 7).
    public var objectLockDays: Int

    public init(settings: Settings, role: Role = .write) throws {
        let env = settings.environment
        var missing: [String] = []
        self.role = role
        // A role's own credentials, when configured, replace the default one entirely.
        let own: (String, String)? =
            switch role {
            case .write: nil
            case .read: ("BACKUP_READ_ACCESS_KEY", "BACKUP_READ_SECRET_KEY")
            case .clean: ("BACKUP_CLEAN_ACCESS_KEY", "BACKUP_CLEAN_SECRET_KEY")
            }
        var access = env.first("WASABI_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        var secret = env.first("WASABI_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
        if let own, env[own.0] != nil || env[own.1] != nil {
            guard let a = env[own.0], let s = env[own.1] else {
                throw LajuError(.usage, "\(own.0) and \(own.1) go together: set both or neither")
            }
            access = a
            secret = s
        }
        let bucket = env.first("WASABI_BUCKET", "BACKUP_S3_BUCKET")
        if access == nil { missing.append("WASABI_ACCESS_KEY (or AWS_ACCESS_KEY_ID)") }
        if secret == nil { missing.append("WASABI_SECRET_KEY (or AWS_SECRET_ACCESS_KEY)") }
        if bucket == nil { missing.append("WASABI_BUCKET") }
        let endpoint = env.first("WASABI_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        let region = env.first("WASABI_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
        if region == nil && endpoint == nil { missing.append("WASABI_REGION (or AWS_REGION) or WASABI_ENDPOINT") }
        guard missing.isEmpty, let access, let secret, let bucket else {
            throw LajuError(
                .usage, "S3 storage is not configured: \(missing.joined(separator: ", ")) not set",
                hint: "set them in the env file, or use BACKUP_STORAGE=file:///absolute/dir")
        }
        guard S3Configuration.isValidBucket(bucket) else {
            throw LajuError(
                .usage, "WASABI_BUCKET=\(bucket) is not a valid bucket name (3-63 lowercase letters, digits, '.', '-')")
        }
        credentials = AWSCredentials(
            accessKeyID: access, secretAccessKey: secret,
            sessionToken: env["AWS_SESSION_TOKEN"])
        self.bucket = bucket
        self.region = region ?? "us-east-1"
        let url = endpoint ?? "https://s3.\(self.region).amazonaws.com"
        (scheme, host, port, basePath) = try S3Configuration.parseEndpoint(url)

        addressing = try S3Configuration.addressing(env["BACKUP_S3_ADDRESSING"])
        if addressing == .virtual && bucket.contains(".") && scheme == "https" {
            throw LajuError(
                .usage, "bucket \(bucket) contains dots, which breaks TLS with virtual-hosted addressing",
                hint: "use BACKUP_S3_ADDRESSING=path")
        }
        prefix = try settings.prefix
        partSize = try S3Configuration.partSize(env["BACKUP_PART_SIZE"])
        concurrency = try settings.integer("BACKUP_UPLOAD_CONCURRENCY", default: 4, range: 1...64)
        maxAttempts = try settings.integer("BACKUP_S3_RETRIES", default: 5, range: 1...20)
        stallTimeout = Int32(try settings.integer("BACKUP_S3_STALL_TIMEOUT", default: 60, range: 1...3600))
        connectTimeout = Int32(try settings.integer("BACKUP_S3_CONNECT_TIMEOUT", default: 15, range: 1...600))
        serverSideEncryption = try settings.serverSideEncryption()
        signPayload = try settings.bool("BACKUP_S3_SIGN_PAYLOAD", default: false)
        objectLockMode = try S3Configuration.objectLockMode(env["BACKUP_OBJECT_LOCK_MODE"])
        let retention = try settings.integer("BACKUP_RETENTION_DAYS", default: 30, range: 1...Settings.maxRetentionDays)
        objectLockDays = try settings.integer(
            "BACKUP_OBJECT_LOCK_DAYS", default: retention + 7, range: 1...Settings.maxRetentionDays)
        minRate = Int64(try settings.integer("BACKUP_S3_MIN_RATE", default: 64 << 10, range: 1...(1 << 30)))
    }

    /// `BACKUP_S3_ADDRESSING`: path (the default) or virtual(-hosted).
    static func addressing(_ text: String?) throws -> Addressing {
        switch (text ?? "path").lowercased() {
        case "path": return .path
        case "virtual", "virtual-hosted": return .virtual
        case let other:
            throw LajuError(.usage, "BACKUP_S3_ADDRESSING=\(other) is not understood", hint: "use path or virtual")
        }
    }

    /// `BACKUP_PART_SIZE`: 64 MiB by default, within S3's 5 MiB to 5 GiB.
    static func partSize(_ text: String?) throws -> Int64 {
        guard let text else { return 64 << 20 }
        guard let v = parseSize(text), v >= minPartSize, v <= maxPartSize else {
            throw LajuError(.usage, "BACKUP_PART_SIZE=\(text) must be a size between 5M and 5G (e.g. 64M)")
        }
        return v
    }

    /// `BACKUP_OBJECT_LOCK_MODE`: GOVERNANCE, COMPLIANCE or unset.
    static func objectLockMode(_ text: String?) throws -> String? {
        switch text?.uppercased() {
        case nil: return nil
        case "GOVERNANCE": return "GOVERNANCE"
        case "COMPLIANCE": return "COMPLIANCE"
        case let other?:
            throw LajuError(
                .usage, "BACKUP_OBJECT_LOCK_MODE=\(Display.safe(other)) is not understood",
                hint: "use GOVERNANCE or COMPLIANCE (see laju-backup.env(5), Object Lock)")
        }
    }

    /// The endpoint names the bucket itself (`https://bucket.s3.wasabisys.com` or
    /// `https://s3.wasabisys.com/bucket`): a common mistake, which path-style requests then turn
    /// into `bucket/bucket/key`.
    public var endpointIncludesBucket: Bool {
        host.hasPrefix(bucket + ".") || basePath == "/" + bucket || basePath.hasPrefix("/" + bucket + "/")
    }

    /// Seconds a request that moves `bytes` may take in all, retries and resumes included.
    public func deadline(bytes: Int64) -> Double {
        Double(stallTimeout) + Double(connectTimeout) + Double(max(0, bytes)) / Double(minRate)
    }

    /// `scheme://host[:port]`, as shown to users (no credentials ever live in it).
    public var endpointString: String {
        "\(scheme)://\(host)\(port.map { ":\($0)" } ?? "")\(basePath)"
    }

    public var description: String {
        "S3Configuration(s3://\(bucket)/\(prefix) at \(endpointString), region \(region), \(addressing.rawValue)-style, access key \(credentials.accessKeyID))"
    }

    /// The part size actually used for an object of `size` bytes: the configured one, doubled until
    /// the object fits in 10,000 parts (S3's limit).
    public func effectivePartSize(for size: Int64) -> Int64 {
        var p = partSize
        while (size + p - 1) / p > S3Configuration.maxParts { p *= 2 }
        return p
    }

    /// "8M", "64MiB", "1g", "5242880" → bytes (binary units).
    static func parseSize(_ text: String) -> Int64? {
        var t = text.trimmingSpaces.lowercased()
        for suffix in ["ib", "b"] where t.hasSuffix(suffix) && t.count > suffix.count {
            t.removeLast(suffix.count)
            break
        }
        var shift: Int64 = 0
        switch t.last {
        case "k": shift = 10
        case "m": shift = 20
        case "g": shift = 30
        default: break
        }
        if shift > 0 { t.removeLast() }
        guard let n = Int64(t), n >= 0, n <= (Int64.max >> shift) else { return nil }
        return n << shift
    }

    static func isValidBucket(_ b: String) -> Bool {
        guard (3...63).contains(b.count) else { return false }
        return b.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F
        }
    }

    static func parseEndpoint(_ raw: String) throws -> (String, String, Int?, String) {
        var s = raw.trimmingSpaces
        if !s.contains("://") { s = "https://" + s }
        let parts = s.split(separator: ":", maxSplits: 1)
        let scheme = String(parts[0]).lowercased()
        guard scheme == "http" || scheme == "https", parts.count == 2, parts[1].hasPrefix("//") else {
            throw LajuError(
                .usage, "S3 endpoint \(raw) is not an http(s) URL",
                hint: "e.g. WASABI_ENDPOINT=https://s3.wasabisys.com")
        }
        var rest = Substring(parts[1].dropFirst(2))
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        guard !rest.contains("@"), !rest.isEmpty else {
            throw LajuError(
                .usage, "S3 endpoint must not contain credentials or be empty",
                hint: "put keys in WASABI_ACCESS_KEY/WASABI_SECRET_KEY")
        }
        var host = String(rest)
        var port: Int?
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                throw LajuError(.usage, "S3 endpoint \(raw) has an invalid port")
            }
            host = String(host[..<colon])
            // The default port is not part of the Host header curl sends, so not of the signature either.
            port = (scheme == "http" && p == 80) || (scheme == "https" && p == 443) ? nil : p
        }
        return (scheme, host.lowercased(), port, path)
    }
}
