/* libFuzzer target for opening a Laju envelope: cs_open_file_ex (CSupport/envelope_open.c)
 * decrypts AES-256-GCM and decompresses (gzip, zstd or xz), streaming file to file, and must leave
 * no plaintext behind unless the tag verified and the stream was whole.
 *
 * One source, two targets (scripts/fuzz.sh builds both with clang
 * -fsanitize=fuzzer,address,undefined against the CSupport sources):
 *
 *   fuzz-envelope (default): the input is what an AUTHENTIC object holds. Byte 0 picks the codec
 *     (see `codecs` below: gzip, zstd, xz), the rest is that codec's stream. The harness encrypts
 *     it with a fixed key and IV, so the tag is right and cs_open_file_ex really reaches the
 *     decompressor. Invariants: CS_OK, and then the output equals what the codec's own reference
 *     library decodes in one shot (zlib's inflate, libzstd, liblzma: not libarchive, which the core
 *     uses) and the result counts and MD5 match; or the codec's "damaged stream" status
 *     (CS_ERR_ZLIB for gzip, CS_ERR_ARCHIVE for zstd and xz) and the output file is gone. For gzip
 *     the reference must then reject the stream too; for zstd and xz the core may be stricter than
 *     the reference (it refuses data after the stream, for one), never more lenient. Never
 *     CS_ERR_AUTH (the object is authentic), never any other status.
 *
 *   fuzz-envelope-tamper (-DFUZZ_TAMPER): the object is NOT authentic. Byte 0 picks how it was
 *     damaged, bytes 1-2 where, the rest is the plaintext (a valid gzip stream is the interesting
 *     case: plaintext is written out before the tag can be checked). Invariant: CS_ERR_AUTH and no
 *     output file, whatever the damage and whatever the plaintext.
 *
 * Both: no file descriptor may stay open (checked each run), and libFuzzer's leak check and the
 * sanitizers catch the rest. Files live in a private directory on tmpfs (FUZZ_TMPDIR, else
 * /dev/shm), reused each run and removed at exit.
 */
#include "csupport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lzma.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

/* ------------------------------------------------------------------------------------------------
 * Codecs an envelope can hold. Byte 0 of the input picks one (modulo the count); row 0 is gzip so
 * that the first seeds (byte 0 = 0x00) keep meaning gzip. Seeds for the others start with 0x01
 * (zstd) and 0x02 (xz).
 * ---------------------------------------------------------------------------------------------- */
typedef struct codec {
    const char *name;
    int32_t id;      /* CS_CODEC_*, what cs_open_file_ex is given */
    int32_t damaged; /* the status of an authentic object holding a broken stream */
} codec;

static const codec codecs[] = {
    {"gzip", CS_CODEC_GZIP, CS_ERR_ZLIB},
    {"zstd", CS_CODEC_ZSTD, CS_ERR_ARCHIVE},
    {"xz", CS_CODEC_XZ, CS_ERR_ARCHIVE},
};
#define N_CODECS (sizeof codecs / sizeof codecs[0])

static const uint8_t KEY[32] = {0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae,
                                0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61,
                                0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4};
static const uint8_t IV[12] = {0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce,
                               0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88};

static char dir[256], in_path[300], out_path[300];
static int baseline_fd = -1;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant violated at %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void cleanup(void) {
    unlink(in_path);
    unlink(out_path);
    rmdir(dir);
}

/* The lowest free descriptor: if it grows between runs, the code under test leaked one. */
static int lowest_free_fd(void) {
    int fd = dup(0);
    if (fd >= 0) close(fd);
    return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *base = getenv("FUZZ_TMPDIR");
    if (!base || !*base) base = "/dev/shm";
    snprintf(dir, sizeof dir, "%s/laju-envelope-XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create a temp directory under %s: %s\n", base, strerror(errno));
        exit(1);
    }
    snprintf(in_path, sizeof in_path, "%s/object", dir);
    snprintf(out_path, sizeof out_path, "%s/plain", dir);
    atexit(cleanup);
    baseline_fd = lowest_free_fd();
    return 0;
}

/* AES-256-GCM with OpenSSL EVP directly (not through CSupport), as an independent sealer. */
static void encrypt(const uint8_t *key, const uint8_t *iv, const uint8_t *plain, size_t len,
                    uint8_t *cipher, uint8_t tag[16]) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    CHECK(c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
              EVP_EncryptInit_ex(c, NULL, NULL, key, iv) == 1 &&
              EVP_EncryptUpdate(c, cipher, &n, plain, (int)len) == 1 &&
              EVP_EncryptFinal_ex(c, cipher + n, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1,
          "encryption failed");
    CHECK((size_t)(n + fin) == len, "GCM changed the length");
    EVP_CIPHER_CTX_free(c);
}

static void write_file(const char *path, const uint8_t *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        CHECK(w > 0, "cannot write %s: %s", path, strerror(errno));
        off += (size_t)w;
    }
    close(fd);
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static int32_t open_envelope(const codec *k, const uint8_t key[32], const uint8_t iv[12],
                             const uint8_t tag[16], cs_open_result *result, cs_error *err) {
    unlink(out_path); /* cs_open_file_ex creates it exclusively */
    return cs_open_file_ex(in_path, out_path, key, iv, tag, k->id, NULL, NULL, NULL, result, err);
}

