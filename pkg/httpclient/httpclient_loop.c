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
} xfer_t;

struct mk_httpclient_loop {
    CURLM *multi;
    int epfd, tfd;
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

/* curl: watch s for what (or stop watching it). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *socketp)
{
    (void)easy;
    mk_httpclient_loop_t *c = ud;
    if (what == CURL_POLL_REMOVE) {
        /* The socket may already be closed; then the kernel dropped it from the set itself. */
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(c->multi, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.fd = s};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp != NULL) {
        epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev);
    } else {
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev);
        curl_multi_assign(c->multi, s, c);
    }
    return 0;
}

/* curl: call us back after timeout_ms (-1: never). */
static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    mk_httpclient_loop_t *c = ud;
    struct itimerspec its = {0};
    if (timeout_ms == 0) {
        its.it_value.tv_nsec = 1; /* as soon as the loop turns; never from inside curl */
    } else if (timeout_ms > 0) {
        its.it_value.tv_sec = timeout_ms / 1000;
        its.it_value.tv_nsec = (timeout_ms % 1000) * 1000000L;
    }
    timerfd_settime(c->tfd, 0, &its, NULL);
    return 0;
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
    if (c->nspare < SPARE_EASY_MAX) {
        curl_easy_reset(x->easy);
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

static void drain_done(mk_httpclient_loop_t *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode cc = msg->data.result;
        if (x != NULL)
            xfer_end(x, cc);
    }
}

void mk_httpclient_loop_process(mk_httpclient_loop_t *c)
{
    struct epoll_event evs[64];
    int n = epoll_wait(c->epfd, evs, 64, 0);
    int running;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == c->tfd) {
            uint64_t ticks;
            if (read(c->tfd, &ticks, sizeof ticks) < 0) {
                /* Disarmed or re-armed meanwhile: nothing is due. */
            }
            curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            continue;
        }
        int flags = 0;
        if (evs[i].events & EPOLLIN)
            flags |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(c->multi, fd, flags, &running);
    }
    drain_done(c);
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
    for (size_t i = 0; i < c->nspare; i++)
        curl_easy_cleanup(c->spare[i]);
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    if (c->epfd >= 0)
        close(c->epfd);
    if (c->tfd >= 0)
        close(c->tfd);
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
    if (req->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (x->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    clock_gettime(CLOCK_MONOTONIC, &x->started);
    if (curl_multi_add_handle(c->multi, h) != CURLM_OK)
        goto oom;
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    c->in_flight++;
    return 0;
oom:
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
    return mk_err_set(err, MK_ENOMEM, "httpclient: out of memory");
}
