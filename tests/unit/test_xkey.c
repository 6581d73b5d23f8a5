#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "citadel/xkey.h"

typedef struct party {
    cc_nkey key;
    char public_text[CC_NKEY_PUBLIC_LEN + 1];
} party;

static void make_party(party *p)
{
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &p->key, NULL), CC_OK);
    cc_nkey_public_string(&p->key, p->public_text);
}

static const char message[] = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln";
#define MESSAGE_LEN (sizeof(message) - 1)

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

Test(xkey, seal_open_round_trip)
{
    party server, service;
    make_party(&server);
    make_party(&service);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_seal(&server.key, service.public_text, (const uint8_t *)message,
                              MESSAGE_LEN, &sealed, &sealed_len, &err),
                 CC_OK, "%s", err.message);
    cr_assert_eq(sealed_len, MESSAGE_LEN + CC_XKEY_OVERHEAD);
    cr_assert_eq(memcmp(sealed, "xkv1", 4), 0);

    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cr_assert_eq(cc_xkey_open(&service.key, server.public_text, sealed, sealed_len, &plain,
                              &plain_len, &err),
                 CC_OK, "%s", err.message);
    cr_assert_eq(plain_len, MESSAGE_LEN);
    cr_assert_str_eq((const char *)plain, message, "opened text is NUL-terminated");
    free(plain);
    free(sealed);
}

Test(xkey, seals_empty_message)
{
    party a, b;
    make_party(&a);
    make_party(&b);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cr_assert_eq(cc_xkey_seal(&a.key, b.public_text, NULL, 0, &sealed, &sealed_len, NULL), CC_OK);
    cr_assert_eq(sealed_len, CC_XKEY_OVERHEAD);

    uint8_t *plain = NULL;
    size_t plain_len = 99;
    cr_assert_eq(cc_xkey_open(&b.key, a.public_text, sealed, sealed_len, &plain, &plain_len, NULL),
                 CC_OK);
    cr_assert_eq(plain_len, 0);
    free(plain);
    free(sealed);
}

Test(xkey, uses_fresh_nonces)
{
    party a, b;
    make_party(&a);
    make_party(&b);

    uint8_t *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    cr_assert_eq(cc_xkey_seal(&a.key, b.public_text, (const uint8_t *)message, MESSAGE_LEN, &first,
                              &first_len, NULL),
                 CC_OK);
    cr_assert_eq(cc_xkey_seal(&a.key, b.public_text, (const uint8_t *)message, MESSAGE_LEN, &second,
                              &second_len, NULL),
                 CC_OK);
    cr_assert_neq(memcmp(first + 4, second + 4, CC_XKEY_NONCE_LEN), 0);
    free(first);
    free(second);
}

Test(xkey, open_with_wrong_key_fails)
{
    party server, service, stranger;
    make_party(&server);
    make_party(&service);
    make_party(&stranger);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cr_assert_eq(cc_xkey_seal(&server.key, service.public_text, (const uint8_t *)message,
                              MESSAGE_LEN, &sealed, &sealed_len, NULL),
                 CC_OK);

    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_open(&stranger.key, server.public_text, sealed, sealed_len, &plain,
                              &plain_len, &err),
                 CC_ERR_CRYPTO);
    cr_assert(contains(err.message, "MAC"), "message: %s", err.message);
    cr_assert_null(plain);

    cr_assert_eq(cc_xkey_open(&service.key, stranger.public_text, sealed, sealed_len, &plain,
                              &plain_len, &err),
                 CC_ERR_CRYPTO, "the wrong sender key also fails");
    free(sealed);
}

Test(xkey, rejects_short_input)
{
    party a, b;
    make_party(&a);
    make_party(&b);

    uint8_t sealed[CC_XKEY_OVERHEAD] = "xkv1";
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    const size_t lengths[] = {0, 4, 28, 29, CC_XKEY_OVERHEAD - 1};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        cc_err err = {0};
        cr_assert_eq(
            cc_xkey_open(&b.key, a.public_text, sealed, lengths[i], &plain, &plain_len, &err),
            CC_ERR_INVALID, "length %zu", lengths[i]);
        cr_assert(contains(err.message, "too short"), "message: %s", err.message);
    }
}

