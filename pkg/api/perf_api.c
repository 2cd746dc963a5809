/* The load test endpoints (Mockarty's /api/v1/perf/... and /api/v1/perf-results/...): a run is
 * a document of kind "perf_result" holding its config and the ids of its shares, each share a
 * "performance" task for one runner. While it runs, its view is computed from the tasks' states
 * and the per-second snapshots the runners streamed to the coordinator, merged exactly (counts
 * and HDR histograms add); once every share has ended, the merged result is stored in the
 * document and served from there. Stored configs are documents of kind "perf_config". */
#include "api/api_internal.h"
#include "api/perf_api.h"

#include "coordinator/coordinator.h"
#include "perf/perf.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KIND_RESULT     "perf_result"
#define KIND_CONFIG     "perf_config"
#define KIND_COLLECTION "apitest_collection"
#define MAX_COMPARE     8

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- live runs ------------------------------------------------------------------------------ */

/* The runs not yet final, so their results are stored within a second of their end (while the
 * coordinator still holds a lost runner's snapshots) whether or not anyone reads them. */
struct mk_api_perf {
    pthread_mutex_t mu;
    pthread_mutex_t fin; /* one final result stored at a time */
    json_t *live;        /* run id -> true */
    bool loaded;         /* the live runs of an earlier start were found */
    int64_t last_ms;
};

static pthread_mutex_t perf_init_mu = PTHREAD_MUTEX_INITIALIZER;

static struct mk_api_perf *perf_of(mk_api_t *api)
{
    pthread_mutex_lock(&perf_init_mu);
    if (api->perf == NULL && (api->perf = calloc(1, sizeof *api->perf)) != NULL) {
        pthread_mutex_init(&api->perf->mu, NULL);
        pthread_mutex_init(&api->perf->fin, NULL);
        api->perf->live = json_object();
    }
    pthread_mutex_unlock(&perf_init_mu);
    return api->perf;
}

