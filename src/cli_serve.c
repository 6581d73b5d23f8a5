/* citadel-callout serve --config FILE
 *
 * Loads the config, starts the service and waits for signals: SIGHUP reloads
 * policies and bundles, SIGTERM or SIGINT stops the service after in-flight
 * requests are finished and the audit queue is flushed. Signals are blocked
 * before any thread starts, so only the main thread's sigwait() sees them.
 * OpenSSL is initialized first and without its exit handler, which would
 * crash the process at exit (see cc_service_init_openssl()). */
#include <stdio.h>
#include <string.h>

#include <nats/nats.h>

#include "citadel/cli.h"
#include "citadel/config.h"
#include "citadel/log.h"
#include "citadel/service.h"

#define NATS_CLOSE_TIMEOUT_MS 5000

static void print_usage(FILE *out)
{
    fprintf(out, "usage: citadel-callout serve --config FILE\n\n"
                 "Runs the NATS auth callout service.\n\n"
                 "  -c, --config FILE   JSON config file (see docs/configuration.md)\n"
                 "  -h, --help          print this help\n\n"
                 "Signals: SIGHUP reloads policies and trust bundles; SIGTERM and SIGINT stop\n"
                 "the service after in-flight requests and queued audit events are done.\n"
                 "Exit status: 0 after a clean stop; 1 when the config file, or a file it\n"
                 "names (keys, policies, trust bundles, NATS credentials), is missing or\n"
                 "invalid; 2 on a usage error, another start failure (such as an internal\n"
                 "error) or audit events that could not be sent at stop.\n");
}

static int parse_args(int argc, char **argv, const char **config_path)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_usage(stdout);
            return -1;
        }
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            *config_path = argv[++i];
            continue;
        }
        fprintf(stderr, "citadel-callout serve: unexpected argument \"%s\"\n\n", argv[i]);
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
    if (*config_path == NULL) {
        fprintf(stderr, "citadel-callout serve: --config FILE is required\n\n");
        print_usage(stderr);
        return CC_EXIT_USAGE;
    }
    return CC_EXIT_OK;
}

int cc_cli_serve(int argc, char **argv)
{
    const char *config_path = NULL;
    int rc = parse_args(argc, argv, &config_path);
    if (rc != CC_EXIT_OK)
        return rc < 0 ? CC_EXIT_OK : rc;

    cc_err err = {0};
    if (cc_service_init_openssl(&err) != CC_OK) {
        cc_log_json(CC_LOG_ERROR, "start_failed", json_pack("{s:s}", "error", err.message));
        return CC_EXIT_USAGE;
    }
    cc_service_block_signals();

    cc_config *config = NULL;
    if (cc_config_load(config_path, &config, &err) != CC_OK) {
        cc_log_json(CC_LOG_ERROR, "config_invalid", json_pack("{s:s}", "error", err.message));
        return CC_EXIT_INVALID;
    }
    cc_log_set_level(config->log_level);
    cc_log_json(CC_LOG_INFO, "start",
                json_pack("{s:s, s:i}", "config", config->path, "workers", config->workers));

    cc_service *service = NULL;
    if (cc_service_start(config, &service, &err) != CC_OK) {
        cc_log_json(CC_LOG_ERROR, "start_failed", json_pack("{s:s}", "error", err.message));
        nats_CloseAndWait(NATS_CLOSE_TIMEOUT_MS);
        return err.status == CC_ERR_INVALID || err.status == CC_ERR_PERMISSION ? CC_EXIT_INVALID
                                                                               : CC_EXIT_USAGE;
    }

    cc_service_wait_signals(service);
    cc_status status = cc_service_stop(service);
    nats_CloseAndWait(NATS_CLOSE_TIMEOUT_MS);
    cc_log_json(CC_LOG_INFO, "stop",
                json_pack("{s:s}", "result", status == CC_OK ? "clean" : "audit events lost"));
    return status == CC_OK ? CC_EXIT_OK : CC_EXIT_USAGE;
}
