/* Repository dispatch: forwards each call to the backend and reports how long it took to the
 * observer (db_query_duration_seconds), so backends never deal with metrics. */
#include "repo/repo.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void observe(mk_repo_t *r, const char *operation, double start)
{
    if (r->observer != NULL)
        r->observer(r->observer_ud, operation, now_seconds() - start);
}

static int check_repo(const mk_repo_t *r, const char *operation, mk_err_t *err)
{
    if (r == NULL || r->ops == NULL)
        return mk_err_set(err, MK_EINVAL, "repo %s: no repository", operation);
    return 0;
}

void mk_repo_set_observer(mk_repo_t *r, mk_repo_observer_cb cb, void *ud)
{
    if (r == NULL)
        return;
    r->observer = cb;
    r->observer_ud = ud;
}

int mk_repo_put_mocks(mk_repo_t *r, mk_repo_mock_t *rows, size_t n, mk_err_t *err)
{
    int rc = check_repo(r, "put_mocks", err);
    if (rc != 0)
        return rc;
    if (rows == NULL && n > 0)
        return mk_err_set(err, MK_EINVAL, "repo put_mocks: rows is NULL");
    if (n == 0)
        return 0;
    /* The seqs are the caller's only once committed: a failed batch leaves rows as they were. */
    int64_t *was = malloc(n * sizeof *was);
    if (was == NULL)
        return mk_err_set(err, MK_ENOMEM, "repo put_mocks: out of memory");
    for (size_t i = 0; i < n; i++)
        was[i] = rows[i].seq;
    double start = now_seconds();
    rc = r->ops->put_mocks(r, rows, n, err);
    observe(r, "put_mocks", start);
    for (size_t i = 0; rc != 0 && i < n; i++)
        rows[i].seq = was[i];
    free(was);
    return rc;
}

int mk_repo_delete_mocks(mk_repo_t *r, const char *const *ids, size_t n, mk_err_t *err)
{
    int rc = check_repo(r, "delete_mocks", err);
    if (rc != 0)
        return rc;
    if (ids == NULL && n > 0)
        return mk_err_set(err, MK_EINVAL, "repo delete_mocks: ids is NULL");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL)
            return mk_err_set(err, MK_EINVAL, "repo delete_mocks: id %zu is NULL", i);
    }
    if (n == 0)
        return 0;
    double start = now_seconds();
    rc = r->ops->delete_mocks(r, ids, n, err);
    observe(r, "delete_mocks", start);
    return rc;
}

int mk_repo_load_mocks(mk_repo_t *r, int64_t after_seq, mk_repo_mock_cb cb, void *ud, mk_err_t *err)
{
    int rc = check_repo(r, "load_mocks", err);
    if (rc != 0)
        return rc;
    if (cb == NULL)
        return mk_err_set(err, MK_EINVAL, "repo load_mocks: no callback");
    double start = now_seconds();
    rc = r->ops->load_mocks(r, after_seq, cb, ud, err);
    observe(r, "load_mocks", start);
    return rc;
}

int mk_repo_update_usage(mk_repo_t *r, const mk_repo_usage_t *rows, size_t n, mk_err_t *err)
{
    int rc = check_repo(r, "update_usage", err);
    if (rc != 0)
        return rc;
    if (rows == NULL && n > 0)
        return mk_err_set(err, MK_EINVAL, "repo update_usage: rows is NULL");
    for (size_t i = 0; i < n; i++) {
        if (rows[i].id == NULL)
            return mk_err_set(err, MK_EINVAL, "repo update_usage: id %zu is NULL", i);
    }
    if (n == 0)
        return 0;
    double start = now_seconds();
    rc = r->ops->update_usage(r, rows, n, err);
    observe(r, "update_usage", start);
    return rc;
}

int mk_repo_put_namespace(mk_repo_t *r, const char *name, int64_t created_at, mk_err_t *err)
{
    int rc = check_repo(r, "put_namespace", err);
    if (rc != 0)
        return rc;
    if (name == NULL || name[0] == '\0')
        return mk_err_set(err, MK_EINVAL, "repo put_namespace: empty namespace name");
    double start = now_seconds();
    rc = r->ops->put_namespace(r, name, created_at, err);
    observe(r, "put_namespace", start);
    return rc;
}

int mk_repo_list_namespaces(mk_repo_t *r, mk_repo_name_cb cb, void *ud, mk_err_t *err)
{
    int rc = check_repo(r, "list_namespaces", err);
    if (rc != 0)
        return rc;
    if (cb == NULL)
        return mk_err_set(err, MK_EINVAL, "repo list_namespaces: no callback");
    double start = now_seconds();
    rc = r->ops->list_namespaces(r, cb, ud, err);
    observe(r, "list_namespaces", start);
    return rc;
}

int mk_repo_get_mock(mk_repo_t *r, const char *id, mk_repo_mock_cb cb, void *ud, mk_err_t *err)
{
    int rc = check_repo(r, "get_mock", err);
    if (rc != 0)
        return rc;
    if (id == NULL || cb == NULL)
        return mk_err_set(err, MK_EINVAL, "repo get_mock: no id or no callback");
    double start = now_seconds();
    rc = r->ops->get_mock(r, id, cb, ud, err);
    observe(r, "get_mock", start);
    return rc;
}