static void live_set(mk_api_t *api, const char *id, bool live)
{
    struct mk_api_perf *p = perf_of(api);
    if (p == NULL || id == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    if (live)
        json_object_set_new(p->live, id, json_true());
    else
        json_object_del(p->live, id);
    pthread_mutex_unlock(&p->mu);
}

void mk_api_perf_free(mk_api_t *api)
{
    if (api->perf == NULL)
        return;
    json_decref(api->perf->live);
    pthread_mutex_destroy(&api->perf->mu);
    pthread_mutex_destroy(&api->perf->fin);
    free(api->perf);
    api->perf = NULL;
}

static void iso(int64_t ms, char out[32])
{
    mk_identity_time_format(ms, out);
}

/* ---- submission ---------------------------------------------------------------------------- */

/* How long the whole run should take, for the tasks' timeout: duration or stages, then the
 * graceful stop; 0 when open-ended (the queue's default applies). */
static int64_t planned_ms(const mk_perf_config_t *cfg)
{
    const mk_loadgen_config_t *lg = &cfg->lg;
    int64_t ns =
        lg->nstages ? mk_loadgen_stages_duration(lg->stages, lg->nstages) : lg->duration_ns;
    return ns > 0 ? (ns + lg->graceful_stop_ns) / 1000000 : 0;
}

/* Whether want runners with the performance capability are online for namespace ns. */
static int runners_check(mk_queue_t *q, const char *ns, int want, mk_err_t *err)
{
    json_t *list = mk_queue_runners(q, "runner");
    int n = 0;
    size_t i, k;
    json_t *r, *cap;
    json_array_foreach(list, i, r)
    {
        const char *rns = jstr(r, "namespace");
        bool scope = json_is_true(json_object_get(r, "shared")) || (rns && !strcmp(rns, ns));
        bool perf = false;
        json_array_foreach(json_object_get(r, "capabilities"), k, cap)
        {
            if (json_string_value(cap) && !strcmp(json_string_value(cap), "performance"))
                perf = true;
        }
        const char *state = jstr(r, "state");
        n += scope && perf && state && !strcmp(state, "online");
    }
    json_decref(list);
    if (n >= want)
        return 0;
    return mk_err_set(err, MK_EUNAVAIL,
                      "runners: %d asked, %d runner%s with the performance capability online "
                      "for namespace '%s'",
                      want, n, n == 1 ? "" : "s", ns);
}

/* Validates config, checks its targets, queues one "performance" task per runner's share and
 * stores the run's document (*doc_out, new reference). */
static int submit(mk_api_t *api, const json_t *config, const char *ns, const json_t *extra,
                  json_t **doc_out, mk_err_t *err)
{
    *doc_out = NULL;
    if (api->coord == NULL)
        return mk_err_set(err, MK_EUNAVAIL,
                          "the coordinator is not running (RUNNER_GRPC_PORT=0 or its port was "
                          "taken): load tests cannot be queued");
    mk_queue_t *q = mk_coord_queue(api->coord);
    mk_perf_config_t *cfg = NULL;
    json_t *shards = json_array(), *doc = NULL;
    char id[40];
    int rc = mk_perf_config_parse(config, &cfg, err);
    if (rc == 0)
        rc = mk_perf_check_targets(cfg, getenv("PERF_ALLOWED_TARGETS"), err);
    /* The shares must run side by side: every runner is there before any share is queued. */
    if (rc == 0 && cfg->runners > 1)
        rc = runners_check(q, ns, cfg->runners, err);
    if (rc != 0)
        goto out;
    mk_mock_new_id(id);
    int64_t now = mk_mock_now_ms();
    int64_t timeout = planned_ms(cfg);
    for (int i = 0; rc == 0 && i < cfg->runners; i++) {
        json_t *payload = json_pack("{s:s, s:i, s:i, s:O}", "runId", id, "shard", i, "shards",
                                    cfg->runners, "config", config);
        char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
        json_decref(payload);
        char tid[40];
        rc = text ? mk_queue_submit(q, "performance", ns, text, timeout ? timeout + 60000 : 0, now,
                                    tid, err)
                  : mk_err_set(err, MK_ENOMEM, "out of memory");
        free(text);
        if (rc == 0)
            json_array_append_new(shards, json_string(tid));
    }
    if (rc == 0) {
        doc = json_pack("{s:s, s:s, s:s, s:O, s:i, s:O, s:I}", "id", id, "namespace", ns, "name",
                        cfg->name, "config", config, "runners", cfg->runners, "shards", shards,
                        "createdAt", (json_int_t)now);
        json_object_update_missing(doc, (json_t *)extra);
        rc = doc ? mk_api_doc_put(api, KIND_RESULT, id, ns, doc, err)
                 : mk_err_set(err, MK_ENOMEM, "out of memory");
        if (rc == 0)
            live_set(api, id, true);
    }
    if (rc != 0) {
        size_t i;
        json_t *t;
        json_array_foreach(shards, i, t)
        {
            mk_queue_cancel(q, json_string_value(t), now, NULL);
        }
        json_decref(doc);
        doc = NULL;
    }
    *doc_out = doc;
out:
    json_decref(shards);
    mk_perf_config_free(cfg);
    return rc;
}

/* A stored config's body with the call's fields on top (configId names the config). */
static json_t *config_with(const json_t *stored, const json_t *over)
{
    json_t *cfg = json_deep_copy(stored);
    static const char *const meta[] = {"id", "namespace", "createdAt", "updatedAt"};
    for (size_t i = 0; i < sizeof meta / sizeof *meta; i++)
        json_object_del(cfg, meta[i]);
    if (over)
        json_object_update(cfg, (json_t *)over);
    json_object_del(cfg, "configId");
    return cfg;
}

/* The document of kind with id, whoever asks (no permission check): a new reference, or NULL. */
static json_t *doc_by_id(mk_api_t *api, const char *kind, const char *id, mk_err_t *err)
{
    json_t *all, *found = NULL, *d;
    if (mk_api_docs_list(api, kind, id, &all, err) != 0)
        return NULL;
    size_t i;
    json_array_foreach(all, i, d)
    {
        if (jstr(d, "id") && !strcmp(jstr(d, "id"), id))
            found = json_incref(d);
    }
    json_decref(all);
    return found;
}

static json_t *config_doc(mk_api_t *api, const char *id, mk_err_t *err)
{
    json_t *found = doc_by_id(api, KIND_CONFIG, id, err);
    if (found == NULL)
        mk_err_set(err, MK_ENOTFOUND, "perf config '%s' not found", id);
    return found;
}

int mk_api_perf_run_config(mk_api_t *api, const char *config_id, const char *trigger, char *run_id,
                           size_t size, mk_err_t *err)
{
    json_t *stored = config_doc(api, config_id, err);
    if (stored == NULL)
        return err ? err->code : MK_ENOTFOUND;
    json_t *cfg = config_with(stored, NULL);
    json_t *extra = json_pack("{s:s}", "configId", config_id);
    if (trigger)
        json_object_set_new(extra, "trigger", json_string(trigger));
    json_t *doc = NULL;
    int rc = submit(api, cfg, jstr(stored, "namespace"), extra, &doc, err);
    if (rc == 0)
        snprintf(run_id, size, "%s", jstr(doc, "id"));
    json_decref(doc);
    json_decref(extra);
    json_decref(cfg);
    json_decref(stored);
    return rc;
}

/* ---- views --------------------------------------------------------------------------------- */

/* What the shares of a run add up to. */
typedef struct tally {
    int queued, running, lost, failed, cancelled, done;
    const char *error; /* the first failure's, borrowed from tasks */
    int64_t last_update;
} tally_t;

static void add_summary(mk_loadgen_summary_t *s, const json_t *j, bool *first)
{
    double el = json_number_value(json_object_get(j, "elapsedS"));
    if (el > s->elapsed_s)
        s->elapsed_s = el;
    s->target_rate += json_number_value(json_object_get(j, "targetRate"));
    s->achieved_rate += json_number_value(json_object_get(j, "achievedRate"));
    s->rate_kept = (*first || s->rate_kept) && json_is_true(json_object_get(j, "rateKept"));
    s->stopped = s->stopped || json_is_true(json_object_get(j, "stopped"));
    s->aborted = s->aborted || json_is_true(json_object_get(j, "aborted"));
    double from = json_number_value(json_object_get(j, "behindFromS"));
    double to = json_number_value(json_object_get(j, "behindToS"));
    if (from >= 0 && (s->behind_from_s < 0 || from < s->behind_from_s))
        s->behind_from_s = from;
    if (to > s->behind_to_s)
        s->behind_to_s = to;
    *first = false;
}

/* One share: its task's final stats when it reported them, else what its snapshots add up to
 * (a runner lost mid-run). Appends its face to views. */
static void add_shard(mk_api_t *api, const char *tid, json_t *tasks, mk_perf_merge_t *m,
                      mk_loadgen_stats_t *total, mk_loadgen_summary_t *sum, bool *first, tally_t *t,
                      json_t *views)
{
    json_t *task = api->coord ? mk_queue_task(mk_coord_queue(api->coord), tid) : NULL;
    json_t *events = api->coord ? mk_coord_events(api->coord, tid) : NULL;
    mk_loadgen_stats_t *seen = mk_loadgen_stats_new();
    size_t k;
    json_t *e;
    json_array_foreach(events, k, e)
    {
        json_t *ev = json_object_get(e, "event");
        const char *type = jstr(ev, "type");
        if (type && !strcmp(type, "snapshot") && seen &&
            mk_perf_merge_add(m, json_object_get(ev, "stats"), NULL) == 0)
            mk_loadgen_stats_from_json_add(seen, json_object_get(ev, "stats"), NULL);
    }
    json_decref(events);
    const char *state = task ? jstr(task, "state") : NULL;
    json_t *res = task ? json_object_get(task, "result") : NULL;
    json_t *stats = json_object_get(res, "stats");
    const char *error = task ? jstr(task, "error") : "the coordinator does not know this task";
    if (json_is_object(stats)) {
        mk_loadgen_stats_from_json_add(total, stats, NULL);
        add_summary(sum, json_object_get(res, "summary"), first);
    } else if (seen) {
        /* Gauges come from the merged seconds, not from a sum over them. */
        seen->vus = seen->vus_max = 0;
        mk_loadgen_stats_merge(total, seen);
        if (seen->t_s > sum->elapsed_s)
            sum->elapsed_s = seen->t_s;
    }
    mk_loadgen_stats_free(seen);
    if (state == NULL || !strcmp(state, "failed") || !strcmp(state, "timed_out")) {
        /* The queue's words for a runner that went away (pkg/queue requeue_of). */
        bool lost =
            state == NULL || (!json_is_object(stats) && error && strstr(error, "its runner"));
        if (lost)
            t->lost++;
        else
            t->failed++;
        if (!t->error)
            t->error = error;
    } else if (!strcmp(state, "queued")) {
        t->queued++;
    } else if (!strcmp(state, "assigned") || !strcmp(state, "running")) {
        t->running++;
    } else if (!strcmp(state, "cancelled")) {
        t->cancelled++;
    } else {
        t->done++;
    }
    int64_t up = task ? json_integer_value(json_object_get(task, "updatedAt")) : 0;
    if (up > t->last_update)
        t->last_update = up;
    json_t *v = json_pack("{s:s, s:s}", "taskId", tid, "state", state ? state : "unknown");
    if (task) {
        json_object_set(v, "runnerId", json_object_get(task, "runnerId"));
        json_object_set(v, "attempt", json_object_get(task, "attempt"));
        if (error && *error)
            json_object_set_new(v, "error", json_string(error));
        json_array_append(tasks, task); /* keeps error alive */
    }
    json_array_append_new(views, v);
    json_decref(task);
}

/* The run as Mockarty's PerfResult (plus runners, shards, timeline, histogram, status among
 * queued, running, completed, failed, stopped, interrupted). *final is set when every share has
 * ended. New reference, or NULL when out of memory. */
static json_t *compute(mk_api_t *api, const json_t *doc, bool *final)
{
    mk_perf_merge_t m;
    mk_loadgen_stats_t *total = mk_loadgen_stats_new();
    json_t *tasks = json_array(), *views = json_array(), *out = NULL, *tl = NULL;
    mk_perf_config_t *cfg = NULL;
    tally_t t = {0};
    mk_loadgen_summary_t sum = {.behind_from_s = -1, .behind_to_s = -1};
    bool first = true;
    mk_err_t err;
    *final = false;
    if (mk_perf_merge_init(&m, NULL) != 0 || !total || !tasks || !views)
        goto out;
    size_t i;
    json_t *tid;
    json_array_foreach(json_object_get(doc, "shards"), i, tid)
        add_shard(api, json_string_value(tid), tasks, &m, total, &sum, &first, &t, views);
    if (m.deltas) {
        total->vus = m.sum->vus;
        if (m.sum->vus_max > total->vus_max)
            total->vus_max = m.sum->vus_max;
    }
    if (m.sum->t_s > sum.elapsed_s)
        sum.elapsed_s = m.sum->t_s;
    if (total->t_s > sum.elapsed_s)
        sum.elapsed_s = total->t_s;
    *final = t.queued + t.running == 0;
    char started[32], completed[32];
    iso(json_integer_value(json_object_get(doc, "createdAt")), started);
    iso(t.last_update, completed);
    tl = mk_perf_merge_timeline(&m);
    mk_perf_result_info_t info = {
        .id = jstr(doc, "id"),
        .started_at = started,
        .completed_at = *final ? completed : NULL,
        .timeline = tl,
        .summary = &sum,
    };
    if (mk_perf_config_parse(json_object_get(doc, "config"), &cfg, &err) == 0) {
        out = mk_perf_result_json(cfg, total, &info);
    } else {
        /* The config no longer compiles here (a target's name stopped resolving): the counts
         * stand, without thresholds. */
        out = json_pack("{s:s, s:s, s:s, s:o}", "id", jstr(doc, "id"), "name", jstr(doc, "name"),
                        "startedAt", started, "stats", mk_loadgen_stats_to_json(total));
        json_object_set_new(out, "configError", json_string(err.msg));
    }
    if (out == NULL)
        goto out;
    const char *status;
    if (t.queued + t.running)
        status = t.running ? "running" : "queued";
    else if (t.lost)
        status = "interrupted";
    else if (t.failed)
        status = "failed";
    else if (t.cancelled || json_is_true(json_object_get(doc, "stopRequested")))
        status = "stopped";
    else
        status = json_is_false(json_object_get(out, "thresholdsPassed")) ? "failed" : "completed";
    json_object_set_new(out, "status", json_string(status));
    if (sum.aborted)
        json_object_set_new(out, "abortedBy", json_string("threshold"));
    if (t.error)
        json_object_set_new(out, "error", json_string(t.error));
    static const char *const keep[] = {"namespace", "configId", "collectionId", "runners",
                                       "trigger"};
    for (size_t k = 0; k < sizeof keep / sizeof *keep; k++)
        if (json_object_get(doc, keep[k]))
            json_object_set(out, keep[k], json_object_get(doc, keep[k]));
    json_object_set(out, "shards", views);
    json_object_set_new(out, "createdAt",
                        json_integer(json_integer_value(json_object_get(doc, "createdAt"))));
    if (!json_object_get(out, "tags"))
        json_object_set_new(out, "tags", json_array());
out:
    mk_perf_config_free(cfg);
    json_decref(tl);
    json_decref(views);
    json_decref(tasks);
    mk_loadgen_stats_free(total);
    mk_perf_merge_release(&m);
    return out;
}

/* The run's result: stored once final (and its snapshots dropped from the coordinator's
 * memory), computed while live. New reference. */
static json_t *run_view(mk_api_t *api, json_t *doc)
{
    json_t *stored = json_object_get(doc, "result");
    if (json_is_object(stored))
        return json_incref(stored);
    bool final;
    json_t *v = compute(api, doc, &final);
    struct mk_api_perf *p = v && final ? perf_of(api) : NULL;
    if (p == NULL)
        return v;
    /* One caller stores the final result, then the snapshots go. A caller whose computation
     * overlapped that (its snapshots may have gone halfway) finds the stored result here. */
    const char *id = jstr(doc, "id");
    pthread_mutex_lock(&p->fin);
    json_t *now = doc_by_id(api, KIND_RESULT, id, NULL);
    if (now == NULL)
        final = false; /* deleted meanwhile (or unreadable now): storing would bring it back */
    if (json_is_object(json_object_get(now, "result"))) {
        json_decref(v);
        v = json_incref(json_object_get(now, "result"));
        final = false;
    }
    json_decref(now);
    json_t *copy = final ? json_copy(doc) : NULL;
    json_object_set(copy, "result", v);
    if (copy && mk_api_doc_put(api, KIND_RESULT, id, jstr(doc, "namespace"), copy, NULL) == 0 &&
        api->coord) {
        size_t i;
        json_t *tid;
        json_array_foreach(json_object_get(doc, "shards"), i, tid)
            mk_coord_forget(api->coord, json_string_value(tid));
        live_set(api, id, false);
    }
    pthread_mutex_unlock(&p->fin);
    json_decref(copy);
    return v;
}

/* Whether every share of the run has ended (cheap: the queue's states only). */
static bool shards_ended(mk_api_t *api, const json_t *doc)
{
    size_t i;
    json_t *tid;
    bool ended = true;
    json_array_foreach(json_object_get(doc, "shards"), i, tid)
    {
        json_t *task = mk_queue_task(mk_coord_queue(api->coord), json_string_value(tid));
        const char *st = jstr(task, "state");
        ended =
            ended &&
            !(st && (!strcmp(st, "queued") || !strcmp(st, "assigned") || !strcmp(st, "running")));
        json_decref(task);
    }
    return ended;
}

void mk_api_perf_maintain(mk_api_t *api)
{
    struct mk_api_perf *p = api->coord ? perf_of(api) : NULL;
    int64_t now = mk_mock_now_ms();
    if (p == NULL || now - p->last_ms < 1000)
        return;
    p->last_ms = now;
    json_t *docs;
    if (!p->loaded && mk_api_docs_list(api, KIND_RESULT, NULL, &docs, NULL) == 0) {
        size_t i;
        json_t *d;
        json_array_foreach(docs, i, d)
        {
            if (!json_object_get(d, "result"))
                live_set(api, jstr(d, "id"), true);
        }
        json_decref(docs);
        p->loaded = true;
    }
    pthread_mutex_lock(&p->mu);
    json_t *ids = json_deep_copy(p->live);
    pthread_mutex_unlock(&p->mu);
    const char *id;
    json_t *v;
    json_object_foreach(ids, id, v)
    {
        json_t *doc = doc_by_id(api, KIND_RESULT, id, NULL);
        if (doc == NULL || json_object_get(doc, "result"))
            live_set(api, id, false); /* deleted, or stored by a reader */
        else if (shards_ended(api, doc))
            json_decref(run_view(api, doc));
        json_decref(doc);
    }
    json_decref(ids);
}

static bool is_live(const json_t *view)
{
    const char *st = jstr(view, "status");
    return st && (!strcmp(st, "queued") || !strcmp(st, "running"));
}

/* ---- runs ---------------------------------------------------------------------------------- */

static int reply_task(ctx_t *c, json_t *doc)
{
    char started[32];
    iso(json_integer_value(json_object_get(doc, "createdAt")), started);
    return mk_api_reply_json(c->req, 202,
                             json_pack("{s:s, s:s, s:s, s:s, s:i, s:O}", "id", jstr(doc, "id"),
                                       "name", jstr(doc, "name"), "status", "queued", "startedAt",
                                       started, "runners",
                                       (int)json_integer_value(json_object_get(doc, "runners")),
                                       "shards", json_object_get(doc, "shards")));
}

/* Submits config in the caller's namespace (the body's, ?namespace=, X-Namespace). */
static int run_config(ctx_t *c, json_t *config, json_t *body, const char *forced_ns, json_t *extra)
{
    const char *ns = forced_ns ? forced_ns : mk_api_namespace(c, body);
    if (ns == NULL)
        return 400;
    if (!mk_api_may(c, "runs:write", ns))
        return mk_api_reply_fmt(c, MK_EFORBIDDEN, "runs:write needed in namespace '%s'", ns);
    mk_api_note_ns(c, ns);
    json_object_del(config, "namespace");
    json_t *doc;
    mk_err_t err;
    if (submit(c->api, config, ns, extra, &doc, &err) != 0)
        return mk_api_reply_err(c, &err);
    int status = reply_task(c, doc);
    json_decref(doc);
    return status;
}

static int perf_run(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    int status;
    const char *config_id = jstr(body, "configId");
    if (config_id && !json_object_get(body, "scenario")) {
        /* A stored config, with the call's fields on top. */
        json_t *stored = mk_api_doc_get(c, KIND_CONFIG, config_id, "perf config");
        if (stored == NULL) {
            json_decref(body);
            return 404;
        }
        json_t *cfg = config_with(stored, body);
        json_t *extra = json_pack("{s:s}", "configId", config_id);
        status = run_config(c, cfg, body, jstr(stored, "namespace"), extra);
        json_decref(extra);
        json_decref(cfg);
        json_decref(stored);
    } else {
        json_t *extra = config_id ? json_pack("{s:s}", "configId", config_id) : json_object();
        json_t *cfg = json_deep_copy(body);
        json_object_del(cfg, "configId");
        status = run_config(c, cfg, body, NULL, extra);
        json_decref(extra);
        json_decref(cfg);
    }
    json_decref(body);
    return status;
}

/* The requests of a Postman v2.1 collection (folders flattened, in order) as scenario requests:
 * method, url (raw), enabled headers, raw body. */
static void postman_requests(const json_t *items, json_t *out)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (json_is_array(json_object_get(it, "item"))) {
            postman_requests(json_object_get(it, "item"), out);
            continue;
        }
        json_t *rq = json_object_get(it, "request");
        json_t *url = json_object_get(rq, "url");
        const char *raw = json_is_string(url) ? json_string_value(url) : jstr(url, "raw");
        if (raw == NULL)
            continue;
        json_t *r = json_pack("{s:s, s:s}", "method",
                              jstr(rq, "method") ? jstr(rq, "method") : "GET", "url", raw);
        if (jstr(it, "name"))
            json_object_set(r, "name", json_object_get(it, "name"));
        json_t *headers = json_object(), *h;
        size_t k;
        json_array_foreach(json_object_get(rq, "header"), k, h)
        {
            if (jstr(h, "key") && jstr(h, "value") && !json_is_true(json_object_get(h, "disabled")))
                json_object_set(headers, jstr(h, "key"), json_object_get(h, "value"));
        }
        json_object_set_new(r, "headers", headers);
        json_t *b = json_object_get(rq, "body");
        if (jstr(b, "mode") && !strcmp(jstr(b, "mode"), "raw") && jstr(b, "raw"))
            json_object_set(r, "body", json_object_get(b, "raw"));
        json_array_append_new(out, r);
    }
}

