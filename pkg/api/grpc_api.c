/* The gRPC descriptor endpoints: upload a FileDescriptorSet (or .proto text, compiled with
 * protoc) for a namespace, list and delete them. gRPC mocks decode and encode with these. */
#include "api/api_internal.h"
#include "grpcmock/grpcmock.h"
#include "importer/importer.h"
#include "protodyn/protodyn.h"

#include <stdio.h>
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

/* ---- the generator ---- */

/* .proto source rather than a binary set: text that starts like a .proto file does. */
static bool proto_text(const char *text, size_t len)
{
    static const char *const starts[] = {"syntax", "package", "import", "message", "service",
                                         "option", "enum",    "//",     "/*"};
    while (len && (*text == ' ' || *text == '\t' || *text == '\r' || *text == '\n')) {
        text++;
        len--;
    }
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++) {
        size_t n = strlen(starts[i]);
        if (len >= n && memcmp(text, starts[i], n) == 0)
            return true;
    }
    return false;
}

/* The set's bytes: the body, or the .proto text compiled (*owned then holds them). */
static int set_bytes(const char *text, size_t len, uint8_t **owned, const uint8_t **data, size_t *n,
                     mk_err_t *err)
{
    *owned = NULL;
    *data = (const uint8_t *)text;
    *n = len;
    if (!proto_text(text, len))
        return 0;
    int rc = mk_grpcmock_compile_proto(text, len, owned, n, err);
    *data = *owned;
    return rc;
}

int mk_api_grpc_import(const char *text, size_t len, const mk_import_opts_t *o,
                       mk_import_result_t *r, mk_err_t *err)
{
    uint8_t *owned;
    const uint8_t *data;
    size_t n;
    mk_protodyn_pool_t *pool = NULL;
    int rc = set_bytes(text, len, &owned, &data, &n, err);
    if (rc == 0)
        rc = mk_protodyn_pool_new(data, n, &pool, err);
    if (rc == 0 && mk_protodyn_method_count(pool) == 0)
        rc = mk_err_set(err, MK_EINVAL, "the descriptor set defines no service method");
    for (size_t i = 0; rc == 0 && i < mk_protodyn_method_count(pool); i++) {
        const mk_protodyn_method_t *m = mk_protodyn_method_at(pool, i);
        const char *kind = m->client_streaming && m->server_streaming ? "bidi"
                           : m->client_streaming                      ? "client_stream"
                           : m->server_streaming                      ? "server_stream"
                                                                      : "unary";
        json_t *sample = mk_protodyn_sample(m->output);
        /* A stream answers a list of messages: one example. */
        json_t *payload = m->server_streaming ? json_pack("[o]", sample) : sample;
        /* Stable per namespace and method: generating again replaces. */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = o->id_seed ? o->id_seed : ""; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        for (const char *p = m->path; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        char id[96];
        snprintf(id, sizeof id, "grpc-%.40s-%016llx", m->name, (unsigned long long)h);
        json_t *def =
            json_pack("{s:s, s:{s:s, s:s, s:s}, s:{s:o}}", "id", id, "grpc", "service", m->service,
                      "method", m->name, "methodType", kind, "response", "payload", payload);
        if (o->tags)
            json_object_set(def, "tags", o->tags);
        if (o->chain_id)
            json_object_set_new(def, "chainId", json_string(o->chain_id));
        if (o->server_name)
            json_object_set_new(def, "serverName", json_string(o->server_name));
        json_array_append_new(r->mocks, def);
    }
    mk_protodyn_pool_free(pool);
    free(owned);
    return rc;
}

int mk_api_grpc_keep(mk_api_t *api, const char *ns, const char *name, const char *text, size_t len,
                     mk_err_t *err)
{
    uint8_t *owned;
    const uint8_t *data;
    size_t n;
    json_t *info = NULL;
    int rc = set_bytes(text, len, &owned, &data, &n, err);
    if (rc == 0)
        rc = mk_grpcmock_descriptor_put(api->repo, ns, name ? name : DEFAULT_NAME, data, n, &info,
                                        err);
    if (rc == 0)
        mk_grpcmock_notify();
    json_decref(info);
    free(owned);
    return rc;
}

const mk_api_endpoint_t mk_api_grpc_endpoints[] = {
    {"POST", "/api/v1/grpc/descriptors", descriptors_put, "mocks:write",
     "Upload a FileDescriptorSet (application/octet-stream) or .proto text (text/plain) for the "
     "namespace's gRPC mocks, as ?name= (default \"default\"; replaces one of that name)",
     MK_API_HEAVY},
    {"GET", "/api/v1/grpc/descriptors", descriptors_list, "mocks:read",
     "The namespace's descriptor sets: name, size, services, methods", MK_API_HEAVY},
    {"DELETE", "/api/v1/grpc/descriptors/:name", descriptors_delete, "mocks:write",
     "Delete a descriptor set of the namespace", MK_API_HEAVY},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
