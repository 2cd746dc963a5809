/* A WebSocket session on an HTTP/1.1 connection upgraded through h2o: our own glue over
 * h2o_http1_upgrade and h2o's socket rather than h2o's websocket.c, which closes the socket
 * without sending the close frame when wslay refuses a frame, so the peer would see 1006
 * instead of 1002. Timers share per-loop h2o timeout lists, one per distinct delay. */
#include "ws/ws.h"

#include "httpd/httpd_loop.h"

#include <h2o.h>
#include <h2o/http1.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_LISTS 64

const mk_ws_limits_t *mk_ws_session_limits_(const mk_ws_session_t *s);

typedef struct ws_loop {
    h2o_evloop_t *evloop;
    h2o_linklist_t conns;
    struct {
        uint32_t ms;
        h2o_timeout_t timeout;
    } lists[MAX_LISTS];
    size_t nlists;
} ws_loop_t;

typedef struct ws_timer {
    h2o_timeout_entry_t entry; /* first: the callback finds the timer from its entry */
    h2o_linklist_t link;       /* in conn->timers */
    mk_ws_conn_t *c;
    uint64_t tag;
} ws_timer_t;

struct mk_ws_conn {
    h2o_linklist_t link; /* in ws_loop_t.conns */
    ws_loop_t *wl;
    h2o_socket_t *sock; /* NULL until the 101 went out */
    mk_ws_session_t *sess;
    mk_ws_handlers_t h;
    void *ud;
    unsigned worker;
    h2o_linklist_t timers;
    unsigned ntimers;
    ws_timer_t close_timer; /* tag unused: the close deadline */
    char *wbuf;             /* the bytes being written */
    size_t wlen;
    int busy;  /* inside a handler: freeing waits */
    bool shut; /* our side of the socket is shut after our last frame */
    bool gone; /* closed: freed when no longer busy */
};

static void conn_proceed(mk_ws_conn_t *c);
static void conn_finish(mk_ws_conn_t *c);

static void ws_loop_dispose(void *data)
{
    ws_loop_t *wl = data;
    if (wl == NULL)
        return;
    /* The server is going away: every connection ends now. */
    while (!h2o_linklist_is_empty(&wl->conns)) {
        mk_ws_conn_t *c = H2O_STRUCT_FROM_MEMBER(mk_ws_conn_t, link, wl->conns.next);
        conn_finish(c);
    }
    for (size_t i = 0; i < wl->nlists; i++)
        h2o_timeout_dispose(wl->evloop, &wl->lists[i].timeout);
    free(wl);
}

/* The server begins to stop: every connection is told (1001) ahead of what it still had
 * queued; the stop's grace period lets the close frames out, and whatever is left then ends in
 * ws_loop_dispose. */
static void ws_loop_stop(void *data)
{
    ws_loop_t *wl = data;
    if (wl == NULL)
        return;
    h2o_linklist_t *n = wl->conns.next;
    while (n != &wl->conns) {
        mk_ws_conn_t *c = H2O_STRUCT_FROM_MEMBER(mk_ws_conn_t, link, n);
        n = n->next; /* c may end inside conn_proceed */
        if (c->sock == NULL || c->gone)
            continue;
        mk_ws_session_abort(c->sess, MK_WS_CLOSE_GOING_AWAY, "server shutting down");
        conn_proceed(c);
    }
}

static int loop_key;

static ws_loop_t *loop_of(mk_httpd_loop_t *l)
{
    void **slot = l ? mk_httpd_loop_slot(l, &loop_key, ws_loop_dispose) : NULL;
    if (slot == NULL)
        return NULL;
    if (*slot == NULL) {
        ws_loop_t *wl = calloc(1, sizeof *wl);
        if (wl == NULL)
            return NULL;
        h2o_linklist_init_anchor(&wl->conns);
        *slot = wl;
        mk_httpd_loop_on_stop(l, &loop_key, ws_loop_stop);
    }
    return *slot;
}

