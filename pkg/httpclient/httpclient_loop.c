/* curl's multi interface driven by the caller's loop (see httpclient_loop.h): curl tells us which
 * sockets to watch and when its timer is due; both go into an epoll set of our own (a timerfd for
 * the timer), whose descriptor the caller's loop watches. Easy handles are recycled, so a warm
 * client allocates little per request. */
#include "httpclient/httpclient_loop.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_CONNS  256
#define DEFAULT_MAX_BODY   ((size_t)16 << 20)
#define DEFAULT_CONNECT_MS 5000
#define SPARE_EASY_MAX     64
#define MAX_RESP_HEADERS   128
#define MAX_HEADER_BYTES   (64 * 1024)

typedef struct hdr_at {
    size_t name_at, name_len, value_at, value_len;
} hdr_at_t;

typedef struct xfer {
    struct xfer *prev, *next; /* in the client's list of transfers out */
    mk_httpclient_loop_t *c;
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* the request body (copied) */
    mk_httpclient_loop_cb cb;
    void *ud;
    char *rbody; /* the answer's body */
    size_t rbody_len, rbody_cap;
    char *hbuf; /* the answer's header bytes */
    size_t hbuf_len, hbuf_cap;
    hdr_at_t hdrs[MAX_RESP_HEADERS];
    size_t nhdrs;
    int too_big;
    struct timespec started;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode result;         /* when ended inside send */
    struct xfer *ended_next; /* in the client's ended list */
} xfer_t;

struct mk_httpclient_loop {
    CURLM *multi;
    int epfd, tfd;
    int64_t armed_ns;  /* when the timer fires (monotonic); 0: not armed */
    uint32_t *watched; /* by fd: the events registered (see on_socket) */
    size_t nwatched;
    xfer_t *ended; /* finished inside send: their callbacks run on the next turn */
    /* The plain HTTP/1.1 path (h1 below): transfers, idle sockets, and by fd who owns it. */
    struct h1 *h1s;
    struct h1_idle *idle;
    int **owner;
    size_t nowner;
    bool adding; /* inside curl_multi_add_handle: send starts the transfer itself */
    bool acting; /* inside act(): a "run again now" is done there, not by the timer */
    bool again;
    size_t max_body;
    xfer_t *xfers;
    size_t in_flight;
    CURL *spare[SPARE_EASY_MAX];
    size_t nspare;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double since_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* What the epoll set holds for fd (events, 0: absent); grows with the largest fd seen. */
static int watch_slot(mk_httpclient_loop_t *c, int fd, uint32_t **slot)
{
    if ((size_t)fd >= c->nwatched) {
        size_t n = c->nwatched ? c->nwatched : 64;
        while (n <= (size_t)fd)
            n *= 2;
        uint32_t *w = realloc(c->watched, n * sizeof *w);
        if (w == NULL)
            return -1;
        memset(w + c->nwatched, 0, (n - c->nwatched) * sizeof *w);
        c->watched = w;
        c->nwatched = n;
    }
    *slot = &c->watched[fd];
    return 0;
}

#define PARKED 0x80000000u /* registered, but curl no longer asks about it */

/* curl: watch s for what (or stop watching it). A connection going back to curl's pool stays in
 * the epoll set, parked: the next request on it usually wants the same events, so a kept-alive
 * connection costs no epoll_ctl per request. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *socketp)
{
    (void)easy;
    (void)socketp;
    mk_httpclient_loop_t *c = ud;
    uint32_t *slot;
    if (watch_slot(c, s, &slot) != 0)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        if (*slot)
            *slot |= PARKED;
        return 0;
    }
    uint32_t events = 0;
    if (what & CURL_POLL_IN)
        events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        events |= EPOLLOUT;
    if ((*slot & ~PARKED) == events && *slot) {
        *slot = events;
        return 0;
    }
    struct epoll_event ev = {.events = events, .data.fd = s};
    if (epoll_ctl(c->epfd, *slot ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0 &&
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev) != 0)
        return -1;
    *slot = events;
    return 0;
}

/* curl closes a socket: closing takes it out of the epoll set; forget it too. */
static int on_close(void *ud, curl_socket_t s)
{
    mk_httpclient_loop_t *c = ud;
    if ((size_t)s < c->nwatched)
        c->watched[s] = 0;
    return close(s);
}

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* curl: call us back after timeout_ms (-1: never). curl moves its timer on nearly every step of
 * every transfer; an armed deadline that comes sooner is kept (an early call costs curl one
 * look at its timers), which spares most timerfd_settime calls. */
static void arm(mk_httpclient_loop_t *c, long timeout_ms)
{
    struct itimerspec its = {0};
    if (timeout_ms == 0) {
        its.it_value.tv_nsec = 1; /* as soon as the loop turns; never from inside curl */
    } else {
        its.it_value.tv_sec = timeout_ms / 1000;
        its.it_value.tv_nsec = (timeout_ms % 1000) * 1000000L;
    }
    timerfd_settime(c->tfd, 0, &its, NULL);
    c->armed_ns = mono_ns() + (int64_t)timeout_ms * 1000000;
}

static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    mk_httpclient_loop_t *c = ud;
    if (timeout_ms == 0 && c->acting) {
        c->again = true;
        return 0;
    }
    if (timeout_ms < 0 || (timeout_ms == 0 && c->adding))
        return 0; /* a spurious wakeup later is harmless; disarming is a syscall */
    int64_t due = mono_ns() + (int64_t)timeout_ms * 1000000;
    if (c->armed_ns != 0 && c->armed_ns <= due)
        return 0;
    arm(c, timeout_ms);
    return 0;
}

