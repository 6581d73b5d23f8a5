/* Unit tests of the decision pipeline, without network.
 *
 * Each test builds authorization requests the way nats-server 2.10 does: a
 * JWT signed by a server nkey, with the client's certificate chain as PEM
 * strings in client_tls.verified_chains. Certificates come from the test PKI,
 * policies from a JSON file in a temp directory, JWT-SVIDs are ES256 tokens
 * signed here. Responses and user JWTs are decoded with the claims module and
 * checked claim by claim. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "citadel/bundle.h"
#include "citadel/claims.h"
#include "citadel/decision.h"
#include "citadel/natsjwt.h"
#include "citadel/nkey.h"
#include "citadel/policy.h"
#include "citadel/xkey.h"
#include "../support/jwtmint.h"
#include "../support/pki.h"

#define TRUST_DOMAIN "citadel.test"
#define ID_SENSOR "spiffe://citadel.test/app/sensor"
#define ID_SERVICE "spiffe://citadel.test/app/service"
#define ID_WS_ONLY "spiffe://citadel.test/app/ws-only"
#define ID_LEAF "spiffe://citadel.test/app/leaf"
#define ID_LAN "spiffe://citadel.test/app/lan"
#define ID_UNLISTED "spiffe://citadel.test/app/unlisted"
#define JWT_KID "jwt-key-1"
#define JWT_AUDIENCE "nats://citadel"
#define SECRET_PASSWORD "pw-9f2c81d4-do-not-log"
#define SECRET_TOKEN "tok-51a7e0b3-do-not-log"

static const char policy_json[] =
    "{\"rules\": [\n"
    " {\"name\": \"sensor\", \"spiffe_id\": \"" ID_SENSOR "\", \"account\": \"APP\",\n"
    "  \"publish\": {\"allow\": [\"sensor.>\"], \"deny\": [\"sensor.secret\"]}},\n"
    " {\"name\": \"service\", \"spiffe_id\": \"" ID_SERVICE "\", \"account\": \"SVC\",\n"
    "  \"max_ttl_seconds\": 60,\n"
    "  \"subscribe\": {\"allow\": [\"svc.>\"]},\n"
    "  \"response\": {\"max\": 2, \"ttl_ms\": 5000}},\n"
    " {\"name\": \"ws-only\", \"spiffe_id\": \"" ID_WS_ONLY "\",\n"
    "  \"connection_types\": [\"WEBSOCKET\"]},\n"
    " {\"name\": \"leaf\", \"spiffe_id\": \"" ID_LEAF "\",\n"
    "  \"connection_types\": [\"LEAFNODE\"]},\n"
    " {\"name\": \"lan\", \"spiffe_id\": \"" ID_LAN "\",\n"
    "  \"source_cidrs\": [\"10.0.0.0/8\"]}\n"
    "]}\n";

typedef struct fixture {
    int64_t now;
    char *dir;
    cc_nkey issuer;
    cc_nkey server;
    cc_nkey user;
    cc_nkey service_xkey;
    cc_nkey server_xkey;
    cc_test_cert *ca;
    cc_test_cert *other_ca;
    EVP_PKEY *jwt_key;
    cc_bundle_set *bundles;
    cc_policy_set *policies;
    const char *audiences[1];
    cc_decision_context ctx;
} fixture;

static fixture F;

static void setup(void)
{
    memset(&F, 0, sizeof(F));
    F.now = (int64_t)time(NULL);
    F.dir = cc_test_tempdir("decision");
    cr_assert_not_null(F.dir);

    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &F.issuer, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_SERVER, &F.server, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_USER, &F.user, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &F.service_xkey, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &F.server_xkey, NULL), CC_OK);

    cc_test_cert_spec ca_spec = cc_test_spec_ca("citadel test root");
    F.ca = cc_test_cert_issue(&ca_spec, NULL);
    cr_assert_not_null(F.ca);
    cc_test_cert_spec other_spec = cc_test_spec_ca("unrelated root");
    F.other_ca = cc_test_cert_issue(&other_spec, NULL);
    cr_assert_not_null(F.other_ca);

    F.jwt_key = EVP_EC_gen("P-256");
    cr_assert_not_null(F.jwt_key);
    F.bundles = cc_bundle_set_new();
    cc_bundle *bundle = cc_bundle_new(TRUST_DOMAIN);
    cr_assert_not_null(bundle);
    cr_assert_eq(cc_bundle_add_x509_authority(bundle, F.ca->cert, NULL), CC_OK);
    cr_assert_eq(cc_bundle_add_jwt_authority(bundle, JWT_KID, F.jwt_key, NULL), CC_OK);
    cr_assert_eq(cc_bundle_set_add(F.bundles, bundle, NULL), CC_OK);

    char path[4096];
    snprintf(path, sizeof(path), "%s/policies.json", F.dir);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    fputs(policy_json, file);
    fclose(file);
    cc_policy_defaults defaults = {.account = "APP", .max_ttl_seconds = 3600};
    cc_err err = {0};
    cr_assert_eq(cc_policy_set_load_dir(F.dir, &defaults, &F.policies, &err), CC_OK, "%s",
                 err.message);

    F.audiences[0] = JWT_AUDIENCE;
    F.ctx.bundles = F.bundles;
    F.ctx.policies = F.policies;
    F.ctx.issuer = &F.issuer;
    F.ctx.default_account = "APP";
    F.ctx.max_ttl_seconds = 3600;
    F.ctx.jwt_leeway_seconds = 30;
    F.ctx.now = F.now;
}

static void teardown(void)
{
    cc_policy_set_release(F.policies);
    cc_bundle_set_release(F.bundles);
    EVP_PKEY_free(F.jwt_key);
    cc_test_cert_free(F.ca);
    cc_test_cert_free(F.other_ca);
    cc_test_remove_tree(F.dir);
    free(F.dir);
}

TestSuite(decision, .init = setup, .fini = teardown);

static void enable_jwtsvid(void)
{
    F.ctx.jwt_audiences = F.audiences;
    F.ctx.jwt_audience_count = 1;
}

static void enable_xkey(void) { F.ctx.xkey = &F.service_xkey; }

static char *public_key(const cc_nkey *key)
{
    char text[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(key, text);
    return strdup(text);
}

/* Issues a leaf for spiffe_id under issuer, valid until now + lifetime. */
static cc_test_cert *issue_leaf(const char *spiffe_id, int64_t lifetime, const cc_test_cert *issuer)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(spiffe_id);
    spec.not_after_offset = lifetime;
    cc_test_cert *leaf = cc_test_cert_issue(&spec, issuer);
    cr_assert_not_null(leaf);
    return leaf;
}

