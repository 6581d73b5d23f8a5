/* The auth callout service: wiring between NATS, the decision pipeline and audit.
 *
 * Threads: nats.c delivers $SYS.REQ.USER.AUTH messages on its own callback
 * thread, which only appends them to the work queue (an unbounded FIFO, so
 * that the callback never waits). config->workers threads take messages from
 * the queue and run one decision each, so one slow request does not hold up
 * the others. The audit publisher and the bundle watcher have a thread each.
 *
 * Shared state: the policy set pointer is swapped under policy_lock and each
 * worker takes its own reference for one request, so a reload never changes a
 * set a request is using. The bundle watcher does the same for bundles.
 *
 * Shutdown order matters: drain the subscription (no new requests, the ones
 * already delivered still reach the queue), let the workers empty the queue
 * and exit, flush the audit queue, and only then close the connection that
 * the responses and audit events go out on. */
#include "citadel/service.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>
#include <openssl/crypto.h>

#include "citadel/audit.h"
#include "citadel/bundle_watch.h"
#include "citadel/certcache.h"
#include "citadel/decision.h"
#include "citadel/log.h"
#include "citadel/nkey.h"
#include "citadel/policy.h"
#include "citadel/xkey.h"

#define XKEY_HEADER "Nats-Server-Xkey"
#define DRAIN_TIMEOUT_MS 5000
#define SUBSCRIBE_FLUSH_TIMEOUT_MS 2000
#define CLOSED_CALLBACK_TIMEOUT_S 10
#define FINAL_FLUSH_TIMEOUT_MS 2000
#define AUDIT_FLUSH_TIMEOUT_MS 10000
#define RECONNECT_MAX_DELAY_MS 5000
#define RECONNECT_FIRST_DELAY_MS 250
#define CONNECT_HINT                                                                              \
    "check the URLs in nats.servers, that nats-server is running, and that its port is "          \
    "reachable from this host"
/* While the server is unreachable, at most one reconnect_failed line per interval. */
#define RECONNECT_LOG_INTERVAL_NS (10 * 1000000000LL)

typedef struct work_item {
    natsMsg *msg; /* owned */
    int64_t received_ns;
    struct work_item *next;
} work_item;

struct cc_service {
    cc_config *config; /* owned */
    cc_nkey issuer;
    cc_nkey xkey;
    bool has_xkey;
    cc_xkey_cache *xkey_cache; /* shared keys per server xkey, set with has_xkey */
    cc_certcache *cert_cache;  /* parsed client certificates, shared by the workers */

    pthread_mutex_t policy_lock;
    cc_policy_set *policies; /* one reference held by the service */
    cc_bundle_watcher *bundles;
    pthread_mutex_t reload_lock; /* serializes cc_service_reload() */

    natsConnection *nc;
    atomic_bool closing; /* set before our own close, so that it is not logged as a loss */
    pthread_mutex_t closed_lock;
    pthread_cond_t closed_cond;
    bool closed_seen; /* the closed callback ran: nats.c makes no more callbacks */
    natsSubscription *sub;
    atomic_bool sub_created;   /* sub exists, so nats.c sends it on every connect */
    atomic_bool sub_confirmed; /* "subscribed" was logged with a connected server */
    pthread_mutex_t reconnect_log_lock;
    int64_t reconnect_logged_ns;  /* when reconnect_failed was last logged; 0 = not yet */
    int reconnect_failures;       /* failed attempts since that line */
    cc_audit *audit;

    pthread_mutex_t queue_lock;
    pthread_cond_t queue_ready;
    work_item *queue_head;
    work_item *queue_tail;
    bool queue_closed; /* workers exit once the queue is empty */
    pthread_t *workers;
    int worker_count;
};

/* ---- helpers ---------------------------------------------------------- */

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void log_connection_event(cc_log_level level, const char *event, natsConnection *nc)
{
    char url[256] = "";
    json_t *fields = json_object();
    if (nc != NULL && natsConnection_GetConnectedUrl(nc, url, sizeof(url)) == NATS_OK &&
        url[0] != '\0')
        json_object_set_new(fields, "server", json_string(url));
    if (nc != NULL) {
        const char *last = NULL;
        natsStatus status = natsConnection_GetLastError(nc, &last);
        if (status != NATS_OK && last != NULL && level >= CC_LOG_WARN)
            json_object_set_new(fields, "error", json_string(last));
    }
    cc_log_json(level, event, fields);
}