/* Lets curl act on fd (or on its timers), and again at once while it asks to run again now:
 * each of those would otherwise cost a timer and a turn of the loop. */
static void act(mk_httpclient_loop_t *c, curl_socket_t fd, int flags)
{
    int running;
    c->acting = true;
    c->again = false;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    for (int n = 0; c->again && n < 4; n++) {
        c->again = false;
        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    c->acting = false;
    if (c->again) {
        c->again = false;
        arm(c, 0);
    }
}

static bool grow(char **p, size_t *cap, size_t need, size_t max)
{
    if (need <= *cap)
        return true;
    if (need > max)
        return false;
    size_t n = *cap ? *cap : 1024;
    while (n < need)
        n *= 2;
    if (n > max)
        n = max;
    char *q = realloc(*p, n);
    if (q == NULL)
        return false;
    *p = q;
    *cap = n;
    return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    if (!grow(&x->rbody, &x->rbody_cap, x->rbody_len + len, x->c->max_body)) {
        x->too_big = 1;
        return 0;
    }
    memcpy(x->rbody + x->rbody_len, data, len);
    x->rbody_len += len;
    return len;
}

static size_t trim(const char *s, size_t *at, size_t len)
{
    while (len && (s[*at] == ' ' || s[*at] == '\t')) {
        (*at)++;
        len--;
    }
    while (len && (s[*at + len - 1] == ' ' || s[*at + len - 1] == '\t' ||
                   s[*at + len - 1] == '\r' || s[*at + len - 1] == '\n'))
        len--;
    return len;
}

/* Header lines of every response come here (1xx, redirects): a status line starts over. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        x->nhdrs = 0;
        x->hbuf_len = 0;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (colon == NULL || x->nhdrs == MAX_RESP_HEADERS)
        return len; /* the blank line ending the block, or headers past what we keep */
    if (!grow(&x->hbuf, &x->hbuf_cap, x->hbuf_len + len, MAX_HEADER_BYTES))
        return len;
    size_t base = x->hbuf_len;
    memcpy(x->hbuf + base, data, len);
    x->hbuf_len += len;
    hdr_at_t *h = &x->hdrs[x->nhdrs++];
    h->name_at = base;
    h->name_len = trim(x->hbuf, &h->name_at, (size_t)(colon - data));
    h->value_at = base + (size_t)(colon - data) + 1;
    h->value_len = trim(x->hbuf, &h->value_at, len - (size_t)(colon - data) - 1);
    return len;
}

static void xfer_unlink(xfer_t *x)
{
    mk_httpclient_loop_t *c = x->c;
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->in_flight--;
}

