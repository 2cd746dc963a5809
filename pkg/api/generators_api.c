/* Mocks from existing artefacts (pkg/importer): Mockarty's /api/v1/generators/{kind} and their
 * /preview, and /api/v1/import/{wiremock,postman}. A preview stores nothing; the plain call
 * stores every mock in the request's namespace in one transaction, or nothing (see
 * docs/imports.md). */
#include "api/api_internal.h"

#include "catalog/catalog.h"
#include "importer/importer.h"
#include "mock/mock.h"

#include <stdlib.h>
#include <string.h>

typedef int (*translate_fn)(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r,
                            mk_err_t *err);

/* The kinds, by the last path segment of the row. text: the spec is not a JSON/YAML document. */
static const struct kind {
    const char *name;
    translate_fn fn;
    bool text;
    /* the translator of a text kind */
    int (*text_fn)(const char *text, size_t len, const mk_import_opts_t *o, mk_import_result_t *r,
                   mk_err_t *err);
    /* what a create keeps besides the mocks (NULL: nothing), before they are stored */
    int (*keep)(mk_api_t *api, const char *ns, const char *name, const char *text, size_t len,
                mk_err_t *err);
} kinds[] = {
    {"openapi", mk_import_openapi, false, NULL, NULL},
    {"har", mk_import_har, false, NULL, NULL},
    {"wiremock", mk_import_wiremock, false, NULL, NULL},
    {"postman", mk_import_postman, false, NULL, NULL},
    {"graphql", NULL, true, mk_import_graphql, NULL},
    {"soap", NULL, true, mk_api_soap_import, NULL},
    {"grpc", NULL, true, mk_api_grpc_import, mk_api_grpc_keep},
    {NULL, NULL, false, NULL, NULL},
};

static const struct kind *kind_of(const char *path)
{
    char seg[32] = "";
    const char *p = path;
    while ((p = strchr(p, '/')) != NULL) {
        p++;
        size_t n = strcspn(p, "/");
        if (n < sizeof seg && strncmp(p, "preview", n) != 0) {
            memcpy(seg, p, n);
            seg[n] = 0;
        }
    }
    for (size_t i = 0; kinds[i].name; i++)
        if (strcmp(kinds[i].name, seg) == 0)
            return &kinds[i];
    return NULL;
}

/* Options come from the body when it wraps the spec ({"spec": ...}), else from the query. */
typedef struct call {
    json_t *wrapper; /* the body, when it has "spec"; else NULL */
    json_t *doc;     /* the parsed document (new reference); NULL for text kinds */
    const char *text;
    size_t len;
    bool partial;
    json_t *tags;
    char *owned;       /* text made from a JSON spec, freed with the call */
    json_t *zip_files; /* __files/ of an uploaded WireMock folder */
    mk_import_opts_t o;
} call_t;

/* Options from the query string, for a body that is the spec itself. */
static void query_options(ctx_t *c, call_t *k)
{
    const char *p = mk_api_query(c, "partial");
    k->partial = p && strcmp(p, "true") == 0;
    const char *t = mk_api_query(c, "tags");
    if (t) {
        k->tags = json_array();
        for (const char *s = t; *s;) {
            size_t n = strcspn(s, ",");
            if (n)
                json_array_append_new(k->tags, json_stringn(s, n));
            s += n + (s[n] == ',');
        }
    }
    k->o.tags = k->tags;
    k->o.path_prefix = mk_api_query(c, "pathPrefix");
    k->o.chain_id = mk_api_query(c, "chainId");
    k->o.server_name = mk_api_query(c, "serverName");
}

/* Parses a text spec of a document kind (the error names the position). */
static int parse_text(ctx_t *c, const struct kind *kind, call_t *k)
{
    if (!kind->text && k->doc == NULL) {
        mk_err_t err;
        if (mk_import_parse(k->text, k->len, &k->doc, &err) != 0)
            return mk_api_reply_fmt(c, MK_EINVAL, "%s", err.msg);
    }
    return 0;
}

