/* SPIFFE ID parser: one table of valid IDs, one of invalid IDs with the rule
 * each breaks, and the length limits at their boundaries. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "citadel/spiffeid.h"

typedef struct valid_case {
    const char *id;
    const char *trust_domain;
    const char *path;
} valid_case;

typedef struct invalid_case {
    const char *id;
    size_t len; /* 0: strlen(id) */
    const char *reason;
} invalid_case;

static const char TD_CHARS[] = "trust domain characters are limited to lowercase letters, "
                               "numbers, dots, dashes and underscores";
static const char PATH_CHARS[] = "path segment characters are limited to letters, numbers, "
                                 "dots, dashes and underscores";

static const valid_case VALID[] = {
    {"spiffe://trustdomain", "trustdomain", ""},
    {"spiffe://trustdomain/path1/path2", "trustdomain", "/path1/path2"},
    {"spiffe://trust-domain.org/PATH1", "trust-domain.org", "/PATH1"},
    {"spiffe://trustdomain/.path", "trustdomain", "/.path"},
    {"spiffe://trustdomain/..path", "trustdomain", "/..path"},
    {"spiffe://trustdomain/...", "trustdomain", "/..."},
    {"spiffe://a_b.example/foo", "a_b.example", "/foo"},
    {"spiffe://192.168.1.1/ns/default", "192.168.1.1", "/ns/default"},
    {"spiffe://td/A-Z_a.z-0.9", "td", "/A-Z_a.z-0.9"},
};

static const invalid_case INVALID[] = {
    {"", 0, "SPIFFE ID is empty"},
    {"Spiffe://td", 0, "scheme is missing or invalid"},
    {"SPIFFE://td/p", 0, "scheme is missing or invalid"},
    {"spiffe:/td", 0, "scheme is missing or invalid"},
    {"https://td/p", 0, "scheme is missing or invalid"},
    {"//td/p", 0, "scheme is missing or invalid"},
    {"spiffe://", 0, "trust domain is missing"},
    {"spiffe:///p", 0, "trust domain is missing"},
    {"spiffe://td:8080/p", 0, TD_CHARS},
    {"spiffe://user@td/p", 0, TD_CHARS},
    {"spiffe://TD/p", 0, TD_CHARS},
    {"spiffe://Td", 0, TD_CHARS},
    {"spiffe://td?x=1", 0, TD_CHARS},
    {"spiffe://td#frag", 0, TD_CHARS},
    {"spiffe://t%64/p", 0, TD_CHARS},
    {"spiffe://[::1]/p", 0, TD_CHARS},
    {"spiffe://t\xc3\xa9/p", 0, TD_CHARS},
    {"spiffe://td/", 0, "path cannot have a trailing slash"},
    {"spiffe://td/p/", 0, "path cannot have a trailing slash"},
    {"spiffe://td//", 0, "path cannot contain empty segments"},
    {"spiffe://td//p", 0, "path cannot contain empty segments"},
    {"spiffe://td/a//b", 0, "path cannot contain empty segments"},
    {"spiffe://td/./p", 0, "path cannot contain dot segments"},
    {"spiffe://td/../p", 0, "path cannot contain dot segments"},
    {"spiffe://td/p/.", 0, "path cannot contain dot segments"},
    {"spiffe://td/p/..", 0, "path cannot contain dot segments"},
    {"spiffe://td/p%2Fq", 0, PATH_CHARS},
    {"spiffe://td/p?x=1", 0, PATH_CHARS},
    {"spiffe://td/p#frag", 0, PATH_CHARS},
    {"spiffe://td/p:q", 0, PATH_CHARS},
    {"spiffe://td/p q", 0, PATH_CHARS},
    {"spiffe://td/caf\xc3\xa9", 0, PATH_CHARS},
    {"spiffe://td/p\0q", 15, "SPIFFE ID contains a NUL byte"},
    {"spiffe://td\0/p", 14, "SPIFFE ID contains a NUL byte"},
};

Test(spiffeid, valid_table)
{
    for (size_t i = 0; i < sizeof(VALID) / sizeof(VALID[0]); i++) {
        cc_spiffeid id;
        cc_err err = {0};
        cc_status rc = cc_spiffeid_parse(VALID[i].id, strlen(VALID[i].id), &id, &err);
        cr_assert_eq(rc, CC_OK, "%s: %s", VALID[i].id, err.message);
        cr_assert_str_eq(id.id, VALID[i].id);
        cr_assert_str_eq(id.trust_domain, VALID[i].trust_domain);
        cr_assert_str_eq(id.path, VALID[i].path);
    }
}

Test(spiffeid, invalid_table)
{
    for (size_t i = 0; i < sizeof(INVALID) / sizeof(INVALID[0]); i++) {
        const invalid_case *c = &INVALID[i];
        size_t len = c->len != 0 ? c->len : strlen(c->id);
        cc_spiffeid id;
        cc_err err = {0};
        cc_status rc = cc_spiffeid_parse(c->id, len, &id, &err);
        cr_assert_eq(rc, CC_ERR_INVALID, "case %zu was accepted", i);
        cr_assert(strstr(err.message, c->reason) != NULL, "case %zu: expected \"%s\", got \"%s\"",
                  i, c->reason, err.message);
        cr_assert_str_eq(id.id, "", "case %zu left output behind", i);
    }
}

Test(spiffeid, error_quotes_input)
{
    cc_spiffeid id;
    cc_err err;
    cr_assert_eq(cc_spiffeid_parse("spiffe://td/a\0b", 15, &id, &err), CC_ERR_INVALID);
    cr_assert_str_eq(err.message,
                     "invalid SPIFFE ID \"spiffe://td/a\\x00b\": SPIFFE ID contains a NUL byte");
}

