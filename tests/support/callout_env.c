/* End-to-end callout test environment. See callout_env.h for the layout.
 *
 * The service runs as a forked child with stdout and stderr in service.log.
 * Readiness and reloads are read from that log, which the service writes as
 * JSON lines, so the helpers parse lines instead of matching raw text. */
#define _GNU_SOURCE /* asprintf */
#include "callout_env.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERVICE_READY_TIMEOUT_MS 15000
#define SERVICE_STOP_TIMEOUT_MS 5000
#define AUDIT_WAIT_MS 10000
#define AUDIT_GRACE_MS 500

void cc_test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- files --------------------------------------------------------------- */

char *cc_test_env_path(const cc_test_env *env, const char *name)
{
    char *path = NULL;
    cr_assert_gt(asprintf(&path, "%s/%s", env->dir, name), 0);
    return path;
}

void cc_test_env_write(const cc_test_env *env, const char *name, const char *content)
{
    cc_err err = {0};
    cr_assert_eq(cc_test_nats_server_write_file(env->server, name, content, NULL, &err), CC_OK,
                 "%s", err.message);
}

void cc_test_env_replace(const cc_test_env *env, const char *name, const char *content)
{
    char *temp_name = NULL;
    cr_assert_gt(asprintf(&temp_name, "%s.new", name), 0);
    cc_test_env_write(env, temp_name, content);

    char *temp_path = cc_test_env_path(env, temp_name);
    char *path = cc_test_env_path(env, name);
    cr_assert_eq(rename(temp_path, path), 0, "rename %s: %s", temp_path, strerror(errno));
    free(temp_path);
    free(path);
    free(temp_name);
}

void cc_test_env_write_certs(const cc_test_env *env, const char *name, X509 *const *certs,
                             size_t count)
{
    char *path = cc_test_env_path(env, name);
    cr_assert_eq(cc_test_write_chain_pem(path, certs, count), 0, "writing %s", path);
    free(path);
}

void cc_test_env_write_cert(const cc_test_env *env, const char *name, const cc_test_cert *cert)
{
    char file[256];
    snprintf(file, sizeof(file), "%s.pem", name);
    X509 *chain[1] = {cert->cert};
    cc_test_env_write_certs(env, file, chain, 1);

    snprintf(file, sizeof(file), "%s.key", name);
    char *path = cc_test_env_path(env, file);
    cr_assert_eq(cc_test_write_key_pem(path, cert->key), 0, "writing %s", path);
    free(path);
}

void cc_test_env_write_seed(const cc_test_env *env, const char *name, const cc_nkey *key)
{
    char seed[CC_NKEY_SEED_LEN + 2];
    cc_nkey_seed_string(key, seed);
    strcat(seed, "\n");
    cc_test_env_write(env, name, seed);
}

/* ---- setup and cleanup --------------------------------------------------- */

static void random_hex(char *out, size_t bytes)
{
    uint8_t random[64];
    cr_assert_leq(bytes, sizeof(random));
    FILE *urandom = fopen("/dev/urandom", "r");
    cr_assert_not_null(urandom);
    cr_assert_eq(fread(random, 1, bytes, urandom), bytes);
    fclose(urandom);
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", random[i]);
}

void cc_test_env_init(cc_test_env *env)
{
    memset(env, 0, sizeof(*env));
    cc_err err = {0};
    env->server = cc_test_nats_server_new(&err);
    cr_assert_not_null(env->server, "%s", err.message);
    env->dir = cc_test_nats_server_dir(env->server);

    random_hex(env->password, (sizeof(env->password) - 1) / 2);
    char password_line[sizeof(env->password) + 1];
    snprintf(password_line, sizeof(password_line), "%s\n", env->password);
    cc_test_env_write(env, "auth.pass", password_line);

    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &env->issuer, NULL), CC_OK);
    cc_test_env_write_seed(env, "issuer.seed", &env->issuer);

    char *policies = cc_test_env_path(env, "policies");
    cr_assert_eq(mkdir(policies, 0700), 0);
    free(policies);
}

