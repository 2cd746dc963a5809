/* A collection run: requests in order, scripts around each, results in Mockarty's shapes.
 *
 * TestRunResult: {id, collectionId, collectionName, status ("completed": every request passed;
 * "failed"; "cancelled"), totalTests, passedTests, failedTests, skippedTests (these count
 * executed requests, one TestResult each), duration (ms), results, metadata {assertions: {total,
 * passed, failed, skipped}, variables: {environment, collectionVariables, globals} after the run,
 * engine, stopReason when the run ended early}, startedAt, completedAt}.
 * TestResult: {id, requestName, folder, status ("passed", "failed", "skipped", "error"), duration,
 * assertions, error, request {method, url, headers, body}, response {status, statusText, headers,
 * body (the first max_body_kept bytes), size, responseTime}, console [{level, message}],
 * iteration (0-based, when there are several)}.
 * Assertion: {name, passed, expected, actual, message, skipped}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apitest/internal.h"
#include "httpclient/fetch.h"

#define DEFAULT_REQUEST_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_SCRIPT_TIMEOUT_MS  5000
#define DEFAULT_SCRIPT_HEAP        ((size_t)32 << 20)
#define DEFAULT_MAX_RESPONSE       ((size_t)16 << 20)
#define DEFAULT_BODY_KEPT          ((size_t)64 << 10)

typedef struct run {
    const mk_apitest_collection_t *c;
    mk_apitest_options_t o;
    mk_apitest_vars_t vars;
    mk_apitest_scripts_t scripts;
    int scripts_ready;
    size_t index; /* executions so far */
    int cancelled;
    size_t iteration, iterations;
    json_t *results;
    size_t counts[4];  /* requests passed, failed, skipped, error */
    size_t asserts[3]; /* assertions passed, failed, skipped */
    const char *stop_reason;
    char stop_buf[600];
    json_t *jar; /* cookies from Set-Cookie answers (cookies.c) */
} run_t;

