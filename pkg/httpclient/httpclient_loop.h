/* An asynchronous HTTP client that runs on the caller's event loop (proxy mocks, recording): one
 * curl multi handle per loop, its sockets and timer gathered behind one file descriptor the loop
 * watches; plain http:// to a numeric IPv4 address skips curl (an HTTP/1.1 codec of our own,
 * same pool rules, timeouts and error wording), https:// and host names go through curl.
 * Connections are kept alive and reused across requests to the same host (the multi handle's pool),
 * TLS peers are verified unless a request opts out, and every transfer has a bounded timeout.
 * Everything here runs on the loop's own thread; nothing blocks. */
#ifndef MK_HTTPCLIENT_LOOP_H
#define MK_HTTPCLIENT_LOOP_H

#include "err/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mk_httpclient_loop mk_httpclient_loop_t;

typedef struct mk_httpclient_loop_config {
    unsigned max_conns; /* idle connections kept for reuse; 0: 256 */
    size_t max_body;    /* a longer answer fails the transfer; 0: 16 MiB */
} mk_httpclient_loop_config_t;

#define MK_HTTPCLIENT_LOOP_DEFAULT_TIMEOUT_MS 30000
#define MK_HTTPCLIENT_LOOP_MAX_TIMEOUT_MS     300000

/* Everything is copied by mk_httpclient_loop_send. */
typedef struct mk_httpclient_loop_req {
    const char *method;         /* NULL: "GET" */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* "Name: value" lines; n_headers of them */
    size_t n_headers;
    const void *body; /* NULL: none */
    size_t body_len;
    uint32_t timeout_ms;         /* the whole transfer; 0: the default; capped at the maximum */
    uint32_t connect_timeout_ms; /* 0: 5 s (or timeout_ms when shorter) */
    bool insecure;               /* do not verify the TLS peer (certificate and host name) */
} mk_httpclient_loop_req_t;

typedef struct mk_httpclient_loop_header {
    const char *name, *value;
    size_t name_len, value_len;
} mk_httpclient_loop_header_t;

/* The answer, all borrowed for the duration of the callback. */
typedef struct mk_httpclient_loop_resp {
    int status;        /* 0 when there was no answer */
    const char *error; /* "" on an answer, else why not (curl's words: timeout, refused, TLS) */
    const mk_httpclient_loop_header_t *headers; /* of the final response, in order */
    size_t n_headers;
    const char *body;
    size_t body_len;
    double duration_ms;
} mk_httpclient_loop_resp_t;

/* Runs on the loop's thread from mk_httpclient_loop_process (or mk_httpclient_loop_free, with
 * error "stopped"); may send again. */
typedef void (*mk_httpclient_loop_cb)(void *ud, const mk_httpclient_loop_resp_t *res);

int mk_httpclient_loop_new(const mk_httpclient_loop_config_t *cfg, mk_httpclient_loop_t **out,
                           mk_err_t *err);
/* Ends every transfer still out with error "stopped" (callbacks run), then frees. NULL is fine. */
void mk_httpclient_loop_free(mk_httpclient_loop_t *c);

/* The descriptor to watch for reading; when it is readable call mk_httpclient_loop_process. */
int mk_httpclient_loop_fd(const mk_httpclient_loop_t *c);
/* Moves the transfers whose sockets or timers are due and runs the callbacks of those done. */
void mk_httpclient_loop_process(mk_httpclient_loop_t *c);

/* Starts req. On success cb runs exactly once, later (never inside this call); on failure (bad
 * URL scheme MK_EINVAL, MK_ENOMEM) it never runs. */
int mk_httpclient_loop_send(mk_httpclient_loop_t *c, const mk_httpclient_loop_req_t *req,
                            mk_httpclient_loop_cb cb, void *ud, mk_err_t *err);

/* Transfers started and not yet ended. */
size_t mk_httpclient_loop_in_flight(const mk_httpclient_loop_t *c);

#endif
