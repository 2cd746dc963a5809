/* GraphQL requests: parse, pick the operation, validate against the endpoint's schema, answer
 * each top-level field from its mock (one index probe per field), assemble data and errors. */
#include "serve/serve_graphql.h"

#include "serve/serve_pass.h"

#include "graphql/graphql.h"
#include "graphql/schema.h"
#include "graphql/schema_docs.h"
#include "mock/mock_graphql.h"
#include "ws/ws.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BATCH      100 /* operations in one batched request */
#define MAX_ERRORS     50
#define MAX_PROJECT    64 /* nesting of the projection of a payload onto a selection set */
#define MAX_ROUTE      1024
#define MAX_TOP_FIELDS 256
#define WORK_BUDGET    1000000
#define BATCH_BUDGET   (4 * WORK_BUDGET) /* the operations of a batch together */

static _Atomic(mk_gql_registry_t *) registry;

int mk_serve_graphql_start(mk_repo_t *repo, int poll_ms, mk_err_t *err)
{
    mk_gql_registry_t *r;
    int rc = mk_gql_registry_start(repo, poll_ms, &r, err);
    if (rc == 0)
        mk_gql_registry_free(atomic_exchange(&registry, r));
    return rc;
}

void mk_serve_graphql_stop(void)
{
    mk_gql_registry_free(atomic_exchange(&registry, NULL));
}

/* ---- the request ---------------------------------------------------------------------------- */

static const mk_gql_limits_t limits = {
    .max_bytes = 1u << 20, .max_tokens = 100000, .max_depth = 64};

typedef struct top_field {
    const mk_gql_sel_t *sel;
    const char *key;
} top_field_t;

/* How a top-level field is answered, decided once (a use claimed, a response picked) before the
 * fields render, maybe several times when they wait for Redis. */
typedef struct field_plan {
    top_field_t f;
    json_t *value;   /* answered without a mock (__typename, introspection, no mock: null) */
    json_t *error;   /* ... and its error, or NULL */
    mk_mock_t *mock; /* a reference; NULL for those */
    const mk_mock_response_t *r;
    size_t ri; /* index of r */
    mk_route_match_t match;
    char *names; /* match's parameter names */
} field_plan_t;

typedef struct gql_call {
    mk_serve_t *s;
    mk_httpd_req_t *req;
    mk_request_t *view;
    mk_str_t ns, endpoint;
    const mk_route_index_t *idx;
    const mk_gql_schema_t *schema;
    const mk_gql_reg_snap_t *rs; /* holds schema */
    int64_t now_ms;
    mk_faker_rng_t rng;
    /* Every render of the fields starts from these: the state after they were planned. */
    mk_faker_rng_t rng0;
    json_t *errors0;
    size_t budget0;
    bool too_complex0;
    field_plan_t *plan;
    size_t nplan;
    mk_request_t own_view; /* the view while the answer waits for Redis */
    char ns_buf[MK_STORE_NS_MAX + 1];
    /* the request */
    char *query;
    json_t *vars; /* the variables, defaults applied: an object */
    char *op_name;
    char *vars_text; /* vars as JSON: the body conditions read */
    char *body_text; /* {query, variables, operationName}: the body templates read */
    bool apq;        /* an Automatic Persisted Query hash came without its query */
    mk_gql_doc_t *doc;
    const mk_gql_operation_t *op;
    /* the answer */
    json_t *data, *errors;
    int status;
    size_t budget;    /* selections left to visit (fragments spread many times multiply them) */
    bool too_complex; /* the budget ran out */
    const mk_mock_response_t *first; /* of the first mock that answered: status and headers */
    uint32_t delay_ms;
    const char *mock_id; /* the first mock that answered (journal) */
    char operation[160]; /* "query user,posts" (journal) */
    /* Over a WebSocket (no req): the answer is kept for serve_graphql_ws.c, not sent. */
    unsigned worker;
    json_t *answer;    /* {data, errors}, or the errors array of an `error` message */
    bool answer_error; /* no data: the request failed (syntax, validation, no operation) */
    bool recorded;
    int event;      /* the stream event a render uses as payloads; -1: the responses' */
    size_t nevents; /* events of a streaming subscription (0: one result) */
    char *payload;  /* the message's payload: the view's body (owned) */
    /* Webhooks of the fields' mocks: own_hooks, or the batch's (sent with its answer). */
    mk_serve_hooks_t *hooks;
    mk_serve_hooks_t own_hooks;
    /* One operation of a batched request: answered into `answer` (the whole {data, errors}) with
     * answer_status; planned: its fields render with the batch's. */
    struct gql_batch *batch;
    bool planned;
    int answer_status;
    size_t hooks_from, hooks_to; /* its webhooks in the batch's set, after the last render */
} gql_call_t;

static void seed(gql_call_t *c);

/* Starts the call of one operation with what every entry point sets (the borrowed request,
 * namespace, endpoint, index and schema), its webhooks and its random seed. */
static void call_init(gql_call_t *c, mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view,
                      mk_str_t ns, mk_str_t endpoint, const mk_route_index_t *idx,
                      const mk_gql_schema_t *schema, int64_t now_ms)
{
    *c = (gql_call_t){
        .s = s,
        .req = req,
        .view = view,
        .ns = ns,
        .endpoint = endpoint,
        .idx = idx,
        .schema = schema,
        .now_ms = now_ms,
        .errors = json_array(),
        .status = 200,
        .budget = WORK_BUDGET,
        .event = -1,
    };
    mk_request_init(&c->own_view);
    mk_serve_hooks_init(&c->own_hooks);
    c->hooks = &c->own_hooks;
    seed(c);
}

static void call_release(gql_call_t *c)
{
    for (size_t i = 0; i < c->nplan; i++) {
        json_decref(c->plan[i].value);
        json_decref(c->plan[i].error);
        mk_mock_unref(c->plan[i].mock);
        free(c->plan[i].names);
    }
    free(c->plan);
    json_decref(c->errors0);
    mk_request_release(&c->own_view);
    mk_gql_registry_release(c->rs);
    free(c->query);
    json_decref(c->vars);
    free(c->op_name);
    free(c->vars_text);
    free(c->body_text);
    mk_gql_doc_free(c->doc);
    json_decref(c->data);
    json_decref(c->errors);
    json_decref(c->answer);
    free(c->payload);
    mk_serve_hooks_free(&c->own_hooks);
}

static json_t *error_obj(const char *msg, mk_gql_loc_t loc, const char *code)
{
    json_t *e = json_pack("{s:s}", "message", msg);
    if (e && loc.line)
        json_object_set_new(e, "locations",
                            json_pack("[{s:i, s:i}]", "line", (json_int_t)loc.line, "column",
                                      (json_int_t)loc.column));
    if (e && code)
        json_object_set_new(e, "extensions", json_pack("{s:s}", "code", code));
    return e;
}

static void add_error(gql_call_t *c, json_t *e)
{
    if (e && json_array_size(c->errors) < MAX_ERRORS)
        json_array_append(c->errors, e);
    json_decref(e);
}

