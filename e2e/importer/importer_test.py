"""Imports against the real admin binary: preview stores nothing, create stores in one
transaction, the imported mocks answer, a re-import overwrites, bad input is a 400 that names the
problem and stores nothing. Usage: importer_test.py <mockarty binary>"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "pkg", "importer", "testdata")
sys.path.insert(0, os.path.join(HERE, "..", "admin"))
sys.path.insert(0, os.path.join(HERE, ".."))
from mockarty_proc import Mockarty, free_port  # noqa: E402
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402

BINARY = sys.argv[1]


def text(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def count(node, ns):
    status, body, _, _ = node.request("GET", "/api/v1/mocks?namespace=%s&limit=10000" % ns)
    return len((body or {}).get("items", [])) if status == 200 else -1


def post(node, path, body=None, raw=None, headers=None):
    return node.request("POST", path, body=body, raw=raw, headers=headers)


def scenario_openapi(node):
    spec = text("petstore.yaml")
    req = {"spec": spec, "namespace": "shop", "pathPrefix": "/v1", "tags": ["petstore"]}
    st, body, raw, _ = post(node, "/api/v1/generators/openapi/preview", req)
    check(st == 200 and body["count"] == 9 and len(body["mocks"]) == 9,
          "openapi preview answers 9 mocks (%s %s)" % (st, raw[:200]))
    check(len(body.get("skipped", [])) == 2 and "default" in body["skipped"][0]["reason"],
          "preview reports the skipped default responses")
    check(count(node, "shop") == 0, "preview stores nothing")

    st, body, raw, _ = post(node, "/api/v1/generators/openapi", req)
    check(st == 201 and body["created"] == 9 and body["overwritten"] == 0,
          "openapi create: 9 created (%s %s)" % (st, raw[:300]))
    check(count(node, "shop") == 9, "9 mocks stored in the request's namespace")
    check(all("petstore" in m.get("tags", []) and m["namespace"] == "shop" for m in body["mocks"]),
          "tags and namespace applied")

    st, pets, raw, _ = node.request("GET", "/stubs/shop/v1/pets")
    check(st == 200 and isinstance(pets, list) and isinstance(pets[0]["id"], int)
          and 1 <= pets[0]["id"] <= 99999 and pets[0]["status"] == "available"
          and "@" in pets[0]["owner"]["email"],
          "GET /pets answers generated data with fakers (%s %s)" % (st, raw[:200]))
    st, pet, _, _ = node.request("GET", "/stubs/shop/v1/pets/7")
    check(st == 200 and isinstance(pet, dict) and "name" in pet, "GET /pets/:petId answers")
    st, err, _, _ = node.request("GET", "/stubs/shop/v1/pets/7",
                                 headers={"x-mock-response-code": "404"})
    check(st == 404 and err == {"code": 404, "message": "no such pet"},
          "x-mock-response-code selects the 404 example")
    st, _, _, _ = post(node, "/stubs/shop/v1/pets", body={"name": "x"})
    check(st == 404, "a required header missing: no match")
    hdr = {"X-Request-Source": "e2e"}
    a = post(node, "/stubs/shop/v1/pets", body={"name": "x"}, headers=hdr)
    b = post(node, "/stubs/shop/v1/pets", body={"name": "x"}, headers=hdr)
    check(a[0] == 201 and a[1]["name"] == "Rex" and b[1]["name"] == "Tom",
          "named examples answer in turn (%s %s %s)" % (a[0], a[2][:80], b[2][:80]))
    # Without q the search mock does not match (GET /pets/:petId, with petId=search, answers).
    st, other, _, _ = node.request("GET", "/stubs/shop/v1/pets/search")
    check(st == 200 and isinstance(other, dict), "a required query parameter missing: no match")
    st, found, _, _ = node.request("GET", "/stubs/shop/v1/pets/search?q=rex")
    check(st == 200 and isinstance(found, list), "the concrete path ranks above /pets/:petId")
    st, found, _, _ = node.request("GET", "/stubs/shop/v1/pets/search?q=rex")
    check(st == 200 and len(found) == 2, "with the required query parameter: minItems 2")

    st, body, raw, _ = post(node, "/api/v1/generators/openapi/preview", req)
    check(st == 200 and body["count"] == 9 and body["overwritten"] == 9,
          "a preview says what a create would overwrite (%s)" % raw[:200])
    st, body, raw, _ = post(node, "/api/v1/generators/openapi", req)
    check(st == 201 and body["created"] == 0 and body["overwritten"] == 9,
          "re-import overwrites the same 9 (%s)" % raw[:200])
    check(count(node, "shop") == 9, "still 9 mocks")

    # The spec as the raw body (YAML), options in the query.
    st, body, raw, _ = post(node, "/api/v1/generators/openapi?namespace=raw&pathPrefix=/r",
                            raw=spec.encode(), headers={"Content-Type": "application/yaml"})
    check(st == 201 and body["created"] == 9, "raw YAML body with query options (%s)" % raw[:200])
    st, _, _, _ = node.request("GET", "/stubs/raw/r/pets/1")
    check(st == 200, "raw import serves under its prefix")

    # OpenAPI 3.1 JSON given as an object.
    st, body, raw, _ = post(node, "/api/v1/generators/openapi",
                            {"spec": json.loads(text("petstore31.json")), "namespace": "p31"})
    check(st == 201 and body["created"] == 21, "3.1 JSON spec: 21 mocks (%s)" % raw[:200])
    st, order, _, _ = post(node, "/stubs/p31/store/order", body={})
    check(st == 200 and order.get("quantity") == 7 and order.get("status") == "placed",
          "3.1 const and enum served")


def scenario_bad_input(node):
    def refused(path, req, needle, what, ns):
        st, body, raw, _ = post(node, path, req)
        msg = (body or {}).get("error", "")
        check(st == 400 and needle in msg and count(node, ns) == 0,
              "%s: 400 naming the problem, nothing stored (%s %s)" % (what, st, raw[:300]))

    refused("/api/v1/generators/openapi",
            {"spec": "openapi: 3.0.0\npaths:\n  /x: [\n", "namespace": "bad"},
            "invalid YAML", "malformed YAML", "bad")
    dangling = json.loads(text("petstore31.json"))
    dangling["paths"]["/pet"]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"]["$ref"] = "#/components/schemas/Nowhere"
    refused("/api/v1/generators/openapi", {"spec": dangling, "namespace": "bad"},
            "'#/components/schemas/Nowhere' points nowhere", "$ref to nowhere", "bad")
    big = "openapi: 3.0.0\n# " + "x" * (9 << 20) + "\n"
    refused("/api/v1/generators/openapi", {"spec": big, "namespace": "bad"},
            "over the import limit", "oversized spec", "bad")
    refused("/api/v1/generators/openapi", {"url": "http://example.com/x.yaml", "namespace": "bad"},
            "not supported", "url without spec", "bad")
    refused("/api/v1/import/wiremock",
            {"spec": {"mappings": [{"request": {"url": "/ok"}, "response": {}},
                                   {"request": {"urlPattern": "/a/("}, "response": {}}]},
             "namespace": "bad"},
            "mappings[1]", "WireMock mapping with an invalid regex", "bad")
    # partial=true stores what could be imported and lists the rest.
    st, body, raw, _ = post(node, "/api/v1/generators/openapi",
                            {"spec": dangling, "namespace": "partial", "partial": True})
    check(st == 201 and body["created"] == 20 and len(body.get("errors", [])) == 1,
          "partial=true imports the rest (%s)" % raw[:300])


def scenario_wiremock(node):
    st, body, raw, _ = post(node, "/api/v1/import/wiremock",
                            {"spec": json.loads(text("wiremock.json")), "namespace": "wm",
                             "files": {"file.txt": "file body"}})
    check(st == 201 and body["created"] == 13 and len(body["skipped"]) == 5,
          "WireMock mappings: 13 created, 5 skipped with reasons (%s %s)" % (st, raw[:300]))
    st, _, raw, resp = node.request("GET", "/stubs/wm/some/thing")
    check(st == 200 and raw == b"Hello world!" and resp.getheader("Content-Type") == "text/plain",
          "url + body + headers")
    st, body, _, _ = node.request("GET", "/stubs/wm/search?page=2&q=shoes")
    check(st == 200 and body == {"results": ["a", "b"]}, "url with a query string")
    st, _, _, _ = node.request("GET", "/stubs/wm/search?page=3&q=shoes")
    check(st == 404, "another query value does not match")
    h = {"Accept": "application/json", "X-Client": "app-12"}
    st, body, _, _ = node.request("GET", "/stubs/wm/everything?search_term=WireMock", headers=h)
    check(st == 200 and body == {"found": True}, "queryParameters and headers matchers")
    st, _, _, _ = node.request("GET", "/stubs/wm/everything?search_term=WireMock&debug=1",
                               headers=h)
    check(st == 404, "absent: true refuses a present parameter")
    st, body, _, resp = post(node, "/stubs/wm/orders",
                             body={"item": "book", "qty": 2, "customer": "c", "extra": 1})
    check(st == 201 and resp.getheader("Location") == "/orders/1",
          "equalToJson ignoreExtraElements + matchesJsonPath")
    st, _, _, _ = post(node, "/stubs/wm/orders", body={"item": "book", "qty": 3, "customer": "c"})
    check(st == 404, "equalToJson refuses another value")
    st, _, _, _ = node.request("PUT", "/stubs/wm/users/42", body={"name": "Ann"})
    check(st == 204, "urlPathPattern + json-unit placeholder")
    st, body, _, _ = node.request("GET", "/stubs/wm/contacts/1/addresses/2")
    check(st == 200 and body == {"street": "Main"}, "urlPathTemplate + base64Body")
    st, _, raw, _ = node.request("GET", "/stubs/wm/files/a/b.txt")
    check(st == 200 and raw == b"file body", "urlPattern tail + bodyFileName from files")
    st, _, raw, resp = node.request("GET", "/stubs/wm/greet/Ann?city=Oslo", headers={"X-Who": "me"})
    check(st == 200 and raw == b"Hello Ann from Oslo, me!" and resp.getheader("X-Echo") == "greet",
          "Handlebars request.path/query/headers translated (%s %s)" % (st, raw[:100]))
    st, body, raw, _ = post(node, "/stubs/wm/echo", body={"id": 42})
    check(st == 200 and body["id"] == 42 and body["all"] == {"id": 42} and len(body["uuid"]) == 36,
          "Handlebars jsonPath, request.body and randomValue translated (%s)" % raw[:200])


def scenario_wiremock_zip(node):
    with open(os.path.join(DATA, "wiremock-folder.zip"), "rb") as f:
        z = f.read()
    st, body, raw, _ = post(node, "/api/v1/import/wiremock?namespace=zipns", raw=z,
                            headers={"Content-Type": "application/zip"})
    check(st == 201 and body["created"] == 3, "a zipped mappings/ + __files/ folder (%s)" % raw[:200])
    st, body, _, _ = node.request("GET", "/stubs/zipns/zip/hello")
    check(st == 200 and body == {"hello": "from __files"}, "bodyFileName from the zip's __files")
    with open(os.path.join(DATA, "zip-bomb.zip"), "rb") as f:
        bomb = f.read()
    st, body, raw, _ = post(node, "/api/v1/import/wiremock?namespace=bomb", raw=bomb,
                            headers={"Content-Type": "application/zip"})
    check(st == 400 and "past the import limit" in body["error"] and count(node, "bomb") == 0,
          "a zip bomb is refused, nothing stored (%s)" % raw[:200])


def scenario_har_postman_graphql(node):
    st, body, raw, _ = post(node, "/api/v1/generators/har",
                            {"spec": text("capture.har"), "namespace": "har"})
    check(st == 201 and body["created"] == 3 and len(body["skipped"]) == 2,
          "HAR: 3 mocks, the image and the blocked request skipped (%s)" % raw[:300])
    a = node.request("GET", "/stubs/har/api/products?category=books&page=1&q=sci%20fi")[1]
    b = node.request("GET", "/stubs/har/api/products?q=sci+fi&category=books&page=1")[1]
    check(a["items"][0]["title"] == "Dune" and b["items"][0]["title"] == "Emma",
          "repeated request with different answers: served in capture order")
    st, body, _, resp = post(node, "/stubs/har/api/cart", body={"qty": 2, "productId": 1})
    check(st == 201 and body == {"cartId": "c-1", "items": 1}, "POST with its JSON body")

    st, body, raw, _ = post(node, "/api/v1/import/postman",
                            {"spec": json.loads(text("collection.json")), "namespace": "pm"})
    check(st == 201 and body["created"] == 4 and len(body["skipped"]) == 1,
          "Postman: 4 examples, 1 request without examples skipped (%s)" % raw[:300])
    st, body, _, _ = node.request("GET", "/stubs/pm/users/5")
    check(st == 200 and body == {"id": 1, "name": "Ada"}, "first example answers")
    st, body, _, _ = node.request("GET", "/stubs/pm/users/5",
                                  headers={"x-mock-response-name": "Missing"})
    check(st == 404 and body == {"error": "no such user"}, "x-mock-response-name selects")

    st, body, raw, _ = post(node, "/api/v1/generators/graphql?namespace=gql",
                            raw=text("schema.graphql").encode(),
                            headers={"Content-Type": "text/plain"})
    check(st == 201 and body["created"] == 4, "GraphQL SDL: 4 mocks (%s)" % raw[:300])
    st, body, raw, _ = post(node, "/stubs/gql/graphql",
                            body={"query": "query Q { me: user(id: 1) { id name } }"})
    check(st == 200 and "user" in body["data"], "a query selecting user (%s)" % raw[:200])
    st, body, _, _ = post(node, "/stubs/gql/graphql",
                          body={"query": "mutation { createUser(input: {name: \"a\"}) { id } }"})
    check(st == 200 and "createUser" in body["data"], "a mutation")

    intro = {"data": {"__schema": {"queryType": {"name": "Query"}, "types": [
        {"kind": "OBJECT", "name": "Query", "fields": [
            {"name": "ping", "type": {"kind": "NON_NULL",
                                      "ofType": {"kind": "SCALAR", "name": "Boolean"}}}]}]}}}
    st, body, raw, _ = post(node, "/api/v1/generators/graphql/preview",
                            {"spec": intro, "namespace": "gql2"})
    check(st == 200 and body["count"] == 1 and count(node, "gql2") == 0,
          "an introspection result as the spec (%s)" % raw[:200])

    # gRPC is served too (e2e/grpcmock): bytes that are no descriptor set are a 400.
    st, body, raw, _ = post(node, "/api/v1/generators/grpc", {"spec": "x"})
    check(st == 400 and "FileDescriptorSet" in body["error"],
          "grpc: a spec that is not a descriptor set is refused (%s)" % raw[:200])
    # SOAP is served now (e2e/protocols/soap_test.py): a spec that is no WSDL is a 400.
    st, body, raw, _ = post(node, "/api/v1/generators/soap", {"spec": "x"})
    check(st == 400 and body["error"].startswith("wsdl: "),
          "soap: a spec that is not a WSDL is refused (%s)" % raw[:200])
    st, eps, _, _ = node.request("GET", "/api/v1/endpoints")
    paths = json.dumps(eps)
    check("/api/v1/generators/openapi/preview" in paths and "/api/v1/import/wiremock" in paths,
          "the endpoints are listed")


def main():
    services.install_signal_handlers()
    # Its own gRPC mock port: the default one may be taken by another admin on this machine.
    node = Mockarty(BINARY, env={"GRPC_MOCK_PORT": str(free_port())}).start()
    try:
        scenario_openapi(node)
        scenario_bad_input(node)
        scenario_wiremock(node)
        scenario_wiremock_zip(node)
        scenario_har_postman_graphql(node)
    finally:
        harness.check_exit(node, "admin")
        services.cleanup_all()
    sys.exit(harness.finish())


if __name__ == "__main__":
    main()
