/* The operator's loop: informers feed a work queue of resource keys; one worker reconciles a key
 * at a time by calling the pure desired-state functions and applying their result; a lease keeps
 * a second replica idle; a health server reports readiness and metrics. */
#include "controller.h"
#include "reconcile/reconcile.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KIND_CLUSTER      "MockartyCluster"
#define KIND_POOL         "MockartyRunnerPool"
#define MANAGER           "mockarty-operator"
#define RENEW_MS          5000L
#define RETRY_MS          2000L
#define RENEW_DEADLINE_MS 10000L
#define POOL_RETRY_MS     30000L
/* Secrets are not watched (the operator would cache every Secret of the cluster): a pool waiting
 * for its token Secret polls for it. */
#define TOKEN_RETRY_MS 3000L
/* How long a discovery answer for ServiceMonitor holds: the Prometheus Operator may be installed
 * (or removed) while we run, and the check is one GET. */
#define DISCOVERY_TTL_MS 60000LL
#define EVENT_DEDUP_S    600

enum { K_CLUSTER, K_POOL, K_COUNT };
enum { R_SUCCESS, R_CONFLICT, R_ERROR, R_COUNT };
static const char *const kind_names[K_COUNT] = {KIND_CLUSTER, KIND_POOL};
static const char *const result_names[R_COUNT] = {"success", "conflict", "error"};
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

static const mk_kube_resource_t *const child_kinds[] = {
    &mk_kube_deployments, &mk_kube_services, &mk_kube_configmaps, &mk_kube_hpas, &mk_kube_pdbs,
};
#define N_CHILDREN (sizeof child_kinds / sizeof child_kinds[0])

struct mk_controller {
    mk_kube_t *k;
    char *watch_ns, *lease_ns, *lease_name, *identity;
    bool leader_election;
    int health_port;
    long resync_ms;
    mk_controller_log_fn log;
    void *log_ud;

    mk_controller_queue_t *queue;
    mk_controller_informer_t *clusters, *pools, *children[N_CHILDREN];
    mk_controller_lease_t *lease;
    mk_controller_health_t *health;

