/* Digests, HMAC and randomness through OpenSSL EVP, for the Swift code (the S3 signer, the
 * digests of files and upload parts), so that no other part of the project needs a hashing
 * implementation of its own. The envelope computes its digests with EVP directly, in the same
 * pass as its cipher (envelope.c). */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

struct cs_digest {
    EVP_MD_CTX *ctx;
};

static const EVP_MD *md_for(int32_t algorithm) {
    switch (algorithm) {
    case CS_DIGEST_MD5: return EVP_md5();
    case CS_DIGEST_SHA256: return EVP_sha256();
    default: return NULL;
    }
}

int32_t cs_random_bytes(void *out, size_t len, cs_error *err) {
    if (len > 0x7fffffff) return cs_fail(err, CS_ERR_ARG, 0, "random request too large");
    if (RAND_bytes(out, (int)len) != 1) return cs_fail_openssl(err, "RAND_bytes");
    return CS_OK;
}

cs_digest *cs_digest_new(int32_t algorithm) {
    const EVP_MD *md = md_for(algorithm);
    if (!md) return NULL;
    cs_digest *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->ctx = EVP_MD_CTX_new();
    if (!d->ctx || EVP_DigestInit_ex(d->ctx, md, NULL) != 1) {
        cs_digest_free(d);
        return NULL;
    }
    return d;
}

int32_t cs_digest_update(cs_digest *d, const void *data, size_t len) {
    if (!d || (len && !data)) return CS_ERR_ARG;
    return EVP_DigestUpdate(d->ctx, data, len) == 1 ? CS_OK : CS_ERR_CRYPTO;
}

int32_t cs_digest_final(cs_digest *d, void *out, size_t out_cap) {
    if (!d || out_cap < (size_t)EVP_MD_CTX_get_size(d->ctx)) return -1;
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(d->ctx, out, &n) != 1) return -1;
    return (int32_t)n;
}

void cs_digest_free(cs_digest *d) {
    if (!d) return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}

int32_t cs_digest_fd_range(int32_t algorithm, int32_t fd, int64_t offset, int64_t length, void *out,
                           size_t out_cap, cs_error *err) {
    cs_digest *d = cs_digest_new(algorithm);
    if (!d) return cs_fail(err, CS_ERR_ARG, 0, "unknown digest algorithm %d", algorithm);
    unsigned char *buf = malloc(CS_CHUNK);
    if (!buf) {
        cs_digest_free(d);
        return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    }
    int32_t status = CS_OK;
    int64_t pos = offset;
    int64_t left = length;
    while (length < 0 || left > 0) {
        size_t want = CS_CHUNK;
        if (length >= 0 && (int64_t)want > left) want = (size_t)left;
        ssize_t n = pread(fd, buf, want, pos);
        if (n < 0) {
            if (errno == EINTR) continue;
            status = cs_fail_errno(err, errno, "reading file to hash");
            break;
        }
        if (n == 0) {
            if (length >= 0)
                status = cs_fail(err, CS_ERR_IO, 0, "file ended %lld bytes early", (long long)left);
            break;
        }
        cs_digest_update(d, buf, (size_t)n);
        pos += n;
        left -= n;
    }
    if (status == CS_OK && cs_digest_final(d, out, out_cap) < 0)
        status = cs_fail(err, CS_ERR_CRYPTO, 0, "digest output buffer too small");
    free(buf);
    cs_digest_free(d);
    return status;
}

int32_t cs_hmac_sha256(const void *key, size_t key_len, const void *data, size_t data_len,
                       void *out, cs_error *err) {
    unsigned int n = 32;
    static const unsigned char empty = 0;
    if (!HMAC(EVP_sha256(), key_len ? key : &empty, (int)key_len, data_len ? data : &empty,
              data_len, out, &n))
        return cs_fail_openssl(err, "HMAC-SHA256");
    return CS_OK;
}
