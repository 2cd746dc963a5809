/* curl's multi interface driven by the caller's loop (see httpclient_loop.h): curl tells us which
 * sockets to watch and when its timer is due; both go into an epoll set of our own (a timerfd for
 * the timer), whose descriptor the caller's loop watches. Easy handles are recycled, so a warm
 * client allocates little per request. */
#include "httpclient/httpclient_loop.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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
    bool adding;   /* inside curl_multi_add_handle: send starts the transfer itself */
    bool acting;   /* inside act(): a "run again now" is done there, not by the timer */
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
