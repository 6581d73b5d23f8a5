#include <criterion/criterion.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "citadel/bundle.h"
#include "citadel/bundle_watch.h"
#include "citadel/log.h"
#include "../support/jwtmint.h"
#include "../support/pki.h"

/* Fast timings so the tests take well under a second each. */
static const cc_bundle_watch_options fast = {.poll_ms = 20, .settle_ms = 40};
/* No polling within a test's run time: only explicit reloads change the set. */
static const cc_bundle_watch_options manual = {.poll_ms = 600000, .settle_ms = 40};

static char *dir;
static char path[512];
static EVP_PKEY *key;
static int log_pipe[2];

static void setup(void)
{
    dir = cc_test_tempdir("bundle-watch");
    cr_assert_not_null(dir);
    snprintf(path, sizeof(path), "%s/bundle.json", dir);
    key = cc_test_jwt_key("P-256");
    cr_assert_not_null(key);

    /* Capture log lines; the pipe is large enough for the few lines a test writes. */
    cr_assert_eq(pipe(log_pipe), 0);
    fcntl(log_pipe[0], F_SETFL, O_NONBLOCK);
    cc_log_set_fd(log_pipe[1]);
}

static void teardown(void)
{
    cc_log_set_fd(2);
    close(log_pipe[0]);
    close(log_pipe[1]);
    EVP_PKEY_free(key);
    cc_test_remove_tree(dir);
    free(dir);
}

TestSuite(bundle_watch, .init = setup, .fini = teardown);

/* Returns SPIFFE bundle text with one JWT key under kid. Caller frees. */
static char *bundle_text(const char *kid)
{
    json_t *root = json_pack("{s:[o]}", "keys", cc_test_jwk(key, kid, "jwt-svid"));
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    cr_assert_not_null(text);
    return text;
}

static void write_bundle(const char *kid)
{
    char *text = bundle_text(kid);
    cr_assert_eq(cc_test_write_file(path, text, strlen(text)), 0);
    free(text);
}

static void write_text(const char *text)
{
    cr_assert_eq(cc_test_write_file(path, text, strlen(text)), 0);
}

static cc_bundle_watcher *start(const cc_bundle_watch_options *options)
{
    static cc_bundle_source source;
    source = (cc_bundle_source){
        .kind = CC_BUNDLE_SOURCE_SPIFFE, .path = path, .trust_domain = "a.example"};
    cc_bundle_watcher *watcher = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_watcher_start(&source, 1, options, &watcher, &err), CC_OK, "%s",
                 err.message);
    return watcher;
}

/* True when the current set's a.example bundle has a JWT key kid. */
static bool current_has_kid(cc_bundle_watcher *watcher, const char *kid)
{
    cc_bundle_set *set = cc_bundle_watcher_get(watcher);
    const cc_bundle *bundle = cc_bundle_set_find(set, "a.example");
    bool found = bundle != NULL && cc_bundle_find_jwt_authority(bundle, kid) != NULL;
    cc_bundle_set_release(set);
    return found;
}

static void sleep_ms(int ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Waits up to 5 s for the generation to reach at least target. */
static bool wait_generation(cc_bundle_watcher *watcher, uint64_t target)
{
    for (int i = 0; i < 500; i++) {
        if (cc_bundle_watcher_generation(watcher) >= target)
            return true;
        sleep_ms(10);
    }
    return false;
}

/* Returns how many captured log lines contain needle. */
static int count_log_lines(const char *needle)
{
    static char captured[65536];
    static size_t used;
    ssize_t n;
    while ((n = read(log_pipe[0], captured + used, sizeof(captured) - 1 - used)) > 0)
        used += (size_t)n;
    captured[used] = '\0';

    int count = 0;
    for (const char *p = strstr(captured, needle); p != NULL; p = strstr(p + 1, needle))
        count++;
    return count;
}

Test(bundle_watch, rewrite_publishes_new_set)
{
    write_bundle("k1");
    cc_bundle_watcher *watcher = start(&fast);
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 1);
    cr_assert(current_has_kid(watcher, "k1"));
    cc_bundle_set *old = cc_bundle_watcher_get(watcher);

    write_bundle("k2");
    cr_assert(wait_generation(watcher, 2), "the rewritten file was not picked up");
    cr_assert(current_has_kid(watcher, "k2"));
    cr_assert_not(current_has_kid(watcher, "k1"));

    /* A reader's old reference stays valid after the swap. */
    cr_assert_not_null(cc_bundle_find_jwt_authority(cc_bundle_set_find(old, "a.example"), "k1"));
    cc_bundle_set_release(old);
    cr_assert_eq(count_log_lines("\"bundle_reloaded\""), 1);
    cc_bundle_watcher_stop(watcher);
}

