/* The runner's load test task: parse the run config, take this runner's share of the load, run
 * the generator, and stream each second's statistics delta (counts and HDR histograms) so the
 * coordinator can merge runners exactly. Thresholds with abortOnFail are evaluated on this
 * runner's share every second; the run's verdict is the admin's, on the merged totals. */
#include "perf_task.h"

#include "perf/perf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct perf_job {
    const perf_task_io_t *io;
    mk_perf_config_t *cfg;
    mk_loadgen_config_t lg;
    json_t *ident; /* {"runId", "shard", "shards"} */
    double planned_s;
} perf_job_t;

static json_t *tagged(const perf_job_t *p, const char *type, const char *key, json_t *value)
{
    json_t *e = json_deep_copy(p->ident);
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, key, value);
    return e;
}

static int on_second(const mk_loadgen_stats_t *delta, const mk_loadgen_stats_t *total, void *arg)
{
    perf_job_t *p = arg;
    json_t *e = tagged(p, "snapshot", "stats", mk_loadgen_stats_to_json(delta));
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (text) {
        double pct = p->planned_s > 0 ? 100.0 * total->t_s / p->planned_s : 0;
        p->io->snapshot(p->io->ud, text, pct > 100 ? 100 : pct);
        free(text);
    }
    bool abort = false;
    mk_perf_thresholds_eval(p->cfg->thresholds, total, total->t_s, &abort);
    return abort || (p->io->quitting && p->io->quitting(p->io->ud));
}

/* How long the share should take, for progress: the duration or the stages' sum. */
static double planned_seconds(const mk_loadgen_config_t *c)
{
    if (c->nstages &&
        (c->executor == MK_LOADGEN_RAMPING_VUS || c->executor == MK_LOADGEN_RAMPING_ARRIVAL_RATE))
        return (double)mk_loadgen_stages_duration(c->stages, c->nstages) / 1e9;
    return (double)c->duration_ns / 1e9;
}

int perf_task_run(const char *payload_json, const perf_task_io_t *io, char **result_json,
                  bool *stopped, char *error, size_t size)
{
    *result_json = NULL;
    *stopped = false;
    json_error_t je;
    json_t *p = json_loads(payload_json, 0, &je);
    perf_job_t job = {.io = io};
    mk_loadgen_stage_t stages[MK_LOADGEN_MAX_STAGES];
    mk_loadgen_t *lg = NULL;
    mk_err_t err;
    int rc = -1;
    if (p == NULL) {
        snprintf(error, size, "payload: %s", je.text);
        goto out;
    }
    json_t *shard = json_object_get(p, "shard"), *shards = json_object_get(p, "shards");
    int n = json_is_integer(shards) ? (int)json_integer_value(shards) : 1;
    int i = json_is_integer(shard) ? (int)json_integer_value(shard) : 0;
    if (n < 1 || i < 0 || i >= n) {
        snprintf(error, size, "payload: shard %d of %d", i, n);
        goto out;
    }
    if (mk_perf_config_parse(json_object_get(p, "config"), &job.cfg, &err) != 0) {
        snprintf(error, size, "config: %s", err.msg);
        goto out;
    }
    job.ident = json_pack("{s:s, s:i, s:i}", "runId",
                          json_string_value(json_object_get(p, "runId"))
                              ? json_string_value(json_object_get(p, "runId"))
                              : "",
                          "shard", i, "shards", n);
    mk_perf_config_share(job.cfg, n, i, &job.lg, stages);
    job.lg.on_second = on_second;
    job.lg.arg = &job;
    job.planned_s = planned_seconds(&job.lg);
    if (mk_loadgen_new(&job.lg, &lg, &err) != 0) {
        snprintf(error, size, "%s", err.msg);
        goto out;
    }
    io->running(io->ud, lg, job.cfg->name);
    rc = mk_loadgen_run(lg, &err);
    io->running(io->ud, NULL, job.cfg->name);
    if (rc != 0) {
        snprintf(error, size, "%s", err.msg);
        goto out;
    }
    mk_loadgen_summary_t s;
    mk_loadgen_summary(lg, &s);
    *stopped = s.stopped;
    json_t *sum = json_pack("{s:f, s:b, s:b, s:f, s:f, s:b, s:f, s:f}", "elapsedS", s.elapsed_s,
                            "stopped", s.stopped, "aborted", s.aborted, "targetRate", s.target_rate,
                            "achievedRate", s.achieved_rate, "rateKept", s.rate_kept, "behindFromS",
                            s.behind_from_s, "behindToS", s.behind_to_s);
    json_t *res = tagged(&job, "perf", "stats", mk_loadgen_stats_to_json(mk_loadgen_total(lg)));
    json_object_set_new(res, "summary", sum);
    *result_json = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    rc = *result_json ? 0 : -1;
    if (rc)
        snprintf(error, size, "out of memory");
out:
    mk_loadgen_free(lg);
    mk_perf_config_free(job.cfg);
    json_decref(job.ident);
    json_decref(p);
    return rc;
}
