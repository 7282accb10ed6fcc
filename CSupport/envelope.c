/* The Laju envelope's stream: the scaffolding every object goes through, whatever its codec.
 *
 * An object is the input compressed (gzip, zstd or xz) then encrypted with AES-256-GCM (12-byte
 * IV, 16-byte tag kept apart, no AAD), streamed file to file in a few CS_CHUNK buffers whatever
 * its size. This file owns the context of one such stream (cs_stream, envelope_internal.h): the
 * files, the buffers, the cipher, and the digests.
 *
 * Everything the store needs about the object is computed in the same pass, because the format
 * stores the MD5 as `checksum`, S3 wants it (and each multipart part's) as Content-MD5 before the
 * upload starts, and reading a large object again costs as much as writing it: the whole-object
 * MD5, optionally its SHA-256 (signed payloads), the same digests per upload part, and a keyed MAC
 * of the plaintext (restore proves with it that it rebuilt the very bytes that were checked).
 *
 * The codecs (deflate_pool.c, archive_codec.c, the gunzip in envelope_open.c) only compress and
 * decompress: they hand compressed bytes to cs_stream_emit when sealing, and take decrypted bytes
 * from cs_stream_next when opening. */
#include "envelope_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/core_names.h>

/* ------------------------------------------------------------------------------------------------
 * Life cycle
 * ---------------------------------------------------------------------------------------------- */

static int64_t file_size(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
}

int32_t cs_stream_begin(cs_stream *s, const char *in_path, const char *out_path, const void *key32,
                        const void *iv12, int encrypt, cs_error *err) {
    memset(s, 0, sizeof *s);
    s->in_fd = s->out_fd = -1;
    s->in_path = in_path;
    s->out_path = out_path;
    if (!in_path || !out_path || !key32 || !iv12)
        return cs_fail(err, CS_ERR_ARG, 0, "missing argument");
    s->in_fd = open(in_path, O_RDONLY | O_CLOEXEC);
    if (s->in_fd < 0) return cs_fail_errno(err, errno, "cannot open %s", in_path);
    posix_fadvise(s->in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s->total = file_size(s->in_fd);
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

int32_t cs_stream_end(cs_stream *s, int32_t status, cs_error *err) {
    if (s->out_fd >= 0) {
        if (status == CS_OK && close(s->out_fd) != 0)
            status = cs_fail_errno(err, errno, "closing %s", s->out_path);
        else if (status != CS_OK) close(s->out_fd);
        if (status != CS_OK) unlink(s->out_path);
    }
    if (s->in_fd >= 0) close(s->in_fd);
    EVP_CIPHER_CTX_free(s->cipher);
    EVP_MD_CTX_free(s->md5);
    EVP_MD_CTX_free(s->sha);
    EVP_MD_CTX_free(s->part_md5);
    EVP_MD_CTX_free(s->part_sha);
    EVP_MAC_CTX_free(s->mac);
    free(s->a);
    free(s->b);
    free(s->c);
    return status;
}

int32_t cs_stream_progress(cs_stream *s, cs_error *err) {
    if (s->progress && s->progress(s->progress_ctx, s->done, s->total) != 0)
        return cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled");
    return CS_OK;
}

long cs_stream_read_chunk(cs_stream *s, unsigned char *buf) {
    size_t got = 0;
    while (got < CS_CHUNK) {
        long n = cs_read_some(s->in_fd, buf + got, CS_CHUNK - got);
        if (n < 0) return -1;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (long)got;
}

/* ------------------------------------------------------------------------------------------------
 * MAC of the plaintext
 * ---------------------------------------------------------------------------------------------- */

int32_t cs_stream_mac_begin(cs_stream *s, const void *key32, cs_error *err) {
    if (!key32) return CS_OK;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac) return cs_fail_openssl(err, "EVP_MAC_fetch(HMAC)");
    s->mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (!s->mac) return cs_fail_openssl(err, "EVP_MAC_CTX_new");
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(s->mac, key32, 32, params) != 1) return cs_fail_openssl(err, "HMAC init");
    return CS_OK;
}

void cs_stream_mac_update(cs_stream *s, const void *p, size_t n) {
    if (s->mac && n) EVP_MAC_update(s->mac, p, n);
}

int32_t cs_stream_mac_final(cs_stream *s, uint8_t out[32], cs_error *err) {
    if (!s->mac) return CS_OK;
    size_t len = 0;
    if (EVP_MAC_final(s->mac, out, &len, 32) != 1 || len != 32)
        return cs_fail_openssl(err, "HMAC final");
    return CS_OK;
}

/* ------------------------------------------------------------------------------------------------
 * Digests of the object: whole, and per upload part (sealing)
 * ---------------------------------------------------------------------------------------------- */

static int32_t sha256_begin(EVP_MD_CTX **ctx, cs_error *err) {
    *ctx = EVP_MD_CTX_new();
    if (!*ctx || EVP_DigestInit_ex(*ctx, EVP_sha256(), NULL) != 1)
        return cs_fail_openssl(err, "SHA-256 init");
    return CS_OK;
}

int32_t cs_stream_digests_begin(cs_stream *s, const cs_seal_options *o, cs_error *err) {
    int32_t status;
    if (o->sha256 && (status = sha256_begin(&s->sha, err)) != CS_OK) return status;
    if (o->part_size <= 0) return CS_OK;
    s->part_size = o->part_size;
    s->part_fn = o->part_fn;
    s->part_ctx = o->part_ctx;
    s->part_md5 = EVP_MD_CTX_new();
    if (!s->part_md5 || EVP_DigestInit_ex(s->part_md5, EVP_md5(), NULL) != 1)
        return cs_fail_openssl(err, "MD5 init");
    if (o->sha256 && (status = sha256_begin(&s->part_sha, err)) != CS_OK) return status;
    return CS_OK;
}

/* Hands the digests of the finished part to the caller and starts the next one. */
static int32_t part_flush(cs_stream *s, cs_error *err) {
    unsigned char md5[16], sha[32];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(s->part_md5, md5, &len) != 1 ||
        EVP_DigestInit_ex(s->part_md5, EVP_md5(), NULL) != 1)
        return cs_fail_openssl(err, "part MD5");
    if (s->part_sha && (EVP_DigestFinal_ex(s->part_sha, sha, &len) != 1 ||
                        EVP_DigestInit_ex(s->part_sha, EVP_sha256(), NULL) != 1))
        return cs_fail_openssl(err, "part SHA-256");
    if (s->part_fn && s->part_fn(s->part_ctx, s->part_index, s->part_offset, s->part_fill, md5,
                                 s->part_sha ? sha : NULL) != 0)
        return cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled");
    s->part_index++;
    s->part_offset += s->part_fill;
    s->part_fill = 0;
    return CS_OK;
}

