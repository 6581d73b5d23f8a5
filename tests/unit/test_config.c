#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "citadel/config.h"

/* A temp dir with the files a minimal config refers to: sub/issuer.seed
 * (0600), sub/auth.pass (0600), sub/bundle.pem and sub/policies/. The config
 * itself goes to sub/citadel.json, so relative paths resolve against sub. */
typedef struct fixture {
    char root[64];
    char sub[128];
    char config[192];
} fixture;

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file, "cannot create %s", path);
    fputs(text, file);
    fclose(file);
    cr_assert_eq(chmod(path, mode), 0);
}

static void fixture_path(const fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->sub, name);
}

static void fixture_init(fixture *f)
{
    snprintf(f->root, sizeof(f->root), "/tmp/citadel-config-XXXXXX");
    cr_assert_not_null(mkdtemp(f->root));
    snprintf(f->sub, sizeof(f->sub), "%s/sub", f->root);
    cr_assert_eq(mkdir(f->sub, 0700), 0);
    snprintf(f->config, sizeof(f->config), "%s/citadel.json", f->sub);

    char path[256];
    fixture_path(f, "issuer.seed", path, sizeof(path));
    write_file(path, "SAIGNOREDBYTHECONFIGLOADER\n", 0600);
    fixture_path(f, "auth.pass", path, sizeof(path));
    write_file(path, "s3cret\n", 0600);
    fixture_path(f, "bundle.pem", path, sizeof(path));
    write_file(path, "", 0644);
    fixture_path(f, "policies", path, sizeof(path));
    cr_assert_eq(mkdir(path, 0700), 0);
}

static void fixture_cleanup(fixture *f)
{
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", f->root);
    cr_assert_eq(system(command), 0);
}

#define MINIMAL_NATS "\"nats\": {\"servers\": [\"nats://127.0.0.1:4222\"]}"
#define MINIMAL_REST                                                                               \
    "\"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "                        \
    "\"policy_dir\": \"policies\", "                                                               \
    "\"trust_domains\": [{\"name\": \"citadel.mesh\", \"bundle_pem\": \"bundle.pem\"}]"
#define MINIMAL "{" MINIMAL_NATS ", " MINIMAL_REST "}"

static cc_status load(fixture *f, const char *text, cc_config **out, cc_err *err)
{
    write_file(f->config, text, 0644);
    *out = NULL;
    return cc_config_load(f->config, out, err);
}

Test(config, minimal_with_defaults)
{
    fixture f;
    fixture_init(&f);
    cc_config *config;
    cc_err err = {0};
    cr_assert_eq(load(&f, MINIMAL, &config, &err), CC_OK, "%s", err.message);

    cr_assert_str_eq(config->path, f.config);
    cr_assert_str_eq(config->dir, f.sub);
    cr_assert_eq(config->nats.server_count, 1);
    cr_assert_str_eq(config->nats.servers[0], "nats://127.0.0.1:4222");
    cr_assert_str_eq(config->nats.name, CC_CONFIG_DEFAULT_CONNECTION_NAME);
    cr_assert_str_eq(config->nats.queue_group, "citadel-callout");
    cr_assert_null(config->nats.user);
    cr_assert_null(config->nats.creds_file);
    cr_assert_null(config->nats.tls_ca_file);
    cr_assert_null(config->xkey_seed_file);
    cr_assert_str_eq(config->default_account, "APP");
    cr_assert_eq(config->max_ttl_seconds, 3600);
    cr_assert_eq(config->workers, 4);
    cr_assert_eq(config->cert_cache_size, 1024);
    cr_assert_eq(config->log_level, CC_LOG_INFO);
    cr_assert_not(config->jwt_svid.enabled);
    cr_assert_str_eq(config->audit.stream, "CITADEL_AUDIT");
    cr_assert_str_eq(config->audit.subject_prefix, "citadel.audit");
    cr_assert_eq(config->audit.replicas, 1);
    cr_assert_eq(config->audit.duplicate_window_seconds, 120);
    cr_assert_eq(config->audit.queue_size, CC_CONFIG_DEFAULT_AUDIT_QUEUE_SIZE);

    cc_config_free(config);
    fixture_cleanup(&f);
}

