/* Proxy mocks (see serve_proxy.h). Each worker loop has its own asynchronous client (pooled
 * keep-alive connections), created on the loop's first proxied request and freed with the loop.
 * A request waiting for its upstream holds one heap block with copies of what the answer, the
 * journal and the recorder need; a guard in the request's pool tells whether the client is still
 * there when the upstream answers. */
#include "serve/serve_proxy.h"

#include "api/api.h"
#include "httpclient/httpclient_loop.h"
#include "httpd/httpd_loop.h"
#include "mock/mock_proxy.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- one client per worker loop ---- */

typedef struct proxy_loop {
    mk_httpclient_loop_t *client;
    mk_httpd_watch_t *watch;
} proxy_loop_t;

static const char loop_key = 0;

static void on_client_ready(void *ud)
{
    proxy_loop_t *pl = ud;
    mk_httpclient_loop_process(pl->client);
}

/* The server is being freed: transfers still out end with "stopped" and answer nothing. */
static void proxy_loop_dispose(void *data)
{
    proxy_loop_t *pl = data;
    mk_httpd_watch_free(pl->watch);
    mk_httpclient_loop_free(pl->client);
    free(pl);
}

static proxy_loop_t *proxy_loop_of(mk_httpd_loop_t *loop, mk_err_t *err)
{
    void **slot = loop ? mk_httpd_loop_slot(loop, &loop_key, proxy_loop_dispose) : NULL;
    if (slot == NULL) {
        mk_err_set(err, MK_EUNAVAIL, "no event loop slot for the proxy client");
        return NULL;
    }
    if (*slot != NULL)
        return *slot;
    proxy_loop_t *pl = calloc(1, sizeof *pl);
    if (pl == NULL) {
        mk_err_set(err, MK_ENOMEM, "out of memory");
        return NULL;
    }
    if (mk_httpclient_loop_new(NULL, &pl->client, err) != 0) {
        free(pl);
        return NULL;
    }
    pl->watch =
        mk_httpd_watch_new(loop, mk_httpclient_loop_fd(pl->client), on_client_ready, NULL, pl);
    if (pl->watch == NULL) {
        mk_httpclient_loop_free(pl->client);
        free(pl);
        mk_err_set(err, MK_ENOMEM, "cannot watch the proxy client");
        return NULL;
    }
    mk_httpd_watch_read(pl->watch, true);
    *slot = pl;
    return pl;
}

/* ---- a request waiting for its upstream ---- */

typedef struct pending pending_t;

typedef struct guard {
    pending_t *p; /* NULL once detached */
} guard_t;

struct pending {
    mk_serve_proxy_ctx_t *ctx;
    mk_httpd_req_t *req; /* NULL once the client is gone */
    guard_t *guard;
    mk_httpd_loop_t *loop;
    mk_mock_t *mock; /* a reference */
    unsigned worker;
    int64_t ts_ms;
    mk_httpd_send_opts_t opts;
    mk_str_t ns, method, path, query, body, url;
    mk_header_t *headers; /* copies, in this block */
    size_t nheaders;
    _Alignas(max_align_t) char data[];
};

static void pending_free(pending_t *p)
{
    if (p->guard != NULL)
        p->guard->p = NULL;
    mk_mock_unref(p->mock);
    free(p);
}

static void on_req_gone(void *g)
{
    guard_t *gd = g;
    if (gd->p != NULL) {
        gd->p->req = NULL;
        gd->p->guard = NULL;
    }
}

/* Not forwarded either way: hop-by-hop headers and those the client library sets itself. */
static const char *const hop_by_hop[] = {
    "Connection",         "Keep-Alive", "Proxy-Connection",
    "Proxy-Authenticate", "TE",         "Trailer",
    "Transfer-Encoding",  "Upgrade",    "Host",
    "Content-Length",     "Expect",     "HTTP2-Settings",
};

static bool in_list(mk_str_t name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == name.len && strncasecmp(name.base, list[i], name.len) == 0)
            return true;
    return false;
}

/* Answer headers the server writes itself (as nginx's proxy_pass replaces them). */
static const char *const ours[] = {"Server", "Date"};

/* Headers that describe the upstream's exact body bytes. */
static const char *const body_bound[] = {"Content-Encoding", "ETag"};

static bool is_hop(mk_str_t name)
{
    return in_list(name, hop_by_hop, sizeof hop_by_hop / sizeof *hop_by_hop);
}

static mk_str_t put(char **at, mk_str_t s)
{
    mk_str_t out = {*at, s.len};
    memcpy(*at, s.base, s.len);
    *at += s.len;
    return out;
}

