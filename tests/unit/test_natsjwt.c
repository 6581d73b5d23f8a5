#include <criterion/criterion.h>

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "citadel/codec.h"
#include "citadel/natsjwt.h"
#include "citadel/nkey.h"

/* Public test keys published with nats-server's tests. */
#define ACCOUNT_SEED "SAANDLKMXL6CUS3CP52WIXBEDN6YJ545GDKC65U5JZPPV6WH6ESWUA6YAI"
#define ACCOUNT_PUBLIC "ABJHLOVMPA4CI6R5KLNGOB4GSLNIY7IOUPAJC4YFNDLQVIOBYQGUWVLA"
#define USER_PUBLIC "UBO2MQV67TQTVIRV3XFTEZOACM4WLOCMCDMAWN5QVN5PI2N6JHTVDRON"

#define NOW 1760000000

static cc_nkey account_key(void)
{
    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_from_seed(ACCOUNT_SEED, CC_NKEY_ACCOUNT, &key, &err), CC_OK, "%s",
                 err.message);
    return key;
}

static json_t *user_claims(void)
{
    json_t *claims = json_pack("{s:s, s:s, s:I, s:{s:s, s:i}}", "sub", USER_PUBLIC, "name", "bob",
                               "exp", (json_int_t)(NOW + 60), "nats", "type", "user", "version", 2);
    cr_assert_not_null(claims);
    return claims;
}

static char *encode_or_fail(const json_t *claims, int64_t iat)
{
    cc_nkey key = account_key();
    cc_err err = {0};
    char *token = NULL;
    cr_assert_eq(cc_jwt_encode(claims, &key, iat, &token, &err), CC_OK, "%s", err.message);
    cc_nkey_wipe(&key);
    return token;
}

/* Signs arbitrary header and claims JSON with the account key. */
static char *sign_raw(const char *header, const char *claims)
{
    cc_nkey key = account_key();
    cc_err err = {0};
    char *token = NULL;
    cr_assert_eq(cc_jwt_sign_raw(header, claims, &key, &token, &err), CC_OK, "%s", err.message);
    cc_nkey_wipe(&key);
    return token;
}

static const char *good_header = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";

static const char *good_claims = "{\"iss\":\"" ACCOUNT_PUBLIC "\",\"sub\":\"" USER_PUBLIC "\","
                                 "\"nats\":{\"type\":\"user\",\"version\":2}}";

/* Decodes token and returns the status, keeping the message in err. */
static cc_status decode_status(const char *token, cc_nkey_kind expected, int64_t now, cc_err *err)
{
    cc_jwt jwt;
    cc_status status = cc_jwt_decode(token, strlen(token), expected, now, &jwt, err);
    cc_jwt_free(&jwt);
    return status;
}

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* Returns the decoded claims segment of token as a malloc'd string. */
static char *claims_segment(const char *token)
{
    const char *start = strchr(token, '.') + 1;
    const char *end = strchr(start, '.');
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    cr_assert_eq(cc_b64url_decode(start, (size_t)(end - start), &raw, &raw_len, NULL), CC_OK);
    return (char *)raw;
}

Test(jwt_hash, sha512_256_known_answer)
{
    uint8_t digest[32];
    cr_assert_eq(cc_jwt_sha512_256((const uint8_t *)"abc", 3, digest, NULL), CC_OK);

    char hex[65];
    for (size_t i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", digest[i]);
    cr_assert_str_eq(hex, "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23");
}

Test(jwt_jti, known_answer)
{
    json_t *claims =
        json_pack("{s:I, s:s, s:s, s:s}", "iat", (json_int_t)1752631863, "iss",
                  "AB5XVIN4FZNYXNV2X6X7FVVRE7A4ED73BY4ENPRNAGKKJQ7RWR2Q5ASS", "name", "sentinel",
                  "sub", "UA2IY6T4CWNRSEYQYNHPW6HXHBZANCFZOLLQY7NRVJSXOI3UEYSTZKHF");
    char jti[CC_JWT_JTI_LEN + 1];

    cr_assert_eq(cc_jwt_compute_jti(claims, jti, NULL), CC_OK);
    cr_assert_str_eq(jti, "CPHVOVOXIIPWJD2YVL5OJHKIKLW6GNZX7XACM7HFX3HUFVV4A4AQ");
    json_decref(claims);
}

Test(jwt_jti, ignores_order_jti_and_empty)
{
    /* Same base claims as the known-answer test, inserted in another order, with a
     * jti, an empty aud, a zero nbf and a nats object, none of which count. */
    json_t *claims = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:I, s:{}}", "sub",
                               "UA2IY6T4CWNRSEYQYNHPW6HXHBZANCFZOLLQY7NRVJSXOI3UEYSTZKHF", "jti",
                               "ignored", "aud", "", "nbf", 0, "name", "sentinel", "iss",
                               "AB5XVIN4FZNYXNV2X6X7FVVRE7A4ED73BY4ENPRNAGKKJQ7RWR2Q5ASS", "iat",
                               (json_int_t)1752631863, "nats");
    char jti[CC_JWT_JTI_LEN + 1];

    cr_assert_eq(cc_jwt_compute_jti(claims, jti, NULL), CC_OK);
    cr_assert_str_eq(jti, "CPHVOVOXIIPWJD2YVL5OJHKIKLW6GNZX7XACM7HFX3HUFVV4A4AQ");
    json_decref(claims);
}

