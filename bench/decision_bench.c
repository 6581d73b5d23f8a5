/* Benchmark of cc_decision_evaluate() against the crypto that one decision
 * cannot avoid, measured in the same run.
 *
 * The requests are built the way nats-server 2.10.27 builds them: a request
 * JWT signed by a server nkey whose client_tls.verified_chains[0] contains the
 * PEM text of leaf, intermediate and root. Four decisions are timed: an allow
 * (rule found, user JWT issued) and a deny (valid SVID without a rule), each
 * plain and xkey-sealed. Sealed requests go through a cc_xkey_cache, as in
 * the service; one more case shows the sealed allow without the cache.
 *
 * Baselines, run with libsodium and OpenSSL directly on the same data:
 *   crypto allow: Ed25519 verify of the request, X509_verify_cert of the
 *                 already parsed chain, two Ed25519 signs (user JWT, response)
 *   crypto deny:  the same with one sign (the deny response only)
 *   crypto allow/deny sealed: plus crypto_box open and seal with a shared key
 *                 computed once, as the service's xkey cache does
 *   parse chain:  PEM to X509 of the three certificates, nothing else
 *   parse leaf only: PEM to X509 of the leaf alone
 *
 * Four steps of the pipeline are also timed alone with the library's own
 * functions, and reported as a share of the plain allow decision: request
 * decoding (JSON, base64, Ed25519 verify), chain parsing, SVID verification
 * and response encoding (JSON, Ed25519 sign).
 *
 * Time is the CPU time of the benchmark thread (CLOCK_THREAD_CPUTIME_ID), so
 * other processes on the machine change the numbers less than wall time
 * would. Each round times every case in turn for ROUND_SECONDS of CPU time
 * (at most MAX_ITERATIONS_PER_ROUND calls), so slow drift affects all cases
 * alike. The report gives the median rate over ROUNDS rounds and the median
 * of the per-round cost ratios. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sodium.h>

#include "citadel/bundle.h"
#include "citadel/claims.h"
#include "citadel/decision.h"
#include "citadel/natsjwt.h"
#include "citadel/nkey.h"
#include "citadel/policy.h"
#include "citadel/x509svid.h"
#include "citadel/xkey.h"
#include "../tests/support/pki.h"

#define ROUNDS 21
#define ROUND_SECONDS 0.06
#define MAX_ITERATIONS_PER_ROUND 50000
#define WARMUP_ROUNDS 1

#define TRUST_DOMAIN "citadel.test"
#define ID_ALLOWED "spiffe://citadel.test/app/sensor"
#define ID_UNLISTED "spiffe://citadel.test/app/unlisted"
#define CHAIN_LEN 3
/* Rules besides the one that matches, so that the lookup runs on a policy
 * set of a plausible size. */
#define OTHER_RULES 50

/* ---- fixture ------------------------------------------------------------- */

/* One request as the service receives it. */
typedef struct request {
    uint8_t *payload; /* owned */
    size_t payload_len;
    const char *server_xkey; /* header value, borrowed from the fixture, or NULL */
    const cc_decision_context *ctx;
    bool expect_allowed;
} request;

typedef struct fixture {
    int64_t now;
    char *dir;
    cc_nkey issuer;
    cc_nkey server;
    cc_nkey user;
    cc_nkey service_xkey;
    cc_nkey server_xkey;
    char server_xkey_public[CC_NKEY_PUBLIC_LEN + 1];

    cc_test_cert *root;
    cc_test_cert *intermediate;
    cc_bundle_set *bundles;
    cc_policy_set *policies;
    cc_decision_context ctx_plain;
    cc_decision_context ctx_sealed;
    cc_decision_context ctx_sealed_uncached;
    cc_xkey_cache *xkey_cache;

    request allow_plain;
    request deny_plain;
    request allow_sealed;
    request deny_sealed;
    request allow_sealed_uncached; /* payload borrowed from allow_sealed */

    /* Baseline inputs, copied from the requests and responses above. */
    char *chain_pem[CHAIN_LEN];  /* PEM of the allowed request's chain */
    STACK_OF(X509) * chain;      /* the same chain, parsed once */
    STACK_OF(X509) * roots;      /* the bundle's root */
    char *request_signing_input; /* "header.claims" of the allowed request */
    uint8_t request_signature[crypto_sign_BYTES];
    char *user_jwt_signing_input;
    char *response_signing_input;
    char *response;          /* the allowed request's plain response JWT */
    uint8_t *sealed_request; /* allow_sealed.payload, borrowed */
    size_t sealed_request_len;
    uint8_t shared_key[crypto_box_BEFORENMBYTES];
} fixture;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "decision_bench: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    exit(1);
}

