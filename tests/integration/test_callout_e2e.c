/* End-to-end tests: a real nats-server 2.10 with auth_callout, the
 * citadel-callout binary ($CITADEL_BIN serve --config) and nats.c clients
 * that present X509-SVIDs.
 *
 * Each test gets its own server in a temp directory. The server requires TLS
 * client certificates (tls { verify: true }) and trusts two CAs: the
 * citadel.test CA, which is also the service's trust bundle, and an unrelated
 * CA that only the server trusts, so that the service's own bundle check is
 * what rejects the second one. One suite runs the server without verify, as a
 * misconfigured deployment would, so that a client without a certificate
 * reaches the callout, which must then deny it.
 *
 * Every decision must leave exactly one event in the audit stream, which the
 * tests read back over JetStream as the service's own user. */
#define _GNU_SOURCE /* asprintf */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nats/nats.h>
#include <openssl/x509.h>

#include "citadel/nkey.h"
#include "../support/natsserver.h"
#include "../support/pki.h"

#define ID_SENSOR "spiffe://citadel.test/app/sensor"
#define ID_UNLISTED "spiffe://citadel.test/app/unlisted"
#define ID_SERVICE "spiffe://citadel.test/callout"
#define AUDIT_STREAM "CITADEL_AUDIT"
#define SERVICE_READY_TIMEOUT_MS 15000

static const char policy_json[] =
    "{\"rules\": [{\"name\": \"sensor\", \"spiffe_id\": \"" ID_SENSOR "\",\n"
    "  \"publish\": {\"allow\": [\"sensor.>\"]},\n"
    "  \"subscribe\": {\"allow\": [\"sensor.>\", \"_INBOX.>\"]}}]}\n";

typedef struct e2e {
    cc_test_nats_server *server;
    const char *dir; /* borrowed from server */
    char password[33];
    cc_nkey issuer;
    cc_nkey xkey;
    cc_test_cert *ca;
    cc_test_cert *other_ca;
    pid_t service_pid;
} e2e;

static e2e T;

/* ---- files --------------------------------------------------------------- */

static char *path_in_dir(const char *name)
{
    char *path = NULL;
    cr_assert_gt(asprintf(&path, "%s/%s", T.dir, name), 0);
    return path;
}

static void write_file(const char *name, const char *content)
{
    cc_err err = {0};
    cr_assert_eq(cc_test_nats_server_write_file(T.server, name, content, NULL, &err), CC_OK, "%s",
                 err.message);
}

/* Writes cert (and its key) as NAME.pem and NAME.key in the test directory. */
static void write_cert(const char *name, const cc_test_cert *cert)
{
    char file[256];
    snprintf(file, sizeof(file), "%s/%s.pem", T.dir, name);
    X509 *chain[1] = {cert->cert};
    cr_assert_eq(cc_test_write_chain_pem(file, chain, 1), 0);
    snprintf(file, sizeof(file), "%s/%s.key", T.dir, name);
    cr_assert_eq(cc_test_write_key_pem(file, cert->key), 0);
}

static void write_seed(const char *name, const cc_nkey *key)
{
    char seed[CC_NKEY_SEED_LEN + 2];
    cc_nkey_seed_string(key, seed);
    strcat(seed, "\n");
    write_file(name, seed);
}

static cc_test_cert *issue_leaf(const char *spiffe_id, int64_t lifetime, const cc_test_cert *ca)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(spiffe_id);
    spec.not_after_offset = lifetime;
    cc_test_cert *leaf = cc_test_cert_issue(&spec, ca);
    cr_assert_not_null(leaf);
    return leaf;
}

static int64_t cert_not_after(X509 *cert)
{
    struct tm tm;
    cr_assert(ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm));
    return (int64_t)timegm(&tm);
}

