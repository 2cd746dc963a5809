/* Tests for GraphQL mock definitions: the graphql context compiled into method, route and
 * conditions, graphqlErrors checked and kept, invalid definitions refused naming the field. */
#include "mock/mock.h"
#include "mock/mock_graphql.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mk_mock_t *parse(const char *text, mk_err_t *err)
{
    json_t *def = json_loads(text, 0, NULL);
    MK_CHECK(def != NULL);
    mk_mock_t *m = NULL;
    mk_mock_parse_opts_t opts = {.now_ms = 1000};
    int rc = mk_mock_parse(def, &opts, &m, err);
    json_decref(def);
    return rc == 0 ? m : NULL;
}

static void fails(const char *text, const char *what)
{
    mk_err_t err;
    mk_mock_t *m = parse(text, &err);
    MK_CHECK(m == NULL);
    if (m == NULL && strstr(err.msg, what) == NULL)
        fprintf(stderr, "for %s: got '%s'\n", text, err.msg);
    MK_CHECK(m == NULL && strstr(err.msg, what) != NULL);
    mk_mock_unref(m);
}

static void test_compile(void)
{
    mk_err_t err;
    /* The Go SDK sends every context, the unused ones as {}. */
    mk_mock_t *m = parse("{\"id\": \"g1\", \"http\": {}, \"grpc\": {}, \"pathPrefix\": \"/team/\","
                         " \"graphql\": {\"operation\": \"mutation\", \"field\": \"createUser\","
                         " \"path\": \"/api/graphql/\", \"type\": \"User\","
                         " \"conditions\": [{\"path\": \"$.variables.input.name\","
                         " \"assertAction\": \"equals\", \"value\": \"Ann\"}],"
                         " \"header\": [{\"path\": \"X-Tenant\", \"assertAction\": \"any\"}]},"
                         " \"response\": {\"payload\": {\"data\": {\"createUser\": {\"id\": 1}}},"
                         " \"graphqlErrors\": [{\"message\": \"at $.fake.UUID\","
                         " \"locations\": [{\"line\": 1, \"column\": 2}], \"path\": [\"x\"],"
                         " \"extensions\": {\"code\": \"E\"}}]}}",
                         &err);
    if (m == NULL)
        fprintf(stderr, "parse: %s\n", err.msg);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK_STR(m->method, MK_MOCK_GRAPHQL_METHOD);
    MK_CHECK_STR(m->route, "/team/api/graphql/mutation/createUser");
    MK_CHECK(m->graphql != NULL && m->graphql->operation == 1);
    MK_CHECK_STR(m->graphql->endpoint, "/team/api/graphql");
    MK_CHECK_STR(m->graphql->field, "createUser");
    MK_CHECK_INT(m->nconds, 2);
    MK_CHECK(m->graphql->nerrors == 1 && m->graphql->errors[0] != NULL);
    MK_CHECK(m->grpc_kind == MK_MOCK_GRPC_NONE);
    /* $.variables.input.name reads input.name of the variables object. */
    mk_request_t req;
    mk_request_init(&req);
    mk_header_t h = {MK_STR_LIT("X-Tenant"), MK_STR_LIT("a")};
    req.headers = &h;
    req.nheaders = 1;
    req.body = MK_STR_LIT("{\"input\": {\"name\": \"Ann\"}}");
    MK_CHECK(mk_cond_eval(m->conds[0], &req) && mk_cond_eval(m->conds[1], &req));
    mk_request_release(&req);
    mk_request_init(&req);
    req.body = MK_STR_LIT("{\"input\": {\"name\": \"Bob\"}}");
    MK_CHECK(!mk_cond_eval(m->conds[0], &req));
    mk_request_release(&req);
    /* The stored definition keeps what was written. */
    json_t *def = mk_mock_definition(m);
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(def, "graphql"), "path")),
                 "/api/graphql/");
    json_decref(def);
    /* It reloads from its stored form. */
    json_t *stored = mk_mock_definition(m);
    mk_mock_t *again = NULL;
    MK_CHECK(mk_mock_load(stored, 0, 0, &again, &err) == 0 && again && again->graphql &&
             strcmp(again->route, m->route) == 0);
    mk_mock_unref(again);
    json_decref(stored);
    mk_mock_unref(m);

    /* Defaults: query at /graphql; oneOf responses each with their own errors. */
    /* Operation names in any case (Mockarty's UI writes "Query"). */
    m = parse("{\"graphql\": {\"operation\": \"Mutation\", \"field\": \"f\"}, "
              "\"response\": {}}",
              &err);
    MK_CHECK(m != NULL && strcmp(m->route, "/graphql/mutation/f") == 0);
    mk_mock_unref(m);
    m = parse("{\"graphql\": {\"field\": \"users\"}, \"oneOf\": {\"responses\": [{\"payload\": []},"
              " {\"payload\": null, \"graphqlErrors\": [{\"message\": \"down\"}]}]}}",
              &err);
    MK_CHECK(m != NULL);
    if (m) {
        MK_CHECK_STR(m->route, "/graphql/query/users");
        MK_CHECK(m->graphql->nerrors == 2 && m->graphql->errors[0] == NULL &&
                 m->graphql->errors[1] != NULL);
    }
    mk_mock_unref(m);
    /* An HTTP mock with an empty graphql context stays an HTTP mock. */
    m = parse("{\"http\": {\"route\": \"/x\"}, \"graphql\": {}, \"response\": {}}", &err);
    MK_CHECK(m != NULL && m->graphql == NULL && strcmp(m->route, "/x") == 0);
    mk_mock_unref(m);
    char route[64];
    MK_CHECK(mk_mock_graphql_route(route, sizeof route, MK_STR_LIT("/"), 2, "tick"));
    MK_CHECK_STR(route, "/subscription/tick");
    MK_CHECK(!mk_mock_graphql_route(route, 8, MK_STR_LIT("/graphql"), 0, "users"));
}

