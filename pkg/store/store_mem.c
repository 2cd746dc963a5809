/* The memory backend: records in 64 lock stripes chosen by the full key's hash (no global lock on
 * the hot path), lazy expiry on access plus a background sweep that frees a bounded number of
 * records per stripe per pass; history as a time-ordered array per namespace. */
#include "store/store_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STRIPES         64
#define STRIPE_BUCKETS0 16
#define SWEEP_PER_PASS  1000 /* records examined per stripe per sweep pass */
#define HIST_STRIPES    16

typedef struct mrec {
    struct mrec *next;
    uint64_t hash;
    int64_t expires; /* monotonic ms; 0 = never */
    char *val;       /* NUL-terminated for convenience; vlen excludes it */
    size_t vlen;
    size_t klen;
    char key[];
} mrec_t;

typedef struct stripe {
    _Alignas(64) pthread_mutex_t mu;
    mrec_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t bytes;
    size_t sweep_cursor; /* next bucket the sweep examines */
} stripe_t;

typedef struct hrec {
    int64_t ts;
    size_t len;
    char data[];
} hrec_t;

/* One namespace's history: items[head .. head+count) sorted by ts. */
typedef struct mhist {
    struct mhist *next;
    size_t nslen;
    char ns[MK_STORE_NS_MAX + 1];
    hrec_t **items;
    size_t head, count, cap;
} mhist_t;

typedef struct hstripe {
    pthread_mutex_t mu;
    mhist_t *list;
} hstripe_t;

struct store_mem {
    stripe_t stripes[STRIPES];
    hstripe_t hist[HIST_STRIPES];
    pthread_t sweeper;
    pthread_mutex_t sweep_mu;
    pthread_cond_t sweep_cv;
    bool stop;
};

