/* Tests for mock definition parsing, validation and the usage counters. */
#include "mock/mock.h"
#include "testing/testing.h"

#include <stdio.h>
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
                         "\"ttl\":5,\"createdAt\":7,\"useCount\":99,\"useCounter\":98}",
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
    /* Mockarty's name; a client's counters are dropped, ours starts at 0. */
    MK_CHECK(json_is_integer(json_object_get(j, "useCounter")));
    MK_CHECK_INT(json_integer_value(json_object_get(j, "useCounter")), 0);
    MK_CHECK(json_object_get(j, "useCount") == NULL);
    MK_CHECK(json_is_null(json_object_get(j, "lastUse")));
    MK_CHECK_INT(json_integer_value(json_object_get(j, "expireAt")), 6000);
    MK_CHECK_STR(json_string_value(json_object_get(j, "namespace")), "sandbox");
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

/* Mockarty's Go SDK writes every struct field, unused ones as zero values: "oneOf": {} beside a
 * response, and a response of empty objects beside a oneOf. */
static void test_go_sdk_zero_values(void)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse("{\"http\":{\"route\":\"/go\"},\"oneOf\":{},\"proxy\":{},"
                         "\"response\":{\"decode\":{},\"soapFault\":{},\"sseEventChain\":{},"
                         "\"statusCode\":203,\"payload\":{\"ok\":true}}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m != NULL)
        MK_CHECK_INT(mk_mock_pick_response(m, NULL)->status, 203);
    mk_mock_unref(m);
    m = parse("{\"http\":{\"route\":\"/go\"},\"response\":{\"decode\":{},\"soapFault\":{},"
              "\"sseEventChain\":{\"events\":[]}},\"oneOf\":{\"responses\":[{\"statusCode\":"
              "201},{\"statusCode\":202}]}}",
              &err);
    MK_CHECK(m != NULL);
    if (m != NULL) {
        MK_CHECK_INT(m->nresponses, 2);
        MK_CHECK_INT(mk_mock_pick_response(m, NULL)->status, 201);
    }
    mk_mock_unref(m);
    /* A response with content beside a oneOf is still a contradiction. */
    expect_error("{\"http\":{\"route\":\"/go\"},\"response\":{\"statusCode\":200},"
                 "\"oneOf\":{\"responses\":[{\"statusCode\":201}]}}",
                 "oneOf: not allowed together with response");
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
    json_t *again = mk_mock_to_json(back);
    MK_CHECK_INT(json_integer_value(json_object_get(again, "closedAt")), 77);
    MK_CHECK_INT(json_integer_value(json_object_get(again, "useCounter")), 4);
    MK_CHECK_INT(json_integer_value(json_object_get(again, "lastUse")), 9);
    json_decref(again);
    json_decref(stored);
    mk_mock_unref(back);
    mk_mock_unref(m);
}

/* The definition comes back as it was stored: the same members in the same order, unknown
 * ones included, whatever the module keeps internally. */