static void write_pki(void)
{
    cc_test_cert_spec ca_spec = cc_test_spec_ca("citadel test root");
    T.ca = cc_test_cert_issue(&ca_spec, NULL);
    cr_assert_not_null(T.ca);
    cc_test_cert_spec other_spec = cc_test_spec_ca("unrelated root");
    T.other_ca = cc_test_cert_issue(&other_spec, NULL);
    cr_assert_not_null(T.other_ca);

    cc_test_cert_spec server_spec = cc_test_spec_leaf(NULL);
    server_spec.common_name = "nats-server";
    server_spec.ips[0] = "127.0.0.1";
    server_spec.dns_names[0] = "localhost";
    cc_test_cert *server_cert = cc_test_cert_issue(&server_spec, T.ca);
    cr_assert_not_null(server_cert);
    cc_test_cert *service_cert = issue_leaf(ID_SERVICE, 3600, T.ca);

    char path[4096];
    snprintf(path, sizeof(path), "%s/ca.pem", T.dir);
    X509 *ours[1] = {T.ca->cert};
    cr_assert_eq(cc_test_write_chain_pem(path, ours, 1), 0);
    snprintf(path, sizeof(path), "%s/clients-ca.pem", T.dir);
    X509 *both[2] = {T.ca->cert, T.other_ca->cert};
    cr_assert_eq(cc_test_write_chain_pem(path, both, 2), 0);
    write_cert("server", server_cert);
    write_cert("service", service_cert);

    cc_test_cert_free(server_cert);
    cc_test_cert_free(service_cert);
}

/* ---- nats-server --------------------------------------------------------- */

static void start_server(bool with_xkey, bool verify)
{
    char issuer[CC_NKEY_PUBLIC_LEN + 1];
    char xkey[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&T.issuer, issuer);
    cc_nkey_public_string(&T.xkey, xkey);

    char xkey_line[128] = "";
    if (with_xkey)
        snprintf(xkey_line, sizeof(xkey_line), "    xkey: \"%s\"\n", xkey);

    char *config = NULL;
    int n = asprintf(&config,
                     "tls {\n"
                     "  cert_file: \"%1$s/server.pem\"\n"
                     "  key_file: \"%1$s/server.key\"\n"
                     "  ca_file: \"%1$s/clients-ca.pem\"\n"
                     "  verify: %5$s\n"
                     "  timeout: 2\n"
                     "}\n"
                     "jetstream { store_dir: \"%1$s/js\", max_mem: 64MB, max_file: 256MB }\n"
                     "accounts {\n"
                     "  AUTH { jetstream: enabled, users: [ {user: auth, password: \"%2$s\"} ] }\n"
                     "  APP { }\n"
                     "}\n"
                     "authorization {\n"
                     "  timeout: 3\n"
                     "  auth_callout {\n"
                     "    issuer: \"%3$s\"\n"
                     "    auth_users: [ auth ]\n"
                     "    account: AUTH\n"
                     "%4$s"
                     "  }\n"
                     "}\n",
                     T.dir, T.password, issuer, xkey_line, verify ? "true" : "false");
    cr_assert_gt(n, 0);

    cc_err err = {0};
    cc_status st = cc_test_nats_server_start(T.server, config, &err);
    if (st != CC_OK) {
        char *log = cc_test_nats_server_log(T.server);
        cr_log_error("nats-server log:\n%s", log != NULL ? log : "(none)");
        free(log);
    }
    cr_assert_eq(st, CC_OK, "%s", err.message);
    free(config);
}

/* ---- citadel-callout ----------------------------------------------------- */

static void write_service_config(bool with_xkey)
{
    char *config = NULL;
    int n = asprintf(&config,
                     "{\n"
                     "  \"nats\": {\n"
                     "    \"servers\": [\"tls://127.0.0.1:%d\"],\n"
                     "    \"user\": \"auth\",\n"
                     "    \"password_file\": \"auth.pass\",\n"
                     "    \"tls\": {\"ca_file\": \"ca.pem\", \"cert_file\": \"service.pem\",\n"
                     "            \"key_file\": \"service.key\"}\n"
                     "  },\n"
                     "  \"issuer_seed_file\": \"issuer.seed\",\n"
                     "%s"
                     "  \"default_account\": \"APP\",\n"
                     "  \"max_ttl_seconds\": 3600,\n"
                     "  \"trust_domains\": [{\"name\": \"citadel.test\", \"bundle_pem\": "
                     "\"ca.pem\"}],\n"
                     "  \"policy_dir\": \"policies\",\n"
                     "  \"audit\": {\"stream\": \"" AUDIT_STREAM
                     "\", \"subject_prefix\": \"citadel.audit\"},\n"
                     "  \"workers\": 2,\n"
                     "  \"log_level\": \"debug\"\n"
                     "}\n",
                     cc_test_nats_server_port(T.server),
                     with_xkey ? "  \"xkey_seed_file\": \"xkey.seed\",\n" : "");
    cr_assert_gt(n, 0);
    write_file("service.json", config);
    free(config);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), file) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(file);
    return found;
}

