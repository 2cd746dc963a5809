#!/usr/bin/python3
"""GraphQL mocks with a plain HTTP GraphQL client (urllib): data from mocks, graphqlErrors,
aliases, fragments, conditions on variables and headers, GET requests, syntax and validation
errors, near-miss diagnosis, a schema uploaded through the API, and GraphiQL's full standard
IntrospectionQuery answered from it; and subscriptions (queries too) over a WebSocket with the
graphql-transport-ws protocol of the graphql-ws library (Apollo Client, urql) and the legacy
graphql-ws one, from python3-websockets.

usage: graphql_test.py MOCKARTY [MOCKARTY_RESOLVER]
With the resolver binary, the same requests also run against a resolver following a PostgreSQL
admin.
"""
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402
from support.hook_receiver import HookReceiver  # noqa: E402

import websockets  # noqa: E402

TOKEN = "graphql-e2e-token"


def api(node, method, path, **kw):
    return harness.api(node, TOKEN, method, path, **kw)


class GraphQLClient:
    """What a GraphQL client library does over HTTP: POST {query, variables, operationName} as
    JSON (or GET with query parameters) and read {data, errors}."""

    def __init__(self, url, headers=None):
        self.url = url
        self.headers = dict(headers or {})

    def _send(self, req):
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read()), dict(resp.headers)
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body), dict(e.headers)
            except ValueError:
                return e.code, body, dict(e.headers)

    def post(self, query, variables=None, operation_name=None, headers=None):
        payload = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        if operation_name:
            payload["operationName"] = operation_name
        h = dict(self.headers, **(headers or {}))
        h["Content-Type"] = "application/json"
        h.setdefault("Accept", "application/json")
        req = urllib.request.Request(self.url, data=json.dumps(payload).encode(), headers=h,
                                     method="POST")
        return self._send(req)

    def get(self, query, variables=None, operation_name=None):
        params = {"query": query}
        if variables is not None:
            params["variables"] = json.dumps(variables)
        if operation_name:
            params["operationName"] = operation_name
        req = urllib.request.Request(self.url + "?" + urllib.parse.urlencode(params),
                                     headers=dict(self.headers), method="GET")
        return self._send(req)


SCHEMA = '''
"""The demo API"""
schema { query: Query mutation: Mutation }
interface Node { id: ID! }
"A user"
type User implements Node {
  id: ID!
  name: String
  email: String @deprecated(reason: "use contact")
  role: Role
  posts(first: Int = 10): [Post!]!
}
type Post implements Node { id: ID! title: String! }
union SearchResult = User | Post
enum Role { ADMIN MEMBER }
input NewUser { name: String! email: String }
type Query {
  user(id: ID!): User
  users: [User!]!
  search(q: String!): [SearchResult!]!
  secretData: String
}
type Mutation { createUser(input: NewUser!): User }
'''

# graphql-js getIntrospectionQuery() as GraphiQL sends it (descriptions, specifiedByURL,
# directive repeatability, deprecated input values, TypeRef seven ofType levels deep).
INTROSPECTION_QUERY = """
    query IntrospectionQuery {
      __schema {
        description
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types {
          ...FullType
        }
        directives {
          name
          description
          isRepeatable
          locations
          args(includeDeprecated: true) {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      specifiedByURL
      fields(includeDeprecated: true) {
        name
        description
        args(includeDeprecated: true) {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields(includeDeprecated: true) {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
      isDeprecated
      deprecationReason
    }

    fragment TypeRef on __Type {
      %s
    }
""" % "\n".join(["kind name ofType {"] * 7 + ["kind name"] + ["}"] * 7)

MOCKS = [
    # Mockarty's shape: the payload is the whole response, data under the field's name.
    {"id": "gql-users", "graphql": {"operation": "query", "field": "users", "path": "/graphql"},
     "response": {"payload": {"data": {"users": [
         {"id": "1", "name": "Ann", "email": "ann@example.com", "role": "ADMIN",
          "posts": [{"id": "p1", "title": "Hello"}]},
         {"id": "2", "name": "Bob", "email": "bob@example.com", "role": "MEMBER", "posts": []}]}}}},
    # The field's value itself as the payload, chosen by a condition on a variable.
    {"id": "gql-user-1", "graphql": {"operation": "query", "field": "user",
                                    "conditions": [{"path": "$.id", "assertAction": "equals",
                                                    "value": "1"}]},
     "response": {"payload": {"id": "1", "name": "Ann", "role": "ADMIN",
                              "posts": [{"id": "p1", "title": "Hello"}]}}},
    # Mockarty's spelling of a variable path, and a header condition.
    {"id": "gql-user-2", "graphql": {"operation": "query", "field": "user",
                                    "conditions": [{"path": "$.variables.id",
                                                    "assertAction": "equals", "value": "2"}],
                                    "header": [{"path": "X-Tenant", "assertAction": "equals",
                                                "value": "acme"}]},
     "response": {"payload": {"data": {"user": {"id": "2", "name": "Bob (acme)",
                                                "role": "MEMBER", "posts": []}}}}},
    {"id": "gql-create", "graphql": {"operation": "mutation", "field": "createUser"},
     "response": {"payload": {"data": {"createUser": {
         "id": "$.fake.UUID", "name": "$.body.variables.input.name",
         "email": "$.body.variables.input.email"}}}}},
    {"id": "gql-secret", "graphql": {"operation": "query", "field": "secretData"},
     "response": {"statusCode": 200, "payload": {"data": None},
                  "graphqlErrors": [{"message": "You are not authorized",
                                     "path": ["secretData"],
                                     "locations": [{"line": 2, "column": 3}],
                                     "extensions": {"code": "FORBIDDEN",
                                                    "requestedBy": "$.reqHeader.X-User[0]"}}]}},
    {"id": "gql-search", "graphql": {"operation": "query", "field": "search"},
     "response": {"payload": [{"__typename": "User", "id": "1", "name": "Ann"},
                              {"__typename": "Post", "id": "p1", "title": "Hello"}]}},
    # Subscriptions: each sseEventChain event is one `next` over a WebSocket, after its delay.
    {"id": "gql-sub-ticks", "graphql": {"operation": "subscription", "field": "ticks"},
     "response": {"payload": {"n": 0}, "sseEventChain": {"events": [
         {"data": {"n": 1, "at": "first"}, "delay": 150},
         {"data": {"data": {"ticks": {"n": 2, "at": "$.body.variables.tag"}}}, "delay": 250},
         {"data": {"n": 3, "at": "last"}, "delay": 100}]}}},
    {"id": "gql-sub-acme", "graphql": {"operation": "subscription", "field": "price",
                                      "conditions": [{"path": "$.symbol", "assertAction": "equals",
                                                      "value": "ACME"}]},
     "response": {"sseEventChain": {"events": [{"data": {"symbol": "ACME", "value": 10}}]}}},
    {"id": "gql-sub-xyz", "graphql": {"operation": "subscription", "field": "price",
                                     "conditions": [{"path": "$.symbol", "assertAction": "equals",
                                                     "value": "XYZ"}]},
     "response": {"sseEventChain": {"events": [{"data": {"symbol": "XYZ", "value": 99}}]}}},
    {"id": "gql-sub-clock", "graphql": {"operation": "subscription", "field": "clock"},
     "response": {"sseEventChain": {"events": [{"data": {"i": i}, "delay": 100}
                                               for i in range(200)]}}},
    # Stores work over the socket as over HTTP (memory backend).
    {"id": "gql-sub-hits", "graphql": {"operation": "subscription", "field": "wsHits"},
     "extract": {"gStore": {"wsHits": "$.increment($.gS.wsHits)"}},
     "response": {"sseEventChain": {"events": [{"data": {"n": "$.gS.wsHits"}}]}}},
    # A counter: each operation of a batch sees the writes of the ones before it.
    {"id": "gql-batch-hits", "graphql": {"operation": "query", "field": "batchHits"},
     "extract": {"gStore": {"bh": "$.increment($.gS.bh)"}},
     "response": {"payload": {"data": {"batchHits": "$.gS.bh"}}}},
    # Another endpoint under a namespace pathPrefix, in namespace "shop".
    {"id": "gql-shop", "namespace": "shop", "pathPrefix": "/shop",
     "graphql": {"operation": "query", "field": "products", "path": "/api/graphql"},
     "response": {"payload": {"data": {"products": [{"sku": "A1"}]}}}},
]