Test(jwt_encode, header_segment)
{
    json_t *claims = user_claims();
    char *token = encode_or_fail(claims, NOW);

    cr_assert_eq(strncmp(token, CC_JWT_HEADER_B64 ".", strlen(CC_JWT_HEADER_B64) + 1), 0, "%s",
                 token);
    free(token);
    json_decref(claims);
}

Test(jwt_encode, claims_in_go_order)
{
    json_t *claims = json_pack("{s:{s:s, s:i}, s:s, s:I, s:s, s:s, s:I}", "nats", "type", "user",
                               "version", 2, "sub", USER_PUBLIC, "nbf", (json_int_t)(NOW - 5),
                               "name", "bob", "aud", "APP", "exp", (json_int_t)(NOW + 60));
    char *token = encode_or_fail(claims, NOW);
    char *payload = claims_segment(token);

    cc_jwt jwt;
    cc_err err = {0};
    cr_assert_eq(cc_jwt_parse(token, strlen(token), &jwt, &err), CC_OK, "%s", err.message);
    char expected[1024];
    snprintf(expected, sizeof(expected),
             "{\"aud\":\"APP\",\"exp\":%d,\"jti\":\"%s\",\"iat\":%d,\"iss\":\"%s\","
             "\"name\":\"bob\",\"nbf\":%d,\"sub\":\"%s\","
             "\"nats\":{\"type\":\"user\",\"version\":2}}",
             NOW + 60, jwt.jti, NOW, ACCOUNT_PUBLIC, NOW - 5, USER_PUBLIC);
    cr_assert_str_eq(payload, expected);

    char jti[CC_JWT_JTI_LEN + 1];
    cr_assert_eq(cc_jwt_compute_jti(jwt.claims, jti, NULL), CC_OK);
    cr_assert_str_eq(jwt.jti, jti);
    cc_jwt_free(&jwt);
    free(payload);
    free(token);
    json_decref(claims);
}

Test(jwt_encode, escapes_html_like_go)
{
    json_t *claims = user_claims();
    json_object_set_new(claims, "name", json_string("a<b>&c\xe2\x80\xa8"));
    char *token = encode_or_fail(claims, NOW);
    char *payload = claims_segment(token);

    cr_assert(contains(payload, "\"name\":\"a\\u003cb\\u003e\\u0026c\\u2028\""), "%s", payload);

    cc_jwt jwt;
    cr_assert_eq(cc_jwt_parse(token, strlen(token), &jwt, NULL), CC_OK);
    cr_assert_str_eq(jwt.name, "a<b>&c\xe2\x80\xa8");
    cc_jwt_free(&jwt);
    free(payload);
    free(token);
    json_decref(claims);
}

Test(jwt_encode, escapes_control_like_go)
{
    /* Go writes "\u001f" with lowercase hex, jansson "\u001F"; an escaped
     * backslash before "u" must stay a backslash. */
    json_t *claims = user_claims();
    json_object_set_new(claims, "name", json_string("a\x1f\\uABCD\n"));
    char *token = encode_or_fail(claims, NOW);
    char *payload = claims_segment(token);

    cr_assert(contains(payload, "\"name\":\"a\\u001f\\\\uABCD\\n\""), "%s", payload);
    free(payload);
    free(token);
    json_decref(claims);
}

