/// The exact DDL knex 3.x emits on SQLite, byte for byte (SQLite keeps CREATE text verbatim in
/// sqlite_master, and knex compares nothing else, so matching it keeps `knex migrate:latest`
/// happy). Source of truth: Tests/LajuBackupTests/Resources/knex/knex-backup-files.sql.
public enum KnexSchema {
    /// The backup_files table as the guide's migration creates it.
    public static let createBackupFiles =
        "create table `backup_files` (`id` varchar(255), `key` varchar(255) not null, `file_name` varchar(255) not null, `file_size` bigint not null, `compression` varchar(255) not null, `storage` varchar(255) not null, `checksum` varchar(255) not null, `uploaded_at` bigint not null, `deleted_at` bigint null, `encryption` varchar(255) not null, `enc_iv` varchar(255) not null, `enc_tag` varchar(255) not null, primary key (`id`))"
    public static let createBackupFilesKeyIndex =
        "create unique index `backup_files_key_unique` on `backup_files` (`key`)"

    /// knex's own bookkeeping tables (lib/migrations/migrate/table-creator.js).
    public static let createMigrations =
        "create table `knex_migrations` (`id` integer not null primary key autoincrement, `name` varchar(255), `batch` integer, `migration_time` datetime)"
    public static let createMigrationsLock =
        "create table `knex_migrations_lock` (`index` integer not null primary key autoincrement, `is_locked` integer)"
    public static let insertLockRow = "insert into `knex_migrations_lock` (`is_locked`) values (0)"
}

extension KnexSchema {
    /// Laju's real knex-era migration (`20251023082000_create_backup_files.ts`, commit e2b1e394
    /// of maulanashalihin/laju) as knex emits it: `char(36)` id, `varchar(500)` key, nullable
    /// columns, defaults and three extra indexes. Never created by us; the schema check accepts
    /// it. Source of truth: Tests/LajuBackupTests/Resources/knex/knex-backup-files-laju-orig.sql.
    public static let lajuOriginal: [String] = [
        "create table `backup_files` (`id` char(36) not null, `key` varchar(500) not null, `file_name` varchar(255) not null, `file_size` bigint null, `compression` varchar(50) default 'gzip', `storage` varchar(50) default 's3', `checksum` varchar(128) null, `uploaded_at` bigint not null, `deleted_at` bigint null, `encryption` varchar(255) null, `enc_iv` varchar(255) null, `enc_tag` varchar(255) null, primary key (`id`))",
        "create unique index `backup_files_key_unique` on `backup_files` (`key`)",
        "create index `backup_files_uploaded_at_index` on `backup_files` (`uploaded_at`)",
        "create index `backup_files_deleted_at_index` on `backup_files` (`deleted_at`)",
        "create index `backup_files_key_index` on `backup_files` (`key`)"
    ]

    /// The guide's variant, the one `migrate` creates.
    public static let guide: [String] = [createBackupFiles, createBackupFilesKeyIndex]

    /// The twelve columns every variant has and every insert fills.
    public static let columns = [
        "id", "key", "file_name", "file_size", "compression", "storage", "checksum",
        "uploaded_at", "deleted_at", "encryption", "enc_iv", "enc_tag"
    ]
}
