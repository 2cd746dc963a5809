/* Worker event loop hooks over h2o 2.2's evloop: watchers are h2o sockets on a dup of the
 * caller's fd created with DONT_READ (h2o only reports readiness, the owner reads), write
 * readiness is h2o_socket_notify_write, timers are h2o timeout lists, and per-loop state lives in
 * the h2o context's storage, whose disposers run before the loop is destroyed. */
#include "httpd/httpd_loop.h"

#include <h2o.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SLOTS 16

struct mk_httpd_loop {
    h2o_evloop_t *evloop;
    bool owned; /* a standalone loop (mk_httpd_loop_new) */
    bool disposing;
    struct {
        const void *key;
        void *data;
        void (*dispose)(void *data);
        void (*on_stop)(void *data);
    } slots[MAX_SLOTS];
    size_t nslots;
};

struct mk_httpd_watch {
    h2o_socket_t *sock;
    mk_httpd_watch_cb on_read, on_write;
    void *ud;
    bool reading;
    bool want_write;
    bool notify_pending; /* h2o_socket_notify_write is armed (it cannot be cancelled) */
};

struct mk_httpd_timer {
    mk_httpd_loop_t *loop;
    h2o_timeout_t timeout;
    h2o_timeout_entry_t entry;
    void (*cb)(void *ud);
    void *ud;
};

static void loop_dispose_slots(mk_httpd_loop_t *l)
{
    l->disposing = true;
    /* Last registered first: later modules may use earlier ones. */
    while (l->nslots > 0) {
        l->nslots--;
        if (l->slots[l->nslots].dispose != NULL)
            l->slots[l->nslots].dispose(l->slots[l->nslots].data);
    }
}

static void on_context_dispose(void *data)
{
    mk_httpd_loop_t *l = data;
    if (l == NULL)
        return;
    loop_dispose_slots(l);
    free(l);
}

static size_t context_key = SIZE_MAX;

mk_httpd_loop_t *mk_httpd_req_loop(mk_httpd_req_t *req)
{
    h2o_context_t *ctx = mk_httpd_req_h2o(req)->conn->ctx;
    void **data = h2o_context_get_storage(ctx, &context_key, on_context_dispose);
    if (*data == NULL) {
        mk_httpd_loop_t *l = calloc(1, sizeof *l);
        if (l == NULL)
            return NULL;
        l->evloop = ctx->loop;
        *data = l;
    }
    return *data;
}

mk_httpd_loop_t *mk_httpd_loop_new(void)
{
    mk_httpd_loop_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->evloop = h2o_evloop_create();
    l->owned = true;
    return l;
}

void mk_httpd_loop_run(mk_httpd_loop_t *l, int32_t max_wait_ms)
{
    h2o_evloop_run(l->evloop, max_wait_ms);
}

void mk_httpd_loop_free(mk_httpd_loop_t *l)
{
    if (l == NULL)
        return;
    loop_dispose_slots(l);
    if (l->owned)
        h2o_evloop_destroy(l->evloop);
    free(l);
}

void **mk_httpd_loop_slot(mk_httpd_loop_t *l, const void *key, void (*dispose)(void *data))
{
    for (size_t i = 0; i < l->nslots; i++)
        if (l->slots[i].key == key)
            return &l->slots[i].data;
    if (l->nslots == MAX_SLOTS)
        return NULL;
    l->slots[l->nslots].key = key;
    l->slots[l->nslots].data = NULL;
    l->slots[l->nslots].dispose = dispose;
    l->slots[l->nslots].on_stop = NULL;
    return &l->slots[l->nslots++].data;
}

void mk_httpd_loop_on_stop(mk_httpd_loop_t *l, const void *key, void (*on_stop)(void *data))
{
    for (size_t i = 0; i < l->nslots; i++)
        if (l->slots[i].key == key)
            l->slots[i].on_stop = on_stop;
}

void mk_httpd_loop_stopping(struct st_h2o_context_t *ctx)
{
    void **data = h2o_context_get_storage(ctx, &context_key, on_context_dispose);
    mk_httpd_loop_t *l = *data;
    for (size_t i = 0; l && i < l->nslots; i++)
        if (l->slots[i].on_stop != NULL && l->slots[i].data != NULL)
            l->slots[i].on_stop(l->slots[i].data);
}

