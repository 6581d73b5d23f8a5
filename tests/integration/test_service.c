/* Service smoke tests against a config-mode nats-server with an auth callout.
 *
 * The server has accounts AUTH (the callout account, with the service's user
 * "auth" in auth_users and JetStream for the audit stream), APP and SYS. The
 * callout issuer is a fresh account nkey whose seed the service loads. A plain
 * client without a certificate must be refused, and exactly one deny event
 * must reach the audit stream. One test runs the service in this process, the
 * other runs the built binary ($CITADEL_BIN) to check signals and exit codes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "../support/natsrestart.h"
#include "../support/natsserver.h"
#include "../support/pki.h"
#include "citadel/config.h"
#include "citadel/log.h"
#include "citadel/nkey.h"
#include "citadel/service.h"

#define AUTH_PASSWORD "callout-test-password"
#define STREAM "CITADEL_AUDIT"

typedef struct fixture {
    cc_test_nats_server *server;
    char *server_body; /* config body, kept for a restart */
    char *service_dir;
    char *config_path;
} fixture;

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = NULL;
    cr_assert_gt(asprintf(&path, "%s/%s", dir, name), 0);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file, "cannot create %s", path);
    fputs(text, file);
    fclose(file);
    cr_assert_eq(chmod(path, mode), 0);
    free(path);
}

static void write_trust_bundle(const char *dir)
{
    cc_test_cert_spec spec = cc_test_spec_ca("citadel test root");
    cc_test_cert *root = cc_test_cert_issue(&spec, NULL);
    cr_assert_not_null(root);
    char *pem = cc_test_cert_pem(root->cert);
    write_file(dir, "bundle.pem", pem, 0644);
    free(pem);
    cc_test_cert_free(root);
}

static void write_service_files(fixture *f, const char *issuer_seed)
{
    f->service_dir = cc_test_tempdir("citadel-service");
    cr_assert_not_null(f->service_dir);

    char *seed_line = NULL;
    cr_assert_gt(asprintf(&seed_line, "%s\n", issuer_seed), 0);
    write_file(f->service_dir, "issuer.seed", seed_line, 0600);
    free(seed_line);
    write_file(f->service_dir, "auth.pass", AUTH_PASSWORD "\n", 0600);
    write_trust_bundle(f->service_dir);

    char *policies = NULL;
    cr_assert_gt(asprintf(&policies, "%s/policies", f->service_dir), 0);
    cr_assert_eq(mkdir(policies, 0700), 0);
    write_file(policies, "agents.json",
               "{\"rules\": [{\"name\": \"energy-agent\", \"spiffe_id\": "
               "\"spiffe://citadel.mesh/agent/energy\", \"publish\": {\"allow\": "
               "[\"energy.>\"]}}]}",
               0644);
    free(policies);

    char *config = NULL;
    cr_assert_gt(asprintf(&config,
                          "{\"nats\": {\"servers\": [\"%s\"], \"user\": \"auth\", "
                          "\"password_file\": \"auth.pass\"}, "
                          "\"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
                          "\"trust_domains\": [{\"name\": \"citadel.mesh\", \"bundle_pem\": "
                          "\"bundle.pem\"}], \"policy_dir\": \"policies\", \"workers\": 2, "
                          "\"audit\": {\"max_age_seconds\": 3600}}",
                          cc_test_nats_server_url(f->server)),
                 0);
    write_file(f->service_dir, "citadel.json", config, 0644);
    free(config);
    cr_assert_gt(asprintf(&f->config_path, "%s/citadel.json", f->service_dir), 0);
}

static void fixture_start(fixture *f)
{
    cc_nkey issuer;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &issuer, &err), CC_OK, "%s", err.message);
    char issuer_public[CC_NKEY_PUBLIC_LEN + 1];
    char issuer_seed[CC_NKEY_SEED_LEN + 1];
    cc_nkey_public_string(&issuer, issuer_public);
    cc_nkey_seed_string(&issuer, issuer_seed);
    cc_nkey_wipe(&issuer);

    f->server = cc_test_nats_server_new(&err);
    cr_assert_not_null(f->server, "%s", err.message);
    char *body = NULL;
    cr_assert_gt(
        asprintf(&body,
                 "jetstream { store_dir: \"%s/js\" }\n"
                 "accounts {\n"
                 "  AUTH { jetstream: enabled, users: [ {user: auth, password: \"%s\"} ] }\n"
                 "  APP {}\n"
                 "  SYS {}\n"
                 "}\n"
                 "system_account: SYS\n"
                 "authorization {\n"
                 "  timeout: 2\n"
                 "  auth_callout { issuer: \"%s\", auth_users: [ auth ], account: AUTH }\n"
                 "}\n",
                 cc_test_nats_server_dir(f->server), AUTH_PASSWORD, issuer_public),
        0);
    cr_assert_eq(cc_test_nats_server_start(f->server, body, &err), CC_OK, "%s", err.message);
    f->server_body = body;

    write_service_files(f, issuer_seed);
    memset(issuer_seed, 0, sizeof(issuer_seed));
}

