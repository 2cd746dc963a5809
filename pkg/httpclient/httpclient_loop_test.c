/* The loop client against a keep-alive loopback server, driven by poll() on the client's one
 * descriptor as a worker's loop would: answers with headers and bodies (lengths, chunks, the
 * connection's end, HEAD), connection reuse, many transfers at once, timeout, refused connection,
 * too-big bodies, a host name (through curl) and a stop with transfers out. */
#include "httpclient/httpclient_loop.h"

#include "testing/tcp_server.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static mk_testing_tcp_server_t srv;

/* One keep-alive connection: each request answered with its request line as the body; /slow
 * waits 2 s, /big answers 64 KiB. */
static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[8192] = "";
    size_t len = 0;
    for (;;) {
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
            ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                goto out;
            len += (size_t)n;
            buf[len] = '\0';
        }
        char *eol = strstr(buf, "\r\n");
        size_t line = (size_t)(eol - buf);
        if (strncmp(buf, "GET /slow", 9) == 0)
            usleep(2000000);
        /* /chunked: the request line in two chunks, with a trailer; /eof: no length, the body
         * ends with the connection; HEAD: a length and no body. */
        if (strncmp(buf, "GET /chunked", 12) == 0) {
            char out[512];
            int k = snprintf(out, sizeof out,
                             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "4\r\n%.4s\r\n%zx\r\n%.*s\r\n0\r\nX-Trailer: t\r\n\r\n",
                             buf, line - 4, (int)(line - 4), buf + 4);
            if (write(fd, out, (size_t)k) < 0)
                goto out;
        } else if (strncmp(buf, "GET /eof", 8) == 0) {
            char out[512];
            int k = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%.*s",
                             (int)line, buf);
            if (write(fd, out, (size_t)k) < 0) {
            }
            goto out;
        } else if (strncmp(buf, "HEAD ", 5) == 0) {
            const char *out = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
            if (write(fd, out, strlen(out)) < 0)
                goto out;
        }
        if (strncmp(buf, "GET /chunked", 12) == 0 || strncmp(buf, "HEAD ", 5) == 0) {
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, len - used);
            len -= used;
            buf[len] = '\0';
            continue;
        }
        static char big[65536];
        bool is_big = strncmp(buf, "GET /big", 8) == 0;
        char head[256];
        int hn = snprintf(head, sizeof head,
                          "HTTP/1.1 201 Created\r\nX-Echo:  yes \r\nContent-Length: %zu\r\n\r\n",
                          is_big ? sizeof big : line);
        if (write(fd, head, (size_t)hn) < 0 ||
            write(fd, is_big ? big : buf, is_big ? sizeof big : line) < 0)
            goto out;
        /* /bye: answered, then the connection is dropped without a word (an idle timeout). */
        if (strncmp(buf, "GET /bye", 8) == 0)
            goto out;
        size_t used = (size_t)(end + 4 - buf);
        const char *cl = strcasestr(buf, "Content-Length:");
        if (cl != NULL && cl < end)
            used += strtoul(cl + 15, NULL, 10); /* the tests' bodies come with the head */
        memmove(buf, buf + used, len - used);
        len -= used;
        buf[len] = '\0';
    }
out:
    close(fd);
    return NULL;
}

typedef struct got {
    int n;
    int status[64];
    char body[64][64];
    char echo[64][16];
    char error[64][256];
    double ms[64];
} got_t;

typedef struct slot {
    got_t *g;
    int i;
} slot_t;

static void on_done(void *ud, const mk_httpclient_loop_resp_t *res)
{
    slot_t *s = ud;
    got_t *g = s->g;
    g->status[s->i] = res->status;
    snprintf(g->body[s->i], sizeof g->body[0], "%.*s", (int)res->body_len, res->body);
    snprintf(g->error[s->i], sizeof g->error[0], "%s", res->error);
    for (size_t i = 0; i < res->n_headers; i++)
        if (res->headers[i].name_len == 6 && strncmp(res->headers[i].name, "X-Echo", 6) == 0)
            snprintf(g->echo[s->i], sizeof g->echo[0], "%.*s", (int)res->headers[i].value_len,
                     res->headers[i].value);
    g->ms[s->i] = res->duration_ms;
    g->n++;
}

