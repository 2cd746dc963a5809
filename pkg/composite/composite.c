/* The composite repository: get_mock reads through the in-process cache, Redis and the database;
 * writes go to the database, then to both caches and onto the "mockarty:changes" channel. */
#include "composite/composite.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "mockarty:mock:"
#define CHANNEL    "mockarty:changes"
/* Invalidation stripes by id hash (see fill_l1). */
#define STRIPES 256
/* Failed Redis writes remembered for repair; past this the whole Redis tier is flushed. */
#define DIRTY_MAX 10000

/* Writes a value only when no newer version is stored: the seq is the second token of both
 * encodings ("M <seq> ..." for a row, "T <seq>" for a tombstone). A fill from an old read, or
 * a write that lost a race, can then never replace a newer row or resurrect a purged one. */
static const char SET_IF_NEWER[] = "local cur = redis.call('GET', KEYS[1])\n"
                                   "if cur then\n"
                                   "  local s = tonumber(string.match(cur, '^%a (%-?%d+)'))\n"
                                   "  if s and s > tonumber(ARGV[2]) then return 0 end\n"
                                   "end\n"
                                   "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
                                   "return 1\n";

typedef struct dirty {
    char *id;
    int64_t seq;
} dirty_t;

/* Writes and invalidations of the ids of a stripe bump its generation under its lock; a fill
 * from a lower tier checks the generation under the same lock. */
typedef struct stripe {
    pthread_mutex_t mu;
    atomic_uint_fast64_t gen;
} stripe_t;

typedef struct composite {
    mk_repo_t base;
    mk_repo_ops_t ops; /* base.ops: composite_ops, without subscribe when there is no feed */
    mk_repo_t *db;
    mk_cache_t *l1;
    bool no_l1_fill_on_write; /* see mk_composite_opts_t */
    char ttl[24];             /* redis TTL in ms, as a PX argument */

    /* The Redis tier; redis is NULL when not configured. */
    mk_redis_t *redis;
    mk_redis_opts_t redis_opts; /* host and password point at the copies below */
    char *redis_host, *redis_password;
    mk_redis_sub_t *sub;

    stripe_t stripes[STRIPES];
    atomic_int_fast64_t max_seen; /* the highest seq this composite has seen */
    atomic_uint_fast64_t mem_hits, mem_misses, redis_hits, redis_misses, redis_failures;
    atomic_uint_fast64_t resyncs;

    /* Changes whose Redis write failed: on recovery their keys are deleted and the changes
     * published, since other nodes missed them. */
    pthread_mutex_t dirty_mu;
    dirty_t *dirty;
    size_t ndirty, dirty_cap;
    bool dirty_overflow;
    atomic_bool has_dirty;

    /* The caller's subscription; cb_mu also serializes the two feeds' deliveries. */
    pthread_mutex_t cb_mu;
    mk_repo_change_cb cb;
    void *cb_ud;
} composite_t;

static void composite_free(mk_repo_t *r);

static composite_t *as_composite(const mk_repo_t *r)
{
    if (r == NULL || r->ops->free != composite_free)
        return NULL;
    return (composite_t *)r;
}

/* ---- row encoding (the same bytes in L1 and Redis) ----
 * "M <seq> <created> <updated> <closed> <uses> <last_use> <idlen> <nslen> <chainlen> <jsonlen>\n"
 * then id, namespace, chain_id and json, each followed by a NUL; a length of -1 is a NULL
 * string. The NULs let a decoded row point straight into the buffer. */

static long long slen(const char *s)
{
    return s != NULL ? (long long)strlen(s) : -1;
}

static int encode_row(const mk_repo_mock_t *m, mk_buf_t *b)
{
    int rc =
        mk_buf_appendf(b,
                       "M %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
                       " %lld %lld %lld %lld\n",
                       m->seq, m->created_at, m->updated_at, m->closed_at, m->uses, m->last_use,
                       slen(m->id), slen(m->namespace_), slen(m->chain_id), slen(m->json));
    const char *strs[4] = {m->id, m->namespace_, m->chain_id, m->json};
    for (int i = 0; i < 4 && rc == 0; i++) {
        if (strs[i] != NULL)
            rc = mk_buf_append(b, strs[i], strlen(strs[i]) + 1);
    }
    return rc;
}

static bool parse_i64(const char **p, const char *end, char sep, int64_t *v)
{
    const char *s = *p;
    bool neg = false;
    if (s < end && *s == '-') {
        neg = true;
        s++;
    }
    if (s >= end || *s < '0' || *s > '9')
        return false;
    uint64_t x = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*s - '0');
        s++;
    }
    if (s >= end || *s != sep || x > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? -(int64_t)x : (int64_t)x;
    *p = s + 1;
    return true;
}

