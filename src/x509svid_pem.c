/* PEM certificate chains for the X509-SVID verifier.
 *
 * PEM_read_bio() silently skips any text before a BEGIN line, so the text is
 * framed here first: it must consist of PEM blocks separated only by
 * whitespace. Each block then goes through PEM_read_bio() on its own, must be
 * labelled CERTIFICATE and must decode to exactly one DER certificate with no
 * bytes left over. */
#include "citadel/x509svid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

/* Largest PEM file read by cc_x509svid_load_pem_file(); real chains are a few KiB. */
#define PEM_FILE_MAX (1024 * 1024)

static const char BEGIN_MARK[] = "-----BEGIN ";
static const char END_MARK[] = "-----END ";
static const char DASHES[] = "-----";

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Returns the offset of needle in text[from..len), or len when absent. */
static size_t find_text(const char *text, size_t len, size_t from, const char *needle)
{
    size_t needle_len = strlen(needle);
    for (size_t i = from; i + needle_len <= len; i++) {
        if (memcmp(text + i, needle, needle_len) == 0)
            return i;
    }
    return len;
}

/* Finds the end of the block starting at text[start] (a BEGIN line): the
 * offset just after the "-----" that closes its END line, or 0 when the END
 * line is missing. */
static size_t find_block_end(const char *text, size_t len, size_t start)
{
    size_t end_line = find_text(text, len, start, END_MARK);
    if (end_line == len)
        return 0;
    size_t closing = find_text(text, len, end_line + sizeof(END_MARK) - 1, DASHES);
    if (closing == len)
        return 0;
    return closing + sizeof(DASHES) - 1;
}

/* Decodes one framed PEM block into a certificate. */
static X509 *decode_block(const char *block, size_t len, int index, cc_err *err)
{
    char *label = NULL;
    char *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    X509 *cert = NULL;

    BIO *bio = BIO_new_mem_buf(block, (int)len);
    if (bio == NULL) {
        cc_err_set(err, CC_ERR_NOMEM, "out of memory reading PEM block %d", index);
        goto done;
    }
    if (!PEM_read_bio(bio, &label, &header, &der, &der_len)) {
        cc_err_set(err, CC_ERR_INVALID, "PEM block %d is malformed (bad base64 or framing)", index);
        goto done;
    }
    if (strcmp(label, PEM_STRING_X509) != 0) {
        cc_err_set(err, CC_ERR_INVALID, "PEM block %d is a \"%.40s\" block; expected CERTIFICATE",
                   index, label);
        goto done;
    }
    if (header[0] != '\0') {
        cc_err_set(err, CC_ERR_INVALID, "PEM block %d has headers; certificates have none", index);
        goto done;
    }

    const unsigned char *cursor = der;
    cert = d2i_X509(NULL, &cursor, der_len);
    if (cert == NULL) {
        cc_err_set(err, CC_ERR_INVALID, "PEM block %d does not contain a valid DER certificate",
                   index);
        goto done;
    }
    if (cursor != der + der_len) {
        cc_err_set(err, CC_ERR_INVALID, "PEM block %d has %ld bytes after the DER certificate",
                   index, (long)(der + der_len - cursor));
        X509_free(cert);
        cert = NULL;
    }

done:
    ERR_clear_error();
    OPENSSL_free(label);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    return cert;
}

