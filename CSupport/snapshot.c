/* Consistent online snapshot of a live SQLite database with the sqlite3_backup API.
 *
 * All pages are copied in one sqlite3_backup_step(-1): one read transaction, so a writer in
 * another process cannot make the copy restart (stepping N pages at a time restarts from scratch
 * after every foreign write and may never finish under steady load). In WAL mode writers carry on
 * meanwhile; in rollback-journal mode they wait for the copy, as they would for any reader. */
#include "internal.h"

#include <sqlite3.h>

int32_t cs_snapshot(const char *src_path, const char *dst_path, int32_t busy_timeout_ms,
                    cs_snapshot_result *result, cs_error *err) {
    if (!src_path || !dst_path) return cs_fail(err, CS_ERR_ARG, 0, "missing path");
    sqlite3 *src = NULL, *dst = NULL;
    int32_t status = CS_OK;
    int rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        status = cs_fail_db(err, src, rc, "cannot open database", src_path);
        goto done;
    }
    sqlite3_extended_result_codes(src, 1);
    const int budget = busy_timeout_ms > 0 ? busy_timeout_ms : 5000;
    const int64_t started = cs_now_ms();
    sqlite3_busy_timeout(src, budget);
    /* Touch the schema now: a file that is not a database fails here with SQLITE_NOTADB
     * instead of half-way through the copy. */
    rc = sqlite3_exec(src, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
            status = cs_fail_locked(err, rc, src_path, cs_now_ms() - started);
        else status = cs_fail_db(err, src, rc, "cannot read database", src_path);
        goto done;
    }
    rc = sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        status = cs_fail_db(err, dst, rc, "cannot create snapshot", dst_path);
        goto done;
    }
    sqlite3_extended_result_codes(dst, 1);

    int attempts = 0;
    for (;;) {
        attempts++;
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (!b) {
            status = cs_fail_db(err, dst, sqlite3_errcode(dst), "cannot start snapshot of",
                                src_path);
            goto done;
        }
        rc = sqlite3_backup_step(b, -1);
        int pages = sqlite3_backup_pagecount(b);
        int finish_rc = sqlite3_backup_finish(b);
        if (rc == SQLITE_DONE && finish_rc == SQLITE_OK) {
            if (result) {
                result->pages = pages;
                result->attempts = attempts;
                sqlite3_stmt *st = NULL;
                result->page_size = 0;
                if (sqlite3_prepare_v2(dst, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW)
                    result->page_size = sqlite3_column_int64(st, 0);
                sqlite3_finalize(st);
            }
            break;
        }
        int code = rc == SQLITE_DONE ? finish_rc : rc;
        int busy = (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED;
        if (busy && cs_now_ms() - started < budget) {
            cs_sleep_ms(100);
            continue;
        }
        if (busy) {
            status = cs_fail_locked(err, code, src_path, cs_now_ms() - started);
        } else {
            status = cs_fail_db(err, dst, code, "snapshot failed for", src_path);
        }
        goto done;
    }
done:
    if (dst) sqlite3_close_v2(dst);
    if (src) sqlite3_close_v2(src);
    return status;
}
