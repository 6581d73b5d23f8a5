/* End-to-end tests: a real nats-server 2.10 with auth_callout, the
 * citadel-callout binary ($CITADEL_BIN serve --config) and nats.c clients
 * that present X509-SVIDs.
 *
 * Each test gets its own server in a temp directory. The server requires TLS
 * client certificates (tls { verify: true }) and trusts two CAs: the
 * citadel.test CA, which is also the service's trust bundle, and an unrelated
 * CA that only the server trusts, so that the service's own bundle check is
 * what rejects the second one. One suite runs the server without verify, as a
 * misconfigured deployment would, so that a client without a certificate
 * reaches the callout, which must then deny it.
 *
 * Every decision must leave exactly one event in the audit stream, which the
 * tests read back over JetStream as the service's own user. */
#define _GNU_SOURCE /* asprintf */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>
#include <openssl/x509.h>

#include "citadel/nkey.h"
#include "../support/callout_env.h"
#include "../support/pki.h"

#define ID_SENSOR "spiffe://citadel.test/app/sensor"
#define ID_UNLISTED "spiffe://citadel.test/app/unlisted"
#define ID_SERVICE "spiffe://citadel.test/callout"

static const char policy_json[] =
    "{\"rules\": [{\"name\": \"sensor\", \"spiffe_id\": \"" ID_SENSOR "\",\n"
    "  \"publish\": {\"allow\": [\"sensor.>\"]},\n"
    "  \"subscribe\": {\"allow\": [\"sensor.>\", \"_INBOX.>\"]}}]}\n";

typedef struct e2e {
    cc_test_env env;
    cc_nkey xkey;
    cc_test_cert *ca;
    cc_test_cert *other_ca;
} e2e;

static e2e T;

/* ---- files --------------------------------------------------------------- */

static cc_test_cert *issue_leaf(const char *spiffe_id, int64_t lifetime, const cc_test_cert *ca)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(spiffe_id);
    spec.not_after_offset = lifetime;
    cc_test_cert *leaf = cc_test_cert_issue(&spec, ca);
    cr_assert_not_null(leaf);
    return leaf;
}

static int64_t cert_not_after(X509 *cert)
{
    struct tm tm;
    cr_assert(ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm));
    return (int64_t)timegm(&tm);
}

static void write_pki(void)
{
    cc_test_cert_spec ca_spec = cc_test_spec_ca("citadel test root");
    T.ca = cc_test_cert_issue(&ca_spec, NULL);
    cr_assert_not_null(T.ca);
    cc_test_cert_spec other_spec = cc_test_spec_ca("unrelated root");
    T.other_ca = cc_test_cert_issue(&other_spec, NULL);
    cr_assert_not_null(T.other_ca);

    cc_test_cert_spec server_spec = cc_test_spec_leaf(NULL);
    server_spec.common_name = "nats-server";
    server_spec.ips[0] = "127.0.0.1";
    server_spec.dns_names[0] = "localhost";
    cc_test_cert *server_cert = cc_test_cert_issue(&server_spec, T.ca);
    cr_assert_not_null(server_cert);
    cc_test_cert *service_cert = issue_leaf(ID_SERVICE, 3600, T.ca);

    X509 *ours[1] = {T.ca->cert};
    cc_test_env_write_certs(&T.env, "ca.pem", ours, 1);
    X509 *both[2] = {T.ca->cert, T.other_ca->cert};
    cc_test_env_write_certs(&T.env, "clients-ca.pem", both, 2);
    cc_test_env_write_cert(&T.env, "server", server_cert);
    cc_test_env_write_cert(&T.env, "service", service_cert);

    cc_test_cert_free(server_cert);
    cc_test_cert_free(service_cert);
}

/* ---- citadel-callout ----------------------------------------------------- */

