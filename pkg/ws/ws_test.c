/* The WebSocket session: frames from a client in, frames and close codes out. */
#include "testing/testing.h"
#include "ws/ws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct got {
    int n;
    mk_ws_kind_t kind;
    char last[256];
    size_t last_len;
} got_t;

static void on_message(void *ud, mk_ws_kind_t kind, const uint8_t *data, size_t len)
{
    got_t *g = ud;
    g->n++;
    g->kind = kind;
    g->last_len = len;
    memcpy(g->last, data, len < sizeof g->last ? len : sizeof g->last);
}

/* A client frame (masked unless mask is false) into out; returns its length. */
static size_t frame(uint8_t *out, bool fin, uint8_t opcode, const void *payload, size_t len,
                    bool mask)
{
    size_t k = 0;
    out[k++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        out[k++] = (uint8_t)(m | len);
    } else if (len < 65536) {
        out[k++] = (uint8_t)(m | 126);
        out[k++] = (uint8_t)(len >> 8);
        out[k++] = (uint8_t)len;
    } else {
        out[k++] = (uint8_t)(m | 127);
        for (int i = 7; i >= 0; i--)
            out[k++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    if (mask) {
        memcpy(out + k, key, 4);
        k += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[k + i] = (uint8_t)(((const uint8_t *)payload)[i] ^ (mask ? key[i % 4] : 0));
    return k + len;
}

/* Drains the session's output into buf; returns its length. */
static size_t drain(mk_ws_session_t *s, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        mk_str_t out = mk_ws_session_output(s);
        if (out.len == 0 || n + out.len > cap)
            return n;
        memcpy(buf + n, out.base, out.len);
        n += out.len;
        mk_ws_session_consume(s, out.len);
    }
}

/* The close code of the close frame that ends out (0 when the output holds none). */
static int close_code_in(const uint8_t *out, size_t n)
{
    size_t k = 0;
    int code = 0;
    while (k + 2 <= n) {
        uint8_t op = out[k] & 0x0f;
        size_t len = out[k + 1] & 0x7f, hdr = 2;
        if (len == 126) {
            len = (size_t)out[k + 2] << 8 | out[k + 3];
            hdr = 4;
        }
        if (op == 8)
            code = len >= 2 ? (out[k + hdr] << 8 | out[k + hdr + 1]) : 1005;
        k += hdr + len;
    }
    return code;
}

static void test_text_round_trip(void)
{
    got_t g = {0};
    mk_ws_session_t *s = mk_ws_session_new(NULL, on_message, &g);
    uint8_t in[64], out[256];
    size_t n = frame(in, true, 1, "hello", 5, true);
    /* One byte at a time: the parser keeps partial frames. */
    for (size_t i = 0; i < n; i++)
        mk_ws_session_feed(s, in + i, 1);
    MK_CHECK_INT(g.n, 1);
    MK_CHECK_INT(g.kind, MK_WS_TEXT);
    MK_CHECK(g.last_len == 5 && memcmp(g.last, "hello", 5) == 0);
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_TEXT, "world", 5), 0);
    size_t k = drain(s, out, sizeof out);
    MK_CHECK_INT(k, 7); /* unmasked server frame: 2 header bytes */
    MK_CHECK(out[0] == 0x81 && out[1] == 5 && memcmp(out + 2, "world", 5) == 0);
    MK_CHECK(!mk_ws_session_done(s));
    mk_ws_session_free(s);
}

static void test_fragments_and_binary(void)
{
    got_t g = {0};
    mk_ws_session_t *s = mk_ws_session_new(NULL, on_message, &g);
    uint8_t in[128];
    size_t n = frame(in, false, 2, "\x00\x01", 2, true);
    n += frame(in + n, true, 9, "p", 1, true); /* a ping between fragments is allowed */
    n += frame(in + n, true, 0, "\x02", 1, true);
    mk_ws_session_feed(s, in, n);
    MK_CHECK_INT(g.n, 1);
    MK_CHECK_INT(g.kind, MK_WS_BINARY);
    MK_CHECK(g.last_len == 3 && memcmp(g.last, "\x00\x01\x02", 3) == 0);
    uint8_t out[64];
    size_t k = drain(s, out, sizeof out);
    MK_CHECK(k == 3 && out[0] == 0x8a && out[1] == 1 && out[2] == 'p'); /* the pong */
    mk_ws_session_free(s);
}