/* The worker's loop, reduced to poll() on the client's descriptor. */
static bool run_until(mk_httpclient_loop_t *c, got_t *g, int n, int max_ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (g->n < n) {
        struct pollfd p = {.fd = mk_httpclient_loop_fd(c), .events = POLLIN};
        poll(&p, 1, 50);
        mk_httpclient_loop_process(c);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > max_ms)
            return false;
    }
    return true;
}

static void test_answers_and_reuse(void)
{
    mk_httpclient_loop_t *c;
    MK_CHECK_INT(mk_httpclient_loop_new(NULL, &c, NULL), 0);
    got_t g = {0};
    slot_t slots[40];
    char url[64];
    atomic_store(&srv.accepted, 0);
    /* One after the other: every request goes over the same kept-alive connection. */
    for (int i = 0; i < 20; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/seq%d", srv.port, i);
        slots[i] = (slot_t){&g, i};
        const char *hdrs[] = {"X-Test: 1"};
        mk_httpclient_loop_req_t req = {.url = url, .headers = hdrs, .n_headers = 1};
        MK_CHECK_INT(mk_httpclient_loop_send(c, &req, on_done, &slots[i], NULL), 0);
        MK_CHECK(run_until(c, &g, i + 1, 5000));
    }
    MK_CHECK_INT(g.status[7], 201);
    MK_CHECK_STR(g.body[7], "GET /seq7 HTTP/1.1");
    MK_CHECK_STR(g.echo[7], "yes");
    MK_CHECK_STR(g.error[7], "");
    MK_CHECK_INT(atomic_load(&srv.accepted), 1);
    /* Twenty at once, with bodies: they overlap on several connections. */
    for (int i = 20; i < 40; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/par%d", srv.port, i);
        slots[i] = (slot_t){&g, i};
        mk_httpclient_loop_req_t req = {.url = url, .method = "POST", .body = "abc", .body_len = 3};
        MK_CHECK_INT(mk_httpclient_loop_send(c, &req, on_done, &slots[i], NULL), 0);
    }
    MK_CHECK_INT(mk_httpclient_loop_in_flight(c), 20);
    MK_CHECK(run_until(c, &g, 40, 5000));
    MK_CHECK_STR(g.body[33], "POST /par33 HTTP/1.1");
    MK_CHECK_INT(mk_httpclient_loop_in_flight(c), 0);
    mk_httpclient_loop_free(c);
    /* A pooled connection the server dropped is not reused: the next request connects again. */
    MK_CHECK_INT(mk_httpclient_loop_new(NULL, &c, NULL), 0);
    int before = atomic_load(&srv.accepted);
    for (int i = 40; i < 44; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/%s%d", srv.port, i % 2 ? "seq" : "bye", i);
        slots[i % 40] = (slot_t){&g, i};
        MK_CHECK_INT(mk_httpclient_loop_send(c, &(mk_httpclient_loop_req_t){.url = url}, on_done,
                                             &slots[i % 40], NULL),
                     0);
        MK_CHECK(run_until(c, &g, i + 1, 5000));
        usleep(20000);
    }
    MK_CHECK_INT(g.status[43], 201);
    MK_CHECK_STR(g.body[43], "GET /seq43 HTTP/1.1");
    MK_CHECK_INT(g.status[41], 201);
    MK_CHECK_INT(atomic_load(&srv.accepted) - before, 3);
    /* Bodies framed by chunks, by the connection's end, and none for HEAD; then a request on the
     * kept connection still works. */
    const char *paths[] = {"chunked", "eof", "head", "seq"};
    for (int i = 44; i < 48; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", srv.port, paths[i - 44]);
        slots[i % 40] = (slot_t){&g, i};
        mk_httpclient_loop_req_t r = {.url = url, .method = i == 46 ? "HEAD" : "GET"};
        MK_CHECK_INT(mk_httpclient_loop_send(c, &r, on_done, &slots[i % 40], NULL), 0);
        MK_CHECK(run_until(c, &g, i + 1, 5000));
    }
    MK_CHECK_INT(g.status[44], 200);
    MK_CHECK_STR(g.body[44], "GET /chunked HTTP/1.1");
    MK_CHECK_STR(g.body[45], "GET /eof HTTP/1.1");
    MK_CHECK_INT(g.status[46], 200);
    MK_CHECK_STR(g.body[46], "");
    MK_CHECK_STR(g.body[47], "GET /seq HTTP/1.1");
    /* A host name goes through curl (its resolver does not block the loop). */
    snprintf(url, sizeof url, "http://localhost:%d/byname", srv.port);
    slots[8] = (slot_t){&g, 48};
    MK_CHECK_INT(mk_httpclient_loop_send(c, &(mk_httpclient_loop_req_t){.url = url}, on_done,
                                         &slots[8], NULL),
                 0);
    MK_CHECK(run_until(c, &g, 49, 5000));
    MK_CHECK_STR(g.body[48], "GET /byname HTTP/1.1");
    MK_CHECK_STR(g.echo[48], "yes");
    mk_httpclient_loop_free(c);
}

