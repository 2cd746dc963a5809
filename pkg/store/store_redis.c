/* The Redis backend: one Redis key per record ("ns:escapedtable:key", native TTL), tables listed
 * with SCAN MATCH on the glob-escaped prefix, history as a sorted set "ns:history" scored by time
 * with members "<ts>:<uid>-<seq>:<record>" (unique even for equal records and times). */
#include "redis/redis.h"
#include "store/store_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_COUNT      "500"
#define HIST_PAGE       1000
#define HIST_PAGE_TXT   "1000"
#define HIST_KEY_SUFFIX ":history"
/* The history key outlives its newest record by this much, so idle namespaces disappear. */
#define HIST_EXPIRE_SLACK_MS 60000

int mk_store_redis_open(mk_store_t *s, const mk_store_opts_t *opts, mk_err_t *err)
{
    const char *host = opts->redis_host && opts->redis_host[0] ? opts->redis_host : "127.0.0.1";
    int port = opts->redis_port ? opts->redis_port : 6379;
    mk_redis_opts_t ro = {.host = host,
                          .port = port,
                          .password = opts->redis_password,
                          .db = opts->redis_db,
                          .sentinels = opts->redis_sentinels,
                          .master_name = opts->redis_master_name,
                          .sentinel_password = opts->redis_sentinel_password};
    if (opts->redis_sentinels != NULL && opts->redis_sentinels[0] != '\0')
        snprintf(s->redis_addr, sizeof s->redis_addr, "sentinels %.200s",
                 opts->redis_sentinels);
    else
        snprintf(s->redis_addr, sizeof s->redis_addr, "%s:%d", host, port);
    int rc = mk_redis_new(&ro, &s->redis, err);
    if (rc != 0) {
        mk_err_prefix(err, "store");
        return rc;
    }
    s->redis_host = strdup(host);
    s->redis_password =
        opts->redis_password && opts->redis_password[0] ? strdup(opts->redis_password) : NULL;
    s->redis_port = port;
    s->redis_db = opts->redis_db;
    if (s->redis_host == NULL ||
        (opts->redis_password && opts->redis_password[0] && s->redis_password == NULL)) {
        mk_store_redis_close(s);
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    }
    return 0;
}

void mk_store_redis_close(mk_store_t *s)
{
    mk_redis_free(s->redis);
    s->redis = NULL;
    free(s->redis_host);
    free(s->redis_password);
    s->redis_host = s->redis_password = NULL;
}

int mk_store_redis_ping(mk_store_t *s, double *latency_ms, mk_err_t *err)
{
    return mk_redis_ping(s->redis, latency_ms, err);
}

int mk_store_redis_get(mk_store_t *s, const store_key_t *k, mk_buf_t *out, mk_err_t *err)
{
    const char *argv[] = {"GET", k->buf};
    size_t lens[] = {3, k->len};
    mk_redis_reply_t *rep = NULL;
    int rc = mk_redis_cmd(s->redis, 2, argv, lens, &rep, err);
    if (rc != 0)
        return rc;
    if (rep->type != MK_REDIS_STR) {
        rc = mk_err_set(err, MK_ENOTFOUND, "store: no record at key");
        goto out;
    }
    rc = mk_buf_append(out, rep->str, rep->len);
    if (rc != 0)
        mk_err_set(err, rc, "store: value of %zu bytes does not fit the output buffer", rep->len);
out:
    mk_redis_reply_free(rep);
    return rc;
}

int mk_store_redis_set(mk_store_t *s, const store_key_t *k, mk_str_t value, int64_t ttl_ms,
                       mk_err_t *err)
{
    char ttl[24];
    int tl = snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    const char *argv[] = {"SET", k->buf, value.base ? value.base : "", "PX", ttl};
    size_t lens[] = {3, k->len, value.len, 2, (size_t)tl};
    return mk_redis_cmd(s->redis, ttl_ms > 0 ? 5 : 3, argv, lens, NULL, err);
}

int mk_store_redis_delete(mk_store_t *s, const store_key_t *k, mk_err_t *err)
{
    const char *argv[] = {"DEL", k->buf};
    size_t lens[] = {3, k->len};
    return mk_redis_cmd(s->redis, 2, argv, lens, NULL, err);
}

