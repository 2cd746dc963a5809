/* Tests of the store through store.h, each run on both backends: memory, and Redis against a real
 * redis-server started here (testing/redis_server.h). mk_redis is used only to empty the server
 * between tests. */
#include "redis/redis.h"
#include "store/store.h"
#include "testing/redis_server.h"
#include "testing/testing.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static mk_testing_redis_t srv;
static mk_store_type_t backend;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void flush_redis(void)
{
    mk_redis_opts_t o = {.host = "127.0.0.1", .port = srv.port};
    mk_redis_t *r = NULL;
    mk_err_t err = {0};
    if (mk_redis_new(&o, &r, &err) != 0)
        return;
    const char *argv[] = {"FLUSHALL"};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 1, argv), 0);
    mk_redis_free(r);
}

static mk_store_t *open_with(int64_t history_ms, int64_t sweep_ms, size_t max_value)
{
    mk_store_opts_t o = {.type = backend,
                         .redis_host = "127.0.0.1",
                         .redis_port = srv.port,
                         .max_value_bytes = max_value,
                         .history_ms = history_ms,
                         .sweep_interval_ms = sweep_ms};
    mk_store_t *s = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_store_open(&o, &s, &err), 0);
    if (backend == MK_STORE_REDIS)
        flush_redis();
    return s;
}

static mk_store_t *open_default(void)
{
    return open_with(0, 0, 0);
}

#define S(lit) MK_STR_LIT(lit)

/* Reads a value as a C string ("" when absent); rc in *rc. */
static char *get_str(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, int *rc)
{
    static char out[512];
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_err_t err = {0};
    *rc = mk_store_get(s, ns, table, key, &b, &err);
    snprintf(out, sizeof out, "%s", *rc == 0 && b.data ? b.data : "");
    mk_buf_free(&b);
    return out;
}

typedef struct collected {
    int n;
    char keys[64][64];
    char vals[64][64];
    int stop_after;
} collected_t;

static int collect(void *ud, mk_str_t key, mk_str_t value)
{
    collected_t *c = ud;
    if (c->n < 64) {
        snprintf(c->keys[c->n], sizeof c->keys[0], "%.*s", (int)key.len, key.base);
        snprintf(c->vals[c->n], sizeof c->vals[0], "%.*s", (int)value.len, value.base);
    }
    c->n++;
    return c->stop_after != 0 && c->n >= c->stop_after;
}

static bool has_pair(const collected_t *c, const char *k, const char *v)
{
    for (int i = 0; i < c->n && i < 64; i++)
        if (strcmp(c->keys[i], k) == 0 && strcmp(c->vals[i], v) == 0)
            return true;
    return false;
}

