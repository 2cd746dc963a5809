/* Tests of the composite repository over a real SQLite file and a real redis-server: the read
 * path through the tiers, read-after-write, a second node sharing Redis, invalidation by
 * pub/sub, purges, a Redis outage and recovery, and the in-memory-only configuration. */
#include "composite/composite.h"
#include "redis/redis.h"
#include "sqlite/sqlite.h"
#include "testing/redis_server.h"
#include "testing/repo_docs.h"
#include "testing/testing.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static mk_testing_redis_t srv;
static char dir[64];
static int db_counter;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Counts the database's get_mock and list_docs calls, to prove a read was served by a cache (or,
 * for documents, was not). */
typedef struct db_calls {
    atomic_int get_mock;
    atomic_int list_docs;
} db_calls_t;

static void observe(void *ud, const char *operation, double seconds)
{
    (void)seconds;
    db_calls_t *calls = ud;
    if (strcmp(operation, "get_mock") == 0)
        atomic_fetch_add(&calls->get_mock, 1);
    if (strcmp(operation, "list_docs") == 0)
        atomic_fetch_add(&calls->list_docs, 1);
}

static void new_db_path(char *path, size_t cap)
{
    snprintf(path, cap, "%s/db%d.sqlite", dir, ++db_counter);
}

static mk_redis_opts_t redis_opts(void)
{
    return (mk_redis_opts_t){.host = "127.0.0.1", .port = srv.port, .timeout_ms = 500};
}

/* A node: a composite over the SQLite file at path, with Redis when with_redis. With Redis, it
 * is returned once its change subscription is connected: the first connection empties L1, which
 * would otherwise race with the test's first reads. */
static bool writer_skips_l1; /* the admin's option, for test_writer_does_not_fill_l1 */

static mk_repo_t *open_node(const char *path, bool with_redis, db_calls_t *calls)
{
    mk_repo_t *db = NULL, *r = NULL;
    mk_err_t err = {0};
    if (mk_sqlite_repo_open(path, &db, &err) != 0) {
        fprintf(stderr, "sqlite open: %s\n", err.msg);
        return NULL;
    }
    if (calls != NULL)
        mk_repo_set_observer(db, observe, calls);
    mk_redis_opts_t ro = redis_opts();
    mk_composite_opts_t o = {.cache_max_bytes = 1 << 20,
                             .redis = with_redis ? &ro : NULL,
                             .no_l1_fill_on_write = writer_skips_l1};
    if (mk_composite_open(db, &o, &r, &err) != 0) {
        fprintf(stderr, "composite open: %s\n", err.msg);
        return NULL;
    }
    long long deadline = now_ms() + 3000;
    while (with_redis && mk_composite_resyncs(r) == 0 && now_ms() < deadline)
        sleep_ms(2);
    return r;
}

typedef struct got {
    char id[64], ns[64], chain[64], json[512];
    bool has_chain;
    int64_t seq, created_at, updated_at, closed_at, uses, last_use;
} got_t;

static int copy_row(void *ud, const mk_repo_mock_t *m)
{
    got_t *g = ud;
    snprintf(g->id, sizeof g->id, "%s", m->id);
    snprintf(g->ns, sizeof g->ns, "%s", m->namespace_ ? m->namespace_ : "");
    g->has_chain = m->chain_id != NULL;
    snprintf(g->chain, sizeof g->chain, "%s", m->chain_id ? m->chain_id : "");
    snprintf(g->json, sizeof g->json, "%s", m->json ? m->json : "(null)");
    g->seq = m->seq;
    g->created_at = m->created_at;
    g->updated_at = m->updated_at;
    g->closed_at = m->closed_at;
    g->uses = m->uses;
    g->last_use = m->last_use;
    return 0;
}

static int get(mk_repo_t *r, const char *id, got_t *g)
{
    memset(g, 0, sizeof *g);
    mk_err_t err = {0};
    return mk_repo_get_mock(r, id, copy_row, g, &err);
}

static int64_t put(mk_repo_t *r, const char *id, const char *json)
{
    mk_repo_mock_t row = {
        .id = id, .namespace_ = "default", .json = json, .created_at = 1000, .updated_at = 2000};
    mk_err_t err = {0};
    if (mk_repo_put_mocks(r, &row, 1, &err) != 0) {
        fprintf(stderr, "put %s: %s\n", id, err.msg);
        return -1;
    }
    return row.seq;
}

