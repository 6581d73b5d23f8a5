/* Runs the built binary (CITADEL_BIN, set by `make check`) as a user would. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "citadel/nkey.h"

typedef struct cli_result {
    int exit_code;
    char out[4096];
    char err[4096];
} cli_result;

static void read_capture(const char *path, char *buf, size_t size)
{
    FILE *file = fopen(path, "r");
    cr_assert_not_null(file, "cannot open %s", path);
    size_t n = fread(buf, 1, size - 1, file);
    buf[n] = '\0';
    fclose(file);
    unlink(path);
}

/* Runs CITADEL_BIN with args (NULL-terminated) and captures stdout and stderr in dir. */
static void run_cli(const char *dir, const char *const *args, cli_result *result)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin, "CITADEL_BIN must name the built citadel-callout binary");

    char out_path[PATH_MAX], err_path[PATH_MAX];
    snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", dir);

    char *argv[16];
    size_t argc = 0;
    argv[argc++] = (char *)bin;
    for (size_t i = 0; args[i] != NULL && argc < 15; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;

    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0)
            _exit(127);
        dup2(out, 1);
        dup2(err, 2);
        execv(bin, argv);
        _exit(127);
    }

    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the binary did not exit normally");
    result->exit_code = WEXITSTATUS(status);
    read_capture(out_path, result->out, sizeof(result->out));
    read_capture(err_path, result->err, sizeof(result->err));
}

static char *make_temp_dir(void)
{
    char *dir = strdup("/tmp/citadel-cli-keys-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

/* Copies line `index` (0-based) of text, without its newline, into out. */
static void copy_line(const char *text, int index, char *out, size_t size)
{
    for (int i = 0; i < index; i++) {
        text = strchr(text, '\n');
        cr_assert_not_null(text, "output has fewer than %d lines", index + 1);
        text++;
    }
    size_t len = strcspn(text, "\n");
    cr_assert_lt(len, size);
    memcpy(out, text, len);
    out[len] = '\0';
}

Test(cli_keys, writes_seed_file_0600)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/account.nk", dir);

    cli_result result;
    run_cli(dir, (const char *[]){"keys", "generate", "account", "--out", path, NULL}, &result);
    cr_assert_eq(result.exit_code, 0, "stderr: %s", result.err);

    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode is %04o", (unsigned)(st.st_mode & 0777));

    char printed[CC_NKEY_PUBLIC_LEN + 8];
    copy_line(result.out, 0, printed, sizeof(printed));
    cr_assert_eq(printed[0], 'A');

    /* The file's seed belongs to the printed public key. */
    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ACCOUNT, &key, &err), CC_OK, "%s",
                 err.message);
    char public_key[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&key, public_key);
    cr_assert_str_eq(printed, public_key);
    cr_assert_eq(strlen(result.out), CC_NKEY_PUBLIC_LEN + 1,
                 "only the public key is printed when --out is given");
    cc_nkey_wipe(&key);

    unlink(path);
    rmdir(dir);
    free(dir);
}

Test(cli_keys, refuses_to_overwrite)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/existing.nk", dir);
    FILE *file = fopen(path, "w");
    fputs("keep me\n", file);
    fclose(file);

    cli_result result;
    run_cli(dir, (const char *[]){"keys", "generate", "user", "--out", path, NULL}, &result);
    cr_assert_eq(result.exit_code, 2);
    cr_assert_not_null(strstr(result.err, "already exists"), "stderr: %s", result.err);
    cr_assert_not_null(strstr(result.err, path), "stderr: %s", result.err);
    cr_assert_str_eq(result.out, "");

    char content[32] = {0};
    file = fopen(path, "r");
    cr_assert_not_null(fgets(content, sizeof(content), file));
    fclose(file);
    cr_assert_str_eq(content, "keep me\n", "the existing file is unchanged");

    unlink(path);
    rmdir(dir);
    free(dir);
}