static void test_basic(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    int rc;
    MK_CHECK_STR(mk_store_backend(s), backend == MK_STORE_MEMORY ? "memory" : "redis");
    MK_CHECK_INT(mk_store_set(s, S("ns1"), S("global"), S("user"), S("{\"id\":1}"), 0, &err), 0);
    MK_CHECK_STR(get_str(s, S("ns1"), S("global"), S("user"), &rc), "{\"id\":1}");
    MK_CHECK_INT(rc, 0);
    MK_CHECK_INT(mk_store_set(s, S("ns1"), S("global"), S("user"), S("{\"id\":2}"), 0, &err), 0);
    MK_CHECK_STR(get_str(s, S("ns1"), S("global"), S("user"), &rc), "{\"id\":2}");
    get_str(s, S("ns1"), S("global"), S("nobody"), &rc);
    MK_CHECK_INT(rc, MK_ENOTFOUND);

    /* Values are bytes, NUL included; the empty key is a key. */
    mk_str_t bin = {"a\0b", 3};
    MK_CHECK_INT(mk_store_set(s, S("ns1"), S("global"), S(""), bin, 0, &err), 0);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    MK_CHECK_INT(mk_store_get(s, S("ns1"), S("global"), S(""), &b, &err), 0);
    MK_CHECK(b.len == 3 && memcmp(b.data, "a\0b", 3) == 0);
    mk_buf_free(&b);

    MK_CHECK_INT(mk_store_set(s, S("ns1"), S("global"), S("k:with:colons"), S("c"), 0, &err), 0);
    collected_t c = {0};
    MK_CHECK_INT(mk_store_each(s, S("ns1"), S("global"), collect, &c, &err), 0);
    MK_CHECK_INT(c.n, 3);
    MK_CHECK(has_pair(&c, "user", "{\"id\":2}"));
    MK_CHECK(has_pair(&c, "k:with:colons", "c"));

    /* A non-zero return stops the walk. */
    collected_t one = {.stop_after = 1};
    MK_CHECK_INT(mk_store_each(s, S("ns1"), S("global"), collect, &one, &err), 0);
    MK_CHECK_INT(one.n, 1);

    MK_CHECK_INT(mk_store_delete(s, S("ns1"), S("global"), S("user"), &err), 0);
    get_str(s, S("ns1"), S("global"), S("user"), &rc);
    MK_CHECK_INT(rc, MK_ENOTFOUND);
    MK_CHECK_INT(mk_store_delete(s, S("ns1"), S("global"), S("user"), &err), 0);

    MK_CHECK_INT(mk_store_clear(s, S("ns1"), S("global"), &err), 0);
    collected_t none = {0};
    MK_CHECK_INT(mk_store_each(s, S("ns1"), S("global"), collect, &none, &err), 0);
    MK_CHECK_INT(none.n, 0);

    double lat = -1;
    MK_CHECK_INT(mk_store_ping(s, &lat, &err), 0);
    MK_CHECK(lat >= 0 && lat < 1000);
    mk_store_free(s);
}