static h2o_timeout_t *list_for(ws_loop_t *wl, uint32_t ms)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < wl->nlists; i++) {
        if (wl->lists[i].ms == ms)
            return &wl->lists[i].timeout;
        if (wl->lists[i].ms > ms && (best == SIZE_MAX || wl->lists[i].ms < wl->lists[best].ms))
            best = i;
    }
    if (wl->nlists < MAX_LISTS) {
        wl->lists[wl->nlists].ms = ms;
        h2o_timeout_init(wl->evloop, &wl->lists[wl->nlists].timeout, ms);
        return &wl->lists[wl->nlists++].timeout;
    }
    if (best == SIZE_MAX) /* longer than every list: the longest */
        for (size_t i = 0; i < wl->nlists; i++)
            if (best == SIZE_MAX || wl->lists[i].ms > wl->lists[best].ms)
                best = i;
    return &wl->lists[best].timeout;
}

/* ---- lifetime ---- */

/* Ends the connection: timers, socket, session, then the owner's on_close. */
static void conn_finish(mk_ws_conn_t *c)
{
    while (!h2o_linklist_is_empty(&c->timers)) {
        ws_timer_t *t = H2O_STRUCT_FROM_MEMBER(ws_timer_t, link, c->timers.next);
        h2o_linklist_unlink(&t->link);
        if (h2o_timeout_is_linked(&t->entry))
            h2o_timeout_unlink(&t->entry);
        free(t);
    }
    if (h2o_timeout_is_linked(&c->close_timer.entry))
        h2o_timeout_unlink(&c->close_timer.entry);
    if (c->sock != NULL) {
        c->sock->data = NULL;
        h2o_socket_close(c->sock);
        c->sock = NULL;
    }
    if (h2o_linklist_is_linked(&c->link))
        h2o_linklist_unlink(&c->link);
    mk_ws_session_free(c->sess);
    free(c->wbuf);
    if (c->h.on_close)
        c->h.on_close(c, c->ud);
    free(c);
}

/* Closes now, or as soon as no handler of this connection is running. */
static void conn_end(mk_ws_conn_t *c)
{
    if (c->busy > 0) {
        c->gone = true;
        return;
    }
    conn_finish(c);
}

/* Runs after a handler: a connection a handler closed ends here. Returns false when it did. */
static bool conn_leave(mk_ws_conn_t *c)
{
    if (--c->busy == 0 && c->gone) {
        conn_finish(c);
        return false;
    }
    return true;
}

/* ---- I/O ---- */

static void on_written(h2o_socket_t *sock, const char *err)
{
    mk_ws_conn_t *c = sock->data;
    if (c == NULL)
        return;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = 0;
    if (err != NULL) {
        conn_end(c);
        return;
    }
    conn_proceed(c);
}

static void on_close_deadline(h2o_timeout_entry_t *entry)
{
    ws_timer_t *t = (ws_timer_t *)entry;
    conn_end(t->c);
}

static void on_readable(h2o_socket_t *sock, const char *err);

/* Moves bytes: input into the session, the session's output onto the socket; closes the socket
 * when the session is done. */
