/* Polling bundle watcher. See bundle_watch.h for the behaviour.
 *
 * Two mutexes: load_lock serializes loads (the polling thread and explicit
 * reloads) and guards the stamps of the last load attempt. set_lock guards
 * only the published pointer, so readers never wait for a load. The thread
 * sleeps in poll(2) on a pipe, which lets a signal handler wake it with one
 * write(2). */
#include "citadel/bundle_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "citadel/log.h"

/* Attempts of the initial load while the files keep changing under it. */
#define START_ATTEMPTS 10

/* What stat(2) returned for one file; two equal stamps mean "unchanged". */
typedef struct file_stamp {
    int error; /* errno of a failed stat, 0 on success */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
} file_stamp;

struct cc_bundle_watcher {
    cc_bundle_source *sources; /* deep copy */
    size_t source_count;
    const char **paths; /* every file of every source, borrowed from sources */
    size_t path_count;
    int poll_ms;
    int settle_ms;

    pthread_mutex_t load_lock;
    file_stamp *seen; /* stamps before the last finished load attempt */

    pthread_mutex_t set_lock;
    cc_bundle_set *current;
    uint64_t generation;

    int wake_pipe[2];
    atomic_bool stop;
    atomic_bool reload_requested;
    pthread_t thread;
    bool thread_started;
};

/* ---- Stamps ------------------------------------------------------------- */

static void stamp_file(const char *path, file_stamp *stamp)
{
    struct stat st;
    memset(stamp, 0, sizeof(*stamp));
    if (stat(path, &st) != 0) {
        stamp->error = errno;
        return;
    }
    stamp->dev = st.st_dev;
    stamp->ino = st.st_ino;
    stamp->size = st.st_size;
    stamp->mtime = st.st_mtim;
    stamp->ctime = st.st_ctim;
}

static void stamp_all(const cc_bundle_watcher *watcher, file_stamp *stamps)
{
    for (size_t i = 0; i < watcher->path_count; i++)
        stamp_file(watcher->paths[i], &stamps[i]);
}

static bool stamps_equal(const file_stamp *a, const file_stamp *b, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (a[i].error != b[i].error || a[i].dev != b[i].dev || a[i].ino != b[i].ino ||
            a[i].size != b[i].size || a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
            a[i].mtime.tv_nsec != b[i].mtime.tv_nsec || a[i].ctime.tv_sec != b[i].ctime.tv_sec ||
            a[i].ctime.tv_nsec != b[i].ctime.tv_nsec)
            return false;
    }
    return true;
}