cc_status cc_x509svid_parse_pem(const char *pem, size_t len, STACK_OF(X509) **out, cc_err *err)
{
    cc_status status = CC_OK;
    STACK_OF(X509) *chain = sk_X509_new_null();
    *out = NULL;
    if (chain == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory parsing a PEM chain");
    if (len > INT32_MAX) {
        status = cc_err_set(err, CC_ERR_INVALID, "PEM text of %zu bytes is too large", len);
        goto done;
    }

    size_t pos = 0;
    for (;;) {
        while (pos < len && is_space(pem[pos]))
            pos++;
        if (pos == len)
            break;

        int index = sk_X509_num(chain);
        if (len - pos < sizeof(BEGIN_MARK) - 1 ||
            memcmp(pem + pos, BEGIN_MARK, sizeof(BEGIN_MARK) - 1) != 0) {
            status = cc_err_set(err, CC_ERR_INVALID,
                                "unexpected text at byte %zu of the PEM chain; only PEM blocks "
                                "separated by whitespace are allowed",
                                pos);
            goto done;
        }
        size_t block_end = find_block_end(pem, len, pos);
        if (block_end == 0) {
            status = cc_err_set(err, CC_ERR_INVALID, "PEM block %d (at byte %zu) has no END line",
                                index, pos);
            goto done;
        }

        X509 *cert = decode_block(pem + pos, block_end - pos, index, err);
        if (cert == NULL) {
            status = CC_ERR_INVALID;
            goto done;
        }
        if (sk_X509_push(chain, cert) == 0) {
            X509_free(cert);
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory parsing a PEM chain");
            goto done;
        }
        pos = block_end;
    }

    if (sk_X509_num(chain) == 0)
        status = cc_err_set(err, CC_ERR_INVALID, "PEM text contains no certificate");

done:
    if (status != CC_OK) {
        cc_x509svid_chain_free(chain);
        return status;
    }
    *out = chain; /* the caller owns the stack and its certificates */
    return CC_OK;
}

/* Reads a whole file of at most PEM_FILE_MAX bytes into a malloc'd buffer. */
static cc_status read_file(const char *path, char **data, size_t *len, cc_err *err)
{
    cc_status status = CC_OK;
    char *buffer = NULL;

    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return cc_err_set(err, errno == ENOENT ? CC_ERR_NOT_FOUND : CC_ERR_IO,
                          "could not open certificate file %s: %s", path, strerror(errno));

    buffer = malloc(PEM_FILE_MAX + 1);
    if (buffer == NULL) {
        status = cc_err_set(err, CC_ERR_NOMEM, "out of memory reading %s", path);
        goto done;
    }
    size_t used = fread(buffer, 1, PEM_FILE_MAX + 1, file);
    if (ferror(file)) {
        status = cc_err_set(err, CC_ERR_IO, "could not read certificate file %s", path);
        goto done;
    }
    if (used > PEM_FILE_MAX) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "certificate file %s is larger than %d bytes; it is not a certificate "
                            "chain",
                            path, PEM_FILE_MAX);
        goto done;
    }
    *data = buffer; /* the caller frees it */
    *len = used;
    buffer = NULL;

done:
    free(buffer);
    fclose(file);
    return status;
}

cc_status cc_x509svid_load_pem_file(const char *path, STACK_OF(X509) **out, cc_err *err)
{
    char *data = NULL;
    size_t len = 0;
    *out = NULL;

    cc_status status = read_file(path, &data, &len, err);
    if (status != CC_OK)
        return status;
    status = cc_x509svid_parse_pem(data, len, out, err);
    if (status != CC_OK)
        cc_err_prefix(err, "certificate file %s", path);
    free(data);
    return status;
}

cc_status cc_x509svid_parse_pem_array(const char *const *pems, size_t count, STACK_OF(X509) **out,
                                      cc_err *err)
{
    cc_status status = CC_OK;
    STACK_OF(X509) *chain = sk_X509_new_null();
    *out = NULL;
    if (chain == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory parsing a certificate array");
    if (count == 0) {
        status = cc_err_set(err, CC_ERR_INVALID, "certificate array is empty");
        goto done;
    }

    for (size_t i = 0; i < count; i++) {
        STACK_OF(X509) *one = NULL;
        status = cc_x509svid_parse_pem(pems[i], strlen(pems[i]), &one, err);
        if (status != CC_OK) {
            cc_err_prefix(err, "certificate %zu of the array", i);
            goto done;
        }
        if (sk_X509_num(one) != 1) {
            status = cc_err_set(err, CC_ERR_INVALID,
                                "certificate %zu of the array contains %d certificates; each "
                                "element must contain exactly one",
                                i, sk_X509_num(one));
            cc_x509svid_chain_free(one);
            goto done;
        }

        /* Move the certificate's reference from one into chain. */
        X509 *cert = sk_X509_shift(one);
        sk_X509_free(one);
        if (sk_X509_push(chain, cert) == 0) {
            X509_free(cert);
            status = cc_err_set(err, CC_ERR_NOMEM, "out of memory parsing a certificate array");
            goto done;
        }
    }

done:
    if (status != CC_OK) {
        cc_x509svid_chain_free(chain);
        return status;
    }
    *out = chain; /* the caller owns the stack and its certificates */
    return CC_OK;
}

void cc_x509svid_chain_free(STACK_OF(X509) *chain)
{
    sk_X509_pop_free(chain, X509_free);
}
