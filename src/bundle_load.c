/* Trust bundle loaders: PEM CA files, SPIFFE bundles, SPIFFE bundle maps and
 * the spiffe-helper JWT bundle file, and the configured list of sources that
 * becomes one cc_bundle_set.
 *
 * The JSON forms are parsed by jansson with JSON_REJECT_DUPLICATES. A member
 * that appears twice (a trust domain in a map, "keys" in a bundle, "kid" in a
 * JWK) therefore makes the whole file invalid instead of letting the last win.
 * Every bundle is bound to a trust domain named by the configuration or by a
 * map key; the parsers never take a trust domain from certificate contents. */
#include "citadel/bundle_load.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "citadel/jose.h"
#include "citadel/spiffeid.h"
#include "citadel/x509svid.h"

static const char *const format_names[] = {"pem", "spiffe", "map", "jwt-map"};

const char *cc_bundle_format_name(cc_bundle_format format)
{
    if ((size_t)format < sizeof(format_names) / sizeof(format_names[0]))
        return format_names[format];
    return "unknown";
}

cc_status cc_bundle_format_parse(const char *name, cc_bundle_format *format, cc_err *err)
{
    for (size_t i = 0; name != NULL && i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *format = (cc_bundle_format)i;
            return CC_OK;
        }
    }
    return cc_err_set(err, CC_ERR_INVALID,
                      "bundle format \"%s\" is unknown; use pem, spiffe, map or jwt-map",
                      name != NULL ? name : "");
}

cc_status cc_bundle_read_file(const char *path, char **data, size_t *len, cc_err *err)
{
    cc_status status = CC_OK;
    char *buf = NULL;
    size_t used = 0;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cc_err_set(err, errno == ENOENT ? CC_ERR_NOT_FOUND : CC_ERR_IO,
                          "could not open bundle file %s: %s", path, strerror(errno));

    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        status = cc_err_set(err, CC_ERR_IO, "bundle file %s is not a regular file", path);
        goto done;
    }

    /* Read until EOF rather than trusting st_size: the file may be growing. */
    buf = malloc(CC_BUNDLE_FILE_MAX + 1);
    if (buf == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory reading bundle file %s", path);
        goto done;
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, CC_BUNDLE_FILE_MAX + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            status = cc_err_set(err, CC_ERR_IO, "could not read bundle file %s: %s", path,
                                strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > CC_BUNDLE_FILE_MAX) {
            status = cc_err_set(err, CC_ERR_INVALID, "bundle file %s is larger than %d bytes", path,
                                CC_BUNDLE_FILE_MAX);
            goto done;
        }
    }

    buf[used] = '\0';
    *data = buf;
    *len = used;
    buf = NULL;

done:
    free(buf);
    close(fd);
    return status;
}

/* Writes the bare trust domain name of text (bare or "spiffe://" form) into out. */
static cc_status normalize_trust_domain(const char *text,
                                        char out[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1], cc_err *err)
{
    if (text == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "a trust domain name is required for this bundle");

    cc_status status = cc_spiffeid_parse_trust_domain(text, strlen(text), out, err);
    if (status != CC_OK)
        cc_err_prefix(err, "trust domain \"%s\" is invalid", text);
    return status;
}

/* ---- PEM ---------------------------------------------------------------- */

static cc_status add_pem_authorities(cc_bundle *bundle, const char *data, size_t len, cc_err *err)
{
    STACK_OF(X509) *certs = NULL;
    cc_status status = cc_x509svid_parse_pem(data, len, &certs, err);
    if (status != CC_OK)
        return status;

    for (int i = 0; i < sk_X509_num(certs) && status == CC_OK; i++)
        status = cc_bundle_add_x509_authority(bundle, sk_X509_value(certs, i), err);

    cc_x509svid_chain_free(certs);
    return status;
}

cc_status cc_bundle_parse_pem(const char *trust_domain, const char *data, size_t len,
                              cc_bundle **out, cc_err *err)
{
    char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
    cc_status status = normalize_trust_domain(trust_domain, td, err);
    if (status != CC_OK)
        return status;

    cc_bundle *bundle = cc_bundle_new(td);
    if (bundle == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory creating the bundle of \"%s\"", td);

    status = add_pem_authorities(bundle, data, len, err);
    if (status != CC_OK) {
        cc_bundle_free(bundle);
        return status;
    }
    *out = bundle;
    return CC_OK;
}

