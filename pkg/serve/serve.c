/* Mock resolution and the HTTP answer for mock requests. */
#include "serve/serve.h"

#include "api/api.h"
#include "httpd/httpd_loop.h"
#include "serve/serve_graphql.h"
#include "serve/serve_pass.h"
#include "serve/serve_sse.h"
#include "serve/serve_proxy.h"
#include "stores/stores.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mk_serve {
    mk_catalog_t *catalog;
    mk_journal_t *journal;
    mk_store_t *store;
    mk_webhook_sender_t *hooks; /* per-mock webhooks; NULL: not sent */
    mk_serve_details_t details;
    mk_serve_may_read_cb may_read;
    void *may_read_ud;
    mk_serve_proxy_ctx_t proxy; /* proxy mocks and recording (serve_proxy.c) */
};

void mk_serve_set_webhooks(mk_serve_t *s, mk_webhook_sender_t *sender)
{
    s->hooks = sender;
}

void mk_serve_set_details(mk_serve_t *s, mk_serve_details_t mode, mk_serve_may_read_cb may_read,
                          void *ud)
{
    s->details = mode;
    s->may_read = may_read;
    s->may_read_ud = ud;
}

static bool shows_details(mk_serve_t *s, mk_request_t *view)
{
    if (s->details == MK_SERVE_DETAILS_PUBLIC)
        return true;
    return s->details == MK_SERVE_DETAILS_TOKEN && s->may_read != NULL &&
           s->may_read(s->may_read_ud, view);
}

bool mk_serve_shows_details(mk_serve_t *s, mk_request_t *view)
{
    return shows_details(s, view);
}

mk_catalog_t *mk_serve_catalog(mk_serve_t *s)
{
    return s->catalog;
}

mk_journal_t *mk_serve_journal(mk_serve_t *s)
{
    return s->journal;
}

mk_serve_t *mk_serve_new(mk_catalog_t *catalog, mk_journal_t *journal, mk_store_t *store)
{
    mk_serve_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->catalog = catalog;
    s->journal = journal;
    s->store = store;
    s->proxy.journal = journal;
    return s;
}

mk_serve_proxy_ctx_t *mk_serve_proxy_ctx(mk_serve_t *s)
{
    return &s->proxy;
}

void mk_serve_free(mk_serve_t *s)
{
    free(s);
}

static bool conds_hold(const mk_mock_t *m, mk_request_t *req)
{
    for (size_t i = 0; i < m->nconds; i++)
        if (!mk_cond_eval(m->conds[i], req))
            return false;
    return true;
}

bool mk_serve_resolve(const mk_snapshot_t *snap, mk_str_t ns, mk_str_t path, mk_request_t *req,
                      int64_t now_ms, mk_faker_rng_t *rng, mk_serve_result_t *out)
{
    const mk_route_index_t *idx = mk_snapshot_index(snap, ns);
    out->mock = NULL;
    out->response = NULL;
    if (idx == NULL)
        return false;
    mk_route_iter_t it;
    mk_route_lookup(idx, req->method, path, &it);
    while (mk_route_next(&it, &out->match)) {
        mk_mock_t *m = out->match.value;
        if (m->graphql != NULL) /* GraphQL mocks answer through mk_serve_graphql_try */
            continue;
        /* gRPC mocks (indexed under method GRPC) answer on the gRPC port only. */
        if (m->grpc_kind != MK_MOCK_GRPC_NONE || m->socket != NULL || m->soap != NULL ||
            !mk_mock_active(m, now_ms) || !conds_hold(m, req))
            continue;
        /* Another thread may take the last use between the check and here. */
        if (!mk_mock_claim_use(m, now_ms))
            continue;
        out->mock = m;
        out->response = mk_mock_pick_response(m, rng);
        return true;
    }
    return false;
}

static json_t *explain(mk_mock_t *m, mk_request_t *req, int64_t now_ms, const char *route_note)
{
    json_t *failed = json_array();
    if (route_note)
        json_array_append_new(failed, json_string(route_note));
    if (m->closed_at)
        json_array_append_new(failed, json_string("mock is deleted"));
    else if (m->expire_at && now_ms >= m->expire_at)
        json_array_append_new(failed, json_string("mock has expired (ttl)"));
    else if (m->use_limiter && atomic_load(&m->uses) >= m->use_limiter)
        json_array_append_new(failed, json_string("mock has reached its useLimiter"));
    for (size_t i = 0; i < m->nconds; i++) {
        if (mk_cond_eval(m->conds[i], req))
            continue;
        char buf[512];
        mk_cond_explain(m->conds[i], req, buf, sizeof buf);
        json_array_append_new(failed, json_string(buf));
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "id", m->id, "httpMethod", m->method, "route",
                     m->route, "failed", failed);
}

static bool listed(json_t *arr, const mk_mock_t *m)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(json_object_get(v, "id")), m->id) == 0)
            return true;
    }
    return false;
}

json_t *mk_serve_diagnose(const mk_snapshot_t *snap, mk_str_t ns, mk_str_t path, mk_request_t *req,
                          int64_t now_ms)
{
    json_t *closest = json_array();
    const mk_route_index_t *idx = mk_snapshot_index(snap, ns);
    if (idx == NULL)
        return closest;
    /* First the mocks whose route matched but whose conditions or limits did not hold. */
    mk_route_iter_t it;
    mk_route_match_t match;
    mk_route_lookup(idx, req->method, path, &it);
    while (json_array_size(closest) < 3 && mk_route_next(&it, &match))
        json_array_append_new(closest, explain(match.value, req, now_ms, NULL));
    if (json_array_size(closest) >= 3)
        return closest;
    /* Then mocks on nearby routes, same method first. */
    void *near[8];
    size_t n = mk_route_nearest(idx, req->method, path, near, 8);
    for (size_t i = 0; i < n && json_array_size(closest) < 3; i++) {
        mk_mock_t *m = near[i];
        if (listed(closest, m))
            continue;
        char note[256];
        bool same_method = strcmp(m->method, "ANY") == 0 || mk_str_eq_cstr(req->method, m->method);
        snprintf(note, sizeof note, "%s: %s %s does not match %.*s %.*s",
                 same_method ? "route" : "method and route", m->method, m->route,
                 (int)req->method.len, req->method.base, (int)path.len, path.base);
        json_array_append_new(closest, explain(m, req, now_ms, note));
    }
    return closest;
}

void mk_serve_record(mk_journal_t *j, mk_httpd_req_t *req, const mk_request_t *view,
                     mk_journal_rec_t rec)
{
    if (j == NULL)
        return;
    rec.method = view->method;
    rec.path = view->path;
    rec.query = view->query;
    if (rec.body.len == 0)
        rec.body = view->body;
    rec.headers = view->headers;
    rec.nheaders = view->nheaders;
    rec.duration_ms = mk_httpd_req_elapsed_ms(req);
    rec.request_id = mk_httpd_req_id(req);
    mk_journal_record(j, mk_httpd_req_worker(req), &rec);
}

