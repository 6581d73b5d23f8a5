/* The parsed-certificate cache: hits share one X509, LRU eviction at
 * capacity, concurrent use, and parse failures that match the uncached path
 * and are not cached. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/pki.h"
#include "citadel/certcache.h"
#include "citadel/x509svid.h"

#define PEM_COUNT 3
#define THREAD_COUNT 4
#define GETS_PER_THREAD 300

static cc_test_cert *ca;
static cc_test_cert *leaves[PEM_COUNT - 1];
static X509 *certs[PEM_COUNT]; /* borrowed from ca and leaves */
static char *pems[PEM_COUNT];

static void setup(void)
{
    cc_test_cert_spec ca_spec = cc_test_spec_ca("cache ca");
    ca = cc_test_cert_issue(&ca_spec, NULL);
    cr_assert_not_null(ca);
    certs[0] = ca->cert;
    for (int i = 0; i < PEM_COUNT - 1; i++) {
        char id[64];
        snprintf(id, sizeof(id), "spiffe://example.org/cache/%d", i);
        cc_test_cert_spec leaf_spec = cc_test_spec_leaf(id);
        leaves[i] = cc_test_cert_issue(&leaf_spec, ca);
        cr_assert_not_null(leaves[i]);
        certs[i + 1] = leaves[i]->cert;
    }
    for (int i = 0; i < PEM_COUNT; i++) {
        pems[i] = cc_test_cert_pem(certs[i]);
        cr_assert_not_null(pems[i]);
    }
}

static void teardown(void)
{
    for (int i = 0; i < PEM_COUNT; i++)
        free(pems[i]);
    for (int i = 0; i < PEM_COUNT - 1; i++)
        cc_test_cert_free(leaves[i]);
    cc_test_cert_free(ca);
}

TestSuite(certcache, .init = setup, .fini = teardown);

/* Returns a new reference (the caller frees it) for pem from cache. */
static X509 *get(cc_certcache *cache, const char *pem)
{
    X509 *cert = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_certcache_get(cache, pem, strlen(pem), &cert, &err), CC_OK, "%s",
                 err.message);
    cr_assert_not_null(cert);
    return cert;
}

static cc_certcache *new_cache(size_t capacity)
{
    cc_err err = {0};
    cc_certcache *cache = cc_certcache_new(capacity, &err);
    cr_assert_not_null(cache, "%s", err.message);
    return cache;
}

Test(certcache, hit_returns_same_x509)
{
    cc_certcache *cache = new_cache(0);

    X509 *first = get(cache, pems[1]);
    X509 *second = get(cache, pems[1]);

    cr_assert_eq(first, second);
    cr_assert_eq(X509_cmp(first, certs[1]), 0);
    cr_assert_eq(cc_certcache_size(cache), 1);
    X509_free(first);
    X509_free(second);
    cc_certcache_free(cache);
}

Test(certcache, reference_outlives_cache)
{
    cc_certcache *cache = new_cache(0);
    X509 *cert = get(cache, pems[0]);

    cc_certcache_free(cache);

    cr_assert_eq(X509_cmp(cert, certs[0]), 0);
    X509_free(cert);
}

Test(certcache, evicts_least_recent)
{
    cc_certcache *cache = new_cache(2);
    X509 *a = get(cache, pems[0]);
    X509 *b = get(cache, pems[1]);
    X509 *a_again = get(cache, pems[0]); /* a is now the most recent */

    X509 *c = get(cache, pems[2]); /* evicts b */
    X509 *a_after = get(cache, pems[0]);
    X509 *b_after = get(cache, pems[1]); /* parsed again, evicts c */
    X509 *c_after = get(cache, pems[2]);

    cr_assert_eq(cc_certcache_size(cache), 2);
    cr_assert_eq(a_again, a);
    cr_assert_eq(a_after, a);
    cr_assert_neq(b_after, b, "b was not evicted");
    cr_assert_eq(X509_cmp(b_after, certs[1]), 0);
    cr_assert_neq(c_after, c, "c was not evicted");
    cr_assert_eq(X509_cmp(c_after, certs[2]), 0);
    cr_assert_eq(X509_cmp(b, certs[1]), 0, "an evicted certificate must stay valid for its users");

    X509 *all[] = {a, b, a_again, c, a_after, b_after, c_after};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        X509_free(all[i]);
    cc_certcache_free(cache);
}

typedef struct worker_arg {
    cc_certcache *cache;
    int seed;
    int mismatches;
    int failures;
} worker_arg;

static void *worker(void *opaque)
{
    worker_arg *arg = opaque;
    for (int i = 0; i < GETS_PER_THREAD; i++) {
        int which = (i * 7 + arg->seed) % PEM_COUNT;
        X509 *cert = NULL;
        if (cc_certcache_get(arg->cache, pems[which], strlen(pems[which]), &cert, NULL) != CC_OK) {
            arg->failures++;
            continue;
        }
        if (X509_cmp(cert, certs[which]) != 0)
            arg->mismatches++;
        X509_free(cert);
    }
    return NULL;
}

/* Runs THREAD_COUNT workers on one cache and asserts that every get worked. */
static void run_workers(cc_certcache *cache)
{
    pthread_t threads[THREAD_COUNT];
    worker_arg args[THREAD_COUNT];
    for (int t = 0; t < THREAD_COUNT; t++) {
        args[t] = (worker_arg){.cache = cache, .seed = t};
        cr_assert_eq(pthread_create(&threads[t], NULL, worker, &args[t]), 0);
    }
    for (int t = 0; t < THREAD_COUNT; t++) {
        pthread_join(threads[t], NULL);
        cr_assert_eq(args[t].failures, 0, "thread %d", t);
        cr_assert_eq(args[t].mismatches, 0, "thread %d", t);
    }
}