static int perf_run_collection(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *cid = jstr(body, "collectionId");
    if (cid == NULL) {
        json_decref(body);
        return mk_api_reply_fmt(c, MK_EINVAL, "collectionId: required");
    }
    json_t *col = mk_api_doc_get(c, KIND_COLLECTION, cid, "collection");
    if (col == NULL) {
        json_decref(body);
        return 404;
    }
    json_t *postman = json_object_get(col, "collection");
    json_t *requests = json_array(), *vars = json_object(), *v;
    postman_requests(json_object_get(postman, "item"), requests);
    size_t i;
    json_array_foreach(json_object_get(postman, "variable"), i, v)
    {
        if (jstr(v, "key") && json_object_get(v, "value"))
            json_object_set(vars, jstr(v, "key"), json_object_get(v, "value"));
    }
    if (json_is_object(json_object_get(body, "variables")))
        json_object_update(vars, json_object_get(body, "variables"));
    if (jstr(body, "baseUrl"))
        json_object_set(vars, "baseUrl", json_object_get(body, "baseUrl"));
    json_t *cfg = json_deep_copy(body);
    static const char *const drop[] = {"collectionId", "variables", "baseUrl"};
    for (size_t k = 0; k < sizeof drop / sizeof *drop; k++)
        json_object_del(cfg, drop[k]);
    json_object_set_new(cfg, "scenario",
                        json_pack("{s:o, s:o}", "requests", requests, "variables", vars));
    if (!jstr(cfg, "name"))
        json_object_set(cfg, "name", json_object_get(col, "name"));
    json_t *extra = json_pack("{s:s}", "collectionId", cid);
    int status = run_config(c, cfg, NULL, jstr(col, "namespace"), extra);
    json_decref(extra);
    json_decref(cfg);
    json_decref(col);
    json_decref(body);
    return status;
}

