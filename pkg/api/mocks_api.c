/* The mock endpoints (/api/v1/mocks...), as Mockarty's SDKs call them: create and replace, list,
 * get, merge patch, soft delete, restore, purge, batches, chains, copies across namespaces,
 * request logs and versions. Every replace or patch keeps the previous definition as a version
 * (repository documents of kind "mock_version", id "<mockId>/<number>"). */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION_KIND "mock_version"

/* --- storing --- */

static int store_rows(mk_api_t *api, mk_mock_t **mocks, size_t n, mk_err_t *err)
{
    mk_repo_mock_t *rows = calloc(n ? n : 1, sizeof *rows);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    int rc = 0;
    if (rows == NULL || texts == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        mk_mock_t *m = mocks[i];
        json_t *def = mk_mock_definition(m);
        texts[i] = def ? json_dumps(def, JSON_COMPACT) : NULL;
        json_decref(def);
        if (texts[i] == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
        rows[i] = (mk_repo_mock_t){
            .id = m->id,
            .namespace_ = m->namespace_,
            .chain_id = m->chain_id,
            .json = texts[i],
            .created_at = m->created_at,
            .updated_at = m->updated_at,
            .closed_at = m->closed_at,
            .uses = atomic_load(&m->uses),
            .last_use = atomic_load(&m->last_use),
        };
    }
    rc = mk_repo_put_mocks(api->repo, rows, n, err);
    mk_api_note_write(api, rc, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (mk_strmap_get(api->namespaces, mk_str_of(mocks[i]->namespace_)) == NULL) {
            mk_repo_put_namespace(api->repo, mocks[i]->namespace_, mocks[i]->created_at, NULL);
            mk_strmap_set(api->namespaces, mk_str_of(mocks[i]->namespace_), (void *)1);
        }
out:
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(rows);
    return rc;
}

static int last_version(void *ud, const mk_repo_doc_t *doc)
{
    const char *slash = strrchr(doc->id, '/');
    long long v = slash ? strtoll(slash + 1, NULL, 10) : 0;
    if (v > *(long long *)ud)
        *(long long *)ud = v;
    return 0;
}

static void version_prefix(const char *id, char *buf, size_t size)
{
    snprintf(buf, size, "%s/", id);
}

/* Keeps the current definition of mock id (when there is one) as its next version. */
static int keep_version(mk_api_t *api, const char *id, mk_err_t *err)
{
    mk_mock_t *old = mk_catalog_get(api->catalog, id);
    if (old == NULL)
        return 0;
    size_t plen = strlen(id) + 2;
    char *prefix = malloc(plen), *vid = malloc(plen + 24);
    long long last = 0;
    int rc = prefix && vid ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc == 0) {
        version_prefix(id, prefix, plen);
        rc = mk_repo_list_docs(api->repo, VERSION_KIND, prefix, last_version, &last, err);
    }
    if (rc == 0) {
        json_t *def = mk_mock_definition(old);
        json_object_set_new(def, "version", json_integer(last + 1));
        json_object_set_new(def, "versionCreatedAt", json_integer(mk_mock_now_ms()));
        snprintf(vid, plen + 24, "%s%010lld", prefix, last + 1);
        rc = mk_api_doc_put(api, VERSION_KIND, vid, old->namespace_, def, err);
        json_decref(def);
    }
    free(prefix);
    free(vid);
    mk_mock_unref(old);
    return rc;
}

static int commit(mk_api_t *api, mk_mock_t **mocks, size_t n, bool *replaced, bool versions,
                  mk_err_t *err)
{
    int rc = 0;
    for (size_t i = 0; versions && rc == 0 && i < n; i++)
        rc = keep_version(api, mocks[i]->id, err);
    if (rc == 0)
        rc = store_rows(api, mocks, n, err);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            mk_mock_unref(mocks[i]);
        return rc;
    }
    /* Held across the put, so the namespace's webhooks can be told what was stored. */
    for (size_t i = 0; i < n; i++)
        mk_mock_ref(mocks[i]);
    rc = mk_catalog_put(api->catalog, mocks, n, replaced, err);
    mk_api_mock_events(api, mocks, n, rc == 0);
    return rc;
}

int mk_api_commit_mocks(mk_api_t *api, mk_mock_t **mocks, size_t n, bool *replaced, mk_err_t *err)
{
    return commit(api, mocks, n, replaced, true, err);
}

/* response.payloadTemplatePath (and each oneOf response's): the payload comes from the
 * namespace's response template of that name, read when the mock is saved. */
static int resolve_template(mk_api_t *api, json_t *resp, const char *ns, const char *field,
                            mk_err_t *err)
{
    json_t *path = json_object_get(resp, "payloadTemplatePath");
    if (!json_is_string(path) || json_object_get(resp, "payload") != NULL)
        return 0;
    if (json_string_length(path) == 0 || json_string_length(path) > 255)
        return mk_err_set(err, MK_EINVAL, "%s.payloadTemplatePath: must be 1-255 bytes", field);
    char id[MK_STORE_NS_MAX + 260];
    snprintf(id, sizeof id, "%s/%s", ns, json_string_value(path));
    json_t *found;
    int rc = mk_api_docs_list(api, "template", id, &found, err);
    if (rc != 0)
        return rc;
    /* The prefix query may return longer names too: the first in id order is exact if any is. */
    json_t *doc = json_array_get(found, 0);
    json_t *name = json_object_get(doc, "name");
    if (!json_is_string(name) || strcmp(json_string_value(name), json_string_value(path)) != 0) {
        json_decref(found);
        return mk_err_set(err, MK_EINVAL,
                          "%s.payloadTemplatePath: no template '%s' in namespace '%s'", field,
                          json_string_value(path), ns);
    }
    const char *content = json_string_value(json_object_get(doc, "content"));
    json_t *payload = json_loads(content ? content : "", JSON_DECODE_ANY, NULL);
    json_object_set_new(resp, "payload", payload ? payload : json_string(content ? content : ""));
    json_decref(found);
    return 0;
}

