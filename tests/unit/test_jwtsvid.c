#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "citadel/bundle.h"
#include "citadel/bundle_load.h"
#include "citadel/jwtsvid.h"
#include "../support/jwtmint.h"

#define NOW 1800000000LL

static const char *const audiences[] = {"nats-callout", "other-service"};

/* Keys of trust domain a.example (by kid) and b.example ("b-1"). */
static EVP_PKEY *rsa_key, *p256_key, *p384_key, *p521_key, *b_key;
static cc_bundle_set *bundles;

static void add_key(cc_bundle *bundle, const char *kid, EVP_PKEY *key)
{
    cr_assert_eq(cc_bundle_add_jwt_authority(bundle, kid, key, NULL), CC_OK);
}

static void setup(void)
{
    rsa_key = cc_test_jwt_key("RSA");
    p256_key = cc_test_jwt_key("P-256");
    p384_key = cc_test_jwt_key("P-384");
    p521_key = cc_test_jwt_key("P-521");
    b_key = cc_test_jwt_key("P-256");
    cr_assert(rsa_key && p256_key && p384_key && p521_key && b_key);

    cc_bundle *a = cc_bundle_new("a.example");
    add_key(a, "rsa-1", rsa_key);
    add_key(a, "ec-256", p256_key);
    add_key(a, "ec-384", p384_key);
    add_key(a, "ec-521", p521_key);
    cc_bundle *b = cc_bundle_new("b.example");
    add_key(b, "b-1", b_key);

    bundles = cc_bundle_set_new();
    cr_assert_eq(cc_bundle_set_add(bundles, a, NULL), CC_OK);
    cr_assert_eq(cc_bundle_set_add(bundles, b, NULL), CC_OK);
}

static void teardown(void)
{
    cc_bundle_set_release(bundles);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(p256_key);
    EVP_PKEY_free(p384_key);
    EVP_PKEY_free(p521_key);
    EVP_PKEY_free(b_key);
}

TestSuite(jwtsvid, .init = setup, .fini = teardown);

/* Verifies token at NOW with the default leeway and both audiences. */
static cc_status verify(const char *token, cc_jwtsvid_info *info, cc_err *err)
{
    return cc_jwtsvid_verify(token, bundles, audiences, 2, NOW, CC_JWTSVID_LEEWAY_DEFAULT, info,
                             err);
}

/* Signs header and claims JSON with sign_alg and key, verifies, and returns the status. */
static cc_status verify_raw(const char *header, const char *claims, const char *sign_alg,
                            EVP_PKEY *key, cc_err *err)
{
    char *token = cc_test_jws_sign(header, claims, sign_alg, key);
    cr_assert_not_null(token);
    cc_status status = verify(token, NULL, err);
    free(token);
    return status;
}

#define VALID_CLAIMS                                                                               \
    "{\"sub\":\"spiffe://a.example/workload\",\"aud\":\"nats-callout\",\"exp\":1800000300}"

static void assert_valid(const char *alg, const char *kid, EVP_PKEY *key)
{
    char *token =
        cc_test_jwtsvid(key, alg, kid, "spiffe://a.example/workload", "nats-callout", NOW + 300);
    cr_assert_not_null(token);

    cc_jwtsvid_info info;
    cc_err err = {0};
    cr_assert_eq(verify(token, &info, &err), CC_OK, "%s: %s", alg, err.message);
    cr_assert_str_eq(info.spiffe_id, "spiffe://a.example/workload");
    cr_assert_str_eq(info.trust_domain, "a.example");
    cr_assert_str_eq(info.kid, kid);
    cr_assert_str_eq(info.alg, alg);
    cr_assert_eq(info.exp, NOW + 300);
    cr_assert_eq(info.matched_audience, 0);
    free(token);
}

