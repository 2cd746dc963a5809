/* The blocking client (fetch.h) against a tiny HTTP/1.1 server on a loopback socket in a thread. */
#include "httpclient/fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testing/testing.h"

static int srv_fd;
static int srv_port;

/* Reads one request; returns its path in path and the body in body. */
static int read_request(int fd, char *buf, size_t cap, char **body)
{
    size_t len = 0;
    char *end = NULL;
    while (!end && len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return -1;
    size_t clen = 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl)
        clen = strtoul(cl + 17, NULL, 10);
    size_t have = len - (size_t)(end + 4 - buf);
    while (have < clen && len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        have += (size_t)n;
        buf[len] = '\0';
    }
    *body = end + 4;
    return 0;
}

static void reply(int fd, const char *status, const char *extra, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%s\r\n", status, len,
                     extra);
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, len) < 0)
        return;
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        static char buf[65536];
        char *body;
        if (read_request(fd, buf, sizeof buf, &body) == 0) {
            char method[16] = "", path[256] = "";
            sscanf(buf, "%15s %255s", method, path);
            if (strcmp(path, "/stop") == 0) {
                close(fd);
                return NULL;
            }
            if (strcmp(path, "/redirect") == 0) {
                reply(fd, "302 Found", "Location: /echo\r\n", "", 0);
            } else if (strcmp(path, "/slow") == 0) {
                sleep(2);
                reply(fd, "200 OK", "", "late", 4);
            } else if (strcmp(path, "/big") == 0) {
                static char big[100000];
                memset(big, 'x', sizeof big);
                reply(fd, "200 OK", "", big, sizeof big);
            } else {
                char out[1024], extra[512] = "";
                const char *t = strcasestr(buf, "\r\nX-Test:");
                if (t) {
                    const char *e = strstr(t + 2, "\r\n");
                    snprintf(extra, sizeof extra,
                             "X-Seen: %.*s\r\nSet-Cookie: a=1\r\n"
                             "Set-Cookie: b=2\r\n",
                             (int)(e - t - 9), t + 9);
                }
                int n = snprintf(out, sizeof out, "%s %s %s", method, path, body);
                reply(fd, "201 Created Here", extra, out, (size_t)n);
            }
        }
        close(fd);
    }
}

static char url_buf[256];
static const char *url(const char *path)
{
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%d%s", srv_port, path);
    return url_buf;
}

static void test_post_with_headers(void)
{
    mk_httpclient_fetch_header_t hs[] = {{"X-Test", "hello"}, {"Content-Type", "text/plain"}};
    mk_httpclient_fetch_req_t req = {.method = "POST",
                                     .url = url("/echo"),
                                     .headers = hs,
                                     .n_headers = 2,
                                     .body = "abc",
                                     .body_len = 3,
                                     .timeout_ms = 5000};
    mk_httpclient_fetch_resp_t resp;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_httpclient_fetch(&req, &resp, &err), 0);
    MK_CHECK_INT(resp.status, 201);
    MK_CHECK_STR(resp.reason, "Created Here");
    MK_CHECK_STR(resp.http_version, "HTTP/1.1");
    MK_CHECK_STR(resp.body, "POST /echo abc");
    MK_CHECK_INT(resp.body_len, 14);
    MK_CHECK_STR(mk_httpclient_fetch_resp_header(&resp, "x-seen"), "hello");
    MK_CHECK_STR(mk_httpclient_fetch_resp_header(&resp, "set-cookie"), "a=1");
    int cookies = 0;
    for (size_t i = 0; i < resp.n_headers; i++)
        cookies += strcmp(resp.headers[i].name, "Set-Cookie") == 0;
    MK_CHECK_INT(cookies, 2);
    MK_CHECK(resp.total_ms > 0);
    mk_httpclient_fetch_resp_free(&resp);
}

static void test_redirects(void)
{
    mk_httpclient_fetch_req_t req = {.url = url("/redirect"), .timeout_ms = 5000};
    mk_httpclient_fetch_resp_t resp;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_httpclient_fetch(&req, &resp, &err), 0);
    MK_CHECK_INT(resp.status, 302);
    MK_CHECK_STR(mk_httpclient_fetch_resp_header(&resp, "location"), "/echo");
    mk_httpclient_fetch_resp_free(&resp);

    req.follow_redirects = 1;
    MK_CHECK_INT(mk_httpclient_fetch(&req, &resp, &err), 0);
    MK_CHECK_INT(resp.status, 201);
    MK_CHECK_INT(resp.redirects, 1);
    MK_CHECK_STR(resp.body, "GET /echo ");
    MK_CHECK(strstr(resp.effective_url, "/echo") != NULL);
    /* only the final response's headers */
    MK_CHECK(mk_httpclient_fetch_resp_header(&resp, "location") == NULL);
    mk_httpclient_fetch_resp_free(&resp);
}

static void test_failures(void)
{
    mk_httpclient_fetch_resp_t resp;
    mk_err_t err = {0};
    mk_httpclient_fetch_req_t slow = {.url = url("/slow"), .timeout_ms = 300};
    MK_CHECK_INT(mk_httpclient_fetch(&slow, &resp, &err), MK_EUNAVAIL);
    MK_CHECK(strstr(err.msg, "imeout") != NULL || strstr(err.msg, "timed out") != NULL);

    mk_httpclient_fetch_req_t big = {.url = url("/big"), .max_body = 1000, .timeout_ms = 5000};
    MK_CHECK_INT(mk_httpclient_fetch(&big, &resp, &err), MK_ETOOBIG);
    MK_CHECK(strstr(err.msg, "1000 bytes") != NULL);

    mk_httpclient_fetch_req_t refused = {.url = "http://127.0.0.1:1/", .timeout_ms = 2000};
    MK_CHECK_INT(mk_httpclient_fetch(&refused, &resp, &err), MK_EUNAVAIL);

    mk_httpclient_fetch_req_t file = {.url = "file:///etc/passwd"};
    MK_CHECK(mk_httpclient_fetch(&file, &resp, &err) < 0);
    mk_httpclient_fetch_resp_free(&resp);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the server writes to clients that gave up */
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(srv_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(srv_fd, 16) < 0 ||
        getsockname(srv_fd, (struct sockaddr *)&a, &alen) < 0) {
        perror("listen");
        return 1;
    }
    srv_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);
    MK_RUN(test_post_with_headers);
    MK_RUN(test_redirects);
    MK_RUN(test_failures);
    mk_httpclient_fetch_resp_t resp;
    mk_httpclient_fetch_req_t stop = {.url = url("/stop"), .timeout_ms = 2000};
    mk_httpclient_fetch(&stop, &resp, NULL);
    mk_httpclient_fetch_resp_free(&resp);
    pthread_join(t, NULL);
    close(srv_fd);
    return mk_testing_done();
}
