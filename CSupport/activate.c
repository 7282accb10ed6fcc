/* Putting a verified database into a live one in place, with the sqlite3_backup API, after a
 * safety copy of the state it replaces. See cs_activate in csupport.h for the contract.
 *
 * In place rather than by renaming a file over the live one: the application keeps its open
 * handles, and its readers see the old state or the new one, never a mix, because the pages are
 * replaced in one write transaction. That transaction is opened first (step 1), so that no commit
 * can slip in between the safety copy (step 2) and the replacement (step 3). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

/* One activation: the two connections, the backup that holds the live database's write
 * transaction from step 1 to step 3, and the shape of both databases. */
typedef struct activation {
    const char *src_path, *live_path, *safety_path;
    sqlite3 *src;      /* the verified database, opened immutable */
    sqlite3 *live;     /* the application's database */
    sqlite3_backup *b; /* from step 1: finishing it early rolls the live database back */
    int budget;        /* milliseconds to wait for the write lock */
    int64_t started;   /* cs_now_ms() at the start: the budget is wall time, not attempts */
    int64_t src_page, live_page;
    int src_wal, live_wal;
} activation;

/* Page size and journal mode of an open database. */
static void db_shape(sqlite3 *db, int64_t *page_size, int *wal) {
    sqlite3_stmt *st = NULL;
    *page_size = 0;
    *wal = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        *page_size = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(st, 0);
        *wal = m && sqlite3_stricmp((const char *)m, "wal") == 0;
    }
    sqlite3_finalize(st);
}

/* WAL mode: the write lock leaves readers free, and a second connection sees the newest commit
 * (nobody can commit after it), so the backup API copies it. */
