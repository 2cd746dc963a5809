/* GraphQL over a WebSocket, as Apollo Client, urql and the graphql-ws library speak it: the
 * graphql-transport-ws subprotocol (and the legacy graphql-ws one of subscriptions-transport-ws).
 * Operations are answered by serve_graphql.c (mk_serve_graphql_op_*); this file is the protocol:
 * the messages, the per-connection operations by id, and the timers between stream events. */
#include "serve/serve_graphql.h"

#include "ws/ws.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Operations in progress on one connection, at most. */
#define MAX_OPS    64
#define MAX_ID_LEN 256
/* Payload bytes of the operations in progress on one connection, at most: an operation keeps its
 * payload, query and parsed document until its last result (a stream's delays), so 64 payloads
 * of 1 MiB would hold hundreds of MiB per connection. */
#define MAX_OP_BYTES (8u << 20)

/* The message names of a subprotocol: the two differ in names, not in shape. */
typedef struct proto {
    const char *name;      /* the Sec-WebSocket-Protocol value */
    const char *subscribe; /* client: start an operation */
    const char *stop;      /* client: cancel one */
    const char *next;      /* server: a result */
    const char *terminate; /* client: close the connection (legacy only) */
    bool strict;           /* graphql-transport-ws's close codes (4401, 4408, 4409, 4429) */
} proto_t;

static const proto_t protos[] = {
    {"graphql-transport-ws", "subscribe", "complete", "next", NULL, true},
    {"graphql-ws", "start", "stop", "data", "connection_terminate", false},
};

/* graphql-transport-ws's close codes (the graphql-ws library's CloseCode). */
#define CLOSE_BAD_REQUEST    4400
#define CLOSE_UNAUTHORIZED   4401
#define CLOSE_DUPLICATE      4409
#define CLOSE_INIT_TIMEOUT   4408
#define CLOSE_TOO_MANY_INITS 4429

/* graphql-ws's connectionInitWaitTimeout: a client that opens the socket and never sends
 * connection_init is closed with 4408, so idle sockets do not pile up. Timer tag: operations'
 * tags count up from 1 and never reach it. */
#define INIT_WAIT_MS   3000
#define INIT_TIMER_TAG UINT64_MAX

typedef struct op {
    struct op *next;
    char *id;
    uint64_t tag; /* its timers' tag */
    mk_serve_gql_op_t *gql;
    size_t pos, n; /* the result to send next, and how many there are */
    size_t bytes;  /* its payload's, counted in client_t.op_bytes */
    bool waited;   /* pos's delay has passed */
} op_t;

typedef struct client {
    mk_serve_t *s;
    mk_ws_conn_t *conn;
    const proto_t *proto;
    char *ns, *endpoint;     /* copies: the request is gone after the upgrade */
    mk_serve_ws_kept_t kept; /* the upgrade's query and headers: what conditions read */
    bool init_seen, acked;
    op_t *ops;
    size_t nops, op_bytes;
    uint64_t next_tag;
} client_t;

static void op_free(op_t *o)
{
    mk_serve_graphql_op_free(o->gql);
    free(o->id);
    free(o);
}

static op_t *find_op(client_t *c, const char *id)
{
    for (op_t *o = c->ops; o; o = o->next)
        if (strcmp(o->id, id) == 0)
            return o;
    return NULL;
}

static void drop_op(client_t *c, op_t *o)
{
    for (op_t **p = &c->ops; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            c->nops--;
            c->op_bytes -= o->bytes;
            break;
        }
    op_free(o);
}

/* Sends {"type": type, "id": id, "payload": payload}; id and payload may be NULL; payload is
 * taken. Returns 0, or an error when the connection will carry nothing more (closing, or its
 * queue to the peer full). */
static int send_msg(client_t *c, const char *type, const char *id, json_t *payload)
{
    json_t *m = json_pack("{s:s}", "type", type);
    if (m && id)
        json_object_set_new(m, "id", json_string(id));
    if (m && payload)
        json_object_set(m, "payload", payload);
    json_decref(payload);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    int rc = text ? mk_ws_send(c->conn, MK_WS_TEXT, mk_str_of(text)) : MK_ENOMEM;
    free(text);
    return rc;
}

static json_t *one_error(const char *msg)
{
    return json_pack("[{s:s}]", "message", msg);
}

