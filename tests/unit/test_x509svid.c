/* X509-SVID verification: one test per rule, each with a chain minted by the
 * test PKI that breaks exactly that rule, plus chains that must verify. */
#include <criterion/criterion.h>

#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "../support/pki.h"
#include "citadel/x509svid.h"

#define TD_A "a.example"
#define TD_B "b.example"
#define ID_A "spiffe://a.example/workload"
#define ID_B "spiffe://b.example/workload"

/* Root of trust domain A, valid from a day ago for ten days, so that tests
 * can move the verification time without leaving the root's validity. */
static cc_test_cert *root_a;
static cc_bundle_set *bundles;
static int64_t now;

static cc_test_cert *issue(const cc_test_cert_spec *spec, const cc_test_cert *issuer)
{
    cc_test_cert *cert = cc_test_cert_issue(spec, issuer);
    cr_assert_not_null(cert, "test PKI failed to issue a certificate");
    return cert;
}

static cc_test_cert *issue_root(const char *common_name)
{
    cc_test_cert_spec spec = cc_test_spec_ca(common_name);
    spec.not_before_offset = -86400;
    spec.not_after_offset = 10 * 86400;
    return issue(&spec, NULL);
}

static void setup(void)
{
    now = (int64_t)time(NULL);
    root_a = issue_root("a root");
    bundles = cc_bundle_set_new();
    cr_assert_not_null(bundles);
    cr_assert_eq(cc_test_bundle_add(bundles, TD_A, &root_a->cert, 1), 0);
}

static void teardown(void)
{
    cc_bundle_set_release(bundles);
    cc_test_cert_free(root_a);
}

TestSuite(x509svid, .init = setup, .fini = teardown);

/* Verifies chain with the suite's bundles at `at` and frees the chain. */
static cc_status verify_at(STACK_OF(X509) *chain, int64_t at, cc_x509svid_info *info, cc_err *err)
{
    cr_assert_not_null(chain);
    cc_status status = cc_x509svid_verify(chain, bundles, at, info, err);
    sk_X509_pop_free(chain, X509_free);
    return status;
}

/* Asserts that chain is rejected with status and a message containing reason. */
static void expect_reject(STACK_OF(X509) *chain, int64_t at, cc_status status, const char *reason)
{
    cc_x509svid_info info;
    cc_err err = {0};
    cc_status got = verify_at(chain, at, &info, &err);
    cr_assert_eq(got, status, "expected status %s, got %s: %s", cc_status_name(status),
                 cc_status_name(got), err.message);
    cr_assert(strstr(err.message, reason) != NULL, "expected \"%s\" in \"%s\"", reason,
              err.message);
    cr_assert_str_eq(info.id.id, "", "info is filled on failure");
}

static void expect_valid(STACK_OF(X509) *chain, int64_t at, cc_x509svid_info *info)
{
    cc_err err = {0};
    cc_status status = verify_at(chain, at, info, &err);
    cr_assert_eq(status, CC_OK, "%s", err.message);
}

/* Issues a leaf for ID_A directly under root A with spec changes applied by the caller. */
static void expect_leaf_reject(const cc_test_cert_spec *spec, cc_status status, const char *reason)
{
    cc_test_cert *leaf = issue(spec, root_a);
    expect_reject(cc_test_chain(leaf->cert, NULL), now, status, reason);
    cc_test_cert_free(leaf);
}

/* ---- valid chains ---- */

