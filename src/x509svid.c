/* X509-SVID verification (contract in include/citadel/x509svid.h).
 *
 * The order follows the X509-SVID standard: extract the SPIFFE ID from the
 * leaf, check the leaf profile, pick the bundle of the leaf's trust domain,
 * then run OpenSSL path validation with only that bundle as trust anchors.
 * Profile checks come first so that a CA certificate never reaches path
 * validation as a leaf: with X509_V_FLAG_PARTIAL_CHAIN a certificate that is
 * itself in the bundle would otherwise verify as a one-element chain.
 *
 * Certificates in the chain and the bundle set are borrowed. OpenSSL caches
 * extension flags inside each X509 under its own lock, so one chain or bundle
 * may be verified from several threads at once. */
#include "citadel/x509svid.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* Bytes of subject text and of a SPIFFE ID kept in error messages, at most. */
#define SUBJECT_MAX 160
#define ID_IN_MESSAGE_MAX 120

/* Checks the raw URI bytes before they reach the SPIFFE ID parser. */
static cc_status check_uri_bytes(const unsigned char *bytes, size_t len, cc_err *err)
{
    if (len == 0)
        return cc_err_set(err, CC_ERR_INVALID, "certificate URI SAN is empty");
    if (memchr(bytes, '\0', len) != NULL)
        return cc_err_set(err, CC_ERR_INVALID, "certificate URI SAN contains a NUL byte");
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] >= 0x80)
            return cc_err_set(
                err, CC_ERR_INVALID,
                "certificate URI SAN contains a non-ASCII byte (0x%02x at offset %zu)", bytes[i],
                i);
    }
    return CC_OK;
}

/* Returns the only GEN_URI entry of names, or NULL with err set. */
static const ASN1_IA5STRING *find_single_uri(const GENERAL_NAMES *names, cc_err *err)
{
    const ASN1_IA5STRING *uri = NULL;
    int uri_count = 0;

    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI)
            continue;
        uri_count++;
        uri = name->d.uniformResourceIdentifier;
    }

    if (uri_count == 0) {
        cc_err_set(err, CC_ERR_INVALID,
                   "certificate has no URI SAN; an X509-SVID carries its "
                   "SPIFFE ID as exactly one URI SAN");
        return NULL;
    }
    if (uri_count > 1) {
        cc_err_set(err, CC_ERR_INVALID,
                   "certificate has %d URI SANs; an X509-SVID must have exactly one, even when "
                   "only one of them is a SPIFFE ID",
                   uri_count);
        return NULL;
    }
    return uri;
}

cc_status cc_x509svid_id_from_cert(X509 *cert, cc_spiffeid *out, cc_err *err)
{
    int critical = -1;
    cc_status status;

    memset(out, 0, sizeof(*out));
    /* With a NULL index, crit is -2 when the extension occurs more than once,
     * -1 when it is absent, and its criticality when it failed to decode. */
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, NULL);
    if (names == NULL) {
        if (critical == -2)
            return cc_err_set(err, CC_ERR_INVALID,
                              "certificate has more than one subjectAltName extension");
        if (critical == -1)
            return cc_err_set(err, CC_ERR_INVALID,
                              "certificate has no subjectAltName extension; an X509-SVID carries "
                              "its SPIFFE ID as a URI SAN");
        return cc_err_set(err, CC_ERR_INVALID, "certificate subjectAltName extension is malformed");
    }

    const ASN1_IA5STRING *uri = find_single_uri(names, err);
    if (uri == NULL) {
        status = CC_ERR_INVALID;
        goto done;
    }

    const unsigned char *bytes = ASN1_STRING_get0_data(uri);
    size_t len = (size_t)ASN1_STRING_length(uri);
    status = check_uri_bytes(bytes, len, err);
    if (status != CC_OK)
        goto done;
    status = cc_spiffeid_parse((const char *)bytes, len, out, err);
    if (status != CC_OK)
        cc_err_prefix(err, "certificate URI SAN");

done:
    GENERAL_NAMES_free(names);
    return status;
}

