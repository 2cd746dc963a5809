/* The coordinator's task queue: tasks and runners in memory under one lock, every task
 * transition written through to the repository before the call returns. */
#include "queue/queue.h"

#include "strmap/strmap.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_KIND "task"

typedef struct task {
    char *id;
    char *capability;
    char *ns;
    char *payload;
    char *result; /* NULL until finished with one */
    char *error;  /* NULL or why it failed */
    char runner[40];
    mk_task_state_t state;
    int attempt;
    bool cancel_sent; /* the runner must be told to stop this attempt */
    int64_t created_at, updated_at, started_at, timeout_ms;
    int64_t lost_since; /* in flight when the queue was loaded: its runner has until then + the
                         * heartbeat timeout to come back */
    char *group; /* a load test's run (payload "runId"): its shares go to different runners */
} task_t;

typedef struct runner {
    char id[40];
    char *name, *ns, *version, *kind, *address;
    char **caps;
    size_t ncaps;
    bool shared, online;
    int max_concurrent;
    int64_t registered_at, last_heartbeat;
    json_t *cancel; /* task ids to report at the next heartbeat */
} runner_t;

struct mk_queue {
    pthread_mutex_t mu;
    mk_repo_t *repo;
    mk_queue_config_t cfg;
    mk_strmap_t *tasks; /* id -> task_t */
    task_t **order;     /* creation order, oldest first */
    size_t ntasks, cap;
    mk_strmap_t *runners; /* id -> runner_t */
    uint64_t seq;
    void (*notify)(void *ud);
    void *notify_ud;
};

static const char *const state_names[] = {"queued", "assigned",  "running",  "succeeded",
                                          "failed", "cancelled", "timed_out"};

const char *mk_task_state_name(mk_task_state_t s)
{
    return (unsigned)s < sizeof state_names / sizeof *state_names ? state_names[s] : "unknown";
}

static bool final_state(mk_task_state_t s)
{
    return s >= MK_TASK_SUCCEEDED;
}

/* The legal transitions, one row per state. */
static const unsigned allowed[] = {
    [MK_TASK_QUEUED] = 1u << MK_TASK_ASSIGNED | 1u << MK_TASK_CANCELLED | 1u << MK_TASK_FAILED,
    [MK_TASK_ASSIGNED] = 1u << MK_TASK_RUNNING | 1u << MK_TASK_QUEUED | 1u << MK_TASK_SUCCEEDED |
                         1u << MK_TASK_FAILED | 1u << MK_TASK_CANCELLED | 1u << MK_TASK_TIMED_OUT,
    [MK_TASK_RUNNING] = 1u << MK_TASK_QUEUED | 1u << MK_TASK_SUCCEEDED | 1u << MK_TASK_FAILED |
                        1u << MK_TASK_CANCELLED | 1u << MK_TASK_TIMED_OUT,
};

bool mk_task_transition_ok(mk_task_state_t from, mk_task_state_t to)
{
    if ((unsigned)from >= sizeof allowed / sizeof *allowed)
        return false;
    return (allowed[from] >> to) & 1u;
}

static mk_task_state_t state_of(const char *name)
{
    for (size_t i = 0; i < sizeof state_names / sizeof *state_names; i++)
        if (strcmp(state_names[i], name) == 0)
            return (mk_task_state_t)i;
    return MK_TASK_FAILED;
}

/* --- persistence --- */

static json_t *parsed_or_null(const char *text)
{
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : (text ? json_string(text) : json_null());
}

static json_t *task_json(const task_t *t, bool full)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:s?, s:I, s:I, s:I, s:s?}", "id", t->id, "capability",
                  t->capability, "namespace", t->ns, "state", mk_task_state_name(t->state),
                  "attempt", t->attempt, "runnerId", t->runner[0] ? t->runner : NULL, "createdAt",
                  (json_int_t)t->created_at, "updatedAt", (json_int_t)t->updated_at, "timeoutMs",
                  (json_int_t)t->timeout_ms, "error", t->error);
    if (o && full) {
        json_object_set_new(o, "payload", parsed_or_null(t->payload));
        json_object_set_new(o, "result", parsed_or_null(t->result));
    }
    return o;
}

