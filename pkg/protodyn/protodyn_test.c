/* protodyn against protobuf-c code generated from the same .proto (testdata/dyn.proto): what
 * protobuf-c packs, protodyn decodes to proto3 JSON; what protodyn encodes, protobuf-c unpacks. */
#include "protodyn/protodyn.h"
#include "testing/testing.h"

#include "dyn.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mk_protodyn_pool_t *pool;
static const mk_protodyn_msg_t *all_t, *inner_t;

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
}

static void test_load(void)
{
    size_t n = 0;
    uint8_t *d = read_file(DYN_DESCRIPTORS, &n);
    MK_CHECK(d != NULL);
    mk_err_t err = {0};
    MK_CHECK_INT(mk_protodyn_pool_new(d, n, &pool, &err), 0);
    free(d);
    all_t = mk_protodyn_find_message(pool, "dyn.All");
    inner_t = mk_protodyn_find_message(pool, ".dyn.Inner");
    MK_CHECK(all_t != NULL && inner_t != NULL);
    MK_CHECK(mk_protodyn_find_message(pool, "dyn.Nope") == NULL);
    const mk_protodyn_method_t *m = mk_protodyn_find_method(pool, "/dyn.Dyn/Watch");
    MK_CHECK(m && m->server_streaming && !m->client_streaming && m->input == inner_t);
    MK_CHECK_INT(mk_protodyn_method_count(pool), 2);
    MK_CHECK_STR(mk_protodyn_msg_name(mk_protodyn_method_at(pool, 0)->output), "dyn.Inner");
}

