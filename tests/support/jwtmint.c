/* Key, JWK and JWS minting for tests. See jwtmint.h. */
#include "jwtmint.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

static void *fail(const char *what)
{
    fprintf(stderr, "jwtmint: %s failed\n", what);
    ERR_print_errors_fp(stderr);
    return NULL;
}

EVP_PKEY *cc_test_jwt_key(const char *kind)
{
    EVP_PKEY *key = strcmp(kind, "RSA") == 0 ? EVP_RSA_gen(2048) : EVP_EC_gen(kind);
    return key != NULL ? key : fail("key generation");
}

static char *b64_variant(const void *data, size_t len, int variant)
{
    size_t size = sodium_base64_encoded_len(len, variant);
    char *out = malloc(size);
    if (out == NULL)
        return NULL;
    sodium_bin2base64(out, size, data, len, variant);
    return out;
}

char *cc_test_b64url(const void *data, size_t len)
{
    return b64_variant(data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

char *cc_test_b64(const void *data, size_t len)
{
    return b64_variant(data, len, sodium_base64_VARIANT_ORIGINAL);
}

/* Sets member name of jwk to the base64url text of the big-endian bytes of
 * bn, left-padded with zeros to width bytes (0: minimal length). */
static int set_bn(json_t *jwk, const char *name, const BIGNUM *bn, int width)
{
    int len = width > 0 ? width : BN_num_bytes(bn);
    unsigned char *buf = malloc((size_t)len + 1);
    if (buf == NULL || BN_bn2binpad(bn, buf, len) != len) {
        free(buf);
        return -1;
    }
    char *text = cc_test_b64url(buf, (size_t)len);
    free(buf);
    if (text == NULL)
        return -1;
    json_object_set_new(jwk, name, json_string(text));
    free(text);
    return 0;
}

static int fill_rsa(json_t *jwk, EVP_PKEY *key)
{
    BIGNUM *n = NULL, *e = NULL;
    int rc = -1;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && set_bn(jwk, "n", n, 0) == 0 &&
        set_bn(jwk, "e", e, 0) == 0)
        rc = 0;
    json_object_set_new(jwk, "kty", json_string("RSA"));
    BN_free(n);
    BN_free(e);
    return rc;
}

static int fill_ec(json_t *jwk, EVP_PKEY *key)
{
    char group[64];
    size_t group_len = 0;
    BIGNUM *x = NULL, *y = NULL;
    int rc = -1;

    if (EVP_PKEY_get_group_name(key, group, sizeof(group), &group_len) != 1)
        return -1;
    const char *crv = strcmp(group, "prime256v1") == 0  ? "P-256"
                      : strcmp(group, "secp384r1") == 0 ? "P-384"
                                                        : "P-521";
    int width = strcmp(crv, "P-256") == 0 ? 32 : strcmp(crv, "P-384") == 0 ? 48 : 66;

    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
        set_bn(jwk, "x", x, width) == 0 && set_bn(jwk, "y", y, width) == 0)
        rc = 0;
    json_object_set_new(jwk, "kty", json_string("EC"));
    json_object_set_new(jwk, "crv", json_string(crv));
    BN_free(x);
    BN_free(y);
    return rc;
}

json_t *cc_test_jwk(EVP_PKEY *key, const char *kid, const char *use)
{
    json_t *jwk = json_object();
    int rc = EVP_PKEY_is_a(key, "RSA") ? fill_rsa(jwk, key) : fill_ec(jwk, key);
    if (rc != 0) {
        json_decref(jwk);
        return fail("JWK export");
    }
    if (kid != NULL)
        json_object_set_new(jwk, "kid", json_string(kid));
    if (use != NULL)
        json_object_set_new(jwk, "use", json_string(use));
    return jwk;
}

json_t *cc_test_jwk_x509(X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    if (len <= 0)
        return fail("certificate encoding");
    char *text = cc_test_b64(der, (size_t)len);
    OPENSSL_free(der);

    EVP_PKEY *key = X509_get0_pubkey(cert);
    json_t *jwk = cc_test_jwk(key, NULL, "x509-svid");
    if (jwk != NULL)
        json_object_set_new(jwk, "x5c", json_pack("[s]", text));
    free(text);
    return jwk;
}

/* Returns "b64url(header).b64url(claims)". */
static char *signing_input(const char *header_json, const char *claims_json)
{
    char *header = cc_test_b64url(header_json, strlen(header_json));
    char *claims = cc_test_b64url(claims_json, strlen(claims_json));
    char *input = NULL;
    if (header != NULL && claims != NULL) {
        size_t size = strlen(header) + strlen(claims) + 2;
        input = malloc(size);
        if (input != NULL)
            snprintf(input, size, "%s.%s", header, claims);
    }
    free(header);
    free(claims);
    return input;
}

