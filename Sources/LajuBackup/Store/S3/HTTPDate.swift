/// `Last-Modified` (RFC 7231 IMF-fixdate, e.g. `Wed, 12 Oct 2009 17:50:00 GMT`) and ListObjects'
/// ISO 8601 (`2009-10-12T17:50:30.000Z`) to epoch seconds, with timegm (no DateFormatter).
enum HTTPDate {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    static func parse(_ s: String) -> Double? {
        let parts = s.split(separator: " ")
        guard parts.count >= 5, let day = Int32(parts[1]),
            let mon = months.firstIndex(of: parts[2].lowercased()), let year = Int32(parts[3])
        else { return nil }
        let hms = parts[4].split(separator: ":").compactMap { Int32($0) }
        guard hms.count == 3 else { return nil }
        return epoch(year, Int32(mon) + 1, day, hms[0], hms[1], hms[2])
    }

    static func parseISO(_ s: String) -> Double? {
        let u = Array(s.utf8)
        guard u.count >= 19 else { return nil }
        func num(_ a: Int, _ b: Int) -> Int32? { Int32(String(decoding: u[a..<b], as: UTF8.self)) }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13),
            let mi = num(14, 16), let se = num(17, 19)
        else { return nil }
        // `.123Z`: milliseconds, so that objects stored within one second still sort.
        var fraction = 0.0
        if u.count >= 21, u[19] == UInt8(ascii: "."), let ms = num(20, min(23, u.count)), ms >= 0 {
            fraction = Double(ms) / pow(10, Double(min(23, u.count) - 20))
        }
        return epoch(y, mo, d, h, mi, se).map { $0 + fraction }
    }

    /// Nil for a date outside 1970...9999 or a field out of range: dates come from servers, and a
    /// year 2147483647 would overflow every later conversion to milliseconds.
    static func epoch(_ y: Int32, _ mo: Int32, _ d: Int32, _ h: Int32, _ mi: Int32, _ s: Int32) -> Double? {
        guard (1970...9999).contains(y), (1...12).contains(mo), (1...31).contains(d), (0...23).contains(h),
            (0...59).contains(mi), (0...60).contains(s)
        else { return nil }
        var t = tm()
        t.tm_year = y - 1900
        t.tm_mon = mo - 1
        t.tm_mday = d
        t.tm_hour = h
        t.tm_min = mi
        t.tm_sec = s
        return Double(timegm(&t))
    }
}

extension HTTPDate {
    /// `2026-12-02T10:15:03Z`, as Object Lock headers want it.
    static func iso8601(_ seconds: Double) -> String {
        var t = time_t(seconds.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        let p = LocalTime.pad
        return
            "\(p(Int(tm.tm_year) + 1900, 4))-\(p(Int(tm.tm_mon) + 1, 2))-\(p(Int(tm.tm_mday), 2))T\(p(Int(tm.tm_hour), 2)):\(p(Int(tm.tm_min), 2)):\(p(Int(tm.tm_sec), 2))Z"
    }
}
