/* The gRPC descriptor endpoints: upload a FileDescriptorSet (or .proto text, compiled with
 * protoc) for a namespace, list and delete them. gRPC mocks decode and encode with these. */
#include "api/api_internal.h"
#include "grpcmock/grpcmock.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_NAME "default"

static const char *set_name(ctx_t *c)
{
    const char *name = mk_api_query(c, "name");
    return name ? name : DEFAULT_NAME;
}

static int descriptors_put(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    mk_str_t ct = {0};
    mk_request_header(c->view, MK_STR_LIT("Content-Type"), &ct);
    bool proto = mk_str_starts_with(ct, "text/");
    uint8_t *compiled = NULL;
    size_t len = c->view->body.len;
    const uint8_t *data = (const uint8_t *)c->view->body.base;
    mk_err_t err;
    json_t *info = NULL;
    int status;
    if (proto) {
        if (mk_grpcmock_compile_proto(c->view->body.base, c->view->body.len, &compiled, &len,
                                      &err) != 0)
            return mk_api_reply_err(c, &err);
        data = compiled;
    }
    if (mk_grpcmock_descriptor_put(c->api->repo, ns, set_name(c), data, len, &info, &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        mk_grpcmock_notify();
        status = mk_api_reply_json(c->req, 201, info);
    }
    free(compiled);
    return status;
}

static int descriptors_list(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    json_t *list;
    mk_err_t err;
    if (mk_grpcmock_descriptor_list(c->api->repo, ns, &list, &err) != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200, json_pack("{s:o}", "descriptors", list));
}

static int descriptors_delete(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    char *name = mk_str_dup(c->match.values[0]);
    mk_err_t err;
    int status;
    if (name == NULL)
        return mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
    if (mk_grpcmock_descriptor_delete(c->api->repo, ns, name, &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        mk_grpcmock_notify();
        status =
            mk_api_reply_json(c->req, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
    }
    free(name);
    return status;
}

const mk_api_endpoint_t mk_api_grpc_endpoints[] = {
    {"POST", "/api/v1/grpc/descriptors", descriptors_put, "mocks:write",
     "Upload a FileDescriptorSet (application/octet-stream) or .proto text (text/plain) for the "
     "namespace's gRPC mocks, as ?name= (default \"default\"; replaces one of that name)",
     0},
    {"GET", "/api/v1/grpc/descriptors", descriptors_list, "mocks:read",
     "The namespace's descriptor sets: name, size, services, methods", 0},
    {"DELETE", "/api/v1/grpc/descriptors/:name", descriptors_delete, "mocks:write",
     "Delete a descriptor set of the namespace", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
