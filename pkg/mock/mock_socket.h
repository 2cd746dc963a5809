/* WebSocket mocks: Mockarty's `socket` request context (namespace, event, serverName,
 * conditions) and what a WebSocket answer adds to a response (a chain of messages, timer pushes,
 * a close code), compiled once when the mock is saved.
 *
 * Indexing: a socket mock is in the route index under method "WS" and the route
 * "<pathPrefix><socket.namespace>/<event>", the event percent-encoded (every byte outside
 * [A-Za-z0-9-._~]) so any event name is one literal segment; a mock without an event (or with
 * "*") sits at "<endpoint>/%2A" and answers any message. A message costs one probe for its key
 * and, when nothing matched there, one for the catch-all. */
#ifndef MK_MOCK_SOCKET_H
#define MK_MOCK_SOCKET_H

#include "err/err.h"
#include "str/str.h"
#include "template/template.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mk_mock;

#define MK_MOCK_WS_METHOD        "WS"
#define MK_MOCK_SOCKET_ANY       "%2A"     /* the route segment of mocks that answer any message */
#define MK_MOCK_SOCKET_CONNECT   "connect" /* the event answered when a client connects */
#define MK_MOCK_SOCKET_MAX_EVENT 256
#define MK_MOCK_SOCKET_MAX_CHAIN 1000 /* messages in one sseEventChain */
/* Longest route path a key turns into: endpoint, '/', every event byte encoded as %XX. */
#define MK_MOCK_SOCKET_MAX_ROUTE (512 + 1 + 3 * MK_MOCK_SOCKET_MAX_EVENT + 1)

/* One message of an answer: constant bytes or a template, sent delay_ms after the previous. */
typedef struct mk_mock_socket_msg {
    char *text; /* owned; the constant output (or the template's source for a static one) */
    size_t len;
    mk_template_t *tpl; /* NULL when constant */
    uint32_t delay_ms;
} mk_mock_socket_msg_t;

/* What one response (`response` or one of `oneOf.responses`) sends: its payload first (when it
 * has one, after the response's delay), then the chain; the chain again every loop_delay_ms
 * while loop (at most max_loops times, 0 = while the connection lasts); then the close. */
typedef struct mk_mock_socket_reply {
    bool has_payload;
    mk_mock_socket_msg_t *chain; /* response.sseEventChain.events */
    size_t nchain;
    bool loop;
    uint32_t loop_delay_ms;
    uint32_t max_loops;
    uint16_t close_code; /* response.closeCode; 0 = keep the connection open */
    char *close_reason;  /* response.error, cut to 123 bytes (owned; NULL when none) */
} mk_mock_socket_reply_t;

typedef struct mk_mock_socket {
    char *endpoint;    /* pathPrefix + socket.namespace without a trailing '/' ("/ws") */
    char *event;       /* NULL: any message */
    char *server_name; /* socket.serverName, kept for the definition (not matched) */
    mk_mock_socket_reply_t *replies; /* one per response, in the order of m->responses */
    size_t nreplies;
} mk_mock_socket_t;

/* True when def is a WebSocket mock: a `socket` context and no other context in use (`http`,
 * `grpc`, `graphql`, `soap`, `sse` absent, null or {} as the Go SDK sends unused ones). */
bool mk_mock_socket_is(const json_t *def);
/* Compiles def's socket context into m: m->socket, m->method ("WS"), m->route, the conditions
 * (JSONPath on the message; "$.body.x" is read as "$.x") into m->conds, and the replies.
 * MK_EINVAL with a message naming the field. */
int mk_mock_socket_compile(struct mk_mock *m, const json_t *def, mk_err_t *err);
void mk_mock_socket_free(mk_mock_socket_t *s);

/* The key a message is matched by: the string `event` of a JSON object message (json, borrowed,
 * may be NULL), else the whole text message. False for a binary message without an event, or a
 * key longer than MK_MOCK_SOCKET_MAX_EVENT (no mock can have it). */
bool mk_mock_socket_key(const json_t *json, mk_str_t text, bool is_text, mk_str_t *key);
/* Writes "<endpoint>/<key percent-encoded>" into buf (cap at least MK_MOCK_SOCKET_MAX_ROUTE);
 * returns its length, or 0 when it does not fit. */
size_t mk_mock_socket_route(mk_str_t endpoint, mk_str_t key, char *buf, size_t cap);

#endif
