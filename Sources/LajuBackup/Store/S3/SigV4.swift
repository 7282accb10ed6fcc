import Synchronization

// AWS Signature Version 4 for S3 (header auth and presigned URLs).
// Spec: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html
// Hashing and HMAC go through Core/Digest.swift (OpenSSL EVP / HMAC in the C core, `cs_digest_*`,
// `cs_hmac_sha256`); nothing else here is cryptography.

/// Access key pair (and optional STS session token) used to sign requests.
/// Its `description` never shows the secret or the token, so it is safe to interpolate into logs.
public struct AWSCredentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>"
            + (sessionToken == nil ? ")" : ", sessionToken: <redacted>)")
    }
    public var debugDescription: String { description }
    // `dump()` and the test runner's failure printing go through Mirror: hide the secret there too.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "accessKeyID": accessKeyID, "secretAccessKey": "<redacted>",
                "sessionToken": sessionToken == nil ? "nil" : "<redacted>"
            ])
    }
}

/// SHA-256 of the empty string: the payload hash of bodiless requests (GET, HEAD, DELETE).
public let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/// SHA-256 hex of a payload (for `x-amz-content-sha256`); uses `Digest(.sha256)` (OpenSSL via `cs_digest_*`).
public func sha256Hex<D: ContiguousBytes>(_ data: D) -> String {
    Digest.hash(.sha256, data).hexString
}

/// Every intermediate value of one signature, so tests can check each step against the vectors.
struct SigV4Result {
    var canonicalRequest: String
    var stringToSign: String
    var signature: String
    var signedHeaders: String
    var credentialScope: String
    var amzDate: String
}

/// The pure steps of SigV4 (no key material): canonical forms, string to sign, date formatting.
enum SigV4 {
    static let algorithm = "AWS4-HMAC-SHA256"
    static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// Headers we never sign: clients and proxies add or rewrite them (curl adds `Expect: 100-continue`
    /// on its own, proxies touch `User-Agent`/`Connection`), and `Authorization` is the output.
    static let unsignedHeaderNames: Set<String> = [
        "authorization", "user-agent", "expect", "connection", "transfer-encoding", "x-amzn-trace-id"
    ]

    /// `YYYYMMDD'T'HHMMSS'Z'` in UTC. No DateFormatter (not in FoundationEssentials): `gmtime_r`.
    static func amzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        _ = gmtime_r(&t, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + "Z"
    }