Test(jwt_encode, round_trip)
{
    json_t *claims = user_claims();
    char *token = encode_or_fail(claims, NOW);

    cc_jwt jwt;
    cc_err err = {0};
    cr_assert_eq(cc_jwt_decode(token, strlen(token), CC_NKEY_ACCOUNT, NOW, &jwt, &err), CC_OK, "%s",
                 err.message);
    cr_assert_str_eq(jwt.iss, ACCOUNT_PUBLIC);
    cr_assert_str_eq(jwt.sub, USER_PUBLIC);
    cr_assert_str_eq(jwt.name, "bob");
    cr_assert_null(jwt.aud);
    cr_assert_eq(jwt.iat, NOW);
    cr_assert_eq(jwt.exp, NOW + 60);
    cr_assert_eq(jwt.nbf, 0);
    cr_assert_eq(strlen(jwt.jti), CC_JWT_JTI_LEN);
    cr_assert_str_eq(jwt.type, "user");
    cr_assert_eq(jwt.version, 2);
    cr_assert_eq(jwt.issuer_kind, CC_NKEY_ACCOUNT);
    cr_assert_str_eq(json_string_value(json_object_get(jwt.header, "alg")), "ed25519-nkey");
    cr_assert_str_eq(jwt.token, token);
    cc_jwt_free(&jwt);
    free(token);
    json_decref(claims);
}

Test(jwt_encode, leaves_caller_claims_unchanged)
{
    json_t *claims = user_claims();
    char *before = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    char *token = encode_or_fail(claims, NOW);
    char *after = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);

    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    free(token);
    json_decref(claims);
}

Test(jwt_encode, rejects_bad_claims)
{
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"{\"type\":\"user\",\"nats\":{\"type\":\"user\",\"version\":2}}", "version 1"},
        {"{\"iss\":\"x\",\"nats\":{\"type\":\"user\",\"version\":2}}", "\"iss\""},
        {"{\"iat\":1,\"nats\":{\"type\":\"user\",\"version\":2}}", "\"iat\""},
        {"{\"jti\":\"x\",\"nats\":{\"type\":\"user\",\"version\":2}}", "\"jti\""},
        {"{\"extra\":1,\"nats\":{\"type\":\"user\",\"version\":2}}", "\"extra\""},
        {"{\"sub\":\"x\"}", "\"nats\" object"},
        {"{\"nats\":{\"version\":2}}", "nats.type"},
        {"{\"nats\":{\"type\":\"user\"}}", "nats.version"},
        {"{\"nats\":{\"type\":\"user\",\"version\":1}}", "nats.version"},
        {"{\"exp\":1.5,\"nats\":{\"type\":\"user\",\"version\":2}}", "\"exp\""},
        {"{\"sub\":7,\"nats\":{\"type\":\"user\",\"version\":2}}", "\"sub\""},
    };
    cc_nkey key = account_key();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *claims = json_loads(cases[i].json, 0, NULL);
        cr_assert_not_null(claims);
        char *token = NULL;
        cc_err err = {0};
        cr_assert_eq(cc_jwt_encode(claims, &key, NOW, &token, &err), CC_ERR_INVALID, "%s",
                     cases[i].json);
        cr_assert(contains(err.message, cases[i].message), "%s: %s", cases[i].json, err.message);
        cr_assert_null(token);
        json_decref(claims);
    }
    cc_nkey_wipe(&key);
}

Test(jwt_encode, rejects_curve_signer)
{
    cc_nkey curve;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &curve, NULL), CC_OK);
    json_t *claims = user_claims();
    char *token = NULL;

    cr_assert_eq(cc_jwt_encode(claims, &curve, NOW, &token, NULL), CC_ERR_INVALID);
    cr_assert_null(token);
    json_decref(claims);
}

Test(jwt_decode, verifies_bytes_as_received)
{
    /* Spaces and another key order: a decoder that re-serialised the claims
     * before verifying would reject this valid signature. */
    char *token = sign_raw("{ \"alg\" : \"ed25519-nkey\", \"typ\" : \"JWT\" }",
                           "{ \"sub\" : \"" USER_PUBLIC "\", \"iss\" : \"" ACCOUNT_PUBLIC "\", "
                           "\"nats\" : { \"version\" : 2, \"type\" : \"user\" } }");
    cc_err err = {0};

    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW, &err), CC_OK, "%s", err.message);
    free(token);
}

Test(jwt_decode, accepts_old_alg_and_lowercase_typ)
{
    char *token = sign_raw("{\"typ\":\"jwt\",\"alg\":\"ed25519\"}", good_claims);
    cc_err err = {0};

    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW, &err), CC_OK, "%s", err.message);
    free(token);
}

