/* SQLite failures as statuses, and the clock of the busy-retry loops.
 *
 * snapshot.c and activate.c both drive the sqlite3_backup API against a database that other
 * processes are using: both map SQLite's result codes the same way (a locked database is
 * CS_ERR_BUSY, a full disk CS_ERR_NOSPC, a file that is no database CS_ERR_NOTDB), and both retry a
 * busy database within a budget of wall time, because every attempt already spends up to the busy
 * timeout inside SQLite's busy handler before it reports SQLITE_BUSY. sqlite.c maps codes the same
 * way for the catalog. */
#include "internal.h"

#include <sqlite3.h>
#include <time.h>

int32_t cs_sqlite_status(int rc) {
    int primary = rc & 0xff;
    if (primary == SQLITE_NOTADB) return CS_ERR_NOTDB;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return CS_ERR_BUSY;
    if (primary == SQLITE_FULL) return CS_ERR_NOSPC;
    return CS_ERR_SQLITE;
}

int32_t cs_fail_db(cs_error *err, sqlite3 *db, int rc, const char *what, const char *path) {
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return cs_fail(err, cs_sqlite_status(rc), rc, "%s %s: %s (SQLite code %d)", what, path, msg,
                   rc);
}

int32_t cs_fail_locked(cs_error *err, int code, const char *path, int64_t waited_ms) {
    return cs_fail(err, CS_ERR_BUSY, code,
                   "database %s stayed locked for %lld ms; the application holds a write "
                   "lock too long (raise BACKUP_BUSY_TIMEOUT)",
                   path, (long long)waited_ms);
}

int64_t cs_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cs_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
