/* xkey interoperability with a real nats-server 2.10 on 127.0.0.1.
 *
 * Each test starts nats-server with an auth callout whose xkey is a freshly
 * generated curve key, connects a client so that the server sends a sealed
 * request, opens it with cc_xkey, and seals a signed error response. The server
 * log then shows whether the server could open and verify that response. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <nats/nats.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "citadel/codec.h"
#include "citadel/nkey.h"
#include "citadel/xkey.h"

#define NATS_SERVER_BIN "/usr/local/bin/nats-server"
#define DENY_REASON "denied by the citadel xkey test"

typedef struct test_server {
    char dir[64];
    char log_path[PATH_MAX];
    char url[128];
    pid_t pid;
} test_server;

static void write_config(const test_server *server, const char *issuer, const char *xkey)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/server.conf", server->dir);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    fprintf(file,
            "host: 127.0.0.1\n"
            "port: -1\n"
            "ports_file_dir: \"%s\"\n"
            "accounts {\n"
            "  AUTH { users: [ {user: auth, password: pwd} ] }\n"
            "  APP {}\n"
            "  SYS {}\n"
            "}\n"
            "system_account: SYS\n"
            "authorization {\n"
            "  timeout: 2\n"
            "  auth_callout {\n"
            "    issuer: \"%s\"\n"
            "    auth_users: [ auth ]\n"
            "    account: AUTH\n"
            "    xkey: \"%s\"\n"
            "  }\n"
            "}\n",
            server->dir, issuer, xkey);
    fclose(file);
}

/* Reads the client URL from the ports file that nats-server writes into dir. */
static bool read_ports_file(test_server *server)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/nats-server_%d.ports", server->dir, (int)server->pid);
    json_t *ports = json_load_file(path, 0, NULL);
    if (ports == NULL)
        return false;

    const char *url = json_string_value(json_array_get(json_object_get(ports, "nats"), 0));
    bool found = url != NULL;
    if (found)
        snprintf(server->url, sizeof(server->url), "%s", url);
    json_decref(ports);
    return found;
}

