/*
 * csupport.h: the one narrow ABI between laju-backup's Swift code and the C libraries it uses
 * (SQLite, zlib, libarchive, OpenSSL's libcrypto, libcurl).
 *
 * Rules that keep this boundary small and safe to call from Swift:
 *   - only <stddef.h> and <stdint.h> are included, so no system type leaks into Swift;
 *   - every symbol is prefixed cs_; handles are opaque; buffers are `const void *` / `void *`;
 *   - every fallible call returns a cs_status and fills a caller-owned cs_error with the library's
 *     own code and message, so Swift can build a typed error without calling back into C;
 *   - no variadic function crosses the boundary (Swift cannot call them).
 */
#ifndef CSUPPORT_H
#define CSUPPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------
 * Status and errors
 * ---------------------------------------------------------------------------------------------- */

/* Status codes returned by every fallible cs_ call. Plain integers (not an enum) so that the
 * values are stable across compilers and import into Swift as Int32 constants. cs_error.lib_code
 * carries the failing library's own code: errno, SQLite's extended result code, zlib's code,
 * ERR_get_error(), the CURLcode or archive_errno(). */
#define CS_OK            0
#define CS_ERR_ARG       1  /* a caller bug: bad argument */
#define CS_ERR_IO        2  /* read/write/open failed; lib_code holds errno */
#define CS_ERR_NOSPC     3  /* ENOSPC or EDQUOT while writing */
#define CS_ERR_SQLITE    4  /* lib_code holds the extended SQLite result code */
#define CS_ERR_NOTDB     5  /* the file is not a SQLite database */
#define CS_ERR_BUSY      6  /* the database stayed locked for longer than allowed */
#define CS_ERR_ZLIB      7  /* a gzip/zlib stream is corrupt or truncated; lib_code: zlib's code */
#define CS_ERR_CRYPTO    8  /* an OpenSSL call failed; lib_code holds ERR_get_error() */
#define CS_ERR_AUTH      9  /* the AES-GCM tag did not verify */
#define CS_ERR_CURL      10 /* a transfer failed; lib_code holds the CURLcode */
#define CS_ERR_NOMEM     11
#define CS_ERR_CANCELLED 12 /* a progress callback asked to stop */
#define CS_ERR_ARCHIVE   13 /* a zstd/xz stream is corrupt or truncated, or libarchive failed */

/* SQLite step results, re-exported because the SQLite macros are not visible to Swift. */
#define CS_ROW  100
#define CS_DONE 101

#define CS_MESSAGE_MAX 512

/* Filled by a failing call. `message` is NUL-terminated, human-readable, and never contains key
 * material or credentials (nothing secret is ever passed to a formatting call). */
typedef struct cs_error {
    int32_t status;
    int64_t lib_code;
    char message[CS_MESSAGE_MAX];
} cs_error;

/* Called during long operations. Return 0 to go on, non-zero to cancel (CS_ERR_CANCELLED). */
typedef int32_t (*cs_progress_fn)(void *ctx, int64_t done, int64_t total);

/* ------------------------------------------------------------------------------------------------
 * Randomness and digests (OpenSSL EVP)
 * ---------------------------------------------------------------------------------------------- */

#define CS_DIGEST_MD5    1
#define CS_DIGEST_SHA256 2

typedef struct cs_digest cs_digest;

/* Fills `out` with `len` bytes from OpenSSL's CSPRNG (RAND_bytes). */
int32_t cs_random_bytes(void *out, size_t len, cs_error *err);

cs_digest *cs_digest_new(int32_t algorithm);
int32_t cs_digest_update(cs_digest *d, const void *data, size_t len);
/* Writes the digest into `out` (16 bytes for MD5, 32 for SHA-256); returns its length, or -1. */
int32_t cs_digest_final(cs_digest *d, void *out, size_t out_cap);
void cs_digest_free(cs_digest *d);

/* Digest of a byte range of an open file (length -1: to the end), without loading it in memory.
 * Used for Content-MD5 / x-amz-content-sha256 of multipart parts and for checking objects. */
int32_t cs_digest_fd_range(int32_t algorithm, int32_t fd, int64_t offset, int64_t length, void *out,
                           size_t out_cap, cs_error *err);