/* Sends o's results from pos until one must wait or all went; then completes and drops o. */
static void op_step(client_t *c, op_t *o)
{
    while (o->pos < o->n) {
        uint32_t d = mk_serve_graphql_op_delay(o->gql, o->pos);
        if (d > 0 && !o->waited && mk_ws_after(c->conn, d, o->tag) == 0) {
            o->waited = true;
            return;
        }
        o->waited = false;
        bool is_error = false;
        json_t *r = mk_serve_graphql_op_result(o->gql, o->pos++, &is_error);
        if (is_error) {
            /* A failed request ends with `error`; graphql-transport-ws sends no complete then. */
            send_msg(c, "error", o->id, r);
            if (c->proto->strict) {
                drop_op(c, o);
                return;
            }
            break;
        }
        if (send_msg(c, c->proto->next, o->id, r) != 0) {
            drop_op(c, o); /* no one will read the rest: stop rendering it */
            return;
        }
    }
    send_msg(c, "complete", o->id, NULL);
    drop_op(c, o);
}

static void subscribe(client_t *c, json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));
    json_t *payload = json_object_get(msg, "payload");
    if (id == NULL || id[0] == '\0' || strlen(id) > MAX_ID_LEN || !json_is_object(payload) ||
        !json_is_string(json_object_get(payload, "query"))) {
        mk_ws_close(c->conn, CLOSE_BAD_REQUEST, "Invalid message received");
        return;
    }
    if (c->proto->strict && !c->acked) {
        mk_ws_close(c->conn, CLOSE_UNAUTHORIZED, "Unauthorized");
        return;
    }
    if (find_op(c, id) != NULL) {
        /* A close reason holds 123 bytes: a long id is cut, on a UTF-8 character boundary. */
        size_t n = strlen(id);
        if (n > 90) {
            n = 90;
            while (n > 0 && ((unsigned char)id[n] & 0xC0) == 0x80)
                n--;
        }
        char reason[MAX_ID_LEN + 40];
        snprintf(reason, sizeof reason, "Subscriber for %.*s already exists", (int)n, id);
        if (c->proto->strict)
            mk_ws_close(c->conn, CLOSE_DUPLICATE, reason);
        else
            send_msg(c, "error", id, one_error(reason));
        return;
    }
    if (c->nops >= MAX_OPS) {
        send_msg(c, "error", id,
                 one_error("Too many operations in progress on this connection (64 at most)."));
        return;
    }
    char *text = json_dumps(payload, JSON_COMPACT);
    size_t bytes = text ? strlen(text) : 0;
    if (c->op_bytes + bytes > MAX_OP_BYTES) {
        free(text);
        send_msg(c, "error", id,
                 one_error("Too much in progress on this connection: the payloads of its "
                           "operations hold 8 MiB at most."));
        return;
    }
    op_t *o = calloc(1, sizeof *o);
    if (o)
        o->id = strdup(id);
    if (o && o->id && text)
        o->gql = mk_serve_graphql_op_new(c->s, mk_ws_worker(c->conn), mk_str_of(c->ns),
                                         mk_str_of(c->endpoint),
                                         &(mk_request_t){
                                             .query = c->kept.query,
                                             .headers = c->kept.headers,
                                             .nheaders = c->kept.nheaders,
                                         },
                                         mk_str_of(text));
    free(text);
    if (o == NULL || o->gql == NULL) {
        if (o)
            op_free(o);
        send_msg(c, "error", id, one_error("out of memory"));
        return;
    }
    o->n = mk_serve_graphql_op_results(o->gql);
    o->bytes = bytes;
    c->op_bytes += bytes;
    o->tag = ++c->next_tag;
    o->next = c->ops;
    c->ops = o;
    c->nops++;
    op_step(c, o);
}

/* One message from the client. */
static void on_message(mk_ws_conn_t *conn, mk_ws_kind_t kind, mk_str_t text, void *ud)
{
    client_t *c = ud;
    c->conn = conn;
    json_t *msg = kind == MK_WS_TEXT ? json_loadb(text.base, text.len, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type == NULL) {
        mk_ws_close(conn, CLOSE_BAD_REQUEST, "Invalid message received");
    } else if (strcmp(type, "connection_init") == 0) {
        if (c->init_seen && c->proto->strict) {
            mk_ws_close(conn, CLOSE_TOO_MANY_INITS, "Too many initialisation requests");
        } else {
            c->init_seen = c->acked = true;
            send_msg(c, "connection_ack", NULL, NULL);
            if (!c->proto->strict)
                send_msg(c, "ka", NULL, NULL);
        }
    } else if (strcmp(type, c->proto->subscribe) == 0) {
        subscribe(c, msg);
    } else if (strcmp(type, c->proto->stop) == 0) {
        /* The client cancels: its timers find no operation and do nothing. */
        const char *id = json_string_value(json_object_get(msg, "id"));
        op_t *o = id ? find_op(c, id) : NULL;
        if (o)
            drop_op(c, o);
        else if (id == NULL)
            mk_ws_close(conn, CLOSE_BAD_REQUEST, "Invalid message received");
    } else if (c->proto->strict && strcmp(type, "ping") == 0) {
        json_t *p = json_object_get(msg, "payload");
        send_msg(c, "pong", NULL, p ? json_incref(p) : NULL);
    } else if (c->proto->strict && strcmp(type, "pong") == 0) {
        /* a keep-alive answer: nothing to do */
    } else if (c->proto->terminate && strcmp(type, c->proto->terminate) == 0) {
        mk_ws_close(conn, MK_WS_CLOSE_NORMAL, "");
    } else {
        mk_ws_close(conn, CLOSE_BAD_REQUEST, "Invalid message received");
    }
    json_decref(msg);
}

