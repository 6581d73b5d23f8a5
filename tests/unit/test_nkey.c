#include <criterion/criterion.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "citadel/nkey.h"

/* Public test keys published with nats-server's tests and nats-by-example. */
static const struct {
    const char *seed;
    const char *public_key;
    cc_nkey_kind kind;
} known[] = {
    {"SAANDLKMXL6CUS3CP52WIXBEDN6YJ545GDKC65U5JZPPV6WH6ESWUA6YAI",
     "ABJHLOVMPA4CI6R5KLNGOB4GSLNIY7IOUPAJC4YFNDLQVIOBYQGUWVLA", CC_NKEY_ACCOUNT},
    {"SUAP277QP7U4JMFFPVZHLJYEQJ2UHOTYVEIZJYAWRJXQLP4FRSEHYZJJOU",
     "UBO2MQV67TQTVIRV3XFTEZOACM4WLOCMCDMAWN5QVN5PI2N6JHTVDRON", CC_NKEY_USER},
    {"SXAAXMRAEP6JWWHNB6IKFL554IE6LZVT6EY5MBRICPILTLOPHAG73I3YX4",
     "XAB3NANV3M6N7AHSQP2U5FRWKKUT7EG2ZXXABV4XVXYQRJGM4S2CZGHT", CC_NKEY_CURVE},
};

#define ACCOUNT_SEED "SAANDLKMXL6CUS3CP52WIXBEDN6YJ545GDKC65U5JZPPV6WH6ESWUA6YAI"
#define ACCOUNT_PUBLIC "ABJHLOVMPA4CI6R5KLNGOB4GSLNIY7IOUPAJC4YFNDLQVIOBYQGUWVLA"
#define USER_PUBLIC "UBO2MQV67TQTVIRV3XFTEZOACM4WLOCMCDMAWN5QVN5PI2N6JHTVDRON"

static const cc_nkey_kind all_kinds[] = {CC_NKEY_ACCOUNT,  CC_NKEY_USER,    CC_NKEY_SERVER,
                                         CC_NKEY_OPERATOR, CC_NKEY_CLUSTER, CC_NKEY_CURVE};
static const char lead_chars[] = {'A', 'U', 'N', 'O', 'C', 'X'};
static const char *seed_leads[] = {"SA", "SU", "SN", "SO", "SC", "SX"};

#define KIND_COUNT (sizeof(all_kinds) / sizeof(all_kinds[0]))

static bool contains(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

Test(nkey, known_answer_vectors)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        cc_nkey key;
        cc_err err = {0};
        cr_assert_eq(cc_nkey_from_seed(known[i].seed, CC_NKEY_ANY, &key, &err), CC_OK, "%s",
                     err.message);
        cr_assert_eq(key.kind, known[i].kind);

        char public_text[CC_NKEY_PUBLIC_LEN + 1];
        cc_nkey_public_string(&key, public_text);
        cr_assert_str_eq(public_text, known[i].public_key);

        char seed_text[CC_NKEY_SEED_LEN + 1];
        cc_nkey_seed_string(&key, seed_text);
        cr_assert_str_eq(seed_text, known[i].seed);
        cc_nkey_wipe(&key);
    }
}

Test(nkey, round_trips_every_kind)
{
    for (size_t i = 0; i < KIND_COUNT; i++) {
        cc_nkey key, again;
        cr_assert_eq(cc_nkey_generate(all_kinds[i], &key, NULL), CC_OK);

        char public_text[CC_NKEY_PUBLIC_LEN + 1];
        char seed_text[CC_NKEY_SEED_LEN + 1];
        cc_nkey_public_string(&key, public_text);
        cc_nkey_seed_string(&key, seed_text);
        cr_assert_eq(strlen(public_text), CC_NKEY_PUBLIC_LEN);
        cr_assert_eq(strlen(seed_text), CC_NKEY_SEED_LEN);
        cr_assert_eq(public_text[0], lead_chars[i]);
        cr_assert_eq(strncmp(seed_text, seed_leads[i], 2), 0, "seed of kind %s",
                     cc_nkey_kind_name(all_kinds[i]));

        uint8_t raw[32];
        cc_nkey_kind kind;
        cr_assert_eq(cc_nkey_decode_public(public_text, all_kinds[i], &kind, raw, NULL), CC_OK);
        cr_assert_eq(kind, all_kinds[i]);
        cr_assert_eq(memcmp(raw, key.public_key, 32), 0);

        cr_assert_eq(cc_nkey_from_seed(seed_text, all_kinds[i], &again, NULL), CC_OK);
        cr_assert_eq(memcmp(&again, &key, sizeof(key)), 0);
        cc_nkey_wipe(&key);
        cc_nkey_wipe(&again);
    }
}