/* Copies a log file to stderr, so a failed start shows the service's reason. */
static void print_file(const char *path)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        cr_log_error("cannot open %s", path);
        return;
    }
    char line[8192];
    while (fgets(line, sizeof(line), file) != NULL)
        fputs(line, stderr);
    fclose(file);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start_service(void)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin, "CITADEL_BIN must name the citadel-callout binary");
    char *config = path_in_dir("service.json");
    char *log = path_in_dir("service.log");

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(bin, bin, "serve", "--config", config, (char *)NULL);
        _exit(127);
    }
    T.service_pid = pid;

    /* The service logs the event "subscribed" once it has subscribed to
     * $SYS.REQ.USER.AUTH. Callouts sent before that would time out. */
    bool ready = false;
    for (int waited = 0; !ready && waited < SERVICE_READY_TIMEOUT_MS; waited += 50) {
        ready = file_contains(log, "\"event\":\"subscribed\"");
        int status;
        if (!ready && waitpid(pid, &status, WNOHANG) == pid) {
            T.service_pid = 0;
            break;
        }
        if (!ready)
            sleep_ms(50);
    }
    if (!ready)
        print_file(log);
    cr_assert(ready, "citadel-callout did not log \"subscribed\" within %d ms",
              SERVICE_READY_TIMEOUT_MS);
    /* The SUB may still be on its way to the server when the line appears. */
    sleep_ms(200);
    free(config);
    free(log);
}

/* Stops the service with SIGTERM, which must drain and exit 0. The service's
 * log is copied to stderr when it holds a sanitizer report, so that
 * scripts/run-suite.sh fails the run: the report is written to the service's
 * own stderr, which nothing else reads. */
static void stop_service(void)
{
    if (T.service_pid <= 0)
        return;

    int status = 0;
    bool exited = false;
    kill(T.service_pid, SIGTERM);
    for (int waited = 0; waited < 5000 && !exited; waited += 50) {
        exited = waitpid(T.service_pid, &status, WNOHANG) == T.service_pid;
        if (!exited)
            sleep_ms(50);
    }
    if (!exited) {
        kill(T.service_pid, SIGKILL);
        waitpid(T.service_pid, &status, 0);
    }
    T.service_pid = 0;

    char *log = path_in_dir("service.log");
    bool sanitizer_report = file_contains(log, "ERROR: LeakSanitizer") ||
                            file_contains(log, "ERROR: AddressSanitizer") ||
                            file_contains(log, "runtime error:");
    if (sanitizer_report)
        print_file(log);
    free(log);

    cr_expect(exited, "citadel-callout did not exit within 5 s of SIGTERM");
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "citadel-callout exited with status 0x%x after SIGTERM, expected 0", status);
    cr_expect(!sanitizer_report, "citadel-callout's log holds a sanitizer report");
}

/* ---- fixture ------------------------------------------------------------- */

static void setup_mode(bool with_xkey, bool verify)
{
    memset(&T, 0, sizeof(T));
    cc_err err = {0};
    T.server = cc_test_nats_server_new(&err);
    cr_assert_not_null(T.server, "%s", err.message);
    T.dir = cc_test_nats_server_dir(T.server);

    uint8_t random[16];
    FILE *urandom = fopen("/dev/urandom", "r");
    cr_assert_not_null(urandom);
    cr_assert_eq(fread(random, 1, sizeof(random), urandom), sizeof(random));
    fclose(urandom);
    for (size_t i = 0; i < sizeof(random); i++)
        snprintf(T.password + 2 * i, 3, "%02x", random[i]);

    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &T.issuer, NULL), CC_OK);
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &T.xkey, NULL), CC_OK);
    write_pki();
    write_seed("issuer.seed", &T.issuer);
    write_seed("xkey.seed", &T.xkey);
    char password_line[40];
    snprintf(password_line, sizeof(password_line), "%s\n", T.password);
    write_file("auth.pass", password_line);

    char *policies = path_in_dir("policies");
    cr_assert_eq(mkdir(policies, 0700), 0);
    free(policies);
    write_file("policies/sensor.json", policy_json);

    start_server(with_xkey, verify);
    write_service_config(with_xkey);
    start_service();
}

static void setup_plain(void) { setup_mode(false, true); }
static void setup_xkey(void) { setup_mode(true, true); }
static void setup_no_verify(void) { setup_mode(false, false); }