#ifndef FUZZ_TAMPER

/* What the object should open to: zlib's inflate over the whole stream at once, member after
 * member, nothing allowed after the last. Returns 0 and the plaintext in *out (malloc'ed), or -1
 * when zlib refuses the stream. */
static int reference_gunzip(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(inflateInit2(&z, 15 + 16) == Z_OK, "inflateInit2");
    size_t cap = 1 << 16, used = 0;
    uint8_t *buf = malloc(cap);
    CHECK(buf, "out of memory");
    z.next_in = (uint8_t *)data;
    z.avail_in = (uInt)len;
    int ok = -1;
    for (;;) {
        if (used == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            CHECK(buf, "out of memory");
        }
        z.next_out = buf + used;
        z.avail_out = (uInt)(cap - used);
        int zr = inflate(&z, Z_NO_FLUSH);
        used = cap - z.avail_out;
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0) {
                ok = 0;
                break;
            }
            inflateReset(&z); /* another member follows */
            continue;
        }
        if (zr == Z_OK) continue;
        if (zr == Z_BUF_ERROR && z.avail_out == 0) continue; /* room, not input, was short */
        break;                                               /* corrupt, or input ends early */
    }
    inflateEnd(&z);
    if (ok != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = used;
    return 0;
}

/* A growing output buffer for the references. */
typedef struct outbuf {
    uint8_t *p;
    size_t used, cap;
} outbuf;

static void outbuf_room(outbuf *o, size_t want) {
    if (o->cap - o->used >= want) return;
    while (o->cap - o->used < want) o->cap = o->cap ? o->cap * 2 : 1 << 16;
    o->p = realloc(o->p, o->cap);
    CHECK(o->p, "out of memory");
}

/* libzstd: frames one after another until the input ends, the last one complete. */
static int reference_unzstd(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len) {
    ZSTD_DCtx *d = ZSTD_createDCtx();
    CHECK(d, "ZSTD_createDCtx");
    outbuf o = {0};
    ZSTD_inBuffer in = {data, len, 0};
    size_t ret = 0;
    int ok = 0;
    while (in.pos < in.size) {
        outbuf_room(&o, 1 << 16);
        ZSTD_outBuffer ob = {o.p + o.used, o.cap - o.used, 0};
        ret = ZSTD_decompressStream(d, &ob, &in);
        o.used += ob.pos;
        if (ZSTD_isError(ret)) {
            ok = -1;
            break;
        }
        if (ob.pos == 0 && in.pos == in.size) break;
    }
    /* Flush what the last frame still holds. */
    while (ok == 0 && ret != 0) {
        outbuf_room(&o, 1 << 16);
        ZSTD_outBuffer ob = {o.p + o.used, o.cap - o.used, 0};
        ret = ZSTD_decompressStream(d, &ob, &in);
        o.used += ob.pos;
        if (ZSTD_isError(ret) || (ob.pos == 0 && ret != 0)) ok = -1;
    }
    ZSTD_freeDCtx(d);
    if (ok != 0) {
        free(o.p);
        return -1;
    }
    *out = o.p ? o.p : malloc(1);
    *out_len = o.used;
    return 0;
}

/* liblzma: .xz streams, concatenated, stream padding allowed, as xz -dc reads them. */
static int reference_unxz(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len) {
    lzma_stream z = LZMA_STREAM_INIT;
    CHECK(lzma_stream_decoder(&z, UINT64_MAX, LZMA_CONCATENATED) == LZMA_OK, "lzma_stream_decoder");
    outbuf o = {0};
    z.next_in = data;
    z.avail_in = len;
    int ok = -1;
    for (;;) {
        outbuf_room(&o, 1 << 16);
        z.next_out = o.p + o.used;
        z.avail_out = o.cap - o.used;
        size_t before = z.avail_out;
        lzma_ret r = lzma_code(&z, z.avail_in ? LZMA_RUN : LZMA_FINISH);
        o.used += before - z.avail_out;
        if (r == LZMA_STREAM_END) {
            ok = 0;
            break;
        }
        if (r != LZMA_OK) break;
    }
    lzma_end(&z);
    if (ok != 0) {
        free(o.p);
        return -1;
    }
    *out = o.p;
    *out_len = o.used;
    return 0;
}

static int reference_decode(const codec *k, const uint8_t *data, size_t len, uint8_t **out,
                            size_t *out_len) {
    switch (k->id) {
    case CS_CODEC_ZSTD: return reference_unzstd(data, len, out, out_len);
    case CS_CODEC_XZ: return reference_unxz(data, len, out, out_len);
    default: return reference_gunzip(data, len, out, out_len);
    }
}