typedef struct step {
    run_t *r;
    const mk_apitest_entry_t *e;
    json_t *result;     /* the TestResult */
    json_t *assertions; /* its list, borrowed from result */
    json_t *console;
    char error[1024];   /* the first error; "" none */
    const json_t *next; /* setNextRequest: a string, null (stop) or NULL (not called) */
    json_t *next_ref;
    int skip;
} step_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void iso_now(char buf[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char d[24];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, 32, "%.20s.%03dZ", d, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* A Postman variable list ([{key, value, disabled|enabled}]) or a plain object, as an object. */
static json_t *scope_from(const json_t *src)
{
    json_t *o = json_object();
    if (json_is_object(src) && json_is_array(json_object_get(src, "values")))
        src = json_object_get(src, "values");
    if (json_is_array(src)) {
        size_t i;
        const json_t *v;
        json_array_foreach(src, i, v)
        {
            const char *k = json_string_value(json_object_get(v, "key"));
            if (!k || json_is_true(json_object_get(v, "disabled")) ||
                json_is_false(json_object_get(v, "enabled")))
                continue;
            const json_t *val = json_object_get(v, "value");
            json_object_set_new(o, k, val ? json_deep_copy(val) : json_string(""));
        }
    } else if (json_is_object(src)) {
        json_object_update(o, (json_t *)src);
        json_t *copy = json_deep_copy(o);
        json_decref(o);
        o = copy;
    }
    return o;
}

static void step_error(step_t *s, const char *fmt, const char *what)
{
    if (!s->error[0])
        snprintf(s->error, sizeof s->error, fmt, what);
}

static int emit(run_t *r, mk_apitest_event_type_t type, const mk_apitest_entry_t *e,
                const json_t *assertion, const json_t *result)
{
    if (!r->o.progress)
        return 0;
    const char *name = json_string_value(json_object_get(e->item, "name"));
    mk_apitest_event_t ev = {
        .type = type,
        .index = r->index,
        .total = r->c->n,
        .folder = e->folder,
        .request = name ? name : "",
        .assertion = assertion,
        .result = result,
    };
    if (r->o.progress(r->o.progress_ud, &ev) != 0)
        r->cancelled = 1;
    return r->cancelled;
}

/* The scripts of one event for an entry: collection, then each folder down, then the item. */
static json_t *collect_scripts(run_t *r, const mk_apitest_entry_t *e, const char *listen)
{
    json_t *list = json_array();
    const json_t *owners[MK_APITEST_MAX_DEPTH + 3];
    const char *where[MK_APITEST_MAX_DEPTH + 3];
    size_t n = 0;
    owners[n] = r->c->doc;
    where[n++] = "collection";
    for (size_t i = 0; i < e->depth; i++) {
        owners[n] = e->chain[i];
        where[n++] = "folder";
    }
    owners[n] = e->item;
    where[n++] = "request";
    for (size_t i = 0; i < n; i++) {
        size_t j;
        const json_t *ev;
        json_array_foreach(json_object_get(owners[i], "event"), j, ev)
        {
            const char *l = json_string_value(json_object_get(ev, "listen"));
            if (!l || strcmp(l, listen) != 0 || json_is_true(json_object_get(ev, "disabled")))
                continue;
            const json_t *exec = json_object_get(json_object_get(ev, "script"), "exec");
            mk_buf_t b;
            mk_buf_init(&b, 0);
            if (json_is_string(exec)) {
                mk_buf_append_str(&b, json_string_value(exec));
            } else {
                size_t k;
                const json_t *line;
                json_array_foreach(exec, k, line)
                {
                    mk_buf_appendf(&b, "%s\n", json_string_value(line));
                }
            }
            /* an empty script changes nothing: skip it and save the sandbox call */
            int blank = 1;
            for (size_t k = 0; k < b.len && blank; k++)
                blank =
                    b.data[k] == ' ' || b.data[k] == '\n' || b.data[k] == '\t' || b.data[k] == '\r';
            if (!blank)
                json_array_append_new(list,
                                      json_pack("{s:s, s:s}", "name", where[i], "source", b.data));
            mk_buf_free(&b);
        }
    }
    return list;
}

static json_t *location(run_t *r, const mk_apitest_entry_t *e)
{
    json_t *loc = json_array();
    json_array_append_new(loc, json_string(mk_apitest_collection_name(r->c)));
    for (size_t i = 0; i < e->depth; i++) {
        const char *n = json_string_value(json_object_get(e->chain[i], "name"));
        json_array_append_new(loc, json_string(n ? n : ""));
    }
    const char *n = json_string_value(json_object_get(e->item, "name"));
    json_array_append_new(loc, json_string(n ? n : ""));
    return loc;
}

/* Runs one script event and takes in what it did: tests, variables, console, request changes. */
static void run_event(step_t *s, const char *listen, json_t **request, const json_t *response)
{
    run_t *r = s->r;
    json_t *scripts = collect_scripts(r, s->e, listen);
    if (!json_array_size(scripts)) {
        json_decref(scripts);
        return;
    }
    mk_err_t err = {0};
    if (!r->scripts_ready) {
        r->scripts.request_timeout_ms = r->o.request_timeout_ms;
        r->scripts.connect_timeout_ms = r->o.connect_timeout_ms;
        r->scripts.insecure = r->o.insecure;
        if (mk_apitest_scripts_init(&r->scripts, r->o.script_timeout_ms, r->o.script_max_heap,
                                    &err) < 0) {
            step_error(s, "script sandbox: %s", err.msg);
            json_decref(scripts);
            return;
        }
        r->scripts_ready = 1;
    }
    const char *name = json_string_value(json_object_get(s->e->item, "name"));
    const char *id = json_string_value(json_object_get(s->e->item, "id"));
    json_t *info = json_pack("{s:s, s:I, s:I, s:s, s:s, s:o}", "eventName", listen, "iteration",
                             (json_int_t)r->iteration, "iterationCount", (json_int_t)r->iterations,
                             "requestName", name ? name : "", "requestId", id ? id : "", "location",
                             location(r, s->e));
    json_t *vars =
        json_pack("{s:O, s:O, s:O, s:O, s:O, s:s}", "local", r->vars.local, "data", r->vars.data,
                  "environment", r->vars.environment, "collectionVariables", r->vars.collection,
                  "globals", r->vars.globals, "environmentName", "");
    const char *env_name = json_string_value(json_object_get(r->o.environment, "name"));
    if (env_name)
        json_object_set_new(vars, "environmentName", json_string(env_name));
    json_t *input = json_pack("{s:s, s:o, s:o, s:o, s:O}", "event", listen, "scripts", scripts,
                              "info", info, "vars", vars, "request", *request);
    if (response)
        json_object_set(input, "response", (json_t *)response);
    json_t *out = NULL;
    int rc = mk_apitest_scripts_run(&r->scripts, input, &out, &err);
    json_decref(input);
    if (rc < 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s script: %s", listen, err.msg);
        step_error(s, "%s", msg);
        json_array_append_new(
            s->assertions,
            json_pack("{s:s, s:b, s:s}", "name",
                      strcmp(listen, "test") == 0 ? "test script" : "pre-request script", "passed",
                      0, "message", msg));
        emit(r, MK_APITEST_ASSERTION, s->e,
             json_array_get(s->assertions, json_array_size(s->assertions) - 1), NULL);
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(out, "tests"), i, t)
    {
        json_t *a = json_pack("{s:O, s:O}", "name", json_object_get(t, "name"), "passed",
                              json_object_get(t, "passed"));
        const char *keys[] = {"expected", "actual"};
        for (size_t k = 0; k < 2; k++)
            if (json_object_get(t, keys[k]))
                json_object_set(a, keys[k], json_object_get(t, keys[k]));
        if (json_object_get(t, "error"))
            json_object_set(a, "message", json_object_get(t, "error"));
        if (json_is_true(json_object_get(t, "skipped")))
            json_object_set_new(a, "skipped", json_true());
        json_array_append_new(s->assertions, a);
        emit(r, MK_APITEST_ASSERTION, s->e, a, NULL);
    }
    json_array_foreach(json_object_get(out, "errors"), i, t)
    {
        char msg[700];
        snprintf(msg, sizeof msg, "%s script (%s): %s", listen,
                 json_string_value(json_object_get(t, "script")),
                 json_string_value(json_object_get(t, "error")));
        step_error(s, "%s", msg);
    }
    json_array_extend(s->console, json_object_get(out, "console"));
    json_t *v = json_object_get(out, "vars");
    json_t **scopes[] = {&r->vars.local, &r->vars.environment, &r->vars.collection,
                         &r->vars.globals};
    const char *names[] = {"local", "environment", "collectionVariables", "globals"};
    for (size_t k = 0; k < 4; k++) {
        json_t *nv = json_object_get(v, names[k]);
        if (json_is_object(nv)) {
            json_decref(*scopes[k]);
            *scopes[k] = json_incref(nv);
        }
    }
    json_t *nr = json_object_get(out, "nextRequest");
    if (nr) {
        json_decref(s->next_ref);
        s->next_ref = json_incref(nr);
        s->next = nr;
    }
    if (json_is_true(json_object_get(out, "skipRequest")))
        s->skip = 1;
    json_t *req = json_object_get(out, "request");
    if (json_is_object(req)) {
        json_t *merged = json_deep_copy(*request);
        json_object_update(merged, req);
        json_decref(*request);
        *request = merged;
    }
    json_decref(out);
}

/* The auth in effect: the request's own, else the nearest folder's, else the collection's. */
static const json_t *effective_auth(run_t *r, const mk_apitest_entry_t *e)
{
    const json_t *a = json_object_get(json_object_get(e->item, "request"), "auth");
    for (size_t i = e->depth + 1; i-- > 0;) {
        const char *t = json_string_value(json_object_get(a, "type"));
        if (t && strcmp(t, "inherit") != 0)
            return a;
        a = i > 0 ? json_object_get(e->chain[i - 1], "auth") : NULL;
    }
    const char *t = json_string_value(json_object_get(a, "type"));
    if (t && strcmp(t, "inherit") != 0)
        return a;
    a = json_object_get(r->c->doc, "auth");
    t = json_string_value(json_object_get(a, "type"));
    return t && strcmp(t, "inherit") != 0 ? a : NULL;
}

/* protocolProfileBehavior.followRedirects of the item or a folder above it, else the run's. */
static int follow_redirects(run_t *r, const mk_apitest_entry_t *e)
{
    const json_t *f =
        json_object_get(json_object_get(e->item, "protocolProfileBehavior"), "followRedirects");
    for (size_t i = e->depth; !json_is_boolean(f) && i-- > 0;)
        f = json_object_get(json_object_get(e->chain[i], "protocolProfileBehavior"),
                            "followRedirects");
    if (!json_is_boolean(f))
        f = json_object_get(json_object_get(r->c->doc, "protocolProfileBehavior"),
                            "followRedirects");
    return json_is_boolean(f) ? json_is_true(f) : !r->o.no_follow_redirects;
}

static const struct {
    int code;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
};

static const char *reason_of(long code, const char *given)
{
    if (given && given[0])
        return given;
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].code == code)
            return reasons[i].reason;
    return "";
}

