/* The gRPC server: listener and loop threads, the per-stream call state machine, and the
 * thread-safe answering API (ops queued per call, applied on the call's loop in order, each
 * optionally delayed). */
#include "grpc/grpc_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_MD_BYTES        (64 * 1024) /* request metadata per call */
#define DEFAULT_MAX_PENDING (16u * 1024 * 1024)

typedef struct srv_loop {
    mk_grpc_loop_t loop;
    mk_grpc_server_t *srv;
    mk_grpc_watch_t listen;
    mk_grpc_task_t stop_task;
    mk_grpc_timer_t grace;
    bool draining;
} srv_loop_t;

struct mk_grpc_server {
    mk_grpc_server_opts_t o;
    char *host;
    SSL_CTX *ctx;
    mk_grpc_method_t *methods;
    size_t nmethods;
    mk_grpc_method_t fallback;
    bool has_fallback;
    int lfd, port;
    srv_loop_t *loops;
    int nloops;
    bool running;
};

typedef enum { OP_MSG, OP_FINISH } op_kind_t;

typedef struct op {
    struct op *next;
    op_kind_t kind;
    int delay_ms;
    uint8_t *data;
    size_t len;
    int code;
    char *message;
    mk_grpc_mdlist_t trailers;
} op_t;

/* A call's life: OPEN (handler may answer) -> FINISHING (status applied, trailers on their way)
 * -> DONE (stream closed or connection gone; on_done ran). */
typedef enum { CALL_OPEN, CALL_FINISHING, CALL_DONE } call_state_t;

struct mk_grpc_call {
    atomic_int refs;
    mk_grpc_server_t *srv;
    mk_grpc_loop_t *loop;
    mk_grpc_conn_t *conn; /* loop only; NULL once done */
    mk_grpc_call_t *cprev, *cnext;
    int32_t id;
    call_state_t state; /* loop only; changed by set_state */
    const mk_grpc_method_t *method;
    char *path, *peer, *identity, *encoding;
    bool is_post, is_grpc_ct;
    mk_grpc_mdlist_t md;
    size_t md_bytes;
    int64_t deadline;
    bool deadline_hit, half_closed, input_failed, started;
    mk_grpc_decoder_t dec;
    void *data;

    pthread_mutex_t mu; /* guards the fields up to the next comment */
    op_t *ops_head, *ops_tail;
    size_t pending;
    bool finish_queued, closed, headers_frozen;
    mk_grpc_mdlist_t hdr_md;

    /* loop only: output */
    bool headers_sent, status_sent, trailers_pending;
    int final_code;
    char *final_msg;
    mk_grpc_mdlist_t final_trailers;
    mk_buf_t out;
    size_t out_off;
    bool op_armed;
    int64_t op_due;
    mk_grpc_timer_t op_timer, deadline_timer;
    mk_grpc_task_t task;
};

#define CONTAINER(p, type, field) ((type *)((char *)(p)-offsetof(type, field)))

/* ---- call state ---- */

static void set_state(mk_grpc_call_t *c, call_state_t to)
{
    /* Legal: OPEN->FINISHING, OPEN->DONE, FINISHING->DONE. */
    if (to <= c->state)
        abort();
    c->state = to;
}

static void op_free(op_t *op)
{
    free(op->data);
    free(op->message);
    mk_grpc_md_clear(&op->trailers);
    free(op);
}

