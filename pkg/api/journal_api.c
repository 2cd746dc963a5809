/* The request journal's endpoints: the request log, WireMock-style verification counts, and the
 * unmatched ("undefined") requests as Mockarty's SDKs read them: a bare list of entries with an
 * id, deletable, ignorable, and turned into a mock on request. Ignored ids are repository
 * documents of kind "undefined_ignore", so the mark survives a restart. */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IGNORE_KIND "undefined_ignore"

static int requests_list(ctx_t *c)
{
    const char *status = mk_api_query(c, "status");
    mk_journal_filter_t f = {
        .namespace_ = mk_api_query(c, "namespace"),
        .mock_id = mk_api_query(c, "mockId"),
        .method = mk_api_query(c, "method"),
        .path = mk_api_query(c, "path"),
        .protocol = mk_api_query(c, "protocol"),
        .status = status ? atoi(status) : 0,
        .limit = mk_api_query_size(c, "limit", MK_API_DEFAULT_LIMIT, MK_API_MAX_LIMIT),
        .offset = mk_api_query_size(c, "offset", 0, SIZE_MAX),
    };
    /* A namespace named is checked; only administrators read every namespace at once. */
    if (f.namespace_ || !mk_api_may(c, "admin", NULL)) {
        f.namespace_ = mk_api_namespace(c, NULL);
        if (f.namespace_ == NULL)
            return 403;
    }
    mk_journal_sync(c->api->journal);
    size_t total = 0;
    json_t *items = mk_journal_query(c->api->journal, &f, &total);
    return mk_api_reply_json(
        c->req, 200, json_pack("{s:o, s:I}", "requests", items, "total", (json_int_t)total));
}

/* --- GET /api/v1/requests/stream: the journal as a live tail (Server-Sent Events) ------------
 * A timer on the worker's loop looks at the journal's newest id (one atomic load) and, when it
 * moved, reads the new matching entries without waiting for the journal's lock; each becomes one
 * event whose id is the journal id (so Last-Event-ID resumes) and whose data is the entry as
 * GET /api/v1/requests shapes it. A client that reads slower than traffic comes skips entries
 * (a comment says how many) instead of queueing them. */
#define TAIL_POLL_MS      100
#define TAIL_HEARTBEAT_MS 15000
#define TAIL_MAX_EVENTS   200          /* per poll: 2,000 entries a second per client at most */
#define TAIL_QUEUE_LIMIT  (256 * 1024) /* past this much unread, polls wait for the client */

enum { TAIL_TIMER_POLL, TAIL_TIMER_HEARTBEAT };

typedef struct tail {
    mk_httpd_stream_t *s;
    mk_journal_t *journal;
    mk_journal_filter_t f; /* strings in strs */
    uint64_t after;
    size_t skipped;
    char strs[];
} tail_t;

static void tail_poll(void *ud)
{
    tail_t *t = ud;
    mk_httpd_stream_after(t->s, TAIL_TIMER_POLL, TAIL_POLL_MS, tail_poll);
    if (mk_journal_last_id(t->journal) == t->after ||
        mk_httpd_stream_buffered(t->s) > TAIL_QUEUE_LIMIT)
        return;
    json_t *items = NULL;
    size_t skipped = 0;
    if (mk_journal_tail(t->journal, &t->f, &t->after, TAIL_MAX_EVENTS, &items, &skipped) != 0) {
        json_decref(items);
        return; /* busy or out of memory: the next poll tries again from the same place */
    }
    mk_buf_t b;
    mk_buf_init(&b, 0);
    if (skipped)
        mk_buf_appendf(&b, ": skipped %zu entries (the client reads slower than they come)\n\n",
                       skipped);
    size_t i;
    json_t *e;
    json_array_foreach(items, i, e)
    {
        char *data = json_dumps(e, JSON_COMPACT);
        if (data)
            mk_buf_appendf(&b, "id: %s\ndata: %s\n\n", json_string_value(json_object_get(e, "id")),
                           data);
        free(data);
    }
    json_decref(items);
    if (b.len)
        mk_httpd_stream_write(t->s, (mk_str_t){b.data, b.len});
    mk_buf_free(&b);
}

