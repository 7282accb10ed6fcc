/* The Laju envelope, streamed: file -> gzip (zlib) | zstd | xz (libarchive) -> AES-256-GCM -> file,
 * and back.
 *
 * Memory is a few CS_CHUNK buffers per stream whatever the file size (plus the codec's own state).
 * Everything the store needs about the object is computed in the same pass, because the format
 * stores the MD5 as `checksum`, S3 wants it (and each multipart part's) as Content-MD5 before the
 * upload starts, and reading a large object again costs as much as writing it: the whole-object
 * MD5, optionally its SHA-256 (signed payloads), the same digests per upload part, and a keyed MAC
 * of the plaintext (restore proves with it that it rebuilt the very bytes that were checked). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <archive.h>
#include <archive_entry.h>
#include <openssl/core_names.h>
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
    /* Sealing only: digests of the object beyond the MD5, and of each upload part. */
    EVP_MD_CTX *sha;            /* whole object, when asked */
    EVP_MD_CTX *part_md5, *part_sha;
    int64_t part_size, part_fill, part_index, part_offset;
    cs_part_fn part_fn;
    void *part_ctx;
    int64_t written;
    /* Both ways: HMAC-SHA256 of the plaintext, when a MAC key was given. */
    EVP_MAC_CTX *mac;
    /* Errors raised inside libarchive callbacks, reported once libarchive returns. */
    int32_t cb_status;
    cs_error cb_err;
} stream;

static int32_t mac_begin(stream *s, const void *key32, cs_error *err) {
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

static void mac_update(stream *s, const void *p, size_t n) {
    if (s->mac && n) EVP_MAC_update(s->mac, p, n);
}

static int32_t mac_final(stream *s, uint8_t out[32], cs_error *err) {
    if (!s->mac) return CS_OK;
    size_t len = 0;
    if (EVP_MAC_final(s->mac, out, &len, 32) != 1 || len != 32) return cs_fail_openssl(err, "HMAC final");
    return CS_OK;
}

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
    EVP_MD_CTX_free(s->sha);
    EVP_MD_CTX_free(s->part_md5);
    EVP_MD_CTX_free(s->part_sha);
    EVP_MAC_CTX_free(s->mac);
    free(s->a);
    free(s->b);
    free(s->c);
    return status;
}