/* Points m's strings into data, which must stay alive while m is used. */
static int decode_row(const char *data, size_t len, mk_repo_mock_t *m)
{
    const char *p = data, *end = data + len;
    int64_t v[10];
    if (len < 2 || p[0] != 'M' || p[1] != ' ')
        return -1;
    p += 2;
    for (int i = 0; i < 10; i++) {
        if (!parse_i64(&p, end, i < 9 ? ' ' : '\n', &v[i]))
            return -1;
    }
    const char *strs[4];
    for (int i = 0; i < 4; i++) {
        int64_t l = v[6 + i];
        if (l == -1) {
            strs[i] = NULL;
            continue;
        }
        if (l < 0 || l >= end - p || p[l] != '\0')
            return -1;
        strs[i] = p;
        p += l + 1;
    }
    if (p != end || strs[0] == NULL)
        return -1;
    *m = (mk_repo_mock_t){.id = strs[0],
                          .namespace_ = strs[1],
                          .chain_id = strs[2],
                          .json = strs[3],
                          .seq = v[0],
                          .created_at = v[1],
                          .updated_at = v[2],
                          .closed_at = v[3],
                          .uses = v[4],
                          .last_use = v[5]};
    return 0;
}

/* ---- bookkeeping ---- */

static stripe_t *stripe_of(composite_t *c, const char *id)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *s = (const unsigned char *)id; *s != '\0'; s++)
        h = (h ^ *s) * 0x100000001b3ULL;
    return &c->stripes[(h ^ (h >> 32)) % STRIPES];
}

static void note_seen(composite_t *c, int64_t seq)
{
    int_fast64_t cur = atomic_load(&c->max_seen);
    while (seq > cur && !atomic_compare_exchange_weak(&c->max_seen, &cur, seq)) {
    }
}

/* Caches a row read from a lower tier, unless the id was written or invalidated since the read
 * began (gen0): the row may then be older than what the writer put in L1, or the writer's
 * version may have been refused admission, or the row may have been purged. A write that comes
 * after the fill replaces it (set_if_newer). */
static void fill_l1(composite_t *c, const char *id, mk_str_t value, int64_t seq, stripe_t *st,
                    uint64_t gen0)
{
    pthread_mutex_lock(&st->mu);
    if (atomic_load(&st->gen) == gen0)
        mk_cache_set_if_newer(c->l1, mk_str_of(id), value, seq);
    pthread_mutex_unlock(&st->mu);
}

static void deliver(composite_t *c, int64_t seq, const char *id)
{
    pthread_mutex_lock(&c->cb_mu);
    if (c->cb != NULL)
        c->cb(c->cb_ud, seq, id);
    pthread_mutex_unlock(&c->cb_mu);
}

/* Every change notification, from either feed, passes here. */
static void on_change(composite_t *c, int64_t seq, const char *id)
{
    if (id == NULL || seq <= 0) {
        /* Changes may have been missed, so no L1 entry can be trusted. */
        for (int i = 0; i < STRIPES; i++) {
            pthread_mutex_lock(&c->stripes[i].mu);
            atomic_fetch_add(&c->stripes[i].gen, 1);
            pthread_mutex_unlock(&c->stripes[i].mu);
        }
        mk_cache_clear(c->l1);
        atomic_fetch_add(&c->resyncs, 1);
        deliver(c, 0, NULL);
        return;
    }
    stripe_t *st = stripe_of(c, id);
    pthread_mutex_lock(&st->mu);
    atomic_fetch_add(&st->gen, 1);
    mk_cache_delete_if_older(c->l1, mk_str_of(id), seq);
    pthread_mutex_unlock(&st->mu);
    note_seen(c, seq);
    deliver(c, seq, id);
}

/* ---- Redis tier ---- */

/* The Redis key of id, or the change message for it; caller frees. NULL when out of memory. */
static char *key_new(const char *id)
{
    char *key = NULL;
    return asprintf(&key, KEY_PREFIX "%s", id) >= 0 ? key : NULL;
}

static char *msg_new(int64_t seq, const char *id)
{
    char *msg = NULL;
    return asprintf(&msg, "%" PRId64 " %s", seq, id) >= 0 ? msg : NULL;
}

static void dirty_add_locked(composite_t *c, const char *id, int64_t seq)
{
    if (c->dirty_overflow)
        return;
    if (c->ndirty == c->dirty_cap) {
        size_t ncap = c->dirty_cap == 0 ? 64 : c->dirty_cap * 2;
        dirty_t *d = ncap <= DIRTY_MAX ? realloc(c->dirty, ncap * sizeof *d) : NULL;
        if (d == NULL) {
            c->dirty_overflow = true;
            goto out;
        }
        c->dirty = d;
        c->dirty_cap = ncap;
    }
    char *copy = strdup(id);
    if (copy == NULL) {
        c->dirty_overflow = true;
        goto out;
    }
    c->dirty[c->ndirty++] = (dirty_t){copy, seq};
out:
    atomic_store(&c->has_dirty, true);
}

