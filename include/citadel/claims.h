/* Typed claims of the three JWT kinds that an auth callout exchanges with
 * nats-server 2.10: the authorization request (server to service), the
 * authorization response (service to server) and the user JWT inside it.
 *
 * Decoders return structs whose strings are borrowed from the decoded JWT's
 * claims object (cc_jwt in natsjwt.h), so they live until the matching _free
 * call. An absent string field decodes to "" (never NULL) and an absent
 * number to 0, so callers need not check for NULL.
 *
 * Builders take caller-owned input structs and return a signed token. The
 * user JWT builder always writes both "pub" and "sub" permissions, and writes
 * a side without allow entries as deny [">"], because nats-server treats a
 * missing permission as "allow everything". */
#ifndef CITADEL_CLAIMS_H
#define CITADEL_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "citadel/error.h"
#include "citadel/natsjwt.h"
#include "citadel/nkey.h"

/* The fixed audience of every authorization request. */
#define CC_AUTH_REQUEST_AUDIENCE "nats-authorization-request"

/* The value of "subs", "data" and "payload" that means "no limit". */
#define CC_USER_NO_LIMIT (-1)

/* A list of strings. In decoded structs items is owned by the struct and the
 * strings are borrowed from the JWT; in builder input both are the caller's. */
typedef struct cc_claims_strings {
    const char **items;
    size_t count;
} cc_claims_strings;

/* ---- authorization request ------------------------------------------- */

/* nats.server_id: the server that sends the request. */
typedef struct cc_auth_server_id {
    const char *name;
    const char *host;
    const char *id; /* the server's public nkey (N...), equal to iss */
    const char *version;
    const char *cluster;
    cc_claims_strings tags;
    const char *xkey; /* the server's curve key; set only when the request is encrypted */
} cc_auth_server_id;

/* nats.client_info: the connecting client as the server reports it. */
typedef struct cc_auth_client_info {
    const char *host; /* peer IP address without port */
    uint64_t id;      /* connection id */
    const char *user; /* the raw auth user: nkey, username, JWT user key or token */
    const char *name;
    cc_claims_strings tags;
    const char *name_tag;
    const char *kind; /* "Client" or "Leafnode" */
    const char *type; /* "nats", "websocket", "mqtt"; "" for leafnodes */
    const char *mqtt_id;
    const char *nonce; /* the INFO nonce; set only when connect_opts.sig is set */
} cc_auth_client_info;

/* nats.connect_opts: the fields of the client's CONNECT. They contain
 * secrets (pass, auth_token, jwt); never log them. */
typedef struct cc_auth_connect_opts {
    const char *jwt;
    const char *nkey;
    const char *sig; /* nonce signature, base64url or standard base64 */
    const char *auth_token;
    const char *user;
    const char *pass;
    const char *name;
    const char *lang;
    const char *version;
    int64_t protocol;
} cc_auth_connect_opts;

/* nats.client_tls: present for every TLS connection. Certificates are PEM
 * strings; each verified chain runs leaf first and ends with the trusted root. */
typedef struct cc_auth_client_tls {
    bool present;
    const char *version; /* "1.0" .. "1.3" */
    const char *cipher;  /* Go cipher suite name */
    cc_claims_strings certs;
    cc_claims_strings *verified_chains; /* array of verified_chain_count lists */
    size_t verified_chain_count;
} cc_auth_client_tls;

typedef struct cc_auth_request {
    cc_jwt jwt; /* header, claims and base claims; jwt.sub is the callout account */
    cc_auth_server_id server_id;
    const char *user_nkey; /* fresh user public key (U...) the response must name */
    cc_auth_client_info client_info;
    cc_auth_connect_opts connect_opts;
    cc_auth_client_tls client_tls;
    const char *request_nonce;
} cc_auth_request;

/* Decodes and validates an authorization request JWT (plain text; an
 * encrypted request must be opened first). Checks, besides cc_jwt_decode()
 * with a server issuer: nats.type is "authorization_request", aud is
 * CC_AUTH_REQUEST_AUDIENCE, iss equals nats.server_id.id, and user_nkey is a
 * valid user public key. now is Unix seconds. On failure out is left zeroed;
 * on success the caller calls cc_auth_request_free(out). */
cc_status cc_auth_request_decode(const char *token, size_t len, int64_t now, cc_auth_request *out,
                                 cc_err *err);

/* Frees what req owns and zeroes it (req itself belongs to the caller). */
void cc_auth_request_free(cc_auth_request *req);

/* ---- authorization response ------------------------------------------ */

/* The fields of an authorization response. For cc_auth_response_encode()
 * the caller fills them (borrowed) and leaves jwt zeroed; exactly one of
 * user_jwt and error must be non-empty. cc_auth_response_decode() fills all
 * of them. */
