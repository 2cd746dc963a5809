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
    const char *method = json_string_value(json_object_get(soap, "method"));
    if (method && method[0] == '?')
        snprintf(buf, size, "soap-wsdl-%016llx", (unsigned long long)h);
    else
        snprintf(buf, size, "soap-%.40s-%016llx", method ? method : "", (unsigned long long)h);
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

/* GET <endpoint>?wsdl answers the document with its addresses pointing at this server (origin:
 * ?baseUrl=, else http:// and the authority the upload was sent to; then the namespace's /stubs/
 * path and pathPrefix): one HTTP mock per endpoint, so clients load the WSDL from the mock server
 * and call it. Left out when the document holds a '$' (a payload reads it as a placeholder). */
static void add_wsdl_mocks(json_t *defs, mk_str_t doc, const char *ns, const char *path,
                           const char *prefix, const char *origin)
{
    if (memchr(doc.base, '$', doc.len) != NULL)
        return;
    size_t n = json_array_size(defs);
    for (size_t i = 0; i < n; i++) {
        const char *ep = json_string_value(
            json_object_get(json_object_get(json_array_get(defs, i), "soap"), "path"));
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(ep, json_string_value(json_object_get(
                                  json_object_get(json_array_get(defs, k), "soap"), "path"))) == 0;
        if (seen || ep == NULL)
            continue;
        char base[600];
        bool stubs = strcmp(ns, MK_MOCK_DEFAULT_NAMESPACE) != 0;
        snprintf(base, sizeof base, "%s%s%s%s", origin, stubs ? "/stubs/" : "", stubs ? ns : "",
                 prefix && strcmp(prefix, "/") != 0 ? prefix : "");
        size_t bl = strlen(base);
        while (bl > 0 && base[bl - 1] == '/')
            base[--bl] = '\0';
        mk_buf_t text;
        mk_buf_init(&text, MK_SOAP_WSDL_MAX * 2);
        mk_err_t err;
        if (mk_soap_wsdl_rewrite(doc.base, doc.len, base, path, &text, &err) == 0) {
            json_t *soap =
                json_pack("{s:s, s:s, s:s}", "path", ep, "service", "", "method", "?wsdl");
            char id[96];
            mock_id(ns, soap, id, sizeof id);
            json_decref(soap);
            json_t *m = json_pack("{s:s, s:{s:s, s:s, s:[{s:s, s:s}]}, s:{s:i, s:{s:s}, s:s#}}",
                                  "id", id, "http", "route", ep, "httpMethod", "GET", "queryParams",
                                  "path", "wsdl", "assertAction", "any", "response", "statusCode",
                                  200, "headers", "Content-Type", "text/xml; charset=utf-8",
                                  "payload", text.data, text.len);
            if (m && prefix && prefix[0])
                json_object_set_new(m, "pathPrefix", json_string(prefix));
            if (m)
                json_array_append_new(defs, m);
        }
        mk_buf_free(&text);
    }
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
    char origin[300];
    const char *base_url = mk_api_query(c, "baseUrl");
    if (base_url && base_url[0]) {
        snprintf(origin, sizeof origin, "%s", base_url);
    } else {
        char authority[256];
        mk_httpd_req_authority(c->req, authority, sizeof authority);
        snprintf(origin, sizeof origin, "http://%s", authority);
    }
    size_t ol = strlen(origin);
    while (ol > 0 && origin[ol - 1] == '/')
        origin[--ol] = '\0';
    add_wsdl_mocks(defs, body, ns, mk_api_query(c, "path"), o.path_prefix, origin);
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
     "bindings) with a sample response from its schema, and GET <endpoint>?wsdl serving the "
     "document with its addresses on this server (?baseUrl= to choose); ?path= overrides the "
     "endpoint path, ?pathPrefix=; uploading again replaces them",
     MK_API_HEAVY},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
