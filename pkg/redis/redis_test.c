/* Tests of the hiredis wrapper against a real redis-server started here (testing/redis_server.h):
 * commands, pipelining, error replies, AUTH/SELECT, an outage and recovery on the same port, the
 * subscriber's reconnection, and concurrent use. */
#include "redis/redis.h"
#include "testing/redis_server.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static mk_testing_redis_t srv;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static mk_redis_t *connect_to(int port, const char *password, int db)
{
    mk_redis_opts_t o = {.host = "127.0.0.1", .port = port, .password = password, .db = db};
    mk_redis_t *r = NULL;
    mk_err_t err = {0};
    int rc = mk_redis_new(&o, &r, &err);
    MK_CHECK_INT(rc, 0);
    return r;
}

static void test_commands(void)
{
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    mk_err_t err = {0};
    mk_redis_reply_t *rep = NULL;
    const char *set[] = {"SET", "greeting", "hello"};
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 3, set), 0);
    MK_CHECK(rep != NULL && rep->type == MK_REDIS_STR);
    MK_CHECK_STR(rep ? rep->str : NULL, "OK");
    mk_redis_reply_free(rep);

    const char *get[] = {"GET", "greeting"};
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 2, get), 0);
    MK_CHECK_STR(rep ? rep->str : NULL, "hello");
    MK_CHECK_INT(rep ? rep->len : 0, 5);
    mk_redis_reply_free(rep);

    const char *missing[] = {"GET", "no-such-key"};
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 2, missing), 0);
    MK_CHECK(rep != NULL && rep->type == MK_REDIS_NIL);
    mk_redis_reply_free(rep);

    const char *incr[] = {"INCRBY", "counter", "41"};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 3, incr), 0);
    const char *incr1[] = {"INCR", "counter"};
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 2, incr1), 0);
    MK_CHECK(rep != NULL && rep->type == MK_REDIS_INT && rep->integer == 42);
    mk_redis_reply_free(rep);

    const char *rpush[] = {"RPUSH", "list", "a", "b", "c"};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 5, rpush), 0);
    const char *lrange[] = {"LRANGE", "list", "0", "-1"};
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 4, lrange), 0);
    MK_CHECK(rep != NULL && rep->type == MK_REDIS_ARR && rep->nelems == 3);
    if (rep != NULL && rep->nelems == 3)
        MK_CHECK_STR(rep->elems[2].str, "c");
    mk_redis_reply_free(rep);

    double lat = -1;
    MK_CHECK_INT(mk_redis_ping(r, &lat, &err), 0);
    MK_CHECK(lat > 0 && lat < 1000);

    /* Per-op latency over loopback, for the report. */
    const int n = 2000;
    double t0 = now_ms();
    for (int i = 0; i < n; i++)
        mk_redis_cmdv(r, NULL, &err, 2, get);
    double per = (now_ms() - t0) * 1000.0 / n;
    fprintf(stderr, "     GET round trip: %.1f us/op (%d ops)\n", per, n);
    mk_redis_free(r);
}

static void test_binary_safe(void)
{
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    mk_err_t err = {0};
    const char key[] = "bin\0key\r\n";
    const char val[] = "v\0a\r\nl\0";
    const char *set[] = {"SET", key, val};
    size_t setlen[] = {3, sizeof key - 1, sizeof val - 1};
    MK_CHECK_INT(mk_redis_cmd(r, 3, set, setlen, NULL, &err), 0);
    const char *get[] = {"GET", key};
    size_t getlen[] = {3, sizeof key - 1};
    mk_redis_reply_t *rep = NULL;
    MK_CHECK_INT(mk_redis_cmd(r, 2, get, getlen, &rep, &err), 0);
    MK_CHECK(rep != NULL && rep->type == MK_REDIS_STR && rep->len == sizeof val - 1 &&
             memcmp(rep->str, val, sizeof val - 1) == 0 && rep->str[rep->len] == '\0');
    mk_redis_reply_free(rep);
    /* The key truncated at its NUL is a different key. */
    const char *get2[] = {"GET", "bin"};
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 2, get2), 0);
    MK_CHECK(rep != NULL && rep->type == MK_REDIS_NIL);
    mk_redis_reply_free(rep);
    mk_redis_free(r);
}

