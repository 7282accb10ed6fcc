/// RFC 3339 times for `--at` and for output.
public enum PointTime {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func rfc3339(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        func p(_ v: Int32, _ w: Int) -> String { LocalTime.pad(Int(v), w) }
        return
            "\(p(tm.tm_year + 1900, 4))-\(p(tm.tm_mon + 1, 2))-\(p(tm.tm_mday, 2))T\(p(tm.tm_hour, 2)):\(p(tm.tm_min, 2)):\(p(tm.tm_sec, 2)).\(LocalTime.pad(Int(ms % 1000), 3))Z"
    }

    /// Milliseconds of an RFC 3339 date-time (`2026-12-02T10:15:03Z`, `...T17:15:03.5+07:00`);
    /// nil for anything else. Fractions beyond milliseconds are cut (never rounded up past the
    /// time asked for).
    public static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count >= 20 else { return nil }
        func digits(_ r: Range<Int>) -> Int32? {
            guard r.upperBound <= u.count else { return nil }
            var v: Int32 = 0
            for i in r {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(u[i]) else { return nil }
                v = v * 10 + Int32(u[i] - UInt8(ascii: "0"))
            }
            return v
        }
        guard let y = digits(0..<4), u[4] == UInt8(ascii: "-"), let mo = digits(5..<7), u[7] == UInt8(ascii: "-"),
            let d = digits(8..<10), u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: "t"),
            let h = digits(11..<13), u[13] == UInt8(ascii: ":"), let mi = digits(14..<16), u[16] == UInt8(ascii: ":"),
            let s = digits(17..<19)
        else { return nil }
        guard (1970...9999).contains(y), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else {
            return nil
        }
        var i = 19
        var ms: Int64 = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            var scale: Int64 = 100
            while i < u.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(u[i]) {
                if n < 3 { ms += Int64(u[i] - UInt8(ascii: "0")) * scale; scale /= 10 }
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
        }
        guard i < u.count else { return nil }
        var offset: Int64 = 0
        if u[i] == UInt8(ascii: "Z") || u[i] == UInt8(ascii: "z") {
            guard i + 1 == u.count else { return nil }
        } else {
            guard u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-"), i + 6 == u.count,
                u[i + 3] == UInt8(ascii: ":"),
                let oh = digits((i + 1)..<(i + 3)), let om = digits((i + 4)..<(i + 6)), oh < 24, om < 60
            else { return nil }
            offset = Int64(oh) * 3600 + Int64(om) * 60
            if u[i] == UInt8(ascii: "-") { offset = -offset }
        }
        var parts = tm()
        parts.tm_year = y - 1900
        parts.tm_mon = mo - 1
        parts.tm_mday = d
        parts.tm_hour = h
        parts.tm_min = mi
        parts.tm_sec = min(s, 59)
        let t = Int64(timegm(&parts))
        // timegm normalises 31 February into March: refuse a day the month does not have.
        var back = time_t(t)
        var check = tm()
        gmtime_r(&back, &check)
        guard check.tm_mday == d else { return nil }
        return (t - offset) * 1000 + ms
    }
}

/// Local wall-clock times in the format of Laju keys and file names.
public enum LocalTime {
    /// `YYYY-MM-DDTHH:mm` in the server's local zone (honours `TZ`), as the original's keys.
    public static func minuteStamp(epochMilliseconds ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tm = tm()
        localtime_r(&t, &tm)
        return
            "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2))"
    }

    /// `YYYY-MM-DDTHH:mm:ss±hhmm`, for log lines.
    public static func logStamp(epochSeconds: Double) -> String {
        var t = time_t(epochSeconds)
        var tm = tm()
        localtime_r(&t, &tm)
        let off = Int(tm.tm_gmtoff)
        let sign = off < 0 ? "-" : "+"
        return
            "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2))\(sign)\(pad(abs(off) / 3600, 2))\(pad(abs(off) % 3600 / 60, 2))"
    }

    public static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        var s = String(v)
        while s.count < width { s = "0" + s }
        return s
    }
}

/// Monotonic seconds, for step timings.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
