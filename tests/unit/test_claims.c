#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "citadel/claims.h"
#include "citadel/codec.h"
#include "citadel/natsjwt.h"
#include "citadel/nkey.h"

#define NOW 1760000000

#define LEAF_PEM "-----BEGIN CERTIFICATE-----\nMIIBleaf\n-----END CERTIFICATE-----\n"
#define ROOT_PEM "-----BEGIN CERTIFICATE-----\nMIIBroot\n-----END CERTIFICATE-----\n"

typedef struct keys {
    cc_nkey server;
    cc_nkey account;
    cc_nkey user;
    char server_public[CC_NKEY_PUBLIC_LEN + 1];
    char account_public[CC_NKEY_PUBLIC_LEN + 1];
    char user_public[CC_NKEY_PUBLIC_LEN + 1];
} keys;

static keys make_keys(void)
{
    keys k;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_SERVER, &k.server, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &k.account, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_USER, &k.user, NULL), CC_OK);
    cc_nkey_public_string(&k.server, k.server_public);
    cc_nkey_public_string(&k.account, k.account_public);
    cc_nkey_public_string(&k.user, k.user_public);
    return k;
}

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

/* Builds the claims of a request as nats-server 2.10.27 sends them for a TLS
 * client with a verified chain and user/password credentials. */
static json_t *request_claims(const keys *k)
{
    json_t *claims = json_pack(
        "{s:s, s:I, s:s, s:{"
        "s:{s:s, s:s, s:s, s:s, s:s, s:[s], s:s},"
        "s:s,"
        "s:{s:s, s:I, s:s, s:s, s:[s], s:s, s:s, s:s, s:s, s:s},"
        "s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i},"
        "s:{s:s, s:s, s:[s], s:[[s, s]]},"
        "s:s, s:s, s:i}}",
        "aud", CC_AUTH_REQUEST_AUDIENCE, "exp", (json_int_t)(NOW + 2), "sub", k->account_public,
        "nats",
        /* server_id */
        "server_id", "name", "hub-1", "host", "0.0.0.0", "id", k->server_public, "version",
        "2.10.27", "cluster", "c1", "tags", "az:1", "xkey", "XSERVERXKEY",
        /* user_nkey */
        "user_nkey", k->user_public,
        /* client_info */
        "client_info", "host", "127.0.0.1", "id", (json_int_t)7, "user", "bob", "name", "app",
        "tags", "t1", "name_tag", "nt", "kind", "Client", "type", "nats", "mqtt_id", "mq", "nonce",
        "abc123",
        /* connect_opts */
        "connect_opts", "jwt", "eyJjwt", "nkey", "UNKEY", "sig", "c2ln", "auth_token", "tok",
        "user", "bob", "pass", "pw", "name", "app", "lang", "C", "version", "3.4.1", "protocol", 1,
        /* client_tls */
        "client_tls", "version", "1.3", "cipher", "TLS_AES_128_GCM_SHA256", "certs", LEAF_PEM,
        "verified_chains", LEAF_PEM, ROOT_PEM,
        /* rest */
        "request_nonce", "rn", "type", "authorization_request", "version", 2);
    cr_assert_not_null(claims);
    return claims;
}

static char *sign_claims(const json_t *claims, const cc_nkey *signer)
{
    char *token = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_jwt_encode(claims, signer, NOW, &token, &err), CC_OK, "%s", err.message);
    return token;
}

/* ---- authorization request ------------------------------------------- */

