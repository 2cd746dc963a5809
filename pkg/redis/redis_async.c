/* One non-blocking Redis connection on a worker's event loop (hiredis's async API on our loop
 * hooks): commands of every request on that loop are pipelined on it, replies come back in order.
 * While the server is down, commands fail at once and a timer reconnects with backoff. */
#include "redis/redis.h"

#include "redis/sentinel.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS        100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define REPLY_STACK    8

typedef enum astate {
    A_DOWN,       /* no connection; commands fail fast; the tick reconnects at retry_at */
    A_CONNECTING, /* connect in flight: commands queue behind it */
    A_READY,
} astate_t;

/* hiredis calls its event hooks with ev.data: one of these per hiredis context, so a new
 * connection never shares a watcher with a dying one. hiredis runs the disconnect callback after
 * the cleanup hook, so a cleaned-up one waits on the dead list until no callback can see it. */
typedef struct aconn {
    mk_redis_async_t *a;
    redisAsyncContext *ac;
    mk_httpd_watch_t *w;
    struct aconn *next_dead;
} aconn_t;

typedef struct acmd {
    mk_redis_async_t *a;
    mk_redis_async_cb cb;
    void *ud;
} acmd_t;

struct mk_redis_async {
    mk_httpd_loop_t *loop;
    char *host;
    char *password;
    int port;
    int db;
    uint64_t timeout_ms;
    astate_t state;
    aconn_t *conn; /* NULL unless CONNECTING or READY */
    mk_httpd_timer_t *tick;
    mk_httpd_timer_t *flush; /* 0 ms: writes the commands queued during this loop turn */
    bool in_flush;
    uint64_t retry_at;
    uint64_t backoff_ms;
    uint64_t connect_started;
    uint64_t last_progress; /* last reply, or when the first of the pending commands was sent */
    size_t pending;         /* commands sent and not yet answered */
    bool closing;
    aconn_t *dead;
    char down[256];                /* why the last connection failed, repeated while down */
    mk_redis_sentinel_t *sentinel; /* NULL: host and port are the server */
    uint64_t gen;                  /* the master address generation of conn */
};

static void tick_arm(mk_redis_async_t *a)
{
    if (!mk_httpd_timer_armed(a->tick))
        mk_httpd_timer_arm(a->tick);
}

static void go_down(mk_redis_async_t *a, const char *why)
{
    a->conn = NULL;
    a->state = A_DOWN;
    snprintf(a->down, sizeof a->down, "redis %s:%d: %s", a->host, a->port, why);
    uint64_t now = mk_httpd_loop_now(a->loop);
    a->retry_at = now + a->backoff_ms;
    a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
    if (a->sentinel != NULL && !a->closing)
        mk_redis_sentinel_suspect(a->sentinel);
    if (!a->closing)
        tick_arm(a);
}

/* hiredis's messages start with a capital ("Connection refused"); ours continue in lower case. */
static const char *lowered(const char *msg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", msg && msg[0] ? msg : "connection lost");
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
        buf[0] = (char)(buf[0] + 32);
    return buf;
}

/* ---- event hooks ---- */

static void on_readable(void *ud)
{
    aconn_t *c = ud;
    redisAsyncHandleRead(c->ac);
}

static void on_writable(void *ud)
{
    aconn_t *c = ud;
    redisAsyncHandleWrite(c->ac);
}

static void ev_add_read(void *p)
{
    if (((aconn_t *)p)->w != NULL)
        mk_httpd_watch_read(((aconn_t *)p)->w, true);
}

static void ev_del_read(void *p)
{
    if (((aconn_t *)p)->w != NULL)
        mk_httpd_watch_read(((aconn_t *)p)->w, false);
}

/* Commands queued while the loop handles this turn's requests go out in one write at the end
 * of the turn, without waiting for a writability event; only a write the socket could not take
 * whole (and the connect) waits for one. */
static void ev_add_write(void *p)
{
    aconn_t *c = p;
    if (c->w == NULL)
        return;
    if (c->a->state == A_READY && !c->a->in_flush && c->a->conn == c) {
        if (!mk_httpd_timer_armed(c->a->flush))
            mk_httpd_timer_arm(c->a->flush);
        return;
    }
    mk_httpd_watch_write(c->w, true);
}

static void on_flush(void *ud)
{
    mk_redis_async_t *a = ud;
    if (a->conn == NULL || a->state != A_READY)
        return;
    a->in_flush = true;
    redisAsyncHandleWrite(a->conn->ac);
    a->in_flush = false;
}

