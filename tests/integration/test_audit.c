/* Audit publisher against a real nats-server with JetStream.
 *
 * The tests set no Criterion .timeout: with two such tests running at once,
 * Criterion 2.4.1's runner leaks 48 bytes and LeakSanitizer fails the run.
 * Every wait below has its own bound instead. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "citadel/audit.h"
#include "citadel/log.h"
#include "../support/natsrestart.h"
#include "../support/natsserver.h"

#define STREAM "CITADEL_AUDIT"
#define PREFIX "citadel.audit"

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *jetstream_body(const char *store_dir)
{
    char *body = NULL;
    cr_assert_gt(asprintf(&body, "jetstream { store_dir: \"%s\" }\n", store_dir), 0);
    return body;
}

/* A server with JetStream whose store lives in its own temp dir under the harness dir. */
static cc_test_nats_server *start_server(char **store_dir)
{
    cc_err err = {0};
    cc_test_nats_server *server = cc_test_nats_server_new(&err);
    cr_assert_not_null(server, "%s", err.message);
    cr_assert_gt(asprintf(store_dir, "%s/js", cc_test_nats_server_dir(server)), 0);

    char *body = jetstream_body(*store_dir);
    cr_assert_eq(cc_test_nats_server_start(server, body, &err), CC_OK, "%s", err.message);
    free(body);
    return server;
}

static natsConnection *connect_to(const char *url)
{
    natsOptions *options = NULL;
    natsConnection *nc = NULL;
    cr_assert_eq(natsOptions_Create(&options), NATS_OK);
    natsOptions_SetURL(options, url);
    natsOptions_SetMaxReconnect(options, -1);
    natsOptions_SetReconnectWait(options, 100);
    natsOptions_SetRetryOnFailedConnect(options, true, NULL, NULL);
    cr_assert_eq(natsConnection_Connect(&nc, options), NATS_OK, "%s", nats_GetLastError(NULL));
    natsOptions_Destroy(options);
    return nc;
}

static cc_audit *start_audit(natsConnection *nc, size_t queue_size)
{
    cc_audit_options options = {
        .stream = STREAM,
        .subject_prefix = PREFIX,
        .max_age_seconds = 3600,
        .duplicate_window_seconds = 120,
        .replicas = 1,
        .queue_size = queue_size,
        .ack_timeout_ms = 500,
        .max_backoff_ms = 300,
    };
    cc_audit *audit = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_audit_start(nc, &options, &audit, &err), CC_OK, "%s", err.message);
    return audit;
}

static json_t *event(const char *id, const char *decision)
{
    return json_pack("{s:s, s:s, s:s}", "decision_id", id, "decision", decision, "reason", "test");
}

static void submit(cc_audit *audit, const char *id, const char *decision)
{
    cc_err err = {0};
    cr_assert_eq(cc_audit_submit(audit, event(id, decision), &err), CC_OK, "%s", err.message);
}

static uint64_t stream_message_count(natsConnection *nc)
{
    jsCtx *js = NULL;
    jsStreamInfo *info = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&info, js, STREAM, NULL, NULL), NATS_OK, "stream missing");
    uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    jsCtx_Destroy(js);
    return count;
}

/* Checks stored message seq: its subject, Msg-Id header and payload id. */
static void expect_message(natsConnection *nc, uint64_t seq, const char *subject, const char *id)
{
    jsCtx *js = NULL;
    natsMsg *msg = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetMsg(&msg, js, STREAM, seq, NULL, NULL), NATS_OK, "message %llu missing",
                 (unsigned long long)seq);

    cr_expect_str_eq(natsMsg_GetSubject(msg), subject);
    const char *msg_id = NULL;
    cr_expect_eq(natsMsgHeader_Get(msg, "Nats-Msg-Id", &msg_id), NATS_OK);
    cr_expect_str_eq(msg_id, id);

    json_t *payload = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
    cr_expect_not_null(payload);
    cr_expect_str_eq(json_string_value(json_object_get(payload, "decision_id")), id);
    json_decref(payload);
    natsMsg_Destroy(msg);
    jsCtx_Destroy(js);
}

static void finish(cc_audit *audit, natsConnection *nc, cc_test_nats_server *server,
                   char *store_dir)
{
    cc_audit_free(audit);
    natsConnection_Destroy(nc);
    cc_test_nats_server_stop(server);
    free(store_dir);
    nats_CloseAndWait(5000);
}