static void test_decode_everything(void)
{
    Dyn__All a = DYN__ALL__INIT;
    Dyn__Inner in = DYN__INNER__INIT, child = DYN__INNER__INIT, ri = DYN__INNER__INIT;
    a.i32 = -5;
    a.i64 = -9000000000LL;
    a.u32 = 4000000000u;
    a.u64 = 18446744073709551615ull;
    a.s32 = -7;
    a.s64 = -8;
    a.f32 = 9;
    a.f64 = 10;
    a.sf32 = -11;
    a.sf64 = -12;
    a.fl = 0.5f;
    a.db = 1.25;
    a.b = 1;
    a.str = "h\xc3\xa9";
    a.by.data = (uint8_t *)"\x00\xff\x10";
    a.by.len = 3;
    a.color = DYN__COLOR__GREEN;
    in.name = "in";
    int32_t nums[] = {1, -2, 300};
    in.nums = nums;
    in.n_nums = 3;
    child.name = "child";
    in.child = &child;
    a.inner = &in;
    int32_t ri32[] = {7, 8};
    a.rep_i32 = ri32;
    a.n_rep_i32 = 2;
    char *rs[] = {"x", ""};
    a.rep_str = rs;
    a.n_rep_str = 2;
    ri.name = "r";
    Dyn__Inner *rins[] = {&ri};
    a.rep_inner = rins;
    a.n_rep_inner = 1;
    Dyn__Color cols[] = {DYN__COLOR__RED, 5};
    a.rep_color = cols;
    a.n_rep_color = 2;
    Dyn__All__MStrEntry e1 = DYN__ALL__MSTR_ENTRY__INIT;
    e1.key = "k";
    e1.value = 3;
    Dyn__All__MStrEntry *ms[] = {&e1};
    a.m_str = ms;
    a.n_m_str = 1;
    Dyn__All__MI64Entry e2 = DYN__ALL__MI64_ENTRY__INIT;
    e2.key = -4;
    e2.value = &ri;
    Dyn__All__MI64Entry *mi[] = {&e2};
    a.m_i64 = mi;
    a.n_m_i64 = 1;
    Dyn__All__MBoolEntry e3 = DYN__ALL__MBOOL_ENTRY__INIT;
    e3.key = 1;
    e3.value = "yes";
    Dyn__All__MBoolEntry *mb[] = {&e3};
    a.m_bool = mb;
    a.n_m_bool = 1;
    a.choice_case = DYN__ALL__CHOICE_O_INNER;
    a.o_inner = &child;
    a.snake_case_name = "s";

    size_t n = dyn__all__get_packed_size(&a);
    uint8_t *buf = malloc(n);
    dyn__all__pack(&a, buf);
    json_t *j = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_protodyn_decode(all_t, buf, n, &j, &err), 0);
    char *s = dump(j);
    MK_CHECK_STR(s,
                 "{\"b\":true,\"by\":\"AP8Q\",\"color\":\"GREEN\",\"db\":1.25,\"f32\":9,"
                 "\"f64\":\"10\",\"fl\":0.5,\"i32\":-5,\"i64\":\"-9000000000\","
                 "\"inner\":{\"child\":{\"name\":\"child\"},\"name\":\"in\",\"nums\":[1,-2,300]},"
                 "\"mBool\":{\"true\":\"yes\"},\"mI64\":{\"-4\":{\"name\":\"r\"}},"
                 "\"mStr\":{\"k\":3},\"oInner\":{\"name\":\"child\"},"
                 "\"repColor\":[\"RED\",5],\"repI32\":[7,8],\"repInner\":[{\"name\":\"r\"}],"
                 "\"repStr\":[\"x\",\"\"],\"s32\":-7,\"s64\":\"-8\",\"sf32\":-11,"
                 "\"sf64\":\"-12\",\"snakeCaseName\":\"s\",\"str\":\"h\xc3\xa9\","
                 "\"u32\":4000000000,\"u64\":\"18446744073709551615\"}");
    free(s);

    /* Back to the wire, and protobuf-c reads the same values. */
    mk_buf_t out;
    mk_buf_init(&out, 0);
    MK_CHECK_INT(mk_protodyn_encode(all_t, j, &out, &err), 0);
    Dyn__All *b = dyn__all__unpack(NULL, out.len, (const uint8_t *)out.data);
    MK_CHECK(b != NULL);
    if (b) {
        MK_CHECK(b->i32 == -5 && b->i64 == -9000000000LL && b->u32 == 4000000000u &&
                 b->u64 == 18446744073709551615ull && b->s32 == -7 && b->s64 == -8);
        MK_CHECK(b->f32 == 9 && b->f64 == 10 && b->sf32 == -11 && b->sf64 == -12 && b->fl == 0.5f &&
                 b->db == 1.25 && b->b);
        MK_CHECK_STR(b->str, "h\xc3\xa9");
        MK_CHECK(b->by.len == 3 && memcmp(b->by.data, "\x00\xff\x10", 3) == 0);
        MK_CHECK(b->color == DYN__COLOR__GREEN);
        MK_CHECK(b->inner && b->inner->n_nums == 3 && b->inner->nums[1] == -2 && b->inner->child &&
                 strcmp(b->inner->child->name, "child") == 0);
        MK_CHECK(b->n_rep_color == 2 && b->rep_color[1] == 5);
        MK_CHECK(b->n_m_i64 == 1 && b->m_i64[0]->key == -4 &&
                 strcmp(b->m_i64[0]->value->name, "r") == 0);
        MK_CHECK(b->n_m_bool == 1 && b->m_bool[0]->key && strcmp(b->m_bool[0]->value, "yes") == 0);
        MK_CHECK(b->choice_case == DYN__ALL__CHOICE_O_INNER);
        MK_CHECK_STR(b->snake_case_name, "s");
        dyn__all__free_unpacked(b, NULL);
    }
    /* Decoding what we encoded gives the same JSON. */
    json_t *j2 = NULL;
    MK_CHECK_INT(mk_protodyn_decode(all_t, (const uint8_t *)out.data, out.len, &j2, &err), 0);
    MK_CHECK(json_equal(j, j2));
    json_decref(j2);
    mk_buf_free(&out);
    json_decref(j);
    free(buf);
}

