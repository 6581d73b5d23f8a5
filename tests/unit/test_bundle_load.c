#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>

#include "citadel/bundle.h"
#include "citadel/bundle_load.h"
#include "citadel/jose.h"
#include "../support/jwtmint.h"
#include "../support/pki.h"

static cc_test_cert *ca_a, *ca_b;
static EVP_PKEY *ec_key, *rsa_key;

static void setup(void)
{
    cc_test_cert_spec spec = cc_test_spec_ca("root a");
    ca_a = cc_test_cert_issue(&spec, NULL);
    spec = cc_test_spec_ca("root b");
    ca_b = cc_test_cert_issue(&spec, NULL);
    ec_key = cc_test_jwt_key("P-256");
    rsa_key = cc_test_jwt_key("RSA");
    cr_assert(ca_a && ca_b && ec_key && rsa_key);
}

static void teardown(void)
{
    cc_test_cert_free(ca_a);
    cc_test_cert_free(ca_b);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(rsa_key);
}

TestSuite(bundle_pem, .init = setup, .fini = teardown);
TestSuite(bundle_spiffe, .init = setup, .fini = teardown);
TestSuite(bundle_map, .init = setup, .fini = teardown);
TestSuite(bundle_jwt_map, .init = setup, .fini = teardown);
TestSuite(bundle_detect, .init = setup, .fini = teardown);
TestSuite(bundle_sources, .init = setup, .fini = teardown);

/* Returns "<pem of a><pem of b>" (b may be NULL). Caller frees. */
static char *two_pems(X509 *a, X509 *b)
{
    char *pa = cc_test_cert_pem(a);
    char *pb = b != NULL ? cc_test_cert_pem(b) : strdup("");
    size_t size = strlen(pa) + strlen(pb) + 1;
    char *out = malloc(size);
    snprintf(out, size, "%s%s", pa, pb);
    free(pa);
    free(pb);
    return out;
}

/* Serializes json (stolen) compactly. Caller frees. */
static char *dump(json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    cr_assert_not_null(text);
    return text;
}

/* Parses text as a SPIFFE bundle of "a.example"; returns the status and *out. */
static cc_status parse_spiffe(const char *text, cc_bundle **out, cc_err *err)
{
    *out = NULL;
    return cc_bundle_parse_spiffe("a.example", text, strlen(text), out, err);
}

/* A SPIFFE bundle containing the single JWK key. */
static char *bundle_with_key(json_t *key)
{
    return dump(json_pack("{s:[o]}", "keys", key));
}

/* ---- PEM ---------------------------------------------------------------- */

Test(bundle_pem, two_certificates)
{
    char *pem = two_pems(ca_a->cert, ca_b->cert);
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_parse_pem("spiffe://a.example", pem, strlen(pem), &bundle, &err), CC_OK,
                 "%s", err.message);
    cr_assert_str_eq(cc_bundle_trust_domain(bundle), "a.example");
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(bundle)), 2);
    cr_assert_eq(cc_bundle_jwt_authority_count(bundle), 0);
    cc_bundle_free(bundle);
    free(pem);
}

Test(bundle_pem, truncated_rejected)
{
    char *pem = two_pems(ca_a->cert, ca_b->cert);
    size_t len = strlen(pem);
    cc_bundle *bundle = NULL;

    /* Cut inside the second block: the file is still being written. */
    cr_assert_neq(cc_bundle_parse_pem("a.example", pem, len - 40, &bundle, NULL), CC_OK);
    cr_assert_null(bundle);
    cr_assert_neq(cc_bundle_parse_pem("a.example", pem, 0, &bundle, NULL), CC_OK, "empty file");
    free(pem);
}

Test(bundle_pem, trailing_text_rejected)
{
    char *pem = two_pems(ca_a->cert, NULL);
    char buf[8192];
    snprintf(buf, sizeof(buf), "%sgarbage\n", pem);
    cc_bundle *bundle = NULL;
    cr_assert_neq(cc_bundle_parse_pem("a.example", buf, strlen(buf), &bundle, NULL), CC_OK);
    free(pem);
}