static void record(gql_call_t *c, int status, mk_str_t answer)
{
    /* A GET has no body: the journal gets its {query, variables, operationName} instead. */
    mk_journal_rec_t rec = {
        .ts_ms = c->now_ms,
        .namespace_ = c->ns,
        .mock_id = mk_str_of(c->mock_id),
        .body = c->view->body.len ? c->view->body : mk_str_of(c->body_text),
        .status = status,
        .protocol = MK_STR_LIT("graphql"),
        .operation = mk_str_of(c->operation),
        .response = answer,
    };
    mk_journal_t *j = mk_serve_journal(c->s);
    c->recorded = true;
    if (c->req != NULL) {
        mk_serve_record(j, c->req, c->view, rec);
        return;
    }
    if (j == NULL)
        return;
    /* A WebSocket message: method "WS" like the socket mocks' messages. */
    rec.method = MK_STR_LIT("WS");
    rec.path = c->view->path;
    rec.query = c->view->query;
    rec.headers = c->view->headers;
    rec.nheaders = c->view->nheaders;
    mk_journal_record(j, c->worker, &rec);
}

/* Sends an answer with the literal headers of first (the first mock that answered; may be NULL)
 * after delay_ms, or holds it while synchronous webhooks of hooks run. */
static void send_answer(mk_serve_t *s, mk_httpd_req_t *req, const mk_mock_response_t *first,
                        const mk_serve_hooks_t *hooks, int status, mk_str_t body, uint32_t delay_ms)
{
    for (size_t i = 0; first && i < first->nheaders; i++)
        if (!mk_str_caseeq(first->headers[i].name, MK_STR_LIT("Content-Type")) &&
            (first->header_tpls == NULL || first->header_tpls[i] == NULL))
            mk_httpd_add_header(req, first->headers[i].name, first->headers[i].value);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"),
                        MK_STR_LIT("application/json; charset=utf-8"));
    mk_httpd_send_opts_t opts = {.delay_ms = delay_ms};
    if (!mk_serve_hooks_fire(s, req, hooks, status, body, &opts))
        mk_httpd_send(req, status, body, &opts);
}

/* Sends {"errors": [...]} or {"data": ..., "errors": [...]} with status. */
static int respond(gql_call_t *c, int status)
{
    json_t *body = json_object();
    if (c->data)
        json_object_set(body, "data", c->data);
    if (json_array_size(c->errors))
        json_object_set(body, "errors", c->errors);
    char *text = json_dumps(body, JSON_COMPACT);
    mk_str_t out = text ? mk_str_of(text) : MK_STR_LIT("{\"errors\":[]}");
    c->view->served_protocol = "graphql";
    c->view->served_matched = c->mock_id != NULL;
    if (c->batch != NULL) { /* the batch records and sends its operations' answers in order */
        json_decref(c->answer);
        c->answer = body;
        c->answer_status = status;
        free(text);
        return status;
    }
    bool first = !c->recorded; /* a stream's later events are not operations of their own */
    if (first)
        record(c, status, out);
    if (c->req == NULL) {
        if (first)
            mk_serve_hooks_fire(c->s, NULL, c->hooks, status, out, &(mk_httpd_send_opts_t){0});
        json_decref(c->answer);
        c->answer_error = c->data == NULL;
        c->answer = c->answer_error ? json_incref(c->errors) : body;
        if (c->answer_error)
            json_decref(body);
        free(text);
        return status;
    }
    json_decref(body);
    send_answer(c->s, c->req, c->first, c->hooks, status, out, c->delay_ms);
    free(text);
    return status;
}

/* A request-level failure (no query, syntax error, unknown operation): {"errors": [...]}. */
static int fail(gql_call_t *c, int status, const char *msg, mk_gql_loc_t loc, const char *code)
{
    json_decref(c->data);
    c->data = NULL;
    if (c->batch == NULL) /* an answer that failed sends no webhooks */
        mk_serve_hooks_reset(c->hooks);
    add_error(c, error_obj(msg, loc, code));
    return respond(c, status);
}

/* ---- is this an endpoint? ------------------------------------------------------------------- */

/* Whether path is a GraphQL endpoint of the namespace: a mock's graphql.path there, found under
 * the index node that "<path>/query" reaches (one probe), or an uploaded schema's path. */
static bool mocks_at(const mk_route_index_t *idx, mk_str_t path)
{
    if (idx == NULL)
        return false;
    char probe[MAX_ROUTE];
    if (!mk_mock_graphql_route(probe, sizeof probe, path, 0, "__probe"))
        return false;
    void *near[8];
    size_t n = mk_route_nearest(idx, MK_STR_LIT(MK_MOCK_GRAPHQL_METHOD), mk_str_of(probe), near, 8);
    size_t pl = path.len;
    while (pl > 1 && path.base[pl - 1] == '/')
        pl--;
    for (size_t i = 0; i < n; i++) {
        const mk_mock_t *m = near[i];
        if (m->graphql && strlen(m->graphql->endpoint) == pl &&
            memcmp(m->graphql->endpoint, path.base, pl) == 0)
            return true;
    }
    return false;
}

/* ---- reading the request -------------------------------------------------------------------- */

static char *param(mk_request_t *view, const char *name)
{
    mk_str_t v;
    return mk_request_query_param(view, mk_str_of(name), &v) ? mk_str_dup(v) : NULL;
}

/* Fills query, vars, op_name from a POST JSON body, an application/graphql body or the query
 * string of a GET. Returns 0, or an HTTP status with the message in msg. */
static int read_request(gql_call_t *c, char *msg, size_t size)
{
    mk_request_t *v = c->view;
    json_t *vars = NULL;
    if (mk_str_eq_cstr(v->method, "GET")) {
        c->query = param(v, "query");
        c->op_name = param(v, "operationName");
        char *ext = param(v, "extensions");
        json_t *ej = ext ? json_loads(ext, 0, NULL) : NULL;
        c->apq = json_is_object(json_object_get(ej, "persistedQuery"));
        json_decref(ej);
        free(ext);
        char *vt = param(v, "variables");
        if (vt && vt[0]) {
            vars = json_loads(vt, 0, NULL);
            if (!json_is_object(vars) && !json_is_null(vars)) {
                free(vt);
                json_decref(vars);
                snprintf(msg, size, "Variables are invalid JSON.");
                return 400;
            }
        }
        free(vt);
    } else {
        mk_str_t ct = {0};
        mk_request_header(v, MK_STR_LIT("Content-Type"), &ct);
        if (mk_str_starts_with(ct, "application/graphql")) {
            c->query = mk_str_dup(v->body);
        } else {
            json_t *body = mk_request_json(v);
            if (!json_is_object(body)) {
                snprintf(msg, size,
                         "POST body must be a JSON object {\"query\", \"variables\", "
                         "\"operationName\"}.");
                return 400;
            }
            json_t *q = json_object_get(body, "query"), *o = json_object_get(body, "operationName");
            if (q && !json_is_string(q)) {
                snprintf(msg, size, "The \"query\" member must be a string.");
                return 400;
            }
            c->query = q ? strdup(json_string_value(q)) : NULL;
            c->apq = json_is_object(
                json_object_get(json_object_get(body, "extensions"), "persistedQuery"));
            c->op_name = json_is_string(o) ? strdup(json_string_value(o)) : NULL;
            json_t *vj = json_object_get(body, "variables");
            if (json_is_string(vj)) /* some clients send the variables as JSON text */
                vars = json_loads(json_string_value(vj), 0, NULL);
            else if (vj && !json_is_null(vj))
                vars = json_incref(vj);
            if (vars && !json_is_object(vars)) {
                json_decref(vars);
                snprintf(msg, size, "Variables must be an object.");
                return 400;
            }
        }
    }
    c->vars = vars && json_is_object(vars) ? vars : json_object();
    if (vars && c->vars != vars)
        json_decref(vars);
    if (c->query == NULL || c->query[0] == '\0') {
        snprintf(msg, size, "Must provide query string.");
        return 400;
    }
    return 0;
}