static void tail_heartbeat(void *ud)
{
    tail_t *t = ud;
    mk_httpd_stream_write(t->s, MK_STR_LIT(": heartbeat\n\n"));
    mk_httpd_stream_after(t->s, TAIL_TIMER_HEARTBEAT, TAIL_HEARTBEAT_MS, tail_heartbeat);
}

static void tail_closed(void *ud, mk_httpd_stream_end_t why)
{
    (void)why;
    free(ud);
}

/* Copies s (may be NULL) into *p; returns the copy. */
static const char *tail_keep(char **p, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    *p += n;
    return *p - n;
}

static int requests_stream(ctx_t *c)
{
    const char *ns = mk_api_query(c, "namespace");
    if (ns || !mk_api_may(c, "admin", NULL)) {
        ns = mk_api_namespace(c, NULL);
        if (ns == NULL)
            return 403;
    }
    const char *mock = mk_api_query(c, "mockId"), *method = mk_api_query(c, "method"),
               *path = mk_api_query(c, "path"), *protocol = mk_api_query(c, "protocol"),
               *status = mk_api_query(c, "status");
    long code = 0;
    if (status) {
        char *end;
        code = strtol(status, &end, 10);
        if (*end || code < 100 || code > 599)
            return mk_api_reply_fmt(c, MK_EINVAL, "status: must be an HTTP status (100-599)");
    }
    const char *parts[] = {ns, mock, method, path, protocol};
    size_t size = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        size += parts[i] ? strlen(parts[i]) + 1 : 0;
    tail_t *t = calloc(1, sizeof *t + size);
    if (t == NULL)
        return mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
    char *p = t->strs;
    t->f = (mk_journal_filter_t){.namespace_ = tail_keep(&p, ns),
                                 .mock_id = tail_keep(&p, mock),
                                 .method = tail_keep(&p, method),
                                 .path = tail_keep(&p, path),
                                 .protocol = tail_keep(&p, protocol),
                                 .status = (int)code};
    t->journal = c->api->journal;
    /* What was answered before this call is not new: file it first, so it is not sent. */
    mk_journal_sync(t->journal);
    t->after = mk_journal_last_id(t->journal);
    /* A reconnecting EventSource resumes after the last entry it saw, if still kept. */
    mk_str_t last;
    if (mk_request_header(c->view, MK_STR_LIT("Last-Event-ID"), &last) && last.len < 20) {
        char num[24];
        snprintf(num, sizeof num, "%.*s", (int)last.len, last.base);
        char *end;
        unsigned long long id = strtoull(num, &end, 10);
        if (*end == '\0' && end != num && id < t->after)
            t->after = id;
    }
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Type"), MK_STR_LIT("text/event-stream"));
    mk_httpd_add_header(c->req, MK_STR_LIT("Cache-Control"), MK_STR_LIT("no-cache"));
    mk_httpd_add_header(c->req, MK_STR_LIT("X-Accel-Buffering"), MK_STR_LIT("no"));
    mk_httpd_stream_cbs_t cbs = {.on_close = tail_closed};
    mk_httpd_stream_opts_t opts = {.max_buffer = 4 * TAIL_QUEUE_LIMIT};
    if (mk_httpd_stream_start(c->req, 200, &opts, &cbs, t, &t->s) != 0) {
        free(t);
        return mk_api_reply_fmt(c, MK_EUNAVAIL, "cannot stream now (the server is stopping)");
    }
    mk_httpd_stream_write(t->s, MK_STR_LIT(": request journal tail\nretry: 1000\n\n"));
    tail_poll(t);
    mk_httpd_stream_after(t->s, TAIL_TIMER_HEARTBEAT, TAIL_HEARTBEAT_MS, tail_heartbeat);
    return 200;
}

static int requests_clear(ctx_t *c)
{
    mk_journal_sync(c->api->journal);
    mk_journal_clear(c->api->journal);
    return mk_api_reply_json(c->req, 200, json_pack("{s:b}", "cleared", 1));
}

static int requests_count(ctx_t *c)
{
    json_t *pattern;
    if (mk_api_parse_body(c, &pattern))
        return 400;
    mk_journal_sync(c->api->journal);
    size_t count = 0;
    mk_err_t err;
    int status;
    if (mk_journal_count(c->api->journal, pattern, &count, &err) != 0)
        status = mk_api_reply_err(c, &err);
    else
        status = mk_api_reply_json(c->req, 200, json_pack("{s:I}", "count", (json_int_t)count));
    json_decref(pattern);
    return status;
}