static json_t *kept_body(run_t *r, const char *body, size_t len)
{
    size_t keep = len > r->o.max_body_kept ? r->o.max_body_kept : len;
    char *clean = mk_apitest_utf8_clean(body, keep);
    json_t *s = json_string(clean ? clean : "");
    free(clean);
    return s;
}

/* Sends the request; fills the result's request and response and the scripts' response. */
static int send(step_t *s, const json_t *request, json_t **script_resp)
{
    run_t *r = s->r;
    mk_err_t err = {0};
    mk_apitest_http_t h;
    if (mk_apitest_http_build(&r->vars, request, effective_auth(r, s->e), &h, &err) < 0) {
        step_error(s, "request not sent: %s", err.msg);
        return -1;
    }
    json_t *rq_headers = json_object();
    mk_httpclient_fetch_header_t *hs = calloc(h.n_headers + 2, sizeof *hs);
    size_t nh = 0;
    int has_cookie = 0;
    for (size_t i = 0; hs && i < h.n_headers; i++) {
        hs[nh].name = h.names[i];
        hs[nh++].value = h.values[i];
        json_object_set_new(rq_headers, h.names[i], json_string(h.values[i]));
        has_cookie |= strcasecmp(h.names[i], "Cookie") == 0;
    }
    /* the jar's cookies unless the request sets its own Cookie header */
    char *cookie = has_cookie ? NULL : mk_apitest_jar_header(r->jar, h.url);
    if (hs && cookie) {
        hs[nh].name = "Cookie";
        hs[nh++].value = cookie;
        json_object_set_new(rq_headers, "Cookie", json_string(cookie));
    }
    json_object_set_new(s->result, "request",
                        json_pack("{s:s, s:s, s:o, s:o}", "method", h.method, "url", h.url,
                                  "headers", rq_headers, "body",
                                  kept_body(r, h.body ? h.body : "", h.body_len)));
    mk_httpclient_fetch_req_t req = {
        .method = h.method,
        .url = h.url,
        .headers = hs,
        .n_headers = hs ? nh : 0,
        .body = h.body,
        .body_len = h.body_len,
        .timeout_ms = r->o.request_timeout_ms,
        .connect_timeout_ms = r->o.connect_timeout_ms,
        .follow_redirects = follow_redirects(r, s->e),
        .max_redirects = r->o.max_redirects,
        .insecure = r->o.insecure,
        .max_body = r->o.max_response_bytes,
        .user_agent = "MockartyRunner/1.0",
    };
    mk_httpclient_fetch_resp_t resp;
    int rc = hs ? mk_httpclient_fetch(&req, &resp, &err) : MK_ENOMEM;
    free(hs);
    free(cookie);
    mk_apitest_http_free(&h);
    if (rc < 0) {
        step_error(s, "request failed: %s", err.msg[0] ? err.msg : "out of memory");
        return -1;
    }
    json_t *obj = json_object(), *list = json_array();
    for (size_t i = 0; i < resp.n_headers; i++) {
        if (strcasecmp(resp.headers[i].name, "Set-Cookie") == 0)
            mk_apitest_jar_store(r->jar, resp.effective_url, resp.headers[i].value);
        json_t *prev = json_object_get(obj, resp.headers[i].name);
        if (prev && json_is_string(prev)) {
            /* repeated headers (Set-Cookie) join with ", " in the summary; the list keeps all */
            char *joined = malloc(json_string_length(prev) + strlen(resp.headers[i].value) + 3);
            if (joined) {
                sprintf(joined, "%s, %s", json_string_value(prev), resp.headers[i].value);
                json_object_set_new(obj, resp.headers[i].name, json_string(joined));
                free(joined);
            }
        } else {
            json_object_set_new(obj, resp.headers[i].name, json_string(resp.headers[i].value));
        }
        json_array_append_new(list, json_pack("{s:s, s:s}", "key", resp.headers[i].name, "value",
                                              resp.headers[i].value));
    }
    const char *reason = reason_of(resp.status, resp.reason);
    long ms = (long)(resp.total_ms + 0.5);
    json_object_set_new(s->result, "response",
                        json_pack("{s:i, s:s, s:o, s:o, s:I, s:I}", "status",
                                  (json_int_t)resp.status, "statusText", reason, "headers", obj,
                                  "body", kept_body(r, resp.body, resp.body_len), "size",
                                  (json_int_t)resp.body_len, "responseTime", (json_int_t)ms));
    char *text = mk_apitest_utf8_clean(resp.body, resp.body_len);
    *script_resp =
        json_pack("{s:i, s:s, s:o, s:s, s:I, s:I}", "code", (json_int_t)resp.status, "status",
                  reason, "headers", list, "body", text ? text : "", "responseTime", (json_int_t)ms,
                  "responseSize", (json_int_t)resp.body_len);
    free(text);
    mk_httpclient_fetch_resp_free(&resp);
    return 0;
}

