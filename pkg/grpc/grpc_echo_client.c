/* pkg/grpc's client against the echo service of testdata/echo.proto served by Python grpcio
 * (grpc_interop_test.py starts that server). Prints one line per check; exits 1 on a failure.
 *   grpc_echo_client HOST:PORT [--ca CERT]     (the server's receive limit is 1 KiB) */
#include "grpc/grpc.h"

#include "echo.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;

static void check(int ok, const char *what, const char *detail)
{
    printf("%s C client: %s%s%s\n", ok ? "ok  " : "FAIL", what, detail ? ": " : "",
           detail ? detail : "");
    fflush(stdout);
    if (!ok)
        failures++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t *pack_req(const char *text, int count, int delay_ms, int fail_code, size_t pad,
                         size_t *len)
{
    Mktest__EchoRequest r = MKTEST__ECHO_REQUEST__INIT;
    r.text = (char *)text;
    r.count = count;
    r.delay_ms = delay_ms;
    r.fail_code = fail_code;
    uint8_t *padding = NULL;
    if (pad) {
        padding = calloc(1, pad);
        r.pad.data = padding;
        r.pad.len = pad;
    }
    *len = mktest__echo_request__get_packed_size(&r);
    uint8_t *buf = malloc(*len ? *len : 1);
    mktest__echo_request__pack(&r, buf);
    free(padding);
    return buf;
}

static int send_req(mk_grpc_stream_t *s, const char *text, int count, int delay_ms, int fail)
{
    size_t n;
    uint8_t *b = pack_req(text, count, delay_ms, fail, 0, &n);
    int rc = mk_grpc_stream_send(s, b, n, NULL);
    free(b);
    return rc;
}

/* Receives one reply; returns its index (text copied into text), or -1 at the end. */
static int recv_reply(mk_grpc_stream_t *s, char *text, size_t size)
{
    uint8_t *m;
    size_t n;
    if (mk_grpc_stream_recv(s, &m, &n) != 1)
        return -1;
    Mktest__EchoReply *r = mktest__echo_reply__unpack(NULL, n, m);
    free(m);
    if (r == NULL)
        return -2;
    snprintf(text, size, "%s", r->text);
    int idx = r->index;
    mktest__echo_reply__free_unpacked(r, NULL);
    return idx;
}

static void test_unary(mk_grpc_channel_t *ch)
{
    mk_grpc_mdlist_t md = {0};
    mk_grpc_md_add(&md, "x-echo", "v1", 2);
    size_t n;
    uint8_t *req = pack_req("hi", 0, 0, 0, 0, &n);
    uint8_t *resp;
    size_t rn;
    mk_grpc_status_t st = {0};
    mk_err_t err = {0};
    int code = mk_grpc_unary(ch, "/mktest.Echo/Unary", &md, req, n, 5000, &resp, &rn, &st, &err);
    Mktest__EchoReply *r = code == 0 ? mktest__echo_reply__unpack(NULL, rn, resp) : NULL;
    check(r && strcmp(r->text, "hi") == 0 && strcmp(r->metadata, "v1") == 0,
          "unary echoes text and metadata", st.message);
    const mk_grpc_md_t *h = mk_grpc_md_get(&st.headers, "x-echo-header");
    const mk_grpc_md_t *t = mk_grpc_md_get(&st.trailers, "x-trailer");
    check(h && strcmp(h->value, "v1") == 0, "unary header metadata", NULL);
    check(t && strcmp(t->value, "t") == 0, "unary trailing metadata", NULL);
    if (r)
        mktest__echo_reply__free_unpacked(r, NULL);
    free(resp);
    free(req);
    mk_grpc_status_clear(&st);
    mk_grpc_md_clear(&md);

    req = pack_req("x", 0, 0, MK_GRPC_NOT_FOUND, 0, &n);
    code = mk_grpc_unary(ch, "/mktest.Echo/Unary", NULL, req, n, 5000, &resp, &rn, &st, &err);
    const mk_grpc_md_t *bin = mk_grpc_md_get(&st.trailers, "x-detail-bin");
    check(code == MK_GRPC_NOT_FOUND && st.message &&
              strcmp(st.message, "failed as asked: \xc3\xa9 100%") == 0,
          "error status with percent-encoded UTF-8 message", st.message);
    check(bin && bin->len == 3 && memcmp(bin->value, "\x00\x01\xff", 3) == 0,
          "-bin trailer decoded", NULL);
    free(req);
    mk_grpc_status_clear(&st);

    code = mk_grpc_unary(ch, "/mktest.Echo/Nope", NULL, (const uint8_t *)"", 0, 5000, &resp, &rn,
                         &st, &err);
    check(code == MK_GRPC_UNIMPLEMENTED, "unknown method UNIMPLEMENTED", st.message);
    mk_grpc_status_clear(&st);

    req = pack_req("big", 0, 0, 0, 4096, &n);
    code = mk_grpc_unary(ch, "/mktest.Echo/Unary", NULL, req, n, 5000, &resp, &rn, &st, &err);
    check(code == MK_GRPC_RESOURCE_EXHAUSTED, "4 KiB request over grpcio's 1 KiB limit",
          st.message);
    free(req);
    mk_grpc_status_clear(&st);

    req = pack_req("slow", 0, 3000, 0, 0, &n);
    double t0 = now_s();
    code = mk_grpc_unary(ch, "/mktest.Echo/Unary", NULL, req, n, 300, &resp, &rn, &st, &err);
    double took = now_s() - t0;
    char d[64];
    snprintf(d, sizeof d, "%s in %.2f s", mk_grpc_code_name(code), took);
    check(code == MK_GRPC_DEADLINE_EXCEEDED && took < 1.5, "deadline 300 ms on a 3 s answer", d);
    free(req);
    mk_grpc_status_clear(&st);
}

static void test_streams(mk_grpc_channel_t *ch)
{
    mk_err_t err = {0};
    char text[256], d[128];
    mk_grpc_stream_t *s;
    /* server streaming */
    mk_grpc_stream_start(ch, "/mktest.Echo/ServerStream", NULL, 5000, &s, &err);
    send_req(s, "s", 5, 0, 0);
    mk_grpc_stream_close_send(s);
    int idx, got = 0, ok = 1;
    while ((idx = recv_reply(s, text, sizeof text)) > 0)
        ok &= idx == ++got;
    int code = mk_grpc_stream_finish(s, NULL);
    snprintf(d, sizeof d, "%d replies, %s", got, mk_grpc_code_name(code));
    check(ok && got == 5 && code == 0, "server streaming", d);
    mk_grpc_stream_free(s);

    /* client streaming */
    mk_grpc_stream_start(ch, "/mktest.Echo/ClientStream", NULL, 5000, &s, &err);
    send_req(s, "a", 0, 0, 0);
    send_req(s, "b", 0, 0, 0);
    send_req(s, "c", 0, 0, 0);
    mk_grpc_stream_close_send(s);
    idx = recv_reply(s, text, sizeof text);
    code = mk_grpc_stream_finish(s, NULL);
    check(idx == 3 && strcmp(text, "a,b,c") == 0 && code == 0, "client streaming", text);
    mk_grpc_stream_free(s);

    /* bidi in lock step */
    mk_grpc_stream_start(ch, "/mktest.Echo/Bidi", NULL, 5000, &s, &err);
    const char *words[] = {"x", "y", "z"};
    ok = 1;
    for (int i = 0; i < 3; i++) {
        send_req(s, words[i], 0, 0, 0);
        idx = recv_reply(s, text, sizeof text);
        ok &= idx == i + 1 && strcmp(text, words[i]) == 0;
    }
    mk_grpc_stream_close_send(s);
    ok &= recv_reply(s, text, sizeof text) == -1;
    code = mk_grpc_stream_finish(s, NULL);
    check(ok && code == 0, "bidi in lock step", mk_grpc_code_name(code));
    mk_grpc_stream_free(s);

    /* cancel a server stream after two messages */
    mk_grpc_stream_start(ch, "/mktest.Echo/ServerStream", NULL, 30000, &s, &err);
    send_req(s, "c", 100, 50, 0);
    mk_grpc_stream_close_send(s);
    int a = recv_reply(s, text, sizeof text), b = recv_reply(s, text, sizeof text);
    mk_grpc_stream_cancel(s);
    code = mk_grpc_stream_finish(s, NULL);
    check(a == 1 && b == 2 && code == MK_GRPC_CANCELLED, "cancel after two messages",
          mk_grpc_code_name(code));
    mk_grpc_stream_free(s);
}

static void *hammer(void *arg)
{
    mk_grpc_channel_t *ch = arg;
    intptr_t bad = 0;
    for (int i = 0; i < 20; i++) {
        char text[32];
        snprintf(text, sizeof text, "t%d", i);
        size_t n, rn;
        uint8_t *req = pack_req(text, 0, 0, 0, 0, &n), *resp = NULL;
        int code =
            mk_grpc_unary(ch, "/mktest.Echo/Unary", NULL, req, n, 10000, &resp, &rn, NULL, NULL);
        Mktest__EchoReply *r = code == 0 ? mktest__echo_reply__unpack(NULL, rn, resp) : NULL;
        bad += !(r && strcmp(r->text, text) == 0);
        if (r)
            mktest__echo_reply__free_unpacked(r, NULL);
        free(req);
        free(resp);
    }
    return (void *)bad;
}

static void test_concurrency(mk_grpc_channel_t *ch)
{
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, hammer, ch);
    intptr_t bad = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += (intptr_t)r;
    }
    check(bad == 0, "8 threads x 20 unary calls on one channel", NULL);
}