Test(jwtsvid, rs256_valid)
{
    assert_valid("RS256", "rsa-1", rsa_key);
}
Test(jwtsvid, rs384_valid)
{
    assert_valid("RS384", "rsa-1", rsa_key);
}
Test(jwtsvid, rs512_valid)
{
    assert_valid("RS512", "rsa-1", rsa_key);
}
Test(jwtsvid, ps256_valid)
{
    assert_valid("PS256", "rsa-1", rsa_key);
}
Test(jwtsvid, ps384_valid)
{
    assert_valid("PS384", "rsa-1", rsa_key);
}
Test(jwtsvid, ps512_valid)
{
    assert_valid("PS512", "rsa-1", rsa_key);
}
Test(jwtsvid, es256_valid)
{
    assert_valid("ES256", "ec-256", p256_key);
}
Test(jwtsvid, es384_valid)
{
    assert_valid("ES384", "ec-384", p384_key);
}
Test(jwtsvid, es512_valid)
{
    assert_valid("ES512", "ec-521", p521_key);
}

Test(jwtsvid, typ_jose_accepted)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\",\"typ\":\"JOSE\"}", VALID_CLAIMS,
                            "ES256", p256_key, &err),
                 CC_OK, "%s", err.message);
}

Test(jwtsvid, typ_absent_accepted)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}", VALID_CLAIMS, "ES256", p256_key, &err),
        CC_OK, "%s", err.message);
}

Test(jwtsvid, typ_lowercase_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\",\"typ\":\"jwt\"}", VALID_CLAIMS,
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "typ") != NULL, "%s", err.message);
}

Test(jwtsvid, alg_none_rejected)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", VALID_CLAIMS, "none", NULL, &err),
        CC_ERR_INVALID);
    cr_assert(strstr(err.message, "\"none\" is not allowed") != NULL, "%s", err.message);
}

Test(jwtsvid, alg_none_uppercase_rejected)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"NONE\",\"kid\":\"rsa-1\"}", VALID_CLAIMS, "none", NULL, &err),
        CC_ERR_INVALID);
}

Test(jwtsvid, hs256_with_public_key_secret)
{
    /* The classic RS/HS confusion: an attacker signs with HMAC, using the
     * published RSA public key (as PEM) as the secret. */
    char *pem = cc_test_public_pem(rsa_key);
    cr_assert_not_null(pem);
    char *token = cc_test_jws_hmac("{\"alg\":\"HS256\",\"kid\":\"rsa-1\",\"typ\":\"JWT\"}",
                                   VALID_CLAIMS, pem, strlen(pem));
    cr_assert_not_null(token);

    cc_err err = {0};
    cr_assert_eq(verify(token, NULL, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "\"HS256\" is not allowed") != NULL, "%s", err.message);
    free(token);
    free(pem);
}

Test(jwtsvid, unknown_alg_rejected)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"EdDSA\",\"kid\":\"ec-256\"}", VALID_CLAIMS, "ES256", p256_key, &err),
        CC_ERR_INVALID);
}

Test(jwtsvid, unknown_kid_rejected)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-999\"}", VALID_CLAIMS, "ES256", p256_key, &err),
        CC_ERR_NOT_FOUND);
    cr_assert(strstr(err.message, "\"ec-999\"") != NULL, "%s", err.message);
}

Test(jwtsvid, kid_absent_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\"}", VALID_CLAIMS, "ES256", p256_key, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "no \"kid\"") != NULL, "%s", err.message);
}

Test(jwtsvid, kid_empty_rejected)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"\"}", VALID_CLAIMS, "ES256", p256_key, &err),
        CC_ERR_INVALID);
}

Test(jwtsvid, kid_not_string_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":7}", VALID_CLAIMS, "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, key_of_other_domain_rejected)
{
    /* sub is in b.example, the kid exists only in a.example's bundle. */
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                   "{\"sub\":\"spiffe://b.example/w\",\"aud\":\"nats-callout\",\"exp\":1800000300}",
                   "ES256", p256_key, &err),
        CC_ERR_NOT_FOUND);
    cr_assert(strstr(err.message, "trust domain \"b.example\"") != NULL, "%s", err.message);
}

