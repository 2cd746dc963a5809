/* Tests of the asynchronous connection on an event loop of our own, against a real redis-server:
 * pipelined replies in order, error replies, AUTH, pending commands at free, fail-fast while the
 * server is down and the background reconnection once it is back. */
#include "redis/redis.h"
#include "testing/redis_server.h"
#include "testing/testing.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static mk_testing_redis_t srv;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct result {
    int calls;
    int rc;
    long long integer;
    char str[128];
    char msg[600];
} result_t;

static void on_result(void *ud, int rc, const mk_redis_reply_t *reply, const mk_err_t *err)
{
    result_t *r = ud;
    r->calls++;
    r->rc = rc;
    if (rc != 0)
        snprintf(r->msg, sizeof r->msg, "%s", err->msg);
    if (reply != NULL && reply->type == MK_REDIS_INT)
        r->integer = reply->integer;
    if (reply != NULL && reply->str != NULL)
        snprintf(r->str, sizeof r->str, "%.*s", (int)reply->len, reply->str);
}

static mk_redis_async_t *open_async(mk_httpd_loop_t *loop, int port, const char *password)
{
    mk_redis_opts_t o = {.host = "127.0.0.1", .port = port, .password = password};
    mk_redis_async_t *a = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_redis_async_new(&o, loop, &a, &err), 0);
    return a;
}

/* Turns the loop until *calls reaches want or ms pass; true when reached. */
static bool run_until(mk_httpd_loop_t *loop, const int *calls, int want, double ms)
{
    double end = now_ms() + ms;
    while (*calls < want && now_ms() < end)
        mk_httpd_loop_run(loop, 10);
    return *calls >= want;
}

static int cmd(mk_redis_async_t *a, result_t *r, int argc, const char *const *argv)
{
    mk_err_t err = {0};
    int rc = mk_redis_async_cmd(a, argc, argv, NULL, on_result, r, &err);
    if (rc != 0)
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
    return rc;
}

static void test_pipelined_in_order(void)
{
    mk_httpd_loop_t *loop = mk_httpd_loop_new();
    mk_redis_async_t *a = open_async(loop, srv.port, NULL);
    /* Queued while still connecting: they go out once connected, in order, in one write. */
    enum { N = 200 };
    static result_t res[N];
    static int done;
    memset(res, 0, sizeof res);
    const char *del[] = {"DEL", "async:n"};
    result_t d = {0};
    MK_CHECK_INT(cmd(a, &d, 2, del), 0);
    const char *incr[] = {"INCR", "async:n"};
    for (int i = 0; i < N; i++)
        MK_CHECK_INT(cmd(a, &res[i], 2, incr), 0);
    MK_CHECK_INT(res[0].calls, 0); /* never from inside the call */
    done = 0;
    double end = now_ms() + 3000;
    while (now_ms() < end) {
        done = 0;
        for (int i = 0; i < N; i++)
            done += res[i].calls;
        if (done == N)
            break;
        mk_httpd_loop_run(loop, 10);
    }
    MK_CHECK_INT(done, N);
    bool in_order = true;
    for (int i = 0; i < N; i++)
        in_order = in_order && res[i].calls == 1 && res[i].rc == 0 && res[i].integer == i + 1;
    MK_CHECK(in_order);
    MK_CHECK(mk_redis_async_up(a));

    /* An error reply is MK_EIO with the server's text. */
    const char *set[] = {"SET", "async:s", "text"};
    const char *bad[] = {"INCR", "async:s"};
    result_t s = {0}, b = {0};
    MK_CHECK_INT(cmd(a, &s, 3, set), 0);
    MK_CHECK_INT(cmd(a, &b, 2, bad), 0);
    MK_CHECK(run_until(loop, &b.calls, 1, 2000));
    MK_CHECK_INT(b.rc, MK_EIO);
    MK_CHECK(strstr(b.msg, "not an integer") != NULL);
    MK_CHECK_STR(s.str, "OK");

    /* Commands still in flight when the connection is freed are answered MK_EUNAVAIL. */
    result_t p = {0};
    MK_CHECK_INT(cmd(a, &p, 2, incr), 0);
    mk_redis_async_free(a);
    MK_CHECK_INT(p.calls, 1);
    MK_CHECK_INT(p.rc, MK_EUNAVAIL);
    mk_httpd_loop_free(loop);
}

