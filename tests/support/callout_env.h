/* Test environment for end-to-end callout tests: a real nats-server 2.10
 * with auth_callout in config mode, the citadel-callout binary
 * ($CITADEL_BIN serve --config) as a child process, nats.c workload clients
 * over mutual TLS, and a reader for the JetStream audit stream.
 *
 * Everything lives in the nats-server harness's temp directory:
 *   issuer.seed, auth.pass   written by cc_test_env_init();
 *   policies/                created empty by cc_test_env_init();
 *   server.pem, server.key   the server's certificate, written by the test;
 *   ca.pem                   the CA that clients and the service use to
 *                            verify the server, written by the test;
 *   service.pem, service.key the service's client certificate, written by
 *                            the test;
 *   service.json             the service config, written by the test;
 *   service.log              the service's stderr, JSON lines.
 *
 * The server requires client certificates (tls { verify: true }) from the CA
 * file the test names, puts callout users into account APP and runs
 * JetStream in account AUTH for the audit stream.
 *
 * The helpers check their own steps with Criterion asserts, so call them only
 * from a test or its fixture, and from the test's main thread (the harness's
 * PR_SET_PDEATHSIG ties child processes to the thread that forks them). */
#ifndef CITADEL_TEST_CALLOUT_ENV_H
#define CITADEL_TEST_CALLOUT_ENV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <nats/nats.h>

#include "citadel/nkey.h"
#include "natsserver.h"
#include "pki.h"

/* Stream and subject prefix that service configs written for this
 * environment should use, so that the audit reader finds the events. */
#define CC_TEST_AUDIT_STREAM "CITADEL_AUDIT"
#define CC_TEST_AUDIT_PREFIX "citadel.audit"

typedef struct cc_test_env {
    cc_test_nats_server *server;
    const char *dir; /* borrowed from server */
    char password[33];
    cc_nkey issuer; /* auth_callout.issuer; its seed is in issuer.seed */
    pid_t service_pid;
} cc_test_env;

/* Asynchronous errors that one nats.c connection reported. */
typedef struct cc_test_async_errors {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int count;
    natsStatus last;
    char text[512];
} cc_test_async_errors;

/* Creates the directory, the callout user's password, the issuer key and the
 * policies directory. Starts nothing. */
void cc_test_env_init(cc_test_env *env);

/* Stops the service and the server, removes the directory and wipes the key. */
void cc_test_env_cleanup(cc_test_env *env);

/* Returns the malloc'd absolute path of name in the directory (caller frees). */
char *cc_test_env_path(const cc_test_env *env, const char *name);

/* Writes content to name in the directory (mode 0600). */
void cc_test_env_write(const cc_test_env *env, const char *name, const char *content);

/* Replaces name with content by writing a temp file and renaming it over
 * name, so that a reader never sees a partial file. */
void cc_test_env_replace(const cc_test_env *env, const char *name, const char *content);

/* Writes the seed of key and a newline to name (mode 0600). */
void cc_test_env_write_seed(const cc_test_env *env, const char *name, const cc_nkey *key);

/* Writes cert as NAME.pem and its key as NAME.key. */
void cc_test_env_write_cert(const cc_test_env *env, const char *name, const cc_test_cert *cert);

/* Writes the certificates as one PEM file called name. */
void cc_test_env_write_certs(const cc_test_env *env, const char *name, X509 *const *certs,
                             size_t count);

/* Starts nats-server with server.pem/server.key, client CAs from the file
 * clients_ca (a name in the directory), verify: true, JetStream, and
 * auth_callout with the env's issuer. */
void cc_test_env_start_server(cc_test_env *env, const char *clients_ca);

/* Starts nats-server as cc_test_env_start_server() does, with two changes.
 * When callout_xkey is not NULL, auth_callout.xkey is its public key, so the
 * server encrypts callout requests. When verify is false, the server sets
 * verify: false, so clients without a certificate reach the callout. */
void cc_test_env_start_server_mode(cc_test_env *env, const char *clients_ca,
                                   const cc_nkey *callout_xkey, bool verify);

/* Starts $CITADEL_BIN serve --config service.json with MALLOC_PERTURB_ set
 * (glibc then fills freed memory, so a use after free fails every time) and
 * waits until it logs "subscribed". */
void cc_test_env_start_service(cc_test_env *env);

/* Stops the service with SIGTERM (SIGKILL after 5 seconds) and returns its
 * wait status, or -1 when it was not running or had to be killed. When
 * service.log contains a sanitizer report, it is copied to stderr, where
 * scripts/run-suite.sh finds it. */
int cc_test_env_stop_service(cc_test_env *env);

/* Returns true when service.log contains a sanitizer report (LeakSanitizer,
 * AddressSanitizer or UBSan "runtime error:"). */
bool cc_test_env_service_log_has_sanitizer_report(const cc_test_env *env);

/* Sends signal_number to the running service. */
void cc_test_env_signal_service(const cc_test_env *env, int signal_number);

/* Counts the lines of service.log whose "event" is event. */
int cc_test_env_count_log_events(const cc_test_env *env, const char *event);

/* Waits until service.log has at least count lines with "event" event, and
 * returns the last of them (caller decrefs), or NULL after timeout_ms. */
json_t *cc_test_env_wait_log_event(const cc_test_env *env, const char *event, int count,
                                   int timeout_ms);

/* Copies service.log to stderr, to show the service's side of a failure. */
void cc_test_env_print_service_log(const cc_test_env *env);

void cc_test_async_errors_init(cc_test_async_errors *errors);

/* Waits until at least count errors arrived or timeout_ms passed. */
bool cc_test_async_errors_wait(cc_test_async_errors *errors, int count, int timeout_ms);

/* Connects a workload over TLS with the client certificate NAME.pem and
 * NAME.key (none when cert_name is NULL) and, when token is not NULL, that
 * connect token (auth_token in CONNECT). errors may be NULL. Returns what
 * natsConnection_Connect returned. */
natsStatus cc_test_env_connect(const cc_test_env *env, const char *cert_name, const char *token,
                               cc_test_async_errors *errors, natsConnection **nc);

/* Waits until the audit stream contains expected events, checks that no more
 * arrive within a short grace period, and returns them in stream order as a
 * JSON array (caller decrefs). Each event gets its subject as "_subject". */
json_t *cc_test_env_read_audit(const cc_test_env *env, uint64_t expected);

/* Returns the string member key of event, or NULL (borrowed). */
const char *cc_test_event_string(const json_t *event, const char *key);

void cc_test_sleep_ms(long ms);

#endif