/* Variable defaults (`$n: Int = 10`) for variables the request left out. */
static void apply_defaults(gql_call_t *c)
{
    for (const mk_gql_var_def_t *d = c->op->vars; d; d = d->next)
        if (d->default_value && json_object_get(c->vars, d->name) == NULL)
            json_object_set_new(c->vars, d->name, mk_gql_value_to_json(d->default_value, NULL));
}

/* ---- answering fields ----------------------------------------------------------------------- */

/* One selection visited; false (and an error, once) when the request's budget is spent. */
static bool spend(gql_call_t *c)
{
    if (c->budget > 0) {
        c->budget--;
        return true;
    }
    if (!c->too_complex) {
        c->too_complex = true;
        char msg[256];
        if (c->batch != NULL)
            snprintf(msg, sizeof msg,
                     "Query is too complex: more than %u selections to visit (fragments spread "
                     "many times; a batch's operations visit %u together); the answer is cut "
                     "there.",
                     (unsigned)WORK_BUDGET, (unsigned)BATCH_BUDGET);
        else
            snprintf(msg, sizeof msg,
                     "Query is too complex: more than %u selections to visit (fragments spread "
                     "many times); the answer is cut there.",
                     (unsigned)WORK_BUDGET);
        add_error(c, error_obj(msg, (mk_gql_loc_t){0, 0}, "QUERY_TOO_COMPLEX"));
    }
    return false;
}

/* The root selection set's fields, fragments flattened, @skip/@include applied, first
 * occurrence of each response key kept. */
static void collect(gql_call_t *c, const mk_gql_sel_t *sels, top_field_t *out, size_t *n,
                    unsigned depth)
{
    if (depth > MAX_PROJECT)
        return;
    for (const mk_gql_sel_t *s = sels; s && *n < MAX_TOP_FIELDS && spend(c); s = s->next) {
        if (!mk_gql_included(s->directives, c->vars))
            continue;
        if (s->kind == MK_GQL_SEL_FIELD) {
            const char *key = s->alias ? s->alias : s->name;
            bool dup = false;
            for (size_t i = 0; i < *n && !dup; i++)
                dup = strcmp(out[i].key, key) == 0;
            if (!dup)
                out[(*n)++] = (top_field_t){s, key};
        } else {
            const char *cond; /* the top level of an operation has its root's type */
            const mk_gql_sel_t *body;
            if (mk_gql_fragment_of(c->doc, s, &cond, &body))
                collect(c, body, out, n, depth + 1);
        }
    }
}

static const char *root_type(const gql_call_t *c)
{
    static const char *const conventional[3] = {"Query", "Mutation", "Subscription"};
    const char *r = c->schema ? mk_gql_schema_root(c->schema, c->op->kind) : NULL;
    return r ? r : conventional[c->op->kind];
}

/* Does a fragment with type condition cond apply to obj (of schema type type_name)? */
static bool applies(gql_call_t *c, const json_t *obj, const char *type_name, const char *cond)
{
    if (cond == NULL)
        return true;
    const char *tn = json_string_value(json_object_get(obj, "__typename"));
    if (tn == NULL)
        tn = type_name;
    if (tn == NULL)
        return true; /* without a type, the payload decides what it holds */
    if (c->schema)
        return mk_gql_schema_type_applies(c->schema, tn, cond);
    return strcmp(tn, cond) == 0;
}

static json_t *project(gql_call_t *c, json_t *value, const mk_gql_sel_t *sels,
                       const char *type_name, unsigned depth);

static void project_into(gql_call_t *c, json_t *obj, const mk_gql_sel_t *sels,
                         const char *type_name, json_t *out, unsigned depth)
{
    if (depth > MAX_PROJECT)
        return;
    for (const mk_gql_sel_t *s = sels; s; s = s->next) {
        if (!spend(c))
            return;
        if (!mk_gql_included(s->directives, c->vars))
            continue;
        if (s->kind != MK_GQL_SEL_FIELD) {
            const char *cond;
            const mk_gql_sel_t *body;
            if (!mk_gql_fragment_of(c->doc, s, &cond, &body))
                continue;
            if (applies(c, obj, type_name, cond))
                project_into(c, obj, body, type_name, out, depth + 1);
            continue;
        }
        const char *key = s->alias ? s->alias : s->name;
        if (json_object_get(out, key))
            continue;
        json_t *v = json_object_get(obj, s->name);
        if (v == NULL && s->alias)
            v = json_object_get(obj, s->alias); /* a payload written with the alias */
        if (strcmp(s->name, "__typename") == 0 && v == NULL) {
            json_object_set_new(out, key, type_name ? json_string(type_name) : json_null());
            continue;
        }
        const char *tn = NULL;
        if (c->schema && type_name) {
            const char *concrete = json_string_value(json_object_get(obj, "__typename"));
            tn = mk_gql_schema_field_type(c->schema, concrete ? concrete : type_name, s->name);
        }
        json_object_set_new(out, key,
                            v ? project(c, v, s->selections, tn, depth + 1) : json_null());
    }
}

/* The payload's value shaped like the selection set: only the selected fields, under their
 * aliases, missing ones null, lists element by element. */
static json_t *project(gql_call_t *c, json_t *value, const mk_gql_sel_t *sels,
                       const char *type_name, unsigned depth)
{
    if (sels == NULL || depth > MAX_PROJECT || !(json_is_object(value) || json_is_array(value)))
        return json_incref(value);
    if (json_is_array(value)) {
        json_t *a = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v)
            json_array_append_new(a, project(c, v, sels, type_name, depth + 1));
        return a;
    }
    json_t *o = json_object();
    if (o)
        project_into(c, value, sels, type_name, o, depth);
    return o;
}

/* A `graphqlErrors` entry or a payload's `errors` entry: path and locations of the field when
 * the mock left them out. */
static void add_mock_error(gql_call_t *c, json_t *e, const top_field_t *f)
{
    if (!json_is_object(e))
        return;
    json_t *copy = json_deep_copy(e);
    if (copy == NULL)
        return;
    if (json_object_get(copy, "path") == NULL)
        json_object_set_new(copy, "path", json_pack("[s]", f->key));
    if (json_object_get(copy, "locations") == NULL)
        json_object_set_new(copy, "locations",
                            json_pack("[{s:i, s:i}]", "line", (json_int_t)f->sel->loc.line,
                                      "column", (json_int_t)f->sel->loc.column));
    add_error(c, copy);
}

