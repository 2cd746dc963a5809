/* A mock: the definition users send (Mockarty's JSON schema), validated and compiled once when it
 * is saved into the form the hot path serves: route, compiled conditions, pre-rendered responses.
 * A compiled mock is immutable except for its usage counters (atomics) and is shared by reference
 * between the catalog and the route snapshots. */
#ifndef MK_MOCK_H
#define MK_MOCK_H

#include "cond/cond.h"
#include "err/err.h"
#include "request/request.h"
#include "template/template.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#define MK_MOCK_DEFAULT_NAMESPACE "sandbox"
#define MK_MOCK_MAX_DELAY_MS      300000

/* How long to wait before answering (WireMock's delayDistribution; `delay` is FIXED). */
typedef enum mk_mock_delay_kind {
    MK_MOCK_DELAY_FIXED,
    MK_MOCK_DELAY_UNIFORM,   /* a = lower, b = upper (ms) */
    MK_MOCK_DELAY_LOGNORMAL, /* a = median (ms), b = sigma */
} mk_mock_delay_kind_t;

/* A broken answer on purpose (WireMock's fault names). */
typedef enum mk_mock_fault {
    MK_MOCK_FAULT_NONE,
    MK_MOCK_FAULT_EMPTY_RESPONSE,
    MK_MOCK_FAULT_MALFORMED_RESPONSE_CHUNK,
    MK_MOCK_FAULT_RANDOM_DATA_THEN_CLOSE,
    MK_MOCK_FAULT_CONNECTION_RESET_BY_PEER,
} mk_mock_fault_t;

typedef struct mk_mock_response {
    int status;
    mk_header_t *headers; /* owned, with their bytes */
    size_t nheaders;
    /* Per header, its compiled template when the value holds placeholders (NULL entries
     * otherwise); NULL when no header does. */
    mk_template_t **header_tpls;
    char *body; /* owned; the payload when it is constant */
    size_t body_len;
    mk_template_t *body_tpl; /* the payload's template when it holds placeholders, else NULL */
    /* payloadTemplatePath: a response template to answer with instead of payload, resolved
     * outside this module (owned; NULL when none). */
    char *template_path;
    mk_mock_delay_kind_t delay_kind;
    double delay_a, delay_b;
    uint32_t delay_ms; /* the fixed delay (delay_kind FIXED) */
    mk_mock_fault_t fault;
    uint32_t dribble_chunks; /* chunkedDribbleDelay: 0 = off */
    uint32_t dribble_ms;
    /* gRPC mocks: status is the gRPC code (0-16), grpc_message the `error` text (owned, NULL
     * when none), grpc_details the validated `errorDetails` array (owned reference, or NULL). */
    char *grpc_message;
    json_t *grpc_details;
} mk_mock_response_t;

/* One `extract` entry: on a match, value is rendered and written to key of store. */
typedef struct mk_mock_extract {
    mk_template_store_t store;
    char *key;
    mk_template_t *value;
} mk_mock_extract_t;

/* A per-mock callback (Mockarty's `webhooks`, its Callback DTO): sent after a match by a sender
 * outside this module. Only the HTTP kind is sent; Kafka and RabbitMQ ones are validated and
 * stored so definitions written for Mockarty load, and kept in the definition only. */
typedef enum mk_mock_webhook_kind {
    MK_MOCK_WEBHOOK_HTTP,
    MK_MOCK_WEBHOOK_KAFKA,
    MK_MOCK_WEBHOOK_RABBITMQ,
} mk_mock_webhook_kind_t;

/* When a webhook fires. Absent means ALWAYS. ON_SUCCESS / ON_ERROR: the served status is below
 * 400 / 400 or above (or a fault); ON_FIRST_USE: the first match; ON_LAST_USE: the match that
 * reaches useLimiter. */
typedef enum mk_mock_webhook_trigger {
    MK_MOCK_WEBHOOK_ALWAYS,
    MK_MOCK_WEBHOOK_ON_SUCCESS,
    MK_MOCK_WEBHOOK_ON_ERROR,
    MK_MOCK_WEBHOOK_ON_FIRST_USE,
    MK_MOCK_WEBHOOK_ON_LAST_USE,
} mk_mock_webhook_trigger_t;

#define MK_MOCK_WEBHOOK_MAX                16
#define MK_MOCK_WEBHOOK_DEFAULT_TIMEOUT_MS 10000
#define MK_MOCK_WEBHOOK_MAX_RETRIES        10