/* Reports a failure to load a file the config names as CC_ERR_INVALID, so
 * that callers can tell a config problem from an operational one. Out of
 * memory and internal errors keep their status. */
static cc_status as_config_error(cc_status status, cc_err *err)
{
    if (status == CC_OK || status == CC_ERR_NOMEM || status == CC_ERR_INTERNAL)
        return status;
    if (err != NULL)
        err->status = CC_ERR_INVALID;
    return CC_ERR_INVALID;
}

/* Returns the configured server URLs as a JSON array, with any user and
 * password in a URL replaced by "***" so that no secret reaches the log. */
static json_t *server_urls_json(const cc_config *config)
{
    json_t *urls = json_array();
    for (size_t i = 0; i < config->nats.server_count; i++) {
        const char *url = config->nats.servers[i];
        const char *scheme_end = strstr(url, "://");
        const char *host = scheme_end != NULL ? scheme_end + 3 : url;
        const char *at = strchr(host, '@');
        const char *slash = strchr(host, '/');
        if (at == NULL || (slash != NULL && slash < at)) {
            json_array_append_new(urls, json_string(url));
            continue;
        }
        size_t size = strlen(url) + 4;
        char *redacted = malloc(size);
        if (redacted != NULL) {
            snprintf(redacted, size, "%.*s***%s", (int)(host - url), url, at);
            json_array_append_new(urls, json_string(redacted));
            free(redacted);
        }
    }
    return urls;
}

/* Returns nats.c's last error text for this thread, or the text of
 * NATS_NO_SERVER when it has none. NOTE: with RetryOnFailedConnect,
 * nats.c 3.4.1 records no per-attempt cause (such as a refused connection),
 * so "no server available" is often all there is; hence the hint in the logs. */
static const char *connect_error_text(void)
{
    const char *error = nats_GetLastError(NULL);
    if (error != NULL && error[0] != '\0')
        return error;
    return natsStatus_GetText(NATS_NO_SERVER);
}

/* ---- work queue ------------------------------------------------------- */

static void queue_push(cc_service *service, natsMsg *msg)
{
    work_item *item = malloc(sizeof(*item));
    if (item == NULL) {
        /* Without memory there is no way to respond. The server times the
         * client out, which is a deny. */
        cc_log_msg(CC_LOG_ERROR, "request_dropped", "out of memory queueing an auth request");
        natsMsg_Destroy(msg);
        return;
    }
    *item = (work_item){.msg = msg, .received_ns = monotonic_ns()};

    pthread_mutex_lock(&service->queue_lock);
    if (service->queue_closed) {
        /* Only possible when the subscription could not be drained: the
         * workers are gone, and the server times the client out. */
        pthread_mutex_unlock(&service->queue_lock);
        cc_log_msg(CC_LOG_WARN, "request_dropped", "auth request arrived during shutdown");
        natsMsg_Destroy(msg);
        free(item);
        return;
    }
    if (service->queue_tail != NULL)
        service->queue_tail->next = item;
    else
        service->queue_head = item;
    service->queue_tail = item;
    pthread_cond_signal(&service->queue_ready);
    pthread_mutex_unlock(&service->queue_lock);
}

/* Returns the next item, or NULL once the queue is closed and empty. */
static work_item *queue_pop(cc_service *service)
{
    pthread_mutex_lock(&service->queue_lock);
    while (service->queue_head == NULL && !service->queue_closed)
        pthread_cond_wait(&service->queue_ready, &service->queue_lock);

    work_item *item = service->queue_head;
    if (item != NULL) {
        service->queue_head = item->next;
        if (service->queue_head == NULL)
            service->queue_tail = NULL;
    }
    pthread_mutex_unlock(&service->queue_lock);
    return item;
}

/* nats.c callback thread: hand the message over and return at once. */
static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    queue_push(closure, msg);
}

/* ---- one request ------------------------------------------------------ */

static cc_policy_set *current_policies(cc_service *service)
{
    pthread_mutex_lock(&service->policy_lock);
    cc_policy_set *set = cc_policy_set_ref(service->policies);
    pthread_mutex_unlock(&service->policy_lock);
    return set;
}