static void dirty_add(composite_t *c, const char *id, int64_t seq)
{
    pthread_mutex_lock(&c->dirty_mu);
    dirty_add_locked(c, id, seq);
    pthread_mutex_unlock(&c->dirty_mu);
}

/* Deletes every cached mock in Redis (SCAN + DEL), for when too many writes were lost. */
static int flush_all_keys(composite_t *c)
{
    char cursor[32] = "0";
    int rc = 0;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", KEY_PREFIX "*", "COUNT", "1000"};
        mk_redis_reply_t *rep = NULL;
        rc = mk_redis_cmdv(c->redis, &rep, NULL, 6, argv);
        if (rc != 0)
            return rc;
        if (rep->type != MK_REDIS_ARR || rep->nelems != 2 || rep->elems[1].type != MK_REDIS_ARR) {
            mk_redis_reply_free(rep);
            return MK_EIO;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->elems[0].str ? rep->elems[0].str : "0");
        mk_redis_reply_t *keys = &rep->elems[1];
        if (keys->nelems > 0) {
            const char **argv2 = malloc((keys->nelems + 1) * sizeof *argv2);
            size_t *lens = malloc((keys->nelems + 1) * sizeof *lens);
            if (argv2 != NULL && lens != NULL) {
                argv2[0] = "DEL";
                lens[0] = 3;
                for (size_t i = 0; i < keys->nelems; i++) {
                    argv2[i + 1] = keys->elems[i].str;
                    lens[i + 1] = keys->elems[i].len;
                }
                rc = mk_redis_cmd(c->redis, (int)keys->nelems + 1, argv2, lens, NULL, NULL);
            } else {
                rc = MK_ENOMEM;
            }
            free(argv2);
            free(lens);
        }
        mk_redis_reply_free(rep);
    } while (rc == 0 && strcmp(cursor, "0") != 0);
    return rc;
}

/* Repairs Redis after an outage during which writes failed: the keys of the changed mocks go
 * (they may hold older versions) and the changes are published, because other nodes missed
 * them. When too many were lost, every cached mock goes and a resync ("0") is published. */
static void flush_dirty(composite_t *c)
{
    if (!atomic_load(&c->has_dirty) || pthread_mutex_trylock(&c->dirty_mu) != 0)
        return;
    dirty_t *d = c->dirty;
    size_t n = c->ndirty;
    bool overflow = c->dirty_overflow;
    c->dirty = NULL;
    c->ndirty = c->dirty_cap = 0;
    c->dirty_overflow = false;
    atomic_store(&c->has_dirty, false);
    pthread_mutex_unlock(&c->dirty_mu);

    int rc = 0;
    if (overflow) {
        rc = flush_all_keys(c);
        if (rc == 0)
            rc = mk_redis_cmdv(c->redis, NULL, NULL, 3,
                               (const char *const[]){"PUBLISH", CHANNEL, "0"});
    } else if (n > 0) {
        mk_redis_cmdspec_t *cmds = calloc(2 * n, sizeof *cmds);
        char **strs = calloc(2 * n, sizeof *strs); /* key and message of each */
        const char *(*argvs)[3] = calloc(2 * n, sizeof *argvs);
        rc = cmds == NULL || strs == NULL || argvs == NULL ? MK_ENOMEM : 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            strs[2 * i] = key_new(d[i].id);
            strs[2 * i + 1] = msg_new(d[i].seq, d[i].id);
            if (strs[2 * i] == NULL || strs[2 * i + 1] == NULL)
                rc = MK_ENOMEM;
            argvs[2 * i][0] = "DEL";
            argvs[2 * i][1] = strs[2 * i];
            argvs[2 * i + 1][0] = "PUBLISH";
            argvs[2 * i + 1][1] = CHANNEL;
            argvs[2 * i + 1][2] = strs[2 * i + 1];
            cmds[2 * i] = (mk_redis_cmdspec_t){2, argvs[2 * i], NULL};
            cmds[2 * i + 1] = (mk_redis_cmdspec_t){3, argvs[2 * i + 1], NULL};
        }
        if (rc == 0)
            rc = mk_redis_pipeline(c->redis, cmds, 2 * n, NULL, NULL);
        for (size_t i = 0; strs != NULL && i < 2 * n; i++)
            free(strs[i]);
        free(cmds);
        free(strs);
        free(argvs);
    }
    if (rc == MK_EUNAVAIL || rc == MK_ENOMEM) {
        /* Still down: keep the list for the next recovery. */
        pthread_mutex_lock(&c->dirty_mu);
        if (overflow)
            c->dirty_overflow = true;
        for (size_t i = 0; i < n; i++)
            dirty_add_locked(c, d[i].id, d[i].seq);
        atomic_store(&c->has_dirty, true);
        pthread_mutex_unlock(&c->dirty_mu);
    }
    for (size_t i = 0; i < n; i++)
        free(d[i].id);
    free(d);
}