def create_mocks(admin):
    for m in MOCKS:
        st, body = api(admin, "POST", "/api/v1/mocks", body=m)
        check(st in (200, 201), "create mock %s (%s %s)" % (m["id"], st, body))
    bad = [({"id": "gql-bad1", "graphql": {"operation": "select", "field": "x"},
             "response": {"payload": {}}}, "graphql.operation"),
           ({"id": "gql-bad2", "graphql": {"operation": "query"},
             "response": {"payload": {}}}, "graphql.field"),
           ({"id": "gql-bad3", "graphql": {"field": "x"},
             "response": {"payload": {}, "graphqlErrors": [{"path": ["x"]}]}},
            "graphqlErrors[0].message")]
    for m, field in bad:
        st, body = api(admin, "POST", "/api/v1/mocks", body=m)
        check(st == 400 and field in json.dumps(body),
              "an invalid GraphQL mock is refused naming %s (%s %s)" % (field, st, body))


def upload_schema(admin):
    st, body = api(admin, "POST", "/api/v1/graphql/schemas?path=/graphql", raw=SCHEMA.encode(),
                   headers={"Content-Type": "text/plain"})
    check(st == 201 and body.get("types") == 8 and body.get("mutationType") == "Mutation",
          "schema uploaded (%s %s)" % (st, body))
    st, body = api(admin, "POST", "/api/v1/graphql/schemas?path=/broken",
                   raw=b"type Query { a: Nope }", headers={"Content-Type": "text/plain"})
    check(st == 400 and "Unknown type" in json.dumps(body) and "line 1" in json.dumps(body),
          "a broken schema is refused with its line (%s %s)" % (st, body))
    st, body = api(admin, "GET", "/api/v1/graphql/schemas")
    check(st == 200 and [s["path"] for s in body["schemas"]] == ["/graphql"],
          "schemas listed (%s %s)" % (st, body))
    st, body = api(admin, "GET", "/api/v1/graphql/schemas/sdl?path=/graphql")
    check(st == 200 and b"union SearchResult" in body, "the SDL reads back")


def wait_for(fn, what, timeout=15):
    deadline = time.time() + timeout
    while True:
        ok = fn()
        if ok or time.time() > deadline:
            check(ok, what)
            return ok
        time.sleep(0.2)