bool mk_httpd_loop_disposing(const mk_httpd_loop_t *l)
{
    return l->disposing;
}

uint64_t mk_httpd_loop_now(mk_httpd_loop_t *l)
{
    return h2o_now(l->evloop);
}

/* ---- watchers ---- */

static void on_sock_read(h2o_socket_t *sock, const char *err)
{
    (void)err; /* with DONT_READ h2o reads nothing: errors show up in the owner's own read */
    mk_httpd_watch_t *w = sock->data;
    w->on_read(w->ud);
}

static void on_sock_writable(h2o_socket_t *sock, const char *err)
{
    (void)err;
    mk_httpd_watch_t *w = sock->data;
    w->notify_pending = false;
    if (!w->want_write)
        return;
    w->want_write = false;
    w->on_write(w->ud);
}

mk_httpd_watch_t *mk_httpd_watch_new(mk_httpd_loop_t *l, int fd, mk_httpd_watch_cb on_read,
                                     mk_httpd_watch_cb on_write, void *ud)
{
    mk_httpd_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        free(w);
        return NULL;
    }
    w->sock = h2o_evloop_socket_create(l->evloop, dup_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->sock->data = w;
    w->on_read = on_read;
    w->on_write = on_write;
    w->ud = ud;
    return w;
}

void mk_httpd_watch_read(mk_httpd_watch_t *w, bool on)
{
    if (on == w->reading)
        return;
    w->reading = on;
    if (on)
        h2o_socket_read_start(w->sock, on_sock_read);
    else
        h2o_socket_read_stop(w->sock);
}

void mk_httpd_watch_write(mk_httpd_watch_t *w, bool on)
{
    w->want_write = on;
    if (on && !w->notify_pending) {
        w->notify_pending = true;
        h2o_socket_notify_write(w->sock, on_sock_writable);
    }
}

void mk_httpd_watch_free(mk_httpd_watch_t *w)
{
    if (w == NULL)
        return;
    /* h2o unregisters the dup from epoll, closes it, and frees the socket on its next turn (or
     * when the loop is destroyed); a disposed socket gets no more callbacks. */
    h2o_socket_close(w->sock);
    free(w);
}

/* ---- timers ---- */

static void on_timer(h2o_timeout_entry_t *entry)
{
    mk_httpd_timer_t *t = (mk_httpd_timer_t *)((char *)entry - offsetof(mk_httpd_timer_t, entry));
    t->cb(t->ud);
}

mk_httpd_timer_t *mk_httpd_timer_new(mk_httpd_loop_t *l, uint32_t period_ms, void (*cb)(void *ud),
                                     void *ud)
{
    mk_httpd_timer_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->loop = l;
    t->cb = cb;
    t->ud = ud;
    t->entry.cb = on_timer;
    h2o_timeout_init(l->evloop, &t->timeout, period_ms);
    return t;
}

void mk_httpd_timer_arm(mk_httpd_timer_t *t)
{
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
    h2o_timeout_link(t->loop->evloop, &t->timeout, &t->entry);
}

void mk_httpd_timer_disarm(mk_httpd_timer_t *t)
{
    if (h2o_timeout_is_linked(&t->entry))
        h2o_timeout_unlink(&t->entry);
}

bool mk_httpd_timer_armed(const mk_httpd_timer_t *t)
{
    return h2o_timeout_is_linked((h2o_timeout_entry_t *)&t->entry);
}

void mk_httpd_timer_free(mk_httpd_timer_t *t)
{
    if (t == NULL)
        return;
    mk_httpd_timer_disarm(t);
    h2o_timeout_dispose(t->loop->evloop, &t->timeout);
    free(t);
}

/* ---- requests answered later ---- */

void *mk_httpd_req_alloc_guard(mk_httpd_req_t *req, size_t size, void (*on_gone)(void *p))
{
    void *p = h2o_mem_alloc_shared(&mk_httpd_req_h2o(req)->pool, size, on_gone);
    memset(p, 0, size);
    return p;
}
