/// Objects in an S3-compatible bucket (Wasabi, AWS S3, R2, B2, MinIO, SeaweedFS), over our own
/// SigV4 signer (`SigV4Signer`) and libcurl (`HTTPClient`, `cs_http_*`).
///
/// Single PUT up to the part size, multipart above it (S3Multipart.swift); downloads stream to
/// disk and resume with `Range` after a dropped connection; every request is retried with back-off
/// on server errors and broken connections (Retry.swift). Errors carry S3's Code, Message and
/// RequestId, never a secret.
public final class S3Store: VersionedStore, PresigningStore, ServerClock {
    public let configuration: S3Configuration
    let signer: SigV4Signer
    let pool = HTTPClientPool()
    let retry: RetryPolicy

    public init(configuration: S3Configuration) throws {
        self.configuration = configuration
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
        retry = RetryPolicy(maxAttempts: configuration.maxAttempts)
    }

    public var displayName: String { "s3://\(configuration.bucket)/ at \(configuration.endpointString)" }
    public var storageLabel: String { "s3" }
    public var uploadDigestNeeds: UploadDigestNeeds {
        UploadDigestNeeds(partSize: configuration.partSize, sha256: configuration.signPayload)
    }

    // MARK: - ObjectStore

    /// ListObjectsV2 with max-keys=1 under the prefix: proves endpoint, credentials (the signature
    /// is checked) and bucket before any temp file exists.
    /// Also passes for credentials that may only write: S3 answers it AccessDenied, which proves
    /// the signature (and so endpoint, credentials and region) was accepted; wrong credentials
    /// get SignatureDoesNotMatch or InvalidAccessKeyId and fail here. With Object Lock configured
    /// the bucket's lock configuration is checked too.
    public func checkAccess() throws {
        do {
            _ = try listPage(
                prefix: configuration.prefix, token: nil, maxKeys: 1, operation: "access check (ListObjectsV2)")
        } catch let e as LajuError where e.isAccessDenied {
            // Write-only credentials: fine for writing.
        }
        if configuration.objectLockMode != nil { try checkObjectLock() }
    }

    public func put(
        key: String, file: String, size: Int64, digests: ObjectDigests, metadata: [String: String],
        progress: TransferProgress?
    ) throws {
        let md5 = digests.md5
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw LajuError(.local, "cannot open \(file) for upload: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        if size > configuration.partSize {
            try putMultipart(
                key: key, fd: fd, size: size, md5: md5, metadata: metadata, progress: progress,
                sealedParts: digests.parts)
        } else {
            try putSingle(
                key: key, fd: fd, size: size, md5: md5, metadata: metadata, progress: progress,
                sealedSHA256: digests.sha256)
        }
    }

    public func head(key: String) throws -> ObjectInfo { try headObject(key: key, version: nil) }

    public func head(key: String, versionID: String) throws -> ObjectInfo {
        try headObject(key: key, version: versionID)
    }

    /// HeadObject, of one version when `version` is given; Object Lock headers included.
    func headObject(key: String, version: String?) throws -> ObjectInfo {
        let r = try send(
            operation: "HeadObject \(key)\(version.map { " version \($0)" } ?? "")", method: "HEAD", key: key,
            query: version.map { [("versionId", $0)] } ?? [])
        var meta: [String: String] = [:]
        for (name, value) in r.headers where name.hasPrefix("x-amz-meta-") {
            meta[String(name.dropFirst("x-amz-meta-".count))] = value
        }
        return ObjectInfo(
            key: key, size: try S3Store.objectSize(r.headers["content-length"], what: "Content-Length of \(key)"),
            lastModified: r.headers["last-modified"].flatMap(HTTPDate.parse), metadata: meta,
            versionID: r.headers["x-amz-version-id"] ?? version,
            lockedUntil: r.headers["x-amz-object-lock-retain-until-date"].flatMap {
                HTTPDate.parseISO($0.trimmingSpaces)
            })
    }

    /// A size the server reported (a header or a listing's `<Size>`), range-checked: S3 objects
    /// are at most 5 TiB, and a hostile number must end in a clear error, not an overflow.
    static func objectSize(_ text: String?, what: String) throws -> Int64 {
        guard let text, let n = Int64(text.trimmingSpaces), (0...ObjectInfo.maxBytes).contains(n) else {
            throw LajuError(
                .storage,
                "the S3 server reported an impossible size for \(Display.safe(what)): \(Display.quoted(text ?? "none"))",
                hint: "is WASABI_ENDPOINT an S3 server?")
        }
        return n
    }

