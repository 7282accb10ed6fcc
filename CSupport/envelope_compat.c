/* For tests and fuzzing only: cs_seal_file and cs_open_file, the gzip-only entry points from
 * before the codec could be chosen. The product calls the _ex functions; GzipPoolTests still
 * seals through cs_seal_file (the objects of several worker counts must be identical), and
 * cs_open_file is its counterpart for test and fuzz code. Thin wrappers, so that they exercise
 * exactly the code the product runs. */
#include "envelope_internal.h"

#include <string.h>

int32_t cs_seal_file(const char *in_path, const char *out_path, const void *key32, const void *iv12,
                     int32_t level, int32_t threads, cs_progress_fn progress, void *ctx,
                     cs_seal_result *result, cs_error *err) {
    cs_seal_options o;
    memset(&o, 0, sizeof o);
    o.codec = CS_CODEC_GZIP;
    o.level = level;
    o.threads = threads;
    return cs_seal_file_ex(in_path, out_path, key32, iv12, &o, progress, ctx, result, err);
}

int32_t cs_open_file(const char *in_path, const char *out_path, const void *key32, const void *iv12,
                     const void *tag16, cs_progress_fn progress, void *ctx, cs_open_result *result,
                     cs_error *err) {
    return cs_open_file_ex(in_path, out_path, key32, iv12, tag16, CS_CODEC_GZIP, NULL, progress,
                           ctx, result, err);
}
