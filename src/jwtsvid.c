/* JWT-SVID verification with jansson and OpenSSL EVP. See jwtsvid.h for the
 * rules and their order.
 *
 * The header is checked completely (allowed members, algorithm, typ, kid)
 * before any key is looked up, and the key's type must fit the algorithm
 * before the signature is checked, so a token cannot pick how its signature
 * is interpreted. The signing input is the first two segments exactly as
 * they appear in the token. */
#include "citadel/jwtsvid.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "citadel/jose.h"

typedef enum alg_family { FAMILY_RS, FAMILY_PS, FAMILY_ES } alg_family;

typedef struct jws_alg {
    const char *name;
    alg_family family;
    const EVP_MD *(*md)(void);
    const char *ec_group; /* ES only: OpenSSL group name of the required curve */
    size_t ec_half_len;   /* ES only: bytes of R and of S in the signature */
} jws_alg;

static const jws_alg jws_algs[] = {
    {"RS256", FAMILY_RS, EVP_sha256, NULL, 0},
    {"RS384", FAMILY_RS, EVP_sha384, NULL, 0},
    {"RS512", FAMILY_RS, EVP_sha512, NULL, 0},
    {"PS256", FAMILY_PS, EVP_sha256, NULL, 0},
    {"PS384", FAMILY_PS, EVP_sha384, NULL, 0},
    {"PS512", FAMILY_PS, EVP_sha512, NULL, 0},
    {"ES256", FAMILY_ES, EVP_sha256, "prime256v1", 32},
    {"ES384", FAMILY_ES, EVP_sha384, "secp384r1", 48},
    {"ES512", FAMILY_ES, EVP_sha512, "secp521r1", 66},
};

static const jws_alg *find_alg(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++) {
        if (strcmp(jws_algs[i].name, name) == 0)
            return &jws_algs[i];
    }
    return NULL;
}

int cc_jwtsvid_alg_allowed(const char *name)
{
    return find_alg(name) != NULL;
}

/* The three segments of a compact JWS, pointing into the token. */
typedef struct jws_parts {
    const char *segment[3];
    size_t length[3];
} jws_parts;

static cc_status split_token(const char *token, jws_parts *parts, cc_err *err)
{
    if (token == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID is missing");

    size_t len = strnlen(token, CC_JWTSVID_MAX_LEN + 1);
    if (len > CC_JWTSVID_MAX_LEN)
        return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID is longer than %d bytes",
                          CC_JWTSVID_MAX_LEN);

    const char *start = token;
    for (int i = 0; i < 3; i++) {
        const char *dot = memchr(start, '.', len - (size_t)(start - token));
        if ((i < 2 && dot == NULL) || (i == 2 && dot != NULL))
            return cc_err_set(err, CC_ERR_INVALID,
                              "JWT-SVID is not a compact JWS with exactly three segments");
        const char *end = i < 2 ? dot : token + len;
        parts->segment[i] = start;
        parts->length[i] = (size_t)(end - start);
        /* An empty signature is left to the algorithm check, which rejects "none". */
        if (parts->length[i] == 0 && i < 2)
            return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID segment %d is empty", i + 1);
        start = end + 1;
    }
    return CC_OK;
}

/* Decodes a base64url segment that must hold a JSON object. Caller decrefs *out. */
static cc_status decode_json_segment(const char *segment, size_t len, const char *what,
                                     json_t **out, cc_err *err)
{
    uint8_t *text = NULL;
    size_t text_len = 0;
    cc_status status = cc_jose_b64url_decode(segment, len, what, &text, &text_len, err);
    if (status != CC_OK)
        return status;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)text, text_len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return cc_err_set(err, CC_ERR_INVALID, "%s is not a JSON object without duplicate keys",
                          what);
    }
    *out = root;
    return CC_OK;
}

