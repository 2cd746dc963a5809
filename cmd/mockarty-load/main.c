/* mockarty-load: runs one performance test from a config file (the body of POST
 * /api/v1/perf/run) on this machine and prints the result JSON. Exit status as k6's: 0 every
 * threshold passed, 99 a threshold failed, 105 interrupted (SIGINT/SIGTERM), 2 bad usage or
 * config, 1 the run could not start. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "perf/perf.h"

static const char usage[] =
    "usage: mockarty-load CONFIG.json [options]     (CONFIG '-' reads stdin)\n"
    "  -o, --output FILE       result JSON there instead of stdout\n"
    "      --report FILE       self-contained HTML report with plots\n"
    "      --snapshots FILE    one JSON line per second: the timeline point and the stats delta\n"
    "                          (histograms included), as a runner streams them\n"
    "  -t, --threads N         event-loop threads (overrides the config's \"threads\")\n"
    "      --allowed-targets P host patterns (default: $PERF_ALLOWED_TARGETS; empty = any)\n"
    "  -q, --quiet             no progress lines on stderr\n";

static mk_loadgen_t *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        mk_loadgen_stop(running);
}

typedef struct progress {
    mk_perf_config_t *cfg;
    json_t *timeline;
    FILE *snapshots;
    bool quiet;
    bool threshold_abort;
} progress_t;

static int on_second(const mk_loadgen_stats_t *d, const mk_loadgen_stats_t *t, void *arg)
{
    progress_t *p = arg;
    json_t *point = mk_perf_timeline_point(d);
    if (p->snapshots) {
        json_t *line = json_pack("{s:O,s:o}", "point", point, "delta", mk_loadgen_stats_to_json(d));
        json_dumpf(line, p->snapshots, JSON_COMPACT);
        fputc('\n', p->snapshots);
        fflush(p->snapshots);
        json_decref(line);
    }
    json_array_append_new(p->timeline, point);
    if (!p->quiet)
        fprintf(
            stderr,
            "%6.1fs  reqs %-9llu %8.0f/s  p95 %8.3f ms  p99 %8.3f ms  failed %-6llu vus %lld%s\n",
            d->t_s, (unsigned long long)t->reqs, d->interval_s > 0 ? d->reqs / d->interval_s : 0,
            mk_hdr_percentile(d->duration, 95) / 1000.0,
            mk_hdr_percentile(d->duration, 99) / 1000.0, (unsigned long long)t->failed,
            (long long)d->vus, d->behind ? "  (behind schedule)" : "");
    bool abort = false;
    mk_perf_thresholds_eval(p->cfg->thresholds, t, t->t_s, &abort);
    if (abort)
        p->threshold_abort = true;
    return abort;
}

static void iso_now(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0) {
        perror(path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"report", required_argument, NULL, 'R'},
                                         {"snapshots", required_argument, NULL, 'S'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"allowed-targets", required_argument, NULL, 'A'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *output = NULL, *report = NULL, *snapshots = NULL;
    const char *allowed = getenv("PERF_ALLOWED_TARGETS");
    int threads = 0, c;
    progress_t p = {0};
    while ((c = getopt_long(argc, argv, "o:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'R':
            report = optarg;
            break;
        case 'S':
            snapshots = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'A':
            allowed = optarg;
            break;
        case 'q':
            p.quiet = true;
            break;
        default:
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1) {
        fputs(usage, stderr);
        return 2;
    }
    const char *path = argv[optind];
    json_error_t je;
    json_t *doc = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &je) : json_load_file(path, 0, &je);
    if (!doc) {
        fprintf(stderr, "mockarty-load: %s: line %d: %s\n", path, je.line, je.text);
        return 2;
    }
    mk_err_t err = {0};
    mk_perf_config_t *cfg = NULL;
    int rc = mk_perf_config_parse(doc, &cfg, &err);
    json_decref(doc);
    if (rc == 0)
        rc = mk_perf_check_targets(cfg, allowed, &err);
    if (rc) {
        fprintf(stderr, "mockarty-load: %s\n", err.msg);
        mk_perf_config_free(cfg);
        return 2;
    }
    if (threads > 0)
        cfg->lg.threads = threads;
    /* one descriptor per VU: lift the soft limit to the hard one */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    p.cfg = cfg;
    p.timeline = json_array();
    if (snapshots && !(p.snapshots = fopen(snapshots, "w"))) {
        perror(snapshots);
        return 2;
    }
    cfg->lg.on_second = on_second;
    cfg->lg.arg = &p;
    mk_loadgen_t *lg = NULL;
    if ((rc = mk_loadgen_new(&cfg->lg, &lg, &err)) != 0) {
        fprintf(stderr, "mockarty-load: %s\n", err.msg);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    running = lg;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    char started[32], completed[32];
    iso_now(started, sizeof started);
    rc = mk_loadgen_run(lg, &err);
    iso_now(completed, sizeof completed);
    running = NULL;
    int status = 0;
    if (rc) {
        fprintf(stderr, "mockarty-load: %s\n", err.msg);
        status = 1;
    } else {
        mk_loadgen_summary_t sum;
        mk_loadgen_summary(lg, &sum);
        mk_perf_result_info_t info = {.started_at = started,
                                      .completed_at = completed,
                                      .timeline = p.timeline,
                                      .summary = &sum,
                                      .status = sum.stopped ? "stopped" : NULL};
        json_t *res = mk_perf_result_json(cfg, mk_loadgen_total(lg), &info);
        if (sum.aborted)
            json_object_set_new(res, "abortedBy", json_string("threshold"));
        bool passed = json_is_true(json_object_get(res, "thresholdsPassed"));
        status = sum.stopped ? 105 : passed ? 0 : 99;
        char *text = json_dumps(res, JSON_INDENT(2));
        if (output)
            write_text(output, text);
        else
            puts(text);
        free(text);
        if (report) {
            mk_buf_t html;
            mk_buf_init(&html, 0);
            mk_perf_report_html(res, &html);
            write_text(report, html.data);
            mk_buf_free(&html);
        }
        if (!p.quiet)
            fprintf(stderr, "mockarty-load: %llu requests, %.1f/s, thresholds %s%s\n",
                    (unsigned long long)mk_loadgen_total(lg)->reqs, sum.achieved_rate,
                    passed ? "passed" : "FAILED", sum.stopped ? " (stopped)" : "");
        json_decref(res);
    }
    if (p.snapshots)
        fclose(p.snapshots);
    json_decref(p.timeline);
    mk_loadgen_free(lg);
    mk_perf_config_free(cfg);
    return status;
}
