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
    /* Redis Sentinel: "host:port,host:port,..." (copied). When set, every connection asks the
     * sentinels for the master's address instead of using host and port, checks with ROLE that
     * it reached a master, and moves to the new master after a failover (+switch-master, or a
     * connection that fails or finds a replica). */
    const char *sentinels;
    const char *master_name;       /* the sentinels' name of the master; NULL or "" = mymaster */
    const char *sentinel_password; /* AUTH to the sentinels; NULL or "" = none */
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

/* The process's watcher of one master through its sentinels, shared by every connection whose
 * options name the same sentinels, master name and sentinel password. Opening it asks the
 * sentinels once; unreachable sentinels are not an error (the watcher keeps asking every
 * second). MK_EINVAL for an empty or malformed list. Caller closes with
 * mk_redis_sentinel_close(). */
typedef struct mk_redis_sentinel mk_redis_sentinel_t;
int mk_redis_sentinel_open(const mk_redis_opts_t *opts, mk_redis_sentinel_t **out, mk_err_t *err);
void mk_redis_sentinel_close(mk_redis_sentinel_t *s);
typedef struct mk_redis_sentinel_info {
    bool known;        /* a master address is known (the last one, even if sentinels are away) */
    char master[280];  /* "host:port" when known */
    bool sentinels_up; /* the last query reached a sentinel that named the master */
    char error[320];   /* why the last query failed; "" when it did not */
    uint64_t switches; /* changes of master address seen since the first */
} mk_redis_sentinel_info_t;
void mk_redis_sentinel_info(mk_redis_sentinel_t *s, mk_redis_sentinel_info_t *out);

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

/* Whether an error reply means "not the master now" (READONLY after a failover, MASTERDOWN,
 * LOADING): such replies are reported as MK_EUNAVAIL, not MK_EIO. */
bool mk_redis_reply_unavailable(const char *text);

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
/* The same with the options r was made with (Sentinel included). */
int mk_redis_async_like(const mk_redis_t *r, mk_httpd_loop_t *loop, mk_redis_async_t **out,
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