Test(x509svid, leaf_under_root)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.not_before_offset = -600;
    spec.not_after_offset = 1800;
    cc_test_cert *leaf = issue(&spec, root_a);
    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, NULL), now, &info);

    cr_assert_str_eq(info.id.id, ID_A);
    cr_assert_str_eq(info.id.trust_domain, TD_A);
    cr_assert_str_eq(info.id.path, "/workload");
    cr_assert_eq(info.chain_length, 2);
    cr_assert(info.not_before >= now - 600 && info.not_before <= now - 590);
    cr_assert(info.not_after >= now + 1800 && info.not_after <= now + 1810);
    cr_assert_eq(info.chain_not_after, info.not_after);

    unsigned char digest[32];
    unsigned int digest_len = 0;
    char expected[65];
    cr_assert(X509_digest(leaf->cert, EVP_sha256(), digest, &digest_len));
    for (unsigned int i = 0; i < digest_len; i++)
        snprintf(expected + 2 * i, 3, "%02x", digest[i]);
    cr_assert_str_eq(info.fingerprint_sha256, expected);

    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf->cert), NULL);
    char *serial_hex = BN_bn2hex(serial);
    for (char *c = serial_hex; *c != '\0'; c++)
        *c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    cr_assert_str_eq(info.serial_hex, serial_hex);
    OPENSSL_free(serial_hex);
    BN_free(serial);
    cc_test_cert_free(leaf);
}

Test(x509svid, chain_through_intermediate)
{
    cc_test_cert_spec mid_spec = cc_test_spec_ca("a intermediate");
    mid_spec.not_after_offset = 900;
    cc_test_cert *mid = issue(&mid_spec, root_a);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_A);
    cc_test_cert *leaf = issue(&leaf_spec, mid);
    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, mid->cert, NULL), now, &info);

    cr_assert_str_eq(info.id.id, ID_A);
    cr_assert_eq(info.chain_length, 3);
    cr_assert(info.chain_not_after < info.not_after, "the intermediate expires first");
    cr_assert(info.chain_not_after >= now + 900 && info.chain_not_after <= now + 910);
    cc_test_cert_free(leaf);
    cc_test_cert_free(mid);
}

Test(x509svid, leaf_without_eku)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.eku = CC_TEST_EKU_OMIT;
    cc_test_cert *leaf = issue(&spec, root_a);
    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, NULL), now, &info);
    cc_test_cert_free(leaf);
}

Test(x509svid, leaf_with_dns_san)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.dns_names[0] = "workload.a.example";
    spec.ips[0] = "127.0.0.1";
    cc_test_cert *leaf = issue(&spec, root_a);
    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, NULL), now, &info);
    cr_assert_str_eq(info.id.id, ID_A);
    cc_test_cert_free(leaf);
}

Test(x509svid, bundle_intermediate_is_anchor)
{
    cc_test_cert_spec mid_spec = cc_test_spec_ca("b intermediate");
    cc_test_cert *root_b = issue_root("b root");
    cc_test_cert *mid = issue(&mid_spec, root_b);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_B);
    cc_test_cert *leaf = issue(&leaf_spec, mid);
    cr_assert_eq(cc_test_bundle_add(bundles, TD_B, &mid->cert, 1), 0);

    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, NULL), now, &info);
    cr_assert_eq(info.chain_length, 2);
    cc_test_cert_free(leaf);
    cc_test_cert_free(mid);
    cc_test_cert_free(root_b);
}

Test(x509svid, rotated_bundle)
{
    /* Same subject name for both roots: chain building must pick the root by
     * key identifier. */
    cc_test_cert *old_root = issue_root("rotating root");
    cc_test_cert *new_root = issue_root("rotating root");
    cc_test_cert_spec old_spec = cc_test_spec_leaf(ID_B);
    cc_test_cert_spec new_spec = cc_test_spec_leaf("spiffe://b.example/other");
    cc_test_cert *old_leaf = issue(&old_spec, old_root);
    cc_test_cert *new_leaf = issue(&new_spec, new_root);
    X509 *roots[] = {old_root->cert, new_root->cert};
    cr_assert_eq(cc_test_bundle_add(bundles, TD_B, roots, 2), 0);

    cc_x509svid_info info;
    expect_valid(cc_test_chain(old_leaf->cert, NULL), now, &info);
    cr_assert_str_eq(info.id.id, ID_B);
    expect_valid(cc_test_chain(new_leaf->cert, NULL), now, &info);
    cr_assert_str_eq(info.id.id, "spiffe://b.example/other");

    cc_test_cert_free(new_leaf);
    cc_test_cert_free(old_leaf);
    cc_test_cert_free(new_root);
    cc_test_cert_free(old_root);
}

