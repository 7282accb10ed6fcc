/* zstd and xz for the envelope, both ways, through libarchive.
 *
 * libarchive's write and read filters do the compression; its raw format makes the object one
 * bare compressed stream with no archive container around it, so that `zstd -d` and `xz -d` read
 * it too. libarchive drives the I/O through callbacks: when sealing it hands the compressed bytes
 * to archive_sink (encrypt, digest, write: cs_stream_emit), when opening it pulls the decrypted
 * object from archive_feed (read, digest, decrypt: cs_stream_next). Errors raised inside those
 * callbacks are kept in the stream (cb_status, cb_err) and reported once libarchive returns,
 * rather than its own less precise message. */
#include "envelope_internal.h"

#include <errno.h>
#include <stdio.h>
#include <archive.h>
#include <archive_entry.h>

static const char *codec_name(int codec) { return codec == CS_CODEC_ZSTD ? "zstd" : "xz"; }

/* The status of a failed libarchive call: ours when one of our callbacks failed, else
 * libarchive's message. */
static int32_t archive_failed(struct archive *a, cs_stream *s, const char *what, cs_error *err) {
    if (s->cb_status != CS_OK) {
        if (err) *err = s->cb_err;
        return s->cb_status;
    }
    const char *msg = a ? archive_error_string(a) : NULL;
    return cs_fail(err, CS_ERR_ARCHIVE, a ? archive_errno(a) : 0, "%s: %s", what,
                   msg ? msg : "libarchive failed");
}

/* ------------------------------------------------------------------------------------------------
 * Sealing: libarchive's write filter over its raw format, unblocked so that no padding follows
 * the stream. The encoders run on their own threads (libarchive's `threads` filter option); the
 * calling thread reads, MACs and seals.
 * ---------------------------------------------------------------------------------------------- */

/* libarchive hands us the compressed stream here: encrypt, hash, write. */
static la_ssize_t archive_sink(struct archive *a, void *client, const void *buf, size_t len) {
    cs_stream *s = client;
    if (s->cb_status != CS_OK) return -1;
    s->cb_status = cs_stream_emit(s, buf, len, &s->cb_err);
    if (s->cb_status != CS_OK) {
        archive_set_error(a, EIO, "%s", s->cb_err.message);
        return -1;
    }
    return (la_ssize_t)len;
}

