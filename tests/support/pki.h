/* Test PKI: mints EC P-256 certificates with the OpenSSL API.
 *
 * Fill a cc_test_cert_spec, starting from cc_test_spec_leaf() or
 * cc_test_spec_ca() or from a zeroed struct, then issue it self-signed or
 * signed by an issuer. A zero field selects the usual default:
 *   key_usage 0 -> leaf: digitalSignature; CA: keyCertSign and cRLSign
 *   eku 0       -> leaf: serverAuth and clientAuth; CA: no EKU extension
 *   offsets 0   -> notBefore = now - 300 s, notAfter = now + 3600 s
 *   has_path_len false -> no pathLenConstraint
 * basicConstraints (critical) and keyUsage (critical) are written unless
 * omitted; subjectKeyIdentifier always, authorityKeyIdentifier when an issuer
 * is given. Signatures use ECDSA with SHA-256.
 *
 * Functions return NULL or -1 on failure after printing the OpenSSL error
 * queue to stderr, so tests can assert on the result. */
#ifndef CITADEL_TEST_PKI_H
#define CITADEL_TEST_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "citadel/bundle.h"

/* Entries per SAN list and extra extensions. */
#define CC_TEST_MAX_NAMES 4

/* key_usage: leave out the keyUsage extension. Other values are OpenSSL KU_*
 * bits (KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN, KU_CRL_SIGN, ...). */
#define CC_TEST_KU_OMIT 0x80000000u

/* eku bits. */
#define CC_TEST_EKU_SERVER 0x1u
#define CC_TEST_EKU_CLIENT 0x2u
#define CC_TEST_EKU_OMIT 0x80000000u /* no extendedKeyUsage extension */

/* An extension in OpenSSL x509v3_config syntax, added as given after the
 * standard ones, so it can duplicate one of them. name is an extension name
 * ("subjectAltName") or a dotted OID ("1.3.6.1.4.1.99999.1"); value is the
 * config value ("URI:spiffe://td/x", "critical,ASN1:NULL"). */
typedef struct cc_test_ext {
    const char *name;
    const char *value;
} cc_test_ext;

typedef struct cc_test_cert_spec {
    const char *common_name; /* subject CN; NULL: empty subject */

    /* URI SANs, NULL-terminated or full. uri_lens[i] is the byte length of
     * uris[i]; 0 means strlen, so a URI with an embedded NUL needs its length. */
    const char *uris[CC_TEST_MAX_NAMES];
    size_t uri_lens[CC_TEST_MAX_NAMES];
    const char *dns_names[CC_TEST_MAX_NAMES]; /* DNS SANs, NULL-terminated or full */
    const char *ips[CC_TEST_MAX_NAMES];       /* IP SANs as text: "127.0.0.1", "::1" */

    bool is_ca;
    bool omit_basic_constraints;
    bool has_path_len; /* write pathLenConstraint = path_len (CAs only) */
    int path_len;

    uint32_t key_usage; /* 0: default for the kind (see top), CC_TEST_KU_OMIT, or KU_* bits */
    uint32_t eku;       /* 0: default for the kind, CC_TEST_EKU_OMIT, or CC_TEST_EKU_* bits */

    int64_t not_before_offset; /* seconds relative to now; 0: -300 */
    int64_t not_after_offset;  /* seconds relative to now; 0: +3600 */

    /* nameConstraints in x509v3_config syntax, e.g.
     * "critical,permitted;URI:a.example" or "critical,excluded;URI:b.example". NULL: none. */
    const char *name_constraints;

    cc_test_ext extra[CC_TEST_MAX_NAMES]; /* NULL name ends the list */

    EVP_PKEY *key; /* subject key to certify (borrowed); NULL: a fresh P-256 key */
} cc_test_cert_spec;

/* A certificate and its private key, both owned by this struct. */
typedef struct cc_test_cert {
    X509 *cert;
    EVP_PKEY *key;
} cc_test_cert;

/* Returns a leaf spec with the one URI SAN uri (borrowed, may be NULL), CN
 * "leaf", and the defaults above. */
cc_test_cert_spec cc_test_spec_leaf(const char *uri);

/* Returns a CA spec with CN common_name (borrowed) and the defaults above. */
cc_test_cert_spec cc_test_spec_ca(const char *common_name);

/* Issues spec signed by issuer, or self-signed when issuer is NULL. The caller
 * frees the result with cc_test_cert_free. */
cc_test_cert *cc_test_cert_issue(const cc_test_cert_spec *spec, const cc_test_cert *issuer);

void cc_test_cert_free(cc_test_cert *cert);

/* Returns malloc'd PEM text of one certificate; the caller frees it. */
char *cc_test_cert_pem(X509 *cert);

/* Returns malloc'd PEM text (PKCS#8, unencrypted) of a private key; the caller frees it. */
char *cc_test_key_pem(EVP_PKEY *key);

/* Writes the certificates (leaf first) as one PEM file. Returns 0 or -1. */
int cc_test_write_chain_pem(const char *path, X509 *const *certs, size_t count);

/* Writes key as PKCS#8 PEM into a new file with mode 0600. Returns 0 or -1. */
int cc_test_write_key_pem(const char *path, EVP_PKEY *key);

/* Returns a new stack containing references to the given certificates in order
 * (leaf first). The list ends with NULL. Free it with cc_x509svid_chain_free
 * or sk_X509_pop_free(chain, X509_free). */
STACK_OF(X509) *cc_test_chain(X509 *leaf, ...);

/* Adds a bundle for trust_domain containing the given roots (may be zero) to set.
 * Returns 0 or -1. */
int cc_test_bundle_add(cc_bundle_set *set, const char *trust_domain, X509 *const *roots,
                       size_t count);

/* Creates a fresh directory under $TMPDIR (or /tmp) named after prefix and
 * returns its malloc'd path; the caller frees it. */
char *cc_test_tempdir(const char *prefix);

/* Removes dir and everything below it. Returns 0 or -1. */
int cc_test_remove_tree(const char *dir);

#endif