static int purge(mk_repo_t *r, const char *id)
{
    mk_err_t err = {0};
    const char *ids[] = {id};
    return mk_repo_delete_mocks(r, ids, 1, &err);
}

/* A direct client, to look at and tamper with what the composite stored in Redis. */
static mk_redis_t *client(void)
{
    mk_redis_opts_t o = redis_opts();
    mk_redis_t *c = NULL;
    mk_err_t err;
    mk_redis_new(&o, &c, &err);
    return c;
}

/* Whether Redis holds the key of id; its bytes (NULs included) are copied into val. */
static bool redis_has(const char *id, char *val, size_t cap)
{
    mk_redis_t *c = client();
    char key[128];
    snprintf(key, sizeof key, "mockarty:mock:%s", id);
    mk_redis_reply_t *rep = NULL;
    mk_err_t err;
    bool has = mk_redis_cmdv(c, &rep, &err, 2, (const char *const[]){"GET", key}) == 0 &&
               rep->type == MK_REDIS_STR;
    if (has && val != NULL) {
        memset(val, 0, cap);
        memcpy(val, rep->str, rep->len < cap ? rep->len : cap - 1);
    }
    mk_redis_reply_free(rep);
    mk_redis_free(c);
    return has;
}

static void redis_flushall(void)
{
    mk_redis_t *c = client();
    mk_err_t err;
    mk_redis_cmdv(c, NULL, &err, 1, (const char *const[]){"FLUSHALL"});
    mk_redis_free(c);
}

/* Waits until n subscribers follow the change channel (subscriptions connect asynchronously). */
static bool wait_subscribers(long long n, int timeout_ms)
{
    mk_redis_t *c = client();
    bool ok = false;
    long long deadline = now_ms() + timeout_ms;
    while (!ok && now_ms() < deadline) {
        mk_redis_reply_t *rep = NULL;
        mk_err_t err;
        if (mk_redis_cmdv(c, &rep, &err, 3,
                          (const char *const[]){"PUBSUB", "NUMSUB", "mockarty:changes"}) == 0 &&
            rep->type == MK_REDIS_ARR && rep->nelems == 2 && rep->elems[1].integer >= n)
            ok = true;
        mk_redis_reply_free(rep);
        if (!ok)
            sleep_ms(20);
    }
    mk_redis_free(c);
    return ok;
}

/* A subscriber that records what it is told. */
typedef struct feed {
    pthread_mutex_t mu;
    int resyncs;
    int n;
    int64_t seqs[64];
    char ids[64][512];
} feed_t;

static void on_change(void *ud, int64_t seq, const char *id)
{
    feed_t *f = ud;
    pthread_mutex_lock(&f->mu);
    if (id == NULL) {
        f->resyncs++;
    } else if (f->n < 64) {
        f->seqs[f->n] = seq;
        snprintf(f->ids[f->n], sizeof f->ids[f->n], "%s", id);
        f->n++;
    }
    pthread_mutex_unlock(&f->mu);
}

static bool feed_has(feed_t *f, const char *id, int64_t min_seq)
{
    bool has = false;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->ids[i], id) == 0 && f->seqs[i] >= min_seq)
            has = true;
    }
    pthread_mutex_unlock(&f->mu);
    return has;
}