/* ---- chain and SAN shape ---- */

Test(x509svid, empty_chain)
{
    expect_reject(sk_X509_new_null(), now, CC_ERR_INVALID, "certificate chain is empty");
    cc_x509svid_info info;
    cc_err err;
    cr_assert_eq(cc_x509svid_verify(NULL, bundles, now, &info, &err), CC_ERR_INVALID);
}

Test(x509svid, no_san_extension)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(NULL);
    expect_leaf_reject(&spec, CC_ERR_INVALID, "certificate has no subjectAltName extension");
}

Test(x509svid, no_uri_san)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(NULL);
    spec.dns_names[0] = "workload.a.example";
    expect_leaf_reject(&spec, CC_ERR_INVALID, "certificate has no URI SAN");
}

Test(x509svid, two_uri_sans)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.uris[1] = "https://a.example/not-spiffe";
    expect_leaf_reject(&spec, CC_ERR_INVALID, "certificate has 2 URI SANs");
}

Test(x509svid, duplicate_san_extension)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.extra[0] = (cc_test_ext){"subjectAltName", "URI:spiffe://a.example/other"};
    expect_leaf_reject(&spec, CC_ERR_INVALID, "more than one subjectAltName extension");
}

Test(x509svid, malformed_san_extension)
{
    /* A subjectAltName whose value is an ASN.1 NULL instead of GeneralNames. */
    cc_test_cert_spec spec = cc_test_spec_leaf(NULL);
    spec.extra[0] = (cc_test_ext){"2.5.29.17", "DER:05:00"};
    expect_leaf_reject(&spec, CC_ERR_INVALID, "subjectAltName extension is malformed");
}

Test(x509svid, uri_with_nul)
{
    static const char uri[] = "spiffe://a.example/work\0load";
    cc_test_cert_spec spec = cc_test_spec_leaf(uri);
    spec.uri_lens[0] = sizeof(uri) - 1;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "URI SAN contains a NUL byte");
}

Test(x509svid, uri_with_non_ascii)
{
    cc_test_cert_spec spec = cc_test_spec_leaf("spiffe://a.example/caf\xc3\xa9");
    expect_leaf_reject(&spec, CC_ERR_INVALID, "URI SAN contains a non-ASCII byte (0xc3");
}

Test(x509svid, uri_not_spiffe_id)
{
    cc_test_cert_spec spec = cc_test_spec_leaf("spiffe://A.example/workload");
    expect_leaf_reject(&spec, CC_ERR_INVALID, "trust domain characters are limited");
}

Test(x509svid, root_path_id)
{
    cc_test_cert_spec spec = cc_test_spec_leaf("spiffe://a.example");
    expect_leaf_reject(&spec, CC_ERR_INVALID, "leaf SPIFFE ID has no path");
}

/* ---- leaf profile ---- */

Test(x509svid, ca_leaf)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.is_ca = true;
    spec.key_usage = KU_DIGITAL_SIGNATURE;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "leaf certificate is a CA");
}

Test(x509svid, missing_key_usage)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.key_usage = CC_TEST_KU_OMIT;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "leaf certificate has no keyUsage extension");
}

Test(x509svid, no_digital_signature)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.key_usage = KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "keyUsage lacks digitalSignature");
}

Test(x509svid, key_cert_sign_leaf)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "keyUsage has keyCertSign");
}

Test(x509svid, crl_sign_leaf)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.key_usage = KU_DIGITAL_SIGNATURE | KU_CRL_SIGN;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "keyUsage has cRLSign");
}

Test(x509svid, eku_client_only)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.eku = CC_TEST_EKU_CLIENT;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "must contain both serverAuth and clientAuth");
}

Test(x509svid, eku_server_only)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.eku = CC_TEST_EKU_SERVER;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "must contain both serverAuth and clientAuth");
}

