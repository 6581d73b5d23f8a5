/* Status codes and error messages shared by every module.
 *
 * Every fallible function returns a cc_status and, when the caller passes a
 * non-NULL cc_err, writes one sentence into it that names the value that failed
 * and, where there is one, the fix. Callers that only need the code pass NULL.
 * Messages never contain secrets: modules that handle seeds, keys or tokens
 * describe them ("the seed in FILE") instead of quoting them. */
#ifndef CITADEL_ERROR_H
#define CITADEL_ERROR_H

#include <stddef.h>

typedef enum cc_status {
    CC_OK = 0,
    CC_ERR_INVALID,   /* malformed or out-of-range input */
    CC_ERR_NOMEM,     /* allocation failed */
    CC_ERR_IO,        /* file or network I/O failed */
    CC_ERR_CRYPTO,    /* signature, MAC or certificate check failed */
    CC_ERR_EXPIRED,   /* credential is expired or not yet valid */
    CC_ERR_PERMISSION,/* unsafe file mode, or a policy denies the request */
    CC_ERR_NOT_FOUND, /* no such file, key, bundle or rule */
    CC_ERR_INTERNAL   /* a library call failed in a way input cannot explain */
} cc_status;

#define CC_ERR_MESSAGE_MAX 512

typedef struct cc_err {
    cc_status status;
    char message[CC_ERR_MESSAGE_MAX];
} cc_err;

/* Records status and a printf-style message in err (when err is not NULL) and
 * returns status, so error paths read `return cc_err_set(err, ...);`. */
cc_status cc_err_set(cc_err *err, cc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the message already in err. */
void cc_err_prefix(cc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void cc_err_clear(cc_err *err);

/* Returns a short lowercase name for status, such as "invalid" or "expired". */
const char *cc_status_name(cc_status status);

#endif
