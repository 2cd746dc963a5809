/* Streaming responses over real sockets: chunks on timers and a clean end, a client that leaves,
 * a client that stops reading (bounded queue, dropped), writes from another thread, and streams
 * closed cleanly when the server stops. */
#include "httpd/httpd.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FLOOD_CHUNK (16 * 1024)
#define FLOOD_MAX   (64 * 1024)

static atomic_int ends[MK_HTTPD_STREAM_STOPPING + 1];
static atomic_size_t max_buffered;
static atomic_int drains;
static mk_httpd_stream_t *_Atomic remote; /* handed to the test thread */

typedef struct tick {
    mk_httpd_stream_t *s;
    int n, limit;
    bool flood;
} tick_t;

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

static void on_close(void *ud, mk_httpd_stream_end_t why)
{
    atomic_fetch_add(&ends[why], 1);
    free(ud);
}

static void on_drain(void *ud)
{
    (void)ud;
    atomic_fetch_add(&drains, 1);
}

static void on_tick(void *ud)
{
    tick_t *t = ud;
    if (t->flood) {
        static char chunk[FLOOD_CHUNK];
        memset(chunk, 'f', sizeof chunk);
        for (int i = 0; i < 8; i++) {
            int rc = mk_httpd_stream_write(t->s, (mk_str_t){chunk, sizeof chunk});
            size_t b = mk_httpd_stream_buffered(t->s);
            if (b > atomic_load(&max_buffered))
                atomic_store(&max_buffered, b);
            if (rc == MK_ETOOBIG)
                break;
        }
        if (!mk_httpd_stream_open(t->s))
            return; /* close_when_full dropped it */
        mk_httpd_stream_after(t->s, 0, 1, on_tick);
        return;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "data: %d\n\n", t->n++);
    mk_httpd_stream_write(t->s, (mk_str_t){buf, (size_t)n});
    if (t->limit && t->n >= t->limit)
        mk_httpd_stream_close(t->s);
    else
        mk_httpd_stream_after(t->s, 0, 10, on_tick);
}

static void handler(void *ud, mk_httpd_req_t *req)
{
    (void)ud;
    mk_request_t v;
    mk_httpd_req_view(req, &v);
    tick_t *t = calloc(1, sizeof *t);
    mk_httpd_stream_opts_t opts = {0};
    if (mk_str_eq(v.path, MK_STR_LIT("/five")))
        t->limit = 5;
    if (mk_str_eq(v.path, MK_STR_LIT("/flood"))) {
        t->flood = true;
        opts.max_buffer = FLOOD_MAX;
        opts.close_when_full = true;
    }
    if (mk_str_eq(v.path, MK_STR_LIT("/stall"))) {
        t->flood = true; /* queue refusals are ignored: the stall timer must drop it */
        opts.max_buffer = 64 * FLOOD_MAX;
        opts.stall_ms = 300;
    }
    bool is_remote = mk_str_eq(v.path, MK_STR_LIT("/remote"));
    mk_request_release(&v);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), MK_STR_LIT("text/event-stream"));
    mk_httpd_stream_cbs_t cbs = {on_close, on_drain};
    if (mk_httpd_stream_start(req, 200, &opts, &cbs, t, &t->s) != 0) {
        free(t);
        mk_httpd_respond(req, 500, MK_STR_LIT("no stream"));
        return;
    }
    if (is_remote) {
        mk_httpd_stream_ref(t->s);
        atomic_store(&remote, t->s);
        return;
    }
    on_tick(t);
}

