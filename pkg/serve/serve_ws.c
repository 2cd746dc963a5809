/* WebSocket mocks on the HTTP port: a handshake on an endpoint of socket mocks is upgraded; each
 * message is matched by its key (a JSON message's `event`, else the whole text) against that
 * endpoint's mocks in the route index (method "WS", see mock_socket.h), and the mock's answer
 * is played out on the worker's loop: the payload, then the sseEventChain messages with their
 * delays, looping when asked, then the close code. No Socket.IO framing: messages are plain
 * WebSocket text/binary frames. */
#include "serve/serve.h"
#include "serve/serve_graphql.h"

#include "mock/mock_socket.h"
#include "ws/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers being played out on one connection at once, at most; a message past it gets an
 * error message instead of its answer. */
#define MAX_RUNS 64

typedef enum run_stage {
    STAGE_START, /* the response's delay, then the payload */
    STAGE_CHAIN,
} run_stage_t;

/* One answer in progress: which message is next and whether its wait has passed. */
typedef struct run {
    struct run *next;
    uint64_t tag;
    mk_mock_t *mock; /* a reference: the snapshot may be replaced meanwhile */
    const mk_mock_response_t *resp;
    const mk_mock_socket_reply_t *reply;
    char *msg; /* the message answered (templates read it as $.req / $.body); owned */
    size_t msg_len;
    run_stage_t stage;
    size_t pos;
    uint32_t loops;
    bool waited;
} run_t;

typedef struct client {
    mk_serve_t *s;
    mk_ws_conn_t *conn;
    char *ns, *endpoint;     /* copies: the request is gone after the upgrade */
    mk_serve_ws_kept_t kept; /* for $.queryParam and $.reqHeader templates */
    bool details;
    mk_faker_rng_t rng;
    run_t *runs;
    size_t nruns;
    uint64_t next_tag;
} client_t;

static void run_free(run_t *r)
{
    mk_mock_unref(r->mock);
    free(r->msg);
    free(r);
}

static void client_drop_run(client_t *c, run_t *r)
{
    for (run_t **p = &c->runs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            c->nruns--;
            break;
        }
    run_free(r);
}

static void view_of(client_t *c, mk_request_t *view, const char *body, size_t len)
{
    mk_request_init(view);
    view->method = MK_STR_LIT(MK_MOCK_WS_METHOD);
    view->path = mk_str_of(c->endpoint);
    view->query = c->kept.query;
    view->headers = c->kept.headers;
    view->nheaders = c->kept.nheaders;
    view->body = (mk_str_t){body, len};
}

/* Renders one message (constant bytes or template) and queues it. */
static void send_message(client_t *c, const mk_mock_t *m, mk_request_t *view, const char *text,
                         size_t len, const mk_template_t *tpl)
{
    if (tpl == NULL) {
        mk_ws_send(c->conn, MK_WS_TEXT, (mk_str_t){text, len});
        return;
    }
    mk_template_env_t env = {.req = view, .rng = &c->rng, .now_ms = mk_mock_now_ms()};
    mk_buf_t out;
    mk_buf_init(&out, MK_SERVE_MAX_RENDERED_BYTES);
    mk_err_t err;
    if (mk_template_render(tpl, &env, &out, &err) == 0) {
        mk_ws_send(c->conn, MK_WS_TEXT, (mk_str_t){out.data, out.len});
    } else {
        char msg[600];
        snprintf(msg, sizeof msg, "{\"code\":\"internal\",\"error\":\"mock %s: rendering: %s\"}",
                 m->id, err.msg);
        mk_ws_send(c->conn, MK_WS_TEXT, mk_str_of(msg));
    }
    mk_buf_free(&out);
}

/* A message of a run, rendered against the message that started it. */
static void send_rendered(client_t *c, run_t *r, const char *text, size_t len,
                          const mk_template_t *tpl)
{
    mk_request_t view;
    view_of(c, &view, r->msg, r->msg_len);
    send_message(c, r->mock, &view, text, len, tpl);
    mk_request_release(&view);
}

/* Waits ms (returns true: the timer will call back) unless this wait already passed. */
static bool wait_for(client_t *c, run_t *r, uint32_t ms)
{
    if (ms == 0 || r->waited) {
        r->waited = false;
        return false;
    }
    if (mk_ws_after(c->conn, ms, r->tag) != 0)
        return false; /* too many timers: go on at once rather than stall */
    r->waited = true;
    return true;
}

