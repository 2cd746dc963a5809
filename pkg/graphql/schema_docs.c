/* GraphQL schema documents in the repository, and the registry of built schemas. */
#include "graphql/schema_docs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int check_path(const char *path, mk_err_t *err)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || path[0] != '/' || n > MK_GQL_MAX_PATH)
        return mk_err_set(err, MK_EINVAL, "path: must start with '/' (at most %d bytes)",
                          MK_GQL_MAX_PATH);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)path[i] <= ' ' || path[i] == '?' || path[i] == '#')
            return mk_err_set(err, MK_EINVAL, "path: '%.80s' is not a URL path", path);
    return 0;
}

/* "/graphql/" and "/graphql" are one endpoint. */
static size_t path_len(const char *path, size_t n)
{
    while (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

static json_t *summary(const mk_gql_schema_t *s, const char *ns, const char *path, size_t size,
                       int64_t at)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "namespace", ns, "path", path, "size",
                  (json_int_t)size, "types", (json_int_t)mk_gql_schema_type_count(s), "queryType",
                  mk_gql_schema_root(s, MK_GQL_QUERY), "updatedAt", (json_int_t)at);
    const char *m = mk_gql_schema_root(s, MK_GQL_MUTATION);
    const char *sub = mk_gql_schema_root(s, MK_GQL_SUBSCRIPTION);
    if (o) {
        json_object_set_new(o, "mutationType", m ? json_string(m) : json_null());
        json_object_set_new(o, "subscriptionType", sub ? json_string(sub) : json_null());
    }
    return o;
}

int mk_gql_schema_put(mk_repo_t *repo, const char *namespace_, const char *path, const char *sdl,
                      size_t len, json_t **info, mk_err_t *err)
{
    if (info)
        *info = NULL;
    int rc = check_path(path, err);
    if (rc)
        return rc;
    if (len == 0)
        return mk_err_set(err, MK_EINVAL, "body: an empty schema (send the SDL)");
    if (len > MK_GQL_MAX_SDL)
        return mk_err_set(err, MK_ETOOBIG, "body: a schema is at most %u bytes", MK_GQL_MAX_SDL);
    mk_gql_limits_t lim = {.max_bytes = MK_GQL_MAX_SDL, .max_tokens = 1000000};
    mk_gql_schema_t *s = NULL;
    mk_gql_error_t gerr;
    rc = mk_gql_schema_build(sdl, len, &lim, &s, &gerr);
    if (rc) {
        if (gerr.loc.line)
            return mk_err_set(err, rc == MK_ENOMEM ? rc : MK_EINVAL,
                              "schema: %s (line %u, column %u)", gerr.msg, gerr.loc.line,
                              gerr.loc.column);
        return mk_err_set(err, rc == MK_ENOMEM ? rc : MK_EINVAL, "schema: %s", gerr.msg);
    }
    char clean[MK_GQL_MAX_PATH + 1], id[MK_GQL_MAX_PATH + 80];
    snprintf(clean, sizeof clean, "%.*s", (int)path_len(path, strlen(path)), path);
    int64_t at = now_ms();
    json_t *sum = summary(s, namespace_, clean, len, at);
    mk_gql_schema_free(s);
    char *text = NULL;
    if (sum) {
        json_object_set_new(sum, "sdl", json_stringn(sdl, len));
        text = json_dumps(sum, JSON_COMPACT);
        json_object_del(sum, "sdl");
    }
    if (text == NULL) {
        json_decref(sum);
        return mk_err_set(err, MK_EINVAL, "schema: not UTF-8 text");
    }
    snprintf(id, sizeof id, "%s%s", namespace_, clean);
    mk_repo_doc_t doc = {.kind = MK_GQL_DOC_KIND,
                         .id = id,
                         .namespace_ = namespace_,
                         .json = text,
                         .updated_at = at};
    rc = mk_repo_put_docs(repo, &doc, 1, err);
    free(text);
    if (rc == 0 && info)
        *info = sum;
    else
        json_decref(sum);
    return rc;
}

/* Finds the document exact among those listed, keeping its SDL. */
typedef struct find_ctx {
    const char *exact;
    char *sdl;
    bool found;
} find_ctx_t;

static int find_doc(void *ud, const mk_repo_doc_t *d)
{
    find_ctx_t *fc = ud;
    if (strcmp(d->id, fc->exact) != 0)
        return 0;
    fc->found = true;
    json_t *doc = json_loads(d->json, 0, NULL);
    if (json_is_string(json_object_get(doc, "sdl")) && fc->sdl == NULL)
        fc->sdl = strdup(json_string_value(json_object_get(doc, "sdl")));
    json_decref(doc);
    return 0;
}

int mk_gql_schema_list(mk_repo_t *repo, const char *namespace_, json_t **out, mk_err_t *err)
{
    return mk_docreg_list(repo, MK_GQL_DOC_KIND, namespace_, "sdl", out, err);
}