/* Checks the JOSE header and returns its algorithm and kid (borrowed from header). */
static cc_status check_header(const json_t *header, const jws_alg **alg, const char **kid,
                              cc_err *err)
{
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)header, name, value) {
        if (strcmp(name, "alg") != 0 && strcmp(name, "kid") != 0 && strcmp(name, "typ") != 0)
            return cc_err_set(err, CC_ERR_INVALID,
                              "JWT-SVID header member \"%s\" is not allowed; only alg, kid and "
                              "typ may appear",
                              name);
    }

    const json_t *alg_value = json_object_get(header, "alg");
    if (!json_is_string(alg_value))
        return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID header has no \"alg\" string");
    *alg = find_alg(json_string_value(alg_value));
    if (*alg == NULL)
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT-SVID algorithm \"%s\" is not allowed; use RS256/384/512, "
                          "ES256/384/512 or PS256/384/512",
                          json_string_value(alg_value));

    const json_t *typ = json_object_get(header, "typ");
    if (typ != NULL && (!json_is_string(typ) || (strcmp(json_string_value(typ), "JWT") != 0 &&
                                                 strcmp(json_string_value(typ), "JOSE") != 0)))
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT-SVID header \"typ\" must be absent, \"JWT\" or \"JOSE\"");

    const json_t *kid_value = json_object_get(header, "kid");
    if (kid_value == NULL)
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT-SVID header has no \"kid\"; the key ID is "
                          "required to choose the signing key");
    if (!json_is_string(kid_value) || json_string_length(kid_value) == 0 ||
        json_string_length(kid_value) > CC_JWTSVID_KID_MAX)
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT-SVID header \"kid\" must be a string of 1 to %d bytes",
                          CC_JWTSVID_KID_MAX);
    *kid = json_string_value(kid_value);
    return CC_OK;
}

static cc_status check_key_type(const jws_alg *alg, EVP_PKEY *key, const char *kid, cc_err *err)
{
    if (alg->family != FAMILY_ES) {
        if (EVP_PKEY_is_a(key, "RSA"))
            return CC_OK;
        return cc_err_set(err, CC_ERR_CRYPTO,
                          "JWT-SVID algorithm %s needs an RSA key, but key "
                          "\"%s\" is not one",
                          alg->name, kid);
    }

    char group[64] = "";
    size_t group_len = 0;
    if (EVP_PKEY_is_a(key, "EC") &&
        EVP_PKEY_get_group_name(key, group, sizeof(group), &group_len) == 1 &&
        strcmp(group, alg->ec_group) == 0)
        return CC_OK;
    return cc_err_set(err, CC_ERR_CRYPTO,
                      "JWT-SVID algorithm %s needs an EC key on curve %s, but key \"%s\" is not "
                      "one",
                      alg->name, alg->ec_group, kid);
}

/* Converts a JWS ECDSA signature (R || S, fixed width) to DER. Caller frees *der. */
static cc_status ecdsa_raw_to_der(const jws_alg *alg, const uint8_t *raw, size_t raw_len,
                                  uint8_t **der, size_t *der_len, cc_err *err)
{
    if (raw_len != 2 * alg->ec_half_len)
        return cc_err_set(err, CC_ERR_CRYPTO, "%s signature has %zu bytes; it must have %zu",
                          alg->name, raw_len, 2 * alg->ec_half_len);

    cc_status status = CC_OK;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)alg->ec_half_len, NULL);
    BIGNUM *s = BN_bin2bn(raw + alg->ec_half_len, (int)alg->ec_half_len, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory converting an ECDSA signature");
        goto done;
    }

    /* sig owns r and s from here. */
    unsigned char *buf = NULL;
    int len = i2d_ECDSA_SIG(sig, &buf);
    if (len <= 0) {
        status = cc_err_set(err, CC_ERR_INTERNAL, "could not encode an ECDSA signature");
        goto done;
    }
    *der = buf;
    *der_len = (size_t)len;

done:
    ECDSA_SIG_free(sig);
    return status;
}

