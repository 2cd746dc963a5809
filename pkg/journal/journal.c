/* Request journal: each worker pushes one-block records onto its own single-producer ring; a
 * background thread (or a reader) drains the rings into a byte-bounded store and the aggregate of
 * unmatched requests. The store sits behind the store_* functions so another backend can replace
 * the in-memory one. */
#include "journal/journal.h"

#include <pthread.h>
#include <regex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_LINE      64
#define RING_MASK       ((size_t)MK_JOURNAL_RING_SLOTS - 1)
#define DRAIN_PERIOD_NS (5 * 1000 * 1000L)
#define GROUP_BUCKETS   16384 /* power of two, comfortably above MK_JOURNAL_MAX_GROUPS */

_Static_assert((MK_JOURNAL_RING_SLOTS & (MK_JOURNAL_RING_SLOTS - 1)) == 0,
               "ring slots must be a power of two");

/* One recorded request. The header array and every string (NUL-terminated, so regexec can read
 * them in place) follow this struct in the same malloc'd block. */
typedef struct entry {
    struct entry *prev, *next; /* store order: prev is older */
    uint64_t mono_ns;          /* arrival stamp, merges the rings in arrival order */
    uint64_t id;
    size_t size; /* bytes of the block, what the byte bound counts */
    int64_t ts_ms;
    int status;
    bool body_truncated;
    double duration_ms;
    mk_str_t namespace_, mock_id, method, path, query, body, request_id;
    mk_str_t protocol, operation, response; /* empty for plain HTTP */
    mk_header_t *headers;
    size_t nheaders;
} entry_t;

/* Single-producer/single-consumer ring. The producer's and the consumer's indices live on
 * separate cache lines so neither side's writes invalidate the other's line on every record. */
typedef struct ring {
    alignas(CACHE_LINE) _Atomic size_t tail; /* written by the producer */
    size_t cached_head;                      /* producer-private copy of head */
    _Atomic uint64_t dropped;                /* written by the producer */
    alignas(CACHE_LINE) _Atomic size_t head; /* written by the consumer */
    alignas(CACHE_LINE) entry_t *slots[MK_JOURNAL_RING_SLOTS];
} ring_t;

/* An unmatched (namespace, method, path) group; the three strings live in key. */
typedef struct group {
    struct group *hnext;         /* hash chain */
    struct group *older, *newer; /* recency list */
    uint64_t hash;
    uint64_t hits;
    int64_t first_ms, last_ms;
    mk_str_t namespace_, method, path;
    char key[];
} group_t;

typedef struct mem_store {
    entry_t *oldest, *newest;
    size_t bytes, count;
    group_t **buckets;
    group_t *lru_oldest, *lru_newest;
    size_t ngroups;
} mem_store_t;

struct mk_journal {
    size_t max_bytes, body_max;
    unsigned nproducers;
    ring_t *rings;
    _Atomic uint64_t misuse_drops; /* records for a producer index out of range */

    pthread_mutex_t mu; /* guards the store, next_id and the consumer side of every ring */
    pthread_cond_t wake;
    bool stop;
    bool thread_started;
    pthread_t thread;
    uint64_t next_id;
    _Atomic uint64_t last_id; /* next_id as filed, for lock-free pollers (mk_journal_last_id) */
    size_t *drain_head, *drain_tail; /* per-ring scratch for drain_locked */
    mem_store_t store;
    /* Shared journal (a Redis storage layer): entries are also appended to its history, and
     * queries read every node's entries from there into view. */
    mk_store_t *shared;
    mem_store_t view;
    mk_store_history_rec_t *pending;
    size_t npending, cappending;
};

/* The history view every node's journal shares on the storage layer. */
#define SHARED_VIEW "_journal"

/* ---- time ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- in-memory store: entries ---- */

static void mem_store_unlink(mem_store_t *s, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->oldest = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->newest = e->prev;
    s->bytes -= e->size;
    s->count--;
}

/* Takes ownership of e; evicts the oldest entries past max_bytes. */
static void mem_store_add(mem_store_t *s, entry_t *e, size_t max_bytes)
{
    e->next = NULL;
    e->prev = s->newest;
    if (s->newest)
        s->newest->next = e;
    else
        s->oldest = e;
    s->newest = e;
    s->bytes += e->size;
    s->count++;
    while (s->bytes > max_bytes && s->oldest) {
        entry_t *old = s->oldest;
        mem_store_unlink(s, old);
        free(old);
    }
}

/* ---- in-memory store: unmatched groups ---- */

static uint64_t fnv1a(uint64_t h, mk_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        h ^= (unsigned char)s.base[i];
        h *= 1099511628211u;
    }
    /* A separator, so ("ab", "c") and ("a", "bc") hash apart. */
    h ^= 0xff;
    h *= 1099511628211u;
    return h;
}

static void lru_unlink(mem_store_t *s, group_t *g)
{
    if (g->older)
        g->older->newer = g->newer;
    else
        s->lru_oldest = g->newer;
    if (g->newer)
        g->newer->older = g->older;
    else
        s->lru_newest = g->older;
    g->older = g->newer = NULL;
}

static void lru_push(mem_store_t *s, group_t *g)
{
    g->older = s->lru_newest;
    g->newer = NULL;
    if (s->lru_newest)
        s->lru_newest->newer = g;
    else
        s->lru_oldest = g;
    s->lru_newest = g;
}

/* Takes g out of its hash chain and the recency list, and frees it. */
static void group_remove(mem_store_t *s, group_t *g)
{
    group_t **pp = &s->buckets[g->hash & (GROUP_BUCKETS - 1)];
    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    lru_unlink(s, g);
    s->ngroups--;
    free(g);
}

