/* The in-process cache tier: a byte-bounded key/value cache with admission by frequency (TinyLFU:
 * a count-min sketch of recent key frequencies, periodically halved, plus a doorkeeper), so a scan
 * of cold keys cannot evict the hot set, as Ristretto does. Sharded; every call is thread-safe.
 * Values are copied in and out. */
#ifndef MK_CACHE_H
#define MK_CACHE_H

#include "str/str.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mk_cache mk_cache_t;

/* max_bytes bounds keys + values + per-entry overhead. Caller frees with mk_cache_free(). */
mk_cache_t *mk_cache_new(size_t max_bytes);
void mk_cache_free(mk_cache_t *c);

/* On a hit appends the value to out, sets *meta (may be NULL) to what was stored with it and
 * returns true. Counts a hit or a miss. */
bool mk_cache_get(mk_cache_t *c, mk_str_t key, mk_buf_t *out, int64_t *meta);
/* Inserts or replaces. A new key is admitted only when the sketch estimates it more frequent
 * than the entries it would evict; returns whether it is now cached. Replacing an existing key
 * is always admitted. */
bool mk_cache_set(mk_cache_t *c, mk_str_t key, mk_str_t value, int64_t meta);
void mk_cache_delete(mk_cache_t *c, mk_str_t key);
/* For versioned values (meta = a version number): like mk_cache_set, except that an entry whose
 * meta is greater than meta is left alone (returns false), so an older version read late never
 * replaces a newer one. */
bool mk_cache_set_if_newer(mk_cache_t *c, mk_str_t key, mk_str_t value, int64_t meta);
/* Deletes the entry when its meta is less than meta; returns whether it did. */
bool mk_cache_delete_if_older(mk_cache_t *c, mk_str_t key, int64_t meta);
void mk_cache_clear(mk_cache_t *c);

typedef struct mk_cache_stats {
    uint64_t hits, misses;
    uint64_t entries;
    uint64_t bytes;
    uint64_t rejected; /* sets refused by admission */
    uint64_t evicted;
} mk_cache_stats_t;
void mk_cache_stats(const mk_cache_t *c, mk_cache_stats_t *out);

#endif