Test(bundle_pem, private_key_block_rejected)
{
    char *pem = two_pems(ca_a->cert, NULL);
    char *key = cc_test_key_pem(ca_a->key);
    char buf[8192];
    snprintf(buf, sizeof(buf), "%s%s", pem, key);
    cc_bundle *bundle = NULL;
    cr_assert_neq(cc_bundle_parse_pem("a.example", buf, strlen(buf), &bundle, NULL), CC_OK);
    free(pem);
    free(key);
}

Test(bundle_pem, invalid_trust_domain_rejected)
{
    char *pem = two_pems(ca_a->cert, NULL);
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_parse_pem("A.example", pem, strlen(pem), &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "\"A.example\"") != NULL, "%s", err.message);
    cr_assert_eq(cc_bundle_parse_pem("spiffe://a.example/path", pem, strlen(pem), &bundle, NULL),
                 CC_ERR_INVALID);
    cr_assert_eq(cc_bundle_parse_pem(NULL, pem, strlen(pem), &bundle, NULL), CC_ERR_INVALID);
    free(pem);
}

/* ---- SPIFFE bundle ------------------------------------------------------ */

Test(bundle_spiffe, full_bundle)
{
    json_t *root =
        json_pack("{s:I, s:I, s:[o, o, o]}", "spiffe_sequence", (json_int_t)42,
                  "spiffe_refresh_hint", (json_int_t)300, "keys", cc_test_jwk_x509(ca_a->cert),
                  cc_test_jwk(ec_key, "ec", "jwt-svid"), cc_test_jwk(rsa_key, "rsa", "jwt-svid"));
    char *text = dump(root);

    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_OK, "%s", err.message);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(bundle)), 1);
    cr_assert_eq(X509_cmp(sk_X509_value(cc_bundle_x509_authorities(bundle), 0), ca_a->cert), 0);
    cr_assert_eq(cc_bundle_jwt_authority_count(bundle), 2);
    cr_assert_eq(EVP_PKEY_eq(cc_bundle_find_jwt_authority(bundle, "ec"), ec_key), 1);
    cr_assert_eq(EVP_PKEY_eq(cc_bundle_find_jwt_authority(bundle, "rsa"), rsa_key), 1);
    cr_assert_eq(cc_bundle_sequence(bundle), 42);
    cr_assert_eq(cc_bundle_refresh_hint(bundle), 300);
    cc_bundle_free(bundle);
    free(text);
}

Test(bundle_spiffe, empty_keys_no_authorities)
{
    cc_bundle *bundle = NULL;
    cr_assert_eq(parse_spiffe("{\"keys\":[]}", &bundle, NULL), CC_OK);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(bundle)), 0);
    cr_assert_eq(cc_bundle_jwt_authority_count(bundle), 0);
    cr_assert_eq(cc_bundle_sequence(bundle), -1);
    cr_assert_eq(cc_bundle_refresh_hint(bundle), -1);
    cc_bundle_free(bundle);
}

Test(bundle_spiffe, keys_missing_rejected)
{
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe("{\"spiffe_sequence\":1}", &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "no \"keys\" array") != NULL, "%s", err.message);
    cr_assert_eq(parse_spiffe("{\"keys\":{}}", &bundle, NULL), CC_ERR_INVALID);
    cr_assert_eq(parse_spiffe("[]", &bundle, NULL), CC_ERR_INVALID);
    cr_assert_eq(parse_spiffe("{\"keys\":[]", &bundle, NULL), CC_ERR_INVALID, "truncated JSON");
}

Test(bundle_spiffe, duplicate_member_rejected)
{
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe("{\"keys\":[],\"keys\":[]}", &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "duplicate") != NULL, "%s", err.message);
}

Test(bundle_spiffe, counters_validated)
{
    cc_bundle *bundle = NULL;
    cr_assert_eq(parse_spiffe("{\"keys\":[],\"spiffe_sequence\":\"1\"}", &bundle, NULL),
                 CC_ERR_INVALID);
    cr_assert_eq(parse_spiffe("{\"keys\":[],\"spiffe_sequence\":-1}", &bundle, NULL),
                 CC_ERR_INVALID);
    cr_assert_eq(parse_spiffe("{\"keys\":[],\"spiffe_refresh_hint\":1.5}", &bundle, NULL),
                 CC_ERR_INVALID);
    cr_assert_eq(
        parse_spiffe("{\"keys\":[],\"spiffe_sequence\":9223372036854775807}", &bundle, NULL),
        CC_OK);
    cr_assert_eq(cc_bundle_sequence(bundle), INT64_MAX);
    cc_bundle_free(bundle);
}