static int64_t cert_not_after(X509 *cert)
{
    struct tm tm;
    cr_assert(ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm));
    return (int64_t)timegm(&tm);
}

/* ---- request building ---------------------------------------------------- */

typedef struct request_spec {
    const cc_nkey *signer;      /* default: F.server */
    const char *server_id;      /* default: the signer's public key */
    const char *audience;       /* default: CC_AUTH_REQUEST_AUDIENCE */
    int64_t exp;                /* default: now + 2; -1 leaves exp out */
    const char *server_xkey;    /* nats.server_id.xkey, or NULL */
    X509 *chain[3];             /* leaf first, NULL-terminated */
    bool chain_as_certs;        /* client_tls.certs instead of verified_chains */
    const char *raw_pem;        /* a single "PEM" string that replaces chain */
    const char *auth_token;
    const char *user;
    const char *pass;
    const char *kind;           /* default "Client" */
    const char *type;           /* default "nats"; "" leaves it out */
    const char *host;           /* default "127.0.0.1" */
    bool no_tls;
} request_spec;

static json_t *pem_array(const request_spec *spec)
{
    json_t *array = json_array();
    if (spec->raw_pem != NULL) {
        json_array_append_new(array, json_string(spec->raw_pem));
        return array;
    }
    for (size_t i = 0; i < 3 && spec->chain[i] != NULL; i++) {
        char *pem = cc_test_cert_pem(spec->chain[i]);
        cr_assert_not_null(pem);
        json_array_append_new(array, json_string(pem));
        free(pem);
    }
    return array;
}

static json_t *client_tls_object(const request_spec *spec)
{
    json_t *tls = json_pack("{s:s, s:s}", "version", "1.3", "cipher", "TLS_AES_128_GCM_SHA256");
    if (spec->chain[0] == NULL && spec->raw_pem == NULL)
        return tls;
    if (spec->chain_as_certs) {
        json_object_set_new(tls, "certs", pem_array(spec));
    } else {
        json_t *chains = json_array();
        json_array_append_new(chains, pem_array(spec));
        json_object_set_new(tls, "verified_chains", chains);
    }
    return tls;
}

static json_t *connect_opts_object(const request_spec *spec)
{
    json_t *opts = json_pack("{s:s, s:s, s:i}", "lang", "C", "version", "3.4.1", "protocol", 1);
    if (spec->auth_token != NULL)
        json_object_set_new(opts, "auth_token", json_string(spec->auth_token));
    if (spec->user != NULL)
        json_object_set_new(opts, "user", json_string(spec->user));
    if (spec->pass != NULL)
        json_object_set_new(opts, "pass", json_string(spec->pass));
    return opts;
}

static json_t *client_info_object(const request_spec *spec)
{
    const char *type = spec->type != NULL ? spec->type : "nats";
    json_t *info = json_pack("{s:s, s:i, s:s, s:s}", "host",
                             spec->host != NULL ? spec->host : "127.0.0.1", "id", 42, "name",
                             "sensor-app", "kind", spec->kind != NULL ? spec->kind : "Client");
    if (type[0] != '\0')
        json_object_set_new(info, "type", json_string(type));
    /* nats-server reports the raw auth user here, a token included. */
    if (spec->auth_token != NULL)
        json_object_set_new(info, "user", json_string(spec->auth_token));
    else if (spec->user != NULL)
        json_object_set_new(info, "user", json_string(spec->user));
    return info;
}

/* Returns a signed request JWT (caller frees) as nats-server 2.10 builds it. */
static char *build_request(const request_spec *spec)
{
    const cc_nkey *signer = spec->signer != NULL ? spec->signer : &F.server;
    char *signer_public = public_key(signer);
    char *user_public = public_key(&F.user);
    char *issuer_public = public_key(&F.issuer);

    json_t *server_id = json_pack("{s:s, s:s, s:s, s:s}", "name", "test-server", "host",
                                  "127.0.0.1", "id",
                                  spec->server_id != NULL ? spec->server_id : signer_public,
                                  "version", "2.10.27");
    if (spec->server_xkey != NULL)
        json_object_set_new(server_id, "xkey", json_string(spec->server_xkey));

    json_t *nats = json_pack("{s:o, s:s, s:o, s:o, s:s, s:i}", "server_id", server_id,
                             "user_nkey", user_public, "client_info", client_info_object(spec),
                             "connect_opts", connect_opts_object(spec), "type",
                             "authorization_request", "version", 2);
    if (!spec->no_tls)
        json_object_set_new(nats, "client_tls", client_tls_object(spec));

    json_t *claims = json_pack("{s:s, s:s, s:o}", "aud",
                               spec->audience != NULL ? spec->audience : CC_AUTH_REQUEST_AUDIENCE,
                               "sub", issuer_public, "nats", nats);
    cr_assert_not_null(claims);
    if (spec->exp != -1)
        json_object_set_new(claims, "exp",
                            json_integer(spec->exp != 0 ? spec->exp : F.now + 2));

    char *token = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_jwt_encode(claims, signer, F.now, &token, &err), CC_OK, "%s", err.message);
    json_decref(claims);
    free(signer_public);
    free(user_public);
    free(issuer_public);
    return token;
}

