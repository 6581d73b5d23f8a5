/* `citadel-callout svid verify` and `jwtsvid verify`: run the built binary
 * (path in CITADEL_BIN, set by `make check`) on certificates, bundles and
 * tokens minted here, and check exit codes and output. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "citadel/rfc3339.h"
#include "../support/jwtmint.h"
#include "../support/pki.h"

typedef struct run_result {
    int exit_code;
    char out[8192];
    char err[8192];
} run_result;

/* Reads fd to EOF into buf (size bytes, NUL-terminated). */
static void read_all(int fd, char *buf, size_t size)
{
    size_t used = 0;
    ssize_t n;
    while ((n = read(fd, buf + used, size - 1 - used)) > 0)
        used += (size_t)n;
    buf[used] = '\0';
}

/* Runs CITADEL_BIN with args (NULL-terminated, without argv[0]), feeding input
 * (may be NULL) on stdin. stdout and stderr go to files to avoid pipe deadlocks. */
static void run(const char *const *args, const char *input, run_result *result)
{
    const char *bin = getenv("CITADEL_BIN");
    cr_assert_not_null(bin, "CITADEL_BIN is not set; run the tests with `make check`");

    char *argv[24] = {(char *)bin};
    for (int i = 0; args[i] != NULL; i++) {
        cr_assert_lt(i, 22);
        argv[i + 1] = (char *)args[i];
    }

    FILE *out = tmpfile();
    FILE *err = tmpfile();
    int in[2];
    cr_assert(out != NULL && err != NULL);
    cr_assert_eq(pipe(in), 0);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(fileno(out), STDOUT_FILENO);
        dup2(fileno(err), STDERR_FILENO);
        close(in[0]);
        close(in[1]);
        execv(bin, argv);
        _exit(127);
    }
    close(in[0]);
    if (input != NULL)
        cr_assert_eq(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
    close(in[1]);

    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    result->exit_code = WEXITSTATUS(status);

    rewind(out);
    rewind(err);
    read_all(fileno(out), result->out, sizeof(result->out));
    read_all(fileno(err), result->err, sizeof(result->err));
    fclose(out);
    fclose(err);
}

static char *dir;
static char ca_path[512], other_ca_path[512], chain_path[512], map_path[512];
static char jwks_path[512], jwt_map_path[512];
static cc_test_cert *ca, *other_ca, *leaf;
static EVP_PKEY *jwt_key;

static void write_text(const char *path, const char *text)
{
    cr_assert_eq(cc_test_write_file(path, text, strlen(text)), 0, "%s", path);
}

/* Returns compact JSON text of json (stolen). Caller frees. */
static char *dump(json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    cr_assert_not_null(text);
    return text;
}

static void write_bundles(void)
{
    char *pem = cc_test_cert_pem(ca->cert);
    write_text(ca_path, pem);
    free(pem);
    pem = cc_test_cert_pem(other_ca->cert);
    write_text(other_ca_path, pem);
    free(pem);
    X509 *chain[] = {leaf->cert};
    cr_assert_eq(cc_test_write_chain_pem(chain_path, chain, 1), 0);

    char *map = dump(json_pack("{s:{s:{s:[o, o]}}}", "trust_domains", "a.example", "keys",
                               cc_test_jwk_x509(ca->cert), cc_test_jwk(jwt_key, "k1", "jwt-svid")));
    write_text(map_path, map);
    free(map);

    char *jwks = dump(json_pack("{s:[o]}", "keys", cc_test_jwk(jwt_key, "k1", "jwt-svid")));
    write_text(jwks_path, jwks);
    char *encoded = cc_test_b64(jwks, strlen(jwks));
    char *jwt_map = dump(json_pack("{s:s}", "a.example", encoded));
    write_text(jwt_map_path, jwt_map);
    free(jwks);
    free(encoded);
    free(jwt_map);
}

static void setup(void)
{
    dir = cc_test_tempdir("cli-verify");
    cr_assert_not_null(dir);
    snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
    snprintf(other_ca_path, sizeof(other_ca_path), "%s/other-ca.pem", dir);
    snprintf(chain_path, sizeof(chain_path), "%s/svid.pem", dir);
    snprintf(map_path, sizeof(map_path), "%s/map.json", dir);
    snprintf(jwks_path, sizeof(jwks_path), "%s/bundle.jwks", dir);
    snprintf(jwt_map_path, sizeof(jwt_map_path), "%s/jwt_bundle.json", dir);

    cc_test_cert_spec spec = cc_test_spec_ca("a root");
    ca = cc_test_cert_issue(&spec, NULL);
    spec = cc_test_spec_ca("other root");
    other_ca = cc_test_cert_issue(&spec, NULL);
    spec = cc_test_spec_leaf("spiffe://a.example/workload");
    leaf = cc_test_cert_issue(&spec, ca);
    jwt_key = cc_test_jwt_key("P-256");
    cr_assert(ca && other_ca && leaf && jwt_key);
    write_bundles();
}