static void test_input_forms(void)
{
    /* Original names as well as json names, numbers as strings, enum by number, null, url-safe
     * base64, floats spelled as strings. */
    json_t *in = json_loads("{\"snake_case_name\":\"x\",\"i64\":\"-3\",\"u32\":\"7\",\"i32\":4.0,"
                            "\"color\":2,\"str\":null,\"by\":\"_-8\",\"db\":\"Infinity\","
                            "\"fl\":\"1.5\",\"oStr\":\"o\"}",
                            0, NULL);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    mk_err_t err = {0};
    MK_CHECK_INT(mk_protodyn_encode(all_t, in, &out, &err), 0);
    Dyn__All *b = dyn__all__unpack(NULL, out.len, (const uint8_t *)out.data);
    MK_CHECK(b != NULL);
    if (b) {
        MK_CHECK_STR(b->snake_case_name, "x");
        MK_CHECK(b->i64 == -3 && b->u32 == 7 && b->i32 == 4 && b->color == DYN__COLOR__GREEN);
        MK_CHECK(b->by.len == 2 && b->by.data[0] == 0xff && b->by.data[1] == 0xef);
        MK_CHECK(b->db > 1e308 && b->fl == 1.5f);
        MK_CHECK(b->choice_case == DYN__ALL__CHOICE_O_STR && strcmp(b->o_str, "o") == 0);
        dyn__all__free_unpacked(b, NULL);
    }
    mk_buf_free(&out);
    json_decref(in);
}

static void expect_encode_error(const char *json, const char *needle)
{
    json_t *in = json_loads(json, 0, NULL);
    MK_CHECK(in != NULL);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    mk_err_t err = {0};
    int rc = mk_protodyn_encode(all_t, in, &out, &err);
    char d[700];
    snprintf(d, sizeof d, "%s -> rc %d \"%s\" (want \"%s\")", json, rc, err.msg, needle);
    mk_testing_record(rc == MK_EINVAL && strstr(err.msg, needle) != NULL, __FILE__, __LINE__,
                      "encode refused", d);
    mk_buf_free(&out);
    json_decref(in);
}

static void test_encode_errors(void)
{
    expect_encode_error("{\"nope\":1}", "unknown field \"nope\" in dyn.All");
    expect_encode_error("{\"i32\":\"abc\"}", "i32: \"abc\" is not an integer");
    expect_encode_error("{\"i32\":3000000000}", "i32: 3000000000 is out of range");
    expect_encode_error("{\"u64\":-1}", "u64: -1 is out of range");
    expect_encode_error("{\"i32\":1.5}", "not an integer");
    expect_encode_error("{\"b\":1}", "b: expected true or false");
    expect_encode_error("{\"str\":5}", "str: expected a string");
    expect_encode_error("{\"by\":\"***\"}", "by: not valid base64");
    expect_encode_error("{\"color\":\"BLUE\"}", "color: \"BLUE\" is not a value of enum dyn.Color");
    expect_encode_error("{\"oStr\":\"a\",\"oInner\":{}}", "members of one oneof");
    expect_encode_error("{\"repI32\":[1,\"x\"]}", "repI32: [1]: ");
    expect_encode_error("{\"inner\":{\"child\":{\"nums\":[true]}}}", "inner: child: nums: [0]");
    expect_encode_error("{\"mBool\":{\"maybe\":\"x\"}}", "is not true or false");
    expect_encode_error("{\"mI64\":{\"x\":{}}}", "mI64: [\"x\"]");
    expect_encode_error("{\"inner\":[]}", "inner: expected an object");
    expect_encode_error("{\"snakeCaseName\":\"a\",\"snake_case_name\":\"b\"}", "given twice");
    /* 100 levels of Inner.child: over the depth limit, refused rather than recursing on. */
    char deep[2000] = "{\"inner\":";
    for (int i = 0; i < 100; i++)
        strcat(deep, "{\"child\":");
    strcat(deep, "{}");
    for (int i = 0; i < 101; i++)
        strcat(deep, "}");
    expect_encode_error(deep, "nested deeper than 64");
}

