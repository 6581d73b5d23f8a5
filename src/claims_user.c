/* User JWT claims: validation, building and decoding.
 *
 * The builder is deliberately stricter than nats-server: it always writes
 * both permission sides, and a side without allow entries becomes deny
 * [">"], because a missing or empty permission means "allow everything" to
 * the server. It also checks every subject, time window, CIDR and connection
 * type up front, so a mistake in a policy fails here with a message instead
 * of as a bare "Authorization Violation" at the client. */
#include "citadel/claims.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "claims_internal.h"

/* The connection types that nats-server 2.10 recognizes. */
static const char *const connection_types[] = {"STANDARD",    "WEBSOCKET", "LEAFNODE",
                                               "LEAFNODE_WS", "MQTT",      "MQTT_WS"};

void cc_user_claims_init(cc_user_claims *claims)
{
    memset(claims, 0, sizeof(*claims));
    claims->subs = CC_USER_NO_LIMIT;
    claims->data = CC_USER_NO_LIMIT;
    claims->payload = CC_USER_NO_LIMIT;
}

/* ---- validation -------------------------------------------------------- */

static bool has_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)text[i]))
            return true;
    }
    return false;
}

/* Checks the subject part of a permission entry, using nats-server's rules:
 * no empty tokens, and ">" only as the last token. */
static cc_status check_subject_tokens(const char *entry, size_t len, cc_err *err)
{
    if (has_whitespace(entry, len))
        return cc_err_set(err, CC_ERR_INVALID, "permission subject \"%s\" contains whitespace",
                          entry);
    if (entry[0] == '.' || entry[len - 1] == '.')
        return cc_err_set(err, CC_ERR_INVALID,
                          "permission subject \"%s\" has a leading or trailing dot", entry);

    size_t token_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && entry[i] != '.')
            continue;
        size_t token_len = i - token_start;
        if (token_len == 0)
            return cc_err_set(err, CC_ERR_INVALID, "permission subject \"%s\" has a doubled dot",
                              entry);
        if (token_len == 1 && entry[token_start] == '>' && i < len)
            return cc_err_set(err, CC_ERR_INVALID,
                              "permission subject \"%s\" has \">\" before its last token; \">\" "
                              "may only end a subject",
                              entry);
        token_start = i + 1;
    }
    return CC_OK;
}

cc_status cc_claims_validate_subject(const char *subject, bool allow_queue, cc_err *err)
{
    if (subject == NULL || subject[0] == '\0')
        return cc_err_set(err, CC_ERR_INVALID, "permission subject is empty");

    const char *space = strchr(subject, ' ');
    if (space == NULL)
        return check_subject_tokens(subject, strlen(subject), err);

    if (!allow_queue)
        return cc_err_set(err, CC_ERR_INVALID,
                          "permission subject \"%s\" contains a space; the queue form "
                          "\"subject queue\" is allowed only in sub permissions",
                          subject);
    const char *queue = space + 1;
    if (queue[0] == '\0' || has_whitespace(queue, strlen(queue)))
        return cc_err_set(err, CC_ERR_INVALID,
                          "permission \"%s\" has an invalid queue group; expected "
                          "\"subject queue\" with one space and a non-empty queue name",
                          subject);
    if (space == subject)
        return cc_err_set(err, CC_ERR_INVALID, "permission \"%s\" has an empty subject", subject);

    cc_status status = check_subject_tokens(subject, (size_t)(space - subject), err);
    return status;
}

static cc_status check_permission(const cc_user_permission *perm, const char *side,
                                  bool allow_queue, cc_err *err)
{
    const cc_claims_strings *lists[] = {&perm->allow, &perm->deny};
    const char *names[] = {"allow", "deny"};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l]->count; i++) {
            cc_status status = cc_claims_validate_subject(lists[l]->items[i], allow_queue, err);
            if (status != CC_OK) {
                cc_err_prefix(err, "%s.%s[%zu]", side, names[l], i);
                return status;
            }
        }
    }
    return CC_OK;
}