/* Records the outcome of a Redis call: down on a connection failure; up otherwise (an error
 * reply still came from a live server), repairing lost writes once it is back. */
static void redis_note(composite_t *c, int rc)
{
    if (rc != 0)
        atomic_fetch_add(&c->redis_failures, 1);
    if (rc != MK_EUNAVAIL)
        flush_dirty(c);
}

/* 1 with the value in out when Redis holds the mock, 0 when not (or on any failure). */
static int redis_get(composite_t *c, const char *id, mk_buf_t *out)
{
    char *key = key_new(id);
    if (key == NULL)
        return 0;
    mk_redis_reply_t *rep = NULL;
    int rc = mk_redis_cmdv(c->redis, &rep, NULL, 2, (const char *const[]){"GET", key});
    redis_note(c, rc);
    int found = 0;
    if (rc == 0 && rep->type == MK_REDIS_STR && mk_buf_append(out, rep->str, rep->len) == 0)
        found = 1;
    mk_redis_reply_free(rep);
    free(key);
    return found;
}

/* Appends EVAL SET_IF_NEWER for key/value/seq to a pipeline; args must hold 7 pointers and
 * lens 7 sizes, alive until the pipeline runs; seqbuf holds the seq's text. */
static mk_redis_cmdspec_t set_if_newer_cmd(const char *args[7], size_t lens[7], const char *key,
                                           mk_str_t value, char seqbuf[24], int64_t seq,
                                           const char *ttl)
{
    snprintf(seqbuf, 24, "%" PRId64, seq);
    const char *a[7] = {"EVAL", SET_IF_NEWER, "1", key, value.base, seqbuf, ttl};
    for (int i = 0; i < 7; i++) {
        args[i] = a[i];
        lens[i] = i == 4 ? value.len : strlen(a[i]);
    }
    return (mk_redis_cmdspec_t){7, args, lens};
}

/* One batch of writes: for each id a value (a row or a tombstone) stored unless Redis holds a
 * newer one, and the change published. Failed writes are remembered for repair. */
typedef struct redis_write {
    const char *id;
    mk_str_t value; /* base NULL: DEL instead */
    int64_t seq;    /* 0: unknown, nothing published */
} redis_write_t;

static void redis_write(composite_t *c, const redis_write_t *w, size_t n)
{
    typedef struct slot {
        char *key, *msg, seq[24];
        const char *args[7], *pub[3];
        size_t lens[7];
    } slot_t;
    slot_t *s = calloc(n, sizeof *s);
    mk_redis_cmdspec_t *cmds = calloc(2 * n, sizeof *cmds);
    mk_redis_reply_t **replies = calloc(2 * n, sizeof *replies);
    size_t *first = calloc(n, sizeof *first); /* index of each id's first command */
    int rc = MK_ENOMEM;
    size_t nc = 0;
    if (s == NULL || cmds == NULL || replies == NULL || first == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        s[i].key = key_new(w[i].id);
        s[i].msg = w[i].seq > 0 ? msg_new(w[i].seq, w[i].id) : NULL;
        if (s[i].key == NULL || (w[i].seq > 0 && s[i].msg == NULL)) {
            rc = MK_ENOMEM;
            goto out;
        }
        first[i] = nc;
        if (w[i].value.base != NULL) {
            cmds[nc++] = set_if_newer_cmd(s[i].args, s[i].lens, s[i].key, w[i].value, s[i].seq,
                                          w[i].seq, c->ttl);
        } else {
            s[i].args[0] = "DEL";
            s[i].args[1] = s[i].key;
            cmds[nc++] = (mk_redis_cmdspec_t){2, s[i].args, NULL};
        }
        if (w[i].seq > 0) {
            s[i].pub[0] = "PUBLISH";
            s[i].pub[1] = CHANNEL;
            s[i].pub[2] = s[i].msg;
            cmds[nc++] = (mk_redis_cmdspec_t){3, s[i].pub, NULL};
        }
    }
    rc = mk_redis_pipeline(c->redis, cmds, nc, replies, NULL);
out:
    for (size_t i = 0; i < n; i++) {
        if (w[i].seq <= 0)
            continue;
        /* An error reply fails only its own commands; anything else fails them all. */
        bool failed = rc != 0 && rc != MK_EIO;
        if (rc == MK_EIO) {
            size_t end = i + 1 < n ? first[i + 1] : nc;
            for (size_t j = first[i]; j < end; j++) {
                if (replies[j] != NULL && replies[j]->type == MK_REDIS_ERR)
                    failed = true;
            }
        }
        if (failed)
            dirty_add(c, w[i].id, w[i].seq);
    }
    /* After the failures are listed: when Redis answered, they are repaired right away. */
    if (rc != MK_ENOMEM)
        redis_note(c, rc);
    if (replies != NULL) {
        for (size_t j = 0; j < 2 * n; j++)
            mk_redis_reply_free(replies[j]);
    }
    for (size_t i = 0; s != NULL && i < n; i++) {
        free(s[i].key);
        free(s[i].msg);
    }
    free(replies);
    free(cmds);
    free(s);
    free(first);
}