static void log_decision(const cc_decision *decision, int64_t duration_us, const char *reply)
{
    json_t *fields =
        json_pack("{s:s, s:s, s:s, s:I}", "decision_id", decision->id, "decision",
                  decision->allowed ? "allow" : "deny", "code",
                  cc_decision_code_name(decision->code), "duration_us", (json_int_t)duration_us);
    if (decision->client_id != 0)
        json_object_set_new(fields, "conn_id", json_integer((json_int_t)decision->client_id));
    if (decision->spiffe_id != NULL)
        json_object_set_new(fields, "spiffe_id", json_string(decision->spiffe_id));
    if (decision->claimed_spiffe_id != NULL)
        json_object_set_new(fields, "claimed_spiffe_id",
                            json_string(decision->claimed_spiffe_id));
    if (decision->reason != NULL)
        json_object_set_new(fields, "reason", json_string(decision->reason));
    if (decision->rule != NULL)
        json_object_set_new(fields, "rule", json_string(decision->rule));
    if (decision->account != NULL)
        json_object_set_new(fields, "account", json_string(decision->account));
    if (decision->client_host != NULL)
        json_object_set_new(fields, "client_host", json_string(decision->client_host));
    if (decision->server_id != NULL)
        json_object_set_new(fields, "server_id", json_string(decision->server_id));
    if (reply == NULL)
        json_object_set_new(fields, "error", json_string("request has no reply subject"));
    cc_log_json(decision->allowed ? CC_LOG_INFO : CC_LOG_WARN, "decision", fields);
}

/* Returns the audit event of decision, or builds a minimal one when the
 * pipeline produced none. The caller owns the result. */
static json_t *take_audit_event(cc_decision *decision)
{
    json_t *event = cc_decision_take_audit(decision);
    if (event != NULL)
        return event;
    return json_pack("{s:s, s:s, s:s, s:s?}", "decision_id", decision->id, "decision",
                     decision->allowed ? "allow" : "deny", "code",
                     cc_decision_code_name(decision->code), "reason", decision->reason);
}

static void publish_response(cc_service *service, const cc_decision *decision, const char *reply)
{
    if (reply == NULL)
        return;

    natsStatus status =
        natsConnection_Publish(service->nc, reply, decision->response, (int)decision->response_len);
    if (status != NATS_OK)
        cc_log_json(CC_LOG_ERROR, "response_publish_failed",
                    json_pack("{s:s, s:s}", "decision_id", decision->id, "error",
                              natsStatus_GetText(status)));
}

static void handle_request(cc_service *service, work_item *item)
{
    cc_policy_set *policies = current_policies(service);
    cc_bundle_set *bundles = cc_bundle_watcher_get(service->bundles);
    const cc_config *config = service->config;

    cc_decision_context ctx = {
        .bundles = bundles,
        .policies = policies,
        .issuer = &service->issuer,
        .xkey = service->has_xkey ? &service->xkey : NULL,
        .xkey_cache = service->xkey_cache,
        .cert_cache = service->cert_cache,
        .default_account = config->default_account,
        .max_ttl_seconds = config->max_ttl_seconds,
        .jwt_audiences = (const char *const *)config->jwt_svid.audiences,
        .jwt_audience_count = config->jwt_svid.enabled ? config->jwt_svid.audience_count : 0,
        .jwt_leeway_seconds = config->jwt_svid.leeway_seconds,
        .now = (int64_t)time(NULL),
    };

    const char *server_xkey = NULL;
    if (natsMsgHeader_Get(item->msg, XKEY_HEADER, &server_xkey) != NATS_OK)
        server_xkey = NULL;
    cc_decision_request request = {
        .payload = (const uint8_t *)natsMsg_GetData(item->msg),
        .payload_len = (size_t)natsMsg_GetDataLength(item->msg),
        .server_xkey = server_xkey,
    };

    cc_decision decision;
    cc_err err = {0};
    if (cc_decision_evaluate(&ctx, &request, &decision, &err) != CC_OK)
        cc_log_json(CC_LOG_ERROR, "decision_failed",
                    json_pack("{s:s, s:s}", "decision_id", decision.id, "error", err.message));

    /* The event is queued before the response goes out, so no client is
     * admitted before its audit event exists. Blocks while the audit queue
     * is full, which slows this worker instead of losing the event. */
    if (cc_audit_submit(service->audit, take_audit_event(&decision), &err) != CC_OK)
        cc_log_json(CC_LOG_ERROR, "audit_submit_failed",
                    json_pack("{s:s, s:s}", "decision_id", decision.id, "error", err.message));

    const char *reply = natsMsg_GetReply(item->msg);
    publish_response(service, &decision, reply);
    log_decision(&decision, (monotonic_ns() - item->received_ns) / 1000, reply);

    cc_decision_clear(&decision);
    cc_bundle_set_release(bundles);
    cc_policy_set_release(policies);
}

