/* The claims codecs against real nats-server traffic: a test responder in
 * the callout account decodes the server's authorization request with
 * cc_auth_request_decode() and replies with a response and user JWT from our
 * builders. This checks the request parser against what the server really
 * sends and the builders against what it really accepts; the callout
 * service itself is tested elsewhere. */
#include <criterion/criterion.h>

#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../support/natsserver.h"
#include "citadel/claims.h"
#include "citadel/nkey.h"

typedef struct responder {
    cc_nkey issuer;
    const char *deny_reason; /* NULL to allow */
    pthread_mutex_t lock;
    int requests;
    cc_status decode_status;
    char decode_error[CC_ERR_MESSAGE_MAX];
    char user[64];
    char pass[64];
    char host[64];
    char kind[16];
    char type[16];
    char lang[16];
    char server_version[32];
    char user_nkey[CC_NKEY_PUBLIC_LEN + 1];
    bool iss_is_server_id;
    natsSubscription *sub; /* owned; destroyed by stop_responder() */
} responder;

/* Builds the response for a decoded request; returns a malloc'd token. */
static char *build_response(responder *r, const cc_auth_request *req)
{
    int64_t now = (int64_t)time(NULL);
    char *user_jwt = NULL;
    if (r->deny_reason == NULL) {
        const char *pub_allow[] = {"test.>"};
        const char *sub_allow[] = {"_INBOX.>"};
        cc_user_claims user;
        cc_user_claims_init(&user);
        user.subject = req->user_nkey;
        user.audience = "APP";
        user.name = req->connect_opts.user;
        user.exp = now + 600;
        user.pub.allow = (cc_claims_strings){pub_allow, 1};
        user.sub.allow = (cc_claims_strings){sub_allow, 1};
        if (cc_user_claims_encode(&user, &r->issuer, now, &user_jwt, NULL) != CC_OK)
            return NULL;
    }

    cc_auth_response resp = {.user_nkey = req->user_nkey,
                             .server_id = req->server_id.id,
                             .user_jwt = user_jwt,
                             .error = r->deny_reason};
    char *token = NULL;
    cc_auth_response_encode(&resp, &r->issuer, now, &token, NULL);
    free(user_jwt);
    return token;
}

static void on_request(natsConnection *conn, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    responder *r = closure;
    cc_auth_request req;
    cc_err err = {0};
    cc_status status = cc_auth_request_decode(
        natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), (int64_t)time(NULL), &req, &err);

    pthread_mutex_lock(&r->lock);
    r->requests++;
    r->decode_status = status;
    snprintf(r->decode_error, sizeof(r->decode_error), "%s", err.message);
    if (status == CC_OK) {
        snprintf(r->user, sizeof(r->user), "%s", req.connect_opts.user);
        snprintf(r->pass, sizeof(r->pass), "%s", req.connect_opts.pass);
        snprintf(r->host, sizeof(r->host), "%s", req.client_info.host);
        snprintf(r->kind, sizeof(r->kind), "%s", req.client_info.kind);
        snprintf(r->type, sizeof(r->type), "%s", req.client_info.type);
        snprintf(r->lang, sizeof(r->lang), "%s", req.connect_opts.lang);
        snprintf(r->server_version, sizeof(r->server_version), "%s", req.server_id.version);
        snprintf(r->user_nkey, sizeof(r->user_nkey), "%s", req.user_nkey);
        r->iss_is_server_id = strcmp(req.jwt.iss, req.server_id.id) == 0;
    }
    pthread_mutex_unlock(&r->lock);

    if (status == CC_OK) {
        char *token = build_response(r, &req);
        if (token != NULL)
            natsConnection_PublishString(conn, natsMsg_GetReply(msg), token);
        free(token);
        cc_auth_request_free(&req);
    }
    natsMsg_Destroy(msg);
}

static cc_test_nats_server *start_callout_server(const responder *r)
{
    char issuer_public[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&r->issuer, issuer_public);
    char config[2048];
    snprintf(config, sizeof(config),
             "accounts {\n"
             "  AUTH { users: [ {user: auth, password: pwd} ] }\n"
             "  APP {}\n"
             "  SYS {}\n"
             "}\n"
             "system_account: SYS\n"
             "authorization {\n"
             "  timeout: 2\n"
             "  auth_callout { issuer: \"%s\", auth_users: [ auth ], account: AUTH }\n"
             "}\n",
             issuer_public);
    cc_err err = {0};
    cc_test_nats_server *srv = cc_test_nats_server_run(config, &err);
    cr_assert_not_null(srv, "%s", err.message);
    return srv;
}

