/* Result JSON in Mockarty's PerfResult shape with k6's metric names and aggregations. */
#include "perf/perf.h"

#include <stdio.h>
#include <string.h>

static json_t *trend(const mk_hdr_t *h)
{
    return json_pack("{s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:I}", "type", "trend", "min",
                     (double)mk_hdr_min(h) / 1000.0, "avg", mk_hdr_mean(h) / 1000.0, "med",
                     (double)mk_hdr_percentile(h, 50) / 1000.0, "p(90)",
                     (double)mk_hdr_percentile(h, 90) / 1000.0, "p(95)",
                     (double)mk_hdr_percentile(h, 95) / 1000.0, "p(99)",
                     (double)mk_hdr_percentile(h, 99) / 1000.0, "max",
                     (double)mk_hdr_max(h) / 1000.0, "count", (json_int_t)mk_hdr_count(h));
}

static json_t *counter(uint64_t n, double elapsed)
{
    return json_pack("{s:s,s:I,s:f}", "type", "counter", "count", (json_int_t)n, "rate",
                     elapsed > 0 ? (double)n / elapsed : 0.0);
}

json_t *mk_perf_timeline_point(const mk_loadgen_stats_t *d)
{
    double iv = d->interval_s > 0 ? d->interval_s : 1;
    return json_pack("{s:f,s:I,s:f,s:I,s:f,s:f,s:f,s:f,s:f,s:I,s:I,s:I,s:I,s:I}", "t", d->t_s,
                     "reqs", (json_int_t)d->reqs, "rps", (double)d->reqs / iv, "failed",
                     (json_int_t)d->failed, "avg", mk_hdr_mean(d->duration) / 1000.0, "p50",
                     (double)mk_hdr_percentile(d->duration, 50) / 1000.0, "p95",
                     (double)mk_hdr_percentile(d->duration, 95) / 1000.0, "p99",
                     (double)mk_hdr_percentile(d->duration, 99) / 1000.0, "max",
                     (double)mk_hdr_max(d->duration) / 1000.0, "vus", (json_int_t)d->vus,
                     "dataSent", (json_int_t)d->data_sent, "dataReceived",
                     (json_int_t)d->data_received, "behind", (json_int_t)d->behind, "dropped",
                     (json_int_t)d->dropped);
}