/* A request with a valid chain for spiffe_id (leaf valid for one hour). */
static char *request_for(const char *spiffe_id, cc_test_cert **leaf_out)
{
    cc_test_cert *leaf = issue_leaf(spiffe_id, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    if (leaf_out != NULL)
        *leaf_out = leaf;
    else
        cc_test_cert_free(leaf);
    return token;
}

/* ---- running and decoding ------------------------------------------------ */

static void decide_raw(const uint8_t *payload, size_t len, const char *header, cc_decision *out)
{
    cc_decision_request req = {.payload = payload, .payload_len = len, .server_xkey = header};
    cc_err err = {0};
    cr_assert_eq(cc_decision_evaluate(&F.ctx, &req, out, &err), CC_OK, "%s", err.message);
    cr_assert_not_null(out->reason);
    cr_assert_not_null(out->audit);
}

static void decide(const char *token, cc_decision *out)
{
    decide_raw((const uint8_t *)token, strlen(token), NULL, out);
}

/* Decodes the plain response of out into resp (caller frees it). */
static void decode_response(const cc_decision *out, cc_auth_response *resp)
{
    cc_err err = {0};
    cr_assert_gt(out->response_len, 0);
    cr_assert_eq(cc_auth_response_decode((const char *)out->response, out->response_len, F.now,
                                         resp, &err),
                 CC_OK, "%s", err.message);
}

/* Decodes the user JWT inside an allowing response (caller frees claims). */
static void decode_user(const cc_decision *out, cc_user_claims *claims)
{
    cc_auth_response resp;
    cc_err err = {0};
    decode_response(out, &resp);
    cr_assert_str_not_empty(resp.user_jwt);
    cr_assert_eq(cc_user_claims_decode(resp.user_jwt, strlen(resp.user_jwt), F.now, claims, &err),
                 CC_OK, "%s", err.message);
    cc_auth_response_free(&resp);
}

static bool strings_contain(const cc_claims_strings *list, const char *value)
{
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->items[i], value) == 0)
            return true;
    }
    return false;
}

/* Asserts a deny with code whose signed response carries the reason. */
static void expect_signed_deny(const cc_decision *out, cc_decision_code code)
{
    cr_assert_not(out->allowed);
    cr_assert_eq(out->code, code, "code %s, reason: %s", cc_decision_code_name(out->code),
                 out->reason);

    cc_auth_response resp;
    decode_response(out, &resp);
    char *user_public = public_key(&F.user);
    char *server_public = public_key(&F.server);
    cr_assert_str_eq(resp.error, out->reason);
    cr_assert_str_empty(resp.user_jwt);
    cr_assert_str_eq(resp.user_nkey, user_public);
    cr_assert_str_eq(resp.server_id, server_public);
    free(user_public);
    free(server_public);
    cc_auth_response_free(&resp);
}

/* Asserts a deny with code and an empty response (request not decoded). */
static void expect_empty_deny(const cc_decision *out, cc_decision_code code)
{
    cr_assert_not(out->allowed);
    cr_assert_eq(out->code, code, "code %s, reason: %s", cc_decision_code_name(out->code),
                 out->reason);
    cr_assert_eq(out->response_len, 0);
    json_t *decision = json_object_get(out->audit, "decision");
    cr_assert_str_eq(json_string_value(decision), "deny");
}

/* ---- allow path ---------------------------------------------------------- */

Test(decision, allows_listed_workload)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert_eq(out.code, CC_DECISION_ALLOWED);
    cr_assert_str_eq(out.reason, "allowed by rule sensor");
    cr_assert_str_eq(out.spiffe_id, ID_SENSOR);
    cr_assert_str_eq(out.trust_domain, TRUST_DOMAIN);
    cr_assert_str_eq(out.rule, "sensor");
    cr_assert_str_eq(out.account, "APP");
    cr_assert_str_eq(out.client_host, "127.0.0.1");
    cr_assert_eq(out.client_id, 42);
    cr_assert_str_eq(out.client_kind, "Client");
    cr_assert_str_eq(out.client_type, "nats");
    cr_assert_str_eq(out.server_name, "test-server");
    cr_assert_not_null(out.svid_serial);
    cr_assert_eq(strlen(out.svid_fingerprint), 64);
    cr_assert_eq(out.svid_not_after, cert_not_after(leaf->cert));
    cr_assert_eq(out.user_jwt_exp, cert_not_after(leaf->cert));
    cr_assert_not(out.encrypted);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, response_names_user_and_server)
{
    char *token = request_for(ID_SENSOR, NULL);
    cc_decision out;
    cc_auth_response resp;

    decide(token, &out);
    decode_response(&out, &resp);

    char *user_public = public_key(&F.user);
    char *server_public = public_key(&F.server);
    char *issuer_public = public_key(&F.issuer);
    cr_assert_str_eq(resp.user_nkey, user_public);
    cr_assert_str_eq(resp.server_id, server_public);
    cr_assert_str_eq(resp.jwt.iss, issuer_public);
    cr_assert_str_empty(resp.error);
    cr_assert_str_not_empty(resp.user_jwt);
    cr_assert_str_eq(out.user_nkey, user_public);
    cr_assert_str_eq(out.server_id, server_public);

    free(user_public);
    free(server_public);
    free(issuer_public);
    cc_auth_response_free(&resp);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, user_jwt_claims)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;
    cc_user_claims claims;

    decide(token, &out);
    decode_user(&out, &claims);

    char *user_public = public_key(&F.user);
    char *issuer_public = public_key(&F.issuer);
    cr_assert_str_eq(claims.subject, user_public);
    cr_assert_str_eq(claims.audience, "APP");
    cr_assert_str_eq(claims.name, ID_SENSOR);
    cr_assert_str_eq(claims.jwt.iss, issuer_public);
    cr_assert_eq(claims.exp, cert_not_after(leaf->cert));
    cr_assert_eq(claims.nbf, 0);
    cr_assert_eq(claims.jwt.iat, F.now);
    cr_assert_eq(claims.pub.allow.count, 1);
    cr_assert_str_eq(claims.pub.allow.items[0], "sensor.>");
    cr_assert(strings_contain(&claims.pub.deny, "sensor.secret"));
    cr_assert_eq(claims.sub.allow.count, 0);
    cr_assert(strings_contain(&claims.sub.deny, ">"));
    cr_assert_not(claims.has_resp);

    free(user_public);
    free(issuer_public);
    cc_user_claims_free(&claims);
    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, rule_account_and_response)
{
    char *token = request_for(ID_SERVICE, NULL);
    cc_decision out;
    cc_user_claims claims;

    decide(token, &out);
    decode_user(&out, &claims);

    cr_assert_str_eq(claims.audience, "SVC");
    cr_assert_str_eq(out.account, "SVC");
    cr_assert(strings_contain(&claims.sub.allow, "svc.>"));
    cr_assert(strings_contain(&claims.pub.deny, ">"));
    cr_assert(claims.has_resp);
    cr_assert_eq(claims.resp_max, 2);
    cr_assert_eq(claims.resp_ttl_ns, 5000LL * 1000000LL);

    cc_user_claims_free(&claims);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, default_account_applies)
{
    cc_test_cert *leaf = issue_leaf(ID_WS_ONLY, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .type = "websocket"};
    char *token = build_request(&spec);
    cc_decision out;
    cc_user_claims claims;

    decide(token, &out);
    decode_user(&out, &claims);

    cr_assert_str_eq(claims.audience, "APP");
    cr_assert(strings_contain(&claims.allowed_connection_types, "WEBSOCKET"));

    cc_user_claims_free(&claims);
    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

/* ---- user JWT expiry ----------------------------------------------------- */

Test(decision, exp_capped_by_rule_ttl)
{
    char *token = request_for(ID_SERVICE, NULL);
    cc_decision out;
    cc_user_claims claims;

    decide(token, &out);
    decode_user(&out, &claims);

    cr_assert_eq(claims.exp, F.now + 60);
    cr_assert_eq(out.user_jwt_exp, F.now + 60);

    cc_user_claims_free(&claims);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, exp_capped_by_config_ttl)
{
    F.ctx.max_ttl_seconds = 120;
    char *token = request_for(ID_SENSOR, NULL);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert_eq(out.user_jwt_exp, F.now + 120);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, exp_uses_earliest_in_chain)
{
    cc_test_cert_spec ca_spec = cc_test_spec_ca("short-lived intermediate");
    ca_spec.not_after_offset = 900;
    cc_test_cert *intermediate = cc_test_cert_issue(&ca_spec, F.ca);
    cr_assert_not_null(intermediate);
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 1800, intermediate);
    request_spec spec = {.chain = {leaf->cert, intermediate->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert_eq(out.svid_not_after, cert_not_after(intermediate->cert));
    cr_assert_eq(out.user_jwt_exp, cert_not_after(intermediate->cert));

    cc_test_cert_free(leaf);
    cc_test_cert_free(intermediate);
    free(token);
    cc_decision_clear(&out);
}

/* ---- xkey ---------------------------------------------------------------- */

/* Seals token from the server xkey to the service xkey, as nats-server does. */
static uint8_t *seal_request(const char *token, size_t *len)
{
    char *service_public = public_key(&F.service_xkey);
    uint8_t *sealed = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_seal(&F.server_xkey, service_public, (const uint8_t *)token,
                              strlen(token), &sealed, len, &err),
                 CC_OK, "%s", err.message);
    free(service_public);
    return sealed;
}

static char *sealed_request_token(const char *server_xkey_claim)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .server_xkey = server_xkey_claim};
    char *token = build_request(&spec);
    cc_test_cert_free(leaf);
    return token;
}

