/* The decision pipeline of decision.h.
 *
 * cc_decision_evaluate() runs the steps in order on a private pipeline state.
 * Each step returns CC_DECISION_ALLOWED to go on, or a deny code after writing
 * the reason. The first deny ends the pipeline. out->allowed is set in one
 * place only, after the signed response exists, so every early exit is a deny.
 *
 * The audit event and the response are built from the same out fields, so
 * both always describe the same decision. */
#include "citadel/decision.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "citadel/certcache.h"
#include "citadel/claims.h"
#include "citadel/jwtsvid.h"
#include "citadel/policy.h"
#include "citadel/rfc3339.h"
#include "citadel/x509svid.h"
#include "citadel/xkey.h"

/* Room for a reason: a fixed text plus a cc_err message from a lower module. */
#define REASON_MAX (CC_ERR_MESSAGE_MAX + 512)

static const char *const code_names[] = {
    [CC_DECISION_ALLOWED] = "allowed",
    [CC_DECISION_ENCRYPTION_REQUIRED] = "encryption_required",
    [CC_DECISION_ENCRYPTION_UNEXPECTED] = "encryption_unexpected",
    [CC_DECISION_DECRYPT_FAILED] = "decrypt_failed",
    [CC_DECISION_BAD_REQUEST] = "bad_request",
    [CC_DECISION_BAD_REQUEST_SIGNATURE] = "bad_request_signature",
    [CC_DECISION_REQUEST_EXPIRED] = "request_expired",
    [CC_DECISION_XKEY_MISMATCH] = "xkey_mismatch",
    [CC_DECISION_NO_CREDENTIAL] = "no_credential",
    [CC_DECISION_BAD_CERTIFICATE] = "bad_certificate",
    [CC_DECISION_X509SVID_INVALID] = "x509svid_invalid",
    [CC_DECISION_JWTSVID_DISABLED] = "jwtsvid_disabled",
    [CC_DECISION_JWTSVID_INVALID] = "jwtsvid_invalid",
    [CC_DECISION_SPIFFE_ID_MISMATCH] = "spiffe_id_mismatch",
    [CC_DECISION_NO_POLICY] = "no_policy",
    [CC_DECISION_CONNECTION_TYPE] = "connection_type",
    [CC_DECISION_SOURCE_ADDRESS] = "source_address",
    [CC_DECISION_INTERNAL] = "internal",
};

const char *cc_decision_code_name(cc_decision_code code)
{
    if ((unsigned)code >= sizeof(code_names) / sizeof(code_names[0]))
        return "unknown";
    return code_names[code];
}

/* Working state of one evaluation. */
typedef struct pipeline {
    const cc_decision_context *ctx;
    const cc_decision_request *req;
    cc_decision *out;

    char *token; /* plain request JWT, NUL-terminated, owned */
    size_t token_len;
    bool decoded; /* the request is valid, so a signed response can be built */
    bool seal_response;
    cc_auth_request request;

    const char *credential_token; /* JWT-SVID from connect_opts, borrowed from request */
    const cc_policy_rule *rule;   /* borrowed from ctx->policies */
    char *user_jwt;               /* owned */

    char reason[REASON_MAX];
    cc_status internal_status; /* CC_OK unless an internal failure occurred */
    cc_err internal_err;
} pipeline;

static cc_decision_code deny(pipeline *p, cc_decision_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cc_decision_code deny(pipeline *p, cc_decision_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
    va_end(ap);
    return code;
}

/* Records an internal failure: the deny code is CC_DECISION_INTERNAL and the
 * status returned by cc_decision_evaluate() is status. */
static cc_decision_code fail(pipeline *p, cc_status status, const char *operation,
                             const cc_err *cause)
{
    p->internal_status = status == CC_OK ? CC_ERR_INTERNAL : status;
    cc_err_set(&p->internal_err, p->internal_status, "%s: %s", operation,
               cause != NULL ? cause->message : cc_status_name(status));
    return deny(p, CC_DECISION_INTERNAL, "internal error: %s", p->internal_err.message);
}

/* Returns a malloc'd copy of s, or NULL when s is NULL or empty (or when out
 * of memory: the field then only goes missing from the audit event). */
static char *copy_nonempty(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return NULL;
    return strdup(s);
}

/* ---- decision id and time ------------------------------------------------ */

static const char crockford32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Writes a ULID: 10 characters of millisecond time, then 16 of randomness. */
static void make_decision_id(int64_t now, char out[CC_DECISION_ID_LEN + 1])
{
    uint64_t ms = now > 0 ? (uint64_t)now * 1000u : 0;
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford32[ms & 31u];
        ms >>= 5;
    }

    uint8_t random[10];
    randombytes_buf(random, sizeof(random));
    /* 80 bits as 16 groups of 5 bits, most significant first. */
    uint32_t acc = 0;
    int bits = 0;
    size_t pos = 10;
    for (size_t i = 0; i < sizeof(random); i++) {
        acc = (acc << 8) | random[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[pos++] = crockford32[(acc >> bits) & 31u];
        }
    }
    out[CC_DECISION_ID_LEN] = '\0';
    sodium_memzero(random, sizeof(random));
}