static int64_t file_size(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Hands the digests of the finished part to the caller and starts the next one. */
static int32_t part_flush(stream *s, cs_error *err) {
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

/* Digests of the object bytes: whole object, and the part they fall into. */
static int32_t digest_object(stream *s, const unsigned char *p, size_t n, cs_error *err) {
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

/* Encrypts `len` bytes of compressed output, hashes the ciphertext and writes it. */
static int32_t seal_emit(stream *s, const unsigned char *gz, size_t len, int64_t *written, cs_error *err) {
    while (len > 0) {
        size_t piece = len > CS_CHUNK ? CS_CHUNK : len;
        int n = 0;
        if (EVP_EncryptUpdate(s->cipher, s->c, &n, gz, (int)piece) != 1)
            return cs_fail_openssl(err, "AES-256-GCM encrypt");
        int32_t status = digest_object(s, s->c, (size_t)n, err);
        if (status != CS_OK) return status;
        if (cs_write_all(s->out_fd, s->c, (size_t)n) != 0)
            return cs_fail_errno(err, errno, "writing %s", s->out_path);
        *written += n;
        gz += piece;
        len -= piece;
    }
    return CS_OK;
}

/* Parallel gzip, as pigz does it: the input is cut into CS_CHUNK blocks that are deflated on
 * several threads at once, each primed with the previous block's last 32 KiB as dictionary and
 * ended with a sync flush, so their concatenation is ONE ordinary deflate stream inside one
 * ordinary gzip member (any gunzip, Node's zlib or Python reads it). The CRC-32 of the blocks is
 * combined with crc32_combine. Compression is what a backup spends its time on; this makes it
 * scale with the cores while memory stays bounded (CS_SLOTS(threads) blocks in flight).
 *
 * The workers are a pool that lives for the whole object and take blocks in order as they are
 * read, like pigz's; this thread reads, MACs, and then encrypts, hashes and writes finished blocks
 * in order. An earlier design compressed in batches (a thread per block, joined per batch): every
 * batch waited for its slowest block, and on a busy host the cores sat idle at each barrier. The
 * output does not depend on the number of threads: each block's bytes depend only on its input
 * and its dictionary. */
#define CS_DICT (32u * 1024u)
#define CS_MAX_WORKERS 64
/* Enough blocks in flight that every worker has one while this thread emits and reads. */
#define CS_SLOTS(workers) (2 * (workers) + 2)

enum { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE };

typedef struct block {
    unsigned char *in;
    size_t in_len;
    unsigned char *dict;
    size_t dict_len;
    unsigned char *out;
    size_t out_cap, out_len;
    uint32_t crc;
    int level;
    int failed;
    int state;          /* SLOT_*, under the pool's mutex */
    int64_t seq;
} block;

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t work;    /* a block was queued, or stop */
    pthread_cond_t done;    /* a block was compressed */
    block *slots;
    int nslots;
    int64_t next_job;       /* the next block a worker takes */
    int64_t queued;         /* blocks handed to the pool so far */
    int stop;
} pool;

static void deflate_block(block *b) {
    z_stream z;
    memset(&z, 0, sizeof z);
    b->failed = 1;
    /* windowBits -15: raw deflate; the gzip header and trailer are written once around all blocks. */
    if (deflateInit2(&z, b->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return;
    if (b->dict_len && deflateSetDictionary(&z, b->dict, (uInt)b->dict_len) != Z_OK) {
        deflateEnd(&z);
        return;
    }
    z.next_in = b->in;
    z.avail_in = (uInt)b->in_len;
    z.next_out = b->out;
    z.avail_out = (uInt)b->out_cap;
    int zr = deflate(&z, Z_SYNC_FLUSH);
    if ((zr == Z_OK || zr == Z_BUF_ERROR) && z.avail_in == 0 && z.avail_out > 0) {
        b->out_len = b->out_cap - z.avail_out;
        b->crc = (uint32_t)crc32(0, b->in, (uInt)b->in_len);
        b->failed = 0;
    }
    deflateEnd(&z);
}

static void *pool_worker(void *arg) {
    pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->next_job >= p->queued) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        block *b = &p->slots[p->next_job % p->nslots];
        p->next_job++;
        b->state = SLOT_BUSY;
        pthread_mutex_unlock(&p->mu);
        deflate_block(b);
        pthread_mutex_lock(&p->mu);
        b->state = SLOT_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Reads up to CS_CHUNK bytes (fewer only at end of file). */
static long read_block(int fd, unsigned char *buf) {
    size_t got = 0;
    while (got < CS_CHUNK) {
        long n = cs_read_some(fd, buf + got, CS_CHUNK - got);
        if (n < 0) return -1;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (long)got;
}

/* gzip: parallel deflate of CS_CHUNK blocks into one member (see above). Reads the plaintext
 * (feeding the MAC), emits the object through seal_emit; `*done` counts plaintext bytes. */
static int32_t seal_gzip(stream *s, const char *in_path, int level, int threads,
                         cs_progress_fn progress, void *ctx, int64_t total, int64_t *done_out,
                         cs_error *err) {
    int workers = threads < 1 ? 1 : (threads > CS_MAX_WORKERS ? CS_MAX_WORKERS : threads);
    const int nslots = CS_SLOTS(workers);
    const size_t out_cap = compressBound(CS_CHUNK) + 64;
    pool p;
    memset(&p, 0, sizeof p);
    p.nslots = nslots;
    p.slots = calloc((size_t)nslots, sizeof *p.slots);
    unsigned char *arena = NULL, *tail = NULL;
    if (p.slots) arena = malloc((size_t)nslots * (CS_CHUNK + out_cap + CS_DICT));
    if (arena) tail = malloc(CS_DICT);
    if (!p.slots || !arena || !tail) {
        free(p.slots);
        free(arena);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    for (int i = 0; i < nslots; i++) {
        unsigned char *base = arena + (size_t)i * (CS_CHUNK + out_cap + CS_DICT);
        p.slots[i].in = base;
        p.slots[i].out = base + CS_CHUNK;
        p.slots[i].dict = base + CS_CHUNK + out_cap;
        p.slots[i].out_cap = out_cap;
        p.slots[i].level = level;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.work, NULL);
    pthread_cond_init(&p.done, NULL);
    pthread_t tids[CS_MAX_WORKERS];
    int started = 0;
    while (started < workers && pthread_create(&tids[started], NULL, pool_worker, &p) == 0) started++;
    /* With no worker at all (thread creation refused), this thread compresses each block itself. */

    int64_t done = 0, next_read = 0, next_emit = 0;
    uint32_t crc = 0;
    size_t tail_len = 0;
    int eof = 0;
    /* gzip header: no name, no mtime, OS = Unix, as Node's zlib.createGzip() writes it. */
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    int32_t status = seal_emit(s, header, sizeof header, &s->written, err);

    while (status == CS_OK) {
        /* 1. Keep every slot busy: read (and MAC) blocks in order and hand them to the pool.
         * Each block gets the last 32 KiB of the block before it as dictionary. */
        while (!eof && next_read - next_emit < nslots) {
            block *b = &p.slots[next_read % nslots];
            long got = read_block(s->in_fd, b->in);
            if (got < 0) { status = cs_fail_errno(err, errno, "reading %s", in_path); break; }
            if (got == 0) { eof = 1; break; }
            if ((size_t)got < CS_CHUNK) eof = 1;
            b->in_len = (size_t)got;
            b->dict_len = tail_len;
            memcpy(b->dict, tail, tail_len);
            tail_len = b->in_len < CS_DICT ? b->in_len : CS_DICT;
            memcpy(tail, b->in + b->in_len - tail_len, tail_len);
            mac_update(s, b->in, b->in_len);
            b->seq = next_read++;
            if (started == 0) {
                deflate_block(b);
                b->state = SLOT_DONE;
                continue;
            }
            pthread_mutex_lock(&p.mu);
            b->state = SLOT_QUEUED;
            p.queued = next_read;
            pthread_cond_signal(&p.work);
            pthread_mutex_unlock(&p.mu);
        }
        if (status != CS_OK || next_emit == next_read) break;
        /* 2. Encrypt, hash and write the oldest block once it is compressed. */
        block *b = &p.slots[next_emit % nslots];
        pthread_mutex_lock(&p.mu);
        while (b->state != SLOT_DONE) pthread_cond_wait(&p.done, &p.mu);
        pthread_mutex_unlock(&p.mu);
        if (b->failed) { status = cs_fail(err, CS_ERR_ZLIB, 0, "deflate failed"); break; }
        crc = (uint32_t)crc32_combine(crc, b->crc, (z_off_t)b->in_len);
        done += (int64_t)b->in_len;
        status = seal_emit(s, b->out, b->out_len, &s->written, err);
        b->state = SLOT_FREE;
        next_emit++;
        if (status == CS_OK && progress && progress(ctx, done, total) != 0)
            status = cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled");
    }
    /* Workers finish the block they hold (its buffers must outlive them) and leave the rest. */
    pthread_mutex_lock(&p.mu);
    p.stop = 1;
    pthread_cond_broadcast(&p.work);
    pthread_mutex_unlock(&p.mu);
    for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
    pthread_cond_destroy(&p.done);
    pthread_cond_destroy(&p.work);
    pthread_mutex_destroy(&p.mu);

    if (status == CS_OK) {
        /* An empty final block closes the deflate stream; then CRC-32 and size, little-endian. */
        unsigned char trailer[10] = {0x03, 0x00};
        for (int i = 0; i < 4; i++) trailer[2 + i] = (unsigned char)(crc >> (8 * i));
        for (int i = 0; i < 4; i++) trailer[6 + i] = (unsigned char)((uint64_t)done >> (8 * i));
        status = seal_emit(s, trailer, sizeof trailer, &s->written, err);
    }
    free(tail);
    free(arena);
    free(p.slots);
    *done_out = done;
    return status;
}

/* libarchive hands us the compressed stream here: encrypt, hash, write. */
static la_ssize_t archive_sink(struct archive *a, void *client, const void *buf, size_t len) {
    stream *s = client;
    if (s->cb_status != CS_OK) return -1;
    s->cb_status = seal_emit(s, buf, len, &s->written, &s->cb_err);
    if (s->cb_status != CS_OK) {
        archive_set_error(a, EIO, "%s", s->cb_err.message);
        return -1;
    }
    return (la_ssize_t)len;
}

/* The status of a failed libarchive call: ours when one of our callbacks failed, else
 * libarchive's message. */
static int32_t archive_failed(struct archive *a, stream *s, const char *what, cs_error *err) {
    if (s->cb_status != CS_OK) {
        if (err) *err = s->cb_err;
        return s->cb_status;
    }
    const char *msg = a ? archive_error_string(a) : NULL;
    return cs_fail(err, CS_ERR_ARCHIVE, a ? archive_errno(a) : 0, "%s: %s", what, msg ? msg : "libarchive failed");
}

/* zstd and xz: libarchive's write filter over its raw format (one bare compressed stream, no
 * archive container), unblocked so that no padding follows the stream. The encoders run on
 * their own threads (libarchive's `threads` filter option); this thread reads, MACs and seals. */
static int32_t seal_archive(stream *s, const char *in_path, int codec, int level, int threads,
                            cs_progress_fn progress, void *ctx, int64_t total, int64_t *done_out,
                            cs_error *err) {
    struct archive *a = archive_write_new();
    struct archive_entry *entry = archive_entry_new();
    if (!a || !entry) {
        archive_write_free(a);
        archive_entry_free(entry);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    int32_t status = CS_OK;
    char text[16];
    int r = codec == CS_CODEC_ZSTD ? archive_write_add_filter_zstd(a) : archive_write_add_filter_xz(a);
    /* ARCHIVE_WARN means "through an external program": never that, the stream must stay ours. */
    if (r != ARCHIVE_OK) {
        status = cs_fail(err, CS_ERR_ARCHIVE, archive_errno(a), "libarchive has no built-in %s encoder",
                         codec == CS_CODEC_ZSTD ? "zstd" : "xz");
        goto done;
    }
    snprintf(text, sizeof text, "%d", level);
    if (archive_write_set_filter_option(a, NULL, "compression-level", text) != ARCHIVE_OK) {
        status = archive_failed(a, s, "compression level", err);
        goto done;
    }
    /* zstd: `threads` is ZSTD_c_nbWorkers, and any value (1 included) selects libzstd's
     * multi-threaded mode with its job buffers (tens of MiB); left unset, the compression runs on
     * this thread in a few MiB. xz: 1 is liblzma's single-threaded encoder, more its multi-threaded
     * one. (For both, 0 would mean "one per core".) */
    snprintf(text, sizeof text, "%d", threads);
    if ((codec != CS_CODEC_ZSTD || threads > 1) &&
        archive_write_set_filter_option(a, NULL, "threads", text) != ARCHIVE_OK) {
        status = archive_failed(a, s, "threads", err);
        goto done;
    }
    if (archive_write_set_format_raw(a) != ARCHIVE_OK || archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open(a, s, NULL, archive_sink, NULL) != ARCHIVE_OK) {
        status = archive_failed(a, s, "starting the compressor", err);
        goto done;
    }
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_pathname(entry, "snapshot");
    if (archive_write_header(a, entry) != ARCHIVE_OK) {
        status = archive_failed(a, s, "starting the compressor", err);
        goto done;
    }
    int64_t done = 0;
    for (;;) {
        long got = read_block(s->in_fd, s->a);
        if (got < 0) { status = cs_fail_errno(err, errno, "reading %s", in_path); break; }
        if (got == 0) break;
        mac_update(s, s->a, (size_t)got);
        la_ssize_t w = archive_write_data(a, s->a, (size_t)got);
        if (w != got) { status = archive_failed(a, s, "compressing", err); break; }
        done += got;
        if (progress && progress(ctx, done, total) != 0) {
            status = cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled");
            break;
        }
        if ((size_t)got < CS_CHUNK) break;
    }
    /* Close flushes the encoder's last frame/block through archive_sink. */
    if (status == CS_OK && archive_write_close(a) != ARCHIVE_OK) status = archive_failed(a, s, "finishing the stream", err);
    *done_out = done;
done:
    archive_entry_free(entry);
    archive_write_free(a);
    return status;
}

int32_t cs_seal_file_ex(const char *in_path, const char *out_path,
                        const void *key32, const void *iv12, const cs_seal_options *o,
                        cs_progress_fn progress, void *ctx,
                        cs_seal_result *result, cs_error *err) {
    stream s;
    int32_t status = stream_begin(&s, in_path, out_path, key32, iv12, 1, err);
    if (status != CS_OK) return stream_end(&s, status, err);
    if (!o) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "missing options"), err);
    switch (o->codec) {
    case CS_CODEC_GZIP:
        if (o->level < -1 || o->level > 9) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "gzip level must be 0..9"), err);
        break;
    case CS_CODEC_ZSTD:
        if (o->level < 1 || o->level > 19) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "zstd level must be 1..19"), err);
        break;
    case CS_CODEC_XZ:
        if (o->level < 0 || o->level > 9) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "xz level must be 0..9"), err);
        break;
    default:
        return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "unknown codec %d", o->codec), err);
    }
    if (o->threads < 1 || o->threads > 64) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "threads must be 1..64"), err);
    if (o->part_size < 0) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "part size must not be negative"), err);
    if (o->sha256) {
        s.sha = EVP_MD_CTX_new();
        if (!s.sha || EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL) != 1)
            return stream_end(&s, cs_fail_openssl(err, "SHA-256 init"), err);
    }
    if (o->part_size > 0) {
        s.part_size = o->part_size;
        s.part_fn = o->part_fn;
        s.part_ctx = o->part_ctx;
        s.part_md5 = EVP_MD_CTX_new();
        if (!s.part_md5 || EVP_DigestInit_ex(s.part_md5, EVP_md5(), NULL) != 1)
            return stream_end(&s, cs_fail_openssl(err, "MD5 init"), err);
        if (o->sha256) {
            s.part_sha = EVP_MD_CTX_new();
            if (!s.part_sha || EVP_DigestInit_ex(s.part_sha, EVP_sha256(), NULL) != 1)
                return stream_end(&s, cs_fail_openssl(err, "SHA-256 init"), err);
        }
    }
    if ((status = mac_begin(&s, o->mac_key, err)) != CS_OK) return stream_end(&s, status, err);

    int64_t total = file_size(s.in_fd), done = 0;
    if (o->codec == CS_CODEC_GZIP)
        status = seal_gzip(&s, in_path, o->level, o->threads, progress, ctx, total, &done, err);
    else
        status = seal_archive(&s, in_path, o->codec, o->level, o->threads, progress, ctx, total, &done, err);
    if (status != CS_OK) return stream_end(&s, status, err);

    int fin = 0;
    if (EVP_EncryptFinal_ex(s.cipher, s.c, &fin) != 1)
        return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM final"), err);
    /* GCM is a stream mode: Final emits nothing, and the format has no room for stray bytes. */
    if (fin != 0) return stream_end(&s, cs_fail(err, CS_ERR_CRYPTO, fin, "unexpected GCM trailer"), err);
    if (s.part_fill > 0 && (status = part_flush(&s, err)) != CS_OK) return stream_end(&s, status, err);
    cs_seal_result r;
    memset(&r, 0, sizeof r);
    if (EVP_CIPHER_CTX_ctrl(s.cipher, EVP_CTRL_GCM_GET_TAG, 16, r.tag) != 1)
        return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM get tag"), err);
    unsigned int mdlen = 16;
    EVP_DigestFinal_ex(s.md5, r.md5, &mdlen);
    if (s.sha) {
        mdlen = 32;
        EVP_DigestFinal_ex(s.sha, r.sha256, &mdlen);
    }
    if ((status = mac_final(&s, r.plain_mac, err)) != CS_OK) return stream_end(&s, status, err);
    r.plain_bytes = done;
    r.object_bytes = s.written;
    if (result) *result = r;
    if (fsync(s.out_fd) != 0) return stream_end(&s, cs_fail_errno(err, errno, "flushing %s", out_path), err);
    return stream_end(&s, CS_OK, err);
}

