/* End-to-end tests of federated trust domains, bundle reloads and JWT-SVIDs:
 * a real nats-server 2.10 with auth_callout and tls { verify: true }, the
 * citadel-callout binary, and nats.c clients (tests/support/callout_env.h).
 *
 * Three trust domains, each with its own root CA and its own bundle source:
 *   citadel.mesh   (the building) from a PEM file;
 *   cloud.example  from a SPIFFE bundle (an x509-svid key for its root CA and
 *                  a jwt-svid key that signs its JWT-SVIDs);
 *   partner.example from a SPIFFE bundle map.
 * nats-server's ca_file contains all three roots and also the building's next
 * root, which the service trusts only after a bundle rotation. So the TLS
 * handshake accepts every test certificate, and the service's own check,
 * which verifies each SVID against the bundle of its own trust domain only,
 * is what decides.
 *
 * Every decision must leave exactly one event in the audit stream. */
#define _GNU_SOURCE /* asprintf */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>
#include <openssl/evp.h>

#include "../support/callout_env.h"
#include "../support/jwtmint.h"
#include "../support/pki.h"

#define TD_BUILDING "citadel.mesh"
#define TD_CLOUD "cloud.example"
#define TD_PARTNER "partner.example"
#define ID_HALL "spiffe://citadel.mesh/sensor/hall"
#define ID_ANALYTICS "spiffe://cloud.example/analytics"
#define ID_BILLING "spiffe://cloud.example/billing"
#define ID_GATEWAY "spiffe://partner.example/gateway"
#define ID_SERVICE "spiffe://citadel.mesh/callout"

#define BUILDING_BUNDLE "bundles/citadel.mesh.pem"
#define CLOUD_BUNDLE "bundles/cloud.example.json"
#define PARTNER_MAP "bundles/federation.json"

#define JWT_KID "cloud-jwt-2026"
#define JWT_AUDIENCE "nats"
#define JWT_LEEWAY_SECONDS 5

#define RELOAD_TIMEOUT_MS 10000

/* The building sensor publishes only below building.>; cloud analytics
 * reads the building's data but publishes only below cloud.>. */
static const char policy_json[] =
    "{\"rules\": [\n"
    " {\"name\": \"building-sensor\", \"spiffe_id\": \"" ID_HALL "\",\n"
    "  \"publish\": {\"allow\": [\"building.>\"]},\n"
    "  \"subscribe\": {\"allow\": [\"building.>\", \"_INBOX.>\"]}},\n"
    " {\"name\": \"cloud-analytics\", \"spiffe_id\": \"" ID_ANALYTICS "\",\n"
    "  \"publish\": {\"allow\": [\"cloud.>\"]},\n"
    "  \"subscribe\": {\"allow\": [\"cloud.>\", \"building.>\", \"_INBOX.>\"]}},\n"
    " {\"name\": \"cloud-billing\", \"spiffe_id\": \"" ID_BILLING "\",\n"
    "  \"publish\": {\"allow\": [\"billing.>\"]}},\n"
    " {\"name\": \"partner-gateway\", \"spiffe_id\": \"" ID_GATEWAY "\",\n"
    "  \"publish\": {\"allow\": [\"partner.>\"]}}\n"
    "]}\n";

typedef struct fixture {
    cc_test_env env;
    cc_test_cert *building_ca;
    cc_test_cert *building_next_ca; /* in nats-server's ca_file, not in the bundle */
    cc_test_cert *cloud_ca;
    cc_test_cert *partner_ca;
    EVP_PKEY *jwt_key; /* cloud.example JWT authority JWT_KID */
} fixture;

static fixture F;

/* ---- PKI and bundles ----------------------------------------------------- */

static cc_test_cert *issue_ca(const char *common_name)
{
    cc_test_cert_spec spec = cc_test_spec_ca(common_name);
    cc_test_cert *ca = cc_test_cert_issue(&spec, NULL);
    cr_assert_not_null(ca);
    return ca;
}

static cc_test_cert *issue_leaf(const char *spiffe_id, const cc_test_cert *ca)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(spiffe_id);
    cc_test_cert *leaf = cc_test_cert_issue(&spec, ca);
    cr_assert_not_null(leaf);
    return leaf;
}

/* Issues a leaf for spiffe_id signed by ca and writes it as NAME.pem/.key. */
static void write_leaf(const char *name, const char *spiffe_id, const cc_test_cert *ca)
{
    cc_test_cert *leaf = issue_leaf(spiffe_id, ca);
    cc_test_env_write_cert(&F.env, name, leaf);
    cc_test_cert_free(leaf);
}

/* Returns the SPIFFE bundle (JWK Set) text of the given X.509 and JWT
 * authorities (caller frees). jwt_key may be NULL. */
static char *spiffe_bundle_text(X509 *root, EVP_PKEY *jwt_key, const char *kid)
{
    json_t *keys = json_array();
    json_t *x509_key = cc_test_jwk_x509(root);
    cr_assert_not_null(x509_key);
    json_array_append_new(keys, x509_key);
    if (jwt_key != NULL) {
        json_t *jwt_jwk = cc_test_jwk(jwt_key, kid, "jwt-svid");
        cr_assert_not_null(jwt_jwk);
        json_array_append_new(keys, jwt_jwk);
    }

    json_t *bundle = json_pack("{s:i, s:i, s:o}", "spiffe_sequence", 1, "spiffe_refresh_hint", 300,
                               "keys", keys);
    cr_assert_not_null(bundle);
    char *text = json_dumps(bundle, JSON_INDENT(2));
    cr_assert_not_null(text);
    json_decref(bundle);
    return text;
}