    pthread_mutex_t mu; /* guards everything below */
    bool leading, synced, lost;
    long long total[K_COUNT][R_COUNT];
    long long hist[N_BUCKETS + 1];
    double duration_sum;
    long long duration_count;
    long long events_total;
    long long monitor_checked_ms; /* last discovery of ServiceMonitor (0: never) */
    bool monitor_served;
    json_t *emitted; /* "uid|type|reason|message" -> unix time, to keep Events from repeating */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(mk_controller_t *c, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(mk_controller_t *c, const char *level, const char *fmt, ...)
{
    if (!c->log)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->log(c->log_ud, level, msg);
}

/* ---- keys and handlers ------------------------------------------------------------------- */

static void enqueue(mk_controller_t *c, const char *kind, const char *ns, const char *name)
{
    if (!ns || !name)
        return;
    char key[512];
    snprintf(key, sizeof key, "%s/%s/%s", kind, ns, name);
    mk_controller_queue_add(c->queue, key);
}

static void pool_cluster_ref(const json_t *pool, const char **ns, const char **name)
{
    json_t *ref = json_object_get(json_object_get(pool, "spec"), "clusterRef");
    *name = json_string_value(json_object_get(ref, "name"));
    *ns = json_string_value(json_object_get(ref, "namespace"));
    if (!*ns || !(*ns)[0])
        *ns = mk_kube_namespace(pool);
}

static void on_cluster(void *ud, mk_kube_event_t type, const json_t *obj)
{
    (void)type;
    mk_controller_t *c = ud;
    const char *ns = mk_kube_namespace(obj), *name = mk_kube_name(obj);
    enqueue(c, KIND_CLUSTER, ns, name);
    /* A pool's readiness depends on its cluster: wake the pools that name this one. */
    if (!c->pools)
        return;
    json_t *pools = mk_controller_informer_list(c->pools);
    size_t i;
    json_t *p;
    json_array_foreach(pools, i, p)
    {
        const char *rns, *rname;
        pool_cluster_ref(p, &rns, &rname);
        if (rns && rname && ns && name && strcmp(rns, ns) == 0 && strcmp(rname, name) == 0)
            enqueue(c, KIND_POOL, mk_kube_namespace(p), mk_kube_name(p));
    }
    json_decref(pools);
}

static void on_pool(void *ud, mk_kube_event_t type, const json_t *obj)
{
    (void)type;
    enqueue(ud, KIND_POOL, mk_kube_namespace(obj), mk_kube_name(obj));
}

/* A child changed: its controlling owner is reconciled (level-based: whatever changed). */
static void on_child(void *ud, mk_kube_event_t type, const json_t *obj)
{
    (void)type;
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref)
    {
        const char *kind = json_string_value(json_object_get(ref, "kind"));
        const char *av = json_string_value(json_object_get(ref, "apiVersion"));
        if (!json_is_true(json_object_get(ref, "controller")) || !kind || !av ||
            strncmp(av, "mockarty.io/", 12) != 0)
            continue;
        if (strcmp(kind, KIND_CLUSTER) == 0 || strcmp(kind, KIND_POOL) == 0)
            enqueue(ud, kind, mk_kube_namespace(obj),
                    json_string_value(json_object_get(ref, "name")));
    }
}

/* ---- events ------------------------------------------------------------------------------ */

static void emit_event(mk_controller_t *c, const json_t *owner, const char *type,
                       const char *reason, const char *message)
{
    const char *uid = mk_kube_uid(owner);
    char dedup[1024];
    snprintf(dedup, sizeof dedup, "%s|%s|%s|%s", uid ? uid : "", type, reason, message);
    long long now_s = (long long)time(NULL);
    pthread_mutex_lock(&c->mu);
    json_t *last = json_object_get(c->emitted, dedup);
    bool recent = last && now_s - json_integer_value(last) < EVENT_DEDUP_S;
    if (!recent) {
        if (json_object_size(c->emitted) > 4096)
            json_object_clear(c->emitted);
        json_object_set_new(c->emitted, dedup, json_integer(now_s));
        c->events_total++;
    }
    pthread_mutex_unlock(&c->mu);
    if (recent)
        return;
    char now[40], gen[300];
    mk_kube_time_now(now, sizeof now, false);
    snprintf(gen, sizeof gen, "%s.", mk_kube_name(owner) ? mk_kube_name(owner) : "mockarty");
    json_t *ev =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}, s:s, s:s, s:s, "
                  "s:{s:s}, s:s, s:s, s:i, s:s, s:s}",
                  "apiVersion", "v1", "kind", "Event", "metadata", "generateName", gen, "namespace",
                  mk_kube_namespace(owner) ? mk_kube_namespace(owner) : "default", "involvedObject",
                  "apiVersion", json_string_value(json_object_get(owner, "apiVersion")), "kind",
                  json_string_value(json_object_get(owner, "kind")), "name", mk_kube_name(owner),
                  "namespace", mk_kube_namespace(owner), "uid", uid, "resourceVersion",
                  mk_kube_resource_version(owner), "reason", reason, "message", message, "type",
                  type, "source", "component", MANAGER, "firstTimestamp", now, "lastTimestamp", now,
                  "count", 1, "reportingComponent", MANAGER, "reportingInstance", c->identity);
    mk_err_t err = {0};
    if (!ev || mk_kube_create(c->k, &mk_kube_events, mk_kube_namespace(owner), ev, NULL, &err))
        logf_(c, "warn", "cannot record event %s on %s: %s", reason, mk_kube_name(owner),
              ev ? err.msg : "out of memory");
    json_decref(ev);
}

/* ---- reconcile --------------------------------------------------------------------------- */

static mk_controller_informer_t *informer_for(mk_controller_t *c, const mk_kube_resource_t *res)
{
    for (size_t i = 0; i < N_CHILDREN; i++)
        if (child_kinds[i] == res)
            return c->children[i];
    return NULL;
}

/* {"deployments": {name: Deployment} controlled by owner, "now": RFC 3339}. */
static json_t *observe(mk_controller_t *c, const json_t *owner)
{
    char now[40];
    mk_kube_time_now(now, sizeof now, false);
    json_t *deps = json_object();
    json_t *all = mk_controller_informer_list(informer_for(c, &mk_kube_deployments));
    const char *uid = mk_kube_uid(owner), *ns = mk_kube_namespace(owner);
    size_t i, j;
    json_t *d, *ref;
    json_array_foreach(all, i, d)
    {
        if (!ns || !mk_kube_namespace(d) || strcmp(ns, mk_kube_namespace(d)) != 0)
            continue;
        json_array_foreach(json_object_get(json_object_get(d, "metadata"), "ownerReferences"), j,
                           ref)
        {
            const char *ruid = json_string_value(json_object_get(ref, "uid"));
            if (uid && ruid && strcmp(uid, ruid) == 0 && mk_kube_name(d))
                json_object_set(deps, mk_kube_name(d), d);
        }
    }
    json_decref(all);
    return json_pack("{s:o, s:s}", "deployments", deps, "now", now);
}