static void *worker_main(void *arg)
{
    cc_service *service = arg;
    work_item *item;

    while ((item = queue_pop(service)) != NULL) {
        handle_request(service, item);
        natsMsg_Destroy(item->msg);
        free(item);
    }
    return NULL;
}

/* ---- NATS connection -------------------------------------------------- */

static void log_subscribed(cc_service *service, bool confirmed)
{
    const cc_config *config = service->config;
    pthread_mutex_lock(&service->policy_lock);
    size_t policy_count = cc_policy_set_count(service->policies);
    pthread_mutex_unlock(&service->policy_lock);
    json_t *fields = json_pack("{s:s, s:s, s:i, s:I, s:b}", "subject", CC_SERVICE_AUTH_SUBJECT,
                               "queue_group", config->nats.queue_group, "workers",
                               config->workers, "policies", (json_int_t)policy_count,
                               "confirmed", confirmed);
    if (!confirmed)
        json_object_set_new(fields, "note",
                            json_string("no NATS server has the subscription yet; nats.c sends "
                                        "it on connect and \"subscribed\" is logged again"));
    cc_log_json(CC_LOG_INFO, "subscribed", fields);
}

/* After a connect or reconnect: logs "subscribed" once, for a subscription
 * that was made while no server was connected. nats.c sends the existing
 * subscriptions before it calls the connected and reconnected callbacks. */
static void confirm_subscription(cc_service *service)
{
    pthread_mutex_lock(&service->reconnect_log_lock);
    service->reconnect_logged_ns = 0;
    service->reconnect_failures = 0;
    pthread_mutex_unlock(&service->reconnect_log_lock);

    if (atomic_load(&service->sub_created) && !atomic_exchange(&service->sub_confirmed, true))
        log_subscribed(service, true);
}

static void on_connected(natsConnection *nc, void *closure)
{
    log_connection_event(CC_LOG_INFO, "connected", nc);
    confirm_subscription(closure);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    cc_service *service = closure;
    if (!atomic_load(&service->closing))
        log_connection_event(CC_LOG_WARN, "disconnected", nc);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    log_connection_event(CC_LOG_INFO, "reconnected", nc);
    confirm_subscription(closure);
}

static void on_closed(natsConnection *nc, void *closure)
{
    cc_service *service = closure;
    log_connection_event(CC_LOG_INFO, "connection_closed", nc);

    pthread_mutex_lock(&service->closed_lock);
    service->closed_seen = true;
    pthread_cond_broadcast(&service->closed_cond);
    pthread_mutex_unlock(&service->closed_lock);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus status,
                           void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    cc_log_json(CC_LOG_ERROR, "nats_error",
                json_pack("{s:s}", "error", natsStatus_GetText(status)));
}

/* Logs a failed round of (re)connect attempts: the first one at once, then
 * at most one line per RECONNECT_LOG_INTERVAL_NS with the count in between.
 * nats.c calls the delay callback from its reconnect thread, so the error is
 * that thread's nats_GetLastError(); natsConnection_* calls are avoided here
 * because the callback may run with the connection locked. */
static void log_reconnect_failure(cc_service *service, int attempts, int64_t delay_ms)
{
    int64_t now = monotonic_ns();
    pthread_mutex_lock(&service->reconnect_log_lock);
    service->reconnect_failures++;
    int failures = service->reconnect_failures;
    bool due = service->reconnect_logged_ns == 0 ||
               now - service->reconnect_logged_ns >= RECONNECT_LOG_INTERVAL_NS;
    if (due) {
        service->reconnect_logged_ns = now;
        service->reconnect_failures = 0;
    }
    pthread_mutex_unlock(&service->reconnect_log_lock);
    if (!due)
        return;

    cc_log_json(CC_LOG_WARN, "reconnect_failed",
                json_pack("{s:o, s:s, s:s, s:i, s:i, s:I, s:I}", "servers",
                          server_urls_json(service->config), "error", connect_error_text(),
                          "hint", CONNECT_HINT, "attempts", attempts, "failures_since_last_log",
                          failures, "retry_in_ms", (json_int_t)delay_ms, "log_interval_s",
                          (json_int_t)(RECONNECT_LOG_INTERVAL_NS / 1000000000LL)));
}