static void test_pipeline(void)
{
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    mk_err_t err = {0};
    enum { N = 200 };
    static char keys[N][16], vals[N][16];
    static const char *argv[2 * N][3];
    mk_redis_cmdspec_t cmds[2 * N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "p%d", i);
        snprintf(vals[i], sizeof vals[i], "v%d", i * 7);
        argv[i][0] = "SET";
        argv[i][1] = keys[i];
        argv[i][2] = vals[i];
        cmds[i] = (mk_redis_cmdspec_t){3, argv[i], NULL};
        argv[N + i][0] = "GET";
        argv[N + i][1] = keys[i];
        cmds[N + i] = (mk_redis_cmdspec_t){2, argv[N + i], NULL};
    }
    mk_redis_reply_t *replies[2 * N];
    MK_CHECK_INT(mk_redis_pipeline(r, cmds, 2 * N, replies, &err), 0);
    int good = 0;
    for (int i = 0; i < N; i++)
        good += replies[N + i] != NULL && replies[N + i]->type == MK_REDIS_STR &&
                strcmp(replies[N + i]->str, vals[i]) == 0;
    MK_CHECK_INT(good, N);
    for (int i = 0; i < 2 * N; i++)
        mk_redis_reply_free(replies[i]);

    /* An error reply in the middle: MK_EIO, the others still answered. */
    const char *a[] = {"SET", "pe", "notanumber"};
    const char *b[] = {"INCR", "pe"};
    const char *c[] = {"GET", "pe"};
    mk_redis_cmdspec_t mixed[] = {{3, a, NULL}, {2, b, NULL}, {2, c, NULL}};
    mk_redis_reply_t *mr[3];
    MK_CHECK_INT(mk_redis_pipeline(r, mixed, 3, mr, &err), MK_EIO);
    MK_CHECK(strstr(err.cause, "not an integer") != NULL);
    MK_CHECK(mr[0] != NULL && mr[0]->type == MK_REDIS_STR);
    MK_CHECK(mr[1] != NULL && mr[1]->type == MK_REDIS_ERR);
    MK_CHECK(mr[2] != NULL && mr[2]->type == MK_REDIS_STR && strcmp(mr[2]->str, "notanumber") == 0);
    for (int i = 0; i < 3; i++)
        mk_redis_reply_free(mr[i]);
    /* Without replies. */
    MK_CHECK_INT(mk_redis_pipeline(r, cmds, N, NULL, &err), 0);
    mk_redis_free(r);
}

static void test_error_reply(void)
{
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    mk_err_t err = {0};
    const char *set[] = {"SET", "text", "abc"};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 3, set), 0);
    const char *incr[] = {"INCR", "text"};
    mk_redis_reply_t *rep = (mk_redis_reply_t *)1;
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 2, incr), MK_EIO);
    MK_CHECK(rep == NULL);
    MK_CHECK_INT(err.code, MK_EIO);
    MK_CHECK(strstr(err.cause, "ERR value is not an integer") == err.cause);
    MK_CHECK(strstr(err.msg, "not an integer") != NULL);
    const char *bogus[] = {"NOSUCHCOMMAND"};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 1, bogus), MK_EIO);
    MK_CHECK(strstr(err.cause, "unknown command") != NULL);
    /* The connection is still good after error replies. */
    MK_CHECK_INT(mk_redis_ping(r, NULL, &err), 0);
    mk_redis_free(r);
}

static void test_auth_and_db(void)
{
    mk_testing_redis_t sec;
    MK_CHECK_INT(mk_testing_redis_start_auth(&sec, "s3cret"), 0);
    mk_err_t err = {0};

    mk_redis_t *none = connect_to(sec.port, NULL, 0);
    MK_CHECK_INT(mk_redis_ping(none, NULL, &err), MK_EIO);
    MK_CHECK(strstr(err.cause, "NOAUTH") != NULL);
    mk_redis_free(none);

    mk_redis_t *bad = connect_to(sec.port, "wrong", 0);
    MK_CHECK_INT(mk_redis_ping(bad, NULL, &err), MK_EUNAVAIL);
    MK_CHECK(strstr(err.msg, "AUTH failed") != NULL);
    mk_redis_free(bad);

    mk_redis_t *db3 = connect_to(sec.port, "s3cret", 3);
    mk_redis_t *db0 = connect_to(sec.port, "s3cret", 0);
    const char *set[] = {"SET", "where", "three"};
    MK_CHECK_INT(mk_redis_cmdv(db3, NULL, &err, 3, set), 0);
    const char *get[] = {"GET", "where"};
    mk_redis_reply_t *rep = NULL;
    MK_CHECK_INT(mk_redis_cmdv(db3, &rep, &err, 2, get), 0);
    MK_CHECK_STR(rep ? rep->str : NULL, "three");
    mk_redis_reply_free(rep);
    MK_CHECK_INT(mk_redis_cmdv(db0, &rep, &err, 2, get), 0);
    MK_CHECK(rep != NULL && rep->type == MK_REDIS_NIL);
    mk_redis_reply_free(rep);
    mk_redis_free(db3);
    mk_redis_free(db0);
    mk_testing_redis_free(&sec);
}