Test(certcache, concurrent_hits)
{
    cc_certcache *cache = new_cache(0);

    run_workers(cache);

    cr_assert_eq(cc_certcache_size(cache), PEM_COUNT);
    cc_certcache_free(cache);
}

Test(certcache, concurrent_evictions)
{
    cc_certcache *cache = new_cache(PEM_COUNT - 1);

    run_workers(cache);

    cr_assert_eq(cc_certcache_size(cache), PEM_COUNT - 1);
    cc_certcache_free(cache);
}

/* Asserts that text fails in the cache exactly as in cc_x509svid_parse_pem_one(). */
static void expect_same_failure(const char *text)
{
    cc_certcache *cache = new_cache(0);
    X509 *uncached = (X509 *)1;
    X509 *cached = (X509 *)1;
    cc_err uncached_err = {0};
    cc_err cached_err = {0};

    cc_status uncached_status =
        cc_x509svid_parse_pem_one(text, strlen(text), &uncached, &uncached_err);
    cc_status cached_status = cc_certcache_get(cache, text, strlen(text), &cached, &cached_err);

    cr_assert_eq(uncached_status, CC_ERR_INVALID);
    cr_assert_eq(cached_status, uncached_status);
    cr_assert_str_eq(cached_err.message, uncached_err.message);
    cr_assert_null(cached);
    cr_assert_null(uncached);
    cr_assert_eq(cc_certcache_size(cache), 0, "a failed parse was cached");

    cached_status = cc_certcache_get(cache, text, strlen(text), &cached, &cached_err);
    cr_assert_eq(cached_status, uncached_status, "second attempt");
    cc_certcache_free(cache);
}

Test(certcache, bad_base64_not_cached)
{
    expect_same_failure("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
}

Test(certcache, trailing_text_not_cached)
{
    size_t size = strlen(pems[1]) + 8;
    char *text = malloc(size);
    cr_assert_not_null(text);
    snprintf(text, size, "%sjunk", pems[1]);

    expect_same_failure(text);

    free(text);
}

Test(certcache, two_blocks_not_cached)
{
    size_t size = strlen(pems[1]) + strlen(pems[0]) + 1;
    char *text = malloc(size);
    cr_assert_not_null(text);
    snprintf(text, size, "%s%s", pems[1], pems[0]);

    expect_same_failure(text);

    free(text);
}

Test(certcache, one_byte_differs)
{
    cc_certcache *cache = new_cache(0);
    size_t size = strlen(pems[1]) + 2;
    char *longer = malloc(size);
    cr_assert_not_null(longer);
    snprintf(longer, size, "%s\n", pems[1]); /* one more byte of whitespace, still valid */

    X509 *plain = get(cache, pems[1]);
    X509 *padded = get(cache, longer);

    cr_assert_eq(cc_certcache_size(cache), 2);
    cr_assert_neq(plain, padded);
    cr_assert_eq(X509_cmp(plain, padded), 0);
    X509_free(plain);
    X509_free(padded);
    free(longer);
    cc_certcache_free(cache);
}

Test(certcache, array_matches_uncached)
{
    cc_certcache *cache = new_cache(0);
    const char *chain_pems[] = {pems[1], pems[0]};
    STACK_OF(X509) *cached = NULL;
    STACK_OF(X509) *uncached = NULL;
    cc_err err = {0};

    cr_assert_eq(cc_certcache_parse_pem_array(cache, chain_pems, 2, &cached, &err), CC_OK, "%s",
                 err.message);
    cr_assert_eq(cc_x509svid_parse_pem_array(chain_pems, 2, &uncached, &err), CC_OK, "%s",
                 err.message);

    cr_assert_eq(sk_X509_num(cached), 2);
    cr_assert_eq(X509_cmp(sk_X509_value(cached, 0), sk_X509_value(uncached, 0)), 0);
    cr_assert_eq(X509_cmp(sk_X509_value(cached, 1), sk_X509_value(uncached, 1)), 0);
    cc_x509svid_chain_free(cached);
    cc_x509svid_chain_free(uncached);
    cc_certcache_free(cache);
}

Test(certcache, array_error_matches_uncached)
{
    cc_certcache *cache = new_cache(0);
    const char *chain_pems[] = {pems[1], "not pem"};
    STACK_OF(X509) *chain = NULL;
    cc_err cached_err = {0};
    cc_err uncached_err = {0};

    cc_status cached_status =
        cc_certcache_parse_pem_array(cache, chain_pems, 2, &chain, &cached_err);
    cc_status uncached_status = cc_x509svid_parse_pem_array(chain_pems, 2, &chain, &uncached_err);

    cr_assert_eq(uncached_status, CC_ERR_INVALID);
    cr_assert_eq(cached_status, uncached_status);
    cr_assert_str_eq(cached_err.message, uncached_err.message);
    cr_assert_null(chain);
    cr_assert_eq(cc_certcache_size(cache), 1, "only the valid leaf is cached");
    cc_certcache_free(cache);
}

Test(certcache, array_without_cache)
{
    const char *chain_pems[] = {pems[1], pems[0]};
    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};

    cr_assert_eq(cc_certcache_parse_pem_array(NULL, chain_pems, 2, &chain, &err), CC_OK, "%s",
                 err.message);

    cr_assert_eq(sk_X509_num(chain), 2);
    cc_x509svid_chain_free(chain);
}
