/* gRPC over HTTP/2 (nghttp2), cleartext (h2c prior knowledge) or TLS with ALPN h2 (OpenSSL),
 * optionally mutual TLS. Mock-agnostic: messages are raw bytes; generated (protobuf-c) or dynamic
 * (protodyn) codecs sit above. The only module that includes nghttp2.
 *
 * Server: method handlers run on the server's event-loop threads and never block them; a call is
 * answered from the loop or later from any thread (mk_grpc_call_send/finish are thread-safe), so
 * one handler shape serves unary, server-streaming, client-streaming and bidi methods, long polls
 * (the coordinator's task stream) and delayed mock answers alike.
 *
 * Client: a channel owns one connection (reconnected on demand) and an I/O thread; calls are
 * blocking and may run concurrently from several threads. */
#ifndef MK_GRPC_H
#define MK_GRPC_H

#include "grpc/grpc_frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- metadata ---------------------------------------------------------------------------- */

/* One metadata entry. Keys are lower-case. Values of "-bin" keys are the raw bytes (base64 is
 * applied on the wire by this layer); other values are text. value is NUL-terminated too. */
typedef struct mk_grpc_md {
    char *key;
    char *value;
    size_t len;
} mk_grpc_md_t;

/* A list of entries, in order, duplicates allowed. Zero-initialise; free with mk_grpc_md_clear. */
typedef struct mk_grpc_mdlist {
    mk_grpc_md_t *items;
    size_t n, cap;
} mk_grpc_mdlist_t;

/* Appends a copy of key (lower-cased) and value. MK_EINVAL for an empty key, a pseudo-header
 * (":...") or a character outside [A-Za-z0-9._-]. Keys gRPC itself uses (content-type, te,
 * grpc-timeout, grpc-status, grpc-message, grpc-encoding) are dropped when received and must not
 * be sent; grpc-status-details-bin is ordinary -bin metadata. */
int mk_grpc_md_add(mk_grpc_mdlist_t *l, const char *key, const void *value, size_t len);
/* The first entry with key (case-insensitive), or NULL; borrowed from l. */
const mk_grpc_md_t *mk_grpc_md_get(const mk_grpc_mdlist_t *l, const char *key);
void mk_grpc_md_clear(mk_grpc_mdlist_t *l);

/* ---- TLS ----------------------------------------------------------------------------------- */

/* Paths are borrowed during *_new only (files are read then). */
typedef struct mk_grpc_tls_opts {
    const char *cert_file; /* PEM chain: server certificate, or client certificate for mTLS */
    const char *key_file;  /* PEM private key of cert_file */
    /* Server: clients must present a certificate signed by this CA (mTLS); NULL: not asked.
     * Client: CA that verifies the server; NULL: the system store. */
    const char *ca_file;
    const char *server_name;   /* client: SNI and name checked (default: host of the target) */
    bool insecure_skip_verify; /* client: accept any server certificate (tests, self-signed) */
} mk_grpc_tls_opts_t;

/* ---- server -------------------------------------------------------------------------------- */

typedef struct mk_grpc_server mk_grpc_server_t;
typedef struct mk_grpc_call mk_grpc_call_t;

/* A method's handler. Every callback runs on a loop thread of the server and must not block.
 * call is borrowed: valid until on_done returns, longer with mk_grpc_call_ref. All callbacks
 * are optional. Order: on_start, on_message*, on_half_close, on_done; on_done comes exactly
 * once (also when the client cancels, the deadline passes or the connection drops), and no
 * callback comes after it. */
typedef struct mk_grpc_method {
    /* "/package.Service/Method". NULL in a fallback handler (mk_grpc_server_set_fallback). */
    const char *path;
    /* Request headers arrived: path, metadata, deadline and peer are readable. */
    void (*on_start)(mk_grpc_call_t *call, void *ud);
    /* One request message; msg is borrowed for the callback. */
    void (*on_message)(mk_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud);
    /* The client sent its last message. A unary handler answers here. */
    void (*on_half_close)(mk_grpc_call_t *call, void *ud);
    /* The call is over. code is the status sent to the client, or CANCELLED when the client
     * reset the stream or the connection dropped, or DEADLINE_EXCEEDED. */
    void (*on_done)(mk_grpc_call_t *call, int code, void *ud);
    void *ud;
} mk_grpc_method_t;