/* Glob characters in a table name match only themselves (Redis SCAN MATCH is escaped). */
static void test_glob_chars(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    MK_CHECK_INT(mk_store_set(s, S("g"), S("t*"), S("a"), S("1"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("g"), S("tother"), S("b"), S("2"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("g"), S("t?[x]\\"), S("c"), S("3"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("g"), S("tz[x]\\"), S("d"), S("4"), 0, &err), 0);
    collected_t c = {0};
    MK_CHECK_INT(mk_store_each(s, S("g"), S("t*"), collect, &c, &err), 0);
    MK_CHECK_INT(c.n, 1);
    MK_CHECK(has_pair(&c, "a", "1"));
    collected_t d = {0};
    MK_CHECK_INT(mk_store_each(s, S("g"), S("t?[x]\\"), collect, &d, &err), 0);
    MK_CHECK_INT(d.n, 1);
    MK_CHECK(has_pair(&d, "c", "3"));
    MK_CHECK_INT(mk_store_clear(s, S("g"), S("t*"), &err), 0);
    int rc;
    MK_CHECK_STR(get_str(s, S("g"), S("tother"), S("b"), &rc), "2");
    mk_store_free(s);
}

static void test_ttl(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    int rc;
    MK_CHECK_INT(mk_store_set(s, S("t"), S("cache"), S("short"), S("v"), 50, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("t"), S("cache"), S("forever"), S("f"), 0, &err), 0);
    MK_CHECK_STR(get_str(s, S("t"), S("cache"), S("short"), &rc), "v");
    sleep_ms(120);
    get_str(s, S("t"), S("cache"), S("short"), &rc);
    MK_CHECK_INT(rc, MK_ENOTFOUND);
    MK_CHECK_STR(get_str(s, S("t"), S("cache"), S("forever"), &rc), "f");
    /* Setting again without TTL makes a record permanent. */
    MK_CHECK_INT(mk_store_set(s, S("t"), S("cache"), S("k"), S("1"), 50, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("t"), S("cache"), S("k"), S("2"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("t"), S("cache"), S("gone"), S("x"), 50, &err), 0);
    sleep_ms(120);
    MK_CHECK_STR(get_str(s, S("t"), S("cache"), S("k"), &rc), "2");
    collected_t c = {0};
    MK_CHECK_INT(mk_store_each(s, S("t"), S("cache"), collect, &c, &err), 0);
    MK_CHECK_INT(c.n, 2);
    MK_CHECK(!has_pair(&c, "gone", "x"));
    mk_store_free(s);
}

/* Memory only: expired records are freed by the sweep without anyone touching them. */
static void test_sweep(void)
{
    mk_store_t *s = open_with(0, 20, 0);
    mk_err_t err = {0};
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        mk_store_set(s, S("sw"), S("t"), mk_str_of(key), S("some value"), i < 2500 ? 30 : 0, &err);
    }
    size_t records = 0, bytes = 0;
    mk_store_mem_stats(s, &records, &bytes);
    MK_CHECK_INT(records, 3000);
    size_t bytes_before = bytes;
    double t0 = now_ms();
    while (now_ms() - t0 < 2000) {
        mk_store_mem_stats(s, &records, &bytes);
        if (records == 500)
            break;
        sleep_ms(10);
    }
    MK_CHECK_INT(records, 500);
    MK_CHECK(bytes < bytes_before / 5);
    fprintf(stderr, "     sweep freed 2500 expired records in %.0f ms\n", now_ms() - t0);
    /* Lazy removal on access also frees. */
    MK_CHECK_INT(mk_store_set(s, S("sw"), S("t"), S("lazy"), S("v"), 10, &err), 0);
    sleep_ms(15);
    int rc;
    size_t with_lazy;
    mk_store_mem_stats(s, &with_lazy, NULL);
    get_str(s, S("sw"), S("t"), S("lazy"), &rc);
    MK_CHECK_INT(rc, MK_ENOTFOUND);
    mk_store_mem_stats(s, &records, NULL);
    MK_CHECK(records == 500 && (with_lazy == 501 || with_lazy == 500));
    mk_store_free(s);
}

static void test_isolation(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    int rc;
    MK_CHECK_INT(mk_store_set(s, S("a"), S("t"), S("k"), S("from-a"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("b"), S("t"), S("k"), S("from-b"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("a.b"), S("t"), S("k"), S("from-a.b"), 0, &err), 0);
    MK_CHECK_STR(get_str(s, S("a"), S("t"), S("k"), &rc), "from-a");
    MK_CHECK_STR(get_str(s, S("b"), S("t"), S("k"), &rc), "from-b");
    collected_t c = {0};
    MK_CHECK_INT(mk_store_each(s, S("a"), S("t"), collect, &c, &err), 0);
    MK_CHECK_INT(c.n, 1);
    MK_CHECK_INT(mk_store_clear(s, S("a"), S("t"), &err), 0);
    get_str(s, S("a"), S("t"), S("k"), &rc);
    MK_CHECK_INT(rc, MK_ENOTFOUND);
    MK_CHECK_STR(get_str(s, S("b"), S("t"), S("k"), &rc), "from-b");
    MK_CHECK_STR(get_str(s, S("a.b"), S("t"), S("k"), &rc), "from-a.b");

    /* Table "x:y" key "z" and table "x" key "y:z" are different records; so is "x%3Ay". */
    MK_CHECK_INT(mk_store_set(s, S("a"), S("x:y"), S("z"), S("table-x:y"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("a"), S("x"), S("y:z"), S("table-x"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("a"), S("x%3Ay"), S("z"), S("table-x%3Ay"), 0, &err), 0);
    MK_CHECK_STR(get_str(s, S("a"), S("x:y"), S("z"), &rc), "table-x:y");
    MK_CHECK_STR(get_str(s, S("a"), S("x"), S("y:z"), &rc), "table-x");
    MK_CHECK_STR(get_str(s, S("a"), S("x%3Ay"), S("z"), &rc), "table-x%3Ay");
    collected_t x = {0};
    MK_CHECK_INT(mk_store_each(s, S("a"), S("x"), collect, &x, &err), 0);
    MK_CHECK_INT(x.n, 1);
    MK_CHECK(has_pair(&x, "y:z", "table-x"));
    MK_CHECK_INT(mk_store_clear(s, S("a"), S("x"), &err), 0);
    MK_CHECK_STR(get_str(s, S("a"), S("x:y"), S("z"), &rc), "table-x:y");
    mk_store_free(s);
}

static void test_incr(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    int rc;
    int64_t v = 0;
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("n"), 1, &v, &err), 0);
    MK_CHECK_INT(v, 1);
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("n"), 5, &v, &err), 0);
    MK_CHECK_INT(v, 6);
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("n"), -10, NULL, &err), 0);
    MK_CHECK_STR(get_str(s, S("i"), S("c"), S("n"), &rc), "-4");

    /* JSON number text set by a caller counts. */
    MK_CHECK_INT(mk_store_set(s, S("i"), S("c"), S("j"), S("41"), 0, &err), 0);
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("j"), 1, &v, &err), 0);
    MK_CHECK_INT(v, 42);

    /* The TTL is kept. */
    MK_CHECK_INT(mk_store_set(s, S("i"), S("c"), S("ttl"), S("10"), 100, &err), 0);
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("ttl"), 1, &v, &err), 0);
    MK_CHECK_INT(v, 11);
    sleep_ms(160);
    get_str(s, S("i"), S("c"), S("ttl"), &rc);
    MK_CHECK_INT(rc, MK_ENOTFOUND);
    /* ... and an expired record counts as absent. */
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("ttl"), 1, &v, &err), 0);
    MK_CHECK_INT(v, 1);

    const char *bad[] = {"abc", "1.5", "", " 1", "01", "+1", "-0", "-", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        MK_CHECK_INT(mk_store_set(s, S("i"), S("c"), S("bad"), mk_str_of(bad[i]), 0, &err), 0);
        mk_err_clear(&err);
        MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("bad"), 1, &v, &err), MK_EINVAL);
        MK_CHECK_STR(err.msg, "store: value at key is not an integer");
        MK_CHECK_STR(get_str(s, S("i"), S("c"), S("bad"), &rc), bad[i]);
    }
    MK_CHECK_INT(mk_store_set(s, S("i"), S("c"), S("max"), S("9223372036854775807"), 0, &err), 0);
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("max"), 1, &v, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "overflow") != NULL);
    MK_CHECK_INT(mk_store_set(s, S("i"), S("c"), S("min"), S("-9223372036854775808"), 0, &err), 0);
    MK_CHECK_INT(mk_store_incr(s, S("i"), S("c"), S("min"), 0, &v, &err), 0);
    MK_CHECK(v == INT64_MIN);
    mk_store_free(s);
}

