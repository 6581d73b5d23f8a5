/* `citadel-callout jwtsvid verify`: verifies a JWT-SVID against a bundle file
 * and an audience, as the service would, and prints what it learned as one
 * JSON object. The token is read from stdin with "-", which keeps it out of
 * the process list and shell history. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "citadel/bundle_load.h"
#include "citadel/cli.h"
#include "citadel/jwtsvid.h"
#include "citadel/rfc3339.h"
#include "cli_verify_common.h"

#define PREFIX "citadel-callout jwtsvid verify"

/* Maximum number of --audience options. */
#define MAX_AUDIENCES 16

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: citadel-callout jwtsvid verify --bundle PATH --audience AUD [--audience AUD]\n"
            "           [--trust-domain TD] [--at TIME] [--leeway SECONDS] TOKEN|-\n\n"
            "Verifies a JWT-SVID (given as an argument, or on stdin with \"-\") against the\n"
            "JWT authorities of the bundle of its subject's trust domain. On success prints\n"
            "one JSON object with spiffe_id, trust_domain, kid, alg, exp and audience and\n"
            "exits 0; otherwise prints the reason on stderr and exits 1 (2 for usage errors\n"
            "and unreadable bundles).\n\n"
            "  --bundle PATH        bundle file: a SPIFFE bundle, a SPIFFE bundle map or a\n"
            "                       spiffe-helper JWT bundle file\n"
            "  --audience AUD       an audience this service accepts; at least one, at most %d\n"
            "  --trust-domain TD    trust domain of a single SPIFFE bundle; without it such a\n"
            "                       bundle is bound to the token's own trust domain, which\n"
            "                       checks the signature but not that the keys belong to it\n"
            "  --at TIME            verification time, RFC 3339 (default: now)\n"
            "  --leeway SECONDS     clock skew allowed for exp and nbf (default: %d)\n",
            MAX_AUDIENCES, CC_JWTSVID_LEEWAY_DEFAULT);
}

/* Parsed command line. Strings are borrowed from argv. */
typedef struct jwt_options {
    const char *bundle_path;
    const char *trust_domain;
    const char *audiences[MAX_AUDIENCES];
    size_t audience_count;
    const char *token_arg;
    int64_t at;
    int64_t leeway;
} jwt_options;

static int parse_leeway(const char *text, int64_t *out)
{
    char *end = NULL;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || value < 0 || value > 86400)
        return cc_cli_verify_usage_error(
            PREFIX, "--leeway \"%s\" must be a number of seconds from 0 to 86400", text);
    *out = value;
    return CC_EXIT_OK;
}