static uint64_t hash_bytes(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then a finalizer to spread the bits */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static stripe_t *stripe_of(store_mem_t *m, uint64_t h)
{
    return &m->stripes[h >> 58];
}

static bool rec_expired(const mrec_t *r, int64_t now)
{
    return r->expires != 0 && r->expires <= now;
}

static size_t rec_bytes(const mrec_t *r)
{
    return r->klen + r->vlen;
}

static void rec_free(mrec_t *r)
{
    if (r == NULL)
        return;
    free(r->val);
    free(r);
}

static void rec_free_list(mrec_t *r)
{
    while (r != NULL) {
        mrec_t *next = r->next;
        rec_free(r);
        r = next;
    }
}

/* Returns the link pointing at the record with this key, or at the NULL ending its chain. */
static mrec_t **stripe_find(stripe_t *st, uint64_t h, const char *key, size_t klen)
{
    mrec_t **link = &st->buckets[h & (st->nbuckets - 1)];
    while (*link != NULL) {
        mrec_t *r = *link;
        if (r->hash == h && r->klen == klen && memcmp(r->key, key, klen) == 0)
            return link;
        link = &r->next;
    }
    return link;
}

static void stripe_unlink(stripe_t *st, mrec_t **link)
{
    mrec_t *r = *link;
    *link = r->next;
    r->next = NULL;
    st->count--;
    st->bytes -= rec_bytes(r);
}

/* Unlinks *link onto the list *dead, whose records are freed (rec_free_list) once the stripe's
 * lock is released. */
static void stripe_drop(stripe_t *st, mrec_t **link, mrec_t **dead)
{
    mrec_t *r = *link;
    stripe_unlink(st, link);
    r->next = *dead;
    *dead = r;
}

/* Doubles the bucket array when the load passes 1; on allocation failure the chains just grow. */
static void stripe_grow(stripe_t *st)
{
    if (st->count < st->nbuckets)
        return;
    size_t n = st->nbuckets * 2;
    mrec_t **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < st->nbuckets; i++) {
        mrec_t *r = st->buckets[i];
        while (r != NULL) {
            mrec_t *next = r->next;
            size_t j = r->hash & (n - 1);
            r->next = b[j];
            b[j] = r;
            r = next;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
    st->sweep_cursor = 0;
}

static void stripe_insert(stripe_t *st, mrec_t *r)
{
    stripe_grow(st);
    size_t j = r->hash & (st->nbuckets - 1);
    r->next = st->buckets[j];
    st->buckets[j] = r;
    st->count++;
    st->bytes += rec_bytes(r);
}

static char *copy_bytes(const char *p, size_t len)
{
    char *c = malloc(len + 1);
    if (c == NULL)
        return NULL;
    if (len > 0)
        memcpy(c, p, len);
    c[len] = '\0';
    return c;
}

static mrec_t *rec_new(const store_key_t *k, uint64_t h)
{
    mrec_t *r = malloc(sizeof *r + k->len + 1);
    if (r == NULL)
        return NULL;
    r->next = NULL;
    r->hash = h;
    r->expires = 0;
    r->val = NULL;
    r->vlen = 0;
    r->klen = k->len;
    memcpy(r->key, k->buf, k->len + 1);
    return r;
}

/* Frees up to SWEEP_PER_PASS records' worth of expired ones in each stripe, resuming where the
 * previous pass stopped, so one pass never holds a stripe for long. */
static void sweep_pass(store_mem_t *m)
{
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *st = &m->stripes[i];
        mrec_t *dead = NULL;
        pthread_mutex_lock(&st->mu);
        int64_t now = mk_store_mono_ms();
        size_t examined = 0, b = st->sweep_cursor;
        for (size_t visited = 0; visited < st->nbuckets && examined < SWEEP_PER_PASS; visited++) {
            mrec_t **link = &st->buckets[b];
            while (*link != NULL) {
                examined++;
                if (rec_expired(*link, now)) {
                    stripe_drop(st, link, &dead);
                } else {
                    link = &(*link)->next;
                }
            }
            b = (b + 1) & (st->nbuckets - 1);
        }
        st->sweep_cursor = b;
        pthread_mutex_unlock(&st->mu);
        rec_free_list(dead);
    }
}

static void *sweeper_main(void *arg)
{
    mk_store_t *s = arg;
    store_mem_t *m = s->mem;
    pthread_mutex_lock(&m->sweep_mu);
    while (!m->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (s->sweep_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(s->sweep_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!m->stop && pthread_cond_timedwait(&m->sweep_cv, &m->sweep_mu, &ts) != ETIMEDOUT) {
        }
        if (m->stop)
            break;
        pthread_mutex_unlock(&m->sweep_mu);
        sweep_pass(m);
        pthread_mutex_lock(&m->sweep_mu);
    }
    pthread_mutex_unlock(&m->sweep_mu);
    return NULL;
}

int mk_store_mem_open(mk_store_t *s, mk_err_t *err)
{
    store_mem_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    int i = 0;
    for (; i < STRIPES; i++) {
        m->stripes[i].buckets = calloc(STRIPE_BUCKETS0, sizeof(mrec_t *));
        if (m->stripes[i].buckets == NULL)
            goto nomem;
        m->stripes[i].nbuckets = STRIPE_BUCKETS0;
        pthread_mutex_init(&m->stripes[i].mu, NULL);
    }
    for (int j = 0; j < HIST_STRIPES; j++)
        pthread_mutex_init(&m->hist[j].mu, NULL);
    pthread_mutex_init(&m->sweep_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->sweep_cv, &ca);
    pthread_condattr_destroy(&ca);
    s->mem = m;
    int e = pthread_create(&m->sweeper, NULL, sweeper_main, s);
    if (e != 0) {
        s->mem = NULL;
        pthread_cond_destroy(&m->sweep_cv);
        pthread_mutex_destroy(&m->sweep_mu);
        for (int j = 0; j < HIST_STRIPES; j++)
            pthread_mutex_destroy(&m->hist[j].mu);
        for (int j = 0; j < STRIPES; j++) {
            pthread_mutex_destroy(&m->stripes[j].mu);
            free(m->stripes[j].buckets);
        }
        free(m);
        return mk_err_set(err, MK_EINTERNAL, "store: cannot start the sweep thread: %s",
                          strerror(e));
    }
    return 0;
nomem:
    while (i-- > 0) {
        pthread_mutex_destroy(&m->stripes[i].mu);
        free(m->stripes[i].buckets);
    }
    free(m);
    return mk_err_set(err, MK_ENOMEM, "store: out of memory");
}

static void hist_free(mhist_t *h)
{
    for (size_t i = 0; i < h->count; i++)
        free(h->items[h->head + i]);
    free(h->items);
    free(h);
}

void mk_store_mem_close(mk_store_t *s)
{
    store_mem_t *m = s->mem;
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->sweep_mu);
    m->stop = true;
    pthread_cond_signal(&m->sweep_cv);
    pthread_mutex_unlock(&m->sweep_mu);
    pthread_join(m->sweeper, NULL);
    pthread_cond_destroy(&m->sweep_cv);
    pthread_mutex_destroy(&m->sweep_mu);
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *st = &m->stripes[i];
        for (size_t b = 0; b < st->nbuckets; b++) {
            mrec_t *r = st->buckets[b];
            while (r != NULL) {
                mrec_t *next = r->next;
                rec_free(r);
                r = next;
            }
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->mu);
    }
    for (int i = 0; i < HIST_STRIPES; i++) {
        mhist_t *h = m->hist[i].list;
        while (h != NULL) {
            mhist_t *next = h->next;
            hist_free(h);
            h = next;
        }
        pthread_mutex_destroy(&m->hist[i].mu);
    }
    free(m);
    s->mem = NULL;
}

