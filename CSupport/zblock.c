/* zlib (RFC 1950) compression of small independent blocks (database pages for incremental
 * backups). One z_stream per direction is kept in a handle and reset between blocks: initialising
 * deflate for every 4 KiB page would cost more than compressing it. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct cs_zblock {
    z_stream def;
    z_stream inf;
    int def_ready;
    int inf_ready;
};

cs_zblock *cs_zblock_new(int32_t level, cs_error *err) {
    if (level < -1 || level > 9) {
        cs_fail(err, CS_ERR_ARG, 0, "zlib level %d out of range", level);
        return NULL;
    }
    cs_zblock *z = calloc(1, sizeof *z);
    if (!z) {
        cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    int rc = deflateInit(&z->def, level);
    if (rc != Z_OK) {
        free(z);
        cs_fail(err, CS_ERR_ZLIB, rc, "deflateInit failed (%d)", rc);
        return NULL;
    }
    z->def_ready = 1;
    rc = inflateInit(&z->inf);
    if (rc != Z_OK) {
        deflateEnd(&z->def);
        free(z);
        cs_fail(err, CS_ERR_ZLIB, rc, "inflateInit failed (%d)", rc);
        return NULL;
    }
    z->inf_ready = 1;
    return z;
}

void cs_zblock_free(cs_zblock *z) {
    if (!z) return;
    if (z->def_ready) deflateEnd(&z->def);
    if (z->inf_ready) inflateEnd(&z->inf);
    free(z);
}

int32_t cs_zblock_compress(cs_zblock *z, const void *in, size_t in_len, void *out, size_t out_cap,
                           size_t *out_len, cs_error *err) {
    if (!z || !out_len || (in_len && !in) || !out || in_len > UINT32_MAX || out_cap > UINT32_MAX)
        return cs_fail(err, CS_ERR_ARG, 0, "invalid zblock arguments");
    int rc = deflateReset(&z->def);
    if (rc != Z_OK) return cs_fail(err, CS_ERR_ZLIB, rc, "deflateReset failed (%d)", rc);
    z->def.next_in = (Bytef *)in;
    z->def.avail_in = (uInt)in_len;
    z->def.next_out = out;
    z->def.avail_out = (uInt)out_cap;
    rc = deflate(&z->def, Z_FINISH);
    if (rc != Z_STREAM_END) {
        /* Z_OK / Z_BUF_ERROR: the output did not fit; the caller stores the block instead. */
        *out_len = 0;
        return cs_fail(err, CS_ERR_ZLIB, rc, "compressed block does not fit in %zu bytes", out_cap);
    }
    *out_len = out_cap - z->def.avail_out;
    return CS_OK;
}

int32_t cs_zblock_decompress(cs_zblock *z, const void *in, size_t in_len, void *out, size_t out_cap,
                             size_t *out_len, cs_error *err) {
    if (!z || !out_len || (in_len && !in) || !out || in_len > UINT32_MAX || out_cap > UINT32_MAX)
        return cs_fail(err, CS_ERR_ARG, 0, "invalid zblock arguments");
    int rc = inflateReset(&z->inf);
    if (rc != Z_OK) return cs_fail(err, CS_ERR_ZLIB, rc, "inflateReset failed (%d)", rc);
    z->inf.next_in = (Bytef *)in;
    z->inf.avail_in = (uInt)in_len;
    z->inf.next_out = out;
    z->inf.avail_out = (uInt)out_cap;
    rc = inflate(&z->inf, Z_FINISH);
    *out_len = out_cap - z->inf.avail_out;
    /* The stream must end exactly at the end of the input and fit the output: anything else is
     * a damaged (or hostile) block. */
    if (rc != Z_STREAM_END || z->inf.avail_in != 0)
        return cs_fail(err, CS_ERR_ZLIB, rc, "corrupt or oversized zlib block (%d)", rc);
    return CS_OK;
}
