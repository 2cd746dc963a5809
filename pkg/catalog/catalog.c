/* The catalog of mocks and the publication of route snapshots with quiescent-state reclamation. */
#include "catalog/catalog.h"
#include "strmap/strmap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One namespace's compiled routes; shared by successive snapshots until its namespace changes. */
typedef struct ns_index {
    char *name;
    mk_route_index_t *routes;
    mk_mock_t **mocks; /* one reference each */
    size_t nmocks;
    int refs; /* snapshots holding it; changed only under the writer lock */
} ns_index_t;

struct mk_snapshot {
    mk_strmap_t *namespaces; /* name -> ns_index_t */
    size_t nmocks;
};

/* Mocks by id: open addressing over the mocks themselves, keyed by their own id, so an entry
 * costs one pointer instead of a copied key (memory per mock counts). Linear probing with
 * backward-shift deletion; at most 3/4 full. */
typedef struct id_table {
    mk_mock_t **slots;
    size_t cap; /* a power of two, or 0 */
    size_t size;
} id_table_t;

static uint64_t id_hash(mk_str_t id)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < id.len; i++)
        h = (h ^ (unsigned char)id.base[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* The slot holding id, or the empty slot where it would go. cap must be non-zero. */
static size_t id_slot(const id_table_t *t, mk_str_t id)
{
    size_t i = id_hash(id) & (t->cap - 1);
    while (t->slots[i] && !mk_str_eq_cstr(id, t->slots[i]->id))
        i = (i + 1) & (t->cap - 1);
    return i;
}

static mk_mock_t *id_get(const id_table_t *t, mk_str_t id)
{
    return t->cap ? t->slots[id_slot(t, id)] : NULL;
}

/* Makes room for want entries at most 3/4 full, rehashing once. */
static int id_reserve(id_table_t *t, size_t want)
{
    if (want * 4 <= t->cap * 3)
        return 0;
    size_t cap = t->cap ? t->cap : 64;
    while (want * 4 > cap * 3)
        cap *= 2;
    mk_mock_t **slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return MK_ENOMEM;
    id_table_t grown = {slots, cap, t->size};
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i])
            slots[id_slot(&grown, mk_str_of(t->slots[i]->id))] = t->slots[i];
    free(t->slots);
    *t = grown;
    return 0;
}

/* Inserts m, or replaces the mock with its id (returned). MK_ENOMEM when it cannot grow. */
static int id_put(id_table_t *t, mk_mock_t *m, mk_mock_t **old)
{
    *old = NULL;
    if (id_reserve(t, t->size + 1) != 0)
        return MK_ENOMEM;
    size_t i = id_slot(t, mk_str_of(m->id));
    *old = t->slots[i];
    if (*old == NULL)
        t->size++;
    t->slots[i] = m;
    return 0;
}

static mk_mock_t *id_del(id_table_t *t, mk_str_t id)
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1, i = id_slot(t, id);
    mk_mock_t *m = t->slots[i];
    if (m == NULL)
        return NULL;
    /* Shift back the following entries whose home slot is not between the hole and them. */
    for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t home = id_hash(mk_str_of(t->slots[j]->id)) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = NULL;
    t->size--;
    return m;
}

/* Each reader's slot on its own cache line: 0 when outside, else the epoch it entered in. */
typedef struct reader {
    _Alignas(64) atomic_uint_fast64_t epoch;
} reader_t;

typedef struct retired {
    struct retired *next;
    mk_snapshot_t *snap;
    uint64_t epoch;
} retired_t;

struct mk_catalog {
    pthread_mutex_t lock; /* writers only */
    id_table_t by_id;     /* the catalog's reference to every mock */
    mk_mock_t **order;    /* creation order */
    size_t norder, caporder;

    _Atomic(mk_snapshot_t *) current;
    atomic_uint_fast64_t epoch;
    reader_t *readers;
    unsigned nreaders;
    retired_t *retired;
};

static void ns_index_release(ns_index_t *ns)
{
    if (ns == NULL || --ns->refs > 0)
        return;
    mk_route_index_free(ns->routes);
    for (size_t i = 0; i < ns->nmocks; i++)
        mk_mock_unref(ns->mocks[i]);
    free(ns->mocks);
    free(ns->name);
    free(ns);
}

static void snapshot_free(mk_snapshot_t *s)
{
    if (s == NULL)
        return;
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(s->namespaces, &pos, &k, &v))
        ns_index_release(v);
    mk_strmap_free(s->namespaces);
    free(s);
}

