/* httpd over real sockets: the body budget (503 + Retry-After, per client, release), one owner
 * per port (also across processes) and work offloaded from the event loop. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static atomic_int works_done, offloaded;

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

static void slow_work(void *ud, mk_httpd_req_t *req)
{
    (void)ud;
    sleep_ms(300);
    mk_request_t v;
    mk_httpd_req_view(req, &v);
    char *out = mk_httpd_req_alloc(req, v.path.len + v.body.len + 16);
    int n = snprintf(out, v.path.len + v.body.len + 16, "slow:%.*s:%.*s", (int)v.path.len,
                     v.path.base, (int)v.body.len, v.body.base);
    mk_request_release(&v);
    mk_httpd_add_header(req, MK_STR_LIT("X-Work"), MK_STR_LIT("done"));
    mk_httpd_respond(req, 200, (mk_str_t){out, (size_t)n});
    atomic_fetch_add(&works_done, 1);
}

static void silent_work(void *ud, mk_httpd_req_t *req)
{
    (void)ud;
    (void)req;
}

static void handler(void *ud, mk_httpd_req_t *req)
{
    (void)ud;
    mk_request_t v;
    mk_httpd_req_view(req, &v);
    char buf[64];
    if (mk_str_eq(v.path, MK_STR_LIT("/slow"))) {
        mk_request_release(&v);
        mk_httpd_offload(req, slow_work, NULL);
        atomic_fetch_add(&offloaded, 1);
        return;
    }
    if (mk_str_eq(v.path, MK_STR_LIT("/silent"))) {
        mk_request_release(&v);
        mk_httpd_offload(req, silent_work, NULL);
        return;
    }
    int n = mk_str_eq(v.path, MK_STR_LIT("/worker"))
                ? snprintf(buf, sizeof buf, "%u", mk_httpd_req_worker(req))
                : snprintf(buf, sizeof buf, "%zu", v.body.len);
    mk_request_release(&v);
    mk_httpd_respond(req, 200, (mk_str_t){buf, (size_t)n});
}

static mk_httpd_t *start(int port, unsigned workers, size_t total, size_t client, unsigned threads)
{
    mk_httpd_config_t cfg = {.host = "0.0.0.0",
                             .port = port,
                             .workers = workers,
                             .max_body_bytes = 4 * MIB,
                             .req_timeout_ms = 10000,
                             .max_inflight_body_bytes = total,
                             .max_client_inflight_body_bytes = client,
                             .offload_threads = threads};
    mk_httpd_t *h = NULL;
    mk_err_t err;
    if (mk_httpd_new(&cfg, handler, NULL, &h, &err) != 0) {
        fprintf(stderr, "mk_httpd_new: %s\n", err.msg);
        return NULL;
    }
    if (mk_httpd_start(h, &err) != 0) {
        fprintf(stderr, "mk_httpd_start: %s\n", err.msg);
        mk_httpd_free(h);
        return NULL;
    }
    return h;
}

/* A blocking client socket from source address src (NULL: any). */
static int dial(int port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (src) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
            perror("bind source");
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_zeros(int fd, size_t len)
{
    static char zeros[65536];
    while (len) {
        size_t n = len < sizeof zeros ? len : sizeof zeros;
        if (!send_all(fd, zeros, n))
            return false;
        len -= n;
    }
    return true;
}

static bool send_head_with(int fd, const char *method, const char *path, size_t content_length,
                           const char *extra)
{
    char head[256];
    int n =
        snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%s\r\n",
                 method, path, content_length, extra);
    return send_all(fd, head, (size_t)n);
}

static bool send_head(int fd, const char *method, const char *path, size_t content_length)
{
    return send_head_with(fd, method, path, content_length, "");
}

/* Reads one response (head and Content-Length body) or until the peer closes; NUL-terminated.
 * Returns the bytes read. */
static size_t read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strstr(buf, "Content-Length: ");
        if (cl == NULL)
            cl = strstr(buf, "content-length: ");
        if (end && cl && cl < end && len >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10))
            break;
    }
    buf[len] = '\0';
    return len;
}

