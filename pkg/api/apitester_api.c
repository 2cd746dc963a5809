/* The API tester endpoints (Mockarty's /api/v1/api-tester/...): Postman collections stored as
 * documents (kind "apitest_collection"), runs queued as "api_test" tasks for the runners through
 * the coordinator (documents of kind "apitest_run" hold what the task does not: the collection,
 * the request's options), reports rendered from the stored result, and the node lists. */
#include "api/api_internal.h"

#include "apitest/apitest.h"
#include "coordinator/coordinator.h"

#include <stdlib.h>
#include <string.h>

#define KIND_COLLECTION "apitest_collection"
#define KIND_RUN        "apitest_run"

void mk_api_set_coordinator(mk_api_t *api, struct mk_coord *co)
{
    api->coord = co;
}

static mk_queue_t *queue_of(ctx_t *c)
{
    if (c->api->coord == NULL) {
        mk_api_reply_fmt(c, MK_EUNAVAIL,
                         "the coordinator is not running (RUNNER_GRPC_PORT=0 or its port was "
                         "taken): runs cannot be queued");
        return NULL;
    }
    return mk_coord_queue(c->api->coord);
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Answers {"total", "items"} (the list's reference taken over), the shape of Mockarty's lists. */
static int reply_items(ctx_t *c, json_t *items)
{
    return mk_api_reply_json(
        c->req, 200,
        json_pack("{s:I, s:o}", "total", (json_int_t)json_array_size(items), "items", items));
}

json_t *mk_api_doc_get(ctx_t *c, const char *kind, const char *id, const char *what)
{
    json_t *all;
    mk_err_t err;
    if (mk_api_docs_list(c->api, kind, id, &all, &err) != 0) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    json_t *found = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        if (jstr(d, "id") && strcmp(jstr(d, "id"), id) == 0)
            found = json_incref(d);
    }
    json_decref(all);
    int g = found ? mk_api_guard_ns(c, jstr(found, "namespace")) : MK_ENOTFOUND;
    if (g == MK_ENOTFOUND)
        mk_api_reply_fmt(c, MK_ENOTFOUND, "%s '%s' not found", what, id);
    if (g != 0) {
        json_decref(found);
        return NULL;
    }
    return found;
}

json_t *mk_api_docs_visible(ctx_t *c, const char *kind, const char *perm)
{
    json_t *all, *out = json_array();
    mk_err_t err;
    if (mk_api_docs_list(c->api, kind, NULL, &all, &err) != 0) {
        json_decref(out);
        mk_api_reply_err(c, &err);
        return NULL;
    }
    const char *ns = mk_api_query(c, "namespace");
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        const char *dns = jstr(d, "namespace");
        if (dns && (ns == NULL || strcmp(ns, dns) == 0) && mk_api_may(c, perm, dns))
            json_array_append(out, d);
    }
    json_decref(all);
    return out;
}

/* ---- collections --------------------------------------------------------------------------- */

/* A collection document's public face: everything but the Postman body. */
static json_t *collection_summary(const json_t *doc)
{
    json_t *s = json_deep_copy(doc);
    json_object_del(s, "collection");
    return s;
}

/* Validates a Postman collection (the body itself, or its "collection") and builds the stored
 * document; answers 400 itself and returns NULL. */
