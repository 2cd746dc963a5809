/* h2o-based HTTP server: worker threads, listeners, TLS, request view and responses. */
#include "httpd/httpd.h"

#include <h2o.h>
#include <h2o/http2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Distinct delay values get their own h2o timeout list (entries in one list share a duration, so
 * linking is O(1)); past this many, delays are rounded up to coarser steps. */
#define MAX_DELAY_LISTS 256

typedef struct worker {
    mk_httpd_t *server;
    unsigned index;
    int listen_fd;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    uint64_t next_req;
    struct {
        uint32_t ms;
        h2o_timeout_t timeout;
    } delays[MAX_DELAY_LISTS];
    size_t ndelays;
} worker_t;

struct mk_httpd {
    mk_httpd_config_t cfg;
    mk_httpd_handler_cb cb;
    void *ud;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    SSL_CTX *ssl_ctx;
    unsigned nworkers;
    worker_t *workers;
    int port;
    atomic_bool stopping;
    bool started;
    char id_prefix[12];
};

struct mk_httpd_req {
    h2o_req_t *req;
    worker_t *worker;
    struct timespec started;
    mk_str_t id;
};

typedef struct handler {
    h2o_handler_t super;
    mk_httpd_t *server;
} handler_t;

/* A response waiting for its delay; lives in the request's pool. */
typedef struct delayed {
    h2o_timeout_entry_t entry;
    mk_httpd_req_t *r;
    int status;
    h2o_iovec_t body;
    mk_httpd_send_opts_t opts;
} delayed_t;

/* A body dribbling out in chunks: the generator h2o pulls from, and the timer between chunks. */
typedef struct dribble {
    h2o_generator_t super;
    h2o_timeout_entry_t entry;
    mk_httpd_req_t *r;
    h2o_iovec_t body;
    size_t sent;
    uint32_t chunks, index;
    uint32_t interval_ms;
    bool done;
} dribble_t;

static worker_t *worker_of(h2o_req_t *req)
{
    return (worker_t *)((char *)req->conn->ctx - offsetof(worker_t, ctx));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    handler_t *h = (handler_t *)self;
    mk_httpd_req_t *r = h2o_mem_alloc_pool(&req->pool, sizeof *r);
    r->req = req;
    r->worker = worker_of(req);
    r->id = (mk_str_t){NULL, 0};
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    h->server->cb(h->server->ud, r);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    worker_t *w = listener->data;
    if (err != NULL)
        return;
    /* Drain a few pending connections per wake-up; the rest trigger another event. */
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            return;
        h2o_accept(&w->accept_ctx, sock);
    }
}

