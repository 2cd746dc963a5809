/* k6 thresholds: "<aggregation> <op> <number>" per metric, evaluated on merged totals. Metrics
 * and aggregations are tables; a new metric is a row. */
#include "perf/perf.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mk_perf_parse_duration(const char *s, int64_t *ns, mk_err_t *err)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ms", 1e6},   {"us", 1e3}, {"µs", 1e3}, {"ns", 1},
                 {"h", 3600e9}, {"m", 60e9}, {"s", 1e9}};
    if (!s || !*s)
        return mk_err_set(err, MK_EINVAL, "empty duration");
    char *end;
    double v = strtod(s, &end);
    if (*end == '\0' && end != s) {
        if (!(v >= 0) || v > 30 * 86400.0)
            return mk_err_set(err, MK_EINVAL, "duration '%s' out of range", s);
        *ns = (int64_t)llround(v * 1e9);
        return 0;
    }
    double total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return mk_err_set(err, MK_EINVAL, "malformed duration '%s' (e.g. \"30s\", \"1m30s\")",
                              s);
        v = strtod(p, &end);
        size_t i = 0, n = sizeof units / sizeof units[0];
        for (; i < n; i++)
            if (strncmp(end, units[i].unit, strlen(units[i].unit)) == 0)
                break;
        if (end == p || i == n)
            return mk_err_set(err, MK_EINVAL, "malformed duration '%s' (e.g. \"30s\", \"1m30s\")",
                              s);
        total += v * units[i].ns;
        p = end + strlen(units[i].unit);
    }
    if (total > 30 * 86400e9)
        return mk_err_set(err, MK_EINVAL, "duration '%s' out of range (30 days at most)", s);
    *ns = (int64_t)llround(total);
    return 0;
}

typedef enum agg { A_AVG, A_MIN, A_MAX, A_MED, A_PCT, A_COUNT, A_RATE, A_VALUE } agg_t;

#define K_TREND   (1 << MK_PERF_TREND)
#define K_RATE    (1 << MK_PERF_RATE)
#define K_COUNTER (1 << MK_PERF_COUNTER)
#define K_GAUGE   (1 << MK_PERF_GAUGE)

static const struct {
    const char *name;
    agg_t agg;
    int kinds; /* metric kinds it applies to */
} aggs[] = {
    {"avg", A_AVG, K_TREND},           {"min", A_MIN, K_TREND | K_GAUGE},
    {"max", A_MAX, K_TREND | K_GAUGE}, {"med", A_MED, K_TREND},
    {"count", A_COUNT, K_COUNTER},     {"rate", A_RATE, K_COUNTER | K_RATE},
    {"value", A_VALUE, K_GAUGE},
};

typedef enum metric_id {
    M_REQS,
    M_FAILED,
    M_DURATION,
    M_WAITING,
    M_ITERATIONS,
    M_SENT,
    M_RECEIVED,
    M_VUS,
    M_VUS_MAX,
    M_DROPPED
} metric_id_t;

static const struct {
    const char *name;
    mk_perf_metric_kind_t kind;
} metrics[] = {
    [M_REQS] = {"http_reqs", MK_PERF_COUNTER},
    [M_FAILED] = {"http_req_failed", MK_PERF_RATE},
    [M_DURATION] = {"http_req_duration", MK_PERF_TREND},
    [M_WAITING] = {"http_req_waiting", MK_PERF_TREND},
    [M_ITERATIONS] = {"iterations", MK_PERF_COUNTER},
    [M_SENT] = {"data_sent", MK_PERF_COUNTER},
    [M_RECEIVED] = {"data_received", MK_PERF_COUNTER},
    [M_VUS] = {"vus", MK_PERF_GAUGE},
    [M_VUS_MAX] = {"vus_max", MK_PERF_GAUGE},
    [M_DROPPED] = {"dropped_iterations", MK_PERF_COUNTER},
};
#define NMETRICS (sizeof metrics / sizeof metrics[0])

static const char *const kind_names[] = {"trend", "rate", "counter", "gauge"};

typedef enum op { OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE } op_t;
static const struct {
    const char *text;
    op_t op;
} ops[] = {{"<=", OP_LE}, {">=", OP_GE}, {"===", OP_EQ}, {"==", OP_EQ},
           {"!=", OP_NE}, {"<", OP_LT},  {">", OP_GT}};

