/* Fuzzes a mock definition end to end through the public headers: parse (validation and compile),
 * to_json, the stored form and its reload, a route index over it, lookup and nearest, conditions
 * (eval and explain into small buffers), and rendering of every response and extract.
 * Input: the definition JSON, a NUL, the method, a NUL, the path (with ?query), a NUL, the body. */
#include "fuzz.h"
#include "mock/mock.h"
#include "mock/mock_sse.h"
#include "route/route.h"

#include <jansson.h>

/* An SSE mock's chain: each event rendered and framed (no bare line break may end up inside a
 * field), the schedule walked from the start and from every id. */
static void sse_chain(const mk_mock_sse_t *sse, mk_request_t *req, const mk_route_match_t *match)
{
    FZ_ASSERT(sse->nevents >= 1 && sse->nevents <= MK_MOCK_SSE_MAX_EVENTS);
    for (size_t i = 0; i < sse->nevents; i++) {
        const mk_mock_sse_event_t *e = &sse->events[i];
        if (e->tpl != NULL)
            fz_render(e->tpl, req, match, 1u << 16);
        mk_buf_t b;
        mk_buf_init(&b, 0);
        FZ_ASSERT(mk_mock_sse_format(&b, e, (mk_str_t){e->data, e->data_len}) == 0);
        FZ_ASSERT(b.len >= 2 && memcmp(b.data + b.len - 2, "\n\n", 2) == 0);
        for (size_t k = 0; k + 1 < b.len; k++) /* every line is a field: no CR, no empty line */
            FZ_ASSERT(b.data[k] != '\r' &&
                      (b.data[k] != '\n' || b.data[k + 1] != '\n' || k + 2 == b.len));
        mk_buf_free(&b);
    }
    for (size_t from = 0; from <= sse->nevents; from++) {
        mk_str_t last = {"", 0};
        if (from < sse->nevents && sse->events[from].id)
            last = mk_str_of(sse->events[from].id);
        mk_mock_sse_cursor_t c;
        if (!mk_mock_sse_start(sse, last, &c))
            continue;
        uint32_t wait;
        for (size_t n = 0; n < 3 * sse->nevents + 3 && mk_mock_sse_next(sse, &c, &wait); n++)
            FZ_ASSERT(wait <= MK_MOCK_MAX_DELAY_MS + sse->loop_delay_ms);
    }
}

static void serve(mk_mock_t *m, mk_route_index_t *idx, mk_str_t method, mk_str_t target,
                  mk_str_t body)
{
    const char *q = memchr(target.base, '?', target.len);
    mk_str_t path = target, query = {"", 0};
    if (q != NULL) {
        path.len = (size_t)(q - target.base);
        query = (mk_str_t){q + 1, target.len - path.len - 1};
    }
    fz_req_t r;
    fz_req_init(&r, method, path, query, body, MK_STR_LIT("v"));
    mk_route_iter_t it;
    mk_route_match_t match;
    mk_route_lookup(idx, method, path, &it);
    while (mk_route_next(&it, &match)) {
        FZ_ASSERT(match.value == m);
        for (size_t i = 0; i < m->nconds; i++) {
            char small[7], big[300];
            (void)mk_cond_eval(m->conds[i], &r.req);
            mk_cond_explain(m->conds[i], &r.req, small, sizeof small);
            mk_cond_explain(m->conds[i], &r.req, big, sizeof big);
            FZ_ASSERT(strlen(small) < sizeof small && strlen(big) < sizeof big);
        }
        mk_faker_rng_t rng;
        mk_faker_rng_seed(&rng, 1);
        const mk_mock_response_t *resp = mk_mock_pick_response(m, &rng);
        FZ_ASSERT(resp != NULL);
        FZ_ASSERT(mk_mock_pick_delay(resp, &rng) <= MK_MOCK_MAX_DELAY_MS);
        for (size_t i = 0; i < m->nresponses; i++) {
            const mk_mock_response_t *x = &m->responses[i];
            if (x->body_tpl != NULL)
                fz_render(x->body_tpl, &r.req, &match, 1u << 20);
            for (size_t h = 0; x->header_tpls != NULL && h < x->nheaders; h++)
                if (x->header_tpls[h] != NULL)
                    fz_render(x->header_tpls[h], &r.req, &match, 4096);
        }
        for (size_t i = 0; i < m->nextracts; i++)
            fz_render(m->extracts[i].value, &r.req, &match, 4096);
        if (m->sse != NULL)
            sse_chain(m->sse, &r.req, &match);
    }
    void *near[4];
    size_t n = mk_route_nearest(idx, method, path, near, 4);
    FZ_ASSERT(n <= 1 && (n == 0 || near[0] == m));
    mk_request_release(&r.req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_str_t parts[4];
    fz_split(data, size, parts, 4);
    json_t *def = json_loadb(parts[0].base, parts[0].len, 0, NULL);
    if (def == NULL)
        return 0;
    mk_mock_parse_opts_t opts = {.now_ms = 1700000000000, .created_at = 0};
    mk_mock_t *m = NULL, *again = NULL;
    mk_err_t err;
    int rc = mk_mock_parse(def, &opts, &m, &err);
    json_decref(def);
    if (rc != 0) {
        FZ_ASSERT(m == NULL && err.code == rc && err.msg[0] != '\0');
        return 0;
    }
    json_t *shown = mk_mock_to_json(m);
    FZ_ASSERT(shown != NULL);
    char *text = json_dumps(shown, JSON_COMPACT);
    FZ_ASSERT(text != NULL);
    free(text);
    json_decref(shown);

    /* The stored form reloads into the same definition. */
    json_t *stored = mk_mock_definition(m);
    FZ_ASSERT(stored != NULL);
    rc = mk_mock_load(stored, 3, 1700000000001, &again, &err);
    if (rc != 0)
        fprintf(stderr, "reload failed: %s\n", err.msg);
    FZ_ASSERT(rc == 0);
    json_t *stored2 = mk_mock_definition(again);
    FZ_ASSERT(json_equal(stored, stored2));
    json_decref(stored2);
    json_decref(stored);
    mk_mock_unref(again);

    mk_route_builder_t *b = mk_route_builder_new();
    FZ_ASSERT(b != NULL);
    rc = mk_route_builder_add(b, m->method, m->route, m, m->priority, m->created_at, &err);
    if (rc != 0)
        fprintf(stderr, "route of a valid mock refused: %s\n", err.msg);
    FZ_ASSERT(rc == 0);
    mk_route_index_t *idx = mk_route_builder_build(b);
    FZ_ASSERT(idx != NULL);
    (void)mk_mock_active(m, opts.now_ms);
    serve(m, idx, parts[1], parts[2], parts[3]);
    /* The route itself as the path: matches unless it has parameters or a wildcard. */
    serve(m, idx, MK_STR_LIT("GET"), mk_str_of(m->route), parts[3]);
    mk_route_index_free(idx);
    mk_mock_unref(m);
    return 0;
}
