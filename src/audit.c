/* JetStream audit publisher.
 *
 * Events are serialized at submit time into a ring buffer of fixed capacity
 * guarded by one mutex and three condition variables: "not_empty" wakes the
 * publisher, "not_full" wakes blocked submitters and "changed" wakes flush and
 * stop waiters. The publisher leaves an event at the head of the ring until
 * JetStream acks it, so the queued count includes the event in flight and a
 * shutdown that gives up still has the events that were not sent.
 *
 * Retries use the same Nats-Msg-Id, so an event whose ack was lost but that
 * the stream did store is recognised as a duplicate and stored once. All
 * waits use CLOCK_MONOTONIC. */
#include "citadel/audit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "citadel/config.h"
#include "citadel/log.h"

#define DEFAULT_ACK_TIMEOUT_MS 2000
#define DEFAULT_MAX_BACKOFF_MS 5000
#define FIRST_BACKOFF_MS 100
#define MAX_DECISION_ID_LEN 128
#define MAX_SUBJECT_LEN 256
#define MAX_UNSENT_IDS_LOGGED 100

typedef struct audit_entry {
    char subject[MAX_SUBJECT_LEN];
    char msg_id[MAX_DECISION_ID_LEN + 1];
    char *payload; /* owned; compact JSON */
    size_t payload_len;
} audit_entry;

struct cc_audit {
    natsConnection *nc; /* borrowed */
    jsCtx *js;
    char *stream;
    char *subject_prefix;
    int64_t max_age_seconds;
    int64_t duplicate_window_seconds;
    int replicas;
    int64_t ack_timeout_ms;
    int64_t max_backoff_ms;

    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    pthread_cond_t changed;
    audit_entry *ring;
    size_t capacity;
    size_t head;
    size_t count;
    bool closing;      /* cc_audit_stop() began: no new events */
    bool quit;         /* the publisher must return, even with events left */
    bool stream_ready; /* the stream was found or created */
    bool thread_started;
    pthread_t thread;
    cc_audit_stats stats;
};

/* ---- time ------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_at(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    return ts;
}

static cc_status init_cond(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return CC_ERR_INTERNAL;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? CC_OK : CC_ERR_INTERNAL;
}

/* ---- stream ----------------------------------------------------------- */

/* Looks the stream up and creates it when missing. Called by the publisher only. */
static natsStatus ensure_stream(cc_audit *audit, jsErrCode *js_error)
{
    jsStreamInfo *info = NULL;
    natsStatus status = js_GetStreamInfo(&info, audit->js, audit->stream, NULL, js_error);
    if (status == NATS_OK) {
        jsStreamInfo_Destroy(info);
        return NATS_OK;
    }
    if (status != NATS_NOT_FOUND)
        return status;

    char subject[MAX_SUBJECT_LEN];
    snprintf(subject, sizeof(subject), "%s.>", audit->subject_prefix);
    const char *subjects[] = {subject};

    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = audit->stream;
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.MaxAge = audit->max_age_seconds * 1000000000LL;
    config.Duplicates = audit->duplicate_window_seconds * 1000000000LL;
    config.Replicas = audit->replicas;

    status = js_AddStream(&info, audit->js, &config, NULL, js_error);
    if (status == NATS_OK) {
        cc_log_json(CC_LOG_INFO, "audit_stream_created",
                    json_pack("{s:s, s:s}", "stream", audit->stream, "subjects", subject));
        jsStreamInfo_Destroy(info);
    }
    return status;
}

/* ---- publishing ------------------------------------------------------- */

/* Publishes entry once and waits for the ack. Returns NATS_OK when acked. */
static natsStatus publish_once(cc_audit *audit, const audit_entry *entry, bool *duplicate,
                               jsErrCode *js_error)
{
    natsMsg *msg = NULL;
    jsPubAck *ack = NULL;
    jsPubOptions options;

    natsStatus status =
        natsMsg_Create(&msg, entry->subject, NULL, entry->payload, (int)entry->payload_len);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(msg, CC_AUDIT_MSG_ID_HEADER, entry->msg_id);
    if (status == NATS_OK) {
        jsPubOptions_Init(&options);
        options.MaxWait = audit->ack_timeout_ms;
        status = js_PublishMsg(&ack, audit->js, msg, &options, js_error);
    }
    if (status == NATS_OK)
        *duplicate = ack->Duplicate;

    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return status;
}

