/* Strict base64 decoding and JWK conversion for OpenSSL 3.
 *
 * Keys are built with OSSL_PARAM_BLD and EVP_PKEY_fromdata (the OpenSSL 3 way;
 * the RSA_* and EC_KEY_* setters are deprecated), then checked with
 * EVP_PKEY_public_check so that a point off the curve or an even RSA modulus
 * is rejected here and not at verification time. */
#include "citadel/jose.h"
#include "citadel/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <sodium.h>

/* Decodes padded standard base64 (RFC 4648 section 4), as x5c members carry it. */
static cc_status b64_decode(const char *in, size_t len, const char *what, uint8_t **out,
                            size_t *out_len, cc_err *err)
{
    /* Every 4 characters carry at most 3 bytes; one more byte for the NUL. */
    size_t capacity = len / 4 * 3 + 3 + 1;
    uint8_t *buf = malloc(capacity);
    if (buf == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory decoding %s", what);

    size_t decoded = 0;
    const char *end = NULL;
    int rc = sodium_base642bin(buf, capacity - 1, in, len, NULL, &decoded, &end,
                               sodium_base64_VARIANT_ORIGINAL);
    /* libsodium may stop early without an error, so the whole input must
     * have been consumed. */
    if (rc != 0 || end != in + len) {
        free(buf);
        return cc_err_set(err, CC_ERR_INVALID, "%s is not valid base64", what);
    }

    buf[decoded] = '\0';
    *out = buf;
    *out_len = decoded;
    return CC_OK;
}

cc_status cc_jose_b64url_decode(const char *in, size_t len, const char *what, uint8_t **out,
                                size_t *out_len, cc_err *err)
{
    cc_status status = cc_b64url_decode(in, len, out, out_len, err);
    if (status == CC_ERR_INVALID)
        cc_err_prefix(err, "%s", what);
    return status;
}

cc_status cc_jose_b64_decode(const char *in, size_t len, const char *what, uint8_t **out,
                             size_t *out_len, cc_err *err)
{
    return b64_decode(in, len, what, out, out_len, err);
}

int cc_jose_kty_supported(const char *kty)
{
    return kty != NULL && (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0);
}

/* Decodes the base64url string member name of jwk. Caller frees *out. */
static cc_status decode_member(const json_t *jwk, const char *name, uint8_t **out, size_t *out_len,
                               cc_err *err)
{
    const json_t *value = json_object_get(jwk, name);
    if (!json_is_string(value))
        return cc_err_set(err, CC_ERR_INVALID, "JWK member \"%s\" is missing or not a string",
                          name);

    char what[64];
    snprintf(what, sizeof(what), "JWK member \"%s\"", name);
    return cc_jose_b64url_decode(json_string_value(value), json_string_length(value), what, out,
                                 out_len, err);
}

/* Builds a public key of type key_type from params and checks it. */
static cc_status key_from_params(const char *key_type, OSSL_PARAM_BLD *bld, EVP_PKEY **out,
                                 cc_err *err)
{
    cc_status status = CC_OK;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, key_type, NULL);
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *key = NULL;

    if (params == NULL || ctx == NULL) {
        status = cc_err_set(err, CC_ERR_INTERNAL, "could not set up an OpenSSL %s key", key_type);
        goto done;
    }
    if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        status = cc_err_set(err, CC_ERR_INVALID, "JWK is not a valid %s public key", key_type);
        goto done;
    }

    check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "JWK is not a valid %s public key (OpenSSL's "
                            "public key check failed)",
                            key_type);
        goto done;
    }

    *out = key;
    key = NULL;

done:
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return status;
}

static cc_status rsa_from_jwk(const json_t *jwk, EVP_PKEY **out, cc_err *err)
{
    cc_status status;
    uint8_t *n_bytes = NULL, *e_bytes = NULL;
    size_t n_len = 0, e_len = 0;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;

    status = decode_member(jwk, "n", &n_bytes, &n_len, err);
    if (status != CC_OK)
        goto done;
    status = decode_member(jwk, "e", &e_bytes, &e_len, err);
    if (status != CC_OK)
        goto done;

    n = BN_bin2bn(n_bytes, (int)n_len, NULL);
    e = BN_bin2bn(e_bytes, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (n == NULL || e == NULL || bld == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory converting an RSA JWK");
        goto done;
    }

    int bits = BN_num_bits(n);
    if (bits < CC_JOSE_RSA_MIN_BITS || bits > CC_JOSE_RSA_MAX_BITS) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "RSA JWK modulus has %d bits; it must have %d to %d bits", bits,
                            CC_JOSE_RSA_MIN_BITS, CC_JOSE_RSA_MAX_BITS);
        goto done;
    }

    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory converting an RSA JWK");
        goto done;
    }
    status = key_from_params("RSA", bld, out, err);

done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(n_bytes);
    free(e_bytes);
    return status;
}

