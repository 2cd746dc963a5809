/* The HTTP/2 glue against an in-memory nghttp2 server session: the request's pseudo-headers,
 * lowercased and dropped headers and body as a server sees them; a response's status through
 * reuse; RST_STREAM and GOAWAY as failures and the end of reuse. */
#include "loadgen/h2.h"
#include "testing/testing.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

typedef struct srv {
    nghttp2_session *s;
    char hdrs[1024]; /* "name=value;" in arrival order */
    char body[256];
    size_t body_len;
    int32_t stream;
    bool ended;
} srv_t;

static int s_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
                    const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    (void)s, (void)flags;
    srv_t *x = ud;
    x->stream = f->hd.stream_id;
    size_t len = strlen(x->hdrs);
    snprintf(x->hdrs + len, sizeof x->hdrs - len, "%.*s=%.*s;", (int)nl, n, (int)vl, v);
    return 0;
}

static int s_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len,
                  void *ud)
{
    (void)s, (void)flags, (void)id;
    srv_t *x = ud;
    memcpy(x->body + x->body_len, d, len);
    x->body_len += len;
    return 0;
}

static int s_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    srv_t *x = ud;
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM && f->hd.stream_id)
        x->ended = true;
    return 0;
}

static void srv_init(srv_t *x)
{
    memset(x, 0, sizeof *x);
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, s_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, s_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, s_frame);
    nghttp2_session_server_new(&x->s, cb, x);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(x->s, NGHTTP2_FLAG_NONE, NULL, 0);
}

/* Client -> server: everything the client has to send. */
static void to_server(lg_h2_t *h, srv_t *x)
{
    char msg[80];
    for (;;) {
        const uint8_t *d;
        size_t len;
        MK_CHECK_INT(lg_h2_pending(h, &d, &len, msg, sizeof msg), 0);
        if (!len)
            return;
        MK_CHECK_INT(nghttp2_session_mem_recv(x->s, d, len), (ssize_t)len);
        lg_h2_consumed(h, len);
    }
}

/* Server -> client; returns lg_h2_poll's verdict. */
static int to_client(srv_t *x, lg_h2_t *h, char *msg, size_t msglen)
{
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(x->s, &d)) > 0)
        MK_CHECK_INT(lg_h2_feed(h, d, (size_t)n, msg, msglen), 0);
    return lg_h2_poll(h, msg, msglen);
}

static void respond(srv_t *x, const char *status)
{
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)status, 7, 3, 0}};
    MK_CHECK_INT(nghttp2_submit_response(x->s, x->stream, nv, 1, NULL), 0);
}

static void test_request_and_reuse(void)
{
    srv_t x;
    srv_init(&x);
    lg_h2_t *h = lg_h2_new();
    char msg[80];
    const char req[] =
        "POST /orders?a=1 HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: mockarty-load\r\n"
        "X-Trace: T1\r\nConnection: keep-alive\r\nContent-Length: 11\r\n\r\n"
        "{\"sku\":\"A\"}";
    MK_CHECK_INT(lg_h2_submit(h, req, sizeof req - 1, true, msg, sizeof msg), 0);
    to_server(h, &x);
    MK_CHECK_STR(x.hdrs, ":method=POST;:scheme=https;:path=/orders?a=1;:authority=svc:8080;"
                         "user-agent=mockarty-load;x-trace=T1;content-length=11;");
    MK_CHECK_INT(x.body_len, 11);
    MK_CHECK(memcmp(x.body, "{\"sku\":\"A\"}", 11) == 0);
    MK_CHECK(x.ended);
    MK_CHECK(!lg_h2_headers_seen(h));
    respond(&x, "503");
    MK_CHECK_INT(to_client(&x, h, msg, sizeof msg), 1);
    MK_CHECK_INT(lg_h2_status(h), 503);
    MK_CHECK(lg_h2_headers_seen(h));
    MK_CHECK(lg_h2_reusable(h));
    to_server(h, &x); /* SETTINGS ack */

    /* the same session carries the next request, a GET without a body */
    x.hdrs[0] = '\0';
    x.ended = false;
    const char get[] = "GET / HTTP/1.1\r\nHost: svc\r\n\r\n";
    MK_CHECK_INT(lg_h2_submit(h, get, sizeof get - 1, false, msg, sizeof msg), 0);
    to_server(h, &x);
    MK_CHECK_STR(x.hdrs, ":method=GET;:scheme=http;:path=/;:authority=svc;");
    MK_CHECK_INT(x.stream, 3);
    MK_CHECK(x.ended);
    respond(&x, "200");
    MK_CHECK_INT(to_client(&x, h, msg, sizeof msg), 1);
    MK_CHECK_INT(lg_h2_status(h), 200);

    /* a reset stream fails the request */
    MK_CHECK_INT(lg_h2_submit(h, get, sizeof get - 1, false, msg, sizeof msg), 0);
    to_server(h, &x);
    nghttp2_submit_rst_stream(x.s, NGHTTP2_FLAG_NONE, x.stream, NGHTTP2_REFUSED_STREAM);
    MK_CHECK_INT(to_client(&x, h, msg, sizeof msg), -1);
    MK_CHECK(strstr(msg, "stream reset") != NULL);
    MK_CHECK(lg_h2_reusable(h));

    /* GOAWAY: the session takes no more streams */
    nghttp2_submit_goaway(x.s, NGHTTP2_FLAG_NONE, x.stream, NGHTTP2_NO_ERROR, NULL, 0);
    MK_CHECK_INT(to_client(&x, h, msg, sizeof msg), 0);
    MK_CHECK(!lg_h2_reusable(h));
    MK_CHECK_INT(lg_h2_submit(h, get, sizeof get - 1, false, msg, sizeof msg), -1);
    lg_h2_free(h);
    nghttp2_session_del(x.s);
}