static void write_bundles(void)
{
    char *bundles = cc_test_env_path(&F.env, "bundles");
    cr_assert_eq(mkdir(bundles, 0700), 0);
    free(bundles);

    X509 *building[1] = {F.building_ca->cert};
    cc_test_env_write_certs(&F.env, BUILDING_BUNDLE, building, 1);

    char *cloud = spiffe_bundle_text(F.cloud_ca->cert, F.jwt_key, JWT_KID);
    cc_test_env_write(&F.env, CLOUD_BUNDLE, cloud);
    free(cloud);

    char *partner = spiffe_bundle_text(F.partner_ca->cert, NULL, NULL);
    char *map = NULL;
    cr_assert_gt(
        asprintf(&map, "{\"trust_domains\": {\"spiffe://" TD_PARTNER "\": %s}}\n", partner), 0);
    cc_test_env_write(&F.env, PARTNER_MAP, map);
    free(partner);
    free(map);
}

static void write_pki(void)
{
    F.building_ca = issue_ca("citadel.mesh root 1");
    F.building_next_ca = issue_ca("citadel.mesh root 2");
    F.cloud_ca = issue_ca("cloud.example root");
    F.partner_ca = issue_ca("partner.example root");
    F.jwt_key = cc_test_jwt_key("P-256");
    cr_assert_not_null(F.jwt_key);

    cc_test_cert_spec server_spec = cc_test_spec_leaf(NULL);
    server_spec.common_name = "nats-server";
    server_spec.ips[0] = "127.0.0.1";
    server_spec.dns_names[0] = "localhost";
    cc_test_cert *server_cert = cc_test_cert_issue(&server_spec, F.building_ca);
    cr_assert_not_null(server_cert);
    cc_test_env_write_cert(&F.env, "server", server_cert);
    cc_test_cert_free(server_cert);
    write_leaf("service", ID_SERVICE, F.building_ca);

    X509 *server_ca[1] = {F.building_ca->cert};
    cc_test_env_write_certs(&F.env, "ca.pem", server_ca, 1);
    X509 *client_cas[4] = {F.building_ca->cert, F.building_next_ca->cert, F.cloud_ca->cert,
                           F.partner_ca->cert};
    cc_test_env_write_certs(&F.env, "clients-ca.pem", client_cas, 4);

    write_bundles();
}

/* ---- service ------------------------------------------------------------- */

static void write_service_config(void)
{
    char *config = NULL;
    int n = asprintf(
        &config,
        "{\n"
        "  \"nats\": {\n"
        "    \"servers\": [\"tls://127.0.0.1:%d\"],\n"
        "    \"user\": \"auth\",\n"
        "    \"password_file\": \"auth.pass\",\n"
        "    \"tls\": {\"ca_file\": \"ca.pem\", \"cert_file\": \"service.pem\",\n"
        "            \"key_file\": \"service.key\"}\n"
        "  },\n"
        "  \"issuer_seed_file\": \"issuer.seed\",\n"
        "  \"default_account\": \"APP\",\n"
        "  \"max_ttl_seconds\": 3600,\n"
        "  \"trust_domains\": [\n"
        "    {\"name\": \"" TD_BUILDING "\", \"bundle_pem\": \"" BUILDING_BUNDLE "\"},\n"
        "    {\"name\": \"spiffe://" TD_CLOUD "\", \"spiffe_bundle\": \"" CLOUD_BUNDLE "\"}\n"
        "  ],\n"
        "  \"bundle_map\": \"" PARTNER_MAP "\",\n"
        "  \"jwt_svid\": {\"audiences\": [\"" JWT_AUDIENCE "\"], \"leeway_seconds\": %d},\n"
        "  \"policy_dir\": \"policies\",\n"
        "  \"audit\": {\"stream\": \"" CC_TEST_AUDIT_STREAM
        "\", \"subject_prefix\": \"" CC_TEST_AUDIT_PREFIX "\"},\n"
        "  \"workers\": 2,\n"
        "  \"log_level\": \"debug\"\n"
        "}\n",
        cc_test_nats_server_port(F.env.server), JWT_LEEWAY_SECONDS);
    cr_assert_gt(n, 0);
    cc_test_env_write(&F.env, "service.json", config);
    free(config);
}

static void setup(void)
{
    memset(&F, 0, sizeof(F));
    cc_test_env_init(&F.env);
    write_pki();
    cc_test_env_write(&F.env, "policies/federation.json", policy_json);
    cc_test_env_start_server(&F.env, "clients-ca.pem");
    write_service_config();
    cc_test_env_start_service(&F.env);
}

static void teardown(void)
{
    cc_test_env_cleanup(&F.env);
    cc_test_cert_free(F.building_ca);
    cc_test_cert_free(F.building_next_ca);
    cc_test_cert_free(F.cloud_ca);
    cc_test_cert_free(F.partner_ca);
    EVP_PKEY_free(F.jwt_key);
}