static void record(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                   const mk_mock_t *m, int status, int64_t now_ms)
{
    mk_serve_record(s->journal, req, view,
                    (mk_journal_rec_t){
                        .ts_ms = now_ms,
                        .namespace_ = ns,
                        .mock_id = m ? mk_str_of(m->id) : (mk_str_t){"", 0},
                        .status = status,
                        .protocol = mk_str_of(view->served_protocol),
                        .operation = view->served_operation,
                    });
}

static int respond_not_found(mk_serve_t *s, const mk_snapshot_t *snap, mk_httpd_req_t *req,
                             mk_request_t *view, mk_str_t ns, mk_str_t path, int64_t now_ms)
{
    char msg[512];
    snprintf(msg, sizeof msg, "no mock matched %.*s %.*s in namespace '%.*s'",
             (int)view->method.len, view->method.base, (int)path.len, path.base, (int)ns.len,
             ns.base);
    mk_str_t id = mk_httpd_req_id(req);
    json_t *body =
        json_pack("{s:s, s:s, s:s#, s:{s:s#, s:s#, s:s#}}", "error", msg, "code", "not_found",
                  "request_id", id.base, id.len, "request", "namespace", ns.base, ns.len, "method",
                  view->method.base, view->method.len, "path", path.base, path.len);
    if (body && shows_details(s, view))
        json_object_set_new(body, "closest", mk_serve_diagnose(snap, ns, path, view, now_ms));
    else if (body && s->details == MK_SERVE_DETAILS_TOKEN)
        json_object_set_new(body, "hint",
                            json_string("send the API token to see which mocks came close"));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    record(s, req, view, ns, NULL, 404, now_ms);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json"));
    mk_httpd_respond(req, 404, text ? mk_str_of(text) : MK_STR_LIT("{\"code\":\"not_found\"}"));
    free(text);
    json_decref(body);
    return 404;
}

_Static_assert((int)MK_MOCK_FAULT_CONNECTION_RESET_BY_PEER == (int)MK_HTTPD_FAULT_RESET &&
                   (int)MK_MOCK_FAULT_EMPTY_RESPONSE == (int)MK_HTTPD_FAULT_EMPTY,
               "mock faults and httpd faults share their order");

/* The request's random state: from X-Mockarty-Seed when sent (same seed, same response), else
 * from a per-thread sequence. */
static void seed_rng(const mk_request_t *view, mk_faker_rng_t *rng)
{
    static _Thread_local uint64_t counter;
    mk_str_t v;
    if (mk_request_header(view, MK_STR_LIT("X-Mockarty-Seed"), &v) && v.len > 0 && v.len < 32) {
        char buf[32];
        memcpy(buf, v.base, v.len);
        buf[v.len] = '\0';
        char *end;
        unsigned long long seed = strtoull(buf, &end, 10);
        if (*end == '\0') {
            mk_faker_rng_seed(rng, seed);
            return;
        }
    }
    if (counter == 0)
        counter = (uint64_t)mk_mock_now_ms() ^ ((uint64_t)(uintptr_t)&counter << 16);
    mk_faker_rng_seed(rng, counter++);
}

/* Per-thread output buffers, reused across requests so rendering does not allocate once warm;
 * released when the worker thread ends: the body, the rendered header values, one extract
 * value. */
enum { BUF_BODY, BUF_HEADERS, BUF_EXTRACT, NBUFS };

typedef struct scratch_bufs {
    mk_buf_t bufs[NBUFS];
} scratch_bufs_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p)
{
    scratch_bufs_t *s = p;
    for (int i = 0; i < NBUFS; i++)
        mk_buf_free(&s->bufs[i]);
    free(s);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_release);
}

static mk_buf_t *scratch_get(int which, bool reset)
{
    static _Thread_local scratch_bufs_t *mine;
    static _Thread_local mk_buf_t fallback[NBUFS];
    if (mine == NULL) {
        pthread_once(&scratch_once, scratch_init);
        mine = calloc(1, sizeof *mine);
        if (mine == NULL) {
            mk_buf_free(&fallback[which]);
            mk_buf_init(&fallback[which], MK_SERVE_MAX_RENDERED_BYTES);
            return &fallback[which];
        }
        for (int i = 0; i < NBUFS; i++)
            mk_buf_init(&mine->bufs[i], MK_SERVE_MAX_RENDERED_BYTES);
        pthread_setspecific(scratch_key, mine);
    }
    if (reset)
        mk_buf_reset(&mine->bufs[which]);
    return &mine->bufs[which];
}

/* An emptied buffer. */
static mk_buf_t *scratch(int which)
{
    return scratch_get(which, true);
}

/* ---- store access of one rendering pass ----
 *
 * With the memory backend a pass calls the stores directly (they answer at once). With Redis a
 * request's store work is asynchronous: a pass renders everything with the values known so far,
 * collects the commands it still needs (reads of unknown keys, increments, writes whose value no
 * longer depends on anything unknown) into one pipelined batch, and the request waits for its
 * replies on the worker's loop; then the next pass starts over with more values known. Rendering
 * never branches on store values, so every pass makes the same store calls in the same order,
 * and an increment or write is sent exactly once (by its call index). The common mocks (a counter,
 * a chain login, a read) settle after one round trip. */

#define MAX_ROUNDS 16

typedef struct overlay {
    mk_str_t table; /* interned by the job */
    mk_str_t key;   /* borrowed from the mock */
    bool pending;   /* written or incremented by a command still unanswered or unsent */
    char *value;    /* owned */
    size_t len;
} overlay_t;

typedef struct known {
    mk_str_t table; /* interned by the job */
    mk_str_t key;
    bool found;
    mk_buf_t value;
} known_t;

typedef struct op_meta {
    size_t incr; /* INCR: its call index */
    char *copy;  /* SET value or INCR seed, owned until the batch is answered */
} op_meta_t;

typedef struct job job_t;

typedef struct mk_serve_pass {
    job_t *job;           /* NULL: synchronous stores through sctx */
    mk_stores_ctx_t sctx; /* of the mock being rendered (mk_serve_pass_mock) */
    bool pending;         /* something this pass read is not known yet */
    bool value_pending;   /* ... since the current extract value started */
    bool barrier;         /* a write could not be sent: later writes and increments wait */
    size_t nincr, nset;   /* call indexes */
    overlay_t *ov;
    size_t nov, capov;
} pass_t;

