/* Retention of finished API test runs and load test results (TEST_RUN_RETENTION, TEST_RUN_KEEP,
 * PERF_RESULT_RETENTION, PERF_RESULT_KEEP): the admin's maintenance loop deletes, a bounded
 * batch per pass, those older than the retention beyond the newest N of their collection or
 * config, through the same delete path (and forget hook) as DELETE on the API. */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Documents deleted per pass: one repository transaction of deletes by id (milliseconds), so API
 * writes barely wait. */
#define BATCH 1000
/* A pass runs this often at most (and at least every quarter of the shorter retention, so a
 * short one is honoured closely), and every PASS_MIN_MS while a backlog remains: each pass lists
 * every document of its kinds, so a large first backlog is worked off in a bounded number of
 * listings (one per BATCH) without keeping the maintenance loop busy. */
#define PASS_MAX_MS 60000
#define PASS_MIN_MS 1000

/* ---- the selection rule -------------------------------------------------------------------- */

static const mk_api_retention_item_t *sort_items;

/* Group, then newest first. */
static int by_group_newest(const void *a, const void *b)
{
    const mk_api_retention_item_t *x = &sort_items[*(const size_t *)a];
    const mk_api_retention_item_t *y = &sort_items[*(const size_t *)b];
    int c = strcmp(x->group, y->group);
    if (c)
        return c;
    return x->at_ms < y->at_ms ? 1 : x->at_ms > y->at_ms ? -1 : 0;
}

