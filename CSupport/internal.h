/* Private helpers shared by the CSupport sources; never seen by Swift. */
#ifndef CS_INTERNAL_H
#define CS_INTERNAL_H

#include "csupport.h"
#include <stdarg.h>

/* Fills `err` (when non-NULL) and returns `status`, so failure paths read `return cs_fail(...)`. */
int32_t cs_fail(cs_error *err, int32_t status, int64_t lib_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Same, with the errno text appended and ENOSPC/EDQUOT mapped to CS_ERR_NOSPC. */
int32_t cs_fail_errno(cs_error *err, int saved_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, with OpenSSL's queued error text appended (the queue is cleared). */
int32_t cs_fail_openssl(cs_error *err, const char *what);

/* write(2) until done, retrying EINTR and short writes. Returns 0 or -1 with errno set. */
int cs_write_all(int fd, const void *buf, size_t len);

/* read(2) retrying EINTR; returns bytes read, 0 at EOF, -1 on error. */
long cs_read_some(int fd, void *buf, size_t len);

/* Size of one I/O chunk of the streaming code: large enough for throughput, small enough that
 * memory stays bounded (three such buffers per stream). */
#define CS_CHUNK (1u << 20)

#endif
