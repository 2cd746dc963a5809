/* perf tests: durations, k6 threshold parsing and evaluation (including abortOnFail), the run
 * config's validation and executor inference, load shares, target allow-lists, result JSON and
 * the HTML report. */
#include "perf/perf.h"
#include "testing/testing.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define S MK_LOADGEN_NS_PER_S

static void test_durations(void)
{
    struct {
        const char *in;
        int64_t ns;
    } ok[] = {{"30s", 30 * S},     {"1m30s", 90 * S}, {"500ms", S / 2}, {"2h", 7200 * S},
              {"1.5s", 3 * S / 2}, {"100us", 100000}, {"10", 10 * S},   {"1h2m3s", 3723 * S}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ns = -1;
        MK_CHECK_INT(mk_perf_parse_duration(ok[i].in, &ns, NULL), 0);
        MK_CHECK_INT(ns, ok[i].ns);
    }
    const char *bad[] = {"", "s", "10x", "-5s", "1m-3s", "abc", "31d", "9999h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns;
        mk_err_t err;
        MK_CHECK_INT(mk_perf_parse_duration(bad[i], &ns, &err), MK_EINVAL);
    }
}

static void test_threshold_parse(void)
{
    mk_perf_threshold_t t;
    mk_err_t err;
    MK_CHECK_INT(mk_perf_threshold_parse("http_req_duration", "p(95)<200", &t, &err), 0);
    MK_CHECK(t.pct == 95 && t.limit == 200);
    MK_CHECK_INT(mk_perf_threshold_parse("http_req_duration", " p(99.9) <= 1.5 ", &t, &err), 0);
    MK_CHECK(t.pct == 99.9 && t.limit == 1.5);
    MK_CHECK_INT(mk_perf_threshold_parse("http_req_failed", "rate<0.01", &t, &err), 0);
    MK_CHECK_INT(mk_perf_threshold_parse("http_reqs", "count>1000", &t, &err), 0);
    MK_CHECK_INT(mk_perf_threshold_parse("http_reqs", "rate>=50", &t, &err), 0);
    MK_CHECK_INT(mk_perf_threshold_parse("vus_max", "value==10", &t, &err), 0);
    struct {
        const char *metric, *expr, *want;
    } bad[] = {
        {"http_req_durations", "p(95)<200", "unknown metric"},
        {"http_req_duration{name:x}", "p(95)<200", "sub-metrics"},
        {"http_req_duration", "rate<0.01", "does not apply to trend"},
        {"http_req_failed", "p(95)<1", "does not apply to rate"},
        {"http_reqs", "avg<1", "does not apply to counter"},
        {"http_req_duration", "p(101)<1", "expected an aggregation"},
        {"http_req_duration", "p95<1", "expected an aggregation"},
        {"http_req_duration", "avg 100", "expected an operator"},
        {"http_req_duration", "avg<", "expected a number"},
        {"http_req_duration", "avg<1ms", "expected a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mk_err_clear(&err);
        MK_CHECK_INT(mk_perf_threshold_parse(bad[i].metric, bad[i].expr, &t, &err), MK_EINVAL);
        if (!strstr(err.msg, bad[i].want))
            printf("%s %s: %s\n", bad[i].metric, bad[i].expr, err.msg);
        MK_CHECK(strstr(err.msg, bad[i].want) != NULL);
    }
}

static void test_threshold_eval(void)
{
    mk_loadgen_stats_t *s = mk_loadgen_stats_new();
    for (int i = 1; i <= 1000; i++)
        mk_hdr_record(s->duration, (uint64_t)i * 1000); /* 1..1000 ms */
    s->reqs = 1000;
    s->failed = 20;
    json_t *j = json_loads("{\"http_req_duration\": [\"p(95)<1000\", \"avg<400\","
                           " {\"threshold\": \"max<900\", \"abortOnFail\": true,"
                           "  \"delayAbortEval\": \"10s\"}],"
                           " \"http_req_failed\": [\"rate<0.01\"], \"http_reqs\": \"count>=1000\"}",
                           0, NULL);
    mk_perf_thresholds_t *th = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_perf_thresholds_parse(j, &th, &err), 0);
    MK_CHECK_INT(th->n, 5);
    bool abort = true;
    /* p95 ~950 passes; avg 500.5 fails; max 1000 fails (abort, but not before 10 s);
     * rate 0.02 fails; count passes */
    MK_CHECK_INT(mk_perf_thresholds_eval(th, s, 5.0, &abort), 3);
    MK_CHECK(!abort);
    MK_CHECK(th->t[0].ok && fabs(th->t[0].value - 950) < 5);
    MK_CHECK(!th->t[1].ok && fabs(th->t[1].value - 500.5) < 0.01);
    MK_CHECK(!th->t[2].ok && th->t[2].abort_on_fail);
    MK_CHECK(!th->t[3].ok && fabs(th->t[3].value - 0.02) < 1e-9);
    MK_CHECK(th->t[4].ok);
    MK_CHECK_INT(mk_perf_thresholds_eval(th, s, 11.0, &abort), 3);
    MK_CHECK(abort);
    double v;
    MK_CHECK_INT(mk_perf_metric_value(s, 10.0, "http_reqs", "rate", &v, &err), 0);
    MK_CHECK(fabs(v - 100) < 1e-9);
    mk_perf_thresholds_free(th);
    json_decref(j);

    const char *bad[] = {"[]", "{\"http_reqs\": [5]}", "{\"http_reqs\": [{\"abortOnFail\": 1}]}",
                         "{\"http_reqs\": [{\"threshold\": \"count>1\", \"abortOnFail\": 1}]}",
                         "{\"nope\": [\"count>1\"]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = json_loads(bad[i], 0, NULL);
        MK_CHECK_INT(mk_perf_thresholds_parse(j, &th, &err), MK_EINVAL);
        MK_CHECK(th == NULL);
        json_decref(j);
    }
    mk_loadgen_stats_free(s);
}

