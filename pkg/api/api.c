/* The admin REST API: routing, authentication, replies, and the mock, namespace and journal
 * endpoints. */
#include "api/api_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 100
#define MAX_LIMIT     10000

/* --- replies --- */

int mk_api_reply_json(mk_httpd_req_t *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json"));
    if (text == NULL) {
        mk_httpd_respond(req, 500,
                         MK_STR_LIT("{\"error\":\"out of memory\",\"code\":\"internal\"}"));
        return 500;
    }
    mk_httpd_respond(req, status, mk_str_of(text));
    free(text);
    return status;
}

int mk_api_reply_error(mk_httpd_req_t *req, int code, const char *message)
{
    mk_str_t id = mk_httpd_req_id(req);
    return mk_api_reply_json(req, mk_err_http_status(code),
                             json_pack("{s:s, s:s, s:s#}", "error", message, "code",
                                       mk_err_code_name(code), "request_id", id.base, id.len));
}

int mk_api_reply_err(ctx_t *c, const mk_err_t *err)
{
    return mk_api_reply_error(c->req, err->code ? err->code : MK_EINTERNAL, err->msg);
}

int mk_api_reply_fmt(ctx_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int mk_api_reply_fmt(ctx_t *c, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mk_api_reply_error(c->req, code, msg);
}

/* --- lifecycle --- */

mk_api_t *mk_api_new(const mk_api_config_t *cfg, mk_catalog_t *catalog, mk_repo_t *repo,
                     mk_journal_t *journal, mk_store_t *store)
{
    mk_api_t *api = calloc(1, sizeof *api);
    if (api == NULL)
        return NULL;
    api->token = (cfg->api_token && cfg->api_token[0]) ? strdup(cfg->api_token) : NULL;
    api->catalog = catalog;
    api->repo = repo;
    api->journal = journal;
    api->store = store;
    api->namespaces = mk_strmap_new();
    pthread_mutex_init(&api->write_lock, NULL);
    if (api->namespaces)
        mk_strmap_set(api->namespaces, MK_STR_LIT(MK_MOCK_DEFAULT_NAMESPACE), (void *)1);
    return api;
}

void mk_api_free(mk_api_t *api)
{
    if (api == NULL)
        return;
    free(api->token);
    mk_strmap_free(api->namespaces);
    pthread_mutex_destroy(&api->write_lock);
    free(api);
}

typedef struct load_state {
    mk_mock_t **mocks;
    size_t n, cap;
    mk_err_t *err;
    int failed;
} load_state_t;

static int load_one(void *ud, const mk_repo_mock_t *row)
{
    load_state_t *st = ud;
    json_t *def = json_loads(row->json, 0, NULL);
    mk_mock_t *m = NULL;
    mk_err_t err;
    if (def == NULL || mk_mock_load(def, row->uses, row->last_use, &m, &err) != 0) {
        /* A row this binary cannot compile is skipped, not fatal: the rest must still serve. */
        st->failed++;
        json_decref(def);
        return 0;
    }
    json_decref(def);
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 256;
        mk_mock_t **grown = realloc(st->mocks, st->cap * sizeof *grown);
        if (grown == NULL) {
            mk_mock_unref(m);
            return mk_err_set(st->err, MK_ENOMEM, "out of memory loading mocks");
        }
        st->mocks = grown;
    }
    st->mocks[st->n++] = m;
    return 0;
}

static int load_ns(void *ud, const char *name, int64_t created_at)
{
    (void)created_at;
    return mk_strmap_set(ud, mk_str_of(name), (void *)1);
}

int mk_api_load(mk_api_t *api, mk_err_t *err)
{
    load_state_t st = {.err = err};
    int rc = mk_repo_load_mocks(api->repo, 0, load_one, &st, err);
    if (rc == 0)
        rc = mk_repo_list_namespaces(api->repo, load_ns, api->namespaces, err);
    if (rc == 0 && st.n > 0)
        return mk_catalog_put(api->catalog, st.mocks, st.n, NULL, err) ? -1 : (free(st.mocks), 0);
    for (size_t i = 0; i < st.n; i++)
        mk_mock_unref(st.mocks[i]);
    free(st.mocks);
    return rc;
}