/* A view of the request for templates or conditions: the request's method, path, query and
 * headers with body in place of its own. */
static void view_with_body(const gql_call_t *c, mk_request_t *v, mk_str_t body)
{
    mk_request_init(v);
    v->method = c->view->method;
    v->path = c->view->path;
    v->query = c->view->query;
    v->headers = c->view->headers;
    v->nheaders = c->view->nheaders;
    v->body = body;
}

/* Renders tpl (or the literal) with env and parses it as JSON into *out (NULL when empty). */
static int render_json(mk_template_env_t *env, mk_template_t *tpl, const char *lit, size_t lit_len,
                       json_t **out, mk_err_t *err)
{
    mk_buf_t b;
    mk_buf_init(&b, MK_SERVE_MAX_RENDERED_BYTES);
    int rc = tpl ? mk_template_render(tpl, env, &b, err) : mk_buf_append(&b, lit, lit_len);
    *out = NULL;
    if (rc == 0 && b.len)
        *out = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    if (rc == 0 && b.len && *out == NULL)
        rc = mk_err_set(err, MK_EINVAL, "the rendered payload is not JSON");
    mk_buf_free(&b);
    return rc;
}

/* The no-mock error of a field: why the closest mocks did not match (when the caller may see). */
static json_t *no_mock_error(gql_call_t *c, const top_field_t *f, const char *route,
                             mk_request_t *cv)
{
    char msg[512];
    snprintf(msg, sizeof msg, "No mock for %s field \"%s\" at %.*s in namespace '%.*s'.",
             mk_gql_op_kind_name(c->op->kind), f->sel->name, (int)c->endpoint.len, c->endpoint.base,
             (int)c->ns.len, c->ns.base);
    json_t *e = error_obj(msg, f->sel->loc, NULL);
    json_object_set_new(e, "path", json_pack("[s]", f->key));
    json_t *ext = json_pack("{s:s}", "code", "MOCK_NOT_FOUND");
    if (!mk_serve_shows_details(c->s, c->view)) {
        json_object_set_new(ext, "hint",
                            json_string("send the API token to see which mocks came close"));
        json_object_set_new(e, "extensions", ext);
        return e;
    }
    json_t *closest = json_array();
    mk_route_iter_t it;
    mk_route_match_t match;
    mk_route_lookup(c->idx, MK_STR_LIT(MK_MOCK_GRAPHQL_METHOD), mk_str_of(route), &it);
    while (json_array_size(closest) < 3 && mk_route_next(&it, &match)) {
        mk_mock_t *m = match.value;
        json_t *failed = json_array();
        if (!mk_mock_active(m, c->now_ms))
            json_array_append_new(failed, json_string("mock is not active (deleted, expired or "
                                                      "used up)"));
        for (size_t i = 0; i < m->nconds; i++) {
            if (mk_cond_eval(m->conds[i], cv))
                continue;
            char buf[512];
            mk_cond_explain(m->conds[i], cv, buf, sizeof buf);
            json_array_append_new(failed, json_string(buf));
        }
        json_array_append_new(closest, json_pack("{s:s, s:s, s:o}", "id", m->id, "field",
                                                 m->graphql->field, "failed", failed));
    }
    void *near[8];
    size_t n =
        mk_route_nearest(c->idx, MK_STR_LIT(MK_MOCK_GRAPHQL_METHOD), mk_str_of(route), near, 8);
    for (size_t i = 0; i < n && json_array_size(closest) < 3; i++) {
        const mk_mock_t *m = near[i];
        if (m->graphql == NULL || strcmp(m->route, route) == 0)
            continue;
        char note[300];
        snprintf(note, sizeof note, "answers %s field \"%s\" at %s",
                 mk_mock_graphql_operations[m->graphql->operation], m->graphql->field,
                 m->graphql->endpoint);
        json_array_append_new(closest, json_pack("{s:s, s:s, s:[s]}", "id", m->id, "field",
                                                 m->graphql->field, "failed", note));
    }
    json_object_set_new(ext, "closest", closest);
    json_object_set_new(e, "extensions", ext);
    return e;
}

static void plan_mocked(gql_call_t *c, field_plan_t *pl, mk_request_t *cv);

/* The body conditions read: the variables, and over them the field's arguments (literals and
 * variables resolved), so "$.id" matches user(id: "1") and user(id: $id) alike. */
