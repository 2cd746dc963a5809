/* The WebSocket protocol without I/O: wslay parses what mk_ws_session_feed() hands it and
 * produces frames into an output buffer the connection (or a test) drains. */
#include "ws/ws.h"

#include <wslay/wslay.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CHUNK (64 * 1024)

struct mk_ws_session {
    wslay_event_context_ptr ctx;
    mk_ws_limits_t lim;
    mk_ws_message_cb cb;
    void *ud;
    const uint8_t *in; /* the bytes being fed */
    size_t in_len;
    uint8_t *out;
    size_t out_len, out_cap;
    /* wslay gave up on the input (a frame its parser refuses): we sent a close of our own. */
    bool fatal;
    uint16_t fatal_code;
    /* A close asked for while messages wait: wslay sends control frames first, so it is queued
     * only once they are out, and the peer gets the messages before the close. */
    bool close_pending;
    uint16_t close_code;
    char close_reason[124];
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    mk_ws_session_t *s = ud;
    if (s->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > s->in_len)
        len = s->in_len;
    memcpy(buf, s->in, len);
    s->in += len;
    s->in_len -= len;
    return (ssize_t)len;
}

static bool out_reserve(mk_ws_session_t *s, size_t more)
{
    if (s->out_len + more <= s->out_cap)
        return true;
    size_t cap = s->out_cap ? s->out_cap : 4096;
    while (cap < s->out_len + more)
        cap *= 2;
    uint8_t *p = realloc(s->out, cap);
    if (p == NULL)
        return false;
    s->out = p;
    s->out_cap = cap;
    return true;
}

/* Takes what wslay sends until a chunk's worth waits to be written (wslay resumes a frame where
 * a short take left it). */
static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    mk_ws_session_t *s = ud;
    if (len > OUT_CHUNK - (s->out_len < OUT_CHUNK ? s->out_len : OUT_CHUNK))
        len = OUT_CHUNK - (s->out_len < OUT_CHUNK ? s->out_len : OUT_CHUNK);
    if (len == 0 || !out_reserve(s, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(s->out + s->out_len, data, len);
    s->out_len += len;
    return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    (void)ctx;
    mk_ws_session_t *s = ud;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        s->cb(s->ud, arg->opcode == WSLAY_TEXT_FRAME ? MK_WS_TEXT : MK_WS_BINARY, arg->msg,
              arg->msg_length);
    /* Pings are answered and closes echoed by wslay itself. */
}

mk_ws_session_t *mk_ws_session_new(const mk_ws_limits_t *lim, mk_ws_message_cb cb, void *ud)
{
    mk_ws_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (lim)
        s->lim = *lim;
    if (s->lim.max_message == 0)
        s->lim.max_message = 1u << 20;
    if (s->lim.max_queued == 0)
        s->lim.max_queued = 4u << 20;
    if (s->lim.max_timers == 0)
        s->lim.max_timers = 1024;
    if (s->lim.close_wait_ms == 0)
        s->lim.close_wait_ms = 5000;
    s->cb = cb;
    s->ud = ud;
    struct wslay_event_callbacks cbs = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .on_msg_recv_callback = on_msg,
    };
    if (wslay_event_context_server_init(&s->ctx, &cbs, s) != 0) {
        free(s);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(s->ctx, s->lim.max_message);
    return s;
}

void mk_ws_session_free(mk_ws_session_t *s)
{
    if (s == NULL)
        return;
    wslay_event_context_free(s->ctx);
    free(s->out);
    free(s);
}

/* A close frame written by us, after whatever is already buffered: wslay stopped at a frame its
 * parser refuses and would close without a status code. */
static void fail(mk_ws_session_t *s, uint16_t code)
{
    if (s->fatal)
        return;
    s->fatal = true;
    s->fatal_code = code;
    if (wslay_event_get_close_sent(s->ctx))
        return;
    uint8_t frame[4] = {0x88, 2, (uint8_t)(code >> 8), (uint8_t)code};
    if (out_reserve(s, sizeof frame)) {
        memcpy(s->out + s->out_len, frame, sizeof frame);
        s->out_len += sizeof frame;
    }
}

void mk_ws_session_feed(mk_ws_session_t *s, const uint8_t *data, size_t len)
{
    if (s->fatal || !wslay_event_want_read(s->ctx))
        return;
    s->in = data;
    s->in_len = len;
    while (s->in_len > 0 && !s->fatal && wslay_event_want_read(s->ctx)) {
        if (wslay_event_recv(s->ctx) != 0)
            fail(s, MK_WS_CLOSE_PROTOCOL);
    }
    s->in = NULL;
    s->in_len = 0;
}

int mk_ws_session_send(mk_ws_session_t *s, mk_ws_kind_t kind, const void *data, size_t len)
{
    if (s->fatal || s->close_pending || wslay_event_get_close_sent(s->ctx))
        return MK_EUNAVAIL;
    if (wslay_event_get_queued_msg_length(s->ctx) + len > s->lim.max_queued)
        return MK_ETOOBIG;
    struct wslay_event_msg msg = {
        .opcode = kind == MK_WS_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
        .msg = data,
        .msg_length = len,
    };
    int rc = wslay_event_queue_msg(s->ctx, &msg);
    if (rc == WSLAY_ERR_NOMEM)
        return MK_ENOMEM;
    return rc == 0 ? 0 : MK_EUNAVAIL;
}

static void queue_close(mk_ws_session_t *s, uint16_t code, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;
    if (n > 123)
        n = 123;
    wslay_event_queue_close(s->ctx, code, (const uint8_t *)reason, n);
}

void mk_ws_session_close(mk_ws_session_t *s, uint16_t code, const char *reason)
{
    if (s->fatal || s->close_pending)
        return;
    if (!wslay_event_want_write(s->ctx)) {
        queue_close(s, code, reason);
        return;
    }
    s->close_pending = true;
    s->close_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason ? reason : "");
}

