/* WebSocket mocks: the socket context compiles into a route under method WS (event
 * percent-encoded, catch-all at %2A), conditions on the message, replies with chains and close
 * codes; bad definitions name their field; message keys and route encoding. */
#include "mock/mock.h"
#include "mock/mock_socket.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mk_mock_t *parse(const char *text, mk_err_t *err)
{
    json_error_t jerr;
    json_t *def = json_loads(text, 0, &jerr);
    if (def == NULL) {
        snprintf(err->msg, sizeof err->msg, "bad test JSON: %s", jerr.text);
        return NULL;
    }
    mk_mock_t *m = NULL;
    mk_mock_parse_opts_t opts = {.now_ms = 1700000000000};
    if (mk_mock_parse(def, &opts, &m, err) != 0)
        m = NULL;
    json_decref(def);
    return m;
}

static void test_event_mock(void)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse("{\"id\":\"w1\",\"pathPrefix\":\"/shop/\",\"socket\":{\"namespace\":"
                         "\"/chat/\",\"event\":\"room:join/1\",\"serverName\":\"srv\","
                         "\"conditions\":[{\"path\":\"$.body.room\",\"assertAction\":\"equals\","
                         "\"value\":\"lobby\"}]},"
                         "\"response\":{\"payload\":{\"ok\":\"$.req.room\"},\"delay\":5,"
                         "\"closeCode\":4001,\"error\":\"bye\",\"sseEventChain\":{\"events\":["
                         "{\"data\":\"plain\",\"delay\":100},{\"eventName\":\"typing\",\"data\":"
                         "{\"n\":1}},{\"data\":{\"id\":\"$.fake.UUID\"}}],\"loop\":true,"
                         "\"loopDelay\":50,\"maxLoops\":4}}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    MK_CHECK_STR(m->method, MK_MOCK_WS_METHOD);
    MK_CHECK_STR(m->route, "/shop/chat/room%3Ajoin%2F1");
    MK_CHECK_INT(m->nconds, 1);
    const mk_mock_socket_t *s = m->socket;
    MK_CHECK(s != NULL);
    MK_CHECK_STR(s->endpoint, "/shop/chat");
    MK_CHECK_STR(s->event, "room:join/1");
    MK_CHECK_STR(s->server_name, "srv");
    MK_CHECK_INT(s->nreplies, 1);
    const mk_mock_socket_reply_t *r = &s->replies[0];
    MK_CHECK(r->has_payload);
    MK_CHECK_INT(r->close_code, 4001);
    MK_CHECK_STR(r->close_reason, "bye");
    MK_CHECK_INT(r->nchain, 3);
    MK_CHECK_STR(r->chain[0].text, "plain");
    MK_CHECK_INT(r->chain[0].delay_ms, 100);
    MK_CHECK(r->chain[0].tpl == NULL && r->chain[1].tpl == NULL && r->chain[2].tpl != NULL);
    MK_CHECK_STR(r->chain[1].text, "{\"event\":\"typing\",\"data\":{\"n\":1}}");
    MK_CHECK(r->loop);
    MK_CHECK_INT(r->loop_delay_ms, 50);
    MK_CHECK_INT(r->max_loops, 4);

    /* The condition reads the message: "$.body.room" is "$.room". */
    mk_request_t req;
    mk_request_init(&req);
    req.method = MK_STR_LIT("WS");
    req.body = MK_STR_LIT("{\"event\":\"room:join/1\",\"room\":\"lobby\"}");
    MK_CHECK(mk_cond_eval(m->conds[0], &req));
    mk_request_release(&req);
    mk_request_init(&req);
    req.body = MK_STR_LIT("{\"room\":\"other\"}");
    MK_CHECK(!mk_cond_eval(m->conds[0], &req));
    mk_request_release(&req);

    /* The stored definition reloads into the same mock. */
    json_t *stored = mk_mock_definition(m);
    mk_mock_t *again = NULL;
    MK_CHECK_INT(mk_mock_load(stored, 0, 0, &again, &err), 0);
    MK_CHECK(again && again->socket && strcmp(again->route, m->route) == 0 &&
             again->socket->replies[0].nchain == 3);
    mk_mock_unref(again);
    json_decref(stored);
    mk_mock_unref(m);
}

