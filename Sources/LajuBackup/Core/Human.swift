/// Small formatters (String(format:) is not in FoundationEssentials).
public enum Human {
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
        seconds > 0 ? "\(Human.bytes(Int64(Double(bytes) / seconds)))/s" : "-"
    }
}
