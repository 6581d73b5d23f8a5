/* Taking a harness nats-server down and bringing it back on the same port.
 *
 * The harness (natsserver.h) always starts a server on a new random port.
 * Tests of reconnects need the server back where the clients expect it, with
 * the same JetStream store. So this starts a second process with a config in
 * the harness directory. The config has "listen: 127.0.0.1:PORT", a log file
 * next to it, and then the caller's config body. The process gets SIGKILL when
 * the test process dies (Linux PR_SET_PDEATHSIG). */
#ifndef CITADEL_TEST_NATSRESTART_H
#define CITADEL_TEST_NATSRESTART_H

#include <stdbool.h>
#include <sys/types.h>

#include "citadel/error.h"
#include "natsserver.h"

/* Returns true when something accepts TCP connections on 127.0.0.1:port. */
bool cc_test_port_open(int port);

/* Polls until the port is open (or closed, for open == false) or timeout_ms passes. */
bool cc_test_wait_port(int port, bool open, int timeout_ms);

/* Sends SIGTERM to the harness server and waits up to 10 seconds for its port
 * to close. The harness still reaps the process in cc_test_nats_server_stop(). */
cc_status cc_test_nats_server_take_down(const cc_test_nats_server *srv, cc_err *err);

/* Starts nats-server on srv's old port with config_body (may be NULL) and
 * waits up to 10 seconds for the port to open. On success *pid is the new
 * process, which the caller ends with cc_test_nats_stop_pid(). */
cc_status cc_test_nats_server_bring_back(const cc_test_nats_server *srv, const char *config_body,
                                         pid_t *pid, cc_err *err);

/* Sends SIGTERM to pid and reaps it. */
void cc_test_nats_stop_pid(pid_t pid);

#endif
