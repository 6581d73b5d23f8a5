/* workload: a small NATS client for the demo. It connects over TLS, optionally
 * with an X.509-SVID as its client certificate, runs the actions given on the
 * command line in order and prints one line per outcome, for example
 *
 *   connect ok
 *   pub hvac.zone1.setpoint: ok
 *   pub door.lobby.unlock: permissions violation
 *   connect rejected: Authorization Violation
 *
 * The server reports a denied publish or subscribe asynchronously with
 * "-ERR 'Permissions Violation for Publish to "SUBJECT"'" and keeps the
 * connection open. nats.c hands that error to the connection's error handler.
 * So after each action the tool flushes, because the server sends the PONG
 * only after it has processed the action. Then it waits up to
 * VIOLATION_GRACE_MS for the handler to report a violation that names the
 * action's subject.
 *
 * SIGTERM or SIGINT ends a --wait early and skips the remaining actions, and
 * the client then closes its connection and exits as usual. A demo uses this
 * to stop a background subscriber once the other clients are done.
 *
 * Exit status: 0 when the actions ran and their outcomes were printed (a
 * rejected connection is an outcome), 2 on a usage error or when the TLS files
 * cannot be loaded. */
#define _GNU_SOURCE /* strcasestr */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <nats/nats.h>

#define EXIT_USAGE 2
#define MAX_ACTIONS 64
#define MAX_VIOLATIONS 64
#define CONNECT_TIMEOUT_MS 5000
#define FLUSH_TIMEOUT_MS 2000
#define REQUEST_TIMEOUT_MS 1000
/* The error callback runs on nats.c's own thread shortly after the -ERR line
 * was read, which happens before the flush returns. 250 ms is an estimate
 * that leaves a wide margin on loopback. */
#define VIOLATION_GRACE_MS 250

typedef enum action_kind {
    ACTION_PUB,
    ACTION_SUB,
    ACTION_REQUEST,
    ACTION_REPLY,
    ACTION_WAIT
} action_kind;

typedef struct action {
    action_kind kind;
    const char *subject; /* borrowed from argv, NULL for ACTION_WAIT */
    const char *data;    /* payload for pub, request and reply, borrowed */
    long wait_ms;        /* ACTION_WAIT only */
} action;

typedef struct options {
    const char *url;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    const char *name;
    action actions[MAX_ACTIONS];
    int action_count;
} options;

/* Permission violations reported by the error handler, consumed by the action
 * whose subject they name. Guarded by mu. */
typedef struct violation_log {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    char *texts[MAX_VIOLATIONS]; /* owned, NULL once consumed */
    int count;
    int dropped;
} violation_log;

static violation_log violations = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .changed = PTHREAD_COND_INITIALIZER,
};

static volatile sig_atomic_t stop_requested;

static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *line_prefix = "";

/* Prints one outcome line. Safe to call from nats.c callback threads. */
__attribute__((format(printf, 1, 2))) static void outcome(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&print_mu);
    fputs(line_prefix, stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&print_mu);
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: workload --url URL --ca CA.pem [--cert CERT.pem --key KEY.pem] [--name NAME]\n"
        "                ACTION...\n"
        "\n"
        "Connects to URL over TLS, trusting the CAs in CA.pem and presenting CERT.pem\n"
        "(an X.509-SVID, leaf first) as the client certificate, then runs the actions in\n"
        "order and prints one line per outcome.\n"
        "\n"
        "actions:\n"
        "  --pub SUBJECT       publish the payload set by the last --data (default \"hello\")\n"
        "  --sub SUBJECT       subscribe; received messages print as 'recv SUBJECT: DATA'\n"
        "  --request SUBJECT   send a request and wait up to %d ms for the reply\n"
        "  --reply SUBJECT     answer every request on SUBJECT with the last --data\n"
        "  --wait MS           wait MS milliseconds, for example to receive messages;\n"
        "                      SIGTERM or SIGINT ends the wait and skips the remaining actions\n"
        "  --data TEXT         payload for the actions that follow\n"
        "\n"
        "--name NAME sets the connection name and prefixes every output line with [NAME].\n"
        "Exit status: 0 when the actions ran, 2 on a usage error.\n",
        REQUEST_TIMEOUT_MS);
}