def requests_without_schema(port, who):
    c = GraphQLClient("http://127.0.0.1:%d/graphql" % port)
    st, body, _ = c.post("query Users { users { id name } }")
    check(st == 200 and body == {"data": {"users": [{"id": "1", "name": "Ann"},
                                                    {"id": "2", "name": "Bob"}]}},
          "%s: data projected onto the selection (%s %s)" % (who, st, body))
    st, body, _ = c.post('{ first: user(id: "1") { id name } second: user(id: "2") { name } }',
                         headers={"X-Tenant": "acme"})
    check(st == 200 and body.get("data") == {"first": {"id": "1", "name": "Ann"},
                                             "second": {"name": "Bob (acme)"}},
          "%s: aliases, conditions on variables (literal arguments) and headers (%s)" % (who, body))
    st, body, _ = c.post("query($id: ID!) { user(id: $id) { id } }", {"id": "2"})
    errs = body.get("errors") or []
    check(st == 200 and body["data"] == {"user": None} and len(errs) == 1 and
          errs[0]["path"] == ["user"] and errs[0]["locations"] == [{"line": 1, "column": 19}] and
          errs[0]["extensions"]["code"] == "MOCK_NOT_FOUND",
          "%s: a field whose mocks' conditions fail: null and an error with path and locations "
          "(%s)" % (who, body))
    st, body, _ = c.post("query($id: ID!) { user(id: $id) { id } }", {"id": "2"},
                         headers={"Authorization": "Bearer " + TOKEN})
    closest = body["errors"][0]["extensions"].get("closest", [])
    check(any(x["id"] == "gql-user-2" and any("X-Tenant" in f or "x-tenant" in f.lower()
                                               for f in x["failed"]) for x in closest),
          "%s: with the token, the near miss says which condition failed (%s)" % (who, closest))
    st, body, _ = c.post("query Q($id: ID!) { ...U } fragment U on Query { user(id: $id) "
                         "{ ... on User { name } ...P } } fragment P on User { posts { title } }",
                         {"id": "1"}, operation_name="Q")
    check(st == 200 and body.get("data") == {"user": {"name": "Ann",
                                                      "posts": [{"title": "Hello"}]}},
          "%s: fragments and inline fragments (%s)" % (who, body))
    st, body, _ = c.post("mutation New($in: NewUser!) { createUser(input: $in) { id name email } }",
                         {"in": {"name": "Cid", "email": "cid@example.com"}})
    check(st == 200, "%s: mutation answered (%s %s)" % (who, st, body))
    st, body, _ = c.post("mutation($input: NewUser!) { createUser(input: $input) { id name } }",
                         {"input": {"name": "Cid", "email": "cid@example.com"}})
    u = (body.get("data") or {}).get("createUser") or {}
    check(u.get("name") == "Cid" and len(u.get("id", "")) == 36 and "email" not in u,
          "%s: a mutation's templates read $.body.variables (%s)" % (who, body))
    st, body, _ = c.post("{\n  secretData\n}", headers={"X-User": "eve"})
    e = (body.get("errors") or [{}])[0]
    check(st == 200 and body.get("data") == {"secretData": None} and
          e.get("message") == "You are not authorized" and
          e.get("extensions") == {"code": "FORBIDDEN", "requestedBy": "eve"} and
          e.get("locations") == [{"line": 2, "column": 3}] and e.get("path") == ["secretData"],
          "%s: graphqlErrors become errors entries, templates rendered (%s)" % (who, body))
    st, body, _ = c.post("{ search(q: \"a\") { __typename ... on User { name } "
                         "... on Post { title } } }")
    check(body.get("data") == {"search": [{"__typename": "User", "name": "Ann"},
                                          {"__typename": "Post", "title": "Hello"}]},
          "%s: inline fragments pick by __typename (%s)" % (who, body))
    st, body, _ = c.get("query($n: Boolean!) { users { id name @include(if: $n) } }",
                        {"n": False})
    check(st == 200 and body.get("data") == {"users": [{"id": "1"}, {"id": "2"}]},
          "%s: GET with query parameters, @include (%s %s)" % (who, st, body))
    st, body, hdrs = c.get("mutation { createUser(input: {name: \"x\"}) { id } }")
    check(st == 405, "%s: a mutation over GET is refused with 405 (%s)" % (who, st))
    st, body, _ = c.post("{ users { id }")
    e = (body.get("errors") or [{}])[0] if isinstance(body, dict) else {}
    check(st == 400 and "data" not in body and "Syntax Error" in e.get("message", "") and
          e.get("locations") == [{"line": 1, "column": 15}],
          "%s: a syntax error answers 400 with errors[].locations (%s %s)" % (who, st, body))
    st, body, _ = c.post("{ users " + "{ a " * 100 + "}" * 101)
    check(st == 413 and "nesting limit" in json.dumps(body),
          "%s: a document nested too deep is refused with 413 naming the limit (%s %s)" %
          (who, st, str(body)[:200]))
    bomb = "{ users { ...F0 } }\n" + "".join(
        "fragment F%d on User { id ...F%d ...F%d }\n" % (i, i + 1, i + 1) for i in range(40)) + \
        "fragment F40 on User { name }"
    t0 = time.time()
    st, body, _ = c.post(bomb)
    check(st == 200 and time.time() - t0 < 20 and
          any(e.get("extensions", {}).get("code") == "QUERY_TOO_COMPLEX"
              for e in body.get("errors", [])),
          "%s: fragments spread 2^40 times: cut at the work budget, answered in %.1f s" %
          (who, time.time() - t0))
    r = services.request(port, "POST", "/graphql", raw=b"{not json", headers={
        "Content-Type": "application/json"})
    check(r.status == 400 and "errors" in (r.json or {}),
          "%s: a body that is not JSON: 400 with errors (%s)" % (who, r))
    r = services.request(port, "POST", "/graphql", body={
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}})
    check(r.status == 200 and r.json["errors"][0]["extensions"]["code"] ==
          "PERSISTED_QUERY_NOT_FOUND",
          "%s: an Apollo persisted-query hash alone asks for the query (%s)" % (who, r))
    st, body, _ = c.post("{ nope }")
    check(st == 200 and body["data"] == {"nope": None} and
          "No mock for query field \"nope\"" in body["errors"][0]["message"],
          "%s: an unknown field without a schema: null and an error (%s)" % (who, body))
    st, body, _ = c.post("query A { users { id } } query B { users { name } }")
    check(st == 400 and "operation name" in json.dumps(body),
          "%s: several operations and no operationName: 400 (%s)" % (who, body))
    st, body, _ = c.post("{ __schema { queryType { name } } }")
    check(st == 200 and body["errors"][0]["extensions"]["code"] == "INTROSPECTION_UNAVAILABLE",
          "%s: introspection without a schema says to upload one (%s)" % (who, body))
    shop = GraphQLClient("http://127.0.0.1:%d/stubs/shop/shop/api/graphql" % port)
    st, body, _ = shop.post("{ products { sku } }")
    check(st == 200 and body.get("data") == {"products": [{"sku": "A1"}]},
          "%s: graphql.path under the namespace's pathPrefix (%s %s)" % (who, st, body))
    r = services.request(port, "POST", "/graphql/query/users", body={"query": "{ users { id } }"})
    check(r.status == 404, "%s: the index routes of GraphQL mocks are not HTTP routes (%s)" %
          (who, r.status))
    r = services.request(port, "GRAPHQL", "/graphql/query/users")
    check(r.status == 404, "%s: an HTTP request with method GRAPHQL finds no mock (%s)" %
          (who, r.status))
    asyncio.run(ws_session(port, who))