int32_t cs_seal_file(const char *in_path, const char *out_path,
                     const void *key32, const void *iv12, int32_t level, int32_t threads,
                     cs_progress_fn progress, void *ctx,
                     cs_seal_result *result, cs_error *err) {
    cs_seal_options o;
    memset(&o, 0, sizeof o);
    o.codec = CS_CODEC_GZIP;
    o.level = level;
    o.threads = threads;
    return cs_seal_file_ex(in_path, out_path, key32, iv12, &o, progress, ctx, result, err);
}

/* Reads the next piece of the object, hashes it and decrypts it into s->b. Returns the bytes
 * decrypted, 0 at the end, or -1 with `err` filled. */
static long open_next(stream *s, const char *in_path, int64_t *done, cs_error *err) {
    long n = cs_read_some(s->in_fd, s->a, CS_CHUNK);
    if (n < 0) {
        cs_fail_errno(err, errno, "reading %s", in_path);
        return -1;
    }
    if (n == 0) return 0;
    *done += n;
    EVP_DigestUpdate(s->md5, s->a, (size_t)n);
    int m = 0;
    if (EVP_DecryptUpdate(s->cipher, s->b, &m, s->a, (int)n) != 1) {
        cs_fail_openssl(err, "AES-256-GCM decrypt");
        return -1;
    }
    return m;
}

