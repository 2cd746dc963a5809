/* h2o-based HTTP server: worker threads, listeners, TLS, request view and responses. */
#include "httpd/httpd.h"
#include "httpd/httpd_loop.h"

#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h> /* HTTP/2 streams' buffered bodies; needs vendor/khash.h */
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
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Distinct delay values get their own h2o timeout list (entries in one list share a duration, so
 * linking is O(1)); past this many, delays are rounded up to coarser steps. */
#define MAX_DELAY_LISTS 256
/* Bodies up to this size per connection are not counted against the body budget, so ordinary
 * requests never touch the shared counters. */
#define BUDGET_SMALL (64 * 1024)
/* How often a worker re-measures what its connections buffer; between two looks a connection can
 * read at most what the network delivers in this time (the slack over the budget). */
#define BUDGET_AUDIT_MS 5
#define CLIENT_BUCKETS  256
/* Offloaded work waiting for a pool thread, at most; past it mk_httpd_offload answers 503. */
#define OFFLOAD_MAX_QUEUED 1024

/* Bytes of one client address counted against the budget (absent when zero). */
typedef struct client_bytes {
    struct client_bytes *next;
    uint8_t addr[16];
    size_t bytes;
} client_bytes_t;

/* The process-wide budget of request bodies buffered in flight, in total and per client. */
typedef struct budget {
    size_t total_max, client_max; /* total_max 0: off */
    pthread_mutex_t mu;
    size_t total;
    client_bytes_t *clients[CLIENT_BUCKETS];
} budget_t;

struct job;

/* The pool of threads that runs mk_httpd_offload work. */
typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    size_t queued;
    bool stop;
    pthread_t *tids;
    unsigned n;
} pool_t;

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
    h2o_linklist_t conns; /* conn_track_t of the open connections (when the budget is on) */
    uint64_t last_audit;
    h2o_multithread_receiver_t jobs_done; /* offloaded work coming back */
    atomic_size_t jobs_outstanding;
    bool receiving;
    size_t inflight; /* requests not yet disposed of (the loop's thread only) */
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
    atomic_bool draining;
    bool started;
    char id_prefix[12];
    budget_t budget;
    atomic_size_t body_rejects;
    pool_t pool;
};

struct mk_httpd_req {
    h2o_req_t *req;
    worker_t *worker;
    struct timespec started;
    mk_str_t id;
    struct job *job; /* set on the request offloaded work sees (then req is NULL) */
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

/* --- body budget ---------------------------------------------------------------------------
 * h2o 2.2 buffers a whole request body before the handler runs (HTTP/1 in the socket's input
 * buffer, HTTP/2 in each stream's), with no hook in between. So every accepted connection has a
 * tracker, and each worker measures, every BUDGET_AUDIT_MS, what its connections hold: the bytes
 * buffered or, while a body with a declared length arrives, its head plus that length (charged at
 * once, so a big upload is refused before it is read). Growth is taken from the budget. An HTTP/1
 * connection that would go over it is answered 503 (not over TLS, where it is just closed) and
 * shut down, so h2o reads only what the kernel already holds and frees the buffer; an HTTP/2
 * stream is refused with RST_STREAM. */

typedef struct conn_track {
    h2o_linklist_t link; /* in worker_t.conns */
    worker_t *w;
    h2o_socket_t *sock;
    struct release_hook *hook; /* of the request being handled, if it was charged */
    h2o_http2_conn_t *h2;      /* the HTTP/2 connection on this socket, once it is one */
    uint8_t addr[16];
    size_t charged;       /* bytes taken from the budgets */
    const char *head_at;  /* input bytes the cached head was parsed from */
    size_t head_declared; /* head length + Content-Length; 0 when none or chunked */
    bool head_complete;
    bool head_chunked;
    bool rejected;
} conn_track_t;

/* Lives in the request's pool: when the request is done, h2o frees its buffered body. */
typedef struct release_hook {
    conn_track_t *t;
} release_hook_t;

static unsigned client_bucket(const uint8_t addr[16])
{
    unsigned hash = 2166136261u;
    for (int i = 0; i < 16; i++)
        hash = (hash ^ addr[i]) * 16777619u;
    return hash % CLIENT_BUCKETS;
}

static client_bytes_t **client_find(budget_t *b, const uint8_t addr[16])
{
    client_bytes_t **p = &b->clients[client_bucket(addr)];
    while (*p && memcmp((*p)->addr, addr, 16) != 0)
        p = &(*p)->next;
    return p;
}

enum { BUDGET_OK, BUDGET_TOTAL, BUDGET_CLIENT };

/* Takes n bytes for addr, or says which limit it would pass. */
static int budget_take(budget_t *b, const uint8_t addr[16], size_t n)
{
    int refused = BUDGET_OK;
    pthread_mutex_lock(&b->mu);
    client_bytes_t **p = client_find(b, addr);
    size_t mine = *p ? (*p)->bytes : 0;
    if (b->total + n > b->total_max)
        refused = BUDGET_TOTAL;
    else if (mine + n > b->client_max)
        refused = BUDGET_CLIENT;
    else if (*p == NULL && (*p = calloc(1, sizeof **p)) == NULL)
        refused = BUDGET_TOTAL; /* out of memory counts as no room */
    if (refused == BUDGET_OK) {
        memcpy((*p)->addr, addr, 16);
        (*p)->bytes += n;
        b->total += n;
    }
    pthread_mutex_unlock(&b->mu);
    return refused;
}

static void budget_give(budget_t *b, const uint8_t addr[16], size_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&b->mu);
    client_bytes_t **p = client_find(b, addr);
    b->total -= n;
    if (*p) {
        (*p)->bytes -= n;
        if ((*p)->bytes == 0) {
            client_bytes_t *gone = *p;
            *p = gone->next;
            free(gone);
        }
    }
    pthread_mutex_unlock(&b->mu);
}