/* ---- JWK Sets ----------------------------------------------------------- */

/* How a JWK Set is read. */
typedef enum jwks_mode {
    /* A SPIFFE bundle: "use" decides, keys without it are skipped, and
     * spiffe_sequence and spiffe_refresh_hint are read. */
    JWKS_SPIFFE_BUNDLE,
    /* The same inside a bundle map, where refresh hints are ignored. */
    JWKS_MAP_ENTRY,
    /* A plain JWT bundle: keys without "use" are JWT authorities. */
    JWKS_JWT_BUNDLE
} jwks_mode;

static cc_status parse_json(const char *data, size_t len, json_t **out, cc_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "invalid JSON at line %d column %d: %s", jerr.line,
                          jerr.column, jerr.text);
    *out = root;
    return CC_OK;
}

/* Reads an optional non-negative integer member; *value is left alone when absent. */
static cc_status read_counter(const json_t *root, const char *name, int64_t *value, cc_err *err)
{
    const json_t *member = json_object_get(root, name);
    if (member == NULL)
        return CC_OK;
    if (!json_is_integer(member) || json_integer_value(member) < 0)
        return cc_err_set(err, CC_ERR_INVALID, "\"%s\" must be a non-negative integer", name);
    *value = (int64_t)json_integer_value(member);
    return CC_OK;
}

static cc_status add_x509_key(cc_bundle *bundle, const json_t *key, cc_err *err)
{
    X509 *cert = NULL;
    cc_status status = cc_jose_jwk_x5c_certificate(key, &cert, err);
    if (status != CC_OK)
        return status;
    status = cc_bundle_add_x509_authority(bundle, cert, err);
    X509_free(cert);
    return status;
}

static cc_status add_jwt_key(cc_bundle *bundle, const json_t *key, cc_err *err)
{
    const json_t *kid = json_object_get(key, "kid");
    if (!json_is_string(kid) || json_string_length(kid) == 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "jwt-svid JWK has no \"kid\"; every JWT "
                          "authority needs a key ID");

    /* JWK Sets may carry key types that this verifier does not use. */
    if (!cc_jose_kty_supported(json_string_value(json_object_get(key, "kty"))))
        return CC_OK;

    if (cc_bundle_find_jwt_authority(bundle, json_string_value(kid)) != NULL)
        return cc_err_set(err, CC_ERR_INVALID, "JWT key ID \"%s\" appears twice",
                          json_string_value(kid));

    EVP_PKEY *pkey = NULL;
    cc_status status = cc_jose_jwk_public_key(key, &pkey, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "JWT key \"%s\"", json_string_value(kid));
        return status;
    }
    status = cc_bundle_add_jwt_authority(bundle, json_string_value(kid), pkey, err);
    EVP_PKEY_free(pkey);
    return status;
}

/* Adds one JWK to bundle, or skips it when its "use" is not for this verifier. */
static cc_status add_jwk(cc_bundle *bundle, const json_t *key, jwks_mode mode, cc_err *err)
{
    if (!json_is_object(key))
        return cc_err_set(err, CC_ERR_INVALID, "the entry is not a JSON object");

    const json_t *use = json_object_get(key, "use");
    if (use != NULL && !json_is_string(use))
        return cc_err_set(err, CC_ERR_INVALID, "\"use\" is not a string");

    const char *use_text = json_string_value(use);
    if (use_text == NULL)
        return mode == JWKS_JWT_BUNDLE ? add_jwt_key(bundle, key, err) : CC_OK;
    if (strcmp(use_text, "jwt-svid") == 0)
        return add_jwt_key(bundle, key, err);
    if (strcmp(use_text, "x509-svid") == 0 && mode != JWKS_JWT_BUNDLE)
        return add_x509_key(bundle, key, err);
    return CC_OK; /* another use, such as "wit-svid" */
}