static char *cond_body(const gql_call_t *c, const mk_gql_sel_t *field)
{
    if (field->args == NULL)
        return strdup(c->vars_text);
    json_t *o = json_copy(c->vars);
    for (const mk_gql_arg_t *a = field->args; o && a; a = a->next)
        json_object_set_new(o, a->name, mk_gql_value_to_json(a->value, c->vars));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void plan_field(gql_call_t *c, field_plan_t *pl, mk_request_t *cv)
{
    const top_field_t *f = &pl->f;
    const char *name = f->sel->name;
    if (strcmp(name, "__typename") == 0) {
        pl->value = json_string(root_type(c));
        return;
    }
    if (c->op->kind == MK_GQL_QUERY &&
        (strcmp(name, "__schema") == 0 || strcmp(name, "__type") == 0)) {
        if (c->schema) {
            pl->value = mk_gql_introspect(c->schema, c->doc, f->sel, c->vars);
            return;
        }
        pl->value = json_null();
        pl->error = error_obj("Introspection needs the endpoint's schema: upload it with POST "
                              "/api/v1/graphql/schemas.",
                              f->sel->loc, "INTROSPECTION_UNAVAILABLE");
        json_object_set_new(pl->error, "path", json_pack("[s]", f->key));
        return;
    }
    char *cbody = cond_body(c, f->sel);
    mk_request_t fv;
    mk_request_init(&fv);
    fv.method = cv->method;
    fv.path = cv->path;
    fv.query = cv->query;
    fv.headers = cv->headers;
    fv.nheaders = cv->nheaders;
    fv.body = mk_str_of(cbody);
    plan_mocked(c, pl, &fv);
    mk_request_release(&fv);
    free(cbody);
}

/* A field's mock (one index probe; a use claimed, a response picked), or null and an error. */
static void plan_mocked(gql_call_t *c, field_plan_t *pl, mk_request_t *cv)
{
    const top_field_t *f = &pl->f;
    char route[MAX_ROUTE];
    mk_mock_t *found = NULL;
    mk_route_match_t match = {0};
    if (c->idx &&
        mk_mock_graphql_route(route, sizeof route, c->endpoint, (int)c->op->kind, f->sel->name)) {
        mk_route_iter_t it;
        mk_route_lookup(c->idx, MK_STR_LIT(MK_MOCK_GRAPHQL_METHOD), mk_str_of(route), &it);
        while (found == NULL && mk_route_next(&it, &match)) {
            mk_mock_t *m = match.value;
            if (m->graphql == NULL || !mk_mock_active(m, c->now_ms))
                continue;
            size_t i = 0;
            while (i < m->nconds && mk_cond_eval(m->conds[i], cv))
                i++;
            if (i == m->nconds && mk_mock_claim_use(m, c->now_ms))
                found = m;
        }
    }
    /* The field's answer may wait for Redis after the catalog snapshot is left. */
    if (found != NULL && mk_serve_match_keep(&match, &pl->names) != 0)
        found = NULL;
    if (found == NULL) {
        pl->value = json_null();
        pl->error = c->idx ? no_mock_error(c, f, route, cv)
                           : error_obj("No mock for this field.", f->sel->loc, "MOCK_NOT_FOUND");
        return;
    }
    pl->mock = mk_mock_ref(found);
    pl->match = match;
    pl->r = mk_mock_pick_response(found, &c->rng);
    pl->ri = (size_t)(pl->r - found->responses);
    if (c->first == NULL) {
        c->first = pl->r;
        c->mock_id = found->id;
    }
    uint32_t d = mk_mock_pick_delay(pl->r, &c->rng);
    if (d > c->delay_ms)
        c->delay_ms = d;
    if (pl->r->status != 200 && c->status == 200)
        c->status = pl->r->status;
}

/* A mocked field's value and errors: its mock's extraction, payload and graphqlErrors rendered
 * with the stores of p. */
static void render_field(gql_call_t *c, const field_plan_t *pl, mk_serve_pass_t *p)
{
    const top_field_t *f = &pl->f;
    const char *name = f->sel->name;
    mk_mock_t *found = pl->mock;
    const mk_mock_response_t *r = pl->r;
    mk_request_t tv;
    view_with_body(c, &tv,
                   c->view->body.len && !mk_str_eq_cstr(c->view->method, "GET")
                       ? c->view->body
                       : mk_str_of(c->body_text));
    mk_template_env_t env = {.req = &tv, .match = &pl->match, .rng = &c->rng, .now_ms = c->now_ms};
    mk_err_t err;
    json_t *payload = NULL;
    /* A streaming subscription's event k stands in for the response's payload. */
    const mk_mock_graphql_stream_t *st =
        c->event >= 0 && found->graphql->streams && pl->ri < found->graphql->nerrors
            ? &found->graphql->streams[pl->ri]
            : NULL;
    const mk_mock_graphql_event_t *ev =
        st && (size_t)c->event < st->nevents ? &st->events[c->event] : NULL;
    int rc = mk_serve_pass_mock(p, found, &env, &err);
    if (rc == 0 && ev)
        rc = render_json(&env, ev->data, "null", 4, &payload, &err);
    else if (rc == 0)
        rc = render_json(&env, r->body_tpl, r->body, r->body_len, &payload, &err);
    json_t *value = json_null();
    if (rc) {
        char msg[800];
        snprintf(msg, sizeof msg, "Mock %.128s: rendering the payload: %.600s", found->id, err.msg);
        json_t *e = error_obj(msg, f->sel->loc, "INTERNAL_SERVER_ERROR");
        json_object_set_new(e, "path", json_pack("[s]", f->key));
        add_error(c, e);
    } else if (json_is_object(payload) &&
               (json_object_get(payload, "data") || json_object_get(payload, "errors"))) {
        /* Mockarty's shape: the whole response, {"data": {"<field>": ...}, "errors": [...]}. */
        json_t *data = json_object_get(payload, "data");
        json_t *v = json_is_object(data) ? json_object_get(data, name) : NULL;
        if (v == NULL && json_is_object(data) && f->sel->alias)
            v = json_object_get(data, f->sel->alias);
        if (v)
            value = v;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(payload, "errors"), i, e) add_mock_error(c, e, f);
    } else if (payload) {
        value = payload; /* the field's value itself */
    }
    const char *tn = c->schema ? mk_gql_schema_field_type(c->schema, root_type(c), name) : NULL;
    json_object_set_new(c->data, f->key, project(c, value, f->sel->selections, tn, 0));
    mk_template_t *etpl = pl->ri < found->graphql->nerrors ? found->graphql->errors[pl->ri] : NULL;
    if (etpl) {
        json_t *errs = NULL;
        if (render_json(&env, etpl, NULL, 0, &errs, &err) == 0) {
            size_t i;
            json_t *e;
            json_array_foreach(errs, i, e) add_mock_error(c, e, f);
        }
        json_decref(errs);
    }
    /* Its webhooks, once per operation (not again for a stream's later events). */
    if (found->nwebhooks && c->event <= 0 &&
        mk_serve_hooks_render(c->hooks, found, &env, c->status, &err) != 0) {
        char msg[800];
        snprintf(msg, sizeof msg, "Mock %.128s: rendering the webhooks: %.600s", found->id,
                 err.msg);
        json_t *e = error_obj(msg, f->sel->loc, "INTERNAL_SERVER_ERROR");
        json_object_set_new(e, "path", json_pack("[s]", f->key));
        add_error(c, e);
    }
    json_decref(payload);
    mk_request_release(&tv);
}

/* ---- rendering the fields: store work (serve_pass.h) ---- */

/* Renders c's planned fields with at most cap selections to visit. */
static int fields_render_one(gql_call_t *c, mk_serve_pass_t *p, size_t cap, mk_err_t *err)
{
    c->rng = c->rng0;
    c->budget = c->budget0 < cap ? c->budget0 : cap;
    c->too_complex = c->too_complex0;
    json_decref(c->data);
    json_decref(c->errors);
    c->data = json_object();
    c->errors = json_copy(c->errors0);
    if (c->data == NULL || c->errors == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nplan; i++) {
        const field_plan_t *pl = &c->plan[i];
        if (pl->mock != NULL) {
            render_field(c, pl, p);
            continue;
        }
        json_object_set(c->data, pl->f.key, pl->value ? pl->value : json_null());
        if (pl->error)
            add_error(c, json_incref(pl->error));
    }
    return 0;
}

static int fields_render(void *ud, mk_serve_pass_t *p, mk_err_t *err)
{
    gql_call_t *c = ud;
    mk_serve_hooks_reset(c->hooks);
    return fields_render_one(c, p, SIZE_MAX, err);
}

static int fields_finish(void *ud, mk_httpd_req_t *req, int rc, const mk_err_t *err)
{
    gql_call_t *c = ud;
    c->req = req;
    if (rc == 0)
        return respond(c, c->status);
    bool down = rc == MK_EUNAVAIL;
    return fail(c, down ? 503 : 500, err->msg, (mk_gql_loc_t){0, 0},
                down ? "STORE_UNAVAILABLE" : "INTERNAL_SERVER_ERROR");
}

static void call_free(void *ud)
{
    gql_call_t *c = ud;
    call_release(c);
    free(c);
}

static const mk_serve_work_t fields_work = {fields_render, fields_finish, call_free};

/* Renders the planned fields and answers: now, or on the loop after the Redis round trips the
 * stores of their mocks need (*taken: c was handed over and may be gone). */
static bool uses_stores(const gql_call_t *c)
{
    for (size_t i = 0; i < c->nplan; i++)
        if (c->plan[i].mock && c->plan[i].mock->uses_store)
            return true;
    return false;
}

