/* Histogram tests: the relative error bound against exact sorted samples, exact merge, the
 * serialised forms round-trip and reject damage. */
#include "hdr/hdr.h"
#include "testing/testing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N 200000

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Log-uniform samples from 1 to ~10^9 (1 µs .. 17 min). */
static uint64_t sample(void)
{
    double e = (double)(rnd() % 1000000) / 1000000.0 * 30.0;
    return (uint64_t)pow(2.0, e);
}

static void test_bucket_arithmetic(void)
{
    MK_CHECK_INT(mk_hdr_bucket_of(0), 0);
    MK_CHECK_INT(mk_hdr_bucket_of(127), 127);
    MK_CHECK_INT(mk_hdr_bucket_of(128), 128);
    MK_CHECK(mk_hdr_bucket_of(UINT64_MAX) == MK_HDR_BUCKETS - 1);
    int bad = 0;
    for (int b = 0; b < MK_HDR_BUCKETS; b++) {
        uint64_t lo = mk_hdr_bucket_low(b), hi = mk_hdr_bucket_high(b);
        if (mk_hdr_bucket_of(lo) != b || mk_hdr_bucket_of(hi) != b)
            bad++;
        if (b + 1 < MK_HDR_BUCKETS && mk_hdr_bucket_low(b + 1) != hi + 1)
            bad++;
        /* half a bucket is at most 1/256 of its low end: the promised bound */
        if (lo >= 128 && (double)(hi - lo) / 2.0 > (double)lo / 256.0 + 0.5)
            bad++;
    }
    MK_CHECK_INT(bad, 0);
}

static void test_error_bound(void)
{
    uint64_t *v = malloc(N * sizeof *v);
    mk_hdr_t *h = mk_hdr_new();
    uint64_t sum = 0;
    for (int i = 0; i < N; i++) {
        v[i] = sample();
        sum += v[i];
        mk_hdr_record(h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp_u64);
    MK_CHECK_INT(mk_hdr_count(h), N);
    MK_CHECK_INT(mk_hdr_min(h), v[0]);
    MK_CHECK_INT(mk_hdr_max(h), v[N - 1]);
    MK_CHECK(fabs(mk_hdr_mean(h) - (double)sum / N) < 1e-6 * ((double)sum / N));
    double worst = 0;
    const double qs[] = {1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        size_t rank = (size_t)ceil(qs[i] / 100.0 * N);
        double exact = (double)v[rank - 1], got = (double)mk_hdr_percentile(h, qs[i]);
        double rel = fabs(got - exact) / exact;
        if (rel > worst)
            worst = rel;
    }
    printf("worst relative percentile error: %.5f\n", worst);
    MK_CHECK(worst <= 0.01);
    MK_CHECK(worst <= 1.0 / 256 + 1e-9);
    MK_CHECK_INT(mk_hdr_percentile(h, 100), v[N - 1]);
    MK_CHECK_INT(mk_hdr_percentile(h, 0), v[0]);
    free(v);
    mk_hdr_free(h);
}

static int same(const mk_hdr_t *a, const mk_hdr_t *b)
{
    if (mk_hdr_count(a) != mk_hdr_count(b) || mk_hdr_min(a) != mk_hdr_min(b) ||
        mk_hdr_max(a) != mk_hdr_max(b) || mk_hdr_mean(a) != mk_hdr_mean(b))
        return 0;
    for (double q = 0; q <= 100; q += 0.5)
        if (mk_hdr_percentile(a, q) != mk_hdr_percentile(b, q))
            return 0;
    return 1;
}

static void test_merge_is_exact(void)
{
    mk_hdr_t *all = mk_hdr_new(), *parts[3] = {mk_hdr_new(), mk_hdr_new(), mk_hdr_new()};
    for (int i = 0; i < 30000; i++) {
        uint64_t x = sample();
        mk_hdr_record(all, x);
        mk_hdr_record(parts[rnd() % 3], x);
    }
    mk_hdr_t *m = mk_hdr_new();
    for (int i = 0; i < 3; i++)
        mk_hdr_merge(m, parts[i]);
    MK_CHECK(same(m, all));
    mk_hdr_record(m, 5);
    MK_CHECK(!same(m, all)); /* the comparison can fail */
    mk_hdr_free(m);
    mk_hdr_free(all);
    for (int i = 0; i < 3; i++)
        mk_hdr_free(parts[i]);
}

static void test_encode_roundtrip(void)
{
    mk_hdr_t *h = mk_hdr_new(), *back = mk_hdr_new(), *jb = mk_hdr_new();
    for (int i = 0; i < 5000; i++)
        mk_hdr_record(h, sample());
    mk_hdr_record_n(h, 0, 3);
    mk_buf_t buf;
    mk_buf_init(&buf, 0);
    MK_CHECK_INT(mk_hdr_encode(h, &buf), 0);
    mk_err_t err;
    MK_CHECK_INT(mk_hdr_decode_add(back, buf.data, buf.len, &err), 0);
    MK_CHECK(same(h, back));
    printf("encoded 5003 samples in %zu bytes\n", buf.len);
    /* adding twice doubles every count */
    MK_CHECK_INT(mk_hdr_decode_add(back, buf.data, buf.len, &err), 0);
    MK_CHECK_INT(mk_hdr_count(back), 2 * mk_hdr_count(h));
    /* damage: truncated, wrong version, a count that disagrees */
    MK_CHECK_INT(mk_hdr_decode_add(back, buf.data, buf.len - 1, &err), MK_EINVAL);
    buf.data[0] = 9;
    MK_CHECK_INT(mk_hdr_decode_add(back, buf.data, buf.len, &err), MK_EINVAL);
    MK_CHECK_INT(mk_hdr_count(back), 2 * mk_hdr_count(h));

    json_t *j = mk_hdr_to_json(h);
    MK_CHECK_INT(mk_hdr_from_json_add(jb, j, &err), 0);
    MK_CHECK(same(h, jb));
    json_object_set_new(j, "count", json_integer(1));
    MK_CHECK_INT(mk_hdr_from_json_add(jb, j, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "add up") != NULL);
    json_decref(j);
    mk_buf_free(&buf);
    mk_hdr_free(h);
    mk_hdr_free(back);
    mk_hdr_free(jb);
}

int main(void)
{
    MK_RUN(test_bucket_arithmetic);
    MK_RUN(test_error_bound);
    MK_RUN(test_merge_is_exact);
    MK_RUN(test_encode_roundtrip);
    return mk_testing_done();
}
