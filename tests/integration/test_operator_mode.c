/* Operator-mode nats-server trusting JWTs made by our encoder: an operator,
 * a system account and an app account, loaded through the memory resolver.
 * A nats.c client then connects with a user JWT and seed from our code. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../support/natsserver.h"
#include "citadel/claims.h"
#include "citadel/natsjwt.h"
#include "citadel/nkey.h"

typedef struct trust {
    cc_nkey operator_key;
    cc_nkey system_key;
    cc_nkey app_key;
    cc_nkey user_key;
    char system_public[CC_NKEY_PUBLIC_LEN + 1];
    char app_public[CC_NKEY_PUBLIC_LEN + 1];
    char user_public[CC_NKEY_PUBLIC_LEN + 1];
    char *operator_jwt;
    char *system_jwt;
    char *app_jwt;
    char *user_jwt;
} trust;

static char *encode(json_t *claims, const cc_nkey *signer)
{
    char *token = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_jwt_encode(claims, signer, (int64_t)time(NULL), &token, &err), CC_OK, "%s",
                 err.message);
    json_decref(claims);
    return token;
}

/* Account claims with every limit set to "unlimited": nats-server reads an
 * absent limit as 0, which for "conn" would allow no connections at all. */
static char *account_jwt(const cc_nkey *operator_key, const char *account_public, const char *name)
{
    json_t *claims = json_pack(
        "{s:s, s:s, s:{s:{s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:i}, s:s, s:i}}", "name", name, "sub",
        account_public, "nats", "limits", "subs", -1, "data", -1, "payload", -1, "imports", -1,
        "exports", -1, "wildcards", 1, "conn", -1, "leaf", -1, "type", "account", "version", 2);
    return encode(claims, operator_key);
}

static trust make_trust(void)
{
    trust t;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_OPERATOR, &t.operator_key, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &t.system_key, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &t.app_key, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_USER, &t.user_key, NULL), CC_OK);
    cc_nkey_public_string(&t.system_key, t.system_public);
    cc_nkey_public_string(&t.app_key, t.app_public);
    cc_nkey_public_string(&t.user_key, t.user_public);

    char operator_public[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&t.operator_key, operator_public);
    t.operator_jwt = encode(json_pack("{s:s, s:s, s:{s:s, s:s, s:i}}", "name", "test-operator",
                                      "sub", operator_public, "nats", "system_account",
                                      t.system_public, "type", "operator", "version", 2),
                            &t.operator_key);
    t.system_jwt = account_jwt(&t.operator_key, t.system_public, "SYS");
    t.app_jwt = account_jwt(&t.operator_key, t.app_public, "APP");

    const char *allow[] = {"test.>", "_INBOX.>"};
    cc_user_claims user;
    cc_user_claims_init(&user);
    user.subject = t.user_public;
    user.audience = "APP";
    user.name = "alice";
    user.exp = (int64_t)time(NULL) + 600;
    user.pub.allow = (cc_claims_strings){allow, 1};
    user.sub.allow = (cc_claims_strings){allow, 2};
    cc_err err = {0};
    cr_assert_eq(cc_user_claims_encode(&user, &t.app_key, (int64_t)time(NULL), &t.user_jwt, &err),
                 CC_OK, "%s", err.message);
    return t;
}

static void free_trust(trust *t)
{
    free(t->operator_jwt);
    free(t->system_jwt);
    free(t->app_jwt);
    free(t->user_jwt);
    cc_nkey_wipe(&t->operator_key);
    cc_nkey_wipe(&t->system_key);
    cc_nkey_wipe(&t->app_key);
    cc_nkey_wipe(&t->user_key);
}

static cc_test_nats_server *start_operator_server(const trust *t)
{
    char config[16384];
    snprintf(config, sizeof(config),
             "operator: %s\n"
             "system_account: %s\n"
             "debug: true\n"
             "resolver: MEMORY\n"
             "resolver_preload: {\n"
             "  %s: %s\n"
             "  %s: %s\n"
             "}\n",
             t->operator_jwt, t->system_public, t->system_public, t->system_jwt, t->app_public,
             t->app_jwt);
    cc_err err = {0};
    cc_test_nats_server *srv = cc_test_nats_server_run(config, &err);
    cr_assert_not_null(srv, "%s", err.message);
    return srv;
}

typedef struct credentials {
    const char *jwt;
    const cc_nkey *key;
} credentials;

static natsStatus provide_jwt(char **user_jwt, char **error_text, void *closure)
{
    (void)error_text;
    const credentials *creds = closure;
    *user_jwt = strdup(creds->jwt);
    return *user_jwt != NULL ? NATS_OK : NATS_NO_MEMORY;
}

