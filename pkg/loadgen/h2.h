/* HTTP/2 for load generator connections: an nghttp2 client session per connection, one stream
 * at a time. The engine owns the socket (plain or TLS) and moves bytes; this side turns a
 * rendered HTTP/1.1 request into a stream and the peer's frames into a status and a verdict. */
#ifndef MK_LOADGEN_H2_H
#define MK_LOADGEN_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lg_h2 lg_h2_t;

/* A client session with the connection preface and SETTINGS queued. NULL when out of memory. */
lg_h2_t *lg_h2_new(void);
void lg_h2_free(lg_h2_t *h);
/* Opens a stream for req, the bytes lg_request_render made (request line, headers, blank line,
 * body); Host becomes :authority, hop-by-hop headers are dropped. 0, or -1 with msg. */
int lg_h2_submit(lg_h2_t *h, const char *req, size_t len, bool tls, char *msg, size_t msglen);
/* The next bytes to write (*len 0 when nothing is pending); valid until lg_h2_consumed has
 * taken them all. -1 with msg when the session failed. */
int lg_h2_pending(lg_h2_t *h, const uint8_t **data, size_t *len, char *msg, size_t msglen);
void lg_h2_consumed(lg_h2_t *h, size_t n);
/* Feeds received bytes: 0, or -1 with msg on a protocol error (the session is lost). */
int lg_h2_feed(lg_h2_t *h, const uint8_t *buf, size_t len, char *msg, size_t msglen);
/* After feeding or writing: 0 while the stream runs (or none is open), 1 when its response is
 * complete, -1 with msg when it failed (RST_STREAM, a GOAWAY that refused it or carried an
 * error, closed without a response). */
int lg_h2_poll(lg_h2_t *h, char *msg, size_t msglen);
/* The response's :status (0 before the headers). */
int lg_h2_status(const lg_h2_t *h);
/* Response headers have arrived for the current stream (time to first byte). */
bool lg_h2_headers_seen(const lg_h2_t *h);
/* The session may carry another stream (no GOAWAY, no error). */
bool lg_h2_reusable(const lg_h2_t *h);

#endif