static void md5(const uint8_t *data, size_t len, uint8_t out[16]) {
    unsigned int n = 16;
    CHECK(EVP_Digest(data, len, out, &n, EVP_md5(), NULL) == 1, "MD5");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const codec *k = &codecs[data[0] % N_CODECS];
    const uint8_t *stream = data + 1;
    size_t len = size - 1;

    uint8_t *cipher = malloc(len ? len : 1), tag[16];
    CHECK(cipher, "out of memory");
    encrypt(KEY, IV, stream, len, cipher, tag);
    write_file(in_path, cipher, len);

    cs_open_result result;
    cs_error err;
    memset(&err, 0, sizeof err);
    int32_t status = open_envelope(k, KEY, IV, tag, &result, &err);

    uint8_t *expected = NULL;
    size_t expected_len = 0;
    int reference = reference_decode(k, stream, len, &expected, &expected_len);

    CHECK(status != CS_ERR_AUTH, "an authentic %s envelope failed authentication: %s", k->name,
          err.message);
    CHECK(status == CS_OK || status == k->damaged, "unexpected status %d for %s: %s", status,
          k->name, err.message);
    if (status == CS_OK) {
        CHECK(reference == 0, "opened a %s stream that its reference library rejects", k->name);
        struct stat st;
        CHECK(stat(out_path, &st) == 0, "CS_OK but no output file");
        CHECK((size_t)st.st_size == expected_len, "output has %lld bytes, the reference gives %zu",
              (long long)st.st_size, expected_len);
        CHECK(result.plain_bytes == (int64_t)expected_len, "plain_bytes %lld, output %zu",
              (long long)result.plain_bytes, expected_len);
        CHECK(result.object_bytes == (int64_t)len, "object_bytes %lld, object %zu",
              (long long)result.object_bytes, len);
        uint8_t want[16];
        md5(cipher, len, want);
        CHECK(memcmp(want, result.md5, 16) == 0, "MD5 of the object differs");
        if (expected_len) {
            uint8_t *got = malloc(expected_len);
            CHECK(got, "out of memory");
            int fd = open(out_path, O_RDONLY | O_CLOEXEC);
            CHECK(fd >= 0, "cannot read the output");
            size_t off = 0;
            while (off < expected_len) {
                ssize_t r = read(fd, got + off, expected_len - off);
                CHECK(r > 0, "short output");
                off += (size_t)r;
            }
            close(fd);
            CHECK(memcmp(got, expected, expected_len) == 0, "output differs from the reference's");
            free(got);
        }
        unlink(out_path);
    } else {
        CHECK(reference != 0 || k->id != CS_CODEC_GZIP, "refused a %s stream that zlib accepts: %s",
              k->name, err.message);
        CHECK(!exists(out_path), "a damaged %s stream left the output file behind", k->name);
        CHECK(err.status == status, "err.status %d for status %d", err.status, status);
    }
    free(expected);
    free(cipher);
    CHECK(lowest_free_fd() == baseline_fd, "a file descriptor leaked");
    return 0;
}

#else /* FUZZ_TAMPER */

enum { FLIP_CIPHER, FLIP_TAG, TRUNCATE, APPEND, WRONG_IV, WRONG_KEY, RAW_CIPHER, N_DAMAGE };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int damage = data[0] % N_DAMAGE;
    size_t where = (size_t)data[1] | (size_t)data[2] << 8;
    const uint8_t *plain = data + 3;
    size_t len = size - 3;

    uint8_t *cipher = malloc(len + 16), tag[16], key[32], iv[12];
    CHECK(cipher, "out of memory");
    memcpy(key, KEY, 32);
    memcpy(iv, IV, 12);
    encrypt(KEY, IV, plain, len, cipher, tag);
    size_t object_len = len;
    if ((damage == FLIP_CIPHER || damage == TRUNCATE) && len == 0) damage = FLIP_TAG;
    switch (damage) {
    case FLIP_CIPHER: cipher[where % len] ^= (uint8_t)(1u << (where >> 13)); break;
    case FLIP_TAG: tag[where % 16] ^= (uint8_t)(1u << (where >> 13)); break;
    case TRUNCATE: object_len = len - 1 - where % len; break;
    case APPEND:
        for (size_t i = 0; i <= where % 16; i++) cipher[object_len++] = (uint8_t)(where >> 4);
        break;
    case WRONG_IV: iv[where % 12] ^= (uint8_t)(1u << (where >> 13)); break;
    case WRONG_KEY: key[where % 32] ^= (uint8_t)(1u << (where >> 13)); break;
    case RAW_CIPHER: /* the input itself as the object, under a tag made for something else */
        memcpy(cipher, plain, len);
        tag[where % 16] ^= 0x80;
        break;
    }
    write_file(in_path, cipher, object_len);

    cs_open_result result;
    cs_error err;
    memset(&err, 0, sizeof err);
    int32_t status = open_envelope(&codecs[0], key, iv, tag, &result, &err);
    CHECK(status == CS_ERR_AUTH, "damage %d: status %d instead of CS_ERR_AUTH: %s", damage, status,
          err.message);
    CHECK(!exists(out_path), "damage %d: unauthenticated plaintext left in the output file",
          damage);
    free(cipher);
    CHECK(lowest_free_fd() == baseline_fd, "a file descriptor leaked");
    return 0;
}

#endif