static void call_free(mk_grpc_call_t *c)
{
    for (op_t *op = c->ops_head, *next; op; op = next) {
        next = op->next;
        op_free(op);
    }
    mk_grpc_md_clear(&c->md);
    mk_grpc_md_clear(&c->hdr_md);
    mk_grpc_md_clear(&c->final_trailers);
    mk_grpc_decoder_free(&c->dec);
    mk_buf_free(&c->out);
    free(c->path);
    free(c->peer);
    free(c->identity);
    free(c->encoding);
    free(c->final_msg);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void mk_grpc_call_ref(mk_grpc_call_t *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void mk_grpc_call_unref(mk_grpc_call_t *c)
{
    if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
        call_free(c);
}

/* Called with c->mu held, so the loop (which ends calls under mu) outlives the post. */
static void call_post_locked(mk_grpc_call_t *c)
{
    mk_grpc_call_ref(c);
    if (!mk_grpc_loop_post(c->loop, &c->task))
        atomic_fetch_sub(&c->refs, 1); /* was queued already; cannot be the last reference */
}

static void call_end(mk_grpc_call_t *c, int code)
{
    if (c->state == CALL_DONE)
        return;
    set_state(c, CALL_DONE);
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    for (op_t *op = c->ops_head, *next; op; op = next) {
        next = op->next;
        op_free(op);
    }
    c->ops_head = c->ops_tail = NULL;
    c->pending = 0;
    pthread_mutex_unlock(&c->mu);
    mk_grpc_loop_timer_cancel(c->loop, &c->op_timer);
    mk_grpc_loop_timer_cancel(c->loop, &c->deadline_timer);
    mk_grpc_conn_t *conn = c->conn;
    if (c->cprev)
        c->cprev->cnext = c->cnext;
    else
        conn->streams = c->cnext;
    if (c->cnext)
        c->cnext->cprev = c->cprev;
    conn->nstreams--;
    if (conn->h2)
        nghttp2_session_set_stream_user_data(conn->h2, c->id, NULL);
    c->conn = NULL;
    if (c->method && c->started && c->method->on_done)
        c->method->on_done(c, code, c->method->ud);
    mk_grpc_call_unref(c);
}

/* ---- output ---- */

static ssize_t data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ud;
    mk_grpc_call_t *c = src->ptr;
    size_t n = c->out.len - c->out_off;
    if (n > length)
        n = length;
    if (n > 0) {
        memcpy(buf, c->out.data + c->out_off, n);
        c->out_off += n;
        if (c->out_off == c->out.len) {
            mk_buf_reset(&c->out);
            c->out_off = 0;
        }
        pthread_mutex_lock(&c->mu);
        c->pending -= n < c->pending ? n : c->pending;
        pthread_mutex_unlock(&c->mu);
        return (ssize_t)n;
    }
    if (!c->trailers_pending)
        return NGHTTP2_ERR_DEFERRED;
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    c->trailers_pending = false;
    char code[12];
    snprintf(code, sizeof code, "%d", c->final_code);
    mk_buf_t store, msg;
    mk_buf_init(&store, 0);
    mk_buf_init(&msg, 0);
    nghttp2_nv *nva = calloc(c->final_trailers.n + 2, sizeof *nva);
    if (nva != NULL) {
        size_t nv = 0;
        nva[nv++] = (nghttp2_nv){(uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), 0};
        if (c->final_msg && mk_grpc_message_encode(&msg, c->final_msg, strlen(c->final_msg)) == 0 &&
            msg.len > 0)
            nva[nv++] =
                (nghttp2_nv){(uint8_t *)"grpc-message", (uint8_t *)msg.data, 12, msg.len, 0};
        if (mk_grpc_md_to_nv(&c->final_trailers, nva, &nv, &store) == 0)
            nghttp2_submit_trailer(h2, id, nva, nv);
    }
    free(nva);
    mk_buf_free(&store);
    mk_buf_free(&msg);
    c->status_sent = true;
    return 0;
}

/* Builds the response HEADERS: :status, content-type, header metadata and, for a
 * trailers-only response, the status too. */
static int submit_headers(mk_grpc_call_t *c, bool with_status, int code, const char *message,
                          const mk_grpc_mdlist_t *trailers)
{
    char codebuf[12];
    snprintf(codebuf, sizeof codebuf, "%d", code);
    mk_buf_t store, msg;
    mk_buf_init(&store, 0);
    mk_buf_init(&msg, 0);
    size_t extra = trailers ? trailers->n : 0;
    nghttp2_nv *nva = calloc(c->hdr_md.n + extra + 5, sizeof *nva);
    int rc = MK_ENOMEM;
    if (nva == NULL)
        goto out;
    size_t n = 0;
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0};
    nva[n++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0};
    nva[n++] =
        (nghttp2_nv){(uint8_t *)"grpc-accept-encoding", (uint8_t *)"identity,gzip", 20, 13, 0};
    pthread_mutex_lock(&c->mu);
    rc = mk_grpc_md_to_nv(&c->hdr_md, nva, &n, &store);
    pthread_mutex_unlock(&c->mu);
    if (rc < 0)
        goto out;
    if (with_status) {
        nva[n++] =
            (nghttp2_nv){(uint8_t *)"grpc-status", (uint8_t *)codebuf, 11, strlen(codebuf), 0};
        if (message && mk_grpc_message_encode(&msg, message, strlen(message)) == 0 && msg.len)
            nva[n++] = (nghttp2_nv){(uint8_t *)"grpc-message", (uint8_t *)msg.data, 12, msg.len, 0};
        if (trailers && (rc = mk_grpc_md_to_nv(trailers, nva, &n, &store)) < 0)
            goto out;
        rc = nghttp2_submit_response(c->conn->h2, c->id, nva, n, NULL);
    } else {
        nghttp2_data_provider dp = {.source.ptr = c, .read_callback = data_read};
        rc = nghttp2_submit_response(c->conn->h2, c->id, nva, n, &dp);
    }
    rc = rc == 0 ? 0 : MK_EINTERNAL;
out:
    free(nva);
    mk_buf_free(&store);
    mk_buf_free(&msg);
    return rc;
}