Test(xkey, rejects_wrong_version)
{
    party a, b;
    make_party(&a);
    make_party(&b);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cr_assert_eq(cc_xkey_seal(&a.key, b.public_text, (const uint8_t *)message, MESSAGE_LEN, &sealed,
                              &sealed_len, NULL),
                 CC_OK);
    sealed[3] = '2';

    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_open(&b.key, a.public_text, sealed, sealed_len, &plain, &plain_len, &err),
                 CC_ERR_INVALID);
    cr_assert(contains(err.message, "version"), "message: %s", err.message);
    free(sealed);
}

Test(xkey, rejects_tampered_bytes)
{
    party a, b;
    make_party(&a);
    make_party(&b);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cr_assert_eq(cc_xkey_seal(&a.key, b.public_text, (const uint8_t *)message, MESSAGE_LEN, &sealed,
                              &sealed_len, NULL),
                 CC_OK);

    /* One position each in the nonce, the MAC and the ciphertext. */
    const size_t positions[] = {4, 30, CC_XKEY_OVERHEAD, sealed_len - 1};
    for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
        sealed[positions[i]] ^= 0x01;
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        cc_err err = {0};
        cr_assert_eq(
            cc_xkey_open(&b.key, a.public_text, sealed, sealed_len, &plain, &plain_len, &err),
            CC_ERR_CRYPTO, "byte %zu flipped", positions[i]);
        cr_assert(contains(err.message, "MAC"), "message: %s", err.message);
        sealed[positions[i]] ^= 0x01;
    }
    free(sealed);
}

Test(xkey, rejects_non_curve_keys)
{
    party a;
    make_party(&a);
    cc_nkey account;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_ACCOUNT, &account, NULL), CC_OK);
    char account_public[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&account, account_public);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cc_err err = {0};
    cr_assert_eq(
        cc_xkey_seal(&account, a.public_text, (const uint8_t *)"x", 1, &sealed, &sealed_len, &err),
        CC_ERR_INVALID);
    cr_assert(contains(err.message, "curve"), "message: %s", err.message);

    cr_assert_eq(
        cc_xkey_seal(&a.key, account_public, (const uint8_t *)"x", 1, &sealed, &sealed_len, &err),
        CC_ERR_INVALID);
    cr_assert(contains(err.message, "wrong kind"), "message: %s", err.message);
    cr_assert_null(cc_xkey_cache_new(&account, 4, &err));
}

Test(xkey, rejects_small_order_peer)
{
    party a;
    make_party(&a);

    /* The all-zero X25519 point has small order, so no shared key exists. */
    const uint8_t zero[32] = {0};
    char weak[CC_NKEY_PUBLIC_LEN + 1];
    cr_assert_eq(cc_nkey_encode_public(CC_NKEY_CURVE, zero, weak, NULL), CC_OK);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_seal(&a.key, weak, (const uint8_t *)"x", 1, &sealed, &sealed_len, &err),
                 CC_ERR_CRYPTO);
    cr_assert(contains(err.message, "small order"), "message: %s", err.message);
}

Test(xkey_cache, agrees_with_uncached)
{
    party server, service;
    make_party(&server);
    make_party(&service);
    cc_xkey_cache *cache = cc_xkey_cache_new(&service.key, 0, NULL);
    cr_assert_not_null(cache);

    /* Server seals without a cache; the service opens with one. */
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cr_assert_eq(cc_xkey_seal(&server.key, service.public_text, (const uint8_t *)message,
                              MESSAGE_LEN, &sealed, &sealed_len, NULL),
                 CC_OK);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cr_assert_eq(
        cc_xkey_cache_open(cache, server.public_text, sealed, sealed_len, &plain, &plain_len, NULL),
        CC_OK);
    cr_assert_eq(plain_len, MESSAGE_LEN);
    cr_assert_str_eq((const char *)plain, message);
    free(plain);
    free(sealed);

    /* The service replies through the cache; the server opens without one. */
    cr_assert_eq(cc_xkey_cache_seal(cache, server.public_text, (const uint8_t *)message,
                                    MESSAGE_LEN, &sealed, &sealed_len, NULL),
                 CC_OK);
    cr_assert_eq(cc_xkey_open(&server.key, service.public_text, sealed, sealed_len, &plain,
                              &plain_len, NULL),
                 CC_OK);
    cr_assert_str_eq((const char *)plain, message);
    cr_assert_eq(cc_xkey_cache_size(cache), 1, "one peer, one entry");
    free(plain);
    free(sealed);
    cc_xkey_cache_free(cache);
}