int mk_api_prepare_mock(ctx_t *c, json_t *def, const char *ns, int64_t now, mk_mock_t **out,
                        mk_err_t *err)
{
    if (!json_is_object(def))
        return mk_err_set(err, MK_EINVAL, "mock: must be a JSON object");
    json_t *copy = json_deep_copy(def);
    if (ns)
        json_object_set_new(copy, "namespace", json_string(ns));
    mk_mock_parse_opts_t opts = {.now_ms = now};
    json_t *id = json_object_get(copy, "id");
    if (json_is_string(id)) {
        mk_mock_t *old = mk_catalog_get(c->api->catalog, json_string_value(id));
        if (old) {
            opts.created_at = old->created_at;
            mk_mock_unref(old);
        }
    }
    const char *mns = json_string_value(json_object_get(copy, "namespace"));
    int rc = 0;
    json_t *resp = json_object_get(copy, "response");
    if (json_is_object(resp))
        rc = resolve_template(c->api, resp, mns ? mns : MK_MOCK_DEFAULT_NAMESPACE, "response", err);
    json_t *oneof = json_object_get(json_object_get(copy, "oneOf"), "responses");
    size_t i;
    json_t *r;
    json_array_foreach(oneof, i, r)
    {
        char field[64];
        snprintf(field, sizeof field, "oneOf.responses[%zu]", i);
        if (rc == 0 && json_is_object(r))
            rc = resolve_template(c->api, r, mns ? mns : MK_MOCK_DEFAULT_NAMESPACE, field, err);
    }
    if (rc == 0)
        rc = mk_mock_parse(copy, &opts, out, err);
    json_decref(copy);
    return rc;
}

mk_mock_t *mk_api_find_mock(ctx_t *c, const char *id, bool allow_closed)
{
    mk_mock_t *m = mk_catalog_get(c->api->catalog, id);
    /* Another namespace's mock is "not found" unless the caller has a role there. */
    int guard = m ? mk_api_guard_ns(c, m->namespace_) : 0;
    if (m && guard == 0 && (allow_closed || m->closed_at == 0))
        return m;
    mk_mock_unref(m);
    if (guard != MK_EFORBIDDEN)
        mk_api_reply_fmt(c, MK_ENOTFOUND, "mock '%s' not found", id);
    return NULL;
}

json_t *mk_api_mock_field(const mk_mock_t *m, const char *field)
{
    json_t *def = mk_mock_definition(m);
    json_t *v = json_incref(json_object_get(def, field));
    json_decref(def);
    return v;
}

/* The answer to a create: the mock, and warnings when the admin's API takes its route. */
static json_t *saved(ctx_t *c, mk_mock_t *m, bool replaced)
{
    json_t *out = json_pack("{s:b, s:o}", "overwritten", replaced, "mock", mk_mock_to_json(m));
    if (strcmp(m->namespace_, MK_MOCK_DEFAULT_NAMESPACE) == 0 &&
        mk_api_shadowed(c->api, m->method, m->route)) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "route %s %s is taken by an admin API endpoint on the admin node, which answers "
                 "it there; resolvers serve this mock (see GET /api/v1/endpoints)",
                 m->method, m->route);
        json_object_set_new(out, "warnings", json_pack("[s]", msg));
    }
    return out;
}

/* --- create, list, get, patch --- */

