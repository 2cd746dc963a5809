/* The engine: worker threads, each with one epoll loop driving its share of the VUs'
 * connections, and the calling thread collecting per-second deltas from them. A worker holds its
 * mutex while it processes events and releases it around epoll_wait, so the collector can swap the
 * interval statistics out at any time for one lock per loop turn. */
#include "loadgen/h2.h"
#include "loadgen/response.h"
#include "loadgen/scenario_int.h"
#include "loadgen/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE   (64 * 1024)
#define TICK_NS     (10 * 1000 * 1000)
#define MAX_VUS     100000
#define MAX_THREADS 256

typedef enum conn_state { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_SENDING, C_RECEIVING } conn_state_t;

typedef struct worker worker_t;

typedef struct conn {
    worker_t *w;
    int fd;
    lg_tls_t *tls; /* https targets */
    lg_h2_t *h2;   /* the connection speaks HTTP/2 */
    bool want_h2;  /* it was opened asking for HTTP/2 */
    conn_state_t state;
    int target;
    uint32_t evmask;
    bool active; /* closed model: the VU runs iterations */
    bool queued; /* on the worker's ready list */
    bool reused; /* the request went out on a kept-alive connection */
    int64_t begin_ns, start_ns, sent_ns, first_ns;
    const lg_request_t *req;
    const char *wdata;
    size_t wlen, woff;
    mk_buf_t wbuf, tmp;
    lg_resp_t resp;
    uint64_t got;      /* response bytes so far */
    struct conn *next; /* free list (open model) or ready list (closed model) */
} conn_t;

struct worker {
    mk_loadgen_t *lg;
    int id;
    pthread_t th;
    bool started;
    int ep, efd;
    conn_t *conns;
    int nconns, nalloc, busy, active;
    conn_t *free_list, *ready, **ready_tail;
    pthread_mutex_t mu;
    mk_loadgen_stats_t *iv;
    mk_faker_rng_t rng;
    char *rbuf;
    uint64_t next_idx, sent;
    int64_t next_at; /* absolute ns of the next arrival, -1 when none */
    int64_t max_lag_ns;
    bool draining;
};

struct mk_loadgen {
    mk_loadgen_config_t cfg;
    mk_loadgen_stage_t stages[MK_LOADGEN_MAX_STAGES];
    bool open;
    mk_loadgen_sched_t sched;
    int max_vus;
    lg_tls_ctx_t *tls;
    int64_t start_ns, end_ns, grace_ns;
    atomic_int stop;
    atomic_llong claimed;
    int nworkers;
    worker_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int nfinished;
    bool ran, aborted;
    mk_loadgen_stats_t *total, *delta;
    uint64_t prev_due;
    double behind_from, behind_to;
    int64_t elapsed_ns;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MK_LOADGEN_NS_PER_S + ts.tv_nsec;
}

static const char *const executor_names[] = {"constant-vus", "ramping-vus", "shared-iterations",
                                             "constant-arrival-rate", "ramping-arrival-rate"};

const char *mk_loadgen_executor_name(mk_loadgen_executor_t e)
{
    return (unsigned)e < 5 ? executor_names[e] : "unknown";
}

int mk_loadgen_executor_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, executor_names[i]) == 0)
            return i;
    return -1;
}

/* ---- connections ---- */