/* Waits up to delay_ms for quit; returns true when the publisher must return. */
static bool sleep_unless_quit(cc_audit *audit, int64_t delay_ms)
{
    struct timespec until = deadline_at(now_ms() + delay_ms);
    pthread_mutex_lock(&audit->lock);
    while (!audit->quit) {
        if (pthread_cond_timedwait(&audit->changed, &audit->lock, &until) != 0)
            break;
    }
    bool quit = audit->quit;
    pthread_mutex_unlock(&audit->lock);
    return quit;
}

static json_t *with_js_error(json_t *fields, natsStatus status, jsErrCode js_error);

static void log_publish_failure(const audit_entry *entry, natsStatus status, jsErrCode js_error,
                                int attempt, int64_t delay_ms)
{
    /* The first failure of an outage is a warning; repeats go to debug. */
    cc_log_level level = attempt == 1 ? CC_LOG_WARN : CC_LOG_DEBUG;
    json_t *fields = json_pack("{s:s, s:s, s:s, s:i, s:I}", "decision_id", entry->msg_id,
                               "subject", entry->subject, "error", natsStatus_GetText(status),
                               "attempt", attempt, "retry_in_ms", (json_int_t)delay_ms);
    cc_log_json(level, "audit_publish_failed", with_js_error(fields, status, js_error));
}

/* Publishes entry until JetStream acks it or quit is set. Returns true when acked. */
static bool publish_with_retry(cc_audit *audit, const audit_entry *entry)
{
    int64_t delay_ms = FIRST_BACKOFF_MS;

    for (int attempt = 1;; attempt++) {
        jsErrCode js_error = 0;
        natsStatus status = NATS_OK;
        bool duplicate = false;

        if (!audit->stream_ready) {
            status = ensure_stream(audit, &js_error);
            audit->stream_ready = status == NATS_OK;
        }
        if (status == NATS_OK)
            status = publish_once(audit, entry, &duplicate, &js_error);

        if (status == NATS_OK) {
            pthread_mutex_lock(&audit->lock);
            audit->stats.published++;
            audit->stats.duplicates += duplicate ? 1 : 0;
            pthread_mutex_unlock(&audit->lock);
            if (attempt > 1)
                cc_log_json(
                    CC_LOG_INFO, "audit_publish_recovered",
                    json_pack("{s:s, s:i}", "decision_id", entry->msg_id, "attempts", attempt));
            return true;
        }

        /* No responders or "stream not found": the stream may have been
         * deleted, so look it up again before the next attempt. */
        if (status == NATS_NO_RESPONDERS || js_error == JSStreamNotFoundErr)
            audit->stream_ready = false;

        /* Full jitter on the upper half keeps several instances from retrying in step. */
        int64_t wait_ms = delay_ms / 2 + (int64_t)randombytes_uniform((uint32_t)(delay_ms / 2 + 1));
        log_publish_failure(entry, status, js_error, attempt, wait_ms);
        pthread_mutex_lock(&audit->lock);
        audit->stats.retries++;
        pthread_mutex_unlock(&audit->lock);

        if (sleep_unless_quit(audit, wait_ms))
            return false;
        delay_ms = delay_ms * 2 > audit->max_backoff_ms ? audit->max_backoff_ms : delay_ms * 2;
    }
}

