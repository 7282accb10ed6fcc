/* The Laju envelope, streamed: file -> gzip (zlib) -> AES-256-GCM -> file, and back.
 *
 * Memory is three CS_CHUNK buffers per stream whatever the file size. The MD5 of the object bytes
 * (the ciphertext) is computed in the same pass, because the format stores it as `checksum` and S3
 * wants it as Content-MD5 before the upload starts. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
    while (len > 0) {
        size_t piece = len > CS_CHUNK ? CS_CHUNK : len;
        int n = 0;
        if (EVP_EncryptUpdate(s->cipher, s->c, &n, gz, (int)piece) != 1)
            return cs_fail_openssl(err, "AES-256-GCM encrypt");
        EVP_DigestUpdate(s->md5, s->c, (size_t)n);
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
 * scale with the cores while memory stays bounded (2 batches of `threads` blocks). */
#define CS_DICT (32u * 1024u)

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
    pthread_t thread;
    int threaded;
} block;

static void *deflate_block(void *arg) {
    block *b = arg;
    z_stream z;
    memset(&z, 0, sizeof z);
    b->failed = 1;
    /* windowBits -15: raw deflate; the gzip header and trailer are written once around all blocks. */
    if (deflateInit2(&z, b->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    if (b->dict_len && deflateSetDictionary(&z, b->dict, (uInt)b->dict_len) != Z_OK) {
        deflateEnd(&z);
        return NULL;
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

int32_t cs_seal_file(const char *in_path, const char *out_path,
                     const void *key32, const void *iv12, int32_t level, int32_t threads,
                     cs_progress_fn progress, void *ctx,
                     cs_seal_result *result, cs_error *err) {
    stream s;
    int32_t status = stream_begin(&s, in_path, out_path, key32, iv12, 1, err);
    if (status != CS_OK) return stream_end(&s, status, err);
    if (level < -1 || level > 9) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "compression level must be 0..9"), err);
    if (threads < 1 || threads > 64) return stream_end(&s, cs_fail(err, CS_ERR_ARG, 0, "threads must be 1..64"), err);

    const int n = threads;
    const size_t out_cap = compressBound(CS_CHUNK) + 64;
    block *blocks = calloc((size_t)(2 * n), sizeof *blocks);
    unsigned char *arena = NULL;
    if (blocks) arena = malloc((size_t)(2 * n) * (CS_CHUNK + out_cap + CS_DICT));
    if (!blocks || !arena) {
        free(blocks);
        return stream_end(&s, cs_fail(err, CS_ERR_NOMEM, 0, "out of memory"), err);
    }
    for (int i = 0; i < 2 * n; i++) {
        unsigned char *base = arena + (size_t)i * (CS_CHUNK + out_cap + CS_DICT);
        blocks[i].in = base;
        blocks[i].out = base + CS_CHUNK;
        blocks[i].dict = base + CS_CHUNK + out_cap;
        blocks[i].out_cap = out_cap;
        blocks[i].level = level;
    }

    int64_t total = file_size(s.in_fd), done = 0, written = 0;
    uint32_t crc = 0;
    /* gzip header: no name, no mtime, OS = Unix, as Node's zlib.createGzip() writes it. */
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    status = seal_emit(&s, header, sizeof header, &written, err);

    const block *last_read = NULL;
    int eof = 0, prev_k = 0, cur = 0;
    block *prev = NULL;
    while (status == CS_OK) {
        block *batch = blocks + cur * n;
        int k = 0;
        /* 1. Read the next batch (each block gets the 32 KiB before it as dictionary). */
        while (!eof && k < n) {
            block *b = &batch[k];
            long got = read_block(s.in_fd, b->in);
            if (got < 0) { status = cs_fail_errno(err, errno, "reading %s", in_path); break; }
            if (got == 0) { eof = 1; break; }
            b->in_len = (size_t)got;
            b->dict_len = 0;
            if (last_read) {
                b->dict_len = last_read->in_len < CS_DICT ? last_read->in_len : CS_DICT;
                memcpy(b->dict, last_read->in + last_read->in_len - b->dict_len, b->dict_len);
            }
            last_read = b;
            k++;
            if ((size_t)got < CS_CHUNK) eof = 1;
        }
        /* 2. Compress it in parallel ... */
        for (int i = 0; i < k; i++) {
            batch[i].threaded = (k > 1) && pthread_create(&batch[i].thread, NULL, deflate_block, &batch[i]) == 0;
            if (!batch[i].threaded) deflate_block(&batch[i]);
        }
        /* 3. ... while the previous batch is encrypted, hashed and written, in order. */
        for (int i = 0; i < prev_k && status == CS_OK; i++) {
            block *b = &prev[i];
            if (b->failed) { status = cs_fail(err, CS_ERR_ZLIB, 0, "deflate failed"); break; }
            crc = (uint32_t)crc32_combine(crc, b->crc, (z_off_t)b->in_len);
            done += (int64_t)b->in_len;
            status = seal_emit(&s, b->out, b->out_len, &written, err);
            if (status == CS_OK && progress && progress(ctx, done, total) != 0)
                status = cs_fail(err, CS_ERR_CANCELLED, 0, "cancelled");
        }
        for (int i = 0; i < k; i++)
            if (batch[i].threaded) pthread_join(batch[i].thread, NULL);
        if (k == 0 && prev_k == 0) break;
        prev = batch;
        prev_k = k;
        cur ^= 1;
    }
    if (status == CS_OK) {
        /* An empty final block closes the deflate stream; then CRC-32 and size, little-endian. */
        unsigned char tail[10] = {0x03, 0x00};
        for (int i = 0; i < 4; i++) tail[2 + i] = (unsigned char)(crc >> (8 * i));
        for (int i = 0; i < 4; i++) tail[6 + i] = (unsigned char)((uint64_t)done >> (8 * i));
        status = seal_emit(&s, tail, sizeof tail, &written, err);
    }
    free(arena);
    free(blocks);
    if (status != CS_OK) return stream_end(&s, status, err);

    int fin = 0;
    if (EVP_EncryptFinal_ex(s.cipher, s.c, &fin) != 1)
        return stream_end(&s, cs_fail_openssl(err, "AES-256-GCM final"), err);
    /* GCM is a stream mode: Final emits nothing, and the format has no room for stray bytes. */
    if (fin != 0) return stream_end(&s, cs_fail(err, CS_ERR_CRYPTO, fin, "unexpected GCM trailer"), err);
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