/* The table names a job's commands and values refer to: one copy each, alive with the job. */
typedef struct table_set {
    mk_str_t *v;
    size_t n, cap;
} table_set_t;

/* A request waiting for Redis; heap-owned, so it outlives a client that leaves. */
typedef struct job_guard {
    job_t *job; /* NULL once detached */
} job_guard_t;

struct job {
    mk_serve_t *s;
    mk_httpd_req_t *req; /* NULL once the request is gone */
    job_guard_t *guard;  /* in the request's pool */
    mk_httpd_loop_t *loop;
    const mk_serve_work_t *work;
    void *ud; /* owned: freed with work->free */
    char ns_buf[MK_STORE_NS_MAX + 1];
    mk_str_t ns;
    table_set_t tables;
    known_t *known;
    size_t nknown, capknown;
    struct incr_result {
        bool done;
        int64_t value;
    } * incrs;
    size_t capincrs;
    bool *sets; /* sent, by call index */
    size_t capsets;
    mk_store_op_t *ops; /* the batch being built, then in flight */
    op_meta_t *meta;
    size_t nops, capops, capmeta;
    int rounds;
};

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return false;
    memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
    *p = q;
    *cap = n;
    return true;
}

static overlay_t *overlay_find(pass_t *p, mk_str_t table, mk_str_t key)
{
    for (size_t i = p->nov; i-- > 0;)
        if (p->ov[i].table.base == table.base && mk_str_eq(p->ov[i].key, key))
            return &p->ov[i];
    return NULL;
}

/* Records what this pass knows of key: value (copied) or pending when value is NULL. */
static int overlay_put(pass_t *p, mk_str_t table, mk_str_t key, const char *value, size_t len)
{
    overlay_t *o = overlay_find(p, table, key);
    if (o == NULL) {
        if (!grow((void **)&p->ov, &p->capov, p->nov + 1, sizeof *p->ov))
            return MK_ENOMEM;
        o = &p->ov[p->nov++];
        o->table = table;
        o->key = key;
    }
    free(o->value);
    o->value = NULL;
    o->len = 0;
    o->pending = value == NULL;
    if (value != NULL) {
        o->value = malloc(len ? len : 1);
        if (o->value == NULL)
            return MK_ENOMEM;
        memcpy(o->value, value, len);
        o->len = len;
    }
    return 0;
}

static void pass_release(pass_t *p)
{
    for (size_t i = 0; i < p->nov; i++)
        free(p->ov[i].value);
    free(p->ov);
    p->ov = NULL;
    p->nov = p->capov = 0;
}

static known_t *known_find(job_t *j, mk_str_t table, mk_str_t key)
{
    for (size_t i = 0; i < j->nknown; i++)
        if (j->known[i].table.base == table.base && mk_str_eq(j->known[i].key, key))
            return &j->known[i];
    return NULL;
}

/* The table of which for the mock being rendered, interned in the job: tables compare by
 * pointer, and the batch's commands keep pointing at them. {NULL, 0} when out of memory. */
static mk_str_t job_table(pass_t *p, mk_template_store_t which)
{
    char buf[MK_STORE_TABLE_MAX + 16];
    size_t n = mk_stores_ctx_table(&p->sctx, which, buf, sizeof buf);
    table_set_t *t = &p->job->tables;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].len == n && memcmp(t->v[i].base, buf, n) == 0)
            return t->v[i];
    char *copy = malloc(n + 1);
    if (copy == NULL || !grow((void **)&t->v, &t->cap, t->n + 1, sizeof *t->v)) {
        free(copy);
        return (mk_str_t){NULL, 0};
    }
    memcpy(copy, buf, n + 1);
    t->v[t->n] = (mk_str_t){copy, n};
    return t->v[t->n++];
}

static mk_store_op_t *job_queue(job_t *j, mk_store_op_kind_t kind, mk_str_t table, mk_str_t key)
{
    if (!grow((void **)&j->ops, &j->capops, j->nops + 1, sizeof *j->ops) ||
        !grow((void **)&j->meta, &j->capmeta, j->nops + 1, sizeof *j->meta))
        return NULL;
    mk_store_op_t *op = &j->ops[j->nops];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->table = table;
    op->key = key;
    if (kind == MK_STORE_OP_GET)
        mk_buf_init(&op->out, MK_SERVE_MAX_RENDERED_BYTES);
    j->meta[j->nops] = (op_meta_t){0};
    j->nops++;
    return op;
}

static void job_release_ops(job_t *j)
{
    for (size_t i = 0; i < j->nops; i++) {
        mk_buf_free(&j->ops[i].out);
        free(j->meta[i].copy);
        j->meta[i].copy = NULL;
    }
    j->nops = 0;
}

static bool chainless(const pass_t *p, mk_template_store_t which)
{
    return which == MK_TEMPLATE_CHAIN && p->sctx.chain_id.len == 0;
}

