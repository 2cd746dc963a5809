/* A tiny blocking HTTP/1.0-style server on its own thread for /healthz, /readyz and /metrics:
 * one request per connection, GET only, answers rendered by a callback. */
#include "controller.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mk_controller_health {
    int fd;
    int port;
    mk_controller_http_fn fn;
    void *ud;
    volatile int stop;
    pthread_t thread;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void serve_one(mk_controller_health_t *h, int fd)
{
    char req[4096];
    size_t len = 0;
    /* Read until the end of the headers; a slow client gets 2 s. */
    while (len < sizeof req - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0)
            return;
        ssize_t r = read(fd, req + len, sizeof req - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[len] = '\0';
    char method[8] = "", path[256] = "";
    if (sscanf(req, "%7s %255s", method, path) != 2)
        return;
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    char *body = NULL;
    const char *ctype = "text/plain; charset=utf-8";
    int status;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = 405;
        body = strdup("method not allowed\n");
    } else {
        status = h->fn(h->ud, path, &body, &ctype);
    }
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 503 ? "Service Unavailable"
                                         : "Error";
    size_t blen = body ? strlen(body) : 0;
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, reason, ctype, blen);
    write_all(fd, head, (size_t)hn);
    if (body && strcmp(method, "HEAD") != 0)
        write_all(fd, body, blen);
    free(body);
}

static void *run(void *arg)
{
    mk_controller_health_t *h = arg;
    while (!h->stop) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        int n = poll(&p, 1, 200);
        if (n <= 0)
            continue;
        int fd = accept(h->fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(h, fd);
        close(fd);
    }
    return NULL;
}

int mk_controller_health_start(int port, mk_controller_http_fn fn, void *ud,
                               mk_controller_health_t **out, mk_err_t *err)
{
    int rc = 0;
    *out = NULL;
    mk_controller_health_t *h = calloc(1, sizeof *h);
    if (!h)
        return mk_err_set(err, MK_ENOMEM, "health: out of memory");
    h->fn = fn;
    h->ud = ud;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0) {
        rc = mk_err_set(err, MK_EIO, "health: socket: %s", strerror(errno));
        goto out;
    }
    int one = 1;
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port > 0 ? port : 0)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(h->fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(h->fd, 16) != 0) {
        rc = mk_err_set(err, MK_EIO, "health: cannot listen on port %d: %s", port, strerror(errno));
        goto out;
    }
    socklen_t sl = sizeof sa;
    getsockname(h->fd, (struct sockaddr *)&sa, &sl);
    h->port = ntohs(sa.sin_port);
    if (pthread_create(&h->thread, NULL, run, h) != 0) {
        rc = mk_err_set(err, MK_ENOMEM, "health: cannot start a thread");
        goto out;
    }
    *out = h;
    h = NULL;
out:
    if (h) {
        if (h->fd >= 0)
            close(h->fd);
        free(h);
    }
    return rc;
}

int mk_controller_health_bound_port(mk_controller_health_t *h)
{
    return h ? h->port : 0;
}

void mk_controller_health_stop(mk_controller_health_t *h)
{
    if (!h)
        return;
    h->stop = 1;
    pthread_join(h->thread, NULL);
    close(h->fd);
    free(h);
}