Test(auth_request, decodes_every_field)
{
    keys k = make_keys();
    json_t *claims = request_claims(&k);
    char *token = sign_claims(claims, &k.server);
    cc_auth_request req;
    cc_err err = {0};

    cr_assert_eq(cc_auth_request_decode(token, strlen(token), NOW, &req, &err), CC_OK, "%s",
                 err.message);
    cr_assert_str_eq(req.jwt.sub, k.account_public);
    cr_assert_str_eq(req.jwt.iss, k.server_public);
    cr_assert_eq(req.jwt.exp, NOW + 2);

    cr_assert_str_eq(req.server_id.name, "hub-1");
    cr_assert_str_eq(req.server_id.host, "0.0.0.0");
    cr_assert_str_eq(req.server_id.id, k.server_public);
    cr_assert_str_eq(req.server_id.version, "2.10.27");
    cr_assert_str_eq(req.server_id.cluster, "c1");
    cr_assert_eq(req.server_id.tags.count, 1);
    cr_assert_str_eq(req.server_id.tags.items[0], "az:1");
    cr_assert_str_eq(req.server_id.xkey, "XSERVERXKEY");

    cr_assert_str_eq(req.user_nkey, k.user_public);

    cr_assert_str_eq(req.client_info.host, "127.0.0.1");
    cr_assert_eq(req.client_info.id, 7);
    cr_assert_str_eq(req.client_info.user, "bob");
    cr_assert_str_eq(req.client_info.name, "app");
    cr_assert_eq(req.client_info.tags.count, 1);
    cr_assert_str_eq(req.client_info.tags.items[0], "t1");
    cr_assert_str_eq(req.client_info.name_tag, "nt");
    cr_assert_str_eq(req.client_info.kind, "Client");
    cr_assert_str_eq(req.client_info.type, "nats");
    cr_assert_str_eq(req.client_info.mqtt_id, "mq");
    cr_assert_str_eq(req.client_info.nonce, "abc123");

    cr_assert_str_eq(req.connect_opts.jwt, "eyJjwt");
    cr_assert_str_eq(req.connect_opts.nkey, "UNKEY");
    cr_assert_str_eq(req.connect_opts.sig, "c2ln");
    cr_assert_str_eq(req.connect_opts.auth_token, "tok");
    cr_assert_str_eq(req.connect_opts.user, "bob");
    cr_assert_str_eq(req.connect_opts.pass, "pw");
    cr_assert_str_eq(req.connect_opts.name, "app");
    cr_assert_str_eq(req.connect_opts.lang, "C");
    cr_assert_str_eq(req.connect_opts.version, "3.4.1");
    cr_assert_eq(req.connect_opts.protocol, 1);

    cr_assert(req.client_tls.present);
    cr_assert_str_eq(req.client_tls.version, "1.3");
    cr_assert_str_eq(req.client_tls.cipher, "TLS_AES_128_GCM_SHA256");
    cr_assert_eq(req.client_tls.certs.count, 1);
    cr_assert_str_eq(req.client_tls.certs.items[0], LEAF_PEM);
    cr_assert_eq(req.client_tls.verified_chain_count, 1);
    cr_assert_eq(req.client_tls.verified_chains[0].count, 2);
    cr_assert_str_eq(req.client_tls.verified_chains[0].items[0], LEAF_PEM);
    cr_assert_str_eq(req.client_tls.verified_chains[0].items[1], ROOT_PEM);

    cr_assert_str_eq(req.request_nonce, "rn");

    cc_auth_request_free(&req);
    cr_assert_null(req.jwt.token);
    free(token);
    json_decref(claims);
}

Test(auth_request, absent_fields_are_empty)
{
    keys k = make_keys();
    json_t *claims =
        json_pack("{s:s, s:I, s:{s:{s:s}, s:s, s:s, s:i}}", "aud", CC_AUTH_REQUEST_AUDIENCE, "exp",
                  (json_int_t)(NOW + 2), "nats", "server_id", "id", k.server_public, "user_nkey",
                  k.user_public, "type", "authorization_request", "version", 2);
    char *token = sign_claims(claims, &k.server);
    cc_auth_request req;
    cc_err err = {0};

    cr_assert_eq(cc_auth_request_decode(token, strlen(token), NOW, &req, &err), CC_OK, "%s",
                 err.message);
    cr_assert_str_eq(req.server_id.name, "");
    cr_assert_str_eq(req.server_id.xkey, "");
    cr_assert_eq(req.server_id.tags.count, 0);
    cr_assert_str_eq(req.client_info.host, "");
    cr_assert_eq(req.client_info.id, 0);
    cr_assert_str_eq(req.connect_opts.pass, "");
    cr_assert_not(req.client_tls.present);
    cr_assert_str_eq(req.client_tls.version, "");
    cr_assert_eq(req.client_tls.verified_chain_count, 0);
    cr_assert_str_eq(req.request_nonce, "");
    cc_auth_request_free(&req);
    free(token);
    json_decref(claims);
}

