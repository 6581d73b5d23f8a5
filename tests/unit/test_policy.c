#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "citadel/bundle.h"
#include "citadel/log.h"
#include "citadel/policy.h"

static const cc_policy_defaults defaults = {.account = "APP", .max_ttl_seconds = 3600};

/* The same defaults with a list of the accounts the server has. */
static const char *const known_account_names[] = {"APP", "OPS"};
static const cc_policy_defaults known_defaults = {.account = "APP",
                                                  .max_ttl_seconds = 3600,
                                                  .known_accounts = known_account_names,
                                                  .known_account_count = 2};

static char *make_dir(void)
{
    char *dir = strdup("/tmp/citadel-policy-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file, "cannot create %s", path);
    fputs(text, file);
    fclose(file);
}

static void remove_dir(char *dir)
{
    char command[600];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    cr_assert_eq(system(command), 0);
    free(dir);
}

/* Loads one policy file with the given text; returns the status and the error. */
static cc_status load_text(const char *text, cc_err *err)
{
    char *dir = make_dir();
    write_file(dir, "rules.json", text);
    cc_policy_set *set = (cc_policy_set *)0x1;
    cc_status status = cc_policy_set_load_dir(dir, &defaults, &set, err);
    if (status == CC_OK)
        cc_policy_set_release(set);
    else
        cr_assert_eq(set, (cc_policy_set *)0x1, "a failed load leaves *out untouched");
    remove_dir(dir);
    return status;
}

Test(policy, loads_rules_with_defaults)
{
    char *dir = make_dir();
    write_file(dir, "b.json",
               "{\"rules\": [{\"name\": \"energy\", \"spiffe_id\": "
               "\"spiffe://citadel.mesh/agent/energy\", \"account\": \"ENERGY\", "
               "\"max_ttl_seconds\": 600, \"publish\": {\"allow\": [\"energy.>\"], \"deny\": "
               "[\"energy.secret\"]}, \"subscribe\": {\"allow\": [\"_INBOX.>\", \"jobs.* "
               "workers\"]}, \"response\": {\"max\": 2, \"ttl_ms\": 500}, "
               "\"connection_types\": [\"STANDARD\", \"MQTT\"], \"source_cidrs\": "
               "[\"127.0.0.0/8\", \"::1/128\"]}]}");
    write_file(dir, "a.json",
               "{\"rules\": [{\"name\": \"billing\", \"spiffe_id\": "
               "\"spiffe://citadel.mesh/agent/billing\"}]}");
    write_file(dir, "notes.txt", "not a policy");
    write_file(dir, "backup.json~", "not a policy either");

    cc_err err = {0};
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, &err), CC_OK, "%s", err.message);
    cr_assert_eq(cc_policy_set_count(set), 2);

    const cc_policy_rule *first = cc_policy_set_at(set, 0);
    cr_assert_str_eq(first->name, "billing", "a.json loads before b.json");
    cr_assert_str_eq(first->account, "APP");
    cr_assert_eq(first->max_ttl_seconds, 3600);
    cr_assert_eq(first->publish.allow_count, 0);
    cr_assert_not(first->has_response);
    cr_assert_str_eq(first->source_file, "a.json");

    const cc_policy_rule *second = cc_policy_set_at(set, 1);
    cr_assert_str_eq(second->account, "ENERGY");
    cr_assert_eq(second->max_ttl_seconds, 600);
    cr_assert_eq(second->publish.allow_count, 1);
    cr_assert_str_eq(second->publish.allow[0], "energy.>");
    cr_assert_eq(second->publish.deny_count, 1);
    cr_assert_str_eq(second->subscribe.allow[1], "jobs.* workers");
    cr_assert(second->has_response);
    cr_assert_eq(second->response_max, 2);
    cr_assert_eq(second->response_ttl_ms, 500);
    cr_assert_eq(second->connection_type_count, 2);
    cr_assert_eq(second->source_cidr_count, 2);
    cr_assert_null(cc_policy_set_at(set, 2));

    cc_policy_set_release(set);
    remove_dir(dir);
}