def batch(port, ops, headers=None):
    """What Apollo Client's BatchHttpLink sends: one POST with a JSON array of operations."""
    r = services.request(port, "POST", "/graphql", body=ops, headers=headers)
    return r.status, r.json


def batches(port, who):
    ops = [{"query": "query($id: ID!) { user(id: $id) { name } }", "variables": {"id": "1"}},
           {"query": "{ users { id }", "operationName": None},
           {"query": "query Q { users { name } }", "operationName": "Q", "extensions": {}}]
    st, body = batch(port, ops)
    check(st == 200 and isinstance(body, list) and len(body) == 3 and
          body[0] == {"data": {"user": {"name": "Ann"}}} and
          body[2] == {"data": {"users": [{"name": "Ann"}, {"name": "Bob"}]}},
          "%s: a batch of 3 is answered in order (%s %s)" % (who, st, body))
    e = ((body[1] if isinstance(body, list) and len(body) > 1 else {}).get("errors") or [{}])[0]
    check("data" not in body[1] and "Syntax Error" in e.get("message", "") and
          e.get("extensions", {}).get("code") == "GRAPHQL_PARSE_FAILED" and len(body[1]) == 1,
          "%s: a syntax error stays in its own entry of the batch (%s)" % (who, body[1]))
    st, body = batch(port, [{"query": "{ batchHits }"}, {"query": "{ n: batchHits }"},
                            {"query": "query { batchHits }"}])
    check(st == 200 and body == [{"data": {"batchHits": 1}}, {"data": {"n": 2}},
                                 {"data": {"batchHits": 3}}],
          "%s: a counter extracted by each operation of a batch reads 1, 2, 3 (%s)" % (who, body))
    st, body = batch(port, [])
    check(st == 400 and "empty" in json.dumps(body) and isinstance(body, dict),
          "%s: an empty batch is refused with 400 (%s %s)" % (who, st, body))
    st, body = batch(port, [{"query": "{ users { id } }"}, "{ users { id } }"])
    check(st == 400 and "Batch operation 1 " in json.dumps(body),
          "%s: a batch element that is not an object: 400 naming its index (%s %s)" %
          (who, st, body))
    st, body = batch(port, [{"query": "{ users { id } }"}] * 101)
    check(st == 413 and "at most 100 operations" in json.dumps(body),
          "%s: a batch past 100 operations is refused naming the limit (%s %s)" %
          (who, st, str(body)[:200]))
    st, body = batch(port, [{"query": "{ users { id } }"}] * 100)
    check(st == 200 and len(body) == 100 and body[99] == {"data": {"users": [{"id": "1"},
                                                                           {"id": "2"}]}},
          "%s: a batch of 100 operations is answered (%s)" % (who, st))


def batches_on_redis(setup, admin, rx):
    """A resolver whose stores are in Redis: a batch's operations run their extraction in order
    across the round trips (1, 2, 3); with Redis down, only the operations whose mocks use stores
    fail (STORE_UNAVAILABLE in their own entries)."""
    redis = services.Redis()
    redis.start()
    res = setup.start_resolver(env={"STORE_TYPE": "redis", "REPO_REDIS_HOST": "127.0.0.1",
                                    "REPO_REDIS_PORT": str(redis.port)})
    try:
        st, body = batch(res.port, [{"query": "{ batchHits }"}, {"query": "{ n: batchHits }"},
                                    {"query": "{ users { id } }"}, {"query": "{ batchHits }"}])
        check(st == 200 and body == [{"data": {"batchHits": 1}}, {"data": {"n": 2}},
                                     {"data": {"users": [{"id": "1"}, {"id": "2"}]}},
                                     {"data": {"batchHits": 3}}],
              "redis: a counter extracted by each operation of a batch reads 1, 2, 3 (%s %s)" %
              (st, body))
        st, body = batch(res.port, [{"query": "{ batchHits }"}])
        check(st == 200 and body == [{"data": {"batchHits": 4}}],
              "redis: the next batch goes on counting (%s)" % body)
        # A single request that waits for Redis is counted as a matched GraphQL request too.
        key = 'mockarty_protocol_requests_total{protocol="graphql",outcome="matched"} '

        def matched():
            for line in res.request("GET", "/metrics").raw.decode().splitlines():
                if line.startswith(key):
                    return int(float(line[len(key):]))
            return 0
        before = matched()
        st, body, _ = GraphQLClient("http://127.0.0.1:%d/graphql" % res.port).post(
            "{ batchHits }")
        check(st == 200 and body == {"data": {"batchHits": 5}} and matched() == before + 1,
              "redis: a waiting request is counted as a matched GraphQL one (%s %s, %d -> %d)" %
              (st, body, before, matched()))
        redis.stop()
        hooks_before = len(rx.wait("/slow-async", 0, timeout=0))
        st, body = batch(res.port, [{"query": "{ batchHits }"}, {"query": "{ users { id } }"},
                                    {"query": "query($tag: String) { ping }",
                                     "variables": {"tag": "redis-down"}}])
        e = ((body[0] if isinstance(body, list) else {}).get("errors") or [{}])[0]
        check(st == 200 and len(body) == 3 and "data" not in body[0] and
              e.get("extensions", {}).get("code") == "STORE_UNAVAILABLE" and
              body[1] == {"data": {"users": [{"id": "1"}, {"id": "2"}]}} and
              body[2] == {"data": {"ping": "pong"}},
              "redis: with Redis down only the store-using operation fails (%s %s)" % (st, body))
        got = rx.wait("/slow-async", hooks_before + 1)
        check([json.loads(g[2])["tag"] for g in got[hooks_before:]] == ["redis-down"],
              "redis: with Redis down an operation without stores still sends its webhook (%s)" %
              [g[2] for g in got[hooks_before:]])
    finally:
        redis.stop()
        harness.check_exit(res, "redis resolver")