Test(audit, events_land_with_subject_and_msg_id)
{
    char *store_dir = NULL;
    cc_test_nats_server *server = start_server(&store_dir);
    natsConnection *nc = connect_to(cc_test_nats_server_url(server));
    cc_audit *audit = start_audit(nc, 16);

    submit(audit, "01HALLOW0000000000000000001", "allow");
    submit(audit, "01HDENY00000000000000000001", "deny");
    cc_err err = {0};
    cr_assert_eq(cc_audit_flush(audit, 20000, &err), CC_OK, "%s", err.message);

    cr_assert_eq(stream_message_count(nc), 2);
    expect_message(nc, 1, PREFIX ".allow", "01HALLOW0000000000000000001");
    expect_message(nc, 2, PREFIX ".deny", "01HDENY00000000000000000001");

    jsCtx *js = NULL;
    jsStreamInfo *info = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&info, js, STREAM, NULL, NULL), NATS_OK);
    cr_expect_eq(info->Config->SubjectsLen, 1);
    cr_expect_str_eq(info->Config->Subjects[0], PREFIX ".>");
    cr_expect_eq(info->Config->Storage, js_FileStorage);
    cr_expect_eq(info->Config->MaxAge, 3600LL * 1000000000LL);
    cr_expect_eq(info->Config->Duplicates, 120LL * 1000000000LL);
    jsStreamInfo_Destroy(info);
    jsCtx_Destroy(js);

    cr_expect_eq(cc_audit_stop(audit, 5000), 0);
    cc_audit_stats stats;
    cc_audit_get_stats(audit, &stats);
    cr_expect_eq(stats.submitted, 2);
    cr_expect_eq(stats.published, 2);
    cr_expect_eq(stats.queued, 0);
    finish(audit, nc, server, store_dir);
}

Test(audit, duplicate_is_deduplicated)
{
    char *store_dir = NULL;
    cc_test_nats_server *server = start_server(&store_dir);
    natsConnection *nc = connect_to(cc_test_nats_server_url(server));
    cc_audit *audit = start_audit(nc, 16);

    submit(audit, "01HSAME00000000000000000001", "deny");
    submit(audit, "01HSAME00000000000000000001", "deny");
    cc_err err = {0};
    cr_assert_eq(cc_audit_flush(audit, 20000, &err), CC_OK, "%s", err.message);

    cr_expect_eq(stream_message_count(nc), 1);
    cc_audit_stats stats;
    cc_audit_get_stats(audit, &stats);
    cr_expect_eq(stats.published, 2);
    cr_expect_eq(stats.duplicates, 1);
    finish(audit, nc, server, store_dir);
}

typedef struct blocked_submit {
    cc_audit *audit;
    atomic_bool done;
    cc_status status;
} blocked_submit;

static void *submit_in_thread(void *arg)
{
    blocked_submit *job = arg;
    job->status = cc_audit_submit(job->audit, event("01HDOWN00000000000000000004", "deny"), NULL);
    atomic_store(&job->done, true);
    return NULL;
}

Test(audit, queued_while_down_delivered_after_restart)
{
    char *store_dir = NULL;
    cc_test_nats_server *server = start_server(&store_dir);
    natsConnection *nc = connect_to(cc_test_nats_server_url(server));
    cc_audit *audit = start_audit(nc, 3);

    submit(audit, "01HUP0000000000000000000001", "allow");
    cc_err err = {0};
    cr_assert_eq(cc_audit_flush(audit, 20000, &err), CC_OK, "%s", err.message);

    cr_assert_eq(cc_test_nats_server_take_down(server, &err), CC_OK, "%s", err.message);

    submit(audit, "01HDOWN00000000000000000001", "deny");
    submit(audit, "01HDOWN00000000000000000002", "allow");
    submit(audit, "01HDOWN00000000000000000003", "deny");

    /* The queue has room for 3 events, so a fourth submit waits for room. */
    blocked_submit job = {.audit = audit};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, submit_in_thread, &job), 0);
    sleep_ms(1500);
    cr_expect_not(atomic_load(&job.done), "submit must block while the queue is full");

    cc_audit_stats stats;
    cc_audit_get_stats(audit, &stats);
    cr_expect_eq(stats.queued, 3);
    cr_expect_gt(stats.retries, 0, "publishing is retried while the server is down");

    char *body = jetstream_body(store_dir);
    pid_t restarted = 0;
    cr_assert_eq(cc_test_nats_server_bring_back(server, body, &restarted, &err), CC_OK, "%s",
                 err.message);
    free(body);
    pthread_join(thread, NULL);
    cr_expect_eq(job.status, CC_OK);
    cr_assert_eq(cc_audit_flush(audit, 30000, &err), CC_OK, "%s", err.message);

    cr_expect_eq(stream_message_count(nc), 5);
    expect_message(nc, 2, PREFIX ".deny", "01HDOWN00000000000000000001");
    expect_message(nc, 5, PREFIX ".deny", "01HDOWN00000000000000000004");

    cr_expect_eq(cc_audit_stop(audit, 5000), 0);
    cc_audit_free(audit);
    natsConnection_Destroy(nc);
    cc_test_nats_stop_pid(restarted);
    cc_test_nats_server_stop(server);
    free(store_dir);
    nats_CloseAndWait(5000);
}

