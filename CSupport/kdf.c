/* Key derivation: HKDF-SHA256 (RFC 5869) through OpenSSL 3's EVP_KDF, so that every purpose the
 * encryption key is put to besides AES-GCM (a MAC of the plaintext, ids) uses a key of its own,
 * and knowing one derived key tells nothing about the others or the encryption key. */
#include "internal.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

int32_t cs_hkdf_sha256(const void *ikm, size_t ikm_len, const void *salt, size_t salt_len,
                       const void *info, size_t info_len, void *out, size_t out_len,
                       cs_error *err) {
    /* RFC 5869: L <= 255 * HashLen. */
    if (!out || out_len == 0 || out_len > 255 * 32 || (ikm_len && !ikm) || (salt_len && !salt) ||
        (info_len && !info))
        return cs_fail(err, CS_ERR_ARG, 0, "invalid HKDF parameters");
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (!kdf) return cs_fail_openssl(err, "EVP_KDF_fetch(HKDF)");
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (!kctx) return cs_fail_openssl(err, "EVP_KDF_CTX_new");
    static const unsigned char empty = 0;
    OSSL_PARAM params[5];
    int i = 0;
    params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                    (void *)(ikm_len ? ikm : &empty), ikm_len);
    /* An absent salt is RFC 5869's default (HashLen zero bytes); OpenSSL applies it when no salt
     * parameter is given. */
    if (salt_len)
        params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                                        salt_len);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    (void *)(info_len ? info : &empty), info_len);
    params[i] = OSSL_PARAM_construct_end();
    int32_t status = CS_OK;
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1)
        status = cs_fail_openssl(err, "HKDF-SHA256");
    EVP_KDF_CTX_free(kctx);
    return status;
}