const char *cc_audit_js_error_hint(natsStatus status, int js_error)
{
    switch (js_error) {
    case JSNotEnabledForAccountErr:
        return "JetStream is not enabled for the account of the service's NATS user: add "
               "\"jetstream: enabled\" to that account in the nats-server config";
    case JSNotEnabledErr:
        return "JetStream is not enabled on the NATS server: add a \"jetstream\" block "
               "(for example \"jetstream { store_dir: /var/lib/nats }\") to the nats-server config";
    case JSStreamNameExistErr:
        return "a stream with the configured audit stream name already exists with another "
               "configuration: delete that stream or set audit.stream to another name";
    case JSStreamSubjectOverlapErr:
        return "another stream already captures the audit subjects: remove those subjects "
               "from that stream or set audit.subject_prefix to another prefix";
    case JSInsufficientResourcesErr:
    case JSStorageResourcesExceededErr:
    case JSMemoryResourcesExceededErr:
        return "the NATS server or the account has no JetStream storage left: raise the "
               "JetStream limits (max_file_store, account jetstream limits) or free space";
    case JSMaximumStreamsLimitErr:
        return "the account reached its maximum number of streams: raise max_streams for "
               "the account or delete unused streams";
    case JSStreamReplicasNotSupportedErr:
        return "stream replicas above 1 need a JetStream cluster: set audit.replicas to 1";
    default:
        break;
    }
    if (status == NATS_NO_RESPONDERS)
        return "no JetStream API answered: enable JetStream on the NATS server and for the "
               "account of the service's NATS user";
    if (status == NATS_TIMEOUT)
        return "the JetStream API did not answer in time: check that the NATS server is "
               "reachable and JetStream is running";
    return NULL;
}

/* Adds "js_error" (the numeric code) and, when known, "cause" (what is wrong
 * and the fix) to fields. */
static json_t *with_js_error(json_t *fields, natsStatus status, jsErrCode js_error)
{
    json_object_set_new(fields, "js_error", json_integer((json_int_t)js_error));
    const char *hint = cc_audit_js_error_hint(status, (int)js_error);
    if (hint != NULL)
        json_object_set_new(fields, "cause", json_string(hint));
    return fields;
}

/* Creates the stream at start, so that a JetStream problem shows in the log
 * before the first event. Failure is not fatal: every publish retries it. */
static void prepare_stream(cc_audit *audit)
{
    jsErrCode js_error = 0;
    natsStatus status = ensure_stream(audit, &js_error);
    audit->stream_ready = status == NATS_OK;
    if (status != NATS_OK)
        cc_log_json(CC_LOG_WARN, "audit_stream_unavailable",
                    with_js_error(json_pack("{s:s, s:s}", "stream", audit->stream, "error",
                                            natsStatus_GetText(status)),
                                  status, js_error));
}

static void *publisher_main(void *arg)
{
    cc_audit *audit = arg;

    prepare_stream(audit);
    pthread_mutex_lock(&audit->lock);
    for (;;) {
        while (audit->count == 0 && !audit->closing && !audit->quit)
            pthread_cond_wait(&audit->not_empty, &audit->lock);
        if (audit->quit || (audit->count == 0 && audit->closing))
            break;

        /* The head stays in the ring while it is published; only this thread
         * removes entries, so the pointer stays valid without the lock. */
        audit_entry *entry = &audit->ring[audit->head];
        pthread_mutex_unlock(&audit->lock);
        bool acked = publish_with_retry(audit, entry);
        pthread_mutex_lock(&audit->lock);
        if (!acked)
            break;

        free(entry->payload);
        entry->payload = NULL;
        audit->head = (audit->head + 1) % audit->capacity;
        audit->count--;
        audit->stats.queued = audit->count;
        pthread_cond_broadcast(&audit->not_full);
        pthread_cond_broadcast(&audit->changed);
    }
    pthread_mutex_unlock(&audit->lock);
    return NULL;
}

/* ---- public API ------------------------------------------------------- */

cc_status cc_audit_subject(const char *subject_prefix, const char *decision, char *out,
                           size_t out_size, cc_err *err)
{
    int len = snprintf(out, out_size, "%s.%s", subject_prefix, decision);
    if (len < 0 || (size_t)len >= out_size)
        return cc_err_set(err, CC_ERR_INVALID,
                          "audit subject for prefix \"%s\" is longer than %zu bytes; shorten "
                          "audit.subject_prefix",
                          subject_prefix, out_size - 1);
    return CC_OK;
}