typedef struct incr_worker {
    mk_store_t *s;
    int failures;
} incr_worker_t;

static void *incr_main(void *arg)
{
    incr_worker_t *w = arg;
    mk_err_t err = {0};
    for (int i = 0; i < 1000; i++)
        if (mk_store_incr(w->s, S("conc"), S("global"), S("hits"), 1, NULL, &err) != 0)
            w->failures++;
    return NULL;
}

static void test_incr_concurrent(void)
{
    mk_store_t *s = open_default();
    pthread_t th[4];
    incr_worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (incr_worker_t){s, 0};
        pthread_create(&th[i], NULL, incr_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        MK_CHECK_INT(w[i].failures, 0);
    }
    int rc;
    MK_CHECK_STR(get_str(s, S("conc"), S("global"), S("hits"), &rc), "4000");
    mk_store_free(s);
}

static void test_validation(void)
{
    mk_store_t *s = open_with(0, 0, 100);
    mk_err_t err = {0};
    char big[101];
    memset(big, 'x', sizeof big);
    MK_CHECK_INT(mk_store_set(s, S("v"), S("t"), S("k"), (mk_str_t){big, 100}, 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("v"), S("t"), S("k"), (mk_str_t){big, 101}, 0, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "101 bytes") != NULL && strstr(err.msg, "limit of 100") != NULL);
    MK_CHECK_INT(mk_store_history_append(s, S("v"), wall_ms(), (mk_str_t){big, 101}, &err),
                 MK_EINVAL);

    mk_str_t nulkey = {"a\0b", 3};
    MK_CHECK_INT(mk_store_set(s, S("v"), S("t"), nulkey, S("1"), 0, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "NUL") != NULL);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    MK_CHECK_INT(mk_store_get(s, S("v"), S("t"), nulkey, &b, &err), MK_EINVAL);
    mk_buf_free(&b);
    MK_CHECK_INT(mk_store_incr(s, S("v"), S("t"), nulkey, 1, NULL, &err), MK_EINVAL);
    MK_CHECK_INT(mk_store_delete(s, S("v"), S("t"), nulkey, &err), MK_EINVAL);

    char longkey[1025];
    memset(longkey, 'k', sizeof longkey);
    MK_CHECK_INT(mk_store_set(s, S("v"), S("t"), (mk_str_t){longkey, 1024}, S("1"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, S("v"), S("t"), (mk_str_t){longkey, 1025}, S("1"), 0, &err),
                 MK_EINVAL);
    MK_CHECK(strstr(err.msg, "1024") != NULL);

    const char *bad_ns[] = {"", "a b", "a:b", "ns/x", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_ns / sizeof bad_ns[0]; i++) {
        MK_CHECK_INT(mk_store_set(s, mk_str_of(bad_ns[i]), S("t"), S("k"), S("1"), 0, &err),
                     MK_EINVAL);
        MK_CHECK(strstr(err.msg, "namespace") != NULL);
    }
    char ns65[65];
    memset(ns65, 'n', sizeof ns65);
    MK_CHECK_INT(mk_store_set(s, (mk_str_t){ns65, 64}, S("t"), S("k"), S("1"), 0, &err), 0);
    MK_CHECK_INT(mk_store_set(s, (mk_str_t){ns65, 65}, S("t"), S("k"), S("1"), 0, &err), MK_EINVAL);
    MK_CHECK_INT(mk_store_history_each(s, S("a b"), 0, collect, NULL, &err), MK_EINVAL);
    MK_CHECK_INT(mk_store_set(s, S("v"), S(""), S("k"), S("1"), 0, &err), MK_EINVAL);
    MK_CHECK_INT(mk_store_set(s, S("v"), S("t"), S("k"), S("1"), -5, &err), MK_EINVAL);

    /* A table name of the maximum size, made of characters that escape to three bytes. */
    char table[256];
    memset(table, ':', sizeof table);
    MK_CHECK_INT(mk_store_set(s, (mk_str_t){ns65, 64}, (mk_str_t){table, 256},
                              (mk_str_t){longkey, 1024}, S("edge"), 0, &err),
                 0);
    int rc;
    MK_CHECK_STR(
        get_str(s, (mk_str_t){ns65, 64}, (mk_str_t){table, 256}, (mk_str_t){longkey, 1024}, &rc),
        "edge");
    mk_store_free(s);
}

typedef struct hist_seen {
    int n;
    int64_t ts[64];
    char rec[64][64];
} hist_seen_t;

static int hist_collect(void *ud, mk_str_t key, mk_str_t value)
{
    hist_seen_t *h = ud;
    if (h->n < 64) {
        char t[32];
        snprintf(t, sizeof t, "%.*s", (int)key.len, key.base);
        h->ts[h->n] = strtoll(t, NULL, 10);
        snprintf(h->rec[h->n], sizeof h->rec[0], "%.*s", (int)value.len, value.base);
    }
    h->n++;
    return 0;
}

static void test_history(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    int64_t now = wall_ms();
    MK_CHECK_INT(mk_store_history_append(s, S("h"), now - 30, S("first"), &err), 0);
    MK_CHECK_INT(mk_store_history_append(s, S("h"), now - 10, S("third:{\"a\":1}"), &err), 0);
    MK_CHECK_INT(mk_store_history_append(s, S("h"), now - 20, S("second"), &err), 0);
    /* The same record at the same time twice is kept twice. */
    MK_CHECK_INT(mk_store_history_append(s, S("h"), now - 5, S("dup"), &err), 0);
    MK_CHECK_INT(mk_store_history_append(s, S("h"), now - 5, S("dup"), &err), 0);
    mk_store_history_rec_t many[] = {
        {S("h"), now - 1, S("batch-h")},
        {S("other"), now - 2, S("batch-other")},
        {S("h"), now - 1, S("batch-h2")},
    };
    MK_CHECK_INT(mk_store_history_append_many(s, many, 3, &err), 0);

    hist_seen_t all = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("h"), 0, hist_collect, &all, &err), 0);
    MK_CHECK_INT(all.n, 7);
    MK_CHECK_STR(all.rec[0], "first");
    MK_CHECK_STR(all.rec[1], "second");
    MK_CHECK_STR(all.rec[2], "third:{\"a\":1}");
    MK_CHECK_STR(all.rec[3], "dup");
    MK_CHECK_STR(all.rec[4], "dup");
    MK_CHECK_INT(all.ts[0], now - 30);
    bool ordered = true;
    for (int i = 1; i < all.n; i++)
        ordered = ordered && all.ts[i - 1] <= all.ts[i];
    MK_CHECK(ordered);

    hist_seen_t since = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("h"), now - 20, hist_collect, &since, &err), 0);
    MK_CHECK_INT(since.n, 6);
    MK_CHECK_STR(since.rec[0], "second");

    hist_seen_t other = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("other"), 0, hist_collect, &other, &err), 0);
    MK_CHECK_INT(other.n, 1);
    MK_CHECK_STR(other.rec[0], "batch-other");

    MK_CHECK_INT(mk_store_history_clear(s, S("h"), &err), 0);
    hist_seen_t cleared = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("h"), 0, hist_collect, &cleared, &err), 0);
    MK_CHECK_INT(cleared.n, 0);
    hist_seen_t kept = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("other"), 0, hist_collect, &kept, &err), 0);
    MK_CHECK_INT(kept.n, 1);
    mk_store_free(s);
}

