/* SSE mocks: the definition compiles into a GET route with its conditions and a chain; bad
 * definitions name their field; the chain's schedule (delays, loops, maxLoops, Last-Event-ID)
 * and the event wire format. */
#include "mock/mock.h"
#include "mock/mock_sse.h"
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

static const char *const orders =
    "{\"id\":\"s1\",\"pathPrefix\":\"/shop\",\"sse\":{\"eventPath\":\"/events/:kind\","
    "\"eventName\":\"order-update\",\"headerConditions\":[{\"path\":\"X-Tenant\","
    "\"assertAction\":\"equals\",\"value\":\"acme\"}]},"
    "\"response\":{\"sseEventChain\":{\"events\":["
    "{\"eventName\":\"order.received\",\"id\":\"evt-1\",\"data\":{\"orderId\":\"ORD-1\"}},"
    "{\"id\":\"evt-2\",\"data\":\"line one\\nline two\",\"delay\":1000,\"retry\":3000},"
    "{\"id\":\"evt-3\",\"data\":{\"n\":\"$.fake.UUID\",\"kind\":\"$.pathParams.kind\"},"
    "\"delay\":2000}],\"loop\":true,\"loopDelay\":10,\"maxLoops\":2,\"maxTime\":60,"
    "\"heartbeat\":15000}}}";

static void test_compiles_to_a_get_route(void)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(orders, &err);
    MK_CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    MK_CHECK_STR(m->method, "GET");
    MK_CHECK_STR(m->route, "/shop/events/:kind");
    MK_CHECK_INT(m->nconds, 1); /* the header condition */
    const mk_mock_sse_t *sse = m->sse;
    MK_CHECK(sse != NULL);
    MK_CHECK_INT(sse->nevents, 3);
    MK_CHECK_STR(sse->events[0].name, "order.received");
    MK_CHECK_STR(sse->events[1].name, "order-update"); /* the context's eventName */
    MK_CHECK_STR(sse->events[0].data, "{\"orderId\":\"ORD-1\"}");
    MK_CHECK(sse->events[0].tpl == NULL && sse->events[2].tpl != NULL);
    MK_CHECK_INT(sse->events[1].retry_ms, 3000);
    MK_CHECK(sse->loop);
    MK_CHECK_INT(sse->loop_delay_ms, MK_MOCK_SSE_MIN_LOOP_DELAY); /* 10 raised to 100 */
    MK_CHECK_INT(sse->max_loops, 2);
    MK_CHECK_INT(sse->max_time_ms, 60000);
    MK_CHECK_INT(sse->heartbeat_ms, 15000);
    /* The stored definition is the user's, unchanged (no `http` made up). */
    json_t *def = mk_mock_definition(m);
    MK_CHECK(json_object_get(def, "http") == NULL);
    MK_CHECK(json_object_get(def, "sse") != NULL);
    json_decref(def);
    mk_mock_unref(m);

    /* Defaults: one pass, 20 minutes, no heartbeat. */
    m = parse("{\"sse\":{\"eventPath\":\"/e\"},\"response\":{\"sseEventChain\":{\"events\":"
              "[{\"data\":\"x\"}]}}}",
              &err);
    MK_CHECK(m != NULL);
    if (m) {
        MK_CHECK(!m->sse->loop);
        MK_CHECK_INT(m->sse->max_loops, MK_MOCK_SSE_DEFAULT_MAX_LOOPS);
        MK_CHECK_INT(m->sse->max_time_ms, MK_MOCK_SSE_DEFAULT_MAX_TIME * 1000);
        MK_CHECK_INT(m->sse->heartbeat_ms, 0);
        MK_CHECK(m->sse->events[0].name == NULL);
        mk_mock_unref(m);
    }
}

