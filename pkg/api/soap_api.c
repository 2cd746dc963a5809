/* SOAP endpoints: a WSDL 1.1 upload becomes one mock per operation, with a sample response
 * generated from the document's schema (pkg/soap). The generators' /api/v1/generators/soap uses
 * the same translation (mk_api_soap_import). */
#include "api/api_internal.h"

#include "catalog/catalog.h"
#include "importer/importer.h"
#include "mock/mock.h"
#include "soap/soap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stable id per namespace, endpoint and operation: uploading the same WSDL again replaces its
 * mocks instead of adding copies. */
static void mock_id(const char *seed, const json_t *soap, char *buf, size_t size)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[] = {seed ? seed : "", json_string_value(json_object_get(soap, "path")),
                           json_string_value(json_object_get(soap, "service")),
                           json_string_value(json_object_get(soap, "method"))};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        for (const char *p = parts[i] ? parts[i] : ""; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    snprintf(buf, size, "soap-%.40s-%016llx", json_string_value(json_object_get(soap, "method")),
             (unsigned long long)h);
}

/* Ids, pathPrefix, tags, chainId and serverName of the options on each generated mock. */
static void apply_opts(json_t *mocks, const mk_import_opts_t *o)
{
    size_t i;
    json_t *def;
    json_array_foreach(mocks, i, def)
    {
        char id[96];
        mock_id(o->id_seed, json_object_get(def, "soap"), id, sizeof id);
        json_object_set_new(def, "id", json_string(id));
        if (o->path_prefix && o->path_prefix[0])
            json_object_set_new(def, "pathPrefix", json_string(o->path_prefix));
        if (o->chain_id && o->chain_id[0])
            json_object_set_new(def, "chainId", json_string(o->chain_id));
        if (o->server_name && o->server_name[0])
            json_object_set_new(def, "serverName", json_string(o->server_name));
        if (json_is_array(o->tags))
            json_object_set(def, "tags", o->tags);
    }
}

int mk_api_soap_import(const char *text, size_t len, const mk_import_opts_t *o,
                       mk_import_result_t *r, mk_err_t *err)
{
    json_t *mocks;
    int rc = mk_soap_wsdl_mocks(text, len, NULL, &mocks, err);
    if (rc)
        return rc;
    apply_opts(mocks, o);
    json_array_extend(r->mocks, mocks);
    json_decref(mocks);
    return 0;
}

static int wsdl_upload(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    mk_str_t body = c->view->body;
    if (body.len == 0)
        return mk_api_reply_fmt(c, MK_EINVAL, "request body: empty, expected a WSDL document");
    json_t *defs = NULL;
    mk_err_t err;
    int rc = mk_soap_wsdl_mocks(body.base, body.len, mk_api_query(c, "path"), &defs, &err);
    if (rc)
        return mk_api_reply_err(c, &err);
    mk_import_opts_t o = {
        .id_seed = ns,
        .path_prefix = mk_api_query(c, "pathPrefix"),
        .chain_id = mk_api_query(c, "chainId"),
        .server_name = mk_api_query(c, "serverName"),
    };
    apply_opts(defs, &o);
    size_t n = json_array_size(defs), done = 0;
    mk_mock_t **mocks = calloc(n, sizeof *mocks);
    bool *replaced = calloc(n, sizeof *replaced);
    int status = 0;
    if (mocks == NULL || replaced == NULL) {
        status = mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
        goto out;
    }
    int64_t now = mk_mock_now_ms();
    pthread_mutex_lock(&c->api->write_lock);
    for (; done < n && status == 0; done++) {
        json_t *def = json_array_get(defs, done);
        if (mk_api_prepare_mock(c, def, ns, now, &mocks[done], &err) != 0) {
            const char *op =
                json_string_value(json_object_get(json_object_get(def, "soap"), "method"));
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", err.msg);
            mk_err_set(&err, err.code, "operation %.64s: %s", op ? op : "?", msg);
            status = -1;
            break;
        }
        mk_mock_t *old = mk_catalog_get(c->api->catalog, mocks[done]->id);
        replaced[done] = old != NULL;
        mk_mock_unref(old);
    }
    if (status == 0) {
        for (size_t i = 0; i < n; i++)
            mk_mock_ref(mocks[i]);
        if (mk_api_commit_mocks(c->api, mocks, n, replaced, &err) != 0) {
            for (size_t i = 0; i < n; i++)
                mk_mock_unref(mocks[i]);
            status = -1;
        }
    }
    pthread_mutex_unlock(&c->api->write_lock);
    if (status != 0) {
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    json_t *items = json_array();
    size_t overwritten = 0;
    for (size_t i = 0; i < n; i++) {
        overwritten += replaced[i];
        json_array_append_new(items, mk_mock_to_json(mocks[i]));
    }
    status = mk_api_reply_json(c->req, 201,
                               json_pack("{s:i, s:i, s:i, s:o}", "created", (int)(n - overwritten),
                                         "overwritten", (int)overwritten, "count", (int)n, "mocks",
                                         items));
out:
    for (size_t i = 0; i < done && mocks; i++)
        mk_mock_unref(mocks[i]);
    free(mocks);
    free(replaced);
    json_decref(defs);
    return status;
}

const mk_api_endpoint_t mk_api_soap_endpoints[] = {
    {"POST", "/api/v1/soap/wsdl", wsdl_upload, "mocks:write",
     "Create one SOAP mock per operation of a WSDL 1.1 document (raw body; SOAP 1.1/1.2 "
     "bindings) with a sample response from its schema; ?path= overrides the endpoint path, "
     "?pathPrefix=; uploading again replaces them",
     MK_API_HEAVY},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
