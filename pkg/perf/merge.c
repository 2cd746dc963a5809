/* Runners' per-second snapshots merged into one timeline and one total: histograms and counts
 * add exactly, so N runners' seconds give the same numbers one runner would have measured. */
#include "perf/perf.h"

#include <math.h>
#include <stdlib.h>

#define MAX_SECONDS (30 * 86400)

int mk_perf_merge_init(mk_perf_merge_t *m, mk_err_t *err)
{
    *m = (mk_perf_merge_t){0};
    m->sum = mk_loadgen_stats_new();
    return m->sum ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

static size_t second_of(double t)
{
    double c = ceil(t - 0.05);
    return c < 1 ? 0 : (size_t)c - 1;
}

int mk_perf_merge_add(mk_perf_merge_t *m, const json_t *delta, mk_err_t *err)
{
    double t = json_number_value(json_object_get(delta, "t"));
    if (!(t >= 0) || t > MAX_SECONDS)
        return mk_err_set(err, MK_EINVAL, "snapshot: t out of range");
    size_t i = second_of(t);
    if (i >= m->nsec) {
        size_t n = i + 1 > m->nsec * 2 ? i + 1 : m->nsec * 2;
        mk_loadgen_stats_t **sec = realloc(m->sec, n * sizeof *sec);
        if (sec == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        for (size_t k = m->nsec; k < n; k++)
            sec[k] = NULL;
        m->sec = sec;
        m->nsec = n;
    }
    if (m->sec[i] == NULL && (m->sec[i] = mk_loadgen_stats_new()) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    /* Into a scratch copy first, so a bad delta leaves both the second and the sum as they were. */
    mk_loadgen_stats_t *one = mk_loadgen_stats_new();
    if (one == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    int rc = mk_loadgen_stats_from_json_add(one, delta, err);
    if (rc == 0) {
        /* A runner's trailing fragment folded into a second it already reported brings counts,
         * not more VUs (gauges of different runners add; of one runner they do not). */
        if (one->interval_s < 0.5 && m->sec[i]->reqs + m->sec[i]->iterations > 0)
            one->vus = one->vus_max = 0;
        mk_loadgen_stats_merge(m->sec[i], one);
        m->sec[i]->t_s = (double)(i + 1);
        m->sec[i]->interval_s = 1;
        /* Gauges of the whole run: VUs now and the most at once, not a sum over seconds. */
        int64_t vus_max = m->sum->vus_max;
        mk_loadgen_stats_merge(m->sum, one);
        m->sum->vus = m->sec[i]->vus;
        m->sum->vus_max = vus_max > m->sec[i]->vus_max ? vus_max : m->sec[i]->vus_max;
        m->deltas++;
    }
    mk_loadgen_stats_free(one);
    return rc;
}

json_t *mk_perf_merge_timeline(const mk_perf_merge_t *m)
{
    json_t *tl = json_array();
    for (size_t i = 0; tl && i < m->nsec; i++)
        if (m->sec[i])
            json_array_append_new(tl, mk_perf_timeline_point(m->sec[i]));
    return tl;
}

void mk_perf_merge_release(mk_perf_merge_t *m)
{
    for (size_t i = 0; i < m->nsec; i++)
        mk_loadgen_stats_free(m->sec[i]);
    free(m->sec);
    mk_loadgen_stats_free(m->sum);
    *m = (mk_perf_merge_t){0};
}
