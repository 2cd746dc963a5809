/* hiredis behind our types: a pool of blocking connections picked per thread, reconnection with a
 * fail-fast window while the server is down, pipelining, and a pub/sub subscriber thread. */
#include "redis/redis.h"

#include "redis/sentinel.h"

#include <hiredis/hiredis.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POOL_SLOTS      16
#define RETRY_MS        100 /* a slot whose connect failed waits this long before trying again */
#define SUB_BACKOFF_MIN 100
#define SUB_BACKOFF_MAX 5000
#define CMD_STACK_ARGS  8

typedef struct slot {
    pthread_mutex_t mu;
    redisContext *c;  /* NULL while disconnected */
    uint64_t gen;     /* with Sentinel: the master address generation c was made for */
    int64_t retry_at; /* monotonic ms; no connect attempt before it */
    char down[256];   /* message of the last failed connect, repeated while waiting */
} slot_t;

typedef struct conn_opts {
    char *host;
    char *password; /* NULL = no AUTH */
    int port;
    int db;
    int timeout_ms;
    mk_redis_sentinel_t *sentinel; /* NULL: host and port are the server */
} conn_opts_t;

struct mk_redis {
    conn_opts_t o;
    bool guard_sigpipe; /* SIGPIPE was not ignored at creation: block it around socket writes */
    slot_t slots[POOL_SLOTS];
};