/* Sets up the encoder (filter, level, threads, raw format) and starts its one entry. */
static int32_t encoder_start(struct archive *a, struct archive_entry *entry, cs_stream *s,
                             int codec, int level, int threads, cs_error *err) {
    char text[16];
    int r = codec == CS_CODEC_ZSTD ? archive_write_add_filter_zstd(a)
                                   : archive_write_add_filter_xz(a);
    /* ARCHIVE_WARN means "through an external program": never that, the stream must stay ours. */
    if (r != ARCHIVE_OK)
        return cs_fail(err, CS_ERR_ARCHIVE, archive_errno(a),
                       "libarchive has no built-in %s encoder", codec_name(codec));
    snprintf(text, sizeof text, "%d", level);
    if (archive_write_set_filter_option(a, NULL, "compression-level", text) != ARCHIVE_OK)
        return archive_failed(a, s, "compression level", err);
    /* zstd: `threads` is ZSTD_c_nbWorkers, and any value (1 included) selects libzstd's
     * multi-threaded mode with its job buffers (tens of MiB); left unset, the compression runs on
     * this thread in a few MiB. xz: 1 is liblzma's single-threaded encoder, more its
     * multi-threaded one. (For both, 0 would mean "one per core".) */
    snprintf(text, sizeof text, "%d", threads);
    if ((codec != CS_CODEC_ZSTD || threads > 1) &&
        archive_write_set_filter_option(a, NULL, "threads", text) != ARCHIVE_OK)
        return archive_failed(a, s, "threads", err);
    if (archive_write_set_format_raw(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
        archive_write_open(a, s, NULL, archive_sink, NULL) != ARCHIVE_OK)
        return archive_failed(a, s, "starting the compressor", err);
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_pathname(entry, "snapshot");
    if (archive_write_header(a, entry) != ARCHIVE_OK)
        return archive_failed(a, s, "starting the compressor", err);
    return CS_OK;
}

/* Feeds the whole input to the encoder, MACing it on the way. */
static int32_t encode_input(struct archive *a, cs_stream *s, cs_error *err) {
    for (;;) {
        long got = cs_stream_read_chunk(s, s->a);
        if (got < 0) return cs_fail_errno(err, errno, "reading %s", s->in_path);
        if (got == 0) return CS_OK;
        cs_stream_mac_update(s, s->a, (size_t)got);
        la_ssize_t w = archive_write_data(a, s->a, (size_t)got);
        if (w != got) return archive_failed(a, s, "compressing", err);
        s->done += got;
        int32_t status = cs_stream_progress(s, err);
        if (status != CS_OK) return status;
        if ((size_t)got < CS_CHUNK) return CS_OK;
    }
}

int32_t cs_seal_archive(cs_stream *s, int codec, int level, int threads, cs_error *err) {
    struct archive *a = archive_write_new();
    struct archive_entry *entry = archive_entry_new();
    if (!a || !entry) {
        archive_write_free(a);
        archive_entry_free(entry);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    int32_t status = encoder_start(a, entry, s, codec, level, threads, err);
    if (status == CS_OK) status = encode_input(a, s, err);
    /* Close flushes the encoder's last frame/block through archive_sink. */
    if (status == CS_OK && archive_write_close(a) != ARCHIVE_OK)
        status = archive_failed(a, s, "finishing the stream", err);
    archive_entry_free(entry);
    archive_write_free(a);
    return status;
}

/* ------------------------------------------------------------------------------------------------
 * Opening: libarchive's read filter and raw format. Only the expected filter is enabled, and the
 * stream must be exactly one layer of it: data that is not (a gzip stream labelled zstd, a zstd
 * stream inside a zstd stream) would otherwise pass through the raw format as it is. As with
 * gzip, a broken stream only sets s->broken: the object is still read to its end, so that the
 * tag is checked before the stream is blamed.
 * ---------------------------------------------------------------------------------------------- */

/* libarchive asks for more of the compressed stream here: read, hash, decrypt. */
static la_ssize_t archive_feed(struct archive *a, void *client, const void **buf) {
    cs_stream *s = client;
    if (s->cb_status != CS_OK) return -1;
    long m = cs_stream_next(s, &s->cb_err);
    if (m < 0) {
        s->cb_status = s->cb_err.status;
        archive_set_error(a, EIO, "%s", s->cb_err.message);
        return -1;
    }
    if (m > 0 && (s->cb_status = cs_stream_progress(s, &s->cb_err)) != CS_OK) {
        archive_set_error(a, ECANCELED, "cancelled");
        return -1;
    }
    *buf = s->b;
    return m;
}

/* Sets up the decoder and reads the header of the stream's one entry (*hr: ARCHIVE_EOF when the
 * stream decodes to nothing). Data that is not one stream of the codec sets s->broken. */
static int32_t decoder_start(struct archive *a, cs_stream *s, int codec, int *hr, cs_error *err) {
    const char *name = codec_name(codec);
    struct archive_entry *entry = NULL;
    int r = codec == CS_CODEC_ZSTD ? archive_read_support_filter_zstd(a)
                                   : archive_read_support_filter_xz(a);
    if (r != ARCHIVE_OK) /* ARCHIVE_WARN: only through an external program */
        return cs_fail(err, CS_ERR_ARCHIVE, archive_errno(a),
                       "libarchive has no built-in %s decoder", name);
    /* raw needs at least one byte of content; "empty" reads a stream that decodes to nothing
     * (an empty file sealed) as no entry at all. */
    if (archive_read_support_format_raw(a) != ARCHIVE_OK ||
        archive_read_support_format_empty(a) != ARCHIVE_OK ||
        archive_read_set_read_callback(a, archive_feed) != ARCHIVE_OK ||
        archive_read_set_callback_data(a, s) != ARCHIVE_OK)
        return archive_failed(a, s, "starting the decompressor", err);
    *hr = ARCHIVE_FATAL;
    if (archive_read_open1(a) != ARCHIVE_OK ||
        ((*hr = archive_read_next_header(a, &entry)) != ARCHIVE_OK && *hr != ARCHIVE_EOF)) {
        if (s->cb_status != CS_OK) return archive_failed(a, s, "reading", err);
        const char *why = archive_error_string(a);
        snprintf(s->broken, sizeof s->broken, "authentic object holds no readable %s stream: %s",
                 name, why ? why : "unrecognized data");
        return CS_OK;
    }
    int want = codec == CS_CODEC_ZSTD ? ARCHIVE_FILTER_ZSTD : ARCHIVE_FILTER_XZ;
    if (archive_filter_count(a) != 2 || archive_filter_code(a, 0) != want) {
        const char *seen = archive_filter_name(a, 0);
        snprintf(s->broken, sizeof s->broken,
                 "authentic object is not one %s stream (libarchive sees %s)", name,
                 seen ? seen : "?");
    }
    return CS_OK;
}

/* Writes out the decoded stream; a corrupt one sets s->broken. */
static int32_t decode_stream(struct archive *a, cs_stream *s, const char *name, cs_error *err) {
    for (;;) {
        la_ssize_t n = archive_read_data(a, s->c, CS_CHUNK);
        if (n == 0) return CS_OK;
        if (n < 0) {
            if (s->cb_status != CS_OK) return archive_failed(a, s, "reading", err);
            const char *why = archive_error_string(a);
            snprintf(s->broken, sizeof s->broken, "authentic object holds a corrupt %s stream: %s",
                     name, why ? why : "decoding failed");
            return CS_OK;
        }
        int32_t status = cs_stream_write_plain(s, s->c, (size_t)n, err);
        if (status != CS_OK) return status;
    }
}

/* Reads the rest of the object, which the tag covers too. libarchive stops at the end of the last
 * frame, so anything still there is data after the stream. */
static int32_t drain(cs_stream *s, const char *name, cs_error *err) {
    for (;;) {
        long m = cs_stream_next(s, err);
        if (m < 0) return err ? err->status : CS_ERR_IO;
        if (m == 0) return CS_OK;
        if (!s->broken[0])
            snprintf(s->broken, sizeof s->broken, "authentic object holds data after its %s stream",
                     name);
    }
}

int32_t cs_open_archive(cs_stream *s, int codec, cs_error *err) {
    struct archive *a = archive_read_new();
    if (!a) return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    int hr = ARCHIVE_FATAL;
    int32_t status = decoder_start(a, s, codec, &hr, err);
    if (status == CS_OK && !s->broken[0] && hr != ARCHIVE_EOF)
        status = decode_stream(a, s, codec_name(codec), err);
    if (status == CS_OK) status = drain(s, codec_name(codec), err);
    archive_read_free(a);
    return status;
}
