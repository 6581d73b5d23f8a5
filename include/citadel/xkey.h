/* NATS xkey encryption: NaCl crypto_box between two curve nkeys, in the
 * "xkv1" wire format that nats-server uses for auth callout requests and
 * responses.
 *
 * A sealed message is "xkv1" (4 bytes) || nonce (24 random bytes) ||
 * crypto_box_easy output (16-byte Poly1305 tag, then the ciphertext), so it is
 * CC_XKEY_OVERHEAD bytes longer than the plaintext. It is raw binary.
 *
 * The uncached functions derive the shared key on every call. A cc_xkey_cache
 * keeps shared keys for recently seen peers. nats-server makes a new xkey on
 * every start, so entries are keyed by the peer's public key text and a
 * restarted server simply gets a new entry. */
#ifndef CITADEL_XKEY_H
#define CITADEL_XKEY_H

#include <stddef.h>
#include <stdint.h>

#include "citadel/error.h"
#include "citadel/nkey.h"

#define CC_XKEY_VERSION "xkv1"
#define CC_XKEY_VERSION_LEN 4
#define CC_XKEY_NONCE_LEN 24
#define CC_XKEY_MAC_LEN 16
#define CC_XKEY_OVERHEAD (CC_XKEY_VERSION_LEN + CC_XKEY_NONCE_LEN + CC_XKEY_MAC_LEN)

/* Default number of peers a cache keeps shared keys for. */
#define CC_XKEY_CACHE_DEFAULT_CAPACITY 64

/* Encrypts plain[0..len) from own_curve_key (a CC_NKEY_CURVE keypair, borrowed)
 * to the peer's public xkey ("X..."). On success *out is malloc'd, contains
 * len + CC_XKEY_OVERHEAD bytes and is owned by the caller. */
cc_status cc_xkey_seal(const cc_nkey *own_curve_key, const char *peer_public_xkey,
                       const uint8_t *plain, size_t len, uint8_t **out, size_t *out_len,
                       cc_err *err);

/* Decrypts a sealed message that peer_public_xkey sent to own_curve_key.
 * Rejects input shorter than CC_XKEY_OVERHEAD, a version tag other than
 * "xkv1" and a failed MAC (CC_ERR_CRYPTO), each with its own message. On
 * success *out is malloc'd with one NUL byte after the plaintext (not counted
 * in *out_len) and is owned by the caller. */
cc_status cc_xkey_open(const cc_nkey *own_curve_key, const char *peer_public_xkey,
                       const uint8_t *sealed, size_t len, uint8_t **out, size_t *out_len,
                       cc_err *err);

/* Shared keys (crypto_box_beforenm) for one own curve key and up to
 * `capacity` peers. Safe to use from several threads at once. */
typedef struct cc_xkey_cache cc_xkey_cache;

/* Creates a cache for own_curve_key, which is copied (the caller may wipe its
 * copy afterwards). capacity 0 means CC_XKEY_CACHE_DEFAULT_CAPACITY. When the
 * cache is full, the least recently used peer is evicted. Returns NULL and
 * fills err on failure. */
cc_xkey_cache *cc_xkey_cache_new(const cc_nkey *own_curve_key, size_t capacity, cc_err *err);

/* Zeroes every key in the cache and frees it. NULL is ignored. */
void cc_xkey_cache_free(cc_xkey_cache *cache);

/* The same as cc_xkey_seal() and cc_xkey_open() with the cache's own key. */
cc_status cc_xkey_cache_seal(cc_xkey_cache *cache, const char *peer_public_xkey,
                             const uint8_t *plain, size_t len, uint8_t **out, size_t *out_len,
                             cc_err *err);
cc_status cc_xkey_cache_open(cc_xkey_cache *cache, const char *peer_public_xkey,
                             const uint8_t *sealed, size_t len, uint8_t **out, size_t *out_len,
                             cc_err *err);

/* Returns the number of peers whose shared key is cached (for tests and metrics). */
size_t cc_xkey_cache_size(cc_xkey_cache *cache);

#endif