static int feed_resyncs(feed_t *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->resyncs;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Polls until id is seen with a seq of at least min_seq; returns the wait in ms, -1 on timeout. */
static long long wait_feed(feed_t *f, const char *id, int64_t min_seq, int timeout_ms)
{
    long long start = now_ms();
    while (now_ms() - start < timeout_ms) {
        if (feed_has(f, id, min_seq))
            return now_ms() - start;
        sleep_ms(5);
    }
    return -1;
}

static void subscribe(mk_repo_t *r, feed_t *f)
{
    mk_err_t err = {0};
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    MK_CHECK_INT(mk_repo_subscribe(r, on_change, f, &err), 0);
    /* The initial resync signal says the feed is connected. */
    long long deadline = now_ms() + 3000;
    while (feed_resyncs(f) == 0 && now_ms() < deadline)
        sleep_ms(5);
    MK_CHECK(feed_resyncs(f) > 0);
}

static void test_read_after_write(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    db_calls_t calls = {0};
    mk_repo_t *a = open_node(path, true, &calls);
    MK_CHECK(a != NULL);
    got_t g;
    mk_composite_tier_stats_t mem, red;

    MK_CHECK_INT(get(a, "raw-1", &g), MK_ENOTFOUND);
    MK_CHECK_INT(get(a, "raw-1", &g), MK_ENOTFOUND); /* not cached negatively */
    int64_t s1 = put(a, "raw-1", "{\"v\":1}");
    MK_CHECK(s1 > 0);
    MK_CHECK_INT(get(a, "raw-1", &g), 0);
    MK_CHECK_STR(g.json, "{\"v\":1}");
    MK_CHECK_INT(g.seq, s1);
    for (int v = 2; v <= 20; v++) {
        char json[32];
        snprintf(json, sizeof json, "{\"v\":%d}", v);
        int64_t s = put(a, "raw-1", json);
        MK_CHECK_INT(get(a, "raw-1", &g), 0);
        MK_CHECK_STR(g.json, json);
        MK_CHECK_INT(g.seq, s);
    }
    /* Every read after a write came from L1: the put filled it. */
    mk_composite_stats(a, &mem, &red);
    MK_CHECK_INT(mem.hits, 20);
    MK_CHECK_INT(mem.misses, 2);
    MK_CHECK_INT(atomic_load(&calls.get_mock), 2);
    /* And Redis holds the newest version too. */
    char val[600];
    MK_CHECK(redis_has("raw-1", val, sizeof val));
    MK_CHECK(memmem(val, sizeof val, "{\"v\":20}", 8) != NULL);
    MK_CHECK(memmem(val, sizeof val, "{\"v\":19}", 8) == NULL);
    mk_repo_free(a);
}

static void test_tiers(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    db_calls_t ca = {0}, cb = {0};
    mk_repo_t *a = open_node(path, true, &ca);
    mk_repo_t *b = open_node(path, true, &cb);
    MK_CHECK(a != NULL && b != NULL);
    feed_t fb;
    subscribe(b, &fb);
    mk_repo_mock_t row = {.id = "tier-1",
                          .namespace_ = "ns1",
                          .chain_id = "chain-7",
                          .json = "{\"multi\":\"line\\n\",\"u\":\"\xc3\xa9\"}\n",
                          .created_at = 111,
                          .updated_at = 222,
                          .closed_at = 333,
                          .uses = 44,
                          .last_use = 555};
    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_put_mocks(a, &row, 1, &err), 0);
    MK_CHECK(row.seq > 0);
    /* A read on B while the put's notification is still on its way would not fill L1 (a read
     * overlapping an invalidation never does), so the counts below wait for it. */
    MK_CHECK(wait_feed(&fb, "tier-1", row.seq, 1000) >= 0);

    /* Node B: not in its L1, found in Redis, no database read. */
    got_t g;
    mk_composite_tier_stats_t mem, red;
    MK_CHECK_INT(get(b, "tier-1", &g), 0);
    mk_composite_stats(b, &mem, &red);
    MK_CHECK_INT(mem.hits, 0);
    MK_CHECK_INT(mem.misses, 1);
    MK_CHECK_INT(red.hits, 1);
    MK_CHECK_INT(red.misses, 0);
    MK_CHECK_INT(atomic_load(&cb.get_mock), 0);
    /* Every field survives the encoding. */
    MK_CHECK_STR(g.id, "tier-1");
    MK_CHECK_STR(g.ns, "ns1");
    MK_CHECK(g.has_chain);
    MK_CHECK_STR(g.chain, "chain-7");
    MK_CHECK_STR(g.json, row.json);
    MK_CHECK_INT(g.seq, row.seq);
    MK_CHECK_INT(g.created_at, 111);
    MK_CHECK_INT(g.updated_at, 222);
    MK_CHECK_INT(g.closed_at, 333);
    MK_CHECK_INT(g.uses, 44);
    MK_CHECK_INT(g.last_use, 555);

    /* The second read on B is an L1 hit. */
    MK_CHECK_INT(get(b, "tier-1", &g), 0);
    mk_composite_stats(b, &mem, &red);
    MK_CHECK_INT(mem.hits, 1);
    MK_CHECK_INT(red.hits, 1);
    MK_CHECK_STR(g.json, row.json);

    /* With Redis emptied, a third node reads the database once, refilling Redis and its L1. */
    redis_flushall();
    db_calls_t cc = {0};
    mk_repo_t *c = open_node(path, true, &cc);
    MK_CHECK_INT(get(c, "tier-1", &g), 0);
    MK_CHECK_STR(g.json, row.json);
    MK_CHECK(!g.has_chain || strcmp(g.chain, "chain-7") == 0);
    MK_CHECK_INT(atomic_load(&cc.get_mock), 1);
    mk_composite_stats(c, &mem, &red);
    MK_CHECK_INT(red.misses, 1);
    MK_CHECK(redis_has("tier-1", NULL, 0));
    MK_CHECK_INT(get(c, "tier-1", &g), 0);
    MK_CHECK_INT(atomic_load(&cc.get_mock), 1);

    /* A NULL chain stays NULL through both tiers. */
    mk_repo_mock_t plain = {.id = "tier-2", .namespace_ = "ns1", .json = "{}"};
    MK_CHECK_INT(mk_repo_put_mocks(a, &plain, 1, &err), 0);
    MK_CHECK_INT(get(b, "tier-2", &g), 0);
    MK_CHECK(!g.has_chain);
    MK_CHECK_INT(get(b, "tier-2", &g), 0);
    MK_CHECK(!g.has_chain);

    /* Long ids are fine for keys and messages. */
    char long_id[401];
    memset(long_id, 'x', 400);
    long_id[400] = '\0';
    int64_t sl = put(a, long_id, "{\"long\":1}");
    MK_CHECK(wait_feed(&fb, long_id, sl, 1000) >= 0);
    mk_composite_stats(b, &mem, &red);
    MK_CHECK_INT(get(b, long_id, &g), 0);
    MK_CHECK_STR(g.json, "{\"long\":1}");
    MK_CHECK_INT(g.seq, sl);
    mk_composite_tier_stats_t red2;
    mk_composite_stats(b, &mem, &red2);
    MK_CHECK_INT(red2.hits, red.hits + 1);
    MK_CHECK_INT(purge(a, long_id), 0);
    MK_CHECK(wait_feed(&fb, long_id, sl + 1, 1000) >= 0);
    MK_CHECK_INT(get(b, long_id, &g), MK_ENOTFOUND);
    mk_repo_free(c);
    mk_repo_free(b);
    mk_repo_free(a);
    pthread_mutex_destroy(&fb.mu);
}

