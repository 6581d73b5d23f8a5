/* The authorization decision for one auth callout request, free of I/O.
 *
 * cc_decision_evaluate() takes the request payload that nats-server published
 * on $SYS.REQ.USER.AUTH and the Nats-Server-Xkey header, if any. It returns
 * everything the service needs to act: allowed or denied, the reason, the
 * response payload to publish on the reply subject, and the audit event.
 *
 * It opens no socket or file and reads no clock: the verification time is
 * ctx->now. Randomness is used only for the decision id and the xkey nonce.
 * The context is read-only apart from the optional xkey cache, which locks
 * itself, so one context may serve several threads at once.
 *
 * The pipeline, in order, each step ending in a deny on failure:
 *   1. xkey: with a service xkey configured, the payload must be sealed and the
 *      header present; it is opened with the header key as the sender. Without
 *      one, a payload that is not a plain JWT ("eyJ...") is denied.
 *   2. The request JWT: aud "nats-authorization-request", iss a server key
 *      equal to nats.server_id.id, a valid signature, not expired; with xkey,
 *      server_id.xkey equal to the header.
 *   3. The client certificate chain: client_tls.verified_chains[0], else
 *      client_tls.certs.
 *   4. The X509-SVID, verified against the bundle of its own trust domain.
 *   5. The JWT-SVID in connect_opts.auth_token (or pass), when JWT-SVID
 *      audiences are configured; with both credentials the SPIFFE IDs must match.
 *   6. The policy rule for the SPIFFE ID (exact match), its connection types
 *      and source CIDRs, which nats-server 2.10 does not enforce for callout users.
 *   7. The user JWT and the signed authorization response.
 *
 * A deny after the request decoded gets a signed response that carries
 * nats.error. A request that could not be decoded gets an empty response
 * payload, which nats-server also reads as a deny. */
#ifndef CITADEL_DECISION_H
#define CITADEL_DECISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "citadel/bundle.h"
#include "citadel/error.h"
#include "citadel/nkey.h"
#include "citadel/xkey.h"

typedef struct cc_policy_set cc_policy_set;

/* Length of a decision id: a ULID (48-bit millisecond time from ctx->now and
 * 80 random bits in Crockford base32). */
#define CC_DECISION_ID_LEN 26

/* Why a decision ended as it did. The audit event carries the name returned
 * by cc_decision_code_name() in the field "code". */
typedef enum cc_decision_code {
    CC_DECISION_ALLOWED = 0,
    CC_DECISION_ENCRYPTION_REQUIRED,   /* xkey configured, request not sealed */
    CC_DECISION_ENCRYPTION_UNEXPECTED, /* sealed request, no xkey configured */
    CC_DECISION_DECRYPT_FAILED,        /* sealed request did not open */
    CC_DECISION_BAD_REQUEST,           /* request JWT malformed, wrong aud/iss/type */
    CC_DECISION_BAD_REQUEST_SIGNATURE, /* request JWT signature invalid */
    CC_DECISION_REQUEST_EXPIRED,       /* request JWT exp in the past */
    CC_DECISION_XKEY_MISMATCH,         /* server_id.xkey differs from the header */
    CC_DECISION_NO_CREDENTIAL,         /* no client certificate and no JWT-SVID */
    CC_DECISION_BAD_CERTIFICATE,       /* chain PEM could not be parsed */
    CC_DECISION_X509SVID_INVALID,      /* X509-SVID verification failed */
    CC_DECISION_JWTSVID_DISABLED,      /* token sent, no JWT-SVID audiences configured */
    CC_DECISION_JWTSVID_INVALID,       /* JWT-SVID verification failed */
    CC_DECISION_SPIFFE_ID_MISMATCH,    /* X509-SVID and JWT-SVID name different IDs */
    CC_DECISION_NO_POLICY,             /* no rule for the SPIFFE ID */
    CC_DECISION_CONNECTION_TYPE,       /* connection type not in the rule */
    CC_DECISION_SOURCE_ADDRESS,        /* client host outside the rule's CIDRs */
    CC_DECISION_INTERNAL               /* out of memory or a library failure */
} cc_decision_code;

/* Returns a stable snake_case name, such as "no_policy". */
const char *cc_decision_code_name(cc_decision_code code);

/* What the decision is checked against. Every pointer is borrowed and must
 * stay valid during cc_decision_evaluate(). */
