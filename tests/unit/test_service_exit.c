/* Exit status of `citadel-callout serve` after SIGTERM when its NATS
 * connection uses TLS.
 *
 * The binary ($CITADEL_BIN) runs as a fresh process, because the exit
 * sequence depends on which library initializes OpenSSL first, and the
 * Criterion runtime has already initialized OpenSSL in every test process
 * (through libgit2). No nats-server is needed: the config points at a
 * loopback port that is bound but not listening, so the service keeps
 * retrying in the background while TLS is already set up.
 *
 * MALLOC_PERTURB_ makes glibc fill freed memory, so that a use after free at
 * exit crashes every time instead of depending on the heap layout. */
#define _GNU_SOURCE /* asprintf */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "citadel/nkey.h"
#include "../support/jwtmint.h"
#include "../support/pki.h"

#define READY_TIMEOUT_MS 15000
/* Stopping while disconnected waits for the subscription drain (5 s) and
 * the audit flush (10 s) to time out. */
#define STOP_TIMEOUT_MS 40000

static char *dir;
static int closed_port_fd = -1;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *path_in_dir(const char *name)
{
    char *path = NULL;
    cr_assert_gt(asprintf(&path, "%s/%s", dir, name), 0);
    return path;
}

static void write_file(const char *name, const char *content, mode_t mode)
{
    char *path = path_in_dir(name);
    cr_assert_eq(cc_test_write_file(path, content, strlen(content)), 0, "writing %s", path);
    cr_assert_eq(chmod(path, mode), 0);
    free(path);
}

/* Binds a loopback TCP port without listening on it, so that connections to
 * it are refused, and returns the port. The socket stays open until the
 * test ends, so no other process gets the port. */
static int bind_closed_port(void)
{
    closed_port_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(closed_port_fd, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(closed_port_fd, (struct sockaddr *)&address, sizeof(address)), 0);
    socklen_t length = sizeof(address);
    cr_assert_eq(getsockname(closed_port_fd, (struct sockaddr *)&address, &length), 0);
    return ntohs(address.sin_port);
}

static void write_config(int port)
{
    cc_nkey issuer;
    char seed[CC_NKEY_SEED_LEN + 2];
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &issuer, NULL), CC_OK);
    cc_nkey_seed_string(&issuer, seed);
    strcat(seed, "\n");
    write_file("issuer.seed", seed, 0600);
    cc_nkey_wipe(&issuer);
    write_file("auth.pass", "not-used-by-any-server\n", 0600);

    cc_test_cert_spec spec = cc_test_spec_ca("exit test root");
    cc_test_cert *ca = cc_test_cert_issue(&spec, NULL);
    cr_assert_not_null(ca);
    char *ca_path = path_in_dir("ca.pem");
    X509 *roots[1] = {ca->cert};
    cr_assert_eq(cc_test_write_chain_pem(ca_path, roots, 1), 0);
    free(ca_path);
    cc_test_cert_free(ca);

    char *policies = path_in_dir("policies");
    cr_assert_eq(mkdir(policies, 0700), 0);
    free(policies);

    char *config = NULL;
    cr_assert_gt(asprintf(&config,
                          "{\"nats\": {\"servers\": [\"tls://127.0.0.1:%d\"], \"user\": \"auth\",\n"
                          "          \"password_file\": \"auth.pass\",\n"
                          "          \"tls\": {\"ca_file\": \"ca.pem\"}},\n"
                          " \"issuer_seed_file\": \"issuer.seed\",\n"
                          " \"default_account\": \"APP\",\n"
                          " \"trust_domains\": [{\"name\": \"citadel.test\", \"bundle_pem\": "
                          "\"ca.pem\"}],\n"
                          " \"policy_dir\": \"policies\",\n"
                          " \"workers\": 1}\n",
                          port),
                 0);
    write_file("service.json", config, 0600);
    free(config);
}

static void setup(void)
{
    dir = cc_test_tempdir("citadel-exit");
    cr_assert_not_null(dir);
    write_config(bind_closed_port());
}

static void teardown(void)
{
    if (closed_port_fd >= 0)
        close(closed_port_fd);
    closed_port_fd = -1;
    cc_test_remove_tree(dir);
    free(dir);
}

/* No .timeout: the waits below are bounded, and Criterion 2.4 sometimes
 * leaks its record of a test's timeout, which fails the sanitizer run. */
TestSuite(service_exit, .init = setup, .fini = teardown);

static bool log_contains(const char *needle)
{
    char *path = path_in_dir("service.log");
    FILE *file = fopen(path, "r");
    free(path);
    if (file == NULL)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), file) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(file);
    return found;
}

static pid_t start_service(void)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin, "CITADEL_BIN is not set; run the tests with `make check`");
    char *config = path_in_dir("service.json");
    char *log = path_in_dir("service.log");

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        setenv("MALLOC_PERTURB_", "165", 1);
        execl(bin, bin, "serve", "--config", config, (char *)NULL);
        _exit(127);
    }
    free(config);
    free(log);
    return pid;
}

