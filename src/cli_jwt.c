/* `citadel-callout jwt decode`: shows a NATS JWT's header and claims and
 * whether its signature verifies, for debugging callout exchanges.
 *
 * The token is parsed without the signature and time checks, so that a
 * broken or expired token can still be inspected. The checks then run
 * separately and their results go into the output. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "citadel/cli.h"
#include "citadel/natsjwt.h"

static void print_help(FILE *out)
{
    fprintf(out, "usage: citadel-callout jwt decode TOKEN|-\n"
                 "\n"
                 "Decodes a NATS JWT (given as TOKEN, or read from standard input with -)\n"
                 "and prints one JSON object with the fields header, claims,\n"
                 "signature_valid, issuer_kind, expired and not_yet_valid, plus\n"
                 "signature_error when the signature does not verify. Times are compared\n"
                 "with the local clock.\n"
                 "\n"
                 "Exit status: 0 when the signature verifies with the key in iss, 1 when\n"
                 "it does not or the token cannot be parsed, 2 on a usage error. An\n"
                 "expired or not yet valid token is reported in the output but does not\n"
                 "change the exit status.\n");
}

/* Reads standard input up to the JWT size limit. Returns a malloc'd string
 * (caller frees) or NULL with a message printed. */
static char *read_stdin_token(void)
{
    size_t cap = CC_JWT_MAX_LEN + 2;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fprintf(stderr, "citadel-callout jwt: out of memory\n");
        return NULL;
    }
    size_t len = fread(buf, 1, cap - 1, stdin);
    if (ferror(stdin)) {
        fprintf(stderr, "citadel-callout jwt: failed to read standard input\n");
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* Removes leading and trailing whitespace in place and returns the start. */
static char *trim(char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        text[--len] = '\0';
    return text;
}

/* Prints the report for a parsed token; returns the exit status. */
static int print_report(const cc_jwt *jwt)
{
    cc_err sig_err = {0};
    bool signature_valid = cc_jwt_verify_signature(jwt, &sig_err) == CC_OK;
    int64_t now = (int64_t)time(NULL);
    bool expired = jwt->exp != 0 && jwt->exp < now;
    bool not_yet_valid = jwt->nbf != 0 && jwt->nbf > now;

    json_t *report = json_pack("{s:O, s:O, s:b, s:s, s:b, s:b}", "header", jwt->header, "claims",
                               jwt->claims, "signature_valid", signature_valid, "issuer_kind",
                               cc_nkey_kind_name(jwt->issuer_kind), "expired", expired,
                               "not_yet_valid", not_yet_valid);
    if (report != NULL && !signature_valid)
        json_object_set_new(report, "signature_error", json_string(sig_err.message));
    char *text = report != NULL ? json_dumps(report, JSON_INDENT(2)) : NULL;
    json_decref(report);
    if (text == NULL) {
        fprintf(stderr, "citadel-callout jwt: out of memory\n");
        return CC_EXIT_USAGE;
    }

    printf("%s\n", text);
    free(text);
    return signature_valid ? CC_EXIT_OK : CC_EXIT_INVALID;
}

static int decode_command(const char *arg)
{
    char *owned = NULL;
    const char *token = arg;
    if (strcmp(arg, "-") == 0) {
        owned = read_stdin_token();
        if (owned == NULL)
            return CC_EXIT_USAGE;
        token = trim(owned);
    }

    cc_jwt jwt;
    cc_err err = {0};
    int status;
    if (cc_jwt_parse(token, strlen(token), &jwt, &err) != CC_OK) {
        fprintf(stderr, "citadel-callout jwt: %s\n", err.message);
        status = CC_EXIT_INVALID;
    } else {
        status = print_report(&jwt);
        cc_jwt_free(&jwt);
    }
    free(owned);
    return status;
}

int cc_cli_jwt(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_help(stdout);
        return CC_EXIT_OK;
    }
    if (argc >= 3 && strcmp(argv[1], "decode") == 0 &&
        (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        print_help(stdout);
        return CC_EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "decode") != 0) {
        print_help(stderr);
        return CC_EXIT_USAGE;
    }
    return decode_command(argv[2]);
}
