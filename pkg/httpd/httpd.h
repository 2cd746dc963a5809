/* The HTTP server: h2o event loops, one per worker thread, each with its own SO_REUSEPORT
 * listener on a port no other server process may share; HTTP/1.1 (keep-alive, pipelining), HTTP/2
 * over cleartext (prior knowledge, upgrade) and TLS with ALPN. The only module that includes h2o.h.
 * Handlers see a request view and answer through the mk_httpd_* functions below, immediately or
 * after a delay, exactly once. */
#ifndef MK_HTTPD_H
#define MK_HTTPD_H

#include "err/err.h"
#include "request/request.h"
#include "str/str.h"

#include <stdint.h>

typedef struct mk_httpd mk_httpd_t;
typedef struct mk_httpd_req mk_httpd_req_t;

typedef struct mk_httpd_config {
    const char *host;     /* listen address; NULL = 0.0.0.0 */
    int port;             /* 0 = any free port (see mk_httpd_port) */
    unsigned workers;     /* event loops; 0 = number of cores */
    const char *tls_cert; /* PEM chain file; with tls_key enables TLS with ALPN h2/http1.1 */
    const char *tls_key;
    size_t max_body_bytes;   /* larger request bodies are refused with 413 */
    uint64_t req_timeout_ms; /* a request not fully received in this time is dropped */
    /* Request bodies buffered at once, all connections together (0: no limit) and per client
     * address (0: an eighth of the total, at least max_body_bytes + 64 KiB). A body that would
     * go over is refused with 503 and Retry-After, and its connection closed. Connections
     * holding at most 64 KiB are not counted. */
    size_t max_inflight_body_bytes;
    size_t max_client_inflight_body_bytes;
    unsigned offload_threads; /* threads running mk_httpd_offload work; 0 = 2 */
    /* On stop, requests in flight (delayed answers, dribbled bodies) get this long to finish
     * after the listeners close; 0 = 200 ms. */
    uint64_t stop_grace_ms;
} mk_httpd_config_t;

/* Called on a worker thread for every request. The handler must answer with mk_httpd_respond()
 * (now, or later on the same worker thread through mk_httpd_respond_after()). */
typedef void (*mk_httpd_handler_cb)(void *ud, mk_httpd_req_t *req);

/* Binds the listeners now, so a port another process listens on fails here (MK_EIO, the
 * message names the port), even if that process set SO_REUSEPORT. Caller frees with
 * mk_httpd_free(). */
int mk_httpd_new(const mk_httpd_config_t *cfg, mk_httpd_handler_cb cb, void *ud, mk_httpd_t **out,
                 mk_err_t *err);
/* Starts the worker threads. */
int mk_httpd_start(mk_httpd_t *h, mk_err_t *err);
/* Stops accepting, lets in-flight responses finish (bounded), joins the workers. Offloaded
 * work already running is waited for and answered; work still queued is answered 503. */
void mk_httpd_stop(mk_httpd_t *h);
/* From now on every HTTP/1 response closes its connection (Connection: close), so keep-alive
 * clients and load balancers reconnect elsewhere while the node still answers: the first step of
 * a graceful shutdown. Any thread. */
void mk_httpd_drain(mk_httpd_t *h);
void mk_httpd_free(mk_httpd_t *h);
int mk_httpd_port(const mk_httpd_t *h);
unsigned mk_httpd_workers(const mk_httpd_t *h);
/* Request body bytes counted against the budget now, and connections refused over it so far. */
size_t mk_httpd_body_inflight(mk_httpd_t *h);
size_t mk_httpd_body_rejects(const mk_httpd_t *h);

/* The worker index (0..workers-1) serving req: a shard key for per-thread state. */
unsigned mk_httpd_req_worker(const mk_httpd_req_t *req);
/* Fills view with the request's method, path, query, headers and body (borrowed until the
 * response is sent). Calls mk_request_init(); the caller calls mk_request_release(). */