int mk_store_redis_incr(mk_store_t *s, const store_key_t *k, int64_t by, int64_t *result,
                        mk_err_t *err)
{
    char num[24];
    int nl = snprintf(num, sizeof num, "%" PRId64, by);
    const char *argv[] = {"INCRBY", k->buf, num};
    size_t lens[] = {6, k->len, (size_t)nl};
    mk_redis_reply_t *rep = NULL;
    mk_err_t e = {0};
    int rc = mk_redis_cmd(s->redis, 3, argv, lens, &rep, &e);
    if (rc == MK_EIO && strstr(e.cause, "not an integer") != NULL) {
        rc = mk_err_set(err, MK_EINVAL, "store: value at key is not an integer");
    } else if (rc == MK_EIO && strstr(e.cause, "overflow") != NULL) {
        rc = mk_err_set(err, MK_EINVAL, "store: increment would overflow a 64-bit integer");
    } else if (rc != 0) {
        if (err != NULL)
            *err = e;
    } else if (rep->type != MK_REDIS_INT) {
        rc = mk_err_set(err, MK_EIO, "redis %s: INCRBY answered a non-integer", s->redis_addr);
    } else if (result != NULL) {
        *result = rep->integer;
    }
    mk_redis_reply_free(rep);
    return rc;
}

/* "prefix*" with the glob's special characters in prefix escaped. */
static size_t match_pattern(const store_key_t *prefix, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < prefix->prefix_len; i++) {
        char c = prefix->buf[i];
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\')
            out[n++] = '\\';
        out[n++] = c;
    }
    out[n++] = '*';
    out[n] = '\0';
    return n;
}

/* Walks every key under the prefix with SCAN, calling fn with each batch of keys. */
typedef int (*scan_batch_fn)(mk_store_t *s, const store_key_t *prefix, const mk_redis_reply_t *keys,
                             void *ud, mk_err_t *err, bool *stop);

static int scan_prefix(mk_store_t *s, const store_key_t *prefix, scan_batch_fn fn, void *ud,
                       mk_err_t *err)
{
    char pattern[2 * STORE_FULLKEY_MAX + 2];
    size_t plen = match_pattern(prefix, pattern);
    char cursor[32] = "0";
    int rc = 0;
    bool stop = false;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT};
        size_t lens[] = {4, strlen(cursor), 5, plen, 5, strlen(SCAN_COUNT)};
        mk_redis_reply_t *rep = NULL;
        rc = mk_redis_cmd(s->redis, 6, argv, lens, &rep, err);
        if (rc != 0)
            return rc;
        if (rep->type != MK_REDIS_ARR || rep->nelems != 2 || rep->elems[0].type != MK_REDIS_STR ||
            rep->elems[0].len >= sizeof cursor || rep->elems[1].type != MK_REDIS_ARR) {
            mk_redis_reply_free(rep);
            return mk_err_set(err, MK_EIO, "redis %s: unexpected SCAN reply", s->redis_addr);
        }
        memcpy(cursor, rep->elems[0].str, rep->elems[0].len + 1);
        if (rep->elems[1].nelems > 0)
            rc = fn(s, prefix, &rep->elems[1], ud, err, &stop);
        mk_redis_reply_free(rep);
    } while (rc == 0 && !stop && strcmp(cursor, "0") != 0);
    return rc;
}

typedef struct each_ctx {
    mk_store_each_cb cb;
    void *ud;
} each_ctx_t;

/* MGETs a batch of keys and hands the live ones (minus the prefix) to the callback. */
static int each_batch(mk_store_t *s, const store_key_t *prefix, const mk_redis_reply_t *keys,
                      void *ud, mk_err_t *err, bool *stop)
{
    each_ctx_t *ctx = ud;
    size_t n = keys->nelems;
    const char **argv = malloc((n + 1) * sizeof *argv);
    size_t *lens = malloc((n + 1) * sizeof *lens);
    mk_redis_reply_t *vals = NULL;
    int rc = 0;
    if (argv == NULL || lens == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
        goto out;
    }
    argv[0] = "MGET";
    lens[0] = 4;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = keys->elems[i].str ? keys->elems[i].str : "";
        lens[i + 1] = keys->elems[i].len;
    }
    rc = mk_redis_cmd(s->redis, (int)(n + 1), argv, lens, &vals, err);
    if (rc != 0)
        goto out;
    if (vals->type != MK_REDIS_ARR || vals->nelems != n) {
        rc = mk_err_set(err, MK_EIO, "redis %s: unexpected MGET reply", s->redis_addr);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const mk_redis_reply_t *k = &keys->elems[i], *v = &vals->elems[i];
        /* Expired or deleted since SCAN saw it. */
        if (v->type != MK_REDIS_STR || k->len < prefix->prefix_len)
            continue;
        mk_str_t key = {k->str + prefix->prefix_len, k->len - prefix->prefix_len};
        if (ctx->cb(ctx->ud, key, (mk_str_t){v->str, v->len}) != 0) {
            *stop = true;
            break;
        }
    }