static void fixture_stop(fixture *f)
{
    cc_test_nats_server_stop(f->server);
    free(f->server_body);
    cc_test_remove_tree(f->service_dir);
    free(f->service_dir);
    free(f->config_path);
}

/* Connects as the callout user, which bypasses the callout. */
static natsConnection *connect_auth_user(const fixture *f)
{
    natsOptions *options = NULL;
    natsConnection *nc = NULL;
    cr_assert_eq(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, cc_test_nats_server_url(f->server));
    natsOptions_SetUserInfo(options, "auth", AUTH_PASSWORD);
    cr_assert_eq(natsConnection_Connect(&nc, options), NATS_OK, "%s", nats_GetLastError(NULL));
    natsOptions_Destroy(options);
    return nc;
}

static natsStatus connect_plain_client(const fixture *f)
{
    natsOptions *options = NULL;
    natsConnection *nc = NULL;
    cr_assert_eq(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, cc_test_nats_server_url(f->server));
    natsOptions_SetTimeout(options, 5000);
    natsStatus status = natsConnection_Connect(&nc, options);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(options);
    return status;
}

static uint64_t audit_message_count(natsConnection *nc)
{
    jsCtx *js = NULL;
    jsStreamInfo *info = NULL;
    uint64_t count = 0;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    if (js_GetStreamInfo(&info, js, STREAM, NULL, NULL) == NATS_OK)
        count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    jsCtx_Destroy(js);
    return count;
}

/* Checks that the stream contains exactly count events, each a deny for a
 * client without credentials, with the decision id as Nats-Msg-Id. */
static void expect_deny_events(const fixture *f, uint64_t count)
{
    natsConnection *nc = connect_auth_user(f);
    for (int i = 0; i < 100 && audit_message_count(nc) < count; i++)
        sleep_ms(50);
    sleep_ms(300);
    cr_expect_eq(audit_message_count(nc), count, "audit events in the stream");

    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    for (uint64_t seq = 1; seq <= count; seq++) {
        natsMsg *msg = NULL;
        cr_assert_eq(js_GetMsg(&msg, js, STREAM, seq, NULL, NULL), NATS_OK,
                     "audit event %llu not stored", (unsigned long long)seq);
        cr_expect_str_eq(natsMsg_GetSubject(msg), "citadel.audit.deny");

        json_t *event =
            json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
        cr_assert_not_null(event);
        cr_expect_str_eq(json_string_value(json_object_get(event, "decision")), "deny");
        cr_expect_str_eq(json_string_value(json_object_get(event, "code")), "no_credential");
        const char *msg_id = NULL;
        cr_expect_eq(natsMsgHeader_Get(msg, "Nats-Msg-Id", &msg_id), NATS_OK);
        cr_expect_str_eq(msg_id, json_string_value(json_object_get(event, "decision_id")));
        json_decref(event);
        natsMsg_Destroy(msg);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

Test(service, plain_client_denied_in_process)
{
    fixture f = {0};
    fixture_start(&f);

    cc_config *config = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_config_load(f.config_path, &config, &err), CC_OK, "%s", err.message);
    cc_service *service = NULL;
    cr_assert_eq(cc_service_start(config, &service, &err), CC_OK, "%s", err.message);

    natsStatus status = connect_plain_client(&f);
    cr_expect_eq(status, NATS_CONNECTION_AUTH_FAILED, "plain client: %s",
                 natsStatus_GetText(status));

    cr_expect_eq(cc_service_stop(service), CC_OK, "every audit event was sent");
    expect_deny_events(&f, 1);

    fixture_stop(&f);
    nats_CloseAndWait(5000);
}

Test(service, reload_failure_keeps_old_policies)
{
    fixture f = {0};
    fixture_start(&f);

    cc_config *config = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_config_load(f.config_path, &config, &err), CC_OK, "%s", err.message);
    cc_service *service = NULL;
    cr_assert_eq(cc_service_start(config, &service, &err), CC_OK, "%s", err.message);

    char *policies = NULL;
    cr_assert_gt(asprintf(&policies, "%s/policies", f.service_dir), 0);
    write_file(policies, "zz-bad.json", "{\"rules\": [{\"name\": \"typo\", \"spiffe_idd\": 1}]}",
               0644);
    cr_expect_eq(cc_service_reload(service, &err), CC_ERR_INVALID);
    cr_expect_not_null(strstr(err.message, "zz-bad.json"), "%s", err.message);

    char *bad = NULL;
    cr_assert_gt(asprintf(&bad, "%s/zz-bad.json", policies), 0);
    cr_assert_eq(unlink(bad), 0);
    cr_expect_eq(cc_service_reload(service, &err), CC_OK, "%s", err.message);

    free(bad);
    free(policies);
    cr_expect_eq(cc_service_stop(service), CC_OK);
    fixture_stop(&f);
    nats_CloseAndWait(5000);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return false;
    char *text = NULL;
    size_t size = 0;
    bool found = getdelim(&text, &size, '\0', file) > 0 && strstr(text, needle) != NULL;
    free(text);
    fclose(file);
    return found;
}

