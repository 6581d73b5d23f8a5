#include <criterion/criterion.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "citadel/bundle.h"

static X509 *make_self_signed(const char *cn)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
    X509 *cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    cr_assert(X509_sign(cert, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return cert;
}

Test(bundle_set, finds_only_own_domain)
{
    cc_bundle_set *set = cc_bundle_set_new();
    cc_bundle *a = cc_bundle_new("a.example");
    cc_bundle *b = cc_bundle_new("b.example");
    X509 *ca = make_self_signed("a root");

    cr_assert_eq(cc_bundle_add_x509_authority(a, ca, NULL), CC_OK);
    cr_assert_eq(cc_bundle_set_add(set, a, NULL), CC_OK);
    cr_assert_eq(cc_bundle_set_add(set, b, NULL), CC_OK);

    const cc_bundle *found = cc_bundle_set_find(set, "a.example");
    cr_assert_not_null(found);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(found)), 1);
    found = cc_bundle_set_find(set, "b.example");
    cr_assert_not_null(found);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(found)), 0);
    cr_assert_null(cc_bundle_set_find(set, "A.example"));
    cr_assert_null(cc_bundle_set_find(set, "c.example"));

    X509_free(ca);
    cc_bundle_set_release(set);
}

Test(bundle_set, rejects_duplicate_domain)
{
    cc_bundle_set *set = cc_bundle_set_new();
    cc_err err;

    cr_assert_eq(cc_bundle_set_add(set, cc_bundle_new("a.example"), NULL), CC_OK);
    cr_assert_eq(cc_bundle_set_add(set, cc_bundle_new("a.example"), &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "\"a.example\" is configured twice") != NULL, "%s", err.message);
    cr_assert_eq(cc_bundle_set_count(set), 1);
    cc_bundle_set_release(set);
}

Test(bundle, same_ca_kept_once)
{
    cc_bundle *bundle = cc_bundle_new("a.example");
    X509 *ca = make_self_signed("root");

    cr_assert_eq(cc_bundle_add_x509_authority(bundle, ca, NULL), CC_OK);
    cr_assert_eq(cc_bundle_add_x509_authority(bundle, ca, NULL), CC_OK);
    cr_assert_eq(sk_X509_num(cc_bundle_x509_authorities(bundle)), 1);

    X509_free(ca);
    cc_bundle_free(bundle);
}

Test(bundle, jwt_key_replaced_by_kid)
{
    cc_bundle *bundle = cc_bundle_new("a.example");
    EVP_PKEY *first = EVP_EC_gen("P-256");
    EVP_PKEY *second = EVP_EC_gen("P-256");

    cr_assert_eq(cc_bundle_add_jwt_authority(bundle, "k1", first, NULL), CC_OK);
    cr_assert_eq(cc_bundle_add_jwt_authority(bundle, "k1", second, NULL), CC_OK);
    cr_assert_eq(cc_bundle_jwt_authority_count(bundle), 1);
    cr_assert_eq(cc_bundle_find_jwt_authority(bundle, "k1"), second);
    cr_assert_null(cc_bundle_find_jwt_authority(bundle, "k2"));

    EVP_PKEY_free(first);
    EVP_PKEY_free(second);
    cc_bundle_free(bundle);
}