out:
    mk_redis_reply_free(vals);
    free(argv);
    free(lens);
    return rc;
}

int mk_store_redis_each(mk_store_t *s, const store_key_t *prefix, mk_store_each_cb cb, void *ud,
                        mk_err_t *err)
{
    each_ctx_t ctx = {cb, ud};
    return scan_prefix(s, prefix, each_batch, &ctx, err);
}

static int clear_batch(mk_store_t *s, const store_key_t *prefix, const mk_redis_reply_t *keys,
                       void *ud, mk_err_t *err, bool *stop)
{
    (void)prefix;
    (void)ud;
    (void)stop;
    size_t n = keys->nelems;
    const char **argv = malloc((n + 1) * sizeof *argv);
    size_t *lens = malloc((n + 1) * sizeof *lens);
    int rc;
    if (argv == NULL || lens == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
        goto out;
    }
    argv[0] = "UNLINK";
    lens[0] = 6;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = keys->elems[i].str ? keys->elems[i].str : "";
        lens[i + 1] = keys->elems[i].len;
    }
    rc = mk_redis_cmd(s->redis, (int)(n + 1), argv, lens, NULL, err);
out:
    free(argv);
    free(lens);
    return rc;
}

int mk_store_redis_clear(mk_store_t *s, const store_key_t *prefix, mk_err_t *err)
{
    return scan_prefix(s, prefix, clear_batch, NULL, err);
}

/* ---- history ---- */

static size_t hist_key(mk_str_t ns, char *out)
{
    memcpy(out, ns.base, ns.len);
    memcpy(out + ns.len, HIST_KEY_SUFFIX, sizeof HIST_KEY_SUFFIX);
    return ns.len + sizeof HIST_KEY_SUFFIX - 1;
}

typedef struct hist_cmd {
    char key[MK_STORE_NS_MAX + sizeof HIST_KEY_SUFFIX];
    char score[24];
    char cutoff[26];
    char expire[24];
    char *member;
    const char *argv[4];
    size_t lens[4];
} hist_cmd_t;

