/// Which backups `clean` keeps. Pure values and functions: rows and a clock in, a plan out.
///
/// Two modes:
/// - days (the original's): remove rows with `uploaded_at < now - days * 86_400_000`;
/// - GFS, when any `keep*` is set (as restic's `forget`): keep the newest `keepLast` backups, the
///   newest backup of each of the last `keepDaily` days, `keepWeekly` ISO weeks and
///   `keepMonthly` months that have backups, in local time; plus, if `keepWithinDays` is set,
///   everything younger than that. A backup kept by any rule survives.
/// In both modes the newest backup, and the keys in `protect` (the newest verified one), are kept.
public struct RetentionPolicy: Sendable, Equatable, Codable {
    public var retentionDays: Int
    public var keepWithinDays: Int?
    public var keepLast: Int?
    public var keepDaily: Int?
    public var keepWeekly: Int?
    public var keepMonthly: Int?

    public init(
        retentionDays: Int = 30, keepWithinDays: Int? = nil, keepLast: Int? = nil, keepDaily: Int? = nil,
        keepWeekly: Int? = nil, keepMonthly: Int? = nil
    ) {
        self.retentionDays = retentionDays
        self.keepWithinDays = keepWithinDays
        self.keepLast = keepLast
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
    }

    /// A policy from the command line's options: with any keep rule, `retentionDays` (if given)
    /// also keeps everything younger than that; without one it is the days rule, defaulting to
    /// `fallbackDays` (BACKUP_RETENTION_DAYS).
    public init(
        retentionDays: Int?, keepLast: Int?, keepDaily: Int?, keepWeekly: Int?, keepMonthly: Int?, fallbackDays: Int
    ) {
        self.init(keepLast: keepLast, keepDaily: keepDaily, keepWeekly: keepWeekly, keepMonthly: keepMonthly)
        if isGFS {
            keepWithinDays = retentionDays
        } else {
            self.retentionDays = retentionDays ?? fallbackDays
        }
    }

    public var isGFS: Bool { keepLast != nil || keepDaily != nil || keepWeekly != nil || keepMonthly != nil }

    /// `keep-last 7, keep-daily 7` or `retention 30 days`.
    public var summary: String {
        guard isGFS else { return "older than \(retentionDays) days" }
        var parts: [String] = []
        if let n = keepLast { parts.append("keep-last \(n)") }
        if let n = keepDaily { parts.append("keep-daily \(n)") }
        if let n = keepWeekly { parts.append("keep-weekly \(n)") }
        if let n = keepMonthly { parts.append("keep-monthly \(n)") }
        if let n = keepWithinDays { parts.append("keep-within \(n) days") }
        return parts.joined(separator: ", ")
    }
}

/// The calendar periods a backup falls in, as comparable labels.
public struct Periods: Sendable, Equatable {
    public var day: String  // 2026-11-27
    public var week: String  // 2026-W48 (ISO 8601 week-based year and week)
    public var month: String  // 2026-11

    /// In the server's local time zone (honours `TZ`), as restic does.
    public static func local(_ ms: Int64) -> Periods { make(ms, utc: false) }
    /// In UTC (for tests that must not depend on the machine's zone).
    public static func utc(_ ms: Int64) -> Periods { make(ms, utc: true) }

    static func make(_ ms: Int64, utc: Bool) -> Periods {
        // Floor division: a time before 1970 still lands in the right second.
        var t = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        var tm = tm()
        if utc { gmtime_r(&t, &tm) } else { localtime_r(&t, &tm) }
        func f(_ format: String) -> String {
            var buf = [CChar](repeating: 0, count: 32)
            let n = strftime(&buf, buf.count, format, &tm)
            return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return Periods(day: f("%Y-%m-%d"), week: f("%G-W%V"), month: f("%Y-%m"))
    }
}

/// One backup's fate and why.
public struct RetentionDecision: Sendable, Equatable, Codable {
    public var key: String
    public var uploadedAt: Int64
    public var fileSize: Int64
    public var keep: Bool
    /// Why it is kept (`newest`, `last 3`, `daily 2026-11-27`...) or removed (`older than 30 days`).
    public var reasons: [String]
}

public struct RetentionPlan: Sendable, Equatable, Codable {
    /// Newest first.
    public var decisions: [RetentionDecision]
    public var keep: [RetentionDecision] { decisions.filter(\.keep) }
    public var remove: [RetentionDecision] { decisions.filter { !$0.keep } }
}

public enum Retention {
    public static let dayMilliseconds: Int64 = 86_400_000