mk_catalog_t *mk_catalog_new(unsigned nreaders)
{
    mk_catalog_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->nreaders = nreaders ? nreaders : 1;
    c->readers = aligned_alloc(64, sizeof(reader_t) * c->nreaders);
    mk_snapshot_t *s = calloc(1, sizeof *s);
    if (s)
        s->namespaces = mk_strmap_new();
    if (c->readers == NULL || s == NULL || s->namespaces == NULL) {
        if (s)
            mk_strmap_free(s->namespaces);
        free(s);
        free(c->readers);
        free(c);
        return NULL;
    }
    for (unsigned i = 0; i < c->nreaders; i++)
        atomic_init(&c->readers[i].epoch, 0);
    atomic_init(&c->epoch, 1);
    atomic_init(&c->current, s);
    return c;
}

void mk_catalog_free(mk_catalog_t *c)
{
    if (c == NULL)
        return;
    for (retired_t *r = c->retired, *next; r; r = next) {
        next = r->next;
        snapshot_free(r->snap);
        free(r);
    }
    snapshot_free(atomic_load(&c->current));
    for (size_t i = 0; i < c->norder; i++)
        mk_mock_unref(c->order[i]);
    free(c->order);
    free(c->by_id.slots);
    free(c->readers);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* --- readers --- */

const mk_snapshot_t *mk_catalog_enter(mk_catalog_t *c, unsigned reader)
{
    reader_t *r = &c->readers[reader % c->nreaders];
    /* seq_cst store then load: the writer either sees us inside, or we see its new snapshot. */
    atomic_store(&r->epoch, atomic_load_explicit(&c->epoch, memory_order_relaxed));
    return atomic_load(&c->current);
}

void mk_catalog_leave(mk_catalog_t *c, unsigned reader)
{
    atomic_store_explicit(&c->readers[reader % c->nreaders].epoch, 0, memory_order_release);
}

const mk_route_index_t *mk_snapshot_index(const mk_snapshot_t *s, mk_str_t namespace_)
{
    ns_index_t *ns = mk_strmap_get(s->namespaces, namespace_);
    return ns ? ns->routes : NULL;
}

size_t mk_snapshot_mock_count(const mk_snapshot_t *s)
{
    return s->nmocks;
}

/* --- reclamation --- */

static bool retired_is_safe(mk_catalog_t *c, uint64_t epoch)
{
    for (unsigned i = 0; i < c->nreaders; i++) {
        uint64_t e = atomic_load(&c->readers[i].epoch);
        if (e != 0 && e < epoch)
            return false;
    }
    return true;
}

static void reclaim_locked(mk_catalog_t *c)
{
    retired_t **pp = &c->retired;
    while (*pp) {
        retired_t *r = *pp;
        if (retired_is_safe(c, r->epoch)) {
            *pp = r->next;
            snapshot_free(r->snap);
            free(r);
        } else {
            pp = &r->next;
        }
    }
}

void mk_catalog_reclaim(mk_catalog_t *c)
{
    pthread_mutex_lock(&c->lock);
    reclaim_locked(c);
    pthread_mutex_unlock(&c->lock);
}

/* --- writers --- */

/* The live mocks of one namespace being rebuilt, in creation order. */
typedef struct ns_build {
    mk_str_t name;
    mk_mock_t **mocks;
    size_t n, cap;
} ns_build_t;

/* Builds the index of one namespace from its live mocks; *out is NULL when it has none. */
static int build_ns(const ns_build_t *nb, ns_index_t **out, mk_err_t *err)
{
    *out = NULL;
    if (nb->n == 0)
        return 0;
    ns_index_t *ns = calloc(1, sizeof *ns);
    mk_route_builder_t *b = mk_route_builder_new();
    if (ns == NULL || b == NULL)
        goto nomem;
    ns->name = mk_str_dup(nb->name);
    ns->mocks = malloc(nb->n * sizeof *ns->mocks);
    if (ns->name == NULL || ns->mocks == NULL)
        goto nomem;
    ns->refs = 0;
    for (size_t i = 0; i < nb->n; i++) {
        mk_mock_t *m = nb->mocks[i];
        int rc = mk_route_builder_add(b, m->method, m->route, m, m->priority, m->created_at, err);
        if (rc) {
            mk_route_builder_free(b);
            ns->refs = 1;
            ns_index_release(ns);
            return rc;
        }
        ns->mocks[ns->nmocks++] = mk_mock_ref(m);
    }
    ns->routes = mk_route_builder_build(b);
    b = NULL;
    if (ns->routes == NULL)
        goto nomem;
    *out = ns;
    return 0;
nomem:
    mk_route_builder_free(b);
    if (ns) {
        ns->refs = 1;
        ns_index_release(ns);
    }
    return mk_err_set(err, MK_ENOMEM, "out of memory building the route index");
}

static void ns_builds_free(ns_build_t *nbs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(nbs[i].mocks);
    free(nbs);
}

/* Sorts the live mocks of the dirty namespaces by namespace in one pass over the catalog, so a
 * load of many namespaces costs O(mocks), not O(namespaces x mocks). */
static int collect_dirty(mk_catalog_t *c, mk_strmap_t *dirty, ns_build_t **out, size_t *nout,
                         mk_err_t *err)
{
    size_t n = mk_strmap_size(dirty), i = 0, pos = 0;
    mk_str_t k;
    void *v;
    ns_build_t *nbs = calloc(n ? n : 1, sizeof *nbs);
    mk_strmap_t *slot = mk_strmap_new();
    if (nbs == NULL || slot == NULL)
        goto nomem;
    while (mk_strmap_next(dirty, &pos, &k, &v)) {
        nbs[i].name = k; /* borrowed from dirty, which outlives the publication */
        if (mk_strmap_set(slot, k, &nbs[i]) != 0)
            goto nomem;
        i++;
    }
    for (size_t j = 0; j < c->norder; j++) {
        mk_mock_t *m = c->order[j];
        if (m->closed_at != 0)
            continue;
        ns_build_t *nb = mk_strmap_get(slot, mk_str_of(m->namespace_));
        if (nb == NULL)
            continue;
        if (nb->n == nb->cap) {
            size_t cap = nb->cap ? nb->cap * 2 : 16;
            mk_mock_t **grown = realloc(nb->mocks, cap * sizeof *grown);
            if (grown == NULL)
                goto nomem;
            nb->mocks = grown;
            nb->cap = cap;
        }
        nb->mocks[nb->n++] = m;
    }
    mk_strmap_free(slot);
    *out = nbs;
    *nout = n;
    return 0;
nomem:
    mk_strmap_free(slot);
    if (nbs)
        ns_builds_free(nbs, n);
    return mk_err_set(err, MK_ENOMEM, "out of memory");
}

/* Publishes a snapshot where the namespaces in dirty are rebuilt and the rest shared. */
static int publish(mk_catalog_t *c, mk_strmap_t *dirty, mk_err_t *err)
{
    mk_snapshot_t *old = atomic_load(&c->current);
    ns_build_t *nbs = NULL;
    size_t nnbs = 0;
    int rc = collect_dirty(c, dirty, &nbs, &nnbs, err);
    if (rc)
        return rc;
    mk_snapshot_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->namespaces = mk_strmap_new()) == NULL) {
        free(s);
        ns_builds_free(nbs, nnbs);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(old->namespaces, &pos, &k, &v)) {
        if (mk_strmap_get(dirty, k))
            continue;
        ns_index_t *ns = v;
        if (mk_strmap_set(s->namespaces, k, ns) != 0) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto fail;
        }
        ns->refs++;
        s->nmocks += ns->nmocks;
    }
    for (size_t i = 0; i < nnbs; i++) {
        ns_index_t *ns;
        rc = build_ns(&nbs[i], &ns, err);
        if (rc)
            goto fail;
        if (ns == NULL)
            continue;
        if (mk_strmap_set(s->namespaces, nbs[i].name, ns) != 0) {
            ns->refs = 1;
            ns_index_release(ns);
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto fail;
        }
        ns->refs++;
        s->nmocks += ns->nmocks;
    }
    ns_builds_free(nbs, nnbs);
    nbs = NULL;
    atomic_store(&c->current, s);
    retired_t *r = malloc(sizeof *r);
    uint64_t epoch = atomic_fetch_add(&c->epoch, 1) + 1;
    if (r == NULL) {
        /* Cannot defer: wait for readers instead of leaking or freeing early. */
        while (!retired_is_safe(c, epoch))
            sched_yield();
        snapshot_free(old);
    } else {
        r->snap = old;
        r->epoch = epoch;
        r->next = c->retired;
        c->retired = r;
    }
    reclaim_locked(c);
    return 0;
