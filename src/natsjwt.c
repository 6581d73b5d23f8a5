/* NATS JWT codec. See natsjwt.h for the token format.
 *
 * Encoding builds a fresh jansson object in the key order that nats-io/jwt
 * (Go) writes, dumps it compactly and then applies Go's HTML escaping, so the
 * payload and the jti input match Go's bytes for the same claims. Decoding
 * never re-serialises: the signature is checked over the token's own bytes. */
#include "citadel/natsjwt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "citadel/codec.h"

/* Keys that the caller may set at the top level of the claims to encode. */
static const char *const encodable_keys[] = {"aud", "exp", "name", "nbf", "sub", "nats"};

/* Base claim keys in the order Go writes them, without jti. */
static const char *const hashed_keys[] = {"aud", "exp", "iat", "iss", "name", "nbf", "sub"};

static bool is_empty_value(const json_t *value)
{
    if (value == NULL || json_is_null(value))
        return true;
    if (json_is_string(value))
        return json_string_length(value) == 0;
    if (json_is_integer(value))
        return json_integer_value(value) == 0;
    return false;
}

/* Rewrites jansson's compact JSON into the bytes Go's json.Marshal writes.
 * Go also escapes '<', '>', '&', U+2028 and U+2029, and writes the hex digits
 * of \u escapes in lowercase where jansson uses uppercase. These bytes occur
 * only inside JSON strings, so a byte-wise rewrite is safe. Returns a
 * malloc'd string or NULL. */
static char *go_escape(const char *text)
{
    size_t len = strlen(text);
    char *out = malloc(len * 6 + 1);
    if (out == NULL)
        return NULL;

    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\\' && i + 1 < len) {
            /* Copy an escape whole, so an escaped backslash is not read as
             * the start of another escape. */
            size_t escape_len = text[i + 1] == 'u' && i + 5 < len ? 6 : 2;
            for (size_t j = 0; j < escape_len; j++)
                out[n++] = (char)tolower((unsigned char)text[i + j]);
            i += escape_len - 1;
        } else if (c == '<' || c == '>' || c == '&') {
            n += (size_t)sprintf(out + n, "\\u%04x", c);
        } else if (c == 0xE2 && i + 2 < len && (unsigned char)text[i + 1] == 0x80 &&
                   ((unsigned char)text[i + 2] == 0xA8 || (unsigned char)text[i + 2] == 0xA9)) {
            n += (size_t)sprintf(out + n, "\\u20%s",
                                 (unsigned char)text[i + 2] == 0xA8 ? "28" : "29");
            i += 2;
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return out;
}

/* Dumps value compactly with Go escaping. Returns a malloc'd string or NULL. */
static char *dump_go_json(const json_t *value)
{
    char *plain = json_dumps(value, JSON_COMPACT);
    if (plain == NULL)
        return NULL;
    char *escaped = go_escape(plain);
    free(plain);
    return escaped;
}

cc_status cc_jwt_sha512_256(const uint8_t *data, size_t len, uint8_t out[32], cc_err *err)
{
    unsigned int out_len = 0;
    if (EVP_Digest(data, len, out, &out_len, EVP_sha512_256(), NULL) != 1 || out_len != 32)
        return cc_err_set(err, CC_ERR_INTERNAL, "SHA-512/256 failed in OpenSSL");
    return CC_OK;
}

cc_status cc_jwt_compute_jti(const json_t *claims, char out[CC_JWT_JTI_LEN + 1], cc_err *err)
{
    cc_status status = CC_ERR_NOMEM;
    char *text = NULL;
    json_t *base = json_object();
    if (base == NULL)
        goto fail;

    for (size_t i = 0; i < sizeof(hashed_keys) / sizeof(hashed_keys[0]); i++) {
        json_t *value = json_object_get(claims, hashed_keys[i]);
        if (is_empty_value(value))
            continue;
        if (json_object_set_new(base, hashed_keys[i], json_deep_copy(value)) != 0)
            goto fail;
    }

    text = dump_go_json(base);
    if (text == NULL)
        goto fail;

    uint8_t digest[32];
    status = cc_jwt_sha512_256((const uint8_t *)text, strlen(text), digest, err);
    if (status != CC_OK)
        goto done;
    status = cc_base32_encode(digest, sizeof(digest), out, CC_JWT_JTI_LEN + 1, err);
    goto done;

fail:
    status = cc_err_set(err, CC_ERR_NOMEM, "out of memory computing a JWT id");
done:
    free(text);
    json_decref(base);
    return status;
}