static json_t *collection_doc(ctx_t *c, json_t *body, const char *id, const json_t *old)
{
    json_t *postman = json_object_get(body, "info") ? body : json_object_get(body, "collection");
    if (!json_is_object(postman)) {
        mk_api_reply_fmt(c, MK_EINVAL, "body: a Postman v2.1 collection, or {\"collection\": ...}");
        return NULL;
    }
    mk_apitest_collection_t *col;
    mk_err_t err;
    if (mk_apitest_collection_parse(postman, &col, &err) != 0) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    /* An update keeps the collection where it is (as environments do): a PUT that names no
     * namespace must not move it to the default one. */
    const char *ns =
        old ? jstr(old, "namespace") : mk_api_namespace(c, postman == body ? NULL : body);
    if (ns == NULL) {
        mk_apitest_collection_free(col);
        return NULL;
    }
    const char *name = postman != body && jstr(body, "name") ? jstr(body, "name")
                                                             : mk_apitest_collection_name(col);
    const char *desc = postman != body ? jstr(body, "description") : NULL;
    int64_t now = mk_mock_now_ms();
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:o}", "id", id, "namespace",
                  ns, "name", name, "description", desc ? desc : "", "protocol", "http",
                  "collectionType", "postman", "isShared", 0, "requestCount",
                  (json_int_t)mk_apitest_collection_count(col), "createdAt",
                  (json_int_t)(old ? json_integer_value(json_object_get(old, "createdAt")) : now),
                  "updatedAt", (json_int_t)now, "collection", mk_apitest_collection_export(col));
    mk_apitest_collection_free(col);
    return doc;
}

static int collection_save(ctx_t *c, json_t *body, const char *id, const json_t *old)
{
    json_t *doc = collection_doc(c, body, id, old);
    return doc ? mk_api_doc_store(c, KIND_COLLECTION, "runs:write", doc, old ? 200 : 201) : 400;
}

static int collections_create(ctx_t *c)
{
    return mk_api_doc_create(c, collection_save);
}

static int collections_update(ctx_t *c)
{
    return mk_api_doc_update(c, KIND_COLLECTION, "collection", collection_save);
}

static int collections_list(ctx_t *c)
{
    json_t *docs = mk_api_docs_visible(c, KIND_COLLECTION, "runs:read");
    if (docs == NULL)
        return 500;
    json_t *items = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d) json_array_append_new(items, collection_summary(d));
    json_decref(docs);
    return reply_items(c, items);
}

static int collections_get(ctx_t *c)
{
    return mk_api_doc_show(c, KIND_COLLECTION, "collection");
}

int mk_api_doc_show(ctx_t *c, const char *kind, const char *what)
{
    json_t *doc = mk_api_doc_get(c, kind, mk_api_param(c, "id"), what);
    return doc ? mk_api_reply_json(c->req, 200, doc) : 404;
}

int mk_api_doc_store(ctx_t *c, const char *kind, const char *perm, json_t *doc, int status)
{
    const char *ns = jstr(doc, "namespace");
    if (!mk_api_may(c, perm, ns)) {
        status = mk_api_reply_fmt(c, MK_EFORBIDDEN, "%s needed in namespace '%s'", perm, ns);
        json_decref(doc);
        return status;
    }
    mk_api_note_ns(c, ns);
    mk_err_t err;
    if (mk_api_doc_put(c->api, kind, jstr(doc, "id"), ns, doc, &err) != 0) {
        json_decref(doc);
        return mk_api_reply_err(c, &err);
    }
    return mk_api_reply_json(c->req, status, doc);
}

int mk_api_doc_create(ctx_t *c, mk_api_doc_save_fn save)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    char id[40];
    mk_mock_new_id(id);
    int status = save(c, body, id, NULL);
    json_decref(body);
    return status;
}

int mk_api_doc_update(ctx_t *c, const char *kind, const char *what, mk_api_doc_save_fn save)
{
    json_t *old = mk_api_doc_get(c, kind, mk_api_param(c, "id"), what);
    if (old == NULL)
        return 404;
    json_t *body;
    int status = 400;
    if (mk_api_parse_body(c, &body) == 0) {
        status = save(c, body, jstr(old, "id"), old);
        json_decref(body);
    }
    json_decref(old);
    return status;
}

int mk_api_doc_delete(ctx_t *c, const char *kind, const char *what, mk_api_doc_hook_fn before)
{
    json_t *doc = mk_api_doc_get(c, kind, mk_api_param(c, "id"), what);
    if (doc == NULL)
        return 404;
    mk_api_note_ns(c, jstr(doc, "namespace"));
    mk_err_t err;
    const json_t *one = doc;
    int status =
        mk_api_docs_remove(c->api, kind, &one, 1, before, &err)
            ? mk_api_reply_err(c, &err)
            : mk_api_reply_json(c->req, 200,
                                json_pack("{s:s, s:b}", "id", jstr(doc, "id"), "deleted", 1));
    json_decref(doc);
    return status;
}