static void test_pubsub_invalidation(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    mk_repo_t *a = open_node(path, true, NULL);
    mk_repo_t *b = open_node(path, true, NULL);
    mk_repo_t *c = open_node(path, true, NULL); /* never subscribes */
    feed_t fb;
    subscribe(b, &fb);
    MK_CHECK(wait_subscribers(3, 3000));

    int64_t s1 = put(a, "ps-1", "{\"v\":1}");
    got_t g;
    MK_CHECK_INT(get(b, "ps-1", &g), 0);
    MK_CHECK_INT(get(b, "ps-1", &g), 0); /* now in B's L1 */
    MK_CHECK_INT(get(c, "ps-1", &g), 0);
    MK_CHECK_STR(g.json, "{\"v\":1}");
    MK_CHECK(wait_feed(&fb, "ps-1", s1, 1000) >= 0);

    mk_composite_tier_stats_t before, after, red;
    mk_composite_stats(b, &before, &red);
    int64_t s2 = put(a, "ps-1", "{\"v\":2}");
    long long waited = wait_feed(&fb, "ps-1", s2, 1000);
    printf("  node B notified of A's put after %lld ms\n", waited);
    MK_CHECK(waited >= 0);
    /* B's L1 entry was dropped by the notification: the next read misses L1 and is fresh. */
    MK_CHECK_INT(get(b, "ps-1", &g), 0);
    MK_CHECK_STR(g.json, "{\"v\":2}");
    MK_CHECK_INT(g.seq, s2);
    mk_composite_stats(b, &after, &red);
    MK_CHECK_INT(after.misses, before.misses + 1);
    MK_CHECK_INT(after.hits, before.hits);

    /* C never subscribed, yet its L1 follows too. */
    long long start = now_ms();
    bool fresh = false;
    while (!fresh && now_ms() - start < 1000) {
        fresh = get(c, "ps-1", &g) == 0 && strcmp(g.json, "{\"v\":2}") == 0;
        if (!fresh)
            sleep_ms(5);
    }
    MK_CHECK(fresh);

    /* A second subscription is refused. */
    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_subscribe(b, on_change, &fb, &err), MK_EINVAL);
    mk_repo_free(c);
    mk_repo_free(b);
    mk_repo_free(a);
    pthread_mutex_destroy(&fb.mu);
}

