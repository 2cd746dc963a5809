#!/usr/bin/python3
"""SOAP mocks against a real client (Debian's python3-zeep): a WSDL uploaded through the API
creates one mock per operation; zeep calls one and gets the generated sample, and gets a fault
from a mock with a condition and a soapFault. Raw SOAP 1.2 over HTTP (action in Content-Type,
XPath condition, JSON payload with a template), the near-miss fault, malformed XML, an XML bomb
and an external entity (all Client faults), a plain POST that is not SOAP (404), the generators
endpoint and the journal.

usage: soap_test.py MOCKARTY [MOCKARTY_RESOLVER]
With the resolver binary, the same calls also run against a resolver following a PostgreSQL
admin.
"""
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402

import zeep  # noqa: E402
import zeep.exceptions  # noqa: E402

logging.getLogger("zeep").setLevel(logging.ERROR)

TOKEN = "soap-e2e-token"

WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"
             xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
             xmlns:xs="http://www.w3.org/2001/XMLSchema"
             xmlns:tns="urn:example:accounts" targetNamespace="urn:example:accounts">
  <types>
    <xs:schema targetNamespace="urn:example:accounts" elementFormDefault="qualified">
      <xs:simpleType name="Status">
        <xs:restriction base="xs:string">
          <xs:enumeration value="ACTIVE"/><xs:enumeration value="CLOSED"/>
        </xs:restriction>
      </xs:simpleType>
      <xs:complexType name="Money">
        <xs:sequence>
          <xs:element name="amount" type="xs:decimal"/>
          <xs:element name="currency" type="xs:string"/>
        </xs:sequence>
      </xs:complexType>
      <xs:element name="GetAccount">
        <xs:complexType><xs:sequence><xs:element name="id" type="xs:int"/></xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="GetAccountResponse">
        <xs:complexType><xs:sequence>
          <xs:element name="id" type="xs:int"/>
          <xs:element name="owner" type="xs:string"/>
          <xs:element name="status" type="tns:Status"/>
          <xs:element name="balance" type="tns:Money"/>
          <xs:element name="opened" type="xs:date"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="CloseAccount">
        <xs:complexType><xs:sequence><xs:element name="id" type="xs:int"/></xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="CloseAccountResponse">
        <xs:complexType><xs:sequence><xs:element name="closed" type="xs:boolean"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:schema>
  </types>
  <message name="GetAccountIn"><part name="parameters" element="tns:GetAccount"/></message>
  <message name="GetAccountOut"><part name="parameters" element="tns:GetAccountResponse"/></message>
  <message name="CloseAccountIn"><part name="parameters" element="tns:CloseAccount"/></message>
  <message name="CloseAccountOut">
    <part name="parameters" element="tns:CloseAccountResponse"/>
  </message>
  <portType name="AccountPort">
    <operation name="GetAccount">
      <input message="tns:GetAccountIn"/><output message="tns:GetAccountOut"/>
    </operation>
    <operation name="CloseAccount">
      <input message="tns:CloseAccountIn"/><output message="tns:CloseAccountOut"/>
    </operation>
  </portType>
  <binding name="AccountBinding" type="tns:AccountPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="GetAccount">
      <soap:operation soapAction="urn:example:accounts/GetAccount"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation>
    <operation name="CloseAccount">
      <soap:operation soapAction="urn:example:accounts/CloseAccount"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="AccountService">
    <port name="AccountPort" binding="tns:AccountBinding">
      <soap:address location="http://localhost:5770/ws/accounts"/>
    </port>
  </service>
