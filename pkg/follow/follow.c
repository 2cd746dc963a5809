/* The follower thread: change notifications are queued by the feed's thread and applied here. */
#include "follow/follow.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX 4096

typedef struct change {
    int64_t seq;
    char *id; /* NULL: the feed (re)connected, resync */
} change_t;

struct mk_follow {
    mk_repo_t *repo;
    mk_catalog_t *catalog;
    int64_t poll_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    change_t queue[QUEUE_MAX];
    change_t work[QUEUE_MAX]; /* the follower thread's batch taken off the queue */
    size_t qhead, qlen;
    bool overflow; /* changes were dropped: resync */
    bool stop;
    atomic_bool ready;
    atomic_bool db_up;
    atomic_int_fast64_t seq;
};

/* Rows of one load, applied to the catalog in one snapshot publication. */
typedef struct batch {
    mk_mock_loader_t *put; /* rows to compile (on every core) when the batch is applied */
    char **del;
    size_t ndel, capdel;
    int64_t max_seq;
} batch_t;

static void batch_free(batch_t *b)
{
    mk_mock_loader_free(b->put);
    for (size_t i = 0; i < b->ndel; i++)
        free(b->del[i]);
    free(b->del);
    memset(b, 0, sizeof *b);
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, c * size);
    if (p == NULL)
        return MK_ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

static int batch_row(void *ud, const mk_repo_mock_t *row)
{
    batch_t *b = ud;
    if (row->seq > b->max_seq)
        b->max_seq = row->seq;
    if (row->json == NULL) {
        if (grow((void **)&b->del, &b->capdel, b->ndel, sizeof *b->del) != 0)
            return MK_ENOMEM;
        b->del[b->ndel] = strdup(row->id);
        return b->del[b->ndel++] ? 0 : MK_ENOMEM;
    }
    if (b->put == NULL && (b->put = mk_mock_loader_new()) == NULL)
        return MK_ENOMEM;
    return mk_mock_loader_add(b->put, row->json, row->uses, row->last_use);
}

static void batch_apply(mk_follow_t *f, batch_t *b)
{
    if (b->ndel)
        mk_catalog_remove(f->catalog, (const char *const *)b->del, b->ndel);
    mk_mock_t **mocks = NULL;
    size_t n = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    /* Rows this binary cannot compile are skipped; the rest must serve. */
    if (b->put &&
        mk_mock_loader_run(b->put, cpus > 0 ? (unsigned)cpus : 1, &mocks, &n, NULL) == 0 && n > 0) {
        mk_err_t err;
        /* The catalog takes the references over, also when it fails. */
        mk_catalog_put(f->catalog, mocks, n, NULL, &err);
    }
    free(mocks);
    if (b->max_seq > atomic_load(&f->seq))
        atomic_store(&f->seq, b->max_seq);
    mk_catalog_reclaim(f->catalog);
}

/* Loads every row newer than the last applied seq (everything when 0). */
static int resync(mk_follow_t *f)
{
    batch_t b = {0};
    mk_err_t err;
    int rc = mk_repo_load_mocks(f->repo, atomic_load(&f->seq), batch_row, &b, &err);
    atomic_store(&f->db_up, rc != MK_EUNAVAIL);
    if (rc == 0)
        batch_apply(f, &b);
    batch_free(&b);
    return rc;
}

typedef struct one {
    batch_t *b;
    int64_t seq;
    bool stale;
} one_t;

static int one_row(void *ud, const mk_repo_mock_t *row)
{
    one_t *o = ud;
    /* A cache tier may still hold the previous version for a moment after the change was
     * published; an older row than the change means "read the database instead". */
    if (row->seq < o->seq) {
        o->stale = true;
        return 0;
    }
    int64_t keep = o->b->max_seq;
    int rc = batch_row(o->b, row);
    o->b->max_seq = keep;
    return rc;
}

/* Applies one change in sequence; returns non-zero when a resync is needed instead. */
static int apply_change(mk_follow_t *f, const change_t *c)
{
    batch_t b = {0};
    one_t o = {.b = &b, .seq = c->seq};
    mk_err_t err;
    int rc = mk_repo_get_mock(f->repo, c->id, one_row, &o, &err);
    if (rc == MK_ENOTFOUND) {
        rc = grow((void **)&b.del, &b.capdel, 0, sizeof *b.del);
        if (rc == 0 && (b.del[0] = strdup(c->id)) != NULL)
            b.ndel = 1;
        rc = 0;
    }
    if (rc == 0 && !o.stale) {
        b.max_seq = c->seq;
        batch_apply(f, &b);
    }
    atomic_store(&f->db_up, rc != MK_EUNAVAIL);
    batch_free(&b);
    return rc != 0 || o.stale;
}