static void set_events(conn_t *c, uint32_t ev)
{
    if (c->evmask == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->w->ep, c->evmask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
    c->evmask = ev;
}

static void conn_close(conn_t *c)
{
    lg_tls_free(c->tls);
    c->tls = NULL;
    lg_h2_free(c->h2);
    c->h2 = NULL;
    if (c->fd >= 0)
        close(c->fd); /* closing removes it from the epoll set */
    c->fd = -1;
    c->evmask = 0;
    c->state = C_IDLE;
}

static void push_ready(worker_t *w, conn_t *c)
{
    if (c->queued)
        return;
    c->queued = true;
    c->next = NULL;
    *w->ready_tail = c;
    w->ready_tail = &c->next;
}

/* The request is over (answered or failed): the VU moves on. Never starts the next request
 * directly, so a connection refused at once cannot recurse. */
static void request_over(conn_t *c)
{
    worker_t *w = c->w;
    c->req = NULL;
    w->busy--;
    if (w->lg->open) {
        c->next = w->free_list;
        w->free_list = c;
    } else {
        push_ready(w, c);
    }
}

static void fail(conn_t *c, const char *msg)
{
    worker_t *w = c->w;
    w->iv->reqs++;
    w->iv->failed++;
    w->iv->iterations++;
    w->iv->status[0]++;
    mk_loadgen_stats_add_error(w->iv, msg, 1);
    conn_close(c);
    request_over(c);
}

static void fail_errno(conn_t *c, const char *what, int e)
{
    char msg[96];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
    fail(c, msg);
}

/* The connection is lost: the request on it, if any, failed; an idle one is only closed. */
static void lose(conn_t *c, const char *msg)
{
    if (c->req)
        fail(c, msg);
    else
        conn_close(c);
}

static void begin_write(conn_t *c);
static void handshake(conn_t *c);

/* Puts an HTTP/2 session on the connection; false (the request failed) when out of memory. */
static bool h2_attach(conn_t *c)
{
    c->h2 = lg_h2_new();
    if (!c->h2)
        fail(c, "http2: out of memory");
    return c->h2 != NULL;
}

/* The TCP connection is up: a TLS handshake first for https targets. */
static void connected(conn_t *c)
{
    const lg_target_t *t = &c->w->lg->cfg.scenario->targets[c->target];
    if (!t->tls) {
        if (c->want_h2 && !h2_attach(c))
            return; /* h2c with prior knowledge */
        set_events(c, EPOLLIN);
        begin_write(c);
        return;
    }
    c->tls = lg_tls_new(c->w->lg->tls, c->fd, t->host, c->want_h2);
    if (!c->tls) {
        fail(c, "tls: out of memory");
        return;
    }
    c->state = C_HANDSHAKE;
    handshake(c);
}

static void handshake(conn_t *c)
{
    char msg[80];
    switch (lg_tls_handshake(c->tls, msg, sizeof msg)) {
    case LG_TLS_OK:
        if (lg_tls_is_h2(c->tls) && !h2_attach(c))
            return; /* otherwise the server chose HTTP/1.1 (or offers no ALPN) */
        set_events(c, EPOLLIN);
        begin_write(c);
        return;
    case LG_TLS_WANT_READ:
        set_events(c, EPOLLIN);
        return;
    case LG_TLS_WANT_WRITE:
        set_events(c, EPOLLOUT);
        return;
    default: {
        char full[96];
        snprintf(full, sizeof full, "tls: %s", msg);
        fail(c, full);
    }
    }
}

static void do_connect(conn_t *c)
{
    const lg_target_t *t = &c->w->lg->cfg.scenario->targets[c->target];
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail_errno(c, "socket", errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->evmask = 0;
    c->reused = false;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) == 0) {
        connected(c);
        return;
    }
    if (errno != EINPROGRESS) {
        fail_errno(c, "dial", errno);
        return;
    }
    c->state = C_CONNECTING;
    set_events(c, EPOLLOUT);
}

static void parse_reset(conn_t *c)
{
    lg_resp_reset(&c->resp, c->req && c->req->head);
    c->got = 0;
    c->first_ns = 0;
}

/* Writes over TLS: 1 when all is written, 0 to wait for the socket, -1 failed. */
static int write_tls(conn_t *c)
{
    while (c->woff < c->wlen) {
        size_t n = 0;
        char msg[80];
        int r = lg_tls_write(c->tls, c->wdata + c->woff, c->wlen - c->woff, &n, msg, sizeof msg);
        if (r == LG_TLS_OK) {
            c->woff += n;
            c->w->iv->data_sent += n;
            continue;
        }
        if (r == LG_TLS_WANT_WRITE || r == LG_TLS_WANT_READ) {
            set_events(c, r == LG_TLS_WANT_WRITE ? EPOLLIN | EPOLLOUT : EPOLLIN);
            return 0;
        }
        char full[96];
        snprintf(full, sizeof full, "tls write: %s", r == LG_TLS_EOF ? "closed" : msg);
        fail(c, full);
        return -1;
    }
    return 1;
}

static void write_some(conn_t *c)
{
    if (c->tls) {
        if (write_tls(c) <= 0)
            return;
        c->woff = c->wlen;
    }
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wdata + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            c->w->iv->data_sent += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return;
        }
        fail_errno(c, "write", n < 0 ? errno : EPIPE);
        return;
    }
    c->sent_ns = mono_ns();
    c->state = C_RECEIVING;
    set_events(c, EPOLLIN);
}

/* Writes buf over the connection: bytes taken (0: later, the events are set), or -1 when the
 * connection was lost. */
static ssize_t conn_write(conn_t *c, const void *buf, size_t len)
{
    char msg[80], full[96];
    if (c->tls) {
        size_t n = 0;
        int r = lg_tls_write(c->tls, buf, len, &n, msg, sizeof msg);
        if (r == LG_TLS_OK)
            return (ssize_t)n;
        if (r == LG_TLS_WANT_WRITE || r == LG_TLS_WANT_READ) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return 0;
        }
        snprintf(full, sizeof full, "tls write: %s", r == LG_TLS_EOF ? "closed" : msg);
        lose(c, full);
        return -1;
    }
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            set_events(c, EPOLLIN | EPOLLOUT);
            return 0;
        }
        snprintf(full, sizeof full, "write: %s", strerror(errno));
        lose(c, full);
        return -1;
    }
}

/* Writes what the HTTP/2 session has to send (the request's frames, SETTINGS and PING acks,
 * WINDOW_UPDATEs); the request counts as sent when nothing is left. 0, or -1 when lost. */