int mk_store_mem_get(mk_store_t *s, const store_key_t *k, mk_buf_t *out, mk_err_t *err)
{
    uint64_t h = hash_bytes(k->buf, k->len);
    stripe_t *st = stripe_of(s->mem, h);
    mrec_t *dead = NULL;
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    mrec_t **link = stripe_find(st, h, k->buf, k->len);
    if (*link != NULL && rec_expired(*link, mk_store_mono_ms())) {
        dead = *link;
        stripe_unlink(st, link);
    }
    if (*link == NULL || dead != NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "store: no record at key");
    } else {
        rc = mk_buf_append(out, (*link)->val, (*link)->vlen);
        if (rc != 0)
            mk_err_set(err, rc, "store: value of %zu bytes does not fit the output buffer",
                       (*link)->vlen);
    }
    pthread_mutex_unlock(&st->mu);
    rec_free(dead);
    return rc;
}

int mk_store_mem_set(mk_store_t *s, const store_key_t *k, mk_str_t value, int64_t ttl_ms,
                     mk_err_t *err)
{
    uint64_t h = hash_bytes(k->buf, k->len);
    stripe_t *st = stripe_of(s->mem, h);
    /* Allocate outside the lock; free the replaced value outside it too. */
    char *val = copy_bytes(value.base, value.len);
    mrec_t *fresh = rec_new(k, h);
    if (val == NULL || fresh == NULL) {
        free(val);
        rec_free(fresh);
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    }
    int64_t expires = ttl_ms > 0 ? mk_store_mono_ms() + ttl_ms : 0;
    char *old = NULL;
    pthread_mutex_lock(&st->mu);
    mrec_t **link = stripe_find(st, h, k->buf, k->len);
    if (*link != NULL) {
        mrec_t *r = *link;
        old = r->val;
        st->bytes = st->bytes - r->vlen + value.len;
        r->val = val;
        r->vlen = value.len;
        r->expires = expires;
    } else {
        fresh->val = val;
        fresh->vlen = value.len;
        fresh->expires = expires;
        stripe_insert(st, fresh);
        fresh = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    free(old);
    rec_free(fresh);
    return 0;
}

int mk_store_mem_delete(mk_store_t *s, const store_key_t *k, mk_err_t *err)
{
    (void)err;
    uint64_t h = hash_bytes(k->buf, k->len);
    stripe_t *st = stripe_of(s->mem, h);
    mrec_t *dead = NULL;
    pthread_mutex_lock(&st->mu);
    mrec_t **link = stripe_find(st, h, k->buf, k->len);
    if (*link != NULL) {
        dead = *link;
        stripe_unlink(st, link);
    }
    pthread_mutex_unlock(&st->mu);
    rec_free(dead);
    return 0;
}

int mk_store_mem_incr(mk_store_t *s, const store_key_t *k, int64_t by, int64_t *result,
                      mk_err_t *err)
{
    uint64_t h = hash_bytes(k->buf, k->len);
    stripe_t *st = stripe_of(s->mem, h);
    mrec_t *fresh = rec_new(k, h);
    char *val = malloc(24);
    if (fresh == NULL || val == NULL) {
        rec_free(fresh);
        free(val);
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    }
    char *old = NULL;
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    mrec_t **link = stripe_find(st, h, k->buf, k->len);
    mrec_t *r = *link;
    int64_t cur = 0, sum;
    if (r != NULL && rec_expired(r, mk_store_mono_ms())) {
        /* An expired record counts as absent: it restarts from 0 without a TTL, as in Redis. */
        r->expires = 0;
        free(r->val);
        r->val = NULL;
        st->bytes -= r->vlen;
        r->vlen = 0;
    } else if (r != NULL && !mk_store_parse_int(r->val, r->vlen, &cur)) {
        rc = mk_err_set(err, MK_EINVAL, "store: value at key is not an integer");
        goto unlock;
    }
    if (__builtin_add_overflow(cur, by, &sum)) {
        rc = mk_err_set(err, MK_EINVAL, "store: increment would overflow a 64-bit integer");
        goto unlock;
    }
    int n = snprintf(val, 24, "%" PRId64, sum);
    if (r == NULL) {
        fresh->val = val;
        fresh->vlen = (size_t)n;
        stripe_insert(st, fresh);
        fresh = NULL;
    } else {
        old = r->val;
        st->bytes = st->bytes - r->vlen + (size_t)n;
        r->val = val;
        r->vlen = (size_t)n;
    }
    val = NULL;
    if (result != NULL)
        *result = sum;
unlock:
    pthread_mutex_unlock(&st->mu);
    free(old);
    free(val);
    rec_free(fresh);
    return rc;
}

/* A record copied out of a stripe so callbacks run without its lock (they may call the store). */
typedef struct kv_copy {
    char *key;
    size_t klen;
    char *val;
    size_t vlen;
} kv_copy_t;

static void kv_free(kv_copy_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].val);
    }
    free(v);
}