static int ignored_id(void *ud, const mk_repo_doc_t *doc)
{
    return json_object_set_new(ud, doc->id, json_true()) ? MK_ENOMEM : 0;
}

/* The groups, each marked "ignored" (true when its id was ignored); ?ignored=false hides them. */
static json_t *undefined_all(ctx_t *c, mk_err_t *err)
{
    mk_journal_sync(c->api->journal);
    json_t *items = mk_journal_undefined(c->api->journal);
    json_t *ignored = json_object();
    if (items == NULL ||
        mk_repo_list_docs(c->api->repo, IGNORE_KIND, NULL, ignored_id, ignored, err) != 0) {
        json_decref(items);
        json_decref(ignored);
        return NULL;
    }
    size_t i;
    json_t *g;
    json_array_foreach(items, i, g)
    {
        bool ig = json_object_get(ignored, json_string_value(json_object_get(g, "id"))) != NULL;
        json_object_set_new(g, "ignored", json_boolean(ig));
    }
    json_decref(ignored);
    return items;
}

static int undefined_list(ctx_t *c)
{
    mk_err_t err;
    json_t *items = undefined_all(c, &err);
    if (items == NULL)
        return mk_api_reply_err(c, &err);
    const char *ns = mk_api_query(c, "namespace");
    const char *show = mk_api_query(c, "ignored");
    json_t *out = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(items, i, g)
    {
        if (ns && strcmp(ns, json_string_value(json_object_get(g, "namespace"))) != 0)
            continue;
        const char *gns = json_string_value(json_object_get(g, "namespace"));
        if (!mk_api_may(c, "requests:read", gns ? gns : MK_MOCK_DEFAULT_NAMESPACE))
            continue; /* another namespace's */
        if (show && strcmp(show, "false") == 0 && json_is_true(json_object_get(g, "ignored")))
            continue;
        json_array_append(out, g);
    }
    json_decref(items);
    /* A bare list, as the SDKs decode it. */
    return mk_api_reply_json(c->req, 200, out);
}

/* Forgets groups (ids NULL: all) and their ignore marks. */
static int undefined_forget(ctx_t *c, json_t *ids)
{
    size_t n = ids ? json_array_size(ids) : 0;
    const char **list = calloc(n ? n : 1, sizeof *list);
    if (list == NULL)
        return mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        list[i] = json_string_value(json_array_get(ids, i));
    mk_journal_sync(c->api->journal);
    size_t removed = mk_journal_undefined_forget(c->api->journal, ids ? list : NULL, n);
    mk_err_t err;
    int rc = 0;
    if (ids && n)
        rc = mk_repo_delete_docs(c->api->repo, IGNORE_KIND, list, n, &err);
    free(list);
    if (rc != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200, json_pack("{s:I}", "deleted", (json_int_t)removed));
}

/* The ids (new reference) among ids whose unmatched requests the caller may forget: all of them
 * for an administrator, else those of namespaces where the caller may write requests. */
static json_t *writable_ids(ctx_t *c, json_t *ids)
{
    if (mk_api_may(c, "admin", NULL))
        return json_incref(ids);
    mk_err_t err;
    json_t *items = undefined_all(c, &err), *out = json_array();
    size_t i, k;
    json_t *g, *id;
    json_array_foreach(items, i, g)
    {
        const char *ns = json_string_value(json_object_get(g, "namespace"));
        if (!mk_api_may(c, "requests:write", ns ? ns : MK_MOCK_DEFAULT_NAMESPACE))
            continue;
        json_array_foreach(ids, k, id)
        {
            if (json_equal(id, json_object_get(g, "id")))
                json_array_append(out, id);
        }
    }
    json_decref(items);
    return out;
}

static int undefined_delete(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *ids = mk_api_body_ids(c, body, "ids");
    json_t *mine = ids ? writable_ids(c, ids) : NULL;
    int status = mine ? undefined_forget(c, mine) : 400;
    json_decref(mine);
    json_decref(body);
    return status;
}

static int undefined_delete_all(ctx_t *c)
{
    return undefined_forget(c, NULL);
}