static int h2_flush(conn_t *c)
{
    for (;;) {
        const uint8_t *d;
        size_t len;
        char msg[80];
        if (lg_h2_pending(c->h2, &d, &len, msg, sizeof msg) < 0) {
            lose(c, msg);
            return -1;
        }
        if (len == 0)
            break;
        ssize_t n = conn_write(c, d, len);
        if (n < 0)
            return -1;
        c->w->iv->data_sent += (uint64_t)n;
        lg_h2_consumed(c->h2, (size_t)n);
        if ((size_t)n < len)
            return 0; /* conn_write asked for EPOLLOUT */
    }
    if (c->state == C_SENDING) {
        c->sent_ns = mono_ns();
        c->state = C_RECEIVING;
    }
    set_events(c, EPOLLIN);
    return 0;
}

static void h2_begin(conn_t *c)
{
    char msg[80];
    bool tls = c->w->lg->cfg.scenario->targets[c->target].tls;
    if (lg_h2_submit(c->h2, c->wdata, c->wlen, tls, msg, sizeof msg) != 0) {
        fail(c, msg);
        return;
    }
    h2_flush(c);
}

static void begin_write(conn_t *c)
{
    c->state = C_SENDING;
    c->woff = 0;
    parse_reset(c);
    if (!c->w->lg->open)
        c->start_ns = mono_ns(); /* closed model: from the first byte out, as wrk and k6 */
    if (c->h2)
        h2_begin(c);
    else
        write_some(c);
}

/* Starts one request on c: begin is now, start the instant latency is measured from. */
static void start_request(conn_t *c, int64_t begin, int64_t start)
{
    worker_t *w = c->w;
    const mk_loadgen_scenario_t *sc = w->lg->cfg.scenario;
    const lg_request_t *r = &sc->req[lg_pick(sc, &w->rng)];
    w->busy++;
    c->req = r;
    c->begin_ns = begin;
    c->start_ns = start;
    if (r->prebuilt) {
        c->wdata = r->prebuilt;
        c->wlen = r->prebuilt_len;
    } else {
        if (lg_request_render(r, &w->rng, &c->wbuf, &c->tmp) != 0) {
            fail(c, "request too large");
            return;
        }
        c->wdata = c->wbuf.data;
        c->wlen = c->wbuf.len;
    }
    bool want_h2 = r->http2 < 0 ? w->lg->cfg.http2 : r->http2 > 0;
    if (c->fd >= 0 &&
        (c->target != r->target || c->want_h2 != want_h2 || (c->h2 && !lg_h2_reusable(c->h2))))
        conn_close(c);
    c->target = r->target;
    c->want_h2 = want_h2;
    if (c->fd < 0) {
        do_connect(c);
    } else {
        c->reused = true;
        begin_write(c);
    }
}

/* ---- responses ---- */

/* The response is in: status st; the connection stays open when keepalive. */
static void finish(conn_t *c, int st, bool keepalive)
{
    worker_t *w = c->w;
    int64_t now = mono_ns();
    mk_loadgen_stats_t *s = w->iv;
    s->reqs++;
    s->iterations++;
    s->status[st < MK_LOADGEN_STATUS_MAX ? st : 0]++;
    if (st >= 400)
        s->failed++;
    int64_t d = now - c->start_ns, wt = c->first_ns - c->sent_ns;
    mk_hdr_record(s->duration, d > 0 ? (uint64_t)(d / 1000) : 0);
    mk_hdr_record(s->waiting, wt > 0 ? (uint64_t)(wt / 1000) : 0);
    if (keepalive) {
        c->state = C_IDLE;
    } else {
        conn_close(c);
    }
    request_over(c);
}

static void complete(conn_t *c)
{
    finish(c, c->resp.status, c->resp.keepalive);
}

enum { READ_FAILED = -1, READ_TLS_FAILED = -2, READ_LATER = -3 };

/* One read into the worker's buffer, retried on EINTR: bytes (> 0, counted as received), 0 at
 * EOF, READ_LATER when there is nothing yet, READ_FAILED with errno, or READ_TLS_FAILED with
 * msg. */