</definitions>
"""

MOCKS = [
    # A fault for one account id: the condition reads the operation's content as JSON.
    {"id": "soap-missing", "priority": 10,
     "soap": {"path": "/ws/accounts", "method": "GetAccount",
              "conditions": [{"path": "$.body.id", "assertAction": "equals", "value": 13}]},
     "response": {"soapFault": {"faultCode": "soap:Client", "faultString": "Account not found",
                                "faultActor": "urn:example:accounts",
                                "detail": "<reason>no account 13</reason>", "httpStatus": 500}}},
    # SOAP 1.2 at the default path /soap: XPath on the envelope with its own prefixes, the action
    # from Content-Type, a JSON payload turned into XML with a template reading the request.
    {"id": "soap-ping",
     "soap": {"method": "Ping", "action": "urn:p/Ping",
              "conditions": [{"path": "/soap:Envelope/soap:Body/p:Ping/p:msg",
                              "assertAction": "matches", "value": "^hel"}],
              "header": [{"path": "X-Tenant", "assertAction": "equals", "value": "t1"}]},
     "response": {"payload": {"PingResponse": {"@xmlns": "urn:p", "echo": "$.body.msg",
                                               "n": 3}}}},
    # An XML string payload, served in either version's envelope.
    {"id": "soap-any", "soap": {"path": "/legacy"},
     "response": {"payload": "<Ok xmlns=\"urn:legacy\">yes</Ok>"}},
]

PING12 = """<?xml version="1.0"?>
<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:p="urn:p">
  <e:Body><p:Ping><p:msg>%s</p:msg></p:Ping></e:Body>
</e:Envelope>"""

ENV11 = """<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>%s</s:Body>
</s:Envelope>"""

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>""" + ENV11 % "<lolz>&lol9;</lolz>"

XXE = """<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>""" + ENV11 % "<a>&xxe;</a>"


def api(node, method, path, body=None, **kw):
    return harness.api(node, TOKEN, method, path, body=body, **kw)


def post(port, path, text, ctype, extra=None):
    h = {"Content-Type": ctype}
    h.update(extra or {})
    return services.request(port, "POST", path, raw=text.encode(), headers=h)


def zeep_calls(port, wsdl_path, where, admin_port):
    # The WSDL as the mock server serves it: its address points at the admin the WSDL was
    # uploaded to (or ?baseUrl=).
    r = services.request(port, "GET", "/ws/accounts?wsdl")
    check(r.status == 200 and r.header("Content-Type").startswith("text/xml") and
          ('location="http://127.0.0.1:%d/ws/accounts"' % admin_port) in r.raw.decode(),
          "%s: GET /ws/accounts?wsdl serves the WSDL with the server's address (%s)" %
          (where, r.status))
    served = zeep.Client("http://127.0.0.1:%d/ws/accounts?wsdl" % port)
    r = served.service.GetAccount(id=7)
    check(r.status == "ACTIVE" and r.owner == "string",
          "%s: zeep loads GET /ws/accounts?wsdl and calls the address it gives (%s)" %
          (where, r.status))
    client = zeep.Client(wsdl=wsdl_path)
    svc = client.create_service("{urn:example:accounts}AccountBinding",
                                "http://127.0.0.1:%d/ws/accounts" % port)
    r = svc.GetAccount(id=42)
    check(r.status == "ACTIVE" and r.balance.currency == "string" and r.id == 0 and
          str(r.opened) == "2024-01-01",
          "%s: zeep gets the WSDL-generated sample (%s)" % (where, r))
    r = svc.CloseAccount(id=42)
    check(r is True, "%s: zeep calls the second operation (%r)" % (where, r))
    try:
        svc.GetAccount(id=13)
        check(False, "%s: zeep gets a fault for account 13" % where)
    except zeep.exceptions.Fault as f:
        check(f.message == "Account not found" and f.code.endswith("Client") and
              f.actor == "urn:example:accounts" and f.detail is not None and
              f.detail.find("reason").text == "no account 13",
              "%s: zeep raises the mock's fault (%s %s %s)" % (where, f.code, f.message, f.actor))


