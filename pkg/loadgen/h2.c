/* HTTP/2 glue of the load generator. Separate from pkg/grpc's nghttp2 code because that one
 * runs its own blocking-call and server loop models; the load generator drives its sockets from
 * its epoll loop, so here nghttp2 only works on memory (mem_recv/mem_send) and the engine in
 * loadgen.c moves the bytes, over plain TCP (h2c, prior knowledge) or TLS (h2 by ALPN). */
#include "loadgen/h2.h"

#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NV 72

struct lg_h2 {
    nghttp2_session *s;
    int32_t stream;      /* the open stream, or -1 */
    int status;          /* its :status */
    bool headers;        /* its response headers arrived */
    int done;            /* 1 complete, -1 failed */
    bool goaway, broken; /* no new stream on this session */
    char err[80];
    char *req; /* a copy of the rendered request: names lowercased, the body the stream sends */
    size_t reqcap;
    const char *body;
    size_t body_len, body_off;
    const uint8_t *out; /* what mem_send returned, not yet written */
    size_t out_len, out_off;
};

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)s, (void)flags;
    lg_h2_t *h = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != h->stream)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3) {
        int st = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        if (h->status < 200) /* 1xx informational headers come first */
            h->status = st;
        else if (st >= 200)
            h->status = st;
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    lg_h2_t *h = ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id == h->stream)
        h->headers = true;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    lg_h2_t *h = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = true;
        if (f->goaway.error_code != NGHTTP2_NO_ERROR)
            snprintf(h->err, sizeof h->err, "http2: GOAWAY %s",
                     nghttp2_http2_strerror(f->goaway.error_code));
    }
    return 0;
}

/* We end the session (GOAWAY with an error) when the peer breaks the protocol. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    lg_h2_t *h = ud;
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR) {
        h->broken = true;
        snprintf(h->err, sizeof h->err, "http2: the server broke the protocol (%s)",
                 nghttp2_http2_strerror(f->goaway.error_code));
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)s;
    lg_h2_t *h = ud;
    if (id != h->stream || h->done)
        return 0;
    if (code == NGHTTP2_NO_ERROR && h->status >= 200) {
        h->done = 1;
    } else {
        h->done = -1;
        if (code != NGHTTP2_NO_ERROR)
            snprintf(h->err, sizeof h->err, "http2: stream reset: %s",
                     nghttp2_http2_strerror(code));
        else
            snprintf(h->err, sizeof h->err, "http2: stream closed without a response");
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)src;
    lg_h2_t *h = ud;
    size_t n = h->body_len - h->body_off;
    if (n > len)
        n = len;
    memcpy(buf, h->body + h->body_off, n);
    h->body_off += n;
    if (h->body_off == h->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

lg_h2_t *lg_h2_new(void)
{
    lg_h2_t *h = calloc(1, sizeof *h);
    nghttp2_session_callbacks *cb = NULL;
    if (!h || nghttp2_session_callbacks_new(&cb) != 0) {
        free(h);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    int rc = nghttp2_session_client_new(&h->s, cb, h);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    if (rc != 0 || nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, 1 << 24) != 0) {
        lg_h2_free(h);
        return NULL;
    }
    h->stream = -1;
    return h;
}

void lg_h2_free(lg_h2_t *h)
{
    if (!h)
        return;
    nghttp2_session_del(h->s);
    free(h->req);
    free(h);
}

/* Headers HTTP/2 forbids (RFC 9113 8.2.2) or carries as pseudo-headers. */
static bool dropped(const char *name, size_t len)
{
    static const char *const names[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
        "te",         "host"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return true;
    return false;
}

static nghttp2_nv nv(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen,
                        NGHTTP2_NV_FLAG_NO_COPY_NAME};
}

