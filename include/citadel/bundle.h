/* Trust bundles keyed by trust domain.
 *
 * A cc_bundle holds one trust domain's X.509 authorities (CA certificates that
 * may anchor an X509-SVID chain) and JWT authorities (public keys, by key id,
 * that may sign a JWT-SVID). A cc_bundle_set maps trust domain names to
 * bundles; an SVID is verified only against the bundle of its own trust
 * domain, so the set never merges the authorities of two domains.
 *
 * A set is built, then published and never changed again: readers share it by
 * reference count, and a reload builds a new set and swaps the pointer. */
#ifndef CITADEL_BUNDLE_H
#define CITADEL_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "citadel/error.h"

typedef struct cc_bundle cc_bundle;
typedef struct cc_bundle_set cc_bundle_set;

/* Creates an empty bundle for trust_domain (copied). NULL when out of memory. */
cc_bundle *cc_bundle_new(const char *trust_domain);
void cc_bundle_free(cc_bundle *bundle);

const char *cc_bundle_trust_domain(const cc_bundle *bundle);

/* Adds a CA certificate. The bundle takes its own reference; the caller keeps
 * its reference to cert. Adding the same certificate twice keeps one copy. */
cc_status cc_bundle_add_x509_authority(cc_bundle *bundle, X509 *cert, cc_err *err);

/* Returns the X.509 authorities (borrowed; valid while the bundle lives). */
STACK_OF(X509) *cc_bundle_x509_authorities(const cc_bundle *bundle);

/* Adds a JWT signing key under kid. The bundle takes its own reference to key.
 * A second key with the same kid replaces the first. */
cc_status cc_bundle_add_jwt_authority(cc_bundle *bundle, const char *kid, EVP_PKEY *key,
                                      cc_err *err);

/* Returns the key for kid (borrowed), or NULL. */
EVP_PKEY *cc_bundle_find_jwt_authority(const cc_bundle *bundle, const char *kid);

size_t cc_bundle_jwt_authority_count(const cc_bundle *bundle);

/* Returns the key at index i in insertion order (borrowed) and its kid. */
EVP_PKEY *cc_bundle_jwt_authority_at(const cc_bundle *bundle, size_t i, const char **kid);

/* spiffe_sequence and spiffe_refresh_hint of a SPIFFE bundle; -1 when absent. */
void cc_bundle_set_sequence(cc_bundle *bundle, int64_t sequence);
int64_t cc_bundle_sequence(const cc_bundle *bundle);
void cc_bundle_set_refresh_hint(cc_bundle *bundle, int64_t seconds);
int64_t cc_bundle_refresh_hint(const cc_bundle *bundle);

/* Creates an empty set with a reference count of 1. NULL when out of memory. */
cc_bundle_set *cc_bundle_set_new(void);

/* Adds bundle and takes ownership of it, also on failure. A second bundle for
 * a trust domain already in the set is rejected, so that two sources can never
 * be merged into one domain by accident. */
cc_status cc_bundle_set_add(cc_bundle_set *set, cc_bundle *bundle, cc_err *err);

/* Returns the bundle of trust_domain (borrowed from the set), or NULL. The
 * comparison is byte-exact: trust domain names are lowercase by rule. */
const cc_bundle *cc_bundle_set_find(const cc_bundle_set *set, const char *trust_domain);

size_t cc_bundle_set_count(const cc_bundle_set *set);
const cc_bundle *cc_bundle_set_at(const cc_bundle_set *set, size_t i);

/* Reference counting; both are thread-safe. Release frees at zero. */
cc_bundle_set *cc_bundle_set_ref(cc_bundle_set *set);
void cc_bundle_set_release(cc_bundle_set *set);

#endif