Test(xkey_cache, rejects_like_uncached)
{
    party server, service, stranger;
    make_party(&server);
    make_party(&service);
    make_party(&stranger);
    cc_xkey_cache *cache = cc_xkey_cache_new(&service.key, 4, NULL);

    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    cr_assert_eq(cc_xkey_seal(&server.key, service.public_text, (const uint8_t *)message,
                              MESSAGE_LEN, &sealed, &sealed_len, NULL),
                 CC_OK);

    uint8_t *plain = NULL;
    size_t plain_len = 0;
    cc_err err = {0};
    cr_assert_eq(cc_xkey_cache_open(cache, stranger.public_text, sealed, sealed_len, &plain,
                                    &plain_len, &err),
                 CC_ERR_CRYPTO);
    cr_assert_eq(
        cc_xkey_cache_open(cache, server.public_text, sealed, 10, &plain, &plain_len, &err),
        CC_ERR_INVALID);
    cr_assert(contains(err.message, "too short"), "message: %s", err.message);
    cr_assert_eq(
        cc_xkey_cache_open(cache, "XNOTAKEY", sealed, sealed_len, &plain, &plain_len, &err),
        CC_ERR_INVALID);
    cr_assert(contains(err.message, "peer xkey"), "message: %s", err.message);
    cr_assert_eq(cc_xkey_cache_size(cache), 1, "only the valid stranger key was cached");
    free(sealed);
    cc_xkey_cache_free(cache);
}

Test(xkey_cache, evicts_beyond_capacity)
{
    party own;
    make_party(&own);
    cc_xkey_cache *cache = cc_xkey_cache_new(&own.key, 3, NULL);

    party peers[5];
    for (size_t i = 0; i < 5; i++) {
        make_party(&peers[i]);
        uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        cr_assert_eq(cc_xkey_cache_seal(cache, peers[i].public_text, (const uint8_t *)message,
                                        MESSAGE_LEN, &sealed, &sealed_len, NULL),
                     CC_OK);

        /* Every sealed message still opens for its peer after evictions. */
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        cr_assert_eq(cc_xkey_open(&peers[i].key, own.public_text, sealed, sealed_len, &plain,
                                  &plain_len, NULL),
                     CC_OK);
        free(plain);
        free(sealed);
        cr_assert_leq(cc_xkey_cache_size(cache), 3);
    }
    cr_assert_eq(cc_xkey_cache_size(cache), 3);
    cc_xkey_cache_free(cache);
}

typedef struct worker_args {
    cc_xkey_cache *cache;
    party *peers;
    size_t peer_count;
    int failures;
} worker_args;

static void *seal_open_worker(void *arg)
{
    worker_args *args = arg;
    for (size_t round = 0; round < 50; round++) {
        party *peer = &args->peers[round % args->peer_count];
        uint8_t *sealed = NULL, *plain = NULL;
        size_t sealed_len = 0, plain_len = 0;
        if (cc_xkey_cache_seal(args->cache, peer->public_text, (const uint8_t *)message,
                               MESSAGE_LEN, &sealed, &sealed_len, NULL) != CC_OK) {
            args->failures++;
            continue;
        }
        if (cc_xkey_cache_open(args->cache, peer->public_text, sealed, sealed_len, &plain,
                               &plain_len, NULL) != CC_OK ||
            plain_len != MESSAGE_LEN)
            args->failures++;
        free(plain);
        free(sealed);
    }
    return NULL;
}

Test(xkey_cache, shared_between_threads)
{
    party own;
    make_party(&own);
    party peers[6];
    for (size_t i = 0; i < 6; i++)
        make_party(&peers[i]);

    /* Fewer slots than peers, so threads evict each other's entries. */
    cc_xkey_cache *cache = cc_xkey_cache_new(&own.key, 4, NULL);
    pthread_t threads[4];
    worker_args args[4];
    for (size_t i = 0; i < 4; i++) {
        args[i] = (worker_args){.cache = cache, .peers = peers, .peer_count = 6};
        cr_assert_eq(pthread_create(&threads[i], NULL, seal_open_worker, &args[i]), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        cr_assert_eq(args[i].failures, 0, "thread %zu", i);
    }
    cc_xkey_cache_free(cache);
}
