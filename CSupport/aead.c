/* One-shot AES-256-GCM over memory buffers. Objects go through the streaming envelope; this
 * entry point exists so the test vectors exercise the very EVP configuration the envelope uses. */
#include "internal.h"

#include <openssl/evp.h>

static int32_t gcm(int enc, const void *key32, const void *iv, size_t iv_len,
                   const void *aad, size_t aad_len, const void *in, size_t len, void *out,
                   void *tag, size_t tag_len, cs_error *err) {
    if (!key32 || !iv || iv_len == 0 || tag_len < 4 || tag_len > 16 || len > 0x7fffffff || aad_len > 0x7fffffff)
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

int32_t cs_aes256gcm_encrypt(const void *key32, const void *iv, size_t iv_len,
                             const void *aad, size_t aad_len,
                             const void *plain, size_t len, void *cipher_out,
                             void *tag_out, size_t tag_len, cs_error *err) {
    return gcm(1, key32, iv, iv_len, aad, aad_len, plain, len, cipher_out, tag_out, tag_len, err);
}

int32_t cs_aes256gcm_decrypt(const void *key32, const void *iv, size_t iv_len,
                             const void *aad, size_t aad_len,
                             const void *cipher, size_t len, void *plain_out,
                             const void *tag, size_t tag_len, cs_error *err) {
    return gcm(0, key32, iv, iv_len, aad, aad_len, cipher, len, plain_out, (void *)tag, tag_len, err);
}
