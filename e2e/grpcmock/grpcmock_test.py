#!/usr/bin/python3
"""gRPC mocks against real clients (Debian's python3-grpcio): a descriptor set uploaded through the
API, a dynamic client built from the same set, the four call kinds, an error with google.rpc.Status
details, a deadline, unknown methods, the health service and the journal.

usage: grpcmock_test.py MOCKARTY [MOCKARTY_RESOLVER]
With the resolver binary, the same calls also run against a resolver following a PostgreSQL admin.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from support import harness, services  # noqa: E402
from support.harness import check  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

PROTO = """
syntax = "proto3";
package demo;
import "google/protobuf/timestamp.proto";
message GetUserRequest { string user_id = 1; }
message User {
  string id = 1; string name = 2; int64 age = 3; repeated string tags = 4;
  google.protobuf.Timestamp born = 5;
}
message Chunk { string text = 1; int32 seq = 2; }
message Sum { int32 count = 1; string last = 2; }
service Users {
  rpc GetUser(GetUserRequest) returns (User);
  rpc ListUsers(GetUserRequest) returns (stream User);
  rpc Upload(stream Chunk) returns (Sum);
  rpc Chat(stream Chunk) returns (stream Chunk);
}
"""

# google.rpc.Status and two details, declared here so the check needs no googleapis package.
STATUS_PROTO = """
syntax = "proto3";
package google.rpc;
message Any { string type_url = 1; bytes value = 2; }  // wire-compatible with protobuf's Any
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message ResourceInfo { string resource_type = 1; string resource_name = 2; string owner = 3;
                       string description = 4; }
