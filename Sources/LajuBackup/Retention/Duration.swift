/// Durations on the command line: `24h`, `90m`, `2d`, `1h30m`, `45s`, or plain seconds.
public enum DurationText {
    /// Seconds in `text`; throws a usage error for anything else. A number without a unit is
    /// refused (but 0): `--max-age 26` meant hours, and was taken for seconds.
    public static func seconds(_ text: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        if !text.isEmpty, text.allSatisfy({ $0 == "0" }) { return 0 }
        if !text.isEmpty, text.allSatisfy(\.isNumber) {
            throw LajuError(
                .usage, "duration \(text) has no unit", hint: "say which: \(text)s, \(text)m, \(text)h or \(text)d")
        }
        var total = 0.0
        var digits = ""
        for c in text {
            if c.isNumber { digits.append(c); continue }
            guard let u = units[c], let n = Double(digits) else {
                throw LajuError(
                    .usage, "duration \(text) is not understood", hint: "use e.g. 24h, 90m, 2d, 1h30m or 45s")
            }
            total += n * u
            digits = ""
        }
        guard digits.isEmpty, !text.isEmpty else {
            throw LajuError(
                .usage, "duration \(text) is not understood", hint: "use e.g. 24h, 90m, 2d, 1h30m or 45s")
        }
        guard total.isFinite, total <= maxSeconds else { throw tooLong(text) }
        return total
    }

    /// 100 years.
    static let maxSeconds = 36_500.0 * 86_400

    static func tooLong(_ text: String) -> LajuError {
        LajuError(.usage, "duration \(text) is longer than 100 years")
    }
}
