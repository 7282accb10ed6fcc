/// Arithmetic on sizes that never traps.
extension Int64 {
    /// `self + other`, clamped at `Int64.max`/`.min` instead of trapping: sizes from headers
    /// and metadata are hostile until checked, and a sum must never crash the run.
    public func addingSaturating(_ other: Int64) -> Int64 {
        let (v, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : v
    }

    public func multipliedSaturating(by other: Int64) -> Int64 {
        let (v, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : v
    }
}
