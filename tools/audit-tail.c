/* audit-tail: prints every message of the audit stream as one JSON line.
 *
 *   audit-tail --url URL --ca CA.pem [--cert CERT.pem --key KEY.pem]
 *              [--user USER --password-file FILE] [--stream NAME] [--summary]
 *
 * It reads the stream's first and last sequence from the stream info and then
 * fetches each message with a direct "get message" request, so it needs no
 * consumer and leaves the stream unchanged. Messages deleted in between are
 * skipped. Payloads that are JSON are printed compact, one per line. Any
 * other payload is printed as {"stream_seq": N, "subject": S, "payload": TEXT}.
 * With --summary it prints one short line per citadel-callout decision event
 * instead: the decision, the client's connection name, the SPIFFE ID, and the
 * rule and account (allow) or the code and reason (deny).
 *
 * Exit status: 0 when the stream was read, 1 when the connection or a
 * JetStream request failed, 2 on a usage error. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nats/nats.h>

#include "citadel/spiffeid.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define CONNECT_TIMEOUT_MS 5000
#define PASSWORD_MAX 1024

typedef struct options {
    const char *url;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    const char *user;
    const char *password_file;
    const char *stream;
    bool summary;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: audit-tail --url URL --ca CA.pem [--cert CERT.pem --key KEY.pem]\n"
            "                  [--user USER --password-file FILE] [--stream NAME] [--summary]\n"
            "\n"
            "Prints every message of the JetStream stream NAME (default CITADEL_AUDIT) as one\n"
            "JSON line, or with --summary one short line per decision event. The password is\n"
            "read from the first line of FILE.\n");
}

static int parse_args(int argc, char **argv, options *opts)
{
    opts->stream = "CITADEL_AUDIT";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        if (strcmp(arg, "--summary") == 0) {
            opts->summary = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "audit-tail: unknown option or missing value: %s\n", arg);
            return -1;
        }

        const char *value = argv[++i];

        if (strcmp(arg, "--url") == 0)
            opts->url = value;
        else if (strcmp(arg, "--ca") == 0)
            opts->ca_file = value;
        else if (strcmp(arg, "--cert") == 0)
            opts->cert_file = value;
        else if (strcmp(arg, "--key") == 0)
            opts->key_file = value;
        else if (strcmp(arg, "--user") == 0)
            opts->user = value;
        else if (strcmp(arg, "--password-file") == 0)
            opts->password_file = value;
        else if (strcmp(arg, "--stream") == 0)
            opts->stream = value;
        else {
            fprintf(stderr, "audit-tail: unknown option: %s\n", arg);
            return -1;
        }
    }

    if (opts->url == NULL || opts->ca_file == NULL) {
        fprintf(stderr, "audit-tail: --url and --ca are required\n");
        return -1;
    }
    if ((opts->cert_file == NULL) != (opts->key_file == NULL)) {
        fprintf(stderr, "audit-tail: --cert and --key must be given together\n");
        return -1;
    }
    if ((opts->user == NULL) != (opts->password_file == NULL)) {
        fprintf(stderr, "audit-tail: --user and --password-file must be given together\n");
        return -1;
    }
    return 0;
}

/* Reads the first line of path into password (without the newline). */
static int read_password(const char *path, char *password, size_t size)
{
    FILE *file = fopen(path, "r");

    if (file == NULL) {
        fprintf(stderr, "audit-tail: failed to open --password-file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (fgets(password, (int)size, file) == NULL) {
        fprintf(stderr, "audit-tail: --password-file %s is empty\n", path);
        fclose(file);
        return -1;
    }
    fclose(file);
    password[strcspn(password, "\r\n")] = '\0';
    return 0;
}

static natsStatus build_nats_options(const options *opts, const char *password, natsOptions **out)
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
    if (s == NATS_OK && opts->user != NULL)
        s = natsOptions_SetUserInfo(nopts, opts->user, password);
    if (s == NATS_OK)
        s = natsOptions_SetName(nopts, "audit-tail");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(nopts, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(nopts, false);

    if (s != NATS_OK) {
        natsOptions_Destroy(nopts);
        return s;
    }
    *out = nopts; /* caller destroys */
    return NATS_OK;
}

/* Returns the string event[key] (or event[key][subkey] when subkey is set),
 * or "-" when it is missing or not a string. */
static const char *field(json_t *event, const char *key, const char *subkey)
{
    json_t *value = json_object_get(event, key);

    if (subkey != NULL)
        value = json_object_get(value, subkey);
    return json_is_string(value) ? json_string_value(value) : "-";
}

/* Prints a decision event as "allow [name] spiffe://... rule R, account A"
 * or "deny  [name] spiffe://... code: reason". A deny before the SVID was
 * verified has no SPIFFE ID: the ID its leaf claimed is shown as
 * "claimed spiffe://...", or "(no verified ID)" when none parsed. */
static void print_summary(json_t *event)
{
    const char *decision = field(event, "decision", NULL);
    const char *spiffe_id = field(event, "spiffe_id", NULL);
    char name[80];
    char claimed[CC_SPIFFEID_MAX + 16];

    if (strcmp(spiffe_id, "-") == 0) {
        const char *claimed_id = field(event, "claimed_spiffe_id", NULL);
        if (strcmp(claimed_id, "-") == 0) {
            spiffe_id = "(no verified ID)";
        } else {
            snprintf(claimed, sizeof(claimed), "claimed %s", claimed_id);
            spiffe_id = claimed;
        }
    }

    snprintf(name, sizeof(name), "[%s]", field(event, "client", "name"));
    if (strcmp(decision, "allow") == 0)
        printf("allow  %-11s %-40s rule %s, account %s\n", name, spiffe_id,
               field(event, "rule", NULL), field(event, "account", NULL));
    else
        printf("%-6s %-11s %-40s %s: %s\n", decision, name, spiffe_id, field(event, "code", NULL),
               field(event, "reason", NULL));
}

static void print_message(natsMsg *msg, uint64_t seq, bool summary)
{
    json_error_t error;
    json_t *event = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, &error);

    if (event != NULL && summary) {
        print_summary(event);
        json_decref(event);
        return;
    }
    if (event == NULL) {
        event = json_pack("{s:I, s:s, s:s%}", "stream_seq", (json_int_t)seq, "subject",
                          natsMsg_GetSubject(msg), "payload", natsMsg_GetData(msg),
                          (size_t)natsMsg_GetDataLength(msg));
    }
    if (event == NULL) {
        /* json_pack fails on a payload that is not UTF-8, or out of memory. */
        printf("{\"stream_seq\": %llu, \"error\": \"payload is neither JSON nor UTF-8\"}\n",
               (unsigned long long)seq);
        return;
    }
    char *line = json_dumps(event, JSON_COMPACT);

    if (line != NULL)
        puts(line);
    free(line);
    json_decref(event);
}