/* Ends x: runs its callback once, then recycles its handle and frees it. */
static void xfer_end(xfer_t *x, CURLcode cc)
{
    mk_httpclient_loop_t *c = x->c;
    curl_multi_remove_handle(c->multi, x->easy);
    xfer_unlink(x);
    long status = 0;
    char why[CURL_ERROR_SIZE + 64];
    why[0] = '\0';
    if (cc == CURLE_OK) {
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    } else if (x->too_big) {
        snprintf(why, sizeof why, "answer body over %zu bytes", c->max_body);
    } else if ((int)cc == -1) {
        snprintf(why, sizeof why, "stopped");
    } else {
        snprintf(why, sizeof why, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
    }
    mk_httpclient_loop_header_t hdrs[MAX_RESP_HEADERS];
    for (size_t i = 0; i < x->nhdrs; i++)
        hdrs[i] = (mk_httpclient_loop_header_t){
            .name = x->hbuf + x->hdrs[i].name_at,
            .name_len = x->hdrs[i].name_len,
            .value = x->hbuf + x->hdrs[i].value_at,
            .value_len = x->hdrs[i].value_len,
        };
    mk_httpclient_loop_resp_t res = {
        .status = (int)status,
        .error = why,
        .headers = hdrs,
        .n_headers = cc == CURLE_OK ? x->nhdrs : 0,
        .body = x->rbody ? x->rbody : "",
        .body_len = cc == CURLE_OK ? x->rbody_len : 0,
        .duration_ms = since_ms(&x->started),
    };
    x->cb(x->ud, &res);
    /* Not reset: a reset frees buffers the next transfer allocates again; send sets every
     * option that varies. */
    if (c->nspare < SPARE_EASY_MAX) {
        c->spare[c->nspare++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x->rbody);
    free(x->hbuf);
    free(x);
}

/* Ends the transfers curl finished: now, or (defer) on the next turn of the loop, when the
 * caller must not see a callback yet. */
static void drain_done(mk_httpclient_loop_t *c, bool defer)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL)
            continue;
        if (defer) {
            x->result = msg->data.result;
            x->ended_next = c->ended;
            c->ended = x;
            arm(c, 0);
        } else {
            xfer_end(x, msg->data.result);
        }
    }
    while (!defer && c->ended != NULL) {
        xfer_t *x = c->ended;
        c->ended = x->ended_next;
        xfer_end(x, x->result);
    }
}

/* ---- plain HTTP/1.1 to a numeric address, without curl ----
 *
 * Most proxied upstreams are http:// on an address (a service in the same cluster, a local
 * stub). For them curl's per-request work (URL parsing, a liveness poll, a readiness poll,
 * formatted request building) costs more than the exchange itself, so such requests are written
 * and parsed here: pooled keep-alive sockets in the same epoll set, Content-Length and chunked
 * bodies, the same timeouts, errors worded as curl words them. TLS and host names go to curl. */

enum { H1_ACTIVE = 1, H1_IDLE = 2 };

typedef struct h1_idle {
    int kind; /* H1_IDLE */
    struct h1_idle *next;
    int fd;
    char key[64];
} h1_idle_t;

typedef struct h1 {
    int kind; /* H1_ACTIVE */
    struct h1 *prev, *next;
    mk_httpclient_loop_t *c;
    int fd;
    char key[64]; /* "a.b.c.d:port" */
    struct sockaddr_in addr;
    bool connecting, reused, head, done_hdrs, chunked, close_after, failed;
    uint32_t events; /* registered in the epoll set */
    char *out;
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    size_t hdr_end;  /* body start in in */
    long long clen;  /* -1: not given */
    size_t chunk_at; /* chunked: parse position in in */
    char *body;      /* chunked: the decoded body */
    size_t body_len, body_cap;
    int status;
    hdr_at_t hdrs[MAX_RESP_HEADERS];
    size_t nhdrs;
    int64_t deadline_ns, connect_deadline_ns;
    uint32_t timeout_ms;
    struct timespec started;
    char error[256]; /* set: fail on the next turn */
    mk_httpclient_loop_cb cb;
    void *ud;
} h1_t;

static int h1_own(mk_httpclient_loop_t *c, int fd, int *kind)
{
    if ((size_t)fd >= c->nowner) {
        size_t n = c->nowner ? c->nowner : 64;
        while (n <= (size_t)fd)
            n *= 2;
        int **o = realloc(c->owner, n * sizeof *o);
        if (o == NULL)
            return -1;
        memset(o + c->nowner, 0, (n - c->nowner) * sizeof *o);
        c->owner = o;
        c->nowner = n;
    }
    c->owner[fd] = kind;
    return 0;
}

static void h1_watch(h1_t *h, uint32_t events)
{
    if (h->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.fd = h->fd};
    epoll_ctl(h->c->epfd, h->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, h->fd, &ev);
    h->events = events;
}

/* Arms the timer for deadline (monotonic ns) when it is sooner than the armed one. */
static void arm_at(mk_httpclient_loop_t *c, int64_t deadline)
{
    int64_t now = mono_ns();
    if (c->armed_ns != 0 && c->armed_ns <= deadline)
        return;
    int64_t ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
    arm(c, (long)ms);
}

static void h1_unlink(h1_t *h)
{
    mk_httpclient_loop_t *c = h->c;
    if (h->prev)
        h->prev->next = h->next;
    else
        c->h1s = h->next;
    if (h->next)
        h->next->prev = h->prev;
    c->in_flight--;
}

static void h1_close_fd(mk_httpclient_loop_t *c, int fd)
{
    if ((size_t)fd < c->nowner)
        c->owner[fd] = NULL;
    close(fd);
}