static json_t *result_doc(ctx_t *c, const char *id)
{
    return mk_api_doc_get(c, KIND_RESULT, id, "perf result");
}

/* Asks every share still running to stop (queued ones are cancelled outright). */
static void stop_shards(mk_api_t *api, const json_t *doc)
{
    if (api->coord == NULL)
        return;
    mk_queue_t *q = mk_coord_queue(api->coord);
    size_t i;
    json_t *tid;
    json_array_foreach(json_object_get(doc, "shards"), i, tid)
    {
        const char *id = json_string_value(tid);
        json_t *task = mk_queue_task(q, id);
        const char *st = jstr(task, "state");
        if (st && !strcmp(st, "queued"))
            mk_queue_cancel(q, id, mk_mock_now_ms(), NULL);
        else if (st && (!strcmp(st, "assigned") || !strcmp(st, "running")))
            mk_coord_stop_task(api->coord, id);
        json_decref(task);
    }
}

static int perf_stop(ctx_t *c)
{
    json_t *doc = result_doc(c, mk_api_param(c, "id"));
    if (doc == NULL)
        return 404;
    mk_api_note_ns(c, jstr(doc, "namespace"));
    json_t *view = run_view(c->api, doc);
    int status;
    if (view && !is_live(view)) {
        status = mk_api_reply_fmt(c, MK_ECONFLICT, "perf run '%s' has ended (status %s)",
                                  jstr(doc, "id"), jstr(view, "status"));
    } else {
        json_object_set_new(doc, "stopRequested", json_true());
        mk_err_t err;
        if (mk_api_doc_put(c->api, KIND_RESULT, jstr(doc, "id"), jstr(doc, "namespace"), doc,
                           &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            stop_shards(c->api, doc);
            status = mk_api_reply_json(c->req, 200,
                                       json_pack("{s:s, s:s, s:s}", "id", jstr(doc, "id"), "name",
                                                 jstr(doc, "name"), "status", "stopping"));
        }
    }
    json_decref(view);
    json_decref(doc);
    return status;
}

static int newest_first(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "createdAt"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "createdAt"));
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The caller's results (config_id: that config's only), newest first, as an array. */
static json_t *results_list(ctx_t *c, const char *config_id)
{
    json_t *docs = mk_api_docs_visible(c, KIND_RESULT, "runs:read");
    if (docs == NULL)
        return NULL;
    size_t n = json_array_size(docs), k = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    const char *status = mk_api_query(c, "status");
    for (size_t i = 0; v && i < n; i++) {
        json_t *d = json_array_get(docs, i);
        if (config_id && (!jstr(d, "configId") || strcmp(jstr(d, "configId"), config_id)))
            continue;
        json_t *x = run_view(c->api, d);
        if (x && (!status || (jstr(x, "status") && !strcmp(jstr(x, "status"), status))))
            v[k++] = x;
        else
            json_decref(x);
    }
    qsort(v, k, sizeof *v, newest_first);
    json_t *out = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(out, v[i]);
    free(v);
    json_decref(docs);
    return out;
}

