/* A small structured logger: one JSON object per line on stderr.
 *
 * Every line has "ts" (RFC 3339 UTC with milliseconds), "level" and "event";
 * callers add fields as a jansson object. Connection and decision ids go in the
 * fields "conn_id" and "decision_id". Lines from several threads never
 * interleave, because each line is written with a single write(2).
 *
 * Secrets must not be passed in: the logger writes fields as given. */
#ifndef CITADEL_LOG_H
#define CITADEL_LOG_H

#include <jansson.h>

typedef enum cc_log_level {
    CC_LOG_DEBUG = 0,
    CC_LOG_INFO,
    CC_LOG_WARN,
    CC_LOG_ERROR,
    CC_LOG_OFF
} cc_log_level;

/* Sets the lowest level that is written; the default is CC_LOG_INFO. */
void cc_log_set_level(cc_log_level level);
cc_log_level cc_log_get_level(void);

/* Parses "debug", "info", "warn", "error" or "off"; returns -1 for anything else. */
int cc_log_level_parse(const char *name);

/* Redirects output to fd (default 2). Tests use this to capture lines. */
void cc_log_set_fd(int fd);

/* Writes one line. Takes ownership of fields (may be NULL) and frees it. */
void cc_log_json(cc_log_level level, const char *event, json_t *fields);

/* Writes one line with a "message" field built from fmt. */
void cc_log_msg(cc_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
