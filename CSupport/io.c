/* Plain file I/O: the read and write loops the streaming code is built on (EINTR and short
 * writes handled once, here), and file copies that a backup tool can trust: exclusive create,
 * fsync before success, and no partial file left behind on failure. Lives in C because
 * copy_file_range(2) and the fsync of a directory have no Foundation equivalent. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int cs_write_all(int fd, const void *buf, size_t len) {
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long cs_read_some(int fd, void *buf, size_t len) {
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        return (long)n;
    }
}

int32_t cs_file_copy(const char *src, const char *dst, cs_progress_fn progress, void *ctx,
                     cs_error *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return cs_fail_errno(err, errno, "cannot open %s", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return cs_fail_errno(err, e, "cannot create %s", dst);
    }
    struct stat st;
    int64_t total = fstat(in, &st) == 0 ? (int64_t)st.st_size : -1, done = 0;
    int32_t status = CS_OK;
    unsigned char *buf = NULL;
    for (;;) {
        ssize_t n = -1;
        if (!buf) {
            n = copy_file_range(in, NULL, out, NULL, CS_CHUNK * 8, 0);
            if (n < 0 &&
                (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
                buf = malloc(CS_CHUNK); /* fall back to plain read/write */
                if (!buf) {
                    status = cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
                    break;
                }
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                status = cs_fail_errno(err, errno, "copying to %s", dst);
                break;
            }
        } else {
            n = cs_read_some(in, buf, CS_CHUNK);
            if (n < 0) {
                status = cs_fail_errno(err, errno, "reading %s", src);
                break;
            }
            if (n > 0 && cs_write_all(out, buf, (size_t)n) != 0) {
                status = cs_fail_errno(err, errno, "writing %s", dst);
                break;
            }
        }
        if (n == 0) break;
        done += n;
        if (progress && progress(ctx, done, total) != 0) {
            status = cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled");
            break;
        }
    }
    free(buf);
    if (status == CS_OK && fsync(out) != 0) status = cs_fail_errno(err, errno, "flushing %s", dst);
    if (close(out) != 0 && status == CS_OK) status = cs_fail_errno(err, errno, "closing %s", dst);
    close(in);
    if (status != CS_OK) unlink(dst);
    return status;
}

int32_t cs_fsync_path(const char *path, cs_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cs_fail_errno(err, errno, "cannot open %s", path);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL) return cs_fail_errno(err, e, "cannot flush %s", path);
    return CS_OK;
}
