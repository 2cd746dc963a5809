/* Tests of the TinyLFU cache through cache.h: basic operations, the byte bound, scan resistance
 * of a hot set, statistics, thread safety under ASan and refusal of oversized values. */
#include "cache/cache.h"
#include "testing/testing.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mk_str_t key_of(char *buf, size_t cap, const char *prefix, int i)
{
    int n = snprintf(buf, cap, "%s-%d", prefix, i);
    return (mk_str_t){buf, (size_t)n};
}

static void test_basic(void)
{
    mk_cache_t *c = mk_cache_new(1 << 20);
    MK_CHECK(c != NULL);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    int64_t meta = -1;

    MK_CHECK(!mk_cache_get(c, MK_STR_LIT("a"), &b, &meta));
    MK_CHECK_INT(meta, -1);
    MK_CHECK(mk_cache_set(c, MK_STR_LIT("a"), MK_STR_LIT("first"), 7));
    MK_CHECK(mk_cache_get(c, MK_STR_LIT("a"), &b, &meta));
    MK_CHECK_STR(b.data, "first");
    MK_CHECK_INT(meta, 7);

    /* Replace: new value and meta; the buffer is appended to, not overwritten. */
    MK_CHECK(mk_cache_set(c, MK_STR_LIT("a"), MK_STR_LIT("second value"), 9));
    MK_CHECK(mk_cache_get(c, MK_STR_LIT("a"), &b, NULL));
    MK_CHECK_STR(b.data, "firstsecond value");
    mk_buf_reset(&b);
    MK_CHECK(mk_cache_get(c, MK_STR_LIT("a"), &b, &meta));
    MK_CHECK_INT(meta, 9);

    /* Binary keys and values, the empty value. */
    mk_str_t bk = {"k\0x", 3}, bv = {"v\0\1", 3};
    MK_CHECK(mk_cache_set(c, bk, bv, 1));
    MK_CHECK(mk_cache_set(c, MK_STR_LIT("empty"), MK_STR_LIT(""), 2));
    mk_buf_reset(&b);
    MK_CHECK(mk_cache_get(c, bk, &b, NULL));
    MK_CHECK(b.len == 3 && memcmp(b.data, "v\0\1", 3) == 0);
    MK_CHECK(!mk_cache_get(c, (mk_str_t){"k\0y", 3}, &b, NULL));
    mk_buf_reset(&b);
    MK_CHECK(mk_cache_get(c, MK_STR_LIT("empty"), &b, &meta));
    MK_CHECK_INT(b.len, 0);
    MK_CHECK_INT(meta, 2);

    mk_cache_delete(c, MK_STR_LIT("a"));
    mk_cache_delete(c, MK_STR_LIT("never-there"));
    MK_CHECK(!mk_cache_get(c, MK_STR_LIT("a"), &b, NULL));

    mk_cache_stats_t st;
    mk_cache_stats(c, &st);
    MK_CHECK_INT(st.entries, 2);
    mk_cache_clear(c);
    mk_cache_stats(c, &st);
    MK_CHECK_INT(st.entries, 0);
    MK_CHECK_INT(st.bytes, 0);
    MK_CHECK(!mk_cache_get(c, bk, &b, NULL));
    mk_buf_free(&b);
    mk_cache_free(c);
    mk_cache_free(NULL);
}

static void test_versions(void)
{
    mk_cache_t *c = mk_cache_new(1 << 20);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    int64_t meta = 0;
    MK_CHECK(mk_cache_set_if_newer(c, MK_STR_LIT("m"), MK_STR_LIT("v5"), 5));
    MK_CHECK(!mk_cache_set_if_newer(c, MK_STR_LIT("m"), MK_STR_LIT("v4"), 4));
    MK_CHECK(mk_cache_get(c, MK_STR_LIT("m"), &b, &meta));
    MK_CHECK_STR(b.data, "v5");
    MK_CHECK(mk_cache_set_if_newer(c, MK_STR_LIT("m"), MK_STR_LIT("v6"), 6));
    mk_buf_reset(&b);
    MK_CHECK(mk_cache_get(c, MK_STR_LIT("m"), &b, &meta));
    MK_CHECK_STR(b.data, "v6");
    MK_CHECK_INT(meta, 6);

    MK_CHECK(!mk_cache_delete_if_older(c, MK_STR_LIT("m"), 6)); /* same version stays */
    MK_CHECK(!mk_cache_delete_if_older(c, MK_STR_LIT("m"), 3));
    MK_CHECK(mk_cache_get(c, MK_STR_LIT("m"), &b, NULL));
    MK_CHECK(mk_cache_delete_if_older(c, MK_STR_LIT("m"), 7));
    MK_CHECK(!mk_cache_get(c, MK_STR_LIT("m"), &b, NULL));
    MK_CHECK(!mk_cache_delete_if_older(c, MK_STR_LIT("absent"), 7));
    mk_buf_free(&b);
    mk_cache_free(c);
}