static void test_definition_is_kept_whole(void)
{
    mk_err_t err;
    const char *text = "{\"id\":\"k1\",\"namespace\":\"team\",\"chainId\":\"c\",\"tags\":[\"a\"],"
                       "\"http\":{\"route\":\"/k/:id\",\"httpMethod\":\"GET\",\"queryParams\":"
                       "[{\"path\":\"q\",\"assertAction\":\"equals\",\"value\":\"v\"}]},"
                       "\"response\":{\"statusCode\":200,\"payload\":{\"n\":1.5,\"s\":\"x\"}},"
                       "\"grpc\":{\"service\":\"kept\",\"odd\":\"\\u0001\\u001f "
                       "\\\",\\\"value\\\":\\\"}],\"},\"ttl\":60}";
    mk_mock_t *m = parse(text, &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    json_t *want = json_loads(text, 0, NULL);
    json_object_set_new(want, "createdAt", json_integer(1000));
    json_object_set_new(want, "updatedAt", json_integer(1000));
    json_object_set_new(want, "expireAt", json_integer(61000));
    json_t *def = mk_mock_definition(m);
    char *got_text = json_dumps(def, JSON_COMPACT);
    char *want_text = json_dumps(want, JSON_COMPACT);
    MK_CHECK_STR(got_text, want_text);
    /* Reloading the definition gives the same definition again. */
    mk_mock_t *back = NULL;
    MK_CHECK_INT(mk_mock_load(def, 0, 0, &back, &err), 0);
    if (back) {
        json_t *def2 = mk_mock_definition(back);
        char *again = json_dumps(def2, JSON_COMPACT);
        MK_CHECK_STR(again, want_text);
        free(again);
        json_decref(def2);
        MK_CHECK_INT(back->expire_at, 61000);
    }
    /* The accessor hands out a copy the caller may change. */
    json_object_set_new(def, "id", json_string("changed"));
    json_t *def3 = mk_mock_definition(m);
    MK_CHECK_STR(json_string_value(json_object_get(def3, "id")), "k1");
    json_decref(def3);
    free(got_text);
    free(want_text);
    json_decref(def);
    json_decref(want);
    mk_mock_unref(back);
    mk_mock_unref(m);
}

static void test_mockarty_fields(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"folderId\":\"f-1\",\"serverName\":\"billing\",\"http\":{\"route\":"
                         "\"/x\"},\"response\":{\"statusCode\":200,\"payloadTemplatePath\":"
                         "\"orders/list.json\"},\"mStore\":{\"n\":5}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK_STR(m->folder_id, "f-1");
    MK_CHECK_STR(m->server_name, "billing");
    MK_CHECK_STR(m->responses[0].template_path, "orders/list.json");
    MK_CHECK_INT(json_integer_value(json_object_get(m->mstore, "n")), 5);
    json_t *j = mk_mock_to_json(m);
    MK_CHECK_STR(json_string_value(json_object_get(j, "folderId")), "f-1");
    MK_CHECK_STR(json_string_value(json_object_get(j, "serverName")), "billing");
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "mStore"), "n")), 5);
    json_decref(j);
    mk_mock_unref(m);
    m = parse("{\"http\":{\"route\":\"/x\"},\"response\":{}}", &err);
    MK_CHECK(m != NULL && m->folder_id == NULL && m->server_name == NULL && m->mstore == NULL);
    mk_mock_unref(m);
    expect_error("{\"folderId\":3,\"http\":{\"route\":\"/x\"},\"response\":{}}",
                 "folderId: must be a string");
    expect_error("{\"serverName\":[],\"http\":{\"route\":\"/x\"},\"response\":{}}",
                 "serverName: must be a string");
    expect_error("{\"http\":{\"route\":\"/x\"},\"response\":{\"payloadTemplatePath\":1}}",
                 "response.payloadTemplatePath: must be a string");
}

/* Mockarty's SDK examples extract into cStore from mocks without chainId. */
static void test_chain_store_without_chain_id(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"http\":{\"route\":\"/r\",\"httpMethod\":\"POST\"},\"extract\":{"
                         "\"cStore\":{\"userEmail\":\"$.body.email\"}},\"response\":{\"payload\":"
                         "{\"email\":\"$.cS.userEmail\"}}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK(m->chain_id == NULL);
    MK_CHECK_INT(m->nextracts, 1);
    MK_CHECK_INT(m->extracts[0].store, MK_TEMPLATE_CHAIN);
    MK_CHECK(m->uses_store);
    mk_mock_unref(m);
}