Test(decision, xkey_sealed_round_trip)
{
    enable_xkey();
    char *server_xkey = public_key(&F.server_xkey);
    char *token = sealed_request_token(server_xkey);
    size_t sealed_len = 0;
    uint8_t *sealed = seal_request(token, &sealed_len);
    cc_decision out;

    decide_raw(sealed, sealed_len, server_xkey, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert(out.encrypted);
    cr_assert_gt(out.response_len, CC_XKEY_OVERHEAD);
    cr_assert_neq(memcmp(out.response, "eyJ", 3), 0);

    char *service_public = public_key(&F.service_xkey);
    uint8_t *opened = NULL;
    size_t opened_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_open(&F.server_xkey, service_public, out.response, out.response_len,
                              &opened, &opened_len, &err),
                 CC_OK, "%s", err.message);
    cc_auth_response resp;
    cr_assert_eq(cc_auth_response_decode((const char *)opened, opened_len, F.now, &resp, &err),
                 CC_OK, "%s", err.message);
    cr_assert_str_not_empty(resp.user_jwt);
    json_t *encrypted = json_object_get(out.audit, "encrypted");
    cr_assert(json_is_true(encrypted));

    cc_auth_response_free(&resp);
    free(opened);
    free(service_public);
    free(sealed);
    free(token);
    free(server_xkey);
    cc_decision_clear(&out);
}

Test(decision, xkey_cache_round_trip)
{
    enable_xkey();
    cc_xkey_cache *cache = cc_xkey_cache_new(&F.service_xkey, 0, NULL);
    cr_assert_not_null(cache);
    F.ctx.xkey_cache = cache;
    char *server_xkey = public_key(&F.server_xkey);
    char *token = sealed_request_token(server_xkey);
    size_t sealed_len = 0;
    uint8_t *sealed = seal_request(token, &sealed_len);
    cc_decision first;
    cc_decision second;

    decide_raw(sealed, sealed_len, server_xkey, &first);
    decide_raw(sealed, sealed_len, server_xkey, &second);

    cr_assert(first.allowed, "%s", first.reason);
    cr_assert(second.allowed, "%s", second.reason);
    cr_assert_eq(cc_xkey_cache_size(cache), 1);
    char *service_public = public_key(&F.service_xkey);
    uint8_t *opened = NULL;
    size_t opened_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_open(&F.server_xkey, service_public, second.response,
                              second.response_len, &opened, &opened_len, &err),
                 CC_OK, "%s", err.message);
    cr_assert_eq(memcmp(opened, "eyJ", 3), 0);

    free(opened);
    free(service_public);
    free(sealed);
    free(token);
    free(server_xkey);
    cc_decision_clear(&first);
    cc_decision_clear(&second);
    cc_xkey_cache_free(cache);
}

Test(decision, xkey_plain_request_denied)
{
    enable_xkey();
    char *server_xkey = public_key(&F.server_xkey);
    char *token = sealed_request_token(server_xkey);
    cc_decision out;

    decide_raw((const uint8_t *)token, strlen(token), server_xkey, &out);

    expect_empty_deny(&out, CC_DECISION_ENCRYPTION_REQUIRED);
    cr_assert(strstr(out.reason, "encryption required") != NULL);

    free(token);
    free(server_xkey);
    cc_decision_clear(&out);
}

Test(decision, xkey_missing_header_denied)
{
    enable_xkey();
    char *server_xkey = public_key(&F.server_xkey);
    char *token = sealed_request_token(server_xkey);
    size_t sealed_len = 0;
    uint8_t *sealed = seal_request(token, &sealed_len);
    cc_decision out;

    decide_raw(sealed, sealed_len, NULL, &out);

    expect_empty_deny(&out, CC_DECISION_ENCRYPTION_REQUIRED);
    cr_assert(strstr(out.reason, "encryption required") != NULL);

    free(sealed);
    free(token);
    free(server_xkey);
    cc_decision_clear(&out);
}