static mk_str_t put_str(char **p, mk_str_t s)
{
    mk_str_t out = {*p, s.len};
    if (s.len)
        memcpy(*p, s.base, s.len);
    (*p)[s.len] = '\0';
    *p += s.len + 1;
    return out;
}

/* Counts one unmatched hit. An allocation failure loses the hit, never the entry. */
static void mem_store_note_unmatched(mem_store_t *s, const entry_t *e)
{
    uint64_t h = fnv1a(fnv1a(fnv1a(14695981039346656037u, e->namespace_), e->method), e->path);
    group_t **bucket = &s->buckets[h & (GROUP_BUCKETS - 1)];
    for (group_t *g = *bucket; g; g = g->hnext) {
        if (g->hash == h && mk_str_eq(g->namespace_, e->namespace_) &&
            mk_str_eq(g->method, e->method) && mk_str_eq(g->path, e->path)) {
            g->hits++;
            if (e->ts_ms < g->first_ms)
                g->first_ms = e->ts_ms;
            if (e->ts_ms > g->last_ms)
                g->last_ms = e->ts_ms;
            lru_unlink(s, g);
            lru_push(s, g);
            return;
        }
    }
    group_t *g = malloc(sizeof *g + e->namespace_.len + e->method.len + e->path.len + 3);
    if (g == NULL)
        return;
    char *p = g->key;
    g->namespace_ = put_str(&p, e->namespace_);
    g->method = put_str(&p, e->method);
    g->path = put_str(&p, e->path);
    g->hash = h;
    g->hits = 1;
    g->first_ms = g->last_ms = e->ts_ms;
    g->hnext = *bucket;
    *bucket = g;
    lru_push(s, g);
    s->ngroups++;
    if (s->ngroups > MK_JOURNAL_MAX_GROUPS)
        group_remove(s, s->lru_oldest);
}

static void mem_store_clear(mem_store_t *s)
{
    entry_t *e = s->oldest;
    while (e) {
        entry_t *next = e->next;
        free(e);
        e = next;
    }
    s->oldest = s->newest = NULL;
    s->bytes = s->count = 0;
    while (s->lru_oldest)
        group_remove(s, s->lru_oldest);
}

/* Calls fn on entries newest first until it returns false. */
static void mem_store_foreach_newest(mem_store_t *s, bool (*fn)(const entry_t *e, void *ctx),
                                     void *ctx)
{
    for (const entry_t *e = s->newest; e; e = e->prev) {
        if (!fn(e, ctx))
            return;
    }
}

/* ---- store interface used by the rest of this file ---- */

static void shared_queue(mk_journal_t *j, const entry_t *e);

static void store_add(mk_journal_t *j, entry_t *e)
{
    if (j->shared != NULL)
        shared_queue(j, e);
    e->id = ++j->next_id;
    atomic_store_explicit(&j->last_id, e->id, memory_order_release);
    if (e->mock_id.len == 0)
        mem_store_note_unmatched(&j->store, e);
    mem_store_add(&j->store, e, j->max_bytes); /* may free e */
}

/* The entries queries read: this node's, or every node's when the journal is shared (refreshed
 * by shared_refresh before each query). */
static mem_store_t *active(mk_journal_t *j)
{
    return j->shared != NULL ? &j->view : &j->store;
}

static void store_foreach_newest(mk_journal_t *j, bool (*fn)(const entry_t *e, void *ctx),
                                 void *ctx)
{
    mem_store_foreach_newest(active(j), fn, ctx);
}

/* ---- rings ---- */

static void shared_flush(mk_journal_t *j);
static void shared_refresh(mk_journal_t *j);
static void shared_flush_free(mk_journal_t *j);

/* Files every record pushed so far, merging the rings by arrival stamp. Caller holds mu. */
static void drain_rings(mk_journal_t *j)
{
    for (unsigned i = 0; i < j->nproducers; i++) {
        ring_t *r = &j->rings[i];
        j->drain_head[i] = atomic_load_explicit(&r->head, memory_order_relaxed);
        j->drain_tail[i] = atomic_load_explicit(&r->tail, memory_order_acquire);
    }
    for (;;) {
        entry_t *best = NULL;
        unsigned from = 0;
        for (unsigned i = 0; i < j->nproducers; i++) {
            if (j->drain_head[i] == j->drain_tail[i])
                continue;
            entry_t *e = j->rings[i].slots[j->drain_head[i] & RING_MASK];
            if (best == NULL || e->mono_ns < best->mono_ns) {
                best = e;
                from = i;
            }
        }
        if (best == NULL)
            return;
        j->drain_head[from]++;
        /* Hand the slot back at once so a busy producer is not refused while we file. */
        atomic_store_explicit(&j->rings[from].head, j->drain_head[from], memory_order_release);
        store_add(j, best);
    }
}

static void drain_locked(mk_journal_t *j)
{
    drain_rings(j);
    if (j->shared != NULL)
        shared_flush(j);
}

static void *drain_main(void *arg)
{
    mk_journal_t *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        drain_locked(j);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += DRAIN_PERIOD_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->wake, &j->mu, &until);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