static void test_defaults_and_catch_all(void)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse("{\"socket\":{},\"response\":{\"payload\":\"pong\"}}", &err);
    MK_CHECK(m && strcmp(m->route, "/ws/%2A") == 0 && m->socket->event == NULL);
    mk_mock_unref(m);
    m = parse("{\"socket\":{\"event\":\"*\",\"namespace\":\"/\"},\"response\":{}}", &err);
    MK_CHECK(m && strcmp(m->route, "/%2A") == 0 && !m->socket->replies[0].has_payload);
    mk_mock_unref(m);
    /* oneOf: one reply per response. */
    m = parse("{\"socket\":{\"event\":\"e\"},\"oneOf\":{\"responses\":[{\"payload\":1},"
              "{\"closeCode\":1000}]}}",
              &err);
    MK_CHECK(m && m->nresponses == 2 && m->socket->nreplies == 2 &&
             m->socket->replies[1].close_code == 1000);
    mk_mock_unref(m);
    /* The Go SDK sends every context, unused ones empty: the one in use decides. */
    m = parse("{\"http\":{},\"grpc\":{},\"graphql\":{},\"soap\":{},\"sse\":{},"
              "\"socket\":{\"event\":\"e\"},\"response\":{\"payload\":1,"
              "\"sseEventChain\":{}}}",
              &err);
    MK_CHECK(m && m->socket && strcmp(m->route, "/ws/e") == 0 && m->socket->replies[0].nchain == 0);
    if (m == NULL)
        fprintf(stderr, "  %s\n", err.msg);
    mk_mock_unref(m);
    m = parse("{\"http\":{\"route\":\"/x\"},\"grpc\":{},\"socket\":{},\"response\":{}}", &err);
    MK_CHECK(m && m->socket == NULL && strcmp(m->route, "/x") == 0);
    mk_mock_unref(m);
    /* An HTTP mock has no socket context. */
    m = parse("{\"http\":{\"route\":\"/x\"},\"socket\":{},\"response\":{}}", &err);
    MK_CHECK(m && m->socket == NULL && strcmp(m->method, "ANY") == 0);
    mk_mock_unref(m);
}

static void expect_error(const char *text, const char *needle)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(text, &err);
    MK_CHECK(m == NULL);
    bool named = strstr(err.msg, needle) != NULL;
    MK_CHECK(named);
    if (!named)
        fprintf(stderr, "  error \"%s\" does not name \"%s\"\n", err.msg, needle);
    mk_mock_unref(m);
}

static void test_refusals(void)
{
    expect_error("{\"socket\":\"x\",\"response\":{}}", "socket: must be an object");
    expect_error("{\"socket\":{\"namespace\":\"ws\"},\"response\":{}}", "socket.namespace");
    expect_error("{\"socket\":{\"namespace\":\"/ws/:id\"},\"response\":{}}", "socket.namespace");
    expect_error("{\"socket\":{\"namespace\":\"/ws/*\"},\"response\":{}}", "socket.namespace");
    expect_error("{\"socket\":{\"event\":7},\"response\":{}}", "socket.event: must be a string");
    expect_error("{\"socket\":{\"conditions\":{}},\"response\":{}}",
                 "socket.conditions: must be an array");
    expect_error("{\"socket\":{\"conditions\":[{\"path\":\"$.a\",\"assertAction\":\"nope\"}]},"
                 "\"response\":{}}",
                 "socket.conditions[0]");
    expect_error("{\"socket\":{},\"response\":{\"closeCode\":1005}}", "response.closeCode");
    expect_error("{\"socket\":{},\"response\":{\"closeCode\":999}}", "response.closeCode");
    expect_error("{\"socket\":{},\"response\":{\"sseEventChain\":[]}}",
                 "response.sseEventChain: must be an object");
    expect_error("{\"socket\":{},\"response\":{\"sseEventChain\":{\"events\":[1]}}}",
                 "response.sseEventChain.events[0]");
    expect_error("{\"socket\":{},\"response\":{\"sseEventChain\":{\"events\":[{\"delay\":-1}]}}}",
                 "response.sseEventChain.events[0].delay");
    expect_error("{\"socket\":{},\"response\":{\"sseEventChain\":{\"loop\":true,"
                 "\"events\":[{\"data\":1}]}}}",
                 "at least 10 ms");
    expect_error("{\"socket\":{},\"response\":{\"sseEventChain\":{\"events\":[{\"data\":"
                 "\"$.fake.NoSuchFaker\"}]}}}",
                 "response.sseEventChain.events[0].data");
    char big[400];
    snprintf(big, sizeof big, "{\"socket\":{\"event\":\"%0300d\"},\"response\":{}}", 0);
    expect_error(big, "socket.event: longer than 256");
}