static bool has_prefix(const mrec_t *r, const store_key_t *p)
{
    return r->klen >= p->prefix_len && memcmp(r->key, p->buf, p->prefix_len) == 0;
}

/* Copies the stripe's live records under prefix into *out; expired ones met on the way go. */
static int stripe_collect(stripe_t *st, const store_key_t *p, kv_copy_t **out, size_t *n)
{
    int rc = 0;
    mrec_t *dead = NULL;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    int64_t now = mk_store_mono_ms();
    for (size_t b = 0; b < st->nbuckets && rc == 0; b++) {
        mrec_t **link = &st->buckets[b];
        while (*link != NULL) {
            mrec_t *r = *link;
            if (!has_prefix(r, p)) {
                link = &r->next;
                continue;
            }
            if (rec_expired(r, now)) {
                stripe_drop(st, link, &dead);
                continue;
            }
            if (*n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                kv_copy_t *g = realloc(*out, nc * sizeof *g);
                if (g == NULL) {
                    rc = MK_ENOMEM;
                    break;
                }
                *out = g;
                cap = nc;
            }
            kv_copy_t *c = &(*out)[*n];
            c->klen = r->klen - p->prefix_len;
            c->key = copy_bytes(r->key + p->prefix_len, c->klen);
            c->vlen = r->vlen;
            c->val = copy_bytes(r->val, r->vlen);
            (*n)++;
            if (c->key == NULL || c->val == NULL) {
                rc = MK_ENOMEM;
                break;
            }
            link = &r->next;
        }
    }
    pthread_mutex_unlock(&st->mu);
    rec_free_list(dead);
    return rc;
}

