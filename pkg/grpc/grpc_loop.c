/* The event loop (epoll, a timer heap, an eventfd-woken task queue) and connections: socket or
 * TLS I/O feeding an nghttp2 session, a bounded output buffer, keepalive PINGs. */
#include "grpc/grpc_internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Output kept per connection before we stop pulling frames from nghttp2: a client that does not
 * read holds at most this much (plus flow-control windows) of our memory. */
#define OUT_HIGH_WATER  (64 * 1024)
#define READ_CHUNK      16384
#define READS_PER_EVENT 8 /* fairness: other connections get their turn */

int64_t mk_grpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- timer heap (min-heap on due) ---- */

static void heap_swap(mk_grpc_loop_t *l, size_t a, size_t b)
{
    mk_grpc_timer_t *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->idx = a + 1;
    l->heap[b]->idx = b + 1;
}

static void heap_up(mk_grpc_loop_t *l, size_t i)
{
    while (i > 0 && l->heap[(i - 1) / 2]->due > l->heap[i]->due) {
        heap_swap(l, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(mk_grpc_loop_t *l, size_t i)
{
    for (;;) {
        size_t m = i, a = 2 * i + 1, b = 2 * i + 2;
        if (a < l->nheap && l->heap[a]->due < l->heap[m]->due)
            m = a;
        if (b < l->nheap && l->heap[b]->due < l->heap[m]->due)
            m = b;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

void mk_grpc_loop_timer_cancel(mk_grpc_loop_t *l, mk_grpc_timer_t *t)
{
    if (t->idx == 0)
        return;
    size_t i = t->idx - 1;
    t->idx = 0;
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    l->heap[i]->idx = i + 1;
    heap_up(l, i);
    heap_down(l, l->heap[i]->idx - 1);
}

void mk_grpc_loop_timer_set(mk_grpc_loop_t *l, mk_grpc_timer_t *t, int64_t due)
{
    mk_grpc_loop_timer_cancel(l, t);
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 64;
        mk_grpc_timer_t **h = realloc(l->heap, cap * sizeof *h);
        if (h == NULL)
            abort(); /* a timer we cannot keep would hang a call forever */
        l->heap = h;
        l->capheap = cap;
    }
    t->due = due;
    l->heap[l->nheap] = t;
    t->idx = ++l->nheap;
    heap_up(l, l->nheap - 1);
}

/* ---- loop ---- */

static void run_tasks(mk_grpc_loop_t *l);

int mk_grpc_loop_init(mk_grpc_loop_t *l, mk_err_t *err)
{
    memset(l, 0, sizeof *l);
    l->evfd = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return mk_err_set(err, MK_EIO, "epoll_create1: %s", strerror(errno));
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->evfd < 0) {
        close(l->epfd);
        return mk_err_set(err, MK_EIO, "eventfd: %s", strerror(errno));
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev);
    pthread_mutex_init(&l->mu, NULL);
    return 0;
}

void mk_grpc_loop_fini(mk_grpc_loop_t *l)
{
    mk_grpc_loop_close_all(l, "shutdown");
    mk_grpc_loop_flush(l);
    run_tasks(l); /* drops the references queued tasks hold */
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->evfd >= 0)
        close(l->evfd);
    free(l->heap);
    pthread_mutex_destroy(&l->mu);
    l->epfd = l->evfd = -1;
}

bool mk_grpc_loop_in_thread(const mk_grpc_loop_t *l)
{
    return l->started && pthread_equal(pthread_self(), l->thread);
}

int mk_grpc_loop_watch(mk_grpc_loop_t *l, mk_grpc_watch_t *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    w->events = events;
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0 ? 0 : MK_EIO;
}

void mk_grpc_loop_watch_mod(mk_grpc_loop_t *l, mk_grpc_watch_t *w, uint32_t events)
{
    if (w->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    w->events = events;
    epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void mk_grpc_loop_unwatch(mk_grpc_loop_t *l, mk_grpc_watch_t *w)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

bool mk_grpc_loop_post(mk_grpc_loop_t *l, mk_grpc_task_t *t)
{
    pthread_mutex_lock(&l->mu);
    if (t->queued) {
        pthread_mutex_unlock(&l->mu);
        return false;
    }
    t->queued = true;
    t->next = NULL;
    bool was_empty = l->tasks_head == NULL;
    if (l->tasks_tail)
        l->tasks_tail->next = t;
    else
        l->tasks_head = t;
    l->tasks_tail = t;
    pthread_mutex_unlock(&l->mu);
    /* The loop drains the whole queue per wake-up, so only the first post needs to wake it;
     * the loop's own posts are seen before it sleeps again. */
    if (was_empty && !mk_grpc_loop_in_thread(l)) {
        uint64_t one = 1;
        ssize_t n = write(l->evfd, &one, sizeof one);
        (void)n;
    }
    return true;
}

static void run_tasks(mk_grpc_loop_t *l)
{
    /* One at a time under the lock: a task may be posted again (from any thread) as soon as it
     * is unlinked, which rewrites its next pointer. Tasks posted meanwhile wait for the next
     * round, so a task that keeps posting itself cannot starve the loop. */
    pthread_mutex_lock(&l->mu);
    size_t n = 0;
    for (mk_grpc_task_t *x = l->tasks_head; x; x = x->next)
        n++;
    pthread_mutex_unlock(&l->mu);
    while (n-- > 0) {
        pthread_mutex_lock(&l->mu);
        mk_grpc_task_t *t = l->tasks_head;
        if (t != NULL) {
            l->tasks_head = t->next;
            if (l->tasks_head == NULL)
                l->tasks_tail = NULL;
            t->queued = false;
        }
        pthread_mutex_unlock(&l->mu);
        if (t == NULL)
            break;
        t->fn(t);
    }
}

static void run_timers(mk_grpc_loop_t *l)
{
    int64_t now = mk_grpc_now_ms();
    while (l->nheap > 0 && l->heap[0]->due <= now) {
        mk_grpc_timer_t *t = l->heap[0];
        mk_grpc_loop_timer_cancel(l, t);
        t->fn(t);
    }
}

static void *loop_main(void *arg)
{
    mk_grpc_loop_t *l = arg;
    struct epoll_event evs[64];
    /* OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a peer gone mid-write would kill the
     * process with SIGPIPE. The signal goes to the writing thread, so blocking it here is enough
     * and leaves the application's handling alone. */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    while (!l->quit) {
        int timeout = -1;
        pthread_mutex_lock(&l->mu);
        bool have_tasks = l->tasks_head != NULL;
        pthread_mutex_unlock(&l->mu);
        if (have_tasks || l->flush_head) {
            timeout = 0;
        } else if (l->nheap > 0) {
            int64_t d = l->heap[0]->due - mk_grpc_now_ms();
            timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
        }
        int n = epoll_wait(l->epfd, evs, 64, timeout);
        for (int i = 0; i < n; i++) {
            mk_grpc_watch_t *w = evs[i].data.ptr;
            if (w == NULL) {
                uint64_t v;
                ssize_t r = read(l->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            w->fn(w, evs[i].events);
        }
        run_timers(l);
        run_tasks(l);
        mk_grpc_loop_flush(l);
        if (l->after)
            l->after(l);
    }
    return NULL;
}

int mk_grpc_loop_start(mk_grpc_loop_t *l, mk_err_t *err)
{
    int rc = pthread_create(&l->thread, NULL, loop_main, l);
    if (rc != 0)
        return mk_err_set(err, MK_EINTERNAL, "pthread_create: %s", strerror(rc));
    l->started = true;
    return 0;
}

void mk_grpc_loop_join(mk_grpc_loop_t *l)
{
    if (l->started)
        pthread_join(l->thread, NULL);
}

/* ---- connections ---- */

static void conn_io(mk_grpc_watch_t *w, uint32_t events);

static void conn_keepalive(mk_grpc_timer_t *t)
{
    mk_grpc_conn_t *c = (mk_grpc_conn_t *)((char *)t - offsetof(mk_grpc_conn_t, ka_timer));
    if (c->ping_out) {
        mk_grpc_conn_close(c, "keepalive ping not acknowledged");
        return;
    }
    if (c->h2 != NULL && nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0) {
        c->ping_out = true;
        mk_grpc_conn_want_flush(c);
    }
    mk_grpc_loop_timer_set(c->loop, t, mk_grpc_now_ms() + c->keepalive_timeout_ms);
}

void mk_grpc_conn_ping_acked(mk_grpc_conn_t *c)
{
    if (!c->ping_out)
        return;
    c->ping_out = false;
    if (c->keepalive_ms > 0)
        mk_grpc_loop_timer_set(c->loop, &c->ka_timer, mk_grpc_now_ms() + c->keepalive_ms);
}

mk_grpc_conn_t *mk_grpc_conn_new(mk_grpc_loop_t *l, int fd, SSL *ssl, const mk_grpc_conn_ops_t *ops,
                                 void *owner, int keepalive_ms, int keepalive_timeout_ms)
{
    mk_grpc_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    c->loop = l;
    c->ops = ops;
    c->owner = owner;
    c->ssl = ssl;
    c->handshaken = ssl == NULL || SSL_is_init_finished(ssl);
    c->watch.fd = fd;
    c->watch.fn = conn_io;
    c->keepalive_ms = keepalive_ms;
    c->keepalive_timeout_ms = keepalive_timeout_ms;
    c->ka_timer.fn = conn_keepalive;
    mk_buf_init(&c->out, 0);
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    /* A TLS client speaks first: writable starts its handshake. */
    if (mk_grpc_loop_watch(l, &c->watch, c->handshaken ? EPOLLIN : EPOLLIN | EPOLLOUT) < 0) {
        mk_grpc_conn_close(c, "epoll_ctl failed");
        return c;
    }
    if (c->handshaken && ops->session_new(c) < 0)
        mk_grpc_conn_close(c, "cannot create the HTTP/2 session");
    if (keepalive_ms > 0)
        mk_grpc_loop_timer_set(l, &c->ka_timer, mk_grpc_now_ms() + keepalive_ms);
    mk_grpc_conn_want_flush(c);
    return c;
}

void mk_grpc_conn_want_flush(mk_grpc_conn_t *c)
{
    if (c->in_flush)
        return;
    c->in_flush = true;
    c->flush_next = c->loop->flush_head;
    c->loop->flush_head = c;
}

void mk_grpc_conn_close(mk_grpc_conn_t *c, const char *reason)
{
    if (!c->closing) {
        c->closing = true;
        c->close_reason = strdup(reason);
    }
    mk_grpc_conn_want_flush(c);
}

static void conn_free(mk_grpc_conn_t *c)
{
    mk_grpc_loop_t *l = c->loop;
    if (c->in_flush) { /* queued again by a callback: unlink before freeing */
        mk_grpc_conn_t **pp = &l->flush_head;
        while (*pp != c)
            pp = &(*pp)->flush_next;
        *pp = c->flush_next;
    }
    c->in_flush = true; /* streams ended by on_close must not queue it again */
    if (c->ops->on_close)
        c->ops->on_close(c, c->close_reason ? c->close_reason : "connection closed");
    mk_grpc_loop_timer_cancel(l, &c->ka_timer);
    nghttp2_session_del(c->h2);
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* best effort close_notify; the socket is non-blocking */
        SSL_free(c->ssl);
    }
    mk_grpc_loop_unwatch(l, &c->watch);
    close(c->watch.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    mk_buf_free(&c->out);
    free(c->close_reason);
    free(c->peer_identity);
    free(c);
}

/* Returns bytes written (>= 0) or -1 on a dead connection; *blocked when the socket is full. */
static ssize_t conn_write(mk_grpc_conn_t *c, const void *p, size_t n, bool *blocked)
{
    if (c->ssl == NULL) {
        ssize_t w = send(c->watch.fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            *blocked = true;
            return 0;
        }
        return w;
    }
    ERR_clear_error();
    int w = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
    if (w > 0)
        return w;
    int e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        *blocked = true;
        return 0;
    }
    return -1;
}

static bool conn_handshake(mk_grpc_conn_t *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            mk_grpc_loop_watch_mod(c->loop, &c->watch, EPOLLIN);
        else if (e == SSL_ERROR_WANT_WRITE)
            mk_grpc_loop_watch_mod(c->loop, &c->watch, EPOLLIN | EPOLLOUT);
        else {
            char why[320];
            long v = SSL_get_verify_result(c->ssl);
            snprintf(why, sizeof why, "TLS handshake failed: %s%s%s", mk_grpc_tls_error(),
                     v != X509_V_OK ? ": " : "",
                     v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
            mk_grpc_conn_close(c, why);
        }
        return false;
    }
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        mk_grpc_conn_close(c, "TLS peer did not negotiate ALPN h2");
        return false;
    }
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert != NULL) {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) >
            0)
            c->peer_identity = strdup(cn);
        X509_free(cert);
    }
    c->handshaken = true;
    if (c->ops->session_new(c) < 0) {
        mk_grpc_conn_close(c, "cannot create the HTTP/2 session");
        return false;
    }
    return true;
}

static void conn_read(mk_grpc_conn_t *c)
{
    uint8_t buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_EVENT && !c->closing; i++) {
        ssize_t n;
        if (c->ssl == NULL) {
            n = recv(c->watch.fd, buf, sizeof buf, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (n <= 0) {
                mk_grpc_conn_close(c, n == 0 ? "peer closed the connection" : strerror(errno));
                return;
            }
        } else {
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, sizeof buf);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return;
                mk_grpc_conn_close(c, e == SSL_ERROR_ZERO_RETURN ? "peer closed the connection"
                                                                 : "TLS read failed");
                return;
            }
            n = r;
        }
        ssize_t rv = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
        if (rv < 0) {
            mk_grpc_conn_close(c, nghttp2_strerror((int)rv));
            return;
        }
        if ((size_t)n < sizeof buf && c->ssl == NULL)
            return;
    }
}