static bool closed_by_peer(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int get(int port, const char *path, char *buf, size_t cap)
{
    int fd = dial(port, NULL);
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    send_all(fd, req, (size_t)n);
    read_response(fd, buf, cap);
    close(fd);
    return atoi(buf + 9);
}

static bool wait_inflight(mk_httpd_t *h, size_t want)
{
    for (int i = 0; i < 200; i++) {
        if (mk_httpd_body_inflight(h) == want)
            return true;
        sleep_ms(5);
    }
    return false;
}

static void test_budget_total(void)
{
    mk_httpd_t *h = start(0, 1, 6 * MIB, 6 * MIB, 1);
    MK_CHECK(h != NULL);
    if (h == NULL)
        return;
    int port = mk_httpd_port(h);
    char buf[4096];

    /* A declares 4 MiB and sends 1 MiB: the whole declared body is charged. */
    int a = dial(port, NULL);
    MK_CHECK(send_head(a, "POST", "/upload", 4 * MIB) && send_zeros(a, 1 * MIB));
    for (int i = 0; i < 400 && mk_httpd_body_inflight(h) < 4 * MIB; i++)
        sleep_ms(5);
    MK_CHECK(mk_httpd_body_inflight(h) >= 4 * MIB);

    /* B's 4 MiB would pass the 6 MiB total: 503 at once, and the connection goes. */
    double t0 = now_ms();
    int b = dial(port, NULL);
    MK_CHECK(send_head(b, "POST", "/upload", 4 * MIB) && send_zeros(b, 256 * 1024));
    read_response(b, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
    MK_CHECK(strstr(buf, "Retry-After: 1\r\n") != NULL);
    MK_CHECK(strstr(buf, "\"code\":\"unavailable\"") != NULL);
    MK_CHECK(strstr(buf, "HTTP_MAX_INFLIGHT_BODY_BYTES (6291456 bytes)") != NULL);
    MK_CHECK(strstr(buf, "\"request_id\":\"") != NULL);
    MK_CHECK(now_ms() - t0 < 1000);
    MK_CHECK(closed_by_peer(b));
    close(b);
    MK_CHECK_INT(mk_httpd_body_rejects(h), 1);

    /* Others are still served, A included. */
    MK_CHECK_INT(get(port, "/fast", buf, sizeof buf), 200);
    MK_CHECK(send_zeros(a, 3 * MIB));
    read_response(a, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    MK_CHECK(strstr(buf, "\r\n\r\n4194304") != NULL);
    /* Released when the request is done, with A's connection still open. */
    MK_CHECK(wait_inflight(h, 0));
    close(a);
    mk_httpd_free(h);
}

static void test_budget_per_client(void)
{
    mk_httpd_t *h = start(0, 2, 64 * MIB, 5 * MIB, 1);
    MK_CHECK(h != NULL);
    if (h == NULL)
        return;
    int port = mk_httpd_port(h);
    char buf[4096];
    int a = dial(port, "127.0.0.1");
    MK_CHECK(send_head(a, "POST", "/upload", 3 * MIB) && send_zeros(a, 512 * 1024));
    for (int i = 0; i < 400 && mk_httpd_body_inflight(h) < 3 * MIB; i++)
        sleep_ms(5);
    int b = dial(port, "127.0.0.1");
    MK_CHECK(send_head(b, "POST", "/upload", 3 * MIB) && send_zeros(b, 128 * 1024));
    read_response(b, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
    MK_CHECK(strstr(buf, "HTTP_MAX_CLIENT_INFLIGHT_BODY_BYTES (5242880 bytes)") != NULL);
    close(b);
    /* Another client address has its own share. */
    int c = dial(port, "127.0.0.2");
    MK_CHECK(send_head(c, "POST", "/upload", 3 * MIB) && send_zeros(c, 3 * MIB));
    read_response(c, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    close(c);
    MK_CHECK(send_zeros(a, 3 * MIB - 512 * 1024));
    read_response(a, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    close(a);
    MK_CHECK(wait_inflight(h, 0));
    mk_httpd_free(h);
}

typedef struct sampler {
    mk_httpd_t *h;
    atomic_bool stop;
    size_t peak;
} sampler_t;

static void *sample(void *arg)
{
    sampler_t *s = arg;
    while (!atomic_load(&s->stop)) {
        size_t n = mk_httpd_body_inflight(s->h);
        if (n > s->peak)
            s->peak = n;
        sleep_ms(1);
    }
    return NULL;
}

/* Many clients with big bodies at once: the budget holds, the excess is refused. */
static void test_budget_many(void)
{
    enum { N = 24 };
    const size_t total = 16 * MIB;
    mk_httpd_t *h = start(0, 2, total, total, 1);
    MK_CHECK(h != NULL);
    if (h == NULL)
        return;
    int port = mk_httpd_port(h);
    sampler_t s = {.h = h};
    pthread_t tid;
    pthread_create(&tid, NULL, sample, &s);
    int fds[N];
    bool refused[N];
    char buf[4096];
    for (int i = 0; i < N; i++) {
        fds[i] = dial(port, NULL);
        refused[i] =
            !(send_head(fds[i], "POST", "/upload", 2 * MIB) && send_zeros(fds[i], 1536 * 1024));
    }
    /* Let the server see every head before any body completes and frees its share. */
    for (int i = 0; i < 400; i++) {
        size_t decided = mk_httpd_body_rejects(h) + mk_httpd_body_inflight(h) / (2 * MIB);
        if (decided >= N)
            break;
        sleep_ms(5);
    }
    int ok = 0, unavailable = 0;
    for (int i = 0; i < N; i++) {
        if (!refused[i])
            send_zeros(fds[i], 512 * 1024);
        read_response(fds[i], buf, sizeof buf);
        if (strncmp(buf, "HTTP/1.1 200", 12) == 0)
            ok++;
        else if (strncmp(buf, "HTTP/1.1 503", 12) == 0)
            unavailable++;
        close(fds[i]);
    }
    atomic_store(&s.stop, true);
    pthread_join(tid, NULL);
    printf("budget_many: %d ok, %d 503, peak %zu bytes (budget %zu)\n", ok, unavailable, s.peak,
           total);
    MK_CHECK(s.peak <= total);
    MK_CHECK(ok >= 4);
    MK_CHECK(unavailable >= N - 8);
    MK_CHECK(wait_inflight(h, 0));
    mk_httpd_free(h);
}

/* HTTP/2 (curl, prior knowledge): a stream whose body would pass the budget is refused with
 * RST_STREAM, the connection and other clients live on. */
static void test_budget_h2(void)
{
    if (access("/usr/bin/curl", X_OK) != 0) {
        printf("budget_h2: skipped, no curl\n");
        return;
    }
    mk_httpd_t *h = start(0, 1, 2 * MIB, 2 * MIB, 1);
    MK_CHECK(h != NULL);
    if (h == NULL)
        return;
    int port = mk_httpd_port(h);
    char path[] = "/tmp/httpd_test_XXXXXX", cmd[300], buf[4096];
    int fd = mkstemp(path);
    MK_CHECK(fd >= 0 && ftruncate(fd, 3 * MIB) == 0); /* 3 MiB of zeros */
    close(fd);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/curl -s -o /dev/null -w '%%{http_code}' --http2-prior-knowledge "
             "--max-time 5 --data-binary @%s http://127.0.0.1:%d/upload",
             path, port);
    FILE *p = popen(cmd, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int rc = pclose(p);
    printf("budget_h2: 3 MiB upload over a 2 MiB budget: curl exit %d, status '%s'\n",
           WEXITSTATUS(rc), buf);
    MK_CHECK(WEXITSTATUS(rc) != 0);
    MK_CHECK(strcmp(buf, "200") != 0);
    MK_CHECK(mk_httpd_body_rejects(h) >= 1);
    MK_CHECK_INT(get(port, "/fast", buf, sizeof buf), 200);
    /* A body that fits is served over HTTP/2 too. */
    MK_CHECK(truncate(path, MIB) == 0);
    p = popen(cmd, "r");
    n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    pclose(p);
    MK_CHECK(strcmp(buf, "200") == 0);
    MK_CHECK(wait_inflight(h, 0));
    unlink(path);
    mk_httpd_free(h);
}

static void test_port_owned(void)
{
    mk_httpd_t *h = start(0, 2, 0, 0, 1);
    MK_CHECK(h != NULL);
    if (h == NULL)
        return;
    int port = mk_httpd_port(h);
    char buf[4096], portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);

    /* In this process: refused, naming the port. */
    mk_httpd_config_t cfg = {.host = "127.0.0.1", .port = port, .workers = 1};
    mk_httpd_t *second = NULL;
    mk_err_t err;
    int rc = mk_httpd_new(&cfg, handler, NULL, &second, &err);
    MK_CHECK(rc != 0);
    MK_CHECK(rc == 0 || strstr(err.msg, portstr) != NULL);
    mk_httpd_free(second);

    /* In another process, as a second server would: refused too. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        mk_httpd_t *other = NULL;
        mk_httpd_config_t any = {.port = port, .workers = 1};
        _exit(mk_httpd_new(&any, handler, NULL, &other, &err) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    MK_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);

    /* The owner's workers share the one socket: 40 connections at once, each asks who serves it. */
    int fds[40], per_worker[2] = {0, 0};
    for (int i = 0; i < 40; i++)
        fds[i] = dial(port, NULL);
    for (int i = 0; i < 40; i++) {
        MK_CHECK(send_head(fds[i], "GET", "/worker", 0));
        read_response(fds[i], buf, sizeof buf);
        MK_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
        char *body = strstr(buf, "\r\n\r\n");
        if (body && (body[4] == '0' || body[4] == '1'))
            per_worker[body[4] - '0']++;
        close(fds[i]);
    }
    printf("port_owned: 40 connections served by worker 0: %d, worker 1: %d\n", per_worker[0],
           per_worker[1]);
    MK_CHECK_INT(per_worker[0] + per_worker[1], 40);
    mk_httpd_free(h);

    /* Once the owner is gone, the port can be taken again. */
    h = start(port, 1, 0, 0, 1);
    MK_CHECK(h != NULL);
    mk_httpd_free(h);
}

static void test_offload(void)
{
    mk_httpd_t *h = start(0, 1, 0, 0, 2);
    MK_CHECK(h != NULL);
    if (h == NULL)
        return;
    int port = mk_httpd_port(h);
    char buf[4096];
    atomic_store(&works_done, 0);

    double t0 = now_ms();
    int s = dial(port, NULL);
    MK_CHECK(send_head(s, "POST", "/slow", 3) && send_all(s, "abc", 3));
    sleep_ms(50);
    /* The same (single) worker answers meanwhile. */
    double t1 = now_ms();
    MK_CHECK_INT(get(port, "/fast", buf, sizeof buf), 200);
    double fast = now_ms() - t1;
    printf("offload: /fast answered in %.2f ms during the offloaded 300 ms work\n", fast);
    MK_CHECK(fast < 50);
    read_response(s, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    MK_CHECK(strstr(buf, "\r\nx-work: done\r\n") != NULL || strstr(buf, "\r\nX-Work: done\r\n"));
    MK_CHECK(strstr(buf, "\r\n\r\nslow:/slow:abc") != NULL);
    MK_CHECK(now_ms() - t0 >= 300);
    /* Keep-alive still works after an offloaded answer. */
    MK_CHECK(send_head(s, "GET", "/fast", 0));
    read_response(s, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    close(s);

    /* Work that answers nothing: 500. */
    MK_CHECK_INT(get(port, "/silent", buf, sizeof buf), 500);

    /* The client leaves during the work: the answer is dropped (ASan checks for leaks). */
    int d = dial(port, NULL);
    MK_CHECK(send_head(d, "GET", "/slow", 0));
    sleep_ms(20);
    close(d);
    sleep_ms(400);
    MK_CHECK_INT(atomic_load(&works_done), 2);
    MK_CHECK_INT(get(port, "/fast", buf, sizeof buf), 200);

    /* Over HTTP/2 the request itself goes away when the client does. */
    if (access("/usr/bin/curl", X_OK) == 0) {
        char cmd[200];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/curl -s -o /dev/null --max-time 0.1 --http2-prior-knowledge "
                 "http://127.0.0.1:%d/slow",
                 port);
        int ignored = system(cmd);
        (void)ignored;
        sleep_ms(400);
        MK_CHECK_INT(atomic_load(&works_done), 3);
        MK_CHECK_INT(get(port, "/fast", buf, sizeof buf), 200);
    }
    mk_httpd_free(h);
}

/* Stop with work running and work waiting: the first is answered, the second gets 503. */
static void test_offload_stop(void)
{
    mk_httpd_t *h = start(0, 1, 0, 0, 1);
    MK_CHECK(h != NULL);
    if (h == NULL)
        return;
    int port = mk_httpd_port(h);
    char buf[4096];
    int running = dial(port, NULL), waiting = dial(port, NULL);
    /* Connection: close, so no idle keep-alive connection is left when the loops are gone. */
    atomic_store(&offloaded, 0);
    MK_CHECK(send_head_with(running, "GET", "/slow", 0, "Connection: close\r\n"));
    for (int i = 0; i < 400 && atomic_load(&offloaded) < 1; i++)
        sleep_ms(5);
    MK_CHECK(send_head_with(waiting, "GET", "/slow", 0, "Connection: close\r\n"));
    for (int i = 0; i < 400 && atomic_load(&offloaded) < 2; i++)
        sleep_ms(5);
    sleep_ms(20); /* the pool thread has taken the first job */
    double t0 = now_ms();
    mk_httpd_stop(h);
    double took = now_ms() - t0;
    printf("offload_stop: stop took %.0f ms\n", took);
    MK_CHECK(took >= 200 && took < 2000);
    read_response(running, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    read_response(waiting, buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0);
    MK_CHECK(strstr(buf, "shutting down") != NULL);
    close(running);
    close(waiting);
    mk_httpd_free(h);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    MK_RUN(test_budget_total);
    MK_RUN(test_budget_per_client);
    MK_RUN(test_budget_many);
    MK_RUN(test_budget_h2);
    MK_RUN(test_port_owned);
    MK_RUN(test_offload);
    MK_RUN(test_offload_stop);
    return mk_testing_done();
}
