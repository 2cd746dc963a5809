/* SOAP mock calls: on a miss of the HTTP mocks, a POST of an envelope to an endpoint of SOAP
 * mocks is resolved to a mock by its operation (one index probe, plus one for the catch-all);
 * its answer is then rendered like an HTTP mock's by serve.c. Malformed envelopes and calls that
 * no mock matches get a SOAP fault in the request's version. */
#include "serve/serve.h"

#include "mock/mock_soap.h"
#include "soap/soap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLOSEST 3

static bool soapish(const mk_request_t *view, mk_str_t *ct)
{
    if (!mk_str_eq_cstr(view->method, "POST"))
        return false;
    mk_str_t sa;
    if (mk_request_header(view, MK_STR_LIT("SOAPAction"), &sa))
        return true;
    if (!mk_request_header(view, MK_STR_LIT("Content-Type"), ct))
        return false;
    return mk_str_starts_with(*ct, "text/xml") || mk_str_starts_with(*ct, "application/soap+xml") ||
           mk_str_starts_with(*ct, "application/xml");
}

/* True when path is the endpoint of a SOAP mock of idx: its catch-all route is indexed, or a
 * mock near it has that endpoint. */
static bool is_endpoint(const mk_route_index_t *idx, mk_str_t path)
{
    char any[MK_MOCK_SOAP_MAX_ROUTE];
    if (mk_mock_soap_route(path, (mk_str_t){"", 0}, any, sizeof any) == 0)
        return false;
    mk_route_iter_t it;
    mk_route_match_t match;
    mk_route_lookup(idx, MK_STR_LIT(MK_MOCK_SOAP_METHOD), mk_str_of(any), &it);
    if (mk_route_next(&it, &match))
        return true;
    void *near[16];
    size_t n = mk_route_nearest(idx, MK_STR_LIT(MK_MOCK_SOAP_METHOD), mk_str_of(any), near, 16);
    for (size_t i = 0; i < n; i++) {
        const mk_mock_t *m = near[i];
        if (m->soap && m->soap->endpoint_len == path.len &&
            memcmp(m->route, path.base, path.len) == 0)
            return true;
    }
    return false;
}

typedef struct call {
    mk_soap_msg_t *msg;
    mk_soap_version_t version;
    mk_str_t op;
    char action[512];
} call_t;

static bool conds_hold(const mk_mock_t *m, mk_request_t *view)
{
    for (size_t i = 0; i < m->nconds; i++)
        if (!mk_cond_eval(m->conds[i], view))
            return false;
    return true;
}

static bool action_ok(const mk_mock_t *m, const call_t *c)
{
    return m->soap->action == NULL || strcmp(m->soap->action, c->action) == 0;
}

static bool matches(const mk_mock_t *m, const call_t *c, mk_request_t *view, int64_t now_ms)
{
    return m->soap != NULL && mk_mock_active(m, now_ms) && action_ok(m, c) && conds_hold(m, view) &&
           mk_mock_soap_xconds_hold(m->soap, c->msg);
}

/* The first mock at the operation's route, then at the endpoint's catch-all, that matches. */
static bool find(const mk_route_index_t *idx, mk_str_t endpoint, const call_t *c,
                 mk_request_t *view, int64_t now_ms, mk_faker_rng_t *rng, mk_serve_result_t *out)
{
    mk_str_t ops[2] = {c->op, {"", 0}};
    for (int k = 0; k < (c->op.len ? 2 : 1); k++) {
        char route[MK_MOCK_SOAP_MAX_ROUTE];
        if (mk_mock_soap_route(endpoint, ops[k], route, sizeof route) == 0)
            continue;
        mk_route_iter_t it;
        mk_route_lookup(idx, MK_STR_LIT(MK_MOCK_SOAP_METHOD), mk_str_of(route), &it);
        while (mk_route_next(&it, &out->match)) {
            mk_mock_t *m = out->match.value;
            if (!matches(m, c, view, now_ms) || !mk_mock_claim_use(m, now_ms))
                continue;
            out->mock = m;
            out->response = mk_mock_pick_response(m, rng);
            if (c->version == MK_SOAP_12 && m->soap->v12 != NULL)
                out->response = &m->soap->v12->responses[out->response - m->responses];
            return true;
        }
    }
    return false;
}

