/* Restarts a harness nats-server on its old port; see natsrestart.h. */
#define _GNU_SOURCE
#include "natsrestart.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT_TIMEOUT_MS 10000
#define POLL_MS 50

bool cc_test_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool open = connect(fd, (struct sockaddr *)&address, sizeof(address)) == 0;
    close(fd);
    return open;
}

bool cc_test_wait_port(int port, bool open, int timeout_ms)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};
    for (int waited = 0; waited < timeout_ms; waited += POLL_MS) {
        if (cc_test_port_open(port) == open)
            return true;
        nanosleep(&pause, NULL);
    }
    return cc_test_port_open(port) == open;
}

cc_status cc_test_nats_server_take_down(const cc_test_nats_server *srv, cc_err *err)
{
    int port = cc_test_nats_server_port(srv);
    if (kill(cc_test_nats_server_pid(srv), SIGTERM) != 0)
        return cc_err_set(err, CC_ERR_IO, "cannot signal nats-server: %s", strerror(errno));
    if (!cc_test_wait_port(port, false, PORT_TIMEOUT_MS))
        return cc_err_set(err, CC_ERR_IO, "nats-server still listens on port %d", port);
    return CC_OK;
}

/* Child side of fork: quiet stdio, then exec the server. */
static void exec_server(const char *config_path, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);

    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        _exit(126);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);

    const char *binary = getenv("CITADEL_NATS_SERVER");
    if (binary == NULL)
        binary = "nats-server";
    execlp(binary, "nats-server", "-c", config_path, (char *)NULL);
    _exit(127);
}

cc_status cc_test_nats_server_bring_back(const cc_test_nats_server *srv, const char *config_body,
                                         pid_t *pid, cc_err *err)
{
    int port = cc_test_nats_server_port(srv);
    char *config = NULL;
    if (asprintf(&config, "listen: 127.0.0.1:%d\nlog_file: \"%s/restart.log\"\n%s\n", port,
                 cc_test_nats_server_dir(srv), config_body != NULL ? config_body : "") < 0)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory writing the restart config");

    char *config_path = NULL;
    cc_status status =
        cc_test_nats_server_write_file(srv, "restart.conf", config, &config_path, err);
    free(config);
    if (status != CC_OK)
        return status;

    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0)
        exec_server(config_path, parent);
    free(config_path);
    if (child < 0)
        return cc_err_set(err, CC_ERR_IO, "fork failed: %s", strerror(errno));

    if (!cc_test_wait_port(port, true, PORT_TIMEOUT_MS)) {
        cc_test_nats_stop_pid(child);
        return cc_err_set(err, CC_ERR_IO,
                          "restarted nats-server did not open port %d; see %s/restart.log", port,
                          cc_test_nats_server_dir(srv));
    }
    *pid = child;
    return CC_OK;
}

void cc_test_nats_stop_pid(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}
