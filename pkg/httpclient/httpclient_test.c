/* The asynchronous client against a loopback server that answers each request after a pause, on
 * its own thread: transfers overlap, delays order the starts, answers and bodies come back,
 * timeouts and a stop end every request with exactly one callback. */
#include "httpclient/httpclient.h"

#include "testing/tcp_server.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static mk_testing_tcp_server_t srv;
static atomic_int pause_ms;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One connection: read the head, wait, answer with the request line as the body. */
static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[len] = '\0';
    usleep((useconds_t)atomic_load(&pause_ms) * 1000);
    char *eol = strstr(buf, "\r\n");
    size_t line = eol ? (size_t)(eol - buf) : 0;
    char resp[512];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%.*s",
                     line, (int)line, buf);
    if (write(fd, resp, (size_t)n) < 0)
        perror("write");
    close(fd);
    return NULL;
}

typedef struct done {
    atomic_int count;
    int status[16];
    char body[16][128];
    char error[16][128];
    double at[16];
} done_t;

typedef struct slot {
    done_t *d;
    int i;
} slot_t;

static void on_done(void *ud, const mk_httpclient_result_t *res)
{
    slot_t *s = ud;
    s->d->status[s->i] = res->status;
    snprintf(s->d->body[s->i], sizeof s->d->body[0], "%.*s", (int)res->body_len, res->body);
    snprintf(s->d->error[s->i], sizeof s->d->error[0], "%s", res->error);
    s->d->at[s->i] = now_ms();
    atomic_fetch_add(&s->d->count, 1);
}

static bool wait_count(done_t *d, int n, double ms)
{
    double until = now_ms() + ms;
    while (atomic_load(&d->count) < n && now_ms() < until)
        usleep(2000);
    return atomic_load(&d->count) >= n;
}

static void test_overlap_delay_and_answers(void)
{
    mk_httpclient_t *c;
    MK_CHECK_INT(mk_httpclient_new(NULL, &c, NULL), 0);
    atomic_store(&pause_ms, 300);
    done_t d = {0};
    slot_t slots[10];
    char url[64];
    double t0 = now_ms();
    for (int i = 0; i < 8; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/r%d", srv.port, i);
        slots[i] = (slot_t){&d, i};
        mk_httpclient_req_t req = {.url = url, .method = "PUT", .body = "x", .body_len = 1};
        MK_CHECK_INT(mk_httpclient_send(c, &req, on_done, &slots[i], NULL), 0);
    }
    /* A delayed request starts after the others although queued last. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/late", srv.port);
    slots[8] = (slot_t){&d, 8};
    mk_httpclient_req_t late = {.url = url, .delay_ms = 500};
    MK_CHECK_INT(mk_httpclient_send(c, &late, on_done, &slots[8], NULL), 0);
    MK_CHECK(wait_count(&d, 9, 10000));
    double all8 = 0;
    for (int i = 0; i < 8; i++)
        all8 = d.at[i] > all8 ? d.at[i] : all8;
    /* Eight 300 ms answers overlap: far less than 8 x 300 ms. */
    MK_CHECK(all8 - t0 < 1500);
    MK_CHECK(d.at[8] - t0 >= 800);
    MK_CHECK_INT(d.status[3], 201);
    MK_CHECK_STR(d.body[3], "PUT /r3 HTTP/1.1");
    MK_CHECK_STR(d.body[8], "POST /late HTTP/1.1");
    MK_CHECK_STR(d.error[3], "");
    mk_httpclient_free(c);
}

static void test_timeout_refused_and_stop(void)
{
    mk_httpclient_t *c;
    MK_CHECK_INT(mk_httpclient_new(&(mk_httpclient_config_t){.max_in_flight = 2}, &c, NULL), 0);
    atomic_store(&pause_ms, 2000);
    done_t d = {0};
    slot_t slots[4] = {{&d, 0}, {&d, 1}, {&d, 2}, {&d, 3}};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", srv.port);
    mk_httpclient_req_t slow = {.url = url, .timeout_ms = 200};
    MK_CHECK_INT(mk_httpclient_send(c, &slow, on_done, &slots[0], NULL), 0);
    MK_CHECK(wait_count(&d, 1, 5000));
    MK_CHECK_INT(d.status[0], 0);
    MK_CHECK(d.error[0][0] != '\0');
    /* Nobody listens on port 1. */
    mk_httpclient_req_t refused = {.url = "http://127.0.0.1:1/"};
    MK_CHECK_INT(mk_httpclient_send(c, &refused, on_done, &slots[1], NULL), 0);
    MK_CHECK(wait_count(&d, 2, 5000));
    MK_CHECK_INT(d.status[1], 0);
    mk_err_t err;
    mk_httpclient_req_t bad = {.url = "file:///etc/passwd"};
    MK_CHECK_INT(mk_httpclient_send(c, &bad, on_done, &slots[2], &err), MK_EINVAL);
    /* In flight and waiting when the client stops: both end, once, with "stopped". */
    mk_httpclient_req_t hang = {.url = url, .timeout_ms = 60000};
    mk_httpclient_req_t later = {.url = url, .delay_ms = 60000};
    MK_CHECK_INT(mk_httpclient_send(c, &hang, on_done, &slots[2], NULL), 0);
    MK_CHECK_INT(mk_httpclient_send(c, &later, on_done, &slots[3], NULL), 0);
    usleep(100000);
    mk_httpclient_free(c);
    MK_CHECK_INT(atomic_load(&d.count), 4);
    MK_CHECK_STR(d.error[2], "stopped");
    MK_CHECK_STR(d.error[3], "stopped");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (mk_testing_tcp_serve(&srv, conn_main) != 0)
        return 1;
    MK_RUN(test_overlap_delay_and_answers);
    MK_RUN(test_timeout_refused_and_stop);
    return mk_testing_done();
}