/* The upstream URL: target + path (less stripPrefix) + '?' + query. */
static size_t url_len(const mk_mock_proxy_t *px, mk_str_t path, mk_str_t query)
{
    return px->target_len + path.len + 2 + query.len;
}

static mk_str_t build_url(char **at, const mk_mock_proxy_t *px, mk_str_t path, mk_str_t query)
{
    char *start = *at;
    if (px->strip_prefix != NULL && mk_str_starts_with(path, px->strip_prefix)) {
        size_t n = strlen(px->strip_prefix);
        path = (mk_str_t){path.base + n, path.len - n};
    }
    put(at, (mk_str_t){px->target, px->target_len});
    if (path.len == 0 || path.base[0] != '/')
        *(*at)++ = '/';
    put(at, path);
    if (query.len > 0) {
        *(*at)++ = '?';
        put(at, query);
    }
    return (mk_str_t){start, (size_t)(*at - start)};
}

static pending_t *pending_new(mk_serve_proxy_ctx_t *ctx, mk_httpd_req_t *req, mk_request_t *view,
                              mk_str_t ns, mk_str_t path, mk_mock_t *m)
{
    const mk_mock_proxy_t *px = m->proxy;
    size_t need = ns.len + view->method.len + path.len + view->query.len + view->body.len +
                  url_len(px, path, view->query) + 1;
    for (size_t i = 0; i < view->nheaders; i++)
        need += view->headers[i].name.len + view->headers[i].value.len;
    pending_t *p = malloc(sizeof *p + view->nheaders * sizeof(mk_header_t) + need);
    if (p == NULL)
        return NULL;
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->req = req;
    p->loop = mk_httpd_req_loop(req);
    p->mock = mk_mock_ref(m);
    p->worker = mk_httpd_req_worker(req);
    p->headers = (mk_header_t *)p->data;
    p->nheaders = view->nheaders;
    char *at = p->data + view->nheaders * sizeof(mk_header_t);
    p->ns = put(&at, ns);
    p->method = put(&at, view->method);
    p->path = put(&at, path);
    p->query = put(&at, view->query);
    p->body = put(&at, view->body);
    for (size_t i = 0; i < view->nheaders; i++) {
        p->headers[i].name = put(&at, view->headers[i].name);
        p->headers[i].value = put(&at, view->headers[i].value);
    }
    p->url = build_url(&at, px, path, view->query);
    *at = '\0';
    return p;
}

/* ---- the answer ---- */

static void journal(pending_t *p, int status, mk_str_t reason)
{
    mk_journal_rec_t rec = {
        .ts_ms = p->ts_ms,
        .namespace_ = p->ns,
        .mock_id = mk_str_of(p->mock->id),
        .method = p->method,
        .path = p->path,
        .query = p->query,
        .body = p->body,
        .headers = p->headers,
        .nheaders = p->nheaders,
        .status = status,
        .duration_ms = p->req ? mk_httpd_req_elapsed_ms(p->req) : 0,
        .request_id = p->req ? mk_httpd_req_id(p->req) : (mk_str_t){"", 0},
        .response = reason,
    };
    mk_journal_record(p->ctx->journal, p->worker, &rec);
}

static bool overridden(const mk_mock_proxy_t *px, mk_str_t name)
{
    for (size_t i = 0; i < px->nheaders; i++)
        if (strlen(px->headers[i].name) == name.len &&
            strncasecmp(px->headers[i].name, name.base, name.len) == 0)
            return true;
    return false;
}

/* The upstream's body with proxy.override.payload merged in, when both are JSON objects (a new
 * string the caller frees), else NULL (the body goes as it came). */
static char *merged_body(const mk_mock_proxy_t *px, const mk_httpclient_loop_resp_t *r)
{
    if (px->merge == NULL)
        return NULL;
    json_t *doc = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
    char *text = NULL;
    if (json_is_object(doc)) {
        mk_mock_proxy_merge(doc, px->merge);
        text = json_dumps(doc, JSON_COMPACT);
    }
    json_decref(doc);
    return text;
}