typedef struct mk_mock_webhook {
    mk_mock_webhook_kind_t kind;
    mk_mock_webhook_trigger_t trigger;
    bool async;             /* true: the answer does not wait for the call */
    char method[8];         /* upper-case, "POST" by default (HTTP kind) */
    char *url;              /* owned; the literal url (HTTP kind), NULL for other kinds */
    mk_template_t *url_tpl; /* the url's template when it holds placeholders, else NULL */
    /* Headers and body are compiled like a response's (see mk_mock_response_t): literal bytes,
     * plus templates where they hold placeholders. Content-Type is added (application/json, or
     * text/plain for a string body) when there is a body and the headers lack one. */
    mk_header_t *headers; /* owned, with their bytes */
    size_t nheaders;
    mk_template_t **header_tpls;
    char *body; /* owned; NULL when the webhook has no body */
    size_t body_len;
    mk_template_t *body_tpl;
    uint32_t timeout_ms;     /* per attempt; MK_MOCK_WEBHOOK_DEFAULT_TIMEOUT_MS when not given */
    uint32_t retry_count;    /* further attempts after a failed one, at most MAX_RETRIES */
    uint32_t retry_delay_ms; /* between attempts */
} mk_mock_webhook_t;

/* The call kind of a gRPC mock (`grpc.methodType`); NONE marks an HTTP mock. */
typedef enum mk_mock_grpc_kind {
    MK_MOCK_GRPC_NONE,
    MK_MOCK_GRPC_UNARY,
    MK_MOCK_GRPC_SERVER_STREAM,
    MK_MOCK_GRPC_CLIENT_STREAM,
    MK_MOCK_GRPC_BIDI,
    MK_MOCK_GRPC_ANY, /* methodType absent: whatever the descriptor says */
} mk_mock_grpc_kind_t;

/* A gRPC mock is indexed like an HTTP one under this method and the route
 * "/<service>/<method>" (the call's :path), so its lookup costs what an HTTP lookup costs. */
#define MK_MOCK_GRPC_METHOD "GRPC"

typedef enum mk_mock_oneof {
    MK_MOCK_SINGLE,
    MK_MOCK_ONEOF_ORDER,
    MK_MOCK_ONEOF_RANDOM,
} mk_mock_oneof_t;

typedef struct mk_mock {
    char *id;
    char *namespace_;
    char *chain_id;                /* NULL when none */
    char *folder_id;               /* Mockarty's folderId; NULL when none */
    char *server_name;             /* Mockarty's serverName; NULL when none */
    char *method;                  /* upper-case, or "ANY" */
    char *route;                   /* pathPrefix + http.route; "/<service>/<method>" for gRPC */
    mk_mock_grpc_kind_t grpc_kind; /* MK_MOCK_GRPC_NONE for HTTP mocks */
    char **tags;
    size_t ntags;
    int64_t priority;
    int64_t ttl;         /* seconds; 0 = never expires */
    int64_t use_limiter; /* 0 = unlimited */
    int64_t created_at;  /* unix ms */
    int64_t updated_at;
    int64_t expire_at; /* 0 = never */
    int64_t closed_at; /* 0 = live */
    mk_cond_t **conds; /* body, query and header conditions (gRPC: message and metadata) */
    size_t nconds;
    mk_mock_response_t *responses;
    size_t nresponses;
    mk_mock_oneof_t oneof;
    mk_mock_extract_t *extracts;
    size_t nextracts;
    mk_mock_webhook_t *webhooks;
    size_t nwebhooks;
    json_t *mstore;  /* the mStore seed object (owned, small, read-only once built), or NULL */
    /* A GraphQL mock's context and graphqlErrors (mock_graphql.h; owned, NULL otherwise). */
    struct mk_mock_graphql *graphql;
    /* Mockarty's `proxy`: the answer comes from an upstream (mock_proxy.h; owned, NULL when
     * none); the response, optional then, adds its delay and fault. */
    struct mk_mock_proxy *proxy;
    /* A WebSocket mock's socket context and answers (mock_socket.h; owned, NULL otherwise). */
    struct mk_mock_socket *socket;
    /* A SOAP mock's soap context and its SOAP 1.2 answers (mock_soap.h; owned, NULL otherwise). */
    struct mk_mock_soap *soap;
    /* An SSE mock's event chain (mock_sse.h; owned, NULL otherwise): a GET route that streams. */
    struct mk_mock_sse *sse;
    bool uses_store; /* extraction or a template (webhooks included) reads or writes a store */
    /* The stored definition as compact JSON text without the fields held above (id, namespace,
     * createdAt, updatedAt, expireAt), its common runs packed into single bytes: about a hundred
     * bytes where a jansson tree took kilobytes. Private: use the accessors. */
    char *def_text_;
    bool names_packed_; /* id, namespace_ and route share the allocation of id */

    atomic_int_fast64_t uses;
    atomic_int_fast64_t last_use;
    atomic_uint_fast64_t next_response; /* oneOf order cursor */
    atomic_int refs;
    int64_t flushed_uses; /* writer-side: usage last written to the repository */
    int64_t flushed_last_use;
} mk_mock_t;