mk_journal_t *mk_journal_new(size_t max_bytes, size_t body_max, unsigned nproducers)
{
    if (nproducers == 0)
        return NULL;
    mk_journal_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->max_bytes = max_bytes;
    j->body_max = body_max;
    j->nproducers = nproducers;
    atomic_init(&j->misuse_drops, 0);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &ca);
    pthread_condattr_destroy(&ca);

    j->rings = aligned_alloc(CACHE_LINE, nproducers * sizeof(ring_t));
    j->drain_head = calloc(nproducers, sizeof *j->drain_head);
    j->drain_tail = calloc(nproducers, sizeof *j->drain_tail);
    j->store.buckets = calloc(GROUP_BUCKETS, sizeof *j->store.buckets);
    j->view.buckets = calloc(GROUP_BUCKETS, sizeof *j->view.buckets);
    if (!j->rings || !j->drain_head || !j->drain_tail || !j->store.buckets || !j->view.buckets)
        goto fail;
    for (unsigned i = 0; i < nproducers; i++) {
        ring_t *r = &j->rings[i];
        atomic_init(&r->tail, 0);
        atomic_init(&r->head, 0);
        atomic_init(&r->dropped, 0);
        r->cached_head = 0;
    }
    if (pthread_create(&j->thread, NULL, drain_main, j) != 0)
        goto fail;
    j->thread_started = true;
    return j;

fail:
    mk_journal_free(j);
    return NULL;
}

void mk_journal_free(mk_journal_t *j)
{
    if (j == NULL)
        return;
    if (j->thread_started) {
        pthread_mutex_lock(&j->mu);
        j->stop = true;
        pthread_cond_signal(&j->wake);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
    }
    if (j->rings && j->drain_head && j->drain_tail && j->store.buckets && j->view.buckets) {
        /* Records still in the rings are owned by us now; filing them frees them below. */
        drain_locked(j);
        mem_store_clear(&j->store);
        mem_store_clear(&j->view);
        shared_flush_free(j);
    }
    free(j->store.buckets);
    free(j->view.buckets);
    free(j->pending);
    free(j->drain_head);
    free(j->drain_tail);
    free(j->rings);
    pthread_cond_destroy(&j->wake);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Credentials never reach the journal (it is readable through the API and shared via Redis). */
static mk_str_t kept_value(const mk_header_t *h)
{
    static const char *const secret[] = {"Authorization", "Proxy-Authorization", "X-API-Key",
                                         "Cookie"};
    for (size_t i = 0; i < sizeof secret / sizeof *secret; i++)
        if (mk_str_caseeq(h->name, mk_str_of(secret[i])))
            return MK_STR_LIT("[redacted]");
    return h->value;
}

static entry_t *entry_build(const mk_journal_t *j, const mk_journal_rec_t *rec)
{
    mk_str_t body = rec->body;
    bool truncated = false;
    if (body.len > j->body_max) {
        body.len = j->body_max;
        truncated = true;
    }
    mk_str_t response = rec->response;
    if (response.len > j->body_max)
        response.len = j->body_max;
    size_t strs = rec->namespace_.len + rec->mock_id.len + rec->method.len + rec->path.len +
                  rec->query.len + body.len + rec->request_id.len + rec->protocol.len +
                  rec->operation.len + response.len + 10;
    for (size_t i = 0; i < rec->nheaders; i++)
        strs += rec->headers[i].name.len + kept_value(&rec->headers[i]).len + 2;
    size_t size = sizeof(entry_t) + rec->nheaders * sizeof(mk_header_t) + strs;
    entry_t *e = malloc(size);
    if (e == NULL)
        return NULL;
    e->prev = e->next = NULL;
    e->mono_ns = mono_ns();
    e->id = 0;
    e->size = size;
    e->ts_ms = rec->ts_ms ? rec->ts_ms : unix_ms();
    e->status = rec->status;
    e->body_truncated = truncated;
    e->duration_ms = rec->duration_ms;
    e->headers = (mk_header_t *)(e + 1);
    e->nheaders = rec->nheaders;
    char *p = (char *)(e->headers + rec->nheaders);
    e->namespace_ = put_str(&p, rec->namespace_);
    e->mock_id = put_str(&p, rec->mock_id);
    e->method = put_str(&p, rec->method);
    e->path = put_str(&p, rec->path);
    e->query = put_str(&p, rec->query);
    e->body = put_str(&p, body);
    e->request_id = put_str(&p, rec->request_id);
    e->protocol = put_str(&p, rec->protocol);
    e->operation = put_str(&p, rec->operation);
    e->response = put_str(&p, response);
    for (size_t i = 0; i < rec->nheaders; i++) {
        e->headers[i].name = put_str(&p, rec->headers[i].name);
        e->headers[i].value = put_str(&p, kept_value(&rec->headers[i]));
    }
    return e;
}

bool mk_journal_record(mk_journal_t *j, unsigned producer, const mk_journal_rec_t *rec)
{
    if (producer >= j->nproducers) {
        atomic_fetch_add_explicit(&j->misuse_drops, 1, memory_order_relaxed);
        return false;
    }
    ring_t *r = &j->rings[producer];
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - r->cached_head >= MK_JOURNAL_RING_SLOTS) {
        r->cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail - r->cached_head >= MK_JOURNAL_RING_SLOTS)
            goto drop;
    }
    entry_t *e = entry_build(j, rec);
    if (e == NULL)
        goto drop;
    r->slots[tail & RING_MASK] = e;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    /* Every quarter ring, look at the consumer's progress (one shared read per 1024 records);
     * when a quarter or more is still pending, wake the drainer instead of waiting for its period.
     * Signalling without the mutex is allowed; a lost wake-up costs at most one period. */
    if (((tail + 1) & (MK_JOURNAL_RING_SLOTS / 4 - 1)) == 0) {
        r->cached_head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail + 1 - r->cached_head >= MK_JOURNAL_RING_SLOTS / 4)
            pthread_cond_signal(&j->wake);
    }
    return true;