/* Plays r from where it stands until it must wait or ends. */
static void run_step(client_t *c, run_t *r)
{
    const mk_mock_socket_reply_t *rep = r->reply;
    if (r->stage == STAGE_START) {
        if (wait_for(c, r, mk_mock_pick_delay(r->resp, &c->rng)))
            return;
        if (rep->has_payload)
            send_rendered(c, r, r->resp->body, r->resp->body_len, r->resp->body_tpl);
        r->stage = STAGE_CHAIN;
    }
    for (;;) {
        if (r->pos < rep->nchain) {
            const mk_mock_socket_msg_t *m = &rep->chain[r->pos];
            if (wait_for(c, r, m->delay_ms))
                return;
            send_rendered(c, r, m->text, m->len, m->tpl);
            r->pos++;
            continue;
        }
        if (rep->loop && rep->nchain > 0 &&
            (rep->max_loops == 0 || r->loops + 1 < rep->max_loops)) {
            if (wait_for(c, r, rep->loop_delay_ms ? rep->loop_delay_ms : 1))
                return;
            r->loops++;
            r->pos = 0;
            continue;
        }
        break;
    }
    if (rep->close_code)
        mk_ws_close(c->conn, rep->close_code, rep->close_reason);
    client_drop_run(c, r);
}

static void record(client_t *c, mk_str_t body, mk_str_t key, const mk_mock_t *m, int status,
                   mk_str_t response)
{
    mk_journal_t *j = mk_serve_journal(c->s);
    if (j == NULL)
        return;
    mk_journal_rec_t rec = {
        .ts_ms = mk_mock_now_ms(),
        .namespace_ = mk_str_of(c->ns),
        .mock_id = m ? mk_str_of(m->id) : (mk_str_t){"", 0},
        .method = MK_STR_LIT(MK_MOCK_WS_METHOD),
        .path = mk_str_of(c->endpoint),
        .body = body,
        .status = status,
        .protocol = MK_STR_LIT("websocket"),
        .operation = key,
        .response = response,
    };
    mk_journal_record(j, mk_ws_worker(c->conn), &rec);
}

/* The first active mock at route whose conditions hold (one use claimed), or NULL; why gets
 * the first failed condition's explanation. */
static mk_mock_t *probe(const mk_route_index_t *idx, const char *route, mk_request_t *view,
                        int64_t now, char *why, size_t why_size)
{
    mk_route_iter_t it;
    mk_route_match_t match;
    mk_route_lookup(idx, MK_STR_LIT(MK_MOCK_WS_METHOD), mk_str_of(route), &it);
    while (mk_route_next(&it, &match)) {
        mk_mock_t *m = match.value;
        if (m->socket == NULL || !mk_mock_active(m, now))
            continue;
        size_t i = 0;
        while (i < m->nconds && mk_cond_eval(m->conds[i], view))
            i++;
        if (i < m->nconds) {
            if (why[0] == '\0') {
                char ex[300];
                mk_cond_explain(m->conds[i], view, ex, sizeof ex);
                snprintf(why, why_size, "mock %s: %s", m->id, ex);
            }
            continue;
        }
        if (mk_mock_claim_use(m, now))
            return m;
    }
    return NULL;
}

/* The error message for a message no mock answered: what was asked and, for callers allowed to
 * see mocks (NEAR_MISS_DETAILS), the closest ones and why they did not match. */
static void send_not_found(client_t *c, const mk_snapshot_t *snap, mk_request_t *view,
                           const char *route, mk_str_t key, bool has_key, int64_t now)
{
    char msg[600];
    snprintf(msg, sizeof msg, "no mock matched %s%.*s%s on %s in namespace '%s'",
             has_key ? "event '" : "the message",
             has_key ? (int)(key.len > 100 ? 100 : key.len) : 0, has_key ? key.base : "",
             has_key ? "'" : "", c->endpoint, c->ns);
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "code", "not_found", "error", msg, "endpoint", c->endpoint);
    if (body && has_key)
        json_object_set_new(body, "event", json_stringn(key.base, key.len));
    if (body && c->details) {
        mk_str_t endpoint = view->path;
        view->path = mk_str_of(route);
        json_object_set_new(body, "closest",
                            mk_serve_diagnose(snap, mk_str_of(c->ns), mk_str_of(route), view, now));
        view->path = endpoint;
    } else if (body) {
        json_object_set_new(body, "hint",
                            json_string("send the API token to see which mocks came close"));
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    mk_ws_send(c->conn, MK_WS_TEXT,
               text ? mk_str_of(text) : MK_STR_LIT("{\"code\":\"not_found\"}"));
    free(text);
    json_decref(body);
}