/* Checks the leaf profile: extension sanity, no CA, keyUsage and EKU bits. */
static cc_status check_leaf_profile(X509 *leaf, cc_err *err)
{
    uint32_t flags = X509_get_extension_flags(leaf);

    if (flags & EXFLAG_INVALID)
        return cc_err_set(err, CC_ERR_INVALID,
                          "leaf certificate has a duplicate or malformed extension");
    if (flags & EXFLAG_CA)
        return cc_err_set(err, CC_ERR_INVALID,
                          "leaf certificate is a CA (basicConstraints cA is TRUE)");

    /* X509_get_key_usage() returns all bits set when the extension is absent,
     * so presence is tested through the flag first. */
    if (!(flags & EXFLAG_KUSAGE))
        return cc_err_set(err, CC_ERR_INVALID,
                          "leaf certificate has no keyUsage extension; an X509-SVID requires one "
                          "with digitalSignature");
    uint32_t key_usage = X509_get_key_usage(leaf);
    if (!(key_usage & KU_DIGITAL_SIGNATURE))
        return cc_err_set(err, CC_ERR_INVALID, "leaf certificate keyUsage lacks digitalSignature");
    if (key_usage & KU_KEY_CERT_SIGN)
        return cc_err_set(err, CC_ERR_INVALID,
                          "leaf certificate keyUsage has keyCertSign, which only CAs may have");
    if (key_usage & KU_CRL_SIGN)
        return cc_err_set(err, CC_ERR_INVALID,
                          "leaf certificate keyUsage has cRLSign, which only CAs may have");

    if (flags & EXFLAG_XKUSAGE) {
        uint32_t eku = X509_get_extended_key_usage(leaf);
        if (!(eku & XKU_SSL_SERVER) || !(eku & XKU_SSL_CLIENT))
            return cc_err_set(err, CC_ERR_INVALID,
                              "leaf certificate extendedKeyUsage must contain both serverAuth "
                              "and clientAuth when present");
    }
    return CC_OK;
}

/* Rejects presented intermediates with duplicate or malformed extensions, so
 * that the error names the cause instead of a chain-building failure. */
static cc_status check_intermediates(STACK_OF(X509) *chain, cc_err *err)
{
    for (int i = 1; i < sk_X509_num(chain); i++) {
        X509 *cert = sk_X509_value(chain, i);
        if (X509_get_extension_flags(cert) & EXFLAG_INVALID)
            return cc_err_set(err, CC_ERR_INVALID,
                              "chain certificate %d has a duplicate or malformed extension", i);
    }
    return CC_OK;
}

/* Returns the X.509 authorities for trust_domain (borrowed), or NULL with err set. */
static STACK_OF(X509) *find_roots(const cc_bundle_set *bundles, const char *trust_domain,
                                  cc_err *err)
{
    const cc_bundle *bundle = bundles != NULL ? cc_bundle_set_find(bundles, trust_domain) : NULL;
    if (bundle == NULL) {
        cc_err_set(err, CC_ERR_NOT_FOUND,
                   "no trust bundle for trust domain \"%s\"; SVIDs of a trust domain verify only "
                   "against that domain's own bundle, so configure one for it",
                   trust_domain);
        return NULL;
    }

    STACK_OF(X509) *roots = cc_bundle_x509_authorities(bundle);
    if (roots == NULL || sk_X509_num(roots) == 0) {
        cc_err_set(err, CC_ERR_NOT_FOUND,
                   "trust bundle of trust domain \"%s\" has no X.509 authorities, so no X509-SVID "
                   "of that domain can be trusted",
                   trust_domain);
        return NULL;
    }
    return roots;
}