static int results_index(ctx_t *c)
{
    json_t *out = results_list(c, mk_api_query(c, "configId"));
    return out ? mk_api_reply_json(c->req, 200, out) : 500;
}

static int results_get(ctx_t *c)
{
    json_t *doc = result_doc(c, mk_api_param(c, "id"));
    if (doc == NULL)
        return 404;
    json_t *v = run_view(c->api, doc);
    json_decref(doc);
    return v ? mk_api_reply_json(c->req, 200, v) : 500;
}

/* A live run is stopped first; its shares' snapshots go, and the tasks of shares that have
 * ended (a share still stopping keeps its task until its runner reports). */
void mk_api_perf_result_forget(mk_api_t *api, const json_t *doc)
{
    stop_shards(api, doc);
    size_t i;
    json_t *tid;
    json_array_foreach(json_object_get(doc, "shards"), i, tid)
    {
        if (api->coord) {
            mk_coord_forget(api->coord, json_string_value(tid));
            mk_queue_remove(mk_coord_queue(api->coord), json_string_value(tid), NULL);
        }
    }
    live_set(api, jstr(doc, "id"), false);
}

/* Live until its final result is stored (within a second of its last share's end). */
bool mk_api_perf_result_live(mk_api_t *api, const json_t *aux, const json_t *doc)
{
    (void)api;
    (void)aux;
    return !json_is_object(json_object_get(doc, "result"));
}