fail:
    ns_builds_free(nbs, nnbs);
    snapshot_free(s);
    return rc;
}

static int order_remove(mk_catalog_t *c, mk_mock_t *m)
{
    for (size_t i = 0; i < c->norder; i++) {
        if (c->order[i] == m) {
            memmove(&c->order[i], &c->order[i + 1], (c->norder - i - 1) * sizeof *c->order);
            c->norder--;
            return 1;
        }
    }
    return 0;
}

int mk_catalog_put(mk_catalog_t *c, mk_mock_t **mocks, size_t n, bool *replaced, mk_err_t *err)
{
    int rc = 0;
    mk_strmap_t *dirty = mk_strmap_new();
    if (dirty == NULL) {
        for (size_t i = 0; i < n; i++)
            mk_mock_unref(mocks[i]);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&c->lock);
    if (c->norder + n > c->caporder) {
        size_t cap = c->caporder ? c->caporder : 64;
        while (cap < c->norder + n)
            cap *= 2;
        mk_mock_t **grown = realloc(c->order, cap * sizeof *grown);
        if (grown == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            for (size_t i = 0; i < n; i++)
                mk_mock_unref(mocks[i]);
            goto out;
        }
        c->order = grown;
        c->caporder = cap;
    }
    /* One rehash for a whole load instead of one per doubling (a failure here is retried, and
     * reported, by id_put). */
    id_reserve(&c->by_id, c->by_id.size + n);
    for (size_t i = 0; i < n; i++) {
        mk_mock_t *m = mocks[i];
        mk_mock_t *old = NULL;
        if (id_put(&c->by_id, m, &old) != 0) {
            if (replaced)
                replaced[i] = false;
            mk_mock_unref(m);
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            continue;
        }
        if (replaced)
            replaced[i] = old != NULL;
        if (old) {
            mk_strmap_set(dirty, mk_str_of(old->namespace_), (void *)1);
            order_remove(c, old);
            /* Uses carry over a replace: a limiter counts from the first definition. */
            atomic_store(&m->uses, atomic_load(&old->uses));
            atomic_store(&m->last_use, atomic_load(&old->last_use));
            m->flushed_uses = old->flushed_uses;
            m->flushed_last_use = old->flushed_last_use;
            mk_mock_unref(old);
        }
        c->order[c->norder++] = m;
        mk_strmap_set(dirty, mk_str_of(m->namespace_), (void *)1);
    }
    {
        int prc = publish(c, dirty, err);
        if (rc == 0)
            rc = prc;
    }
out:
    pthread_mutex_unlock(&c->lock);
    mk_strmap_free(dirty);
    return rc;
}

