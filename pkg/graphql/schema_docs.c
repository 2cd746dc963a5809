/* GraphQL schema documents in the repository, and the registry of built schemas. */
#include "graphql/schema_docs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETIRE_GRACE_MS 5000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int check_path(const char *path, mk_err_t *err)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || path[0] != '/' || n > MK_GQL_MAX_PATH)
        return mk_err_set(err, MK_EINVAL, "path: must start with '/' (at most %d bytes)",
                          MK_GQL_MAX_PATH);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)path[i] <= ' ' || path[i] == '?' || path[i] == '#')
            return mk_err_set(err, MK_EINVAL, "path: '%.80s' is not a URL path", path);
    return 0;
}

/* "/graphql/" and "/graphql" are one endpoint. */
static size_t path_len(const char *path, size_t n)
{
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

static json_t *summary(const mk_gql_schema_t *s, const char *ns, const char *path, size_t size,
                       int64_t at)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "namespace", ns, "path", path, "size",
                  (json_int_t)size, "types", (json_int_t)mk_gql_schema_type_count(s), "queryType",
                  mk_gql_schema_root(s, MK_GQL_QUERY), "updatedAt", (json_int_t)at);
    const char *m = mk_gql_schema_root(s, MK_GQL_MUTATION);
    const char *sub = mk_gql_schema_root(s, MK_GQL_SUBSCRIPTION);
    if (o) {
        json_object_set_new(o, "mutationType", m ? json_string(m) : json_null());
        json_object_set_new(o, "subscriptionType", sub ? json_string(sub) : json_null());
    }
    return o;
}

int mk_gql_schema_put(mk_repo_t *repo, const char *namespace_, const char *path, const char *sdl,
                      size_t len, json_t **info, mk_err_t *err)
{
    if (info)
        *info = NULL;
    int rc = check_path(path, err);
    if (rc)
        return rc;
    if (len == 0)
        return mk_err_set(err, MK_EINVAL, "body: an empty schema (send the SDL)");
    if (len > MK_GQL_MAX_SDL)
        return mk_err_set(err, MK_ETOOBIG, "body: a schema is at most %u bytes", MK_GQL_MAX_SDL);
    mk_gql_limits_t lim = {.max_bytes = MK_GQL_MAX_SDL, .max_tokens = 1000000};
    mk_gql_schema_t *s = NULL;
    mk_gql_error_t gerr;
    rc = mk_gql_schema_build(sdl, len, &lim, &s, &gerr);
    if (rc) {
        if (gerr.loc.line)
            return mk_err_set(err, rc == MK_ENOMEM ? rc : MK_EINVAL,
                              "schema: %s (line %u, column %u)", gerr.msg, gerr.loc.line,
                              gerr.loc.column);
        return mk_err_set(err, rc == MK_ENOMEM ? rc : MK_EINVAL, "schema: %s", gerr.msg);
    }
    char clean[MK_GQL_MAX_PATH + 1], id[MK_GQL_MAX_PATH + 80];
    snprintf(clean, sizeof clean, "%.*s", (int)path_len(path, strlen(path)), path);
    int64_t at = now_ms();
    json_t *sum = summary(s, namespace_, clean, len, at);
    mk_gql_schema_free(s);
    char *text = NULL;
    if (sum) {
        json_object_set_new(sum, "sdl", json_stringn(sdl, len));
        text = json_dumps(sum, JSON_COMPACT);
        json_object_del(sum, "sdl");
    }
    if (text == NULL) {
        json_decref(sum);
        return mk_err_set(err, MK_EINVAL, "schema: not UTF-8 text");
    }
    snprintf(id, sizeof id, "%s%s", namespace_, clean);
    mk_repo_doc_t doc = {.kind = MK_GQL_DOC_KIND,
                         .id = id,
                         .namespace_ = namespace_,
                         .json = text,
                         .updated_at = at};
    rc = mk_repo_put_docs(repo, &doc, 1, err);
    free(text);
    if (rc == 0 && info)
        *info = sum;
    else
        json_decref(sum);
    return rc;
}

typedef struct list_ctx {
    json_t *arr;
    const char *exact;
    char *sdl;
    bool found;
} list_ctx_t;

static int list_doc(void *ud, const mk_repo_doc_t *d)
{
    list_ctx_t *lc = ud;
    if (lc->exact && strcmp(d->id, lc->exact) != 0)
        return 0;
    lc->found = true;
    json_t *doc = json_loads(d->json, 0, NULL);
    if (doc && lc->exact && json_is_string(json_object_get(doc, "sdl")) && lc->sdl == NULL)
        lc->sdl = strdup(json_string_value(json_object_get(doc, "sdl")));
    if (doc && lc->arr) {
        json_object_del(doc, "sdl");
        json_array_append(lc->arr, doc);
    }
    json_decref(doc);
    return 0;
}

