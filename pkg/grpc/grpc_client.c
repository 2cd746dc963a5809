/* The gRPC client: a channel with one I/O loop thread and one current connection, and blocking
 * calls (streams) that hand their work to the loop. Received messages wait in a per-stream
 * queue; flow-control credit goes back to the server only as the application takes them, so a
 * slow reader bounds what it buffers to the stream window. */
#include "grpc/grpc_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM_WINDOW  (1 << 20)
#define CONN_WINDOW    (8 << 20)
#define SEND_QUEUE_MAX (1 << 20) /* send blocks while this much is unsent */

#define CONTAINER(p, type, field) ((type *)((char *)(p)-offsetof(type, field)))

struct mk_grpc_channel {
    mk_grpc_channel_opts_t o;
    char *host, *port, *authority, *server_name;
    SSL_CTX *ctx;
    mk_grpc_loop_t loop;
    pthread_mutex_t mu;
    bool conn_ok;         /* under mu: a usable connection exists or is being attached */
    mk_grpc_conn_t *conn; /* loop only */
    char last_error[300]; /* loop only: why the last connection closed */
    bool quitting;        /* loop only */
    mk_grpc_task_t quit_task;
};

typedef struct attach {
    mk_grpc_task_t task;
    mk_grpc_channel_t *ch;
    int fd;
    SSL *ssl;
} attach_t;

typedef struct qmsg {
    struct qmsg *next;
    size_t len;
    uint8_t data[];
} qmsg_t;

struct mk_grpc_stream {
    atomic_int refs;
    mk_grpc_channel_t *ch;
    char *path;
    mk_grpc_mdlist_t md;
    int64_t deadline;
    mk_grpc_task_t task;
    mk_grpc_timer_t deadline_timer;

    /* loop only */
    mk_grpc_conn_t *conn;
    mk_grpc_stream_t *prev, *next;
    int32_t id;
    bool submitted, detached;
    mk_grpc_decoder_t dec;
    size_t unconsumed;
    int http_status;
    bool got_status;
    int local_code; /* a status we decided (deadline, cancel, bad input); 0: none */
    char *local_msg;

    pthread_mutex_t mu; /* guards the rest */
    pthread_cond_t cv;
    mk_buf_t out;
    size_t out_off;
    bool close_send, cancel_req, done;
    qmsg_t *qhead, *qtail;
    size_t queued; /* bytes of messages waiting for the application (+5 each) */
    mk_grpc_status_t st;
};

/* ---- status ---- */

void mk_grpc_status_clear(mk_grpc_status_t *st)
{
    if (st == NULL)
        return;
    free(st->message);
    mk_grpc_md_clear(&st->headers);
    mk_grpc_md_clear(&st->trailers);
    memset(st, 0, sizeof *st);
}

static int code_from_http(int http)
{
    switch (http) {
    case 400:
        return MK_GRPC_INTERNAL;
    case 401:
        return MK_GRPC_UNAUTHENTICATED;
    case 403:
        return MK_GRPC_PERMISSION_DENIED;
    case 404:
        return MK_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return MK_GRPC_UNAVAILABLE;
    default:
        return MK_GRPC_UNKNOWN;
    }
}

/* ---- stream lifetime ---- */