/* ---- step 1: xkey -------------------------------------------------------- */

static bool looks_like_jwt(const uint8_t *data, size_t len)
{
    return len >= 3 && memcmp(data, "eyJ", 3) == 0;
}

static cc_decision_code copy_token(pipeline *p, const uint8_t *data, size_t len)
{
    p->token = malloc(len + 1);
    if (p->token == NULL)
        return fail(p, CC_ERR_NOMEM, "copying the request", NULL);
    memcpy(p->token, data, len);
    p->token[len] = '\0';
    p->token_len = len;
    return CC_DECISION_ALLOWED;
}

static cc_decision_code open_request(pipeline *p)
{
    const cc_decision_request *req = p->req;
    const char *header = req->server_xkey;
    bool has_header = header != NULL && header[0] != '\0';

    if (req->payload == NULL || req->payload_len == 0)
        return deny(p, CC_DECISION_BAD_REQUEST, "invalid authorization request: empty payload");

    bool plain = looks_like_jwt(req->payload, req->payload_len);
    if (p->ctx->xkey == NULL) {
        if (!plain)
            return deny(p, CC_DECISION_ENCRYPTION_UNEXPECTED,
                        "the request is encrypted but no service xkey is configured; set "
                        "xkey_seed_file to the seed of the auth_callout xkey");
        return copy_token(p, req->payload, req->payload_len);
    }

    if (!has_header)
        return deny(p, CC_DECISION_ENCRYPTION_REQUIRED,
                    "encryption required: the request has no Nats-Server-Xkey header; set "
                    "auth_callout.xkey in nats-server to the service's public xkey");
    if (plain)
        return deny(p, CC_DECISION_ENCRYPTION_REQUIRED,
                    "encryption required: the request is a plain JWT, not sealed with the "
                    "service xkey");

    uint8_t *opened = NULL;
    size_t opened_len = 0;
    cc_err e = {0};
    cc_status st;
    if (p->ctx->xkey_cache != NULL)
        st = cc_xkey_cache_open(p->ctx->xkey_cache, header, req->payload, req->payload_len, &opened,
                                &opened_len, &e);
    else
        st = cc_xkey_open(p->ctx->xkey, header, req->payload, req->payload_len, &opened,
                          &opened_len, &e);
    if (st == CC_ERR_NOMEM)
        return fail(p, st, "opening the sealed request", &e);
    if (st != CC_OK)
        return deny(p, CC_DECISION_DECRYPT_FAILED,
                    "the sealed request could not be opened with the service xkey: %s", e.message);

    p->out->encrypted = true;
    cc_decision_code code = copy_token(p, opened, opened_len);
    sodium_memzero(opened, opened_len);
    free(opened);
    return code;
}

/* ---- step 2: the request JWT --------------------------------------------- */

static void record_request_facts(pipeline *p)
{
    const cc_auth_request *r = &p->request;
    cc_decision *out = p->out;

    out->user_nkey = copy_nonempty(r->user_nkey);
    out->server_id = copy_nonempty(r->server_id.id);
    out->server_name = copy_nonempty(r->server_id.name);
    out->client_host = copy_nonempty(r->client_info.host);
    out->client_id = r->client_info.id;
    out->client_name = copy_nonempty(r->client_info.name);
    out->client_kind = copy_nonempty(r->client_info.kind);
    out->client_type = copy_nonempty(r->client_info.type);
}

