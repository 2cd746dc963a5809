/* The in-process cache: 16 independently locked shards, each a chained hash table plus a dense
 * array of its entries (for random victim sampling) and its own TinyLFU admission filter. */
#include "cache/cache.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define SHARD_BITS 4
#define NSHARDS    (1u << SHARD_BITS)
/* Victims are the least frequent of this many random entries (Ristretto samples 5). */
#define SAMPLES 5
/* Bytes assumed per entry when sizing the sketch from max_bytes. */
#define SIZING_ENTRY_BYTES 256
/* Sketch resets after this many increments per estimated entry (Caffeine uses 10). */
#define SAMPLE_FACTOR 10

typedef struct entry {
    struct entry *next; /* hash chain */
    uint64_t hash;
    size_t slot; /* index in the shard's dense array */
    int64_t meta;
    size_t klen, vlen;
    char data[]; /* key bytes, then value bytes */
} entry_t;

/* Accounted per entry beyond key and value: the entry header, allocator overhead, its dense
 * slot and its share of the bucket array. */
#define ENTRY_OVERHEAD (sizeof(entry_t) + 32)

/* Count-min sketch of 4 rows of 4-bit counters, packed 16 to a word, with a doorkeeper bloom
 * filter in front: a key's first sighting in a period only sets doorkeeper bits, so one-hit
 * wonders do not occupy counters. */
typedef struct sketch {
    uint64_t *counters; /* 4 rows of `words` words */
    size_t words;       /* per row */
    size_t mask;        /* counters per row - 1 */
    uint64_t *door;
    size_t door_mask; /* doorkeeper bits - 1 */
    uint64_t additions, sample_size;
} sketch_t;

typedef struct shard {
    alignas(64) pthread_mutex_t mu;
    entry_t **buckets;
    size_t nbuckets; /* power of two */
    entry_t **dense;
    size_t n, cap;
    size_t bytes, budget;
    sketch_t sk;
    uint64_t rng;
    uint64_t hits, misses, rejected, evicted;
} shard_t;