/* Exponential backoff from RECONNECT_FIRST_DELAY_MS up to RECONNECT_MAX_DELAY_MS,
 * each delay drawn at random from its upper half so that many services
 * restarting together do not reconnect in step. nats.c calls this after each
 * round in which no server could be reached, so it also logs the failure. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    (void)nc;
    int64_t delay = RECONNECT_FIRST_DELAY_MS;
    for (int i = 1; i < attempts && delay < RECONNECT_MAX_DELAY_MS; i++)
        delay *= 2;
    if (delay > RECONNECT_MAX_DELAY_MS)
        delay = RECONNECT_MAX_DELAY_MS;
    int64_t wait_ms = delay / 2 + (int64_t)randombytes_uniform((uint32_t)(delay / 2) + 1);
    log_reconnect_failure(closure, attempts, wait_ms);
    return wait_ms;
}

static cc_status set_auth_options(const cc_config *config, natsOptions *options, cc_err *err)
{
    natsStatus status = NATS_OK;
    if (config->nats.user != NULL) {
        char *password = NULL;
        cc_status st = cc_config_read_password(config, &password, err);
        if (st != CC_OK)
            return st;
        status = natsOptions_SetUserInfo(options, config->nats.user, password);
        sodium_memzero(password, strlen(password));
        free(password);
    } else if (config->nats.creds_file != NULL) {
        status = natsOptions_SetUserCredentialsFromFiles(options, config->nats.creds_file, NULL);
    }
    if (status != NATS_OK)
        return cc_err_set(err, CC_ERR_INVALID, "NATS credentials from the config were rejected: %s",
                          nats_GetLastError(NULL));
    return CC_OK;
}

static cc_status set_tls_options(const cc_config *config, natsOptions *options, cc_err *err)
{
    const cc_config_nats *nats = &config->nats;
    if (nats->tls_ca_file == NULL && nats->tls_cert_file == NULL)
        return CC_OK;

    natsStatus status = natsOptions_SetSecure(options, true);
    if (status == NATS_OK && nats->tls_ca_file != NULL)
        status = natsOptions_LoadCATrustedCertificates(options, nats->tls_ca_file);
    if (status != NATS_OK)
        return cc_err_set(err, CC_ERR_INVALID, "cannot load nats.tls.ca_file %s: %s",
                          nats->tls_ca_file != NULL ? nats->tls_ca_file : "(none)",
                          nats_GetLastError(NULL));
    if (nats->tls_cert_file != NULL &&
        natsOptions_LoadCertificatesChain(options, nats->tls_cert_file, nats->tls_key_file) !=
            NATS_OK)
        return cc_err_set(err, CC_ERR_INVALID,
                          "cannot load nats.tls.cert_file %s with nats.tls.key_file: %s",
                          nats->tls_cert_file, nats_GetLastError(NULL));
    return CC_OK;
}

static cc_status build_options(cc_service *service, natsOptions **out, cc_err *err)
{
    const cc_config *config = service->config;
    natsOptions *options = NULL;
    if (natsOptions_Create(&options) != NATS_OK)
        return cc_err_set(err, CC_ERR_NOMEM, "cannot create NATS options");

    natsStatus status = natsOptions_SetServers(options, (const char **)config->nats.servers,
                                               (int)config->nats.server_count);
    if (status == NATS_OK)
        status = natsOptions_SetName(options, config->nats.name);
    if (status == NATS_OK)
        status = natsOptions_SetMaxReconnect(options, -1);
    if (status == NATS_OK)
        status = natsOptions_SetCustomReconnectDelay(options, reconnect_delay, service);
    if (status == NATS_OK)
        status = natsOptions_SetRetryOnFailedConnect(options, true, on_connected, service);
    if (status == NATS_OK)
        status = natsOptions_SetDisconnectedCB(options, on_disconnected, service);
    if (status == NATS_OK)
        status = natsOptions_SetReconnectedCB(options, on_reconnected, service);
    if (status == NATS_OK)
        status = natsOptions_SetClosedCB(options, on_closed, service);
    if (status == NATS_OK)
        status = natsOptions_SetErrorHandler(options, on_async_error, service);

    cc_status result = CC_OK;
    if (status != NATS_OK)
        result = cc_err_set(err, CC_ERR_INVALID, "invalid NATS connection options: %s",
                            nats_GetLastError(NULL));
    if (result == CC_OK)
        result = as_config_error(set_auth_options(config, options, err), err);
    if (result == CC_OK)
        result = as_config_error(set_tls_options(config, options, err), err);
    if (result != CC_OK) {
        natsOptions_Destroy(options);
        return result;
    }
    *out = options;
    return CC_OK;
}

static cc_status connect_nats(cc_service *service, cc_err *err)
{
    natsOptions *options = NULL;
    cc_status result = build_options(service, &options, err);
    if (result != CC_OK)
        return result;

    natsStatus status = natsConnection_Connect(&service->nc, options);
    natsOptions_Destroy(options);
    if (status == NATS_OK) {
        log_connection_event(CC_LOG_INFO, "connected", service->nc);
    } else if (status == NATS_NOT_YET_CONNECTED) {
        cc_log_json(CC_LOG_WARN, "connect_pending",
                    json_pack("{s:s, s:o, s:s, s:s}", "msg",
                              "no NATS server reachable yet; retrying in the background",
                              "servers", server_urls_json(service->config), "error",
                              connect_error_text(), "hint", CONNECT_HINT));
    } else {
        return cc_err_set(err, CC_ERR_IO, "cannot connect to NATS: %s", nats_GetLastError(NULL));
    }
    return CC_OK;
}

/* ---- lifecycle -------------------------------------------------------- */

