/* Scheduled runs: cron schedules on API test collections (/api/v1/api-tester/schedules, ours:
 * Mockarty's SDKs have none) and on stored load test configs (Mockarty's /api/v1/perf-schedules),
 * fired by the admin's scheduler from its maintenance loop (mk_api_maintain, every 100 ms).
 *
 * A schedule fires when the first cron time after its last firing (or its last change) has
 * passed. Firing writes lastFiredAt before queueing the run, so an admin that was down through
 * several firing times runs the schedule once when it comes back, never once per missed time,
 * and a crash between the two writes loses a run instead of doubling it. Times are UTC. */
#include "api/api_internal.h"

#include "api/perf_api.h"
#include "coordinator/coordinator.h"
#include "cron/cron.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND_COLLECTION_SCHEDULE "apitest_schedule"
#define KIND_PERF_SCHEDULE       "perf_schedule"
/* Schedules are re-read this often even without a change through this admin's API. */
#define RELOAD_MS 10000

typedef struct kind {
    const char *kind, *what, *target_key, *target_kind, *target_what;
} kind_t;

static const kind_t collection_kind = {KIND_COLLECTION_SCHEDULE, "schedule", "collectionId",
                                       "apitest_collection", "collection"};
static const kind_t perf_kind = {KIND_PERF_SCHEDULE, "perf schedule", "configId", "perf_config",
                                 "perf config"};

struct mk_api_sched {
    pthread_mutex_t mu; /* guards everything below */
    json_t *docs;       /* both kinds' documents as last read, each with "_kind" (and "_due") */
    int64_t loaded_ms, last_tick_ms, next_fire_ms;
    size_t fired;
    char last_error[256];
    atomic_bool dirty; /* a write through the API: re-read at the next tick */
};

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

struct mk_api_sched *mk_api_sched_new(void)
{
    struct mk_api_sched *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->dirty, true);
    return s;
}