static cc_decision_code decode_request(pipeline *p)
{
    cc_err e = {0};
    cc_status st = cc_auth_request_decode(p->token, p->token_len, p->ctx->now, &p->request, &e);

    switch (st) {
    case CC_OK:
        break;
    case CC_ERR_CRYPTO:
        return deny(p, CC_DECISION_BAD_REQUEST_SIGNATURE, "invalid authorization request: %s",
                    e.message);
    case CC_ERR_EXPIRED:
        return deny(p, CC_DECISION_REQUEST_EXPIRED, "expired authorization request: %s",
                    e.message);
    case CC_ERR_NOMEM:
    case CC_ERR_INTERNAL:
        return fail(p, st, "decoding the request", &e);
    default:
        return deny(p, CC_DECISION_BAD_REQUEST, "invalid authorization request: %s", e.message);
    }

    record_request_facts(p);
    if (p->request.jwt.exp == 0) {
        /* nats-server sets exp to the send time plus the auth timeout, so a
         * request without one was not made by a server. */
        cc_auth_request_free(&p->request);
        return deny(p, CC_DECISION_BAD_REQUEST,
                    "invalid authorization request: the request JWT has no exp");
    }
    p->decoded = true;

    if (!p->out->encrypted)
        return CC_DECISION_ALLOWED;

    /* The signed server_id.xkey binds the header key to the server that
     * signed the request. Only after this check may the response be sealed
     * to it. */
    const char *signed_xkey = p->request.server_id.xkey;
    if (strcmp(signed_xkey, p->req->server_xkey) != 0)
        return deny(p, CC_DECISION_XKEY_MISMATCH,
                    "server_id.xkey \"%s\" in the request does not match the Nats-Server-Xkey "
                    "header \"%s\"",
                    signed_xkey, p->req->server_xkey);
    p->seal_response = true;
    return CC_DECISION_ALLOWED;
}

/* ---- steps 3 to 5: credentials ------------------------------------------- */

/* Returns the certificate list to verify: the first verified chain, else the
 * certificates the client sent, else NULL. */
static const cc_claims_strings *client_certificates(const cc_auth_client_tls *tls)
{
    if (tls->verified_chain_count > 0 && tls->verified_chains[0].count > 0)
        return &tls->verified_chains[0];
    if (tls->certs.count > 0)
        return &tls->certs;
    return NULL;
}

/* Records the SPIFFE ID that the leaf claims, when its URI SAN parses as one,
 * for the audit of a failed verification. The ID is not trusted, so it goes
 * into the claimed_ fields and never into spiffe_id. */
static void record_claimed_id(pipeline *p, X509 *leaf)
{
    cc_spiffeid claimed;
    if (leaf == NULL || cc_x509svid_id_from_cert(leaf, &claimed, NULL) != CC_OK)
        return;
    p->out->claimed_spiffe_id = copy_nonempty(claimed.id);
    p->out->claimed_trust_domain = copy_nonempty(claimed.trust_domain);
}

static cc_decision_code verify_x509svid(pipeline *p, const cc_claims_strings *pems)
{
    STACK_OF(X509) *chain = NULL;
    cc_x509svid_info info;
    cc_err e = {0};
    cc_decision_code code = CC_DECISION_ALLOWED;

    cc_status st =
        cc_certcache_parse_pem_array(p->ctx->cert_cache, pems->items, pems->count, &chain, &e);
    if (st == CC_ERR_NOMEM) {
        code = fail(p, st, "parsing the client certificates", &e);
        goto cleanup;
    }
    if (st != CC_OK) {
        code = deny(p, CC_DECISION_BAD_CERTIFICATE, "invalid client certificate chain: %s",
                    e.message);
        goto cleanup;
    }

    st = cc_x509svid_verify(chain, p->ctx->bundles, p->ctx->now, &info, &e);
    if (st == CC_ERR_NOMEM || st == CC_ERR_INTERNAL) {
        code = fail(p, st, "verifying the X509-SVID", &e);
        goto cleanup;
    }
    if (st != CC_OK) {
        record_claimed_id(p, sk_X509_value(chain, 0));
        /* The verifier's message already starts with "X509-SVID ... rejected". */
        code = deny(p, CC_DECISION_X509SVID_INVALID, "%s", e.message);
        goto cleanup;
    }

    cc_decision *out = p->out;
    out->spiffe_id = copy_nonempty(info.id.id);
    out->trust_domain = copy_nonempty(info.id.trust_domain);
    out->svid_serial = copy_nonempty(info.serial_hex);
    out->svid_fingerprint = copy_nonempty(info.fingerprint_sha256);
    out->svid_not_after = info.chain_not_after;
    if (out->spiffe_id == NULL || out->trust_domain == NULL)
        code = fail(p, CC_ERR_NOMEM, "copying the SPIFFE ID", NULL);

cleanup:
    cc_x509svid_chain_free(chain);
    return code;
}

