/* Config file loading.
 *
 * The file is parsed with jansson (duplicate keys rejected), then walked
 * section by section. Each section first rejects keys it does not know, then
 * reads its values with small typed getters that name the dotted key path in
 * every error. cc_config_load() prefixes the message with the file name. */
#include "citadel/config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "citadel/policy.h"
#include "citadel/spiffeid.h"

#define MAX_WORKERS 256
#define MAX_LEEWAY_SECONDS 300
#define MAX_QUEUE_SIZE 1000000
#define MAX_CERT_CACHE_SIZE 1000000

/* ---- generic getters -------------------------------------------------- */

static cc_status check_keys(json_t *object, const char *const *allowed, size_t count,
                            const char *section, cc_err *err)
{
    const char *key;
    json_t *value;

    json_object_foreach(object, key, value)
    {
        (void)value;
        bool known = false;
        for (size_t i = 0; i < count && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return cc_err_set(err, CC_ERR_INVALID,
                              "key \"%s%s%s\": unknown key; remove it or correct its spelling "
                              "(see docs/configuration.md)",
                              section, section[0] != '\0' ? "." : "", key);
    }
    return CC_OK;
}

static cc_status get_object(json_t *parent, const char *key, const char *name, bool required,
                            json_t **out, cc_err *err)
{
    json_t *value = json_object_get(parent, key);
    *out = NULL;
    if (value == NULL) {
        if (required)
            return cc_err_set(err, CC_ERR_INVALID, "key \"%s\" is missing; add it", name);
        return CC_OK;
    }
    if (!json_is_object(value))
        return cc_err_set(err, CC_ERR_INVALID, "key \"%s\" must be a JSON object", name);
    *out = value;
    return CC_OK;
}

static bool has_nul_or_empty(json_t *string)
{
    return json_string_length(string) == 0 ||
           strlen(json_string_value(string)) != json_string_length(string);
}

/* Copies a non-empty string value; *out stays NULL when optional and absent. */
static cc_status get_string(json_t *parent, const char *key, const char *name, bool required,
                            char **out, cc_err *err)
{
    json_t *value = json_object_get(parent, key);
    *out = NULL;
    if (value == NULL) {
        if (required)
            return cc_err_set(err, CC_ERR_INVALID, "key \"%s\" is missing; add it", name);
        return CC_OK;
    }
    if (!json_is_string(value) || has_nul_or_empty(value))
        return cc_err_set(err, CC_ERR_INVALID, "key \"%s\" must be a non-empty string", name);

    *out = strdup(json_string_value(value));
    if (*out == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading key \"%s\"", name);
    return CC_OK;
}

static cc_status get_string_default(json_t *parent, const char *key, const char *name,
                                    const char *fallback, char **out, cc_err *err)
{
    cc_status status = get_string(parent, key, name, false, out, err);
    if (status != CC_OK || *out != NULL)
        return status;
    *out = strdup(fallback);
    if (*out == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading key \"%s\"", name);
    return CC_OK;
}

static cc_status get_integer(json_t *parent, const char *key, const char *name, int64_t min,
                             int64_t max, int64_t fallback, int64_t *out, cc_err *err)
{
    json_t *value = json_object_get(parent, key);
    if (value == NULL) {
        *out = fallback;
        return CC_OK;
    }
    if (!json_is_integer(value) || json_integer_value(value) < min ||
        json_integer_value(value) > max)
        return cc_err_set(err, CC_ERR_INVALID, "key \"%s\" must be an integer from %lld to %lld",
                          name, (long long)min, (long long)max);
    *out = json_integer_value(value);
    return CC_OK;
}

/* Returns path made absolute against dir (caller frees), or NULL when out of memory. */
static char *resolve_path(const char *dir, const char *path)
{
    if (path[0] == '/')
        return strdup(path);

    size_t size = strlen(dir) + 1 + strlen(path) + 1;
    char *joined = malloc(size);
    if (joined != NULL)
        snprintf(joined, size, "%s/%s", dir, path);
    return joined;
}

/* Reads an optional or required path and resolves it against the config directory. */
static cc_status get_path(const cc_config *config, json_t *parent, const char *key,
                          const char *name, bool required, char **out, cc_err *err)
{
    char *raw = NULL;
    cc_status status = get_string(parent, key, name, required, &raw, err);
    if (status != CC_OK || raw == NULL) {
        *out = NULL;
        return status;
    }
    *out = resolve_path(config->dir, raw);
    free(raw);
    if (*out == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading key \"%s\"", name);
    return CC_OK;
}

static cc_status get_string_array(json_t *parent, const char *key, const char *name, bool required,
                                  char ***out, size_t *count, cc_err *err)
{
    json_t *value = json_object_get(parent, key);
    *out = NULL;
    *count = 0;
    if (value == NULL && !required)
        return CC_OK;
    if (!json_is_array(value) || json_array_size(value) == 0)
        return cc_err_set(err, CC_ERR_INVALID, "key \"%s\" must be a non-empty array of strings",
                          name);

    size_t size = json_array_size(value);
    char **strings = calloc(size, sizeof(*strings));
    if (strings == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading key \"%s\"", name);
    *out = strings;

    for (size_t i = 0; i < size; i++) {
        json_t *item = json_array_get(value, i);
        if (!json_is_string(item) || has_nul_or_empty(item))
            return cc_err_set(err, CC_ERR_INVALID, "key \"%s[%zu]\" must be a non-empty string",
                              name, i);
        strings[i] = strdup(json_string_value(item));
        if (strings[i] == NULL)
            return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading key \"%s\"", name);
        *count = i + 1;
    }
    return CC_OK;
}