Test(jwt_decode, rejects_bad_header)
{
    static const struct {
        const char *header;
        const char *message;
    } cases[] = {
        {"{\"typ\":\"JOSE\",\"alg\":\"ed25519-nkey\"}", "typ"},
        {"{\"alg\":\"ed25519-nkey\"}", "typ"},
        {"{\"typ\":\"JWT\",\"alg\":\"HS256\"}", "alg"},
        {"{\"typ\":\"JWT\"}", "alg"},
        {"[\"JWT\"]", "not a JSON object"},
        {"{\"typ\":\"JWT\",\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}", "invalid JSON"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *token = sign_raw(cases[i].header, good_claims);
        cc_err err = {0};
        cr_assert_eq(decode_status(token, CC_NKEY_ANY, NOW, &err), CC_ERR_INVALID, "%s",
                     cases[i].header);
        cr_assert(contains(err.message, cases[i].message), "%s: %s", cases[i].header, err.message);
        free(token);
    }
}

Test(jwt_decode, rejects_bad_claims)
{
    static const struct {
        const char *claims;
        const char *message;
    } cases[] = {
        /* Version 1 traps. */
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"type\":\"user\",\"nats\":{\"type\":\"user\","
         "\"version\":2}}",
         "version 1"},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"nats\":{\"type\":\"user\"}}", "version 1"},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"nats\":{\"type\":\"user\",\"version\":1}}",
         "version 1"},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"nats\":{\"type\":\"user\",\"version\":\"2\"}}",
         "version 1"},
        /* Structure. */
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\"}", "\"nats\""},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"nats\":{\"version\":2}}", "nats.type"},
        {"{\"nats\":{\"type\":\"user\",\"version\":2}}", "\"iss\" is missing"},
        {"{\"iss\":\"not-a-key\",\"nats\":{\"type\":\"user\",\"version\":2}}", "issuer"},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"exp\":\"soon\",\"nats\":{\"type\":\"user\","
         "\"version\":2}}",
         "\"exp\""},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"aud\":[\"APP\"],\"nats\":{\"type\":\"user\","
         "\"version\":2}}",
         "\"aud\""},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",\"iss\":\"" ACCOUNT_PUBLIC "\",\"nats\":{\"type\":"
         "\"user\",\"version\":2}}",
         "invalid JSON"},
        {"{\"iss\":\"" ACCOUNT_PUBLIC "\",", "invalid JSON"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *token = sign_raw(good_header, cases[i].claims);
        cc_err err = {0};
        cr_assert_eq(decode_status(token, CC_NKEY_ANY, NOW, &err), CC_ERR_INVALID, "%s",
                     cases[i].claims);
        cr_assert(contains(err.message, cases[i].message), "%s: %s", cases[i].claims, err.message);
        free(token);
    }
}

/* Returns a malloc'd copy of token with one character replaced. */
static char *replace_char(const char *token, size_t at, char c)
{
    char *copy = strdup(token);
    copy[at] = c;
    return copy;
}

/* Returns a malloc'd string made with printf formatting. */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return strdup(buf);
}

Test(jwt_decode, rejects_bad_segments)
{
    char *token = sign_raw(good_header, good_claims);
    int signed_len = (int)(strrchr(token, '.') - token);
    size_t len = strlen(token);
    struct {
        const char *name;
        char *token;
        const char *message;
    } cases[] = {
        {"two segments", format("%.*s", signed_len, token), "2 segments"},
        {"four segments", format("%s.AAAA", token), "4 segments"},
        {"padding", format("%s==", token), "padding"},
        {"standard alphabet", replace_char(token, len - 3, '+'), "standard base64"},
        {"bad character", replace_char(token, len - 3, '*'), "signature segment"},
        {"bad header character", replace_char(token, 2, '!'), "header segment"},
        {"short signature", format("%.*s.AAAA", signed_len, token), "signature is 3 bytes"},
        {"empty", strdup(""), "empty"},
        {"NUL byte", strdup(token), "NUL byte"},
    };
    /* The NUL case passes the full length, so the NUL sits inside the token. */
    size_t nul_case = sizeof(cases) / sizeof(cases[0]) - 1;
    cases[nul_case].token[10] = '\0';

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cc_jwt jwt;
        cc_err err = {0};
        size_t token_len = i == nul_case ? len : strlen(cases[i].token);
        cr_assert_eq(cc_jwt_decode(cases[i].token, token_len, CC_NKEY_ANY, NOW, &jwt, &err),
                     CC_ERR_INVALID, "%s", cases[i].name);
        cr_assert(contains(err.message, cases[i].message), "%s: %s", cases[i].name, err.message);
        free(cases[i].token);
    }
    free(token);
}