static ssize_t conn_read(conn_t *c, char *msg, size_t msglen)
{
    ssize_t n;
    size_t got = 0;
    if (c->tls == NULL) {
        do
            n = recv(c->fd, c->w->rbuf, RBUF_SIZE, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return READ_LATER;
    } else {
        switch (lg_tls_read(c->tls, c->w->rbuf, RBUF_SIZE, &got, msg, msglen)) {
        case LG_TLS_OK:
            n = (ssize_t)got;
            break;
        case LG_TLS_EOF:
            return 0;
        case LG_TLS_WANT_READ:
        case LG_TLS_WANT_WRITE:
            return READ_LATER;
        default:
            return READ_TLS_FAILED;
        }
    }
    if (n > 0)
        c->w->iv->data_received += (uint64_t)n;
    return n;
}

static void on_readable(conn_t *c)
{
    worker_t *w = c->w;
    char tmsg[80] = "";
    for (;;) {
        ssize_t n = conn_read(c, tmsg, sizeof tmsg);
        if (n == READ_LATER)
            return;
        if (n > 0) {
            if (c->state == C_IDLE) {
                conn_close(c); /* bytes nobody asked for: drop the connection */
                return;
            }
            if (c->state != C_RECEIVING) {
                fail(c, "response before the request was sent");
                return;
            }
            if (!c->first_ns)
                c->first_ns = mono_ns();
            c->got += (uint64_t)n;
            int rc = lg_resp_feed(&c->resp, w->rbuf, (size_t)n);
            if (rc == 1) {
                complete(c);
                return;
            }
            if (rc < 0) {
                fail(c, rc == -2 ? "response header too large" : "malformed response");
                return;
            }
            if (n < RBUF_SIZE && !c->tls) /* TLS may hold more decrypted bytes: read on */
                return;
            continue;
        }
        if (n == READ_TLS_FAILED) {
            char full[96];
            snprintf(full, sizeof full, "tls read: %s", tmsg);
            if (c->state == C_IDLE)
                conn_close(c);
            else
                fail(c, full);
            return;
        }
        int e = n == 0 ? 0 : errno;
        if (c->state == C_IDLE) { /* the server closed an idle keep-alive connection */
            conn_close(c);
            return;
        }
        if (n == 0 && c->resp.ps == P_CLOSE) {
            complete(c);
            return;
        }
        if (c->reused && c->got == 0) {
            /* the server closed a kept-alive connection as we reused it: resend once on a new
             * one, as browsers and curl do; not the target's failure */
            conn_close(c);
            do_connect(c);
            return;
        }
        if (n == 0)
            fail(c, c->got ? "unexpected EOF in response" : "EOF before response");
        else
            fail_errno(c, "read", e);
        return;
    }
}

/* Writes what the session has to send, then ends the request when its stream is over:
 * 0 while it runs (or the connection is idle), 1 when it ended or the connection was lost. */
static int h2_progress(conn_t *c)
{
    char msg[80];
    if (h2_flush(c) < 0)
        return 1;
    if (!c->req)
        return 0;
    int rc = lg_h2_poll(c->h2, msg, sizeof msg);
    if (rc < 0)
        lose(c, msg);
    else if (rc > 0)
        finish(c, lg_h2_status(c->h2), lg_h2_reusable(c->h2));
    return rc != 0;
}

/* HTTP/2: every byte goes to the session, on an idle connection too (PING, GOAWAY). */
static void h2_readable(conn_t *c)
{
    worker_t *w = c->w;
    char tmsg[80] = "", msg[96];
    for (;;) {
        ssize_t n = conn_read(c, tmsg, sizeof tmsg);
        if (n == READ_LATER)
            return;
        if (n > 0) {
            int rc = lg_h2_feed(c->h2, (const uint8_t *)w->rbuf, (size_t)n, msg, sizeof msg);
            if (c->req && !c->first_ns && lg_h2_headers_seen(c->h2))
                c->first_ns = mono_ns();
            if (rc < 0) {
                lose(c, msg);
                return;
            }
            if (h2_progress(c) != 0)
                return;
            if (!c->req && !lg_h2_reusable(c->h2)) {
                conn_close(c); /* GOAWAY on an idle connection */
                return;
            }
            if (n < RBUF_SIZE && !c->tls)
                return;
            continue;
        }
        if (n == READ_TLS_FAILED) {
            snprintf(msg, sizeof msg, "tls read: %s", tmsg);
            lose(c, msg);
            return;
        }
        int e = n == 0 ? 0 : errno;
        if (c->req && c->reused && !lg_h2_headers_seen(c->h2)) {
            conn_close(c); /* closed as we reused it: resend once on a new connection */
            do_connect(c);
            return;
        }
        if (n == 0)
            lose(c, "http2: connection closed before the response ended");
        else {
            snprintf(msg, sizeof msg, "read: %s", strerror(e));
            lose(c, msg);
        }
        return;
    }
}

static void on_event(conn_t *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        int e = 0;
        socklen_t el = sizeof e;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e) {
            fail_errno(c, "dial", e);
            return;
        }
        connected(c);
        return;
    }
    if (c->state == C_HANDSHAKE) {
        handshake(c);
        return;
    }
    if (c->h2) {
        if ((ev & EPOLLOUT) && h2_progress(c) != 0)
            return;
        if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
            h2_readable(c);
        return;
    }
    if (c->state == C_SENDING && (c->tls || (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))) {
        write_some(c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(c);
}

/* ---- scheduling ---- */

static bool iterations_left(mk_loadgen_t *lg)
{
    if (lg->cfg.executor != MK_LOADGEN_SHARED_ITERATIONS)
        return true;
    return atomic_fetch_add(&lg->claimed, 1) < lg->cfg.iterations;
}

static void run_ready(worker_t *w)
{
    conn_t *list = w->ready;
    w->ready = NULL;
    w->ready_tail = &w->ready;
    while (list) {
        conn_t *c = list;
        list = c->next;
        c->queued = false;
        if (w->draining || !c->active || atomic_load(&w->lg->stop))
            continue;
        if (!iterations_left(w->lg)) {
            w->draining = true;
            continue;
        }
        int64_t now = mono_ns();
        start_request(c, now, now);
    }
}

static void dispatch(worker_t *w, int64_t now)
{
    mk_loadgen_t *lg = w->lg;
    while (!w->draining && w->next_at >= 0 && w->next_at <= now) {
        conn_t *c = w->free_list;
        if (c) {
            w->free_list = c->next;
        } else if (w->nalloc < w->nconns) {
            c = &w->conns[w->nalloc++];
        } else {
            return; /* every connection busy: the arrival waits, its latency grows */
        }
        if (now - w->next_at > w->max_lag_ns)
            w->max_lag_ns = now - w->next_at;
        start_request(c, now, w->next_at);
        w->sent++;
        w->next_idx += (uint64_t)lg->nworkers;
        int64_t at = mk_loadgen_sched_at(&lg->sched, w->next_idx);
        w->next_at = at < 0 ? -1 : lg->start_ns + at;
    }
}

static int vu_target(mk_loadgen_t *lg, int64_t now)
{
    if (lg->cfg.executor != MK_LOADGEN_RAMPING_VUS)
        return lg->cfg.vus;
    double v =
        mk_loadgen_stages_value(lg->stages, lg->cfg.nstages, lg->cfg.vus, now - lg->start_ns);
    return (int)lround(v);
}

/* Every tick: timeouts, the VU target of ramping-vus, the end of the run. */
static bool housekeeping(worker_t *w, int64_t now)
{
    mk_loadgen_t *lg = w->lg;
    for (int i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        if (c->req && now - c->begin_ns > lg->cfg.timeout_ns)
            fail(c, "request timeout");
    }
    if (now >= lg->end_ns)
        w->draining = true;
    if (!lg->open) {
        int target = w->draining ? 0 : vu_target(lg, now);
        w->active = 0;
        for (int i = 0; i < w->nconns; i++) {
            conn_t *c = &w->conns[i];
            bool on = i * lg->nworkers + w->id < target;
            if (on && !c->active)
                push_ready(w, c);
            if (!on && c->active && !c->req)
                conn_close(c);
            c->active = on;
            w->active += on;
        }
    }
    if (w->draining && (w->busy == 0 || now >= lg->grace_ns))
        return true;
    return false;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    mk_loadgen_t *lg = w->lg;
    struct epoll_event evs[256];
    prctl(PR_SET_TIMERSLACK, 1UL); /* open-model sends within microseconds of their time */
    pthread_mutex_lock(&w->mu);
    int64_t next_tick = 0;
    while (!atomic_load(&lg->stop)) {
        int64_t now = mono_ns();
        if (now >= next_tick) {
            if (housekeeping(w, now))
                break;
            next_tick = now + TICK_NS;
        }
        run_ready(w);
        if (lg->open)
            dispatch(w, now);
        int64_t wake = next_tick;
        if (lg->open && w->next_at >= 0 && w->next_at < wake &&
            (w->free_list || w->nalloc < w->nconns))
            wake = w->next_at;
        if (w->ready)
            wake = now;
        int64_t wait = wake - mono_ns();
        struct timespec ts = {0, 0};
        if (wait > 0)
            ts = (struct timespec){wait / MK_LOADGEN_NS_PER_S, wait % MK_LOADGEN_NS_PER_S};
        pthread_mutex_unlock(&w->mu);
        int n = epoll_pwait2(w->ep, evs, 256, &ts, NULL);
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr)
                continue; /* the stop eventfd: the loop condition sees the flag */
            on_event(evs[i].data.ptr, evs[i].events);
        }
    }
    for (int i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        if (c->req)
            w->iv->interrupted++;
        c->req = NULL;
        conn_close(c);
    }
    w->busy = 0;
    w->active = 0;
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_lock(&lg->mu);
    lg->nfinished++;
    pthread_cond_signal(&lg->cv);
    pthread_mutex_unlock(&lg->mu);
    return NULL;
}