static bool contains_any(const char *text, const char *characters)
{
    return strpbrk(text, characters) != NULL;
}

/* ---- secret files ----------------------------------------------------- */

cc_status cc_config_check_secret_file(const char *path, const char *what, cc_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cc_err_set(err, errno == ENOENT ? CC_ERR_NOT_FOUND : CC_ERR_IO,
                          "%s %s cannot be read: %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return cc_err_set(err, CC_ERR_INVALID, "%s %s is not a regular file", what, path);
    if ((st.st_mode & 077) != 0)
        return cc_err_set(err, CC_ERR_PERMISSION,
                          "%s %s has mode %04o, so group or others can access it; run "
                          "\"chmod 600 %s\"",
                          what, path, (unsigned)(st.st_mode & 07777), path);
    return CC_OK;
}

cc_status cc_config_read_password(const cc_config *config, char **password, cc_err *err)
{
    const char *path = config->nats.password_file;
    if (path == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "nats.password_file is not configured");

    cc_status status = cc_config_check_secret_file(path, "nats.password_file", err);
    if (status != CC_OK)
        return status;

    FILE *file = fopen(path, "r");
    if (file == NULL)
        return cc_err_set(err, CC_ERR_IO, "nats.password_file %s cannot be opened: %s", path,
                          strerror(errno));

    char buffer[1024];
    size_t len = fread(buffer, 1, sizeof(buffer), file);
    bool too_long = len == sizeof(buffer);
    fclose(file);

    while (len > 0 && (buffer[len - 1] == '\n' || buffer[len - 1] == '\r'))
        len--;
    if (too_long || len == 0 || memchr(buffer, '\0', len) != NULL) {
        explicit_bzero(buffer, sizeof(buffer));
        return cc_err_set(err, CC_ERR_INVALID,
                          "nats.password_file %s must contain one password line of 1 to 1000 "
                          "bytes",
                          path);
    }

    *password = strndup(buffer, len);
    explicit_bzero(buffer, sizeof(buffer));
    if (*password == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading nats.password_file");
    return CC_OK;
}

/* ---- sections --------------------------------------------------------- */

static cc_status load_nats_tls(cc_config *config, json_t *nats, cc_err *err)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file"};
    json_t *tls;
    cc_status status = get_object(nats, "tls", "nats.tls", false, &tls, err);
    if (status != CC_OK || tls == NULL)
        return status;
    status = check_keys(tls, keys, 3, "nats.tls", err);
    if (status != CC_OK)
        return status;

    cc_config_nats *out = &config->nats;
    status = get_path(config, tls, "ca_file", "nats.tls.ca_file", false, &out->tls_ca_file, err);
    if (status == CC_OK)
        status = get_path(config, tls, "cert_file", "nats.tls.cert_file", false,
                          &out->tls_cert_file, err);
    if (status == CC_OK)
        status =
            get_path(config, tls, "key_file", "nats.tls.key_file", false, &out->tls_key_file, err);
    if (status != CC_OK)
        return status;

    if ((out->tls_cert_file == NULL) != (out->tls_key_file == NULL))
        return cc_err_set(err, CC_ERR_INVALID,
                          "keys \"nats.tls.cert_file\" and \"nats.tls.key_file\" go together; "
                          "set both for mTLS or neither");
    if (out->tls_key_file != NULL)
        return cc_config_check_secret_file(out->tls_key_file, "nats.tls.key_file", err);
    return CC_OK;
}

static cc_status load_nats_auth(cc_config *config, json_t *nats, cc_err *err)
{
    cc_config_nats *out = &config->nats;
    cc_status status = get_string(nats, "user", "nats.user", false, &out->user, err);
    if (status == CC_OK)
        status = get_path(config, nats, "password_file", "nats.password_file", false,
                          &out->password_file, err);
    if (status == CC_OK)
        status =
            get_path(config, nats, "creds_file", "nats.creds_file", false, &out->creds_file, err);
    if (status != CC_OK)
        return status;

    if ((out->user == NULL) != (out->password_file == NULL))
        return cc_err_set(err, CC_ERR_INVALID,
                          "keys \"nats.user\" and \"nats.password_file\" go together; set both "
                          "or neither");
    if (out->user != NULL && out->creds_file != NULL)
        return cc_err_set(err, CC_ERR_INVALID,
                          "set either \"nats.user\" with \"nats.password_file\" or "
                          "\"nats.creds_file\", not both");
    if (out->password_file != NULL)
        status = cc_config_check_secret_file(out->password_file, "nats.password_file", err);
    if (status == CC_OK && out->creds_file != NULL)
        status = cc_config_check_secret_file(out->creds_file, "nats.creds_file", err);
    return status;
}

static cc_status load_nats(cc_config *config, json_t *root, cc_err *err)
{
    static const char *const keys[] = {"servers",    "name", "user",       "password_file",
                                       "creds_file", "tls",  "queue_group"};
    json_t *nats;
    cc_status status = get_object(root, "nats", "nats", true, &nats, err);
    if (status != CC_OK)
        return status;
    status = check_keys(nats, keys, sizeof(keys) / sizeof(keys[0]), "nats", err);
    if (status != CC_OK)
        return status;

    cc_config_nats *out = &config->nats;
    status = get_string_array(nats, "servers", "nats.servers", true, &out->servers,
                              &out->server_count, err);
    if (status == CC_OK)
        status = get_string_default(nats, "name", "nats.name", CC_CONFIG_DEFAULT_CONNECTION_NAME,
                                    &out->name, err);
    if (status == CC_OK)
        status = get_string_default(nats, "queue_group", "nats.queue_group",
                                    CC_CONFIG_DEFAULT_QUEUE_GROUP, &out->queue_group, err);
    if (status == CC_OK && contains_any(out->queue_group, " \t\r\n*>"))
        status = cc_err_set(err, CC_ERR_INVALID,
                            "key \"nats.queue_group\" must not contain whitespace or wildcards");
    if (status == CC_OK)
        status = load_nats_auth(config, nats, err);
    if (status == CC_OK)
        status = load_nats_tls(config, nats, err);
    return status;
}

static cc_status load_keys(cc_config *config, json_t *root, cc_err *err)
{
    cc_status status = get_path(config, root, "issuer_seed_file", "issuer_seed_file", true,
                                &config->issuer_seed_file, err);
    if (status == CC_OK)
        status = cc_config_check_secret_file(config->issuer_seed_file, "issuer_seed_file", err);
    if (status == CC_OK)
        status = get_path(config, root, "xkey_seed_file", "xkey_seed_file", false,
                          &config->xkey_seed_file, err);
    if (status == CC_OK && config->xkey_seed_file != NULL)
        status = cc_config_check_secret_file(config->xkey_seed_file, "xkey_seed_file", err);
    return status;
}

/* Appends a bundle source; the config takes ownership of the three strings. */
/* Appends a bundle source and takes ownership of the strings, also on failure.
 * key is the config key that names path. */
static cc_status add_source(cc_config *config, cc_bundle_source_kind kind, char *trust_domain,
                            char *path, char *jwt_path, const char *key, cc_err *err)
{
    cc_bundle_source *grown =
        realloc(config->bundle_sources, (config->bundle_source_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(trust_domain);
        free(path);
        free(jwt_path);
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading trust sources");
    }
    config->bundle_sources = grown;
    cc_bundle_source *source = &grown[config->bundle_source_count++];
    *source = (cc_bundle_source){
        .kind = kind, .path = path, .jwt_path = jwt_path, .trust_domain = trust_domain};
    snprintf(source->config_key, sizeof(source->config_key), "%s", key);
    return CC_OK;
}

/* Reads a trust domain name, bare or "spiffe://" form, into a new bare string. */
static cc_status get_trust_domain(json_t *parent, const char *key, const char *name, char **out,
                                  cc_err *err)
{
    char *raw = NULL;
    cc_status status = get_string(parent, key, name, true, &raw, err);
    if (status != CC_OK)
        return status;

    char bare[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
    cc_err detail = {0};
    status = cc_spiffeid_parse_trust_domain(raw, strlen(raw), bare, &detail);
    free(raw);
    if (status != CC_OK)
        return cc_err_set(err, CC_ERR_INVALID,
                          "key \"%s\" is not a valid trust domain name (%s); write it like "
                          "\"example.org\"",
                          name, detail.message);
    *out = strdup(bare);
    if (*out == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading key \"%s\"", name);
    return CC_OK;
}

static cc_status load_trust_domain(cc_config *config, json_t *entry, size_t index, cc_err *err)
{
    static const char *const keys[] = {"name", "bundle_pem", "spiffe_bundle"};
    char section[64], name[96];
    snprintf(section, sizeof(section), "trust_domains[%zu]", index);
    if (!json_is_object(entry))
        return cc_err_set(err, CC_ERR_INVALID, "key \"%s\" must be a JSON object", section);
    cc_status status = check_keys(entry, keys, 3, section, err);
    if (status != CC_OK)
        return status;

    char *trust_domain = NULL, *pem = NULL, *spiffe = NULL;
    snprintf(name, sizeof(name), "%s.name", section);
    status = get_trust_domain(entry, "name", name, &trust_domain, err);
    snprintf(name, sizeof(name), "%s.bundle_pem", section);
    if (status == CC_OK)
        status = get_path(config, entry, "bundle_pem", name, false, &pem, err);
    snprintf(name, sizeof(name), "%s.spiffe_bundle", section);
    if (status == CC_OK)
        status = get_path(config, entry, "spiffe_bundle", name, false, &spiffe, err);
    if (status == CC_OK && (pem == NULL) == (spiffe == NULL))
        status = cc_err_set(err, CC_ERR_INVALID,
                            "key \"%s\" needs exactly one of \"bundle_pem\" and "
                            "\"spiffe_bundle\"",
                            section);
    if (status != CC_OK) {
        free(trust_domain);
        free(pem);
        free(spiffe);
        return status;
    }
    if (pem != NULL) {
        snprintf(name, sizeof(name), "%s.bundle_pem", section);
        return add_source(config, CC_BUNDLE_SOURCE_PEM, trust_domain, pem, NULL, name, err);
    }
    snprintf(name, sizeof(name), "%s.spiffe_bundle", section);
    return add_source(config, CC_BUNDLE_SOURCE_SPIFFE, trust_domain, spiffe, NULL, name, err);
}

static cc_status load_spiffe_helper(cc_config *config, json_t *root, cc_err *err)
{
    static const char *const keys[] = {"trust_domain", "bundle_pem", "jwt_bundle"};
    json_t *helper;
    cc_status status = get_object(root, "spiffe_helper", "spiffe_helper", false, &helper, err);
    if (status != CC_OK || helper == NULL)
        return status;
    status = check_keys(helper, keys, 3, "spiffe_helper", err);
    if (status != CC_OK)
        return status;

    char *trust_domain = NULL, *pem = NULL, *jwt = NULL;
    status =
        get_trust_domain(helper, "trust_domain", "spiffe_helper.trust_domain", &trust_domain, err);
    if (status == CC_OK)
        status =
            get_path(config, helper, "bundle_pem", "spiffe_helper.bundle_pem", true, &pem, err);
    if (status == CC_OK)
        status =
            get_path(config, helper, "jwt_bundle", "spiffe_helper.jwt_bundle", false, &jwt, err);
    if (status != CC_OK) {
        free(trust_domain);
        free(pem);
        free(jwt);
        return status;
    }
    return add_source(config, CC_BUNDLE_SOURCE_SPIFFE_HELPER, trust_domain, pem, jwt,
                      "spiffe_helper.bundle_pem", err);
}

static cc_status load_trust(cc_config *config, json_t *root, cc_err *err)
{
    json_t *domains = json_object_get(root, "trust_domains");
    cc_status status = CC_OK;

    if (domains != NULL && !json_is_array(domains))
        return cc_err_set(err, CC_ERR_INVALID,
                          "key \"trust_domains\" must be an array of {\"name\", \"bundle_pem\" "
                          "or \"spiffe_bundle\"} objects");
    for (size_t i = 0; i < json_array_size(domains) && status == CC_OK; i++)
        status = load_trust_domain(config, json_array_get(domains, i), i, err);

    char *map = NULL;
    if (status == CC_OK)
        status = get_path(config, root, "bundle_map", "bundle_map", false, &map, err);
    if (status == CC_OK && map != NULL)
        status = add_source(config, CC_BUNDLE_SOURCE_MAP, NULL, map, NULL, "bundle_map", err);
    if (status == CC_OK)
        status = load_spiffe_helper(config, root, err);

    if (status == CC_OK && config->bundle_source_count == 0)
        status = cc_err_set(err, CC_ERR_INVALID,
                            "no trust bundle is configured; add \"trust_domains\", "
                            "\"bundle_map\" or \"spiffe_helper\"");
    return status;
}

static cc_status load_jwt_svid(cc_config *config, json_t *root, cc_err *err)
{
    static const char *const keys[] = {"audiences", "leeway_seconds"};
    json_t *jwt;
    cc_config_jwt_svid *out = &config->jwt_svid;

    out->leeway_seconds = CC_CONFIG_DEFAULT_LEEWAY_SECONDS;
    cc_status status = get_object(root, "jwt_svid", "jwt_svid", false, &jwt, err);
    if (status != CC_OK || jwt == NULL)
        return status;
    status = check_keys(jwt, keys, 2, "jwt_svid", err);
    if (status != CC_OK)
        return status;

    out->enabled = true;
    status = get_string_array(jwt, "audiences", "jwt_svid.audiences", true, &out->audiences,
                              &out->audience_count, err);
    if (status == CC_OK)
        status =
            get_integer(jwt, "leeway_seconds", "jwt_svid.leeway_seconds", 0, MAX_LEEWAY_SECONDS,
                        CC_CONFIG_DEFAULT_LEEWAY_SECONDS, &out->leeway_seconds, err);
    return status;
}

static cc_status load_audit(cc_config *config, json_t *root, cc_err *err)
{
    static const char *const keys[] = {"stream",   "subject_prefix",           "max_age_seconds",
                                       "replicas", "duplicate_window_seconds", "queue_size"};
    json_t *audit;
    cc_config_audit *out = &config->audit;
    cc_status status = get_object(root, "audit", "audit", false, &audit, err);
    if (status == CC_OK && audit != NULL)
        status = check_keys(audit, keys, sizeof(keys) / sizeof(keys[0]), "audit", err);

    int64_t replicas = 1, queue_size = 0;
    if (status == CC_OK)
        status = get_string_default(audit, "stream", "audit.stream", CC_CONFIG_DEFAULT_AUDIT_STREAM,
                                    &out->stream, err);
    if (status == CC_OK && contains_any(out->stream, " \t\r\n.*>/\\"))
        status = cc_err_set(err, CC_ERR_INVALID,
                            "key \"audit.stream\" must not contain whitespace, '.', '*', '>', "
                            "'/' or '\\'");
    if (status == CC_OK)
        status = get_string_default(audit, "subject_prefix", "audit.subject_prefix",
                                    CC_CONFIG_DEFAULT_AUDIT_PREFIX, &out->subject_prefix, err);
    if (status == CC_OK && (cc_policy_subject_check(out->subject_prefix, false, NULL) != CC_OK ||
                            contains_any(out->subject_prefix, "*>")))
        status = cc_err_set(err, CC_ERR_INVALID,
                            "key \"audit.subject_prefix\" must be a subject without wildcards, "
                            "such as \"citadel.audit\"");
    if (status == CC_OK)
        status = get_integer(audit, "max_age_seconds", "audit.max_age_seconds", 0, INT32_MAX,
                             CC_CONFIG_DEFAULT_AUDIT_MAX_AGE_SECONDS, &out->max_age_seconds, err);
    if (status == CC_OK)
        status = get_integer(audit, "duplicate_window_seconds", "audit.duplicate_window_seconds", 1,
                             INT32_MAX, CC_CONFIG_DEFAULT_AUDIT_DUPLICATE_WINDOW_SECONDS,
                             &out->duplicate_window_seconds, err);
    if (status == CC_OK)
        status = get_integer(audit, "replicas", "audit.replicas", 1, 5, 1, &replicas, err);
    if (status == CC_OK)
        status = get_integer(audit, "queue_size", "audit.queue_size", 1, MAX_QUEUE_SIZE,
                             CC_CONFIG_DEFAULT_AUDIT_QUEUE_SIZE, &queue_size, err);
    out->replicas = (int)replicas;
    out->queue_size = (size_t)queue_size;
    return status;
}

static bool contains_string(char *const *strings, size_t count, const char *value)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(strings[i], value) == 0)
            return true;
    }
    return false;
}