static void teardown(void)
{
    stop_service();
    cc_test_nats_server_stop(T.server);
    cc_test_cert_free(T.ca);
    cc_test_cert_free(T.other_ca);
    cc_nkey_wipe(&T.issuer);
    cc_nkey_wipe(&T.xkey);
    /* No nats_Close() here: after a TLS connection, nats_Close() of nats.c
     * 3.4.1 made OPENSSL_cleanup() crash with SIGSEGV at process exit. */
}

/* No Criterion .timeout: its timeout code in Criterion 2.4.1 sometimes leaks
 * under LeakSanitizer when two such tests run at once. Every wait in these
 * tests has its own bound. */
TestSuite(callout_e2e, .init = setup_plain, .fini = teardown);
TestSuite(callout_e2e_xkey, .init = setup_xkey, .fini = teardown);
TestSuite(callout_e2e_no_verify, .init = setup_no_verify, .fini = teardown);

/* ---- workload clients ---------------------------------------------------- */

/* Asynchronous errors seen by one connection. */
typedef struct async_errors {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int count;
    natsStatus last;
    char text[512];
} async_errors;

static void async_errors_init(async_errors *errors)
{
    memset(errors, 0, sizeof(*errors));
    pthread_mutex_init(&errors->mutex, NULL);
    pthread_cond_init(&errors->cond, NULL);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus status,
                           void *closure)
{
    (void)sub;
    async_errors *errors = closure;
    const char *text = NULL;
    natsConnection_GetLastError(nc, &text);

    pthread_mutex_lock(&errors->mutex);
    errors->count++;
    errors->last = status;
    snprintf(errors->text, sizeof(errors->text), "%s", text != NULL ? text : "");
    pthread_cond_broadcast(&errors->cond);
    pthread_mutex_unlock(&errors->mutex);
}

/* Waits until at least count errors arrived or timeout_ms passed. */
static bool wait_async_errors(async_errors *errors, int count, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&errors->mutex);
    while (errors->count < count) {
        if (pthread_cond_timedwait(&errors->cond, &errors->mutex, &deadline) == ETIMEDOUT)
            break;
    }
    bool reached = errors->count >= count;
    pthread_mutex_unlock(&errors->mutex);
    return reached;
}

/* Connects over TLS with the certificate files NAME.pem and NAME.key, or
 * without a client certificate when name is NULL. */
static natsStatus connect_workload(const char *name, async_errors *errors, natsConnection **nc)
{
    natsOptions *opts = NULL;
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", cc_test_nats_server_port(T.server));

    cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(opts, url), NATS_OK);
    cr_assert_eq(natsOptions_SetTimeout(opts, 5000), NATS_OK);
    cr_assert_eq(natsOptions_SetAllowReconnect(opts, false), NATS_OK);
    if (errors != NULL)
        cr_assert_eq(natsOptions_SetErrorHandler(opts, on_async_error, errors), NATS_OK);

    char *ca = path_in_dir("ca.pem");
    cr_assert_eq(natsOptions_SetSecure(opts, true), NATS_OK);
    cr_assert_eq(natsOptions_LoadCATrustedCertificates(opts, ca), NATS_OK);
    free(ca);
    if (name != NULL) {
        char cert[4096];
        char key[4096];
        snprintf(cert, sizeof(cert), "%s/%s.pem", T.dir, name);
        snprintf(key, sizeof(key), "%s/%s.key", T.dir, name);
        cr_assert_eq(natsOptions_LoadCertificatesChain(opts, cert, key), NATS_OK);
    }

    natsStatus status = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return status;
}

/* Connects as the service's own user (listed in auth_users, so no callout)
 * for reading the audit stream. */
static natsConnection *connect_auth_user(void)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    char url[64];
    char *ca = path_in_dir("ca.pem");
    char *cert = path_in_dir("service.pem");
    char *key = path_in_dir("service.key");
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", cc_test_nats_server_port(T.server));

    cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(opts, url), NATS_OK);
    cr_assert_eq(natsOptions_SetUserInfo(opts, "auth", T.password), NATS_OK);
    cr_assert_eq(natsOptions_SetSecure(opts, true), NATS_OK);
    cr_assert_eq(natsOptions_LoadCATrustedCertificates(opts, ca), NATS_OK);
    cr_assert_eq(natsOptions_LoadCertificatesChain(opts, cert, key), NATS_OK);
    free(ca);
    free(cert);
    free(key);
    natsStatus status = natsConnection_Connect(&nc, opts);
    natsOptions_Destroy(opts);
    cr_assert_eq(status, NATS_OK, "auth user connect: %s", natsStatus_GetText(status));
    return nc;
}

