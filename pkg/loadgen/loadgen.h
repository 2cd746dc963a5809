/* An event-driven HTTP/1.1 (and, when asked, HTTP/2) load generator: one epoll loop per thread,
 * keep-alive connections written directly on sockets, k6's executors (closed model: constant-vus,
 * ramping-vus, shared-iterations; open model: constant-arrival-rate, ramping-arrival-rate), k6's
 * metric names, and mergeable per-second statistics so runners can stream deltas to a coordinator.
 *
 * Use: compile a scenario (mk_loadgen_scenario_compile), fill a mk_loadgen_config_t, then
 * mk_loadgen_new -> mk_loadgen_run (blocks; calls on_second from the calling thread once a
 * second) -> mk_loadgen_total / mk_loadgen_summary -> mk_loadgen_free. mk_loadgen_stop may be
 * called from any thread or a signal handler. */
#ifndef MK_LOADGEN_H
#define MK_LOADGEN_H

#include "err/err.h"
#include "hdr/hdr.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MK_LOADGEN_NS_PER_S INT64_C(1000000000)

/* ---- Stages and arrival schedules (pure arithmetic; unit-tested) ---- */

typedef struct mk_loadgen_stage {
    int64_t duration_ns;
    double target; /* VUs (ramping-vus) or arrivals per second (ramping-arrival-rate) */
} mk_loadgen_stage_t;

/* Sum of the stage durations. */
int64_t mk_loadgen_stages_duration(const mk_loadgen_stage_t *st, size_t n);
/* The value at t: linear from start to the first stage's target over its duration, then from
 * each target to the next (k6's ramping). Past the end: the last target. */
double mk_loadgen_stages_value(const mk_loadgen_stage_t *st, size_t n, double start, int64_t t_ns);

/* Arrival times of an open-model run: the i-th arrival (from 0) happens when the integral of the
 * rate from 0 reaches i. The rate is start_rate then ramps through the stages (arrivals per
 * second). A constant rate r for d is start_rate r and one stage {d, r}. */
#define MK_LOADGEN_MAX_STAGES 64
typedef struct mk_loadgen_sched {
    size_t n;
    mk_loadgen_stage_t st[MK_LOADGEN_MAX_STAGES];
    double start_rate;
    double cum[MK_LOADGEN_MAX_STAGES + 1]; /* arrivals before each stage */
    int64_t t0[MK_LOADGEN_MAX_STAGES + 1]; /* start time of each stage */
} mk_loadgen_sched_t;

/* MK_EINVAL when n is 0 or above MK_LOADGEN_MAX_STAGES, or a rate or duration is negative. */
int mk_loadgen_sched_init(mk_loadgen_sched_t *s, double start_rate, const mk_loadgen_stage_t *st,
                          size_t n, mk_err_t *err);
/* The time of arrival i in ns from the start, or -1 when it falls after the schedule's end. */
int64_t mk_loadgen_sched_at(const mk_loadgen_sched_t *s, uint64_t i);
/* How many arrivals happen at or before t_ns (clamped to the schedule's end). */
uint64_t mk_loadgen_sched_due(const mk_loadgen_sched_t *s, int64_t t_ns);
/* Total arrivals of the whole schedule. */
uint64_t mk_loadgen_sched_total(const mk_loadgen_sched_t *s);

/* ---- Scenario: weighted requests with {{variables}} and fakers ---- */

typedef struct mk_loadgen_scenario mk_loadgen_scenario_t;

/* Compiles {"requests": [{"method", "url", "headers": {..}, "body": string|JSON, "weight",
 * "name"}], "variables": {..}} (scenario borrowed). vars (borrowed, may be NULL) is a second
 * object of variables (the run's "environment"); the scenario's own win. {{name}} is replaced by
 * a variable at compile time; {{$randomInt}}, {{$uuid}}, {{$timestamp}}, ... (see
 * mk_loadgen_fakers) and {{$fake.Name}} (pkg/faker) are generated per request. URLs are
 * http[s]://host[:port]/path; hosts are resolved here. Errors name the field:
 * "requests[1].url: unsupported scheme 'ftp'". Caller frees with mk_loadgen_scenario_free(). */