static int oldest_first(const void *a, const void *b)
{
    int64_t x = sort_items[*(const size_t *)a].at_ms, y = sort_items[*(const size_t *)b].at_ms;
    return x < y ? -1 : x > y;
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER; /* qsort has no user pointer */

size_t mk_api_retention_select(const mk_api_retention_item_t *items, size_t n, int64_t now_ms,
                               int64_t max_age_ms, size_t keep, size_t limit, bool *prune)
{
    memset(prune, 0, n * sizeof *prune);
    if (max_age_ms <= 0 || n == 0 || limit == 0)
        return 0;
    size_t *order = malloc(n * sizeof *order);
    if (order == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    pthread_mutex_lock(&sort_mu);
    sort_items = items;
    qsort(order, n, sizeof *order, by_group_newest);
    /* Walk each group newest first: the first `keep` finished ones stay whatever their age. */
    size_t m = 0, rank = 0;
    for (size_t k = 0; k < n; k++) {
        const mk_api_retention_item_t *it = &items[order[k]];
        if (k == 0 || strcmp(it->group, items[order[k - 1]].group) != 0)
            rank = 0;
        if (it->live)
            continue;
        if (rank++ >= keep && now_ms - it->at_ms > max_age_ms)
            order[m++] = order[k]; /* m <= k: overwrites only what was walked */
    }
    /* Past the batch limit, the oldest go first. */
    if (m > limit) {
        qsort(order, m, sizeof *order, oldest_first);
        m = limit;
    }
    pthread_mutex_unlock(&sort_mu);
    for (size_t k = 0; k < m; k++)
        prune[order[k]] = true;
    free(order);
    return m;
}

/* ---- the pass ------------------------------------------------------------------------------ */

typedef struct kind {
    const char *kind, *name; /* document kind; key of its count in /health */
    /* Group keys, first present wins (a run of no config groups by its collection or name). */
    const char *group_keys[3];
    json_t *(*prepare)(mk_api_t *api);                                 /* may be NULL */
    bool (*live)(mk_api_t *api, const json_t *aux, const json_t *doc); /* aux from prepare */
    mk_api_doc_hook_fn forget;
    size_t age_off, keep_off, pruned_off; /* fields of mk_api_retention_t */
} kind_t;

#define F(f) offsetof(mk_api_retention_t, f)
static const kind_t kinds[] = {
    {"apitest_run",
     "testRuns",
     {"collectionId", NULL, NULL},
     mk_api_runs_prepare,
     mk_api_run_live,
     mk_api_run_forget,
     F(run_max_age_ms),
     F(run_keep),
     F(pruned_runs)},
    {"perf_result",
     "perfResults",
     {"configId", "collectionId", "name"},
     NULL,
     mk_api_perf_result_live,
     mk_api_perf_result_forget,
     F(perf_max_age_ms),
     F(perf_keep),
     F(pruned_results)},
};
#undef F

#define FIELD(r, off, type) (*(type *)((char *)(r) + (off)))

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* One kind's pass: up to BATCH documents deleted; *more when eligible ones were left. */
static int prune_kind(mk_api_t *api, const kind_t *k, int64_t now, bool *more, mk_err_t *err)
{
    mk_api_retention_t *r = &api->retention;
    int64_t max_age = FIELD(r, k->age_off, int64_t);
    if (max_age <= 0)
        return 0;
    json_t *docs;
    if (mk_api_docs_list(api, k->kind, NULL, &docs, err) != 0)
        return err->code;
    size_t n = json_array_size(docs);
    json_t *aux = k->prepare ? k->prepare(api) : NULL;
    mk_api_retention_item_t *items = calloc(n ? n : 1, sizeof *items);
    char **groups = calloc(n ? n : 1, sizeof *groups);
    bool *prune = calloc(n ? n : 1, sizeof *prune);
    const json_t **gone = calloc(BATCH + 1, sizeof *gone);
    int rc = 0;
    if (items == NULL || groups == NULL || prune == NULL || gone == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory pruning %s", k->name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(docs, i);
        const char *key = "", *val = "";
        for (size_t g = 0; g < 3 && k->group_keys[g]; g++) {
            if (jstr(d, k->group_keys[g])) {
                key = k->group_keys[g];
                val = jstr(d, k->group_keys[g]);
                break;
            }
        }
        const char *ns = jstr(d, "namespace");
        if (asprintf(&groups[i], "%s\x1f%s\x1f%s", ns ? ns : "", key, val) < 0) {
            groups[i] = NULL;
            rc = mk_err_set(err, MK_ENOMEM, "out of memory pruning %s", k->name);
            goto out;
        }
        /* A document that is not an object with an id is never touched. */
        bool odd = !json_is_object(d) || jstr(d, "id") == NULL;
        items[i] = (mk_api_retention_item_t){groups[i],
                                             json_integer_value(json_object_get(d, "createdAt")),
                                             odd || k->live(api, aux, d)};
    }
    size_t m = mk_api_retention_select(items, n, now, max_age,
                                       (size_t)FIELD(r, k->keep_off, int64_t), BATCH + 1, prune);
    *more = *more || m > BATCH;
    size_t ngone = 0;
    for (size_t i = 0; i < n && ngone < BATCH; i++)
        if (prune[i])
            gone[ngone++] = json_array_get(docs, i);
    if (ngone) {
        rc = mk_api_docs_remove(api, k->kind, gone, ngone, k->forget, err);
        if (rc == 0) {
            pthread_mutex_lock(&r->mu);
            FIELD(r, k->pruned_off, uint64_t) += ngone;
            r->last_prune_ms = now;
            pthread_mutex_unlock(&r->mu);
        }
    }
out:
    for (size_t i = 0; groups && i < n; i++)
        free(groups[i]);
    free(groups);
    free(items);
    free(prune);
    free(gone);
    json_decref(aux);
    json_decref(docs);
    return rc;
}

void mk_api_retention_maintain(mk_api_t *api, int64_t now)
{
    mk_api_retention_t *r = &api->retention;
    int64_t shortest = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        int64_t a = FIELD(r, kinds[i].age_off, int64_t);
        if (a > 0 && (shortest == 0 || a < shortest))
            shortest = a;
    }
    if (shortest == 0)
        return;
    int64_t every = shortest / 4;
    every = every < PASS_MIN_MS ? PASS_MIN_MS : every > PASS_MAX_MS ? PASS_MAX_MS : every;
    if (now - r->last_pass_ms < (r->more ? PASS_MIN_MS : every))
        return;
    r->last_pass_ms = now;
    bool more = false;
    char error[256] = "";
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        mk_err_t err = {0};
        if (prune_kind(api, &kinds[i], now, &more, &err) != 0)
            snprintf(error, sizeof error, "%s: %.200s", kinds[i].name, err.msg);
    }
    r->more = more && error[0] == '\0';
    pthread_mutex_lock(&r->mu);
    if (error[0])
        snprintf(r->last_error, sizeof r->last_error, "%s", error);
    r->last_error_ms = error[0] ? now : r->last_error_ms;
    r->last_pass_done_ms = now;
    pthread_mutex_unlock(&r->mu);
}

json_t *mk_api_retention_status(mk_api_t *api)
{
    mk_api_retention_t *r = &api->retention;
    pthread_mutex_lock(&r->mu);
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:{s:I, s:I}}", "testRunRetentionMs",
                          (json_int_t)r->run_max_age_ms, "testRunKeep", (json_int_t)r->run_keep,
                          "perfResultRetentionMs", (json_int_t)r->perf_max_age_ms, "perfResultKeep",
                          (json_int_t)r->perf_keep, "pruned", "testRuns",
                          (json_int_t)r->pruned_runs, "perfResults", (json_int_t)r->pruned_results);
    if (r->last_pass_done_ms)
        json_object_set_new(o, "lastPassAt", json_integer(r->last_pass_done_ms));
    if (r->last_prune_ms)
        json_object_set_new(o, "lastPruneAt", json_integer(r->last_prune_ms));
    if (r->last_error[0]) {
        json_object_set_new(o, "lastError", json_string(r->last_error));
        json_object_set_new(o, "lastErrorAt", json_integer(r->last_error_ms));
    }
    pthread_mutex_unlock(&r->mu);
    return o;
}