/* Returns "input.b64url(sig)" and frees input. */
static char *append_signature(char *input, const unsigned char *sig, size_t sig_len)
{
    char *sig_text = cc_test_b64url(sig, sig_len);
    char *token = NULL;
    if (sig_text != NULL) {
        size_t size = strlen(input) + strlen(sig_text) + 2;
        token = malloc(size);
        if (token != NULL)
            snprintf(token, size, "%s.%s", input, sig_text);
    }
    free(sig_text);
    free(input);
    return token;
}

static const EVP_MD *alg_digest(const char *alg)
{
    if (strcmp(alg + 2, "256") == 0)
        return EVP_sha256();
    if (strcmp(alg + 2, "384") == 0)
        return EVP_sha384();
    return EVP_sha512();
}

/* Converts a DER ECDSA signature into the JWS form R || S, each half wide. */
static int ecdsa_der_to_raw(const unsigned char *der, size_t der_len, int half, unsigned char *raw)
{
    const unsigned char *cursor = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &cursor, (long)der_len);
    if (sig == NULL)
        return -1;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = BN_bn2binpad(r, raw, half) == half && BN_bn2binpad(s, raw + half, half) == half;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

static int ec_half_len(EVP_PKEY *key)
{
    int bits = EVP_PKEY_get_bits(key);
    return (bits + 7) / 8;
}

char *cc_test_jws_sign(const char *header_json, const char *claims_json, const char *sign_alg,
                       EVP_PKEY *key)
{
    char *input = signing_input(header_json, claims_json);
    if (input == NULL)
        return NULL;
    if (strcmp(sign_alg, "none") == 0)
        return append_signature(input, (const unsigned char *)"", 0);

    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *token = NULL;

    if (ctx == NULL || EVP_DigestSignInit(ctx, &pctx, alg_digest(sign_alg), NULL, key) != 1)
        goto done;
    if (sign_alg[0] == 'P' && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                               EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, alg_digest(sign_alg)) != 1 ||
                               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
        goto done;
    if (EVP_DigestSign(ctx, NULL, &sig_len, (unsigned char *)input, strlen(input)) != 1)
        goto done;
    sig = malloc(sig_len);
    if (sig == NULL ||
        EVP_DigestSign(ctx, sig, &sig_len, (unsigned char *)input, strlen(input)) != 1)
        goto done;

    if (sign_alg[0] == 'E') {
        int half = ec_half_len(key);
        unsigned char raw[2 * 66];
        if (ecdsa_der_to_raw(sig, sig_len, half, raw) != 0)
            goto done;
        token = append_signature(input, raw, 2 * (size_t)half);
    } else {
        token = append_signature(input, sig, sig_len);
    }
    input = NULL; /* freed by append_signature */

done:
    if (token == NULL && input != NULL)
        fail("JWS signing");
    free(input);
    free(sig);
    EVP_MD_CTX_free(ctx);
    return token;
}

char *cc_test_jws_hmac(const char *header_json, const char *claims_json, const void *secret,
                       size_t secret_len)
{
    char *input = signing_input(header_json, claims_json);
    if (input == NULL)
        return NULL;

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)input, strlen(input), mac,
             &mac_len) == NULL) {
        free(input);
        return fail("HMAC");
    }
    return append_signature(input, mac, mac_len);
}

char *cc_test_jwtsvid(EVP_PKEY *key, const char *alg, const char *kid, const char *sub,
                      const char *aud, int64_t exp)
{
    json_t *header = json_pack("{s:s, s:s, s:s}", "alg", alg, "kid", kid, "typ", "JWT");
    json_t *claims = json_pack("{s:s, s:s, s:I}", "sub", sub, "aud", aud, "exp", (json_int_t)exp);
    char *header_text = json_dumps(header, JSON_COMPACT);
    char *claims_text = json_dumps(claims, JSON_COMPACT);
    char *token = NULL;
    if (header_text != NULL && claims_text != NULL)
        token = cc_test_jws_sign(header_text, claims_text, alg, key);
    free(header_text);
    free(claims_text);
    json_decref(header);
    json_decref(claims);
    return token;
}

char *cc_test_public_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    if (bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1) {
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);
        text = strndup(data, (size_t)len);
    }
    BIO_free(bio);
    return text != NULL ? text : fail("public key PEM export");
}

int cc_test_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const char *cursor = data;
    while (len > 0) {
        ssize_t n = write(fd, cursor, len);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        cursor += n;
        len -= (size_t)n;
    }
    return close(fd);
}