/* Applies what the pure function decided. Returns the first failure (after trying the rest). */
static int execute(mk_controller_t *c, const json_t *owner, const mk_kube_resource_t *owner_res,
                   const mk_op_desired_t *d, mk_err_t *err)
{
    int first = 0;
    size_t i;
    json_t *obj;
    mk_err_t e;
    json_array_foreach(d->apply, i, obj)
    {
        const char *av = json_string_value(json_object_get(obj, "apiVersion"));
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        const mk_kube_resource_t *res = mk_kube_resource_for(av, kind);
        const char *ns = mk_kube_namespace(obj) ? mk_kube_namespace(obj) : mk_kube_namespace(owner);
        bool created = false;
        json_t *applied = NULL, *cached = NULL;
        int rc;
        memset(&e, 0, sizeof e);
        if (!res) {
            rc = mk_err_set(&e, MK_EINVAL, "no resource for %s %s", av ? av : "?",
                            kind ? kind : "?");
        } else {
            mk_controller_informer_t *inf = informer_for(c, res);
            cached = inf ? mk_controller_informer_get(inf, ns, mk_kube_name(obj)) : NULL;
            rc = mk_kube_apply(c->k, res, ns, obj, MANAGER, true, &applied, &created, &e);
        }
        /* An apply that changed nothing keeps the resourceVersion: only real changes are
         * Updated events. */
        const char *rv0 = mk_kube_resource_version(cached),
                   *rv1 = mk_kube_resource_version(applied);
        if (rc == 0 && (created || (rv0 && rv1 && strcmp(rv0, rv1) != 0))) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s %s %s", created ? "Created" : "Updated", kind,
                     mk_kube_name(obj));
            logf_(c, "info", "%s/%s: %s", ns, mk_kube_name(owner), msg);
            emit_event(c, owner, "Normal", created ? "Created" : "Updated", msg);
        }
        json_decref(applied);
        json_decref(cached);
        if (rc != 0 && first == 0) {
            first = rc;
            if (err)
                *err = e;
        }
    }
    json_array_foreach(d->deletes, i, obj)
    {
        const char *av = json_string_value(json_object_get(obj, "apiVersion"));
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        const char *name = json_string_value(json_object_get(obj, "name"));
        const char *ns = json_string_value(json_object_get(obj, "namespace"));
        const mk_kube_resource_t *res = mk_kube_resource_for(av, kind);
        if (!ns)
            ns = mk_kube_namespace(owner);
        if (!res || !name)
            continue;
        mk_controller_informer_t *inf = informer_for(c, res);
        json_t *cached = inf ? mk_controller_informer_get(inf, ns, name) : NULL;
        bool present = cached != NULL;
        json_decref(cached);
        if (inf && !present)
            continue; /* the cache says it is gone already: no request */
        memset(&e, 0, sizeof e);
        int rc = mk_kube_delete(c->k, res, ns, name, &e);
        if (rc == 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "Deleted %s %s", kind, name);
            emit_event(c, owner, "Normal", "Deleted", msg);
        } else if (rc != MK_ENOTFOUND && first == 0) {
            first = rc;
            if (err)
                *err = e;
        }
    }
    json_array_foreach(d->events, i, obj)
    {
        const char *type = json_string_value(json_object_get(obj, "type"));
        const char *reason = json_string_value(json_object_get(obj, "reason"));
        const char *message = json_string_value(json_object_get(obj, "message"));
        if (type && reason && message)
            emit_event(c, owner, type, reason, message);
    }
    if (d->status && !json_equal(json_object_get(owner, "status"), d->status)) {
        json_t *copy = json_deep_copy(owner);
        json_object_set(copy, "status", d->status);
        memset(&e, 0, sizeof e);
        int rc =
            copy ? mk_kube_update_status(c->k, owner_res, mk_kube_namespace(owner), copy, NULL, &e)
                 : MK_ENOMEM;
        json_decref(copy);
        /* A conflict means our cache is behind: the watch will bring the new version and the
         * retry recomputes the status from it. */
        if (rc != 0 && rc != MK_ENOTFOUND && first == 0) {
            first = rc;
            if (err)
                *err = e;
        }
    }
    return first;
}