Test(bundle_watch, garbage_keeps_old_set)
{
    write_bundle("k1");
    cc_bundle_watcher *watcher = start(&fast);

    write_text("{\"keys\": [ this is not JSON");
    sleep_ms(400); /* many polls */
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 1);
    cr_assert(current_has_kid(watcher, "k1"));
    cr_assert_eq(count_log_lines("\"bundle_reload_failed\""), 1,
                 "a failure is logged once, not on every poll");

    write_bundle("k3");
    cr_assert(wait_generation(watcher, 2));
    cr_assert(current_has_kid(watcher, "k3"));
    cc_bundle_watcher_stop(watcher);
}

Test(bundle_watch, truncated_write_keeps_old_set)
{
    write_bundle("k1");
    cc_bundle_watcher *watcher = start(&fast);

    /* The writer stopped halfway through the new file. */
    char *text = bundle_text("k2");
    size_t half = strlen(text) / 2;
    cr_assert_eq(cc_test_write_file(path, text, half), 0);
    sleep_ms(300);
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 1);
    cr_assert(current_has_kid(watcher, "k1"));

    /* It finishes the file. */
    int fd = open(path, O_WRONLY | O_APPEND);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text + half, strlen(text) - half), (ssize_t)(strlen(text) - half));
    close(fd);
    cr_assert(wait_generation(watcher, 2));
    cr_assert(current_has_kid(watcher, "k2"));
    free(text);
    cc_bundle_watcher_stop(watcher);
}

Test(bundle_watch, emptied_file_keeps_old_set)
{
    write_bundle("k1");
    cc_bundle_watcher *watcher = start(&fast);
    write_text("");
    sleep_ms(300);
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 1);
    cr_assert(current_has_kid(watcher, "k1"));
    cc_bundle_watcher_stop(watcher);
}

Test(bundle_watch, deleted_file_keeps_old_set)
{
    write_bundle("k1");
    cc_bundle_watcher *watcher = start(&fast);
    cr_assert_eq(unlink(path), 0);
    sleep_ms(300);
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 1);
    cr_assert(current_has_kid(watcher, "k1"));
    cr_assert_eq(count_log_lines("could not open bundle file"), 1);

    write_bundle("k2");
    cr_assert(wait_generation(watcher, 2));
    cr_assert(current_has_kid(watcher, "k2"));
    cc_bundle_watcher_stop(watcher);
}

/* Writes a two-certificate PEM file in two steps with a pause between them,
 * as a writer that rewrites the file in place does. */
typedef struct slow_writer {
    const char *path;
    const char *first;
    const char *second;
    int pause_ms;
} slow_writer;

static void *write_slowly(void *arg)
{
    slow_writer *w = arg;
    int fd = open(w->path, O_WRONLY | O_TRUNC);
    if (fd < 0)
        return NULL;
    ssize_t n = write(fd, w->first, strlen(w->first));
    sleep_ms(w->pause_ms);
    n += write(fd, w->second, strlen(w->second));
    (void)n;
    close(fd);
    return NULL;
}

