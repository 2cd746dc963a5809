/* The deduplicating work queue: ready keys in FIFO order, a processing set, keys dirtied while
 * processing, delayed keys, and per-key failure counts for exponential backoff. Sizes are small
 * (one key per custom resource), so plain arrays with linear search are enough. */
#include "controller.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct delayed {
    char *key;
    long long due_ms;
} delayed_t;

typedef struct failure {
    char *key;
    int count;
} failure_t;

typedef struct strs {
    char **v;
    size_t n, cap;
} strs_t;

struct mk_controller_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    strs_t ready, processing, dirty;
    delayed_t *delayed;
    size_t n_delayed, cap_delayed;
    failure_t *failures;
    size_t n_failures, cap_failures;
    long base_ms, max_ms;
    bool shut;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long strs_find(const strs_t *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], key) == 0)
            return (long)i;
    return -1;
}

static void strs_push(strs_t *s, const char *key)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return; /* dropping a key under memory exhaustion; a resync re-adds it */
        s->v = v;
        s->cap = cap;
    }
    char *k = strdup(key);
    if (k)
        s->v[s->n++] = k;
}

static void strs_remove(strs_t *s, size_t i)
{
    free(s->v[i]);
    memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof *s->v);
    s->n--;
}

static void strs_free(strs_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

int mk_controller_queue_new(long base_ms, long max_ms, mk_controller_queue_t **out)
{
    mk_controller_queue_t *q = calloc(1, sizeof *q);
    *out = NULL;
    if (!q)
        return MK_ENOMEM;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &attr);
    pthread_condattr_destroy(&attr);
    q->base_ms = base_ms > 0 ? base_ms : 5;
    q->max_ms = max_ms > 0 ? max_ms : 60000;
    *out = q;
    return 0;
}

void mk_controller_queue_free(mk_controller_queue_t *q)
{
    if (!q)
        return;
    strs_free(&q->ready);
    strs_free(&q->processing);
    strs_free(&q->dirty);
    for (size_t i = 0; i < q->n_delayed; i++)
        free(q->delayed[i].key);
    free(q->delayed);
    for (size_t i = 0; i < q->n_failures; i++)
        free(q->failures[i].key);
    free(q->failures);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static void add_locked(mk_controller_queue_t *q, const char *key)
{
    if (q->shut)
        return;
    if (strs_find(&q->processing, key) >= 0) {
        if (strs_find(&q->dirty, key) < 0)
            strs_push(&q->dirty, key);
        return;
    }
    if (strs_find(&q->ready, key) < 0) {
        strs_push(&q->ready, key);
        pthread_cond_signal(&q->cv);
    }
}

void mk_controller_queue_add(mk_controller_queue_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    add_locked(q, key);
    pthread_mutex_unlock(&q->mu);
}

void mk_controller_queue_add_after(mk_controller_queue_t *q, const char *key, long delay_ms)
{
    if (delay_ms <= 0) {
        mk_controller_queue_add(q, key);
        return;
    }
    pthread_mutex_lock(&q->mu);
    long long due = now_ms() + delay_ms;
    for (size_t i = 0; i < q->n_delayed; i++) {
        if (strcmp(q->delayed[i].key, key) == 0) {
            /* Keep the earlier deadline: a key is never delayed further by a second add. */
            if (due < q->delayed[i].due_ms)
                q->delayed[i].due_ms = due;
            goto out;
        }
    }
    if (q->n_delayed == q->cap_delayed) {
        size_t cap = q->cap_delayed ? q->cap_delayed * 2 : 16;
        delayed_t *d = realloc(q->delayed, cap * sizeof *d);
        if (!d)
            goto out;
        q->delayed = d;
        q->cap_delayed = cap;
    }
    q->delayed[q->n_delayed].key = strdup(key);
    if (q->delayed[q->n_delayed].key) {
        q->delayed[q->n_delayed].due_ms = due;
        q->n_delayed++;
    }
    pthread_cond_signal(&q->cv);
out:
    pthread_mutex_unlock(&q->mu);
}

static failure_t *failure_of(mk_controller_queue_t *q, const char *key, bool create)
{
    for (size_t i = 0; i < q->n_failures; i++)
        if (strcmp(q->failures[i].key, key) == 0)
            return &q->failures[i];
    if (!create)
        return NULL;
    if (q->n_failures == q->cap_failures) {
        size_t cap = q->cap_failures ? q->cap_failures * 2 : 16;
        failure_t *f = realloc(q->failures, cap * sizeof *f);
        if (!f)
            return NULL;
        q->failures = f;
        q->cap_failures = cap;
    }
    failure_t *f = &q->failures[q->n_failures];
    f->key = strdup(key);
    f->count = 0;
    if (!f->key)
        return NULL;
    q->n_failures++;
    return f;
}

void mk_controller_queue_add_rate_limited(mk_controller_queue_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    failure_t *f = failure_of(q, key, true);
    long delay = q->base_ms;
    int n = f ? f->count : 0;
    for (int i = 0; i < n && delay < q->max_ms; i++)
        delay *= 2;
    if (delay > q->max_ms)
        delay = q->max_ms;
    if (f)
        f->count++;
    pthread_mutex_unlock(&q->mu);
    mk_controller_queue_add_after(q, key, delay);
}

void mk_controller_queue_forget(mk_controller_queue_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->n_failures; i++) {
        if (strcmp(q->failures[i].key, key) == 0) {
            free(q->failures[i].key);
            q->failures[i] = q->failures[--q->n_failures];
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
}

int mk_controller_queue_failures(mk_controller_queue_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    failure_t *f = failure_of(q, key, false);
    int n = f ? f->count : 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* Moves due delayed keys to ready; returns the earliest remaining deadline (or -1). */
static long long promote_locked(mk_controller_queue_t *q)
{
    long long now = now_ms(), next = -1;
    for (size_t i = 0; i < q->n_delayed;) {
        if (q->delayed[i].due_ms <= now) {
            char *key = q->delayed[i].key;
            q->delayed[i] = q->delayed[--q->n_delayed];
            add_locked(q, key);
            free(key);
            continue;
        }
        if (next < 0 || q->delayed[i].due_ms < next)
            next = q->delayed[i].due_ms;
        i++;
    }
    return next;
}

int mk_controller_queue_get(mk_controller_queue_t *q, char **key)
{
    int rc = 0;
    *key = NULL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shut) {
            rc = MK_EUNAVAIL;
            break;
        }
        long long next = promote_locked(q);
        if (q->ready.n > 0) {
            char *k = q->ready.v[0];
            memmove(q->ready.v, q->ready.v + 1, (q->ready.n - 1) * sizeof *q->ready.v);
            q->ready.n--;
            strs_push(&q->processing, k);
            *key = k;
            break;
        }
        if (next < 0) {
            pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
            pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void mk_controller_queue_done(mk_controller_queue_t *q, const char *key)
{
    pthread_mutex_lock(&q->mu);
    long i = strs_find(&q->processing, key);
    if (i >= 0)
        strs_remove(&q->processing, (size_t)i);
    i = strs_find(&q->dirty, key);
    if (i >= 0) {
        strs_remove(&q->dirty, (size_t)i);
        add_locked(q, key);
    }
    pthread_mutex_unlock(&q->mu);
}

void mk_controller_queue_shutdown(mk_controller_queue_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->shut = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

size_t mk_controller_queue_len(mk_controller_queue_t *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->ready.n + q->n_delayed;
    pthread_mutex_unlock(&q->mu);
    return n;
}
