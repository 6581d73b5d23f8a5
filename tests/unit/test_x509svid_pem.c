/* PEM chain parsing for the X509-SVID verifier: strings, files and arrays of
 * one-certificate strings, and everything that must be rejected. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../support/pki.h"
#include "citadel/x509svid.h"

static cc_test_cert *leaf;
static cc_test_cert *ca;
static char *leaf_pem;
static char *ca_pem;

static void setup(void)
{
    cc_test_cert_spec ca_spec = cc_test_spec_ca("pem ca");
    cc_test_cert_spec leaf_spec = cc_test_spec_leaf("spiffe://example.org/pem");
    ca = cc_test_cert_issue(&ca_spec, NULL);
    cr_assert_not_null(ca);
    leaf = cc_test_cert_issue(&leaf_spec, ca);
    cr_assert_not_null(leaf);
    leaf_pem = cc_test_cert_pem(leaf->cert);
    ca_pem = cc_test_cert_pem(ca->cert);
    cr_assert_not_null(leaf_pem);
    cr_assert_not_null(ca_pem);
}

static void teardown(void)
{
    free(ca_pem);
    free(leaf_pem);
    cc_test_cert_free(leaf);
    cc_test_cert_free(ca);
}

TestSuite(x509svid_pem, .init = setup, .fini = teardown);

/* Returns malloc'd a + b + c; the caller frees it. */
static char *concat(const char *a, const char *b, const char *c)
{
    size_t size = strlen(a) + strlen(b) + strlen(c) + 1;
    char *text = malloc(size);
    cr_assert_not_null(text);
    snprintf(text, size, "%s%s%s", a, b, c);
    return text;
}

static void expect_parse_error(const char *text, const char *reason)
{
    STACK_OF(X509) *chain = (STACK_OF(X509) *)1;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_parse_pem(text, strlen(text), &chain, &err), CC_ERR_INVALID,
                 "accepted: %s", text);
    cr_assert_null(chain);
    cr_assert(strstr(err.message, reason) != NULL, "expected \"%s\" in \"%s\"", reason,
              err.message);
}

Test(x509svid_pem, chain_in_order)
{
    char *text = concat(leaf_pem, "\n\r\n", ca_pem);
    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_parse_pem(text, strlen(text), &chain, &err), CC_OK, "%s", err.message);
    cr_assert_eq(sk_X509_num(chain), 2);
    cr_assert_eq(X509_cmp(sk_X509_value(chain, 0), leaf->cert), 0);
    cr_assert_eq(X509_cmp(sk_X509_value(chain, 1), ca->cert), 0);
    cc_x509svid_chain_free(chain);
    free(text);
}

Test(x509svid_pem, trailing_garbage)
{
    char *text = concat(leaf_pem, "junk\n", "");
    expect_parse_error(text, "unexpected text at byte");
    free(text);
}

Test(x509svid_pem, leading_garbage)
{
    char *text = concat("subject=/CN=leaf\n", leaf_pem, "");
    expect_parse_error(text, "unexpected text at byte 0");
    free(text);
}

Test(x509svid_pem, no_certificate)
{
    expect_parse_error("", "PEM text contains no certificate");
    expect_parse_error(" \n\t\n", "PEM text contains no certificate");
}

Test(x509svid_pem, missing_end_line)
{
    char *text = strdup(leaf_pem);
    cr_assert_not_null(text);
    char *end = strstr(text, "-----END");
    cr_assert_not_null(end);
    *end = '\0';
    expect_parse_error(text, "PEM block 0 (at byte 0) has no END line");
    free(text);
}

Test(x509svid_pem, private_key_block)
{
    char *key_pem = cc_test_key_pem(leaf->key);
    cr_assert_not_null(key_pem);
    char *text = concat(leaf_pem, key_pem, "");
    expect_parse_error(text, "PEM block 1 is a \"PRIVATE KEY\" block; expected CERTIFICATE");
    free(text);
    free(key_pem);
}

Test(x509svid_pem, bad_base64)
{
    char *text = strdup(leaf_pem);
    cr_assert_not_null(text);
    char *body = strchr(text, '\n') + 1;
    body[4] = '*';
    expect_parse_error(text, "PEM block 0 is malformed");
    free(text);
}

