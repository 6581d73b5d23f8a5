/* JSON-lines logger. See log.h for the line format.
 *
 * The level is an atomic so a SIGHUP reload can change it while workers log. */
#include "citadel/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = CC_LOG_INFO;
static atomic_int log_fd = 2;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void cc_log_set_level(cc_log_level level) { atomic_store(&log_level, (int)level); }

cc_log_level cc_log_get_level(void) { return (cc_log_level)atomic_load(&log_level); }

void cc_log_set_fd(int fd) { atomic_store(&log_fd, fd); }

int cc_log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i <= CC_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return i;
    }
    if (strcmp(name, "warning") == 0)
        return CC_LOG_WARN;
    return -1;
}

static void format_timestamp(char *out, size_t size)
{
    struct timespec now;
    struct tm utc;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + n, size - n, ".%03ldZ", now.tv_nsec / 1000000);
}

static void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* Nowhere left to report a failing log sink. */
        }
        data += n;
        len -= (size_t)n;
    }
}

void cc_log_json(cc_log_level level, const char *event, json_t *fields)
{
    if (level < cc_log_get_level() || level >= CC_LOG_OFF) {
        json_decref(fields);
        return;
    }

    char ts[40];
    format_timestamp(ts, sizeof(ts));

    /* ts, level and event come first so the lines read well in a terminal. */
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "event", json_string(event));
    if (fields != NULL) {
        json_object_update_missing(line, fields);
        json_decref(fields);
    }

    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text == NULL)
        return;

    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    if (buf != NULL) {
        memcpy(buf, text, len);
        buf[len] = '\n';
        write_all(atomic_load(&log_fd), buf, len + 1);
        free(buf);
    }
    free(text);
}

void cc_log_msg(cc_log_level level, const char *event, const char *fmt, ...)
{
    if (level < cc_log_get_level())
        return;

    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    cc_log_json(level, event, json_pack("{s:s}", "message", message));
}
