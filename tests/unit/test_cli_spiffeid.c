/* `citadel-callout spiffeid check`: runs the built binary (path in
 * CITADEL_BIN, set by `make check`) and checks exit codes and output. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct run_result {
    int exit_code;
    char output[8192]; /* stdout, or stderr for run_binary_stream() with STDERR_FILENO */
} run_result;

/* Runs CITADEL_BIN with args (NULL-terminated, without argv[0]) and captures
 * the output stream stream_fd (STDOUT_FILENO or STDERR_FILENO). */
static void run_binary_stream(const char *const *args, int stream_fd, run_result *result)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin, "CITADEL_BIN is not set; run the tests with `make check`");

    char *argv[16] = {(char *)bin};
    for (int i = 0; args[i] != NULL; i++) {
        cr_assert_lt(i, 14);
        argv[i + 1] = (char *)args[i];
    }

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], stream_fd);
        close(fds[0]);
        close(fds[1]);
        execv(bin, argv);
        _exit(127);
    }
    close(fds[1]);

    size_t used = 0;
    ssize_t n;
    while ((n = read(fds[0], result->output + used, sizeof(result->output) - 1 - used)) > 0)
        used += (size_t)n;
    result->output[used] = '\0';
    close(fds[0]);

    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    result->exit_code = WEXITSTATUS(status);
}

static void run_binary(const char *const *args, run_result *result)
{
    run_binary_stream(args, STDOUT_FILENO, result);
}

static size_t count_lines(const char *text)
{
    size_t lines = 0;
    for (; *text != '\0'; text++)
        lines += *text == '\n';
    return lines;
}

Test(cli_spiffeid, all_valid)
{
    run_result result;
    run_binary((const char *const[]){"spiffeid", "check", "spiffe://example.org/a",
                                     "spiffe://example.org", NULL},
               &result);
    cr_assert_eq(result.exit_code, 0);
    cr_assert_str_eq(result.output, "");
}

Test(cli_spiffeid, one_line_per_invalid)
{
    run_result result;
    run_binary((const char *const[]){"spiffeid", "check", "spiffe://example.org/ok",
                                     "spiffe://example.org//x", "spiffe://Example.org/a", NULL},
               &result);
    cr_assert_eq(result.exit_code, 1);
    cr_assert_eq(count_lines(result.output), 2, "%s", result.output);
    cr_assert(strstr(result.output, "\"spiffe://example.org//x\": path cannot contain empty "
                                    "segments\n") != NULL,
              "%s", result.output);
    cr_assert(strstr(result.output, "\"spiffe://Example.org/a\": trust domain characters") != NULL,
              "%s", result.output);
    cr_assert(strstr(result.output, "example.org/ok") == NULL, "%s", result.output);
}

Test(cli_spiffeid, usage_errors)
{
    run_result result;
    run_binary((const char *const[]){"spiffeid", "check", NULL}, &result);
    cr_assert_eq(result.exit_code, 2);
    run_binary((const char *const[]){"spiffeid", "verify", "spiffe://td/a", NULL}, &result);
    cr_assert_eq(result.exit_code, 2);
    run_binary((const char *const[]){"spiffeid", "--help", NULL}, &result);
    cr_assert_eq(result.exit_code, 0);
    cr_assert(strstr(result.output, "usage: citadel-callout spiffeid check ID...") != NULL);
}

Test(cli_spiffeid, unknown_subcommand_named)
{
    run_result result;
    run_binary_stream((const char *const[]){"spiffeid", "foo", NULL}, STDERR_FILENO, &result);
    cr_expect_eq(result.exit_code, 2);
    cr_expect_not_null(strstr(result.output, "unknown subcommand \"foo\""), "%s", result.output);
}

Test(cli_main, version_flag)
{
    run_result flag;
    run_binary((const char *const[]){"--version", NULL}, &flag);
    cr_expect_eq(flag.exit_code, 0);
    run_result command;
    run_binary((const char *const[]){"version", NULL}, &command);
    cr_expect_str_eq(flag.output, command.output);
    cr_expect_not_null(strstr(flag.output, "citadel-callout "), "%s", flag.output);
}