drop:
    /* Only this producer writes the counter, so a plain load and store cannot lose counts. */
    atomic_store_explicit(&r->dropped, atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return false;
}

void mk_journal_sync(mk_journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    pthread_mutex_unlock(&j->mu);
}

/* ---- JSON rendering ---- */

/* A JSON string of s; bytes that are not UTF-8 become U+FFFD so binary input never fails. */
static json_t *jstr(mk_str_t s)
{
    json_t *v = json_stringn(s.len ? s.base : "", s.len);
    if (v)
        return v;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    const unsigned char *u = (const unsigned char *)s.base;
    size_t i = 0;
    int rc = 0;
    while (i < s.len && rc == 0) {
        size_t n = mk_str_utf8_seq(u + i, s.len - i);
        if (n == 0) {
            rc = mk_buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        } else {
            rc = mk_buf_append(&b, u + i, n);
            i += n;
        }
    }
    if (rc == 0)
        v = json_stringn(b.data ? b.data : "", b.len);
    mk_buf_free(&b);
    return v;
}

/* Sets o[key] = v (stealing v); returns -1 when v is NULL or the set fails. */
static int jset(json_t *o, const char *key, json_t *v)
{
    if (v == NULL)
        return -1;
    return json_object_set_new(o, key, v);
}