static void track_release(budget_t *b, conn_track_t *t)
{
    budget_give(b, t->addr, t->charged);
    t->charged = 0;
}

static void on_conn_close(void *data)
{
    conn_track_t *t = data;
    track_release(&t->w->server->budget, t);
    if (t->hook)
        t->hook->t = NULL;
    h2o_linklist_unlink(&t->link);
    free(t);
}

static void on_release_hook(void *p)
{
    release_hook_t *hook = p;
    conn_track_t *t = hook->t;
    if (t == NULL)
        return;
    t->hook = NULL;
    if (t->h2)
        return; /* HTTP/2: the next audit measures the streams left */
    /* h2o consumes the request's bytes right after disposing of it; the next audit measures
     * whatever follows (a pipelined request) afresh. */
    track_release(&t->w->server->budget, t);
    t->head_at = NULL;
}

static bool lower_prefix(const char *s, const char *end, const char *lit)
{
    for (; *lit; s++, lit++)
        if (s >= end || (*s | 0x20) != *lit)
            return false;
    return true;
}

/* Parses the HTTP/1 request head at the start of the input (just the framing: where the head
 * ends and how long the body says it is). */
static void parse_head(conn_track_t *t, const char *p, size_t len)
{
    t->head_at = p;
    t->head_declared = 0;
    t->head_complete = false;
    t->head_chunked = false;
    const char *end = p + (len < 65536 ? len : 65536);
    for (const char *line = p; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            return;
        if (nl == line || (nl == line + 1 && line[0] == '\r')) {
            size_t head = (size_t)(nl + 1 - p);
            t->head_complete = true;
            if (t->head_declared)
                t->head_declared += head;
            return;
        }
        if (lower_prefix(line, nl, "content-length:")) {
            const char *v = line + 15;
            while (v < nl && (*v == ' ' || *v == '\t'))
                v++;
            size_t n = 0;
            for (; v < nl && *v >= '0' && *v <= '9' && n < ((size_t)1 << 50); v++)
                n = n * 10 + (size_t)(*v - '0');
            t->head_declared = n;
        } else if (lower_prefix(line, nl, "transfer-encoding:")) {
            t->head_chunked = true; /* h2o accepts chunked only */
        }
        line = nl + 1;
    }
}

/* Bytes the connection has buffered or, for a body on its way, will have. (h2o grows a buffer
 * by doubling, so the memory behind it is at most twice this.) */
static size_t track_demand(conn_track_t *t)
{
    h2o_buffer_t *in = t->sock->input;
    size_t want = in->bytes ? in->size : 0;
    if (want) {
        if (t->head_at != in->bytes || !t->head_complete)
            parse_head(t, in->bytes, in->size);
        if (t->head_complete && t->head_declared > want)
            want = t->head_declared;
    }
    return want <= BUDGET_SMALL ? 0 : want;
}

static size_t format_id(const worker_t *w, char *p);

/* Refuses the body: answers 503 straight on the socket when h2o has not started any answer on
 * it (plain HTTP/1 in the middle of a body), then shuts the socket down either way. */