static void write_service_config(bool with_xkey)
{
    char *config = NULL;
    int n = asprintf(&config,
                     "{\n"
                     "  \"nats\": {\n"
                     "    \"servers\": [\"tls://127.0.0.1:%d\"],\n"
                     "    \"user\": \"auth\",\n"
                     "    \"password_file\": \"auth.pass\",\n"
                     "    \"tls\": {\"ca_file\": \"ca.pem\", \"cert_file\": \"service.pem\",\n"
                     "            \"key_file\": \"service.key\"}\n"
                     "  },\n"
                     "  \"issuer_seed_file\": \"issuer.seed\",\n"
                     "%s"
                     "  \"default_account\": \"APP\",\n"
                     "  \"max_ttl_seconds\": 3600,\n"
                     "  \"trust_domains\": [{\"name\": \"citadel.test\", \"bundle_pem\": "
                     "\"ca.pem\"}],\n"
                     "  \"policy_dir\": \"policies\",\n"
                     "  \"audit\": {\"stream\": \"" CC_TEST_AUDIT_STREAM
                     "\", \"subject_prefix\": \"" CC_TEST_AUDIT_PREFIX "\"},\n"
                     "  \"workers\": 2,\n"
                     "  \"log_level\": \"debug\"\n"
                     "}\n",
                     cc_test_nats_server_port(T.env.server),
                     with_xkey ? "  \"xkey_seed_file\": \"xkey.seed\",\n" : "");
    cr_assert_gt(n, 0);
    cc_test_env_write(&T.env, "service.json", config);
    free(config);
}

/* Stops the service with SIGTERM, which must drain and exit 0, and fails the
 * test when the service's log contains a sanitizer report. */
static void stop_service(void)
{
    if (T.env.service_pid <= 0)
        return;

    /* cc_test_env_stop_service() returns -1 when the service had to be killed. */
    int status = cc_test_env_stop_service(&T.env);
    bool sanitizer_report = cc_test_env_service_log_has_sanitizer_report(&T.env);

    cr_expect(status != -1, "citadel-callout did not exit within 5 s of SIGTERM");
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "citadel-callout exited with status 0x%x after SIGTERM, expected 0", status);
    cr_expect(!sanitizer_report, "citadel-callout's log contains a sanitizer report");
}

/* ---- fixture ------------------------------------------------------------- */

static void setup_mode(bool with_xkey, bool verify)
{
    memset(&T, 0, sizeof(T));
    cc_test_env_init(&T.env);

    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &T.xkey, NULL), CC_OK);
    write_pki();
    cc_test_env_write_seed(&T.env, "xkey.seed", &T.xkey);
    cc_test_env_write(&T.env, "policies/sensor.json", policy_json);

    cc_test_env_start_server_mode(&T.env, "clients-ca.pem", with_xkey ? &T.xkey : NULL, verify);
    write_service_config(with_xkey);
    cc_test_env_start_service(&T.env);
}

static void setup_plain(void)
{
    setup_mode(false, true);
}
static void setup_xkey(void)
{
    setup_mode(true, true);
}
static void setup_no_verify(void)
{
    setup_mode(false, false);
}

static void teardown(void)
{
    stop_service();
    cc_test_env_cleanup(&T.env);
    cc_test_cert_free(T.ca);
    cc_test_cert_free(T.other_ca);
    cc_nkey_wipe(&T.xkey);
}

/* No Criterion .timeout: its timeout code in Criterion 2.4.1 sometimes leaks
 * under LeakSanitizer when two such tests run at once. Every wait in these
 * tests has its own bound. */
TestSuite(callout_e2e, .init = setup_plain, .fini = teardown);
TestSuite(callout_e2e_xkey, .init = setup_xkey, .fini = teardown);
TestSuite(callout_e2e_no_verify, .init = setup_no_verify, .fini = teardown);

/* Connects a workload with the certificate files NAME.pem and NAME.key, or
 * without a client certificate when name is NULL. errors may be NULL. */
