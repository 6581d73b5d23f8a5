/* NATS nkeys: text encoding, Ed25519 signing and X25519 curve keys.
 *
 * Decoding checks, in order: length, alphabet, CRC-16, prefix byte (kind). Each
 * failure has its own message, and no message quotes the key text, because a
 * seed may be passed where a public key is expected. Every buffer that held
 * seed bytes is cleared with sodium_memzero before it is released. */
#include "citadel/nkey.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "citadel/codec.h"

#define PREFIX_SEED 0x90
#define PUBLIC_RAW_LEN 35 /* prefix + key + CRC */
#define SEED_RAW_LEN 36   /* two prefix bytes + seed + CRC */

/* A seed file larger than this is not a seed or creds file (creds files are about 1 KiB). */
#define SEED_FILE_MAX (64 * 1024)

static const char creds_seed_begin[] = "-----BEGIN USER NKEY SEED-----";
static const char creds_seed_end[] = "------END USER NKEY SEED------";

typedef struct kind_info {
    cc_nkey_kind kind;
    const char *name;
    uint8_t prefix;
    char lead; /* first character of the public key text */
} kind_info;

static const kind_info kinds[] = {
    {CC_NKEY_ACCOUNT, "account", 0x00, 'A'}, {CC_NKEY_USER, "user", 0xA0, 'U'},
    {CC_NKEY_SERVER, "server", 0x68, 'N'},   {CC_NKEY_OPERATOR, "operator", 0x70, 'O'},
    {CC_NKEY_CLUSTER, "cluster", 0x10, 'C'}, {CC_NKEY_CURVE, "curve", 0xB8, 'X'},
};

#define KIND_COUNT (sizeof(kinds) / sizeof(kinds[0]))

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_result = -1;

static void sodium_init_once(void)
{
    sodium_result = sodium_init();
}

cc_status cc_nkey_library_init(cc_err *err)
{
    pthread_once(&sodium_once, sodium_init_once);
    if (sodium_result < 0)
        return cc_err_set(err, CC_ERR_INTERNAL, "libsodium initialisation (sodium_init) failed");
    return CC_OK;
}

static const kind_info *find_kind(cc_nkey_kind kind)
{
    for (size_t i = 0; i < KIND_COUNT; i++) {
        if (kinds[i].kind == kind)
            return &kinds[i];
    }
    return NULL;
}

static const kind_info *find_prefix(uint8_t prefix)
{
    for (size_t i = 0; i < KIND_COUNT; i++) {
        if (kinds[i].prefix == prefix)
            return &kinds[i];
    }
    return NULL;
}

const char *cc_nkey_kind_name(cc_nkey_kind kind)
{
    if (kind == CC_NKEY_ANY)
        return "any";
    const kind_info *info = find_kind(kind);
    return info != NULL ? info->name : "unknown";
}

cc_status cc_nkey_kind_parse(const char *name, cc_nkey_kind *kind, cc_err *err)
{
    for (size_t i = 0; name != NULL && i < KIND_COUNT; i++) {
        if (strcmp(name, kinds[i].name) == 0) {
            *kind = kinds[i].kind;
            return CC_OK;
        }
    }
    return cc_err_set(err, CC_ERR_INVALID,
                      "invalid nkey kind \"%s\": expected account, user, server, operator, "
                      "cluster or curve",
                      name != NULL ? name : "(null)");
}

static void put_crc(uint8_t *raw, size_t body_len)
{
    uint16_t crc = cc_crc16_xmodem(raw, body_len);
    raw[body_len] = (uint8_t)(crc & 0xFF);
    raw[body_len + 1] = (uint8_t)(crc >> 8);
}

static bool crc_matches(const uint8_t *raw, size_t body_len)
{
    uint16_t stored = (uint16_t)(raw[body_len] | (raw[body_len + 1] << 8));
    return stored == cc_crc16_xmodem(raw, body_len);
}