void mk_api_sched_free(struct mk_api_sched *s)
{
    if (s == NULL)
        return;
    json_decref(s->docs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- the endpoints ---- */

static const kind_t *kind_of(ctx_t *c)
{
    return strstr(c->ep->path, "perf-schedules") ? &perf_kind : &collection_kind;
}

/* The target (collection or perf config) the body names, checked against the caller; answers
 * itself and returns NULL when it is missing or out of reach. */
static json_t *target_of(ctx_t *c, const kind_t *k, const char *id)
{
    if (id == NULL || id[0] == '\0') {
        mk_api_reply_fmt(c, MK_EINVAL, "%s: required", k->target_key);
        return NULL;
    }
    return mk_api_doc_get(c, k->target_kind, id, k->target_what);
}

/* Builds the schedule document from body over old (NULL for a new one); answers itself and
 * returns NULL on bad input. */
static json_t *sched_doc(ctx_t *c, const kind_t *k, json_t *body, const char *id, const json_t *old)
{
    if (!json_is_object(body)) {
        mk_api_reply_fmt(c, MK_EINVAL, "body: must be a JSON object");
        return NULL;
    }
    json_t *doc = old ? json_deep_copy(old) : json_object();
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        /* Server-kept fields are not the client's to set. */
        if (strcmp(key, "id") != 0 && strcmp(key, "namespace") != 0 && key[0] != '_' &&
            strcmp(key, "createdAt") != 0 && strcmp(key, "lastFiredAt") != 0 &&
            strcmp(key, "lastRunId") != 0 && strcmp(key, "lastError") != 0 &&
            strcmp(key, "nextFireAt") != 0)
            json_object_set(doc, key, v);
    }
    /* Mockarty's test plan schedules call it cronExpr; both are accepted, cron is stored. */
    if (json_object_get(doc, "cron") == NULL && json_is_string(json_object_get(doc, "cronExpr")))
        json_object_set(doc, "cron", json_object_get(doc, "cronExpr"));
    json_object_del(doc, "cronExpr");
    mk_cron_t cron;
    mk_err_t err;
    json_t *target = NULL;
    json_t *enabled = json_object_get(doc, "enabled");
    if (enabled != NULL && !json_is_boolean(enabled)) {
        mk_api_reply_fmt(c, MK_EINVAL, "enabled: must be true or false");
    } else if (mk_cron_parse(jstr(doc, "cron"), &cron, &err) != 0) {
        mk_api_reply_fmt(c, MK_EINVAL, "%s", err.msg);
    } else if ((target = target_of(c, k, jstr(doc, k->target_key))) != NULL) {
        int64_t now = mk_mock_now_ms();
        json_object_set_new(doc, "id", json_string(id));
        json_object_set(doc, "namespace", json_object_get(target, "namespace"));
        if (enabled == NULL)
            json_object_set_new(doc, "enabled", json_true());
        if (old == NULL)
            json_object_set_new(doc, "createdAt", json_integer(now));
        json_object_set_new(doc, "updatedAt", json_integer(now));
        int64_t next = mk_cron_next(&cron, now);
        json_object_set_new(doc, "nextFireAt", next > 0 ? json_integer(next) : json_null());
        json_decref(target);
        return doc;
    }
    json_decref(doc);
    return NULL;
}

static int sched_save(ctx_t *c, json_t *body, const char *id, const json_t *old)
{
    const kind_t *k = kind_of(c);
    json_t *doc = sched_doc(c, k, body, id, old);
    if (doc == NULL)
        return 400;
    int status = mk_api_doc_store(c, k->kind, "runs:write", doc, old ? 200 : 201);
    atomic_store(&c->api->sched->dirty, true);
    return status;
}

static int scheds_create(ctx_t *c)
{
    return mk_api_doc_create(c, sched_save);
}

static int scheds_update(ctx_t *c)
{
    const kind_t *k = kind_of(c);
    return mk_api_doc_update(c, k->kind, k->what, sched_save);
}

static int scheds_list(ctx_t *c)
{
    json_t *docs = mk_api_docs_visible(c, kind_of(c)->kind, "runs:read");
    return docs ? mk_api_reply_json(c->req, 200, docs) : 500;
}

static int scheds_get(ctx_t *c)
{
    const kind_t *k = kind_of(c);
    return mk_api_doc_show(c, k->kind, k->what);
}

static int scheds_delete(ctx_t *c)
{
    const kind_t *k = kind_of(c);
    int status = mk_api_doc_delete(c, k->kind, k->what, NULL);
    atomic_store(&c->api->sched->dirty, true);
    return status;
}

/* ---- the scheduler ---- */

/* Re-reads both kinds of schedules; caller holds mu. */
/* "_due": when an enabled schedule fires next (its first time after the later of its last
 * firing and its last change), worked out once per read so a tick only compares times. */
static void set_due(json_t *doc)
{
    mk_cron_t cron;
    if (!json_is_true(json_object_get(doc, "enabled")) ||
        mk_cron_parse(jstr(doc, "cron"), &cron, NULL) != 0)
        return;
    int64_t last = json_integer_value(json_object_get(doc, "lastFiredAt"));
    int64_t changed_at = json_integer_value(json_object_get(doc, "updatedAt"));
    int64_t due = mk_cron_next(&cron, last > changed_at ? last : changed_at);
    if (due >= 0)
        json_object_set_new(doc, "_due", json_integer(due));
}

static int reload(mk_api_t *api, struct mk_api_sched *s, int64_t now, mk_err_t *err)
{
    json_t *all = json_array();
    const kind_t *kinds[] = {&collection_kind, &perf_kind};
    for (size_t k = 0; k < 2; k++) {
        json_t *docs;
        if (mk_api_docs_list(api, kinds[k]->kind, NULL, &docs, err) != 0) {
            json_decref(all);
            return err->code;
        }
        size_t i;
        json_t *d;
        json_array_foreach(docs, i, d)
        {
            if (json_is_object(d)) {
                json_object_set_new(d, "_kind", json_string(kinds[k]->kind));
                set_due(d);
                json_array_append(all, d);
            }
        }
        json_decref(docs);
    }
    json_decref(s->docs);
    s->docs = all;
    s->loaded_ms = now;
    return 0;
}

/* Queues the run a schedule asks for; run_id (40 bytes) gets its id. */
static int fire(mk_api_t *api, const json_t *doc, char *run_id, mk_err_t *err)
{
    char trigger[80];
    snprintf(trigger, sizeof trigger, "schedule:%s", jstr(doc, "id"));
    if (strcmp(jstr(doc, "_kind"), KIND_PERF_SCHEDULE) == 0)
        return mk_api_perf_run_config(api, jstr(doc, "configId"), trigger, run_id, 40, err);
    const char *col_id = jstr(doc, "collectionId");
    json_t *cols;
    if (mk_api_docs_list(api, collection_kind.target_kind, col_id, &cols, err) != 0)
        return err->code;
    json_t *col = NULL, *d;
    size_t i;
    json_array_foreach(cols, i, d)
    {
        if (jstr(d, "id") && strcmp(jstr(d, "id"), col_id) == 0)
            col = d;
    }
    int rc;
    if (col == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "collection '%s' no longer exists", col_id);
    } else {
        json_t *opts = json_pack("{s:s}", "trigger", trigger);
        if (jstr(doc, "environmentId"))
            json_object_set(opts, "environmentId", json_object_get(doc, "environmentId"));
        json_t *run = mk_api_run_collection(api, col, opts, err);
        rc = run ? 0 : err->code;
        if (run)
            snprintf(run_id, 40, "%s", jstr(run, "id"));
        json_decref(run);
        json_decref(opts);
    }
    json_decref(cols);
    return rc;
}