Test(nkey, kind_names_round_trip)
{
    for (size_t i = 0; i < KIND_COUNT; i++) {
        cc_nkey_kind kind;
        cr_assert_eq(cc_nkey_kind_parse(cc_nkey_kind_name(all_kinds[i]), &kind, NULL), CC_OK);
        cr_assert_eq(kind, all_kinds[i]);
    }
    cc_nkey_kind kind;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_kind_parse("seed", &kind, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "\"seed\""), "message: %s", err.message);
}

Test(nkey, rejects_wrong_kind)
{
    uint8_t raw[32];
    cc_err err = {0};
    cr_assert_eq(cc_nkey_decode_public(ACCOUNT_PUBLIC, CC_NKEY_USER, NULL, raw, &err),
                 CC_ERR_INVALID);
    cr_assert(contains(err.message, "wrong kind"), "message: %s", err.message);
    cr_assert(contains(err.message, "expected user"), "message: %s", err.message);
    cr_assert(contains(err.message, "got account"), "message: %s", err.message);

    cc_nkey key;
    cr_assert_eq(cc_nkey_from_seed(ACCOUNT_SEED, CC_NKEY_OPERATOR, &key, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "expected operator"), "message: %s", err.message);
    cr_assert(contains(err.message, "got account"), "message: %s", err.message);
}