void mk_api_maintain(mk_api_t *api)
{
    mk_catalog_usage_t *u;
    size_t n = mk_catalog_take_usage(api->catalog, &u);
    if (n) {
        mk_repo_usage_t *rows = malloc(n * sizeof *rows);
        if (rows) {
            for (size_t i = 0; i < n; i++)
                rows[i] = (mk_repo_usage_t){u[i].id, u[i].uses, u[i].last_use};
            mk_repo_update_usage(api->repo, rows, n, NULL);
            free(rows);
        }
    }
    mk_catalog_usage_free(u, n);
    mk_catalog_reclaim(api->catalog);
}

/* --- request helpers --- */

bool mk_api_query_str(ctx_t *c, const char *name, char *buf, size_t size)
{
    mk_str_t v;
    if (!mk_request_query_param(c->view, mk_str_of(name), &v) || v.len == 0)
        return false;
    snprintf(buf, size, "%.*s", (int)v.len, v.base);
    return true;
}

size_t mk_api_query_size(ctx_t *c, const char *name, size_t def, size_t max)
{
    char buf[32];
    if (!mk_api_query_str(c, name, buf, sizeof buf))
        return def;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end || v < 0)
        return def;
    return (size_t)v > max ? max : (size_t)v;
}

/* Namespace precedence: ?namespace=, then the body's "namespace", then X-Namespace, then
 * sandbox. */
void mk_api_resolve_namespace(ctx_t *c, json_t *body, char *out, size_t size)
{
    if (mk_api_query_str(c, "namespace", out, size))
        return;
    json_t *ns = body ? json_object_get(body, "namespace") : NULL;
    if (json_is_string(ns) && json_string_length(ns) > 0) {
        snprintf(out, size, "%s", json_string_value(ns));
        return;
    }
    mk_str_t h;
    if (mk_request_header(c->view, MK_STR_LIT("X-Namespace"), &h) && h.len > 0) {
        snprintf(out, size, "%.*s", (int)h.len, h.base);
        return;
    }
    snprintf(out, size, "%s", MK_MOCK_DEFAULT_NAMESPACE);
}

int mk_api_parse_body(ctx_t *c, json_t **out)
{
    json_error_t jerr;
    *out = NULL;
    if (c->view->body.len == 0)
        return mk_api_reply_fmt(c, MK_EINVAL, "request body: empty, expected JSON");
    *out = json_loadb(c->view->body.base, c->view->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL)
        return mk_api_reply_fmt(c, MK_EINVAL,
                                "request body: malformed JSON at line %d column %d: %s", jerr.line,
                                jerr.column, jerr.text);
    return 0;
}

char *mk_api_seg_dup(ctx_t *c, size_t i, char *buf, size_t size)
{
    size_t n = c->seg[i].len < size - 1 ? c->seg[i].len : size - 1;
    mk_str_url_decode((mk_str_t){c->seg[i].base, n}, buf, false);
    return buf;
}

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

/* Stores then publishes mocks (references taken over). Caller holds write_lock. */
static int commit_mocks(mk_api_t *api, mk_mock_t **mocks, size_t n, bool *replaced, mk_err_t *err)
{
    int rc = store_rows(api, mocks, n, err);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            mk_mock_unref(mocks[i]);
        return rc;
    }
    return mk_catalog_put(api->catalog, mocks, n, replaced, err);
}

/* Parses one definition for create/replace, applying the namespace rule and keeping createdAt of
 * a mock it replaces. Caller holds write_lock. */
static int prepare_mock(ctx_t *c, json_t *def, const char *ns, int64_t now, mk_mock_t **out,
                        mk_err_t *err)
{
    if (!json_is_object(def))
        return mk_err_set(err, MK_EINVAL, "mock: must be a JSON object");
    json_t *copy = json_copy(def);
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
    int rc = mk_mock_parse(copy, &opts, out, err);
    json_decref(copy);
    return rc;
}

/* --- mocks --- */

