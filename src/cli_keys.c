/* `citadel-callout keys`: create nkeys and print the public key of a seed file.
 *
 * A seed written with --out goes to a new file created with mode 0600
 * (O_EXCL, so an existing file is never overwritten). Without --out the seed
 * goes to stdout, with a warning on stderr that it is a secret. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "citadel/cli.h"
#include "citadel/nkey.h"

static void print_keys_usage(FILE *out)
{
    fprintf(out,
            "usage: citadel-callout keys generate KIND [--out FILE]\n"
            "       citadel-callout keys public FILE\n"
            "\n"
            "generate   create a new nkey of KIND: account, user, curve, operator or server.\n"
            "           With --out FILE the seed is written to FILE, a new file with mode 0600\n"
            "           (an existing FILE is never overwritten), and the public key is printed.\n"
            "           Without --out the seed and then the public key are printed, one per "
            "line.\n"
            "public     print the public key of the seed in FILE (a bare seed or a NATS .creds\n"
            "           file). FILE must be a regular file with mode 0600 or stricter.\n"
            "\n"
            "Exit status: 0 on success, 1 when the seed file is invalid or unsafe, 2 on a usage\n"
            "or I/O error.\n");
}

static int exit_code_for(cc_status status)
{
    switch (status) {
    case CC_OK:
        return CC_EXIT_OK;
    case CC_ERR_INVALID:
    case CC_ERR_PERMISSION:
    case CC_ERR_CRYPTO:
        return CC_EXIT_INVALID;
    default:
        return CC_EXIT_USAGE;
    }
}

/* Writes all of text to fd, retrying short writes. Returns 0 or an errno value. */
static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Creates path with mode 0600 and writes the seed line into it. */
static int write_seed_file(const char *path, const char *seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
        fprintf(stderr,
                "citadel-callout keys: %s already exists; it is never overwritten, so choose "
                "another path or remove the file first\n",
                path);
        return CC_EXIT_USAGE;
    }
    if (fd < 0) {
        fprintf(stderr, "citadel-callout keys: cannot create %s: %s\n", path, strerror(errno));
        return CC_EXIT_USAGE;
    }

    /* Seed line plus newline, wiped after the write. */
    char line[CC_NKEY_SEED_LEN + 2];
    snprintf(line, sizeof(line), "%s\n", seed);
    int error = write_all(fd, line, strlen(line));
    sodium_memzero(line, sizeof(line));
    if (error == 0 && fsync(fd) != 0)
        error = errno;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error != 0) {
        fprintf(stderr, "citadel-callout keys: cannot write %s: %s; the partial file was removed\n",
                path, strerror(error));
        unlink(path);
        return CC_EXIT_USAGE;
    }
    return CC_EXIT_OK;
}

static int keys_generate(int argc, char **argv)
{
    const char *kind_name = NULL;
    const char *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0) {
            fprintf(stderr, "citadel-callout keys generate: --out needs a FILE argument\n");
            return CC_EXIT_USAGE;
        } else if (kind_name == NULL && argv[i][0] != '-') {
            kind_name = argv[i];
        } else {
            fprintf(stderr, "citadel-callout keys generate: unexpected argument \"%s\"\n", argv[i]);
            return CC_EXIT_USAGE;
        }
    }
    if (kind_name == NULL) {
        fprintf(stderr, "citadel-callout keys generate: missing KIND (account, user, curve, "
                        "operator or server)\n");
        return CC_EXIT_USAGE;
    }

    cc_err err = {0};
    cc_nkey_kind kind;
    if (cc_nkey_kind_parse(kind_name, &kind, &err) != CC_OK || kind == CC_NKEY_CLUSTER) {
        fprintf(stderr,
                "citadel-callout keys generate: invalid KIND \"%s\": expected account, user, "
                "curve, operator or server\n",
                kind_name);
        return CC_EXIT_USAGE;
    }

    cc_nkey key;
    if (cc_nkey_generate(kind, &key, &err) != CC_OK) {
        fprintf(stderr, "citadel-callout keys generate: %s\n", err.message);
        return CC_EXIT_USAGE;
    }
    char seed[CC_NKEY_SEED_LEN + 1];
    char public_key[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_seed_string(&key, seed);
    cc_nkey_public_string(&key, public_key);
    cc_nkey_wipe(&key);

    int code = CC_EXIT_OK;
    if (out_path != NULL) {
        code = write_seed_file(out_path, seed);
        if (code == CC_EXIT_OK)
            printf("%s\n", public_key);
    } else {
        fprintf(stderr, "citadel-callout keys generate: the first line is the seed, a secret; "
                        "store it in a file with mode 0600 and do not share it\n");
        printf("%s\n%s\n", seed, public_key);
    }
    sodium_memzero(seed, sizeof(seed));
    return code;
}

static int keys_public(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: citadel-callout keys public FILE\n");
        return CC_EXIT_USAGE;
    }

    cc_nkey key;
    cc_err err = {0};
    cc_status status = cc_nkey_load_seed_file(argv[1], CC_NKEY_ANY, &key, &err);
    if (status != CC_OK) {
        fprintf(stderr, "citadel-callout keys public: %s\n", err.message);
        return exit_code_for(status);
    }
    char public_key[CC_NKEY_PUBLIC_LEN + 1];
    cc_nkey_public_string(&key, public_key);
    cc_nkey_wipe(&key);
    printf("%s\n", public_key);
    return CC_EXIT_OK;
}

int cc_cli_keys(int argc, char **argv)
{
    if (argc < 2) {
        print_keys_usage(stderr);
        return CC_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_keys_usage(stdout);
            return CC_EXIT_OK;
        }
    }

    if (strcmp(argv[1], "generate") == 0)
        return keys_generate(argc - 1, argv + 1);
    if (strcmp(argv[1], "public") == 0)
        return keys_public(argc - 1, argv + 1);

    fprintf(stderr, "citadel-callout keys: unknown subcommand \"%s\"\n\n", argv[1]);
    print_keys_usage(stderr);
    return CC_EXIT_USAGE;
}