Test(nkey, rejects_flipped_checksum)
{
    /* Changing the last character changes only CRC bits. */
    char text[] = ACCOUNT_PUBLIC;
    text[CC_NKEY_PUBLIC_LEN - 1] = text[CC_NKEY_PUBLIC_LEN - 1] == 'A' ? 'B' : 'A';
    uint8_t raw[32];
    cc_err err = {0};
    cr_assert_eq(cc_nkey_decode_public(text, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad checksum"), "message: %s", err.message);

    /* A changed key character also breaks the checksum. */
    char body[] = ACCOUNT_PUBLIC;
    body[10] = body[10] == 'Q' ? 'R' : 'Q';
    cr_assert_eq(cc_nkey_decode_public(body, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad checksum"), "message: %s", err.message);

    char seed[] = ACCOUNT_SEED;
    seed[20] = seed[20] == 'Q' ? 'R' : 'Q';
    cr_assert_eq(cc_nkey_decode_seed(seed, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad checksum"), "message: %s", err.message);
}

Test(nkey, rejects_bad_length)
{
    uint8_t raw[32];
    cc_err err = {0};
    char shorter[] = ACCOUNT_PUBLIC;
    shorter[CC_NKEY_PUBLIC_LEN - 1] = '\0';
    cr_assert_eq(cc_nkey_decode_public(shorter, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad length"), "message: %s", err.message);

    cr_assert_eq(cc_nkey_decode_public(ACCOUNT_PUBLIC "A", CC_NKEY_ANY, NULL, raw, &err),
                 CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad length"), "message: %s", err.message);

    cr_assert_eq(cc_nkey_decode_public("", CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad length"), "message: %s", err.message);

    cr_assert_eq(cc_nkey_decode_seed(ACCOUNT_SEED "AA", CC_NKEY_ANY, NULL, raw, &err),
                 CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad length"), "message: %s", err.message);

    cc_nkey key;
    cr_assert_eq(cc_nkey_from_seed(ACCOUNT_SEED ACCOUNT_SEED, CC_NKEY_ANY, &key, &err),
                 CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad length"), "message: %s", err.message);
}

Test(nkey, rejects_bad_alphabet)
{
    const char replacements[] = {'1', '0', 'a', '=', '8', '-'};
    uint8_t raw[32];
    for (size_t i = 0; i < sizeof(replacements); i++) {
        char text[] = ACCOUNT_PUBLIC;
        text[5] = replacements[i];
        cc_err err = {0};
        cr_assert_eq(cc_nkey_decode_public(text, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID,
                     "character %c", replacements[i]);
        cr_assert(contains(err.message, "bad alphabet"), "message: %s", err.message);
    }

    char lower[] = ACCOUNT_SEED;
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    cc_err err = {0};
    cr_assert_eq(cc_nkey_decode_seed(lower, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad alphabet"), "message: %s", err.message);
}

Test(nkey, rejects_seed_as_public)
{
    uint8_t raw[32];
    cc_err err = {0};
    cr_assert_eq(cc_nkey_decode_public(ACCOUNT_SEED, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "seed"), "message: %s", err.message);
    cr_assert(!contains(err.message, ACCOUNT_SEED), "the message must not quote the seed");
}

Test(nkey, rejects_public_as_seed)
{
    uint8_t raw[32];
    cc_err err = {0};
    cr_assert_eq(cc_nkey_decode_seed(ACCOUNT_PUBLIC, CC_NKEY_ANY, NULL, raw, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "public key"), "message: %s", err.message);
}

Test(nkey, messages_never_quote_seed)
{
    char seed[] = ACCOUNT_SEED;
    seed[20] = seed[20] == 'Q' ? 'R' : 'Q';
    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_from_seed(seed, CC_NKEY_ANY, &key, &err), CC_ERR_INVALID);
    cr_assert(!contains(err.message, seed), "message: %s", err.message);
    cr_assert(!contains(err.message, "ANDLKMXL"), "message: %s", err.message);
}

Test(nkey, trims_seed_whitespace)
{
    cc_nkey key;
    cr_assert_eq(cc_nkey_from_seed("  " ACCOUNT_SEED "\r\n", CC_NKEY_ACCOUNT, &key, NULL), CC_OK);
    char public_text[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&key, public_text);
    cr_assert_str_eq(public_text, ACCOUNT_PUBLIC);
}

Test(nkey, sign_and_verify)
{
    cc_nkey key;
    cr_assert_eq(cc_nkey_from_seed(ACCOUNT_SEED, CC_NKEY_ACCOUNT, &key, NULL), CC_OK);
    const char *msg = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30";
    uint8_t sig[CC_NKEY_SIGNATURE_LEN];
    cr_assert_eq(cc_nkey_sign(&key, (const uint8_t *)msg, strlen(msg), sig, NULL), CC_OK);
    cr_assert_eq(cc_nkey_verify(ACCOUNT_PUBLIC, (const uint8_t *)msg, strlen(msg), sig, NULL),
                 CC_OK);

    cc_err err = {0};
    cr_assert_eq(cc_nkey_verify(USER_PUBLIC, (const uint8_t *)msg, strlen(msg), sig, &err),
                 CC_ERR_CRYPTO, "another key's signature is rejected");
    cr_assert(contains(err.message, USER_PUBLIC), "message: %s", err.message);
    cc_nkey_wipe(&key);
}

Test(nkey, verify_rejects_flipped_bytes)
{
    cc_nkey key;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_USER, &key, NULL), CC_OK);
    char public_text[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&key, public_text);

    uint8_t msg[] = "header.payload";
    uint8_t sig[CC_NKEY_SIGNATURE_LEN];
    cr_assert_eq(cc_nkey_sign(&key, msg, sizeof(msg) - 1, sig, NULL), CC_OK);

    sig[0] ^= 0x01;
    cr_assert_eq(cc_nkey_verify(public_text, msg, sizeof(msg) - 1, sig, NULL), CC_ERR_CRYPTO);
    sig[0] ^= 0x01;
    msg[3] ^= 0x01;
    cr_assert_eq(cc_nkey_verify(public_text, msg, sizeof(msg) - 1, sig, NULL), CC_ERR_CRYPTO);
    msg[3] ^= 0x01;
    cr_assert_eq(cc_nkey_verify(public_text, msg, sizeof(msg) - 1, sig, NULL), CC_OK);
    cc_nkey_wipe(&key);
}

Test(nkey, curve_key_cannot_sign)
{
    cc_nkey key;
    cr_assert_eq(cc_nkey_generate(CC_NKEY_CURVE, &key, NULL), CC_OK);
    uint8_t sig[CC_NKEY_SIGNATURE_LEN];
    cc_err err = {0};
    cr_assert_eq(cc_nkey_sign(&key, (const uint8_t *)"x", 1, sig, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "curve"), "message: %s", err.message);

    char public_text[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&key, public_text);
    cr_assert_eq(cc_nkey_verify(public_text, (const uint8_t *)"x", 1, sig, &err), CC_ERR_INVALID);
    cc_nkey_wipe(&key);
}

Test(nkey, wipe_clears_secrets)
{
    cc_nkey key;
    cr_assert_eq(cc_nkey_from_seed(ACCOUNT_SEED, CC_NKEY_ACCOUNT, &key, NULL), CC_OK);
    cc_nkey_wipe(&key);
    const uint8_t zero[64] = {0};
    cr_assert_eq(memcmp(key.seed, zero, sizeof(key.seed)), 0);
    cr_assert_eq(memcmp(key.secret_key, zero, sizeof(key.secret_key)), 0);
}

/* Seed files. Each test works in its own temporary directory. */

static char *make_temp_dir(void)
{
    char *dir = strdup("/tmp/citadel-nkey-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "cannot create %s", path);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void remove_temp_dir(char *dir, const char *path)
{
    unlink(path);
    rmdir(dir);
    free(dir);
}

Test(seed_file, loads_mode_0600)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/account.nk", dir);
    write_file(path, ACCOUNT_SEED "\n", 0600);

    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ACCOUNT, &key, &err), CC_OK, "%s",
                 err.message);
    char public_text[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&key, public_text);
    cr_assert_str_eq(public_text, ACCOUNT_PUBLIC);
    cc_nkey_wipe(&key);
    remove_temp_dir(dir, path);
}

Test(seed_file, loads_mode_0400)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/account.nk", dir);
    write_file(path, ACCOUNT_SEED, 0400);

    cc_nkey key;
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ANY, &key, NULL), CC_OK);
    cc_nkey_wipe(&key);
    remove_temp_dir(dir, path);
}

Test(seed_file, rejects_group_and_other_modes)
{
    const mode_t modes[] = {0640, 0604, 0660, 0644, 0610, 0601};
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/account.nk", dir);

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        write_file(path, ACCOUNT_SEED "\n", modes[i]);
        cc_nkey key;
        cc_err err = {0};
        cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ACCOUNT, &key, &err), CC_ERR_PERMISSION,
                     "mode %04o", (unsigned)modes[i]);
        cr_assert(contains(err.message, path), "message: %s", err.message);
        cr_assert(contains(err.message, "chmod 600"), "message: %s", err.message);
        cr_assert(!contains(err.message, ACCOUNT_SEED), "message: %s", err.message);
    }
    remove_temp_dir(dir, path);
}

Test(seed_file, rejects_directory_and_fifo)
{
    char *dir = make_temp_dir();
    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file(dir, CC_NKEY_ANY, &key, &err), CC_ERR_PERMISSION);
    cr_assert(contains(err.message, "not a regular file"), "message: %s", err.message);

    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/fifo", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ANY, &key, &err), CC_ERR_PERMISSION);
    cr_assert(contains(err.message, "not a regular file"), "message: %s", err.message);
    remove_temp_dir(dir, path);
}

Test(seed_file, missing_file_is_not_found)
{
    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file("/nonexistent/citadel/seed.nk", CC_NKEY_ANY, &key, &err),
                 CC_ERR_NOT_FOUND);
    cr_assert(contains(err.message, "/nonexistent/citadel/seed.nk"), "message: %s", err.message);
}

static const char creds_text[] = "-----BEGIN NATS USER JWT-----\n"
                                 "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln\n"
                                 "------END NATS USER JWT------\n"
                                 "\n"
                                 "************************* IMPORTANT *************************\n"
                                 "NKEY Seed printed below can be used to sign and prove identity.\n"
                                 "NKEYs are sensitive and should be treated as secrets.\n"
                                 "\n"
                                 "-----BEGIN USER NKEY SEED-----\n"
                                 "SUAP277QP7U4JMFFPVZHLJYEQJ2UHOTYVEIZJYAWRJXQLP4FRSEHYZJJOU\n"
                                 "------END USER NKEY SEED------\n"
                                 "\n"
                                 "*************************************************************\n";

Test(seed_file, loads_creds_file)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/user.creds", dir);
    write_file(path, creds_text, 0600);

    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_USER, &key, &err), CC_OK, "%s", err.message);
    char public_text[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&key, public_text);
    cr_assert_str_eq(public_text, USER_PUBLIC);
    cc_nkey_wipe(&key);
    remove_temp_dir(dir, path);
}

Test(seed_file, loads_seed_line_without_markers)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/user.creds", dir);
    write_file(path,
               "# service credentials\n"
               "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln\n"
               "  SUAP277QP7U4JMFFPVZHLJYEQJ2UHOTYVEIZJYAWRJXQLP4FRSEHYZJJOU  \r\n",
               0600);

    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_USER, &key, &err), CC_OK, "%s", err.message);
    cc_nkey_wipe(&key);
    remove_temp_dir(dir, path);
}

Test(seed_file, rejects_file_without_seed)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/empty.creds", dir);
    write_file(path, "first line\nsecond line\n", 0600);

    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ANY, &key, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "no seed found"), "message: %s", err.message);
    cr_assert(contains(err.message, path), "message: %s", err.message);

    write_file(path, "-----BEGIN USER NKEY SEED-----\n" ACCOUNT_SEED "\n", 0600);
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ANY, &key, &err), CC_ERR_INVALID,
                 "a seed block without its END line is rejected");
    remove_temp_dir(dir, path);
}

Test(seed_file, names_file_in_decode_error)
{
    char *dir = make_temp_dir();
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/account.nk", dir);
    write_file(path, ACCOUNT_SEED "\n", 0600);

    cc_nkey key;
    cc_err err = {0};
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_USER, &key, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, path), "message: %s", err.message);
    cr_assert(contains(err.message, "wrong kind"), "message: %s", err.message);

    write_file(path, "SAANDLKMXL6CUS3CP52\n", 0600);
    cr_assert_eq(cc_nkey_load_seed_file(path, CC_NKEY_ANY, &key, &err), CC_ERR_INVALID);
    cr_assert(contains(err.message, "bad length"), "message: %s", err.message);
    remove_temp_dir(dir, path);
}
