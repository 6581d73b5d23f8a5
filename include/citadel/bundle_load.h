/* Loading trust bundles from files into a cc_bundle_set.
 *
 * Supported forms (docs/bundles.md describes each):
 *   - CC_BUNDLE_FORMAT_PEM: PEM CERTIFICATE blocks, the X.509 authorities of
 *     one trust domain that the configuration names;
 *   - CC_BUNDLE_FORMAT_SPIFFE: one SPIFFE bundle (a JWK Set with "keys" and
 *     the optional "spiffe_sequence" and "spiffe_refresh_hint") for one
 *     trust domain that the configuration names;
 *   - CC_BUNDLE_FORMAT_MAP: a SPIFFE bundle map
 *     {"trust_domains": {"example.org": <SPIFFE bundle>, ...}};
 *   - CC_BUNDLE_FORMAT_JWT_MAP: the JWT bundle file that spiffe-helper writes,
 *     {"example.org": "<standard base64 of that domain's JWK Set>", ...}.
 * The spiffe-helper layout (svid_bundle.pem of the own trust domain plus the
 * JWT bundle file) is the source kind CC_BUNDLE_SOURCE_SPIFFE_HELPER.
 *
 * A bundle never names its trust domain, so every loader binds each bundle to
 * a trust domain taken from the configuration or from a map key, never from
 * the file contents. JSON is parsed with duplicate keys rejected.
 *
 * Every function here is thread-safe and keeps no state between calls. */
#ifndef CITADEL_BUNDLE_LOAD_H
#define CITADEL_BUNDLE_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "citadel/bundle.h"
#include "citadel/error.h"

/* Largest bundle file the loaders read, in bytes. Larger files are rejected. */
#define CC_BUNDLE_FILE_MAX (4 * 1024 * 1024)

typedef enum cc_bundle_format {
    CC_BUNDLE_FORMAT_PEM = 0,
    CC_BUNDLE_FORMAT_SPIFFE,
    CC_BUNDLE_FORMAT_MAP,
    CC_BUNDLE_FORMAT_JWT_MAP
} cc_bundle_format;

/* Returns "pem", "spiffe", "map" or "jwt-map". */
const char *cc_bundle_format_name(cc_bundle_format format);

/* Parses a name printed by cc_bundle_format_name(). */
cc_status cc_bundle_format_parse(const char *name, cc_bundle_format *format, cc_err *err);

/* Builds a bundle for trust_domain from PEM text: one or more CERTIFICATE
 * blocks, nothing but whitespace between and after them. Any other block type,
 * a truncated block, trailing text or a file without certificates is an error.
 * Caller frees *out with cc_bundle_free(). */
cc_status cc_bundle_parse_pem(const char *trust_domain, const char *data, size_t len,
                              cc_bundle **out, cc_err *err);

/* Builds a bundle for trust_domain from a SPIFFE bundle (JWK Set). "keys" is
 * required and may be empty (the bundle then has no authorities). A key with
 * "use" "x509-svid" must carry exactly one certificate in "x5c"; a key with
 * "use" "jwt-svid" must have a "kid" and an RSA or EC (P-256, P-384, P-521)
 * public key. Keys with another or no "use" are skipped, and so are JWT keys
 * of another "kty". Caller frees *out with cc_bundle_free(). */
cc_status cc_bundle_parse_spiffe(const char *trust_domain, const char *data, size_t len,
                                 cc_bundle **out, cc_err *err);

/* Adds the bundles of a SPIFFE bundle map to set. Keys may be "example.org" or
 * "spiffe://example.org"; a trust domain that appears twice (also in both
 * spellings) or that set already contains is an error. On error set may hold
 * some of the map's bundles, so callers discard it. */
cc_status cc_bundle_parse_map(const char *data, size_t len, cc_bundle_set *set, cc_err *err);

/* Adds the bundles of a spiffe-helper JWT bundle file to set. Each value is
 * the standard base64 (padded) text of a JWK Set. Keys without "use" count as
 * JWT authorities there, because go-spiffe's jwtbundle.Marshal, which writes
 * these sets, leaves "use" out. Errors as for cc_bundle_parse_map(). */
