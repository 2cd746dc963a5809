/* GraphQL mocks (issue 13) on the HTTP port: requests to a GraphQL endpoint (a `graphql.path` of
 * the namespace's mocks, or the path of an uploaded schema) are parsed by pkg/graphql, validated
 * against the endpoint's schema when one was uploaded, and answered field by field from the mocks
 * indexed as GRAPHQL <endpoint>/<operation>/<field>: {"data": ..., "errors": [...]}. The fields'
 * mocks run their extraction and read stores through serve.c's passes (serve_pass.h), in the
 * query's order; with Redis the answer waits for the store on the worker's loop. */
#ifndef MK_SERVE_GRAPHQL_H
#define MK_SERVE_GRAPHQL_H

#include "repo/repo.h"
#include "serve/serve.h"

/* Tried by mk_serve_http when no HTTP mock matched. Returns false quickly (no body parse) when
 * req is not a GraphQL request for an endpoint of ns; otherwise answers it, sets *status and
 * returns true. */
bool mk_serve_graphql_try(mk_serve_t *s, const mk_snapshot_t *snap, mk_httpd_req_t *req,
                          mk_request_t *view, mk_str_t ns, mk_str_t path, int64_t now_ms,
                          int *status);

/* Uploaded schemas (pkg/graphql/schema_docs.h) enable validation and introspection: this starts
 * the process's schema registry reading repo (borrowed, must outlive it) every poll_ms. Without
 * it GraphQL mocks are served without a schema. Returns 0, or an error the caller may report and
 * go on without schemas. */
/* ---- GraphQL over a WebSocket: the graphql-ws protocols (serve_graphql_ws.c) ----
 * A handshake on a GraphQL endpoint is upgraded (graphql-transport-ws, or the legacy graphql-ws
 * subprotocol); each operation it carries is answered by the code that answers HTTP requests. */

/* Answers req (a WebSocket handshake on the GraphQL endpoint path of ns) with 101, sets *status
 * and returns true; false (nothing sent) when the upgrade could not be made. */
bool mk_serve_graphql_ws_accept(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                                mk_str_t path, int *status);

/* One operation sent over a WebSocket: parsed, validated and planned (uses claimed, responses
 * picked) by mk_serve_graphql_op_new, then rendered as one or more results. */
typedef struct mk_serve_gql_op mk_serve_gql_op_t;

/* payload is the message's {query, variables, operationName, extensions} as JSON text (copied);
 * ns, endpoint and hs (the upgrade request's query and headers) are borrowed until
 * mk_serve_graphql_op_free. The operation is journaled (protocol graphql, method WS) here.
 * Returns NULL when out of memory; caller frees with mk_serve_graphql_op_free. */
mk_serve_gql_op_t *mk_serve_graphql_op_new(mk_serve_t *s, unsigned worker, mk_str_t ns,
                                           mk_str_t endpoint, const mk_request_t *hs,
                                           mk_str_t payload);
/* How many results it answers: the events of a subscription whose mock has a
 * response.sseEventChain, else 1. */
size_t mk_serve_graphql_op_results(const mk_serve_gql_op_t *op);
/* How long to wait before result k: event k's delay, or the response's delay. */
uint32_t mk_serve_graphql_op_delay(const mk_serve_gql_op_t *op, size_t k);
/* Result k (k < results) as a new reference: {data, errors} for a `next` message, or, with
 * *is_error, the GraphQLError array of an `error` message (the request itself failed). */
json_t *mk_serve_graphql_op_result(mk_serve_gql_op_t *op, size_t k, bool *is_error);
void mk_serve_graphql_op_free(mk_serve_gql_op_t *op);

/* The upgrade request's query and headers kept past the upgrade (serve_ws.c): one block holding
 * every name and value, and the array of slices into it. */
typedef struct mk_serve_ws_kept {
    char *block; /* owned; free() it */
    mk_str_t query;
    mk_header_t *headers;
    size_t nheaders;
} mk_serve_ws_kept_t;
/* Copies view's query and headers into k. Returns 0 or MK_ENOMEM. */
int mk_serve_ws_keep(const mk_request_t *view, mk_serve_ws_kept_t *k);

int mk_serve_graphql_start(mk_repo_t *repo, int poll_ms, mk_err_t *err);
void mk_serve_graphql_stop(void);

#endif