static void apply_finish(mk_grpc_call_t *c, int code, const char *message,
                         mk_grpc_mdlist_t *trailers)
{
    if (c->state != CALL_OPEN)
        return;
    set_state(c, CALL_FINISHING);
    c->final_code = code;
    if (!c->headers_sent && c->out.len == c->out_off) {
        /* Nothing sent yet: a trailers-only response (one HEADERS frame with END_STREAM). */
        c->headers_sent = c->status_sent = true;
        if (submit_headers(c, true, code, message, trailers) < 0)
            mk_grpc_conn_close(c->conn, "cannot submit a response");
        return;
    }
    c->final_msg = message ? strdup(message) : NULL;
    if (trailers) {
        c->final_trailers = *trailers;
        memset(trailers, 0, sizeof *trailers);
    }
    c->trailers_pending = true;
    nghttp2_session_resume_data(c->conn->h2, c->id);
}

static void apply_msg(mk_grpc_call_t *c, op_t *op)
{
    if (c->state != CALL_OPEN)
        return;
    if (!c->headers_sent) {
        c->headers_sent = true;
        if (submit_headers(c, false, 0, NULL, NULL) < 0) {
            mk_grpc_conn_close(c->conn, "cannot submit a response");
            return;
        }
    }
    if (mk_grpc_frame_encode(&c->out, op->data, op->len) < 0) {
        apply_finish(c, MK_GRPC_RESOURCE_EXHAUSTED, "out of memory for a response", NULL);
        return;
    }
    nghttp2_session_resume_data(c->conn->h2, c->id);
}

/* Applies queued ops in order until one must wait for its delay. */
static void call_pump(mk_grpc_call_t *c)
{
    if (c->state == CALL_DONE)
        return;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        op_t *op = c->ops_head;
        if (op == NULL) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        if (op->delay_ms > 0) {
            int64_t now = mk_grpc_now_ms();
            if (!c->op_armed) {
                c->op_armed = true;
                c->op_due = now + op->delay_ms;
            }
            if (now < c->op_due) {
                pthread_mutex_unlock(&c->mu);
                mk_grpc_loop_timer_set(c->loop, &c->op_timer, c->op_due);
                break;
            }
        }
        c->op_armed = false;
        c->ops_head = op->next;
        if (c->ops_head == NULL)
            c->ops_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        if (op->kind == OP_MSG)
            apply_msg(c, op);
        else
            apply_finish(c, op->code, op->message, &op->trailers);
        op_free(op);
        if (c->state == CALL_DONE)
            break;
    }
    if (c->conn)
        mk_grpc_conn_want_flush(c->conn);
}

static void call_task(mk_grpc_task_t *t)
{
    mk_grpc_call_t *c = CONTAINER(t, mk_grpc_call_t, task);
    call_pump(c);
    mk_grpc_call_unref(c);
}

static void call_op_timer(mk_grpc_timer_t *t)
{
    call_pump(CONTAINER(t, mk_grpc_call_t, op_timer));
}