static void *checked(void *pointer, const char *what)
{
    if (pointer == NULL)
        die(what, "failed");
    return pointer;
}

static void check_status(cc_status status, const cc_err *err, const char *what)
{
    if (status != CC_OK)
        die(what, err != NULL ? err->message : cc_status_name(status));
}

static char *public_key(const cc_nkey *key)
{
    char text[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(key, text);
    return checked(strdup(text), "copying a public key");
}

static void make_pki(fixture *f)
{
    cc_test_cert_spec root_spec = cc_test_spec_ca("citadel bench root");
    f->root = checked(cc_test_cert_issue(&root_spec, NULL), "issuing the root");
    cc_test_cert_spec intermediate_spec = cc_test_spec_ca("citadel bench intermediate");
    f->intermediate =
        checked(cc_test_cert_issue(&intermediate_spec, f->root), "issuing the intermediate");

    f->bundles = checked(cc_bundle_set_new(), "creating the bundle set");
    X509 *roots[1] = {f->root->cert};
    if (cc_test_bundle_add(f->bundles, TRUST_DOMAIN, roots, 1) != 0)
        die("adding the bundle", NULL);
    f->roots = checked(sk_X509_new_null(), "creating the root stack");
    sk_X509_push(f->roots, f->root->cert);
}

/* Writes a policy file with the allowed ID's rule among OTHER_RULES others. */
static void make_policies(fixture *f)
{
    f->dir = checked(cc_test_tempdir("decision-bench"), "creating a temp directory");
    char path[4096];
    snprintf(path, sizeof(path), "%s/policies.json", f->dir);
    FILE *file = checked(fopen(path, "w"), "writing policies.json");

    fputs("{\"rules\": [\n", file);
    for (int i = 0; i < OTHER_RULES; i++)
        fprintf(file,
                " {\"name\": \"app-%d\", \"spiffe_id\": \"spiffe://" TRUST_DOMAIN "/app/%d\",\n"
                "  \"publish\": {\"allow\": [\"app%d.>\"]}},\n",
                i, i, i);
    fputs(" {\"name\": \"sensor\", \"spiffe_id\": \"" ID_ALLOWED "\", \"account\": \"APP\",\n"
          "  \"publish\": {\"allow\": [\"sensor.>\"], \"deny\": [\"sensor.secret\"]},\n"
          "  \"subscribe\": {\"allow\": [\"sensor.>\", \"_INBOX.>\"]},\n"
          "  \"response\": {\"max\": 1, \"ttl_ms\": 5000}}\n"
          "]}\n",
          file);
    fclose(file);

    cc_policy_defaults defaults = {.account = "APP", .max_ttl_seconds = 3600};
    cc_err err = {0};
    check_status(cc_policy_set_load_dir(f->dir, &defaults, &f->policies, &err), &err,
                 "loading the policies");
}

/* Returns verified_chains as nats-server 2.10.27 sends it: one chain of PEM
 * strings, leaf first, root last. */
static json_t *verified_chains(X509 *leaf, const fixture *f, char *pem_out[CHAIN_LEN])
{
    X509 *certs[CHAIN_LEN] = {leaf, f->intermediate->cert, f->root->cert};
    json_t *chain = json_array();
    for (int i = 0; i < CHAIN_LEN; i++) {
        char *pem = checked(cc_test_cert_pem(certs[i]), "writing a certificate as PEM");
        json_array_append_new(chain, json_string(pem));
        if (pem_out != NULL)
            pem_out[i] = pem;
        else
            free(pem);
    }
    json_t *chains = json_array();
    json_array_append_new(chains, chain);
    return chains;
}

/* Returns a signed request JWT for a new leaf of spiffe_id (caller frees).
 * With server_xkey, nats.server_id carries it, as for a sealed request. */
static char *build_request(fixture *f, const char *spiffe_id, const char *server_xkey,
                           char *pem_out[CHAIN_LEN])
{
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(spiffe_id);
    cc_test_cert *leaf = checked(cc_test_cert_issue(&leaf_spec, f->intermediate), "issuing a leaf");
    char *server_public = public_key(&f->server);
    char *user_public = public_key(&f->user);
    char *issuer_public = public_key(&f->issuer);

    json_t *server_id = json_pack("{s:s, s:s, s:s, s:s}", "name", "bench-server", "host", "0.0.0.0",
                                  "id", server_public, "version", "2.10.27");
    if (server_xkey != NULL)
        json_object_set_new(server_id, "xkey", json_string(server_xkey));
    json_t *client_info = json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", "127.0.0.1", "id", 7,
                                    "name", "sensor-app", "kind", "Client", "type", "nats");
    json_t *connect_opts = json_pack("{s:s, s:s, s:s, s:i}", "name", "sensor-app", "lang", "C",
                                     "version", "3.4.1", "protocol", 1);
    json_t *client_tls =
        json_pack("{s:s, s:s, s:o}", "version", "1.3", "cipher", "TLS_AES_128_GCM_SHA256",
                  "verified_chains", verified_chains(leaf->cert, f, pem_out));
    json_t *nats =
        json_pack("{s:o, s:s, s:o, s:o, s:o, s:s, s:i}", "server_id", server_id, "user_nkey",
                  user_public, "client_info", client_info, "connect_opts", connect_opts,
                  "client_tls", client_tls, "type", "authorization_request", "version", 2);
    json_t *claims = json_pack("{s:s, s:I, s:s, s:o}", "aud", CC_AUTH_REQUEST_AUDIENCE, "exp",
                               (json_int_t)(f->now + 2), "sub", issuer_public, "nats", nats);
    checked(claims, "building the request claims");

    char *token = NULL;
    cc_err err = {0};
    check_status(cc_jwt_encode(claims, &f->server, f->now, &token, &err), &err,
                 "signing the request");
    json_decref(claims);
    free(server_public);
    free(user_public);
    free(issuer_public);
    cc_test_cert_free(leaf);
    return token;
}

