/* The composite repository (seed 000): the in-process cache (pkg/cache), then Redis when
 * configured, then the database (any mk_repo_t backend, PostgreSQL in production), behind the same
 * mk_repo_t interface. Reads of one mock fall through the tiers and fill the ones above; writes go
 * to the database first and then update both caches synchronously, so a read right after a write
 * never sees old data. With Redis, every committed change is also published on the channel
 * "mockarty:changes" (payload "<seq> <id>") and the change feed merges it with the database's own.
 * A Redis that is down is skipped (counted, never an error to the caller).
 *
 * Behaviour worth knowing:
 * - Only get_mock goes through the caches; load_mocks, update_usage, namespaces, documents and
 *   ping are the database's (documents are neither cached nor published). Cached rows carry
 *   the usage counters (uses, last_use) of their last write or fill: update_usage does not
 *   refresh them.
 * - Absent and purged mocks are not cached: every such get_mock asks the database. A purge
 *   leaves a tombstone in Redis (for redis_ttl_ms) so no node refills an old copy.
 * - Versions are ordered by seq everywhere: a slow read never replaces a newer version in L1 or
 *   Redis, and a read that overlaps a write or a notification of its id is not cached in L1.
 * - With Redis, every node follows "mockarty:changes" from open on and drops L1 entries older
 *   than a notified change, whether or not subscribe() was called; a (re)connection of a feed
 *   empties L1. Without Redis, only a database feed (after subscribe) invalidates L1, so nodes
 *   over SQLite with no Redis see other processes' writes to a cached mock only after eviction.
 * - Redis writes that fail are remembered (up to 10,000; beyond, every cached mock is deleted
 *   from Redis) and repaired when Redis answers again: the keys are deleted and the changes
 *   published again.
 * - subscribe() merges the database's feed (when it has one) and the Redis channel: the same
 *   change may arrive twice, and out of order across feeds; callers dedup by seq. Callbacks are
 *   serialized. A purge is announced with its tombstone's seq, found by reading the changes
 *   after the highest seq this node has seen. Resync signals (0, NULL) come after every
 *   (re)connection of either feed, including once right after subscribe(). Without Redis over
 *   a database without a feed, mk_repo_subscribe() fails with MK_EINVAL. */
#ifndef MK_COMPOSITE_H
#define MK_COMPOSITE_H

#include "cache/cache.h"
#include "redis/redis.h"
#include "repo/repo.h"

#include <stdbool.h>

typedef struct mk_composite_opts {
    size_t cache_max_bytes;       /* CACHE_MAX_BYTES; 0 = 64 MiB */
    const mk_redis_opts_t *redis; /* NULL = no Redis tier (CACHE_TYPE=inmemory) */
    int64_t redis_ttl_ms;         /* TTL of cached mocks in Redis; 0 = 1 hour */
    /* Writes do not fill the in-process tier (they still evict older copies): for the admin,
     * whose catalog already holds every mock it writes (~0.5-0.75 KB per mock otherwise). */
    bool no_l1_fill_on_write;
} mk_composite_opts_t;

/* Takes ownership of db (freed with the composite, or at once when opening fails). With Redis,
 * opening does not connect: a Redis that is down at start is only reported "down". */
int mk_composite_open(mk_repo_t *db, const mk_composite_opts_t *opts, mk_repo_t **out,
                      mk_err_t *err);

typedef struct mk_composite_tier_stats {
    uint64_t hits, misses;
} mk_composite_tier_stats_t;
/* Hit/miss counters of the get_mock path per tier, for cache_hit_ratio{tier="memory"|"redis"}. */
void mk_composite_stats(const mk_repo_t *r, mk_composite_tier_stats_t *memory,
                        mk_composite_tier_stats_t *redis);
/* Redis calls that failed (server unreachable or an error reply); the operations went on
 * without Redis. */
uint64_t mk_composite_redis_failures(const mk_repo_t *r);
/* How many times a change feed (re)connected, each time emptying the in-process cache because
 * changes may have been missed; the first comes soon after open when Redis is configured. */
uint64_t mk_composite_resyncs(const mk_repo_t *r);
/* "up", "down" or "not_configured", with the last ping's latency. */
const char *mk_composite_redis_status(mk_repo_t *r, double *latency_ms);

#endif
