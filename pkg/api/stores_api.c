/* The store endpoints as Mockarty's SDKs call them (/api/v1/stores/global,
 * /api/v1/stores/chain/{chainId}) and the faker list (/api/v1/fakers). */
#include "api/api_internal.h"
#include "faker/faker.h"
#include "stores/stores.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METHOD(m) mk_api_seg_is(c->view->method, m)

/* Which store a path names: segments after "stores" are "global" or "chain/{chainId}"; *next is
 * the index of the segment after the store's name. */
static int store_of(ctx_t *c, mk_template_store_t *which, char *scope, size_t size, size_t *next)
{
    scope[0] = '\0';
    if (c->nseg >= 2 && mk_api_seg_is(c->seg[1], "global")) {
        *which = MK_TEMPLATE_GLOBAL;
        *next = 2;
        return 0;
    }
    if (c->nseg >= 3 && mk_api_seg_is(c->seg[1], "chain")) {
        *which = MK_TEMPLATE_CHAIN;
        mk_api_seg_dup(c, 2, scope, size);
        *next = 3;
        return 0;
    }
    return -1;
}

static int stores_get(ctx_t *c, mk_template_store_t which, const char *scope)
{
    char ns[80];
    mk_api_resolve_namespace(c, NULL, ns, sizeof ns);
    mk_err_t err;
    json_t *obj = NULL;
    if (mk_mock_validate_namespace(ns, &err) != 0 ||
        mk_stores_dump(c->api->store, mk_str_of(ns), which, mk_str_of(scope), &obj, &err) != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200, obj);
}

static int stores_set(ctx_t *c, mk_template_store_t which, const char *scope)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    int status;
    char ns[80];
    mk_api_resolve_namespace(c, body, ns, sizeof ns);
    json_t *key = json_object_get(body, "key");
    json_t *value = json_object_get(body, "value");
    mk_err_t err;
    if (!json_is_object(body) || !json_is_string(key) || json_string_length(key) == 0) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "key: required, a non-empty string");
    } else if (memchr(json_string_value(key), '\0', json_string_length(key)) != NULL) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "key: must not contain a NUL character");
    } else if (value == NULL) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "value: required (any JSON value)");
    } else if (mk_mock_validate_namespace(ns, &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        char table[300];
        mk_stores_table(which, mk_str_of(scope), table, sizeof table);
        int rc = text ? mk_store_set(c->api->store, mk_str_of(ns), mk_str_of(table),
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

/* DELETE of one key, or of the whole store when key is NULL. */
static int stores_delete(ctx_t *c, mk_template_store_t which, const char *scope, const char *key)
{
    char ns[80];
    mk_api_resolve_namespace(c, NULL, ns, sizeof ns);
    char table[300];
    mk_stores_table(which, mk_str_of(scope), table, sizeof table);
    mk_err_t err;
    int rc = mk_mock_validate_namespace(ns, &err);
    if (rc == 0)
        rc = key ? mk_store_delete(c->api->store, mk_str_of(ns), mk_str_of(table), mk_str_of(key),
                                   &err)
                 : mk_store_clear(c->api->store, mk_str_of(ns), mk_str_of(table), &err);
    if (rc != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200,
                             key ? json_pack("{s:s, s:s}", "deleted", key, "namespace", ns)
                                 : json_pack("{s:b, s:s}", "cleared", 1, "namespace", ns));
}

int mk_api_route_stores(ctx_t *c)
{
    mk_template_store_t which;
    char scope[256], key[1024];
    size_t next;
    if (store_of(c, &which, scope, sizeof scope, &next) != 0)
        return 0;
    if (c->api->store == NULL)
        return mk_api_reply_fmt(c, MK_EUNAVAIL, "stores are not configured on this node");
    if (c->nseg == next) {
        if (METHOD("GET"))
            return stores_get(c, which, scope);
        if (METHOD("POST") || METHOD("PUT"))
            return stores_set(c, which, scope);
        if (METHOD("DELETE"))
            return stores_delete(c, which, scope, NULL);
        return 405;
    }
    if (c->nseg == next + 1) {
        mk_api_seg_dup(c, next, key, sizeof key);
        if (METHOD("DELETE"))
            return stores_delete(c, which, scope, key);
        return 405;
    }
    return 0;
}

int mk_api_route_fakers(ctx_t *c)
{
    if (c->nseg != 1)
        return 0;
    if (!METHOD("GET"))
        return 405;
    return mk_api_reply_json(c->req, 200, mk_faker_list());
}