/* One execution of an entry: its TestResult, and where to go next. */
static json_t *run_entry(run_t *r, const mk_apitest_entry_t *e, json_t **next)
{
    double t0 = now_ms();
    const char *name = json_string_value(json_object_get(e->item, "name"));
    const char *id = json_string_value(json_object_get(e->item, "id"));
    char uuid[37];
    if (!id || !id[0]) {
        mk_apitest_uuid(uuid);
        id = uuid;
    }
    step_t s = {.r = r, .e = e};
    s.result = json_pack("{s:s, s:s, s:s, s:[]}", "id", id, "requestName", name ? name : "",
                         "folder", e->folder, "assertions");
    s.assertions = json_object_get(s.result, "assertions");
    s.console = json_array();
    json_t *request = mk_apitest_working_request(e->item);
    json_t *response = NULL;
    run_event(&s, "prerequest", &request, NULL);
    if (!s.skip && send(&s, request, &response) == 0)
        run_event(&s, "test", &request, response);
    json_decref(request);
    json_decref(response);

    size_t failed = 0, i;
    json_t *a;
    json_array_foreach(s.assertions, i, a)
    {
        failed += !json_is_true(json_object_get(a, "passed"));
    }
    const char *status = s.skip ? "skipped" : s.error[0] ? "error" : failed ? "failed" : "passed";
    json_object_set_new(s.result, "status", json_string(status));
    json_object_set_new(s.result, "duration", json_integer((json_int_t)(now_ms() - t0 + 0.5)));
    if (s.error[0])
        json_object_set_new(s.result, "error", json_string(s.error));
    if (json_array_size(s.console))
        json_object_set(s.result, "console", s.console);
    json_decref(s.console);
    *next = s.next_ref;
    return s.result;
}