static void on_open(mk_ws_conn_t *conn, void *ud)
{
    client_t *c = ud;
    c->conn = conn;
    if (c->proto->strict)
        mk_ws_after(conn, INIT_WAIT_MS, INIT_TIMER_TAG);
}

static void on_timer(mk_ws_conn_t *conn, uint64_t tag, void *ud)
{
    client_t *c = ud;
    c->conn = conn;
    if (tag == INIT_TIMER_TAG) {
        if (!c->init_seen)
            mk_ws_close(conn, CLOSE_INIT_TIMEOUT, "Connection initialisation timeout");
        return;
    }
    for (op_t *o = c->ops; o; o = o->next)
        if (o->tag == tag) {
            op_step(c, o);
            return;
        }
}

static void client_free(client_t *c)
{
    while (c->ops) {
        op_t *o = c->ops;
        c->ops = o->next;
        op_free(o);
    }
    free(c->ns);
    free(c->endpoint);
    free(c->kept.block);
    free(c);
}

static void on_close(mk_ws_conn_t *conn, void *ud)
{
    (void)conn;
    client_free(ud);
}

/* The subprotocol to speak: the first of ours the client offers (a comma-separated list, maybe
 * over several headers); graphql-transport-ws when it offers none. */
static const proto_t *pick_proto(const mk_request_t *view, bool *offered)
{
    *offered = false;
    const proto_t *best = NULL;
    for (size_t i = 0; i < view->nheaders; i++) {
        const mk_header_t *h = &view->headers[i];
        if (!mk_str_caseeq(h->name, MK_STR_LIT("Sec-WebSocket-Protocol")))
            continue;
        mk_str_t v = h->value;
        while (v.len > 0) {
            size_t n = 0;
            while (n < v.len && v.base[n] != ',')
                n++;
            mk_str_t item = {v.base, n};
            while (item.len > 0 && (item.base[0] == ' ' || item.base[0] == '\t')) {
                item.base++;
                item.len--;
            }
            while (item.len > 0 &&
                   (item.base[item.len - 1] == ' ' || item.base[item.len - 1] == '\t'))
                item.len--;
            for (size_t k = 0; k < sizeof protos / sizeof protos[0]; k++)
                if (mk_str_eq_cstr(item, protos[k].name) && (best == NULL || &protos[k] < best))
                    best = &protos[k];
            v = n < v.len ? (mk_str_t){v.base + n + 1, v.len - n - 1} : (mk_str_t){"", 0};
        }
    }
    *offered = best != NULL;
    return best ? best : &protos[0];
}

bool mk_serve_graphql_ws_accept(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                                mk_str_t path, int *status)
{
    client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return false;
    c->s = s;
    bool offered;
    c->proto = pick_proto(view, &offered);
    c->ns = mk_str_dup(ns);
    while (path.len > 1 && path.base[path.len - 1] == '/')
        path.len--;
    c->endpoint = mk_str_dup(path);
    mk_ws_handlers_t h = {
        .on_open = on_open, .on_message = on_message, .on_timer = on_timer, .on_close = on_close};
    mk_err_t err;
    if (c->ns == NULL || c->endpoint == NULL || mk_serve_ws_keep(view, &c->kept) != 0) {
        client_free(c);
        return false;
    }
    /* Added before the upgrade so the 101 carries it. */
    if (offered)
        mk_httpd_add_header(req, MK_STR_LIT("Sec-WebSocket-Protocol"), mk_str_of(c->proto->name));
    if (mk_ws_accept(req, NULL, &h, c, &err) != 0) {
        client_free(c);
        return false;
    }
    view->served_protocol = "graphql";
    view->served_matched = true;
    *status = 101;
    return true;
}