static void test_decode_errors_and_unknown(void)
{
    mk_err_t err = {0};
    json_t *j = NULL;
    /* Unknown fields of every wire type are skipped: 99 varint, 98 fixed64, 97 len, 96 group. */
    const uint8_t unk[] = {0x98, 0x06, 0x05, 0x91, 0x06, 1,    2,    3,   4,
                           5,    6,    7,    8,    0x8a, 0x06, 0x02, 'a', 'b',
                           0x83, 0x06, 0x08, 0x01, 0x84, 0x06, 0x08, 0x07};
    MK_CHECK_INT(mk_protodyn_decode(all_t, unk, sizeof unk, &j, &err), 0);
    char *s = j ? dump(j) : NULL;
    MK_CHECK_STR(s, "{\"i32\":7}");
    free(s);
    json_decref(j);

    const uint8_t truncated[] = {0x72, 0x05, 'a', 'b'}; /* str of 5 bytes, 2 present */
    MK_CHECK_INT(mk_protodyn_decode(all_t, truncated, sizeof truncated, &j, &err), MK_EINVAL);
    MK_CHECK(j == NULL);
    const uint8_t badutf8[] = {0x72, 0x02, 0xc3, 0x28};
    MK_CHECK_INT(mk_protodyn_decode(all_t, badutf8, sizeof badutf8, &j, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "str: string is not valid UTF-8") != NULL);
    const uint8_t wrongwt[] = {0x70, 0x01}; /* str as a varint */
    MK_CHECK_INT(mk_protodyn_decode(all_t, wrongwt, sizeof wrongwt, &j, &err), MK_EINVAL);
    const uint8_t hugelen[] = {0x72, 0xff, 0xff, 0xff, 0xff, 0x0f};
    MK_CHECK_INT(mk_protodyn_decode(all_t, hugelen, sizeof hugelen, &j, &err), MK_EINVAL);
    const uint8_t longvarint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    MK_CHECK_INT(mk_protodyn_decode(all_t, longvarint, sizeof longvarint, &j, &err), MK_EINVAL);

    /* 200 nested Inner.child on the wire: refused at the depth limit. */
    mk_buf_t w, tmp;
    mk_buf_init(&w, 0);
    mk_buf_init(&tmp, 0);
    for (int i = 0; i < 200; i++) {
        mk_buf_reset(&tmp);
        uint8_t hdr[6] = {0x1a};
        size_t l = w.len, h = 1;
        do {
            hdr[h++] = (uint8_t)(l & 0x7f) | (l > 0x7f ? 0x80 : 0);
            l >>= 7;
        } while (l);
        mk_buf_append(&tmp, hdr, h);
        mk_buf_append(&tmp, w.data, w.len);
        mk_buf_reset(&w);
        mk_buf_append(&w, tmp.data, tmp.len);
    }
    MK_CHECK_INT(mk_protodyn_decode(inner_t, (const uint8_t *)w.data, w.len, &j, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "nested deeper than 64") != NULL);
    mk_buf_free(&w);
    mk_buf_free(&tmp);

    /* Repeated occurrences of a singular message merge; of a oneof, the last member wins. */
    const uint8_t merge[] = {0x8a, 0x01, 0x02, 0x0a, 0x00, 0x8a, 0x01, 0x02, 0x10,
                             0x05, 0xca, 0x01, 0x01, 'z',  0xd2, 0x01, 0x00};
    MK_CHECK_INT(mk_protodyn_decode(all_t, merge, sizeof merge, &j, &err), 0);
    s = j ? dump(j) : NULL;
    MK_CHECK_STR(s, "{\"inner\":{\"name\":\"\",\"nums\":[5]},\"oInner\":{}}");
    free(s);
    json_decref(j);
}