static void teardown(void)
{
    cc_test_cert_free(ca);
    cc_test_cert_free(other_ca);
    cc_test_cert_free(leaf);
    EVP_PKEY_free(jwt_key);
    cc_test_remove_tree(dir);
    free(dir);
}

TestSuite(cli_svid, .init = setup, .fini = teardown);
TestSuite(cli_jwtsvid, .init = setup, .fini = teardown);

/* ---- svid verify -------------------------------------------------------- */

Test(cli_svid, valid_chain_prints_json)
{
    run_result r;
    run((const char *[]){"svid", "verify", "--bundle", ca_path, "--trust-domain", "a.example",
                         chain_path, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);

    json_t *out = json_loads(r.out, 0, NULL);
    cr_assert_not_null(out, "stdout: %s", r.out);
    cr_assert_str_eq(json_string_value(json_object_get(out, "spiffe_id")),
                     "spiffe://a.example/workload");
    cr_assert_str_eq(json_string_value(json_object_get(out, "trust_domain")), "a.example");
    cr_assert_eq(strlen(json_string_value(json_object_get(out, "fingerprint_sha256"))), 64);
    cr_assert_not_null(json_string_value(json_object_get(out, "serial")));

    const char *not_after = json_string_value(json_object_get(out, "not_after"));
    int64_t parsed = 0;
    cr_assert_eq(cc_rfc3339_parse(not_after, &parsed, NULL), CC_OK, "%s", not_after);
    int64_t expected = (int64_t)time(NULL) + 3600; /* the test PKI's default lifetime */
    cr_assert(parsed > expected - 60 && parsed <= expected, "not_after %s", not_after);
    json_decref(out);
    cr_assert_eq(r.err[0], '\0', "no note when --trust-domain is given: %s", r.err);
}

Test(cli_svid, pem_bound_to_leaf_domain)
{
    run_result r;
    run((const char *[]){"svid", "verify", "--bundle", ca_path, chain_path, NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "bound to \"a.example\"") != NULL, "%s", r.err);
}

Test(cli_svid, other_domain_bundle_rejected)
{
    run_result r;
    run((const char *[]){"svid", "verify", "--bundle", ca_path, "--trust-domain", "b.example",
                         chain_path, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1);
    cr_assert(strstr(r.err, "a.example") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "pass --trust-domain a.example") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "--bundle") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "configure one") == NULL, "%s", r.err);
    cr_assert_eq(r.out[0], '\0');
}