static void stream_unref(mk_grpc_stream_t *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (qmsg_t *q = s->qhead, *n; q; q = n) {
        n = q->next;
        free(q);
    }
    mk_grpc_status_clear(&s->st);
    mk_grpc_md_clear(&s->md);
    mk_grpc_decoder_free(&s->dec);
    mk_buf_free(&s->out);
    free(s->path);
    free(s->local_msg);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* Called with s->mu held (the loop outlives it: the channel is freed after its streams). */
static void stream_post_locked(mk_grpc_stream_t *s)
{
    atomic_fetch_add(&s->refs, 1);
    if (!mk_grpc_loop_post(&s->ch->loop, &s->task))
        atomic_fetch_sub(&s->refs, 1);
}

static void set_local(mk_grpc_stream_t *s, int code, const char *msg)
{
    if (s->local_code != 0)
        return;
    s->local_code = code;
    s->local_msg = strdup(msg);
}

/* The call's outcome is known: publish it and wake the application. Loop only. */
static void stream_complete(mk_grpc_stream_t *s, int code, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    if (!s->done) {
        s->done = true;
        if (s->local_code != 0) {
            code = s->local_code;
            msg = s->local_msg;
        }
        s->st.code = code;
        if (msg && s->st.message == NULL)
            s->st.message = strdup(msg);
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* nghttp2 is done with the stream (or never had it): drop the loop's reference. */
static void stream_detach(mk_grpc_stream_t *s, int code, const char *msg)
{
    if (s->detached)
        return;
    s->detached = true;
    stream_complete(s, code, msg);
    mk_grpc_loop_timer_cancel(&s->ch->loop, &s->deadline_timer);
    mk_grpc_conn_t *c = s->conn;
    if (c != NULL) {
        if (s->prev)
            s->prev->next = s->next;
        else
            c->streams = s->next;
        if (s->next)
            s->next->prev = s->prev;
        c->nstreams--;
        if (c->h2 && s->id > 0) {
            /* Credit the connection window for bytes nobody will read now. */
            if (s->unconsumed)
                nghttp2_session_consume_connection(c->h2, s->unconsumed);
            nghttp2_session_set_stream_user_data(c->h2, s->id, NULL);
        }
        s->conn = NULL;
        mk_grpc_conn_want_flush(c);
    }
    stream_unref(s);
}

/* Ends the call from our side now: RST_STREAM CANCEL and the given status. */
static void stream_abort(mk_grpc_stream_t *s, int code, const char *msg)
{
    set_local(s, code, msg);
    stream_complete(s, code, msg);
    if (s->submitted && s->conn && s->conn->h2 && s->id > 0 && !s->detached) {
        nghttp2_submit_rst_stream(s->conn->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        mk_grpc_conn_want_flush(s->conn);
    } else {
        stream_detach(s, code, msg);
    }
}

/* ---- request body ---- */

static ssize_t req_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)h2;
    (void)id;
    (void)ud;
    mk_grpc_stream_t *s = src->ptr;
    pthread_mutex_lock(&s->mu);
    size_t n = s->out.len - s->out_off;
    if (n > length)
        n = length;
    if (n) {
        memcpy(buf, s->out.data + s->out_off, n);
        s->out_off += n;
        if (s->out_off == s->out.len) {
            mk_buf_reset(&s->out);
            s->out_off = 0;
        }
        pthread_cond_broadcast(&s->cv);
    }
    bool eof = s->close_send && s->out.len == s->out_off;
    pthread_mutex_unlock(&s->mu);
    if (eof)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

/* Sends the request HEADERS; the stream is already on c's list. */
static void stream_send_headers(mk_grpc_stream_t *s, mk_grpc_conn_t *c)
{
    mk_grpc_channel_t *ch = s->ch;
    char timeout[24];
    nghttp2_nv *nva = calloc(s->md.n + 9, sizeof *nva);
    mk_buf_t store;
    mk_buf_init(&store, 0);
    if (nva == NULL) {
        stream_detach(s, MK_GRPC_INTERNAL, "out of memory");
        return;
    }
    size_t n = 0;
#define NV(k, v, vl) (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), (vl), 0}
    nva[n++] = NV(":method", "POST", 4);
    nva[n++] = NV(":scheme", ch->ctx ? "https" : "http", ch->ctx ? 5 : 4);
    nva[n++] = NV(":path", s->path, strlen(s->path));
    nva[n++] = NV(":authority", ch->authority, strlen(ch->authority));
    nva[n++] = NV("content-type", "application/grpc", 16);
    nva[n++] = NV("te", "trailers", 8);
    nva[n++] = NV("user-agent", "mockarty-grpc-c/1", 17);
    nva[n++] = NV("grpc-accept-encoding", "identity,gzip", 13);
    if (s->deadline) {
        int64_t left = s->deadline - mk_grpc_now_ms();
        mk_grpc_timeout_format(left > 0 ? left : 1, timeout, sizeof timeout);
        nva[n++] = NV("grpc-timeout", timeout, strlen(timeout));
    }
#undef NV
    if (mk_grpc_md_to_nv(&s->md, nva, &n, &store) < 0) {
        free(nva);
        mk_buf_free(&store);
        stream_detach(s, MK_GRPC_INTERNAL, "out of memory");
        return;
    }
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = req_read};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n, &dp, s);
    free(nva);
    mk_buf_free(&store);
    if (id < 0) {
        stream_detach(s, MK_GRPC_UNAVAILABLE, nghttp2_strerror(id));
        return;
    }
    s->id = id;
    mk_grpc_conn_want_flush(c);
}

/* Puts the stream on the channel's current connection; its HEADERS go now, or when the TLS
 * handshake is done (client_session_new). */
static void stream_submit(mk_grpc_stream_t *s)
{
    mk_grpc_conn_t *c = s->ch->conn;
    s->submitted = true;
    if (c == NULL || c->closing || c->goaway) {
        /* The connection this call was to use failed first (e.g. its TLS handshake). It may be
         * closing with its reason known but not yet handed to the channel (on_close runs when
         * it is freed): that reason says more than "lost". */
        char why[300];
        if (c != NULL && c->closing && c->close_reason != NULL)
            snprintf(why, sizeof why, "connection to %s closed: %s", s->ch->authority,
                     c->close_reason);
        else
            snprintf(why, sizeof why, "%s",
                     s->ch->last_error[0] ? s->ch->last_error
                                          : "connection lost before the call started");
        stream_detach(s, MK_GRPC_UNAVAILABLE, why);
        return;
    }
    s->conn = c;
    s->next = c->streams;
    if (s->next)
        ((mk_grpc_stream_t *)s->next)->prev = s;
    c->streams = s;
    c->nstreams++;
    if (c->h2 != NULL)
        stream_send_headers(s, c);
}

/* Timers are loop-only: the deadline is armed on the loop's first run of the stream's task. */
static void arm_deadline(mk_grpc_stream_t *s)
{
    if (s->deadline && s->deadline_timer.idx == 0 && !s->detached)
        mk_grpc_loop_timer_set(&s->ch->loop, &s->deadline_timer, s->deadline);
}

/* Applies what the application asked for: start, more data, credit for taken messages,
 * cancellation. */
/* Flow control: returns credit for every received byte except those of messages still waiting
 * in the queue, so a slow reader holds at most a window of messages while a message larger
 * than the window (partly in the decoder) still arrives. */
static void stream_credit(mk_grpc_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t held = s->queued;
    pthread_mutex_unlock(&s->mu);
    if (s->unconsumed > held) {
        nghttp2_session_consume(s->conn->h2, s->id, s->unconsumed - held);
        s->unconsumed = held;
    }
}

static void stream_task(mk_grpc_task_t *t)
{
    mk_grpc_stream_t *s = CONTAINER(t, mk_grpc_stream_t, task);
    if (!s->submitted && !s->detached) {
        arm_deadline(s);
        stream_submit(s);
    }
    pthread_mutex_lock(&s->mu);
    bool cancel = s->cancel_req;
    pthread_mutex_unlock(&s->mu);
    if (!s->detached && cancel) {
        stream_abort(s, MK_GRPC_CANCELLED, "cancelled by the client");
    } else if (!s->detached && s->conn && s->conn->h2 && s->id > 0) {
        nghttp2_session_resume_data(s->conn->h2, s->id);
        stream_credit(s);
        mk_grpc_conn_want_flush(s->conn);
    }
    stream_unref(s);
}

static void stream_deadline(mk_grpc_timer_t *t)
{
    mk_grpc_stream_t *s = CONTAINER(t, mk_grpc_stream_t, deadline_timer);
    if (s->done) /* only the loop writes done */
        return;
    stream_abort(s, MK_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* ---- nghttp2 callbacks (client role) ---- */

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    mk_grpc_stream_t *s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (s == NULL)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        char tmp[8] = {0};
        memcpy(tmp, value, vlen < 7 ? vlen : 7);
        s->http_status = atoi(tmp);
    } else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        char tmp[12] = {0};
        memcpy(tmp, value, vlen < 11 ? vlen : 11);
        s->st.code = atoi(tmp);
        s->got_status = true;
    } else if (nlen == 13 && memcmp(name, "grpc-encoding", 13) == 0) {
        s->dec.gzip = vlen == 4 && memcmp(value, "gzip", 4) == 0;
    } else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        mk_buf_t m;
        mk_buf_init(&m, 0);
        if (mk_grpc_message_decode(&m, (const char *)value, vlen) == 0) {
            free(s->st.message);
            s->st.message = mk_buf_take(&m);
        }
        mk_buf_free(&m);
    } else {
        /* A trailers-only response carries trailing metadata in its one HEADERS frame. */
        bool trailers =
            f->headers.cat == NGHTTP2_HCAT_HEADERS || (f->hd.flags & NGHTTP2_FLAG_END_STREAM);
        mk_grpc_md_from_wire(trailers ? &s->st.trailers : &s->st.headers, name, nlen, value, vlen);
    }
    return 0;
}