cc_status cc_nkey_encode_public(cc_nkey_kind kind, const uint8_t raw[32],
                                char out[CC_NKEY_PUBLIC_LEN + 1], cc_err *err)
{
    const kind_info *info = find_kind(kind);
    if (info == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "cannot encode a public nkey of unknown kind %d",
                          (int)kind);

    uint8_t buf[PUBLIC_RAW_LEN];
    buf[0] = info->prefix;
    memcpy(buf + 1, raw, 32);
    put_crc(buf, 33);
    return cc_base32_encode(buf, sizeof(buf), out, CC_NKEY_PUBLIC_LEN + 1, err);
}

/* Checks the length and alphabet of text and decodes it into raw (raw_len bytes).
 * what is "public nkey" or "seed" for messages. */
static cc_status decode_text(const char *text, size_t text_len, size_t expected_len,
                             const char *what, uint8_t *raw, size_t raw_len, cc_err *err)
{
    if (text_len != expected_len)
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid %s: bad length: %zu characters, expected %zu", what, text_len,
                          expected_len);

    for (size_t i = 0; i < text_len; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7')))
            return cc_err_set(err, CC_ERR_INVALID,
                              "invalid %s: bad alphabet: character %zu is not in A-Z2-7 "
                              "(nkeys are uppercase base32 without '=' padding)",
                              what, i + 1);
    }

    size_t got = 0;
    cc_status status = cc_base32_decode(text, text_len, raw, raw_len, &got, err);
    if (status != CC_OK) {
        cc_err_prefix(err, "invalid %s", what);
        return status;
    }
    if (got != raw_len)
        return cc_err_set(err, CC_ERR_INVALID, "invalid %s: bad length: %zu bytes, expected %zu",
                          what, got, raw_len);
    if (!crc_matches(raw, raw_len - 2))
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid %s: bad checksum: the CRC-16 does not match; the key was "
                          "mistyped or truncated",
                          what);
    return CC_OK;
}

static cc_status check_kind(const kind_info *actual, cc_nkey_kind expected, const char *what,
                            cc_err *err)
{
    if (expected == CC_NKEY_ANY || actual->kind == expected)
        return CC_OK;

    const kind_info *want = find_kind(expected);
    return cc_err_set(err, CC_ERR_INVALID,
                      "invalid %s: wrong kind: expected %s (prefix '%c'), got %s (prefix '%c')",
                      what, want != NULL ? want->name : "unknown", want != NULL ? want->lead : '?',
                      actual->name, actual->lead);
}

cc_status cc_nkey_decode_public(const char *text, cc_nkey_kind expected, cc_nkey_kind *kind,
                                uint8_t raw[32], cc_err *err)
{
    if (text == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "missing public nkey");

    size_t len = strlen(text);
    if (len == CC_NKEY_SEED_LEN && text[0] == 'S')
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid public nkey: a seed (secret, starts with 'S') was given where "
                          "a public key is expected; pass the public key instead");

    uint8_t buf[PUBLIC_RAW_LEN];
    cc_status status =
        decode_text(text, len, CC_NKEY_PUBLIC_LEN, "public nkey", buf, sizeof(buf), err);
    if (status != CC_OK)
        return status;

    const kind_info *info = find_prefix(buf[0] & 0xF8);
    if (info == NULL)
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid public nkey: wrong kind: prefix byte 0x%02x is not a public "
                          "key kind",
                          buf[0] & 0xF8);
    status = check_kind(info, expected, "public nkey", err);
    if (status != CC_OK)
        return status;

    if (kind != NULL)
        *kind = info->kind;
    memcpy(raw, buf + 1, 32);
    return CC_OK;
}

cc_status cc_nkey_encode_seed(cc_nkey_kind kind, const uint8_t raw_seed[32],
                              char out[CC_NKEY_SEED_LEN + 1], cc_err *err)
{
    const kind_info *info = find_kind(kind);
    if (info == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "cannot encode a seed of unknown kind %d",
                          (int)kind);

    uint8_t buf[SEED_RAW_LEN];
    buf[0] = (uint8_t)(PREFIX_SEED | (info->prefix >> 5));
    buf[1] = (uint8_t)((info->prefix & 0x1F) << 3);
    memcpy(buf + 2, raw_seed, 32);
    put_crc(buf, 34);
    cc_status status = cc_base32_encode(buf, sizeof(buf), out, CC_NKEY_SEED_LEN + 1, err);
    sodium_memzero(buf, sizeof(buf));
    return status;
}