static int mocks_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    char ns[128];
    mk_api_resolve_namespace(c, body, ns, sizeof ns);
    mk_err_t err;
    mk_mock_t *m;
    int status;
    pthread_mutex_lock(&c->api->write_lock);
    if (prepare_mock(c, body, ns, mk_mock_now_ms(), &m, &err) != 0) {
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    mk_mock_ref(m);
    bool replaced = false;
    if (commit_mocks(c->api, &m, 1, &replaced, &err) != 0) {
        mk_mock_unref(m);
        status = mk_api_reply_err(c, &err);
        goto out;
    }
    status = mk_api_reply_json(
        c->req, replaced ? 200 : 201,
        json_pack("{s:b, s:o}", "overwritten", replaced, "mock", mk_mock_to_json(m)));
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
    char qns[128];
    bool has_qns = mk_api_query_str(c, "namespace", qns, sizeof qns);
    size_t n = json_array_size(list);
    mk_mock_t **mocks = calloc(n ? n : 1, sizeof *mocks);
    bool *replaced = calloc(n ? n : 1, sizeof *replaced);
    mk_err_t err;
    int status;
    int64_t now = mk_mock_now_ms();
    pthread_mutex_lock(&c->api->write_lock);
    for (size_t i = 0; i < n; i++) {
        json_t *def = json_array_get(list, i);
        char ns[128];
        if (has_qns)
            snprintf(ns, sizeof ns, "%s", qns);
        else
            mk_api_resolve_namespace(c, json_is_object(def) ? def : NULL, ns, sizeof ns);
        if (prepare_mock(c, def, ns, now, &mocks[i], &err) != 0) {
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
    if (commit_mocks(c->api, mocks, n, replaced, &err) != 0) {
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
    char **tags;
    size_t ntags;
    const char *search;
    bool deleted;
    json_t *items;
} list_state_t;

static bool mock_has_tag(const mk_mock_t *m, const char *tag)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i], tag) == 0)
            return true;
    return false;
}

static int list_one(void *ud, mk_mock_t *m)
{
    list_state_t *st = ud;
    if ((m->closed_at != 0) != st->deleted)
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
    json_array_append_new(st->items, mk_mock_to_json(m));
    return 0;
}

/* Newest first: the catalog iterates oldest first. */
static json_t *page(json_t *all, size_t offset, size_t limit)
{
    json_t *out = json_array();
    size_t n = json_array_size(all);
    for (size_t i = offset; i < n && json_array_size(out) < limit; i++)
        json_array_append(out, json_array_get(all, n - 1 - i));
    return out;
}

static int mocks_list(ctx_t *c)
{
    char ns[128], tags[512], search[256], deleted[8];
    mk_api_resolve_namespace(c, NULL, ns, sizeof ns);
    list_state_t st = {.ns = ns, .items = json_array()};
    char *tagv[32];
    if (mk_api_query_str(c, "tags", tags, sizeof tags)) {
        for (char *save = NULL, *t = strtok_r(tags, ",", &save); t && st.ntags < 32;
             t = strtok_r(NULL, ",", &save))
            if (*t)
                tagv[st.ntags++] = t;
        st.tags = tagv;
    }
    if (mk_api_query_str(c, "search", search, sizeof search))
        st.search = search;
    st.deleted =
        mk_api_query_str(c, "deleted", deleted, sizeof deleted) && strcmp(deleted, "true") == 0;
    mk_catalog_each(c->api->catalog, list_one, &st);
    size_t offset = mk_api_query_size(c, "offset", 0, SIZE_MAX);
    size_t limit = mk_api_query_size(c, "limit", DEFAULT_LIMIT, MAX_LIMIT);
    size_t total = json_array_size(st.items);
    json_t *items = page(st.items, offset, limit);
    json_decref(st.items);
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total",
                                       (json_int_t)total, "offset", (json_int_t)offset, "limit",
                                       (json_int_t)limit));
}

/* The mock named by the path, live unless allow_closed; replies 404 itself when absent. */
static mk_mock_t *find_mock(ctx_t *c, const char *id, bool allow_closed)
{
    mk_mock_t *m = mk_catalog_get(c->api->catalog, id);
    if (m && (allow_closed || m->closed_at == 0))
        return m;
    mk_mock_unref(m);
    mk_api_reply_fmt(c, MK_ENOTFOUND, "mock '%s' not found", id);
    return NULL;
}