static void test_failures_and_stop(void)
{
    mk_httpclient_loop_t *c;
    MK_CHECK_INT(mk_httpclient_loop_new(&(mk_httpclient_loop_config_t){.max_body = 1000}, &c, NULL),
                 0);
    got_t g = {0};
    slot_t slots[5] = {{&g, 0}, {&g, 1}, {&g, 2}, {&g, 3}, {&g, 4}};
    char slow[64], big[64];
    snprintf(slow, sizeof slow, "http://127.0.0.1:%d/slow", srv.port);
    snprintf(big, sizeof big, "http://127.0.0.1:%d/big", srv.port);
    MK_CHECK_INT(
        mk_httpclient_loop_send(c, &(mk_httpclient_loop_req_t){.url = slow, .timeout_ms = 300},
                                on_done, &slots[0], NULL),
        0);
    /* Nobody listens on port 1. */
    MK_CHECK_INT(mk_httpclient_loop_send(c,
                                         &(mk_httpclient_loop_req_t){.url = "http://127.0.0.1:1/"},
                                         on_done, &slots[1], NULL),
                 0);
    MK_CHECK_INT(mk_httpclient_loop_send(c, &(mk_httpclient_loop_req_t){.url = big}, on_done,
                                         &slots[2], NULL),
                 0);
    MK_CHECK(run_until(c, &g, 3, 5000));
    MK_CHECK_INT(g.status[0], 0);
    MK_CHECK(strstr(g.error[0], "timed out") != NULL);
    MK_CHECK(g.ms[0] >= 250 && g.ms[0] < 1500);
    MK_CHECK_INT(g.status[1], 0);
    MK_CHECK(strstr(g.error[1], "onnect") != NULL);
    MK_CHECK(strstr(g.error[2], "over 1000 bytes") != NULL);
    /* A transfer curl fails at once (a port out of range) still ends on a later turn, never
     * inside the send. */
    MK_CHECK_INT(
        mk_httpclient_loop_send(c, &(mk_httpclient_loop_req_t){.url = "http://127.0.0.1:99999/"},
                                on_done, &slots[3], NULL),
        0);
    MK_CHECK_INT(g.n, 3);
    MK_CHECK(run_until(c, &g, 4, 5000));
    MK_CHECK(g.status[3] == 0 && g.error[3][0] != '\0');
    g.n = 3;
    mk_err_t err;
    MK_CHECK_INT(mk_httpclient_loop_send(c,
                                         &(mk_httpclient_loop_req_t){.url = "file:///etc/passwd"},
                                         on_done, &slots[3], &err),
                 MK_EINVAL);
    /* Out when the client stops: ends once, with "stopped". */
    MK_CHECK_INT(mk_httpclient_loop_send(c, &(mk_httpclient_loop_req_t){.url = slow}, on_done,
                                         &slots[4], NULL),
                 0);
    struct pollfd p = {.fd = mk_httpclient_loop_fd(c), .events = POLLIN};
    poll(&p, 1, 50);
    mk_httpclient_loop_process(c);
    mk_httpclient_loop_free(c);
    MK_CHECK_INT(g.n, 4);
    MK_CHECK_STR(g.error[4], "stopped");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (mk_testing_tcp_serve(&srv, conn_main) != 0)
        return 1;
    MK_RUN(test_answers_and_reuse);
    MK_RUN(test_failures_and_stop);
    return mk_testing_done();
}