static int mocks_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    const char *ns = mk_api_namespace(c, body);
    if (ns == NULL) {
        json_decref(body);
        return 400;
    }
    mk_err_t err;
    mk_mock_t *m;
    int status;
    pthread_mutex_lock(&c->api->write_lock);
    if (mk_api_prepare_mock(c, body, ns, mk_mock_now_ms(), &m, &err) != 0) {
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    mk_mock_ref(m);
    bool replaced = false;
    if (mk_api_commit_mocks(c->api, &m, 1, &replaced, &err) != 0) {
        mk_mock_unref(m);
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    status = mk_api_reply_json(c->req, replaced ? 200 : 201, saved(c, m, replaced));
    mk_mock_unref(m);
out:
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(body);
    return status;
}

static int mocks_batch_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *list = json_is_array(body) ? body : json_object_get(body, "mocks");
    if (!json_is_array(list)) {
        json_decref(body);
        return mk_api_reply_fmt(c, MK_EINVAL,
                                "request body: expected an array of mocks or {\"mocks\": [...]}");
    }
    const char *qns = NULL;
    if (mk_api_query(c, "namespace")) {
        qns = mk_api_namespace(c, NULL); /* checked as a single create's is */
        if (qns == NULL) {
            json_decref(body);
            return 403;
        }
    }
    size_t n = json_array_size(list);
    mk_mock_t **mocks = calloc(n ? n : 1, sizeof *mocks);
    bool *replaced = calloc(n ? n : 1, sizeof *replaced);
    mk_err_t err;
    int status;
    int64_t now = mk_mock_now_ms();
    pthread_mutex_lock(&c->api->write_lock);
    for (size_t i = 0; i < n; i++) {
        json_t *def = json_array_get(list, i);
        const char *ns = qns ? qns : mk_api_namespace(c, json_is_object(def) ? def : NULL);
        if (ns == NULL) {
            status = 400;
            goto fail;
        }
        if (mk_api_prepare_mock(c, def, ns, now, &mocks[i], &err) != 0) {
            /* "mocks[3].http.route: ..." names the field the way a single create does. */
            status = mk_api_reply_fmt(c, err.code, "mocks[%zu].%s", i, err.msg);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(mocks[j]->id, mocks[i]->id) == 0) {
                status = mk_api_reply_fmt(c, MK_EINVAL, "mocks[%zu].id: '%s' repeats mocks[%zu]", i,
                                          mocks[i]->id, j);
                goto fail;
            }
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        mk_mock_ref(mocks[i]);
    if (mk_api_commit_mocks(c->api, mocks, n, replaced, &err) != 0) {
        for (size_t i = 0; i < n; i++)
            mk_mock_unref(mocks[i]);
        json_decref(items);
        status = mk_api_reply_err(c, &err);
        goto done;
    }
    size_t overwritten = 0;
    for (size_t i = 0; i < n; i++) {
        overwritten += replaced[i];
        json_array_append_new(items, mk_mock_to_json(mocks[i]));
        mk_mock_unref(mocks[i]);
    }
    status = mk_api_reply_json(c->req, 201,
                               json_pack("{s:o, s:i, s:i, s:i}", "items", items, "total", (int)n,
                                         "created", (int)(n - overwritten), "overwritten",
                                         (int)overwritten));
    goto done;
fail:
    for (size_t i = 0; i < n; i++)
        mk_mock_unref(mocks[i]);
done:
    pthread_mutex_unlock(&c->api->write_lock);
    free(mocks);
    free(replaced);
    json_decref(body);
    return status;
}

typedef struct list_state {
    const char *ns;
    const char *chain;
    const char *folder;
    char **tags;
    size_t ntags;
    const char *search;
    const char *protocol; /* "grpc", or "http" for every other mock */
    bool deleted;
    json_t *items; /* the matches as JSON; when NULL, new references in found instead */
    mk_mock_t **found;
    size_t nfound, cap;
    bool oom;
    ctx_t *caller; /* when set: only mocks of namespaces where the caller may read */
} list_state_t;

static bool mock_has_tag(const mk_mock_t *m, const char *tag)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i], tag) == 0)
            return true;
    return false;
}

static bool in_folder(const mk_mock_t *m, const char *folder)
{
    json_t *f = mk_api_mock_field(m, "folderId");
    bool in = json_is_string(f) && strcmp(json_string_value(f), folder) == 0;
    json_decref(f);
    return in;
}

static int list_one(void *ud, mk_mock_t *m)
{
    list_state_t *st = ud;
    if ((m->closed_at != 0) != st->deleted)
        return 0;
    if (st->caller && !mk_api_may(st->caller, "mocks:read", m->namespace_))
        return 0;
    if (st->ns && strcmp(st->ns, m->namespace_) != 0)
        return 0;
    if (st->chain && (m->chain_id == NULL || strcmp(st->chain, m->chain_id) != 0))
        return 0;
    for (size_t i = 0; i < st->ntags; i++)
        if (!mock_has_tag(m, st->tags[i]))
            return 0;
    if (st->search) {
        bool hit = strstr(m->id, st->search) || strstr(m->route, st->search);
        for (size_t i = 0; !hit && i < m->ntags; i++)
            hit = strstr(m->tags[i], st->search) != NULL;
        if (!hit)
            return 0;
    }
    if (st->folder && !in_folder(m, st->folder))
        return 0;
    if (st->protocol &&
        strcmp(st->protocol, m->grpc_kind != MK_MOCK_GRPC_NONE ? "grpc" : "http") != 0)
        return 0;
    if (st->items != NULL) {
        json_array_append_new(st->items, mk_mock_to_json(m));
        return 0;
    }
    if (st->nfound == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        mk_mock_t **grown = realloc(st->found, cap * sizeof *grown);
        if (grown == NULL) {
            st->oom = true;
            return 1;
        }
        st->found = grown;
        st->cap = cap;
    }
    st->found[st->nfound++] = mk_mock_ref(m);
    return 0;
}

/* One page of the found mocks as JSON, newest first (the catalog iterates oldest first); drops
 * every reference. Only the page is rendered: a page of 10,000 matches costs one page of JSON. */
static json_t *page(list_state_t *st, size_t offset, size_t limit)
{
    json_t *out = json_array();
    for (size_t i = offset; i < st->nfound && json_array_size(out) < limit; i++)
        json_array_append_new(out, mk_mock_to_json(st->found[st->nfound - 1 - i]));
    for (size_t i = 0; i < st->nfound; i++)
        mk_mock_unref(st->found[i]);
    free(st->found);
    return out;
}