static void test_bad_descriptors(void)
{
    mk_protodyn_pool_t *p = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_protodyn_pool_new((const uint8_t *)"garbage!", 8, &p, &err), MK_EINVAL);
    MK_CHECK(p == NULL && strstr(err.msg, "FileDescriptorSet") != NULL);
    MK_CHECK_INT(mk_protodyn_pool_new((const uint8_t *)"", 0, &p, &err), MK_EINVAL);
    /* A file whose message refers to a type that is not in the set. */
    static const uint8_t missing[] = {
        0x0a, 0x1c,                              /* file */
        0x0a, 0x03, 'a', '.',  'p',              /*   name */
        0x22, 0x15,                              /*   message_type */
        0x0a, 0x01, 'M',                         /*     name */
        0x12, 0x10,                              /*     field */
        0x0a, 0x01, 'f', 0x18, 0x01, 0x28, 0x0b, /*       f = 1, TYPE_MESSAGE */
        0x32, 0x07, '.', 'x',  '.',  'G',  'o',  'n', 'e'};
    MK_CHECK_INT(mk_protodyn_pool_new(missing, sizeof missing, &p, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, ".x.Gone of M.f is not in the set") != NULL);
}

static void test_coordinator_descriptors(void)
{
    size_t n = 0;
    uint8_t *d = read_file(COORDINATOR_DESCRIPTORS, &n);
    MK_CHECK(d != NULL);
    mk_protodyn_pool_t *p = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_protodyn_pool_new(d, n, &p, &err), 0);
    free(d);
    if (p == NULL)
        return;
    const mk_protodyn_method_t *m =
        mk_protodyn_find_method(p, "/mockarty.coordinator.v1.Coordinator/PullTasks");
    MK_CHECK(m && m->server_streaming && !m->client_streaming);
    m = mk_protodyn_find_method(p, "/mockarty.coordinator.v1.Coordinator/ReportProgress");
    MK_CHECK(m && m->client_streaming && !m->server_streaming);
    json_t *task = json_loads("{\"taskId\":\"t1\",\"attempt\":2,\"capability\":\"api_test\","
                              "\"timeoutMs\":\"1800000\"}",
                              0, NULL);
    const mk_protodyn_msg_t *t = mk_protodyn_find_message(p, "mockarty.coordinator.v1.Task");
    mk_buf_t out;
    mk_buf_init(&out, 0);
    json_t *back = NULL;
    MK_CHECK_INT(mk_protodyn_encode(t, task, &out, &err), 0);
    MK_CHECK_INT(mk_protodyn_decode(t, (const uint8_t *)out.data, out.len, &back, &err), 0);
    MK_CHECK(json_equal(task, back));
    json_decref(back);
    json_decref(task);
    mk_buf_free(&out);
    mk_protodyn_pool_free(p);
}

/* JSON in, wire, JSON out: must come back as expect (NULL: unchanged). */
static void wkt_roundtrip(const mk_protodyn_msg_t *w, const char *json, const char *expect)
{
    json_t *in = json_loads(json, 0, NULL);
    MK_CHECK(in != NULL);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    mk_err_t err = {0};
    int rc = mk_protodyn_encode(w, in, &out, &err);
    json_t *back = NULL;
    if (rc == 0)
        rc = mk_protodyn_decode(w, (const uint8_t *)out.data, out.len, &back, &err);
    char *got = back ? dump(back) : NULL;
    json_t *want_j = json_loads(expect ? expect : json, 0, NULL);
    char *want = dump(want_j);
    char d[1500];
    snprintf(d, sizeof d, "%s -> %s (rc %d %s), want %s", json, got ? got : "-", rc, err.msg, want);
    mk_testing_record(rc == 0 && got && strcmp(got, want) == 0, __FILE__, __LINE__,
                      "well-known type round trip", d);
    free(got);
    free(want);
    json_decref(want_j);
    json_decref(back);
    json_decref(in);
    mk_buf_free(&out);
}

