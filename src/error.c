/* Status names and the message buffer behind cc_err. */
#include "citadel/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

cc_status cc_err_set(cc_err *err, cc_status status, const char *fmt, ...)
{
    if (err == NULL)
        return status;

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    err->status = status;
    return status;
}

void cc_err_prefix(cc_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;

    char prefix[CC_ERR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);

    /* Room for both parts; the result is cut to the message size. */
    char joined[2 * CC_ERR_MESSAGE_MAX + 2];
    snprintf(joined, sizeof(joined), "%s: %s", prefix, err->message);
    joined[CC_ERR_MESSAGE_MAX - 1] = '\0';
    memcpy(err->message, joined, CC_ERR_MESSAGE_MAX);
}

void cc_err_clear(cc_err *err)
{
    if (err == NULL)
        return;
    err->status = CC_OK;
    err->message[0] = '\0';
}

const char *cc_status_name(cc_status status)
{
    switch (status) {
    case CC_OK: return "ok";
    case CC_ERR_INVALID: return "invalid";
    case CC_ERR_NOMEM: return "out of memory";
    case CC_ERR_IO: return "io";
    case CC_ERR_CRYPTO: return "crypto";
    case CC_ERR_EXPIRED: return "expired";
    case CC_ERR_PERMISSION: return "permission";
    case CC_ERR_NOT_FOUND: return "not found";
    case CC_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}
