/* Streaming responses over h2o 2.2's generator model: a bounded queue in front of h2o_send (one
 * send in flight until h2o calls proceed), timers on shared per-duration lists, a per-loop inbox
 * (mutex + eventfd) for other threads, and a stop hook that ends every open stream. */
#include "httpd/httpd_loop.h"

#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h> /* resetting a stuck HTTP/2 stream; needs vendor/khash.h */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MAX_BUFFER (256 * 1024)
#define DEFAULT_STALL_MS   30000
/* At stop, a stream whose last bytes have not left after this long is dropped. */
#define STOP_GRACE_MS 100
/* Distinct timer durations per loop; past it a duration takes the closest longer list. */
#define MAX_LISTS 256

typedef enum stream_state {
    ST_OPEN,    /* writes accepted */
    ST_CLOSING, /* close asked: the final send leaves after what is queued */
    ST_ENDED,   /* the final send was handed to h2o (or the stream was aborted) */
    ST_GONE,    /* h2o released the request; on_close pending or delivered */
} stream_state_t;

typedef struct loopstate loopstate_t;
typedef struct inbox inbox_t;

typedef struct stimer {
    h2o_timeout_entry_t entry;
    mk_httpd_stream_t *s;
    void (*fire)(mk_httpd_stream_t *s, struct stimer *t);
    void (*cb)(void *ud); /* user timers */
} stimer_t;

/* Lives in the request's pool: tells the stream when h2o frees the request. */
typedef struct guard {
    mk_httpd_stream_t *s;
} guard_t;

struct mk_httpd_stream {
    h2o_generator_t gen; /* first: h2o hands it back to proceed/stop */
    atomic_int refs;     /* the loop's one (until on_close has run) + mk_httpd_stream_ref's */
    stream_state_t state;
    mk_httpd_stream_end_t why; /* decided reason, when one was (SLOW, STOPPING) */
    bool reason_set;
    bool in_flight;       /* h2o has data of ours and has not called proceed yet */
    bool abort_wanted;    /* drop the connection at the next deferred turn */
    bool close_cb_wanted; /* h2o released the request inside our own call: report later */
    bool drain_wanted;    /* the queue emptied inside our own call: on_drain later */
    bool closed_cb_done;
    int in_api; /* depth of our own calls into h2o */
    mk_httpd_req_t *r;
    h2o_req_t *req; /* NULL once released */
    guard_t *guard;
    loopstate_t *ls;
    inbox_t *inbox; /* referenced while the stream lives (posts from other threads) */
    mk_httpd_stream_t *prev, *next; /* in ls->streams */
    mk_httpd_stream_cbs_t cbs;
    void *ud;
    size_t max_buffer;
    uint32_t stall_ms;
    bool close_when_full;
    char *pending; /* queued, not yet handed to h2o */
    size_t pending_len, pending_cap;
    char *flight; /* handed to h2o, valid until proceed */
    size_t flight_len;
    stimer_t timers[MK_HTTPD_STREAM_TIMERS];
    stimer_t stall; /* nothing taken for stall_ms while data is in flight */
    stimer_t defer; /* 0 ms: aborts and reports outside of the calls that caused them */
};

/* Messages from other threads to a loop. */
typedef struct msg {
    struct msg *next;
    mk_httpd_stream_t *s; /* referenced */
    mk_httpd_stream_post_cb cb;
    void *arg;
} msg_t;

struct inbox {
    atomic_int refs; /* the loop's + one per stream */
    pthread_mutex_t mu;
    msg_t *head, **tail;
    bool dead; /* the loop is gone: posts fail */
    bool signalled;
    int efd;
    mk_httpd_watch_t *watch; /* loop side */
};

struct loopstate {
    h2o_loop_t *evloop;
    mk_httpd_loop_t *loop;
    mk_httpd_stream_t *streams;
    size_t nstreams;
    inbox_t *inbox;
    bool stopping;
    struct {
        uint32_t ms;
        h2o_timeout_t timeout;
    } lists[MAX_LISTS];
    size_t nlists;
};

static const int loop_key; /* this module's loop slot */

static void stream_maybe_report(mk_httpd_stream_t *s);
static void stream_flush(mk_httpd_stream_t *s);

