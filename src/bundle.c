/* In-memory trust bundles and the set that maps trust domains to them.
 *
 * Trust domains are few (one per federation partner), so the set is a plain
 * array searched linearly. Loading bundles from files lives elsewhere; this
 * file only stores what loaders build. */
#include "citadel/bundle.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct jwt_authority {
    char *kid;
    EVP_PKEY *key;
} jwt_authority;

struct cc_bundle {
    char *trust_domain;
    STACK_OF(X509) *x509_authorities;
    jwt_authority *jwt_authorities;
    size_t jwt_count;
    int64_t sequence;
    int64_t refresh_hint;
};

struct cc_bundle_set {
    atomic_int refs;
    cc_bundle **bundles;
    size_t count;
};

cc_bundle *cc_bundle_new(const char *trust_domain)
{
    cc_bundle *bundle = calloc(1, sizeof(*bundle));
    if (bundle == NULL)
        return NULL;

    bundle->trust_domain = strdup(trust_domain);
    bundle->x509_authorities = sk_X509_new_null();
    bundle->sequence = -1;
    bundle->refresh_hint = -1;
    if (bundle->trust_domain == NULL || bundle->x509_authorities == NULL) {
        cc_bundle_free(bundle);
        return NULL;
    }
    return bundle;
}

void cc_bundle_free(cc_bundle *bundle)
{
    if (bundle == NULL)
        return;

    sk_X509_pop_free(bundle->x509_authorities, X509_free);
    for (size_t i = 0; i < bundle->jwt_count; i++) {
        free(bundle->jwt_authorities[i].kid);
        EVP_PKEY_free(bundle->jwt_authorities[i].key);
    }
    free(bundle->jwt_authorities);
    free(bundle->trust_domain);
    free(bundle);
}

const char *cc_bundle_trust_domain(const cc_bundle *bundle) { return bundle->trust_domain; }

cc_status cc_bundle_add_x509_authority(cc_bundle *bundle, X509 *cert, cc_err *err)
{
    for (int i = 0; i < sk_X509_num(bundle->x509_authorities); i++) {
        if (X509_cmp(sk_X509_value(bundle->x509_authorities, i), cert) == 0)
            return CC_OK;
    }

    if (!X509_up_ref(cert))
        return cc_err_set(err, CC_ERR_INTERNAL, "could not take a reference to a CA certificate");
    if (sk_X509_push(bundle->x509_authorities, cert) == 0) {
        X509_free(cert);
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory adding a CA certificate to the bundle "
                                             "of trust domain \"%s\"",
                          bundle->trust_domain);
    }
    return CC_OK;
}

STACK_OF(X509) *cc_bundle_x509_authorities(const cc_bundle *bundle)
{
    return bundle->x509_authorities;
}

cc_status cc_bundle_add_jwt_authority(cc_bundle *bundle, const char *kid, EVP_PKEY *key,
                                      cc_err *err)
{
    for (size_t i = 0; i < bundle->jwt_count; i++) {
        if (strcmp(bundle->jwt_authorities[i].kid, kid) == 0) {
            if (!EVP_PKEY_up_ref(key))
                return cc_err_set(err, CC_ERR_INTERNAL, "could not take a reference to JWT key \"%s\"", kid);
            EVP_PKEY_free(bundle->jwt_authorities[i].key);
            bundle->jwt_authorities[i].key = key;
            return CC_OK;
        }
    }

    jwt_authority *grown = realloc(bundle->jwt_authorities,
                                   (bundle->jwt_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory adding JWT key \"%s\"", kid);
    bundle->jwt_authorities = grown;

    char *kid_copy = strdup(kid);
    if (kid_copy == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory adding JWT key \"%s\"", kid);
    if (!EVP_PKEY_up_ref(key)) {
        free(kid_copy);
        return cc_err_set(err, CC_ERR_INTERNAL, "could not take a reference to JWT key \"%s\"", kid);
    }
    grown[bundle->jwt_count].kid = kid_copy;
    grown[bundle->jwt_count].key = key;
    bundle->jwt_count++;
    return CC_OK;
}

EVP_PKEY *cc_bundle_find_jwt_authority(const cc_bundle *bundle, const char *kid)
{
    for (size_t i = 0; i < bundle->jwt_count; i++) {
        if (strcmp(bundle->jwt_authorities[i].kid, kid) == 0)
            return bundle->jwt_authorities[i].key;
    }
    return NULL;
}

size_t cc_bundle_jwt_authority_count(const cc_bundle *bundle) { return bundle->jwt_count; }

EVP_PKEY *cc_bundle_jwt_authority_at(const cc_bundle *bundle, size_t i, const char **kid)
{
    if (i >= bundle->jwt_count)
        return NULL;
    if (kid != NULL)
        *kid = bundle->jwt_authorities[i].kid;
    return bundle->jwt_authorities[i].key;
}

void cc_bundle_set_sequence(cc_bundle *bundle, int64_t sequence) { bundle->sequence = sequence; }
int64_t cc_bundle_sequence(const cc_bundle *bundle) { return bundle->sequence; }
void cc_bundle_set_refresh_hint(cc_bundle *bundle, int64_t seconds) { bundle->refresh_hint = seconds; }
int64_t cc_bundle_refresh_hint(const cc_bundle *bundle) { return bundle->refresh_hint; }

cc_bundle_set *cc_bundle_set_new(void)
{
    cc_bundle_set *set = calloc(1, sizeof(*set));
    if (set == NULL)
        return NULL;
    atomic_init(&set->refs, 1);
    return set;
}

cc_status cc_bundle_set_add(cc_bundle_set *set, cc_bundle *bundle, cc_err *err)
{
    cc_status status = CC_OK;

    if (cc_bundle_set_find(set, bundle->trust_domain) != NULL) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "trust domain \"%s\" is configured twice; give each trust domain "
                            "exactly one bundle source",
                            bundle->trust_domain);
        goto fail;
    }

    cc_bundle **grown = realloc(set->bundles, (set->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory adding trust domain \"%s\"",
                            bundle->trust_domain);
        goto fail;
    }
    set->bundles = grown;
    set->bundles[set->count++] = bundle;
    return CC_OK;

fail:
    cc_bundle_free(bundle);
    return status;
}

const cc_bundle *cc_bundle_set_find(const cc_bundle_set *set, const char *trust_domain)
{
    if (set == NULL || trust_domain == NULL)
        return NULL;
    for (size_t i = 0; i < set->count; i++) {
        if (strcmp(set->bundles[i]->trust_domain, trust_domain) == 0)
            return set->bundles[i];
    }
    return NULL;
}

size_t cc_bundle_set_count(const cc_bundle_set *set) { return set->count; }

const cc_bundle *cc_bundle_set_at(const cc_bundle_set *set, size_t i)
{
    return i < set->count ? set->bundles[i] : NULL;
}

cc_bundle_set *cc_bundle_set_ref(cc_bundle_set *set)
{
    if (set != NULL)
        atomic_fetch_add(&set->refs, 1);
    return set;
}

void cc_bundle_set_release(cc_bundle_set *set)
{
    if (set == NULL || atomic_fetch_sub(&set->refs, 1) != 1)
        return;
    for (size_t i = 0; i < set->count; i++)
        cc_bundle_free(set->bundles[i]);
    free(set->bundles);
    free(set);
}