def raw_calls(port, where, token_details):
    # SOAP 1.2: action in Content-Type, XPath with the envelope's prefix, header condition.
    ct12 = 'application/soap+xml; charset=utf-8; action="urn:p/Ping"'
    r = post(port, "/soap", PING12 % "hello", ct12, {"X-Tenant": "t1"})
    body = r.raw.decode()
    check(r.status == 200 and r.header("Content-Type").startswith("application/soap+xml") and
          "http://www.w3.org/2003/05/soap-envelope" in body and "<echo>hello</echo>" in body and
          "<n>3</n>" in body,
          "%s: raw SOAP 1.2 call answered in a 1.2 envelope with the template (%s)" % (where, r))
    # No match: a Sender fault naming the operation; with the token, the near miss in detail.
    h = {"X-Tenant": "t1"}
    if token_details:
        h["Authorization"] = "Bearer " + TOKEN
    r = post(port, "/soap", PING12 % "bye", ct12, h)
    body = r.raw.decode()
    check(r.status == 400 and "env:Sender" in body and
          "no SOAP mock matched operation 'Ping'" in body,
          "%s: a SOAP 1.2 call no mock matches gets a Sender fault (%s)" % (where, r))
    if token_details:
        check("soap-ping" in body and "xpath /soap:Envelope/soap:Body/p:Ping/p:msg matches" in body
              and "bye" in body,
              "%s: the fault's detail says which XPath condition failed (%s)" % (where, body[-600:]))
    r = post(port, "/soap", PING12 % "hello", 'application/soap+xml; action="urn:p/Other"',
             {"X-Tenant": "t1", "Authorization": "Bearer " + TOKEN})
    check(r.status == 400 and "action: expected" in r.raw.decode(),
          "%s: a wrong action is named in the near miss (%s)" % (where, r))
    # SOAP 1.1 with the catch-all mock of /legacy, SOAPAction header.
    r = post(port, "/legacy", ENV11 % "<Anything xmlns='urn:x'/>", "text/xml; charset=utf-8",
             {"SOAPAction": '"urn:any"'})
    body = r.raw.decode()
    check(r.status == 200 and r.header("Content-Type").startswith("text/xml") and
          "http://schemas.xmlsoap.org/soap/envelope/" in body and
          '<Ok xmlns="urn:legacy">yes</Ok>' in body,
          "%s: an XML string payload in a 1.1 envelope, any operation (%s)" % (where, r))
    # Hostile and broken envelopes: Client faults, quickly, the server unharmed.
    for name, text in (("an XML bomb", BOMB), ("an external entity", XXE),
                       ("malformed XML", "<s:Envelope xmlns:s='x'><oops"),
                       ("a non-SOAP document", "<a/>")):
        t0 = time.time()
        r = post(port, "/legacy", text, "text/xml")
        body = r.raw.decode()
        check(r.status == 500 and "<faultcode>soap:Client</faultcode>" in body and
              "malformed SOAP request" in body and "root:" not in body and
              time.time() - t0 < 2,
              "%s: %s gets a Client fault (%s)" % (where, name, r))
    r = post(port, "/soap", PING12 % "hello", ct12, {"X-Tenant": "t1"})
    check(r.status == 200, "%s: still serving after hostile input (%s)" % (where, r.status))
    # Not SOAP: a JSON POST to a SOAP endpoint path, an XML POST where no SOAP mock lives.
    r = services.request(port, "POST", "/soap", body={"a": 1})
    check(r.status == 404 and r.json and r.json.get("code") == "not_found",
          "%s: a JSON POST to /soap is a plain 404 (%s)" % (where, r))
    r = post(port, "/elsewhere", ENV11 % "<Ping/>", "text/xml")
    check(r.status == 404, "%s: an envelope where no SOAP mock lives is a plain 404 (%s)" %
          (where, r.status))
    # HTTP method SOAP does not reach SOAP mocks through the HTTP route index.
    r = services.request(port, "SOAP", "/soap/Ping", raw=b"")
    check(r.status == 404, "%s: an HTTP request with method SOAP is a 404 (%s)" % (where, r.status))