typedef struct ec_curve {
    const char *jwk_name;     /* "crv" value */
    const char *openssl_name; /* OpenSSL group name */
    size_t coordinate_len;    /* bytes of x and of y */
} ec_curve;

static const ec_curve ec_curves[] = {
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

static const ec_curve *find_curve(const char *jwk_name)
{
    for (size_t i = 0; i < sizeof(ec_curves) / sizeof(ec_curves[0]); i++) {
        if (strcmp(ec_curves[i].jwk_name, jwk_name) == 0)
            return &ec_curves[i];
    }
    return NULL;
}

static cc_status ec_from_jwk(const json_t *jwk, EVP_PKEY **out, cc_err *err)
{
    cc_status status;
    uint8_t *x = NULL, *y = NULL, *point = NULL;
    size_t x_len = 0, y_len = 0;
    OSSL_PARAM_BLD *bld = NULL;

    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    const ec_curve *curve = crv != NULL ? find_curve(crv) : NULL;
    if (curve == NULL) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "EC JWK curve \"%s\" is not supported; use P-256, P-384 or P-521",
                            crv != NULL ? crv : "(missing)");
        goto done;
    }

    status = decode_member(jwk, "x", &x, &x_len, err);
    if (status != CC_OK)
        goto done;
    status = decode_member(jwk, "y", &y, &y_len, err);
    if (status != CC_OK)
        goto done;
    if (x_len != curve->coordinate_len || y_len != curve->coordinate_len) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "EC JWK on %s has coordinates of %zu and %zu bytes; both must be "
                            "%zu bytes",
                            curve->jwk_name, x_len, y_len, curve->coordinate_len);
        goto done;
    }

    /* Uncompressed point encoding (SEC 1): 0x04 || x || y. */
    size_t point_len = 1 + 2 * curve->coordinate_len;
    point = malloc(point_len);
    bld = OSSL_PARAM_BLD_new();
    if (point == NULL || bld == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory converting an EC JWK");
        goto done;
    }
    point[0] = 0x04;
    memcpy(point + 1, x, x_len);
    memcpy(point + 1 + x_len, y, y_len);

    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve->openssl_name, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len)) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory converting an EC JWK");
        goto done;
    }
    status = key_from_params("EC", bld, out, err);

done:
    OSSL_PARAM_BLD_free(bld);
    free(point);
    free(x);
    free(y);
    return status;
}

/* Members that only a private JWK has (RFC 7518 sections 6.2.2 and 6.3.2). */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};

cc_status cc_jose_jwk_public_key(const json_t *jwk, EVP_PKEY **out, cc_err *err)
{
    if (!json_is_object(jwk))
        return cc_err_set(err, CC_ERR_INVALID, "JWK is not a JSON object");

    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++) {
        if (json_object_get(jwk, private_members[i]) != NULL)
            return cc_err_set(err, CC_ERR_INVALID,
                              "JWK contains the private key member \"%s\"; a bundle must hold "
                              "public keys only, so replace this key, which has leaked",
                              private_members[i]);
    }

    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty != NULL && strcmp(kty, "RSA") == 0)
        return rsa_from_jwk(jwk, out, err);
    if (kty != NULL && strcmp(kty, "EC") == 0)
        return ec_from_jwk(jwk, out, err);
    return cc_err_set(err, CC_ERR_INVALID, "JWK key type \"%s\" is not supported; use RSA or EC",
                      kty != NULL ? kty : "(missing)");
}

cc_status cc_jose_jwk_x5c_certificate(const json_t *jwk, X509 **out, cc_err *err)
{
    const json_t *x5c = json_object_get(jwk, "x5c");
    if (!json_is_array(x5c))
        return cc_err_set(err, CC_ERR_INVALID, "x509-svid JWK has no \"x5c\" array");
    if (json_array_size(x5c) != 1)
        return cc_err_set(err, CC_ERR_INVALID,
                          "x509-svid JWK has %zu certificates in \"x5c\"; it must have exactly 1",
                          json_array_size(x5c));

    const json_t *text = json_array_get(x5c, 0);
    if (!json_is_string(text))
        return cc_err_set(err, CC_ERR_INVALID, "x509-svid JWK \"x5c\" entry is not a string");

    uint8_t *der = NULL;
    size_t der_len = 0;
    cc_status status = cc_jose_b64_decode(json_string_value(text), json_string_length(text),
                                          "x509-svid JWK \"x5c\" entry", &der, &der_len, err);
    if (status != CC_OK)
        return status;

    const unsigned char *cursor = der;
    X509 *cert = d2i_X509(NULL, &cursor, (long)der_len);
    if (cert == NULL || cursor != der + der_len) {
        X509_free(cert);
        free(der);
        return cc_err_set(err, CC_ERR_INVALID,
                          "x509-svid JWK \"x5c\" entry is not one DER certificate");
    }

    free(der);
    *out = cert;
    return CC_OK;
}