static void conn_proceed(mk_ws_conn_t *c)
{
    if (c->sock == NULL || c->gone)
        return;
    if (c->sock->input->size > 0 && !mk_ws_session_reading(c->sess)) {
        /* After our close: what the peer still sends is dropped (see below). */
        h2o_buffer_consume(&c->sock->input, c->sock->input->size);
    } else if (c->sock->input->size > 0) {
        c->busy++;
        /* The session copies what it keeps; h2o's buffer is released right after. */
        mk_ws_session_feed(c->sess, (const uint8_t *)c->sock->input->bytes, c->sock->input->size);
        if (!conn_leave(c))
            return;
        if (c->gone || c->sock == NULL)
            return;
        h2o_buffer_consume(&c->sock->input, c->sock->input->size);
    }
    if (c->wbuf == NULL) {
        mk_str_t out = mk_ws_session_output(c->sess);
        if (out.len > 0) {
            c->wbuf = malloc(out.len);
            if (c->wbuf == NULL) {
                conn_end(c);
                return;
            }
            memcpy(c->wbuf, out.base, out.len);
            c->wlen = out.len;
            mk_ws_session_consume(c->sess, out.len);
            h2o_iovec_t buf = h2o_iovec_init(c->wbuf, c->wlen);
            h2o_socket_write(c->sock, &buf, 1, on_written);
        }
    }
    if (mk_ws_session_close_sent(c->sess) && !h2o_timeout_is_linked(&c->close_timer.entry)) {
        const mk_ws_limits_t *lim = mk_ws_session_limits_(c->sess);
        h2o_timeout_link(c->wl->evloop, list_for(c->wl, lim->close_wait_ms), &c->close_timer.entry);
    }
    if (c->wbuf == NULL && mk_ws_session_done(c->sess) && mk_ws_session_close_received(c->sess)) {
        conn_end(c);
        return;
    }
    /* Closed by us without the peer's close (a broken frame, a message too big): closing the
     * socket with its bytes unread would reset the connection, and the peer could lose our close
     * frame; so our side is shut (the peer sees the end after the close frame) and we keep
     * reading and dropping until it closes or the close deadline passes. */
    if (c->wbuf == NULL && mk_ws_session_done(c->sess) && !c->shut) {
        c->shut = true;
        shutdown(h2o_socket_get_fd(c->sock), SHUT_WR);
    }
    if (mk_ws_session_reading(c->sess) || mk_ws_session_done(c->sess))
        h2o_socket_read_start(c->sock, on_readable);
    else
        h2o_socket_read_stop(c->sock);
}

static void on_readable(h2o_socket_t *sock, const char *err)
{
    mk_ws_conn_t *c = sock->data;
    if (c == NULL)
        return;
    if (err != NULL) {
        conn_end(c);
        return;
    }
    conn_proceed(c);
}

static void on_session_message(void *ud, mk_ws_kind_t kind, const uint8_t *data, size_t len)
{
    mk_ws_conn_t *c = ud;
    if (c->gone || c->h.on_message == NULL)
        return;
    c->h.on_message(c, kind, (mk_str_t){(const char *)data, len}, c->ud);
}

static void on_upgraded(void *ud, h2o_socket_t *sock, size_t reqsize)
{
    mk_ws_conn_t *c = ud;
    if (sock == NULL) {
        conn_end(c);
        return;
    }
    c->sock = sock;
    sock->data = c;
    h2o_buffer_consume(&sock->input, reqsize);
    if (c->h.on_open) {
        c->busy++;
        c->h.on_open(c, c->ud);
        if (!conn_leave(c))
            return;
    }
    conn_proceed(c);
}

/* ---- public ---- */

static h2o_req_t *h2o_of(mk_httpd_req_t *req)
{
    return mk_httpd_req_h2o(req);
}

static ssize_t find_key(h2o_req_t *r)
{
    return h2o_find_header_by_str(&r->headers, H2O_STRLIT("sec-websocket-key"), -1);
}

bool mk_ws_is_handshake(mk_httpd_req_t *req)
{
    h2o_req_t *r = h2o_of(req);
    if (r == NULL || r->version >= 0x200 ||
        !h2o_memis(r->method.base, r->method.len, H2O_STRLIT("GET")))
        return false;
    if (r->upgrade.base == NULL ||
        !h2o_lcstris(r->upgrade.base, r->upgrade.len, H2O_STRLIT("websocket")))
        return false;
    ssize_t k = find_key(r);
    return k >= 0 && r->headers.entries[k].value.len == 24;
}

