/* The Duktape sandbox (see js.h): a capped allocator, a prelude loaded once, and one forked child
 * per call that runs on a copy-on-write snapshot of the engine under a parent-side deadline. */
#include "js/js.h"

#include <duktape.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_HEAP   ((size_t)64 << 20)
#define DEFAULT_MAX_OUTPUT ((size_t)16 << 20)

/* What the child reports first, before its payload. */
enum { REPLY_OK = 'O', REPLY_THREW = 'X', REPLY_MEMORY = 'M', REPLY_FATAL = 'F', REPLY_BIG = 'B' };

struct mk_js {
    mk_js_limits_t lim;
    char *bytecode; /* the prelude, compiled once in mk_js_new */
    size_t bytecode_len;
    mk_js_host_fn host;
    void *host_ctx; /* a copy of what mk_js_new was given */
    size_t host_ctx_len;
    int via_server; /* the worker is the fork server's child, not ours */
    pid_t worker;   /* 0: not running */
    int sock;       /* our end of the socket pair to the worker; -1 when none */
};

/* The worker's engine: a fresh heap per call, with its allocation count. */
typedef struct heap {
    mk_js_t *js;
    size_t used;  /* bytes the engine holds */
    int cap_hit;  /* the allocator refused a request */
    int in_child; /* in the worker: fatal errors are reported and end the process */
    int fd;       /* the worker's end of the socket pair */
    size_t max;   /* max_heap_bytes */
} heap_t;

/* Each block carries its size in front, so frees and reallocs keep the count exact. */
typedef union block_head {
    size_t size;
    max_align_t align;
} block_head_t;

static void *js_alloc(void *ud, duk_size_t size)
{
    heap_t *js = ud;
    if (size == 0)
        return NULL;
    if (size > js->max || js->used + size > js->max) {
        js->cap_hit = 1;
        return NULL;
    }
    block_head_t *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->size = size;
    js->used += size;
    return b + 1;
}

static void js_free(void *ud, void *ptr)
{
    heap_t *js = ud;
    if (!ptr)
        return;
    block_head_t *b = (block_head_t *)ptr - 1;
    js->used -= b->size;
    free(b);
}