Test(policy, unknown_account_rejected)
{
    char *dir = make_dir();
    write_file(dir, "rules.json",
               "{\"rules\": [{\"name\": \"ghost\", \"spiffe_id\": "
               "\"spiffe://citadel.mesh/agent/ghost\", \"account\": \"GHOST\"}]}");
    cc_policy_set *set = NULL;
    cc_err err = {0};

    cr_assert_eq(cc_policy_set_load_dir(dir, &known_defaults, &set, &err), CC_ERR_INVALID);
    cr_assert_null(set);
    cr_assert_not_null(strstr(err.message, "key \"account\""), "%s", err.message);
    cr_assert_not_null(strstr(err.message, "\"GHOST\" is not in the config's \"accounts\" list"),
                       "%s", err.message);

    /* Without a list of known accounts the same rule loads. */
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, &err), CC_OK, "%s", err.message);
    cr_assert_str_eq(cc_policy_set_match(set, "spiffe://citadel.mesh/agent/ghost")->account, "GHOST");
    cc_policy_set_release(set);
    remove_dir(dir);
}

Test(policy, known_account_accepted)
{
    char *dir = make_dir();
    write_file(dir, "rules.json",
               "{\"rules\": [{\"name\": \"ops\", \"spiffe_id\": "
               "\"spiffe://citadel.mesh/service/ops\", \"account\": \"OPS\"}]}");
    cc_policy_set *set = NULL;
    cc_err err = {0};

    cr_assert_eq(cc_policy_set_load_dir(dir, &known_defaults, &set, &err), CC_OK, "%s", err.message);
    cr_assert_str_eq(cc_policy_set_match(set, "spiffe://citadel.mesh/service/ops")->account, "OPS");
    cc_policy_set_release(set);
    remove_dir(dir);
}

Test(policy, match_is_exact)
{
    char *dir = make_dir();
    write_file(dir, "p.json",
               "{\"rules\": [{\"name\": \"a\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"}, "
               "{\"name\": \"b\", \"spiffe_id\": \"spiffe://citadel.mesh/b\"}, "
               "{\"name\": \"c\", \"spiffe_id\": \"spiffe://other.mesh/a\"}]}");
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, NULL), CC_OK);

    const cc_policy_rule *rule = cc_policy_set_match(set, "spiffe://citadel.mesh/b");
    cr_assert_not_null(rule);
    cr_assert_str_eq(rule->name, "b");
    cr_assert_str_eq(cc_policy_set_match(set, "spiffe://other.mesh/a")->name, "c");
    cr_assert_null(cc_policy_set_match(set, "spiffe://citadel.mesh/B"));
    cr_assert_null(cc_policy_set_match(set, "spiffe://citadel.mesh/a/"));
    cr_assert_null(cc_policy_set_match(set, "spiffe://citadel.mesh/a/b"));
    cr_assert_null(cc_policy_set_match(set, "spiffe://citadel.mesh"));
    cr_assert_null(cc_policy_set_match(set, ""));
    cr_assert_null(cc_policy_set_match(set, NULL));
    cr_assert_null(cc_policy_set_match(NULL, "spiffe://citadel.mesh/a"));

    cc_policy_set_release(set);
    remove_dir(dir);
}

Test(policy, empty_dir_denies_all)
{
    char *dir = make_dir();
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, NULL), CC_OK);
    cr_assert_eq(cc_policy_set_count(set), 0);
    cr_assert_null(cc_policy_set_match(set, "spiffe://citadel.mesh/a"));
    cc_policy_set_release(set);
    remove_dir(dir);
}

Test(policy, missing_dir_rejected)
{
    cc_err err = {0};
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir("/nonexistent/citadel-policies", &defaults, &set, &err),
                 CC_ERR_IO);
    cr_assert_null(set);
    cr_assert_not_null(strstr(err.message, "/nonexistent/citadel-policies"), "%s", err.message);
}

Test(policy, reference_counting)
{
    char *dir = make_dir();
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, NULL), CC_OK);
    cr_assert_eq(cc_policy_set_ref(set), set);
    cc_policy_set_release(set);
    cr_assert_eq(cc_policy_set_count(set), 0, "one reference is still held");
    cc_policy_set_release(set);
    cc_policy_set_release(NULL);
    remove_dir(dir);
}

typedef struct rejection_case {
    const char *rule_json; /* one rule object, or a whole file when it starts with '!' */
    const char *expected;  /* substring of the error message */
} rejection_case;

#define RULE(extra) "{\"name\": \"r1\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"" extra "}"