static void make_plain(request *req, char *token, const cc_decision_context *ctx, bool allowed)
{
    req->payload = (uint8_t *)token;
    req->payload_len = strlen(token);
    req->ctx = ctx;
    req->expect_allowed = allowed;
}

/* Seals token from the server xkey to the service xkey, as nats-server does,
 * and frees token. */
static void make_sealed(fixture *f, request *req, char *token, bool allowed)
{
    char *service_public = public_key(&f->service_xkey);
    cc_err err = {0};
    check_status(cc_xkey_seal(&f->server_xkey, service_public, (const uint8_t *)token,
                              strlen(token), &req->payload, &req->payload_len, &err),
                 &err, "sealing a request");
    req->server_xkey = f->server_xkey_public;
    req->ctx = &f->ctx_sealed;
    req->expect_allowed = allowed;
    free(service_public);
    free(token);
}

/* Returns a copy of token up to its last '.', the part a JWT signature covers. */
static char *signing_input(const char *token)
{
    const char *dot = strrchr(token, '.');
    if (dot == NULL)
        die("token without a signature", NULL);
    return checked(strndup(token, (size_t)(dot - token)), "copying a signing input");
}

/* Stores the signing inputs of a real user JWT and response, so that the
 * baseline signs as many bytes as the decision does. */
static void capture_response(fixture *f)
{
    cc_decision_request req = {.payload = f->allow_plain.payload,
                               .payload_len = f->allow_plain.payload_len};
    cc_decision out;
    cc_err err = {0};
    check_status(cc_decision_evaluate(&f->ctx_plain, &req, &out, &err), &err, "first decision");
    if (!out.allowed)
        die("the allow request was denied", out.reason);

    char *response = checked(strndup((const char *)out.response, out.response_len), "copy");
    cc_auth_response resp;
    check_status(cc_auth_response_decode(response, strlen(response), f->now, &resp, &err), &err,
                 "decoding the response");
    f->user_jwt_signing_input = signing_input(resp.user_jwt);
    f->response_signing_input = signing_input(response);
    f->response = response; /* the fixture owns it */
    cc_auth_response_free(&resp);
    cc_decision_clear(&out);
}