static void test_purge(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    mk_repo_t *a = open_node(path, true, NULL);
    mk_repo_t *b = open_node(path, true, NULL);
    feed_t fb;
    subscribe(b, &fb);
    MK_CHECK(wait_subscribers(2, 3000));
    int64_t s1 = put(a, "pg-1", "{\"v\":1}");
    put(a, "pg-2", "{\"keep\":true}");
    got_t g;
    MK_CHECK_INT(get(a, "pg-1", &g), 0);
    MK_CHECK_INT(get(b, "pg-1", &g), 0);
    MK_CHECK_INT(get(b, "pg-1", &g), 0);
    MK_CHECK_INT(get(b, "pg-2", &g), 0);

    MK_CHECK_INT(purge(a, "pg-1"), 0);
    MK_CHECK_INT(get(a, "pg-1", &g), MK_ENOTFOUND);
    /* The purge is announced with its tombstone's seq, newer than the put's. */
    MK_CHECK(wait_feed(&fb, "pg-1", s1 + 1, 1000) >= 0);
    MK_CHECK_INT(get(b, "pg-1", &g), MK_ENOTFOUND);
    MK_CHECK_INT(get(b, "pg-1", &g), MK_ENOTFOUND);
    /* Redis keeps a tombstone, not the row, so no node can refill an old copy. */
    char val[128] = "";
    MK_CHECK(redis_has("pg-1", val, sizeof val));
    MK_CHECK(val[0] == 'T');
    /* A third node with a cold L1 agrees. */
    mk_repo_t *c = open_node(path, true, NULL);
    MK_CHECK_INT(get(c, "pg-1", &g), MK_ENOTFOUND);
    MK_CHECK_INT(get(c, "pg-2", &g), 0);
    /* Re-created after the purge: live again everywhere. */
    int64_t s3 = put(a, "pg-1", "{\"v\":3}");
    MK_CHECK(wait_feed(&fb, "pg-1", s3, 1000) >= 0);
    MK_CHECK_INT(get(b, "pg-1", &g), 0);
    MK_CHECK_STR(g.json, "{\"v\":3}");
    MK_CHECK_INT(get(c, "pg-1", &g), 0);
    MK_CHECK_STR(g.json, "{\"v\":3}");
    /* Purging an id that never existed is not an error. */
    MK_CHECK_INT(purge(a, "never-there"), 0);
    mk_repo_free(c);
    mk_repo_free(b);
    mk_repo_free(a);
    pthread_mutex_destroy(&fb.mu);
}