    /// DeleteObject. S3 answers 204 whether or not the key existed, so a HEAD first tells which.
    @discardableResult
    public func delete(key: String) throws -> Bool {
        do { _ = try head(key: key) } catch let e as LajuError where e.isNotFound { return false }
        let r = try send(operation: "DeleteObject \(key)", method: "DELETE", key: key, passthrough: [404])
        return r.status != 404
    }

    /// Every object under `prefix`, all pages. A listing that does not advance (a continuation
    /// token seen before) or never ends is an error, never an endless loop or a partial answer.
    public func list(prefix: String) throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        var token: String?
        var seen = Set<String>()
        var pages = 0
        repeat {
            let page = try listPage(prefix: prefix, token: token, maxKeys: 1000, operation: "ListObjectsV2 \(prefix)")
            out += page.objects
            token = page.nextToken
            pages += 1
            if let t = token {
                guard seen.insert(t).inserted else {
                    throw LajuError(
                        .storage,
                        "S3 ListObjectsV2 \(Display.safe(prefix)): the server sent the same continuation token twice; the listing does not advance",
                        hint: "the S3 server is misbehaving; nothing was changed")
                }
                guard pages < S3Store.maxListPages else {
                    throw LajuError(
                        .storage,
                        "S3 ListObjectsV2 \(Display.safe(prefix)): more than \(S3Store.maxListPages) pages; giving up",
                        hint: "use a BACKUP_PREFIX that holds only backups")
                }
            }
        } while token != nil
        return out.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    /// 100 million keys at 1000 a page.
    static let maxListPages = 100_000

    /// Seconds this host's clock is ahead of the S3 server's (negative: behind), from the `Date`
    /// header of one bucket request; any answer carries it, even a refusal.
    public func clockOffset() throws -> Double {
        let before = Double(LocalTime.nowMilliseconds()) / 1000
        let r = try attempt(method: "GET", key: nil, query: [("list-type", "2"), ("max-keys", "1")])
        let after = Double(LocalTime.nowMilliseconds()) / 1000
        guard r.failure == nil, let date = r.headers["date"].flatMap(HTTPDate.parse) else {
            throw LajuError(.storage, "the S3 server sent no usable Date header")
        }
        return (before + after) / 2 - date
    }

    /// A time-limited GET URL for `key` (query-string SigV4). It grants access: print it for the
    /// user, never log it.
    public func presignedGetURL(key: String, expires: Int, date: Date = Date()) -> String {
        let loc = location(key: key)
        return signer.presignedURL(
            method: "GET", scheme: configuration.scheme, host: loc.host,
            canonicalURI: loc.path, query: [], expires: expires, date: date)
    }

    // MARK: - Single PUT

    func putSingle(
        key: String, fd: Int32, size: Int64, md5: [UInt8], metadata: [String: String],
        progress: TransferProgress?, sealedSHA256: [UInt8]? = nil
    ) throws {
        // The seal pass's SHA-256 when it made one; else one read of the file.
        let sha =
            try configuration.signPayload && sealedSHA256 != nil
            ? sealedSHA256!.hexString
            : localDigest { try payloadHash(fd: fd, offset: 0, length: size) }
        var headers = objectHeaders(metadata)
        headers.append(("Content-MD5", Data(md5).base64EncodedString()))
        _ = try send(
            operation: "PutObject \(key)", method: "PUT", key: key, headers: headers,
            body: .file(fd: fd, offset: 0, length: size), payloadHash: sha, progress: progress)
    }

    /// `x-amz-content-sha256` of a body read from a file: `UNSIGNED-PAYLOAD` (the body is covered
    /// by the signed Content-MD5 that S3 verifies), or its SHA-256 with `BACKUP_S3_SIGN_PAYLOAD`.
    func payloadHash(fd: Int32, offset: Int64, length: Int64) throws -> String {
        guard configuration.signPayload else { return "UNSIGNED-PAYLOAD" }
        return try Digest.hash(.sha256, fileDescriptor: fd, offset: offset, length: length).hexString
    }