Test(cli_svid, wrong_ca_rejected)
{
    run_result r;
    run((const char *[]){"svid", "verify", "--bundle", other_ca_path, "--trust-domain", "a.example",
                         chain_path, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1, "stderr: %s", r.err);
}

Test(cli_svid, bundle_map_accepted)
{
    run_result r;
    run((const char *[]){"svid", "verify", "--bundle", map_path, chain_path, NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "\"spiffe://a.example/workload\"") != NULL, "%s", r.out);
}

Test(cli_svid, expired_at_time_rejected)
{
    run_result r;
    run((const char *[]){"svid", "verify", "--bundle", map_path, "--at", "2099-01-01T00:00:00Z",
                         chain_path, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1, "stderr: %s", r.err);
}

Test(cli_svid, usage_errors)
{
    run_result r;
    run((const char *[]){"svid", "verify", chain_path, NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 2, "missing --bundle");
    run((const char *[]){"svid", "verify", "--bundle", ca_path, NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 2, "missing chain");
    run((const char *[]){"svid", "verify", "--bundle", ca_path, "--at", "yesterday", chain_path,
                         NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 2, "bad --at");
    cr_assert(strstr(r.err, "RFC 3339") != NULL, "%s", r.err);
    run((const char *[]){"svid", "check", NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 2, "unknown action");
    run((const char *[]){"svid", "verify", "--bundle", "/nonexistent/ca.pem", chain_path, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 2, "missing bundle file");
    run((const char *[]){"svid", "--help", NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 0);
    cr_assert(strstr(r.out, "usage:") != NULL);
}

Test(cli_svid, invalid_chain_file)
{
    char bad[600];
    snprintf(bad, sizeof(bad), "%s/bad.pem", dir);
    write_text(bad, "not a certificate\n");
    run_result r;
    run((const char *[]){"svid", "verify", "--bundle", ca_path, bad, NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 1, "stderr: %s", r.err);
}

/* ---- jwtsvid verify ----------------------------------------------------- */

static char *mint(const char *aud, int64_t exp)
{
    char *token = cc_test_jwtsvid(jwt_key, "ES256", "k1", "spiffe://a.example/client", aud, exp);
    cr_assert_not_null(token);
    return token;
}

Test(cli_jwtsvid, token_argument_accepted)
{
    char *token = mint("nats", time(NULL) + 300);
    run_result r;
    run((const char *[]){"jwtsvid", "verify", "--bundle", map_path, "--audience", "other",
                         "--audience", "nats", token, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);

    json_t *out = json_loads(r.out, 0, NULL);
    cr_assert_not_null(out, "stdout: %s", r.out);
    cr_assert_str_eq(json_string_value(json_object_get(out, "spiffe_id")),
                     "spiffe://a.example/client");
    cr_assert_str_eq(json_string_value(json_object_get(out, "trust_domain")), "a.example");
    cr_assert_str_eq(json_string_value(json_object_get(out, "kid")), "k1");
    cr_assert_str_eq(json_string_value(json_object_get(out, "alg")), "ES256");
    cr_assert_str_eq(json_string_value(json_object_get(out, "audience")), "nats");
    cr_assert_not_null(json_string_value(json_object_get(out, "exp")));
    json_decref(out);
    free(token);
}

Test(cli_jwtsvid, token_on_stdin_accepted)
{
    char *token = mint("nats", time(NULL) + 300);
    char input[4096];
    snprintf(input, sizeof(input), "  %s\n", token);
    run_result r;
    run((const char *[]){"jwtsvid", "verify", "--bundle", jwt_map_path, "--audience", "nats", "-",
                         NULL},
        input, &r);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.out, "\"spiffe://a.example/client\"") != NULL, "%s", r.out);
    free(token);
}

Test(cli_jwtsvid, single_bundle_bound_to_subject)
{
    char *token = mint("nats", time(NULL) + 300);
    run_result r;
    run((const char *[]){"jwtsvid", "verify", "--bundle", jwks_path, "--audience", "nats", token,
                         NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "bound to \"a.example\"") != NULL, "%s", r.err);

    run((const char *[]){"jwtsvid", "verify", "--bundle", jwks_path, "--trust-domain", "b.example",
                         "--audience", "nats", token, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1, "bundle bound to another domain");
    free(token);
}

Test(cli_jwtsvid, audience_mismatch_rejected)
{
    char *token = mint("someone-else", time(NULL) + 300);
    run_result r;
    run((const char *[]){"jwtsvid", "verify", "--bundle", map_path, "--audience", "nats", token,
                         NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1);
    cr_assert(strstr(r.err, "audience") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "\"someone-else\"") != NULL, "the token's audience: %s", r.err);
    cr_assert(strstr(r.err, "[\"nats\"]") != NULL, "the configured audiences: %s", r.err);
    cr_assert_eq(r.out[0], '\0');
    free(token);
}

Test(cli_jwtsvid, expired_at_time_rejected)
{
    /* exp 1800000000 is 2027-01-15T08:00:00Z; 31 s later is past the default leeway. */
    char *token = mint("nats", 1800000000);
    run_result r;
    run((const char *[]){"jwtsvid", "verify", "--bundle", map_path, "--audience", "nats", "--at",
                         "2027-01-15T08:00:31Z", token, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "expired") != NULL, "%s", r.err);

    run((const char *[]){"jwtsvid", "verify", "--bundle", map_path, "--audience", "nats", "--at",
                         "2027-01-15T08:00:30Z", token, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 0, "within the leeway: %s", r.err);
    run((const char *[]){"jwtsvid", "verify", "--bundle", map_path, "--audience", "nats", "--at",
                         "2027-01-15T08:00:30Z", "--leeway", "0", token, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1, "no leeway");
    free(token);
}

Test(cli_jwtsvid, usage_errors)
{
    char *token = mint("nats", time(NULL) + 300);
    run_result r;
    run((const char *[]){"jwtsvid", "verify", "--bundle", map_path, token, NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 2, "no --audience");
    cr_assert(strstr(r.err, "--audience") != NULL, "%s", r.err);
    run((const char *[]){"jwtsvid", "verify", "--audience", "nats", token, NULL}, NULL, &r);
    cr_assert_eq(r.exit_code, 2, "no --bundle");
    run((const char *[]){"jwtsvid", "verify", "--bundle", map_path, "--audience", "nats",
                         "--leeway", "-5", token, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 2, "negative leeway");
    run((const char *[]){"jwtsvid", "verify", "--bundle", ca_path, "--audience", "nats", token,
                         NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1, "a PEM bundle has no JWT keys: %s", r.err);
    free(token);
}

Test(cli_jwtsvid, pem_bundle_has_no_jwt_authority)
{
    char *token = mint("nats", time(NULL) + 300);
    run_result r;
    run((const char *[]){"jwtsvid", "verify", "--bundle", ca_path, "--trust-domain", "a.example",
                         "--audience", "nats", token, NULL},
        NULL, &r);
    cr_assert_eq(r.exit_code, 1);
    cr_assert(strstr(r.err, "PEM bundle contains only X.509 CAs") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "SPIFFE bundle") != NULL, "names a bundle form with JWT keys: %s",
              r.err);
    free(token);
}
