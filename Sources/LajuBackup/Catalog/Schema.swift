/// The exact DDL knex 3.x emits on SQLite, byte for byte (SQLite keeps CREATE text verbatim in
/// sqlite_master, and knex compares nothing else, so matching it keeps `knex migrate:latest`
/// happy). Source of truth: Tests/LajuBackupTests/Resources/knex/knex-backup-files.sql.
public enum KnexSchema {
    /// The backup_files table as the guide's migration creates it.
    public static let createBackupFiles = "create table `backup_files` (`id` varchar(255), `key` varchar(255) not null, `file_name` varchar(255) not null, `file_size` bigint not null, `compression` varchar(255) not null, `storage` varchar(255) not null, `checksum` varchar(255) not null, `uploaded_at` bigint not null, `deleted_at` bigint null, `encryption` varchar(255) not null, `enc_iv` varchar(255) not null, `enc_tag` varchar(255) not null, primary key (`id`))"
    public static let createBackupFilesKeyIndex = "create unique index `backup_files_key_unique` on `backup_files` (`key`)"

    /// knex's own bookkeeping tables (lib/migrations/migrate/table-creator.js).
    public static let createMigrations = "create table `knex_migrations` (`id` integer not null primary key autoincrement, `name` varchar(255), `batch` integer, `migration_time` datetime)"
    public static let createMigrationsLock = "create table `knex_migrations_lock` (`index` integer not null primary key autoincrement, `is_locked` integer)"
    public static let insertLockRow = "insert into `knex_migrations_lock` (`is_locked`) values (0)"
}
