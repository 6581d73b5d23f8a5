/* JWT-SVID verification.
 *
 * A JWT-SVID is a JWS in compact serialization whose "sub" is a SPIFFE ID.
 * The verifier decodes and checks the header itself, picks the key by "kid"
 * from the JWT authorities of the bundle of sub's trust domain only, and
 * verifies the signature with OpenSSL directly. It does not use libjwt,
 * because libjwt 1.10 verifies with the algorithm that the token's header
 * names (so an RSA public key could serve as an HMAC secret), rejects
 * typ "JOSE" and has no PS256/384/512.
 *
 * Rules, checked in this order:
 *   - three base64url segments without padding, at most CC_JWTSVID_MAX_LEN bytes;
 *   - the header is a JSON object without duplicate keys and with no members
 *     but "alg", "kid" and "typ";
 *   - alg is one of RS256/384/512, ES256/384/512, PS256/384/512, so "none",
 *     HS* and every other value are rejected before any key is used;
 *   - typ is absent or exactly "JWT" or "JOSE";
 *   - kid is required and at most CC_JWTSVID_KID_MAX bytes (the standard
 *     makes kid optional, but go-spiffe requires it too);
 *   - claims are a JSON object without duplicate keys; "sub" is a valid SPIFFE ID;
 *   - the bundle of sub's trust domain has a JWT authority with that kid, and
 *     its key type matches alg: RSA for RS and PS, EC on P-256/P-384/P-521 for
 *     ES256/ES384/ES512;
 *   - the signature verifies (PS: MGF1 with the same hash, salt length equal
 *     to the hash length; ES: raw R||S as JWS defines it);
 *   - "exp" is required, a number, and now <= exp + leeway; "nbf", when
 *     present, is a number and nbf <= now + leeway; "iat" is not checked;
 *   - "aud" is required, a non-empty string or a non-empty array of strings,
 *     and one of its values equals one of the configured audiences.
 *
 * Status codes:
 *   CC_ERR_INVALID   malformed token, forbidden header, missing claim,
 *                    audience mismatch, or an empty configured audience set;
 *   CC_ERR_NOT_FOUND no bundle for sub's trust domain, or no key with kid;
 *   CC_ERR_CRYPTO    key type does not fit alg, or the signature is invalid;
 *   CC_ERR_EXPIRED   exp or nbf out of range at now.
 * Error messages never contain the token. */
#ifndef CITADEL_JWTSVID_H
#define CITADEL_JWTSVID_H

#include <stddef.h>
#include <stdint.h>

#include "citadel/bundle.h"
#include "citadel/error.h"
#include "citadel/spiffeid.h"

/* Default clock skew allowance for exp and nbf, in seconds. go-spiffe uses 60;
 * 30 keeps the window shorter while still covering ordinary NTP drift. */
#define CC_JWTSVID_LEEWAY_DEFAULT 30

/* Largest token accepted, in bytes. JWT-SVIDs are normally well under 2 KiB;
 * the cap bounds the work done on hostile input. */
#define CC_JWTSVID_MAX_LEN 16384

/* Longest "kid" accepted, in bytes. */
#define CC_JWTSVID_KID_MAX 255

/* Facts about a verified token. Filled only when verification succeeds. */
typedef struct cc_jwtsvid_info {
    char spiffe_id[CC_SPIFFEID_MAX + 1];
    char trust_domain[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
    char kid[CC_JWTSVID_KID_MAX + 1];
    char alg[8];             /* e.g. "ES256" */
    int64_t exp;             /* Unix seconds */
    size_t matched_audience; /* index into the configured audiences */
} cc_jwtsvid_info;

/* Verifies token (NUL-terminated) against bundles at time now (Unix seconds),
 * allowing leeway_seconds (>= 0) of clock skew for exp and nbf. audiences is
 * an array of audience_count configured audiences. An empty set is rejected
 * with CC_ERR_INVALID, because it would accept a token meant for anyone. out may
 * be NULL. */
cc_status cc_jwtsvid_verify(const char *token, const cc_bundle_set *bundles,
                            const char *const *audiences, size_t audience_count, int64_t now,
                            int64_t leeway_seconds, cc_jwtsvid_info *out, cc_err *err);

/* Reads the "sub" claim of token without verifying anything. The CLI uses it
 * to bind a single-domain bundle file to the token's trust domain; nothing
 * may trust the result. */
cc_status cc_jwtsvid_peek_subject(const char *token, cc_spiffeid *out, cc_err *err);

/* Returns 1 when name is one of the nine algorithms JWT-SVIDs may use. */
int cc_jwtsvid_alg_allowed(const char *name);

#endif