int mk_api_docs_remove(mk_api_t *api, const char *kind, const json_t *const *docs, size_t n,
                       mk_api_doc_hook_fn before, mk_err_t *err)
{
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    if (ids == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        ids[i] = jstr(docs[i], "id");
        if (before)
            before(api, docs[i]);
    }
    int rc = mk_repo_delete_docs(api->repo, kind, ids, n, err);
    mk_api_note_write(api, rc, err);
    free(ids);
    return rc;
}

static int collections_delete(ctx_t *c)
{
    return mk_api_doc_delete(c, KIND_COLLECTION, "collection", NULL);
}

static int collections_export(ctx_t *c)
{
    json_t *doc = mk_api_doc_get(c, KIND_COLLECTION, mk_api_param(c, "id"), "collection");
    if (doc == NULL)
        return 404;
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Disposition"),
                        MK_STR_LIT("attachment; filename=\"collection.postman_collection.json\""));
    int status = mk_api_reply_json(c->req, 200, json_incref(json_object_get(doc, "collection")));
    json_decref(doc);
    return status;
}

static int import_postman(ctx_t *c)
{
    return collections_create(c);
}

/* ---- runs ---------------------------------------------------------------------------------- */

static const char *run_status(const char *task_state)
{
    static const char *const map[][2] = {
        {"queued", "pending"},      {"assigned", "running"}, {"running", "running"},
        {"succeeded", "completed"}, {"failed", "failed"},    {"cancelled", "cancelled"},
        {"timed_out", "timed_out"},
    };
    for (size_t i = 0; task_state && i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i][0], task_state) == 0)
            return map[i][1];
    return "unknown";
}

/* A run as Mockarty's TestRun/TestRunResult: the run document, its task's state and result. */
static json_t *run_view(mk_api_t *api, const json_t *doc, bool with_results)
{
    json_t *v = json_deep_copy(doc);
    json_object_del(v, "payload");
    json_t *task = api->coord ? mk_queue_task(mk_coord_queue(api->coord), jstr(doc, "id")) : NULL;
    const char *state = task ? jstr(task, "state") : NULL;
    json_object_set_new(v, "status", json_string(run_status(state)));
    json_object_set_new(v, "taskState", state ? json_string(state) : json_null());
    json_t *res = task ? json_object_get(task, "result") : NULL;
    if (task) {
        json_object_set(v, "attempt", json_object_get(task, "attempt"));
        json_object_set(v, "runnerId", json_object_get(task, "runnerId"));
        json_object_set(v, "error", json_object_get(task, "error"));
    }
    if (json_is_object(res)) {
        /* The result's counts (executed requests) under both Mockarty names: TestRun's and the
         * SDK's TestRunResult's. */
        static const char *const copy[][2] = {
            {"totalTests", NULL},        {"passedTests", "passed"},  {"failedTests", "failed"},
            {"skippedTests", "skipped"}, {"duration", "durationMs"}, {"startedAt", NULL},
            {"completedAt", NULL},       {"metadata", NULL},
        };
        for (size_t i = 0; i < sizeof copy / sizeof *copy; i++) {
            json_t *x = json_object_get(res, copy[i][0]);
            if (x)
                json_object_set(v, copy[i][0], x);
            if (x && copy[i][1])
                json_object_set(v, copy[i][1], x);
        }
        if (jstr(res, "status") && state && strcmp(state, "succeeded") == 0)
            json_object_set(v, "status", json_object_get(res, "status"));
        if (with_results)
            json_object_set(v, "results", json_object_get(res, "results"));
    }
    json_decref(task);
    return v;
}