/* Checks "HH:MM:SS" with a 24-hour clock. */
static bool is_clock_time(const char *text)
{
    if (text == NULL || strlen(text) != 8 || text[2] != ':' || text[5] != ':')
        return false;
    for (size_t i = 0; i < 8; i++) {
        if (i != 2 && i != 5 && !isdigit((unsigned char)text[i]))
            return false;
    }
    int hours = (text[0] - '0') * 10 + (text[1] - '0');
    int minutes = (text[3] - '0') * 10 + (text[4] - '0');
    int seconds = (text[6] - '0') * 10 + (text[7] - '0');
    return hours < 24 && minutes < 60 && seconds < 60;
}

/* Checks "address/prefix" for IPv4 or IPv6, as Go's net.ParseCIDR does. */
static bool is_cidr(const char *text)
{
    const char *slash = strchr(text, '/');
    if (slash == NULL || slash == text || (size_t)(slash - text) >= INET6_ADDRSTRLEN)
        return false;

    char address[INET6_ADDRSTRLEN];
    memcpy(address, text, (size_t)(slash - text));
    address[slash - text] = '\0';
    unsigned char raw[16];
    int max_prefix;
    if (inet_pton(AF_INET, address, raw) == 1)
        max_prefix = 32;
    else if (inet_pton(AF_INET6, address, raw) == 1)
        max_prefix = 128;
    else
        return false;

    const char *digits = slash + 1;
    size_t digit_count = strlen(digits);
    if (digit_count == 0 || digit_count > 3)
        return false;
    for (size_t i = 0; i < digit_count; i++) {
        if (!isdigit((unsigned char)digits[i]))
            return false;
    }
    return atoi(digits) <= max_prefix;
}

/* Checks the characters of an IANA zone name such as "Europe/Berlin". */
static bool is_zone_name(const char *text)
{
    if (text[0] == '\0' || text[0] == '/' || strstr(text, "..") != NULL)
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && strchr("/_+-", *p) == NULL)
            return false;
    }
    return true;
}

static bool is_connection_type(const char *text)
{
    for (size_t i = 0; i < sizeof(connection_types) / sizeof(connection_types[0]); i++) {
        if (strcmp(text, connection_types[i]) == 0)
            return true;
    }
    return false;
}

static cc_status check_limits(const cc_user_claims *claims, cc_err *err)
{
    for (size_t i = 0; i < claims->src.count; i++) {
        if (!is_cidr(claims->src.items[i]))
            return cc_err_set(err, CC_ERR_INVALID,
                              "src[%zu] \"%s\" is not a CIDR range such as 10.0.0.0/8", i,
                              claims->src.items[i]);
    }
    for (size_t i = 0; i < claims->time_count; i++) {
        const cc_user_time_range *range = &claims->times[i];
        if (!is_clock_time(range->start) || !is_clock_time(range->end))
            return cc_err_set(err, CC_ERR_INVALID,
                              "times[%zu] must have start and end as \"HH:MM:SS\" (24-hour)", i);
    }
    /* NOTE: only the characters are checked; nats-server rejects a zone name
     * that its Go time zone database does not contain. */
    if (cc_claims_is_set(claims->times_location) && !is_zone_name(claims->times_location))
        return cc_err_set(err, CC_ERR_INVALID,
                          "times_location \"%s\" is not an IANA time zone name such as "
                          "\"Europe/Berlin\"",
                          claims->times_location);

    const struct {
        const char *name;
        int64_t value;
    } limits[] = {{"subs", claims->subs}, {"data", claims->data}, {"payload", claims->payload}};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (limits[i].value < CC_USER_NO_LIMIT)
            return cc_err_set(err, CC_ERR_INVALID,
                              "user limit %s is %lld; use -1 for no limit or a value >= 0",
                              limits[i].name, (long long)limits[i].value);
    }
    if (claims->has_resp && (claims->resp_max < 0 || claims->resp_ttl_ns < 0))
        return cc_err_set(err, CC_ERR_INVALID, "resp max and ttl must not be negative");

    for (size_t i = 0; i < claims->allowed_connection_types.count; i++) {
        const char *type = claims->allowed_connection_types.items[i];
        if (!is_connection_type(type))
            return cc_err_set(err, CC_ERR_INVALID,
                              "allowed_connection_types[%zu] \"%s\" is unknown; use STANDARD, "
                              "WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT or MQTT_WS",
                              i, type);
    }
    return CC_OK;
}

