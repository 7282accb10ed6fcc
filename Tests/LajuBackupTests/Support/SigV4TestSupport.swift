import Foundation
import XCTest
@testable import LajuBackup

/// Loading and parsing of the SigV4 vectors copied into Resources/sigv4 (see its README.md for origin,
/// licence and known quirks). Nothing here reads /work/shared.
enum SigV4Vectors {
    static let root = TestPaths.resources.appendingPathComponent("sigv4")
    static var classicDir: URL { root.appendingPathComponent("aws-sig-v4-test-suite") }
    static var v4Dir: URL { root.appendingPathComponent("aws-signing-test-suite/v4") }
    static var s3DocsFile: URL { root.appendingPathComponent("s3-docs-examples.json") }

    /// Key pair of both AWS suites (note the `+` in the secret).
    static let suiteCredentials = AWSCredentials(
        accessKeyID: "AKIDEXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    /// The suites' signing time 20150830T123600Z.
    static let suiteDate = date(iso: "2015-08-30T12:36:00Z")

    static func read(_ url: URL) throws -> String {
        try String(contentsOf: url, encoding: .utf8)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` → Date, via timegm (independent of the code under test's gmtime_r path).
    static func date(iso: String) -> Date {
        let d = Array(iso.utf8)
        func num(_ from: Int, _ len: Int) -> Int32 { Int32(String(decoding: d[from..<from + len], as: UTF8.self))! }
        var t = tm()
        t.tm_year = num(0, 4) - 1900; t.tm_mon = num(5, 2) - 1; t.tm_mday = num(8, 2)
        t.tm_hour = num(11, 2); t.tm_min = num(14, 2); t.tm_sec = num(17, 2)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&t)))
    }

    /// A request in the suites' `.req` / `request.txt` layout.
    struct Request {
        var method: String
        var rawPath: String  // as written, not encoded (e.g. `/ሴ`, `/example space/`)
        var query: [(String, String)]  // decoded pairs
        var headers: [(String, String)]  // folded lines joined with one space
        var body: [UInt8]

        /// S3-style canonical URI: encoded once, never normalised.
        var canonicalURI: String { SigV4Encoding.s3Path(rawPath) }

        /// True when RFC 3986 path normalisation (the generic services' rule) would leave the path
        /// unchanged: no `.`/`..` segments and no empty segment except a trailing slash. Only such
        /// cases of a `normalize: true` context apply to S3, which never normalises.
        var pathIsNormalizationInvariant: Bool {
            let segments = rawPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            for (i, s) in segments.enumerated() {
                if s == "." || s == ".." { return false }
                if s.isEmpty && i != segments.count - 1 { return false }
            }
            return true
        }
    }

    static func parseRequest(_ text: String) -> Request {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines[0]
        // "METHOD TARGET HTTP/1.1"; the target may contain spaces (`/example space/`).
        let firstSpace = requestLine.firstIndex(of: " ")!
        let method = String(requestLine[..<firstSpace])
        var target = String(requestLine[requestLine.index(after: firstSpace)...])
        if target.hasSuffix(" HTTP/1.1") { target.removeLast(" HTTP/1.1".count) }

        var rawPath = target
        var query: [(String, String)] = []
        if let q = target.firstIndex(of: "?") {
            rawPath = String(target[..<q])
            query = parseQuery(String(target[target.index(after: q)...]))
        }

        var headers: [(String, String)] = []
        var i = 1
        while i < lines.count, !lines[i].isEmpty {
            let line = lines[i]
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                // Folded continuation line: join with a single space (README: get-header-value-multiline).
                headers[headers.count - 1].1 += " " + line.trimmingCharacters(in: .whitespaces)
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
            i += 1
        }
        let body = i + 1 < lines.count ? lines[(i + 1)...].joined(separator: "\n") : ""
        return Request(method: method, rawPath: rawPath, query: query, headers: headers, body: Array(body.utf8))
    }

    /// `a=1&b&c=%E1%88%B4` → decoded pairs (`b` → `("b", "")`).
    static func parseQuery(_ s: String) -> [(String, String)] {
        if s.isEmpty { return [] }
        return s.split(separator: "&", omittingEmptySubsequences: false).map { part in
            if let eq = part.firstIndex(of: "=") {
                return (
                    SigV4Encoding.percentDecode(String(part[..<eq])),
                    SigV4Encoding.percentDecode(String(part[part.index(after: eq)...]))
                )
            }
            return (SigV4Encoding.percentDecode(String(part)), "")
        }
    }

    /// The value of `Authorization:` in a signed-request file.
    static func authorizationLine(in signedRequest: String) -> String? {
        for line in signedRequest.split(separator: "\n") where line.hasPrefix("Authorization:") {
            return String(line.dropFirst("Authorization:".count))
        }
        return nil
    }

    /// Decoded query pairs of the request line in a `query-signed-request.txt`, sorted for comparison.
    static func signedQueryPairs(in signedRequest: String) -> [String] {
        let line = String(signedRequest.split(separator: "\n")[0])
        let req = parseRequest(line)
        return req.query.map { $0.0 + "=" + $0.1 }.sorted()
    }
}
