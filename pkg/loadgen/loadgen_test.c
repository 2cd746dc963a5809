/* Load generator tests: stage arithmetic, arrival schedules, scenario compilation and errors,
 * statistics round trips, and runs against a small in-process HTTP server that counts what it
 * served (keep-alive, chunked, Connection: close, slow, resetting, refused). */
#include "loadgen/loadgen.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S  MK_LOADGEN_NS_PER_S
#define MS (S / 1000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- arithmetic ---- */

static void test_stages(void)
{
    mk_loadgen_stage_t st[] = {{10 * S, 100}, {20 * S, 100}, {10 * S, 0}};
    MK_CHECK_INT(mk_loadgen_stages_duration(st, 3), 40 * S);
    MK_CHECK(fabs(mk_loadgen_stages_value(st, 3, 0, 0) - 0) < 1e-9);
    MK_CHECK(fabs(mk_loadgen_stages_value(st, 3, 0, 5 * S) - 50) < 1e-9);
    MK_CHECK(fabs(mk_loadgen_stages_value(st, 3, 0, 15 * S) - 100) < 1e-9);
    MK_CHECK(fabs(mk_loadgen_stages_value(st, 3, 0, 35 * S) - 50) < 1e-9);
    MK_CHECK(fabs(mk_loadgen_stages_value(st, 3, 0, 99 * S) - 0) < 1e-9);
    MK_CHECK(fabs(mk_loadgen_stages_value(st, 3, 20, 5 * S) - 60) < 1e-9); /* from startVUs */
    mk_loadgen_stage_t jump[] = {{0, 7}, {S, 7}};
    MK_CHECK(fabs(mk_loadgen_stages_value(jump, 2, 0, 0) - 7) < 1e-9);
}

static void test_constant_schedule(void)
{
    mk_loadgen_sched_t s;
    mk_loadgen_stage_t st[] = {{10 * S, 1000}};
    MK_CHECK_INT(mk_loadgen_sched_init(&s, 1000, st, 1, NULL), 0);
    MK_CHECK_INT(mk_loadgen_sched_total(&s), 10000);
    MK_CHECK_INT(mk_loadgen_sched_at(&s, 0), 0);
    MK_CHECK_INT(mk_loadgen_sched_at(&s, 1), MS);
    MK_CHECK_INT(mk_loadgen_sched_at(&s, 9999), 9999 * MS);
    MK_CHECK_INT(mk_loadgen_sched_at(&s, 10000), -1);
    MK_CHECK_INT(mk_loadgen_sched_due(&s, 0), 1);
    MK_CHECK_INT(mk_loadgen_sched_due(&s, MS - 1), 1);
    MK_CHECK_INT(mk_loadgen_sched_due(&s, S), 1001);
    MK_CHECK_INT(mk_loadgen_sched_due(&s, 100 * S), 10000);
    mk_err_t err;
    MK_CHECK_INT(mk_loadgen_sched_init(&s, -1, st, 1, &err), MK_EINVAL);
    MK_CHECK_INT(mk_loadgen_sched_init(&s, 1, st, 0, &err), MK_EINVAL);
}

static void test_ramping_schedule(void)
{
    /* 0 -> 100/s over 10 s (500 arrivals), 100/s for 10 s (1000), 100 -> 0 over 10 s (500) */
    mk_loadgen_sched_t s;
    mk_loadgen_stage_t st[] = {{10 * S, 100}, {10 * S, 100}, {10 * S, 0}};
    MK_CHECK_INT(mk_loadgen_sched_init(&s, 0, st, 3, NULL), 0);
    MK_CHECK_INT(mk_loadgen_sched_total(&s), 2000);
    /* in the ramp, N(t) = 5 t^2: arrival 125 at t = 5 s */
    MK_CHECK(llabs(mk_loadgen_sched_at(&s, 125) - 5 * S) < 1000);
    MK_CHECK(llabs(mk_loadgen_sched_at(&s, 500) - 10 * S) < 1000);
    MK_CHECK(llabs(mk_loadgen_sched_at(&s, 1000) - 15 * S) < 1000);
    /* ramp down: N = 1500 + 100 x - 5 x^2; at x = 5: 1875 */
    MK_CHECK(llabs(mk_loadgen_sched_at(&s, 1875) - 25 * S) < 1000);
    /* monotonic, and due() agrees with at() everywhere */
    int bad = 0;
    int64_t prev = -1;
    for (uint64_t i = 0; i < 2000; i++) {
        int64_t t = mk_loadgen_sched_at(&s, i);
        if (t < prev || t < 0)
            bad++;
        if (mk_loadgen_sched_due(&s, t) < i + 1)
            bad++;
        if (t > 0 && mk_loadgen_sched_due(&s, t - 1000) > i + 1)
            bad++;
        prev = t;
    }
    MK_CHECK_INT(bad, 0);
    MK_CHECK_INT(mk_loadgen_sched_at(&s, 2000), -1);
}