static void make_baseline_inputs(fixture *f, const char *allow_token)
{
    f->request_signing_input = signing_input(allow_token);
    crypto_sign_detached(f->request_signature, NULL, (const uint8_t *)f->request_signing_input,
                         strlen(f->request_signing_input), f->server.secret_key);

    cc_err err = {0};
    check_status(
        cc_x509svid_parse_pem_array((const char *const *)f->chain_pem, CHAIN_LEN, &f->chain, &err),
        &err, "parsing the chain");

    f->sealed_request = f->allow_sealed.payload;
    f->sealed_request_len = f->allow_sealed.payload_len;
    if (crypto_box_beforenm(f->shared_key, f->server_xkey.public_key, f->service_xkey.secret_key) !=
        0)
        die("computing the xkey shared key", NULL);
}

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof(*f));
    cc_err err = {0};
    check_status(cc_nkey_library_init(&err), &err, "initialising libsodium");
    f->now = (int64_t)time(NULL);
    check_status(cc_nkey_generate(CC_NKEY_ACCOUNT, &f->issuer, &err), &err, "issuer key");
    check_status(cc_nkey_generate(CC_NKEY_SERVER, &f->server, &err), &err, "server key");
    check_status(cc_nkey_generate(CC_NKEY_USER, &f->user, &err), &err, "user key");
    check_status(cc_nkey_generate(CC_NKEY_CURVE, &f->service_xkey, &err), &err, "service xkey");
    check_status(cc_nkey_generate(CC_NKEY_CURVE, &f->server_xkey, &err), &err, "server xkey");
    cc_nkey_public_string(&f->server_xkey, f->server_xkey_public);

    make_pki(f);
    make_policies(f);
    f->ctx_plain = (cc_decision_context){.bundles = f->bundles,
                                         .policies = f->policies,
                                         .issuer = &f->issuer,
                                         .default_account = "APP",
                                         .max_ttl_seconds = 3600,
                                         .now = f->now};
    f->ctx_sealed_uncached = f->ctx_plain;
    f->ctx_sealed_uncached.xkey = &f->service_xkey;
    f->xkey_cache =
        checked(cc_xkey_cache_new(&f->service_xkey, 0, NULL), "creating the xkey cache");
    f->ctx_sealed = f->ctx_sealed_uncached;
    f->ctx_sealed.xkey_cache = f->xkey_cache;

    char *allow_token = build_request(f, ID_ALLOWED, NULL, f->chain_pem);
    make_plain(&f->allow_plain, allow_token, &f->ctx_plain, true);
    make_plain(&f->deny_plain, build_request(f, ID_UNLISTED, NULL, NULL), &f->ctx_plain, false);
    make_sealed(f, &f->allow_sealed, build_request(f, ID_ALLOWED, f->server_xkey_public, NULL),
                true);
    make_sealed(f, &f->deny_sealed, build_request(f, ID_UNLISTED, f->server_xkey_public, NULL),
                false);

    f->allow_sealed_uncached = f->allow_sealed;
    f->allow_sealed_uncached.ctx = &f->ctx_sealed_uncached;

    capture_response(f);
    make_baseline_inputs(f, allow_token);
}

static void fixture_free(fixture *f)
{
    request *requests[] = {&f->allow_plain, &f->deny_plain, &f->allow_sealed, &f->deny_sealed};
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
        free(requests[i]->payload);
    for (int i = 0; i < CHAIN_LEN; i++)
        free(f->chain_pem[i]);
    cc_x509svid_chain_free(f->chain);
    sk_X509_free(f->roots);
    free(f->request_signing_input);
    free(f->user_jwt_signing_input);
    free(f->response_signing_input);
    free(f->response);
    cc_xkey_cache_free(f->xkey_cache);
    cc_policy_set_release(f->policies);
    cc_bundle_set_release(f->bundles);
    cc_test_cert_free(f->intermediate);
    cc_test_cert_free(f->root);
    cc_test_remove_tree(f->dir);
    free(f->dir);
    sodium_memzero(f->shared_key, sizeof(f->shared_key));
}