cc_status cc_nkey_decode_seed(const char *text, cc_nkey_kind expected, cc_nkey_kind *kind,
                              uint8_t raw_seed[32], cc_err *err)
{
    if (text == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "missing seed");

    size_t len = strlen(text);
    if (len == CC_NKEY_PUBLIC_LEN && text[0] != 'S')
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid seed: bad length: 56 characters is the length of a public "
                          "key; a seed has 58 and starts with 'S'");

    uint8_t buf[SEED_RAW_LEN];
    cc_status status = decode_text(text, len, CC_NKEY_SEED_LEN, "seed", buf, sizeof(buf), err);
    if (status != CC_OK)
        goto cleanup;

    if ((buf[0] & 0xF8) != PREFIX_SEED) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "invalid seed: wrong kind: the text does not start with the seed "
                            "prefix 'S'");
        goto cleanup;
    }
    uint8_t prefix = (uint8_t)(((buf[0] & 0x07) << 5) | ((buf[1] & 0xF8) >> 3));
    const kind_info *info = find_prefix(prefix);
    if (info == NULL) {
        status =
            cc_err_set(err, CC_ERR_INVALID,
                       "invalid seed: wrong kind: prefix byte 0x%02x is not a key kind", prefix);
        goto cleanup;
    }
    status = check_kind(info, expected, "seed", err);
    if (status != CC_OK)
        goto cleanup;

    if (kind != NULL)
        *kind = info->kind;
    memcpy(raw_seed, buf + 2, 32);

cleanup:
    sodium_memzero(buf, sizeof(buf));
    return status;
}

/* Fills key from a raw seed of the given kind. */
static cc_status keypair_from_raw(cc_nkey_kind kind, const uint8_t seed[32], cc_nkey *key,
                                  cc_err *err)
{
    cc_status status = cc_nkey_library_init(err);
    if (status != CC_OK)
        return status;

    memset(key, 0, sizeof(*key));
    key->kind = kind;
    memcpy(key->seed, seed, 32);
    if (kind == CC_NKEY_CURVE) {
        memcpy(key->secret_key, seed, 32);
        if (crypto_scalarmult_base(key->public_key, key->secret_key) != 0) {
            cc_nkey_wipe(key);
            return cc_err_set(err, CC_ERR_INTERNAL, "X25519 public key derivation failed");
        }
        return CC_OK;
    }
    if (crypto_sign_seed_keypair(key->public_key, key->secret_key, key->seed) != 0) {
        cc_nkey_wipe(key);
        return cc_err_set(err, CC_ERR_INTERNAL, "Ed25519 keypair derivation failed");
    }
    return CC_OK;
}

cc_status cc_nkey_from_seed(const char *seed_text, cc_nkey_kind expected, cc_nkey *key, cc_err *err)
{
    if (seed_text == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "missing seed");

    while (isspace((unsigned char)*seed_text))
        seed_text++;
    size_t len = strlen(seed_text);
    while (len > 0 && isspace((unsigned char)seed_text[len - 1]))
        len--;

    /* Anything longer than a seed fails the length check, so a short buffer is enough. */
    char trimmed[CC_NKEY_SEED_LEN + 2];
    size_t copy = len < sizeof(trimmed) - 1 ? len : sizeof(trimmed) - 1;
    memcpy(trimmed, seed_text, copy);
    trimmed[copy] = '\0';
    if (len != copy) {
        sodium_memzero(trimmed, sizeof(trimmed));
        return cc_err_set(err, CC_ERR_INVALID,
                          "invalid seed: bad length: %zu characters, expected %d", len,
                          CC_NKEY_SEED_LEN);
    }

    uint8_t raw[32];
    cc_nkey_kind kind;
    cc_status status = cc_nkey_decode_seed(trimmed, expected, &kind, raw, err);
    if (status == CC_OK)
        status = keypair_from_raw(kind, raw, key, err);

    sodium_memzero(trimmed, sizeof(trimmed));
    sodium_memzero(raw, sizeof(raw));
    return status;
}

