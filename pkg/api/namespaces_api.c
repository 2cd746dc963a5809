/* The namespace endpoints: list, create, and copying mocks from one namespace to another. */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

static int cmp_names(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static int namespaces_list(ctx_t *c)
{
    pthread_mutex_lock(&c->api->write_lock);
    size_t n = mk_strmap_size(c->api->namespaces), k = 0;
    json_t **names = calloc(n ? n : 1, sizeof *names);
    size_t pos = 0;
    mk_str_t key;
    void *v;
    while (names && k < n && mk_strmap_next(c->api->namespaces, &pos, &key, &v))
        names[k++] = json_stringn(key.base, key.len);
    pthread_mutex_unlock(&c->api->write_lock);
    if (names == NULL)
        return mk_api_reply_fmt(c, MK_ENOMEM, "out of memory");
    /* Sorted, so clients and tests see a stable order. */
    qsort(names, k, sizeof *names, cmp_names);
    json_t *list = json_array();
    for (size_t i = 0; i < k; i++) {
        /* Callers see only the namespaces they have a role in. */
        if (mk_api_may(c, "namespaces:read", json_string_value(names[i])))
            json_array_append_new(list, names[i]);
        else
            json_decref(names[i]);
    }
    free(names);
    return mk_api_reply_json(c->req, 200, json_pack("{s:o}", "namespaces", list));
}

static int namespaces_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *name = mk_api_body_namespace(c, body, "name");
    int status = 400;
    mk_err_t err;
    if (name != NULL) {
        pthread_mutex_lock(&c->api->write_lock);
        bool exists = mk_strmap_get(c->api->namespaces, mk_str_of(name));
        if (!exists && mk_repo_put_namespace(c->api->repo, name, mk_mock_now_ms(), &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            mk_strmap_set(c->api->namespaces, mk_str_of(name), (void *)1);
            status = mk_api_reply_json(c->req, exists ? 200 : 201,
                                       json_pack("{s:s, s:b}", "name", name, "created", !exists));
        }
        pthread_mutex_unlock(&c->api->write_lock);
    }
    json_decref(body);
    return status;
}

static int namespaces_copy_mocks(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *source = mk_api_body_namespace(c, body, "sourceNamespace");
    const char *target = source ? mk_api_body_namespace(c, body, "targetNamespace") : NULL;
    json_t *ids = NULL;
    int status = 400;
    if (target && json_object_get(body, "mockIds") &&
        !json_is_null(json_object_get(body, "mockIds")))
        ids = mk_api_body_ids(c, body, "mockIds");
    if (target && (ids || json_is_null(json_object_get(body, "mockIds")) ||
                   json_object_get(body, "mockIds") == NULL))
        status = mk_api_copy_mocks(c, source, ids, target);
    json_decref(body);
    return status;
}

const mk_api_endpoint_t mk_api_namespace_endpoints[] = {
    {"GET", "/api/v1/namespaces", namespaces_list, "namespaces:read", "Namespace names, sorted", 0},
    {"POST", "/api/v1/namespaces", namespaces_create, "namespaces:write",
     "Create a namespace (200 when it exists)", 0},
    {"POST", "/api/v1/namespaces/copy-mocks", namespaces_copy_mocks, "mocks:write",
     "Copy the live mocks of sourceNamespace (or only mockIds) into targetNamespace", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