static cc_status load_policies(const cc_config *config, cc_policy_set **out, cc_err *err)
{
    cc_policy_defaults defaults = {.account = config->default_account,
                                   .max_ttl_seconds = config->max_ttl_seconds,
                                   .known_accounts = (const char *const *)config->accounts,
                                   .known_account_count = config->account_count};
    return cc_policy_set_load_dir(config->policy_dir, &defaults, out, err);
}

static cc_status load_keys(cc_service *service, cc_err *err)
{
    const cc_config *config = service->config;
    cc_status status =
        cc_nkey_load_seed_file(config->issuer_seed_file, CC_NKEY_ACCOUNT, &service->issuer, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "issuer_seed_file");
        return status;
    }
    if (config->xkey_seed_file == NULL)
        return CC_OK;

    status = cc_nkey_load_seed_file(config->xkey_seed_file, CC_NKEY_CURVE, &service->xkey, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "xkey_seed_file");
        return status;
    }

    cc_err cache_err = {0};
    service->xkey_cache = cc_xkey_cache_new(&service->xkey, 0, &cache_err);
    if (service->xkey_cache == NULL)
        return cc_err_set(err, cache_err.status, "%s", cache_err.message);
    service->has_xkey = true;
    return CC_OK;
}

static cc_status create_cert_cache(cc_service *service, cc_err *err)
{
    cc_err cache_err = {0};
    service->cert_cache = cc_certcache_new(service->config->cert_cache_size, &cache_err);
    if (service->cert_cache == NULL)
        return cc_err_set(err, cache_err.status, "%s", cache_err.message);
    return CC_OK;
}

