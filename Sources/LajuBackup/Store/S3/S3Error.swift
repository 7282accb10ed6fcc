/// An S3 error response: HTTP status plus the XML `Code`, `Message`, `RequestId` (HEAD answers
/// have no body, so the code is derived from the status there).
struct S3ErrorResponse {
    var status: Int
    var code: String
    var message: String
    var requestID: String?

    init(status: Int, body: [UInt8], headers: [String: String]) {
        self.status = status
        let xml = XMLScan(body)
        let error = xml.elements("Error").first.map { XMLScan(text: String($0)) } ?? xml
        code = error.first("Code") ?? S3ErrorResponse.codeForStatus(status)
        message = error.first("Message") ?? ""
        requestID = error.first("RequestId") ?? headers["x-amz-request-id"]
    }

    static func codeForStatus(_ status: Int) -> String {
        switch status {
        case 301: return "PermanentRedirect"
        case 400: return "BadRequest"
        case 403: return "Forbidden"
        case 404: return "NotFound"
        case 409: return "Conflict"
        case 500: return "InternalError"
        case 503: return "ServiceUnavailable"
        default: return "HTTP\(status)"
        }
    }

    /// Worth another attempt: server-side trouble and throttling, never auth or client errors.
    var isRetryable: Bool {
        if status >= 500 { return true }
        return ["RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable"].contains(code)
            || status == 429
    }

    /// One clear line for users: what failed, S3's own words, and what to do.
    func lajuError(operation: String, configuration c: S3Configuration, attempts: Int) -> LajuError {
        var text = "S3 \(operation) failed: HTTP \(status) \(code)"
        if !message.isEmpty { text += ": \(message)" }
        if let requestID, !requestID.isEmpty { text += " (RequestId \(requestID))" }
        if attempts > 1 { text += " after \(attempts) attempts" }
        var hint: String?
        var notFound = false
        switch code {
        case "RequestTimeTooSkewed":
            hint =
                "the host clock is off: S3 rejects requests more than 15 minutes from its time; sync the clock (timedatectl set-ntp true / chrony)"
        case "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
            "AuthorizationHeaderMalformed":
            hint =
                "check the credentials: WASABI_ACCESS_KEY/WASABI_SECRET_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and WASABI_REGION"
        case "NoSuchBucket":
            hint =
                c.endpointIncludesBucket
                ? "WASABI_ENDPOINT (\(c.endpointString)) seems to include the bucket: set it to the service's endpoint and the bucket in WASABI_BUCKET"
                : "bucket \(c.bucket) does not exist at \(c.endpointString): check WASABI_BUCKET and WASABI_ENDPOINT"
        case "NoSuchKey", "NotFound":
            notFound = true
            if c.endpointIncludesBucket {
                hint =
                    "WASABI_ENDPOINT (\(c.endpointString)) seems to include the bucket: set it to the service's endpoint (e.g. https://s3.wasabisys.com) and the bucket in WASABI_BUCKET"
            }
        case "PermanentRedirect", "AuthorizationQueryParametersError":
            hint = "the bucket lives in another region or endpoint: check WASABI_REGION and WASABI_ENDPOINT"
        case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout":
            hint = "the service is busy or failing; try again later (BACKUP_S3_RETRIES raises the attempts)"
        default: break
        }
        if status == 404 && code != "NoSuchBucket" && code != "NoSuchUpload" { notFound = true }
        if hint == nil && status == 400 && message.isEmpty && c.scheme == "http" {
            // An HTTPS-only port answers a plain request with an HTML 400, not an S3 error.
            hint =
                "the endpoint may expect HTTPS: try WASABI_ENDPOINT=https://\(c.host)\(c.port.map { ":\($0)" } ?? "")"
        }
        if hint == nil && c.objectLockMode != nil && code == "InvalidRequest"
            && (operation.hasPrefix("PutObject") || operation.hasPrefix("CreateMultipartUpload"))
        {
            hint =
                "BACKUP_OBJECT_LOCK_MODE is set: the bucket must have Object Lock enabled (it can only be enabled when the bucket is created; see laju-backup.env(5), Object Lock)"
        }
        if hint == nil && (code == "AccessDenied" || code == "Forbidden") {
            switch c.role {
            case .read:
                hint =
                    "these credentials may not read bucket \(c.bucket) (s3:GetObject, s3:ListBucket); restores and drills can use their own credentials: BACKUP_READ_ACCESS_KEY/BACKUP_READ_SECRET_KEY"
            case .clean:
                hint =
                    "these credentials may not delete in bucket \(c.bucket) (s3:DeleteObject, s3:ListBucket); clean can use its own credentials: BACKUP_CLEAN_ACCESS_KEY/BACKUP_CLEAN_SECRET_KEY"
            case .write:
                hint = "these credentials may not write to bucket \(c.bucket) (s3:PutObject and the multipart calls)"
            }
        }
        var e = LajuError(
            .storage, S3Store.redact(text, c), hint: hint.map { S3Store.redact($0, c) }, isNotFound: notFound)
        e.code = code
        return e
    }
}
