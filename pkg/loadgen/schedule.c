/* Stage arithmetic and open-model arrival times: the rate is piecewise linear, so the number of
 * arrivals by time t is a piecewise quadratic and the time of arrival i is its inverse. */
#include "loadgen/loadgen.h"

#include <math.h>

int64_t mk_loadgen_stages_duration(const mk_loadgen_stage_t *st, size_t n)
{
    int64_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += st[i].duration_ns;
    return d;
}

double mk_loadgen_stages_value(const mk_loadgen_stage_t *st, size_t n, double start, int64_t t)
{
    double from = start;
    for (size_t i = 0; i < n; i++) {
        if (t < st[i].duration_ns) {
            double f = st[i].duration_ns > 0 ? (double)t / (double)st[i].duration_ns : 1.0;
            return from + (st[i].target - from) * f;
        }
        t -= st[i].duration_ns;
        from = st[i].target;
    }
    return from;
}

int mk_loadgen_sched_init(mk_loadgen_sched_t *s, double start_rate, const mk_loadgen_stage_t *st,
                          size_t n, mk_err_t *err)
{
    if (n == 0 || n > MK_LOADGEN_MAX_STAGES)
        return mk_err_set(err, MK_EINVAL, "stages: between 1 and %d expected",
                          MK_LOADGEN_MAX_STAGES);
    if (!(start_rate >= 0) || !isfinite(start_rate))
        return mk_err_set(err, MK_EINVAL, "rate: must be a non-negative number");
    s->n = n;
    s->start_rate = start_rate;
    s->cum[0] = 0;
    s->t0[0] = 0;
    double from = start_rate;
    for (size_t i = 0; i < n; i++) {
        if (st[i].duration_ns < 0 || !(st[i].target >= 0) || !isfinite(st[i].target))
            return mk_err_set(err, MK_EINVAL, "stages[%zu]: negative duration or target", i);
        s->st[i] = st[i];
        double d = (double)st[i].duration_ns / 1e9;
        s->cum[i + 1] = s->cum[i] + (from + st[i].target) / 2.0 * d;
        s->t0[i + 1] = s->t0[i] + st[i].duration_ns;
        from = st[i].target;
    }
    return 0;
}

static double stage_from(const mk_loadgen_sched_t *s, size_t k)
{
    return k == 0 ? s->start_rate : s->st[k - 1].target;
}

int64_t mk_loadgen_sched_at(const mk_loadgen_sched_t *s, uint64_t i)
{
    double want = (double)i;
    if (want >= s->cum[s->n] - 1e-9)
        return -1;
    size_t k = 0;
    while (k + 1 < s->n && s->cum[k + 1] <= want)
        k++;
    double r0 = stage_from(s, k), r1 = s->st[k].target;
    double d = (double)s->st[k].duration_ns / 1e9;
    double m = want - s->cum[k]; /* arrivals into this stage */
    double a = d > 0 ? (r1 - r0) / (2.0 * d) : 0;
    /* r0 t + a t^2 = m, in the form that stays exact as a -> 0 */
    double disc = r0 * r0 + 4.0 * a * m;
    double t = m == 0 ? 0 : 2.0 * m / (r0 + sqrt(disc > 0 ? disc : 0));
    if (t > d)
        t = d;
    return s->t0[k] + (int64_t)llround(t * 1e9);
}

uint64_t mk_loadgen_sched_due(const mk_loadgen_sched_t *s, int64_t t)
{
    if (t < 0)
        return 0;
    double total = s->cum[s->n];
    double got;
    if (t >= s->t0[s->n]) {
        got = total;
    } else {
        size_t k = 0;
        while (k + 1 < s->n && s->t0[k + 1] <= t)
            k++;
        double r0 = stage_from(s, k), r1 = s->st[k].target;
        double d = (double)s->st[k].duration_ns / 1e9;
        double x = (double)(t - s->t0[k]) / 1e9;
        double a = d > 0 ? (r1 - r0) / (2.0 * d) : 0;
        got = s->cum[k] + r0 * x + a * x * x;
    }
    /* arrivals at 0, 1, 2, ...: those with index <= got happen by t (bounded by the total) */
    uint64_t n = (uint64_t)floor(got + 1e-6) + 1;
    uint64_t max = mk_loadgen_sched_total(s);
    return n > max ? max : n;
}

uint64_t mk_loadgen_sched_total(const mk_loadgen_sched_t *s)
{
    double c = s->cum[s->n];
    uint64_t n = (uint64_t)ceil(c - 1e-9);
    return n;
}
