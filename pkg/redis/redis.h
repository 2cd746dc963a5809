/* The one wrapper around hiredis: a small pool of blocking connections safe to use from many
 * threads, automatic reconnection, and a subscriber thread for pub/sub. Every failure to reach the
 * server is MK_EUNAVAIL with a message naming host:port and the cause; a server error reply is
 * MK_EIO with the reply text in err->cause. */
#ifndef MK_REDIS_H
#define MK_REDIS_H

#include "err/err.h"
#include "httpd/httpd_loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mk_redis_opts {
    const char *host; /* copied */
    int port;
    const char *password; /* NULL or "" = no AUTH; copied */
    int db;
    int timeout_ms; /* connect and command timeout; 0 = 1000 */
} mk_redis_opts_t;

typedef enum mk_redis_type {
    MK_REDIS_NIL,
    MK_REDIS_INT,
    MK_REDIS_STR, /* bulk or status string */
    MK_REDIS_ARR,
    MK_REDIS_ERR, /* an error reply inside a pipeline or an array; str holds its text */
} mk_redis_type_t;

/* A reply, owned by the caller (mk_redis_reply_free). */
typedef struct mk_redis_reply {
    mk_redis_type_t type;
    long long integer;
    char *str; /* NUL-terminated; len excludes the NUL */
    size_t len;
    struct mk_redis_reply *elems;
    size_t nelems;
} mk_redis_reply_t;

typedef struct mk_redis mk_redis_t;

/* Does not connect: the first command does, so a server that is down at start is not an error
 * here. Caller frees with mk_redis_free(). */
int mk_redis_new(const mk_redis_opts_t *opts, mk_redis_t **out, mk_err_t *err);
void mk_redis_free(mk_redis_t *r);

/* Runs one command (binary-safe arguments). *reply may be NULL when the caller does not want
 * it. A broken connection is dropped and re-established by a later call; while the server stays
 * down, calls fail fast (no reconnect attempt more often than every 100 ms per connection). */
int mk_redis_cmd(mk_redis_t *r, int argc, const char *const *argv, const size_t *argvlen,
                 mk_redis_reply_t **reply, mk_err_t *err);
/* Convenience: NUL-terminated arguments. */
int mk_redis_cmdv(mk_redis_t *r, mk_redis_reply_t **reply, mk_err_t *err, int argc,
                  const char *const *argv);
/* Runs ncmds commands in one round trip (pipelined, not a transaction); replies may be NULL when
 * the caller does not want them. Fails as a whole when the connection fails (MK_EUNAVAIL, every
 * replies[i] NULL). When some command gets an error reply, returns MK_EIO naming the first one,
 * and replies[] is still filled: those replies have type MK_REDIS_ERR. */
typedef struct mk_redis_cmdspec {
    int argc;
    const char *const *argv;
    const size_t *argvlen;
} mk_redis_cmdspec_t;
int mk_redis_pipeline(mk_redis_t *r, const mk_redis_cmdspec_t *cmds, size_t ncmds,
                      mk_redis_reply_t **replies, mk_err_t *err);
void mk_redis_reply_free(mk_redis_reply_t *reply);

/* PING with its round trip in *latency_ms (may be NULL). */
int mk_redis_ping(mk_redis_t *r, double *latency_ms, mk_err_t *err);

/* A subscriber: a thread holding its own connection, SUBSCRIBEd to channel, calling on_message
 * for each message and on_connect after every (re)connection (so the caller can resync what it
 * may have missed). Reconnects with backoff (100 ms doubling to 5 s) while the server is down.
 * Callbacks run on the subscriber's thread. */
typedef void (*mk_redis_msg_cb)(void *ud, const char *msg, size_t len);
typedef void (*mk_redis_connect_cb)(void *ud);
typedef struct mk_redis_sub mk_redis_sub_t;
int mk_redis_subscribe(const mk_redis_opts_t *opts, const char *channel, mk_redis_msg_cb on_message,
                       mk_redis_connect_cb on_connect, void *ud, mk_redis_sub_t **out,
                       mk_err_t *err);
/* Stops the thread and frees; returns after the last callback has returned. NULL is fine. */
void mk_redis_sub_free(mk_redis_sub_t *sub);

/* An asynchronous connection on an event loop (one per worker loop; use it only on that loop's
 * thread). Commands of all callers are pipelined on it and answered in order. It connects at
 * once (AUTH and SELECT as configured); while the server is unreachable commands fail at once with
 * MK_EUNAVAIL and a timer reconnects in the background (100 ms doubling to 1 s); a connection
 * that leaves commands unanswered for timeout_ms is dropped. Caller frees with
 * mk_redis_async_free() on the loop's thread (or after the loop stopped). */
typedef struct mk_redis_async mk_redis_async_t;
int mk_redis_async_new(const mk_redis_opts_t *opts, mk_httpd_loop_t *loop, mk_redis_async_t **out,
                       mk_err_t *err);
/* Pending callbacks run with MK_EUNAVAIL before this returns. NULL is fine. */
void mk_redis_async_free(mk_redis_async_t *a);
/* True when connected (commands are sent at once). */
bool mk_redis_async_up(const mk_redis_async_t *a);

/* Called once per accepted command, on the loop: rc 0 with the reply, MK_EIO for an error
 * reply (reply->str holds it, err->cause too), MK_EUNAVAIL when the connection failed (reply
 * NULL). reply and everything in it are borrowed for the call. */
typedef void (*mk_redis_async_cb)(void *ud, int rc, const mk_redis_reply_t *reply,
                                  const mk_err_t *err);
/* Queues a command (arguments copied; argvlen NULL means NUL-terminated). Returns 0 and cb runs
 * later, never from inside this call; or MK_EUNAVAIL at once while the server is down, and cb
 * never runs. */
int mk_redis_async_cmd(mk_redis_async_t *a, int argc, const char *const *argv,
                       const size_t *argvlen, mk_redis_async_cb cb, void *ud, mk_err_t *err);

#endif