static void start_server(test_server *server, const char *issuer, const char *xkey)
{
    snprintf(server->dir, sizeof(server->dir), "/tmp/citadel-xkey-server-XXXXXX");
    cr_assert_not_null(mkdtemp(server->dir));
    snprintf(server->log_path, sizeof(server->log_path), "%s/server.log", server->dir);
    write_config(server, issuer, xkey);

    char config_path[PATH_MAX];
    snprintf(config_path, sizeof(config_path), "%s/server.conf", server->dir);
    server->pid = fork();
    cr_assert(server->pid >= 0);
    if (server->pid == 0) {
        /* The server dies with the test process, even when an assertion ends the test early,
         * and never keeps the test's stdout open. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int null_fd = open("/dev/null", O_WRONLY);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        execl(NATS_SERVER_BIN, NATS_SERVER_BIN, "-c", config_path, "-l", server->log_path,
              (char *)NULL);
        _exit(127);
    }

    for (int attempt = 0; attempt < 100; attempt++) {
        if (read_ports_file(server))
            return;
        usleep(50 * 1000);
    }
    kill(server->pid, SIGTERM);
    waitpid(server->pid, NULL, 0);
    cr_assert_fail("nats-server did not write its ports file within 5 s (log: %s)",
                   server->log_path);
}

static void remove_dir_contents(const char *dir)
{
    DIR *handle = opendir(dir);
    if (handle == NULL)
        return;
    for (struct dirent *entry = readdir(handle); entry != NULL; entry = readdir(handle)) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
        unlink(path);
    }
    closedir(handle);
}

static void stop_server(test_server *server)
{
    kill(server->pid, SIGTERM);
    waitpid(server->pid, NULL, 0);
    remove_dir_contents(server->dir);
    rmdir(server->dir);
}

static bool log_contains(const test_server *server, const char *text)
{
    FILE *file = fopen(server->log_path, "r");
    if (file == NULL)
        return false;

    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), file) != NULL)
        found = strstr(line, text) != NULL;
    fclose(file);
    return found;
}

/* Waits up to 3 s for the server to log a line containing text. */
static bool wait_for_log(const test_server *server, const char *text)
{
    for (int attempt = 0; attempt < 60; attempt++) {
        if (log_contains(server, text))
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static natsConnection *connect_service(const char *url)
{
    natsOptions *opts = NULL;
    natsConnection *conn = NULL;
    cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
    natsOptions_SetURL(opts, url);
    natsOptions_SetUserInfo(opts, "auth", "pwd");
    natsStatus status = natsConnection_Connect(&conn, opts);
    natsOptions_Destroy(opts);
    cr_assert_eq(status, NATS_OK, "service connect: %s", natsStatus_GetText(status));
    return conn;
}

typedef struct client_attempt {
    const char *url;
    natsStatus status;
} client_attempt;

/* Connects as an ordinary user; the connect blocks until the callout decides. */
static void *client_connect(void *arg)
{
    client_attempt *attempt = arg;
    natsOptions *opts = NULL;
    natsConnection *conn = NULL;
    natsOptions_Create(&opts);
    natsOptions_SetURL(opts, attempt->url);
    natsOptions_SetUserInfo(opts, "bob", "bobpwd");
    natsOptions_SetTimeout(opts, 5000);
    attempt->status = natsConnection_Connect(&conn, opts);
    natsConnection_Destroy(conn);
    natsOptions_Destroy(opts);
    return NULL;
}

/* Decodes the claims (middle segment) of a compact JWT. Caller decrefs. */
static json_t *jwt_claims(const char *jwt)
{
    const char *start = strchr(jwt, '.');
    cr_assert_not_null(start);
    start++;
    const char *end = strchr(start, '.');
    cr_assert_not_null(end);

    uint8_t *payload = NULL;
    size_t len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_b64url_decode(start, (size_t)(end - start), &payload, &len, &err), CC_OK, "%s",
                 err.message);
    json_t *claims = json_loadb((const char *)payload, len, 0, NULL);
    free(payload);
    cr_assert_not_null(claims);
    return claims;
}

/* Builds an authorization_response JWT that carries an error, signed by issuer. Caller frees. */
static char *error_response_jwt(const cc_nkey *issuer, const char *server_id, const char *user_nkey)
{
    char issuer_public[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(issuer, issuer_public);
    json_t *claims =
        json_pack("{s:s, s:I, s:s, s:s, s:{s:s, s:s, s:i}}", "aud", server_id, "iat",
                  (json_int_t)time(NULL), "iss", issuer_public, "sub", user_nkey, "nats", "error",
                  DENY_REASON, "type", "authorization_response", "version", 2);
    char *claims_text = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);

    const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
    char *header_b64 = cc_b64url_encode((const uint8_t *)header, strlen(header));
    char *claims_b64 = cc_b64url_encode((const uint8_t *)claims_text, strlen(claims_text));
    size_t signed_len = strlen(header_b64) + 1 + strlen(claims_b64);
    char *jwt = malloc(signed_len + 1 + 90);
    snprintf(jwt, signed_len + 1, "%s.%s", header_b64, claims_b64);

    uint8_t sig[CC_NKEY_SIGNATURE_LEN];
    cr_assert_eq(cc_nkey_sign(issuer, (const uint8_t *)jwt, signed_len, sig, NULL), CC_OK);
    char *sig_b64 = cc_b64url_encode(sig, sizeof(sig));
    snprintf(jwt + signed_len, 1 + 90, ".%s", sig_b64);

    free(sig_b64);
    free(claims_b64);
    free(header_b64);
    free(claims_text);
    return jwt;
}

/* Runs one callout round: receives and opens the sealed request, then replies
 * with an error response sealed by response_sender (the service's own cache
 * when NULL). */
static void run_callout(const char *url, const cc_nkey *issuer, cc_xkey_cache *service_cache,
                        const cc_nkey *response_sender)
{
    natsConnection *service = connect_service(url);
    natsSubscription *sub = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&sub, service, "$SYS.REQ.USER.AUTH"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(service), NATS_OK);

    client_attempt attempt = {.url = url, .status = NATS_OK};
    pthread_t client;
    cr_assert_eq(pthread_create(&client, NULL, client_connect, &attempt), 0);

    natsMsg *msg = NULL;
    cr_assert_eq(natsSubscription_NextMsg(&msg, sub, 5000), NATS_OK, "no callout request arrived");
    const char *server_xkey = NULL;
    cr_assert_eq(natsMsgHeader_Get(msg, "Nats-Server-Xkey", &server_xkey), NATS_OK,
                 "an encrypted request carries the Nats-Server-Xkey header");

    /* The request: sealed by the server's xkey for the service's xkey. */
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_cache_open(service_cache, server_xkey,
                                    (const uint8_t *)natsMsg_GetData(msg),
                                    (size_t)natsMsg_GetDataLength(msg), &plain, &plain_len, &err),
                 CC_OK, "%s", err.message);
    cr_assert_eq(strncmp((const char *)plain, "eyJ", 3), 0, "the request opens to a JWT");

    json_t *claims = jwt_claims((const char *)plain);
    json_t *nats = json_object_get(claims, "nats");
    json_t *server_id = json_object_get(nats, "server_id");
    cr_assert_str_eq(json_string_value(json_object_get(server_id, "xkey")), server_xkey);
    const char *user_nkey = json_string_value(json_object_get(nats, "user_nkey"));
    const char *server_nkey = json_string_value(json_object_get(server_id, "id"));
    cr_assert_not_null(user_nkey);
    cr_assert_not_null(server_nkey);

    /* The response: sealed for the server's xkey. */
    char *jwt = error_response_jwt(issuer, server_nkey, user_nkey);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cc_status status = response_sender == NULL
                           ? cc_xkey_cache_seal(service_cache, server_xkey, (const uint8_t *)jwt,
                                                strlen(jwt), &sealed, &sealed_len, &err)
                           : cc_xkey_seal(response_sender, server_xkey, (const uint8_t *)jwt,
                                          strlen(jwt), &sealed, &sealed_len, &err);
    cr_assert_eq(status, CC_OK, "%s", err.message);
    cr_assert_eq(natsConnection_Publish(service, natsMsg_GetReply(msg), sealed, (int)sealed_len),
                 NATS_OK);
    cr_assert_eq(natsConnection_Flush(service), NATS_OK);

    pthread_join(client, NULL);
    cr_assert_neq(attempt.status, NATS_OK, "the client must be rejected");

    free(sealed);
    free(jwt);
    json_decref(claims);
    free(plain);
    natsMsg_Destroy(msg);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(service);
}

static void make_keys(cc_nkey *issuer, cc_nkey *service_xkey, char *issuer_public,
                      char *xkey_public)
{
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, issuer, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, service_xkey, NULL), CC_OK);
    cc_nkey_public_string(issuer, issuer_public);
    cc_nkey_public_string(service_xkey, xkey_public);
}