static int mocks_get(ctx_t *c, const char *id)
{
    mk_mock_t *m = find_mock(c, id, false);
    if (m == NULL)
        return 404;
    int status = mk_api_reply_json(c->req, 200, mk_mock_to_json(m));
    mk_mock_unref(m);
    return status;
}

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

/* Soft-deletes (closed_at != 0) or restores the mocks in list; replies with the outcome. */
static int set_closed(ctx_t *c, mk_mock_t **list, size_t n, int64_t closed_at, mk_err_t *err)
{
    mk_mock_t **next = calloc(n ? n : 1, sizeof *next);
    int rc = 0;
    if (next == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = with_closed(list[i], closed_at, &next[i], err);
    if (rc == 0)
        rc = commit_mocks(c->api, next, n, NULL, err);
    else
        for (size_t i = 0; i < n; i++)
            mk_mock_unref(next[i]);
    free(next);
    return rc;
}

static int mocks_delete(ctx_t *c, const char *id)
{
    pthread_mutex_lock(&c->api->write_lock);
    int status = 404;
    mk_mock_t *m = find_mock(c, id, false);
    if (m) {
        mk_err_t err;
        int64_t now = mk_mock_now_ms();
        if (set_closed(c, &m, 1, now, &err) != 0)
            status = mk_api_reply_err(c, &err);
        else
            status = mk_api_reply_json(
                c->req, 200,
                json_pack("{s:s, s:b, s:I}", "id", id, "deleted", 1, "closedAt", (json_int_t)now));
        mk_mock_unref(m);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    return status;
}

static int mocks_restore(ctx_t *c, const char *id)
{
    pthread_mutex_lock(&c->api->write_lock);
    int status = 404;
    mk_mock_t *m = find_mock(c, id, true);
    if (m) {
        mk_err_t err;
        if (m->closed_at && set_closed(c, &m, 1, 0, &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            mk_mock_t *now = mk_catalog_get(c->api->catalog, id);
            status = mk_api_reply_json(c->req, 200, now ? mk_mock_to_json(now) : json_object());
            mk_mock_unref(now);
        }
        mk_mock_unref(m);
    }
    pthread_mutex_unlock(&c->api->write_lock);
    return status;
}

static int mocks_purge(ctx_t *c, const char *id)
{
    pthread_mutex_lock(&c->api->write_lock);
    int status = 404;
    mk_mock_t *m = find_mock(c, id, true);
    if (m) {
        mk_err_t err;
        const char *ids[1] = {id};
        if (mk_repo_delete_mocks(c->api->repo, ids, 1, &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            mk_catalog_remove(c->api->catalog, ids, 1);
            status = mk_api_reply_json(c->req, 200, json_pack("{s:s, s:b}", "id", id, "purged", 1));
        }
        mk_mock_unref(m);
    }
    pthread_mutex_unlock(&c->api->write_lock);
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

static int mocks_patch(ctx_t *c, const char *id)
{
    json_t *patch;
    if (mk_api_parse_body(c, &patch))
        return 400;
    int status;
    pthread_mutex_lock(&c->api->write_lock);
    mk_mock_t *m = find_mock(c, id, false);
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
        mk_mock_parse_opts_t opts = {.now_ms = mk_mock_now_ms(), .created_at = m->created_at};
        if (mk_mock_parse(def, &opts, &next, &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            mk_mock_ref(next);
            if (commit_mocks(c->api, &next, 1, NULL, &err) != 0)
                status = mk_api_reply_err(c, &err);
            else
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

typedef struct collect {
    const char *chain;
    json_t *ids; /* when set: only these ids */
    mk_mock_t **list;
    size_t n, cap;
} collect_t;

static int collect_one(void *ud, mk_mock_t *m)
{
    collect_t *st = ud;
    if (m->closed_at)
        return 0;
    if (st->chain && (m->chain_id == NULL || strcmp(m->chain_id, st->chain) != 0))
        return 0;
    if (st->ids) {
        bool hit = false;
        size_t i;
        json_t *v;
        json_array_foreach(st->ids, i, v)
        {
            hit = hit || (json_is_string(v) && strcmp(json_string_value(v), m->id) == 0);
        }
        if (!hit)
            return 0;
    }
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

static int soft_delete_collected(ctx_t *c, collect_t *st, json_t *extra)
{
    mk_err_t err;
    int status;
    if (st->n && set_closed(c, st->list, st->n, mk_mock_now_ms(), &err) != 0) {
        json_decref(extra);
        status = mk_api_reply_err(c, &err);
    } else {
        json_object_set_new(extra, "deleted", json_integer((json_int_t)st->n));
        status = mk_api_reply_json(c->req, 200, extra);
    }
    return status;
}

static int mocks_batch_delete(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *ids = json_object_get(body, "ids");
    if (!json_is_array(ids)) {
        json_decref(body);
        return mk_api_reply_fmt(c, MK_EINVAL, "ids: required, an array of mock ids");
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (!json_is_string(v)) {
            json_decref(body);
            return mk_api_reply_fmt(c, MK_EINVAL, "ids[%zu]: must be a string", i);
        }
    }
    pthread_mutex_lock(&c->api->write_lock);
    collect_t st = {.ids = ids};
    mk_catalog_each(c->api->catalog, collect_one, &st);
    json_t *missing = json_array();
    json_array_foreach(ids, i, v)
    {
        bool found = false;
        for (size_t k = 0; k < st.n && !found; k++)
            found = strcmp(st.list[k]->id, json_string_value(v)) == 0;
        if (!found)
            json_array_append(missing, v);
    }
    int status = soft_delete_collected(c, &st, json_pack("{s:o}", "notFound", missing));
    collect_free(&st);
    pthread_mutex_unlock(&c->api->write_lock);
    json_decref(body);
    return status;
}

static int chains(ctx_t *c, const char *chain, bool del)
{
    if (del) {
        pthread_mutex_lock(&c->api->write_lock);
        collect_t st = {.chain = chain};
        mk_catalog_each(c->api->catalog, collect_one, &st);
        int status = soft_delete_collected(c, &st, json_pack("{s:s}", "chainId", chain));
        collect_free(&st);
        pthread_mutex_unlock(&c->api->write_lock);
        return status;
    }
    list_state_t st = {.chain = chain, .items = json_array()};
    mk_catalog_each(c->api->catalog, list_one, &st);
    size_t total = json_array_size(st.items);
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:s, s:o, s:I}", "chainId", chain, "items", st.items,
                                       "total", (json_int_t)total));
}

/* --- journal --- */

static int mock_logs(ctx_t *c, const char *id)
{
    mk_mock_t *m = find_mock(c, id, true);
    if (m == NULL)
        return 404;
    mk_mock_unref(m);
    mk_journal_sync(c->api->journal);
    mk_journal_filter_t f = {.mock_id = id,
                             .limit = mk_api_query_size(c, "limit", DEFAULT_LIMIT, MAX_LIMIT),
                             .offset = mk_api_query_size(c, "offset", 0, SIZE_MAX)};
    size_t total = 0;
    json_t *logs = mk_journal_query(c->api->journal, &f, &total);
    /* Mockarty's SDKs read different keys: the same list under both. */
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:s, s:O, s:o, s:I}", "id", id, "logs", logs, "requests",
                                       logs, "total", (json_int_t)total));
}

static int requests_list(ctx_t *c)
{
    char ns[128], mock[160], method[16], path[1024];
    mk_journal_filter_t f = {
        .namespace_ = mk_api_query_str(c, "namespace", ns, sizeof ns) ? ns : NULL,
        .mock_id = mk_api_query_str(c, "mockId", mock, sizeof mock) ? mock : NULL,
        .method = mk_api_query_str(c, "method", method, sizeof method) ? method : NULL,
        .path = mk_api_query_str(c, "path", path, sizeof path) ? path : NULL,
        .limit = mk_api_query_size(c, "limit", DEFAULT_LIMIT, MAX_LIMIT),
        .offset = mk_api_query_size(c, "offset", 0, SIZE_MAX),
    };
    mk_journal_sync(c->api->journal);
    size_t total = 0;
    json_t *items = mk_journal_query(c->api->journal, &f, &total);
    return mk_api_reply_json(
        c->req, 200, json_pack("{s:o, s:I}", "requests", items, "total", (json_int_t)total));
}

static int requests_count(ctx_t *c)
{
    json_t *pattern;
    if (mk_api_parse_body(c, &pattern))
        return 400;
    mk_journal_sync(c->api->journal);
    size_t count = 0;
    mk_err_t err;
    int status;
    if (mk_journal_count(c->api->journal, pattern, &count, &err) != 0)
        status = mk_api_reply_err(c, &err);
    else
        status = mk_api_reply_json(c->req, 200, json_pack("{s:I}", "count", (json_int_t)count));
    json_decref(pattern);
    return status;
}

static int undefined_list(ctx_t *c)
{
    mk_journal_sync(c->api->journal);
    json_t *items = mk_journal_undefined(c->api->journal);
    size_t total = json_array_size(items);
    return mk_api_reply_json(c->req, 200,
                             json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)total));
}

/* --- namespaces --- */

static int namespaces_list(ctx_t *c)
{
    json_t *names = json_array();
    pthread_mutex_lock(&c->api->write_lock);
    size_t pos = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(c->api->namespaces, &pos, &k, &v))
        json_array_append_new(names, json_stringn(k.base, k.len));
    pthread_mutex_unlock(&c->api->write_lock);
    /* Sorted, so clients and tests see a stable order. */
    size_t n = json_array_size(names);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(json_string_value(json_array_get(names, j - 1)),
                                           json_string_value(json_array_get(names, j))) > 0;
             j--) {
            json_t *a = json_incref(json_array_get(names, j - 1));
            json_array_set(names, j - 1, json_array_get(names, j));
            json_array_set_new(names, j, a);
        }
    return mk_api_reply_json(c->req, 200, json_pack("{s:o}", "namespaces", names));
}

