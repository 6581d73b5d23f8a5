/* The service configuration: one JSON file, documented key by key in
 * docs/configuration.md.
 *
 * Loading rejects unknown keys, because a misspelt key must not be ignored.
 * It resolves every relative path against the directory of the config file
 * and fills in defaults. Secret files (password_file, creds_file,
 * issuer_seed_file, xkey_seed_file, nats.tls.key_file) must exist and be
 * readable by their owner only (mode 0600 or stricter). The config never holds a secret
 * itself, only the paths of the files that hold them. */
#ifndef CITADEL_CONFIG_H
#define CITADEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "citadel/bundle_load.h"
#include "citadel/error.h"
#include "citadel/log.h"

#define CC_CONFIG_DEFAULT_QUEUE_GROUP "citadel-callout"
#define CC_CONFIG_DEFAULT_CONNECTION_NAME "citadel-callout"
#define CC_CONFIG_DEFAULT_MAX_TTL_SECONDS 3600
#define CC_CONFIG_DEFAULT_WORKERS 4
#define CC_CONFIG_DEFAULT_CERT_CACHE_SIZE 1024
#define CC_CONFIG_DEFAULT_LEEWAY_SECONDS 30
#define CC_CONFIG_DEFAULT_AUDIT_STREAM "CITADEL_AUDIT"
#define CC_CONFIG_DEFAULT_AUDIT_PREFIX "citadel.audit"
#define CC_CONFIG_DEFAULT_AUDIT_MAX_AGE_SECONDS (90 * 24 * 3600)
#define CC_CONFIG_DEFAULT_AUDIT_DUPLICATE_WINDOW_SECONDS 120
#define CC_CONFIG_DEFAULT_AUDIT_QUEUE_SIZE 4096

typedef struct cc_config_nats {
    char **servers; /* at least one URL */
    size_t server_count;
    char *name;          /* connection name shown by the server */
    char *user;          /* NULL unless user/password authentication is configured */
    char *password_file; /* absolute; set exactly when user is set */
    char *creds_file;    /* absolute, or NULL; excludes user/password_file */
    char *tls_ca_file;   /* absolute, or NULL: CA that verifies the server */
    char *tls_cert_file; /* absolute, or NULL: the service's own certificate (mTLS) */
    char *tls_key_file;  /* absolute; set exactly when tls_cert_file is set */
    char *queue_group;
} cc_config_nats;

typedef struct cc_config_jwt_svid {
    bool enabled;     /* the "jwt_svid" object was present */
    char **audiences; /* at least one when enabled */
    size_t audience_count;
    int64_t leeway_seconds;
} cc_config_jwt_svid;

typedef struct cc_config_audit {
    char *stream;
    char *subject_prefix;
    int64_t max_age_seconds;
    int64_t duplicate_window_seconds;
    int replicas;
    size_t queue_size; /* events held in memory while JetStream is unreachable */
} cc_config_audit;

typedef struct cc_config {
    char *path; /* absolute path of the file that was loaded */
    char *dir;  /* its directory; relative paths were resolved against it */
    cc_config_nats nats;
    char *issuer_seed_file; /* absolute; account seed ("SA...") that signs responses */
    char *xkey_seed_file;   /* absolute, or NULL; curve seed ("SX...") for sealed requests */
    char *default_account;
    /* Accounts that exist on the nats-server ("accounts" key), or NULL with a
     * count of 0 when the key is absent. When present, default_account and
     * every policy rule's account must be one of them. */
    char **accounts;
    size_t account_count;
    int64_t max_ttl_seconds;
    /* Trust bundle sources in config order: each "trust_domains" entry (PEM
     * or SPIFFE bundle), then "bundle_map", then "spiffe_helper". Paths are
     * absolute, and all strings are owned by the config. */
    cc_bundle_source *bundle_sources;
    size_t bundle_source_count;
    cc_config_jwt_svid jwt_svid;
    char *policy_dir; /* absolute */
    cc_config_audit audit;
    int workers;
    size_t cert_cache_size; /* parsed client certificates kept, see certcache.h */
    cc_log_level log_level;
} cc_config;

/* Loads and checks the config file at path. On success *out is a new config
 * the caller frees with cc_config_free(). On failure err names the key (as a
 * dotted path such as "nats.tls.key_file") and what to change. */
cc_status cc_config_load(const char *path, cc_config **out, cc_err *err);

void cc_config_free(cc_config *config);

/* Checks that path is a regular file that neither group nor others may read
 * or write. what names the key in error messages ("nats.password_file"). */
cc_status cc_config_check_secret_file(const char *path, const char *what, cc_err *err);

/* Reads the password from nats.password_file (trailing newline removed) into a
 * new buffer the caller must wipe and free. */
cc_status cc_config_read_password(const cc_config *config, char **password, cc_err *err);

#endif
