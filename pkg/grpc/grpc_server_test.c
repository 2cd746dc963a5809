/* Server behaviour seen through pkg/grpc's own client and raw HTTP/2 peers: a client that stops
 * reading does not stall others and its call's queue is bounded; a peer that never acks PINGs is
 * dropped; answers from another thread (long-lived streams, as the coordinator's task stream);
 * delayed answers (mocks); a fallback handler for every unknown path; stop past the grace period.
 */
#include "grpc/grpc.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- handlers ---- */

static atomic_int flood_rc, flood_sent, flood_done_code = -1, pusher_done = -1;

/* Sends 64 KiB messages until the call's queue is full (the client does not read). */
static void flood_start(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    static uint8_t chunk[64 * 1024];
    int rc;
    while ((rc = mk_grpc_call_send(call, chunk, sizeof chunk, 0)) == 0)
        flood_sent++;
    flood_rc = rc;
}

static void flood_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)call;
    (void)ud;
    flood_done_code = code;
}

static void echo_msg(mk_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    (void)ud;
    mk_grpc_call_send(call, msg, len, 0);
}

static void finish_ok(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    mk_grpc_call_finish(call, MK_GRPC_OK, NULL, NULL, 0);
}

/* A producer thread pushes to the stream until the client goes away (a task stream). */
static void *pusher(void *arg)
{
    mk_grpc_call_t *call = arg;
    int i = 0;
    while (!mk_grpc_call_is_done(call)) {
        char m[32];
        int n = snprintf(m, sizeof m, "task-%d", i++);
        if (mk_grpc_call_send(call, (const uint8_t *)m, (size_t)n, 0) == MK_EUNAVAIL)
            break;
        usleep(20000);
    }
    mk_grpc_call_unref(call);
    return NULL;
}

static void push_start(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    mk_grpc_call_ref(call);
    pthread_t t;
    pthread_create(&t, NULL, pusher, call);
    pthread_detach(t);
}

static void push_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)call;
    (void)ud;
    pusher_done = code;
}

/* Mock-like: answers two messages 150 ms apart, then a status with a trailer 150 ms later. */
static void delayed_half_close(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    mk_grpc_call_send(call, (const uint8_t *)"a", 1, 150);
    mk_grpc_call_send(call, (const uint8_t *)"b", 1, 150);
    mk_grpc_mdlist_t tr = {0};
    mk_grpc_md_add(&tr, "x-mock", "m1", 2);
    mk_grpc_call_finish(call, MK_GRPC_ABORTED, "mocked", &tr, 150);
    mk_grpc_md_clear(&tr);
}

/* The fallback sees the path, metadata and raw bytes of any unknown method. */
static char fallback_seen[256];

static void fallback_msg(mk_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    (void)ud;
    const mk_grpc_md_t *m = mk_grpc_md_get(mk_grpc_call_metadata(call), "x-user");
    snprintf(fallback_seen, sizeof fallback_seen, "%s %s %.*s", mk_grpc_call_path(call),
             m ? m->value : "-", (int)len, (const char *)msg);
    mk_grpc_call_send(call, msg, len, 0);
    mk_grpc_call_finish(call, MK_GRPC_OK, NULL, NULL, 0);
}

/* Never answers: for the stop test. */
static atomic_int hang_done_code = -1;
static void hang_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)call;
    (void)ud;
    hang_done_code = code;
}

static mk_grpc_server_t *start_server(int keepalive_ms, size_t max_pending)
{
    mk_grpc_server_opts_t o = {.keepalive_ms = keepalive_ms,
                               .keepalive_timeout_ms = 200,
                               .max_pending = max_pending,
                               .stop_grace_ms = 300};
    mk_grpc_server_t *s;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_grpc_server_new(&o, &s, &err), 0);
    mk_grpc_method_t ms[] = {
        {.path = "/t.S/Flood", .on_start = flood_start, .on_done = flood_done},
        {.path = "/t.S/Echo", .on_message = echo_msg, .on_half_close = finish_ok},
        {.path = "/t.S/Push", .on_start = push_start, .on_done = push_done},
        {.path = "/t.S/Delayed", .on_half_close = delayed_half_close},
        {.path = "/t.S/Hang", .on_done = hang_done},
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        MK_CHECK_INT(mk_grpc_server_add(s, &ms[i], &err), 0);
    MK_CHECK_INT(mk_grpc_server_add(s, &ms[1], &err), MK_ECONFLICT);
    mk_grpc_method_t fb = {.on_message = fallback_msg};
    MK_CHECK_INT(mk_grpc_server_set_fallback(s, &fb, &err), 0);
    MK_CHECK_INT(mk_grpc_server_start(s, &err), 0);
    return s;
}