static int queue_msg(void *ud, const uint8_t *msg, size_t len)
{
    mk_grpc_stream_t *s = ud;
    qmsg_t *q = malloc(sizeof *q + len);
    if (q == NULL)
        return MK_ENOMEM;
    q->next = NULL;
    q->len = len;
    memcpy(q->data, msg, len);
    pthread_mutex_lock(&s->mu);
    s->queued += len + MK_GRPC_PREFIX_LEN;
    if (s->qtail)
        s->qtail->next = q;
    else
        s->qhead = q;
    s->qtail = q;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    mk_grpc_stream_t *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s == NULL) {
        nghttp2_session_consume_connection(h2, len);
        return 0;
    }
    s->unconsumed += len;
    if (s->local_code != 0)
        return 0;
    mk_err_t err;
    if (mk_grpc_decoder_feed(&s->dec, data, len, queue_msg, s, &err) < 0)
        stream_abort(s, s->dec.status ? s->dec.status : MK_GRPC_INTERNAL, err.msg);
    else
        stream_credit(s);
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    (void)h2;
    mk_grpc_conn_t *c = ud;
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        mk_grpc_conn_ping_acked(c);
    } else if (f->hd.type == NGHTTP2_GOAWAY) {
        /* No new calls here; those running may finish. The next call connects anew. */
        mk_grpc_channel_t *ch = c->owner;
        c->goaway = true;
        pthread_mutex_lock(&ch->mu);
        if (ch->conn == c)
            ch->conn_ok = false;
        pthread_mutex_unlock(&ch->mu);
        if (ch->conn == c)
            ch->conn = NULL;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error_code, void *ud)
{
    (void)ud;
    mk_grpc_stream_t *s = nghttp2_session_get_stream_user_data(h2, id);
    if (s == NULL)
        return 0;
    int code;
    char msg[96];
    msg[0] = '\0';
    if (s->got_status && s->http_status == 200) {
        code = s->st.code;
        if (code == MK_GRPC_OK && mk_grpc_decoder_partial(&s->dec)) {
            code = MK_GRPC_INTERNAL;
            snprintf(msg, sizeof msg, "response ended inside a message");
        }
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        code = MK_GRPC_UNAVAILABLE;
        snprintf(msg, sizeof msg, "stream refused by the server");
    } else if (error_code == NGHTTP2_CANCEL) {
        code = MK_GRPC_CANCELLED;
        snprintf(msg, sizeof msg, "stream cancelled by the server");
    } else if (error_code != NGHTTP2_NO_ERROR) {
        code = MK_GRPC_INTERNAL;
        snprintf(msg, sizeof msg, "stream reset: %s", nghttp2_http2_strerror(error_code));
    } else if (s->http_status != 200 && s->http_status != 0) {
        code = code_from_http(s->http_status);
        snprintf(msg, sizeof msg, "HTTP status %d", s->http_status);
    } else {
        code = MK_GRPC_INTERNAL;
        snprintf(msg, sizeof msg, "response without grpc-status");
    }
    stream_detach(s, code, msg[0] ? msg : NULL);
    return 0;
}

