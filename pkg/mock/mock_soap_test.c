/* Tests for SOAP mock definitions: route and pseudo-method, both versions' answers, faults,
 * XPath and JSON conditions, and refusals naming their field. */
#include "mock/mock.h"
#include "mock/mock_soap.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mk_mock_t *parse(const char *text, mk_err_t *err)
{
    json_error_t jerr;
    json_t *def = json_loads(text, 0, &jerr);
    if (def == NULL) {
        fprintf(stderr, "bad test JSON: %s\n", jerr.text);
        return NULL;
    }
    mk_mock_t *m = NULL;
    mk_mock_parse_opts_t opts = {.now_ms = 1000};
    if (mk_mock_parse(def, &opts, &m, err) != 0)
        m = NULL;
    json_decref(def);
    return m;
}

static const char *header(const mk_mock_response_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (mk_str_caseeq(r->headers[i].name, mk_str_of(name)))
            return r->headers[i].value.base;
    return NULL;
}

static bool has(const char *hay, const char *needle)
{
    bool ok = hay && strstr(hay, needle);
    if (!ok)
        fprintf(stderr, "missing %s in %s\n", needle, hay ? hay : "(null)");
    return ok;
}

static void test_route_and_answers(void)
{
    mk_err_t err;
    /* The Go SDK's empty sections do not make it an HTTP mock. */
    mk_mock_t *m = parse("{\"id\":\"s1\",\"http\":{},\"grpc\":{},\"pathPrefix\":\"/team/\","
                         "\"soap\":{\"path\":\"/ws/acc/\",\"method\":\"GetAccount\","
                         "\"action\":\"urn:get\",\"service\":\"Acc\"},"
                         "\"response\":{\"payload\":{\"Envelope\":{\"Body\":{\"R\":{"
                         "\"@xmlns\":\"urn:a\",\"name\":\"$.fake.FirstName\"}}}}}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    MK_CHECK_STR(m->method, MK_MOCK_SOAP_METHOD);
    MK_CHECK_STR(m->route, "/team/ws/acc/GetAccount");
    MK_CHECK(m->soap != NULL && m->soap->endpoint_len == strlen("/team/ws/acc"));
    MK_CHECK_STR(m->soap->action, "urn:get");
    const mk_mock_response_t *r11 = &m->responses[0], *r12 = &m->soap->v12->responses[0];
    MK_CHECK_INT(r11->status, 200);
    MK_CHECK(has(header(r11, "Content-Type"), "text/xml"));
    MK_CHECK(has(header(r12, "Content-Type"), "application/soap+xml"));
    /* A faker: both answers are templates, each in its version's envelope. */
    MK_CHECK(r11->body_tpl != NULL && r12->body_tpl != NULL);
    MK_CHECK(has(r11->body, MK_SOAP_NS_11));
    MK_CHECK(has(r11->body, "<R xmlns=\"urn:a\"><name>$.fake.FirstName</name></R>"));
    MK_CHECK(has(r12->body, MK_SOAP_NS_12));
    /* The stored definition reloads into the same mock. */
    json_t *def = mk_mock_definition(m);
    mk_mock_t *back = NULL;
    MK_CHECK_INT(mk_mock_load(def, 0, 0, &back, &err), 0);
    MK_CHECK(back && back->soap && strcmp(back->route, m->route) == 0);
    mk_mock_unref(back);
    json_decref(def);
    mk_mock_unref(m);

    /* No method: the endpoint's catch-all; default path /soap; an envelope string kept. */
    m = parse("{\"soap\":{\"service\":\"X\"},\"response\":{\"payload\":"
              "\"<e:Envelope xmlns:e='urn:own'><e:Body/></e:Envelope>\"}}",
              &err);
    MK_CHECK(m != NULL);
    if (m) {
        MK_CHECK_STR(m->route, "/soap/" MK_MOCK_SOAP_ANY);
        MK_CHECK_STR(m->responses[0].body, "<e:Envelope xmlns:e='urn:own'><e:Body/></e:Envelope>");
        MK_CHECK(m->responses[0].body_tpl == NULL);
    }
    mk_mock_unref(m);
    /* An HTTP mock stays one. */
    m = parse("{\"http\":{\"route\":\"/x\"},\"soap\":{\"method\":\"A\"},\"response\":{}}", &err);
    MK_CHECK(m != NULL && m->soap == NULL && strcmp(m->method, "ANY") == 0);
    mk_mock_unref(m);
}

static void test_faults(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"soap\":{\"method\":\"A\"},\"oneOf\":{\"responses\":["
                         "{\"soapFault\":{\"faultCode\":\"soap:Client\",\"faultString\":\"nope\","
                         "\"detail\":\"<d>1</d>\"}},"
                         "{\"soapFault\":{\"faultCode\":\"Server\",\"faultString\":\"x\","
                         "\"httpStatus\":503}}]}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    MK_CHECK_INT(m->nresponses, 2);
    MK_CHECK_INT(m->soap->v12->nresponses, 2);
    MK_CHECK_INT(m->responses[0].status, 500);
    MK_CHECK(has(m->responses[0].body, "<faultcode>soap:Client</faultcode>"));
    MK_CHECK(has(m->responses[0].body, "<detail><d>1</d></detail>"));
    MK_CHECK(has(m->soap->v12->responses[0].body, "env:Sender"));
    MK_CHECK_INT(m->responses[1].status, 503);
    MK_CHECK(has(m->soap->v12->responses[1].body, "env:Receiver"));
    mk_mock_unref(m);
}

static void test_conditions(void)
{
    mk_err_t err;
    mk_mock_t *m = parse("{\"soap\":{\"method\":\"Get\",\"conditions\":["
                         "{\"path\":\"//a:id\",\"assertAction\":\"equals\",\"value\":42},"
                         "{\"path\":\"$.body.kind\",\"assertAction\":\"equals\",\"value\":\"x\"}],"
                         "\"header\":[{\"path\":\"X-T\",\"assertAction\":\"any\"}]},"
                         "\"response\":{\"payload\":\"<ok/>\"}}",
                         &err);
    MK_CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    MK_CHECK_INT(m->soap->nxconds, 1);
    MK_CHECK_INT(m->nconds, 2); /* the JSON condition and the header */
    const char *env = "<s:Envelope xmlns:s=\"" MK_SOAP_NS_11 "\" xmlns:a=\"urn:a\"><s:Body>"
                      "<a:Get><a:id>%s</a:id><a:kind>x</a:kind></a:Get></s:Body></s:Envelope>";
    char doc[512];
    snprintf(doc, sizeof doc, env, "42");
    mk_soap_msg_t *msg = NULL;
    MK_CHECK_INT(mk_soap_parse(doc, strlen(doc), &msg, &err), 0);
    MK_CHECK(msg && mk_mock_soap_xconds_hold(m->soap, msg));
    mk_soap_msg_free(msg);
    snprintf(doc, sizeof doc, env, "41");
    msg = NULL;
    MK_CHECK_INT(mk_soap_parse(doc, strlen(doc), &msg, &err), 0);
    MK_CHECK(msg && !mk_mock_soap_xconds_hold(m->soap, msg));
    char why[512] = "";
    if (msg)
        mk_mock_soap_xcond_explain(m->soap, 0, msg, why, sizeof why);
    MK_CHECK(has(why, "xpath //a:id equals 42"));
    MK_CHECK(has(why, "41"));
    mk_soap_msg_free(msg);

    /* The JSON condition reads the operation's content ($.body is it). */
    mk_request_t req;
    memset(&req, 0, sizeof req);
    mk_request_init(&req);
    mk_header_t h = {MK_STR_LIT("X-T"), MK_STR_LIT("1")};
    req.headers = &h;
    req.nheaders = 1;
    mk_request_set_json(&req, json_pack("{s:s}", "kind", "x"));
    bool all = true;
    for (size_t i = 0; i < m->nconds; i++)
        all = all && mk_cond_eval(m->conds[i], &req);
    MK_CHECK(all);
    mk_request_set_json(&req, json_pack("{s:s}", "kind", "y"));
    MK_CHECK(!mk_cond_eval(m->conds[0], &req));
    mk_request_release(&req);
    mk_mock_unref(m);
}

static void refused(const char *text, const char *prefix)
{
    mk_err_t err = {0};
    mk_mock_t *m = parse(text, &err);
    MK_CHECK(m == NULL);
    bool ok = m == NULL && strncmp(err.msg, prefix, strlen(prefix)) == 0;
    mk_testing_record(ok, __FILE__, __LINE__, prefix, err.msg);
    mk_mock_unref(m);
}

static void test_refusals(void)
{
    refused("{\"soap\":{\"method\":\"a b\"},\"response\":{}}", "soap.method:");
    refused("{\"soap\":{\"path\":\"x\"},\"response\":{}}", "soap.path:");
    refused("{\"soap\":{\"method\":1},\"response\":{}}", "soap.method:");
    refused("{\"soap\":{\"conditions\":[{\"path\":\"//a[\",\"assertAction\":\"any\"}]},"
            "\"response\":{}}",
            "soap.conditions[0].path: invalid XPath");
    refused("{\"soap\":{\"conditions\":{}},\"response\":{}}", "soap.conditions:");
    refused("{\"soap\":{\"header\":[{\"path\":\"X\",\"assertAction\":\"bogus\"}]},"
            "\"response\":{}}",
            "soap.header[0]");
    refused("{\"soap\":{\"method\":\"A\"},\"response\":{\"payload\":[1]}}", "response.payload:");
    refused("{\"soap\":{\"method\":\"A\"},\"response\":{\"payload\":{\"a b\":1}}}",
            "response.payload:");
    refused("{\"soap\":{\"method\":\"A\"},\"response\":{\"soapFault\":{\"faultString\":\"x\","
            "\"httpStatus\":42}}}",
            "response.soapFault.httpStatus:");
    refused("{\"soap\":{\"method\":\"A\"},\"oneOf\":{\"responses\":[{},"
            "{\"soapFault\":{\"detail\":7}}]}}",
            "oneOf.responses[1].soapFault.detail:");
}

int main(void)
{
    MK_RUN(test_route_and_answers);
    MK_RUN(test_faults);
    MK_RUN(test_conditions);
    MK_RUN(test_refusals);
    return mk_testing_done();
}