int mk_store_redis_hist_append(mk_store_t *s, const mk_store_history_rec_t *recs, size_t n,
                               mk_err_t *err)
{
    /* One ZADD per record, then one trim and one expiry per distinct namespace. */
    hist_cmd_t *hc = calloc(n, sizeof *hc);
    bool *first = calloc(n, sizeof *first);
    mk_redis_cmdspec_t *cmds = calloc(3 * n, sizeof *cmds);
    const char **trim_argv = calloc(4 * n, sizeof *trim_argv);
    size_t *trim_lens = calloc(4 * n, sizeof *trim_lens);
    const char **exp_argv = calloc(3 * n, sizeof *exp_argv);
    size_t *exp_lens = calloc(3 * n, sizeof *exp_lens);
    int rc = 0;
    if (!hc || !first || !cmds || !trim_argv || !trim_lens || !exp_argv || !exp_lens) {
        rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
        goto out;
    }
    int64_t cutoff = mk_store_wall_ms() - s->history_ms;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        hist_cmd_t *h = &hc[i];
        size_t kl = hist_key(recs[i].ns, h->key);
        int sl = snprintf(h->score, sizeof h->score, "%" PRId64, recs[i].ts_ms);
        char tag[64];
        int tl = snprintf(tag, sizeof tag, "%" PRId64 ":%s-%" PRIuFAST64 ":", recs[i].ts_ms, s->uid,
                          (uint_fast64_t)atomic_fetch_add(&s->seq, 1));
        h->member = malloc((size_t)tl + recs[i].record.len + 1);
        if (h->member == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "store: out of memory");
            goto out;
        }
        memcpy(h->member, tag, (size_t)tl);
        if (recs[i].record.len > 0)
            memcpy(h->member + tl, recs[i].record.base, recs[i].record.len);
        h->argv[0] = "ZADD";
        h->lens[0] = 4;
        h->argv[1] = h->key;
        h->lens[1] = kl;
        h->argv[2] = h->score;
        h->lens[2] = (size_t)sl;
        h->argv[3] = h->member;
        h->lens[3] = (size_t)tl + recs[i].record.len;
        cmds[nc++] = (mk_redis_cmdspec_t){4, h->argv, h->lens};
        first[i] = true;
        for (size_t j = 0; j < i && first[i]; j++)
            if (first[j] && mk_str_eq(recs[j].ns, recs[i].ns))
                first[i] = false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!first[i])
            continue;
        hist_cmd_t *h = &hc[i];
        const char **ta = &trim_argv[4 * i];
        size_t *tl = &trim_lens[4 * i];
        int cl = snprintf(h->cutoff, sizeof h->cutoff, "(%" PRId64, cutoff);
        ta[0] = "ZREMRANGEBYSCORE";
        tl[0] = 16;
        ta[1] = h->key;
        tl[1] = h->lens[1];
        ta[2] = "-inf";
        tl[2] = 4;
        ta[3] = h->cutoff;
        tl[3] = (size_t)cl;
        cmds[nc++] = (mk_redis_cmdspec_t){4, ta, tl};
        const char **ea = &exp_argv[3 * i];
        size_t *el = &exp_lens[3 * i];
        int xl =
            snprintf(h->expire, sizeof h->expire, "%" PRId64, s->history_ms + HIST_EXPIRE_SLACK_MS);
        ea[0] = "PEXPIRE";
        el[0] = 7;
        ea[1] = h->key;
        el[1] = h->lens[1];
        ea[2] = h->expire;
        el[2] = (size_t)xl;
        cmds[nc++] = (mk_redis_cmdspec_t){3, ea, el};
    }
    rc = mk_redis_pipeline(s->redis, cmds, nc, NULL, err);
out:
    if (hc != NULL)
        for (size_t i = 0; i < n; i++)
            free(hc[i].member);
    free(hc);
    free(first);
    free(cmds);
    free(trim_argv);
    free(trim_lens);
    free(exp_argv);
    free(exp_lens);
    return rc;
}

/* Splits "<ts>:<uid>-<seq>:<record>"; false when the member is not ours. */
static bool member_parse(const mk_redis_reply_t *m, int64_t *ts, mk_str_t *ts_txt, mk_str_t *rec)
{
    if (m->type != MK_REDIS_STR)
        return false;
    const char *c1 = memchr(m->str, ':', m->len);
    if (c1 == NULL)
        return false;
    const char *c2 = memchr(c1 + 1, ':', m->len - (size_t)(c1 + 1 - m->str));
    if (c2 == NULL || !mk_store_parse_int(m->str, (size_t)(c1 - m->str), ts))
        return false;
    *ts_txt = (mk_str_t){m->str, (size_t)(c1 - m->str)};
    *rec = (mk_str_t){c2 + 1, m->len - (size_t)(c2 + 1 - m->str)};
    return true;
}