/* Converts an ASN1_TIME into Unix seconds. */
static int asn1_time_to_unix(const ASN1_TIME *time, int64_t *out)
{
    struct tm tm;
    if (time == NULL || !ASN1_TIME_to_tm(time, &tm))
        return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

static void format_subject(X509 *cert, char *out, size_t size)
{
    snprintf(out, size, "(unknown)");
    if (cert != NULL)
        X509_NAME_oneline(X509_get_subject_name(cert), out, (int)size);
}

/* Records why X509_verify_cert failed: the OpenSSL reason plus the depth and
 * subject of the certificate it was looking at. */
static cc_status verify_failure(X509_STORE_CTX *ctx, int rc, cc_err *err)
{
    int code = X509_STORE_CTX_get_error(ctx);
    char subject[SUBJECT_MAX];
    format_subject(X509_STORE_CTX_get_current_cert(ctx), subject, sizeof(subject));

    /* A negative result is an internal failure that may leave the error code at X509_V_OK. */
    if (rc < 0)
        return cc_err_set(
            err, CC_ERR_INTERNAL, "certificate path validation failed internally at depth %d: %s",
            X509_STORE_CTX_get_error_depth(ctx),
            code == X509_V_OK ? "no reason recorded" : X509_verify_cert_error_string(code));

    cc_status status = CC_ERR_CRYPTO;
    if (code == X509_V_ERR_CERT_HAS_EXPIRED || code == X509_V_ERR_CERT_NOT_YET_VALID)
        status = CC_ERR_EXPIRED;

    return cc_err_set(
        err, status, "certificate path validation failed at depth %d (subject %s): %s",
        X509_STORE_CTX_get_error_depth(ctx), subject, X509_verify_cert_error_string(code));
}

/* Checks the intermediates of the verified chain (between the leaf and the
 * anchor) as X509-SVID signing certificates, which need basicConstraints cA
 * TRUE and a keyUsage extension with keyCertSign. OpenSSL accepts an issuer
 * without keyUsage. Anchors come from configuration and are not checked here.
 * NOTE: OpenSSL 3.0.22 already rejects an issuer without basicConstraints
 * (invalid CA certificate), so that branch is a guard that no test reaches. */
static cc_status check_signing_certs(X509_STORE_CTX *ctx, cc_err *err)
{
    STACK_OF(X509) *verified = X509_STORE_CTX_get0_chain(ctx);
    char subject[SUBJECT_MAX];

    for (int depth = 1; depth < sk_X509_num(verified) - 1; depth++) {
        X509 *cert = sk_X509_value(verified, depth);
        uint32_t flags = X509_get_extension_flags(cert);
        format_subject(cert, subject, sizeof(subject));

        if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA))
            return cc_err_set(err, CC_ERR_CRYPTO,
                              "signing certificate at depth %d (subject %s) is not a CA: it "
                              "needs basicConstraints with cA TRUE",
                              depth, subject);
        if (!(flags & EXFLAG_KUSAGE) || !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN))
            return cc_err_set(err, CC_ERR_CRYPTO,
                              "signing certificate at depth %d (subject %s) needs a keyUsage "
                              "extension with keyCertSign",
                              depth, subject);
    }
    return CC_OK;
}

/* Fills the chain-wide fields of out from the verified chain. */
static cc_status record_chain(X509_STORE_CTX *ctx, cc_x509svid_info *out, cc_err *err)
{
    STACK_OF(X509) *verified = X509_STORE_CTX_get0_chain(ctx);
    out->chain_length = sk_X509_num(verified);
    out->chain_not_after = INT64_MAX;

    for (int i = 0; i < out->chain_length; i++) {
        int64_t not_after;
        if (!asn1_time_to_unix(X509_get0_notAfter(sk_X509_value(verified, i)), &not_after))
            return cc_err_set(err, CC_ERR_INTERNAL,
                              "could not read notAfter of verified chain certificate %d", i);
        if (not_after < out->chain_not_after)
            out->chain_not_after = not_after;
    }
    return CC_OK;
}

/* Runs RFC 5280 path validation of leaf at `at` with roots as the only trust
 * anchors and chain[1..] as untrusted intermediates. */
static cc_status validate_path(STACK_OF(X509) *chain, STACK_OF(X509) *roots, int64_t at,
                               cc_x509svid_info *out, cc_err *err)
{
    cc_status status = CC_ERR_NOMEM;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    /* A private shallow copy, so OpenSSL never touches the shared bundle stack. */
    STACK_OF(X509) *anchors = sk_X509_dup(roots);
    if (ctx == NULL || untrusted == NULL || anchors == NULL) {
        cc_err_set(err, status, "out of memory preparing certificate path validation");
        goto done;
    }

    /* Borrowed pointers: neither stack owns a reference. */
    for (int i = 1; i < sk_X509_num(chain); i++) {
        if (sk_X509_push(untrusted, sk_X509_value(chain, i)) == 0) {
            cc_err_set(err, status, "out of memory preparing certificate path validation");
            goto done;
        }
    }

    /* No store: the trusted stack below is the complete set of anchors, and
     * no system CA can take part. */
    if (!X509_STORE_CTX_init(ctx, NULL, sk_X509_value(chain, 0), untrusted)) {
        status = cc_err_set(err, CC_ERR_INTERNAL, "X509_STORE_CTX_init failed");
        goto done;
    }
    X509_STORE_CTX_set0_trusted_stack(ctx, anchors);

    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)at);
    /* Every bundle certificate is a trust anchor, also an intermediate CA. */
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);

    int rc = X509_verify_cert(ctx);
    if (rc != 1) {
        status = verify_failure(ctx, rc, err);
        goto done;
    }
    status = check_signing_certs(ctx, err);
    if (status == CC_OK)
        status = record_chain(ctx, out, err);

done:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    sk_X509_free(anchors);
    return status;
}

static void hex_encode(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

/* Fills serial, fingerprint and validity of the leaf. */
static cc_status record_leaf(X509 *leaf, cc_x509svid_info *out, cc_err *err)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
    size_t serial_len = (size_t)ASN1_STRING_length(serial);
    if (serial_len * 2 > CC_X509SVID_SERIAL_HEX_MAX)
        return cc_err_set(err, CC_ERR_INVALID,
                          "leaf certificate serial number is %zu bytes long; the limit is %d",
                          serial_len, CC_X509SVID_SERIAL_HEX_MAX / 2);
    char *serial_out = out->serial_hex;
    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER)
        *serial_out++ = '-';
    hex_encode(ASN1_STRING_get0_data(serial), serial_len, serial_out);

    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!X509_digest(leaf, EVP_sha256(), digest, &digest_len) || digest_len != 32)
        return cc_err_set(err, CC_ERR_INTERNAL, "could not compute the leaf certificate SHA-256");
    hex_encode(digest, digest_len, out->fingerprint_sha256);

    if (!asn1_time_to_unix(X509_get0_notBefore(leaf), &out->not_before) ||
        !asn1_time_to_unix(X509_get0_notAfter(leaf), &out->not_after))
        return cc_err_set(err, CC_ERR_INVALID, "leaf certificate validity times are malformed");
    return CC_OK;
}

/* Runs every check in order; the caller adds context to err. */
static cc_status verify_chain(STACK_OF(X509) *chain, const cc_bundle_set *bundles, int64_t at,
                              cc_x509svid_info *out, cc_err *err)
{
    X509 *leaf = sk_X509_value(chain, 0);
    cc_status status = cc_x509svid_id_from_cert(leaf, &out->id, err);
    if (status != CC_OK)
        return status;
    if (!cc_spiffeid_has_path(&out->id))
        return cc_err_set(err, CC_ERR_INVALID,
                          "leaf SPIFFE ID has no path; only signing certificates may carry the "
                          "ID of a trust domain itself");

    status = check_leaf_profile(leaf, err);
    if (status == CC_OK)
        status = check_intermediates(chain, err);
    if (status == CC_OK)
        status = record_leaf(leaf, out, err);
    if (status != CC_OK)
        return status;

    STACK_OF(X509) *roots = find_roots(bundles, out->id.trust_domain, err);
    if (roots == NULL)
        return CC_ERR_NOT_FOUND;
    return validate_path(chain, roots, at, out, err);
}

cc_status cc_x509svid_verify(STACK_OF(X509) *chain, const cc_bundle_set *bundles, int64_t at,
                             cc_x509svid_info *out, cc_err *err)
{
    memset(out, 0, sizeof(*out));
    if (chain == NULL || sk_X509_num(chain) == 0)
        return cc_err_set(err, CC_ERR_INVALID, "X509-SVID certificate chain is empty");
    for (int i = 0; i < sk_X509_num(chain); i++) {
        if (sk_X509_value(chain, i) == NULL)
            return cc_err_set(err, CC_ERR_INVALID, "X509-SVID chain element %d is NULL", i);
    }

    cc_status status = verify_chain(chain, bundles, at, out, err);
    if (status == CC_OK)
        return CC_OK;

    /* Name the SVID when its ID was read, so logs show whose chain failed. The
     * ID is cut so that the reason after it still fits into the message. */
    size_t id_len = strlen(out->id.id);
    if (id_len > ID_IN_MESSAGE_MAX)
        cc_err_prefix(err, "X509-SVID \"%.*s...\" rejected", ID_IN_MESSAGE_MAX, out->id.id);
    else if (id_len > 0)
        cc_err_prefix(err, "X509-SVID \"%s\" rejected", out->id.id);
    else
        cc_err_prefix(err, "X509-SVID rejected");
    memset(out, 0, sizeof(*out));
    return status;
}
