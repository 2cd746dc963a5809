/* The run config of POST /api/v1/perf/run, validated into a load generator config. */
#include "perf/perf.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNNERS 1000

static int get_int(const json_t *j, const char *key, int lo, int hi, int *out, mk_err_t *err)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return mk_err_set(err, MK_EINVAL, "%s: an integer from %d to %d expected", key, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_dur(const json_t *j, const char *key, int64_t *out, mk_err_t *err)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) && !json_is_number(v))
        return mk_err_set(err, MK_EINVAL, "%s: a duration such as \"30s\" expected", key);
    int rc;
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (!(s >= 0) || s > 30 * 86400.0)
            return mk_err_set(err, MK_EINVAL, "%s: out of range", key);
        *out = (int64_t)llround(s * 1e9);
        return 0;
    }
    if ((rc = mk_perf_parse_duration(json_string_value(v), out, err)) != 0)
        mk_err_prefix(err, "%s", key);
    return rc;
}

static int get_num(const json_t *j, const char *key, double *out, mk_err_t *err)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= 0) || !isfinite(json_number_value(v)))
        return mk_err_set(err, MK_EINVAL, "%s: a non-negative number expected", key);
    *out = json_number_value(v);
    return 0;
}

static int parse_stages(mk_perf_config_t *c, const json_t *st, mk_err_t *err)
{
    if (!json_is_array(st) || json_array_size(st) == 0 ||
        json_array_size(st) > MK_LOADGEN_MAX_STAGES)
        return mk_err_set(err, MK_EINVAL, "stages: an array of 1 to %d {duration, target}",
                          MK_LOADGEN_MAX_STAGES);
    size_t i;
    json_t *s;
    json_array_foreach(st, i, s)
    {
        json_t *target = json_object_get(s, "target");
        int64_t d = -1;
        int rc = get_dur(s, "duration", &d, err);
        if (rc == 0 && d < 0)
            rc = mk_err_set(err, MK_EINVAL, "duration: required");
        if (rc) {
            mk_err_prefix(err, "stages[%zu]", i);
            return rc;
        }
        if (!json_is_number(target) || !(json_number_value(target) >= 0))
            return mk_err_set(err, MK_EINVAL, "stages[%zu].target: a non-negative number", i);
        c->stages[i] = (mk_loadgen_stage_t){d, json_number_value(target)};
    }
    c->lg.stages = c->stages;
    c->lg.nstages = json_array_size(st);
    if (mk_loadgen_stages_duration(c->stages, c->lg.nstages) <= 0)
        return mk_err_set(err, MK_EINVAL, "stages: the durations add up to zero");
    return 0;
}

/* Which executor the config asks for, k6's way when it does not say. */
static int pick_executor(const json_t *j, mk_err_t *err)
{
    json_t *e = json_object_get(j, "executor");
    if (e) {
        int x = mk_loadgen_executor_parse(json_string_value(e));
        if (x < 0)
            return mk_err_set(err, MK_EINVAL,
                              "executor: one of constant-vus, ramping-vus, shared-iterations, "
                              "constant-arrival-rate, ramping-arrival-rate");
        return x;
    }
    bool stages = json_object_get(j, "stages") != NULL;
    bool rate = json_object_get(j, "rate") || json_object_get(j, "startRate");
    if (rate)
        return stages ? MK_LOADGEN_RAMPING_ARRIVAL_RATE : MK_LOADGEN_CONSTANT_ARRIVAL_RATE;
    if (stages)
        return MK_LOADGEN_RAMPING_VUS;
    if (json_object_get(j, "iterations"))
        return MK_LOADGEN_SHARED_ITERATIONS;
    return MK_LOADGEN_CONSTANT_VUS;
}