/* No .timeout: every wait in these tests is bounded, and Criterion 2.4
 * sometimes leaks its record of a test's timeout (calloc in BoxFort's
 * bxfi_push_timeout), which LeakSanitizer reports and scripts/run-suite.sh
 * counts as a failure. */
TestSuite(federation_e2e, .init = setup, .fini = teardown);
TestSuite(bundle_reload_e2e, .init = setup, .fini = teardown);
TestSuite(jwtsvid_e2e, .init = setup, .fini = teardown);

/* ---- checks -------------------------------------------------------------- */

/* Connects with NAME.pem and an optional token and asserts success. */
static natsConnection *connect_admitted(const char *name, const char *token,
                                        cc_test_async_errors *errors)
{
    natsConnection *nc = NULL;
    natsStatus status = cc_test_env_connect(&F.env, name, token, errors, &nc);
    if (status != NATS_OK)
        cc_test_env_print_service_log(&F.env);
    cr_assert_eq(status, NATS_OK, "connect as %s: %s", name, natsStatus_GetText(status));
    return nc;
}

/* Subscribes to subject, publishes to it and expects the message back. */
static void expect_round_trip(natsConnection *nc, const char *subject)
{
    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, subject), NATS_OK);
    cr_assert_eq(natsConnection_PublishString(nc, subject, "reading"), NATS_OK);
    cr_assert_eq(natsSubscription_NextMsg(&msg, sub, 2000), NATS_OK, "no message on %s", subject);
    cr_assert_str_eq(natsMsg_GetData(msg), "reading");
    natsMsg_Destroy(msg);
    natsSubscription_Destroy(sub);
}

/* Publishes to subject and expects errors to reach a count of seen, the
 * last one being the server's permissions violation for subject. */
