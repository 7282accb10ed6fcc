/// ListObjectsV2 (`GET /bucket?list-type=2`), one page at a time, following
/// `NextContinuationToken` while `IsTruncated` is true.
extension S3Store {
    struct ListPage {
        var objects: [ObjectInfo]
        var nextToken: String?
    }

    func listPage(prefix: String, token: String?, maxKeys: Int, operation: String) throws -> ListPage {
        var query: [(String, String)] = [("list-type", "2"), ("max-keys", String(maxKeys))]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let token { query.append(("continuation-token", token)) }
        let r = try send(operation: operation, method: "GET", key: nil, query: query)
        return S3Store.parseListPage(r.body)
    }

    static func parseListPage(_ body: [UInt8]) -> ListPage {
        let xml = XMLScan(body)
        var objects: [ObjectInfo] = []
        for entry in xml.elements("Contents") {
            let e = XMLScan(text: String(entry))
            guard let key = e.first("Key") else { continue }
            objects.append(ObjectInfo(key: key, size: Int64(e.first("Size") ?? "") ?? 0,
                                      lastModified: e.first("LastModified").flatMap(HTTPDate.parseISO)))
        }
        // Only the top-level flag counts (Contents never holds one, but be strict anyway).
        let truncated = xml.first("IsTruncated")?.lowercased() == "true"
        let next = xml.first("NextContinuationToken")
        return ListPage(objects: objects, nextToken: truncated && next?.isEmpty == false ? next : nil)
    }
}