/* ---- setup ---- */

static int validate(mk_loadgen_t *lg, mk_err_t *err)
{
    mk_loadgen_config_t *c = &lg->cfg;
    if (!c->scenario)
        return mk_err_set(err, MK_EINVAL, "scenario: required");
    if (c->threads == 0)
        c->threads = 1;
    if (c->threads < 1 || c->threads > MAX_THREADS)
        return mk_err_set(err, MK_EINVAL, "threads: from 1 to %d", MAX_THREADS);
    if (!c->timeout_ns)
        c->timeout_ns = 60 * MK_LOADGEN_NS_PER_S;
    if (!c->time_unit_ns)
        c->time_unit_ns = MK_LOADGEN_NS_PER_S;
    if (c->graceful_stop_ns < 0 || c->timeout_ns < 0 || c->time_unit_ns < 0)
        return mk_err_set(err, MK_EINVAL, "timeout, gracefulStop, timeUnit: must be positive");
    if (c->nstages > MK_LOADGEN_MAX_STAGES)
        return mk_err_set(err, MK_EINVAL, "stages: at most %d", MK_LOADGEN_MAX_STAGES);
    bool ramping =
        c->executor == MK_LOADGEN_RAMPING_VUS || c->executor == MK_LOADGEN_RAMPING_ARRIVAL_RATE;
    if (ramping && c->nstages == 0)
        return mk_err_set(err, MK_EINVAL, "stages: %s needs at least one stage",
                          mk_loadgen_executor_name(c->executor));
    for (size_t i = 0; i < c->nstages; i++) {
        if (c->stages[i].duration_ns < 0 || !(c->stages[i].target >= 0))
            return mk_err_set(err, MK_EINVAL, "stages[%zu]: duration and target must be >= 0", i);
        lg->stages[i] = c->stages[i];
    }
    c->stages = lg->stages;
    switch (c->executor) {
    case MK_LOADGEN_CONSTANT_VUS:
    case MK_LOADGEN_SHARED_ITERATIONS:
        if (c->vus < 1 || c->vus > MAX_VUS)
            return mk_err_set(err, MK_EINVAL, "vus: from 1 to %d", MAX_VUS);
        if (c->executor == MK_LOADGEN_SHARED_ITERATIONS && c->iterations < 1)
            return mk_err_set(err, MK_EINVAL, "iterations: must be at least 1");
        if (c->executor == MK_LOADGEN_SHARED_ITERATIONS && !c->duration_ns)
            c->duration_ns = 600 * MK_LOADGEN_NS_PER_S; /* k6's maxDuration default */
        if (c->duration_ns <= 0)
            return mk_err_set(err, MK_EINVAL, "duration: must be positive");
        lg->max_vus = c->vus;
        break;
    case MK_LOADGEN_RAMPING_VUS: {
        if (c->vus < 0 || c->vus > MAX_VUS)
            return mk_err_set(err, MK_EINVAL, "startVUs: from 0 to %d", MAX_VUS);
        double m = c->vus;
        for (size_t i = 0; i < c->nstages; i++)
            m = c->stages[i].target > m ? c->stages[i].target : m;
        if (m < 1 || m > MAX_VUS)
            return mk_err_set(err, MK_EINVAL, "stages: the highest target must be 1 to %d VUs",
                              MAX_VUS);
        lg->max_vus = (int)ceil(m);
        c->duration_ns = mk_loadgen_stages_duration(c->stages, c->nstages);
        if (c->duration_ns <= 0)
            return mk_err_set(err, MK_EINVAL, "stages: the total duration must be positive");
        break;
    }
    case MK_LOADGEN_CONSTANT_ARRIVAL_RATE:
    case MK_LOADGEN_RAMPING_ARRIVAL_RATE: {
        lg->open = true;
        double per_s = 1e9 / (double)c->time_unit_ns;
        mk_loadgen_stage_t st[MK_LOADGEN_MAX_STAGES];
        size_t n = c->nstages;
        if (c->executor == MK_LOADGEN_CONSTANT_ARRIVAL_RATE) {
            if (!(c->rate > 0))
                return mk_err_set(err, MK_EINVAL, "rate: must be positive");
            if (c->duration_ns <= 0)
                return mk_err_set(err, MK_EINVAL, "duration: must be positive");
            st[0] = (mk_loadgen_stage_t){c->duration_ns, c->rate * per_s};
            n = 1;
        } else {
            for (size_t i = 0; i < n; i++)
                st[i] = (mk_loadgen_stage_t){c->stages[i].duration_ns, c->stages[i].target * per_s};
        }
        int rc = mk_loadgen_sched_init(&lg->sched, c->rate * per_s, st, n, err);
        if (rc)
            return rc;
        c->duration_ns = mk_loadgen_stages_duration(st, n);
        if (c->duration_ns <= 0)
            return mk_err_set(err, MK_EINVAL, "stages: the total duration must be positive");
        if (c->pre_allocated_vus < 1 || c->pre_allocated_vus > MAX_VUS)
            return mk_err_set(err, MK_EINVAL, "preAllocatedVUs: from 1 to %d", MAX_VUS);
        if (!c->max_vus)
            c->max_vus = c->pre_allocated_vus;
        if (c->max_vus < c->pre_allocated_vus || c->max_vus > MAX_VUS)
            return mk_err_set(err, MK_EINVAL, "maxVUs: from preAllocatedVUs to %d", MAX_VUS);
        lg->max_vus = c->max_vus;
        break;
    }
    default:
        return mk_err_set(err, MK_EINVAL, "executor: unknown");
    }
    if (c->threads > lg->max_vus)
        c->threads = lg->max_vus; /* a thread without a VU would only spin */
    return 0;
}

