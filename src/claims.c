/* Authorization request and response claims, and helpers shared with the user
 * claims in claims_user.c.
 *
 * Decoded strings are borrowed from the cc_jwt's claims object; only the
 * item arrays of string lists are allocated here. Each decoder fills its
 * struct step by step and, on any failure, frees it again, so the caller
 * never sees a half-filled struct. */
#include "citadel/claims.h"

#include <stdlib.h>
#include <string.h>

#include "claims_internal.h"

/* ---- shared helpers ---------------------------------------------------- */

cc_status cc_claims_read_string(const json_t *obj, const char *where, const char *key,
                                const char **out, cc_err *err)
{
    json_t *value = json_object_get(obj, key);
    *out = "";
    if (value == NULL || json_is_null(value))
        return CC_OK;
    if (!json_is_string(value))
        return cc_err_set(err, CC_ERR_INVALID, "%s.%s must be a string", where, key);
    *out = json_string_value(value);
    return CC_OK;
}

cc_status cc_claims_read_int(const json_t *obj, const char *where, const char *key, int64_t *out,
                             cc_err *err)
{
    json_t *value = json_object_get(obj, key);
    *out = 0;
    if (value == NULL || json_is_null(value))
        return CC_OK;
    if (!json_is_integer(value))
        return cc_err_set(err, CC_ERR_INVALID, "%s.%s must be an integer", where, key);
    *out = (int64_t)json_integer_value(value);
    return CC_OK;
}

/* Copies the strings of the JSON array into list; where names it in errors. */
static cc_status read_string_array(const json_t *array, const char *where, cc_claims_strings *out,
                                   cc_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_array(array))
        return cc_err_set(err, CC_ERR_INVALID, "%s must be an array of strings", where);
    size_t count = json_array_size(array);
    if (count == 0)
        return CC_OK;

    out->items = calloc(count, sizeof(*out->items));
    if (out->items == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading %s", where);
    for (size_t i = 0; i < count; i++) {
        const char *text = json_string_value(json_array_get(array, i));
        if (text == NULL) {
            cc_claims_strings_free(out);
            return cc_err_set(err, CC_ERR_INVALID, "%s[%zu] must be a string", where, i);
        }
        out->items[i] = text;
    }
    out->count = count;
    return CC_OK;
}

cc_status cc_claims_read_strings(const json_t *obj, const char *where, const char *key,
                                 cc_claims_strings *out, cc_err *err)
{
    json_t *value = json_object_get(obj, key);
    memset(out, 0, sizeof(*out));
    if (value == NULL || json_is_null(value))
        return CC_OK;

    char name[128];
    snprintf(name, sizeof(name), "%s.%s", where, key);
    return read_string_array(value, name, out, err);
}

json_t *cc_claims_read_object(const json_t *obj, const char *where, const char *key,
                              cc_status *status, cc_err *err)
{
    json_t *value = json_object_get(obj, key);
    if (value == NULL || json_is_null(value))
        return NULL;
    if (!json_is_object(value)) {
        *status = cc_err_set(err, CC_ERR_INVALID, "%s.%s must be an object", where, key);
        return NULL;
    }
    return value;
}