/* Adds the keys of the JWK Set root to bundle. */
static cc_status add_jwks(cc_bundle *bundle, const json_t *root, jwks_mode mode, cc_err *err)
{
    cc_status status = CC_OK;

    if (!json_is_object(root))
        return cc_err_set(err, CC_ERR_INVALID, "the bundle is not a JSON object");

    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys))
        return cc_err_set(err, CC_ERR_INVALID, "the bundle has no \"keys\" array");

    if (mode != JWKS_JWT_BUNDLE) {
        int64_t sequence = cc_bundle_sequence(bundle);
        status = read_counter(root, "spiffe_sequence", &sequence, err);
        if (status != CC_OK)
            return status;
        cc_bundle_set_sequence(bundle, sequence);
    }
    if (mode == JWKS_SPIFFE_BUNDLE) {
        int64_t hint = cc_bundle_refresh_hint(bundle);
        status = read_counter(root, "spiffe_refresh_hint", &hint, err);
        if (status != CC_OK)
            return status;
        cc_bundle_set_refresh_hint(bundle, hint);
    }

    for (size_t i = 0; i < json_array_size(keys); i++) {
        status = add_jwk(bundle, json_array_get(keys, i), mode, err);
        if (status != CC_OK) {
            cc_err_prefix(err, "key %zu", i);
            return status;
        }
    }
    return CC_OK;
}

/* Builds a bundle for td (already normalized) from the JWK Set root. */
static cc_status bundle_from_jwks(const char *td, const json_t *root, jwks_mode mode,
                                  cc_bundle **out, cc_err *err)
{
    cc_bundle *bundle = cc_bundle_new(td);
    if (bundle == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory creating the bundle of \"%s\"", td);

    cc_status status = add_jwks(bundle, root, mode, err);
    if (status != CC_OK) {
        cc_bundle_free(bundle);
        return status;
    }
    *out = bundle;
    return CC_OK;
}

cc_status cc_bundle_parse_spiffe(const char *trust_domain, const char *data, size_t len,
                                 cc_bundle **out, cc_err *err)
{
    char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
    json_t *root = NULL;

    cc_status status = normalize_trust_domain(trust_domain, td, err);
    if (status == CC_OK)
        status = parse_json(data, len, &root, err);
    if (status == CC_OK)
        status = bundle_from_jwks(td, root, JWKS_SPIFFE_BUNDLE, out, err);
    if (status != CC_OK && trust_domain != NULL)
        cc_err_prefix(err, "SPIFFE bundle of \"%s\"", trust_domain);

    json_decref(root);
    return status;
}

/* ---- Maps --------------------------------------------------------------- */

/* Where the bundles of a map go. */
typedef struct map_target {
    cc_bundle_set *set;
    const char *only; /* keep only this trust domain (normalized), or NULL */
    cc_bundle *own;   /* merge this domain's JWT keys into own instead, or NULL */
    bool found_only;  /* whether only was seen */
} map_target;

/* Hands bundle to target. Takes ownership of bundle. */
static cc_status deliver_bundle(map_target *target, cc_bundle *bundle, cc_err *err)
{
    const char *td = cc_bundle_trust_domain(bundle);
    cc_status status = CC_OK;

    if (target->only != NULL && strcmp(td, target->only) != 0) {
        cc_bundle_free(bundle);
        return CC_OK;
    }
    target->found_only = true;

    if (target->own == NULL || strcmp(td, cc_bundle_trust_domain(target->own)) != 0)
        return cc_bundle_set_add(target->set, bundle, err);

    for (size_t i = 0; i < cc_bundle_jwt_authority_count(bundle) && status == CC_OK; i++) {
        const char *kid = NULL;
        EVP_PKEY *key = cc_bundle_jwt_authority_at(bundle, i, &kid);
        status = cc_bundle_add_jwt_authority(target->own, kid, key, err);
    }
    cc_bundle_free(bundle);
    return status;
}

/* Parses a map key into a normalized trust domain name. */
static cc_status map_key_trust_domain(const char *key, char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1],
                                      cc_err *err)
{
    cc_status status = cc_spiffeid_parse_trust_domain(key, strlen(key), td, err);
    if (status != CC_OK)
        cc_err_prefix(err, "map key \"%s\" is not a trust domain", key);
    return status;
}

static cc_status add_map(const json_t *root, map_target *target, cc_err *err)
{
    const json_t *domains = json_object_get(root, "trust_domains");
    if (!json_is_object(domains))
        return cc_err_set(err, CC_ERR_INVALID, "bundle map has no \"trust_domains\" object");

    const char *key;
    json_t *value;
    json_object_foreach((json_t *)domains, key, value) {
        char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
        cc_bundle *bundle = NULL;

        cc_status status = map_key_trust_domain(key, td, err);
        if (status == CC_OK)
            status = bundle_from_jwks(td, value, JWKS_MAP_ENTRY, &bundle, err);
        if (status == CC_OK)
            status = deliver_bundle(target, bundle, err);
        if (status != CC_OK) {
            cc_err_prefix(err, "bundle map entry \"%s\"", key);
            return status;
        }
    }
    return CC_OK;
}