int mk_loadgen_scenario_compile(const json_t *scenario, const json_t *vars,
                                mk_loadgen_scenario_t **out, mk_err_t *err);
void mk_loadgen_scenario_free(mk_loadgen_scenario_t *sc);
/* The target hosts "host:port" of the scenario, for allow-list checks (borrowed strings). */
size_t mk_loadgen_scenario_targets(const mk_loadgen_scenario_t *sc, const char **hosts, size_t max);
/* The names of the built-in {{$...}} fakers, NULL-terminated (static). */
extern const char *const mk_loadgen_fakers[];

/* ---- Statistics: mergeable, serialisable ---- */

#define MK_LOADGEN_STATUS_MAX 600
#define MK_LOADGEN_ERRORS_MAX 32

typedef struct mk_loadgen_error_count {
    char msg[96];
    uint64_t count;
} mk_loadgen_error_count_t;

typedef struct mk_loadgen_stats {
    mk_hdr_t *duration; /* http_req_duration, microseconds */
    mk_hdr_t *waiting;  /* http_req_waiting (time to first byte), microseconds */
    uint64_t reqs;      /* http_reqs: every completed or failed request */
    uint64_t failed;    /* http_req_failed: transport errors and statuses >= 400 */
    uint64_t iterations;
    uint64_t interrupted; /* requests cut off by stop or the end of gracefulStop */
    uint64_t dropped;     /* open model: arrivals due that were never sent */
    uint64_t scheduled;   /* open model: arrivals due (in this interval / so far) */
    uint64_t data_sent, data_received;
    uint64_t status[MK_LOADGEN_STATUS_MAX]; /* by status code; [0] = no response */
    size_t nerrors;
    mk_loadgen_error_count_t errors[MK_LOADGEN_ERRORS_MAX]; /* the rest fold into "other" */
    int64_t vus, vus_max;                                   /* gauges at the end of the interval */
    uint64_t behind;    /* open model: arrivals due but not yet sent at the interval's end */
    int64_t max_lag_us; /* open model: worst send delay behind schedule in the interval */
    double t_s;         /* seconds from the run's start at the end of the interval */
    double interval_s;  /* length of the interval */
} mk_loadgen_stats_t;

/* NULL when out of memory. Caller frees with mk_loadgen_stats_free(). */
mk_loadgen_stats_t *mk_loadgen_stats_new(void);
void mk_loadgen_stats_free(mk_loadgen_stats_t *s);
void mk_loadgen_stats_reset(mk_loadgen_stats_t *s);
/* Adds src's counts and histograms into dst; gauges: vus adds (runners run side by side), vus_max
 * adds, max_lag_us takes the max, t_s the max, interval_s the max. */
void mk_loadgen_stats_merge(mk_loadgen_stats_t *dst, const mk_loadgen_stats_t *src);
void mk_loadgen_stats_add_error(mk_loadgen_stats_t *s, const char *msg, uint64_t n);
/* A delta or total as JSON with both histograms encoded (mk_hdr_to_json): a new reference. */
json_t *mk_loadgen_stats_to_json(const mk_loadgen_stats_t *s);
/* Merges the shape mk_loadgen_stats_to_json makes into s (j borrowed). MK_EINVAL on bad shape. */
int mk_loadgen_stats_from_json_add(mk_loadgen_stats_t *s, const json_t *j, mk_err_t *err);

/* ---- The run ---- */

typedef enum mk_loadgen_executor {
    MK_LOADGEN_CONSTANT_VUS,
    MK_LOADGEN_RAMPING_VUS,
    MK_LOADGEN_SHARED_ITERATIONS,
    MK_LOADGEN_CONSTANT_ARRIVAL_RATE,
    MK_LOADGEN_RAMPING_ARRIVAL_RATE,
} mk_loadgen_executor_t;

