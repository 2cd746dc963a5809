/* The proxy section of a mock: what compiles (and into what), what is refused with which field
 * named, the deep merge of overrides, and a proxy mock without a response. */
#include "mock/mock.h"
#include "mock/mock_proxy.h"

#include "testing/testing.h"

#include <stdio.h>
#include <string.h>

static int parse_text(const char *text, mk_mock_proxy_t **out, mk_err_t *err)
{
    json_t *def = json_loads(text, 0, NULL);
    int rc = mk_mock_proxy_parse(def, out, err);
    json_decref(def);
    return rc;
}

static void test_compiles(void)
{
    mk_mock_proxy_t *p = NULL;
    mk_err_t err;
    MK_CHECK_INT(parse_text("{\"proxy\": {\"target\": \"https://api.example.com/base//\","
                            " \"insecure\": true, \"timeout\": 1500, \"connectTimeout\": 200,"
                            " \"headers\": {\"X-Add\": \"1\"}, \"removeHeaders\": [\"Cookie\"],"
                            " \"stripPrefix\": \"/edge\", \"override\": {\"statusCode\": 299,"
                            " \"headers\": {\"X-Mocked\": \"yes\"}, \"payload\": {\"a\": 1}}}}",
                            &p, &err),
                 0);
    MK_CHECK(p != NULL);
    if (p == NULL)
        return;
    MK_CHECK_STR(p->target, "https://api.example.com/base");
    MK_CHECK_INT(p->target_len, strlen("https://api.example.com/base"));
    MK_CHECK(p->insecure);
    MK_CHECK_INT(p->timeout_ms, 1500);
    MK_CHECK_INT(p->connect_timeout_ms, 200);
    MK_CHECK_INT(p->nadd, 1);
    MK_CHECK_STR(p->add_lines[0], "X-Add: 1");
    MK_CHECK_INT(p->nremove, 1);
    MK_CHECK_STR(p->strip_prefix, "/edge");
    MK_CHECK_INT(p->status, 299);
    MK_CHECK_INT(p->nheaders, 1);
    MK_CHECK_STR(p->headers[0].value, "yes");
    MK_CHECK(json_integer_value(json_object_get(p->merge, "a")) == 1);
    mk_mock_proxy_free(p);

    /* No proxy, and the SDKs' empty proxy object, are no proxy. */
    MK_CHECK_INT(parse_text("{}", &p, &err), 0);
    MK_CHECK(p == NULL);
    MK_CHECK_INT(parse_text("{\"proxy\": {}}", &p, &err), 0);
    MK_CHECK(p == NULL);
    MK_CHECK_INT(parse_text("{\"proxy\": {\"target\": \"\"}}", &p, &err), 0);
    MK_CHECK(p == NULL);
}