static int answer_upstream(pending_t *p, const mk_httpclient_loop_resp_t *r)
{
    const mk_mock_proxy_t *px = p->mock->proxy;
    int status = px->status ? px->status : r->status;
    char *merged = merged_body(px, r);
    for (size_t i = 0; i < r->n_headers; i++) {
        mk_str_t name = {r->headers[i].name, r->headers[i].name_len};
        if (is_hop(name) || in_list(name, ours, 2) || overridden(px, name))
            continue;
        /* A merged body is no longer the upstream's bytes: its encoding headers go. */
        if (merged != NULL && in_list(name, body_bound, 2))
            continue;
        mk_httpd_add_header(p->req, name, (mk_str_t){r->headers[i].value, r->headers[i].value_len});
    }
    for (size_t i = 0; i < px->nheaders; i++)
        mk_httpd_add_header(p->req, mk_str_of(px->headers[i].name),
                            mk_str_of(px->headers[i].value));
    mk_str_t body = merged ? mk_str_of(merged) : (mk_str_t){r->body, r->body_len};
    int counted = p->opts.fault != MK_HTTPD_FAULT_NONE ? 0 : status;
    journal(p, counted, (mk_str_t){"", 0});
    mk_httpd_send(p->req, status, body, &p->opts);
    free(merged);
    return counted;
}

static void answer_failure(pending_t *p, const char *why)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "upstream %.*s: %s", (int)(p->url.len < 512 ? p->url.len : 512),
             p->url.base, why);
    journal(p, 502, mk_str_of(msg));
    mk_str_t id = mk_httpd_req_id(p->req);
    json_t *body = json_pack("{s:s, s:s, s:s#, s:s}", "error", msg, "code", "bad_gateway",
                             "request_id", id.base, id.len, "mockId", p->mock->id);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    mk_httpd_add_header(p->req, MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json"));
    /* The delay still applies (a slow dependency stays slow); a fault would hide the reason. */
    mk_httpd_send_opts_t opts = {.delay_ms = p->opts.delay_ms};
    mk_httpd_send(p->req, 502, text ? mk_str_of(text) : MK_STR_LIT("{\"code\":\"bad_gateway\"}"),
                  &opts);
    free(text);
}

/* ---- recording ---- */

static char *base64(const char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* A body as JSON text, or base64 with key "<key>Base64": true when it is not UTF-8. */
static void set_body(json_t *e, const char *key, const char *b, size_t n)
{
    json_t *s = json_stringn(b, n);
    if (s != NULL) {
        json_object_set_new(e, key, s);
        return;
    }
    char *enc = base64(b, n), flag[64];
    json_object_set_new(e, key, json_string(enc ? enc : ""));
    snprintf(flag, sizeof flag, "%sBase64", key);
    json_object_set_new(e, flag, json_true());
    free(enc);
}

static void add_header(json_t *obj, mk_str_t name, mk_str_t value)
{
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(name.len < 255 ? name.len : 255), name.base);
    json_t *v = json_stringn(value.base, value.len);
    if (v == NULL)
        return;
    json_t *old = json_object_get(obj, key);
    if (strcasecmp(key, "Set-Cookie") == 0) {
        if (old == NULL)
            json_object_set_new(obj, key, old = json_array());
        json_array_append_new(old, v);
    } else if (json_is_string(old)) {
        char *joined = NULL;
        if (asprintf(&joined, "%s, %s", json_string_value(old), json_string_value(v)) > 0)
            json_object_set_new(obj, key, json_string(joined));
        free(joined);
        json_decref(v);
    } else {
        json_object_set_new(obj, key, v);
    }
}

static void record_exchange(pending_t *p, const mk_httpclient_loop_resp_t *r)
{
    mk_serve_proxy_ctx_t *ctx = p->ctx;
    if (ctx->record == NULL || p->mock->proxy->record == NULL)
        return;
    char id[40];
    mk_mock_new_id(id);
    json_t *e = json_pack("{s:s, s:I, s:s#, s:s#, s:s#, s:i, s:I}", "id", id, "timestamp",
                          (json_int_t)p->ts_ms, "method", p->method.base, p->method.len, "path",
                          p->path.base, p->path.len, "query", p->query.base, p->query.len,
                          "statusCode", r->status, "duration", (json_int_t)r->duration_ms);
    if (e == NULL)
        return;
    json_t *rq = json_object(), *rs = json_object();
    for (size_t i = 0; i < p->nheaders; i++)
        add_header(rq, p->headers[i].name, p->headers[i].value);
    for (size_t i = 0; i < r->n_headers; i++)
        add_header(rs, (mk_str_t){r->headers[i].name, r->headers[i].name_len},
                   (mk_str_t){r->headers[i].value, r->headers[i].value_len});
    json_object_set_new(e, "requestHeaders", rq);
    json_object_set_new(e, "responseHeaders", rs);
    set_body(e, "requestBody", p->body.base, p->body.len);
    set_body(e, "responseBody", r->body, r->body_len);
    if (r->status == 0)
        json_object_set_new(e, "error", json_string(r->error));
    ctx->record(ctx->record_ud, p->mock->proxy->record, e);
    json_decref(e);
}