static int32_t open_write(stream *s, const char *out_path, const void *p, size_t n, int64_t *plain, cs_error *err) {
    if (n == 0) return CS_OK;
    if (cs_write_all(s->out_fd, p, n) != 0) return cs_fail_errno(err, errno, "writing %s", out_path);
    mac_update(s, p, n);
    *plain += (int64_t)n;
    return CS_OK;
}

/* gunzip of the decrypted stream (several members accepted, as gunzip(1) and Node do). On a
 * broken stream it keeps decrypting to the end, so that the tag still tells a wrong key from a
 * damaged stream: `broken` gets the reason. */
static int32_t open_gzip(stream *s, const char *in_path, const char *out_path,
                         cs_progress_fn progress, void *ctx, int64_t total, int64_t *done, int64_t *plain,
                         char *broken, size_t broken_cap, cs_error *err) {
    if (inflateInit2(&s->z, 15 + 16) != Z_OK) return cs_fail(err, CS_ERR_ZLIB, 0, "inflateInit2 failed");
    s->z_ready = 2;
    int zr = Z_OK;
    int gzip_broken = 0;
    int32_t status;
    for (;;) {
        long m = open_next(s, in_path, done, err);
        if (m < 0) return err ? err->status : CS_ERR_IO;
        if (m == 0) break;
        if (!gzip_broken) {
            s->z.next_in = s->b;
            s->z.avail_in = (uInt)m;
            while (s->z.avail_in > 0 && !gzip_broken) {
                if (zr == Z_STREAM_END) {
                    /* A concatenated gzip member follows: gunzip(1) and Node accept those. */
                    inflateReset(&s->z);
                }
                s->z.next_out = s->c;
                s->z.avail_out = CS_CHUNK;
                zr = inflate(&s->z, Z_NO_FLUSH);
                if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                    gzip_broken = 1;
                    snprintf(broken, broken_cap, "authentic object holds a corrupt gzip stream: %s",
                             s->z.msg ? s->z.msg : "inflate failed");
                    break;
                }
                if ((status = open_write(s, out_path, s->c, CS_CHUNK - s->z.avail_out, plain, err)) != CS_OK) return status;
                if (zr == Z_BUF_ERROR && s->z.avail_in == 0) break;
            }
        }
        if (progress && progress(ctx, *done, total) != 0) return cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled");
    }
    /* Drain what inflate still holds for the last member. */
    while (!gzip_broken && zr == Z_OK) {
        s->z.next_out = s->c;
        s->z.avail_out = CS_CHUNK;
        s->z.avail_in = 0;
        zr = inflate(&s->z, Z_NO_FLUSH);
        size_t out = CS_CHUNK - s->z.avail_out;
        if ((status = open_write(s, out_path, s->c, out, plain, err)) != CS_OK) return status;
        if (out == 0) break;
    }
    if (!gzip_broken && zr != Z_STREAM_END) snprintf(broken, broken_cap, "gzip stream is truncated");
    return CS_OK;
}