/* Changes one part of a valid request, signs it and expects a rejection. */
static void expect_request_rejected(const char *change, const char *message)
{
    keys k = make_keys();
    json_t *claims = request_claims(&k);
    json_t *nats = json_object_get(claims, "nats");
    const cc_nkey *signer = &k.server;
    int64_t now = NOW;

    if (strcmp(change, "aud") == 0)
        json_object_set_new(claims, "aud", json_string(k.server_public));
    else if (strcmp(change, "server id") == 0)
        json_object_set_new(json_object_get(nats, "server_id"), "id", json_string("NOTHER"));
    else if (strcmp(change, "account signer") == 0)
        signer = &k.account;
    else if (strcmp(change, "user_nkey") == 0)
        json_object_set_new(nats, "user_nkey", json_string(k.account_public));
    else if (strcmp(change, "expired") == 0)
        now = NOW + 3;
    else if (strcmp(change, "type") == 0)
        json_object_set_new(nats, "type", json_string("authorization_response"));
    else if (strcmp(change, "id type") == 0)
        json_object_set_new(json_object_get(nats, "client_info"), "id", json_string("7"));
    else if (strcmp(change, "negative id") == 0)
        json_object_set_new(json_object_get(nats, "client_info"), "id", json_integer(-1));
    else if (strcmp(change, "chains") == 0)
        json_object_set_new(json_object_get(nats, "client_tls"), "verified_chains",
                            json_pack("[s]", LEAF_PEM));
    else if (strcmp(change, "no server_id") == 0)
        json_object_del(nats, "server_id");
    else if (strcmp(change, "pass type") == 0)
        json_object_set_new(json_object_get(nats, "connect_opts"), "pass", json_integer(1));
    else
        cr_assert_fail("unknown change %s", change);

    char *token = sign_claims(claims, signer);
    cc_auth_request req;
    cc_err err = {0};
    cr_assert_neq(cc_auth_request_decode(token, strlen(token), now, &req, &err), CC_OK, "%s",
                  change);
    cr_assert(contains(err.message, message), "%s: %s", change, err.message);
    cr_assert(contains(err.message, "invalid authorization request"), "%s", err.message);
    cr_assert_null(req.jwt.token);
    free(token);
    json_decref(claims);
}

Test(auth_request, rejects_wrong_audience)
{
    expect_request_rejected("aud", "aud is");
}
Test(auth_request, rejects_other_server_id)
{
    expect_request_rejected("server id", "differs from nats.server_id.id");
}
Test(auth_request, rejects_account_issuer)
{
    expect_request_rejected("account signer", "expected a server key");
}
Test(auth_request, rejects_non_user_nkey)
{
    expect_request_rejected("user_nkey", "nats.user_nkey");
}
Test(auth_request, rejects_expired)
{
    expect_request_rejected("expired", "expired");
}
Test(auth_request, rejects_wrong_type)
{
    expect_request_rejected("type", "nats.type");
}
Test(auth_request, rejects_string_client_id)
{
    expect_request_rejected("id type", "client_info.id must be an integer");
}
Test(auth_request, rejects_negative_client_id)
{
    expect_request_rejected("negative id", "is negative");
}
Test(auth_request, rejects_flat_verified_chains)
{
    expect_request_rejected("chains", "verified_chains[0] must be an array");
}
Test(auth_request, rejects_missing_server_id)
{
    expect_request_rejected("no server_id", "no nats.server_id");
}
Test(auth_request, rejects_non_string_field)
{
    expect_request_rejected("pass type", "connect_opts.pass must be a string");
}

Test(auth_request, rejects_bad_signature)
{
    keys k = make_keys();
    json_t *claims = request_claims(&k);
    char *token = sign_claims(claims, &k.server);
    size_t at = strlen(token) - 2;
    token[at] = token[at] == 'A' ? 'B' : 'A';
    cc_auth_request req;

    cr_assert_eq(cc_auth_request_decode(token, strlen(token), NOW, &req, NULL), CC_ERR_CRYPTO);
    free(token);
    json_decref(claims);
}

/* ---- authorization response ------------------------------------------ */