static cc_decision_code verify_jwtsvid(pipeline *p)
{
    const cc_decision_context *ctx = p->ctx;
    cc_jwtsvid_info info;
    cc_err e = {0};

    if (ctx->jwt_audience_count == 0)
        return deny(p, CC_DECISION_JWTSVID_DISABLED,
                    "the client sent a token or password, but JWT-SVID verification is not "
                    "enabled; add a \"jwt_svid\" section with audiences to the service config "
                    "to accept JWT-SVIDs, or connect without a token");

    cc_status st = cc_jwtsvid_verify(p->credential_token, ctx->bundles, ctx->jwt_audiences,
                                     ctx->jwt_audience_count, ctx->now, ctx->jwt_leeway_seconds,
                                     &info, &e);
    if (st == CC_ERR_NOMEM || st == CC_ERR_INTERNAL)
        return fail(p, st, "verifying the JWT-SVID", &e);
    if (st != CC_OK)
        return deny(p, CC_DECISION_JWTSVID_INVALID, "JWT-SVID rejected: %s", e.message);

    cc_decision *out = p->out;
    out->jwt_svid_used = true;
    out->jwt_svid_exp = info.exp;
    if (out->spiffe_id != NULL) {
        if (strcmp(out->spiffe_id, info.spiffe_id) != 0)
            return deny(p, CC_DECISION_SPIFFE_ID_MISMATCH,
                        "the X509-SVID names %s but the JWT-SVID names %s; both credentials "
                        "must belong to one workload",
                        out->spiffe_id, info.spiffe_id);
        return CC_DECISION_ALLOWED;
    }

    out->spiffe_id = copy_nonempty(info.spiffe_id);
    out->trust_domain = copy_nonempty(info.trust_domain);
    if (out->spiffe_id == NULL || out->trust_domain == NULL)
        return fail(p, CC_ERR_NOMEM, "copying the SPIFFE ID", NULL);
    return CC_DECISION_ALLOWED;
}

static cc_decision_code verify_credentials(pipeline *p)
{
    const cc_auth_connect_opts *opts = &p->request.connect_opts;
    const cc_claims_strings *pems = client_certificates(&p->request.client_tls);

    /* NOTE: when a client sends both auth_token and pass, only auth_token is
     * verified. MQTT clients put the same password into both. */
    if (opts->auth_token[0] != '\0')
        p->credential_token = opts->auth_token;
    else if (opts->pass[0] != '\0')
        p->credential_token = opts->pass;

    if (pems == NULL && p->credential_token == NULL)
        return deny(p, CC_DECISION_NO_CREDENTIAL,
                    "no client certificate: connect over TLS with an X509-SVID client "
                    "certificate (nats-server needs tls { verify: true })");

    cc_decision_code code = CC_DECISION_ALLOWED;
    if (pems != NULL)
        code = verify_x509svid(p, pems);
    if (code == CC_DECISION_ALLOWED && p->credential_token != NULL)
        code = verify_jwtsvid(p);
    return code;
}

/* ---- step 6: policy ------------------------------------------------------ */

/* Maps client_info kind and type to the connection type names of user JWTs,
 * or NULL when the pair is unknown.
 * nats-server 2.10.27 sends no type for leafnodes, so LEAFNODE_WS is never
 * derived. NOTE: MQTT over WebSocket is assumed to report type "mqtt", so it
 * maps to MQTT and never to MQTT_WS. No test covers this against a server. */
static const char *connection_type_name(const char *kind, const char *type)
{
    if (strcmp(kind, "Leafnode") == 0)
        return "LEAFNODE";
    if (strcmp(kind, "Client") != 0)
        return NULL;
    if (strcmp(type, "nats") == 0)
        return "STANDARD";
    if (strcmp(type, "websocket") == 0)
        return "WEBSOCKET";
    if (strcmp(type, "mqtt") == 0)
        return "MQTT";
    return NULL;
}