void cc_test_env_cleanup(cc_test_env *env)
{
    cc_test_env_stop_service(env);
    cc_test_nats_server_stop(env->server);
    env->server = NULL;
    env->dir = NULL;
    cc_nkey_wipe(&env->issuer);
    /* No nats_Close() here. Criterion initializes OpenSSL before nats.c, so
     * after nats_Close() the two exit handlers free OpenSSL's compression
     * method list twice (see cc_service_init_openssl()). */
}

/* ---- nats-server --------------------------------------------------------- */

void cc_test_env_start_server(cc_test_env *env, const char *clients_ca)
{
    cc_test_env_start_server_mode(env, clients_ca, NULL, true);
}

void cc_test_env_start_server_mode(cc_test_env *env, const char *clients_ca,
                                   const cc_nkey *callout_xkey, bool verify)
{
    char issuer[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&env->issuer, issuer);

    char xkey_line[128] = "";
    if (callout_xkey != NULL) {
        char xkey[CC_NKEY_PUBLIC_LEN + 1];
        cc_nkey_public_string(callout_xkey, xkey);
        snprintf(xkey_line, sizeof(xkey_line), "    xkey: \"%s\"\n", xkey);
    }

    const char *verify_text = verify ? "true" : "false";
    char *config = NULL;
    int n = asprintf(&config,
                     "tls {\n"
                     "  cert_file: \"%1$s/server.pem\"\n"
                     "  key_file: \"%1$s/server.key\"\n"
                     "  ca_file: \"%1$s/%4$s\"\n"
                     "  verify: %6$s\n"
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
                     "%5$s"
                     "  }\n"
                     "}\n",
                     env->dir, env->password, issuer, clients_ca, xkey_line, verify_text);
    cr_assert_gt(n, 0);

    cc_err err = {0};
    cc_status st = cc_test_nats_server_start(env->server, config, &err);
    if (st != CC_OK) {
        char *log = cc_test_nats_server_log(env->server);
        cr_log_error("nats-server log:\n%s", log != NULL ? log : "(none)");
        free(log);
    }
    cr_assert_eq(st, CC_OK, "%s", err.message);
    free(config);
}

/* ---- service log ----------------------------------------------------------- */

void cc_test_env_print_service_log(const cc_test_env *env)
{
    char *path = cc_test_env_path(env, "service.log");
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        cr_log_error("cannot open %s", path);
        free(path);
        return;
    }
    char line[8192];
    while (fgets(line, sizeof(line), file) != NULL)
        fputs(line, stderr);
    fclose(file);
    free(path);
}

/* Counts the lines of service.log whose "event" is event. When last is not
 * NULL, it receives the last of them (caller decrefs). */
static int scan_log(const cc_test_env *env, const char *event, json_t **last)
{
    char *path = cc_test_env_path(env, "service.log");
    FILE *file = fopen(path, "r");
    free(path);
    if (last != NULL)
        *last = NULL;
    if (file == NULL)
        return 0;

    int count = 0;
    char line[16384];
    while (fgets(line, sizeof(line), file) != NULL) {
        json_t *entry = json_loads(line, 0, NULL);
        const char *name = json_string_value(json_object_get(entry, "event"));
        if (name == NULL || strcmp(name, event) != 0) {
            json_decref(entry);
            continue;
        }
        count++;
        if (last != NULL) {
            json_decref(*last);
            *last = entry;
        } else {
            json_decref(entry);
        }
    }
    fclose(file);
    return count;
}

int cc_test_env_count_log_events(const cc_test_env *env, const char *event)
{
    return scan_log(env, event, NULL);
}

json_t *cc_test_env_wait_log_event(const cc_test_env *env, const char *event, int count,
                                   int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        json_t *last = NULL;
        if (scan_log(env, event, &last) >= count)
            return last;
        json_decref(last);
        cc_test_sleep_ms(50);
    }
    return NULL;
}

