/* SSE mock streams: one stream per matched request, driven by three stream timers (the next
 * event, the heartbeat, maxTime), rendering each event's data when it is due. */
#include "serve/serve_sse.h"
#include "serve/serve.h"
#include "mock/mock_sse.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TIMER_EVENT, TIMER_HEARTBEAT, TIMER_MAX_TIME };

/* Events sent back to back (zero delays) before the loop gets a turn. */
#define BURST 64

static atomic_size_t open_streams;

typedef struct sse_stream {
    mk_httpd_stream_t *s;
    mk_mock_t *mock; /* referenced: a replaced mock's chain lives until its streams end */
    const mk_mock_sse_t *sse;
    mk_mock_sse_cursor_t cur;
    const mk_mock_sse_event_t *due; /* sent when TIMER_EVENT fires */
    bool paced;                     /* due waits for the client to take what is queued */
    mk_request_t view;              /* slices in the request's memory, valid while open */
    mk_route_match_t *match;        /* route captures, NULL when none; names copied below */
    mk_faker_rng_t rng;
    char names[];
} sse_stream_t;

size_t mk_serve_sse_open(void)
{
    return atomic_load(&open_streams);
}

static void on_close(void *ud, mk_httpd_stream_end_t why)
{
    sse_stream_t *st = ud;
    (void)why;
    mk_request_release(&st->view);
    mk_mock_unref(st->mock);
    free(st->match);
    free(st);
    atomic_fetch_sub(&open_streams, 1);
}

/* Renders e's data (its template, or its text) and writes the event. False when the stream no
 * longer takes writes (the client stopped reading and was dropped). */
static bool send_event(sse_stream_t *st, const mk_mock_sse_event_t *e)
{
    mk_buf_t data, out;
    mk_buf_init(&data, MK_SERVE_SSE_MAX_BUFFER / 2);
    mk_buf_init(&out, MK_SERVE_SSE_MAX_BUFFER);
    mk_str_t text = {e->data, e->data_len};
    int rc = 0;
    if (e->tpl) {
        mk_template_env_t env = {
            .req = &st->view, .match = st->match, .rng = &st->rng, .now_ms = mk_mock_now_ms()};
        mk_err_t err = {0};
        rc = mk_template_render(e->tpl, &env, &data, &err);
        text = (mk_str_t){data.data ? data.data : "", data.len};
        if (rc == MK_ETOOBIG)
            mk_err_set(&err, rc, "rendered data over %d bytes", MK_SERVE_SSE_MAX_BUFFER / 2);
        if (rc != 0) /* the stream says so instead of failing silently */
            mk_buf_appendf(&out, ": event data failed to render: %s\n\n", err.msg);
    }
    if (rc == 0 && mk_mock_sse_format(&out, e, text) != 0) {
        out.len = 0; /* a data of many short lines grows by its "data: " prefixes */
        mk_buf_appendf(&out, ": event too large to send (over %d bytes)\n\n",
                       MK_SERVE_SSE_MAX_BUFFER);
    }
    bool open = mk_httpd_stream_write(st->s, (mk_str_t){out.data, out.len}) == 0;
    mk_buf_free(&data);
    mk_buf_free(&out);
    return open && mk_httpd_stream_open(st->s);
}

/* Sends what is due now, then waits for the next event or ends the stream. The stream keeps
 * pace with its client: past half the queue, the next event waits for on_drain, so a burst
 * reaches a slow client late instead of overflowing its queue (the stall timer drops a client
 * that takes nothing). */
static void on_event_timer(void *ud)
{
    sse_stream_t *st = ud;
    for (int sent = 0; st->due != NULL; sent++) {
        if (sent == BURST) {
            mk_httpd_stream_after(st->s, TIMER_EVENT, 0, on_event_timer);
            return;
        }
        if (mk_httpd_stream_buffered(st->s) > MK_SERVE_SSE_MAX_BUFFER / 2) {
            st->paced = true;
            return;
        }
        if (!send_event(st, st->due))
            return;
        uint32_t wait = 0;
        st->due = mk_mock_sse_next(st->sse, &st->cur, &wait);
        if (st->due != NULL && wait > 0) {
            mk_httpd_stream_after(st->s, TIMER_EVENT, wait, on_event_timer);
            return;
        }
    }
    mk_httpd_stream_close(st->s); /* the chain is over */
}

static void on_drain(void *ud)
{
    sse_stream_t *st = ud;
    if (st->paced) {
        st->paced = false;
        on_event_timer(st);
    }
}

static void on_heartbeat(void *ud)
{
    sse_stream_t *st = ud;
    mk_httpd_stream_write(st->s, MK_STR_LIT(": heartbeat\n\n"));
    mk_httpd_stream_after(st->s, TIMER_HEARTBEAT, st->sse->heartbeat_ms, on_heartbeat);
}

static void on_max_time(void *ud)
{
    sse_stream_t *st = ud;
    mk_httpd_stream_close(st->s);
}

