/* NATS nkeys: Ed25519 (and, for the curve kind, X25519) keys in the text form
 * that NATS uses in configs, JWTs and creds files.
 *
 * A public key is base32(prefix || 32-byte key || CRC-16 little-endian): 56
 * characters. A seed is base32(b1 || b2 || 32-byte seed || CRC-16): 58
 * characters, with b1 = 0x90 | (prefix >> 5) and b2 = (prefix & 0x1F) << 3, so
 * an account seed starts "SA". The raw Ed25519 seed gives the keypair through
 * libsodium; for the curve kind the raw seed is the X25519 private scalar.
 *
 * Seeds are secrets: cc_nkey_wipe() zeroes a keypair, and no error message
 * quotes a seed. */
#ifndef CITADEL_NKEY_H
#define CITADEL_NKEY_H

#include <stddef.h>
#include <stdint.h>

#include "citadel/error.h"

#define CC_NKEY_PUBLIC_LEN 56 /* characters, without NUL */
#define CC_NKEY_SEED_LEN 58   /* characters, without NUL */
#define CC_NKEY_SIGNATURE_LEN 64

typedef enum cc_nkey_kind {
    CC_NKEY_ANY = -1, /* only as an "expected" argument: accept every kind */
    CC_NKEY_ACCOUNT = 0,
    CC_NKEY_USER,
    CC_NKEY_SERVER,
    CC_NKEY_OPERATOR,
    CC_NKEY_CLUSTER,
    CC_NKEY_CURVE
} cc_nkey_kind;

/* A keypair. For Ed25519 kinds public_key is the Ed25519 public key and
 * secret_key the libsodium 64-byte secret key; for CC_NKEY_CURVE public_key is
 * the X25519 public key and secret_key holds the scalar in its first 32 bytes. */
typedef struct cc_nkey {
    cc_nkey_kind kind;
    uint8_t seed[32];
    uint8_t public_key[32];
    uint8_t secret_key[64];
} cc_nkey;

/* Initialises libsodium once per process (thread-safe). Every function here
 * that needs libsodium calls it; a program may call it at startup to fail early. */
cc_status cc_nkey_library_init(cc_err *err);

/* Returns "account", "user", "server", "operator", "cluster" or "curve". */
const char *cc_nkey_kind_name(cc_nkey_kind kind);

/* Parses a kind name as printed by cc_nkey_kind_name(); returns CC_ERR_INVALID otherwise. */
cc_status cc_nkey_kind_parse(const char *name, cc_nkey_kind *kind, cc_err *err);

/* Encodes a raw 32-byte public key; out receives CC_NKEY_PUBLIC_LEN chars and a NUL. */
cc_status cc_nkey_encode_public(cc_nkey_kind kind, const uint8_t raw[32],
                                char out[CC_NKEY_PUBLIC_LEN + 1], cc_err *err);

/* Decodes a public key string. When expected is not CC_NKEY_ANY a key of
 * another kind is rejected. kind may be NULL. Errors name what is wrong: wrong
 * kind, bad checksum, bad length, bad alphabet. */
cc_status cc_nkey_decode_public(const char *text, cc_nkey_kind expected, cc_nkey_kind *kind,
                                uint8_t raw[32], cc_err *err);

/* Encodes a raw 32-byte seed; out receives CC_NKEY_SEED_LEN chars and a NUL. */
cc_status cc_nkey_encode_seed(cc_nkey_kind kind, const uint8_t raw_seed[32],
                              char out[CC_NKEY_SEED_LEN + 1], cc_err *err);

/* Decodes a seed string into the raw 32-byte seed, with the same checks and
 * messages as cc_nkey_decode_public(). kind may be NULL. */
cc_status cc_nkey_decode_seed(const char *text, cc_nkey_kind expected, cc_nkey_kind *kind,
                              uint8_t raw_seed[32], cc_err *err);

/* Builds a keypair from a seed string (leading and trailing whitespace ignored). */
cc_status cc_nkey_from_seed(const char *seed_text, cc_nkey_kind expected, cc_nkey *key,
                            cc_err *err);

/* Creates a keypair from fresh random bytes. */
cc_status cc_nkey_generate(cc_nkey_kind kind, cc_nkey *key, cc_err *err);

void cc_nkey_public_string(const cc_nkey *key, char out[CC_NKEY_PUBLIC_LEN + 1]);
void cc_nkey_seed_string(const cc_nkey *key, char out[CC_NKEY_SEED_LEN + 1]);

/* Signs msg with Ed25519 (pure, not prehashed). Fails for CC_NKEY_CURVE. */
cc_status cc_nkey_sign(const cc_nkey *key, const uint8_t *msg, size_t len,
                       uint8_t sig[CC_NKEY_SIGNATURE_LEN], cc_err *err);

/* Verifies an Ed25519 signature made by the public key in text form. */
cc_status cc_nkey_verify(const char *public_text, const uint8_t *msg, size_t len,
                         const uint8_t sig[CC_NKEY_SIGNATURE_LEN], cc_err *err);

/* Zeroes the seed and secret key. */
void cc_nkey_wipe(cc_nkey *key);

/* Reads a seed file and builds the keypair. The file must be a regular file
 * that neither group nor others can read or write (mode 0600 or stricter).
 * Other modes give CC_ERR_PERMISSION with a message that names the file and
 * the fix, "chmod 600 FILE". The file may
 * contain a bare seed, a NATS creds file (the line between "-----BEGIN USER
 * NKEY SEED-----" and "------END USER NKEY SEED------"), or, without those
 * markers, any line of 58 characters that starts with 'S'. */
cc_status cc_nkey_load_seed_file(const char *path, cc_nkey_kind expected, cc_nkey *key,
                                 cc_err *err);

#endif