static void expect_publish_violation(natsConnection *nc, cc_test_async_errors *errors,
                                     const char *subject, int seen)
{
    cr_assert_eq(natsConnection_PublishString(nc, subject, "x"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    cr_assert(cc_test_async_errors_wait(errors, seen, 3000), "no error for a publish to %s",
              subject);
    cr_assert_eq(errors->last, NATS_NOT_PERMITTED);
    cr_assert_not_null(strstr(errors->text, "Permissions Violation for Publish"), "%s",
                       errors->text);
    cr_assert_not_null(strstr(errors->text, subject), "%s", errors->text);
}

static void expect_allow_event(const json_t *event, const char *spiffe_id, const char *trust_domain,
                               const char *rule)
{
    cr_assert_str_eq(cc_test_event_string(event, "decision"), "allow");
    cr_assert_str_eq(cc_test_event_string(event, "code"), "allowed");
    cr_assert_str_eq(cc_test_event_string(event, "spiffe_id"), spiffe_id);
    cr_assert_str_eq(cc_test_event_string(event, "trust_domain"), trust_domain);
    cr_assert_str_eq(cc_test_event_string(event, "rule"), rule);
    cr_assert_str_eq(cc_test_event_string(event, "account"), "APP");
    cr_assert_str_eq(cc_test_event_string(event, "_subject"), CC_TEST_AUDIT_PREFIX ".allow");
}

static void expect_deny_event(const json_t *event, const char *code, const char *reason_part)
{
    const char *reason = cc_test_event_string(event, "reason");
    cr_assert_str_eq(cc_test_event_string(event, "decision"), "deny");
    cr_assert_str_eq(cc_test_event_string(event, "code"), code);
    cr_assert_not_null(reason);
    cr_assert_not_null(strstr(reason, reason_part), "reason: %s", reason);
    cr_assert_null(strstr(reason, "rejected: X509-SVID"), "prefix doubled: %s", reason);
    cr_assert_str_eq(cc_test_event_string(event, "_subject"), CC_TEST_AUDIT_PREFIX ".deny");
}

/* Returns the one event for spiffe_id in events (borrowed). */
static json_t *event_for(json_t *events, const char *spiffe_id)
{
    json_t *found = NULL;
    size_t index;
    json_t *event;
    json_array_foreach(events, index, event)
    {
        const char *id = cc_test_event_string(event, "spiffe_id");
        if (id != NULL && strcmp(id, spiffe_id) == 0) {
            cr_assert_null(found, "two audit events for %s", spiffe_id);
            found = event;
        }
    }
    cr_assert_not_null(found, "no audit event for %s", spiffe_id);
    return found;
}

/* ---- federation ---------------------------------------------------------- */

Test(federation_e2e, cloud_workload_own_rule)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    cc_test_async_errors errors;
    cc_test_async_errors_init(&errors);

    natsConnection *nc = connect_admitted("analytics", NULL, &errors);

    expect_round_trip(nc, "cloud.report");
    expect_publish_violation(nc, &errors, "building.hall.lights", 1);
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    expect_allow_event(json_array_get(events, 0), ID_ANALYTICS, TD_CLOUD, "cloud-analytics");

    json_decref(events);
    natsConnection_Destroy(nc);
}

Test(federation_e2e, building_workload_own_rule)
{
    write_leaf("hall", ID_HALL, F.building_ca);
    cc_test_async_errors errors;
    cc_test_async_errors_init(&errors);

    natsConnection *nc = connect_admitted("hall", NULL, &errors);

    expect_round_trip(nc, "building.hall.temperature");
    expect_publish_violation(nc, &errors, "cloud.report", 1);
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    expect_allow_event(json_array_get(events, 0), ID_HALL, TD_BUILDING, "building-sensor");

    json_decref(events);
    natsConnection_Destroy(nc);
}

Test(federation_e2e, partner_workload_from_map)
{
    write_leaf("gateway", ID_GATEWAY, F.partner_ca);
    cc_test_async_errors errors;
    cc_test_async_errors_init(&errors);

    natsConnection *nc = connect_admitted("gateway", NULL, &errors);

    expect_publish_violation(nc, &errors, "cloud.report", 1);
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    expect_allow_event(json_array_get(events, 0), ID_GATEWAY, TD_PARTNER, "partner-gateway");

    json_decref(events);
    natsConnection_Destroy(nc);
}

/* The workload presents its leaf and an intermediate CA of its domain. The
 * service verifies the chain against the cloud bundle, which contains only
 * the root. */
Test(federation_e2e, intermediate_chain_admitted)
{
    cc_test_cert_spec spec = cc_test_spec_ca("cloud.example issuing CA");
    cc_test_cert *intermediate = cc_test_cert_issue(&spec, F.cloud_ca);
    cr_assert_not_null(intermediate);
    cc_test_cert *leaf = issue_leaf(ID_ANALYTICS, intermediate);
    X509 *chain[2] = {leaf->cert, intermediate->cert};
    cc_test_env_write_certs(&F.env, "chained.pem", chain, 2);
    char *key_path = cc_test_env_path(&F.env, "chained.key");
    cr_assert_eq(cc_test_write_key_pem(key_path, leaf->key), 0);

    natsConnection *nc = connect_admitted("chained", NULL, NULL);

    expect_round_trip(nc, "cloud.report");
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    expect_allow_event(json_array_get(events, 0), ID_ANALYTICS, TD_CLOUD, "cloud-analytics");

    json_decref(events);
    natsConnection_Destroy(nc);
    free(key_path);
    cc_test_cert_free(leaf);
    cc_test_cert_free(intermediate);
}

/* Messages flow between the two domains within each rule's permissions. */
Test(federation_e2e, building_data_reaches_cloud)
{
    write_leaf("hall", ID_HALL, F.building_ca);
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    cc_test_async_errors errors;
    cc_test_async_errors_init(&errors);
    natsConnection *building = connect_admitted("hall", NULL, NULL);
    natsConnection *cloud = connect_admitted("analytics", NULL, &errors);
    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;

    cr_assert_eq(natsConnection_SubscribeSync(&sub, cloud, "building.>"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(cloud), NATS_OK);
    cr_assert_eq(natsConnection_PublishString(building, "building.hall.co2", "612"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(building), NATS_OK);

    cr_assert_eq(natsSubscription_NextMsg(&msg, sub, 2000), NATS_OK);
    cr_assert_str_eq(natsMsg_GetSubject(msg), "building.hall.co2");
    cr_assert_str_eq(natsMsg_GetData(msg), "612");
    expect_publish_violation(cloud, &errors, "building.hall.co2", 1);
    json_t *events = cc_test_env_read_audit(&F.env, 2);
    expect_allow_event(event_for(events, ID_HALL), ID_HALL, TD_BUILDING, "building-sensor");
    expect_allow_event(event_for(events, ID_ANALYTICS), ID_ANALYTICS, TD_CLOUD, "cloud-analytics");

    json_decref(events);
    natsMsg_Destroy(msg);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(cloud);
    natsConnection_Destroy(building);
}

/* The building CA is trusted (nats-server accepts the handshake, and the
 * service has its bundle), but it may vouch only for citadel.mesh IDs. The
 * deny event carries no spiffe_id or trust_domain, because the service
 * records only verified identities. */
Test(federation_e2e, cloud_id_from_building_ca_rejected)
{
    write_leaf("impostor", ID_ANALYTICS, F.building_ca);
    natsConnection *nc = NULL;

    natsStatus status = cc_test_env_connect(&F.env, "impostor", NULL, NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    json_t *event = json_array_get(events, 0);
    expect_deny_event(event, "x509svid_invalid", "X509-SVID \"" ID_ANALYTICS "\" rejected: ");
    cr_assert_not_null(
        strstr(cc_test_event_string(event, "reason"), "certificate path validation failed"),
        "reason: %s", cc_test_event_string(event, "reason"));
    cr_assert_null(json_object_get(event, "spiffe_id"));
    cr_assert_null(json_object_get(event, "trust_domain"));
    json_decref(events);
}

Test(federation_e2e, building_id_from_cloud_ca_rejected)
{
    write_leaf("impostor", ID_HALL, F.cloud_ca);
    natsConnection *nc = NULL;

    natsStatus status = cc_test_env_connect(&F.env, "impostor", NULL, NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    json_t *event = json_array_get(events, 0);
    expect_deny_event(event, "x509svid_invalid", "certificate path validation failed");
    cr_assert_null(json_object_get(event, "spiffe_id"));
    json_decref(events);
}

/* SIGTERM after TLS connections and a reload ends the service with exit
 * status 0, after it has flushed the audit events. */
Test(federation_e2e, service_stops_cleanly)
{
    write_leaf("hall", ID_HALL, F.building_ca);
    natsConnection *nc = connect_admitted("hall", NULL, NULL);
    cc_test_env_signal_service(&F.env, SIGHUP);
    json_t *reloaded = cc_test_env_wait_log_event(&F.env, "reload_ok", 1, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(reloaded, "no reload_ok after SIGHUP");

    int status = cc_test_env_stop_service(&F.env);

    cr_assert_neq(status, -1, "the service did not stop within 5 s of SIGTERM");
    cr_assert(!WIFSIGNALED(status), "the service died from signal %d", WTERMSIG(status));
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
    json_t *stop = cc_test_env_wait_log_event(&F.env, "stop", 1, 0);
    cr_assert_not_null(stop);
    cr_assert_str_eq(cc_test_event_string(stop, "result"), "clean");
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    expect_allow_event(json_array_get(events, 0), ID_HALL, TD_BUILDING, "building-sensor");

    json_decref(events);
    json_decref(stop);
    json_decref(reloaded);
    natsConnection_Destroy(nc);
}

/* ---- bundle rotation and reload ------------------------------------------ */

/* The building bundle with the current and the next root, as a CA
 * publishes it while it rotates. */
static char *rotated_building_bundle(void)
{
    char *current = cc_test_cert_pem(F.building_ca->cert);
    char *next = cc_test_cert_pem(F.building_next_ca->cert);
    char *text = NULL;
    cr_assert_gt(asprintf(&text, "%s%s", current, next), 0);
    free(current);
    free(next);
    return text;
}

static const char garbage_bundle[] = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n";

/* Connects with NAME.pem and closes again, asserting admission. */
static void expect_admitted(const char *name)
{
    natsConnection *nc = connect_admitted(name, NULL, NULL);
    natsConnection_Destroy(nc);
}

static void expect_rejected(const char *name)
{
    natsConnection *nc = NULL;
    natsStatus status = cc_test_env_connect(&F.env, name, NULL, NULL, &nc);
    cr_assert_neq(status, NATS_OK, "%s was admitted", name);
}

/* Checks the log entry of a failed bundle load: it names the file and why
 * it failed, and states that the old bundles stay in force. */
static void expect_reload_failure_logged(const json_t *entry)
{
    cr_assert_not_null(entry, "no bundle_reload_failed line in the service log");
    const char *error = cc_test_event_string(entry, "error");
    const char *action = cc_test_event_string(entry, "action");
    cr_assert_not_null(error);
    cr_assert_not_null(strstr(error, BUILDING_BUNDLE), "error: %s", error);
    cr_assert_not_null(action);
    cr_assert_not_null(strstr(action, "previous bundles stay in force"), "action: %s", action);
}

Test(bundle_reload_e2e, rotation_by_sighup)
{
    write_leaf("next", ID_HALL, F.building_next_ca);
    expect_rejected("next");

    char *rotated = rotated_building_bundle();
    cc_test_env_replace(&F.env, BUILDING_BUNDLE, rotated);
    cc_test_env_signal_service(&F.env, SIGHUP);
    json_t *reloaded = cc_test_env_wait_log_event(&F.env, "reload_ok", 1, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(reloaded, "no reload_ok after SIGHUP");
    expect_admitted("next");

    cc_test_env_replace(&F.env, BUILDING_BUNDLE, garbage_bundle);
    cc_test_env_signal_service(&F.env, SIGHUP);
    json_t *failed = cc_test_env_wait_log_event(&F.env, "reload_failed", 1, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(failed, "no reload_failed after SIGHUP with a broken bundle");
    json_t *bundle_failed =
        cc_test_env_wait_log_event(&F.env, "bundle_reload_failed", 1, RELOAD_TIMEOUT_MS);
    expect_reload_failure_logged(bundle_failed);
    expect_admitted("next");

    json_t *events = cc_test_env_read_audit(&F.env, 3);
    expect_deny_event(json_array_get(events, 0), "x509svid_invalid", "\" rejected: ");
    expect_allow_event(json_array_get(events, 1), ID_HALL, TD_BUILDING, "building-sensor");
    expect_allow_event(json_array_get(events, 2), ID_HALL, TD_BUILDING, "building-sensor");

    json_decref(events);
    json_decref(bundle_failed);
    json_decref(failed);
    json_decref(reloaded);
    free(rotated);
}

/* Without a signal, the service's file watcher (one poll per second) picks
 * up the change. */
Test(bundle_reload_e2e, rotation_by_file_watch)
{
    write_leaf("next", ID_HALL, F.building_next_ca);
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    expect_rejected("next");

    char *rotated = rotated_building_bundle();
    cc_test_env_replace(&F.env, BUILDING_BUNDLE, rotated);
    json_t *reloaded = cc_test_env_wait_log_event(&F.env, "bundle_reloaded", 1, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(reloaded, "the watcher did not reload the changed bundle");
    cr_assert_eq(json_integer_value(json_object_get(reloaded, "trust_domains")), 3);
    expect_admitted("next");

    cc_test_env_replace(&F.env, BUILDING_BUNDLE, garbage_bundle);
    json_t *failed =
        cc_test_env_wait_log_event(&F.env, "bundle_reload_failed", 1, RELOAD_TIMEOUT_MS);
    expect_reload_failure_logged(failed);
    expect_admitted("next");
    expect_admitted("analytics");
    cr_assert_eq(cc_test_env_count_log_events(&F.env, "bundle_reloaded"), 1);

    /* A repaired file is loaded again: this bundle has only the old root. */
    char *old_root = cc_test_cert_pem(F.building_ca->cert);
    cc_test_env_replace(&F.env, BUILDING_BUNDLE, old_root);
    json_t *repaired = cc_test_env_wait_log_event(&F.env, "bundle_reloaded", 2, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(repaired, "the watcher did not load the repaired bundle");
    expect_rejected("next");

    json_t *events = cc_test_env_read_audit(&F.env, 5);
    expect_deny_event(json_array_get(events, 0), "x509svid_invalid", "\" rejected: ");
    expect_allow_event(json_array_get(events, 1), ID_HALL, TD_BUILDING, "building-sensor");
    expect_allow_event(json_array_get(events, 2), ID_HALL, TD_BUILDING, "building-sensor");
    expect_allow_event(json_array_get(events, 3), ID_ANALYTICS, TD_CLOUD, "cloud-analytics");
    expect_deny_event(json_array_get(events, 4), "x509svid_invalid", "\" rejected: ");

    json_decref(events);
    json_decref(repaired);
    json_decref(failed);
    json_decref(reloaded);
    free(old_root);
    free(rotated);
}

/* The last step of a rotation removes the old root from the bundle: its
 * leaves are rejected from then on, though nats-server still trusts it. */
Test(bundle_reload_e2e, retired_root_rejected)
{
    write_leaf("current", ID_HALL, F.building_ca);
    write_leaf("next", ID_HALL, F.building_next_ca);
    expect_admitted("current");

    char *next_root = cc_test_cert_pem(F.building_next_ca->cert);
    cc_test_env_replace(&F.env, BUILDING_BUNDLE, next_root);
    cc_test_env_signal_service(&F.env, SIGHUP);
    json_t *reloaded = cc_test_env_wait_log_event(&F.env, "reload_ok", 1, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(reloaded, "no reload_ok after SIGHUP");
    expect_rejected("current");
    expect_admitted("next");

    json_t *events = cc_test_env_read_audit(&F.env, 3);
    expect_allow_event(json_array_get(events, 0), ID_HALL, TD_BUILDING, "building-sensor");
    expect_deny_event(json_array_get(events, 1), "x509svid_invalid",
                      "certificate path validation failed");
    expect_allow_event(json_array_get(events, 2), ID_HALL, TD_BUILDING, "building-sensor");

    json_decref(events);
    json_decref(reloaded);
    free(next_root);
}

/* Reloads triggered while workloads connect never leave a request without
 * bundles or policies: every connection is admitted and audited. The bundle
 * is rewritten once before the signals, because a file that changes during
 * a reload's settle delay fails that reload ("still being written"), and
 * with it the policy reload of the same SIGHUP. */
Test(bundle_reload_e2e, reloads_during_connections)
{
    enum { CONNECTIONS = 12 };
    write_leaf("next", ID_HALL, F.building_next_ca);
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    char *rotated = rotated_building_bundle();
    cc_test_env_replace(&F.env, BUILDING_BUNDLE, rotated);
    cc_test_env_signal_service(&F.env, SIGHUP);
    json_t *reloaded = cc_test_env_wait_log_event(&F.env, "reload_ok", 1, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(reloaded, "no reload_ok after SIGHUP");

    for (int i = 0; i < CONNECTIONS; i++) {
        cc_test_env_signal_service(&F.env, SIGHUP);
        expect_admitted(i % 2 == 0 ? "next" : "analytics");
    }

    json_t *events = cc_test_env_read_audit(&F.env, CONNECTIONS);
    for (size_t i = 0; i < CONNECTIONS; i++) {
        const json_t *event = json_array_get(events, i);
        cr_assert_str_eq(cc_test_event_string(event, "decision"), "allow", "event %zu: %s", i,
                         cc_test_event_string(event, "reason"));
    }
    json_t *later = cc_test_env_wait_log_event(&F.env, "reload_ok", 2, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(later, "no reload_ok for the SIGHUPs sent while connecting");
    cr_assert_eq(cc_test_env_count_log_events(&F.env, "reload_failed"), 0);

    json_decref(later);
    json_decref(events);
    json_decref(reloaded);
    free(rotated);
}

/* A new JWT authority in the SPIFFE bundle takes effect on reload, and the
 * one it replaced stops working. */
Test(bundle_reload_e2e, jwt_authority_rotation)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    EVP_PKEY *next_key = cc_test_jwt_key("P-384");
    cr_assert_not_null(next_key);
    int64_t exp = (int64_t)time(NULL) + 600;
    char *old_token = cc_test_jwtsvid(F.jwt_key, "ES256", JWT_KID, ID_ANALYTICS, JWT_AUDIENCE, exp);
    char *next_token =
        cc_test_jwtsvid(next_key, "ES384", "cloud-jwt-2027", ID_ANALYTICS, JWT_AUDIENCE, exp);
    cr_assert_not_null(old_token);
    cr_assert_not_null(next_token);
    natsConnection *nc = NULL;
    cr_assert_neq(cc_test_env_connect(&F.env, "analytics", next_token, NULL, &nc), NATS_OK);

    char *bundle = spiffe_bundle_text(F.cloud_ca->cert, next_key, "cloud-jwt-2027");
    cc_test_env_replace(&F.env, CLOUD_BUNDLE, bundle);
    cc_test_env_signal_service(&F.env, SIGHUP);
    json_t *reloaded = cc_test_env_wait_log_event(&F.env, "reload_ok", 1, RELOAD_TIMEOUT_MS);
    cr_assert_not_null(reloaded, "no reload_ok after SIGHUP");
    nc = connect_admitted("analytics", next_token, NULL);
    natsConnection_Destroy(nc);
    nc = NULL;
    cr_assert_neq(cc_test_env_connect(&F.env, "analytics", old_token, NULL, &nc), NATS_OK);

    json_t *events = cc_test_env_read_audit(&F.env, 3);
    expect_deny_event(json_array_get(events, 0), "jwtsvid_invalid",
                      "no JWT authority \"cloud-jwt-2027\"");
    expect_allow_event(json_array_get(events, 1), ID_ANALYTICS, TD_CLOUD, "cloud-analytics");
    expect_deny_event(json_array_get(events, 2), "jwtsvid_invalid",
                      "no JWT authority \"" JWT_KID "\"");

    json_decref(events);
    json_decref(reloaded);
    free(bundle);
    free(next_token);
    free(old_token);
    EVP_PKEY_free(next_key);
}

/* ---- JWT-SVID ------------------------------------------------------------ */

/* Signs a JWT-SVID with the cloud.example JWT authority. Caller frees. */
static char *cloud_token(const char *sub, const char *aud, int64_t exp)
{
    char *token = cc_test_jwtsvid(F.jwt_key, "ES256", JWT_KID, sub, aud, exp);
    cr_assert_not_null(token);
    return token;
}

/* Connects with the certificate NAME.pem and token, expects a rejection and
 * returns the one audit event (caller decrefs). The X509-SVID is valid, so
 * the event names its SPIFFE ID and trust domain. */
static json_t *expect_token_rejected(const char *cert_name, const char *token,
                                     const char *spiffe_id, const char *trust_domain,
                                     const char *code, const char *reason_part)
{
    natsConnection *nc = NULL;

    natsStatus status = cc_test_env_connect(&F.env, cert_name, token, NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    json_t *event = json_incref(json_array_get(events, 0));
    expect_deny_event(event, code, reason_part);
    cr_assert_str_eq(cc_test_event_string(event, "spiffe_id"), spiffe_id);
    cr_assert_str_eq(cc_test_event_string(event, "trust_domain"), trust_domain);
    json_decref(events);
    return event;
}

Test(jwtsvid_e2e, matching_token_admitted)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    int64_t exp = (int64_t)time(NULL) + 600;
    char *token = cloud_token(ID_ANALYTICS, JWT_AUDIENCE, exp);
    cc_test_async_errors errors;
    cc_test_async_errors_init(&errors);

    natsConnection *nc = connect_admitted("analytics", token, &errors);

    expect_round_trip(nc, "cloud.report");
    expect_publish_violation(nc, &errors, "billing.invoice", 1);
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    json_t *event = json_array_get(events, 0);
    expect_allow_event(event, ID_ANALYTICS, TD_CLOUD, "cloud-analytics");
    json_t *jwt_exp = json_object_get(json_object_get(event, "jwt_svid"), "exp");
    cr_assert_eq(json_integer_value(jwt_exp), exp);
    /* The token expires before the one-hour certificate, so it limits the
     * user JWT. */
    cr_assert_eq(json_integer_value(json_object_get(event, "user_jwt_exp")), exp);

    json_decref(events);
    natsConnection_Destroy(nc);
    free(token);
}

/* The user JWT expires with the JWT-SVID, and nats-server then closes the
 * connection. A token still inside the leeway is valid, but its exp is
 * already past, so the service denies it instead of issuing a user JWT that
 * the server would reject on arrival. */
Test(jwtsvid_e2e, token_expiry_ends_connection)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    int64_t exp = (int64_t)time(NULL) + 3;
    char *token = cloud_token(ID_ANALYTICS, JWT_AUDIENCE, exp);
    cc_test_async_errors errors;
    cc_test_async_errors_init(&errors);
    natsConnection *nc = connect_admitted("analytics", token, &errors);

    cr_assert(cc_test_async_errors_wait(&errors, 1, 10000), "the connection outlived the token");
    cr_assert_not_null(strstr(errors.text, "Expired"), "%s", errors.text);

    char *late = cloud_token(ID_ANALYTICS, JWT_AUDIENCE, (int64_t)time(NULL) - 1);
    natsConnection *rejected = NULL;
    cr_assert_neq(cc_test_env_connect(&F.env, "analytics", late, NULL, &rejected), NATS_OK);
    json_t *events = cc_test_env_read_audit(&F.env, 2);
    json_t *allowed = json_array_get(events, 0);
    expect_allow_event(allowed, ID_ANALYTICS, TD_CLOUD, "cloud-analytics");
    cr_assert_eq(json_integer_value(json_object_get(allowed, "user_jwt_exp")), exp);
    expect_deny_event(json_array_get(events, 1), "jwtsvid_invalid", "not after the decision time");

    json_decref(events);
    natsConnection_Destroy(nc);
    free(late);
    free(token);
}

Test(jwtsvid_e2e, other_subject_rejected)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    int64_t exp = (int64_t)time(NULL) + 600;
    char *token = cloud_token(ID_BILLING, JWT_AUDIENCE, exp);

    json_t *event = expect_token_rejected(
        "analytics", token, ID_ANALYTICS, TD_CLOUD, "spiffe_id_mismatch",
        "the X509-SVID names " ID_ANALYTICS " but the JWT-SVID names " ID_BILLING);

    /* The token itself verified, so the event records its expiry. */
    json_t *jwt_exp = json_object_get(json_object_get(event, "jwt_svid"), "exp");
    cr_assert_eq(json_integer_value(jwt_exp), exp);
    cr_assert_null(json_object_get(event, "rule"));
    json_decref(event);
    free(token);
}

Test(jwtsvid_e2e, expired_token_rejected)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    char *token = cloud_token(ID_ANALYTICS, JWT_AUDIENCE, (int64_t)time(NULL) - 600);

    json_t *event = expect_token_rejected("analytics", token, ID_ANALYTICS, TD_CLOUD,
                                          "jwtsvid_invalid", "JWT-SVID expired at");

    cr_assert_null(json_object_get(event, "jwt_svid"));
    json_decref(event);
    free(token);
}

Test(jwtsvid_e2e, wrong_audience_rejected)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    char *token = cloud_token(ID_ANALYTICS, "billing-api", (int64_t)time(NULL) + 600);

    json_t *event =
        expect_token_rejected("analytics", token, ID_ANALYTICS, TD_CLOUD, "jwtsvid_invalid",
                              "JWT-SVID audience \"billing-api\" is not a configured audience");

    cr_assert_null(json_object_get(event, "jwt_svid"));
    json_decref(event);
    free(token);
}

/* nats-server passes a password to the callout as connect_opts.pass, and
 * the service verifies it as a JWT-SVID when no auth_token is present, which
 * is how MQTT clients send one. The token names two audiences, one of them
 * configured. */
Test(jwtsvid_e2e, token_as_password_admitted)
{
    write_leaf("analytics", ID_ANALYTICS, F.cloud_ca);
    int64_t exp = (int64_t)time(NULL) + 600;
    char *claims = NULL;
    cr_assert_gt(asprintf(&claims,
                          "{\"sub\": \"" ID_ANALYTICS
                          "\", \"aud\": [\"billing-api\", \"" JWT_AUDIENCE "\"], \"exp\": %lld}",
                          (long long)exp),
                 0);
    char *token =
        cc_test_jws_sign("{\"alg\": \"ES256\", \"kid\": \"" JWT_KID "\", \"typ\": \"JWT\"}", claims,
                         "ES256", F.jwt_key);
    cr_assert_not_null(token);
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    char *ca = cc_test_env_path(&F.env, "ca.pem");
    char *cert = cc_test_env_path(&F.env, "analytics.pem");
    char *key = cc_test_env_path(&F.env, "analytics.key");
    cr_assert_eq(natsOptions_Create(&opts), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(opts, cc_test_nats_server_url(F.env.server)), NATS_OK);
    cr_assert_eq(natsOptions_SetAllowReconnect(opts, false), NATS_OK);
    cr_assert_eq(natsOptions_SetSecure(opts, true), NATS_OK);
    cr_assert_eq(natsOptions_LoadCATrustedCertificates(opts, ca), NATS_OK);
    cr_assert_eq(natsOptions_LoadCertificatesChain(opts, cert, key), NATS_OK);
    cr_assert_eq(natsOptions_SetUserInfo(opts, "analytics", token), NATS_OK);

    natsStatus status = natsConnection_Connect(&nc, opts);

    cr_assert_eq(status, NATS_OK, "connect: %s", natsStatus_GetText(status));
    json_t *events = cc_test_env_read_audit(&F.env, 1);
    json_t *event = json_array_get(events, 0);
    expect_allow_event(event, ID_ANALYTICS, TD_CLOUD, "cloud-analytics");
    json_t *jwt_exp = json_object_get(json_object_get(event, "jwt_svid"), "exp");
    cr_assert_eq(json_integer_value(jwt_exp), exp);

    json_decref(events);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    free(ca);
    free(cert);
    free(key);
    free(token);
    free(claims);
}

/* cloud.example's JWT authority cannot vouch for a citadel.mesh ID: the
 * building bundle (a PEM file) has no JWT authorities at all. */
Test(jwtsvid_e2e, other_domain_authority_rejected)
{
    write_leaf("hall", ID_HALL, F.building_ca);
    char *token = cloud_token(ID_HALL, JWT_AUDIENCE, (int64_t)time(NULL) + 600);

    json_t *event = expect_token_rejected("hall", token, ID_HALL, TD_BUILDING, "jwtsvid_invalid",
                                          "no JWT authority \"" JWT_KID
                                          "\" in the bundle of trust domain \"" TD_BUILDING "\"");

    cr_assert_null(json_object_get(event, "jwt_svid"));
    json_decref(event);
    free(token);
}