static const rejection_case rejection_cases[] = {
    {"!{\"rules\": [], \"extra\": 1}", "exactly one key"},
    {"!{\"rule\": []}", "exactly one key"},
    {"!{\"rules\": {}}", "array of rules"},
    {"![]", "array of rules"},
    {"!{\"rules\": [", "invalid JSON"},
    {"!{\"rules\": [], \"rules\": []}", "invalid JSON"},
    {"!{\"rules\": [7]}", "rule #1: a rule must be a JSON object"},
    {RULE(", \"acount\": \"APP\""), "key \"acount\": unknown key"},
    {RULE(", \"publish\": {\"allows\": []}"), "key \"publish.allows\": unknown key"},
    {RULE(", \"response\": {\"ttl\": 5}"), "key \"response.ttl\": unknown key"},
    {"{\"spiffe_id\": \"spiffe://citadel.mesh/a\"}", "rule #1, key \"name\": is missing"},
    {"{\"name\": \"\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"}", "key \"name\": must be"},
    {"{\"name\": 5, \"spiffe_id\": \"spiffe://citadel.mesh/a\"}", "key \"name\": must be"},
    {"{\"name\": \"r1\"}", "rule \"r1\", key \"spiffe_id\": is missing"},
    {"{\"name\": \"r1\", \"spiffe_idd\": \"spiffe://citadel.mesh/a\"}",
     "rule \"r1\", key \"spiffe_idd\": unknown key"},
    {"{\"name\": \"r1\", \"spiffe_id\": \"spiffe://Citadel.mesh/a\"}", "key \"spiffe_id\""},
    {"{\"name\": \"r1\", \"spiffe_id\": \"spiffe://citadel.mesh/a/\"}", "key \"spiffe_id\""},
    {"{\"name\": \"r1\", \"spiffe_id\": \"https://citadel.mesh/a\"}", "key \"spiffe_id\""},
    {"{\"name\": \"r1\", \"spiffe_id\": \"spiffe://citadel.mesh/a\\u0000b\"}", "invalid JSON"},
    {RULE(", \"account\": \"\""), "key \"account\""},
    {RULE(", \"account\": \"A B\""), "key \"account\""},
    {RULE(", \"max_ttl_seconds\": 0"), "key \"max_ttl_seconds\": is out of range"},
    {RULE(", \"max_ttl_seconds\": -5"), "key \"max_ttl_seconds\": is out of range"},
    {RULE(", \"max_ttl_seconds\": 3601"), "from 1 to 3600"},
    {RULE(", \"max_ttl_seconds\": 1.5"), "key \"max_ttl_seconds\": must be an integer"},
    {RULE(", \"publish\": [\"a\"]"), "key \"publish\": must be an object"},
    {RULE(", \"publish\": {\"allow\": \"a.>\"}"), "key \"publish.allow\": must be an array"},
    {RULE(", \"publish\": {\"allow\": [1]}"), "key \"publish.allow[0]\": must be a string"},
    {RULE(", \"publish\": {\"allow\": [\"\"]}"), "key \"publish.allow[0]\": subject is empty"},
    {RULE(", \"publish\": {\"allow\": [\"a b\"]}"), "contains whitespace"},
    {RULE(", \"publish\": {\"allow\": [\"a\\tb\"]}"), "contains whitespace"},
    {RULE(", \"publish\": {\"deny\": [\"ok\", \".a\"]}"), "key \"publish.deny[1]\""},
    {RULE(", \"publish\": {\"allow\": [\"a.\"]}"), "starts or ends with a dot"},
    {RULE(", \"publish\": {\"allow\": [\"a..b\"]}"), "empty token"},
    {RULE(", \"publish\": {\"allow\": [\"a.>.b\"]}"), "may only be the last token"},
    {RULE(", \"publish\": {\"allow\": [\">.a\"]}"), "may only be the last token"},
    {RULE(", \"subscribe\": {\"allow\": [\"a q r\"]}"), "key \"subscribe.allow[0]\""},
    {RULE(", \"subscribe\": {\"allow\": [\"a \"]}"), "queue name"},
    {RULE(", \"subscribe\": {\"deny\": [\"a..b q\"]}"), "empty token"},
    {RULE(", \"response\": {\"max\": -1}"), "key \"response.max\": is out of range"},
    {RULE(", \"response\": {\"ttl_ms\": -1}"), "key \"response.ttl_ms\": is out of range"},
    {RULE(", \"response\": 1"), "key \"response\": must be an object"},
    {RULE(", \"connection_types\": [\"standard\"]"), "unknown connection type \"standard\""},
    {RULE(", \"connection_types\": [\"IN_PROCESS\"]"), "key \"connection_types[0]\""},
    {RULE(", \"connection_types\": \"STANDARD\""), "must be an array"},
    {RULE(", \"source_cidrs\": [\"10.0.0.1/8\"]"), "host bits set"},
    {RULE(", \"source_cidrs\": [\"10.0.0.0/33\"]"), "from 0 to 32"},
    {RULE(", \"source_cidrs\": [\"::/129\"]"), "from 0 to 128"},
    {RULE(", \"source_cidrs\": [\"10.0.0.0\"]"), "not ADDRESS/PREFIX"},
    {RULE(", \"source_cidrs\": [\"10.0.0.0/\"]"), "prefix length"},
    {RULE(", \"source_cidrs\": [\"10.0.0.0/08\"]"), "prefix length"},
    {RULE(", \"source_cidrs\": [\"host.example/8\"]"), "not a numeric IPv4 or IPv6"},
    {RULE(", \"source_cidrs\": [\"127.0.0.0/8\", 5]"), "key \"source_cidrs[1]\""},
};

