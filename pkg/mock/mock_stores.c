/* Which protocols serve stores: a mock of a protocol whose server renders without them (gRPC,
 * WebSocket, SSE) is refused when it extracts or reads stores, rather than served with its
 * stores silently left out. HTTP, SOAP and GraphQL answers go through serve.c's store passes.
 * SSE event data refuses store templates where it is compiled (mock_sse.c); this catches the
 * mock's other fields (extract, webhooks). */
#include "mock/mock_internal.h"

#include <stdio.h>

static bool is_grpc(const mk_mock_t *m)
{
    return m->grpc_kind != MK_MOCK_GRPC_NONE;
}

static bool is_socket(const mk_mock_t *m)
{
    return m->socket != NULL;
}

static bool is_sse(const mk_mock_t *m)
{
    return m->sse != NULL;
}

static const struct {
    bool (*is)(const mk_mock_t *m);
    const char *name;
} storeless[] = {
    {is_grpc, "gRPC"},
    {is_socket, "WebSocket"},
    {is_sse, "SSE"},
};

static bool any_uses_store(mk_template_t *const *tpls, size_t n)
{
    for (size_t i = 0; tpls != NULL && i < n; i++)
        if (tpls[i] != NULL && mk_template_uses_store(tpls[i]))
            return true;
    return false;
}

/* The first field of m that uses a store, into buf. */
static const char *store_field(const mk_mock_t *m, char *buf, size_t size)
{
    if (m->nextracts > 0)
        return "extract";
    for (size_t i = 0; i < m->nresponses; i++) {
        const mk_mock_response_t *r = &m->responses[i];
        const char *part = r->body_tpl && mk_template_uses_store(r->body_tpl) ? "payload"
                           : any_uses_store(r->header_tpls, r->nheaders)      ? "headers"
                                                                              : NULL;
        if (part == NULL)
            continue;
        if (m->nresponses == 1)
            snprintf(buf, size, "response.%s", part);
        else
            snprintf(buf, size, "oneOf.responses[%zu].%s", i, part);
        return buf;
    }
    for (size_t i = 0; i < m->nwebhooks; i++) {
        const mk_mock_webhook_t *w = &m->webhooks[i];
        if ((w->url_tpl && mk_template_uses_store(w->url_tpl)) ||
            (w->body_tpl && mk_template_uses_store(w->body_tpl)) ||
            any_uses_store(w->header_tpls, w->nheaders)) {
            snprintf(buf, size, "webhooks[%zu]", i);
            return buf;
        }
    }
    return "response";
}

int mk_mock_stores_check(const mk_mock_t *m, mk_err_t *err)
{
    if (!m->uses_store)
        return 0;
    for (size_t i = 0; i < sizeof storeless / sizeof *storeless; i++) {
        if (!storeless[i].is(m))
            continue;
        char buf[64];
        return mk_err_set(err, MK_EINVAL,
                          "%s: stores ($.gS, $.cS, $.mS, $.increment, extract) are not available "
                          "in %s mocks",
                          store_field(m, buf, sizeof buf), storeless[i].name);
    }
    return 0;
}