Test(x509svid, duplicate_extension)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.extra[0] = (cc_test_ext){"keyUsage", "critical,digitalSignature"};
    expect_leaf_reject(&spec, CC_ERR_INVALID, "leaf certificate has a duplicate or malformed");
}

Test(x509svid, unknown_critical_extension)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.extra[0] = (cc_test_ext){"1.3.6.1.4.1.55555.1", "critical,ASN1:NULL"};
    expect_leaf_reject(&spec, CC_ERR_CRYPTO, "unhandled critical extension");
}

Test(x509svid, unknown_noncritical_extension)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.extra[0] = (cc_test_ext){"1.3.6.1.4.1.55555.1", "ASN1:NULL"};
    cc_test_cert *leaf = issue(&spec, root_a);
    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, NULL), now, &info);
    cc_test_cert_free(leaf);
}

/* ---- validity at the verification time ---- */

Test(x509svid, expired_leaf)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.not_before_offset = -7200;
    spec.not_after_offset = -3600;
    cc_test_cert *leaf = issue(&spec, root_a);
    expect_reject(cc_test_chain(leaf->cert, NULL), now, CC_ERR_EXPIRED,
                  "depth 0 (subject /CN=leaf): certificate has expired");

    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, NULL), now - 5000, &info);
    cc_test_cert_free(leaf);
}

Test(x509svid, leaf_not_yet_valid)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.not_before_offset = 3600;
    spec.not_after_offset = 7200;
    cc_test_cert *leaf = issue(&spec, root_a);
    expect_reject(cc_test_chain(leaf->cert, NULL), now, CC_ERR_EXPIRED,
                  "depth 0 (subject /CN=leaf): certificate is not yet valid");

    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, NULL), now + 5000, &info);
    cc_test_cert_free(leaf);
}

/* Issues an intermediate valid in [now + nb, now + na] and a leaf under it
 * valid for a wide window, then checks both `now` (rejected) and `valid_at`. */
static void check_intermediate_window(int64_t nb, int64_t na, int64_t valid_at, const char *reason)
{
    cc_test_cert_spec mid_spec = cc_test_spec_ca("a intermediate");
    mid_spec.not_before_offset = nb;
    mid_spec.not_after_offset = na;
    cc_test_cert *mid = issue(&mid_spec, root_a);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_A);
    leaf_spec.not_before_offset = -80000;
    leaf_spec.not_after_offset = 80000;
    cc_test_cert *leaf = issue(&leaf_spec, mid);

    expect_reject(cc_test_chain(leaf->cert, mid->cert, NULL), now, CC_ERR_EXPIRED, reason);
    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, mid->cert, NULL), valid_at, &info);
    cc_test_cert_free(leaf);
    cc_test_cert_free(mid);
}

Test(x509svid, expired_intermediate)
{
    check_intermediate_window(-7200, -3600, now - 5000,
                              "depth 1 (subject /CN=a intermediate): certificate has expired");
}

Test(x509svid, intermediate_not_yet_valid)
{
    check_intermediate_window(3600, 7200, now + 5000,
                              "depth 1 (subject /CN=a intermediate): certificate is not yet "
                              "valid");
}

/* ---- signing certificates ---- */

/* Verifies a leaf for ID_A under an intermediate built from mid_spec. */
static void expect_intermediate_reject(const cc_test_cert_spec *mid_spec, const char *reason)
{
    cc_test_cert *mid = issue(mid_spec, root_a);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_A);
    cc_test_cert *leaf = issue(&leaf_spec, mid);
    expect_reject(cc_test_chain(leaf->cert, mid->cert, NULL), now, CC_ERR_CRYPTO, reason);
    cc_test_cert_free(leaf);
    cc_test_cert_free(mid);
}

Test(x509svid, intermediate_ca_false)
{
    cc_test_cert_spec spec = cc_test_spec_ca("not a ca");
    spec.is_ca = false;
    spec.key_usage = KU_KEY_CERT_SIGN | KU_CRL_SIGN;
    expect_intermediate_reject(&spec, "invalid CA certificate");
}