/* Decodes one value of a spiffe-helper JWT bundle file into a bundle for td. */
static cc_status jwt_map_entry(const char *td, const json_t *value, cc_bundle **out, cc_err *err)
{
    if (!json_is_string(value))
        return cc_err_set(err, CC_ERR_INVALID, "the value is not a base64 string");

    uint8_t *jwks_text = NULL;
    size_t jwks_len = 0;
    json_t *jwks = NULL;
    cc_status status = cc_jose_b64_decode(json_string_value(value), json_string_length(value),
                                          "the value", &jwks_text, &jwks_len, err);
    if (status == CC_OK)
        status = parse_json((const char *)jwks_text, jwks_len, &jwks, err);
    if (status == CC_OK)
        status = bundle_from_jwks(td, jwks, JWKS_JWT_BUNDLE, out, err);

    json_decref(jwks);
    free(jwks_text);
    return status;
}

static cc_status add_jwt_map(const json_t *root, map_target *target, cc_err *err)
{
    if (!json_is_object(root))
        return cc_err_set(err, CC_ERR_INVALID, "JWT bundle file is not a JSON object");

    const char *key;
    json_t *value;
    json_object_foreach((json_t *)root, key, value) {
        char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
        cc_bundle *bundle = NULL;

        cc_status status = map_key_trust_domain(key, td, err);
        if (status == CC_OK)
            status = jwt_map_entry(td, value, &bundle, err);
        if (status == CC_OK)
            status = deliver_bundle(target, bundle, err);
        if (status != CC_OK) {
            cc_err_prefix(err, "JWT bundle file entry \"%s\"", key);
            return status;
        }
    }
    return CC_OK;
}

cc_status cc_bundle_parse_map(const char *data, size_t len, cc_bundle_set *set, cc_err *err)
{
    json_t *root = NULL;
    map_target target = {.set = set};

    cc_status status = parse_json(data, len, &root, err);
    if (status == CC_OK)
        status = add_map(root, &target, err);
    json_decref(root);
    return status;
}

cc_status cc_bundle_parse_jwt_map(const char *data, size_t len, cc_bundle_set *set, cc_err *err)
{
    json_t *root = NULL;
    map_target target = {.set = set};

    cc_status status = parse_json(data, len, &root, err);
    if (status == CC_OK)
        status = add_jwt_map(root, &target, err);
    json_decref(root);
    return status;
}

/* ---- Detection ---------------------------------------------------------- */

static bool starts_with_pem(const char *data, size_t len)
{
    static const char marker[] = "-----BEGIN";
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", data[i]) != NULL && data[i] != '\0')
        i++;
    return len - i >= sizeof(marker) - 1 && memcmp(data + i, marker, sizeof(marker) - 1) == 0;
}

static cc_status detect_json_format(const json_t *root, cc_bundle_format *format, cc_err *err)
{
    if (!json_is_object(root))
        return cc_err_set(err, CC_ERR_INVALID, "bundle JSON is not an object");

    if (json_object_get(root, "trust_domains") != NULL) {
        *format = CC_BUNDLE_FORMAT_MAP;
        return CC_OK;
    }
    if (json_object_get(root, "keys") != NULL) {
        *format = CC_BUNDLE_FORMAT_SPIFFE;
        return CC_OK;
    }

    const char *key;
    json_t *value;
    json_object_foreach((json_t *)root, key, value) {
        if (!json_is_string(value))
            return cc_err_set(err, CC_ERR_INVALID,
                              "bundle JSON is neither a SPIFFE bundle (no \"keys\"), a bundle map "
                              "(no \"trust_domains\") nor a JWT bundle file (\"%s\" is not a "
                              "string)",
                              key);
    }
    *format = CC_BUNDLE_FORMAT_JWT_MAP;
    return CC_OK;
}

cc_status cc_bundle_detect_format(const char *data, size_t len, cc_bundle_format *format,
                                  cc_err *err)
{
    if (starts_with_pem(data, len)) {
        *format = CC_BUNDLE_FORMAT_PEM;
        return CC_OK;
    }

    json_t *root = NULL;
    cc_status status = parse_json(data, len, &root, err);
    if (status == CC_OK)
        status = detect_json_format(root, format, err);
    else
        cc_err_prefix(err, "bundle is neither PEM nor valid JSON");
    json_decref(root);
    return status;
}