/* The group named by the path's :id (a new reference), or NULL after answering 404. */
static json_t *find_group(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    mk_err_t err;
    json_t *items = undefined_all(c, &err);
    if (items == NULL) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    json_t *found = NULL;
    size_t i;
    json_t *g;
    json_array_foreach(items, i, g)
    {
        if (found == NULL && strcmp(json_string_value(json_object_get(g, "id")), id) == 0)
            found = json_incref(g);
    }
    json_decref(items);
    /* Another namespace's unmatched request is "not found" unless the caller has a role there. */
    const char *ns = found ? json_string_value(json_object_get(found, "namespace")) : NULL;
    int guard = found ? mk_api_guard_ns(c, ns ? ns : MK_MOCK_DEFAULT_NAMESPACE) : 0;
    if (guard != 0) {
        json_decref(found);
        found = NULL;
    }
    if (found == NULL && guard != MK_EFORBIDDEN)
        mk_api_reply_fmt(c, MK_ENOTFOUND, "undefined request '%s' not found", id);
    return found;
}

static int undefined_ignore(ctx_t *c)
{
    json_t *g = find_group(c);
    if (g == NULL)
        return 404;
    mk_err_t err;
    int status;
    json_object_set_new(g, "ignored", json_true());
    if (mk_api_doc_put(c->api, IGNORE_KIND, json_string_value(json_object_get(g, "id")),
                       json_string_value(json_object_get(g, "namespace")), g, &err) != 0)
        status = mk_api_reply_err(c, &err);
    else
        status = mk_api_reply_json(c->req, 200, json_incref(g));
    json_decref(g);
    return status;
}

/* A mock answering the unmatched request: its method and path, 200 with an empty object. The
 * user edits the response afterwards. */
static int undefined_create_mock(ctx_t *c)
{
    json_t *g = find_group(c);
    if (g == NULL)
        return 404;
    const char *ns = json_string_value(json_object_get(g, "namespace"));
    json_t *def = json_pack("{s:s, s:{s:O, s:O}, s:{s:i, s:{}}}", "namespace", ns, "http", "route",
                            json_object_get(g, "path"), "httpMethod", json_object_get(g, "method"),
                            "response", "statusCode", 200, "payload");
    mk_err_t err;
    mk_mock_t *m;
    int status;
    pthread_mutex_lock(&c->api->write_lock);
    if (mk_api_prepare_mock(c, def, ns, mk_mock_now_ms(), &m, &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        mk_mock_ref(m);
        if (mk_api_commit_mocks(c->api, &m, 1, NULL, &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            const char *id = json_string_value(json_object_get(g, "id"));
            mk_journal_undefined_forget(c->api->journal, &id, 1);
            status = mk_api_reply_json(c->req, 201, mk_mock_to_json(m));
        }
        mk_mock_unref(m);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(def);
    json_decref(g);
    return status;
}

const mk_api_endpoint_t mk_api_journal_endpoints[] = {
    {"GET", "/api/v1/requests", requests_list, "requests:read",
     "The request journal, newest first (namespace, mockId, method, path, status, offset, "
     "limit)",
     MK_API_HEAVY},
    {"GET", "/api/v1/requests/stream", requests_stream, "requests:read",
     "The request journal as a live tail: Server-Sent Events, one per new entry (namespace, "
     "mockId, method, path, status, protocol; Last-Event-ID resumes)",
     MK_API_STREAM},
    {"DELETE", "/api/v1/requests", requests_clear, "admin",
     "Forget every journal entry and unmatched request (every namespace's: administrators)", 0},
    {"POST", "/api/v1/requests/count", requests_count, "requests:read",
     "Count journal entries matching a WireMock-style pattern", MK_API_HEAVY},
    {"GET", "/api/v1/undefined-requests", undefined_list, "requests:read",
     "Unmatched requests grouped by namespace, method and path (a list)", MK_API_HEAVY},
    {"DELETE", "/api/v1/undefined-requests", undefined_delete, "requests:write",
     "Forget unmatched requests by ids", 0},
    {"DELETE", "/api/v1/undefined-requests/all", undefined_delete_all, "admin",
     "Forget every unmatched request (every namespace's: administrators)", 0},
    {"PATCH", "/api/v1/undefined-requests/:id/ignore", undefined_ignore, "requests:write",
     "Mark an unmatched request as ignored", 0},
    {"POST", "/api/v1/undefined-requests/:id/create-mock", undefined_create_mock, "mocks:write",
     "Create a mock answering an unmatched request (200 {}), and forget the request", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