int mk_gql_schema_list(mk_repo_t *repo, const char *namespace_, json_t **out, mk_err_t *err)
{
    char prefix[80] = "";
    if (namespace_)
        snprintf(prefix, sizeof prefix, "%s/", namespace_);
    list_ctx_t lc = {.arr = json_array()};
    int rc = lc.arr ? mk_repo_list_docs(repo, MK_GQL_DOC_KIND, prefix, list_doc, &lc, err)
                    : mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc) {
        json_decref(lc.arr);
        lc.arr = NULL;
    }
    *out = lc.arr;
    return rc;
}

static int find_one(mk_repo_t *repo, const char *namespace_, const char *path, char *id,
                    size_t idsize, list_ctx_t *lc, mk_err_t *err)
{
    int rc = check_path(path, err);
    if (rc)
        return rc;
    snprintf(id, idsize, "%s%.*s", namespace_, (int)path_len(path, strlen(path)), path);
    lc->exact = id;
    rc = mk_repo_list_docs(repo, MK_GQL_DOC_KIND, id, list_doc, lc, err);
    if (rc == 0 && !lc->found)
        rc = mk_err_set(err, MK_ENOTFOUND, "no GraphQL schema for %.200s in namespace %s", path,
                        namespace_);
    return rc;
}

int mk_gql_schema_get(mk_repo_t *repo, const char *namespace_, const char *path, char **sdl,
                      mk_err_t *err)
{
    char id[MK_GQL_MAX_PATH + 80];
    list_ctx_t lc = {0};
    int rc = find_one(repo, namespace_, path, id, sizeof id, &lc, err);
    *sdl = rc == 0 ? lc.sdl : NULL;
    if (rc)
        free(lc.sdl);
    return rc;
}

int mk_gql_schema_delete(mk_repo_t *repo, const char *namespace_, const char *path, mk_err_t *err)
{
    char id[MK_GQL_MAX_PATH + 80];
    list_ctx_t lc = {0};
    int rc = find_one(repo, namespace_, path, id, sizeof id, &lc, err);
    free(lc.sdl);
    if (rc)
        return rc;
    const char *ids[] = {id};
    return mk_repo_delete_docs(repo, MK_GQL_DOC_KIND, ids, 1, err);
}

/* ---- the registry --------------------------------------------------------------------------- */

typedef struct entry {
    char *ns, *path;
    mk_gql_schema_t *schema;
} entry_t;

struct mk_gql_reg_snap {
    entry_t *e;
    size_t n;
    uint64_t sig;
    atomic_int refs;
    int64_t retired_ms;
    struct mk_gql_reg_snap *next_retired;
};

struct mk_gql_registry {
    mk_repo_t *repo;
    int poll_ms;
    _Atomic(mk_gql_reg_snap_t *) cur;
    pthread_mutex_t reload_mu;
    mk_gql_reg_snap_t *retired;
    pthread_t poller;
    bool started, stopping;
};

static void snap_free(mk_gql_reg_snap_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].ns);
        free(s->e[i].path);
        mk_gql_schema_free(s->e[i].schema);
    }
    free(s->e);
    free(s);
}

typedef struct load_ctx {
    mk_gql_reg_snap_t *s;
    uint64_t sig;
} load_ctx_t;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int load_doc(void *ud, const mk_repo_doc_t *d)
{
    load_ctx_t *lc = ud;
    lc->sig = fnv(lc->sig, d->id, strlen(d->id) + 1);
    lc->sig = fnv(lc->sig, &d->updated_at, sizeof d->updated_at);
    if (lc->s == NULL)
        return 0;
    json_t *doc = json_loads(d->json, 0, NULL);
    const char *sdl = json_string_value(json_object_get(doc, "sdl"));
    const char *path = json_string_value(json_object_get(doc, "path"));
    mk_gql_limits_t lim = {.max_bytes = MK_GQL_MAX_SDL, .max_tokens = 1000000};
    mk_gql_schema_t *schema = NULL;
    /* A document that no longer builds (a stricter parser) is skipped, not fatal. */
    if (sdl && path && mk_gql_schema_build(sdl, strlen(sdl), &lim, &schema, NULL) == 0) {
        entry_t *grown = realloc(lc->s->e, (lc->s->n + 1) * sizeof *grown);
        if (grown) {
            lc->s->e = grown;
            entry_t *e = &grown[lc->s->n];
            e->ns = strdup(d->namespace_);
            e->path = strdup(path);
            e->schema = schema;
            if (e->ns && e->path) {
                lc->s->n++;
                schema = NULL;
            } else {
                free(e->ns);
                free(e->path);
            }
        }
    }
    mk_gql_schema_free(schema);
    json_decref(doc);
    return 0;
}

