/* The auth callout service: NATS connection, worker pool, reloads, shutdown.
 *
 * The service queue-subscribes to $SYS.REQ.USER.AUTH. The nats.c callback only
 * moves each request into a work queue. A pool of worker threads takes
 * requests from it, runs the decision pipeline, publishes the response on the
 * request's reply subject and hands the audit event to the audit publisher.
 * Every request with a reply subject gets a response. A deny carries
 * nats.error, or is an empty payload when the request could not be decoded.
 *
 * Policies and trust bundles are held as immutable sets behind pointers that a
 * reload swaps; a request keeps references to the sets it started with. */
#ifndef CITADEL_SERVICE_H
#define CITADEL_SERVICE_H

#include "citadel/config.h"
#include "citadel/error.h"

#define CC_SERVICE_AUTH_SUBJECT "$SYS.REQ.USER.AUTH"

typedef struct cc_service cc_service;

/* Loads the keys, policies and bundles the config names, connects to NATS
 * (retrying in the background when no server is reachable yet), starts the
 * audit publisher and the workers, and subscribes. Takes ownership of config,
 * also on failure. On success *out is owned by the caller, who ends it with
 * cc_service_stop(). A key, policy or bundle file that is missing or invalid
 * gives CC_ERR_INVALID; invalid NATS credentials or TLS files do too. */
cc_status cc_service_start(cc_config *config, cc_service **out, cc_err *err);

/* Reloads the policy directory, then the trust bundles. When the policies
 * fail to load nothing changes. When the bundles fail, the old bundles and
 * the old policies stay in force. err names the file that was wrong, and the
 * outcome is logged ("reload_ok" or "reload_failed"). Thread-safe.
 * NOTE: bundles swap just before policies, so a request that starts between
 * the two swaps uses new bundles with old policies. */
cc_status cc_service_reload(cc_service *service, cc_err *err);

/* Stops taking requests (drains the subscription), finishes the requests
 * already taken, flushes the audit queue, closes the connection and frees the
 * service. Returns CC_OK unless audit events were left unsent. */
cc_status cc_service_stop(cc_service *service);

/* Initializes OpenSSL without its exit handler (OPENSSL_INIT_NO_ATEXIT). The
 * serve command calls it before anything else uses OpenSSL, because with the
 * handler the process crashes at exit once it has used TLS for NATS. After
 * nats_Close(), the exit handler of nats.c 3.4.1 frees OpenSSL's list of
 * compression methods (sk_SSL_COMP_free). OpenSSL 3.0's exit handler
 * (OPENSSL_cleanup) was registered earlier, because the bundles load before
 * the connection, so it runs later and frees the freed list again (SIGSEGV or
 * a glibc abort). Without the handler the operating system reclaims OpenSSL's
 * memory at exit.
 * NOTE: OpenSSL takes the option only at its first initialization, so the call
 * has no effect after any other OpenSSL use in the process. */
cc_status cc_service_init_openssl(cc_err *err);

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread. Call it before
 * cc_service_start(), so that every thread the service creates inherits the
 * mask and the signals reach only cc_service_wait_signals(). */
void cc_service_block_signals(void);

/* Waits for signals: SIGHUP reloads, SIGTERM or SIGINT returns. */
void cc_service_wait_signals(cc_service *service);

#endif