static void test_webhooks(void)
{
    mk_err_t err;
    mk_mock_t *m = parse(
        "{\"http\":{\"route\":\"/orders\"},\"response\":{},\"webhooks\":["
        "{\"type\":\"http\",\"url\":\"https://hooks.example.com/created\",\"method\":\"put\","
        "\"headers\":{\"X-Secret\":\"s3\",\"X-Order\":\"$.body.id\"},"
        "\"body\":{\"event\":\"created\",\"id\":\"$.body.id\"},\"timeout\":5000,"
        "\"retryCount\":3,\"retryDelay\":1000,\"async\":true,\"trigger\":\"on_success\"},"
        "{\"url\":\"http://h/$.pathParam.x\",\"body\":\"plain\"},"
        "{\"type\":\"kafka\",\"kafkaBrokers\":\"k:9092\",\"kafkaTopic\":\"t\",\"kafkaUseTLS\":"
        "false,\"body\":{\"a\":1},\"trigger\":\"on_first_use\"},"
        "{\"url\":\"http://h/gS\",\"body\":{\"n\":\"$.gS.count\"},\"trigger\":\"always\"}]}",
        &err);
    MK_CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "  %s\n", err.msg);
        return;
    }
    MK_CHECK_INT(m->nwebhooks, 4);
    const mk_mock_webhook_t *w = &m->webhooks[0];
    MK_CHECK_INT(w->kind, MK_MOCK_WEBHOOK_HTTP);
    MK_CHECK_INT(w->trigger, MK_MOCK_WEBHOOK_ON_SUCCESS);
    MK_CHECK(w->async);
    MK_CHECK_STR(w->method, "PUT");
    MK_CHECK_STR(w->url, "https://hooks.example.com/created");
    MK_CHECK(w->url_tpl == NULL);
    MK_CHECK_INT(w->timeout_ms, 5000);
    MK_CHECK_INT(w->retry_count, 3);
    MK_CHECK_INT(w->retry_delay_ms, 1000);
    MK_CHECK_INT(w->nheaders, 3); /* two given, Content-Type added for the JSON body */
    MK_CHECK(w->header_tpls != NULL && w->header_tpls[0] == NULL && w->header_tpls[1] != NULL);
    MK_CHECK(mk_str_eq_cstr(w->headers[2].value, "application/json"));
    MK_CHECK(w->body_tpl != NULL);
    MK_CHECK_STR(w->body, "{\"event\":\"created\",\"id\":\"$.body.id\"}");

    w = &m->webhooks[1];
    MK_CHECK_INT(w->trigger, MK_MOCK_WEBHOOK_ALWAYS);
    MK_CHECK(!w->async);
    MK_CHECK_STR(w->method, "POST");
    MK_CHECK(w->url_tpl != NULL);
    MK_CHECK_INT(w->timeout_ms, MK_MOCK_WEBHOOK_DEFAULT_TIMEOUT_MS);
    MK_CHECK(w->body_tpl == NULL);
    MK_CHECK_STR(w->body, "plain");
    MK_CHECK_INT(w->nheaders, 1);
    MK_CHECK(mk_str_eq_cstr(w->headers[0].value, "text/plain; charset=utf-8"));

    w = &m->webhooks[2];
    MK_CHECK_INT(w->kind, MK_MOCK_WEBHOOK_KAFKA);
    MK_CHECK_INT(w->trigger, MK_MOCK_WEBHOOK_ON_FIRST_USE);
    MK_CHECK(w->url == NULL);
    /* A webhook reading a store makes the mock a store user. */
    MK_CHECK(m->uses_store);
    json_t *j = mk_mock_to_json(m);
    MK_CHECK_INT(json_array_size(json_object_get(j, "webhooks")), 4);
    json_decref(j);
    mk_mock_unref(m);

    m = parse("{\"http\":{\"route\":\"/x\"},\"response\":{},\"webhooks\":[{\"url\":"
              "\"http://h/\"}]}",
              &err);
    MK_CHECK(m != NULL && m->webhooks[0].body == NULL && m->webhooks[0].nheaders == 0 &&
             !m->uses_store);
    mk_mock_unref(m);