typedef struct mk_grpc_server_opts {
    const char *host;              /* listen address; NULL: 127.0.0.1 ("0.0.0.0" or "::" for all) */
    int port;                      /* 0: an ephemeral port, see mk_grpc_server_port */
    int threads;                   /* event-loop threads sharing the listener; 0: 1 */
    const mk_grpc_tls_opts_t *tls; /* NULL: h2c (cleartext, prior knowledge) */
    size_t max_recv_msg;           /* a larger request message: RESOURCE_EXHAUSTED; 0: 4 MiB */
    size_t max_send_msg;           /* mk_grpc_call_send refuses larger ones; 0: 4 MiB */
    /* Bytes a call may have queued but not yet written (slow reader); send refuses past it
     * with MK_ERATE. 0: 16 MiB. */
    size_t max_pending;
    uint32_t max_streams;     /* SETTINGS_MAX_CONCURRENT_STREAMS per connection; 0: 1000 */
    int keepalive_ms;         /* PING an idle-or-not connection this often; 0: 2 h; <0: never */
    int keepalive_timeout_ms; /* close when the PING is not acked in time; 0: 20 s */
    int stop_grace_ms;        /* mk_grpc_server_stop waits this long for calls; 0: 5 s */
} mk_grpc_server_opts_t;

/* Creates a server (not yet listening). Options are copied. */
int mk_grpc_server_new(const mk_grpc_server_opts_t *opts, mk_grpc_server_t **out, mk_err_t *err);
/* Registers a method (copied; path copied). Before start only. MK_ECONFLICT on a duplicate. */
int mk_grpc_server_add(mk_grpc_server_t *s, const mk_grpc_method_t *m, mk_err_t *err);
/* The handler for every path no method has (gRPC mocks); without one such calls get
 * UNIMPLEMENTED. Before start only. */
int mk_grpc_server_set_fallback(mk_grpc_server_t *s, const mk_grpc_method_t *m, mk_err_t *err);
/* Binds, listens and starts the loop threads. */
int mk_grpc_server_start(mk_grpc_server_t *s, mk_err_t *err);
int mk_grpc_server_port(const mk_grpc_server_t *s); /* the bound port, after start */
/* Graceful stop: stops accepting, sends GOAWAY, lets calls finish for stop_grace_ms, then
 * cancels the rest (their on_done runs with CANCELLED) and joins the threads. Idempotent; not
 * from a handler. */
void mk_grpc_server_stop(mk_grpc_server_t *s);
void mk_grpc_server_free(mk_grpc_server_t *s); /* stops first if running; NULL is fine */

/* ---- a server call ------------------------------------------------------------------------- */

/* Request data: readable from on_start on, from any thread holding a reference; borrowed. */
const char *mk_grpc_call_path(const mk_grpc_call_t *c);
const mk_grpc_mdlist_t *mk_grpc_call_metadata(const mk_grpc_call_t *c);
const char *mk_grpc_call_peer(const mk_grpc_call_t *c); /* "ip:port" */
/* Subject CN of the client certificate under mTLS, else NULL. */
const char *mk_grpc_call_peer_identity(const mk_grpc_call_t *c);
/* Milliseconds left before the client's grpc-timeout passes; -1 when there is none. */
int64_t mk_grpc_call_remaining_ms(const mk_grpc_call_t *c);
/* A slot for the handler's own state (not freed by us). */
void mk_grpc_call_set_data(mk_grpc_call_t *c, void *data);
void *mk_grpc_call_data(const mk_grpc_call_t *c);

/* Answering, from any thread. Operations are sent in the order they are made; delay_ms (>= 0)
 * holds an operation back that long after the previous one went out (mock delays), without
 * blocking anything. After finish, or once the call is over, they return MK_EUNAVAIL. */

/* Adds response header metadata; only before the first send/finish (else MK_EINVAL). */
int mk_grpc_call_add_header(mk_grpc_call_t *c, const char *key, const void *value, size_t len);
/* Queues one response message (copied). MK_ETOOBIG over max_send_msg; MK_ERATE when the call
 * already has max_pending bytes unsent (the client does not read). */
int mk_grpc_call_send(mk_grpc_call_t *c, const uint8_t *msg, size_t len, int delay_ms);
/* Ends the call with a status, an optional message (may be NULL) and optional trailing metadata
 * (copied; may be NULL; e.g. grpc-status-details-bin). */