static int client_session_new(mk_grpc_conn_t *c)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return MK_ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return MK_ENOMEM;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rc = nghttp2_session_client_new2(&c->h2, cbs, c, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc != 0)
        return MK_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    /* Calls started during the TLS handshake. */
    for (mk_grpc_stream_t *s = c->streams, *next; s; s = next) {
        next = s->next;
        if (s->id == 0)
            stream_send_headers(s, c);
    }
    return 0;
}

static void client_conn_close(mk_grpc_conn_t *c, const char *reason)
{
    mk_grpc_channel_t *ch = c->owner;
    char msg[300];
    snprintf(msg, sizeof msg, "connection to %s closed: %s", ch->authority, reason);
    snprintf(ch->last_error, sizeof ch->last_error, "%s", msg);
    while (c->streams) {
        mk_grpc_stream_t *s = c->streams;
        stream_detach(s, MK_GRPC_UNAVAILABLE, msg);
    }
    pthread_mutex_lock(&ch->mu);
    if (ch->conn == c)
        ch->conn_ok = false;
    pthread_mutex_unlock(&ch->mu);
    if (ch->conn == c)
        ch->conn = NULL;
}

static const mk_grpc_conn_ops_t client_conn_ops = {
    .session_new = client_session_new,
    .on_close = client_conn_close,
};