json_t *mk_api_run_collection(mk_api_t *api, const json_t *col, const json_t *body, mk_err_t *err)
{
    if (api->coord == NULL) {
        mk_err_set(err, MK_EUNAVAIL, "the coordinator is not running: runs cannot be queued");
        return NULL;
    }
    mk_queue_t *q = mk_coord_queue(api->coord);
    const char *ns = jstr(col, "namespace");
    json_t *payload = json_pack("{s:O, s:s, s:s}", "collection", json_object_get(col, "collection"),
                                "collectionId", jstr(col, "id"), "namespace", ns);
    static const char *const opts[] = {"environment", "variables", "globals", "baseUrl",
                                       "iterations",  "data",      "bail",    "insecure"};
    for (size_t i = 0; body && i < sizeof opts / sizeof *opts; i++)
        if (json_object_get(body, opts[i]))
            json_object_set(payload, opts[i], json_object_get(body, opts[i]));
    if (json_object_get(payload, "environment") == NULL) {
        const char *env_id = body ? jstr(body, "environmentId") : NULL;
        json_t *env = mk_api_run_environment(api, ns, env_id, err);
        if (env == NULL && err->code != 0) {
            json_decref(payload);
            return NULL;
        }
        if (env)
            json_object_set_new(payload, "environment", env);
    }
    char *text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (text == NULL) {
        mk_err_set(err, MK_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *tm = body ? json_object_get(body, "timeoutMs") : NULL;
    char id[40];
    int rc =
        mk_queue_submit(q, "api_test", ns, text, json_is_integer(tm) ? json_integer_value(tm) : 0,
                        mk_mock_now_ms(), id, err);
    free(text);
    if (rc != 0)
        return NULL;
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", id, "namespace", ns,
                            "collectionId", jstr(col, "id"), "collectionName", jstr(col, "name"),
                            "mode", "functional", "createdAt", (json_int_t)mk_mock_now_ms());
    /* What started it, when not a call (a schedule). */
    if (body && jstr(body, "trigger"))
        json_object_set(doc, "trigger", json_object_get(body, "trigger"));
    if (mk_api_doc_put(api, KIND_RUN, id, ns, doc, err) != 0) {
        mk_queue_cancel(q, id, mk_mock_now_ms(), NULL);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static json_t *optional_body(ctx_t *c, bool *bad)
{
    mk_request_t *v = c->view;
    *bad = false;
    if (v->body.len == 0)
        return NULL;
    json_t *body;
    if (mk_api_parse_body(c, &body)) {
        *bad = true;
        return NULL;
    }
    return body;
}

static int collections_execute(ctx_t *c)
{
    if (queue_of(c) == NULL)
        return 503;
    json_t *col = mk_api_doc_get(c, KIND_COLLECTION, mk_api_param(c, "id"), "collection");
    if (col == NULL)
        return 404;
    bool bad;
    json_t *body = optional_body(c, &bad);
    int status = 400;
    mk_err_t err;
    if (!bad) {
        mk_api_note_ns(c, jstr(col, "namespace"));
        json_t *run = mk_api_run_collection(c->api, col, body, &err);
        status = run ? mk_api_reply_json(c->req, 202, run_view(c->api, run, false))
                     : mk_api_reply_err(c, &err);
        json_decref(run);
    }
    json_decref(body);
    json_decref(col);
    return status;
}

static int collections_execute_multiple(ctx_t *c)
{
    if (queue_of(c) == NULL)
        return 503;
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *ids = mk_api_body_ids(c, body, "collectionIds");
    int status = 400;
    json_t *cols = ids ? json_array() : NULL;
    size_t i;
    json_t *id;
    /* Every collection is checked before any run is queued. */
    json_array_foreach(ids, i, id)
    {
        json_t *col = mk_api_doc_get(c, KIND_COLLECTION, json_string_value(id), "collection");
        if (col == NULL) {
            json_decref(cols);
            cols = NULL;
            status = 404;
            break;
        }
        json_array_append_new(cols, col);
    }
    if (cols) {
        json_t *runs = json_array(), *col;
        mk_err_t err;
        status = 0;
        json_array_foreach(cols, i, col)
        {
            json_t *run = mk_api_run_collection(c->api, col, body, &err);
            if (run == NULL) {
                status = mk_api_reply_err(c, &err);
                break;
            }
            json_array_append_new(runs, run_view(c->api, run, false));
            json_decref(run);
        }
        if (status == 0)
            status = mk_api_reply_json(c->req, 202,
                                       json_pack("{s:O, s:s, s:o}", "id",
                                                 json_object_get(json_array_get(runs, 0), "id"),
                                                 "status", "pending", "runs", runs));
        else
            json_decref(runs);
    }
    json_decref(cols);
    json_decref(body);
    return status;
}

static int runs_list_filtered(ctx_t *c, bool active_only)
{
    json_t *docs = mk_api_docs_visible(c, KIND_RUN, "runs:read");
    if (docs == NULL)
        return 500;
    const char *collection = mk_api_query(c, "collectionId");
    json_t *items = json_array();
    /* Newest first. */
    for (size_t i = json_array_size(docs); i-- > 0;) {
        json_t *d = json_array_get(docs, i);
        if (collection && (!jstr(d, "collectionId") || strcmp(collection, jstr(d, "collectionId"))))
            continue;
        json_t *v = run_view(c->api, d, false);
        const char *st = jstr(v, "status");
        if (active_only && strcmp(st, "pending") != 0 && strcmp(st, "running") != 0)
            json_decref(v);
        else
            json_array_append_new(items, v);
    }
    json_decref(docs);
    return reply_items(c, items);
}

static int runs_list(ctx_t *c)
{
    return runs_list_filtered(c, false);
}

static int runs_active(ctx_t *c)
{
    return runs_list_filtered(c, true);
}

static int runs_get(ctx_t *c)
{
    json_t *doc = mk_api_doc_get(c, KIND_RUN, mk_api_param(c, "id"), "test run");
    if (doc == NULL)
        return 404;
    int status = mk_api_reply_json(c->req, 200, run_view(c->api, doc, true));
    json_decref(doc);
    return status;
}

static int runs_cancel(ctx_t *c)
{
    mk_queue_t *q = queue_of(c);
    if (q == NULL)
        return 503;
    json_t *doc = mk_api_doc_get(c, KIND_RUN, mk_api_param(c, "id"), "test run");
    if (doc == NULL)
        return 404;
    mk_api_note_ns(c, jstr(doc, "namespace"));
    mk_err_t err;
    int status = mk_queue_cancel(q, jstr(doc, "id"), mk_mock_now_ms(), &err) != 0
                     ? mk_api_reply_err(c, &err)
                     : mk_api_reply_json(c->req, 200, run_view(c->api, doc, false));
    json_decref(doc);
    return status;
}

/* A run still queued or running is cancelled first (a finished one refuses: fine); then its
 * events and its task, which holds the result, go too (a runner still on it is told to stop at
 * its next heartbeat, as for any task it no longer owns). */
void mk_api_run_forget(mk_api_t *api, const json_t *doc)
{
    if (api->coord) {
        mk_queue_t *q = mk_coord_queue(api->coord);
        mk_queue_cancel(q, jstr(doc, "id"), mk_mock_now_ms(), NULL);
        mk_coord_forget(api->coord, jstr(doc, "id"));
        mk_queue_remove(q, jstr(doc, "id"), NULL);
    }
}

json_t *mk_api_runs_prepare(mk_api_t *api)
{
    if (api->coord == NULL)
        return NULL;
    json_t *list = mk_queue_tasks(mk_coord_queue(api->coord), NULL), *states = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        if (jstr(t, "id"))
            json_object_set(states, jstr(t, "id"), json_object_get(t, "state"));
    }
    json_decref(list);
    return states;
}

bool mk_api_run_live(mk_api_t *api, const json_t *states, const json_t *doc)
{
    (void)api;
    if (states == NULL)
        return true;
    /* A run whose task is gone has ended (the task is queued before the run is stored). */
    const char *st = run_status(json_string_value(json_object_get(states, jstr(doc, "id"))));
    return strcmp(st, "pending") == 0 || strcmp(st, "running") == 0;
}

static int runs_delete(ctx_t *c)
{
    return mk_api_doc_delete(c, KIND_RUN, "test run", mk_api_run_forget);
}

static int reply_text(ctx_t *c, const char *type, const char *text)
{
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Type"), mk_str_of(type));
    mk_httpd_respond(c->req, 200, mk_str_of(text));
    return 200;
}

static int runs_report(ctx_t *c)
{
    json_t *doc = mk_api_doc_get(c, KIND_RUN, mk_api_param(c, "id"), "test run");
    if (doc == NULL)
        return 404;
    const char *format = mk_api_query(c, "format");
    if (format == NULL)
        format = "json";
    json_t *task =
        c->api->coord ? mk_queue_task(mk_coord_queue(c->api->coord), jstr(doc, "id")) : NULL;
    json_t *res = task ? json_object_get(task, "result") : NULL;
    int status;
    char *out = NULL;
    mk_err_t err;
    if (!json_is_object(res)) {
        status = mk_api_reply_fmt(c, MK_ECONFLICT, "test run '%s' has no result yet (status %s)",
                                  jstr(doc, "id"), run_status(task ? jstr(task, "state") : NULL));
    } else if (strcmp(format, "json") == 0 || strcmp(format, "unified_json") == 0) {
        status = mk_api_reply_json(c->req, 200, json_incref(res));
    } else if (strcmp(format, "junit") == 0) {
        status = mk_apitest_report_junit(res, &out, &err) != 0
                     ? mk_api_reply_err(c, &err)
                     : reply_text(c, "application/xml; charset=utf-8", out);
    } else if (strcmp(format, "html") == 0) {
        status = mk_apitest_report_html(res, &out, &err) != 0
                     ? mk_api_reply_err(c, &err)
                     : reply_text(c, "text/html; charset=utf-8", out);
    } else {
        status =
            mk_api_reply_fmt(c, MK_EINVAL, "format: one of json, junit, html (got '%s')", format);
    }
    free(out);
    json_decref(task);
    json_decref(doc);
    return status;
}

/* Server-Sent Events: pkg/httpd has no streaming response, so this answers the events received
 * so far and, once the run is over, a final "end" event; a client reconnects (EventSource does so
 * by itself) to get more, sending Last-Event-ID to skip what it has. */
/* The run's progress events after *last (event "progress", id = the event's sequence number),
 * then "end" with the run once it has finished. */
static bool run_events(mk_api_t *api, const char *id, double *last, mk_buf_t *out)
{
    json_t *events = api->coord ? mk_coord_events(api->coord, id) : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        json_int_t seq = json_integer_value(json_object_get(e, "seq"));
        if ((double)seq <= *last)
            continue;
        char *data = json_dumps(e, JSON_COMPACT);
        if (data)
            mk_buf_appendf(out, "id: %lld\nevent: progress\ndata: %s\n\n", (long long)seq, data);
        free(data);
        *last = (double)seq;
    }
    json_decref(events);
    json_t *docs = NULL, *doc = NULL;
    if (mk_api_docs_list(api, KIND_RUN, id, &docs, NULL) == 0)
        json_array_foreach(docs, i, e) if (jstr(e, "id") && strcmp(jstr(e, "id"), id) == 0) doc = e;
    json_t *view = doc ? run_view(api, doc, false) : NULL;
    const char *st = view ? jstr(view, "status") : "deleted";
    bool live = strcmp(st, "pending") == 0 || strcmp(st, "running") == 0;
    if (!live) {
        char *data = view ? json_dumps(view, JSON_COMPACT) : NULL;
        mk_buf_appendf(out, "event: end\ndata: %s\n\n", data ? data : "{\"status\":\"deleted\"}");
        free(data);
    }
    json_decref(view);
    json_decref(docs);
    return live;
}

/* Live while the run is: progress as the runner reports it, then the end. */
static int runs_events(ctx_t *c)
{
    return mk_api_doc_sse(c, KIND_RUN, "test run", run_events);
}

/* ---- nodes --------------------------------------------------------------------------------- */

static int nodes_list(ctx_t *c, const char *kind)
{
    json_t *list =
        c->api->coord ? mk_queue_runners(mk_coord_queue(c->api->coord), kind) : json_array();
    /* Namespace members see shared runners and their namespaces' own. */
    json_t *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        const char *ns = jstr(r, "namespace");
        if (json_is_true(json_object_get(r, "shared")) || ns == NULL || ns[0] == '\0' ||
            mk_api_may(c, "runs:read", ns))
            json_array_append(out, r);
    }
    json_decref(list);
    return reply_items(c, out);
}