static void h1_free(h1_t *h)
{
    free(h->out);
    free(h->in);
    free(h->body);
    free(h);
}

/* Ends h with its answer (error NULL) or an error; keeps the socket when it can serve again. */
static void h1_end(h1_t *h, const char *error)
{
    mk_httpclient_loop_t *c = h->c;
    h1_unlink(h);
    mk_httpclient_loop_header_t hdrs[MAX_RESP_HEADERS];
    size_t nh = error ? 0 : h->nhdrs;
    for (size_t i = 0; i < nh; i++)
        hdrs[i] = (mk_httpclient_loop_header_t){
            .name = h->in + h->hdrs[i].name_at,
            .name_len = h->hdrs[i].name_len,
            .value = h->in + h->hdrs[i].value_at,
            .value_len = h->hdrs[i].value_len,
        };
    const char *body = "";
    size_t blen = 0;
    if (error == NULL && h->chunked) {
        body = h->body ? h->body : "";
        blen = h->body_len;
    } else if (error == NULL && !h->head) {
        body = h->in + h->hdr_end;
        blen = h->in_len - h->hdr_end;
    }
    mk_httpclient_loop_resp_t res = {
        .status = error ? 0 : h->status,
        .error = error ? error : "",
        .headers = hdrs,
        .n_headers = nh,
        .body = body,
        .body_len = blen,
        .duration_ms = since_ms(&h->started),
    };
    int fd = h->fd;
    bool keep = error == NULL && !h->close_after && fd >= 0;
    if (fd >= 0 && !keep)
        h1_close_fd(c, fd);
    h1_idle_t *idle = keep ? malloc(sizeof *idle) : NULL;
    if (keep && idle == NULL) {
        h1_close_fd(c, fd);
    } else if (keep) {
        idle->kind = H1_IDLE;
        idle->fd = fd;
        snprintf(idle->key, sizeof idle->key, "%s", h->key);
        idle->next = c->idle;
        c->idle = idle;
        c->owner[fd] = &idle->kind;
        /* Idle, it is watched for reading only: anything arriving then means it closed. */
        if (h->events != EPOLLIN) {
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
            epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev);
        }
    }
    h->cb(h->ud, &res);
    h1_free(h);
}

static void h1_fail(h1_t *h, const char *fmt, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, what);
    h1_end(h, msg);
}

