/* What organises mocks, kept as repository documents: tags registered ahead of use ("tag",
 * id "<namespace>/<tag>"), mock folders ("folder", id = folder id; a mock names its folder in
 * folderId) and response templates ("template", id "<namespace>/<name>") that a response uses
 * through payloadTemplatePath. */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NAME 255

/* An RFC 3339 UTC time, as the SDKs' folder model reads createdAt/updatedAt. */
static json_t *rfc3339(int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    gmtime_r(&secs, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

/* A name of 1-255 bytes without NUL, control characters or a ".." segment. */
static bool valid_name(ctx_t *c, const char *field, const char *name)
{
    size_t n = strlen(name);
    const char *why = n == 0 ? "must not be empty" : n > MAX_NAME ? "longer than 255 bytes" : NULL;
    for (size_t i = 0; why == NULL && i < n; i++)
        if ((unsigned char)name[i] < 0x20)
            why = "must not contain control characters";
    if (why == NULL && (strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 ||
                        strstr(name, "/../") || (n >= 3 && strcmp(name + n - 3, "/..") == 0)))
        why = "must not contain a '..' segment";
    if (why)
        mk_api_reply_fmt(c, MK_EINVAL, "%s: %s", field, why);
    return why == NULL;
}

/* --- tags --- */

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct tag_walk {
    const char *ns;
    json_t *set; /* tag -> true */
} tag_walk_t;

static int tag_of_mock(void *ud, mk_mock_t *m)
{
    tag_walk_t *w = ud;
    if (m->closed_at == 0 && strcmp(m->namespace_, w->ns) == 0)
        for (size_t i = 0; i < m->ntags; i++)
            json_object_set_new(w->set, m->tags[i], json_true());
    return 0;
}

static int tags_list(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    tag_walk_t w = {ns, json_object()};
    mk_catalog_each(c->api->catalog, tag_of_mock, &w);
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s/", ns);
    json_t *docs;
    mk_err_t err;
    if (mk_api_docs_list(c->api, "tag", prefix, &docs, &err) != 0) {
        json_decref(w.set);
        return mk_api_reply_err(c, &err);
    }
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *t = json_string_value(json_object_get(d, "tag"));
        if (t)
            json_object_set_new(w.set, t, json_true());
    }
    json_decref(docs);
    /* Sorted (jansson keeps insertion order), as a bare list. */
    size_t n = json_object_size(w.set), k = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    const char *key;
    json_t *v;
    json_object_foreach(w.set, key, v)
    {
        if (names)
            names[k++] = key;
    }
    qsort(names, k, sizeof *names, strcmp_ptr);
    json_t *out = json_array();
    for (size_t j = 0; j < k; j++)
        json_array_append_new(out, json_string(names[j]));
    free(names);
    json_decref(w.set);
    return mk_api_reply_json(c->req, 200, out);
}

static int tags_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *tag = json_object_get(body, "tag");
    if (tag == NULL)
        tag = json_object_get(body, "name");
    const char *ns = mk_api_namespace(c, body);
    int status = 400;
    if (ns == NULL) {
        /* answered */
    } else if (!json_is_string(tag)) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "tag: required, a string");
    } else if (valid_name(c, "tag", json_string_value(tag))) {
        char id[80 + MAX_NAME];
        snprintf(id, sizeof id, "%s/%s", ns, json_string_value(tag));
        json_t *doc = json_pack("{s:O, s:s}", "tag", tag, "namespace", ns);
        mk_err_t err;
        status = mk_api_doc_put(c->api, "tag", id, ns, doc, &err) != 0
                     ? mk_api_reply_err(c, &err)
                     : mk_api_reply_json(c->req, 201, json_incref(doc));
        json_decref(doc);
    }
    json_decref(body);
    return status;
}

/* --- folders --- */

static json_t *folders_all(ctx_t *c)
{
    json_t *items;
    mk_err_t err;
    if (mk_api_docs_list(c->api, "folder", NULL, &items, &err) != 0) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    return items;
}

static const char *folder_namespace(json_t *folder)
{
    const char *ns = json_string_value(json_object_get(folder, "namespace"));
    return ns ? ns : MK_MOCK_DEFAULT_NAMESPACE;
}

static json_t *folder_find(json_t *all, const char *id)
{
    size_t i;
    json_t *f;
    json_array_foreach(all, i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "id")), id) == 0)
            return f;
    }
    return NULL;
}

typedef struct count_walk {
    json_t *counts; /* folder id -> number of live mocks */
} count_walk_t;