/* More records than one Redis page, many with the same time. */
static void test_history_paging(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    int64_t now = wall_ms();
    enum { N = 2500 };
    static mk_store_history_rec_t recs[N];
    static char texts[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "r%d", i);
        recs[i] = (mk_store_history_rec_t){S("pg"), now - 100 + i / 700, mk_str_of(texts[i])};
    }
    MK_CHECK_INT(mk_store_history_append_many(s, recs, N, &err), 0);
    hist_seen_t seen = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("pg"), 0, hist_collect, &seen, &err), 0);
    MK_CHECK_INT(seen.n, N);
    mk_store_free(s);
}

static void test_history_expiry(void)
{
    mk_store_t *s = open_with(200, 0, 0);
    mk_err_t err = {0};
    int64_t now = wall_ms();
    MK_CHECK_INT(mk_store_history_append(s, S("e"), now - 500, S("too-old"), &err), 0);
    MK_CHECK_INT(mk_store_history_append(s, S("e"), now, S("fresh"), &err), 0);
    hist_seen_t a = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("e"), 0, hist_collect, &a, &err), 0);
    MK_CHECK_INT(a.n, 1);
    MK_CHECK_STR(a.rec[0], "fresh");
    sleep_ms(300);
    hist_seen_t b = {0};
    MK_CHECK_INT(mk_store_history_each(s, S("e"), 0, hist_collect, &b, &err), 0);
    MK_CHECK_INT(b.n, 0);
    mk_store_free(s);
}