Test(decision, sealed_without_xkey_denied)
{
    char *server_xkey = public_key(&F.server_xkey);
    char *token = sealed_request_token(server_xkey);
    size_t sealed_len = 0;
    uint8_t *sealed = seal_request(token, &sealed_len);
    cc_decision out;

    decide_raw(sealed, sealed_len, server_xkey, &out);

    expect_empty_deny(&out, CC_DECISION_ENCRYPTION_UNEXPECTED);
    cr_assert(strstr(out.reason, "xkey_seed_file") != NULL);

    free(sealed);
    free(token);
    free(server_xkey);
    cc_decision_clear(&out);
}

Test(decision, xkey_wrong_sender_denied)
{
    enable_xkey();
    cc_nkey stranger;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &stranger, NULL), CC_OK);
    char *stranger_public = public_key(&stranger);
    char *token = sealed_request_token(stranger_public);
    size_t sealed_len = 0;
    uint8_t *sealed = seal_request(token, &sealed_len); /* sealed by F.server_xkey */
    cc_decision out;

    decide_raw(sealed, sealed_len, stranger_public, &out);

    expect_empty_deny(&out, CC_DECISION_DECRYPT_FAILED);

    free(sealed);
    free(token);
    free(stranger_public);
    cc_decision_clear(&out);
}

Test(decision, xkey_claim_mismatch_denied)
{
    enable_xkey();
    cc_nkey other;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &other, NULL), CC_OK);
    char *other_public = public_key(&other);
    char *server_xkey = public_key(&F.server_xkey);
    char *token = sealed_request_token(other_public);
    size_t sealed_len = 0;
    uint8_t *sealed = seal_request(token, &sealed_len);
    cc_decision out;

    decide_raw(sealed, sealed_len, server_xkey, &out);

    /* The server_id.xkey claim is untrusted, so the error goes out unsealed. */
    expect_signed_deny(&out, CC_DECISION_XKEY_MISMATCH);

    free(sealed);
    free(token);
    free(other_public);
    free(server_xkey);
    cc_decision_clear(&out);
}

/* ---- request checks ------------------------------------------------------ */

Test(decision, garbage_payload_denied)
{
    const char *payload = "eyJub3QgYSBqd3Q";
    cc_decision out;

    decide(payload, &out);

    expect_empty_deny(&out, CC_DECISION_BAD_REQUEST);
    cr_assert(strstr(out.reason, "invalid authorization request") != NULL);
    cr_assert_null(out.user_nkey);
    cc_decision_clear(&out);
}

Test(decision, empty_payload_denied)
{
    cc_decision out;

    decide_raw(NULL, 0, NULL, &out);

    expect_empty_deny(&out, CC_DECISION_BAD_REQUEST);
    cc_decision_clear(&out);
}

Test(decision, wrong_audience_denied)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .audience = "someone-else"};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_empty_deny(&out, CC_DECISION_BAD_REQUEST);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, issuer_not_server_id_denied)
{
    cc_nkey other;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_SERVER, &other, NULL), CC_OK);
    char *other_public = public_key(&other);
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .server_id = other_public};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_empty_deny(&out, CC_DECISION_BAD_REQUEST);

    cc_test_cert_free(leaf);
    free(other_public);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, account_issuer_denied)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .signer = &F.issuer};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_empty_deny(&out, CC_DECISION_BAD_REQUEST);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, bad_signature_denied)
{
    char *token = request_for(ID_SENSOR, NULL);
    /* Change one character in the middle of the signature segment. */
    size_t pos = strlen(token) - 20;
    token[pos] = token[pos] == 'A' ? 'B' : 'A';
    cc_decision out;

    decide(token, &out);

    expect_empty_deny(&out, CC_DECISION_BAD_REQUEST_SIGNATURE);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, expired_request_denied)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .exp = F.now - 10};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_empty_deny(&out, CC_DECISION_REQUEST_EXPIRED);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, request_without_exp_denied)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .exp = -1};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_empty_deny(&out, CC_DECISION_BAD_REQUEST);
    cr_assert(strstr(out.reason, "exp") != NULL);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

/* ---- X509-SVID ----------------------------------------------------------- */