Test(policy, rejections_name_file_rule_key)
{
    size_t count = sizeof(rejection_cases) / sizeof(rejection_cases[0]);
    for (size_t i = 0; i < count; i++) {
        const rejection_case *c = &rejection_cases[i];
        char text[2048];
        if (c->rule_json[0] == '!')
            snprintf(text, sizeof(text), "%s", c->rule_json + 1);
        else
            snprintf(text, sizeof(text), "{\"rules\": [%s]}", c->rule_json);

        cc_err err = {0};
        cr_expect_eq(load_text(text, &err), CC_ERR_INVALID, "case %zu (%s) must be rejected", i,
                     c->rule_json);
        cr_expect_not_null(strstr(err.message, "rules.json"), "case %zu: no file in \"%s\"", i,
                           err.message);
        cr_expect_not_null(strstr(err.message, c->expected), "case %zu: \"%s\" not in \"%s\"", i,
                           c->expected, err.message);
    }
}

Test(policy, duplicate_name_across_files)
{
    char *dir = make_dir();
    write_file(dir, "1.json",
               "{\"rules\": [{\"name\": \"same\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"}]}");
    write_file(dir, "2.json",
               "{\"rules\": [{\"name\": \"same\", \"spiffe_id\": \"spiffe://citadel.mesh/b\"}]}");
    cc_err err = {0};
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, &err), CC_ERR_INVALID);
    cr_assert_null(set);
    cr_assert_not_null(strstr(err.message, "rule \"same\", key \"name\""), "%s", err.message);
    cr_assert_not_null(strstr(err.message, "1.json"), "%s", err.message);
    cr_assert_not_null(strstr(err.message, "2.json"), "%s", err.message);
    remove_dir(dir);
}

Test(policy, duplicate_spiffe_id_across_files)
{
    char *dir = make_dir();
    write_file(dir, "1.json",
               "{\"rules\": [{\"name\": \"one\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"}]}");
    write_file(dir, "2.json",
               "{\"rules\": [{\"name\": \"two\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"}]}");
    cc_err err = {0};
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, &err), CC_ERR_INVALID);
    cr_assert_not_null(strstr(err.message, "key \"spiffe_id\""), "%s", err.message);
    cr_assert_not_null(strstr(err.message, "spiffe://citadel.mesh/a"), "%s", err.message);
    remove_dir(dir);
}

Test(policy, one_bad_file_fails_whole_load)
{
    char *dir = make_dir();
    write_file(dir, "good.json",
               "{\"rules\": [{\"name\": \"one\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"}]}");
    write_file(dir, "zbad.json", "{\"rules\": [{\"name\": \"two\"}]}");
    cc_err err = {0};
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, &err), CC_ERR_INVALID);
    cr_assert_null(set);
    cr_assert_not_null(strstr(err.message, "zbad.json"), "%s", err.message);
    remove_dir(dir);
}