static int find_metric(const char *name)
{
    for (size_t i = 0; i < NMETRICS; i++)
        if (strcmp(metrics[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Parses an aggregation name at *p ("avg", "p(95)"); returns its agg and advances *p. */
static int parse_agg(const char **p, double *pct)
{
    const char *s = *p;
    if (s[0] == 'p' && s[1] == '(') {
        char *end;
        double v = strtod(s + 2, &end);
        if (end == s + 2 || *end != ')' || !(v >= 0 && v <= 100))
            return -1;
        *pct = v;
        *p = end + 1;
        return A_PCT;
    }
    for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++) {
        size_t n = strlen(aggs[i].name);
        if (strncmp(s, aggs[i].name, n) == 0 && !isalnum((unsigned char)s[n])) {
            *p = s + n;
            return (int)aggs[i].agg;
        }
    }
    return -1;
}

static int agg_kinds(int agg)
{
    if (agg == A_PCT)
        return K_TREND;
    for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++)
        if ((int)aggs[i].agg == agg)
            return aggs[i].kinds;
    return 0;
}

int mk_perf_threshold_parse(const char *metric, const char *expr, mk_perf_threshold_t *t,
                            mk_err_t *err)
{
    memset(t, 0, sizeof *t);
    int m = find_metric(metric);
    if (m < 0) {
        if (strchr(metric, '{'))
            return mk_err_set(err, MK_EINVAL, "%s: sub-metrics (tag filters) are not supported",
                              metric);
        return mk_err_set(err, MK_EINVAL, "%s: unknown metric", metric);
    }
    if (strlen(expr) >= sizeof t->expr)
        return mk_err_set(err, MK_EINVAL, "%s: threshold too long", metric);
    snprintf(t->metric, sizeof t->metric, "%s", metric);
    snprintf(t->expr, sizeof t->expr, "%s", expr);
    const char *p = expr;
    while (isspace((unsigned char)*p))
        p++;
    int agg = parse_agg(&p, &t->pct);
    if (agg < 0)
        return mk_err_set(err, MK_EINVAL,
                          "%s: '%s': expected an aggregation (avg, min, max, med, p(N), count, "
                          "rate, value)",
                          metric, expr);
    if (!(agg_kinds(agg) & (1 << metrics[m].kind)))
        return mk_err_set(err, MK_EINVAL, "%s: '%s': this aggregation does not apply to %s metric",
                          metric, expr, kind_names[metrics[m].kind]);
    t->agg = agg;
    while (isspace((unsigned char)*p))
        p++;
    size_t i = 0, n = sizeof ops / sizeof ops[0];
    for (; i < n; i++)
        if (strncmp(p, ops[i].text, strlen(ops[i].text)) == 0)
            break;
    if (i == n)
        return mk_err_set(err, MK_EINVAL, "%s: '%s': expected an operator (<, <=, >, >=, ==, !=)",
                          metric, expr);
    t->op = ops[i].op;
    p += strlen(ops[i].text);
    char *end;
    t->limit = strtod(p, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (end == p || *end || !isfinite(t->limit))
        return mk_err_set(err, MK_EINVAL, "%s: '%s': expected a number after the operator", metric,
                          expr);
    return 0;
}

void mk_perf_thresholds_free(mk_perf_thresholds_t *th)
{
    if (!th)
        return;
    free(th->t);
    free(th);
}

static int add_one(mk_perf_thresholds_t *th, const char *metric, const json_t *e, size_t idx,
                   mk_err_t *err)
{
    const char *expr = json_string_value(e);
    const json_t *abort = NULL, *delay = NULL;
    if (json_is_object(e)) {
        expr = json_string_value(json_object_get(e, "threshold"));
        abort = json_object_get(e, "abortOnFail");
        delay = json_object_get(e, "delayAbortEval");
    }
    if (!expr)
        return mk_err_set(err, MK_EINVAL,
                          "thresholds.%s[%zu]: a string or {\"threshold\": \"...\"} expected",
                          metric, idx);
    mk_perf_threshold_t *t = &th->t[th->n];
    int rc = mk_perf_threshold_parse(metric, expr, t, err);
    if (rc) {
        mk_err_prefix(err, "thresholds");
        return rc;
    }
    if (abort && !json_is_boolean(abort))
        return mk_err_set(err, MK_EINVAL, "thresholds.%s[%zu].abortOnFail: a boolean", metric, idx);
    t->abort_on_fail = json_is_true(abort);
    if (delay && (rc = mk_perf_parse_duration(json_string_value(delay), &t->delay_abort_eval_ns,
                                              err)) != 0) {
        mk_err_prefix(err, "thresholds.%s[%zu].delayAbortEval", metric, idx);
        return rc;
    }
    th->n++;
    return 0;
}

int mk_perf_thresholds_parse(const json_t *j, mk_perf_thresholds_t **out, mk_err_t *err)
{
    *out = NULL;
    if (j && !json_is_object(j))
        return mk_err_set(err, MK_EINVAL, "thresholds: an object of metric -> [expressions]");
    size_t total = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        total += json_is_array(v) ? json_array_size(v) : 1;
    }
    mk_perf_thresholds_t *th = calloc(1, sizeof *th);
    if (!th || !(th->t = calloc(total ? total : 1, sizeof *th->t))) {
        mk_perf_thresholds_free(th);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    int rc = 0;
    json_object_foreach((json_t *)j, k, v)
    {
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if ((rc = add_one(th, k, e, i, err)) != 0)
                    goto fail;
            }
        } else if ((rc = add_one(th, k, v, 0, err)) != 0) {
            goto fail;
        }
    }
    *out = th;
    return 0;
fail:
    mk_perf_thresholds_free(th);
    return rc;
}

static double value_of(const mk_loadgen_stats_t *s, double elapsed, int m, int agg, double pct)
{
    const mk_hdr_t *h = m == M_WAITING ? s->waiting : s->duration;
    switch (metrics[m].kind) {
    case MK_PERF_TREND:
        switch (agg) {
        case A_AVG:
            return mk_hdr_mean(h) / 1000.0;
        case A_MIN:
            return (double)mk_hdr_min(h) / 1000.0;
        case A_MAX:
            return (double)mk_hdr_max(h) / 1000.0;
        case A_MED:
            return (double)mk_hdr_percentile(h, 50) / 1000.0;
        default:
            return (double)mk_hdr_percentile(h, pct) / 1000.0;
        }
    case MK_PERF_RATE:
        return s->reqs ? (double)s->failed / (double)s->reqs : 0.0;
    case MK_PERF_COUNTER: {
        uint64_t c = m == M_REQS         ? s->reqs
                     : m == M_ITERATIONS ? s->iterations
                     : m == M_SENT       ? s->data_sent
                     : m == M_RECEIVED   ? s->data_received
                                         : s->dropped;
        return agg == A_RATE ? (elapsed > 0 ? (double)c / elapsed : 0) : (double)c;
    }
    case MK_PERF_GAUGE:
        if (m == M_VUS_MAX || agg == A_MAX)
            return (double)s->vus_max;
        return agg == A_MIN ? 0 : (double)s->vus;
    }
    return 0;
}

int mk_perf_metric_value(const mk_loadgen_stats_t *s, double elapsed, const char *metric,
                         const char *agg, double *value, mk_err_t *err)
{
    char expr[64];
    snprintf(expr, sizeof expr, "%s>0", agg);
    mk_perf_threshold_t t;
    int rc = mk_perf_threshold_parse(metric, expr, &t, err);
    if (rc)
        return rc;
    *value = value_of(s, elapsed, find_metric(metric), t.agg, t.pct);
    return 0;
}

static bool holds(int op, double v, double limit)
{
    switch (op) {
    case OP_LT:
        return v < limit;
    case OP_LE:
        return v <= limit;
    case OP_GT:
        return v > limit;
    case OP_GE:
        return v >= limit;
    case OP_EQ:
        return v == limit;
    default:
        return v != limit;
    }
}

size_t mk_perf_thresholds_eval(mk_perf_thresholds_t *th, const mk_loadgen_stats_t *s,
                               double elapsed, bool *abort)
{
    size_t failed = 0;
    if (abort)
        *abort = false;
    for (size_t i = 0; th && i < th->n; i++) {
        mk_perf_threshold_t *t = &th->t[i];
        t->value = value_of(s, elapsed, find_metric(t->metric), t->agg, t->pct);
        t->ok = holds(t->op, t->value, t->limit);
        t->evaluated = true;
        if (!t->ok) {
            failed++;
            if (abort && t->abort_on_fail && elapsed * 1e9 >= (double)t->delay_abort_eval_ns)
                *abort = true;
        }
    }
    return failed;
}