static int mocks_list(ctx_t *c)
{
    const char *ns = mk_api_namespace(c, NULL);
    if (ns == NULL)
        return 400;
    list_state_t st = {.ns = ns};
    char *tagv[32];
    const char *tags = mk_api_query(c, "tags");
    if (tags) {
        char *copy = mk_httpd_req_alloc(c->req, strlen(tags) + 1);
        strcpy(copy, tags);
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && st.ntags < 32;
             t = strtok_r(NULL, ",", &save))
            if (*t)
                tagv[st.ntags++] = t;
        st.tags = tagv;
    }
    st.search = mk_api_query(c, "search");
    st.folder = mk_api_query(c, "folderId");
    st.protocol = mk_api_query(c, "protocol");
    const char *deleted = mk_api_query(c, "deleted");
    st.deleted = deleted && strcmp(deleted, "true") == 0;
    mk_catalog_each(c->api->catalog, list_one, &st);
    size_t offset = mk_api_query_size(c, "offset", 0, SIZE_MAX);
    size_t limit = mk_api_query_size(c, "limit", MK_API_DEFAULT_LIMIT, MK_API_MAX_LIMIT);
    size_t total = st.nfound;
    json_t *items = page(&st, offset, limit);
    if (st.oom) {
        json_decref(items);
        return mk_api_reply_error(c->req, MK_ENOMEM, "out of memory listing mocks");
    }
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
                                       (json_int_t)total, "offset", (json_int_t)offset, "limit",
                                       (json_int_t)limit));
}

static int mocks_get(ctx_t *c)
{
    mk_mock_t *m = mk_api_find_mock(c, mk_api_param(c, "id"), false);
    if (m == NULL)
        return 404;
    int status = mk_api_reply_json(c->req, 200, mk_mock_to_json(m));
    mk_mock_unref(m);
    return status;
}

static void merge_patch(json_t *target, json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        json_t *cur = json_object_get(target, k);
        if (json_is_null(v))
            json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(cur))
            merge_patch(cur, v);
        else
            json_object_set(target, k, v);
    }
}

/* Recompiles def as the new form of m and commits it (m's previous form becomes a version). */
static int replace_def(ctx_t *c, const mk_mock_t *m, json_t *def, mk_mock_t **out, mk_err_t *err)
{
    mk_mock_parse_opts_t opts = {.now_ms = mk_mock_now_ms(), .created_at = m->created_at};
    mk_mock_t *next;
    int rc = mk_mock_parse(def, &opts, &next, err);
    if (rc != 0)
        return rc;
    mk_mock_ref(next);
    rc = mk_api_commit_mocks(c->api, &next, 1, NULL, err);
    if (rc != 0) {
        mk_mock_unref(next);
        return rc;
    }
    if (out)
        *out = next;
    else
        mk_mock_unref(next);
    return 0;
}

static int mocks_patch(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    json_t *patch;
    if (mk_api_parse_body(c, &patch))
        return 400;
    int status;
    pthread_mutex_lock(&c->api->write_lock);
    mk_mock_t *m = mk_api_find_mock(c, id, false);
    if (m == NULL) {
        status = 404;
        goto out;
    }
    json_t *pid = json_object_get(patch, "id");
    if (!json_is_object(patch)) {
        status =
            mk_api_reply_fmt(c, MK_EINVAL, "request body: a merge patch must be a JSON object");
    } else if (pid && !(json_is_string(pid) && strcmp(json_string_value(pid), id) == 0)) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "id: cannot be changed by PATCH");
    } else {
        json_t *def = mk_mock_definition(m);
        merge_patch(def, patch);
        mk_err_t err;
        mk_mock_t *next;
        if (replace_def(c, m, def, &next, &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            status = mk_api_reply_json(c->req, 200, mk_mock_to_json(next));
            mk_mock_unref(next);
        }
        json_decref(def);
    }
    mk_mock_unref(m);
out:
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(patch);
    return status;
}

/* --- delete, restore, purge --- */

/* Rebuilds m from its stored definition with a different closedAt (soft delete, restore). */
static int with_closed(mk_mock_t *m, int64_t closed_at, mk_mock_t **out, mk_err_t *err)
{
    json_t *def = mk_mock_definition(m);
    if (closed_at)
        json_object_set_new(def, "closedAt", json_integer(closed_at));
    else
        json_object_del(def, "closedAt");
    int rc = mk_mock_load(def, atomic_load(&m->uses), atomic_load(&m->last_use), out, err);
    json_decref(def);
    return rc;
}