/* ---- channel ---- */

static void attach_task(mk_grpc_task_t *t)
{
    attach_t *a = CONTAINER(t, attach_t, task);
    mk_grpc_channel_t *ch = a->ch;
    if (ch->quitting) { /* connected while the channel was being freed */
        SSL_free(a->ssl);
        close(a->fd);
        free(a);
        return;
    }
    int kat = ch->o.keepalive_timeout_ms ? ch->o.keepalive_timeout_ms : 20000;
    mk_grpc_conn_t *c = mk_grpc_conn_new(&ch->loop, a->fd, a->ssl, &client_conn_ops, ch,
                                         ch->o.keepalive_ms > 0 ? ch->o.keepalive_ms : 0, kat);
    if (c != NULL)
        snprintf(c->peer, sizeof c->peer, "%s", ch->authority);
    ch->conn = c;
    free(a);
}

static void quit_task(mk_grpc_task_t *t)
{
    mk_grpc_channel_t *ch = CONTAINER(t, mk_grpc_channel_t, quit_task);
    ch->quitting = true;
    mk_grpc_loop_close_all(&ch->loop, "channel closed");
}

static void channel_after(mk_grpc_loop_t *l)
{
    mk_grpc_channel_t *ch = l->owner;
    if (ch->quitting && l->conns == NULL)
        l->quit = true;
}