static cc_status load_general(cc_config *config, json_t *root, cc_err *err)
{
    int64_t workers = 0;
    int64_t cert_cache_size = 0;
    cc_status status =
        get_string(root, "default_account", "default_account", true, &config->default_account, err);
    if (status == CC_OK && contains_any(config->default_account, " \t\r\n"))
        status = cc_err_set(err, CC_ERR_INVALID,
                            "key \"default_account\" must be an account name without whitespace");
    if (status == CC_OK)
        status = get_string_array(root, "accounts", "accounts", false, &config->accounts,
                                  &config->account_count, err);
    if (status == CC_OK && config->account_count > 0 &&
        !contains_string(config->accounts, config->account_count, config->default_account))
        status = cc_err_set(err, CC_ERR_INVALID,
                            "key \"default_account\" is \"%s\", which is not in \"accounts\"; "
                            "add it there or name an account that the nats-server config defines",
                            config->default_account);
    if (status == CC_OK)
        status = get_integer(root, "max_ttl_seconds", "max_ttl_seconds", 1, 366 * 24 * 3600,
                             CC_CONFIG_DEFAULT_MAX_TTL_SECONDS, &config->max_ttl_seconds, err);
    if (status == CC_OK)
        status = get_path(config, root, "policy_dir", "policy_dir", true, &config->policy_dir, err);
    if (status == CC_OK)
        status = get_integer(root, "workers", "workers", 1, MAX_WORKERS, CC_CONFIG_DEFAULT_WORKERS,
                             &workers, err);
    config->workers = (int)workers;
    if (status == CC_OK)
        status = get_integer(root, "cert_cache_size", "cert_cache_size", 1, MAX_CERT_CACHE_SIZE,
                             CC_CONFIG_DEFAULT_CERT_CACHE_SIZE, &cert_cache_size, err);
    config->cert_cache_size = (size_t)cert_cache_size;

    char *level = NULL;
    config->log_level = CC_LOG_INFO;
    if (status == CC_OK)
        status = get_string(root, "log_level", "log_level", false, &level, err);
    if (status == CC_OK && level != NULL) {
        int parsed = cc_log_level_parse(level);
        if (parsed < 0)
            status = cc_err_set(err, CC_ERR_INVALID,
                                "key \"log_level\" is \"%s\"; use debug, info, warn, error or "
                                "off",
                                level);
        else
            config->log_level = (cc_log_level)parsed;
    }
    free(level);
    return status;
}

