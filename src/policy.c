/* Policy files: loading, validation and lookup by SPIFFE ID.
 *
 * A set owns an array of rules in load order and an index of rule pointers
 * sorted by SPIFFE ID, so a lookup is a binary search and duplicate IDs show
 * up as neighbours after sorting. Every error names the policy file, the rule
 * (by name, or by position while the name is still unknown) and the key. */
#include "citadel/policy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "citadel/log.h"
#include "citadel/spiffeid.h"

struct cc_policy_set {
    atomic_int refs;
    cc_policy_rule *rules;
    size_t count;
    cc_policy_rule **by_spiffe_id; /* sorted by spiffe_id */
};

/* Where a value sits, for error messages: "policy FILE, rule NAME". */
typedef struct rule_context {
    const char *file;
    char rule[160];
} rule_context;

static const char *const connection_type_names[] = {
    "STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS",
};

static const char *const rule_keys[] = {
    "name",      "spiffe_id", "account",          "max_ttl_seconds", "publish",
    "subscribe", "response",  "connection_types", "source_cidrs",
};

/* ---- small helpers ---------------------------------------------------- */

static bool name_in(const char *name, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

static cc_status reject(cc_err *err, const rule_context *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cc_status reject(cc_err *err, const rule_context *ctx, const char *key, const char *fmt, ...)
{
    char text[CC_ERR_MESSAGE_MAX];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    return cc_err_set(err, CC_ERR_INVALID, "policy %s, %s, key \"%s\": %s", ctx->file, ctx->rule,
                      key, text);
}

/* Rejects any key of object that is not in allowed. */
static cc_status check_keys(json_t *object, const char *const *allowed, size_t count,
                            const rule_context *ctx, const char *where, cc_err *err)
{
    const char *key;
    json_t *value;

    json_object_foreach(object, key, value)
    {
        (void)value;
        if (name_in(key, allowed, count))
            continue;

        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", where, where[0] != '\0' ? "." : "", key);
        return reject(err, ctx, path,
                      "unknown key; remove it or correct its spelling (unknown keys are "
                      "rejected so that a typo cannot change access)");
    }
    return CC_OK;
}

static void free_strings(char **strings, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

static void free_rule(cc_policy_rule *rule)
{
    free(rule->name);
    free(rule->spiffe_id);
    free(rule->account);
    free_strings(rule->publish.allow, rule->publish.allow_count);
    free_strings(rule->publish.deny, rule->publish.deny_count);
    free_strings(rule->subscribe.allow, rule->subscribe.allow_count);
    free_strings(rule->subscribe.deny, rule->subscribe.deny_count);
    free_strings(rule->connection_types, rule->connection_type_count);
    free(rule->source_cidrs);
    free(rule->source_file);
    memset(rule, 0, sizeof(*rule));
}

static void free_set(cc_policy_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        free_rule(&set->rules[i]);
    free(set->rules);
    free(set->by_spiffe_id);
    free(set);
}

/* ---- subjects --------------------------------------------------------- */

static bool has_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
            return true;
    }
    return false;
}

static cc_status check_subject_tokens(const char *subject, size_t len, cc_err *err)
{
    if (len == 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "subject is empty; give a subject such as \"app.>\"");
    if (has_whitespace(subject, len))
        return cc_err_set(err, CC_ERR_INVALID, "subject \"%.*s\" contains whitespace", (int)len,
                          subject);
    if (subject[0] == '.' || subject[len - 1] == '.')
        return cc_err_set(err, CC_ERR_INVALID,
                          "subject \"%.*s\" starts or ends with a dot; remove the dot", (int)len,
                          subject);

    size_t token_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && subject[i] != '.')
            continue;

        size_t token_len = i - token_start;
        if (token_len == 0)
            return cc_err_set(err, CC_ERR_INVALID,
                              "subject \"%.*s\" has an empty token (\"..\"); remove the extra dot",
                              (int)len, subject);
        bool is_full_wildcard = token_len == 1 && subject[token_start] == '>';
        if (is_full_wildcard && i != len)
            return cc_err_set(err, CC_ERR_INVALID,
                              "subject \"%.*s\" uses \">\" before the last token; \">\" may only "
                              "be the last token",
                              (int)len, subject);
        token_start = i + 1;
    }
    return CC_OK;
}