static int open_listener(const char *host, int port, int *bound_port, mk_err_t *err)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host ? host : "0.0.0.0", &addr.sin_addr) != 1)
        return mk_err_set(err, MK_EINVAL, "listen address '%s' is not an IPv4 address", host);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mk_err_set(err, MK_EIO, "socket: %s", strerror(errno));
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    /* Accepted sockets inherit TCP_NODELAY: small responses must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return mk_err_set(err, MK_EIO, "cannot listen on %s:%d: %s", host ? host : "0.0.0.0", port,
                          strerror(e));
    }
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    *bound_port = ntohs(addr.sin_port);
    return fd;
}

static int setup_tls(mk_httpd_t *h, mk_err_t *err)
{
    h->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (h->ssl_ctx == NULL)
        return mk_err_set(err, MK_EINTERNAL, "TLS: cannot create context");
    SSL_CTX_set_min_proto_version(h->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(h->ssl_ctx, SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(h->ssl_ctx, h->cfg.tls_cert) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
        return mk_err_set(err, MK_EINVAL, "HTTP_TLS_CERT_FILE: cannot load '%s': %s",
                          h->cfg.tls_cert, buf);
    }
    if (SSL_CTX_use_PrivateKey_file(h->ssl_ctx, h->cfg.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(h->ssl_ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
        return mk_err_set(err, MK_EINVAL, "HTTP_TLS_KEY_FILE: cannot load '%s': %s", h->cfg.tls_key,
                          buf);
    }
    h2o_ssl_register_alpn_protocols(h->ssl_ctx, h2o_http2_alpn_protocols);
    return 0;
}

int mk_httpd_new(const mk_httpd_config_t *cfg, mk_httpd_handler_cb cb, void *ud, mk_httpd_t **out,
                 mk_err_t *err)
{
    int rc = 0;
    mk_httpd_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    h->cfg = *cfg;
    h->cb = cb;
    h->ud = ud;
    h->nworkers = cfg->workers ? cfg->workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (h->nworkers == 0)
        h->nworkers = 1;
    snprintf(h->id_prefix, sizeof h->id_prefix, "%08lx",
             (unsigned long)((uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16)));

    h2o_config_init(&h->globalconf);
    h->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("mockarty"));
    if (cfg->max_body_bytes)
        h->globalconf.max_request_entity_size = cfg->max_body_bytes;
    if (cfg->req_timeout_ms)
        h->globalconf.http1.req_timeout = cfg->req_timeout_ms;
    h->hostconf =
        h2o_config_register_host(&h->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(h->hostconf, "/", 0);
    handler_t *handler = (handler_t *)h2o_create_handler(pathconf, sizeof *handler);
    handler->super.on_req = on_req;
    handler->server = h;

    if (cfg->tls_cert && cfg->tls_key) {
        rc = setup_tls(h, err);
        if (rc)
            goto fail;
    }

    h->workers = calloc(h->nworkers, sizeof *h->workers);
    if (h->workers == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < h->nworkers; i++)
        h->workers[i].listen_fd = -1;
    h->port = cfg->port;
    for (unsigned i = 0; i < h->nworkers; i++) {
        worker_t *w = &h->workers[i];
        w->server = h;
        w->index = i;
        int fd = open_listener(cfg->host, h->port, &h->port, err);
        if (fd < 0) {
            rc = fd;
            goto fail;
        }
        w->listen_fd = fd;
    }
    *out = h;
    return 0;
fail:
    mk_httpd_free(h);
    return rc;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    while (!atomic_load_explicit(&w->server->stopping, memory_order_relaxed))
        h2o_evloop_run(w->loop, 100);

    /* Stop accepting and give in-flight responses a moment. (h2o 2.2's
     * h2o_context_request_shutdown leaves a timer linked that h2o_context_dispose then asserts
     * on, so connections are not asked to close first.) */
    h2o_socket_read_stop(w->listener);
    h2o_socket_close(w->listener);
    w->listener = NULL;
    for (int i = 0; i < 20; i++)
        h2o_evloop_run(w->loop, 10);
    return NULL;
}

int mk_httpd_start(mk_httpd_t *h, mk_err_t *err)
{
    for (unsigned i = 0; i < h->nworkers; i++) {
        worker_t *w = &h->workers[i];
        w->loop = h2o_evloop_create();
        h2o_context_init(&w->ctx, w->loop, &h->globalconf);
        w->accept_ctx.ctx = &w->ctx;
        w->accept_ctx.hosts = h->globalconf.hosts;
        w->accept_ctx.ssl_ctx = h->ssl_ctx;
        w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
        w->listen_fd = -1; /* owned by the socket now */
        w->listener->data = w;
        h2o_socket_read_start(w->listener, on_accept);
    }
    for (unsigned i = 0; i < h->nworkers; i++) {
        int e = pthread_create(&h->workers[i].tid, NULL, worker_main, &h->workers[i]);
        if (e != 0) {
            atomic_store(&h->stopping, true);
            for (unsigned j = 0; j < i; j++)
                pthread_join(h->workers[j].tid, NULL);
            h->nworkers = i;
            return mk_err_set(err, MK_EINTERNAL, "cannot start worker thread: %s", strerror(e));
        }
    }
    h->started = true;
    return 0;
}

void mk_httpd_stop(mk_httpd_t *h)
{
    if (h == NULL || !h->started)
        return;
    atomic_store(&h->stopping, true);
    for (unsigned i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i].tid, NULL);
    h->started = false;
}

void mk_httpd_free(mk_httpd_t *h)
{
    if (h == NULL)
        return;
    mk_httpd_stop(h);
    if (h->workers) {
        for (unsigned i = 0; i < h->nworkers; i++) {
            worker_t *w = &h->workers[i];
            if (w->listen_fd >= 0)
                close(w->listen_fd);
            if (w->loop == NULL)
                continue;
            if (w->listener)
                h2o_socket_close(w->listener);
            for (size_t d = 0; d < w->ndelays; d++)
                h2o_timeout_dispose(w->loop, &w->delays[d].timeout);
            h2o_context_dispose(&w->ctx);
            h2o_evloop_destroy(w->loop);
        }
        free(h->workers);
    }
    h2o_config_dispose(&h->globalconf);
    if (h->ssl_ctx)
        SSL_CTX_free(h->ssl_ctx);
    free(h);
}

