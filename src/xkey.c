/* xkey sealing and opening (crypto_box in the "xkv1" format) and the per-peer
 * shared key cache.
 *
 * Both paths split the work the same way: derive or look up the 32-byte shared
 * key, then run crypto_box_easy_afternm or crypto_box_open_easy_afternm. That
 * gives the same bytes as crypto_box_easy with the two keys. The cache lock
 * covers only the table, so the crypto runs outside it on a stack copy of the
 * shared key, which is wiped afterwards. */
#include "citadel/xkey.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cache_entry {
    char peer[CC_NKEY_PUBLIC_LEN + 1]; /* empty when the slot is free */
    uint8_t shared_key[crypto_box_BEFORENMBYTES];
    uint64_t last_used;
} cache_entry;

struct cc_xkey_cache {
    pthread_mutex_t lock;
    cc_nkey own_key;
    cache_entry *entries;
    size_t capacity;
    uint64_t clock; /* incremented on every use; the lowest last_used is evicted first */
};

static cc_status check_own_key(const cc_nkey *own_curve_key, cc_err *err)
{
    if (own_curve_key == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "missing own curve key for xkey encryption");
    if (own_curve_key->kind != CC_NKEY_CURVE)
        return cc_err_set(err, CC_ERR_INVALID,
                          "xkey encryption needs a curve key (seed \"SX...\"), got a %s key",
                          cc_nkey_kind_name(own_curve_key->kind));
    return cc_nkey_library_init(err);
}

/* Computes the crypto_box shared key between own_curve_key and the peer. */
static cc_status derive_shared_key(const cc_nkey *own_curve_key, const char *peer_public_xkey,
                                   uint8_t shared_key[crypto_box_BEFORENMBYTES], cc_err *err)
{
    uint8_t peer_raw[32];
    cc_status status = cc_nkey_decode_public(peer_public_xkey, CC_NKEY_CURVE, NULL, peer_raw, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "peer xkey");
        return status;
    }

    /* libsodium rejects peer keys of small order, whose shared secret is all zeros. */
    if (crypto_box_beforenm(shared_key, peer_raw, own_curve_key->secret_key) != 0)
        return cc_err_set(err, CC_ERR_CRYPTO,
                          "peer xkey %s is a weak X25519 key (small order); no shared key "
                          "exists",
                          peer_public_xkey);
    return CC_OK;
}