/* A socket for h: a pooled one to the same address, else a new connection started. */
static int h1_connect(h1_t *h)
{
    mk_httpclient_loop_t *c = h->c;
    for (h1_idle_t **p = &c->idle; *p; p = &(*p)->next) {
        if (strcmp((*p)->key, h->key) != 0)
            continue;
        h1_idle_t *idle = *p;
        *p = idle->next;
        h->fd = idle->fd;
        h->reused = true;
        h->events = EPOLLIN;
        c->owner[h->fd] = &h->kind;
        free(idle);
        return 0;
    }
    h->reused = false;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || h1_own(c, h->fd, &h->kind) != 0) {
        snprintf(h->error, sizeof h->error, "cannot open a socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    h->events = 0;
    if (connect(h->fd, (struct sockaddr *)&h->addr, sizeof h->addr) == 0) {
        h->connecting = false;
        return 0;
    }
    if (errno != EINPROGRESS) {
        snprintf(h->error, sizeof h->error, "Failed to connect to %s after 0 ms: %s", h->key,
                 strerror(errno));
        return -1;
    }
    h->connecting = true;
    h1_watch(h, EPOLLOUT);
    return 0;
}

static void h1_write(h1_t *h);

/* The pooled connection was closed by the upstream as we reused it: once more, on a new one.
 * False when that cannot start (h->error says why). */
static bool h1_retry(h1_t *h)
{
    h1_close_fd(h->c, h->fd);
    h->fd = -1;
    h->out_off = 0;
    h->events = 0;
    if (h1_connect(h) != 0)
        return false;
    if (!h->connecting)
        h1_write(h);
    else
        arm_at(h->c, h->connect_deadline_ns);
    return true;
}

/* Sends what is left of the request; then waits for the answer. A failure is noted for the next
 * turn (this runs inside mk_httpclient_loop_send too, where no callback may run). */
static void h1_write(h1_t *h)
{
    while (h->out_off < h->out_len) {
        ssize_t n = send(h->fd, h->out + h->out_off, h->out_len - h->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            h->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            h1_watch(h, EPOLLIN | EPOLLOUT);
            return;
        }
        int e = errno;
        if (h->reused && h->in_len == 0 && (e == EPIPE || e == ECONNRESET)) {
            h->reused = false;
            if (!h1_retry(h))
                arm(h->c, 0);
            return;
        }
        snprintf(h->error, sizeof h->error, "Send failure: %s", strerror(e));
        arm(h->c, 0);
        return;
    }
    h1_watch(h, EPOLLIN);
}

static bool h1_name_is(const h1_t *h, const hdr_at_t *a, const char *name)
{
    return a->name_len == strlen(name) && strncasecmp(h->in + a->name_at, name, a->name_len) == 0;
}

/* Parses the status line and headers once they are all in; false while incomplete or failed
 * (h->failed says which). */
static bool h1_head(h1_t *h)
{
    char *end = memmem(h->in, h->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (h->in_len > MAX_HEADER_BYTES) {
            h->failed = true;
            snprintf(h->error, sizeof h->error, "answer headers over 64 KiB");
        }
        return false;
    }
    if (h->in_len < 12 || memcmp(h->in, "HTTP/1.", 7) != 0 || h->in[8] != ' ') {
        h->failed = true;
        snprintf(h->error, sizeof h->error, "Unsupported HTTP version in response");
        return false;
    }
    h->status = atoi(h->in + 9);
    if (h->status >= 100 && h->status < 200) { /* 100 Continue and the like: skip them */
        size_t skip = (size_t)(end + 4 - h->in);
        memmove(h->in, h->in + skip, h->in_len - skip);
        h->in_len -= skip;
        return h1_head(h);
    }
    if (h->in[7] == '0')
        h->close_after = true;
    h->hdr_end = (size_t)(end + 4 - h->in);
    h->nhdrs = 0;
    h->clen = -1;
    char *line = memchr(h->in, '\n', h->hdr_end) + 1;
    while (line < end + 2) {
        char *eol = memchr(line, '\n', (size_t)(end + 4 - line));
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon != NULL && h->nhdrs < MAX_RESP_HEADERS) {
            hdr_at_t *a = &h->hdrs[h->nhdrs++];
            a->name_at = (size_t)(line - h->in);
            a->name_len = trim(h->in, &a->name_at, (size_t)(colon - line));
            a->value_at = (size_t)(colon + 1 - h->in);
            a->value_len = trim(h->in, &a->value_at, (size_t)(eol - colon - 1));
            const char *v = h->in + a->value_at;
            if (h1_name_is(h, a, "Content-Length"))
                h->clen = strtoll(v, NULL, 10);
            else if (h1_name_is(h, a, "Transfer-Encoding") && a->value_len >= 7 &&
                     strncasecmp(v + a->value_len - 7, "chunked", 7) == 0)
                h->chunked = true;
            else if (h1_name_is(h, a, "Connection") && a->value_len == 5 &&
                     strncasecmp(v, "close", 5) == 0)
                h->close_after = true;
        }
        line = eol + 1;
    }
    h->chunk_at = h->hdr_end;
    h->done_hdrs = true;
    return true;
}

/* Decodes the chunks that are complete; true once the last one (and the trailers) are in. */
static bool h1_chunks(h1_t *h)
{
    for (;;) {
        char *p = h->in + h->chunk_at;
        size_t left = h->in_len - h->chunk_at;
        char *eol = memmem(p, left, "\r\n", 2);
        if (eol == NULL)
            return false;
        unsigned long long size = strtoull(p, NULL, 16);
        size_t need = (size_t)(eol + 2 - p) + size + 2;
        if (size == 0) {
            /* Trailers, if any, end with an empty line. */
            char *fin = memmem(eol, (size_t)(h->in + h->in_len - eol), "\r\n\r\n", 4);
            if (eol + 2 <= h->in + h->in_len && memcmp(eol, "\r\n\r\n", 4) == 0)
                return true;
            return fin != NULL;
        }
        if (left < need)
            return false;
        if (h->body_len + size > h->c->max_body) {
            h->failed = true;
            return false;
        }
        if (!grow(&h->body, &h->body_cap, h->body_len + size, h->c->max_body + 1)) {
            h->failed = true;
            return false;
        }
        memcpy(h->body + h->body_len, eol + 2, size);
        h->body_len += size;
        h->chunk_at += need;
    }
}

