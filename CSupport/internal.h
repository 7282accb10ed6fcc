/* Private helpers shared by the CSupport sources; never seen by Swift. Grouped by the file that
 * defines them. The envelope's own shared declarations are in envelope_internal.h. */
#ifndef CS_INTERNAL_H
#define CS_INTERNAL_H

#include "csupport.h"
#include <stdarg.h>

/* Size of one I/O chunk of the streaming code: large enough for throughput, small enough that
 * memory stays bounded (three such buffers per stream). */
#define CS_CHUNK (1u << 20)

/* error.c: filling cs_error -------------------------------------------------------------------- */

/* Fills `err` (when non-NULL) and returns `status`, so failure paths read `return cs_fail(...)`. */
int32_t cs_fail(cs_error *err, int32_t status, int64_t lib_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same, with the errno text appended and ENOSPC/EDQUOT mapped to CS_ERR_NOSPC. */
int32_t cs_fail_errno(cs_error *err, int saved_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, with OpenSSL's queued error text appended (the queue is cleared). */
int32_t cs_fail_openssl(cs_error *err, const char *what);

/* io.c: plain file I/O ------------------------------------------------------------------------- */

/* write(2) until done, retrying EINTR and short writes. Returns 0 or -1 with errno set. */
int cs_write_all(int fd, const void *buf, size_t len);

/* read(2) retrying EINTR; returns bytes read, 0 at EOF, -1 on error. */
long cs_read_some(int fd, void *buf, size_t len);

/* sqlite.c: the catalog's statement API -------------------------------------------------------- */

/* `file://<path>?immutable=1`, escaped, for reading a private database file with no locks and
 * no side files (malloc'ed; NULL when out of memory). */
char *cs_immutable_uri(const char *path);

/* sqlite_retry.c: SQLite failures and the busy-retry clock ------------------------------------- */

struct sqlite3;

/* The status of a SQLite result code: NOTADB, BUSY/LOCKED and FULL get their own. */
int32_t cs_sqlite_status(int rc);

/* SQLite's failure as a status (cs_sqlite_status); the message names `what` and `path` and carries
 * SQLite's text and extended code. */
int32_t cs_fail_db(cs_error *err, struct sqlite3 *db, int rc, const char *what, const char *path);

/* CS_ERR_BUSY for a database that stayed locked past the caller's budget. */
int32_t cs_fail_locked(cs_error *err, int code, const char *path, int64_t waited_ms);

/* Monotonic milliseconds, for retry budgets (wall time, not attempts). */
int64_t cs_now_ms(void);

void cs_sleep_ms(int ms);

#endif