int mk_repo_subscribe(mk_repo_t *r, mk_repo_change_cb cb, void *ud, mk_err_t *err)
{
    int rc = check_repo(r, "subscribe", err);
    if (rc != 0)
        return rc;
    if (r->ops->subscribe == NULL)
        return mk_err_set(err, MK_EINVAL, "repo subscribe: the %s backend has no change feed",
                          mk_repo_backend(r));
    if (cb == NULL)
        return mk_err_set(err, MK_EINVAL, "repo subscribe: no callback");
    return r->ops->subscribe(r, cb, ud, err);
}

int mk_repo_ping(mk_repo_t *r, mk_err_t *err)
{
    int rc = check_repo(r, "ping", err);
    if (rc != 0)
        return rc;
    double start = now_seconds();
    rc = r->ops->ping(r, err);
    observe(r, "ping", start);
    if (rc != 0 && err != NULL)
        err->code = MK_EUNAVAIL;
    return rc != 0 ? MK_EUNAVAIL : 0;
}

const char *mk_repo_backend(const mk_repo_t *r)
{
    if (r == NULL || r->ops == NULL || r->ops->name == NULL)
        return "none";
    return r->ops->name;
}

void mk_repo_free(mk_repo_t *r)
{
    if (r == NULL || r->ops == NULL || r->ops->free == NULL)
        return;
    r->ops->free(r);
}

/* Documents are optional for a backend: one without them answers MK_EINVAL. */
static int check_docs(const mk_repo_t *r, const char *operation, bool present, mk_err_t *err)
{
    int rc = check_repo(r, operation, err);
    if (rc == 0 && !present)
        return mk_err_set(err, MK_EINVAL, "repo %s: the %s backend keeps no documents", operation,
                          r->ops->name);
    return rc;
}

static bool is_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

int mk_repo_put_docs(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err)
{
    int rc = check_docs(r, "put_docs", r && r->ops && r->ops->put_docs, err);
    if (rc != 0)
        return rc;
    if (docs == NULL && n > 0)
        return mk_err_set(err, MK_EINVAL, "repo put_docs: docs is NULL");
    for (size_t i = 0; i < n; i++) {
        if (is_empty(docs[i].kind) || is_empty(docs[i].id) || docs[i].json == NULL)
            return mk_err_set(err, MK_EINVAL, "repo put_docs: document %zu has no kind, id or json",
                              i);
    }
    if (n == 0)
        return 0;
    double start = now_seconds();
    rc = r->ops->put_docs(r, docs, n, err);
    observe(r, "put_docs", start);
    return rc;
}

int mk_repo_delete_docs(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                        mk_err_t *err)
{
    int rc = check_docs(r, "delete_docs", r && r->ops && r->ops->delete_docs, err);
    if (rc != 0)
        return rc;
    if (is_empty(kind) || (ids == NULL && n > 0))
        return mk_err_set(err, MK_EINVAL, "repo delete_docs: no kind or ids is NULL");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL)
            return mk_err_set(err, MK_EINVAL, "repo delete_docs: id %zu is NULL", i);
    }
    if (n == 0)
        return 0;
    double start = now_seconds();
    rc = r->ops->delete_docs(r, kind, ids, n, err);
    observe(r, "delete_docs", start);
    return rc;
}

int mk_repo_list_docs(mk_repo_t *r, const char *kind, const char *id_prefix, mk_repo_doc_cb cb,
                      void *ud, mk_err_t *err)
{
    int rc = check_docs(r, "list_docs", r && r->ops && r->ops->list_docs, err);
    if (rc != 0)
        return rc;
    if (is_empty(kind) || cb == NULL)
        return mk_err_set(err, MK_EINVAL, "repo list_docs: no kind or no callback");
    double start = now_seconds();
    rc = r->ops->list_docs(r, kind, id_prefix, cb, ud, err);
    observe(r, "list_docs", start);
    return rc;
}

void mk_repo_what_mock(char *buf, size_t size, size_t i, const mk_repo_mock_t *m)
{
    snprintf(buf, size, "put mock %zu (id \"%.40s\")", i, m->id != NULL ? m->id : "(null)");
}

void mk_repo_what_doc(char *buf, size_t size, size_t i, const mk_repo_doc_t *d)
{
    snprintf(buf, size, "put document %zu (%.30s \"%.40s\")", i,
             d->kind != NULL ? d->kind : "(null)", d->id != NULL ? d->id : "(null)");
}

int mk_repo_newer_schema(mk_err_t *err, const char *backend, int64_t version, int known)
{
    return mk_err_set(err, MK_ECONFLICT,
                      "%s: database schema version %lld is newer than this binary supports (%d); "
                      "upgrade mockarty or use another database",
                      backend, (long long)version, known);
}

int64_t mk_repo_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