static void reclaim(mk_gql_registry_t *r, bool all)
{
    mk_gql_reg_snap_t **pp = &r->retired;
    int64_t now = now_ms();
    while (*pp) {
        mk_gql_reg_snap_t *s = *pp;
        if (all || (atomic_load(&s->refs) == 0 && now - s->retired_ms >= RETIRE_GRACE_MS)) {
            *pp = s->next_retired;
            snap_free(s);
        } else {
            pp = &s->next_retired;
        }
    }
}

int mk_gql_registry_reload(mk_gql_registry_t *r, mk_err_t *err)
{
    pthread_mutex_lock(&r->reload_mu);
    load_ctx_t lc = {.sig = 1469598103934665603ull};
    int rc = mk_repo_list_docs(r->repo, MK_GQL_DOC_KIND, NULL, load_doc, &lc, err);
    mk_gql_reg_snap_t *cur = atomic_load(&r->cur);
    if (rc || (cur && cur->sig == lc.sig))
        goto out;
    lc = (load_ctx_t){.sig = 1469598103934665603ull, .s = calloc(1, sizeof(mk_gql_reg_snap_t))};
    if (lc.s == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    rc = mk_repo_list_docs(r->repo, MK_GQL_DOC_KIND, NULL, load_doc, &lc, err);
    if (rc) {
        snap_free(lc.s);
        goto out;
    }
    lc.s->sig = lc.sig;
    mk_gql_reg_snap_t *old = atomic_exchange(&r->cur, lc.s);
    if (old) {
        old->retired_ms = now_ms();
        old->next_retired = r->retired;
        r->retired = old;
    }
out:
    reclaim(r, false);
    pthread_mutex_unlock(&r->reload_mu);
    return rc;
}

static pthread_mutex_t kick_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kick_cv = PTHREAD_COND_INITIALIZER;

void mk_gql_registry_notify(void)
{
    pthread_mutex_lock(&kick_mu);
    pthread_cond_broadcast(&kick_cv);
    pthread_mutex_unlock(&kick_mu);
}

static void *poll_main(void *arg)
{
    mk_gql_registry_t *r = arg;
    int ms = r->poll_ms > 0 ? r->poll_ms : 1000;
    pthread_mutex_lock(&kick_mu);
    while (!r->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&kick_cv, &kick_mu, &ts);
        if (r->stopping)
            break;
        pthread_mutex_unlock(&kick_mu);
        mk_err_t err;
        mk_gql_registry_reload(r, &err); /* a database hiccup: the next round retries */
        pthread_mutex_lock(&kick_mu);
    }
    pthread_mutex_unlock(&kick_mu);
    return NULL;
}

int mk_gql_registry_start(mk_repo_t *repo, int poll_ms, mk_gql_registry_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_gql_registry_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    r->repo = repo;
    r->poll_ms = poll_ms;
    pthread_mutex_init(&r->reload_mu, NULL);
    int rc = mk_gql_registry_reload(r, err);
    if (rc == 0 && pthread_create(&r->poller, NULL, poll_main, r) != 0)
        rc = mk_err_set(err, MK_EINTERNAL, "graphql schemas: cannot start the poller thread");
    if (rc) {
        mk_gql_registry_free(r);
        return rc;
    }
    r->started = true;
    *out = r;
    return 0;
}

void mk_gql_registry_free(mk_gql_registry_t *r)
{
    if (r == NULL)
        return;
    if (r->started) {
        pthread_mutex_lock(&kick_mu);
        r->stopping = true;
        pthread_cond_broadcast(&kick_cv);
        pthread_mutex_unlock(&kick_mu);
        pthread_join(r->poller, NULL);
    }
    reclaim(r, true);
    snap_free(atomic_load(&r->cur));
    pthread_mutex_destroy(&r->reload_mu);
    free(r);
}

const mk_gql_reg_snap_t *mk_gql_registry_acquire(mk_gql_registry_t *r)
{
    if (r == NULL)
        return NULL;
    /* A snapshot swapped out between the load and the increment stays alive for the grace
     * period, which is far longer than these two instructions. */
    mk_gql_reg_snap_t *s = atomic_load(&r->cur);
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void mk_gql_registry_release(const mk_gql_reg_snap_t *snap)
{
    if (snap)
        atomic_fetch_sub(&((mk_gql_reg_snap_t *)snap)->refs, 1);
}

const mk_gql_schema_t *mk_gql_registry_find(const mk_gql_reg_snap_t *snap, const char *namespace_,
                                            const char *path, size_t plen)
{
    plen = path_len(path, plen);
    for (size_t i = 0; snap && i < snap->n; i++) {
        const entry_t *e = &snap->e[i];
        if (strcmp(e->ns, namespace_) == 0 && strlen(e->path) == plen &&
            memcmp(e->path, path, plen) == 0)
            return e->schema;
    }
    return NULL;
}