cc_status cc_nkey_generate(cc_nkey_kind kind, cc_nkey *key, cc_err *err)
{
    if (find_kind(kind) == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "cannot generate an nkey of unknown kind %d",
                          (int)kind);
    cc_status status = cc_nkey_library_init(err);
    if (status != CC_OK)
        return status;

    uint8_t raw[32];
    randombytes_buf(raw, sizeof(raw));
    status = keypair_from_raw(kind, raw, key, err);
    sodium_memzero(raw, sizeof(raw));
    return status;
}

void cc_nkey_public_string(const cc_nkey *key, char out[CC_NKEY_PUBLIC_LEN + 1])
{
    if (cc_nkey_encode_public(key->kind, key->public_key, out, NULL) != CC_OK)
        out[0] = '\0';
}

void cc_nkey_seed_string(const cc_nkey *key, char out[CC_NKEY_SEED_LEN + 1])
{
    if (cc_nkey_encode_seed(key->kind, key->seed, out, NULL) != CC_OK)
        out[0] = '\0';
}

cc_status cc_nkey_sign(const cc_nkey *key, const uint8_t *msg, size_t len,
                       uint8_t sig[CC_NKEY_SIGNATURE_LEN], cc_err *err)
{
    if (key->kind == CC_NKEY_CURVE)
        return cc_err_set(err, CC_ERR_INVALID,
                          "cannot sign with a curve (X25519) key: it only encrypts; use an "
                          "account, user, server, operator or cluster key");
    if (find_kind(key->kind) == NULL)
        return cc_err_set(err, CC_ERR_INVALID, "cannot sign with an nkey of unknown kind %d",
                          (int)key->kind);
    cc_status status = cc_nkey_library_init(err);
    if (status != CC_OK)
        return status;

    if (crypto_sign_detached(sig, NULL, msg, len, key->secret_key) != 0)
        return cc_err_set(err, CC_ERR_INTERNAL, "Ed25519 signing failed");
    return CC_OK;
}

cc_status cc_nkey_verify(const char *public_text, const uint8_t *msg, size_t len,
                         const uint8_t sig[CC_NKEY_SIGNATURE_LEN], cc_err *err)
{
    cc_status status = cc_nkey_library_init(err);
    if (status != CC_OK)
        return status;

    uint8_t raw[32];
    cc_nkey_kind kind;
    status = cc_nkey_decode_public(public_text, CC_NKEY_ANY, &kind, raw, err);
    if (status != CC_OK)
        return status;
    if (kind == CC_NKEY_CURVE)
        return cc_err_set(err, CC_ERR_INVALID,
                          "cannot verify a signature with curve key %s: curve keys do not sign",
                          public_text);

    if (crypto_sign_verify_detached(sig, msg, len, raw) != 0)
        return cc_err_set(err, CC_ERR_CRYPTO,
                          "Ed25519 signature verification failed for public key %s", public_text);
    return CC_OK;
}

void cc_nkey_wipe(cc_nkey *key)
{
    if (key != NULL)
        sodium_memzero(key, sizeof(*key));
}

/* Reads all of fd into a malloc'd NUL-terminated buffer (caller wipes and frees). */
static cc_status read_small_file(int fd, const char *path, size_t size, char **out, cc_err *err)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return cc_err_set(err, CC_ERR_NOMEM, "out of memory reading seed file %s", path);

    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            sodium_memzero(buf, size + 1);
            free(buf);
            return cc_err_set(err, CC_ERR_IO, "cannot read seed file %s: %s", path,
                              strerror(saved));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    return CC_OK;
}

/* Opens path and checks that it is a regular file without group or other
 * permission bits. Returns the descriptor in *fd and the size in *size. */