static void track_reject(worker_t *w, conn_track_t *t, const char *limit, size_t limit_bytes)
{
    int fd = h2o_socket_get_fd(t->sock);
    t->rejected = true;
    atomic_fetch_add(&w->server->body_rejects, 1);
    if (fd < 0)
        return;
    if (t->sock->ssl == NULL && t->head_complete &&
        (t->head_declared ? t->sock->input->size < t->head_declared : t->head_chunked)) {
        char id[40], body[400], msg[700];
        size_t idlen = format_id(w, id);
        int blen = snprintf(body, sizeof body,
                            "{\"error\":\"request bodies in flight would exceed %s (%zu bytes); "
                            "retry later\",\"code\":\"unavailable\",\"request_id\":\"%.*s\"}",
                            limit, limit_bytes, (int)idlen, id);
        int n = snprintf(msg, sizeof msg,
                         "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         "Retry-After: 1\r\nConnection: close\r\nX-Request-Id: %.*s\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         (int)idlen, id, blen, body);
        ssize_t ignored = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
    }
    /* The 503 leaves before the FIN; h2o then reads what is queued, sees the end and frees. */
    shutdown(fd, SHUT_RDWR);
}

/* What an HTTP/2 stream's body holds or, while it arrives, will hold. */
static size_t stream_demand(const h2o_http2_stream_t *s)
{
    size_t n = s->_req_body && s->_req_body->bytes ? s->_req_body->size : 0;
    if (s->state == H2O_HTTP2_STREAM_STATE_RECV_BODY && s->_expected_content_length != SIZE_MAX &&
        s->_expected_content_length > n)
        n = s->_expected_content_length;
    return n;
}

static size_t h2_demand(h2o_http2_conn_t *conn)
{
    size_t want = conn->sock && conn->sock->input->bytes ? conn->sock->input->size : 0;
    h2o_http2_stream_t *s;
    kh_foreach_value(conn->streams, s, { want += stream_demand(s); });
    return want <= BUDGET_SMALL ? 0 : want;
}

/* HTTP/2: over the budget, the stream with the most body still to come is refused as h2o
 * refuses a body over its size limit (RST_STREAM REFUSED_STREAM), until the rest fits. */
static void audit_h2(worker_t *w, conn_track_t *t)
{
    budget_t *b = &w->server->budget;
    h2o_http2_conn_t *conn = t->h2;
    for (;;) {
        size_t want = h2_demand(conn);
        if (want <= t->charged) {
            budget_give(b, t->addr, t->charged - want);
            t->charged = want;
            return;
        }
        if (budget_take(b, t->addr, want - t->charged) == BUDGET_OK) {
            t->charged = want;
            return;
        }
        h2o_http2_stream_t *s, *victim = NULL;
        kh_foreach_value(conn->streams, s, {
            if (s->state == H2O_HTTP2_STREAM_STATE_RECV_BODY &&
                (victim == NULL || stream_demand(s) > stream_demand(victim)))
                victim = s;
        });
        atomic_fetch_add(&w->server->body_rejects, 1);
        if (victim == NULL || conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING) {
            t->rejected = true;
            shutdown(h2o_socket_get_fd(t->sock), SHUT_RDWR);
            return;
        }
        h2o_http2_encode_rst_stream_frame(&conn->_write.buf, victim->stream_id,
                                          -H2O_HTTP2_ERROR_REFUSED_STREAM);
        h2o_http2_conn_request_write(conn);
        h2o_http2_stream_reset(conn, victim);
    }
}

static void audit(worker_t *w)
{
    budget_t *b = &w->server->budget;
    w->last_audit = h2o_now(w->loop);
    for (h2o_linklist_t *n = w->ctx.http2._conns.next; n != &w->ctx.http2._conns; n = n->next) {
        h2o_http2_conn_t *conn = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, n);
        if (conn->sock && conn->sock->on_close.cb == on_conn_close)
            ((conn_track_t *)conn->sock->on_close.data)->h2 = conn;
    }
    for (h2o_linklist_t *n = w->conns.next; n != &w->conns; n = n->next) {
        conn_track_t *t = (conn_track_t *)((char *)n - offsetof(conn_track_t, link));
        if (t->rejected)
            continue;
        if (t->h2) {
            audit_h2(w, t);
            continue;
        }
        size_t want = track_demand(t);
        if (want == t->charged)
            continue;
        if (want < t->charged) {
            budget_give(b, t->addr, t->charged - want);
            t->charged = want;
            continue;
        }
        int refused = budget_take(b, t->addr, want - t->charged);
        if (refused == BUDGET_OK)
            t->charged = want;
        else if (refused == BUDGET_CLIENT)
            track_reject(w, t, "HTTP_MAX_CLIENT_INFLIGHT_BODY_BYTES", b->client_max);
        else
            track_reject(w, t, "HTTP_MAX_INFLIGHT_BODY_BYTES", b->total_max);
    }
}

