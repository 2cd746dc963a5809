/* Request dispatch for a node, plus /health and /metrics. */
#include "node/node.h"

#include "ui/ui.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct mk_node {
    mk_node_config_t cfg;
    mk_serve_t *serve;
    mk_api_t *api;
    mk_catalog_t *catalog;
    mk_journal_t *journal;
    mk_metrics_t *metrics;
    mk_repo_t *repo;
    mk_ui_t *ui; /* NULL on a resolver or with UI_PATH_PREFIX=off */
    time_t started;
    pthread_mutex_t status_mu;
    mk_node_status_t status;
    json_t *components; /* extra /health components (under status_mu) */
    atomic_bool degraded; /* one of them is down */
    atomic_bool draining;
};

/* Could the caller read the mocks through the API? On the admin the API decides; on a resolver,
 * the API_TOKEN it was given (in constant time). */
static bool may_read(void *ud, mk_request_t *view)
{
    mk_node_t *n = ud;
    if (n->api != NULL)
        return mk_api_caller_may_read(n->api, view);
    const char *token = n->cfg.api_token;
    if (token == NULL || token[0] == '\0')
        return true;
    mk_str_t given;
    return mk_request_credential(view, &given) && mk_str_secret_eq(given, token);
}

mk_node_t *mk_node_new(const mk_node_config_t *cfg, mk_serve_t *serve, mk_api_t *api,
                       mk_catalog_t *catalog, mk_journal_t *journal, mk_metrics_t *metrics,
                       mk_repo_t *repo)
{
    mk_node_t *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->cfg = *cfg;
    n->serve = serve;
    n->api = api;
    n->catalog = catalog;
    n->journal = journal;
    n->metrics = metrics;
    n->repo = repo;
    n->ui = api != NULL ? mk_ui_new(cfg->ui_prefix) : NULL;
    n->started = time(NULL);
    pthread_mutex_init(&n->status_mu, NULL);
    n->status = (mk_node_status_t){.ready = false, .db_up = true, .redis = "not_configured"};
    mk_serve_set_details(serve, cfg->details, may_read, n);
    return n;
}

void mk_node_free(mk_node_t *n)
{
    if (n == NULL)
        return;
    pthread_mutex_destroy(&n->status_mu);
    json_decref(n->components);
    mk_ui_free(n->ui);
    free(n);
}

void mk_node_set_status(mk_node_t *n, const mk_node_status_t *st)
{
    pthread_mutex_lock(&n->status_mu);
    n->status = *st;
    pthread_mutex_unlock(&n->status_mu);
}

void mk_node_set_draining(mk_node_t *n)
{
    atomic_store(&n->draining, true);
}

/* Whether a component, or one in a list of them, reports status "down". */
static bool any_down(json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (any_down(e))
                return true;
        }
        return false;
    }
    const char *st = json_string_value(json_object_get(v, "status"));
    return st != NULL && strcmp(st, "down") == 0;
}

void mk_node_set_components(mk_node_t *n, json_t *components)
{
    bool down = false;
    const char *k;
    json_t *v;
    json_object_foreach(components, k, v)
    {
        down = down || any_down(v);
    }
    atomic_store(&n->degraded, down);
    pthread_mutex_lock(&n->status_mu);
    json_t *old = n->components;
    n->components = components;
    pthread_mutex_unlock(&n->status_mu);
    json_decref(old);
}

/* The extra components merged into body's "components" (copied under the lock). */
static void add_components(mk_node_t *n, json_t *body)
{
    pthread_mutex_lock(&n->status_mu);
    json_t *extra = n->components ? json_deep_copy(n->components) : NULL;
    pthread_mutex_unlock(&n->status_mu);
    if (extra != NULL)
        json_object_update(json_object_get(body, "components"), extra);
    json_decref(extra);
}

static mk_node_status_t get_status(mk_node_t *n)
{
    pthread_mutex_lock(&n->status_mu);
    mk_node_status_t st = n->status;
    pthread_mutex_unlock(&n->status_mu);
    return st;
}

static void format_uptime(time_t secs, char *buf, size_t size)
{
    long h = (long)(secs / 3600), m = (long)(secs / 60 % 60), s = (long)(secs % 60);
    snprintf(buf, size, "%ldh%ldm%lds", h, m, s);
}

static double rss_mb(double *vsz_mb)
{
    long pages_total = 0, pages_rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
            pages_total = pages_rss = 0;
        fclose(f);
    }
    double page = (double)sysconf(_SC_PAGESIZE);
    *vsz_mb = (double)pages_total * page / 1048576.0;
    return (double)pages_rss * page / 1048576.0;
}

/* Whether the admin's writes are failing (disk full, read-only, I/O errors) though the database
 * may still answer pings; why gets the last error. Always false on a resolver. */
static bool writes_failing(const mk_node_t *n, char *why, size_t size)
{
    return n->api != NULL && mk_api_writes_failing(n->api, why, size);
}

