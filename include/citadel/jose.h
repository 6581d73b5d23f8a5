/* JOSE building blocks shared by the bundle loaders and the JWT-SVID verifier:
 * strict base64 decoding (RFC 4648 via libsodium) and conversion of JSON Web
 * Keys (RFC 7517/7518) into OpenSSL public keys and certificates. */
#ifndef CITADEL_JOSE_H
#define CITADEL_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "citadel/error.h"

/* Smallest and largest RSA modulus accepted in a JWK, in bits. Keys below
 * 2048 bits are rejected as too weak, and the maximum is OpenSSL's own limit
 * (OPENSSL_RSA_MAX_MODULUS_BITS), past which verification fails anyway. */
#define CC_JOSE_RSA_MIN_BITS 2048
#define CC_JOSE_RSA_MAX_BITS 16384

/* Decodes base64url without padding (RFC 4648 section 5, as JWS and JWK use
 * it). Rejects '=', '+', '/', other bytes outside the alphabet and non-zero
 * trailing bits. what names the value in error messages ("the JWS header").
 * On success *out is malloc'd with one extra NUL byte (not counted in
 * *out_len); the caller frees it. */
cc_status cc_jose_b64url_decode(const char *in, size_t len, const char *what, uint8_t **out,
                                size_t *out_len, cc_err *err);

/* Decodes standard base64 with padding (RFC 4648 section 4, as "x5c" uses it).
 * Same contract as cc_jose_b64url_decode(). */
cc_status cc_jose_b64_decode(const char *in, size_t len, const char *what, uint8_t **out,
                             size_t *out_len, cc_err *err);

/* Returns 1 when kty names a key type that cc_jose_jwk_public_key() converts
 * ("RSA" or "EC"), 0 otherwise. */
int cc_jose_kty_supported(const char *kty);

/* Converts a public JWK into a new EVP_PKEY that the caller frees.
 *   RSA: "n" and "e" base64url, modulus between CC_JOSE_RSA_MIN_BITS and
 *        CC_JOSE_RSA_MAX_BITS;
 *   EC:  "crv" P-256, P-384 or P-521, "x" and "y" base64url of exactly 32, 48
 *        or 66 bytes, and the point must lie on the curve.
 * A JWK with private key members ("d", "p", ...) is rejected, because a
 * bundle is public and such a key has leaked. */
cc_status cc_jose_jwk_public_key(const json_t *jwk, EVP_PKEY **out, cc_err *err);

/* Decodes the certificate of an "x509-svid" JWK: "x5c" must be an array of
 * exactly one standard base64 string holding one DER certificate without
 * trailing bytes. The caller frees *out with X509_free(). */
cc_status cc_jose_jwk_x5c_certificate(const json_t *jwk, X509 **out, cc_err *err);

#endif