static int add_action(options *opts, action_kind kind, const char *subject, const char *data,
                      long wait_ms)
{
    if (opts->action_count == MAX_ACTIONS) {
        fprintf(stderr, "workload: too many actions (maximum %d)\n", MAX_ACTIONS);
        return -1;
    }
    opts->actions[opts->action_count++] =
        (action){.kind = kind, .subject = subject, .data = data, .wait_ms = wait_ms};
    return 0;
}

static int parse_wait(const char *text, long *wait_ms)
{
    char *end = NULL;
    long value = strtol(text, &end, 10);

    if (end == text || *end != '\0' || value < 0 || value > 600000) {
        fprintf(stderr, "workload: invalid --wait \"%s\": expected milliseconds from 0 to 600000\n",
                text);
        return -1;
    }
    *wait_ms = value;
    return 0;
}

/* Parses argv into opts. Returns 0, 1 for --help, or -1 on a usage error. */
static int parse_args(int argc, char **argv, options *opts)
{
    const char *data = "hello";

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        if (i + 1 >= argc) {
            fprintf(stderr, "workload: unknown option or missing value: %s\n", arg);
            return -1;
        }

        const char *value = argv[++i];
        int rc = 0;
        long wait_ms = 0;

        if (strcmp(arg, "--url") == 0)
            opts->url = value;
        else if (strcmp(arg, "--ca") == 0)
            opts->ca_file = value;
        else if (strcmp(arg, "--cert") == 0)
            opts->cert_file = value;
        else if (strcmp(arg, "--key") == 0)
            opts->key_file = value;
        else if (strcmp(arg, "--name") == 0)
            opts->name = value;
        else if (strcmp(arg, "--data") == 0)
            data = value;
        else if (strcmp(arg, "--pub") == 0)
            rc = add_action(opts, ACTION_PUB, value, data, 0);
        else if (strcmp(arg, "--sub") == 0)
            rc = add_action(opts, ACTION_SUB, value, NULL, 0);
        else if (strcmp(arg, "--request") == 0)
            rc = add_action(opts, ACTION_REQUEST, value, data, 0);
        else if (strcmp(arg, "--reply") == 0)
            rc = add_action(opts, ACTION_REPLY, value, data, 0);
        else if (strcmp(arg, "--wait") == 0)
            rc = parse_wait(value, &wait_ms) == 0
                     ? add_action(opts, ACTION_WAIT, NULL, NULL, wait_ms)
                     : -1;
        else {
            fprintf(stderr, "workload: unknown option: %s\n", arg);
            return -1;
        }
        if (rc != 0)
            return -1;
    }

    if (opts->url == NULL || opts->ca_file == NULL) {
        fprintf(stderr, "workload: --url and --ca are required\n");
        return -1;
    }
    if ((opts->cert_file == NULL) != (opts->key_file == NULL)) {
        fprintf(stderr, "workload: --cert and --key must be given together\n");
        return -1;
    }
    return 0;
}

static void record_violation(const char *text)
{
    pthread_mutex_lock(&violations.mu);
    if (violations.count < MAX_VIOLATIONS)
        violations.texts[violations.count++] = strdup(text);
    else
        violations.dropped++;
    pthread_cond_broadcast(&violations.changed);
    pthread_mutex_unlock(&violations.mu);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    const char *text = NULL;

    (void)sub;
    (void)closure;
    natsConnection_GetLastError(nc, &text);
    if (err == NATS_NOT_PERMITTED && text != NULL && strcasestr(text, "permissions violation"))
        record_violation(text);
    else
        outcome("async error: %s",
                text != NULL && text[0] != '\0' ? text : natsStatus_GetText(err));
}

/* Takes the first recorded violation whose text names "SUBJECT" (quoted, as
 * the server writes it) after the word verb. Caller frees the result. */
static char *take_violation_locked(const char *verb, const char *subject)
{
    char quoted[512];

    snprintf(quoted, sizeof(quoted), "\"%s\"", subject);
    for (int i = 0; i < violations.count; i++) {
        char *text = violations.texts[i];

        if (text != NULL && strcasestr(text, verb) != NULL && strstr(text, quoted) != NULL) {
            violations.texts[i] = NULL;
            return text;
        }
    }
    return NULL;
}

/* Waits up to VIOLATION_GRACE_MS for a violation naming subject. Returns it
 * (caller frees) or NULL when none arrived. */