cc_status cc_bundle_parse_jwt_map(const char *data, size_t len, cc_bundle_set *set, cc_err *err);

/* Reads a whole file (at most CC_BUNDLE_FILE_MAX bytes) into a malloc'd,
 * NUL-terminated buffer that the caller frees. */
cc_status cc_bundle_read_file(const char *path, char **data, size_t *len, cc_err *err);

/* Detects the form of data. Text that starts with "-----BEGIN" after
 * whitespace is PEM. A JSON object with "trust_domains" is a bundle map, one
 * with "keys" is a SPIFFE bundle, and one whose values are all strings is a
 * spiffe-helper JWT bundle file. Anything else is an error. */
cc_status cc_bundle_detect_format(const char *data, size_t len, cc_bundle_format *format,
                                  cc_err *err);

/* Kinds of configured bundle sources. */
typedef enum cc_bundle_source_kind {
    CC_BUNDLE_SOURCE_PEM = 0,      /* path: PEM CA file of trust_domain */
    CC_BUNDLE_SOURCE_SPIFFE,       /* path: SPIFFE bundle of trust_domain */
    CC_BUNDLE_SOURCE_MAP,          /* path: SPIFFE bundle map; trust_domain unused */
    CC_BUNDLE_SOURCE_JWT_MAP,      /* path: spiffe-helper JWT bundle file */
    CC_BUNDLE_SOURCE_SPIFFE_HELPER /* path: svid_bundle.pem of trust_domain,
                                      jwt_path: spiffe-helper JWT bundle file */
} cc_bundle_source_kind;

/* One configured source. Strings are borrowed by the functions below. */
typedef struct cc_bundle_source {
    cc_bundle_source_kind kind;
    const char *path;
    /* CC_BUNDLE_SOURCE_SPIFFE_HELPER only: the JWT bundle file, or NULL when
     * spiffe-helper writes none. Its entry for trust_domain supplies that
     * domain's JWT authorities; its other entries become JWT-only bundles. */
    const char *jwt_path;
    /* Required for PEM, SPIFFE and SPIFFE_HELPER; bare or "spiffe://" form. */
    const char *trust_domain;
    /* The config key that names path, such as "trust_domains[0].bundle_pem",
     * for error messages; empty when the path did not come from a config. */
    char config_key[64];
} cc_bundle_source;

/* Loads one source into set. A trust domain already in set is an error. */
cc_status cc_bundle_source_load(const cc_bundle_source *source, cc_bundle_set *set, cc_err *err);

/* Builds one set from count sources (count may be 0). A trust domain that two
 * sources supply is an error. Caller releases *out. */
cc_status cc_bundle_sources_load(const cc_bundle_source *sources, size_t count, cc_bundle_set **out,
                                 cc_err *err);

/* Loads one file of any form, detected by cc_bundle_detect_format(). PEM and
 * single SPIFFE bundles need trust_domain. For the map forms trust_domain is
 * NULL, or it names a domain the file contains and then only that domain is
 * kept. *format (may be NULL) receives the detected form, also when the call
 * fails because trust_domain is missing. Caller releases *out. */
cc_status cc_bundle_load_file(const char *path, const char *trust_domain, cc_bundle_set **out,
                              cc_bundle_format *format, cc_err *err);

/* Loads one file as cc_bundle_load_file() does, except that a PEM file or
 * single SPIFFE bundle given without trust_domain is bound to
 * fallback_trust_domain (when not NULL), and *used_fallback is set. The CLI
 * passes the trust domain named by the SVID under test: the check then shows
 * only that the SVID chains to these authorities, not that they may vouch
 * for that trust domain. used_fallback may be NULL. */
cc_status cc_bundle_load_file_with_fallback(const char *path, const char *trust_domain,
                                            const char *fallback_trust_domain, cc_bundle_set **out,
                                            bool *used_fallback, cc_err *err);

#endif