static int results_delete(ctx_t *c)
{
    return mk_api_doc_delete(c, KIND_RESULT, "perf result", mk_api_perf_result_forget);
}

static int reply_html(ctx_t *c, mk_buf_t *b)
{
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Type"), MK_STR_LIT("text/html; charset=utf-8"));
    mk_httpd_respond(c->req, 200, (mk_str_t){b->data ? b->data : "", b->len});
    return 200;
}

/* The views of ids (a comma-separated list; 2 to MAX_COMPARE), or NULL after answering. */
static json_t *views_of(ctx_t *c, const char *ids)
{
    if (ids == NULL) {
        mk_api_reply_fmt(c, MK_EINVAL, "ids: required (?ids=a,b)");
        return NULL;
    }
    json_t *out = json_array();
    char *list = strdup(ids), *save = NULL;
    for (char *id = strtok_r(list, ",", &save); id && out; id = strtok_r(NULL, ",", &save)) {
        json_t *doc = json_array_size(out) < MAX_COMPARE ? result_doc(c, id) : NULL;
        if (doc == NULL) {
            if (json_array_size(out) >= MAX_COMPARE)
                mk_api_reply_fmt(c, MK_EINVAL, "ids: at most %d", MAX_COMPARE);
            json_decref(out);
            out = NULL;
            break;
        }
        json_array_append_new(out, run_view(c->api, doc));
        json_decref(doc);
    }
    free(list);
    if (out && json_array_size(out) < 2) {
        mk_api_reply_fmt(c, MK_EINVAL, "ids: two or more result ids, comma-separated");
        json_decref(out);
        out = NULL;
    }
    return out;
}

static double metric(const json_t *r, const char *m, const char *agg)
{
    return json_number_value(
        json_object_get(json_object_get(json_object_get(r, "metrics"), m), agg));
}

static int results_compare(ctx_t *c)
{
    json_t *views = views_of(c, mk_api_query(c, "ids"));
    if (views == NULL)
        return 400;
    const char *format = mk_api_query(c, "format");
    if (format && !strcmp(format, "html")) {
        mk_buf_t b;
        mk_buf_init(&b, 0);
        mk_perf_report_compare_html(json_array_get(views, 0), json_array_get(views, 1), &b);
        int status = reply_html(c, &b);
        mk_buf_free(&b);
        json_decref(views);
        return status;
    }
    /* Each metric's values in the order asked, and the change from the first (the baseline). */
    static const char *const rows[][3] = {
        {"http_reqs", "count", "http_reqs"},
        {"http_reqs", "rate", "http_reqs_rate"},
        {"http_req_duration", "avg", "http_req_duration_avg"},
        {"http_req_duration", "med", "http_req_duration_med"},
        {"http_req_duration", "p(95)", "http_req_duration_p95"},
        {"http_req_duration", "p(99)", "http_req_duration_p99"},
        {"http_req_failed", "rate", "http_req_failed_rate"},
    };
    json_t *cmp = json_pack("{s:O}", "baseline", json_object_get(json_array_get(views, 0), "id"));
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        json_t *vals = json_array(), *chg = json_array(), *x;
        double base = metric(json_array_get(views, 0), rows[r][0], rows[r][1]);
        size_t i;
        json_array_foreach(views, i, x)
        {
            double v = metric(x, rows[r][0], rows[r][1]);
            json_array_append_new(vals, json_real(v));
            json_array_append_new(chg,
                                  base != 0 ? json_real(100 * (v - base) / base) : json_null());
        }
        json_object_set_new(cmp, rows[r][2],
                            json_pack("{s:o, s:o}", "values", vals, "changePct", chg));
    }
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:o, s:o}", "results", views, "comparison", cmp));
}