/* Ends the call from our side now (errors found by the layer, deadlines), dropping queued ops. */
static void finish_now(mk_grpc_call_t *c, int code, const char *message)
{
    pthread_mutex_lock(&c->mu);
    c->finish_queued = true;
    for (op_t *op = c->ops_head, *next; op; op = next) {
        next = op->next;
        op_free(op);
    }
    c->ops_head = c->ops_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    mk_grpc_loop_timer_cancel(c->loop, &c->op_timer);
    apply_finish(c, code, message, NULL);
    mk_grpc_conn_want_flush(c->conn);
}

static void call_deadline(mk_grpc_timer_t *t)
{
    mk_grpc_call_t *c = CONTAINER(t, mk_grpc_call_t, deadline_timer);
    c->deadline_hit = true;
    if (c->state == CALL_OPEN) {
        finish_now(c, MK_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
    } else if (c->state == CALL_FINISHING) {
        /* The status is stuck behind data the client does not take: give up on the stream. */
        nghttp2_submit_rst_stream(c->conn->h2, NGHTTP2_FLAG_NONE, c->id, NGHTTP2_CANCEL);
        mk_grpc_conn_want_flush(c->conn);
    }
}

/* ---- public call API ---- */

const char *mk_grpc_call_path(const mk_grpc_call_t *c)
{
    return c->path ? c->path : "";
}

const mk_grpc_mdlist_t *mk_grpc_call_metadata(const mk_grpc_call_t *c)
{
    return &c->md;
}

const char *mk_grpc_call_peer(const mk_grpc_call_t *c)
{
    return c->peer ? c->peer : "";
}

const char *mk_grpc_call_peer_identity(const mk_grpc_call_t *c)
{
    return c->identity;
}

int64_t mk_grpc_call_remaining_ms(const mk_grpc_call_t *c)
{
    if (c->deadline == 0)
        return -1;
    int64_t left = c->deadline - mk_grpc_now_ms();
    return left < 0 ? 0 : left;
}

void mk_grpc_call_set_data(mk_grpc_call_t *c, void *data)
{
    c->data = data;
}

void *mk_grpc_call_data(const mk_grpc_call_t *c)
{
    return c->data;
}

bool mk_grpc_call_is_done(const mk_grpc_call_t *c)
{
    mk_grpc_call_t *m = (mk_grpc_call_t *)c;
    pthread_mutex_lock(&m->mu);
    bool closed = m->closed;
    pthread_mutex_unlock(&m->mu);
    return closed;
}

int mk_grpc_call_add_header(mk_grpc_call_t *c, const char *key, const void *value, size_t len)
{
    pthread_mutex_lock(&c->mu);
    int rc = c->closed           ? MK_EUNAVAIL
             : c->headers_frozen ? MK_EINVAL
                                 : mk_grpc_md_add(&c->hdr_md, key, value, len);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int queue_op(mk_grpc_call_t *c, op_t *op, size_t bytes)
{
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    size_t max = c->srv->o.max_pending ? c->srv->o.max_pending : DEFAULT_MAX_PENDING;
    if (c->closed || c->finish_queued)
        rc = MK_EUNAVAIL;
    else if (bytes > 0 && c->pending + bytes > max)
        rc = MK_ERATE;
    if (rc < 0) {
        pthread_mutex_unlock(&c->mu);
        op_free(op);
        return rc;
    }
    c->pending += bytes;
    c->headers_frozen = true;
    if (op->kind == OP_FINISH)
        c->finish_queued = true;
    if (c->ops_tail)
        c->ops_tail->next = op;
    else
        c->ops_head = op;
    c->ops_tail = op;
    call_post_locked(c);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int mk_grpc_call_send(mk_grpc_call_t *c, const uint8_t *msg, size_t len, int delay_ms)
{
    size_t max = c->srv->o.max_send_msg ? c->srv->o.max_send_msg : MK_GRPC_DEFAULT_MAX_MSG;
    if (len > max)
        return MK_ETOOBIG;
    op_t *op = calloc(1, sizeof *op);
    if (op == NULL || (len > 0 && (op->data = malloc(len)) == NULL)) {
        free(op);
        return MK_ENOMEM;
    }
    op->kind = OP_MSG;
    op->delay_ms = delay_ms;
    if (len)
        memcpy(op->data, msg, len);
    op->len = len;
    return queue_op(c, op, len + MK_GRPC_PREFIX_LEN);
}

int mk_grpc_call_finish(mk_grpc_call_t *c, int code, const char *message,
                        const mk_grpc_mdlist_t *trailers, int delay_ms)
{
    op_t *op = calloc(1, sizeof *op);
    if (op == NULL)
        return MK_ENOMEM;
    op->kind = OP_FINISH;
    op->delay_ms = delay_ms;
    op->code = code;
    if ((message && (op->message = strdup(message)) == NULL) ||
        mk_grpc_md_copy(&op->trailers, trailers) < 0) {
        op_free(op);
        return MK_ENOMEM;
    }
    return queue_op(c, op, 0);
}

/* ---- nghttp2 callbacks (server role) ---- */

static const mk_grpc_method_t *find_method(mk_grpc_server_t *s, const char *path)
{
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, path) == 0)
            return &s->methods[i];
    return s->has_fallback ? &s->fallback : NULL;
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    mk_grpc_conn_t *conn = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    srv_loop_t *sl = conn->owner;
    mk_grpc_call_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    atomic_init(&c->refs, 1);
    c->srv = sl->srv;
    c->loop = conn->loop;
    c->conn = conn;
    c->id = f->hd.stream_id;
    c->peer = strdup(conn->peer);
    c->identity = conn->peer_identity ? strdup(conn->peer_identity) : NULL;
    pthread_mutex_init(&c->mu, NULL);
    mk_grpc_decoder_init(&c->dec, sl->srv->o.max_recv_msg);
    mk_buf_init(&c->out, 0);
    c->op_timer.fn = call_op_timer;
    c->deadline_timer.fn = call_deadline;
    c->task.fn = call_task;
    c->cnext = conn->streams;
    if (c->cnext)
        c->cnext->cprev = c;
    conn->streams = c;
    conn->nstreams++;
    nghttp2_session_set_stream_user_data(h2, c->id, c);
    return 0;
}

static bool name_is(const uint8_t *name, size_t nlen, const char *lit)
{
    return strlen(lit) == nlen && memcmp(name, lit, nlen) == 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    mk_grpc_call_t *c = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (c == NULL)
        return 0;
    c->md_bytes += nlen + vlen + 32;
    if (c->md_bytes > MAX_MD_BYTES)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM: metadata too large */
    if (name_is(name, nlen, ":path")) {
        free(c->path);
        c->path = mk_str_dup((mk_str_t){(const char *)value, vlen});
    } else if (name_is(name, nlen, ":method")) {
        c->is_post = vlen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (name_is(name, nlen, "content-type")) {
        c->is_grpc_ct = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                        (vlen == 16 || value[16] == '+' || value[16] == ';');
    } else if (name_is(name, nlen, "grpc-timeout")) {
        int64_t ms;
        if (mk_grpc_timeout_parse((mk_str_t){(const char *)value, vlen}, &ms) == 0)
            c->deadline = mk_grpc_now_ms() + ms;
    } else if (name_is(name, nlen, "grpc-encoding")) {
        free(c->encoding);
        c->encoding = mk_str_dup((mk_str_t){(const char *)value, vlen});
    } else {
        mk_grpc_md_from_wire(&c->md, name, nlen, value, vlen); /* a bad -bin value is dropped */
    }
    return 0;
}

static void request_headers_done(mk_grpc_call_t *c)
{
    if (!c->is_post || !c->is_grpc_ct) {
        /* Not gRPC: HTTP 415 as the gRPC spec asks, with a status for gRPC-aware clients. */
        set_state(c, CALL_FINISHING);
        c->headers_sent = c->status_sent = true;
        c->final_code = MK_GRPC_INTERNAL;
        nghttp2_nv nva[] = {
            {(uint8_t *)":status", (uint8_t *)"415", 7, 3, 0},
            {(uint8_t *)"grpc-status", (uint8_t *)"13", 11, 2, 0},
            {(uint8_t *)"grpc-message", (uint8_t *)"expected POST with application/grpc", 12, 35,
             0},
        };
        nghttp2_submit_response(c->conn->h2, c->id, nva, 3, NULL);
        return;
    }
    if (c->encoding && strcmp(c->encoding, "gzip") == 0) {
        c->dec.gzip = true;
    } else if (c->encoding && strcmp(c->encoding, "identity") != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "grpc-encoding %.64s is not supported (identity, gzip)",
                 c->encoding);
        finish_now(c, MK_GRPC_UNIMPLEMENTED, msg);
        return;
    }
    c->method = find_method(c->srv, c->path ? c->path : "");
    if (c->method == NULL) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown method %.256s", c->path ? c->path : "");
        finish_now(c, MK_GRPC_UNIMPLEMENTED, msg);
        return;
    }
    if (c->deadline)
        mk_grpc_loop_timer_set(c->loop, &c->deadline_timer, c->deadline);
    c->started = true;
    if (c->method->on_start)
        c->method->on_start(c, c->method->ud);
}