static void expect_close(const uint8_t *in, size_t n, const mk_ws_limits_t *lim, int code)
{
    got_t g = {0};
    mk_ws_session_t *s = mk_ws_session_new(lim, on_message, &g);
    mk_ws_session_feed(s, in, n);
    uint8_t out[512];
    size_t k = drain(s, out, sizeof out);
    MK_CHECK_INT(g.n, 0);
    MK_CHECK_INT(close_code_in(out, k), code);
    MK_CHECK_INT(mk_ws_session_close_sent(s), code);
    MK_CHECK(!mk_ws_session_reading(s));
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_TEXT, "x", 1), MK_EUNAVAIL);
    mk_ws_session_free(s);
}

static void test_broken_frames(void)
{
    uint8_t in[512];
    /* An unmasked client frame. */
    expect_close(in, frame(in, true, 1, "hi", 2, false), NULL, MK_WS_CLOSE_PROTOCOL);
    /* A reserved opcode. */
    expect_close(in, frame(in, true, 3, "hi", 2, true), NULL, MK_WS_CLOSE_PROTOCOL);
    /* RSV1 set without an extension. */
    size_t n = frame(in, true, 1, "hi", 2, true);
    in[0] |= 0x40;
    expect_close(in, n, NULL, MK_WS_CLOSE_PROTOCOL);
    /* A control frame longer than 125 bytes (refused by wslay's frame parser itself). */
    char big[200];
    memset(big, 'a', sizeof big);
    expect_close(in, frame(in, true, 9, big, sizeof big, true), NULL, MK_WS_CLOSE_PROTOCOL);
    /* A fragmented control frame. */
    expect_close(in, frame(in, false, 9, "p", 1, true), NULL, MK_WS_CLOSE_PROTOCOL);
    /* A continuation with nothing to continue. */
    expect_close(in, frame(in, true, 0, "x", 1, true), NULL, MK_WS_CLOSE_PROTOCOL);
    /* Text that is not UTF-8. */
    expect_close(in, frame(in, true, 1, "\xff\xfe", 2, true), NULL, MK_WS_CLOSE_INVALID);
}

static void test_too_big(void)
{
    mk_ws_limits_t lim = {.max_message = 100};
    uint8_t in[512];
    char body[150];
    memset(body, 'b', sizeof body);
    expect_close(in, frame(in, true, 1, body, sizeof body, true), &lim, MK_WS_CLOSE_TOO_BIG);
    /* Two fragments that pass the limit together. */
    size_t n = frame(in, false, 1, body, 60, true);
    n += frame(in + n, true, 0, body, 60, true);
    expect_close(in, n, &lim, MK_WS_CLOSE_TOO_BIG);
    /* At the limit is fine. */
    got_t g = {0};
    mk_ws_session_t *s = mk_ws_session_new(&lim, on_message, &g);
    n = frame(in, true, 1, body, 100, true);
    mk_ws_session_feed(s, in, n);
    MK_CHECK_INT(g.n, 1);
    mk_ws_session_free(s);
}

