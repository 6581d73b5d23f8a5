#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "citadel/natsjwt.h"
#include "citadel/nkey.h"

/* Runs `citadel-callout jwt ARGS` through the shell with stdin_text (or
 * nothing) on standard input. Returns the exit status; *out receives the
 * malloc'd standard output. */
static int run_cli(const char *args, const char *stdin_text, char **out)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin,
                       "CITADEL_BIN must name the citadel-callout binary (make check sets it)");

    char command[8192];
    if (stdin_text != NULL)
        snprintf(command, sizeof(command), "printf '%%s\\n' '%s' | '%s' jwt %s 2>/dev/null",
                 stdin_text, bin, args);
    else
        snprintf(command, sizeof(command), "'%s' jwt %s </dev/null 2>/dev/null", bin, args);

    FILE *pipe = popen(command, "r");
    cr_assert_not_null(pipe);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - 1 - len, pipe)) > 0)
        len += n;
    buf[len] = '\0';
    int status = pclose(pipe);
    cr_assert(WIFEXITED(status), "%s did not exit normally", command);
    *out = buf;
    return WEXITSTATUS(status);
}

static char *make_token(int64_t exp)
{
    cc_nkey key;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &key, NULL), CC_OK);
    json_t *claims = json_pack("{s:s, s:I, s:{s:s, s:i}}", "name", "cli", "exp", (json_int_t)exp,
                               "nats", "type", "user", "version", 2);
    char *token = NULL;
    cr_assert_eq(cc_jwt_encode(claims, &key, (int64_t)time(NULL), &token, NULL), CC_OK);
    json_decref(claims);
    cc_nkey_wipe(&key);
    return token;
}

static json_t *parse_output(const char *text)
{
    json_t *report = json_loads(text, 0, NULL);
    cr_assert_not_null(report, "output is not JSON: %s", text);
    return report;
}

Test(cli_jwt, decode_valid_token)
{
    char *token = make_token((int64_t)time(NULL) + 3600);
    char args[4096];
    snprintf(args, sizeof(args), "decode '%s'", token);
    char *out = NULL;

    cr_assert_eq(run_cli(args, NULL, &out), 0, "%s", out);
    json_t *report = parse_output(out);
    cr_assert(json_is_true(json_object_get(report, "signature_valid")));
    cr_assert(json_is_false(json_object_get(report, "expired")));
    cr_assert_str_eq(json_string_value(json_object_get(report, "issuer_kind")), "account");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(report, "header"), "alg")),
                     "ed25519-nkey");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(report, "claims"), "name")),
                     "cli");
    json_decref(report);
    free(out);
    free(token);
}

Test(cli_jwt, decode_from_stdin)
{
    char *token = make_token(0);
    char *out = NULL;

    cr_assert_eq(run_cli("decode -", token, &out), 0, "%s", out);
    json_t *report = parse_output(out);
    cr_assert(json_is_true(json_object_get(report, "signature_valid")));
    json_decref(report);
    free(out);
    free(token);
}

Test(cli_jwt, bad_signature_exits_1)
{
    char *token = make_token(0);
    size_t at = strlen(token) - 2;
    token[at] = token[at] == 'A' ? 'B' : 'A';
    char args[4096];
    snprintf(args, sizeof(args), "decode '%s'", token);
    char *out = NULL;

    cr_assert_eq(run_cli(args, NULL, &out), 1, "%s", out);
    json_t *report = parse_output(out);
    cr_assert(json_is_false(json_object_get(report, "signature_valid")));
    cr_assert_not_null(json_object_get(report, "signature_error"));
    json_decref(report);
    free(out);
    free(token);
}

Test(cli_jwt, expired_still_exits_0)
{
    char *token = make_token((int64_t)time(NULL) - 60);
    char args[4096];
    snprintf(args, sizeof(args), "decode '%s'", token);
    char *out = NULL;

    cr_assert_eq(run_cli(args, NULL, &out), 0, "%s", out);
    json_t *report = parse_output(out);
    cr_assert(json_is_true(json_object_get(report, "expired")));
    json_decref(report);
    free(out);
    free(token);
}

Test(cli_jwt, malformed_exits_1)
{
    char *out = NULL;
    cr_assert_eq(run_cli("decode not.a.jwt", NULL, &out), 1);
    cr_assert_str_eq(out, "");
    free(out);
}

Test(cli_jwt, usage_exits_2)
{
    char *out = NULL;
    cr_assert_eq(run_cli("", NULL, &out), 2);
    free(out);
    cr_assert_eq(run_cli("encode x", NULL, &out), 2);
    free(out);
    cr_assert_eq(run_cli("--help", NULL, &out), 0);
    cr_assert(strstr(out, "does not\nchange the exit status") != NULL, "%s", out);
    free(out);
}