typedef struct cc_decision_context {
    const cc_bundle_set *bundles;  /* trust bundles, X.509 and JWT authorities */
    const cc_policy_set *policies; /* rules by SPIFFE ID */
    const cc_nkey *issuer;         /* account keypair of auth_callout.issuer */
    const cc_nkey *xkey;           /* curve keypair of auth_callout.xkey, or NULL */
    /* Optional, with xkey only: a cache made from the same keypair with
     * cc_xkey_cache_new(). Opening and sealing then reuse the shared key of
     * a server xkey seen before instead of computing X25519 twice per request. */
    cc_xkey_cache *xkey_cache;
    const char *default_account;   /* account for rules without one, e.g. "APP" */
    int64_t max_ttl_seconds;       /* cap on user JWT lifetime, no cap when <= 0 */

    /* JWT-SVID acceptance: a token is verified only when audience_count > 0. */
    const char *const *jwt_audiences;
    size_t jwt_audience_count;
    int64_t jwt_leeway_seconds; /* clock skew allowed on the JWT-SVID exp */

    int64_t now; /* verification time, Unix seconds */
} cc_decision_context;

/* One message from $SYS.REQ.USER.AUTH. Both fields are borrowed. */
typedef struct cc_decision_request {
    const uint8_t *payload; /* binary when sealed */
    size_t payload_len;
    const char *server_xkey; /* value of the Nats-Server-Xkey header, or NULL */
} cc_decision_request;

/* The outcome. Strings are malloc'd and owned by the struct (NULL when the
 * step that fills them was not reached); cc_decision_clear() frees them. */
typedef struct cc_decision {
    bool allowed;
    cc_decision_code code;
    char *reason; /* deny reason, or "allowed by rule NAME" */
    char id[CC_DECISION_ID_LEN + 1];

    char *spiffe_id;
    char *trust_domain;
    char *rule;    /* name of the matched policy rule */
    char *account; /* account the user JWT places the client in */
    char *user_nkey;
    char *server_id;
    char *server_name;

    char *client_host;
    uint64_t client_id; /* nats-server connection id (client_info.id) */
    char *client_name;
    char *client_kind; /* "Client" or "Leafnode" */
    char *client_type; /* "nats", "websocket", "mqtt", or NULL */

    char *svid_serial;      /* leaf serial number, lowercase hex */
    char *svid_fingerprint; /* SHA-256 of the leaf DER, lowercase hex */
    int64_t svid_not_after; /* earliest notAfter in the chain, 0 if none */
    bool jwt_svid_used;
    int64_t jwt_svid_exp; /* 0 when no JWT-SVID was used */
    int64_t user_jwt_exp; /* 0 when no user JWT was issued */
    bool encrypted;       /* the request was sealed with xkey */

    /* Payload to publish on the reply subject: the response JWT, sealed to the
     * server's xkey when the request was sealed. Empty (len 0) when the request
     * could not be decoded, which nats-server reads as a deny. */
    uint8_t *response;
    size_t response_len;

    /* Audit event (see cc_decision_evaluate), owned by the struct until
     * cc_decision_take_audit() takes it. */
    json_t *audit;
} cc_decision;

/* Decides on req and fills *out (which need not be initialised).
 *
 * Returns CC_OK when *out contains a decision, allowed or denied. Another status
 * means an internal failure (out of memory, a library call failed). *out is
 * then a deny with code CC_DECISION_INTERNAL and err describes the failure. Its
 * response is a signed error when the request had decoded and the signing
 * worked, else empty, so the caller can still publish and audit it. The caller
 * calls cc_decision_clear(out) in both cases.
 *
 * The audit event is a JSON object with: "ts" (RFC 3339 UTC of ctx->now),
 * "decision_id", "decision" ("allow" or "deny"), "code", "reason",
 * "spiffe_id", "trust_domain", "rule", "account", "user_nkey",
 * "server" {"id", "name"}, "client" {"host", "id", "name", "kind", "type"},
 * "svid" {"serial", "fingerprint_sha256", "not_after"}, "jwt_svid" {"exp"},
 * "user_jwt_exp" and "encrypted"; unknown values are omitted. It never contains a secret:
 * no password, token, JWT, signature or seed from the request or context. */
cc_status cc_decision_evaluate(const cc_decision_context *ctx, const cc_decision_request *req,
                               cc_decision *out, cc_err *err);

/* Returns the audit event and passes its ownership to the caller, who must
 * json_decref() it. Later calls return NULL. */
json_t *cc_decision_take_audit(cc_decision *decision);

/* Frees everything *decision owns and zeroes it. Safe on a zeroed struct. */
void cc_decision_clear(cc_decision *decision);

#endif