def batch_budget(port, who):
    """The work of a batch is bounded like one request's: its operations share a budget of 4
    times one operation's, so 20 fragment bombs cost about what 4 do."""
    bomb = "{ users { ...F0 } }\n" + "".join(
        "fragment F%d on User { id ...F%d ...F%d }\n" % (i, i + 1, i + 1) for i in range(40)) + \
        "fragment F40 on User { name }"
    t0 = time.time()
    batch(port, [{"query": bomb}])
    one = time.time() - t0
    t0 = time.time()
    st, body = batch(port, [{"query": bomb}, {"query": "{ users { id } }"}])
    check(st == 200 and body[1] == {"data": {"users": [{"id": "1"}, {"id": "2"}]}} and
          body[0]["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX",
          "%s: a bomb in a batch is cut, the next operation answered in full (%s)" %
          (who, str(body)[-200:]))
    t0 = time.time()
    st, body = batch(port, [{"query": bomb}] * 20)
    took = time.time() - t0
    codes = [e["extensions"]["code"] for r in body for e in r.get("errors", [])]
    check(st == 200 and len(body) == 20 and codes.count("QUERY_TOO_COMPLEX") == 20 and
          "together" in body[19]["errors"][0]["message"] and took < 6 * one + 2 and
          body[0]["data"]["users"][0].get("id") == "1" and
          body[19].get("data") == {"users": [{}, {}]},
          "%s: 20 bombs in a batch share one budget (the first ones cut, the last ones get "
          "nothing): %.2f s (one alone %.2f s)" % (who, took, one))


def hook_receiver():
    """The webhook target: /slow-async answers after 1 s, other /slow paths after 0.4 s."""
    return HookReceiver(delay=lambda p: (1.0 if p == "/slow-async" else 0.4)
                        if p.startswith("/slow") else 0)


def create_hook_mocks(admin, rx):
    hooked = [
        {"id": "gql-hook-sync", "graphql": {"operation": "mutation", "field": "notify"},
         "response": {"payload": {"data": {"notify": True}}},
         "webhooks": [{"url": rx.url + "/slow-sync", "headers": {"X-Name": "$.body.variables.name"},
                       "body": {"name": "$.body.variables.name", "event": "notified"}}]},
        {"id": "gql-hook-async", "graphql": {"operation": "query", "field": "ping"},
         "response": {"payload": {"data": {"ping": "pong"}}},
         "webhooks": [{"url": rx.url + "/slow-async", "async": True,
                       "body": {"tag": "$.body.variables.tag"}}]},
    ]
    for m in hooked:
        st, body = api(admin, "POST", "/api/v1/mocks", body=m)
        check(st in (200, 201), "create mock %s (%s %s)" % (m["id"], st, body))


def webhooks(port, who, rx):
    c = GraphQLClient("http://127.0.0.1:%d/graphql" % port)
    before = len(rx.wait("/slow-sync", 0, timeout=0))
    t0 = time.time()
    st, body, _ = c.post("mutation($name: String!) { notify(name: $name) }", {"name": who})
    took = time.time() - t0
    got = rx.wait("/slow-sync", before + 1, timeout=0)
    check(st == 200 and body == {"data": {"notify": True}} and len(got) == before + 1 and
          took >= 0.4,
          "%s: a GraphQL mock's synchronous webhook is sent before the answer (%s %s, %d calls, "
          "%.2f s)" % (who, st, body, len(got), took))
    if len(got) == before + 1:
        _, headers, raw, _ = got[-1]
        check(json.loads(raw) == {"name": who, "event": "notified"} and
              headers.get("X-Name") == who,
              "%s: the webhook's body and headers render $.body.variables (%s %s)" %
              (who, raw, headers.get("X-Name")))
    before = len(rx.wait("/slow-async", 0, timeout=0))
    t0 = time.time()
    st, body = batch(port, [{"query": "query($tag: String) { ping }", "variables": {"tag": "a"}},
                            {"query": "{ users { id } }"},
                            {"query": "query($tag: String) { ping }", "variables": {"tag": "b"}}])
    took = time.time() - t0
    check(st == 200 and body[0] == {"data": {"ping": "pong"}} and took < 0.8,
          "%s: async webhooks do not hold a batch's answer (%s %.2f s)" % (who, body, took))
    got = rx.wait("/slow-async", before + 2)
    check(sorted(json.loads(g[2])["tag"] for g in got[before:]) == ["a", "b"],
          "%s: each operation of a batch sends its mock's webhook (%s)" %
          (who, [g[2] for g in got[before:]]))

    async def over_ws():
        url = "ws://127.0.0.1:%d/graphql" % port
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as raw:
            ws = GqlWs(raw)
            await ws.init()
            await ws.send({"id": "h", "type": "subscribe", "payload": {
                "query": "query($tag: String) { ping }", "variables": {"tag": "ws"}}})
            return [await ws.recv(), await ws.recv()]
    before = len(rx.wait("/slow-async", 0, timeout=0))
    msgs = asyncio.run(over_ws())
    got = rx.wait("/slow-async", before + 1)
    check(msgs[0].get("payload") == {"data": {"ping": "pong"}} and len(got) == before + 1 and
          json.loads(got[-1][2]) == {"tag": "ws"},
          "%s: ws: an operation's mock sends its webhook (%s %s)" %
          (who, msgs, [g[2] for g in got[before:]]))


class GqlWs:
    """A graphql-transport-ws client, as the graphql-ws library speaks it."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, msg):
        await self.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def recv(self, timeout=5):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def init(self):
        await self.send({"type": "connection_init", "payload": {}})
        return await self.recv()

    async def closed_with(self, timeout=5):
        """The close code the server sent (None when it did not close in time)."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as e:
            return e.code, e.reason
        except asyncio.TimeoutError:
            return None, ""


async def ws_big_payloads(port, who):
    """Operations waiting on a connection hold their payloads: past 8 MiB of them, a new one is
    refused with an error message (review fix: 64 operations of 1 MiB were kept)."""
    url = "ws://127.0.0.1:%d/graphql" % port
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"],
                                  max_size=None) as raw:
        c = GqlWs(raw)
        await c.init()
        pad = "#" + "x" * 900000 + "\n"
        for i in range(10):
            await c.send({"id": "big%d" % i, "type": "subscribe",
                          "payload": {"query": pad + "subscription { slowTick { n } }"}})
        m = await c.recv(timeout=10)
        check(m.get("type") == "error" and m.get("id") == "big9" and
              "8 MiB" in m["payload"][0]["message"],
              "%s: ws: past 8 MiB of waiting payloads an operation is refused (%s)" %
              (who, str(m)[:200]))
        await c.send({"id": "big0", "type": "complete"})
        await c.send({"id": "small", "type": "subscribe",
                      "payload": {"query": pad + "subscription { slowTick { n } }"}})
        await c.send({"id": "small", "type": "complete"})
        await c.send({"type": "ping"})
        m = await c.recv(timeout=10)
        check(m == {"type": "pong"},
              "%s: ws: a completed operation frees its share (%s)" % (who, str(m)[:200]))
    # A duplicate id too long for a close reason (123 bytes) is cut on a character boundary.
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as raw:
        c = GqlWs(raw)
        await c.init()
        dup = "\u00e9" * 100
        for _ in range(2):
            await c.send({"id": dup, "type": "subscribe",
                          "payload": {"query": "subscription { slowTick { n } }"}})
        code, reason = await c.closed_with()
        check(code == 4409 and reason.startswith("Subscriber for \u00e9\u00e9") and
              reason.endswith("already exists") and len(reason.encode()) <= 123,
              "%s: ws: a long duplicate id closes 4409 with a valid reason (%s %r)" %
              (who, code, reason))