/* Each thread has a home slot, handed out round-robin, so worker threads rarely share a mutex. */
static _Thread_local int tl_slot = -1;
static atomic_uint next_slot;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval ms_tv(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static void conn_opts_free(conn_opts_t *o)
{
    free(o->host);
    free(o->password);
    mk_redis_sentinel_close(o->sentinel);
    o->host = o->password = NULL;
    o->sentinel = NULL;
}

static int conn_opts_copy(conn_opts_t *o, const mk_redis_opts_t *in, mk_err_t *err)
{
    memset(o, 0, sizeof *o);
    bool sentinels = in != NULL && in->sentinels != NULL && in->sentinels[0] != '\0';
    if (sentinels) {
        int rc = mk_redis_sentinel_open(in, &o->sentinel, err);
        if (rc != 0)
            return rc;
        /* Named in messages until a master is known. */
        o->host = strdup("sentinel");
        o->password = in->password != NULL && in->password[0] != '\0' ? strdup(in->password) : NULL;
        o->db = in->db < 0 ? 0 : in->db;
        o->timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : 1000;
        if (o->host == NULL || (in->password != NULL && in->password[0] != '\0' && !o->password)) {
            conn_opts_free(o);
            return mk_err_set(err, MK_ENOMEM, "redis: out of memory");
        }
        return 0;
    }
    if (in == NULL || in->host == NULL || in->host[0] == '\0')
        return mk_err_set(err, MK_EINVAL, "redis: host is required");
    if (in->port <= 0 || in->port > 65535)
        return mk_err_set(err, MK_EINVAL, "redis: port %d out of range 1-65535", in->port);
    if (in->db < 0)
        return mk_err_set(err, MK_EINVAL, "redis: db %d is negative", in->db);
    if (in->timeout_ms < 0)
        return mk_err_set(err, MK_EINVAL, "redis: timeout_ms %d is negative", in->timeout_ms);
    o->host = strdup(in->host);
    if (in->password != NULL && in->password[0] != '\0')
        o->password = strdup(in->password);
    if (o->host == NULL || (in->password != NULL && in->password[0] != '\0' && !o->password)) {
        conn_opts_free(o);
        return mk_err_set(err, MK_ENOMEM, "redis: out of memory");
    }
    o->port = in->port;
    o->db = in->db;
    o->timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : 1000;
    return 0;
}

/* hiredis says "Connection refused"; our messages continue in lower case. */
static void describe_io(const conn_opts_t *o, const redisContext *c, int saved_errno, char *buf,
                        size_t len)
{
    char what[128];
    if (c == NULL) {
        snprintf(what, sizeof what, "out of memory");
    } else if (c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
        snprintf(what, sizeof what, "timed out after %d ms", o->timeout_ms);
    } else {
        snprintf(what, sizeof what, "%s", c->errstr[0] ? c->errstr : "I/O error");
        if (isupper((unsigned char)what[0]) && islower((unsigned char)what[1]))
            what[0] = (char)tolower((unsigned char)what[0]);
    }
    snprintf(buf, len, "redis %s:%d: %s", o->host, o->port, what);
}

static void set_cause(mk_err_t *err, const char *text, size_t len)
{
    if (err == NULL)
        return;
    if (len >= sizeof err->cause)
        len = sizeof err->cause - 1;
    memcpy(err->cause, text, len);
    err->cause[len] = '\0';
}

/* Through Sentinel: the connection must have reached the master (ROLE), not a replica left
 * behind by a failover. */
static bool is_master(redisContext *c, const conn_opts_t *o, char *msg, size_t msglen)
{
    redisReply *rep = redisCommand(c, "ROLE");
    bool ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
              rep->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(rep->element[0]->str, "master") == 0;
    if (!ok)
        snprintf(msg, msglen, "redis %s:%d: not the master (%s); asking the sentinels again",
                 o->host, o->port,
                 rep == NULL                      ? c->errstr
                 : rep->type == REDIS_REPLY_ERROR ? rep->str
                 : rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
                         rep->element[0]->type == REDIS_REPLY_STRING
                     ? rep->element[0]->str
                     : "unexpected ROLE reply");
    if (rep != NULL)
        freeReplyObject(rep);
    return ok;
}

static redisContext *conn_open_at(const conn_opts_t *o, char *msg, size_t msglen);

/* Connects, authenticates and selects the database; with Sentinel, to the master it names now
 * (*gen, when not NULL, gets that address's generation). NULL with msg filled on failure. */
static redisContext *conn_open(const conn_opts_t *o, char *msg, size_t msglen, int *code,
                               uint64_t *gen)
{
    *code = MK_EUNAVAIL;
    if (o->sentinel == NULL)
        return conn_open_at(o, msg, msglen);
    char host[256];
    conn_opts_t at = *o;
    mk_err_t err;
    if (mk_redis_sentinel_master(o->sentinel, host, sizeof host, &at.port, gen, &err) != 0) {
        snprintf(msg, msglen, "%.250s", err.msg);
        mk_redis_sentinel_suspect(o->sentinel);
        return NULL;
    }
    at.host = host;
    redisContext *c = conn_open_at(&at, msg, msglen);
    if (c != NULL && !is_master(c, &at, msg, msglen)) {
        redisFree(c);
        c = NULL;
    }
    if (c == NULL)
        mk_redis_sentinel_suspect(o->sentinel);
    return c;
}

static redisContext *conn_open_at(const conn_opts_t *o, char *msg, size_t msglen)
{
    redisContext *c = redisConnectWithTimeout(o->host, o->port, ms_tv(o->timeout_ms));
    int saved = errno;
    if (c == NULL || c->err) {
        describe_io(o, c, saved, msg, msglen);
        goto fail;
    }
    if (redisSetTimeout(c, ms_tv(o->timeout_ms)) != REDIS_OK) {
        describe_io(o, c, errno, msg, msglen);
        goto fail;
    }
    redisEnableKeepAlive(c);
    char dbtxt[16];
    snprintf(dbtxt, sizeof dbtxt, "%d", o->db);
    const char *auth[] = {"AUTH", o->password};
    const char *sel[] = {"SELECT", dbtxt};
    int n = 0;
    if (o->password != NULL) {
        redisAppendCommandArgv(c, 2, auth, NULL);
        n++;
    }
    if (o->db != 0) {
        redisAppendCommandArgv(c, 2, sel, NULL);
        n++;
    }
    const char *what[2] = {o->password != NULL ? "AUTH" : "SELECT", "SELECT"};
    bool failed = false;
    for (int i = 0; i < n; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK) {
            describe_io(o, c, errno, msg, msglen);
            goto fail;
        }
        if (rep->type == REDIS_REPLY_ERROR && !failed) {
            snprintf(msg, msglen, "redis %s:%d: %s failed: %s", o->host, o->port, what[i],
                     rep->str);
            failed = true;
        }
        freeReplyObject(rep);
    }
    if (failed)
        goto fail;
    return c;
fail:
    if (c != NULL)
        redisFree(c);
    return NULL;
}