/* HMAC-SHA256 (the SigV4 signing primitive). `out` receives 32 bytes. */
int32_t cs_hmac_sha256(const void *key, size_t key_len, const void *data, size_t data_len,
                       void *out, cs_error *err);

/* HKDF-SHA256 (RFC 5869, extract then expand) through OpenSSL's EVP_KDF: derives `out_len`
 * (1..8160) bytes from the input key material, an optional salt and a purpose label (`info`), so
 * that each use of the encryption key (a MAC of the plaintext, ids...) gets a key of its own. */
int32_t cs_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                       const void *info, size_t info_len, void *out, size_t out_len, cs_error *err);

/* ------------------------------------------------------------------------------------------------
 * AES-256-GCM, one shot (EVP). For small buffers and for the test vectors; objects use the
 * streaming envelope below.
 * ---------------------------------------------------------------------------------------------- */

int32_t cs_aes256gcm_encrypt(const void *key32, const void *iv, size_t iv_len, const void *aad,
                             size_t aad_len, const void *plain, size_t len, void *cipher_out,
                             void *tag_out, size_t tag_len, cs_error *err);

/* Returns CS_ERR_AUTH when the tag does not verify; `plain_out` must then be discarded. */
int32_t cs_aes256gcm_decrypt(const void *key32, const void *iv, size_t iv_len, const void *aad,
                             size_t aad_len, const void *cipher, size_t len, void *plain_out,
                             const void *tag, size_t tag_len, cs_error *err);

/* Streaming AES-256-GCM over one message fed in pieces: for messages too large to hold at once
 * (the manifest of a large database's restore point, 36 bytes a page), so that memory stays
 * bounded. `encrypt` 1 seals, 0 opens. The output of an update is as long as its input and may
 * be the input. A decrypting caller must not act on the plaintext before cs_gcm_final has
 * verified the tag (CS_ERR_AUTH otherwise). */
typedef struct cs_gcm cs_gcm;

cs_gcm *cs_gcm_new(int32_t encrypt, const void *key32, const void *iv, size_t iv_len,
                   const void *aad, size_t aad_len, cs_error *err);
int32_t cs_gcm_update(cs_gcm *g, const void *in, size_t len, void *out, cs_error *err);
/* Sealing: writes the tag into `tag`. Opening: checks `tag` (CS_ERR_AUTH when it does not
 * verify). */
int32_t cs_gcm_final(cs_gcm *g, void *tag, size_t tag_len, cs_error *err);
void cs_gcm_free(cs_gcm *g);

/* ------------------------------------------------------------------------------------------------
 * The Laju envelope: the file compressed (gzip, zstd or xz) then encrypted with AES-256-GCM
 * (12-byte IV, 16-byte tag, no AAD, tag not appended), streamed file to file in bounded memory,
 * with the digests of the object (MD5, optionally SHA-256 and per-part digests) and the MAC of the
 * plaintext computed in the same pass.
 * ---------------------------------------------------------------------------------------------- */

typedef struct cs_seal_result {
    uint8_t tag[16];
    uint8_t md5[16]; /* MD5 of the ciphertext, i.e. of the object as stored */
    int64_t plain_bytes;
    int64_t object_bytes;  /* ciphertext length = compressed length */
    uint8_t sha256[32];    /* SHA-256 of the object, when cs_seal_options.sha256 asked for it */
    uint8_t plain_mac[32]; /* HMAC-SHA256 of the plaintext, when cs_seal_options.mac_key is set */
} cs_seal_result;

/* Compression inside the envelope. gzip is the Laju format (zlib, parallel deflate); zstd and xz
 * go through libarchive's write/read filters with its raw format (a bare compressed stream, no
 * archive container). */
#define CS_CODEC_GZIP 1
#define CS_CODEC_ZSTD 2
#define CS_CODEC_XZ   3

/* Called once per finished part of the object, in order, from the sealing thread: `index` counts
 * from 0, every part but the last is `part_size` bytes. `sha256` is NULL unless asked for.
 * Return 0 to go on, non-zero to cancel. */
typedef int32_t (*cs_part_fn)(void *ctx, int64_t index, int64_t offset, int64_t length,
                              const void *md5, const void *sha256);

