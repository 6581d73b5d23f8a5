/* The parsed-certificate cache of certcache.h.
 *
 * Entries live in one array of `capacity` slots. A hash table of chained
 * slot indexes finds an entry by its digest, and a doubly linked list of slot
 * indexes keeps the entries in recency order (head most recent) for LRU
 * eviction. Both are touched only under the mutex.
 *
 * A miss parses without the lock, then locks again and inserts. When another
 * thread inserted the same text meanwhile, its certificate is kept and the
 * fresh one dropped, so every caller of one PEM text gets the same X509. */
#include "citadel/certcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "citadel/x509svid.h"

#define DIGEST_LEN 32 /* SHA-256 */
#define NO_SLOT SIZE_MAX

typedef struct cache_entry {
    unsigned char digest[DIGEST_LEN]; /* SHA-256 of the exact PEM bytes */
    X509 *cert;                       /* the cache's reference; NULL when the slot is free */
    size_t bucket_next;               /* next slot in the same hash bucket */
    size_t newer;                     /* neighbours in the recency list */
    size_t older;
} cache_entry;

struct cc_certcache {
    pthread_mutex_t lock;
    EVP_MD *sha256; /* fetched once, not by every EVP_Digest() call */
    cache_entry *entries;
    size_t capacity;
    size_t used;       /* slots in use; slots [used, capacity) were never used */
    size_t *buckets;   /* first slot of each bucket, or NO_SLOT */
    size_t bucket_mask; /* bucket count - 1, a power of two */
    size_t newest;
    size_t oldest;
};

cc_certcache *cc_certcache_new(size_t capacity, cc_err *err)
{
    if (capacity == 0)
        capacity = CC_CERTCACHE_DEFAULT_CAPACITY;
    /* Keeps the bucket array size, up to twice the capacity, from overflowing. */
    if (capacity > SIZE_MAX / (4 * sizeof(cache_entry))) {
        cc_err_set(err, CC_ERR_INVALID, "certificate cache capacity %zu is too large", capacity);
        return NULL;
    }
    size_t bucket_count = 1;
    while (bucket_count < capacity)
        bucket_count <<= 1;

    cc_certcache *cache = calloc(1, sizeof(*cache));
    if (cache == NULL) {
        cc_err_set(err, CC_ERR_NOMEM, "out of memory creating a certificate cache");
        return NULL;
    }
    cache->entries = calloc(capacity, sizeof(*cache->entries));
    cache->buckets = malloc(bucket_count * sizeof(*cache->buckets));
    if (cache->entries == NULL || cache->buckets == NULL) {
        cc_err_set(err, CC_ERR_NOMEM, "out of memory creating a certificate cache of %zu entries",
                   capacity);
        goto fail;
    }
    for (size_t i = 0; i < bucket_count; i++)
        cache->buckets[i] = NO_SLOT;
    cache->capacity = capacity;
    cache->bucket_mask = bucket_count - 1;
    cache->newest = NO_SLOT;
    cache->oldest = NO_SLOT;

    cache->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (cache->sha256 == NULL) {
        ERR_clear_error();
        cc_err_set(err, CC_ERR_INTERNAL, "OpenSSL has no SHA256 digest for the certificate cache");
        goto fail;
    }
    if (pthread_mutex_init(&cache->lock, NULL) != 0) {
        cc_err_set(err, CC_ERR_INTERNAL, "pthread_mutex_init failed for the certificate cache");
        goto fail;
    }
    return cache;

fail:
    EVP_MD_free(cache->sha256);
    free(cache->entries);
    free(cache->buckets);
    free(cache);
    return NULL;
}

void cc_certcache_free(cc_certcache *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < cache->used; i++)
        X509_free(cache->entries[i].cert);
    pthread_mutex_destroy(&cache->lock);
    EVP_MD_free(cache->sha256);
    free(cache->entries);
    free(cache->buckets);
    free(cache);
}

/* ---- under the lock ------------------------------------------------------ */

static size_t bucket_of(const cc_certcache *cache, const unsigned char *digest)
{
    /* SHA-256 output is uniformly distributed, so its first bytes serve as the
     * bucket hash. Clients can craft certificates that share a bucket, but a
     * bucket never holds more than capacity entries. */
    uint64_t prefix;
    memcpy(&prefix, digest, sizeof(prefix));
    return (size_t)prefix & cache->bucket_mask;
}

static void unlink_recency(cc_certcache *cache, size_t slot)
{
    cache_entry *entry = &cache->entries[slot];
    if (entry->newer != NO_SLOT)
        cache->entries[entry->newer].older = entry->older;
    else
        cache->newest = entry->older;
    if (entry->older != NO_SLOT)
        cache->entries[entry->older].newer = entry->newer;
    else
        cache->oldest = entry->newer;
}