static void test_redis_outage(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    mk_repo_t *a = open_node(path, true, NULL);
    mk_repo_t *b = open_node(path, true, NULL);
    feed_t fb;
    subscribe(b, &fb);
    MK_CHECK(wait_subscribers(2, 3000));
    double lat = -1;
    MK_CHECK_STR(mk_composite_redis_status(a, &lat), "up");
    MK_CHECK(lat >= 0);
    put(a, "out-1", "{\"v\":1}");
    got_t g;
    MK_CHECK_INT(get(b, "out-1", &g), 0); /* in B's L1 */

    MK_CHECK_INT(mk_testing_redis_stop(&srv), 0);
    long long t0 = now_ms();
    /* Writes and reads still work, from L1 and the database. */
    int64_t s2 = put(a, "out-1", "{\"v\":2}");
    MK_CHECK(s2 > 0);
    MK_CHECK_INT(get(a, "out-1", &g), 0);
    MK_CHECK_STR(g.json, "{\"v\":2}");
    int64_t s3 = put(a, "out-2", "{\"new\":1}");
    MK_CHECK(s3 > 0);
    MK_CHECK_INT(get(b, "out-2", &g), 0);
    MK_CHECK_STR(g.json, "{\"new\":1}");
    MK_CHECK_INT(get(b, "out-2", &g), 0);
    MK_CHECK_INT(purge(a, "out-2"), 0);
    MK_CHECK_INT(get(a, "out-2", &g), MK_ENOTFOUND);
    MK_CHECK_STR(mk_composite_redis_status(a, NULL), "down");
    MK_CHECK_STR(mk_composite_redis_status(b, NULL), "down");
    printf("  with Redis down: 3 writes, 5 reads and 2 status checks took %lld ms\n",
           now_ms() - t0);

    /* Back (empty): status recovers, the changes B missed reach it (its subscriber resyncs
     * and A republishes its failed writes), and caching in Redis resumes. */
    MK_CHECK_INT(mk_testing_redis_restart(&srv), 0);
    long long start = now_ms();
    /* The client retries a dead connection at most every 100 ms, so "up" may take that long. */
    const char *status = "down";
    while (strcmp(status, "up") != 0 && now_ms() - start < 2000) {
        status = mk_composite_redis_status(a, NULL);
        sleep_ms(10);
    }
    MK_CHECK_STR(status, "up");
    bool fresh = false, gone = false;
    while (!(fresh && gone) && now_ms() - start < 8000) {
        fresh = get(b, "out-1", &g) == 0 && strcmp(g.json, "{\"v\":2}") == 0;
        gone = get(b, "out-2", &g) == MK_ENOTFOUND;
        if (!(fresh && gone))
            sleep_ms(20);
    }
    printf("  node B fresh again %lld ms after the restart\n", now_ms() - start);
    MK_CHECK(fresh);
    MK_CHECK(gone);
    MK_CHECK(wait_subscribers(2, 8000));
    int64_t s4 = put(a, "out-3", "{\"after\":1}");
    MK_CHECK(redis_has("out-3", NULL, 0));
    mk_composite_tier_stats_t mem, red0, red1;
    mk_composite_stats(b, &mem, &red0);
    MK_CHECK_INT(get(b, "out-3", &g), 0);
    MK_CHECK_INT(g.seq, s4);
    mk_composite_stats(b, &mem, &red1);
    MK_CHECK_INT(red1.hits, red0.hits + 1);
    MK_CHECK_STR(mk_composite_redis_status(b, NULL), "up");
    mk_repo_free(b);
    mk_repo_free(a);
    pthread_mutex_destroy(&fb.mu);
}

static void redis_config_maxmemory(const char *value)
{
    mk_redis_t *c = client();
    mk_err_t err;
    MK_CHECK_INT(
        mk_redis_cmdv(c, NULL, &err, 4, (const char *const[]){"CONFIG", "SET", "maxmemory", value}),
        0);
    mk_redis_free(c);
}

/* Redis up but refusing writes (out of memory): the failed write's key is deleted and the
 * change published again, so no node keeps reading the old version from Redis. */
static void test_redis_write_refused(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    mk_repo_t *a = open_node(path, true, NULL);
    mk_repo_t *b = open_node(path, true, NULL);
    MK_CHECK(wait_subscribers(2, 3000));
    put(a, "oom-1", "{\"v\":1}");
    got_t g;
    MK_CHECK_INT(get(b, "oom-1", &g), 0);
    MK_CHECK(redis_has("oom-1", NULL, 0));
    uint64_t failures = mk_composite_redis_failures(a);

    redis_config_maxmemory("1");
    int64_t s2 = put(a, "oom-1", "{\"v\":2}");
    MK_CHECK(s2 > 0);
    MK_CHECK(mk_composite_redis_failures(a) > failures);
    MK_CHECK(!redis_has("oom-1", NULL, 0));
    long long start = now_ms();
    bool fresh = false;
    while (!fresh && now_ms() - start < 1000) {
        fresh = get(b, "oom-1", &g) == 0 && strcmp(g.json, "{\"v\":2}") == 0;
        if (!fresh)
            sleep_ms(5);
    }
    MK_CHECK(fresh);
    MK_CHECK_STR(mk_composite_redis_status(a, NULL), "up");
    redis_config_maxmemory("0");
    mk_repo_free(b);
    mk_repo_free(a);
}

static int count_row(void *ud, const mk_repo_mock_t *row)
{
    (void)row;
    (*(int *)ud)++;
    return 0;
}

static int count_name(void *ud, const char *name, int64_t created_at)
{
    (void)name;
    (void)created_at;
    (*(int *)ud)++;
    return 0;
}

