/* Test helpers that mint keys, JWKs and signed JWTs with the OpenSSL API.
 *
 * Tokens are assembled from raw header and claims JSON text, so tests can
 * build malformed or hostile tokens (duplicate members, extra header fields,
 * an algorithm that does not fit the key). Signing uses EVP_DigestSign
 * directly, independent of the verifier under test.
 *
 * Functions return NULL on failure after printing the OpenSSL error queue to
 * stderr, so tests can assert on the result. Strings are malloc'd and the
 * caller frees them. */
#ifndef CITADEL_TEST_JWTMINT_H
#define CITADEL_TEST_JWTMINT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* Generates a key: "RSA" (2048 bits), "P-256", "P-384" or "P-521". The caller
 * frees it with EVP_PKEY_free(). */
EVP_PKEY *cc_test_jwt_key(const char *kind);

/* Returns the public JWK of key with the given kid and use (either may be
 * NULL to leave the member out). The caller decrefs it. */
json_t *cc_test_jwk(EVP_PKEY *key, const char *kid, const char *use);

/* Returns an "x509-svid" JWK whose "x5c" contains cert. */
json_t *cc_test_jwk_x509(X509 *cert);

/* Returns base64url text (no padding) of data. */
char *cc_test_b64url(const void *data, size_t len);

/* Returns standard base64 text (padded) of data. */
char *cc_test_b64(const void *data, size_t len);

/* Builds a compact JWS from header and claims JSON text, signed with key by
 * sign_alg (RS*, PS*, ES*), whatever alg the header names. sign_alg "none" leaves
 * the signature empty. */
char *cc_test_jws_sign(const char *header_json, const char *claims_json, const char *sign_alg,
                       EVP_PKEY *key);

/* Builds a compact JWS signed with HMAC-SHA256 keyed with secret. */
char *cc_test_jws_hmac(const char *header_json, const char *claims_json, const void *secret,
                       size_t secret_len);

/* Builds a typical JWT-SVID: header {"alg","kid","typ":"JWT"}, claims
 * {"sub","aud":aud,"exp"}. aud is a single audience. */
char *cc_test_jwtsvid(EVP_PKEY *key, const char *alg, const char *kid, const char *sub,
                      const char *aud, int64_t exp);

/* Returns the SubjectPublicKeyInfo PEM text of key. */
char *cc_test_public_pem(EVP_PKEY *key);

/* Writes len bytes of data to path, replacing the file. Returns 0 or -1. */
int cc_test_write_file(const char *path, const void *data, size_t len);

#endif