/* Whether the cluster serves monitoring.coreos.com/v1 ServiceMonitors (discovered, cached for
 * DISCOVERY_TTL_MS). A failed discovery keeps the previous answer. */
static bool monitor_served(mk_controller_t *c)
{
    long long now = mono_ms();
    bool served, stale;
    mk_err_t e = {0};

    pthread_mutex_lock(&c->mu);
    stale = c->monitor_checked_ms == 0 || now - c->monitor_checked_ms > DISCOVERY_TTL_MS;
    served = c->monitor_served;
    pthread_mutex_unlock(&c->mu);
    if (!stale)
        return served;
    if (mk_kube_served(c->k, &mk_kube_servicemonitors, &served, &e) != 0) {
        logf_(c, "warn", "discovery of ServiceMonitor failed: %s", e.msg);
        return served;
    }
    pthread_mutex_lock(&c->mu);
    if (served != c->monitor_served || c->monitor_checked_ms == 0)
        logf_(c, "info", "ServiceMonitor (monitoring.coreos.com/v1) %s",
              served ? "is served: creating one per MockartyCluster" : "is not served");
    c->monitor_served = served;
    c->monitor_checked_ms = now;
    pthread_mutex_unlock(&c->mu);
    return served;
}

static int reconcile_cluster(mk_controller_t *c, const char *ns, const char *name, mk_err_t *err)
{
    int rc = 0;
    mk_op_desired_t d = {0};
    json_t *observed = NULL;
    json_t *cluster = mk_controller_informer_get(c->clusters, ns, name);
    if (!cluster)
        goto out; /* deleted: the garbage collector removes the children */
    if (json_object_get(json_object_get(cluster, "metadata"), "deletionTimestamp"))
        goto out;
    observed = observe(c, cluster);
    if (observed && monitor_served(c))
        json_object_set_new(observed, "serviceMonitor", json_true());
    rc = mk_op_cluster_desired(cluster, observed, &d, err);
    if (rc == 0)
        rc = execute(c, cluster, &mk_kube_mockartyclusters, &d, err);
    if (rc != 0 && rc != MK_ECONFLICT)
        emit_event(c, cluster, "Warning", "ReconcileFailed", err ? err->msg : "reconcile failed");
out:
    mk_op_desired_free(&d);
    json_decref(observed);
    json_decref(cluster);
    return rc;
}

/* Looks the pool's token Secret (and its key) up and records observed.tokenSecret. An answer
 * other than found / not found (e.g. forbidden) leaves it unknown: the runners are still
 * deployed and their pods report the problem. Returns false only for a known absence. */
static bool token_secret_present(mk_controller_t *c, const json_t *pool, json_t *observed)
{
    const json_t *ref = json_object_get(json_object_get(pool, "spec"), "tokenSecretRef");
    const char *name = json_string_value(json_object_get(ref, "name"));
    const char *key = json_string_value(json_object_get(ref, "key"));
    json_t *secret = NULL;
    mk_err_t e = {0};
    bool present = true;

    if (!name)
        return true;
    int rc = mk_kube_get(c->k, &mk_kube_secrets, mk_kube_namespace(pool), name, &secret, &e);
    if (rc == MK_ENOTFOUND) {
        present = false;
    } else if (rc == 0) {
        present = !key || json_object_get(json_object_get(secret, "data"), key) != NULL;
    } else {
        logf_(c, "warn", "%s/%s: cannot read token Secret %s: %s", mk_kube_namespace(pool),
              mk_kube_name(pool), name, e.msg);
        json_decref(secret);
        return true;
    }
    json_decref(secret);
    json_object_set_new(observed, "tokenSecret", json_boolean(present));
    return present;
}