Test(bundle_spiffe, x5c_count_must_be_one)
{
    json_t *key = cc_test_jwk_x509(ca_a->cert);
    json_t *x5c = json_object_get(key, "x5c");
    json_array_append(x5c, json_array_get(x5c, 0)); /* two certificates */
    char *two = bundle_with_key(json_deep_copy(key));
    json_array_clear(x5c); /* none */
    char *none = bundle_with_key(json_deep_copy(key));
    json_object_del(key, "x5c"); /* member missing */
    char *missing = bundle_with_key(key);

    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(two, &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "2 certificates") != NULL, "%s", err.message);
    cr_assert_eq(parse_spiffe(none, &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "0 certificates") != NULL, "%s", err.message);
    cr_assert_eq(parse_spiffe(missing, &bundle, NULL), CC_ERR_INVALID);
    free(two);
    free(none);
    free(missing);
}

Test(bundle_spiffe, x5c_bad_base64_rejected)
{
    json_t *key = cc_test_jwk_x509(ca_a->cert);
    char *good = strdup(json_string_value(json_array_get(json_object_get(key, "x5c"), 0)));
    size_t len = strlen(good);

    /* base64url alphabet, padding removed, a stray character, trailing bytes. */
    char *url = strdup(good);
    for (char *c = url; *c != '\0'; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
    }
    char *stray = strdup(good);
    stray[len / 2] = '*';
    uint8_t der_plus[4096];
    uint8_t *der = NULL;
    size_t der_len = 0;
    cr_assert_eq(cc_jose_b64_decode(good, len, "x5c", &der, &der_len, NULL), CC_OK);
    memcpy(der_plus, der, der_len);
    der_plus[der_len] = 0;
    char *trailing = cc_test_b64(der_plus, der_len + 1);
    /* An encoding that needs padding (length not a multiple of 3), with it removed. */
    char *unpadded = cc_test_b64(der, der_len % 3 != 0 ? der_len : der_len - 1);
    *strchr(unpadded, '=') = '\0';
    free(der);

    struct {
        const char *text;
        const char *message;
    } cases[] = {
        {url, "not valid base64"},       {unpadded, "not valid base64"},
        {stray, "not valid base64"},     {trailing, "not one DER certificate"},
        {"", "not one DER certificate"}, {"AAAA", "not one DER certificate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_array_set_new(json_object_get(key, "x5c"), 0, json_string(cases[i].text));
        char *text = bundle_with_key(json_deep_copy(key));
        cc_bundle *bundle = NULL;
        cc_err err = {0};
        cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_ERR_INVALID, "case %zu", i);
        cr_assert(strstr(err.message, cases[i].message) != NULL, "case %zu: %s", i, err.message);
        free(text);
    }

    json_decref(key);
    free(good);
    free(url);
    free(unpadded);
    free(stray);
    free(trailing);
}

Test(bundle_spiffe, ec_length_mismatch_rejected)
{
    json_t *key = cc_test_jwk(ec_key, "ec", "jwt-svid");
    /* 31 bytes where P-256 needs 32. */
    uint8_t short_x[31] = {1};
    char *x = cc_test_b64url(short_x, sizeof(short_x));
    json_object_set_new(key, "x", json_string(x));
    char *text = bundle_with_key(key);

    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "must be 32 bytes") != NULL, "%s", err.message);
    free(x);
    free(text);
}

Test(bundle_spiffe, ec_curve_mismatch_rejected)
{
    /* P-256 coordinates labelled P-384. */
    json_t *key = cc_test_jwk(ec_key, "ec", "jwt-svid");
    json_object_set_new(key, "crv", json_string("P-384"));
    char *text = bundle_with_key(key);
    cc_bundle *bundle = NULL;
    cr_assert_eq(parse_spiffe(text, &bundle, NULL), CC_ERR_INVALID);
    free(text);

    key = cc_test_jwk(ec_key, "ec", "jwt-svid");
    json_object_set_new(key, "crv", json_string("secp256k1"));
    text = bundle_with_key(key);
    cr_assert_eq(parse_spiffe(text, &bundle, NULL), CC_ERR_INVALID);
    free(text);
}

