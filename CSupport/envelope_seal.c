/* Sealing an object: cs_seal_file_ex, the entry point a backup uses.
 *
 * One pass over the plaintext: it is read, MACed and compressed by the chosen codec (gzip on the
 * parallel deflate pool, zstd or xz through libarchive), and the compressed bytes are encrypted,
 * digested and written as they come (envelope.c). What the store needs afterwards (tag, MD5,
 * SHA-256, the digests of every upload part, the MAC of the plaintext) is ready when the call
 * returns, so nothing has to read the object again before the upload. */
#include "envelope_internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The options' ranges, checked before any work: a caller bug is CS_ERR_ARG. */
static int32_t check_options(const cs_seal_options *o, cs_error *err) {
    if (!o) return cs_fail(err, CS_ERR_ARG, 0, "missing options");
    switch (o->codec) {
    case CS_CODEC_GZIP:
        if (o->level < -1 || o->level > 9)
            return cs_fail(err, CS_ERR_ARG, 0, "gzip level must be 0..9");
        break;
    case CS_CODEC_ZSTD:
        if (o->level < 1 || o->level > 19)
            return cs_fail(err, CS_ERR_ARG, 0, "zstd level must be 1..19");
        break;
    case CS_CODEC_XZ:
        if (o->level < 0 || o->level > 9)
            return cs_fail(err, CS_ERR_ARG, 0, "xz level must be 0..9");
        break;
    default: return cs_fail(err, CS_ERR_ARG, 0, "unknown codec %d", o->codec);
    }
    if (o->threads < 1 || o->threads > 64)
        return cs_fail(err, CS_ERR_ARG, 0, "threads must be 1..64");
    if (o->part_size < 0) return cs_fail(err, CS_ERR_ARG, 0, "part size must not be negative");
    return CS_OK;
}

/* Once the codec has emitted everything: the tag, the last part's digests, the whole-object
 * digests and the MAC into `result`, and the object made durable. */
static int32_t seal_finish(cs_stream *s, cs_seal_result *result, cs_error *err) {
    int fin = 0;
    if (EVP_EncryptFinal_ex(s->cipher, s->c, &fin) != 1)
        return cs_fail_openssl(err, "AES-256-GCM final");
    /* GCM is a stream mode: Final emits nothing, and the format has no room for stray bytes. */
    if (fin != 0) return cs_fail(err, CS_ERR_CRYPTO, fin, "unexpected GCM trailer");
    int32_t status = cs_stream_last_part(s, err);
    if (status != CS_OK) return status;
    cs_seal_result r;
    memset(&r, 0, sizeof r);
    if (EVP_CIPHER_CTX_ctrl(s->cipher, EVP_CTRL_GCM_GET_TAG, 16, r.tag) != 1)
        return cs_fail_openssl(err, "AES-256-GCM get tag");
    unsigned int mdlen = 16;
    EVP_DigestFinal_ex(s->md5, r.md5, &mdlen);
    if (s->sha) {
        mdlen = 32;
        EVP_DigestFinal_ex(s->sha, r.sha256, &mdlen);
    }
    if ((status = cs_stream_mac_final(s, r.plain_mac, err)) != CS_OK) return status;
    r.plain_bytes = s->done;
    r.object_bytes = s->written;
    if (result) *result = r;
    if (fsync(s->out_fd) != 0) return cs_fail_errno(err, errno, "flushing %s", s->out_path);
    return CS_OK;
}

int32_t cs_seal_file_ex(const char *in_path, const char *out_path, const void *key32,
                        const void *iv12, const cs_seal_options *o, cs_progress_fn progress,
                        void *ctx, cs_seal_result *result, cs_error *err) {
    cs_stream s;
    int32_t status = cs_stream_begin(&s, in_path, out_path, key32, iv12, 1, err);
    if (status == CS_OK) status = check_options(o, err);
    if (status == CS_OK) status = cs_stream_digests_begin(&s, o, err);
    if (status == CS_OK) status = cs_stream_mac_begin(&s, o->mac_key, err);
    if (status == CS_OK) {
        s.progress = progress;
        s.progress_ctx = ctx;
        if (o->codec == CS_CODEC_GZIP) status = cs_seal_gzip(&s, o->level, o->threads, err);
        else status = cs_seal_archive(&s, o->codec, o->level, o->threads, err);
    }
    if (status == CS_OK) status = seal_finish(&s, result, err);
    return cs_stream_end(&s, status, err);
}