/* ---- audit stream -------------------------------------------------------- */

static uint64_t audit_message_count(jsCtx *js)
{
    jsStreamInfo *info = NULL;
    jsErrCode code = 0;
    if (js_GetStreamInfo(&info, js, AUDIT_STREAM, NULL, &code) != NATS_OK)
        return 0;
    uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return count;
}

/* Waits for the audit stream to hold expected events, checks that no more
 * arrive within a short grace period, and returns them as a JSON array
 * (caller frees). */
static json_t *read_audit_events(uint64_t expected)
{
    natsConnection *nc = connect_auth_user();
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);

    uint64_t count = 0;
    for (int waited = 0; waited < 10000; waited += 100) {
        count = audit_message_count(js);
        if (count >= expected)
            break;
        sleep_ms(100);
    }
    sleep_ms(500);
    count = audit_message_count(js);
    cr_assert_eq(count, expected, "audit stream holds %llu events, expected %llu",
                 (unsigned long long)count, (unsigned long long)expected);

    json_t *events = json_array();
    for (uint64_t seq = 1; seq <= count; seq++) {
        natsMsg *msg = NULL;
        jsErrCode code = 0;
        cr_assert_eq(js_GetMsg(&msg, js, AUDIT_STREAM, seq, NULL, &code), NATS_OK);
        json_error_t error;
        json_t *event = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0,
                                   &error);
        cr_assert_not_null(event, "audit event %llu is not JSON: %s", (unsigned long long)seq,
                           error.text);
        json_object_set_new(event, "_subject", json_string(natsMsg_GetSubject(msg)));
        json_array_append_new(events, event);
        natsMsg_Destroy(msg);
    }

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return events;
}

static const char *event_string(const json_t *event, const char *key)
{
    return json_string_value(json_object_get(event, key));
}

/* Checks the one audit event a refused connection leaves behind. */
static void expect_single_deny(const char *code, const char *reason_part)
{
    json_t *events = read_audit_events(1);
    json_t *event = json_array_get(events, 0);

    cr_assert_str_eq(event_string(event, "decision"), "deny");
    cr_assert_str_eq(event_string(event, "code"), code);
    cr_assert_not_null(strstr(event_string(event, "reason"), reason_part), "reason: %s",
                       event_string(event, "reason"));
    cr_assert_str_eq(event_string(event, "_subject"), "citadel.audit.deny");
    json_decref(events);
}

/* ---- tests --------------------------------------------------------------- */

Test(callout_e2e, admitted_workload_permissions)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, T.ca);
    write_cert("sensor", leaf);
    async_errors errors;
    async_errors_init(&errors);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("sensor", &errors, &nc);
    cr_assert_eq(status, NATS_OK, "connect: %s", natsStatus_GetText(status));

    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "sensor.data"), NATS_OK);
    cr_assert_eq(natsConnection_PublishString(nc, "sensor.data", "21.5"), NATS_OK);
    cr_assert_eq(natsSubscription_NextMsg(&msg, sub, 2000), NATS_OK);
    cr_assert_str_eq(natsMsg_GetData(msg), "21.5");
    natsMsg_Destroy(msg);

    cr_assert_eq(natsConnection_PublishString(nc, "forbidden.topic", "x"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    cr_assert(wait_async_errors(&errors, 1, 3000), "no error for a denied publish");
    cr_assert_eq(errors.last, NATS_NOT_PERMITTED);
    cr_assert_not_null(strstr(errors.text, "Permissions Violation for Publish"), "%s",
                       errors.text);

    natsSubscription *denied = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&denied, nc, "forbidden.>"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    cr_assert(wait_async_errors(&errors, 2, 3000), "no error for a denied subscription");
    cr_assert_not_null(strstr(errors.text, "Permissions Violation for Subscription"), "%s",
                       errors.text);

    json_t *events = read_audit_events(1);
    json_t *event = json_array_get(events, 0);
    cr_assert_str_eq(event_string(event, "decision"), "allow");
    cr_assert_str_eq(event_string(event, "reason"), "allowed by rule sensor");
    cr_assert_str_eq(event_string(event, "spiffe_id"), ID_SENSOR);
    cr_assert_str_eq(event_string(event, "account"), "APP");
    cr_assert_str_eq(event_string(event, "_subject"), "citadel.audit.allow");

    json_decref(events);
    natsSubscription_Destroy(denied);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    cc_test_cert_free(leaf);
}

Test(callout_e2e, user_jwt_exp_is_svid_not_after)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, T.ca);
    write_cert("sensor", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("sensor", NULL, &nc);
    cr_assert_eq(status, NATS_OK, "connect: %s", natsStatus_GetText(status));

    json_t *events = read_audit_events(1);
    json_t *event = json_array_get(events, 0);
    json_t *exp = json_object_get(event, "user_jwt_exp");
    json_t *not_after = json_object_get(json_object_get(event, "svid"), "not_after");
    cr_assert_eq(json_integer_value(exp), cert_not_after(leaf->cert));
    cr_assert_eq(json_integer_value(not_after), cert_not_after(leaf->cert));

    json_decref(events);
    natsConnection_Destroy(nc);
    cc_test_cert_free(leaf);
}