void mk_httpd_req_view(mk_httpd_req_t *req, mk_request_t *view);
/* Memory that lives until the response is sent. */
void *mk_httpd_req_alloc(mk_httpd_req_t *req, size_t size);
/* The request's id: the client's X-Request-Id when it sent one, else generated. Also sent back
 * as the X-Request-Id response header. */
mk_str_t mk_httpd_req_id(mk_httpd_req_t *req);
/* Microseconds since the request arrived (for durations). */
double mk_httpd_req_elapsed_ms(const mk_httpd_req_t *req);
/* Protocol version as a string ("HTTP/1.1", "HTTP/2"). */
const char *mk_httpd_req_protocol(const mk_httpd_req_t *req);
/* The client's address as text ("127.0.0.1", "::1") in buf; "" when unknown (offloaded work).
 * For per-client rate limits. */
void mk_httpd_req_peer(const mk_httpd_req_t *req, char *buf, size_t size);
/* True when the request came over TLS (cookies get Secure). */
bool mk_httpd_req_tls(const mk_httpd_req_t *req);
/* The authority the client addressed (the Host header, or HTTP/2's :authority) into buf; "" when
 * absent. For same-origin checks. */
void mk_httpd_req_authority(const mk_httpd_req_t *req, char *buf, size_t size);

/* Response headers; name and value are copied. */
void mk_httpd_add_header(mk_httpd_req_t *req, mk_str_t name, mk_str_t value);
/* The reason phrase of a common status ("Not Found"); "Status" for others. Static storage. */
const char *mk_httpd_reason_phrase(int status);
/* Sends the response; body is copied. */
void mk_httpd_respond(mk_httpd_req_t *req, int status, mk_str_t body);
/* Sends the response after delay_ms without blocking the event loop (body copied now). If the
 * client goes away first, nothing is sent and nothing leaks. */
void mk_httpd_respond_after(mk_httpd_req_t *req, int status, mk_str_t body, uint32_t delay_ms);

/* Broken answers on purpose (WireMock's faults), acted on the connection: EMPTY closes it
 * without a byte; MALFORMED_CHUNK sends a status line, chunked encoding and a garbage chunk, then
 * closes; RANDOM_THEN_CLOSE sends random bytes and closes; RESET aborts it with a TCP RST. On
 * HTTP/2 or TLS the whole connection is affected. */
typedef enum mk_httpd_fault {
    MK_HTTPD_FAULT_NONE,
    MK_HTTPD_FAULT_EMPTY,
    MK_HTTPD_FAULT_MALFORMED_CHUNK,
    MK_HTTPD_FAULT_RANDOM_THEN_CLOSE,
    MK_HTTPD_FAULT_RESET,
} mk_httpd_fault_t;

typedef struct mk_httpd_send_opts {
    uint32_t delay_ms;      /* before anything is sent */
    mk_httpd_fault_t fault; /* instead of the response */
    uint32_t chunks;        /* > 1: the body dribbles out in this many chunks ... */
    uint32_t chunks_ms;     /* ... spread over this long */
} mk_httpd_send_opts_t;

/* The general form of mk_httpd_respond_after: delay, fault or dribbled body; none of them blocks
 * the event loop. opts may be NULL (send now). */
void mk_httpd_send(mk_httpd_req_t *req, int status, mk_str_t body,
                   const mk_httpd_send_opts_t *opts);