static int split_target(mk_grpc_channel_t *ch, const char *target, mk_err_t *err)
{
    const char *colon = strrchr(target, ':');
    if (colon == NULL || colon[1] == '\0')
        return mk_err_set(err, MK_EINVAL, "target %s: expected host:port", target);
    const char *h = target;
    size_t hl = (size_t)(colon - target);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    ch->host = mk_str_dup((mk_str_t){h, hl});
    ch->port = strdup(colon + 1);
    ch->authority = strdup(target);
    return ch->host && ch->port && ch->authority ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

int mk_grpc_channel_new(const mk_grpc_channel_opts_t *opts, mk_grpc_channel_t **out, mk_err_t *err)
{
    *out = NULL;
    if (opts->target == NULL)
        return mk_err_set(err, MK_EINVAL, "channel needs a target host:port");
    mk_grpc_channel_t *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    ch->o = *opts;
    ch->o.target = NULL;
    ch->o.tls = NULL;
    pthread_mutex_init(&ch->mu, NULL);
    int rc = split_target(ch, opts->target, err);
    if (rc < 0)
        goto fail;
    if (opts->tls) {
        ch->server_name = strdup(opts->tls->server_name ? opts->tls->server_name : ch->host);
        if ((ch->ctx = mk_grpc_tls_client_ctx(opts->tls, err)) == NULL) {
            rc = err ? err->code : MK_EINVAL;
            goto fail;
        }
    }
    if ((rc = mk_grpc_loop_init(&ch->loop, err)) < 0)
        goto fail;
    ch->loop.owner = ch;
    ch->loop.after = channel_after;
    ch->quit_task.fn = quit_task;
    if ((rc = mk_grpc_loop_start(&ch->loop, err)) < 0) {
        mk_grpc_loop_fini(&ch->loop);
        goto fail;
    }
    *out = ch;
    return 0;
fail:
    SSL_CTX_free(ch->ctx);
    free(ch->host);
    free(ch->port);
    free(ch->authority);
    free(ch->server_name);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
    return rc;
}

void mk_grpc_channel_free(mk_grpc_channel_t *ch)
{
    if (ch == NULL)
        return;
    mk_grpc_loop_post(&ch->loop, &ch->quit_task);
    mk_grpc_loop_join(&ch->loop);
    mk_grpc_loop_fini(&ch->loop);
    SSL_CTX_free(ch->ctx);
    free(ch->host);
    free(ch->port);
    free(ch->authority);
    free(ch->server_name);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

/* TCP connect with a timeout; TLS is set up here and handshaken on the loop. */
static int channel_connect(mk_grpc_channel_t *ch, mk_err_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(ch->host, ch->port, &hints, &ai);
    if (rc != 0)
        return mk_err_set(err, MK_EUNAVAIL, "resolve %s: %s", ch->host, gai_strerror(rc));
    int timeout = ch->o.connect_timeout_ms > 0 ? ch->o.connect_timeout_ms : 5000;
    int fd = -1;
    char why[128] = "no address";
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&p, 1, timeout) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                r = 0;
            else
                errno = soerr ? soerr : ETIMEDOUT;
        }
        if (r < 0) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return mk_err_set(err, MK_EUNAVAIL, "connect %s: %s", ch->authority, why);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = NULL;
    if (ch->ctx) {
        ssl = SSL_new(ch->ctx);
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
            SSL_free(ssl);
            close(fd);
            return mk_err_set(err, MK_EINTERNAL, "SSL_new: %s", mk_grpc_tls_error());
        }
        SSL_set_connect_state(ssl);
        unsigned char ip[16];
        bool is_ip = inet_pton(AF_INET, ch->server_name, ip) == 1 ||
                     inet_pton(AF_INET6, ch->server_name, ip) == 1;
        if (is_ip) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ch->server_name);
        } else {
            SSL_set_tlsext_host_name(ssl, ch->server_name);
            SSL_set1_host(ssl, ch->server_name);
        }
    }
    attach_t *a = calloc(1, sizeof *a);
    if (a == NULL) {
        SSL_free(ssl);
        close(fd);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    a->task.fn = attach_task;
    a->ch = ch;
    a->fd = fd;
    a->ssl = ssl;
    mk_grpc_loop_post(&ch->loop, &a->task);
    return 0;
}

/* ---- calls ---- */

int mk_grpc_stream_start(mk_grpc_channel_t *ch, const char *path, const mk_grpc_mdlist_t *md,
                         int timeout_ms, mk_grpc_stream_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_grpc_stream_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    atomic_init(&s->refs, 2); /* the application's and the loop's */
    s->ch = ch;
    s->path = strdup(path);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    mk_buf_init(&s->out, 0);
    mk_grpc_decoder_init(&s->dec, ch->o.max_recv_msg);
    s->task.fn = stream_task;
    s->deadline_timer.fn = stream_deadline;
    if (s->path == NULL || mk_grpc_md_copy(&s->md, md) < 0) {
        atomic_store(&s->refs, 1);
        stream_unref(s);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    if (timeout_ms > 0)
        s->deadline = mk_grpc_now_ms() + timeout_ms;
    pthread_mutex_lock(&ch->mu);
    if (!ch->conn_ok) {
        int rc = channel_connect(ch, err);
        if (rc < 0) {
            pthread_mutex_unlock(&ch->mu);
            atomic_store(&s->refs, 1);
            stream_unref(s);
            return rc;
        }
        ch->conn_ok = true;
    }
    /* Posted under ch->mu, so it runs after the attach of the connection it should use. */
    pthread_mutex_lock(&s->mu);
    stream_post_locked(s);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&ch->mu);
    *out = s;
    return 0;
}