int32_t cs_stream_last_part(cs_stream *s, cs_error *err) {
    return s->part_fill > 0 ? part_flush(s, err) : CS_OK;
}

/* Digests of the object bytes: whole object, and the part they fall into. */
static int32_t digest_object(cs_stream *s, const unsigned char *p, size_t n, cs_error *err) {
    EVP_DigestUpdate(s->md5, p, n);
    if (s->sha) EVP_DigestUpdate(s->sha, p, n);
    while (s->part_size > 0 && n > 0) {
        size_t take = (size_t)(s->part_size - s->part_fill);
        if (take > n) take = n;
        EVP_DigestUpdate(s->part_md5, p, take);
        if (s->part_sha) EVP_DigestUpdate(s->part_sha, p, take);
        s->part_fill += (int64_t)take;
        p += take;
        n -= take;
        if (s->part_fill == s->part_size) {
            int32_t status = part_flush(s, err);
            if (status != CS_OK) return status;
        }
    }
    return CS_OK;
}

/* ------------------------------------------------------------------------------------------------
 * The cipher, both ways
 * ---------------------------------------------------------------------------------------------- */

int32_t cs_stream_emit(cs_stream *s, const void *compressed, size_t len, cs_error *err) {
    const unsigned char *gz = compressed;
    while (len > 0) {
        size_t piece = len > CS_CHUNK ? CS_CHUNK : len;
        int n = 0;
        if (EVP_EncryptUpdate(s->cipher, s->c, &n, gz, (int)piece) != 1)
            return cs_fail_openssl(err, "AES-256-GCM encrypt");
        int32_t status = digest_object(s, s->c, (size_t)n, err);
        if (status != CS_OK) return status;
        if (cs_write_all(s->out_fd, s->c, (size_t)n) != 0)
            return cs_fail_errno(err, errno, "writing %s", s->out_path);
        s->written += n;
        gz += piece;
        len -= piece;
    }
    return CS_OK;
}

long cs_stream_next(cs_stream *s, cs_error *err) {
    long n = cs_read_some(s->in_fd, s->a, CS_CHUNK);
    if (n < 0) {
        cs_fail_errno(err, errno, "reading %s", s->in_path);
        return -1;
    }
    if (n == 0) return 0;
    s->done += n;
    EVP_DigestUpdate(s->md5, s->a, (size_t)n);
    int m = 0;
    if (EVP_DecryptUpdate(s->cipher, s->b, &m, s->a, (int)n) != 1) {
        cs_fail_openssl(err, "AES-256-GCM decrypt");
        return -1;
    }
    return m;
}

int32_t cs_stream_write_plain(cs_stream *s, const void *p, size_t n, cs_error *err) {
    if (n == 0) return CS_OK;
    if (cs_write_all(s->out_fd, p, n) != 0)
        return cs_fail_errno(err, errno, "writing %s", s->out_path);
    cs_stream_mac_update(s, p, n);
    s->plain += (int64_t)n;
    return CS_OK;
}
