/* mockarty-load: runs one performance test from a config file (the body of POST
 * /api/v1/perf/run) on this machine and prints the result JSON. Exit status as k6's: 0 every
 * threshold passed, 99 a threshold failed, 105 interrupted (SIGINT/SIGTERM), 2 bad usage or
 * config, 1 the run could not start.
 *
 * --runner I/N runs only runner I's share of the load, as a distributed run does; --merge adds
 * the per-second deltas several such runs wrote (--snapshots) into one result, the
 * coordinator's part, so a split run can be checked from the command line. */
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
    "      --runner I/N        run only runner I's share (0 <= I < N) of the load\n"
    "      --merge FILE...     no run: merge the --snapshots files of several runners into one\n"
    "                          result (thresholds evaluated on the merged totals)\n"
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
    bool empty_tail = d->interval_s < 0.05 && d->reqs == 0 && d->nerrors == 0;
    json_t *point = mk_perf_timeline_point(d);
    if (p->snapshots) {
        json_t *line = json_pack("{s:O,s:o}", "point", point, "delta", mk_loadgen_stats_to_json(d));
        json_dumpf(line, p->snapshots, JSON_COMPACT);
        fputc('\n', p->snapshots);
        fflush(p->snapshots);
        json_decref(line);
    }
    /* the last interval can be a sliver after the final tick: nothing to plot or print */
    if (empty_tail)
        json_decref(point);
    else
        json_array_append_new(p->timeline, point);
    if (!p->quiet && !empty_tail)
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

/* Adds line k of every snapshot file into one delta per second, then the totals. */
static int merge_files(mk_perf_config_t *cfg, char **files, int nfiles, mk_loadgen_stats_t *total,
                       json_t *timeline)
{
    FILE **f = calloc((size_t)nfiles, sizeof *f);
    mk_loadgen_stats_t *sec = mk_loadgen_stats_new();
    int rc = 0, open_files = 0;
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i < nfiles; i++) {
        if (!(f[i] = fopen(files[i], "r"))) {
            perror(files[i]);
            rc = -1;
            goto out;
        }
        open_files++;
    }
    for (;;) {
        bool any = false;
        mk_loadgen_stats_reset(sec);
        for (int i = 0; i < nfiles; i++) {
            if (getline(&line, &cap, f[i]) <= 0)
                continue;
            json_t *j = json_loads(line, 0, NULL);
            mk_err_t err = {0};
            if (!j || mk_loadgen_stats_from_json_add(sec, json_object_get(j, "delta"), &err)) {
                fprintf(stderr, "mockarty-load: %s: bad snapshot line: %s\n", files[i], err.msg);
                json_decref(j);
                rc = -1;
                goto out;
            }
            json_decref(j);
            any = true;
        }
        if (!any)
            break;
        json_array_append_new(timeline, mk_perf_timeline_point(sec));
        int64_t vmax = total->vus_max;
        mk_loadgen_stats_merge(total, sec);
        total->vus = sec->vus;
        total->vus_max = sec->vus_max > vmax ? sec->vus_max : vmax;
    }
    (void)cfg;
out:
    for (int i = 0; i < open_files; i++)
        fclose(f[i]);
    free(f);
    free(line);
    mk_loadgen_stats_free(sec);
    return rc;
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
                                         {"runner", required_argument, NULL, 'r'},
                                         {"merge", no_argument, NULL, 'M'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *output = NULL, *report = NULL, *snapshots = NULL;
    bool merge = false;
    int runner = 0, runners = 1;
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
        case 'r':
            if (sscanf(optarg, "%d/%d", &runner, &runners) != 2 || runners < 1 || runner < 0 ||
                runner >= runners) {
                fprintf(stderr, "mockarty-load: --runner: I/N with 0 <= I < N expected\n");
                return 2;
            }
            break;
        case 'M':
            merge = true;
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
    if (merge ? optind >= argc - 1 : optind != argc - 1) {
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
    if (merge) {
        mk_loadgen_stats_t *total = mk_loadgen_stats_new();
        json_t *timeline = json_array();
        rc = merge_files(cfg, argv + optind + 1, argc - optind - 1, total, timeline);
        if (rc == 0) {
            mk_perf_result_info_t info = {.timeline = timeline};
            json_t *res = mk_perf_result_json(cfg, total, &info);
            char *text = json_dumps(res, JSON_INDENT(2));
            if (output)
                write_text(output, text);
            else
                puts(text);
            free(text);
            rc = json_is_true(json_object_get(res, "thresholdsPassed")) ? 0 : 99;
            json_decref(res);
        } else {
            rc = 2;
        }
        json_decref(timeline);
        mk_loadgen_stats_free(total);
        mk_perf_config_free(cfg);
        return rc;
    }
    mk_loadgen_stage_t shared_stages[MK_LOADGEN_MAX_STAGES];
    if (runners > 1) {
        mk_loadgen_config_t share;
        mk_perf_config_share(cfg, runners, runner, &share, shared_stages);
        cfg->lg = share;
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