static void ev_del_write(void *p)
{
    if (((aconn_t *)p)->w != NULL)
        mk_httpd_watch_write(((aconn_t *)p)->w, false);
}

static void ev_cleanup(void *p)
{
    aconn_t *c = p;
    mk_redis_async_t *a = c->a;
    mk_httpd_watch_free(c->w);
    c->w = NULL;
    if (a->conn == c) {
        /* The server closed it or I/O failed (our own drops mark the state first). */
        bool was_up = a->state == A_READY;
        char buf[200];
        go_down(a, lowered(c->ac->errstr, buf, sizeof buf));
        /* A connection that was up is retried on the next tick, not after a backoff. */
        if (was_up)
            a->retry_at = mk_httpd_loop_now(a->loop);
    }
    c->next_dead = c->a->dead;
    c->a->dead = c;
}

/* Only from outside hiredis's callbacks. */
static void free_dead(mk_redis_async_t *a)
{
    while (a->dead != NULL) {
        aconn_t *c = a->dead;
        a->dead = c->next_dead;
        free(c);
    }
}

/* ---- connection ---- */

static void on_connect(const redisAsyncContext *ac, int status)
{
    aconn_t *c = ac->ev.data;
    mk_redis_async_t *a = c->a;
    if (a->conn != c)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns. */
        char buf[200];
        go_down(a, lowered(ac->errstr, buf, sizeof buf));
        return;
    }
    a->state = A_READY;
    a->backoff_ms = BACKOFF_MIN_MS;
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *r = reply;
    const char *what = privdata;
    aconn_t *c = ac->ev.data;
    if (r == NULL || r->type != REDIS_REPLY_ERROR || c->a->conn != c)
        return;
    char msg[200];
    snprintf(msg, sizeof msg, "%s failed: %s", what, r->str);
    mk_redis_async_t *a = c->a;
    go_down(a, msg);
    /* Commands queued behind the failed AUTH/SELECT must not run: drop the connection (hiredis
     * defers the free until this callback returns). */
    redisAsyncDisconnect(ac);
}

/* Through Sentinel: a connection that reached a replica (a failover left it behind) goes. */
static void on_role_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    redisReply *r = reply;
    aconn_t *c = ac->ev.data;
    if (r == NULL || c->a->conn != c)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0)
        return;
    mk_redis_sentinel_suspect(c->a->sentinel);
    go_down(c->a, "not the master; asking the sentinels again");
    redisAsyncDisconnect(ac);
}

/* With Sentinel: the master's address now into host and port. */
static bool sentinel_address(mk_redis_async_t *a)
{
    char host[256];
    int port;
    mk_err_t err;
    if (mk_redis_sentinel_master(a->sentinel, host, sizeof host, &port, &a->gen, &err) != 0) {
        go_down(a, err.msg);
        return false;
    }
    if (strcmp(host, a->host) != 0) {
        char *h = strdup(host);
        if (h == NULL) {
            go_down(a, "out of memory");
            return false;
        }
        free(a->host);
        a->host = h;
    }
    a->port = port;
    return true;
}

static void conn_start(mk_redis_async_t *a)
{
    a->connect_started = mk_httpd_loop_now(a->loop);
    if (a->sentinel != NULL && !sentinel_address(a))
        return;
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (ac == NULL) {
        go_down(a, "out of memory");
        return;
    }
    if (ac->err) {
        char buf[200];
        go_down(a, lowered(ac->errstr, buf, sizeof buf));
        redisAsyncFree(ac);
        return;
    }
    aconn_t *c = calloc(1, sizeof *c);
    mk_httpd_watch_t *w =
        c ? mk_httpd_watch_new(a->loop, ac->c.fd, on_readable, on_writable, c) : NULL;
    if (w == NULL) {
        free(c);
        redisAsyncFree(ac);
        go_down(a, "cannot watch the socket");
        return;
    }
    c->a = a;
    c->ac = ac;
    c->w = w;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    a->conn = c;
    a->state = A_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    if (a->password != NULL) {
        const char *argv[] = {"AUTH", a->password};
        redisAsyncCommandArgv(ac, on_setup_reply, "AUTH", 2, argv, NULL);
    }
    if (a->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", a->db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(ac, on_setup_reply, "SELECT", 2, argv, NULL);
    }
    if (a->sentinel != NULL) {
        const char *argv[] = {"ROLE"};
        redisAsyncCommandArgv(ac, on_role_reply, NULL, 1, argv, NULL);
    }
    tick_arm(a);
}

