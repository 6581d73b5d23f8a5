#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "citadel/codec.h"

/* RFC 4648 section 10 test vectors, with the '=' padding removed. */
static const struct {
    const char *plain;
    const char *encoded;
} base32_vectors[] = {
    {"", ""},
    {"f", "MY"},
    {"fo", "MZXQ"},
    {"foo", "MZXW6"},
    {"foob", "MZXW6YQ"},
    {"fooba", "MZXW6YTB"},
    {"foobar", "MZXW6YTBOI"},
};

#define VECTOR_COUNT (sizeof(base32_vectors) / sizeof(base32_vectors[0]))

Test(crc16, check_value)
{
    cr_assert_eq(cc_crc16_xmodem((const uint8_t *)"123456789", 9), 0x31C3);
    cr_assert_eq(cc_crc16_xmodem(NULL, 0), 0);
}

Test(base32, encodes_rfc4648_vectors)
{
    for (size_t i = 0; i < VECTOR_COUNT; i++) {
        const char *plain = base32_vectors[i].plain;
        char out[32];
        cr_assert_eq(cc_base32_encoded_len(strlen(plain)), strlen(base32_vectors[i].encoded));
        cr_assert_eq(
            cc_base32_encode((const uint8_t *)plain, strlen(plain), out, sizeof(out), NULL), CC_OK);
        cr_assert_str_eq(out, base32_vectors[i].encoded);
    }
}

Test(base32, decodes_rfc4648_vectors)
{
    for (size_t i = 0; i < VECTOR_COUNT; i++) {
        const char *encoded = base32_vectors[i].encoded;
        uint8_t out[32];
        size_t len = 99;
        cr_assert_eq(cc_base32_decode(encoded, strlen(encoded), out, sizeof(out), &len, NULL),
                     CC_OK, "vector %s", encoded);
        cr_assert_eq(len, strlen(base32_vectors[i].plain));
        cr_assert_eq(memcmp(out, base32_vectors[i].plain, len), 0);
    }
}

Test(base32, round_trips_all_lengths)
{
    uint8_t in[40];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 11);

    for (size_t n = 0; n <= sizeof(in); n++) {
        char text[80];
        uint8_t back[40];
        size_t len = 0;
        cr_assert_eq(cc_base32_encode(in, n, text, sizeof(text), NULL), CC_OK);
        cr_assert_eq(cc_base32_decode(text, strlen(text), back, sizeof(back), &len, NULL), CC_OK);
        cr_assert_eq(len, n);
        cr_assert_eq(memcmp(in, back, n), 0);
    }
}

Test(base32, rejects_bad_input)
{
    const char *bad[] = {
        "MZXW6===", /* padding */
        "mzxw6",    /* lowercase */
        "MZXW1",    /* '1' is not in the alphabet */
        "MZXW0",    /* '0' is not in the alphabet */
        "MZX",      /* length 3 encodes no byte string */
        "MZ XW6",   /* space */
    };
    uint8_t out[16];
    cc_err err = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(cc_base32_decode(bad[i], strlen(bad[i]), out, sizeof(out), NULL, &err),
                     CC_ERR_INVALID, "input %s", bad[i]);
        cr_assert_str_neq(err.message, "");
    }
}

Test(base32, rejects_nonzero_trailing_bits)
{
    /* "MY" is "f"; "MZ" sets a bit that falls past the last byte. */
    uint8_t out[4];
    cc_err err = {0};
    cr_assert_eq(cc_base32_decode("MZ", 2, out, sizeof(out), NULL, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "trailing bits") != NULL, "message: %s", err.message);
}

Test(base32, names_padding_in_error)
{
    uint8_t out[8];
    cc_err err = {0};
    cr_assert_eq(cc_base32_decode("MY======", 8, out, sizeof(out), NULL, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "padding") != NULL, "message: %s", err.message);
}

Test(base32, rejects_small_buffers)
{
    char text[4];
    uint8_t out[2];
    cr_assert_eq(cc_base32_encode((const uint8_t *)"foo", 3, text, sizeof(text), NULL),
                 CC_ERR_INVALID);
    cr_assert_eq(cc_base32_decode("MZXW6", 5, out, sizeof(out), NULL, NULL), CC_ERR_INVALID);
}

Test(b64url, round_trips_bytes)
{
    const uint8_t in[] = {0xfb, 0xff, 0xfe, 0x00, 0x3e, 0x3f};
    for (size_t n = 0; n <= sizeof(in); n++) {
        char *text = cc_b64url_encode(in, n);
        cr_assert_not_null(text);
        cr_assert_null(strchr(text, '='));
        cr_assert_null(strchr(text, '+'));
        cr_assert_null(strchr(text, '/'));

        uint8_t *back = NULL;
        size_t len = 0;
        cr_assert_eq(cc_b64url_decode(text, strlen(text), &back, &len, NULL), CC_OK);
        cr_assert_eq(len, n);
        cr_assert_eq(memcmp(back, in, n), 0);
        cr_assert_eq(back[len], 0, "decoded bytes are NUL-terminated");
        free(back);
        free(text);
    }
}

Test(b64url, encodes_jwt_header)
{
    const char *header = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
    char *text = cc_b64url_encode((const uint8_t *)header, strlen(header));
    cr_assert_str_eq(text, "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ");
    free(text);
}

Test(b64url, uses_url_alphabet)
{
    const uint8_t in[] = {0xfb, 0xff};
    char *text = cc_b64url_encode(in, sizeof(in));
    cr_assert_str_eq(text, "-_8");
    free(text);
}

Test(b64url, rejects_padding_and_std_alphabet)
{
    const char *bad[] = {"-_8=", "+_8", "-/8", "-_8*", "A"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *out = (uint8_t *)"untouched";
        cc_err err = {0};
        cr_assert_eq(cc_b64url_decode(bad[i], strlen(bad[i]), &out, NULL, &err), CC_ERR_INVALID,
                     "input %s", bad[i]);
        cr_assert_str_neq(err.message, "");
        cr_assert_str_eq((const char *)out, "untouched");
    }
}

Test(b64url, names_cause_in_error)
{
    uint8_t *out = NULL;
    cc_err err = {0};
    cc_b64url_decode("ab==", 4, &out, NULL, &err);
    cr_assert(strstr(err.message, "padding") != NULL, "message: %s", err.message);
    cc_b64url_decode("a+b", 3, &out, NULL, &err);
    cr_assert(strstr(err.message, "standard base64") != NULL, "message: %s", err.message);
}