Test(bundle_spiffe, ec_point_off_curve_rejected)
{
    json_t *key = cc_test_jwk(ec_key, "ec", "jwt-svid");
    uint8_t *y = NULL;
    size_t y_len = 0;
    const char *y_text = json_string_value(json_object_get(key, "y"));
    cr_assert_eq(cc_jose_b64url_decode(y_text, strlen(y_text), "y", &y, &y_len, NULL), CC_OK);
    y[y_len - 1] ^= 1;
    char *bad_y = cc_test_b64url(y, y_len);
    json_object_set_new(key, "y", json_string(bad_y));
    char *text = bundle_with_key(key);

    cc_bundle *bundle = NULL;
    cr_assert_eq(parse_spiffe(text, &bundle, NULL), CC_ERR_INVALID);
    free(y);
    free(bad_y);
    free(text);
}

Test(bundle_spiffe, jwk_padding_rejected)
{
    json_t *key = cc_test_jwk(rsa_key, "rsa", "jwt-svid");
    json_object_set_new(key, "e", json_string("AQAB=="));
    char *text = bundle_with_key(key);
    cc_bundle *bundle = NULL;
    cr_assert_eq(parse_spiffe(text, &bundle, NULL), CC_ERR_INVALID);
    free(text);
}

Test(bundle_spiffe, rsa_weak_key_rejected)
{
    EVP_PKEY *small = EVP_RSA_gen(1024);
    cr_assert_not_null(small);
    char *text = bundle_with_key(cc_test_jwk(small, "small", "jwt-svid"));
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "1024 bits") != NULL, "%s", err.message);
    EVP_PKEY_free(small);
    free(text);
}

Test(bundle_spiffe, rsa_even_modulus_rejected)
{
    json_t *key = cc_test_jwk(rsa_key, "rsa", "jwt-svid");
    uint8_t *n = NULL;
    size_t n_len = 0;
    const char *n_text = json_string_value(json_object_get(key, "n"));
    cr_assert_eq(cc_jose_b64url_decode(n_text, strlen(n_text), "n", &n, &n_len, NULL), CC_OK);
    n[n_len - 1] &= 0xfe;
    char *even = cc_test_b64url(n, n_len);
    json_object_set_new(key, "n", json_string(even));
    char *text = bundle_with_key(key);

    cc_bundle *bundle = NULL;
    cr_assert_eq(parse_spiffe(text, &bundle, NULL), CC_ERR_INVALID);
    free(n);
    free(even);
    free(text);
}

Test(bundle_spiffe, private_jwk_rejected)
{
    json_t *key = cc_test_jwk(ec_key, "ec", "jwt-svid");
    json_object_set_new(key, "d", json_string("AAAA"));
    char *text = bundle_with_key(key);
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "private key member \"d\"") != NULL, "%s", err.message);
    free(text);
}

Test(bundle_spiffe, jwt_key_without_kid_rejected)
{
    char *text = bundle_with_key(cc_test_jwk(ec_key, NULL, "jwt-svid"));
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "no \"kid\"") != NULL, "%s", err.message);
    free(text);
}

Test(bundle_spiffe, duplicate_kid_rejected)
{
    char *text = dump(json_pack("{s:[o, o]}", "keys", cc_test_jwk(ec_key, "same", "jwt-svid"),
                                cc_test_jwk(rsa_key, "same", "jwt-svid")));
    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "\"same\" appears twice") != NULL, "%s", err.message);
    free(text);
}

Test(bundle_spiffe, unknown_use_and_kty_ignored)
{
    json_t *wit = cc_test_jwk(ec_key, "wit", "wit-svid");
    json_t *no_use = cc_test_jwk(ec_key, "plain", NULL);
    json_t *upper = cc_test_jwk(ec_key, "upper", "JWT-SVID");
    json_t *okp = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x",
                            "AAAA", "kid", "ed", "use", "jwt-svid");
    json_t *oct = json_pack("{s:s, s:s, s:s, s:s}", "kty", "oct", "k", "c2VjcmV0", "kid", "hmac",
                            "use", "jwt-svid");
    char *text = dump(json_pack("{s:[o, o, o, o, o, o]}", "keys", wit, no_use, upper, okp, oct,
                                cc_test_jwk(rsa_key, "rsa", "jwt-svid")));

    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(parse_spiffe(text, &bundle, &err), CC_OK, "%s", err.message);
    cr_assert_eq(cc_bundle_jwt_authority_count(bundle), 1);
    cr_assert_not_null(cc_bundle_find_jwt_authority(bundle, "rsa"));
    cr_assert_null(cc_bundle_find_jwt_authority(bundle, "hmac"));
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(bundle)), 0);
    cc_bundle_free(bundle);
    free(text);
}