static cc_status check_user_claims(const cc_user_claims *claims, const cc_nkey *signer, cc_err *err)
{
    if (signer->kind != CC_NKEY_ACCOUNT)
        return cc_err_set(err, CC_ERR_INVALID,
                          "a user JWT must be signed by an account key, not a %s key",
                          cc_nkey_kind_name(signer->kind));
    cc_status status =
        cc_claims_require_key(claims->subject, CC_NKEY_USER, "user JWT subject", err);
    if (status != CC_OK)
        return status;
    if (!cc_claims_is_set(claims->audience))
        return cc_err_set(err, CC_ERR_INVALID,
                          "user JWT audience is empty; set it to the target account name");
    if (claims->exp < 0 || claims->nbf < 0)
        return cc_err_set(err, CC_ERR_INVALID, "user JWT exp and nbf must not be negative");
    if (cc_claims_is_set(claims->issuer_account)) {
        status = cc_claims_require_key(claims->issuer_account, CC_NKEY_ACCOUNT,
                                       "user JWT issuer_account", err);
        if (status != CC_OK)
            return status;
    }

    status = check_permission(&claims->pub, "pub", false, err);
    if (status == CC_OK)
        status = check_permission(&claims->sub, "sub", true, err);
    if (status == CC_OK)
        status = check_limits(claims, err);
    return status;
}

/* ---- building ---------------------------------------------------------- */

/* Sets obj[key] to a new value; a NULL value (out of memory) fails. */
static bool set_new(json_t *obj, const char *key, json_t *value)
{
    return value != NULL && json_object_set_new(obj, key, value) == 0;
}