/* Wraps der in a CERTIFICATE block; the caller frees the result. */
static char *pem_of(const unsigned char *der, int len)
{
    char *text = malloc((size_t)len * 2 + 128);
    cr_assert_not_null(text);
    int used = sprintf(text, "-----BEGIN CERTIFICATE-----\n");
    used += EVP_EncodeBlock((unsigned char *)text + used, der, len);
    sprintf(text + used, "\n-----END CERTIFICATE-----\n");
    return text;
}

Test(x509svid_pem, bytes_after_der)
{
    unsigned char *der = NULL;
    int len = i2d_X509(leaf->cert, &der);
    cr_assert_gt(len, 0);
    unsigned char *longer = malloc((size_t)len + 1);
    cr_assert_not_null(longer);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0x00;

    char *text = pem_of(longer, len + 1);
    expect_parse_error(text, "PEM block 0 has 1 bytes after the DER certificate");
    free(text);
    text = pem_of(der, len - 1);
    expect_parse_error(text, "PEM block 0 does not contain a valid DER certificate");
    free(text);
    free(longer);
    OPENSSL_free(der);
}

Test(x509svid_pem, array_in_order)
{
    const char *pems[] = {leaf_pem, ca_pem};
    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_parse_pem_array(pems, 2, &chain, &err), CC_OK, "%s", err.message);
    cr_assert_eq(sk_X509_num(chain), 2);
    cr_assert_eq(X509_cmp(sk_X509_value(chain, 0), leaf->cert), 0);
    cr_assert_eq(X509_cmp(sk_X509_value(chain, 1), ca->cert), 0);
    cc_x509svid_chain_free(chain);
}

Test(x509svid_pem, array_element_with_two)
{
    char *both = concat(leaf_pem, ca_pem, "");
    const char *pems[] = {both};
    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_parse_pem_array(pems, 1, &chain, &err), CC_ERR_INVALID);
    cr_assert_null(chain);
    cr_assert(strstr(err.message, "certificate 0 of the array contains 2 certificates") != NULL,
              "%s", err.message);
    free(both);
}

Test(x509svid_pem, array_bad_element)
{
    const char *pems[] = {leaf_pem, "not pem"};
    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_parse_pem_array(pems, 2, &chain, &err), CC_ERR_INVALID);
    cr_assert_null(chain);
    cr_assert(strstr(err.message, "certificate 1 of the array: unexpected text") != NULL, "%s",
              err.message);
}

Test(x509svid_pem, array_empty)
{
    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_parse_pem_array(NULL, 0, &chain, &err), CC_ERR_INVALID);
    cr_assert_null(chain);
    cr_assert(strstr(err.message, "certificate array is empty") != NULL, "%s", err.message);
}

Test(x509svid_pem, file)
{
    char *dir = cc_test_tempdir("x509svid-pem");
    cr_assert_not_null(dir);
    char path[4096];
    snprintf(path, sizeof(path), "%s/chain.pem", dir);
    X509 *certs[] = {leaf->cert, ca->cert};
    cr_assert_eq(cc_test_write_chain_pem(path, certs, 2), 0);

    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_load_pem_file(path, &chain, &err), CC_OK, "%s", err.message);
    cr_assert_eq(sk_X509_num(chain), 2);
    cr_assert_eq(X509_cmp(sk_X509_value(chain, 0), leaf->cert), 0);
    cc_x509svid_chain_free(chain);

    snprintf(path, sizeof(path), "%s/missing.pem", dir);
    cr_assert_eq(cc_x509svid_load_pem_file(path, &chain, &err), CC_ERR_NOT_FOUND);
    cr_assert(strstr(err.message, path) != NULL, "%s", err.message);
    cr_assert_null(chain);

    cr_assert_eq(cc_test_remove_tree(dir), 0);
    free(dir);
}

Test(x509svid_pem, file_with_garbage)
{
    char *dir = cc_test_tempdir("x509svid-pem");
    cr_assert_not_null(dir);
    char path[4096];
    snprintf(path, sizeof(path), "%s/chain.pem", dir);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    fprintf(file, "%sgarbage", leaf_pem);
    fclose(file);

    STACK_OF(X509) *chain = NULL;
    cc_err err = {0};
    cr_assert_eq(cc_x509svid_load_pem_file(path, &chain, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "certificate file") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "unexpected text at byte") != NULL, "%s", err.message);

    cr_assert_eq(cc_test_remove_tree(dir), 0);
    free(dir);
}