Test(decision, no_certificate_denied)
{
    request_spec spec = {.no_tls = true};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_NO_CREDENTIAL);
    cr_assert(strncmp(out.reason, "no client certificate", 21) == 0);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, tls_without_certificate_denied)
{
    request_spec spec = {0};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_NO_CREDENTIAL);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, unparsable_certificate_denied)
{
    request_spec spec = {.raw_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_BAD_CERTIFICATE);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, other_ca_denied)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.other_ca);
    request_spec spec = {.chain = {leaf->cert, F.other_ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_X509SVID_INVALID);
    const char *prefix = "X509-SVID \"" ID_SENSOR "\" rejected: ";
    cr_assert(strncmp(out.reason, prefix, strlen(prefix)) == 0, "reason: %s", out.reason);
    cr_assert_null(strstr(out.reason + 1, "X509-SVID"), "prefix doubled: %s", out.reason);
    cr_assert_null(out.spiffe_id);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

/* Adds a bundle for trust_domain whose only authority is anchor. */
static void add_bundle(const char *trust_domain, X509 *anchor)
{
    cc_bundle *bundle = cc_bundle_new(trust_domain);
    cr_assert_not_null(bundle);
    cr_assert_eq(cc_bundle_add_x509_authority(bundle, anchor, NULL), CC_OK);
    cr_assert_eq(cc_bundle_set_add(F.bundles, bundle, NULL), CC_OK);
}

Test(decision, impostor_claim_audited)
{
    /* An ID of cloud.example, signed by the CA of citadel.test. */
    add_bundle("cloud.example", F.other_ca->cert);
    cc_test_cert *leaf = issue_leaf("spiffe://cloud.example/app/billing", 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_X509SVID_INVALID);
    cr_assert_null(out.spiffe_id);
    cr_assert_null(out.trust_domain);
    cr_assert_str_eq(out.claimed_spiffe_id, "spiffe://cloud.example/app/billing");
    cr_assert_str_eq(out.claimed_trust_domain, "cloud.example");
    json_t *claimed = json_object_get(out.audit, "claimed_spiffe_id");
    cr_assert_str_eq(json_string_value(claimed), "spiffe://cloud.example/app/billing");
    claimed = json_object_get(out.audit, "claimed_trust_domain");
    cr_assert_str_eq(json_string_value(claimed), "cloud.example");
    cr_assert_null(json_object_get(out.audit, "spiffe_id"));
    cr_assert_null(json_object_get(out.audit, "trust_domain"));

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, allow_has_no_claim)
{
    char *token = request_for(ID_SENSOR, NULL);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert_str_eq(out.spiffe_id, ID_SENSOR);
    cr_assert_null(out.claimed_spiffe_id);
    cr_assert_null(out.claimed_trust_domain);
    json_t *id = json_object_get(out.audit, "spiffe_id");
    cr_assert_str_eq(json_string_value(id), ID_SENSOR);
    cr_assert_null(json_object_get(out.audit, "claimed_spiffe_id"));
    cr_assert_null(json_object_get(out.audit, "claimed_trust_domain"));

    free(token);
    cc_decision_clear(&out);
}

Test(decision, unparsable_id_not_claimed)
{
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf("https://citadel.test/app/sensor");
    cc_test_cert *leaf = cc_test_cert_issue(&leaf_spec, F.ca);
    cr_assert_not_null(leaf);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_X509SVID_INVALID);
    cr_assert_null(out.spiffe_id);
    cr_assert_null(out.claimed_spiffe_id);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

/* Asserts that two decisions on the same request agree in every field that
 * does not depend on randomness. */
static void expect_same_decision(const cc_decision *a, const cc_decision *b)
{
    cr_assert_eq(a->allowed, b->allowed);
    cr_assert_eq(a->code, b->code);
    cr_assert_str_eq(a->reason, b->reason);
    cr_assert_eq(a->spiffe_id == NULL, b->spiffe_id == NULL);
    if (a->spiffe_id != NULL)
        cr_assert_str_eq(a->spiffe_id, b->spiffe_id);
    cr_assert_eq(a->claimed_spiffe_id == NULL, b->claimed_spiffe_id == NULL);
    if (a->claimed_spiffe_id != NULL)
        cr_assert_str_eq(a->claimed_spiffe_id, b->claimed_spiffe_id);
    cr_assert_eq(a->svid_serial == NULL, b->svid_serial == NULL);
    if (a->svid_serial != NULL)
        cr_assert_str_eq(a->svid_serial, b->svid_serial);
    cr_assert_eq(a->svid_fingerprint == NULL, b->svid_fingerprint == NULL);
    if (a->svid_fingerprint != NULL)
        cr_assert_str_eq(a->svid_fingerprint, b->svid_fingerprint);
    cr_assert_eq(a->svid_not_after, b->svid_not_after);
    cr_assert_eq(a->user_jwt_exp, b->user_jwt_exp);
}

/* Decides token without a cache, then twice with one (a miss, then a hit),
 * and asserts that all three decisions agree. */
static void expect_cache_neutral(const char *token)
{
    cc_err err = {0};
    cc_certcache *cache = cc_certcache_new(0, &err);
    cr_assert_not_null(cache, "%s", err.message);
    cc_decision uncached;
    cc_decision miss;
    cc_decision hit;

    decide(token, &uncached);
    F.ctx.cert_cache = cache;
    decide(token, &miss);
    decide(token, &hit);
    F.ctx.cert_cache = NULL;

    expect_same_decision(&uncached, &miss);
    expect_same_decision(&uncached, &hit);
    cc_decision_clear(&uncached);
    cc_decision_clear(&miss);
    cc_decision_clear(&hit);
    cc_certcache_free(cache);
}

Test(decision, cache_same_allow)
{
    char *token = request_for(ID_SERVICE, NULL);
    expect_cache_neutral(token);
    free(token);
}

Test(decision, cache_same_deny)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.other_ca);
    request_spec spec = {.chain = {leaf->cert, F.other_ca->cert}};
    char *token = build_request(&spec);

    expect_cache_neutral(token);

    cc_test_cert_free(leaf);
    free(token);
}

Test(decision, cache_same_bad_pem)
{
    request_spec spec = {.raw_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"};
    char *token = build_request(&spec);

    expect_cache_neutral(token);

    free(token);
}

#define CACHE_THREADS 4
#define CACHE_ROUNDS 10

typedef struct cache_worker {
    const char *const *tokens; /* NULL-terminated, borrowed */
    int decisions;
    int failures; /* internal errors and decisions other than expected */
} cache_worker;

static void *decide_with_cache(void *opaque)
{
    cache_worker *worker = opaque;
    for (int round = 0; round < CACHE_ROUNDS; round++) {
        for (size_t i = 0; worker->tokens[i] != NULL; i++) {
            const char *token = worker->tokens[i];
            cc_decision_request req = {.payload = (const uint8_t *)token,
                                       .payload_len = strlen(token)};
            cc_decision out;
            bool expect_allowed = i == 0;
            if (cc_decision_evaluate(&F.ctx, &req, &out, NULL) != CC_OK ||
                out.allowed != expect_allowed)
                worker->failures++;
            worker->decisions++;
            cc_decision_clear(&out);
        }
    }
    return NULL;
}

Test(decision, cache_shared_by_threads)
{
    cc_err err = {0};
    cc_certcache *cache = cc_certcache_new(0, &err);
    cr_assert_not_null(cache, "%s", err.message);
    cc_test_cert *other_leaf = issue_leaf(ID_SENSOR, 3600, F.other_ca);
    request_spec other_spec = {.chain = {other_leaf->cert, F.other_ca->cert}};
    char *allowed = request_for(ID_SENSOR, NULL);
    char *denied = build_request(&other_spec);
    const char *tokens[] = {allowed, denied, NULL};
    pthread_t threads[CACHE_THREADS];
    cache_worker workers[CACHE_THREADS];

    F.ctx.cert_cache = cache;
    for (int t = 0; t < CACHE_THREADS; t++) {
        workers[t] = (cache_worker){.tokens = tokens};
        cr_assert_eq(pthread_create(&threads[t], NULL, decide_with_cache, &workers[t]), 0);
    }
    for (int t = 0; t < CACHE_THREADS; t++) {
        pthread_join(threads[t], NULL);
        cr_assert_eq(workers[t].decisions, 2 * CACHE_ROUNDS, "thread %d", t);
        cr_assert_eq(workers[t].failures, 0, "thread %d", t);
    }
    F.ctx.cert_cache = NULL;

    cr_assert_eq(cc_certcache_size(cache), 4, "two leaves and two roots");
    cc_test_cert_free(other_leaf);
    free(allowed);
    free(denied);
    cc_certcache_free(cache);
}

Test(decision, unknown_trust_domain_denied)
{
    cc_test_cert *leaf = issue_leaf("spiffe://elsewhere.test/app/sensor", 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_X509SVID_INVALID);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, expired_svid_denied)
{
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_SENSOR);
    leaf_spec.not_before_offset = -7200;
    leaf_spec.not_after_offset = -60;
    cc_test_cert *leaf = cc_test_cert_issue(&leaf_spec, F.ca);
    cr_assert_not_null(leaf);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_X509SVID_INVALID);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, certs_used_without_verified_chain)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .chain_as_certs = true};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert_str_eq(out.spiffe_id, ID_SENSOR);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