static void test_well_known_types(void)
{
    size_t n = 0;
    uint8_t *d = read_file(WKT_DESCRIPTORS, &n);
    MK_CHECK(d != NULL);
    mk_protodyn_pool_t *p = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_protodyn_pool_new(d, n, &p, &err), 0);
    free(d);
    if (p == NULL)
        return;
    const mk_protodyn_msg_t *w = mk_protodyn_find_message(p, "wkt.W");
    const mk_protodyn_msg_t *ts = mk_protodyn_find_message(p, "google.protobuf.Timestamp");
    MK_CHECK(w != NULL && ts != NULL);

    /* Timestamp on the wire is {seconds, nanos}; in JSON an RFC 3339 string in UTC. */
    json_t *t = json_string("1970-01-01T00:00:01.500+00:00");
    mk_buf_t out;
    mk_buf_init(&out, 0);
    MK_CHECK_INT(mk_protodyn_encode(ts, t, &out, &err), 0);
    MK_CHECK(out.len == 8 && memcmp(out.data, "\x08\x01\x10\x80\xca\xb5\xee\x01", 8) == 0);
    json_decref(t);
    mk_buf_free(&out);

    wkt_roundtrip(w, "{\"ts\":\"2024-02-29T23:59:59.123456789Z\"}", NULL);
    wkt_roundtrip(w, "{\"ts\":\"2024-03-01T01:00:00.100+01:00\"}",
                  "{\"ts\":\"2024-03-01T00:00:00.100Z\"}");
    wkt_roundtrip(w, "{\"tss\":[\"0001-01-01T00:00:00Z\",\"9999-12-31T23:59:59.000001Z\"]}", NULL);
    wkt_roundtrip(w, "{\"d\":\"-1.5s\"}", "{\"d\":\"-1.500s\"}"); /* 0, 3, 6 or 9 digits */
    wkt_roundtrip(w, "{\"d\":\"0.000000001s\"}", NULL);
    wkt_roundtrip(w, "{\"i32w\":0,\"sw\":\"s\",\"i64w\":\"-5\",\"bw\":false}", NULL);
    wkt_roundtrip(w, "{\"st\":{\"a\":1.5,\"b\":[true,null,\"x\",{\"c\":{}}],\"n\":null}}", NULL);
    wkt_roundtrip(w, "{\"v\":\"str\",\"lv\":[1,[2],{}],\"mv\":{\"k\":{\"z\":false}}}", NULL);
    wkt_roundtrip(w, "{\"fm\":\"a,fooBar.bazQux\"}", NULL);
    wkt_roundtrip(w, "{\"any\":{\"@type\":\"type.googleapis.com/wkt.Point\",\"x\":3,\"y\":-4}}",
                  NULL);
    wkt_roundtrip(w,
                  "{\"anyWkt\":{\"@type\":\"type.googleapis.com/google.protobuf.Duration\","
                  "\"value\":\"2s\"}}",
                  NULL);
    wkt_roundtrip(w, "{\"any\":{}}", NULL);

    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"ts\":\"2024-02-30T00:00:00Z\"}", "no such date"},
        {"{\"ts\":\"2024-01-01 00:00:00Z\"}", "RFC 3339"},
        {"{\"ts\":\"2024-01-01T00:00:00\"}", "RFC 3339"},
        {"{\"ts\":\"2024-01-01T00:00:00+1:00\"}", "bad time zone"},
        {"{\"ts\":\"2024-01-01T00:00:00.1234567891Z\"}", "fraction"},
        {"{\"ts\":5}", "RFC 3339"},
        {"{\"d\":\"5\"}", "duration string"},
        {"{\"d\":\"1e3s\"}", "duration string"},
        {"{\"st\":[1]}", "st: expected an object (Struct)"},
        {"{\"lv\":{}}", "lv: expected an array"},
        {"{\"any\":{\"x\":1}}", "Any needs \"@type\""},
        {"{\"any\":{\"@type\":\"type.googleapis.com/no.Such\"}}", "not in the descriptor set"},
        {"{\"any\":{\"@type\":\"x/wkt.Point\",\"z\":1}}", "any: unknown field \"z\""},
        {"{\"i32w\":\"x\"}", "i32w: value: \"x\" is not an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *in = json_loads(bad[i].json, 0, NULL);
        mk_buf_init(&out, 0);
        int rc = mk_protodyn_encode(w, in, &out, &err);
        char dd[600];
        snprintf(dd, sizeof dd, "%s -> %d \"%s\", want \"%s\"", bad[i].json, rc, err.msg,
                 bad[i].needle);
        mk_testing_record(rc == MK_EINVAL && strstr(err.msg, bad[i].needle), __FILE__, __LINE__,
                          "well-known type refused", dd);
        mk_buf_free(&out);
        json_decref(in);
    }

    /* Out-of-range values on the wire are refused rather than printed as nonsense. */
    json_t *j = NULL;
    const uint8_t far[] = {0x0a, 0x0a, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    MK_CHECK_INT(mk_protodyn_decode(w, far, sizeof far, &j, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "ts: Timestamp out of range") != NULL);
    mk_protodyn_pool_free(p);
}