async def ws_session(port, who):
    url = "ws://127.0.0.1:%d/graphql" % port
    proto = ["graphql-transport-ws"]
    async with websockets.connect(url, subprotocols=proto) as raw:
        c = GqlWs(raw)
        check(raw.subprotocol == "graphql-transport-ws",
              "%s: ws: the server speaks graphql-transport-ws (%s)" % (who, raw.subprotocol))
        ack = await c.init()
        check(ack == {"type": "connection_ack"}, "%s: ws: connection_ack (%s)" % (who, ack))
        await c.send({"type": "ping", "payload": {"k": 1}})
        pong = await c.recv()
        check(pong == {"type": "pong", "payload": {"k": 1}}, "%s: ws: ping/pong (%s)" % (who, pong))
        t0 = time.time()
        await c.send({"id": "s1", "type": "subscribe", "payload": {
            "query": "subscription Ticks($tag: String) { ticks { n at } }",
            "variables": {"tag": "mid"}, "operationName": "Ticks", "extensions": {}}})
        got = []
        for _ in range(4):
            m = await c.recv()
            got.append((m, time.time() - t0))
        msgs = [m for m, _ in got]
        check(msgs == [
            {"type": "next", "id": "s1", "payload": {"data": {"ticks": {"n": 1, "at": "first"}}}},
            {"type": "next", "id": "s1", "payload": {"data": {"ticks": {"n": 2, "at": "mid"}}}},
            {"type": "next", "id": "s1", "payload": {"data": {"ticks": {"n": 3, "at": "last"}}}},
            {"type": "complete", "id": "s1"}],
            "%s: ws: a subscription streams its 3 events in order, then completes (%s)" %
            (who, msgs))
        times = [round(t, 2) for _, t in got]
        check(0.13 <= times[0] < 1.0 and times[1] - times[0] >= 0.23 and
              times[2] - times[1] >= 0.08 and times[2] < 2.0,
              "%s: ws: each event after its delay (%s s)" % (who, times))
        # Variables pick the mock through its conditions.
        for sid, sym, val in (("a", "ACME", 10), ("x", "XYZ", 99)):
            await c.send({"id": sid, "type": "subscribe", "payload": {
                "query": "subscription($s: String!) { price(symbol: $s) { value } }",
                "variables": {"s": sym}}})
            m1, m2 = await c.recv(), await c.recv()
            check(m1 == {"type": "next", "id": sid, "payload": {"data": {"price": {"value": val}}}}
                  and m2 == {"type": "complete", "id": sid},
                  "%s: ws: variables pick the %s mock (%s %s)" % (who, sym, m1, m2))
        # A store written by the mock's extraction: 1, then 2.
        hits = []
        for sid in ("h1", "h2"):
            await c.send({"id": sid, "type": "subscribe",
                          "payload": {"query": "subscription { wsHits { n } }"}})
            hits.append(await c.recv())
            await c.recv()
        check([h.get("payload", {}).get("data", {}).get("wsHits", {}).get("n") for h in hits] ==
              [1, 2], "%s: ws: extraction and stores as over HTTP (%s)" % (who, hits))
        # A query over the socket: one next, then complete.
        await c.send({"id": "q", "type": "subscribe", "payload": {"query": "{ users { id } }"}})
        m1, m2 = await c.recv(), await c.recv()
        check(m1 == {"type": "next", "id": "q",
                     "payload": {"data": {"users": [{"id": "1"}, {"id": "2"}]}}} and
              m2 == {"type": "complete", "id": "q"},
              "%s: ws: a query answers one next and complete (%s %s)" % (who, m1, m2))
        # A syntax error: an `error` message with GraphQL errors, no complete.
        await c.send({"id": "bad", "type": "subscribe", "payload": {"query": "subscription {"}})
        m = await c.recv()
        check(m.get("type") == "error" and m.get("id") == "bad" and
              "Syntax Error" in m["payload"][0]["message"] and m["payload"][0]["locations"],
              "%s: ws: a syntax error answers an error message (%s)" % (who, m))
        # The client cancels a long stream with complete: nothing more comes for it.
        await c.send({"id": "clk", "type": "subscribe", "payload": {"query": "subscription "
                                                                               "{ clock { i } }"}})
        m1, m2 = await c.recv(), await c.recv()
        await c.send({"id": "clk", "type": "complete"})
        check([m1["payload"]["data"]["clock"]["i"], m2["payload"]["data"]["clock"]["i"]] ==
              [0, 1], "%s: ws: a long stream runs (%s %s)" % (who, m1, m2))
        try:
            extra = await c.recv(timeout=0.6)
        except asyncio.TimeoutError:
            extra = None
        check(extra is None, "%s: ws: complete from the client stops the stream (%s)" %
              (who, extra))
        await c.send({"type": "ping"})
        m = await c.recv()
        check(m == {"type": "pong"}, "%s: ws: the connection lives on after a cancel (%s)" %
              (who, m))
        # Two operations with one id: 4409.
        await c.send({"id": "dup", "type": "subscribe", "payload": {"query": "subscription "
                                                                               "{ clock { i } }"}})
        await c.send({"id": "dup", "type": "subscribe", "payload": {"query": "subscription "
                                                                               "{ clock { i } }"}})
        code, reason = await c.closed_with()
        check(code == 4409 and reason == "Subscriber for dup already exists",
              "%s: ws: a duplicate id closes with 4409 (%s %s)" % (who, code, reason))
    async with websockets.connect(url, subprotocols=proto) as raw:
        c = GqlWs(raw)
        await c.send({"id": "1", "type": "subscribe", "payload": {"query": "{ users { id } }"}})
        code, _ = await c.closed_with()
        check(code == 4401, "%s: ws: subscribe before connection_init closes 4401 (%s)" %
              (who, code))
    async with websockets.connect(url, subprotocols=proto) as raw:
        c = GqlWs(raw)
        await c.init()
        await c.send("{not json")
        code, _ = await c.closed_with()
        check(code == 4400, "%s: ws: an invalid message closes 4400 (%s)" % (who, code))
    async with websockets.connect(url, subprotocols=proto) as raw:
        c = GqlWs(raw)
        await c.init()
        await c.send({"type": "connection_init"})
        code, _ = await c.closed_with()
        check(code == 4429, "%s: ws: a second connection_init closes 4429 (%s)" % (who, code))
    async with websockets.connect(url, subprotocols=proto) as raw:
        t0 = time.time()
        code, reason = await GqlWs(raw).closed_with(timeout=10)
        took = time.time() - t0
        check(code == 4408 and reason == "Connection initialisation timeout" and 2.5 < took < 6,
              "%s: ws: no connection_init within 3 s closes 4408 (%s %s after %.1f s)" %
              (who, code, reason, took))
    # The legacy subscriptions-transport-ws protocol.
    async with websockets.connect(url, subprotocols=["graphql-ws"]) as raw:
        c = GqlWs(raw)
        check(raw.subprotocol == "graphql-ws", "%s: ws: legacy graphql-ws negotiated" % who)
        ack, ka = await c.init(), await c.recv()
        await c.send({"id": "1", "type": "start", "payload": {
            "query": "subscription { price(symbol: \"XYZ\") { symbol } }"}})
        m1, m2 = await c.recv(), await c.recv()
        check(ack == {"type": "connection_ack"} and ka == {"type": "ka"} and
              m1 == {"type": "data", "id": "1",
                     "payload": {"data": {"price": {"symbol": "XYZ"}}}} and
              m2 == {"type": "complete", "id": "1"},
              "%s: ws: legacy graphql-ws: ack, ka, data, complete (%s %s %s %s)" %
              (who, ack, ka, m1, m2))
        await c.send({"type": "connection_terminate"})
        code, _ = await c.closed_with()
        check(code == 1000, "%s: ws: legacy connection_terminate closes (%s)" % (who, code))