static cc_status start_workers(cc_service *service, cc_err *err)
{
    service->workers = calloc((size_t)service->config->workers, sizeof(pthread_t));
    if (service->workers == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory starting workers");

    for (int i = 0; i < service->config->workers; i++) {
        if (pthread_create(&service->workers[i], NULL, worker_main, service) != 0)
            return cc_err_set(err, CC_ERR_INTERNAL, "cannot start worker thread %d", i + 1);
        service->worker_count++;
    }
    return CC_OK;
}

static cc_status start_audit(cc_service *service, cc_err *err)
{
    const cc_config_audit *config = &service->config->audit;
    cc_audit_options options = {
        .stream = config->stream,
        .subject_prefix = config->subject_prefix,
        .max_age_seconds = config->max_age_seconds,
        .duplicate_window_seconds = config->duplicate_window_seconds,
        .replicas = config->replicas,
        .queue_size = config->queue_size,
    };
    return cc_audit_start(service->nc, &options, &service->audit, err);
}

static cc_status subscribe(cc_service *service, cc_err *err)
{
    natsStatus status =
        natsConnection_QueueSubscribe(&service->sub, service->nc, CC_SERVICE_AUTH_SUBJECT,
                                      service->config->nats.queue_group, on_request, service);
    /* nats.c drops messages beyond its pending limits. The callback moves
     * each message to the work queue at once, so lifting the limits costs
     * little and avoids drops in a reconnect storm. */
    if (status == NATS_OK)
        status = natsSubscription_SetPendingLimits(service->sub, -1, -1);
    if (status != NATS_OK)
        return cc_err_set(err, CC_ERR_IO, "cannot subscribe to %s: %s", CC_SERVICE_AUTH_SUBJECT,
                          nats_GetLastError(NULL));

    /* When connected, wait until the server has the subscription, so that
     * "subscribed" with "confirmed": true means requests can arrive. Without
     * a connection nats.c sends it on connect, and the connect callback logs
     * the confirmed line. That callback may run at any time from here on, so
     * sub_confirmed decides which of the two logs it. */
    atomic_store(&service->sub_created, true);
    bool confirmed = natsConnection_Status(service->nc) == NATS_CONN_STATUS_CONNECTED &&
                     natsConnection_FlushTimeout(service->nc, SUBSCRIBE_FLUSH_TIMEOUT_MS) == NATS_OK;
    if (confirmed && !atomic_exchange(&service->sub_confirmed, true))
        log_subscribed(service, true);
    else if (!confirmed && !atomic_load(&service->sub_confirmed))
        log_subscribed(service, false);
    return CC_OK;
}

/* Stops the workers after the queue drains and frees everything. */
static void stop_workers(cc_service *service)
{
    pthread_mutex_lock(&service->queue_lock);
    service->queue_closed = true;
    pthread_cond_broadcast(&service->queue_ready);
    pthread_mutex_unlock(&service->queue_lock);
    for (int i = 0; i < service->worker_count; i++)
        pthread_join(service->workers[i], NULL);
    service->worker_count = 0;
}

/* Stops new requests and waits until the ones nats.c already has reach the
 * work queue. Without a connection there is nothing to drain, so the
 * subscription is only removed. */
static void drain_subscription(natsConnection *nc, natsSubscription *sub)
{
    if (natsConnection_Status(nc) != NATS_CONN_STATUS_CONNECTED) {
        natsSubscription_Unsubscribe(sub);
        return;
    }

    natsStatus status = natsSubscription_Drain(sub);
    if (status == NATS_OK)
        status = natsSubscription_WaitForDrainCompletion(sub, DRAIN_TIMEOUT_MS);
    if (status == NATS_OK)
        return;

    cc_log_json(CC_LOG_WARN, "drain_failed",
                json_pack("{s:s}", "error", natsStatus_GetText(status)));
    natsSubscription_Unsubscribe(sub);
}

/* nats.c runs connection callbacks on its own thread, after natsConnection_Close()
 * returns, and the closed callback comes last. The service is their closure,
 * so it must stay allocated until that callback has run. */
static bool wait_closed_callback(cc_service *service)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CLOSED_CALLBACK_TIMEOUT_S;

    pthread_mutex_lock(&service->closed_lock);
    while (!service->closed_seen) {
        if (pthread_cond_timedwait(&service->closed_cond, &service->closed_lock, &until) != 0)
            break;
    }
    bool seen = service->closed_seen;
    pthread_mutex_unlock(&service->closed_lock);
    return seen;
}

static size_t release_all(cc_service *service)
{
    bool callbacks_done = true;
    size_t unsent = 0;
    if (service->sub != NULL)
        drain_subscription(service->nc, service->sub);
    stop_workers(service);
    if (service->audit != NULL)
        unsent = cc_audit_stop(service->audit, AUDIT_FLUSH_TIMEOUT_MS);
    cc_audit_free(service->audit);
    natsSubscription_Destroy(service->sub);
    if (service->nc != NULL) {
        atomic_store(&service->closing, true);
        if (natsConnection_Status(service->nc) == NATS_CONN_STATUS_CONNECTED)
            natsConnection_FlushTimeout(service->nc, FINAL_FLUSH_TIMEOUT_MS);
        natsConnection_Close(service->nc);
        callbacks_done = wait_closed_callback(service);
        natsConnection_Destroy(service->nc);
    }
    cc_bundle_watcher_stop(service->bundles);
    cc_policy_set_release(service->policies);

    cc_nkey_wipe(&service->issuer);
    cc_nkey_wipe(&service->xkey);
    cc_xkey_cache_free(service->xkey_cache);
    cc_certcache_free(service->cert_cache);
    free(service->workers);
    pthread_mutex_destroy(&service->policy_lock);
    pthread_mutex_destroy(&service->reload_lock);
    pthread_mutex_destroy(&service->queue_lock);
    pthread_cond_destroy(&service->queue_ready);
    cc_config_free(service->config);
    if (!callbacks_done) {
        /* A late callback would read freed memory, so leak the struct instead. */
        cc_log_msg(CC_LOG_ERROR, "close_timeout",
                   "NATS did not report the connection closed within %d s; the service state "
                   "stays allocated",
                   CLOSED_CALLBACK_TIMEOUT_S);
        return unsent;
    }
    pthread_mutex_destroy(&service->closed_lock);
    pthread_cond_destroy(&service->closed_cond);
    pthread_mutex_destroy(&service->reconnect_log_lock);
    free(service);
    return unsent;
}