Test(jwtsvid, other_domain_own_key_accepted)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"b-1\"}",
                   "{\"sub\":\"spiffe://b.example/w\",\"aud\":\"nats-callout\",\"exp\":1800000300}",
                   "ES256", b_key, &err),
        CC_OK, "%s", err.message);
}

Test(jwtsvid, domain_without_bundle_rejected)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                   "{\"sub\":\"spiffe://c.example/w\",\"aud\":\"nats-callout\",\"exp\":1800000300}",
                   "ES256", p256_key, &err),
        CC_ERR_NOT_FOUND);
    cr_assert(strstr(err.message, "no bundle") != NULL, "%s", err.message);
}

Test(jwtsvid, invalid_sub_rejected)
{
    static const char *const subs[] = {
        "\"spiffe://A.example/w\"",
        "\"spiffe://a.example/w/\"",
        "\"https://a.example/w\"",
        "\"spiffe://a.example//w\"",
        "\"\"",
        "7",
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char claims[256];
        snprintf(claims, sizeof(claims), "{\"sub\":%s,\"aud\":\"nats-callout\",\"exp\":1800000300}",
                 subs[i]);
        cc_err err = {0};
        cr_assert_eq(
            verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}", claims, "ES256", p256_key, &err),
            CC_ERR_INVALID, "sub %s", subs[i]);
    }
}

Test(jwtsvid, sub_missing_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"aud\":\"nats-callout\",\"exp\":1800000300}", "ES256", p256_key,
                            &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "no \"sub\"") != NULL, "%s", err.message);
}

Test(jwtsvid, aud_missing_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"exp\":1800000300}", "ES256",
                            p256_key, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "no \"aud\"") != NULL, "%s", err.message);
}

Test(jwtsvid, aud_empty_array_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":[],\"exp\":1800000300}",
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, aud_empty_string_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"\",\"exp\":1800000300}",
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, aud_mismatch_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":[\"x\",\"y\"],"
                            "\"exp\":1800000300}",
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "audience") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "[\"x\", \"y\"]") != NULL, "token audiences: %s", err.message);
    cr_assert(strstr(err.message, "[\"nats-callout\", \"other-service\"]") != NULL,
              "configured audiences: %s", err.message);
}

Test(jwtsvid, aud_string_not_split)
{
    /* A string audience is one value, never a set of characters. */
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout-x\","
                            "\"exp\":1800000300}",
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, aud_array_second_matches)
{
    char *token = cc_test_jws_sign("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                                   "{\"sub\":\"spiffe://a.example/w\",\"aud\":[\"x\","
                                   "\"other-service\"],\"exp\":1800000300}",
                                   "ES256", p256_key);
    cc_jwtsvid_info info;
    cc_err err = {0};
    cr_assert_eq(verify(token, &info, &err), CC_OK, "%s", err.message);
    cr_assert_eq(info.matched_audience, 1);
    free(token);
}

Test(jwtsvid, aud_array_non_string_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":[\"nats-callout\",1],"
                            "\"exp\":1800000300}",
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, empty_audience_config_rejected)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW + 300);
    cc_err err = {0};
    cr_assert_eq(cc_jwtsvid_verify(token, bundles, audiences, 0, NOW, 30, NULL, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "no JWT-SVID audience is configured") != NULL, "%s", err.message);
    cr_assert_eq(cc_jwtsvid_verify(token, bundles, NULL, 0, NOW, 30, NULL, NULL), CC_ERR_INVALID);

    static const char *const blank[] = {""};
    cr_assert_eq(cc_jwtsvid_verify(token, bundles, blank, 1, NOW, 30, NULL, NULL), CC_ERR_INVALID);
    free(token);
}

Test(jwtsvid, negative_leeway_rejected)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW + 300);
    cr_assert_eq(cc_jwtsvid_verify(token, bundles, audiences, 2, NOW, -1, NULL, NULL),
                 CC_ERR_INVALID);
    free(token);
}