static int parse(const char *json, mk_perf_config_t **c, mk_err_t *err)
{
    json_t *j = json_loads(json, 0, NULL);
    if (!j) {
        printf("bad test json: %s\n", json);
        return -100;
    }
    int rc = mk_perf_config_parse(j, c, err);
    json_decref(j);
    return rc;
}

#define REQ "\"scenario\":{\"requests\":[{\"url\":\"http://127.0.0.1:9/x\"}]}"

static void test_config(void)
{
    mk_perf_config_t *c = NULL;
    mk_err_t err;
    struct {
        const char *json;
        int executor;
    } ok[] = {
        {"{\"name\":\"a\",\"vus\":50,\"duration\":\"30s\"," REQ "}", MK_LOADGEN_CONSTANT_VUS},
        {"{\"vus\":5,\"iterations\":100," REQ "}", MK_LOADGEN_SHARED_ITERATIONS},
        {"{\"stages\":[{\"duration\":\"10s\",\"target\":20},{\"duration\":\"5s\",\"target\":0}]"
         "," REQ "}",
         MK_LOADGEN_RAMPING_VUS},
        {"{\"rate\":100,\"duration\":\"10s\",\"preAllocatedVUs\":10," REQ "}",
         MK_LOADGEN_CONSTANT_ARRIVAL_RATE},
        {"{\"startRate\":0,\"stages\":[{\"duration\":\"10s\",\"target\":50}],\"preAllocatedVUs\":5,"
         "\"maxVUs\":20," REQ "}",
         MK_LOADGEN_RAMPING_ARRIVAL_RATE},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int rc = parse(ok[i].json, &c, &err);
        if (rc)
            printf("ok[%zu]: %s\n", i, err.msg);
        MK_CHECK_INT(rc, 0);
        if (c)
            MK_CHECK_INT(c->lg.executor, ok[i].executor);
        mk_perf_config_free(c);
    }
    struct {
        const char *json, *want;
    } bad[] = {
        {"[]", "must be a JSON object"},
        {"{\"vus\":1,\"duration\":\"1s\",\"script\":\"export default ...\"}", "k6 JavaScript"},
        {"{\"vus\":1,\"duration\":\"1s\"}", "scenario: required"},
        {"{\"vus\":1,\"duration\":\"thirty\"," REQ "}", "duration: malformed duration"},
        {"{\"vus\":1," REQ "}", "duration: required"},
        {"{\"vus\":0,\"duration\":\"1s\"," REQ "}", "vus"},
        {"{\"vus\":-1,\"duration\":\"1s\"," REQ "}", "vus: an integer"},
        {"{\"vus\":1,\"duration\":\"1s\",\"executor\":\"per-vu\"," REQ "}", "executor: one of"},
        {"{\"stages\":[{\"duration\":\"0s\",\"target\":5}]," REQ "}", "add up to zero"},
        {"{\"stages\":[{\"target\":5}]," REQ "}", "stages[0]: duration: required"},
        {"{\"stages\":[{\"duration\":\"1s\",\"target\":-5}]," REQ "}", "stages[0].target"},
        {"{\"stages\":[{\"duration\":\"1s\",\"target\":0}]," REQ "}", "highest target"},
        {"{\"rate\":10,\"duration\":\"1s\"," REQ "}", "preAllocatedVUs: required"},
        {"{\"vus\":1,\"duration\":\"1s\",\"iterations\":0," REQ "}", "iterations"},
        {"{\"vus\":1,\"duration\":\"1s\",\"thresholds\":{\"latency\":[\"avg<1\"]}," REQ "}",
         "thresholds: latency: unknown metric"},
        {"{\"vus\":1,\"duration\":\"1s\",\"scenario\":{\"requests\":[{\"url\":\"x\"}]}}",
         "scenario.requests[0]: url"},
        {"{\"vus\":2,\"duration\":\"1s\",\"runners\":3," REQ "}", "runners"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mk_err_clear(&err);
        c = NULL;
        MK_CHECK(parse(bad[i].json, &c, &err) < 0);
        MK_CHECK(c == NULL);
        if (!strstr(err.msg, bad[i].want))
            printf("bad[%zu]: got '%s'\n", i, err.msg);
        MK_CHECK(strstr(err.msg, bad[i].want) != NULL);
    }
}

static void test_share_and_targets(void)
{
    mk_perf_config_t *c = NULL;
    mk_err_t err;
    MK_CHECK_INT(parse("{\"rate\":1000,\"stages\":[{\"duration\":\"1s\",\"target\":301}],"
                       "\"preAllocatedVUs\":10,\"maxVUs\":31,\"runners\":3," REQ "}",
                       &c, &err),
                 0);
    mk_loadgen_config_t parts[3];
    mk_loadgen_stage_t st[3][MK_LOADGEN_MAX_STAGES];
    double rate = 0, target = 0;
    int pre = 0, max = 0;
    for (int i = 0; i < 3; i++) {
        mk_perf_config_share(c, 3, i, &parts[i], st[i]);
        rate += parts[i].rate;
        target += parts[i].stages[0].target;
        pre += parts[i].pre_allocated_vus;
        max += parts[i].max_vus;
    }
    MK_CHECK(fabs(rate - 1000) < 1e-9 && fabs(target - 301) < 1e-9);
    MK_CHECK_INT(pre, 10);
    MK_CHECK_INT(max, 31);
    MK_CHECK(c->stages[0].target == 301); /* the config itself is untouched */
    MK_CHECK_INT(mk_perf_check_targets(c, NULL, &err), 0);
    MK_CHECK_INT(mk_perf_check_targets(c, "127.0.0.1:*", &err), 0);
    MK_CHECK_INT(mk_perf_check_targets(c, "*.svc.local, 127.0.0.1", &err), 0);
    MK_CHECK_INT(mk_perf_check_targets(c, "*.svc.local,10.*", &err), MK_EFORBIDDEN);
    MK_CHECK(strstr(err.msg, "127.0.0.1:9") != NULL);
    mk_perf_config_free(c);
}

static void test_result_and_report(void)
{
    mk_perf_config_t *c = NULL;
    mk_err_t err;
    MK_CHECK_INT(parse("{\"name\":\"check<out>\",\"vus\":2,\"duration\":\"2s\",\"tags\":[\"a\"],"
                       "\"thresholds\":{\"http_req_duration\":[\"p(95)<200\"],"
                       "\"http_req_failed\":[\"rate<0.01\"]}," REQ "}",
                       &c, &err),
                 0);
    mk_loadgen_stats_t *t = mk_loadgen_stats_new(), *d = mk_loadgen_stats_new();
    json_t *tl = json_array();
    for (int sec = 1; sec <= 2; sec++) {
        mk_loadgen_stats_reset(d);
        for (int i = 0; i < 100; i++)
            mk_hdr_record(d->duration, (uint64_t)(1000 + i * 10 * sec));
        d->reqs = 100;
        d->status[200] = 99;
        d->status[500] = 1;
        d->failed = 1;
        d->t_s = sec;
        d->interval_s = 1;
        d->vus = 2;
        d->vus_max = 2;
        json_array_append_new(tl, mk_perf_timeline_point(d));
        mk_loadgen_stats_merge(t, d);
    }
    t->vus_max = 2;
    mk_loadgen_stats_add_error(t, "dial: Connection <refused>", 4);
    mk_perf_result_info_t info = {.id = "r1", .timeline = tl, .started_at = "2026-01-01T00:00:00Z"};
    json_t *r = mk_perf_result_json(c, t, &info);
    MK_CHECK_STR(json_string_value(json_object_get(r, "status")), "failed"); /* rate 0.01 */
    MK_CHECK_INT(json_integer_value(json_object_get(r, "iterations")), 0);
    json_t *m = json_object_get(r, "metrics");
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "http_reqs"), "count")),
                 200);
    json_t *dur = json_object_get(m, "http_req_duration");
    MK_CHECK(json_object_get(dur, "p(95)") && json_object_get(dur, "med"));
    MK_CHECK(json_is_true(
        json_object_get(json_object_get(json_object_get(dur, "thresholds"), "p(95)<200"), "ok")));
    json_t *th = json_object_get(json_object_get(r, "thresholds"), "http_req_failed");
    MK_CHECK(json_is_false(json_object_get(json_object_get(th, "rate<0.01"), "ok")));
    MK_CHECK(json_is_false(json_object_get(r, "thresholdsPassed")));
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(r, "statusCodes"), "500")), 2);
    MK_CHECK_STR(json_string_value(
                     json_object_get(json_array_get(json_object_get(r, "errors"), 0), "message")),
                 "dial: Connection <refused>");
    MK_CHECK_INT(json_array_size(json_object_get(r, "timeline")), 2);
    mk_buf_t html;
    mk_buf_init(&html, 0);
    MK_CHECK_INT(mk_perf_report_html(r, &html), 0);
    MK_CHECK(strstr(html.data, "<svg") && strstr(html.data, "<polyline"));
    MK_CHECK(strstr(html.data, "check&lt;out&gt;") && !strstr(html.data, "check<out>"));
    MK_CHECK(strstr(html.data, "FAILED") && strstr(html.data, "Connection &lt;refused&gt;"));
    MK_CHECK(!strstr(html.data, "http://") && !strstr(html.data, "https://")); /* nothing fetched */
    mk_buf_free(&html);
    /* side by side: a result against itself, both columns, no change */
    mk_buf_init(&html, 0);
    MK_CHECK_INT(mk_perf_report_compare_html(r, r, &html), 0);
    const char *col = strstr(html.data, "class=\"cols\"");
    MK_CHECK(col && strstr(strstr(col, "<polyline") + 1, "<polyline"));
    MK_CHECK(strstr(html.data, "+0.0 %") != NULL);
    mk_buf_free(&html);
    json_decref(r);
    json_decref(tl);
    mk_loadgen_stats_free(t);
    mk_loadgen_stats_free(d);
    mk_perf_config_free(c);
}