static void track_new(worker_t *w, h2o_socket_t *sock)
{
    conn_track_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return; /* not counted; the connection still works */
    t->w = w;
    t->sock = sock;
    struct sockaddr_storage ss;
    socklen_t len = h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
    if (len && ss.ss_family == AF_INET) {
        t->addr[10] = t->addr[11] = 0xff; /* IPv4-mapped */
        memcpy(t->addr + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (len && ss.ss_family == AF_INET6) {
        memcpy(t->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = t;
    h2o_linklist_insert(&w->conns, &t->link);
}

static conn_track_t *track_of(h2o_req_t *req)
{
    h2o_conn_t *conn = req->conn;
    h2o_socket_t *sock = conn->callbacks->get_socket ? conn->callbacks->get_socket(conn) : NULL;
    return sock && sock->on_close.cb == on_conn_close ? sock->on_close.data : NULL;
}

static void on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
static int pool_start(mk_httpd_t *h, mk_err_t *err);
static void pool_stop(mk_httpd_t *h);

static worker_t *worker_of(h2o_req_t *req)
{
    return (worker_t *)((char *)req->conn->ctx - offsetof(worker_t, ctx));
}

static void on_inflight_dispose(void *p)
{
    (*(worker_t **)p)->inflight--;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    handler_t *h = (handler_t *)self;
    mk_httpd_req_t *r = h2o_mem_alloc_pool(&req->pool, sizeof *r);
    r->req = req;
    r->worker = worker_of(req);
    /* Counted until h2o disposes of the request, i.e. its answer is out or its client gone. */
    worker_t **in = h2o_mem_alloc_shared(&req->pool, sizeof *in, on_inflight_dispose);
    *in = r->worker;
    r->worker->inflight++;
    if (atomic_load_explicit(&h->server->draining, memory_order_relaxed))
        req->http1_is_persistent = 0;
    r->id = (mk_str_t){NULL, 0};
    r->job = NULL;
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    conn_track_t *t = h->server->budget.total_max ? track_of(req) : NULL;
    if (t && t->rejected) {
        /* Refused with 503 already; h2o finished reading what was queued. Not handled. */
        req->http1_is_persistent = 0;
        mk_httpd_respond(r, 503, (mk_str_t){"", 0});
        return 0;
    }
    if (t && t->charged && t->hook == NULL) {
        t->hook = h2o_mem_alloc_shared(&req->pool, sizeof *t->hook, on_release_hook);
        t->hook->t = t;
    }
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
        if (w->server->budget.total_max)
            track_new(w, sock);
        h2o_accept(&w->accept_ctx, sock);
    }
}

/* A socket bound to host:port, listening when listen_too; with SO_REUSEPORT when shared, so
 * each worker gets its own socket and the kernel spreads connections across them. */
static int open_socket(const char *host, int port, bool shared, bool listen_too, int *bound_port,
                       mk_err_t *err)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host ? host : "0.0.0.0", &addr.sin_addr) != 1)
        return mk_err_set(err, MK_EINVAL, "listen address '%s' is not an IPv4 address", host);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mk_err_set(err, MK_EIO, "socket: %s", strerror(errno));
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); /* TIME_WAIT leftovers only */
    if (shared)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    /* Accepted sockets inherit TCP_NODELAY: small responses must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        (listen_too && listen(fd, 4096) != 0)) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            return mk_err_set(err, MK_EIO,
                              "cannot listen on %s:%d: port %d is in use (another "
                              "process owns it)",
                              host ? host : "0.0.0.0", port, port);
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
    pthread_mutex_init(&h->budget.mu, NULL);
    pthread_mutex_init(&h->pool.mu, NULL);
    pthread_cond_init(&h->pool.cv, NULL);
    h->budget.total_max = cfg->max_inflight_body_bytes;
    h->budget.client_max = cfg->max_client_inflight_body_bytes;
    if (h->budget.client_max == 0) {
        /* An eighth of the total, but room for at least one largest body and its head. */
        size_t body = (cfg->max_body_bytes ? cfg->max_body_bytes : 1024 * 1024 * 1024) + 65536;
        h->budget.client_max = h->budget.total_max / 8 > body ? h->budget.total_max / 8 : body;
    }
    if (h->budget.client_max > h->budget.total_max)
        h->budget.client_max = h->budget.total_max;
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
    for (unsigned i = 0; i < h->nworkers; i++) {
        h->workers[i].listen_fd = -1;
        h2o_linklist_init_anchor(&h->workers[i].conns);
    }
    h->port = cfg->port;
    /* One process owns a port. The workers' listeners share it with SO_REUSEPORT, which the
     * kernel would let any process of the same user join; so first an exclusive bind (no
     * SO_REUSEPORT) proves that nobody listens there, and the same probe makes a second
     * server started later fail. (Two started within the same instant could both pass.) */
    int fd = open_socket(cfg->host, cfg->port, false, false, &h->port, err);
    if (fd < 0) {
        rc = fd;
        goto fail;
    }
    close(fd);
    for (unsigned i = 0; i < h->nworkers; i++) {
        worker_t *w = &h->workers[i];
        w->server = h;
        w->index = i;
        w->listen_fd = open_socket(cfg->host, h->port, true, true, &h->port, err);
        if (w->listen_fd < 0) {
            rc = w->listen_fd;
            goto fail;
        }
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
    bool budget = w->server->budget.total_max != 0;
    while (!atomic_load_explicit(&w->server->stopping, memory_order_relaxed)) {
        h2o_evloop_run(w->loop, 100);
        if (budget && h2o_now(w->loop) - w->last_audit >= BUDGET_AUDIT_MS)
            audit(w);
    }

    /* Stop accepting and give in-flight responses a moment. (h2o 2.2's
     * h2o_context_request_shutdown leaves a timer linked that h2o_context_dispose then asserts
     * on, so connections are not asked to close first.) */
    h2o_socket_read_stop(w->listener);
    h2o_socket_close(w->listener);
    w->listener = NULL;
    mk_httpd_loop_stopping(&w->ctx); /* long-lived responses (streams) end now */
    uint64_t grace = w->server->cfg.stop_grace_ms ? w->server->cfg.stop_grace_ms : 200;
    uint64_t until = h2o_now(w->loop) + grace;
    for (int i = 0; i < 20 || (w->inflight > 0 && h2o_now(w->loop) < until); i++)
        h2o_evloop_run(w->loop, 10);
    /* Offloaded work still out: mk_httpd_stop has stopped the pool, so each job is finished or
     * cancelled and on its way back; answer them all before the loop goes. */
    while (atomic_load(&w->jobs_outstanding) > 0)
        h2o_evloop_run(w->loop, 10);
    /* Connections still open (idle keep-alive clients, answers held by delays) would keep their
     * entries in the context's timeouts, and h2o_context_dispose asserts on that (the process
     * aborted on SIGTERM with a keep-alive client). Shut their sockets: h2o then sees them end
     * and frees each connection itself. Bounded, in case a connection does not notice. */
    for (h2o_linklist_t *l = w->conns.next; l != &w->conns; l = l->next) {
        conn_track_t *t = (conn_track_t *)l;
        if (t->sock != NULL)
            shutdown(h2o_socket_get_fd(t->sock), SHUT_RDWR);
    }
    for (int i = 0; i < 100 && !h2o_linklist_is_empty(&w->conns); i++)
        h2o_evloop_run(w->loop, 10);
    h2o_multithread_unregister_receiver(w->ctx.queue, &w->jobs_done);
    w->receiving = false;
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
        h2o_multithread_register_receiver(w->ctx.queue, &w->jobs_done, on_jobs_done);
        w->receiving = true;
        w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
        w->listen_fd = -1; /* owned by the socket now */
        w->listener->data = w;
        h2o_socket_read_start(w->listener, on_accept);
    }
    int rc = pool_start(h, err);
    if (rc != 0) {
        pool_stop(h);
        return rc;
    }
    for (unsigned i = 0; i < h->nworkers; i++) {
        int e = pthread_create(&h->workers[i].tid, NULL, worker_main, &h->workers[i]);
        if (e != 0) {
            atomic_store(&h->stopping, true);
            pool_stop(h);
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
    atomic_store(&h->draining, true);
    atomic_store(&h->stopping, true);
    /* Work in progress runs to its end (the loops answer it meanwhile); waiting work is
     * cancelled and answered 503. */
    pool_stop(h);
    for (unsigned i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i].tid, NULL);
    h->started = false;
}

