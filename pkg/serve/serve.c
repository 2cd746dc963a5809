/* Mock resolution and the HTTP answer for mock requests. */
#include "serve/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mk_serve {
    mk_catalog_t *catalog;
    mk_journal_t *journal;
};

mk_serve_t *mk_serve_new(mk_catalog_t *catalog, mk_journal_t *journal)
{
    mk_serve_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->catalog = catalog;
    s->journal = journal;
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
                      int64_t now_ms, mk_serve_result_t *out)
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
        out->response = mk_mock_pick_response(m);
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

json_t *mk_serve_diagnose(const mk_snapshot_t *snap, mk_str_t ns, mk_str_t path,
                          mk_request_t *req, int64_t now_ms)
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
    json_t *body = json_pack("{s:s, s:s, s:s#, s:{s:s#, s:s#, s:s#}, s:o}", "error", msg, "code",
                             "not_found", "request_id", id.base, id.len, "request", "namespace",
                             ns.base, ns.len, "method", view->method.base, view->method.len,
                             "path", path.base, path.len, "closest",
                             mk_serve_diagnose(snap, ns, path, view, now_ms));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json"));
    mk_httpd_respond(req, 404, text ? mk_str_of(text) : MK_STR_LIT("{\"code\":\"not_found\"}"));
    free(text);
    json_decref(body);
    record(s, req, view, ns, NULL, 404, now_ms);
    return 404;
}

int mk_serve_http(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                  mk_str_t path)
{
    unsigned reader = mk_httpd_req_worker(req);
    int64_t now_ms = mk_mock_now_ms();
    const mk_snapshot_t *snap = mk_catalog_enter(s->catalog, reader);
    mk_serve_result_t res;
    int status;
    if (!mk_serve_resolve(snap, ns, path, view, now_ms, &res)) {
        status = respond_not_found(s, snap, req, view, ns, path, now_ms);
        goto out;
    }
    const mk_mock_response_t *r = res.response;
    for (size_t i = 0; i < r->nheaders; i++)
        mk_httpd_add_header(req, r->headers[i].name, r->headers[i].value);
    /* The body is copied into the request here, so nothing from the snapshot outlives it. */
    mk_httpd_respond_after(req, r->status, (mk_str_t){r->body, r->body_len}, r->delay_ms);
    status = r->status;
    record(s, req, view, ns, res.mock, status, now_ms);
out:
    mk_catalog_leave(s->catalog, reader);
    return status;
}
