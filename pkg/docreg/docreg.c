/* The document registry: snapshots of one kind of repository documents, their poller and the
 * reclaim of replaced snapshots. */
#include "docreg/docreg.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_POLL_MS  1000
#define DEFAULT_GRACE_MS 5000
#define FNV_OFFSET       1469598103934665603ull
#define FNV_PRIME        1099511628211ull

struct mk_docreg_snap {
    void *data;
    uint64_t sig; /* of the documents it was built from */
    atomic_int refs;
    int64_t retired_ms;
    mk_docreg_snap_t *next_retired;
};

struct mk_docreg {
    mk_docreg_opts_t o;
    _Atomic(mk_docreg_snap_t *) cur;
    pthread_mutex_t reload_mu; /* serializes reloads and owns the retired list */
    mk_docreg_snap_t *retired;
    pthread_t poller;
    bool started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv; /* on CLOCK_MONOTONIC */
    bool stopping;          /* under stop_mu */
    mk_docreg_t *next;      /* in registries */
};

/* The registries of this process, for notify; list_mu also keeps a registry from being freed
 * while notify reloads it. */
static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static mk_docreg_t *registries;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void snap_free(const mk_docreg_t *r, mk_docreg_snap_t *s)
{
    if (s == NULL)
        return;
    r->o.free(s->data);
    free(s);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

typedef struct load_ctx {
    const mk_docreg_t *r;
    mk_docreg_snap_t *s; /* NULL: only compute sig */
    uint64_t sig;
    int add_rc;
} load_ctx_t;

static int load_doc(void *ud, const mk_repo_doc_t *d)
{
    load_ctx_t *lc = ud;
    lc->sig = fnv(lc->sig, d->id, strlen(d->id) + 1);
    lc->sig = fnv(lc->sig, &d->updated_at, sizeof d->updated_at);
    /* And the content: two writes within one millisecond (or from two nodes) keep the time. The
     * poll reads every byte anyway; hashing them costs about as much again. */
    lc->sig = fnv(lc->sig, d->json, strlen(d->json) + 1);
    if (lc->s)
        lc->add_rc = lc->r->o.add(&lc->s->data, d);
    return lc->add_rc;
}

static void reclaim(mk_docreg_t *r, bool all)
{
    mk_docreg_snap_t **pp = &r->retired;
    int64_t now = mono_ms();
    while (*pp) {
        mk_docreg_snap_t *s = *pp;
        if (all || (atomic_load(&s->refs) == 0 && now - s->retired_ms >= r->o.grace_ms)) {
            *pp = s->next_retired;
            snap_free(r, s);
        } else {
            pp = &s->next_retired;
        }
    }
}

int mk_docreg_reload(mk_docreg_t *r, mk_err_t *err)
{
    pthread_mutex_lock(&r->reload_mu);
    /* A first pass only hashes the documents (ids, times, content): most polls find nothing
     * new. */
    load_ctx_t lc = {.r = r, .sig = FNV_OFFSET};
    int rc = mk_repo_list_docs(r->o.repo, r->o.kind, NULL, load_doc, &lc, err);
    mk_docreg_snap_t *cur = atomic_load(&r->cur);
    if (rc || (cur && cur->sig == lc.sig))
        goto out;
    lc = (load_ctx_t){.r = r, .sig = FNV_OFFSET, .s = calloc(1, sizeof(mk_docreg_snap_t))};
    if (lc.s == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    rc = mk_repo_list_docs(r->o.repo, r->o.kind, NULL, load_doc, &lc, err);
    if (rc && lc.add_rc)
        rc = mk_err_set(err, rc, "%s documents: cannot build the registry (error %d)", r->o.kind,
                        rc);
    if (rc) {
        snap_free(r, lc.s);
        goto out;
    }
    lc.s->sig = lc.sig;
    mk_docreg_snap_t *old = atomic_exchange(&r->cur, lc.s);
    if (old) {
        old->retired_ms = mono_ms();
        old->next_retired = r->retired;
        r->retired = old;
    }
out:
    reclaim(r, false);
    pthread_mutex_unlock(&r->reload_mu);
    return rc;
}

/* In the caller's thread, so that a write's API call answers once its document is served here. */
void mk_docreg_notify(const char *kind)
{
    pthread_mutex_lock(&list_mu);
    for (mk_docreg_t *r = registries; r; r = r->next) {
        mk_err_t err;
        if (strcmp(r->o.kind, kind) == 0)
            mk_docreg_reload(r, &err); /* a database hiccup: the next poll retries */
    }
    pthread_mutex_unlock(&list_mu);
}

static void *poll_main(void *arg)
{
    mk_docreg_t *r = arg;
    pthread_mutex_lock(&r->stop_mu);
    while (!r->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += r->o.poll_ms / 1000;
        ts.tv_nsec += (long)(r->o.poll_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        while (!r->stopping && pthread_cond_timedwait(&r->stop_cv, &r->stop_mu, &ts) != ETIMEDOUT)
            ;
        if (r->stopping)
            break;
        pthread_mutex_unlock(&r->stop_mu);
        mk_err_t err;
        mk_docreg_reload(r, &err); /* a database hiccup: the next round retries */
        pthread_mutex_lock(&r->stop_mu);
    }
    pthread_mutex_unlock(&r->stop_mu);
    return NULL;
}

int mk_docreg_start(const mk_docreg_opts_t *opts, mk_docreg_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_docreg_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    r->o = *opts;
    if (r->o.poll_ms <= 0)
        r->o.poll_ms = DEFAULT_POLL_MS;
    if (r->o.grace_ms == 0)
        r->o.grace_ms = DEFAULT_GRACE_MS;
    else if (r->o.grace_ms < 0)
        r->o.grace_ms = 0;
    pthread_mutex_init(&r->reload_mu, NULL);
    pthread_mutex_init(&r->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = mk_docreg_reload(r, err);
    if (rc)
        goto out;
    pthread_mutex_lock(&list_mu);
    r->next = registries;
    registries = r;
    pthread_mutex_unlock(&list_mu);
    r->started = pthread_create(&r->poller, NULL, poll_main, r) == 0;
    if (!r->started)
        rc = mk_err_set(err, MK_EINTERNAL, "%s documents: cannot start the poller thread",
                        r->o.kind);
out:
    if (rc) {
        mk_docreg_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void mk_docreg_free(mk_docreg_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&list_mu);
    for (mk_docreg_t **pp = &registries; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_mutex_unlock(&list_mu);
    pthread_mutex_lock(&r->stop_mu);
    r->stopping = true;
    pthread_cond_signal(&r->stop_cv);
    pthread_mutex_unlock(&r->stop_mu);
    if (r->started)
        pthread_join(r->poller, NULL);
    reclaim(r, true);
    snap_free(r, atomic_load(&r->cur));
    pthread_cond_destroy(&r->stop_cv);
    pthread_mutex_destroy(&r->stop_mu);
    pthread_mutex_destroy(&r->reload_mu);
    free(r);
}

const mk_docreg_snap_t *mk_docreg_acquire(mk_docreg_t *r)
{
    if (r == NULL)
        return NULL;
    /* A snapshot swapped out between the load and the increment stays alive for the grace
     * period, which is far longer than these two instructions. */
    mk_docreg_snap_t *s = atomic_load(&r->cur);
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void mk_docreg_release(const mk_docreg_snap_t *snap)
{
    if (snap)
        atomic_fetch_sub(&((mk_docreg_snap_t *)snap)->refs, 1);
}

void *mk_docreg_data(const mk_docreg_snap_t *snap)
{
    return snap ? snap->data : NULL;
}

typedef struct summaries {
    json_t *arr;
    const char *drop;
} summaries_t;

static int add_summary(void *ud, const mk_repo_doc_t *d)
{
    summaries_t *s = ud;
    json_t *doc = json_loads(d->json, 0, NULL);
    if (doc) {
        json_object_del(doc, s->drop);
        json_array_append_new(s->arr, doc);
    }
    return 0;
}

int mk_docreg_list(mk_repo_t *repo, const char *kind, const char *namespace_, const char *drop,
                   json_t **out, mk_err_t *err)
{
    char prefix[80] = "";
    if (namespace_)
        snprintf(prefix, sizeof prefix, "%s/", namespace_);
    summaries_t s = {.arr = json_array(), .drop = drop};
    int rc = s.arr ? mk_repo_list_docs(repo, kind, prefix, add_summary, &s, err)
                   : mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc) {
        json_decref(s.arr);
        s.arr = NULL;
    }
    *out = s.arr;
    return rc;
}