/* Whether the whole answer is in (h is ended then); false when more is needed or h failed. */
static bool h1_complete(h1_t *h, bool eof)
{
    if (!h->done_hdrs && !h1_head(h))
        return false;
    if (h->head || h->status == 204 || h->status == 304) {
        h->in_len = h->hdr_end;
        return true;
    }
    if (h->chunked) {
        bool done = h1_chunks(h);
        if (h->failed)
            snprintf(h->error, sizeof h->error, "answer body over %zu bytes", h->c->max_body);
        return done;
    }
    size_t have = h->in_len - h->hdr_end;
    if (h->clen > (long long)h->c->max_body || (h->clen < 0 && have > h->c->max_body)) {
        snprintf(h->error, sizeof h->error, "answer body over %zu bytes", h->c->max_body);
        h->failed = true;
        return false;
    }
    if (h->clen >= 0) {
        if (have > (size_t)h->clen) { /* more than announced: do not reuse the socket */
            h->in_len = h->hdr_end + (size_t)h->clen;
            h->close_after = true;
        }
        return have >= (size_t)h->clen;
    }
    h->close_after = true; /* the body ends with the connection */
    return eof;
}

static void h1_read(h1_t *h)
{
    bool eof = false;
    for (;;) {
        if (!grow(&h->in, &h->in_cap, h->in_len + 16384,
                  h->c->max_body + MAX_HEADER_BYTES + 16384)) {
            char msg[96];
            snprintf(msg, sizeof msg, "answer body over %zu bytes", h->c->max_body);
            h1_end(h, msg);
            return;
        }
        ssize_t n = recv(h->fd, h->in + h->in_len, h->in_cap - h->in_len, 0);
        if (n > 0) {
            h->in_len += (size_t)n;
            if ((size_t)n < h->in_cap - h->in_len + (size_t)n)
                break; /* the socket is drained for now */
            continue;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        if (errno == EAGAIN)
            break;
        h1_fail(h, "Recv failure: %s", strerror(errno));
        return;
    }
    if (h1_complete(h, eof)) {
        h1_end(h, NULL);
        return;
    }
    if (h->failed) {
        h1_end(h, h->error);
        return;
    }
    if (!eof)
        return;
    if (h->in_len == 0 && h->reused) {
        h->reused = false;
        if (!h1_retry(h))
            h1_end(h, h->error);
        return;
    }
    h1_end(h, h->in_len == 0 ? "Empty reply from server"
                             : "Connection closed before the answer was complete");
}

static void h1_event(h1_t *h, uint32_t events)
{
    if (h->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLOUT))) {
            char msg[200];
            snprintf(msg, sizeof msg, "Failed to connect to %s after %.0f ms: %s", h->key,
                     since_ms(&h->started), strerror(err ? err : ECONNREFUSED));
            h1_end(h, msg);
            return;
        }
        h->connecting = false;
    }
    if (h->out_off < h->out_len) {
        h1_write(h);
        if (h->out_off < h->out_len || h->error[0])
            return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        h1_read(h);
}

/* Timeouts and errors noted for the next turn; then the timer for the soonest deadline. */
static void h1_sweep(mk_httpclient_loop_t *c)
{
    int64_t now = mono_ns(), soonest = 0;
    h1_t *next;
    for (h1_t *h = c->h1s; h; h = next) {
        next = h->next;
        if (h->error[0]) {
            h1_end(h, h->error);
            continue;
        }
        int64_t due = h->connecting && h->connect_deadline_ns < h->deadline_ns
                          ? h->connect_deadline_ns
                          : h->deadline_ns;
        if (now >= due) {
            char msg[160];
            if (h->connecting)
                snprintf(msg, sizeof msg, "Connection timed out after %.0f milliseconds",
                         since_ms(&h->started));
            else
                snprintf(msg, sizeof msg,
                         "Operation timed out after %u milliseconds with %zu bytes received",
                         h->timeout_ms, h->in_len > h->hdr_end ? h->in_len - h->hdr_end : 0);
            h1_end(h, msg);
            continue;
        }
        if (soonest == 0 || due < soonest)
            soonest = due;
    }
    if (soonest != 0)
        arm_at(c, soonest);
}

/* "http://a.b.c.d[:port]/path..." into addr, key and the request target; false otherwise. */
static bool h1_url(const char *url, struct sockaddr_in *addr, char *key, size_t keylen,
                   const char **target, char *authority, size_t authlen)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *host = url + 7, *end = host + strcspn(host, "/?#");
    const char *colon = memchr(host, ':', (size_t)(end - host));
    size_t hlen = (size_t)((colon ? colon : end) - host);
    char ip[INET_ADDRSTRLEN];
    if (hlen == 0 || hlen >= sizeof ip || (size_t)(end - host) >= authlen)
        return false;
    memcpy(ip, host, hlen);
    ip[hlen] = '\0';
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &addr->sin_addr) != 1)
        return false;
    long port = 80;
    if (colon) {
        char *e;
        port = strtol(colon + 1, &e, 10);
        if (e != end || port <= 0 || port > 65535)
            return false;
    }
    addr->sin_port = htons((uint16_t)port);
    snprintf(key, keylen, "%s port %ld", ip, port);
    memcpy(authority, host, (size_t)(end - host));
    authority[end - host] = '\0';
    *target = *end == '/' ? end : NULL;
    return *end == '/' || *end == '\0';
}