static int answer_fields(gql_call_t *c, bool *taken)
{
    bool stores = uses_stores(c);
    /* A WebSocket message has no request to wait on across Redis round trips. */
    if (stores && c->req == NULL && mk_serve_stores_async(c->s))
        return fail(c, 503,
                    "Mocks that use stores are not served over a WebSocket with the Redis store "
                    "backend.",
                    (mk_gql_loc_t){0, 0}, "STORE_UNAVAILABLE");
    c->rng0 = c->rng;
    c->budget0 = c->budget;
    c->too_complex0 = c->too_complex;
    c->errors0 = c->errors;
    c->errors = NULL;
    if (c->batch != NULL) { /* rendered with the batch's other operations */
        c->planned = true;
        return c->status;
    }
    if (!stores || !mk_serve_stores_async(c->s))
        return mk_serve_work_now(c->s, c->req, c->ns, &fields_work, c);
    /* The handler's view says what was served (metrics read it when the handler returns)... */
    c->view->served_protocol = "graphql";
    c->view->served_matched = c->mock_id != NULL;
    /* ... and the request's view and namespace outlive it while the answer waits. */
    mk_httpd_req_view(c->req, &c->own_view);
    c->view = &c->own_view;
    size_t nl = c->ns.len < sizeof c->ns_buf ? c->ns.len : sizeof c->ns_buf - 1;
    memcpy(c->ns_buf, c->ns.base, nl);
    c->ns = (mk_str_t){c->ns_buf, nl};
    int status = c->status; /* what the answer will be when it waits */
    *taken = true;
    mk_serve_work_start(c->s, c->req, c->ns, &fields_work, c, &status);
    return status;
}

/* ---- the entry point ------------------------------------------------------------------------ */

static void seed(gql_call_t *c)
{
    static _Thread_local uint64_t counter;
    mk_str_t v;
    if (mk_request_header(c->view, MK_STR_LIT("X-Mockarty-Seed"), &v) && v.len > 0 && v.len < 32) {
        char buf[32];
        memcpy(buf, v.base, v.len);
        buf[v.len] = '\0';
        char *end;
        unsigned long long s = strtoull(buf, &end, 10);
        if (*end == '\0') {
            mk_faker_rng_seed(&c->rng, s);
            return;
        }
    }
    if (counter == 0)
        counter = (uint64_t)c->now_ms ^ ((uint64_t)(uintptr_t)&counter << 16);
    mk_faker_rng_seed(&c->rng, counter++);
}

static int serve(gql_call_t *c, bool *taken)
{
    char msg[512];
    int st = read_request(c, msg, sizeof msg);
    /* Apollo's Automatic Persisted Queries: a hash alone first; this answer makes the client send
     * the query with it (we keep no hashes, so every query is sent in full). */
    if (st && c->apq && (c->query == NULL || c->query[0] == '\0'))
        return fail(c, 200, "PersistedQueryNotFound", (mk_gql_loc_t){0, 0},
                    "PERSISTED_QUERY_NOT_FOUND");
    if (st)
        return fail(c, st, msg, (mk_gql_loc_t){0, 0}, "BAD_REQUEST");
    mk_gql_error_t gerr;
    int rc = mk_gql_parse(c->query, strlen(c->query), MK_GQL_EXECUTABLE, &limits, &c->doc, &gerr);
    if (rc)
        return fail(c, rc == MK_ETOOBIG ? 413 : 400, gerr.msg, gerr.loc, "GRAPHQL_PARSE_FAILED");
    c->op = mk_gql_pick_operation(c->doc, c->op_name, &gerr);
    if (c->op == NULL)
        return fail(c, 400, gerr.msg, gerr.loc, "BAD_REQUEST");
    if (c->op->kind == MK_GQL_MUTATION && mk_str_eq_cstr(c->view->method, "GET")) {
        mk_httpd_add_header(c->req, MK_STR_LIT("Allow"), MK_STR_LIT("POST"));
        return fail(c, 405, "Can only perform a mutation operation from a POST request.",
                    c->op->loc, "BAD_REQUEST");
    }
    size_t n = c->schema ? mk_gql_validate(c->schema, c->doc, c->op, c->vars, c->errors, MAX_ERRORS)
                         : mk_gql_validate_fragments(c->doc, c->op, c->errors, MAX_ERRORS);
    if (n) {
        size_t i;
        json_t *e;
        json_array_foreach(c->errors, i, e) json_object_set_new(
            e, "extensions", json_pack("{s:s}", "code", "GRAPHQL_VALIDATION_FAILED"));
        return respond(c, 200);
    }
    apply_defaults(c);
    c->vars_text = json_dumps(c->vars, JSON_COMPACT);
    json_t *norm = json_pack("{s:s, s:O, s:s?}", "query", c->query, "variables", c->vars,
                             "operationName", c->op_name);
    c->body_text = norm ? json_dumps(norm, JSON_COMPACT) : NULL;
    json_decref(norm);
    if (c->vars_text == NULL || c->body_text == NULL)
        return fail(c, 500, "out of memory", (mk_gql_loc_t){0, 0}, "INTERNAL_SERVER_ERROR");

    top_field_t fields[MAX_TOP_FIELDS];
    size_t nf = 0;
    collect(c, c->op->selections, fields, &nf, 0);
    c->plan = calloc(nf ? nf : 1, sizeof *c->plan);
    if (c->plan == NULL)
        return fail(c, 500, "out of memory", (mk_gql_loc_t){0, 0}, "INTERNAL_SERVER_ERROR");
    /* The view the conditions read: the variables are the body; headers are the request's. */
    mk_request_t cv;
    view_with_body(c, &cv, mk_str_of(c->vars_text));
    int k = snprintf(c->operation, sizeof c->operation, "%s", mk_gql_op_kind_name(c->op->kind));
    for (size_t i = 0; i < nf; i++) {
        if (k > 0 && (size_t)k < sizeof c->operation)
            k += snprintf(c->operation + k, sizeof c->operation - (size_t)k, "%c%s", i ? ',' : ' ',
                          fields[i].sel->name);
        c->plan[c->nplan].f = fields[i];
        plan_field(c, &c->plan[c->nplan++], &cv);
    }
    mk_request_release(&cv);
    /* Over a WebSocket, a subscription whose mocks stream events answers one result per event. */
    for (size_t i = 0; c->req == NULL && c->op->kind == MK_GQL_SUBSCRIPTION && i < c->nplan; i++) {
        const field_plan_t *pl = &c->plan[i];
        const mk_mock_graphql_t *g = pl->mock ? pl->mock->graphql : NULL;
        if (g && g->streams && pl->ri < g->nerrors && g->streams[pl->ri].nevents > c->nevents)
            c->nevents = g->streams[pl->ri].nevents;
    }
    if (c->nevents > 0)
        c->event = 0;
    return answer_fields(c, taken);
}

/* ---- batched requests ----------------------------------------------------------------------
 * Apollo Client's BatchHttpLink (and Apollo Server, graphql-yoga) send a JSON array of
 * operations in one POST and read an array of results in the same order. Each operation is
 * answered by the code that answers it alone; their fields render in one piece of store work,
 * operation after operation, so later operations see earlier ones' writes, with Redis too. */