Test(x509svid, intermediate_without_basic_constraints)
{
    cc_test_cert_spec spec = cc_test_spec_ca("no basic constraints");
    spec.omit_basic_constraints = true;
    expect_intermediate_reject(&spec, "depth 1 (subject /CN=no basic constraints): invalid CA");
}

Test(x509svid, intermediate_without_key_cert_sign)
{
    cc_test_cert_spec spec = cc_test_spec_ca("crl signer");
    spec.key_usage = KU_CRL_SIGN;
    expect_intermediate_reject(&spec, "depth 1");
}

Test(x509svid, intermediate_without_key_usage)
{
    cc_test_cert_spec spec = cc_test_spec_ca("no key usage");
    spec.key_usage = CC_TEST_KU_OMIT;
    expect_intermediate_reject(&spec, "needs a keyUsage extension with keyCertSign");
}

Test(x509svid, intermediate_duplicate_extension)
{
    cc_test_cert_spec spec = cc_test_spec_ca("duplicate");
    spec.extra[0] = (cc_test_ext){"keyUsage", "critical,keyCertSign"};
    cc_test_cert *mid = issue(&spec, root_a);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_A);
    cc_test_cert *leaf = issue(&leaf_spec, mid);
    expect_reject(cc_test_chain(leaf->cert, mid->cert, NULL), now, CC_ERR_INVALID,
                  "chain certificate 1 has a duplicate or malformed extension");
    cc_test_cert_free(leaf);
    cc_test_cert_free(mid);
}

Test(x509svid, intermediate_unknown_critical_extension)
{
    cc_test_cert_spec spec = cc_test_spec_ca("critical extension");
    spec.extra[0] = (cc_test_ext){"1.3.6.1.4.1.55555.2", "critical,ASN1:NULL"};
    expect_intermediate_reject(&spec, "unhandled critical extension");
}

Test(x509svid, path_length_exceeded)
{
    cc_test_cert_spec upper_spec = cc_test_spec_ca("upper");
    upper_spec.has_path_len = true;
    upper_spec.path_len = 0;
    cc_test_cert *upper = issue(&upper_spec, root_a);
    cc_test_cert_spec lower_spec = cc_test_spec_ca("lower");
    cc_test_cert *lower = issue(&lower_spec, upper);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_A);
    cc_test_cert *leaf = issue(&leaf_spec, lower);

    expect_reject(cc_test_chain(leaf->cert, lower->cert, upper->cert, NULL), now, CC_ERR_CRYPTO,
                  "path length constraint exceeded");
    cc_test_cert_free(leaf);
    cc_test_cert_free(lower);
    cc_test_cert_free(upper);
}

Test(x509svid, path_length_respected)
{
    cc_test_cert_spec upper_spec = cc_test_spec_ca("upper");
    upper_spec.has_path_len = true;
    upper_spec.path_len = 1;
    cc_test_cert *upper = issue(&upper_spec, root_a);
    cc_test_cert_spec lower_spec = cc_test_spec_ca("lower");
    cc_test_cert *lower = issue(&lower_spec, upper);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_A);
    cc_test_cert *leaf = issue(&leaf_spec, lower);

    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, lower->cert, upper->cert, NULL), now, &info);
    cr_assert_eq(info.chain_length, 4);
    cc_test_cert_free(leaf);
    cc_test_cert_free(lower);
    cc_test_cert_free(upper);
}

Test(x509svid, name_constraints_exclude_domain)
{
    cc_test_cert_spec spec = cc_test_spec_ca("constrained");
    spec.name_constraints = "critical,excluded;URI:a.example";
    expect_intermediate_reject(&spec, "excluded subtree violation");
}

Test(x509svid, name_constraints_permit_other_domain)
{
    cc_test_cert_spec spec = cc_test_spec_ca("constrained");
    spec.name_constraints = "critical,permitted;URI:c.example";
    expect_intermediate_reject(&spec, "permitted subtree violation");
}

