/* Log-linear histogram: values below 128 have a bucket each; above, every power of two
 * [2^e, 2^(e+1)) is split into 128 equal sub-buckets. */
#include "hdr/hdr.h"

#include <stdlib.h>
#include <string.h>

#define SUB      128
#define SUB_BITS 7

struct mk_hdr {
    uint64_t count, min, max, sum;
    uint64_t b[MK_HDR_BUCKETS];
};

mk_hdr_t *mk_hdr_new(void)
{
    mk_hdr_t *h = calloc(1, sizeof *h);
    return h;
}

void mk_hdr_free(mk_hdr_t *h)
{
    free(h);
}

void mk_hdr_reset(mk_hdr_t *h)
{
    memset(h, 0, sizeof *h);
}

int mk_hdr_bucket_of(uint64_t v)
{
    if (v < SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    int shift = e - SUB_BITS;
    return SUB + shift * SUB + (int)((v >> shift) - SUB);
}

uint64_t mk_hdr_bucket_low(int b)
{
    if (b < SUB)
        return (uint64_t)b;
    int g = (b - SUB) / SUB, s = (b - SUB) % SUB;
    return (uint64_t)(SUB + s) << g;
}

uint64_t mk_hdr_bucket_high(int b)
{
    if (b < SUB)
        return (uint64_t)b;
    int g = (b - SUB) / SUB;
    return mk_hdr_bucket_low(b) + ((UINT64_C(1) << g) - 1);
}

void mk_hdr_record_n(mk_hdr_t *h, uint64_t v, uint64_t n)
{
    if (n == 0)
        return;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count += n;
    h->sum += v * n;
    h->b[mk_hdr_bucket_of(v)] += n;
}

void mk_hdr_record(mk_hdr_t *h, uint64_t v)
{
    mk_hdr_record_n(h, v, 1);
}

void mk_hdr_merge(mk_hdr_t *dst, const mk_hdr_t *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (int i = 0; i < MK_HDR_BUCKETS; i++)
        dst->b[i] += src->b[i];
}

uint64_t mk_hdr_count(const mk_hdr_t *h)
{
    return h->count;
}

uint64_t mk_hdr_min(const mk_hdr_t *h)
{
    return h->min;
}

uint64_t mk_hdr_max(const mk_hdr_t *h)
{
    return h->max;
}

double mk_hdr_mean(const mk_hdr_t *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

uint64_t mk_hdr_percentile(const mk_hdr_t *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q <= 0)
        return h->min;
    if (q >= 100)
        return h->max;
    double r = q / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < MK_HDR_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo = mk_hdr_bucket_low(i), hi = mk_hdr_bucket_high(i);
            uint64_t mid = lo + (hi - lo) / 2;
            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max;
}

void mk_hdr_foreach(const mk_hdr_t *h, int (*fn)(int, uint64_t, void *), void *arg)
{
    for (int i = 0; i < MK_HDR_BUCKETS; i++)
        if (h->b[i] && fn(i, h->b[i], arg))
            return;
}

static int put_varint(mk_buf_t *out, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    return mk_buf_append(out, tmp, n);
}

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

#define HDR_VERSION 1

int mk_hdr_encode(const mk_hdr_t *h, mk_buf_t *out)
{
    size_t start = out->len;
    unsigned char ver = HDR_VERSION;
    int rc = mk_buf_append(out, &ver, 1);
    uint64_t head[4] = {h->count, h->min, h->max, h->sum};
    for (int i = 0; rc == 0 && i < 4; i++)
        rc = put_varint(out, head[i]);
    int prev = -1;
    for (int i = 0; rc == 0 && i < MK_HDR_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        rc = put_varint(out, (uint64_t)(i - prev));
        if (rc == 0)
            rc = put_varint(out, h->b[i]);
        prev = i;
    }
    if (rc != 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* Checks a decoded histogram's summary against its buckets before anything is added. */
static int check_parts(const mk_hdr_t *p, mk_err_t *err)
{
    uint64_t n = 0;
    for (int i = 0; i < MK_HDR_BUCKETS; i++)
        n += p->b[i];
    if (n != p->count)
        return mk_err_set(err, MK_EINVAL, "histogram: bucket counts add up to %llu, not %llu",
                          (unsigned long long)n, (unsigned long long)p->count);
    if (p->count && p->min > p->max)
        return mk_err_set(err, MK_EINVAL, "histogram: min is above max");
    return 0;
}

int mk_hdr_decode_add(mk_hdr_t *h, const void *data, size_t len, mk_err_t *err)
{
    const unsigned char *p = data, *end = p + len;
    int rc = MK_EINVAL;
    mk_hdr_t *tmp = mk_hdr_new();
    if (!tmp)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (len < 1 || p[0] != HDR_VERSION) {
        mk_err_set(err, MK_EINVAL, "histogram: unknown encoding version");
        goto out;
    }
    p++;
    uint64_t *head[4] = {&tmp->count, &tmp->min, &tmp->max, &tmp->sum};
    for (int i = 0; i < 4; i++)
        if (get_varint(&p, end, head[i]) != 0) {
            mk_err_set(err, MK_EINVAL, "histogram: truncated header");
            goto out;
        }
    int64_t idx = -1;
    while (p < end) {
        uint64_t gap, c;
        if (get_varint(&p, end, &gap) != 0 || get_varint(&p, end, &c) != 0 || gap == 0 ||
            gap > MK_HDR_BUCKETS || idx + (int64_t)gap >= MK_HDR_BUCKETS) {
            mk_err_set(err, MK_EINVAL, "histogram: malformed bucket list");
            goto out;
        }
        idx += (int64_t)gap;
        tmp->b[idx] = c;
    }
    rc = check_parts(tmp, err);
    if (rc == 0)
        mk_hdr_merge(h, tmp);
out:
    mk_hdr_free(tmp);
    return rc;
}

json_t *mk_hdr_to_json(const mk_hdr_t *h)
{
    json_t *b = json_array();
    json_t *j =
        json_pack("{s:I,s:I,s:I,s:I,s:o}", "count", (json_int_t)h->count, "min", (json_int_t)h->min,
                  "max", (json_int_t)h->max, "sum", (json_int_t)h->sum, "b", b);
    if (!j)
        return NULL;
    for (int i = 0; i < MK_HDR_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        if (json_array_append_new(b, json_integer(i)) ||
            json_array_append_new(b, json_integer((json_int_t)h->b[i]))) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

static int json_u64(const json_t *j, const char *key, uint64_t *v)
{
    json_t *x = json_object_get(j, key);
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return -1;
    *v = (uint64_t)json_integer_value(x);
    return 0;
}

int mk_hdr_from_json_add(mk_hdr_t *h, const json_t *j, mk_err_t *err)
{
    int rc = MK_EINVAL;
    mk_hdr_t *tmp = mk_hdr_new();
    if (!tmp)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    json_t *b = json_object_get(j, "b");
    if (json_u64(j, "count", &tmp->count) || json_u64(j, "min", &tmp->min) ||
        json_u64(j, "max", &tmp->max) || json_u64(j, "sum", &tmp->sum) || !json_is_array(b) ||
        json_array_size(b) % 2) {
        mk_err_set(err, MK_EINVAL, "histogram: expected {count, min, max, sum, b: [...]}");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(b); i += 2) {
        json_t *k = json_array_get(b, i), *c = json_array_get(b, i + 1);
        if (!json_is_integer(k) || !json_is_integer(c) || json_integer_value(k) < 0 ||
            json_integer_value(k) >= MK_HDR_BUCKETS || json_integer_value(c) < 0) {
            mk_err_set(err, MK_EINVAL, "histogram: bad bucket entry at %zu", i);
            goto out;
        }
        tmp->b[json_integer_value(k)] += (uint64_t)json_integer_value(c);
    }
    rc = check_parts(tmp, err);
    if (rc == 0)
        mk_hdr_merge(h, tmp);
out:
    mk_hdr_free(tmp);
    return rc;
}