void mk_api_sched_tick(mk_api_t *api, int64_t now)
{
    struct mk_api_sched *s = api->sched;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    mk_err_t err;
    if ((atomic_exchange(&s->dirty, false) || now - s->loaded_ms >= RELOAD_MS) &&
        reload(api, s, now, &err) != 0)
        snprintf(s->last_error, sizeof s->last_error, "reading schedules: %.200s", err.msg);
    s->last_tick_ms = now;
    int64_t soonest = 0;
    bool changed = false;
    size_t i;
    json_t *doc;
    json_array_foreach(s->docs, i, doc)
    {
        json_t *due_at = json_object_get(doc, "_due");
        if (due_at == NULL)
            continue;
        int64_t due = json_integer_value(due_at);
        if (due > now) {
            soonest = soonest == 0 || due < soonest ? due : soonest;
            continue;
        }
        /* Due: note the firing first (see the top of the file), then queue the run. */
        const char *kind = jstr(doc, "_kind");
        json_t *stored = json_deep_copy(doc);
        json_object_del(stored, "_kind");
        json_object_del(stored, "_due");
        mk_cron_t cron;
        mk_cron_parse(jstr(doc, "cron"), &cron, NULL); /* parsed once already by set_due */
        int64_t next = mk_cron_next(&cron, now);
        json_object_set_new(stored, "lastFiredAt", json_integer(now));
        json_object_set_new(stored, "nextFireAt", next > 0 ? json_integer(next) : json_null());
        if (mk_api_doc_put(api, kind, jstr(doc, "id"), jstr(doc, "namespace"), stored, &err) != 0) {
            snprintf(s->last_error, sizeof s->last_error, "schedule %.40s: %.200s", jstr(doc, "id"),
                     err.msg);
            json_decref(stored);
            continue;
        }
        char run_id[40] = "";
        if (fire(api, doc, run_id, &err) == 0) {
            json_object_set_new(stored, "lastRunId", json_string(run_id));
            json_object_del(stored, "lastError");
            s->fired++;
        } else {
            json_object_set_new(stored, "lastError", json_string(err.msg));
            snprintf(s->last_error, sizeof s->last_error, "schedule %.40s: %.200s", jstr(doc, "id"),
                     err.msg);
        }
        mk_api_doc_put(api, kind, jstr(doc, "id"), jstr(doc, "namespace"), stored, NULL);
        json_decref(stored);
        changed = true;
    }
    s->next_fire_ms = soonest;
    if (changed)
        atomic_store(&s->dirty, true);
    pthread_mutex_unlock(&s->mu);
}

json_t *mk_api_sched_status(mk_api_t *api)
{
    struct mk_api_sched *s = api->sched;
    if (s == NULL)
        return json_pack("{s:s}", "status", "disabled");
    pthread_mutex_lock(&s->mu);
    size_t enabled = 0, i;
    json_t *d;
    json_array_foreach(s->docs, i, d) enabled += json_is_true(json_object_get(d, "enabled"));
    /* A scheduler that has not ticked for a minute is stuck (the loop ticks every 100 ms). */
    bool stuck = s->last_tick_ms != 0 && mk_mock_now_ms() - s->last_tick_ms > 60000;
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "status", stuck ? "down" : "up", "schedules",
                          (json_int_t)json_array_size(s->docs), "enabled", (json_int_t)enabled,
                          "fired", (json_int_t)s->fired, "lastTickAt", (json_int_t)s->last_tick_ms);
    if (s->next_fire_ms)
        json_object_set_new(o, "nextFireAt", json_integer(s->next_fire_ms));
    if (s->last_error[0])
        json_object_set_new(o, "lastError", json_string(s->last_error));
    pthread_mutex_unlock(&s->mu);
    /* What the scheduled runs leave behind is pruned from the same loop (retention.c). */
    json_object_set_new(o, "retention", mk_api_retention_status(api));
    return o;
}

#define CS "/api/v1/api-tester/schedules"
#define PS "/api/v1/perf-schedules"

const mk_api_endpoint_t mk_api_schedule_endpoints[] = {
    {"GET", CS, scheds_list, "runs:read", "Cron schedules of collection runs (?namespace=)", 0},
    {"POST", CS, scheds_create, "runs:write",
     "Schedule a collection (body: collectionId, cron, enabled, environmentId)", 0},
    {"GET", CS "/:id", scheds_get, "runs:read", "One collection schedule", 0},
    {"PUT", CS "/:id", scheds_update, "runs:write", "Change a collection schedule", 0},
    {"DELETE", CS "/:id", scheds_delete, "runs:write", "Delete a collection schedule", 0},
    {"GET", PS, scheds_list, "runs:read", "Cron schedules of load tests (?namespace=)", 0},
    {"POST", PS, scheds_create, "runs:write",
     "Schedule a stored perf config (body: configId, cron, enabled)", 0},
    {"GET", PS "/:id", scheds_get, "runs:read", "One perf schedule", 0},
    {"PUT", PS "/:id", scheds_update, "runs:write", "Change a perf schedule", 0},
    {"DELETE", PS "/:id", scheds_delete, "runs:write", "Delete a perf schedule", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