/* State of the libarchive read callback. */
typedef struct archive_source {
    stream *s;
    const char *in_path;
    int64_t *done;
    int64_t total;
    cs_progress_fn progress;
    void *ctx;
} archive_source;

static la_ssize_t archive_feed(struct archive *a, void *client, const void **buf) {
    archive_source *src = client;
    stream *s = src->s;
    if (s->cb_status != CS_OK) return -1;
    long m = open_next(s, src->in_path, src->done, &s->cb_err);
    if (m < 0) {
        s->cb_status = s->cb_err.status;
        archive_set_error(a, EIO, "%s", s->cb_err.message);
        return -1;
    }
    if (m > 0 && src->progress && src->progress(src->ctx, *src->done, src->total) != 0) {
        s->cb_status = cs_fail(&s->cb_err, CS_ERR_CANCELLED, 0, "cancelled");
        archive_set_error(a, ECANCELED, "cancelled");
        return -1;
    }
    *buf = s->b;
    return m;
}

/* zstd / xz through libarchive's read filter and raw format. Only the expected filter is
 * enabled, and the stream must be exactly one layer of it: data that is not (a gzip stream
 * labelled zstd, a zstd stream inside a zstd stream) would otherwise pass through the raw
 * format as it is. As with gzip, a broken stream is reported only after the tag was checked. */