Test(config, relative_paths_resolved)
{
    fixture f;
    fixture_init(&f);
    cc_config *config;
    cc_err err = {0};
    cr_assert_eq(load(&f, MINIMAL, &config, &err), CC_OK, "%s", err.message);

    char expected[256];
    fixture_path(&f, "issuer.seed", expected, sizeof(expected));
    cr_assert_str_eq(config->issuer_seed_file, expected);
    fixture_path(&f, "policies", expected, sizeof(expected));
    cr_assert_str_eq(config->policy_dir, expected);
    cr_assert_eq(config->bundle_source_count, 1);
    fixture_path(&f, "bundle.pem", expected, sizeof(expected));
    cr_assert_str_eq(config->bundle_sources[0].path, expected);
    cc_config_free(config);

    /* Loading through a relative config path still resolves against its directory. */
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    cr_assert_eq(chdir(f.root), 0);
    cr_assert_eq(cc_config_load("sub/citadel.json", &config, &err), CC_OK, "%s", err.message);
    fixture_path(&f, "policies", expected, sizeof(expected));
    cr_assert_str_eq(config->policy_dir, expected);
    cr_assert_eq(chdir(cwd), 0);
    cc_config_free(config);

    fixture_cleanup(&f);
}

Test(config, full_config)
{
    fixture f;
    fixture_init(&f);
    char path[256];
    fixture_path(&f, "service.key", path, sizeof(path));
    write_file(path, "key", 0400);
    fixture_path(&f, "curve.seed", path, sizeof(path));
    write_file(path, "SX", 0600);

    const char *text =
        "{\"nats\": {\"servers\": [\"tls://127.0.0.1:4222\", \"tls://127.0.0.1:4223\"], "
        "\"name\": \"callout-1\", \"user\": \"auth\", \"password_file\": \"auth.pass\", "
        "\"tls\": {\"ca_file\": \"/etc/ca.pem\", \"cert_file\": \"service.pem\", \"key_file\": "
        "\"service.key\"}, \"queue_group\": \"q\"}, "
        "\"issuer_seed_file\": \"issuer.seed\", \"xkey_seed_file\": \"curve.seed\", "
        "\"default_account\": \"APP\", \"max_ttl_seconds\": 600, "
        "\"trust_domains\": [{\"name\": \"citadel.mesh\", \"bundle_pem\": \"bundle.pem\"}, "
        "{\"name\": \"spiffe://partner.example\", \"spiffe_bundle\": \"partner.json\"}], "
        "\"bundle_map\": \"map.json\", "
        "\"spiffe_helper\": {\"trust_domain\": \"own.mesh\", \"bundle_pem\": "
        "\"svid_bundle.pem\", \"jwt_bundle\": \"jwt_bundle.json\"}, "
        "\"jwt_svid\": {\"audiences\": [\"nats\", \"citadel\"], \"leeway_seconds\": 10}, "
        "\"policy_dir\": \"/etc/citadel/policies\", "
        "\"audit\": {\"stream\": \"AUDIT\", \"subject_prefix\": \"a.b\", \"max_age_seconds\": "
        "60, \"replicas\": 3, \"duplicate_window_seconds\": 30, \"queue_size\": 10}, "
        "\"workers\": 8, \"log_level\": \"debug\", \"cert_cache_size\": 16}";
    cc_config *config;
    cc_err err = {0};
    cr_assert_eq(load(&f, text, &config, &err), CC_OK, "%s", err.message);

    cr_assert_eq(config->nats.server_count, 2);
    cr_assert_str_eq(config->nats.name, "callout-1");
    cr_assert_str_eq(config->nats.user, "auth");
    cr_assert_str_eq(config->nats.tls_ca_file, "/etc/ca.pem", "absolute paths stay as given");
    cr_assert_str_eq(config->nats.queue_group, "q");
    cr_assert_not_null(config->xkey_seed_file);
    cr_assert_eq(config->max_ttl_seconds, 600);
    cr_assert_str_eq(config->policy_dir, "/etc/citadel/policies");

    cr_assert_eq(config->bundle_source_count, 4);
    cr_assert_eq(config->bundle_sources[0].kind, CC_BUNDLE_SOURCE_PEM);
    cr_assert_str_eq(config->bundle_sources[0].trust_domain, "citadel.mesh");
    cr_assert_eq(config->bundle_sources[1].kind, CC_BUNDLE_SOURCE_SPIFFE);
    cr_assert_str_eq(config->bundle_sources[1].trust_domain, "partner.example");
    cr_assert_eq(config->bundle_sources[2].kind, CC_BUNDLE_SOURCE_MAP);
    cr_assert_null(config->bundle_sources[2].trust_domain);
    cr_assert_eq(config->bundle_sources[3].kind, CC_BUNDLE_SOURCE_SPIFFE_HELPER);
    cr_assert_str_eq(config->bundle_sources[3].trust_domain, "own.mesh");
    fixture_path(&f, "jwt_bundle.json", path, sizeof(path));
    cr_assert_str_eq(config->bundle_sources[3].jwt_path, path);

    cr_assert(config->jwt_svid.enabled);
    cr_assert_eq(config->jwt_svid.audience_count, 2);
    cr_assert_str_eq(config->jwt_svid.audiences[1], "citadel");
    cr_assert_eq(config->jwt_svid.leeway_seconds, 10);
    cr_assert_str_eq(config->audit.stream, "AUDIT");
    cr_assert_str_eq(config->audit.subject_prefix, "a.b");
    cr_assert_eq(config->audit.max_age_seconds, 60);
    cr_assert_eq(config->audit.replicas, 3);
    cr_assert_eq(config->audit.duplicate_window_seconds, 30);
    cr_assert_eq(config->audit.queue_size, 10);
    cr_assert_eq(config->workers, 8);
    cr_assert_eq(config->cert_cache_size, 16);
    cr_assert_eq(config->log_level, CC_LOG_DEBUG);

    char *password = NULL;
    cr_assert_eq(cc_config_read_password(config, &password, &err), CC_OK, "%s", err.message);
    cr_assert_str_eq(password, "s3cret", "the trailing newline is removed");
    free(password);

    cc_config_free(config);
    fixture_cleanup(&f);
}

