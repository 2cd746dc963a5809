/* The Sentinel watcher: a registry of shared watchers, each a thread asking its sentinels where
 * the master is and listening for +switch-master on one of them. */
#include "redis/sentinel.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SENTINELS 16
#define QUERY_MS      1000 /* asked at least this often */
#define SENTINEL_MS   500  /* connect and reply timeout per sentinel */

typedef struct addr {
    char host[256];
    int port;
} addr_t;

struct mk_redis_sentinel {
    /* registry */
    struct mk_redis_sentinel *next;
    int refs;
    char *key; /* sentinels \n master name \n password */
    /* configuration */
    addr_t sentinels[MAX_SENTINELS];
    int nsentinels;
    char *name;
    char *password;
    /* state, under mu */
    pthread_mutex_t mu;
    addr_t master;
    bool known;
    bool sentinels_up;
    char error[320];
    uint64_t switches;
    int good; /* the sentinel that answered last */
    atomic_uint_fast64_t gen;
    atomic_bool suspect;
    /* thread */
    pthread_t thread;
    bool started;
    atomic_bool stop;
    int wake[2];
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static mk_redis_sentinel_t *registry;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "host:port,host:port" (spaces around items allowed; [v6]:port too). */
static int parse_list(mk_redis_sentinel_t *s, const char *list, mk_err_t *err)
{
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *end = p + strcspn(p, ", ");
        size_t len = (size_t)(end - p);
        const char *colon = NULL;
        for (const char *c = p; c < end; c++)
            if (*c == ':')
                colon = c;
        if (s->nsentinels == MAX_SENTINELS)
            return mk_err_set(err, MK_EINVAL, "REPO_REDIS_SENTINELS: more than %d sentinels",
                              MAX_SENTINELS);
        addr_t *a = &s->sentinels[s->nsentinels];
        char *stop = NULL;
        long port = colon ? strtol(colon + 1, &stop, 10) : 0;
        const char *h = p;
        size_t hlen = colon ? (size_t)(colon - p) : 0;
        if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
            h++;
            hlen -= 2;
        }
        if (colon == NULL || stop != end || port < 1 || port > 65535 || hlen == 0 ||
            hlen >= sizeof a->host)
            return mk_err_set(err, MK_EINVAL,
                              "REPO_REDIS_SENTINELS: \"%.*s\" is not host:port (port 1-65535)",
                              (int)(len > 100 ? 100 : len), p);
        memcpy(a->host, h, hlen);
        a->host[hlen] = '\0';
        a->port = (int)port;
        s->nsentinels++;
        p = end;
    }
    if (s->nsentinels == 0)
        return mk_err_set(err, MK_EINVAL, "REPO_REDIS_SENTINELS: no sentinel host:port given");
    return 0;
}