/* Soft-deletes (closed_at != 0) or restores the mocks in list. */
static int set_closed(ctx_t *c, mk_mock_t **list, size_t n, int64_t closed_at, mk_err_t *err)
{
    mk_mock_t **next = calloc(n ? n : 1, sizeof *next);
    int rc = 0;
    if (next == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = with_closed(list[i], closed_at, &next[i], err);
    if (rc == 0)
        rc = commit(c->api, next, n, NULL, false, err);
    else
        for (size_t i = 0; i < n; i++)
            mk_mock_unref(next[i]);
    free(next);
    return rc;
}

/* The write endpoints on one mock named by the path: the lookup (404 when absent) and the write
 * lock are here once; act answers. */
typedef int (*mock_action_fn)(ctx_t *c, mk_mock_t *m);

static int on_mock(ctx_t *c, bool allow_closed, mock_action_fn act)
{
    pthread_mutex_lock(&c->api->write_lock);
    mk_mock_t *m = mk_api_find_mock(c, mk_api_param(c, "id"), allow_closed);
    int status = m ? act(c, m) : 404;
    mk_mock_unref(m);
    pthread_mutex_unlock(&c->api->write_lock);
    return status;
}

static int delete_one(ctx_t *c, mk_mock_t *m)
{
    mk_err_t err;
    int64_t now = mk_mock_now_ms();
    if (set_closed(c, &m, 1, now, &err) != 0)
        return mk_api_reply_err(c, &err);
    return mk_api_reply_json(
        c->req, 200,
        json_pack("{s:s, s:b, s:I}", "id", m->id, "deleted", 1, "closedAt", (json_int_t)now));
}

static int mocks_delete(ctx_t *c)
{
    return on_mock(c, false, delete_one);
}
static int restore_one(ctx_t *c, mk_mock_t *m)
{
    mk_err_t err;
    if (m->closed_at && set_closed(c, &m, 1, 0, &err) != 0)
        return mk_api_reply_err(c, &err);
    mk_mock_t *now = mk_catalog_get(c->api->catalog, m->id);
    int status = mk_api_reply_json(c->req, 200, now ? mk_mock_to_json(now) : json_object());
    mk_mock_unref(now);
    return status;
}

static int mocks_restore(ctx_t *c)
{
    return on_mock(c, true, restore_one);
}
static int drop_version(void *ud, const mk_repo_doc_t *doc)
{
    return json_array_append_new(ud, json_string(doc->id)) ? MK_ENOMEM : 0;
}

/* Removes the versions of mock id (purge). */
static int purge_versions(mk_api_t *api, const char *id, mk_err_t *err)
{
    char prefix[300];
    version_prefix(id, prefix, sizeof prefix);
    json_t *ids = json_array();
    int rc = mk_repo_list_docs(api->repo, VERSION_KIND, prefix, drop_version, ids, err);
    size_t n = json_array_size(ids);
    const char **list = calloc(n ? n : 1, sizeof *list);
    for (size_t i = 0; list && i < n; i++)
        list[i] = json_string_value(json_array_get(ids, i));
    if (rc == 0 && n)
        rc = list ? mk_repo_delete_docs(api->repo, VERSION_KIND, list, n, err)
                  : mk_err_set(err, MK_ENOMEM, "out of memory");
    free(list);
    json_decref(ids);
    return rc;
}

static int purge_one(ctx_t *c, mk_mock_t *m)
{
    mk_err_t err;
    const char *ids[1] = {m->id}; /* m is our reference: its id outlives the removal */
    if (mk_repo_delete_mocks(c->api->repo, ids, 1, &err) != 0 ||
        purge_versions(c->api, m->id, &err) != 0)
        return mk_api_reply_err(c, &err);
    mk_catalog_remove(c->api->catalog, ids, 1);
    return mk_api_reply_json(c->req, 200, json_pack("{s:s, s:b}", "id", m->id, "purged", 1));
}

static int mocks_purge(ctx_t *c)
{
    return on_mock(c, true, purge_one);
}
/* --- batches --- */

typedef struct collect {
    const char *chain;
    const char *ns;
    json_t *ids; /* when set: only these ids */
    bool closed; /* deleted mocks instead of live ones */
    mk_mock_t **list;
    size_t n, cap;
    ctx_t *caller; /* when set: only mocks of namespaces where the caller may do perm */
    const char *perm;
} collect_t;

static bool listed_id(json_t *ids, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (strcmp(json_string_value(v), id) == 0)
            return true;
    }
    return false;
}

static int collect_one(void *ud, mk_mock_t *m)
{
    collect_t *st = ud;
    if ((m->closed_at != 0) != st->closed)
        return 0;
    if (st->chain && (m->chain_id == NULL || strcmp(m->chain_id, st->chain) != 0))
        return 0;
    if (st->ns && strcmp(m->namespace_, st->ns) != 0)
        return 0;
    if (st->ids && !listed_id(st->ids, m->id))
        return 0;
    if (st->caller && !mk_api_may(st->caller, st->perm, m->namespace_))
        return 0;
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        mk_mock_t **grown = realloc(st->list, st->cap * sizeof *grown);
        if (grown == NULL)
            return 1;
        st->list = grown;
    }
    st->list[st->n++] = mk_mock_ref(m);
    return 0;
}

static void collect_free(collect_t *st)
{
    for (size_t i = 0; i < st->n; i++)
        mk_mock_unref(st->list[i]);
    free(st->list);
}

/* The ids of ids that st did not collect. */
static json_t *not_collected(const collect_t *st, json_t *ids)
{
    json_t *missing = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        bool found = false;
        for (size_t k = 0; k < st->n && !found; k++)
            found = strcmp(st->list[k]->id, json_string_value(v)) == 0;
        if (!found)
            json_array_append(missing, v);
    }
    return missing;
}

/* Soft-deletes (or, with closed_at 0, restores) what st collected and answers. */
static int close_collected(ctx_t *c, collect_t *st, int64_t closed_at, const char *count_key,
                           json_t *extra)
{
    mk_err_t err;
    if (st->n && set_closed(c, st->list, st->n, closed_at, &err) != 0) {
        json_decref(extra);
        return mk_api_reply_err(c, &err);
    }
    json_object_set_new(extra, count_key, json_integer((json_int_t)st->n));
    return mk_api_reply_json(c->req, 200, extra);
}

