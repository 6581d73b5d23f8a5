/* The demo's workload client against a real nats-server, without the callout.
 *
 * The server maps each client certificate's URI SAN to a configured user
 * (tls.verify_and_map) with static permissions, so the test checks how the
 * client reports allowed actions, permission violations and rejected
 * connections. The certificates come from scripts/demo-pki.sh, run from the
 * source tree (the working directory of make check). */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORTS_WAIT_MS 10000

static char dir[] = "/tmp/citadel-workload-XXXXXX";
static pid_t server_pid = -1;
static char url[64];

static void write_file(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");

    cr_assert_not_null(file, "failed to create %s", path);
    fputs(text, file);
    fclose(file);
}

/* Reads "tls://127.0.0.1:PORT" from the server's ports file into url. */
static bool read_ports_file(void)
{
    char path[512];
    char text[256] = "";

    snprintf(path, sizeof(path), "%s/nats-server_%d.ports", dir, (int)server_pid);
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return false;

    size_t n = fread(text, 1, sizeof(text) - 1, file);
    fclose(file);
    text[n] = '\0';

    const char *start = strstr(text, "tls://");
    const char *end = start != NULL ? strchr(start, '"') : NULL;
    if (end == NULL || (size_t)(end - start) >= sizeof(url))
        return false;
    memcpy(url, start, (size_t)(end - start));
    url[end - start] = '\0';
    return true;
}

static void start_server(void)
{
    char command[1024];
    char config[4096];
    char path[512];

    cr_assert_not_null(mkdtemp(dir));
    snprintf(command, sizeof(command), "scripts/demo-pki.sh %s/pki 2>/dev/null", dir);
    cr_assert_eq(system(command), 0,
                 "scripts/demo-pki.sh failed (run the tests from the source tree)");

    snprintf(config, sizeof(config),
             "listen: 127.0.0.1:-1\n"
             "ports_file_dir: \"%s\"\n"
             "tls {\n"
             "  cert_file: \"%s/pki/server.pem\"\n"
             "  key_file: \"%s/pki/server.key\"\n"
             "  ca_file: \"%s/pki/ca.pem\"\n"
             "  verify_and_map: true\n"
             "}\n"
             "authorization { users: [\n"
             "  { user: \"spiffe://citadel.mesh/agent/energy\",\n"
             "    permissions: { publish: { allow: [\"hvac.*.setpoint\"] },\n"
             "                   subscribe: { allow: [\"telemetry.hvac.>\", \"_INBOX.>\"] } } }\n"
             "] }\n",
             dir, dir, dir, dir);
    snprintf(path, sizeof(path), "%s/server.conf", dir);
    write_file(path, config);

    const char *nats_server = getenv("CITADEL_NATS_SERVER");
    if (nats_server == NULL)
        nats_server = "nats-server";

    char log_path[512];
    snprintf(log_path, sizeof(log_path), "%s/server.log", dir);
    server_pid = fork();
    cr_assert_neq(server_pid, -1);
    if (server_pid == 0) {
        execlp(nats_server, nats_server, "-c", path, "-l", log_path, (char *)NULL);
        _exit(127);
    }

    for (int waited = 0; !read_ports_file(); waited += 50) {
        cr_assert_lt(waited, PORTS_WAIT_MS, "nats-server wrote no ports file; see %s", log_path);
        usleep(50 * 1000);
    }
}

static void stop_server(void)
{
    char command[600];

    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    snprintf(command, sizeof(command), "rm -rf %s", dir);
    if (system(command) != 0)
        fprintf(stderr, "failed to remove %s\n", dir);
}

/* Runs workload with the SVID NAME (NULL: no certificate) and the given
 * actions, and returns its output (caller frees). */
static char *run_workload(const char *svid, const char *actions)
{
    const char *tools = getenv("CITADEL_TOOLS");
    char command[2048];
    char cert_args[600] = "";

    cr_assert_not_null(tools,
                       "CITADEL_TOOLS must name the build/tools folder (make check sets it)");
    if (svid != NULL)
        snprintf(cert_args, sizeof(cert_args), "--cert %s/pki/%s.pem --key %s/pki/%s.key", dir,
                 svid, dir, svid);
    snprintf(command, sizeof(command), "%s/workload --url %s --ca %s/pki/ca.pem %s %s 2>&1", tools,
             url, dir, cert_args, actions);

    FILE *pipe = popen(command, "r");
    cr_assert_not_null(pipe);

    size_t size = 0;
    char *output = NULL;
    FILE *out = open_memstream(&output, &size);
    char line[1024];
    while (fgets(line, sizeof(line), pipe) != NULL)
        fputs(line, out);
    fclose(out);

    int status = pclose(pipe);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "workload failed: %s", output);
    return output;
}