static void test_invalid_opts(void)
{
    mk_redis_t *r = (mk_redis_t *)1;
    mk_err_t err = {0};
    mk_redis_opts_t o = {.host = "127.0.0.1", .port = 0};
    MK_CHECK_INT(mk_redis_new(&o, &r, &err), MK_EINVAL);
    MK_CHECK(r == NULL);
    MK_CHECK(strstr(err.msg, "port") != NULL);
    o = (mk_redis_opts_t){.host = NULL, .port = 6379};
    MK_CHECK_INT(mk_redis_new(&o, &r, &err), MK_EINVAL);
    mk_redis_free(NULL);
    mk_redis_sub_free(NULL);
}

/* A write to a replica (a master demoted by a failover) is unavailable, not an internal error. */
static void test_replica_is_unavailable(void)
{
    mk_testing_redis_t rep;
    MK_CHECK_INT(mk_testing_redis_start(&rep), 0);
    mk_redis_t *r = connect_to(rep.port, NULL, 0);
    mk_err_t err = {0};
    char port[16];
    snprintf(port, sizeof port, "%d", srv.port);
    const char *replicaof[] = {"REPLICAOF", "127.0.0.1", port};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 3, replicaof), 0);
    const char *set[] = {"SET", "k", "v"};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 3, set), MK_EUNAVAIL);
    MK_CHECK(strncmp(err.cause, "READONLY", 8) == 0);
    mk_redis_free(r);
    mk_testing_redis_free(&rep);
}

/* Sentinel settings: a malformed list is refused at creation; sentinels that do not answer leave
 * no master known, and calls fail fast saying so. */
static void test_sentinel_unreachable(void)
{
    mk_redis_t *r = NULL;
    mk_err_t err = {0};
    mk_redis_opts_t o = {.sentinels = "127.0.0.1", .master_name = "mk"};
    MK_CHECK_INT(mk_redis_new(&o, &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "REPO_REDIS_SENTINELS") != NULL);
    o.sentinels = "127.0.0.1:1, [::1]:2";
    MK_CHECK_INT(mk_redis_new(&o, &r, &err), 0);
    mk_redis_sentinel_t *s = NULL;
    MK_CHECK_INT(mk_redis_sentinel_open(&o, &s, &err), 0);
    mk_redis_sentinel_info_t in;
    mk_redis_sentinel_info(s, &in);
    MK_CHECK(!in.known && !in.sentinels_up && strstr(in.error, "\"mk\"") != NULL);
    double t0 = now_ms();
    MK_CHECK_INT(mk_redis_ping(r, NULL, &err), MK_EUNAVAIL);
    MK_CHECK(now_ms() - t0 < 200);
    MK_CHECK(strstr(err.msg, "master \"mk\" unknown") != NULL);
    mk_redis_sentinel_close(s);
    mk_redis_free(r);
}

/* A server that is down from the start: creation succeeds, calls fail fast and name the address. */
static void test_down_at_start(void)
{
    mk_testing_redis_t gone;
    MK_CHECK_INT(mk_testing_redis_start(&gone), 0);
    int port = gone.port;
    mk_testing_redis_free(&gone);
    mk_redis_t *r = connect_to(port, NULL, 0);
    mk_err_t err = {0};
    char want[64];
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: connection refused", port);
    for (int i = 0; i < 5; i++) {
        double t0 = now_ms();
        MK_CHECK_INT(mk_redis_ping(r, NULL, &err), MK_EUNAVAIL);
        MK_CHECK(now_ms() - t0 < 50);
        MK_CHECK_STR(err.msg, want);
    }
    mk_redis_free(r);
}

