#!/usr/bin/python3
"""protodyn against Python's protobuf (python3-protobuf, the reference json_format): random
messages of testdata/dyn.proto are decoded by protodyn and compared with MessageToDict, and the
reference JSON is encoded by protodyn and parsed back by Python into an equal message."""
import base64
import json
import math
import random
import subprocess
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

tool, descriptors = sys.argv[1], sys.argv[2]
fds = descriptor_pb2.FileDescriptorSet.FromString(open(descriptors, "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
fac = message_factory.MessageFactory(pool)
All = fac.GetPrototype(pool.FindMessageTypeByName("dyn.All"))
Inner = fac.GetPrototype(pool.FindMessageTypeByName("dyn.Inner"))
rnd = random.Random(7)


def r_int(bits, signed):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return rnd.choice([0, 1, -1 if signed else 2, lo, hi, rnd.randint(lo, hi)])


def r_str():
    return "".join(rnd.choice("ab\u00e9\u4e2d\U0001F600 \"\\\n") for _ in range(rnd.randint(0, 6)))


def r_inner(depth=0):
    m = Inner(name=r_str(), nums=[r_int(32, True) for _ in range(rnd.randint(0, 3))])
    if depth < 3 and rnd.random() < 0.4:
        m.child.CopyFrom(r_inner(depth + 1))
    return m


def r_all():
    m = All()
    for name, bits, signed in [("i32", 32, True), ("i64", 64, True), ("u32", 32, False),
                               ("u64", 64, False), ("s32", 32, True), ("s64", 64, True),
                               ("f32", 32, False), ("f64", 64, False), ("sf32", 32, True),
                               ("sf64", 64, True)]:
        if rnd.random() < 0.7:
            setattr(m, name, r_int(bits, signed))
    if rnd.random() < 0.7:
        m.fl = rnd.choice([0.5, -2.25, 3.0, 1e-3, float("inf"), 1.5e10])
    if rnd.random() < 0.7:
        m.db = rnd.choice([0.1, -1e300, 2.0, float("-inf"), float("nan"), 123456.789])
    m.b = rnd.random() < 0.5
    m.str = r_str()
    m.by = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 7)))
    m.color = rnd.choice([0, 1, 2, 9])
    if rnd.random() < 0.6:
        m.inner.CopyFrom(r_inner())
    m.rep_i32.extend(r_int(32, True) for _ in range(rnd.randint(0, 4)))
    m.rep_str.extend(r_str() for _ in range(rnd.randint(0, 3)))
    for _ in range(rnd.randint(0, 2)):
        m.rep_inner.add().CopyFrom(r_inner())
    m.rep_color.extend(rnd.choice([1, 2, 0, 42]) for _ in range(rnd.randint(0, 3)))
    for _ in range(rnd.randint(0, 3)):
        m.m_str[r_str()] = r_int(32, True)
    for _ in range(rnd.randint(0, 2)):
        m.m_i64[r_int(64, True)].CopyFrom(r_inner())
    if rnd.random() < 0.5:
        m.m_bool[rnd.random() < 0.5] = r_str()
    c = rnd.random()
    if c < 0.33:
        m.o_str = r_str()
    elif c < 0.66:
        m.o_inner.CopyFrom(r_inner())
    m.snake_case_name = r_str()
    return m


def run(mode, lines):
    p = subprocess.run([tool, descriptors, "dyn.All", mode], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        sys.exit("tool failed: " + p.stderr)
    return p.stdout.splitlines()


def norm(v):
    """JSON for comparison: NaN as a string, floats as floats."""
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return v


msgs = [r_all() for _ in range(300)]
want = [json_format.MessageToDict(m) for m in msgs]
got = run("decode", [base64.b64encode(m.SerializeToString()).decode() for m in msgs])
failures = 0
for i, (m, w, g) in enumerate(zip(msgs, want, got)):
    if g.startswith("ERR") or norm(json.loads(g)) != norm(w):
        failures += 1
        if failures <= 5:
            print("decode mismatch #%d:\n  protobuf: %s\n  protodyn: %s" % (i, json.dumps(w), g))
enc = run("encode", [json_format.MessageToJson(m, indent=None) for m in msgs])
for i, (m, e) in enumerate(zip(msgs, enc)):
    padded = e + "=" * (-len(e) % 4)  # the tool prints base64 unpadded, as gRPC does
    back = All.FromString(base64.b64decode(padded)) if not e.startswith("ERR") else None
    same = back is not None and (back == m or json_format.MessageToDict(back) ==
                                 json_format.MessageToDict(m))
    if not same:
        failures += 1
        if failures <= 10:
            print("encode mismatch #%d: %s -> %s" % (i, json_format.MessageToJson(m), e))
print("%d messages each way, %d mismatches" % (len(msgs), failures))
sys.exit(1 if failures else 0)