def requests_with_schema(port, who):
    c = GraphQLClient("http://127.0.0.1:%d/graphql" % port)
    st, body, _ = c.post(INTROSPECTION_QUERY, operation_name="IntrospectionQuery")
    schema = (body.get("data") or {}).get("__schema") or {}
    types = {t["name"]: t for t in schema.get("types", [])}
    user = types.get("User", {})
    fields = {f["name"]: f for f in user.get("fields") or []}
    posts_t = (fields.get("posts") or {}).get("type", {})
    check(st == 200 and "errors" not in body and schema.get("description") == "The demo API" and
          schema["queryType"] == {"name": "Query"} and
          schema["mutationType"] == {"name": "Mutation"} and schema["subscriptionType"] is None,
          "%s: the standard IntrospectionQuery is answered (%s)" % (who, str(body)[:300]))
    check(user.get("kind") == "OBJECT" and user.get("description") == "A user" and
          fields["email"]["isDeprecated"] and fields["email"]["deprecationReason"] == "use contact"
          and posts_t["kind"] == "NON_NULL" and posts_t["ofType"]["kind"] == "LIST" and
          posts_t["ofType"]["ofType"]["ofType"]["name"] == "Post" and
          fields["posts"]["args"][0]["defaultValue"] == "10" and
          user["interfaces"] == [{"kind": "INTERFACE", "name": "Node", "ofType": None}],
          "%s: introspection: fields, wrappers, defaults, deprecation, interfaces" % who)
    check(sorted(p["name"] for p in types["SearchResult"]["possibleTypes"]) == ["Post", "User"] and
          [v["name"] for v in types["Role"]["enumValues"]] == ["ADMIN", "MEMBER"] and
          [f["name"] for f in types["NewUser"]["inputFields"]] == ["name", "email"] and
          "__Schema" in types and "String" in types and
          {d["name"] for d in schema["directives"]} >= {"skip", "include", "deprecated"},
          "%s: introspection: unions, enums, inputs, built-ins, directives" % who)
    st, body, _ = c.get('{ __type(name: "Role") { kind enumValues { name } } __typename }')
    check(body.get("data") == {"__type": {"kind": "ENUM", "enumValues": [{"name": "ADMIN"},
                                                                          {"name": "MEMBER"}]},
                               "__typename": "Query"},
          "%s: __type and __typename over GET (%s)" % (who, body))
    st, body, _ = c.post("{ users { id nme } user { id } }")
    msgs = [e["message"] for e in body.get("errors", [])]
    check(st == 200 and "data" not in body and
          'Cannot query field "nme" on type "User". Did you mean "name"?' in msgs and
          'Field "user" argument "id" of type "ID!" is required, but it was not provided.' in msgs
          and all(e["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and e["locations"]
                  for e in body["errors"]),
          "%s: validation errors as a real server gives them (%s)" % (who, msgs))
    st, body, _ = c.post("query($id: ID!) { user(id: $id) { id ...P } } "
                         "fragment P on Post { title }")
    msgs = [e["message"] for e in body.get("errors", [])]
    check('Variable "$id" of required type "ID!" was not provided.' in msgs and
          any("Fragment \"P\" cannot be spread here" in m for m in msgs),
          "%s: missing required variable, wrong fragment type (%s)" % (who, msgs))
    st, body, _ = c.post('{ users { id __typename } search(q: "x") { ... on User { id } } }')
    check(body.get("data", {}).get("users") == [{"id": "1", "__typename": "User"},
                                                {"id": "2", "__typename": "User"}],
          "%s: __typename of nested objects from the schema (%s)" % (who, body))


def journal(admin):
    st, body = api(admin, "GET", "/api/v1/requests?protocol=graphql&limit=500")
    entries = (body or {}).get("requests", []) if isinstance(body, dict) else body
    check(st == 200 and len(entries) >= 10 and
          any(e.get("operation") == "query users" for e in entries) and
          any(e.get("mockId") == "gql-create" for e in entries) and
          any('"users"' in (e.get("response") or {}).get("body", "") for e in entries),
          "journal: GraphQL requests recorded with protocol, operation, mock id and answer (%s %d)" %
          (st, len(entries or [])))
    sub = [e for e in entries if e.get("mockId") == "gql-sub-ticks"]
    check(len(sub) == 1 and sub[0].get("operation") == "subscription ticks" and
          sub[0]["request"]["method"] == "WS",
          "journal: a subscription over a WebSocket is one entry, protocol graphql (%s)" % sub)
    hits = [e for e in entries if e.get("mockId") == "gql-batch-hits"]
    check(len(hits) == 3 and all(e.get("operation") == "query batchHits" and
                                 e["request"]["method"] == "POST" and
                                 e["request"].get("body", "").startswith('{"query"')
                                 for e in hits),
          "journal: each operation of a batch is an entry of its own, with its element as the "
          "body (%s)" % [(e.get("operation"), e["request"].get("body")) for e in hits])
    metrics = admin.request("GET", "/metrics").raw.decode()
    check('protocol="graphql"' in metrics, "/metrics counts GraphQL requests by protocol")


def path_param_endpoint(admin):
    """A GraphQL endpoint whose path has a route parameter: the field's answer renders after the
    route lookup, so $.pathParam must not point into the lookup's stack buffer (review fix)."""
    m = {"id": "gql-param", "namespace": "pp",
         "graphql": {"operation": "query", "field": "who", "path": "/gp/:tenant"},
         "response": {"payload": {"data": {"who": {"t": "$.pathParam.tenant",
                                                   "pad": "$.fake.UUID"}}}}}
    st, body = api(admin, "POST", "/api/v1/mocks", body=m)
    check(st in (200, 201), "create mock gql-param (%s %s)" % (st, body))
    c = GraphQLClient("http://127.0.0.1:%d/stubs/pp/gp/:tenant" % admin.port)
    for _ in range(3):
        st, body, _ = c.post("{ who { t pad } }")
        who = (body.get("data") or {}).get("who") if isinstance(body, dict) else None
        check(st == 200 and isinstance(who, dict) and who.get("t") == ":tenant",
              "a path parameter of the endpoint renders its value (%s %s)" % (st, body))


def main():
    with harness.AdminAndResolver("mk-graphql-", TOKEN) as setup:
        admin = setup.start_admin()
        create_mocks(admin)
        path_param_endpoint(admin)
        st, body = api(admin, "POST", "/api/v1/mocks", body={
            "id": "gql-slow-tick", "graphql": {"operation": "subscription", "field": "slowTick"},
            "response": {"sseEventChain": {"events": [{"data": {"n": 1}, "delay": 5000}]}}})
        check(st in (200, 201), "create mock gql-slow-tick (%s %s)" % (st, body))
        asyncio.run(ws_big_payloads(admin.port, "admin"))
        rx = hook_receiver()
        create_hook_mocks(admin, rx)
        requests_without_schema(admin.port, "admin")
        batches(admin.port, "admin")
        batch_budget(admin.port, "admin")
        webhooks(admin.port, "admin", rx)
        upload_schema(admin)
        requests_with_schema(admin.port, "admin")
        journal(admin)
        if setup.resolver_bin:
            res = setup.start_resolver()
            c = GraphQLClient("http://127.0.0.1:%d/graphql" % res.port)
            wait_for(lambda: "errors" not in c.post("{ __schema { queryType { name } } }")[1],
                     "resolver: the uploaded schema is served")
            requests_with_schema(res.port, "resolver")
            st, body, _ = c.post("{ users { id } secretData }")
            check(body.get("data") == {"users": [{"id": "1"}, {"id": "2"}], "secretData": None}
                  and body["errors"][0]["extensions"]["code"] == "FORBIDDEN",
                  "resolver: data and graphqlErrors (%s)" % body)
            # A schema deleted on the admin stops being used by the resolver.
            st, _ = api(admin, "DELETE", "/api/v1/graphql/schemas?path=/graphql")
            check(st == 200, "schema deleted (%s)" % st)
            wait_for(lambda: (c.post("{ __schema { queryType { name } } }")[1].get("errors") or
                              [{}])[0].get("extensions", {}).get("code") ==
                     "INTROSPECTION_UNAVAILABLE", "resolver: a deleted schema is dropped")
            requests_without_schema(res.port, "resolver")
            batches(res.port, "resolver")
            webhooks(res.port, "resolver", rx)
            harness.check_exit(res, "resolver")
            batches_on_redis(setup, admin, rx)
        rx.close()
        harness.check_exit(admin, "admin")
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