void mk_httpd_drain(mk_httpd_t *h)
{
    if (h != NULL)
        atomic_store(&h->draining, true);
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
            for (size_t d = 0; d < w->ndelays; d++) {
                /* Answers still waiting on a delay longer than the stop grace never go out; their
                 * requests are abandoned with the loop, and h2o_timeout_dispose asserts on linked
                 * entries (SIGTERM aborted the process, exit -6). */
                h2o_linklist_t *entries = &w->delays[d].timeout._entries;
                while (!h2o_linklist_is_empty(entries))
                    h2o_timeout_unlink(
                        H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, entries->next));
                h2o_timeout_dispose(w->loop, &w->delays[d].timeout);
            }
            if (w->receiving) /* started but never run */
                h2o_multithread_unregister_receiver(w->ctx.queue, &w->jobs_done);
            h2o_context_dispose(&w->ctx);
            h2o_evloop_destroy(w->loop);
            /* Connections still open at exit are not closed by h2o; drop their trackers. */
            while (!h2o_linklist_is_empty(&w->conns)) {
                conn_track_t *t = (conn_track_t *)w->conns.next;
                track_release(&h->budget, t);
                h2o_linklist_unlink(&t->link);
                free(t);
            }
        }
        free(h->workers);
    }
    h2o_config_dispose(&h->globalconf);
    if (h->ssl_ctx)
        SSL_CTX_free(h->ssl_ctx);
    for (unsigned i = 0; i < CLIENT_BUCKETS; i++)
        while (h->budget.clients[i]) {
            client_bytes_t *next = h->budget.clients[i]->next;
            free(h->budget.clients[i]);
            h->budget.clients[i] = next;
        }
    free(h->pool.tids);
    pthread_mutex_destroy(&h->budget.mu);
    pthread_mutex_destroy(&h->pool.mu);
    pthread_cond_destroy(&h->pool.cv);
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