static void conn_io(mk_grpc_watch_t *w, uint32_t events)
{
    mk_grpc_conn_t *c = (mk_grpc_conn_t *)((char *)w - offsetof(mk_grpc_conn_t, watch));
    if (c->closing)
        return;
    if (!c->handshaken) {
        if (!conn_handshake(c)) {
            if (c->closing)
                mk_grpc_conn_want_flush(c);
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(c);
    mk_grpc_conn_want_flush(c);
}

/* Moves frames from nghttp2 to the socket until either is exhausted. Returns false when the
 * connection should close. */
static bool conn_flush(mk_grpc_conn_t *c)
{
    if (!c->handshaken || c->h2 == NULL)
        return true;
    bool blocked = false;
    for (;;) {
        while (c->out.len - c->out_off < OUT_HIGH_WATER) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(c->h2, &p);
            if (n < 0) {
                mk_grpc_conn_close(c, nghttp2_strerror((int)n));
                return false;
            }
            if (n == 0)
                break;
            if (mk_buf_append(&c->out, p, (size_t)n) < 0) {
                mk_grpc_conn_close(c, "out of memory");
                return false;
            }
        }
        if (c->out.len == c->out_off)
            break;
        ssize_t w = conn_write(c, c->out.data + c->out_off, c->out.len - c->out_off, &blocked);
        if (w < 0) {
            mk_grpc_conn_close(c, "write failed");
            return false;
        }
        c->out_off += (size_t)w;
        if (c->out_off == c->out.len) {
            mk_buf_reset(&c->out);
            c->out_off = 0;
        }
        if (blocked)
            break;
    }
    if (c->out_off > 0 && c->out_off * 2 > c->out.len) {
        /* Keep the buffer from creeping: move the unwritten tail to the front. */
        memmove(c->out.data, c->out.data + c->out_off, c->out.len - c->out_off);
        c->out.len -= c->out_off;
        c->out_off = 0;
    }
    mk_grpc_loop_watch_mod(c->loop, &c->watch, blocked ? EPOLLIN | EPOLLOUT : EPOLLIN);
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
        c->out.len == c->out_off) {
        mk_grpc_conn_close(c, "session finished");
        return false;
    }
    return true;
}

