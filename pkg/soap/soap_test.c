/* Tests for SOAP envelopes, XPath, faults, JSON to XML, hostile XML and WSDL samples. */
#include "soap/soap.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char env11[] =
    "<?xml version=\"1.0\"?>"
    "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:acc=\"http://example.com/acc\">"
    "<s:Header><acc:Auth>tok</acc:Auth></s:Header>"
    "<s:Body><acc:GetAccount kind=\"full\"><acc:id>42</acc:id><acc:tag>a</acc:tag>"
    "<acc:tag>b</acc:tag><acc:nested><acc:x>1</acc:x></acc:nested></acc:GetAccount></s:Body>"
    "</s:Envelope>";

static const char env12[] = "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\">"
                            "<env:Body><Ping xmlns=\"urn:p\">hi</Ping></env:Body></env:Envelope>";

static mk_soap_msg_t *parse(const char *s)
{
    mk_soap_msg_t *m = NULL;
    mk_err_t err;
    if (mk_soap_parse(s, strlen(s), &m, &err) != 0)
        fprintf(stderr, "parse: %s\n", err.msg);
    return m;
}

static void test_envelopes(void)
{
    mk_soap_msg_t *m = parse(env11);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK_INT(mk_soap_msg_version(m), MK_SOAP_11);
    MK_CHECK_STR(mk_soap_msg_operation(m), "GetAccount");
    json_t *j = mk_soap_msg_body_json(m);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    MK_CHECK_STR(text, "{\"@kind\":\"full\",\"id\":\"42\",\"nested\":{\"x\":\"1\"},"
                       "\"tag\":[\"a\",\"b\"]}");
    free(text);
    json_decref(j);
    mk_soap_msg_free(m);

    m = parse(env12);
    MK_CHECK(m != NULL);
    if (m == NULL)
        return;
    MK_CHECK_INT(mk_soap_msg_version(m), MK_SOAP_12);
    MK_CHECK_STR(mk_soap_msg_operation(m), "Ping");
    mk_soap_msg_free(m);

    /* Empty body, and a document that is not SOAP. */
    m = parse("<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body/></Envelope>");
    MK_CHECK(m != NULL);
    if (m)
        MK_CHECK_STR(mk_soap_msg_operation(m), "");
    mk_soap_msg_free(m);
    mk_err_t err;
    const char *bad[] = {
        "<a/>",
        "<Envelope xmlns=\"urn:x\"><Body/></Envelope>",
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"/>",
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>",
        "",
        "not xml",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = NULL;
        MK_CHECK_INT(mk_soap_parse(bad[i], strlen(bad[i]), &m, &err), MK_EINVAL);
        MK_CHECK(m == NULL);
    }
}

static void test_action(void)
{
    char buf[128];
    mk_soap_action(MK_STR_LIT("text/xml; charset=utf-8"), MK_STR_LIT("\"urn:Get\""), buf,
                   sizeof buf);
    MK_CHECK_STR(buf, "urn:Get");
    mk_soap_action(MK_STR_LIT("application/soap+xml;charset=utf-8;action=\"urn:Ping\""),
                   (mk_str_t){NULL, 0}, buf, sizeof buf);
    MK_CHECK_STR(buf, "urn:Ping");
    mk_soap_action(MK_STR_LIT("application/soap+xml; action=urn:P2 ; charset=utf-8"),
                   (mk_str_t){NULL, 0}, buf, sizeof buf);
    MK_CHECK_STR(buf, "urn:P2");
    mk_soap_action(MK_STR_LIT("text/xml"), (mk_str_t){NULL, 0}, buf, sizeof buf);
    MK_CHECK_STR(buf, "");
    MK_CHECK_INT(mk_soap_version_of(MK_STR_LIT("application/soap+xml; action=x")), MK_SOAP_12);
    MK_CHECK_INT(mk_soap_version_of(MK_STR_LIT("text/xml")), MK_SOAP_11);
}

static bool xpath(const char *expr, const char *doc, const char *want)
{
    mk_soap_xpath_t *xp;
    mk_err_t err;
    if (mk_soap_xpath_compile(expr, &xp, &err) != 0) {
        fprintf(stderr, "xpath %s: %s\n", expr, err.msg);
        return false;
    }
    mk_soap_msg_t *m = parse(doc);
    char *text = NULL;
    bool found = m && mk_soap_xpath_eval(xp, m, &text);
    bool ok = want == NULL ? !found : found && text && strcmp(text, want) == 0;
    if (!ok)
        fprintf(stderr, "xpath %s: found=%d text=%s\n", expr, found, text ? text : "(null)");
    free(text);
    mk_soap_msg_free(m);
    mk_soap_xpath_free(xp);
    return ok;
}

