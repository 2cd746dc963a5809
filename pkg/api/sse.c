/* Live Server-Sent Events for things the admin follows by polling its own state (a test run's
 * progress, a load test's seconds): the endpoint gives a function that appends the events after
 * the last id sent; it is called at once, then every interval on the request's loop, until it
 * says the thing has ended. Last-Event-ID resumes after the id a reconnecting client saw. */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

#define POLL_MS      500
#define HEARTBEAT_MS 15000

typedef struct sse {
    mk_api_t *api;
    mk_api_sse_fn fn;
    mk_httpd_stream_t *s;
    double last;
    uint64_t quiet_since; /* loop ms of the last bytes written (for the heartbeat) */
    char id[];
} sse_t;

static void poll_once(void *ud)
{
    sse_t *x = ud;
    mk_buf_t out;
    mk_buf_init(&out, 0);
    bool live = x->fn(x->api, x->id, &x->last, &out);
    uint64_t now = mk_httpd_stream_now(x->s);
    if (out.len == 0 && live && now - x->quiet_since >= HEARTBEAT_MS)
        mk_buf_appendf(&out, ": ping\n\n");
    if (out.len) {
        x->quiet_since = now;
        mk_httpd_stream_write(x->s, (mk_str_t){out.data, out.len});
    }
    mk_buf_free(&out);
    if (live)
        mk_httpd_stream_after(x->s, 0, POLL_MS, poll_once);
    else
        mk_httpd_stream_close(x->s);
}

static void on_close(void *ud, mk_httpd_stream_end_t why)
{
    (void)why;
    free(ud);
}

int mk_api_sse(ctx_t *c, const char *id, mk_api_sse_fn fn)
{
    size_t n = strlen(id) + 1;
    sse_t *x = calloc(1, sizeof *x + n);
    if (x == NULL)
        return mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
    memcpy(x->id, id, n);
    x->api = c->api;
    x->fn = fn;
    x->last = -1;
    mk_str_t last;
    if (mk_request_header(c->view, MK_STR_LIT("Last-Event-ID"), &last) && last.len < 24) {
        char buf[32];
        memcpy(buf, last.base, last.len);
        buf[last.len] = '\0';
        x->last = strtod(buf, NULL);
    }
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Type"), MK_STR_LIT("text/event-stream"));
    mk_httpd_add_header(c->req, MK_STR_LIT("Cache-Control"), MK_STR_LIT("no-cache"));
    /* A client that stops reading is dropped rather than buffered for. */
    mk_httpd_stream_opts_t o = {.max_buffer = 1u << 20, .close_when_full = true};
    mk_httpd_stream_cbs_t cbs = {.on_close = on_close};
    int rc = mk_httpd_stream_start(c->req, 200, &o, &cbs, x, &x->s);
    if (rc != 0) {
        free(x);
        return mk_api_reply_fmt(c, rc, "cannot stream events now");
    }
    x->quiet_since = mk_httpd_stream_now(x->s);
    poll_once(x);
    return 200;
}

int mk_api_doc_sse(ctx_t *c, const char *kind, const char *what, mk_api_sse_fn fn)
{
    json_t *doc = mk_api_doc_get(c, kind, mk_api_param(c, "id"), what);
    if (doc == NULL)
        return 404;
    int status = mk_api_sse(c, json_string_value(json_object_get(doc, "id")), fn);
    json_decref(doc);
    return status;
}