Test(jwt_decode, rejects_oversize_token)
{
    size_t len = CC_JWT_MAX_LEN + 1;
    char *token = malloc(len + 1);
    memset(token, 'A', len);
    token[len] = '\0';
    cc_err err = {0};

    cr_assert_eq(decode_status(token, CC_NKEY_ANY, NOW, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "more than the limit"), "%s", err.message);
    free(token);
}

Test(jwt_decode, rejects_wrong_issuer_kind)
{
    char *token = sign_raw(good_header, good_claims);
    cc_err err = {0};

    cr_assert_eq(decode_status(token, CC_NKEY_OPERATOR, NOW, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "is an account key, expected an operator key"), "%s",
              err.message);
    free(token);
}

Test(jwt_decode, rejects_flipped_signature)
{
    char *token = sign_raw(good_header, good_claims);
    /* The second-to-last character carries only signature bits; the last
     * one may carry unused trailing bits. */
    size_t at = strlen(token) - 2;
    token[at] = token[at] == 'A' ? 'B' : 'A';
    cc_err err = {0};

    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW, &err), CC_ERR_CRYPTO);
    cr_assert(contains(err.message, "does not verify"), "%s", err.message);
    free(token);
}

Test(jwt_decode, rejects_other_signer)
{
    /* Signed by a fresh key but naming the test account as issuer. */
    cc_nkey other;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &other, NULL), CC_OK);
    char *token = NULL;
    cr_assert_eq(cc_jwt_sign_raw(good_header, good_claims, &other, &token, NULL), CC_OK);

    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW, NULL), CC_ERR_CRYPTO);
    free(token);
}

Test(jwt_decode, rejects_changed_claims)
{
    char *token = sign_raw(good_header, good_claims);
    char *other = sign_raw(good_header, "{\"iss\":\"" ACCOUNT_PUBLIC "\",\"sub\":\"x\","
                                        "\"nats\":{\"type\":\"user\",\"version\":2}}");
    /* Claims of other with the signature of token. */
    char spliced[4096];
    snprintf(spliced, sizeof(spliced), "%.*s%s", (int)(strrchr(other, '.') - other), other,
             strrchr(token, '.'));

    cr_assert_eq(decode_status(spliced, CC_NKEY_ACCOUNT, NOW, NULL), CC_ERR_CRYPTO);
    free(token);
    free(other);
}

Test(jwt_decode, checks_exp_and_nbf)
{
    json_t *claims = user_claims();
    json_object_set_new(claims, "nbf", json_integer(NOW - 10));
    char *token = encode_or_fail(claims, NOW);
    cc_err err = {0};

    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW + 60, &err), CC_OK, "%s", err.message);
    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW + 61, &err), CC_ERR_EXPIRED);
    cr_assert(contains(err.message, "expired"), "%s", err.message);
    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW - 10, &err), CC_OK, "%s", err.message);
    cr_assert_eq(decode_status(token, CC_NKEY_ACCOUNT, NOW - 11, &err), CC_ERR_EXPIRED);
    cr_assert(contains(err.message, "not valid before"), "%s", err.message);
    free(token);
    json_decref(claims);
}

Test(jwt_decode, failure_leaves_struct_zeroed)
{
    cc_jwt jwt;
    memset(&jwt, 0xAB, sizeof(jwt));
    char *token = sign_raw(good_header, good_claims);

    cr_assert_eq(cc_jwt_decode(token, strlen(token), CC_NKEY_OPERATOR, NOW, &jwt, NULL),
                 CC_ERR_INVALID);
    cr_assert_null(jwt.token);
    cr_assert_null(jwt.claims);
    cr_assert_null(jwt.header);
    cc_jwt_free(&jwt);
    free(token);
}

Test(jwt_decode, parse_skips_signature)
{
    char *token = sign_raw(good_header, good_claims);
    size_t at = strlen(token) - 2;
    token[at] = token[at] == 'A' ? 'B' : 'A';
    cc_jwt jwt;

    cr_assert_eq(cc_jwt_parse(token, strlen(token), &jwt, NULL), CC_OK);
    cr_assert_eq(cc_jwt_verify_signature(&jwt, NULL), CC_ERR_CRYPTO);
    cc_jwt_free(&jwt);
    free(token);
}