static int batch_close(ctx_t *c, bool restore)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *ids = mk_api_body_ids(c, body, "ids");
    if (ids == NULL) {
        json_decref(body);
        return 400;
    }
    pthread_mutex_lock(&c->api->write_lock);
    collect_t st = {.ids = ids, .closed = restore, .caller = c, .perm = "mocks:write"};
    mk_catalog_each(c->api->catalog, collect_one, &st);
    int status =
        close_collected(c, &st, restore ? 0 : mk_mock_now_ms(), restore ? "restored" : "deleted",
                        json_pack("{s:o}", "notFound", not_collected(&st, ids)));
    collect_free(&st);
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(body);
    return status;
}

static int mocks_batch_delete(ctx_t *c)
{
    return batch_close(c, false);
}

static int mocks_batch_restore(ctx_t *c)
{
    return batch_close(c, true);
}

int mk_api_edit_mocks(ctx_t *c, json_t *ids, mk_api_edit_fn edit, void *ud, json_t **missing,
                      size_t *edited, mk_err_t *err)
{
    collect_t st = {.ids = ids, .caller = c, .perm = "mocks:write"};
    mk_catalog_each(c->api->catalog, collect_one, &st);
    *missing = not_collected(&st, ids);
    *edited = 0;
    mk_mock_t **next = calloc(st.n ? st.n : 1, sizeof *next);
    int rc = next ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    size_t made = 0;
    int64_t now = mk_mock_now_ms();
    for (size_t i = 0; rc == 0 && i < st.n; i++) {
        json_t *def = mk_mock_definition(st.list[i]);
        rc = edit(ud, def, err);
        mk_mock_parse_opts_t opts = {.now_ms = now, .created_at = st.list[i]->created_at};
        if (rc == 0)
            rc = mk_mock_parse(def, &opts, &next[made], err);
        if (rc == 0)
            made++;
        else
            mk_err_prefix(err, "mock '%s'", st.list[i]->id);
        json_decref(def);
    }
    if (rc == 0 && made)
        rc = mk_api_commit_mocks(c->api, next, made, NULL, err);
    else
        for (size_t i = 0; i < made; i++)
            mk_mock_unref(next[i]);
    if (rc == 0)
        *edited = made;
    free(next);
    collect_free(&st);
    return rc;
}

/* A batch edit endpoint: body {"ids": [...], <field>: ...}; edit applies the field. */
static int batch_edit(ctx_t *c, const char *field, mk_api_edit_fn edit,
                      bool (*valid)(const json_t *v))
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *ids = mk_api_body_ids(c, body, "ids");
    json_t *value = json_object_get(body, field);
    int status;
    if (ids == NULL) {
        status = 400;
    } else if (value == NULL || !valid(value)) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "%s: required, %s", field,
                                  strcmp(field, "tags") == 0 ? "an array of strings"
                                                             : "a folder id string or null");
    } else {
        pthread_mutex_lock(&c->api->write_lock);
        json_t *missing;
        size_t edited;
        mk_err_t err;
        if (mk_api_edit_mocks(c, ids, edit, value, &missing, &edited, &err) != 0)
            status = mk_api_reply_err(c, &err);
        else
            status = mk_api_reply_json(
                c->req, 200,
                json_pack("{s:I, s:O}", "updated", (json_int_t)edited, "notFound", missing));
        json_decref(missing);
        pthread_mutex_unlock(&c->api->write_lock);
    }
    json_decref(body);
    return status;
}

static bool valid_tags(const json_t *v)
{
    size_t i;
    json_t *t;
    if (!json_is_array(v))
        return false;
    json_array_foreach(v, i, t)
    {
        if (!json_is_string(t))
            return false;
    }
    return true;
}

static int set_tags(void *ud, json_t *def, mk_err_t *err)
{
    (void)err;
    return json_object_set(def, "tags", ud);
}

static int mocks_batch_tags(ctx_t *c)
{
    return batch_edit(c, "tags", set_tags, valid_tags);
}

static bool valid_folder(const json_t *v)
{
    return json_is_string(v) || json_is_null(v);
}

static int set_folder(void *ud, json_t *def, mk_err_t *err)
{
    (void)err;
    json_t *folder = ud;
    if (json_is_null(folder))
        return json_object_del(def, "folderId"), 0;
    return json_object_set(def, "folderId", folder);
}

static int mocks_batch_move(ctx_t *c)
{
    return batch_edit(c, "folderId", set_folder, valid_folder);
}

/* --- copies across namespaces --- */

/* The server-set fields a copy must not inherit. */
static const char *const copy_drop[] = {"id",       "createdAt", "updatedAt", "expireAt",
                                        "closedAt", "lastUse",   "useCount",  "useCounter"};

