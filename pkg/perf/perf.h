/* Performance tests as Mockarty's API describes them: the run config of POST /api/v1/perf/run
 * (validated into a load generator config), k6 thresholds (parse, evaluate, abortOnFail), the
 * result JSON (PerfResult shape, k6 metric names) and a self-contained HTML report with SVG
 * plots. The runner calls these around pkg/loadgen; the coordinator merges stats deltas. */
#ifndef MK_PERF_H
#define MK_PERF_H

#include "err/err.h"
#include "loadgen/loadgen.h"
#include "str/str.h"

#include <jansson.h>
#include <stdbool.h>

/* k6 durations: "30s", "1m30s", "500ms", "1.5h", "2h3m", "100us" (or a bare number of
 * seconds). MK_EINVAL for anything else, negative, or above 30 days. */
int mk_perf_parse_duration(const char *s, int64_t *ns, mk_err_t *err);

/* ---- thresholds ---- */

typedef enum mk_perf_metric_kind {
    MK_PERF_TREND,
    MK_PERF_RATE,
    MK_PERF_COUNTER,
    MK_PERF_GAUGE
} mk_perf_metric_kind_t;

typedef struct mk_perf_threshold {
    char metric[48]; /* "http_req_duration" */
    char expr[96];   /* as written: "p(95)<200" */
    int agg;         /* internal aggregation id */
    double pct;      /* for p(N) */
    int op;
    double limit;
    bool abort_on_fail;
    int64_t delay_abort_eval_ns;
    /* filled by evaluation */
    bool evaluated, ok;
    double value;
} mk_perf_threshold_t;

typedef struct mk_perf_thresholds {
    mk_perf_threshold_t *t;
    size_t n;
} mk_perf_thresholds_t;

/* Parses one expression for metric: "p(95)<200", "avg<100", "rate<0.01", "count>1000",
 * "med<=50", "max<1000", "value>0". Errors: "http_req_duration: unknown metric",
 * "rate<0.01: 'rate' does not apply to trend metric http_req_duration". */
int mk_perf_threshold_parse(const char *metric, const char *expr, mk_perf_threshold_t *out,
                            mk_err_t *err);
/* Parses k6's thresholds object: {"metric": ["expr", {"threshold": "expr", "abortOnFail": true,
 * "delayAbortEval": "10s"}]} (j borrowed; NULL or {} gives none). Caller frees with
 * mk_perf_thresholds_free(). */
int mk_perf_thresholds_parse(const json_t *j, mk_perf_thresholds_t **out, mk_err_t *err);
void mk_perf_thresholds_free(mk_perf_thresholds_t *th);
/* Evaluates every threshold on the totals so far (elapsed_s: seconds since the start, for rates
 * per second and delayAbortEval). Returns how many failed; *abort (may be NULL) is set when a
 * failed one has abortOnFail and its delay has passed. */
size_t mk_perf_thresholds_eval(mk_perf_thresholds_t *th, const mk_loadgen_stats_t *total,
                               double elapsed_s, bool *abort);

/* The value of one aggregation of a metric from stats, as thresholds see it (trends in ms). */
int mk_perf_metric_value(const mk_loadgen_stats_t *s, double elapsed_s, const char *metric,
                         const char *agg, double *value, mk_err_t *err);

/* ---- the run config ---- */

typedef struct mk_perf_config {
    char *name;
    json_t *raw;            /* the config as given (new reference held) */
    json_t *tags;           /* borrowed from raw, may be NULL */
    json_t *metadata;       /* borrowed from raw, may be NULL */
    int runners;            /* how many runners share the load (default 1) */
    mk_loadgen_config_t lg; /* scenario and stages point into this struct */
    mk_loadgen_stage_t stages[MK_LOADGEN_MAX_STAGES];
    mk_loadgen_scenario_t *scenario;
    mk_perf_thresholds_t *thresholds;
} mk_perf_config_t;

/* Validates and compiles the body of POST /api/v1/perf/run (j borrowed): name, vus, duration,
 * iterations, stages [{duration, target}], thresholds, environment, tags, metadata, and the
 * load itself in "scenario" ({requests, variables}); executor (inferred as k6 does when absent:
 * rate -> constant-arrival-rate, stages -> ramping-vus/ramping-arrival-rate, iterations ->
 * shared-iterations, else constant-vus), rate, timeUnit, startRate, startVUs, preAllocatedVUs,
 * maxVUs, timeout, gracefulStop, threads, runners. Errors name the field. Caller frees with
 * mk_perf_config_free(). */