static cc_status seal_with_shared(const uint8_t shared_key[crypto_box_BEFORENMBYTES],
                                  const uint8_t *plain, size_t len, uint8_t **out, size_t *out_len,
                                  cc_err *err)
{
    if (len > SIZE_MAX - CC_XKEY_OVERHEAD || len > crypto_box_MESSAGEBYTES_MAX)
        return cc_err_set(err, CC_ERR_INVALID, "xkey plaintext of %zu bytes is too large", len);

    size_t total = len + CC_XKEY_OVERHEAD;
    uint8_t *buf = malloc(total);
    if (buf == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory sealing %zu bytes", len);

    uint8_t *nonce = buf + CC_XKEY_VERSION_LEN;
    memcpy(buf, CC_XKEY_VERSION, CC_XKEY_VERSION_LEN);
    randombytes_buf(nonce, CC_XKEY_NONCE_LEN);
    if (crypto_box_easy_afternm(nonce + CC_XKEY_NONCE_LEN, plain, len, nonce, shared_key) != 0) {
        free(buf);
        return cc_err_set(err, CC_ERR_INTERNAL, "crypto_box_easy_afternm failed");
    }

    /* Ownership of buf passes to the caller. */
    *out = buf;
    *out_len = total;
    return CC_OK;
}

static cc_status open_with_shared(const uint8_t shared_key[crypto_box_BEFORENMBYTES],
                                  const char *peer_public_xkey, const uint8_t *sealed, size_t len,
                                  uint8_t **out, size_t *out_len, cc_err *err)
{
    size_t plain_len = len - CC_XKEY_OVERHEAD;
    uint8_t *buf = malloc(plain_len + 1);
    if (buf == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory opening %zu bytes", len);

    const uint8_t *nonce = sealed + CC_XKEY_VERSION_LEN;
    const uint8_t *boxed = nonce + CC_XKEY_NONCE_LEN; /* MAC, then ciphertext */
    size_t boxed_len = len - CC_XKEY_VERSION_LEN - CC_XKEY_NONCE_LEN;
    if (crypto_box_open_easy_afternm(buf, boxed, boxed_len, nonce, shared_key) != 0) {
        free(buf);
        return cc_err_set(err, CC_ERR_CRYPTO,
                          "xkey message failed authentication (MAC mismatch): it was not sealed "
                          "by %s for this service's xkey, or it was altered",
                          peer_public_xkey);
    }
    buf[plain_len] = '\0';

    /* Ownership of buf passes to the caller. */
    *out = buf;
    *out_len = plain_len;
    return CC_OK;
}

/* Checks length and version tag before any key work. */
static cc_status check_sealed(const uint8_t *sealed, size_t len, cc_err *err)
{
    if (len < CC_XKEY_OVERHEAD)
        return cc_err_set(err, CC_ERR_INVALID,
                          "xkey message too short: %zu bytes, at least %d needed (version, "
                          "nonce and MAC)",
                          len, CC_XKEY_OVERHEAD);
    if (memcmp(sealed, CC_XKEY_VERSION, CC_XKEY_VERSION_LEN) != 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "xkey message has an unknown version tag: expected \"%s\"",
                          CC_XKEY_VERSION);
    return CC_OK;
}

cc_status cc_xkey_seal(const cc_nkey *own_curve_key, const char *peer_public_xkey,
                       const uint8_t *plain, size_t len, uint8_t **out, size_t *out_len,
                       cc_err *err)
{
    uint8_t shared_key[crypto_box_BEFORENMBYTES];
    cc_status status = check_own_key(own_curve_key, err);
    if (status == CC_OK)
        status = derive_shared_key(own_curve_key, peer_public_xkey, shared_key, err);
    if (status == CC_OK)
        status = seal_with_shared(shared_key, plain, len, out, out_len, err);

    sodium_memzero(shared_key, sizeof(shared_key));
    return status;
}

cc_status cc_xkey_open(const cc_nkey *own_curve_key, const char *peer_public_xkey,
                       const uint8_t *sealed, size_t len, uint8_t **out, size_t *out_len,
                       cc_err *err)
{
    uint8_t shared_key[crypto_box_BEFORENMBYTES];
    cc_status status = check_own_key(own_curve_key, err);
    if (status == CC_OK)
        status = check_sealed(sealed, len, err);
    if (status == CC_OK)
        status = derive_shared_key(own_curve_key, peer_public_xkey, shared_key, err);
    if (status == CC_OK)
        status = open_with_shared(shared_key, peer_public_xkey, sealed, len, out, out_len, err);

    sodium_memzero(shared_key, sizeof(shared_key));
    return status;
}

cc_xkey_cache *cc_xkey_cache_new(const cc_nkey *own_curve_key, size_t capacity, cc_err *err)
{
    if (check_own_key(own_curve_key, err) != CC_OK)
        return NULL;
    if (capacity == 0)
        capacity = CC_XKEY_CACHE_DEFAULT_CAPACITY;

    cc_xkey_cache *cache = calloc(1, sizeof(*cache));
    cache_entry *entries = calloc(capacity, sizeof(*entries));
    if (cache == NULL || entries == NULL) {
        free(cache);
        free(entries);
        cc_err_set(err, CC_ERR_NOMEM, "out of memory creating an xkey cache of %zu entries",
                   capacity);
        return NULL;
    }
    if (pthread_mutex_init(&cache->lock, NULL) != 0) {
        free(cache);
        free(entries);
        cc_err_set(err, CC_ERR_INTERNAL, "pthread_mutex_init failed for the xkey cache");
        return NULL;
    }

    cache->own_key = *own_curve_key;
    cache->entries = entries;
    cache->capacity = capacity;
    return cache;
}

void cc_xkey_cache_free(cc_xkey_cache *cache)
{
    if (cache == NULL)
        return;

    pthread_mutex_destroy(&cache->lock);
    sodium_memzero(cache->entries, cache->capacity * sizeof(*cache->entries));
    free(cache->entries);
    cc_nkey_wipe(&cache->own_key);
    free(cache);
}

/* Copies the cached shared key for peer into shared_key; returns 0 when found. */
static int cache_lookup(cc_xkey_cache *cache, const char *peer,
                        uint8_t shared_key[crypto_box_BEFORENMBYTES])
{
    int found = -1;
    pthread_mutex_lock(&cache->lock);
    for (size_t i = 0; i < cache->capacity; i++) {
        cache_entry *entry = &cache->entries[i];
        if (entry->peer[0] != '\0' && strcmp(entry->peer, peer) == 0) {
            memcpy(shared_key, entry->shared_key, crypto_box_BEFORENMBYTES);
            entry->last_used = ++cache->clock;
            found = 0;
            break;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

/* Stores the shared key for peer, replacing a free slot, the peer's own slot
 * (another thread may have added it meanwhile) or the least recently used one. */
static void cache_store(cc_xkey_cache *cache, const char *peer,
                        const uint8_t shared_key[crypto_box_BEFORENMBYTES])
{
    pthread_mutex_lock(&cache->lock);
    cache_entry *victim = &cache->entries[0];
    for (size_t i = 0; i < cache->capacity; i++) {
        cache_entry *entry = &cache->entries[i];
        if (entry->peer[0] == '\0' || strcmp(entry->peer, peer) == 0) {
            victim = entry;
            break;
        }
        if (entry->last_used < victim->last_used)
            victim = entry;
    }
    snprintf(victim->peer, sizeof(victim->peer), "%s", peer);
    memcpy(victim->shared_key, shared_key, crypto_box_BEFORENMBYTES);
    victim->last_used = ++cache->clock;
    pthread_mutex_unlock(&cache->lock);
}

/* Fills shared_key from the cache, deriving and storing it on a miss. */
static cc_status cache_shared_key(cc_xkey_cache *cache, const char *peer_public_xkey,
                                  uint8_t shared_key[crypto_box_BEFORENMBYTES], cc_err *err)
{
    if (cache == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "missing xkey cache");
    if (peer_public_xkey != NULL && cache_lookup(cache, peer_public_xkey, shared_key) == 0)
        return CC_OK;

    /* derive_shared_key validates the text, so only well-formed keys are stored. */
    cc_status status = derive_shared_key(&cache->own_key, peer_public_xkey, shared_key, err);
    if (status == CC_OK)
        cache_store(cache, peer_public_xkey, shared_key);
    return status;
}

cc_status cc_xkey_cache_seal(cc_xkey_cache *cache, const char *peer_public_xkey,
                             const uint8_t *plain, size_t len, uint8_t **out, size_t *out_len,
                             cc_err *err)
{
    uint8_t shared_key[crypto_box_BEFORENMBYTES];
    cc_status status = cache_shared_key(cache, peer_public_xkey, shared_key, err);
    if (status == CC_OK)
        status = seal_with_shared(shared_key, plain, len, out, out_len, err);

    sodium_memzero(shared_key, sizeof(shared_key));
    return status;
}

cc_status cc_xkey_cache_open(cc_xkey_cache *cache, const char *peer_public_xkey,
                             const uint8_t *sealed, size_t len, uint8_t **out, size_t *out_len,
                             cc_err *err)
{
    uint8_t shared_key[crypto_box_BEFORENMBYTES];
    cc_status status = check_sealed(sealed, len, err);
    if (status == CC_OK)
        status = cache_shared_key(cache, peer_public_xkey, shared_key, err);
    if (status == CC_OK)
        status = open_with_shared(shared_key, peer_public_xkey, sealed, len, out, out_len, err);

    sodium_memzero(shared_key, sizeof(shared_key));
    return status;
}

size_t cc_xkey_cache_size(cc_xkey_cache *cache)
{
    if (cache == NULL)
        return 0;

    size_t count = 0;
    pthread_mutex_lock(&cache->lock);
    for (size_t i = 0; i < cache->capacity; i++) {
        if (cache->entries[i].peer[0] != '\0')
            count++;
    }
    pthread_mutex_unlock(&cache->lock);
    return count;
}