static cc_decision_code apply_policy(pipeline *p)
{
    const cc_auth_client_info *client = &p->request.client_info;
    const char *spiffe_id = p->out->spiffe_id;

    if (p->ctx->policies != NULL)
        p->rule = cc_policy_set_match(p->ctx->policies, spiffe_id);
    if (p->rule == NULL)
        return deny(p, CC_DECISION_NO_POLICY, "no policy for SPIFFE ID %s", spiffe_id);

    const cc_policy_rule *rule = p->rule;
    p->out->rule = copy_nonempty(rule->name);

    if (rule->connection_type_count > 0) {
        const char *type = connection_type_name(client->kind, client->type);
        if (type == NULL)
            return deny(p, CC_DECISION_CONNECTION_TYPE,
                        "connection kind \"%s\" type \"%s\" is not a known connection type, and "
                        "rule %s allows only listed connection types",
                        client->kind, client->type, rule->name);
        if (!cc_policy_rule_allows_connection_type(rule, type))
            return deny(p, CC_DECISION_CONNECTION_TYPE,
                        "connection type %s is not in connection_types of rule %s", type,
                        rule->name);
    }

    if (!cc_policy_rule_allows_host(rule, client->host))
        return deny(p, CC_DECISION_SOURCE_ADDRESS,
                    "client address \"%s\" is not in source_cidrs of rule %s", client->host,
                    rule->name);
    return CC_DECISION_ALLOWED;
}

/* ---- step 7: user JWT ---------------------------------------------------- */

static int64_t earliest(int64_t current, int64_t candidate)
{
    if (candidate <= 0)
        return current;
    if (current <= 0 || candidate < current)
        return candidate;
    return current;
}

/* Returns the user JWT exp: the earliest of the SVID chain's notAfter, the
 * JWT-SVID exp and now plus each configured max TTL. */
static int64_t user_jwt_expiry(const pipeline *p)
{
    const cc_decision_context *ctx = p->ctx;
    int64_t exp = 0;

    exp = earliest(exp, p->out->svid_not_after);
    exp = earliest(exp, p->out->jwt_svid_exp);
    if (p->rule->max_ttl_seconds > 0)
        exp = earliest(exp, ctx->now + p->rule->max_ttl_seconds);
    if (ctx->max_ttl_seconds > 0)
        exp = earliest(exp, ctx->now + ctx->max_ttl_seconds);
    return exp;
}

static cc_claims_strings strings_of(char **items, size_t count)
{
    cc_claims_strings s = {(const char **)items, count};
    return s;
}

static cc_decision_code issue_user_jwt(pipeline *p)
{
    const cc_policy_rule *rule = p->rule;
    const char *account = rule->account != NULL && rule->account[0] != '\0'
                              ? rule->account
                              : p->ctx->default_account;
    if (account == NULL || account[0] == '\0')
        return fail(p, CC_ERR_INVALID, "rule has no account and no default_account is set",
                    NULL);

    /* The JWT-SVID leeway can let a token pass whose exp is already past, and
     * nats-server rejects a user JWT that is expired on arrival. */
    int64_t exp = user_jwt_expiry(p);
    if (exp <= p->ctx->now) {
        cc_decision_code code = exp == p->out->jwt_svid_exp ? CC_DECISION_JWTSVID_INVALID
                                                             : CC_DECISION_X509SVID_INVALID;
        return deny(p, code,
                    "the client's credentials expire at %lld, not after the decision time %lld; "
                    "renew the SVID",
                    (long long)exp, (long long)p->ctx->now);
    }

    cc_user_claims claims;
    cc_user_claims_init(&claims);
    claims.subject = p->request.user_nkey;
    claims.audience = account;
    claims.name = p->out->spiffe_id;
    claims.exp = exp;
    claims.pub.allow = strings_of(rule->publish.allow, rule->publish.allow_count);
    claims.pub.deny = strings_of(rule->publish.deny, rule->publish.deny_count);
    claims.sub.allow = strings_of(rule->subscribe.allow, rule->subscribe.allow_count);
    claims.sub.deny = strings_of(rule->subscribe.deny, rule->subscribe.deny_count);
    claims.has_resp = rule->has_response;
    claims.resp_max = rule->response_max;
    claims.resp_ttl_ns = rule->response_ttl_ms * 1000000;
    claims.allowed_connection_types =
        strings_of(rule->connection_types, rule->connection_type_count);

    cc_err e = {0};
    cc_status st = cc_user_claims_encode(&claims, p->ctx->issuer, p->ctx->now, &p->user_jwt, &e);
    if (st != CC_OK)
        return fail(p, st, "building the user JWT", &e);

    p->out->account = copy_nonempty(account);
    p->out->user_jwt_exp = exp;
    if (p->out->account == NULL)
        return fail(p, CC_ERR_NOMEM, "copying the account", NULL);
    return deny(p, CC_DECISION_ALLOWED, "allowed by rule %s", rule->name);
}

