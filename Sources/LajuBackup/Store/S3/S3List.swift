/// ListObjectsV2 (`GET /bucket?list-type=2`), one page at a time, following
/// `NextContinuationToken` while `IsTruncated` is true.
///
/// A page is used only when it is complete and well formed: the whole body arrived, the document
/// closes, every `<Contents>` has a key under the requested prefix and a size, `KeyCount` (when
/// sent) matches, and a truncated page names its continuation token. Anything else is an error
/// (exit 5): `clean` must never act on half a listing.
extension S3Store {
    struct ListPage {
        var objects: [ObjectInfo]
        var nextToken: String?
    }

    /// A page of 1000 keys of up to 1024 bytes each is about 1.5 MB; room for that and more.
    static let listBufferCap = 16 << 20

    func listPage(prefix: String, token: String?, maxKeys: Int, operation: String) throws -> ListPage {
        var query: [(String, String)] = [("list-type", "2"), ("max-keys", String(maxKeys))]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let token { query.append(("continuation-token", token)) }
        let r = try send(
            operation: operation, method: "GET", key: nil, query: query, responseBufferCap: S3Store.listBufferCap)
        if r.bodyTruncated {
            throw LajuError(
                .storage,
                "S3 \(Display.safe(operation)): the listing page is larger than \(S3Store.listBufferCap >> 20) MiB; refusing a partial listing",
                hint: "the S3 server is misbehaving; nothing was changed")
        }
        do {
            return try S3Store.parseListPage(r.body, prefix: prefix)
        } catch let e as LajuError {
            throw LajuError(
                .storage, "S3 \(Display.safe(operation)): \(e.message)",
                hint: "the S3 server is misbehaving; nothing was changed")
        }
    }

    static func parseListPage(_ body: [UInt8], prefix: String = "") throws -> ListPage {
        func malformed(_ why: String) -> LajuError { LajuError(.storage, "malformed listing: \(why)") }
        let xml = XMLScan(body)
        guard let root = xml.elements("ListBucketResult").first else {
            throw malformed(xml.text.isEmpty ? "empty answer" : "no complete <ListBucketResult> document")
        }
        let doc = XMLScan(text: String(root))
        let entries = doc.elements("Contents")
        guard entries.count == doc.count(opening: "Contents") else {
            throw malformed("a <Contents> element is not closed")
        }
        var objects: [ObjectInfo] = []
        for entry in entries {
            let e = XMLScan(text: String(entry))
            guard let key = e.first("Key") else { throw malformed("a <Contents> without <Key>") }
            guard key.hasPrefix(prefix) else {
                throw malformed("key \(Display.quoted(key)) is outside the requested prefix \(Display.quoted(prefix))")
            }
            let size = try objectSize(e.first("Size"), what: "listed key \(key)")
            objects.append(
                ObjectInfo(key: key, size: size, lastModified: e.first("LastModified").flatMap(HTTPDate.parseISO)))
        }
        if let keyCount = doc.first("KeyCount") {
            guard Int(keyCount.trimmingSpaces) == objects.count else {
                throw malformed("KeyCount \(Display.quoted(keyCount)) but \(objects.count) <Contents>")
            }
        }
        // Only the top-level flag counts (Contents never holds one, but be strict anyway).
        let outside = doc.text.replacingContents(of: "Contents")
        let flags = XMLScan(text: outside).all("IsTruncated").map { $0.trimmingSpaces.lowercased() }
        guard flags.count == 1, let flag = flags.first, flag == "true" || flag == "false" else {
            throw malformed("no single <IsTruncated>true|false</IsTruncated>")
        }
        guard flag == "true" else { return ListPage(objects: objects, nextToken: nil) }
        guard let next = XMLScan(text: outside).first("NextContinuationToken"), !next.isEmpty else {
            throw malformed("IsTruncated is true but there is no NextContinuationToken")
        }
        return ListPage(objects: objects, nextToken: next)
    }
}
