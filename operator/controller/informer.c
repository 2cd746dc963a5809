/* An informer: lists a resource, then watches from the list's resourceVersion, keeping a
 * read-only cache and telling a handler what changed. Relists on 410 Expired. */
#include "controller.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mk_controller_informer {
    mk_kube_t *k;
    const mk_kube_resource_t *res;
    char *ns;
    mk_controller_handler_fn fn;
    void *ud;
    pthread_t thread;
    bool started;
    volatile int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes a backoff sleep at stop */
    json_t *cache;     /* "ns/name" -> object; objects are replaced, never changed in place */
    bool synced;
    long lists;
    char rv[64];
};

static void cache_key(char *buf, size_t cap, const char *ns, const char *name)
{
    snprintf(buf, cap, "%s/%s", ns ? ns : "", name ? name : "");
}

int mk_controller_informer_new(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                               mk_controller_handler_fn fn, void *ud,
                               mk_controller_informer_t **out, mk_err_t *err)
{
    mk_controller_informer_t *inf = calloc(1, sizeof *inf);
    *out = NULL;
    if (!inf)
        return mk_err_set(err, MK_ENOMEM, "informer: out of memory");
    inf->k = k;
    inf->res = res;
    inf->ns = ns && ns[0] ? strdup(ns) : NULL;
    inf->fn = fn;
    inf->ud = ud;
    inf->cache = json_object();
    pthread_mutex_init(&inf->mu, NULL);
    pthread_cond_init(&inf->cv, NULL);
    if (!inf->cache || (ns && ns[0] && !inf->ns)) {
        mk_controller_informer_free(inf);
        return mk_err_set(err, MK_ENOMEM, "informer: out of memory");
    }
    *out = inf;
    return 0;
}

/* Sleeps up to ms unless stopped. */
static void nap(mk_controller_informer_t *inf, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&inf->mu);
    if (!inf->stop)
        pthread_cond_timedwait(&inf->cv, &inf->mu, &ts);
    pthread_mutex_unlock(&inf->mu);
}

/* Replaces the cache with a fresh list and reports the differences. */
static int relist(mk_controller_informer_t *inf, mk_err_t *err)
{
    json_t *list = NULL;
    int rc = mk_kube_list(inf->k, inf->res, inf->ns, NULL, &list, err);
    if (rc != 0)
        return rc;
    json_t *fresh = json_object();
    json_t *changed = json_array(), *gone = json_array();
    size_t i;
    json_t *it;
    char key[512];
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        cache_key(key, sizeof key, mk_kube_namespace(it), mk_kube_name(it));
        json_object_set(fresh, key, it);
    }
    pthread_mutex_lock(&inf->mu);
    const char *k;
    json_t *v;
    json_object_foreach(inf->cache, k, v)
    {
        if (!json_object_get(fresh, k))
            json_array_append(gone, v);
    }
    /* Unchanged objects are reported too: a relist doubles as a resync of every key. */
    json_object_foreach(fresh, k, v) json_array_append(changed, v);
    json_decref(inf->cache);
    inf->cache = fresh;
    snprintf(inf->rv, sizeof inf->rv, "%s",
             mk_kube_resource_version(list) ? mk_kube_resource_version(list) : "");
    inf->synced = true;
    inf->lists++;
    pthread_mutex_unlock(&inf->mu);
    json_array_foreach(gone, i, it) inf->fn(inf->ud, MK_KUBE_DELETED, it);
    json_array_foreach(changed, i, it) inf->fn(inf->ud, MK_KUBE_MODIFIED, it);
    json_decref(gone);
    json_decref(changed);
    json_decref(list);
    return 0;
}