/* ---- citadel-callout ----------------------------------------------------- */

void cc_test_env_start_service(cc_test_env *env)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin, "CITADEL_BIN must name the citadel-callout binary");
    char *config = cc_test_env_path(env, "service.json");
    char *log = cc_test_env_path(env, "service.log");

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        /* glibc fills freed memory, so a use after free fails every time. */
        setenv("MALLOC_PERTURB_", "165", 1);
        execl(bin, bin, "serve", "--config", config, (char *)NULL);
        _exit(127);
    }
    env->service_pid = pid;
    free(config);
    free(log);

    /* The service logs "subscribed" once $SYS.REQ.USER.AUTH is subscribed.
     * Callouts sent before that would time out. */
    bool ready = false;
    for (int waited = 0; !ready && waited < SERVICE_READY_TIMEOUT_MS; waited += 50) {
        ready = cc_test_env_count_log_events(env, "subscribed") > 0;
        int status;
        if (!ready && waitpid(pid, &status, WNOHANG) == pid) {
            env->service_pid = 0;
            break;
        }
        if (!ready)
            cc_test_sleep_ms(50);
    }
    if (!ready)
        cc_test_env_print_service_log(env);
    cr_assert(ready, "citadel-callout did not log \"subscribed\" within %d ms",
              SERVICE_READY_TIMEOUT_MS);
    /* The SUB may still be on its way to the server when the line appears. */
    cc_test_sleep_ms(200);
}

bool cc_test_env_service_log_has_sanitizer_report(const cc_test_env *env)
{
    char *path = cc_test_env_path(env, "service.log");
    FILE *file = fopen(path, "r");
    free(path);
    if (file == NULL)
        return false;

    bool found = false;
    char line[16384];
    while (!found && fgets(line, sizeof(line), file) != NULL)
        found = strstr(line, "ERROR: LeakSanitizer") != NULL ||
                strstr(line, "ERROR: AddressSanitizer") != NULL ||
                strstr(line, "runtime error:") != NULL;
    fclose(file);
    return found;
}

int cc_test_env_stop_service(cc_test_env *env)
{
    if (env->service_pid <= 0)
        return -1;
    kill(env->service_pid, SIGTERM);
    int status = -1;
    for (int waited = 0; status == -1 && waited < SERVICE_STOP_TIMEOUT_MS; waited += 50) {
        if (waitpid(env->service_pid, &status, WNOHANG) != env->service_pid) {
            status = -1;
            cc_test_sleep_ms(50);
        }
    }
    if (status == -1) {
        kill(env->service_pid, SIGKILL);
        waitpid(env->service_pid, NULL, 0);
    }
    env->service_pid = 0;

    /* The service's stderr goes to service.log, out of sight of
     * scripts/run-suite.sh, which scans only the test binary's output for
     * sanitizer reports. Copying the log to stderr lets it see them. */
    if (cc_test_env_service_log_has_sanitizer_report(env)) {
        fprintf(stderr, "citadel-callout reported sanitizer errors; its log follows\n");
        cc_test_env_print_service_log(env);
    }
    return status;
}

void cc_test_env_signal_service(const cc_test_env *env, int signal_number)
{
    cr_assert_gt(env->service_pid, 0, "the service is not running");
    cr_assert_eq(kill(env->service_pid, signal_number), 0, "kill: %s", strerror(errno));
}

/* ---- workload clients ---------------------------------------------------- */

void cc_test_async_errors_init(cc_test_async_errors *errors)
{
    memset(errors, 0, sizeof(*errors));
    pthread_mutex_init(&errors->mutex, NULL);
    pthread_cond_init(&errors->cond, NULL);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus status,
                           void *closure)
{
    (void)sub;
    cc_test_async_errors *errors = closure;
    const char *text = NULL;
    natsConnection_GetLastError(nc, &text);

    pthread_mutex_lock(&errors->mutex);
    errors->count++;
    errors->last = status;
    snprintf(errors->text, sizeof(errors->text), "%s", text != NULL ? text : "");
    pthread_cond_broadcast(&errors->cond);
    pthread_mutex_unlock(&errors->mutex);
}

