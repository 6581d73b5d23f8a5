/* RFC 3339 parsing and formatting. The fields are read and range-checked
 * here, because strptime(3) has no directive for fractional seconds.
 * timegm(3) and gmtime_r(3) convert between fields and Unix seconds in UTC. */
#include "citadel/rfc3339.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool is_leap_year(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int64_t year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

/* Reads exactly count digits at *cursor and advances it; -1 when they are not digits. */
static int read_digits(const char **cursor, int count)
{
    int value = 0;
    for (int i = 0; i < count; i++) {
        char c = (*cursor)[i];
        if (!isdigit((unsigned char)c))
            return -1;
        value = value * 10 + (c - '0');
    }
    *cursor += count;
    return value;
}

static bool expect(const char **cursor, const char *choices)
{
    if (**cursor == '\0' || strchr(choices, **cursor) == NULL)
        return false;
    (*cursor)++;
    return true;
}

/* Reads the zone ("Z" or "+HH:MM" / "-HH:MM") into *offset seconds east of UTC. */
static bool read_zone(const char **cursor, int *offset)
{
    if (expect(cursor, "Zz")) {
        *offset = 0;
        return true;
    }
    char sign = **cursor;
    if (!expect(cursor, "+-"))
        return false;
    int hours = read_digits(cursor, 2);
    if (hours < 0 || hours > 23 || !expect(cursor, ":"))
        return false;
    int minutes = read_digits(cursor, 2);
    if (minutes < 0 || minutes > 59)
        return false;
    *offset = (sign == '-' ? -1 : 1) * (hours * 3600 + minutes * 60);
    return true;
}

cc_status cc_rfc3339_parse(const char *text, int64_t *out, cc_err *err)
{
    const char *cursor = text != NULL ? text : "";
    int year = read_digits(&cursor, 4);
    bool ok = year >= 0 && expect(&cursor, "-");
    int month = ok ? read_digits(&cursor, 2) : -1;
    ok = ok && month >= 1 && month <= 12 && expect(&cursor, "-");
    int day = ok ? read_digits(&cursor, 2) : -1;
    ok = ok && day >= 1 && day <= days_in_month(year, month) && expect(&cursor, "Tt ");
    int hour = ok ? read_digits(&cursor, 2) : -1;
    ok = ok && hour >= 0 && hour <= 23 && expect(&cursor, ":");
    int minute = ok ? read_digits(&cursor, 2) : -1;
    ok = ok && minute >= 0 && minute <= 59 && expect(&cursor, ":");
    int second = ok ? read_digits(&cursor, 2) : -1;
    ok = ok && second >= 0 && second <= 60;

    if (ok && *cursor == '.') {
        cursor++;
        ok = isdigit((unsigned char)*cursor);
        while (isdigit((unsigned char)*cursor))
            cursor++;
    }
    int offset = 0;
    ok = ok && read_zone(&cursor, &offset) && *cursor == '\0';
    if (!ok)
        return cc_err_set(err, CC_ERR_INVALID,
                          "time \"%s\" is not an RFC 3339 timestamp such as "
                          "2026-01-31T12:00:00Z",
                          text != NULL ? text : "");

    struct tm fields = {.tm_year = year - 1900,
                        .tm_mon = month - 1,
                        .tm_mday = day,
                        .tm_hour = hour,
                        .tm_min = minute,
                        .tm_sec = second};
    *out = (int64_t)timegm(&fields) - offset;
    return CC_OK;
}

void cc_rfc3339_format(int64_t seconds, char out[CC_RFC3339_SIZE])
{
    time_t t = (time_t)seconds;
    struct tm fields;
    if (gmtime_r(&t, &fields) == NULL || fields.tm_year < -1900 || fields.tm_year > 9999 - 1900 ||
        strftime(out, CC_RFC3339_SIZE, "%Y-%m-%dT%H:%M:%SZ", &fields) == 0)
        snprintf(out, CC_RFC3339_SIZE, "invalid-time");
}