int mk_grpc_stream_send(mk_grpc_stream_t *s, const uint8_t *msg, size_t len, mk_err_t *err)
{
    pthread_mutex_lock(&s->mu);
    while (!s->done && !s->close_send && s->out.len - s->out_off > SEND_QUEUE_MAX)
        pthread_cond_wait(&s->cv, &s->mu);
    int rc = 0;
    if (s->done)
        rc = mk_err_set(err, MK_EUNAVAIL, "call is over: %s",
                        s->st.message ? s->st.message : mk_grpc_code_name(s->st.code));
    else if (s->close_send)
        rc = mk_err_set(err, MK_EINVAL, "send after close_send");
    else if ((rc = mk_grpc_frame_encode(&s->out, msg, len)) < 0)
        mk_err_set(err, rc, "cannot queue a %zu-byte message", len);
    if (rc == 0)
        stream_post_locked(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int mk_grpc_stream_close_send(mk_grpc_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    int rc = s->done ? MK_EUNAVAIL : 0;
    if (rc == 0 && !s->close_send) {
        s->close_send = true;
        stream_post_locked(s);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int mk_grpc_stream_recv(mk_grpc_stream_t *s, uint8_t **msg, size_t *len)
{
    *msg = NULL;
    *len = 0;
    pthread_mutex_lock(&s->mu);
    while (s->qhead == NULL && !s->done)
        pthread_cond_wait(&s->cv, &s->mu);
    qmsg_t *q = s->qhead;
    if (q == NULL) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    s->qhead = q->next;
    if (s->qhead == NULL)
        s->qtail = NULL;
    s->queued -= q->len + MK_GRPC_PREFIX_LEN;
    if (!s->done)
        stream_post_locked(s);
    pthread_mutex_unlock(&s->mu);
    /* Hand the bytes over in place: move them to the front of the node's allocation. */
    size_t n = q->len;
    memmove(q, q->data, n);
    *msg = (uint8_t *)q;
    *len = n;
    return 1;
}

int mk_grpc_stream_finish(mk_grpc_stream_t *s, mk_grpc_status_t *st)
{
    pthread_mutex_lock(&s->mu);
    while (!s->done)
        pthread_cond_wait(&s->cv, &s->mu);
    int code = s->st.code;
    if (st != NULL) {
        memset(st, 0, sizeof *st);
        st->code = code;
        st->message = s->st.message ? strdup(s->st.message) : NULL;
        mk_grpc_md_copy(&st->headers, &s->st.headers);
        mk_grpc_md_copy(&st->trailers, &s->st.trailers);
    }
    pthread_mutex_unlock(&s->mu);
    return code;
}

void mk_grpc_stream_cancel(mk_grpc_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->done && !s->cancel_req) {
        s->cancel_req = true;
        stream_post_locked(s);
    }
    pthread_mutex_unlock(&s->mu);
}

void mk_grpc_stream_free(mk_grpc_stream_t *s)
{
    if (s == NULL)
        return;
    mk_grpc_stream_cancel(s);
    stream_unref(s);
}

int mk_grpc_unary(mk_grpc_channel_t *ch, const char *path, const mk_grpc_mdlist_t *md,
                  const uint8_t *req, size_t req_len, int timeout_ms, uint8_t **resp,
                  size_t *resp_len, mk_grpc_status_t *st, mk_err_t *err)
{
    *resp = NULL;
    *resp_len = 0;
    mk_grpc_stream_t *s;
    int rc = mk_grpc_stream_start(ch, path, md, timeout_ms, &s, err);
    if (rc < 0)
        return rc;
    if (mk_grpc_stream_send(s, req, req_len, NULL) == 0)
        mk_grpc_stream_close_send(s);
    uint8_t *m = NULL;
    size_t n = 0;
    int got = mk_grpc_stream_recv(s, &m, &n);
    int code = mk_grpc_stream_finish(s, st);
    if (code == MK_GRPC_OK && got == 1) {
        *resp = m;
        *resp_len = n;
    } else {
        free(m);
        if (code == MK_GRPC_OK) {
            code = MK_GRPC_INTERNAL; /* unary OK without a message breaks the contract */
            if (st) {
                st->code = code;
                free(st->message);
                st->message = strdup("unary call ended without a response message");
            }
        }
    }
    mk_grpc_stream_free(s);
    return code;
}