static json_t *permission_to_json(const cc_user_permission *perm)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;

    bool ok;
    if (perm->allow.count == 0) {
        /* Without allow entries nats-server would allow everything. */
        ok = set_new(obj, "deny", json_pack("[s]", ">"));
    } else {
        ok = set_new(obj, "allow", cc_claims_strings_to_json(&perm->allow));
        if (ok && perm->deny.count > 0)
            ok = set_new(obj, "deny", cc_claims_strings_to_json(&perm->deny));
    }
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *times_to_json(const cc_user_claims *claims)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < claims->time_count; i++) {
        json_t *range =
            json_pack("{s:s, s:s}", "start", claims->times[i].start, "end", claims->times[i].end);
        if (range == NULL || json_array_append_new(array, range) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

/* Fills nats with the user fields in nats-io/jwt order. */
static bool fill_user_nats(json_t *nats, const cc_user_claims *claims)
{
    bool ok = set_new(nats, "pub", permission_to_json(&claims->pub)) &&
              set_new(nats, "sub", permission_to_json(&claims->sub));
    if (ok && claims->has_resp)
        ok = set_new(nats, "resp",
                     json_pack("{s:I, s:I}", "max", (json_int_t)claims->resp_max, "ttl",
                               (json_int_t)claims->resp_ttl_ns));
    if (ok && claims->src.count > 0)
        ok = set_new(nats, "src", cc_claims_strings_to_json(&claims->src));
    if (ok && claims->time_count > 0)
        ok = set_new(nats, "times", times_to_json(claims));
    if (ok && cc_claims_is_set(claims->times_location))
        ok = set_new(nats, "times_location", json_string(claims->times_location));

    /* Go omits zero limits (omitempty); -1 means no limit and is written. */
    const struct {
        const char *name;
        int64_t value;
    } limits[] = {{"subs", claims->subs}, {"data", claims->data}, {"payload", claims->payload}};
    for (size_t i = 0; ok && i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (limits[i].value != 0)
            ok = set_new(nats, limits[i].name, json_integer(limits[i].value));
    }

    if (ok && claims->bearer_token)
        ok = set_new(nats, "bearer_token", json_true());
    if (ok && claims->allowed_connection_types.count > 0)
        ok = set_new(nats, "allowed_connection_types",
                     cc_claims_strings_to_json(&claims->allowed_connection_types));
    if (ok && cc_claims_is_set(claims->issuer_account))
        ok = set_new(nats, "issuer_account", json_string(claims->issuer_account));
    if (ok && claims->tags.count > 0)
        ok = set_new(nats, "tags", cc_claims_strings_to_json(&claims->tags));
    return ok && set_new(nats, "type", json_string("user")) &&
           set_new(nats, "version", json_integer(2));
}

cc_status cc_user_claims_encode(const cc_user_claims *claims, const cc_nkey *signer, int64_t iat,
                                char **out, cc_err *err)
{
    *out = NULL;
    cc_status status = check_user_claims(claims, signer, err);
    if (status != CC_OK)
        return status;

    json_t *nats = json_object();
    json_t *base = json_object();
    bool ok = nats != NULL && base != NULL && fill_user_nats(nats, claims) &&
              set_new(base, "aud", json_string(claims->audience)) &&
              set_new(base, "sub", json_string(claims->subject));
    if (ok && claims->exp != 0)
        ok = set_new(base, "exp", json_integer(claims->exp));
    if (ok && claims->nbf != 0)
        ok = set_new(base, "nbf", json_integer(claims->nbf));
    if (ok && cc_claims_is_set(claims->name))
        ok = set_new(base, "name", json_string(claims->name));
    ok = ok && json_object_set(base, "nats", nats) == 0;

    if (!ok)
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory building a user JWT");
    else
        status = cc_jwt_encode(base, signer, iat, out, err);
    json_decref(nats);
    json_decref(base);
    return status;
}

/* ---- decoding ---------------------------------------------------------- */

static cc_status read_permission(const json_t *nats, const char *side, cc_user_permission *out,
                                 cc_err *err)
{
    cc_status status = CC_OK;
    const json_t *obj = cc_claims_read_object(nats, "nats", side, &status, err);
    if (status != CC_OK || obj == NULL)
        return status;

    char where[16];
    snprintf(where, sizeof(where), "nats.%s", side);
    status = cc_claims_read_strings(obj, where, "allow", &out->allow, err);
    if (status == CC_OK)
        status = cc_claims_read_strings(obj, where, "deny", &out->deny, err);
    return status;
}

static cc_status read_resp(const json_t *nats, cc_user_claims *out, cc_err *err)
{
    cc_status status = CC_OK;
    const json_t *obj = cc_claims_read_object(nats, "nats", "resp", &status, err);
    if (status != CC_OK || obj == NULL)
        return status;

    out->has_resp = true;
    status = cc_claims_read_int(obj, "nats.resp", "max", &out->resp_max, err);
    if (status == CC_OK)
        status = cc_claims_read_int(obj, "nats.resp", "ttl", &out->resp_ttl_ns, err);
    return status;
}

static cc_status read_times(const json_t *nats, cc_user_claims *out, cc_err *err)
{
    json_t *times = json_object_get(nats, "times");
    if (times == NULL || json_is_null(times))
        return CC_OK;
    if (!json_is_array(times))
        return cc_err_set(err, CC_ERR_INVALID, "nats.times must be an array");
    size_t count = json_array_size(times);
    if (count == 0)
        return CC_OK;

    out->times = calloc(count, sizeof(*out->times));
    if (out->times == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading nats.times");
    out->time_count = count;
    for (size_t i = 0; i < count; i++) {
        json_t *range = json_array_get(times, i);
        char where[48];
        snprintf(where, sizeof(where), "nats.times[%zu]", i);
        if (!json_is_object(range))
            return cc_err_set(err, CC_ERR_INVALID, "%s must be an object", where);
        cc_status status = cc_claims_read_string(range, where, "start", &out->times[i].start, err);
        if (status == CC_OK)
            status = cc_claims_read_string(range, where, "end", &out->times[i].end, err);
        if (status != CC_OK)
            return status;
    }
    return CC_OK;
}

static cc_status read_bearer(const json_t *nats, bool *out, cc_err *err)
{
    json_t *value = json_object_get(nats, "bearer_token");
    *out = false;
    if (value == NULL || json_is_null(value))
        return CC_OK;
    if (!json_is_boolean(value))
        return cc_err_set(err, CC_ERR_INVALID, "nats.bearer_token must be true or false");
    *out = json_is_true(value);
    return CC_OK;
}

static cc_status read_user_nats(const json_t *nats, cc_user_claims *out, cc_err *err)
{
    cc_status status = read_permission(nats, "pub", &out->pub, err);
    if (status == CC_OK)
        status = read_permission(nats, "sub", &out->sub, err);
    if (status == CC_OK)
        status = read_resp(nats, out, err);
    if (status == CC_OK)
        status = cc_claims_read_strings(nats, "nats", "src", &out->src, err);
    if (status == CC_OK)
        status = read_times(nats, out, err);
    if (status == CC_OK)
        status = cc_claims_read_string(nats, "nats", "times_location", &out->times_location, err);
    if (status == CC_OK)
        status = cc_claims_read_int(nats, "nats", "subs", &out->subs, err);
    if (status == CC_OK)
        status = cc_claims_read_int(nats, "nats", "data", &out->data, err);
    if (status == CC_OK)
        status = cc_claims_read_int(nats, "nats", "payload", &out->payload, err);
    if (status == CC_OK)
        status = read_bearer(nats, &out->bearer_token, err);
    if (status == CC_OK)
        status = cc_claims_read_strings(nats, "nats", "allowed_connection_types",
                                        &out->allowed_connection_types, err);
    if (status == CC_OK)
        status = cc_claims_read_strings(nats, "nats", "tags", &out->tags, err);
    if (status == CC_OK)
        status = cc_claims_read_string(nats, "nats", "issuer_account", &out->issuer_account, err);
    return status;
}

cc_status cc_user_claims_decode(const char *token, size_t len, int64_t now, cc_user_claims *out,
                                cc_err *err)
{
    memset(out, 0, sizeof(*out));
    cc_status status = cc_jwt_decode(token, len, CC_NKEY_ACCOUNT, now, &out->jwt, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "invalid user JWT");
        return status;
    }

    const cc_jwt *jwt = &out->jwt;
    out->subject = jwt->sub != NULL ? jwt->sub : "";
    out->audience = jwt->aud != NULL ? jwt->aud : "";
    out->name = jwt->name != NULL ? jwt->name : "";
    out->exp = jwt->exp;
    out->nbf = jwt->nbf;
    status = cc_claims_require_type(jwt, "user", err);
    if (status == CC_OK)
        status = cc_claims_require_key(out->subject, CC_NKEY_USER, "user JWT subject", err);
    if (status == CC_OK)
        status = read_user_nats(jwt->nats, out, err);
    if (status == CC_OK && cc_claims_is_set(out->issuer_account))
        status = cc_claims_require_key(out->issuer_account, CC_NKEY_ACCOUNT,
                                       "user JWT issuer_account", err);
    if (status == CC_OK)
        return CC_OK;

    cc_err_prefix(err, "invalid user JWT");
    cc_user_claims_free(out);
    return status;
}

void cc_user_claims_free(cc_user_claims *claims)
{
    if (claims == NULL || claims->jwt.token == NULL)
        return;
    cc_claims_strings_free(&claims->pub.allow);
    cc_claims_strings_free(&claims->pub.deny);
    cc_claims_strings_free(&claims->sub.allow);
    cc_claims_strings_free(&claims->sub.deny);
    cc_claims_strings_free(&claims->src);
    cc_claims_strings_free(&claims->allowed_connection_types);
    cc_claims_strings_free(&claims->tags);
    free(claims->times);
    cc_jwt_free(&claims->jwt);
    memset(claims, 0, sizeof(*claims));
}
