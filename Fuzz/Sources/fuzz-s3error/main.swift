// S3 error bodies: S3ErrorResponse (Storage/S3/S3Error.swift) reads Code, Message and RequestId out
// of whatever an S3 endpoint answered, and lajuError turns them into the one line users see. The
// input is the response body; the HTTP status it came with is picked by the body's length, so that
// every status is tried without a prefix byte that would make the seed files less readable.
import FuzzSupport
@testable import LajuBackup

@_cdecl("fuzz_s3error_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
let token = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
let configuration: S3Configuration = {
    let values = [
        "WASABI_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLE", "WASABI_SECRET_KEY": secret,
        "AWS_SESSION_TOKEN": token, "WASABI_BUCKET": "laju-backups",
        "WASABI_REGION": "eu-central-2"
    ]
    return try! S3Configuration(
        settings: Settings(environment: Environment(layers: [(source: "fuzz", values: values)])))
}()

let statuses = [200, 301, 400, 403, 404, 409, 429, 500, 503, 418]

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = fuzzBytes(data, size)
    // The check CompleteMultipartUpload makes on a 200 answer.
    _ = XMLScan(body).elements("Error").isEmpty
    do {
        let status = statuses[body.count % statuses.count]
        let e = S3ErrorResponse(status: status, body: body, headers: ["x-amz-request-id": "4442587FB7D0A2F9"])
        _ = e.code.utf8.count + e.message.utf8.count + (e.requestID?.utf8.count ?? 0)
        fuzzCheck(
            !e.code.isEmpty || !XMLScan(body).all("Code").isEmpty, "an empty code without an empty <Code> element")
        if status >= 500 || status == 429 { fuzzCheck(e.isRetryable, "HTTP \(status) must be retried") }
        let error = e.lajuError(
            operation: "GetObject backups/app.sqlite3-2025-01-01T01:00-x.db.gz.enc",
            configuration: configuration, attempts: 3)
        // Secrets never appear in what users and logs see, whatever the server echoes.
        for shown in [error.message, error.hint ?? ""] {
            fuzzCheck(
                !containsBytes(shown, secret) && !containsBytes(shown, token),
                "a secret reached an error message: \(shown.debugDescription)")
        }
        if status == 404 && e.code != "NoSuchBucket" && e.code != "NoSuchUpload" {
            fuzzCheck(error.isNotFound, "a 404 must count as not found")
        }
    }
    return 0
}