static void *js_realloc(void *ud, void *ptr, duk_size_t size)
{
    heap_t *js = ud;
    if (!ptr)
        return js_alloc(ud, size);
    if (size == 0) {
        js_free(ud, ptr);
        return NULL;
    }
    block_head_t *b = (block_head_t *)ptr - 1;
    size_t old = b->size;
    if (size > old && (size - old > js->max - js->used)) {
        js->cap_hit = 1;
        return NULL;
    }
    block_head_t *n = realloc(b, sizeof *n + size);
    if (!n)
        return NULL;
    n->size = size;
    js->used = js->used - old + size;
    return n + 1;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reads exactly len bytes before the deadline (none when it is negative): 1 done, 0 timed out,
 * -1 closed or failed. */
static int read_until(int fd, void *buf, size_t len, long deadline)
{
    char *p = buf;
    while (len) {
        int wait = -1;
        if (deadline >= 0) {
            long left = deadline - now_ms();
            if (left <= 0)
                return 0;
            wait = (int)(left > 1000000 ? 1000000 : left);
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int n = poll(&pf, 1, wait);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 1;
}

static int read_all(int fd, void *buf, size_t len)
{
    return read_until(fd, buf, len, -1) == 1 ? 0 : -1;
}

/* Frames on the socket pair: a 4-byte length, then the bytes. */
static int send_frame(int fd, const char *data, size_t len)
{
    uint32_t n = (uint32_t)len;
    if (len > UINT32_MAX)
        return -1;
    return write_all(fd, &n, sizeof n) < 0 || write_all(fd, data, len) < 0 ? -1 : 0;
}

static char *recv_frame(int fd, size_t *len)
{
    uint32_t n;
    if (read_all(fd, &n, sizeof n) < 0)
        return NULL;
    char *b = malloc((size_t)n + 1);
    if (!b || read_all(fd, b, n) < 0) {
        free(b);
        return NULL;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* The worker's reply: one kind byte, then a frame. */
static void worker_reply(heap_t *h, char kind, const char *payload, size_t len)
{
    if (write_all(h->fd, &kind, 1) < 0 || send_frame(h->fd, payload, len) < 0)
        _exit(3);
}

/* Duktape calls this on errors it cannot throw (out of memory at the wrong moment, internal
 * errors). It must not return: in the worker it reports and exits. */
static void js_fatal(void *ud, const char *msg)
{
    heap_t *h = ud;
    if (h->in_child) {
        if (h->cap_hit)
            worker_reply(h, REPLY_MEMORY, "", 0);
        else
            worker_reply(h, REPLY_FATAL, msg ? msg : "", msg ? strlen(msg) : 0);
        _exit(2);
    }
    fprintf(stderr, "js: fatal error in the prelude: %s\n", msg ? msg : "?");
    abort();
}

/* __mk_host(name, arg): the embedder's one host function, run in the worker. */
static duk_ret_t js_host(duk_context *ctx)
{
    duk_memory_functions mf;
    duk_get_memory_functions(ctx, &mf);
    heap_t *h = mf.udata;
    mk_js_t *js = h->js;
    const char *name = duk_require_string(ctx, 0);
    duk_size_t alen = 0;
    const char *arg = duk_require_lstring(ctx, 1, &alen);
    if (!js->host)
        return duk_error(ctx, DUK_ERR_ERROR, "no host functions in this sandbox");
    char *out = NULL;
    size_t olen = 0;
    mk_err_t err = {0};
    int rc = js->host(js->host_ctx, name, arg, alen, &out, &olen, &err);
    if (rc < 0) {
        free(out);
        return duk_error(ctx, DUK_ERR_ERROR, "%s", err.msg[0] ? err.msg : "host call failed");
    }
    duk_push_lstring(ctx, out ? out : "", out ? olen : 0);
    free(out);
    return 1;
}

/* The error at the top of the stack as text: its stack trace when it has one. */
static const char *error_text(duk_context *ctx, duk_size_t *len)
{
    if (duk_is_error(ctx, -1)) {
        duk_get_prop_string(ctx, -1, "stack");
        if (duk_is_string(ctx, -1))
            duk_replace(ctx, -2);
        else
            duk_pop(ctx);
    }
    return duk_safe_to_lstring(ctx, -1, len);
}

static duk_context *heap_open(heap_t *h)
{
    duk_context *ctx = duk_create_heap(js_alloc, js_realloc, js_free, h, js_fatal);
    if (!ctx)
        return NULL;
    duk_push_c_function(ctx, js_host, 2);
    duk_put_global_string(ctx, "__mk_host");
    return ctx;
}

int mk_js_new(const mk_js_limits_t *lim, const char *prelude, size_t prelude_len, const char *name,
              mk_js_host_fn host, const void *host_ctx, size_t host_ctx_len, mk_js_t **out,
              mk_err_t *err)
{
    *out = NULL;
    mk_js_t *js = calloc(1, sizeof *js);
    if (!js)
        return mk_err_set(err, MK_ENOMEM, "js: out of memory");
    if (lim)
        js->lim = *lim;
    if (js->lim.timeout_ms <= 0)
        js->lim.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!js->lim.max_heap_bytes)
        js->lim.max_heap_bytes = DEFAULT_MAX_HEAP;
    if (!js->lim.max_output_bytes)
        js->lim.max_output_bytes = DEFAULT_MAX_OUTPUT;
    js->host = host;
    js->host_ctx = malloc(host_ctx_len ? host_ctx_len : 1);
    if (!js->host_ctx) {
        free(js);
        return mk_err_set(err, MK_ENOMEM, "js: out of memory");
    }
    if (host_ctx_len)
        memcpy(js->host_ctx, host_ctx, host_ctx_len);
    js->host_ctx_len = host_ctx_len;
    js->sock = -1;

    /* Compile once here, keep the bytecode, and run it once to catch the prelude's own errors. */
    int rc = 0;
    heap_t h = {.js = js, .max = js->lim.max_heap_bytes};
    duk_context *ctx = heap_open(&h);
    if (!ctx) {
        rc = mk_err_set(err, MK_ENOMEM, "js: cannot create the engine's heap");
        goto out;
    }
    duk_push_string(ctx, name ? name : "prelude");
    if (duk_pcompile_lstring_filename(ctx, 0, prelude ? prelude : "", prelude ? prelude_len : 0)) {
        rc = mk_err_set(err, MK_EINVAL, "js: %s: %s", name ? name : "prelude",
                        duk_safe_to_string(ctx, -1));
        goto out;
    }
    duk_dup(ctx, -1);
    duk_dump_function(ctx);
    duk_size_t blen = 0;
    void *bc = duk_get_buffer(ctx, -1, &blen);
    js->bytecode = malloc(blen ? blen : 1);
    if (!js->bytecode) {
        rc = mk_err_set(err, MK_ENOMEM, "js: out of memory");
        goto out;
    }
    memcpy(js->bytecode, bc, blen);
    js->bytecode_len = blen;
    duk_pop(ctx);
    if (duk_pcall(ctx, 0)) {
        duk_size_t len;
        rc = mk_err_set(err, MK_EINVAL, "js: %s: %s", name ? name : "prelude",
                        error_text(ctx, &len));
        goto out;
    }
out:
    if (ctx)
        duk_destroy_heap(ctx);
    if (rc < 0)
        mk_js_free(js);
    else
        *out = js;
    return rc;
}

static void worker_stop(mk_js_t *js)
{
    /* Kill before closing: a live worker exits by itself once its socket closes, and the fork
     * server reaps it at once, so a kill after the close could reach a reused pid. */
    if (js->worker > 0) {
        kill(js->worker, SIGKILL);
        /* the fork server reaps its own children */
        while (!js->via_server && waitpid(js->worker, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    js->worker = 0;
    if (js->sock >= 0)
        close(js->sock);
    js->sock = -1;
}

void mk_js_free(mk_js_t *js)
{
    if (!js)
        return;
    worker_stop(js);
    free(js->bytecode);
    free(js->host_ctx);
    free(js);
}

/* A heap with the prelude run, or NULL with the reason sent as the reply. */
static duk_context *worker_heap(mk_js_t *js, heap_t *h)
{
    duk_context *ctx = heap_open(h);
    if (!ctx) {
        worker_reply(h, REPLY_FATAL, "cannot create a heap", 20);
        return NULL;
    }
    void *bc = duk_push_fixed_buffer(ctx, js->bytecode_len);
    memcpy(bc, js->bytecode, js->bytecode_len);
    duk_load_function(ctx);
    if (duk_pcall(ctx, 0)) {
        duk_size_t len = 0;
        const char *s = error_text(ctx, &len);
        worker_reply(h, h->cap_hit ? REPLY_MEMORY : REPLY_FATAL, s, len);
        duk_destroy_heap(ctx);
        return NULL;
    }
    duk_pop(ctx);
    return ctx;
}

/* One call in the worker: func(arg) on the worker's heap, then the reply. */
static void worker_call(mk_js_t *js, heap_t *h, duk_context *ctx, const char *func, const char *arg,
                        size_t arg_len)
{
    duk_size_t len = 0;
    const char *s;
    if (!duk_get_global_string(ctx, func) || !duk_is_function(ctx, -1)) {
        char msg[256];
        int n = snprintf(msg, sizeof msg, "no function %s in the sandbox", func);
        duk_pop(ctx);
        worker_reply(h, REPLY_THREW, msg, (size_t)n);
        return;
    }
    duk_push_lstring(ctx, arg, arg_len);
    int rc = duk_pcall(ctx, 1);
    s = rc ? error_text(ctx, &len) : duk_safe_to_lstring(ctx, -1, &len);
    if (h->cap_hit)
        worker_reply(h, REPLY_MEMORY, "", 0);
    else if (rc)
        worker_reply(h, REPLY_THREW, s, len);
    else if (len > js->lim.max_output_bytes)
        worker_reply(h, REPLY_BIG, "", 0);
    else
        worker_reply(h, REPLY_OK, s, len);
    duk_pop(ctx);
}

/* The worker serves calls until its socket closes. It keeps no descriptor but its socket, so it
 * holds none of the parent's connections open. Its heap lives from one call to the next unless
 * isolate_calls is set; after a memory failure the parent replaces the whole worker. Never
 * returns. */
static void worker_main(mk_js_t *js, int fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (fd != 3) {
        dup2(fd, 3);
        fd = 3;
    }
    close_range(4, ~0U, 0);
    heap_t h = {.js = js, .in_child = 1, .fd = fd, .max = js->lim.max_heap_bytes};
    duk_context *ctx = NULL;
    for (;;) {
        size_t flen = 0, alen = 0;
        char *func = recv_frame(fd, &flen);
        char *arg = func ? recv_frame(fd, &alen) : NULL;
        if (!arg)
            _exit(0);
        h.cap_hit = 0;
        if (!ctx)
            ctx = worker_heap(js, &h);
        if (ctx) {
            worker_call(js, &h, ctx, func, arg, alen);
            if (js->lim.isolate_calls) {
                duk_destroy_heap(ctx);
                ctx = NULL;
            } else {
                /* the next call starts without this one's garbage (cycles included) */
                duk_gc(ctx, 0);
            }
        }
        free(func);
        free(arg);
    }
}

/* The fork server (mk_js_init): a process forked while the embedder was still single-threaded,
 * which forks workers on request. A worker forked straight from a threaded process may inherit a
 * lock another thread held at that instant (seen with ASan's allocator; OpenSSL under
 * pm.sendRequest is the same risk), and then hangs on its first allocation. */
static struct {
    pthread_mutex_t mu;
    int sock; /* to the server; -1: none */
    pid_t pid;
} server = {PTHREAD_MUTEX_INITIALIZER, -1, 0};

/* What the server needs to fork a worker: everything mk_js_t holds, by value. */
typedef struct spawn_req {
    mk_js_limits_t lim;
    mk_js_host_fn host; /* valid in the server: it is a fork of this very image */
    uint32_t bytecode_len, host_ctx_len;
} spawn_req_t;

static int send_fd(int sock, const void *data, size_t len, int fd)
{
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {(void *)data, len};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n;
    while ((n = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)len ? 0 : -1;
}

static int recv_fd(int sock, void *data, size_t len, int *fd)
{
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {data, len};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t n;
    while ((n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (n != (ssize_t)len || !c || c->cmsg_type != SCM_RIGHTS)
        return -1;
    memcpy(fd, CMSG_DATA(c), sizeof *fd);
    return 0;
}

/* The server: one spawn request at a time; each worker gets a fresh socket pair, whose other
 * end goes back with the worker's pid. Never returns. */
static void server_main(int fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGCHLD, SIG_IGN); /* workers are reaped by the kernel */
    if (fd != 3) {
        dup2(fd, 3);
        fd = 3;
    }
    close_range(4, ~0U, 0);
    for (;;) {
        spawn_req_t r;
        if (read_all(fd, &r, sizeof r) < 0)
            _exit(0);
        mk_js_t js = {.lim = r.lim, .host = r.host, .sock = -1};
        js.bytecode = malloc(r.bytecode_len ? r.bytecode_len : 1);
        js.host_ctx = malloc(r.host_ctx_len ? r.host_ctx_len : 1);
        js.bytecode_len = r.bytecode_len;
        js.host_ctx_len = r.host_ctx_len;
        if (!js.bytecode || !js.host_ctx || read_all(fd, js.bytecode, r.bytecode_len) < 0 ||
            read_all(fd, js.host_ctx, r.host_ctx_len) < 0)
            _exit(0);
        int sv[2];
        pid_t pid = -1;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
            pid = fork();
            if (pid == 0) {
                close(fd);
                close(sv[0]);
                worker_main(&js, sv[1]);
            }
            close(sv[1]);
        }
        int32_t reply = (int32_t)pid;
        if (pid > 0 ? send_fd(fd, &reply, sizeof reply, sv[0]) < 0
                    : write_all(fd, &reply, sizeof reply) < 0)
            _exit(0);
        if (pid > 0 || sv[0] >= 0)
            close(sv[0]);
        free(js.bytecode);
        free(js.host_ctx);
    }
}

int mk_js_init(mk_err_t *err)
{
    pthread_mutex_lock(&server.mu);
    int rc = 0;
    if (server.pid > 0)
        goto out;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = mk_err_set(err, MK_EINTERNAL, "js: socketpair: %s", strerror(errno));
        goto out;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        rc = mk_err_set(err, MK_EINTERNAL, "js: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        close(sv[0]);
        server_main(sv[1]);
    }
    close(sv[1]);
    server.sock = sv[0];
    server.pid = pid;
out:
    pthread_mutex_unlock(&server.mu);
    return rc;
}

/* Asks the fork server for a worker; -1 when there is no server or it failed. */
static int worker_from_server(mk_js_t *js)
{
    pthread_mutex_lock(&server.mu);
    int rc = -1;
    if (server.pid <= 0)
        goto out;
    spawn_req_t r = {.lim = js->lim,
                     .host = js->host,
                     .bytecode_len = (uint32_t)js->bytecode_len,
                     .host_ctx_len = (uint32_t)js->host_ctx_len};
    int32_t pid = -1;
    int fd = -1;
    if (write_all(server.sock, &r, sizeof r) < 0 ||
        write_all(server.sock, js->bytecode, js->bytecode_len) < 0 ||
        write_all(server.sock, js->host_ctx, js->host_ctx_len) < 0 ||
        recv_fd(server.sock, &pid, sizeof pid, &fd) < 0 || pid <= 0) {
        /* a server that went away is not asked again: workers fork directly from now on */
        if (fd >= 0)
            close(fd);
        close(server.sock);
        server.sock = -1;
        waitpid(server.pid, NULL, WNOHANG);
        server.pid = 0;
        goto out;
    }
    js->worker = pid;
    js->sock = fd;
    js->via_server = 1;
    rc = 0;
out:
    pthread_mutex_unlock(&server.mu);
    return rc;
}

static int worker_start(mk_js_t *js, mk_err_t *err)
{
    if (worker_from_server(js) == 0)
        return 0;
    js->via_server = 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return mk_err_set(err, MK_EINTERNAL, "js: socketpair: %s", strerror(errno));
    fflush(NULL); /* the worker must not flush our buffered output a second time */
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return mk_err_set(err, MK_EINTERNAL, "js: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(sv[0]);
        worker_main(js, sv[1]);
    }
    close(sv[1]);
    js->worker = pid;
    js->sock = sv[0];
    return 0;
}

/* Names the kind of failure in err->cause (see js.h); returns code. */
static int with_cause(mk_err_t *err, int code, const char *cause)
{
    if (err)
        snprintf(err->cause, sizeof err->cause, "%s", cause);
    return code;
}

/* The worker went away during a call: say how. */
static int worker_died(mk_js_t *js, mk_err_t *err)
{
    int status = 0, rc;
    /* A child of ours is a zombie until reaped, so its pid is safe to signal; the fork server's
     * child is gone already (its socket closed) and its pid may be someone else's by now. */
    if (!js->via_server) {
        kill(js->worker, SIGKILL);
        while (waitpid(js->worker, &status, 0) < 0 && errno == EINTR)
            ;
    }
    js->worker = 0;
    worker_stop(js);
    if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
        rc = mk_err_set(err, MK_EINTERNAL, "script engine died: %s (signal %d)",
                        strsignal(WTERMSIG(status)), WTERMSIG(status));
    else
        rc = mk_err_set(err, MK_EINTERNAL, "script engine died without an answer");
    return with_cause(err, rc, "crash");
}

int mk_js_call(mk_js_t *js, const char *func, const char *arg, size_t arg_len, char **out,
               size_t *out_len, mk_err_t *err)
{
    *out = NULL;
    if (out_len)
        *out_len = 0;
    int rc;
    /* A worker that died between calls is found out by the send; one restart is enough. */
    for (int attempt = 0;; attempt++) {
        if (!js->worker && (rc = worker_start(js, err)) < 0)
            return with_cause(err, rc, "crash");
        if (send_frame(js->sock, func, strlen(func)) == 0 &&
            send_frame(js->sock, arg ? arg : "", arg ? arg_len : 0) == 0)
            break;
        worker_stop(js);
        if (attempt)
            return with_cause(err, mk_err_set(err, MK_EINTERNAL, "js: cannot reach the worker"),
                              "crash");
    }
    long deadline = now_ms() + js->lim.timeout_ms;
    char kind;
    uint32_t len;
    int got = read_until(js->sock, &kind, 1, deadline);
    if (got == 1)
        got = read_until(js->sock, &len, sizeof len, deadline);
    if (got == 0) {
        worker_stop(js);
        rc = mk_err_set(err, MK_EUNAVAIL, "script did not finish within %ld ms (time limit)",
                        js->lim.timeout_ms);
        return with_cause(err, rc, "timeout");
    }
    if (got < 0)
        return worker_died(js, err);
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        worker_stop(js);
        return with_cause(err, mk_err_set(err, MK_ENOMEM, "js: out of memory"), "crash");
    }
    got = read_until(js->sock, buf, len, deadline);
    if (got < 0) {
        free(buf);
        return worker_died(js, err);
    }
    if (got == 0) {
        free(buf);
        worker_stop(js);
        rc = mk_err_set(err, MK_EUNAVAIL, "script result not read within %ld ms (time limit)",
                        js->lim.timeout_ms);
        return with_cause(err, rc, "timeout");
    }
    buf[len] = '\0';
    rc = 0;
    switch (kind) {
    case REPLY_OK:
        *out = buf;
        buf = NULL;
        if (out_len)
            *out_len = len;
        break;
    case REPLY_THREW:
        rc = with_cause(err, mk_err_set(err, MK_EINVAL, "%s", buf), "exception");
        break;
    case REPLY_MEMORY:
        rc = mk_err_set(err, MK_ETOOBIG, "script used more memory than allowed (%zu KiB limit)",
                        js->lim.max_heap_bytes >> 10);
        with_cause(err, rc, "memory");
        break;
    case REPLY_BIG:
        rc = mk_err_set(err, MK_ETOOBIG, "script result over the %zu byte limit",
                        js->lim.max_output_bytes);
        with_cause(err, rc, "memory");
        break;
    default:
        rc = with_cause(err, mk_err_set(err, MK_EINTERNAL, "script engine failed: %s", buf),
                        "crash");
        break;
    }
    free(buf);
    /* A fatal error ends the worker (see js_fatal); a heap that hit its limit may hold what the
     * script kept in globals: either way the next call gets a new worker. */
    if (kind == REPLY_FATAL && js->via_server)
        js->worker = 0; /* it exits by itself (js_fatal); see worker_died on signalling it */
    if (kind == REPLY_FATAL || kind == REPLY_MEMORY)
        worker_stop(js);
    return rc;
}
