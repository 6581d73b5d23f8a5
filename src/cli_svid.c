/* `citadel-callout svid verify`: verifies an X509-SVID chain from a PEM file
 * against a bundle file, as the service would, and prints what it learned as
 * one JSON object. Operators use it to check an SVID and a bundle before
 * pointing the service at them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "citadel/bundle_load.h"
#include "citadel/cli.h"
#include "citadel/rfc3339.h"
#include "citadel/x509svid.h"
#include "cli_verify_common.h"

#define PREFIX "citadel-callout svid verify"

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: citadel-callout svid verify --bundle PATH [--trust-domain TD] [--at TIME] "
            "CHAIN.pem\n\n"
            "Verifies the X509-SVID in CHAIN.pem (leaf first, then intermediates) against\n"
            "the bundle of the leaf's trust domain. On success prints one JSON object with\n"
            "spiffe_id, trust_domain, serial, fingerprint_sha256 and not_after and exits 0;\n"
            "otherwise prints the reason on stderr and exits 1 (2 for usage errors and\n"
            "unreadable bundles).\n\n"
            "  --bundle PATH        bundle file: PEM CA certificates, a SPIFFE bundle, a\n"
            "                       SPIFFE bundle map or a spiffe-helper JWT bundle file\n"
            "  --trust-domain TD    trust domain of a PEM or single SPIFFE bundle; without\n"
            "                       it such a bundle is bound to the leaf's own trust domain,\n"
            "                       which checks the chain but not that the CAs belong to it\n"
            "  --at TIME            verification time, RFC 3339 (default: now)\n");
}

/* Parsed command line. Strings are borrowed from argv. */
typedef struct svid_options {
    const char *bundle_path;
    const char *trust_domain;
    const char *chain_path;
    int64_t at;
} svid_options;

static int parse_options(int argc, char **argv, svid_options *options)
{
    static const struct option long_options[] = {
        {"bundle", required_argument, NULL, 'b'},
        {"trust-domain", required_argument, NULL, 't'},
        {"at", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };

    options->at = (int64_t)time(NULL);
    optind = 0; /* glibc: reinitialize getopt */
    int c;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        cc_err err;
        switch (c) {
        case 'b':
            options->bundle_path = optarg;
            break;
        case 't':
            options->trust_domain = optarg;
            break;
        case 'a':
            if (cc_rfc3339_parse(optarg, &options->at, &err) != CC_OK) {
                return cc_cli_verify_usage_error(PREFIX, "--at: %s", err.message);
            }
            break;
        case 'h':
            print_usage(stdout);
            return -1;
        default:
            print_usage(stderr);
            return CC_EXIT_USAGE;
        }
    }

    if (options->bundle_path == NULL || optind != argc - 1) {
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
    options->chain_path = argv[optind];
    return CC_EXIT_OK;
}

static void print_info(const cc_x509svid_info *info)
{
    char not_after[CC_RFC3339_SIZE];
    cc_rfc3339_format(info->not_after, not_after);

    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "spiffe_id", info->id.id, "trust_domain",
                            info->id.trust_domain, "serial", info->serial_hex, "fingerprint_sha256",
                            info->fingerprint_sha256, "not_after", not_after);
    char *text = json_dumps(out, JSON_PRESERVE_ORDER);
    printf("%s\n", text != NULL ? text : "{}");
    free(text);
    json_decref(out);
}

/* Loads the bundle, binding a PEM or single SPIFFE bundle without --trust-domain
 * to the trust domain named by the leaf. */
static int load_bundles(const svid_options *options, STACK_OF(X509) * chain,
                        cc_bundle_set **bundles)
{
    static const cc_cli_verify_subject words = {PREFIX, "SVID", "CAs"};
    cc_spiffeid leaf_id;
    const char *fallback = NULL;
    if (options->trust_domain == NULL &&
        cc_x509svid_id_from_cert(sk_X509_value(chain, 0), &leaf_id, NULL) == CC_OK)
        fallback = leaf_id.trust_domain;

    return cc_cli_verify_load_bundles(&words, options->bundle_path, options->trust_domain, fallback,
                                      bundles);
}

/* Prints why the chain failed. When the bundle file contains no bundle for the
 * leaf's trust domain, the library's advice (configure a bundle) is replaced
 * by the command-line fix. */
static void print_failure(const svid_options *options, STACK_OF(X509) * chain,
                          const cc_bundle_set *bundles, const cc_err *err)
{
    cc_spiffeid leaf_id;
    if (cc_x509svid_id_from_cert(sk_X509_value(chain, 0), &leaf_id, NULL) != CC_OK ||
        cc_bundle_set_find(bundles, leaf_id.trust_domain) != NULL) {
        fprintf(stderr, PREFIX ": %s\n", err->message);
        return;
    }
    fprintf(stderr,
            PREFIX ": %s has no bundle for trust domain \"%s\" of %s%s%s%s; "
                   "pass --trust-domain %s, or a --bundle file that contains that trust domain\n",
            options->bundle_path, leaf_id.trust_domain, leaf_id.id,
            options->trust_domain != NULL ? " (--trust-domain bound it to \"" : "",
            options->trust_domain != NULL ? options->trust_domain : "",
            options->trust_domain != NULL ? "\")" : "", leaf_id.trust_domain);
}

static int verify(const svid_options *options)
{
    STACK_OF(X509) *chain = NULL;
    cc_bundle_set *bundles = NULL;
    cc_x509svid_info info;
    cc_err err;
    int exit_code = CC_EXIT_OK;

    if (cc_x509svid_load_pem_file(options->chain_path, &chain, &err) != CC_OK) {
        fprintf(stderr, PREFIX ": %s\n", err.message);
        exit_code = err.status == CC_ERR_INVALID ? CC_EXIT_INVALID : CC_EXIT_USAGE;
        goto done;
    }
    exit_code = load_bundles(options, chain, &bundles);
    if (exit_code != CC_EXIT_OK)
        goto done;

    if (cc_x509svid_verify(chain, bundles, options->at, &info, &err) != CC_OK) {
        print_failure(options, chain, bundles, &err);
        exit_code = CC_EXIT_INVALID;
        goto done;
    }
    print_info(&info);

done:
    cc_bundle_set_release(bundles);
    cc_x509svid_chain_free(chain);
    return exit_code;
}

int cc_cli_svid(int argc, char **argv)
{
    int exit_code = cc_cli_verify_check_word(argc, argv, print_usage);
    if (exit_code >= 0)
        return exit_code;

    svid_options options = {0};
    exit_code = parse_options(argc - 1, argv + 1, &options);
    if (exit_code < 0)
        return CC_EXIT_OK; /* --help */
    if (exit_code != CC_EXIT_OK)
        return exit_code;
    return verify(&options);
}