/* setNextRequest: the first request with that name (or id); -1 when there is none. */
static long find_entry(const mk_apitest_collection_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *n = json_string_value(json_object_get(c->entries[i].item, "name"));
        const char *id = json_string_value(json_object_get(c->entries[i].item, "id"));
        if ((n && strcmp(n, name) == 0) || (id && strcmp(id, name) == 0))
            return (long)i;
    }
    return -1;
}

static void defaults(mk_apitest_options_t *o, const mk_apitest_collection_t *c)
{
    if (o->request_timeout_ms <= 0)
        o->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    if (o->connect_timeout_ms <= 0)
        o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (o->script_timeout_ms <= 0)
        o->script_timeout_ms = DEFAULT_SCRIPT_TIMEOUT_MS;
    if (!o->script_max_heap)
        o->script_max_heap = DEFAULT_SCRIPT_HEAP;
    if (!o->max_response_bytes)
        o->max_response_bytes = DEFAULT_MAX_RESPONSE;
    if (!o->max_body_kept)
        o->max_body_kept = DEFAULT_BODY_KEPT;
    if (!o->max_executions)
        o->max_executions = c->n * 10 + 10;
}

/* Adds a TestResult's counts to the run's. */
static void count(run_t *r, const json_t *tr)
{
    const char *st = json_string_value(json_object_get(tr, "status"));
    r->counts[strcmp(st, "passed") == 0    ? 0
              : strcmp(st, "failed") == 0  ? 1
              : strcmp(st, "skipped") == 0 ? 2
                                           : 3]++;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(tr, "assertions"), i, a)
    {
        r->asserts[json_is_true(json_object_get(a, "skipped"))  ? 2
                   : json_is_true(json_object_get(a, "passed")) ? 0
                                                                : 1]++;
    }
}