struct mk_cache {
    shard_t *shards; /* NSHARDS */
    size_t max_bytes;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_key(mk_str_t key)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < key.len; i++) {
        h ^= (unsigned char)key.base[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

static size_t next_pow2(size_t v, size_t min)
{
    size_t p = min;
    while (p < v)
        p <<= 1;
    return p;
}

/* ---- sketch ---- */

static int sketch_init(sketch_t *sk, size_t entries)
{
    size_t width = next_pow2(entries * 2, 64);
    sk->words = width / 16;
    sk->mask = width - 1;
    sk->sample_size = (uint64_t)entries * SAMPLE_FACTOR;
    size_t door_bits = next_pow2((size_t)sk->sample_size * 4, 512);
    sk->door_mask = door_bits - 1;
    sk->counters = calloc(4 * sk->words, sizeof(uint64_t));
    sk->door = calloc(door_bits / 64, sizeof(uint64_t));
    sk->additions = 0;
    return sk->counters != NULL && sk->door != NULL ? 0 : -1;
}

static void sketch_free(sketch_t *sk)
{
    free(sk->counters);
    free(sk->door);
}

/* The counter index of row i for a key hash (double hashing over a remixed hash, so the bits
 * that chose the shard and bucket do not also choose counters). */
static size_t sketch_index(const sketch_t *sk, uint64_t g, int i)
{
    uint32_t lo = (uint32_t)g, hi = (uint32_t)(g >> 32) | 1u;
    return (size_t)(lo + (uint32_t)i * hi) & sk->mask;
}

static unsigned counter_get(const sketch_t *sk, int row, size_t idx)
{
    uint64_t w = sk->counters[(size_t)row * sk->words + idx / 16];
    return (unsigned)(w >> ((idx % 16) * 4)) & 0xf;
}

static void counter_inc(sketch_t *sk, int row, size_t idx)
{
    uint64_t *w = &sk->counters[(size_t)row * sk->words + idx / 16];
    unsigned shift = (unsigned)(idx % 16) * 4;
    if (((*w >> shift) & 0xf) < 15)
        *w += (uint64_t)1 << shift;
}

static bool door_has(const sketch_t *sk, uint64_t g)
{
    size_t a = (size_t)(g >> 7) & sk->door_mask, b = (size_t)(g >> 37) & sk->door_mask;
    return (sk->door[a / 64] >> (a % 64) & 1) && (sk->door[b / 64] >> (b % 64) & 1);
}

static void door_add(sketch_t *sk, uint64_t g)
{
    size_t a = (size_t)(g >> 7) & sk->door_mask, b = (size_t)(g >> 37) & sk->door_mask;
    sk->door[a / 64] |= (uint64_t)1 << (a % 64);
    sk->door[b / 64] |= (uint64_t)1 << (b % 64);
}

static unsigned sketch_min(const sketch_t *sk, uint64_t g)
{
    unsigned m = 15;
    for (int i = 0; i < 4; i++) {
        unsigned v = counter_get(sk, i, sketch_index(sk, g, i));
        if (v < m)
            m = v;
    }
    return m;
}

static unsigned sketch_estimate(const sketch_t *sk, uint64_t h)
{
    uint64_t g = mix64(h ^ 0x9e3779b97f4a7c15ULL);
    return sketch_min(sk, g) + (door_has(sk, g) ? 1 : 0);
}

/* Halves every counter and clears the doorkeeper, so old popularity fades. */
static void sketch_reset(sketch_t *sk)
{
    for (size_t i = 0; i < 4 * sk->words; i++)
        sk->counters[i] = (sk->counters[i] >> 1) & 0x7777777777777777ULL;
    memset(sk->door, 0, (sk->door_mask + 1) / 8);
    sk->additions = 0;
}

static void sketch_increment(sketch_t *sk, uint64_t h)
{
    uint64_t g = mix64(h ^ 0x9e3779b97f4a7c15ULL);
    if (!door_has(sk, g)) {
        door_add(sk, g);
    } else {
        /* Conservative update: only the counters at the minimum grow, which keeps collisions
         * from inflating estimates. */
        unsigned m = sketch_min(sk, g);
        for (int i = 0; i < 4; i++) {
            size_t idx = sketch_index(sk, g, i);
            if (counter_get(sk, i, idx) == m)
                counter_inc(sk, i, idx);
        }
    }
    if (++sk->additions >= sk->sample_size)
        sketch_reset(sk);
}

/* ---- shard table ---- */

static size_t entry_cost(size_t klen, size_t vlen)
{
    return klen + vlen + ENTRY_OVERHEAD;
}

static entry_t **find_link(shard_t *s, mk_str_t key, uint64_t h)
{
    entry_t **link = &s->buckets[h & (s->nbuckets - 1)];
    while (*link != NULL) {
        entry_t *e = *link;
        if (e->hash == h && e->klen == key.len && memcmp(e->data, key.base, key.len) == 0)
            return link;
        link = &e->next;
    }
    return link;
}

static entry_t **link_of(shard_t *s, const entry_t *e)
{
    entry_t **link = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*link != e)
        link = &(*link)->next;
    return link;
}

static void grow_buckets(shard_t *s)
{
    size_t nb = s->nbuckets * 2;
    entry_t **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return; /* chains just get longer */
    for (size_t i = 0; i < s->nbuckets; i++) {
        entry_t *e = s->buckets[i];
        while (e != NULL) {
            entry_t *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

/* Unlinks e from its chain and the dense array and frees it. */
static void remove_entry(shard_t *s, entry_t **link)
{
    entry_t *e = *link;
    *link = e->next;
    entry_t *last = s->dense[--s->n];
    s->dense[e->slot] = last;
    last->slot = e->slot;
    s->bytes -= entry_cost(e->klen, e->vlen);
    free(e);
}

static uint64_t rng_next(shard_t *s)
{
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s->rng = x;
    return x;
}

/* The least frequent of SAMPLES random entries other than keep; NULL when there is none. */
static entry_t *sample_victim(shard_t *s, const entry_t *keep, unsigned *freq)
{
    entry_t *victim = NULL;
    unsigned best = 0;
    size_t candidates = s->n - (keep != NULL ? 1 : 0);
    if (candidates == 0)
        return NULL;
    for (int i = 0; i < SAMPLES; i++) {
        entry_t *e = s->dense[rng_next(s) % s->n];
        if (e == keep)
            continue;
        unsigned f = sketch_estimate(&s->sk, e->hash);
        if (victim == NULL || f < best) {
            victim = e;
            best = f;
        }
    }
    if (victim == NULL) /* only hit keep: take its neighbour */
        victim = s->dense[(keep->slot + 1) % s->n];
    *freq = sketch_estimate(&s->sk, victim->hash);
    return victim;
}

static entry_t *entry_new(mk_str_t key, mk_str_t value, uint64_t h, int64_t meta)
{
    entry_t *e = malloc(sizeof *e + key.len + value.len);
    if (e == NULL)
        return NULL;
    e->next = NULL;
    e->hash = h;
    e->meta = meta;
    e->klen = key.len;
    e->vlen = value.len;
    if (key.len > 0)
        memcpy(e->data, key.base, key.len);
    if (value.len > 0)
        memcpy(e->data + key.len, value.base, value.len);
    return e;
}

static shard_t *shard_of(const mk_cache_t *c, uint64_t h)
{
    return &c->shards[h >> (64 - SHARD_BITS)];
}

/* ---- public ---- */

mk_cache_t *mk_cache_new(size_t max_bytes)
{
    mk_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->max_bytes = max_bytes;
    c->shards = aligned_alloc(64, sizeof(shard_t) * NSHARDS);
    if (c->shards == NULL)
        goto fail;
    memset(c->shards, 0, sizeof(shard_t) * NSHARDS);
    for (unsigned i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&c->shards[i].mu, NULL);
    size_t entries = max_bytes / SIZING_ENTRY_BYTES / NSHARDS;
    if (entries < 16)
        entries = 16;
    for (unsigned i = 0; i < NSHARDS; i++) {
        shard_t *s = &c->shards[i];
        s->budget = max_bytes / NSHARDS;
        s->nbuckets = 16;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        s->rng = mix64(0x2545f4914f6cdd1dULL + i) | 1;
        if (s->buckets == NULL || sketch_init(&s->sk, entries) != 0)
            goto fail;
    }
    return c;
fail:
    mk_cache_free(c);
    return NULL;
}

void mk_cache_free(mk_cache_t *c)
{
    if (c == NULL)
        return;
    if (c->shards != NULL) {
        mk_cache_clear(c);
        for (unsigned i = 0; i < NSHARDS; i++) {
            shard_t *s = &c->shards[i];
            free(s->buckets);
            free(s->dense);
            sketch_free(&s->sk);
            pthread_mutex_destroy(&s->mu);
        }
        free(c->shards);
    }
    free(c);
}

bool mk_cache_get(mk_cache_t *c, mk_str_t key, mk_buf_t *out, int64_t *meta)
{
    uint64_t h = hash_key(key);
    shard_t *s = shard_of(c, h);
    bool hit = false;
    pthread_mutex_lock(&s->mu);
    sketch_increment(&s->sk, h);
    entry_t *e = *find_link(s, key, h);
    if (e != NULL && mk_buf_append(out, e->data + e->klen, e->vlen) == 0) {
        if (meta != NULL)
            *meta = e->meta;
        hit = true;
    }
    if (hit)
        s->hits++;
    else
        s->misses++;
    pthread_mutex_unlock(&s->mu);
    return hit;
}

/* The shared body of the setters; with only_newer an existing entry with a greater meta wins. */
static bool cache_set(mk_cache_t *c, mk_str_t key, mk_str_t value, int64_t meta, bool only_newer)
{
    uint64_t h = hash_key(key);
    shard_t *s = shard_of(c, h);
    size_t cost = entry_cost(key.len, value.len);
    bool ok = false;
    pthread_mutex_lock(&s->mu);
    entry_t **link = find_link(s, key, h);
    entry_t *old = *link;
    if (old != NULL && only_newer && old->meta > meta)
        goto out;
    if (cost > s->budget) {
        /* Can never fit; an older value must not stay behind as if the set had worked. */
        if (old != NULL)
            remove_entry(s, link);
        s->rejected++;
        goto out;
    }
    if (old != NULL) {
        entry_t *e = entry_new(key, value, h, meta);
        if (e == NULL)
            goto out;
        e->next = old->next;
        e->slot = old->slot;
        *link = e;
        s->dense[e->slot] = e;
        s->bytes = s->bytes - entry_cost(old->klen, old->vlen) + cost;
        free(old);
        while (s->bytes > s->budget) {
            unsigned f;
            entry_t *v = sample_victim(s, e, &f);
            if (v == NULL)
                break;
            remove_entry(s, link_of(s, v));
            s->evicted++;
        }
        ok = true;
        goto out;
    }
    if (s->bytes + cost > s->budget) {
        unsigned want = sketch_estimate(&s->sk, h);
        while (s->bytes + cost > s->budget) {
            unsigned f;
            entry_t *v = sample_victim(s, NULL, &f);
            if (v == NULL)
                break;
            if (want <= f) {
                s->rejected++;
                goto out;
            }
            remove_entry(s, link_of(s, v));
            s->evicted++;
        }
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap == 0 ? 16 : s->cap * 2;
        entry_t **d = realloc(s->dense, ncap * sizeof *d);
        if (d == NULL)
            goto out;
        s->dense = d;
        s->cap = ncap;
    }
    entry_t *e = entry_new(key, value, h, meta);
    if (e == NULL)
        goto out;
    if (s->n >= s->nbuckets)
        grow_buckets(s);
    link = &s->buckets[h & (s->nbuckets - 1)];
    e->next = *link;
    *link = e;
    e->slot = s->n;
    s->dense[s->n++] = e;
    s->bytes += cost;
    ok = true;
out:
    pthread_mutex_unlock(&s->mu);
    return ok;
}

bool mk_cache_set(mk_cache_t *c, mk_str_t key, mk_str_t value, int64_t meta)
{
    return cache_set(c, key, value, meta, false);
}

bool mk_cache_set_if_newer(mk_cache_t *c, mk_str_t key, mk_str_t value, int64_t meta)
{
    return cache_set(c, key, value, meta, true);
}

void mk_cache_delete(mk_cache_t *c, mk_str_t key)
{
    uint64_t h = hash_key(key);
    shard_t *s = shard_of(c, h);
    pthread_mutex_lock(&s->mu);
    entry_t **link = find_link(s, key, h);
    if (*link != NULL)
        remove_entry(s, link);
    pthread_mutex_unlock(&s->mu);
}

bool mk_cache_delete_if_older(mk_cache_t *c, mk_str_t key, int64_t meta)
{
    uint64_t h = hash_key(key);
    shard_t *s = shard_of(c, h);
    bool deleted = false;
    pthread_mutex_lock(&s->mu);
    entry_t **link = find_link(s, key, h);
    if (*link != NULL && (*link)->meta < meta) {
        remove_entry(s, link);
        deleted = true;
    }
    pthread_mutex_unlock(&s->mu);
    return deleted;
}

void mk_cache_clear(mk_cache_t *c)
{
    for (unsigned i = 0; i < NSHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t j = 0; j < s->n; j++)
            free(s->dense[j]);
        s->n = 0;
        s->bytes = 0;
        if (s->buckets != NULL)
            memset(s->buckets, 0, s->nbuckets * sizeof *s->buckets);
        pthread_mutex_unlock(&s->mu);
    }
}

void mk_cache_stats(const mk_cache_t *c, mk_cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < NSHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        out->hits += s->hits;
        out->misses += s->misses;
        out->entries += s->n;
        out->bytes += s->bytes;
        out->rejected += s->rejected;
        out->evicted += s->evicted;
        pthread_mutex_unlock(&s->mu);
    }
}
