/* The Laju envelope, streamed: file -> gzip (zlib) -> AES-256-GCM -> file, and back.
 *
 * Memory is three CS_CHUNK buffers per stream whatever the file size. The MD5 of the object bytes
 * (the ciphertext) is computed in the same pass, because the format stores it as `checksum` and S3
 * wants it as Content-MD5 before the upload starts. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zlib.h>

typedef struct stream {
    int in_fd;
    int out_fd;
    const char *out_path;
    unsigned char *a, *b, *c;   /* the three chunk buffers */
    EVP_CIPHER_CTX *cipher;
    EVP_MD_CTX *md5;
    z_stream z;
    int z_ready;
} stream;

static int32_t stream_begin(stream *s, const char *in_path, const char *out_path,
                            const void *key32, const void *iv12, int encrypt, cs_error *err) {
    memset(s, 0, sizeof *s);
    s->in_fd = s->out_fd = -1;
    s->out_path = out_path;
    if (!in_path || !out_path || !key32 || !iv12)
        return cs_fail(err, CS_ERR_ARG, 0, "missing argument");
    s->in_fd = open(in_path, O_RDONLY | O_CLOEXEC);
    if (s->in_fd < 0) return cs_fail_errno(err, errno, "cannot open %s", in_path);
    posix_fadvise(s->in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s->out_fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (s->out_fd < 0) return cs_fail_errno(err, errno, "cannot create %s", out_path);
    s->a = malloc(CS_CHUNK);
    s->b = malloc(CS_CHUNK);
    s->c = malloc(CS_CHUNK + 32);
    s->cipher = EVP_CIPHER_CTX_new();
    s->md5 = EVP_MD_CTX_new();
    if (!s->a || !s->b || !s->c || !s->cipher || !s->md5)
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    if (EVP_DigestInit_ex(s->md5, EVP_md5(), NULL) != 1) return cs_fail_openssl(err, "MD5 init");
    if (EVP_CipherInit_ex(s->cipher, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(s->cipher, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
        EVP_CipherInit_ex(s->cipher, NULL, NULL, key32, iv12, encrypt) != 1)
        return cs_fail_openssl(err, "AES-256-GCM init");
    return CS_OK;
}

/* Releases everything; on failure also removes the output so that no partial (and, when
 * opening, no unauthenticated plaintext) file survives. */
static int32_t stream_end(stream *s, int32_t status, cs_error *err) {
    if (s->z_ready) {
        /* deflateEnd and inflateEnd free the same state; the caller tells which via z_ready. */
        if (s->z_ready == 1) deflateEnd(&s->z);
        else inflateEnd(&s->z);
    }
    if (s->out_fd >= 0) {
        if (status == CS_OK && close(s->out_fd) != 0)
            status = cs_fail_errno(err, errno, "closing %s", s->out_path);
        else if (status != CS_OK)
            close(s->out_fd);
        if (status != CS_OK) unlink(s->out_path);
    }
    if (s->in_fd >= 0) close(s->in_fd);
    EVP_CIPHER_CTX_free(s->cipher);
    EVP_MD_CTX_free(s->md5);
    free(s->a);
    free(s->b);
    free(s->c);
    return status;
}

static int64_t file_size(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Encrypts `len` bytes of gzip output, hashes the ciphertext and writes it. */
static int32_t seal_emit(stream *s, const unsigned char *gz, size_t len, int64_t *written, cs_error *err) {
    int n = 0;
    if (len == 0) return CS_OK;
    if (EVP_EncryptUpdate(s->cipher, s->c, &n, gz, (int)len) != 1)
        return cs_fail_openssl(err, "AES-256-GCM encrypt");
    EVP_DigestUpdate(s->md5, s->c, (size_t)n);
    if (cs_write_all(s->out_fd, s->c, (size_t)n) != 0)
        return cs_fail_errno(err, errno, "writing %s", s->out_path);
    *written += n;
    return CS_OK;
}

int32_t cs_seal_file(const char *in_path, const char *out_path,
                     const void *key32, const void *iv12, int32_t level,
                     cs_progress_fn progress, void *ctx,
                     cs_seal_result *result, cs_error *err) {
    stream s;
    int32_t status = stream_begin(&s, in_path, out_path, key32, iv12, 1, err);
    if (status != CS_OK) return stream_end(&s, status, err);
    if (level < -1 || level > 9) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "compression level must be 0..9"), err);
    /* windowBits 15 + 16: a gzip wrapper, as Node's zlib.createGzip() writes. */
    if (deflateInit2(&s.z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return stream_end(&s, cs_fail(err, CS_ERR_ZLIB, 0, "deflateInit2 failed"), err);
    s.z_ready = 1;

    int64_t total = file_size(s.in_fd), done = 0, written = 0;
    int flush = Z_NO_FLUSH;
    while (flush != Z_FINISH) {
        long n = cs_read_some(s.in_fd, s.a, CS_CHUNK);
        if (n < 0) return stream_end(&s, cs_fail_errno(err, errno, "reading %s", in_path), err);
        if (n == 0) flush = Z_FINISH;
        done += n;
        s.z.next_in = s.a;
        s.z.avail_in = (uInt)n;
        int zr;
        do {
            s.z.next_out = s.b;
            s.z.avail_out = CS_CHUNK;
            zr = deflate(&s.z, flush);
            if (zr == Z_STREAM_ERROR)
                return stream_end(&s, cs_fail(err, CS_ERR_ZLIB, zr, "deflate failed"), err);
            status = seal_emit(&s, s.b, CS_CHUNK - s.z.avail_out, &written, err);
            if (status != CS_OK) return stream_end(&s, status, err);
        } while (s.z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
        if (progress && progress(ctx, done, total) != 0)
            return stream_end(&s, cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled"), err);
    }
    int n = 0;
    if (EVP_EncryptFinal_ex(s.cipher, s.c, &n) != 1)
        return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM final"), err);
    /* GCM is a stream mode: Final emits nothing, and the format has no room for stray bytes. */
    if (n != 0) return stream_end(&s, cs_fail(err, CS_ERR_CRYPTO, n, "unexpected GCM trailer"), err);
    if (result) {
        memset(result, 0, sizeof *result);
        if (EVP_CIPHER_CTX_ctrl(s.cipher, EVP_CTRL_GCM_GET_TAG, 16, result->tag) != 1)
            return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM get tag"), err);
        unsigned int mdlen = 16;
        EVP_DigestFinal_ex(s.md5, result->md5, &mdlen);
        result->plain_bytes = done;
        result->object_bytes = written;
    }
    if (fsync(s.out_fd) != 0) return stream_end(&s, cs_fail_errno(err, errno, "flushing %s", out_path), err);
    return stream_end(&s, CS_OK, err);
}

int32_t cs_open_file(const char *in_path, const char *out_path,
                     const void *key32, const void *iv12, const void *tag16,
                     cs_progress_fn progress, void *ctx,
                     cs_open_result *result, cs_error *err) {
    stream s;
    int32_t status = stream_begin(&s, in_path, out_path, key32, iv12, 0, err);
    if (status != CS_OK) return stream_end(&s, status, err);
    if (!tag16) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "missing tag"), err);
    if (inflateInit2(&s.z, 15 + 16) != Z_OK)
        return stream_end(&s, cs_fail(err, CS_ERR_ZLIB, 0, "inflateInit2 failed"), err);
    s.z_ready = 2;

    int64_t total = file_size(s.in_fd), done = 0, plain = 0;
    int zr = Z_OK;
    int gzip_broken = 0;      /* keep decrypting to tell a wrong key from a broken gzip stream */
    char gzip_msg[128] = "";
    for (;;) {
        long n = cs_read_some(s.in_fd, s.a, CS_CHUNK);
        if (n < 0) return stream_end(&s, cs_fail_errno(err, errno, "reading %s", in_path), err);
        if (n == 0) break;
        done += n;
        EVP_DigestUpdate(s.md5, s.a, (size_t)n);
        int m = 0;
        if (EVP_DecryptUpdate(s.cipher, s.b, &m, s.a, (int)n) != 1)
            return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM decrypt"), err);
        if (!gzip_broken) {
            s.z.next_in = s.b;
            s.z.avail_in = (uInt)m;
            while (s.z.avail_in > 0 && !gzip_broken) {
                if (zr == Z_STREAM_END) {
                    /* A concatenated gzip member follows: gunzip(1) and Node accept those. */
                    inflateReset(&s.z);
                }
                s.z.next_out = s.c;
                s.z.avail_out = CS_CHUNK;
                zr = inflate(&s.z, Z_NO_FLUSH);
                if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                    gzip_broken = 1;
                    snprintf(gzip_msg, sizeof gzip_msg, "%s", s.z.msg ? s.z.msg : "inflate failed");
                    break;
                }
                size_t out = CS_CHUNK - s.z.avail_out;
                if (out && cs_write_all(s.out_fd, s.c, out) != 0)
                    return stream_end(&s, cs_fail_errno(err, errno, "writing %s", out_path), err);
                plain += (int64_t)out;
                if (zr == Z_BUF_ERROR && s.z.avail_in == 0) break;
            }
        }
        if (progress && progress(ctx, done, total) != 0)
            return stream_end(&s, cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled"), err);
    }
    /* Drain what inflate still holds for the last member. */
    while (!gzip_broken && zr == Z_OK) {
        s.z.next_out = s.c;
        s.z.avail_out = CS_CHUNK;
        s.z.avail_in = 0;
        zr = inflate(&s.z, Z_NO_FLUSH);
        size_t out = CS_CHUNK - s.z.avail_out;
        if (out && cs_write_all(s.out_fd, s.c, out) != 0)
            return stream_end(&s, cs_fail_errno(err, errno, "writing %s", out_path), err);
        plain += (int64_t)out;
        if (out == 0) break;
    }
    if (result) {
        memset(result, 0, sizeof *result);
        unsigned int mdlen = 16;
        EVP_DigestFinal_ex(s.md5, result->md5, &mdlen);
        result->object_bytes = done;
        result->plain_bytes = plain;
    }
    int m = 0;
    if (EVP_CIPHER_CTX_ctrl(s.cipher, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag16) != 1)
        return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM set tag"), err);
    if (EVP_DecryptFinal_ex(s.cipher, s.b, &m) != 1)
        return stream_end(&s, cs_fail(err, CS_ERR_AUTH, 0,
                                      "authentication tag does not verify"), err);
    if (gzip_broken)
        return stream_end(&s, cs_fail(err, CS_ERR_ZLIB, 0, "authentic object holds a corrupt gzip stream: %s", gzip_msg), err);
    if (zr != Z_STREAM_END)
        return stream_end(&s, cs_fail(err, CS_ERR_ZLIB, zr, "gzip stream is truncated"), err);
    if (fsync(s.out_fd) != 0) return stream_end(&s, cs_fail_errno(err, errno, "flushing %s", out_path), err);
    return stream_end(&s, CS_OK, err);
}