static cc_status verify_signature(const jws_alg *alg, EVP_PKEY *key, const jws_parts *parts,
                                  cc_err *err)
{
    cc_status status = CC_OK;
    uint8_t *raw = NULL, *der = NULL;
    size_t raw_len = 0, der_len = 0;
    EVP_MD_CTX *md_ctx = NULL;

    status = cc_jose_b64url_decode(parts->segment[2], parts->length[2], "JWT-SVID signature", &raw,
                                   &raw_len, err);
    if (status != CC_OK)
        goto done;

    const uint8_t *sig = raw;
    size_t sig_len = raw_len;
    if (alg->family == FAMILY_ES) {
        status = ecdsa_raw_to_der(alg, raw, raw_len, &der, &der_len, err);
        if (status != CC_OK)
            goto done;
        sig = der;
        sig_len = der_len;
    }

    EVP_PKEY_CTX *pkey_ctx = NULL; /* owned by md_ctx */
    md_ctx = EVP_MD_CTX_new();
    if (md_ctx == NULL || EVP_DigestVerifyInit(md_ctx, &pkey_ctx, alg->md(), NULL, key) != 1) {
        status = cc_err_set(err, CC_ERR_INTERNAL, "could not set up %s verification", alg->name);
        goto done;
    }
    if (alg->family == FAMILY_PS &&
        (EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pkey_ctx, alg->md()) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
        status = cc_err_set(err, CC_ERR_INTERNAL, "could not set up %s verification", alg->name);
        goto done;
    }

    /* The signing input is "header.payload", the token up to the second dot. */
    size_t input_len = parts->length[0] + 1 + parts->length[1];
    if (EVP_DigestVerify(md_ctx, sig, sig_len, (const unsigned char *)parts->segment[0],
                         input_len) != 1) {
        status = cc_err_set(err, CC_ERR_CRYPTO, "JWT-SVID signature is invalid");
        goto done;
    }

done:
    EVP_MD_CTX_free(md_ctx);
    OPENSSL_free(der);
    free(raw);
    return status;
}

static int64_t add_saturated(int64_t a, int64_t b)
{
    int64_t sum;
    if (!__builtin_add_overflow(a, b, &sum))
        return sum;
    return b > 0 ? INT64_MAX : INT64_MIN;
}

/* Reads the NumericDate claim name. A fraction is rounded toward the stricter
 * side: down for exp, up for nbf (round_up). */
static cc_status read_numeric_date(const json_t *claims, const char *name, bool round_up,
                                   bool *present, int64_t *out, cc_err *err)
{
    const json_t *value = json_object_get(claims, name);
    *present = value != NULL;
    if (value == NULL)
        return CC_OK;

    if (json_is_integer(value)) {
        *out = (int64_t)json_integer_value(value);
        return CC_OK;
    }
    if (json_is_real(value)) {
        double seconds = round_up ? ceil(json_real_value(value)) : floor(json_real_value(value));
        /* 9.2e18 stays below INT64_MAX after rounding to a double. */
        if (isfinite(seconds) && fabs(seconds) < 9.2e18) {
            *out = (int64_t)seconds;
            return CC_OK;
        }
    }
    return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID claim \"%s\" is not a NumericDate", name);
}

static cc_status check_times(const json_t *claims, int64_t now, int64_t leeway, int64_t *exp,
                             cc_err *err)
{
    bool present = false;
    cc_status status = read_numeric_date(claims, "exp", false, &present, exp, err);
    if (status != CC_OK)
        return status;
    if (!present)
        return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID has no \"exp\" claim");
    if (now > add_saturated(*exp, leeway))
        return cc_err_set(err, CC_ERR_EXPIRED,
                          "JWT-SVID expired at %lld (checked at %lld with %lld s leeway)",
                          (long long)*exp, (long long)now, (long long)leeway);

    int64_t nbf = 0;
    status = read_numeric_date(claims, "nbf", true, &present, &nbf, err);
    if (status != CC_OK)
        return status;
    if (present && nbf > add_saturated(now, leeway))
        return cc_err_set(err, CC_ERR_EXPIRED,
                          "JWT-SVID is not valid before %lld (checked at %lld with %lld s leeway)",
                          (long long)nbf, (long long)now, (long long)leeway);
    return CC_OK;
}

