/* Test PKI: certificate minting for unit and integration tests.
 *
 * Standard extensions are built from OpenSSL x509v3_config strings, because
 * that syntax already covers every variant the tests need (critical flags,
 * path lengths, name constraints). Subject alternative names are the
 * exception: they are built as GENERAL_NAMES by hand so that a URI can carry
 * arbitrary bytes, such as an embedded NUL or a byte >= 0x80. */
#include "pki.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define DEFAULT_NOT_BEFORE_OFFSET (-300)
#define DEFAULT_NOT_AFTER_OFFSET 3600

static void report_failure(const char *operation)
{
    fprintf(stderr, "test pki: %s failed\n", operation);
    ERR_print_errors_fp(stderr);
}

cc_test_cert_spec cc_test_spec_leaf(const char *uri)
{
    cc_test_cert_spec spec = {0};
    spec.common_name = "leaf";
    spec.uris[0] = uri;
    return spec;
}

cc_test_cert_spec cc_test_spec_ca(const char *common_name)
{
    cc_test_cert_spec spec = {0};
    spec.common_name = common_name;
    spec.is_ca = true;
    return spec;
}

/* Adds one extension from x509v3_config syntax. Returns 0 or -1. */
static int add_conf_ext(X509 *cert, X509V3_CTX *ctx, const char *name, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf(NULL, ctx, name, value);
    if (ext == NULL) {
        fprintf(stderr, "test pki: extension %s = \"%s\" is invalid\n", name, value);
        report_failure("X509V3_EXT_nconf");
        return -1;
    }
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ok) {
        report_failure("X509_add_ext");
        return -1;
    }
    return 0;
}

static int push_name(GENERAL_NAMES *names, int type, const void *data, size_t len)
{
    GENERAL_NAME *name = GENERAL_NAME_new();
    ASN1_STRING *value = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    if (name == NULL || value == NULL || !ASN1_STRING_set(value, data, (int)len)) {
        GENERAL_NAME_free(name);
        ASN1_STRING_free(value);
        return -1;
    }
    GENERAL_NAME_set0_value(name, type, value);
    if (sk_GENERAL_NAME_push(names, name) == 0) {
        GENERAL_NAME_free(name);
        return -1;
    }
    return 0;
}

/* Adds an IP SAN given as text such as "127.0.0.1" or "::1". */
static int push_ip(GENERAL_NAMES *names, const char *text)
{
    ASN1_OCTET_STRING *address = a2i_IPADDRESS(text);
    if (address == NULL) {
        fprintf(stderr, "test pki: \"%s\" is not an IP address\n", text);
        return -1;
    }
    int rc = push_name(names, GEN_IPADD, ASN1_STRING_get0_data(address),
                       (size_t)ASN1_STRING_length(address));
    ASN1_OCTET_STRING_free(address);
    return rc;
}

/* Adds the subjectAltName extension when the spec lists any name. It is
 * critical when the subject is empty, as RFC 5280 requires. */
static int add_san(X509 *cert, const cc_test_cert_spec *spec)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int rc = -1;
    if (names == NULL)
        goto done;

    for (int i = 0; i < CC_TEST_MAX_NAMES && spec->uris[i] != NULL; i++) {
        size_t len = spec->uri_lens[i] != 0 ? spec->uri_lens[i] : strlen(spec->uris[i]);
        if (push_name(names, GEN_URI, spec->uris[i], len) != 0)
            goto done;
    }
    for (int i = 0; i < CC_TEST_MAX_NAMES && spec->dns_names[i] != NULL; i++) {
        if (push_name(names, GEN_DNS, spec->dns_names[i], strlen(spec->dns_names[i])) != 0)
            goto done;
    }
    for (int i = 0; i < CC_TEST_MAX_NAMES && spec->ips[i] != NULL; i++) {
        if (push_ip(names, spec->ips[i]) != 0)
            goto done;
    }

    rc = 0;
    if (sk_GENERAL_NAME_num(names) > 0) {
        int critical = spec->common_name == NULL;
        if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names, critical, X509V3_ADD_APPEND) != 1)
            rc = -1;
    }

done:
    if (rc != 0)
        report_failure("building subjectAltName");
    GENERAL_NAMES_free(names);
    return rc;
}

/* Writes the keyUsage config value for bits, e.g. "critical,digitalSignature". */
static void key_usage_value(uint32_t bits, char *out, size_t size)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {KU_DIGITAL_SIGNATURE, "digitalSignature"},
        {KU_NON_REPUDIATION, "nonRepudiation"},
        {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
        {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {KU_KEY_AGREEMENT, "keyAgreement"},
        {KU_KEY_CERT_SIGN, "keyCertSign"},
        {KU_CRL_SIGN, "cRLSign"},
        {KU_ENCIPHER_ONLY, "encipherOnly"},
        {KU_DECIPHER_ONLY, "decipherOnly"},
    };

    snprintf(out, size, "critical");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (bits & names[i].bit) {
            size_t used = strlen(out);
            snprintf(out + used, size - used, ",%s", names[i].name);
        }
    }
}

