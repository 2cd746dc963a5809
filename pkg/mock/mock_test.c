/* Tests for mock definition parsing, validation and the usage counters. */
#include "mock/mock.h"
#include "testing/testing.h"

#include <stdlib.h>
#include <string.h>

static mk_mock_t *parse(const char *text, mk_err_t *err)
{
    json_t *def = json_loads(text, 0, NULL);
    mk_mock_t *m = NULL;
    mk_mock_parse_opts_t opts = {.now_ms = 1000};
    if (mk_mock_parse(def, &opts, &m, err) != 0)
        m = NULL;
    json_decref(def);
    return m;
}

static void expect_error(const char *text, const char *prefix)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(text, &err);
    MK_CHECK(m == NULL);
    MK_CHECK_INT(err.code, MK_EINVAL);
    bool ok = strncmp(err.msg, prefix, strlen(prefix)) == 0;
    mk_testing_record(ok, __FILE__, __LINE__, prefix, err.msg);
    mk_mock_unref(m);
}

static void test_defaults_and_server_fields(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"http\":{\"route\":\"/a/:id\"},\"response\":{\"payload\":{\"x\":1}},"
                         "\"ttl\":5,\"createdAt\":7,\"useCount\":99}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK_STR(m->namespace_, "sandbox");
    MK_CHECK_STR(m->method, "ANY");
    MK_CHECK_INT(strlen(m->id), 36);
    MK_CHECK_INT(m->created_at, 1000);
    MK_CHECK_INT(m->expire_at, 6000);
    MK_CHECK_INT(m->responses[0].status, 200);
    MK_CHECK_STR(m->responses[0].body, "{\"x\":1}");
    json_t *j = mk_mock_to_json(m);
    MK_CHECK_INT(json_integer_value(json_object_get(j, "createdAt")), 1000);
    MK_CHECK_INT(json_integer_value(json_object_get(j, "useCount")), 0);
    json_decref(j);
    MK_CHECK(mk_mock_active(m, 5999));
    MK_CHECK(!mk_mock_active(m, 6000));
    mk_mock_unref(m);
}

static void test_validation_names_the_field(void)
{
    expect_error("[]", "mock: must be a JSON object");
    expect_error("{\"response\":{}}", "http: required");
    expect_error("{\"http\":{\"route\":\"x\"},\"response\":{}}", "http.route:");
    expect_error("{\"http\":{\"route\":\"/x\",\"httpMethod\":\"FETCH\"},\"response\":{}}",
                 "http.httpMethod: unknown method 'FETCH'");
    expect_error("{\"http\":{\"route\":\"/x\"}}", "response: required");
    expect_error("{\"http\":{\"route\":\"/x\"},\"response\":{\"statusCode\":99}}",
                 "response.statusCode: must be between 100 and 599");
    expect_error("{\"http\":{\"route\":\"/x\"},\"response\":{\"delay\":-1}}", "response.delay:");
    expect_error("{\"http\":{\"route\":\"/x\"},\"response\":{\"headers\":{\"A\":[1]}}}",
                 "response.headers.A[0]: must be a string");
    expect_error("{\"http\":{\"route\":\"/x\",\"conditions\":[{\"path\":\"a\","
                 "\"assertAction\":\"matches\",\"value\":\"([\"}]},\"response\":{}}",
                 "http.conditions[0].value: invalid regular expression");
    expect_error("{\"http\":{\"route\":\"/x\",\"queryParams\":{}},\"response\":{}}",
                 "http.queryParams: must be an array");
    expect_error("{\"http\":{\"route\":\"/x\"},\"oneOf\":{\"responses\":[]}}",
                 "oneOf.responses: must be a non-empty array");
    expect_error("{\"http\":{\"route\":\"/x\"},\"oneOf\":{\"responses\":[{\"statusCode\":\"a\"}]}}",
                 "oneOf.responses[0].statusCode");
    expect_error("{\"id\":\"a/b\",\"http\":{\"route\":\"/x\"},\"response\":{}}", "id:");
    expect_error("{\"namespace\":\"a b\",\"http\":{\"route\":\"/x\"},\"response\":{}}",
                 "namespace:");
    expect_error("{\"priority\":1.5,\"http\":{\"route\":\"/x\"},\"response\":{}}",
                 "priority: must be an integer");
    expect_error("{\"tags\":[1],\"http\":{\"route\":\"/x\"},\"response\":{}}", "tags[0]");
}

static void test_path_prefix_and_headers(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"pathPrefix\":\"/v1/\",\"http\":{\"route\":\"/u\",\"httpMethod\":"
                         "\"post\"},\"response\":{\"payload\":\"hi\",\"headers\":{\"X-A\":"
                         "[\"1\",\"2\"]}}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK_STR(m->route, "/v1/u");
    MK_CHECK_STR(m->method, "POST");
    MK_CHECK_INT(m->responses[0].nheaders, 3); /* X-A twice + default Content-Type */
    MK_CHECK(mk_str_eq_cstr(m->responses[0].headers[2].value, "text/plain; charset=utf-8"));
    mk_mock_unref(m);
}

static void test_use_limiter_and_oneof(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"useLimiter\":2,\"http\":{\"route\":\"/x\"},\"oneOf\":{\"responses\":"
                         "[{\"statusCode\":201},{\"statusCode\":202}]}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK(mk_mock_claim_use(m, 5));
    MK_CHECK(mk_mock_claim_use(m, 6));
    MK_CHECK(!mk_mock_claim_use(m, 7));
    MK_CHECK(!mk_mock_active(m, 8));
    MK_CHECK_INT(atomic_load(&m->last_use), 6);
    MK_CHECK_INT(mk_mock_pick_response(m, NULL)->status, 201);
    MK_CHECK_INT(mk_mock_pick_response(m, NULL)->status, 202);
    MK_CHECK_INT(mk_mock_pick_response(m, NULL)->status, 201);
    mk_mock_unref(m);
}

static void test_load_roundtrip(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"id\":\"r1\",\"http\":{\"route\":\"/x\"},\"response\":{}}", &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    json_t *stored = mk_mock_definition(m);
    json_object_set_new(stored, "closedAt", json_integer(77));
    mk_mock_t *back;
    MK_CHECK_INT(mk_mock_load(stored, 4, 9, &back, &err), 0);
    MK_CHECK_STR(back->id, "r1");
    MK_CHECK_INT(back->created_at, 1000);
    MK_CHECK_INT(back->closed_at, 77);
    MK_CHECK_INT(atomic_load(&back->uses), 4);
    MK_CHECK(!mk_mock_active(back, 2000));
    json_decref(stored);
    mk_mock_unref(back);
    mk_mock_unref(m);
}

int main(void)
{
    MK_RUN(test_defaults_and_server_fields);
    MK_RUN(test_validation_names_the_field);
    MK_RUN(test_path_prefix_and_headers);
    MK_RUN(test_use_limiter_and_oneof);
    MK_RUN(test_load_roundtrip);
    return mk_testing_done();
}