/* Warns about an empty policy set and rules no configured bundle can match. */
static void warn_unreachable_rules(cc_service *service, const cc_policy_set *policies)
{
    cc_bundle_set *bundles = cc_bundle_watcher_get(service->bundles);
    cc_policy_set_warn_unreachable(policies, bundles, service->config->policy_dir);
    cc_bundle_set_release(bundles);
}

cc_status cc_service_start(cc_config *config, cc_service **out, cc_err *err)
{
    cc_service *service = calloc(1, sizeof(*service));
    if (service == NULL) {
        cc_config_free(config);
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory starting the service");
    }
    service->config = config;
    pthread_mutex_init(&service->policy_lock, NULL);
    pthread_mutex_init(&service->reload_lock, NULL);
    pthread_mutex_init(&service->queue_lock, NULL);
    pthread_cond_init(&service->queue_ready, NULL);
    pthread_mutex_init(&service->closed_lock, NULL);
    pthread_cond_init(&service->closed_cond, NULL);
    pthread_mutex_init(&service->reconnect_log_lock, NULL);

    cc_status status = as_config_error(load_keys(service, err), err);
    if (status == CC_OK)
        status = create_cert_cache(service, err);
    if (status == CC_OK)
        status = as_config_error(load_policies(config, &service->policies, err), err);
    if (status == CC_OK)
        status = as_config_error(cc_bundle_watcher_start(config->bundle_sources,
                                                         config->bundle_source_count, NULL,
                                                         &service->bundles, err),
                                 err);
    if (status == CC_OK)
        status = connect_nats(service, err);
    if (status == CC_OK)
        status = start_audit(service, err);
    if (status == CC_OK)
        status = start_workers(service, err);
    if (status == CC_OK)
        status = subscribe(service, err);

    if (status != CC_OK) {
        release_all(service);
        return status;
    }
    warn_unreachable_rules(service, service->policies);
    *out = service;
    return CC_OK;
}

cc_status cc_service_reload(cc_service *service, cc_err *err)
{
    pthread_mutex_lock(&service->reload_lock);
    cc_policy_set *fresh = NULL;
    cc_status status = load_policies(service->config, &fresh, err);
    if (status == CC_OK)
        status = cc_bundle_watcher_reload(service->bundles, err);

    if (status == CC_OK) {
        pthread_mutex_lock(&service->policy_lock);
        cc_policy_set *old = service->policies;
        service->policies = fresh;
        pthread_mutex_unlock(&service->policy_lock);
        cc_policy_set_release(old);
        cc_log_json(CC_LOG_INFO, "reload_ok",
                    json_pack("{s:I}", "policies", (json_int_t)cc_policy_set_count(fresh)));
        /* The service holds a reference to fresh, and reload_lock keeps it in place. */
        warn_unreachable_rules(service, fresh);
    } else {
        cc_policy_set_release(fresh);
        cc_log_json(CC_LOG_ERROR, "reload_failed",
                    json_pack("{s:s, s:s}", "error", err != NULL ? err->message : "unknown",
                              "action", "the previous policies and bundles stay in force"));
    }
    pthread_mutex_unlock(&service->reload_lock);
    return status;
}

cc_status cc_service_init_openssl(cc_err *err)
{
    if (OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL) != 1)
        return cc_err_set(err, CC_ERR_INTERNAL, "OpenSSL failed to initialize");
    return CC_OK;
}

cc_status cc_service_stop(cc_service *service)
{
    cc_log_msg(CC_LOG_INFO, "stopping", "draining requests and flushing the audit queue");
    size_t unsent = release_all(service);
    return unsent == 0 ? CC_OK : CC_ERR_IO;
}

void cc_service_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void cc_service_wait_signals(cc_service *service)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);

    for (;;) {
        int signal_number = 0;
        if (sigwait(&set, &signal_number) != 0)
            continue;
        if (signal_number != SIGHUP) {
            cc_log_json(
                CC_LOG_INFO, "signal",
                json_pack("{s:s}", "signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM"));
            return;
        }
        cc_log_json(CC_LOG_INFO, "signal", json_pack("{s:s}", "signal", "SIGHUP"));
        cc_err err = {0};
        cc_service_reload(service, &err);
    }
}
