// HTTP response headers and dates: HTTPClient.parseHeaderBlock (Storage/S3/HTTPClient.swift) reads
// the header block libcurl collected ("name: value" lines), then the store reads dates out of it
// with HTTPDate.parse (Last-Modified, RFC 7231) and HTTPDate.parseISO (ListObjectsV2's
// LastModified), and sizes with Int64(...) and contentRangeTotal (Content-Range of a resumed GET).
import FuzzSupport
@testable import LajuBackup

@_cdecl("fuzz_http_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

/// contentRangeTotal is an instance method; building a store does no I/O.
let store: S3Store = {
    let values = [
        "WASABI_ACCESS_KEY": "AK", "WASABI_SECRET_KEY": "fuzz-secret", "WASABI_BUCKET": "laju-backups",
        "WASABI_ENDPOINT": "http://127.0.0.1:1"
    ]
    let settings = Settings(environment: Environment(layers: [(source: "fuzz", values: values)]))
    return try! S3Store(configuration: S3Configuration(settings: settings))
}()

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = fuzzText(data, size)
    let headers = HTTPClient.parseHeaderBlock(text)
    for (name, value) in headers {
        fuzzCheck(!name.contains("\n"), "a header name spans lines")
        fuzzCheck(value == value.trimmingSpaces, "a header value keeps surrounding blanks")
    }
    // What head() and get() read.
    _ = Int64(headers["content-length"] ?? "")
    _ = headers["last-modified"].flatMap(HTTPDate.parse)
    _ = store.contentRangeTotal(headers["content-range"])
    _ = headers["etag"]
    // The date parsers on every value and on the whole text (a date also arrives alone, inside
    // <LastModified> of a list page).
    for value in headers.values {
        _ = HTTPDate.parse(value)
        _ = HTTPDate.parseISO(value)
    }
    _ = HTTPDate.parse(text)
    _ = HTTPDate.parseISO(text)
    return 0
}