/* --- offloaded work --------------------------------------------------------------------------
 * The work gets a request of its own (r->job set, r->req NULL) over a heap copy of the request,
 * so h2o may drop the original (an HTTP/2 reset, a closed connection) while the work runs. What
 * the work answers is kept in the job; the job comes back to its loop through the context's
 * message queue, and the loop sends the answer if the original request is still there. */

typedef struct job_header {
    struct job_header *next;
    mk_str_t name, value;
} job_header_t;

typedef struct arena_block {
    struct arena_block *next;
    max_align_t data[];
} arena_block_t;

typedef struct offload_ref offload_ref_t;

typedef struct job {
    h2o_multithread_message_t msg; /* back to the loop; first member */
    struct job *next;              /* in the pool's queue */
    mk_httpd_req_t jr;             /* what the work sees */
    mk_httpd_req_t *orig;          /* loop side; NULL once h2o has dropped the request */
    offload_ref_t *ref;            /* in orig's pool */
    mk_httpd_work_cb work;
    void *ud;
    mk_request_t view; /* slices into copy */
    const char *protocol;
    bool tls;
    char authority[256];
    char *copy;
    arena_block_t *arena;
    bool cancelled; /* the pool stopped before running it */
    bool responded;
    int status;
    mk_str_t body;
    mk_httpd_send_opts_t opts;
    job_header_t *headers, **headers_tail;
} job_t;

struct offload_ref {
    job_t *job;
};

static void *job_alloc(job_t *j, size_t size)
{
    arena_block_t *b = malloc(sizeof *b + (size ? size : 1));
    if (b == NULL)
        return NULL;
    b->next = j->arena;
    j->arena = b;
    return b->data;
}

static mk_str_t job_copy(job_t *j, mk_str_t s)
{
    char *p = s.len ? job_alloc(j, s.len) : NULL;
    if (p == NULL)
        return (mk_str_t){"", 0};
    memcpy(p, s.base, s.len);
    return (mk_str_t){p, s.len};
}

static void job_free(job_t *j)
{
    while (j->arena) {
        arena_block_t *next = j->arena->next;
        free(j->arena);
        j->arena = next;
    }
    free(j->copy);
    free(j);
}

/* Copies the request's view and id into one block the job owns. */
static int job_copy_request(job_t *j, mk_httpd_req_t *r)
{
    mk_request_t v;
    mk_httpd_req_view(r, &v);
    mk_str_t id = mk_httpd_req_id(r);
    size_t size = v.method.len + v.path.len + v.query.len + v.body.len + id.len + 1 +
                  v.nheaders * sizeof(mk_header_t);
    for (size_t i = 0; i < v.nheaders; i++)
        size += v.headers[i].name.len + v.headers[i].value.len;
    j->copy = malloc(size);
    if (j->copy == NULL) {
        mk_request_release(&v);
        return MK_ENOMEM;
    }
    mk_header_t *hdrs = (mk_header_t *)j->copy; /* malloc alignment suits the array */
    char *p = j->copy + v.nheaders * sizeof(mk_header_t);
#define TAKE(dst, src)                                                                             \
    do {                                                                                           \
        if ((src).len)                                                                             \
            memcpy(p, (src).base, (src).len);                                                      \
        (dst) = (mk_str_t){p, (src).len};                                                          \
        p += (src).len;                                                                            \
    } while (0)
    mk_request_init(&j->view);
    TAKE(j->view.method, v.method);
    TAKE(j->view.path, v.path);
    TAKE(j->view.query, v.query);
    TAKE(j->view.body, v.body);
    TAKE(j->jr.id, id);
    for (size_t i = 0; i < v.nheaders; i++) {
        TAKE(hdrs[i].name, v.headers[i].name);
        TAKE(hdrs[i].value, v.headers[i].value);
    }
#undef TAKE
    *p = '\0';
    j->view.headers = v.nheaders ? hdrs : NULL;
    j->view.nheaders = v.nheaders;
    mk_request_release(&v);
    return 0;
}