/* Handles one option; returns CC_EXIT_OK, CC_EXIT_USAGE, or -1 after --help. */
static int apply_option(int c, jwt_options *options)
{
    cc_err err;
    switch (c) {
    case 'b':
        options->bundle_path = optarg;
        return CC_EXIT_OK;
    case 't':
        options->trust_domain = optarg;
        return CC_EXIT_OK;
    case 'u':
        if (options->audience_count == MAX_AUDIENCES)
            return cc_cli_verify_usage_error(PREFIX, "too many --audience options (at most %d)",
                                             MAX_AUDIENCES);
        options->audiences[options->audience_count++] = optarg;
        return CC_EXIT_OK;
    case 'a':
        if (cc_rfc3339_parse(optarg, &options->at, &err) != CC_OK)
            return cc_cli_verify_usage_error(PREFIX, "--at: %s", err.message);
        return CC_EXIT_OK;
    case 'l':
        return parse_leeway(optarg, &options->leeway);
    case 'h':
        print_usage(stdout);
        return -1;
    default:
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
}

static int parse_options(int argc, char **argv, jwt_options *options)
{
    static const struct option long_options[] = {
        {"bundle", required_argument, NULL, 'b'},
        {"trust-domain", required_argument, NULL, 't'},
        {"audience", required_argument, NULL, 'u'},
        {"at", required_argument, NULL, 'a'},
        {"leeway", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };

    options->at = (int64_t)time(NULL);
    options->leeway = CC_JWTSVID_LEEWAY_DEFAULT;
    optind = 0; /* glibc: reinitialize getopt */
    int c;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        int result = apply_option(c, options);
        if (result != CC_EXIT_OK)
            return result;
    }

    if (options->bundle_path == NULL || optind != argc - 1) {
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
    if (options->audience_count == 0)
        return cc_cli_verify_usage_error(
            PREFIX, "at least one --audience is required; a token is accepted only "
                    "when it names one of them");
    options->token_arg = argv[optind];
    return CC_EXIT_OK;
}

/* Returns the token: the argument, or stdin for "-" with surrounding
 * whitespace removed. Caller frees. NULL when stdin is unreadable or too long. */
static char *read_token(const char *arg)
{
    if (strcmp(arg, "-") != 0)
        return strdup(arg);

    size_t size = CC_JWTSVID_MAX_LEN + 2;
    char *buf = malloc(size);
    if (buf == NULL)
        return NULL;
    size_t len = fread(buf, 1, size - 1, stdin);
    if (ferror(stdin) || len == size - 1) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';

    while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL)
        buf[--len] = '\0';
    size_t start = strspn(buf, " \t\r\n");
    memmove(buf, buf + start, len - start + 1);
    return buf;
}

static void print_info(const cc_jwtsvid_info *info, const char *audience)
{
    char exp[CC_RFC3339_SIZE];
    cc_rfc3339_format(info->exp, exp);

    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "spiffe_id", info->spiffe_id,
                            "trust_domain", info->trust_domain, "kid", info->kid, "alg", info->alg,
                            "exp", exp, "audience", audience);
    char *text = json_dumps(out, JSON_PRESERVE_ORDER);
    printf("%s\n", text != NULL ? text : "{}");
    free(text);
    json_decref(out);
}

/* Loads the bundle, binding a single SPIFFE bundle without --trust-domain to
 * the trust domain named by the token's subject. */
static int load_bundles(const jwt_options *options, const char *token, cc_bundle_set **bundles)
{
    static const cc_cli_verify_subject words = {PREFIX, "token", "keys"};
    cc_spiffeid subject;
    const char *fallback = NULL;
    if (options->trust_domain == NULL && cc_jwtsvid_peek_subject(token, &subject, NULL) == CC_OK)
        fallback = subject.trust_domain;

    return cc_cli_verify_load_bundles(&words, options->bundle_path, options->trust_domain, fallback,
                                      bundles);
}

static int verify(const jwt_options *options)
{
    cc_bundle_set *bundles = NULL;
    cc_jwtsvid_info info;
    cc_err err;
    int exit_code = CC_EXIT_OK;

    char *token = read_token(options->token_arg);
    if (token == NULL) {
        fprintf(stderr,
                PREFIX ": could not read the token from stdin "
                       "(unreadable, or longer than %d bytes)\n",
                CC_JWTSVID_MAX_LEN);
        return CC_EXIT_USAGE;
    }

    exit_code = load_bundles(options, token, &bundles);
    if (exit_code != CC_EXIT_OK)
        goto done;

    if (cc_jwtsvid_verify(token, bundles, options->audiences, options->audience_count, options->at,
                          options->leeway, &info, &err) != CC_OK) {
        fprintf(stderr, PREFIX ": %s\n", err.message);
        exit_code = CC_EXIT_INVALID;
        goto done;
    }
    print_info(&info, options->audiences[info.matched_audience]);

done:
    cc_bundle_set_release(bundles);
    free(token);
    return exit_code;
}

int cc_cli_jwtsvid(int argc, char **argv)
{
    int exit_code = cc_cli_verify_check_word(argc, argv, print_usage);
    if (exit_code >= 0)
        return exit_code;

    jwt_options options = {0};
    exit_code = parse_options(argc - 1, argv + 1, &options);
    if (exit_code < 0)
        return CC_EXIT_OK; /* --help */
    if (exit_code != CC_EXIT_OK)
        return exit_code;
    return verify(&options);
}