cc_status cc_policy_subject_check(const char *subject, bool allow_queue, cc_err *err)
{
    size_t len = strlen(subject);
    const char *space = strchr(subject, ' ');

    if (!allow_queue || space == NULL)
        return check_subject_tokens(subject, len, err);

    /* "SUBJECT QUEUE": one space, a valid subject before it and a queue name after it. */
    const char *queue = space + 1;
    cc_status status = check_subject_tokens(subject, (size_t)(space - subject), err);
    if (status != CC_OK)
        return status;
    if (*queue == '\0' || has_whitespace(queue, strlen(queue)))
        return cc_err_set(err, CC_ERR_INVALID,
                          "\"%s\" is not \"SUBJECT QUEUE\": the queue name after the single "
                          "space is empty or contains whitespace",
                          subject);
    return CC_OK;
}

/* ---- CIDRs ------------------------------------------------------------ */

static bool parse_prefix_len(const char *text, unsigned max, unsigned *out)
{
    if (*text == '\0' || strlen(text) > 3)
        return false;

    unsigned value = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        value = value * 10 + (unsigned)(*p - '0');
    }
    if (value > max || (text[0] == '0' && text[1] != '\0'))
        return false;
    *out = value;
    return true;
}

static bool host_bits_zero(const uint8_t *address, size_t address_len, unsigned prefix_len)
{
    for (size_t bit = prefix_len; bit < address_len * 8; bit++) {
        if (address[bit / 8] & (0x80u >> (bit % 8)))
            return false;
    }
    return true;
}