static void test_xpath(void)
{
    /* The envelope's own prefixes, the conventional soap prefix, and local-name(). */
    MK_CHECK(xpath("//acc:id", env11, "42"));
    MK_CHECK(xpath("/soap:Envelope/soap:Body/acc:GetAccount/acc:id", env11, "42"));
    MK_CHECK(xpath("//*[local-name()='id']", env11, "42"));
    MK_CHECK(xpath("//acc:GetAccount/@kind", env11, "full"));
    MK_CHECK(xpath("count(//acc:tag)", env11, "2"));
    MK_CHECK(xpath("//acc:id = '42'", env11, "true"));
    MK_CHECK(xpath("//acc:id = '41'", env11, NULL));
    MK_CHECK(xpath("//acc:missing", env11, NULL));
    MK_CHECK(xpath("//soap:Body/*[local-name()='Ping']", env12, "hi"));
    /* A prefix nobody declared selects nothing; it does not fail. */
    MK_CHECK(xpath("//zz:id", env11, NULL));
    mk_soap_xpath_t *xp = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_soap_xpath_compile("//a[", &xp, &err), MK_EINVAL);
    MK_CHECK_INT(mk_soap_xpath_compile("", &xp, &err), MK_EINVAL);
    MK_CHECK(xp == NULL);
}

static bool contains(const mk_buf_t *b, const char *s)
{
    bool ok = b->data && strstr(b->data, s) != NULL;
    if (!ok)
        fprintf(stderr, "missing %s in %s\n", s, b->data ? b->data : "(null)");
    return ok;
}

static void test_faults(void)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_soap_fault_t f = {"soap:Client", "Account not found", "urn:svc", "<code>404</code>"};
    MK_CHECK_INT(mk_soap_fault(MK_SOAP_11, &f, &b), 0);
    MK_CHECK(contains(&b, "<faultcode>soap:Client</faultcode>"));
    MK_CHECK(contains(&b, "<faultstring>Account not found</faultstring>"));
    MK_CHECK(contains(&b, "<faultactor>urn:svc</faultactor>"));
    MK_CHECK(contains(&b, "<detail><code>404</code></detail>"));
    /* The fault parses back as a SOAP 1.1 envelope. */
    mk_soap_msg_t *m = parse(b.data);
    MK_CHECK(m != NULL && strcmp(mk_soap_msg_operation(m), "Fault") == 0);
    mk_soap_msg_free(m);

    mk_buf_reset(&b);
    f = (mk_soap_fault_t){"Client", "a < b", NULL, "not & xml"};
    MK_CHECK_INT(mk_soap_fault(MK_SOAP_12, &f, &b), 0);
    MK_CHECK(contains(&b, "<env:Value>env:Sender</env:Value>"));
    MK_CHECK(contains(&b, "<env:Text xml:lang=\"en\">a &lt; b</env:Text>"));
    MK_CHECK(contains(&b, "<env:Detail>not &amp; xml</env:Detail>"));
    MK_CHECK(strstr(b.data, "env:Role") == NULL); /* no actor, no Role */
    m = parse(b.data);
    MK_CHECK(m != NULL && mk_soap_msg_version(m) == MK_SOAP_12);
    mk_soap_msg_free(m);

    mk_buf_reset(&b);
    f = (mk_soap_fault_t){"soap:Server", "boom", "urn:r", NULL};
    MK_CHECK_INT(mk_soap_fault(MK_SOAP_12, &f, &b), 0);
    MK_CHECK(contains(&b, "env:Receiver"));
    MK_CHECK(contains(&b, "<env:Role>urn:r</env:Role>"));
    mk_buf_reset(&b);
    f = (mk_soap_fault_t){"InsufficientFunds", "no", NULL, NULL};
    MK_CHECK_INT(mk_soap_fault(MK_SOAP_12, &f, &b), 0);
    MK_CHECK(contains(&b, "<env:Subcode><env:Value>InsufficientFunds</env:Value></env:Subcode>"));
    mk_buf_free(&b);
}

