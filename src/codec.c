/* base32 (RFC 4648, no padding), CRC-16/XMODEM and base64url (through libsodium).
 *
 * The base32 decoder is strict so that every byte string has exactly one
 * accepted text form: it rejects padding, lowercase letters, characters outside
 * A-Z2-7, lengths that no byte count produces, and non-zero trailing bits. */
#include "citadel/codec.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

uint16_t cc_crc16_xmodem(const uint8_t *data, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)data[i] << 8;
        for (int bit = 0; bit < 8; bit++) {
            if (crc & 0x8000)
                crc = (uint16_t)((crc << 1) ^ 0x1021);
            else
                crc = (uint16_t)(crc << 1);
        }
    }
    return crc;
}

size_t cc_base32_encoded_len(size_t n)
{
    return (n * 8 + 4) / 5;
}

cc_status cc_base32_encode(const uint8_t *in, size_t n, char *out, size_t out_size, cc_err *err)
{
    size_t needed = cc_base32_encoded_len(n) + 1;
    if (out_size < needed)
        return cc_err_set(err, CC_ERR_INVALID,
                          "base32 output buffer too small: %zu bytes, %zu needed", out_size,
                          needed);

    uint32_t acc = 0;
    int bits = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[pos++] = base32_alphabet[(acc >> bits) & 0x1F];
        }
    }
    if (bits > 0)
        out[pos++] = base32_alphabet[(acc << (5 - bits)) & 0x1F];
    out[pos] = '\0';
    return CC_OK;
}

/* Returns the 5-bit value of c, or -1 when c is not in the RFC 4648 alphabet. */
static int base32_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

cc_status cc_base32_decode(const char *in, size_t n, uint8_t *out, size_t out_size, size_t *out_len,
                           cc_err *err)
{
    /* Unpadded base32 of k bytes has a length of 0, 2, 4, 5 or 7 modulo 8. */
    size_t rest = n % 8;
    if (rest == 1 || rest == 3 || rest == 6)
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid base32 length %zu: no byte string encodes to it", n);

    size_t decoded = n * 5 / 8;
    if (out_size < decoded)
        return cc_err_set(err, CC_ERR_INVALID,
                          "base32 output buffer too small: %zu bytes, %zu needed", out_size,
                          decoded);

    uint32_t acc = 0;
    int bits = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int value = base32_value(in[i]);
        if (value < 0) {
            if (in[i] == '=')
                return cc_err_set(err, CC_ERR_INVALID,
                                  "invalid base32: padding '=' at offset %zu is not allowed", i);
            return cc_err_set(err, CC_ERR_INVALID,
                              "invalid base32: byte 0x%02x at offset %zu is outside the "
                              "alphabet A-Z2-7 (uppercase only)",
                              (unsigned char)in[i], i);
        }
        acc = (acc << 5) | (uint32_t)value;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[pos++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid base32: the last character has non-zero trailing bits");

    if (out_len != NULL)
        *out_len = pos;
    return CC_OK;
}

char *cc_b64url_encode(const uint8_t *in, size_t n)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    size_t size = sodium_base64_ENCODED_LEN(n, variant);
    char *out = malloc(size);
    if (out == NULL)
        return NULL;

    sodium_bin2base64(out, size, in, n, variant);
    return out;
}

cc_status cc_b64url_decode(const char *in, size_t n, uint8_t **out, size_t *out_len, cc_err *err)
{
    /* libsodium would reject these too; checking first gives a message that names the cause. */
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=')
            return cc_err_set(err, CC_ERR_INVALID,
                              "invalid base64url: padding '=' at offset %zu is not allowed", i);
        if (in[i] == '+' || in[i] == '/')
            return cc_err_set(err, CC_ERR_INVALID,
                              "invalid base64url: '%c' at offset %zu belongs to standard "
                              "base64; base64url uses '-' and '_'",
                              in[i], i);
    }

    /* Room for the decoded bytes and a NUL. */
    size_t capacity = n / 4 * 3 + 3;
    uint8_t *buf = malloc(capacity);
    if (buf == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory decoding %zu base64url bytes", n);

    size_t len = 0;
    if (sodium_base642bin(buf, capacity, in, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(buf);
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid base64url text of length %zu: a character is outside "
                          "A-Za-z0-9-_, the length is impossible, or the trailing bits are "
                          "not zero",
                          n);
    }
    buf[len] = '\0';

    /* Ownership of buf passes to the caller. */
    *out = buf;
    if (out_len != NULL)
        *out_len = len;
    return CC_OK;
}