/* pass: all up; warn: serving but a dependency is down (a resolver without its database, any
 * node without Redis); fail: the admin without its database or unable to write to it. */
static const char *overall(const mk_node_t *n, const mk_node_status_t *st)
{
    if (!st->db_up)
        return n->api ? "fail" : "warn";
    if (writes_failing(n, NULL, 0))
        return "fail";
    if (strcmp(st->redis, "down") == 0 || !st->ready ||
        atomic_load(&((mk_node_t *)n)->draining) || atomic_load(&((mk_node_t *)n)->degraded))
        return "warn";
    return "pass";
}

static json_t *health_body(mk_node_t *n, unsigned reader, const mk_node_status_t *st)
{
    char latency[32], redis_latency[32], uptime[64], rss[32], vsz[32];
    snprintf(latency, sizeof latency, "%.2fms", st->db_latency_ms);
    snprintf(redis_latency, sizeof redis_latency, "%.2fms", st->redis_latency_ms);
    format_uptime(time(NULL) - n->started, uptime, sizeof uptime);
    double vsz_mb, rss_v = rss_mb(&vsz_mb);
    snprintf(rss, sizeof rss, "%.1f", rss_v);
    snprintf(vsz, sizeof vsz, "%.1f", vsz_mb);
    json_t *db = json_pack("{s:s, s:s, s:s}", "status", st->db_up ? "up" : "down", "latency",
                           latency, "backend", n->repo ? mk_repo_backend(n->repo) : "none");
    char why[512] = "";
    bool failing = writes_failing(n, why, sizeof why);
    json_t *redis = strcmp(st->redis, "not_configured") == 0
                        ? json_pack("{s:s}", "status", st->redis)
                        : json_pack("{s:s, s:s}", "status", st->redis, "latency", redis_latency);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:i, s:s, s:s}, s:{s:o, s:o}, "
                  "s:{s:{s:s}, s:{s:s, s:I, s:I}}}",
                  "status", overall(n, st), "releaseId", n->cfg.release_id, "role", n->cfg.role,
                  "uptime", uptime, "system", "runtime", "C11/h2o", "cpus",
                  (int)sysconf(_SC_NPROCESSORS_ONLN), "memRssMb", rss, "memVszMb", vsz,
                  "components", "database", db, "redis", redis, "checks", "database", "status",
                  st->db_up ? "pass" : "fail", "snapshot", "status", st->ready ? "pass" : "fail",
                  "mocks", (json_int_t)mk_snapshot_mock_count(mk_catalog_enter(n->catalog, reader)),
                  "changeSeq", (json_int_t)st->change_seq);
    add_components(n, body);
    if (atomic_load(&n->draining))
        json_object_set_new(json_object_get(body, "checks"), "drain",
                            json_pack("{s:s, s:s}", "status", "fail", "error", "shutting down"));
    if (st->coordinator != NULL) {
        json_t *co = json_pack("{s:s, s:i, s:s}", "status", st->coordinator, "runnersOnline",
                               st->runners_online, "error", st->coordinator_error);
        json_object_set_new(json_object_get(body, "components"), "coordinator", co);
    }
    if (n->api != NULL)
        json_object_set_new(json_object_get(body, "components"), "scheduler",
                            mk_api_sched_status(n->api));
    if (n->api != NULL)
        json_object_set_new(json_object_get(body, "components"), "scheduler",
                            mk_api_sched_status(n->api));
    if (n->api != NULL)
        json_object_set_new(json_object_get(body, "checks"), "writes",
                            failing ? json_pack("{s:s, s:s}", "status", "fail", "error", why)
                                    : json_pack("{s:s}", "status", "pass"));
    return body;
}

static int health(mk_node_t *n, mk_httpd_req_t *req, mk_str_t path)
{
    if (mk_str_eq_cstr(path, "/health/live"))
        return mk_api_reply_json(req, 200, json_pack("{s:s}", "status", "pass"));
    mk_node_status_t st = get_status(n);
    if (mk_str_eq_cstr(path, "/health/ready")) {
        /* A resolver serves what it has even without its database; the admin cannot write. */
        bool draining = atomic_load(&n->draining);
        bool ready = st.ready && (st.db_up || n->api == NULL) && !writes_failing(n, NULL, 0) &&
                     !draining;
        json_t *body = json_pack("{s:s}", "status", ready ? "pass" : "fail");
        if (draining)
            json_object_set_new(body, "reason", json_string("shutting down"));
        return mk_api_reply_json(req, ready ? 200 : 503, body);
    }
    unsigned reader = mk_httpd_req_worker(req);
    json_t *body = health_body(n, reader, &st);
    mk_catalog_leave(n->catalog, reader);
    return mk_api_reply_json(req, strcmp(overall(n, &st), "fail") == 0 ? 503 : 200, body);
}