static void test_no_redis(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    db_calls_t calls = {0};
    mk_repo_t *a = open_node(path, false, &calls);
    MK_CHECK(a != NULL);
    MK_CHECK_STR(mk_repo_backend(a), "composite");
    double lat = -1;
    MK_CHECK_STR(mk_composite_redis_status(a, &lat), "not_configured");
    MK_CHECK(lat == 0);
    int64_t s1 = put(a, "nr-1", "{\"v\":1}");
    got_t g;
    MK_CHECK_INT(get(a, "nr-1", &g), 0);
    MK_CHECK_INT(g.seq, s1);
    MK_CHECK_INT(atomic_load(&calls.get_mock), 0);
    mk_composite_tier_stats_t mem, red;
    mk_composite_stats(a, &mem, &red);
    MK_CHECK_INT(mem.hits, 1);
    MK_CHECK_INT(red.hits + red.misses, 0);

    /* A second node over the same file reads the database once, then its L1. */
    db_calls_t cb = {0};
    mk_repo_t *b = open_node(path, false, &cb);
    MK_CHECK_INT(get(b, "nr-1", &g), 0);
    MK_CHECK_INT(get(b, "nr-1", &g), 0);
    MK_CHECK_INT(atomic_load(&cb.get_mock), 1);

    MK_CHECK_INT(purge(a, "nr-1"), 0);
    MK_CHECK_INT(get(a, "nr-1", &g), MK_ENOTFOUND);
    /* SQLite has no change feed and there is no Redis: nothing to subscribe to. */
    mk_err_t err = {0};
    feed_t f = {0};
    MK_CHECK_INT(mk_repo_subscribe(a, on_change, &f, &err), MK_EINVAL);

    /* The rest is forwarded to the database. */
    MK_CHECK_INT(mk_repo_ping(a, &err), 0);
    MK_CHECK_INT(mk_repo_put_namespace(a, "team", 5, &err), 0);
    int names = 0;
    MK_CHECK_INT(mk_repo_list_namespaces(a, count_name, &names, &err), 0);
    MK_CHECK(names >= 1);
    put(a, "nr-2", "{}");
    mk_repo_usage_t u = {.id = "nr-2", .uses = 9, .last_use = 99};
    MK_CHECK_INT(mk_repo_update_usage(a, &u, 1, &err), 0);
    int rows = 0;
    MK_CHECK_INT(mk_repo_load_mocks(a, 0, count_row, &rows, &err), 0);
    MK_CHECK_INT(rows, 1);
    mk_repo_free(b);
    mk_repo_free(a);
}

/* The admin's composite: writes leave the in-process tier alone (its catalog holds the mocks),
 * so the first read goes to the database and fills it, and a rewrite evicts the older copy. */
static void test_writer_does_not_fill_l1(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    db_calls_t calls = {0};
    writer_skips_l1 = true;
    mk_repo_t *a = open_node(path, false, &calls);
    writer_skips_l1 = false;
    MK_CHECK(a != NULL);
    int64_t s1 = put(a, "wl-1", "{\"v\":1}");
    got_t g;
    MK_CHECK_INT(get(a, "wl-1", &g), 0);
    MK_CHECK_INT(g.seq, s1);
    MK_CHECK_INT(atomic_load(&calls.get_mock), 1);
    MK_CHECK_INT(get(a, "wl-1", &g), 0);
    MK_CHECK_INT(atomic_load(&calls.get_mock), 1);
    int64_t s2 = put(a, "wl-1", "{\"v\":2}");
    MK_CHECK_INT(get(a, "wl-1", &g), 0);
    MK_CHECK_INT(g.seq, s2);
    MK_CHECK_INT(atomic_load(&calls.get_mock), 2);
    mk_repo_free(a);
}

typedef struct rw_worker {
    mk_repo_t *r;
    int t;
    int bad;
} rw_worker_t;

/* Each writer owns its ids and checks every read right after its own write. */
static void *writer(void *arg)
{
    rw_worker_t *w = arg;
    for (int i = 0; i < 150; i++) {
        char id[32], json[64];
        snprintf(id, sizeof id, "rw-%d-%d", w->t, i % 5);
        snprintf(json, sizeof json, "{\"t\":%d,\"i\":%d}", w->t, i);
        int64_t seq = put(w->r, id, json);
        got_t g;
        if (seq <= 0 || get(w->r, id, &g) != 0 || strcmp(g.json, json) != 0 || g.seq != seq)
            w->bad++;
    }
    return NULL;
}

