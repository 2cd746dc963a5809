/* Mock resolution and the HTTP answer for mock requests. */
#include "serve/serve.h"

#include "api/api.h"
#include "stores/stores.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mk_serve {
    mk_catalog_t *catalog;
    mk_journal_t *journal;
    mk_store_t *store;
};

mk_serve_t *mk_serve_new(mk_catalog_t *catalog, mk_journal_t *journal, mk_store_t *store)
{
    mk_serve_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->catalog = catalog;
    s->journal = journal;
    s->store = store;
    return s;
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
        if (!mk_mock_active(m, now_ms) || !conds_hold(m, req))
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

static void record(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                   const mk_mock_t *m, int status, int64_t now_ms)
{
    mk_journal_rec_t rec = {
        .ts_ms = now_ms,
        .namespace_ = ns,
        .mock_id = m ? mk_str_of(m->id) : (mk_str_t){"", 0},
        .method = view->method,
        .path = view->path,
        .query = view->query,
        .body = view->body,
        .headers = view->headers,
        .nheaders = view->nheaders,
        .status = status,
        .duration_ms = mk_httpd_req_elapsed_ms(req),
        .request_id = mk_httpd_req_id(req),
    };
    mk_journal_record(s->journal, mk_httpd_req_worker(req), &rec);
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
        json_pack("{s:s, s:s, s:s#, s:{s:s#, s:s#, s:s#}, s:o}", "error", msg, "code", "not_found",
                  "request_id", id.base, id.len, "request", "namespace", ns.base, ns.len, "method",
                  view->method.base, view->method.len, "path", path.base, path.len, "closest",
                  mk_serve_diagnose(snap, ns, path, view, now_ms));
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
 * released when the worker thread ends. */
typedef struct scratch_bufs {
    mk_buf_t bufs[2];
} scratch_bufs_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p)
{
    scratch_bufs_t *s = p;
    mk_buf_free(&s->bufs[0]);
    mk_buf_free(&s->bufs[1]);
    free(s);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_release);
}

static mk_buf_t *scratch(int which)
{
    static _Thread_local scratch_bufs_t *mine;
    static _Thread_local mk_buf_t fallback;
    if (mine == NULL) {
        pthread_once(&scratch_once, scratch_init);
        mine = calloc(1, sizeof *mine);
        if (mine == NULL) {
            mk_buf_free(&fallback);
            mk_buf_init(&fallback, MK_SERVE_MAX_RENDERED_BYTES);
            return &fallback;
        }
        mk_buf_init(&mine->bufs[0], MK_SERVE_MAX_RENDERED_BYTES);
        mk_buf_init(&mine->bufs[1], MK_SERVE_MAX_RENDERED_BYTES);
        pthread_setspecific(scratch_key, mine);
    }
    mk_buf_reset(&mine->bufs[which]);
    return &mine->bufs[which];
}

/* Runs the mock's extraction: each value rendered and written to its store, in order. */
static int extract(const mk_mock_t *m, mk_template_env_t *env, mk_stores_ctx_t *sctx, mk_err_t *err)
{
    for (size_t i = 0; i < m->nextracts; i++) {
        const mk_mock_extract_t *e = &m->extracts[i];
        mk_buf_t *val = scratch(1);
        int rc = mk_template_render(e->value, env, val, err);
        if (rc != 0)
            return rc;
        /* `$.increment` of this very key already stored the new value atomically; writing the
         * result back could overwrite a newer increment from another thread. */
        mk_template_store_t which;
        mk_str_t key;
        if (mk_template_increments(e->value, &which, &key) && which == e->store &&
            mk_str_eq_cstr(key, e->key))
            continue;
        rc = mk_stores_set(sctx, e->store, mk_str_of(e->key), (mk_str_t){val->data, val->len}, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Extraction, headers and body of a response that has templates. On success *body is the
 * rendered body (in a per-thread buffer, valid until the next request on this thread). */
static int render(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                  const mk_serve_result_t *res, mk_faker_rng_t *rng, int64_t now_ms, mk_str_t *body,
                  mk_err_t *err)
{
    const mk_mock_t *m = res->mock;
    const mk_mock_response_t *r = res->response;
    mk_stores_ctx_t sctx = {
        .store = s->store,
        .ns = ns,
        .chain_id = mk_str_of(m->chain_id),
        .mock_id = mk_str_of(m->id),
        .mock_seed = m->mstore,
    };
    mk_template_env_t env = {
        .req = view,
        .match = &res->match,
        .rng = rng,
        .now_ms = now_ms,
        .store_get = s->store ? mk_stores_get : NULL,
        .store_incr = s->store ? mk_stores_incr : NULL,
        .store_ud = &sctx,
    };
    int rc = s->store ? extract(m, &env, &sctx, err) : 0;
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (r->header_tpls == NULL || r->header_tpls[i] == NULL) {
            mk_httpd_add_header(req, r->headers[i].name, r->headers[i].value);
            continue;
        }
        mk_buf_t *val = scratch(1);
        rc = mk_template_render(r->header_tpls[i], &env, val, err);
        if (rc != 0)
            return rc;
        /* A value rendered from the request must not smuggle a header line in. */
        for (size_t j = 0; j < val->len; j++)
            if (val->data[j] == '\r' || val->data[j] == '\n')
                val->data[j] = ' ';
        mk_httpd_add_header(req, r->headers[i].name, (mk_str_t){val->data, val->len});
    }
    if (r->body_tpl == NULL) {
        *body = (mk_str_t){r->body, r->body_len};
        return 0;
    }
    mk_buf_t *out = scratch(0);
    rc = mk_template_render(r->body_tpl, &env, out, err);
    if (rc == MK_ETOOBIG)
        return mk_err_set(err, MK_EINTERNAL, "rendered response exceeds %u bytes",
                          MK_SERVE_MAX_RENDERED_BYTES);
    *body = (mk_str_t){out->data ? out->data : "", out->len};
    return rc;
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
    if (!mk_serve_resolve(snap, ns, path, view, now_ms, &rng, &res)) {
        status = respond_not_found(s, snap, req, view, ns, path, now_ms);
        goto out;
    }
    const mk_mock_response_t *r = res.response;
    mk_str_t body = {r->body, r->body_len};
    bool dynamic = res.mock->nextracts > 0 || r->body_tpl != NULL || r->header_tpls != NULL;
    if (dynamic) {
        mk_err_t err;
        if (render(s, req, view, ns, &res, &rng, now_ms, &body, &err) != 0) {
            status = mk_api_reply_error(req, err.code, err.msg);
            record(s, req, view, ns, res.mock, status, now_ms);
            goto out;
        }
    } else {
        for (size_t i = 0; i < r->nheaders; i++)
            mk_httpd_add_header(req, r->headers[i].name, r->headers[i].value);
    }
    mk_httpd_send_opts_t opts = {
        .delay_ms = mk_mock_pick_delay(r, &rng),
        .fault = (mk_httpd_fault_t)r->fault,
        .chunks = r->dribble_chunks,
        .chunks_ms = r->dribble_ms,
    };
    status = r->fault != MK_MOCK_FAULT_NONE ? 0 : r->status;
    /* Recorded before the answer leaves, so a client that reads the journal once it has its
     * answer finds the entry. */
    record(s, req, view, ns, res.mock, status, now_ms);
    /* The body is copied into the request here, so nothing from the snapshot outlives it. */
    mk_httpd_send(req, r->status, body, &opts);
out:
    mk_catalog_leave(s->catalog, reader);
    return status;
}