/* Redis only: the server goes away and comes back on the same port. */
static void test_redis_outage(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    MK_CHECK_INT(mk_store_set(s, S("o"), S("t"), S("k"), S("v"), 0, &err), 0);
    MK_CHECK_INT(mk_testing_redis_stop(&srv), 0);
    for (int i = 0; i < 10; i++) {
        double t0 = now_ms();
        MK_CHECK_INT(mk_store_set(s, S("o"), S("t"), S("k"), S("v"), 0, &err), MK_EUNAVAIL);
        MK_CHECK(now_ms() - t0 < 50);
        mk_buf_t b;
        mk_buf_init(&b, 0);
        MK_CHECK_INT(mk_store_get(s, S("o"), S("t"), S("k"), &b, &err), MK_EUNAVAIL);
        mk_buf_free(&b);
        MK_CHECK_INT(mk_store_incr(s, S("o"), S("t"), S("n"), 1, NULL, &err), MK_EUNAVAIL);
        MK_CHECK_INT(mk_store_history_append(s, S("o"), wall_ms(), S("r"), &err), MK_EUNAVAIL);
        MK_CHECK_INT(mk_store_ping(s, NULL, &err), MK_EUNAVAIL);
    }
    char want[40];
    snprintf(want, sizeof want, "127.0.0.1:%d", srv.port);
    MK_CHECK(strstr(err.msg, want) != NULL);
    MK_CHECK_INT(mk_testing_redis_restart(&srv), 0);
    int rc = -1;
    double t0 = now_ms();
    while (rc != 0 && now_ms() - t0 < 2000) {
        rc = mk_store_set(s, S("o"), S("t"), S("k"), S("back"), 0, &err);
        if (rc != 0)
            sleep_ms(10);
    }
    MK_CHECK_INT(rc, 0);
    int64_t v = 0;
    MK_CHECK_INT(mk_store_incr(s, S("o"), S("t"), S("n"), 1, &v, &err), 0);
    MK_CHECK_INT(v, 1);
    mk_store_free(s);
}