static int count_mock(void *ud, mk_mock_t *m)
{
    if (m->closed_at)
        return 0;
    json_t *f = mk_api_mock_field(m, "folderId");
    if (json_is_string(f)) {
        json_t *counts = ((count_walk_t *)ud)->counts;
        json_t *n = json_object_get(counts, json_string_value(f));
        json_object_set_new(counts, json_string_value(f),
                            json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    json_decref(f);
    return 0;
}

static int folders_list(ctx_t *c)
{
    json_t *all = folders_all(c);
    if (all == NULL)
        return 500;
    const char *ns = mk_api_query(c, "namespace");
    count_walk_t w = {json_object()};
    mk_catalog_each(c->api->catalog, count_mock, &w);
    json_t *out = json_array();
    size_t i;
    json_t *f;
    json_array_foreach(all, i, f)
    {
        if (ns && strcmp(ns, json_string_value(json_object_get(f, "namespace"))) != 0)
            continue;
        if (!mk_api_may(c, "mocks:read", folder_namespace(f)))
            continue; /* another namespace's */
        json_t *n = json_object_get(w.counts, json_string_value(json_object_get(f, "id")));
        json_object_set_new(f, "mockCount", json_integer(n ? json_integer_value(n) : 0));
        json_array_append(out, f);
    }
    json_decref(w.counts);
    json_decref(all);
    return mk_api_reply_json(c->req, 200, out);
}

/* True when moving folder id under parent would make a cycle. */
static bool would_cycle(json_t *all, const char *id, const char *parent)
{
    size_t hops = 0;
    while (parent && hops++ <= json_array_size(all)) {
        if (strcmp(parent, id) == 0)
            return true;
        json_t *p = folder_find(all, parent);
        parent = p ? json_string_value(json_object_get(p, "parentId")) : NULL;
    }
    return false;
}

/* Writes folder (fields name, parentId taken from body where present) and answers. */
static int folder_save(ctx_t *c, json_t *all, json_t *folder, json_t *body, int status)
{
    json_t *name = json_object_get(body, "name");
    json_t *parent = json_object_get(body, "parentId");
    const char *id = json_string_value(json_object_get(folder, "id"));
    if (name && !(json_is_string(name) && valid_name(c, "name", json_string_value(name))))
        return json_is_string(name) ? 400 : mk_api_reply_fmt(c, MK_EINVAL, "name: a string");
    if (json_object_get(folder, "name") == NULL && name == NULL)
        return mk_api_reply_fmt(c, MK_EINVAL, "name: required, a string");
    if (parent && !json_is_null(parent)) {
        if (!json_is_string(parent) || folder_find(all, json_string_value(parent)) == NULL)
            return mk_api_reply_fmt(c, MK_EINVAL, "parentId: no folder '%s'",
                                    json_is_string(parent) ? json_string_value(parent) : "?");
        if (would_cycle(all, id, json_string_value(parent)))
            return mk_api_reply_fmt(c, MK_EINVAL,
                                    "parentId: folder '%s' cannot move under itself or its own "
                                    "subfolder",
                                    id);
    }
    if (name)
        json_object_set(folder, "name", name);
    if (parent)
        json_object_set(folder, "parentId", parent);
    json_object_set_new(folder, "updatedAt", rfc3339(mk_mock_now_ms()));
    mk_err_t err;
    if (mk_api_doc_put(c->api, "folder", id,
                       json_string_value(json_object_get(folder, "namespace")), folder, &err) != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, status, json_incref(folder));
}

static int folders_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *ns = mk_api_namespace(c, body);
    int status = 400;
    json_t *all = ns ? folders_all(c) : NULL;
    if (all) {
        char id[132];
        json_t *given = json_object_get(body, "id");
        if (json_is_string(given) && json_string_length(given) > 0 &&
            json_string_length(given) <= 128)
            snprintf(id, sizeof id, "%s", json_string_value(given));
        else
            mk_mock_new_id(id);
        json_t *now = rfc3339(mk_mock_now_ms());
        json_t *folder = json_pack("{s:s, s:s, s:n, s:O}", "id", id, "namespace", ns, "parentId",
                                   "createdAt", now);
        json_decref(now);
        pthread_mutex_lock(&c->api->write_lock);
        status = folder_find(all, id) ? mk_api_reply_fmt(c, MK_ECONFLICT, "folder '%s' exists", id)
                                      : folder_save(c, all, folder, body, 201);
        pthread_mutex_unlock(&c->api->write_lock);
        json_decref(folder);
        json_decref(all);
    }
    json_decref(body);
    return status;
}

/* PUT (fields of the body) and PATCH .../move ({"parentId"}). */
static int folders_update(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *id = mk_api_param(c, "id");
    bool move = strstr(c->ep->path, "/move") != NULL;
    int status = 500;
    pthread_mutex_lock(&c->api->write_lock);
    json_t *all = folders_all(c);
    json_t *folder = all ? folder_find(all, id) : NULL;
    int guard = folder ? mk_api_guard_ns(c, folder_namespace(folder)) : 0;
    if (guard == MK_EFORBIDDEN)
        status = 403;
    else if (all && (folder == NULL || guard != 0))
        status = mk_api_reply_fmt(c, MK_ENOTFOUND, "folder '%s' not found", id);
    else if (folder && move && json_object_get(body, "parentId") == NULL)
        status = mk_api_reply_fmt(c, MK_EINVAL, "parentId: required, a folder id or null");
    else if (folder) {
        json_t *fields = move ? json_pack("{s:O}", "parentId", json_object_get(body, "parentId"))
                              : json_incref(body);
        status = folder_save(c, all, folder, fields, 200);
        json_decref(fields);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(all);
    json_decref(body);
    return status;
}

typedef struct folder_ids {
    const char *folder;
    json_t *ids;
} folder_ids_t;

static int mock_in_folder(void *ud, mk_mock_t *m)
{
    folder_ids_t *w = ud;
    json_t *f = mk_api_mock_field(m, "folderId");
    if (m->closed_at == 0 && json_is_string(f) && strcmp(json_string_value(f), w->folder) == 0)
        json_array_append_new(w->ids, json_string(m->id));
    json_decref(f);
    return 0;
}

static int set_parent_folder(void *ud, json_t *def, mk_err_t *err)
{
    (void)err;
    if (ud == NULL)
        return json_object_del(def, "folderId"), 0;
    return json_object_set_new(def, "folderId", json_string(ud));
}

/* Deleting a folder moves its mocks and subfolders up to its parent. */
static int folders_delete(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    int status = 500;
    pthread_mutex_lock(&c->api->write_lock);
    json_t *all = folders_all(c);
    json_t *folder = all ? folder_find(all, id) : NULL;
    mk_err_t err;
    int guard = folder ? mk_api_guard_ns(c, folder_namespace(folder)) : 0;
    if (guard == MK_EFORBIDDEN) {
        status = 403;
    } else if (all && (folder == NULL || guard != 0)) {
        status = mk_api_reply_fmt(c, MK_ENOTFOUND, "folder '%s' not found", id);
    } else if (folder) {
        const char *parent = json_string_value(json_object_get(folder, "parentId"));
        folder_ids_t w = {id, json_array()};
        mk_catalog_each(c->api->catalog, mock_in_folder, &w);
        json_t *missing = NULL;
        size_t moved = 0;
        int rc =
            mk_api_edit_mocks(c, w.ids, set_parent_folder, (void *)parent, &missing, &moved, &err);
        size_t i;
        json_t *f;
        json_array_foreach(all, i, f)
        {
            const char *p = json_string_value(json_object_get(f, "parentId"));
            if (rc == 0 && p && strcmp(p, id) == 0) {
                json_object_set_new(f, "parentId", parent ? json_string(parent) : json_null());
                rc = mk_api_doc_put(c->api, "folder", json_string_value(json_object_get(f, "id")),
                                    json_string_value(json_object_get(f, "namespace")), f, &err);
            }
        }
        if (rc == 0)
            rc = mk_repo_delete_docs(c->api->repo, "folder", &id, 1, &err);
        status = rc ? mk_api_reply_err(c, &err)
                    : mk_api_reply_json(c->req, 200,
                                        json_pack("{s:s, s:b, s:I}", "id", id, "deleted", 1,
                                                  "mocksMoved", (json_int_t)moved));
        json_decref(missing);
        json_decref(w.ids);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(all);
    return status;
}

/* --- response templates --- */

#define TEMPLATE_ID_MAX (80 + MAX_NAME + 8)

static void template_id(const char *ns, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", ns, name);
}

/* The template the call names (its namespace and :name, checked) and its document id; answers
 * 400 itself and returns false on a bad one. */
static bool template_named(ctx_t *c, const char **ns, const char **name, char id[TEMPLATE_ID_MAX])
{
    *ns = mk_api_namespace(c, NULL);
    *name = mk_api_param(c, "name");
    if (*ns == NULL || !valid_name(c, "name", *name))
        return false;
    template_id(*ns, *name, id, TEMPLATE_ID_MAX);
    return true;
}

static int templates_list(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    char prefix[80];
    template_id(ns, "", prefix, sizeof prefix);
    json_t *docs;
    mk_err_t err;
    if (mk_api_docs_list(c->api, "template", prefix, &docs, &err) != 0)
        return mk_api_reply_err(c, &err);
    const char *search = mk_api_query(c, "search");
    size_t offset = mk_api_query_size(c, "offset", 0, SIZE_MAX);
    size_t limit = mk_api_query_size(c, "limit", MK_API_DEFAULT_LIMIT, MK_API_MAX_LIMIT);
    json_t *names = json_array();
    size_t total = 0, i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        if (name == NULL || (search && strstr(name, search) == NULL))
            continue;
        if (total++ >= offset && json_array_size(names) < limit)
            json_array_append_new(names, json_string(name));
    }
    json_decref(docs);
    return mk_api_reply_json(
        c->req, 200, json_pack("{s:o, s:I}", "templates", names, "total", (json_int_t)total));
}

static int templates_get(ctx_t *c)
{
    const char *ns, *name;
    char id[TEMPLATE_ID_MAX];
    if (!template_named(c, &ns, &name, id))
        return 400;
    json_t *docs;
    mk_err_t err;
    if (mk_api_docs_list(c->api, "template", id, &docs, &err) != 0)
        return mk_api_reply_err(c, &err);
    json_t *d = json_array_get(docs, 0);
    const char *found = json_string_value(json_object_get(d, "name"));
    int status;
    if (found == NULL || strcmp(found, name) != 0) {
        status = mk_api_reply_fmt(c, MK_ENOTFOUND, "template '%s' not found in namespace '%s'",
                                  name, ns);
    } else {
        json_t *content = json_object_get(d, "content");
        json_t *parsed = json_loads(json_string_value(content), JSON_DECODE_ANY, NULL);
        mk_httpd_add_header(c->req, MK_STR_LIT("Content-Type"),
                            parsed ? MK_STR_LIT("application/json")
                                   : MK_STR_LIT("text/plain; charset=utf-8"));
        json_decref(parsed);
        mk_httpd_respond(c->req, 200,
                         (mk_str_t){json_string_value(content), json_string_length(content)});
        status = 200;
    }
    json_decref(docs);
    return status;
}

static int templates_put(ctx_t *c)
{
    const char *ns, *name;
    char id[TEMPLATE_ID_MAX];
    if (!template_named(c, &ns, &name, id))
        return 400;
    json_t *content =
        memchr(c->view->body.base, '\0', c->view->body.len)
            ? NULL
            : json_stringn(c->view->body.base ? c->view->body.base : "", c->view->body.len);
    if (content == NULL)
        return mk_api_reply_fmt(c, MK_EINVAL,
                                "request body: a template must be UTF-8 text without NUL bytes");
    json_t *doc = json_pack("{s:s, s:s, s:o, s:I}", "name", name, "namespace", ns, "content",
                            content, "size", (json_int_t)c->view->body.len);
    mk_err_t err;
    int status = mk_api_doc_put(c->api, "template", id, ns, doc, &err) != 0
                     ? mk_api_reply_err(c, &err)
                     : mk_api_reply_json(c->req, 200,
                                         json_pack("{s:s, s:s, s:I}", "name", name, "namespace", ns,
                                                   "size", (json_int_t)c->view->body.len));
    json_decref(doc);
    return status;
}

static int templates_delete(ctx_t *c)
{
    const char *ns, *name;
    char id[TEMPLATE_ID_MAX];
    if (!template_named(c, &ns, &name, id))
        return 400;
    const char *ids[1] = {id};
    mk_err_t err;
    if (mk_repo_delete_docs(c->api->repo, "template", ids, 1, &err) != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(c->req, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
}

const mk_api_endpoint_t mk_api_library_endpoints[] = {
    {"GET", "/api/v1/tags", tags_list, "mocks:read",
     "Tags of a namespace: registered ones and those on its mocks (a sorted list)", 0},
    {"POST", "/api/v1/tags", tags_create, "mocks:write",
     "Register a tag ({\"tag\", \"namespace\"})", 0},
    {"GET", "/api/v1/mock-folders", folders_list, "mocks:read",
     "Mock folders (namespace filter), each with its mockCount", 0},
    {"POST", "/api/v1/mock-folders", folders_create, "mocks:write",
     "Create a folder ({\"name\", \"namespace\", \"parentId\"})", 0},
    {"PUT", "/api/v1/mock-folders/:id", folders_update, "mocks:write",
     "Rename or re-parent a folder", 0},
    {"DELETE", "/api/v1/mock-folders/:id", folders_delete, "mocks:write",
     "Delete a folder; its mocks and subfolders move up to its parent", 0},
    {"PATCH", "/api/v1/mock-folders/:id/move", folders_update, "mocks:write",
     "Move a folder under another ({\"parentId\": id or null})", 0},
    {"GET", "/api/v1/templates", templates_list, "mocks:read",
     "Response template names of a namespace (search, offset, limit)", 0},
    {"GET", "/api/v1/templates/:name", templates_get, "mocks:read", "A template's content", 0},
    {"POST", "/api/v1/templates/:name", templates_put, "mocks:write",
     "Upload or replace a template (raw body)", 0},
    {"PUT", "/api/v1/templates/:name", templates_put, "mocks:write", "Same as POST", 0},
    {"DELETE", "/api/v1/templates/:name", templates_delete, "mocks:write", "Delete a template", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