/* One pass over the collection. -1 when the whole run stops (cancel, bail, too many
 * executions); setNextRequest(null) only ends this iteration, as in Newman. */
static int run_iteration(run_t *r)
{
    const mk_apitest_collection_t *c = r->c;
    size_t idx = 0;
    while (idx < c->n) {
        const mk_apitest_entry_t *e = &c->entries[idx];
        if (r->index >= r->o.max_executions) {
            snprintf(r->stop_buf, sizeof r->stop_buf,
                     "stopped after %zu request executions (setNextRequest loop?)", r->index);
            r->stop_reason = r->stop_buf;
            return -1;
        }
        if (emit(r, MK_APITEST_REQUEST_START, e, NULL, NULL))
            return -1;
        json_t *next = NULL;
        json_t *tr = run_entry(r, e, &next);
        if (r->iterations > 1)
            json_object_set_new(tr, "iteration", json_integer((json_int_t)r->iteration));
        json_array_append_new(r->results, tr);
        count(r, tr);
        emit(r, MK_APITEST_REQUEST_DONE, e, NULL, tr);
        r->index++;
        const char *st = json_string_value(json_object_get(tr, "status"));
        int stop = r->cancelled ? -1 : 0;
        if (!stop && r->o.bail && (strcmp(st, "failed") == 0 || strcmp(st, "error") == 0)) {
            r->stop_reason = "stopped at the first failure (bail)";
            stop = -1;
        }
        if (!stop && next && json_is_null(next)) {
            r->stop_reason = "stopped by setNextRequest(null)";
            stop = 1;
        } else if (!stop && next) {
            long to = json_is_string(next) ? find_entry(c, json_string_value(next)) : -1;
            if (to < 0) {
                snprintf(r->stop_buf, sizeof r->stop_buf, "setNextRequest: no request named '%s'",
                         json_is_string(next) ? json_string_value(next) : "?");
                r->stop_reason = r->stop_buf;
                stop = 1;
            }
            idx = (size_t)to;
        } else {
            idx++;
        }
        json_decref(next);
        if (stop)
            return stop < 0 ? -1 : 0;
    }
    return 0;
}