int mk_store_redis_hist_each(mk_store_t *s, mk_str_t ns, int64_t since_ms, mk_store_each_cb cb,
                             void *ud, mk_err_t *err)
{
    char key[MK_STORE_NS_MAX + sizeof HIST_KEY_SUFFIX];
    size_t kl = hist_key(ns, key);
    int64_t min = mk_store_wall_ms() - s->history_ms;
    if (since_ms > min)
        min = since_ms;
    /* Pages by score: the next page starts at the last score seen, skipping the members of that
     * score already delivered, so concurrent trimming at the old end cannot shift it. */
    size_t skip = 0;
    for (;;) {
        char mintxt[24], skiptxt[24];
        int ml = snprintf(mintxt, sizeof mintxt, "%" PRId64, min);
        int sl = snprintf(skiptxt, sizeof skiptxt, "%zu", skip);
        const char *argv[] = {"ZRANGEBYSCORE", key,     mintxt,       "+inf",
                              "LIMIT",         skiptxt, HIST_PAGE_TXT};
        size_t lens[] = {13, kl, (size_t)ml, 4, 5, (size_t)sl, strlen(HIST_PAGE_TXT)};
        mk_redis_reply_t *rep = NULL;
        int rc = mk_redis_cmd(s->redis, 7, argv, lens, &rep, err);
        if (rc != 0)
            return rc;
        if (rep->type != MK_REDIS_ARR) {
            mk_redis_reply_free(rep);
            return mk_err_set(err, MK_EIO, "redis %s: unexpected ZRANGEBYSCORE reply",
                              s->redis_addr);
        }
        size_t got = rep->nelems;
        bool stop = false;
        int64_t last = min;
        size_t same = 0;
        for (size_t i = 0; i < got && !stop; i++) {
            int64_t ts;
            mk_str_t ts_txt, rec;
            if (!member_parse(&rep->elems[i], &ts, &ts_txt, &rec))
                continue;
            if (ts == last) {
                same++;
            } else {
                last = ts;
                same = 1;
            }
            stop = cb(ud, ts_txt, rec) != 0;
        }
        mk_redis_reply_free(rep);
        if (stop || got < HIST_PAGE)
            return 0;
        if (last == min) {
            skip += got;
        } else {
            min = last;
            skip = same;
        }
    }
}

int mk_store_redis_hist_clear(mk_store_t *s, mk_str_t ns, mk_err_t *err)
{
    char key[MK_STORE_NS_MAX + sizeof HIST_KEY_SUFFIX];
    size_t kl = hist_key(ns, key);
    const char *argv[] = {"DEL", key};
    size_t lens[] = {3, kl};
    return mk_redis_cmd(s->redis, 2, argv, lens, NULL, err);
}

/* ---- asynchronous batches (the hot path) ---- */

typedef struct async_batch async_batch_t;

/* One command of a batch: which op it answers, and whether it is the SET NX that seeds an INCR
 * (its reply only matters when it fails). */
typedef struct async_cmd {
    async_batch_t *b;
    size_t op;
    bool seed;
} async_cmd_t;

struct async_batch {
    mk_store_t *s;
    mk_store_op_t *ops;
    size_t remaining; /* commands not answered yet */
    void (*done)(void *ud, const mk_err_t *err);
    void *ud;
    bool failed;
    mk_err_t err; /* the first failure */
    async_cmd_t cmds[];
};

static void batch_fail(async_batch_t *b, mk_store_op_t *op, int rc, const mk_err_t *err)
{
    op->rc = rc;
    if (!b->failed) {
        b->failed = true;
        b->err = *err;
    }
}

static void on_async_reply(void *ud, int rc, const mk_redis_reply_t *rep, const mk_err_t *err)
{
    async_cmd_t *c = ud;
    async_batch_t *b = c->b;
    mk_store_op_t *op = &b->ops[c->op];
    mk_err_t e = {0};
    if (c->seed) {
        if (rc != 0)
            batch_fail(b, op, rc, err);
    } else if (rc == MK_EIO && op->kind == MK_STORE_OP_INCR &&
               (strstr(err->cause, "not an integer") || strstr(err->cause, "overflow"))) {
        mk_err_set(&e, MK_EINVAL, "store: %s",
                   strstr(err->cause, "overflow") ? "increment would overflow a 64-bit integer"
                                                  : "value at key is not an integer");
        batch_fail(b, op, MK_EINVAL, &e);
    } else if (rc != 0) {
        batch_fail(b, op, rc, err);
    } else if (op->rc == 0) { /* not already failed by its seed */
        switch (op->kind) {
        case MK_STORE_OP_GET:
            if (rep->type != MK_REDIS_STR) {
                op->rc = MK_ENOTFOUND;
            } else if (mk_buf_append(&op->out, rep->str, rep->len) != 0) {
                mk_err_set(&e, MK_ETOOBIG, "store: value of %zu bytes does not fit the output",
                           rep->len);
                batch_fail(b, op, MK_ETOOBIG, &e);
            }
            break;
        case MK_STORE_OP_INCR:
            if (rep->type == MK_REDIS_INT) {
                op->result = rep->integer;
            } else {
                mk_err_set(&e, MK_EIO, "redis %s: INCRBY answered a non-integer", b->s->redis_addr);
                batch_fail(b, op, MK_EIO, &e);
            }
            break;
        case MK_STORE_OP_SET:
            break;
        }
    }
    if (--b->remaining == 0) {
        b->done(b->ud, b->failed ? &b->err : NULL);
        free(b);
    }
}