static json_t *headers_json(const entry_t *e)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int rc = 0;
    for (size_t i = 0; i < e->nheaders && rc == 0; i++) {
        /* Group repeated names under the first spelling seen, ignoring case as HTTP does. */
        size_t first = i;
        for (size_t k = 0; k < i; k++) {
            if (mk_str_caseeq(e->headers[k].name, e->headers[i].name)) {
                first = k;
                break;
            }
        }
        json_t *key = jstr(e->headers[first].name);
        if (key == NULL) {
            rc = -1;
            break;
        }
        const char *name = json_string_value(key);
        json_t *arr = json_object_get(o, name);
        if (arr == NULL) {
            arr = json_array();
            rc = jset(o, name, arr);
        }
        if (rc == 0)
            rc = json_array_append_new(arr, jstr(e->headers[i].value));
        json_decref(key);
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *entry_json(const entry_t *e)
{
    json_t *o = json_object(), *req = json_object(), *resp = json_object();
    char id[24];
    int rc = (o && req && resp) ? 0 : -1;
    snprintf(id, sizeof id, "%llu", (unsigned long long)e->id);
    if (rc == 0) {
        rc |= jset(o, "id", json_string(id));
        rc |= jset(o, "timestamp", json_integer(e->ts_ms));
        rc |= jset(o, "namespace", jstr(e->namespace_));
        rc |= jset(o, "mockId", e->mock_id.len ? jstr(e->mock_id) : json_null());
        rc |= jset(req, "method", jstr(e->method));
        rc |= jset(req, "path", jstr(e->path));
        rc |= jset(req, "query", jstr(e->query));
        rc |= jset(req, "headers", headers_json(e));
        rc |= jset(req, "body", jstr(e->body));
        rc |= jset(req, "bodyTruncated", json_boolean(e->body_truncated));
        if (!e->body_truncated && e->body.len) {
            json_t *parsed = json_loadb(e->body.base, e->body.len, JSON_DECODE_ANY, NULL);
            if (parsed)
                rc |= jset(req, "json", parsed);
        }
        rc |= jset(resp, "status", json_integer(e->status));
        if (e->response.len)
            rc |= jset(resp, "body", jstr(e->response));
        rc |= jset(o, "durationMs", json_real(e->duration_ms));
        rc |= jset(o, "requestId", jstr(e->request_id));
        rc |= jset(o, "protocol", e->protocol.len ? jstr(e->protocol) : json_string("http"));
        if (e->operation.len)
            rc |= jset(o, "operation", jstr(e->operation));
        rc |= json_object_set(o, "request", req);
        rc |= json_object_set(o, "response", resp);
    }
    json_decref(req);
    json_decref(resp);
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- query ---- */

static bool cstr_eq(mk_str_t s, const char *want)
{
    return want == NULL || mk_str_eq_cstr(s, want);
}

/* Entries recorded without a protocol are plain HTTP. */
static bool protocol_eq(mk_str_t protocol, const char *want)
{
    return cstr_eq(protocol.len ? protocol : MK_STR_LIT("http"), want);
}

typedef struct query_ctx {
    const mk_journal_filter_t *f;
    json_t *out;
    size_t matched;
    bool failed;
} query_ctx_t;

static bool filter_holds(const mk_journal_filter_t *f, const entry_t *e)
{
    if (!cstr_eq(e->namespace_, f->namespace_) || !cstr_eq(e->mock_id, f->mock_id) ||
        !cstr_eq(e->path, f->path) || !protocol_eq(e->protocol, f->protocol))
        return false;
    if (f->method && !mk_str_caseeq(e->method, mk_str_of(f->method)))
        return false;
    return f->status == 0 || e->status == f->status;
}

static bool query_visit(const entry_t *e, void *arg)
{
    query_ctx_t *q = arg;
    const mk_journal_filter_t *f = q->f;
    if (!filter_holds(f, e))
        return true;
    size_t index = q->matched++;
    if (q->failed || index < f->offset || (f->limit && index - f->offset >= f->limit))
        return true;
    if (json_array_append_new(q->out, entry_json(e)) != 0)
        q->failed = true;
    return true;
}

json_t *mk_journal_query(mk_journal_t *j, const mk_journal_filter_t *f, size_t *total)
{
    mk_journal_filter_t all = {0};
    query_ctx_t q = {.f = f ? f : &all, .out = json_array()};
    if (q.out == NULL)
        return NULL;
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    shared_refresh(j);
    store_foreach_newest(j, query_visit, &q);
    pthread_mutex_unlock(&j->mu);
    if (q.failed) {
        json_decref(q.out);
        return NULL;
    }
    if (total)
        *total = q.matched;
    return q.out;
}

uint64_t mk_journal_last_id(mk_journal_t *j)
{
    return atomic_load_explicit(&j->last_id, memory_order_acquire);
}

int mk_journal_tail(mk_journal_t *j, const mk_journal_filter_t *f, uint64_t *after_id, size_t max,
                    json_t **out, size_t *skipped)
{
    mk_journal_filter_t all = {0};
    if (f == NULL)
        f = &all;
    *skipped = 0;
    *out = json_array();
    if (*out == NULL)
        return MK_ENOMEM;
    /* A worker's loop polls this: it must never wait behind the drainer. */
    if (pthread_mutex_trylock(&j->mu) != 0)
        return MK_EUNAVAIL;
    /* Ids grow along the store, so the new entries are its newest ones: walk back to the first
     * new one while counting matches, then render only the last max of them. */
    const entry_t *first = NULL;
    size_t matched = 0;
    for (const entry_t *e = j->store.newest; e && e->id > *after_id; e = e->prev) {
        if (!filter_holds(f, e))
            continue;
        if (++matched <= max)
            first = e;
        else
            ++*skipped;
    }
    int rc = 0;
    for (const entry_t *e = first; e && rc == 0; e = e->next)
        if (filter_holds(f, e))
            rc = json_array_append_new(*out, entry_json(e));
    if (j->store.newest && j->store.newest->id > *after_id)
        *after_id = j->store.newest->id;
    pthread_mutex_unlock(&j->mu);
    return rc == 0 ? 0 : MK_ENOMEM;
}

/* ---- count (verification) ---- */

enum hdr_kind { HDR_EQUAL, HDR_CONTAINS, HDR_MATCHES };

typedef struct hdr_cond {
    mk_str_t name, value;
    enum hdr_kind kind;
    bool has_re;
    regex_t re;
} hdr_cond_t;

enum { RE_URL, RE_PATH, RE_URL_PATH, RE_COUNT };
static const char *const re_keys[RE_COUNT] = {"urlPattern", "pathPattern", "urlPathPattern"};

typedef struct pattern {
    const char *method; /* NULL: any */
    const char *url, *path, *url_path, *mock_id, *namespace_, *protocol, *operation;
    mk_str_t body_contains;
    bool has_body_contains;
    bool has_re[RE_COUNT];
    regex_t re[RE_COUNT];
    hdr_cond_t *hdrs;
    size_t nhdrs;
    mk_buf_t url_buf; /* scratch for path?query */
    size_t count;
    bool failed;
} pattern_t;

static void pattern_release(pattern_t *p)
{
    for (int i = 0; i < RE_COUNT; i++) {
        if (p->has_re[i])
            regfree(&p->re[i]);
    }
    for (size_t i = 0; i < p->nhdrs; i++) {
        if (p->hdrs[i].has_re)
            regfree(&p->hdrs[i].re);
    }
    free(p->hdrs);
    mk_buf_free(&p->url_buf);
}

static int compile_re(regex_t *re, const char *src, const char *field, mk_err_t *err)
{
    int rc = regcomp(re, src, REG_EXTENDED);
    if (rc == 0)
        return 0;
    char msg[256];
    regerror(rc, re, msg, sizeof msg);
    return mk_err_set(err, MK_EINVAL, "%s: invalid regular expression \"%s\": %s", field, src, msg);
}

/* True when re matches the whole of s. POSIX regexec reports the leftmost-longest match, so the
 * whole string matches exactly when that match spans it. */
static bool re_full(const regex_t *re, const char *s, size_t len)
{
    regmatch_t m[1];
    if (regexec(re, s, 1, m, 0) != 0)
        return false;
    return m[0].rm_so == 0 && (size_t)m[0].rm_eo == len;
}

static int string_field(const json_t *v, const char *field, const char **out, mk_err_t *err)
{
    if (!json_is_string(v))
        return mk_err_set(err, MK_EINVAL, "%s: must be a string", field);
    *out = json_string_value(v);
    return 0;
}

static int compile_header(hdr_cond_t *h, const char *name, const json_t *spec, mk_err_t *err)
{
    h->name = mk_str_of(name);
    const char *value = NULL;
    if (json_is_string(spec)) {
        h->kind = HDR_EQUAL;
        value = json_string_value(spec);
        h->value = (mk_str_t){value, json_string_length(spec)};
        return 0;
    }
    if (!json_is_object(spec) || json_object_size(spec) != 1)
        return mk_err_set(err, MK_EINVAL,
                          "headers.%s: must be a string or an object with one of equalTo, "
                          "contains, matches",
                          name);
    const char *op;
    const json_t *arg;
    json_object_foreach((json_t *)spec, op, arg)
    {
        if (strcmp(op, "equalTo") == 0)
            h->kind = HDR_EQUAL;
        else if (strcmp(op, "contains") == 0)
            h->kind = HDR_CONTAINS;
        else if (strcmp(op, "matches") == 0)
            h->kind = HDR_MATCHES;
        else
            return mk_err_set(err, MK_EINVAL, "headers.%s: unknown matcher \"%s\"", name, op);
        if (!json_is_string(arg))
            return mk_err_set(err, MK_EINVAL, "headers.%s.%s: must be a string", name, op);
        value = json_string_value(arg);
        h->value = (mk_str_t){value, json_string_length(arg)};
        if (h->kind == HDR_MATCHES) {
            char field[160];
            snprintf(field, sizeof field, "headers.%s.matches", name);
            int rc = compile_re(&h->re, value, field, err);
            if (rc != 0)
                return rc;
            h->has_re = true;
        }
    }
    return 0;
}

static int pattern_compile(pattern_t *p, const json_t *pattern, mk_err_t *err)
{
    if (!json_is_object(pattern))
        return mk_err_set(err, MK_EINVAL, "request pattern must be a JSON object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)pattern, key, v)
    {
        int rc = 0;
        if (strcmp(key, "method") == 0) {
            rc = string_field(v, key, &p->method, err);
            if (rc == 0 && strcmp(p->method, "ANY") == 0)
                p->method = NULL;
        } else if (strcmp(key, "url") == 0) {
            rc = string_field(v, key, &p->url, err);
        } else if (strcmp(key, "path") == 0) {
            rc = string_field(v, key, &p->path, err);
        } else if (strcmp(key, "urlPath") == 0) {
            rc = string_field(v, key, &p->url_path, err);
        } else if (strcmp(key, "mockId") == 0) {
            rc = string_field(v, key, &p->mock_id, err);
        } else if (strcmp(key, "namespace") == 0) {
            rc = string_field(v, key, &p->namespace_, err);
        } else if (strcmp(key, "protocol") == 0) {
            rc = string_field(v, key, &p->protocol, err);
        } else if (strcmp(key, "operation") == 0) {
            rc = string_field(v, key, &p->operation, err);
        } else if (strcmp(key, "bodyContains") == 0) {
            const char *s = NULL;
            rc = string_field(v, key, &s, err);
            p->body_contains = (mk_str_t){s, rc == 0 ? json_string_length(v) : 0};
            p->has_body_contains = rc == 0;
        } else if (strcmp(key, "headers") == 0) {
            if (!json_is_object(v))
                return mk_err_set(err, MK_EINVAL, "headers: must be an object");
            p->hdrs = calloc(json_object_size(v) + 1, sizeof *p->hdrs);
            if (p->hdrs == NULL)
                return mk_err_set(err, MK_ENOMEM, "out of memory");
            const char *name;
            const json_t *spec;
            json_object_foreach((json_t *)v, name, spec)
            {
                rc = compile_header(&p->hdrs[p->nhdrs], name, spec, err);
                /* Counted even on failure: compile_header sets has_re only after success. */
                p->nhdrs++;
                if (rc != 0)
                    return rc;
            }
        } else {
            int which = -1;
            for (int i = 0; i < RE_COUNT; i++) {
                if (strcmp(key, re_keys[i]) == 0)
                    which = i;
            }
            if (which < 0)
                return mk_err_set(err, MK_EINVAL, "unknown request pattern key \"%s\"", key);
            const char *src = NULL;
            rc = string_field(v, key, &src, err);
            if (rc == 0)
                rc = compile_re(&p->re[which], src, key, err);
            p->has_re[which] = rc == 0;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool header_holds(const hdr_cond_t *h, const entry_t *e)
{
    for (size_t i = 0; i < e->nheaders; i++) {
        const mk_header_t *hd = &e->headers[i];
        if (!mk_str_caseeq(hd->name, h->name))
            continue;
        switch (h->kind) {
        case HDR_EQUAL:
            if (mk_str_eq(hd->value, h->value))
                return true;
            break;
        case HDR_CONTAINS:
            if (h->value.len == 0 ||
                memmem(hd->value.base, hd->value.len, h->value.base, h->value.len) != NULL)
                return true;
            break;
        case HDR_MATCHES:
            if (re_full(&h->re, hd->value.base, hd->value.len))
                return true;
            break;
        }
    }
    return false;
}

static bool pattern_holds(pattern_t *p, const entry_t *e)
{
    if (p->method && !mk_str_caseeq(e->method, mk_str_of(p->method)))
        return false;
    if (!cstr_eq(e->path, p->path) || !cstr_eq(e->path, p->url_path) ||
        !cstr_eq(e->mock_id, p->mock_id) || !cstr_eq(e->namespace_, p->namespace_) ||
        !protocol_eq(e->protocol, p->protocol) || !cstr_eq(e->operation, p->operation))
        return false;
    if (p->has_body_contains && p->body_contains.len &&
        memmem(e->body.base, e->body.len, p->body_contains.base, p->body_contains.len) == NULL)
        return false;
    if (p->has_re[RE_PATH] && !re_full(&p->re[RE_PATH], e->path.base, e->path.len))
        return false;
    if (p->has_re[RE_URL_PATH] && !re_full(&p->re[RE_URL_PATH], e->path.base, e->path.len))
        return false;
    for (size_t i = 0; i < p->nhdrs; i++) {
        if (!header_holds(&p->hdrs[i], e))
            return false;
    }
    if (p->url || p->has_re[RE_URL]) {
        mk_buf_reset(&p->url_buf);
        int rc = mk_buf_append(&p->url_buf, e->path.base, e->path.len);
        if (rc == 0 && e->query.len) {
            rc = mk_buf_append(&p->url_buf, "?", 1);
            if (rc == 0)
                rc = mk_buf_append(&p->url_buf, e->query.base, e->query.len);
        }
        if (rc != 0) {
            p->failed = true;
            return false;
        }
        mk_str_t url = {p->url_buf.data, p->url_buf.len};
        if (p->url && !mk_str_eq_cstr(url, p->url))
            return false;
        if (p->has_re[RE_URL] && !re_full(&p->re[RE_URL], url.base, url.len))
            return false;
    }
    return true;
}

static bool count_visit(const entry_t *e, void *arg)
{
    pattern_t *p = arg;
    if (pattern_holds(p, e))
        p->count++;
    return !p->failed;
}

int mk_journal_count(mk_journal_t *j, const json_t *pattern, size_t *count, mk_err_t *err)
{
    pattern_t p = {0};
    mk_buf_init(&p.url_buf, 0);
    int rc = pattern_compile(&p, pattern, err);
    if (rc != 0)
        goto out;
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    shared_refresh(j);
    store_foreach_newest(j, count_visit, &p);
    pthread_mutex_unlock(&j->mu);
    if (p.failed) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory while matching the journal");
        goto out;
    }
    *count = p.count;
out:
    pattern_release(&p);
    return rc;
}

/* ---- unmatched aggregate ---- */

static int group_cmp(const void *a, const void *b)
{
    const group_t *x = *(const group_t *const *)a, *y = *(const group_t *const *)b;
    if (x->hits != y->hits)
        return x->hits < y->hits ? 1 : -1;
    if (x->last_ms != y->last_ms)
        return x->last_ms < y->last_ms ? 1 : -1;
    return 0;
}

json_t *mk_journal_undefined(mk_journal_t *j)
{
    json_t *out = json_array();
    group_t **list = NULL;
    size_t n = 0;
    if (out == NULL)
        return NULL;
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    shared_refresh(j);
    list = malloc((active(j)->ngroups + 1) * sizeof *list);
    if (list == NULL)
        goto fail;
    for (group_t *g = active(j)->lru_oldest; g; g = g->newer)
        list[n++] = g;
    qsort(list, n, sizeof *list, group_cmp);
    for (size_t i = 0; i < n; i++) {
        const group_t *g = list[i];
        json_t *o = json_object();
        int rc = o ? 0 : -1;
        if (rc == 0) {
            char id[17];
            snprintf(id, sizeof id, "%016llx", (unsigned long long)g->hash);
            rc |= jset(o, "id", json_string(id));
            rc |= jset(o, "namespace", jstr(g->namespace_));
            rc |= jset(o, "method", jstr(g->method));
            rc |= jset(o, "path", jstr(g->path));
            rc |= jset(o, "hitCount", json_integer((json_int_t)g->hits));
            rc |= jset(o, "firstSeen", json_integer(g->first_ms));
            rc |= jset(o, "lastSeen", json_integer(g->last_ms));
        }
        if (rc != 0 || json_array_append_new(out, o) != 0) {
            if (rc != 0)
                json_decref(o);
            goto fail;
        }
    }
    pthread_mutex_unlock(&j->mu);
    free(list);
    return out;

fail:
    pthread_mutex_unlock(&j->mu);
    free(list);
    json_decref(out);
    return NULL;
}

/* Removes the groups whose id is in ids from s (all of them when ids is NULL). */
static size_t mem_store_forget_groups(mem_store_t *s, const uint64_t *ids, size_t n, bool all)
{
    size_t removed = 0;
    group_t *g = s->lru_oldest;
    while (g) {
        group_t *next = g->newer;
        bool hit = all;
        for (size_t i = 0; !hit && i < n; i++)
            hit = g->hash == ids[i];
        if (hit) {
            group_remove(s, g);
            removed++;
        }
        g = next;
    }
    return removed;
}

size_t mk_journal_undefined_forget(mk_journal_t *j, const char *const *ids, size_t n)
{
    uint64_t *keys = calloc(n ? n : 1, sizeof *keys);
    size_t k = 0, removed = 0;
    if (keys == NULL)
        return 0;
    for (size_t i = 0; ids && i < n; i++) {
        char *end;
        unsigned long long v = strtoull(ids[i], &end, 16);
        if (*ids[i] && *end == '\0')
            keys[k++] = (uint64_t)v;
    }
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    removed = mem_store_forget_groups(&j->store, keys, k, ids == NULL);
    if (j->shared != NULL)
        mem_store_forget_groups(&j->view, keys, k, ids == NULL);
    pthread_mutex_unlock(&j->mu);
    free(keys);
    return removed;
}

static size_t mem_store_forget_mock(mem_store_t *s, mk_str_t mock_id)
{
    size_t removed = 0;
    entry_t *e = s->oldest;
    while (e) {
        entry_t *next = e->next;
        if (mk_str_eq(e->mock_id, mock_id)) {
            mem_store_unlink(s, e);
            free(e);
            removed++;
        }
        e = next;
    }
    return removed;
}

size_t mk_journal_forget_mock(mk_journal_t *j, const char *mock_id)
{
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    size_t removed = mem_store_forget_mock(&j->store, mk_str_of(mock_id));
    if (j->shared != NULL)
        mem_store_forget_mock(&j->view, mk_str_of(mock_id));
    pthread_mutex_unlock(&j->mu);
    return removed;
}

void mk_journal_clear(mk_journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    mem_store_clear(&j->store);
    if (j->shared != NULL) {
        mk_err_t err;
        mk_store_history_clear(j->shared, MK_STR_LIT(SHARED_VIEW), &err);
        mem_store_clear(&j->view);
    }
    pthread_mutex_unlock(&j->mu);
}

size_t mk_journal_bytes(mk_journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    size_t n = j->store.bytes;
    pthread_mutex_unlock(&j->mu);
    return n;
}

size_t mk_journal_entries(mk_journal_t *j)
{
    pthread_mutex_lock(&j->mu);
    drain_locked(j);
    size_t n = j->store.count;
    pthread_mutex_unlock(&j->mu);
    return n;
}

uint64_t mk_journal_dropped(mk_journal_t *j)
{
    uint64_t n = atomic_load_explicit(&j->misuse_drops, memory_order_relaxed);
    for (unsigned i = 0; i < j->nproducers; i++)
        n += atomic_load_explicit(&j->rings[i].dropped, memory_order_relaxed);
    return n;
}

/* ---- shared journal on the storage layer ---- */

void mk_journal_share(mk_journal_t *j, mk_store_t *store)
{
    /* A memory storage layer is private to this process: the local journal already is that. */
    if (store == NULL || strcmp(mk_store_backend(store), "memory") == 0)
        return;
    pthread_mutex_lock(&j->mu);
    j->shared = store;
    pthread_mutex_unlock(&j->mu);
}

/* One entry as a compact JSON record for the history table. */
static char *entry_record(const entry_t *e)
{
    json_t *hdrs = json_array();
    for (size_t i = 0; hdrs != NULL && i < e->nheaders; i++)
        json_array_append_new(
            hdrs, json_pack("[o,o]", jstr(e->headers[i].name), jstr(e->headers[i].value)));
    json_t *o =
        json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:i, s:f, s:o, s:o, s:o, s:o, "
                  "s:o}",
                  "ts", (json_int_t)e->ts_ms, "ns", jstr(e->namespace_), "mock", jstr(e->mock_id),
                  "method", jstr(e->method), "path", jstr(e->path), "query", jstr(e->query), "body",
                  jstr(e->body), "bt", e->body_truncated, "status", e->status, "dur",
                  e->duration_ms, "rid", jstr(e->request_id), "headers", hdrs ? hdrs : json_array(),
                  "proto", jstr(e->protocol), "op", jstr(e->operation), "resp", jstr(e->response));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void shared_queue(mk_journal_t *j, const entry_t *e)
{
    if (j->npending == j->cappending) {
        size_t cap = j->cappending ? j->cappending * 2 : 64;
        mk_store_history_rec_t *p = realloc(j->pending, cap * sizeof *p);
        if (p == NULL)
            return;
        j->pending = p;
        j->cappending = cap;
    }
    char *text = entry_record(e);
    if (text == NULL)
        return;
    j->pending[j->npending++] = (mk_store_history_rec_t){
        .ns = MK_STR_LIT(SHARED_VIEW), .ts_ms = e->ts_ms, .record = mk_str_of(text)};
}

/* Sends the queued records in one round trip. If the storage layer is down they are dropped
 * from the shared journal (this node's own journal still has them). */
static void shared_flush(mk_journal_t *j)
{
    if (j->npending == 0)
        return;
    mk_err_t err;
    mk_store_history_append_many(j->shared, j->pending, j->npending, &err);
    for (size_t i = 0; i < j->npending; i++)
        free((char *)j->pending[i].record.base);
    j->npending = 0;
}

static mk_str_t jslice(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? (mk_str_t){json_string_value(v), json_string_length(v)}
                             : (mk_str_t){"", 0};
}

static int view_add(void *ud, mk_str_t key, mk_str_t value)
{
    mk_journal_t *j = ud;
    (void)key;
    json_t *o = json_loadb(value.base, value.len, 0, NULL);
    if (o == NULL)
        return 0;
    json_t *hdrs = json_object_get(o, "headers");
    size_t n = json_array_size(hdrs);
    mk_header_t *h = n ? calloc(n, sizeof *h) : NULL;
    if (n && h == NULL) {
        json_decref(o);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *pair = json_array_get(hdrs, i);
        json_t *nm = json_array_get(pair, 0), *val = json_array_get(pair, 1);
        h[i].name =
            (mk_str_t){json_string_value(nm) ? json_string_value(nm) : "", json_string_length(nm)};
        h[i].value = (mk_str_t){json_string_value(val) ? json_string_value(val) : "",
                                json_string_length(val)};
    }
    mk_journal_rec_t rec = {
        .ts_ms = json_integer_value(json_object_get(o, "ts")),
        .namespace_ = jslice(o, "ns"),
        .mock_id = jslice(o, "mock"),
        .method = jslice(o, "method"),
        .path = jslice(o, "path"),
        .query = jslice(o, "query"),
        .body = jslice(o, "body"),
        .headers = h,
        .nheaders = n,
        .status = (int)json_integer_value(json_object_get(o, "status")),
        .duration_ms = json_number_value(json_object_get(o, "dur")),
        .request_id = jslice(o, "rid"),
        .protocol = jslice(o, "proto"),
        .operation = jslice(o, "op"),
        .response = jslice(o, "resp"),
    };
    entry_t *e = entry_build(j, &rec);
    if (e != NULL) {
        e->body_truncated = e->body_truncated || json_is_true(json_object_get(o, "bt"));
        e->id = ++j->next_id;
        if (e->mock_id.len == 0)
            mem_store_note_unmatched(&j->view, e);
        mem_store_add(&j->view, e, j->max_bytes);
    }
    free(h);
    json_decref(o);
    return 0;
}

/* Rebuilds the view from the shared history. If the storage layer is down, the view is this
 * node's own entries' last refresh (queries still answer). Caller holds mu. */
static void shared_refresh(mk_journal_t *j)
{
    if (j->shared == NULL)
        return;
    mk_err_t err;
    mem_store_clear(&j->view);
    mk_store_history_each(j->shared, MK_STR_LIT(SHARED_VIEW), 0, view_add, j, &err);
}

/* At free: sends what is queued, then releases the queue. */
static void shared_flush_free(mk_journal_t *j)
{
    if (j->shared != NULL)
        shared_flush(j);
    free(j->pending);
    j->pending = NULL;
}