/* ---- scenario ---- */

static mk_loadgen_scenario_t *compile(const char *json, mk_err_t *err)
{
    json_t *j = json_loads(json, 0, NULL);
    mk_loadgen_scenario_t *sc = NULL;
    json_t *env = json_pack("{s:s}", "token", "t0k");
    mk_loadgen_scenario_compile(j, env, &sc, err);
    json_decref(j);
    json_decref(env);
    return sc;
}

static void test_scenario_errors(void)
{
    mk_err_t err;
    struct {
        const char *json, *want;
    } cases[] = {
        {"{}", "scenario.requests: a non-empty array"},
        {"{\"requests\":[{\"url\":\"ftp://x/\"}]}", "requests[0]: url: unsupported scheme"},
        {"{\"requests\":[{\"url\":\"https://[::1/\"}]}", "bad host"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1:99999/\"}]}", "bad port"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1/{{nope}}\"}]}", "unknown variable 'nope'"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1/{{$nope}}\"}]}", "unknown faker"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1/{{$fake.Nope}}\"}]}", "unknown faker 'Nope'"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1/x\",\"weight\":0}]}", "weight"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1/\",\"method\":\"G T\"}]}", "not an HTTP"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1/{{x\"}]}", "unterminated"},
        {"{\"requests\":[{\"url\":\"http://127.0.0.1/\",\"headers\":{\"X\":\"a\\r\\nB: c\"}}]}",
         "headers.X"},
        {"{\"requests\":[{\"url\":\"http://no-such-host.invalid/\"}]}", "cannot resolve"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_err_clear(&err);
        mk_loadgen_scenario_t *sc = compile(cases[i].json, &err);
        MK_CHECK(sc == NULL);
        if (!strstr(err.msg, cases[i].want))
            printf("case %zu: got '%s'\n", i, err.msg);
        MK_CHECK(strstr(err.msg, cases[i].want) != NULL);
        mk_loadgen_scenario_free(sc);
    }
}

/* ---- a counting HTTP server ---- */

typedef enum { SRV_FIXED, SRV_CHUNKED, SRV_CLOSE, SRV_RESET } srv_mode_t;

typedef struct srv {
    int lfd, port;
    srv_mode_t mode;
    int delay_ms;
    atomic_int served;
    atomic_int stop;
    pthread_t th;
    char last[2048]; /* the last request head, for checks */
    pthread_mutex_t mu;
} srv_t;

typedef struct {
    srv_t *s;
    int fd;
} cli_t;

static void *serve_conn(void *arg)
{
    cli_t *c = arg;
    srv_t *s = c->s;
    char buf[16384];
    size_t have = 0;
    for (;;) {
        char *e = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (!e) {
            ssize_t n = read(c->fd, buf + have, sizeof buf - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        size_t hl = (size_t)(e - buf) + 4, cl = 0;
        char *p = strcasestr(buf, "content-length:");
        if (p && p < e)
            cl = strtoul(p + 15, NULL, 10);
        while (have < hl + cl) {
            ssize_t n = read(c->fd, buf + have, sizeof buf - have);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        pthread_mutex_lock(&s->mu);
        snprintf(s->last, sizeof s->last, "%.*s", (int)(hl + cl), buf);
        pthread_mutex_unlock(&s->mu);
        memmove(buf, buf + hl + cl, have - hl - cl);
        have -= hl + cl;
        if (s->delay_ms)
            usleep((useconds_t)s->delay_ms * 1000);
        atomic_fetch_add(&s->served, 1);
        const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        if (s->mode == SRV_CHUNKED)
            r = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n";
        if (s->mode == SRV_CLOSE)
            r = "HTTP/1.0 503 Busy\r\n\r\nno content length, ends at close";
        if (s->mode == SRV_RESET) {
            struct linger lg = {1, 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        if (write(c->fd, r, strlen(r)) < 0 || s->mode == SRV_CLOSE)
            break;
    }
out:
    close(c->fd);
    free(c);
    return NULL;
}

static void *serve(void *arg)
{
    srv_t *s = arg;
    while (!atomic_load(&s->stop)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        cli_t *c = malloc(sizeof *c);
        c->s = s;
        c->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, c);
        pthread_detach(t);
    }
    return NULL;
}

static void srv_start(srv_t *s, srv_mode_t mode, int delay_ms)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->mode = mode;
    s->delay_ms = delay_ms;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->lfd, (struct sockaddr *)&a, sizeof a);
    listen(s->lfd, 512);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, serve, s);
}

static void srv_stop(srv_t *s)
{
    atomic_store(&s->stop, 1);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->lfd);
    usleep(50 * 1000); /* let detached connection threads notice their closed sockets */
}

static mk_loadgen_scenario_t *scenario_for(int port, const char *extra)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"requests\":[{\"url\":\"http://127.0.0.1:%d/items/{{$randomInt}}?t={{token}}\","
             "\"weight\":3%s},"
             "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:%d/orders\","
             "\"body\":{\"id\":\"{{$uuid}}\",\"sku\":\"A1\"}}]}",
             port, extra, port);
    mk_err_t err;
    mk_loadgen_scenario_t *sc = compile(json, &err);
    if (!sc)
        printf("compile: %s\n", err.msg);
    return sc;
}

typedef struct {
    int seconds;
    int abort_after;
    mk_loadgen_t *lg;
    double stop_at;
} cb_t;

static int on_second(const mk_loadgen_stats_t *d, const mk_loadgen_stats_t *t, void *arg)
{
    cb_t *cb = arg;
    (void)d;
    (void)t;
    cb->seconds++;
    return cb->abort_after && cb->seconds >= cb->abort_after;
}

static uint64_t sum_status(const mk_loadgen_stats_t *s)
{
    uint64_t n = 0;
    for (int i = 0; i < MK_LOADGEN_STATUS_MAX; i++)
        n += s->status[i];
    return n;
}

static void test_shared_iterations_counts_exactly(void)
{
    srv_t s;
    srv_start(&s, SRV_FIXED, 0);
    mk_loadgen_scenario_t *sc = scenario_for(s.port, "");
    mk_loadgen_config_t cfg = {.executor = MK_LOADGEN_SHARED_ITERATIONS,
                               .threads = 2,
                               .vus = 8,
                               .iterations = 3000,
                               .scenario = sc,
                               .seed = 42};
    mk_loadgen_t *lg = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, &err), 0);
    MK_CHECK_INT(mk_loadgen_run(lg, &err), 0);
    const mk_loadgen_stats_t *t = mk_loadgen_total(lg);
    MK_CHECK_INT(t->reqs, 3000);
    MK_CHECK_INT(t->iterations, 3000);
    MK_CHECK_INT(t->status[200], 3000);
    MK_CHECK_INT(sum_status(t), 3000);
    MK_CHECK_INT(t->failed, 0);
    MK_CHECK_INT(atomic_load(&s.served), 3000);
    MK_CHECK_INT(mk_hdr_count(t->duration), 3000);
    MK_CHECK(t->data_received >= 3000 * 43);
    MK_CHECK(t->data_sent > 3000 * 50);
    pthread_mutex_lock(&s.mu);
    MK_CHECK(strstr(s.last, "Host: 127.0.0.1:") != NULL);
    MK_CHECK(strstr(s.last, "{{") == NULL);
    pthread_mutex_unlock(&s.mu);
    mk_loadgen_free(lg);
    mk_loadgen_scenario_free(sc);
    srv_stop(&s);
}