/* ---- entry points ----------------------------------------------------- */

static cc_status set_location(cc_config *config, const char *path, cc_err *err)
{
    char resolved[PATH_MAX];
    if (realpath(path, resolved) == NULL)
        return cc_err_set(err, errno == ENOENT ? CC_ERR_NOT_FOUND : CC_ERR_IO,
                          "config file %s cannot be opened: %s", path, strerror(errno));
    struct stat st;
    if (stat(resolved, &st) == 0 && S_ISDIR(st.st_mode))
        return cc_err_set(err, CC_ERR_INVALID,
                          "config file %s is a directory; pass the path of the JSON config file",
                          path);

    config->path = strdup(resolved);
    char *slash = strrchr(resolved, '/');
    if (slash == resolved)
        slash[1] = '\0';
    else
        *slash = '\0';
    config->dir = strdup(resolved);
    if (config->path == NULL || config->dir == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory loading config %s", path);
    return CC_OK;
}

static cc_status load_root(cc_config *config, json_t *root, cc_err *err)
{
    static const char *const keys[] = {
        "nats",          "issuer_seed_file", "xkey_seed_file", "default_account", "max_ttl_seconds",
        "trust_domains", "bundle_map",       "spiffe_helper",  "jwt_svid",        "policy_dir",
        "audit",         "workers",          "log_level",      "cert_cache_size",
        "accounts",
    };
    if (!json_is_object(root))
        return cc_err_set(err, CC_ERR_INVALID, "the config must be a JSON object");

    cc_status status = check_keys(root, keys, sizeof(keys) / sizeof(keys[0]), "", err);
    if (status == CC_OK)
        status = load_nats(config, root, err);
    if (status == CC_OK)
        status = load_keys(config, root, err);
    if (status == CC_OK)
        status = load_general(config, root, err);
    if (status == CC_OK)
        status = load_trust(config, root, err);
    if (status == CC_OK)
        status = load_jwt_svid(config, root, err);
    if (status == CC_OK)
        status = load_audit(config, root, err);
    return status;
}

cc_status cc_config_load(const char *path, cc_config **out, cc_err *err)
{
    json_t *root = NULL;
    cc_config *config = calloc(1, sizeof(*config));
    if (config == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory loading config %s", path);

    cc_status status = set_location(config, path, err);
    if (status != CC_OK)
        goto cleanup;

    json_error_t json_error;
    root = json_load_file(config->path, JSON_REJECT_DUPLICATES, &json_error);
    if (root == NULL) {
        status = cc_err_set(err, CC_ERR_INVALID, "invalid JSON at line %d: %s", json_error.line,
                            json_error.text);
    } else {
        status = load_root(config, root, err);
    }
    if (status != CC_OK)
        cc_err_prefix(err, "config %s", config->path);

cleanup:
    json_decref(root);
    if (status != CC_OK) {
        cc_config_free(config);
        return status;
    }
    *out = config;
    return CC_OK;
}

static void free_strings(char **strings, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

void cc_config_free(cc_config *config)
{
    if (config == NULL)
        return;

    cc_config_nats *nats = &config->nats;
    free_strings(nats->servers, nats->server_count);
    free(nats->name);
    free(nats->user);
    free(nats->password_file);
    free(nats->creds_file);
    free(nats->tls_ca_file);
    free(nats->tls_cert_file);
    free(nats->tls_key_file);
    free(nats->queue_group);

    for (size_t i = 0; i < config->bundle_source_count; i++) {
        cc_bundle_source *source = &config->bundle_sources[i];
        free((char *)source->trust_domain);
        free((char *)source->path);
        free((char *)source->jwt_path);
    }
    free(config->bundle_sources);

    free_strings(config->jwt_svid.audiences, config->jwt_svid.audience_count);
    free(config->audit.stream);
    free(config->audit.subject_prefix);
    free(config->issuer_seed_file);
    free(config->xkey_seed_file);
    free(config->default_account);
    free_strings(config->accounts, config->account_count);
    free(config->policy_dir);
    free(config->path);
    free(config->dir);
    free(config);
}