/* ---- JWT-SVID ------------------------------------------------------------ */

/* Returns an ES256 JWT-SVID signed with key (caller frees). */
static char *mint_jwtsvid(EVP_PKEY *key, const char *sub, const char *audience, int64_t exp)
{
    char *token = cc_test_jwtsvid(key, "ES256", JWT_KID, sub, audience, exp);
    cr_assert_not_null(token);
    return token;
}

Test(decision, jwtsvid_alone_allowed)
{
    enable_jwtsvid();
    char *svid = mint_jwtsvid(F.jwt_key, ID_SENSOR, JWT_AUDIENCE, F.now + 300);
    request_spec spec = {.auth_token = svid};
    char *token = build_request(&spec);
    cc_decision out;
    cc_user_claims claims;

    decide(token, &out);
    cr_assert(out.allowed, "%s", out.reason);
    decode_user(&out, &claims);

    cr_assert_str_eq(out.spiffe_id, ID_SENSOR);
    cr_assert(out.jwt_svid_used);
    cr_assert_eq(out.jwt_svid_exp, F.now + 300);
    cr_assert_eq(claims.exp, F.now + 300);
    cr_assert_null(out.svid_serial);

    cc_user_claims_free(&claims);
    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, jwtsvid_with_matching_x509)
{
    enable_jwtsvid();
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    char *svid = mint_jwtsvid(F.jwt_key, ID_SENSOR, JWT_AUDIENCE, F.now + 120);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .auth_token = svid};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert(out.jwt_svid_used);
    cr_assert_not_null(out.svid_serial);
    cr_assert_eq(out.user_jwt_exp, F.now + 120);

    cc_test_cert_free(leaf);
    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, jwtsvid_in_password_field)
{
    enable_jwtsvid();
    char *svid = mint_jwtsvid(F.jwt_key, ID_SENSOR, JWT_AUDIENCE, F.now + 300);
    request_spec spec = {.user = "sensor", .pass = svid};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert(out.jwt_svid_used);

    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, spiffe_id_mismatch_denied)
{
    enable_jwtsvid();
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    char *svid = mint_jwtsvid(F.jwt_key, ID_SERVICE, JWT_AUDIENCE, F.now + 300);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .auth_token = svid};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_SPIFFE_ID_MISMATCH);
    cr_assert(strstr(out.reason, ID_SERVICE) != NULL);

    cc_test_cert_free(leaf);
    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, jwtsvid_wrong_audience_denied)
{
    enable_jwtsvid();
    char *svid = mint_jwtsvid(F.jwt_key, ID_SENSOR, "some-other-service", F.now + 300);
    request_spec spec = {.auth_token = svid};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_JWTSVID_INVALID);
    cr_assert(strncmp(out.reason, "JWT-SVID rejected", 17) == 0);

    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, jwtsvid_unknown_key_denied)
{
    enable_jwtsvid();
    EVP_PKEY *stranger = EVP_EC_gen("P-256");
    cr_assert_not_null(stranger);
    char *svid = mint_jwtsvid(stranger, ID_SENSOR, JWT_AUDIENCE, F.now + 300);
    request_spec spec = {.auth_token = svid};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_JWTSVID_INVALID);

    EVP_PKEY_free(stranger);
    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, jwtsvid_within_leeway_denied)
{
    enable_jwtsvid();
    char *svid = mint_jwtsvid(F.jwt_key, ID_SENSOR, JWT_AUDIENCE, F.now - 5);
    request_spec spec = {.auth_token = svid};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    /* The verifier's leeway accepts the token, but a user JWT would be
     * expired on arrival. */
    expect_signed_deny(&out, CC_DECISION_JWTSVID_INVALID);
    cr_assert_not_null(strstr(out.reason, "credentials expire"), "%s", out.reason);

    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, token_without_jwtsvid_config)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .auth_token = SECRET_TOKEN};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_JWTSVID_DISABLED);
    cr_assert(strstr(out.reason, "jwt_svid") != NULL);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

/* ---- policy -------------------------------------------------------------- */

Test(decision, no_policy_denied)
{
    char *token = request_for(ID_UNLISTED, NULL);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_NO_POLICY);
    cr_assert_str_eq(out.reason, "no policy for SPIFFE ID " ID_UNLISTED);
    cr_assert_str_eq(out.spiffe_id, ID_UNLISTED);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, connection_type_denied)
{
    char *token = request_for(ID_WS_ONLY, NULL); /* type "nats" = STANDARD */
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_CONNECTION_TYPE);
    cr_assert(strstr(out.reason, "STANDARD") != NULL);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, leafnode_type_allowed)
{
    cc_test_cert *leaf = issue_leaf(ID_LEAF, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .kind = "Leafnode", .type = ""};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, unknown_connection_kind_denied)
{
    cc_test_cert *leaf = issue_leaf(ID_LEAF, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .kind = "Router", .type = ""};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_CONNECTION_TYPE);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, source_cidr_denied)
{
    char *token = request_for(ID_LAN, NULL); /* host 127.0.0.1 */
    cc_decision out;

    decide(token, &out);

    expect_signed_deny(&out, CC_DECISION_SOURCE_ADDRESS);
    cr_assert(strstr(out.reason, "127.0.0.1") != NULL);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, source_cidr_allowed)
{
    cc_test_cert *leaf = issue_leaf(ID_LAN, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}, .host = "10.1.2.3"};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert(out.allowed, "%s", out.reason);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

/* ---- audit event --------------------------------------------------------- */

static const char *audit_string(const cc_decision *out, const char *path1, const char *path2)
{
    json_t *value = json_object_get(out->audit, path1);
    if (path2 != NULL)
        value = json_object_get(value, path2);
    return json_string_value(value);
}

