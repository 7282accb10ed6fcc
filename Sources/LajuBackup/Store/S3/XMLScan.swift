/// A tiny scanner for the flat XML documents S3 returns (errors, ListObjectsV2, multipart). It
/// finds elements by name and decodes the five entities and numeric references; no namespaces, no
/// DTDs (S3 sends none), so no Foundation XMLParser is needed.
struct XMLScan {
    let text: String

    init(_ bytes: [UInt8]) { text = String(decoding: bytes, as: UTF8.self) }
    init(text: String) { self.text = text }

    /// Inner texts of every `<name>...</name>` (also matching `<name attr="...">`), decoded.
    func all(_ name: String) -> [String] {
        elements(name).map { XMLScan.decode(String($0)) }
    }

    /// The first `<name>` text, decoded.
    func first(_ name: String) -> String? { all(name).first }

    /// Raw inner contents of every `<name>` element (nested markup kept), for walking into blocks.
    func elements(_ name: String) -> [Substring] {
        var out: [Substring] = []
        let open = "<" + name
        let close = "</" + name + ">"
        var rest = text[...]
        while let start = rest.range(ofLiteral: open) {
            let after = rest[start.upperBound...]
            guard let next = after.first else { break }
            if next == "/" && after.dropFirst().first == ">" {  // <Name/>: empty
                out.append(after[after.startIndex..<after.startIndex])
                rest = after.dropFirst(2)
                continue
            }
            guard next == ">" || next == " " else { rest = after; continue }  // <NameOther>
            guard let gt = after.firstIndex(of: ">") else { break }
            let body = after[after.index(after: gt)...]
            guard let end = body.range(ofLiteral: close) else { break }
            out.append(body[body.startIndex..<end.lowerBound])
            rest = body[end.upperBound...]
        }
        return out
    }

    static func decode(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            // The `;` is looked for only among the next 10 characters (no entity is longer):
            // searching the rest of the text for every `&` made a hostile body of ampersands
            // quadratic (20,000 of them took 20 s; found by fuzzing).
            if c == "&", let semi = s[i...].prefix(11).firstIndex(of: ";") {
                let entity = s[s.index(after: i)..<semi]
                var replacement: String?
                switch entity {
                case "amp": replacement = "&"
                case "lt": replacement = "<"
                case "gt": replacement = ">"
                case "quot": replacement = "\""
                case "apos": replacement = "'"
                default:
                    if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16), let u = Unicode.Scalar(v)
                    {
                        replacement = String(Character(u))
                    } else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let u = Unicode.Scalar(v) {
                        replacement = String(Character(u))
                    }
                }
                if let replacement {
                    out += replacement
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(c)
            i = s.index(after: i)
        }
        return out
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension Substring {
    /// First occurrence of a literal (no Foundation `range(of:)`).
    func range(ofLiteral needle: String) -> Range<Substring.Index>? {
        let n = Array(needle.utf8)
        guard let first = n.first else { return nil }
        var i = startIndex
        let u = utf8
        while i < endIndex {
            guard let hit = u[i...].firstIndex(of: first) else { return nil }
            var j = hit, k = 0
            while k < n.count, j < endIndex, u[j] == n[k] { j = u.index(after: j); k += 1 }
            if k == n.count { return hit..<j }
            i = u.index(after: hit)
        }
        return nil
    }
}

extension XMLScan {
    /// How many `<name>` / `<name attr...>` opening tags the text holds (closed or not).
    func count(opening name: String) -> Int {
        var n = 0
        var rest = text[...]
        while let r = rest.range(ofLiteral: "<" + name) {
            let after = rest[r.upperBound...]
            if let c = after.first, c == ">" || c == " " || c == "/" { n += 1 }
            rest = after
        }
        return n
    }
}

extension String {
    /// The text with every `<name>...</name>` element cut out (to read top-level fields only).
    func replacingContents(of name: String) -> String {
        var out = ""
        var rest = self[...]
        while let start = rest.range(ofLiteral: "<" + name) {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].range(ofLiteral: "</" + name + ">") else { return out }
            rest = rest[end.upperBound...]
        }
        return out + rest
    }
}