/* Reads the body into k; answers 400 itself and returns nonzero on bad input. */
static int read_call(ctx_t *c, const struct kind *kind, call_t *k)
{
    mk_str_t body = c->view->body;
    if (body.len == 0)
        return mk_api_reply_fmt(c, MK_EINVAL, "request body: empty, expected a spec");
    if (body.len > MK_IMPORT_MAX_BYTES)
        return mk_api_reply_fmt(c, MK_EINVAL, "spec: %zu bytes, over the import limit of %u bytes",
                                body.len, MK_IMPORT_MAX_BYTES);
    if (mk_import_is_zip(body.base, body.len)) {
        if (strcmp(kind->name, "wiremock") != 0)
            return mk_api_reply_fmt(c, MK_EINVAL,
                                    "a zip archive is accepted by "
                                    "/api/v1/import/wiremock only");
        mk_err_t err;
        if (mk_import_wiremock_zip(body.base, body.len, &k->doc, &k->zip_files, &err) != 0)
            return mk_api_reply_fmt(c, MK_EINVAL, "%s", err.msg);
        k->o.files = k->zip_files;
        query_options(c, k);
        return 0;
    }
    json_t *whole = json_loadb(body.base, body.len, JSON_DECODE_ANY, NULL);
    json_t *spec = json_object_get(whole, "spec");
    if (json_is_object(whole) && (spec || json_object_get(whole, "url"))) {
        k->wrapper = whole;
        if (spec == NULL || json_is_null(spec))
            return mk_api_reply_fmt(c, MK_EINVAL,
                                    "url: fetching a spec from a URL is not supported; send its "
                                    "text in \"spec\"");
        if (json_is_string(spec)) {
            k->text = json_string_value(spec);
            k->len = json_string_length(spec);
        } else if (!kind->text) {
            k->doc = json_incref(spec);
        } else { /* GraphQL: an introspection result given as JSON */
            k->owned = json_dumps(spec, JSON_COMPACT | JSON_ENCODE_ANY);
            k->text = k->owned ? k->owned : "";
            k->len = strlen(k->text);
        }
        json_t *p = json_object_get(whole, "partial");
        k->partial = json_is_true(p);
        k->tags = json_incref(json_object_get(whole, "tags"));
        if (k->tags && !json_is_array(k->tags))
            return mk_api_reply_fmt(c, MK_EINVAL, "tags: expected an array of strings");
        k->o.files = json_object_get(whole, "files");
    } else {
        json_decref(whole);
        /* The body is the spec itself: JSON or YAML (parsed below, for the error position). */
        k->text = body.base;
        k->len = body.len;
        query_options(c, k);
        return parse_text(c, kind, k);
    }
    k->o.tags = k->tags;
    k->o.path_prefix = json_string_value(json_object_get(whole, "pathPrefix"));
    k->o.chain_id = json_string_value(json_object_get(whole, "chainId"));
    k->o.server_name = json_string_value(json_object_get(whole, "serverName"));
    return parse_text(c, kind, k);
}

static json_t *report(json_t *out, const mk_import_result_t *r)
{
    json_object_set(out, "skipped", r->skipped);
    json_object_set(out, "warnings", r->warnings);
    if (json_array_size(r->errors))
        json_object_set(out, "errors", r->errors);
    return out;
}

/* 400 naming the first problem, with the whole list. */
static int refuse(ctx_t *c, json_t *errors, const mk_import_result_t *r)
{
    json_t *first = json_array_get(errors, 0);
    char msg[900];
    snprintf(msg, sizeof msg, "%s: %s%s", json_string_value(json_object_get(first, "item")),
             json_string_value(json_object_get(first, "reason")),
             json_array_size(errors) > 1 ? " (and more: see errors)" : "");
    mk_str_t id = mk_httpd_req_id(c->req);
    json_t *out = json_pack("{s:s, s:s, s:s#, s:O, s:i}", "error", msg, "code", "validation",
                            "request_id", id.base, id.len, "errors", errors, "created", 0);
    json_object_set(out, "skipped", r->skipped);
    json_object_set(out, "warnings", r->warnings);
    return mk_api_reply_json(c->req, 400, out);
}

