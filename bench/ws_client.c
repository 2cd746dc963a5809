/* WebSocket round-trip load client for bench/protocols.sh: C connections on one thread (epoll),
 * each sending one masked text message and waiting for the whole reply before the next.
 * Prints "round_trips=N seconds=S rate=R p50_us=... p99_us=...".
 *   ws_client PORT PATH CONNECTIONS SECONDS MESSAGE */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    uint8_t in[65536];
    size_t in_len;
    double sent_at;
} conn_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t frame(uint8_t *out, const char *msg)
{
    size_t n = strlen(msg), k = 0;
    out[k++] = 0x81;
    if (n < 126) {
        out[k++] = (uint8_t)(0x80 | n);
    } else {
        out[k++] = 0x80 | 126;
        out[k++] = (uint8_t)(n >> 8);
        out[k++] = (uint8_t)n;
    }
    memset(out + k, 0, 4); /* a zero mask: the payload goes as written */
    k += 4;
    memcpy(out + k, msg, n);
    return k + n;
}

static int handshake(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[512];
    int n =
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 path);
    if (write(fd, req, (size_t)n) != n)
        exit(1);
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t r = read(fd, buf + got, 1); /* byte by byte: stop exactly at the head's end */
        if (r <= 0)
            exit(1);
        got += (size_t)r;
        buf[got] = '\0';
        if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "handshake refused: %.60s\n", buf);
        exit(1);
    }
    return fd;
}

/* Length of the first whole frame in buf, 0 when incomplete. */
static size_t whole_frame(const uint8_t *b, size_t n)
{
    if (n < 2)
        return 0;
    size_t len = b[1] & 0x7f, hdr = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (size_t)b[2] << 8 | b[3];
        hdr = 4;
    } else if (len == 127) {
        return 0; /* not expected from an echo of a small message */
    }
    return n >= hdr + len ? hdr + len : 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: ws_client PORT PATH CONNECTIONS SECONDS MESSAGE\n");
        return 2;
    }
    int port = atoi(argv[1]), nconn = atoi(argv[3]);
    double seconds = atof(argv[4]);
    uint8_t msg[1024];
    size_t msg_len = frame(msg, argv[5]);
    conn_t *conns = calloc((size_t)nconn, sizeof *conns);
    int ep = epoll_create1(0);
    /* Each connection first gets the connect message, if the endpoint has one: drained below. */
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = handshake(port, argv[2]);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    size_t cap = 1 << 22, nlat = 0;
    double *lat = malloc(cap * sizeof *lat);
    double start = now_s(), end = start + seconds;
    for (int i = 0; i < nconn; i++) {
        conns[i].sent_at = now_s();
        if (write(conns[i].fd, msg, msg_len) != (ssize_t)msg_len)
            return 1;
    }
    uint64_t trips = 0;
    struct epoll_event evs[256];
    while (now_s() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
            if (r <= 0) {
                fprintf(stderr, "connection closed: %s\n", r ? strerror(errno) : "EOF");
                return 1;
            }
            c->in_len += (size_t)r;
            size_t f;
            while ((f = whole_frame(c->in, c->in_len)) > 0) {
                memmove(c->in, c->in + f, c->in_len - f);
                c->in_len -= f;
                double t = now_s();
                trips++;
                if (nlat < cap)
                    lat[nlat++] = t - c->sent_at;
                c->sent_at = t;
                if (write(c->fd, msg, msg_len) != (ssize_t)msg_len)
                    return 1;
            }
        }
    }
    double took = now_s() - start;
    qsort(lat, nlat, sizeof *lat, cmp_double);
    printf("round_trips=%llu seconds=%.2f rate=%.0f p50_us=%.0f p99_us=%.0f\n",
           (unsigned long long)trips, took, trips / took, nlat ? lat[nlat / 2] * 1e6 : 0,
           nlat ? lat[nlat * 99 / 100] * 1e6 : 0);
    for (int i = 0; i < nconn; i++)
        close(conns[i].fd);
    free(conns);
    free(lat);
    return 0;
}