static int share(int total, int nworkers, int id)
{
    return total / nworkers + (id < total % nworkers);
}

int mk_loadgen_new(const mk_loadgen_config_t *cfg, mk_loadgen_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_loadgen_t *lg = calloc(1, sizeof *lg);
    if (!lg)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    lg->cfg = *cfg;
    pthread_mutex_init(&lg->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&lg->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = validate(lg, err);
    if (rc)
        goto fail;
    lg->total = mk_loadgen_stats_new();
    lg->delta = mk_loadgen_stats_new();
    lg->nworkers = lg->cfg.threads;
    lg->workers = calloc((size_t)lg->nworkers, sizeof *lg->workers);
    if (!lg->total || !lg->delta || !lg->workers) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->scenario->ntargets && !lg->tls; i++)
        if (cfg->scenario->targets[i].tls &&
            (rc = lg_tls_ctx_new(cfg->insecure_skip_tls_verify, &lg->tls, err)) != 0)
            goto fail;
    uint64_t seed = cfg->seed ? cfg->seed : (uint64_t)mono_ns();
    for (int i = 0; i < lg->nworkers; i++) {
        worker_t *w = &lg->workers[i];
        w->lg = lg;
        w->id = i;
        w->ep = w->efd = -1;
        pthread_mutex_init(&w->mu, NULL);
        w->ready_tail = &w->ready;
        mk_faker_rng_seed(&w->rng, seed + (uint64_t)i * 7919);
        w->nconns = share(lg->max_vus, lg->nworkers, i);
        w->nalloc = lg->open ? share(lg->cfg.pre_allocated_vus, lg->nworkers, i) : w->nconns;
        w->conns = calloc((size_t)w->nconns, sizeof *w->conns);
        w->iv = mk_loadgen_stats_new();
        w->rbuf = malloc(RBUF_SIZE);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (!w->conns || !w->iv || !w->rbuf || w->ep < 0 || w->efd < 0) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory or descriptors");
            goto fail;
        }
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &e);
        for (int k = 0; k < w->nconns; k++) {
            conn_t *c = &w->conns[k];
            c->w = w;
            c->fd = -1;
            mk_buf_init(&c->wbuf, 4 << 20);
            mk_buf_init(&c->tmp, 4 << 20);
        }
        /* the free list holds the preallocated connections, lowest first */
        for (int k = w->nalloc - 1; lg->open && k >= 0; k--) {
            w->conns[k].next = w->free_list;
            w->free_list = &w->conns[k];
        }
    }
    *out = lg;
    return 0;