static void request_half_closed(mk_grpc_call_t *c)
{
    if (c->half_closed || c->input_failed)
        return;
    c->half_closed = true;
    if (c->state != CALL_OPEN)
        return;
    if (mk_grpc_decoder_partial(&c->dec)) {
        finish_now(c, MK_GRPC_INTERNAL, "request ended inside a message (truncated)");
        return;
    }
    if (c->started && c->method->on_half_close)
        c->method->on_half_close(c, c->method->ud);
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    mk_grpc_conn_t *conn = ud;
    switch (f->hd.type) {
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            mk_grpc_conn_ping_acked(conn);
        return 0;
    case NGHTTP2_GOAWAY:
        conn->goaway = true;
        return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        break;
    default:
        return 0;
    }
    mk_grpc_call_t *c = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    if (c == NULL)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        request_headers_done(c);
    if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && c->state != CALL_DONE)
        request_half_closed(c);
    mk_grpc_conn_want_flush(conn);
    return 0;
}

static int deliver_msg(void *ud, const uint8_t *msg, size_t len)
{
    mk_grpc_call_t *c = ud;
    if (c->state == CALL_OPEN && c->started && c->method->on_message)
        c->method->on_message(c, msg, len, c->method->ud);
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    mk_grpc_call_t *c = nghttp2_session_get_stream_user_data(h2, id);
    if (c == NULL || c->input_failed || c->state != CALL_OPEN)
        return 0;
    mk_err_t err;
    if (mk_grpc_decoder_feed(&c->dec, data, len, deliver_msg, c, &err) < 0) {
        c->input_failed = true;
        if (c->state == CALL_OPEN)
            finish_now(c, c->dec.status ? c->dec.status : MK_GRPC_INTERNAL, err.msg);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    mk_grpc_call_t *c = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
    /* We finished before the client did (an error, a deadline, a unary answer without reading
     * on): tell it to stop sending, as gRPC servers do. */
    if (c != NULL && !c->half_closed)
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error_code, void *ud)
{
    (void)error_code;
    (void)ud;
    mk_grpc_call_t *c = nghttp2_session_get_stream_user_data(h2, id);
    if (c == NULL)
        return 0;
    int code = c->status_sent    ? c->final_code
               : c->deadline_hit ? MK_GRPC_DEADLINE_EXCEEDED
                                 : MK_GRPC_CANCELLED;
    call_end(c, code);
    return 0;
}

static int server_session_new(mk_grpc_conn_t *conn)
{
    srv_loop_t *sl = conn->owner;
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return MK_ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rc = nghttp2_session_server_new(&conn->h2, cbs, conn);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        return MK_ENOMEM;
    uint32_t streams = sl->srv->o.max_streams ? sl->srv->o.max_streams : 1000;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_MD_BYTES},
    };
    nghttp2_submit_settings(conn->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    nghttp2_session_set_local_window_size(conn->h2, NGHTTP2_FLAG_NONE, 0, 8 << 20);
    if (sl->draining) {
        nghttp2_submit_goaway(conn->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        conn->goaway = true;
    }
    return 0;
}

static void server_conn_close(mk_grpc_conn_t *conn, const char *reason)
{
    (void)reason;
    while (conn->streams)
        call_end(conn->streams, MK_GRPC_CANCELLED);
}

static void server_after_flush(mk_grpc_conn_t *conn)
{
    srv_loop_t *sl = conn->owner;
    if (sl->draining && conn->nstreams == 0 && conn->out.len == conn->out_off)
        mk_grpc_conn_close(conn, "server stopped");
}

static const mk_grpc_conn_ops_t server_conn_ops = {
    .session_new = server_session_new,
    .on_close = server_conn_close,
    .after_flush = server_after_flush,
};

/* ---- listener, loops, lifecycle ---- */

static void on_accept(mk_grpc_watch_t *w, uint32_t events)
{
    (void)events;
    srv_loop_t *sl = CONTAINER(w, srv_loop_t, listen);
    mk_grpc_server_t *s = sl->srv;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage sa;
        socklen_t slen = sizeof sa;
        int fd = accept4(s->lfd, (struct sockaddr *)&sa, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN (another loop took it), or a transient error: try next event */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = NULL;
        if (s->ctx) {
            ssl = SSL_new(s->ctx);
            if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
                SSL_free(ssl);
                close(fd);
                continue;
            }
            SSL_set_accept_state(ssl);
        }
        int ka = s->o.keepalive_ms == 0 ? 2 * 3600 * 1000 : s->o.keepalive_ms;
        int kat = s->o.keepalive_timeout_ms ? s->o.keepalive_timeout_ms : 20000;
        mk_grpc_conn_t *c =
            mk_grpc_conn_new(&sl->loop, fd, ssl, &server_conn_ops, sl, ka > 0 ? ka : 0, kat);
        if (c == NULL)
            continue;
        char host[INET6_ADDRSTRLEN] = "?", serv[16] = "?";
        getnameinfo((struct sockaddr *)&sa, slen, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(c->peer, sizeof c->peer, "%s:%s", host, serv);
    }
}

static void grace_over(mk_grpc_timer_t *t)
{
    srv_loop_t *sl = CONTAINER(t, srv_loop_t, grace);
    mk_grpc_loop_close_all(&sl->loop, "server stopped (grace period over)");
}

static void stop_task(mk_grpc_task_t *t)
{
    srv_loop_t *sl = CONTAINER(t, srv_loop_t, stop_task);
    mk_grpc_loop_unwatch(&sl->loop, &sl->listen);
    sl->draining = true;
    for (mk_grpc_conn_t *c = sl->loop.conns; c; c = c->next) {
        if (c->h2 == NULL) {
            mk_grpc_conn_close(c, "server stopped");
            continue;
        }
        nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR,
                              NULL, 0);
        c->goaway = true;
        mk_grpc_conn_want_flush(c);
    }
    int grace = sl->srv->o.stop_grace_ms ? sl->srv->o.stop_grace_ms : 5000;
    mk_grpc_loop_timer_set(&sl->loop, &sl->grace, mk_grpc_now_ms() + grace);
}

