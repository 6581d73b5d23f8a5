/* Subcommands of the citadel-callout binary. Each takes the arguments after
 * its own name (argv[0] is the subcommand name) and returns the exit status:
 * 0 on success, 1 when the input was checked and found invalid, 2 on a usage
 * error or an operational failure. */
#ifndef CITADEL_CLI_H
#define CITADEL_CLI_H

#define CC_EXIT_OK 0
#define CC_EXIT_INVALID 1
#define CC_EXIT_USAGE 2

int cc_cli_version(int argc, char **argv);
int cc_cli_spiffeid(int argc, char **argv);
int cc_cli_svid(int argc, char **argv);
int cc_cli_jwtsvid(int argc, char **argv);

/* citadel-callout jwt decode TOKEN|-: prints a NATS JWT's header and claims. */
int cc_cli_jwt(int argc, char **argv);
int cc_cli_keys(int argc, char **argv);

/* citadel-callout serve --config FILE: runs the auth callout service until SIGTERM or SIGINT. */
int cc_cli_serve(int argc, char **argv);

#endif