fail:
    mk_loadgen_free(lg);
    return rc;
}

void mk_loadgen_stop(mk_loadgen_t *lg)
{
    atomic_store(&lg->stop, 1);
    uint64_t one = 1;
    for (int i = 0; i < lg->nworkers; i++)
        if (lg->workers[i].efd >= 0 && write(lg->workers[i].efd, &one, sizeof one) < 0) {
            /* the counter is full: a wakeup is pending anyway */
        }
}

/* Moves every worker's interval statistics into lg->delta and adds gauges. */
static void collect(mk_loadgen_t *lg, int64_t now, double interval_s)
{
    mk_loadgen_stats_t *d = lg->delta;
    mk_loadgen_stats_reset(d);
    uint64_t sent = 0;
    for (int i = 0; i < lg->nworkers; i++) {
        worker_t *w = &lg->workers[i];
        pthread_mutex_lock(&w->mu);
        mk_loadgen_stats_merge(d, w->iv);
        mk_loadgen_stats_reset(w->iv);
        d->vus += lg->open ? w->busy : w->active;
        d->vus_max += lg->open ? w->nalloc : w->nconns;
        sent += w->sent;
        if (w->max_lag_ns / 1000 > d->max_lag_us)
            d->max_lag_us = w->max_lag_ns / 1000;
        w->max_lag_ns = 0;
        pthread_mutex_unlock(&w->mu);
    }
    d->t_s = (double)(now - lg->start_ns) / 1e9;
    d->interval_s = interval_s;
    if (lg->open) {
        int64_t t = now < lg->end_ns ? now - lg->start_ns : lg->end_ns - lg->start_ns;
        uint64_t due = mk_loadgen_sched_due(&lg->sched, t);
        d->scheduled = due - lg->prev_due;
        lg->prev_due = due;
        d->behind = due > sent ? due - sent : 0;
        /* a second counts as behind when more than 10 ms worth of arrivals wait at its end, or
         * one waited over 100 ms: shorter lags are the scheduler preempting us, recovered at once
         */
        double per_ms = (double)mk_loadgen_sched_total(&lg->sched) /
                        ((double)(lg->end_ns - lg->start_ns) / 1e6);
        if ((double)d->behind > 10 * per_ms + 1 || d->max_lag_us > 100000) {
            if (lg->behind_from < 0)
                lg->behind_from = d->t_s;
            lg->behind_to = d->t_s;
        }
    }
    int64_t vmax = lg->total->vus_max;
    mk_loadgen_stats_merge(lg->total, d);
    lg->total->vus = d->vus;
    lg->total->vus_max = d->vus_max > vmax ? d->vus_max : vmax;
    lg->total->t_s = d->t_s;
    lg->total->behind = d->behind;
}