typedef struct gql_batch {
    mk_serve_t *s;
    mk_request_t own_view; /* the request (its memory lives with req) */
    mk_request_t *views;   /* each operation's: a POST of its element on the endpoint */
    gql_call_t *calls;
    size_t n;
    const mk_gql_reg_snap_t *rs; /* holds the calls' schema */
    mk_serve_hooks_t hooks;      /* every operation's mocks' webhooks, in order */
    size_t budget;               /* selections the renders may visit, after the plans */
    char ns_buf[MK_STORE_NS_MAX + 1];
} gql_batch_t;

static void batch_free(void *ud)
{
    gql_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        call_release(&b->calls[i]);
        mk_request_release(&b->views[i]);
    }
    free(b->calls);
    free(b->views);
    mk_request_release(&b->own_view);
    mk_serve_hooks_free(&b->hooks);
    mk_gql_registry_release(b->rs);
    free(b);
}

static int batch_render(void *ud, mk_serve_pass_t *p, mk_err_t *err)
{
    gql_batch_t *b = ud;
    mk_serve_hooks_reset(&b->hooks);
    size_t left = b->budget;
    for (size_t i = 0; i < b->n; i++) {
        gql_call_t *c = &b->calls[i];
        c->hooks_from = c->hooks_to = b->hooks.n;
        if (!c->planned)
            continue;
        int rc = fields_render_one(c, p, left, err);
        c->hooks_to = b->hooks.n;
        if (rc != 0)
            return rc;
        left -= (c->budget0 < left ? c->budget0 : left) - c->budget;
    }
    return 0;
}

/* Every operation's answer, journaled in order, then the array: 200, the first mock's literal
 * headers, the longest delay. */
static int batch_finish(void *ud, mk_httpd_req_t *req, int rc, const mk_err_t *err)
{
    gql_batch_t *b = ud;
    bool down = rc == MK_EUNAVAIL;
    /* The operations that fail send no webhooks; with the store down, those that do not use it
     * send theirs, as each alone would (the last render went through every operation). */
    if (rc != 0 && !down)
        mk_serve_hooks_reset(&b->hooks);
    for (size_t i = b->n; down && i-- > 0;)
        if (b->calls[i].planned && uses_stores(&b->calls[i]))
            mk_serve_hooks_drop(&b->hooks, b->calls[i].hooks_from, b->calls[i].hooks_to);
    json_t *all = json_array();
    const mk_mock_response_t *first = NULL;
    uint32_t delay = 0;
    for (size_t i = 0; i < b->n; i++) {
        gql_call_t *c = &b->calls[i];
        c->req = req;
        /* A store that failed fails the operations that use it, as it would each alone. */
        if (c->planned && rc != 0 && (!down || uses_stores(c)))
            fail(c, down ? 503 : 500, err->msg, (mk_gql_loc_t){0, 0},
                 down ? "STORE_UNAVAILABLE" : "INTERNAL_SERVER_ERROR");
        else if (c->planned)
            respond(c, c->status);
        json_t *a = c->answer ? json_incref(c->answer)
                              : json_pack("{s:[{s:s}]}", "errors", "message", "out of memory");
        char *text = json_dumps(a, JSON_COMPACT);
        record(c, c->answer_status, text ? mk_str_of(text) : MK_STR_LIT(""));
        free(text);
        json_array_append_new(all, a);
        if (first == NULL && c->answer_status < 500)
            first = c->first;
        if (c->delay_ms > delay)
            delay = c->delay_ms;
    }
    char *text = json_dumps(all, JSON_COMPACT);
    json_decref(all);
    send_answer(b->s, req, first, &b->hooks, 200, text ? mk_str_of(text) : MK_STR_LIT("[]"), delay);
    free(text);
    return 200;
}

static const mk_serve_work_t batch_work = {batch_render, batch_finish, batch_free};

/* A batch refused as a whole: {"errors": [...]} with status, journaled as one request. */
static int batch_refuse(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                        int64_t now_ms, int status, const char *msg)
{
    gql_call_t c;
    call_init(&c, s, req, view, ns, view->path, NULL, NULL, now_ms);
    snprintf(c.operation, sizeof c.operation, "batch");
    fail(&c, status, msg, (mk_gql_loc_t){0, 0}, "BAD_REQUEST");
    call_release(&c);
    return status;
}

/* req's body is a JSON array: checks it, plans every operation, then renders and answers them.
 * rs is taken. */
static int serve_batch(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                       mk_str_t path, const mk_route_index_t *idx, const mk_gql_schema_t *schema,
                       const mk_gql_reg_snap_t *rs, int64_t now_ms)
{
    json_t *arr = mk_request_json(view);
    size_t n = json_array_size(arr);
    char msg[256];
    if (n == 0)
        snprintf(msg, sizeof msg, "A batch must hold at least one operation: the array is empty.");
    else if (n > MAX_BATCH)
        snprintf(msg, sizeof msg, "A batch holds at most %d operations; this one has %zu.",
                 MAX_BATCH, n);
    for (size_t i = 0; n > 0 && n <= MAX_BATCH && i < n; i++)
        if (!json_is_object(json_array_get(arr, i))) {
            snprintf(msg, sizeof msg,
                     "Batch operation %zu (from 0) is not an object {\"query\", \"variables\", "
                     "\"operationName\", \"extensions\"}.",
                     i);
            n = 0;
            break;
        }
    gql_batch_t *b =
        n > 0 && n <= MAX_BATCH && ns.len < MK_STORE_NS_MAX + 1 ? calloc(1, sizeof *b) : NULL;
    if (b == NULL) {
        mk_gql_registry_release(rs);
        if (n > 0 && n <= MAX_BATCH)
            snprintf(msg, sizeof msg, "out of memory");
        return batch_refuse(s, req, view, ns, now_ms, n > MAX_BATCH ? 413 : n > 0 ? 500 : 400, msg);
    }
    b->s = s;
    b->rs = rs;
    b->budget = BATCH_BUDGET;
    mk_serve_hooks_init(&b->hooks);
    mk_httpd_req_view(req, &b->own_view);
    memcpy(b->ns_buf, ns.base, ns.len);
    ns = (mk_str_t){b->ns_buf, ns.len};
    b->calls = calloc(n, sizeof *b->calls);
    b->views = calloc(n, sizeof *b->views);
    if (b->calls == NULL || b->views == NULL) {
        batch_free(b);
        return batch_refuse(s, req, view, ns, now_ms, 500, "out of memory");
    }
    bool stores = false, matched = false;
    for (size_t i = 0; i < n; i++, b->n++) {
        mk_request_t *v = &b->views[i];
        gql_call_t *c = &b->calls[i];
        mk_request_init(v);
        v->method = MK_STR_LIT("POST");
        v->path = b->own_view.path;
        v->query = b->own_view.query;
        v->headers = b->own_view.headers;
        v->nheaders = b->own_view.nheaders;
        call_init(c, s, req, v, ns, path, idx, schema, now_ms);
        c->payload = json_dumps(json_array_get(arr, i), JSON_COMPACT);
        c->batch = b;
        /* Each operation has its own budget, and the batch one for them all (bounded work). */
        if (c->budget > b->budget)
            c->budget = b->budget;
        size_t start = c->budget;
        c->hooks = &b->hooks;
        v->body = mk_str_of(c->payload);
        bool taken = false; /* never: a batch's operation only plans here */
        if (c->payload == NULL || c->errors == NULL)
            fail(c, 500, "out of memory", (mk_gql_loc_t){0, 0}, "INTERNAL_SERVER_ERROR");
        else
            serve(c, &taken);
        b->budget -= start - c->budget;
        stores = stores || (c->planned && uses_stores(c));
        matched = matched || c->mock_id != NULL;
    }
    view->served_protocol = "graphql";
    view->served_matched = matched;
    if (!stores || !mk_serve_stores_async(s)) {
        int status = mk_serve_work_now(s, req, ns, &batch_work, b);
        batch_free(b);
        return status;
    }
    int status = 200;
    mk_serve_work_start(s, req, ns, &batch_work, b, &status);
    return status;
}