static natsStatus connect_workload(const char *name, cc_test_async_errors *errors,
                                   natsConnection **nc)
{
    return cc_test_env_connect(&T.env, name, NULL, errors, nc);
}

/* ---- audit stream -------------------------------------------------------- */

/* Checks the one audit event a refused connection leaves behind. */
static void expect_single_deny(const char *code, const char *reason_part)
{
    json_t *events = cc_test_env_read_audit(&T.env, 1);
    json_t *event = json_array_get(events, 0);

    cr_assert_str_eq(cc_test_event_string(event, "decision"), "deny");
    cr_assert_str_eq(cc_test_event_string(event, "code"), code);
    cr_assert_not_null(strstr(cc_test_event_string(event, "reason"), reason_part), "reason: %s",
                       cc_test_event_string(event, "reason"));
    cr_assert_str_eq(cc_test_event_string(event, "_subject"), "citadel.audit.deny");
    json_decref(events);
}

/* ---- tests --------------------------------------------------------------- */

Test(callout_e2e, admitted_workload_permissions)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, T.ca);
    cc_test_env_write_cert(&T.env, "sensor", leaf);
    cc_test_async_errors errors;
    cc_test_async_errors_init(&errors);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("sensor", &errors, &nc);
    cr_assert_eq(status, NATS_OK, "connect: %s", natsStatus_GetText(status));

    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "sensor.data"), NATS_OK);
    cr_assert_eq(natsConnection_PublishString(nc, "sensor.data", "21.5"), NATS_OK);
    cr_assert_eq(natsSubscription_NextMsg(&msg, sub, 2000), NATS_OK);
    cr_assert_str_eq(natsMsg_GetData(msg), "21.5");
    natsMsg_Destroy(msg);

    cr_assert_eq(natsConnection_PublishString(nc, "forbidden.topic", "x"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    cr_assert(cc_test_async_errors_wait(&errors, 1, 3000), "no error for a denied publish");
    cr_assert_eq(errors.last, NATS_NOT_PERMITTED);
    cr_assert_not_null(strstr(errors.text, "Permissions Violation for Publish"), "%s", errors.text);

    natsSubscription *denied = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&denied, nc, "forbidden.>"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    cr_assert(cc_test_async_errors_wait(&errors, 2, 3000), "no error for a denied subscription");
    cr_assert_not_null(strstr(errors.text, "Permissions Violation for Subscription"), "%s",
                       errors.text);

    json_t *events = cc_test_env_read_audit(&T.env, 1);
    json_t *event = json_array_get(events, 0);
    cr_assert_str_eq(cc_test_event_string(event, "decision"), "allow");
    cr_assert_str_eq(cc_test_event_string(event, "reason"), "allowed by rule sensor");
    cr_assert_str_eq(cc_test_event_string(event, "spiffe_id"), ID_SENSOR);
    cr_assert_str_eq(cc_test_event_string(event, "account"), "APP");
    cr_assert_str_eq(cc_test_event_string(event, "_subject"), "citadel.audit.allow");

    json_decref(events);
    natsSubscription_Destroy(denied);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    cc_test_cert_free(leaf);
}

Test(callout_e2e, user_jwt_exp_is_svid_not_after)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, T.ca);
    cc_test_env_write_cert(&T.env, "sensor", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("sensor", NULL, &nc);
    cr_assert_eq(status, NATS_OK, "connect: %s", natsStatus_GetText(status));

    json_t *events = cc_test_env_read_audit(&T.env, 1);
    json_t *event = json_array_get(events, 0);
    json_t *exp = json_object_get(event, "user_jwt_exp");
    json_t *not_after = json_object_get(json_object_get(event, "svid"), "not_after");
    cr_assert_eq(json_integer_value(exp), cert_not_after(leaf->cert));
    cr_assert_eq(json_integer_value(not_after), cert_not_after(leaf->cert));

    json_decref(events);
    natsConnection_Destroy(nc);
    cc_test_cert_free(leaf);
}