static int namespaces_create(ctx_t *c)
{
    json_t *body;
    if (mk_api_parse_body(c, &body))
        return 400;
    json_t *name = json_object_get(body, "name");
    int status;
    mk_err_t err;
    if (!json_is_string(name)) {
        status = mk_api_reply_fmt(c, MK_EINVAL, "name: required, a string");
    } else if (mk_mock_validate_namespace(json_string_value(name), &err) != 0) {
        status = mk_api_reply_err(c, &err);
    } else {
        pthread_mutex_lock(&c->api->write_lock);
        bool exists = mk_strmap_get(c->api->namespaces, mk_str_of(json_string_value(name)));
        if (!exists && mk_repo_put_namespace(c->api->repo, json_string_value(name),
                                             mk_mock_now_ms(), &err) != 0) {
            status = mk_api_reply_err(c, &err);
        } else {
            mk_strmap_set(c->api->namespaces, mk_str_of(json_string_value(name)), (void *)1);
            status = mk_api_reply_json(c->req, exists ? 200 : 201,
                                       json_pack("{s:O, s:b}", "name", name, "created", !exists));
        }
        pthread_mutex_unlock(&c->api->write_lock);
    }
    json_decref(body);
    return status;
}

/* --- routing --- */

static bool authorized(mk_api_t *api, mk_request_t *view)
{
    if (api->token == NULL)
        return true;
    mk_str_t v;
    mk_str_t given = {NULL, 0};
    if (mk_request_header(view, MK_STR_LIT("Authorization"), &v) && v.len > 7 &&
        mk_str_caseeq((mk_str_t){v.base, 7}, MK_STR_LIT("Bearer ")))
        given = (mk_str_t){v.base + 7, v.len - 7};
    else if (mk_request_header(view, MK_STR_LIT("X-API-Key"), &v))
        given = v;
    size_t n = strlen(api->token);
    if (given.base == NULL || given.len != n)
        return false;
    /* Constant time: the comparison must not tell how much of the token was right. */
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(given.base[i] ^ api->token[i]);
    return diff == 0;
}