/* Random sizes, random keys, reads that make keys frequent enough to be admitted: the byte
 * count never passes the budget. */
static void test_bounded(void)
{
    const size_t max = 64 * 1024;
    mk_cache_t *c = mk_cache_new(max);
    char *val = malloc(4000);
    memset(val, 'x', 4000);
    char kb[32];
    mk_buf_t b;
    mk_buf_init(&b, 0);
    unsigned seed = 1;
    bool within = true;
    uint64_t admitted = 0;
    for (int i = 0; i < 20000; i++) {
        int k = rand_r(&seed) % 3000;
        mk_str_t key = key_of(kb, sizeof kb, "k", k);
        mk_buf_reset(&b);
        if (!mk_cache_get(c, key, &b, NULL)) {
            size_t len = (size_t)(rand_r(&seed) % 3000);
            if (mk_cache_set(c, key, (mk_str_t){val, len}, i))
                admitted++;
        }
        mk_cache_stats_t st;
        mk_cache_stats(c, &st);
        if (st.bytes > max)
            within = false;
    }
    mk_cache_stats_t st;
    mk_cache_stats(c, &st);
    MK_CHECK(within);
    MK_CHECK(st.bytes <= max);
    MK_CHECK(st.bytes > max / 2); /* and it is actually used */
    MK_CHECK(admitted > 100);
    MK_CHECK(st.evicted > 0);
    printf("  bounded: %llu entries, %llu bytes of %zu, %llu evicted, %llu rejected\n",
           (unsigned long long)st.entries, (unsigned long long)st.bytes, max,
           (unsigned long long)st.evicted, (unsigned long long)st.rejected);
    mk_buf_free(&b);
    free(val);
    mk_cache_free(c);
}

/* Read-through as the composite does it: get, and set on a miss. Returns whether it hit. */
static bool read_through(mk_cache_t *c, mk_str_t key, mk_str_t value, mk_buf_t *b)
{
    mk_buf_reset(b);
    if (mk_cache_get(c, key, b, NULL))
        return true;
    mk_cache_set(c, key, value, 0);
    return false;
}

static void test_scan_resistance(void)
{
    const int hot = 1000, cold = 10 * hot;
    mk_cache_t *c = mk_cache_new(1 << 20); /* room for about 5,500 of these entries */
    char val[100];
    memset(val, 'v', sizeof val);
    mk_str_t value = {val, sizeof val};
    char kb[32];
    mk_buf_t b;
    mk_buf_init(&b, 0);

    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < hot; i++)
            read_through(c, key_of(kb, sizeof kb, "hot", i), value, &b);
    }
    int hits = 0;
    for (int i = 0; i < hot; i++)
        hits += read_through(c, key_of(kb, sizeof kb, "hot", i), value, &b);
    MK_CHECK_INT(hits, hot);

    /* The scan: 10x as many keys as the hot set, more than the cache holds, each read once
     * (a miss, then set) and half of them also set a second time without a read. */
    mk_cache_stats_t before, after;
    mk_cache_stats(c, &before);
    for (int i = 0; i < cold; i++) {
        mk_str_t key = key_of(kb, sizeof kb, "cold", i);
        read_through(c, key, value, &b);
        if (i % 2 == 0)
            mk_cache_set(c, key, value, 1);
    }
    mk_cache_stats(c, &after);
    MK_CHECK(after.rejected > before.rejected);

    hits = 0;
    for (int i = 0; i < hot; i++) {
        mk_buf_reset(&b);
        hits += mk_cache_get(c, key_of(kb, sizeof kb, "hot", i), &b, NULL);
    }
    printf("  scan: hot hit ratio after the scan %.3f; %llu entries, %llu rejected, %llu "
           "evicted\n",
           (double)hits / hot, (unsigned long long)after.entries,
           (unsigned long long)after.rejected, (unsigned long long)after.evicted);
    MK_CHECK(hits > hot * 9 / 10);
    /* The cold keys did get in where there was room: the cache was not simply frozen. */
    MK_CHECK(after.entries > (uint64_t)hot * 3);
    mk_buf_free(&b);
    mk_cache_free(c);
}