Test(audit, stop_reports_unsent_events)
{
    char *store_dir = NULL;
    cc_test_nats_server *server = start_server(&store_dir);
    natsConnection *nc = connect_to(cc_test_nats_server_url(server));
    cc_audit *audit = start_audit(nc, 16);

    cc_err err = {0};
    cr_assert_eq(cc_test_nats_server_take_down(server, &err), CC_OK, "%s", err.message);
    submit(audit, "01HLOST00000000000000000001", "deny");
    submit(audit, "01HLOST00000000000000000002", "deny");

    cr_expect_eq(cc_audit_stop(audit, 300), 2);
    cr_expect_eq(cc_audit_submit(audit, event("01HLATE00000000000000000001", "deny"), NULL),
                 CC_ERR_IO, "no events after stop");
    finish(audit, nc, server, store_dir);
}

Test(audit, invalid_events_rejected)
{
    char *store_dir = NULL;
    cc_test_nats_server *server = start_server(&store_dir);
    natsConnection *nc = connect_to(cc_test_nats_server_url(server));
    cc_audit *audit = start_audit(nc, 16);

    cc_err err = {0};
    cr_expect_eq(cc_audit_submit(audit, json_pack("{s:s}", "decision", "deny"), &err),
                 CC_ERR_INVALID);
    cr_expect_not_null(strstr(err.message, "decision_id"), "%s", err.message);
    cr_expect_eq(cc_audit_submit(audit, event("01HX", "maybe"), &err), CC_ERR_INVALID);
    cr_expect_not_null(strstr(err.message, "\"allow\" or \"deny\""), "%s", err.message);
    cr_expect_eq(cc_audit_submit(audit, event("", "deny"), NULL), CC_ERR_INVALID);

    char subject[16];
    cr_expect_eq(cc_audit_subject("a.very.long.prefix", "allow", subject, sizeof(subject), NULL),
                 CC_ERR_INVALID);
    cr_expect_eq(cc_audit_subject("p", "allow", subject, sizeof(subject), NULL), CC_OK);
    cr_expect_str_eq(subject, "p.allow");
    finish(audit, nc, server, store_dir);
}

/* Reads the whole file at path into a malloc'd string (caller frees). */
static char *read_text(const char *path)
{
    FILE *file = fopen(path, "r");
    cr_assert_not_null(file, "%s", path);
    char *text = calloc(1, 65536);
    cr_assert_not_null(text);
    size_t n = fread(text, 1, 65535, file);
    text[n] = '\0';
    fclose(file);
    return text;
}

Test(audit, stream_unavailable_names_cause)
{
    /* JetStream runs on the server, but account A does not enable it. */
    char *store_dir = NULL;
    cc_err err = {0};
    cc_test_nats_server *server = cc_test_nats_server_new(&err);
    cr_assert_not_null(server, "%s", err.message);
    cr_assert_gt(asprintf(&store_dir, "%s/js", cc_test_nats_server_dir(server)), 0);
    char *body = NULL;
    cr_assert_gt(asprintf(&body,
                          "jetstream { store_dir: \"%s\" }\n"
                          "accounts { A: { users: [ { user: a, password: a } ] } }\n",
                          store_dir),
                 0);
    cr_assert_eq(cc_test_nats_server_start(server, body, &err), CC_OK, "%s", err.message);
    free(body);

    char *url = NULL;
    cr_assert_gt(asprintf(&url, "nats://a:a@127.0.0.1:%d", cc_test_nats_server_port(server)), 0);
    natsConnection *nc = connect_to(url);
    free(url);

    char *log_path = NULL;
    cr_assert_gt(asprintf(&log_path, "%s/audit.log", cc_test_nats_server_dir(server)), 0);
    FILE *log_file = fopen(log_path, "w");
    cr_assert_not_null(log_file);
    cc_log_set_fd(fileno(log_file));

    cc_audit *audit = start_audit(nc, 4);
    char *log_text = NULL;
    for (int i = 0; i < 100; i++) {
        sleep_ms(50);
        free(log_text);
        log_text = read_text(log_path);
        if (strstr(log_text, "audit_stream_unavailable") != NULL)
            break;
    }
    cc_log_set_fd(2);
    fclose(log_file);

    cr_expect_not_null(strstr(log_text, "audit_stream_unavailable"), "%s", log_text);
    cr_expect_not_null(strstr(log_text, "\"js_error\":10039"), "%s", log_text);
    cr_expect_not_null(strstr(log_text, "jetstream: enabled"), "%s", log_text);
    free(log_text);
    free(log_path);
    finish(audit, nc, server, store_dir);
}
