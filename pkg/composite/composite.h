/* The composite repository (seed 000): the in-process cache (pkg/cache), then Redis when
 * configured, then the database (any mk_repo_t backend, PostgreSQL in production), behind the same
 * mk_repo_t interface. Reads of one mock fall through the tiers and fill the ones above; writes go
 * to the database first and then update both caches synchronously, so a read right after a write
 * never sees old data. With Redis, every committed change is also published on the channel
 * "mockarty:changes" (payload "<seq> <id>") and the change feed merges it with the database's own.
 * A Redis that is down is skipped (counted, never an error to the caller). */
#ifndef MK_COMPOSITE_H
#define MK_COMPOSITE_H

#include "cache/cache.h"
#include "redis/redis.h"
#include "repo/repo.h"

typedef struct mk_composite_opts {
    size_t cache_max_bytes;        /* CACHE_MAX_BYTES; 0 = 64 MiB */
    const mk_redis_opts_t *redis;  /* NULL = no Redis tier (CACHE_TYPE=inmemory) */
    int64_t redis_ttl_ms;          /* TTL of cached mocks in Redis; 0 = 1 hour */
} mk_composite_opts_t;

/* Takes ownership of db (freed with the composite). */
int mk_composite_open(mk_repo_t *db, const mk_composite_opts_t *opts, mk_repo_t **out,
                      mk_err_t *err);

typedef struct mk_composite_tier_stats {
    uint64_t hits, misses;
} mk_composite_tier_stats_t;
/* Hit/miss counters of the get_mock path per tier, for cache_hit_ratio{tier="memory"|"redis"}. */
void mk_composite_stats(const mk_repo_t *r, mk_composite_tier_stats_t *memory,
                        mk_composite_tier_stats_t *redis);
/* "up", "down" or "not_configured", with the last ping's latency. */
const char *mk_composite_redis_status(mk_repo_t *r, double *latency_ms);

#endif