/* Checks the caller's claims before encoding; see cc_jwt_encode(). */
static cc_status check_encodable(const json_t *claims, cc_err *err)
{
    if (!json_is_object(claims))
        return cc_err_set(err, CC_ERR_INVALID, "JWT claims must be a JSON object");

    const char *key;
    json_t *value;
    json_object_foreach((json_t *)claims, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(encodable_keys) / sizeof(encodable_keys[0]); i++)
            known = known || strcmp(key, encodable_keys[i]) == 0;
        if (strcmp(key, "type") == 0)
            return cc_err_set(err, CC_ERR_INVALID,
                              "JWT claims have a top-level \"type\", which marks a version 1 "
                              "token; put the kind in nats.type");
        if (!known)
            return cc_err_set(err, CC_ERR_INVALID,
                              "JWT claim \"%s\" cannot be set by the caller; the encoder "
                              "accepts only aud, exp, name, nbf, sub and nats",
                              key);
        bool is_text =
            strcmp(key, "aud") == 0 || strcmp(key, "name") == 0 || strcmp(key, "sub") == 0;
        bool is_time = strcmp(key, "exp") == 0 || strcmp(key, "nbf") == 0;
        if (is_text && !json_is_string(value))
            return cc_err_set(err, CC_ERR_INVALID, "JWT claim \"%s\" must be a string", key);
        if (is_time && (!json_is_integer(value) || json_integer_value(value) < 0))
            return cc_err_set(err, CC_ERR_INVALID,
                              "JWT claim \"%s\" must be a non-negative integer (Unix seconds)",
                              key);
    }

    json_t *nats = json_object_get(claims, "nats");
    if (!json_is_object(nats))
        return cc_err_set(err, CC_ERR_INVALID, "JWT claims need a \"nats\" object");
    json_t *type = json_object_get(nats, "type");
    if (!json_is_string(type) || json_string_length(type) == 0)
        return cc_err_set(err, CC_ERR_INVALID, "JWT claim nats.type must be a non-empty string");
    json_t *version = json_object_get(nats, "version");
    if (!json_is_integer(version) || json_integer_value(version) != 2)
        return cc_err_set(err, CC_ERR_INVALID, "JWT claim nats.version must be the integer 2");
    return CC_OK;
}

/* Builds the full claims object in Go order: aud, exp, jti, iat, iss, name,
 * nbf, sub, nats. On success *out is a new reference. */
static cc_status build_ordered_claims(const json_t *claims, const char *iss, int64_t iat,
                                      json_t **out, cc_err *err)
{
    cc_status status = CC_ERR_NOMEM;
    json_t *base = json_object();
    json_t *ordered = json_object();
    if (base == NULL || ordered == NULL)
        goto nomem;

    for (size_t i = 0; i < sizeof(encodable_keys) / sizeof(encodable_keys[0]); i++) {
        json_t *value = json_object_get(claims, encodable_keys[i]);
        if (strcmp(encodable_keys[i], "nats") != 0 && !is_empty_value(value) &&
            json_object_set_new(base, encodable_keys[i], json_deep_copy(value)) != 0)
            goto nomem;
    }
    if (iat != 0 && json_object_set_new(base, "iat", json_integer(iat)) != 0)
        goto nomem;
    if (json_object_set_new(base, "iss", json_string(iss)) != 0)
        goto nomem;

    char jti[CC_JWT_JTI_LEN + 1];
    status = cc_jwt_compute_jti(base, jti, err);
    if (status != CC_OK)
        goto fail;

    static const char *const order[] = {"aud", "exp", "jti", "iat", "iss", "name", "nbf", "sub"};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        json_t *value = strcmp(order[i], "jti") == 0 ? json_string(jti)
                                                     : json_incref(json_object_get(base, order[i]));
        if (value != NULL && json_object_set_new(ordered, order[i], value) != 0)
            goto nomem;
    }
    if (json_object_set_new(ordered, "nats", json_deep_copy(json_object_get(claims, "nats"))) != 0)
        goto nomem;

    json_decref(base);
    *out = ordered;
    return CC_OK;

nomem:
    status = cc_err_set(err, CC_ERR_NOMEM, "out of memory building JWT claims");
fail:
    json_decref(base);
    json_decref(ordered);
    return status;
}