int mk_httpd_port(const mk_httpd_t *h)
{
    return h->port;
}

unsigned mk_httpd_workers(const mk_httpd_t *h)
{
    return h->nworkers;
}

unsigned mk_httpd_req_worker(const mk_httpd_req_t *r)
{
    return r->worker->index;
}

void mk_httpd_req_view(mk_httpd_req_t *r, mk_request_t *view)
{
    h2o_req_t *req = r->req;
    memset(view, 0, sizeof *view);
    mk_request_init(view);
    view->method = (mk_str_t){req->method.base, req->method.len};
    if (req->query_at != SIZE_MAX) {
        view->path = (mk_str_t){req->path.base, req->query_at};
        view->query =
            (mk_str_t){req->path.base + req->query_at + 1, req->path.len - req->query_at - 1};
    } else {
        view->path = (mk_str_t){req->path.base, req->path.len};
        view->query = (mk_str_t){"", 0};
    }
    size_t n = req->headers.size;
    mk_header_t *hdrs = n ? h2o_mem_alloc_pool(&req->pool, n * sizeof *hdrs) : NULL;
    for (size_t i = 0; i < n; i++) {
        const h2o_header_t *src = &req->headers.entries[i];
        hdrs[i].name =
            (mk_str_t){src->orig_name ? src->orig_name : src->name->base, src->name->len};
        hdrs[i].value = (mk_str_t){src->value.base, src->value.len};
    }
    view->headers = hdrs;
    view->nheaders = n;
    view->body =
        req->entity.base ? (mk_str_t){req->entity.base, req->entity.len} : (mk_str_t){"", 0};
}

void *mk_httpd_req_alloc(mk_httpd_req_t *r, size_t size)
{
    return h2o_mem_alloc_pool(&r->req->pool, size);
}

static const char hexdigits[] = "0123456789abcdef";

mk_str_t mk_httpd_req_id(mk_httpd_req_t *r)
{
    if (r->id.base)
        return r->id;
    h2o_req_t *req = r->req;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0 && req->headers.entries[i].value.len > 0 &&
        req->headers.entries[i].value.len <= 128) {
        r->id = (mk_str_t){req->headers.entries[i].value.base, req->headers.entries[i].value.len};
        return r->id;
    }
    /* prefix-worker-counter, formatted by hand: this runs for every request. */
    char *p = h2o_mem_alloc_pool(&req->pool, 40);
    size_t len = strlen(r->worker->server->id_prefix);
    memcpy(p, r->worker->server->id_prefix, len);
    p[len++] = '-';
    p[len++] = hexdigits[r->worker->index & 15];
    p[len++] = '-';
    uint64_t n = ++r->worker->next_req;
    char tmp[17];
    int k = 0;
    do {
        tmp[k++] = hexdigits[n & 15];
        n >>= 4;
    } while (n);
    while (k)
        p[len++] = tmp[--k];
    r->id = (mk_str_t){p, len};
    return r->id;
}

double mk_httpd_req_elapsed_ms(const mk_httpd_req_t *r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - r->started.tv_sec) * 1e3 +
           (double)(now.tv_nsec - r->started.tv_nsec) / 1e6;
}

const char *mk_httpd_req_protocol(const mk_httpd_req_t *r)
{
    return r->req->version >= 0x200 ? "HTTP/2" : r->req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1";
}