/* Timing and identity the parser cannot know by itself. */
typedef struct mk_mock_parse_opts {
    int64_t now_ms;
    /* When replacing an existing mock, its creation time (kept); 0 for a new mock. */
    int64_t created_at;
} mk_mock_parse_opts_t;

/* Validates and compiles def (borrowed). On success *out holds one reference (free with
 * mk_mock_unref()); the stored definition is a copy of def with the server-set fields
 * (id when absent, namespace default, createdAt, updatedAt, expireAt, closedAt) filled in and the
 * client's counters (lastUse, useCounter, useCount) dropped.
 * On failure returns MK_EINVAL with a message naming the field, e.g.
 * "http.conditions[1].value: invalid regular expression: ...". */
int mk_mock_parse(const json_t *def, const mk_mock_parse_opts_t *opts, mk_mock_t **out,
                  mk_err_t *err);

/* Rebuilds a mock from its stored definition (as written by mk_mock_parse), restoring the
 * server-set fields and counters instead of assigning new ones. */
int mk_mock_load(const json_t *stored, int64_t uses, int64_t last_use, mk_mock_t **out,
                 mk_err_t *err);

/* Many stored definitions compiled at once, split over threads (a node's start, a resolver's
 * resync): add the rows (json is copied), then run. */
typedef struct mk_mock_loader mk_mock_loader_t;
mk_mock_loader_t *mk_mock_loader_new(void);
void mk_mock_loader_free(mk_mock_loader_t *l);
int mk_mock_loader_add(mk_mock_loader_t *l, const char *json, int64_t uses, int64_t last_use);
size_t mk_mock_loader_count(const mk_mock_loader_t *l);
/* Compiles every row added on up to nthreads threads (fewer for few rows). *out (caller frees
 * the array with free() and owns one reference per mock) gets those that compiled, in the order
 * added; rows this build cannot compile are skipped and counted in *failed (may be NULL). */
int mk_mock_loader_run(mk_mock_loader_t *l, unsigned nthreads, mk_mock_t ***out, size_t *n,
                       size_t *failed);

mk_mock_t *mk_mock_ref(mk_mock_t *m);
void mk_mock_unref(mk_mock_t *m);

/* The definition with live counters (lastUse, useCounter): a new reference. */
json_t *mk_mock_to_json(const mk_mock_t *m);

/* The stored definition (server-set fields included, closedAt as m->closed_at, no live
 * counters): a new reference the caller may change freely. Callers outside this module use this,
 * never m->def, so the module is free to keep the definition in whatever form is smallest. */
json_t *mk_mock_definition(const mk_mock_t *m);

/* True when the mock may match at now_ms: live, not expired, not used up. */
bool mk_mock_active(const mk_mock_t *m, int64_t now_ms);

/* Claims one use (false when the use limit is reached) and records the time. Thread-safe. */
bool mk_mock_claim_use(mk_mock_t *m, int64_t now_ms);

/* Picks the response to send (oneOf order/random; rng decides random picks when given, so a
 * seeded request is reproducible). Thread-safe. */
const mk_mock_response_t *mk_mock_pick_response(mk_mock_t *m, mk_faker_rng_t *rng);

/* The delay of one answer, drawn from the response's distribution, at most MK_MOCK_MAX_DELAY_MS. */
uint32_t mk_mock_pick_delay(const mk_mock_response_t *r, mk_faker_rng_t *rng);

/* A new random identifier (UUID v4 text) into buf of at least 37 bytes. */
void mk_mock_new_id(char *buf);

/* Checks a namespace name: 1-64 of [A-Za-z0-9_.-]. */
int mk_mock_validate_namespace(const char *name, mk_err_t *err);

int64_t mk_mock_now_ms(void);

#endif
