/* Putting a verified database into a live one in place, with the sqlite3_backup API, after a
 * safety copy of the state it replaces. See cs_activate in csupport.h for the contract. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static void db_shape(sqlite3 *db, int64_t *page_size, int *wal) {
    sqlite3_stmt *st = NULL;
    *page_size = 0;
    *wal = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        *page_size = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
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
            if (sqlite3_prepare_v2(safety, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                *pages = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    if (rc != SQLITE_OK) status = cs_fail_db(err, safety ? safety : reader, rc, "cannot write the safety copy of", live_path);
    if (safety) sqlite3_close_v2(safety);
    if (reader) sqlite3_close_v2(reader);
    return status;
}

/* Rollback-journal mode: the backup API opens the destination's transaction with an EXCLUSIVE
 * lock, so no other connection (another of ours included) may read now, and the backup API
 * refuses a source that is in a write transaction. But under that lock, with no journal yet,
 * the file itself is the committed state: its bytes are copied through SQLite's own handle of it
 * (opening the file a second time and closing it would drop this process's POSIX locks). */
static int32_t safety_copy_locked_file(sqlite3 *live, const char *live_path, const char *safety_path,
                                       int64_t page_size, int64_t *pages, cs_error *err) {
    sqlite3_file *fp = NULL;
    if (sqlite3_file_control(live, "main", SQLITE_FCNTL_FILE_POINTER, &fp) != SQLITE_OK || !fp || !fp->pMethods)
        return cs_fail(err, CS_ERR_SQLITE, 0, "cannot reach the file of %s", live_path);
    sqlite3_int64 size = 0;
    int rc = fp->pMethods->xFileSize(fp, &size);
    if (rc != SQLITE_OK) return cs_fail_db(err, NULL, rc, "cannot size", live_path);
    int fd = open(safety_path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return cs_fail_errno(err, errno, "cannot open the safety copy %s", safety_path);
    unsigned char *buf = malloc(CS_CHUNK);
    int32_t status = CS_OK;
    if (!buf) { close(fd); return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory"); }
    for (sqlite3_int64 off = 0; off < size && status == CS_OK;) {
        int n = (int)(size - off < (sqlite3_int64)CS_CHUNK ? size - off : (sqlite3_int64)CS_CHUNK);
        rc = fp->pMethods->xRead(fp, buf, n, off);
        if (rc != SQLITE_OK) {
            status = cs_fail_db(err, NULL, rc, "cannot read", live_path);
        } else if (off == 0 && n >= 20 && (buf[18] != 1 || buf[19] != 1)) {
            /* A WAL-format header: the file alone would miss the newest pages. */
            status = cs_fail(err, CS_ERR_SQLITE, 0, "%s switched to WAL mode during the activation; try again", live_path);
        } else if (cs_write_all(fd, buf, (size_t)n) != 0) {
            status = cs_fail_errno(err, errno, "cannot write the safety copy %s", safety_path);
        }
        off += n;
    }
    free(buf);
    if (status == CS_OK && fsync(fd) != 0) status = cs_fail_errno(err, errno, "cannot sync the safety copy %s", safety_path);
    close(fd);
    if (status == CS_OK) *pages = page_size > 0 ? size / page_size : 0;
    return status;
}

int32_t cs_activate(const char *src_path, const char *live_path, const char *safety_path,
                    int32_t busy_timeout_ms, cs_activate_result *result, cs_error *err) {
    if (!src_path || !live_path || !safety_path) return cs_fail(err, CS_ERR_ARG, 0, "missing path");
    sqlite3 *src = NULL, *live = NULL;
    sqlite3_backup *b = NULL;
    int32_t status = CS_OK;
    const int budget = busy_timeout_ms > 0 ? busy_timeout_ms : 5000;
    const int64_t started = cs_now_ms();

    char *uri = cs_immutable_uri(src_path);
    if (!uri) return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    int rc = sqlite3_open_v2(uri, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK) { status = cs_fail_db(err, src, rc, "cannot open the restored database", src_path); goto done; }
    rc = sqlite3_open_v2(live_path, &live, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) { status = cs_fail_db(err, live, rc, "cannot open the live database", live_path); goto done; }
    sqlite3_extended_result_codes(live, 1);
    sqlite3_busy_timeout(live, budget);

    /* A WAL database keeps its page size: the backup API refuses another one (SQLITE_READONLY). */
    int64_t src_page = 0, live_page = 0;
    int src_wal = 0, live_wal = 0;
    db_shape(src, &src_page, &src_wal);
    db_shape(live, &live_page, &live_wal);
    if (live_wal && src_page != live_page) {
        status = cs_fail(err, CS_ERR_ARG, 0, "the backup has page size %lld but the live database %s is in WAL mode with page size %lld; "
                         "switch it out of WAL (PRAGMA journal_mode=DELETE) while the application is stopped, then activate",
                         (long long)src_page, live_path, (long long)live_page);
        goto done;
    }

    /* 1. The live database's write lock: a step of zero pages opens the write transaction and
     * keeps it open until the copy is done (or the backup is finished). */
    for (;;) {
        b = sqlite3_backup_init(live, "main", src, "main");
        if (!b) { status = cs_fail_db(err, live, sqlite3_errcode(live), "cannot start the copy into", live_path); goto done; }
        rc = sqlite3_backup_step(b, 0);
        if (rc == SQLITE_OK || rc == SQLITE_DONE) break;
        int busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        sqlite3_backup_finish(b);
        b = NULL;
        if (busy && cs_now_ms() - started < budget) { cs_sleep_ms(100); continue; }
        if (busy) status = cs_fail_locked(err, rc, live_path, cs_now_ms() - started);
        else status = cs_fail_db(err, live, rc, "cannot lock", live_path);
        goto done;
    }

    /* 2. With no writer able to commit, a copy of the state being replaced. */
    int64_t safety_pages = 0;
    status = live_wal ? safety_copy_wal(live_path, safety_path, budget, &safety_pages, err)
                      : safety_copy_locked_file(live, live_path, safety_path, live_page, &safety_pages, err);
    if (status != CS_OK) goto done;

    /* 3. The pages, in the same transaction that has held the lock since step 1. */
    rc = sqlite3_backup_step(b, -1);
    int pages = sqlite3_backup_pagecount(b);
    int frc = sqlite3_backup_finish(b);
    b = NULL;
    if (rc != SQLITE_DONE || frc != SQLITE_OK) {
        status = cs_fail_db(err, live, rc == SQLITE_DONE ? frc : rc, "cannot replace the content of", live_path);
        goto done;
    }
    if (result) {
        result->pages = pages;
        result->page_size = src_page;
        result->safety_pages = safety_pages;
    }
done:
    if (b) sqlite3_backup_finish(b);   /* rolls back the live database's write transaction */
    if (live) sqlite3_close_v2(live);
    if (src) sqlite3_close_v2(src);
    return status;
}