int mk_redis_new(const mk_redis_opts_t *opts, mk_redis_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_redis_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return mk_err_set(err, MK_ENOMEM, "redis: out of memory");
    int rc = conn_opts_copy(&r->o, opts, err);
    if (rc != 0) {
        free(r);
        return rc;
    }
    struct sigaction sa;
    r->guard_sigpipe = !(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    for (int i = 0; i < POOL_SLOTS; i++)
        pthread_mutex_init(&r->slots[i].mu, NULL);
    *out = r;
    return 0;
}

void mk_redis_free(mk_redis_t *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < POOL_SLOTS; i++) {
        if (r->slots[i].c != NULL)
            redisFree(r->slots[i].c);
        pthread_mutex_destroy(&r->slots[i].mu);
    }
    conn_opts_free(&r->o);
    free(r);
}

static slot_t *slot_acquire(mk_redis_t *r)
{
    if (tl_slot < 0)
        tl_slot = (int)(atomic_fetch_add(&next_slot, 1) % POOL_SLOTS);
    for (int i = 0; i < POOL_SLOTS; i++) {
        slot_t *s = &r->slots[(tl_slot + i) % POOL_SLOTS];
        if (pthread_mutex_trylock(&s->mu) == 0)
            return s;
    }
    slot_t *s = &r->slots[tl_slot];
    pthread_mutex_lock(&s->mu);
    return s;
}

static void slot_drop(slot_t *s)
{
    if (s->c != NULL)
        redisFree(s->c);
    s->c = NULL;
}

/* An idle connection with something to read has been closed (or spoken to) by the server: a
 * restarted server shows up here, before we send a command into a dead socket. */
static bool conn_stale(const redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) != 0;
}

static int slot_ready(mk_redis_t *r, slot_t *s, mk_err_t *err)
{
    if (s->c != NULL && conn_stale(s->c))
        slot_drop(s);
    /* The sentinels named another master since this connection was made. */
    if (s->c != NULL && r->o.sentinel != NULL && s->gen != mk_redis_sentinel_gen(r->o.sentinel)) {
        slot_drop(s);
        s->retry_at = 0;
    }
    if (s->c != NULL)
        return 0;
    int64_t now = mono_ms();
    if (now < s->retry_at)
        return mk_err_set(err, MK_EUNAVAIL, "%s", s->down);
    int code;
    s->c = conn_open(&r->o, s->down, sizeof s->down, &code, &s->gen);
    if (s->c == NULL) {
        s->retry_at = now + RETRY_MS;
        return mk_err_set(err, code, "%s", s->down);
    }
    return 0;
}

/* Blocks SIGPIPE in this thread while writing to a socket the server may have closed, and
 * swallows the SIGPIPE that write raised, so the process keeps its own disposition. */
typedef struct pipe_guard {
    bool on;
    bool pending_before;
    sigset_t old;
} pipe_guard_t;

static void guard_enter(pipe_guard_t *g, bool on)
{
    g->on = on;
    if (!on)
        return;
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    sigpending(&pend);
    g->pending_before = sigismember(&pend, SIGPIPE) == 1;
}