static int run(ctx_t *c, bool store)
{
    const struct kind *kind = kind_of(c->ep->path);
    if (kind == NULL)
        return mk_api_reply_fmt(c, MK_EINTERNAL, "no importer for %s", c->ep->path);
    call_t k = {0};
    mk_import_result_t r;
    mk_import_result_init(&r);
    mk_mock_t **mocks = NULL;
    bool *replaced = NULL;
    size_t n = 0;
    int status = read_call(c, kind, &k);
    if (status)
        goto out;
    const char *ns = mk_api_namespace(c, k.wrapper);
    if (ns == NULL) {
        status = 400;
        goto out;
    }
    k.o.id_seed = ns;
    mk_err_t err;
    int rc =
        kind->text ? kind->text_fn(k.text, k.len, &k.o, &r, &err) : kind->fn(k.doc, &k.o, &r, &err);
    if (rc != 0) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "%s", err.msg);
        goto out;
    }
    if (json_array_size(r.errors) && !k.partial) {
        status = refuse(c, r.errors, &r);
        goto out;
    }
    size_t total = json_array_size(r.mocks);
    mocks = calloc(total ? total : 1, sizeof *mocks);
    replaced = calloc(total ? total : 1, sizeof *replaced);
    json_t *ids = json_object();
    int64_t now = mk_mock_now_ms();
    /* A create holds the lock from the first check to the commit (one consistent step); a
     * preview takes it per mock, so a large one does not hold other writers back. */
    if (store)
        pthread_mutex_lock(&c->api->write_lock);
    for (size_t i = 0; i < total; i++) {
        json_t *def = json_array_get(r.mocks, i);
        const char *id = json_string_value(json_object_get(def, "id"));
        char where[200];
        const json_t *g = json_object_get(def, "grpc");
        if (g) /* a gRPC mock: its service and method */
            snprintf(where, sizeof where, "mocks[%zu] %s/%s", i,
                     json_string_value(json_object_get(g, "service")),
                     json_string_value(json_object_get(g, "method")));
        else
            snprintf(where, sizeof where, "mocks[%zu] %s %s", i,
                     json_string_value(json_object_get(json_object_get(def, "http"), "httpMethod")),
                     json_string_value(json_object_get(json_object_get(def, "http"), "route")));
        int rc2 = MK_EINVAL;
        if (id && json_object_get(ids, id)) {
            mk_err_set(&err, MK_EINVAL, "id '%s' repeats an earlier mock of this import", id);
        } else {
            if (!store)
                pthread_mutex_lock(&c->api->write_lock);
            rc2 = mk_api_prepare_mock(c, def, ns, now, &mocks[n], &err);
            if (!store)
                pthread_mutex_unlock(&c->api->write_lock);
        }
        if (rc2 == 0) {
            json_object_set_new(ids, mocks[n]->id, json_true());
            if (!store) { /* what a create would replace */
                mk_mock_t *old = mk_catalog_get(c->api->catalog, mocks[n]->id);
                replaced[n] = old != NULL;
                mk_mock_unref(old);
            }
            n++;
            continue;
        }
        if (!k.partial) {
            if (store)
                pthread_mutex_unlock(&c->api->write_lock);
            json_t *one = json_pack("[{s:s, s:s}]", "item", where, "reason", err.msg);
            status = refuse(c, one, &r);
            json_decref(one);
            json_decref(ids);
            goto out;
        }
        json_array_append_new(r.errors, json_pack("{s:s, s:s}", "item", where, "reason", err.msg));
    }
    json_decref(ids);
    json_t *items = json_array();
    if (store && n > 0 && kind->keep &&
        kind->keep(c->api, ns, mk_api_query(c, "name"), k.text, k.len, &err) != 0) {
        pthread_mutex_unlock(&c->api->write_lock);
        json_decref(items);
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    if (store && n > 0) {
        for (size_t i = 0; i < n; i++)
            mk_mock_ref(mocks[i]);
        if (mk_api_commit_mocks(c->api, mocks, n, replaced, &err) != 0) {
            for (size_t i = 0; i < n; i++)
                mk_mock_unref(mocks[i]);
            pthread_mutex_unlock(&c->api->write_lock);
            json_decref(items);
            status = mk_api_reply_err(c, &err);
            goto out;
        }
    }
    if (store)
        pthread_mutex_unlock(&c->api->write_lock);
    size_t overwritten = 0;
    for (size_t i = 0; i < n; i++) {
        overwritten += replaced[i];
        json_array_append_new(items, mk_mock_to_json(mocks[i]));
    }
    json_t *res;
    if (store) {
        char msg[160];
        snprintf(msg, sizeof msg, "%zu mocks created, %zu overwritten, %zu skipped",
                 n - overwritten, overwritten,
                 json_array_size(r.skipped) + (json_array_size(r.errors)));
        res =
            json_pack("{s:i, s:i, s:i, s:o, s:s}", "created", (int)(n - overwritten), "overwritten",
                      (int)overwritten, "count", (int)n, "mocks", items, "message", msg);
    } else {
        res = json_pack("{s:i, s:i, s:o}", "count", (int)n, "overwritten", (int)overwritten,
                        "mocks", items);
    }
    status = mk_api_reply_json(c->req, store ? 201 : 200, report(res, &r));
out:
    for (size_t i = 0; i < n; i++)
        mk_mock_unref(mocks[i]);
    free(mocks);
    free(replaced);
    json_decref(k.doc);
    json_decref(k.tags);
    json_decref(k.wrapper);
    free(k.owned);
    json_decref(k.zip_files);
    mk_import_result_free(&r);
    return status;
}