/* ---- Sources ------------------------------------------------------------ */

/* Loads a file that contains one bundle of td (PEM or SPIFFE JSON) into set. */
static cc_status load_single(const char *td, cc_bundle_format format, const char *data, size_t len,
                             cc_bundle_set *set, cc_err *err)
{
    cc_bundle *bundle = NULL;
    cc_status status = format == CC_BUNDLE_FORMAT_PEM
                           ? cc_bundle_parse_pem(td, data, len, &bundle, err)
                           : cc_bundle_parse_spiffe(td, data, len, &bundle, err);
    if (status != CC_OK)
        return status;
    return cc_bundle_set_add(set, bundle, err);
}

/* Loads a map form (format MAP or JWT_MAP) into target. */
static cc_status load_map(cc_bundle_format format, const char *data, size_t len, map_target *target,
                          cc_err *err)
{
    json_t *root = NULL;
    cc_status status = parse_json(data, len, &root, err);
    if (status == CC_OK)
        status = format == CC_BUNDLE_FORMAT_MAP ? add_map(root, target, err)
                                                : add_jwt_map(root, target, err);
    json_decref(root);
    return status;
}

/* Reads a file named by a bundle source. When the file cannot be read and the
 * path came from the config key "key", err names the key and the fix. */
static cc_status read_source_file(const char *path, const char *key, char **data, size_t *len,
                                  cc_err *err)
{
    cc_status status = cc_bundle_read_file(path, data, len, err);
    if (status == CC_OK || status == CC_ERR_NOMEM || key == NULL || key[0] == '\0' || err == NULL)
        return status;

    char detail[CC_ERR_MESSAGE_MAX];
    snprintf(detail, sizeof(detail), "%s", err->message);
    return cc_err_set(err, status,
                      "key \"%s\": %s; create the file or correct the path in the config", key,
                      detail);
}

/* Loads the spiffe-helper pair: svid_bundle.pem for td and the JWT bundle file. */
static cc_status load_helper(const cc_bundle_source *source, cc_bundle_set *set, cc_err *err)
{
    char *data = NULL;
    size_t len = 0;
    cc_bundle *own = NULL;

    cc_status status = read_source_file(source->path, source->config_key, &data, &len, err);
    if (status != CC_OK)
        goto done;
    status = cc_bundle_parse_pem(source->trust_domain, data, len, &own, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "%s", source->path);
        goto done;
    }

    if (source->jwt_path != NULL) {
        free(data);
        data = NULL;
        status = read_source_file(source->jwt_path,
                                  source->config_key[0] != '\0' ? "spiffe_helper.jwt_bundle" : NULL,
                                  &data, &len, err);
        if (status != CC_OK)
            goto done;
        map_target target = {.set = set, .own = own};
        status = load_map(CC_BUNDLE_FORMAT_JWT_MAP, data, len, &target, err);
        if (status != CC_OK) {
            cc_err_prefix(err, "%s", source->jwt_path);
            goto done;
        }
    }

    status = cc_bundle_set_add(set, own, err); /* takes ownership, also on failure */
    own = NULL;

done:
    cc_bundle_free(own);
    free(data);
    return status;
}

cc_status cc_bundle_source_load(const cc_bundle_source *source, cc_bundle_set *set, cc_err *err)
{
    if (source->path == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "bundle source has no file path");
    if (source->kind == CC_BUNDLE_SOURCE_SPIFFE_HELPER)
        return load_helper(source, set, err);

    char *data = NULL;
    size_t len = 0;
    cc_status status = read_source_file(source->path, source->config_key, &data, &len, err);
    if (status != CC_OK)
        return status;

    map_target target = {.set = set};
    switch (source->kind) {
    case CC_BUNDLE_SOURCE_PEM:
        status = load_single(source->trust_domain, CC_BUNDLE_FORMAT_PEM, data, len, set, err);
        break;
    case CC_BUNDLE_SOURCE_SPIFFE:
        status = load_single(source->trust_domain, CC_BUNDLE_FORMAT_SPIFFE, data, len, set, err);
        break;
    case CC_BUNDLE_SOURCE_MAP:
        status = load_map(CC_BUNDLE_FORMAT_MAP, data, len, &target, err);
        break;
    case CC_BUNDLE_SOURCE_JWT_MAP:
        status = load_map(CC_BUNDLE_FORMAT_JWT_MAP, data, len, &target, err);
        break;
    default:
        status =
            cc_err_set(err, CC_ERR_INVALID, "bundle source kind %d is unknown", (int)source->kind);
        break;
    }
    if (status != CC_OK)
        cc_err_prefix(err, "%s", source->path);

    free(data);
    return status;
}