Test(bundle_watch, slow_writer_never_half_used)
{
    /* A PEM file cut between two blocks still parses, so only the settle
     * delay keeps the watcher from publishing a set with one CA. */
    cc_test_cert_spec spec = cc_test_spec_ca("one");
    cc_test_cert *one = cc_test_cert_issue(&spec, NULL);
    spec = cc_test_spec_ca("two");
    cc_test_cert *two = cc_test_cert_issue(&spec, NULL);
    cc_test_cert *three = cc_test_cert_issue(&spec, NULL);
    char *pem_one = cc_test_cert_pem(one->cert);
    char *pem_two = cc_test_cert_pem(two->cert);
    char *pem_three = cc_test_cert_pem(three->cert);

    char pem_path[600];
    snprintf(pem_path, sizeof(pem_path), "%s/ca.pem", dir);
    cr_assert_eq(cc_test_write_file(pem_path, pem_three, strlen(pem_three)), 0);
    cc_bundle_source source = {
        .kind = CC_BUNDLE_SOURCE_PEM, .path = pem_path, .trust_domain = "a.example"};
    cc_bundle_watch_options options = {.poll_ms = 10, .settle_ms = 300};
    cc_bundle_watcher *watcher = NULL;
    cr_assert_eq(cc_bundle_watcher_start(&source, 1, &options, &watcher, NULL), CC_OK);

    slow_writer w = {.path = pem_path, .first = pem_one, .second = pem_two, .pause_ms = 40};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, write_slowly, &w), 0);
    pthread_join(thread, NULL);

    cr_assert(wait_generation(watcher, 2));
    sleep_ms(400); /* no second publish follows */
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 2);
    cc_bundle_set *set = cc_bundle_watcher_get(watcher);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(cc_bundle_set_find(set, "a.example"))), 2);
    cc_bundle_set_release(set);

    cc_bundle_watcher_stop(watcher);
    free(pem_one);
    free(pem_two);
    free(pem_three);
    cc_test_cert_free(one);
    cc_test_cert_free(two);
    cc_test_cert_free(three);
}

Test(bundle_watch, explicit_reload)
{
    write_bundle("k1");
    cc_bundle_watcher *watcher = start(&manual);

    write_bundle("k2");
    cc_err err = {0};
    cr_assert_eq(cc_bundle_watcher_reload(watcher, &err), CC_OK, "%s", err.message);
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 2);
    cr_assert(current_has_kid(watcher, "k2"));

    write_text("not a bundle");
    cr_assert_eq(cc_bundle_watcher_reload(watcher, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, path) != NULL, "%s", err.message);
    cr_assert_eq(cc_bundle_watcher_generation(watcher), 2);
    cr_assert(current_has_kid(watcher, "k2"));
    cr_assert_eq(cc_bundle_watcher_reload(watcher, NULL), CC_ERR_INVALID, "err may be NULL");
    cc_bundle_watcher_stop(watcher);
}

Test(bundle_watch, request_reload_wakes_thread)
{
    write_bundle("k1");
    cc_bundle_watcher *watcher = start(&manual);
    write_bundle("k2");
    cc_bundle_watcher_request_reload(watcher);
    cr_assert(wait_generation(watcher, 2), "the requested reload did not happen");
    cr_assert(current_has_kid(watcher, "k2"));
    cc_bundle_watcher_stop(watcher);
}

Test(bundle_watch, start_fails_on_bad_file)
{
    write_text("{\"keys\":");
    cc_bundle_source source = {
        .kind = CC_BUNDLE_SOURCE_SPIFFE, .path = path, .trust_domain = "a.example"};
    cc_bundle_watcher *watcher = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_bundle_watcher_start(&source, 1, &fast, &watcher, &err), CC_ERR_INVALID);
    cr_assert_null(watcher);
    cr_assert(strstr(err.message, "invalid JSON") != NULL, "%s", err.message);
}

Test(bundle_watch, start_copies_sources)
{
    write_bundle("k1");
    char *own_path = strdup(path);
    char *own_td = strdup("a.example");
    cc_bundle_source source = {
        .kind = CC_BUNDLE_SOURCE_SPIFFE, .path = own_path, .trust_domain = own_td};
    cc_bundle_watcher *watcher = NULL;
    cr_assert_eq(cc_bundle_watcher_start(&source, 1, &fast, &watcher, NULL), CC_OK);
    memset(own_path, 'x', strlen(own_path));
    free(own_path);
    free(own_td);

    write_bundle("k2");
    cr_assert(wait_generation(watcher, 2));
    cr_assert(current_has_kid(watcher, "k2"));
    cc_bundle_watcher_stop(watcher);
}
