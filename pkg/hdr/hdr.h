/* High-dynamic-range histogram of non-negative integers (latencies in microseconds): log-linear
 * buckets, 128 linear sub-buckets per power of two, so any recorded value is known to within
 * 1/256 (0.4 %) of itself. Counts only, so two histograms merge exactly; deltas serialise to a
 * compact binary form or JSON so runners can stream per-second snapshots. */
#ifndef MK_HDR_H
#define MK_HDR_H

#include "err/err.h"
#include "str/str.h"

#include <jansson.h>
#include <stdint.h>

typedef struct mk_hdr mk_hdr_t;

/* An empty histogram (about 60 KiB); NULL when out of memory. Caller frees with mk_hdr_free(). */
mk_hdr_t *mk_hdr_new(void);
void mk_hdr_free(mk_hdr_t *h);
void mk_hdr_reset(mk_hdr_t *h);

void mk_hdr_record(mk_hdr_t *h, uint64_t value);
void mk_hdr_record_n(mk_hdr_t *h, uint64_t value, uint64_t n);
/* Adds every count of src to dst: the result is what recording both streams into one would give. */
void mk_hdr_merge(mk_hdr_t *dst, const mk_hdr_t *src);

uint64_t mk_hdr_count(const mk_hdr_t *h);
uint64_t mk_hdr_min(const mk_hdr_t *h); /* exact; 0 when empty */
uint64_t mk_hdr_max(const mk_hdr_t *h); /* exact; 0 when empty */
double mk_hdr_mean(const mk_hdr_t *h);  /* exact (from the exact sum); 0 when empty */
/* The value at percentile q (0..100): the midpoint of the bucket holding the ceil(q/100*count)-th
 * smallest value, clamped to [min, max]; within 0.4 % of a true sample at that rank. 0 when empty.
 */
uint64_t mk_hdr_percentile(const mk_hdr_t *h, double q);

/* Number of buckets and bucket arithmetic, exposed for tests and plots. */
#define MK_HDR_BUCKETS (128 + 57 * 128)
int mk_hdr_bucket_of(uint64_t value);
uint64_t mk_hdr_bucket_low(int bucket);  /* smallest value in bucket */
uint64_t mk_hdr_bucket_high(int bucket); /* largest value in bucket */
/* Calls fn for every non-empty bucket in value order; stops early when fn returns non-zero. */
void mk_hdr_foreach(const mk_hdr_t *h, int (*fn)(int bucket, uint64_t count, void *arg), void *arg);

/* Appends the histogram to out in a compact binary form (version byte, then varints: count, min,
 * max, sum, then (bucket gap, count) pairs of the non-empty buckets). Returns 0 or MK_ETOOBIG /
 * MK_ENOMEM from out. */
int mk_hdr_encode(const mk_hdr_t *h, mk_buf_t *out);
/* Adds (merges) an encoded histogram into h. MK_EINVAL with a message on malformed input; h is
 * unchanged then. */
int mk_hdr_decode_add(mk_hdr_t *h, const void *data, size_t len, mk_err_t *err);
/* The same as JSON: {"count", "min", "max", "sum", "b": [bucket, count, bucket, count, ...]}.
 * A new reference; NULL when out of memory. */
json_t *mk_hdr_to_json(const mk_hdr_t *h);
/* Adds a histogram from mk_hdr_to_json()'s shape into h (borrowed j). MK_EINVAL on bad shape. */
int mk_hdr_from_json_add(mk_hdr_t *h, const json_t *j, mk_err_t *err);

#endif