int mk_perf_config_parse(const json_t *j, mk_perf_config_t **out, mk_err_t *err)
{
    *out = NULL;
    if (!json_is_object(j))
        return mk_err_set(err, MK_EINVAL, "the run config must be a JSON object");
    mk_perf_config_t *c = calloc(1, sizeof *c);
    if (!c)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    c->raw = json_deep_copy(j);
    int rc = MK_EINVAL;
    const char *name = json_string_value(json_object_get(j, "name"));
    c->name = strdup(name ? name : "");
    if (!c->raw || !c->name) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    c->tags = json_object_get(c->raw, "tags");
    c->metadata = json_object_get(c->raw, "metadata");
    json_t *scenario = json_object_get(j, "scenario");
    if (!scenario) {
        rc = mk_err_set(err, MK_EINVAL,
                        json_object_get(j, "script")
                            ? "script: k6 JavaScript scripts are not run; describe the load in "
                              "\"scenario\": {\"requests\": [...]}"
                            : "scenario: required ({\"requests\": [{\"method\", \"url\"}]})");
        goto fail;
    }
    json_t *env = json_object_get(j, "environment");
    if (env && !json_is_object(env)) {
        rc = mk_err_set(err, MK_EINVAL, "environment: an object expected");
        goto fail;
    }
    mk_loadgen_config_t *lg = &c->lg;
    int ex = pick_executor(j, err);
    if (ex < 0) {
        rc = ex;
        goto fail;
    }
    lg->executor = (mk_loadgen_executor_t)ex;
    bool open = ex == MK_LOADGEN_CONSTANT_ARRIVAL_RATE || ex == MK_LOADGEN_RAMPING_ARRIVAL_RATE;
    c->runners = 1;
    int64_t iterations = 0;
    json_t *it = json_object_get(j, "iterations");
    if (it && (!json_is_integer(it) || json_integer_value(it) < 1)) {
        rc = mk_err_set(err, MK_EINVAL, "iterations: a positive integer expected");
        goto fail;
    }
    iterations = it ? json_integer_value(it) : 0;
    lg->iterations = iterations;
    lg->vus = ex == MK_LOADGEN_RAMPING_VUS ? 0 : 1;
    if ((rc = get_int(j, "vus", 0, 100000, &lg->vus, err)) ||
        (rc = get_int(j, "startVUs", 0, 100000, &lg->vus, err)) ||
        (rc = get_int(j, "threads", 1, 256, &lg->threads, err)) ||
        (rc = get_int(j, "runners", 1, MAX_RUNNERS, &c->runners, err)) ||
        (rc = get_int(j, "preAllocatedVUs", 1, 100000, &lg->pre_allocated_vus, err)) ||
        (rc = get_int(j, "maxVUs", 1, 100000, &lg->max_vus, err)) ||
        (rc = get_dur(j, "duration", &lg->duration_ns, err)) ||
        (rc = get_dur(j, "maxDuration", &lg->duration_ns, err)) ||
        (rc = get_dur(j, "timeUnit", &lg->time_unit_ns, err)) ||
        (rc = get_dur(j, "timeout", &lg->timeout_ns, err)) ||
        (rc = get_dur(j, "gracefulStop", &lg->graceful_stop_ns, err)) ||
        (rc = get_num(j, "rate", &lg->rate, err)) || (rc = get_num(j, "startRate", &lg->rate, err)))
        goto fail;
    rc = MK_EINVAL;
    json_t *insecure = json_object_get(j, "insecureSkipTLSVerify");
    if (insecure && !json_is_boolean(insecure)) {
        mk_err_set(err, MK_EINVAL, "insecureSkipTLSVerify: a boolean expected");
        goto fail;
    }
    lg->insecure_skip_tls_verify = json_is_true(insecure);
    json_t *http2 = json_object_get(j, "http2"); /* HTTP/2: h2 by ALPN, h2c prior knowledge */
    if (http2 && !json_is_boolean(http2)) {
        mk_err_set(err, MK_EINVAL, "http2: a boolean expected");
        goto fail;
    }
    lg->http2 = json_is_true(http2);
    if (!json_object_get(j, "gracefulStop"))
        lg->graceful_stop_ns = 30 * MK_LOADGEN_NS_PER_S;
    if (open && !lg->pre_allocated_vus)
        lg->pre_allocated_vus = json_object_get(j, "vus") ? lg->vus : 0;
    if (open && !lg->pre_allocated_vus) {
        mk_err_set(err, MK_EINVAL, "preAllocatedVUs: required for %s",
                   mk_loadgen_executor_name(lg->executor));
        goto fail;
    }
    json_t *stages = json_object_get(j, "stages");
    if (stages && (rc = parse_stages(c, stages, err)) != 0)
        goto fail;
    rc = MK_EINVAL;
    if (stages && ex != MK_LOADGEN_RAMPING_VUS && ex != MK_LOADGEN_RAMPING_ARRIVAL_RATE) {
        mk_err_set(err, MK_EINVAL, "stages: only for ramping-vus and ramping-arrival-rate");
        goto fail;
    }
    if ((ex == MK_LOADGEN_CONSTANT_VUS || ex == MK_LOADGEN_CONSTANT_ARRIVAL_RATE) &&
        !lg->duration_ns) {
        mk_err_set(err, MK_EINVAL, "duration: required for %s (e.g. \"30s\")",
                   mk_loadgen_executor_name(lg->executor));
        goto fail;
    }
    if (c->runners > 1 &&
        ((open ? lg->max_vus ? lg->max_vus : lg->pre_allocated_vus : lg->vus) < c->runners) &&
        ex != MK_LOADGEN_RAMPING_VUS) {
        mk_err_set(err, MK_EINVAL, "runners: %d runners need at least as many VUs", c->runners);
        goto fail;
    }
    rc = mk_loadgen_scenario_compile(scenario, env, &c->scenario, err);
    if (rc)
        goto fail;
    lg->scenario = c->scenario;
    rc = mk_perf_thresholds_parse(json_object_get(j, "thresholds"), &c->thresholds, err);
    if (rc)
        goto fail;
    /* let the generator check the rest (vus >= 1, rate > 0, ...) with the same messages */
    mk_loadgen_t *probe = NULL;
    rc = mk_loadgen_new(lg, &probe, err);
    mk_loadgen_free(probe);
    if (rc)
        goto fail;
    *out = c;
    return 0;
fail:
    mk_perf_config_free(c);
    return rc;
}