static int generate(ctx_t *c)
{
    return run(c, true);
}

static int preview(ctx_t *c)
{
    return run(c, false);
}

const mk_api_endpoint_t mk_api_generator_endpoints[] = {
    {"POST", "/api/v1/generators/openapi", generate, "mocks:write",
     "Create mocks from an OpenAPI 3.0/3.1 spec (JSON or YAML) in one transaction", MK_API_HEAVY},
    {"POST", "/api/v1/generators/openapi/preview", preview, "mocks:read",
     "The mocks an OpenAPI 3.0/3.1 spec (JSON or YAML) would give, storing nothing",
     MK_API_HEAVY | MK_API_NOAUDIT},
    {"POST", "/api/v1/generators/har", generate, "mocks:write",
     "Create mocks from a HAR 1.2 capture in one transaction", MK_API_HEAVY},
    {"POST", "/api/v1/generators/har/preview", preview, "mocks:read",
     "The mocks a HAR 1.2 capture would give, storing nothing", MK_API_HEAVY | MK_API_NOAUDIT},
    {"POST", "/api/v1/generators/graphql", generate, "mocks:write",
     "Create mocks from a GraphQL SDL (POST /graphql) in one transaction", MK_API_HEAVY},
    {"POST", "/api/v1/generators/graphql/preview", preview, "mocks:read",
     "The mocks a GraphQL SDL (POST /graphql) would give, storing nothing",
     MK_API_HEAVY | MK_API_NOAUDIT},
    {"POST", "/api/v1/generators/soap", generate, "mocks:write",
     "Create SOAP mocks from a WSDL 1.1 document (as POST /api/v1/soap/wsdl) in one "
     "transaction",
     MK_API_HEAVY},
    {"POST", "/api/v1/generators/soap/preview", preview, "mocks:read",
     "The SOAP mocks a WSDL 1.1 document would give, storing nothing",
     MK_API_HEAVY | MK_API_NOAUDIT},
    {"POST", "/api/v1/generators/grpc", generate, "mocks:write",
     "Create mocks from a descriptor set (or .proto text), kept with the set, in one transaction",
     MK_API_HEAVY},
    {"POST", "/api/v1/generators/grpc/preview", preview, "mocks:read",
     "The mocks a descriptor set (or .proto text) would give, storing nothing",
     MK_API_HEAVY | MK_API_NOAUDIT},
    {"POST", "/api/v1/import/wiremock", generate, "mocks:write",
     "Create mocks from WireMock mappings in one transaction", MK_API_HEAVY},
    {"POST", "/api/v1/import/wiremock/preview", preview, "mocks:read",
     "The mocks WireMock mappings would give, storing nothing", MK_API_HEAVY | MK_API_NOAUDIT},
    {"POST", "/api/v1/import/postman", generate, "mocks:write",
     "Create mocks from a Postman v2.1 collection's saved examples in one transaction",
     MK_API_HEAVY},
    {"POST", "/api/v1/import/postman/preview", preview, "mocks:read",
     "The mocks a Postman v2.1 collection's saved examples would give, storing nothing",
     MK_API_HEAVY | MK_API_NOAUDIT},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
