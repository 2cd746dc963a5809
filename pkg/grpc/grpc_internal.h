/* Internal pieces shared by the server and the client: an epoll event loop with timers and a
 * cross-thread task queue, and a connection (socket or TLS, nghttp2 session, output buffer,
 * keepalive). Everything here runs on the loop's thread unless it says otherwise. */
#ifndef MK_GRPC_INTERNAL_H
#define MK_GRPC_INTERNAL_H

#include "grpc/grpc.h"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

int64_t mk_grpc_now_ms(void); /* monotonic */

typedef struct mk_grpc_loop mk_grpc_loop_t;
typedef struct mk_grpc_conn mk_grpc_conn_t;

typedef struct mk_grpc_timer {
    int64_t due;
    size_t idx; /* position in the heap + 1; 0 when not armed */
    void (*fn)(struct mk_grpc_timer *t);
} mk_grpc_timer_t;

/* A node posted to a loop from any thread; runs fn once on the loop. Embedded in its owner. */
typedef struct mk_grpc_task {
    struct mk_grpc_task *next;
    bool queued;
    void (*fn)(struct mk_grpc_task *t);
} mk_grpc_task_t;

typedef struct mk_grpc_watch {
    int fd;
    uint32_t events;
    void (*fn)(struct mk_grpc_watch *w, uint32_t events);
} mk_grpc_watch_t;

struct mk_grpc_loop {
    int epfd, evfd;
    pthread_t thread;
    bool started;
    bool quit; /* loop thread only */
    pthread_mutex_t mu;
    mk_grpc_task_t *tasks_head, *tasks_tail; /* under mu */
    mk_grpc_timer_t **heap;
    size_t nheap, capheap;
    mk_grpc_conn_t *conns;            /* all connections of this loop */
    mk_grpc_conn_t *flush_head;       /* connections with work to write (or to close) */
    void (*after)(mk_grpc_loop_t *l); /* optional: runs after every iteration */
    void *owner;
};

int mk_grpc_loop_init(mk_grpc_loop_t *l, mk_err_t *err);
void mk_grpc_loop_fini(mk_grpc_loop_t *l); /* after the thread ended */
int mk_grpc_loop_start(mk_grpc_loop_t *l, mk_err_t *err);
void mk_grpc_loop_join(mk_grpc_loop_t *l);
bool mk_grpc_loop_in_thread(const mk_grpc_loop_t *l);
int mk_grpc_loop_watch(mk_grpc_loop_t *l, mk_grpc_watch_t *w, uint32_t events);
void mk_grpc_loop_watch_mod(mk_grpc_loop_t *l, mk_grpc_watch_t *w, uint32_t events);
void mk_grpc_loop_unwatch(mk_grpc_loop_t *l, mk_grpc_watch_t *w);
void mk_grpc_loop_timer_set(mk_grpc_loop_t *l, mk_grpc_timer_t *t, int64_t due);
void mk_grpc_loop_timer_cancel(mk_grpc_loop_t *l, mk_grpc_timer_t *t);
/* Any thread. Returns true when t was queued now, false when it already was (the caller took a
 * reference for the queue before posting and drops it again on false). */
bool mk_grpc_loop_post(mk_grpc_loop_t *l, mk_grpc_task_t *t);

/* ---- connections ---- */

typedef struct mk_grpc_conn_ops {
    /* Creates the nghttp2 session (the TLS handshake is done) and submits SETTINGS. */
    int (*session_new)(mk_grpc_conn_t *c);
    /* The connection is going away: end every stream still attached. The session still exists. */
    void (*on_close)(mk_grpc_conn_t *c, const char *reason);
    /* Runs after each flush (the server closes drained connections while stopping). */
    void (*after_flush)(mk_grpc_conn_t *c);
} mk_grpc_conn_ops_t;

struct mk_grpc_conn {
    mk_grpc_loop_t *loop;
    const mk_grpc_conn_ops_t *ops;
    void *owner;
    mk_grpc_watch_t watch;
    SSL *ssl;
    bool handshaken;
    nghttp2_session *h2;
    mk_buf_t out; /* bytes from nghttp2 not yet written */
    size_t out_off;
    bool closing, in_flush;
    char *close_reason;
    mk_grpc_conn_t *prev, *next, *flush_next;
    mk_grpc_timer_t ka_timer;
    int keepalive_ms, keepalive_timeout_ms;
    bool ping_out;
    bool goaway; /* a GOAWAY came or went: no new streams */
    size_t nstreams;
    void *streams; /* role-specific list head */
    char peer[64];
    char *peer_identity;
};

/* Takes ownership of fd and ssl (NULL: cleartext; must be in accept or connect state, handshake
 * may be done already). Registers with the loop (loop thread). NULL on allocation failure (fd
 * and ssl are closed). */
mk_grpc_conn_t *mk_grpc_conn_new(mk_grpc_loop_t *l, int fd, SSL *ssl, const mk_grpc_conn_ops_t *ops,
                                 void *owner, int keepalive_ms, int keepalive_timeout_ms);
/* Asks for a flush at the end of this loop iteration (after nghttp2 calls; never frees now). */
void mk_grpc_conn_want_flush(mk_grpc_conn_t *c);
/* Closes at the end of this iteration; the first reason wins. */
void mk_grpc_conn_close(mk_grpc_conn_t *c, const char *reason);
/* Keepalive: the peer acked our PING. */
void mk_grpc_conn_ping_acked(mk_grpc_conn_t *c);
/* Flushes every connection that asked, closing those that are done (the loop calls this). */
void mk_grpc_loop_flush(mk_grpc_loop_t *l);
/* Closes every connection of the loop now, with reason. */
void mk_grpc_loop_close_all(mk_grpc_loop_t *l, const char *reason);

/* nghttp2 callbacks common to both roles (send is by mem_send; these do logging-free bookkeeping).
 */
void mk_grpc_h2_common_callbacks(nghttp2_session_callbacks *cbs);

/* ---- metadata on the wire ---- */

/* Adds a received header to l unless reserved (pseudo headers, content-type, te, grpc-*);
 * decodes -bin values. Returns 0, or MK_EINVAL for a -bin value that is not base64. */
int mk_grpc_md_from_wire(mk_grpc_mdlist_t *l, const uint8_t *name, size_t nlen,
                         const uint8_t *value, size_t vlen);
/* Builds nghttp2 name/value pairs for l into nva (room for l->n entries); -bin values are base64
 * encoded into store (which must outlive the submit call). */
int mk_grpc_md_to_nv(const mk_grpc_mdlist_t *l, nghttp2_nv *nva, size_t *n, mk_buf_t *store);
int mk_grpc_md_copy(mk_grpc_mdlist_t *dst, const mk_grpc_mdlist_t *src);

/* ---- TLS ---- */

SSL_CTX *mk_grpc_tls_server_ctx(const mk_grpc_tls_opts_t *o, mk_err_t *err);
SSL_CTX *mk_grpc_tls_client_ctx(const mk_grpc_tls_opts_t *o, mk_err_t *err);
/* The first OpenSSL error as text (for messages). */
const char *mk_grpc_tls_error(void);

#endif