cc_status cc_policy_cidr_parse(const char *text, cc_policy_cidr *out, cc_err *err)
{
    char address[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t address_len = slash != NULL ? (size_t)(slash - text) : 0;

    if (slash == NULL || address_len == 0 || address_len >= sizeof(address))
        return cc_err_set(err, CC_ERR_INVALID,
                          "CIDR \"%s\" is not ADDRESS/PREFIX; write it as \"10.0.0.0/8\" or "
                          "\"fd00::/8\"",
                          text);
    memcpy(address, text, address_len);
    address[address_len] = '\0';

    cc_policy_cidr cidr = {0};
    size_t bytes;
    if (inet_pton(AF_INET, address, cidr.address) == 1) {
        cidr.family = AF_INET;
        bytes = 4;
    } else if (inet_pton(AF_INET6, address, cidr.address) == 1) {
        cidr.family = AF_INET6;
        bytes = 16;
    } else {
        return cc_err_set(err, CC_ERR_INVALID,
                          "CIDR \"%s\": \"%s\" is not a numeric IPv4 or IPv6 address", text,
                          address);
    }

    if (!parse_prefix_len(slash + 1, (unsigned)bytes * 8, &cidr.prefix_len))
        return cc_err_set(err, CC_ERR_INVALID,
                          "CIDR \"%s\": the prefix length must be a number from 0 to %u", text,
                          (unsigned)bytes * 8);
    if (!host_bits_zero(cidr.address, bytes, cidr.prefix_len))
        return cc_err_set(err, CC_ERR_INVALID,
                          "CIDR \"%s\" has host bits set below the /%u prefix; write the network "
                          "address instead",
                          text, cidr.prefix_len);
    *out = cidr;
    return CC_OK;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix_len)
{
    unsigned full = prefix_len / 8;
    unsigned rest = prefix_len % 8;

    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

bool cc_policy_cidr_contains(const cc_policy_cidr *cidr, const char *host)
{
    char text[INET6_ADDRSTRLEN + 1];
    size_t len = strlen(host);

    /* Accept "[::1]" as well as "::1". */
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(text))
        return false;
    memcpy(text, host, len);
    text[len] = '\0';

    uint8_t address[16];
    if (inet_pton(AF_INET, text, address) == 1) {
        if (cidr->family == AF_INET)
            return prefix_equal(address, cidr->address, cidr->prefix_len);
        uint8_t mapped[16];
        memcpy(mapped, v4_mapped_prefix, 12);
        memcpy(mapped + 12, address, 4);
        return prefix_equal(mapped, cidr->address, cidr->prefix_len);
    }
    if (inet_pton(AF_INET6, text, address) != 1)
        return false;
    if (cidr->family == AF_INET6)
        return prefix_equal(address, cidr->address, cidr->prefix_len);
    if (memcmp(address, v4_mapped_prefix, 12) != 0)
        return false;
    return prefix_equal(address + 12, cidr->address, cidr->prefix_len);
}

bool cc_policy_rule_allows_host(const cc_policy_rule *rule, const char *host)
{
    if (rule->source_cidr_count == 0)
        return true;
    if (host == NULL)
        return false;
    for (size_t i = 0; i < rule->source_cidr_count; i++) {
        if (cc_policy_cidr_contains(&rule->source_cidrs[i], host))
            return true;
    }
    return false;
}

bool cc_policy_rule_allows_connection_type(const cc_policy_rule *rule, const char *type)
{
    if (rule->connection_type_count == 0)
        return true;
    if (type == NULL)
        return false;
    return name_in(type, (const char *const *)rule->connection_types, rule->connection_type_count);
}

/* ---- rule parsing ----------------------------------------------------- */

/* Copies a JSON array of strings after checking each with check (may be NULL). */
static cc_status parse_string_array(json_t *value, const rule_context *ctx, const char *key,
                                    cc_status (*check)(const char *, bool, cc_err *),
                                    bool allow_queue, char ***out, size_t *out_count, cc_err *err)
{
    if (!json_is_array(value))
        return reject(err, ctx, key, "must be an array of strings, such as [\"app.>\"]");

    size_t count = json_array_size(value);
    char **strings = calloc(count > 0 ? count : 1, sizeof(*strings));
    if (strings == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policy %s", ctx->file);

    cc_status status = CC_OK;
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item)
    {
        char item_key[200];
        snprintf(item_key, sizeof(item_key), "%s[%zu]", key, i);
        if (!json_is_string(item)) {
            status = reject(err, ctx, item_key, "must be a string");
            goto cleanup;
        }

        const char *text = json_string_value(item);
        if (strlen(text) != json_string_length(item)) {
            status = reject(err, ctx, item_key, "contains a NUL character; remove it");
            goto cleanup;
        }
        if (check != NULL) {
            cc_err detail = {0};
            if (check(text, allow_queue, &detail) != CC_OK) {
                status = reject(err, ctx, item_key, "%s", detail.message);
                goto cleanup;
            }
        }
        strings[i] = strdup(text);
        if (strings[i] == NULL) {
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policy %s", ctx->file);
            goto cleanup;
        }
    }
    *out = strings;
    *out_count = count;
    return CC_OK;

cleanup:
    free_strings(strings, count);
    return status;
}

static cc_status parse_permission(json_t *value, const rule_context *ctx, const char *key,
                                  bool allow_queue, cc_policy_permission *out, cc_err *err)
{
    static const char *const keys[] = {"allow", "deny"};

    if (!json_is_object(value))
        return reject(err, ctx, key,
                      "must be an object such as {\"allow\": [\"app.>\"], \"deny\": []}");
    cc_status status = check_keys(value, keys, 2, ctx, key, err);
    if (status != CC_OK)
        return status;

    char list_key[64];
    json_t *allow = json_object_get(value, "allow");
    if (allow != NULL) {
        snprintf(list_key, sizeof(list_key), "%s.allow", key);
        status = parse_string_array(allow, ctx, list_key, cc_policy_subject_check, allow_queue,
                                    &out->allow, &out->allow_count, err);
        if (status != CC_OK)
            return status;
    }

    json_t *deny = json_object_get(value, "deny");
    if (deny != NULL) {
        snprintf(list_key, sizeof(list_key), "%s.deny", key);
        status = parse_string_array(deny, ctx, list_key, cc_policy_subject_check, allow_queue,
                                    &out->deny, &out->deny_count, err);
    }
    return status;
}

/* Reads an integer in [min, max] (max < 0: no upper bound). */
static cc_status parse_integer(json_t *value, const rule_context *ctx, const char *key, int64_t min,
                               int64_t max, int64_t *out, cc_err *err)
{
    if (!json_is_integer(value))
        return reject(err, ctx, key, "must be an integer");

    int64_t number = json_integer_value(value);
    char range[96];
    if (max >= 0)
        snprintf(range, sizeof(range), "from %lld to %lld", (long long)min, (long long)max);
    else
        snprintf(range, sizeof(range), "at least %lld", (long long)min);
    if (number < min || (max >= 0 && number > max))
        return reject(err, ctx, key, "is out of range; use an integer %s", range);
    *out = number;
    return CC_OK;
}

static cc_status parse_response(json_t *value, const rule_context *ctx, cc_policy_rule *rule,
                                cc_err *err)
{
    static const char *const keys[] = {"max", "ttl_ms"};

    if (!json_is_object(value))
        return reject(err, ctx, "response",
                      "must be an object such as {\"max\": 1, "
                      "\"ttl_ms\": 0}");
    cc_status status = check_keys(value, keys, 2, ctx, "response", err);
    if (status != CC_OK)
        return status;

    rule->has_response = true;
    json_t *max = json_object_get(value, "max");
    if (max != NULL) {
        status = parse_integer(max, ctx, "response.max", 0, INT32_MAX, &rule->response_max, err);
        if (status != CC_OK)
            return status;
    }
    json_t *ttl = json_object_get(value, "ttl_ms");
    if (ttl != NULL) {
        /* The user JWT carries the TTL in nanoseconds, so keep ms * 1e6 inside int64. */
        status = parse_integer(ttl, ctx, "response.ttl_ms", 0, INT64_MAX / 1000000,
                               &rule->response_ttl_ms, err);
    }
    return status;
}

static cc_status parse_connection_types(json_t *value, const rule_context *ctx,
                                        cc_policy_rule *rule, cc_err *err)
{
    cc_status status =
        parse_string_array(value, ctx, "connection_types", NULL, false, &rule->connection_types,
                           &rule->connection_type_count, err);
    if (status != CC_OK)
        return status;

    size_t known = sizeof(connection_type_names) / sizeof(connection_type_names[0]);
    for (size_t i = 0; i < rule->connection_type_count; i++) {
        if (name_in(rule->connection_types[i], connection_type_names, known))
            continue;
        char key[64];
        snprintf(key, sizeof(key), "connection_types[%zu]", i);
        return reject(err, ctx, key,
                      "unknown connection type \"%s\"; use STANDARD, WEBSOCKET, LEAFNODE, "
                      "LEAFNODE_WS, MQTT or MQTT_WS",
                      rule->connection_types[i]);
    }
    return CC_OK;
}

static cc_status parse_source_cidrs(json_t *value, const rule_context *ctx, cc_policy_rule *rule,
                                    cc_err *err)
{
    if (!json_is_array(value))
        return reject(err, ctx, "source_cidrs",
                      "must be an array of CIDR strings, such as [\"10.0.0.0/8\"]");

    size_t count = json_array_size(value);
    rule->source_cidrs = calloc(count > 0 ? count : 1, sizeof(*rule->source_cidrs));
    if (rule->source_cidrs == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policy %s", ctx->file);

    size_t i;
    json_t *item;
    json_array_foreach(value, i, item)
    {
        char key[64];
        snprintf(key, sizeof(key), "source_cidrs[%zu]", i);
        if (!json_is_string(item))
            return reject(err, ctx, key, "must be a string such as \"10.0.0.0/8\"");

        cc_err detail = {0};
        if (cc_policy_cidr_parse(json_string_value(item), &rule->source_cidrs[i], &detail) != CC_OK)
            return reject(err, ctx, key, "%s", detail.message);
        rule->source_cidr_count = i + 1;
    }
    return CC_OK;
}

static cc_status parse_required_string(json_t *object, const char *key, const rule_context *ctx,
                                       char **out, cc_err *err)
{
    json_t *value = json_object_get(object, key);
    if (value == NULL)
        return reject(err, ctx, key, "is missing; every rule needs a %s", key);
    if (!json_is_string(value) || json_string_length(value) == 0)
        return reject(err, ctx, key, "must be a non-empty string");
    if (strlen(json_string_value(value)) != json_string_length(value))
        return reject(err, ctx, key, "contains a NUL character; remove it");

    *out = strdup(json_string_value(value));
    if (*out == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policy %s", ctx->file);
    return CC_OK;
}

static cc_status parse_spiffe_id(json_t *object, const rule_context *ctx, cc_policy_rule *rule,
                                 cc_err *err)
{
    cc_status status = parse_required_string(object, "spiffe_id", ctx, &rule->spiffe_id, err);
    if (status != CC_OK)
        return status;

    cc_err detail = {0};
    cc_spiffeid parsed;
    if (cc_spiffeid_parse(rule->spiffe_id, strlen(rule->spiffe_id), &parsed, &detail) != CC_OK)
        return reject(err, ctx, "spiffe_id",
                      "%s; write the exact ID, such as \"spiffe://example.org/service\"",
                      detail.message);
    return CC_OK;
}

static bool is_known_account(const cc_policy_defaults *defaults, const char *name)
{
    if (defaults->known_account_count == 0)
        return true;
    for (size_t i = 0; i < defaults->known_account_count; i++) {
        if (strcmp(defaults->known_accounts[i], name) == 0)
            return true;
    }
    return false;
}

static cc_status parse_account_and_ttl(json_t *object, const rule_context *ctx,
                                       const cc_policy_defaults *defaults, cc_policy_rule *rule,
                                       cc_err *err)
{
    json_t *account = json_object_get(object, "account");
    const char *name = defaults->account;
    if (account != NULL) {
        if (!json_is_string(account) || json_string_length(account) == 0 ||
            has_whitespace(json_string_value(account), json_string_length(account)) ||
            strlen(json_string_value(account)) != json_string_length(account))
            return reject(err, ctx, "account",
                          "must be a non-empty account name without whitespace, such as "
                          "\"APP\"");
        name = json_string_value(account);
        if (!is_known_account(defaults, name))
            return reject(err, ctx, "account",
                          "\"%s\" is not in the config's \"accounts\" list; add it there (and "
                          "to the nats-server config) or name an existing account",
                          name);
    }
    rule->account = strdup(name);
    if (rule->account == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policy %s", ctx->file);

    rule->max_ttl_seconds = defaults->max_ttl_seconds;
    json_t *ttl = json_object_get(object, "max_ttl_seconds");
    if (ttl == NULL)
        return CC_OK;
    return parse_integer(ttl, ctx, "max_ttl_seconds", 1, defaults->max_ttl_seconds,
                         &rule->max_ttl_seconds, err);
}

static cc_status parse_optional_parts(json_t *object, const rule_context *ctx, cc_policy_rule *rule,
                                      cc_err *err)
{
    cc_status status = CC_OK;
    json_t *value;

    if ((value = json_object_get(object, "publish")) != NULL)
        status = parse_permission(value, ctx, "publish", false, &rule->publish, err);
    if (status == CC_OK && (value = json_object_get(object, "subscribe")) != NULL)
        status = parse_permission(value, ctx, "subscribe", true, &rule->subscribe, err);
    if (status == CC_OK && (value = json_object_get(object, "response")) != NULL)
        status = parse_response(value, ctx, rule, err);
    if (status == CC_OK && (value = json_object_get(object, "connection_types")) != NULL)
        status = parse_connection_types(value, ctx, rule, err);
    if (status == CC_OK && (value = json_object_get(object, "source_cidrs")) != NULL)
        status = parse_source_cidrs(value, ctx, rule, err);
    return status;
}

static cc_status parse_rule(json_t *object, const char *file, size_t index,
                            const cc_policy_defaults *defaults, cc_policy_rule *rule, cc_err *err)
{
    rule_context ctx = {.file = file};
    snprintf(ctx.rule, sizeof(ctx.rule), "rule #%zu", index + 1);

    if (!json_is_object(object))
        return cc_err_set(err, CC_ERR_INVALID, "policy %s, %s: a rule must be a JSON object", file,
                          ctx.rule);

    /* The name comes first so that later errors can name the rule; unknown
     * keys come next, because a misspelt "spiffe_id" is best reported as such. */
    size_t key_count = sizeof(rule_keys) / sizeof(rule_keys[0]);
    cc_status status = parse_required_string(object, "name", &ctx, &rule->name, err);
    if (status == CC_OK) {
        snprintf(ctx.rule, sizeof(ctx.rule), "rule \"%.120s\"", rule->name);
        status = check_keys(object, rule_keys, key_count, &ctx, "", err);
    }
    if (status == CC_OK)
        status = parse_spiffe_id(object, &ctx, rule, err);
    if (status == CC_OK)
        status = parse_account_and_ttl(object, &ctx, defaults, rule, err);
    if (status == CC_OK)
        status = parse_optional_parts(object, &ctx, rule, err);
    if (status == CC_OK) {
        rule->source_file = strdup(file);
        if (rule->source_file == NULL)
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policy %s", file);
    }
    return status;
}

/* ---- files and the set ------------------------------------------------ */

static cc_status append_rules(cc_policy_set *set, json_t *rules, const char *file,
                              const cc_policy_defaults *defaults, cc_err *err)
{
    size_t added = json_array_size(rules);
    cc_policy_rule *grown = realloc(set->rules, (set->count + added + 1) * sizeof(*grown));
    if (grown == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policy %s", file);
    set->rules = grown;

    for (size_t i = 0; i < added; i++) {
        cc_policy_rule *rule = &set->rules[set->count];
        memset(rule, 0, sizeof(*rule));
        cc_status status = parse_rule(json_array_get(rules, i), file, i, defaults, rule, err);
        if (status != CC_OK) {
            free_rule(rule);
            return status;
        }
        set->count++;
    }
    return CC_OK;
}

static cc_status load_file(cc_policy_set *set, const char *dir, const char *name,
                           const cc_policy_defaults *defaults, cc_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return cc_err_set(err, CC_ERR_INVALID, "policy path %s/%s is too long", dir, name);

    json_error_t json_error;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "policy %s: invalid JSON at line %d: %s", name,
                          json_error.line, json_error.text);

    cc_status status = CC_OK;
    json_t *rules = json_object_get(root, "rules");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(rules)) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "policy %s: the file must be an object with exactly one key, "
                            "\"rules\", whose value is an array of rules",
                            name);
        goto cleanup;
    }
    status = append_rules(set, rules, name, defaults, err);

cleanup:
    json_decref(root);
    return status;
}

static bool is_policy_file(const char *dir, const char *name)
{
    size_t len = strlen(name);
    if (name[0] == '.' || len <= 5 || strcmp(name + len - 5, ".json") != 0)
        return false;

    char path[4096];
    struct stat st;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return true; /* load_file reports the length */
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the policy file names in dir, sorted; the caller frees the list. */
static cc_status list_policy_files(const char *dir, char ***out, size_t *out_count, cc_err *err)
{
    DIR *handle = opendir(dir);
    if (handle == NULL)
        return cc_err_set(err, CC_ERR_IO,
                          "cannot open policy_dir %s: %m; create it or fix the "
                          "path in the config",
                          dir);

    cc_status status = CC_OK;
    char **names = NULL;
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        if (!is_policy_file(dir, entry->d_name))
            continue;
        char **grown = realloc(names, (count + 1) * sizeof(*names));
        if (grown == NULL || (grown[count] = strdup(entry->d_name)) == NULL) {
            names = grown != NULL ? grown : names;
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory listing %s", dir);
            goto cleanup;
        }
        names = grown;
        count++;
    }
    if (count > 1)
        qsort(names, count, sizeof(*names), compare_names);

cleanup:
    closedir(handle);
    if (status != CC_OK) {
        free_strings(names, count);
        return status;
    }
    *out = names;
    *out_count = count;
    return CC_OK;
}

static int compare_rules_by_id(const void *a, const void *b)
{
    const cc_policy_rule *left = *(const cc_policy_rule *const *)a;
    const cc_policy_rule *right = *(const cc_policy_rule *const *)b;
    return strcmp(left->spiffe_id, right->spiffe_id);
}

static int compare_rules_by_name(const void *a, const void *b)
{
    const cc_policy_rule *left = *(const cc_policy_rule *const *)a;
    const cc_policy_rule *right = *(const cc_policy_rule *const *)b;
    return strcmp(left->name, right->name);
}

/* Builds the SPIFFE ID index and rejects duplicate names and IDs. */
static cc_status build_index(cc_policy_set *set, cc_err *err)
{
    size_t bytes = (set->count > 0 ? set->count : 1) * sizeof(cc_policy_rule *);
    cc_policy_rule **by_name = malloc(bytes);
    set->by_spiffe_id = malloc(bytes);
    if (by_name == NULL || set->by_spiffe_id == NULL) {
        free(by_name);
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory indexing policies");
    }
    for (size_t i = 0; i < set->count; i++) {
        set->by_spiffe_id[i] = &set->rules[i];
        by_name[i] = &set->rules[i];
    }
    qsort(set->by_spiffe_id, set->count, sizeof(*by_name), compare_rules_by_id);
    qsort(by_name, set->count, sizeof(*by_name), compare_rules_by_name);

    cc_status status = CC_OK;
    for (size_t i = 1; i < set->count && status == CC_OK; i++) {
        const cc_policy_rule *a = by_name[i - 1], *b = by_name[i];
        if (strcmp(a->name, b->name) == 0)
            status = cc_err_set(err, CC_ERR_INVALID,
                                "policy %s, rule \"%s\", key \"name\": the name is already used "
                                "in %s; give each rule a unique name",
                                b->source_file, b->name, a->source_file);
    }
    for (size_t i = 1; i < set->count && status == CC_OK; i++) {
        const cc_policy_rule *a = set->by_spiffe_id[i - 1], *b = set->by_spiffe_id[i];
        if (strcmp(a->spiffe_id, b->spiffe_id) == 0)
            status = cc_err_set(err, CC_ERR_INVALID,
                                "policy %s, rule \"%s\", key \"spiffe_id\": %s is already "
                                "matched by rule \"%s\" in %s; merge the two rules",
                                b->source_file, b->name, b->spiffe_id, a->name, a->source_file);
    }
    free(by_name);
    return status;
}

cc_status cc_policy_set_load_dir(const char *dir, const cc_policy_defaults *defaults,
                                 cc_policy_set **out, cc_err *err)
{
    if (defaults == NULL || defaults->account == NULL || defaults->account[0] == '\0' ||
        defaults->max_ttl_seconds <= 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "policy defaults need an account and a max_ttl_seconds above 0");

    char **names = NULL;
    size_t name_count = 0;
    cc_status status = list_policy_files(dir, &names, &name_count, err);
    if (status != CC_OK)
        return status;

    cc_policy_set *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory loading policies");
        goto cleanup;
    }
    atomic_init(&set->refs, 1);

    for (size_t i = 0; i < name_count && status == CC_OK; i++)
        status = load_file(set, dir, names[i], defaults, err);
    if (status == CC_OK)
        status = build_index(set, err);

cleanup:
    free_strings(names, name_count);
    if (status != CC_OK) {
        if (set != NULL)
            free_set(set);
        return status;
    }
    *out = set;
    return CC_OK;
}

