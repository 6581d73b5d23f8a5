/* Entry point: dispatches to the subcommand named by argv[1]. */
#include <stdio.h>
#include <string.h>

#include "citadel/cli.h"

#ifndef CC_VERSION
#define CC_VERSION "0.1.0"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"version", cc_cli_version, "print the version"},
    {"spiffeid", cc_cli_spiffeid, "check SPIFFE IDs against the strict parser"},
    {"keys", cc_cli_keys, "generate nkeys and print the public key of a seed file"},
    {"jwt", cc_cli_jwt, "decode a NATS JWT and check its signature"},
    {"serve", cc_cli_serve, "run the auth callout service"},
    {"svid", cc_cli_svid, "verify an X509-SVID chain against a trust bundle"},
    {"jwtsvid", cc_cli_jwtsvid, "verify a JWT-SVID against a trust bundle"},
};

static void print_usage(FILE *out)
{
    fprintf(out, "usage: citadel-callout COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'citadel-callout --version' is the same as 'citadel-callout version'.\n"
                 "Run 'citadel-callout COMMAND --help' for a command's options.\n");
}

int cc_cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("citadel-callout %s\n", CC_VERSION);
    return CC_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return CC_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cc_cli_version(argc - 1, argv + 1);

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }

    fprintf(stderr, "citadel-callout: unknown command \"%s\"\n\n", argv[1]);
    print_usage(stderr);
    return CC_EXIT_USAGE;
}
