/* X509-SVID verification: the leaf profile checks of the X509-SVID standard
 * and RFC 5280 path validation against the bundle of the leaf's own trust
 * domain only.
 *
 * cc_x509svid_verify() decides whether a chain is a valid SVID and returns its
 * SPIFFE ID. It never decides whether that ID is allowed to do anything:
 * authorization is the caller's next step and must run only after CC_OK.
 *
 * The PEM helpers turn the chain forms the service receives (a PEM file, a PEM
 * string, or an array of PEM strings with one certificate each) into a
 * STACK_OF(X509) with the leaf first. */
#ifndef CITADEL_X509SVID_H
#define CITADEL_X509SVID_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "citadel/bundle.h"
#include "citadel/error.h"
#include "citadel/spiffeid.h"

/* Hex digits of the longest serial number reported: 64 octets, which is more
 * than the 20 that RFC 5280 allows a conforming CA to use. */
#define CC_X509SVID_SERIAL_HEX_MAX 128

/* What a successful verification learned about the SVID. */
typedef struct cc_x509svid_info {
    cc_spiffeid id;                                  /* from the leaf URI SAN */
    char serial_hex[CC_X509SVID_SERIAL_HEX_MAX + 2]; /* lowercase hex, "-" prefix if negative */
    char fingerprint_sha256[65];                     /* lowercase hex of SHA-256(leaf DER) */
    int64_t not_before;                              /* leaf notBefore, Unix seconds */
    int64_t not_after;                               /* leaf notAfter, Unix seconds */
    int64_t chain_not_after; /* earliest notAfter over the verified chain, anchor included */
    int chain_length;        /* certificates in the verified chain, anchor included */
} cc_x509svid_info;

/* Verifies chain (leaf first, then untrusted intermediates in any order;
 * borrowed) as an X509-SVID at time `at` (Unix seconds) and fills out.
 *
 * Leaf checks: exactly one subjectAltName extension containing exactly one URI
 * (other name types are ignored); the URI is non-empty ASCII without NUL and a
 * valid SPIFFE ID with a non-empty path; no duplicate or unparsable extension;
 * not a CA; keyUsage present with digitalSignature and without keyCertSign and
 * cRLSign; extendedKeyUsage, when present, contains both serverAuth and
 * clientAuth.
 *
 * Path validation: the trust anchors are the X.509 authorities of the bundle
 * for the leaf's trust domain and nothing else (no system CAs, no other
 * domain's bundle). Every bundle certificate is an anchor, also when it is not
 * self-signed (X509_V_FLAG_PARTIAL_CHAIN). OpenSSL enforces validity times at
 * `at`, the CA flag and keyCertSign of issuers, path length, name constraints
 * and unknown critical extensions. Intermediates must also carry a keyUsage
 * extension, and presented ones no duplicate or malformed extension. No
 * purpose is set, so EKUs of CA certificates are not checked.
 *
 * Returns CC_OK, or CC_ERR_INVALID (malformed SVID), CC_ERR_NOT_FOUND (no
 * usable bundle for the trust domain), CC_ERR_EXPIRED (a certificate is
 * expired or not yet valid at `at`), CC_ERR_CRYPTO (any other path validation
 * failure), CC_ERR_NOMEM or CC_ERR_INTERNAL. out is zeroed on failure. */
cc_status cc_x509svid_verify(STACK_OF(X509) *chain, const cc_bundle_set *bundles, int64_t at,
                             cc_x509svid_info *out, cc_err *err);

/* Extracts and parses the SPIFFE ID of cert by the leaf SAN rules above (one
 * SAN extension, one URI, ASCII without NUL, strict parser). It does not
 * require a path and does not check anything else. */
cc_status cc_x509svid_id_from_cert(X509 *cert, cc_spiffeid *out, cc_err *err);

/* Parses len bytes of PEM text containing one or more CERTIFICATE blocks into a
 * new stack, in file order (leaf first). Rejects text without certificates,
 * blocks of any other type, and anything but whitespace outside the blocks.
 * On success *out is owned by the caller: free it with cc_x509svid_chain_free. */
cc_status cc_x509svid_parse_pem(const char *pem, size_t len, STACK_OF(X509) **out, cc_err *err);

/* Reads path and parses it as cc_x509svid_parse_pem() does. */
cc_status cc_x509svid_load_pem_file(const char *path, STACK_OF(X509) **out, cc_err *err);

/* Parses count NUL-terminated PEM strings, each containing exactly one
 * CERTIFICATE block, into a new stack in array order (leaf first), as the
 * NATS authorization request delivers client certificates. The caller frees
 * *out with cc_x509svid_chain_free. */
cc_status cc_x509svid_parse_pem_array(const char *const *pems, size_t count, STACK_OF(X509) **out,
                                      cc_err *err);

/* Frees a stack from the parsers above and the certificates in it. NULL is allowed. */
void cc_x509svid_chain_free(STACK_OF(X509) *chain);

#endif