static int runners_list(ctx_t *c)
{
    return nodes_list(c, "runner");
}

static int resolvers_list(ctx_t *c)
{
    return nodes_list(c, "resolver");
}

#define AT "/api/v1/api-tester"
const mk_api_endpoint_t mk_api_apitester_endpoints[] = {
    {"GET", AT "/collections", collections_list, "runs:read",
     "API test collections (Postman v2.1), without their bodies", MK_API_HEAVY},
    {"POST", AT "/collections", collections_create, "runs:write",
     "Create a collection from a Postman v2.1 collection (or {name, namespace, collection})", 0},
    {"GET", AT "/collections/:id", collections_get, "runs:read",
     "A collection with its Postman body", 0},
    {"PUT", AT "/collections/:id", collections_update, "runs:write", "Replace a collection", 0},
    {"DELETE", AT "/collections/:id", collections_delete, "runs:write", "Delete a collection", 0},
    {"GET", AT "/collections/:id/export", collections_export, "runs:read",
     "The collection as Postman v2.1 JSON", 0},
    {"POST", AT "/collections/:id/execute", collections_execute, "runs:write",
     "Queue a run for a runner (body: environment, variables, baseUrl, iterations, timeoutMs)", 0},
    {"POST", AT "/collections/:id/run", collections_execute, "runs:write",
     "Same as /execute (the Python SDK's path)", 0},
    {"POST", AT "/collections/execute-multiple", collections_execute_multiple, "runs:write",
     "Queue one run per collection of collectionIds", 0},
    {"POST", AT "/collections/run-multiple", collections_execute_multiple, "runs:write",
     "Same as /execute-multiple (the Python SDK's path)", 0},
    {"POST", AT "/import/postman", import_postman, "runs:write",
     "Import a Postman v2.1 collection as an API test collection", 0},
    {"GET", AT "/test-runs", runs_list, "runs:read",
     "Test runs, newest first (?collectionId=, ?namespace=)", MK_API_HEAVY},
    {"GET", AT "/test-runs/:id", runs_get, "runs:read",
     "A test run with its results (Mockarty's TestRunResult)", 0},
    {"DELETE", AT "/test-runs/:id", runs_delete, "runs:write",
     "Delete a test run (cancelled first when live)", 0},
    {"POST", AT "/test-runs/:id/cancel", runs_cancel, "runs:write",
     "Cancel a queued or running test run", 0},
    {"GET", AT "/test-runs/:id/report", runs_report, "runs:read",
     "Report of a finished run: ?format=json|junit|html", 0},
    {"GET", AT "/test-runs/:id/events", runs_events, "runs:read",
     "Progress as live Server-Sent Events until the run ends (Last-Event-ID resumes)",
     MK_API_STREAM},
    {"GET", "/api/v1/test-runs/active", runs_active, "runs:read", "Pending and running test runs",
     MK_API_HEAVY},
    {"GET", "/api/v1/runners", runners_list, "runs:read",
     "Runners: state, capabilities, scope, last heartbeat, running tasks", 0},
    {"GET", "/api/v1/resolvers", resolvers_list, "runs:read",
     "Resolvers registered with the coordinator", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