static void record(mk_journal_t *journal, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                   const mk_mock_t *m, int status, int64_t now_ms)
{
    view->served_protocol = "sse";
    mk_serve_record(journal, req, view,
                    (mk_journal_rec_t){
                        .ts_ms = now_ms,
                        .namespace_ = ns,
                        .mock_id = mk_str_of(m->id),
                        .status = status,
                        .protocol = MK_STR_LIT("sse"),
                        .operation = mk_str_of(m->route),
                        .response = status == 204 ? MK_STR_LIT("nothing after Last-Event-ID")
                                                  : MK_STR_LIT("text/event-stream"),
                    });
}

/* The response's headers (templated ones rendered once), but the content type is the stream's. */
static void add_headers(sse_stream_t *st, mk_httpd_req_t *req, const mk_mock_response_t *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (mk_str_caseeq(r->headers[i].name, MK_STR_LIT("Content-Type")))
            continue;
        if (r->header_tpls == NULL || r->header_tpls[i] == NULL) {
            mk_httpd_add_header(req, r->headers[i].name, r->headers[i].value);
            continue;
        }
        mk_buf_t v;
        mk_buf_init(&v, 8192);
        mk_template_env_t env = {
            .req = &st->view, .match = st->match, .rng = &st->rng, .now_ms = mk_mock_now_ms()};
        mk_err_t err;
        if (mk_template_render(r->header_tpls[i], &env, &v, &err) == 0) {
            for (size_t k = 0; k < v.len; k++)
                if (v.data[k] == '\r' || v.data[k] == '\n')
                    v.data[k] = ' ';
            mk_httpd_add_header(req, r->headers[i].name, (mk_str_t){v.data ? v.data : "", v.len});
        }
        mk_buf_free(&v);
    }
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), MK_STR_LIT("text/event-stream"));
    mk_httpd_add_header(req, MK_STR_LIT("Cache-Control"), MK_STR_LIT("no-cache"));
    mk_httpd_add_header(req, MK_STR_LIT("X-Accel-Buffering"), MK_STR_LIT("no"));
}

/* The captures outlive the snapshot their names point into: keep copies of the names. */
static sse_stream_t *stream_new(const mk_route_match_t *match)
{
    size_t names = 0;
    bool any = match && (match->nparams > 0 || match->wildcard.len > 0);
    for (size_t i = 0; any && i < match->nparams; i++)
        names += match->names[i].len;
    sse_stream_t *st = calloc(1, sizeof *st + names + 1);
    if (st == NULL || !any)
        return st;
    st->match = malloc(sizeof *st->match);
    if (st->match == NULL) {
        free(st);
        return NULL;
    }
    *st->match = *match;
    char *p = st->names;
    for (size_t i = 0; i < match->nparams; i++) {
        memcpy(p, match->names[i].base, match->names[i].len);
        st->match->names[i].base = p;
        p += match->names[i].len;
    }
    return st;
}

int mk_serve_sse(mk_journal_t *journal, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                 mk_mock_t *mock, const mk_mock_response_t *response, const mk_route_match_t *match,
                 mk_faker_rng_t *rng, int64_t now_ms)
{
    const mk_mock_sse_t *sse = mock->sse;
    mk_mock_sse_cursor_t cur;
    mk_str_t last = {"", 0};
    mk_request_header(view, MK_STR_LIT("Last-Event-ID"), &last);
    if (!mk_mock_sse_start(sse, last, &cur)) {
        record(journal, req, view, ns, mock, 204, now_ms);
        mk_httpd_respond(req, 204, MK_STR_LIT(""));
        return 204;
    }
    sse_stream_t *st = stream_new(match);
    if (st == NULL) {
        record(journal, req, view, ns, mock, 503, now_ms);
        mk_httpd_respond(req, 503, MK_STR_LIT("out of memory"));
        return 503;
    }
    st->mock = mk_mock_ref(mock);
    st->sse = sse;
    st->cur = cur;
    st->rng = *rng;
    mk_httpd_req_view(req, &st->view);
    add_headers(st, req, response);
    mk_httpd_stream_opts_t opts = {.max_buffer = MK_SERVE_SSE_MAX_BUFFER,
                                   .stall_ms = MK_SERVE_SSE_STALL_MS,
                                   .close_when_full = true};
    mk_httpd_stream_cbs_t cbs = {.on_close = on_close, .on_drain = on_drain};
    if (mk_httpd_stream_start(req, response->status, &opts, &cbs, st, &st->s) != 0) {
        mk_request_release(&st->view);
        mk_mock_unref(st->mock);
        free(st->match);
        free(st);
        record(journal, req, view, ns, mock, 503, now_ms);
        mk_httpd_respond(req, 503, MK_STR_LIT("the server is stopping"));
        return 503;
    }
    atomic_fetch_add(&open_streams, 1);
    record(journal, req, view, ns, mock, response->status, now_ms);
    mk_httpd_stream_after(st->s, TIMER_MAX_TIME, sse->max_time_ms, on_max_time);
    if (sse->heartbeat_ms)
        mk_httpd_stream_after(st->s, TIMER_HEARTBEAT, sse->heartbeat_ms, on_heartbeat);
    uint32_t wait = 0;
    st->due = mk_mock_sse_next(sse, &st->cur, &wait);
    wait += mk_mock_pick_delay(response, rng); /* the response's delay comes before the first */
    if (wait > 0)
        mk_httpd_stream_after(st->s, TIMER_EVENT, wait, on_event_timer);
    else
        on_event_timer(st);
    return response->status;
}