/* The Go SDK sends every context, the unused ones empty: they must not change the kind. */
static void test_sdk_empty_contexts(void)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse("{\"http\":{\"route\":\"/h\",\"httpMethod\":\"GET\"},\"sse\":{},"
                         "\"socket\":{},\"grpc\":{},\"response\":{\"statusCode\":200,"
                         "\"sseEventChain\":{}}}",
                         &err);
    MK_CHECK(m != NULL && m->sse == NULL && strcmp(m->route, "/h") == 0);
    if (m)
        mk_mock_unref(m);
    else
        fprintf(stderr, "%s\n", err.msg);
    m = parse("{\"http\":{},\"sse\":{\"eventPath\":\"/s\"},\"response\":{\"sseEventChain\":"
              "{\"events\":[{\"data\":\"x\"}]}}}",
              &err);
    MK_CHECK(m != NULL && m->sse != NULL && strcmp(m->route, "/s") == 0);
    if (m)
        mk_mock_unref(m);
    else
        fprintf(stderr, "%s\n", err.msg);
    /* The Go SDK's zero OneOf struct ("oneOf": {}) is no oneOf. */
    m = parse("{\"http\":{},\"oneOf\":{},\"sse\":{\"eventPath\":\"/s\"},\"response\":"
              "{\"soapFault\":{},\"sseEventChain\":{\"events\":[{\"data\":\"x\"}]}}}",
              &err);
    MK_CHECK(m != NULL && m->sse != NULL);
    if (m)
        mk_mock_unref(m);
    else
        fprintf(stderr, "%s\n", err.msg);
}

static void expect_error(const char *def, const char *want)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(def, &err);
    MK_CHECK(m == NULL);
    if (m)
        mk_mock_unref(m);
    else if (strstr(err.msg, want) == NULL)
        MK_CHECK_STR(err.msg, want);
}

static void test_bad_definitions_name_their_field(void)
{
    expect_error(
        "{\"sse\":{\"eventName\":\"x\"},\"response\":{\"sseEventChain\":{\"events\":[{}]}}}",
        "sse.eventPath: required");
    expect_error("{\"sse\":{\"eventPath\":\"e\"},\"response\":{\"sseEventChain\":"
                 "{\"events\":[{}]}}}",
                 "sse.eventPath: route \"e\" must start with '/'");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"response\":{}}",
                 "response.sseEventChain: required");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"response\":{\"sseEventChain\":"
                 "{\"events\":[]}}}",
                 "response.sseEventChain.events: must be a non-empty array");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"response\":{\"sseEventChain\":"
                 "{\"events\":[{\"data\":1},{\"delay\":-5}]}}}",
                 "response.sseEventChain.events[1].delay: must be between 0 and");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"response\":{\"sseEventChain\":"
                 "{\"events\":[{\"data\":\"$.gS.counter\"}]}}}",
                 "response.sseEventChain.events[0].data: stores");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"response\":{\"sseEventChain\":"
                 "{\"events\":[{\"data\":1}],\"maxTime\":999999}}}",
                 "response.sseEventChain.maxTime: must be between 0 and 86400");
    expect_error("{\"sse\":{\"eventPath\":\"/e\",\"conditions\":[{\"path\":\"$.a\","
                 "\"assertAction\":\"matches\",\"value\":\"(\"}]},\"response\":{\"sseEventChain\":"
                 "{\"events\":[{\"data\":1}]}}}",
                 "sse.conditions[0]");
    expect_error("{\"http\":{\"route\":\"/x\"},\"sse\":{\"eventPath\":\"/e\"},\"response\":"
                 "{\"sseEventChain\":{\"events\":[{\"data\":1}]}}}",
                 "http and sse");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"oneOf\":{\"responses\":[{}]},\"response\":"
                 "{\"sseEventChain\":{\"events\":[{\"data\":1}]}}}",
                 "oneOf: an SSE mock answers with one response");
    expect_error("{\"sse\":{\"eventPath\":\"/e\"},\"oneOf\":{\"order\":\"random\"},\"response\":"
                 "{\"sseEventChain\":{\"events\":[{\"data\":1}]}}}",
                 "oneOf");
    /* Too many events, and data past the limit. */
    json_t *events = json_array();
    for (int i = 0; i <= MK_MOCK_SSE_MAX_EVENTS; i++)
        json_array_append_new(events, json_pack("{s:i}", "data", i));
    json_t *def = json_pack("{s:{s:s}, s:{s:{s:o}}}", "sse", "eventPath", "/e", "response",
                            "sseEventChain", "events", events);
    char *text = json_dumps(def, 0);
    expect_error(text, "more than 1000 events");
    free(text);
    json_decref(def);
    char *big = malloc(MK_MOCK_SSE_MAX_DATA_BYTES + 2);
    memset(big, 'a', MK_MOCK_SSE_MAX_DATA_BYTES + 1);
    big[MK_MOCK_SSE_MAX_DATA_BYTES + 1] = '\0';
    def = json_pack("{s:{s:s}, s:{s:{s:[{s:s}]}}}", "sse", "eventPath", "/e", "response",
                    "sseEventChain", "events", "data", big);
    text = json_dumps(def, 0);
    expect_error(text, "events[0].data: longer than");
    free(text);
    free(big);
    json_decref(def);
}