void mk_httpd_add_header(mk_httpd_req_t *r, mk_str_t name, mk_str_t value)
{
    h2o_req_t *req = r->req;
    if (name.len == 0)
        return;
    /* HTTP/2 wants lower-case names; HTTP/1 clients see the case the mock author chose. */
    char *lower = h2o_mem_alloc_pool(&req->pool, name.len * 2 + value.len + 1);
    char *orig = lower + name.len;
    char *val = orig + name.len;
    for (size_t i = 0; i < name.len; i++) {
        char c = name.base[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    memcpy(orig, name.base, name.len);
    if (value.len)
        memcpy(val, value.base, value.len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, lower, name.len, 1, orig, val, value.len);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

static void send_now(mk_httpd_req_t *r, int status, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    mk_str_t id = mk_httpd_req_id(r);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0,
                          "X-Request-Id", id.base, id.len);
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200) ||
                   h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    req->res.content_length = no_body ? SIZE_MAX : body.len;
    if (no_body && status != 204 && status != 304 && status >= 200)
        req->res.content_length = body.len; /* HEAD: advertise the length, send nothing */
    h2o_start_response(req, &generator);
    if (no_body)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

static h2o_iovec_t copy_body(h2o_req_t *req, mk_str_t body)
{
    if (body.len == 0)
        return h2o_iovec_init("", 0);
    char *p = h2o_mem_alloc_pool(&req->pool, body.len);
    memcpy(p, body.base, body.len);
    return h2o_iovec_init(p, body.len);
}

void mk_httpd_respond(mk_httpd_req_t *r, int status, mk_str_t body)
{
    send_now(r, status, copy_body(r->req, body));
}

static h2o_timeout_t *delay_list(worker_t *w, uint32_t ms);

/* Acts the fault on the socket itself, then lets h2o answer into the dead connection: its write
 * fails and it closes and frees the connection as after any peer reset, so nothing leaks. */
static void send_fault(mk_httpd_req_t *r, mk_httpd_fault_t fault)
{
    h2o_conn_t *conn = r->req->conn;
    h2o_socket_t *sock = conn->callbacks->get_socket ? conn->callbacks->get_socket(conn) : NULL;
    int fd = sock ? h2o_socket_get_fd(sock) : -1;
    if (fd >= 0) {
        static const char malformed[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                        "lskdu018973t09sylgasjkfg1][]'./.sdlv";
        unsigned char noise[512];
        ssize_t ignored = 0;
        switch (fault) {
        case MK_HTTPD_FAULT_MALFORMED_CHUNK:
            ignored = write(fd, malformed, sizeof malformed - 1);
            break;
        case MK_HTTPD_FAULT_RANDOM_THEN_CLOSE:
            for (size_t i = 0; i < sizeof noise; i++)
                noise[i] = (unsigned char)(r->worker->next_req * 131 + i * 7919 + (i >> 3));
            ignored = write(fd, noise, sizeof noise);
            break;
        default:
            break;
        }
        (void)ignored;
        if (fault == MK_HTTPD_FAULT_RESET) {
            /* Disconnecting a TCP socket with AF_UNSPEC aborts it: the peer gets a RST. */
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            struct sockaddr sa = {.sa_family = AF_UNSPEC};
            if (connect(fd, &sa, sizeof sa) != 0)
                shutdown(fd, SHUT_RDWR);
        } else {
            shutdown(fd, SHUT_RDWR);
        }
    }
    r->req->http1_is_persistent = 0;
    send_now(r, 500, h2o_iovec_init("", 0));
}

static void dribble_next(dribble_t *d);

static void on_dribble_timer(h2o_timeout_entry_t *entry)
{
    dribble_t *d = (dribble_t *)((char *)entry - offsetof(dribble_t, entry));
    dribble_next(d);
}

/* h2o is ready for more: wait the interval, then send the next chunk. */
static void on_dribble_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    dribble_t *d = (dribble_t *)self;
    (void)req;
    if (!d->done)
        h2o_timeout_link(d->r->worker->loop, delay_list(d->r->worker, d->interval_ms), &d->entry);
}

static void on_dribble_stop(h2o_generator_t *self, h2o_req_t *req)
{
    dribble_t *d = (dribble_t *)self;
    (void)req;
    d->done = true;
    if (h2o_timeout_is_linked(&d->entry))
        h2o_timeout_unlink(&d->entry);
}

static void on_dribble_dispose(void *p)
{
    on_dribble_stop(p, NULL);
}

static void dribble_next(dribble_t *d)
{
    size_t remaining = d->body.len - d->sent;
    size_t left_chunks = d->chunks - d->index;
    size_t n = left_chunks ? (remaining + left_chunks - 1) / left_chunks : remaining;
    h2o_iovec_t buf = h2o_iovec_init(d->body.base + d->sent, n);
    d->sent += n;
    d->index++;
    bool last = d->sent >= d->body.len || d->index >= d->chunks;
    if (last)
        d->done = true;
    h2o_send(d->r->req, &buf, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void send_dribble(mk_httpd_req_t *r, int status, h2o_iovec_t body,
                         const mk_httpd_send_opts_t *o)
{
    h2o_req_t *req = r->req;
    if (body.len == 0 || o->chunks < 2) {
        send_now(r, status, body);
        return;
    }
    dribble_t *d = h2o_mem_alloc_shared(&req->pool, sizeof *d, on_dribble_dispose);
    memset(d, 0, sizeof *d);
    d->super.proceed = on_dribble_proceed;
    d->super.stop = on_dribble_stop;
    d->entry.cb = on_dribble_timer;
    d->r = r;
    d->body = body;
    d->chunks = o->chunks > body.len ? (uint32_t)body.len : o->chunks;
    d->interval_ms = o->chunks_ms / (d->chunks - 1);
    mk_str_t id = mk_httpd_req_id(r);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0,
                          "X-Request-Id", id.base, id.len);
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = SIZE_MAX; /* chunked on HTTP/1.1 */
    h2o_start_response(req, &d->super);
    dribble_next(d);
}

static void deliver(mk_httpd_req_t *r, int status, h2o_iovec_t body, const mk_httpd_send_opts_t *o)
{
    if (o->fault != MK_HTTPD_FAULT_NONE)
        send_fault(r, o->fault);
    else if (o->chunks > 1)
        send_dribble(r, status, body, o);
    else
        send_now(r, status, body);
}

static void on_delay_done(h2o_timeout_entry_t *entry)
{
    delayed_t *d = (delayed_t *)entry;
    deliver(d->r, d->status, d->body, &d->opts);
}

/* Runs when the request's pool is released; if the client left before the delay ended, the
 * entry is still linked and must not fire on freed memory. */
static void on_delayed_dispose(void *p)
{
    delayed_t *d = p;
    if (h2o_timeout_is_linked(&d->entry))
        h2o_timeout_unlink(&d->entry);
}

static uint32_t round_delay(uint32_t ms)
{
    if (ms > 10000)
        return (ms + 99) / 100 * 100;
    if (ms > 1000)
        return (ms + 9) / 10 * 10;
    return ms;
}

static h2o_timeout_t *delay_list(worker_t *w, uint32_t ms)
{
    ms = round_delay(ms);
    for (size_t i = 0; i < w->ndelays; i++)
        if (w->delays[i].ms == ms)
            return &w->delays[i].timeout;
    if (w->ndelays == MAX_DELAY_LISTS) {
        /* Full: take the closest longer list, else the longest. */
        size_t best = 0;
        for (size_t i = 0; i < w->ndelays; i++) {
            bool longer = w->delays[i].ms >= ms;
            if ((longer && (w->delays[best].ms < ms || w->delays[i].ms < w->delays[best].ms)) ||
                (!longer && w->delays[best].ms < ms && w->delays[i].ms > w->delays[best].ms))
                best = i;
        }
        return &w->delays[best].timeout;
    }
    w->delays[w->ndelays].ms = ms;
    h2o_timeout_init(w->loop, &w->delays[w->ndelays].timeout, ms);
    return &w->delays[w->ndelays++].timeout;
}

void mk_httpd_send(mk_httpd_req_t *r, int status, mk_str_t body, const mk_httpd_send_opts_t *opts)
{
    static const mk_httpd_send_opts_t none = {0};
    const mk_httpd_send_opts_t *o = opts ? opts : &none;
    h2o_req_t *req = r->req;
    if (o->delay_ms == 0) {
        deliver(r, status, copy_body(req, body), o);
        return;
    }
    delayed_t *d = h2o_mem_alloc_shared(&req->pool, sizeof *d, on_delayed_dispose);
    memset(d, 0, sizeof *d);
    d->entry.cb = on_delay_done;
    d->r = r;
    d->status = status;
    d->body = copy_body(req, body);
    d->opts = *o;
    h2o_timeout_link(r->worker->loop, delay_list(r->worker, o->delay_ms), &d->entry);
}

void mk_httpd_respond_after(mk_httpd_req_t *r, int status, mk_str_t body, uint32_t delay_ms)
{
    mk_httpd_send(r, status, body, &(mk_httpd_send_opts_t){.delay_ms = delay_ms});
}