typedef struct cc_auth_response {
    const char *user_nkey;      /* sub: the request's user_nkey */
    const char *server_id;      /* aud: the request's server_id.id */
    const char *user_jwt;       /* nats.jwt: the signed user JWT, or NULL/"" */
    const char *error;          /* nats.error: the reason for a denial, or NULL/"" */
    const char *issuer_account; /* nats.issuer_account, or NULL/"" */
    int64_t exp;                /* 0 for none */
    cc_jwt jwt;                 /* set by decode only */
} cc_auth_response;

/* Builds and signs an authorization response with signer (an account key).
 * iat is Unix seconds. *out is a malloc'd token that the caller frees. */
cc_status cc_auth_response_encode(const cc_auth_response *resp, const cc_nkey *signer, int64_t iat,
                                  char **out, cc_err *err);

/* Decodes and validates a response the way nats-server does: account issuer,
 * signature, times, type "authorization_response", sub a user key, aud a
 * server key, exactly one of jwt and error, issuer_account (if set) an
 * account key. The caller calls cc_auth_response_free(out) on success. */
cc_status cc_auth_response_decode(const char *token, size_t len, int64_t now, cc_auth_response *out,
                                  cc_err *err);

void cc_auth_response_free(cc_auth_response *resp);

/* ---- user claims ----------------------------------------------------- */

typedef struct cc_user_permission {
    cc_claims_strings allow;
    cc_claims_strings deny;
} cc_user_permission;

typedef struct cc_user_time_range {
    const char *start; /* "HH:MM:SS" */
    const char *end;   /* "HH:MM:SS"; earlier than start wraps past midnight */
} cc_user_time_range;

/* The claims of a user JWT. Call cc_user_claims_init() before filling it,
 * so that limits start at CC_USER_NO_LIMIT. */
typedef struct cc_user_claims {
    const char *subject;  /* sub: the user's public nkey (request user_nkey) */
    const char *audience; /* aud: target account name in config mode */
    const char *name;     /* replaces the connection's user name; optional */
    int64_t exp;          /* Unix seconds; 0 for none */
    int64_t nbf;          /* Unix seconds; 0 for none */

    cc_user_permission pub;
    cc_user_permission sub; /* entries may have the queue form "subject queue" */
    bool has_resp;          /* write "resp" (allow replies to received requests) */
    int64_t resp_max;       /* messages per request; 0 lets the server use 1 */
    int64_t resp_ttl_ns;    /* nanoseconds; 0 lets the server use 2 minutes */

    cc_claims_strings src; /* CIDR ranges such as "10.0.0.0/8" */
    cc_user_time_range *times;
    size_t time_count;
    const char *times_location; /* IANA zone name, or NULL */
    int64_t subs;               /* CC_USER_NO_LIMIT or a maximum */
    int64_t data;               /* bytes */
    int64_t payload;            /* bytes */
    bool bearer_token;
    cc_claims_strings allowed_connection_types; /* STANDARD, WEBSOCKET, LEAFNODE,
                                                   LEAFNODE_WS, MQTT, MQTT_WS */
    cc_claims_strings tags;
    const char *issuer_account; /* required when signed by a signing key; optional */

    cc_jwt jwt; /* set by decode only; jwt.token != NULL marks a decoded struct */
} cc_user_claims;

/* Zeroes claims and sets subs, data and payload to CC_USER_NO_LIMIT. */
void cc_user_claims_init(cc_user_claims *claims);

/* Validates claims and builds and signs a user JWT with signer (an account
 * key). Rejects a subject that is not a user public key and an empty
 * audience. Rejects invalid permission subjects: empty, containing whitespace,
 * with a leading, trailing or doubled dot, or a queue form outside sub.
 * Rejects invalid times and CIDRs, unknown connection types and an
 * issuer_account that is not an account key.
 * iat is Unix seconds. *out is a malloc'd token that the caller frees. */
cc_status cc_user_claims_encode(const cc_user_claims *claims, const cc_nkey *signer, int64_t iat,
                                char **out, cc_err *err);

/* Decodes and validates a user JWT: account issuer, signature, times, type
 * "user", subject a user key. Absent limits decode as 0, as in nats-io/jwt,
 * not as CC_USER_NO_LIMIT. The caller calls
 * cc_user_claims_free(out) on success. */
cc_status cc_user_claims_decode(const char *token, size_t len, int64_t now, cc_user_claims *out,
                                cc_err *err);

/* Frees what decode allocated and zeroes claims. On a struct that the caller
 * filled for encode (jwt.token is NULL) it does nothing. */
void cc_user_claims_free(cc_user_claims *claims);

/* Checks one subject for a permission list. allow_queue permits the form
 * "subject queue" (sub permissions only). */
cc_status cc_claims_validate_subject(const char *subject, bool allow_queue, cc_err *err);

#endif
