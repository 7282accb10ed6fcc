import Synchronization
internal import CSupport

/// One HTTP request as the S3 store builds it.
struct HTTPRequest {
    enum Body {
        case none
        case bytes([UInt8])
        /// `length` bytes of an open file from `offset`, read by curl with pread (never loaded whole).
        case file(fd: Int32, offset: Int64, length: Int64)

        var length: Int64 {
            switch self {
            case .none: return 0
            case .bytes(let b): return Int64(b.count)
            case .file(_, _, let length): return length
            }
        }
    }

    var method: String
    var url: String
    var headers: [(String, String)]
    var body: Body = .none
    /// 2xx bodies go to this fd (pwrite from `responseOffset`); other bodies are buffered.
    var responseFD: Int32? = nil
    var responseOffset: Int64 = 0
    var connectTimeout: Int32 = 15
    /// Abort when the transfer stays below 1 byte/s for this many seconds (a stalled connection).
    var stallTimeout: Int32 = 60
    /// Abort when the request takes longer than `deadlineBase + bytes / minRate` seconds (0: off).
    var minRate: Int64 = 0
    var deadlineBase: Int32 = 0
    /// How much of a non-2xx (or fd-less) body is kept; `HTTPResponse.bodyTruncated` says when
    /// more arrived.
    var responseBufferCap: Int = 1 << 20
    /// Abort the whole request after this many seconds (0: no limit besides the others).
    var totalTimeout: Int32 = 0
    var progress: ((Int64, Int64) -> Bool)? = nil
}

/// What came back: status, lowercase header names, the buffered body (error documents, XML).
/// `failure` is set when the transfer broke (no response, or a body cut short); `status` and
/// `headers` then still say what had arrived.
struct HTTPResponse {
    var failure: CError?
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    /// The body was longer than the request's `responseBufferCap`: `body` holds only its start.
    var bodyTruncated: Bool
    var bytesReceived: Int64
    var seconds: Double

    var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A libcurl easy handle (`cs_http`, see CSupport/http.c) that keeps its connections alive between
/// requests. Not thread-safe: each thread takes its own from `HTTPClientPool`.
///
/// `@unchecked Sendable` because a libcurl easy handle may move between threads as long as only
/// one thread uses it at a time; `HTTPClientPool` hands each client to exactly one caller.
final class HTTPClient: @unchecked Sendable {
    private let handle: OpaquePointer

    init() throws {
        guard let h = cs_http_new() else {
            throw LajuError(.internal, "libcurl could not be initialised (cs_http_new)")
        }
        handle = h
    }

    deinit { cs_http_free(handle) }

    /// Performs one request ([`cs_http_perform`]). A transport failure (status `.curl`, libraryCode =
    /// CURLcode; `.io`/`.noSpace` for the local file) is returned in `failure`, never thrown; an HTTP
    /// error status is just a status.
    func perform(_ request: HTTPRequest) -> HTTPResponse {
        let lines = request.headers.map { "\($0.0): \($0.1)" }
        var cStrings = lines.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var result = cs_http_result()
        let box = request.progress.map(ProgressTrampoline.init)

        func run(_ headerPtr: UnsafePointer<UnsafePointer<CChar>?>?, _ bodyPtr: UnsafeRawPointer?, _ bodyLen: Int)
            throws
        {
            var req = cs_http_request()
            try request.method.withCString { method in
                try request.url.withCString { url in
                    req.method = method
                    req.url = url
                    req.headers = headerPtr
                    req.header_count = lines.count
                    req.body = bodyPtr
                    req.body_length = bodyLen
                    req.body_fd = -1
                    if case .file(let fd, let offset, let length) = request.body {
                        req.body_fd = fd
                        req.body_fd_offset = offset
                        req.body_fd_length = length
                    }
                    req.response_fd = request.responseFD ?? -1
                    req.response_fd_offset = request.responseOffset
                    req.response_buffer_cap = request.responseBufferCap
                    req.min_rate = request.minRate
                    req.total_timeout_s = request.totalTimeout
                    req.deadline_base_s = request.deadlineBase
                    req.connect_timeout_s = request.connectTimeout
                    req.low_speed_time_s = request.stallTimeout
                    req.low_speed_limit = 1
                    if let box {
                        req.progress = ProgressTrampoline.callback
                        try box.with { ctx in
                            req.progress_ctx = ctx
                            try cCall { cs_http_perform(handle, &req, &result, $0) }
                        }
                    } else {
                        try cCall { cs_http_perform(handle, &req, &result, $0) }
                    }
                }
            }
        }

        var failure: CError?
        do {
            try cStrings.withUnsafeMutableBufferPointer { buf in
                // strdup'ed `char *` pointers, read by C as `const char *const *`.
                let hp = buf.baseAddress.map {
                    UnsafeRawPointer($0).assumingMemoryBound(to: UnsafePointer<CChar>?.self)
                }
                if case .bytes(let bytes) = request.body {
                    try bytes.withUnsafeBytes { try run(hp, $0.baseAddress, $0.count) }
                } else {
                    try run(hp, nil, 0)
                }
            }
        } catch let e as CError {
            failure = e
        } catch {
            failure = CError(status: .argument, libraryCode: 0, message: "\(error)")
        }

        let headers = HTTPClient.parseHeaderBlock(String(cString: cs_http_response_headers(handle)))
        var length = 0
        let ptr = cs_http_response_body(handle, &length)
        let body = ptr.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
        return HTTPResponse(
            failure: failure, status: Int(result.status), headers: headers, body: body,
            bodyTruncated: result.body_truncated != 0,
            bytesReceived: result.bytes_received, seconds: result.total_seconds)
    }
}

extension HTTPClient {
    /// The response header block as `cs_http_response_headers` gives it (`name: value` lines,
    /// names already lowercase) as a dictionary; repeated headers are joined with `,`.
    static func parseHeaderBlock(_ text: String) -> [String: String] {
        // Values are gathered first and joined once: appending to the joined string for every
        // repeat copied it each time, quadratic in the number of repeats.
        var values: [String: [String]] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            values[String(line[..<colon]), default: []].append(String(line[line.index(after: colon)...]).trimmingSpaces)
        }
        return values.mapValues { $0.joined(separator: ",") }
    }
}

/// Idle HTTP clients, reused so connections stay warm across requests and threads.
final class HTTPClientPool: Sendable {
    private let idle = Mutex<[HTTPClient]>([])

    /// Runs `body` with a client nobody else is using at the moment.
    func with<R>(_ body: (HTTPClient) throws -> R) throws -> R {
        let c = try idle.withLock { $0.popLast() } ?? HTTPClient()
        defer { idle.withLock { $0.append(c) } }
        return try body(c)
    }
}