/* Appends text to out as a quoted list item ("a", "b"); stops with "..." when
 * out is full. Audiences are not secrets, so messages may show them. */
static void append_audience(char *out, size_t size, const char *text)
{
    size_t used = strlen(out);
    int n = snprintf(out + used, size - used, "%s\"%s\"", used > 0 ? ", " : "", text);
    if (n < 0 || (size_t)n >= size - used)
        snprintf(out + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
}

/* Writes the string entries of the token's "aud" array into out as a list. */
static void join_token_audiences(const json_t *aud, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(aud); i++)
        append_audience(out, size, json_string_value(json_array_get(aud, i)));
}

/* Writes the configured audiences into out as a list. */
static void join_audiences(const char *const *audiences, size_t count, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < count; i++)
        append_audience(out, size, audiences[i]);
}

/* Returns the index of the configured audience equal to value, or -1. */
static long find_audience(const char *value, const char *const *audiences, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(value, audiences[i]) == 0)
            return (long)i;
    }
    return -1;
}

static cc_status check_audience(const json_t *claims, const char *const *audiences, size_t count,
                                size_t *matched, cc_err *err)
{
    const json_t *aud = json_object_get(claims, "aud");
    if (aud == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID has no \"aud\" claim");

    if (json_is_string(aud)) {
        if (json_string_length(aud) == 0)
            return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID \"aud\" claim is empty");
        long index = find_audience(json_string_value(aud), audiences, count);
        if (index < 0) {
            char configured[200];
            join_audiences(audiences, count, configured, sizeof(configured));
            return cc_err_set(err, CC_ERR_INVALID,
                              "JWT-SVID audience \"%s\" is not a configured audience [%s]; "
                              "request a token for a configured audience or add one to the config",
                              json_string_value(aud), configured);
        }
        *matched = (size_t)index;
        return CC_OK;
    }

    if (!json_is_array(aud) || json_array_size(aud) == 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT-SVID \"aud\" claim must be a string or a non-empty array");

    long index = -1;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const json_t *entry = json_array_get(aud, i);
        if (!json_is_string(entry))
            return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID \"aud\" entry %zu is not a string", i);
        if (index < 0)
            index = find_audience(json_string_value(entry), audiences, count);
    }
    if (index < 0) {
        char presented[200], configured[200];
        join_token_audiences(aud, presented, sizeof(presented));
        join_audiences(audiences, count, configured, sizeof(configured));
        return cc_err_set(err, CC_ERR_INVALID,
                          "none of the JWT-SVID audiences [%s] is a configured audience [%s]; "
                          "request a token for a configured audience or add one to the config",
                          presented, configured);
    }
    *matched = (size_t)index;
    return CC_OK;
}

static cc_status check_configuration(const char *const *audiences, size_t count, int64_t leeway,
                                     cc_err *err)
{
    if (audiences == NULL || count == 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "no JWT-SVID audience is configured; configure at least one, because "
                          "an empty set would accept tokens meant for any service");
    for (size_t i = 0; i < count; i++) {
        if (audiences[i] == NULL || audiences[i][0] == '\0')
            return cc_err_set(err, CC_ERR_INVALID, "configured JWT-SVID audience %zu is empty", i);
    }
    if (leeway < 0)
        return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID leeway %lld s is negative",
                          (long long)leeway);
    return CC_OK;
}

/* Parses the "sub" claim into id. */
static cc_status read_subject(const json_t *claims, cc_spiffeid *id, cc_err *err)
{
    const json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub) || json_string_length(sub) == 0)
        return cc_err_set(err, CC_ERR_INVALID, "JWT-SVID has no \"sub\" claim");

    cc_status status = cc_spiffeid_parse(json_string_value(sub), json_string_length(sub), id, err);
    if (status != CC_OK)
        cc_err_prefix(err, "JWT-SVID \"sub\" is not a valid SPIFFE ID");
    return status;
}