/* ---- response ------------------------------------------------------------ */

/* Builds the signed response (the user JWT, or nats.error with the reason)
 * and seals it when the request was sealed. Leaves the response empty when
 * the request never decoded. */
static cc_status build_response(pipeline *p, cc_decision_code code, cc_err *e)
{
    if (!p->decoded)
        return CC_OK;

    cc_auth_response resp = {0};
    resp.user_nkey = p->request.user_nkey;
    resp.server_id = p->request.server_id.id;
    if (code == CC_DECISION_ALLOWED)
        resp.user_jwt = p->user_jwt;
    else
        resp.error = p->reason;

    char *token = NULL;
    cc_status st = cc_auth_response_encode(&resp, p->ctx->issuer, p->ctx->now, &token, e);
    if (st != CC_OK)
        return st;

    if (!p->seal_response) {
        p->out->response = (uint8_t *)token;
        p->out->response_len = strlen(token);
        return CC_OK;
    }

    const char *server_xkey = p->request.server_id.xkey;
    if (p->ctx->xkey_cache != NULL)
        st = cc_xkey_cache_seal(p->ctx->xkey_cache, server_xkey, (const uint8_t *)token,
                                strlen(token), &p->out->response, &p->out->response_len, e);
    else
        st = cc_xkey_seal(p->ctx->xkey, server_xkey, (const uint8_t *)token, strlen(token),
                          &p->out->response, &p->out->response_len, e);
    free(token);
    return st;
}

/* ---- audit --------------------------------------------------------------- */

static void set_string(json_t *obj, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0')
        json_object_set_new(obj, key, json_string(value));
}

static void set_integer(json_t *obj, const char *key, json_int_t value)
{
    if (value != 0)
        json_object_set_new(obj, key, json_integer(value));
}

/* Adds child under key when it got any member, else drops it. */
static void set_object(json_t *obj, const char *key, json_t *child)
{
    if (child != NULL && json_object_size(child) > 0)
        json_object_set_new(obj, key, child);
    else
        json_decref(child);
}

/* Builds the audit event from out. Only fields of cc_decision go in, and none
 * of them carries a secret. Returns NULL when out of memory. */
static json_t *build_audit_event(const cc_decision *out, int64_t now)
{
    char ts[CC_RFC3339_SIZE];
    json_t *event = json_object();
    if (event == NULL)
        return NULL;

    cc_rfc3339_format(now, ts);
    set_string(event, "ts", ts);
    set_string(event, "decision_id", out->id);
    set_string(event, "decision", out->allowed ? "allow" : "deny");
    set_string(event, "code", cc_decision_code_name(out->code));
    set_string(event, "reason", out->reason);
    set_string(event, "spiffe_id", out->spiffe_id);
    set_string(event, "trust_domain", out->trust_domain);
    set_string(event, "claimed_spiffe_id", out->claimed_spiffe_id);
    set_string(event, "claimed_trust_domain", out->claimed_trust_domain);
    set_string(event, "rule", out->rule);
    set_string(event, "account", out->account);
    set_string(event, "user_nkey", out->user_nkey);

    json_t *server = json_object();
    set_string(server, "id", out->server_id);
    set_string(server, "name", out->server_name);
    set_object(event, "server", server);

    json_t *client = json_object();
    set_string(client, "host", out->client_host);
    set_integer(client, "id", (json_int_t)out->client_id);
    set_string(client, "name", out->client_name);
    set_string(client, "kind", out->client_kind);
    set_string(client, "type", out->client_type);
    set_object(event, "client", client);

    json_t *svid = json_object();
    set_string(svid, "serial", out->svid_serial);
    set_string(svid, "fingerprint_sha256", out->svid_fingerprint);
    set_integer(svid, "not_after", out->svid_not_after);
    set_object(event, "svid", svid);

    if (out->jwt_svid_used) {
        json_t *jwt_svid = json_object();
        set_integer(jwt_svid, "exp", out->jwt_svid_exp);
        json_object_set_new(event, "jwt_svid", jwt_svid);
    }
    set_integer(event, "user_jwt_exp", out->user_jwt_exp);
    json_object_set_new(event, "encrypted", json_boolean(out->encrypted));
    return event;
}