void mk_node_update_gauges(mk_node_t *n)
{
    json_t *counts = mk_catalog_counts(n->catalog);
    const char *ns;
    json_t *v;
    mk_metrics_gauge_clear(n->metrics, "mockarty_mocks");
    mk_metrics_gauge_set(n->metrics, "mockarty_mocks", "Live mocks per namespace", "namespace",
                         "sandbox", 0);
    json_object_foreach(counts, ns, v)
    {
        mk_metrics_gauge_set(n->metrics, "mockarty_mocks", "Live mocks per namespace", "namespace",
                             ns, (double)json_integer_value(v));
    }
    json_decref(counts);
    mk_metrics_gauge_set(n->metrics, "mockarty_journal_bytes", "Bytes held by the request journal",
                         NULL, NULL, (double)mk_journal_bytes(n->journal));
    mk_metrics_gauge_set(n->metrics, "mockarty_journal_entries", "Entries in the request journal",
                         NULL, NULL, (double)mk_journal_entries(n->journal));
}

static int metrics(mk_node_t *n, mk_httpd_req_t *req)
{
    mk_node_update_gauges(n);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    mk_metrics_render(n->metrics, &out);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"),
                        MK_STR_LIT("text/plain; version=0.0.4; charset=utf-8"));
    mk_httpd_respond(req, 200, (mk_str_t){out.data ? out.data : "", out.len});
    mk_buf_free(&out);
    return 200;
}

/* /stubs/{ns}/rest -> (ns, /rest); anything else -> (sandbox, path). */
static void split_namespace(mk_str_t path, mk_str_t *ns, mk_str_t *rest)
{
    if (mk_str_starts_with(path, "/stubs/")) {
        const char *s = path.base + 7, *end = path.base + path.len;
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *stop = slash ? slash : end;
        if (stop > s) {
            *ns = (mk_str_t){s, (size_t)(stop - s)};
            *rest = slash ? (mk_str_t){slash, (size_t)(end - slash)} : MK_STR_LIT("/");
            return;
        }
    }
    *ns = MK_STR_LIT(MK_MOCK_DEFAULT_NAMESPACE);
    *rest = path;
}

/* Whether a GET mock of the sandbox takes "/" (then "/" is not redirected to the UI). */
static bool root_has_mock(mk_node_t *n, mk_httpd_req_t *req)
{
    unsigned reader = mk_httpd_req_worker(req);
    const mk_snapshot_t *snap = mk_catalog_enter(n->catalog, reader);
    const mk_route_index_t *idx = mk_snapshot_index(snap, MK_STR_LIT(MK_MOCK_DEFAULT_NAMESPACE));
    bool found = false;
    if (idx != NULL) {
        mk_route_iter_t it;
        mk_route_match_t m;
        mk_route_lookup(idx, MK_STR_LIT("GET"), MK_STR_LIT("/"), &it);
        found = mk_route_next(&it, &m);
    }
    mk_catalog_leave(n->catalog, reader);
    return found;
}

void mk_node_handle(void *ud, mk_httpd_req_t *req)
{
    mk_node_t *n = ud;
    mk_request_t view;
    mk_httpd_req_view(req, &view);
    mk_str_t path = view.path;
    int status;
    if (n->cfg.node_name != NULL)
        mk_httpd_add_header(req, MK_STR_LIT("X-Mockarty-Node"), mk_str_of(n->cfg.node_name));
    /* Only the node's own endpoints and the API table's rows are reserved; every other path,
     * /api/... included, is a mock request. */
    if (mk_str_eq_cstr(path, "/health") || mk_str_starts_with(path, "/health/")) {
        status = health(n, req, path);
    } else if (mk_str_eq_cstr(path, "/metrics")) {
        status = metrics(n, req);
    } else if (n->api != NULL && (status = mk_api_handle(n->api, req, &view)) != 0) {
        /* the API answered (or its pool will) */
    } else if ((status = mk_ui_handle(n->ui, req, &view)) != 0) {
        /* a file of the web UI */
    } else if (n->ui != NULL && mk_str_eq_cstr(path, "/") && !root_has_mock(n, req)) {
        status = mk_ui_redirect(n->ui, req);
    } else {
        mk_str_t ns, rest;
        split_namespace(path, &ns, &rest);
        status = mk_serve_http(n->serve, req, &view, ns, rest);
        mk_metrics_protocol(n->metrics, mk_httpd_req_worker(req), view.served_protocol,
                            view.served_matched);
    }
    /* A deferred API call is counted when handed over, as a 200: its status is only known on the
     * pool thread, which must not touch this worker's metrics shard. */
    if (status == MK_API_DEFERRED)
        status = 200;
    mk_metrics_http(n->metrics, mk_httpd_req_worker(req), view.method, status,
                    mk_httpd_req_elapsed_ms(req) / 1000.0);
    mk_request_release(&view);
}