static int on_event(void *ud, mk_kube_event_t type, json_t *obj)
{
    mk_controller_informer_t *inf = ud;
    if (type == MK_KUBE_BOOKMARK)
        return inf->stop; /* the client already tracked its resourceVersion */
    char key[512];
    cache_key(key, sizeof key, mk_kube_namespace(obj), mk_kube_name(obj));
    pthread_mutex_lock(&inf->mu);
    if (type == MK_KUBE_DELETED)
        json_object_del(inf->cache, key);
    else
        json_object_set(inf->cache, key, obj);
    pthread_mutex_unlock(&inf->mu);
    inf->fn(inf->ud, type, obj);
    return inf->stop;
}

static void *run(void *arg)
{
    mk_controller_informer_t *inf = arg;
    bool need_list = true;
    long backoff = 500;
    mk_kube_watch_opts_t opts = {.timeout_seconds = 240, .stop = &inf->stop};
    while (!inf->stop) {
        mk_err_t err = {0};
        if (need_list) {
            if (relist(inf, &err) != 0) {
                nap(inf, backoff);
                backoff = backoff < 15000 ? backoff * 2 : 30000;
                continue;
            }
            need_list = false;
        }
        char rv[64];
        pthread_mutex_lock(&inf->mu);
        snprintf(rv, sizeof rv, "%s", inf->rv);
        pthread_mutex_unlock(&inf->mu);
        int rc =
            mk_kube_watch(inf->k, inf->res, inf->ns, &opts, rv, sizeof rv, on_event, inf, &err);
        pthread_mutex_lock(&inf->mu);
        snprintf(inf->rv, sizeof inf->rv, "%s", rv);
        pthread_mutex_unlock(&inf->mu);
        if (rc == 0) {
            backoff = 500;
            continue; /* the server ended the stream: resume from the last resourceVersion */
        }
        if (mk_kube_is_expired(&err)) {
            need_list = true;
            continue;
        }
        /* A connection failure: resume after a pause; if our resourceVersion is gone by then
         * the watch says Expired and we relist. */
        nap(inf, backoff);
        backoff = backoff < 15000 ? backoff * 2 : 30000;
    }
    return NULL;
}

int mk_controller_informer_start(mk_controller_informer_t *inf, mk_err_t *err)
{
    if (pthread_create(&inf->thread, NULL, run, inf) != 0)
        return mk_err_set(err, MK_ENOMEM, "informer: cannot start a thread");
    inf->started = true;
    return 0;
}

void mk_controller_informer_stop(mk_controller_informer_t *inf)
{
    if (!inf)
        return;
    pthread_mutex_lock(&inf->mu);
    inf->stop = 1;
    pthread_cond_broadcast(&inf->cv);
    pthread_mutex_unlock(&inf->mu);
}

void mk_controller_informer_free(mk_controller_informer_t *inf)
{
    if (!inf)
        return;
    mk_controller_informer_stop(inf);
    if (inf->started)
        pthread_join(inf->thread, NULL);
    json_decref(inf->cache);
    pthread_cond_destroy(&inf->cv);
    pthread_mutex_destroy(&inf->mu);
    free(inf->ns);
    free(inf);
}

bool mk_controller_informer_synced(mk_controller_informer_t *inf)
{
    pthread_mutex_lock(&inf->mu);
    bool s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

json_t *mk_controller_informer_get(mk_controller_informer_t *inf, const char *ns, const char *name)
{
    char key[512];
    cache_key(key, sizeof key, ns, name);
    pthread_mutex_lock(&inf->mu);
    json_t *obj = json_incref(json_object_get(inf->cache, key));
    pthread_mutex_unlock(&inf->mu);
    return obj;
}

json_t *mk_controller_informer_list(mk_controller_informer_t *inf)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    pthread_mutex_lock(&inf->mu);
    json_object_foreach(inf->cache, k, v) json_array_append(arr, v);
    pthread_mutex_unlock(&inf->mu);
    return arr;
}

long mk_controller_informer_lists(mk_controller_informer_t *inf)
{
    pthread_mutex_lock(&inf->mu);
    long n = inf->lists;
    pthread_mutex_unlock(&inf->mu);
    return n;
}