static void test_recv_limit(const char *target, const mk_grpc_tls_opts_t *tls)
{
    mk_grpc_channel_opts_t o = {.target = target, .tls = tls, .max_recv_msg = 64};
    mk_grpc_channel_t *ch;
    mk_err_t err = {0};
    mk_grpc_channel_new(&o, &ch, &err);
    char text[200];
    memset(text, 'q', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    size_t n, rn;
    uint8_t *req = pack_req(text, 0, 0, 0, 0, &n), *resp;
    mk_grpc_status_t st = {0};
    int code = mk_grpc_unary(ch, "/mktest.Echo/Unary", NULL, req, n, 5000, &resp, &rn, &st, &err);
    check(code == MK_GRPC_RESOURCE_EXHAUSTED, "reply over our 64-byte receive limit", st.message);
    free(req);
    mk_grpc_status_clear(&st);
    mk_grpc_channel_free(ch);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s HOST:PORT [--ca CERT]\n", argv[0]);
        return 2;
    }
    mk_grpc_tls_opts_t tls = {0};
    const mk_grpc_tls_opts_t *tlsp = NULL;
    if (argc >= 4 && strcmp(argv[2], "--ca") == 0) {
        tls.ca_file = argv[3];
        tlsp = &tls;
    }
    mk_grpc_channel_opts_t o = {.target = argv[1], .tls = tlsp};
    mk_grpc_channel_t *ch;
    mk_err_t err = {0};
    if (mk_grpc_channel_new(&o, &ch, &err) < 0) {
        fprintf(stderr, "channel: %s\n", err.msg);
        return 1;
    }
    test_unary(ch);
    test_streams(ch);
    test_concurrency(ch);
    mk_grpc_channel_free(ch);
    test_recv_limit(argv[1], tlsp);

    if (tlsp) {
        /* The system store does not know the test's self-signed certificate. */
        mk_grpc_tls_opts_t sys = {0};
        mk_grpc_channel_opts_t so = {.target = argv[1], .tls = &sys};
        mk_grpc_channel_new(&so, &ch, &err);
        size_t rn;
        uint8_t *resp;
        mk_grpc_status_t st = {0};
        int code = mk_grpc_unary(ch, "/mktest.Echo/Unary", NULL, (const uint8_t *)"", 0, 5000,
                                 &resp, &rn, &st, &err);
        check(code == MK_GRPC_UNAVAILABLE && st.message && strstr(st.message, "certificate"),
              "untrusted server certificate refused", st.message);
        mk_grpc_status_clear(&st);
        mk_grpc_channel_free(ch);
    }

    /* Nothing listens on port 1: the call cannot start, and says why. */
    mk_grpc_channel_opts_t bad = {.target = "127.0.0.1:1"};
    mk_grpc_channel_new(&bad, &ch, &err);
    mk_grpc_stream_t *s = NULL;
    int rc = mk_grpc_stream_start(ch, "/mktest.Echo/Unary", NULL, 1000, &s, &err);
    check(rc == MK_EUNAVAIL && strstr(err.msg, "refused") != NULL, "connect failure", err.msg);
    mk_grpc_stream_free(s);
    mk_grpc_channel_free(ch);
    printf("C client: %d failures\n", failures);
    return failures ? 1 : 0;
}