/* Adds basicConstraints, keyUsage, extendedKeyUsage and nameConstraints. */
static int add_profile_exts(X509 *cert, X509V3_CTX *ctx, const cc_test_cert_spec *spec)
{
    char value[256];

    if (!spec->omit_basic_constraints) {
        if (spec->is_ca && spec->has_path_len)
            snprintf(value, sizeof(value), "critical,CA:TRUE,pathlen:%d", spec->path_len);
        else
            snprintf(value, sizeof(value), "critical,CA:%s", spec->is_ca ? "TRUE" : "FALSE");
        if (add_conf_ext(cert, ctx, "basicConstraints", value) != 0)
            return -1;
    }

    uint32_t key_usage = spec->key_usage;
    if (key_usage == 0)
        key_usage = spec->is_ca ? (KU_KEY_CERT_SIGN | KU_CRL_SIGN) : KU_DIGITAL_SIGNATURE;
    if (key_usage != CC_TEST_KU_OMIT) {
        key_usage_value(key_usage, value, sizeof(value));
        if (add_conf_ext(cert, ctx, "keyUsage", value) != 0)
            return -1;
    }

    uint32_t eku = spec->eku;
    if (eku == 0)
        eku = spec->is_ca ? CC_TEST_EKU_OMIT : (CC_TEST_EKU_SERVER | CC_TEST_EKU_CLIENT);
    if (eku != CC_TEST_EKU_OMIT) {
        snprintf(value, sizeof(value), "%s%s%s", (eku & CC_TEST_EKU_SERVER) ? "serverAuth" : "",
                 (eku & CC_TEST_EKU_SERVER) && (eku & CC_TEST_EKU_CLIENT) ? "," : "",
                 (eku & CC_TEST_EKU_CLIENT) ? "clientAuth" : "");
        if (add_conf_ext(cert, ctx, "extendedKeyUsage", value) != 0)
            return -1;
    }

    if (spec->name_constraints != NULL &&
        add_conf_ext(cert, ctx, "nameConstraints", spec->name_constraints) != 0)
        return -1;
    return 0;
}

static int add_extensions(X509 *cert, const cc_test_cert_spec *spec, const cc_test_cert *issuer)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer->cert : cert, cert, NULL, NULL, 0);

    if (add_profile_exts(cert, &ctx, spec) != 0)
        return -1;
    if (add_san(cert, spec) != 0)
        return -1;
    if (add_conf_ext(cert, &ctx, "subjectKeyIdentifier", "hash") != 0)
        return -1;
    if (issuer != NULL && add_conf_ext(cert, &ctx, "authorityKeyIdentifier", "keyid:always") != 0)
        return -1;

    for (int i = 0; i < CC_TEST_MAX_NAMES && spec->extra[i].name != NULL; i++) {
        if (add_conf_ext(cert, &ctx, spec->extra[i].name, spec->extra[i].value) != 0)
            return -1;
    }
    return 0;
}

/* Sets version 3, a random positive 127-bit serial, names and validity. */
static int set_basics(X509 *cert, const cc_test_cert_spec *spec, const cc_test_cert *issuer)
{
    BIGNUM *serial = BN_new();
    int ok = serial != NULL && BN_rand(serial, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) != NULL;
    BN_free(serial);
    if (!ok || !X509_set_version(cert, X509_VERSION_3))
        return -1;

    X509_NAME *subject = X509_get_subject_name(cert);
    if (spec->common_name != NULL &&
        !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                    (const unsigned char *)spec->common_name, -1, -1, 0))
        return -1;
    X509_NAME *issuer_name = issuer != NULL ? X509_get_subject_name(issuer->cert) : subject;
    if (!X509_set_issuer_name(cert, issuer_name))
        return -1;

    long not_before =
        spec->not_before_offset != 0 ? (long)spec->not_before_offset : DEFAULT_NOT_BEFORE_OFFSET;
    long not_after =
        spec->not_after_offset != 0 ? (long)spec->not_after_offset : DEFAULT_NOT_AFTER_OFFSET;
    if (X509_gmtime_adj(X509_getm_notBefore(cert), not_before) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), not_after) == NULL)
        return -1;
    return 0;
}

cc_test_cert *cc_test_cert_issue(const cc_test_cert_spec *spec, const cc_test_cert *issuer)
{
    cc_test_cert *result = calloc(1, sizeof(*result));
    if (result == NULL)
        return NULL;

    if (spec->key != NULL && EVP_PKEY_up_ref(spec->key))
        result->key = spec->key;
    else if (spec->key == NULL)
        result->key = EVP_EC_gen("P-256");
    result->cert = X509_new();
    if (result->key == NULL || result->cert == NULL) {
        report_failure("creating key or certificate");
        goto fail;
    }

    if (set_basics(result->cert, spec, issuer) != 0) {
        report_failure("setting serial, names and validity");
        goto fail;
    }
    if (!X509_set_pubkey(result->cert, result->key)) {
        report_failure("X509_set_pubkey");
        goto fail;
    }
    if (add_extensions(result->cert, spec, issuer) != 0)
        goto fail;

    EVP_PKEY *signing_key = issuer != NULL ? issuer->key : result->key;
    if (X509_sign(result->cert, signing_key, EVP_sha256()) <= 0) {
        report_failure("X509_sign");
        goto fail;
    }
    return result;

fail:
    cc_test_cert_free(result);
    return NULL;
}

