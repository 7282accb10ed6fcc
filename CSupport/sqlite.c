/* A minimal statement API over SQLite for the catalog and the checks. Everything returns a
 * status and fills cs_error with SQLite's extended code and message (GRDB-style). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

struct cs_db {
    sqlite3 *db;
};
struct cs_stmt {
    sqlite3_stmt *st;
    sqlite3 *db;
};

static int32_t fail_rc(cs_error *err, sqlite3 *db, int rc) {
    return cs_fail(err, cs_sqlite_status(rc), rc, "%s",
                   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* immutable=1 needs a URI. "file:" + an absolute path is read as "file://authority/..." when the
 * path starts with "//", so an absolute path always gets an explicit empty authority
 * ("file://" + "/path"); and the characters URIs give a meaning to are escaped. */
char *cs_immutable_uri(const char *path) {
    size_t n = strlen(path);
    char *uri = malloc(n * 3 + 32);
    if (!uri) return NULL;
    char *p = uri + sprintf(uri, path[0] == '/' ? "file://" : "file:");
    for (const char *c = path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#') p += sprintf(p, "%%%02X", (unsigned char)*c);
        else *p++ = *c;
    }
    strcpy(p, "?immutable=1");
    return uri;
}

int32_t cs_db_open(const char *path, int32_t flags, int32_t busy_timeout_ms, cs_db **out,
                   cs_error *err) {
    if (!path || !out) return cs_fail(err, CS_ERR_ARG, 0, "missing argument");
    *out = NULL;
    int f = (flags & CS_OPEN_READWRITE) ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    if (flags & CS_OPEN_CREATE) f |= SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE;
    sqlite3 *db = NULL;
    int rc;
    if (flags & CS_OPEN_IMMUTABLE) {
        char *uri = cs_immutable_uri(path);
        if (!uri) return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
        rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        free(uri);
    } else {
        rc = sqlite3_open_v2(path, &db, f, NULL);
    }
    if (rc != SQLITE_OK) {
        int32_t s = fail_rc(err, db, rc);
        sqlite3_close_v2(db);
        return s;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_timeout_ms > 0 ? busy_timeout_ms : 5000);
    cs_db *h = calloc(1, sizeof *h);
    if (!h) {
        sqlite3_close_v2(db);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    h->db = db;
    *out = h;
    return CS_OK;
}

void cs_db_close(cs_db *db) {
    if (!db) return;
    sqlite3_close_v2(db->db);
    free(db);
}

int32_t cs_db_exec(cs_db *db, const char *sql, cs_error *err) {
    if (!db || !sql) return cs_fail(err, CS_ERR_ARG, 0, "missing argument");
    int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? CS_OK : fail_rc(err, db->db, rc);
}

int64_t cs_db_changes(cs_db *db) { return db ? sqlite3_changes64(db->db) : 0; }

int32_t cs_stmt_prepare(cs_db *db, const char *sql, cs_stmt **out, cs_error *err) {
    if (!db || !sql || !out) return cs_fail(err, CS_ERR_ARG, 0, "missing argument");
    *out = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail_rc(err, db->db, rc);
    cs_stmt *h = calloc(1, sizeof *h);
    if (!h) {
        sqlite3_finalize(st);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    h->st = st;
    h->db = db->db;
    *out = h;
    return CS_OK;
}

int32_t cs_stmt_bind_text(cs_stmt *st, int32_t index, const char *utf8, cs_error *err) {
    int rc = utf8 ? sqlite3_bind_text(st->st, index, utf8, -1, SQLITE_TRANSIENT)
                  : sqlite3_bind_null(st->st, index);
    return rc == SQLITE_OK ? CS_OK : fail_rc(err, st->db, rc);
}

int32_t cs_stmt_bind_int64(cs_stmt *st, int32_t index, int64_t value, cs_error *err) {
    int rc = sqlite3_bind_int64(st->st, index, value);
    return rc == SQLITE_OK ? CS_OK : fail_rc(err, st->db, rc);
}

int32_t cs_stmt_bind_null(cs_stmt *st, int32_t index, cs_error *err) {
    int rc = sqlite3_bind_null(st->st, index);
    return rc == SQLITE_OK ? CS_OK : fail_rc(err, st->db, rc);
}

int32_t cs_stmt_step(cs_stmt *st, cs_error *err) {
    int rc = sqlite3_step(st->st);
    if (rc == SQLITE_ROW) return CS_ROW;
    if (rc == SQLITE_DONE) return CS_DONE;
    return fail_rc(err, st->db, rc);
}

int32_t cs_stmt_reset(cs_stmt *st) {
    return sqlite3_reset(st->st) == SQLITE_OK ? CS_OK : CS_ERR_SQLITE;
}
int32_t cs_stmt_column_count(cs_stmt *st) { return sqlite3_column_count(st->st); }

int32_t cs_stmt_column_type(cs_stmt *st, int32_t index) {
    switch (sqlite3_column_type(st->st, index)) {
    case SQLITE_INTEGER: return CS_TYPE_INTEGER;
    case SQLITE_FLOAT: return CS_TYPE_FLOAT;
    case SQLITE_TEXT: return CS_TYPE_TEXT;
    case SQLITE_BLOB: return CS_TYPE_BLOB;
    default: return CS_TYPE_NULL;
    }
}

const char *cs_stmt_column_name(cs_stmt *st, int32_t index) {
    return sqlite3_column_name(st->st, index);
}
int64_t cs_stmt_column_int64(cs_stmt *st, int32_t index) {
    return sqlite3_column_int64(st->st, index);
}
double cs_stmt_column_double(cs_stmt *st, int32_t index) {
    return sqlite3_column_double(st->st, index);
}
const char *cs_stmt_column_text(cs_stmt *st, int32_t index) {
    return (const char *)sqlite3_column_text(st->st, index);
}

void cs_stmt_finalize(cs_stmt *st) {
    if (!st) return;
    sqlite3_finalize(st->st);
    free(st);
}

const char *cs_sqlite_version(void) { return sqlite3_libversion(); }
