/* A bounded, thread-safe cache of parsed certificates keyed by their PEM text.
 *
 * Every authorization request carries the client chain as PEM strings, and
 * the root and intermediate of a trust domain are the same in every request.
 * The cache maps the SHA-256 digest of the exact PEM bytes of one array
 * element to the X509 that cc_x509svid_parse_pem_one() made from them, so a
 * cached element is parsed by the same rules as an uncached one. Text that
 * fails to parse is never cached.
 *
 * The cache and each caller hold their own reference (X509_up_ref), so an
 * evicted certificate stays valid for callers still using it. When the cache
 * is full, the least recently used entry is evicted. Parsing runs without the
 * lock held. Cached certificates are shared between threads and must be
 * treated as read-only. */
#ifndef CITADEL_CERTCACHE_H
#define CITADEL_CERTCACHE_H

#include <stddef.h>

#include <openssl/x509.h>

#include "citadel/error.h"

/* Default number of certificates a cache keeps. */
#define CC_CERTCACHE_DEFAULT_CAPACITY 1024

typedef struct cc_certcache cc_certcache;

/* Creates an empty cache of at most capacity certificates (0 means
 * CC_CERTCACHE_DEFAULT_CAPACITY). Returns NULL and fills err on failure. */
cc_certcache *cc_certcache_new(size_t capacity, cc_err *err);

/* Releases the cache's references and frees it. NULL is ignored. */
void cc_certcache_free(cc_certcache *cache);

/* Looks up len bytes of PEM text, parsing and inserting it on a miss. The
 * text must contain exactly one CERTIFICATE block (cc_x509svid_parse_pem_one()),
 * and a failure returns the same status and message as that function. On
 * success *out is a new reference owned by the caller (X509_free()). */
cc_status cc_certcache_get(cc_certcache *cache, const char *pem, size_t len, X509 **out,
                           cc_err *err);

/* cc_x509svid_parse_pem_array() with every element taken from the cache.
 * With cache NULL it is cc_x509svid_parse_pem_array() itself. The caller
 * frees *out with cc_x509svid_chain_free(). */
cc_status cc_certcache_parse_pem_array(cc_certcache *cache, const char *const *pems, size_t count,
                                       STACK_OF(X509) **out, cc_err *err);

/* Returns the number of cached certificates (for tests and metrics). */
size_t cc_certcache_size(cc_certcache *cache);

#endif