/* Stores one row read from the database in Redis for the other nodes (no publish: nothing
 * changed). */
static void redis_fill(composite_t *c, const char *id, mk_str_t value, int64_t seq)
{
    char *key = key_new(id), seqbuf[24];
    const char *args[7];
    size_t lens[7];
    if (key == NULL)
        return;
    mk_redis_cmdspec_t cmd = set_if_newer_cmd(args, lens, key, value, seqbuf, seq, c->ttl);
    int rc = mk_redis_cmd(c->redis, cmd.argc, cmd.argv, cmd.argvlen, NULL, NULL);
    redis_note(c, rc);
    free(key);
}

static void on_redis_message(void *ud, const char *msg, size_t len)
{
    composite_t *c = ud;
    const char *p = msg, *end = msg + len;
    int64_t seq = 0;
    if (len == 1 && msg[0] == '0') {
        on_change(c, 0, NULL);
        return;
    }
    if (!parse_i64(&p, end, ' ', &seq) || p >= end || memchr(p, '\0', (size_t)(end - p)))
        return; /* not ours */
    char idbuf[256];
    size_t idlen = (size_t)(end - p);
    char *id = idlen < sizeof idbuf ? idbuf : malloc(idlen + 1);
    if (id == NULL)
        return;
    memcpy(id, p, idlen);
    id[idlen] = '\0';
    on_change(c, seq, id);
    if (id != idbuf)
        free(id);
}

static void on_redis_connect(void *ud)
{
    composite_t *c = ud;
    flush_dirty(c);
    on_change(c, 0, NULL);
}

static void on_db_change(void *ud, int64_t seq, const char *id)
{
    on_change(ud, seq, id);
}

/* ---- repository operations ---- */

typedef struct capture {
    mk_buf_t buf;
    int rc;
} capture_t;

static int capture_row(void *ud, const mk_repo_mock_t *row)
{
    capture_t *cap = ud;
    mk_buf_reset(&cap->buf);
    cap->rc = encode_row(row, &cap->buf);
    return 0;
}

static int composite_get_mock(mk_repo_t *r, const char *id, mk_repo_mock_cb cb, void *ud,
                              mk_err_t *err)
{
    composite_t *c = (composite_t *)r;
    mk_str_t key = mk_str_of(id);
    stripe_t *st = stripe_of(c, id);
    uint64_t gen0 = atomic_load(&st->gen);
    mk_repo_mock_t row;
    capture_t cap = {.rc = 0};
    mk_buf_init(&cap.buf, 0);
    int64_t meta = 0;
    int rc;

    if (mk_cache_get(c->l1, key, &cap.buf, &meta)) {
        if (decode_row(cap.buf.data, cap.buf.len, &row) == 0) {
            atomic_fetch_add(&c->mem_hits, 1);
            rc = cb(ud, &row);
            goto out;
        }
        mk_cache_delete(c->l1, key); /* unreadable: never trust it again */
        mk_buf_reset(&cap.buf);
    }
    atomic_fetch_add(&c->mem_misses, 1);

    if (c->redis != NULL) {
        /* A tombstone in Redis is a miss: the database has the final word on a purge. */
        if (redis_get(c, id, &cap.buf) && decode_row(cap.buf.data, cap.buf.len, &row) == 0) {
            atomic_fetch_add(&c->redis_hits, 1);
            fill_l1(c, id, (mk_str_t){cap.buf.data, cap.buf.len}, row.seq, st, gen0);
            rc = cb(ud, &row);
            goto out;
        }
        atomic_fetch_add(&c->redis_misses, 1);
        mk_buf_reset(&cap.buf);
    }

    /* The row is copied out and the callback runs after the database call returns, so it may
     * call back into this repository. */
    rc = mk_repo_get_mock(c->db, id, capture_row, &cap, err);
    if (rc != 0)
        goto out;
    if (cap.rc != 0 || decode_row(cap.buf.data, cap.buf.len, &row) != 0) {
        rc = mk_err_set(err, MK_ENOMEM, "composite get_mock %s: out of memory copying the row", id);
        goto out;
    }
    note_seen(c, row.seq);
    mk_str_t value = {cap.buf.data, cap.buf.len};
    if (c->redis != NULL)
        redis_fill(c, id, value, row.seq);
    fill_l1(c, id, value, row.seq, st, gen0);
    rc = cb(ud, &row);
out:
    mk_buf_free(&cap.buf);
    return rc;
}