#define WH(x) "{\"http\":{\"route\":\"/x\"},\"response\":{},\"webhooks\":" x "}"
    expect_error(WH("{}"), "webhooks: must be an array");
    expect_error(WH("[3]"), "webhooks[0]: must be an object");
    expect_error(WH("[{\"method\":\"POST\"}]"), "webhooks[0].url: required for an http webhook");
    expect_error(WH("[{\"url\":\"ftp://h/x\"}]"), "webhooks[0].url: 'ftp://h/x' is not an http");
    expect_error(WH("[{\"url\":\"http:///x\"}]"), "webhooks[0].url:");
    expect_error(WH("[{\"url\":\"http://h\",\"type\":\"smtp\"}]"),
                 "webhooks[0].type: 'smtp' is not one of http, kafka, rabbitmq");
    expect_error(WH("[{\"url\":\"http://h\",\"trigger\":\"sometimes\"}]"),
                 "webhooks[0].trigger: 'sometimes' is not one of always, on_success");
    expect_error(WH("[{\"url\":\"http://h\",\"method\":\"ANY\"}]"),
                 "webhooks[0].method: unknown method 'ANY'");
    expect_error(WH("[{\"url\":\"http://h\",\"headers\":{\"A\":[\"1\"]}}]"),
                 "webhooks[0].headers.A: must be a string");
    expect_error(WH("[{\"url\":\"http://h\",\"headers\":{\"A\":\"1\\n2\"}}]"),
                 "webhooks[0].headers.A: contains a line break");
    expect_error(WH("[{\"url\":\"http://h\",\"retryCount\":11}]"),
                 "webhooks[0].retryCount: must be between 0 and 10");
    expect_error(WH("[{\"url\":\"http://h\",\"timeout\":-1}]"), "webhooks[0].timeout:");
    expect_error(WH("[{\"url\":\"http://h\",\"retryDelay\":1.5}]"),
                 "webhooks[0].retryDelay: must be an integer");
    expect_error(WH("[{\"url\":\"http://h\",\"async\":\"yes\"}]"),
                 "webhooks[0].async: must be true or false");
    expect_error(WH("[{\"type\":\"kafka\",\"kafkaTopic\":5}]"),
                 "webhooks[0].kafkaTopic: must be a string");
    expect_error(WH("[{\"url\":\"http://h\"},{\"url\":\"http://h\",\"body\":\"$.fake.Nope\"}]"),
                 "webhooks[1].body");
    char many[2048] = "{\"http\":{\"route\":\"/x\"},\"response\":{},\"webhooks\":[";
    for (int i = 0; i <= MK_MOCK_WEBHOOK_MAX; i++)
        strcat(many, i ? ",{\"url\":\"http://h\"}" : "{\"url\":\"http://h\"}");
    strcat(many, "]}");
    expect_error(many, "webhooks: at most 16 per mock");
#undef WH
}

/* Many stored rows compiled on several threads: every good row, in order, the bad ones counted. */
static void test_loader(void)
{
    mk_mock_loader_t *l = mk_mock_loader_new();
    mk_err_t err;
    char json[256];
    for (int i = 0; i < 3000; i++) {
        mk_mock_t *m;
        snprintf(json, sizeof json,
                 "{\"id\":\"l%d\",\"http\":{\"route\":\"/l/%d\"},"
                 "\"response\":{\"payload\":{\"i\":%d}}}",
                 i, i, i);
        json_t *def = json_loads(json, 0, NULL);
        mk_mock_parse_opts_t opts = {.now_ms = 1000};
        MK_CHECK_INT(mk_mock_parse(def, &opts, &m, &err), 0);
        json_t *stored = mk_mock_definition(m);
        char *text = json_dumps(stored, JSON_COMPACT);
        MK_CHECK_INT(mk_mock_loader_add(l, i == 1500 ? "{not json" : text, i, 0), 0);
        free(text);
        json_decref(stored);
        json_decref(def);
        mk_mock_unref(m);
    }
    MK_CHECK_INT(mk_mock_loader_count(l), 3000);
    mk_mock_t **out;
    size_t n, failed;
    MK_CHECK_INT(mk_mock_loader_run(l, 4, &out, &n, &failed), 0);
    MK_CHECK_INT(n, 2999);
    MK_CHECK_INT(failed, 1);
    MK_CHECK_STR(out[0]->id, "l0");
    MK_CHECK_STR(out[1500]->id, "l1501");
    MK_CHECK_INT(atomic_load(&out[2998]->uses), 2999);
    for (size_t i = 0; i < n; i++)
        mk_mock_unref(out[i]);
    free(out);
    mk_mock_loader_free(l);
}