int lg_h2_submit(lg_h2_t *h, const char *req, size_t len, bool tls, char *msg, size_t msglen)
{
    if (h->broken || h->goaway || h->stream >= 0) {
        snprintf(msg, msglen, "http2: the session cannot take a stream");
        return -1;
    }
    if (len + 1 > h->reqcap) {
        char *p = realloc(h->req, len + 1);
        if (!p) {
            snprintf(msg, msglen, "http2: out of memory");
            return -1;
        }
        h->req = p;
        h->reqcap = len + 1;
    }
    memcpy(h->req, req, len);
    h->req[len] = '\0';
    char *p = h->req, *end = h->req + len;
    nghttp2_nv hv[MAX_NV];
    size_t n = 4;
    char *eol = strstr(p, "\r\n"), *sp1 = memchr(p, ' ', (size_t)(end - p));
    char *sp2 = sp1 && eol ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!eol || !sp1 || !sp2 || sp1 > eol) {
        snprintf(msg, msglen, "http2: malformed request");
        return -1;
    }
    hv[0] = nv(":method", 7, p, (size_t)(sp1 - p));
    hv[1] = nv(":scheme", 7, tls ? "https" : "http", tls ? 5 : 4);
    hv[2] = nv(":path", 5, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    hv[3] = nv(":authority", 10, "", 0);
    p = eol + 2;
    while (p < end && !(p[0] == '\r' && p + 1 < end && p[1] == '\n')) {
        eol = strstr(p, "\r\n");
        char *colon = eol ? memchr(p, ':', (size_t)(eol - p)) : NULL;
        if (!colon) {
            snprintf(msg, msglen, "http2: malformed request header");
            return -1;
        }
        size_t nl = (size_t)(colon - p);
        for (size_t i = 0; i < nl; i++)
            p[i] = (char)tolower((unsigned char)p[i]);
        char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        if (nl == 4 && memcmp(p, "host", 4) == 0)
            hv[3] = nv(":authority", 10, v, (size_t)(eol - v));
        else if (!dropped(p, nl)) {
            if (n == MAX_NV) {
                snprintf(msg, msglen, "http2: too many request headers");
                return -1;
            }
            hv[n++] = nv(p, nl, v, (size_t)(eol - v));
        }
        p = eol + 2;
    }
    if (p >= end) {
        snprintf(msg, msglen, "http2: malformed request");
        return -1;
    }
    h->body = p + 2;
    h->body_len = (size_t)(end - h->body);
    h->body_off = 0;
    h->status = 0;
    h->headers = false;
    h->done = 0;
    h->err[0] = '\0';
    nghttp2_data_provider dp = {.read_callback = read_body};
    /* a body-less method with Content-Length: 0 still ends the stream on its HEADERS frame */
    int32_t id = nghttp2_submit_request(h->s, NULL, hv, n, h->body_len ? &dp : NULL, NULL);
    if (id < 0) {
        snprintf(msg, msglen, "http2: %s", nghttp2_strerror(id));
        return -1;
    }
    h->stream = id;
    return 0;
}

int lg_h2_pending(lg_h2_t *h, const uint8_t **data, size_t *len, char *msg, size_t msglen)
{
    if (h->out_off == h->out_len) {
        ssize_t r = nghttp2_session_mem_send(h->s, &h->out);
        if (r < 0) {
            h->broken = true;
            snprintf(msg, msglen, "http2: %s", nghttp2_strerror((int)r));
            return -1;
        }
        h->out_len = (size_t)r;
        h->out_off = 0;
    }
    *data = h->out + h->out_off;
    *len = h->out_len - h->out_off;
    return 0;
}

void lg_h2_consumed(lg_h2_t *h, size_t n)
{
    h->out_off += n;
}

int lg_h2_feed(lg_h2_t *h, const uint8_t *buf, size_t len, char *msg, size_t msglen)
{
    ssize_t r = nghttp2_session_mem_recv(h->s, buf, len);
    if (r < 0) {
        h->broken = true;
        snprintf(msg, msglen, "http2: %s", nghttp2_strerror((int)r));
        return -1;
    }
    return 0;
}

int lg_h2_poll(lg_h2_t *h, char *msg, size_t msglen)
{
    if (h->stream < 0)
        return 0;
    if (h->done) {
        int d = h->done;
        h->stream = -1;
        h->done = 0;
        if (d < 0)
            snprintf(msg, msglen, "%s", h->err);
        return d;
    }
    if ((h->goaway || h->broken) && h->err[0]) {
        /* a GOAWAY with an error either way: the stream is lost */
        snprintf(msg, msglen, "%s", h->err);
        h->broken = true;
        return -1;
    }
    return 0;
}

int lg_h2_status(const lg_h2_t *h)
{
    return h->status;
}

bool lg_h2_headers_seen(const lg_h2_t *h)
{
    return h->headers;
}

bool lg_h2_reusable(const lg_h2_t *h)
{
    return !h->broken && !h->goaway && nghttp2_session_want_read(h->s);
}