static int results_history(ctx_t *c)
{
    json_t *out = results_list(c, mk_api_param(c, "configId"));
    return out ? mk_api_reply_json(c->req, 200, out) : 500;
}

/* Oldest first: one point per finished run of the config. */
static int results_trend(ctx_t *c)
{
    const char *cid = mk_api_param(c, "configId");
    json_t *list = results_list(c, cid);
    if (list == NULL)
        return 500;
    json_t *points = json_array();
    for (size_t i = json_array_size(list); i-- > 0;) {
        json_t *r = json_array_get(list, i);
        if (is_live(r))
            continue;
        json_array_append_new(
            points,
            json_pack("{s:O, s:O, s:O, s:f, s:f, s:f, s:f, s:f, s:f, s:b}", "id",
                      json_object_get(r, "id"), "startedAt", json_object_get(r, "startedAt"),
                      "status", json_object_get(r, "status"), "reqs",
                      metric(r, "http_reqs", "count"), "rps", metric(r, "http_reqs", "rate"), "avg",
                      metric(r, "http_req_duration", "avg"), "p95",
                      metric(r, "http_req_duration", "p(95)"), "p99",
                      metric(r, "http_req_duration", "p(99)"), "errorRate",
                      metric(r, "http_req_failed", "rate"), "thresholdsPassed",
                      json_is_true(json_object_get(r, "thresholdsPassed"))));
    }
    json_decref(list);
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:s, s:I, s:o}", "configId", cid, "count",
                                       (json_int_t)json_array_size(points), "points", points));
}

static int results_report(ctx_t *c)
{
    json_t *doc = result_doc(c, mk_api_param(c, "id"));
    if (doc == NULL)
        return 404;
    json_t *v = run_view(c->api, doc), *other = NULL;
    json_decref(doc);
    const char *with = mk_api_query(c, "compare");
    if (with) {
        json_t *odoc = result_doc(c, with);
        if (odoc == NULL) {
            json_decref(v);
            return 404;
        }
        other = run_view(c->api, odoc);
        json_decref(odoc);
    }
    mk_buf_t b;
    mk_buf_init(&b, 0);
    if (other)
        mk_perf_report_compare_html(v, other, &b);
    else
        mk_perf_report_html(v, &b);
    int status = reply_html(c, &b);
    mk_buf_free(&b);
    json_decref(other);
    json_decref(v);
    return status;
}

/* Appends the timeline's points after *last (advancing it) as SSE "progress" events, up to
 * second upto. */
static void sse_points(const json_t *timeline, double upto, double *last, mk_buf_t *out)
{
    size_t i;
    json_t *p;
    json_array_foreach(timeline, i, p)
    {
        double t = json_number_value(json_object_get(p, "t"));
        if (t <= *last || t > upto)
            continue;
        char *data = json_dumps(p, JSON_COMPACT);
        if (data)
            mk_buf_appendf(out, "id: %.0f\nevent: progress\ndata: %s\n\n", t, data);
        free(data);
        *last = t;
    }
}

/* The live stream of a run (mk_api_sse, every 500 ms on the request's loop): each second once
 * every running share has reported it, merged; the new snapshots only are read. Once every share
 * has ended: the seconds left and "end" with the result (without timeline and histogram). */
static bool perf_events_poll(mk_api_t *api, const char *id, double *last, mk_buf_t *out)
{
    json_t *doc = doc_by_id(api, KIND_RESULT, id, NULL);
    if (doc == NULL)
        return false;
    bool live = !json_object_get(doc, "result") && api->coord && !shards_ended(api, doc);
    if (live) {
        mk_perf_merge_t m;
        double upto = INFINITY;
        size_t i, k;
        json_t *tid, *e;
        mk_perf_merge_init(&m, NULL);
        json_array_foreach(json_object_get(doc, "shards"), i, tid)
        {
            const char *tname = json_string_value(tid);
            json_t *task = mk_queue_task(mk_coord_queue(api->coord), tname);
            const char *st = jstr(task, "state");
            bool running =
                st && (!strcmp(st, "queued") || !strcmp(st, "assigned") || !strcmp(st, "running"));
            json_decref(task);
            /* A runner's n-th snapshot is its n-th second: the ones from second *last on. */
            json_t *events =
                mk_coord_events_after(api->coord, tname, *last > 1 ? (int64_t)*last - 1 : -1);
            double top = 0;
            json_array_foreach(events, k, e)
            {
                json_t *ev = json_object_get(e, "event"), *stats = json_object_get(ev, "stats");
                const char *type = jstr(ev, "type");
                if (type && !strcmp(type, "snapshot") && mk_perf_merge_add(&m, stats, NULL) == 0 &&
                    json_number_value(json_object_get(stats, "t")) > top)
                    top = json_number_value(json_object_get(stats, "t"));
            }
            json_decref(events);
            if (running && ceil(top - 0.05) < upto)
                upto = ceil(top - 0.05);
        }
        json_t *tl = mk_perf_merge_timeline(&m);
        sse_points(tl, upto, last, out);
        json_decref(tl);
        mk_perf_merge_release(&m);
    } else {
        json_t *v = run_view(api, doc);
        if (v) {
            sse_points(json_object_get(v, "timeline"), INFINITY, last, out);
            json_object_del(v, "timeline");
            json_object_del(v, "histogram");
            char *data = json_dumps(v, JSON_COMPACT);
            mk_buf_appendf(out, "event: end\ndata: %s\n\n", data ? data : "{}");
            free(data);
        }
        json_decref(v);
    }
    json_decref(doc);
    return live;
}