static void test_goaway_with_error_fails_the_stream(void)
{
    srv_t x;
    srv_init(&x);
    lg_h2_t *h = lg_h2_new();
    char msg[80];
    const char get[] = "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n";
    MK_CHECK_INT(lg_h2_submit(h, get, sizeof get - 1, false, msg, sizeof msg), 0);
    to_server(h, &x);
    nghttp2_submit_goaway(x.s, NGHTTP2_FLAG_NONE, x.stream, NGHTTP2_INTERNAL_ERROR, NULL, 0);
    MK_CHECK_INT(to_client(&x, h, msg, sizeof msg), -1);
    MK_CHECK(strstr(msg, "GOAWAY") != NULL);
    MK_CHECK(!lg_h2_reusable(h));
    lg_h2_free(h);
    nghttp2_session_del(x.s);
}

static void test_malformed(void)
{
    lg_h2_t *h = lg_h2_new();
    char msg[80];
    const char bad[] = "GET\r\n\r\n";
    MK_CHECK_INT(lg_h2_submit(h, bad, sizeof bad - 1, false, msg, sizeof msg), -1);
    const char nohdr[] = "GET / HTTP/1.1\r\nbroken\r\n\r\n";
    MK_CHECK_INT(lg_h2_submit(h, nohdr, sizeof nohdr - 1, false, msg, sizeof msg), -1);
    /* the peer talks HTTP/1.1 while a stream waits: a protocol error fails it */
    const char get[] = "GET /x HTTP/1.1\r\nHost: svc\r\n\r\n";
    MK_CHECK_INT(lg_h2_submit(h, get, sizeof get - 1, false, msg, sizeof msg), 0);
    const uint8_t *d;
    size_t len;
    while (lg_h2_pending(h, &d, &len, msg, sizeof msg) == 0 && len)
        lg_h2_consumed(h, len);
    const char *h1 = "HTTP/1.1 400 Bad Request\r\n\r\n";
    int rc = lg_h2_feed(h, (const uint8_t *)h1, strlen(h1), msg, sizeof msg);
    while (rc == 0 && lg_h2_pending(h, &d, &len, msg, sizeof msg) == 0 && len)
        lg_h2_consumed(h, len); /* our GOAWAY goes out */
    MK_CHECK(rc < 0 || lg_h2_poll(h, msg, sizeof msg) == -1);
    MK_CHECK(strstr(msg, "http2") != NULL);
    MK_CHECK(!lg_h2_reusable(h));
    lg_h2_free(h);
}

int main(void)
{
    MK_RUN(test_request_and_reuse);
    MK_RUN(test_goaway_with_error_fails_the_stream);
    MK_RUN(test_malformed);
    return mk_testing_done();
}