static void test_chunked_and_close(void)
{
    srv_mode_t modes[] = {SRV_CHUNKED, SRV_CLOSE};
    int want[] = {201, 503};
    for (int m = 0; m < 2; m++) {
        srv_t s;
        srv_start(&s, modes[m], 0);
        mk_loadgen_scenario_t *sc = scenario_for(s.port, "");
        mk_loadgen_config_t cfg = {
            .executor = MK_LOADGEN_SHARED_ITERATIONS, .vus = 4, .iterations = 200, .scenario = sc};
        mk_loadgen_t *lg = NULL;
        MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
        MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
        const mk_loadgen_stats_t *t = mk_loadgen_total(lg);
        MK_CHECK_INT(t->reqs, 200);
        MK_CHECK_INT(t->status[want[m]], 200);
        MK_CHECK_INT(t->failed, want[m] >= 400 ? 200 : 0);
        MK_CHECK_INT(t->nerrors, 0);
        MK_CHECK_INT(atomic_load(&s.served), 200);
        mk_loadgen_free(lg);
        mk_loadgen_scenario_free(sc);
        srv_stop(&s);
    }
}

static void test_refused_and_reset_are_counted(void)
{
    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    int dead = ntohs(a.sin_port);
    close(fd);
    mk_loadgen_scenario_t *sc = scenario_for(dead, "");
    mk_loadgen_config_t cfg = {
        .executor = MK_LOADGEN_SHARED_ITERATIONS, .vus = 4, .iterations = 100, .scenario = sc};
    mk_loadgen_t *lg = NULL;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    const mk_loadgen_stats_t *t = mk_loadgen_total(lg);
    MK_CHECK_INT(t->reqs, 100);
    MK_CHECK_INT(t->failed, 100);
    MK_CHECK_INT(t->status[0], 100);
    MK_CHECK_INT(t->nerrors, 1);
    MK_CHECK(strstr(t->errors[0].msg, "refused") != NULL);
    MK_CHECK_INT(t->errors[0].count, 100);
    mk_loadgen_free(lg);
    mk_loadgen_scenario_free(sc);

    srv_t s;
    srv_start(&s, SRV_RESET, 0);
    sc = scenario_for(s.port, "");
    cfg.scenario = sc;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    t = mk_loadgen_total(lg);
    MK_CHECK_INT(t->reqs, 100);
    MK_CHECK_INT(t->failed, 100);
    MK_CHECK(t->nerrors >= 1);
    MK_CHECK(strstr(t->errors[0].msg, "reset") != NULL || strstr(t->errors[0].msg, "EOF"));
    mk_loadgen_free(lg);
    mk_loadgen_scenario_free(sc);
    srv_stop(&s);
}