static void loop_after(mk_grpc_loop_t *l)
{
    srv_loop_t *sl = CONTAINER(l, srv_loop_t, loop);
    if (sl->draining && l->conns == NULL)
        l->quit = true;
}

int mk_grpc_server_new(const mk_grpc_server_opts_t *opts, mk_grpc_server_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_grpc_server_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    s->o = *opts;
    s->lfd = -1;
    s->host = strdup(opts->host ? opts->host : "127.0.0.1");
    s->o.host = s->host;
    s->o.tls = NULL;
    if (opts->tls && (s->ctx = mk_grpc_tls_server_ctx(opts->tls, err)) == NULL) {
        mk_grpc_server_free(s);
        return err ? err->code : MK_EINVAL;
    }
    *out = s;
    return 0;
}

static int add_method(mk_grpc_server_t *s, mk_grpc_method_t *slot, const mk_grpc_method_t *m)
{
    *slot = *m;
    if (m->path && (slot->path = strdup(m->path)) == NULL)
        return MK_ENOMEM;
    (void)s;
    return 0;
}

int mk_grpc_server_add(mk_grpc_server_t *s, const mk_grpc_method_t *m, mk_err_t *err)
{
    if (s->running)
        return mk_err_set(err, MK_EINVAL, "methods are added before start");
    if (m->path == NULL || m->path[0] != '/')
        return mk_err_set(err, MK_EINVAL, "method path must look like /package.Service/Method");
    for (size_t i = 0; i < s->nmethods; i++)
        if (strcmp(s->methods[i].path, m->path) == 0)
            return mk_err_set(err, MK_ECONFLICT, "method %s registered twice", m->path);
    mk_grpc_method_t *ms = realloc(s->methods, (s->nmethods + 1) * sizeof *ms);
    if (ms == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    s->methods = ms;
    if (add_method(s, &ms[s->nmethods], m) < 0)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    s->nmethods++;
    return 0;
}

int mk_grpc_server_set_fallback(mk_grpc_server_t *s, const mk_grpc_method_t *m, mk_err_t *err)
{
    if (s->running)
        return mk_err_set(err, MK_EINVAL, "the fallback is set before start");
    s->fallback = *m;
    s->fallback.path = NULL;
    s->has_fallback = true;
    return 0;
}

static int listen_on(mk_grpc_server_t *s, mk_err_t *err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai;
    int rc = getaddrinfo(s->host, port, &hints, &ai);
    if (rc != 0)
        return mk_err_set(err, MK_EINVAL, "listen address %s: %s", s->host, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        rc = mk_err_set(err, MK_EIO, "gRPC listen on %s:%d: %s", s->host, s->o.port,
                        strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t slen = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &slen);
    s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    s->lfd = fd;
    return 0;
}

int mk_grpc_server_start(mk_grpc_server_t *s, mk_err_t *err)
{
    if (s->running)
        return mk_err_set(err, MK_EINVAL, "server already started");
    int rc = listen_on(s, err);
    if (rc < 0)
        return rc;
    s->nloops = s->o.threads > 0 ? s->o.threads : 1;
    s->loops = calloc((size_t)s->nloops, sizeof *s->loops);
    if (s->loops == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (int i = 0; i < s->nloops; i++) {
        srv_loop_t *sl = &s->loops[i];
        if ((rc = mk_grpc_loop_init(&sl->loop, err)) < 0)
            goto fail;
        sl->srv = s;
        sl->loop.after = loop_after;
        sl->listen.fd = s->lfd;
        sl->listen.fn = on_accept;
        sl->stop_task.fn = stop_task;
        sl->grace.fn = grace_over;
        /* EPOLLEXCLUSIVE: one loop wakes per connection instead of all of them. */
        if (mk_grpc_loop_watch(&sl->loop, &sl->listen, EPOLLIN | EPOLLEXCLUSIVE) < 0) {
            rc = mk_err_set(err, MK_EIO, "epoll_ctl(listener): %s", strerror(errno));
            goto fail;
        }
    }
    for (int i = 0; i < s->nloops; i++)
        if ((rc = mk_grpc_loop_start(&s->loops[i].loop, err)) < 0)
            goto fail;
    s->running = true;
    return 0;
fail:
    s->running = true; /* let stop tear down whatever started */
    mk_grpc_server_stop(s);
    return rc;
}

int mk_grpc_server_port(const mk_grpc_server_t *s)
{
    return s->port;
}

void mk_grpc_server_stop(mk_grpc_server_t *s)
{
    if (s == NULL || !s->running)
        return;
    for (int i = 0; i < s->nloops; i++)
        if (s->loops[i].loop.started)
            mk_grpc_loop_post(&s->loops[i].loop, &s->loops[i].stop_task);
    for (int i = 0; i < s->nloops; i++)
        mk_grpc_loop_join(&s->loops[i].loop);
    for (int i = 0; i < s->nloops; i++)
        if (s->loops[i].loop.epfd > 0)
            mk_grpc_loop_fini(&s->loops[i].loop);
    free(s->loops);
    s->loops = NULL;
    s->nloops = 0;
    if (s->lfd >= 0)
        close(s->lfd);
    s->lfd = -1;
    s->running = false;
}

void mk_grpc_server_free(mk_grpc_server_t *s)
{
    if (s == NULL)
        return;
    mk_grpc_server_stop(s);
    for (size_t i = 0; i < s->nmethods; i++)
        free((char *)s->methods[i].path);
    free(s->methods);
    SSL_CTX_free(s->ctx);
    free(s->host);
    free(s);
}