/* ---- operations ---------------------------------------------------------- */

static void run_decision(const request *r)
{
    cc_decision_request req = {
        .payload = r->payload, .payload_len = r->payload_len, .server_xkey = r->server_xkey};
    cc_decision out;
    cc_err err = {0};
    check_status(cc_decision_evaluate(r->ctx, &req, &out, &err), &err, "decision");
    if (out.allowed != r->expect_allowed)
        die("unexpected decision", out.reason);
    cc_decision_clear(&out);
}

static void verify_request_signature(const fixture *f)
{
    if (crypto_sign_verify_detached(f->request_signature, (const uint8_t *)f->request_signing_input,
                                    strlen(f->request_signing_input), f->server.public_key) != 0)
        die("baseline request signature did not verify", NULL);
}

/* X509_verify_cert as cc_x509svid_verify() sets it up: no store, the bundle
 * roots as the trusted stack, partial chains allowed, a fixed time. */
static void verify_chain(const fixture *f)
{
    X509_STORE_CTX *ctx = checked(X509_STORE_CTX_new(), "X509_STORE_CTX_new");
    STACK_OF(X509) *untrusted = checked(sk_X509_new_null(), "sk_X509_new_null");
    for (int i = 1; i < sk_X509_num(f->chain); i++)
        sk_X509_push(untrusted, sk_X509_value(f->chain, i));

    if (!X509_STORE_CTX_init(ctx, NULL, sk_X509_value(f->chain, 0), untrusted))
        die("X509_STORE_CTX_init failed", NULL);
    X509_STORE_CTX_set0_trusted_stack(ctx, f->roots);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)f->now);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_verify_cert(ctx) != 1)
        die("baseline chain did not verify",
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));

    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
}

static void sign(const fixture *f, const char *input)
{
    uint8_t signature[crypto_sign_BYTES];
    crypto_sign_detached(signature, NULL, (const uint8_t *)input, strlen(input),
                         f->issuer.secret_key);
}

/* Opens the sealed request and seals the response, both with the
 * precomputed shared key. */
static void box_open_and_seal(const fixture *f)
{
    size_t header = CC_XKEY_VERSION_LEN + CC_XKEY_NONCE_LEN;
    const uint8_t *nonce = f->sealed_request + CC_XKEY_VERSION_LEN;
    size_t box_len = f->sealed_request_len - header;
    uint8_t *plain = checked(malloc(box_len), "malloc");
    if (crypto_box_open_easy_afternm(plain, f->sealed_request + header, box_len, nonce,
                                     f->shared_key) != 0)
        die("baseline box did not open", NULL);

    size_t response_len = strlen(f->response);
    uint8_t response_nonce[crypto_box_NONCEBYTES];
    randombytes_buf(response_nonce, sizeof(response_nonce));
    uint8_t *sealed = checked(malloc(response_len + crypto_box_MACBYTES), "malloc");
    crypto_box_easy_afternm(sealed, (const uint8_t *)f->response, response_len, response_nonce,
                            f->shared_key);
    free(sealed);
    free(plain);
}

static void op_crypto_allow(const fixture *f)
{
    verify_request_signature(f);
    verify_chain(f);
    sign(f, f->user_jwt_signing_input);
    sign(f, f->response_signing_input);
}

static void op_crypto_deny(const fixture *f)
{
    verify_request_signature(f);
    verify_chain(f);
    sign(f, f->response_signing_input);
}

static void op_crypto_allow_sealed(const fixture *f)
{
    box_open_and_seal(f);
    return op_crypto_allow(f);
}

static void op_crypto_deny_sealed(const fixture *f)
{
    box_open_and_seal(f);
    return op_crypto_deny(f);
}