message BadRequest {
  message FieldViolation { string field = 1; string description = 2; }
  repeated FieldViolation field_violations = 1;
}
"""

REFLECTION_PROTO = """
syntax = "proto3";
package grpc.reflection.v1;
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3; string file_containing_symbol = 4;
    ExtensionRequest file_containing_extension = 5; string all_extension_numbers_of_type = 6;
    string list_services = 7;
  }
}
message ExtensionRequest { string containing_type = 1; int32 extension_number = 2; }
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ExtensionNumberResponse all_extension_numbers_response = 5;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ExtensionNumberResponse { string base_type_name = 1; repeated int32 extension_number = 2; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
"""

# Uploaded as text: no imports, since the server's protoc finds the well-known types only where
# libprotobuf-dev installs them.
PLAIN_PROTO = """
syntax = "proto3";
package plain;
message Msg { string text = 1; }
service Pings { rpc Ping(Msg) returns (Msg); }
"""
WKT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pkg", "protodyn",
                   "testdata", "wkt")


def protoc(work, name, text):
    src = os.path.join(work, name + ".proto")
    with open(src, "w") as f:
        f.write(text)
    out = os.path.join(work, name + ".pb")
    subprocess.run(["protoc", "--include_imports", "-I" + work, "-I" + WKT,
                    "--descriptor_set_out=" + out, src], check=True)
    with open(out, "rb") as f:
        return f.read()


class Types:
    """Message classes built at run time from a FileDescriptorSet."""

    def __init__(self, data):
        fds = descriptor_pb2.FileDescriptorSet.FromString(data)
        self.pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:
            self.pool.Add(fd)
        self.factory = message_factory.MessageFactory(self.pool)

    def __getitem__(self, name):
        d = self.pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(d)
        return self.factory.GetPrototype(d)


TOKEN = "grpc-e2e-token"
AUTH = [("authorization", "Bearer " + TOKEN)]


def api(node, method, path, body=None, **kw):
    return harness.api(node, TOKEN, method, path, body=body, **kw)


MOCKS = [
    {"id": "g-unary", "grpc": {"service": "demo.Users", "method": "GetUser", "methodType": "unary"},
     "response": {"payload": {"id": "$.req.userId", "name": "Guest", "age": "42",
                              "tags": ["a", "b"], "born": "2020-01-02T03:04:05Z"}}},
    {"id": "g-admin", "priority": 10,
     "grpc": {"service": "demo.Users", "method": "GetUser",
              "conditions": [{"path": "$.body.user_id", "assertAction": "equals",
                              "value": "admin"}]},
     "response": {"payload": {"id": "admin", "name": "Super Admin"}}},
    {"id": "g-tenant", "priority": 20,
     "grpc": {"service": "demo.Users", "method": "GetUser",
              "meta": [{"path": "x-tenant", "assertAction": "equals", "value": "acme"}]},
     "response": {"payload": {"id": "$.req.userId", "name": "$.reqHeader.x-tenant[0]"},
                  "headers": {"x-mock": ["tenant"], "x-user": ["user-$.req.userId"]}}},
    {"id": "g-missing", "priority": 30,
     "grpc": {"service": "demo.Users", "method": "GetUser",
              "conditions": [{"path": "$.userId", "assertAction": "equals", "value": "missing"}]},
     "response": {"statusCode": 5, "error": "user not found",
                  "errorDetails": [
                      {"type": "resourceInfo",
                       "details": {"resourceType": "User", "resourceName": "missing"}},
                      {"type": "badRequest",
                       "details": {"fieldViolations": [{"field": "user_id",
                                                        "description": "unknown"}]}}]}},
    {"id": "g-slow", "priority": 30,
     "grpc": {"service": "demo.Users", "method": "GetUser",
              "conditions": [{"path": "$.userId", "assertAction": "equals", "value": "slow"}]},
     "response": {"delay": 2000, "payload": {"id": "slow"}}},
    {"id": "g-list", "grpc": {"service": "demo.Users", "method": "ListUsers",
                              "methodType": "server_stream"},
     "response": {"payload": [{"id": "1"}, {"id": "2", "$delay": 300}, {"id": "$.req.userId"}]}},
    {"id": "g-upload", "grpc": {"service": "demo.Users", "method": "Upload",
                                "methodType": "client_stream"},
     "response": {"payload": {"count": 1, "last": "$.req.text"}}},
    {"id": "g-chat", "grpc": {"service": "demo.Users", "method": "Chat", "methodType": "bidi"},
     "response": {"payload": [{"text": "echo: $.req.text", "seq": "$.req.seq"}]}},
]


def calls(port, T, S, R, where):
    """The client scenarios; where names the server in the messages."""
    ch = grpc.insecure_channel("127.0.0.1:%d" % port)
    grpc.channel_ready_future(ch).result(timeout=10)
    Req, User, Chunk, Sum = T["demo.GetUserRequest"], T["demo.User"], T["demo.Chunk"], T["demo.Sum"]
    get = ch.unary_unary("/demo.Users/GetUser", request_serializer=Req.SerializeToString,
                         response_deserializer=User.FromString)
    u = get(Req(user_id="u1"), timeout=5)
    check(u.id == "u1" and u.name == "Guest" and u.age == 42 and list(u.tags) == ["a", "b"] and
          u.born.seconds == 1577934245, where + ": unary answer rendered from the request: %r" % u)
    u = get(Req(user_id="admin"), timeout=5)
    check(u.name == "Super Admin", where + ": condition on the message picks the admin mock")
    u, call = get.with_call(Req(user_id="t"), metadata=[("x-tenant", "acme")], timeout=5)
    check(u.name == "acme" and ("x-mock", "tenant") in call.initial_metadata() and
          ("x-user", "user-t") in call.initial_metadata(),
          where + ": metadata condition, metadata in a template, response metadata, templated "
          "(%r %r)" % (u.name, call.initial_metadata()))

    try:
        get(Req(user_id="missing"), timeout=5)
        check(False, where + ": error mock answers an error")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND and e.details() == "user not found",
              where + ": NOT_FOUND with its message (%s %s)" % (e.code(), e.details()))
        bin_ = dict(e.trailing_metadata()).get("grpc-status-details-bin")
        st = S["google.rpc.Status"].FromString(bin_ or b"")
        kinds = [d.type_url for d in st.details]
        ri = S["google.rpc.ResourceInfo"].FromString(st.details[0].value) if st.details else None
        br = S["google.rpc.BadRequest"].FromString(st.details[1].value) if len(st.details) > 1 \
            else None
        check(st.code == 5 and st.message == "user not found" and
              kinds == ["type.googleapis.com/google.rpc.ResourceInfo",
                        "type.googleapis.com/google.rpc.BadRequest"] and
              ri.resource_name == "missing" and br.field_violations[0].field == "user_id",
              where + ": grpc-status-details-bin is a google.rpc.Status with the details")

    t0 = time.time()
    try:
        get(Req(user_id="slow"), timeout=0.3)
        check(False, where + ": deadline passes")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.time() - t0 < 1.5,
              where + ": DEADLINE_EXCEEDED before the 2 s delay (%s)" % e.code())

    lst = ch.unary_stream("/demo.Users/ListUsers", request_serializer=Req.SerializeToString,
                          response_deserializer=User.FromString)
    t0 = time.time()
    got = [m.id for m in lst(Req(user_id="zz"), timeout=5)]
    check(got == ["1", "2", "zz"] and time.time() - t0 >= 0.3,
          where + ": server stream of three messages with a 300 ms $delay: %r" % got)

    up = ch.stream_unary("/demo.Users/Upload", request_serializer=Chunk.SerializeToString,
                         response_deserializer=Sum.FromString)
    s = up(iter([Chunk(text="a", seq=1), Chunk(text="b", seq=2), Chunk(text="last", seq=3)]),
           timeout=5)
    check(s.count == 1 and s.last == "last", where + ": client stream answered after the last")

    chat = ch.stream_stream("/demo.Users/Chat", request_serializer=Chunk.SerializeToString,
                            response_deserializer=Chunk.FromString)
    got = [(m.text, m.seq) for m in chat(iter([Chunk(text="hi", seq=1), Chunk(text="yo", seq=2)]),
                                         timeout=5)]
    check(got == [("echo: hi", 1), ("echo: yo", 2)], where + ": bidi answers each message: %r" % got)

    nope = ch.unary_unary("/demo.Users/Nope", request_serializer=Req.SerializeToString,
                          response_deserializer=User.FromString)
    try:
        nope(Req(), timeout=5)
        check(False, where + ": unknown method fails")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED and "closest mocks:" not in e.details() and
              "API token" in e.details(),
              where + ": without the API token the closest mocks stay hidden: %s" % e.details())
    try:
        nope(Req(), metadata=AUTH, timeout=5)
        check(False, where + ": unknown method fails")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED and "/demo.Users/GetUser" in e.details(),
              where + ": unknown method: UNIMPLEMENTED naming the closest mocks: %s" % e.details())
    try:
        get(Req(user_id="u1"), metadata=[("x-namespace", "elsewhere")] + AUTH, timeout=5)
        check(False, where + ": other namespace fails")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED and "elsewhere" in e.details(),
              where + ": a namespace without descriptors: UNIMPLEMENTED (%s)" % e.details())

    RReq = R["grpc.reflection.v1.ServerReflectionRequest"]
    RResp = R["grpc.reflection.v1.ServerReflectionResponse"]
    for version in ("v1", "v1alpha"):
        refl = ch.stream_stream("/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" %
                                version, request_serializer=RReq.SerializeToString,
                                response_deserializer=RResp.FromString)
        answers = list(refl(iter([RReq(list_services=""),
                                  RReq(file_containing_symbol="demo.Users"),
                                  RReq(file_containing_symbol="demo.Users.GetUser"),
                                  RReq(file_containing_symbol="no.Such")]), timeout=5))
        services_ = [x.name for x in answers[0].list_services_response.service]
        pool = descriptor_pool.DescriptorPool()
        for raw in answers[1].file_descriptor_response.file_descriptor_proto:
            pool.Add(descriptor_pb2.FileDescriptorProto.FromString(raw))
        svc = pool.FindServiceByName("demo.Users")
        check(services_ == ["demo.Users"] and
              [m.name for m in svc.methods] == ["GetUser", "ListUsers", "Upload", "Chat"] and
              svc.methods[1].server_streaming and
              len(answers[2].file_descriptor_response.file_descriptor_proto) >= 2 and
              answers[3].error_response.error_code == 5,
              where + ": reflection %s lists the service, gives its files (a client can be built "
              "from them) and NOT_FOUND for an unknown symbol" % version)

    health = ch.unary_unary("/grpc.health.v1.Health/Check")
    check(health(b"", timeout=5) == b"\x08\x01", where + ": health Check answers SERVING")
    ch.close()


def descriptor_api(admin, work, pb):
    st, body = api(admin, "POST", "/api/v1/grpc/descriptors?name=demo", raw=pb,
                   headers={"Content-Type": "application/octet-stream"})
    check(st == 201 and len(body["methods"]) == 4 and body["services"] == ["demo.Users"],
          "upload a descriptor set: 201 with its methods (%s %s)" % (st, body))
    st, body = api(admin, "POST", "/api/v1/grpc/descriptors?name=junk", raw=b"\x0a\x05junk!",
                   headers={"Content-Type": "application/octet-stream"})
    check(st == 400 and "descriptor set" in body["error"], "a broken set: 400 (%s)" % body)
    st, body = api(admin, "POST", "/api/v1/grpc/descriptors?name=text", raw=PLAIN_PROTO.encode(),
                   headers={"Content-Type": "text/plain"})
    check(st == 201 and body["methods"][0]["path"] == "/plain.Pings/Ping",
          ".proto text compiled by protoc: 201 (%s %s)" % (st, body))
    st, body = api(admin, "POST", "/api/v1/grpc/descriptors?name=bad", raw=b"syntax = nope;",
                   headers={"Content-Type": "text/plain"})
    check(st == 400 and "does not compile" in body["error"], "a bad .proto: 400 (%s)" % body)
    st, body = api(admin, "GET", "/api/v1/grpc/descriptors")
    names = sorted(d["name"] for d in body["descriptors"])
    check(st == 200 and names == ["demo", "text"] and "data" not in body["descriptors"][0],
          "list: the two sets, without their bytes (%s)" % names)
    st2, body2 = api(admin, "GET", "/api/v1/grpc/descriptors?namespace=other")
    check(st2 == 200 and body2["descriptors"] == [], "another namespace sees none")
    st, _ = api(admin, "DELETE", "/api/v1/grpc/descriptors/text")
    st2, _ = api(admin, "DELETE", "/api/v1/grpc/descriptors/text")
    check(st == 200 and st2 == 404, "delete: 200, then 404 (%s %s)" % (st, st2))
    for m in MOCKS:
        st, body = api(admin, "POST", "/api/v1/mocks", body=m)
        check(st in (200, 201), "create mock %s (%s %s)" % (m["id"], st, body))
    st, body = api(admin, "POST", "/api/v1/mocks",
                   body={"grpc": {"service": "demo.Users", "method": "X", "methodType": "twice"},
                         "response": {}})
    check(st == 400 and "grpc.methodType" in body["error"], "a bad methodType: 400")
    st, body = api(admin, "GRPC", "/demo.Users/GetUser", raw=b"")
    check(st == 404, "an HTTP request with method GRPC does not reach gRPC mocks (%s)" % st)


def generator_api(admin, port, pb, T):
    """Mockarty's /api/v1/generators/grpc: a descriptor set (or .proto text) becomes one mock per
    method with an example answer, and a create keeps the set so the mocks answer at once."""
    octet = {"Content-Type": "application/octet-stream"}
    st, body = api(admin, "POST", "/api/v1/generators/grpc/preview?namespace=gen", raw=pb,
                   headers=octet)
    kinds = sorted(m["grpc"]["methodType"] for m in (body or {}).get("mocks", []))
    check(st == 200 and body["count"] == 4 and
          kinds == ["bidi", "client_stream", "server_stream", "unary"],
          "generators/grpc/preview: one mock per method with its call kind (%s %s)" % (st, kinds))
    st, listed = api(admin, "GET", "/api/v1/grpc/descriptors?namespace=gen")
    check(listed["descriptors"] == [], "the preview stores no descriptor set")
    st, body = api(admin, "POST", "/api/v1/generators/grpc?namespace=gen&name=gen", raw=pb,
                   headers=octet)
    check(st == 201 and body["created"] == 4, "generators/grpc: 4 mocks created (%s)" % body)
    st, body = api(admin, "POST", "/api/v1/generators/grpc/preview?namespace=gen2",
                   raw=PLAIN_PROTO.encode(), headers={"Content-Type": "text/plain"})
    check(st == 200 and body["count"] == 1 and
          body["mocks"][0]["grpc"]["service"] == "plain.Pings",
          ".proto text is compiled for the generator (%s)" % st)

    ch = grpc.insecure_channel("127.0.0.1:%d" % port)
    Req, User = T["demo.GetUserRequest"], T["demo.User"]
    get = ch.unary_unary("/demo.Users/GetUser", request_serializer=Req.SerializeToString,
                         response_deserializer=User.FromString)
    lst = ch.unary_stream("/demo.Users/ListUsers", request_serializer=Req.SerializeToString,
                          response_deserializer=User.FromString)
    md = [("x-namespace", "gen")] + AUTH
    deadline = time.time() + 10
    while True:  # the gRPC server re-reads descriptor sets after the notice
        try:
            u = get(Req(user_id="x"), metadata=md, timeout=5)
            break
        except grpc.RpcError as e:
            if time.time() > deadline:
                check(False, "the generated unary mock answers: %s %s" % (e.code(), e.details()))
                return
            time.sleep(0.2)
    check(u.id == "id" and u.name == "name" and u.age == 1 and list(u.tags) == ["tags"] and
          u.born.seconds == 1704164645,
          "the generated unary mock answers an example User: %r" % u)
    users = list(lst(Req(user_id="x"), metadata=md, timeout=5))
    check(len(users) == 1 and users[0].name == "name",
          "the generated server-streaming mock answers one example message")
    ch.close()


def main():
    with harness.AdminAndResolver("mk-grpcmock-", TOKEN) as setup:
        work = setup.work
        pb = protoc(work, "demo", PROTO)
        T = Types(pb)
        S = Types(protoc(work, "status", STATUS_PROTO))
        R = Types(protoc(work, "reflection", REFLECTION_PROTO))
        grpc_port = services.free_port()
        admin = setup.start_admin({"GRPC_MOCK_PORT": str(grpc_port)})
        descriptor_api(admin, work, pb)
        calls(grpc_port, T, S, R, "admin")
        generator_api(admin, grpc_port, pb, T)

        st, body = api(admin, "GET", "/api/v1/requests?limit=200")
        entries = body if isinstance(body, list) else (body or {}).get("requests", body)
        grpc_entries = [e for e in entries if e.get("request", {}).get("method") == "GRPC"]
        check(len(grpc_entries) >= 10 and
              any(e.get("mockId") == "g-missing" and e["response"]["status"] == 5
                  for e in grpc_entries),
              "journal: gRPC calls recorded with mock id and status (%d)" % len(grpc_entries))
        # (One HTTP request with the method GRPC is sent on purpose: it stays an HTTP entry.)
        proto = [e for e in grpc_entries if e.get("protocol") == "grpc"]
        check(len(proto) >= 10 and all("/" in e.get("operation", "") for e in proto),
              "journal: gRPC calls carry protocol grpc and their Service/Method (%d)" % len(proto))
        check(any(e["response"].get("body", "").startswith('{"id": "admin"') or
                  '"Super Admin"' in e["response"].get("body", "") for e in proto) and
              any(e["response"].get("body") == "user not found" for e in proto),
              "journal: gRPC entries keep what was answered (payload, or the error message)")
        st, body = api(admin, "GET", "/api/v1/requests?protocol=grpc&limit=200")
        check(st == 200 and body["total"] == len(proto),
              "requests?protocol=grpc selects the gRPC calls (%s)" % (body or {}).get("total"))
        metrics = admin.request("GET", "/metrics").raw.decode()
        check('mockarty_protocol_requests_total{protocol="grpc",outcome="matched"}' in metrics,
              "/metrics counts gRPC mock calls by protocol")

        if setup.resolver_bin:
            grpc_port = services.free_port()
            # Not waiting for /health/ready: the first call goes out as soon as the gRPC port
            # takes connections, which it does only once the mocks are loaded.
            res = setup.start_resolver({"GRPC_MOCK_PORT": str(grpc_port)}, wait_ready=False)
            calls(grpc_port, T, S, R, "resolver")
            harness.check_exit(res, "resolver")
        harness.check_exit(admin, "admin")
    return harness.finish()


if __name__ == "__main__":
    sys.exit(main())