static void test_schedule(void)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(orders, &err);
    if (m == NULL) {
        MK_CHECK(m != NULL);
        return;
    }
    const mk_mock_sse_t *sse = m->sse;
    mk_mock_sse_cursor_t c;
    MK_CHECK(mk_mock_sse_start(sse, (mk_str_t){"", 0}, &c));
    /* Two passes (maxLoops 2): delays 0, 1000, 2000, then loopDelay + 0, 1000, 2000, then over. */
    const uint32_t want[] = {0, 1000, 2000, 100, 1000, 2000};
    for (size_t i = 0; i < 6; i++) {
        uint32_t wait = 12345;
        const mk_mock_sse_event_t *e = mk_mock_sse_next(sse, &c, &wait);
        MK_CHECK(e == &sse->events[i % 3]);
        MK_CHECK_INT(wait, want[i]);
    }
    uint32_t wait;
    MK_CHECK(mk_mock_sse_next(sse, &c, &wait) == NULL);
    MK_CHECK(mk_mock_sse_next(sse, &c, &wait) == NULL);

    /* Last-Event-ID resumes after that event; an unknown id starts over; after the last event
     * of a looping chain the next pass begins. */
    MK_CHECK(mk_mock_sse_start(sse, MK_STR_LIT("evt-1"), &c));
    MK_CHECK(mk_mock_sse_next(sse, &c, &wait) == &sse->events[1]);
    MK_CHECK(mk_mock_sse_start(sse, MK_STR_LIT("nope"), &c));
    MK_CHECK(mk_mock_sse_next(sse, &c, &wait) == &sse->events[0]);
    MK_CHECK(mk_mock_sse_start(sse, MK_STR_LIT("evt-3"), &c));
    MK_CHECK(mk_mock_sse_next(sse, &c, &wait) == &sse->events[0]);
    MK_CHECK_INT(wait, 100);
    mk_mock_unref(m);

    /* Without loop, nothing follows the last event. */
    m = parse("{\"sse\":{\"eventPath\":\"/e\"},\"response\":{\"sseEventChain\":{\"events\":"
              "[{\"id\":\"a\",\"data\":1},{\"id\":\"b\",\"data\":2}]}}}",
              &err);
    if (m) {
        MK_CHECK(!mk_mock_sse_start(m->sse, MK_STR_LIT("b"), &c));
        MK_CHECK(mk_mock_sse_start(m->sse, MK_STR_LIT("a"), &c));
        MK_CHECK(mk_mock_sse_next(m->sse, &c, &wait) == &m->sse->events[1]);
        MK_CHECK(mk_mock_sse_next(m->sse, &c, &wait) == NULL);
        mk_mock_unref(m);
    }
}

static void check_format(const mk_mock_sse_event_t *e, const char *data, const char *want)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    MK_CHECK_INT(mk_mock_sse_format(&b, e, mk_str_of(data)), 0);
    mk_buf_append(&b, "", 1);
    MK_CHECK_STR(b.data, want);
    mk_buf_free(&b);
}

static void test_wire_format(void)
{
    mk_mock_sse_event_t e = {.id = "7", .name = "tick", .retry_ms = 2500};
    check_format(&e, "{\"a\":1}", "id: 7\nevent: tick\nretry: 2500\ndata: {\"a\":1}\n\n");
    mk_mock_sse_event_t plain = {0};
    check_format(&plain, "one\ntwo\r\nthree\rfour",
                 "data: one\ndata: two\ndata: three\n"
                 "data: four\n\n");
    check_format(&plain, "", "data: \n\n");
    check_format(&plain, "end\n", "data: end\ndata: \n\n");
    mk_mock_sse_event_t sneaky = {.id = "1\nevent: x", .name = "a\rb"};
    check_format(&sneaky, "d", "id: 1 event: x\nevent: a b\ndata: d\n\n");
}

int main(void)
{
    MK_RUN(test_compiles_to_a_get_route);
    MK_RUN(test_sdk_empty_contexts);
    MK_RUN(test_bad_definitions_name_their_field);
    MK_RUN(test_schedule);
    MK_RUN(test_wire_format);
    return mk_testing_done();
}