static void test_stats(void)
{
    mk_cache_t *c = mk_cache_new(1 << 20);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_cache_set(c, MK_STR_LIT("k1"), MK_STR_LIT("12345"), 0);
    mk_cache_set(c, MK_STR_LIT("k2"), MK_STR_LIT("1234567890"), 0);
    mk_cache_get(c, MK_STR_LIT("k1"), &b, NULL);
    mk_cache_get(c, MK_STR_LIT("k1"), &b, NULL);
    mk_cache_get(c, MK_STR_LIT("k2"), &b, NULL);
    mk_cache_get(c, MK_STR_LIT("k3"), &b, NULL);
    mk_cache_stats_t st;
    mk_cache_stats(c, &st);
    MK_CHECK_INT(st.hits, 3);
    MK_CHECK_INT(st.misses, 1);
    MK_CHECK_INT(st.entries, 2);
    MK_CHECK_INT(st.rejected, 0);
    MK_CHECK_INT(st.evicted, 0);
    uint64_t two = st.bytes;
    MK_CHECK(two >= 2 + 5 + 2 + 10);
    /* Bytes follow a replacement by exactly the change in value size. */
    mk_cache_set(c, MK_STR_LIT("k2"), MK_STR_LIT("123"), 0);
    mk_cache_stats(c, &st);
    MK_CHECK_INT(st.bytes, two - 7);
    mk_cache_delete(c, MK_STR_LIT("k1"));
    mk_cache_delete(c, MK_STR_LIT("k2"));
    mk_cache_stats(c, &st);
    MK_CHECK_INT(st.entries, 0);
    MK_CHECK_INT(st.bytes, 0);
    mk_buf_free(&b);
    mk_cache_free(c);
}

static void test_oversized(void)
{
    const size_t max = 16 * 1024;
    mk_cache_t *c = mk_cache_new(max);
    char *big = calloc(1, 2 * max);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    MK_CHECK(!mk_cache_set(c, MK_STR_LIT("big"), (mk_str_t){big, 2 * max}, 0));
    MK_CHECK(!mk_cache_get(c, MK_STR_LIT("big"), &b, NULL));
    /* Replacing a cached value with one that cannot fit drops the old one. */
    MK_CHECK(mk_cache_set(c, MK_STR_LIT("k"), MK_STR_LIT("small"), 1));
    MK_CHECK(!mk_cache_set(c, MK_STR_LIT("k"), (mk_str_t){big, 2 * max}, 2));
    MK_CHECK(!mk_cache_get(c, MK_STR_LIT("k"), &b, NULL));
    mk_cache_stats_t st;
    mk_cache_stats(c, &st);
    MK_CHECK_INT(st.rejected, 2);
    MK_CHECK_INT(st.entries, 0);
    MK_CHECK_INT(st.bytes, 0);

    mk_cache_t *none = mk_cache_new(0);
    MK_CHECK(!mk_cache_set(none, MK_STR_LIT("k"), MK_STR_LIT("v"), 0));
    mk_cache_free(none);
    mk_buf_free(&b);
    free(big);
    mk_cache_free(c);
}

typedef struct worker {
    mk_cache_t *c;
    unsigned seed;
    uint64_t gets;
    int bad;
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    char kb[32], val[600];
    mk_buf_t b;
    mk_buf_init(&b, 0);
    for (int i = 0; i < 40000; i++) {
        int k = rand_r(&w->seed) % 2000;
        mk_str_t key = key_of(kb, sizeof kb, "key", k);
        int op = rand_r(&w->seed) % 10;
        if (op < 6) {
            mk_buf_reset(&b);
            int64_t meta;
            w->gets++;
            /* Values are the key repeated, so a torn or mixed-up value shows. */
            if (mk_cache_get(w->c, key, &b, &meta) &&
                (b.len != (size_t)meta * key.len ||
                 (b.len > 0 && memcmp(b.data, key.base, key.len) != 0)))
                w->bad++;
        } else if (op < 9) {
            int reps = rand_r(&w->seed) % (int)(sizeof val / key.len);
            for (int j = 0; j < reps; j++)
                memcpy(val + (size_t)j * key.len, key.base, key.len);
            mk_cache_set(w->c, key, (mk_str_t){val, (size_t)reps * key.len}, reps);
        } else {
            mk_cache_delete(w->c, key);
        }
    }
    mk_buf_free(&b);
    return NULL;
}

static void test_concurrent(void)
{
    const size_t max = 256 * 1024;
    mk_cache_t *c = mk_cache_new(max);
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){.c = c, .seed = (unsigned)i + 11};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    uint64_t gets = 0;
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        gets += w[i].gets;
        bad += w[i].bad;
    }
    mk_cache_stats_t st;
    mk_cache_stats(c, &st);
    MK_CHECK_INT(bad, 0);
    MK_CHECK_INT(st.hits + st.misses, gets);
    MK_CHECK(st.hits > 0);
    MK_CHECK(st.bytes <= max);
    mk_cache_free(c);
}

int main(void)
{
    MK_RUN(test_basic);
    MK_RUN(test_versions);
    MK_RUN(test_bounded);
    MK_RUN(test_scan_resistance);
    MK_RUN(test_stats);
    MK_RUN(test_oversized);
    MK_RUN(test_concurrent);
    return mk_testing_done();
}