/* Two runners' seconds merged: the total and each second equal what one generator recording
 * everything would hold; a bad delta changes nothing; a trailing 20 ms folds into its second. */
static void test_merge(void)
{
    mk_loadgen_stats_t *one = mk_loadgen_stats_new(), *d = mk_loadgen_stats_new();
    mk_perf_merge_t m;
    MK_CHECK_INT(mk_perf_merge_init(&m, NULL), 0);
    const double ts[] = {1.001, 2.002, 3.0, 3.02};
    for (int runner = 0; runner < 2; runner++) {
        for (int k = 0; k < 4; k++) {
            mk_loadgen_stats_reset(d);
            for (int i = 0; i < 100 + 37 * k + runner; i++) {
                uint64_t us = 1000 + (uint64_t)(i * 97 + runner * 5000 + k * 13);
                mk_hdr_record(d->duration, us);
                mk_hdr_record(one->duration, us);
                d->reqs++;
                one->reqs++;
            }
            d->status[200] = d->reqs;
            d->vus = d->vus_max = 5;
            d->t_s = ts[k] + runner * 0.01;
            d->interval_s = k == 3 ? 0.02 : 1;
            json_t *j = mk_loadgen_stats_to_json(d);
            MK_CHECK_INT(mk_perf_merge_add(&m, j, NULL), 0);
            json_decref(j);
        }
    }
    MK_CHECK_INT((int)m.sum->reqs, (int)one->reqs);
    MK_CHECK_INT((int)mk_hdr_count(m.sum->duration), (int)mk_hdr_count(one->duration));
    MK_CHECK_INT((int)mk_hdr_percentile(m.sum->duration, 99),
                 (int)mk_hdr_percentile(one->duration, 99));
    MK_CHECK_INT((int)mk_hdr_max(m.sum->duration), (int)mk_hdr_max(one->duration));
    MK_CHECK_INT((int)m.sum->status[200], (int)one->reqs);
    MK_CHECK_INT((int)m.sum->vus_max, 10); /* both runners' 5 VUs at once, not 8 seconds' sum */
    json_t *tl = mk_perf_merge_timeline(&m);
    MK_CHECK_INT((int)json_array_size(tl), 3);
    MK_CHECK_INT((int)json_integer_value(json_object_get(json_array_get(tl, 2), "reqs")),
                 (100 + 74) * 2 + 1 + (100 + 111) * 2 + 1);
    json_decref(tl);
    json_t *bad = json_pack("{s:f, s:i}", "t", 1.0, "reqs", -3);
    mk_err_t err;
    MK_CHECK_INT(mk_perf_merge_add(&m, bad, &err), MK_EINVAL);
    json_decref(bad);
    MK_CHECK_INT((int)m.sum->reqs, (int)one->reqs);
    mk_perf_merge_release(&m);
    mk_loadgen_stats_free(one);
    mk_loadgen_stats_free(d);
}

int main(void)
{
    MK_RUN(test_merge);
    MK_RUN(test_durations);
    MK_RUN(test_threshold_parse);
    MK_RUN(test_threshold_eval);
    MK_RUN(test_config);
    MK_RUN(test_share_and_targets);
    MK_RUN(test_result_and_report);
    return mk_testing_done();
}
