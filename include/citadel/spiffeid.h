/* SPIFFE IDs: a strict, byte-exact parser.
 *
 * A SPIFFE ID is "spiffe://" TRUST-DOMAIN [PATH]. The parser works on raw
 * bytes with no percent-decoding or URI normalisation, and rejects anything the
 * SPIFFE ID standard forbids:
 *   - the scheme must be the exact lowercase bytes "spiffe://";
 *   - the trust domain is non-empty and limited to [a-z0-9._-], which also
 *     rejects a port, userinfo, query, fragment, percent-encoding, uppercase
 *     and non-ASCII bytes;
 *   - the path is empty or a sequence of "/segment", each segment non-empty,
 *     not exactly "." or "..", and limited to [A-Za-z0-9._-]; so no trailing
 *     slash, query, fragment or percent-encoding;
 *   - NUL bytes are rejected anywhere.
 * Uppercase in the scheme or trust domain is rejected rather than folded, so
 * that IDs and trust domains can be compared byte for byte everywhere.
 *
 * Length limits: the standard says implementations must support IDs up to
 * 2048 bytes and trust domains up to 255 bytes, but sets no maximum. This
 * parser rejects anything longer as a deliberate guard against oversized
 * input; the reference libraries (go-spiffe, java-spiffe, py-spiffe) do not. */
#ifndef CITADEL_SPIFFEID_H
#define CITADEL_SPIFFEID_H

#include <stdbool.h>
#include <stddef.h>

#include "citadel/error.h"

/* Maximum length in bytes of a whole SPIFFE ID (scheme, trust domain and path). */
#define CC_SPIFFEID_MAX 2048
/* Maximum length in bytes of a trust domain name. */
#define CC_SPIFFEID_TRUST_DOMAIN_MAX 255

/* A parsed SPIFFE ID. Every field is NUL-terminated. */
typedef struct cc_spiffeid {
    char id[CC_SPIFFEID_MAX + 1];                        /* the whole ID */
    char trust_domain[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1]; /* e.g. "example.org" */
    char path[CC_SPIFFEID_MAX + 1];                      /* "" or "/a/b" */
} cc_spiffeid;

/* Parses len bytes (not NUL-terminated; an embedded NUL is an error) into out.
 * On failure out is zeroed and err names the rule that was broken, such as
 * "path cannot contain empty segments". */
cc_status cc_spiffeid_parse(const char *bytes, size_t len, cc_spiffeid *out, cc_err *err);

/* Parses a trust domain name given either bare ("example.org") or as the
 * SPIFFE ID of the trust domain ("spiffe://example.org"), and writes the bare
 * name into out. A path after the trust domain is rejected. */
cc_status cc_spiffeid_parse_trust_domain(const char *bytes, size_t len,
                                         char out[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1], cc_err *err);

/* True when id has a non-empty path, as an X509-SVID leaf requires. */
static inline bool cc_spiffeid_has_path(const cc_spiffeid *id)
{
    return id->path[0] != '\0';
}

#endif