typedef struct cs_seal_options {
    int32_t codec;       /* CS_CODEC_* */
    int32_t level;       /* gzip 0..9 (-1: zlib's default), zstd 1..19, xz 0..9 */
    int32_t threads;     /* 1..64: gzip blocks deflated at once, zstd/xz encoder threads */
    int64_t part_size;   /* > 0: digests of every part_size piece of the object, via part_fn */
    int32_t sha256;      /* 1: SHA-256 of the whole object and of each part too */
    const void *mac_key; /* NULL, or 32 bytes: HMAC-SHA256 of the plaintext as it is read */
    cs_part_fn part_fn;
    void *part_ctx;
} cs_seal_options;

/* Seals `in_path` into a new file `out_path` (created exclusively, mode 0600) with the codec,
 * level and threads of `options`, and computes the digests an upload needs, all in the one pass
 * over the input. On failure `out_path` is removed. A gzip object does not depend on `threads`
 * (the deflate pool's blocks are cut the same way whatever the number of workers). */
int32_t cs_seal_file_ex(const char *in_path, const char *out_path, const void *key32,
                        const void *iv12, const cs_seal_options *options, cs_progress_fn progress,
                        void *ctx, cs_seal_result *result, cs_error *err);

typedef struct cs_open_result {
    uint8_t md5[16]; /* MD5 of the object bytes read (filled even when the tag fails) */
    int64_t object_bytes;
    int64_t plain_bytes;
    uint8_t plain_mac[32]; /* HMAC-SHA256 of the plaintext written, when a mac_key was given */
} cs_open_result;

/* Opens an object: decrypts and decompresses `in_path` into a new file `out_path` (created
 * exclusively, mode 0600). `codec` is the one the object's metadata names, and the stream must be
 * of that kind; with `mac_key` (32 bytes) the HMAC-SHA256 of the plaintext is computed as it is
 * written. Returns CS_ERR_AUTH when the tag does not verify (wrong key, wrong IV/tag, tampered or
 * truncated object); CS_ERR_ZLIB (gzip) or CS_ERR_ARCHIVE (zstd, xz) when an authentic object
 * holds a corrupt, truncated or mislabelled stream. On any failure `out_path` is removed, so
 * unauthenticated plaintext never outlives the call. */
int32_t cs_open_file_ex(const char *in_path, const char *out_path, const void *key32,
                        const void *iv12, const void *tag16, int32_t codec, const void *mac_key,
                        cs_progress_fn progress, void *ctx, cs_open_result *result, cs_error *err);

/* ------------------------------------------------------------------------------------------------
 * zlib blocks: independent small buffers (pages of incremental backups), compressed one by one
 * with a reusable handle (deflateReset/inflateReset instead of an init per block).
 * ---------------------------------------------------------------------------------------------- */

typedef struct cs_zblock cs_zblock;

/* `level` 0..9 or -1 (zlib's default). NULL on failure (err filled). */
cs_zblock *cs_zblock_new(int32_t level, cs_error *err);
void cs_zblock_free(cs_zblock *z);
/* One zlib (RFC 1950) stream of `in` into `out`. CS_ERR_ZLIB when it does not fit in `out_cap`
 * (the caller then stores the block uncompressed). */
int32_t cs_zblock_compress(cs_zblock *z, const void *in, size_t in_len, void *out, size_t out_cap,
                           size_t *out_len, cs_error *err);
/* Inflates one complete zlib stream; CS_ERR_ZLIB when it is corrupt, does not end exactly at the
 * end of `in`, or would exceed `out_cap`. `*out_len` is what was produced. */
int32_t cs_zblock_decompress(cs_zblock *z, const void *in, size_t in_len, void *out, size_t out_cap,
                             size_t *out_len, cs_error *err);

/* ------------------------------------------------------------------------------------------------
 * Files
 * ---------------------------------------------------------------------------------------------- */

/* Copies `src` into a new file `dst` (created exclusively, mode 0600) with copy_file_range when
 * the kernel can, and fsyncs it. On failure `dst` is removed. */
int32_t cs_file_copy(const char *src, const char *dst, cs_progress_fn progress, void *ctx,
                     cs_error *err);