Test(cli_keys, prints_seed_and_public)
{
    const char *kinds[] = {"account", "user", "curve", "operator", "server"};
    const char *seed_leads[] = {"SA", "SU", "SX", "SO", "SN"};
    char *dir = make_temp_dir();

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        cli_result result;
        run_cli(dir, (const char *[]){"keys", "generate", kinds[i], NULL}, &result);
        cr_assert_eq(result.exit_code, 0, "kind %s, stderr: %s", kinds[i], result.err);
        cr_assert_not_null(strstr(result.err, "secret"), "stderr: %s", result.err);

        char seed[CC_NKEY_SEED_LEN + 8], printed[CC_NKEY_PUBLIC_LEN + 8];
        copy_line(result.out, 0, seed, sizeof(seed));
        copy_line(result.out, 1, printed, sizeof(printed));
        cr_assert_eq(strncmp(seed, seed_leads[i], 2), 0, "seed line of kind %s", kinds[i]);

        cc_nkey key;
        cr_assert_eq(cc_nkey_from_seed(seed, CC_NKEY_ANY, &key, NULL), CC_OK);
        char public_key[CC_NKEY_PUBLIC_LEN + 1];
        cc_nkey_public_string(&key, public_key);
        cr_assert_str_eq(printed, public_key, "kind %s", kinds[i]);
        cc_nkey_wipe(&key);
    }
    rmdir(dir);
    free(dir);
}

Test(cli_keys, public_of_seed_file)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/user.nk", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    const char seed[] = "SUAP277QP7U4JMFFPVZHLJYEQJ2UHOTYVEIZJYAWRJXQLP4FRSEHYZJJOU\n";
    cr_assert_eq(write(fd, seed, strlen(seed)), (ssize_t)strlen(seed));
    close(fd);

    cli_result result;
    run_cli(dir, (const char *[]){"keys", "public", path, NULL}, &result);
    cr_assert_eq(result.exit_code, 0, "stderr: %s", result.err);
    cr_assert_str_eq(result.out, "UBO2MQV67TQTVIRV3XFTEZOACM4WLOCMCDMAWN5QVN5PI2N6JHTVDRON\n");

    /* Group-readable: rejected with the fix in the message. */
    cr_assert_eq(chmod(path, 0640), 0);
    run_cli(dir, (const char *[]){"keys", "public", path, NULL}, &result);
    cr_assert_eq(result.exit_code, 1);
    cr_assert_not_null(strstr(result.err, "chmod 600"), "stderr: %s", result.err);
    cr_assert_not_null(strstr(result.err, path), "stderr: %s", result.err);
    cr_assert_str_eq(result.out, "");

    unlink(path);
    rmdir(dir);
    free(dir);
}

Test(cli_keys, usage_errors)
{
    char *dir = make_temp_dir();
    cli_result result;

    run_cli(dir, (const char *[]){"keys", "--help", NULL}, &result);
    cr_assert_eq(result.exit_code, 0);
    cr_assert_not_null(strstr(result.out, "keys generate KIND"), "stdout: %s", result.out);

    run_cli(dir, (const char *[]){"keys", "generate", "wizard", NULL}, &result);
    cr_assert_eq(result.exit_code, 2);
    cr_assert_not_null(strstr(result.err, "\"wizard\""), "stderr: %s", result.err);

    run_cli(dir, (const char *[]){"keys", "generate", "user", "--out", NULL}, &result);
    cr_assert_eq(result.exit_code, 2);
    cr_assert_str_eq(result.out, "", "no key is printed on a usage error");

    run_cli(dir, (const char *[]){"keys", "public", NULL}, &result);
    cr_assert_eq(result.exit_code, 2);

    run_cli(dir, (const char *[]){"keys", "rotate", NULL}, &result);
    cr_assert_eq(result.exit_code, 2);

    run_cli(dir, (const char *[]){"keys", "public", "/nonexistent/citadel/seed.nk", NULL}, &result);
    cr_assert_eq(result.exit_code, 2);
    cr_assert_not_null(strstr(result.err, "/nonexistent/citadel/seed.nk"), "stderr: %s",
                       result.err);

    rmdir(dir);
    free(dir);
}