static natsConnection *start_responder(const cc_test_nats_server *srv, responder *r)
{
    char url[128];
    snprintf(url, sizeof(url), "nats://auth:pwd@127.0.0.1:%d", cc_test_nats_server_port(srv));
    natsConnection *conn = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&conn, url), NATS_OK, "%s", nats_GetLastError(NULL));
    cr_assert_eq(natsConnection_Subscribe(&r->sub, conn, "$SYS.REQ.USER.AUTH", on_request, r),
                 NATS_OK);
    cr_assert_eq(natsConnection_FlushTimeout(conn, 2000), NATS_OK);
    return conn;
}

static void stop_responder(natsConnection *conn, responder *r)
{
    natsSubscription_Destroy(r->sub);
    r->sub = NULL;
    natsConnection_Destroy(conn);
}

static natsStatus connect_client(const cc_test_nats_server *srv, natsConnection **conn)
{
    char url[128];
    snprintf(url, sizeof(url), "nats://bob:secret@127.0.0.1:%d", cc_test_nats_server_port(srv));
    natsOptions *opts = NULL;
    cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(opts, url), NATS_OK);
    cr_assert_eq(natsOptions_SetAllowReconnect(opts, false), NATS_OK);
    cr_assert_eq(natsOptions_SetName(opts, "live-client"), NATS_OK);
    natsStatus status = natsConnection_Connect(conn, opts);
    natsOptions_Destroy(opts);
    return status;
}

static void init_responder(responder *r, const char *deny_reason)
{
    memset(r, 0, sizeof(*r));
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &r->issuer, NULL), CC_OK);
    r->deny_reason = deny_reason;
    pthread_mutex_init(&r->lock, NULL);
}

Test(claims_live, real_request_decodes_and_allow_works)
{
    responder r;
    init_responder(&r, NULL);
    cc_test_nats_server *srv = start_callout_server(&r);
    natsConnection *service = start_responder(srv, &r);

    natsConnection *client = NULL;
    cr_assert_eq(connect_client(srv, &client), NATS_OK, "%s", nats_GetLastError(NULL));
    cr_assert_eq(natsConnection_PublishString(client, "test.hello", "hi"), NATS_OK);
    cr_assert_eq(natsConnection_FlushTimeout(client, 2000), NATS_OK);
    /* The user JWT allows publishing only to test.>. */
    cr_assert_eq(natsConnection_PublishString(client, "other.subject", "x"), NATS_OK);
    natsConnection_FlushTimeout(client, 2000);
    cr_assert(cc_test_nats_server_wait_log(srv, "Publish Violation", 3000));
    natsConnection_Destroy(client);

    pthread_mutex_lock(&r.lock);
    cr_assert_eq(r.requests, 1);
    cr_assert_eq(r.decode_status, CC_OK, "%s", r.decode_error);
    cr_assert(r.iss_is_server_id);
    cr_assert_str_eq(r.user, "bob");
    cr_assert_str_eq(r.pass, "secret");
    cr_assert_str_eq(r.host, "127.0.0.1");
    cr_assert_str_eq(r.kind, "Client");
    cr_assert_str_eq(r.type, "nats");
    cr_assert_str_eq(r.lang, "C");
    cr_assert_eq(strncmp(r.server_version, "2.", 2), 0, "%s", r.server_version);
    cr_assert_eq(r.user_nkey[0], 'U');
    pthread_mutex_unlock(&r.lock);

    stop_responder(service, &r);
    cc_test_nats_server_stop(srv);
    cc_nkey_wipe(&r.issuer);
}

Test(claims_live, error_response_denies)
{
    responder r;
    init_responder(&r, "denied by the live test");
    cc_test_nats_server *srv = start_callout_server(&r);
    natsConnection *service = start_responder(srv, &r);

    natsConnection *client = NULL;
    cr_assert_neq(connect_client(srv, &client), NATS_OK);
    cr_assert_null(client);
    const char *last = nats_GetLastError(NULL);
    cr_assert(strstr(last, "Authorization Violation") != NULL, "%s", last);
    cr_assert(cc_test_nats_server_wait_log(srv, "denied by the live test", 3000));

    stop_responder(service, &r);
    cc_test_nats_server_stop(srv);
    cc_nkey_wipe(&r.issuer);
}