static void test_timeout_and_stop(void)
{
    srv_t s;
    srv_start(&s, SRV_FIXED, 400);
    mk_loadgen_scenario_t *sc = scenario_for(s.port, "");
    mk_loadgen_config_t cfg = {.executor = MK_LOADGEN_CONSTANT_VUS,
                               .vus = 2,
                               .duration_ns = 1 * S,
                               .timeout_ns = 100 * MS,
                               .scenario = sc};
    mk_loadgen_t *lg = NULL;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    const mk_loadgen_stats_t *t = mk_loadgen_total(lg);
    MK_CHECK(t->reqs >= 10);
    MK_CHECK_INT(t->failed, t->reqs);
    MK_CHECK_INT(t->nerrors, 1);
    MK_CHECK_STR(t->errors[0].msg, "request timeout");
    mk_loadgen_free(lg);

    /* stop from the per-second callback's thread after 1 s of a 60 s run: back within a second */
    cb_t cb = {.abort_after = 1};
    cfg = (mk_loadgen_config_t){.executor = MK_LOADGEN_CONSTANT_VUS,
                                .vus = 4,
                                .duration_ns = 60 * S,
                                .scenario = sc,
                                .on_second = on_second,
                                .arg = &cb};
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
    double t0 = now_s();
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    double took = now_s() - t0;
    mk_loadgen_summary_t sum;
    mk_loadgen_summary(lg, &sum);
    MK_CHECK(sum.aborted);
    printf("aborted run returned after %.3f s\n", took);
    MK_CHECK(took < 2.0);
    MK_CHECK_INT(mk_loadgen_total(lg)->interrupted, 4);
    mk_loadgen_free(lg);
    mk_loadgen_scenario_free(sc);
    srv_stop(&s);
}