Test(x509svid, name_constraints_permit_domain)
{
    cc_test_cert_spec mid_spec = cc_test_spec_ca("constrained");
    mid_spec.name_constraints = "critical,permitted;URI:a.example";
    cc_test_cert *mid = issue(&mid_spec, root_a);
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf(ID_A);
    cc_test_cert *leaf = issue(&leaf_spec, mid);
    cc_x509svid_info info;
    expect_valid(cc_test_chain(leaf->cert, mid->cert, NULL), now, &info);
    cc_test_cert_free(leaf);
    cc_test_cert_free(mid);
}

/* ---- trust domain binding ---- */

Test(x509svid, other_domain_signed_by_a)
{
    /* Domain B has its own bundle; A's CA must not be able to vouch for B. */
    cc_test_cert *root_b = issue_root("b root");
    cr_assert_eq(cc_test_bundle_add(bundles, TD_B, &root_b->cert, 1), 0);
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_B);
    cc_test_cert *leaf = issue(&spec, root_a);

    expect_reject(cc_test_chain(leaf->cert, NULL), now, CC_ERR_CRYPTO,
                  "unable to get local issuer certificate");
    cc_test_cert_free(leaf);
    cc_test_cert_free(root_b);
}

Test(x509svid, other_domain_with_a_intermediate)
{
    /* The chain even carries A's root as an intermediate: it is still untrusted for B. */
    cc_test_cert *root_b = issue_root("b root");
    cr_assert_eq(cc_test_bundle_add(bundles, TD_B, &root_b->cert, 1), 0);
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_B);
    cc_test_cert *leaf = issue(&spec, root_a);

    expect_reject(cc_test_chain(leaf->cert, root_a->cert, NULL), now, CC_ERR_CRYPTO,
                  "self-signed certificate in certificate chain");
    cc_test_cert_free(leaf);
    cc_test_cert_free(root_b);
}

Test(x509svid, unknown_trust_domain)
{
    cc_test_cert_spec spec = cc_test_spec_leaf("spiffe://c.example/workload");
    expect_leaf_reject(&spec, CC_ERR_NOT_FOUND, "no trust bundle for trust domain \"c.example\"");
}

Test(x509svid, no_bundle_set)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    cc_test_cert *leaf = issue(&spec, root_a);
    STACK_OF(X509) *chain = cc_test_chain(leaf->cert, NULL);
    cc_x509svid_info info;
    cc_err err;
    cr_assert_eq(cc_x509svid_verify(chain, NULL, now, &info, &err), CC_ERR_NOT_FOUND);
    sk_X509_pop_free(chain, X509_free);
    cc_test_cert_free(leaf);
}

Test(x509svid, empty_bundle)
{
    cr_assert_eq(cc_test_bundle_add(bundles, TD_B, NULL, 0), 0);
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_B);
    cc_test_cert *root_b = issue_root("b root");
    cc_test_cert *leaf = issue(&spec, root_b);
    expect_reject(cc_test_chain(leaf->cert, NULL), now, CC_ERR_NOT_FOUND,
                  "trust bundle of trust domain \"b.example\" has no X.509 authorities");
    cc_test_cert_free(leaf);
    cc_test_cert_free(root_b);
}

Test(x509svid, error_names_id)
{
    cc_test_cert_spec spec = cc_test_spec_leaf(ID_A);
    spec.key_usage = CC_TEST_KU_OMIT;
    expect_leaf_reject(&spec, CC_ERR_INVALID, "X509-SVID \"" ID_A "\" rejected: leaf certificate");
}

Test(x509svid, id_from_ca_cert)
{
    cc_test_cert_spec spec = cc_test_spec_ca("signing");
    spec.uris[0] = "spiffe://a.example";
    cc_test_cert *ca = issue(&spec, root_a);
    cc_spiffeid id;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_id_from_cert(ca->cert, &id, &err), CC_OK, "%s", err.message);
    cr_assert_str_eq(id.trust_domain, TD_A);
    cr_assert_str_eq(id.path, "");
    cc_test_cert_free(ca);
}