static bool wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (file_contains(path, needle))
            return true;
        sleep_ms(50);
    }
    return file_contains(path, needle);
}

static pid_t spawn_service(const fixture *f, const char *log_path)
{
    const char *binary = getenv("CITADEL_BIN");
    cr_assert_not_null(binary, "set CITADEL_BIN to the built citadel-callout binary");

    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_RDONLY);
        if (log < 0 || null < 0)
            _exit(126);
        dup2(null, 0);
        dup2(log, 1);
        dup2(log, 2);
        execl(binary, binary, "serve", "--config", f->config_path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

Test(service, binary_denies_reloads_and_stops)
{
    fixture f = {0};
    fixture_start(&f);
    char *log_path = NULL;
    cr_assert_gt(asprintf(&log_path, "%s/service.log", f.service_dir), 0);

    pid_t pid = spawn_service(&f, log_path);
    cr_assert(wait_file_contains(log_path, "\"event\":\"subscribed\"", 10000),
              "service did not subscribe; see %s", log_path);

    natsStatus status = connect_plain_client(&f);
    cr_expect_eq(status, NATS_CONNECTION_AUTH_FAILED, "plain client: %s",
                 natsStatus_GetText(status));

    char *policies = NULL;
    cr_assert_gt(asprintf(&policies, "%s/policies", f.service_dir), 0);
    write_file(policies, "zz-bad.json", "{\"rules\": [{\"name\": \"typo\", \"acount\": 1}]}", 0644);
    cr_assert_eq(kill(pid, SIGHUP), 0);
    cr_expect(wait_file_contains(log_path, "\"event\":\"reload_failed\"", 5000),
              "a bad policy file is reported");
    cr_expect(file_contains(log_path, "zz-bad.json"), "the log names the bad file");

    cr_assert_eq(kill(pid, SIGTERM), 0);
    int wstatus = 0;
    cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
    cr_expect(WIFEXITED(wstatus), "service exited normally");
    cr_expect_eq(WEXITSTATUS(wstatus), 0, "exit status");
    cr_expect(file_contains(log_path, "\"event\":\"stop\""));
    cr_expect_not(file_contains(log_path, AUTH_PASSWORD), "the password is never logged");

    expect_deny_events(&f, 1);

    free(policies);
    free(log_path);
    fixture_stop(&f);
    nats_CloseAndWait(5000);
}

Test(service, reconnects_after_server_restart)
{
    fixture f = {0};
    fixture_start(&f);
    char *log_path = NULL;
    cr_assert_gt(asprintf(&log_path, "%s/service.log", f.service_dir), 0);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(log_fd, 0);
    cc_log_set_fd(log_fd);

    cc_config *config = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_config_load(f.config_path, &config, &err), CC_OK, "%s", err.message);
    cc_service *service = NULL;
    cr_assert_eq(cc_service_start(config, &service, &err), CC_OK, "%s", err.message);
    cr_expect_eq(connect_plain_client(&f), NATS_CONNECTION_AUTH_FAILED);

    cr_assert_eq(cc_test_nats_server_take_down(f.server, &err), CC_OK, "%s", err.message);
    cr_expect(wait_file_contains(log_path, "\"event\":\"disconnected\"", 5000));
    pid_t restarted = 0;
    cr_assert_eq(cc_test_nats_server_bring_back(f.server, f.server_body, &restarted, &err), CC_OK,
                 "%s", err.message);
    cr_assert(wait_file_contains(log_path, "\"event\":\"reconnected\"", 15000),
              "service did not reconnect; see %s", log_path);

    /* nats.c sends the subscription again before it reports the reconnect,
     * but the server handles the service's and the client's connections
     * independently, so leave it a moment. */
    sleep_ms(300);
    cr_expect_eq(connect_plain_client(&f), NATS_CONNECTION_AUTH_FAILED);

    cr_expect_eq(cc_service_stop(service), CC_OK, "every audit event was sent");
    cc_log_set_fd(2);
    close(log_fd);
    expect_deny_events(&f, 2);

    cc_test_nats_stop_pid(restarted);
    free(log_path);
    fixture_stop(&f);
    nats_CloseAndWait(5000);
}