static void test_keys_and_routes(void)
{
    json_t *j = json_loads("{\"event\":\"chat\",\"x\":1}", 0, NULL);
    mk_str_t key;
    MK_CHECK(mk_mock_socket_key(j, MK_STR_LIT("ignored"), true, &key) &&
             mk_str_eq_cstr(key, "chat"));
    json_decref(j);
    /* Not an object with a string event: the whole text, and nothing for binary. */
    j = json_loads("{\"event\":3}", 0, NULL);
    MK_CHECK(mk_mock_socket_key(j, MK_STR_LIT("{\"event\":3}"), true, &key) &&
             mk_str_eq_cstr(key, "{\"event\":3}"));
    MK_CHECK(!mk_mock_socket_key(j, MK_STR_LIT("{\"event\":3}"), false, &key));
    json_decref(j);
    MK_CHECK(mk_mock_socket_key(NULL, MK_STR_LIT("hello"), true, &key) &&
             mk_str_eq_cstr(key, "hello"));
    char text[300];
    memset(text, 'a', sizeof text);
    MK_CHECK(!mk_mock_socket_key(NULL, (mk_str_t){text, 257}, true, &key));
    MK_CHECK(mk_mock_socket_key(NULL, (mk_str_t){text, 256}, true, &key));

    char route[MK_MOCK_SOCKET_MAX_ROUTE];
    MK_CHECK_INT(mk_mock_socket_route(MK_STR_LIT("/ws"), MK_STR_LIT("a b/é*"), route, sizeof route),
                 strlen("/ws/a%20b%2F%C3%A9%2A"));
    MK_CHECK(strcmp(route, "/ws/a%20b%2F%C3%A9%2A") == 0);
    MK_CHECK_INT(mk_mock_socket_route(MK_STR_LIT("/"), MK_STR_LIT("x"), route, sizeof route), 2);
    MK_CHECK(strcmp(route, "/x") == 0);
    MK_CHECK_INT(mk_mock_socket_route(MK_STR_LIT("/ws"), MK_STR_LIT("xyz"), route, 6), 0);
}

#define GRPC "\"grpc\":{\"service\":\"shop.Cart\",\"method\":\"Add\"}"
#define WHY  ": stores ($.gS, $.cS, $.mS, $.increment, extract) are not available in "

/* Protocols served without stores (mock_stores.c): a WebSocket, gRPC or SSE mock that extracts
 * or reads stores is refused naming the field, not served with its stores left out. */
static void test_storeless_refused(void)
{
    expect_error("{\"socket\":{},\"extract\":{\"mStore\":{\"seen\":\"1\"}},\"response\":{}}",
                 "extract" WHY "WebSocket mocks");
    expect_error("{\"socket\":{},\"response\":{\"payload\":{\"n\":\"$.increment($.gS.n)\"}}}",
                 "response.payload" WHY "WebSocket mocks");
    expect_error("{\"socket\":{},\"response\":{\"sseEventChain\":{\"events\":[{\"data\":\"x\"},"
                 "{\"data\":{\"n\":\"$.cS.n\"}}]}}}",
                 "response.sseEventChain.events[1].data" WHY "WebSocket mocks");
    expect_error("{" GRPC ",\"extract\":{\"gStore\":{\"n\":\"$.increment($.gS.n)\"}},"
                 "\"response\":{\"payload\":{\"n\":1}}}",
                 "extract" WHY "gRPC mocks");
    expect_error("{" GRPC ",\"response\":{\"payload\":{\"n\":\"$.gS.n\"}}}",
                 "response.payload" WHY "gRPC mocks");
    expect_error("{" GRPC ",\"oneOf\":{\"responses\":[{\"payload\":{}},{\"payload\":{},"
                 "\"headers\":{\"x-n\":\"$.mS.n\"}}]}}",
                 "oneOf.responses[1].headers" WHY "gRPC mocks");
    expect_error("{" GRPC ",\"response\":{\"payload\":{}},\"webhooks\":[{\"url\":"
                 "\"http://127.0.0.1:9/h\",\"body\":{\"n\":\"$.cS.n\"}}]}",
                 "webhooks[0]" WHY "gRPC mocks");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"extract\":{\"gStore\":{\"n\":\"1\"}},"
                 "\"response\":{\"sseEventChain\":{\"events\":[{\"data\":\"x\"}]}}}",
                 "extract" WHY "SSE mocks");
    /* Without stores such mocks still render templates. */
    mk_err_t err = {0};
    mk_mock_t *m = parse("{" GRPC ",\"response\":{\"payload\":{\"id\":\"$.fake.UUID\"}}}", &err);
    MK_CHECK(m != NULL && !m->uses_store);
    mk_mock_unref(m);
}

int main(void)
{
    MK_RUN(test_event_mock);
    MK_RUN(test_defaults_and_catch_all);
    MK_RUN(test_refusals);
    MK_RUN(test_storeless_refused);
    MK_RUN(test_keys_and_routes);
    return mk_testing_done();
}