/* Drops the connection: every pending command's callback runs with MK_EUNAVAIL. */
static void conn_kill(mk_redis_async_t *a, const char *why)
{
    aconn_t *c = a->conn;
    go_down(a, why);
    if (c != NULL)
        redisAsyncFree(c->ac);
}

static void on_tick(void *ud)
{
    mk_redis_async_t *a = ud;
    uint64_t now = mk_httpd_loop_now(a->loop);
    char why[64];
    free_dead(a);
    switch (a->state) {
    case A_DOWN:
        if (now >= a->retry_at)
            conn_start(a);
        else
            tick_arm(a);
        return;
    case A_CONNECTING:
        if (now - a->connect_started > a->timeout_ms) {
            snprintf(why, sizeof why, "connect timed out after %llu ms",
                     (unsigned long long)a->timeout_ms);
            conn_kill(a, why);
            return;
        }
        break;
    case A_READY:
        if (a->pending > 0 && now - a->last_progress > a->timeout_ms) {
            snprintf(why, sizeof why, "no reply for %llu ms", (unsigned long long)a->timeout_ms);
            conn_kill(a, why);
            return;
        }
        break;
    }
    if (a->state == A_CONNECTING || a->pending > 0)
        tick_arm(a);
}

int mk_redis_async_new(const mk_redis_opts_t *opts, mk_httpd_loop_t *loop, mk_redis_async_t **out,
                       mk_err_t *err)
{
    *out = NULL;
    if (opts == NULL || opts->sentinels == NULL || opts->sentinels[0] == '\0')
        return mk_redis_async_open(opts, NULL, loop, out, err);
    mk_redis_sentinel_t *s = NULL;
    int rc = mk_redis_sentinel_open(opts, &s, err);
    if (rc == 0) {
        mk_redis_opts_t o = *opts;
        o.host = "sentinel";
        o.port = 1;
        rc = mk_redis_async_open(&o, s, loop, out, err);
    }
    mk_redis_sentinel_close(s);
    return rc;
}

int mk_redis_async_open(const mk_redis_opts_t *opts, mk_redis_sentinel_t *sentinel,
                        mk_httpd_loop_t *loop, mk_redis_async_t **out, mk_err_t *err)
{
    *out = NULL;
    if (opts == NULL || opts->host == NULL || opts->host[0] == '\0' || opts->port <= 0 ||
        opts->port > 65535 || opts->db < 0 || opts->timeout_ms < 0)
        return mk_err_set(err, MK_EINVAL, "redis: host, port 1-65535, db >= 0 are required");
    mk_redis_async_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return mk_err_set(err, MK_ENOMEM, "redis: out of memory");
    a->loop = loop;
    a->sentinel = sentinel != NULL ? mk_redis_sentinel_ref(sentinel) : NULL;
    a->host = strdup(opts->host);
    a->password = opts->password && opts->password[0] ? strdup(opts->password) : NULL;
    a->port = opts->port;
    a->db = opts->db;
    a->timeout_ms = opts->timeout_ms > 0 ? (uint64_t)opts->timeout_ms : 1000;
    a->backoff_ms = BACKOFF_MIN_MS;
    a->tick = mk_httpd_timer_new(loop, TICK_MS, on_tick, a);
    a->flush = mk_httpd_timer_new(loop, 0, on_flush, a);
    if (a->host == NULL || a->tick == NULL || a->flush == NULL ||
        (opts->password && opts->password[0] && a->password == NULL)) {
        mk_redis_async_free(a);
        return mk_err_set(err, MK_ENOMEM, "redis: out of memory");
    }
    conn_start(a);
    *out = a;
    return 0;
}

void mk_redis_async_free(mk_redis_async_t *a)
{
    if (a == NULL)
        return;
    a->closing = true;
    if (a->conn != NULL) {
        aconn_t *c = a->conn;
        snprintf(a->down, sizeof a->down, "redis %s:%d: connection closed", a->host, a->port);
        a->conn = NULL;
        redisAsyncFree(c->ac);
    }
    free_dead(a);
    mk_httpd_timer_free(a->tick);
    mk_httpd_timer_free(a->flush);
    mk_redis_sentinel_close(a->sentinel);
    free(a->host);
    free(a->password);
    free(a);
}