Test(jwtsvid, expired_rejected)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW - 31);
    cc_err err = {0};
    cr_assert_eq(cc_jwtsvid_verify(token, bundles, audiences, 2, NOW, 30, NULL, &err),
                 CC_ERR_EXPIRED);
    cr_assert(strstr(err.message, "expired") != NULL, "%s", err.message);
    free(token);
}

Test(jwtsvid, expired_within_leeway)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW - 30);
    cr_assert_eq(cc_jwtsvid_verify(token, bundles, audiences, 2, NOW, 30, NULL, NULL), CC_OK);
    cr_assert_eq(cc_jwtsvid_verify(token, bundles, audiences, 2, NOW, 0, NULL, NULL),
                 CC_ERR_EXPIRED);
    free(token);
}

Test(jwtsvid, exp_missing_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\"}", "ES256",
                            p256_key, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "no \"exp\"") != NULL, "%s", err.message);
}

Test(jwtsvid, exp_not_number_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\","
                            "\"exp\":\"1800000300\"}",
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, exp_fraction_rounds_down)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\","
                            "\"exp\":1799999969.9}",
                            "ES256", p256_key, &err),
                 CC_ERR_EXPIRED);
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\","
                            "\"exp\":1800000300.5}",
                            "ES256", p256_key, &err),
                 CC_OK, "%s", err.message);
}

Test(jwtsvid, exp_huge_accepted)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\","
                            "\"exp\":9223372036854775807}",
                            "ES256", p256_key, &err),
                 CC_OK, "%s", err.message);
}

Test(jwtsvid, nbf_future_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\","
                            "\"exp\":1800000300,\"nbf\":1800000031}",
                            "ES256", p256_key, &err),
                 CC_ERR_EXPIRED);
    cr_assert(strstr(err.message, "not valid before") != NULL, "%s", err.message);
}

Test(jwtsvid, nbf_within_leeway)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\","
                            "\"exp\":1800000300,\"nbf\":1800000030}",
                            "ES256", p256_key, &err),
                 CC_OK, "%s", err.message);
}

Test(jwtsvid, es256_header_rsa_key)
{
    /* The header claims ES256 but kid names the RSA key. */
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"rsa-1\"}", VALID_CLAIMS, "RS256", rsa_key, &err),
        CC_ERR_CRYPTO);
    cr_assert(strstr(err.message, "needs an EC key") != NULL, "%s", err.message);
}

Test(jwtsvid, rs256_header_ec_key)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"RS256\",\"kid\":\"ec-256\"}", VALID_CLAIMS, "ES256", p256_key, &err),
        CC_ERR_CRYPTO);
    cr_assert(strstr(err.message, "needs an RSA key") != NULL, "%s", err.message);
}

Test(jwtsvid, es384_header_p256_key)
{
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES384\",\"kid\":\"ec-256\"}", VALID_CLAIMS, "ES256", p256_key, &err),
        CC_ERR_CRYPTO);
}

Test(jwtsvid, ps256_signed_as_rs256)
{
    /* A PSS signature under an RS256 header must not verify, and the reverse. */
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", VALID_CLAIMS, "PS256", rsa_key, &err),
        CC_ERR_CRYPTO);
    cr_assert_eq(
        verify_raw("{\"alg\":\"PS256\",\"kid\":\"rsa-1\"}", VALID_CLAIMS, "RS256", rsa_key, &err),
        CC_ERR_CRYPTO);
}

Test(jwtsvid, jku_header_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\",\"jku\":\"https://x/\"}",
                            VALID_CLAIMS, "ES256", p256_key, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "\"jku\" is not allowed") != NULL, "%s", err.message);
}