void mk_grpc_loop_flush(mk_grpc_loop_t *l)
{
    while (l->flush_head) {
        mk_grpc_conn_t *c = l->flush_head;
        l->flush_head = c->flush_next;
        c->in_flush = false;
        if (!c->closing)
            conn_flush(c);
        if (!c->closing && c->ops->after_flush)
            c->ops->after_flush(c);
        if (c->closing) {
            /* Last frames (GOAWAY, RST) go out if the socket takes them; then it is gone. */
            if (c->h2 && c->handshaken) {
                const uint8_t *p;
                ssize_t n;
                bool blocked = false;
                while ((n = nghttp2_session_mem_send(c->h2, &p)) > 0)
                    if (mk_buf_append(&c->out, p, (size_t)n) < 0)
                        break;
                if (c->out.len > c->out_off)
                    conn_write(c, c->out.data + c->out_off, c->out.len - c->out_off, &blocked);
            }
            conn_free(c);
        }
    }
}

void mk_grpc_loop_close_all(mk_grpc_loop_t *l, const char *reason)
{
    for (mk_grpc_conn_t *c = l->conns; c; c = c->next)
        mk_grpc_conn_close(c, reason);
}

/* ---- metadata ---- */

static bool md_reserved(const char *k, size_t n)
{
    static const char *const reserved[] = {
        "content-type",         "te",          "grpc-timeout", "grpc-encoding",
        "grpc-accept-encoding", "grpc-status", "grpc-message", "content-length"};
    if (n > 0 && k[0] == ':')
        return true;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], k, n) == 0)
            return true;
    return false;
}

