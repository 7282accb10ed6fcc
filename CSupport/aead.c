/* AES-256-GCM over memory buffers. One shot: objects go through the streaming envelope; this
 * entry point exists so the test vectors exercise the very EVP configuration the envelope uses.
 * Streamed (cs_gcm_*): one message fed in pieces, for manifests too large to hold in memory. */
#include "internal.h"

#include <openssl/evp.h>
#include <stdlib.h>

static int32_t gcm(int enc, const void *key32, const void *iv, size_t iv_len, const void *aad,
                   size_t aad_len, const void *in, size_t len, void *out, void *tag, size_t tag_len,
                   cs_error *err) {
    if (!key32 || !iv || iv_len == 0 || tag_len < 4 || tag_len > 16 || len > 0x7fffffff ||
        aad_len > 0x7fffffff)
        return cs_fail(err, CS_ERR_ARG, 0, "invalid AES-GCM parameters");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
    int32_t status = CS_OK;
    int n = 0;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key32, iv, enc) != 1) {
        status = cs_fail_openssl(err, "AES-256-GCM init");
        goto done;
    }
    if (aad_len && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        status = cs_fail_openssl(err, "AES-256-GCM AAD");
        goto done;
    }
    if (len && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1) {
        status = cs_fail_openssl(err, "AES-256-GCM update");
        goto done;
    }
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, (int)tag_len, tag) != 1) {
        status = cs_fail_openssl(err, "AES-256-GCM set tag");
        goto done;
    }
    if (EVP_CipherFinal_ex(ctx, (unsigned char *)out + (len ? n : 0), &n) != 1) {
        if (enc) status = cs_fail_openssl(err, "AES-256-GCM final");
        else status = cs_fail(err, CS_ERR_AUTH, 0, "authentication tag does not verify");
        goto done;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, (int)tag_len, tag) != 1)
        status = cs_fail_openssl(err, "AES-256-GCM get tag");
done:
    EVP_CIPHER_CTX_free(ctx);
    return status;
}

int32_t cs_aes256gcm_encrypt(const void *key32, const void *iv, size_t iv_len, const void *aad,
                             size_t aad_len, const void *plain, size_t len, void *cipher_out,
                             void *tag_out, size_t tag_len, cs_error *err) {
    return gcm(1, key32, iv, iv_len, aad, aad_len, plain, len, cipher_out, tag_out, tag_len, err);
}

int32_t cs_aes256gcm_decrypt(const void *key32, const void *iv, size_t iv_len, const void *aad,
                             size_t aad_len, const void *cipher, size_t len, void *plain_out,
                             const void *tag, size_t tag_len, cs_error *err) {
    return gcm(0, key32, iv, iv_len, aad, aad_len, cipher, len, plain_out, (void *)tag, tag_len,
               err);
}

struct cs_gcm {
    EVP_CIPHER_CTX *ctx;
    int enc;
};

cs_gcm *cs_gcm_new(int32_t encrypt, const void *key32, const void *iv, size_t iv_len,
                   const void *aad, size_t aad_len, cs_error *err) {
    if (!key32 || !iv || iv_len == 0 || iv_len > 64 || aad_len > 0x7fffffff || (aad_len && !aad)) {
        cs_fail(err, CS_ERR_ARG, 0, "invalid AES-GCM parameters");
        return NULL;
    }
    cs_gcm *g = calloc(1, sizeof *g);
    if (!g || !(g->ctx = EVP_CIPHER_CTX_new())) {
        free(g);
        cs_fail(err, CS_ERR_NOMEM, 0, "out of memory");
        return NULL;
    }
    g->enc = encrypt ? 1 : 0;
    int n = 0;
    if (EVP_CipherInit_ex(g->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, g->enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_IVLEN, (int)iv_len, NULL) != 1 ||
        EVP_CipherInit_ex(g->ctx, NULL, NULL, key32, iv, g->enc) != 1 ||
        (aad_len && EVP_CipherUpdate(g->ctx, NULL, &n, aad, (int)aad_len) != 1)) {
        cs_fail_openssl(err, "AES-256-GCM init");
        cs_gcm_free(g);
        return NULL;
    }
    return g;
}

int32_t cs_gcm_update(cs_gcm *g, const void *in, size_t len, void *out, cs_error *err) {
    if (!g || (len && (!in || !out)) || len > 0x7fffffff)
        return cs_fail(err, CS_ERR_ARG, 0, "invalid AES-GCM update");
    int n = 0;
    if (len && (EVP_CipherUpdate(g->ctx, out, &n, in, (int)len) != 1 || (size_t)n != len))
        return cs_fail_openssl(err, "AES-256-GCM update");
    return CS_OK;
}

int32_t cs_gcm_final(cs_gcm *g, void *tag, size_t tag_len, cs_error *err) {
    if (!g || !tag || tag_len < 4 || tag_len > 16)
        return cs_fail(err, CS_ERR_ARG, 0, "invalid AES-GCM tag");
    unsigned char last[16];
    int n = 0;
    if (!g->enc && EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, (int)tag_len, tag) != 1)
        return cs_fail_openssl(err, "AES-256-GCM set tag");
    /* GCM is a stream mode: the final call writes no bytes; `last` only satisfies the API. */
    if (EVP_CipherFinal_ex(g->ctx, last, &n) != 1) {
        if (g->enc) return cs_fail_openssl(err, "AES-256-GCM final");
        return cs_fail(err, CS_ERR_AUTH, 0, "authentication tag does not verify");
    }
    if (g->enc && EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, (int)tag_len, tag) != 1)
        return cs_fail_openssl(err, "AES-256-GCM get tag");
    return CS_OK;
}

void cs_gcm_free(cs_gcm *g) {
    if (!g) return;
    EVP_CIPHER_CTX_free(g->ctx);
    free(g);
}
