/* Audit trail: every decision event goes to a JetStream stream, none is lost.
 *
 * cc_audit_submit() puts an event (a JSON object with "decision_id" and
 * "decision": "allow" or "deny") into a bounded in-memory queue. When the
 * queue is full the caller blocks instead of dropping the event. One publisher thread
 * drains the queue: it publishes each event to "<subject_prefix>.<decision>"
 * with the header Nats-Msg-Id = decision_id and waits for the JetStream ack.
 * On failure or timeout it retries the same message with growing delays for as
 * long as the audit runs, and because the Msg-Id stays the same, the stream's
 * duplicate window keeps a retried event from being stored twice.
 *
 * The stream (subjects "<subject_prefix>.>", file storage) is created when it
 * is missing, before the first publish and again whenever a publish finds no
 * stream. cc_audit_stop() flushes the queue within a time limit and logs how
 * many events could not be sent. */
#ifndef CITADEL_AUDIT_H
#define CITADEL_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nats/nats.h>

#include "citadel/error.h"

#define CC_AUDIT_MSG_ID_HEADER "Nats-Msg-Id"

typedef struct cc_audit cc_audit;

typedef struct cc_audit_options {
    const char *stream;               /* borrowed; stream name, such as "CITADEL_AUDIT" */
    const char *subject_prefix;       /* borrowed; such as "citadel.audit" */
    int64_t max_age_seconds;          /* stream max age; 0 = keep forever */
    int64_t duplicate_window_seconds; /* stream duplicate window; 0 = server default (2 min) */
    int replicas;                     /* stream replicas; 1 on a single server */
    size_t queue_size;      /* events held in memory; 0 = CC_CONFIG_DEFAULT_AUDIT_QUEUE_SIZE */
    int64_t ack_timeout_ms; /* wait for one JetStream ack; 0 = 2000 */
    int64_t max_backoff_ms; /* max delay between retries; 0 = 5000 */
} cc_audit_options;

/* Counters for tests and logs. */
typedef struct cc_audit_stats {
    uint64_t submitted;
    uint64_t published;  /* acked by JetStream, duplicates included */
    uint64_t duplicates; /* acked with duplicate = true */
    uint64_t retries;    /* failed publish attempts that were retried */
    size_t queued;       /* waiting in the queue, the one in flight included */
} cc_audit_stats;

/* Starts the publisher thread. nc is borrowed and must outlive the audit; it
 * may be disconnected, as the thread retries until the server is back. The
 * option strings are copied. On success *out is owned by the caller, who ends
 * it with cc_audit_stop() and then cc_audit_free(). */
cc_status cc_audit_start(natsConnection *nc, const cc_audit_options *options, cc_audit **out,
                         cc_err *err);

/* Queues event and takes ownership of it, also on failure. Blocks while the
 * queue is full. Fails when the event has no string "decision_id" or a
 * "decision" other than "allow" or "deny", or once cc_audit_stop() has begun. */
cc_status cc_audit_submit(cc_audit *audit, json_t *event, cc_err *err);

/* Waits until every event queued so far is acked or timeout_ms has passed.
 * Returns CC_OK when the queue is empty, CC_ERR_IO on timeout. */
cc_status cc_audit_flush(cc_audit *audit, int64_t timeout_ms, cc_err *err);

/* Rejects new events, flushes the queue for at most timeout_ms, then stops the
 * thread. Returns the number of events that were not sent (0 on a full flush);
 * a non-zero count is also logged. */
size_t cc_audit_stop(cc_audit *audit, int64_t timeout_ms);

/* Frees a stopped audit (stops it with no wait first when needed). Accepts NULL. */
void cc_audit_free(cc_audit *audit);

void cc_audit_get_stats(cc_audit *audit, cc_audit_stats *stats);

/* Returns what a failed JetStream call means and how to fix it, for the
 * common causes (JetStream off for the server or the account, a stream name
 * or subjects already taken, no storage left), else NULL. js_error is the
 * jsErrCode of the call, status its natsStatus. The string is static. */
const char *cc_audit_js_error_hint(natsStatus status, int js_error);

/* Writes "<subject_prefix>.<decision>" into out; fails when it does not fit. */
cc_status cc_audit_subject(const char *subject_prefix, const char *decision, char *out,
                           size_t out_size, cc_err *err);

#endif
