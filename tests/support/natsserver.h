/* Test harness that runs a real nats-server on 127.0.0.1.
 *
 * Each server gets a fresh directory from mkdtemp that contains its config
 * (server.conf), its log (server.log) and its ports file. The config always
 * starts with `listen: 127.0.0.1:-1` and `ports_file_dir` set to that
 * directory, so the server picks a free port and writes it into
 * "<exe>_<pid>.ports"; the harness reads the client port from there. Tests may
 * put their own files (certificates, a JetStream store_dir) into the directory
 * before starting; it is removed with everything in it on stop.
 *
 * The binary is $CITADEL_NATS_SERVER, else `nats-server` on PATH. It must be
 * version 2.10 or newer, because the auth callout first appeared in 2.10.0.
 *
 * The server process gets SIGKILL when the test process dies (Linux
 * PR_SET_PDEATHSIG), so a failed assertion does not leave it running.
 * NOTE: the signal fires when the thread that started the server exits, so
 * start servers from the test's main thread. */
#ifndef CITADEL_TEST_NATSSERVER_H
#define CITADEL_TEST_NATSSERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "citadel/error.h"

typedef struct cc_test_nats_server cc_test_nats_server;

/* Creates the temp directory without starting a server, so that the caller
 * can write files into cc_test_nats_server_dir() first. NULL on failure,
 * with the reason in err. */
cc_test_nats_server *cc_test_nats_server_new(cc_err *err);

/* Writes the config (harness lines, then config_body; NULL for none) and
 * starts the server. Waits up to 10 seconds for the ports file. On failure
 * err contains the reason and cc_test_nats_server_log() may show the server's
 * own message. */
cc_status cc_test_nats_server_start(cc_test_nats_server *srv, const char *config_body, cc_err *err);

/* cc_test_nats_server_new() plus cc_test_nats_server_start(). NULL on
 * failure; the temp directory is removed then. */
cc_test_nats_server *cc_test_nats_server_run(const char *config_body, cc_err *err);

/* Rewrites the config with a new body and sends SIGHUP (config reload).
 * Returns once the signal is sent; poll the log to see the reload finish. */
cc_status cc_test_nats_server_reload(cc_test_nats_server *srv, const char *config_body,
                                     cc_err *err);

/* Stops the server (SIGTERM, then SIGKILL after 5 seconds), removes the temp
 * directory and frees srv. Accepts NULL. */
void cc_test_nats_server_stop(cc_test_nats_server *srv);

/* "nats://127.0.0.1:PORT"; borrowed, valid until stop. */
const char *cc_test_nats_server_url(const cc_test_nats_server *srv);
int cc_test_nats_server_port(const cc_test_nats_server *srv);
pid_t cc_test_nats_server_pid(const cc_test_nats_server *srv);

/* The temp directory (absolute path, no trailing slash); borrowed. */
const char *cc_test_nats_server_dir(const cc_test_nats_server *srv);

/* Returns the whole server log as a malloc'd string (caller frees), or NULL
 * when it cannot be read. */
char *cc_test_nats_server_log(const cc_test_nats_server *srv);

/* Polls the log until it contains needle or timeout_ms passes. */
bool cc_test_nats_server_wait_log(const cc_test_nats_server *srv, const char *needle,
                                  int timeout_ms);

/* Writes content to dir/name (mode 0600) for certificates, creds and
 * similar files. On success *path_out (if not NULL) is the malloc'd full
 * path, which the caller frees. */
cc_status cc_test_nats_server_write_file(const cc_test_nats_server *srv, const char *name,
                                         const char *content, char **path_out, cc_err *err);

#endif