json_t *mk_perf_result_json(const mk_perf_config_t *cfg, const mk_loadgen_stats_t *t,
                            const mk_perf_result_info_t *info)
{
    const mk_loadgen_summary_t *sum = info ? info->summary : NULL;
    double elapsed = sum ? sum->elapsed_s : t->t_s;
    size_t failed = mk_perf_thresholds_eval(cfg->thresholds, t, elapsed, NULL);
    json_t *r = json_object(), *m = json_object(), *th = json_object(), *errs = json_array();
    json_t *codes = json_object();
    if (!r || !m || !th || !errs || !codes) {
        json_decref(r);
        json_decref(m);
        json_decref(th);
        json_decref(errs);
        json_decref(codes);
        return NULL;
    }
    const char *status = info && info->status ? info->status : failed ? "failed" : "completed";
    if (info && info->id)
        json_object_set_new(r, "id", json_string(info->id));
    json_object_set_new(r, "name", json_string(cfg->name));
    json_object_set_new(r, "status", json_string(status));
    json_object_set_new(r, "duration", json_integer((json_int_t)(elapsed * 1000.0)));
    json_object_set_new(r, "vus", json_integer(t->vus_max));
    json_object_set_new(r, "iterations", json_integer((json_int_t)t->iterations));
    json_object_set_new(r, "executor", json_string(mk_loadgen_executor_name(cfg->lg.executor)));

    json_object_set_new(m, "http_reqs", counter(t->reqs, elapsed));
    json_object_set_new(m, "http_req_duration", trend(t->duration));
    json_object_set_new(m, "http_req_waiting", trend(t->waiting));
    json_object_set_new(m, "http_req_failed",
                        json_pack("{s:s,s:f,s:I,s:I}", "type", "rate", "rate",
                                  t->reqs ? (double)t->failed / (double)t->reqs : 0.0, "passes",
                                  (json_int_t)t->failed, "fails",
                                  (json_int_t)(t->reqs - t->failed)));
    json_object_set_new(m, "iterations", counter(t->iterations, elapsed));
    json_object_set_new(m, "data_sent", counter(t->data_sent, elapsed));
    json_object_set_new(m, "data_received", counter(t->data_received, elapsed));
    json_object_set_new(m, "dropped_iterations", counter(t->dropped, elapsed));
    json_object_set_new(m, "vus",
                        json_pack("{s:s,s:I,s:I}", "type", "gauge", "value", (json_int_t)t->vus,
                                  "max", (json_int_t)t->vus_max));
    json_object_set_new(m, "vus_max",
                        json_pack("{s:s,s:I}", "type", "gauge", "value", (json_int_t)t->vus_max));
    for (size_t i = 0; cfg->thresholds && i < cfg->thresholds->n; i++) {
        const mk_perf_threshold_t *x = &cfg->thresholds->t[i];
        json_t *per = json_object_get(th, x->metric);
        if (!per)
            json_object_set_new(th, x->metric, per = json_object());
        json_object_set_new(per, x->expr,
                            json_pack("{s:b,s:f,s:b}", "ok", x->ok, "value", x->value,
                                      "abortOnFail", x->abort_on_fail));
        /* k6's summary export keeps {"expr": {"ok"}} under the metric too */
        json_t *mm = json_object_get(m, x->metric), *mt = json_object_get(mm, "thresholds");
        if (mm && !mt)
            json_object_set_new(mm, "thresholds", mt = json_object());
        if (mt)
            json_object_set_new(mt, x->expr, json_pack("{s:b}", "ok", x->ok));
    }
    json_object_set_new(r, "metrics", m);
    json_object_set_new(r, "thresholds", th);
    json_object_set_new(r, "thresholdsPassed", json_boolean(failed == 0));
    for (size_t i = 0; i < t->nerrors; i++)
        json_array_append_new(errs, json_pack("{s:s,s:I}", "message", t->errors[i].msg, "count",
                                              (json_int_t)t->errors[i].count));
    json_object_set_new(r, "errors", errs);
    for (int i = 0; i < MK_LOADGEN_STATUS_MAX; i++) {
        if (!t->status[i])
            continue;
        char k[8];
        snprintf(k, sizeof k, "%d", i);
        json_object_set_new(codes, k, json_integer((json_int_t)t->status[i]));
    }
    json_object_set_new(r, "statusCodes", codes);
    if (sum && (cfg->lg.executor == MK_LOADGEN_CONSTANT_ARRIVAL_RATE ||
                cfg->lg.executor == MK_LOADGEN_RAMPING_ARRIVAL_RATE)) {
        json_t *rate = json_pack("{s:f,s:f,s:b,s:I}", "target", sum->target_rate, "achieved",
                                 sum->achieved_rate, "kept", sum->rate_kept, "dropped",
                                 (json_int_t)t->dropped);
        if (rate && sum->behind_from_s >= 0) {
            json_object_set_new(rate, "behindFromS", json_real(sum->behind_from_s));
            json_object_set_new(rate, "behindToS", json_real(sum->behind_to_s));
        }
        json_object_set_new(r, "rate", rate);
    }
    if (cfg->tags)
        json_object_set(r, "tags", cfg->tags);
    if (cfg->metadata)
        json_object_set(r, "metadata", cfg->metadata);
    if (info && info->started_at)
        json_object_set_new(r, "startedAt", json_string(info->started_at));
    if (info && info->completed_at)
        json_object_set_new(r, "completedAt", json_string(info->completed_at));
    if (info && info->timeline)
        json_object_set(r, "timeline", (json_t *)info->timeline);
    json_object_set_new(r, "histogram", mk_hdr_to_json(t->duration));
    return r;
}
