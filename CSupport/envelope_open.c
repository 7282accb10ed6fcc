/* Opening an object: cs_open_file_ex, the entry point a restore uses, and the gunzip of gzip
 * objects (zstd and xz are decoded in archive_codec.c).
 *
 * The plaintext is written out as it is decrypted, before the tag can be checked (GCM checks it
 * at the end, and objects are larger than memory): so on any failure the output is removed
 * (cs_stream_end), and unauthenticated plaintext never outlives the call. A stream that turns out
 * broken is read to the end all the same and blamed only once the tag verified: a wrong key also
 * decrypts to garbage, and must be reported as CS_ERR_AUTH, not as a damaged stream. */
#include "envelope_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------------------------------------
 * gunzip (several members accepted, as gunzip(1) and Node do)
 * ---------------------------------------------------------------------------------------------- */

/* Inflates one decrypted piece of the object (s->b, `len` bytes) and writes the plaintext out.
 * `*zr` carries inflate's last result from one piece to the next. */
static int32_t gunzip_piece(cs_stream *s, z_stream *z, size_t len, int *zr, cs_error *err) {
    z->next_in = s->b;
    z->avail_in = (uInt)len;
    while (z->avail_in > 0) {
        /* A concatenated gzip member follows: gunzip(1) and Node accept those. */
        if (*zr == Z_STREAM_END) inflateReset(z);
        z->next_out = s->c;
        z->avail_out = CS_CHUNK;
        *zr = inflate(z, Z_NO_FLUSH);
        if (*zr != Z_OK && *zr != Z_STREAM_END && *zr != Z_BUF_ERROR) {
            snprintf(s->broken, sizeof s->broken,
                     "authentic object holds a corrupt gzip stream: %s",
                     z->msg ? z->msg : "inflate failed");
            return CS_OK;
        }
        int32_t status = cs_stream_write_plain(s, s->c, CS_CHUNK - z->avail_out, err);
        if (status != CS_OK) return status;
        if (*zr == Z_BUF_ERROR && z->avail_in == 0) break;
    }
    return CS_OK;
}

/* Drains what inflate still holds for the last member, once the whole object was read. */
static int32_t gunzip_drain(cs_stream *s, z_stream *z, int *zr, cs_error *err) {
    while (!s->broken[0] && *zr == Z_OK) {
        z->next_out = s->c;
        z->avail_out = CS_CHUNK;
        z->avail_in = 0;
        *zr = inflate(z, Z_NO_FLUSH);
        size_t out = CS_CHUNK - z->avail_out;
        int32_t status = cs_stream_write_plain(s, s->c, out, err);
        if (status != CS_OK) return status;
        if (out == 0) break;
    }
    if (!s->broken[0] && *zr != Z_STREAM_END)
        snprintf(s->broken, sizeof s->broken, "gzip stream is truncated");
    return CS_OK;
}

/* Decrypts the whole object; inflates it until the stream turns out broken (s->broken). */
static int32_t open_gzip(cs_stream *s, cs_error *err) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return cs_fail(err, CS_ERR_ZLIB, 0, "inflateInit2 failed");
    int zr = Z_OK;
    int32_t status = CS_OK;
    for (;;) {
        long m = cs_stream_next(s, err);
        if (m < 0) {
            status = err ? err->status : CS_ERR_IO;
            break;
        }
        if (m == 0) {
            status = gunzip_drain(s, &z, &zr, err);
            break;
        }
        if (!s->broken[0]) status = gunzip_piece(s, &z, (size_t)m, &zr, err);
        if (status == CS_OK) status = cs_stream_progress(s, err);
        if (status != CS_OK) break;
    }
    inflateEnd(&z);
    return status;
}

/* ------------------------------------------------------------------------------------------------
 * The entry point
 * ---------------------------------------------------------------------------------------------- */

/* Once the whole object was read: its digests into `result`, then the tag, and only then the
 * stream's own verdict; the plaintext is made durable last. */
static int32_t open_finish(cs_stream *s, const void *tag16, int32_t codec, cs_open_result *result,
                           cs_error *err) {
    int32_t status;
    if (result) {
        memset(result, 0, sizeof *result);
        unsigned int mdlen = 16;
        EVP_DigestFinal_ex(s->md5, result->md5, &mdlen);
        result->object_bytes = s->done;
        result->plain_bytes = s->plain;
        if ((status = cs_stream_mac_final(s, result->plain_mac, err)) != CS_OK) return status;
    }
    int m = 0;
    if (EVP_CIPHER_CTX_ctrl(s->cipher, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag16) != 1)
        return cs_fail_openssl(err, "AES-256-GCM set tag");
    if (EVP_DecryptFinal_ex(s->cipher, s->b, &m) != 1)
        return cs_fail(err, CS_ERR_AUTH, 0, "authentication tag does not verify");
    if (s->broken[0])
        return cs_fail(err, codec == CS_CODEC_GZIP ? CS_ERR_ZLIB : CS_ERR_ARCHIVE, 0, "%s",
                       s->broken);
    if (fsync(s->out_fd) != 0) return cs_fail_errno(err, errno, "flushing %s", s->out_path);
    return CS_OK;
}

int32_t cs_open_file_ex(const char *in_path, const char *out_path, const void *key32,
                        const void *iv12, const void *tag16, int32_t codec, const void *mac_key,
                        cs_progress_fn progress, void *ctx, cs_open_result *result, cs_error *err) {
    cs_stream s;
    int32_t status = cs_stream_begin(&s, in_path, out_path, key32, iv12, 0, err);
    if (status == CS_OK && !tag16) status = cs_fail(err, CS_ERR_ARG, 0, "missing tag");
    if (status == CS_OK && codec != CS_CODEC_GZIP && codec != CS_CODEC_ZSTD && codec != CS_CODEC_XZ)
        status = cs_fail(err, CS_ERR_ARG, 0, "unknown codec %d", codec);
    if (status == CS_OK) status = cs_stream_mac_begin(&s, mac_key, err);
    if (status == CS_OK) {
        s.progress = progress;
        s.progress_ctx = ctx;
        if (codec == CS_CODEC_GZIP) status = open_gzip(&s, err);
        else status = cs_open_archive(&s, codec, err);
    }
    if (status == CS_OK) status = open_finish(&s, tag16, codec, result, err);
    return cs_stream_end(&s, status, err);
}