/* Server-Sent Events, live: "progress" (id = the second of the run, data = its timeline point,
 * every runner merged) as each second completes, then "end" with the result. Last-Event-ID
 * resumes after the second a reconnecting client saw. */
static int perf_events(ctx_t *c)
{
    return mk_api_doc_sse(c, KIND_RESULT, "perf result", perf_events_poll);
}

/* ---- configs ------------------------------------------------------------------------------- */

/* Validates body as a run config and stores it under id; answers. */
static int config_store(ctx_t *c, json_t *body, const char *id, const json_t *old)
{
    const char *ns = old ? jstr(old, "namespace") : mk_api_namespace(c, body);
    if (ns == NULL)
        return 400;
    if (!mk_api_may(c, "runs:write", ns))
        return mk_api_reply_fmt(c, MK_EFORBIDDEN, "runs:write needed in namespace '%s'", ns);
    mk_api_note_ns(c, ns);
    json_t *doc = json_deep_copy(body);
    json_object_del(doc, "namespace");
    mk_perf_config_t *cfg;
    mk_err_t err;
    if (mk_perf_config_parse(doc, &cfg, &err) != 0) {
        json_decref(doc);
        return mk_api_reply_err(c, &err);
    }
    mk_perf_config_free(cfg);
    int64_t now = mk_mock_now_ms();
    json_object_set_new(doc, "id", json_string(id));
    json_object_set_new(doc, "namespace", json_string(ns));
    json_object_set_new(
        doc, "createdAt",
        json_integer(old ? json_integer_value(json_object_get(old, "createdAt")) : now));
    json_object_set_new(doc, "updatedAt", json_integer(now));
    if (mk_api_doc_put(c->api, KIND_CONFIG, id, ns, doc, &err) != 0) {
        json_decref(doc);
        return mk_api_reply_err(c, &err);
    }
    return mk_api_reply_json(c->req, old ? 200 : 201, doc);
}

static int configs_list(ctx_t *c)
{
    json_t *docs = mk_api_docs_visible(c, KIND_CONFIG, "runs:read");
    return docs ? mk_api_reply_json(c->req, 200, docs) : 500;
}

static int configs_create(ctx_t *c)
{
    return mk_api_doc_create(c, config_store);
}

static int configs_get(ctx_t *c)
{
    return mk_api_doc_show(c, KIND_CONFIG, "perf config");
}

static int configs_update(ctx_t *c)
{
    return mk_api_doc_update(c, KIND_CONFIG, "perf config", config_store);
}

static int configs_delete(ctx_t *c)
{
    return mk_api_doc_delete(c, KIND_CONFIG, "perf config", NULL);
}

#define PR "/api/v1/perf-results"
const mk_api_endpoint_t mk_api_perf_endpoints[] = {
    {"POST", "/api/v1/perf/run", perf_run, "runs:write",
     "Queue a load test (k6-style config: scenario, vus/duration or rate, stages, thresholds, "
     "runners; or configId)",
     0},
    {"POST", "/api/v1/perf/run-collection", perf_run_collection, "runs:write",
     "Queue a load test whose requests are an API test collection's (collectionId, vus, ...)", 0},
    {"POST", "/api/v1/perf/stop/:id", perf_stop, "runs:write",
     "Stop a load test within a second; it keeps what was measured (status stopped)", 0},
    {"GET", "/api/v1/perf/:id/events", perf_events, "runs:read",
     "Per-second progress as live Server-Sent Events (Last-Event-ID resumes), then the result",
     MK_API_STREAM},
    {"GET", PR, results_index, "runs:read",
     "Load test results (PerfResult), newest first (?configId=, ?status=, ?namespace=)",
     MK_API_HEAVY},
    {"GET", PR "/compare", results_compare, "runs:read",
     "Compare results: ?ids=a,b[,...] (JSON), &format=html (the first two side by side)",
     MK_API_HEAVY},
    {"GET", PR "/history/:configId", results_history, "runs:read",
     "Results of one perf config, newest first", MK_API_HEAVY},
    {"GET", PR "/trend/:configId", results_trend, "runs:read",
     "Throughput, latency and error rate of one perf config's finished runs, oldest first",
     MK_API_HEAVY},
    {"GET", PR "/:id", results_get, "runs:read",
     "A load test's result (live while it runs: merged from the runners' snapshots)", 0},
    {"DELETE", PR "/:id", results_delete, "runs:write",
     "Delete a load test result (stopped first when live)", 0},
    {"GET", PR "/:id/report", results_report, "runs:read",
     "Self-contained HTML report with SVG plots (?compare=otherId: side by side)", 0},
    {"GET", "/api/v1/perf-configs", configs_list, "runs:read", "Stored load test configs",
     MK_API_HEAVY},
    {"POST", "/api/v1/perf-configs", configs_create, "runs:write",
     "Store a load test config (validated as POST /api/v1/perf/run validates)", 0},
    {"GET", "/api/v1/perf-configs/:id", configs_get, "runs:read", "A stored load test config", 0},
    {"PUT", "/api/v1/perf-configs/:id", configs_update, "runs:write",
     "Replace a stored load test config", 0},
    {"DELETE", "/api/v1/perf-configs/:id", configs_delete, "runs:write",
     "Delete a stored load test config", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