Test(spiffeid, has_path)
{
    cc_spiffeid id;
    cr_assert_eq(cc_spiffeid_parse("spiffe://td", 11, &id, NULL), CC_OK);
    cr_assert_not(cc_spiffeid_has_path(&id));
    cr_assert_eq(cc_spiffeid_parse("spiffe://td/x", 13, &id, NULL), CC_OK);
    cr_assert(cc_spiffeid_has_path(&id));
}

/* Returns "spiffe://td/aaaa..." of exactly len bytes; the caller frees it. */
static char *id_of_length(size_t len)
{
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    memset(text, 'a', len);
    memcpy(text, "spiffe://td/", 12);
    text[len] = '\0';
    return text;
}

Test(spiffeid, max_length)
{
    char *text = id_of_length(CC_SPIFFEID_MAX);
    cc_spiffeid id;
    cc_err err = {0};
    cr_assert_eq(cc_spiffeid_parse(text, CC_SPIFFEID_MAX, &id, &err), CC_OK, "%s", err.message);
    cr_assert_eq(strlen(id.id), CC_SPIFFEID_MAX);
    cr_assert_eq(strlen(id.path), CC_SPIFFEID_MAX - 11);
    free(text);
}

Test(spiffeid, over_max_length)
{
    char *text = id_of_length(CC_SPIFFEID_MAX + 1);
    cc_spiffeid id;
    cc_err err;
    cr_assert_eq(cc_spiffeid_parse(text, CC_SPIFFEID_MAX + 1, &id, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "SPIFFE ID is longer than 2048 bytes") != NULL, "%s",
              err.message);
    cr_assert(strstr(err.message, "...") != NULL, "long input is not cut: %s", err.message);
    free(text);
}

/* Returns "spiffe://ttt.../p" with a trust domain of td_len bytes; the caller frees it. */
static char *id_with_trust_domain(size_t td_len)
{
    char *text = malloc(td_len + 12);
    cr_assert_not_null(text);
    memcpy(text, "spiffe://", 9);
    memset(text + 9, 't', td_len);
    memcpy(text + 9 + td_len, "/p", 3);
    return text;
}

Test(spiffeid, trust_domain_max_length)
{
    char *text = id_with_trust_domain(CC_SPIFFEID_TRUST_DOMAIN_MAX);
    cc_spiffeid id;
    cc_err err = {0};
    cr_assert_eq(cc_spiffeid_parse(text, strlen(text), &id, &err), CC_OK, "%s", err.message);
    cr_assert_eq(strlen(id.trust_domain), CC_SPIFFEID_TRUST_DOMAIN_MAX);
    cr_assert_str_eq(id.path, "/p");
    free(text);
}

Test(spiffeid, trust_domain_over_max_length)
{
    char *text = id_with_trust_domain(CC_SPIFFEID_TRUST_DOMAIN_MAX + 1);
    cc_spiffeid id;
    cc_err err;
    cr_assert_eq(cc_spiffeid_parse(text, strlen(text), &id, &err), CC_ERR_INVALID);
    cr_assert(strstr(err.message, "trust domain is longer than 255 bytes") != NULL, "%s",
              err.message);
    free(text);
}

Test(spiffeid_trust_domain, bare_and_id_forms)
{
    char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
    cc_err err = {0};
    cr_assert_eq(cc_spiffeid_parse_trust_domain("example.org", 11, td, &err), CC_OK, "%s",
                 err.message);
    cr_assert_str_eq(td, "example.org");
    cr_assert_eq(cc_spiffeid_parse_trust_domain("spiffe://example.org", 20, td, &err), CC_OK, "%s",
                 err.message);
    cr_assert_str_eq(td, "example.org");
}

Test(spiffeid_trust_domain, invalid_table)
{
    static const invalid_case cases[] = {
        {"", 0, "trust domain is missing"},
        {"Example.org", 0, TD_CHARS},
        {"example.org:443", 0, TD_CHARS},
        {"example.org/p", 0, TD_CHARS},
        {"exa\0mple", 8, "trust domain contains a NUL byte"},
        {"spiffe://", 0, "trust domain is missing"},
        {"Spiffe://example.org", 0, "scheme is missing or invalid"},
        {"spiffe://example.org/p", 0, "a trust domain name cannot have a path"},
        {"spiffe://example.org/", 0, "path cannot have a trailing slash"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].id);
        char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
        cc_err err = {0};
        cr_assert_eq(cc_spiffeid_parse_trust_domain(cases[i].id, len, td, &err), CC_ERR_INVALID,
                     "case %zu was accepted", i);
        cr_assert(strstr(err.message, cases[i].reason) != NULL,
                  "case %zu: expected \"%s\", got \"%s\"", i, cases[i].reason, err.message);
        cr_assert(strstr(err.message, "invalid trust domain") != NULL, "%s", err.message);
        cr_assert_str_eq(td, "");
    }
}

Test(spiffeid_trust_domain, length_limit)
{
    char text[CC_SPIFFEID_TRUST_DOMAIN_MAX + 2];
    char td[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1];
    cc_err err = {0};
    memset(text, 'x', sizeof(text));
    cr_assert_eq(cc_spiffeid_parse_trust_domain(text, CC_SPIFFEID_TRUST_DOMAIN_MAX, td, &err),
                 CC_OK, "%s", err.message);
    cr_assert_eq(strlen(td), CC_SPIFFEID_TRUST_DOMAIN_MAX);
    cr_assert_eq(cc_spiffeid_parse_trust_domain(text, CC_SPIFFEID_TRUST_DOMAIN_MAX + 1, td, &err),
                 CC_ERR_INVALID);
    cr_assert(strstr(err.message, "trust domain is longer than 255 bytes") != NULL, "%s",
              err.message);
}