static void on_change(void *ud, int64_t seq, const char *id)
{
    mk_follow_t *f = ud;
    pthread_mutex_lock(&f->mu);
    if (f->qlen == QUEUE_MAX) {
        f->overflow = true;
    } else {
        change_t *c = &f->queue[(f->qhead + f->qlen) % QUEUE_MAX];
        c->seq = seq;
        c->id = id ? strdup(id) : NULL;
        if (id != NULL && c->id == NULL)
            f->overflow = true;
        else
            f->qlen++;
    }
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Waits for changes or the timeout; moves the queued ones into out. Returns false on stop. */
static bool wait_changes(mk_follow_t *f, int64_t ms, change_t *out, size_t *n, bool *overflow)
{
    struct timespec until;
    deadline_after(&until, ms);
    pthread_mutex_lock(&f->mu);
    while (!f->stop && f->qlen == 0 && !f->overflow)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &until) != 0)
            break;
    *n = 0;
    while (f->qlen > 0) {
        out[(*n)++] = f->queue[f->qhead];
        f->qhead = (f->qhead + 1) % QUEUE_MAX;
        f->qlen--;
    }
    *overflow = f->overflow;
    f->overflow = false;
    bool go = !f->stop;
    pthread_mutex_unlock(&f->mu);
    return go;
}

static void *follow_main(void *arg)
{
    mk_follow_t *f = arg;
    change_t *batch = f->work;
    int64_t backoff = 100;
    /* The snapshot: retried until the database answers. */
    while (!atomic_load(&f->ready)) {
        if (resync(f) == 0) {
            atomic_store(&f->ready, true);
            break;
        }
        size_t n;
        bool overflow;
        if (!wait_changes(f, backoff, batch, &n, &overflow))
            return NULL;
        for (size_t i = 0; i < n; i++)
            free(batch[i].id);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
    bool need_resync = false;
    for (;;) {
        size_t n;
        bool overflow;
        /* Retry sooner while the database is away, so it is caught up soon after it returns. */
        int64_t wait = need_resync ? 200 : f->poll_ms;
        if (!wait_changes(f, wait, batch, &n, &overflow))
            break;
        need_resync = need_resync || overflow || n == 0;
        for (size_t i = 0; i < n; i++) {
            const change_t *c = &batch[i];
            int64_t last = atomic_load(&f->seq);
            if (c->id == NULL || c->seq > last + 1)
                need_resync = true;
            else if (c->seq == last + 1 && !need_resync)
                need_resync = apply_change(f, c) != 0;
            /* c->seq <= last: already applied (both feeds may deliver it) */
            free(c->id);
        }
        if (need_resync)
            need_resync = resync(f) != 0;
    }
    for (size_t i = 0; i < f->qlen; i++)
        free(f->queue[(f->qhead + i) % QUEUE_MAX].id);
    f->qlen = 0;
    return NULL;
}

int mk_follow_start(mk_repo_t *repo, mk_catalog_t *catalog, const mk_follow_opts_t *opts,
                    mk_follow_t **out, mk_err_t *err)
{
    mk_follow_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    f->repo = repo;
    f->catalog = catalog;
    f->poll_ms = opts && opts->poll_ms > 0 ? opts->poll_ms : 1000;
    atomic_init(&f->ready, false);
    atomic_init(&f->db_up, true);
    atomic_init(&f->seq, 0);
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* Subscribe before the first load so no change between the two is missed; without a feed
     * (SQLite) the poll alone keeps up. */
    mk_err_t serr;
    int rc = mk_repo_subscribe(repo, on_change, f, &serr);
    /* MK_EINVAL: this repository has no feed (SQLite without Redis); the poll alone keeps up. */
    if (rc != 0 && rc != MK_EINVAL) {
        mk_follow_free(f);
        if (err)
            *err = serr;
        return rc;
    }
    if (pthread_create(&f->thread, NULL, follow_main, f) != 0) {
        mk_follow_free(f);
        return mk_err_set(err, MK_EINTERNAL, "cannot start the follower thread");
    }
    *out = f;
    return 0;
}

void mk_follow_stop(mk_follow_t *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    bool running = !f->stop && f->thread != 0;
    f->stop = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (running)
        pthread_join(f->thread, NULL);
}

void mk_follow_free(mk_follow_t *f)
{
    if (f == NULL)
        return;
    mk_follow_stop(f);
    for (size_t i = 0; i < f->qlen; i++)
        free(f->queue[(f->qhead + i) % QUEUE_MAX].id);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

bool mk_follow_ready(const mk_follow_t *f)
{
    return atomic_load(&((mk_follow_t *)f)->ready);
}

bool mk_follow_db_up(const mk_follow_t *f)
{
    return atomic_load(&((mk_follow_t *)f)->db_up);
}

int64_t mk_follow_seq(const mk_follow_t *f)
{
    return atomic_load(&((mk_follow_t *)f)->seq);
}