Test(auth_response, round_trip_with_jwt)
{
    keys k = make_keys();
    cc_auth_response resp = {.user_nkey = k.user_public,
                             .server_id = k.server_public,
                             .user_jwt = "eyJuser",
                             .issuer_account = k.account_public,
                             .exp = NOW + 5};
    char *token = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_auth_response_encode(&resp, &k.account, NOW, &token, &err), CC_OK, "%s",
                 err.message);

    cc_auth_response decoded;
    cr_assert_eq(cc_auth_response_decode(token, strlen(token), NOW, &decoded, &err), CC_OK, "%s",
                 err.message);
    cr_assert_str_eq(decoded.user_nkey, k.user_public);
    cr_assert_str_eq(decoded.server_id, k.server_public);
    cr_assert_str_eq(decoded.user_jwt, "eyJuser");
    cr_assert_str_eq(decoded.error, "");
    cr_assert_str_eq(decoded.issuer_account, k.account_public);
    cr_assert_eq(decoded.exp, NOW + 5);
    cr_assert_str_eq(decoded.jwt.iss, k.account_public);
    cr_assert_str_eq(decoded.jwt.type, "authorization_response");
    cr_assert_eq(decoded.jwt.iat, NOW);
    cc_auth_response_free(&decoded);
    free(token);
}

Test(auth_response, nats_key_order)
{
    keys k = make_keys();
    cc_auth_response resp = {.user_nkey = k.user_public,
                             .server_id = k.server_public,
                             .error = "denied",
                             .issuer_account = k.account_public};
    char *token = NULL;
    cr_assert_eq(cc_auth_response_encode(&resp, &k.account, NOW, &token, NULL), CC_OK);
    cc_jwt jwt;
    cr_assert_eq(cc_jwt_parse(token, strlen(token), &jwt, NULL), CC_OK);

    char *nats = json_dumps(jwt.nats, JSON_COMPACT);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "{\"error\":\"denied\",\"issuer_account\":\"%s\",\"type\":\"authorization_response\","
             "\"version\":2}",
             k.account_public);
    cr_assert_str_eq(nats, expected);
    cr_assert_str_eq(jwt.aud, k.server_public);
    cr_assert_str_eq(jwt.sub, k.user_public);
    cr_assert_eq(jwt.exp, 0);
    free(nats);
    cc_jwt_free(&jwt);
    free(token);
}

Test(auth_response, rejects_bad_input)
{
    keys k = make_keys();
    static const char *messages[] = {"both",      "neither",        "user_nkey",
                                     "server id", "issuer_account", "signed by an account key"};
    cc_auth_response cases[6];
    for (size_t i = 0; i < 6; i++)
        cases[i] = (cc_auth_response){
            .user_nkey = k.user_public, .server_id = k.server_public, .user_jwt = "eyJuser"};
    cases[0].error = "also an error";
    cases[1].user_jwt = "";
    cases[2].user_nkey = k.account_public;
    cases[3].server_id = "hub-1";
    cases[4].issuer_account = k.user_public;

    for (size_t i = 0; i < 6; i++) {
        char *token = NULL;
        cc_err err = {0};
        const cc_nkey *signer = i == 5 ? &k.server : &k.account;
        cr_assert_eq(cc_auth_response_encode(&cases[i], signer, NOW, &token, &err), CC_ERR_INVALID,
                     "case %zu", i);
        cr_assert(contains(err.message, messages[i]), "case %zu: %s", i, err.message);
        cr_assert_null(token);
    }
}

Test(auth_response, decode_rejects_both_fields)
{
    keys k = make_keys();
    json_t *claims = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i}}", "aud", k.server_public, "sub",
                               k.user_public, "nats", "jwt", "eyJ", "error", "no", "type",
                               "authorization_response", "version", 2);
    char *token = sign_claims(claims, &k.account);
    cc_auth_response resp;
    cc_err err = {0};

    cr_assert_eq(cc_auth_response_decode(token, strlen(token), NOW, &resp, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "exactly one"), "%s", err.message);
    free(token);
    json_decref(claims);
}