static mk_grpc_channel_t *channel(int port)
{
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    mk_grpc_channel_opts_t o = {.target = target};
    mk_grpc_channel_t *ch;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_grpc_channel_new(&o, &ch, &err), 0);
    return ch;
}

/* ---- a raw HTTP/2 peer that sends what nghttp2 makes of a request and then reads nothing ---- */

static ssize_t raw_send(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *ud)
{
    (void)s;
    (void)flags;
    return send(*(int *)ud, d, n, MSG_NOSIGNAL);
}

static int raw_connect(int port, const char *path, int window)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    /* A small receive buffer, so the server sees a full socket soon. */
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -1;
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, raw_send);
    nghttp2_session *h2;
    nghttp2_session_client_new(&h2, cbs, &fd);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)window}};
    nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, iv, 1);
    if (window > 65535) /* the connection window too: only the socket may hold the server back */
        nghttp2_submit_window_update(h2, NGHTTP2_FLAG_NONE, 0, window - 65535);
    if (path) {
        nghttp2_nv nva[] = {
            {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
            {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
            {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
            {(uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
            {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
        };
        nghttp2_submit_request(h2, NULL, nva, 6, NULL, NULL);
    }
    nghttp2_session_send(h2);
    nghttp2_session_del(h2);
    nghttp2_session_callbacks_del(cbs);
    return fd;
}

static void test_slow_reader_does_not_stall_others(void)
{
    mk_grpc_server_t *s = start_server(-1, 1 << 20);
    int port = mk_grpc_server_port(s);
    /* Window of 2^31-1: flow control does not hold the server back, only the socket does. */
    int raw = raw_connect(port, "/t.S/Flood", 0x7fffffff);
    MK_CHECK(raw >= 0);
    double t0 = now_s();
    while (flood_rc == 0 && now_s() - t0 < 5)
        usleep(10000);
    MK_CHECK_INT(flood_rc, MK_ERATE); /* bounded: the 17th 64 KiB message is refused */
    MK_CHECK(flood_sent >= 15 && flood_sent <= 16);

    mk_grpc_channel_t *ch = channel(port);
    t0 = now_s();
    uint8_t *resp;
    size_t n;
    mk_grpc_status_t st = {0};
    int code = mk_grpc_unary(ch, "/t.S/Echo", NULL, (const uint8_t *)"ping", 4, 2000, &resp, &n,
                             &st, NULL);
    double took = now_s() - t0;
    MK_CHECK_INT(code, MK_GRPC_OK);
    MK_CHECK(n == 4 && memcmp(resp, "ping", 4) == 0);
    char d[64];
    snprintf(d, sizeof d, "unary took %.3f s beside a stalled reader", took);
    printf("  %s; flood queued %d messages before MK_ERATE\n", d, flood_sent);
    mk_testing_record(took < 1.0, __FILE__, __LINE__, "fast beside slow", d);
    free(resp);
    mk_grpc_status_clear(&st);

    close(raw); /* the stalled client goes away: its call ends CANCELLED */
    t0 = now_s();
    while (flood_done_code < 0 && now_s() - t0 < 5)
        usleep(10000);
    MK_CHECK_INT(flood_done_code, MK_GRPC_CANCELLED);
    mk_grpc_channel_free(ch);
    mk_grpc_server_free(s);
}

static void test_keepalive_drops_silent_peer(void)
{
    mk_grpc_server_t *s = start_server(100, 0);
    int raw = raw_connect(mk_grpc_server_port(s), NULL, 65535);
    MK_CHECK(raw >= 0);
    /* Read and discard (never answering PINGs) until the server closes: ~300 ms. */
    double t0 = now_s();
    char buf[4096];
    ssize_t r = 1;
    while (r > 0 && now_s() - t0 < 5) {
        struct pollfd p = {.fd = raw, .events = POLLIN};
        if (poll(&p, 1, 100) == 1)
            r = recv(raw, buf, sizeof buf, 0);
    }
    double took = now_s() - t0;
    char d[64];
    snprintf(d, sizeof d, "closed after %.2f s", took);
    printf("  silent peer %s\n", d);
    mk_testing_record(r == 0 && took < 2, __FILE__, __LINE__, "silent peer dropped", d);
    close(raw);

    /* A real client acks: a call spanning many ping intervals works. */
    mk_grpc_channel_t *ch = channel(mk_grpc_server_port(s));
    mk_grpc_stream_t *st;
    mk_grpc_stream_start(ch, "/t.S/Delayed", NULL, 5000, &st, NULL);
    mk_grpc_stream_close_send(st);
    uint8_t *m;
    size_t n;
    int got = 0;
    while (mk_grpc_stream_recv(st, &m, &n) == 1) {
        got++;
        free(m);
    }
    MK_CHECK_INT(mk_grpc_stream_finish(st, NULL), MK_GRPC_ABORTED);
    MK_CHECK_INT(got, 2);
    mk_grpc_stream_free(st);
    mk_grpc_channel_free(ch);
    mk_grpc_server_free(s);
}

static void test_push_from_thread_and_cancel(void)
{
    mk_grpc_server_t *s = start_server(-1, 0);
    mk_grpc_channel_t *ch = channel(mk_grpc_server_port(s));
    mk_grpc_stream_t *st;
    MK_CHECK_INT(mk_grpc_stream_start(ch, "/t.S/Push", NULL, 0, &st, NULL), 0);
    mk_grpc_stream_close_send(st);
    uint8_t *m;
    size_t n;
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "task-%d", i);
        ok &= mk_grpc_stream_recv(st, &m, &n) == 1 && n == strlen(want) && memcmp(m, want, n) == 0;
        free(m);
    }
    MK_CHECK(ok);
    mk_grpc_stream_cancel(st);
    MK_CHECK_INT(mk_grpc_stream_finish(st, NULL), MK_GRPC_CANCELLED);
    mk_grpc_stream_free(st);
    double t0 = now_s();
    while (pusher_done < 0 && now_s() - t0 < 5)
        usleep(10000);
    MK_CHECK_INT(pusher_done, MK_GRPC_CANCELLED);
    mk_grpc_channel_free(ch);
    mk_grpc_server_free(s);
}

static void test_delays_fallback_and_stop(void)
{
    mk_grpc_server_t *s = start_server(-1, 0);
    mk_grpc_channel_t *ch = channel(mk_grpc_server_port(s));

    double t0 = now_s();
    mk_grpc_stream_t *st;
    mk_grpc_stream_start(ch, "/t.S/Delayed", NULL, 5000, &st, NULL);
    mk_grpc_stream_close_send(st);
    uint8_t *m;
    size_t n;
    double at[2] = {0, 0};
    for (int i = 0; i < 2 && mk_grpc_stream_recv(st, &m, &n) == 1; i++) {
        at[i] = now_s() - t0;
        free(m);
    }
    mk_grpc_status_t status = {0};
    MK_CHECK_INT(mk_grpc_stream_finish(st, &status), MK_GRPC_ABORTED);
    double end = now_s() - t0;
    char d[96];
    snprintf(d, sizeof d, "messages at %.3f and %.3f s, status at %.3f s", at[0], at[1], end);
    printf("  %s\n", d);
    mk_testing_record(at[0] >= 0.14 && at[1] >= 0.29 && end >= 0.44 && end < 1.5, __FILE__,
                      __LINE__, "delays apply one after another", d);
    MK_CHECK_STR(status.message, "mocked");
    const mk_grpc_md_t *x = mk_grpc_md_get(&status.trailers, "x-mock");
    MK_CHECK(x && strcmp(x->value, "m1") == 0);
    mk_grpc_status_clear(&status);
    mk_grpc_stream_free(st);

    mk_grpc_mdlist_t md = {0};
    mk_grpc_md_add(&md, "x-user", "u7", 2);
    uint8_t *resp;
    MK_CHECK_INT(mk_grpc_unary(ch, "/any.Svc/Whatever", &md, (const uint8_t *)"raw", 3, 2000, &resp,
                               &n, NULL, NULL),
                 MK_GRPC_OK);
    MK_CHECK_STR(fallback_seen, "/any.Svc/Whatever u7 raw");
    free(resp);
    mk_grpc_md_clear(&md);

    /* A call that never answers: stop waits the grace period (300 ms), then cancels it. */
    MK_CHECK_INT(mk_grpc_stream_start(ch, "/t.S/Hang", NULL, 0, &st, NULL), 0);
    usleep(100000);
    t0 = now_s();
    mk_grpc_server_stop(s);
    double took = now_s() - t0;
    MK_CHECK_INT(hang_done_code, MK_GRPC_CANCELLED);
    snprintf(d, sizeof d, "stop took %.3f s", took);
    printf("  %s\n", d);
    mk_testing_record(took >= 0.25 && took < 2, __FILE__, __LINE__, "grace period", d);
    int code = mk_grpc_stream_finish(st, NULL);
    MK_CHECK(code == MK_GRPC_UNAVAILABLE || code == MK_GRPC_CANCELLED);
    mk_grpc_stream_free(st);
    mk_grpc_channel_free(ch);
    mk_grpc_server_free(s);
}

/* A runner's channel outlives the coordinator's restarts: calls fail UNAVAILABLE while it is
 * down and work again, on a new connection, once it is back on the same port. */
static void test_client_reconnects(void)
{
    mk_grpc_server_t *s = start_server(-1, 0);
    int port = mk_grpc_server_port(s);
    mk_grpc_channel_t *ch = channel(port);
    uint8_t *resp;
    size_t n;
    MK_CHECK_INT(
        mk_grpc_unary(ch, "/t.S/Echo", NULL, (const uint8_t *)"1", 1, 2000, &resp, &n, NULL, NULL),
        MK_GRPC_OK);
    free(resp);
    mk_grpc_server_free(s);

    mk_err_t err = {0};
    int rc =
        mk_grpc_unary(ch, "/t.S/Echo", NULL, (const uint8_t *)"2", 1, 2000, &resp, &n, NULL, &err);
    MK_CHECK(rc == MK_EUNAVAIL || rc == MK_GRPC_UNAVAILABLE);

    mk_grpc_server_opts_t o = {.port = port};
    MK_CHECK_INT(mk_grpc_server_new(&o, &s, &err), 0);
    mk_grpc_method_t echo = {
        .path = "/t.S/Echo", .on_message = echo_msg, .on_half_close = finish_ok};
    mk_grpc_server_add(s, &echo, &err);
    MK_CHECK_INT(mk_grpc_server_start(s, &err), 0);
    MK_CHECK_INT(
        mk_grpc_unary(ch, "/t.S/Echo", NULL, (const uint8_t *)"3", 1, 2000, &resp, &n, NULL, NULL),
        MK_GRPC_OK);
    MK_CHECK(n == 1 && resp[0] == '3');
    free(resp);
    mk_grpc_channel_free(ch);
    mk_grpc_server_free(s);
}

/* Messages larger than the 1 MiB stream window, both ways, several in flight. */
static void test_large_messages(void)
{
    mk_grpc_server_t *s = start_server(-1, 0);
    mk_grpc_channel_t *ch = channel(mk_grpc_server_port(s));
    size_t big = 3u << 20;
    uint8_t *req = malloc(big);
    for (size_t i = 0; i < big; i++)
        req[i] = (uint8_t)(i * 31);
    mk_grpc_stream_t *st;
    MK_CHECK_INT(mk_grpc_stream_start(ch, "/t.S/Echo", NULL, 20000, &st, NULL), 0);
    for (int i = 0; i < 3; i++)
        MK_CHECK_INT(mk_grpc_stream_send(st, req, big, NULL), 0);
    mk_grpc_stream_close_send(st);
    int got = 0, same = 1;
    uint8_t *m;
    size_t n;
    while (mk_grpc_stream_recv(st, &m, &n) == 1) {
        same &= n == big && memcmp(m, req, big) == 0;
        got++;
        free(m);
    }
    MK_CHECK_INT(mk_grpc_stream_finish(st, NULL), MK_GRPC_OK);
    MK_CHECK_INT(got, 3);
    MK_CHECK(same);
    mk_grpc_stream_free(st);
    free(req);
    mk_grpc_channel_free(ch);
    mk_grpc_server_free(s);
}

int main(void)
{
    MK_RUN(test_slow_reader_does_not_stall_others);
    MK_RUN(test_keepalive_drops_silent_peer);
    MK_RUN(test_push_from_thread_and_cancel);
    MK_RUN(test_delays_fallback_and_stop);
    MK_RUN(test_client_reconnects);
    MK_RUN(test_large_messages);
    return mk_testing_done();
}
