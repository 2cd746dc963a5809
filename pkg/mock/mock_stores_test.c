/* Which protocols take stores: gRPC, WebSocket and SSE mocks that extract or read stores are
 * refused naming the field; HTTP and GraphQL mocks keep them (and say so with uses_store, which
 * makes the answer wait for Redis). */
#include "mock/mock.h"
#include "testing/testing.h"

#include <stdio.h>
#include <string.h>

static mk_mock_t *parse(const char *text, mk_err_t *err)
{
    json_t *def = json_loads(text, 0, NULL);
    mk_mock_t *m = NULL;
    mk_mock_parse_opts_t opts = {.now_ms = 1000};
    if (def == NULL || mk_mock_parse(def, &opts, &m, err) != 0)
        m = NULL;
    json_decref(def);
    return m;
}

static void expect_refused(const char *text, const char *msg)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(text, &err);
    MK_CHECK(m == NULL);
    MK_CHECK_INT(err.code, MK_EINVAL);
    MK_CHECK_STR(err.msg, msg);
    mk_mock_unref(m);
}

#define GRPC "\"grpc\":{\"service\":\"shop.Cart\",\"method\":\"Add\"}"
#define WS   "\"socket\":{\"route\":\"/ws\"}"
#define WHY  ": stores ($.gS, $.cS, $.mS, $.increment, extract) are not available in "

static void test_grpc_refused(void)
{
    expect_refused("{" GRPC ",\"extract\":{\"gStore\":{\"n\":\"$.increment($.gS.n)\"}},"
                   "\"response\":{\"payload\":{\"n\":1}}}",
                   "extract" WHY "gRPC mocks");
    expect_refused("{" GRPC ",\"response\":{\"payload\":{\"n\":\"$.gS.n\"}}}",
                   "response.payload" WHY "gRPC mocks");
    expect_refused("{" GRPC ",\"oneOf\":{\"responses\":[{\"payload\":{}},{\"payload\":{},"
                   "\"headers\":{\"x-n\":\"$.mS.n\"}}]}}",
                   "oneOf.responses[1].headers" WHY "gRPC mocks");
    expect_refused("{" GRPC ",\"response\":{\"payload\":{}},\"webhooks\":[{\"url\":"
                   "\"http://127.0.0.1:9/h\",\"body\":{\"n\":\"$.cS.n\"}}]}",
                   "webhooks[0]" WHY "gRPC mocks");
    /* Without stores a gRPC mock still renders templates. */
    mk_err_t err = {0};
    mk_mock_t *m = parse("{" GRPC ",\"response\":{\"payload\":{\"id\":\"$.fake.UUID\"}}}", &err);
    MK_CHECK(m != NULL && !m->uses_store);
    mk_mock_unref(m);
}

static void test_socket_refused(void)
{
    expect_refused("{" WS ",\"extract\":{\"mStore\":{\"seen\":\"1\"}},\"response\":{}}",
                   "extract" WHY "WebSocket mocks");
    expect_refused("{" WS ",\"response\":{\"payload\":{\"n\":\"$.increment($.gS.n)\"}}}",
                   "response.payload" WHY "WebSocket mocks");
    expect_refused("{" WS ",\"response\":{\"sseEventChain\":{\"events\":[{\"data\":\"x\"},"
                   "{\"data\":{\"n\":\"$.cS.n\"}}]}}}",
                   "response.sseEventChain.events[1].data" WHY "WebSocket mocks");
}

/* SSE event data refuses stores where it is compiled (mock_sse.c); extract is refused here. */
static void test_sse_extract_refused(void)
{
    expect_refused("{\"sse\":{\"eventPath\":\"/e\"},\"extract\":{\"gStore\":{\"n\":"
                   "\"$.increment($.gS.n)\"}},\"response\":{\"sseEventChain\":{\"events\":"
                   "[{\"data\":\"x\"}]}}}",
                   "extract" WHY "SSE mocks");
}

static void test_graphql_and_http_keep_stores(void)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse("{\"graphql\":{\"field\":\"hits\"},\"extract\":{\"gStore\":{\"n\":"
                         "\"$.increment($.gS.n)\"}},\"response\":{\"payload\":{\"data\":{\"hits\":"
                         "\"$.gS.n\"}}}}",
                         &err);
    MK_CHECK(m != NULL && m->uses_store && m->nextracts == 1);
    mk_mock_unref(m);
    /* Only its graphqlErrors read a store: the answer must still wait for it. */
    m = parse("{\"graphql\":{\"field\":\"hits\"},\"response\":{\"payload\":{},\"graphqlErrors\":"
              "[{\"message\":\"$.gS.why\"}]}}",
              &err);
    MK_CHECK(m != NULL && m->uses_store);
    mk_mock_unref(m);
    m = parse("{\"http\":{\"route\":\"/n\"},\"extract\":{\"cStore\":{\"n\":\"1\"}},\"chainId\":"
              "\"c\",\"response\":{\"payload\":{\"n\":\"$.cS.n\"}}}",
              &err);
    MK_CHECK(m != NULL && m->uses_store);
    mk_mock_unref(m);
}

int main(void)
{
    MK_RUN(test_grpc_refused);
    MK_RUN(test_socket_refused);
    MK_RUN(test_sse_extract_refused);
    MK_RUN(test_graphql_and_http_keep_stores);
    return mk_testing_done();
}