int mk_apitest_run(const mk_apitest_collection_t *c, const mk_apitest_options_t *o, json_t **result,
                   mk_err_t *err)
{
    *result = NULL;
    if (!c)
        return mk_err_set(err, MK_EINVAL, "apitest: no collection");
    run_t r = {.c = c};
    if (o)
        r.o = *o;
    defaults(&r.o, c);
    if ((r.o.environment && !json_is_object(r.o.environment)) ||
        (r.o.globals && !json_is_object(r.o.globals) && !json_is_array(r.o.globals)) ||
        (r.o.variables && !json_is_object(r.o.variables)))
        return mk_err_set(err, MK_EINVAL,
                          "apitest: environment, globals and variables must be JSON objects");
    if (r.o.data && !json_is_array(r.o.data))
        return mk_err_set(err, MK_EINVAL, "apitest: iteration data must be a JSON array");
    r.vars.local = scope_from(r.o.variables);
    r.jar = json_array();
    r.vars.data = json_object();
    r.vars.environment = scope_from(r.o.environment);
    r.vars.collection = scope_from(json_object_get(c->doc, "variable"));
    r.vars.globals = scope_from(r.o.globals);

    char started[32], run_id[37];
    iso_now(started);
    if (r.o.run_id)
        snprintf(run_id, sizeof run_id, "%s", r.o.run_id);
    else
        mk_apitest_uuid(run_id);
    double t0 = now_ms();
    r.results = json_array();
    r.iterations = r.o.iterations ? r.o.iterations : json_array_size(r.o.data);
    if (!r.iterations)
        r.iterations = 1;
    for (r.iteration = 0; r.iteration < r.iterations; r.iteration++) {
        /* the data row of this iteration; a shorter data file repeats its last row, as Newman */
        size_t rows = json_array_size(r.o.data);
        json_decref(r.vars.data);
        r.vars.data = scope_from(
            rows ? json_array_get(r.o.data, r.iteration < rows ? r.iteration : rows - 1) : NULL);
        if (run_iteration(&r) < 0)
            break;
    }
    json_t *results = r.results;
    size_t *counts = r.counts, *asserts = r.asserts;
    const char *stop_reason = r.stop_reason;
    char completed[32];
    iso_now(completed);
    const char *status = r.cancelled                 ? "cancelled"
                         : counts[1] + counts[3] > 0 ? "failed"
                                                     : "completed";
    json_t *meta = json_pack("{s:{s:I, s:I, s:I, s:I}, s:{s:O, s:O, s:O}, s:s}", "assertions",
                             "total", (json_int_t)(asserts[0] + asserts[1] + asserts[2]), "passed",
                             (json_int_t)asserts[0], "failed", (json_int_t)asserts[1], "skipped",
                             (json_int_t)asserts[2], "variables", "environment", r.vars.environment,
                             "collectionVariables", r.vars.collection, "globals", r.vars.globals,
                             "engine", "mockarty-c apitest (Postman v2.1, Duktape sandbox)");
    if (stop_reason)
        json_object_set_new(meta, "stopReason", json_string(stop_reason));
    *result = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:s, s:s}", "id", run_id,
        "collectionId", r.o.collection_id ? r.o.collection_id : mk_apitest_collection_id(c),
        "collectionName", mk_apitest_collection_name(c), "status", status, "totalTests",
        (json_int_t)json_array_size(results), "passedTests", (json_int_t)counts[0], "failedTests",
        (json_int_t)(counts[1] + counts[3]), "skippedTests", (json_int_t)counts[2], "duration",
        (json_int_t)(now_ms() - t0 + 0.5), "results", results, "metadata", meta, "startedAt",
        started, "completedAt", completed);
    if (r.scripts_ready)
        mk_apitest_scripts_fini(&r.scripts);
    json_decref(r.jar);
    json_decref(r.vars.local);
    json_decref(r.vars.data);
    json_decref(r.vars.environment);
    json_decref(r.vars.collection);
    json_decref(r.vars.globals);
    if (!*result)
        return mk_err_set(err, MK_ENOMEM, "apitest: out of memory");
    return 0;
}