/* The `grpc` context: indexed as GRPC /<service>/<method>, gRPC status codes, errorDetails. */
static void test_grpc(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"grpc\":{\"service\":\"user.Users\",\"method\":\"Get\","
                         "\"methodType\":\"server-stream\",\"conditions\":[{\"path\":"
                         "\"$.body.user_id\",\"assertAction\":\"equals\",\"value\":\"7\"}],"
                         "\"meta\":[{\"path\":\"x-k\",\"assertAction\":\"notEmpty\"}]},"
                         "\"response\":{\"statusCode\":5,\"error\":\"gone\",\"errorDetails\":"
                         "[{\"type\":\"resourceInfo\",\"details\":{\"resourceName\":\"u\"}}]}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK_STR(m->method, MK_MOCK_GRPC_METHOD);
    MK_CHECK_STR(m->route, "/user.Users/Get");
    MK_CHECK_INT(m->grpc_kind, MK_MOCK_GRPC_SERVER_STREAM);
    MK_CHECK_INT(m->nconds, 2);
    MK_CHECK_INT(m->responses[0].status, 5);
    MK_CHECK_STR(m->responses[0].grpc_message, "gone");
    MK_CHECK(json_array_size(m->responses[0].grpc_details) == 1);
    /* "$.body" is the message root, and proto field names become their JSON names. */
    json_t *c = mk_cond_to_json(m->conds[0]);
    MK_CHECK_STR(json_string_value(json_object_get(c, "path")), "$.userId");
    json_decref(c);
    /* The stored definition keeps the path as written. */
    json_t *d = mk_mock_definition(m);
    MK_CHECK_STR(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(d, "grpc"), "conditions"), 0), "path")),
        "$.body.user_id");
    json_decref(d);
    mk_mock_unref(m);
    expect_error("{\"grpc\":{\"service\":\"a.B\",\"method\":\"M\",\"methodType\":\"x\"},"
                 "\"response\":{}}",
                 "grpc.methodType: unknown 'x'");
    expect_error("{\"grpc\":{\"service\":\"a/B\",\"method\":\"M\"},\"response\":{}}",
                 "grpc.service:");
    expect_error("{\"grpc\":{\"service\":\"a.B\",\"method\":\"M\"},"
                 "\"response\":{\"statusCode\":200}}",
                 "response.statusCode");
    expect_error("{\"grpc\":{\"service\":\"a.B\",\"method\":\"M\"},"
                 "\"response\":{\"errorDetails\":[{\"type\":\"nope\"}]}}",
                 "response.errorDetails[0].type: unknown type 'nope'");
}

int main(void)
{
    MK_RUN(test_grpc);
    MK_RUN(test_loader);
    MK_RUN(test_defaults_and_server_fields);
    MK_RUN(test_validation_names_the_field);
    MK_RUN(test_path_prefix_and_headers);
    MK_RUN(test_use_limiter_and_oneof);
    MK_RUN(test_go_sdk_zero_values);
    MK_RUN(test_load_roundtrip);
    MK_RUN(test_definition_is_kept_whole);
    MK_RUN(test_mockarty_fields);
    MK_RUN(test_chain_store_without_chain_id);
    MK_RUN(test_webhooks);
    return mk_testing_done();
}