/* "constant-vus", ...; and back (-1 when unknown). */
const char *mk_loadgen_executor_name(mk_loadgen_executor_t e);
int mk_loadgen_executor_parse(const char *name);

/* Called once a second (and once at the end with the last partial interval) from the thread in
 * mk_loadgen_run: delta is that interval, total everything so far (both borrowed). Return
 * non-zero to stop the run (abortOnFail). */
typedef int (*mk_loadgen_second_fn)(const mk_loadgen_stats_t *delta,
                                    const mk_loadgen_stats_t *total, void *arg);

typedef struct mk_loadgen_config {
    mk_loadgen_executor_t executor;
    int threads;          /* event loops (default 1) */
    int vus;              /* constant-vus, shared-iterations; startVUs of ramping-vus */
    int64_t duration_ns;  /* constant-vus, constant-arrival-rate; max duration of iterations */
    int64_t iterations;   /* shared-iterations: total iterations */
    double rate;          /* arrivals per time_unit (constant) or startRate (ramping) */
    int64_t time_unit_ns; /* default 1 s */
    int pre_allocated_vus, max_vus;   /* open model connections (max_vus default pre_allocated) */
    const mk_loadgen_stage_t *stages; /* ramping executors (copied by mk_loadgen_new) */
    size_t nstages;
    int64_t timeout_ns;       /* per request (default 60 s) */
    int64_t graceful_stop_ns; /* how long in-flight requests may finish at the end (default 30 s) */
    const mk_loadgen_scenario_t *scenario; /* borrowed; must outlive the run */
    mk_loadgen_second_fn on_second;        /* optional */
    void *arg;
    uint64_t seed;                 /* fakers and weighted choice; 0 = from the clock */
    bool insecure_skip_tls_verify; /* https targets: accept any certificate (k6's option) */
    /* HTTP/2: https targets offer ALPN "h2, http/1.1" and speak what the server picks; http
     * targets speak h2c with prior knowledge. One stream at a time per VU's connection. */
    bool http2;
} mk_loadgen_config_t;

typedef struct mk_loadgen mk_loadgen_t;

/* Validates cfg (messages name the field: "vus: must be at least 1") and prepares a run. Caller
 * frees with mk_loadgen_free(). */
int mk_loadgen_new(const mk_loadgen_config_t *cfg, mk_loadgen_t **out, mk_err_t *err);
/* Runs to the end (duration, iterations, stages) or until stopped or aborted by on_second. 0, or
 * a negative code when the threads could not start. Call once. */
int mk_loadgen_run(mk_loadgen_t *lg, mk_err_t *err);
/* Ends the run now: in-flight requests are abandoned (counted as interrupted), sockets closed,
 * mk_loadgen_run returns within milliseconds. Thread- and async-signal-safe. */
void mk_loadgen_stop(mk_loadgen_t *lg);
/* Everything since the start (borrowed; valid until mk_loadgen_free). */
const mk_loadgen_stats_t *mk_loadgen_total(const mk_loadgen_t *lg);

typedef struct mk_loadgen_summary {
    double elapsed_s;
    bool stopped;         /* mk_loadgen_stop was called */
    bool aborted;         /* on_second asked to stop */
    double target_rate;   /* open model: requested arrivals per second (average over the run) */
    double achieved_rate; /* requests started per second */
    bool rate_kept; /* open model: at least 99 % of the due arrivals were sent, none dropped */
    /* first and last second in which sends fell behind (more than 10 ms worth of arrivals
     * waiting at the second's end, or one that waited over 100 ms); -1 when never */
    double behind_from_s, behind_to_s;
} mk_loadgen_summary_t;
void mk_loadgen_summary(const mk_loadgen_t *lg, mk_loadgen_summary_t *out);
void mk_loadgen_free(mk_loadgen_t *lg);

#endif