cc_status cc_bundle_sources_load(const cc_bundle_source *sources, size_t count, cc_bundle_set **out,
                                 cc_err *err)
{
    cc_bundle_set *set = cc_bundle_set_new();
    if (set == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory creating a bundle set");

    for (size_t i = 0; i < count; i++) {
        cc_status status = cc_bundle_source_load(&sources[i], set, err);
        if (status != CC_OK) {
            cc_bundle_set_release(set);
            return status;
        }
    }
    *out = set;
    return CC_OK;
}

/* Loads data of a detected format into set, as cc_bundle_load_file() describes. */
static cc_status load_detected(cc_bundle_format format, const char *trust_domain, const char *data,
                               size_t len, cc_bundle_set *set, cc_err *err)
{
    if (format == CC_BUNDLE_FORMAT_PEM || format == CC_BUNDLE_FORMAT_SPIFFE) {
        if (trust_domain == NULL)
            return cc_err_set(err, CC_ERR_INVALID,
                              "a %s bundle does not name its trust domain; pass one "
                              "(--trust-domain)",
                              format == CC_BUNDLE_FORMAT_PEM ? "PEM" : "SPIFFE");
        return load_single(trust_domain, format, data, len, set, err);
    }

    char only[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
    map_target target = {.set = set};
    if (trust_domain != NULL) {
        cc_status status = normalize_trust_domain(trust_domain, only, err);
        if (status != CC_OK)
            return status;
        target.only = only;
    }

    cc_status status = load_map(format, data, len, &target, err);
    if (status == CC_OK && target.only != NULL && !target.found_only)
        status = cc_err_set(err, CC_ERR_NOT_FOUND, "the file has no bundle for trust domain \"%s\"",
                            target.only);
    return status;
}

/* Reads and detects path, then loads it bound to trust_domain, or to
 * fallback_trust_domain when the form needs a domain and none was given. */
static cc_status load_file(const char *path, const char *trust_domain,
                           const char *fallback_trust_domain, cc_bundle_set **out,
                           cc_bundle_format *format, bool *used_fallback, cc_err *err)
{
    char *data = NULL;
    size_t len = 0;
    cc_bundle_format detected = CC_BUNDLE_FORMAT_PEM;
    cc_bundle_set *set = NULL;

    if (used_fallback != NULL)
        *used_fallback = false;
    cc_status status = cc_bundle_read_file(path, &data, &len, err);
    if (status != CC_OK)
        return status;

    status = cc_bundle_detect_format(data, len, &detected, err);
    if (status == CC_OK && format != NULL)
        *format = detected;

    bool single = detected == CC_BUNDLE_FORMAT_PEM || detected == CC_BUNDLE_FORMAT_SPIFFE;
    if (status == CC_OK && single && trust_domain == NULL && fallback_trust_domain != NULL) {
        trust_domain = fallback_trust_domain;
        if (used_fallback != NULL)
            *used_fallback = true;
    }

    if (status == CC_OK) {
        set = cc_bundle_set_new();
        if (set == NULL)
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory creating a bundle set");
    }
    if (status == CC_OK)
        status = load_detected(detected, trust_domain, data, len, set, err);

    if (status == CC_OK) {
        *out = set;
        set = NULL;
    } else {
        cc_err_prefix(err, "%s", path);
    }
    cc_bundle_set_release(set);
    free(data);
    return status;
}

cc_status cc_bundle_load_file(const char *path, const char *trust_domain, cc_bundle_set **out,
                              cc_bundle_format *format, cc_err *err)
{
    return load_file(path, trust_domain, NULL, out, format, NULL, err);
}

cc_status cc_bundle_load_file_with_fallback(const char *path, const char *trust_domain,
                                            const char *fallback_trust_domain, cc_bundle_set **out,
                                            bool *used_fallback, cc_err *err)
{
    return load_file(path, trust_domain, fallback_trust_domain, out, NULL, used_fallback, err);
}
