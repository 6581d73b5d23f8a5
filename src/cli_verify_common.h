/* Helpers shared by the `svid verify` and `jwtsvid verify` subcommands
 * (cli_svid.c and cli_jwtsvid.c). Not part of the public API. */
#ifndef CITADEL_CLI_VERIFY_COMMON_H
#define CITADEL_CLI_VERIFY_COMMON_H

#include <stdio.h>

#include "citadel/bundle_load.h"

/* Checks the subcommand word. Returns -1 when argv[1] is "verify", so the
 * caller goes on parsing argv + 1. Otherwise prints the usage, on stdout for
 * --help or -h and on stderr for anything else, and returns the exit code. */
int cc_cli_verify_check_word(int argc, char **argv, void (*print_usage)(FILE *out));

/* Prints "PREFIX: MESSAGE" and a newline on stderr and returns CC_EXIT_USAGE.
 * prefix is the command, e.g. "citadel-callout svid verify". */
int cc_cli_verify_usage_error(const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Words that name what the verified document is and what its trust domain's
 * bundle contributes, for the note printed when the bundle was bound to the
 * document's own trust domain. */
typedef struct cc_cli_verify_subject {
    const char *prefix;      /* the command, e.g. "citadel-callout svid verify" */
    const char *document;    /* "SVID" or "token" */
    const char *authorities; /* "CAs" or "keys" */
} cc_cli_verify_subject;

/* Loads bundle_path into *bundles (caller releases). A bundle file that does
 * not name its trust domain is bound to trust_domain. When trust_domain is
 * NULL, such a file is bound to fallback, the document's own trust domain (may
 * be NULL), and a note on stderr says so. Returns CC_EXIT_OK, or prints the
 * error and returns CC_EXIT_USAGE. */
int cc_cli_verify_load_bundles(const cc_cli_verify_subject *subject, const char *bundle_path,
                               const char *trust_domain, const char *fallback,
                               cc_bundle_set **bundles);

#endif