/* Matches one message (or the connect event, with connect true) and starts its answer. */
static void answer(client_t *c, mk_str_t msg, bool is_text, bool connect)
{
    int64_t now = mk_mock_now_ms();
    mk_request_t view;
    view_of(c, &view, msg.base, msg.len);
    mk_str_t key = MK_STR_LIT(MK_MOCK_SOCKET_CONNECT);
    bool has_key = connect || mk_mock_socket_key(mk_request_json(&view), msg, is_text, &key);
    char route[MK_MOCK_SOCKET_MAX_ROUTE], any[MK_MOCK_SOCKET_MAX_ROUTE], why[400] = "";
    route[0] = '\0';
    if (has_key)
        mk_mock_socket_route(mk_str_of(c->endpoint), key, route, sizeof route);
    mk_mock_socket_route(mk_str_of(c->endpoint), MK_STR_LIT("*"), any, sizeof any);

    mk_catalog_t *cat = mk_serve_catalog(c->s);
    unsigned reader = mk_ws_worker(c->conn);
    const mk_snapshot_t *snap = mk_catalog_enter(cat, reader);
    const mk_route_index_t *idx = mk_snapshot_index(snap, mk_str_of(c->ns));
    mk_mock_t *m = NULL;
    if (idx && route[0])
        m = probe(idx, route, &view, now, why, sizeof why);
    if (idx && m == NULL && !connect)
        m = probe(idx, any, &view, now, why, sizeof why);
    if (m == NULL) {
        if (!connect)
            send_not_found(c, snap, &view, route[0] ? route : any, key, has_key, now);
        mk_catalog_leave(cat, reader);
        if (!connect)
            record(c, msg, has_key ? key : (mk_str_t){"", 0}, NULL, 404, (mk_str_t){"", 0});
        mk_request_release(&view);
        return;
    }
    const mk_mock_response_t *resp = mk_mock_pick_response(m, &c->rng);
    size_t index = (size_t)(resp - m->responses);
    const mk_mock_socket_reply_t *rep =
        index < m->socket->nreplies ? &m->socket->replies[index] : NULL;
    record(c, msg, has_key ? key : (mk_str_t){"", 0}, m, 200,
           (mk_str_t){resp->body, resp->body_len});
    if (rep && rep->nchain == 0 && rep->close_code == 0 &&
        resp->delay_kind == MK_MOCK_DELAY_FIXED && resp->delay_ms == 0) {
        /* The common case, one reply at once: sent from here, nothing kept. */
        if (rep->has_payload)
            send_message(c, m, &view, resp->body, resp->body_len, resp->body_tpl);
        mk_catalog_leave(cat, reader);
        mk_request_release(&view);
        return;
    }
    m = mk_mock_ref(m);
    mk_catalog_leave(cat, reader);
    mk_request_release(&view);

    run_t *r = c->nruns < MAX_RUNS && rep ? calloc(1, sizeof *r) : NULL;
    if (r != NULL && (r->msg = malloc(msg.len + 1)) == NULL) {
        free(r);
        r = NULL;
    }
    if (r == NULL) {
        mk_mock_unref(m);
        mk_ws_send(c->conn, MK_WS_TEXT,
                   MK_STR_LIT("{\"code\":\"unavailable\",\"error\":\"too many answers in "
                              "progress on this connection\"}"));
        return;
    }
    memcpy(r->msg, msg.base, msg.len);
    r->msg[msg.len] = '\0';
    r->msg_len = msg.len;
    r->mock = m;
    r->resp = resp;
    r->reply = rep;
    r->tag = ++c->next_tag;
    r->next = c->runs;
    c->runs = r;
    c->nruns++;
    run_step(c, r);
}

/* ---- connection events ---- */

static void on_open(mk_ws_conn_t *conn, void *ud)
{
    client_t *c = ud;
    c->conn = conn;
    answer(c, (mk_str_t){"", 0}, true, true);
}

static void on_message(mk_ws_conn_t *conn, mk_ws_kind_t kind, mk_str_t msg, void *ud)
{
    client_t *c = ud;
    c->conn = conn;
    answer(c, msg, kind == MK_WS_TEXT, false);
}

static void on_timer(mk_ws_conn_t *conn, uint64_t tag, void *ud)
{
    (void)conn;
    client_t *c = ud;
    for (run_t *r = c->runs; r; r = r->next)
        if (r->tag == tag) {
            run_step(c, r);
            return;
        }
}

static void on_close(mk_ws_conn_t *conn, void *ud)
{
    (void)conn;
    client_t *c = ud;
    while (c->runs) {
        run_t *r = c->runs;
        c->runs = r->next;
        run_free(r);
    }
    free(c->ns);
    free(c->endpoint);
    free(c->kept.block);
    free(c);
}