/* The stored form keeps payload and result as text (they may be large and are opaque here). */
static int persist(mk_queue_t *q, const task_t *t, mk_err_t *err)
{
    json_t *o = task_json(t, false);
    if (o == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    json_object_set_new(o, "payloadText", json_string(t->payload ? t->payload : ""));
    if (t->result)
        json_object_set_new(o, "resultText", json_string(t->result));
    json_object_set_new(o, "startedAt", json_integer(t->started_at));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_repo_doc_t doc = {TASK_KIND, t->id, t->ns, text, t->updated_at};
    int rc = mk_repo_put_docs(q->repo, &doc, 1, err);
    free(text);
    return rc;
}

/* Changes a task's state after checking the machine allows it, and writes it through. On a
 * refused transition or a failed write the task is left as it was. */
static int transition(mk_queue_t *q, task_t *t, mk_task_state_t to, int64_t now_ms, mk_err_t *err)
{
    if (!mk_task_transition_ok(t->state, to))
        return mk_err_set(err, MK_ECONFLICT, "task %s: %s -> %s is not allowed", t->id,
                          mk_task_state_name(t->state), mk_task_state_name(to));
    mk_task_state_t was = t->state;
    int64_t was_updated = t->updated_at;
    t->state = to;
    t->updated_at = now_ms;
    int rc = persist(q, t, err);
    if (rc != 0) {
        t->state = was;
        t->updated_at = was_updated;
    }
    return rc;
}

static void task_free(task_t *t)
{
    if (t == NULL)
        return;
    free(t->id);
    free(t->capability);
    free(t->ns);
    free(t->payload);
    free(t->result);
    free(t->error);
    free(t->group);
    free(t);
}

/* The run a load test's share belongs to; NULL for other tasks. */
static char *group_of(const char *capability, const char *payload)
{
    if (capability == NULL || payload == NULL || strcmp(capability, "performance") != 0)
        return NULL;
    json_t *p = json_loads(payload, 0, NULL);
    const char *run = json_string_value(json_object_get(p, "runId"));
    char *g = run && *run ? strdup(run) : NULL;
    json_decref(p);
    return g;
}

/* Whether the runner holds a share of group already (two shares of one load test on one runner
 * would not spread the load). */
static bool runs_group(mk_queue_t *q, const char *runner_id, const char *group)
{
    for (size_t i = 0; i < q->ntasks; i++) {
        const task_t *t = q->order[i];
        if ((t->state == MK_TASK_ASSIGNED || t->state == MK_TASK_RUNNING) && t->group &&
            strcmp(t->group, group) == 0 && strcmp(t->runner, runner_id) == 0)
            return true;
    }
    return false;
}

static int add_task(mk_queue_t *q, task_t *t)
{
    if (q->ntasks == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        task_t **grown = realloc(q->order, cap * sizeof *grown);
        if (grown == NULL)
            return MK_ENOMEM;
        q->order = grown;
        q->cap = cap;
    }
    if (mk_strmap_set(q->tasks, mk_str_of(t->id), t) != 0)
        return MK_ENOMEM;
    q->order[q->ntasks++] = t;
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int load_task(void *ud, const mk_repo_doc_t *doc)
{
    mk_queue_t *q = ud;
    json_t *o = json_loads(doc->json, 0, NULL);
    task_t *t = calloc(1, sizeof *t);
    if (o == NULL || t == NULL) {
        json_decref(o);
        free(t);
        return 0; /* a document this build cannot read is skipped, not fatal */
    }
    t->id = strdup(doc->id);
    t->capability = dup_or_null(json_string_value(json_object_get(o, "capability")));
    t->ns = dup_or_null(json_string_value(json_object_get(o, "namespace")));
    t->payload = dup_or_null(json_string_value(json_object_get(o, "payloadText")));
    t->result = dup_or_null(json_string_value(json_object_get(o, "resultText")));
    t->error = dup_or_null(json_string_value(json_object_get(o, "error")));
    const char *runner = json_string_value(json_object_get(o, "runnerId"));
    snprintf(t->runner, sizeof t->runner, "%s", runner ? runner : "");
    const char *state = json_string_value(json_object_get(o, "state"));
    t->state = state ? state_of(state) : MK_TASK_FAILED;
    t->attempt = (int)json_integer_value(json_object_get(o, "attempt"));
    t->created_at = json_integer_value(json_object_get(o, "createdAt"));
    t->updated_at = json_integer_value(json_object_get(o, "updatedAt"));
    t->started_at = json_integer_value(json_object_get(o, "startedAt"));
    t->timeout_ms = json_integer_value(json_object_get(o, "timeoutMs"));
    t->group = group_of(t->capability, t->payload);
    json_decref(o);
    if (t->id == NULL || t->capability == NULL || t->ns == NULL || add_task(q, t) != 0) {
        task_free(t);
        return 0;
    }
    return 0;
}

static int by_created(const void *a, const void *b)
{
    const task_t *x = *(task_t *const *)a, *y = *(task_t *const *)b;
    return (x->created_at > y->created_at) - (x->created_at < y->created_at);
}

int mk_queue_open(mk_repo_t *repo, const mk_queue_config_t *cfg, int64_t now_ms, mk_queue_t **out,
                  mk_err_t *err)
{
    mk_queue_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    pthread_mutex_init(&q->mu, NULL);
    q->repo = repo;
    q->cfg = cfg ? *cfg : (mk_queue_config_t){0};
    if (q->cfg.max_attempts <= 0)
        q->cfg.max_attempts = 3;
    if (q->cfg.heartbeat_timeout_ms <= 0)
        q->cfg.heartbeat_timeout_ms = 30000;
    if (q->cfg.task_timeout_ms <= 0)
        q->cfg.task_timeout_ms = 30 * 60 * 1000;
    q->tasks = mk_strmap_new();
    q->runners = mk_strmap_new();
    q->seq = (uint64_t)now_ms;
    int rc = q->tasks && q->runners ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc == 0)
        rc = mk_repo_list_docs(repo, TASK_KIND, NULL, load_task, q, err);
    if (rc != 0) {
        mk_queue_free(q);
        return rc;
    }
    if (q->ntasks > 1)
        qsort(q->order, q->ntasks, sizeof *q->order, by_created);
    /* The runners of tasks in flight get a heartbeat timeout from now to come back. */
    for (size_t i = 0; i < q->ntasks; i++)
        q->order[i]->lost_since = now_ms;
    *out = q;
    return 0;
}

static void runner_free(runner_t *r)
{
    if (r == NULL)
        return;
    free(r->name);
    free(r->ns);
    free(r->version);
    free(r->kind);
    free(r->address);
    for (size_t i = 0; i < r->ncaps; i++)
        free(r->caps[i]);
    free(r->caps);
    json_decref(r->cancel);
    free(r);
}

void mk_queue_free(mk_queue_t *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->ntasks; i++)
        task_free(q->order[i]);
    free(q->order);
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (q->runners && mk_strmap_next(q->runners, &pos, &k, &v))
        runner_free(v);
    mk_strmap_free(q->tasks);
    mk_strmap_free(q->runners);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

void mk_queue_set_notify(mk_queue_t *q, void (*cb)(void *ud), void *ud)
{
    pthread_mutex_lock(&q->mu);
    q->notify = cb;
    q->notify_ud = ud;
    pthread_mutex_unlock(&q->mu);
}

/* Called with the lock held; the callback runs after it is released. */
static void unlock_and_notify(mk_queue_t *q, bool wake)
{
    void (*cb)(void *) = wake ? q->notify : NULL;
    void *ud = q->notify_ud;
    pthread_mutex_unlock(&q->mu);
    if (cb)
        cb(ud);
}

static void new_id(mk_queue_t *q, const char *prefix, char *out)
{
    snprintf(out, 40, "%s-%llx", prefix, (unsigned long long)++q->seq);
}

/* --- tasks --- */

int mk_queue_submit(mk_queue_t *q, const char *capability, const char *ns, const char *payload_json,
                    int64_t timeout_ms, int64_t now_ms, char *id_out, mk_err_t *err)
{
    if (capability == NULL || *capability == '\0' || ns == NULL || *ns == '\0')
        return mk_err_set(err, MK_EINVAL, "task: a capability and a namespace are required");
    task_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    pthread_mutex_lock(&q->mu);
    char id[40];
    new_id(q, "task", id);
    t->id = strdup(id);
    t->capability = strdup(capability);
    t->ns = strdup(ns);
    t->payload = strdup(payload_json ? payload_json : "null");
    t->group = group_of(capability, t->payload);
    t->state = MK_TASK_QUEUED;
    t->created_at = t->updated_at = now_ms;
    t->timeout_ms = timeout_ms > 0 ? timeout_ms : q->cfg.task_timeout_ms;
    int rc = t->id && t->capability && t->ns && t->payload
                 ? persist(q, t, err)
                 : mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc == 0 && add_task(q, t) != 0) {
        const char *ids[1] = {t->id};
        mk_repo_delete_docs(q->repo, TASK_KIND, ids, 1, NULL);
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        task_free(t);
        pthread_mutex_unlock(&q->mu);
        return rc;
    }
    snprintf(id_out, 40, "%s", id);
    unlock_and_notify(q, true);
    return 0;
}