Test(bundle_spiffe, use_not_string_rejected)
{
    json_t *key = cc_test_jwk(ec_key, "ec", NULL);
    json_object_set_new(key, "use", json_integer(1));
    char *text = bundle_with_key(key);
    cc_bundle *bundle = NULL;
    cr_assert_eq(parse_spiffe(text, &bundle, NULL), CC_ERR_INVALID);
    cr_assert_eq(parse_spiffe("{\"keys\":[7]}", &bundle, NULL), CC_ERR_INVALID);
    free(text);
}

/* ---- Bundle maps -------------------------------------------------------- */

Test(bundle_map, two_domains)
{
    json_t *a =
        json_pack("{s:I, s:I, s:[o]}", "spiffe_sequence", (json_int_t)3, "spiffe_refresh_hint",
                  (json_int_t)60, "keys", cc_test_jwk_x509(ca_a->cert));
    json_t *b = json_pack("{s:[o]}", "keys", cc_test_jwk(ec_key, "b-1", "jwt-svid"));
    char *text =
        dump(json_pack("{s:{s:o, s:o}}", "trust_domains", "a.example", a, "spiffe://b.example", b));

    cc_bundle_set *set = cc_bundle_set_new();
    cc_err err = {0};
    cr_assert_eq(cc_bundle_parse_map(text, strlen(text), set, &err), CC_OK, "%s", err.message);
    cr_assert_eq(cc_bundle_set_count(set), 2);

    const cc_bundle *found_a = cc_bundle_set_find(set, "a.example");
    const cc_bundle *found_b = cc_bundle_set_find(set, "b.example");
    cr_assert_not_null(found_a);
    cr_assert_not_null(found_b);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(found_a)), 1);
    cr_assert_eq(cc_bundle_sequence(found_a), 3);
    cr_assert_eq(cc_bundle_refresh_hint(found_a), -1, "hints inside a map are ignored");
    cr_assert_not_null(cc_bundle_find_jwt_authority(found_b, "b-1"));
    cr_assert_null(cc_bundle_find_jwt_authority(found_a, "b-1"));
    cc_bundle_set_release(set);
    free(text);
}

Test(bundle_map, duplicate_key_rejected)
{
    const char *text = "{\"trust_domains\":{\"a.example\":{\"keys\":[]},"
                       "\"a.example\":{\"keys\":[]}}}";
    cc_bundle_set *set = cc_bundle_set_new();
    cc_err err = {0};
    cr_assert_eq(cc_bundle_parse_map(text, strlen(text), set, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "duplicate") != NULL, "%s", err.message);
    cc_bundle_set_release(set);
}

Test(bundle_map, both_spellings_rejected)
{
    const char *text = "{\"trust_domains\":{\"a.example\":{\"keys\":[]},"
                       "\"spiffe://a.example\":{\"keys\":[]}}}";
    cc_bundle_set *set = cc_bundle_set_new();
    cc_err err = {0};
    cr_assert_eq(cc_bundle_parse_map(text, strlen(text), set, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "configured twice") != NULL, "%s", err.message);
    cc_bundle_set_release(set);
}

Test(bundle_map, invalid_keys_rejected)
{
    static const char *const texts[] = {
        "{\"trust_domains\":{\"A.example\":{\"keys\":[]}}}",
        "{\"trust_domains\":{\"spiffe://a.example/w\":{\"keys\":[]}}}",
        "{\"trust_domains\":{\"\":{\"keys\":[]}}}",
        "{\"trust_domains\":{\"a.example\":[]}}",
        "{\"trust_domains\":[]}",
        "{\"trust_domains\":{\"a.example\":{}}}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        cc_bundle_set *set = cc_bundle_set_new();
        cr_assert_eq(cc_bundle_parse_map(texts[i], strlen(texts[i]), set, NULL), CC_ERR_INVALID,
                     "%s", texts[i]);
        cc_bundle_set_release(set);
    }
}

/* ---- spiffe-helper JWT bundle file -------------------------------------- */