Test(service, starts_before_server_is_up)
{
    fixture f = {0};
    fixture_start(&f);
    cc_err err = {0};
    cr_assert_eq(cc_test_nats_server_take_down(f.server, &err), CC_OK, "%s", err.message);

    char *log_path = NULL;
    cr_assert_gt(asprintf(&log_path, "%s/service.log", f.service_dir), 0);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(log_fd, 0);
    cc_log_set_fd(log_fd);

    cc_config *config = NULL;
    cr_assert_eq(cc_config_load(f.config_path, &config, &err), CC_OK, "%s", err.message);
    cc_service *service = NULL;
    cr_assert_eq(cc_service_start(config, &service, &err), CC_OK, "%s", err.message);
    cr_expect(file_contains(log_path, "\"event\":\"connect_pending\""));
    char *server_field = NULL;
    cr_assert_gt(asprintf(&server_field, "\"servers\":[\"nats://127.0.0.1:%d\"]",
                          cc_test_nats_server_port(f.server)),
                 0);
    cr_expect(file_contains(log_path, server_field), "connect_pending names the URL");
    free(server_field);
    cr_expect(file_contains(log_path, "\"error\":"), "connect_pending has the nats.c error");
    cr_expect(file_contains(log_path, "\"confirmed\":false"), "subscribed is not confirmed yet");
    cr_expect_not(file_contains(log_path, "\"confirmed\":true"));
    cr_expect(wait_file_contains(log_path, "\"event\":\"reconnect_failed\"", 5000),
              "a failed reconnect round is logged; see %s", log_path);

    pid_t restarted = 0;
    cr_assert_eq(cc_test_nats_server_bring_back(f.server, f.server_body, &restarted, &err), CC_OK,
                 "%s", err.message);
    cr_assert(wait_file_contains(log_path, "\"event\":\"connected\"", 15000),
              "service did not connect; see %s", log_path);
    cr_expect(wait_file_contains(log_path, "\"confirmed\":true", 5000),
              "subscribed is logged again once connected; see %s", log_path);
    sleep_ms(300);
    cr_expect_eq(connect_plain_client(&f), NATS_CONNECTION_AUTH_FAILED);

    cr_expect_eq(cc_service_stop(service), CC_OK, "every audit event was sent");
    cc_log_set_fd(2);
    close(log_fd);
    expect_deny_events(&f, 1);

    cc_test_nats_stop_pid(restarted);
    free(log_path);
    fixture_stop(&f);
    nats_CloseAndWait(5000);
}

#define PARALLEL_CLIENTS 16

static void *connect_in_thread(void *arg)
{
    const fixture *f = arg;
    return (void *)(intptr_t)connect_plain_client(f);
}

Test(service, parallel_clients_each_audited_once)
{
    fixture f = {0};
    fixture_start(&f);

    cc_config *config = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_config_load(f.config_path, &config, &err), CC_OK, "%s", err.message);
    cc_service *service = NULL;
    cr_assert_eq(cc_service_start(config, &service, &err), CC_OK, "%s", err.message);

    pthread_t threads[PARALLEL_CLIENTS];
    for (int i = 0; i < PARALLEL_CLIENTS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, connect_in_thread, &f), 0);
    for (int i = 0; i < PARALLEL_CLIENTS; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        cr_expect_eq((natsStatus)(intptr_t)result, NATS_CONNECTION_AUTH_FAILED, "client %d", i);
    }

    cr_expect_eq(cc_service_stop(service), CC_OK, "every audit event was sent");
    expect_deny_events(&f, PARALLEL_CLIENTS);

    fixture_stop(&f);
    nats_CloseAndWait(5000);
}

Test(service, stops_while_never_connected)
{
    fixture f = {0};
    fixture_start(&f);
    cc_err err = {0};
    cr_assert_eq(cc_test_nats_server_take_down(f.server, &err), CC_OK, "%s", err.message);

    cc_config *config = NULL;
    cr_assert_eq(cc_config_load(f.config_path, &config, &err), CC_OK, "%s", err.message);
    cc_service *service = NULL;
    cr_assert_eq(cc_service_start(config, &service, &err), CC_OK, "%s", err.message);

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    cr_expect_eq(cc_service_stop(service), CC_OK, "no audit events were pending");
    clock_gettime(CLOCK_MONOTONIC, &end);
    cr_expect_lt(end.tv_sec - start.tv_sec, 8, "stop must not wait for a server");

    fixture_stop(&f);
    nats_CloseAndWait(5000);
}