/* Parses the first count PEM strings of the chain. */
static void parse_pems(const fixture *f, int count)
{
    for (int i = 0; i < count; i++) {
        BIO *bio = checked(BIO_new_mem_buf(f->chain_pem[i], -1), "BIO_new_mem_buf");
        X509 *cert = checked(PEM_read_bio_X509(bio, NULL, NULL, NULL), "PEM_read_bio_X509");
        X509_free(cert);
        BIO_free(bio);
    }
}

static void op_parse_chain(const fixture *f)
{
    parse_pems(f, CHAIN_LEN);
}

/* What parsing would cost if the intermediate and root were not parsed again
 * for every request. */
static void op_parse_leaf(const fixture *f)
{
    parse_pems(f, 1);
}

static void op_step_request_decode(const fixture *f)
{
    cc_auth_request decoded;
    cc_err err = {0};
    check_status(cc_auth_request_decode((const char *)f->allow_plain.payload,
                                        f->allow_plain.payload_len, f->now, &decoded, &err),
                 &err, "decoding the request");
    cc_auth_request_free(&decoded);
}

static void op_step_chain_parse(const fixture *f)
{
    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    check_status(
        cc_x509svid_parse_pem_array((const char *const *)f->chain_pem, CHAIN_LEN, &chain, &err),
        &err, "parsing the chain");
    cc_x509svid_chain_free(chain);
}

static void op_step_svid_verify(const fixture *f)
{
    cc_x509svid_info info;
    cc_err err = {0};
    check_status(cc_x509svid_verify(f->chain, f->bundles, f->now, &info, &err), &err,
                 "verifying the SVID");
}

/* Encodes and signs a response that carries a user JWT of the real size. */
static void op_step_response_encode(const fixture *f)
{
    char server_public[CC_NKEY_PUBLIC_LEN + 1];
    char user_public[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&f->server, server_public);
    cc_nkey_public_string(&f->user, user_public);
    cc_auth_response resp = {.user_nkey = user_public,
                             .server_id = server_public,
                             .user_jwt = f->user_jwt_signing_input};
    char *token = NULL;
    cc_err err = {0};
    check_status(cc_auth_response_encode(&resp, &f->issuer, f->now, &token, &err), &err,
                 "encoding the response");
    free(token);
}

static void op_allow_plain(const fixture *f)
{
    run_decision(&f->allow_plain);
}

static void op_deny_plain(const fixture *f)
{
    run_decision(&f->deny_plain);
}

static void op_allow_sealed(const fixture *f)
{
    run_decision(&f->allow_sealed);
}

static void op_allow_sealed_uncached(const fixture *f)
{
    run_decision(&f->allow_sealed_uncached);
}

static void op_deny_sealed(const fixture *f)
{
    run_decision(&f->deny_sealed);
}

/* ---- timing -------------------------------------------------------------- */

/* How a case is reported: as a cost ratio to a baseline, or as a share of a
 * whole decision. */
typedef enum compare_kind { COMPARE_NONE, COMPARE_COST, COMPARE_SHARE } compare_kind;

typedef struct bench_case {
    const char *name;
    void (*op)(const fixture *f);
    compare_kind compare;
    int reference;       /* index of the case compared with */
    double rate[ROUNDS]; /* calls per CPU second in each measured round */
} bench_case;

enum {
    CASE_CRYPTO_ALLOW,
    CASE_CRYPTO_DENY,
    CASE_CRYPTO_ALLOW_SEALED,
    CASE_CRYPTO_DENY_SEALED,
    CASE_PARSE_CHAIN,
    CASE_PARSE_LEAF,
    CASE_ALLOW_PLAIN
};

