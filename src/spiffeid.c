/* Strict SPIFFE ID parser (rules in include/citadel/spiffeid.h).
 *
 * The checks return a static reason string, or NULL when the input passes, so
 * that every rule has one wording and the public functions add the quoted
 * input in one place. Every check is linear in the input length, and
 * cc_spiffeid_parse() applies the length limit before the character checks. */
#include "citadel/spiffeid.h"

#include <stdio.h>
#include <string.h>

#define SCHEME_PREFIX "spiffe://"
#define SCHEME_PREFIX_LEN (sizeof(SCHEME_PREFIX) - 1)

/* Input bytes quoted in an error message, at most; longer input is cut with "...". */
#define QUOTE_MAX 80

static const char REASON_TD_CHARS[] = "trust domain characters are limited to lowercase letters, "
                                      "numbers, dots, dashes and underscores";
static const char REASON_TD_MISSING[] = "trust domain is missing";
static const char REASON_PATH_CHARS[] = "path segment characters are limited to letters, numbers, "
                                        "dots, dashes and underscores";

static bool is_trust_domain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool is_path_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

/* Writes bytes into out as printable ASCII: other bytes become \xNN, and
 * input beyond QUOTE_MAX bytes is replaced by "...". */
static void quote_bytes(const char *bytes, size_t len, char *out, size_t size)
{
    size_t used = 0;
    size_t quoted_len = len < QUOTE_MAX ? len : QUOTE_MAX;

    out[0] = '\0';
    for (size_t i = 0; i < quoted_len && used + 5 < size; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, size - used, "\\x%02x", c);
    }
    out[used] = '\0';
    if (quoted_len < len && used + 4 <= size)
        memcpy(out + used, "...", 4);
}

/* Checks a bare trust domain name (no scheme, no path). */
static const char *check_trust_domain(const char *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_trust_domain_char((unsigned char)bytes[i]))
            return REASON_TD_CHARS;
    }
    if (len == 0)
        return REASON_TD_MISSING;
    if (len > CC_SPIFFEID_TRUST_DOMAIN_MAX)
        return "trust domain is longer than 255 bytes";
    return NULL;
}

/* True when bytes contain ":/", the mark of a URI scheme. */
static bool has_scheme_separator(const char *bytes, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (bytes[i] == ':' && bytes[i + 1] == '/')
            return true;
    }
    return false;
}

static bool is_dot_segment(const char *segment, size_t len)
{
    return (len == 1 && segment[0] == '.') || (len == 2 && segment[0] == '.' && segment[1] == '.');
}

/* Checks a path: empty, or "/" followed by segments separated by "/". A
 * slash that closes an empty segment is reported as an empty segment, and a
 * final lone slash as a trailing slash. */
static const char *check_path(const char *path, size_t len)
{
    if (len == 0)
        return NULL;
    if (path[0] != '/')
        return "path must start with a slash";

    size_t segment_start = 1;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c != '/') {
            if (!is_path_char(c))
                return REASON_PATH_CHARS;
            continue;
        }

        size_t segment_len = i - segment_start;
        if (segment_len == 0)
            return "path cannot contain empty segments";
        if (is_dot_segment(path + segment_start, segment_len))
            return "path cannot contain dot segments";
        segment_start = i + 1;
    }

    size_t last_len = len - segment_start;
    if (last_len == 0)
        return "path cannot have a trailing slash";
    if (is_dot_segment(path + segment_start, last_len))
        return "path cannot contain dot segments";
    return NULL;
}

/* Checks a whole ID and returns the length of its trust domain in *td_len. */
static const char *check_id(const char *bytes, size_t len, size_t *td_len)
{
    if (len == 0)
        return "SPIFFE ID is empty";
    if (len > CC_SPIFFEID_MAX)
        return "SPIFFE ID is longer than 2048 bytes";
    if (memchr(bytes, '\0', len) != NULL)
        return "SPIFFE ID contains a NUL byte";
    if (len < SCHEME_PREFIX_LEN || memcmp(bytes, SCHEME_PREFIX, SCHEME_PREFIX_LEN) != 0)
        return "scheme is missing or invalid: a SPIFFE ID starts with \"spiffe://\" in lowercase";

    const char *td = bytes + SCHEME_PREFIX_LEN;
    size_t rest = len - SCHEME_PREFIX_LEN;
    const char *slash = memchr(td, '/', rest);
    *td_len = slash != NULL ? (size_t)(slash - td) : rest;

    const char *reason = check_trust_domain(td, *td_len);
    if (reason != NULL)
        return reason;
    return check_path(td + *td_len, rest - *td_len);
}

cc_status cc_spiffeid_parse(const char *bytes, size_t len, cc_spiffeid *out, cc_err *err)
{
    size_t td_len = 0;
    const char *reason = check_id(bytes, len, &td_len);

    memset(out, 0, sizeof(*out));
    if (reason != NULL) {
        char quoted[QUOTE_MAX * 4 + 4];
        quote_bytes(bytes, len, quoted, sizeof(quoted));
        return cc_err_set(err, CC_ERR_INVALID, "invalid SPIFFE ID \"%s\": %s", quoted, reason);
    }

    /* check_id bounded len by CC_SPIFFEID_MAX and td_len by the trust domain maximum. */
    memcpy(out->id, bytes, len);
    memcpy(out->trust_domain, bytes + SCHEME_PREFIX_LEN, td_len);
    memcpy(out->path, bytes + SCHEME_PREFIX_LEN + td_len, len - SCHEME_PREFIX_LEN - td_len);
    return CC_OK;
}

/* Checks the "spiffe://td" form: a full ID without a path. */
static const char *check_trust_domain_id(const char *bytes, size_t len, size_t *td_len)
{
    const char *reason = check_id(bytes, len, td_len);
    if (reason != NULL)
        return reason;
    if (SCHEME_PREFIX_LEN + *td_len != len)
        return "a trust domain name cannot have a path";
    return NULL;
}

cc_status cc_spiffeid_parse_trust_domain(const char *bytes, size_t len,
                                         char out[CC_SPIFFEID_TRUST_DOMAIN_MAX + 1], cc_err *err)
{
    const char *td = bytes;
    size_t td_len = len;
    const char *reason;

    /* Anything with a scheme separator is read as an ID, so that "Spiffe://td"
     * reports the scheme and not a character of the trust domain. */
    if (has_scheme_separator(bytes, len)) {
        reason = check_trust_domain_id(bytes, len, &td_len);
        td = bytes + SCHEME_PREFIX_LEN;
    } else if (memchr(bytes, '\0', len) != NULL) {
        reason = "trust domain contains a NUL byte";
    } else {
        reason = check_trust_domain(bytes, len);
    }

    memset(out, 0, CC_SPIFFEID_TRUST_DOMAIN_MAX + 1);
    if (reason != NULL) {
        char quoted[QUOTE_MAX * 4 + 4];
        quote_bytes(bytes, len, quoted, sizeof(quoted));
        return cc_err_set(err, CC_ERR_INVALID, "invalid trust domain \"%s\": %s", quoted, reason);
    }
    memcpy(out, td, td_len);
    return CC_OK;
}