int mk_grpc_call_finish(mk_grpc_call_t *c, int code, const char *message,
                        const mk_grpc_mdlist_t *trailers, int delay_ms);
/* True once on_done has run or is about to (the client is gone): stop producing. */
bool mk_grpc_call_is_done(const mk_grpc_call_t *c);
/* References for use beyond on_done (e.g. from a producer thread); thread-safe. */
void mk_grpc_call_ref(mk_grpc_call_t *c);
void mk_grpc_call_unref(mk_grpc_call_t *c);

/* ---- client -------------------------------------------------------------------------------- */

typedef struct mk_grpc_channel mk_grpc_channel_t;
typedef struct mk_grpc_stream mk_grpc_stream_t;

typedef struct mk_grpc_channel_opts {
    const char *target;            /* "host:port" */
    const mk_grpc_tls_opts_t *tls; /* NULL: h2c */
    size_t max_recv_msg;           /* 0: 4 MiB */
    int connect_timeout_ms;        /* 0: 5 s */
    int keepalive_ms;              /* 0 or <0: no pings (servers punish frequent pings) */
    int keepalive_timeout_ms;      /* 0: 20 s */
} mk_grpc_channel_opts_t;

/* The outcome of a call. Zero-initialise; free with mk_grpc_status_clear. */
typedef struct mk_grpc_status {
    int code;
    char *message;             /* decoded grpc-message, or NULL */
    mk_grpc_mdlist_t headers;  /* response header metadata */
    mk_grpc_mdlist_t trailers; /* trailing metadata */
} mk_grpc_status_t;
void mk_grpc_status_clear(mk_grpc_status_t *st);

/* Creates a channel (options and TLS files read now); it connects on the first call. */
int mk_grpc_channel_new(const mk_grpc_channel_opts_t *opts, mk_grpc_channel_t **out, mk_err_t *err);
/* Closes the connection; live calls end UNAVAILABLE. Streams must still be freed (before or
 * after; once the channel is gone their calls return MK_EUNAVAIL or 0). Not concurrently with
 * mk_grpc_stream_start. NULL is fine. */
void mk_grpc_channel_free(mk_grpc_channel_t *ch);

/* Starts a call of path with request metadata (may be NULL) and a deadline (timeout_ms <= 0:
 * none). Connects when needed: MK_EUNAVAIL (with the cause) when that fails. Caller frees the
 * stream with mk_grpc_stream_free. */
int mk_grpc_stream_start(mk_grpc_channel_t *ch, const char *path, const mk_grpc_mdlist_t *md,
                         int timeout_ms, mk_grpc_stream_t **out, mk_err_t *err);
/* Sends a message; blocks while too much is queued (flow control). MK_EUNAVAIL once the call is
 * over (see finish for why). */
int mk_grpc_stream_send(mk_grpc_stream_t *s, const uint8_t *msg, size_t len, mk_err_t *err);
/* No more messages from us (half-close). */
int mk_grpc_stream_close_send(mk_grpc_stream_t *s);
/* Waits for the next response message: 1 and *msg (caller frees with free()) and *len; 0 when
 * the server finished (read the status with finish); the call's deadline bounds the wait. */
int mk_grpc_stream_recv(mk_grpc_stream_t *s, uint8_t **msg, size_t *len);
/* Waits for the end of the call and fills st (may be NULL); returns st's code. Messages not
 * received are dropped. */
int mk_grpc_stream_finish(mk_grpc_stream_t *s, mk_grpc_status_t *st);
/* Cancels (RST_STREAM CANCEL): the call ends CANCELLED unless it was over already. */
void mk_grpc_stream_cancel(mk_grpc_stream_t *s);
void mk_grpc_stream_free(mk_grpc_stream_t *s); /* cancels a live call; NULL is fine */

/* A unary call: sends req, returns the status code; on OK *resp (caller frees) holds the one
 * response message. st may be NULL. A negative MK_E* only when the call could not start. */
int mk_grpc_unary(mk_grpc_channel_t *ch, const char *path, const mk_grpc_mdlist_t *md,
                  const uint8_t *req, size_t req_len, int timeout_ms, uint8_t **resp,
                  size_t *resp_len, mk_grpc_status_t *st, mk_err_t *err);

#endif