void cc_claims_strings_free(cc_claims_strings *list)
{
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

json_t *cc_claims_strings_to_json(const cc_claims_strings *list)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < list->count; i++) {
        if (json_array_append_new(array, json_string(list->items[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

cc_status cc_claims_require_key(const char *text, cc_nkey_kind kind, const char *what, cc_err *err)
{
    if (!cc_claims_is_set(text))
        return cc_err_set(err, CC_ERR_INVALID, "%s is missing; expected a public %s key", what,
                          cc_nkey_kind_name(kind));
    uint8_t raw[32];
    cc_status status = cc_nkey_decode_public(text, kind, NULL, raw, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "%s \"%s\" is not a public %s key", what, text, cc_nkey_kind_name(kind));
        return CC_ERR_INVALID;
    }
    return CC_OK;
}

cc_status cc_claims_require_type(const cc_jwt *jwt, const char *type, cc_err *err)
{
    if (strcmp(jwt->type, type) != 0)
        return cc_err_set(err, CC_ERR_INVALID, "JWT nats.type is \"%s\", expected \"%s\"",
                          jwt->type, type);
    return CC_OK;
}

/* ---- authorization request -------------------------------------------- */

static cc_status read_server_id(const json_t *nats, const cc_jwt *jwt, cc_auth_server_id *out,
                                cc_err *err)
{
    cc_status status = CC_OK;
    const json_t *obj = cc_claims_read_object(nats, "nats", "server_id", &status, err);
    if (status != CC_OK)
        return status;
    if (obj == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "authorization request has no nats.server_id");

    const struct {
        const char *key;
        const char **out;
    } fields[] = {{"name", &out->name},       {"host", &out->host},       {"id", &out->id},
                  {"version", &out->version}, {"cluster", &out->cluster}, {"xkey", &out->xkey}};
    for (size_t i = 0; status == CC_OK && i < sizeof(fields) / sizeof(fields[0]); i++)
        status = cc_claims_read_string(obj, "nats.server_id", fields[i].key, fields[i].out, err);
    if (status == CC_OK)
        status = cc_claims_read_strings(obj, "nats.server_id", "tags", &out->tags, err);
    if (status != CC_OK)
        return status;

    if (strcmp(out->id, jwt->iss) != 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "authorization request issuer %s differs from nats.server_id.id "
                          "\"%s\"; the request was not signed by the server it names",
                          jwt->iss, out->id);
    return CC_OK;
}

static cc_status read_client_info(const json_t *nats, cc_auth_client_info *out, cc_err *err)
{
    cc_status status = CC_OK;
    const json_t *obj = cc_claims_read_object(nats, "nats", "client_info", &status, err);
    if (status != CC_OK)
        return status;

    const struct {
        const char *key;
        const char **out;
    } fields[] = {{"host", &out->host},         {"user", &out->user},  {"name", &out->name},
                  {"name_tag", &out->name_tag}, {"kind", &out->kind},  {"type", &out->type},
                  {"mqtt_id", &out->mqtt_id},   {"nonce", &out->nonce}};
    for (size_t i = 0; status == CC_OK && i < sizeof(fields) / sizeof(fields[0]); i++)
        status = cc_claims_read_string(obj, "nats.client_info", fields[i].key, fields[i].out, err);
    if (status == CC_OK)
        status = cc_claims_read_strings(obj, "nats.client_info", "tags", &out->tags, err);

    int64_t id = 0;
    if (status == CC_OK)
        status = cc_claims_read_int(obj, "nats.client_info", "id", &id, err);
    if (status != CC_OK)
        return status;
    /* NOTE: jansson stores integers as int64, so ids above 2^63-1 fail to
     * parse; nats-server counts connection ids up from 1. */
    if (id < 0)
        return cc_err_set(err, CC_ERR_INVALID, "nats.client_info.id %lld is negative",
                          (long long)id);
    out->id = (uint64_t)id;
    return CC_OK;
}

static cc_status read_connect_opts(const json_t *nats, cc_auth_connect_opts *out, cc_err *err)
{
    cc_status status = CC_OK;
    const json_t *obj = cc_claims_read_object(nats, "nats", "connect_opts", &status, err);
    if (status != CC_OK)
        return status;

    const struct {
        const char *key;
        const char **out;
    } fields[] = {{"jwt", &out->jwt},        {"nkey", &out->nkey},
                  {"sig", &out->sig},        {"auth_token", &out->auth_token},
                  {"user", &out->user},      {"pass", &out->pass},
                  {"name", &out->name},      {"lang", &out->lang},
                  {"version", &out->version}};
    for (size_t i = 0; status == CC_OK && i < sizeof(fields) / sizeof(fields[0]); i++)
        status = cc_claims_read_string(obj, "nats.connect_opts", fields[i].key, fields[i].out, err);
    if (status == CC_OK)
        status = cc_claims_read_int(obj, "nats.connect_opts", "protocol", &out->protocol, err);
    return status;
}

static void free_client_tls(cc_auth_client_tls *tls)
{
    cc_claims_strings_free(&tls->certs);
    for (size_t i = 0; i < tls->verified_chain_count; i++)
        cc_claims_strings_free(&tls->verified_chains[i]);
    free(tls->verified_chains);
    tls->verified_chains = NULL;
    tls->verified_chain_count = 0;
}

static cc_status read_verified_chains(const json_t *obj, cc_auth_client_tls *out, cc_err *err)
{
    json_t *chains = json_object_get(obj, "verified_chains");
    if (chains == NULL || json_is_null(chains))
        return CC_OK;
    if (!json_is_array(chains))
        return cc_err_set(err, CC_ERR_INVALID,
                          "nats.client_tls.verified_chains must be an array of arrays");
    size_t count = json_array_size(chains);
    if (count == 0)
        return CC_OK;

    out->verified_chains = calloc(count, sizeof(*out->verified_chains));
    if (out->verified_chains == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading verified chains");
    out->verified_chain_count = count;
    for (size_t i = 0; i < count; i++) {
        char where[64];
        snprintf(where, sizeof(where), "nats.client_tls.verified_chains[%zu]", i);
        cc_status status =
            read_string_array(json_array_get(chains, i), where, &out->verified_chains[i], err);
        if (status != CC_OK)
            return status;
    }
    return CC_OK;
}

static cc_status read_client_tls(const json_t *nats, cc_auth_client_tls *out, cc_err *err)
{
    cc_status status = CC_OK;
    const json_t *obj = cc_claims_read_object(nats, "nats", "client_tls", &status, err);
    out->version = "";
    out->cipher = "";
    if (status != CC_OK || obj == NULL)
        return status;

    out->present = true;
    status = cc_claims_read_string(obj, "nats.client_tls", "version", &out->version, err);
    if (status == CC_OK)
        status = cc_claims_read_string(obj, "nats.client_tls", "cipher", &out->cipher, err);
    if (status == CC_OK)
        status = cc_claims_read_strings(obj, "nats.client_tls", "certs", &out->certs, err);
    if (status == CC_OK)
        status = read_verified_chains(obj, out, err);
    return status;
}

cc_status cc_auth_request_decode(const char *token, size_t len, int64_t now, cc_auth_request *out,
                                 cc_err *err)
{
    memset(out, 0, sizeof(*out));
    cc_status status = cc_jwt_decode(token, len, CC_NKEY_SERVER, now, &out->jwt, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "invalid authorization request");
        return status;
    }

    const cc_jwt *jwt = &out->jwt;
    status = cc_claims_require_type(jwt, "authorization_request", err);
    if (status == CC_OK && (jwt->aud == NULL || strcmp(jwt->aud, CC_AUTH_REQUEST_AUDIENCE) != 0))
        status = cc_err_set(err, CC_ERR_INVALID, "aud is \"%s\", expected \"%s\"",
                            jwt->aud != NULL ? jwt->aud : "", CC_AUTH_REQUEST_AUDIENCE);
    if (status == CC_OK)
        status = read_server_id(jwt->nats, jwt, &out->server_id, err);
    if (status == CC_OK)
        status = cc_claims_read_string(jwt->nats, "nats", "user_nkey", &out->user_nkey, err);
    if (status == CC_OK)
        status = cc_claims_require_key(out->user_nkey, CC_NKEY_USER, "nats.user_nkey", err);
    if (status == CC_OK)
        status = read_client_info(jwt->nats, &out->client_info, err);
    if (status == CC_OK)
        status = read_connect_opts(jwt->nats, &out->connect_opts, err);
    if (status == CC_OK)
        status = read_client_tls(jwt->nats, &out->client_tls, err);
    if (status == CC_OK)
        status =
            cc_claims_read_string(jwt->nats, "nats", "request_nonce", &out->request_nonce, err);
    if (status == CC_OK)
        return CC_OK;

    cc_err_prefix(err, "invalid authorization request");
    cc_auth_request_free(out);
    return status;
}

void cc_auth_request_free(cc_auth_request *req)
{
    if (req == NULL)
        return;
    cc_claims_strings_free(&req->server_id.tags);
    cc_claims_strings_free(&req->client_info.tags);
    free_client_tls(&req->client_tls);
    cc_jwt_free(&req->jwt);
    memset(req, 0, sizeof(*req));
}

/* ---- authorization response ------------------------------------------- */

static cc_status check_response(const cc_auth_response *resp, cc_err *err)
{
    cc_status status = cc_claims_require_key(resp->user_nkey, CC_NKEY_USER,
                                             "authorization response subject (user_nkey)", err);
    if (status == CC_OK)
        status = cc_claims_require_key(resp->server_id, CC_NKEY_SERVER,
                                       "authorization response audience (server id)", err);
    if (status != CC_OK)
        return status;

    bool has_jwt = cc_claims_is_set(resp->user_jwt);
    bool has_error = cc_claims_is_set(resp->error);
    if (has_jwt == has_error)
        return cc_err_set(err, CC_ERR_INVALID,
                          "authorization response needs exactly one of a user JWT and an "
                          "error, got %s",
                          has_jwt ? "both" : "neither");
    if (cc_claims_is_set(resp->issuer_account))
        return cc_claims_require_key(resp->issuer_account, CC_NKEY_ACCOUNT,
                                     "authorization response issuer_account", err);
    return CC_OK;
}

cc_status cc_auth_response_encode(const cc_auth_response *resp, const cc_nkey *signer, int64_t iat,
                                  char **out, cc_err *err)
{
    *out = NULL;
    if (signer->kind != CC_NKEY_ACCOUNT)
        return cc_err_set(err, CC_ERR_INVALID,
                          "an authorization response must be signed by an account key, not a "
                          "%s key",
                          cc_nkey_kind_name(signer->kind));
    cc_status status = check_response(resp, err);
    if (status != CC_OK)
        return status;
    if (resp->exp < 0)
        return cc_err_set(err, CC_ERR_INVALID, "authorization response exp %lld is negative",
                          (long long)resp->exp);

    /* Key order follows nats-io/jwt: jwt, error, issuer_account, type, version. */
    json_t *nats = json_object();
    json_t *claims = json_object();
    bool ok = nats != NULL && claims != NULL;
    if (ok && cc_claims_is_set(resp->user_jwt))
        ok = json_object_set_new(nats, "jwt", json_string(resp->user_jwt)) == 0;
    if (ok && cc_claims_is_set(resp->error))
        ok = json_object_set_new(nats, "error", json_string(resp->error)) == 0;
    if (ok && cc_claims_is_set(resp->issuer_account))
        ok = json_object_set_new(nats, "issuer_account", json_string(resp->issuer_account)) == 0;
    ok = ok && json_object_set_new(nats, "type", json_string("authorization_response")) == 0 &&
         json_object_set_new(nats, "version", json_integer(2)) == 0 &&
         json_object_set_new(claims, "aud", json_string(resp->server_id)) == 0 &&
         json_object_set_new(claims, "sub", json_string(resp->user_nkey)) == 0;
    if (ok && resp->exp != 0)
        ok = json_object_set_new(claims, "exp", json_integer(resp->exp)) == 0;
    ok = ok && json_object_set(claims, "nats", nats) == 0;

    if (!ok)
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory building an authorization response");
    else
        status = cc_jwt_encode(claims, signer, iat, out, err);
    json_decref(nats);
    json_decref(claims);
    return status;
}

cc_status cc_auth_response_decode(const char *token, size_t len, int64_t now, cc_auth_response *out,
                                  cc_err *err)
{
    memset(out, 0, sizeof(*out));
    cc_status status = cc_jwt_decode(token, len, CC_NKEY_ACCOUNT, now, &out->jwt, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "invalid authorization response");
        return status;
    }

    const cc_jwt *jwt = &out->jwt;
    out->user_nkey = jwt->sub != NULL ? jwt->sub : "";
    out->server_id = jwt->aud != NULL ? jwt->aud : "";
    out->exp = jwt->exp;
    status = cc_claims_require_type(jwt, "authorization_response", err);
    if (status == CC_OK)
        status = cc_claims_read_string(jwt->nats, "nats", "jwt", &out->user_jwt, err);
    if (status == CC_OK)
        status = cc_claims_read_string(jwt->nats, "nats", "error", &out->error, err);
    if (status == CC_OK)
        status =
            cc_claims_read_string(jwt->nats, "nats", "issuer_account", &out->issuer_account, err);
    if (status == CC_OK)
        status = check_response(out, err);
    if (status == CC_OK)
        return CC_OK;

    cc_err_prefix(err, "invalid authorization response");
    cc_auth_response_free(out);
    return status;
}

void cc_auth_response_free(cc_auth_response *resp)
{
    if (resp == NULL)
        return;
    cc_jwt_free(&resp->jwt);
    memset(resp, 0, sizeof(*resp));
}
