/* Error plumbing: every failure crosses the ABI as a status plus a message buffer (cs_error),
 * filled here with the library's own code and text, so that Swift can build a typed error without
 * calling back into C. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

static void vset(cs_error *err, int32_t status, int64_t lib_code, const char *fmt, va_list ap) {
    if (!err) return;
    err->status = status;
    err->lib_code = lib_code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

int32_t cs_fail(cs_error *err, int32_t status, int64_t lib_code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(err, status, lib_code, fmt, ap);
    va_end(ap);
    return status;
}

int32_t cs_fail_errno(cs_error *err, int saved_errno, const char *fmt, ...) {
    int32_t status = (saved_errno == ENOSPC || saved_errno == EDQUOT) ? CS_ERR_NOSPC : CS_ERR_IO;
    if (!err) return status;
    va_list ap;
    va_start(ap, fmt);
    vset(err, status, saved_errno, fmt, ap);
    va_end(ap);
    size_t used = strlen(err->message);
    snprintf(err->message + used, sizeof err->message - used, ": %s", strerror(saved_errno));
    return status;
}

int32_t cs_fail_openssl(cs_error *err, const char *what) {
    unsigned long code = ERR_get_error();
    char text[256] = "unknown error";
    if (code) ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return cs_fail(err, CS_ERR_CRYPTO, (int64_t)code, "%s failed: %s", what, text);
}