/* Example messages (for generated mocks) encode as their type, and decode back to themselves:
 * every scalar kind, enums, maps, repeated and nested messages, oneofs, well-known types. */
static void check_sample(const mk_protodyn_msg_t *m)
{
    json_t *s = mk_protodyn_sample(m);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    mk_err_t err = {0};
    int rc = mk_protodyn_encode(m, s, &out, &err);
    mk_testing_record(rc == 0, __FILE__, __LINE__, mk_protodyn_msg_name(m), err.msg);
    json_t *back = NULL;
    if (rc == 0 && mk_protodyn_decode(m, (const uint8_t *)out.data, out.len, &back, &err) == 0) {
        char *a = dump(s), *b = dump(back);
        MK_CHECK_STR(b, a);
        free(a);
        free(b);
    }
    json_decref(back);
    json_decref(s);
    mk_buf_free(&out);
}

static size_t values_in(const json_t *v)
{
    size_t n = 1;
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) n += values_in(x);
    else if (json_is_array(v))
        json_array_foreach(v, i, x) n += values_in(x);
    return n;
}

static void test_samples(void)
{
    check_sample(all_t);
    check_sample(inner_t);
    json_t *s = mk_protodyn_sample(all_t);
    MK_CHECK(json_object_size(s) > 10);
    json_decref(s);
    size_t n = 0;
    uint8_t *d = read_file(WKT_DESCRIPTORS, &n);
    mk_protodyn_pool_t *p = NULL;
    mk_err_t err = {0};
    if (d && mk_protodyn_pool_new(d, n, &p, &err) == 0) {
        check_sample(mk_protodyn_find_message(p, "wkt.W"));
        /* A message of forty fields of its own type: bounded, and still a valid message. */
        const mk_protodyn_msg_t *wide = mk_protodyn_find_message(p, "wkt.Wide");
        json_t *w = mk_protodyn_sample(wide);
        MK_CHECK(values_in(w) <= 20000);
        MK_CHECK(json_object_get(w, "s") != NULL && json_object_get(w, "w1") != NULL);
        json_decref(w);
        check_sample(wide);
    }
    free(d);
    mk_protodyn_pool_free(p);
}

int main(void)
{
    MK_RUN(test_load);
    if (all_t == NULL)
        return mk_testing_done();
    MK_RUN(test_decode_everything);
    MK_RUN(test_input_forms);
    MK_RUN(test_encode_errors);
    MK_RUN(test_decode_errors_and_unknown);
    MK_RUN(test_bad_descriptors);
    MK_RUN(test_coordinator_descriptors);
    MK_RUN(test_well_known_types);
    MK_RUN(test_samples);
    mk_protodyn_pool_free(pool);
    return mk_testing_done();
}
