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
int mk_serve_graphql_start(mk_repo_t *repo, int poll_ms, mk_err_t *err);
void mk_serve_graphql_stop(void);

#endif