/* Signs "header_b64.claims_b64" and returns the malloc'd token. */
static cc_status sign_segments(const char *header_b64, const char *claims_b64,
                               const cc_nkey *signer, char **out, cc_err *err)
{
    cc_status status = CC_ERR_NOMEM;
    char *sig_b64 = NULL;
    size_t header_len = strlen(header_b64);
    size_t claims_len = strlen(claims_b64);
    size_t signed_len = header_len + 1 + claims_len;
    /* Room for the second dot, 86 characters of signature and the NUL. */
    char *token = malloc(signed_len + 1 + 86 + 1);
    if (token == NULL)
        goto nomem;

    memcpy(token, header_b64, header_len);
    token[header_len] = '.';
    memcpy(token + header_len + 1, claims_b64, claims_len);
    token[signed_len] = '\0';

    uint8_t sig[CC_NKEY_SIGNATURE_LEN];
    status = cc_nkey_sign(signer, (const uint8_t *)token, signed_len, sig, err);
    if (status != CC_OK)
        goto fail;
    sig_b64 = cc_b64url_encode(sig, sizeof(sig));
    if (sig_b64 == NULL)
        goto nomem;

    token[signed_len] = '.';
    memcpy(token + signed_len + 1, sig_b64, strlen(sig_b64) + 1);
    free(sig_b64);
    *out = token;
    return CC_OK;

nomem:
    status = cc_err_set(err, CC_ERR_NOMEM, "out of memory signing a JWT");
fail:
    free(token);
    return status;
}

cc_status cc_jwt_sign_raw(const char *header_json, const char *claims_json, const cc_nkey *signer,
                          char **out, cc_err *err)
{
    cc_status status = CC_OK;
    char *header_b64 = cc_b64url_encode((const uint8_t *)header_json, strlen(header_json));
    char *claims_b64 = cc_b64url_encode((const uint8_t *)claims_json, strlen(claims_json));
    if (header_b64 == NULL || claims_b64 == NULL)
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory encoding a JWT");
    else
        status = sign_segments(header_b64, claims_b64, signer, out, err);
    free(header_b64);
    free(claims_b64);
    return status;
}

cc_status cc_jwt_encode(const json_t *claims, const cc_nkey *signer, int64_t iat, char **out,
                        cc_err *err)
{
    cc_status status = check_encodable(claims, err);
    if (status != CC_OK)
        return status;
    if (signer->kind == CC_NKEY_CURVE)
        return cc_err_set(err, CC_ERR_INVALID,
                          "a curve (xkey) key cannot sign a JWT; use an "
                          "account, operator or server key");
    if (iat < 0)
        return cc_err_set(err, CC_ERR_INVALID, "JWT iat %lld is negative", (long long)iat);

    char iss[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(signer, iss);

    char *payload = NULL;
    char *claims_b64 = NULL;
    json_t *ordered = NULL;
    status = build_ordered_claims(claims, iss, iat, &ordered, err);
    if (status != CC_OK)
        return status;

    payload = dump_go_json(ordered);
    if (payload != NULL)
        claims_b64 = cc_b64url_encode((const uint8_t *)payload, strlen(payload));
    if (claims_b64 == NULL)
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory encoding JWT claims");
    else
        status = sign_segments(CC_JWT_HEADER_B64, claims_b64, signer, out, err);

    free(claims_b64);
    free(payload);
    json_decref(ordered);
    return status;
}

/* ---- decoding ---------------------------------------------------------- */

/* Decodes one base64url segment and parses it as a JSON object. */
static cc_status load_segment(const char *text, size_t len, const char *what, json_t **out,
                              cc_err *err)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    cc_status status = cc_b64url_decode(text, len, &raw, &raw_len, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "invalid JWT %s segment", what);
        return CC_ERR_INVALID;
    }

    json_error_t json_err;
    *out = json_loadb((const char *)raw, raw_len, JSON_REJECT_DUPLICATES, &json_err);
    free(raw);
    if (*out == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "invalid JSON in JWT %s: %s", what, json_err.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return cc_err_set(err, CC_ERR_INVALID, "JWT %s is not a JSON object", what);
    }
    return CC_OK;
}