Test(policy, subject_check_cases)
{
    const char *valid[] = {"a", "a.b", "a.*.c", "a.>", ">", "*", "_INBOX.>", "$JS.API.>", "a.b>c"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        cr_expect_eq(cc_policy_subject_check(valid[i], false, NULL), CC_OK, "%s", valid[i]);

    cr_expect_eq(cc_policy_subject_check("jobs.> workers", true, NULL), CC_OK);
    cr_expect_eq(cc_policy_subject_check("jobs.> workers", false, NULL), CC_ERR_INVALID,
                 "queue form only under subscribe");
    cr_expect_eq(cc_policy_subject_check("a  q", true, NULL), CC_ERR_INVALID);
    cr_expect_eq(cc_policy_subject_check(" q", true, NULL), CC_ERR_INVALID);
    cr_expect_eq(cc_policy_subject_check("a\nb", false, NULL), CC_ERR_INVALID);
    cr_expect_eq(cc_policy_subject_check(".", false, NULL), CC_ERR_INVALID);
}

static cc_policy_cidr parse(const char *text)
{
    cc_policy_cidr cidr;
    cc_err err = {0};
    cr_assert_eq(cc_policy_cidr_parse(text, &cidr, &err), CC_OK, "%s: %s", text, err.message);
    return cidr;
}

Test(policy, cidr_ipv4_matching)
{
    cc_policy_cidr loopback = parse("127.0.0.0/8");
    cr_assert_eq(loopback.family, AF_INET);
    cr_assert_eq(loopback.prefix_len, 8);
    cr_assert(cc_policy_cidr_contains(&loopback, "127.0.0.1"));
    cr_assert(cc_policy_cidr_contains(&loopback, "127.255.255.255"));
    cr_assert_not(cc_policy_cidr_contains(&loopback, "128.0.0.1"));
    cr_assert(cc_policy_cidr_contains(&loopback, "::ffff:127.0.0.1"), "IPv4-mapped IPv6");
    cr_assert_not(cc_policy_cidr_contains(&loopback, "::1"));
    cr_assert_not(cc_policy_cidr_contains(&loopback, "localhost"));
    cr_assert_not(cc_policy_cidr_contains(&loopback, ""));

    cc_policy_cidr narrow = parse("192.168.1.128/25");
    cr_assert(cc_policy_cidr_contains(&narrow, "192.168.1.200"));
    cr_assert_not(cc_policy_cidr_contains(&narrow, "192.168.1.127"));

    cc_policy_cidr host = parse("10.1.2.3/32");
    cr_assert(cc_policy_cidr_contains(&host, "10.1.2.3"));
    cr_assert_not(cc_policy_cidr_contains(&host, "10.1.2.4"));

    cc_policy_cidr any = parse("0.0.0.0/0");
    cr_assert(cc_policy_cidr_contains(&any, "203.0.113.9"));
    cr_assert_not(cc_policy_cidr_contains(&any, "2001:db8::1"), "IPv4 /0 is IPv4 only");
}

Test(policy, cidr_ipv6_matching)
{
    cc_policy_cidr loopback = parse("::1/128");
    cr_assert_eq(loopback.family, AF_INET6);
    cr_assert(cc_policy_cidr_contains(&loopback, "::1"));
    cr_assert(cc_policy_cidr_contains(&loopback, "[::1]"));
    cr_assert(cc_policy_cidr_contains(&loopback, "0:0:0:0:0:0:0:1"));
    cr_assert_not(cc_policy_cidr_contains(&loopback, "::2"));
    cr_assert_not(cc_policy_cidr_contains(&loopback, "127.0.0.1"));

    cc_policy_cidr ula = parse("fd00::/8");
    cr_assert(cc_policy_cidr_contains(&ula, "fd12:3456::1"));
    cr_assert_not(cc_policy_cidr_contains(&ula, "fe80::1"));

    cc_policy_cidr odd = parse("2001:db8:8000::/33");
    cr_assert(cc_policy_cidr_contains(&odd, "2001:db8:ffff::1"));
    cr_assert_not(cc_policy_cidr_contains(&odd, "2001:db8:7fff::1"));

    cc_policy_cidr mapped = parse("::ffff:10.0.0.0/104");
    cr_assert(cc_policy_cidr_contains(&mapped, "10.9.9.9"), "IPv4 host in a mapped network");
    cr_assert_not(cc_policy_cidr_contains(&mapped, "11.0.0.1"));
}

Test(policy, rule_host_and_type_checks)
{
    char *dir = make_dir();
    write_file(dir, "p.json",
               "{\"rules\": [{\"name\": \"open\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"}, "
               "{\"name\": \"closed\", \"spiffe_id\": \"spiffe://citadel.mesh/b\", "
               "\"source_cidrs\": [\"10.0.0.0/8\", \"::1/128\"], \"connection_types\": "
               "[\"WEBSOCKET\"]}]}");
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, NULL), CC_OK);

    const cc_policy_rule *open = cc_policy_set_match(set, "spiffe://citadel.mesh/a");
    cr_assert(cc_policy_rule_allows_host(open, "198.51.100.1"));
    cr_assert(cc_policy_rule_allows_host(open, NULL));
    cr_assert(cc_policy_rule_allows_connection_type(open, "MQTT"));

    const cc_policy_rule *closed = cc_policy_set_match(set, "spiffe://citadel.mesh/b");
    cr_assert(cc_policy_rule_allows_host(closed, "10.20.30.40"));
    cr_assert(cc_policy_rule_allows_host(closed, "::1"));
    cr_assert_not(cc_policy_rule_allows_host(closed, "127.0.0.1"));
    cr_assert_not(cc_policy_rule_allows_host(closed, NULL));
    cr_assert(cc_policy_rule_allows_connection_type(closed, "WEBSOCKET"));
    cr_assert_not(cc_policy_rule_allows_connection_type(closed, "STANDARD"));
    cr_assert_not(cc_policy_rule_allows_connection_type(closed, NULL));

    cc_policy_set_release(set);
    remove_dir(dir);
}