/* Waits up to timeout_ms for pid to exit; returns its wait status, or -1
 * after killing it when it did not exit in time. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int status = 0;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

Test(service_exit, tls_service_exits_zero_on_sigterm)
{
    pid_t pid = start_service();
    bool ready = false;
    for (int waited = 0; !ready && waited < READY_TIMEOUT_MS; waited += 50) {
        ready = log_contains("\"event\":\"subscribed\"");
        if (!ready)
            sleep_ms(50);
    }
    cr_assert(ready, "the service did not log \"subscribed\"");

    kill(pid, SIGTERM);
    int status = wait_exit(pid, STOP_TIMEOUT_MS);

    cr_assert_neq(status, -1, "the service did not exit within %d ms", STOP_TIMEOUT_MS);
    cr_assert(!WIFSIGNALED(status), "the service died from signal %d", WTERMSIG(status));
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
    cr_assert(log_contains("\"result\":\"clean\""));
}

/* Replaces the first "from" in service.json with "to". */
static void edit_config(const char *from, const char *to)
{
    char *path = path_in_dir("service.json");
    FILE *file = fopen(path, "r");
    cr_assert_not_null(file);
    char text[4096] = {0};
    size_t len = fread(text, 1, sizeof(text) - 1, file);
    fclose(file);
    text[len] = '\0';

    char *at = strstr(text, from);
    cr_assert_not_null(at, "service.json has no \"%s\"", from);
    char *edited = NULL;
    cr_assert_gt(asprintf(&edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)), 0);
    write_file("service.json", edited, 0600);
    free(edited);
    free(path);
}

/* Runs `serve --config config_path` and returns its exit status; the service
 * must exit on its own within READY_TIMEOUT_MS. */
static int serve_exit_status(const char *config_path)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin, "CITADEL_BIN is not set; run the tests with `make check`");
    char *log = path_in_dir("service.log");

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(bin, bin, "serve", "--config", config_path, (char *)NULL);
        _exit(127);
    }
    free(log);

    int status = wait_exit(pid, READY_TIMEOUT_MS);
    cr_assert_neq(status, -1, "serve did not exit within %d ms", READY_TIMEOUT_MS);
    cr_assert(WIFEXITED(status), "serve did not exit normally");
    return WEXITSTATUS(status);
}

static int serve_fixture_config(void)
{
    char *config = path_in_dir("service.json");
    int code = serve_exit_status(config);
    free(config);
    return code;
}

Test(service_exit, missing_bundle_exits_one)
{
    edit_config("\"bundle_pem\": \"ca.pem\"", "\"bundle_pem\": \"missing.pem\"");
    cr_expect_eq(serve_fixture_config(), 1);
    cr_expect(log_contains("trust_domains[0].bundle_pem"), "the message names the config key");
    cr_expect(log_contains("correct the path"), "the message names the fix");
}

Test(service_exit, missing_policy_dir_exits_one)
{
    char *policies = path_in_dir("policies");
    cr_assert_eq(rmdir(policies), 0);
    free(policies);
    cr_expect_eq(serve_fixture_config(), 1);
    cr_expect(log_contains("policy_dir"));
}

Test(service_exit, invalid_policy_exits_one)
{
    write_file("policies/bad.json", "{\"rules\": [", 0600);
    cr_expect_eq(serve_fixture_config(), 1);
}

Test(service_exit, missing_seed_exits_one)
{
    edit_config("\"issuer_seed_file\": \"issuer.seed\"", "\"issuer_seed_file\": \"missing.seed\"");
    cr_expect_eq(serve_fixture_config(), 1);
}

Test(service_exit, duplicate_trust_domain_exits_one)
{
    edit_config("\"trust_domains\": [",
                "\"trust_domains\": [{\"name\": \"citadel.test\", \"bundle_pem\": \"ca.pem\"}, ");
    cr_expect_eq(serve_fixture_config(), 1);
}

Test(service_exit, key_as_bundle_exits_one)
{
    cc_test_cert_spec spec = cc_test_spec_ca("key as bundle");
    cc_test_cert *ca = cc_test_cert_issue(&spec, NULL);
    cr_assert_not_null(ca);
    char *key_path = path_in_dir("key.pem");
    cr_assert_eq(cc_test_write_key_pem(key_path, ca->key), 0);
    free(key_path);
    cc_test_cert_free(ca);

    edit_config("\"bundle_pem\": \"ca.pem\"", "\"bundle_pem\": \"key.pem\"");
    cr_expect_eq(serve_fixture_config(), 1);
}

Test(service_exit, config_directory_exits_one)
{
    cr_expect_eq(serve_exit_status(dir), 1);
    cr_expect(log_contains("is a directory"), "the message says the path is a directory");
    cr_expect_not(log_contains("invalid JSON"));
}