int mk_store_mem_each(mk_store_t *s, const store_key_t *prefix, mk_store_each_cb cb, void *ud,
                      mk_err_t *err)
{
    for (int i = 0; i < STRIPES; i++) {
        kv_copy_t *v;
        size_t n;
        if (stripe_collect(&s->mem->stripes[i], prefix, &v, &n) != 0) {
            kv_free(v, n);
            return mk_err_set(err, MK_ENOMEM, "store: out of memory");
        }
        int stop = 0;
        for (size_t j = 0; j < n && stop == 0; j++)
            stop = cb(ud, (mk_str_t){v[j].key, v[j].klen}, (mk_str_t){v[j].val, v[j].vlen});
        kv_free(v, n);
        if (stop != 0)
            break;
    }
    return 0;
}

int mk_store_mem_clear(mk_store_t *s, const store_key_t *prefix, mk_err_t *err)
{
    (void)err;
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *st = &s->mem->stripes[i];
        mrec_t *dead = NULL;
        pthread_mutex_lock(&st->mu);
        for (size_t b = 0; b < st->nbuckets; b++) {
            mrec_t **link = &st->buckets[b];
            while (*link != NULL) {
                if (has_prefix(*link, prefix)) {
                    stripe_drop(st, link, &dead);
                } else {
                    link = &(*link)->next;
                }
            }
        }
        pthread_mutex_unlock(&st->mu);
        rec_free_list(dead);
    }
    return 0;
}

void mk_store_mem_stats_get(mk_store_t *s, size_t *records, size_t *bytes)
{
    size_t r = 0, b = 0;
    for (int i = 0; i < STRIPES; i++) {
        stripe_t *st = &s->mem->stripes[i];
        pthread_mutex_lock(&st->mu);
        r += st->count;
        b += st->bytes;
        pthread_mutex_unlock(&st->mu);
    }
    *records = r;
    *bytes = b;
}

/* ---- history ---- */

static hstripe_t *hist_stripe(store_mem_t *m, mk_str_t ns)
{
    return &m->hist[hash_bytes(ns.base, ns.len) % HIST_STRIPES];
}

static mhist_t *hist_find(hstripe_t *hs, mk_str_t ns)
{
    for (mhist_t *h = hs->list; h != NULL; h = h->next)
        if (h->nslen == ns.len && memcmp(h->ns, ns.base, ns.len) == 0)
            return h;
    return NULL;
}

/* Drops records older than the retention window from the front. */
static void hist_prune(const mk_store_t *s, mhist_t *h)
{
    int64_t cutoff = mk_store_wall_ms() - s->history_ms;
    while (h->count > 0 && h->items[h->head]->ts < cutoff) {
        free(h->items[h->head]);
        h->head++;
        h->count--;
    }
    if (h->count == 0)
        h->head = 0;
}