/* Returns {"<td>": "<base64 of a JWK Set with key under kid, no use>"}. */
static char *jwt_map_text(const char *td, EVP_PKEY *key, const char *kid)
{
    char *jwks = dump(json_pack("{s:[o]}", "keys", cc_test_jwk(key, kid, NULL)));
    char *encoded = cc_test_b64(jwks, strlen(jwks));
    char *text = dump(json_pack("{s:s}", td, encoded));
    free(jwks);
    free(encoded);
    return text;
}

Test(bundle_jwt_map, keys_without_use)
{
    char *text = jwt_map_text("a.example", ec_key, "k1");
    cc_bundle_set *set = cc_bundle_set_new();
    cc_err err = {0};
    cr_assert_eq(cc_bundle_parse_jwt_map(text, strlen(text), set, &err), CC_OK, "%s", err.message);
    const cc_bundle *bundle = cc_bundle_set_find(set, "a.example");
    cr_assert_not_null(bundle);
    cr_assert_eq(EVP_PKEY_eq(cc_bundle_find_jwt_authority(bundle, "k1"), ec_key), 1);
    cc_bundle_set_release(set);
    free(text);
}

Test(bundle_jwt_map, invalid_values_rejected)
{
    char *jwks = dump(json_pack("{s:[o]}", "keys", cc_test_jwk(ec_key, "k1", NULL)));
    char *url = cc_test_b64url(jwks, strlen(jwks)); /* wrong alphabet, no padding */
    char *raw = dump(json_pack("{s:s}", "a.example", url));
    char *not_string = dump(json_pack("{s:{}}", "a.example"));
    char *not_json_b64 = cc_test_b64("{\"keys\":", 8);
    char *not_json = dump(json_pack("{s:s}", "a.example", not_json_b64));

    const char *cases[] = {raw, not_string, not_json, "[]"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cc_bundle_set *set = cc_bundle_set_new();
        cr_assert_eq(cc_bundle_parse_jwt_map(cases[i], strlen(cases[i]), set, NULL), CC_ERR_INVALID,
                     "case %zu", i);
        cc_bundle_set_release(set);
    }
    free(jwks);
    free(url);
    free(raw);
    free(not_string);
    free(not_json_b64);
    free(not_json);
}

/* ---- Detection ---------------------------------------------------------- */

static cc_status detect(const char *text, cc_bundle_format *format)
{
    return cc_bundle_detect_format(text, strlen(text), format, NULL);
}

Test(bundle_detect, each_form)
{
    cc_bundle_format format;
    char *pem = two_pems(ca_a->cert, NULL);
    char *jwt_map = jwt_map_text("a.example", ec_key, "k1");

    cr_assert_eq(detect(pem, &format), CC_OK);
    cr_assert_eq(format, CC_BUNDLE_FORMAT_PEM);
    cr_assert_eq(detect("{\"keys\":[]}", &format), CC_OK);
    cr_assert_eq(format, CC_BUNDLE_FORMAT_SPIFFE);
    cr_assert_eq(detect("{\"trust_domains\":{}}", &format), CC_OK);
    cr_assert_eq(format, CC_BUNDLE_FORMAT_MAP);
    cr_assert_eq(detect(jwt_map, &format), CC_OK);
    cr_assert_eq(format, CC_BUNDLE_FORMAT_JWT_MAP);

    cr_assert_eq(detect("garbage", &format), CC_ERR_INVALID);
    cr_assert_eq(detect("{\"a.example\":7}", &format), CC_ERR_INVALID);
    cr_assert_eq(detect("[1]", &format), CC_ERR_INVALID);
    free(pem);
    free(jwt_map);
}

Test(bundle_detect, format_names)
{
    cc_bundle_format format;
    for (int i = CC_BUNDLE_FORMAT_PEM; i <= CC_BUNDLE_FORMAT_JWT_MAP; i++) {
        cr_assert_eq(
            cc_bundle_format_parse(cc_bundle_format_name((cc_bundle_format)i), &format, NULL),
            CC_OK);
        cr_assert_eq((int)format, i);
    }
    cr_assert_eq(cc_bundle_format_parse("jwks", &format, NULL), CC_ERR_INVALID);
}

/* ---- Sources and files -------------------------------------------------- */

typedef struct files {
    char *dir;
    char path[4][512];
} files;