bool mk_api_seg_is(mk_str_t s, const char *lit)
{
    return mk_str_eq_cstr(s, lit);
}

#define METHOD(m) mk_api_seg_is(c->view->method, m)

static int route_mocks(ctx_t *c)
{
    char id[256];
    if (c->nseg == 1) {
        if (METHOD("GET"))
            return mocks_list(c);
        if (METHOD("POST"))
            return mocks_create(c);
        return 405;
    }
    if (c->nseg == 2 && mk_api_seg_is(c->seg[1], "batch")) {
        if (METHOD("POST"))
            return mocks_batch_create(c);
        if (METHOD("DELETE"))
            return mocks_batch_delete(c);
        return 405;
    }
    if (c->nseg == 3 && mk_api_seg_is(c->seg[1], "chains")) {
        mk_api_seg_dup(c, 2, id, sizeof id);
        if (METHOD("GET"))
            return chains(c, id, false);
        if (METHOD("DELETE"))
            return chains(c, id, true);
        return 405;
    }
    mk_api_seg_dup(c, 1, id, sizeof id);
    if (c->nseg == 2) {
        if (METHOD("GET"))
            return mocks_get(c, id);
        if (METHOD("PATCH") || METHOD("PUT"))
            return mocks_patch(c, id);
        if (METHOD("DELETE"))
            return mocks_delete(c, id);
        return 405;
    }
    if (c->nseg == 3 && mk_api_seg_is(c->seg[2], "restore") && METHOD("POST"))
        return mocks_restore(c, id);
    if (c->nseg == 3 && mk_api_seg_is(c->seg[2], "purge") && METHOD("DELETE"))
        return mocks_purge(c, id);
    if (c->nseg == 3 && mk_api_seg_is(c->seg[2], "logs") && METHOD("GET"))
        return mock_logs(c, id);
    return 0;
}

