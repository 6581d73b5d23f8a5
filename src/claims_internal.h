/* Helpers shared by claims.c (request and response) and claims_user.c. Not
 * part of the public API. */
#ifndef CITADEL_CLAIMS_INTERNAL_H
#define CITADEL_CLAIMS_INTERNAL_H

#include <jansson.h>

#include "citadel/claims.h"

/* Reads the optional string obj[key] into *out: "" when obj is NULL or the key
 * is absent or null, borrowed from obj otherwise. where names obj in errors. */
cc_status cc_claims_read_string(const json_t *obj, const char *where, const char *key,
                                const char **out, cc_err *err);

/* Reads the optional integer obj[key] into *out (0 when absent or null). */
cc_status cc_claims_read_int(const json_t *obj, const char *where, const char *key, int64_t *out,
                             cc_err *err);

/* Reads the optional array of strings obj[key]. out->items is malloc'd (the
 * strings are borrowed from obj); free it with cc_claims_strings_free(). */
cc_status cc_claims_read_strings(const json_t *obj, const char *where, const char *key,
                                 cc_claims_strings *out, cc_err *err);

/* Returns obj[key] when it is an object, NULL when absent or null, and sets
 * *status to CC_ERR_INVALID (with err) when it is something else. */
json_t *cc_claims_read_object(const json_t *obj, const char *where, const char *key,
                              cc_status *status, cc_err *err);

void cc_claims_strings_free(cc_claims_strings *list);

/* Returns a new JSON array of the strings in list, or NULL when out of memory. */
json_t *cc_claims_strings_to_json(const cc_claims_strings *list);

/* Checks that text is a public nkey of kind; what names the value in errors. */
cc_status cc_claims_require_key(const char *text, cc_nkey_kind kind, const char *what, cc_err *err);

/* Checks that nats.type of a decoded JWT is type. */
cc_status cc_claims_require_type(const cc_jwt *jwt, const char *type, cc_err *err);

static inline bool cc_claims_is_set(const char *text)
{
    return text != NULL && text[0] != '\0';
}

#endif
