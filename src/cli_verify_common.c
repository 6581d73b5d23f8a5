/* The parts of `svid verify` and `jwtsvid verify` that are the same for both:
 * the subcommand word, usage errors and bundle loading. Each command keeps its
 * own usage text, options and verification. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "citadel/cli.h"
#include "cli_verify_common.h"

int cc_cli_verify_check_word(int argc, char **argv, void (*print_usage)(FILE *out))
{
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return -1;

    bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    print_usage(help ? stdout : stderr);
    return help ? CC_EXIT_OK : CC_EXIT_USAGE;
}

int cc_cli_verify_usage_error(const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prefix);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return CC_EXIT_USAGE;
}

int cc_cli_verify_load_bundles(const cc_cli_verify_subject *subject, const char *bundle_path,
                               const char *trust_domain, const char *fallback,
                               cc_bundle_set **bundles)
{
    cc_err err;
    bool used_fallback = false;
    if (cc_bundle_load_file_with_fallback(bundle_path, trust_domain, fallback, bundles,
                                          &used_fallback, &err) != CC_OK) {
        fprintf(stderr, "%s: %s\n", subject->prefix, err.message);
        return CC_EXIT_USAGE;
    }
    if (used_fallback)
        fprintf(stderr,
                "%s: note: %s does not name its trust domain, so it was bound to \"%s\" from "
                "the %s itself; pass --trust-domain to check that these %s belong to it\n",
                subject->prefix, bundle_path, fallback, subject->document, subject->authorities);
    return CC_EXIT_OK;
}