static cc_status check_header(const json_t *header, cc_err *err)
{
    const char *typ = json_string_value(json_object_get(header, "typ"));
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (typ == NULL || strcasecmp(typ, "JWT") != 0)
        return cc_err_set(err, CC_ERR_INVALID, "JWT header typ is \"%s\", expected \"JWT\"",
                          typ != NULL ? typ : "(missing)");
    /* nats-io/jwt compares alg case-insensitively and still accepts the
     * name "ed25519" that early NATS JWTs used. */
    if (alg == NULL || (strcasecmp(alg, "ed25519-nkey") != 0 && strcasecmp(alg, "ed25519") != 0))
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT header alg is \"%s\", expected \"ed25519-nkey\"",
                          alg != NULL ? alg : "(missing)");
    return CC_OK;
}

/* Reads an optional string claim into *out (NULL when absent). */
static cc_status read_string_claim(const json_t *claims, const char *key, const char **out,
                                   cc_err *err)
{
    json_t *value = json_object_get(claims, key);
    *out = NULL;
    if (value == NULL || json_is_null(value))
        return CC_OK;
    if (!json_is_string(value))
        return cc_err_set(err, CC_ERR_INVALID, "JWT claim \"%s\" must be a string", key);
    *out = json_string_value(value);
    return CC_OK;
}

/* Reads an optional integer claim into *out (0 when absent). */
static cc_status read_time_claim(const json_t *claims, const char *key, int64_t *out, cc_err *err)
{
    json_t *value = json_object_get(claims, key);
    *out = 0;
    if (value == NULL || json_is_null(value))
        return CC_OK;
    if (!json_is_integer(value))
        return cc_err_set(err, CC_ERR_INVALID, "JWT claim \"%s\" must be an integer", key);
    *out = (int64_t)json_integer_value(value);
    return CC_OK;
}

/* Fills the claim fields of jwt from jwt->claims and rejects version 1. */
static cc_status read_claims(cc_jwt *jwt, cc_err *err)
{
    const json_t *claims = jwt->claims;
    if (json_object_get(claims, "type") != NULL)
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT has a top-level \"type\" claim, so it is a version 1 token; "
                          "only version 2 is supported");

    jwt->nats = json_object_get(claims, "nats");
    if (!json_is_object(jwt->nats))
        return cc_err_set(err, CC_ERR_INVALID, "JWT claims have no \"nats\" object");
    json_t *version = json_object_get(jwt->nats, "version");
    if (!json_is_integer(version) || json_integer_value(version) < 2)
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT claim nats.version is missing or below 2, so it is a version 1 "
                          "token; only version 2 is supported");
    jwt->version = (int64_t)json_integer_value(version);
    jwt->type = json_string_value(json_object_get(jwt->nats, "type"));
    if (jwt->type == NULL || jwt->type[0] == '\0')
        return cc_err_set(err, CC_ERR_INVALID, "JWT claim nats.type is missing");

    cc_status status = CC_OK;
    const struct {
        const char *key;
        const char **out;
    } strings[] = {{"aud", &jwt->aud},
                   {"jti", &jwt->jti},
                   {"iss", &jwt->iss},
                   {"name", &jwt->name},
                   {"sub", &jwt->sub}};
    for (size_t i = 0; status == CC_OK && i < sizeof(strings) / sizeof(strings[0]); i++)
        status = read_string_claim(claims, strings[i].key, strings[i].out, err);
    if (status == CC_OK)
        status = read_time_claim(claims, "exp", &jwt->exp, err);
    if (status == CC_OK)
        status = read_time_claim(claims, "iat", &jwt->iat, err);
    if (status == CC_OK)
        status = read_time_claim(claims, "nbf", &jwt->nbf, err);
    if (status != CC_OK)
        return status;

    if (jwt->iss == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "JWT claim \"iss\" is missing");
    uint8_t raw[32];
    status = cc_nkey_decode_public(jwt->iss, CC_NKEY_ANY, &jwt->issuer_kind, raw, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "JWT issuer is not a valid public nkey");
        return CC_ERR_INVALID;
    }
    return CC_OK;
}

/* Splits token into its three segments; returns the two dot positions. */
static cc_status split_token(const char *token, size_t len, size_t *dot1, size_t *dot2, cc_err *err)
{
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '\0')
            return cc_err_set(err, CC_ERR_INVALID, "JWT contains a NUL byte at offset %zu", i);
        if (token[i] != '.')
            continue;
        if (dots == 0)
            *dot1 = i;
        else if (dots == 1)
            *dot2 = i;
        dots++;
    }
    if (dots != 2)
        return cc_err_set(err, CC_ERR_INVALID,
                          "JWT has %zu segments, expected 3 (header.claims.signature)", dots + 1);
    return CC_OK;
}