int mk_loadgen_run(mk_loadgen_t *lg, mk_err_t *err)
{
    if (lg->ran)
        return mk_err_set(err, MK_EINVAL, "a run can be started once");
    lg->ran = true;
    lg->behind_from = lg->behind_to = -1;
    lg->start_ns = mono_ns();
    lg->end_ns = lg->start_ns + lg->cfg.duration_ns;
    lg->grace_ns = lg->end_ns + lg->cfg.graceful_stop_ns;
    for (int i = 0; i < lg->nworkers; i++) {
        worker_t *w = &lg->workers[i];
        if (lg->open) {
            w->next_idx = (uint64_t)i;
            int64_t at = mk_loadgen_sched_at(&lg->sched, w->next_idx);
            w->next_at = at < 0 ? -1 : lg->start_ns + at;
        }
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            mk_loadgen_stop(lg);
            for (int k = 0; k < i; k++)
                pthread_join(lg->workers[k].th, NULL);
            return mk_err_set(err, MK_EINTERNAL, "cannot start worker threads");
        }
        w->started = true;
    }
    int64_t last = lg->start_ns, next = lg->start_ns + MK_LOADGEN_NS_PER_S;
    pthread_mutex_lock(&lg->mu);
    while (lg->nfinished < lg->nworkers) {
        struct timespec ts = {next / MK_LOADGEN_NS_PER_S, next % MK_LOADGEN_NS_PER_S};
        pthread_cond_timedwait(&lg->cv, &lg->mu, &ts);
        if (lg->nfinished == lg->nworkers)
            break;
        int64_t now = mono_ns();
        if (now < next)
            continue;
        pthread_mutex_unlock(&lg->mu);
        collect(lg, now, (double)(now - last) / 1e9);
        last = now;
        next += MK_LOADGEN_NS_PER_S;
        if (lg->cfg.on_second && lg->cfg.on_second(lg->delta, lg->total, lg->cfg.arg) != 0) {
            lg->aborted = true;
            mk_loadgen_stop(lg);
        }
        pthread_mutex_lock(&lg->mu);
    }
    pthread_mutex_unlock(&lg->mu);
    for (int i = 0; i < lg->nworkers; i++)
        pthread_join(lg->workers[i].th, NULL);
    int64_t now = mono_ns();
    lg->elapsed_ns = now - lg->start_ns;
    collect(lg, now, (double)(now - last) / 1e9);
    if (lg->open && !atomic_load(&lg->stop)) {
        /* arrivals the schedule had that were never sent */
        uint64_t sent = 0;
        for (int i = 0; i < lg->nworkers; i++)
            sent += lg->workers[i].sent;
        uint64_t total = mk_loadgen_sched_total(&lg->sched);
        lg->delta->dropped = total > sent ? total - sent : 0;
        lg->total->dropped += lg->delta->dropped;
    }
    if (lg->cfg.on_second)
        lg->cfg.on_second(lg->delta, lg->total, lg->cfg.arg);
    return 0;
}

const mk_loadgen_stats_t *mk_loadgen_total(const mk_loadgen_t *lg)
{
    return lg->total;
}

void mk_loadgen_summary(const mk_loadgen_t *lg, mk_loadgen_summary_t *o)
{
    memset(o, 0, sizeof *o);
    o->elapsed_s = (double)lg->elapsed_ns / 1e9;
    o->stopped = atomic_load(&lg->stop) && !lg->aborted;
    o->aborted = lg->aborted;
    uint64_t sent = 0;
    for (int i = 0; i < lg->nworkers; i++)
        sent += lg->workers[i].sent;
    double run_s = (double)lg->cfg.duration_ns / 1e9;
    if (lg->open) {
        o->target_rate = (double)mk_loadgen_sched_total(&lg->sched) / run_s;
        o->achieved_rate = (double)sent / (o->elapsed_s < run_s ? o->elapsed_s : run_s);
        o->rate_kept = lg->total->dropped == 0 && !o->stopped && !o->aborted &&
                       (double)sent >= 0.99 * (double)mk_loadgen_sched_total(&lg->sched);
    } else {
        o->achieved_rate = o->elapsed_s > 0 ? (double)lg->total->reqs / o->elapsed_s : 0;
        o->rate_kept = true;
    }
    o->behind_from_s = lg->behind_from;
    o->behind_to_s = lg->behind_to;
}

void mk_loadgen_free(mk_loadgen_t *lg)
{
    if (!lg)
        return;
    for (int i = 0; lg->workers && i < lg->nworkers; i++) {
        worker_t *w = &lg->workers[i];
        for (int k = 0; w->conns && k < w->nconns; k++) {
            conn_close(&w->conns[k]);
            mk_buf_free(&w->conns[k].wbuf);
            mk_buf_free(&w->conns[k].tmp);
            lg_resp_free(&w->conns[k].resp);
        }
        free(w->conns);
        mk_loadgen_stats_free(w->iv);
        free(w->rbuf);
        if (w->ep >= 0)
            close(w->ep);
        if (w->efd >= 0)
            close(w->efd);
        pthread_mutex_destroy(&w->mu);
    }
    free(lg->workers);
    lg_tls_ctx_free(lg->tls);
    mk_loadgen_stats_free(lg->total);
    mk_loadgen_stats_free(lg->delta);
    pthread_mutex_destroy(&lg->mu);
    pthread_cond_destroy(&lg->cv);
    free(lg);
}
