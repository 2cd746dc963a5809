/* WebSocket (RFC 6455) server connections over an upgraded HTTP/1.1 request: wslay does the
 * framing, h2o's socket the I/O, all on the worker's event loop. The only module that includes
 * wslay.
 *
 * Two layers: a session (frames in, frames out, no I/O: what the unit test and the fuzz harness
 * drive) and a connection (a session on an upgraded socket, with timers and a close deadline).
 * Close codes the peer sees: 1002 for a broken frame (bad opcode, reserved bits, an unmasked
 * client frame, an oversized or fragmented control frame, a bad close code), 1007 for text that
 * is not UTF-8, 1009 for a message over the size limit, 1008 when our send queue to it is full. */
#ifndef MK_WS_H
#define MK_WS_H

#include "err/err.h"
#include "httpd/httpd.h"
#include "str/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mk_ws_kind {
    MK_WS_TEXT = 1,
    MK_WS_BINARY = 2,
} mk_ws_kind_t;

#define MK_WS_CLOSE_NORMAL     1000
#define MK_WS_CLOSE_GOING_AWAY 1001
#define MK_WS_CLOSE_PROTOCOL   1002
#define MK_WS_CLOSE_INVALID    1007
#define MK_WS_CLOSE_POLICY     1008
#define MK_WS_CLOSE_TOO_BIG    1009
#define MK_WS_CLOSE_INTERNAL   1011

typedef struct mk_ws_limits {
    size_t max_message;     /* largest message received (all its frames); 0 = 1 MiB */
    size_t max_queued;      /* bytes queued for the peer at most; 0 = 4 MiB */
    unsigned max_timers;    /* timers pending per connection at most; 0 = 1024 */
    uint32_t close_wait_ms; /* after our close frame, how long the peer has to answer; 0 = 5 s */
} mk_ws_limits_t;

/* ---- session: the protocol without I/O ---- */

typedef struct mk_ws_session mk_ws_session_t;
/* A whole message (text is valid UTF-8). data is borrowed for the call. */
typedef void (*mk_ws_message_cb)(void *ud, mk_ws_kind_t kind, const uint8_t *data, size_t len);

/* A server-side session. lim may be NULL (defaults). Caller frees with mk_ws_session_free(). */
mk_ws_session_t *mk_ws_session_new(const mk_ws_limits_t *lim, mk_ws_message_cb cb, void *ud);
void mk_ws_session_free(mk_ws_session_t *s);
/* Parses bytes from the peer, calling cb per message; answers pings and closes by itself. Input
 * after the session stopped reading is dropped. */
void mk_ws_session_feed(mk_ws_session_t *s, const uint8_t *data, size_t len);
/* Queues a message. MK_ETOOBIG when the queue would pass max_queued, MK_EUNAVAIL when the session
 * is closing, MK_ENOMEM. */
int mk_ws_session_send(mk_ws_session_t *s, mk_ws_kind_t kind, const void *data, size_t len);
/* Closes after the messages already queued (reason cut to 123 bytes); a second close is
 * ignored. */
void mk_ws_session_close(mk_ws_session_t *s, uint16_t code, const char *reason);
/* Closes ahead of the messages still queued (they are dropped): for a peer that does not read. */
void mk_ws_session_abort(mk_ws_session_t *s, uint16_t code, const char *reason);
/* The bytes to write next (up to 64 KiB), empty when there is nothing; after writing them, call
 * mk_ws_session_consume() with their length. */
mk_str_t mk_ws_session_output(mk_ws_session_t *s);
void mk_ws_session_consume(mk_ws_session_t *s, size_t n);
/* True while the peer's bytes are still wanted. */
bool mk_ws_session_reading(const mk_ws_session_t *s);
/* True when the session has nothing left to read or write: the socket can be closed. */
bool mk_ws_session_done(mk_ws_session_t *s);
/* The close code we sent (0 when none yet) and the one we received (0 when none). */
uint16_t mk_ws_session_close_sent(const mk_ws_session_t *s);
uint16_t mk_ws_session_close_received(const mk_ws_session_t *s);

/* ---- connection: a session on an upgraded HTTP/1.1 request ---- */

typedef struct mk_ws_conn mk_ws_conn_t;

typedef struct mk_ws_handlers {
    void (*on_open)(mk_ws_conn_t *c, void *ud); /* after the 101 went out */
    void (*on_message)(mk_ws_conn_t *c, mk_ws_kind_t kind, mk_str_t msg, void *ud);
    void (*on_timer)(mk_ws_conn_t *c, uint64_t tag, void *ud); /* see mk_ws_after */
    /* Last call: the connection is gone (closed by either side, or the server stopped). */
    void (*on_close)(mk_ws_conn_t *c, void *ud);
} mk_ws_handlers_t;

/* True when req is a WebSocket handshake we can take: GET over HTTP/1.x with Upgrade: websocket
 * and a 24-byte Sec-WebSocket-Key. */
bool mk_ws_is_handshake(mk_httpd_req_t *req);
/* Answers req with 101 and turns its connection into a WebSocket served on this worker's loop.
 * h (copied) and ud (borrowed until on_close) get its events; on_close is called even when the
 * client leaves before the upgrade completes. The caller must not answer req otherwise. Fails
 * (nothing sent; answer req yourself) with MK_EINVAL when req is not a handshake. */
int mk_ws_accept(mk_httpd_req_t *req, const mk_ws_limits_t *lim, const mk_ws_handlers_t *h,
                 void *ud, mk_err_t *err);
/* Queues a message (see mk_ws_session_send); on MK_ETOOBIG the connection is closed with 1008. */
int mk_ws_send(mk_ws_conn_t *c, mk_ws_kind_t kind, mk_str_t data);
/* Calls h->on_timer(c, tag) after delay_ms (never from inside this call). MK_ETOOBIG past
 * max_timers. Delays are grouped in per-loop lists; past 64 distinct values a delay is rounded
 * up to the nearest list's. */
int mk_ws_after(mk_ws_conn_t *c, uint32_t delay_ms, uint64_t tag);
/* Starts the closing handshake with code after the messages already queued; the socket closes
 * once the peer answers (or close_wait_ms after the close frame went out). */
void mk_ws_close(mk_ws_conn_t *c, uint16_t code, const char *reason);
/* The worker index the connection lives on (for per-worker state: journal, catalog reader). */
unsigned mk_ws_worker(const mk_ws_conn_t *c);

#endif