    /// Content type, user metadata (`x-amz-meta-<name>`) and server-side encryption of a new object.
    func objectHeaders(_ metadata: [String: String]) -> [(String, String)] {
        objectHeadersWithoutLock(metadata) + objectLockHeaders()
    }

    func objectHeadersWithoutLock(_ metadata: [String: String]) -> [(String, String)] {
        var headers: [(String, String)] = [("Content-Type", "application/octet-stream")]
        for (name, value) in metadata.sorted(by: { $0.key < $1.key }) {
            // Header values cannot hold line breaks or other controls; ours never do, but be safe.
            let clean = String(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
            headers.append(("x-amz-meta-\(name.lowercased())", clean))
        }
        if configuration.serverSideEncryption { headers.append(("x-amz-server-side-encryption", "AES256")) }
        return headers
    }

    // MARK: - GET with resume

    /// Streams the object into the new file `file` (O_EXCL, 0600). After a dropped connection the
    /// download resumes with `Range: bytes=N-` and `If-Match` on the ETag (so a replaced object
    /// is never stitched together). On any failure `file` is removed.
    public func get(key: String, to file: String, progress: TransferProgress?) throws {
        try getObject(key: key, version: nil, to: file, progress: progress)
    }

    public func get(key: String, versionID: String, to file: String, progress: TransferProgress?) throws {
        try getObject(key: key, version: versionID, to: file, progress: progress)
    }

    func getObject(key: String, version: String?, to file: String, progress: TransferProgress?) throws {
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw LajuError(.local, "cannot create \(file): \(String(cString: strerror(e)))")
        }
        var complete = false
        defer {
            close(fd)
            if !complete { unlink(file) }
        }
        let operation = "GetObject \(key)"
        var have: Int64 = 0
        var etag: String?
        var failures = 0
        var rounds = 0
        while true {
            rounds += 1
            var headers: [(String, String)] = []
            if have > 0 {
                headers.append(("Range", "bytes=\(have)-"))
                if let etag { headers.append(("If-Match", etag)) }
            }
            let start = have
            let r = try attempt(
                method: "GET", key: key, query: version.map { [("versionId", $0)] } ?? [],
                headers: headers, responseFD: fd, responseOffset: have,
                progress: progress.map { p in { done, total in p(start + done, start + total) } })
            if let failure = r.failure {
                try throwIfLocal(failure, operation: operation)
                // Whatever arrived before the break is on disk: resume from there.
                var st = stat()
                let before = have
                if fstat(fd, &st) == 0 { have = Int64(st.st_size) }
                if etag == nil, (200...299).contains(r.status) { etag = r.headers["etag"] }
                if have == before { failures += 1 }
                guard RetryPolicy.isRetryable(curlCode: failure.libraryCode), failure.status == .curl,
                    failures < retry.maxAttempts, rounds < retry.maxAttempts * 2
                else {
                    throw transportError(failure, operation: operation, attempts: rounds)
                }
                retry.sleep(after: max(failures, 1))
                continue
            }
            switch r.status {
            case 200, 206:
                let total =
                    r.status == 206
                    ? contentRangeTotal(r.headers["content-range"]) : Int64(r.headers["content-length"] ?? "")
                var st = stat()
                guard fstat(fd, &st) == 0 else { throw LajuError(.local, "cannot stat \(file)") }
                if let total, Int64(st.st_size) != total {
                    throw LajuError(.storage, "S3 \(operation): received \(st.st_size) bytes, the object has \(total)")
                }
                complete = true
                return
            case 412:
                throw LajuError(
                    .storage, "S3 \(operation): the object changed while it was being downloaded",
                    hint: "run the restore again")
            default:
                let e = S3ErrorResponse(status: r.status, body: r.body, headers: r.headers)
                failures += 1
                guard e.isRetryable, failures < retry.maxAttempts else {
                    throw mapError(e, operation: operation, key: key, attempts: rounds)
                }
                retry.sleep(after: failures)
            }
        }
    }