int mk_perf_config_parse(const json_t *j, mk_perf_config_t **out, mk_err_t *err);
void mk_perf_config_free(mk_perf_config_t *cfg);
/* Runner i's share (0 <= i < n) of the load: VUs, iterations, rates and stage targets divided
 * so the shares add up to the whole (remainders to the first runners). out->stages points into
 * stages (MK_LOADGEN_MAX_STAGES entries, caller's). */
void mk_perf_config_share(const mk_perf_config_t *cfg, int n, int i, mk_loadgen_config_t *out,
                          mk_loadgen_stage_t *stages);
/* Checks every target host against PERF_ALLOWED_TARGETS-style patterns: comma-separated shell
 * globs matched against "host:port" and against "host" ("*.svc.local", "127.0.0.1:*"). NULL or
 * "" allows everything. MK_EFORBIDDEN naming the first target refused. */
int mk_perf_check_targets(const mk_perf_config_t *cfg, const char *patterns, mk_err_t *err);

/* ---- results ---- */

/* One point of the per-second timeline (what live progress shows): {"t", "reqs", "rps",
 * "failed", "avg", "p50", "p95", "p99", "max", "vus", "dataSent", "dataReceived", "behind",
 * "dropped"}; trends in ms. A new reference. */
json_t *mk_perf_timeline_point(const mk_loadgen_stats_t *delta);

typedef struct mk_perf_result_info {
    const char *id;           /* may be NULL */
    const char *status;       /* NULL: "completed", or "failed" when a threshold failed */
    const char *started_at;   /* RFC 3339, may be NULL */
    const char *completed_at; /* may be NULL */
    const json_t *timeline;   /* array of mk_perf_timeline_point(), borrowed, may be NULL */
    const mk_loadgen_summary_t *summary; /* may be NULL */
} mk_perf_result_info_t;

/* The PerfResult JSON (Go SDK shape: id, name, status, duration ms, vus, iterations, metrics,
 * thresholds, tags, errors [{message, count}], startedAt, completedAt, metadata) plus
 * statusCodes, rate (open model), timeline, histogram (http_req_duration as mk_hdr_to_json) and
 * thresholdsPassed. Thresholds are evaluated here. A new reference. */
json_t *mk_perf_result_json(const mk_perf_config_t *cfg, const mk_loadgen_stats_t *total,
                            const mk_perf_result_info_t *info);

/* A self-contained HTML page (inline SVG and CSS, nothing fetched) for a result made by
 * mk_perf_result_json: summary, thresholds, throughput and p50/p95/p99 over time, active VUs,
 * the latency histogram, errors. Appends to out. */
int mk_perf_report_html(const json_t *result, mk_buf_t *out);

/* Two results side by side (both from mk_perf_result_json): a table of the main metrics with
 * the change from a to b, then each report's plots in its own column. Appends to out. */
int mk_perf_report_compare_html(const json_t *a, const json_t *b, mk_buf_t *out);

/* ---- merging runners' snapshots ---- */

/* Per-second deltas of one or more runners (mk_loadgen_stats_to_json shapes) merged exactly:
 * each delta is added to the second of the run it ends in (its "t" rounded up, a trailing
 * partial interval under 50 ms folding into the second before) and to the sum of everything. */
typedef struct mk_perf_merge {
    mk_loadgen_stats_t **sec; /* sec[i]: the second ending at i + 1 s; NULL when none */
    size_t nsec;
    mk_loadgen_stats_t *sum;
    size_t deltas; /* how many were added */
} mk_perf_merge_t;

int mk_perf_merge_init(mk_perf_merge_t *m, mk_err_t *err);
/* Adds one delta (borrowed). MK_EINVAL on a bad shape (nothing added), or past 30 days. */
int mk_perf_merge_add(mk_perf_merge_t *m, const json_t *delta, mk_err_t *err);
/* The timeline (mk_perf_timeline_point of each merged second, in order): a new reference. */
json_t *mk_perf_merge_timeline(const mk_perf_merge_t *m);
void mk_perf_merge_release(mk_perf_merge_t *m);

#endif
