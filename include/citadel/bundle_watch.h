/* A watcher that keeps a cc_bundle_set in step with the configured files.
 *
 * A background thread polls the files of every source (stat: device, inode,
 * size, mtime, ctime). When any of them changed, it waits a settle delay and
 * requires the stat to be unchanged across that delay and across the read.
 * Then it rebuilds the whole set from all sources and publishes it by
 * swapping a refcounted pointer under a mutex. A file that changes during the
 * settle delay or the read is not used, and is read again on a later poll.
 * NOTE: a writer that pauses longer than the settle delay at a point where
 * the partial file still parses (a PEM file cut between two blocks) is not
 * detected. The set then lacks the missing part until the writer's next
 * write triggers a new load.
 *
 * When a rebuild fails (a parse error, a missing file, a trust domain
 * configured twice), the last good set stays in force and the reason is
 * logged at warn level with the event "bundle_reload_failed". The same
 * failure is logged once, not on every poll; it is retried when a file
 * changes again or on an explicit reload. */
#ifndef CITADEL_BUNDLE_WATCH_H
#define CITADEL_BUNDLE_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "citadel/bundle.h"
#include "citadel/bundle_load.h"
#include "citadel/error.h"

#define CC_BUNDLE_WATCH_POLL_MS_DEFAULT 1000
#define CC_BUNDLE_WATCH_SETTLE_MS_DEFAULT 200

typedef struct cc_bundle_watcher cc_bundle_watcher;

typedef struct cc_bundle_watch_options {
    int poll_ms;   /* interval between polls; 0 means the default */
    int settle_ms; /* wait before reading a changed file; 0 means the default */
} cc_bundle_watch_options;

/* Loads every source once (after the settle delay) and starts the polling
 * thread. The first load must succeed: without a good set there is nothing to
 * keep in force, so a failure is returned and no watcher is created. sources
 * is copied. options may be NULL. Caller stops the watcher with
 * cc_bundle_watcher_stop(). */
cc_status cc_bundle_watcher_start(const cc_bundle_source *sources, size_t count,
                                  const cc_bundle_watch_options *options, cc_bundle_watcher **out,
                                  cc_err *err);

/* Stops the thread and frees the watcher. Sets obtained with get stay valid
 * until their holders release them. NULL is ignored. */
void cc_bundle_watcher_stop(cc_bundle_watcher *watcher);

/* Returns a new reference to the current set; the caller releases it with
 * cc_bundle_set_release(). Never NULL after a successful start. */
cc_bundle_set *cc_bundle_watcher_get(cc_bundle_watcher *watcher);

/* Rebuilds the set now in the calling thread, after the settle delay, even
 * when no file seems changed. On failure the previous set stays in force, the
 * failure is logged and err contains the reason (CC_ERR_IO when a file was still
 * being written; the polling thread reads it again later). Not
 * async-signal-safe: a SIGHUP handler calls cc_bundle_watcher_request_reload(). */
cc_status cc_bundle_watcher_reload(cc_bundle_watcher *watcher, cc_err *err);

/* Asks the polling thread to rebuild the set on its next wakeup, which this
 * call triggers at once. Async-signal-safe (one write(2) to a pipe). */
void cc_bundle_watcher_request_reload(cc_bundle_watcher *watcher);

/* Returns how many sets have been published so far, starting at 1 for the
 * initial load. Tests and health checks use it to see that a reload happened. */
uint64_t cc_bundle_watcher_generation(cc_bundle_watcher *watcher);

#endif