/* Not a check: per-operation latency for the report. */
static void test_latency(void)
{
    mk_store_t *s = open_default();
    mk_err_t err = {0};
    const int n = backend == MK_STORE_MEMORY ? 200000 : 5000;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    char key[32];
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%d", i % 1000);
        mk_store_set(s, S("lat"), S("global"), mk_str_of(key), S("{\"v\":12345}"), 0, &err);
    }
    double t1 = now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%d", i % 1000);
        mk_buf_reset(&b);
        mk_store_get(s, S("lat"), S("global"), mk_str_of(key), &b, &err);
    }
    double t2 = now_ms();
    for (int i = 0; i < n; i++)
        mk_store_incr(s, S("lat"), S("global"), S("ctr"), 1, NULL, &err);
    double t3 = now_ms();
    mk_buf_free(&b);
    fprintf(stderr, "     %s: set %.2f us/op, get %.2f us/op, incr %.2f us/op (%d ops each)\n",
            mk_store_backend(s), (t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n, (t3 - t2) * 1e3 / n, n);
    int rc;
    char want[16];
    snprintf(want, sizeof want, "%d", n);
    MK_CHECK_STR(get_str(s, S("lat"), S("global"), S("ctr"), &rc), want);
    mk_store_free(s);
}

static void run_on(mk_store_type_t type, const char *name, void (*fn)(void))
{
    char full[96];
    backend = type;
    snprintf(full, sizeof full, "%s[%s]", name, type == MK_STORE_MEMORY ? "memory" : "redis");
    mk_testing_run(full, fn);
}