static void test_json_to_xml(void)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_err_t err;
    json_t *v = json_loads("{\"Envelope\":{\"Body\":{\"GetAccountResponse\":{\"@xmlns\":\"urn:a\","
                           "\"Id\":\"A&1\",\"Balance\":12.5,\"Ok\":true,\"Tag\":[\"x\",\"y\"],"
                           "\"None\":null}}}}",
                           0, NULL);
    MK_CHECK_INT(mk_soap_json_to_xml(v, &b, &err), 0);
    MK_CHECK_STR(b.data, "<GetAccountResponse xmlns=\"urn:a\"><Id>A&amp;1</Id><Balance>12.5"
                         "</Balance><Ok>true</Ok><Tag>x</Tag><Tag>y</Tag><None/>"
                         "</GetAccountResponse>");
    json_decref(v);
    mk_buf_reset(&b);
    v = json_loads("{\"bad name\":1}", 0, NULL);
    MK_CHECK_INT(mk_soap_json_to_xml(v, &b, &err), MK_EINVAL);
    json_decref(v);

    mk_buf_reset(&b);
    MK_CHECK_INT(mk_soap_wrap(MK_SOAP_12, MK_STR_LIT("<a/>"), &b), 0);
    MK_CHECK(contains(&b, "<env:Body><a/></env:Body>"));
    MK_CHECK(mk_soap_is_envelope(mk_str_of(b.data)));
    MK_CHECK(mk_soap_is_envelope(MK_STR_LIT("  <!-- c --><Envelope>")));
    MK_CHECK(!mk_soap_is_envelope(MK_STR_LIT("<GetResponse/>")));
    mk_buf_free(&b);
}

/* Hostile documents: refused with MK_EINVAL (or MK_ETOOBIG), quickly, without expanding. */
static void test_hostile(void)
{
    const char *docs[] = {
        /* billion laughs */
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
        "<a>&lol3;</a></s:Body></s:Envelope>",
        /* external entity (XXE) */
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
        "<a>&xxe;</a></s:Body></s:Envelope>",
        /* external DTD over the network */
        "<!DOCTYPE x SYSTEM \"http://127.0.0.1:9/x.dtd\"><x/>",
        /* an undeclared entity */
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
        "<a>&xxe;</a></s:Body></s:Envelope>",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        mk_soap_msg_t *m = NULL;
        mk_err_t err = {0};
        int rc = mk_soap_parse(docs[i], strlen(docs[i]), &m, &err);
        MK_CHECK_INT(rc, MK_EINVAL);
        MK_CHECK(m == NULL);
        if (i < 3)
            mk_testing_record(strstr(err.msg, "DOCTYPE") != NULL, __FILE__, __LINE__,
                              "DOCTYPE refused", err.msg);
    }
    /* Deep nesting: refused by depth, not by the stack. */
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_append_str(&b, "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                          "<s:Body>");
    for (int i = 0; i < 100; i++)
        mk_buf_append_str(&b, "<a>");
    for (int i = 0; i < 100; i++)
        mk_buf_append_str(&b, "</a>");
    mk_buf_append_str(&b, "</s:Body></s:Envelope>");
    mk_soap_msg_t *m = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_soap_parse(b.data, b.len, &m, &err), MK_EINVAL);
    mk_testing_record(strstr(err.msg, "deeper") != NULL, __FILE__, __LINE__, "depth", err.msg);
    /* Too big: refused before parsing. */
    MK_CHECK_INT(mk_soap_parse(b.data, MK_SOAP_MAX_BYTES + 1, &m, &err), MK_ETOOBIG);
    mk_buf_free(&b);
}