static int reconcile_pool(mk_controller_t *c, const char *ns, const char *name, long *requeue_ms,
                          mk_err_t *err)
{
    int rc = 0;
    mk_op_desired_t d = {0};
    json_t *observed = NULL, *cluster = NULL;
    json_t *pool = mk_controller_informer_get(c->pools, ns, name);
    if (!pool || json_object_get(json_object_get(pool, "metadata"), "deletionTimestamp"))
        goto out;
    const char *cns, *cname;
    pool_cluster_ref(pool, &cns, &cname);
    if (cname && cns) {
        if (!c->watch_ns || strcmp(c->watch_ns, cns) == 0) {
            cluster = mk_controller_informer_get(c->clusters, cns, cname);
        } else {
            /* The cluster lives outside the watched namespace: ask the API. */
            mk_err_t e = {0};
            rc = mk_kube_get(c->k, &mk_kube_mockartyclusters, cns, cname, &cluster, &e);
            if (rc != 0 && rc != MK_ENOTFOUND) {
                if (err)
                    *err = e;
                goto out;
            }
            rc = 0;
        }
    }
    observed = observe(c, pool);
    bool token_missing = cluster && observed && !token_secret_present(c, pool, observed);
    rc = mk_op_runnerpool_desired(pool, cluster, observed, &d, err);
    if (rc == 0)
        rc = execute(c, pool, &mk_kube_mockartyrunnerpools, &d, err);
    if (rc != 0 && rc != MK_ECONFLICT)
        emit_event(c, pool, "Warning", "ReconcileFailed", err ? err->msg : "reconcile failed");
    if (rc == 0 && !cluster)
        *requeue_ms = POOL_RETRY_MS; /* retried, not dropped: the cluster may appear */
    if (rc == 0 && token_missing)
        *requeue_ms = TOKEN_RETRY_MS;
out:
    mk_op_desired_free(&d);
    json_decref(observed);
    json_decref(cluster);
    json_decref(pool);
    return rc;
}

static void record(mk_controller_t *c, int kind, int result, double seconds)
{
    pthread_mutex_lock(&c->mu);
    c->total[kind][result]++;
    size_t b = 0;
    while (b < N_BUCKETS && seconds > buckets[b])
        b++;
    c->hist[b]++;
    c->duration_sum += seconds;
    c->duration_count++;
    pthread_mutex_unlock(&c->mu);
}

static void *worker(void *arg)
{
    mk_controller_t *c = arg;
    char *key = NULL;
    while (mk_controller_queue_get(c->queue, &key) == 0) {
        char kind[64] = "", ns[256] = "", name[256] = "";
        if (sscanf(key, "%63[^/]/%255[^/]/%255s", kind, ns, name) != 3) {
            mk_controller_queue_done(c->queue, key);
            free(key);
            continue;
        }
        long long t0 = mono_ms();
        long requeue_ms = 0;
        mk_err_t err = {0};
        int k = strcmp(kind, KIND_CLUSTER) == 0 ? K_CLUSTER : K_POOL;
        int rc = k == K_CLUSTER ? reconcile_cluster(c, ns, name, &err)
                                : reconcile_pool(c, ns, name, &requeue_ms, &err);
        double secs = (double)(mono_ms() - t0) / 1000.0;
        if (rc == 0) {
            record(c, k, R_SUCCESS, secs);
            mk_controller_queue_forget(c->queue, key);
            if (requeue_ms > 0)
                mk_controller_queue_add_after(c->queue, key, requeue_ms);
        } else if (rc == MK_ECONFLICT) {
            /* Someone wrote in between; retry with a fresher cache. Not an error. */
            record(c, k, R_CONFLICT, secs);
            logf_(c, "debug", "%s: conflict, retrying: %s", key, err.msg);
            mk_controller_queue_add_rate_limited(c->queue, key);
        } else {
            record(c, k, R_ERROR, secs);
            logf_(c, "error", "%s: %s", key, err.msg);
            mk_controller_queue_add_rate_limited(c->queue, key);
        }
        mk_controller_queue_done(c->queue, key);
        free(key);
    }
    return NULL;
}

/* ---- health and metrics ------------------------------------------------------------------ */

static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return MK_EINTERNAL;
        if (*buf && *len + (size_t)n < *cap) {
            *len += (size_t)n;
            return 0;
        }
        size_t ncap = *cap ? *cap * 2 : 4096;
        while (ncap < *len + (size_t)n + 1)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return MK_ENOMEM;
        *buf = nb;
        *cap = ncap;
    }
}