static cc_status copy_options(cc_audit *audit, const cc_audit_options *options, cc_err *err)
{
    if (options == NULL || options->stream == NULL || options->subject_prefix == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "audit options need a stream and a subject prefix");
    if (strlen(options->subject_prefix) + sizeof(".allow") > MAX_SUBJECT_LEN)
        return cc_err_set(err, CC_ERR_INVALID,
                          "audit subject prefix \"%s\" is too long; use at most %d bytes",
                          options->subject_prefix, MAX_SUBJECT_LEN - 8);

    audit->stream = strdup(options->stream);
    audit->subject_prefix = strdup(options->subject_prefix);
    if (audit->stream == NULL || audit->subject_prefix == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory starting the audit publisher");

    audit->max_age_seconds = options->max_age_seconds;
    audit->duplicate_window_seconds = options->duplicate_window_seconds;
    audit->replicas = options->replicas > 0 ? options->replicas : 1;
    audit->capacity =
        options->queue_size > 0 ? options->queue_size : CC_CONFIG_DEFAULT_AUDIT_QUEUE_SIZE;
    audit->ack_timeout_ms =
        options->ack_timeout_ms > 0 ? options->ack_timeout_ms : DEFAULT_ACK_TIMEOUT_MS;
    audit->max_backoff_ms =
        options->max_backoff_ms > 0 ? options->max_backoff_ms : DEFAULT_MAX_BACKOFF_MS;
    if (audit->max_backoff_ms < FIRST_BACKOFF_MS)
        audit->max_backoff_ms = FIRST_BACKOFF_MS;
    return CC_OK;
}

cc_status cc_audit_start(natsConnection *nc, const cc_audit_options *options, cc_audit **out,
                         cc_err *err)
{
    cc_audit *audit = calloc(1, sizeof(*audit));
    if (audit == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory starting the audit publisher");
    audit->nc = nc;
    pthread_mutex_init(&audit->lock, NULL);

    cc_status status = CC_OK;
    if (init_cond(&audit->not_empty) != CC_OK || init_cond(&audit->not_full) != CC_OK ||
        init_cond(&audit->changed) != CC_OK)
        status = cc_err_set(err, CC_ERR_INTERNAL, "cannot create audit condition variables");
    if (status == CC_OK)
        status = copy_options(audit, options, err);
    if (status == CC_OK) {
        audit->ring = calloc(audit->capacity, sizeof(*audit->ring));
        if (audit->ring == NULL)
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory for %zu audit queue entries",
                                audit->capacity);
    }

    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = audit->ack_timeout_ms;
    if (status == CC_OK && natsConnection_JetStream(&audit->js, nc, &js_options) != NATS_OK)
        status = cc_err_set(err, CC_ERR_INTERNAL, "cannot create a JetStream context: %s",
                            nats_GetLastError(NULL));
    if (status == CC_OK && pthread_create(&audit->thread, NULL, publisher_main, audit) != 0)
        status = cc_err_set(err, CC_ERR_INTERNAL, "cannot start the audit publisher thread");

    if (status != CC_OK) {
        cc_audit_free(audit);
        return status;
    }
    audit->thread_started = true;
    *out = audit;
    return CC_OK;
}

/* Checks the event and fills entry; does not take ownership of event. */
static cc_status make_entry(cc_audit *audit, json_t *event, audit_entry *entry, cc_err *err)
{
    const char *id = json_string_value(json_object_get(event, "decision_id"));
    const char *decision = json_string_value(json_object_get(event, "decision"));

    if (id == NULL || id[0] == '\0' || strlen(id) > MAX_DECISION_ID_LEN)
        return cc_err_set(err, CC_ERR_INVALID,
                          "audit event needs a \"decision_id\" string of 1 to %d bytes",
                          MAX_DECISION_ID_LEN);
    if (decision == NULL || (strcmp(decision, "allow") != 0 && strcmp(decision, "deny") != 0))
        return cc_err_set(err, CC_ERR_INVALID,
                          "audit event %s needs \"decision\": \"allow\" or \"deny\"", id);

    cc_status status = cc_audit_subject(audit->subject_prefix, decision, entry->subject,
                                        sizeof(entry->subject), err);
    if (status != CC_OK)
        return status;
    snprintf(entry->msg_id, sizeof(entry->msg_id), "%s", id);

    entry->payload = json_dumps(event, JSON_COMPACT);
    if (entry->payload == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "cannot serialize audit event %s", id);
    entry->payload_len = strlen(entry->payload);
    return CC_OK;
}

cc_status cc_audit_submit(cc_audit *audit, json_t *event, cc_err *err)
{
    audit_entry entry = {0};
    cc_status status = make_entry(audit, event, &entry, err);
    json_decref(event);
    if (status != CC_OK)
        return status;

    pthread_mutex_lock(&audit->lock);
    while (audit->count == audit->capacity && !audit->closing)
        pthread_cond_wait(&audit->not_full, &audit->lock);
    if (audit->closing) {
        pthread_mutex_unlock(&audit->lock);
        cc_log_json(CC_LOG_ERROR, "audit_event_rejected",
                    json_pack("{s:s, s:s}", "decision_id", entry.msg_id, "reason",
                              "the audit publisher is stopping"));
        free(entry.payload);
        return cc_err_set(err, CC_ERR_IO, "audit event %s arrived after shutdown began",
                          entry.msg_id);
    }

    audit->ring[(audit->head + audit->count) % audit->capacity] = entry;
    audit->count++;
    audit->stats.submitted++;
    audit->stats.queued = audit->count;
    pthread_cond_signal(&audit->not_empty);
    pthread_mutex_unlock(&audit->lock);
    return CC_OK;
}

/* Waits with the lock held until the queue is empty or the deadline passes. */
static bool wait_empty_locked(cc_audit *audit, int64_t timeout_ms)
{
    struct timespec until = deadline_at(now_ms() + (timeout_ms > 0 ? timeout_ms : 0));
    while (audit->count > 0 && audit->thread_started) {
        if (pthread_cond_timedwait(&audit->changed, &audit->lock, &until) != 0)
            break;
    }
    return audit->count == 0;
}

cc_status cc_audit_flush(cc_audit *audit, int64_t timeout_ms, cc_err *err)
{
    pthread_mutex_lock(&audit->lock);
    bool empty = wait_empty_locked(audit, timeout_ms);
    size_t left = audit->count;
    pthread_mutex_unlock(&audit->lock);
    if (empty)
        return CC_OK;
    return cc_err_set(err, CC_ERR_IO,
                      "audit flush timed out after %lld ms with %zu events not yet acked",
                      (long long)timeout_ms, left);
}

static void log_unsent(cc_audit *audit)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < audit->count && i < MAX_UNSENT_IDS_LOGGED; i++)
        json_array_append_new(ids,
                              json_string(audit->ring[(audit->head + i) % audit->capacity].msg_id));
    cc_log_json(CC_LOG_ERROR, "audit_events_unsent",
                json_pack("{s:I, s:s, s:o}", "count", (json_int_t)audit->count, "stream",
                          audit->stream, "decision_ids", ids));
}

