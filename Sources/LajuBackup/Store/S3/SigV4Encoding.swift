/// Percent-encoding rules of AWS Signature Version 4 (RFC 3986 "unreserved" kept, everything else
/// `%XX` with uppercase hex over the UTF-8 bytes). Plain Swift: FoundationEssentials has no
/// `addingPercentEncoding`, and its character sets differ from SigV4's anyway.
public enum SigV4Encoding {
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// RFC 3986 percent-encoding as SigV4 wants: A-Z a-z 0-9 - _ . ~ kept, everything else %XX
    /// uppercase (UTF-8); '/' kept when `encodeSlash` is false. Query names and values use
    /// `encodeSlash: true` (so `+`, `=`, `&`, `/` and space are all encoded; space is `%20`, never `+`).
    public static func uriEncode(_ s: String, encodeSlash: Bool) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            if isUnreserved(b) || (!encodeSlash && b == UInt8(ascii: "/")) {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The S3 canonical URI (and wire path) for `/bucket/key` style or `/key`: each segment encoded,
    /// '/' kept. S3 neither normalises (`//`, `.`, `..` stay as they are: they are legal in keys) nor
    /// double-encodes, so the same string is what goes on the wire and what is signed.
    /// An empty path becomes `/`.
    public static func s3Path(_ rawPath: String) -> String {
        if rawPath.isEmpty { return "/" }
        let encoded = uriEncode(rawPath, encodeSlash: false)
        return encoded.utf8.first == UInt8(ascii: "/") ? encoded : "/" + encoded
    }

    /// Inverse of `uriEncode` for `%XX` escapes (invalid escapes are kept literally; `+` stays `+`,
    /// as in SigV4, not form encoding). Used to turn a query string as written into decoded pairs.
    static func percentDecode(_ s: String) -> String {
        let bytes = Array(s.utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count,
                let hi = hexDigitValue(bytes[i + 1]), let lo = hexDigitValue(bytes[i + 2])
            {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