static void guard_leave(pipe_guard_t *g)
{
    if (!g->on)
        return;
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pend);
    if (!g->pending_before && sigismember(&pend, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int reply_convert(const redisReply *in, mk_redis_reply_t *out)
{
    memset(out, 0, sizeof *out);
    switch (in->type) {
    case REDIS_REPLY_NIL:
        out->type = MK_REDIS_NIL;
        return 0;
    case REDIS_REPLY_INTEGER:
        out->type = MK_REDIS_INT;
        out->integer = in->integer;
        return 0;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        out->type = in->type == REDIS_REPLY_ERROR ? MK_REDIS_ERR : MK_REDIS_STR;
        out->str = malloc(in->len + 1);
        if (out->str == NULL)
            return MK_ENOMEM;
        if (in->len > 0)
            memcpy(out->str, in->str, in->len);
        out->str[in->len] = '\0';
        out->len = in->len;
        return 0;
    case REDIS_REPLY_ARRAY:
        out->type = MK_REDIS_ARR;
        if (in->elements == 0)
            return 0;
        out->elems = calloc(in->elements, sizeof *out->elems);
        if (out->elems == NULL)
            return MK_ENOMEM;
        out->nelems = in->elements;
        for (size_t i = 0; i < in->elements; i++) {
            int rc = reply_convert(in->element[i], &out->elems[i]);
            if (rc != 0)
                return rc;
        }
        return 0;
    default:
        out->type = MK_REDIS_NIL;
        return 0;
    }
}

static void reply_release(mk_redis_reply_t *r)
{
    free(r->str);
    for (size_t i = 0; i < r->nelems; i++)
        reply_release(&r->elems[i]);
    free(r->elems);
}

void mk_redis_reply_free(mk_redis_reply_t *reply)
{
    if (reply == NULL)
        return;
    reply_release(reply);
    free(reply);
}

static mk_redis_reply_t *reply_new(const redisReply *in)
{
    mk_redis_reply_t *out = malloc(sizeof *out);
    if (out == NULL)
        return NULL;
    if (reply_convert(in, out) != 0) {
        mk_redis_reply_free(out);
        return NULL;
    }
    return out;
}

/* Sends the commands and reads every reply on one connection of the pool; replies (may be NULL)
 * get the converted replies. */
static int run_cmds(mk_redis_t *r, const mk_redis_cmdspec_t *cmds, size_t n,
                    mk_redis_reply_t **replies, mk_err_t *err)
{
    if (replies != NULL)
        for (size_t i = 0; i < n; i++)
            replies[i] = NULL;
    for (size_t i = 0; i < n; i++)
        if (cmds[i].argc <= 0 || cmds[i].argv == NULL)
            return mk_err_set(err, MK_EINVAL, "redis: command %zu has no arguments", i);
    if (n == 0)
        return 0;

    slot_t *s = slot_acquire(r);
    pipe_guard_t g;
    guard_enter(&g, r->guard_sigpipe);
    int rc = slot_ready(r, s, err);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (redisAppendCommandArgv(s->c, cmds[i].argc, (const char **)cmds[i].argv,
                                   cmds[i].argvlen) != REDIS_OK) {
            /* Only allocation fails here; the buffered commands make the connection unusable. */
            slot_drop(s);
            rc = mk_err_set(err, MK_ENOMEM, "redis: out of memory");
            goto out;
        }
    }
    bool have_err = false;
    for (size_t i = 0; i < n; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(s->c, (void **)&rep) != REDIS_OK) {
            char msg[256];
            describe_io(&r->o, s->c, errno, msg, sizeof msg);
            /* The server may have been restarted: reconnect at once on the next call. */
            slot_drop(s);
            s->retry_at = 0;
            if (r->o.sentinel != NULL)
                mk_redis_sentinel_suspect(r->o.sentinel);
            rc = mk_err_set(err, MK_EUNAVAIL, "%s", msg);
            goto out;
        }
        if (rep->type == REDIS_REPLY_ERROR && !have_err) {
            have_err = true;
            /* A master turned replica (failover) or one still loading is unavailable, not
             * broken: callers answer 503 and the next call may reach the new master. */
            bool away = mk_redis_reply_unavailable(rep->str);
            rc = mk_err_set(err, away ? MK_EUNAVAIL : MK_EIO, "redis %s:%d: %s", r->o.host,
                            r->o.port, rep->str);
            set_cause(err, rep->str, rep->len);
            if (away && r->o.sentinel != NULL)
                mk_redis_sentinel_suspect(r->o.sentinel);
        }
        if (replies != NULL) {
            replies[i] = reply_new(rep);
            if (replies[i] == NULL && rc == 0)
                rc = mk_err_set(err, MK_ENOMEM, "redis: out of memory");
        }
        freeReplyObject(rep);
    }
out:
    guard_leave(&g);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0 && rc != MK_EIO && replies != NULL) {
        for (size_t i = 0; i < n; i++) {
            mk_redis_reply_free(replies[i]);
            replies[i] = NULL;
        }
    }
    return rc;
}