static int32_t open_archive(stream *s, const char *in_path, const char *out_path, int codec,
                            cs_progress_fn progress, void *ctx, int64_t total, int64_t *done, int64_t *plain,
                            char *broken, size_t broken_cap, cs_error *err) {
    const char *name = codec == CS_CODEC_ZSTD ? "zstd" : "xz";
    struct archive *a = archive_read_new();
    if (!a) return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    archive_source src = {s, in_path, done, total, progress, ctx};
    int32_t status = CS_OK;
    struct archive_entry *entry = NULL;
    int r = codec == CS_CODEC_ZSTD ? archive_read_support_filter_zstd(a) : archive_read_support_filter_xz(a);
    if (r != ARCHIVE_OK) {   /* ARCHIVE_WARN: only through an external program */
        status = cs_fail(err, CS_ERR_ARCHIVE, archive_errno(a), "libarchive has no built-in %s decoder", name);
        goto done;
    }
    /* raw needs at least one byte of content; "empty" reads a stream that decodes to nothing
     * (an empty file sealed) as no entry at all. */
    if (archive_read_support_format_raw(a) != ARCHIVE_OK || archive_read_support_format_empty(a) != ARCHIVE_OK ||
        archive_read_set_read_callback(a, archive_feed) != ARCHIVE_OK ||
        archive_read_set_callback_data(a, &src) != ARCHIVE_OK) {
        status = archive_failed(a, s, "starting the decompressor", err);
        goto done;
    }
    int hr = ARCHIVE_FATAL;
    if (archive_read_open1(a) != ARCHIVE_OK || ((hr = archive_read_next_header(a, &entry)) != ARCHIVE_OK && hr != ARCHIVE_EOF)) {
        if (s->cb_status != CS_OK) { status = archive_failed(a, s, "reading", err); goto done; }
        snprintf(broken, broken_cap, "authentic object holds no readable %s stream: %s", name,
                 archive_error_string(a) ? archive_error_string(a) : "unrecognized data");
        goto drain;
    }
    int want = codec == CS_CODEC_ZSTD ? ARCHIVE_FILTER_ZSTD : ARCHIVE_FILTER_XZ;
    if (archive_filter_count(a) != 2 || archive_filter_code(a, 0) != want) {
        snprintf(broken, broken_cap, "authentic object is not one %s stream (libarchive sees %s)", name,
                 archive_filter_name(a, 0) ? archive_filter_name(a, 0) : "?");
        goto drain;
    }
    for (;;) {
        if (hr == ARCHIVE_EOF) break;   /* the stream holds no data */
        la_ssize_t n = archive_read_data(a, s->c, CS_CHUNK);
        if (n == 0) break;
        if (n < 0) {
            if (s->cb_status != CS_OK) { status = archive_failed(a, s, "reading", err); goto done; }
            snprintf(broken, broken_cap, "authentic object holds a corrupt %s stream: %s", name,
                     archive_error_string(a) ? archive_error_string(a) : "decoding failed");
            goto drain;
        }
        if ((status = open_write(s, out_path, s->c, (size_t)n, plain, err)) != CS_OK) goto done;
    }
    /* The stream ended: anything after it (libarchive stops at the end of the last frame)? */
drain:
    for (;;) {
        long m = open_next(s, in_path, done, err);
        if (m < 0) { status = err ? err->status : CS_ERR_IO; break; }
        if (m == 0) break;
        if (!broken[0]) snprintf(broken, broken_cap, "authentic object holds data after its %s stream", name);
    }
done:
    archive_read_free(a);
    return status;
}