static char *await_violation(const char *verb, const char *subject)
{
    struct timespec deadline;
    char *text;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += (long)VIOLATION_GRACE_MS * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;

    pthread_mutex_lock(&violations.mu);
    while ((text = take_violation_locked(verb, subject)) == NULL) {
        if (pthread_cond_timedwait(&violations.changed, &violations.mu, &deadline) != 0)
            break;
    }
    if (text == NULL)
        text = take_violation_locked(verb, subject);
    pthread_mutex_unlock(&violations.mu);
    return text;
}

/* Prints the violations that no action claimed, for example a denied reply. */
static void print_unclaimed_violations(void)
{
    pthread_mutex_lock(&violations.mu);
    for (int i = 0; i < violations.count; i++) {
        if (violations.texts[i] != NULL) {
            outcome("async error: %s", violations.texts[i]);
            free(violations.texts[i]);
            violations.texts[i] = NULL;
        }
    }
    if (violations.dropped > 0)
        outcome("async error: %d more permission violations not shown", violations.dropped);
    violations.count = 0;
    violations.dropped = 0;
    pthread_mutex_unlock(&violations.mu);
}

static void on_message(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    outcome("recv %s: %.*s", natsMsg_GetSubject(msg), natsMsg_GetDataLength(msg),
            natsMsg_GetData(msg));
    natsMsg_Destroy(msg);
}

/* Replies to requests with the payload passed as closure (borrowed from argv). */
static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    const char *answer = closure;
    const char *reply = natsMsg_GetReply(msg);

    (void)sub;
    if (reply == NULL) {
        outcome("recv %s: %.*s (no reply subject, not answered)", natsMsg_GetSubject(msg),
                natsMsg_GetDataLength(msg), natsMsg_GetData(msg));
    } else {
        natsStatus s = natsConnection_PublishString(nc, reply, answer);

        outcome("answered request on %s%s%s", natsMsg_GetSubject(msg), s == NATS_OK ? "" : ": ",
                s == NATS_OK ? "" : natsStatus_GetText(s));
    }
    natsMsg_Destroy(msg);
}

/* Prints the outcome of an action after a flush: a violation naming the
 * subject, a flush failure, or ok. */
static void report_after_flush(natsConnection *nc, const char *label, const char *verb,
                               const char *subject)
{
    natsStatus s = natsConnection_FlushTimeout(nc, FLUSH_TIMEOUT_MS);
    char *violation = await_violation(verb, subject);

    if (violation != NULL)
        outcome("%s %s: permissions violation", label, subject);
    else if (s != NATS_OK)
        outcome("%s %s: failed: %s", label, subject, natsStatus_GetText(s));
    else
        outcome("%s %s: ok", label, subject);
    free(violation);
}

static void run_request(natsConnection *nc, const action *act)
{
    natsMsg *reply = NULL;
    natsStatus s =
        natsConnection_RequestString(&reply, nc, act->subject, act->data, REQUEST_TIMEOUT_MS);
    char *violation = await_violation("publish", act->subject);

    if (violation == NULL)
        violation = await_violation("subscription", "_INBOX.");
    if (violation != NULL)
        outcome("request %s: permissions violation", act->subject);
    else if (s == NATS_OK)
        outcome("request %s: reply \"%.*s\"", act->subject, natsMsg_GetDataLength(reply),
                natsMsg_GetData(reply));
    else if (s == NATS_NO_RESPONDERS)
        outcome("request %s: no responders", act->subject);
    else if (s == NATS_TIMEOUT)
        outcome("request %s: timed out after %d ms", act->subject, REQUEST_TIMEOUT_MS);
    else
        outcome("request %s: failed: %s", act->subject, natsStatus_GetText(s));
    free(violation);
    natsMsg_Destroy(reply);
}

/* Sleeps wait_ms milliseconds in short steps, returning early once SIGTERM or
 * SIGINT has arrived. */
static void wait_until_stopped(long wait_ms)
{
    const long step_ms = 50;

    for (long waited = 0; waited < wait_ms && !stop_requested; waited += step_ms)
        nats_Sleep(wait_ms - waited < step_ms ? wait_ms - waited : step_ms);
}

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static void install_stop_handler(void)
{
    struct sigaction action = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};

    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
}