int mk_serve_ws_keep(const mk_request_t *view, mk_serve_ws_kept_t *k)
{
    size_t size = view->query.len + 1;
    for (size_t i = 0; i < view->nheaders; i++)
        size += view->headers[i].name.len + view->headers[i].value.len;
    size_t align = sizeof(mk_header_t);
    size = (size + align - 1) / align * align;
    k->block = malloc(size + view->nheaders * sizeof(mk_header_t));
    if (k->block == NULL)
        return MK_ENOMEM;
    k->headers = (mk_header_t *)(void *)(k->block + size);
    char *p = k->block;
    if (view->query.len > 0)
        memcpy(p, view->query.base, view->query.len);
    k->query = (mk_str_t){p, view->query.len};
    p += view->query.len;
    for (size_t i = 0; i < view->nheaders; i++) {
        const mk_header_t *h = &view->headers[i];
        memcpy(p, h->name.base, h->name.len);
        memcpy(p + h->name.len, h->value.base, h->value.len);
        k->headers[i] = (mk_header_t){{p, h->name.len}, {p + h->name.len, h->value.len}};
        p += h->name.len + h->value.len;
    }
    k->nheaders = view->nheaders;
    return 0;
}

/* ---- the handshake ---- */

/* True when socket mocks live at endpoint path in idx: one probe for the catch-all route, else
 * the mocks nearest to it (the endpoint's own event mocks sit right under it). */
static bool is_endpoint(const mk_route_index_t *idx, mk_str_t path)
{
    char any[MK_MOCK_SOCKET_MAX_ROUTE];
    if (path.len > 512 || mk_mock_socket_route(path, MK_STR_LIT("*"), any, sizeof any) == 0)
        return false;
    if (path.len > 1 && path.base[path.len - 1] == '/')
        path.len--;
    mk_route_iter_t it;
    mk_route_match_t match;
    mk_route_lookup(idx, MK_STR_LIT(MK_MOCK_WS_METHOD), mk_str_of(any), &it);
    if (mk_route_next(&it, &match))
        return true;
    void *near[16];
    size_t n = mk_route_nearest(idx, MK_STR_LIT(MK_MOCK_WS_METHOD), mk_str_of(any), near, 16);
    for (size_t i = 0; i < n; i++) {
        const mk_mock_t *m = near[i];
        if (m->socket && mk_str_eq_cstr(path, m->socket->endpoint))
            return true;
    }
    return false;
}

bool mk_serve_ws_try(mk_serve_t *s, const mk_snapshot_t *snap, mk_httpd_req_t *req,
                     mk_request_t *view, mk_str_t ns, mk_str_t path, int *status)
{
    if (!mk_str_eq_cstr(view->method, "GET") || !mk_ws_is_handshake(req))
        return false;
    const mk_route_index_t *idx = mk_snapshot_index(snap, ns);
    if (idx == NULL || !is_endpoint(idx, path))
        return false;
    client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return false;
    c->s = s;
    c->ns = mk_str_dup(ns);
    c->endpoint = mk_str_dup(path);
    if (c->endpoint && path.len > 1 && c->endpoint[path.len - 1] == '/')
        c->endpoint[path.len - 1] = '\0';
    c->details = mk_serve_shows_details(s, view);
    mk_faker_rng_seed(&c->rng, (uint64_t)mk_mock_now_ms() ^ (uint64_t)(uintptr_t)c);
    mk_ws_handlers_t h = {
        .on_open = on_open, .on_message = on_message, .on_timer = on_timer, .on_close = on_close};
    mk_err_t err;
    if (c->ns == NULL || c->endpoint == NULL || mk_serve_ws_keep(view, &c->kept) != 0 ||
        mk_ws_accept(req, NULL, &h, c, &err) != 0) {
        free(c->ns);
        free(c->endpoint);
        free(c->kept.block);
        free(c);
        return false;
    }
    view->served_protocol = "websocket";
    view->served_matched = true;
    mk_journal_t *j = mk_serve_journal(s);
    if (j) {
        mk_journal_rec_t rec = {
            .namespace_ = ns,
            .method = view->method,
            .path = path,
            .headers = view->headers,
            .nheaders = view->nheaders,
            .status = 101,
            .duration_ms = mk_httpd_req_elapsed_ms(req),
            .request_id = mk_httpd_req_id(req),
            .protocol = MK_STR_LIT("websocket"),
            .operation = MK_STR_LIT("connect"),
        };
        mk_journal_record(j, mk_httpd_req_worker(req), &rec);
    }
    *status = 101;
    return true;
}
