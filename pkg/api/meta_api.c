/* What the server says about itself to SDKs and the UI: request statistics over the journal's
 * window, resource counts, status, the features it supports, and the endpoint table itself. */
#include "api/api_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)ceil(p * (double)n);
    return sorted[i == 0 ? 0 : i - 1];
}

static json_t *uptime(mk_api_t *api)
{
    char buf[64];
    int64_t s = (mk_mock_now_ms() - api->started_ms) / 1000;
    snprintf(buf, sizeof buf, "%lldh%lldm%llds", (long long)(s / 3600), (long long)(s / 60 % 60),
             (long long)(s % 60));
    return json_string(buf);
}

static int stats(ctx_t *c)
{
    mk_journal_sync(c->api->journal);
    size_t total = 0;
    json_t *entries = mk_journal_query(c->api->journal, NULL, &total);
    if (!mk_api_may(c, "admin", NULL)) {
        /* Only the namespaces the caller may read count. */
        json_t *mine = json_array();
        size_t k;
        json_t *e;
        json_array_foreach(entries, k, e)
        {
            const char *ns = json_string_value(json_object_get(e, "namespace"));
            if (mk_api_may(c, "requests:read", ns ? ns : MK_MOCK_DEFAULT_NAMESPACE))
                json_array_append(mine, e);
        }
        json_decref(entries);
        entries = mine;
    }
    size_t n = json_array_size(entries), matched = 0, errors = 0;
    double *lat = calloc(n ? n : 1, sizeof *lat), sum = 0;
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        matched += json_is_string(json_object_get(e, "mockId"));
        json_int_t status =
            json_integer_value(json_object_get(json_object_get(e, "response"), "status"));
        errors += status >= 500 || status == 0;
        lat[i] = json_number_value(json_object_get(e, "durationMs"));
        sum += lat[i];
    }
    json_decref(entries);
    qsort(lat, n, sizeof *lat, cmp_double);
    json_t *out = json_pack(
        "{s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:o, s:{s:I}, s:s}", "totalRequests", (json_int_t)n,
        "matchedRequests", (json_int_t)matched, "unmatchedRequests", (json_int_t)(n - matched),
        "avgLatencyMs", n ? sum / (double)n : 0.0, "p95LatencyMs", percentile(lat, n, 0.95),
        "p99LatencyMs", percentile(lat, n, 0.99), "errorRate",
        n ? 100.0 * (double)errors / (double)n : 0.0, "uptime", uptime(c->api), "byProtocol",
        "http", (json_int_t)n, "window", "the request journal (bounded by JOURNAL_MAX_BYTES)");
    free(lat);
    return mk_api_reply_json(c->req, 200, out);
}

typedef struct counts_walk {
    size_t live, deleted;
    ctx_t *caller; /* when set: only namespaces the caller may read */
} counts_walk_t;

static int count_one(void *ud, mk_mock_t *m)
{
    counts_walk_t *w = ud;
    if (w->caller && !mk_api_may(w->caller, "mocks:read", m->namespace_))
        return 0;
    if (m->closed_at)
        w->deleted++;
    else
        w->live++;
    return 0;
}

static int count_doc(void *ud, const mk_repo_doc_t *doc)
{
    (void)doc;
    (*(size_t *)ud)++;
    return 0;
}

static size_t docs_count(mk_api_t *api, const char *kind)
{
    size_t n = 0;
    mk_repo_list_docs(api->repo, kind, NULL, count_doc, &n, NULL);
    return n;
}