/* Runs cc_policy_set_warn_unreachable() on the rules in text (NULL: no files)
 * with a bundle set for "citadel.mesh" only. Returns the warning count and
 * stores the log output in log_out (caller frees). */
static size_t warn_with_rules(const char *text, char **log_out)
{
    char *dir = make_dir();
    if (text != NULL)
        write_file(dir, "rules.json", text);
    cc_err err = {0};
    cc_policy_set *set = NULL;
    cr_assert_eq(cc_policy_set_load_dir(dir, &defaults, &set, &err), CC_OK, "%s", err.message);

    cc_bundle_set *bundles = cc_bundle_set_new();
    cr_assert_not_null(bundles);
    cr_assert_eq(cc_bundle_set_add(bundles, cc_bundle_new("citadel.mesh"), &err), CC_OK, "%s",
                 err.message);

    FILE *log = tmpfile();
    cr_assert_not_null(log);
    cc_log_set_fd(fileno(log));
    size_t warnings = cc_policy_set_warn_unreachable(set, bundles, dir);
    cc_log_set_fd(2);

    rewind(log);
    *log_out = calloc(1, 8192);
    cr_assert_not_null(*log_out);
    size_t n = fread(*log_out, 1, 8191, log);
    (*log_out)[n] = '\0';
    fclose(log);

    cc_bundle_set_release(bundles);
    cc_policy_set_release(set);
    remove_dir(dir);
    return warnings;
}

Test(policy, warns_rule_without_bundle)
{
    char *log = NULL;
    size_t warnings = warn_with_rules(
        "{\"rules\": [{\"name\": \"local\", \"spiffe_id\": \"spiffe://citadel.mesh/a\"},"
        " {\"name\": \"remote\", \"spiffe_id\": \"spiffe://other.test/b\"}]}",
        &log);
    cr_expect_eq(warnings, 1);
    cr_expect_not_null(strstr(log, "\"event\":\"policy_rule_unreachable\""), "%s", log);
    cr_expect_not_null(strstr(log, "\"level\":\"warn\""), "%s", log);
    cr_expect_not_null(strstr(log, "\"rule\":\"remote\""), "%s", log);
    cr_expect_not_null(strstr(log, "\"trust_domain\":\"other.test\""), "%s", log);
    cr_expect_null(strstr(log, "\"rule\":\"local\""), "%s", log);
    free(log);
}

Test(policy, warns_empty_policy_dir)
{
    char *log = NULL;
    cr_expect_eq(warn_with_rules(NULL, &log), 1);
    cr_expect_not_null(strstr(log, "\"event\":\"policy_set_empty\""), "%s", log);
    free(log);
}

Test(policy, no_warning_when_covered)
{
    char *log = NULL;
    cr_expect_eq(warn_with_rules("{\"rules\": [{\"name\": \"local\", \"spiffe_id\": "
                                 "\"spiffe://citadel.mesh/a\"}]}",
                                 &log),
                 0);
    cr_expect_eq(log[0], '\0', "%s", log);
    free(log);
}