    /// A ranged GET into memory. A server that ignores `Range` (200 with the whole object) is
    /// accepted only for a range that starts at 0, and only its first `length` bytes are used.
    public func getRange(key: String, offset: Int64, length: Int64) throws -> [UInt8] {
        guard offset >= 0, length > 0, length <= 64 << 20 else {
            throw LajuError(.internal, "invalid range \(offset)+\(length) of \(key)")
        }
        let operation = "GetObject \(key) bytes \(offset)-\(offset + length - 1)"
        let r = try send(
            operation: operation, method: "GET", key: key,
            headers: [("Range", "bytes=\(offset)-\(offset + length - 1)")],
            responseBufferCap: Int(length) + 1)
        if r.status == 206, !r.bodyTruncated, r.body.count == Int(length) { return r.body }
        if r.status == 200, offset == 0, r.body.count >= Int(length) { return Array(r.body.prefix(Int(length))) }
        throw LajuError(
            .storage, "S3 \(operation): expected \(length) bytes, got \(r.body.count) (HTTP \(r.status))",
            hint: "the object is shorter than recorded (damaged or replaced)")
    }

    func contentRangeTotal(_ header: String?) -> Int64? {
        guard let header, let slash = header.lastIndex(of: "/") else { return nil }
        return Int64(header[header.index(after: slash)...])
    }

    // MARK: - Requests

    /// Host header value and canonical (= wire) path for `key` (nil: the bucket itself).
    func location(key: String?) -> (host: String, path: String) {
        let c = configuration
        let port = c.port.map { ":\($0)" } ?? ""
        switch c.addressing {
        case .path:
            var raw = c.basePath + "/" + c.bucket
            if let key { raw += "/" + key }
            return (c.host + port, SigV4Encoding.s3Path(raw))
        case .virtual:
            return (c.bucket + "." + c.host + port, SigV4Encoding.s3Path(c.basePath + "/" + (key ?? "")))
        }
    }

    /// One signed attempt, no retries. Transport failures come back in `failure`.
    func attempt(
        method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
        body: HTTPRequest.Body = .none, payloadHash: String = emptyPayloadSHA256,
        responseFD: Int32? = nil, responseOffset: Int64 = 0, responseBufferCap: Int = 1 << 20,
        totalTimeout: Int32 = 0, progress: ((Int64, Int64) -> Bool)? = nil
    ) throws -> HTTPResponse {
        // The one gate every keyed request passes: an empty key would address the bucket itself.
        if let key { try ObjectKey.validate(key, origin: "an S3 request (\(method))") }
        let loc = location(key: key)
        var all = [("Host", loc.host)] + headers
        all += signer.authorizationHeaders(
            method: method, canonicalURI: loc.path, query: query, headers: all,
            payloadSHA256: payloadHash, date: Date())
        var url = "\(configuration.scheme)://\(loc.host)\(loc.path)"
        if !query.isEmpty {
            url +=
                "?"
                + query.map {
                    SigV4Encoding.uriEncode($0.0, encodeSlash: true) + "="
                        + SigV4Encoding.uriEncode($0.1, encodeSlash: true)
                }.joined(separator: "&")
        }
        let request = HTTPRequest(
            method: method, url: url, headers: all, body: body, responseFD: responseFD,
            responseOffset: responseOffset, connectTimeout: configuration.connectTimeout,
            stallTimeout: configuration.stallTimeout, minRate: configuration.minRate,
            deadlineBase: configuration.stallTimeout + configuration.connectTimeout,
            responseBufferCap: responseBufferCap, totalTimeout: totalTimeout, progress: progress)
        return try pool.with { $0.perform(request) }
    }