size_t mk_catalog_remove(mk_catalog_t *c, const char *const *ids, size_t n)
{
    size_t removed = 0;
    mk_strmap_t *dirty = mk_strmap_new();
    if (dirty == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        mk_mock_t *m = id_del(&c->by_id, mk_str_of(ids[i]));
        if (m == NULL)
            continue;
        mk_strmap_set(dirty, mk_str_of(m->namespace_), (void *)1);
        order_remove(c, m);
        mk_mock_unref(m);
        removed++;
    }
    if (removed)
        publish(c, dirty, NULL);
    pthread_mutex_unlock(&c->lock);
    mk_strmap_free(dirty);
    return removed;
}

mk_mock_t *mk_catalog_get(mk_catalog_t *c, const char *id)
{
    pthread_mutex_lock(&c->lock);
    mk_mock_t *m = id_get(&c->by_id, mk_str_of(id));
    if (m)
        mk_mock_ref(m);
    pthread_mutex_unlock(&c->lock);
    return m;
}

void mk_catalog_each(mk_catalog_t *c, int (*fn)(void *ud, mk_mock_t *m), void *ud)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->norder; i++)
        if (fn(ud, c->order[i]) != 0)
            break;
    pthread_mutex_unlock(&c->lock);
}

size_t mk_catalog_take_usage(mk_catalog_t *c, mk_catalog_usage_t **out)
{
    size_t n = 0, cap = 0;
    mk_catalog_usage_t *list = NULL;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->norder; i++) {
        mk_mock_t *m = c->order[i];
        int64_t uses = atomic_load_explicit(&m->uses, memory_order_relaxed);
        int64_t last = atomic_load_explicit(&m->last_use, memory_order_relaxed);
        if (uses == m->flushed_uses && last == m->flushed_last_use)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            mk_catalog_usage_t *grown = realloc(list, cap * sizeof *grown);
            if (grown == NULL)
                break;
            list = grown;
        }
        list[n].id = strdup(m->id);
        if (list[n].id == NULL)
            break;
        list[n].uses = uses;
        list[n].last_use = last;
        m->flushed_uses = uses;
        m->flushed_last_use = last;
        n++;
    }
    pthread_mutex_unlock(&c->lock);
    *out = list;
    return n;
}

void mk_catalog_usage_free(mk_catalog_usage_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(u[i].id);
    free(u);
}

json_t *mk_catalog_counts(mk_catalog_t *c)
{
    json_t *counts = json_object();
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->norder; i++) {
        mk_mock_t *m = c->order[i];
        if (m->closed_at)
            continue;
        json_t *v = json_object_get(counts, m->namespace_);
        json_object_set_new(counts, m->namespace_, json_integer(v ? json_integer_value(v) + 1 : 1));
    }
    pthread_mutex_unlock(&c->lock);
    return counts;
}