static void test_refused(void)
{
    static const struct {
        const char *def, *field;
    } cases[] = {
        {"{\"proxy\": {\"target\": \"ftp://x\"}}", "proxy.target"},
        {"{\"proxy\": {\"target\": \"http:///nohost\"}}", "proxy.target"},
        {"{\"proxy\": {\"target\": \"http://h/?q=1\"}}", "proxy.target"},
        {"{\"proxy\": {\"insecure\": true}}", "proxy.target"},
        {"{\"proxy\": \"http://h\"}", "proxy:"},
        {"{\"proxy\": {\"target\": \"http://h\", \"timeout\": -1}}", "proxy.timeout"},
        {"{\"proxy\": {\"target\": \"http://h\", \"timeout\": 400000}}", "proxy.timeout"},
        {"{\"proxy\": {\"target\": \"http://h\", \"insecure\": \"yes\"}}", "proxy.insecure"},
        {"{\"proxy\": {\"target\": \"http://h\", \"headers\": {\"Bad Name\": \"v\"}}}",
         "proxy.headers"},
        {"{\"proxy\": {\"target\": \"http://h\", \"headers\": {\"X\": \"a\\r\\nb\"}}}",
         "proxy.headers.X"},
        {"{\"proxy\": {\"target\": \"http://h\", \"removeHeaders\": [1]}}",
         "proxy.removeHeaders[0]"},
        {"{\"proxy\": {\"target\": \"http://h\", \"override\": {\"statusCode\": 99}}}",
         "proxy.override.statusCode"},
        {"{\"proxy\": {\"target\": \"http://h\", \"override\": {\"payload\": [1]}}}",
         "proxy.override.payload"},
        {"{\"proxy\": {\"target\": \"http://h\", \"override\": {\"body\": 1}}}",
         "proxy.override.body"},
        {"{\"proxy\": {\"target\": \"http://h\", \"stripPrefix\": \"x\"}}", "proxy.stripPrefix"},
        {"{\"proxy\": {\"target\": \"http://h\", \"tagret\": 1}}", "proxy.tagret"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mk_mock_proxy_t *p = NULL;
        mk_err_t err = {0};
        int rc = parse_text(cases[i].def, &p, &err);
        MK_CHECK_INT(rc, MK_EINVAL);
        MK_CHECK(p == NULL);
        if (strncmp(err.msg, cases[i].field, strlen(cases[i].field)) != 0) {
            char what[1200];
            snprintf(what, sizeof what, "%s -> %s", cases[i].def, err.msg);
            mk_testing_record(false, __FILE__, __LINE__, "message names the field", what);
        }
    }
}

static void test_merge(void)
{
    json_t *dst = json_loads("{\"a\": 1, \"n\": {\"x\": 1, \"y\": 2}, \"l\": [1]}", 0, NULL);
    json_t *src = json_loads("{\"b\": 2, \"n\": {\"y\": 3, \"z\": 4}, \"l\": {\"o\": 1}}", 0, NULL);
    mk_mock_proxy_merge(dst, src);
    json_t *want = json_loads(
        "{\"a\": 1, \"b\": 2, \"n\": {\"x\": 1, \"y\": 3, \"z\": 4}, \"l\": {\"o\": 1}}", 0, NULL);
    MK_CHECK(json_equal(dst, want));
    json_decref(dst);
    json_decref(src);
    json_decref(want);
}

static void test_mock_without_response(void)
{
    mk_mock_t *m = NULL;
    mk_err_t err;
    mk_mock_parse_opts_t opts = {.now_ms = 1000};
    json_t *def = json_loads("{\"http\": {\"route\": \"/p/*\", \"httpMethod\": \"GET\"},"
                             " \"proxy\": {\"target\": \"http://127.0.0.1:1\"}}",
                             0, NULL);
    MK_CHECK_INT(mk_mock_parse(def, &opts, &m, &err), 0);
    MK_CHECK(m && m->proxy && m->nresponses == 1 && m->responses[0].delay_ms == 0);
    mk_mock_unref(m);
    json_decref(def);
    /* Without a proxy, a response is still required. */
    def = json_loads("{\"http\": {\"route\": \"/p\", \"httpMethod\": \"GET\"}}", 0, NULL);
    MK_CHECK_INT(mk_mock_parse(def, &opts, &m, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "response: required") != NULL);
    json_decref(def);
    /* A response's delay and fault stay with a proxy. */
    def = json_loads("{\"http\": {\"route\": \"/p\", \"httpMethod\": \"GET\"},"
                     " \"proxy\": {\"target\": \"http://h\"}, \"response\": {\"delay\": 250,"
                     " \"fault\": \"EMPTY_RESPONSE\"}}",
                     0, NULL);
    MK_CHECK_INT(mk_mock_parse(def, &opts, &m, &err), 0);
    MK_CHECK(m && m->responses[0].delay_ms == 250 &&
             m->responses[0].fault == MK_MOCK_FAULT_EMPTY_RESPONSE);
    mk_mock_unref(m);
    json_decref(def);
}

int main(void)
{
    MK_RUN(test_compiles);
    MK_RUN(test_refused);
    MK_RUN(test_merge);
    MK_RUN(test_mock_without_response);
    return mk_testing_done();
}