int mk_api_copy_mocks(ctx_t *c, const char *source_ns, json_t *ids, const char *target)
{
    if (!mk_api_may(c, "mocks:write", target) ||
        (source_ns && !mk_api_may(c, "mocks:read", source_ns)))
        return mk_api_reply_fmt(c, MK_EFORBIDDEN,
                                "copying needs mocks:read in the source namespace and "
                                "mocks:write in '%s'",
                                target);
    mk_api_note_ns(c, target);
    pthread_mutex_lock(&c->api->write_lock);
    collect_t st = {.ns = source_ns, .ids = ids, .caller = c, .perm = "mocks:read"};
    mk_catalog_each(c->api->catalog, collect_one, &st);
    mk_mock_t **copies = calloc(st.n ? st.n : 1, sizeof *copies);
    mk_err_t err;
    int rc = copies ? 0 : mk_err_set(&err, MK_ENOMEM, "out of memory");
    size_t made = 0;
    int64_t now = mk_mock_now_ms();
    json_t *created = json_array();
    for (size_t i = 0; rc == 0 && i < st.n; i++) {
        json_t *def = mk_mock_definition(st.list[i]);
        for (size_t k = 0; k < sizeof copy_drop / sizeof *copy_drop; k++)
            json_object_del(def, copy_drop[k]);
        char id[40];
        mk_mock_new_id(id);
        json_object_set_new(def, "id", json_string(id));
        rc = mk_api_prepare_mock(c, def, target, now, &copies[made], &err);
        if (rc == 0)
            json_array_append_new(created, json_pack("{s:s, s:s}", "sourceId", st.list[i]->id, "id",
                                                     copies[made++]->id));
        json_decref(def);
    }
    if (rc == 0 && made)
        rc = mk_api_commit_mocks(c->api, copies, made, NULL, &err);
    else
        for (size_t i = 0; i < made; i++)
            mk_mock_unref(copies[i]);
    int status;
    if (rc != 0) {
        json_decref(created);
        status = mk_api_reply_err(c, &err);
    } else {
        json_t *out = json_pack("{s:I, s:s, s:o}", "copied", (json_int_t)made, "targetNamespace",
                                target, "mocks", created);
        if (ids)
            json_object_set_new(out, "notFound", not_collected(&st, ids));
        status = mk_api_reply_json(c->req, 200, out);
    }
    free(copies);
    collect_free(&st);
    pthread_mutex_unlock(&c->api->write_lock);
    return status;
}

/* A target namespace from body[key], checked; answers 400 itself. */
const char *mk_api_body_namespace(ctx_t *c, json_t *body, const char *key)
{
    json_t *v = json_object_get(body, key);
    mk_err_t err;
    if (!json_is_string(v)) {
        mk_api_reply_fmt(c, MK_EINVAL, "%s: required, a namespace name", key);
        return NULL;
    }
    if (mk_mock_validate_namespace(json_string_value(v), &err) != 0) {
        mk_err_prefix(&err, "%s", key);
        mk_api_reply_err(c, &err);
        return NULL;
    }
    return json_string_value(v);
}

static int mocks_copy_to_namespace(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *ids = mk_api_body_ids(c, body, "ids");
    const char *target = ids ? mk_api_body_namespace(c, body, "targetNamespace") : NULL;
    int status = target ? mk_api_copy_mocks(c, NULL, ids, target) : 400;
    json_decref(body);
    return status;
}

/* --- chains --- */

static int chain_get(ctx_t *c)
{
    /* A bare list, as the SDKs decode it. */
    list_state_t st = {.chain = mk_api_param(c, "chainId"), .items = json_array(), .caller = c};
    mk_catalog_each(c->api->catalog, list_one, &st);
    return mk_api_reply_json(c->req, 200, st.items);
}

static int chain_delete(ctx_t *c)
{
    const char *chain = mk_api_param(c, "chainId");
    pthread_mutex_lock(&c->api->write_lock);
    collect_t st = {.chain = chain, .caller = c, .perm = "mocks:write"};
    mk_catalog_each(c->api->catalog, collect_one, &st);
    int status =
        close_collected(c, &st, mk_mock_now_ms(), "deleted", json_pack("{s:s}", "chainId", chain));
    collect_free(&st);
    pthread_mutex_unlock(&c->api->write_lock);
    return status;
}

/* --- request logs --- */

static int mock_logs(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    mk_mock_t *m = mk_api_find_mock(c, id, true);
    if (m == NULL)
        return 404;
    mk_mock_unref(m);
    mk_journal_sync(c->api->journal);
    mk_journal_filter_t f = {
        .mock_id = id,
        .limit = mk_api_query_size(c, "limit", MK_API_DEFAULT_LIMIT, MK_API_MAX_LIMIT),
        .offset = mk_api_query_size(c, "offset", 0, SIZE_MAX)};
    size_t total = 0;
    json_t *logs = mk_journal_query(c->api->journal, &f, &total);
    /* Mockarty's SDKs read different keys: the same list under both. */
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:s, s:O, s:o, s:I}", "id", id, "logs", logs, "requests",
                                       logs, "total", (json_int_t)total));
}

static int mock_logs_delete(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    mk_mock_t *m = mk_api_find_mock(c, id, true);
    if (m == NULL)
        return 404;
    mk_mock_unref(m);
    size_t n = mk_journal_forget_mock(c->api->journal, id);
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:s, s:I}", "id", id, "deleted", (json_int_t)n));
}

/* --- versions --- */

static int versions_list(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    mk_mock_t *m = mk_api_find_mock(c, id, true);
    if (m == NULL)
        return 404;
    mk_mock_unref(m);
    char prefix[300];
    version_prefix(id, prefix, sizeof prefix);
    json_t *items;
    mk_err_t err;
    if (mk_api_docs_list(c->api, VERSION_KIND, prefix, &items, &err) != 0)
        return mk_api_reply_err(c, &err);
    /* Newest first, as a bare list of mocks. */
    json_t *out = json_array();
    for (size_t i = json_array_size(items); i > 0; i--)
        json_array_append(out, json_array_get(items, i - 1));
    json_decref(items);
    return mk_api_reply_json(c->req, 200, out);
}