/* Blocking work (a journal query, a list, an export) for a pool thread, so the worker's event
 * loop keeps serving meanwhile. Call it from the handler, on the worker thread, instead of
 * answering; then return. work(ud, wreq) runs later on a pool thread (HTTP_ADMIN_THREADS) with a
 * request of its own, wreq, valid until work returns. On wreq, work may call
 * mk_httpd_req_view (a copy of the request: method, path, query, headers, body),
 * mk_httpd_req_id, mk_httpd_req_alloc (freed with the job), mk_httpd_req_worker,
 * mk_httpd_req_elapsed_ms, mk_httpd_req_protocol, mk_httpd_add_header and one of
 * mk_httpd_respond / mk_httpd_respond_after / mk_httpd_send. Those build the answer; after work
 * returns, the request's own loop sends it (an answer missing is sent as 500). work must not call
 * mk_httpd_offload, keep wreq, or touch per-worker state sharded by mk_httpd_req_worker (the
 * loop runs concurrently). ud is borrowed and must outlive the server's mk_httpd_stop.
 * If the client goes away during the work, the answer is dropped and nothing leaks.
 * Returns 0 when queued. Otherwise (out of memory, MK_ENOMEM; pool stopping or 1024 jobs
 * waiting, MK_EUNAVAIL) it has already answered 503 with Retry-After; either way the caller
 * must not answer req. */
typedef void (*mk_httpd_work_cb)(void *ud, mk_httpd_req_t *req);
int mk_httpd_offload(mk_httpd_req_t *req, mk_httpd_work_cb work, void *ud);

/* --- Streaming responses (httpd_stream.c) ----------------------------------------------------
 * A response whose body is produced over time: Server-Sent Events, live tails, run progress.
 * Everything below runs on the request's worker thread unless it says "any thread".
 *
 * Start: in the handler (not in offloaded work), add headers with mk_httpd_add_header, then
 * mk_httpd_stream_start(): the status and headers leave at once (the body is chunked on HTTP/1.1,
 * DATA frames on HTTP/2) and *out is the stream. Instead of answering, the handler returns.
 *
 * Write: mk_httpd_stream_write(s, data) copies data into the stream's queue; it leaves as soon as
 * the connection takes it (h2o's proceed). What is queued and not yet taken is bounded by
 * opts.max_buffer: a write past it is refused with MK_ETOOBIG and queues nothing (the producer may
 * skip, or stop until on_drain); with opts.close_when_full the stream is also dropped (SLOW).
 * Nothing taken for opts.stall_ms while bytes wait also drops it (SLOW): a client that stopped
 * reading costs at most max_buffer plus the kernel's socket buffer. mk_httpd_stream_buffered()
 * says what waits; on_drain(ud), if set, runs each time the queue has been taken completely.
 *
 * Timers: mk_httpd_stream_after(s, i, ms, cb) runs cb(ud) once after ms (i below
 * MK_HTTPD_STREAM_TIMERS; arming i again replaces it; mk_httpd_stream_cancel(s, i)). They stop
 * when the stream ends, and share one list per duration per loop, so thousands of streams cost
 * nothing per loop turn. (Durations are rounded up: to 10 ms past 64 ms, 100 ms past 1 s, 1 s
 * past 10 s.)
 *
 * End: mk_httpd_stream_close(s) ends the response cleanly after what is queued;
 * mk_httpd_stream_abort(s) drops it (HTTP/1: the connection is closed without the last chunk;
 * HTTP/2: the stream is reset). When mk_httpd_stop begins, every open stream is closed cleanly
 * (STOPPING), dropped if its last bytes cannot leave within 100 ms; starting a stream then fails
 * with MK_EUNAVAIL.
 *
 * on_close(ud, why) runs exactly once per started stream, on the loop, never from inside a call
 * to this API: the response has ended and the request is gone. After it returns the stream
 * pointer is invalid (except for other threads' references, below) and ud is not used again,
 * so on_close is where the producer frees its state. (The process must ignore SIGPIPE, as boot
 * does: a dropped stream's socket is shut down under h2o's pending write.)
 *
 * Other threads (a run's progress arriving on a gRPC thread): on the loop, mk_httpd_stream_ref(s)
 * before handing s over; then from any thread mk_httpd_stream_write_from(s, data, close_after)
 * (copied, written on the loop) or mk_httpd_stream_post(s, cb, arg) (cb(s, arg) runs on the
 * loop; s is NULL there when the stream has ended meanwhile, and cb only frees arg). Both return
 * 0 when queued (cb then runs exactly once) or a negative MK_E* when not (cb never runs: the
 * server is gone). mk_httpd_stream_unref(s) from any thread when done with it. */