static char *render_metrics(mk_controller_t *c)
{
    char *b = NULL;
    size_t len = 0, cap = 0;
    pthread_mutex_lock(&c->mu);
    appendf(&b, &len, &cap,
            "# HELP mockarty_operator_reconcile_total Reconciles by kind and result.\n"
            "# TYPE mockarty_operator_reconcile_total counter\n");
    for (int k = 0; k < K_COUNT; k++)
        for (int r = 0; r < R_COUNT; r++)
            appendf(&b, &len, &cap,
                    "mockarty_operator_reconcile_total{kind=\"%s\",result=\"%s\"} %lld\n",
                    kind_names[k], result_names[r], c->total[k][r]);
    appendf(&b, &len, &cap,
            "# HELP mockarty_operator_reconcile_errors_total Failed reconciles (conflicts "
            "excluded).\n# TYPE mockarty_operator_reconcile_errors_total counter\n");
    for (int k = 0; k < K_COUNT; k++)
        appendf(&b, &len, &cap, "mockarty_operator_reconcile_errors_total{kind=\"%s\"} %lld\n",
                kind_names[k], c->total[k][R_ERROR]);
    appendf(&b, &len, &cap,
            "# HELP mockarty_operator_reconcile_duration_seconds Time per reconcile.\n"
            "# TYPE mockarty_operator_reconcile_duration_seconds histogram\n");
    long long cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += c->hist[i];
        appendf(&b, &len, &cap,
                "mockarty_operator_reconcile_duration_seconds_bucket{le=\"%g\"} %lld\n", buckets[i],
                cum);
    }
    cum += c->hist[N_BUCKETS];
    appendf(&b, &len, &cap,
            "mockarty_operator_reconcile_duration_seconds_bucket{le=\"+Inf\"} %lld\n"
            "mockarty_operator_reconcile_duration_seconds_sum %.6f\n"
            "mockarty_operator_reconcile_duration_seconds_count %lld\n",
            cum, c->duration_sum, c->duration_count);
    bool leading = c->leading;
    long long events = c->events_total;
    pthread_mutex_unlock(&c->mu);
    appendf(&b, &len, &cap,
            "# HELP mockarty_operator_workqueue_depth Keys waiting in the work queue.\n"
            "# TYPE mockarty_operator_workqueue_depth gauge\n"
            "mockarty_operator_workqueue_depth %zu\n"
            "# HELP mockarty_operator_is_leader 1 while this process holds the lease.\n"
            "# TYPE mockarty_operator_is_leader gauge\n"
            "mockarty_operator_is_leader %d\n"
            "# HELP mockarty_operator_events_total Kubernetes Events recorded.\n"
            "# TYPE mockarty_operator_events_total counter\n"
            "mockarty_operator_events_total %lld\n"
            "# HELP mockarty_operator_informer_lists_total Full lists per informer (relists "
            "after 410 Gone included).\n"
            "# TYPE mockarty_operator_informer_lists_total counter\n",
            mk_controller_queue_len(c->queue), leading ? 1 : 0, events);
    mk_controller_informer_t *infs[2 + N_CHILDREN] = {c->clusters, c->pools};
    const mk_kube_resource_t *ress[2 + N_CHILDREN] = {&mk_kube_mockartyclusters,
                                                      &mk_kube_mockartyrunnerpools};
    for (size_t i = 0; i < N_CHILDREN; i++) {
        infs[2 + i] = c->children[i];
        ress[2 + i] = child_kinds[i];
    }
    for (size_t i = 0; i < 2 + N_CHILDREN; i++)
        appendf(&b, &len, &cap, "mockarty_operator_informer_lists_total{resource=\"%s\"} %ld\n",
                ress[i]->resource, infs[i] && leading ? mk_controller_informer_lists(infs[i]) : 0);
    return b;
}

static int on_http(void *ud, const char *path, char **body, const char **ctype)
{
    mk_controller_t *c = ud;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0) {
        *body = strdup("ok\n");
        return 200;
    }
    if (strcmp(path, "/readyz") == 0) {
        pthread_mutex_lock(&c->mu);
        /* A standby replica is ready (it is doing its job: waiting); a leader once synced. */
        bool ready = !c->lost && (c->leading ? c->synced : c->leader_election);
        pthread_mutex_unlock(&c->mu);
        *body = strdup(ready ? "ok\n" : "not ready\n");
        return ready ? 200 : 503;
    }
    if (strcmp(path, "/metrics") == 0) {
        *ctype = "text/plain; version=0.0.4";
        *body = render_metrics(c);
        return *body ? 200 : 500;
    }
    *body = strdup("not found\n");
    return 404;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

