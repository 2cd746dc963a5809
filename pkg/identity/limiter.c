/* Token buckets for rate limits (per token, per client address on login). */
#include "identity/identity.h"

#include "strmap/strmap.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#define MAX_KEYS 65536 /* past this, buckets that have refilled are forgotten */

typedef struct bucket {
    double level;
    int64_t at_ms;
    double per_minute, burst;
} bucket_t;

struct mk_identity_limiter {
    pthread_mutex_t lock;
    mk_strmap_t *buckets;
};

mk_identity_limiter_t *mk_identity_limiter_new(void)
{
    mk_identity_limiter_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->buckets = mk_strmap_new();
    if (l->buckets == NULL) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    return l;
}

void mk_identity_limiter_free(mk_identity_limiter_t *l)
{
    if (l == NULL)
        return;
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(l->buckets, &pos, &k, &v))
        free(v);
    mk_strmap_free(l->buckets);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static void refill(bucket_t *b, int64_t now_ms)
{
    if (now_ms > b->at_ms) {
        b->level = fmin(b->burst, b->level + (double)(now_ms - b->at_ms) * b->per_minute / 60000.0);
        b->at_ms = now_ms;
    }
}

static void forget_full(mk_identity_limiter_t *l, int64_t now_ms)
{
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(l->buckets, &pos, &k, &v)) {
        refill(v, now_ms);
        if (((bucket_t *)v)->level >= ((bucket_t *)v)->burst) {
            free(mk_strmap_del(l->buckets, k));
            pos = 0; /* deletion moves entries: start over */
        }
    }
}

int mk_identity_limiter_take(mk_identity_limiter_t *l, const char *key, double per_minute,
                             double burst, int64_t now_ms)
{
    if (per_minute <= 0)
        return 0;
    if (burst < 1)
        burst = 1;
    int wait = 0;
    pthread_mutex_lock(&l->lock);
    bucket_t *b = mk_strmap_get(l->buckets, mk_str_of(key));
    if (b == NULL) {
        if (mk_strmap_size(l->buckets) >= MAX_KEYS)
            forget_full(l, now_ms);
        b = malloc(sizeof *b);
        if (b == NULL || mk_strmap_set(l->buckets, mk_str_of(key), b) != 0) {
            free(b);
            goto out; /* out of memory: fail open rather than lock everyone out */
        }
        *b = (bucket_t){burst, now_ms, per_minute, burst};
    }
    b->per_minute = per_minute;
    b->burst = burst;
    refill(b, now_ms);
    if (b->level >= 1) {
        b->level -= 1;
    } else {
        wait = (int)ceil((1 - b->level) * 60.0 / per_minute);
        if (wait < 1)
            wait = 1;
    }
out:
    pthread_mutex_unlock(&l->lock);
    return wait;
}