static task_t *find_task(mk_queue_t *q, const char *id)
{
    return id ? mk_strmap_get(q->tasks, mk_str_of(id)) : NULL;
}

static runner_t *find_runner(mk_queue_t *q, const char *id)
{
    return id && *id ? mk_strmap_get(q->runners, mk_str_of(id)) : NULL;
}

/* Tells the task's runner (if it is known) to stop the current attempt. */
static void tell_cancel(mk_queue_t *q, task_t *t)
{
    runner_t *r = find_runner(q, t->runner);
    if (r != NULL && !t->cancel_sent) {
        json_array_append_new(r->cancel, json_string(t->id));
        t->cancel_sent = true;
    }
}

int mk_queue_cancel(mk_queue_t *q, const char *task_id, int64_t now_ms, mk_err_t *err)
{
    pthread_mutex_lock(&q->mu);
    task_t *t = find_task(q, task_id);
    int rc;
    if (t == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "task '%s' not found", task_id);
    } else if (final_state(t->state)) {
        rc = mk_err_set(err, MK_ECONFLICT, "task '%s' already finished (%s)", task_id,
                        mk_task_state_name(t->state));
    } else {
        bool in_flight = t->state != MK_TASK_QUEUED;
        rc = transition(q, t, MK_TASK_CANCELLED, now_ms, err);
        if (rc == 0 && in_flight)
            tell_cancel(q, t);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int mk_queue_remove(mk_queue_t *q, const char *task_id, mk_err_t *err)
{
    pthread_mutex_lock(&q->mu);
    task_t *t = find_task(q, task_id);
    int rc;
    if (t == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "task '%s' not found", task_id);
    } else if (!final_state(t->state)) {
        rc = mk_err_set(err, MK_ECONFLICT, "task '%s' has not finished (%s)", task_id,
                        mk_task_state_name(t->state));
    } else {
        const char *ids[1] = {t->id};
        rc = mk_repo_delete_docs(q->repo, TASK_KIND, ids, 1, err);
        if (rc == 0) {
            mk_strmap_del(q->tasks, mk_str_of(t->id));
            for (size_t i = 0; i < q->ntasks; i++) {
                if (q->order[i] == t) {
                    memmove(&q->order[i], &q->order[i + 1], (q->ntasks - i - 1) * sizeof *q->order);
                    q->ntasks--;
                    break;
                }
            }
            task_free(t);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

json_t *mk_queue_task(mk_queue_t *q, const char *task_id)
{
    pthread_mutex_lock(&q->mu);
    task_t *t = find_task(q, task_id);
    json_t *o = t ? task_json(t, true) : NULL;
    pthread_mutex_unlock(&q->mu);
    return o;
}

json_t *mk_queue_tasks(mk_queue_t *q, const char *ns)
{
    json_t *out = json_array();
    pthread_mutex_lock(&q->mu);
    for (size_t i = q->ntasks; i > 0; i--) {
        task_t *t = q->order[i - 1];
        if (ns == NULL || strcmp(ns, t->ns) == 0)
            json_array_append_new(out, task_json(t, false));
    }
    pthread_mutex_unlock(&q->mu);
    return out;
}

/* --- runners --- */

static size_t in_flight_of(mk_queue_t *q, const char *runner_id)
{
    size_t n = 0;
    for (size_t i = 0; i < q->ntasks; i++) {
        task_t *t = q->order[i];
        if ((t->state == MK_TASK_ASSIGNED || t->state == MK_TASK_RUNNING) &&
            strcmp(t->runner, runner_id) == 0)
            n++;
    }
    return n;
}

/* The runner's tasks in flight go back to the queue (or fail when their attempts are used up). */
static void requeue_of(mk_queue_t *q, const char *runner_id, const char *why, int64_t now_ms)
{
    for (size_t i = 0; i < q->ntasks; i++) {
        task_t *t = q->order[i];
        if ((t->state != MK_TASK_ASSIGNED && t->state != MK_TASK_RUNNING) ||
            strcmp(t->runner, runner_id) != 0)
            continue;
        /* A load test is never run again: its load already happened (the run is interrupted). */
        bool once = strcmp(t->capability, "performance") == 0;
        bool last = once || t->attempt >= q->cfg.max_attempts;
        char msg[256];
        if (once)
            snprintf(msg, sizeof msg, "%s (a load test is not run again)", why);
        else
            snprintf(msg, sizeof msg, "%s (attempt %d of %d)", why, t->attempt,
                     q->cfg.max_attempts);
        free(t->error);
        t->error = strdup(msg);
        char runner[40];
        snprintf(runner, sizeof runner, "%s", t->runner);
        if (!last)
            t->runner[0] = '\0';
        if (transition(q, t, last ? MK_TASK_FAILED : MK_TASK_QUEUED, now_ms, NULL) != 0)
            snprintf(t->runner, sizeof t->runner, "%s", runner);
        t->cancel_sent = false;
    }
}

static bool has_cap(const runner_t *r, const char *cap)
{
    for (size_t i = 0; i < r->ncaps; i++)
        if (strcmp(r->caps[i], cap) == 0)
            return true;
    return false;
}

int mk_queue_register(mk_queue_t *q, const mk_queue_runner_info_t *info, int64_t now_ms,
                      char *id_out, mk_err_t *err)
{
    if (info->name == NULL || *info->name == '\0')
        return mk_err_set(err, MK_EINVAL, "runner: a name is required");
    if (!info->shared && (info->ns == NULL || *info->ns == '\0'))
        return mk_err_set(err, MK_EINVAL,
                          "runner %s: a runner that is not shared needs a namespace", info->name);
    runner_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    r->name = strdup(info->name);
    r->ns = strdup(info->shared || info->ns == NULL ? "" : info->ns);
    r->version = strdup(info->version ? info->version : "");
    r->kind = strdup(info->kind ? info->kind : "runner");
    r->address = strdup(info->address ? info->address : "");
    r->caps = calloc(info->ncapabilities ? info->ncapabilities : 1, sizeof *r->caps);
    r->cancel = json_array();
    bool ok = r->name && r->ns && r->version && r->kind && r->address && r->caps && r->cancel;
    for (size_t i = 0; ok && i < info->ncapabilities; i++) {
        r->caps[i] = strdup(info->capabilities[i]);
        ok = r->caps[r->ncaps++] != NULL;
    }
    if (!ok) {
        runner_free(r);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    r->shared = info->shared;
    r->max_concurrent = info->max_concurrent > 0 ? info->max_concurrent : 1;
    r->online = true;
    r->registered_at = r->last_heartbeat = now_ms;
    pthread_mutex_lock(&q->mu);
    /* A runner registering again under its name was restarted: what it had is lost. */
    size_t pos = 0;
    mk_str_t k;
    void *v;
    runner_t *old = NULL;
    while (old == NULL && mk_strmap_next(q->runners, &pos, &k, &v))
        if (strcmp(((runner_t *)v)->name, r->name) == 0 &&
            strcmp(((runner_t *)v)->kind, r->kind) == 0)
            old = v;
    if (old != NULL) {
        requeue_of(q, old->id, "its runner registered again", now_ms);
        mk_strmap_del(q->runners, mk_str_of(old->id));
        runner_free(old);
    }
    new_id(q, "runner", r->id);
    if (mk_strmap_set(q->runners, mk_str_of(r->id), r) != 0) {
        pthread_mutex_unlock(&q->mu);
        runner_free(r);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    snprintf(id_out, 40, "%s", r->id);
    unlock_and_notify(q, true);
    return 0;
}

int mk_queue_heartbeat(mk_queue_t *q, const char *runner_id, const char *const *running,
                       size_t nrunning, int64_t now_ms, json_t **cancel, mk_err_t *err)
{
    pthread_mutex_lock(&q->mu);
    runner_t *r = find_runner(q, runner_id);
    if (r == NULL) {
        pthread_mutex_unlock(&q->mu);
        *cancel = NULL;
        return mk_err_set(err, MK_ENOTFOUND, "runner '%s' is not registered", runner_id);
    }
    bool woke = !r->online;
    r->online = true;
    r->last_heartbeat = now_ms;
    /* What the runner runs but does not own any more (requeued, finished, cancelled). */
    for (size_t i = 0; i < nrunning; i++) {
        task_t *t = find_task(q, running[i]);
        bool owned = t && strcmp(t->runner, runner_id) == 0 &&
                     (t->state == MK_TASK_ASSIGNED || t->state == MK_TASK_RUNNING);
        if (!owned)
            json_array_append_new(r->cancel, json_string(running[i]));
    }
    *cancel = r->cancel;
    r->cancel = json_array();
    unlock_and_notify(q, woke);
    return 0;
}

/* How many tasks of ns are assigned or running, for fairness. */
static size_t active_in(mk_queue_t *q, const char *ns)
{
    size_t n = 0;
    for (size_t i = 0; i < q->ntasks; i++) {
        task_t *t = q->order[i];
        n +=
            (t->state == MK_TASK_ASSIGNED || t->state == MK_TASK_RUNNING) && strcmp(t->ns, ns) == 0;
    }
    return n;
}

void mk_queue_grant_release(mk_queue_grant_t *g)
{
    free(g->task_id);
    free(g->capability);
    free(g->ns);
    free(g->payload_json);
    memset(g, 0, sizeof *g);
}

int mk_queue_next(mk_queue_t *q, const char *runner_id, int64_t now_ms, mk_queue_grant_t *out,
                  mk_err_t *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&q->mu);
    runner_t *r = find_runner(q, runner_id);
    int rc = 0;
    if (r == NULL || !r->online) {
        rc = mk_err_set(err, MK_ENOTFOUND, "runner '%s' is not registered", runner_id);
        goto out;
    }
    if (in_flight_of(q, runner_id) >= (size_t)r->max_concurrent) {
        rc = mk_err_set(err, MK_ENOTFOUND, "runner '%s' has no free slot", runner_id);
        goto out;
    }
    task_t *best = NULL;
    size_t best_active = 0;
    for (size_t i = 0; i < q->ntasks; i++) {
        task_t *t = q->order[i];
        if (t->state != MK_TASK_QUEUED || !has_cap(r, t->capability))
            continue;
        if (!r->shared && strcmp(r->ns, t->ns) != 0)
            continue;
        if (t->group && runs_group(q, runner_id, t->group))
            continue;
        size_t active = active_in(q, t->ns);
        if (best == NULL || active < best_active) {
            best = t;
            best_active = active;
        }
    }
    if (best == NULL) {
        rc = mk_err_set(err, MK_ENOTFOUND, "no task for runner '%s'", runner_id);
        goto out;
    }
    best->attempt++;
    snprintf(best->runner, sizeof best->runner, "%s", runner_id);
    best->cancel_sent = false;
    best->started_at = now_ms;
    rc = transition(q, best, MK_TASK_ASSIGNED, now_ms, err);
    if (rc != 0) {
        best->attempt--;
        best->runner[0] = '\0';
        goto out;
    }
    out->task_id = strdup(best->id);
    out->attempt = best->attempt;
    out->capability = strdup(best->capability);
    out->ns = strdup(best->ns);
    out->payload_json = strdup(best->payload);
    out->timeout_ms = best->timeout_ms;
    out->created_at_ms = best->created_at;
    if (!out->task_id || !out->capability || !out->ns || !out->payload_json) {
        mk_queue_grant_release(out);
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
    }
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

static task_t *owned(mk_queue_t *q, const char *task_id, int attempt)
{
    task_t *t = find_task(q, task_id);
    if (t == NULL || t->attempt != attempt ||
        (t->state != MK_TASK_ASSIGNED && t->state != MK_TASK_RUNNING))
        return NULL;
    return t;
}

bool mk_queue_started(mk_queue_t *q, const char *task_id, int attempt, int64_t now_ms)
{
    pthread_mutex_lock(&q->mu);
    task_t *t = owned(q, task_id, attempt);
    bool ok = t != NULL &&
              (t->state == MK_TASK_RUNNING || transition(q, t, MK_TASK_RUNNING, now_ms, NULL) == 0);
    pthread_mutex_unlock(&q->mu);
    return ok;
}

bool mk_queue_owns(mk_queue_t *q, const char *task_id, int attempt)
{
    pthread_mutex_lock(&q->mu);
    bool ok = owned(q, task_id, attempt) != NULL;
    pthread_mutex_unlock(&q->mu);
    return ok;
}

bool mk_queue_finish(mk_queue_t *q, const char *task_id, int attempt, mk_queue_outcome_t outcome,
                     const char *error, const char *result_json, int64_t now_ms,
                     const char **reason)
{
    static const mk_task_state_t to_state[] = {
        [MK_QUEUE_SUCCEEDED] = MK_TASK_SUCCEEDED,
        [MK_QUEUE_FAILED] = MK_TASK_FAILED,
        [MK_QUEUE_CANCELLED] = MK_TASK_CANCELLED,
        [MK_QUEUE_TIMED_OUT] = MK_TASK_TIMED_OUT,
    };
    pthread_mutex_lock(&q->mu);
    task_t *t = find_task(q, task_id);
    const char *why = NULL;
    if (t == NULL)
        why = "no such task";
    else if (final_state(t->state))
        why = "task already finished";
    else if (t->attempt != attempt || t->state == MK_TASK_QUEUED)
        why = "another attempt owns the task now";
    if (why == NULL) {
        char *old_result = t->result, *old_error = t->error;
        t->result = result_json ? strdup(result_json) : NULL;
        t->error = error && *error ? strdup(error) : NULL;
        if (transition(q, t, to_state[outcome], now_ms, NULL) != 0) {
            free(t->result);
            free(t->error);
            t->result = old_result;
            t->error = old_error;
            why = "the result could not be stored";
        } else {
            free(old_result);
            free(old_error);
        }
    }
    if (reason)
        *reason = why;
    /* A finished task frees a slot. */
    unlock_and_notify(q, why == NULL);
    return why == NULL;
}

void mk_queue_tick(mk_queue_t *q, int64_t now_ms)
{
    pthread_mutex_lock(&q->mu);
    bool wake = false;
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(q->runners, &pos, &k, &v)) {
        runner_t *r = v;
        if (r->online && now_ms - r->last_heartbeat > q->cfg.heartbeat_timeout_ms) {
            r->online = false;
            requeue_of(q, r->id, "its runner stopped sending heartbeats", now_ms);
            wake = true;
        }
    }
    for (size_t i = 0; i < q->ntasks; i++) {
        task_t *t = q->order[i];
        bool flying = t->state == MK_TASK_ASSIGNED || t->state == MK_TASK_RUNNING;
        int64_t since = t->updated_at > t->lost_since ? t->updated_at : t->lost_since;
        if (flying && find_runner(q, t->runner) == NULL &&
            now_ms - since > q->cfg.heartbeat_timeout_ms) {
            /* Its runner never came back after an admin restart (requeue_of clears t->runner,
             * so the key is copied). */
            char lost[40];
            snprintf(lost, sizeof lost, "%s", t->runner);
            requeue_of(q, lost, "its runner did not come back", now_ms);
            wake = true;
        } else if (flying && now_ms - t->started_at > t->timeout_ms) {
            free(t->error);
            t->error = strdup("the task ran past its timeout");
            if (transition(q, t, MK_TASK_TIMED_OUT, now_ms, NULL) == 0) {
                tell_cancel(q, t);
                wake = true;
            }
        }
    }
    unlock_and_notify(q, wake);
}

json_t *mk_queue_runners(mk_queue_t *q, const char *kind)
{
    json_t *out = json_array();
    pthread_mutex_lock(&q->mu);
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(q->runners, &pos, &k, &v)) {
        runner_t *r = v;
        if (kind && strcmp(kind, r->kind) != 0)
            continue;
        json_t *caps = json_array(), *running = json_array();
        for (size_t i = 0; i < r->ncaps; i++)
            json_array_append_new(caps, json_string(r->caps[i]));
        for (size_t i = 0; i < q->ntasks; i++) {
            task_t *t = q->order[i];
            if ((t->state == MK_TASK_ASSIGNED || t->state == MK_TASK_RUNNING) &&
                strcmp(t->runner, r->id) == 0)
                json_array_append_new(running, json_string(t->id));
        }
        json_array_append_new(
            out,
            json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:s?, s:i, s:o, s:I, s:s, s:s}", "id", r->id,
                      "name", r->name, "kind", r->kind, "state", r->online ? "online" : "offline",
                      "capabilities", caps, "shared", r->shared, "namespace",
                      r->shared ? NULL : r->ns, "maxConcurrent", r->max_concurrent, "running",
                      running, "lastHeartbeat", (json_int_t)r->last_heartbeat, "version",
                      r->version, "address", r->address));
    }
    pthread_mutex_unlock(&q->mu);
    return out;
}

json_t *mk_queue_depths(mk_queue_t *q)
{
    json_t *out = json_object();
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->ntasks; i++) {
        task_t *t = q->order[i];
        const char *key = t->state == MK_TASK_QUEUED                                    ? "queued"
                          : t->state == MK_TASK_ASSIGNED || t->state == MK_TASK_RUNNING ? "active"
                                                                                        : NULL;
        if (key == NULL)
            continue;
        json_t *ns = json_object_get(out, t->ns);
        if (ns == NULL) {
            ns = json_pack("{s:i, s:i}", "queued", 0, "active", 0);
            json_object_set_new(out, t->ns, ns);
        }
        json_object_set_new(ns, key,
                            json_integer(json_integer_value(json_object_get(ns, key)) + 1));
    }
    pthread_mutex_unlock(&q->mu);
    return out;
}