/* fsync(2) of a file or directory by path: makes a rename durable. */
int32_t cs_fsync_path(const char *path, cs_error *err);

/* ------------------------------------------------------------------------------------------------
 * SQLite: online snapshot and a minimal statement API for the catalog
 * ---------------------------------------------------------------------------------------------- */

typedef struct cs_snapshot_result {
    int64_t pages;
    int64_t page_size;
    int32_t attempts; /* 1 unless the source stayed busy and the copy was retried */
} cs_snapshot_result;

/* Consistent copy of the live database `src_path` into a new database `dst_path` with the
 * sqlite3_backup API, all pages in one step (one read transaction, so concurrent writers cannot
 * make it restart forever). The source is opened read-only: a wrong path is an error, never a new
 * empty database. Busy sources are retried for up to `busy_timeout_ms`. */
int32_t cs_snapshot(const char *src_path, const char *dst_path, int32_t busy_timeout_ms,
                    cs_snapshot_result *result, cs_error *err);

typedef struct cs_activate_result {
    int64_t pages; /* pages of the database put in place */
    int64_t page_size;
    int64_t safety_pages; /* pages of the safety copy of the previous live state */
} cs_activate_result;

/* Replaces the content of the live database `live_path` with the verified database `src_path`,
 * in place, through the backup API: one write transaction on the live file, so its readers see
 * the old state or the new one, never a mix, and no file is swapped under an open handle.
 * First the live database's write lock is taken (waiting up to busy_timeout_ms, as the
 * application's writers wait); while it is held, so that no commit can slip in between, a
 * consistent copy of the live state is written to `safety_path` (an empty file the caller created
 * exclusively, with the mode it wants); then the pages are replaced. CS_ERR_BUSY when the lock
 * cannot be had in time: then nothing changed and no safety copy exists. On any failure the live
 * database is unchanged and `safety_path` is removed. */
int32_t cs_activate(const char *src_path, const char *live_path, const char *safety_path,
                    int32_t busy_timeout_ms, cs_activate_result *result, cs_error *err);

typedef struct cs_db cs_db;
typedef struct cs_stmt cs_stmt;

#define CS_OPEN_READONLY  1
#define CS_OPEN_READWRITE 2
#define CS_OPEN_CREATE    4
/* Read a file nobody else uses, without locks or side files (-wal/-shm): the restore candidate. */
#define CS_OPEN_IMMUTABLE 8

#define CS_TYPE_INTEGER 1
#define CS_TYPE_FLOAT   2
#define CS_TYPE_TEXT    3
#define CS_TYPE_BLOB    4
#define CS_TYPE_NULL    5

int32_t cs_db_open(const char *path, int32_t flags, int32_t busy_timeout_ms, cs_db **out,
                   cs_error *err);
void cs_db_close(cs_db *db);
/* Runs one or more statements that return no rows of interest. */
int32_t cs_db_exec(cs_db *db, const char *sql, cs_error *err);
int64_t cs_db_changes(cs_db *db);

int32_t cs_stmt_prepare(cs_db *db, const char *sql, cs_stmt **out, cs_error *err);
int32_t cs_stmt_bind_text(cs_stmt *st, int32_t index, const char *utf8, cs_error *err);
int32_t cs_stmt_bind_int64(cs_stmt *st, int32_t index, int64_t value, cs_error *err);
int32_t cs_stmt_bind_null(cs_stmt *st, int32_t index, cs_error *err);
/* Returns CS_ROW, CS_DONE, or an error status. */
int32_t cs_stmt_step(cs_stmt *st, cs_error *err);
int32_t cs_stmt_reset(cs_stmt *st);
int32_t cs_stmt_column_count(cs_stmt *st);
int32_t cs_stmt_column_type(cs_stmt *st, int32_t index);
const char *cs_stmt_column_name(cs_stmt *st, int32_t index);
int64_t cs_stmt_column_int64(cs_stmt *st, int32_t index);
double cs_stmt_column_double(cs_stmt *st, int32_t index);
/* Valid until the next step/reset/finalize. NULL for SQL NULL. */
const char *cs_stmt_column_text(cs_stmt *st, int32_t index);
void cs_stmt_finalize(cs_stmt *st);

/* The SQLite library version string, for --version and bug reports. */
const char *cs_sqlite_version(void);