void mk_perf_config_free(mk_perf_config_t *c)
{
    if (!c)
        return;
    free(c->name);
    json_decref(c->raw);
    mk_loadgen_scenario_free(c->scenario);
    mk_perf_thresholds_free(c->thresholds);
    free(c);
}

static int share_int(int total, int n, int i)
{
    return total / n + (i < total % n);
}

void mk_perf_config_share(const mk_perf_config_t *c, int n, int i, mk_loadgen_config_t *out,
                          mk_loadgen_stage_t *stages)
{
    *out = c->lg;
    if (n <= 1)
        return;
    out->vus = share_int(c->lg.vus, n, i);
    out->iterations = c->lg.iterations / n + (i < c->lg.iterations % n);
    out->pre_allocated_vus = share_int(c->lg.pre_allocated_vus, n, i);
    out->max_vus = share_int(c->lg.max_vus, n, i);
    if (out->pre_allocated_vus < 1)
        out->pre_allocated_vus = 1;
    if (out->max_vus && out->max_vus < out->pre_allocated_vus)
        out->max_vus = out->pre_allocated_vus;
    out->rate = c->lg.rate / n;
    for (size_t k = 0; k < c->lg.nstages; k++) {
        stages[k] = c->lg.stages[k];
        stages[k].target = c->lg.stages[k].target / n;
    }
    out->stages = stages;
}

int mk_perf_check_targets(const mk_perf_config_t *c, const char *patterns, mk_err_t *err)
{
    if (!patterns || !*patterns)
        return 0;
    const char *hosts[64];
    size_t n = mk_loadgen_scenario_targets(c->scenario, hosts, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        char host[280];
        snprintf(host, sizeof host, "%s", hosts[i]);
        char *colon = strrchr(host, ':');
        char bare[280];
        snprintf(bare, sizeof bare, "%.*s", colon ? (int)(colon - host) : (int)strlen(host), host);
        bool ok = false;
        char *list = strdup(patterns), *save = NULL;
        if (!list)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        for (char *p = strtok_r(list, ", ", &save); p && !ok; p = strtok_r(NULL, ", ", &save))
            ok = fnmatch(p, host, 0) == 0 || fnmatch(p, bare, 0) == 0;
        free(list);
        if (!ok)
            return mk_err_set(err, MK_EFORBIDDEN, "target %s is not in PERF_ALLOWED_TARGETS (%s)",
                              host, patterns);
    }
    return 0;
}