Test(auth_response, decode_rejects_server_signer)
{
    keys k = make_keys();
    json_t *claims =
        json_pack("{s:s, s:s, s:{s:s, s:s, s:i}}", "aud", k.server_public, "sub", k.user_public,
                  "nats", "error", "no", "type", "authorization_response", "version", 2);
    char *token = sign_claims(claims, &k.server);
    cc_auth_response resp;
    cc_err err = {0};

    cr_assert_eq(cc_auth_response_decode(token, strlen(token), NOW, &resp, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "expected an account key"), "%s", err.message);
    free(token);
    json_decref(claims);
}

/* ---- user claims ----------------------------------------------------- */

static char *encode_user(const cc_user_claims *claims, const cc_nkey *signer)
{
    char *token = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_user_claims_encode(claims, signer, NOW, &token, &err), CC_OK, "%s",
                 err.message);
    return token;
}

/* Returns nats.<key> of token as compact JSON (malloc'd). */
static char *nats_field(const char *token, const char *key)
{
    cc_jwt jwt;
    cr_assert_eq(cc_jwt_parse(token, strlen(token), &jwt, NULL), CC_OK);
    json_t *value = json_object_get(jwt.nats, key);
    char *text = value != NULL ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("");
    cc_jwt_free(&jwt);
    return text;
}

Test(user_claims, round_trip_every_field)
{
    keys k = make_keys();
    const char *pub_allow[] = {"bob.>", "$JS.API.>"};
    const char *pub_deny[] = {"bob.secret"};
    const char *sub_allow[] = {"bob.>", "_INBOX.>", "work.* workers"};
    const char *sub_deny[] = {"bob.private.>"};
    const char *src[] = {"10.0.0.0/8", "fd00::/8"};
    cc_user_time_range times[] = {{"08:00:00", "18:00:00"}, {"22:00:00", "02:00:00"}};
    const char *types[] = {"STANDARD", "WEBSOCKET"};
    const char *tags[] = {"team:a"};

    cc_user_claims in;
    cc_user_claims_init(&in);
    in.subject = k.user_public;
    in.audience = "APP";
    in.name = "bob";
    in.exp = NOW + 3600;
    in.nbf = NOW - 60;
    in.pub = (cc_user_permission){{pub_allow, 2}, {pub_deny, 1}};
    in.sub = (cc_user_permission){{sub_allow, 3}, {sub_deny, 1}};
    in.has_resp = true;
    in.resp_max = 1;
    in.resp_ttl_ns = 5000000000LL;
    in.src = (cc_claims_strings){src, 2};
    in.times = times;
    in.time_count = 2;
    in.times_location = "Europe/Berlin";
    in.subs = 100;
    in.data = 1 << 20;
    in.payload = 4096;
    in.bearer_token = true;
    in.allowed_connection_types = (cc_claims_strings){types, 2};
    in.tags = (cc_claims_strings){tags, 1};
    in.issuer_account = k.account_public;
    char *token = encode_user(&in, &k.account);

    cc_user_claims out;
    cc_err err = {0};
    cr_assert_eq(cc_user_claims_decode(token, strlen(token), NOW, &out, &err), CC_OK, "%s",
                 err.message);
    cr_assert_str_eq(out.subject, k.user_public);
    cr_assert_str_eq(out.audience, "APP");
    cr_assert_str_eq(out.name, "bob");
    cr_assert_eq(out.exp, NOW + 3600);
    cr_assert_eq(out.nbf, NOW - 60);
    cr_assert_eq(out.pub.allow.count, 2);
    cr_assert_str_eq(out.pub.allow.items[1], "$JS.API.>");
    cr_assert_eq(out.pub.deny.count, 1);
    cr_assert_str_eq(out.pub.deny.items[0], "bob.secret");
    cr_assert_eq(out.sub.allow.count, 3);
    cr_assert_str_eq(out.sub.allow.items[2], "work.* workers");
    cr_assert_eq(out.sub.deny.count, 1);
    cr_assert(out.has_resp);
    cr_assert_eq(out.resp_max, 1);
    cr_assert_eq(out.resp_ttl_ns, 5000000000LL);
    cr_assert_eq(out.src.count, 2);
    cr_assert_str_eq(out.src.items[1], "fd00::/8");
    cr_assert_eq(out.time_count, 2);
    cr_assert_str_eq(out.times[1].start, "22:00:00");
    cr_assert_str_eq(out.times[1].end, "02:00:00");
    cr_assert_str_eq(out.times_location, "Europe/Berlin");
    cr_assert_eq(out.subs, 100);
    cr_assert_eq(out.data, 1 << 20);
    cr_assert_eq(out.payload, 4096);
    cr_assert(out.bearer_token);
    cr_assert_eq(out.allowed_connection_types.count, 2);
    cr_assert_str_eq(out.allowed_connection_types.items[1], "WEBSOCKET");
    cr_assert_eq(out.tags.count, 1);
    cr_assert_str_eq(out.tags.items[0], "team:a");
    cr_assert_str_eq(out.issuer_account, k.account_public);
    cr_assert_str_eq(out.jwt.iss, k.account_public);
    cc_user_claims_free(&out);
    cr_assert_null(out.jwt.token);
    free(token);
}