static int compare_id_to_rule(const void *key, const void *element)
{
    const cc_policy_rule *rule = *(const cc_policy_rule *const *)element;
    return strcmp((const char *)key, rule->spiffe_id);
}

const cc_policy_rule *cc_policy_set_match(const cc_policy_set *set, const char *spiffe_id)
{
    if (set == NULL || spiffe_id == NULL || set->count == 0)
        return NULL;

    cc_policy_rule *const *found = bsearch(spiffe_id, set->by_spiffe_id, set->count,
                                           sizeof(*set->by_spiffe_id), compare_id_to_rule);
    return found != NULL ? *found : NULL;
}

size_t cc_policy_set_count(const cc_policy_set *set)
{
    return set->count;
}

const cc_policy_rule *cc_policy_set_at(const cc_policy_set *set, size_t i)
{
    return i < set->count ? &set->rules[i] : NULL;
}

cc_policy_set *cc_policy_set_ref(cc_policy_set *set)
{
    atomic_fetch_add(&set->refs, 1);
    return set;
}

void cc_policy_set_release(cc_policy_set *set)
{
    if (set != NULL && atomic_fetch_sub(&set->refs, 1) == 1)
        free_set(set);
}

size_t cc_policy_set_warn_unreachable(const cc_policy_set *set, const cc_bundle_set *bundles,
                                      const char *dir)
{
    size_t count = cc_policy_set_count(set);
    if (count == 0) {
        cc_log_json(CC_LOG_WARN, "policy_set_empty",
                    json_pack("{s:s, s:s}", "policy_dir", dir, "message",
                              "policy_dir has no rules, so every client is denied; add *.json "
                              "policy files with rules to it"));
        return 1;
    }

    size_t warnings = 0;
    for (size_t i = 0; i < count; i++) {
        const cc_policy_rule *rule = cc_policy_set_at(set, i);
        cc_spiffeid id;
        if (cc_spiffeid_parse(rule->spiffe_id, strlen(rule->spiffe_id), &id, NULL) != CC_OK ||
            cc_bundle_set_find(bundles, id.trust_domain) != NULL)
            continue;

        char message[CC_SPIFFEID_TRUST_DOMAIN_MAX + 256];
        snprintf(message, sizeof(message),
                 "no trust bundle is configured for trust domain \"%s\", so this rule can never "
                 "match; add a bundle for it (trust_domains, bundle_map or spiffe_helper) or "
                 "correct spiffe_id",
                 id.trust_domain);
        cc_log_json(CC_LOG_WARN, "policy_rule_unreachable",
                    json_pack("{s:s, s:s, s:s, s:s, s:s}", "rule", rule->name, "file",
                              rule->source_file, "spiffe_id", rule->spiffe_id, "trust_domain",
                              id.trust_domain, "message", message));
        warnings++;
    }
    return warnings;
}