int32_t cs_open_file_ex(const char *in_path, const char *out_path,
                        const void *key32, const void *iv12, const void *tag16,
                        int32_t codec, const void *mac_key,
                        cs_progress_fn progress, void *ctx,
                        cs_open_result *result, cs_error *err) {
    stream s;
    int32_t status = stream_begin(&s, in_path, out_path, key32, iv12, 0, err);
    if (status != CS_OK) return stream_end(&s, status, err);
    if (!tag16) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "missing tag"), err);
    if (codec != CS_CODEC_GZIP && codec != CS_CODEC_ZSTD && codec != CS_CODEC_XZ)
        return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "unknown codec %d", codec), err);
    if ((status = mac_begin(&s, mac_key, err)) != CS_OK) return stream_end(&s, status, err);

    int64_t total = file_size(s.in_fd), done = 0, plain = 0;
    char broken[256] = "";   /* keep decrypting to tell a wrong key from a broken stream */
    if (codec == CS_CODEC_GZIP)
        status = open_gzip(&s, in_path, out_path, progress, ctx, total, &done, &plain, broken, sizeof broken, err);
    else
        status = open_archive(&s, in_path, out_path, codec, progress, ctx, total, &done, &plain, broken, sizeof broken, err);
    if (status != CS_OK) return stream_end(&s, status, err);
    if (result) {
        memset(result, 0, sizeof *result);
        unsigned int mdlen = 16;
        EVP_DigestFinal_ex(s.md5, result->md5, &mdlen);
        result->object_bytes = done;
        result->plain_bytes = plain;
        if ((status = mac_final(&s, result->plain_mac, err)) != CS_OK) return stream_end(&s, status, err);
    }
    int m = 0;
    if (EVP_CIPHER_CTX_ctrl(s.cipher, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag16) != 1)
        return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM set tag"), err);
    if (EVP_DecryptFinal_ex(s.cipher, s.b, &m) != 1)
        return stream_end(&s, cs_fail(err, CS_ERR_AUTH, 0,
                                      "authentication tag does not verify"), err);
    if (broken[0])
        return stream_end(&s, cs_fail(err, codec == CS_CODEC_GZIP ? CS_ERR_ZLIB : CS_ERR_ARCHIVE, 0, "%s", broken), err);
    if (fsync(s.out_fd) != 0) return stream_end(&s, cs_fail_errno(err, errno, "flushing %s", out_path), err);
    return stream_end(&s, CS_OK, err);
}

int32_t cs_open_file(const char *in_path, const char *out_path,
                     const void *key32, const void *iv12, const void *tag16,
                     cs_progress_fn progress, void *ctx,
                     cs_open_result *result, cs_error *err) {
    return cs_open_file_ex(in_path, out_path, key32, iv12, tag16, CS_CODEC_GZIP, NULL, progress, ctx, result, err);
}
