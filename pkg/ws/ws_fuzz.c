/* Fuzz harness: bytes from a WebSocket client through the session (frames, fragments, control
 * frames, close codes, size limit) and every message through the mock matcher's key and route
 * encoding, as the server does it. The first input byte picks how the rest is split into reads.
 * Replayed over fuzz_corpus/ws by ws_fuzz_replay under the sanitizers. */
#include "mock/mock_socket.h"
#include "ws/ws.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct state {
    mk_ws_session_t *s;
    size_t messages;
} state_t;

static void on_message(void *ud, mk_ws_kind_t kind, const uint8_t *data, size_t len)
{
    state_t *st = ud;
    st->messages++;
    json_t *json = json_loadb((const char *)data, len, JSON_DECODE_ANY, NULL);
    mk_str_t key;
    if (mk_mock_socket_key(json, (mk_str_t){(const char *)data, len}, kind == MK_WS_TEXT, &key)) {
        char route[MK_MOCK_SOCKET_MAX_ROUTE];
        size_t n = mk_mock_socket_route(MK_STR_LIT("/ws"), key, route, sizeof route);
        if (n == 0 || strlen(route) != n)
            abort(); /* every key within the limit must fit, without a NUL inside */
        for (size_t i = 1; i < n; i++)
            if (route[i] == '?' || route[i] == '#' || route[i] == ':' || route[i] == '*' ||
                (route[i] == '/' && i > 3))
                abort(); /* an encoded key is one literal segment */
    }
    json_decref(json);
    /* Echo, so output and the send queue bound are exercised too. */
    mk_ws_session_send(st->s, kind, data, len);
    if (st->messages == 3)
        mk_ws_session_close(st->s, 4000, "third");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    mk_ws_limits_t lim = {.max_message = 4096, .max_queued = 8192};
    state_t st = {0};
    st.s = mk_ws_session_new(&lim, on_message, &st);
    if (st.s == NULL)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        mk_ws_session_feed(st.s, data + off, n);
        /* Drain part of the output now and then, as a slow socket would. */
        if ((off / step) % 3 == 0) {
            mk_str_t out = mk_ws_session_output(st.s);
            mk_ws_session_consume(st.s, out.len / 2 + 1);
        }
    }
    for (int i = 0; i < 1000; i++) {
        mk_str_t out = mk_ws_session_output(st.s);
        if (out.len == 0)
            break;
        mk_ws_session_consume(st.s, out.len);
    }
    (void)mk_ws_session_done(st.s);
    (void)mk_ws_session_close_sent(st.s);
    mk_ws_session_free(st.s);
    return 0;
}

/* Inputs past a fuzzer's length cap: a message far over the limit in small frames, a frame
 * declaring a 2^63-byte payload, a long key. */
void mk_fuzz_big_cases(void);
void mk_fuzz_big_cases(void)
{
    size_t len = 1 + 64 * (8 + 1024); /* 4 header bytes and a 4-byte mask per frame */
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return;
    buf[0] = 16;
    size_t k = 1;
    for (int i = 0; i < 64; i++) {
        buf[k++] = (uint8_t)(i == 0 ? 0x01 : i == 63 ? 0x80 : 0x00);
        buf[k++] = 0x80 | 126;
        buf[k++] = 1024 >> 8;
        buf[k++] = 0;
        memset(buf + k, 0, 4 + 1024); /* zero mask: payload as written */
        memset(buf + k + 4, 'a', 1024);
        k += 4 + 1024;
    }
    LLVMFuzzerTestOneInput(buf, k);
    const uint8_t huge[] = {3,    0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0,    0,    0,    0,    'x'};
    LLVMFuzzerTestOneInput(huge, sizeof huge);
    /* A text message whose whole text is a key of exactly the limit, then one byte over. */
    for (size_t n = MK_MOCK_SOCKET_MAX_EVENT; n <= MK_MOCK_SOCKET_MAX_EVENT + 1; n++) {
        k = 0;
        buf[k++] = 16;
        buf[k++] = 0x81;
        buf[k++] = 0x80 | 126;
        buf[k++] = (uint8_t)(n >> 8);
        buf[k++] = (uint8_t)n;
        memset(buf + k, 0, 4);
        k += 4;
        memset(buf + k, '/', n);
        k += n;
        LLVMFuzzerTestOneInput(buf, k);
    }
    free(buf);
}