    /// Byte-wise (not Unicode-collation) ordering, as SigV4 requires for names and encoded pairs.
    static func byteLess(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Canonical query string: names and values URI-encoded (slash too), sorted by name then value,
    /// `name=value` joined by `&`; a value-less subresource (`?lifecycle`) is `lifecycle=`.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map {
            (SigV4Encoding.uriEncode($0.0, encodeSlash: true), SigV4Encoding.uriEncode($0.1, encodeSlash: true))
        }
        .sorted { $0.0 != $1.0 ? byteLess($0.0, $1.0) : byteLess($0.1, $1.1) }
        .map { $0.0 + "=" + $0.1 }
        .joined(separator: "&")
    }

    /// Trims a header value and folds each run of whitespace (including folded-line breaks) to one space.
    static func trimAll(_ value: String) -> String {
        var out = [UInt8]()
        var pendingSpace = false
        for b in value.utf8 {
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(0x20); pendingSpace = false }
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Canonical header block (`name:value\n` per header, names lowercased and sorted, repeated
    /// headers joined with `,` in the order given) and the `SignedHeaders` list.
    static func canonicalHeaders(_ headers: [(String, String)]) -> (block: String, signed: String) {
        var order: [String] = []
        var values: [String: [String]] = [:]
        for (name, value) in headers {
            let key = name.lowercased()
            if values[key] == nil { order.append(key) }
            values[key, default: []].append(trimAll(value))
        }
        let names = order.sorted(by: byteLess)
        var block = ""
        for name in names { block += name + ":" + values[name]!.joined(separator: ",") + "\n" }
        return (block, names.joined(separator: ";"))
    }

    /// The canonical request. `canonicalURI` is used verbatim: S3 wants the path exactly as sent.
    static func canonicalRequest(
        method: String, canonicalURI: String, query: [(String, String)],
        headers: [(String, String)], payloadHash: String
    ) -> (request: String, signedHeaders: String) {
        let h = canonicalHeaders(headers)
        let request =
            method + "\n" + canonicalURI + "\n" + canonicalQuery(query) + "\n"
            + h.block + "\n" + h.signed + "\n" + payloadHash
        return (request, h.signed)
    }

    static func stringToSign(amzDate: String, scope: String, canonicalRequest: String) -> String {
        algorithm + "\n" + amzDate + "\n" + scope + "\n" + sha256Hex(Array(canonicalRequest.utf8))
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    static func deriveSigningKey(secret: String, dateStamp: String, region: String, service: String) -> [UInt8] {
        var key = hmacSHA256(key: Array(("AWS4" + secret).utf8), data: Array(dateStamp.utf8))
        for part in [region, service, "aws4_request"] {
            key = hmacSHA256(key: key, data: Array(part.utf8))
        }
        return key
    }
}

/// Signs S3 requests with AWS Signature Version 4 (`Authorization` header or presigned URL).
/// Caches the derived signing key per (date, region, service); thread-safe (used by parallel part uploads).
public final class SigV4Signer: Sendable {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    /// Last derived key (region and service are fixed per signer, so the date is the cache key),
    /// and how many derivations happened, which tests read to see the cache work.
    private struct KeyCache { var dateStamp = ""; var key: [UInt8] = []; var derivations = 0 }
    private let cache = Mutex(KeyCache())

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Number of signing-key derivations so far (4 HMACs each); stays at 1 within one UTC day.
    var keyDerivations: Int { cache.withLock { $0.derivations } }

    func signingKey(dateStamp: String) -> [UInt8] {
        cache.withLock { c in
            if c.dateStamp != dateStamp || c.key.isEmpty {
                c.key = SigV4.deriveSigningKey(
                    secret: credentials.secretAccessKey, dateStamp: dateStamp,
                    region: region, service: service)
                c.dateStamp = dateStamp
                c.derivations += 1
            }
            return c.key
        }
    }

    func scope(dateStamp: String) -> String { dateStamp + "/" + region + "/" + service + "/aws4_request" }

    /// Hex HMAC of a string to sign with the (cached) key of the date in `amzDate`.
    func signature(stringToSign: String, amzDate: String) -> String {
        let key = signingKey(dateStamp: String(amzDate.prefix(8)))
        return hmacSHA256(key: key, data: Array(stringToSign.utf8)).hexString
    }

    // MARK: Header-based auth

    /// Header-based auth. `canonicalURI` is the URI-encoded path exactly as sent on the wire (S3: no
    /// normalisation, no double encoding). `query` holds DECODED name/value pairs. `headers` are as sent and
    /// must include Host. Returns the headers to add: `Authorization`, `x-amz-date`, `x-amz-content-sha256`
    /// (value = payloadSHA256, always signed), and `x-amz-security-token` when a session token is set.
    /// Caller-supplied `x-amz-date`, `x-amz-content-sha256` (and the token header when credentials carry
    /// one) are replaced by the returned values; `User-Agent`, `Expect`, `Connection`,
    /// `Transfer-Encoding` are sent but not signed.
    public func authorizationHeaders(
        method: String, canonicalURI: String, query: [(String, String)],
        headers: [(String, String)], payloadSHA256: String, date: Date
    ) -> [(String, String)] {
        signHeaders(
            method: method, canonicalURI: canonicalURI, query: query, headers: headers,
            payloadHash: payloadSHA256, date: date, addContentSHA256: true, signSessionToken: true
        ).headers
    }

    /// The general form behind `authorizationHeaders`. The generic AWS test suites sign for a service
    /// that does not want `x-amz-content-sha256` (`addContentSHA256: false`), and one STS case adds the
    /// token after signing (`signSessionToken: false`); S3 always uses `true, true`.
    func signHeaders(
        method: String, canonicalURI: String, query: [(String, String)], headers: [(String, String)],
        payloadHash: String, date: Date, addContentSHA256: Bool,
        signSessionToken: Bool
    ) -> (result: SigV4Result, headers: [(String, String)]) {
        let amzDate = SigV4.amzDate(date)
        let token = credentials.sessionToken
        var replaced: Set<String> = ["x-amz-date"]
        if addContentSHA256 { replaced.insert("x-amz-content-sha256") }
        if token != nil { replaced.insert("x-amz-security-token") }

        var added: [(String, String)] = [("x-amz-date", amzDate)]
        if addContentSHA256 { added.append(("x-amz-content-sha256", payloadHash)) }
        var toSign =
            headers.filter {
                let name = $0.0.lowercased()
                return !replaced.contains(name) && !SigV4.unsignedHeaderNames.contains(name)
            } + added
        if let token, signSessionToken { toSign.append(("x-amz-security-token", token)) }

        let result = sign(
            method: method, canonicalURI: canonicalURI, query: query, headers: toSign,
            payloadHash: payloadHash, amzDate: amzDate)
        let authorization =
            SigV4.algorithm + " Credential=" + credentials.accessKeyID + "/" + result.credentialScope
            + ", SignedHeaders=" + result.signedHeaders + ", Signature=" + result.signature
        var out = [("Authorization", authorization)] + added
        if let token { out.append(("x-amz-security-token", token)) }
        return (result, out)
    }

    /// Canonical request → string to sign → signature, for an already complete header list.
    func sign(
        method: String, canonicalURI: String, query: [(String, String)], headers: [(String, String)],
        payloadHash: String, amzDate: String
    ) -> SigV4Result {
        let scope = scope(dateStamp: String(amzDate.prefix(8)))
        let creq = SigV4.canonicalRequest(
            method: method, canonicalURI: canonicalURI, query: query,
            headers: headers, payloadHash: payloadHash)
        let sts = SigV4.stringToSign(amzDate: amzDate, scope: scope, canonicalRequest: creq.request)
        return SigV4Result(
            canonicalRequest: creq.request, stringToSign: sts,
            signature: signature(stringToSign: sts, amzDate: amzDate),
            signedHeaders: creq.signedHeaders, credentialScope: scope, amzDate: amzDate)
    }

    // MARK: Query-string auth (presigned URLs)

    /// Query-string auth (presigned URL, payload `UNSIGNED-PAYLOAD`, only `host` signed). Returns the full URL
    /// "scheme://host/canonicalURI?X-Amz-Algorithm=...&X-Amz-Signature=...". `host` may include ":port".
    /// `expires` is in seconds (S3 accepts 1...604800). The URL grants access: never log it whole.
    public func presignedURL(
        method: String, scheme: String, host: String, canonicalURI: String,
        query: [(String, String)], expires: Int, date: Date
    ) -> String {
        let q = presign(
            method: method, canonicalURI: canonicalURI, query: query, headers: [("host", host)],
            payloadHash: SigV4.unsignedPayload, expires: expires, date: date,
            signSessionToken: true
        ).query
        return scheme + "://" + host + canonicalURI + "?" + q
    }

    /// The general form behind `presignedURL`: any signed headers and payload hash (the generic suites
    /// sign the body hash). Returns the steps and the final query string (canonical query, then
    /// `X-Amz-Signature`, then the token when it is not signed).
    func presign(
        method: String, canonicalURI: String, query: [(String, String)], headers: [(String, String)],
        payloadHash: String, expires: Int, date: Date,
        signSessionToken: Bool
    ) -> (result: SigV4Result, query: String) {
        let amzDate = SigV4.amzDate(date)
        let scope = scope(dateStamp: String(amzDate.prefix(8)))
        let signedHeaders = SigV4.canonicalHeaders(headers).signed
        var auth: [(String, String)] = [
            ("X-Amz-Algorithm", SigV4.algorithm),
            ("X-Amz-Credential", credentials.accessKeyID + "/" + scope),
            ("X-Amz-Date", amzDate),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", signedHeaders)
        ]
        if let token = credentials.sessionToken, signSessionToken { auth.append(("X-Amz-Security-Token", token)) }
        // Our own parameters win over caller-supplied ones of the same name.
        let reserved = Set(auth.map(\.0) + ["X-Amz-Signature", "X-Amz-Security-Token"])
        let fullQuery = query.filter { !reserved.contains($0.0) } + auth

        let result = sign(
            method: method, canonicalURI: canonicalURI, query: fullQuery, headers: headers,
            payloadHash: payloadHash, amzDate: amzDate)
        var out = SigV4.canonicalQuery(fullQuery) + "&X-Amz-Signature=" + result.signature
        if let token = credentials.sessionToken, !signSessionToken {
            out += "&X-Amz-Security-Token=" + SigV4Encoding.uriEncode(token, encodeSlash: true)
        }
        return (result, out)
    }

    // MARK: aws-chunked (streaming) signatures

    /// Signature of one `aws-chunked` chunk, chained from the previous one (the seed signature for the
    /// first). laju-backup never uploads with aws-chunked (it sends Content-Length and a signed payload
    /// hash); this exists so the S3 documentation's streaming example is checked end to end.
    func chunkSignature(previousSignature: String, chunk: [UInt8], amzDate: String) -> String {
        let sts =
            "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope(dateStamp: String(amzDate.prefix(8))) + "\n"
            + previousSignature + "\n" + emptyPayloadSHA256 + "\n" + sha256Hex(chunk)
        return signature(stringToSign: sts, amzDate: amzDate)
    }
}