/* ------------------------------------------------------------------------------------------------
 * HTTP (libcurl): one request per call, no variadic curl_easy_setopt reaching Swift.
 * ---------------------------------------------------------------------------------------------- */

typedef struct cs_http cs_http; /* one reusable easy handle: keeps connections alive */

typedef struct cs_http_request {
    const char *method; /* "GET", "PUT", "HEAD", "POST", "DELETE" */
    const char *url;
    const char *const *headers; /* "Name: value" strings */
    size_t header_count;
    /* Body, either from memory ... */
    const void *body;
    size_t body_length;
    /* ... or, when body_fd >= 0, `body_fd_length` bytes of an open file from `body_fd_offset`. */
    int32_t body_fd;
    int64_t body_fd_offset;
    int64_t body_fd_length;
    /* Response body: when response_fd >= 0 and the status is 2xx it is written to that fd;
     * otherwise (and always for error statuses) up to response_buffer_cap bytes are kept in
     * memory for the caller to read with cs_http_response_body. */
    int32_t response_fd;
    /* Where in response_fd the body starts (pwrite; a resumed download passes the bytes it has).
     * A 200 answer to a ranged request truncates the file and starts over at 0. */
    int64_t response_fd_offset;
    size_t response_buffer_cap;
    int32_t connect_timeout_s; /* 0: default 15 */
    int32_t low_speed_time_s;  /* abort when under low_speed_limit B/s this long; 0: 60 */
    int32_t low_speed_limit;   /* 0: 1 byte/s */
    int32_t total_timeout_s;   /* 0: none */
    /* Deadline that grows with the transfer: abort (CS_ERR_CURL, lib_code 28 = timed out) when
     * the request has run longer than deadline_base_s + (bytes to move) / min_rate seconds, the
     * bytes being the larger of the upload size and the announced download size. 0: off. */
    int64_t min_rate;
    int32_t deadline_base_s;
    cs_progress_fn progress; /* optional */
    void *progress_ctx;
} cs_http_request;

typedef struct cs_http_result {
    int32_t status;         /* HTTP status, 0 when no response was received */
    int64_t bytes_received; /* body bytes received (written to fd or buffered) */
    int32_t body_truncated; /* 1 when a buffered body exceeded response_buffer_cap */
    int64_t bytes_sent;
    double total_seconds;
} cs_http_result;

cs_http *cs_http_new(void);
void cs_http_free(cs_http *h);
/* Performs one request. A transport failure returns CS_ERR_CURL (lib_code = CURLcode, message =
 * curl's error buffer); an HTTP error status is NOT a failure here: check result->status. */
int32_t cs_http_perform(cs_http *h, const cs_http_request *req, cs_http_result *result,
                        cs_error *err);
/* Response headers of the last request, as "Name: value" lines joined by "\n" (lowercase names). */
const char *cs_http_response_headers(cs_http *h);
/* In-memory response body of the last request and its length. */
const void *cs_http_response_body(cs_http *h, size_t *length);
/* libcurl's version string. */
const char *cs_http_version(void);

/* ------------------------------------------------------------------------------------------------
 * For tests and fuzzing only: product code calls cs_seal_file_ex and cs_open_file_ex. These are
 * the gzip-only entry points from before the codec could be chosen, kept as thin wrappers over
 * the _ex functions for the unit tests (GzipPoolTests) and the fuzz harnesses.
 * ---------------------------------------------------------------------------------------------- */

/* cs_seal_file_ex with gzip at `level` (0..9, -1: zlib's default) on `threads` (1..64) deflate
 * workers, and no digests beyond the MD5. */
int32_t cs_seal_file(const char *in_path, const char *out_path, const void *key32, const void *iv12,
                     int32_t level, int32_t threads, cs_progress_fn progress, void *ctx,
                     cs_seal_result *result, cs_error *err);

/* cs_open_file_ex for a gzip object, without a MAC. */
int32_t cs_open_file(const char *in_path, const char *out_path, const void *key32, const void *iv12,
                     const void *tag16, cs_progress_fn progress, void *ctx, cs_open_result *result,
                     cs_error *err);

#ifdef __cplusplus
}
#endif

#endif /* CSUPPORT_H */