void cc_test_cert_free(cc_test_cert *cert)
{
    if (cert == NULL)
        return;
    X509_free(cert->cert);
    EVP_PKEY_free(cert->key);
    free(cert);
}

/* Copies the contents of a memory BIO into a malloc'd NUL-terminated string. */
static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len < 0)
        return NULL;
    char *text = malloc((size_t)len + 1);
    if (text == NULL)
        return NULL;
    memcpy(text, data, (size_t)len);
    text[len] = '\0';
    return text;
}

char *cc_test_cert_pem(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    if (bio != NULL && PEM_write_bio_X509(bio, cert))
        text = bio_to_string(bio);
    if (text == NULL)
        report_failure("writing certificate PEM");
    BIO_free(bio);
    return text;
}

char *cc_test_key_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    if (bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        text = bio_to_string(bio);
    if (text == NULL)
        report_failure("writing private key PEM");
    BIO_free(bio);
    return text;
}

/* Creates or truncates path with the given mode and writes text into it. */
static int write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        perror(path);
        return -1;
    }

    int rc = 0;
    size_t len = strlen(text);
    /* fchmod covers a file that already existed with a wider mode. */
    if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len)
        rc = -1;
    if (close(fd) != 0)
        rc = -1;
    if (rc != 0)
        perror(path);
    return rc;
}

int cc_test_write_chain_pem(const char *path, X509 *const *certs, size_t count)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    int rc = -1;
    if (bio == NULL)
        goto done;
    for (size_t i = 0; i < count; i++) {
        if (!PEM_write_bio_X509(bio, certs[i]))
            goto done;
    }
    text = bio_to_string(bio);
    if (text != NULL)
        rc = write_file(path, text, 0644);

done:
    if (rc != 0)
        report_failure("writing certificate chain file");
    free(text);
    BIO_free(bio);
    return rc;
}

int cc_test_write_key_pem(const char *path, EVP_PKEY *key)
{
    char *text = cc_test_key_pem(key);
    if (text == NULL)
        return -1;
    int rc = write_file(path, text, 0600);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return rc;
}

STACK_OF(X509) *cc_test_chain(X509 *leaf, ...)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (chain == NULL)
        return NULL;

    va_list ap;
    va_start(ap, leaf);
    for (X509 *cert = leaf; cert != NULL; cert = va_arg(ap, X509 *)) {
        if (!X509_up_ref(cert))
            break;
        if (sk_X509_push(chain, cert) == 0) {
            X509_free(cert);
            break;
        }
    }
    va_end(ap);
    return chain;
}

int cc_test_bundle_add(cc_bundle_set *set, const char *trust_domain, X509 *const *roots,
                       size_t count)
{
    cc_bundle *bundle = cc_bundle_new(trust_domain);
    if (bundle == NULL)
        return -1;

    cc_err err;
    for (size_t i = 0; i < count; i++) {
        if (cc_bundle_add_x509_authority(bundle, roots[i], &err) != CC_OK) {
            fprintf(stderr, "test pki: %s\n", err.message);
            cc_bundle_free(bundle);
            return -1;
        }
    }
    /* The set takes ownership of bundle, also when adding fails. */
    if (cc_bundle_set_add(set, bundle, &err) != CC_OK) {
        fprintf(stderr, "test pki: %s\n", err.message);
        return -1;
    }
    return 0;
}

char *cc_test_tempdir(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";

    size_t size = strlen(base) + strlen(prefix) + sizeof("/-XXXXXX");
    char *path = malloc(size);
    if (path == NULL)
        return NULL;
    snprintf(path, size, "%s/%s-XXXXXX", base, prefix);
    if (mkdtemp(path) == NULL) {
        perror(path);
        free(path);
        return NULL;
    }
    return path;
}

int cc_test_remove_tree(const char *dir)
{
    DIR *handle = opendir(dir);
    if (handle == NULL)
        return -1;

    int rc = 0;
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;

        size_t size = strlen(dir) + strlen(entry->d_name) + 2;
        char *child = malloc(size);
        if (child == NULL) {
            rc = -1;
            break;
        }
        snprintf(child, size, "%s/%s", dir, entry->d_name);

        struct stat st;
        if (lstat(child, &st) != 0)
            rc = -1;
        else if (S_ISDIR(st.st_mode))
            rc |= cc_test_remove_tree(child);
        else if (unlink(child) != 0)
            rc = -1;
        free(child);
    }
    closedir(handle);

    if (rmdir(dir) != 0)
        rc = -1;
    return rc;
}
