#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "citadel/error.h"
#include "citadel/log.h"

/* Runs one log call with output sent to a pipe and returns the parsed line. */
static json_t *capture_line(cc_log_level level, const char *event, json_t *fields)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cc_log_set_fd(fds[1]);
    cc_log_json(level, event, fields);
    cc_log_set_fd(2);
    close(fds[1]);

    char buf[4096] = {0};
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    if (n <= 0)
        return NULL;
    cr_assert_eq(buf[n - 1], '\n', "a log line ends with a newline");
    return json_loads(buf, 0, NULL);
}

Test(log, writes_one_json_line)
{
    json_t *line = capture_line(CC_LOG_WARN, "decision",
                                json_pack("{s:s, s:I}", "decision_id", "d1", "conn_id", (json_int_t)7));
    cr_assert_not_null(line);
    cr_assert_str_eq(json_string_value(json_object_get(line, "level")), "warn");
    cr_assert_str_eq(json_string_value(json_object_get(line, "event")), "decision");
    cr_assert_str_eq(json_string_value(json_object_get(line, "decision_id")), "d1");
    cr_assert_eq(json_integer_value(json_object_get(line, "conn_id")), 7);
    cr_assert_not_null(json_object_get(line, "ts"));
    json_decref(line);
}

Test(log, drops_lines_below_level)
{
    cc_log_set_level(CC_LOG_WARN);
    json_t *line = capture_line(CC_LOG_INFO, "ignored", NULL);
    cc_log_set_level(CC_LOG_INFO);
    cr_assert_null(line);
}

Test(log, parses_level_names)
{
    cr_assert_eq(cc_log_level_parse("debug"), CC_LOG_DEBUG);
    cr_assert_eq(cc_log_level_parse("error"), CC_LOG_ERROR);
    cr_assert_eq(cc_log_level_parse("verbose"), -1);
    cr_assert_eq(cc_log_level_parse(NULL), -1);
}

Test(error, set_and_prefix)
{
    cc_err err;
    cr_assert_eq(cc_err_set(&err, CC_ERR_INVALID, "bad value %d", 3), CC_ERR_INVALID);
    cc_err_prefix(&err, "config %s", "x.json");
    cr_assert_str_eq(err.message, "config x.json: bad value 3");
    cr_assert_eq(err.status, CC_ERR_INVALID);
    cr_assert_eq(cc_err_set(NULL, CC_ERR_IO, "ignored"), CC_ERR_IO);
}
