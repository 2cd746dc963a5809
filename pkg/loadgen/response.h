/* HTTP/1.1 response framing for the load generator: status, keep-alive, and where the body ends
 * (Content-Length, chunked, or the connection closing). A codec apart from the connection so
 * it can be fuzzed alone. Bodies are skipped, not kept. */
#ifndef MK_LOADGEN_RESPONSE_H
#define MK_LOADGEN_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_RESP_HEAD_MAX (64 * 1024)

typedef enum lg_resp_state {
    P_HEAD,
    P_LEN,
    P_CHUNK_SIZE,
    P_CHUNK_DATA,
    P_CHUNK_CRLF,
    P_TRAILER,
    P_CLOSE
} lg_resp_state_t;

typedef struct lg_resp {
    lg_resp_state_t ps;
    bool head_request; /* the answer to HEAD has no body */
    int status;
    bool keepalive;
    uint64_t left;
    char *hbuf; /* a head split over reads (LG_RESP_HEAD_MAX bytes, allocated on first need) */
    size_t hlen;
    size_t linelen; /* chunk-size or trailer line length so far */
    uint64_t chunk;
    bool chunk_hex_done;
} lg_resp_t;

/* Ready for the next response; keeps the head buffer for reuse. */
void lg_resp_reset(lg_resp_t *r, bool head_request);
/* Frees the head buffer. */
void lg_resp_free(lg_resp_t *r);
/* Feeds received bytes: 1 the response is complete (bytes after it are ignored: no pipelining),
 * 0 more needed, -1 malformed, -2 head above LG_RESP_HEAD_MAX. In P_CLOSE the body ends when the
 * peer closes: the caller completes the response at EOF. */
int lg_resp_feed(lg_resp_t *r, const char *p, size_t n);

#endif