/* Runs one action. Subscriptions are stored in subs (caller destroys them). */
static void run_action(natsConnection *nc, const action *act, natsSubscription **subs,
                       int *sub_count)
{
    natsSubscription *sub = NULL;
    natsStatus s;

    switch (act->kind) {
    case ACTION_PUB:
        s = natsConnection_PublishString(nc, act->subject, act->data);
        if (s != NATS_OK) {
            outcome("pub %s: failed: %s", act->subject, natsStatus_GetText(s));
            return;
        }
        report_after_flush(nc, "pub", "publish", act->subject);
        return;

    case ACTION_SUB:
    case ACTION_REPLY:
        if (act->kind == ACTION_SUB)
            s = natsConnection_Subscribe(&sub, nc, act->subject, on_message, NULL);
        else
            s = natsConnection_Subscribe(&sub, nc, act->subject, on_request, (void *)act->data);
        if (s != NATS_OK) {
            outcome("sub %s: failed: %s", act->subject, natsStatus_GetText(s));
            return;
        }
        subs[(*sub_count)++] = sub;
        report_after_flush(nc, act->kind == ACTION_SUB ? "sub" : "reply", "subscription",
                           act->subject);
        return;

    case ACTION_REQUEST:
        run_request(nc, act);
        return;

    case ACTION_WAIT:
        wait_until_stopped(act->wait_ms);
        print_unclaimed_violations();
        return;
    }
}

/* Skips the "(file.c:123): " location that nats.c puts before its messages. */
static const char *skip_location(const char *text)
{
    const char *end = text[0] == '(' ? strstr(text, "): ") : NULL;

    return end != NULL ? end + 3 : text;
}

/* Prints the connect outcome. nats.c reports the server's -ERR text (for
 * example "Authorization Violation") through nats_GetLastError. A server that
 * requires client certificates closes the connection during the TLS handshake
 * when none is sent, and nats.c then reports a missing PONG. */
static void report_connect_failure(natsStatus s)
{
    const char *text = nats_GetLastError(NULL);

    if (text == NULL || text[0] == '\0')
        text = natsStatus_GetText(s);
    text = skip_location(text);
    if (strstr(text, "Expected 'PONG', got ''") != NULL)
        text = "connection closed by the server";
    outcome("connect rejected: %s", text);
}

static natsStatus build_nats_options(const options *opts, natsOptions **out)
{
    natsOptions *nopts = NULL;
    natsStatus s = natsOptions_Create(&nopts);

    if (s == NATS_OK)
        s = natsOptions_SetURL(nopts, opts->url);
    if (s == NATS_OK)
        s = natsOptions_SetSecure(nopts, true);
    if (s == NATS_OK)
        s = natsOptions_LoadCATrustedCertificates(nopts, opts->ca_file);
    if (s == NATS_OK && opts->cert_file != NULL)
        s = natsOptions_LoadCertificatesChain(nopts, opts->cert_file, opts->key_file);
    if (s == NATS_OK && opts->name != NULL)
        s = natsOptions_SetName(nopts, opts->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(nopts, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(nopts, false);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(nopts, on_async_error, NULL);

    if (s != NATS_OK) {
        natsOptions_Destroy(nopts);
        return s;
    }
    *out = nopts; /* caller destroys */
    return NATS_OK;
}

int main(int argc, char **argv)
{
    static options opts;
    natsOptions *nopts = NULL;
    natsConnection *nc = NULL;
    natsSubscription *subs[MAX_ACTIONS];
    int sub_count = 0;
    char prefix[128];

    int parsed = parse_args(argc, argv, &opts);
    if (parsed != 0) {
        usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    if (opts.name != NULL) {
        snprintf(prefix, sizeof(prefix), "[%s] ", opts.name);
        line_prefix = prefix;
    }

    install_stop_handler();

    natsStatus s = build_nats_options(&opts, &nopts);
    if (s != NATS_OK) {
        const char *text = nats_GetLastError(NULL);

        fprintf(stderr,
                "workload: failed to set up the connection (check --ca, --cert, --key): %s\n",
                text != NULL && text[0] != '\0' ? skip_location(text) : natsStatus_GetText(s));
        nats_Close();
        return EXIT_USAGE;
    }

    s = natsConnection_Connect(&nc, nopts);
    if (s != NATS_OK) {
        report_connect_failure(s);
    } else {
        outcome("connect ok");
        for (int i = 0; i < opts.action_count && !stop_requested; i++)
            run_action(nc, &opts.actions[i], subs, &sub_count);
        print_unclaimed_violations();
    }

    for (int i = 0; i < sub_count; i++)
        natsSubscription_Destroy(subs[i]);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(nopts);
    nats_CloseAndWait(2000);
    return 0;
}