Test(jwtsvid, crit_header_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\",\"crit\":[\"exp\"]}",
                            VALID_CLAIMS, "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, duplicate_header_member_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\",\"alg\":\"none\"}", VALID_CLAIMS,
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, duplicate_claim_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}",
                            "{\"sub\":\"spiffe://a.example/w\",\"aud\":\"nats-callout\","
                            "\"exp\":1800000300,\"sub\":\"spiffe://b.example/w\"}",
                            "ES256", p256_key, &err),
                 CC_ERR_INVALID);
}

Test(jwtsvid, bad_signature_rejected)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW + 300);
    /* Change one character in the middle of the signature segment. */
    char *sig = strrchr(token, '.') + 10;
    *sig = *sig == 'A' ? 'B' : 'A';

    cc_err err = {0};
    cr_assert_eq(verify(token, NULL, &err), CC_ERR_CRYPTO);
    cr_assert(strstr(err.message, "signature is invalid") != NULL, "%s", err.message);
    free(token);
}

Test(jwtsvid, signature_of_other_key_rejected)
{
    /* Signed by b.example's key, but the header names a.example's kid. */
    cc_err err = {0};
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}", VALID_CLAIMS, "ES256", b_key, &err),
        CC_ERR_CRYPTO);
}

Test(jwtsvid, changed_claims_rejected)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW + 300);
    char *other = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/admin",
                                  "nats-callout", NOW + 300);
    /* Splice the claims of other into token, keeping token's signature. */
    const char *claims_start = strchr(other, '.');
    const char *claims_end = strrchr(other, '.');
    char spliced[4096];
    snprintf(spliced, sizeof(spliced), "%.*s%.*s%s", (int)(strchr(token, '.') - token), token,
             (int)(claims_end - claims_start), claims_start, strrchr(token, '.'));

    cr_assert_eq(verify(spliced, NULL, NULL), CC_ERR_CRYPTO);
    free(token);
    free(other);
}

Test(jwtsvid, der_ecdsa_signature_rejected)
{
    /* JWS carries R || S; a DER-encoded signature has the wrong length. */
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW + 300);
    char *dot = strrchr(token, '.');
    uint8_t fake_der[70] = {0x30, 0x44};
    char *sig = cc_test_b64url(fake_der, sizeof(fake_der));
    char replaced[4096];
    snprintf(replaced, sizeof(replaced), "%.*s.%s", (int)(dot - token), token, sig);

    cc_err err = {0};
    cr_assert_eq(verify(replaced, NULL, &err), CC_ERR_CRYPTO);
    cr_assert(strstr(err.message, "70 bytes") != NULL, "%s", err.message);
    free(sig);
    free(token);
}

Test(jwtsvid, malformed_tokens_rejected)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW + 300);
    char buf[4096];

    cr_assert_eq(verify("", NULL, NULL), CC_ERR_INVALID);
    cr_assert_eq(verify("a.b", NULL, NULL), CC_ERR_INVALID);
    cr_assert_eq(verify(NULL, NULL, NULL), CC_ERR_INVALID);

    snprintf(buf, sizeof(buf), "%s.extra", token);
    cr_assert_eq(verify(buf, NULL, NULL), CC_ERR_INVALID, "four segments");

    snprintf(buf, sizeof(buf), "%s=", token);
    cr_assert_neq(verify(buf, NULL, NULL), CC_OK, "padding");

    snprintf(buf, sizeof(buf), "%s", token);
    *strchr(buf, '.') = '\0';
    cr_assert_eq(verify(buf, NULL, NULL), CC_ERR_INVALID, "one segment");

    snprintf(buf, sizeof(buf), ".%s", strchr(token, '.') + 1);
    cr_assert_eq(verify(buf, NULL, NULL), CC_ERR_INVALID, "empty header");

    snprintf(buf, sizeof(buf), "+%s", token + 1);
    cr_assert_eq(verify(buf, NULL, NULL), CC_ERR_INVALID, "standard base64 alphabet");
    free(token);
}