static int find_one(mk_repo_t *repo, const char *namespace_, const char *path, char *id,
                    size_t idsize, find_ctx_t *fc, mk_err_t *err)
{
    int rc = check_path(path, err);
    if (rc)
        return rc;
    snprintf(id, idsize, "%s%.*s", namespace_, (int)path_len(path, strlen(path)), path);
    fc->exact = id;
    rc = mk_repo_list_docs(repo, MK_GQL_DOC_KIND, id, find_doc, fc, err);
    if (rc == 0 && !fc->found)
        rc = mk_err_set(err, MK_ENOTFOUND, "no GraphQL schema for %.200s in namespace %s", path,
                        namespace_);
    return rc;
}

int mk_gql_schema_get(mk_repo_t *repo, const char *namespace_, const char *path, char **sdl,
                      mk_err_t *err)
{
    char id[MK_GQL_MAX_PATH + 80];
    find_ctx_t fc = {0};
    int rc = find_one(repo, namespace_, path, id, sizeof id, &fc, err);
    *sdl = rc == 0 ? fc.sdl : NULL;
    if (rc)
        free(fc.sdl);
    return rc;
}

int mk_gql_schema_delete(mk_repo_t *repo, const char *namespace_, const char *path, mk_err_t *err)
{
    char id[MK_GQL_MAX_PATH + 80];
    find_ctx_t fc = {0};
    int rc = find_one(repo, namespace_, path, id, sizeof id, &fc, err);
    free(fc.sdl);
    if (rc)
        return rc;
    const char *ids[] = {id};
    return mk_repo_delete_docs(repo, MK_GQL_DOC_KIND, ids, 1, err);
}

/* ---- the registry: a docreg whose snapshot data is an array of built schemas ---------------- */

typedef struct entry {
    char *ns, *path;
    mk_gql_schema_t *schema;
} entry_t;

typedef struct entries {
    entry_t *e;
    size_t n;
} entries_t;

static void entries_free(void *data)
{
    entries_t *es = data;
    for (size_t i = 0; es && i < es->n; i++) {
        free(es->e[i].ns);
        free(es->e[i].path);
        mk_gql_schema_free(es->e[i].schema);
    }
    if (es)
        free(es->e);
    free(es);
}

static int add_schema(void **data, const mk_repo_doc_t *d)
{
    json_t *doc = json_loads(d->json, 0, NULL);
    const char *sdl = json_string_value(json_object_get(doc, "sdl"));
    const char *path = json_string_value(json_object_get(doc, "path"));
    mk_gql_limits_t lim = {.max_bytes = MK_GQL_MAX_SDL, .max_tokens = 1000000};
    mk_gql_schema_t *schema = NULL;
    int rc = 0;
    /* A document that no longer builds (a stricter parser) is skipped, not fatal. */
    if (sdl && path && mk_gql_schema_build(sdl, strlen(sdl), &lim, &schema, NULL) == 0) {
        entries_t *es = *data ? *data : calloc(1, sizeof *es);
        entry_t *grown = es ? realloc(es->e, (es->n + 1) * sizeof *grown) : NULL;
        rc = MK_ENOMEM;
        if (es)
            *data = es;
        if (grown) {
            es->e = grown;
            entry_t *e = &grown[es->n];
            e->ns = strdup(d->namespace_);
            e->path = strdup(path);
            e->schema = schema;
            if (e->ns && e->path) {
                es->n++;
                schema = NULL;
                rc = 0;
            } else {
                free(e->ns);
                free(e->path);
            }
        }
    }
    mk_gql_schema_free(schema);
    json_decref(doc);
    return rc;
}

int mk_gql_registry_start(mk_repo_t *repo, int poll_ms, mk_gql_registry_t **out, mk_err_t *err)
{
    mk_docreg_opts_t o = {.repo = repo,
                          .kind = MK_GQL_DOC_KIND,
                          .poll_ms = poll_ms,
                          .add = add_schema,
                          .free = entries_free};
    return mk_docreg_start(&o, out, err);
}

void mk_gql_registry_free(mk_gql_registry_t *r)
{
    mk_docreg_free(r);
}

int mk_gql_registry_reload(mk_gql_registry_t *r, mk_err_t *err)
{
    return mk_docreg_reload(r, err);
}

void mk_gql_registry_notify(void)
{
    mk_docreg_notify(MK_GQL_DOC_KIND);
}

const mk_gql_reg_snap_t *mk_gql_registry_acquire(mk_gql_registry_t *r)
{
    return mk_docreg_acquire(r);
}

void mk_gql_registry_release(const mk_gql_reg_snap_t *snap)
{
    mk_docreg_release(snap);
}

const mk_gql_schema_t *mk_gql_registry_find(const mk_gql_reg_snap_t *snap, const char *namespace_,
                                            const char *path, size_t plen)
{
    const entries_t *es = mk_docreg_data(snap);
    plen = path_len(path, plen);
    for (size_t i = 0; es && i < es->n; i++) {
        const entry_t *e = &es->e[i];
        if (strcmp(e->ns, namespace_) == 0 && strlen(e->path) == plen &&
            memcmp(e->path, path, plen) == 0)
            return e->schema;
    }
    return NULL;
}