static int composite_put_mocks(mk_repo_t *r, mk_repo_mock_t *rows, size_t n, mk_err_t *err)
{
    composite_t *c = (composite_t *)r;
    int rc = mk_repo_put_mocks(c->db, rows, n, err);
    if (rc != 0 || n == 0)
        return rc;
    mk_buf_t *enc = calloc(n, sizeof *enc);
    redis_write_t *w = calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) {
        const mk_repo_mock_t *m = &rows[i];
        mk_str_t key = mk_str_of(m->id);
        note_seen(c, m->seq);
        bool encoded = false;
        if (enc != NULL && w != NULL) {
            mk_buf_init(&enc[i], 0);
            encoded = encode_row(m, &enc[i]) == 0;
            w[i] = (redis_write_t){m->id, {NULL, 0}, m->seq};
            if (encoded)
                w[i].value = (mk_str_t){enc[i].data, enc[i].len};
        }
        /* The bump makes reads of an older version that began before it skip their fill. */
        stripe_t *st = stripe_of(c, m->id);
        pthread_mutex_lock(&st->mu);
        atomic_fetch_add(&st->gen, 1);
        if (c->no_l1_fill_on_write || !encoded ||
            !mk_cache_set_if_newer(c->l1, key, w[i].value, m->seq))
            mk_cache_delete_if_older(c->l1, key, m->seq); /* refused: no older copy may stay */
        pthread_mutex_unlock(&st->mu);
    }
    if (c->redis != NULL) {
        if (w != NULL) {
            redis_write(c, w, n);
        } else {
            for (size_t i = 0; i < n; i++)
                dirty_add(c, rows[i].id, rows[i].seq);
        }
    }
    if (enc != NULL) {
        for (size_t i = 0; i < n; i++)
            mk_buf_free(&enc[i]);
    }
    free(enc);
    free(w);
    return 0;
}

/* Finds the tombstone seqs of a delete by reading the changes after the highest seq seen before
 * it: the interface does not hand them back, and the tombstones are newer than anything seen. */
typedef struct tomb_find {
    const char *const *ids;
    size_t n;
    int64_t *seqs;
    int64_t max;
} tomb_find_t;

static int find_tombstones(void *ud, const mk_repo_mock_t *row)
{
    tomb_find_t *t = ud;
    if (row->seq > t->max)
        t->max = row->seq;
    if (row->json != NULL)
        return 0;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->ids[i], row->id) == 0 && row->seq > t->seqs[i])
            t->seqs[i] = row->seq;
    }
    return 0;
}

static int composite_delete_mocks(mk_repo_t *r, const char *const *ids, size_t n, mk_err_t *err)
{
    composite_t *c = (composite_t *)r;
    int64_t seen = atomic_load(&c->max_seen);
    int rc = mk_repo_delete_mocks(c->db, ids, n, err);
    if (rc != 0 || n == 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        stripe_t *st = stripe_of(c, ids[i]);
        pthread_mutex_lock(&st->mu);
        atomic_fetch_add(&st->gen, 1);
        mk_cache_delete(c->l1, mk_str_of(ids[i]));
        pthread_mutex_unlock(&st->mu);
    }
    if (c->redis == NULL)
        return 0;

    int64_t *seqs = calloc(n, sizeof *seqs);
    redis_write_t *w = calloc(n, sizeof *w);
    char(*tombs)[24] = calloc(n, sizeof *tombs);
    bool lost = true;
    if (seqs != NULL && w != NULL && tombs != NULL) {
        tomb_find_t t = {ids, n, seqs, 0};
        mk_err_t lerr;
        lost = mk_repo_load_mocks(c->db, seen > 0 ? seen : 1, find_tombstones, &t, &lerr) != 0;
        note_seen(c, t.max);
        for (size_t i = 0; i < n; i++) {
            /* No tombstone: the id did not exist (or the search failed), so only the key goes. */
            w[i] = (redis_write_t){ids[i], {NULL, 0}, seqs[i]};
            if (seqs[i] > 0) {
                int len = snprintf(tombs[i], sizeof tombs[i], "T %" PRId64, seqs[i]);
                w[i].value = (mk_str_t){tombs[i], (size_t)len};
            }
        }
        redis_write(c, w, n);
    }
    if (lost) {
        /* The purged ids' seqs are unknown, so other nodes are told to resync everything. */
        mk_err_t perr;
        int prc =
            mk_redis_cmdv(c->redis, NULL, &perr, 3, (const char *const[]){"PUBLISH", CHANNEL, "0"});
        redis_note(c, prc);
        if (prc != 0) {
            pthread_mutex_lock(&c->dirty_mu);
            c->dirty_overflow = true;
            atomic_store(&c->has_dirty, true);
            pthread_mutex_unlock(&c->dirty_mu);
        }
    }
    free(seqs);
    free(w);
    free(tombs);
    return 0;
}