static int counts(ctx_t *c)
{
    /* Administrators count everything; others their namespaces' mocks. */
    counts_walk_t w = {.caller = mk_api_may(c, "admin", NULL) ? NULL : c};
    mk_catalog_each(c->api->catalog, count_one, &w);
    pthread_mutex_lock(&c->api->write_lock);
    size_t namespaces = mk_strmap_size(c->api->namespaces);
    pthread_mutex_unlock(&c->api->write_lock);
    mk_journal_sync(c->api->journal);
    json_t *undefined = mk_journal_undefined(c->api->journal);
    json_t *out =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "mocks", (json_int_t)w.live,
                  "deletedMocks", (json_int_t)w.deleted, "namespaces", (json_int_t)namespaces,
                  "undefinedRequests", (json_int_t)json_array_size(undefined), "journalEntries",
                  (json_int_t)mk_journal_entries(c->api->journal), "folders",
                  (json_int_t)docs_count(c->api, "folder"), "templates",
                  (json_int_t)docs_count(c->api, "template"), "mockVersions",
                  (json_int_t)docs_count(c->api, "mock_version"), "collections", (json_int_t)0,
                  "testRuns", (json_int_t)0);
    json_decref(undefined);
    return mk_api_reply_json(c->req, 200, out);
}

static int status(ctx_t *c)
{
    mk_err_t err;
    bool db = mk_repo_ping(c->api->repo, &err) == 0;
    double redis_ms = 0;
    const char *cache = "not_configured";
    if (c->api->store && strcmp(mk_store_backend(c->api->store), "redis") == 0)
        cache = mk_store_ping(c->api->store, &redis_ms, NULL) == 0 ? "up" : "down";
    return mk_api_reply_json(c->req, db ? 200 : 503,
                             json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:o, s:{s:s, s:s}}",
                                       "status", db ? "ok" : "degraded", "version", MK_API_VERSION,
                                       "database", "status", db ? "up" : "down", "backend",
                                       mk_repo_backend(c->api->repo), "cache", cache, "grpc",
                                       "not_available", "uptime", uptime(c->api), "backgroundJobs",
                                       "usageFlush", "running", "snapshotReclaim", "running"));
}

static int features(ctx_t *c)
{
    size_t rows = 0;
    for (size_t f = 0; mk_api_families[f]; f++)
        for (const mk_api_endpoint_t *e = mk_api_families[f]; e->method; e++)
            rows++;
    return mk_api_reply_json(
        c->req, 200,
        json_pack("{s:s, s:{s:b, s:b, s:b, s:b, s:b, s:b}, s:{s:b, s:b, s:b, s:b, s:b, s:b, s:b, "
                  "s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}, s:I}",
                  "version", MK_API_VERSION, "protocols", "http", 1, "grpc", 1, "graphql", 1,
                  "soap", 1, "sse", 1, "websocket", 1, "features", "templates", 1, "fakers", 1,
                  "stores", c->api->store != NULL, "mockVersions", 1, "folders", 1,
                  "responseTemplates", 1, "undefinedRequests", 1, "verification", 1, "webhooks", 1,
                  "resolvers", 1, "apiTester", c->api->coord != NULL, "performance",
                  c->api->coord != NULL, "schedules", c->api->coord != NULL, "proxy", 1, "recorder",
                  1, "endpoints", (json_int_t)rows));
}

static int endpoints(ctx_t *c)
{
    json_t *out = json_array();
    for (size_t f = 0; mk_api_families[f]; f++)
        for (const mk_api_endpoint_t *e = mk_api_families[f]; e->method; e++) {
            json_t *row = json_pack("{s:s, s:s, s:s, s:s}", "method", e->method, "path", e->path,
                                    "permission", e->permission, "summary", e->summary);
            if (e->flags & MK_API_STREAM)
                json_object_set_new(row, "stream", json_true());
            json_array_append_new(out, row);
        }
    return mk_api_reply_json(c->req, 200, out);
}

const mk_api_endpoint_t mk_api_meta_endpoints[] = {
    {"GET", "/api/v1/stats", stats, "mocks:read",
     "Request statistics over the journal's window (totals, latency percentiles, error rate)",
     MK_API_HEAVY},
    {"GET", "/api/v1/counts", counts, "mocks:read",
     "Counts of mocks, namespaces, unmatched requests, folders, templates", 0},
    {"GET", "/api/v1/status", status, "mocks:read", "Server, database and cache status", 0},
    {"GET", "/api/v1/features", features, "mocks:read",
     "What this server supports (protocols, features), so clients can adapt", 0},
    {"GET", "/api/v1/endpoints", endpoints, "mocks:read",
     "This table: every endpoint with its method, path, permission and summary", MK_API_PUBLIC},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