Test(user_claims, nats_key_order)
{
    keys k = make_keys();
    const char *allow[] = {"a.>"};
    cc_user_claims in;
    cc_user_claims_init(&in);
    in.subject = k.user_public;
    in.audience = "APP";
    in.pub.allow = (cc_claims_strings){allow, 1};
    in.sub.allow = (cc_claims_strings){allow, 1};
    in.has_resp = true;
    char *token = encode_user(&in, &k.account);

    cc_jwt jwt;
    cr_assert_eq(cc_jwt_parse(token, strlen(token), &jwt, NULL), CC_OK);
    char *nats = json_dumps(jwt.nats, JSON_COMPACT);
    cr_assert_str_eq(nats, "{\"pub\":{\"allow\":[\"a.>\"]},\"sub\":{\"allow\":[\"a.>\"]},"
                           "\"resp\":{\"max\":0,\"ttl\":0},\"subs\":-1,\"data\":-1,"
                           "\"payload\":-1,\"type\":\"user\",\"version\":2}");
    free(nats);
    cc_jwt_free(&jwt);
    free(token);
}

Test(user_claims, empty_side_denies_all)
{
    keys k = make_keys();
    const char *deny[] = {"x.y"};
    cc_user_claims in;
    cc_user_claims_init(&in);
    in.subject = k.user_public;
    in.audience = "APP";
    /* pub: no entries at all; sub: deny entries only. */
    in.sub.deny = (cc_claims_strings){deny, 1};
    char *token = encode_user(&in, &k.account);

    char *pub = nats_field(token, "pub");
    char *sub = nats_field(token, "sub");
    cr_assert_str_eq(pub, "{\"deny\":[\">\"]}");
    cr_assert_str_eq(sub, "{\"deny\":[\">\"]}");
    free(pub);
    free(sub);
    free(token);
}

Test(user_claims, zero_limits_omitted)
{
    keys k = make_keys();
    cc_user_claims in;
    cc_user_claims_init(&in);
    in.subject = k.user_public;
    in.audience = "APP";
    in.subs = 0;
    in.data = 0;
    in.payload = 0;
    char *token = encode_user(&in, &k.account);

    char *subs = nats_field(token, "subs");
    char *resp = nats_field(token, "resp");
    cr_assert_str_eq(subs, "");
    cr_assert_str_eq(resp, "");
    free(subs);
    free(resp);
    free(token);
}