void mk_ws_session_abort(mk_ws_session_t *s, uint16_t code, const char *reason)
{
    if (s->fatal)
        return;
    s->close_pending = false;
    queue_close(s, code, reason);
}

mk_str_t mk_ws_session_output(mk_ws_session_t *s)
{
    if (s->close_pending && !wslay_event_want_write(s->ctx)) {
        s->close_pending = false;
        queue_close(s, s->close_code, s->close_reason);
    }
    if (s->out_len == 0 && !s->fatal && wslay_event_want_write(s->ctx) &&
        wslay_event_send(s->ctx) != 0)
        fail(s, MK_WS_CLOSE_INTERNAL);
    return (mk_str_t){(const char *)s->out, s->out_len};
}

void mk_ws_session_consume(mk_ws_session_t *s, size_t n)
{
    if (n >= s->out_len) {
        s->out_len = 0;
        return;
    }
    memmove(s->out, s->out + n, s->out_len - n);
    s->out_len -= n;
}

bool mk_ws_session_reading(const mk_ws_session_t *s)
{
    return !s->fatal && wslay_event_want_read(s->ctx);
}

bool mk_ws_session_done(mk_ws_session_t *s)
{
    if (s->out_len > 0 || s->close_pending)
        return false;
    if (s->fatal)
        return true;
    return !wslay_event_want_read(s->ctx) && !wslay_event_want_write(s->ctx);
}

uint16_t mk_ws_session_close_sent(const mk_ws_session_t *s)
{
    if (s->fatal && !wslay_event_get_close_sent(s->ctx))
        return s->fatal_code;
    return wslay_event_get_close_sent(s->ctx) ? wslay_event_get_status_code_sent(s->ctx) : 0;
}

uint16_t mk_ws_session_close_received(const mk_ws_session_t *s)
{
    return wslay_event_get_close_received(s->ctx) ? wslay_event_get_status_code_received(s->ctx)
                                                  : 0;
}

/* The connection reads the limits the session settled on. */
const mk_ws_limits_t *mk_ws_session_limits_(const mk_ws_session_t *s);
const mk_ws_limits_t *mk_ws_session_limits_(const mk_ws_session_t *s)
{
    return &s->lim;
}