/* Starts req on the plain path when it applies: 1 started, 0 not applicable, <0 an error. */
static int h1_send(mk_httpclient_loop_t *c, const mk_httpclient_loop_req_t *req, const char *method,
                   uint32_t timeout, uint32_t connect, mk_httpclient_loop_cb cb, void *ud,
                   mk_err_t *err)
{
    struct sockaddr_in addr;
    char key[64], authority[300];
    const char *target;
    if (!h1_url(req->url, &addr, key, sizeof key, &target, authority, sizeof authority))
        return 0;
    h1_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
    h->kind = H1_ACTIVE;
    h->c = c;
    h->fd = -1;
    h->addr = addr;
    snprintf(h->key, sizeof h->key, "%s", key);
    h->head = strcmp(method, "HEAD") == 0;
    h->cb = cb;
    h->ud = ud;
    h->timeout_ms = timeout;
    size_t need =
        strlen(method) + strlen(target ? target : "/") + strlen(authority) + 64 + req->body_len;
    for (size_t i = 0; i < req->n_headers; i++)
        need += strlen(req->headers[i]) + 2;
    h->out = malloc(need);
    if (h->out == NULL) {
        free(h);
        return mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
    }
    char *o = h->out;
    o += sprintf(o, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target ? target : "/", authority);
    for (size_t i = 0; i < req->n_headers; i++)
        o += sprintf(o, "%s\r\n", req->headers[i]);
    if (req->body != NULL)
        o += sprintf(o, "Content-Length: %zu\r\n", req->body_len);
    o += sprintf(o, "\r\n");
    if (req->body_len) {
        memcpy(o, req->body, req->body_len);
        o += req->body_len;
    }
    h->out_len = (size_t)(o - h->out);
    clock_gettime(CLOCK_MONOTONIC, &h->started);
    int64_t now = mono_ns();
    h->deadline_ns = now + (int64_t)timeout * 1000000;
    h->connect_deadline_ns = now + (int64_t)connect * 1000000;
    h->next = c->h1s;
    if (c->h1s)
        c->h1s->prev = h;
    c->h1s = h;
    c->in_flight++;
    if (h1_connect(h) != 0) {
        arm(c, 0); /* ends with h->error on the next turn */
        return 1;
    }
    if (!h->connecting)
        h1_write(h);
    arm_at(c, h->connecting ? h->connect_deadline_ns : h->deadline_ns);
    return 1;
}

void mk_httpclient_loop_process(mk_httpclient_loop_t *c)
{
    struct epoll_event evs[64];
    int n = epoll_wait(c->epfd, evs, 64, 0);
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == c->tfd) {
            uint64_t ticks;
            if (read(c->tfd, &ticks, sizeof ticks) < 0) {
                /* Re-armed meanwhile: nothing is due yet. */
                continue;
            }
            c->armed_ns = 0;
            act(c, CURL_SOCKET_TIMEOUT, 0);
            continue;
        }
        int *own = (size_t)fd < c->nowner ? c->owner[fd] : NULL;
        if (own != NULL && *own == H1_ACTIVE) {
            h1_event((h1_t *)own, evs[i].events);
            continue;
        }
        if (own != NULL) { /* an idle plain socket spoke: the upstream closed it */
            for (h1_idle_t **p = &c->idle; *p; p = &(*p)->next)
                if (*p == (h1_idle_t *)own) {
                    *p = (*p)->next;
                    break;
                }
            h1_close_fd(c, fd);
            free(own);
            continue;
        }
        if ((size_t)fd < c->nwatched && (c->watched[fd] & PARKED)) {
            /* An idle pooled connection spoke (the upstream closed it): stop watching; curl
             * finds it dead when it next looks. */
            epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
            c->watched[fd] = 0;
            continue;
        }
        int flags = 0;
        if (evs[i].events & EPOLLIN)
            flags |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            flags |= CURL_CSELECT_ERR;
        act(c, fd, flags);
    }
    drain_done(c, false);
    h1_sweep(c);
}

int mk_httpclient_loop_fd(const mk_httpclient_loop_t *c)
{
    return c->epfd;
}

size_t mk_httpclient_loop_in_flight(const mk_httpclient_loop_t *c)
{
    return c->in_flight;
}

