#include <criterion/criterion.h>

#include <string.h>

#include "citadel/rfc3339.h"

static int64_t parse_ok(const char *text)
{
    int64_t value = 0;
    cc_err err = {0};
    cr_assert_eq(cc_rfc3339_parse(text, &value, &err), CC_OK, "%s: %s", text, err.message);
    return value;
}

Test(rfc3339, parses_utc_and_offsets)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse_ok("2027-01-15T08:00:00Z"), 1800000000);
    cr_assert_eq(parse_ok("2027-01-15t08:00:00z"), 1800000000);
    cr_assert_eq(parse_ok("2027-01-15 08:00:00Z"), 1800000000);
    cr_assert_eq(parse_ok("2027-01-15T09:30:00+01:30"), 1800000000);
    cr_assert_eq(parse_ok("2027-01-15T03:00:00-05:00"), 1800000000);
    cr_assert_eq(parse_ok("2027-01-15T08:00:00.999Z"), 1800000000, "fraction dropped");
    cr_assert_eq(parse_ok("2024-02-29T00:00:00Z"), 1709164800, "leap day");
    cr_assert_eq(parse_ok("2016-12-31T23:59:60Z"), 1483228800, "leap second");
}

Test(rfc3339, rejects_malformed)
{
    static const char *const bad[] = {
        "",
        "2027-01-15",
        "2027-01-15T08:00:00",
        "2027-01-15T08:00Z",
        "2027-13-01T00:00:00Z",
        "2027-02-29T00:00:00Z",
        "2027-04-31T00:00:00Z",
        "2027-01-15T24:00:00Z",
        "2027-01-15T08:60:00Z",
        "2027-01-15T08:00:61Z",
        "2027-01-15T08:00:00.Z",
        "2027-01-15T08:00:00+0100",
        "2027-01-15T08:00:00Z trailing",
        "27-01-15T08:00:00Z",
        "yesterday",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t value = 0;
        cc_err err = {0};
        cr_assert_eq(cc_rfc3339_parse(bad[i], &value, &err), CC_ERR_INVALID, "%s", bad[i]);
        cr_assert(strstr(err.message, "RFC 3339") != NULL, "%s", err.message);
    }
    cr_assert_eq(cc_rfc3339_parse(NULL, NULL, NULL), CC_ERR_INVALID);
}

Test(rfc3339, formats_utc)
{
    char text[CC_RFC3339_SIZE];
    cc_rfc3339_format(1800000000, text);
    cr_assert_str_eq(text, "2027-01-15T08:00:00Z");
    cc_rfc3339_format(0, text);
    cr_assert_str_eq(text, "1970-01-01T00:00:00Z");
    cc_rfc3339_format(-1, text);
    cr_assert_str_eq(text, "1969-12-31T23:59:59Z");
    cc_rfc3339_format(INT64_MAX, text);
    cr_assert_str_eq(text, "invalid-time");
}