Test(jwtsvid, header_not_object_rejected)
{
    cc_err err = {0};
    cr_assert_eq(verify_raw("[\"ES256\"]", VALID_CLAIMS, "ES256", p256_key, &err), CC_ERR_INVALID);
    cr_assert_eq(
        verify_raw("{\"alg\":\"ES256\",\"kid\":\"ec-256\"}", "\"claims\"", "ES256", p256_key, &err),
        CC_ERR_INVALID);
}

Test(jwtsvid, oversized_token_rejected)
{
    size_t len = CC_JWTSVID_MAX_LEN + 10;
    char *token = malloc(len + 1);
    memset(token, 'A', len);
    token[len] = '\0';
    token[10] = '.';
    token[20] = '.';
    cc_err err = {0};
    cr_assert_eq(verify(token, NULL, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "longer than") != NULL, "%s", err.message);
    free(token);
}

Test(jwtsvid, info_zeroed_on_failure)
{
    cc_jwtsvid_info info;
    memset(&info, 'x', sizeof(info));
    cr_assert_eq(verify("a.b.c", &info, NULL), CC_ERR_INVALID);
    cr_assert_eq(info.spiffe_id[0], '\0');
    cr_assert_eq(info.exp, 0);
}

Test(jwtsvid, alg_allowed_list)
{
    cr_assert(cc_jwtsvid_alg_allowed("ES512"));
    cr_assert(cc_jwtsvid_alg_allowed("PS384"));
    cr_assert_not(cc_jwtsvid_alg_allowed("HS256"));
    cr_assert_not(cc_jwtsvid_alg_allowed("none"));
    cr_assert_not(cc_jwtsvid_alg_allowed("es256"));
    cr_assert_not(cc_jwtsvid_alg_allowed(NULL));
}

Test(jwtsvid, peek_subject)
{
    char *token = cc_test_jwtsvid(p256_key, "ES256", "ec-256", "spiffe://a.example/w",
                                  "nats-callout", NOW + 300);
    cc_spiffeid id;
    cr_assert_eq(cc_jwtsvid_peek_subject(token, &id, NULL), CC_OK);
    cr_assert_str_eq(id.trust_domain, "a.example");
    cr_assert_eq(cc_jwtsvid_peek_subject("a.b", &id, NULL), CC_ERR_INVALID);
    free(token);
}

Test(jwtsvid, keys_from_jwks_verify)
{
    /* The whole path: JWK Set text -> bundle -> verification, for each curve and RSA. */
    json_t *keys = json_array();
    json_array_append_new(keys, cc_test_jwk(rsa_key, "r", "jwt-svid"));
    json_array_append_new(keys, cc_test_jwk(p256_key, "e256", "jwt-svid"));
    json_array_append_new(keys, cc_test_jwk(p384_key, "e384", "jwt-svid"));
    json_array_append_new(keys, cc_test_jwk(p521_key, "e521", "jwt-svid"));
    json_t *root = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(root, 0);

    cc_bundle *bundle = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_parse_spiffe("j.example", text, strlen(text), &bundle, &err), CC_OK,
                 "%s", err.message);
    cc_bundle_set *set = cc_bundle_set_new();
    cr_assert_eq(cc_bundle_set_add(set, bundle, NULL), CC_OK);

    struct {
        const char *alg, *kid;
        EVP_PKEY *key;
    } cases[] = {{"RS256", "r", rsa_key},
                 {"PS512", "r", rsa_key},
                 {"ES256", "e256", p256_key},
                 {"ES384", "e384", p384_key},
                 {"ES512", "e521", p521_key}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *token = cc_test_jwtsvid(cases[i].key, cases[i].alg, cases[i].kid,
                                      "spiffe://j.example/w", "nats-callout", NOW + 60);
        cr_assert_eq(cc_jwtsvid_verify(token, set, audiences, 2, NOW, 30, NULL, &err), CC_OK,
                     "%s: %s", cases[i].alg, err.message);
        free(token);
    }

    cc_bundle_set_release(set);
    free(text);
    json_decref(root);
}