bool mk_serve_graphql_try(mk_serve_t *s, const mk_snapshot_t *snap, mk_httpd_req_t *req,
                          mk_request_t *view, mk_str_t ns, mk_str_t path, int64_t now_ms,
                          int *status)
{
    bool get = mk_str_eq_cstr(view->method, "GET"), post = mk_str_eq_cstr(view->method, "POST");
    if (!get && !post)
        return false;
    bool upgrade = get && mk_ws_is_handshake(req);
    /* A GET without ?query= is a page load (GraphiQL) or a plain 404: not ours. */
    mk_str_t q;
    if (get && !upgrade && !mk_request_query_param(view, MK_STR_LIT("query"), &q))
        return false;
    const mk_route_index_t *idx = mk_snapshot_index(snap, ns);
    mk_gql_registry_t *reg = atomic_load(&registry);
    const mk_gql_reg_snap_t *rs = mk_gql_registry_acquire(reg);
    char nsbuf[80];
    snprintf(nsbuf, sizeof nsbuf, "%.*s", (int)(ns.len < 79 ? ns.len : 79), ns.base);
    const mk_gql_schema_t *schema = mk_gql_registry_find(rs, nsbuf, path.base, path.len);
    if (schema == NULL && !mocks_at(idx, path)) {
        mk_gql_registry_release(rs);
        return false;
    }
    if (upgrade) { /* subscriptions and the rest over graphql-ws (serve_graphql_ws.c) */
        mk_gql_registry_release(rs);
        return mk_serve_graphql_ws_accept(s, req, view, ns, path, status);
    }
    mk_str_t ct = {0};
    mk_request_header(view, MK_STR_LIT("Content-Type"), &ct);
    if (post && !mk_str_starts_with(ct, "application/graphql") &&
        json_is_array(mk_request_json(view))) {
        *status = serve_batch(s, req, view, ns, path, idx, schema, rs, now_ms);
        return true;
    }
    gql_call_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        mk_gql_registry_release(rs);
        mk_httpd_respond(req, 500, MK_STR_LIT("{\"errors\":[{\"message\":\"out of memory\"}]}"));
        *status = 500;
        return true;
    }
    call_init(c, s, req, view, ns, path, idx, schema, now_ms);
    c->rs = rs;
    bool taken = false;
    *status = serve(c, &taken);
    if (!taken)
        call_free(c);
    return true;
}

/* ---- operations over a WebSocket (serve_graphql_ws.c) --------------------------------------- */

struct mk_serve_gql_op {
    gql_call_t call;
    mk_request_t view; /* POST of the payload on the endpoint, the upgrade's query and headers */
};

mk_serve_gql_op_t *mk_serve_graphql_op_new(mk_serve_t *s, unsigned worker, mk_str_t ns,
                                           mk_str_t endpoint, const mk_request_t *hs,
                                           mk_str_t payload)
{
    mk_serve_gql_op_t *op = calloc(1, sizeof *op);
    if (op == NULL)
        return NULL;
    gql_call_t *c = &op->call;
    mk_request_init(&op->view);
    op->view.method = MK_STR_LIT("POST");
    op->view.path = endpoint;
    op->view.query = hs->query;
    op->view.headers = hs->headers;
    op->view.nheaders = hs->nheaders;
    mk_catalog_t *cat = mk_serve_catalog(s);
    const mk_snapshot_t *snap = mk_catalog_enter(cat, worker);
    mk_gql_registry_t *reg = atomic_load(&registry);
    const mk_gql_reg_snap_t *rs = mk_gql_registry_acquire(reg);
    char nsbuf[80];
    snprintf(nsbuf, sizeof nsbuf, "%.*s", (int)(ns.len < 79 ? ns.len : 79), ns.base);
    call_init(c, s, NULL, &op->view, ns, endpoint, mk_snapshot_index(snap, ns),
              mk_gql_registry_find(rs, nsbuf, endpoint.base, endpoint.len), mk_mock_now_ms());
    c->rs = rs;
    c->worker = worker;
    c->payload = mk_str_dup(payload);
    op->view.body = mk_str_of(c->payload);
    bool taken = false; /* never: without req the answer does not wait */
    if (c->payload && c->errors)
        serve(c, &taken);
    mk_catalog_leave(cat, worker);
    c->idx = NULL; /* the snapshot is left: planning is over, the plan holds references */
    if (c->answer == NULL) {
        mk_serve_graphql_op_free(op);
        return NULL;
    }
    return op;
}

size_t mk_serve_graphql_op_results(const mk_serve_gql_op_t *op)
{
    return op->call.answer_error || op->call.nevents == 0 ? 1 : op->call.nevents;
}

uint32_t mk_serve_graphql_op_delay(const mk_serve_gql_op_t *op, size_t k)
{
    const gql_call_t *c = &op->call;
    if (c->answer_error)
        return 0;
    if (c->nevents == 0)
        return c->delay_ms;
    uint32_t d = 0;
    for (size_t i = 0; i < c->nplan; i++) {
        const mk_mock_t *m = c->plan[i].mock;
        const mk_mock_graphql_stream_t *st =
            m && m->graphql->streams && c->plan[i].ri < m->graphql->nerrors
                ? &m->graphql->streams[c->plan[i].ri]
                : NULL;
        if (st && k < st->nevents && st->events[k].delay_ms > d)
            d = st->events[k].delay_ms;
    }
    return d;
}

json_t *mk_serve_graphql_op_result(mk_serve_gql_op_t *op, size_t k, bool *is_error)
{
    gql_call_t *c = &op->call;
    if (c->nevents > 0 && !c->answer_error && (int)k != c->event) {
        c->event = (int)k;
        mk_serve_work_now(c->s, NULL, c->ns, &fields_work, c);
    }
    *is_error = c->answer_error;
    return json_incref(c->answer);
}

void mk_serve_graphql_op_free(mk_serve_gql_op_t *op)
{
    if (op == NULL)
        return;
    call_release(&op->call);
    mk_request_release(&op->view);
    free(op);
}
