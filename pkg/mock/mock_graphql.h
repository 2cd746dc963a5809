/* GraphQL mocks (issue 13): Mockarty's `graphql` request context (operation, field, type, path,
 * conditions on the variables, header conditions) and the `graphqlErrors` of a response, compiled
 * once. A GraphQL mock is in the route index under method MK_MOCK_GRAPHQL_METHOD and the route
 * "<pathPrefix><graphql.path>/<operation>/<field>", so serving one top-level field of a request
 * is one index probe, and GraphQL mocks never answer plain HTTP requests. */
#ifndef MK_MOCK_GRAPHQL_H
#define MK_MOCK_GRAPHQL_H

#include "mock/mock.h"

#define MK_MOCK_GRAPHQL_METHOD       "GRAPHQL"
#define MK_MOCK_GRAPHQL_DEFAULT_PATH "/graphql"
#define MK_MOCK_GRAPHQL_MAX_EVENTS   1000 /* in one response's sseEventChain */

/* One event of a subscription's stream (a response's `sseEventChain.events`): its `data` is the
 * field's payload for one `next` message over a WebSocket, sent delay_ms after the previous. */
typedef struct mk_mock_graphql_event {
    mk_template_t *data; /* a JSON template; NULL when the event has no data (null) */
    uint32_t delay_ms;
} mk_mock_graphql_event_t;

typedef struct mk_mock_graphql_stream {
    mk_mock_graphql_event_t *events;
    size_t nevents;
} mk_mock_graphql_stream_t;

typedef struct mk_mock_graphql {
    int operation;  /* 0 query, 1 mutation, 2 subscription (mk_gql_op_kind_t's order) */
    char *field;    /* the top-level field answered */
    char *endpoint; /* pathPrefix + graphql.path: where requests come */
    /* Per response (index as in m->responses): the `graphqlErrors` array as a JSON template, or
     * NULL when that response has none. */
    mk_template_t **errors;
    size_t nerrors;
    /* Per response, as errors (nerrors of them): the events a subscription streams over a
     * WebSocket (serve_graphql_ws.c); nevents 0 when that response has none. */
    mk_mock_graphql_stream_t *streams;
} mk_mock_graphql_t;

/* Does def describe a GraphQL mock (a `graphql` object with content and no http.route)? Mockarty's
 * Go SDK sends every context, empty ones as {}. */
bool mk_mock_graphql_is(const json_t *def);
/* Compiles the graphql context of def into m (m->graphql, method, route, conditions): MK_EINVAL
 * naming the field, e.g. "graphql.operation: unknown 'select' (query, mutation or
 * subscription)". */
int mk_mock_graphql_compile(mk_mock_t *m, const json_t *def, mk_err_t *err);
void mk_mock_graphql_free(mk_mock_graphql_t *g);

/* Writes the index route of (endpoint, operation, field) into buf; false when it does not fit. */
bool mk_mock_graphql_route(char *buf, size_t size, mk_str_t endpoint, int operation,
                           const char *field);

/* The operation names, by mk_mock_graphql_t.operation. */
extern const char *const mk_mock_graphql_operations[3];

#endif