static void on_offload_ref_dispose(void *p)
{
    offload_ref_t *ref = p;
    if (ref->job)
        ref->job->orig = NULL;
}

static void send_unavailable(mk_httpd_req_t *r, const char *why)
{
    char body[300];
    mk_str_t id = mk_httpd_req_id(r);
    int n = snprintf(body, sizeof body,
                     "{\"error\":\"%s\",\"code\":\"unavailable\",\"request_id\":\"%.*s\"}", why,
                     (int)id.len, id.base);
    mk_httpd_add_header(r, MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json"));
    mk_httpd_add_header(r, MK_STR_LIT("Retry-After"), MK_STR_LIT("1"));
    mk_httpd_respond(r, 503, (mk_str_t){body, (size_t)n});
}

/* On the loop: the work is over (or was cancelled); answer if the request is still there. */
static void on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    worker_t *w = (worker_t *)((char *)receiver - offsetof(worker_t, jobs_done));
    while (!h2o_linklist_is_empty(messages)) {
        job_t *j = (job_t *)messages->next;
        h2o_linklist_unlink(&j->msg.link);
        mk_httpd_req_t *r = j->orig;
        if (r != NULL) {
            j->ref->job = NULL; /* sending may dispose of the request right away */
            if (j->cancelled)
                send_unavailable(r, "the server is shutting down");
            else if (!j->responded)
                mk_httpd_respond(r, 500,
                                 MK_STR_LIT("{\"error\":\"offloaded work sent no "
                                            "response\",\"code\":\"internal\"}"));
            else {
                for (job_header_t *h = j->headers; h; h = h->next)
                    mk_httpd_add_header(r, h->name, h->value);
                mk_httpd_send(r, j->status, j->body, &j->opts);
            }
        }
        job_free(j);
        atomic_fetch_sub(&w->jobs_outstanding, 1);
    }
}