static void sleep_ms(int ms)
{
    struct timespec left = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

/* ---- Publishing and loading --------------------------------------------- */

/* Makes set current. Takes ownership of set. */
static void publish(cc_bundle_watcher *watcher, cc_bundle_set *set)
{
    pthread_mutex_lock(&watcher->set_lock);
    cc_bundle_set *old = watcher->current;
    watcher->current = set;
    uint64_t generation = ++watcher->generation;
    pthread_mutex_unlock(&watcher->set_lock);

    cc_bundle_set_release(old);
    cc_log_json(CC_LOG_INFO, "bundle_reloaded",
                json_pack("{s:I, s:I}", "generation", (json_int_t)generation, "trust_domains",
                          (json_int_t)cc_bundle_set_count(set)));
}

/* Stamps every file, waits the settle delay and stamps again into settled.
 * Returns false when a file changed in between, which means it is still
 * being written. A file that stayed unchanged for settle_ms before the read
 * gets a newer mtime from any later write, as long as settle_ms exceeds the
 * kernel's timestamp granularity (one clock tick, a few ms). So a rewrite to
 * the same size is not missed. */
static bool settle(cc_bundle_watcher *watcher, file_stamp *first, file_stamp *settled)
{
    stamp_all(watcher, first);
    sleep_ms(watcher->settle_ms);
    stamp_all(watcher, settled);
    return stamps_equal(first, settled, watcher->path_count);
}

/* Loads every source; succeeds only when no file changed between the stamps
 * in before and the end of the read, and sets *changed when one did. */
static cc_status load_stable(cc_bundle_watcher *watcher, const file_stamp *before,
                             cc_bundle_set **out, bool *changed, cc_err *err)
{
    cc_bundle_set *set = NULL;
    cc_status status = cc_bundle_sources_load(watcher->sources, watcher->source_count, &set, err);

    *changed = false;
    file_stamp *after = calloc(watcher->path_count, sizeof(*after));
    if (after == NULL) {
        cc_bundle_set_release(set);
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory checking bundle files");
    }
    stamp_all(watcher, after);
    *changed = !stamps_equal(before, after, watcher->path_count);
    free(after);

    if (*changed) {
        cc_bundle_set_release(set);
        return cc_err_set(err, CC_ERR_IO,
                          "a bundle file changed while it was read; it is read "
                          "again on the next poll");
    }
    if (status == CC_OK)
        *out = set;
    return status;
}

static void log_failure(const cc_err *err)
{
    cc_log_json(CC_LOG_WARN, "bundle_reload_failed",
                json_pack("{s:s, s:s, s:s}", "status", cc_status_name(err->status), "error",
                          err->message, "action", "the previous bundles stay in force"));
}

/* Settles, loads and publishes. With force false nothing happens when the
 * stamps equal those of the last attempt. The stamps are recorded as seen
 * unless a file was still changing, so a failure is retried only after the
 * next change. With set_out (the initial load) the new set is returned there
 * instead of published, and failures are left to the caller instead of
 * logged. Caller holds load_lock. */
static cc_status settled_load(cc_bundle_watcher *watcher, bool force, cc_bundle_set **set_out,
                              bool *changed, cc_err *err)
{
    cc_status status = CC_OK;
    file_stamp *first = calloc(watcher->path_count + 1, sizeof(*first));
    file_stamp *settled = calloc(watcher->path_count + 1, sizeof(*settled));
    cc_bundle_set *set = NULL;

    *changed = false;
    if (first == NULL || settled == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory checking bundle files");
        goto done;
    }

    if (!force) {
        stamp_all(watcher, first);
        if (stamps_equal(first, watcher->seen, watcher->path_count))
            goto done;
    }
    if (!settle(watcher, first, settled)) {
        *changed = true;
        status = cc_err_set(err, CC_ERR_IO,
                            "a bundle file is still being written; it is read "
                            "again on the next poll");
        goto done;
    }

    status = load_stable(watcher, settled, &set, changed, err);
    if (*changed)
        goto done;

    memcpy(watcher->seen, settled, watcher->path_count * sizeof(*settled));
    if (status != CC_OK)
        goto done;
    if (set_out != NULL) {
        *set_out = set;
        set = NULL;
    } else {
        publish(watcher, set);
        set = NULL;
    }

done:
    if (*changed)
        cc_log_msg(CC_LOG_DEBUG, "bundle_file_changing", "%s", err->message);
    else if (status != CC_OK && set_out == NULL)
        log_failure(err);
    cc_bundle_set_release(set);
    free(first);
    free(settled);
    return status;
}

cc_status cc_bundle_watcher_reload(cc_bundle_watcher *watcher, cc_err *err)
{
    cc_err local;
    if (err == NULL)
        err = &local;

    bool changed = false;
    pthread_mutex_lock(&watcher->load_lock);
    cc_status status = settled_load(watcher, true, NULL, &changed, err);
    pthread_mutex_unlock(&watcher->load_lock);
    return status;
}

/* One poll: reload when a file changed and has stayed unchanged for the settle delay. */
static void poll_once(cc_bundle_watcher *watcher)
{
    cc_err err;
    bool changed = false;
    pthread_mutex_lock(&watcher->load_lock);
    settled_load(watcher, false, NULL, &changed, &err);
    pthread_mutex_unlock(&watcher->load_lock);
}

static void drain_pipe(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void *watch_thread(void *arg)
{
    cc_bundle_watcher *watcher = arg;
    struct pollfd wake = {.fd = watcher->wake_pipe[0], .events = POLLIN};

    while (!atomic_load(&watcher->stop)) {
        if (poll(&wake, 1, watcher->poll_ms) > 0)
            drain_pipe(watcher->wake_pipe[0]);
        if (atomic_load(&watcher->stop))
            break;

        if (atomic_exchange(&watcher->reload_requested, false)) {
            cc_err err;
            cc_log_msg(CC_LOG_INFO, "bundle_reload_requested", "reloading bundles on request");
            cc_bundle_watcher_reload(watcher, &err);
            continue;
        }
        poll_once(watcher);
    }
    return NULL;
}

/* ---- Setup and teardown ------------------------------------------------- */

static void free_sources(cc_bundle_watcher *watcher)
{
    for (size_t i = 0; i < watcher->source_count; i++) {
        free((char *)watcher->sources[i].path);
        free((char *)watcher->sources[i].jwt_path);
        free((char *)watcher->sources[i].trust_domain);
    }
    free(watcher->sources);
    free(watcher->paths);
}

static char *strdup_or_null(const char *text, bool *failed)
{
    if (text == NULL)
        return NULL;
    char *copy = strdup(text);
    if (copy == NULL)
        *failed = true;
    return copy;
}

/* Copies the sources and lists the files to stat. */
static cc_status copy_sources(cc_bundle_watcher *watcher, const cc_bundle_source *sources,
                              size_t count, cc_err *err)
{
    bool failed = false;
    watcher->sources = calloc(count + 1, sizeof(*watcher->sources));
    watcher->paths = calloc(2 * count + 1, sizeof(*watcher->paths));
    watcher->seen = calloc(2 * count + 1, sizeof(*watcher->seen));
    if (watcher->sources == NULL || watcher->paths == NULL || watcher->seen == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory starting the bundle watcher");

    for (size_t i = 0; i < count; i++) {
        cc_bundle_source *copy = &watcher->sources[i];
        copy->kind = sources[i].kind;
        memcpy(copy->config_key, sources[i].config_key, sizeof(copy->config_key));
        copy->path = strdup_or_null(sources[i].path, &failed);
        copy->jwt_path = strdup_or_null(sources[i].jwt_path, &failed);
        copy->trust_domain = strdup_or_null(sources[i].trust_domain, &failed);
        watcher->source_count = i + 1;

        if (copy->path != NULL)
            watcher->paths[watcher->path_count++] = copy->path;
        if (copy->jwt_path != NULL)
            watcher->paths[watcher->path_count++] = copy->jwt_path;
    }
    if (failed)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory starting the bundle watcher");
    return CC_OK;
}

static cc_status open_wake_pipe(cc_bundle_watcher *watcher, cc_err *err)
{
    if (pipe(watcher->wake_pipe) != 0) {
        watcher->wake_pipe[0] = watcher->wake_pipe[1] = -1;
        return cc_err_set(err, CC_ERR_INTERNAL, "could not create the bundle watcher pipe: %s",
                          strerror(errno));
    }
    for (int i = 0; i < 2; i++) {
        fcntl(watcher->wake_pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(watcher->wake_pipe[i], F_SETFL, O_NONBLOCK);
    }
    return CC_OK;
}

/* Loads the first set, retrying while a file changes during the read. */
static cc_status initial_load(cc_bundle_watcher *watcher, cc_err *err)
{
    cc_status status = CC_ERR_IO;
    bool changed = true;
    for (int attempt = 0; attempt < START_ATTEMPTS && changed; attempt++) {
        cc_bundle_set *set = NULL;
        status = settled_load(watcher, true, &set, &changed, err);
        if (status == CC_OK) {
            watcher->current = set;
            watcher->generation = 1;
        }
    }
    return status;
}

cc_status cc_bundle_watcher_start(const cc_bundle_source *sources, size_t count,
                                  const cc_bundle_watch_options *options, cc_bundle_watcher **out,
                                  cc_err *err)
{
    cc_bundle_watcher *watcher = calloc(1, sizeof(*watcher));
    if (watcher == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory starting the bundle watcher");

    watcher->wake_pipe[0] = watcher->wake_pipe[1] = -1;
    watcher->poll_ms = options != NULL && options->poll_ms > 0 ? options->poll_ms
                                                               : CC_BUNDLE_WATCH_POLL_MS_DEFAULT;
    watcher->settle_ms = options != NULL && options->settle_ms > 0
                             ? options->settle_ms
                             : CC_BUNDLE_WATCH_SETTLE_MS_DEFAULT;
    pthread_mutex_init(&watcher->load_lock, NULL);
    pthread_mutex_init(&watcher->set_lock, NULL);
    atomic_init(&watcher->stop, false);
    atomic_init(&watcher->reload_requested, false);

    cc_status status = copy_sources(watcher, sources, count, err);
    if (status == CC_OK)
        status = open_wake_pipe(watcher, err);
    if (status == CC_OK)
        status = initial_load(watcher, err);
    if (status == CC_OK && pthread_create(&watcher->thread, NULL, watch_thread, watcher) != 0)
        status = cc_err_set(err, CC_ERR_INTERNAL, "could not start the bundle watcher thread");
    if (status != CC_OK) {
        cc_bundle_watcher_stop(watcher);
        return status;
    }

    watcher->thread_started = true;
    cc_log_json(CC_LOG_INFO, "bundle_watch_started",
                json_pack("{s:I, s:I, s:i}", "sources", (json_int_t)count, "trust_domains",
                          (json_int_t)cc_bundle_set_count(watcher->current), "poll_ms",
                          watcher->poll_ms));
    *out = watcher;
    return CC_OK;
}

void cc_bundle_watcher_stop(cc_bundle_watcher *watcher)
{
    if (watcher == NULL)
        return;

    if (watcher->thread_started) {
        atomic_store(&watcher->stop, true);
        ssize_t written = write(watcher->wake_pipe[1], "s", 1);
        (void)written; /* a full pipe already wakes the thread */
        pthread_join(watcher->thread, NULL);
        cc_log_msg(CC_LOG_INFO, "bundle_watch_stopped", "bundle watcher stopped");
    }

    for (int i = 0; i < 2; i++) {
        if (watcher->wake_pipe[i] >= 0)
            close(watcher->wake_pipe[i]);
    }
    cc_bundle_set_release(watcher->current);
    free_sources(watcher);
    free(watcher->seen);
    pthread_mutex_destroy(&watcher->load_lock);
    pthread_mutex_destroy(&watcher->set_lock);
    free(watcher);
}

cc_bundle_set *cc_bundle_watcher_get(cc_bundle_watcher *watcher)
{
    pthread_mutex_lock(&watcher->set_lock);
    cc_bundle_set *set = cc_bundle_set_ref(watcher->current);
    pthread_mutex_unlock(&watcher->set_lock);
    return set;
}

void cc_bundle_watcher_request_reload(cc_bundle_watcher *watcher)
{
    int saved_errno = errno; /* signal handlers must not change errno */
    atomic_store(&watcher->reload_requested, true);
    ssize_t written = write(watcher->wake_pipe[1], "r", 1);
    (void)written; /* a full pipe already wakes the thread */
    errno = saved_errno;
}

uint64_t cc_bundle_watcher_generation(cc_bundle_watcher *watcher)
{
    pthread_mutex_lock(&watcher->set_lock);
    uint64_t generation = watcher->generation;
    pthread_mutex_unlock(&watcher->set_lock);
    return generation;
}