static bench_case cases[] = {
    [CASE_CRYPTO_ALLOW] = {"crypto allow", op_crypto_allow, COMPARE_NONE, 0, {0}},
    [CASE_CRYPTO_DENY] = {"crypto deny", op_crypto_deny, COMPARE_NONE, 0, {0}},
    [CASE_CRYPTO_ALLOW_SEALED] =
        {"crypto allow sealed", op_crypto_allow_sealed, COMPARE_NONE, 0, {0}},
    [CASE_CRYPTO_DENY_SEALED] = {"crypto deny sealed", op_crypto_deny_sealed, COMPARE_NONE, 0, {0}},
    [CASE_PARSE_CHAIN] =
        {"parse chain (3 PEM)", op_parse_chain, COMPARE_COST, CASE_CRYPTO_ALLOW, {0}},
    [CASE_PARSE_LEAF] =
        {"parse leaf only (1 PEM)", op_parse_leaf, COMPARE_COST, CASE_CRYPTO_ALLOW, {0}},
    [CASE_ALLOW_PLAIN] =
        {"decision allow plain", op_allow_plain, COMPARE_COST, CASE_CRYPTO_ALLOW, {0}},
    {"decision deny plain", op_deny_plain, COMPARE_COST, CASE_CRYPTO_DENY, {0}},
    {"decision allow sealed", op_allow_sealed, COMPARE_COST, CASE_CRYPTO_ALLOW_SEALED, {0}},
    {"decision deny sealed", op_deny_sealed, COMPARE_COST, CASE_CRYPTO_DENY_SEALED, {0}},
    {"decision allow sealed, no xkey cache",
     op_allow_sealed_uncached,
     COMPARE_COST,
     CASE_CRYPTO_ALLOW_SEALED,
     {0}},
    {"step request decode", op_step_request_decode, COMPARE_SHARE, CASE_ALLOW_PLAIN, {0}},
    {"step chain parse", op_step_chain_parse, COMPARE_SHARE, CASE_ALLOW_PLAIN, {0}},
    {"step SVID verify", op_step_svid_verify, COMPARE_SHARE, CASE_ALLOW_PLAIN, {0}},
    {"step response encode", op_step_response_encode, COMPARE_SHARE, CASE_ALLOW_PLAIN, {0}},
};

#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls op until ROUND_SECONDS pass or MAX_ITERATIONS_PER_ROUND calls are
 * done, and returns the calls per second. */
static double time_round(const fixture *f, void (*op)(const fixture *f))
{
    double start = cpu_seconds();
    double elapsed = 0;
    long calls = 0;
    while (elapsed < ROUND_SECONDS && calls < MAX_ITERATIONS_PER_ROUND) {
        op(f);
        calls++;
        elapsed = cpu_seconds() - start;
    }
    return (double)calls / elapsed;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *values, size_t count)
{
    double sorted[ROUNDS];
    memcpy(sorted, values, count * sizeof(double));
    qsort(sorted, count, sizeof(double), compare_doubles);
    return count % 2 == 1 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2;
}

/* Returns the median over rounds of (time per call of c) / (time per call of
 * its reference case), pairing the rates measured in the same round. */
static double median_cost_ratio(const bench_case *c)
{
    double ratios[ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        ratios[r] = cases[c->reference].rate[r] / c->rate[r];
    return median(ratios, ROUNDS);
}

static void print_report(const fixture *f)
{
    printf("decision_bench: %d rounds of %.2f CPU s per case, medians\n", ROUNDS, ROUND_SECONDS);
    printf("request %zu bytes plain, %zu sealed; response %zu bytes\n", f->allow_plain.payload_len,
           f->allow_sealed.payload_len, strlen(f->response));
    printf("%-38s %9s %9s  %s\n", "case", "calls/s", "us/call", "compared with");
    for (size_t i = 0; i < CASE_COUNT; i++) {
        const bench_case *c = &cases[i];
        double rate = median(c->rate, ROUNDS);
        printf("%-38s %9.0f %9.1f", c->name, rate, 1e6 / rate);
        if (c->compare == COMPARE_COST)
            printf("  costs %.2fx %s", median_cost_ratio(c), cases[c->reference].name);
        else if (c->compare == COMPARE_SHARE)
            printf("  %.0f%% of %s", 100 * median_cost_ratio(c), cases[c->reference].name);
        printf("\n");
    }
}

int main(void)
{
    fixture f;
    fixture_init(&f);

    for (int w = 0; w < WARMUP_ROUNDS; w++) {
        for (size_t i = 0; i < CASE_COUNT; i++)
            time_round(&f, cases[i].op);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < CASE_COUNT; i++)
            cases[i].rate[r] = time_round(&f, cases[i].op);
    }

    print_report(&f);
    fixture_free(&f);
    return 0;
}