/* Signs the server's nonce with the user seed; nats.c frees *signature. */
static natsStatus sign_nonce(char **error_text, unsigned char **signature, int *signature_len,
                             const char *nonce, void *closure)
{
    (void)error_text;
    const credentials *creds = closure;
    *signature = malloc(CC_NKEY_SIGNATURE_LEN);
    if (*signature == NULL)
        return NATS_NO_MEMORY;
    if (cc_nkey_sign(creds->key, (const uint8_t *)nonce, strlen(nonce), *signature, NULL) != CC_OK)
        return NATS_ERR;
    *signature_len = CC_NKEY_SIGNATURE_LEN;
    return NATS_OK;
}

static natsStatus connect_with(const cc_test_nats_server *srv, credentials *creds,
                               natsConnection **conn)
{
    natsOptions *opts = NULL;
    cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(opts, cc_test_nats_server_url(srv)), NATS_OK);
    cr_assert_eq(natsOptions_SetAllowReconnect(opts, false), NATS_OK);
    cr_assert_eq(
        natsOptions_SetUserCredentialsCallbacks(opts, provide_jwt, creds, sign_nonce, creds),
        NATS_OK);
    natsStatus status = natsConnection_Connect(conn, opts);
    natsOptions_Destroy(opts);
    return status;
}

Test(operator_mode, user_jwt_connects_and_publishes)
{
    trust t = make_trust();
    cc_test_nats_server *srv = start_operator_server(&t);
    credentials creds = {t.user_jwt, &t.user_key};
    natsConnection *conn = NULL;

    cr_assert_eq(connect_with(srv, &creds, &conn), NATS_OK, "%s", nats_GetLastError(NULL));
    cr_assert_eq(natsConnection_PublishString(conn, "test.hello", "hi"), NATS_OK);
    cr_assert_eq(natsConnection_FlushTimeout(conn, 2000), NATS_OK);
    natsConnection_Destroy(conn);

    cc_test_nats_server_stop(srv);
    free_trust(&t);
}

Test(operator_mode, permissions_apply)
{
    trust t = make_trust();
    cc_test_nats_server *srv = start_operator_server(&t);
    credentials creds = {t.user_jwt, &t.user_key};
    natsConnection *conn = NULL;

    cr_assert_eq(connect_with(srv, &creds, &conn), NATS_OK, "%s", nats_GetLastError(NULL));
    /* pub allows only test.>, so the server replies with a permissions
     * violation that it also logs. */
    cr_assert_eq(natsConnection_PublishString(conn, "other.subject", "x"), NATS_OK);
    natsConnection_FlushTimeout(conn, 2000);
    cr_assert(cc_test_nats_server_wait_log(srv, "Publish Violation", 3000));
    natsConnection_Destroy(conn);

    cc_test_nats_server_stop(srv);
    free_trust(&t);
}

Test(operator_mode, flipped_signature_rejected)
{
    trust t = make_trust();
    cc_test_nats_server *srv = start_operator_server(&t);

    /* Flip one signature character; the second-to-last one carries only
     * signature bits, so the decoded signature really changes. */
    char *broken = strdup(t.user_jwt);
    size_t at = strlen(broken) - 2;
    broken[at] = broken[at] == 'A' ? 'B' : 'A';
    credentials creds = {broken, &t.user_key};
    natsConnection *conn = NULL;

    natsStatus status = connect_with(srv, &creds, &conn);
    cr_assert_neq(status, NATS_OK);
    cr_assert_null(conn);
    const char *last = nats_GetLastError(NULL);
    cr_assert(strstr(last, "Authorization Violation") != NULL, "%s", last);

    /* debug: true makes the server log why it rejected the JWT. */
    cr_assert(cc_test_nats_server_wait_log(srv, "claim failed V2 signature verification", 3000));

    free(broken);
    cc_test_nats_server_stop(srv);
    free_trust(&t);
}

Test(operator_mode, other_user_key_rejected)
{
    /* The right JWT but a nonce signed by another user key. */
    trust t = make_trust();
    cc_test_nats_server *srv = start_operator_server(&t);
    cc_nkey stranger;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_USER, &stranger, NULL), CC_OK);
    credentials creds = {t.user_jwt, &stranger};
    natsConnection *conn = NULL;

    cr_assert_neq(connect_with(srv, &creds, &conn), NATS_OK);
    cr_assert_null(conn);
    cr_assert(cc_test_nats_server_wait_log(srv, "Signature not verified", 3000));

    cc_test_nats_server_stop(srv);
    free_trust(&t);
}