static int route(ctx_t *c)
{
    if (c->nseg == 0)
        return 0;
    if (mk_api_seg_is(c->seg[0], "mocks"))
        return route_mocks(c);
    if (mk_api_seg_is(c->seg[0], "namespaces") && c->nseg == 1) {
        if (METHOD("GET"))
            return namespaces_list(c);
        if (METHOD("POST"))
            return namespaces_create(c);
        return 405;
    }
    if (mk_api_seg_is(c->seg[0], "requests")) {
        if (c->nseg == 1 && METHOD("GET"))
            return requests_list(c);
        if (c->nseg == 1 && METHOD("DELETE")) {
            mk_journal_sync(c->api->journal);
            mk_journal_clear(c->api->journal);
            return mk_api_reply_json(c->req, 200, json_pack("{s:b}", "cleared", 1));
        }
        if (c->nseg == 2 && mk_api_seg_is(c->seg[1], "count") && METHOD("POST"))
            return requests_count(c);
        return c->nseg <= 2 ? 405 : 0;
    }
    if (mk_api_seg_is(c->seg[0], "stores"))
        return mk_api_route_stores(c);
    if (mk_api_seg_is(c->seg[0], "fakers"))
        return mk_api_route_fakers(c);
    if (mk_api_seg_is(c->seg[0], "undefined-requests") && c->nseg == 1) {
        if (METHOD("GET"))
            return undefined_list(c);
        return 405;
    }
    return 0;
}

int mk_api_handle(mk_api_t *api, mk_httpd_req_t *req, mk_request_t *view)
{
    ctx_t c = {.api = api, .req = req, .view = view};
    if (!authorized(api, view))
        return mk_api_reply_error(req, MK_EUNAUTH,
                                  "missing or invalid API token (Authorization: Bearer <token> "
                                  "or X-API-Key)");
    mk_str_t p = view->path;
    if (!mk_str_starts_with(p, "/api/v1/"))
        return mk_api_reply_error(req, MK_ENOTFOUND, "unknown API path (expected /api/v1/...)");
    const char *s = p.base + 8, *end = p.base + p.len;
    while (s < end && c.nseg < 8) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *stop = slash ? slash : end;
        if (stop > s)
            c.seg[c.nseg++] = (mk_str_t){s, (size_t)(stop - s)};
        s = stop + 1;
    }
    int status = route(&c);
    if (status == 405)
        return mk_api_reply_fmt(&c, MK_EINVAL, "method %.*s not allowed on %.*s",
                                (int)view->method.len, view->method.base, (int)p.len, p.base);
    if (status == 0)
        return mk_api_reply_fmt(&c, MK_ENOTFOUND, "no API endpoint %.*s %.*s",
                                (int)view->method.len, view->method.base, (int)p.len, p.base);
    return status;
}
