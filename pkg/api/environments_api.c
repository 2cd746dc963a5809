/* API tester environments (Mockarty's /api/v1/api-tester/environments): named sets of variables
 * per namespace, one of them active. A run takes the environment it names (environmentId) or,
 * when it brings none of its own, its namespace's active one. Stored as documents of kind
 * "apitest_environment". */
#include "api/api_internal.h"

#include <string.h>

#define KIND_ENV "apitest_environment"

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Checks body as an environment (name, variables of strings) and builds its document. Answers
 * 400 itself and returns NULL on a bad one. */
static json_t *env_doc(ctx_t *c, json_t *body, const char *id, const json_t *old)
{
    const char *name = jstr(body, "name");
    json_t *vars = json_object_get(body, "variables");
    if (name == NULL || name[0] == '\0') {
        mk_api_reply_fmt(c, MK_EINVAL, "name: required (a non-empty string)");
        return NULL;
    }
    if (vars != NULL && !json_is_object(vars)) {
        mk_api_reply_fmt(c, MK_EINVAL, "variables: must be an object of strings");
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(vars, key, v)
    {
        if (!json_is_string(v)) {
            mk_api_reply_fmt(c, MK_EINVAL, "variables.%s: must be a string", key);
            return NULL;
        }
    }
    const char *ns = old ? jstr(old, "namespace") : mk_api_namespace(c, body);
    if (ns == NULL)
        return NULL;
    int64_t now = mk_mock_now_ms();
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:b, s:I, s:I}", "id", id, "namespace", ns, "name", name, "variables",
        vars ? json_deep_copy(vars) : json_object(), "isActive",
        old ? json_is_true(json_object_get(old, "isActive")) : 0, "createdAt",
        (json_int_t)(old ? json_integer_value(json_object_get(old, "createdAt")) : now),
        "updatedAt", (json_int_t)now);
}

static int env_save(ctx_t *c, json_t *body, const char *id, const json_t *old)
{
    json_t *doc = env_doc(c, body, id, old);
    return doc ? mk_api_doc_store(c, KIND_ENV, "runs:write", doc, old ? 200 : 201) : 400;
}

static int envs_create(ctx_t *c)
{
    return mk_api_doc_create(c, env_save);
}

static int envs_update(ctx_t *c)
{
    return mk_api_doc_update(c, KIND_ENV, "environment", env_save);
}

static int envs_list(ctx_t *c)
{
    json_t *docs = mk_api_docs_visible(c, KIND_ENV, "runs:read");
    return docs ? mk_api_reply_json(c->req, 200, docs) : 500;
}

static int envs_get(ctx_t *c)
{
    return mk_api_doc_show(c, KIND_ENV, "environment");
}

static int envs_delete(ctx_t *c)
{
    return mk_api_doc_delete(c, KIND_ENV, "environment", NULL);
}

/* The active environment of ns (new reference), or NULL. */
static json_t *active_of(mk_api_t *api, const char *ns, mk_err_t *err)
{
    json_t *all, *found = NULL;
    if (mk_api_docs_list(api, KIND_ENV, NULL, &all, err) != 0)
        return NULL;
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        if (found == NULL && jstr(d, "namespace") && strcmp(jstr(d, "namespace"), ns) == 0 &&
            json_is_true(json_object_get(d, "isActive")))
            found = json_incref(d);
    }
    json_decref(all);
    return found;
}

static int envs_active(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    if (!mk_api_may(c, "runs:read", ns))
        return mk_api_reply_fmt(c, MK_EFORBIDDEN, "runs:read needed in namespace '%s'", ns);
    mk_err_t err;
    mk_err_clear(&err);
    json_t *env = active_of(c->api, ns, &err);
    if (env != NULL)
        return mk_api_reply_json(c->req, 200, env);
    if (err.code != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_fmt(c, MK_ENOTFOUND, "no active environment in namespace '%s'", ns);
}

/* Marks the named environment active and every other one of its namespace inactive, under the
 * write lock so two activations do not leave two active. */
static int envs_activate(ctx_t *c)
{
    json_t *target = mk_api_doc_get(c, KIND_ENV, mk_api_param(c, "id"), "environment");
    if (target == NULL)
        return 404;
    const char *ns = jstr(target, "namespace");
    mk_api_note_ns(c, ns);
    json_t *all = NULL;
    mk_err_t err;
    pthread_mutex_lock(&c->api->write_lock);
    int rc = mk_api_docs_list(c->api, KIND_ENV, NULL, &all, &err);
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d)
    {
        if (rc != 0 || jstr(d, "namespace") == NULL || strcmp(jstr(d, "namespace"), ns) != 0)
            continue;
        bool want = strcmp(jstr(d, "id"), jstr(target, "id")) == 0;
        if (json_is_true(json_object_get(d, "isActive")) == want)
            continue;
        json_object_set_new(d, "isActive", json_boolean(want));
        rc = mk_api_doc_put(c->api, KIND_ENV, jstr(d, "id"), ns, d, &err);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(all);
    json_object_set_new(target, "isActive", json_true());
    return rc ? mk_api_reply_err(c, &err) : mk_api_reply_json(c->req, 200, target);
}

json_t *mk_api_run_environment(mk_api_t *api, const char *ns, const char *env_id, mk_err_t *err)
{
    json_t *env = NULL;
    mk_err_clear(err);
    if (env_id == NULL) {
        env = active_of(api, ns, err);
    } else {
        json_t *all;
        if (mk_api_docs_list(api, KIND_ENV, env_id, &all, err) != 0)
            return NULL;
        size_t i;
        json_t *d;
        json_array_foreach(all, i, d)
        {
            if (strcmp(jstr(d, "id"), env_id) == 0 && jstr(d, "namespace") &&
                strcmp(jstr(d, "namespace"), ns) == 0)
                env = json_incref(d);
        }
        json_decref(all);
        if (env == NULL) {
            mk_err_set(err, MK_ENOTFOUND, "environmentId: no environment '%s' in namespace '%s'",
                       env_id, ns);
            return NULL;
        }
    }
    if (env == NULL)
        return NULL;
    /* The run takes Postman's export shape, which keeps the environment's name in reports. */
    json_t *values = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(env, "variables"), key, v)
    {
        json_array_append_new(values,
                              json_pack("{s:s, s:O, s:b}", "key", key, "value", v, "enabled", 1));
    }
    json_t *out = json_pack("{s:s, s:o}", "name", jstr(env, "name"), "values", values);
    json_decref(env);
    return out;
}

#define AT "/api/v1/api-tester/environments"

const mk_api_endpoint_t mk_api_environment_endpoints[] = {
    {"GET", AT, envs_list, "runs:read", "API tester environments (?namespace=)", 0},
    {"POST", AT, envs_create, "runs:write",
     "Create an environment (body: name, variables, namespace)", 0},
    {"GET", AT "/active", envs_active, "runs:read", "The active environment of ?namespace=", 0},
    {"GET", AT "/:id", envs_get, "runs:read", "One environment", 0},
    {"PUT", AT "/:id", envs_update, "runs:write", "Replace an environment's name and variables", 0},
    {"DELETE", AT "/:id", envs_delete, "runs:write", "Delete an environment", 0},
    {"POST", AT "/:id/activate", envs_activate, "runs:write",
     "Make an environment its namespace's active one (runs without their own use it)", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
