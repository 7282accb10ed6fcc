/// Small formatters (String(format:) is not in FoundationEssentials).
public enum Format {
    /// `1.5 GiB`, `312.0 KiB`, `17 B`.
    public static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : "\(decimal(v, 1)) \(units[u])"
    }

    /// A fixed number of decimals.
    public static func decimal(_ v: Double, _ places: Int) -> String {
        guard v.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let r = (abs(v) * scale).rounded() / scale
        var whole = String(Int64(r))
        if v < 0 && r > 0 { whole = "-" + whole }
        guard places > 0 else { return whole }
        let frac = Int64(((r - r.rounded(.down)) * scale).rounded())
        var f = String(frac)
        while f.count < places { f = "0" + f }
        return "\(whole).\(f)"
    }

    public static func seconds(_ s: Double) -> String { "\(decimal(s, s < 10 ? 2 : 1)) s" }

    public static func rate(_ bytes: Int64, _ seconds: Double) -> String {
        seconds > 0 ? "\(Format.bytes(Int64(Double(bytes) / seconds)))/s" : "-"
    }
}

/// Local wall-clock times in the format of Laju keys and file names.
public enum LocalTime {
    /// `YYYY-MM-DDTHH:mm` in the server's local zone (honours `TZ`), as the original's keys.
    public static func minuteStamp(epochMilliseconds ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tm = tm()
        localtime_r(&t, &tm)
        return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2))"
    }

    /// `YYYY-MM-DDTHH:mm:ss±hhmm`, for log lines.
    public static func logStamp(epochSeconds: Double) -> String {
        var t = time_t(epochSeconds)
        var tm = tm()
        localtime_r(&t, &tm)
        let off = Int(tm.tm_gmtoff)
        let sign = off < 0 ? "-" : "+"
        return "\(pad(Int(tm.tm_year) + 1900, 4))-\(pad(Int(tm.tm_mon) + 1, 2))-\(pad(Int(tm.tm_mday), 2))T\(pad(Int(tm.tm_hour), 2)):\(pad(Int(tm.tm_min), 2)):\(pad(Int(tm.tm_sec), 2))\(sign)\(pad(abs(off) / 3600, 2))\(pad(abs(off) % 3600 / 60, 2))"
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