int mk_controller_new(mk_kube_t *k, const mk_controller_opts_t *opts, mk_controller_t **out,
                      mk_err_t *err)
{
    *out = NULL;
    if (opts->leader_election && (!opts->lease_namespace || !opts->lease_namespace[0] ||
                                  !opts->identity || !opts->identity[0]))
        return mk_err_set(err, MK_EINVAL,
                          "controller: leader election needs a lease namespace and an identity");
    mk_controller_t *c = calloc(1, sizeof *c);
    if (!c)
        return mk_err_set(err, MK_ENOMEM, "controller: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->k = k;
    c->watch_ns =
        opts->watch_namespace && opts->watch_namespace[0] ? strdup(opts->watch_namespace) : NULL;
    c->lease_ns = opts->lease_namespace ? strdup(opts->lease_namespace) : NULL;
    c->lease_name = strdup(opts->lease_name ? opts->lease_name : "mockarty-operator-leader");
    c->identity = strdup(opts->identity ? opts->identity : "mockarty-operator");
    c->leader_election = opts->leader_election;
    c->health_port = opts->health_port;
    c->resync_ms = opts->resync_ms > 0 ? opts->resync_ms : 600000;
    c->log = opts->log;
    c->log_ud = opts->log_ud;
    c->emitted = json_object();
    int rc = mk_controller_queue_new(5, 60000, &c->queue);
    if (rc != 0 || !c->lease_name || !c->identity || !c->emitted) {
        mk_controller_free(c);
        return mk_err_set(err, MK_ENOMEM, "controller: out of memory");
    }
    *out = c;
    return 0;
}

void mk_controller_free(mk_controller_t *c)
{
    if (!c)
        return;
    mk_controller_informer_free(c->clusters);
    mk_controller_informer_free(c->pools);
    for (size_t i = 0; i < N_CHILDREN; i++)
        mk_controller_informer_free(c->children[i]);
    mk_controller_queue_free(c->queue);
    mk_controller_lease_free(c->lease);
    mk_controller_health_stop(c->health);
    json_decref(c->emitted);
    pthread_mutex_destroy(&c->mu);
    free(c->watch_ns);
    free(c->lease_ns);
    free(c->lease_name);
    free(c->identity);
    free(c);
}

int mk_controller_health_port(mk_controller_t *c)
{
    return mk_controller_health_bound_port(c->health);
}

/* Sleeps ms in small steps so a stop request is seen quickly; returns true when stopped. */
static bool nap(const volatile int *stop, long ms)
{
    for (long t = 0; t < ms; t += 50) {
        if (*stop)
            return true;
        usleep(50000);
    }
    return *stop != 0;
}

static int start_informers(mk_controller_t *c, mk_err_t *err)
{
    int rc = mk_controller_informer_new(c->k, &mk_kube_mockartyclusters, c->watch_ns, on_cluster, c,
                                        &c->clusters, err);
    if (rc == 0)
        rc = mk_controller_informer_new(c->k, &mk_kube_mockartyrunnerpools, c->watch_ns, on_pool, c,
                                        &c->pools, err);
    for (size_t i = 0; rc == 0 && i < N_CHILDREN; i++)
        rc = mk_controller_informer_new(c->k, child_kinds[i], c->watch_ns, on_child, c,
                                        &c->children[i], err);
    /* Every informer exists before any starts: handlers look at the others' caches. */
    if (rc == 0)
        rc = mk_controller_informer_start(c->clusters, err);
    if (rc == 0)
        rc = mk_controller_informer_start(c->pools, err);
    for (size_t i = 0; rc == 0 && i < N_CHILDREN; i++)
        rc = mk_controller_informer_start(c->children[i], err);
    return rc;
}

static bool all_synced(mk_controller_t *c)
{
    if (!mk_controller_informer_synced(c->clusters) || !mk_controller_informer_synced(c->pools))
        return false;
    for (size_t i = 0; i < N_CHILDREN; i++)
        if (!mk_controller_informer_synced(c->children[i]))
            return false;
    return true;
}

static void resync(mk_controller_t *c)
{
    json_t *all[2] = {mk_controller_informer_list(c->clusters),
                      mk_controller_informer_list(c->pools)};
    for (int k = 0; k < 2; k++) {
        size_t i;
        json_t *o;
        json_array_foreach(all[k], i, o)
            enqueue(c, kind_names[k], mk_kube_namespace(o), mk_kube_name(o));
        json_decref(all[k]);
    }
}

int mk_controller_run(mk_controller_t *c, const volatile int *stop, mk_err_t *err)
{
    int rc = 0;
    pthread_t worker_thread;
    bool worker_started = false;
    if (c->health_port != 0) {
        rc = mk_controller_health_start(c->health_port, on_http, c, &c->health, err);
        if (rc != 0)
            return rc;
    }
    long long last_renew = mono_ms();
    if (c->leader_election) {
        rc = mk_controller_lease_new(c->k, c->lease_ns, c->lease_name, c->identity, 15, &c->lease,
                                     err);
        if (rc != 0)
            goto out;
        logf_(c, "info", "waiting for lease %s/%s as %s", c->lease_ns, c->lease_name, c->identity);
        for (;;) {
            mk_controller_lease_state_t st;
            mk_err_t e = {0};
            if (mk_controller_lease_try(c->lease, &st, &e) != 0)
                logf_(c, "warn", "lease: %s", e.msg);
            if (st == MK_CONTROLLER_LEADER)
                break;
            if (nap(stop, RETRY_MS))
                goto out;
        }
        last_renew = mono_ms();
        logf_(c, "info", "acquired lease %s/%s", c->lease_ns, c->lease_name);
    }
    pthread_mutex_lock(&c->mu);
    c->leading = true;
    pthread_mutex_unlock(&c->mu);
    rc = start_informers(c, err);
    if (rc != 0)
        goto out;
    if (pthread_create(&worker_thread, NULL, worker, c) != 0) {
        rc = mk_err_set(err, MK_ENOMEM, "controller: cannot start the worker");
        goto out;
    }
    worker_started = true;
    long long last_resync = mono_ms();
    while (!*stop) {
        nap(stop, 100);
        long long now = mono_ms();
        if (!c->synced && all_synced(c)) {
            pthread_mutex_lock(&c->mu);
            c->synced = true;
            pthread_mutex_unlock(&c->mu);
            logf_(c, "info", "caches synced");
        }
        if (now - last_resync >= c->resync_ms) {
            resync(c);
            last_resync = now;
        }
        if (c->lease && now - last_renew >= RENEW_MS) {
            mk_controller_lease_state_t st;
            mk_err_t e = {0};
            int lrc = mk_controller_lease_try(c->lease, &st, &e);
            if (lrc == 0 && st == MK_CONTROLLER_LEADER) {
                last_renew = now;
            } else if (st != MK_CONTROLLER_LEADER || now - last_renew > RENEW_DEADLINE_MS) {
                /* Someone else holds it, or we could not renew in time: stop at once so that
                 * two replicas never reconcile together. */
                rc = mk_err_set(err, MK_EUNAVAIL, "lost lease %s/%s%s%s", c->lease_ns,
                                c->lease_name, lrc ? ": " : "", lrc ? e.msg : "");
                pthread_mutex_lock(&c->mu);
                c->lost = true;
                c->leading = false;
                pthread_mutex_unlock(&c->mu);
                break;
            } else {
                logf_(c, "warn", "lease renewal failed, retrying: %s", e.msg);
            }
        }
    }
out:
    /* The health server goes first: its metrics read the informers freed below. */
    mk_controller_health_stop(c->health);
    c->health = NULL;
    mk_controller_queue_shutdown(c->queue);
    if (worker_started)
        pthread_join(worker_thread, NULL);
    mk_controller_informer_stop(c->clusters);
    mk_controller_informer_stop(c->pools);
    for (size_t i = 0; i < N_CHILDREN; i++)
        mk_controller_informer_stop(c->children[i]);
    mk_controller_informer_free(c->clusters);
    mk_controller_informer_free(c->pools);
    c->clusters = c->pools = NULL;
    for (size_t i = 0; i < N_CHILDREN; i++) {
        mk_controller_informer_free(c->children[i]);
        c->children[i] = NULL;
    }
    if (c->lease && !c->lost) {
        mk_err_t e = {0};
        if (mk_controller_lease_release(c->lease, &e) != 0)
            logf_(c, "warn", "lease release: %s", e.msg);
        else if (c->leading)
            logf_(c, "info", "released lease %s/%s", c->lease_ns, c->lease_name);
    }
    pthread_mutex_lock(&c->mu);
    c->leading = false;
    pthread_mutex_unlock(&c->mu);
    return rc;
}
