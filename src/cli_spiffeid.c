/* `citadel-callout spiffeid check ID...`: validates SPIFFE IDs with the same
 * strict parser the verifier uses, so operators can check IDs before putting
 * them into policies. */
#include <stdio.h>
#include <string.h>

#include "citadel/cli.h"
#include "citadel/spiffeid.h"

static void print_usage(FILE *out)
{
    fprintf(out, "usage: citadel-callout spiffeid check ID...\n\n"
                 "Checks each SPIFFE ID. Prints one line per invalid ID with the rule it\n"
                 "breaks, and exits 0 when every ID is valid, 1 otherwise.\n");
}

static int check_ids(int count, char **ids)
{
    int status = CC_EXIT_OK;

    for (int i = 0; i < count; i++) {
        cc_spiffeid id;
        cc_err err;
        if (cc_spiffeid_parse(ids[i], strlen(ids[i]), &id, &err) != CC_OK) {
            printf("%s\n", err.message);
            status = CC_EXIT_INVALID;
        }
    }
    return status;
}

int cc_cli_spiffeid(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_usage(stdout);
        return CC_EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "citadel-callout spiffeid: unknown subcommand \"%s\"\n\n", argv[1]);
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
    if (argc < 3) {
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
    return check_ids(argc - 2, argv + 2);
}