    /// Decides every active row (`deleted_at IS NULL`; others are ignored) under `policy` at `now`.
    public static func plan(
        _ rows: [BackupRecord], policy: RetentionPolicy, now: Int64, protect: Set<String> = [],
        periods: (Int64) -> Periods = Periods.local
    ) -> RetentionPlan {
        let active = rows.filter { $0.deletedAt == nil }
            .sorted { ($0.uploadedAt, $0.key) > ($1.uploadedAt, $1.key) }
        var reasons = Array(repeating: [String](), count: active.count)
        if !active.isEmpty { reasons[0].append("newest") }
        for (i, r) in active.enumerated() where protect.contains(r.key) && i != 0 {
            reasons[i].append("newest verified")
        }
        if policy.isGFS {
            if let n = policy.keepLast {
                for i in active.indices.prefix(n) { reasons[i].append("last \(n)") }
            }
            let labels = active.map { periods($0.uploadedAt) }
            // Newest first, so the first backup seen in each period is that period's newest.
            func bucket(_ n: Int?, _ name: String, _ label: (Periods) -> String) {
                guard let n, n > 0 else { return }
                var seen = Set<String>()
                for i in active.indices {
                    let l = label(labels[i])
                    if seen.contains(l) { continue }
                    if seen.count == n { break }
                    seen.insert(l)
                    reasons[i].append("\(name) \(l)")
                }
            }
            bucket(policy.keepDaily, "daily", \.day)
            bucket(policy.keepWeekly, "weekly", \.week)
            bucket(policy.keepMonthly, "monthly", \.month)
            if let d = policy.keepWithinDays {
                let cutoff = now - Int64(d) * dayMilliseconds
                for (i, r) in active.enumerated() where r.uploadedAt >= cutoff { reasons[i].append("within \(d) days") }
            }
        } else {
            // The original's rule, exactly: uploaded_at < now - days*86400000 goes.
            let cutoff = now - Int64(policy.retentionDays) * dayMilliseconds
            for (i, r) in active.enumerated() where r.uploadedAt >= cutoff {
                reasons[i].append("within \(policy.retentionDays) days")
            }
        }
        let decisions = active.enumerated().map { i, r in
            RetentionDecision(
                key: r.key, uploadedAt: r.uploadedAt, fileSize: r.fileSize, keep: !reasons[i].isEmpty,
                reasons: reasons[i].isEmpty
                    ? [policy.isGFS ? "matched no keep rule" : "older than \(policy.retentionDays) days"] : reasons[i])
        }
        return RetentionPlan(decisions: decisions)
    }
}

extension Settings {
    /// The retention policy of the settings file (what the cron job's `clean` applies): keep
    /// rules from `BACKUP_KEEP_LAST`/`_DAILY`/`_WEEKLY`/`_MONTHLY` when any is set (then
    /// `BACKUP_RETENTION_DAYS`, if set, also keeps everything younger than that), else the days
    /// rule with `BACKUP_RETENTION_DAYS` (default 30).
    public func retentionPolicy() throws -> RetentionPolicy {
        func count(_ name: String) throws -> Int? {
            environment[name] == nil ? nil : try integer(name, default: 0, range: 1...Settings.maxKeepCount)
        }
        let days =
            environment["BACKUP_RETENTION_DAYS"] == nil
            ? nil
            : try integer("BACKUP_RETENTION_DAYS", default: 30, range: 1...Settings.maxRetentionDays)
        return RetentionPolicy(
            retentionDays: days, keepLast: try count("BACKUP_KEEP_LAST"), keepDaily: try count("BACKUP_KEEP_DAILY"),
            keepWeekly: try count("BACKUP_KEEP_WEEKLY"), keepMonthly: try count("BACKUP_KEEP_MONTHLY"),
            fallbackDays: 30)
    }
}
