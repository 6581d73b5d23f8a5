/* NATS JWTs (nats-io/jwt v2 format): encoding, signing, decoding, checking.
 *
 * A token is B64U(header) "." B64U(claims) "." B64U(signature), where B64U is
 * base64url without padding and the signature is pure Ed25519 by the issuer's
 * nkey over the ASCII bytes "B64U(header).B64U(claims)". The header is always
 * {"typ":"JWT","alg":"ed25519-nkey"}.
 *
 * The claims object starts with the base claims in the order nats-io/jwt
 * writes them (aud, exp, jti, iat, iss, name, nbf, sub; each left out when
 * empty or 0), followed by "nats", which contains the kind in "type" and
 * "version": 2. The jti is base32 (no padding) of SHA-512/256 over the compact
 * JSON of the base claims without jti.
 *
 * The module is named natsjwt so that its header does not shadow libjwt's
 * <jwt.h>; its functions use the shorter prefix cc_jwt_. */
#ifndef CITADEL_NATSJWT_H
#define CITADEL_NATSJWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "citadel/error.h"
#include "citadel/nkey.h"

/* Largest token that the decoder accepts, in bytes. A request JWT with a
 * client certificate chain is a few KB; the server's default max_payload
 * (1 MiB) is far above this, so raise the limit here if chains grow. */
#define CC_JWT_MAX_LEN (64 * 1024)

/* Length of a jti: base32 of a 32-byte hash, without padding. */
#define CC_JWT_JTI_LEN 52

/* The base64url form of the only header that the encoder writes. */
#define CC_JWT_HEADER_B64 "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ"

/* A decoded token. Every pointer is owned by the struct; the string fields
 * point into claims and stay valid until cc_jwt_free(). */
typedef struct cc_jwt {
    char *token;    /* copy of the encoded token, NUL-terminated */
    json_t *header; /* the header object */
    json_t *claims; /* the whole claims object, including "nats" */
    json_t *nats;   /* claims["nats"], borrowed from claims */

    /* Base claims; NULL or 0 when absent. */
    const char *aud;
    const char *jti;
    const char *iss;
    const char *name;
    const char *sub;
    int64_t exp;
    int64_t iat;
    int64_t nbf;

    const char *type; /* nats.type, such as "user"; never NULL after a successful parse */
    int64_t version;  /* nats.version; always >= 2 after a successful parse */
    cc_nkey_kind issuer_kind;
    uint8_t signature[CC_NKEY_SIGNATURE_LEN];
    size_t signed_len; /* length of the signed prefix "header.claims" of token */
} cc_jwt;

/* Encodes and signs a JWT.
 *
 * claims (borrowed, not changed) contains any of the base claims aud, exp, name,
 * nbf, sub and the object "nats", which must contain a non-empty string
 * "type" and "version": 2. The encoder sets iss to the signer's public key and
 * iat to the argument iat (Unix seconds, left out when 0), and computes jti.
 * Keys iss, iat and jti in claims are rejected, and so is a top-level "type",
 * because it would make readers treat the token as version 1. Other top-level
 * keys are rejected too, because nats-io/jwt would drop them. Numbers must be
 * JSON integers.
 *
 * On success *out is a malloc'd NUL-terminated token that the caller frees. */
cc_status cc_jwt_encode(const json_t *claims, const cc_nkey *signer, int64_t iat, char **out,
                        cc_err *err);

/* Computes the jti of claims (borrowed): base32 of SHA-512/256 over the
 * compact JSON of aud, exp, iat, iss, name, nbf, sub in that order (absent,
 * empty and 0 values left out). A jti key in claims is ignored. */
cc_status cc_jwt_compute_jti(const json_t *claims, char out[CC_JWT_JTI_LEN + 1], cc_err *err);

/* Computes SHA-512/256 (FIPS 180-4; not truncated SHA-512) of data. */
cc_status cc_jwt_sha512_256(const uint8_t *data, size_t len, uint8_t out[32], cc_err *err);

/* Base64url-encodes header_json and claims_json as given (no checks, no
 * re-serialisation) and signs them with signer. This exists for tests and
 * tools that need tokens the encoder refuses to write, such as version 1
 * claims. On success *out is malloc'd and the caller frees it. */
cc_status cc_jwt_sign_raw(const char *header_json, const char *claims_json, const cc_nkey *signer,
                          char **out, cc_err *err);

/* Parses a token without checking its signature or validity times.
 *
 * Rejects a token longer than CC_JWT_MAX_LEN, more or fewer than three
 * segments, padding or characters outside the base64url alphabet, and a
 * signature that is not 64 bytes. Rejects invalid JSON and duplicate keys.
 * Rejects a header whose typ is not "JWT" (case-insensitive) or whose alg is
 * not "ed25519-nkey" or "ed25519". Rejects version 1 claims: a top-level
 * "type" key, or nats.version missing or below 2. Rejects a missing or
 * non-object "nats", a missing nats.type, non-integer exp/iat/nbf, and an iss
 * that is not a public nkey. On failure out is left zeroed; on success the
 * caller calls cc_jwt_free(out). */
cc_status cc_jwt_parse(const char *token, size_t len, cc_jwt *out, cc_err *err);

/* Checks the signature of a parsed token with its iss key, over the signed
 * bytes exactly as received. Returns CC_ERR_CRYPTO when it does not verify. */
cc_status cc_jwt_verify_signature(const cc_jwt *jwt, cc_err *err);

/* Checks exp and nbf against now (Unix seconds): CC_ERR_EXPIRED when
 * exp != 0 and exp < now, or when nbf > now. */
cc_status cc_jwt_check_times(const cc_jwt *jwt, int64_t now, cc_err *err);

/* Parses and fully checks a token: cc_jwt_parse(), then the issuer kind
 * (expected_issuer, or CC_NKEY_ANY), the signature and the validity times.
 * On failure out is left zeroed; on success the caller calls cc_jwt_free(out). */
cc_status cc_jwt_decode(const char *token, size_t len, cc_nkey_kind expected_issuer, int64_t now,
                        cc_jwt *out, cc_err *err);

/* Frees what jwt owns and zeroes it; jwt itself belongs to the caller. Safe on
 * a zeroed struct and on one that was already freed. */
void cc_jwt_free(cc_jwt *jwt);

#endif