static void test_outage_and_recovery(void)
{
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    mk_err_t err = {0};
    const char *set[] = {"SET", "before", "1"};
    MK_CHECK_INT(mk_redis_cmdv(r, NULL, &err, 3, set), 0);

    MK_CHECK_INT(mk_testing_redis_stop(&srv), 0);
    double worst = 0;
    for (int i = 0; i < 50; i++) {
        double t0 = now_ms();
        int rc = mk_redis_cmdv(r, NULL, &err, 3, set);
        double took = now_ms() - t0;
        if (took > worst)
            worst = took;
        MK_CHECK_INT(rc, MK_EUNAVAIL);
        sleep_ms(2);
    }
    MK_CHECK(worst < 50);
    MK_CHECK(strstr(err.msg, "127.0.0.1") != NULL);
    fprintf(stderr, "     while down: slowest failing call %.2f ms (%s)\n", worst, err.msg);

    MK_CHECK_INT(mk_testing_redis_restart(&srv), 0);
    /* Each slot waits at most 100 ms before trying again. */
    int rc = -1;
    double t0 = now_ms();
    while (now_ms() - t0 < 2000) {
        rc = mk_redis_cmdv(r, NULL, &err, 3, set);
        if (rc == 0)
            break;
        sleep_ms(10);
    }
    MK_CHECK_INT(rc, 0);
    fprintf(stderr, "     recovered %.0f ms after restart\n", now_ms() - t0);
    /* And stays good, with the data the server now holds (nothing persisted). */
    const char *get[] = {"GET", "before"};
    mk_redis_reply_t *rep = NULL;
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 2, get), 0);
    MK_CHECK_STR(rep ? rep->str : NULL, "1");
    mk_redis_reply_free(rep);
    mk_redis_free(r);
}

/* A stale pooled connection after a quick restart is replaced before use, not reported. */
static void test_restart_between_calls(void)
{
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    mk_err_t err = {0};
    MK_CHECK_INT(mk_redis_ping(r, NULL, &err), 0);
    MK_CHECK_INT(mk_testing_redis_restart(&srv), 0);
    sleep_ms(20);
    MK_CHECK_INT(mk_redis_ping(r, NULL, &err), 0);
    mk_redis_free(r);
}

/* A server that accepts connections and never answers: the call times out. */
static void test_timeout(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    MK_CHECK_INT(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    MK_CHECK_INT(listen(lfd, 16), 0);
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    mk_redis_opts_t o = {.host = "127.0.0.1", .port = ntohs(sa.sin_port), .timeout_ms = 150};
    mk_redis_t *r = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_redis_new(&o, &r, &err), 0);
    double t0 = now_ms();
    MK_CHECK_INT(mk_redis_ping(r, NULL, &err), MK_EUNAVAIL);
    double took = now_ms() - t0;
    MK_CHECK(took >= 140 && took < 1000);
    MK_CHECK(strstr(err.msg, "timed out after 150 ms") != NULL);
    mk_redis_free(r);
    close(lfd);
}

typedef struct sub_state {
    pthread_mutex_t mu;
    int connects;
    int messages;
    char last[64];
    size_t last_len;
} sub_state_t;

static void on_msg(void *ud, const char *msg, size_t len)
{
    sub_state_t *st = ud;
    pthread_mutex_lock(&st->mu);
    st->messages++;
    st->last_len = len < sizeof st->last ? len : sizeof st->last;
    memcpy(st->last, msg, st->last_len);
    pthread_mutex_unlock(&st->mu);
}

static void on_conn(void *ud)
{
    sub_state_t *st = ud;
    pthread_mutex_lock(&st->mu);
    st->connects++;
    pthread_mutex_unlock(&st->mu);
}

static int sub_get(sub_state_t *st, int which)
{
    pthread_mutex_lock(&st->mu);
    int v = which == 0 ? st->connects : st->messages;
    pthread_mutex_unlock(&st->mu);
    return v;
}

static bool wait_for(sub_state_t *st, int which, int want, int ms)
{
    double t0 = now_ms();
    while (now_ms() - t0 < ms) {
        if (sub_get(st, which) >= want)
            return true;
        sleep_ms(5);
    }
    return false;
}

static void publish(mk_redis_t *r, const char *msg, size_t len)
{
    const char *argv[] = {"PUBLISH", "changes", msg};
    size_t lens[] = {7, 7, len};
    mk_err_t err = {0};
    MK_CHECK_INT(mk_redis_cmd(r, 3, argv, lens, NULL, &err), 0);
}

