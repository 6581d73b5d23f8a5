/* RFC 3339 timestamps for command-line options and JSON output. */
#ifndef CITADEL_RFC3339_H
#define CITADEL_RFC3339_H

#include <stdint.h>

#include "citadel/error.h"

/* Buffer size for cc_rfc3339_format(), NUL included. */
#define CC_RFC3339_SIZE 32

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into Unix seconds.
 * "t" and "z" may be lowercase. A fraction is dropped (rounded toward the
 * past); a leap second (:60) counts as the first second of the next minute.
 * Field ranges are checked, including the days of each month. */
cc_status cc_rfc3339_parse(const char *text, int64_t *out, cc_err *err);

/* Writes seconds as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into out. Years outside
 * 0000..9999 are written as "invalid-time". */
void cc_rfc3339_format(int64_t seconds, char out[CC_RFC3339_SIZE]);

#endif