static bool key_is_bin(const char *k, size_t n)
{
    return n > 4 && memcmp(k + n - 4, "-bin", 4) == 0;
}

int mk_grpc_md_add(mk_grpc_mdlist_t *l, const char *key, const void *value, size_t len)
{
    size_t kn = strlen(key);
    if (kn == 0 || key[0] == ':')
        return MK_EINVAL;
    for (size_t i = 0; i < kn; i++) {
        char ch = key[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok)
            return MK_EINVAL;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        mk_grpc_md_t *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL)
            return MK_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    mk_grpc_md_t *m = &l->items[l->n];
    m->key = malloc(kn + 1);
    m->value = malloc(len + 1);
    if (m->key == NULL || m->value == NULL) {
        free(m->key);
        free(m->value);
        return MK_ENOMEM;
    }
    for (size_t i = 0; i <= kn; i++)
        m->key[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
    if (len)
        memcpy(m->value, value, len);
    m->value[len] = '\0';
    m->len = len;
    l->n++;
    return 0;
}

const mk_grpc_md_t *mk_grpc_md_get(const mk_grpc_mdlist_t *l, const char *key)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (strcasecmp(l->items[i].key, key) == 0)
            return &l->items[i];
    return NULL;
}

void mk_grpc_md_clear(mk_grpc_mdlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

int mk_grpc_md_copy(mk_grpc_mdlist_t *dst, const mk_grpc_mdlist_t *src)
{
    for (size_t i = 0; src && i < src->n; i++) {
        int rc = mk_grpc_md_add(dst, src->items[i].key, src->items[i].value, src->items[i].len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mk_grpc_md_from_wire(mk_grpc_mdlist_t *l, const uint8_t *name, size_t nlen,
                         const uint8_t *value, size_t vlen)
{
    if (md_reserved((const char *)name, nlen))
        return 0;
    char key[256];
    if (nlen >= sizeof key)
        return 0; /* nghttp2 bounds header sizes; a key this long is not metadata we use */
    memcpy(key, name, nlen);
    key[nlen] = '\0';
    if (!key_is_bin(key, nlen))
        return mk_grpc_md_add(l, key, value, vlen);
    mk_buf_t raw;
    mk_buf_init(&raw, 0);
    int rc = mk_grpc_base64_decode(&raw, (const char *)value, vlen);
    if (rc == 0)
        rc = mk_grpc_md_add(l, key, raw.data ? raw.data : "", raw.len);
    mk_buf_free(&raw);
    return rc;
}

int mk_grpc_md_to_nv(const mk_grpc_mdlist_t *l, nghttp2_nv *nva, size_t *n, mk_buf_t *store)
{
    /* Two passes: encode every -bin value into store first, then point at it (store may move
     * while it grows). */
    size_t *offs = calloc(l->n ? l->n : 1, sizeof *offs);
    size_t *lens = calloc(l->n ? l->n : 1, sizeof *lens);
    int rc = 0;
    if (offs == NULL || lens == NULL) {
        rc = MK_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->n; i++) {
        const mk_grpc_md_t *m = &l->items[i];
        if (!key_is_bin(m->key, strlen(m->key)))
            continue;
        offs[i] = store->len;
        rc = mk_grpc_base64_encode(store, (const uint8_t *)m->value, m->len);
        if (rc < 0)
            goto out;
        lens[i] = store->len - offs[i];
    }
    for (size_t i = 0; i < l->n; i++) {
        const mk_grpc_md_t *m = &l->items[i];
        nghttp2_nv *nv = &nva[(*n)++];
        nv->name = (uint8_t *)m->key;
        nv->namelen = strlen(m->key);
        if (key_is_bin(m->key, nv->namelen)) {
            nv->value = (uint8_t *)(store->data ? store->data + offs[i] : "");
            nv->valuelen = lens[i];
        } else {
            nv->value = (uint8_t *)m->value;
            nv->valuelen = m->len;
        }
        nv->flags = NGHTTP2_NV_FLAG_NONE;
    }
out:
    free(offs);
    free(lens);
    return rc;
}