static void *pool_main(void *arg)
{
    mk_httpd_t *h = arg;
    pool_t *p = &h->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        job_t *j = p->head;
        if (j == NULL)
            break; /* stopping and nothing left */
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        j->cancelled = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (!j->cancelled)
            j->work(j->ud, &j->jr);
        h2o_multithread_send_message(&j->jr.worker->jobs_done, &j->msg);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int pool_start(mk_httpd_t *h, mk_err_t *err)
{
    pool_t *p = &h->pool;
    unsigned want = h->cfg.offload_threads ? h->cfg.offload_threads : 2;
    p->tids = calloc(want, sizeof *p->tids);
    if (p->tids == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (p->n = 0; p->n < want; p->n++) {
        int e = pthread_create(&p->tids[p->n], NULL, pool_main, h);
        if (e != 0)
            return mk_err_set(err, MK_EINTERNAL, "cannot start offload thread: %s", strerror(e));
    }
    return 0;
}

/* Runs what is running to its end, cancels what waits (the loops answer those 503). */
static void pool_stop(mk_httpd_t *h)
{
    pool_t *p = &h->pool;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n; i++)
        pthread_join(p->tids[i], NULL);
    p->n = 0;
}

int mk_httpd_offload(mk_httpd_req_t *r, mk_httpd_work_cb work, void *ud)
{
    if (r->job != NULL)
        return MK_EINVAL; /* already off the loop: just do the work */
    worker_t *w = r->worker;
    mk_httpd_t *h = w->server;
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL || job_copy_request(j, r) != 0) {
        if (j)
            job_free(j);
        send_unavailable(r, "out of memory");
        return MK_ENOMEM;
    }
    j->jr.worker = w;
    j->jr.started = r->started;
    j->jr.job = j;
    j->orig = r;
    j->work = work;
    j->ud = ud;
    j->protocol = mk_httpd_req_protocol(r);
    j->tls = mk_httpd_req_tls(r);
    mk_httpd_req_authority(r, j->authority, sizeof j->authority);
    j->headers_tail = &j->headers;
    j->ref = h2o_mem_alloc_shared(&r->req->pool, sizeof *j->ref, on_offload_ref_dispose);
    j->ref->job = j;

    pool_t *p = &h->pool;
    pthread_mutex_lock(&p->mu);
    bool full = p->stop || p->n == 0 || p->queued >= OFFLOAD_MAX_QUEUED;
    if (!full) {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued++;
        atomic_fetch_add(&w->jobs_outstanding, 1);
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (full) {
        j->ref->job = NULL;
        job_free(j);
        send_unavailable(r, "too much offloaded work is waiting; retry later");
        return MK_EUNAVAIL;
    }
    return 0;
}

size_t mk_httpd_body_inflight(mk_httpd_t *h)
{
    pthread_mutex_lock(&h->budget.mu);
    size_t n = h->budget.total;
    pthread_mutex_unlock(&h->budget.mu);
    return n;
}

size_t mk_httpd_body_rejects(const mk_httpd_t *h)
{
    return atomic_load(&h->body_rejects);
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
    if (r->job) {
        const mk_request_t *src = &r->job->view;
        view->method = src->method;
        view->path = src->path;
        view->query = src->query;
        view->headers = src->headers;
        view->nheaders = src->nheaders;
        view->body = src->body;
        return;
    }
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
    if (r->job)
        return job_alloc(r->job, size);
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
    char *p = h2o_mem_alloc_pool(&req->pool, 40);
    r->id = (mk_str_t){p, format_id(r->worker, p)};
    return r->id;
}

/* prefix-worker-counter into p (40 bytes), formatted by hand: this runs for every request. */
static size_t format_id(const worker_t *cw, char *p)
{
    worker_t *w = (worker_t *)cw; /* the counter is the worker's own, on its thread */
    size_t len = strlen(w->server->id_prefix);
    memcpy(p, w->server->id_prefix, len);
    p[len++] = '-';
    p[len++] = hexdigits[w->index & 15];
    p[len++] = '-';
    uint64_t n = ++w->next_req;
    char tmp[17];
    int k = 0;
    do {
        tmp[k++] = hexdigits[n & 15];
        n >>= 4;
    } while (n);
    while (k)
        p[len++] = tmp[--k];
    return len;
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
    if (r->job)
        return r->job->protocol;
    return r->req->version >= 0x200 ? "HTTP/2" : r->req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1";
}

void mk_httpd_req_peer(const mk_httpd_req_t *r, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    h2o_conn_t *conn = r->job || r->req == NULL ? NULL : r->req->conn;
    socklen_t len = conn && conn->callbacks->get_peername
                        ? conn->callbacks->get_peername(conn, (struct sockaddr *)&ss)
                        : 0;
    buf[0] = '\0';
    if (len && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)size);
    else if (len && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, (socklen_t)size);
}

void mk_httpd_req_authority(const mk_httpd_req_t *r, char *buf, size_t size)
{
    if (r->job) {
        snprintf(buf, size, "%s", r->job->authority);
        return;
    }
    h2o_iovec_t a = r->req ? r->req->input.authority : h2o_iovec_init(NULL, 0);
    snprintf(buf, size, "%.*s", (int)a.len, a.base ? a.base : "");
}

bool mk_httpd_req_tls(const mk_httpd_req_t *r)
{
    if (r->job)
        return r->job->tls;
    return r->req && r->req->scheme == &H2O_URL_SCHEME_HTTPS;
}

void mk_httpd_add_header(mk_httpd_req_t *r, mk_str_t name, mk_str_t value)
{
    h2o_req_t *req = r->req;
    if (name.len == 0)
        return;
    if (r->job) {
        job_header_t *hd = job_alloc(r->job, sizeof *hd);
        if (hd == NULL)
            return;
        hd->next = NULL;
        hd->name = job_copy(r->job, name);
        hd->value = job_copy(r->job, value);
        *r->job->headers_tail = hd;
        r->job->headers_tail = &hd->next;
        return;
    }
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

const char *mk_httpd_reason_phrase(int status)
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
    req->res.reason = mk_httpd_reason_phrase(status);
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

static void job_respond(job_t *j, int status, mk_str_t body, const mk_httpd_send_opts_t *opts)
{
    if (j->responded)
        return;
    j->responded = true;
    j->status = status;
    j->body = job_copy(j, body);
    if (opts)
        j->opts = *opts;
}

void mk_httpd_respond(mk_httpd_req_t *r, int status, mk_str_t body)
{
    if (r->job) {
        job_respond(r->job, status, body, NULL);
        return;
    }
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
    req->res.reason = mk_httpd_reason_phrase(status);
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
    if (r->job) {
        job_respond(r->job, status, body, o);
        return;
    }
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

/* Declared in httpd_loop.h: the loop hooks (httpd_loop.c) reach the h2o request through this. */
struct st_h2o_req_t *mk_httpd_req_h2o(mk_httpd_req_t *r)
{
    return r->req;
}