Test(callout_e2e, identity_without_policy_refused)
{
    cc_test_cert *leaf = issue_leaf(ID_UNLISTED, 3600, T.ca);
    write_cert("unlisted", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("unlisted", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    expect_single_deny("no_policy", "no policy for SPIFFE ID " ID_UNLISTED);
    cc_test_cert_free(leaf);
}

Test(callout_e2e, other_ca_refused)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, T.other_ca);
    write_cert("foreign", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("foreign", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    expect_single_deny("x509svid_invalid", "X509-SVID \"" ID_SENSOR "\" rejected: ");
    cc_test_cert_free(leaf);
}

/* With verify: true the TLS handshake already fails without a client
 * certificate, so the callout never receives a request for the client. */
Test(callout_e2e, client_without_certificate_refused)
{
    natsConnection *nc = NULL;

    natsStatus status = connect_workload(NULL, NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = read_audit_events(0);
    json_decref(events);
}

/* nats-server checks the validity period itself during the TLS handshake
 * (verify: true), so an expired SVID never reaches the callout and leaves no
 * audit event. The decision unit tests cover the service's own expiry check. */
Test(callout_e2e, expired_svid_refused_by_tls)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_SENSOR);
    spec.not_before_offset = -7200;
    spec.not_after_offset = -60;
    cc_test_cert *leaf = cc_test_cert_issue(&spec, T.ca);
    cr_assert_not_null(leaf);
    write_cert("expired", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("expired", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = read_audit_events(0);
    json_decref(events);
    cc_test_cert_free(leaf);
}

Test(callout_e2e_xkey, sealed_callout_admits)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, T.ca);
    write_cert("sensor", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("sensor", NULL, &nc);
    cr_assert_eq(status, NATS_OK, "connect: %s", natsStatus_GetText(status));

    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "sensor.data"), NATS_OK);
    cr_assert_eq(natsConnection_PublishString(nc, "sensor.data", "sealed"), NATS_OK);
    cr_assert_eq(natsSubscription_NextMsg(&msg, sub, 2000), NATS_OK);
    natsMsg_Destroy(msg);

    json_t *events = read_audit_events(1);
    json_t *event = json_array_get(events, 0);
    cr_assert_str_eq(event_string(event, "decision"), "allow");
    cr_assert(json_is_true(json_object_get(event, "encrypted")));
    json_t *exp = json_object_get(event, "user_jwt_exp");
    cr_assert_eq(json_integer_value(exp), cert_not_after(leaf->cert));

    json_decref(events);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    cc_test_cert_free(leaf);
}

Test(callout_e2e_xkey, sealed_callout_denies)
{
    cc_test_cert *leaf = issue_leaf(ID_UNLISTED, 3600, T.ca);
    write_cert("unlisted", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("unlisted", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = read_audit_events(1);
    json_t *event = json_array_get(events, 0);
    cr_assert_str_eq(event_string(event, "code"), "no_policy");
    cr_assert(json_is_true(json_object_get(event, "encrypted")));

    json_decref(events);
    cc_test_cert_free(leaf);
}

Test(callout_e2e_no_verify, client_without_certificate_refused)
{
    natsConnection *nc = NULL;

    natsStatus status = connect_workload(NULL, NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    expect_single_deny("no_credential", "no client certificate");
}