typedef struct load_ctx {
    mk_repo_mock_cb cb;
    void *ud;
    int64_t max;
} load_ctx_t;

static int load_row(void *ud, const mk_repo_mock_t *row)
{
    load_ctx_t *l = ud;
    if (row->seq > l->max)
        l->max = row->seq;
    return l->cb(l->ud, row);
}

static int composite_load_mocks(mk_repo_t *r, int64_t after_seq, mk_repo_mock_cb cb, void *ud,
                                mk_err_t *err)
{
    composite_t *c = (composite_t *)r;
    load_ctx_t l = {cb, ud, 0};
    int rc = mk_repo_load_mocks(c->db, after_seq, load_row, &l, err);
    note_seen(c, l.max);
    return rc;
}

static int composite_update_usage(mk_repo_t *r, const mk_repo_usage_t *rows, size_t n,
                                  mk_err_t *err)
{
    return mk_repo_update_usage(((composite_t *)r)->db, rows, n, err);
}

static int composite_put_namespace(mk_repo_t *r, const char *name, int64_t created_at,
                                   mk_err_t *err)
{
    return mk_repo_put_namespace(((composite_t *)r)->db, name, created_at, err);
}

static int composite_list_namespaces(mk_repo_t *r, mk_repo_name_cb cb, void *ud, mk_err_t *err)
{
    return mk_repo_list_namespaces(((composite_t *)r)->db, cb, ud, err);
}

static int composite_ping(mk_repo_t *r, mk_err_t *err)
{
    return mk_repo_ping(((composite_t *)r)->db, err);
}

/* Documents are the admin's alone: no cache tier, no change feed, straight to the database. */
static int composite_put_docs(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err)
{
    return mk_repo_put_docs(((composite_t *)r)->db, docs, n, err);
}

static int composite_delete_docs(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                                 mk_err_t *err)
{
    return mk_repo_delete_docs(((composite_t *)r)->db, kind, ids, n, err);
}

static int composite_list_docs(mk_repo_t *r, const char *kind, const char *id_prefix,
                               mk_repo_doc_cb cb, void *ud, mk_err_t *err)
{
    return mk_repo_list_docs(((composite_t *)r)->db, kind, id_prefix, cb, ud, err);
}

static int composite_subscribe(mk_repo_t *r, mk_repo_change_cb cb, void *ud, mk_err_t *err)
{
    composite_t *c = (composite_t *)r;
    pthread_mutex_lock(&c->cb_mu);
    bool taken = c->cb != NULL;
    if (!taken) {
        c->cb = cb;
        c->cb_ud = ud;
    }
    pthread_mutex_unlock(&c->cb_mu);
    if (taken)
        return mk_err_set(err, MK_EINVAL, "composite subscribe: already subscribed");

    int rc = 0;
    mk_redis_sub_t *sub = NULL;
    if (c->redis != NULL) {
        /* A fresh subscriber (the old one keeps running until it is up) announces its
         * connection, which hands the caller the initial resync signal on the feed's thread. */
        rc = mk_redis_subscribe(&c->redis_opts, CHANNEL, on_redis_message, on_redis_connect, c,
                                &sub, err);
        if (rc != 0)
            goto fail;
    }
    if (c->db->ops->subscribe != NULL) {
        rc = mk_repo_subscribe(c->db, on_db_change, c, err);
        if (rc != 0)
            goto fail;
    }
    if (sub != NULL) {
        mk_redis_sub_free(c->sub);
        c->sub = sub;
    }
    return 0;
fail:
    mk_redis_sub_free(sub);
    pthread_mutex_lock(&c->cb_mu);
    c->cb = NULL;
    c->cb_ud = NULL;
    pthread_mutex_unlock(&c->cb_mu);
    return rc;
}

static void composite_free(mk_repo_t *r)
{
    composite_t *c = (composite_t *)r;
    /* Feeds first: their callbacks use the cache. */
    mk_redis_sub_free(c->sub);
    mk_repo_free(c->db);
    mk_redis_free(c->redis);
    mk_cache_free(c->l1);
    for (size_t i = 0; i < c->ndirty; i++)
        free(c->dirty[i].id);
    free(c->dirty);
    free(c->redis_host);
    free(c->redis_password);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&c->stripes[i].mu);
    pthread_mutex_destroy(&c->dirty_mu);
    pthread_mutex_destroy(&c->cb_mu);
    free(c);
}