static void async_dispose(void *data)
{
    mk_redis_async_free(data);
}

static mk_redis_async_t *async_conn(mk_store_t *s, mk_httpd_loop_t *loop, mk_err_t *err)
{
    void **slot = mk_httpd_loop_slot(loop, s, async_dispose);
    if (slot == NULL) {
        mk_err_set(err, MK_EINTERNAL, "store: no loop slot left for the Redis connection");
        return NULL;
    }
    if (*slot == NULL) {
        /* The same server (or sentinels) as the blocking client's. */
        mk_redis_async_t *a = NULL;
        if (mk_redis_async_like(s->redis, loop, &a, err) != 0)
            return NULL;
        *slot = a;
    }
    return *slot;
}

int mk_store_redis_submit(mk_store_t *s, mk_httpd_loop_t *loop, const store_key_t *keys,
                          mk_store_op_t *ops, size_t n, void (*done)(void *ud, const mk_err_t *err),
                          void *ud, mk_err_t *err)
{
    mk_redis_async_t *a = async_conn(s, loop, err);
    if (a == NULL)
        return err ? err->code : MK_EUNAVAIL;
    size_t ncmds = n;
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == MK_STORE_OP_INCR && ops[i].value.len > 0)
            ncmds++;
    async_batch_t *b = calloc(1, sizeof *b + ncmds * sizeof b->cmds[0]);
    if (b == NULL)
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    b->s = s;
    b->ops = ops;
    b->done = done;
    b->ud = ud;
    size_t sent = 0, failed_at = n;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        mk_store_op_t *op = &ops[i];
        const store_key_t *k = &keys[i];
        op->rc = 0;
        op->result = 0;
        char num[24];
        int nl = snprintf(num, sizeof num, "%" PRId64, op->by);
        const char *v = op->value.base ? op->value.base : "";
        if (op->kind == MK_STORE_OP_INCR && op->value.len > 0) {
            /* A counter seeded by mStore starts from its seed, not from 0. */
            const char *argv[] = {"SET", k->buf, v, "NX"};
            size_t lens[] = {3, k->len, op->value.len, 2};
            b->cmds[sent] = (async_cmd_t){b, i, true};
            rc = mk_redis_async_cmd(a, 4, argv, lens, on_async_reply, &b->cmds[sent], err);
            if (rc != 0) {
                failed_at = i;
                break;
            }
            sent++;
        }
        b->cmds[sent] = (async_cmd_t){b, i, false};
        if (op->kind == MK_STORE_OP_GET) {
            const char *argv[] = {"GET", k->buf};
            size_t lens[] = {3, k->len};
            rc = mk_redis_async_cmd(a, 2, argv, lens, on_async_reply, &b->cmds[sent], err);
        } else if (op->kind == MK_STORE_OP_SET) {
            const char *argv[] = {"SET", k->buf, v};
            size_t lens[] = {3, k->len, op->value.len};
            rc = mk_redis_async_cmd(a, 3, argv, lens, on_async_reply, &b->cmds[sent], err);
        } else {
            const char *argv[] = {"INCRBY", k->buf, num};
            size_t lens[] = {6, k->len, (size_t)nl};
            rc = mk_redis_async_cmd(a, 3, argv, lens, on_async_reply, &b->cmds[sent], err);
        }
        if (rc == 0)
            sent++;
        else
            failed_at = i;
    }
    if (sent == 0) {
        free(b);
        return rc;
    }
    if (rc != 0) {
        /* Some commands went out: their replies complete the batch, which reports this too. */
        b->failed = true;
        if (err != NULL)
            b->err = *err;
        else
            mk_err_set(&b->err, rc, "store: a command of the batch could not be sent");
        for (size_t i = failed_at; i < n; i++)
            ops[i].rc = rc;
    }
    b->remaining = sent;
    return 0;
}