Test(xkey_server, request_and_response_interoperate)
{
    cc_nkey issuer, service_xkey;
    char issuer_public[CC_NKEY_PUBLIC_LEN + 1], xkey_public[CC_NKEY_PUBLIC_LEN + 1];
    make_keys(&issuer, &service_xkey, issuer_public, xkey_public);

    test_server server;
    start_server(&server, issuer_public, xkey_public);
    cc_xkey_cache *cache = cc_xkey_cache_new(&service_xkey, 0, NULL);
    run_callout(server.url, &issuer, cache, NULL);

    /* The server opened the sealed response and read the error it carries. */
    cr_assert(wait_for_log(&server, DENY_REASON), "server log %s lacks the error reason",
              server.log_path);
    cr_assert(!log_contains(&server, "decrypting auth callout response"), "server log: %s",
              server.log_path);

    cc_xkey_cache_free(cache);
    stop_server(&server);
    nats_CloseAndWait(2000);
}

Test(xkey_server, response_from_wrong_key_rejected)
{
    cc_nkey issuer, service_xkey, stranger;
    char issuer_public[CC_NKEY_PUBLIC_LEN + 1], xkey_public[CC_NKEY_PUBLIC_LEN + 1];
    make_keys(&issuer, &service_xkey, issuer_public, xkey_public);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &stranger, NULL), CC_OK);

    test_server server;
    start_server(&server, issuer_public, xkey_public);
    cc_xkey_cache *cache = cc_xkey_cache_new(&service_xkey, 0, NULL);
    run_callout(server.url, &issuer, cache, &stranger);

    /* nats-server 2.10 opens responses with the configured xkey as sender. */
    cr_assert(wait_for_log(&server, "Error decrypting auth callout response"), "server log: %s",
              server.log_path);

    cc_xkey_cache_free(cache);
    stop_server(&server);
    nats_CloseAndWait(2000);
}
