/* Authorization policies: which SPIFFE ID gets which NATS account and permissions.
 *
 * Policies are JSON files named *.json in one directory, read in byte order of
 * their names (other files are ignored). Each file is {"rules": [RULE, ...]}:
 *
 *   {"name": "energy-agent",                              required, unique
 *    "spiffe_id": "spiffe://citadel.mesh/agent/energy",   required, unique
 *    "account": "APP",                                    default: the config's default_account
 *    "max_ttl_seconds": 3600,                             default: the config's max_ttl_seconds
 *    "publish":   {"allow": [SUBJECT...], "deny": [SUBJECT...]},
 *    "subscribe": {"allow": [SUBJECT...], "deny": [SUBJECT...]},
 *    "response":  {"max": 1, "ttl_ms": 0},
 *    "connection_types": ["STANDARD", "WEBSOCKET", ...],
 *    "source_cidrs": ["127.0.0.0/8", "::1/128"]}
 *
 * Unknown keys are rejected everywhere, so that a typo cannot silently widen
 * access. A rule matches one SPIFFE ID by exact byte comparison; a client whose
 * ID matches no rule is denied.
 *
 * A loaded set is immutable and shared by reference count: a reload builds a
 * new set and swaps the pointer, and a failed load leaves no set behind, so
 * the caller keeps the one it had. */
#ifndef CITADEL_POLICY_H
#define CITADEL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "citadel/bundle.h"
#include "citadel/error.h"

/* An IPv4 or IPv6 network. IPv4 networks are stored as 4 address bytes. */
typedef struct cc_policy_cidr {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t address[16]; /* network address, host bits zero */
    unsigned prefix_len; /* 0..32 for AF_INET, 0..128 for AF_INET6 */
} cc_policy_cidr;

/* A subject list pair. Empty lists have count 0 (the pointer may be NULL). */
typedef struct cc_policy_permission {
    char **allow;
    size_t allow_count;
    char **deny;
    size_t deny_count;
} cc_policy_permission;

/* One rule as loaded; every string is owned by the set that contains the rule.
 * Defaults from the config are already filled in: account and max_ttl_seconds
 * are always set. */
typedef struct cc_policy_rule {
    char *name;
    char *spiffe_id;
    char *account;
    int64_t max_ttl_seconds; /* > 0 and <= the config's max_ttl_seconds */
    cc_policy_permission publish;
    cc_policy_permission subscribe;
    bool has_response;       /* "response" was given: allow replies to requests */
    int64_t response_max;    /* max reply messages per request; 0 = server default (1) */
    int64_t response_ttl_ms; /* reply window in milliseconds; 0 = server default (2 min) */
    char **connection_types; /* NATS names, such as "STANDARD"; empty = no restriction */
    size_t connection_type_count;
    cc_policy_cidr *source_cidrs; /* empty = no restriction */
    size_t source_cidr_count;
    char *source_file; /* base name of the policy file the rule came from */
} cc_policy_rule;

typedef struct cc_policy_set cc_policy_set;

/* Values that rules inherit when they leave a key out. */
typedef struct cc_policy_defaults {
    const char *account;     /* borrowed; required */
    int64_t max_ttl_seconds; /* > 0; also the ceiling for a rule's own value */
    /* Accounts a rule may name (borrowed). With a count of 0 any account
     * name is accepted. Otherwise a rule naming another account is rejected,
     * because nats-server would reject every client placed there. */
    const char *const *known_accounts;
    size_t known_account_count;
} cc_policy_defaults;

/* Loads every *.json file in dir. On success *out is a new set with one
 * reference (caller releases it). On failure *out is untouched and err names
 * the file, the rule and the key that is wrong, and how to fix it. A directory
 * without policy files yields an empty set, which denies every client. */
cc_status cc_policy_set_load_dir(const char *dir, const cc_policy_defaults *defaults,
                                 cc_policy_set **out, cc_err *err);

/* Returns the rule whose spiffe_id equals spiffe_id byte for byte (borrowed
 * from the set), or NULL, which means deny. */
const cc_policy_rule *cc_policy_set_match(const cc_policy_set *set, const char *spiffe_id);

size_t cc_policy_set_count(const cc_policy_set *set);

/* Returns rule i in load order (file name order, then order in the file). */
const cc_policy_rule *cc_policy_set_at(const cc_policy_set *set, size_t i);

/* Logs warnings about rules that can never allow a client. An empty set gets
 * one warning that names dir. Otherwise each rule whose spiffe_id is in a
 * trust domain without a bundle in bundles gets one, because it can never
 * match. Returns the number of warnings logged. */
size_t cc_policy_set_warn_unreachable(const cc_policy_set *set, const cc_bundle_set *bundles,
                                      const char *dir);

/* Reference counting; both are thread-safe. Release frees at zero and accepts NULL. */
cc_policy_set *cc_policy_set_ref(cc_policy_set *set);
void cc_policy_set_release(cc_policy_set *set);

/* Parses "ADDRESS/PREFIX" (IPv4 or IPv6). Host bits set below the prefix are
 * rejected, because "10.0.0.1/8" usually hides a mistake. */
cc_status cc_policy_cidr_parse(const char *text, cc_policy_cidr *out, cc_err *err);

/* Returns true when host (a numeric IPv4 or IPv6 address, as nats-server puts
 * it in client_info.host) lies in cidr. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is compared as IPv4. Unparsable hosts never match. */
bool cc_policy_cidr_contains(const cc_policy_cidr *cidr, const char *host);

/* Returns true when the rule lists no source_cidrs or one of them contains host. */
bool cc_policy_rule_allows_host(const cc_policy_rule *rule, const char *host);

/* Returns true when the rule lists no connection_types or lists type. */
bool cc_policy_rule_allows_connection_type(const cc_policy_rule *rule, const char *type);

/* Checks a NATS subject as the server would accept it in a user permission:
 * non-empty, no whitespace, no leading, trailing or doubled dots, and ">"
 * only as the last token. With allow_queue, "SUBJECT QUEUE" (one space) is
 * accepted too, as subscribe permissions allow. */
cc_status cc_policy_subject_check(const char *subject, bool allow_queue, cc_err *err);

#endif
