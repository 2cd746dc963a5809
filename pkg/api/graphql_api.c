/* The GraphQL schema endpoints: upload an SDL schema for one GraphQL endpoint of a namespace
 * (enabling introspection and validation there), list, read and delete them. */
#include "api/api_internal.h"
#include "graphql/schema_docs.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_PATH "/graphql"

static const char *endpoint_path(ctx_t *c, json_t *body)
{
    const char *p = body ? json_string_value(json_object_get(body, "path")) : NULL;
    if (p == NULL)
        p = mk_api_query(c, "path");
    return p && p[0] ? p : DEFAULT_PATH;
}

static int schemas_put(ctx_t *c)
{
    mk_str_t ct = {0};
    mk_request_header(c->view, MK_STR_LIT("Content-Type"), &ct);
    /* JSON {"sdl", "path", "namespace"}, or the SDL itself as the body (any other type). */
    json_t *body = NULL;
    if (mk_str_starts_with(ct, "application/json")) {
        body = json_loadb(c->view->body.base, c->view->body.len, 0, NULL);
        if (!json_is_string(json_object_get(body, "sdl"))) {
            json_decref(body);
            return mk_api_reply_fmt(c, MK_EINVAL,
                                    "body: a JSON body is {\"sdl\": \"type Query {...}\", "
                                    "\"path\": \"/graphql\"}; or send the SDL as text/plain");
        }
    }
    const char *ns = mk_api_namespace(c, body);
    if (ns == NULL) {
        json_decref(body);
        return 400;
    }
    const char *sdl = body ? json_string_value(json_object_get(body, "sdl")) : c->view->body.base;
    size_t len = body ? json_string_length(json_object_get(body, "sdl")) : c->view->body.len;
    json_t *info = NULL;
    mk_err_t err;
    int status;
    if (mk_gql_schema_put(c->api->repo, ns, endpoint_path(c, body), sdl ? sdl : "", len, &info,
                          &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        mk_gql_registry_notify();
        status = mk_api_reply_json(c->req, 201, info);
    }
    json_decref(body);
    return status;
}

static int schemas_list(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    json_t *list;
    mk_err_t err;
    if (mk_gql_schema_list(c->api->repo, ns, &list, &err) != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200, json_pack("{s:o}", "schemas", list));
}

static int schema_sdl(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    char *sdl;
    mk_err_t err;
    if (mk_gql_schema_get(c->api->repo, ns, endpoint_path(c, NULL), &sdl, &err) != 0)
        return mk_api_reply_err(c, &err);
    mk_httpd_add_header(c->req, MK_STR_LIT("Content-Type"),
                        MK_STR_LIT("application/graphql; charset=utf-8"));
    mk_httpd_respond(c->req, 200, mk_str_of(sdl));
    free(sdl);
    return 200;
}

static int schemas_delete(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    const char *path = endpoint_path(c, NULL);
    mk_err_t err;
    if (mk_gql_schema_delete(c->api->repo, ns, path, &err) != 0)
        return mk_api_reply_err(c, &err);
    mk_gql_registry_notify();
    return mk_api_reply_json(c->req, 200, json_pack("{s:s, s:b}", "path", path, "deleted", 1));
}

const mk_api_endpoint_t mk_api_graphql_endpoints[] = {
    {"POST", "/api/v1/graphql/schemas", schemas_put, "mocks:write",
     "Upload the SDL schema of a GraphQL endpoint (?path=, default /graphql, pathPrefix included): "
     "enables introspection and validation there; the body is the SDL, or JSON {sdl, path}",
     MK_API_HEAVY},
    {"GET", "/api/v1/graphql/schemas", schemas_list, "mocks:read",
     "The namespace's GraphQL schemas: path, size, types, root types", MK_API_HEAVY},
    {"GET", "/api/v1/graphql/schemas/sdl", schema_sdl, "mocks:read",
     "The SDL uploaded for one GraphQL endpoint (?path=, default /graphql)", MK_API_HEAVY},
    {"DELETE", "/api/v1/graphql/schemas", schemas_delete, "mocks:write",
     "Delete the schema of one GraphQL endpoint (?path=, default /graphql)", MK_API_HEAVY},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
