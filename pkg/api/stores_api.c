/* The store endpoints as Mockarty's SDKs call them (/api/v1/stores/global,
 * /api/v1/stores/chain/{chainId}) and the faker list (/api/v1/fakers). */
#include "api/api_internal.h"
#include "faker/faker.h"
#include "stores/stores.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The store a row names: /stores/global... or /stores/chain/:chainId...; NULL (after answering
 * 503) when this node has no stores. */
static bool store_of(ctx_t *c, mk_template_store_t *which, const char **scope)
{
    if (c->api->store == NULL) {
        mk_api_reply_fmt(c, MK_EUNAVAIL, "stores are not configured on this node");
        return false;
    }
    bool chain = strstr(c->ep->path, "/chain/") != NULL;
    *which = chain ? MK_TEMPLATE_CHAIN : MK_TEMPLATE_GLOBAL;
    *scope = chain ? mk_api_param(c, "chainId") : "";
    return true;
}

static int stores_get(ctx_t *c)
{
    mk_template_store_t which;
    const char *scope;
    if (!store_of(c, &which, &scope))
        return 503;
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    mk_err_t err;
    json_t *obj = NULL;
    if (mk_stores_dump(c->api->store, mk_str_of(ns), which, mk_str_of(scope), &obj, &err) != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200, obj);
}

static int stores_set(ctx_t *c)
{
    mk_template_store_t which;
    const char *scope;
    if (!store_of(c, &which, &scope))
        return 503;
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    int status;
    const char *ns = mk_api_namespace(c, body);
    if (ns == NULL) {
        json_decref(body);
        return 400;
    }
    json_t *key = json_object_get(body, "key");
    json_t *value = json_object_get(body, "value");
    mk_err_t err;
    if (!json_is_object(body) || !json_is_string(key) || json_string_length(key) == 0) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "key: required, a non-empty string");
    } else if (memchr(json_string_value(key), '\0', json_string_length(key)) != NULL) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "key: must not contain a NUL character");
    } else if (value == NULL) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "value: required (any JSON value)");
    } else {
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        char table[MK_STORE_TABLE_MAX + 64];
        int rc =
            mk_stores_table(which, mk_str_of(scope), table, sizeof table) == 0
                ? mk_err_set(&err, MK_EINVAL, "chainId: longer than %d bytes", MK_STORE_TABLE_MAX)
            : text ? mk_store_set(c->api->store, mk_str_of(ns), mk_str_of(table),
                                  (mk_str_t){json_string_value(key), json_string_length(key)},
                                  mk_str_of(text), 0, &err)
                   : mk_err_set(&err, MK_ENOMEM, "out of memory");
        free(text);
        if (rc != 0)
            status = mk_api_reply_err(c, &err);
        else
            status = mk_api_reply_json(
                c->req, 200,
                json_pack("{s:O, s:O, s:s}", "key", key, "value", value, "namespace", ns));
    }
    json_decref(body);
    return status;
}

/* DELETE of one key (a row with :key), or of the whole store. */
static int stores_delete(ctx_t *c)
{
    mk_template_store_t which;
    const char *scope;
    if (!store_of(c, &which, &scope))
        return 503;
    const char *key = strstr(c->ep->path, ":key") ? mk_api_param(c, "key") : NULL;
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    char table[MK_STORE_TABLE_MAX + 64];
    if (mk_stores_table(which, mk_str_of(scope), table, sizeof table) == 0)
        return mk_api_reply_fmt(c, MK_EINVAL, "chainId: longer than %d bytes", MK_STORE_TABLE_MAX);
    mk_err_t err;
    int rc =
        key ? mk_store_delete(c->api->store, mk_str_of(ns), mk_str_of(table), mk_str_of(key), &err)
            : mk_store_clear(c->api->store, mk_str_of(ns), mk_str_of(table), &err);
    if (rc != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200,
                             key ? json_pack("{s:s, s:s}", "deleted", key, "namespace", ns)
                                 : json_pack("{s:b, s:s}", "cleared", 1, "namespace", ns));
}

static int fakers_list(ctx_t *c)
{
    return mk_api_reply_json(c->req, 200, mk_faker_list());
}

#define STORE_ROWS(prefix, what)                                                                   \
    {"GET", prefix, stores_get, "stores:read", "Every key of the " what, 0},                       \
        {"POST", prefix, stores_set, "stores:write", "Set one key of the " what, 0},               \
        {"PUT", prefix, stores_set, "stores:write", "Same as POST", 0},                            \
        {"DELETE", prefix, stores_delete, "stores:write", "Clear the " what, 0},                   \
    {                                                                                              \
        "DELETE", prefix "/:key", stores_delete, "stores:write", "Delete one key of the " what, 0  \
    }

const mk_api_endpoint_t mk_api_store_endpoints[] = {
    STORE_ROWS("/api/v1/stores/global", "namespace's global store (gS)"),
    STORE_ROWS("/api/v1/stores/chain/:chainId", "chain store (cS) of chainId"),
    {"GET", "/api/v1/fakers", fakers_list, "mocks:read", "The fake-data generators ($.fake.*)", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