def wait_for(port, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = post(port, "/legacy", ENV11 % "<X/>", "text/xml")
        if r.status == 200:
            return True
        time.sleep(0.2)
    check(False, "%s: mocks reached the resolver" % what)
    return False


def main():
    with harness.AdminAndResolver("mk-soap-", TOKEN) as setup:
        wsdl_path = os.path.join(setup.work, "accounts.wsdl")
        with open(wsdl_path, "w") as f:
            f.write(WSDL)
        admin = setup.start_admin()

        st, body = api(admin, "POST", "/api/v1/generators/soap/preview", raw=WSDL.encode(),
                       headers={"Content-Type": "text/xml"})
        check(st == 200 and body["count"] == 2,
              "generators/soap/preview translates the WSDL (%s %s)" % (st, str(body)[:300]))
        st, body = api(admin, "POST", "/api/v1/soap/wsdl", raw=WSDL.encode(),
                       headers={"Content-Type": "text/xml"})
        ops = [m for m in (body or {}).get("mocks", []) if "soap" in m]
        wsdl = [m for m in (body or {}).get("mocks", []) if "http" in m]
        check(st == 201 and body["created"] == 3 and
              sorted(m["soap"]["method"] for m in ops) == ["CloseAccount", "GetAccount"]
              and all(m["soap"]["path"] == "/ws/accounts" for m in ops) and
              len(wsdl) == 1 and wsdl[0]["http"]["route"] == "/ws/accounts",
              "WSDL upload creates one mock per operation and GET ?wsdl (%s %s)" %
              (st, str(body)[:300]))
        st, body = api(admin, "POST", "/api/v1/soap/wsdl", raw=WSDL.encode())
        check(st == 201 and body["overwritten"] == 3 and body["created"] == 0,
              "uploading the WSDL again replaces its mocks (%s %s)" % (st, str(body)[:200]))
        st, body = api(admin, "POST", "/api/v1/soap/wsdl", raw=BOMB.encode())
        check(st == 400 and "DOCTYPE" in json.dumps(body),
              "a WSDL with a DOCTYPE is refused (%s %s)" % (st, body))
        for m in MOCKS:
            st, body = api(admin, "POST", "/api/v1/mocks", m)
            check(st in (200, 201), "create %s (%s %s)" % (m["id"], st, body))
        for bad, field in (({"soap": {"method": "a b"}}, "soap.method"),
                           ({"soap": {"conditions": [{"path": "//a[", "assertAction": "any"}]}},
                            "soap.conditions[0].path"),
                           ({"soap": {"path": "x"}}, "soap.path")):
            bad["response"] = {"payload": "<a/>"}
            st, body = api(admin, "POST", "/api/v1/mocks", bad)
            check(st == 400 and field in json.dumps(body),
                  "an invalid SOAP mock is refused naming %s (%s %s)" % (field, st, body))

        zeep_calls(admin.port, wsdl_path, "admin", admin.port)
        raw_calls(admin.port, "admin", True)

        st, body = api(admin, "GET", "/api/v1/requests?protocol=soap&limit=200")
        entries = (body or {}).get("requests", []) if isinstance(body, dict) else body or []
        ops = [e.get("operation") for e in entries]
        check(st == 200 and "GetAccount" in ops and "Ping" in ops and
              any(e.get("mockId") == "soap-missing" for e in entries),
              "journal: SOAP calls recorded with protocol soap and operation (%s)" % ops[:12])
        metrics = admin.request("GET", "/metrics").raw.decode()
        check('mockarty_protocol_requests_total{protocol="soap",outcome="matched"}' in metrics,
              "/metrics counts SOAP mock calls by protocol")

        if setup.resolver_bin:
            res = setup.start_resolver()
            if wait_for(res.port, "resolver"):
                zeep_calls(res.port, wsdl_path, "resolver", admin.port)
                raw_calls(res.port, "resolver", False)
            harness.check_exit(res, "resolver")
        harness.check_exit(admin, "admin")
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