typedef struct secret_case {
    const char *file;
    const char *config;
    const char *key;
} secret_case;

Test(config, group_readable_secret_rejected)
{
    static const secret_case cases[] = {
        {"issuer.seed", MINIMAL, "issuer_seed_file"},
        {"auth.pass",
         "{\"nats\": {\"servers\": [\"nats://127.0.0.1:4222\"], \"user\": \"auth\", "
         "\"password_file\": \"auth.pass\"}, " MINIMAL_REST "}",
         "nats.password_file"},
        {"user.creds",
         "{\"nats\": {\"servers\": [\"nats://127.0.0.1:4222\"], \"creds_file\": "
         "\"user.creds\"}, " MINIMAL_REST "}",
         "nats.creds_file"},
        {"service.key",
         "{\"nats\": {\"servers\": [\"nats://127.0.0.1:4222\"], \"tls\": {\"cert_file\": "
         "\"service.pem\", \"key_file\": \"service.key\"}}, " MINIMAL_REST "}",
         "nats.tls.key_file"},
        {"curve.seed", "{" MINIMAL_NATS ", " MINIMAL_REST ", \"xkey_seed_file\": \"curve.seed\"}",
         "xkey_seed_file"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fixture f;
        fixture_init(&f);
        char path[256];
        fixture_path(&f, cases[i].file, path, sizeof(path));
        write_file(path, "secret", 0644);

        cc_config *config;
        cc_err err = {0};
        cr_expect_eq(load(&f, cases[i].config, &config, &err), CC_ERR_PERMISSION, "%s",
                     cases[i].file);
        cr_expect_null(config);
        cr_expect_not_null(strstr(err.message, "chmod 600"), "%s", err.message);
        cr_expect_not_null(strstr(err.message, path), "%s", err.message);
        cr_expect_not_null(strstr(err.message, cases[i].key), "%s", err.message);
        cr_expect_not_null(strstr(err.message, "0644"), "%s", err.message);
        cr_expect_null(strstr(err.message, "secret\""), "the file content is not quoted");
        fixture_cleanup(&f);
    }
}

Test(config, missing_secret_file_rejected)
{
    fixture f;
    fixture_init(&f);
    char path[256];
    fixture_path(&f, "issuer.seed", path, sizeof(path));
    cr_assert_eq(unlink(path), 0);

    cc_config *config;
    cc_err err = {0};
    cr_assert_eq(load(&f, MINIMAL, &config, &err), CC_ERR_NOT_FOUND);
    cr_assert_not_null(strstr(err.message, path), "%s", err.message);
    fixture_cleanup(&f);
}

typedef struct rejection_case {
    const char *text;
    const char *expected;
} rejection_case;

static const rejection_case rejection_cases[] = {
    {"[]", "must be a JSON object"},
    {"{", "invalid JSON"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"workers\": 2, \"workers\": 3}", "invalid JSON"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"worker\": 2}", "key \"worker\": unknown key"},
    {"{\"nats\": {\"servers\": [\"nats://h\"], \"server\": 1}, " MINIMAL_REST "}",
     "key \"nats.server\": unknown key"},
    {"{\"nats\": {\"servers\": [\"nats://h\"], \"tls\": {\"ca\": \"x\"}}, " MINIMAL_REST "}",
     "key \"nats.tls.ca\": unknown key"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": {\"streams\": \"X\"}}",
     "key \"audit.streams\": unknown key"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"jwt_svid\": {\"audience\": [\"x\"]}}",
     "key \"jwt_svid.audience\": unknown key"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"spiffe_helper\": {\"bundle\": \"x\"}}",
     "key \"spiffe_helper.bundle\": unknown key"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
     "\"policy_dir\": \"p\", \"trust_domains\": [{\"name\": \"a.b\", \"pem\": \"x\"}]}",
     "key \"trust_domains[0].pem\": unknown key"},
    {"{" MINIMAL_REST "}", "key \"nats\" is missing"},
    {"{\"nats\": [], " MINIMAL_REST "}", "key \"nats\" must be a JSON object"},
    {"{\"nats\": {}, " MINIMAL_REST "}", "key \"nats.servers\" must be a non-empty array"},
    {"{\"nats\": {\"servers\": []}, " MINIMAL_REST "}", "nats.servers"},
    {"{\"nats\": {\"servers\": [\"\"]}, " MINIMAL_REST "}", "key \"nats.servers[0]\""},
    {"{\"nats\": {\"servers\": [\"nats://h\"], \"user\": \"auth\"}, " MINIMAL_REST "}",
     "go together"},
    {"{\"nats\": {\"servers\": [\"nats://h\"], \"password_file\": \"auth.pass\"}, " MINIMAL_REST
     "}",
     "go together"},
    {"{\"nats\": {\"servers\": [\"nats://h\"], \"user\": \"auth\", \"password_file\": "
     "\"auth.pass\", \"creds_file\": \"auth.pass\"}, " MINIMAL_REST "}",
     "not both"},
    {"{\"nats\": {\"servers\": [\"nats://h\"], \"tls\": {\"cert_file\": \"c.pem\"}}, " MINIMAL_REST
     "}",
     "nats.tls.key_file"},
    {"{\"nats\": {\"servers\": [\"nats://h\"], \"queue_group\": \"a b\"}, " MINIMAL_REST "}",
     "nats.queue_group"},
    {"{" MINIMAL_NATS ", \"default_account\": \"APP\", \"policy_dir\": \"p\", "
     "\"bundle_map\": \"m.json\"}",
     "key \"issuer_seed_file\" is missing"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"policy_dir\": \"p\", "
     "\"bundle_map\": \"m.json\"}",
     "key \"default_account\" is missing"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
     "\"bundle_map\": \"m.json\"}",
     "key \"policy_dir\" is missing"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
     "\"policy_dir\": \"p\"}",
     "no trust bundle is configured"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
     "\"policy_dir\": \"p\", \"trust_domains\": [{\"name\": \"a.b\", \"bundle_pem\": \"x\", "
     "\"spiffe_bundle\": \"y\"}]}",
     "exactly one of"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
     "\"policy_dir\": \"p\", \"trust_domains\": [{\"name\": \"a.b\"}]}",
     "exactly one of"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
     "\"policy_dir\": \"p\", \"trust_domains\": [{\"name\": \"Bad.Domain\", \"bundle_pem\": "
     "\"x\"}]}",
     "key \"trust_domains[0].name\" is not a valid trust domain"},
    {"{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", \"default_account\": \"APP\", "
     "\"policy_dir\": \"p\", \"trust_domains\": {}}",
     "key \"trust_domains\" must be an array"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"spiffe_helper\": {\"trust_domain\": \"a.b\"}}",
     "key \"spiffe_helper.bundle_pem\" is missing"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"jwt_svid\": {\"audiences\": []}}",
     "jwt_svid.audiences"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"jwt_svid\": {}}", "jwt_svid.audiences"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST
     ", \"jwt_svid\": {\"audiences\": [\"n\"], \"leeway_seconds\": 301}}",
     "key \"jwt_svid.leeway_seconds\" must be an integer from 0 to 300"},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"workers\": 0}", "key \"workers\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"workers\": 1000}", "key \"workers\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"workers\": \"4\"}", "key \"workers\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"cert_cache_size\": 0}", "key \"cert_cache_size\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"cert_cache_size\": 1000001}",
     "key \"cert_cache_size\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"max_ttl_seconds\": 0}", "key \"max_ttl_seconds\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"log_level\": \"verbose\"}", "key \"log_level\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": {\"stream\": \"A.B\"}}",
     "key \"audit.stream\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": {\"subject_prefix\": \"a.>\"}}",
     "key \"audit.subject_prefix\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": {\"subject_prefix\": \"a..b\"}}",
     "key \"audit.subject_prefix\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": {\"replicas\": 0}}",
     "key \"audit.replicas\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": {\"max_age_seconds\": -1}}",
     "key \"audit.max_age_seconds\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": {\"queue_size\": 0}}",
     "key \"audit.queue_size\""},
    {"{" MINIMAL_NATS ", " MINIMAL_REST ", \"audit\": 1}", "key \"audit\" must be a JSON object"},
};

Test(config, rejections_name_the_key)
{
    fixture f;
    fixture_init(&f);
    for (size_t i = 0; i < sizeof(rejection_cases) / sizeof(rejection_cases[0]); i++) {
        cc_config *config;
        cc_err err = {0};
        cr_expect_eq(load(&f, rejection_cases[i].text, &config, &err), CC_ERR_INVALID,
                     "case %zu must be rejected: %s", i, err.message);
        cr_expect_null(config);
        cr_expect_not_null(strstr(err.message, f.config), "case %zu: no file in \"%s\"", i,
                           err.message);
        cr_expect_not_null(strstr(err.message, rejection_cases[i].expected),
                           "case %zu: \"%s\" not in \"%s\"", i, rejection_cases[i].expected,
                           err.message);
    }
    fixture_cleanup(&f);
}

Test(config, accounts_list_loaded)
{
    fixture f;
    fixture_init(&f);
    cc_config *config;
    cc_err err = {0};
    const char *text = "{" MINIMAL_NATS ", " MINIMAL_REST ", \"accounts\": [\"APP\", \"OPS\"]}";
    cr_assert_eq(load(&f, text, &config, &err), CC_OK, "%s", err.message);
    cr_assert_eq(config->account_count, 2);
    cr_assert_str_eq(config->accounts[0], "APP");
    cr_assert_str_eq(config->accounts[1], "OPS");
    cc_config_free(config);
    fixture_cleanup(&f);
}

Test(config, accounts_without_default_rejected)
{
    fixture f;
    fixture_init(&f);
    cc_config *config;
    cc_err err = {0};
    const char *text = "{" MINIMAL_NATS ", " MINIMAL_REST ", \"accounts\": [\"OPS\"]}";
    cr_assert_eq(load(&f, text, &config, &err), CC_ERR_INVALID);
    cr_assert_not_null(strstr(err.message, "\"APP\", which is not in \"accounts\""), "%s",
                       err.message);
    fixture_cleanup(&f);
}

Test(config, account_with_space_rejected)
{
    fixture f;
    fixture_init(&f);
    cc_config *config;
    cc_err err = {0};
    const char *text = "{" MINIMAL_NATS ", \"issuer_seed_file\": \"issuer.seed\", "
                       "\"default_account\": \"A B\", \"policy_dir\": \"policies\", "
                       "\"bundle_map\": \"m.json\"}";
    cr_assert_eq(load(&f, text, &config, &err), CC_ERR_INVALID);
    cr_assert_not_null(strstr(err.message, "key \"default_account\""), "%s", err.message);
    fixture_cleanup(&f);
}

Test(config, missing_config_file)
{
    cc_config *config = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_config_load("/nonexistent/citadel.json", &config, &err), CC_ERR_NOT_FOUND);
    cr_assert_null(config);
    cr_assert_not_null(strstr(err.message, "/nonexistent/citadel.json"), "%s", err.message);
}