static void test_invalid(void)
{
    fails("{\"graphql\": {\"operation\": \"select\", \"field\": \"a\"}, \"response\": {}}",
          "graphql.operation: unknown 'select'");
    fails("{\"graphql\": {\"operation\": \"query\"}, \"response\": {}}", "graphql.field: required");
    fails("{\"graphql\": {\"field\": \"a-b\"}, \"response\": {}}", "graphql.field: 'a-b' is not");
    fails("{\"graphql\": {\"field\": \"a\", \"path\": \"graphql\"}, \"response\": {}}",
          "graphql.path: must start with '/'");
    fails("{\"graphql\": {\"field\": \"a\", \"conditions\": {}}, \"response\": {}}",
          "graphql.conditions: must be an array");
    fails("{\"graphql\": {\"field\": \"a\", \"conditions\": [{\"path\": \"$.x\", "
          "\"assertAction\": \"matches\", \"value\": \"(\"}]}, \"response\": {}}",
          "graphql.conditions[0].value");
    fails("{\"graphql\": {\"field\": \"a\"}, \"response\": {\"graphqlErrors\": {}}}",
          "response.graphqlErrors: must be an array");
    fails("{\"graphql\": {\"field\": \"a\"}, \"response\": {\"graphqlErrors\": [{}]}}",
          "response.graphqlErrors[0].message: required");
    fails("{\"graphql\": {\"field\": \"a\"}, \"response\": {\"graphqlErrors\": [{\"message\": "
          "\"m\", \"locations\": [{\"line\": \"1\"}]}]}}",
          "graphqlErrors[0].locations[0]");
    fails("{\"graphql\": {\"field\": \"a\"}, \"oneOf\": {\"responses\": [{}, {\"graphqlErrors\": "
          "[{\"message\": \"m\", \"extensions\": []}]}]}}",
          "oneOf.responses[1].graphqlErrors[0].extensions");
}

/* Whether the mock of text compiles and says it uses stores (-1: refused). */
static int uses_store(const char *text)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(text, &err);
    int r = m == NULL ? -1 : m->uses_store;
    mk_mock_unref(m);
    return r;
}

/* GraphQL mocks keep their stores; uses_store makes the answer wait for Redis, also when only
 * the graphqlErrors read a store. */
static void test_stores(void)
{
    MK_CHECK_INT(uses_store("{\"graphql\":{\"field\":\"hits\"},\"extract\":{\"gStore\":{\"n\":"
                            "\"$.increment($.gS.n)\"}},\"response\":{\"payload\":{\"data\":"
                            "{\"hits\":\"$.gS.n\"}}}}"),
                 1);
    MK_CHECK_INT(uses_store("{\"graphql\":{\"field\":\"hits\"},\"response\":{\"payload\":{},"
                            "\"graphqlErrors\":[{\"message\":\"$.gS.why\"}]}}"),
                 1);
    MK_CHECK_INT(uses_store("{\"graphql\":{\"field\":\"hits\"},\"response\":{\"payload\":"
                            "{\"n\":1},\"graphqlErrors\":[{\"message\":\"$.req.x\"}]}}"),
                 0);
}

/* A subscription's sseEventChain: one stream per response, each event's data a JSON template
 * and its delay; bad chains refused naming the field. */
static void test_stream(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"graphql\": {\"operation\": \"subscription\", \"field\": \"t\"},"
                         " \"oneOf\": {\"responses\": [{\"payload\": {}},"
                         " {\"sseEventChain\": {\"events\": [{\"data\": {\"n\": 1}, \"delay\": 50},"
                         " {\"delay\": 7}, {\"data\": {\"at\": \"$.body.variables.x\"}}]}}]}}",
                         &err);
    if (m == NULL)
        fprintf(stderr, "parse: %s\n", err.msg);
    MK_CHECK(m != NULL && m->graphql->nerrors == 2 && m->graphql->streams != NULL);
    if (m == NULL || m->graphql->streams == NULL)
        return;
    const mk_mock_graphql_stream_t *st = m->graphql->streams;
    MK_CHECK_INT(st[0].nevents, 0);
    MK_CHECK_INT(st[1].nevents, 3);
    MK_CHECK(st[1].events[0].data != NULL && st[1].events[0].delay_ms == 50);
    MK_CHECK(st[1].events[1].data == NULL && st[1].events[1].delay_ms == 7);
    MK_CHECK(st[1].events[2].data != NULL && !mk_template_is_static(st[1].events[2].data));
    MK_CHECK(!m->uses_store);
    mk_mock_unref(m);
    fails("{\"graphql\": {\"field\": \"t\"}, \"response\": {\"sseEventChain\": []}}",
          "response.sseEventChain: must be an object");
    fails("{\"graphql\": {\"field\": \"t\"}, \"response\": {\"sseEventChain\": {\"events\": "
          "[{\"delay\": -1}]}}}",
          "response.sseEventChain.events[0].delay");
    fails("{\"graphql\": {\"field\": \"t\"}, \"response\": {\"sseEventChain\": {\"events\": "
          "[{}, 3]}}}",
          "response.sseEventChain.events[1]: must be an object");
    MK_CHECK_INT(uses_store("{\"graphql\":{\"field\":\"t\"},\"response\":{\"sseEventChain\":"
                            "{\"events\":[{\"data\":{\"n\":\"$.gS.n\"}}]}}}"),
                 1);
}

int main(void)
{
    MK_RUN(test_compile);
    MK_RUN(test_invalid);
    MK_RUN(test_stores);
    MK_RUN(test_stream);
    return mk_testing_done();
}
