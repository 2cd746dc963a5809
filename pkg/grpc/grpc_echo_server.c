/* The echo service of testdata/echo.proto on pkg/grpc, for the interop test (grpc_interop_test.py
 * drives it with Python grpcio). Prints "PORT <n>" when listening, one "DONE <path> <code>" line
 * per finished call, and stops gracefully when stdin closes.
 *   grpc_echo_server [--tls CERT KEY] [--client-ca CA] [--max-recv BYTES] [--keepalive MS] */
#include "grpc/grpc.h"

#include "echo.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

/* Per-call state: the texts seen so far (client stream) and the last request. */
typedef struct echo_call {
    char joined[4096];
    int nmsgs;
    Mktest__EchoRequest *last;
} echo_call_t;

static echo_call_t *state(mk_grpc_call_t *call)
{
    echo_call_t *st = mk_grpc_call_data(call);
    if (st == NULL) {
        st = calloc(1, sizeof *st);
        mk_grpc_call_set_data(call, st);
    }
    return st;
}

static void send_reply(mk_grpc_call_t *call, const char *text, int index, int delay_ms)
{
    Mktest__EchoReply r = MKTEST__ECHO_REPLY__INIT;
    r.text = (char *)text;
    r.index = index;
    r.peer_identity =
        (char *)(mk_grpc_call_peer_identity(call) ? mk_grpc_call_peer_identity(call) : "");
    const mk_grpc_md_t *echo = mk_grpc_md_get(mk_grpc_call_metadata(call), "x-echo");
    r.metadata = echo ? echo->value : "";
    size_t n = mktest__echo_reply__get_packed_size(&r);
    uint8_t *buf = malloc(n ? n : 1);
    mktest__echo_reply__pack(&r, buf);
    mk_grpc_call_send(call, buf, n, delay_ms);
    free(buf);
}

/* Finishes OK, or with the status the request asked for (plus a -bin trailer to check). */
static void finish(mk_grpc_call_t *call, const Mktest__EchoRequest *req, int delay_ms)
{
    mk_grpc_mdlist_t tr = {0};
    mk_grpc_md_add(&tr, "x-trailer", "t", 1);
    if (req && req->fail_code) {
        mk_grpc_md_add(&tr, "x-detail-bin", "\x00\x01\xff", 3);
        mk_grpc_call_finish(call, req->fail_code, "failed as asked: \xc3\xa9 100%", &tr, delay_ms);
    } else {
        mk_grpc_call_finish(call, MK_GRPC_OK, NULL, &tr, delay_ms);
    }
    mk_grpc_md_clear(&tr);
}

static void on_start(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    const mk_grpc_md_t *echo = mk_grpc_md_get(mk_grpc_call_metadata(call), "x-echo");
    if (echo)
        mk_grpc_call_add_header(call, "x-echo-header", echo->value, echo->len);
}

static void on_message(mk_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    const char *kind = ud;
    echo_call_t *st = state(call);
    Mktest__EchoRequest *req = mktest__echo_request__unpack(NULL, len, msg);
    if (req == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_INVALID_ARGUMENT, "cannot parse EchoRequest", NULL, 0);
        return;
    }
    st->nmsgs++;
    if (strlen(st->joined) + strlen(req->text) + 2 < sizeof st->joined) {
        if (st->joined[0])
            strcat(st->joined, ",");
        strcat(st->joined, req->text);
    }
    if (strcmp(kind, "bidi") == 0) {
        if (req->fail_code)
            finish(call, req, 0);
        else
            send_reply(call, req->text, st->nmsgs, req->delay_ms);
    }
    if (st->last)
        mktest__echo_request__free_unpacked(st->last, NULL);
    st->last = req;
}

static void on_half_close(mk_grpc_call_t *call, void *ud)
{
    const char *kind = ud;
    echo_call_t *st = state(call);
    Mktest__EchoRequest *req = st->last;
    if (strcmp(kind, "unary") == 0) {
        if (req == NULL) {
            mk_grpc_call_finish(call, MK_GRPC_INVALID_ARGUMENT, "no request message", NULL, 0);
            return;
        }
        if (!req->fail_code)
            send_reply(call, req->text, 1, req->delay_ms);
        finish(call, req, req->fail_code ? req->delay_ms : 0);
    } else if (strcmp(kind, "server") == 0) {
        int count = req ? req->count : 0;
        for (int i = 0; i < count; i++)
            send_reply(call, req->text, i + 1, req->delay_ms);
        finish(call, req, 0);
    } else if (strcmp(kind, "client") == 0) {
        send_reply(call, st->joined, st->nmsgs, 0);
        finish(call, NULL, 0);
    } else {
        finish(call, NULL, 0);
    }
}

static void on_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)ud;
    echo_call_t *st = mk_grpc_call_data(call);
    pthread_mutex_lock(&out_mu);
    printf("DONE %s %s\n", mk_grpc_call_path(call), mk_grpc_code_name(code));
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    if (st) {
        if (st->last)
            mktest__echo_request__free_unpacked(st->last, NULL);
        free(st);
    }
}

int main(int argc, char **argv)
{
    mk_grpc_tls_opts_t tls = {0};
    mk_grpc_server_opts_t o = {.threads = 2, .stop_grace_ms = 2000};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            tls.cert_file = argv[++i];
            tls.key_file = argv[++i];
            o.tls = &tls;
        } else if (strcmp(argv[i], "--client-ca") == 0 && i + 1 < argc) {
            tls.ca_file = argv[++i];
        } else if (strcmp(argv[i], "--max-recv") == 0 && i + 1 < argc) {
            o.max_recv_msg = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--keepalive") == 0 && i + 1 < argc) {
            o.keepalive_ms = atoi(argv[++i]);
        } else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    mk_err_t err = {0};
    mk_grpc_server_t *s;
    if (mk_grpc_server_new(&o, &s, &err) < 0) {
        fprintf(stderr, "server: %s\n", err.msg);
        return 1;
    }
    static const struct {
        const char *path, *kind;
    } methods[] = {
        {"/mktest.Echo/Unary", "unary"},
        {"/mktest.Echo/ServerStream", "server"},
        {"/mktest.Echo/ClientStream", "client"},
        {"/mktest.Echo/Bidi", "bidi"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        mk_grpc_method_t m = {.path = methods[i].path,
                              .on_start = on_start,
                              .on_message = on_message,
                              .on_half_close = on_half_close,
                              .on_done = on_done,
                              .ud = (void *)methods[i].kind};
        if (mk_grpc_server_add(s, &m, &err) < 0) {
            fprintf(stderr, "add: %s\n", err.msg);
            return 1;
        }
    }
    if (mk_grpc_server_start(s, &err) < 0) {
        fprintf(stderr, "start: %s\n", err.msg);
        mk_grpc_server_free(s);
        return 1;
    }
    pthread_mutex_lock(&out_mu);
    printf("PORT %d\n", mk_grpc_server_port(s));
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
    }
    mk_grpc_server_stop(s);
    pthread_mutex_lock(&out_mu);
    printf("STOPPED\n");
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    mk_grpc_server_free(s);
    return 0;
}