static int connect_to(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int get(int port, const char *path, int rcvbuf)
{
    int fd = connect_to(port, rcvbuf);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    if (fd >= 0 && write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until the chunked body's last chunk (or EOF/timeout) into buf; returns bytes. */
static size_t read_all(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n0\r\n\r\n"))
            break;
    }
    buf[len] = '\0';
    return len;
}

static bool wait_for(atomic_int *counter, int want, int ms)
{
    double until = now_ms() + ms;
    while (atomic_load(counter) < want && now_ms() < until)
        sleep_ms(5);
    return atomic_load(counter) >= want;
}

static void *remote_writer(void *arg)
{
    (void)arg;
    mk_httpd_stream_t *s;
    while ((s = atomic_load(&remote)) == NULL)
        sleep_ms(1);
    char buf[32];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(buf, sizeof buf, "r%d;", i);
        mk_httpd_stream_write_from(s, (mk_str_t){buf, (size_t)n}, i == 99);
    }
    mk_httpd_stream_unref(s);
    return NULL;
}

static mk_httpd_t *server;
static int port;
static char buf[1 << 20];

/* Five events on 10 ms timers, then a clean end: the whole body and the last chunk. */
static void test_chunks_then_clean_end(void)
{
    int fd = get(port, "/five", 0);
    MK_CHECK(fd >= 0);
    double t0 = now_ms();
    size_t len = read_all(fd, buf, sizeof buf);
    double took = now_ms() - t0;
    close(fd);
    MK_CHECK(len > 0 && strstr(buf, "HTTP/1.1 200 OK") == buf);
    MK_CHECK(strcasestr(buf, "transfer-encoding: chunked") != NULL);
    MK_CHECK(strstr(buf, "text/event-stream") != NULL);
    MK_CHECK(strcasestr(buf, "x-request-id") != NULL);
    const char *p = buf;
    for (int i = 0; i < 5 && p; i++) {
        char want[32];
        snprintf(want, sizeof want, "data: %d\n\n", i);
        p = strstr(p, want);
        MK_CHECK(p != NULL);
    }
    MK_CHECK(strstr(buf, "\r\n0\r\n\r\n") != NULL);
    MK_CHECK(took >= 35 && took < 3000); /* four 10 ms waits between the five */
    MK_CHECK(wait_for(&ends[MK_HTTPD_STREAM_DONE], 1, 2000));
    MK_CHECK(atomic_load(&drains) >= 1);
}

/* A client that leaves: on_close(GONE) soon after, its timers stopped. */
static void test_client_leaves(void)
{
    int fd = get(port, "/forever", 0);
    MK_CHECK(fd >= 0);
    MK_CHECK(read(fd, buf, 200) > 0);
    close(fd);
    MK_CHECK(wait_for(&ends[MK_HTTPD_STREAM_GONE], 1, 3000));
}

/* A client that stops reading: the queue never passes max_buffer and the stream is dropped
 * (SLOW) once the kernel's buffers are full; likewise when nothing leaves for stall_ms. */
static void test_slow_reader(void)
{
    int fd = get(port, "/flood", 4096);
    MK_CHECK(fd >= 0);
    MK_CHECK(wait_for(&ends[MK_HTTPD_STREAM_SLOW], 1, 10000));
    MK_CHECK(atomic_load(&max_buffered) <= FLOOD_MAX);
    MK_CHECK(atomic_load(&max_buffered) >= FLOOD_MAX - FLOOD_CHUNK);
    close(fd);

    fd = get(port, "/stall", 4096);
    MK_CHECK(fd >= 0);
    double t0 = now_ms();
    MK_CHECK(wait_for(&ends[MK_HTTPD_STREAM_SLOW], 2, 10000));
    MK_CHECK(now_ms() - t0 >= 300);
    MK_CHECK(atomic_load(&max_buffered) <= 64 * FLOOD_MAX);
    close(fd);
}

/* Writes from another thread arrive in order, and close_after ends the stream. */
static void test_other_thread(void)
{
    pthread_t th;
    pthread_create(&th, NULL, remote_writer, NULL);
    int fd = get(port, "/remote", 0);
    MK_CHECK(fd >= 0);
    read_all(fd, buf, sizeof buf);
    close(fd);
    pthread_join(th, NULL);
    MK_CHECK(strstr(buf, "\r\n0\r\n\r\n") != NULL);
    int next = 0; /* chunk framing may sit between two; count them in order */
    const char *body = strstr(buf, "\r\n\r\n");
    for (const char *q = body; q && *q; q++) {
        char want[16];
        snprintf(want, sizeof want, "r%d;", next);
        if (strncmp(q, want, strlen(want)) == 0)
            next++;
    }
    MK_CHECK_INT(next, 100);
    MK_CHECK(wait_for(&ends[MK_HTTPD_STREAM_DONE], 2, 2000));
}

/* Stopping the server ends open streams cleanly: the client sees the last chunk. */
static void test_stop_closes_streams(void)
{
    int before = atomic_load(&ends[MK_HTTPD_STREAM_STOPPING]);
    int fd = get(port, "/forever", 0);
    MK_CHECK(fd >= 0);
    MK_CHECK(read(fd, buf, 100) > 0); /* the stream is open */
    mk_httpd_stop(server);
    read_all(fd, buf, sizeof buf);
    close(fd);
    MK_CHECK(strstr(buf, "0\r\n\r\n") != NULL);
    MK_CHECK_INT(atomic_load(&ends[MK_HTTPD_STREAM_STOPPING]), before + 1);
}

int main(void)
{
    mk_httpd_config_t cfg = {.host = "127.0.0.1", .port = 0, .workers = 1};
    mk_err_t err;
    signal(SIGPIPE, SIG_IGN); /* as boot does: h2o writes to sockets clients have closed */
    if (mk_httpd_new(&cfg, handler, NULL, &server, &err) != 0 ||
        mk_httpd_start(server, &err) != 0) {
        fprintf(stderr, "server: %s\n", err.msg);
        return 1;
    }
    port = mk_httpd_port(server);
    MK_RUN(test_chunks_then_clean_end);
    MK_RUN(test_client_leaves);
    MK_RUN(test_slow_reader);
    MK_RUN(test_other_thread);
    MK_RUN(test_stop_closes_streams);
    mk_httpd_free(server);
    return mk_testing_done();
}