static void *reader(void *arg)
{
    rw_worker_t *w = arg;
    for (int i = 0; i < 600; i++) {
        char id[32];
        snprintf(id, sizeof id, "rw-%d-%d", i % 3, (i / 3) % 5);
        got_t g;
        int rc = get(w->r, id, &g);
        if (rc != 0 && rc != MK_ENOTFOUND)
            w->bad++;
    }
    return NULL;
}

static void test_concurrent(void)
{
    char path[128];
    new_db_path(path, sizeof path);
    mk_repo_t *a = open_node(path, true, NULL);
    mk_repo_t *b = open_node(path, true, NULL);
    pthread_t th[5];
    rw_worker_t w[5];
    for (int i = 0; i < 3; i++) {
        w[i] = (rw_worker_t){a, i, 0};
        pthread_create(&th[i], NULL, writer, &w[i]);
    }
    w[3] = (rw_worker_t){a, 3, 0};
    w[4] = (rw_worker_t){b, 4, 0};
    pthread_create(&th[3], NULL, reader, &w[3]);
    pthread_create(&th[4], NULL, reader, &w[4]);
    int bad = 0;
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        bad += w[i].bad;
    }
    MK_CHECK_INT(bad, 0);
    /* Afterwards every node converges on the last write. */
    got_t g;
    long long start = now_ms();
    bool same = false;
    while (!same && now_ms() - start < 2000) {
        same = get(b, "rw-1-4", &g) == 0 && strcmp(g.json, "{\"t\":1,\"i\":149}") == 0;
        if (!same)
            sleep_ms(10);
    }
    MK_CHECK(same);
    mk_repo_free(b);
    mk_repo_free(a);
}

/* Documents pass through to the database, with or without Redis: the shared checks hold, every
 * listing reaches the database, and a second node over the same file sees a write at once. */
static void test_docs(void)
{
    for (int with_redis = 0; with_redis <= 1; with_redis++) {
        char path[128];
        new_db_path(path, sizeof path);
        db_calls_t calls = {0};
        mk_repo_t *a = open_node(path, with_redis, &calls);
        mk_repo_t *b = open_node(path, with_redis, NULL);
        MK_CHECK(a != NULL && b != NULL);
        if (a == NULL || b == NULL) {
            mk_repo_free(a);
            mk_repo_free(b);
            continue;
        }
        mk_testing_repo_docs_check(a);
        MK_CHECK_INT(mk_testing_repo_docs_count(b, "batch", NULL), 300);
        int before = atomic_load(&calls.list_docs);
        MK_CHECK_INT(mk_testing_repo_docs_count(a, "tag", NULL), 1);
        MK_CHECK_INT(mk_testing_repo_docs_count(a, "tag", NULL), 1);
        MK_CHECK_INT(atomic_load(&calls.list_docs), before + 2);
        mk_err_t err = {0};
        mk_repo_doc_t d = {.kind = "tag", .id = "ns/new", .namespace_ = "ns", .json = "{}"};
        MK_CHECK_INT(mk_repo_put_docs(b, &d, 1, &err), 0);
        MK_CHECK_INT(mk_testing_repo_docs_count(a, "tag", NULL), 2);
        const char *ids[] = {"ns/new"};
        MK_CHECK_INT(mk_repo_delete_docs(a, "tag", ids, 1, &err), 0);
        MK_CHECK_INT(mk_testing_repo_docs_count(b, "tag", NULL), 1);
        mk_repo_free(b);
        mk_repo_free(a);
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mk_composite_test.XXXXXX");
    if (mkdtemp(dir) == NULL || mk_testing_redis_start(&srv) != 0) {
        fprintf(stderr, "cannot set up the test (temp dir or redis-server)\n");
        return 1;
    }
    MK_RUN(test_read_after_write);
    MK_RUN(test_tiers);
    MK_RUN(test_pubsub_invalidation);
    MK_RUN(test_purge);
    MK_RUN(test_no_redis);
    MK_RUN(test_writer_does_not_fill_l1);
    MK_RUN(test_concurrent);
    MK_RUN(test_redis_write_refused);
    MK_RUN(test_redis_outage);
    MK_RUN(test_docs);
    mk_testing_redis_free(&srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return mk_testing_done();
}