    /// A signed request with retries. Returns 2xx responses (and statuses in `passthrough`);
    /// throws `LajuError(.storage)` with S3's Code/Message/RequestId otherwise.
    func send(
        operation: String, method: String, key: String?, query: [(String, String)] = [],
        headers: [(String, String)] = [], body: HTTPRequest.Body = .none,
        payloadHash: String = emptyPayloadSHA256, passthrough: Set<Int> = [],
        responseBufferCap: Int = 1 << 20, maxAttempts: Int? = nil, totalTimeout: Int32 = 0,
        progress: ((Int64, Int64) -> Bool)? = nil,
        check: ((HTTPResponse) -> S3ErrorResponse?)? = nil
    ) throws -> HTTPResponse {
        var n = 0
        let attempts = maxAttempts ?? retry.maxAttempts
        while true {
            n += 1
            let r = try attempt(
                method: method, key: key, query: query, headers: headers, body: body,
                payloadHash: payloadHash, responseBufferCap: responseBufferCap, totalTimeout: totalTimeout,
                progress: progress)
            if let failure = r.failure {
                try throwIfLocal(failure, operation: operation)
                guard failure.status == .curl, RetryPolicy.isRetryable(curlCode: failure.libraryCode), n < attempts
                else {
                    throw transportError(failure, operation: operation, attempts: n)
                }
                retry.sleep(after: n)
                continue
            }
            var error: S3ErrorResponse?
            if (200...299).contains(r.status) {
                error = check?(r)  // e.g. CompleteMultipartUpload's 200 with an <Error> body
            } else if !passthrough.contains(r.status) {
                error = S3ErrorResponse(status: r.status, body: r.body, headers: r.headers)
            }
            guard let error else { return r }
            guard error.isRetryable, n < attempts else {
                throw mapError(error, operation: operation, key: key, attempts: n)
            }
            retry.sleep(after: n)
        }
    }

    func mapError(_ e: S3ErrorResponse, operation: String, key: String?, attempts: Int) -> LajuError {
        let base = e.lajuError(operation: operation, configuration: configuration, attempts: attempts)
        if base.isNotFound, let key {
            return LajuError(
                .storage, "object \(key) not found in \(displayName) (HTTP \(e.status) \(e.code))",
                hint: "`laju-backup list --remote` shows what the bucket holds", isNotFound: true)
        }
        return base
    }

    func transportError(_ e: CError, operation: String, attempts: Int) -> LajuError {
        if e.status == .cancelled { return LajuError(.storage, "S3 \(operation) cancelled") }
        let tries = attempts > 1 ? " after \(attempts) attempts" : ""
        var hint = "check WASABI_ENDPOINT and the network (BACKUP_S3_RETRIES raises the attempts)"
        // CURLE_SSL_CONNECT_ERROR against an https endpoint: very often a plain-http server.
        if e.libraryCode == 35 && configuration.scheme == "https" {
            hint =
                "the TLS handshake with \(configuration.endpointString) failed: if that server speaks plain HTTP (a local MinIO or SeaweedFS), write WASABI_ENDPOINT=http://..."
        }
        return LajuError(
            .storage,
            S3Store.redact(
                "S3 \(operation) failed: \(configuration.endpointString): \(e.message)\(tries)", configuration),
            hint: hint)
    }

    /// Local file trouble during a transfer (disk full, unreadable source) is not a storage error.
    func throwIfLocal(_ e: CError, operation: String) throws {
        switch e.status {
        case .noSpace:
            throw LajuError(.local, "S3 \(operation): \(e.message)", hint: "free disk space in BACKUP_TMPDIR")
        case .io, .noMemory: throw LajuError(.local, "S3 \(operation): \(e.message)")
        default: return
        }
    }

    func localDigest<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as CError {
            throw LajuError(.local, "cannot read the object file: \(e.message)")
        }
    }

    /// Removes the secret (and session token) from any text that might reach a user.
    /// Works on UTF-8 bytes, not Characters: a secret followed by a combining mark forms another
    /// grapheme cluster, which a Character comparison would not match (found by fuzzing).
    static func redact(_ text: String, _ c: S3Configuration) -> String {
        var bytes = Array(text.utf8)
        for secret in [c.credentials.secretAccessKey, c.credentials.sessionToken ?? ""] where secret.utf8.count >= 4 {
            bytes = replacingBytes(bytes, Array(secret.utf8), with: Array("<redacted>".utf8))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func replacingBytes(_ haystack: [UInt8], _ needle: [UInt8], with replacement: [UInt8]) -> [UInt8] {
        guard !needle.isEmpty, haystack.count >= needle.count else { return haystack }
        var out: [UInt8] = []
        out.reserveCapacity(haystack.count)
        var i = 0
        while i < haystack.count {
            if i + needle.count <= haystack.count && haystack[i] == needle[0]
                && Array(haystack[i..<(i + needle.count)]) == needle
            {
                out += replacement
                i += needle.count
            } else {
                out.append(haystack[i])
                i += 1
            }
        }
        return out
    }
}
