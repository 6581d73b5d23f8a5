/* nats-server test harness. See natsserver.h for the contract.
 *
 * The server runs as a child process with its stdout and stderr in
 * server.log. Its client port comes from the ports file that nats-server
 * writes into ports_file_dir once it listens, which avoids both fixed ports
 * and parsing the log. */
#define _GNU_SOURCE /* nftw flags */
#include "natsserver.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <jansson.h>

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 5000
#define POLL_MS 20

struct cc_test_nats_server {
    char dir[PATH_MAX];
    char config_path[PATH_MAX + 32];
    char log_path[PATH_MAX + 32];
    pid_t pid;
    int port;
    char url[64];
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Finds the binary: $CITADEL_NATS_SERVER, else nats-server on PATH. */
static cc_status find_binary(char out[PATH_MAX], cc_err *err)
{
    const char *env = getenv("CITADEL_NATS_SERVER");
    if (env != NULL && env[0] != '\0') {
        if (access(env, X_OK) != 0)
            return cc_err_set(err, CC_ERR_NOT_FOUND,
                              "CITADEL_NATS_SERVER=%s is not an executable file", env);
        snprintf(out, PATH_MAX, "%s", env);
        return CC_OK;
    }

    const char *path = getenv("PATH");
    char *copy = strdup(path != NULL ? path : "/usr/local/bin:/usr/bin:/bin");
    if (copy == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory searching PATH");
    cc_status status = CC_ERR_NOT_FOUND;
    char *save = NULL;
    for (char *entry = strtok_r(copy, ":", &save); entry != NULL;
         entry = strtok_r(NULL, ":", &save)) {
        snprintf(out, PATH_MAX, "%s/nats-server", entry);
        if (access(out, X_OK) == 0) {
            status = CC_OK;
            break;
        }
    }
    free(copy);
    if (status != CC_OK)
        return cc_err_set(err, CC_ERR_NOT_FOUND,
                          "nats-server was not found on PATH; install nats-server 2.10 or newer "
                          "or set CITADEL_NATS_SERVER to its path");
    return CC_OK;
}

/* Runs `binary --version` and returns its first output line in out. */
static cc_status read_version(const char *binary, char *out, size_t size, cc_err *err)
{
    int fds[2];
    if (pipe(fds) != 0)
        return cc_err_set(err, CC_ERR_IO, "pipe failed: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cc_err_set(err, CC_ERR_IO, "fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execl(binary, binary, "--version", (char *)NULL);
        _exit(127);
    }

    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < size && (n = read(fds[0], out + len, size - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    waitpid(pid, NULL, 0);
    out[strcspn(out, "\n")] = '\0';
    return CC_OK;
}

/* Checks that the binary is nats-server 2.10 or newer. The output looks like
 * "nats-server: v2.10.27". */
static cc_status check_version(const char *binary, cc_err *err)
{
    char line[256];
    cc_status status = read_version(binary, line, sizeof(line), err);
    if (status != CC_OK)
        return status;

    const char *v = strstr(line, " v");
    int major = 0, minor = 0;
    if (v == NULL || sscanf(v + 2, "%d.%d", &major, &minor) != 2)
        return cc_err_set(err, CC_ERR_INVALID,
                          "cannot read the version of %s from \"%s\"; expected "
                          "\"nats-server: vX.Y.Z\"",
                          binary, line);
    if (major < 2 || (major == 2 && minor < 10))
        return cc_err_set(err, CC_ERR_INVALID,
                          "%s is version %d.%d, but the tests need nats-server 2.10 or newer "
                          "(auth callout); set CITADEL_NATS_SERVER to a newer binary",
                          binary, major, minor);
    return CC_OK;
}

static cc_status write_text(const char *path, const char *content, cc_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return cc_err_set(err, CC_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    size_t len = strlen(content);
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, content + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return cc_err_set(err, CC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        }
        done += (size_t)n;
    }
    close(fd);
    return CC_OK;
}

static cc_status write_config(const cc_test_nats_server *srv, const char *config_body, cc_err *err)
{
    const char *body = config_body != NULL ? config_body : "";
    size_t size = strlen(body) + 2 * PATH_MAX + 128;
    char *text = malloc(size);
    if (text == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory writing the server config");
    snprintf(text, size, "listen: 127.0.0.1:-1\nports_file_dir: \"%s\"\n\n%s\n", srv->dir, body);
    cc_status status = write_text(srv->config_path, text, err);
    free(text);
    return status;
}

cc_test_nats_server *cc_test_nats_server_new(cc_err *err)
{
    cc_test_nats_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        cc_err_set(err, CC_ERR_NOMEM, "out of memory creating a test server");
        return NULL;
    }

    const char *tmp = getenv("TMPDIR");
    snprintf(srv->dir, sizeof(srv->dir), "%s/citadel-nats-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(srv->dir) == NULL) {
        cc_err_set(err, CC_ERR_IO, "mkdtemp %s failed: %s", srv->dir, strerror(errno));
        free(srv);
        return NULL;
    }
    snprintf(srv->config_path, sizeof(srv->config_path), "%s/server.conf", srv->dir);
    snprintf(srv->log_path, sizeof(srv->log_path), "%s/server.log", srv->dir);
    return srv;
}

/* Child side of fork: redirects output to the log and runs the server. */
static void exec_server(const cc_test_nats_server *srv, const char *binary, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);

    int log = open(srv->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (log < 0 || null < 0)
        _exit(126);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    execl(binary, "nats-server", "-c", srv->config_path, (char *)NULL);
    _exit(127);
}

/* Reads the client port from the ports file, if the server has written it. */
static bool read_ports_file(cc_test_nats_server *srv)
{
    char suffix[64];
    snprintf(suffix, sizeof(suffix), "_%d.ports", (int)srv->pid);
    DIR *dir = opendir(srv->dir);
    if (dir == NULL)
        return false;

    bool found = false;
    struct dirent *entry;
    while (!found && (entry = readdir(dir)) != NULL) {
        size_t len = strlen(entry->d_name);
        size_t suffix_len = strlen(suffix);
        if (len <= suffix_len || strcmp(entry->d_name + len - suffix_len, suffix) != 0)
            continue;

        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", srv->dir, entry->d_name);
        /* The file may still be half written; a parse failure means "retry". */
        json_t *ports = json_load_file(path, 0, NULL);
        /* nats-server 2.10 writes {"nats":["nats://127.0.0.1:PORT"], ...}. */
        const char *url = json_string_value(json_array_get(json_object_get(ports, "nats"), 0));
        const char *colon = url != NULL ? strrchr(url, ':') : NULL;
        if (colon != NULL && atoi(colon + 1) > 0) {
            srv->port = atoi(colon + 1);
            snprintf(srv->url, sizeof(srv->url), "nats://127.0.0.1:%d", srv->port);
            found = true;
        }
        json_decref(ports);
    }
    closedir(dir);
    return found;
}

cc_status cc_test_nats_server_start(cc_test_nats_server *srv, const char *config_body, cc_err *err)
{
    char binary[PATH_MAX];
    cc_status status = find_binary(binary, err);
    if (status == CC_OK)
        status = check_version(binary, err);
    if (status == CC_OK)
        status = write_config(srv, config_body, err);
    if (status != CC_OK)
        return status;

    pid_t parent = getpid();
    srv->pid = fork();
    if (srv->pid < 0) {
        srv->pid = 0;
        return cc_err_set(err, CC_ERR_IO, "fork failed: %s", strerror(errno));
    }
    if (srv->pid == 0)
        exec_server(srv, binary, parent);

    for (int waited = 0; waited < START_TIMEOUT_MS; waited += POLL_MS) {
        if (read_ports_file(srv))
            return CC_OK;
        int wstatus;
        if (waitpid(srv->pid, &wstatus, WNOHANG) == srv->pid) {
            srv->pid = 0;
            return cc_err_set(err, CC_ERR_IO,
                              "nats-server exited before listening (status %d); see %s",
                              WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, srv->log_path);
        }
        sleep_ms(POLL_MS);
    }
    return cc_err_set(err, CC_ERR_IO, "nats-server wrote no ports file within %d ms; see %s",
                      START_TIMEOUT_MS, srv->log_path);
}

cc_test_nats_server *cc_test_nats_server_run(const char *config_body, cc_err *err)
{
    cc_test_nats_server *srv = cc_test_nats_server_new(err);
    if (srv == NULL)
        return NULL;
    if (cc_test_nats_server_start(srv, config_body, err) != CC_OK) {
        /* Keep the server's own message, which the caller cannot read once
         * the directory is gone. */
        char *log = cc_test_nats_server_log(srv);
        if (log != NULL && err != NULL && log[0] != '\0') {
            size_t len = strlen(log);
            const char *tail = len > 300 ? log + len - 300 : log;
            char reason[CC_ERR_MESSAGE_MAX];
            memcpy(reason, err->message, sizeof(reason));
            cc_err_set(err, err->status, "%.150s; server log ends: %s", reason, tail);
        }
        free(log);
        cc_test_nats_server_stop(srv);
        return NULL;
    }
    return srv;
}

cc_status cc_test_nats_server_reload(cc_test_nats_server *srv, const char *config_body, cc_err *err)
{
    cc_status status = write_config(srv, config_body, err);
    if (status != CC_OK)
        return status;
    if (srv->pid <= 0 || kill(srv->pid, SIGHUP) != 0)
        return cc_err_set(err, CC_ERR_IO, "cannot send SIGHUP to nats-server: %s",
                          srv->pid <= 0 ? "not running" : strerror(errno));
    return CC_OK;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void cc_test_nats_server_stop(cc_test_nats_server *srv)
{
    if (srv == NULL)
        return;

    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        bool exited = false;
        for (int waited = 0; waited < STOP_TIMEOUT_MS && !exited; waited += POLL_MS) {
            exited = waitpid(srv->pid, NULL, WNOHANG) == srv->pid;
            if (!exited)
                sleep_ms(POLL_MS);
        }
        if (!exited) {
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, NULL, 0);
        }
    }
    nftw(srv->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(srv);
}

const char *cc_test_nats_server_url(const cc_test_nats_server *srv)
{
    return srv->url;
}

int cc_test_nats_server_port(const cc_test_nats_server *srv)
{
    return srv->port;
}

pid_t cc_test_nats_server_pid(const cc_test_nats_server *srv)
{
    return srv->pid;
}

const char *cc_test_nats_server_dir(const cc_test_nats_server *srv)
{
    return srv->dir;
}

char *cc_test_nats_server_log(const cc_test_nats_server *srv)
{
    FILE *file = fopen(srv->log_path, "r");
    if (file == NULL)
        return NULL;

    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    size_t n;
    while (text != NULL && (n = fread(text + len, 1, cap - 1 - len, file)) > 0) {
        len += n;
        if (len + 1 < cap)
            continue;
        char *bigger = realloc(text, cap * 2);
        if (bigger == NULL)
            free(text);
        text = bigger;
        cap *= 2;
    }
    fclose(file);
    if (text != NULL)
        text[len] = '\0';
    return text;
}

bool cc_test_nats_server_wait_log(const cc_test_nats_server *srv, const char *needle,
                                  int timeout_ms)
{
    for (int waited = 0;; waited += POLL_MS) {
        char *log = cc_test_nats_server_log(srv);
        bool found = log != NULL && strstr(log, needle) != NULL;
        free(log);
        if (found)
            return true;
        if (waited >= timeout_ms)
            return false;
        sleep_ms(POLL_MS);
    }
}

cc_status cc_test_nats_server_write_file(const cc_test_nats_server *srv, const char *name,
                                         const char *content, char **path_out, cc_err *err)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", srv->dir, name);
    cc_status status = write_text(path, content, err);
    if (status == CC_OK && path_out != NULL) {
        *path_out = strdup(path);
        if (*path_out == NULL)
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory");
    }
    return status;
}