static void test_subscriber(void)
{
    sub_state_t st = {.mu = PTHREAD_MUTEX_INITIALIZER};
    mk_redis_opts_t o = {.host = "127.0.0.1", .port = srv.port};
    mk_redis_sub_t *sub = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_redis_subscribe(&o, "changes", on_msg, on_conn, &st, &sub, &err), 0);
    MK_CHECK(wait_for(&st, 0, 1, 2000));
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    publish(r, "one", 3);
    publish(r, "t\0o", 3);
    MK_CHECK(wait_for(&st, 1, 2, 2000));
    pthread_mutex_lock(&st.mu);
    MK_CHECK(st.last_len == 3 && memcmp(st.last, "t\0o", 3) == 0);
    pthread_mutex_unlock(&st.mu);

    /* Restart: the subscriber reconnects, resubscribes and says so. */
    MK_CHECK_INT(mk_testing_redis_stop(&srv), 0);
    sleep_ms(300);
    MK_CHECK_INT(sub_get(&st, 0), 1);
    MK_CHECK_INT(mk_testing_redis_restart(&srv), 0);
    MK_CHECK(wait_for(&st, 0, 2, 6000));
    fprintf(stderr, "     subscriber connects: %d\n", sub_get(&st, 0));
    /* The publisher's pooled connection recovers too (at most one failed call per slot). */
    const char *argv[] = {"PUBLISH", "changes", "three"};
    int rc = -1;
    for (int i = 0; i < 40 && rc != 0; i++) {
        rc = mk_redis_cmdv(r, NULL, &err, 3, argv);
        if (rc != 0)
            sleep_ms(10);
    }
    MK_CHECK_INT(rc, 0);
    MK_CHECK(wait_for(&st, 1, 3, 2000));
    pthread_mutex_lock(&st.mu);
    MK_CHECK(st.last_len == 5 && memcmp(st.last, "three", 5) == 0);
    pthread_mutex_unlock(&st.mu);

    double t0 = now_ms();
    mk_redis_sub_free(sub);
    MK_CHECK(now_ms() - t0 < 100);
    mk_redis_free(r);
}

/* Freeing while the subscriber is backing off against a dead server returns at once. */
static void test_subscriber_stop_while_down(void)
{
    mk_testing_redis_t gone;
    MK_CHECK_INT(mk_testing_redis_start(&gone), 0);
    int port = gone.port;
    mk_testing_redis_free(&gone);
    sub_state_t st = {.mu = PTHREAD_MUTEX_INITIALIZER};
    mk_redis_opts_t o = {.host = "127.0.0.1", .port = port};
    mk_redis_sub_t *sub = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_redis_subscribe(&o, "c", on_msg, on_conn, &st, &sub, &err), 0);
    sleep_ms(700); /* several backoff steps */
    double t0 = now_ms();
    mk_redis_sub_free(sub);
    MK_CHECK(now_ms() - t0 < 100);
    MK_CHECK_INT(st.connects, 0);
}

typedef struct worker {
    mk_redis_t *r;
    int id;
    int failures;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    mk_err_t err = {0};
    char key[32], val[32];
    for (int i = 0; i < 1000; i++) {
        const char *incr[] = {"INCR", "shared-counter"};
        if (mk_redis_cmdv(w->r, NULL, &err, 2, incr) != 0)
            w->failures++;
        snprintf(key, sizeof key, "w%d", w->id);
        snprintf(val, sizeof val, "%d", i);
        const char *set[] = {"SET", key, val};
        const char *get[] = {"GET", key};
        mk_redis_reply_t *rep = NULL;
        if (mk_redis_cmdv(w->r, NULL, &err, 3, set) != 0 ||
            mk_redis_cmdv(w->r, &rep, &err, 2, get) != 0 || rep->type != MK_REDIS_STR ||
            strcmp(rep->str, val) != 0)
            w->failures++;
        mk_redis_reply_free(rep);
    }
    return NULL;
}

static void test_concurrent(void)
{
    mk_redis_t *r = connect_to(srv.port, NULL, 0);
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){r, i, 0};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        MK_CHECK_INT(w[i].failures, 0);
    }
    mk_err_t err = {0};
    const char *get[] = {"GET", "shared-counter"};
    mk_redis_reply_t *rep = NULL;
    MK_CHECK_INT(mk_redis_cmdv(r, &rep, &err, 2, get), 0);
    MK_CHECK_STR(rep ? rep->str : NULL, "4000");
    mk_redis_reply_free(rep);
    mk_redis_free(r);
}

int main(void)
{
    if (mk_testing_redis_start(&srv) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    MK_RUN(test_commands);
    MK_RUN(test_binary_safe);
    MK_RUN(test_pipeline);
    MK_RUN(test_error_reply);
    MK_RUN(test_auth_and_db);
    MK_RUN(test_invalid_opts);
    MK_RUN(test_replica_is_unavailable);
    MK_RUN(test_sentinel_unreachable);
    MK_RUN(test_down_at_start);
    MK_RUN(test_timeout);
    MK_RUN(test_restart_between_calls);
    MK_RUN(test_outage_and_recovery);
    MK_RUN(test_subscriber);
    MK_RUN(test_subscriber_stop_while_down);
    MK_RUN(test_concurrent);
    mk_testing_redis_free(&srv);
    return mk_testing_done();
}