static void test_close_handshake(void)
{
    got_t g = {0};
    mk_ws_session_t *s = mk_ws_session_new(NULL, on_message, &g);
    uint8_t in[64], out[64];
    size_t n = frame(in, true, 8,
                     "\x03\xe8"
                     "bye",
                     5, true);
    mk_ws_session_feed(s, in, n);
    MK_CHECK_INT(mk_ws_session_close_received(s), 1000);
    size_t k = drain(s, out, sizeof out);
    MK_CHECK_INT(close_code_in(out, k), 1000); /* echoed */
    MK_CHECK(mk_ws_session_done(s));

    /* Ours first: we keep reading until the peer answers. */
    mk_ws_session_t *t = mk_ws_session_new(NULL, on_message, &g);
    mk_ws_session_close(t, 4001, "custom");
    k = drain(t, out, sizeof out);
    MK_CHECK_INT(close_code_in(out, k), 4001);
    MK_CHECK(k == 10 && memcmp(out + 4, "custom", 6) == 0);
    MK_CHECK(!mk_ws_session_done(t));
    n = frame(in, true, 8, "\x0f\xa1", 2, true);
    mk_ws_session_feed(t, in, n);
    MK_CHECK(mk_ws_session_done(t));
    mk_ws_session_free(t);
    /* A close code that may not be sent on the wire (1005) is a protocol error. */
    n = frame(in, true, 8, "\x03\xed", 2, true);
    expect_close(in, n, NULL, MK_WS_CLOSE_PROTOCOL);
    mk_ws_session_free(s);
}

static void test_close_after_messages(void)
{
    /* wslay sends control frames first; a close must still follow the messages before it. */
    mk_ws_session_t *s = mk_ws_session_new(NULL, on_message, NULL);
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_TEXT, "last words", 10), 0);
    mk_ws_session_close(s, 4000, "done");
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_TEXT, "late", 4), MK_EUNAVAIL);
    MK_CHECK(!mk_ws_session_done(s));
    uint8_t out[128];
    size_t k = drain(s, out, sizeof out);
    MK_CHECK(k == 12 + 8 && out[0] == 0x81 && memcmp(out + 2, "last words", 10) == 0);
    MK_CHECK(out[12] == 0x88);
    MK_CHECK_INT(close_code_in(out, k), 4000);
    MK_CHECK_INT(mk_ws_session_close_sent(s), 4000);
    mk_ws_session_free(s);
    /* An abort goes first and drops what waits. */
    s = mk_ws_session_new(NULL, on_message, NULL);
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_TEXT, "dropped", 7), 0);
    mk_ws_session_abort(s, MK_WS_CLOSE_POLICY, "full");
    k = drain(s, out, sizeof out);
    MK_CHECK(k > 0 && out[0] == 0x88);
    mk_ws_session_free(s);
}

static void test_send_queue_bound(void)
{
    mk_ws_limits_t lim = {.max_queued = 1000};
    mk_ws_session_t *s = mk_ws_session_new(&lim, on_message, NULL);
    char chunk[400] = {0};
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_BINARY, chunk, sizeof chunk), 0);
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_BINARY, chunk, sizeof chunk), 0);
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_BINARY, chunk, sizeof chunk), MK_ETOOBIG);
    /* What the peer reads frees room. */
    uint8_t out[2048];
    MK_CHECK(drain(s, out, sizeof out) > 800);
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_BINARY, chunk, sizeof chunk), 0);
    mk_ws_session_free(s);
}

static void test_large_message_out(void)
{
    /* Output comes in chunks; the whole frame arrives across them. */
    mk_ws_session_t *s = mk_ws_session_new(NULL, on_message, NULL);
    size_t len = 300 * 1024;
    char *big = malloc(len);
    memset(big, 'z', len);
    MK_CHECK_INT(mk_ws_session_send(s, MK_WS_TEXT, big, len), 0);
    size_t total = 0, rounds = 0;
    for (;;) {
        mk_str_t out = mk_ws_session_output(s);
        if (out.len == 0)
            break;
        total += out.len;
        rounds++;
        mk_ws_session_consume(s, out.len);
    }
    MK_CHECK_INT(total, len + 10);
    MK_CHECK(rounds > 1);
    free(big);
    mk_ws_session_free(s);
}

int main(void)
{
    MK_RUN(test_text_round_trip);
    MK_RUN(test_fragments_and_binary);
    MK_RUN(test_broken_frames);
    MK_RUN(test_too_big);
    MK_RUN(test_close_handshake);
    MK_RUN(test_close_after_messages);
    MK_RUN(test_send_queue_bound);
    MK_RUN(test_large_message_out);
    return mk_testing_done();
}