static const char wsdl[] =
    "<definitions xmlns=\"http://schemas.xmlsoap.org/wsdl/\" "
    "xmlns:soap=\"http://schemas.xmlsoap.org/wsdl/soap/\" "
    "xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:tns=\"urn:acc\" "
    "targetNamespace=\"urn:acc\">"
    "<types><xs:schema targetNamespace=\"urn:acc\" elementFormDefault=\"qualified\">"
    "<xs:simpleType name=\"Status\"><xs:restriction base=\"xs:string\">"
    "<xs:enumeration value=\"ACTIVE\"/><xs:enumeration value=\"CLOSED\"/></xs:restriction>"
    "</xs:simpleType>"
    "<xs:complexType name=\"Money\"><xs:sequence><xs:element name=\"amount\" type=\"xs:decimal\"/>"
    "<xs:element name=\"currency\" type=\"xs:string\"/></xs:sequence>"
    "<xs:attribute name=\"exact\" type=\"xs:boolean\"/></xs:complexType>"
    "<xs:element name=\"GetAccount\"><xs:complexType><xs:sequence>"
    "<xs:element name=\"id\" type=\"xs:int\"/></xs:sequence></xs:complexType></xs:element>"
    "<xs:element name=\"GetAccountResponse\"><xs:complexType><xs:sequence>"
    "<xs:element name=\"id\" type=\"xs:int\"/><xs:element name=\"status\" type=\"tns:Status\"/>"
    "<xs:element name=\"balance\" type=\"tns:Money\"/>"
    "<xs:element name=\"opened\" type=\"xs:date\" minOccurs=\"0\"/>"
    "</xs:sequence></xs:complexType></xs:element>"
    "</xs:schema></types>"
    "<message name=\"GetAccountIn\"><part name=\"p\" element=\"tns:GetAccount\"/></message>"
    "<message name=\"GetAccountOut\"><part name=\"p\" element=\"tns:GetAccountResponse\"/>"
    "</message>"
    "<portType name=\"AccountPort\"><operation name=\"GetAccount\">"
    "<input message=\"tns:GetAccountIn\"/><output message=\"tns:GetAccountOut\"/></operation>"
    "</portType>"
    "<binding name=\"AccountBinding\" type=\"tns:AccountPort\">"
    "<soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>"
    "<operation name=\"GetAccount\"><soap:operation soapAction=\"urn:acc/GetAccount\"/>"
    "<input><soap:body use=\"literal\"/></input><output><soap:body use=\"literal\"/></output>"
    "</operation></binding>"
    "<service name=\"AccountService\"><port name=\"P\" binding=\"tns:AccountBinding\">"
    "<soap:address location=\"http://localhost:5770/ws/account\"/></port></service>"
    "</definitions>";

static void test_wsdl(void)
{
    json_t *mocks = NULL;
    mk_err_t err;
    int rc = mk_soap_wsdl_mocks(wsdl, strlen(wsdl), NULL, &mocks, &err);
    MK_CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "wsdl: %s\n", err.msg);
        return;
    }
    MK_CHECK_INT(json_array_size(mocks), 1);
    json_t *m = json_array_get(mocks, 0);
    json_t *s = json_object_get(m, "soap");
    MK_CHECK_STR(json_string_value(json_object_get(s, "service")), "AccountService");
    MK_CHECK_STR(json_string_value(json_object_get(s, "method")), "GetAccount");
    MK_CHECK_STR(json_string_value(json_object_get(s, "action")), "urn:acc/GetAccount");
    MK_CHECK_STR(json_string_value(json_object_get(s, "path")), "/ws/account");
    const char *payload =
        json_string_value(json_object_get(json_object_get(m, "response"), "payload"));
    MK_CHECK_STR(payload, "<GetAccountResponse xmlns=\"urn:acc\"><id>0</id><status>ACTIVE</status>"
                          "<balance exact=\"true\"><amount>0.0</amount><currency>string</currency>"
                          "</balance><opened>2024-01-01</opened></GetAccountResponse>");
    json_decref(mocks);

    MK_CHECK_INT(mk_soap_wsdl_mocks(wsdl, strlen(wsdl), "/custom", &mocks, &err), 0);
    MK_CHECK_STR(json_string_value(
                     json_object_get(json_object_get(json_array_get(mocks, 0), "soap"), "path")),
                 "/custom");
    json_decref(mocks);

    /* The document again with its address pointing at the mock server. */
    mk_buf_t b;
    mk_buf_init(&b, 0);
    MK_CHECK_INT(mk_soap_wsdl_rewrite(wsdl, strlen(wsdl), "http://m:1/stubs/t", NULL, &b, &err), 0);
    MK_CHECK(contains(&b, "location=\"http://m:1/stubs/t/ws/account\""));
    MK_CHECK(strstr(b.data, "localhost:5770") == NULL);
    mk_buf_reset(&b);
    MK_CHECK_INT(mk_soap_wsdl_rewrite(wsdl, strlen(wsdl), "http://m:1", "/x", &b, &err), 0);
    MK_CHECK(contains(&b, "location=\"http://m:1/x\""));
    json_t *again = NULL;
    MK_CHECK_INT(mk_soap_wsdl_mocks(b.data, b.len, NULL, &again, &err), 0);
    MK_CHECK_INT(json_array_size(again), 1);
    json_decref(again);
    mk_buf_free(&b);

    mocks = NULL;
    MK_CHECK_INT(mk_soap_wsdl_mocks("<x/>", 4, NULL, &mocks, &err), MK_EINVAL);
    MK_CHECK_INT(mk_soap_wsdl_mocks("<x", 2, NULL, &mocks, &err), MK_EINVAL);
    MK_CHECK(strncmp(err.msg, "wsdl: ", 6) == 0);
    MK_CHECK(mocks == NULL);
}

