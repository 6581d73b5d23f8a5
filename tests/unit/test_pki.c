/* Checks that the test PKI mints what its spec requests, since every X.509 test
 * relies on it. */
#include <criterion/criterion.h>

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "../support/pki.h"

Test(pki, leaf_defaults)
{
    cc_test_cert_spec spec = cc_test_spec_leaf("spiffe://example.org/workload");
    cc_test_cert *leaf = cc_test_cert_issue(&spec, NULL);
    cr_assert_not_null(leaf);

    uint32_t flags = X509_get_extension_flags(leaf->cert);
    cr_assert_eq(flags & EXFLAG_INVALID, 0);
    cr_assert_eq(flags & EXFLAG_CA, 0);
    cr_assert(flags & EXFLAG_KUSAGE);
    cr_assert_eq(X509_get_key_usage(leaf->cert), KU_DIGITAL_SIGNATURE);
    cr_assert(flags & EXFLAG_XKUSAGE);
    cr_assert_eq(X509_get_extended_key_usage(leaf->cert), XKU_SSL_SERVER | XKU_SSL_CLIENT);

    GENERAL_NAMES *names = X509_get_ext_d2i(leaf->cert, NID_subject_alt_name, NULL, NULL);
    cr_assert_not_null(names);
    cr_assert_eq(sk_GENERAL_NAME_num(names), 1);
    GENERAL_NAME *name = sk_GENERAL_NAME_value(names, 0);
    cr_assert_eq(name->type, GEN_URI);
    cr_assert_str_eq((const char *)ASN1_STRING_get0_data(name->d.uniformResourceIdentifier),
                     "spiffe://example.org/workload");
    GENERAL_NAMES_free(names);
    cc_test_cert_free(leaf);
}

Test(pki, ca_chain_verifies)
{
    cc_test_cert_spec root_spec = cc_test_spec_ca("root");
    root_spec.has_path_len = true;
    root_spec.path_len = 1;
    cc_test_cert *root = cc_test_cert_issue(&root_spec, NULL);
    cc_test_cert_spec mid_spec = cc_test_spec_ca("intermediate");
    cc_test_cert *mid = cc_test_cert_issue(&mid_spec, root);
    cc_test_cert_spec server_spec = {.common_name = "localhost",
                                     .dns_names = {"localhost"},
                                     .ips = {"127.0.0.1", "::1"},
                                     .eku = CC_TEST_EKU_SERVER};
    cc_test_cert *server = cc_test_cert_issue(&server_spec, mid);
    cr_assert_not_null(root);
    cr_assert_not_null(mid);
    cr_assert_not_null(server);

    cr_assert_eq(X509_get_pathlen(root->cert), 1);
    cr_assert_eq(X509_get_extended_key_usage(server->cert), XKU_SSL_SERVER);
    cr_assert_eq(X509_check_ip_asc(server->cert, "127.0.0.1", 0), 1);
    cr_assert_eq(X509_check_host(server->cert, "localhost", 0, 0, NULL), 1);

    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, root->cert);
    STACK_OF(X509) *untrusted = cc_test_chain(mid->cert, NULL);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    cr_assert(X509_STORE_CTX_init(ctx, store, server->cert, untrusted));
    int rc = X509_verify_cert(ctx);
    cr_assert_eq(rc, 1, "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));

    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_STORE_free(store);
    cc_test_cert_free(server);
    cc_test_cert_free(mid);
    cc_test_cert_free(root);
}

Test(pki, files_and_modes)
{
    cc_test_cert_spec spec = cc_test_spec_leaf("spiffe://example.org/workload");
    cc_test_cert *leaf = cc_test_cert_issue(&spec, NULL);
    cr_assert_not_null(leaf);
    char *dir = cc_test_tempdir("pki");
    cr_assert_not_null(dir);

    char cert_path[4096], key_path[4096];
    snprintf(cert_path, sizeof(cert_path), "%s/chain.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    cr_assert_eq(cc_test_write_chain_pem(cert_path, &leaf->cert, 1), 0);
    cr_assert_eq(cc_test_write_key_pem(key_path, leaf->key), 0);

    struct stat st;
    cr_assert_eq(stat(key_path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);

    FILE *file = fopen(key_path, "r");
    cr_assert_not_null(file);
    EVP_PKEY *key = PEM_read_PrivateKey(file, NULL, NULL, NULL);
    fclose(file);
    cr_assert_not_null(key);
    cr_assert_eq(EVP_PKEY_eq(key, leaf->key), 1);
    EVP_PKEY_free(key);

    char *pem = cc_test_cert_pem(leaf->cert);
    cr_assert_not_null(pem);
    cr_assert(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    free(pem);

    cr_assert_eq(cc_test_remove_tree(dir), 0);
    cr_assert_neq(access(dir, F_OK), 0);
    free(dir);
    cc_test_cert_free(leaf);
}