int mk_redis_cmd(mk_redis_t *r, int argc, const char *const *argv, const size_t *argvlen,
                 mk_redis_reply_t **reply, mk_err_t *err)
{
    mk_redis_cmdspec_t spec = {argc, argv, argvlen};
    mk_redis_reply_t *rep = NULL;
    if (reply != NULL)
        *reply = NULL;
    int rc = run_cmds(r, &spec, 1, reply != NULL ? &rep : NULL, err);
    if (rc != 0) {
        mk_redis_reply_free(rep);
        return rc;
    }
    if (reply != NULL)
        *reply = rep;
    return 0;
}

int mk_redis_cmdv(mk_redis_t *r, mk_redis_reply_t **reply, mk_err_t *err, int argc,
                  const char *const *argv)
{
    return mk_redis_cmd(r, argc, argv, NULL, reply, err);
}

int mk_redis_pipeline(mk_redis_t *r, const mk_redis_cmdspec_t *cmds, size_t ncmds,
                      mk_redis_reply_t **replies, mk_err_t *err)
{
    return run_cmds(r, cmds, ncmds, replies, err);
}

int mk_redis_async_like(const mk_redis_t *r, mk_httpd_loop_t *loop, mk_redis_async_t **out,
                        mk_err_t *err)
{
    mk_redis_opts_t o = {.host = r->o.host,
                         .port = r->o.sentinel != NULL ? 1 : r->o.port,
                         .password = r->o.password,
                         .db = r->o.db,
                         .timeout_ms = r->o.timeout_ms};
    return mk_redis_async_open(&o, r->o.sentinel, loop, out, err);
}

bool mk_redis_reply_unavailable(const char *text)
{
    static const char *const codes[] = {"READONLY ", "MASTERDOWN ", "LOADING "};
    for (size_t i = 0; text != NULL && i < sizeof codes / sizeof *codes; i++)
        if (strncmp(text, codes[i], strlen(codes[i])) == 0)
            return true;
    return false;
}

int mk_redis_ping(mk_redis_t *r, double *latency_ms, mk_err_t *err)
{
    static const char *const argv[] = {"PING"};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = mk_redis_cmd(r, 1, argv, NULL, NULL, err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (latency_ms != NULL)
        *latency_ms =
            rc == 0 ? (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6
                    : 0;
    return rc;
}

/* ---- subscriber ---- */

struct mk_redis_sub {
    conn_opts_t o;
    char *channel;
    mk_redis_msg_cb on_message;
    mk_redis_connect_cb on_connect;
    void *ud;
    int wake[2]; /* a byte on wake[1] tells the thread to stop */
    atomic_bool stop;
    pthread_t thread;
};

/* Waits up to ms for the stop signal; true when stopping. */
static bool sub_wait_stop(mk_redis_sub_t *sub, int ms)
{
    if (atomic_load(&sub->stop))
        return true;
    struct pollfd p = {.fd = sub->wake[0], .events = POLLIN};
    poll(&p, 1, ms);
    return atomic_load(&sub->stop);
}

static redisContext *sub_connect(mk_redis_sub_t *sub, uint64_t *gen)
{
    char msg[256];
    int code;
    redisContext *c = conn_open(&sub->o, msg, sizeof msg, &code, gen);
    if (c == NULL)
        return NULL;
    const char *argv[] = {"SUBSCRIBE", sub->channel};
    redisReply *rep = redisCommandArgv(c, 2, argv, NULL);
    bool ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
              rep->element[0]->type == REDIS_REPLY_STRING &&
              strcmp(rep->element[0]->str, "subscribe") == 0;
    if (rep != NULL)
        freeReplyObject(rep);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void sub_deliver(mk_redis_sub_t *sub, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        return;
    const redisReply *kind = rep->element[0], *payload = rep->element[2];
    if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "message") == 0 &&
        payload->type == REDIS_REPLY_STRING && sub->on_message != NULL)
        sub->on_message(sub->ud, payload->str, payload->len);
}

/* Delivers messages until the connection fails or stop is asked. Our own poll on the socket and
 * the wake pipe replaces a read timeout, so stopping is immediate. */
static void sub_loop(mk_redis_sub_t *sub, redisContext *c, uint64_t gen)
{
    while (!atomic_load(&sub->stop)) {
        /* With Sentinel, a new master means resubscribing there (and a resync by the caller). */
        if (sub->o.sentinel != NULL && mk_redis_sentinel_gen(sub->o.sentinel) != gen)
            return;
        void *rep = NULL;
        if (redisGetReplyFromReader(c, &rep) != REDIS_OK)
            return;
        if (rep != NULL) {
            sub_deliver(sub, rep);
            freeReplyObject(rep);
            continue;
        }
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                              {.fd = sub->wake[0], .events = POLLIN}};
        if (poll(p, 2, sub->o.sentinel != NULL ? 200 : -1) < 0 && errno != EINTR)
            return;
        if (p[1].revents != 0)
            return;
        if (p[0].revents != 0 && redisBufferRead(c) != REDIS_OK)
            return;
    }
}