static void test_outage_and_reconnect(void)
{
    mk_httpd_loop_t *loop = mk_httpd_loop_new();
    mk_redis_async_t *a = open_async(loop, srv.port, NULL);
    const char *ping[] = {"PING"};
    result_t r = {0};
    MK_CHECK_INT(cmd(a, &r, 1, ping), 0);
    MK_CHECK(run_until(loop, &r.calls, 1, 2000));
    MK_CHECK_STR(r.str, "PONG");

    MK_CHECK_INT(mk_testing_redis_stop(&srv), 0);
    /* The loop sees the connection close; then commands fail at once, naming the server. */
    double end = now_ms() + 2000;
    int rc = 0;
    result_t f = {0};
    while (now_ms() < end) {
        mk_httpd_loop_run(loop, 10);
        memset(&f, 0, sizeof f);
        rc = cmd(a, &f, 1, ping);
        if (rc != 0)
            break;
        MK_CHECK(run_until(loop, &f.calls, 1, 2000));
        if (f.rc == MK_EUNAVAIL)
            continue; /* in flight when it closed: answered unavailable */
    }
    MK_CHECK_INT(rc, MK_EUNAVAIL);
    char port[16];
    snprintf(port, sizeof port, ":%d", srv.port);
    MK_CHECK(strstr(f.msg, port) != NULL);
    double t0 = now_ms();
    for (int i = 0; i < 1000; i++)
        cmd(a, &f, 1, ping);
    MK_CHECK(now_ms() - t0 < 100); /* 1,000 refusals without waiting on anything */
    MK_CHECK_INT(f.calls, 0);
    MK_CHECK(!mk_redis_async_up(a));

    /* Back: the timer reconnects in the background (backoff at most 1 s). */
    MK_CHECK_INT(mk_testing_redis_restart(&srv), 0);
    end = now_ms() + 3000;
    while (!mk_redis_async_up(a) && now_ms() < end)
        mk_httpd_loop_run(loop, 10);
    MK_CHECK(mk_redis_async_up(a));
    memset(&r, 0, sizeof r);
    MK_CHECK_INT(cmd(a, &r, 1, ping), 0);
    MK_CHECK(run_until(loop, &r.calls, 1, 2000));
    MK_CHECK_INT(r.rc, 0);
    mk_redis_async_free(a);
    mk_httpd_loop_free(loop);
}

static void test_auth(void)
{
    mk_testing_redis_t auth;
    if (mk_testing_redis_start_auth(&auth, "s3cret") != 0) {
        MK_CHECK(!"cannot start redis-server with a password");
        return;
    }
    mk_httpd_loop_t *loop = mk_httpd_loop_new();
    /* The loop frees the connection with its slots, as a worker's loop does at shutdown. */
    mk_redis_async_t *good = open_async(loop, auth.port, "s3cret");
    void **slot = mk_httpd_loop_slot(loop, &auth, (void (*)(void *))mk_redis_async_free);
    MK_CHECK(slot != NULL && *slot == NULL);
    if (slot != NULL)
        *slot = good;
    mk_redis_async_t *bad = open_async(loop, auth.port, "wrong");
    const char *set[] = {"SET", "k", "v"};
    result_t g = {0}, b = {0};
    MK_CHECK_INT(cmd(good, &g, 3, set), 0);
    MK_CHECK_INT(cmd(bad, &b, 3, set), 0);
    MK_CHECK(run_until(loop, &g.calls, 1, 2000));
    MK_CHECK(run_until(loop, &b.calls, 1, 2000));
    MK_CHECK_INT(g.rc, 0);
    MK_CHECK(b.rc != 0);
    /* After the failed AUTH the connection is down, and says why. */
    result_t c = {0};
    double end = now_ms() + 1000;
    int rc = 0;
    while (rc == 0 && now_ms() < end) {
        mk_httpd_loop_run(loop, 10);
        memset(&c, 0, sizeof c);
        rc = cmd(bad, &c, 3, set);
        if (rc == 0)
            run_until(loop, &c.calls, 1, 1000);
    }
    MK_CHECK_INT(rc, MK_EUNAVAIL);
    MK_CHECK(strstr(c.msg, "AUTH failed") != NULL);
    mk_redis_async_free(bad);
    mk_httpd_loop_free(loop);
    mk_testing_redis_free(&auth);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (mk_testing_redis_start(&srv) != 0) {
        fprintf(stderr, "cannot start redis-server\n");
        return 1;
    }
    MK_RUN(test_pipelined_in_order);
    MK_RUN(test_auth);
    MK_RUN(test_outage_and_reconnect);
    mk_testing_redis_free(&srv);
    return mk_testing_done();
}