Test(callout_e2e, identity_without_policy_refused)
{
    cc_test_cert *leaf = issue_leaf(ID_UNLISTED, 3600, T.ca);
    cc_test_env_write_cert(&T.env, "unlisted", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("unlisted", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    expect_single_deny("no_policy", "no policy for SPIFFE ID " ID_UNLISTED);
    cc_test_cert_free(leaf);
}

Test(callout_e2e, other_ca_refused)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 3600, T.other_ca);
    cc_test_env_write_cert(&T.env, "foreign", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("foreign", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    expect_single_deny("x509svid_invalid", "X509-SVID \"" ID_SENSOR "\" rejected: ");
    cc_test_cert_free(leaf);
}

/* With verify: true the TLS handshake already fails without a client
 * certificate, so the callout never receives a request for the client. */
Test(callout_e2e, client_without_certificate_refused)
{
    natsConnection *nc = NULL;

    natsStatus status = connect_workload(NULL, NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = cc_test_env_read_audit(&T.env, 0);
    json_decref(events);
}

/* nats-server checks the validity period itself during the TLS handshake
 * (verify: true), so an expired SVID never reaches the callout and leaves no
 * audit event. The decision unit tests cover the service's own expiry check. */
Test(callout_e2e, expired_svid_refused_by_tls)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_SENSOR);
    spec.not_before_offset = -7200;
    spec.not_after_offset = -60;
    cc_test_cert *leaf = cc_test_cert_issue(&spec, T.ca);
    cr_assert_not_null(leaf);
    cc_test_env_write_cert(&T.env, "expired", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("expired", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = cc_test_env_read_audit(&T.env, 0);
    json_decref(events);
    cc_test_cert_free(leaf);
}

Test(callout_e2e_xkey, sealed_callout_admits)
{
    cc_test_cert *leaf = issue_leaf(ID_SENSOR, 600, T.ca);
    cc_test_env_write_cert(&T.env, "sensor", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("sensor", NULL, &nc);
    cr_assert_eq(status, NATS_OK, "connect: %s", natsStatus_GetText(status));

    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "sensor.data"), NATS_OK);
    cr_assert_eq(natsConnection_PublishString(nc, "sensor.data", "sealed"), NATS_OK);
    cr_assert_eq(natsSubscription_NextMsg(&msg, sub, 2000), NATS_OK);
    natsMsg_Destroy(msg);

    json_t *events = cc_test_env_read_audit(&T.env, 1);
    json_t *event = json_array_get(events, 0);
    cr_assert_str_eq(cc_test_event_string(event, "decision"), "allow");
    cr_assert(json_is_true(json_object_get(event, "encrypted")));
    json_t *exp = json_object_get(event, "user_jwt_exp");
    cr_assert_eq(json_integer_value(exp), cert_not_after(leaf->cert));

    json_decref(events);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    cc_test_cert_free(leaf);
}

Test(callout_e2e_xkey, sealed_callout_denies)
{
    cc_test_cert *leaf = issue_leaf(ID_UNLISTED, 3600, T.ca);
    cc_test_env_write_cert(&T.env, "unlisted", leaf);
    natsConnection *nc = NULL;

    natsStatus status = connect_workload("unlisted", NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    json_t *events = cc_test_env_read_audit(&T.env, 1);
    json_t *event = json_array_get(events, 0);
    cr_assert_str_eq(cc_test_event_string(event, "code"), "no_policy");
    cr_assert(json_is_true(json_object_get(event, "encrypted")));

    json_decref(events);
    cc_test_cert_free(leaf);
}

Test(callout_e2e_no_verify, client_without_certificate_refused)
{
    natsConnection *nc = NULL;

    natsStatus status = connect_workload(NULL, NULL, &nc);

    cr_assert_neq(status, NATS_OK);
    expect_single_deny("no_credential", "no client certificate");
}