typedef struct mk_httpd_stream mk_httpd_stream_t;

#define MK_HTTPD_STREAM_TIMERS 4

typedef enum mk_httpd_stream_end {
    MK_HTTPD_STREAM_DONE,     /* mk_httpd_stream_close: everything was handed to the connection */
    MK_HTTPD_STREAM_GONE,     /* the client left or the connection broke */
    MK_HTTPD_STREAM_SLOW,     /* the client stopped reading (queue full or stalled) */
    MK_HTTPD_STREAM_ABORTED,  /* mk_httpd_stream_abort */
    MK_HTTPD_STREAM_STOPPING, /* the server is stopping */
} mk_httpd_stream_end_t;

typedef struct mk_httpd_stream_opts {
    size_t max_buffer;    /* bytes queued and not taken by the connection; 0 = 256 KiB */
    uint32_t stall_ms;    /* queued bytes untaken this long drop the stream; 0 = 30 s */
    bool close_when_full; /* a write refused for max_buffer also drops the stream (SLOW) */
} mk_httpd_stream_opts_t;

typedef struct mk_httpd_stream_cbs {
    void (*on_close)(void *ud, mk_httpd_stream_end_t why); /* see above; may be NULL */
    void (*on_drain)(void *ud);                            /* optional */
} mk_httpd_stream_cbs_t;

/* opts and cbs may be NULL (defaults; no callbacks) and are copied; ud is borrowed until
 * on_close. Errors (nothing sent, req still to be answered by the caller): MK_EINVAL for
 * offloaded work's request, MK_EUNAVAIL when the server is stopping, MK_ENOMEM. */
int mk_httpd_stream_start(mk_httpd_req_t *req, int status, const mk_httpd_stream_opts_t *opts,
                          const mk_httpd_stream_cbs_t *cbs, void *ud, mk_httpd_stream_t **out);
/* 0, MK_ETOOBIG (over max_buffer; nothing queued), MK_EINVAL (closing or ended), MK_ENOMEM. */
int mk_httpd_stream_write(mk_httpd_stream_t *s, mk_str_t data);
size_t mk_httpd_stream_buffered(const mk_httpd_stream_t *s);
/* True until close/abort/the client leaving: writes are accepted. */
bool mk_httpd_stream_open(const mk_httpd_stream_t *s);
void mk_httpd_stream_close(mk_httpd_stream_t *s);
void mk_httpd_stream_abort(mk_httpd_stream_t *s);
void mk_httpd_stream_after(mk_httpd_stream_t *s, unsigned timer, uint32_t ms, void (*cb)(void *ud));
void mk_httpd_stream_cancel(mk_httpd_stream_t *s, unsigned timer);
/* The loop's clock in milliseconds (monotonic). */
uint64_t mk_httpd_stream_now(const mk_httpd_stream_t *s);
/* The request (for mk_httpd_req_view, mk_httpd_req_id ...) until on_close; NULL after. */
mk_httpd_req_t *mk_httpd_stream_req(const mk_httpd_stream_t *s);
/* Open streams on req's worker (for metrics and tests). */
size_t mk_httpd_stream_count(mk_httpd_req_t *req);
void mk_httpd_stream_ref(mk_httpd_stream_t *s);
void mk_httpd_stream_unref(mk_httpd_stream_t *s); /* any thread */
typedef void (*mk_httpd_stream_post_cb)(mk_httpd_stream_t *s, void *arg);
int mk_httpd_stream_post(mk_httpd_stream_t *s, mk_httpd_stream_post_cb cb, void *arg);
int mk_httpd_stream_write_from(mk_httpd_stream_t *s, mk_str_t data, bool close_after);

#endif