Test(user_claims, validate_subject_table)
{
    static const struct {
        const char *subject;
        bool allow_queue;
        bool valid;
        const char *message;
    } cases[] = {
        {"foo", false, true, NULL},
        {"foo.bar.>", false, true, NULL},
        {"foo.*.bar", false, true, NULL},
        {">", false, true, NULL},
        {"$JS.API.>", false, true, NULL},
        {"foo>.bar", false, true, NULL}, /* a multi-character token is a literal */
        {"foo queue", true, true, NULL},
        {"foo.* q.1", true, true, NULL},
        {"", false, false, "empty"},
        {"foo bar", false, false, "only in sub"},
        {"foo\tbar", false, false, "whitespace"},
        {"foo\nbar", true, false, "whitespace"},
        {".foo", false, false, "leading or trailing dot"},
        {"foo.", false, false, "leading or trailing dot"},
        {"foo..bar", false, false, "doubled dot"},
        {"foo.>.bar", false, false, "\">\" before its last token"},
        {"foo ", true, false, "invalid queue group"},
        {"foo a b", true, false, "invalid queue group"},
        {" foo", true, false, "empty subject"},
        {"foo..bar q", true, false, "doubled dot"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cc_err err = {0};
        cc_status status = cc_claims_validate_subject(cases[i].subject, cases[i].allow_queue, &err);
        if (cases[i].valid) {
            cr_assert_eq(status, CC_OK, "\"%s\": %s", cases[i].subject, err.message);
        } else {
            cr_assert_eq(status, CC_ERR_INVALID, "\"%s\" was accepted", cases[i].subject);
            cr_assert(contains(err.message, cases[i].message), "\"%s\": %s", cases[i].subject,
                      err.message);
        }
    }
}

Test(user_claims, encode_rejects_bad_input)
{
    keys k = make_keys();
    const char *queue[] = {"foo q"};
    const char *doubled[] = {"a..b"};
    const char *cidr[] = {"10.0.0.1"};
    const char *bad_type[] = {"IN_PROCESS"};
    cc_user_time_range bad_time[] = {{"8:00:00", "18:00:00"}};
    static const char *messages[] = {
        "pub.allow[0]", "sub.deny[0]", "subject", "audience is empty", "CIDR",
        "HH:MM:SS",     "IN_PROCESS",  "IANA",    "user limit subs",   "issuer_account",
        "account key",
    };
    const size_t count = sizeof(messages) / sizeof(messages[0]);

    for (size_t i = 0; i < count; i++) {
        cc_user_claims in;
        cc_user_claims_init(&in);
        in.subject = k.user_public;
        in.audience = "APP";
        const cc_nkey *signer = &k.account;
        switch (i) {
        case 0:
            in.pub.allow = (cc_claims_strings){queue, 1};
            break;
        case 1:
            in.sub.deny = (cc_claims_strings){doubled, 1};
            break;
        case 2:
            in.subject = k.account_public;
            break;
        case 3:
            in.audience = "";
            break;
        case 4:
            in.src = (cc_claims_strings){cidr, 1};
            break;
        case 5:
            in.times = bad_time, in.time_count = 1;
            break;
        case 6:
            in.allowed_connection_types = (cc_claims_strings){bad_type, 1};
            break;
        case 7:
            in.times_location = "Europe/../etc";
            break;
        case 8:
            in.subs = -2;
            break;
        case 9:
            in.issuer_account = k.user_public;
            break;
        case 10:
            signer = &k.server;
            break;
        }
        char *token = NULL;
        cc_err err = {0};
        cr_assert_eq(cc_user_claims_encode(&in, signer, NOW, &token, &err), CC_ERR_INVALID,
                     "case %zu", i);
        cr_assert(contains(err.message, messages[i]), "case %zu: %s", i, err.message);
        cr_assert_null(token);
    }
}

Test(user_claims, decode_rejects_wrong_type)
{
    keys k = make_keys();
    json_t *claims = json_pack("{s:s, s:{s:s, s:i}}", "sub", k.user_public, "nats", "type",
                               "account", "version", 2);
    char *token = sign_claims(claims, &k.account);
    cc_user_claims out;
    cc_err err = {0};

    cr_assert_eq(cc_user_claims_decode(token, strlen(token), NOW, &out, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "expected \"user\""), "%s", err.message);
    cr_assert_null(out.jwt.token);
    free(token);
    json_decref(claims);
}

Test(user_claims, decode_rejects_expired)
{
    keys k = make_keys();
    cc_user_claims in;
    cc_user_claims_init(&in);
    in.subject = k.user_public;
    in.audience = "APP";
    in.exp = NOW + 1;
    char *token = encode_user(&in, &k.account);
    cc_user_claims out;

    cr_assert_eq(cc_user_claims_decode(token, strlen(token), NOW + 2, &out, NULL), CC_ERR_EXPIRED);
    free(token);
}

Test(user_claims, free_ignores_caller_struct)
{
    const char *allow[] = {"a"};
    cc_user_claims in;
    cc_user_claims_init(&in);
    in.pub.allow = (cc_claims_strings){allow, 1};

    cc_user_claims_free(&in);
    cr_assert_eq(in.pub.allow.items, allow);
}