/* Prints messages first..last of the stream. Returns 0 or EXIT_FAILED. */
static int print_stream(jsCtx *js, const char *stream, bool summary)
{
    jsStreamInfo *info = NULL;
    jsErrCode js_err = 0;
    natsStatus s = js_GetStreamInfo(&info, js, stream, NULL, &js_err);

    if (s != NATS_OK) {
        fprintf(stderr,
                "audit-tail: failed to read the info of stream %s: %s (JetStream error %d)\n",
                stream, natsStatus_GetText(s), (int)js_err);
        return EXIT_FAILED;
    }

    uint64_t first = info->State.FirstSeq;
    uint64_t last = info->State.LastSeq;
    int rc = 0;

    jsStreamInfo_Destroy(info);
    for (uint64_t seq = first; seq != 0 && seq <= last; seq++) {
        natsMsg *msg = NULL;

        s = js_GetMsg(&msg, js, stream, seq, NULL, &js_err);
        if (s == NATS_NOT_FOUND)
            continue; /* deleted after the stream info was read */
        if (s != NATS_OK) {
            fprintf(stderr, "audit-tail: failed to get message %llu of stream %s: %s\n",
                    (unsigned long long)seq, stream, natsStatus_GetText(s));
            rc = EXIT_FAILED;
            break;
        }
        print_message(msg, seq, summary);
        natsMsg_Destroy(msg);
    }
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv)
{
    options opts = {0};
    char password[PASSWORD_MAX] = "";
    natsOptions *nopts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    int rc = EXIT_FAILED;

    int parsed = parse_args(argc, argv, &opts);
    if (parsed != 0) {
        usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : EXIT_USAGE;
    }
    if (opts.password_file != NULL &&
        read_password(opts.password_file, password, sizeof(password)) != 0)
        return EXIT_USAGE;

    natsStatus s = build_nats_options(&opts, password, &nopts);
    if (s != NATS_OK) {
        fprintf(stderr,
                "audit-tail: failed to set up the connection (check --ca, --cert, --key): %s\n",
                natsStatus_GetText(s));
        rc = EXIT_USAGE;
        goto cleanup;
    }

    s = natsConnection_Connect(&nc, nopts);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        const char *text = nats_GetLastError(NULL);

        fprintf(stderr, "audit-tail: failed to connect to %s: %s\n", opts.url,
                text != NULL && text[0] != '\0' ? text : natsStatus_GetText(s));
        goto cleanup;
    }
    rc = print_stream(js, opts.stream, opts.summary);

cleanup:
    memset(password, 0, sizeof(password));
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(nopts);
    nats_CloseAndWait(2000);
    return rc;
}