static void *sub_main(void *arg)
{
    mk_redis_sub_t *sub = arg;
    int backoff = SUB_BACKOFF_MIN;
    while (!atomic_load(&sub->stop)) {
        uint64_t gen = 0;
        redisContext *c = sub_connect(sub, &gen);
        if (c == NULL) {
            if (sub_wait_stop(sub, backoff))
                break;
            /* Through Sentinel a failover is the likely cause: keep the retries close. */
            int max = sub->o.sentinel != NULL ? 1000 : SUB_BACKOFF_MAX;
            backoff = backoff * 2 > max ? max : backoff * 2;
            continue;
        }
        backoff = SUB_BACKOFF_MIN;
        if (sub->on_connect != NULL)
            sub->on_connect(sub->ud);
        sub_loop(sub, c, gen);
        redisFree(c);
        if (sub->o.sentinel != NULL)
            mk_redis_sentinel_suspect(sub->o.sentinel);
        /* A connection that just broke is retried after the first backoff step, not at once. */
        if (sub_wait_stop(sub, SUB_BACKOFF_MIN))
            break;
    }
    return NULL;
}

int mk_redis_subscribe(const mk_redis_opts_t *opts, const char *channel, mk_redis_msg_cb on_message,
                       mk_redis_connect_cb on_connect, void *ud, mk_redis_sub_t **out,
                       mk_err_t *err)
{
    *out = NULL;
    if (channel == NULL || channel[0] == '\0')
        return mk_err_set(err, MK_EINVAL, "redis subscribe: channel is required");
    mk_redis_sub_t *sub = calloc(1, sizeof *sub);
    if (sub == NULL)
        return mk_err_set(err, MK_ENOMEM, "redis subscribe: out of memory");
    sub->wake[0] = sub->wake[1] = -1;
    int rc = conn_opts_copy(&sub->o, opts, err);
    if (rc != 0)
        goto fail;
    sub->channel = strdup(channel);
    if (sub->channel == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "redis subscribe: out of memory");
        goto fail;
    }
    sub->on_message = on_message;
    sub->on_connect = on_connect;
    sub->ud = ud;
    if (pipe2(sub->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = mk_err_set(err, MK_EINTERNAL, "redis subscribe: pipe: %s", strerror(errno));
        goto fail;
    }
    /* The thread starts with every signal blocked: process signals (and SIGPIPE from a write
     * to a closed socket) are not its business. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&sub->thread, NULL, sub_main, sub);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        rc = mk_err_set(err, MK_EINTERNAL, "redis subscribe: pthread_create: %s", strerror(e));
        goto fail;
    }
    *out = sub;
    return 0;
fail:
    if (sub->wake[0] >= 0) {
        close(sub->wake[0]);
        close(sub->wake[1]);
    }
    free(sub->channel);
    conn_opts_free(&sub->o);
    free(sub);
    return rc;
}

void mk_redis_sub_free(mk_redis_sub_t *sub)
{
    if (sub == NULL)
        return;
    atomic_store(&sub->stop, true);
    ssize_t w = write(sub->wake[1], "x", 1);
    (void)w;
    pthread_join(sub->thread, NULL);
    close(sub->wake[0]);
    close(sub->wake[1]);
    free(sub->channel);
    conn_opts_free(&sub->o);
    free(sub);
}