static void test_open_model_latency_from_schedule(void)
{
    /* 1 connection, 50 ms service, 40 arrivals/s: capacity 20/s, so arrival k waits for the k
     * before it and its latency is about (k + 1) * 50 ms - k * 25 ms. */
    srv_t s;
    srv_start(&s, SRV_FIXED, 50);
    mk_loadgen_scenario_t *sc = scenario_for(s.port, "");
    mk_loadgen_config_t cfg = {.executor = MK_LOADGEN_CONSTANT_ARRIVAL_RATE,
                               .rate = 40,
                               .duration_ns = 1 * S,
                               .pre_allocated_vus = 1,
                               .max_vus = 1,
                               .graceful_stop_ns = 5 * S,
                               .scenario = sc};
    mk_loadgen_t *lg = NULL;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    const mk_loadgen_stats_t *t = mk_loadgen_total(lg);
    mk_loadgen_summary_t sum;
    mk_loadgen_summary(lg, &sum);
    /* at 1 s, 40 were due and about 20 sent; the rest never went out */
    printf("open: reqs %llu dropped %llu max %.1f ms achieved %.1f/s\n",
           (unsigned long long)t->reqs, (unsigned long long)t->dropped,
           mk_hdr_max(t->duration) / 1000.0, sum.achieved_rate);
    MK_CHECK(t->reqs >= 18 && t->reqs <= 22);
    MK_CHECK_INT(t->reqs + t->dropped, 40);
    MK_CHECK(!sum.rate_kept);
    /* request k = reqs-1 waited for all before it: latency ~ (k+1)*50 - k*25 ms */
    double k = (double)t->reqs - 1, want = (k + 1) * 50 - k * 25;
    double got = mk_hdr_max(t->duration) / 1000.0;
    MK_CHECK(got > want * 0.85 && got < want * 1.3);
    MK_CHECK(got > 3 * 50); /* far more than the service time alone */
    mk_loadgen_free(lg);

    /* the same target with enough connections keeps the rate: latency is the service time */
    cfg.pre_allocated_vus = 2;
    cfg.max_vus = 8;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    t = mk_loadgen_total(lg);
    mk_loadgen_summary(lg, &sum);
    MK_CHECK_INT(t->reqs, 40);
    MK_CHECK_INT(t->dropped, 0);
    MK_CHECK(sum.rate_kept);
    MK_CHECK(mk_hdr_percentile(t->duration, 50) < 70 * 1000);

    mk_loadgen_free(lg);
    mk_loadgen_scenario_free(sc);
    srv_stop(&s);
}

static void test_ramping_arrival_rate(void)
{
    /* 0 -> 200/s over 1 s, then 200 -> 0 over 0.5 s: 100 + 50 arrivals, two threads */
    srv_t s;
    srv_start(&s, SRV_FIXED, 0);
    mk_loadgen_scenario_t *sc = scenario_for(s.port, "");
    mk_loadgen_stage_t st[] = {{1 * S, 200}, {S / 2, 0}};
    mk_loadgen_config_t cfg = {.executor = MK_LOADGEN_RAMPING_ARRIVAL_RATE,
                               .rate = 0,
                               .stages = st,
                               .nstages = 2,
                               .pre_allocated_vus = 4,
                               .max_vus = 16,
                               .threads = 2,
                               .scenario = sc};
    mk_loadgen_t *lg = NULL;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, NULL), 0);
    double t0 = now_s();
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    double took = now_s() - t0;
    const mk_loadgen_stats_t *t = mk_loadgen_total(lg);
    mk_loadgen_summary_t sum;
    mk_loadgen_summary(lg, &sum);
    MK_CHECK_INT(t->reqs, 150);
    MK_CHECK_INT(t->scheduled, 150);
    MK_CHECK_INT(t->dropped, 0);
    MK_CHECK_INT(atomic_load(&s.served), 150);
    MK_CHECK(sum.rate_kept);
    MK_CHECK(fabs(sum.target_rate - 100) < 1e-6); /* 150 over 1.5 s */
    MK_CHECK(took > 1.4 && took < 2.5);
    mk_loadgen_free(lg);
    mk_loadgen_scenario_free(sc);
    srv_stop(&s);
}