static int32_t safety_copy_wal(const char *live_path, const char *safety_path, int budget,
                               int64_t *pages, cs_error *err) {
    sqlite3 *reader = NULL, *safety = NULL;
    int32_t status = CS_OK;
    int rc = sqlite3_open_v2(live_path, &reader, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(reader, budget);
        rc = sqlite3_open_v2(safety_path, &safety, SQLITE_OPEN_READWRITE, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_backup *sb = sqlite3_backup_init(safety, "main", reader, "main");
        rc = sb ? sqlite3_backup_step(sb, -1) : sqlite3_errcode(safety);
        int frc = sb ? sqlite3_backup_finish(sb) : SQLITE_OK;
        if (rc == SQLITE_DONE) rc = frc;
        if (rc == SQLITE_OK) {
            sqlite3_stmt *st = NULL;
            if (sqlite3_prepare_v2(safety, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                *pages = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    if (rc != SQLITE_OK)
        status = cs_fail_db(err, safety ? safety : reader, rc, "cannot write the safety copy of",
                            live_path);
    if (safety) sqlite3_close_v2(safety);
    if (reader) sqlite3_close_v2(reader);
    return status;
}

/* Rollback-journal mode: the backup API opens the destination's transaction with an EXCLUSIVE
 * lock, so no other connection (another of ours included) may read now, and the backup API
 * refuses a source that is in a write transaction. But under that lock, with no journal yet,
 * the file itself is the committed state: its bytes are copied through SQLite's own handle of it
 * (opening the file a second time and closing it would drop this process's POSIX locks). */
static int32_t safety_copy_locked_file(sqlite3 *live, const char *live_path,
                                       const char *safety_path, int64_t page_size, int64_t *pages,
                                       cs_error *err) {
    sqlite3_file *fp = NULL;
    if (sqlite3_file_control(live, "main", SQLITE_FCNTL_FILE_POINTER, &fp) != SQLITE_OK || !fp ||
        !fp->pMethods)
        return cs_fail(err, CS_ERR_SQLITE, 0, "cannot reach the file of %s", live_path);
    sqlite3_int64 size = 0;
    int rc = fp->pMethods->xFileSize(fp, &size);
    if (rc != SQLITE_OK) return cs_fail_db(err, NULL, rc, "cannot size", live_path);
    int fd = open(safety_path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return cs_fail_errno(err, errno, "cannot open the safety copy %s", safety_path);
    unsigned char *buf = malloc(CS_CHUNK);
    int32_t status = CS_OK;
    if (!buf) {
        close(fd);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    for (sqlite3_int64 off = 0; off < size && status == CS_OK;) {
        int n = (int)(size - off < (sqlite3_int64)CS_CHUNK ? size - off : (sqlite3_int64)CS_CHUNK);
        rc = fp->pMethods->xRead(fp, buf, n, off);
        if (rc != SQLITE_OK) {
            status = cs_fail_db(err, NULL, rc, "cannot read", live_path);
        } else if (off == 0 && n >= 20 && (buf[18] != 1 || buf[19] != 1)) {
            /* A WAL-format header: the file alone would miss the newest pages. */
            status = cs_fail(err, CS_ERR_SQLITE, 0,
                             "%s switched to WAL mode during the activation; try again", live_path);
        } else if (cs_write_all(fd, buf, (size_t)n) != 0) {
            status = cs_fail_errno(err, errno, "cannot write the safety copy %s", safety_path);
        }
        off += n;
    }
    free(buf);
    if (status == CS_OK && fsync(fd) != 0)
        status = cs_fail_errno(err, errno, "cannot sync the safety copy %s", safety_path);
    close(fd);
    if (status == CS_OK) *pages = page_size > 0 ? size / page_size : 0;
    return status;
}

static int32_t open_databases(activation *a, cs_error *err) {
    char *uri = cs_immutable_uri(a->src_path);
    if (!uri) return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    int rc = sqlite3_open_v2(uri, &a->src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK)
        return cs_fail_db(err, a->src, rc, "cannot open the restored database", a->src_path);
    rc = sqlite3_open_v2(a->live_path, &a->live, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK)
        return cs_fail_db(err, a->live, rc, "cannot open the live database", a->live_path);
    sqlite3_extended_result_codes(a->live, 1);
    sqlite3_busy_timeout(a->live, a->budget);
    return CS_OK;
}

/* A WAL database keeps its page size: the backup API refuses another one (SQLITE_READONLY). */
static int32_t check_shapes(activation *a, cs_error *err) {
    db_shape(a->src, &a->src_page, &a->src_wal);
    db_shape(a->live, &a->live_page, &a->live_wal);
    if (a->live_wal && a->src_page != a->live_page)
        return cs_fail(err, CS_ERR_ARG, 0,
                       "the backup has page size %lld but the live database %s is in WAL mode with "
                       "page size %lld; switch it out of WAL (PRAGMA journal_mode=DELETE) while "
                       "the application is stopped, then activate",
                       (long long)a->src_page, a->live_path, (long long)a->live_page);
    return CS_OK;
}

/* 1. The live database's write lock: a step of zero pages opens the write transaction and keeps
 * it open until the copy is done (or the backup is finished). Retried while the database is busy,
 * within the budget. */
static int32_t lock_live(activation *a, cs_error *err) {
    for (;;) {
        a->b = sqlite3_backup_init(a->live, "main", a->src, "main");
        if (!a->b)
            return cs_fail_db(err, a->live, sqlite3_errcode(a->live), "cannot start the copy into",
                              a->live_path);
        int rc = sqlite3_backup_step(a->b, 0);
        if (rc == SQLITE_OK || rc == SQLITE_DONE) return CS_OK;
        int busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        sqlite3_backup_finish(a->b);
        a->b = NULL;
        if (busy && cs_now_ms() - a->started < a->budget) {
            cs_sleep_ms(100);
            continue;
        }
        if (busy) return cs_fail_locked(err, rc, a->live_path, cs_now_ms() - a->started);
        return cs_fail_db(err, a->live, rc, "cannot lock", a->live_path);
    }
}

/* 2. With no writer able to commit, a copy of the state being replaced. */
static int32_t safety_copy(activation *a, int64_t *safety_pages, cs_error *err) {
    if (a->live_wal)
        return safety_copy_wal(a->live_path, a->safety_path, a->budget, safety_pages, err);
    return safety_copy_locked_file(a->live, a->live_path, a->safety_path, a->live_page,
                                   safety_pages, err);
}

/* 3. The pages, in the same transaction that has held the lock since step 1. */
static int32_t replace_pages(activation *a, int *pages, cs_error *err) {
    int rc = sqlite3_backup_step(a->b, -1);
    *pages = sqlite3_backup_pagecount(a->b);
    int frc = sqlite3_backup_finish(a->b);
    a->b = NULL;
    if (rc != SQLITE_DONE || frc != SQLITE_OK)
        return cs_fail_db(err, a->live, rc == SQLITE_DONE ? frc : rc,
                          "cannot replace the content of", a->live_path);
    return CS_OK;
}

int32_t cs_activate(const char *src_path, const char *live_path, const char *safety_path,
                    int32_t busy_timeout_ms, cs_activate_result *result, cs_error *err) {
    if (!src_path || !live_path || !safety_path) return cs_fail(err, CS_ERR_ARG, 0, "missing path");
    activation a = {.src_path = src_path,
                    .live_path = live_path,
                    .safety_path = safety_path,
                    .budget = busy_timeout_ms > 0 ? busy_timeout_ms : 5000,
                    .started = cs_now_ms()};
    int64_t safety_pages = 0;
    int pages = 0;
    int32_t status = open_databases(&a, err);
    if (status == CS_OK) status = check_shapes(&a, err);
    if (status == CS_OK) status = lock_live(&a, err);
    if (status == CS_OK) status = safety_copy(&a, &safety_pages, err);
    if (status == CS_OK) status = replace_pages(&a, &pages, err);
    if (status == CS_OK && result) {
        result->pages = pages;
        result->page_size = a.src_page;
        result->safety_pages = safety_pages;
    }
    if (a.b) sqlite3_backup_finish(a.b); /* rolls back the live database's write transaction */
    if (a.live) sqlite3_close_v2(a.live);
    if (a.src) sqlite3_close_v2(a.src);
    return status;
}