/* --- references ---------------------------------------------------------------------------- */

static void inbox_unref(inbox_t *in)
{
    if (in == NULL || atomic_fetch_sub(&in->refs, 1) != 1)
        return;
    close(in->efd);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

void mk_httpd_stream_ref(mk_httpd_stream_t *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void mk_httpd_stream_unref(mk_httpd_stream_t *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    /* The loop let go (on_close ran, timers are off, buffers freed): nothing else points here. */
    inbox_unref(s->inbox);
    free(s);
}

/* --- timers -------------------------------------------------------------------------------- */

static uint32_t round_ms(uint32_t ms)
{
    if (ms <= 64)
        return ms;
    if (ms <= 1000)
        return (ms + 9) / 10 * 10;
    if (ms <= 10000)
        return (ms + 99) / 100 * 100;
    return (ms + 999) / 1000 * 1000;
}

static h2o_timeout_t *list_for(loopstate_t *ls, uint32_t ms)
{
    ms = round_ms(ms);
    for (size_t i = 0; i < ls->nlists; i++)
        if (ls->lists[i].ms == ms)
            return &ls->lists[i].timeout;
    if (ls->nlists == MAX_LISTS) {
        size_t best = 0; /* the shortest list not shorter than ms, else the longest */
        for (size_t i = 1; i < ls->nlists; i++) {
            uint32_t b = ls->lists[best].ms, c = ls->lists[i].ms;
            if ((c >= ms && (b < ms || c < b)) || (b < ms && c > b))
                best = i;
        }
        return &ls->lists[best].timeout;
    }
    ls->lists[ls->nlists].ms = ms;
    h2o_timeout_init(ls->evloop, &ls->lists[ls->nlists].timeout, ms);
    return &ls->lists[ls->nlists++].timeout;
}

static void on_stimer(h2o_timeout_entry_t *entry)
{
    stimer_t *t = (stimer_t *)entry;
    t->fire(t->s, t);
}

static void stimer_arm(mk_httpd_stream_t *s, stimer_t *t, uint32_t ms)
{
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
    if (s->ls != NULL)
        h2o_timeout_link(s->ls->evloop, list_for(s->ls, ms), &t->entry);
}

static void stimer_disarm(stimer_t *t)
{
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
}

static void disarm_all(mk_httpd_stream_t *s)
{
    for (int i = 0; i < MK_HTTPD_STREAM_TIMERS; i++)
        stimer_disarm(&s->timers[i]);
    stimer_disarm(&s->stall);
    stimer_disarm(&s->defer);
}

static void fire_user(mk_httpd_stream_t *s, stimer_t *t)
{
    if (s->state == ST_OPEN || s->state == ST_CLOSING)
        t->cb(s->ud);
}

/* --- ending -------------------------------------------------------------------------------- */

static void set_reason(mk_httpd_stream_t *s, mk_httpd_stream_end_t why)
{
    if (!s->reason_set) {
        s->why = why;
        s->reason_set = true;
    }
}

/* Drops the connection under a stream h2o cannot finish (the client does not read): HTTP/1's
 * socket is shut down (h2o sees the error and frees the connection), an HTTP/2 stream is reset.
 * May release the request before it returns. */
static void stream_drop(mk_httpd_stream_t *s)
{
    h2o_req_t *req = s->req;
    if (req == NULL)
        return;
    s->state = ST_ENDED;
    if (!s->in_flight) {
        /* h2o takes a send now: ERROR ends the response as broken (no last chunk / RST_STREAM). */
        s->in_flight = true;
        s->in_api++;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
        s->in_api--;
        return;
    }
    if (req->version >= 0x200) {
        h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
        h2o_http2_stream_t *st = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
        h2o_http2_encode_rst_stream_frame(&conn->_write.buf, st->stream_id,
                                          -H2O_HTTP2_ERROR_CANCEL);
        h2o_http2_conn_request_write(conn);
        h2o_http2_stream_reset(conn, st);
        return;
    }
    h2o_conn_t *conn = req->conn;
    h2o_socket_t *sock = conn->callbacks->get_socket ? conn->callbacks->get_socket(conn) : NULL;
    int fd = sock ? h2o_socket_get_fd(sock) : -1;
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void fire_defer(mk_httpd_stream_t *s, stimer_t *t)
{
    (void)t;
    mk_httpd_stream_ref(s); /* dropping may release and report right here */
    if (s->abort_wanted) {
        s->abort_wanted = false;
        stream_drop(s);
    }
    if (s->state == ST_CLOSING && !s->in_flight)
        stream_flush(s); /* closed by the stop hook */
    if (s->drain_wanted) {
        s->drain_wanted = false;
        if (s->state == ST_OPEN && !s->in_flight && s->pending_len == 0 && s->cbs.on_drain)
            s->cbs.on_drain(s->ud);
    }
    if (s->close_cb_wanted)
        stream_maybe_report(s);
    mk_httpd_stream_unref(s);
}

static void schedule_abort(mk_httpd_stream_t *s, mk_httpd_stream_end_t why)
{
    if (s->state == ST_GONE)
        return;
    set_reason(s, why);
    s->state = ST_ENDED; /* no more writes; dropped on the next turn */
    s->abort_wanted = true;
    stimer_arm(s, &s->defer, 0);
}

static void fire_stall(mk_httpd_stream_t *s, stimer_t *t)
{
    (void)t;
    schedule_abort(s, s->ls && s->ls->stopping ? MK_HTTPD_STREAM_STOPPING : MK_HTTPD_STREAM_SLOW);
}

/* After h2o released the request: on_close once, then the loop lets go of the stream. */
static void stream_maybe_report(mk_httpd_stream_t *s)
{
    if (s->state != ST_GONE || s->closed_cb_done)
        return;
    if (s->in_api > 0) {
        s->close_cb_wanted = true;
        stimer_arm(s, &s->defer, 0);
        return;
    }
    s->close_cb_wanted = false;
    s->closed_cb_done = true;
    disarm_all(s);
    loopstate_t *ls = s->ls;
    if (ls) {
        if (s->prev)
            s->prev->next = s->next;
        else
            ls->streams = s->next;
        if (s->next)
            s->next->prev = s->prev;
        ls->nstreams--;
    }
    s->ls = NULL;
    free(s->pending);
    free(s->flight);
    s->pending = s->flight = NULL;
    s->pending_len = s->flight_len = s->pending_cap = 0;
    if (s->cbs.on_close)
        s->cbs.on_close(s->ud, s->reason_set ? s->why : MK_HTTPD_STREAM_GONE);
    mk_httpd_stream_unref(s);
}

static void on_guard_dispose(void *p)
{
    guard_t *g = p;
    mk_httpd_stream_t *s = g->s;
    if (s == NULL)
        return;
    s->req = NULL;
    s->r = NULL;
    s->guard = NULL;
    s->state = ST_GONE;
    stimer_disarm(&s->stall);
    stream_maybe_report(s);
}

/* --- h2o generator ------------------------------------------------------------------------- */

static void on_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    mk_httpd_stream_t *s = (mk_httpd_stream_t *)self;
    (void)req;
    s->in_flight = false;
    stimer_disarm(&s->stall);
    free(s->flight);
    s->flight = NULL;
    s->flight_len = 0;
    if (s->state == ST_ENDED || s->state == ST_GONE)
        return;
    if (s->in_api > 0) { /* called back from inside our own h2o_send: the caller flushes on */
        if (s->pending_len == 0 && s->state == ST_OPEN && s->cbs.on_drain) {
            s->drain_wanted = true;
            stimer_arm(s, &s->defer, 0);
        }
        return;
    }
    if (s->pending_len > 0 || s->state == ST_CLOSING) {
        stream_flush(s);
        return;
    }
    if (s->cbs.on_drain)
        s->cbs.on_drain(s->ud);
}

static void on_stop(h2o_generator_t *self, h2o_req_t *req)
{
    mk_httpd_stream_t *s = (mk_httpd_stream_t *)self;
    (void)req;
    /* The client left (or the connection broke): h2o frees the request next. */
    s->in_flight = false;
    if (s->state != ST_GONE)
        s->state = ST_ENDED;
    stimer_disarm(&s->stall);
}

/* Hands what is queued to h2o (with the end of the response when closing). */
static void stream_flush(mk_httpd_stream_t *s)
{
    while (!s->in_flight && s->req != NULL && (s->state == ST_OPEN || s->state == ST_CLOSING) &&
           (s->pending_len > 0 || s->state == ST_CLOSING)) {
        bool final = s->state == ST_CLOSING;
        s->flight = s->pending;
        s->flight_len = s->pending_len;
        s->pending = NULL;
        s->pending_len = s->pending_cap = 0;
        h2o_iovec_t buf = h2o_iovec_init(s->flight, s->flight_len);
        s->in_flight = true;
        if (final)
            s->state = ST_ENDED;
        stimer_arm(s, &s->stall, s->ls && s->ls->stopping ? STOP_GRACE_MS : s->stall_ms);
        s->in_api++;
        h2o_send(s->req, &buf, buf.len ? 1 : 0,
                 final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
        s->in_api--;
        /* A proceed that came back inside h2o_send cleared in_flight: loop to send on. */
    }
}

/* --- per-loop state ------------------------------------------------------------------------ */

static void on_inbox_read(void *ud)
{
    loopstate_t *ls = ud;
    inbox_t *in = ls->inbox;
    uint64_t n;
    ssize_t ignored = read(in->efd, &n, sizeof n);
    (void)ignored;
    pthread_mutex_lock(&in->mu);
    msg_t *m = in->head;
    in->head = NULL;
    in->tail = &in->head;
    in->signalled = false;
    pthread_mutex_unlock(&in->mu);
    while (m) {
        msg_t *next = m->next;
        mk_httpd_stream_t *s = m->s;
        bool open = s->state == ST_OPEN || s->state == ST_CLOSING;
        m->cb(open ? s : NULL, m->arg);
        mk_httpd_stream_unref(s);
        free(m);
        m = next;
    }
}

static inbox_t *inbox_new(loopstate_t *ls)
{
    inbox_t *in = calloc(1, sizeof *in);
    if (in == NULL)
        return NULL;
    in->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (in->efd < 0) {
        free(in);
        return NULL;
    }
    in->watch = mk_httpd_watch_new(ls->loop, in->efd, on_inbox_read, NULL, ls);
    if (in->watch == NULL) {
        close(in->efd);
        free(in);
        return NULL;
    }
    pthread_mutex_init(&in->mu, NULL);
    in->tail = &in->head;
    atomic_init(&in->refs, 1);
    mk_httpd_watch_read(in->watch, true);
    return in;
}

/* The loop is being torn down: streams still here belong to connections h2o leaves open. */
static void on_loop_dispose(void *data)
{
    loopstate_t *ls = data;
    if (ls == NULL)
        return;
    for (mk_httpd_stream_t *s = ls->streams; s; s = s->next) {
        disarm_all(s);
        s->ls = NULL;
    }
    if (ls->inbox) {
        inbox_t *in = ls->inbox;
        pthread_mutex_lock(&in->mu);
        in->dead = true;
        msg_t *m = in->head;
        in->head = NULL;
        in->tail = &in->head;
        pthread_mutex_unlock(&in->mu);
        while (m) {
            msg_t *next = m->next;
            m->cb(NULL, m->arg);
            mk_httpd_stream_unref(m->s);
            free(m);
            m = next;
        }
        mk_httpd_watch_free(in->watch);
        in->watch = NULL;
        inbox_unref(in);
    }
    for (size_t i = 0; i < ls->nlists; i++)
        h2o_timeout_dispose(ls->evloop, &ls->lists[i].timeout);
    free(ls);
}

/* The server begins to stop: every open stream ends after what it has queued; one that cannot
 * get its last bytes out within STOP_GRACE_MS is dropped. */
static void on_loop_stop(void *data)
{
    loopstate_t *ls = data;
    ls->stopping = true;
    for (mk_httpd_stream_t *s = ls->streams; s; s = s->next) {
        if (s->state == ST_GONE)
            continue;
        set_reason(s, MK_HTTPD_STREAM_STOPPING);
        if (s->req)
            s->req->http1_is_persistent = 0; /* the connection ends with the stream */
        if (s->state == ST_OPEN) {
            s->state = ST_CLOSING;
            if (s->in_flight)
                stimer_arm(s, &s->stall, STOP_GRACE_MS);
            else
                stimer_arm(s, &s->defer, 0); /* flushed from the timer, outside this walk */
        } else {
            stimer_arm(s, &s->stall, STOP_GRACE_MS);
        }
    }
}

static loopstate_t *loopstate_of(mk_httpd_req_t *r)
{
    mk_httpd_loop_t *loop = mk_httpd_req_loop(r);
    void **slot = loop ? mk_httpd_loop_slot(loop, &loop_key, on_loop_dispose) : NULL;
    if (slot == NULL)
        return NULL;
    if (*slot == NULL) {
        loopstate_t *ls = calloc(1, sizeof *ls);
        if (ls == NULL)
            return NULL;
        ls->loop = loop;
        ls->evloop = mk_httpd_req_h2o(r)->conn->ctx->loop;
        *slot = ls;
        mk_httpd_loop_on_stop(loop, &loop_key, on_loop_stop);
    }
    return *slot;
}

/* --- public -------------------------------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

int mk_httpd_stream_start(mk_httpd_req_t *r, int status, const mk_httpd_stream_opts_t *opts,
                          const mk_httpd_stream_cbs_t *cbs, void *ud, mk_httpd_stream_t **out)
{
    h2o_req_t *req = mk_httpd_req_h2o(r);
    *out = NULL;
    if (req == NULL)
        return MK_EINVAL; /* offloaded work has no connection to stream on */
    loopstate_t *ls = loopstate_of(r);
    if (ls == NULL)
        return MK_ENOMEM;
    if (ls->stopping)
        return MK_EUNAVAIL;
    mk_httpd_stream_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MK_ENOMEM;
    if (ls->inbox == NULL && (ls->inbox = inbox_new(ls)) == NULL) {
        free(s);
        return MK_ENOMEM;
    }
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    atomic_init(&s->refs, 1);
    s->state = ST_OPEN;
    s->r = r;
    s->req = req;
    s->ls = ls;
    s->inbox = ls->inbox;
    atomic_fetch_add(&s->inbox->refs, 1);
    if (cbs)
        s->cbs = *cbs;
    s->ud = ud;
    s->max_buffer = opts && opts->max_buffer ? opts->max_buffer : DEFAULT_MAX_BUFFER;
    s->stall_ms = opts && opts->stall_ms ? opts->stall_ms : DEFAULT_STALL_MS;
    s->close_when_full = opts && opts->close_when_full;
    for (int i = 0; i < MK_HTTPD_STREAM_TIMERS; i++) {
        s->timers[i].entry.cb = on_stimer;
        s->timers[i].s = s;
        s->timers[i].fire = fire_user;
    }
    s->stall = (stimer_t){.entry.cb = on_stimer, .s = s, .fire = fire_stall};
    s->defer = (stimer_t){.entry.cb = on_stimer, .s = s, .fire = fire_defer};
    s->guard = h2o_mem_alloc_shared(&req->pool, sizeof *s->guard, on_guard_dispose);
    s->guard->s = s;
    s->next = ls->streams;
    if (ls->streams)
        ls->streams->prev = s;
    ls->streams = s;
    ls->nstreams++;

    mk_str_t id = mk_httpd_req_id(r);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0,
                          "X-Request-Id", id.base, id.len);
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = SIZE_MAX; /* chunked on HTTP/1.1, DATA frames on HTTP/2 */
    h2o_start_response(req, &s->gen);
    /* The status and headers leave now: an EventSource opens on them. */
    s->in_flight = true;
    stimer_arm(s, &s->stall, s->stall_ms);
    s->in_api++;
    h2o_send(req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
    s->in_api--;
    *out = s;
    return 0;
}

int mk_httpd_stream_write(mk_httpd_stream_t *s, mk_str_t data)
{
    if (s->state != ST_OPEN)
        return MK_EINVAL;
    if (data.len == 0)
        return 0;
    if (s->pending_len + s->flight_len + data.len > s->max_buffer) {
        if (s->close_when_full)
            schedule_abort(s, MK_HTTPD_STREAM_SLOW);
        return MK_ETOOBIG;
    }
    if (s->pending_len + data.len > s->pending_cap) {
        size_t cap = s->pending_cap ? s->pending_cap : 256;
        while (cap < s->pending_len + data.len)
            cap *= 2;
        char *p = realloc(s->pending, cap);
        if (p == NULL)
            return MK_ENOMEM;
        s->pending = p;
        s->pending_cap = cap;
    }
    memcpy(s->pending + s->pending_len, data.base, data.len);
    s->pending_len += data.len;
    stream_flush(s);
    return 0;
}

size_t mk_httpd_stream_buffered(const mk_httpd_stream_t *s)
{
    return s->pending_len + s->flight_len;
}

bool mk_httpd_stream_open(const mk_httpd_stream_t *s)
{
    return s->state == ST_OPEN;
}

void mk_httpd_stream_close(mk_httpd_stream_t *s)
{
    if (s->state != ST_OPEN)
        return;
    s->state = ST_CLOSING;
    set_reason(s, MK_HTTPD_STREAM_DONE);
    stream_flush(s);
}

void mk_httpd_stream_abort(mk_httpd_stream_t *s)
{
    if (s->state == ST_OPEN || s->state == ST_CLOSING || s->state == ST_ENDED)
        schedule_abort(s, MK_HTTPD_STREAM_ABORTED);
}

void mk_httpd_stream_after(mk_httpd_stream_t *s, unsigned timer, uint32_t ms, void (*cb)(void *ud))
{
    if (timer >= MK_HTTPD_STREAM_TIMERS || s->state == ST_GONE || s->state == ST_ENDED)
        return;
    s->timers[timer].cb = cb;
    stimer_arm(s, &s->timers[timer], ms);
}

void mk_httpd_stream_cancel(mk_httpd_stream_t *s, unsigned timer)
{
    if (timer < MK_HTTPD_STREAM_TIMERS)
        stimer_disarm(&s->timers[timer]);
}

uint64_t mk_httpd_stream_now(const mk_httpd_stream_t *s)
{
    return s->ls ? h2o_now(s->ls->evloop) : 0;
}

mk_httpd_req_t *mk_httpd_stream_req(const mk_httpd_stream_t *s)
{
    return s->state == ST_GONE ? NULL : s->r;
}

size_t mk_httpd_stream_count(mk_httpd_req_t *r)
{
    loopstate_t *ls = loopstate_of(r);
    return ls ? ls->nstreams : 0;
}

int mk_httpd_stream_post(mk_httpd_stream_t *s, mk_httpd_stream_post_cb cb, void *arg)
{
    inbox_t *in = s->inbox;
    msg_t *m = malloc(sizeof *m);
    if (m == NULL)
        return MK_ENOMEM;
    m->next = NULL;
    m->s = s;
    m->cb = cb;
    m->arg = arg;
    mk_httpd_stream_ref(s);
    pthread_mutex_lock(&in->mu);
    bool dead = in->dead;
    bool wake = false;
    if (!dead) {
        *in->tail = m;
        in->tail = &m->next;
        wake = !in->signalled;
        in->signalled = true;
    }
    pthread_mutex_unlock(&in->mu);
    if (dead) {
        mk_httpd_stream_unref(s);
        free(m);
        return MK_EUNAVAIL;
    }
    if (wake) {
        uint64_t one = 1;
        ssize_t ignored = write(in->efd, &one, sizeof one);
        (void)ignored;
    }
    return 0;
}

typedef struct copied {
    size_t len;
    bool close_after;
    char data[];
} copied_t;

static void on_copied(mk_httpd_stream_t *s, void *arg)
{
    copied_t *c = arg;
    if (s) {
        mk_httpd_stream_write(s, (mk_str_t){c->data, c->len});
        if (c->close_after)
            mk_httpd_stream_close(s);
    }
    free(c);
}

int mk_httpd_stream_write_from(mk_httpd_stream_t *s, mk_str_t data, bool close_after)
{
    copied_t *c = malloc(sizeof *c + data.len);
    if (c == NULL)
        return MK_ENOMEM;
    c->len = data.len;
    c->close_after = close_after;
    if (data.len)
        memcpy(c->data, data.base, data.len);
    int rc = mk_httpd_stream_post(s, on_copied, c);
    if (rc != 0)
        free(c);
    return rc;
}
