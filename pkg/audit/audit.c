/* Audit rows as documents: the id is the time in ms (zero-padded) plus a sequence number, so the
 * repository's id order is time order and pruning stops at the first row it keeps. */
#include "audit/audit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIND          "audit"
#define DEFAULT_LIMIT 100
#define MAX_LIMIT     10000
#define PRUNE_BATCH   500

struct mk_audit {
    mk_repo_t *repo;
    int64_t retention_ms;
    atomic_uint seq;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

mk_audit_t *mk_audit_new(mk_repo_t *repo, int64_t retention_days)
{
    mk_audit_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->repo = repo;
    a->retention_ms = retention_days > 0 ? retention_days * 24 * 3600 * 1000 : 0;
    atomic_init(&a->seq, 0);
    return a;
}

void mk_audit_free(mk_audit_t *a)
{
    free(a);
}

static const char *s(const char *v)
{
    return v ? v : "";
}

int mk_audit_record(mk_audit_t *a, const mk_audit_entry_t *e, mk_err_t *err)
{
    int64_t at = e->at_ms ? e->at_ms : now_ms();
    char id[48], when[32];
    snprintf(id, sizeof id, "%013lld-%08x", (long long)at,
             atomic_fetch_add(&a->seq, 1) & 0xffffffffu);
    format_time(at, when);
    json_t *doc = json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "id", id, "at", when,
        "at_ms", (json_int_t)at, "actor", s(e->actor), "actor_id", s(e->actor_id), "credential",
        s(e->credential), "action", s(e->action), "namespace", s(e->namespace_), "kind", s(e->kind),
        "object_id", s(e->object_id), "status", e->status, "request_id", s(e->request_id));
    if (doc && e->summary)
        json_object_set(doc, "summary", e->summary);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return mk_err_set(err, MK_ENOMEM, "audit: out of memory");
    mk_repo_doc_t row = {KIND, id, s(e->namespace_), text, at};
    int rc = mk_repo_put_docs(a->repo, &row, 1, err);
    free(text);
    return rc;
}

typedef struct query {
    const mk_audit_filter_t *f;
    json_t **ring; /* the newest `limit` matches */
    size_t limit, n;
} query_t;

static bool str_field_is(json_t *row, const char *key, const char *want)
{
    return strcmp(s(json_string_value(json_object_get(row, key))), want) == 0;
}

static int query_one(void *ud, const mk_repo_doc_t *doc)
{
    query_t *q = ud;
    const mk_audit_filter_t *f = q->f;
    if (f->since_ms && doc->updated_at && doc->updated_at < f->since_ms)
        return 0;
    if (f->namespace_ && strcmp(s(doc->namespace_), f->namespace_) != 0)
        return 0;
    if (f->allowed && !f->allowed(f->allowed_ud, s(doc->namespace_)))
        return 0;
    json_t *row = json_loads(doc->json, 0, NULL);
    if (row == NULL)
        return 0;
    bool keep =
        (!f->since_ms || json_integer_value(json_object_get(row, "at_ms")) >= f->since_ms) &&
        (!f->actor || str_field_is(row, "actor", f->actor) ||
         str_field_is(row, "actor_id", f->actor)) &&
        (!f->action || strncmp(s(json_string_value(json_object_get(row, "action"))), f->action,
                               strlen(f->action)) == 0);
    if (!keep) {
        json_decref(row);
        return 0;
    }
    size_t slot = q->n++ % q->limit;
    json_decref(q->ring[slot]);
    q->ring[slot] = row;
    return 0;
}

int mk_audit_query(mk_audit_t *a, const mk_audit_filter_t *f, json_t **out, mk_err_t *err)
{
    query_t q = {.f = f, .limit = f->limit ? f->limit : DEFAULT_LIMIT};
    if (q.limit > MAX_LIMIT)
        q.limit = MAX_LIMIT;
    *out = NULL;
    q.ring = calloc(q.limit, sizeof *q.ring);
    if (q.ring == NULL)
        return mk_err_set(err, MK_ENOMEM, "audit: out of memory");
    int rc = mk_repo_list_docs(a->repo, KIND, NULL, query_one, &q, err);
    json_t *list = rc == 0 ? json_array() : NULL;
    size_t kept = q.n < q.limit ? q.n : q.limit;
    for (size_t i = 0; list && i < kept; i++) /* newest first */
        json_array_append(list, q.ring[(q.n - 1 - i) % q.limit]);
    for (size_t i = 0; i < q.limit; i++)
        json_decref(q.ring[i]);
    free(q.ring);
    *out = list;
    return rc;
}

typedef struct prune {
    int64_t cutoff;
    char **ids;
    size_t n;
} prune_t;

static int prune_one(void *ud, const mk_repo_doc_t *doc)
{
    prune_t *p = ud;
    if (atoll(doc->id) >= p->cutoff || p->n == PRUNE_BATCH)
        return 1; /* ids are in time order: nothing older follows */
    p->ids[p->n] = strdup(doc->id);
    return p->ids[p->n++] ? 0 : MK_ENOMEM;
}

int64_t mk_audit_prune(mk_audit_t *a, int64_t now, mk_err_t *err)
{
    if (a->retention_ms == 0)
        return 0;
    int64_t total = 0;
    char *ids[PRUNE_BATCH];
    for (;;) {
        prune_t p = {now - a->retention_ms, ids, 0};
        int rc = mk_repo_list_docs(a->repo, KIND, NULL, prune_one, &p, err);
        if (rc < 0 && p.n == 0)
            return rc;
        if (p.n)
            rc = mk_repo_delete_docs(a->repo, KIND, (const char *const *)ids, p.n, err);
        for (size_t i = 0; i < p.n; i++)
            free(ids[i]);
        if (rc < 0)
            return rc;
        total += (int64_t)p.n;
        if (p.n < PRUNE_BATCH)
            return total;
    }
}