/* ---- faults ---- */

static void record(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns, mk_str_t op,
                   int status)
{
    mk_serve_record(mk_serve_journal(s), req, view,
                    (mk_journal_rec_t){
                        .namespace_ = ns,
                        .status = status,
                        .protocol = MK_STR_LIT("soap"),
                        .operation = op,
                        .response = MK_STR_LIT("fault"),
                    });
}

/* Sends a Client (1.1, HTTP 500) / Sender (1.2, HTTP 400) fault. */
static int send_fault(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                      mk_soap_version_t v, mk_str_t op, int status, const char *text,
                      const char *detail)
{
    mk_buf_t b;
    mk_buf_init(&b, MK_SOAP_MAX_BYTES);
    mk_soap_fault_t f = {"Client", text, NULL, detail};
    if (status == 0)
        status = v == MK_SOAP_12 ? 400 : 500;
    if (mk_soap_fault(v, &f, &b) != 0) {
        mk_buf_reset(&b);
        f.detail = NULL;
        mk_soap_fault(v, &f, &b);
    }
    record(s, req, view, ns, op, status);
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"),
                        v == MK_SOAP_12 ? MK_STR_LIT(MK_SOAP_CTYPE_12)
                                        : MK_STR_LIT(MK_SOAP_CTYPE_11));
    mk_httpd_respond(req, status, (mk_str_t){b.data ? b.data : "", b.len});
    mk_buf_free(&b);
    return status;
}

static int put_escaped(mk_buf_t *b, const char *s)
{
    return mk_soap_escape(b, mk_str_of(s));
}

/* Why m did not match, as <mock id=".." route=".."><failed>..</failed>...</mock>. */
static void explain(mk_buf_t *b, const mk_mock_t *m, const call_t *c, mk_request_t *view,
                    int64_t now_ms, const char *note)
{
    mk_buf_append_str(b, "<mock id=\"");
    put_escaped(b, m->id);
    mk_buf_append_str(b, "\" route=\"");
    put_escaped(b, m->route);
    mk_buf_append_str(b, "\">");
#define FAILED(text)                                                                               \
    do {                                                                                           \
        mk_buf_append_str(b, "<failed>");                                                          \
        put_escaped(b, text);                                                                      \
        mk_buf_append_str(b, "</failed>");                                                         \
    } while (0)
    if (note)
        FAILED(note);
    if (!mk_mock_active(m, now_ms))
        FAILED("mock is deleted, expired or used up");
    if (!action_ok(m, c)) {
        char line[1200];
        snprintf(line, sizeof line, "action: expected '%.500s', got '%.500s'", m->soap->action,
                 c->action);
        FAILED(line);
    }
    for (size_t i = 0; i < m->nconds; i++) {
        if (mk_cond_eval(m->conds[i], view))
            continue;
        char line[512];
        mk_cond_explain(m->conds[i], view, line, sizeof line);
        FAILED(line);
    }
    for (size_t i = 0; i < m->soap->nxconds; i++) {
        char line[512];
        mk_mock_soap_xcond_explain(m->soap, i, c->msg, line, sizeof line);
        if (line[0])
            FAILED(line);
    }
#undef FAILED
    mk_buf_append_str(b, "</mock>");
}

/* The near-miss detail: the mocks of this operation (and the catch-all), then other operations
 * of the endpoint. */