/* A connection to one sentinel, authenticated; NULL with why filled. */
static redisContext *sentinel_connect(const mk_redis_sentinel_t *s, const addr_t *a, char *why,
                                      size_t size)
{
    struct timeval tv = {0, SENTINEL_MS * 1000};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (c == NULL || c->err) {
        snprintf(why, size, "sentinel %.100s:%d: %s", a->host, a->port,
                 c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (s->password != NULL) {
        const char *argv[] = {"AUTH", s->password};
        redisReply *r = redisCommandArgv(c, 2, argv, NULL);
        bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        snprintf(why, size, "sentinel %.100s:%d: AUTH failed: %s", a->host, a->port,
                 r == NULL                      ? c->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "");
        if (r != NULL)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* Asks one sentinel; 0 with *out filled, else why says what went wrong. */
static int ask(const mk_redis_sentinel_t *s, const addr_t *a, addr_t *out, char *why, size_t size)
{
    redisContext *c = sentinel_connect(s, a, why, size);
    if (c == NULL)
        return MK_EUNAVAIL;
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", s->name};
    redisReply *r = redisCommandArgv(c, 3, argv, NULL);
    int rc = MK_EUNAVAIL;
    if (r == NULL)
        snprintf(why, size, "sentinel %.100s:%d: %s", a->host, a->port, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, size, "sentinel %.100s:%d: %s", a->host, a->port, r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
             r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        snprintf(why, size, "sentinel %.100s:%d: does not know a master named \"%.60s\"", a->host,
                 a->port, s->name);
    else if (r->element[0]->len >= sizeof out->host || atoi(r->element[1]->str) <= 0)
        snprintf(why, size, "sentinel %.100s:%d: unusable address for \"%.60s\"", a->host, a->port,
                 s->name);
    else {
        snprintf(out->host, sizeof out->host, "%s", r->element[0]->str);
        out->port = atoi(r->element[1]->str);
        rc = 0;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* Records the master's address; a change bumps the generation. */
static void set_master(mk_redis_sentinel_t *s, const addr_t *m)
{
    pthread_mutex_lock(&s->mu);
    bool changed = !s->known || strcmp(s->master.host, m->host) != 0 || s->master.port != m->port;
    if (changed) {
        if (s->known)
            s->switches++;
        s->master = *m;
        s->known = true;
        atomic_fetch_add(&s->gen, 1);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Asks the sentinels in turn, the one that answered last first, until one names the master. */
static void query(mk_redis_sentinel_t *s)
{
    char why[320] = "";
    int first;
    pthread_mutex_lock(&s->mu);
    first = s->good;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nsentinels; i++) {
        int k = (first + i) % s->nsentinels;
        addr_t m;
        if (ask(s, &s->sentinels[k], &m, why, sizeof why) == 0) {
            set_master(s, &m);
            pthread_mutex_lock(&s->mu);
            s->good = k;
            s->sentinels_up = true;
            s->error[0] = '\0';
            pthread_mutex_unlock(&s->mu);
            return;
        }
    }
    pthread_mutex_lock(&s->mu);
    s->sentinels_up = false;
    snprintf(s->error, sizeof s->error, "no sentinel named the master \"%.60s\" (last: %.200s)",
             s->name, why);
    pthread_mutex_unlock(&s->mu);
}

/* A SUBSCRIBE +switch-master connection on the sentinel that answered last; NULL if none. */
static redisContext *subscribe(mk_redis_sentinel_t *s)
{
    pthread_mutex_lock(&s->mu);
    addr_t a = s->sentinels[s->good];
    pthread_mutex_unlock(&s->mu);
    char why[320];
    redisContext *c = sentinel_connect(s, &a, why, sizeof why);
    if (c == NULL)
        return NULL;
    const char *argv[] = {"SUBSCRIBE", "+switch-master"};
    redisReply *r = redisCommandArgv(c, 2, argv, NULL);
    bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
    if (r != NULL)
        freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>" */
static void on_switch(mk_redis_sentinel_t *s, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    char name[256], oldh[256], newh[256];
    int oldp, newp;
    if (sscanf(r->element[2]->str, "%255s %255s %d %255s %d", name, oldh, &oldp, newh, &newp) !=
            5 ||
        strcmp(name, s->name) != 0 || newp <= 0)
        return;
    addr_t m;
    snprintf(m.host, sizeof m.host, "%s", newh);
    m.port = newp;
    set_master(s, &m);
}

static void *watch_main(void *arg)
{
    mk_redis_sentinel_t *s = arg;
    redisContext *sub = NULL;
    int64_t next = 0, last = 0;
    while (!atomic_load(&s->stop)) {
        /* Suspicions bring the next query forward, but never closer than 100 ms apart. */
        int64_t now = now_ms();
        if ((atomic_load(&s->suspect) && now >= last + 100) || now >= next) {
            atomic_store(&s->suspect, false);
            query(s);
            last = now_ms();
            next = last + QUERY_MS;
        }
        if (sub == NULL)
            sub = subscribe(s);
        struct pollfd p[2] = {{.fd = s->wake[0], .events = POLLIN},
                              {.fd = sub ? sub->fd : -1, .events = POLLIN}};
        int64_t wait = (atomic_load(&s->suspect) ? last + 100 : next) - now_ms();
        if (poll(p, 2, wait < 0 ? 0 : (int)wait) < 0 && errno != EINTR)
            break;
        if (p[0].revents != 0) {
            char buf[64];
            while (read(s->wake[0], buf, sizeof buf) > 0)
                ;
        }
        if (sub != NULL && p[1].revents != 0) {
            bool broken = redisBufferRead(sub) != REDIS_OK;
            void *rep = NULL;
            while (!broken && redisGetReplyFromReader(sub, &rep) == REDIS_OK && rep != NULL) {
                on_switch(s, rep);
                freeReplyObject(rep);
                rep = NULL;
            }
            if (broken || sub->err) {
                redisFree(sub);
                sub = NULL;
            }
        }
    }
    redisFree(sub);
    return NULL;
}

static void watcher_free(mk_redis_sentinel_t *s)
{
    if (s->started) {
        atomic_store(&s->stop, true);
        ssize_t w = write(s->wake[1], "x", 1);
        (void)w;
        pthread_join(s->thread, NULL);
    }
    if (s->wake[0] >= 0) {
        close(s->wake[0]);
        close(s->wake[1]);
    }
    pthread_mutex_destroy(&s->mu);
    free(s->key);
    free(s->name);
    free(s->password);
    free(s);
}

static int watcher_new(const mk_redis_opts_t *o, char *key, mk_redis_sentinel_t **out,
                       mk_err_t *err)
{
    mk_redis_sentinel_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        free(key);
        return mk_err_set(err, MK_ENOMEM, "redis sentinel: out of memory");
    }
    s->key = key;
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    int rc = parse_list(s, o->sentinels, err);
    if (rc != 0)
        goto fail;
    s->name = strdup(o->master_name && o->master_name[0] ? o->master_name : "mymaster");
    s->password =
        o->sentinel_password && o->sentinel_password[0] ? strdup(o->sentinel_password) : NULL;
    if (s->name == NULL || (o->sentinel_password && o->sentinel_password[0] && !s->password)) {
        rc = mk_err_set(err, MK_ENOMEM, "redis sentinel: out of memory");
        goto fail;
    }
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = mk_err_set(err, MK_EINTERNAL, "redis sentinel: pipe: %s", strerror(errno));
        goto fail;
    }
    query(s);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&s->thread, NULL, watch_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        rc = mk_err_set(err, MK_EINTERNAL, "redis sentinel: pthread_create: %s", strerror(e));
        goto fail;
    }
    s->started = true;
    *out = s;
    return 0;
fail:
    watcher_free(s);
    return rc;
}

int mk_redis_sentinel_open(const mk_redis_opts_t *opts, mk_redis_sentinel_t **out, mk_err_t *err)
{
    *out = NULL;
    if (opts == NULL || opts->sentinels == NULL || opts->sentinels[0] == '\0')
        return mk_err_set(err, MK_EINVAL, "REPO_REDIS_SENTINELS: no sentinel host:port given");
    const char *name = opts->master_name && opts->master_name[0] ? opts->master_name : "mymaster";
    const char *pw = opts->sentinel_password ? opts->sentinel_password : "";
    size_t len = strlen(opts->sentinels) + strlen(name) + strlen(pw) + 3;
    char *key = malloc(len);
    if (key == NULL)
        return mk_err_set(err, MK_ENOMEM, "redis sentinel: out of memory");
    snprintf(key, len, "%s\n%s\n%s", opts->sentinels, name, pw);
    pthread_mutex_lock(&registry_mu);
    int rc = 0;
    mk_redis_sentinel_t *s = registry;
    while (s != NULL && strcmp(s->key, key) != 0)
        s = s->next;
    if (s != NULL) {
        free(key);
        s->refs++;
    } else if ((rc = watcher_new(opts, key, &s, err)) == 0) {
        s->refs = 1;
        s->next = registry;
        registry = s;
    }
    pthread_mutex_unlock(&registry_mu);
    if (rc == 0)
        *out = s;
    return rc;
}

mk_redis_sentinel_t *mk_redis_sentinel_ref(mk_redis_sentinel_t *s)
{
    pthread_mutex_lock(&registry_mu);
    s->refs++;
    pthread_mutex_unlock(&registry_mu);
    return s;
}

void mk_redis_sentinel_close(mk_redis_sentinel_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&registry_mu);
    bool last = --s->refs == 0;
    if (last) {
        mk_redis_sentinel_t **pp = &registry;
        while (*pp != s)
            pp = &(*pp)->next;
        *pp = s->next;
    }
    pthread_mutex_unlock(&registry_mu);
    if (last)
        watcher_free(s);
}

void mk_redis_sentinel_info(mk_redis_sentinel_t *s, mk_redis_sentinel_info_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    out->known = s->known;
    if (s->known)
        snprintf(out->master, sizeof out->master, "%s:%d", s->master.host, s->master.port);
    out->sentinels_up = s->sentinels_up;
    snprintf(out->error, sizeof out->error, "%s", s->error);
    out->switches = s->switches;
    pthread_mutex_unlock(&s->mu);
}

int mk_redis_sentinel_master(mk_redis_sentinel_t *s, char *host, size_t size, int *port,
                             uint64_t *gen, mk_err_t *err)
{
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->known) {
        snprintf(host, size, "%s", s->master.host);
        *port = s->master.port;
        if (gen != NULL)
            *gen = atomic_load(&s->gen);
    } else {
        rc = mk_err_set(err, MK_EUNAVAIL, "redis: master \"%.60s\" unknown: %.250s", s->name,
                        s->error[0] ? s->error : "the sentinels have not answered yet");
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

uint64_t mk_redis_sentinel_gen(mk_redis_sentinel_t *s)
{
    return atomic_load(&s->gen);
}

void mk_redis_sentinel_suspect(mk_redis_sentinel_t *s)
{
    if (!atomic_exchange(&s->suspect, true)) {
        ssize_t w = write(s->wake[1], "x", 1);
        (void)w;
    }
}
