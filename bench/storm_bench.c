/* Benchmark of a reconnect storm: K TLS clients with X509-SVIDs connect at
 * once to a real nats-server on 127.0.0.1. The time until the last one is
 * admitted is compared with the same storm against a server without auth
 * callout, measured in the same run.
 *
 * Targets, all running at the same time and sharing one PKI:
 *   no callout: tls { verify: true } and no authorization block, so a client
 *               is admitted once the TLS handshake and CONNECT are done
 *   callout wN: the same TLS block plus authorization.auth_callout, served
 *               by `citadel-callout serve` ($CITADEL_BIN) with N workers
 * Clients present leaf + intermediate (P-256, one leaf per client, all for
 * one SPIFFE ID), and the servers trust the root. The service verifies the
 * chain against the same root and writes one audit event per decision to
 * JetStream, as in production.
 *
 * Each client runs in its own thread with its nats.c options and TLS context
 * prepared beforehand. All threads wait on one barrier and then call
 * natsConnection_Connect(), which returns once the server accepted CONNECT
 * and answered PING, so success means admitted. Admission time is the last
 * success minus the first start. Rounds interleave the targets, and the
 * report gives medians over rounds and the median of the per-round ratios
 * callout / no callout. The CPU time that nats-server and the service used
 * during each storm is reported too, because it depends less than wall time
 * on other load on the machine.
 *
 * Usage: storm_bench [CLIENTS [ROUNDS]], CLIENTS 1..MAX_CLIENTS (default
 * 100), ROUNDS 1..MAX_ROUNDS (default 7). */
#define _GNU_SOURCE /* asprintf */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "citadel/nkey.h"
#include "../tests/support/natsserver.h"
#include "../tests/support/pki.h"

#define DEFAULT_CLIENTS 100
#define MAX_CLIENTS 200
#define DEFAULT_ROUNDS 7
#define MAX_ROUNDS 9
#define CONNECT_TIMEOUT_MS 20000
/* Pause between storms, so connections from the last one are closed and the
 * service's audit publisher is idle again. */
#define SETTLE_MS 500
#define SERVICE_READY_TIMEOUT_MS 15000
/* No new round starts after this much wall time, so a slow machine still
 * finishes in about a minute. */
#define TIME_BUDGET_SECONDS 45.0

#define ID_CLIENT "spiffe://citadel.test/app/sensor"
#define ID_SERVICE "spiffe://citadel.test/callout"
#define TARGET_COUNT 3

static const char policy_json[] =
    "{\"rules\": [{\"name\": \"sensor\", \"spiffe_id\": \"" ID_CLIENT "\",\n"
    "  \"publish\": {\"allow\": [\"sensor.>\"]},\n"
    "  \"subscribe\": {\"allow\": [\"sensor.>\", \"_INBOX.>\"]}}]}\n";

/* ---- helpers ------------------------------------------------------------- */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "storm_bench: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    exit(1);
}