static void push_newest(cc_certcache *cache, size_t slot)
{
    cache_entry *entry = &cache->entries[slot];
    entry->newer = NO_SLOT;
    entry->older = cache->newest;
    if (cache->newest != NO_SLOT)
        cache->entries[cache->newest].newer = slot;
    cache->newest = slot;
    if (cache->oldest == NO_SLOT)
        cache->oldest = slot;
}

static void unlink_bucket(cc_certcache *cache, size_t slot)
{
    size_t *link = &cache->buckets[bucket_of(cache, cache->entries[slot].digest)];
    while (*link != slot)
        link = &cache->entries[*link].bucket_next;
    *link = cache->entries[slot].bucket_next;
}

/* Returns a new reference to the cached certificate for digest, or NULL. */
static X509 *lookup_locked(cc_certcache *cache, const unsigned char *digest)
{
    size_t slot = cache->buckets[bucket_of(cache, digest)];
    while (slot != NO_SLOT && memcmp(cache->entries[slot].digest, digest, DIGEST_LEN) != 0)
        slot = cache->entries[slot].bucket_next;
    if (slot == NO_SLOT)
        return NULL;

    unlink_recency(cache, slot);
    push_newest(cache, slot);
    X509 *cert = cache->entries[slot].cert;
    X509_up_ref(cert);
    return cert;
}

/* Stores cert (the cache takes over the reference) under digest and returns
 * the evicted certificate, whose reference the caller must release, or NULL. */
static X509 *insert_locked(cc_certcache *cache, const unsigned char *digest, X509 *cert)
{
    X509 *evicted = NULL;
    size_t slot;
    if (cache->used < cache->capacity) {
        slot = cache->used++;
    } else {
        slot = cache->oldest;
        unlink_recency(cache, slot);
        unlink_bucket(cache, slot);
        evicted = cache->entries[slot].cert;
    }

    cache_entry *entry = &cache->entries[slot];
    memcpy(entry->digest, digest, DIGEST_LEN);
    entry->cert = cert;
    size_t bucket = bucket_of(cache, digest);
    entry->bucket_next = cache->buckets[bucket];
    cache->buckets[bucket] = slot;
    push_newest(cache, slot);
    return evicted;
}

/* ---- public -------------------------------------------------------------- */

cc_status cc_certcache_get(cc_certcache *cache, const char *pem, size_t len, X509 **out,
                           cc_err *err)
{
    unsigned char digest[DIGEST_LEN];
    unsigned int digest_len = 0;
    *out = NULL;

    if (!EVP_Digest(pem, len, digest, &digest_len, cache->sha256, NULL) ||
        digest_len != DIGEST_LEN) {
        ERR_clear_error();
        return cc_err_set(err, CC_ERR_INTERNAL, "SHA-256 of a PEM certificate failed");
    }

    pthread_mutex_lock(&cache->lock);
    X509 *cert = lookup_locked(cache, digest);
    pthread_mutex_unlock(&cache->lock);
    if (cert != NULL) {
        *out = cert; /* the caller owns this reference */
        return CC_OK;
    }

    /* Parse outside the lock. Failures are returned as they are and not cached. */
    X509 *parsed = NULL;
    cc_status status = cc_x509svid_parse_pem_one(pem, len, &parsed, err);
    if (status != CC_OK)
        return status;

    X509 *evicted = NULL;
    pthread_mutex_lock(&cache->lock);
    cert = lookup_locked(cache, digest);
    if (cert == NULL) {
        X509_up_ref(parsed); /* one reference for the cache, one for the caller */
        evicted = insert_locked(cache, digest, parsed);
        cert = parsed;
        parsed = NULL;
    }
    pthread_mutex_unlock(&cache->lock);

    X509_free(parsed); /* another thread cached the same text first */
    X509_free(evicted);
    *out = cert; /* the caller owns this reference */
    return CC_OK;
}

static cc_status parse_cached(void *arg, const char *pem, size_t len, X509 **out, cc_err *err)
{
    return cc_certcache_get(arg, pem, len, out, err);
}

cc_status cc_certcache_parse_pem_array(cc_certcache *cache, const char *const *pems, size_t count,
                                       STACK_OF(X509) **out, cc_err *err)
{
    if (cache == NULL)
        return cc_x509svid_parse_pem_array(pems, count, out, err);
    return cc_x509svid_parse_pem_array_with(pems, count, parse_cached, cache, out, err);
}

size_t cc_certcache_size(cc_certcache *cache)
{
    pthread_mutex_lock(&cache->lock);
    size_t used = cache->used;
    pthread_mutex_unlock(&cache->lock);
    return used;
}