#define RUN_BOTH(fn)                                                                               \
    do {                                                                                           \
        run_on(MK_STORE_MEMORY, #fn, fn);                                                          \
        run_on(MK_STORE_REDIS, #fn, fn);                                                           \
    } while (0)

typedef struct submit_state {
    int calls;
    int code; /* of the error passed to done, 0 when none */
} submit_state_t;

static void on_submitted(void *ud, const mk_err_t *err)
{
    submit_state_t *st = ud;
    st->calls++;
    st->code = err != NULL ? err->code : 0;
}

static void run_batch(mk_httpd_loop_t *loop, submit_state_t *st)
{
    for (int i = 0; i < 300 && st->calls == 0; i++)
        mk_httpd_loop_run(loop, 10);
}

/* Asynchronous batches on an event loop: ops answered in order, reads see the writes before
 * them, the seeded increment, the synchronous calls see the same records, a non-integer
 * increment, bad input refused up front (done never runs). */
static void test_submit(void)
{
    mk_store_t *s = open_default();
    MK_CHECK(mk_store_is_async(s));
    mk_httpd_loop_t *loop = mk_httpd_loop_new();
    mk_err_t err = {0};
    mk_str_t ns = MK_STR_LIT("team"), t = MK_STR_LIT("global");
    mk_store_op_t ops[6] = {
        {.kind = MK_STORE_OP_SET, .table = t, .key = MK_STR_LIT("a"), .value = MK_STR_LIT("\"x\"")},
        {.kind = MK_STORE_OP_GET, .table = t, .key = MK_STR_LIT("a")},
        {.kind = MK_STORE_OP_GET, .table = t, .key = MK_STR_LIT("none")},
        {.kind = MK_STORE_OP_INCR, .table = t, .key = MK_STR_LIT("n"), .by = 2},
        {.kind = MK_STORE_OP_INCR,
         .table = t,
         .key = MK_STR_LIT("m"),
         .by = 1,
         .value = MK_STR_LIT("10")},
        {.kind = MK_STORE_OP_INCR,
         .table = t,
         .key = MK_STR_LIT("m"),
         .by = 1,
         .value = MK_STR_LIT("10")},
    };
    for (int i = 0; i < 6; i++)
        mk_buf_init(&ops[i].out, 1024);
    submit_state_t st = {0};
    MK_CHECK_INT(mk_store_submit(s, loop, ns, ops, 6, on_submitted, &st, &err), 0);
    MK_CHECK_INT(st.calls, 0);
    run_batch(loop, &st);
    MK_CHECK_INT(st.calls, 1);
    MK_CHECK_INT(st.code, 0);
    MK_CHECK_INT(ops[1].rc, 0);
    MK_CHECK(ops[1].out.len == 3 && memcmp(ops[1].out.data, "\"x\"", 3) == 0);
    MK_CHECK_INT(ops[2].rc, MK_ENOTFOUND);
    MK_CHECK_INT(ops[3].result, 2);
    MK_CHECK_INT(ops[4].result, 11); /* the seed counts once */
    MK_CHECK_INT(ops[5].result, 12);
    mk_buf_t v;
    mk_buf_init(&v, 64);
    MK_CHECK_INT(mk_store_get(s, ns, t, MK_STR_LIT("m"), &v, &err), 0);
    MK_CHECK(v.len == 2 && memcmp(v.data, "12", 2) == 0);
    mk_buf_free(&v);

    /* An increment of a string fails the batch with MK_EINVAL; the other ops still answer. */
    mk_store_op_t bad[2] = {
        {.kind = MK_STORE_OP_INCR, .table = t, .key = MK_STR_LIT("a"), .by = 1},
        {.kind = MK_STORE_OP_INCR, .table = t, .key = MK_STR_LIT("n"), .by = 1},
    };
    st = (submit_state_t){0};
    MK_CHECK_INT(mk_store_submit(s, loop, ns, bad, 2, on_submitted, &st, &err), 0);
    run_batch(loop, &st);
    MK_CHECK_INT(st.code, MK_EINVAL);
    MK_CHECK_INT(bad[0].rc, MK_EINVAL);
    MK_CHECK_INT(bad[1].rc, 0);
    MK_CHECK_INT(bad[1].result, 3);

    /* A bad namespace refuses the whole batch at once. */
    st = (submit_state_t){0};
    MK_CHECK_INT(mk_store_submit(s, loop, MK_STR_LIT("bad ns"), bad, 2, on_submitted, &st, &err),
                 MK_EINVAL);
    mk_httpd_loop_run(loop, 10);
    MK_CHECK_INT(st.calls, 0);
    for (int i = 0; i < 6; i++)
        mk_buf_free(&ops[i].out);
    mk_httpd_loop_free(loop); /* closes the store's connection for this loop */
    mk_store_free(s);
}

int main(void)
{
    if (mk_testing_redis_start(&srv) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    RUN_BOTH(test_basic);
    RUN_BOTH(test_glob_chars);
    RUN_BOTH(test_ttl);
    run_on(MK_STORE_MEMORY, "test_sweep", test_sweep);
    RUN_BOTH(test_isolation);
    RUN_BOTH(test_incr);
    RUN_BOTH(test_incr_concurrent);
    RUN_BOTH(test_validation);
    RUN_BOTH(test_history);
    RUN_BOTH(test_history_paging);
    RUN_BOTH(test_history_expiry);
    run_on(MK_STORE_REDIS, "test_submit", test_submit);
    run_on(MK_STORE_REDIS, "test_redis_outage", test_redis_outage);
    RUN_BOTH(test_latency);
    mk_testing_redis_free(&srv);
    return mk_testing_done();
}