int mk_httpclient_loop_new(const mk_httpclient_loop_config_t *cfg, mk_httpclient_loop_t **out,
                           mk_err_t *err)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    mk_httpclient_loop_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    c->multi = curl_multi_init();
    c->max_body = cfg && cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c->tfd};
    if (c->epfd < 0 || c->tfd < 0 || c->multi == NULL ||
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->tfd, &ev) < 0) {
        mk_httpclient_loop_free(c);
        return mk_err_set(err, MK_ENOMEM, "httpclient: cannot set up a loop client");
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                      (long)(cfg && cfg->max_conns ? cfg->max_conns : DEFAULT_MAX_CONNS));
    *out = c;
    return 0;
}

void mk_httpclient_loop_free(mk_httpclient_loop_t *c)
{
    if (c == NULL)
        return;
    while (c->xfers != NULL)
        xfer_end(c->xfers, (CURLcode)-1);
    while (c->h1s != NULL)
        h1_end(c->h1s, "stopped");
    while (c->idle != NULL) {
        h1_idle_t *i = c->idle;
        c->idle = i->next;
        close(i->fd);
        free(i);
    }
    free(c->owner);
    c->ended = NULL; /* still in c->xfers: ended below */
    for (size_t i = 0; i < c->nspare; i++)
        curl_easy_cleanup(c->spare[i]);
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->tfd >= 0)
        close(c->tfd);
    free(c->watched);
    free(c);
}

static bool is_http_url(const char *u)
{
    return u != NULL && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

int mk_httpclient_loop_send(mk_httpclient_loop_t *c, const mk_httpclient_loop_req_t *req,
                            mk_httpclient_loop_cb cb, void *ud, mk_err_t *err)
{
    if (!is_http_url(req->url))
        return mk_err_set(err, MK_EINVAL, "httpclient: only http:// and https:// URLs");
    {
        uint32_t t = req->timeout_ms ? req->timeout_ms : MK_HTTPCLIENT_LOOP_DEFAULT_TIMEOUT_MS;
        if (t > MK_HTTPCLIENT_LOOP_MAX_TIMEOUT_MS)
            t = MK_HTTPCLIENT_LOOP_MAX_TIMEOUT_MS;
        uint32_t ct = req->connect_timeout_ms ? req->connect_timeout_ms : DEFAULT_CONNECT_MS;
        int started = h1_send(c, req, req->method && req->method[0] ? req->method : "GET", t,
                              ct > t ? t : ct, cb, ud, err);
        if (started != 0)
            return started < 0 ? started : 0;
    }
    xfer_t *x = calloc(1, sizeof *x);
    if (x == NULL)
        return mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
    x->c = c;
    x->cb = cb;
    x->ud = ud;
    x->easy = c->nspare ? c->spare[--c->nspare] : curl_easy_init();
    if (x->easy == NULL)
        goto oom;
    for (size_t i = 0; i < req->n_headers; i++) {
        struct curl_slist *l = curl_slist_append(x->headers, req->headers[i]);
        if (l == NULL)
            goto oom;
        x->headers = l;
    }
    /* curl's own additions nobody asked for: Expect: 100-continue (a round trip) and Accept. */
    struct curl_slist *l = curl_slist_append(x->headers, "Expect:");
    if (l == NULL)
        goto oom;
    x->headers = l;
    if (req->body != NULL) {
        x->body = malloc(req->body_len ? req->body_len : 1);
        if (x->body == NULL)
            goto oom;
        memcpy(x->body, req->body, req->body_len);
    }
    uint32_t timeout = req->timeout_ms ? req->timeout_ms : MK_HTTPCLIENT_LOOP_DEFAULT_TIMEOUT_MS;
    if (timeout > MK_HTTPCLIENT_LOOP_MAX_TIMEOUT_MS)
        timeout = MK_HTTPCLIENT_LOOP_MAX_TIMEOUT_MS;
    uint32_t connect = req->connect_timeout_ms ? req->connect_timeout_ms : DEFAULT_CONNECT_MS;
    if (connect > timeout)
        connect = timeout;
    const char *method = req->method && req->method[0] ? req->method : "GET";
    CURL *h = x->easy;
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, x);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, c);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, req->insecure ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, req->insecure ? 0L : 2L);
    /* Every method option is set, since a recycled handle keeps the previous transfer's. */
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (x->body != NULL) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &x->started);
    c->adding = true;
    CURLMcode mc = curl_multi_add_handle(c->multi, h);
    c->adding = false;
    if (mc != CURLM_OK)
        goto oom;
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    c->in_flight++;
    /* Start it now rather than on the next turn of the loop (saves a timer round trip per
     * request). What ends at once (a refused connection) is handed over on the next turn. */
    act(c, CURL_SOCKET_TIMEOUT, 0);
    drain_done(c, true);
    return 0;
oom:
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
    return mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
}