/* No Criterion .timeout: Criterion 2.4.1's runner leaks 48 bytes when several
 * tests with a timeout run at once, which fails the sanitizer build. Every
 * wait here is bounded by the workload's own timeouts or PORTS_WAIT_MS. */
TestSuite(workload, .init = start_server, .fini = stop_server);

Test(workload, allowed_publish_ok)
{
    char *output = run_workload("energy", "--pub hvac.zone1.setpoint");

    cr_expect_not_null(strstr(output, "connect ok\n"), "%s", output);
    cr_expect_not_null(strstr(output, "pub hvac.zone1.setpoint: ok\n"), "%s", output);
    free(output);
}

Test(workload, denied_publish_reported)
{
    char *output = run_workload("energy", "--pub door.lobby.unlock --pub hvac.zone2.setpoint");

    cr_expect_not_null(strstr(output, "pub door.lobby.unlock: permissions violation\n"), "%s",
                       output);
    cr_expect_not_null(strstr(output, "pub hvac.zone2.setpoint: ok\n"), "%s", output);
    free(output);
}

Test(workload, denied_subscribe_reported)
{
    char *output = run_workload("energy", "--sub 'door.>' --sub 'telemetry.hvac.>'");

    cr_expect_not_null(strstr(output, "sub door.>: permissions violation\n"), "%s", output);
    cr_expect_not_null(strstr(output, "sub telemetry.hvac.>: ok\n"), "%s", output);
    free(output);
}

Test(workload, request_without_responder)
{
    char *output = run_workload("energy", "--request hvac.zone1.setpoint");

    cr_expect_not_null(strstr(output, "request hvac.zone1.setpoint: no responders\n"), "%s",
                       output);
    free(output);
}

Test(workload, name_prefixes_lines)
{
    char *output = run_workload("energy", "--name energy --pub hvac.zone1.setpoint");

    cr_expect_not_null(strstr(output, "[energy] connect ok\n"), "%s", output);
    cr_expect_not_null(strstr(output, "[energy] pub hvac.zone1.setpoint: ok\n"), "%s", output);
    free(output);
}

Test(workload, unmapped_identity_rejected)
{
    char *output = run_workload("intruder", "--pub hvac.zone1.setpoint");

    cr_expect_not_null(strstr(output, "connect rejected: Authorization Violation\n"), "%s", output);
    cr_expect_null(strstr(output, "pub "), "%s", output);
    free(output);
}

Test(workload, missing_certificate_rejected)
{
    char *output = run_workload(NULL, "--pub hvac.zone1.setpoint");

    cr_expect_not_null(strstr(output, "connect rejected: connection closed by the server\n"), "%s",
                       output);
    free(output);
}

Test(workload, sigterm_ends_wait)
{
    const char *tools = getenv("CITADEL_TOOLS");
    char path[4096], cert[600], key[600], ca[600];
    int fds[2];

    cr_assert_not_null(tools,
                       "CITADEL_TOOLS must name the build/tools folder (make check sets it)");
    snprintf(path, sizeof(path), "%s/workload", tools);
    snprintf(cert, sizeof(cert), "%s/pki/energy.pem", dir);
    snprintf(key, sizeof(key), "%s/pki/energy.key", dir);
    snprintf(ca, sizeof(ca), "%s/pki/ca.pem", dir);
    cr_assert_eq(pipe(fds), 0);

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        execl(path, path, "--url", url, "--ca", ca, "--cert", cert, "--key", key, "--sub",
              "telemetry.hvac.zone1", "--wait", "60000", "--pub", "hvac.zone1.setpoint",
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);

    /* Wait for the subscription line, so the signal arrives during --wait. */
    FILE *out = fdopen(fds[0], "r");
    char line[256];
    bool subscribed = false;
    while (!subscribed && fgets(line, sizeof(line), out) != NULL)
        subscribed = strcmp(line, "sub telemetry.hvac.zone1: ok\n") == 0;
    cr_assert(subscribed, "workload printed no subscription line");

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    cr_assert_eq(kill(pid, SIGTERM), 0);

    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    clock_gettime(CLOCK_MONOTONIC, &end);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_expect_lt(end.tv_sec - start.tv_sec, 10, "workload took too long to stop");
    cr_expect_null(fgets(line, sizeof(line), out), "the action after --wait ran: %s", line);
    fclose(out);
}