static void *checked(void *pointer, const char *what)
{
    if (pointer == NULL)
        die(what, "failed");
    return pointer;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns a malloc'd formatted string (caller frees). */
static char *format(const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("formatting a string", NULL);
    return out;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- PKI ----------------------------------------------------------------- */

/* Certificates and keys in one directory, shared by every target. */
typedef struct pki {
    char *dir;
    cc_test_cert *root;
    cc_test_cert *intermediate;
} pki;

static void write_cert(const pki *p, const char *name, const cc_test_cert *cert,
                       const cc_test_cert *issuer)
{
    char *cert_path = format("%s/%s.pem", p->dir, name);
    char *key_path = format("%s/%s.key", p->dir, name);
    X509 *chain[2] = {cert->cert, issuer != NULL ? issuer->cert : NULL};
    if (cc_test_write_chain_pem(cert_path, chain, issuer != NULL ? 2 : 1) != 0 ||
        cc_test_write_key_pem(key_path, cert->key) != 0)
        die("cannot write certificate", name);
    free(cert_path);
    free(key_path);
}

/* Writes root.pem, server.pem/.key, service.pem/.key and client-N.pem/.key,
 * where each client file contains the leaf and the intermediate. */
static void pki_create(pki *p, int client_count)
{
    p->dir = checked(cc_test_tempdir("storm-bench"), "creating a temp directory");

    cc_test_cert_spec root_spec = cc_test_spec_ca("citadel storm root");
    p->root = checked(cc_test_cert_issue(&root_spec, NULL), "issuing the root");
    cc_test_cert_spec intermediate_spec = cc_test_spec_ca("citadel storm intermediate");
    p->intermediate =
        checked(cc_test_cert_issue(&intermediate_spec, p->root), "issuing the intermediate");
    char *root_path = format("%s/root.pem", p->dir);
    X509 *roots[1] = {p->root->cert};
    if (cc_test_write_chain_pem(root_path, roots, 1) != 0)
        die("cannot write", root_path);
    free(root_path);

    cc_test_cert_spec server_spec = cc_test_spec_leaf(NULL);
    server_spec.common_name = "nats-server";
    server_spec.ips[0] = "127.0.0.1";
    cc_test_cert *server = checked(cc_test_cert_issue(&server_spec, p->root), "server cert");
    write_cert(p, "server", server, NULL);
    cc_test_cert_free(server);

    cc_test_cert_spec service_spec = cc_test_spec_leaf(ID_SERVICE);
    cc_test_cert *service = checked(cc_test_cert_issue(&service_spec, p->root), "service cert");
    write_cert(p, "service", service, NULL);
    cc_test_cert_free(service);

    for (int i = 0; i < client_count; i++) {
        cc_test_cert_spec client_spec = cc_test_spec_leaf(ID_CLIENT);
        cc_test_cert *client =
            checked(cc_test_cert_issue(&client_spec, p->intermediate), "client cert");
        char name[32];
        snprintf(name, sizeof(name), "client-%d", i);
        write_cert(p, name, client, p->intermediate);
        cc_test_cert_free(client);
    }
}

static void pki_free(pki *p)
{
    cc_test_cert_free(p->root);
    cc_test_cert_free(p->intermediate);
    cc_test_remove_tree(p->dir);
    free(p->dir);
    memset(p, 0, sizeof(*p));
}

/* ---- targets ------------------------------------------------------------- */

typedef struct target {
    char name[32];
    int workers; /* 0: no auth callout, no service */
    cc_test_nats_server *server;
    pid_t service_pid;
    cc_nkey issuer;
    char password[33];

    double admission[MAX_ROUNDS]; /* seconds, per round */
    double p50[MAX_ROUNDS];
    double p99[MAX_ROUNDS];
    double cpu[MAX_ROUNDS];         /* CPU seconds of nats-server and the service, per round */
    double service_cpu[MAX_ROUNDS]; /* the service's share of cpu */
    int failures;                   /* clients not admitted, over all rounds */
    char last_error[256];
} target;

static void random_hex(char *out, size_t bytes)
{
    uint8_t random[64];
    randombytes_buf(random, bytes);
    sodium_bin2hex(out, 2 * bytes + 1, random, bytes);
}

static char *server_config(const target *t, const pki *p)
{
    char *tls = format("tls {\n"
                       "  cert_file: \"%1$s/server.pem\"\n"
                       "  key_file: \"%1$s/server.key\"\n"
                       "  ca_file: \"%1$s/root.pem\"\n"
                       "  verify: true\n"
                       "  timeout: 10\n"
                       "}\n"
                       "jetstream { store_dir: \"%2$s/js\", max_mem: 64MB, max_file: 256MB }\n",
                       p->dir, cc_test_nats_server_dir(t->server));
    if (t->workers == 0)
        return tls;

    char issuer[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&t->issuer, issuer);
    char *config =
        format("%s"
               "accounts {\n"
               "  AUTH { jetstream: enabled, users: [ {user: auth, password: \"%s\"} ] }\n"
               "  APP { }\n"
               "}\n"
               "authorization {\n"
               "  timeout: 10\n"
               "  auth_callout { issuer: \"%s\", auth_users: [ auth ], account: AUTH }\n"
               "}\n",
               tls, t->password, issuer);
    free(tls);
    return config;
}

/* Writes dir/name with mode 0600, as the service requires for secrets. */
static void write_private(const target *t, const char *name, const char *text)
{
    cc_err err = {0};
    if (cc_test_nats_server_write_file(t->server, name, text, NULL, &err) != CC_OK)
        die("cannot write a service file", err.message);
}

static void write_service_files(const target *t, const pki *p)
{
    char seed[CC_NKEY_SEED_LEN + 1];
    cc_nkey_seed_string(&t->issuer, seed);
    char *text = format("%s\n", seed);
    write_private(t, "issuer.seed", text);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(text, strlen(text));
    free(text);

    text = format("%s\n", t->password);
    write_private(t, "auth.pass", text);
    free(text);

    char *path = format("%s/policies", cc_test_nats_server_dir(t->server));
    if (mkdir(path, 0700) != 0)
        die("cannot create", path);
    free(path);
    write_private(t, "policies/sensor.json", policy_json);

    text = format("{\n"
                  "  \"nats\": {\n"
                  "    \"servers\": [\"tls://127.0.0.1:%1$d\"],\n"
                  "    \"user\": \"auth\",\n"
                  "    \"password_file\": \"auth.pass\",\n"
                  "    \"tls\": {\"ca_file\": \"%2$s/root.pem\", \"cert_file\": "
                  "\"%2$s/service.pem\",\n"
                  "            \"key_file\": \"%2$s/service.key\"}\n"
                  "  },\n"
                  "  \"issuer_seed_file\": \"issuer.seed\",\n"
                  "  \"default_account\": \"APP\",\n"
                  "  \"max_ttl_seconds\": 3600,\n"
                  "  \"trust_domains\": [{\"name\": \"citadel.test\", \"bundle_pem\": "
                  "\"%2$s/root.pem\"}],\n"
                  "  \"policy_dir\": \"policies\",\n"
                  "  \"audit\": {\"stream\": \"CITADEL_AUDIT\", \"subject_prefix\": "
                  "\"citadel.audit\"},\n"
                  "  \"workers\": %3$d,\n"
                  "  \"log_level\": \"info\"\n"
                  "}\n",
                  cc_test_nats_server_port(t->server), p->dir, t->workers);
    write_private(t, "service.json", text);
    free(text);
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

/* Starts `citadel-callout serve` and waits until it has subscribed. */
static void start_service(target *t)
{
    const char *bin = getenv("CITADEL_BIN");
    if (bin == NULL)
        die("CITADEL_BIN must name the citadel-callout binary",
            "run the benchmark with make bench");
    const char *dir = cc_test_nats_server_dir(t->server);
    char *config = format("%s/service.json", dir);
    char *log = format("%s/service.log", dir);

    pid_t pid = fork();
    if (pid < 0)
        die("fork failed", NULL);
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
    t->service_pid = pid;

    bool ready = false;
    for (int waited = 0; !ready && waited < SERVICE_READY_TIMEOUT_MS; waited += 50) {
        ready = file_contains(log, "\"event\":\"subscribed\"");
        if (!ready && waitpid(pid, NULL, WNOHANG) == pid)
            die("citadel-callout exited during start, see its log", log);
        if (!ready)
            sleep_ms(50);
    }
    if (!ready)
        die("citadel-callout did not log \"subscribed\" in time, see its log", log);
    /* The SUB may still be on its way to the server when the line appears. */
    sleep_ms(200);
    free(config);
    free(log);
}

static void stop_service(target *t)
{
    if (t->service_pid <= 0)
        return;
    kill(t->service_pid, SIGTERM);
    for (int waited = 0; waited < 5000; waited += 50) {
        if (waitpid(t->service_pid, NULL, WNOHANG) == t->service_pid) {
            t->service_pid = 0;
            return;
        }
        sleep_ms(50);
    }
    kill(t->service_pid, SIGKILL);
    waitpid(t->service_pid, NULL, 0);
    t->service_pid = 0;
}

static void target_start(target *t, const pki *p, int workers)
{
    memset(t, 0, sizeof(*t));
    t->workers = workers;
    if (workers == 0)
        snprintf(t->name, sizeof(t->name), "no callout");
    else
        snprintf(t->name, sizeof(t->name), "callout w%d", workers);

    cc_err err = {0};
    t->server = cc_test_nats_server_new(&err);
    if (t->server == NULL)
        die("cannot create the server directory", err.message);
    if (cc_nkey_generate(CC_NKEY_ACCOUNT, &t->issuer, &err) != CC_OK)
        die("cannot generate the issuer key", err.message);
    random_hex(t->password, 16);

    char *config = server_config(t, p);
    if (cc_test_nats_server_start(t->server, config, &err) != CC_OK) {
        char *log = cc_test_nats_server_log(t->server);
        fprintf(stderr, "nats-server log:\n%s\n", log != NULL ? log : "(none)");
        die("nats-server did not start", err.message);
    }
    free(config);

    if (workers > 0) {
        write_service_files(t, p);
        start_service(t);
    }
}

static void target_stop(target *t)
{
    stop_service(t);
    cc_test_nats_server_stop(t->server);
    t->server = NULL;
    cc_nkey_wipe(&t->issuer);
}

/* Targets and PKI to clean up when the program exits early through die(). */
static target *running_targets;
static pki *running_pki;

static void cleanup_at_exit(void)
{
    for (int i = 0; running_targets != NULL && i < TARGET_COUNT; i++) {
        if (running_targets[i].server != NULL)
            target_stop(&running_targets[i]);
    }
    if (running_pki != NULL && running_pki->dir != NULL)
        pki_free(running_pki);
}

/* ---- storm --------------------------------------------------------------- */

typedef struct client {
    natsOptions *opts;
    pthread_barrier_t *barrier;
    double start;
    double end;
    natsStatus status;
    natsConnection *nc;
} client;

/* Returns options for client index with its TLS context loaded. The URL is
 * set per storm, so one set of options serves every target. */
static natsOptions *client_options(const pki *p, int index)
{
    natsOptions *opts = NULL;
    char *ca = format("%s/root.pem", p->dir);
    char *cert = format("%s/client-%d.pem", p->dir, index);
    char *key = format("%s/client-%d.key", p->dir, index);

    if (natsOptions_Create(&opts) != NATS_OK ||
        natsOptions_SetTimeout(opts, CONNECT_TIMEOUT_MS) != NATS_OK ||
        natsOptions_SetAllowReconnect(opts, false) != NATS_OK ||
        natsOptions_SetSecure(opts, true) != NATS_OK ||
        natsOptions_LoadCATrustedCertificates(opts, ca) != NATS_OK ||
        natsOptions_LoadCertificatesChain(opts, cert, key) != NATS_OK)
        die("cannot prepare client options", nats_GetLastError(NULL));

    free(ca);
    free(cert);
    free(key);
    return opts;
}

static void *client_main(void *arg)
{
    client *c = arg;
    pthread_barrier_wait(c->barrier);
    c->start = now_seconds();
    c->status = natsConnection_Connect(&c->nc, c->opts);
    c->end = now_seconds();
    return NULL;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Returns the nearest-rank percentile of sorted[0..count). */
static double percentile(const double *sorted, int count, double fraction)
{
    int rank = (int)(fraction * count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return sorted[rank - 1];
}

/* Returns the user plus system CPU seconds that process pid has used, from
 * fields 14 and 15 of /proc/PID/stat (clock ticks, often 10 ms each). */
static double process_cpu_seconds(pid_t pid)
{
    char path[64];
    char line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    if (file == NULL || fgets(line, sizeof(line), file) == NULL)
        die("cannot read", path);
    fclose(file);

    /* The command name in field 2 may contain spaces, so count from its ')'. */
    const char *fields = strrchr(line, ')');
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    if (fields == NULL ||
        sscanf(fields + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
        die("cannot parse", path);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Returns the CPU seconds used so far by t's service, 0 without one. */
static double service_cpu_seconds(const target *t)
{
    return t->service_pid > 0 ? process_cpu_seconds(t->service_pid) : 0;
}

/* Connects every client to t at once and records round r. The CPU time
 * includes SETTLE_MS after the storm, so that closing the connections and
 * publishing the audit events count too. */
static void run_storm(target *t, client *clients, int count, int round)
{
    double server_before = process_cpu_seconds(cc_test_nats_server_pid(t->server));
    double service_before = service_cpu_seconds(t);
    pthread_t *threads = checked(calloc((size_t)count, sizeof(pthread_t)), "calloc");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)count);

    char *url = format("nats://127.0.0.1:%d", cc_test_nats_server_port(t->server));
    for (int i = 0; i < count; i++) {
        if (natsOptions_SetURL(clients[i].opts, url) != NATS_OK)
            die("cannot set the client URL", url);
        clients[i].barrier = &barrier;
        clients[i].nc = NULL;
    }
    free(url);
    for (int i = 0; i < count; i++) {
        if (pthread_create(&threads[i], NULL, client_main, &clients[i]) != 0)
            die("cannot start a client thread", NULL);
    }
    for (int i = 0; i < count; i++)
        pthread_join(threads[i], NULL);

    double first_start = clients[0].start;
    double last_end = clients[0].end;
    double *latency = checked(calloc((size_t)count, sizeof(double)), "calloc");
    int admitted = 0;
    for (int i = 0; i < count; i++) {
        client *c = &clients[i];
        if (c->start < first_start)
            first_start = c->start;
        if (c->status != NATS_OK) {
            t->failures++;
            snprintf(t->last_error, sizeof(t->last_error), "%s", natsStatus_GetText(c->status));
            continue;
        }
        if (c->end > last_end)
            last_end = c->end;
        latency[admitted++] = c->end - c->start;
    }
    qsort(latency, (size_t)admitted, sizeof(double), compare_doubles);
    t->admission[round] = last_end - first_start;
    t->p50[round] = admitted > 0 ? percentile(latency, admitted, 0.50) : 0;
    t->p99[round] = admitted > 0 ? percentile(latency, admitted, 0.99) : 0;

    for (int i = 0; i < count; i++) {
        natsConnection_Destroy(clients[i].nc);
        clients[i].nc = NULL;
    }
    pthread_barrier_destroy(&barrier);
    free(latency);
    free(threads);

    sleep_ms(SETTLE_MS);
    t->service_cpu[round] = service_cpu_seconds(t) - service_before;
    t->cpu[round] = process_cpu_seconds(cc_test_nats_server_pid(t->server)) - server_before +
                    t->service_cpu[round];
}

/* ---- report -------------------------------------------------------------- */

static double median(const double *values, int count)
{
    double sorted[MAX_ROUNDS];
    memcpy(sorted, values, (size_t)count * sizeof(double));
    qsort(sorted, (size_t)count, sizeof(double), compare_doubles);
    return count % 2 == 1 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2;
}

/* Returns the median over rounds of values[r] / base[r], and the range. */
static double median_ratio(const double *values, const double *base, int rounds, double *low,
                           double *high)
{
    double ratios[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        ratios[r] = values[r] / base[r];
    qsort(ratios, (size_t)rounds, sizeof(double), compare_doubles);
    *low = ratios[0];
    *high = ratios[rounds - 1];
    return median(ratios, rounds);
}

static void print_report(const target *targets, int rounds, int clients)
{
    const target *base = &targets[0];
    printf("storm_bench: %d clients at once, %d rounds, medians over rounds\n", clients, rounds);
    printf("%-12s %8s %7s %7s %7s %7s  %-19s %s\n", "target", "admit ms", "p50 ms", "p99 ms",
           "CPU ms", "service", "admit vs no callout", "CPU vs no callout");
    for (int i = 0; i < TARGET_COUNT; i++) {
        const target *t = &targets[i];
        printf("%-12s %8.1f %7.1f %7.1f %7.0f %7.0f", t->name, 1e3 * median(t->admission, rounds),
               1e3 * median(t->p50, rounds), 1e3 * median(t->p99, rounds),
               1e3 * median(t->cpu, rounds), 1e3 * median(t->service_cpu, rounds));
        if (t != base) {
            double low = 0;
            double high = 0;
            double admission = median_ratio(t->admission, base->admission, rounds, &low, &high);
            char range[32];
            snprintf(range, sizeof(range), "%.2fx (%.2f-%.2f)", admission, low, high);
            double cpu = median_ratio(t->cpu, base->cpu, rounds, &low, &high);
            printf("  %-19s %.2fx (%.2f-%.2f)", range, cpu, low, high);
        }
        printf("\n");
        if (t->failures > 0)
            printf("  %d connects failed, last error: %s\n", t->failures, t->last_error);
    }
    printf("CPU ms: nats-server plus citadel-callout (service: its share), from the storm start\n"
           "to %d ms after it\n",
           SETTLE_MS);
}

static int parse_count(const char *text, int max, const char *what)
{
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < 1 || value > max) {
        fprintf(stderr, "storm_bench: %s \"%s\" is invalid; use 1 to %d\n", what, text, max);
        exit(2);
    }
    return (int)value;
}

int main(int argc, char **argv)
{
    int clients = argc > 1 ? parse_count(argv[1], MAX_CLIENTS, "CLIENTS") : DEFAULT_CLIENTS;
    int rounds = argc > 2 ? parse_count(argv[2], MAX_ROUNDS, "ROUNDS") : DEFAULT_ROUNDS;
    if (sodium_init() < 0)
        die("libsodium failed to initialise", NULL);

    static pki p;
    static target targets[TARGET_COUNT];
    running_pki = &p;
    running_targets = targets;
    atexit(cleanup_at_exit);

    pki_create(&p, clients);
    const int workers[TARGET_COUNT] = {0, 1, 4};
    for (int i = 0; i < TARGET_COUNT; i++)
        target_start(&targets[i], &p, workers[i]);
    client *client_list = checked(calloc((size_t)clients, sizeof(client)), "calloc");
    for (int i = 0; i < clients; i++)
        client_list[i].opts = client_options(&p, i);

    double started = now_seconds();
    int done = 0;
    while (done < rounds && now_seconds() - started < TIME_BUDGET_SECONDS) {
        for (int i = 0; i < TARGET_COUNT; i++) {
            run_storm(&targets[i], client_list, clients, done);
        }
        done++;
    }

    print_report(targets, done, clients);
    for (int i = 0; i < clients; i++)
        natsOptions_Destroy(client_list[i].opts);
    free(client_list);
    cleanup_at_exit();
    /* No nats_Close(): after TLS connections, nats_Close() of nats.c 3.4.1
     * made OPENSSL_cleanup() crash at process exit in the integration tests. */
    return 0;
}