static void test_ramping_vus_and_validation(void)
{
    srv_t s;
    srv_start(&s, SRV_FIXED, 20);
    mk_loadgen_scenario_t *sc = scenario_for(s.port, "");
    mk_loadgen_stage_t st[] = {{1 * S, 4}, {1 * S, 0}};
    cb_t cb = {0};
    mk_loadgen_config_t cfg = {.executor = MK_LOADGEN_RAMPING_VUS,
                               .vus = 0,
                               .stages = st,
                               .nstages = 2,
                               .scenario = sc,
                               .on_second = on_second,
                               .arg = &cb};
    mk_loadgen_t *lg = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_loadgen_new(&cfg, &lg, &err), 0);
    MK_CHECK_INT(mk_loadgen_run(lg, NULL), 0);
    const mk_loadgen_stats_t *t = mk_loadgen_total(lg);
    /* 0->4 VUs over 1 s and back: 4 VU-seconds at 20 ms a request, about 200 requests */
    printf("ramping: %llu requests, vus_max %lld\n", (unsigned long long)t->reqs,
           (long long)t->vus_max);
    MK_CHECK(t->reqs > 150 && t->reqs < 230);
    MK_CHECK_INT(t->vus_max, 4);
    MK_CHECK(cb.seconds >= 2);
    mk_loadgen_free(lg);

    struct {
        mk_loadgen_config_t cfg;
        const char *want;
    } bad[] = {
        {{.executor = MK_LOADGEN_CONSTANT_VUS, .vus = 0, .duration_ns = S}, "vus"},
        {{.executor = MK_LOADGEN_CONSTANT_VUS, .vus = 1}, "duration"},
        {{.executor = MK_LOADGEN_SHARED_ITERATIONS, .vus = 1}, "iterations"},
        {{.executor = MK_LOADGEN_RAMPING_VUS}, "stages"},
        {{.executor = MK_LOADGEN_CONSTANT_ARRIVAL_RATE, .duration_ns = S, .pre_allocated_vus = 1},
         "rate"},
        {{.executor = MK_LOADGEN_CONSTANT_ARRIVAL_RATE, .rate = 5, .duration_ns = S}, "preAlloc"},
        {{.executor = MK_LOADGEN_CONSTANT_ARRIVAL_RATE,
          .rate = 5,
          .duration_ns = S,
          .pre_allocated_vus = 4,
          .max_vus = 2},
         "maxVUs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bad[i].cfg.scenario = sc;
        mk_err_clear(&err);
        MK_CHECK_INT(mk_loadgen_new(&bad[i].cfg, &lg, &err), MK_EINVAL);
        MK_CHECK(lg == NULL);
        MK_CHECK(strstr(err.msg, bad[i].want) != NULL);
    }
    mk_loadgen_scenario_free(sc);
    srv_stop(&s);
}

static void test_stats_json_roundtrip(void)
{
    mk_loadgen_stats_t *a = mk_loadgen_stats_new(), *b = mk_loadgen_stats_new();
    for (int i = 0; i < 1000; i++)
        mk_hdr_record(a->duration, (uint64_t)(i * 37 % 5000));
    a->reqs = 1000;
    a->failed = 3;
    a->status[200] = 997;
    a->status[0] = 3;
    mk_loadgen_stats_add_error(a, "dial: Connection refused", 3);
    for (int i = 0; i < 40; i++) {
        char m[32];
        snprintf(m, sizeof m, "e%d", i);
        mk_loadgen_stats_add_error(a, m, 1);
    }
    MK_CHECK_INT(a->nerrors, MK_LOADGEN_ERRORS_MAX);
    MK_CHECK_STR(a->errors[MK_LOADGEN_ERRORS_MAX - 1].msg, "other errors");
    MK_CHECK_INT(a->errors[MK_LOADGEN_ERRORS_MAX - 1].count, 40 - (MK_LOADGEN_ERRORS_MAX - 2));
    json_t *j = mk_loadgen_stats_to_json(a);
    mk_err_t err;
    MK_CHECK_INT(mk_loadgen_stats_from_json_add(b, j, &err), 0);
    MK_CHECK_INT(mk_loadgen_stats_from_json_add(b, j, &err), 0);
    MK_CHECK_INT(b->reqs, 2000);
    MK_CHECK_INT(b->status[200], 1994);
    MK_CHECK_INT(mk_hdr_count(b->duration), 2000);
    MK_CHECK_INT(mk_hdr_percentile(b->duration, 90), mk_hdr_percentile(a->duration, 90));
    MK_CHECK_INT(b->errors[0].count, 6);
    json_object_set_new(j, "reqs", json_string("x"));
    MK_CHECK_INT(mk_loadgen_stats_from_json_add(b, j, &err), MK_EINVAL);
    MK_CHECK_INT(b->reqs, 2000);
    json_decref(j);
    mk_loadgen_stats_free(a);
    mk_loadgen_stats_free(b);
}

int main(void)
{
    MK_RUN(test_stages);
    MK_RUN(test_constant_schedule);
    MK_RUN(test_ramping_schedule);
    MK_RUN(test_scenario_errors);
    MK_RUN(test_stats_json_roundtrip);
    MK_RUN(test_shared_iterations_counts_exactly);
    MK_RUN(test_chunked_and_close);
    MK_RUN(test_refused_and_reset_are_counted);
    MK_RUN(test_timeout_and_stop);
    MK_RUN(test_open_model_latency_from_schedule);
    MK_RUN(test_ramping_arrival_rate);
    MK_RUN(test_ramping_vus_and_validation);
    return mk_testing_done();
}
