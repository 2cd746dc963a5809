/* Keeps the catalog of a node that does not write mocks (a resolver) in step with the database:
 * a full load at start, then each change from the repository's change feed, applied to the route
 * snapshot incrementally. After a reconnect of the feed, a gap in the change sequence, a stale
 * read, or at least every poll interval, it resyncs everything newer than the last sequence it
 * applied. All of this happens on the follower's own thread, never on the serving path. */
#ifndef MK_FOLLOW_H
#define MK_FOLLOW_H

#include "catalog/catalog.h"
#include "repo/repo.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mk_follow mk_follow_t;

typedef struct mk_follow_opts {
    int64_t poll_ms; /* resync at least this often; 0 = 1000 */
} mk_follow_opts_t;

/* Starts following: subscribes to the change feed (when the backend has one) and starts the
 * thread that loads the snapshot, retrying with backoff while the database is down. repo and
 * catalog are borrowed. Caller frees with mk_follow_free(). */
int mk_follow_start(mk_repo_t *repo, mk_catalog_t *catalog, const mk_follow_opts_t *opts,
                    mk_follow_t **out, mk_err_t *err);
/* Shutdown in three steps, because the change feed lives in the repository: mk_follow_stop()
 * (the thread ends), mk_repo_free() (the feed ends), then mk_follow_free(). */
void mk_follow_stop(mk_follow_t *f);
void mk_follow_free(mk_follow_t *f);

/* True once the full snapshot has been loaded (readiness). */
bool mk_follow_ready(const mk_follow_t *f);
/* Whether the last call to the database succeeded. */
bool mk_follow_db_up(const mk_follow_t *f);
/* The last change sequence number applied. */
int64_t mk_follow_seq(const mk_follow_t *f);

#endif
