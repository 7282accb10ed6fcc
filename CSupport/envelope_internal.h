/* The envelope's internal interface: the stream context shared by the five files that seal and
 * open objects, and the functions they call across files. Never seen by Swift.
 *
 *   envelope.c        the stream: files, buffers, AES-256-GCM, MD5/SHA-256/MAC, part digests
 *   envelope_seal.c   cs_seal_file_ex: options, digests, codec, tag
 *   envelope_open.c   cs_open_file_ex: codec (gunzip itself), tag, then the stream's verdict
 *   deflate_pool.c    gzip sealing: pigz-style parallel deflate on a pool of workers
 *   archive_codec.c   zstd and xz, both ways, through libarchive's raw format
 *   envelope_compat.c cs_seal_file / cs_open_file: gzip-only wrappers, for tests and fuzzing
 */
#ifndef CS_ENVELOPE_INTERNAL_H
#define CS_ENVELOPE_INTERNAL_H

#include "internal.h"

#include <openssl/evp.h>

/* One object being sealed (plaintext file -> codec -> AES-256-GCM -> object file) or opened (the
 * reverse). Everything the store needs about the object is computed in the same pass over it, so
 * the context carries the cipher, the digests of the object as stored and the MAC of the
 * plaintext along with the two files. Filled by cs_stream_begin and the entry points, released by
 * cs_stream_end, which also removes the output when the call failed. */
typedef struct cs_stream {
    /* The two files. Paths are kept for messages; out_path is unlinked on failure. */
    int in_fd;
    int out_fd;
    const char *in_path;
    const char *out_path;

    /* Three CS_CHUNK buffers (c has room for one more cipher block). Sealing: `a` is what the
     * archive codec reads into, `c` the ciphertext. Opening: `a` the object read, `b` its
     * decryption, `c` the decompressed plaintext. */
    unsigned char *a, *b, *c;

    EVP_CIPHER_CTX *cipher; /* AES-256-GCM, 12-byte IV, no AAD: encrypting or decrypting */
    EVP_MD_CTX *md5;        /* MD5 of the object bytes, always (the format's `checksum`) */

    /* Sealing only: SHA-256 of the whole object when asked (signed payloads), and the digests of
     * each part_size piece of it (multipart Content-MD5), handed to part_fn as each part ends. */
    EVP_MD_CTX *sha;
    EVP_MD_CTX *part_md5, *part_sha;
    int64_t part_size, part_fill, part_index, part_offset;
    cs_part_fn part_fn;
    void *part_ctx;
    int64_t written; /* object bytes written so far */

    /* Both ways: HMAC-SHA256 of the plaintext, when a MAC key was given. */
    EVP_MAC_CTX *mac;

    /* Progress, reported to `progress` as (done, total): sealing counts plaintext bytes
     * compressed, opening object bytes read; total is the input file's size. */
    cs_progress_fn progress;
    void *progress_ctx;
    int64_t total;
    int64_t done;

    /* Opening only: plaintext bytes written, and why an authentic object's stream is unusable.
     * Opening reads to the end even then, so that the tag tells a wrong key (CS_ERR_AUTH) from a
     * damaged stream; `broken` is reported only once the tag verified. */
    int64_t plain;
    char broken[256];

    /* An error raised inside a libarchive callback, reported once libarchive returns. */
    int32_t cb_status;
    cs_error cb_err;
} cs_stream;

/* envelope.c ----------------------------------------------------------------------------------- */

/* Opens both files (the output exclusively, mode 0600), allocates the buffers and starts the
 * cipher (`encrypt` 1 seals, 0 opens) and the MD5. On failure the stream is still safe to end. */
int32_t cs_stream_begin(cs_stream *s, const char *in_path, const char *out_path, const void *key32,
                        const void *iv12, int encrypt, cs_error *err);

/* Releases everything and returns `status`; unless it is CS_OK, also removes the output, so that
 * no partial object and no unauthenticated plaintext survives. */
int32_t cs_stream_end(cs_stream *s, int32_t status, cs_error *err);

/* Starts the HMAC-SHA256 of the plaintext (a no-op without a key), feeds it, and finishes it. */
int32_t cs_stream_mac_begin(cs_stream *s, const void *key32, cs_error *err);
void cs_stream_mac_update(cs_stream *s, const void *p, size_t n);
int32_t cs_stream_mac_final(cs_stream *s, uint8_t out[32], cs_error *err);

/* Sealing: starts the whole-object SHA-256 (when `sha256`) and the per-part digests (when
 * `part_size` > 0), and hands the last, shorter part to part_fn once the object is complete. */
int32_t cs_stream_digests_begin(cs_stream *s, const cs_seal_options *o, cs_error *err);
int32_t cs_stream_last_part(cs_stream *s, cs_error *err);

/* Sealing: encrypts `len` bytes of compressed output, digests the ciphertext and writes it. */
int32_t cs_stream_emit(cs_stream *s, const void *compressed, size_t len, cs_error *err);

/* Opening: reads the next piece of the object, digests it and decrypts it into s->b. Returns the
 * bytes decrypted, 0 at the end of the object, or -1 with `err` filled. */
long cs_stream_next(cs_stream *s, cs_error *err);

/* Opening: writes `n` bytes of plaintext and feeds them to the MAC. */
int32_t cs_stream_write_plain(cs_stream *s, const void *p, size_t n, cs_error *err);

/* Calls the progress callback with (done, total): CS_ERR_CANCELLED when it asks to stop. */
int32_t cs_stream_progress(cs_stream *s, cs_error *err);

/* Reads up to CS_CHUNK bytes of the input into `buf`, fewer only at its end; -1 on error. */
long cs_stream_read_chunk(cs_stream *s, unsigned char *buf);

/* deflate_pool.c ------------------------------------------------------------------------------- */

/* Seals the input as one gzip member, deflated `threads` blocks at a time (zlib level -1..9). */
int32_t cs_seal_gzip(cs_stream *s, int level, int threads, cs_error *err);

/* archive_codec.c ------------------------------------------------------------------------------ */

/* Seals the input as one bare zstd or xz stream (`codec`), with libarchive's encoder threads. */
int32_t cs_seal_archive(cs_stream *s, int codec, int level, int threads, cs_error *err);

/* Decompresses one bare zstd or xz stream from the object; a damaged stream sets s->broken. */
int32_t cs_open_archive(cs_stream *s, int codec, cs_error *err);

#endif