/* Finds the key for kid in the bundle of trust_domain only. */
static cc_status find_key(const cc_bundle_set *bundles, const char *trust_domain, const char *kid,
                          EVP_PKEY **key, cc_err *err)
{
    const cc_bundle *bundle = cc_bundle_set_find(bundles, trust_domain);
    if (bundle == NULL)
        return cc_err_set(err, CC_ERR_NOT_FOUND, "no bundle for trust domain \"%s\"", trust_domain);

    *key = cc_bundle_find_jwt_authority(bundle, kid);
    if (*key == NULL && cc_bundle_jwt_authority_count(bundle) == 0)
        return cc_err_set(err, CC_ERR_NOT_FOUND,
                          "no JWT authority \"%s\" in the bundle of trust domain \"%s\": that "
                          "bundle has no JWT authorities, as a PEM bundle contains only X.509 CAs; "
                          "JWT authorities come from a SPIFFE bundle (JWKS), a SPIFFE bundle map "
                          "or a spiffe-helper JWT bundle file",
                          kid, trust_domain);
    if (*key == NULL)
        return cc_err_set(err, CC_ERR_NOT_FOUND,
                          "no JWT authority \"%s\" in the bundle of trust domain \"%s\"", kid,
                          trust_domain);
    return CC_OK;
}

cc_status cc_jwtsvid_verify(const char *token, const cc_bundle_set *bundles,
                            const char *const *audiences, size_t audience_count, int64_t now,
                            int64_t leeway_seconds, cc_jwtsvid_info *out, cc_err *err)
{
    jws_parts parts;
    json_t *header = NULL, *claims = NULL;
    const jws_alg *alg = NULL;
    const char *kid = NULL;
    EVP_PKEY *key = NULL; /* borrowed from bundles */
    cc_spiffeid id;
    int64_t exp = 0;
    size_t matched = 0;

    if (out != NULL)
        memset(out, 0, sizeof(*out));

    cc_status status = check_configuration(audiences, audience_count, leeway_seconds, err);
    if (status == CC_OK)
        status = split_token(token, &parts, err);
    if (status == CC_OK)
        status =
            decode_json_segment(parts.segment[0], parts.length[0], "JWT-SVID header", &header, err);
    if (status == CC_OK)
        status = check_header(header, &alg, &kid, err);
    if (status == CC_OK)
        status =
            decode_json_segment(parts.segment[1], parts.length[1], "JWT-SVID claims", &claims, err);
    if (status == CC_OK)
        status = read_subject(claims, &id, err);
    if (status == CC_OK)
        status = find_key(bundles, id.trust_domain, kid, &key, err);
    if (status == CC_OK)
        status = check_key_type(alg, key, kid, err);
    if (status == CC_OK)
        status = verify_signature(alg, key, &parts, err);
    if (status == CC_OK)
        status = check_times(claims, now, leeway_seconds, &exp, err);
    if (status == CC_OK)
        status = check_audience(claims, audiences, audience_count, &matched, err);

    if (status == CC_OK && out != NULL) {
        memcpy(out->spiffe_id, id.id, sizeof(out->spiffe_id));
        memcpy(out->trust_domain, id.trust_domain, sizeof(out->trust_domain));
        snprintf(out->kid, sizeof(out->kid), "%s", kid);
        snprintf(out->alg, sizeof(out->alg), "%s", alg->name);
        out->exp = exp;
        out->matched_audience = matched;
    }

    json_decref(header);
    json_decref(claims);
    return status;
}

cc_status cc_jwtsvid_peek_subject(const char *token, cc_spiffeid *out, cc_err *err)
{
    jws_parts parts;
    json_t *claims = NULL;

    cc_status status = split_token(token, &parts, err);
    if (status == CC_OK)
        status =
            decode_json_segment(parts.segment[1], parts.length[1], "JWT-SVID claims", &claims, err);
    if (status == CC_OK)
        status = read_subject(claims, out, err);
    json_decref(claims);
    return status;
}
