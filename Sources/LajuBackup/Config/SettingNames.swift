/// Every setting laju-backup reads, in the order `config` shows them, with what it is when
/// unset. `SettingNames.all` is the list a test compares with the names the code uses, so a new
/// setting cannot stay out of `config`, the template and laju-backup.env(5).
public struct SettingName: Sendable, Equatable {
    public let name: String
    /// What applies when it is unset, in words (`backups/`, `number of cores`...), or nil.
    public let fallback: String?
    /// Secret values are never printed, only whether they are set.
    public let secret: Bool

    init(_ name: String, _ fallback: String? = nil, secret: Bool = false) {
        self.name = name
        self.fallback = fallback
        self.secret = secret
    }
}

public enum SettingNames {
    public static let all: [SettingName] = [
        SettingName("BACKUP_APP_DIR", "none: relative paths from the working directory, ./.env read last"),
        SettingName("BACKUP_DATABASE", "data/<dev|production|test>.sqlite3 from DB_CONNECTION"),
        SettingName("BACKUP_NAME", "none: the database's own id, recorded in it"),
        SettingName("DB_CONNECTION", "development"),
        SettingName("BACKUP_CATALOG", "the database itself"),
        SettingName("BACKUP_ENCRYPTION_KEY", secret: true),
        SettingName("BACKUP_STORAGE", "s3"),
        SettingName("BACKUP_PREFIX", "backups/"),
        SettingName("BACKUP_RETENTION_DAYS", "30"),
        SettingName("BACKUP_KEEP_LAST"),
        SettingName("BACKUP_KEEP_DAILY"),
        SettingName("BACKUP_KEEP_WEEKLY"),
        SettingName("BACKUP_KEEP_MONTHLY"),
        SettingName("BACKUP_TMPDIR", "TMPDIR, else /var/tmp"),
        SettingName("BACKUP_LOCK_DIR", "/run/laju-backup (root), $XDG_RUNTIME_DIR/laju-backup"),
        SettingName("BACKUP_COMPRESSION", "gzip"),
        SettingName("BACKUP_GZIP_LEVEL", "6"),
        SettingName("BACKUP_ZSTD_LEVEL", "3"),
        SettingName("BACKUP_XZ_LEVEL", "3"),
        SettingName("BACKUP_CHECK", "full"),
        SettingName("BACKUP_INCREMENTAL", "false"),
        SettingName("BACKUP_INCREMENTAL_CHECK", "quick"),
        SettingName("BACKUP_THREADS", "number of cores, at most 8"),
        SettingName("BACKUP_BUSY_TIMEOUT", "30000"),
        SettingName("BACKUP_SSE", "false"),
        SettingName("BACKUP_OBJECT_LOCK_MODE", "none: objects are not locked"),
        SettingName("BACKUP_OBJECT_LOCK_DAYS", "retention days + 7"),
        SettingName("BACKUP_STATE_DIR", "/var/cache/laju-backup (root), $XDG_CACHE_HOME/laju-backup"),
        SettingName("BACKUP_SAFETY_DIR", "/var/lib/laju-backup/safety (root), $XDG_STATE_HOME/laju-backup/safety"),
        SettingName("WASABI_ACCESS_KEY"),
        SettingName("WASABI_SECRET_KEY", secret: true),
        SettingName("WASABI_BUCKET"),
        SettingName("WASABI_REGION", "us-east-1 with an endpoint"),
        SettingName("WASABI_ENDPOINT", "https://s3.<region>.amazonaws.com"),
        SettingName("AWS_ACCESS_KEY_ID"),
        SettingName("AWS_SECRET_ACCESS_KEY", secret: true),
        SettingName("AWS_SESSION_TOKEN", secret: true),
        SettingName("BACKUP_S3_BUCKET"),
        SettingName("BACKUP_READ_ACCESS_KEY", "the main access key"),
        SettingName("BACKUP_READ_SECRET_KEY", "the main secret key", secret: true),
        SettingName("BACKUP_CLEAN_ACCESS_KEY", "the main access key"),
        SettingName("BACKUP_CLEAN_SECRET_KEY", "the main secret key", secret: true),
        SettingName("AWS_REGION"),
        SettingName("AWS_DEFAULT_REGION"),
        SettingName("AWS_ENDPOINT_URL_S3"),
        SettingName("AWS_ENDPOINT_URL"),
        SettingName("BACKUP_S3_ADDRESSING", "path"),
        SettingName("BACKUP_PART_SIZE", "64M"),
        SettingName("BACKUP_UPLOAD_CONCURRENCY", "4"),
        SettingName("BACKUP_S3_RETRIES", "5"),
        SettingName("BACKUP_S3_SIGN_PAYLOAD", "false"),
        SettingName("BACKUP_S3_CONNECT_TIMEOUT", "15"),
        SettingName("BACKUP_S3_STALL_TIMEOUT", "60"),
        SettingName("BACKUP_S3_MIN_RATE", "65536"),
        SettingName("BACKUP_PROFILE", "the database's file name (the cron runner sets the profile's name)"),
        SettingName("BACKUP_PING_URL", "none", secret: true),
        SettingName("BACKUP_PING_URL_CLEAN", "BACKUP_PING_URL", secret: true),
        SettingName("BACKUP_PING_URL_VERIFY", "BACKUP_PING_URL", secret: true),
        SettingName("BACKUP_PING_URL_INCREMENTAL", "none (never BACKUP_PING_URL)", secret: true),
        SettingName("BACKUP_NOTIFY_URL", "none", secret: true),
        SettingName("BACKUP_NOTIFY_ON", "failure"),
        SettingName("BACKUP_NOTIFY_TIMEOUT", "10"),
        SettingName(
            "BACKUP_METRICS_FILE",
            "/var/lib/prometheus/node-exporter/laju-backup-<profile>.prom when that folder exists"),
        SettingName("LAJU_BACKUP_CONFIG", "/etc/laju-backup/laju-backup.env")
    ]

    public static func isSecret(_ name: String) -> Bool { all.first { $0.name == name }?.secret ?? false }
}