static void write_text(const char *path, const char *text)
{
    cr_assert_eq(cc_test_write_file(path, text, strlen(text)), 0, "%s", path);
}

static void make_dir(files *f)
{
    f->dir = cc_test_tempdir("bundle-load");
    cr_assert_not_null(f->dir);
    for (int i = 0; i < 4; i++)
        snprintf(f->path[i], sizeof(f->path[i]), "%s/file%d", f->dir, i);
}

static void remove_dir(files *f)
{
    cc_test_remove_tree(f->dir);
    free(f->dir);
}

Test(bundle_sources, pem_and_spiffe)
{
    files f;
    make_dir(&f);
    char *pem = two_pems(ca_a->cert, NULL);
    char *spiffe = bundle_with_key(cc_test_jwk(ec_key, "b-1", "jwt-svid"));
    write_text(f.path[0], pem);
    write_text(f.path[1], spiffe);

    cc_bundle_source sources[] = {
        {.kind = CC_BUNDLE_SOURCE_PEM, .path = f.path[0], .trust_domain = "a.example"},
        {.kind = CC_BUNDLE_SOURCE_SPIFFE, .path = f.path[1], .trust_domain = "spiffe://b.example"},
    };
    cc_bundle_set *set = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_sources_load(sources, 2, &set, &err), CC_OK, "%s", err.message);
    cr_assert_eq(cc_bundle_set_count(set), 2);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(cc_bundle_set_find(set, "a.example"))), 1);
    cr_assert_not_null(cc_bundle_find_jwt_authority(cc_bundle_set_find(set, "b.example"), "b-1"));
    cc_bundle_set_release(set);

    cr_assert_eq(cc_bundle_sources_load(sources, 0, &set, NULL), CC_OK, "no sources");
    cr_assert_eq(cc_bundle_set_count(set), 0);
    cc_bundle_set_release(set);

    free(pem);
    free(spiffe);
    remove_dir(&f);
}

Test(bundle_sources, domain_twice_rejected)
{
    files f;
    make_dir(&f);
    char *pem = two_pems(ca_a->cert, NULL);
    write_text(f.path[0], pem);
    write_text(f.path[1], "{\"trust_domains\":{\"a.example\":{\"keys\":[]}}}");

    cc_bundle_source sources[] = {
        {.kind = CC_BUNDLE_SOURCE_PEM, .path = f.path[0], .trust_domain = "a.example"},
        {.kind = CC_BUNDLE_SOURCE_MAP, .path = f.path[1]},
    };
    cc_bundle_set *set = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_sources_load(sources, 2, &set, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "configured twice") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, f.path[1]) != NULL, "%s", err.message);
    cr_assert_null(set);
    free(pem);
    remove_dir(&f);
}

Test(bundle_sources, missing_file_rejected)
{
    cc_bundle_source source = {.kind = CC_BUNDLE_SOURCE_PEM,
                               .path = "/nonexistent/citadel/bundle.pem",
                               .trust_domain = "a.example"};
    cc_bundle_set *set = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_sources_load(&source, 1, &set, &err), CC_ERR_NOT_FOUND);
    cr_assert(strstr(err.message, "/nonexistent/citadel/bundle.pem") != NULL, "%s", err.message);
}

Test(bundle_sources, pem_without_domain_rejected)
{
    files f;
    make_dir(&f);
    char *pem = two_pems(ca_a->cert, NULL);
    write_text(f.path[0], pem);
    cc_bundle_source source = {.kind = CC_BUNDLE_SOURCE_PEM, .path = f.path[0]};
    cc_bundle_set *set = NULL;
    cr_assert_eq(cc_bundle_sources_load(&source, 1, &set, NULL), CC_ERR_INVALID);
    free(pem);
    remove_dir(&f);
}

