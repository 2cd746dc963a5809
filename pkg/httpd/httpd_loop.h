/* A worker's event loop for modules that talk to other servers without blocking it (the
 * asynchronous Redis client): file descriptor readiness, one-shot timers, per-loop state that is
 * torn down before the loop, and requests answered later from the loop. Everything here runs on
 * the loop's own thread. */
#ifndef MK_HTTPD_LOOP_H
#define MK_HTTPD_LOOP_H

#include "httpd/httpd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mk_httpd_loop mk_httpd_loop_t;

/* The loop of the worker serving req (valid while the server lives). */
mk_httpd_loop_t *mk_httpd_req_loop(mk_httpd_req_t *req);

/* A loop of our own, for tests and tools: mk_httpd_loop_run() turns it once, waiting at most
 * max_wait_ms for an event. mk_httpd_loop_free() disposes its slots, then the loop. */
mk_httpd_loop_t *mk_httpd_loop_new(void);
void mk_httpd_loop_run(mk_httpd_loop_t *loop, int32_t max_wait_ms);
void mk_httpd_loop_free(mk_httpd_loop_t *loop);

/* Per-loop state of a module, found by key (any address the module owns). Returns the slot's
 * data pointer (NULL the first time; the caller stores its state there). dispose(data) runs when
 * the loop is torn down, on the thread that frees the server, after the loop has stopped and
 * while its sockets and timers may still be closed. At most 16 keys per loop; NULL when full. */
void **mk_httpd_loop_slot(mk_httpd_loop_t *loop, const void *key, void (*dispose)(void *data));

/* on_stop(data) (data: the slot's data pointer) runs on the loop's thread when the server begins
 * to stop: it accepts no more and in-flight responses get a short grace period next, so
 * long-lived responses (streams, WebSockets) end there and their connections can close. The slot
 * must exist (mk_httpd_loop_slot). */
void mk_httpd_loop_on_stop(mk_httpd_loop_t *loop, const void *key, void (*on_stop)(void *data));

/* True while the loop's slots are being disposed (the server is being freed): a callback that
 * runs then must not answer requests, only release what it holds. */
bool mk_httpd_loop_disposing(const mk_httpd_loop_t *loop);

/* Milliseconds of the loop's clock (monotonic, updated once per turn). */
uint64_t mk_httpd_loop_now(mk_httpd_loop_t *loop);

/* Readiness of a socket the caller owns (fd is borrowed: the watcher works on a duplicate, so
 * closing either side never closes the other). on_read fires while reading is on and the socket
 * is readable; on_write fires once after each mk_httpd_watch_write(w, true) when writable. */
typedef struct mk_httpd_watch mk_httpd_watch_t;
typedef void (*mk_httpd_watch_cb)(void *ud);
mk_httpd_watch_t *mk_httpd_watch_new(mk_httpd_loop_t *loop, int fd, mk_httpd_watch_cb on_read,
                                     mk_httpd_watch_cb on_write, void *ud);
void mk_httpd_watch_read(mk_httpd_watch_t *w, bool on);
void mk_httpd_watch_write(mk_httpd_watch_t *w, bool on);
/* Stops watching; safe from inside the watcher's own callbacks. NULL is fine. */
void mk_httpd_watch_free(mk_httpd_watch_t *w);

/* A one-shot timer of a fixed period: mk_httpd_timer_arm() (re)starts it. */
typedef struct mk_httpd_timer mk_httpd_timer_t;
mk_httpd_timer_t *mk_httpd_timer_new(mk_httpd_loop_t *loop, uint32_t period_ms,
                                     void (*cb)(void *ud), void *ud);
void mk_httpd_timer_arm(mk_httpd_timer_t *t);
void mk_httpd_timer_disarm(mk_httpd_timer_t *t);
bool mk_httpd_timer_armed(const mk_httpd_timer_t *t);
void mk_httpd_timer_free(mk_httpd_timer_t *t);

/* Memory in req's pool whose on_gone(p) runs when the request is freed: after its response was
 * sent, or earlier when the client left or the server stopped while it waited. A module that
 * answers req later keeps a flag there to know whether req still exists. */
void *mk_httpd_req_alloc_guard(mk_httpd_req_t *req, size_t size, void (*on_gone)(void *p));

/* For pkg/httpd and pkg/ws only (defined in httpd.c, used by httpd_loop.c, and by pkg/ws to
 * upgrade req to a WebSocket, the one other module built on h2o): the h2o request behind req. */
struct st_h2o_req_t;
struct st_h2o_req_t *mk_httpd_req_h2o(mk_httpd_req_t *req);
/* For pkg/httpd only (httpd.c's worker, when stopping): runs the on_stop hooks of ctx's loop. */
struct st_h2o_context_t;
void mk_httpd_loop_stopping(struct st_h2o_context_t *ctx);

#endif