int mk_ws_accept(mk_httpd_req_t *req, const mk_ws_limits_t *lim, const mk_ws_handlers_t *h,
                 void *ud, mk_err_t *err)
{
    if (!mk_ws_is_handshake(req))
        return mk_err_set(err, MK_EINVAL, "not a WebSocket handshake");
    h2o_req_t *r = h2o_of(req);
    ws_loop_t *wl = loop_of(mk_httpd_req_loop(req));
    mk_ws_conn_t *c = wl ? calloc(1, sizeof *c) : NULL;
    if (c == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    wl->evloop = r->conn->ctx->loop;
    c->sess = mk_ws_session_new(lim, on_session_message, c);
    if (c->sess == NULL) {
        free(c);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    c->wl = wl;
    c->h = *h;
    c->ud = ud;
    c->worker = mk_httpd_req_worker(req);
    h2o_linklist_init_anchor(&c->timers);
    c->close_timer.c = c;
    c->close_timer.entry.cb = on_close_deadline;
    h2o_linklist_insert(&wl->conns, &c->link);

    /* Sec-WebSocket-Accept: base64(SHA-1(key + the RFC's GUID)). */
    h2o_iovec_t key = r->headers.entries[find_key(r)].value;
    uint8_t src[24 + 36], digest[SHA_DIGEST_LENGTH];
    memcpy(src, key.base, 24);
    memcpy(src + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    SHA1(src, sizeof src, digest);
    char *accept = h2o_mem_alloc_pool(&r->pool, 32);
    int n = EVP_EncodeBlock((unsigned char *)accept, digest, sizeof digest);
    r->res.status = 101;
    r->res.reason = "Switching Protocols";
    h2o_add_header(&r->pool, &r->res.headers, H2O_TOKEN_UPGRADE, NULL, H2O_STRLIT("websocket"));
    h2o_add_header_by_str(&r->pool, &r->res.headers, H2O_STRLIT("sec-websocket-accept"), 0, NULL,
                          accept, (size_t)n);
    h2o_http1_upgrade(r, NULL, 0, on_upgraded, c);
    return 0;
}

int mk_ws_send(mk_ws_conn_t *c, mk_ws_kind_t kind, mk_str_t data)
{
    if (c->gone)
        return MK_EUNAVAIL;
    int rc = mk_ws_session_send(c->sess, kind, data.base, data.len);
    if (rc == MK_ETOOBIG) {
        /* The peer does not read: the close may never leave either, so the deadline starts now. */
        mk_ws_session_abort(c->sess, MK_WS_CLOSE_POLICY, "send queue full");
        if (!h2o_timeout_is_linked(&c->close_timer.entry))
            h2o_timeout_link(c->wl->evloop,
                             list_for(c->wl, mk_ws_session_limits_(c->sess)->close_wait_ms),
                             &c->close_timer.entry);
    }
    if (c->busy == 0)
        conn_proceed(c);
    return rc;
}

static void on_timer_entry(h2o_timeout_entry_t *entry)
{
    ws_timer_t *t = (ws_timer_t *)entry;
    mk_ws_conn_t *c = t->c;
    uint64_t tag = t->tag;
    h2o_linklist_unlink(&t->link);
    c->ntimers--;
    free(t);
    if (c->gone || c->h.on_timer == NULL)
        return;
    c->busy++;
    c->h.on_timer(c, tag, c->ud);
    if (conn_leave(c))
        conn_proceed(c);
}

int mk_ws_after(mk_ws_conn_t *c, uint32_t delay_ms, uint64_t tag)
{
    if (c->gone)
        return MK_EUNAVAIL;
    if (c->ntimers >= mk_ws_session_limits_(c->sess)->max_timers)
        return MK_ETOOBIG;
    ws_timer_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return MK_ENOMEM;
    t->c = c;
    t->tag = tag;
    t->entry.cb = on_timer_entry;
    h2o_linklist_insert(&c->timers, &t->link);
    c->ntimers++;
    h2o_timeout_link(c->wl->evloop, list_for(c->wl, delay_ms), &t->entry);
    return 0;
}

void mk_ws_close(mk_ws_conn_t *c, uint16_t code, const char *reason)
{
    if (c->gone)
        return;
    mk_ws_session_close(c->sess, code, reason);
    if (c->busy == 0)
        conn_proceed(c);
}

unsigned mk_ws_worker(const mk_ws_conn_t *c)
{
    return c->worker;
}