size_t cc_audit_stop(cc_audit *audit, int64_t timeout_ms)
{
    pthread_mutex_lock(&audit->lock);
    audit->closing = true;
    pthread_cond_broadcast(&audit->not_empty);
    pthread_cond_broadcast(&audit->not_full);
    wait_empty_locked(audit, timeout_ms);

    audit->quit = true;
    pthread_cond_broadcast(&audit->not_empty);
    pthread_cond_broadcast(&audit->changed);
    pthread_mutex_unlock(&audit->lock);

    /* The publisher may still wait up to ack_timeout_ms for an ack in flight. */
    if (audit->thread_started) {
        pthread_join(audit->thread, NULL);
        audit->thread_started = false;
    }

    pthread_mutex_lock(&audit->lock);
    size_t unsent = audit->count;
    if (unsent > 0)
        log_unsent(audit);
    pthread_mutex_unlock(&audit->lock);
    return unsent;
}

void cc_audit_free(cc_audit *audit)
{
    if (audit == NULL)
        return;
    if (audit->thread_started)
        cc_audit_stop(audit, 0);

    for (size_t i = 0; i < audit->count; i++)
        free(audit->ring[(audit->head + i) % audit->capacity].payload);
    free(audit->ring);
    jsCtx_Destroy(audit->js);
    pthread_cond_destroy(&audit->not_empty);
    pthread_cond_destroy(&audit->not_full);
    pthread_cond_destroy(&audit->changed);
    pthread_mutex_destroy(&audit->lock);
    free(audit->stream);
    free(audit->subject_prefix);
    free(audit);
}

void cc_audit_get_stats(cc_audit *audit, cc_audit_stats *stats)
{
    pthread_mutex_lock(&audit->lock);
    *stats = audit->stats;
    stats->queued = audit->count;
    pthread_mutex_unlock(&audit->lock);
}