bool mk_redis_async_up(const mk_redis_async_t *a)
{
    return a->state == A_READY;
}

/* ---- commands ---- */

/* A borrowed view of a hiredis reply: strings point into it; arrays get their element views in
 * elems (from stack when small). */
static void reply_view(const redisReply *in, mk_redis_reply_t *out, mk_redis_reply_t *stack,
                       size_t nstack)
{
    memset(out, 0, sizeof *out);
    switch (in->type) {
    case REDIS_REPLY_INTEGER:
        out->type = MK_REDIS_INT;
        out->integer = in->integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        out->type = in->type == REDIS_REPLY_ERROR ? MK_REDIS_ERR : MK_REDIS_STR;
        out->str = in->str;
        out->len = in->len;
        break;
    case REDIS_REPLY_ARRAY:
        out->type = MK_REDIS_ARR;
        /* Nested arrays show as NIL elements: the hot path has no use for them. */
        out->elems = in->elements <= nstack ? stack : calloc(in->elements, sizeof *out->elems);
        if (out->elems == NULL)
            break;
        out->nelems = in->elements;
        for (size_t i = 0; i < in->elements; i++)
            if (in->element[i]->type != REDIS_REPLY_ARRAY)
                reply_view(in->element[i], &out->elems[i], NULL, 0);
            else
                memset(&out->elems[i], 0, sizeof out->elems[i]);
        break;
    default:
        out->type = MK_REDIS_NIL;
        break;
    }
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    acmd_t *cmd = privdata;
    mk_redis_async_t *a = cmd->a;
    redisReply *r = reply;
    mk_err_t err = {0};
    int rc = 0;
    mk_redis_reply_t view = {0};
    mk_redis_reply_t stack[REPLY_STACK];
    a->pending--;
    if (r == NULL && a->conn != NULL && a->conn->ac == ac) {
        /* The server went away: the state changes when hiredis cleans up, after this. */
        char buf[200];
        rc = mk_err_set(&err, MK_EUNAVAIL, "redis %s:%d: %s", a->host, a->port,
                        lowered(ac->errstr, buf, sizeof buf));
    } else if (r == NULL) {
        rc = mk_err_set(&err, MK_EUNAVAIL, "%s", a->down[0] ? a->down : "redis: connection lost");
    } else {
        a->last_progress = mk_httpd_loop_now(a->loop);
        reply_view(r, &view, stack, REPLY_STACK);
        if (r->type == REDIS_REPLY_ERROR) {
            bool away = mk_redis_reply_unavailable(r->str);
            rc = mk_err_set(&err, away ? MK_EUNAVAIL : MK_EIO, "redis %s:%d: %s", a->host, a->port,
                            r->str);
            snprintf(err.cause, sizeof err.cause, "%s", r->str);
            if (away && a->sentinel != NULL)
                mk_redis_sentinel_suspect(a->sentinel);
        }
    }
    cmd->cb(cmd->ud, rc, r != NULL ? &view : NULL, &err);
    if (view.elems != NULL && view.elems != stack)
        free(view.elems);
    free(cmd);
}

int mk_redis_async_cmd(mk_redis_async_t *a, int argc, const char *const *argv,
                       const size_t *argvlen, mk_redis_async_cb cb, void *ud, mk_err_t *err)
{
    /* The sentinels named another master: move there now (commands pending on the old
     * connection fail with MK_EUNAVAIL). */
    if (a->sentinel != NULL && a->conn != NULL && a->gen != mk_redis_sentinel_gen(a->sentinel)) {
        conn_kill(a, "master changed");
        conn_start(a);
    }
    if (a->state == A_DOWN || a->conn == NULL)
        return mk_err_set(err, MK_EUNAVAIL, "%s", a->down[0] ? a->down : "redis: not connected");
    acmd_t *cmd = malloc(sizeof *cmd);
    if (cmd == NULL)
        return mk_err_set(err, MK_ENOMEM, "redis: out of memory");
    *cmd = (acmd_t){a, cb, ud};
    if (redisAsyncCommandArgv(a->conn->ac, on_reply, cmd, argc, (const char **)argv, argvlen) !=
        REDIS_OK) {
        free(cmd);
        return mk_err_set(err, MK_EUNAVAIL, "redis %s:%d: connection is closing", a->host, a->port);
    }
    if (a->pending++ == 0)
        a->last_progress = mk_httpd_loop_now(a->loop);
    tick_arm(a);
    return 0;
}