static int pass_get(void *ud, mk_template_store_t which, mk_str_t key, mk_buf_t *out, mk_err_t *err)
{
    pass_t *p = ud;
    if (p->job == NULL)
        return mk_stores_get(&p->sctx, which, key, out, err);
    job_t *j = p->job;
    mk_str_t table = job_table(p, which);
    if (table.base == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    overlay_t *o = overlay_find(p, table, key);
    if (o != NULL && o->pending) {
        p->pending = p->value_pending = true;
        return MK_ENOTFOUND;
    }
    if (o != NULL)
        return mk_buf_append(out, o->value, o->len);
    known_t *k = known_find(j, table, key);
    if (k != NULL) {
        if (k->found)
            return mk_buf_append(out, k->value.data ? k->value.data : "", k->value.len);
        return which == MK_TEMPLATE_MOCK ? mk_stores_seed(&p->sctx, key, out) : MK_ENOTFOUND;
    }
    if (chainless(p, which))
        return MK_ENOTFOUND;
    p->pending = p->value_pending = true;
    for (size_t i = 0; i < j->nops; i++)
        if (j->ops[i].kind == MK_STORE_OP_GET && j->ops[i].table.base == table.base &&
            mk_str_eq(j->ops[i].key, key))
            return MK_ENOTFOUND;
    if (job_queue(j, MK_STORE_OP_GET, table, key) == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    return MK_ENOTFOUND;
}

static int pass_incr(void *ud, mk_template_store_t which, mk_str_t key, int64_t by, int64_t *result,
                     mk_err_t *err)
{
    pass_t *p = ud;
    if (p->job == NULL)
        return mk_stores_incr(&p->sctx, which, key, by, result, err);
    job_t *j = p->job;
    size_t idx = p->nincr++;
    mk_str_t table = job_table(p, which);
    if (table.base == NULL || !grow((void **)&j->incrs, &j->capincrs, idx + 1, sizeof *j->incrs))
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (chainless(p, which))
        return mk_err_set(err, MK_EINVAL, "cS: the mock has no chainId");
    if (j->incrs[idx].done) {
        char text[32];
        int n = snprintf(text, sizeof text, "%lld", (long long)j->incrs[idx].value);
        if (result)
            *result = j->incrs[idx].value;
        return overlay_put(p, table, key, text, (size_t)n);
    }
    if (result)
        *result = 0;
    p->pending = p->value_pending = true;
    if (overlay_put(p, table, key, NULL, 0) != 0)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (p->barrier)
        return 0;
    mk_buf_t seed;
    mk_buf_init(&seed, 64 * 1024);
    bool seeded = which == MK_TEMPLATE_MOCK && mk_stores_seed(&p->sctx, key, &seed) == 0;
    mk_store_op_t *op = job_queue(j, MK_STORE_OP_INCR, table, key);
    if (op == NULL) {
        mk_buf_free(&seed);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    op->by = by;
    j->meta[j->nops - 1].incr = idx;
    if (seeded) {
        op->value = (mk_str_t){seed.data, seed.len};
        j->meta[j->nops - 1].copy = mk_buf_take(&seed);
    }
    mk_buf_free(&seed);
    return 0;
}

/* An extract write. */
static int pass_set(pass_t *p, mk_template_store_t which, mk_str_t key, mk_str_t value,
                    mk_err_t *err)
{
    if (p->job == NULL)
        return mk_stores_set(&p->sctx, which, key, value, err);
    job_t *j = p->job;
    size_t idx = p->nset++;
    mk_str_t table = job_table(p, which);
    if (table.base == NULL || !grow((void **)&j->sets, &j->capsets, idx + 1, sizeof *j->sets))
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if (chainless(p, which))
        return mk_err_set(err, MK_EINVAL, "cStore: the mock has no chainId");
    int rc;
    if (j->sets[idx]) {
        rc = overlay_put(p, table, key, value.base, value.len);
    } else if (p->value_pending || p->barrier) {
        /* Its value is not final yet; writes and increments after it keep their order. */
        p->barrier = true;
        rc = overlay_put(p, table, key, NULL, 0);
    } else {
        mk_store_op_t *op = job_queue(j, MK_STORE_OP_SET, table, key);
        char *copy = op ? malloc(value.len ? value.len : 1) : NULL;
        if (copy == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        memcpy(copy, value.base, value.len);
        op->value = (mk_str_t){copy, value.len};
        j->meta[j->nops - 1].copy = copy;
        j->sets[idx] = true;
        rc = overlay_put(p, table, key, value.base, value.len);
    }
    return rc != 0 ? mk_err_set(err, rc, "out of memory") : 0;
}

/* Runs m's extraction: each value rendered and written to its store, in order. */
static int run_extracts(const mk_mock_t *m, mk_template_env_t *env, pass_t *p, mk_err_t *err)
{
    for (size_t i = 0; i < m->nextracts; i++) {
        const mk_mock_extract_t *e = &m->extracts[i];
        mk_buf_t *val = scratch(BUF_EXTRACT);
        p->value_pending = false;
        int rc = mk_template_render(e->value, env, val, err);
        if (rc != 0)
            return rc;
        /* `$.increment` of this very key already stored the new value atomically; writing
         * the result back could overwrite a newer increment from another request. */
        mk_template_store_t which;
        mk_str_t key;
        if (mk_template_increments(e->value, &which, &key) && which == e->store &&
            mk_str_eq_cstr(key, e->key))
            continue;
        rc = pass_set(p, e->store, mk_str_of(e->key), (mk_str_t){val->data, val->len}, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int mk_serve_pass_mock(mk_serve_pass_t *p, const mk_mock_t *m, mk_template_env_t *env,
                       mk_err_t *err)
{
    p->sctx.chain_id = mk_str_of(m->chain_id);
    p->sctx.mock_id = mk_str_of(m->id);
    p->sctx.mock_seed = m->mstore;
    p->sctx.nmemo = 0; /* what the previous mock wrote to its own stores is not this one's */
    bool stores = p->sctx.store != NULL;
    env->store_get = stores ? pass_get : NULL;
    env->store_incr = stores ? pass_incr : NULL;
    env->store_ud = p;
    return stores ? run_extracts(m, env, p, err) : 0;
}

/* ---- rendering ---- */

/* Where a templated header's value is in the header buffer. */
typedef struct header_val {
    size_t at, len;
} header_val_t;

/* Runs the mock's extraction (mk_serve_pass_mock), then renders the templated headers (into the
 * header buffer, positions in hv), the webhooks (into hooks) and the body. */
static int render_pass(const mk_mock_t *m, const mk_mock_response_t *r, mk_template_env_t *env,
                       pass_t *p, header_val_t *hv, mk_serve_hooks_t *hooks, mk_str_t *body,
                       mk_err_t *err)
{
    int rc = mk_serve_pass_mock(p, m, env, err);
    if (rc != 0)
        return rc;
    if (r->header_tpls != NULL) {
        mk_buf_t *hb = scratch(BUF_HEADERS);
        for (size_t i = 0; i < r->nheaders; i++) {
            if (r->header_tpls[i] == NULL)
                continue;
            hv[i].at = hb->len;
            rc = mk_template_render(r->header_tpls[i], env, hb, err);
            if (rc != 0)
                return rc;
            hv[i].len = hb->len - hv[i].at;
            /* A value rendered from the request must not smuggle a header line in. */
            for (size_t k = hv[i].at; k < hb->len; k++)
                if (hb->data[k] == '\r' || hb->data[k] == '\n')
                    hb->data[k] = ' ';
        }
    }
    /* Webhooks render with the request's values and stores, like the answer. */
    mk_serve_hooks_reset(hooks);
    int status = r->fault != MK_MOCK_FAULT_NONE ? 0 : r->status;
    rc = m->nwebhooks ? mk_serve_hooks_render(hooks, m, env, status, err) : 0;
    if (rc != 0)
        return rc;
    if (r->body_tpl == NULL) {
        *body = (mk_str_t){r->body, r->body_len};
        return 0;
    }
    mk_buf_t *out = scratch(BUF_BODY);
    rc = mk_template_render(r->body_tpl, env, out, err);
    if (rc == MK_ETOOBIG)
        return mk_err_set(err, MK_EINTERNAL, "rendered response exceeds %u bytes",
                          MK_SERVE_MAX_RENDERED_BYTES);
    *body = (mk_str_t){out->data ? out->data : "", out->len};
    return rc;
}

static void add_headers(mk_httpd_req_t *req, const mk_mock_response_t *r, const header_val_t *hv)
{
    mk_buf_t *hb = r->header_tpls != NULL ? scratch_get(BUF_HEADERS, false) : NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (r->header_tpls == NULL || r->header_tpls[i] == NULL)
            mk_httpd_add_header(req, r->headers[i].name, r->headers[i].value);
        else
            mk_httpd_add_header(req, r->headers[i].name,
                                (mk_str_t){hb->data + hv[i].at, hv[i].len});
    }
}

/* Sends the rendered answer (after its delay, or its fault) and journals it. */
static int answer(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                  const mk_mock_t *m, const mk_mock_response_t *r, const header_val_t *hv,
                  const mk_serve_hooks_t *hooks, mk_str_t body, mk_faker_rng_t *rng, int64_t now_ms)
{
    add_headers(req, r, hv);
    mk_httpd_send_opts_t opts = {
        .delay_ms = mk_mock_pick_delay(r, rng),
        .fault = (mk_httpd_fault_t)r->fault,
        .chunks = r->dribble_chunks,
        .chunks_ms = r->dribble_ms,
    };
    int status = r->fault != MK_MOCK_FAULT_NONE ? 0 : r->status;
    /* Journaled before the answer leaves, so a client that reads the journal once it has its
     * answer finds the entry. */
    record(s, req, view, ns, m, status, now_ms);
    /* A synchronous webhook holds the answer until its call is done. */
    if (hooks != NULL && mk_serve_hooks_fire(s, req, hooks, r->status, body, &opts))
        return status;
    /* The body is copied into the request here, so nothing from the snapshot outlives it. */
    mk_httpd_send(req, r->status, body, &opts);
    return status;
}

static int answer_error(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                        const mk_mock_t *m, const mk_err_t *err, int64_t now_ms)
{
    int status = mk_api_reply_error(req, err->code, err->msg);
    record(s, req, view, ns, m, status, now_ms);
    return status;
}

static header_val_t *header_vals(const mk_mock_response_t *r, header_val_t *stack, size_t nstack)
{
    if (r->header_tpls == NULL || r->nheaders <= nstack)
        return stack;
    return calloc(r->nheaders, sizeof(header_val_t));
}

/* ---- per-mock webhooks ----
 *
 * Mockarty's `webhooks`: HTTP calls made after a match through the webhook sender (its own
 * thread, retries with backoff). An async one is sent and forgotten. A synchronous one (the
 * default) holds the answer: the request waits, without blocking the loop, until every such call
 * has had its last attempt; the sender's thread then hands the request back to its worker's loop
 * through an eventfd, and the loop sends the answer. Only the HTTP kind is sent. */

/* One webhook of an answer: where its rendered url, header lines ("Name: value", each
 * NUL-terminated) and body lie in the set's buffer. */
struct mk_serve_hook_call {
    const mk_mock_t *mock;
    const mk_mock_webhook_t *w;
    int status; /* the answer's: decides the trigger */
    size_t url_at, hdr_at, hdr_len, body_at, body_len;
};

void mk_serve_hooks_init(mk_serve_hooks_t *h)
{
    memset(h, 0, sizeof *h);
    mk_buf_init(&h->buf, MK_SERVE_MAX_RENDERED_BYTES);
}

void mk_serve_hooks_reset(mk_serve_hooks_t *h)
{
    mk_buf_reset(&h->buf);
    h->n = 0;
}

void mk_serve_hooks_drop(mk_serve_hooks_t *h, size_t from, size_t to)
{
    if (to > h->n)
        to = h->n;
    if (from >= to)
        return;
    memmove(&h->calls[from], &h->calls[to], (h->n - to) * sizeof *h->calls);
    h->n -= to - from;
}

void mk_serve_hooks_free(mk_serve_hooks_t *h)
{
    mk_buf_free(&h->buf);
    free(h->calls);
    h->calls = NULL;
    h->n = h->cap = 0;
}

int mk_serve_hooks_render(mk_serve_hooks_t *h, const mk_mock_t *m, mk_template_env_t *env,
                          int status, mk_err_t *err)
{
    mk_buf_t *b = &h->buf;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->nwebhooks; i++) {
        const mk_mock_webhook_t *w = &m->webhooks[i];
        if (w->kind != MK_MOCK_WEBHOOK_HTTP)
            continue;
        if (!grow((void **)&h->calls, &h->cap, h->n + 1, sizeof *h->calls))
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        mk_serve_hook_call_t *c = &h->calls[h->n++];
        *c = (mk_serve_hook_call_t){.mock = m, .w = w, .status = status, .url_at = b->len};
        rc = w->url_tpl ? mk_template_render(w->url_tpl, env, b, err)
                        : mk_buf_append(b, w->url, strlen(w->url));
        rc = rc ? rc : mk_buf_append(b, "", 1);
        c->hdr_at = b->len;
        for (size_t k = 0; rc == 0 && k < w->nheaders; k++) {
            size_t at = b->len;
            rc = mk_buf_append(b, w->headers[k].name.base, w->headers[k].name.len);
            rc = rc ? rc : mk_buf_append(b, ": ", 2);
            if (rc == 0)
                rc = w->header_tpls && w->header_tpls[k]
                         ? mk_template_render(w->header_tpls[k], env, b, err)
                         : mk_buf_append(b, w->headers[k].value.base, w->headers[k].value.len);
            /* A value rendered from the request must not smuggle a header line in. */
            for (size_t x = at; rc == 0 && x < b->len; x++)
                if (b->data[x] == '\r' || b->data[x] == '\n')
                    b->data[x] = ' ';
            rc = rc ? rc : mk_buf_append(b, "", 1);
        }
        c->hdr_len = b->len - c->hdr_at;
        c->body_at = b->len;
        if (rc == 0 && w->body_tpl)
            rc = mk_template_render(w->body_tpl, env, b, err);
        else if (rc == 0 && w->body)
            rc = mk_buf_append(b, w->body, w->body_len);
        c->body_len = b->len - c->body_at;
    }
    /* The buffer's own failures (template errors have set err themselves). */
    if (rc == MK_ETOOBIG || rc == MK_ENOMEM)
        return mk_err_set(err, MK_EINTERNAL, "rendered webhooks exceed %u bytes or memory",
                          MK_SERVE_MAX_RENDERED_BYTES);
    return rc;
}

static bool hook_fires(const mk_mock_t *m, const mk_mock_webhook_t *w, int status)
{
    int64_t uses = atomic_load_explicit(&((mk_mock_t *)m)->uses, memory_order_relaxed);
    switch (w->trigger) {
    case MK_MOCK_WEBHOOK_ON_SUCCESS:
        return status > 0 && status < 400;
    case MK_MOCK_WEBHOOK_ON_ERROR:
        return status == 0 || status >= 400;
    case MK_MOCK_WEBHOOK_ON_FIRST_USE:
        return uses == 1;
    case MK_MOCK_WEBHOOK_ON_LAST_USE:
        return m->use_limiter > 0 && uses == m->use_limiter;
    default:
        return true;
    }
}

typedef struct hook_loop hook_loop_t;
typedef struct hook_wait hook_wait_t;

/* The request side of a waiting answer, in the request's pool. */
typedef struct hook_guard {
    hook_wait_t *wait; /* NULL once detached */
} hook_guard_t;

/* An answer held for synchronous webhooks; heap-owned by the worker's loop. */
struct hook_wait {
    hook_wait_t *next;
    hook_loop_t *hl;
    mk_httpd_req_t *req; /* NULL once the request is gone */
    hook_guard_t *guard;
    int remaining; /* calls not yet final (under hl->mu) */
    int status;
    mk_httpd_send_opts_t opts;
    size_t body_len;
    char body[];
};

/* One per worker loop: answers whose webhooks are done, handed over by the sender's thread. */
struct hook_loop {
    pthread_mutex_t mu;
    hook_wait_t *done;
    int efd;
    mk_httpd_watch_t *watch;
    mk_httpd_loop_t *loop;
};

static void wait_free(hook_wait_t *w)
{
    if (w->guard != NULL)
        w->guard->wait = NULL;
    free(w);
}

static void on_wait_req_gone(void *p)
{
    hook_guard_t *g = p;
    if (g->wait != NULL) {
        g->wait->req = NULL;
        g->wait->guard = NULL;
    }
}

/* On the loop: send the answers whose webhooks are done. */
static void hook_loop_drain(void *ud)
{
    hook_loop_t *hl = ud;
    uint64_t n;
    if (read(hl->efd, &n, sizeof n) < 0) {
        /* Nothing to read (EAGAIN): another wakeup took it; the list says what is done. */
    }
    pthread_mutex_lock(&hl->mu);
    hook_wait_t *list = hl->done;
    hl->done = NULL;
    pthread_mutex_unlock(&hl->mu);
    while (list != NULL) {
        hook_wait_t *w = list;
        list = w->next;
        if (w->req != NULL && !mk_httpd_loop_disposing(hl->loop))
            mk_httpd_send(w->req, w->status, (mk_str_t){w->body, w->body_len}, &w->opts);
        wait_free(w);
    }
}

/* The server is being freed; the sender was freed before, so no call is still out. */
static void hook_loop_dispose(void *data)
{
    hook_loop_t *hl = data;
    mk_httpd_watch_free(hl->watch);
    close(hl->efd);
    while (hl->done != NULL) {
        hook_wait_t *w = hl->done;
        hl->done = w->next;
        wait_free(w);
    }
    pthread_mutex_destroy(&hl->mu);
    free(hl);
}

static hook_loop_t *hook_loop_of(mk_serve_t *s, mk_httpd_req_t *req)
{
    mk_httpd_loop_t *loop = mk_httpd_req_loop(req);
    void **slot = loop ? mk_httpd_loop_slot(loop, &s->hooks, hook_loop_dispose) : NULL;
    if (slot == NULL)
        return NULL;
    if (*slot != NULL)
        return *slot;
    hook_loop_t *hl = calloc(1, sizeof *hl);
    if (hl == NULL)
        return NULL;
    hl->loop = loop;
    hl->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&hl->mu, NULL);
    hl->watch = hl->efd >= 0 ? mk_httpd_watch_new(loop, hl->efd, hook_loop_drain, NULL, hl) : NULL;
    if (hl->watch == NULL) {
        if (hl->efd >= 0)
            close(hl->efd);
        pthread_mutex_destroy(&hl->mu);
        free(hl);
        return NULL;
    }
    mk_httpd_watch_read(hl->watch, true);
    *slot = hl;
    return hl;
}

/* On the sender's thread, after every attempt of a synchronous webhook. */
static void on_sync_attempt(void *ud, const mk_webhook_attempt_t *a)
{
    hook_wait_t *w = ud;
    if (!a->final)
        return;
    hook_loop_t *hl = w->hl;
    pthread_mutex_lock(&hl->mu);
    bool last = --w->remaining == 0;
    if (last) {
        w->next = hl->done;
        hl->done = w;
    }
    pthread_mutex_unlock(&hl->mu);
    uint64_t one = 1;
    if (last && write(hl->efd, &one, sizeof one) < 0) {
        /* The counter is saturated: a wakeup is pending anyway. */
    }
}

bool mk_serve_hooks_fire(mk_serve_t *s, mk_httpd_req_t *req, const mk_serve_hooks_t *h,
                         int send_status, mk_str_t body, const mk_httpd_send_opts_t *opts)
{
    if (s->hooks == NULL || h == NULL)
        return false;
    const mk_buf_t *b = &h->buf;
    hook_wait_t *wait = NULL;
    int nsync = 0;
    for (size_t i = 0; i < h->n; i++) {
        const mk_serve_hook_call_t *c = &h->calls[i];
        const mk_mock_webhook_t *w = c->w;
        if (!hook_fires(c->mock, w, c->status))
            continue;
        const char *lines[64];
        size_t nl = 0;
        for (size_t at = c->hdr_at; at < c->hdr_at + c->hdr_len && nl < 63;) {
            lines[nl++] = b->data + at;
            at += strlen(b->data + at) + 1;
        }
        lines[nl] = NULL;
        mk_webhook_req_t hr = {
            .url = b->data + c->url_at,
            .method = w->method,
            .headers = lines,
            .body = b->data + c->body_at,
            .body_len = c->body_len,
            .retries = (int)w->retry_count,
            .backoff_ms = w->retry_delay_ms,
            .timeout_ms = w->timeout_ms,
        };
        /* Without a request (a WebSocket message) there is no answer to hold. */
        if (!w->async && req != NULL && wait == NULL) {
            hook_loop_t *hl = hook_loop_of(s, req);
            wait = hl ? calloc(1, sizeof *wait + body.len) : NULL;
            if (wait != NULL) {
                wait->hl = hl;
                wait->req = req;
                wait->status = send_status;
                wait->opts = *opts;
                wait->body_len = body.len;
                memcpy(wait->body, body.base, body.len);
                wait->remaining = 1; /* held until every call is queued */
            }
        }
        if (!w->async && wait != NULL) {
            hr.on_attempt = on_sync_attempt;
            hr.ud = wait;
            pthread_mutex_lock(&wait->hl->mu);
            wait->remaining++;
            pthread_mutex_unlock(&wait->hl->mu);
        }
        /* A webhook that cannot be queued (bad URL, queue full) is skipped: the answer is the
         * mock's either way. */
        if (mk_webhook_send(s->hooks, &hr, NULL) == 0) {
            nsync += hr.on_attempt != NULL;
        } else if (hr.on_attempt != NULL) {
            pthread_mutex_lock(&wait->hl->mu);
            wait->remaining--;
            pthread_mutex_unlock(&wait->hl->mu);
        }
    }
    if (wait == NULL)
        return false;
    if (nsync == 0) {
        free(wait);
        return false;
    }
    wait->guard = mk_httpd_req_alloc_guard(req, sizeof *wait->guard, on_wait_req_gone);
    wait->guard->wait = wait;
    /* Release the hold taken while queuing: the last call (maybe already done) hands it over. */
    mk_webhook_attempt_t released = {.final = true};
    on_sync_attempt(wait, &released);
    return true;
}

/* ---- requests waiting for Redis ---- */

static void job_free(job_t *j)
{
    if (j->guard != NULL)
        j->guard->job = NULL;
    job_release_ops(j);
    for (size_t i = 0; i < j->nknown; i++)
        mk_buf_free(&j->known[i].value);
    for (size_t i = 0; i < j->tables.n; i++)
        free((char *)j->tables.v[i].base);
    free(j->tables.v);
    free(j->known);
    free(j->incrs);
    free(j->sets);
    free(j->ops);
    free(j->meta);
    j->work->free(j->ud);
    free(j);
}

static void on_req_gone(void *p)
{
    job_guard_t *g = p;
    if (g->job != NULL) {
        g->job->req = NULL;
        g->job->guard = NULL;
    }
}

static job_t *job_new(mk_serve_t *s, mk_httpd_req_t *req, mk_str_t ns)
{
    mk_httpd_loop_t *loop = mk_httpd_req_loop(req);
    if (loop == NULL || ns.len >= MK_STORE_NS_MAX + 1)
        return NULL;
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->guard = mk_httpd_req_alloc_guard(req, sizeof *j->guard, on_req_gone);
    j->guard->job = j;
    j->s = s;
    j->req = req;
    j->loop = loop;
    memcpy(j->ns_buf, ns.base, ns.len);
    j->ns = (mk_str_t){j->ns_buf, ns.len};
    return j;
}

/* Takes the batch's answers into what the next pass knows. */
static int job_absorb(job_t *j)
{
    for (size_t i = 0; i < j->nops; i++) {
        mk_store_op_t *op = &j->ops[i];
        if (op->kind == MK_STORE_OP_INCR) {
            j->incrs[j->meta[i].incr] = (struct incr_result){true, op->result};
        } else if (op->kind == MK_STORE_OP_GET) {
            if (!grow((void **)&j->known, &j->capknown, j->nknown + 1, sizeof *j->known))
                return MK_ENOMEM;
            known_t *k = &j->known[j->nknown++];
            k->table = op->table;
            k->key = op->key;
            k->found = op->rc == 0;
            k->value = op->out; /* the buffer moves over */
            mk_buf_init(&op->out, 0);
        }
    }
    job_release_ops(j);
    return 0;
}

/* Hands the outcome to the work, unless the request is gone, and frees the job. */
static int job_finish(job_t *j, int rc, const mk_err_t *err)
{
    /* The answer goes out now: the request no longer needs its guard. */
    if (j->guard != NULL)
        j->guard->job = NULL;
    j->guard = NULL;
    int status = 0;
    if (j->req != NULL && !mk_httpd_loop_disposing(j->loop))
        status = j->work->finish(j->ud, j->req, rc, err);
    job_free(j);
    return status;
}

static bool job_step(job_t *j, int *status);

static void on_batch_done(void *ud, const mk_err_t *err)
{
    job_t *j = ud;
    int rc = job_absorb(j);
    if (j->req == NULL || mk_httpd_loop_disposing(j->loop)) {
        job_free(j);
        return;
    }
    mk_err_t e;
    if (err != NULL || rc != 0) {
        if (err != NULL)
            e = *err;
        else
            mk_err_set(&e, rc, "out of memory");
        job_finish(j, e.code < 0 ? e.code : MK_EIO, &e);
        return;
    }
    int status;
    job_step(j, &status);
}

/* Runs one pass: sends the commands it needs and waits (returns false), or finishes (returns
 * true with the status sent) and frees the job. */
static bool job_step(job_t *j, int *status)
{
    mk_err_t err;
    int rc;
    pass_t p = {.job = j, .sctx = {.store = j->s->store, .ns = j->ns}};
    if (++j->rounds > MAX_ROUNDS)
        rc = mk_err_set(&err, MK_EINTERNAL,
                        "the store operations of this answer did not settle in %d round trips",
                        MAX_ROUNDS);
    else
        rc = j->work->render(j->ud, &p, &err);
    bool pending = p.pending;
    pass_release(&p);
    if (rc == 0 && j->nops > 0) {
        rc = mk_store_submit(j->s->store, j->loop, j->ns, j->ops, j->nops, on_batch_done, j, &err);
        if (rc == 0)
            return false;
        job_release_ops(j);
    } else if (rc == 0 && pending) {
        rc = mk_err_set(&err, MK_EINTERNAL, "store values of this answer never became known");
    }
    *status = job_finish(j, rc, &err);
    return true;
}

bool mk_serve_stores_async(const mk_serve_t *s)
{
    return s->store != NULL && mk_store_is_async(s->store);
}

int mk_serve_work_now(mk_serve_t *s, mk_httpd_req_t *req, mk_str_t ns, const mk_serve_work_t *w,
                      void *ud)
{
    pass_t p = {.sctx = {.store = s->store, .ns = ns}};
    mk_err_t err;
    int rc = w->render(ud, &p, &err);
    pass_release(&p);
    return w->finish(ud, req, rc, &err);
}

bool mk_serve_work_start(mk_serve_t *s, mk_httpd_req_t *req, mk_str_t ns, const mk_serve_work_t *w,
                         void *ud, int *status)
{
    job_t *j = job_new(s, req, ns);
    if (j == NULL) {
        mk_err_t err;
        mk_err_set(&err, MK_ENOMEM, "out of memory");
        *status = w->finish(ud, req, MK_ENOMEM, &err);
        w->free(ud);
        return true;
    }
    j->work = w;
    j->ud = ud;
    return job_step(j, status);
}

/* Points s at a copy made at *p, and moves *p past it. */
static void keep_str(mk_str_t *s, char **p)
{
    if (s->len)
        memcpy(*p, s->base, s->len);
    s->base = *p;
    *p += s->len;
}

int mk_serve_match_keep(mk_route_match_t *match, char **names)
{
    /* The values too: GraphQL looks the route up in a buffer of its own (serve_graphql.c). */
    size_t len = match->wildcard.len;
    for (size_t i = 0; i < match->nparams; i++)
        len += match->names[i].len + match->values[i].len;
    char *p = *names = malloc(len + 1);
    if (p == NULL)
        return MK_ENOMEM;
    for (size_t i = 0; i < match->nparams; i++) {
        keep_str(&match->names[i], &p);
        keep_str(&match->values[i], &p);
    }
    keep_str(&match->wildcard, &p);
    return 0;
}

/* ---- the handler ---- */

/* A dynamic HTTP (or SOAP) answer as store work. */
typedef struct http_work {
    mk_serve_t *s;
    mk_request_t *view; /* the handler's, or own_view when the answer waits */
    mk_request_t own_view;
    mk_mock_t *mock; /* a reference when the answer waits */
    const mk_mock_response_t *resp;
    mk_route_match_t match;
    char *names; /* the match's parameter names when the answer waits */
    mk_str_t ns;
    char ns_buf[MK_STORE_NS_MAX + 1];
    int64_t now_ms;
    mk_faker_rng_t rng0; /* every pass starts from this state: same fakers every pass */
    mk_faker_rng_t rng;
    header_val_t stack[16];
    header_val_t *hv;
    mk_serve_hooks_t hooks;
    mk_str_t body;
} http_work_t;

static int http_render(void *ud, pass_t *p, mk_err_t *err)
{
    http_work_t *w = ud;
    w->rng = w->rng0;
    if (w->hv == NULL)
        w->hv = header_vals(w->resp, w->stack, 16);
    if (w->hv == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_template_env_t env = {
        .req = w->view,
        .match = &w->match,
        .rng = &w->rng,
        .now_ms = w->now_ms,
    };
    return render_pass(w->mock, w->resp, &env, p, w->hv, &w->hooks, &w->body, err);
}

static int http_finish(void *ud, mk_httpd_req_t *req, int rc, const mk_err_t *err)
{
    http_work_t *w = ud;
    if (rc != 0)
        return answer_error(w->s, req, w->view, w->ns, w->mock, err, w->now_ms);
    return answer(w->s, req, w->view, w->ns, w->mock, w->resp, w->hv, &w->hooks, w->body, &w->rng,
                  w->now_ms);
}

static void http_release(http_work_t *w)
{
    if (w->hv != w->stack)
        free(w->hv);
    mk_serve_hooks_free(&w->hooks);
}

static void http_free(void *ud)
{
    http_work_t *w = ud;
    http_release(w);
    mk_request_release(&w->own_view);
    mk_mock_unref(w->mock);
    free(w->names);
    free(w);
}

static const mk_serve_work_t http_work = {http_render, http_finish, http_free};

/* A dynamic answer: at once when its stores answer at once (memory) or it uses none, else on
 * the loop after the Redis round trips it needs. */
static int serve_dynamic(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                         const mk_serve_result_t *res, mk_faker_rng_t *rng, int64_t now_ms)
{
    http_work_t now = {
        .s = s,
        .view = view,
        .mock = res->mock,
        .resp = res->response,
        .match = res->match,
        .ns = ns,
        .now_ms = now_ms,
        .rng0 = *rng,
    };
    mk_serve_hooks_init(&now.hooks);
    if (!(res->mock->uses_store && mk_serve_stores_async(s))) {
        int status = mk_serve_work_now(s, req, ns, &http_work, &now);
        http_release(&now);
        return status;
    }
    /* The catalog snapshot is left while the request waits: keep what the passes read. */
    http_work_t *w = malloc(sizeof *w);
    if (w != NULL) {
        *w = now;
        mk_httpd_req_view(req, &w->own_view);
        w->own_view.served_protocol = view->served_protocol;
        w->own_view.served_matched = view->served_matched;
        w->own_view.served_operation = view->served_operation; /* in the request's pool */
        /* A protocol's JSON view of its body (SOAP: the operation's content) goes along. */
        if (view->served_protocol != NULL)
            mk_request_set_json(&w->own_view, json_incref(mk_request_json(view)));
        w->view = &w->own_view;
        w->mock = mk_mock_ref(res->mock);
        w->names = NULL;
        if (ns.len < sizeof w->ns_buf) {
            memcpy(w->ns_buf, ns.base, ns.len);
            w->ns = (mk_str_t){w->ns_buf, ns.len};
        }
    }
    if (w == NULL || ns.len >= sizeof w->ns_buf || mk_serve_match_keep(&w->match, &w->names)) {
        if (w != NULL)
            http_free(w);
        mk_err_t err;
        mk_err_set(&err, MK_ENOMEM, "out of memory");
        return answer_error(s, req, view, ns, res->mock, &err, now_ms);
    }
    int status;
    /* Answered later: count what the mock answers when its stores do. */
    if (!mk_serve_work_start(s, req, w->ns, &http_work, w, &status))
        status = res->response->status;
    return status;
}

int mk_serve_http(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                  mk_str_t path)
{
    unsigned reader = mk_httpd_req_worker(req);
    int64_t now_ms = mk_mock_now_ms();
    mk_faker_rng_t rng;
    seed_rng(view, &rng);
    const mk_snapshot_t *snap = mk_catalog_enter(s->catalog, reader);
    mk_serve_result_t res;
    int status;
    bool hit = mk_serve_resolve(snap, ns, path, view, now_ms, &rng, &res);
    /* SOAP calls on a miss (serve_soap.c): 1 resolved into res, -1 answered with a fault. */
    int soap =
        hit ? 0 : mk_serve_soap_resolve(s, snap, req, view, ns, path, now_ms, &rng, &res, &status);
    if (soap < 0)
        goto out;
    if (!hit && soap == 0) {
        if (!mk_serve_ws_try(s, snap, req, view, ns, path, &status) &&
            !mk_serve_graphql_try(s, snap, req, view, ns, path, now_ms, &status))
            status = respond_not_found(s, snap, req, view, ns, path, now_ms);
        goto out;
    }
    view->served_matched = true;
    if (res.mock->sse != NULL) { /* a GET route whose answer streams (serve_sse.c) */
        status = mk_serve_sse(s->journal, req, view, ns, res.mock, res.response, &res.match, &rng,
                              now_ms);
        goto out;
    }
    if (res.mock->proxy != NULL) {
        status = mk_serve_proxy(&s->proxy, req, view, ns, path, &res, &rng, now_ms);
        goto out;
    }
    const mk_mock_t *m = res.mock;
    const mk_mock_response_t *r = res.response;
    if (m->nextracts == 0 && r->body_tpl == NULL && r->header_tpls == NULL && m->nwebhooks == 0)
        status = answer(s, req, view, ns, m, r, NULL, NULL, (mk_str_t){r->body, r->body_len}, &rng,
                        now_ms);
    else
        status = serve_dynamic(s, req, view, ns, &res, &rng, now_ms);
out:
    mk_catalog_leave(s->catalog, reader);
    return status;
}