static char *closest(const mk_route_index_t *idx, mk_str_t endpoint, const call_t *c,
                     mk_request_t *view, int64_t now_ms)
{
    mk_buf_t b;
    mk_buf_init(&b, 64 * 1024);
    mk_buf_append_str(&b, "<closest xmlns=\"urn:mockarty:near-miss\">");
    size_t n = 0;
    const void *seen[MAX_CLOSEST];
    mk_str_t ops[2] = {c->op, {"", 0}};
    for (int k = 0; k < 2 && n < MAX_CLOSEST; k++) {
        char route[MK_MOCK_SOAP_MAX_ROUTE];
        if (mk_mock_soap_route(endpoint, ops[k], route, sizeof route) == 0)
            continue;
        mk_route_iter_t it;
        mk_route_match_t match;
        mk_route_lookup(idx, MK_STR_LIT(MK_MOCK_SOAP_METHOD), mk_str_of(route), &it);
        while (n < MAX_CLOSEST && mk_route_next(&it, &match)) {
            seen[n++] = match.value;
            explain(&b, match.value, c, view, now_ms, NULL);
        }
    }
    char any[MK_MOCK_SOAP_MAX_ROUTE];
    void *near[8];
    size_t nn = 0;
    if (n < MAX_CLOSEST && mk_mock_soap_route(endpoint, (mk_str_t){"", 0}, any, sizeof any))
        nn = mk_route_nearest(idx, MK_STR_LIT(MK_MOCK_SOAP_METHOD), mk_str_of(any), near, 8);
    for (size_t i = 0; i < nn && n < MAX_CLOSEST; i++) {
        const mk_mock_t *m = near[i];
        bool dup = m->soap == NULL;
        for (size_t k = 0; k < n && !dup; k++)
            dup = seen[k] == m;
        if (dup)
            continue;
        char note[600];
        snprintf(note, sizeof note, "operation: this mock answers %s, the call is %.*s",
                 m->route + m->soap->endpoint_len + 1, (int)c->op.len, c->op.base);
        seen[n++] = m;
        explain(&b, m, c, view, now_ms, note);
    }
    if (mk_buf_append_str(&b, "</closest>") != 0) {
        mk_buf_free(&b);
        return strdup("<closest xmlns=\"urn:mockarty:near-miss\">too long</closest>");
    }
    return mk_buf_take(&b);
}

int mk_serve_soap_resolve(mk_serve_t *s, const mk_snapshot_t *snap, mk_httpd_req_t *req,
                          mk_request_t *view, mk_str_t ns, mk_str_t path, int64_t now_ms,
                          mk_faker_rng_t *rng, mk_serve_result_t *out, int *status)
{
    mk_str_t ct = {"", 0};
    if (!soapish(view, &ct))
        return 0;
    const mk_route_index_t *idx = mk_snapshot_index(snap, ns);
    mk_str_t endpoint = path;
    if (endpoint.len > 1 && endpoint.base[endpoint.len - 1] == '/')
        endpoint.len--;
    if (idx == NULL || !is_endpoint(idx, endpoint))
        return 0;
    view->served_protocol = "soap";
    call_t c = {.version = mk_soap_version_of(ct)};
    mk_str_t sa = {NULL, 0};
    mk_request_header(view, MK_STR_LIT("SOAPAction"), &sa);
    mk_soap_action(ct, sa, c.action, sizeof c.action);
    mk_err_t err;
    int rc = mk_soap_parse(view->body.base, view->body.len, &c.msg, &err);
    if (rc != 0) {
        char text[sizeof err.msg + 40];
        snprintf(text, sizeof text, "malformed SOAP request: %s", err.msg);
        *status = send_fault(s, req, view, ns, c.version, (mk_str_t){"", 0},
                             rc == MK_ETOOBIG ? 413 : 0, text, NULL);
        return -1;
    }
    c.version = mk_soap_msg_version(c.msg);
    const char *op = mk_soap_msg_operation(c.msg);
    /* The operation outlives the message: the journal reads it when the answer is sent. */
    size_t ol = strlen(op);
    char *op_copy = mk_httpd_req_alloc(req, ol + 1);
    if (op_copy)
        memcpy(op_copy, op, ol + 1);
    c.op = (mk_str_t){op_copy ? op_copy : "", op_copy ? ol : 0};
    view->served_operation = c.op;
    mk_request_set_json(view, mk_soap_msg_body_json(c.msg));
    int result = 1;
    if (!find(idx, endpoint, &c, view, now_ms, rng, out)) {
        char text[1200];
        snprintf(text, sizeof text,
                 "no SOAP mock matched operation '%.*s'%s%.500s%s at %.*s in namespace '%.*s'",
                 (int)c.op.len, c.op.base, c.action[0] ? " (action '" : "", c.action,
                 c.action[0] ? "')" : "", (int)endpoint.len, endpoint.base, (int)ns.len, ns.base);
        char *detail =
            mk_serve_shows_details(s, view) ? closest(idx, endpoint, &c, view, now_ms) : NULL;
        *status = send_fault(s, req, view, ns, c.version, c.op, 0, text, detail);
        free(detail);
        result = -1;
    }
    mk_soap_msg_free(c.msg);
    return result;
}