static cc_status open_private_file(const char *path, int *fd, size_t *size, cc_err *err)
{
    /* O_NONBLOCK keeps a FIFO from blocking the open; it is rejected below. */
    int file = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (file < 0) {
        int saved = errno;
        return cc_err_set(err, saved == ENOENT ? CC_ERR_NOT_FOUND : CC_ERR_IO,
                          "cannot open seed file %s: %s", path, strerror(saved));
    }

    struct stat st;
    cc_status status = CC_OK;
    if (fstat(file, &st) != 0) {
        status = cc_err_set(err, CC_ERR_IO, "cannot stat seed file %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        status = cc_err_set(err, CC_ERR_PERMISSION,
                            "seed file %s is not a regular file; point to the file itself", path);
    } else if ((st.st_mode & 077) != 0) {
        status = cc_err_set(err, CC_ERR_PERMISSION,
                            "seed file %s has mode %04o, so other users may read or change it; "
                            "run \"chmod 600 %s\"",
                            path, (unsigned)(st.st_mode & 07777), path);
    } else if (st.st_size > SEED_FILE_MAX) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "seed file %s is %lld bytes, more than the %d a seed or creds file "
                            "can be; check the path",
                            path, (long long)st.st_size, SEED_FILE_MAX);
    }
    if (status != CC_OK) {
        close(file);
        return status;
    }
    *fd = file;
    *size = (size_t)st.st_size;
    return CC_OK;
}

/* Splits text at the next newline: returns the current line trimmed of
 * whitespace (NUL-terminated in place) and advances *cursor past it. */
static char *next_line(char **cursor)
{
    char *line = *cursor;
    if (line == NULL)
        return NULL;

    char *newline = strchr(line, '\n');
    if (newline != NULL) {
        *newline = '\0';
        *cursor = newline + 1;
    } else {
        *cursor = NULL;
    }

    while (isspace((unsigned char)*line))
        line++;
    size_t len = strlen(line);
    while (len > 0 && isspace((unsigned char)line[len - 1]))
        line[--len] = '\0';
    return line;
}

/* Finds the seed line in a seed or creds file's text (modified in place).
 * Returns a pointer into text, or NULL when no line can be the seed. */
static const char *find_seed_line(char *text)
{
    char *cursor = text;
    const char *only_line = NULL;
    const char *seed_like = NULL;
    const char *block_seed = NULL;
    size_t nonblank = 0;
    bool in_block = false;

    for (char *line = next_line(&cursor); line != NULL; line = next_line(&cursor)) {
        if (*line == '\0')
            continue;
        nonblank++;
        if (in_block && block_seed == NULL) {
            block_seed = line;
            continue;
        }
        if (in_block)
            return strcmp(line, creds_seed_end) == 0 ? block_seed : NULL;
        if (strcmp(line, creds_seed_begin) == 0) {
            in_block = true;
            continue;
        }
        if (only_line == NULL)
            only_line = line;
        if (seed_like == NULL && line[0] == 'S' && strlen(line) == CC_NKEY_SEED_LEN)
            seed_like = line;
    }

    if (in_block)
        return NULL; /* a BEGIN line without a seed and END line after it */
    if (seed_like != NULL)
        return seed_like;
    /* A file of one line is a bare seed: decoding it gives the precise error. */
    return nonblank == 1 ? only_line : NULL;
}

cc_status cc_nkey_load_seed_file(const char *path, cc_nkey_kind expected, cc_nkey *key, cc_err *err)
{
    int fd = -1;
    size_t size = 0;
    char *text = NULL;

    cc_status status = open_private_file(path, &fd, &size, err);
    if (status != CC_OK)
        return status;
    status = read_small_file(fd, path, size, &text, err);
    close(fd);
    if (status != CC_OK)
        return status;

    const char *seed = find_seed_line(text);
    if (seed == NULL) {
        status = cc_err_set(err, CC_ERR_INVALID,
                            "no seed found in %s: expected a 58-character seed starting with "
                            "'S', alone or between the NKEY SEED lines of a NATS creds file",
                            path);
        goto cleanup;
    }
    status = cc_nkey_from_seed(seed, expected, key, err);
    if (status != CC_OK)
        cc_err_prefix(err, "seed file %s", path);

cleanup:
    sodium_memzero(text, size + 1);
    free(text);
    return status;
}