/* rpc style over a SOAP 1.2 binding, typed parts, a complexContent extension, a choice, an
 * element ref, and two ports on one address (the operation once). */
static const char wsdl_rpc[] =
    "<w:definitions xmlns:w=\"http://schemas.xmlsoap.org/wsdl/\" "
    "xmlns:s12=\"http://schemas.xmlsoap.org/wsdl/soap12/\" "
    "xmlns:s11=\"http://schemas.xmlsoap.org/wsdl/soap/\" "
    "xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:t=\"urn:t\" targetNamespace=\"urn:t\">"
    "<w:types><xs:schema targetNamespace=\"urn:t\">"
    "<xs:complexType name=\"Base\"><xs:sequence><xs:element name=\"id\" type=\"xs:long\"/>"
    "</xs:sequence></xs:complexType>"
    "<xs:complexType name=\"Item\"><xs:complexContent><xs:extension base=\"t:Base\">"
    "<xs:sequence><xs:choice><xs:element name=\"a\" type=\"xs:boolean\"/>"
    "<xs:element name=\"b\" type=\"xs:string\"/></xs:choice><xs:element ref=\"t:note\"/>"
    "</xs:sequence></xs:extension></xs:complexContent></xs:complexType>"
    "<xs:element name=\"note\" type=\"xs:dateTime\"/>"
    "</xs:schema></w:types>"
    "<w:message name=\"In\"><w:part name=\"q\" type=\"xs:string\"/></w:message>"
    "<w:message name=\"Out\"><w:part name=\"item\" type=\"t:Item\"/>"
    "<w:part name=\"count\" type=\"xs:int\"/></w:message>"
    "<w:portType name=\"PT\"><w:operation name=\"Find\"><w:input message=\"t:In\"/>"
    "<w:output message=\"t:Out\"/></w:operation></w:portType>"
    "<w:binding name=\"B12\" type=\"t:PT\"><s12:binding style=\"rpc\"/>"
    "<w:operation name=\"Find\"><s12:operation soapAction=\"urn:t/Find\"/>"
    "<w:output><s12:body use=\"literal\" namespace=\"urn:t:rpc\"/></w:output></w:operation>"
    "</w:binding>"
    "<w:binding name=\"B11\" type=\"t:PT\"><s11:binding style=\"rpc\"/></w:binding>"
    "<w:binding name=\"Http\" type=\"t:PT\"/>"
    "<w:service name=\"S\"><w:port name=\"p12\" binding=\"t:B12\">"
    "<s12:address location=\"https://h/svc?x=1\"/></w:port>"
    "<w:port name=\"p11\" binding=\"t:B11\"><s11:address location=\"https://h/svc\"/>"
    "</w:port><w:port name=\"ph\" binding=\"t:Http\"/></w:service>"
    "</w:definitions>";

static void test_wsdl_rpc(void)
{
    json_t *mocks = NULL;
    mk_err_t err;
    int rc = mk_soap_wsdl_mocks(wsdl_rpc, strlen(wsdl_rpc), NULL, &mocks, &err);
    MK_CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "wsdl: %s\n", err.msg);
        return;
    }
    MK_CHECK_INT(json_array_size(mocks), 1);
    json_t *m = json_array_get(mocks, 0);
    json_t *s = json_object_get(m, "soap");
    MK_CHECK_STR(json_string_value(json_object_get(s, "path")), "/svc");
    MK_CHECK_STR(json_string_value(json_object_get(s, "action")), "urn:t/Find");
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(m, "response"), "payload")),
                 "<FindResponse xmlns=\"urn:t:rpc\"><item xmlns=\"\"><id>0</id><a>true</a>"
                 "<note xmlns=\"urn:t\">2024-01-01T00:00:00Z</note></item>"
                 "<count xmlns=\"\">0</count></FindResponse>");
    json_decref(mocks);
    /* A WSDL whose only binding is not SOAP has nothing to mock. */
    const char *http_only = "<definitions xmlns=\"http://schemas.xmlsoap.org/wsdl/\">"
                            "<service name=\"S\"/></definitions>";
    MK_CHECK_INT(mk_soap_wsdl_mocks(http_only, strlen(http_only), NULL, &mocks, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "no operation") != NULL);
}

int main(void)
{
    MK_RUN(test_wsdl_rpc);
    MK_RUN(test_envelopes);
    MK_RUN(test_action);
    MK_RUN(test_xpath);
    MK_RUN(test_faults);
    MK_RUN(test_json_to_xml);
    MK_RUN(test_hostile);
    MK_RUN(test_wsdl);
    return mk_testing_done();
}