bool cc_test_async_errors_wait(cc_test_async_errors *errors, int count, int timeout_ms)
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

/* Creates TLS options for the env's server that trust ca.pem. */
static natsOptions *tls_options(const cc_test_env *env)
{
    natsOptions *opts = NULL;
    char *ca = cc_test_env_path(env, "ca.pem");
    cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(opts, cc_test_nats_server_url(env->server)), NATS_OK);
    cr_assert_eq(natsOptions_SetTimeout(opts, 5000), NATS_OK);
    cr_assert_eq(natsOptions_SetAllowReconnect(opts, false), NATS_OK);
    cr_assert_eq(natsOptions_SetSecure(opts, true), NATS_OK);
    cr_assert_eq(natsOptions_LoadCATrustedCertificates(opts, ca), NATS_OK);
    free(ca);
    return opts;
}

static void load_client_cert(const cc_test_env *env, natsOptions *opts, const char *name)
{
    char cert[256];
    char key[256];
    snprintf(cert, sizeof(cert), "%s.pem", name);
    snprintf(key, sizeof(key), "%s.key", name);
    char *cert_path = cc_test_env_path(env, cert);
    char *key_path = cc_test_env_path(env, key);
    cr_assert_eq(natsOptions_LoadCertificatesChain(opts, cert_path, key_path), NATS_OK);
    free(cert_path);
    free(key_path);
}

natsStatus cc_test_env_connect(const cc_test_env *env, const char *cert_name, const char *token,
                               cc_test_async_errors *errors, natsConnection **nc)
{
    natsOptions *opts = tls_options(env);
    if (errors != NULL)
        cr_assert_eq(natsOptions_SetErrorHandler(opts, on_async_error, errors), NATS_OK);
    if (cert_name != NULL)
        load_client_cert(env, opts, cert_name);
    if (token != NULL)
        cr_assert_eq(natsOptions_SetToken(opts, token), NATS_OK);

    natsStatus status = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return status;
}

/* Connects as the service's own user (listed in auth_users, so no callout)
 * with the service's certificate. */
static natsConnection *connect_auth_user(const cc_test_env *env)
{
    natsOptions *opts = tls_options(env);
    natsConnection *nc = NULL;
    cr_assert_eq(natsOptions_SetUserInfo(opts, "auth", env->password), NATS_OK);
    load_client_cert(env, opts, "service");

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
    if (js_GetStreamInfo(&info, js, CC_TEST_AUDIT_STREAM, NULL, &code) != NATS_OK)
        return 0;
    uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return count;
}

json_t *cc_test_env_read_audit(const cc_test_env *env, uint64_t expected)
{
    natsConnection *nc = connect_auth_user(env);
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);

    uint64_t count = 0;
    for (int waited = 0; waited < AUDIT_WAIT_MS; waited += 100) {
        count = audit_message_count(js);
        if (count >= expected)
            break;
        cc_test_sleep_ms(100);
    }
    cc_test_sleep_ms(AUDIT_GRACE_MS);
    count = audit_message_count(js);
    if (count != expected)
        cc_test_env_print_service_log(env);
    cr_assert_eq(count, expected, "audit stream holds %llu events, expected %llu",
                 (unsigned long long)count, (unsigned long long)expected);

    json_t *events = json_array();
    for (uint64_t seq = 1; seq <= count; seq++) {
        natsMsg *msg = NULL;
        jsErrCode code = 0;
        cr_assert_eq(js_GetMsg(&msg, js, CC_TEST_AUDIT_STREAM, seq, NULL, &code), NATS_OK);
        json_error_t error;
        json_t *event =
            json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, &error);
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

const char *cc_test_event_string(const json_t *event, const char *key)
{
    return json_string_value(json_object_get(event, key));
}
