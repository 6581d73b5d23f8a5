/* Command-line checks of the demo's workload client (build/tools/workload,
 * found through $CITADEL_TOOLS). These cases end before any connection. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs workload with args (NULL-terminated, without argv[0]), output
 * discarded, and returns its exit status. */
static int run_workload(const char *const *args)
{
    const char *tools = getenv("CITADEL_TOOLS");
    char path[4096];
    const char *argv[32];
    int argc = 0;

    if (tools == NULL)
        cr_skip_test("CITADEL_TOOLS is not set; run these tests with make check");
    snprintf(path, sizeof(path), "%s/workload", tools);
    argv[argc++] = path;
    for (size_t i = 0; args[i] != NULL; i++) {
        cr_assert_lt(argc, 31, "too many arguments for this helper");
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int null_fd = open("/dev/null", O_WRONLY);

        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
        execv(path, (char *const *)argv);
        _exit(127);
    }

    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "workload did not exit normally");
    return WEXITSTATUS(status);
}

Test(workload_cli, no_arguments_exit_2)
{
    const char *args[] = {NULL};

    cr_assert_eq(run_workload(args), 2);
}

Test(workload_cli, help_exit_0)
{
    const char *args[] = {"--help", NULL};

    cr_assert_eq(run_workload(args), 0);
}

Test(workload_cli, unknown_option_exit_2)
{
    const char *args[] = {"--url", "tls://127.0.0.1:1", "--ca", "ca.pem", "--publish", "x", NULL};

    cr_assert_eq(run_workload(args), 2);
}

Test(workload_cli, cert_without_key_exit_2)
{
    const char *args[] = {"--url", "tls://127.0.0.1:1", "--ca", "ca.pem", "--cert", "c.pem", NULL};

    cr_assert_eq(run_workload(args), 2);
}

Test(workload_cli, invalid_wait_exit_2)
{
    const char *args[] = {"--url", "tls://127.0.0.1:1", "--ca", "ca.pem", "--wait", "soon", NULL};

    cr_assert_eq(run_workload(args), 2);
}

Test(workload_cli, missing_ca_file_exit_2)
{
    const char *args[] = {"--url", "tls://127.0.0.1:1", "--ca", "/nonexistent/ca.pem", "--pub", "x",
                          NULL};

    cr_assert_eq(run_workload(args), 2);
}