static const mk_repo_ops_t composite_ops = {
    .name = "composite",
    .put_mocks = composite_put_mocks,
    .delete_mocks = composite_delete_mocks,
    .load_mocks = composite_load_mocks,
    .update_usage = composite_update_usage,
    .put_namespace = composite_put_namespace,
    .list_namespaces = composite_list_namespaces,
    .ping = composite_ping,
    .get_mock = composite_get_mock,
    .put_docs = composite_put_docs,
    .delete_docs = composite_delete_docs,
    .list_docs = composite_list_docs,
    .subscribe = composite_subscribe,
    .free = composite_free,
};

int mk_composite_open(mk_repo_t *db, const mk_composite_opts_t *opts, mk_repo_t **out,
                      mk_err_t *err)
{
    composite_t *c = NULL;
    int rc = 0;
    if (out != NULL)
        *out = NULL;
    if (db == NULL || db->ops == NULL || out == NULL) {
        rc = mk_err_set(err, MK_EINVAL, "composite open: no database or no out pointer");
        goto fail;
    }
    mk_composite_opts_t o = opts != NULL ? *opts : (mk_composite_opts_t){0};
    if (o.cache_max_bytes == 0)
        o.cache_max_bytes = (size_t)64 << 20;
    if (o.redis_ttl_ms <= 0)
        o.redis_ttl_ms = 3600 * 1000;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "composite open: out of memory");
        goto fail;
    }
    pthread_mutex_init(&c->dirty_mu, NULL);
    pthread_mutex_init(&c->cb_mu, NULL);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&c->stripes[i].mu, NULL);
    c->ops = composite_ops;
    /* Without Redis over a database without a feed there is nothing to follow. */
    if (o.redis == NULL && db->ops->subscribe == NULL)
        c->ops.subscribe = NULL;
    c->base.ops = &c->ops;
    c->db = db;
    db = NULL; /* owned by c from here */
    snprintf(c->ttl, sizeof c->ttl, "%" PRId64, o.redis_ttl_ms);
    c->no_l1_fill_on_write = o.no_l1_fill_on_write;
    c->l1 = mk_cache_new(o.cache_max_bytes);
    if (c->l1 == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "composite open: cannot allocate a %zu-byte cache",
                        o.cache_max_bytes);
        goto fail;
    }
    if (o.redis != NULL) {
        c->redis_opts = *o.redis;
        c->redis_host = strdup(o.redis->host != NULL ? o.redis->host : "127.0.0.1");
        c->redis_password = o.redis->password != NULL ? strdup(o.redis->password) : NULL;
        if (c->redis_host == NULL || (o.redis->password != NULL && c->redis_password == NULL)) {
            rc = mk_err_set(err, MK_ENOMEM, "composite open: out of memory");
            goto fail;
        }
        c->redis_opts.host = c->redis_host;
        c->redis_opts.password = c->redis_password;
        rc = mk_redis_new(&c->redis_opts, &c->redis, err);
        if (rc != 0)
            goto fail;
        /* Followed from the start, so L1 drops what other nodes change even when the caller
         * never subscribes. */
        rc = mk_redis_subscribe(&c->redis_opts, CHANNEL, on_redis_message, on_redis_connect, c,
                                &c->sub, err);
        if (rc != 0)
            goto fail;
    }
    *out = &c->base;
    return 0;
fail:
    if (c != NULL)
        composite_free(&c->base);
    else
        mk_repo_free(db);
    return rc;
}

void mk_composite_stats(const mk_repo_t *r, mk_composite_tier_stats_t *memory,
                        mk_composite_tier_stats_t *redis)
{
    composite_t *c = as_composite(r);
    if (memory != NULL)
        *memory = (mk_composite_tier_stats_t){0};
    if (redis != NULL)
        *redis = (mk_composite_tier_stats_t){0};
    if (c == NULL)
        return;
    if (memory != NULL)
        *memory =
            (mk_composite_tier_stats_t){atomic_load(&c->mem_hits), atomic_load(&c->mem_misses)};
    if (redis != NULL)
        *redis =
            (mk_composite_tier_stats_t){atomic_load(&c->redis_hits), atomic_load(&c->redis_misses)};
}

const char *mk_composite_redis_status(mk_repo_t *r, double *latency_ms)
{
    composite_t *c = as_composite(r);
    if (latency_ms != NULL)
        *latency_ms = 0;
    if (c == NULL || c->redis == NULL)
        return "not_configured";
    double lat = 0;
    int rc = mk_redis_ping(c->redis, &lat, NULL);
    redis_note(c, rc);
    if (rc != 0)
        return "down";
    if (latency_ms != NULL)
        *latency_ms = lat;
    return "up";
}

uint64_t mk_composite_redis_failures(const mk_repo_t *r)
{
    composite_t *c = as_composite(r);
    return c != NULL ? atomic_load(&c->redis_failures) : 0;
}

uint64_t mk_composite_resyncs(const mk_repo_t *r)
{
    composite_t *c = as_composite(r);
    return c != NULL ? atomic_load(&c->resyncs) : 0;
}