Test(decision, audit_event_fields)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert}};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);

    cr_assert_str_eq(audit_string(&out, "decision", NULL), "allow");
    cr_assert_str_eq(audit_string(&out, "code", NULL), "allowed");
    cr_assert_str_eq(audit_string(&out, "decision_id", NULL), out.id);
    cr_assert_str_eq(audit_string(&out, "reason", NULL), "allowed by rule sensor");
    cr_assert_str_eq(audit_string(&out, "spiffe_id", NULL), ID_SENSOR);
    cr_assert_str_eq(audit_string(&out, "trust_domain", NULL), TRUST_DOMAIN);
    cr_assert_str_eq(audit_string(&out, "rule", NULL), "sensor");
    cr_assert_str_eq(audit_string(&out, "account", NULL), "APP");
    cr_assert_str_eq(audit_string(&out, "user_nkey", NULL), out.user_nkey);
    cr_assert_str_eq(audit_string(&out, "server", "name"), "test-server");
    cr_assert_str_eq(audit_string(&out, "client", "host"), "127.0.0.1");
    cr_assert_str_eq(audit_string(&out, "client", "type"), "nats");
    cr_assert_str_eq(audit_string(&out, "svid", "fingerprint_sha256"), out.svid_fingerprint);
    json_t *exp = json_object_get(out.audit, "user_jwt_exp");
    cr_assert_eq(json_integer_value(exp), cert_not_after(leaf->cert));
    json_t *client_id = json_object_get(json_object_get(out.audit, "client"), "id");
    cr_assert_eq(json_integer_value(client_id), 42);
    const char *ts = audit_string(&out, "ts", NULL);
    cr_assert_not_null(ts);
    cr_assert_eq(strlen(ts), 20);

    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, audit_omits_token_and_password)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, F.ca);
    request_spec spec = {.chain = {leaf->cert, F.ca->cert},
                         .auth_token = SECRET_TOKEN,
                         .user = "sensor",
                         .pass = SECRET_PASSWORD};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);
    char *audit = json_dumps(out.audit, JSON_COMPACT);

    cr_assert_eq(out.code, CC_DECISION_JWTSVID_DISABLED);
    cr_assert_null(strstr(audit, SECRET_TOKEN));
    cr_assert_null(strstr(audit, SECRET_PASSWORD));
    cr_assert_null(strstr(out.reason, SECRET_TOKEN));
    cr_assert_null(strstr(out.reason, SECRET_PASSWORD));

    free(audit);
    cc_test_cert_free(leaf);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, audit_omits_jwtsvid)
{
    enable_jwtsvid();
    char *svid = mint_jwtsvid(F.jwt_key, ID_SENSOR, JWT_AUDIENCE, F.now + 300);
    request_spec spec = {.auth_token = svid};
    char *token = build_request(&spec);
    cc_decision out;

    decide(token, &out);
    char *audit = json_dumps(out.audit, JSON_COMPACT);

    cr_assert(out.allowed, "%s", out.reason);
    cr_assert_null(strstr(audit, svid));
    /* The signature segment alone must not leak either. */
    cr_assert_null(strstr(audit, strrchr(svid, '.') + 1));
    json_t *jwt_exp = json_object_get(json_object_get(out.audit, "jwt_svid"), "exp");
    cr_assert_eq(json_integer_value(jwt_exp), F.now + 300);

    free(audit);
    free(svid);
    free(token);
    cc_decision_clear(&out);
}

Test(decision, audit_for_undecodable_request)
{
    cc_decision out;

    decide("eyJnYXJiYWdl", &out);

    cr_assert_str_eq(audit_string(&out, "decision", NULL), "deny");
    cr_assert_str_eq(audit_string(&out, "code", NULL), "bad_request");
    cr_assert_str_eq(audit_string(&out, "reason", NULL), out.reason);
    cr_assert_str_eq(audit_string(&out, "decision_id", NULL), out.id);

    cc_decision_clear(&out);
}

Test(decision, take_audit_transfers_ownership)
{
    cc_decision out;

    decide("eyJnYXJiYWdl", &out);
    json_t *audit = cc_decision_take_audit(&out);

    cr_assert_not_null(audit);
    cr_assert_null(out.audit);
    cr_assert_null(cc_decision_take_audit(&out));

    json_decref(audit);
    cc_decision_clear(&out);
}

/* ---- decision id and context --------------------------------------------- */

Test(decision, ids_unique_and_sortable)
{
    cc_decision first;
    cc_decision second;

    decide("eyJnYXJiYWdl", &first);
    decide("eyJnYXJiYWdl", &second);

    cr_assert_eq(strlen(first.id), CC_DECISION_ID_LEN);
    cr_assert_str_neq(first.id, second.id);
    /* Both share the time prefix, because ctx.now is the same. */
    cr_assert_eq(strncmp(first.id, second.id, 10), 0);
    cr_assert_eq(strspn(first.id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), CC_DECISION_ID_LEN);

    cc_decision_clear(&first);
    cc_decision_clear(&second);
}

Test(decision, missing_issuer_is_internal)
{
    F.ctx.issuer = NULL;
    char *token = request_for(ID_SENSOR, NULL);
    cc_decision_request req = {.payload = (const uint8_t *)token, .payload_len = strlen(token)};
    cc_decision out;
    cc_err err = {0};

    cr_assert_eq(cc_decision_evaluate(&F.ctx, &req, &out, &err), CC_ERR_INVALID);

    cr_assert_not(out.allowed);
    cr_assert_eq(out.code, CC_DECISION_INTERNAL);
    cr_assert_eq(out.response_len, 0);
    cr_assert_not_null(out.audit);
    cr_assert_str_not_empty(err.message);

    free(token);
    cc_decision_clear(&out);
}

Test(decision, code_names)
{
    cr_assert_str_eq(cc_decision_code_name(CC_DECISION_ALLOWED), "allowed");
    cr_assert_str_eq(cc_decision_code_name(CC_DECISION_NO_POLICY), "no_policy");
    cr_assert_str_eq(cc_decision_code_name(CC_DECISION_INTERNAL), "internal");
    cr_assert_str_eq(cc_decision_code_name((cc_decision_code)999), "unknown");
}

Test(decision, clear_zeroed_struct)
{
    cc_decision out;
    memset(&out, 0, sizeof(out));

    cc_decision_clear(&out);
    cc_decision_clear(NULL);

    cr_assert_null(out.reason);
}