/* Index (relative to head) of the first record with ts > t, or >= t when inclusive. */
static size_t hist_bound(const mhist_t *h, int64_t t, bool inclusive)
{
    size_t lo = 0, hi = h->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = h->items[h->head + mid]->ts;
        if (inclusive ? v < t : v <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool hist_reserve(mhist_t *h)
{
    if (h->head + h->count < h->cap)
        return true;
    if (h->head > 0 && h->head >= h->cap / 2) {
        memmove(h->items, h->items + h->head, h->count * sizeof *h->items);
        h->head = 0;
        return true;
    }
    size_t nc = h->cap ? h->cap * 2 : 64;
    hrec_t **g = realloc(h->items, nc * sizeof *g);
    if (g == NULL)
        return false;
    h->items = g;
    h->cap = nc;
    return true;
}

int mk_store_mem_hist_append(mk_store_t *s, const mk_store_history_rec_t *rec, mk_err_t *err)
{
    hrec_t *r = malloc(sizeof *r + rec->record.len + 1);
    if (r == NULL)
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    r->ts = rec->ts_ms;
    r->len = rec->record.len;
    if (r->len > 0)
        memcpy(r->data, rec->record.base, r->len);
    r->data[r->len] = '\0';

    hstripe_t *hs = hist_stripe(s->mem, rec->ns);
    int rc = 0;
    pthread_mutex_lock(&hs->mu);
    mhist_t *h = hist_find(hs, rec->ns);
    if (h == NULL) {
        h = calloc(1, sizeof *h);
        if (h == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
            goto out;
        }
        memcpy(h->ns, rec->ns.base, rec->ns.len);
        h->nslen = rec->ns.len;
        h->next = hs->list;
        hs->list = h;
    }
    hist_prune(s, h);
    if (!hist_reserve(h)) {
        rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
        goto out;
    }
    /* Usually the newest; a late record is inserted after any of equal time. */
    size_t pos = h->count;
    if (h->count > 0 && h->items[h->head + h->count - 1]->ts > r->ts) {
        pos = hist_bound(h, r->ts, false);
        memmove(h->items + h->head + pos + 1, h->items + h->head + pos,
                (h->count - pos) * sizeof *h->items);
    }
    h->items[h->head + pos] = r;
    h->count++;
    r = NULL;
out:
    pthread_mutex_unlock(&hs->mu);
    free(r);
    return rc;
}

int mk_store_mem_hist_each(mk_store_t *s, mk_str_t ns, int64_t since_ms, mk_store_each_cb cb,
                           void *ud, mk_err_t *err)
{
    hstripe_t *hs = hist_stripe(s->mem, ns);
    hrec_t **copy = NULL;
    size_t n = 0;
    int rc = 0;
    pthread_mutex_lock(&hs->mu);
    mhist_t *h = hist_find(hs, ns);
    if (h != NULL) {
        hist_prune(s, h);
        size_t from = hist_bound(h, since_ms, true);
        size_t want = h->count - from;
        if (want > 0) {
            copy = calloc(want, sizeof *copy);
            if (copy == NULL) {
                rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
            } else {
                for (; n < want; n++) {
                    const hrec_t *r = h->items[h->head + from + n];
                    copy[n] = malloc(sizeof *r + r->len + 1);
                    if (copy[n] == NULL) {
                        rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
                        break;
                    }
                    memcpy(copy[n], r, sizeof *r + r->len + 1);
                }
            }
        }
    }
    pthread_mutex_unlock(&hs->mu);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char ts[24];
        int tl = snprintf(ts, sizeof ts, "%" PRId64, copy[i]->ts);
        if (cb(ud, (mk_str_t){ts, (size_t)tl}, (mk_str_t){copy[i]->data, copy[i]->len}) != 0)
            break;
    }
    for (size_t i = 0; i < n; i++)
        free(copy[i]);
    free(copy);
    return rc;
}

int mk_store_mem_hist_clear(mk_store_t *s, mk_str_t ns, mk_err_t *err)
{
    (void)err;
    hstripe_t *hs = hist_stripe(s->mem, ns);
    mhist_t *dead = NULL;
    pthread_mutex_lock(&hs->mu);
    for (mhist_t **link = &hs->list; *link != NULL; link = &(*link)->next) {
        if ((*link)->nslen == ns.len && memcmp((*link)->ns, ns.base, ns.len) == 0) {
            dead = *link;
            *link = dead->next;
            break;
        }
    }
    pthread_mutex_unlock(&hs->mu);
    if (dead != NULL)
        hist_free(dead);
    return 0;
}
