/* Byte encodings used by the NATS credential formats.
 *
 * base32 is RFC 4648 (alphabet A-Z2-7) without padding, as nkeys use it; no
 * Debian library provides it, so it is written here. base64url is RFC 4648
 * section 5 without padding, done by libsodium. CRC-16 is the XMODEM variant
 * (polynomial 0x1021, initial value 0, no reflection, no final XOR). */
#ifndef CITADEL_CODEC_H
#define CITADEL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "citadel/error.h"

uint16_t cc_crc16_xmodem(const uint8_t *data, size_t len);

/* Length of the base32 text for n bytes, without the terminating NUL. */
size_t cc_base32_encoded_len(size_t n);

/* Writes the base32 text of in[0..n) and a NUL into out (out_size bytes). */
cc_status cc_base32_encode(const uint8_t *in, size_t n, char *out, size_t out_size, cc_err *err);

/* Decodes base32 text of length n into out; rejects characters outside the
 * alphabet, padding, and trailing bits that are not zero. */
cc_status cc_base32_decode(const char *in, size_t n, uint8_t *out, size_t out_size,
                           size_t *out_len, cc_err *err);

/* Returns a malloc'd NUL-terminated base64url string of in[0..n), or NULL when
 * out of memory. The caller frees it. */
char *cc_b64url_encode(const uint8_t *in, size_t n);

/* Decodes unpadded base64url text; rejects '=', '+', '/' and any other byte
 * outside the alphabet. On success *out is malloc'd (one extra NUL byte is
 * appended, not counted in *out_len) and owned by the caller. */
cc_status cc_b64url_decode(const char *in, size_t n, uint8_t **out, size_t *out_len, cc_err *err);

#endif