/* ---- public -------------------------------------------------------------- */

static cc_decision_code run_steps(pipeline *p)
{
    cc_decision_code code = open_request(p);
    if (code == CC_DECISION_ALLOWED)
        code = decode_request(p);
    if (code == CC_DECISION_ALLOWED)
        code = verify_credentials(p);
    if (code == CC_DECISION_ALLOWED)
        code = apply_policy(p);
    if (code == CC_DECISION_ALLOWED)
        code = issue_user_jwt(p);
    return code;
}

static bool context_usable(const cc_decision_context *ctx, const cc_decision_request *req)
{
    return ctx != NULL && req != NULL && ctx->issuer != NULL && ctx->issuer->kind == CC_NKEY_ACCOUNT &&
           ctx->bundles != NULL && (ctx->xkey == NULL || ctx->xkey->kind == CC_NKEY_CURVE);
}

cc_status cc_decision_evaluate(const cc_decision_context *ctx, const cc_decision_request *req,
                               cc_decision *out, cc_err *err)
{
    pipeline p = {.ctx = ctx, .req = req, .out = out};
    cc_decision_code code;

    memset(out, 0, sizeof(*out));
    int64_t now = ctx != NULL ? ctx->now : 0;
    if (sodium_init() < 0) {
        code = fail(&p, CC_ERR_INTERNAL, "libsodium failed to initialise", NULL);
        goto finish;
    }
    make_decision_id(now, out->id);

    if (!context_usable(ctx, req)) {
        code = fail(&p, CC_ERR_INVALID,
                    "the decision context needs an account issuer key, a bundle set and, if "
                    "set, a curve xkey",
                    NULL);
        goto finish;
    }

    code = run_steps(&p);

    cc_err e = {0};
    cc_status st = build_response(&p, code, &e);
    if (st != CC_OK) {
        code = fail(&p, st, "building the authorization response", &e);
        free(out->response);
        out->response = NULL;
        out->response_len = 0;
    }

finish:
    out->code = code;
    out->allowed = code == CC_DECISION_ALLOWED && out->response_len > 0;
    out->reason = strdup(p.reason);
    out->audit = build_audit_event(out, now);
    if (p.internal_status == CC_OK && (out->reason == NULL || out->audit == NULL))
        fail(&p, CC_ERR_NOMEM, "building the audit event", NULL);

    if (p.decoded)
        cc_auth_request_free(&p.request);
    if (p.user_jwt != NULL) {
        sodium_memzero(p.user_jwt, strlen(p.user_jwt));
        free(p.user_jwt);
    }
    free(p.token);

    if (p.internal_status != CC_OK) {
        out->allowed = false;
        if (err != NULL)
            *err = p.internal_err;
        return p.internal_status;
    }
    return CC_OK;
}

json_t *cc_decision_take_audit(cc_decision *decision)
{
    json_t *audit = decision->audit;
    decision->audit = NULL;
    return audit;
}

void cc_decision_clear(cc_decision *decision)
{
    if (decision == NULL)
        return;

    free(decision->reason);
    free(decision->spiffe_id);
    free(decision->trust_domain);
    free(decision->claimed_spiffe_id);
    free(decision->claimed_trust_domain);
    free(decision->rule);
    free(decision->account);
    free(decision->user_nkey);
    free(decision->server_id);
    free(decision->server_name);
    free(decision->client_host);
    free(decision->client_name);
    free(decision->client_kind);
    free(decision->client_type);
    free(decision->svid_serial);
    free(decision->svid_fingerprint);
    free(decision->response);
    json_decref(decision->audit);
    memset(decision, 0, sizeof(*decision));
}