/* On the worker's loop, when the upstream answered or failed. */
static void on_upstream(void *ud, const mk_httpclient_loop_resp_t *r)
{
    pending_t *p = ud;
    if (mk_httpd_loop_disposing(p->loop)) {
        pending_free(p);
        return;
    }
    record_exchange(p, r);
    if (p->req != NULL) {
        /* The answer goes out now: the request no longer needs its guard. */
        if (p->guard != NULL)
            p->guard->p = NULL;
        p->guard = NULL;
        if (r->status == 0)
            answer_failure(p, r->error);
        else
            answer_upstream(p, r);
    } else {
        journal(p, r->status ? r->status : 502, mk_str_of(r->error));
    }
    pending_free(p);
}

/* ---- the entry point ---- */

int mk_serve_proxy(mk_serve_proxy_ctx_t *ctx, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                   mk_str_t path, const mk_serve_result_t *res, mk_faker_rng_t *rng, int64_t now_ms)
{
    mk_mock_t *m = res->mock;
    const mk_mock_proxy_t *px = m->proxy;
    const mk_mock_response_t *r = res->response;
    mk_err_t err;
    pending_t *p = NULL;
    char **lines = NULL;
    proxy_loop_t *pl = proxy_loop_of(mk_httpd_req_loop(req), &err);
    if (pl == NULL)
        goto fail;
    p = pending_new(ctx, req, view, ns, path, m);
    lines = malloc((view->nheaders + px->nadd + 1) * sizeof *lines);
    if (p == NULL || lines == NULL) {
        mk_err_set(&err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    p->ts_ms = now_ms;
    p->opts = (mk_httpd_send_opts_t){
        .delay_ms = mk_mock_pick_delay(r, rng),
        .fault = (mk_httpd_fault_t)r->fault,
        .chunks = r->dribble_chunks,
        .chunks_ms = r->dribble_ms,
    };
    /* Header lines point into one buffer the client copies from. */
    size_t nl = 0, need = 0;
    for (size_t i = 0; i < p->nheaders; i++)
        need += p->headers[i].name.len + p->headers[i].value.len + 3;
    char *buf = malloc(need + 1), *at = buf;
    if (buf == NULL) {
        mk_err_set(&err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < p->nheaders; i++) {
        mk_header_t *h = &p->headers[i];
        if (is_hop(h->name) || in_list(h->name, (const char *const *)px->remove, px->nremove))
            continue;
        /* A payload merge needs the body as text, not compressed. */
        if (px->merge != NULL && h->name.len == 15 &&
            strncasecmp(h->name.base, "Accept-Encoding", 15) == 0)
            continue;
        lines[nl++] = at;
        at += sprintf(at, "%.*s: %.*s", (int)h->name.len, h->name.base, (int)h->value.len,
                      h->value.base) +
              1;
    }
    for (size_t i = 0; i < px->nadd; i++)
        lines[nl++] = px->add_lines[i];
    mk_httpclient_loop_req_t hr = {
        .method = NULL,
        .url = p->url.base,
        .headers = (const char *const *)lines,
        .n_headers = nl,
        .body = p->body.len ? p->body.base : NULL,
        .body_len = p->body.len,
        .timeout_ms = px->timeout_ms,
        .connect_timeout_ms = px->connect_timeout_ms,
        .insecure = px->insecure,
    };
    char method[16];
    snprintf(method, sizeof method, "%.*s", (int)(p->method.len < 15 ? p->method.len : 15),
             p->method.base);
    hr.method = method;
    /* A body-less POST still says so (Content-Length: 0), as the client sent it. */
    if (hr.body == NULL &&
        (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0))
        hr.body = "";
    int rc = mk_httpclient_loop_send(pl->client, &hr, on_upstream, p, &err);
    free(buf);
    free(lines);
    lines = NULL;
    if (rc != 0)
        goto fail;
    p->guard = mk_httpd_req_alloc_guard(req, sizeof *p->guard, on_req_gone);
    p->guard->p = p;
    return px->status ? px->status : 200;
fail:
    free(lines);
    if (p == NULL) {
        int status = mk_api_reply_error(req, MK_EUNAVAIL, err.msg);
        return status;
    }
    p->req = req;
    answer_failure(p, err.msg);
    pending_free(p);
    return 502;
}

/* ---- wiring ---- */

void mk_serve_set_recorder(mk_serve_t *s, mk_serve_record_cb cb, void *ud)
{
    mk_serve_proxy_ctx_t *ctx = mk_serve_proxy_ctx(s);
    ctx->record = cb;
    ctx->record_ud = ud;
}