Test(bundle_sources, spiffe_helper_layout)
{
    files f;
    make_dir(&f);
    char *pem = two_pems(ca_a->cert, NULL);
    write_text(f.path[0], pem);

    /* The JWT bundle file has the own domain and one federated domain. */
    char *own = dump(json_pack("{s:[o]}", "keys", cc_test_jwk(ec_key, "own-1", NULL)));
    char *fed = dump(json_pack("{s:[o]}", "keys", cc_test_jwk(rsa_key, "fed-1", "jwt-svid")));
    char *own_b64 = cc_test_b64(own, strlen(own));
    char *fed_b64 = cc_test_b64(fed, strlen(fed));
    char *jwt = dump(json_pack("{s:s, s:s}", "a.example", own_b64, "b.example", fed_b64));
    write_text(f.path[1], jwt);

    cc_bundle_source source = {.kind = CC_BUNDLE_SOURCE_SPIFFE_HELPER,
                               .path = f.path[0],
                               .jwt_path = f.path[1],
                               .trust_domain = "a.example"};
    cc_bundle_set *set = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_sources_load(&source, 1, &set, &err), CC_OK, "%s", err.message);
    cr_assert_eq(cc_bundle_set_count(set), 2);

    const cc_bundle *a = cc_bundle_set_find(set, "a.example");
    const cc_bundle *b = cc_bundle_set_find(set, "b.example");
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(a)), 1);
    cr_assert_not_null(cc_bundle_find_jwt_authority(a, "own-1"));
    cr_assert_null(cc_bundle_find_jwt_authority(a, "fed-1"));
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(b)), 0);
    cr_assert_not_null(cc_bundle_find_jwt_authority(b, "fed-1"));
    cc_bundle_set_release(set);

    /* Without a JWT bundle file only the PEM is loaded. */
    source.jwt_path = NULL;
    cr_assert_eq(cc_bundle_sources_load(&source, 1, &set, &err), CC_OK, "%s", err.message);
    cr_assert_eq(cc_bundle_set_count(set), 1);
    cc_bundle_set_release(set);

    free(pem);
    free(own);
    free(fed);
    free(own_b64);
    free(fed_b64);
    free(jwt);
    remove_dir(&f);
}

Test(bundle_sources, load_file_detects_form)
{
    files f;
    make_dir(&f);
    char *pem = two_pems(ca_a->cert, NULL);
    write_text(f.path[0], pem);
    write_text(f.path[1], "{\"trust_domains\":{\"a.example\":{\"keys\":[]},"
                          "\"b.example\":{\"keys\":[]}}}");

    cc_bundle_set *set = NULL;
    cc_bundle_format format = CC_BUNDLE_FORMAT_MAP;
    cc_err err = {0};

    cr_assert_eq(cc_bundle_load_file(f.path[0], NULL, &set, &format, &err), CC_ERR_INVALID);
    cr_assert_eq(format, CC_BUNDLE_FORMAT_PEM, "format is reported when the domain is missing");
    cr_assert(strstr(err.message, "--trust-domain") != NULL, "%s", err.message);

    cr_assert_eq(cc_bundle_load_file(f.path[0], "a.example", &set, &format, &err), CC_OK, "%s",
                 err.message);
    cr_assert_not_null(cc_bundle_set_find(set, "a.example"));
    cc_bundle_set_release(set);

    cr_assert_eq(cc_bundle_load_file(f.path[1], NULL, &set, &format, &err), CC_OK, "%s",
                 err.message);
    cr_assert_eq(format, CC_BUNDLE_FORMAT_MAP);
    cr_assert_eq(cc_bundle_set_count(set), 2);
    cc_bundle_set_release(set);

    cr_assert_eq(cc_bundle_load_file(f.path[1], "b.example", &set, NULL, &err), CC_OK, "%s",
                 err.message);
    cr_assert_eq(cc_bundle_set_count(set), 1);
    cr_assert_not_null(cc_bundle_set_find(set, "b.example"));
    cc_bundle_set_release(set);

    cr_assert_eq(cc_bundle_load_file(f.path[1], "c.example", &set, NULL, &err), CC_ERR_NOT_FOUND);
    free(pem);
    remove_dir(&f);
}

Test(bundle_sources, oversized_file_rejected)
{
    files f;
    make_dir(&f);
    size_t len = CC_BUNDLE_FILE_MAX + 1;
    char *big = malloc(len);
    memset(big, ' ', len);
    cr_assert_eq(cc_test_write_file(f.path[0], big, len), 0);

    char *data = NULL;
    size_t data_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_read_file(f.path[0], &data, &data_len, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "larger than") != NULL, "%s", err.message);
    cr_assert_eq(cc_bundle_read_file(f.dir, &data, &data_len, NULL), CC_ERR_IO, "a directory");
    free(big);
    remove_dir(&f);
}