cc_status cc_jwt_parse(const char *token, size_t len, cc_jwt *out, cc_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return cc_err_set(err, CC_ERR_INVALID, "JWT is empty");
    if (len > CC_JWT_MAX_LEN)
        return cc_err_set(err, CC_ERR_INVALID, "JWT is %zu bytes, more than the limit of %d", len,
                          CC_JWT_MAX_LEN);

    size_t dot1 = 0, dot2 = 0;
    cc_status status = split_token(token, len, &dot1, &dot2, err);
    if (status != CC_OK)
        return status;

    status = load_segment(token, dot1, "header", &out->header, err);
    if (status == CC_OK)
        status = check_header(out->header, err);
    if (status == CC_OK)
        status = load_segment(token + dot1 + 1, dot2 - dot1 - 1, "claims", &out->claims, err);
    if (status == CC_OK)
        status = read_claims(out, err);
    if (status != CC_OK)
        goto fail;

    uint8_t *sig = NULL;
    size_t sig_len = 0;
    status = cc_b64url_decode(token + dot2 + 1, len - dot2 - 1, &sig, &sig_len, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "invalid JWT signature segment");
        status = CC_ERR_INVALID;
        goto fail;
    }
    if (sig_len != CC_NKEY_SIGNATURE_LEN) {
        free(sig);
        status = cc_err_set(err, CC_ERR_INVALID, "JWT signature is %zu bytes, expected %d", sig_len,
                            CC_NKEY_SIGNATURE_LEN);
        goto fail;
    }
    memcpy(out->signature, sig, sizeof(out->signature));
    free(sig);

    out->token = strndup(token, len);
    if (out->token == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory copying a JWT");
        goto fail;
    }
    out->signed_len = dot2;
    return CC_OK;

fail:
    cc_jwt_free(out);
    return status;
}

cc_status cc_jwt_verify_signature(const cc_jwt *jwt, cc_err *err)
{
    cc_status status =
        cc_nkey_verify(jwt->iss, (const uint8_t *)jwt->token, jwt->signed_len, jwt->signature, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "JWT signature by issuer %s does not verify", jwt->iss);
        return CC_ERR_CRYPTO;
    }
    return CC_OK;
}

cc_status cc_jwt_check_times(const cc_jwt *jwt, int64_t now, cc_err *err)
{
    if (jwt->exp != 0 && jwt->exp < now)
        return cc_err_set(err, CC_ERR_EXPIRED, "JWT expired at %lld, %lld seconds before now",
                          (long long)jwt->exp, (long long)(now - jwt->exp));
    if (jwt->nbf != 0 && jwt->nbf > now)
        return cc_err_set(err, CC_ERR_EXPIRED,
                          "JWT is not valid before %lld, %lld seconds after now; check the clocks",
                          (long long)jwt->nbf, (long long)(jwt->nbf - now));
    return CC_OK;
}

static const char *article(const char *noun)
{
    return noun[0] != '\0' && strchr("aeiou", noun[0]) != NULL ? "an" : "a";
}

cc_status cc_jwt_decode(const char *token, size_t len, cc_nkey_kind expected_issuer, int64_t now,
                        cc_jwt *out, cc_err *err)
{
    cc_status status = cc_jwt_parse(token, len, out, err);
    if (status != CC_OK)
        return status;

    if (expected_issuer != CC_NKEY_ANY && out->issuer_kind != expected_issuer) {
        const char *actual_name = cc_nkey_kind_name(out->issuer_kind);
        const char *expected_name = cc_nkey_kind_name(expected_issuer);
        status = cc_err_set(err, CC_ERR_INVALID, "JWT issuer %s is %s %s key, expected %s %s key",
                            out->iss, article(actual_name), actual_name, article(expected_name),
                            expected_name);
        goto fail;
    }
    status = cc_jwt_verify_signature(out, err);
    if (status == CC_OK)
        status = cc_jwt_check_times(out, now, err);
    if (status == CC_OK)
        return CC_OK;

fail:
    cc_jwt_free(out);
    return status;
}

void cc_jwt_free(cc_jwt *jwt)
{
    if (jwt == NULL)
        return;
    free(jwt->token);
    json_decref(jwt->header);
    json_decref(jwt->claims);
    memset(jwt, 0, sizeof(*jwt));
}
