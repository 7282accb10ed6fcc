// The S3 XML scanner (XMLScan, Storage/S3/S3Error.swift) and what reads S3's XML bodies through it:
// ListObjectsV2 pages (S3Store.parseListPage, Storage/S3/S3List.swift) and the UploadId of
// CreateMultipartUpload (S3Multipart.swift). The input is a response body as the server sent it.
import FuzzSupport
@testable import LajuBackup

@_cdecl("fuzz_xml_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzOne)
}

/// Every element name the project looks up, plus a few that S3 sends and we ignore.
let names = [
    "ListBucketResult", "Contents", "Key", "Size", "LastModified", "ETag", "IsTruncated",
    "NextContinuationToken", "KeyCount", "InitiateMultipartUploadResult", "UploadId",
    "CompleteMultipartUploadResult", "Error", "Code", "Message", "RequestId"
]

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    let xml = XMLScan(bytes)
    for name in names {
        let raw = xml.elements(name)
        for element in raw { _ = XMLScan.decode(String(element)) }
        // Walking into a block, as parseListPage and S3ErrorResponse do.
        if let block = raw.first {
            _ = XMLScan(text: String(block)).first("Key")
        }
    }
    fuzzCheck(xml.first("Code") == xml.all("Code").first, "first(Code) is not all(Code).first")
    // The list page: a thrown error (a stricter parser) is an accepted outcome; a crash is not.
    if let page = try? S3Store.parseListPage(bytes) {
        if let token = page.nextToken { fuzzCheck(!token.isEmpty, "an empty continuation token would end in a loop") }
        for object in page.objects { _ = object.key.utf8.count }
    }
    // Entity decoding of the whole body, and escape/decode round trips (multipart ETags are
    // escaped into CompleteMultipartUpload; ETag values come from S3's headers).
    let text = xml.text
    _ = XMLScan.decode(text)
    fuzzCheck(XMLScan.decode(XMLScan.escape(text)) == text, "decode(escape(s)) != s")
    return 0
}