/* Version n of mock id (a new reference), or NULL after answering 404/400. */
static json_t *find_version(ctx_t *c, const char *id)
{
    const char *vs = mk_api_param(c, "version");
    char *end;
    long long n = strtoll(vs, &end, 10);
    if (*vs == '\0' || *end || n < 1) {
        mk_api_reply_fmt(c, MK_EINVAL, "version: '%s' is not a positive integer", vs);
        return NULL;
    }
    char vid[320];
    snprintf(vid, sizeof vid, "%s/%010lld", id, n);
    json_t *items;
    mk_err_t err;
    if (mk_api_docs_list(c->api, VERSION_KIND, vid, &items, &err) != 0) {
        mk_api_reply_err(c, &err);
        return NULL;
    }
    json_t *v = json_incref(json_array_get(items, 0));
    json_decref(items);
    if (v == NULL)
        mk_api_reply_fmt(c, MK_ENOTFOUND, "mock '%s' has no version %lld", id, n);
    return v;
}

static int version_get(ctx_t *c)
{
    json_t *v = find_version(c, mk_api_param(c, "id"));
    return v ? mk_api_reply_json(c->req, 200, v) : mk_err_http_status(MK_ENOTFOUND);
}

static int version_restore(ctx_t *c)
{
    const char *id = mk_api_param(c, "id");
    pthread_mutex_lock(&c->api->write_lock);
    int status = 404;
    mk_mock_t *m = mk_api_find_mock(c, id, true);
    json_t *v = m ? find_version(c, id) : NULL;
    if (v) {
        json_object_del(v, "version");
        json_object_del(v, "versionCreatedAt");
        json_object_del(v, "closedAt");
        mk_err_t err;
        mk_mock_t *next;
        if (replace_def(c, m, v, &next, &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            status = mk_api_reply_json(c->req, 200, mk_mock_to_json(next));
            mk_mock_unref(next);
        }
        json_decref(v);
    }
    mk_mock_unref(m);
    pthread_mutex_unlock(&c->api->write_lock);
    return status;
}

const mk_api_endpoint_t mk_api_mock_endpoints[] = {
    {"GET", "/api/v1/mocks", mocks_list, "mocks:read",
     "List mocks of a namespace (tags, search, folderId, deleted, offset, limit)", MK_API_HEAVY},
    {"POST", "/api/v1/mocks", mocks_create, "mocks:write",
     "Create a mock, or replace the one with the same id (its previous form becomes a version)", 0},
    {"POST", "/api/v1/mocks/batch", mocks_batch_create, "mocks:write",
     "Create or replace many mocks in one transaction", 0},
    {"DELETE", "/api/v1/mocks/batch", mocks_batch_delete, "mocks:write", "Soft-delete mocks by ids",
     0},
    {"POST", "/api/v1/mocks/batch/restore", mocks_batch_restore, "mocks:write",
     "Restore soft-deleted mocks by ids", 0},
    {"PATCH", "/api/v1/mocks/batch/tags", mocks_batch_tags, "mocks:write",
     "Set the tags of mocks by ids", 0},
    {"PATCH", "/api/v1/mocks/batch/move", mocks_batch_move, "mocks:write",
     "Move mocks by ids into a folder (folderId null: out of any folder)", 0},
    {"POST", "/api/v1/mocks/copy-to-namespace", mocks_copy_to_namespace, "mocks:write",
     "Copy mocks by ids into another namespace (new ids)", 0},
    {"GET", "/api/v1/mocks/chains/:chainId", chain_get, "mocks:read",
     "The live mocks of a chain, as a list", MK_API_HEAVY},
    {"DELETE", "/api/v1/mocks/chains/:chainId", chain_delete, "mocks:write",
     "Soft-delete every mock of a chain", 0},
    {"GET", "/api/v1/mocks/:id", mocks_get, "mocks:read", "One live mock", 0},
    {"PATCH", "/api/v1/mocks/:id", mocks_patch, "mocks:write",
     "Change a mock by JSON merge patch (keeps a version)", 0},
    {"PUT", "/api/v1/mocks/:id", mocks_patch, "mocks:write", "Same as PATCH", 0},
    {"DELETE", "/api/v1/mocks/:id", mocks_delete, "mocks:write", "Soft-delete a mock", 0},
    {"POST", "/api/v1/mocks/:id/restore", mocks_restore, "mocks:write",
     "Restore a soft-deleted mock", 0},
    {"DELETE", "/api/v1/mocks/:id/purge", mocks_purge, "mocks:write",
     "Remove a mock and its versions for good", 0},
    {"GET", "/api/v1/mocks/:id/logs", mock_logs, "mocks:read",
     "Requests the mock answered (offset, limit)", MK_API_HEAVY},
    {"DELETE", "/api/v1/mocks/:id/logs", mock_logs_delete, "mocks:write",
     "Forget the requests the mock answered", 0},
    {"GET", "/api/v1/mocks/:id/versions", versions_list, "mocks:read",
     "Previous definitions of a mock, newest first", 0},
    {"GET", "/api/v1/mocks/:id/versions/:version", version_get, "mocks:read",
     "One previous definition", 0},
    {"POST", "/api/v1/mocks/:id/versions/:version/restore", version_restore, "mocks:write",
     "Make a previous definition current again (the current one becomes a version)", 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};
