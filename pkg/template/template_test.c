/* Tests of the template compiler and renderer through template.h, with stores faked by a small
 * in-test table (the store backends have their own tests). */
#include "template/template.h"
#include "testing/testing.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fake_store {
    const char *keys[8];
    char values[8][64];
    size_t n;
    int incr_calls;
    int fail; /* non-zero: every call fails with this code */
} fake_store_t;

static int fs_get(void *ud, mk_template_store_t store, mk_str_t key, mk_buf_t *out, mk_err_t *err)
{
    fake_store_t *fs = ud;
    if (fs->fail)
        return mk_err_set(err, fs->fail, "store down");
    for (size_t i = 0; i < fs->n; i++) {
        char full[80];
        snprintf(full, sizeof full, "%d:%.*s", (int)store, (int)key.len, key.base);
        if (strcmp(fs->keys[i], full) == 0)
            return mk_buf_append_str(out, fs->values[i]);
    }
    return MK_ENOTFOUND;
}

static int fs_incr(void *ud, mk_template_store_t store, mk_str_t key, int64_t by, int64_t *result,
                   mk_err_t *err)
{
    fake_store_t *fs = ud;
    (void)err;
    fs->incr_calls++;
    for (size_t i = 0; i < fs->n; i++) {
        char full[80];
        snprintf(full, sizeof full, "%d:%.*s", (int)store, (int)key.len, key.base);
        if (strcmp(fs->keys[i], full) == 0) {
            long long v = atoll(fs->values[i]) + by;
            snprintf(fs->values[i], sizeof fs->values[i], "%lld", v);
            *result = v;
            return 0;
        }
    }
    *result = by;
    return 0;
}

typedef struct fixture {
    mk_header_t headers[4];
    mk_request_t req;
    mk_route_match_t match;
    fake_store_t store;
    mk_faker_rng_t rng;
    mk_template_env_t env;
} fixture_t;

static void fixture_init(fixture_t *f, const char *body)
{
    memset(f, 0, sizeof *f);
    f->headers[0] = (mk_header_t){MK_STR_LIT("X-Trace"), MK_STR_LIT("abc")};
    f->headers[1] = (mk_header_t){MK_STR_LIT("x-trace"), MK_STR_LIT("def")};
    f->headers[2] = (mk_header_t){MK_STR_LIT("Authorization"), MK_STR_LIT("Bearer t0k\"en")};
    mk_request_init(&f->req);
    f->req.method = MK_STR_LIT("POST");
    f->req.path = MK_STR_LIT("/orders/42");
    f->req.query = MK_STR_LIT("q=hello%20world&n=5");
    f->req.headers = f->headers;
    f->req.nheaders = 3;
    f->req.body = mk_str_of(body);
    f->match.nparams = 1;
    f->match.names[0] = MK_STR_LIT("id");
    f->match.values[0] = MK_STR_LIT("42");
    f->store.keys[0] = "0:counter";
    strcpy(f->store.values[0], "7");
    f->store.keys[1] = "1:session.token";
    strcpy(f->store.values[1], "\"s-\\\"1\\\"\"");
    f->store.keys[2] = "2:profile";
    strcpy(f->store.values[2], "{\"a\":1}");
    f->store.n = 3;
    mk_faker_rng_seed(&f->rng, 99);
    f->env = (mk_template_env_t){.req = &f->req,
                                 .match = &f->match,
                                 .rng = &f->rng,
                                 .now_ms = 1700000000000,
                                 .store_get = fs_get,
                                 .store_incr = fs_incr,
                                 .store_ud = &f->store};
}

/* Compiles JSON text def, renders it and returns the output (caller frees). */
static char *render_json(fixture_t *f, const char *def)
{
    json_t *v = json_loads(def, JSON_DECODE_ANY, NULL);
    MK_CHECK(v != NULL);
    mk_template_t *t = NULL;
    mk_err_t err;
    int rc = mk_template_compile_json(v, "payload", &t, &err);
    json_decref(v);
    MK_CHECK_INT(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "compile: %s\n", err.msg);
        return strdup("");
    }
    mk_buf_t out;
    mk_buf_init(&out, 0);
    rc = mk_template_render(t, &f->env, &out, &err);
    MK_CHECK_INT(rc, 0);
    mk_template_free(t);
    return out.data ? mk_buf_take(&out) : strdup("");
}

static void check_json(fixture_t *f, const char *def, const char *want)
{
    char *got = render_json(f, def);
    MK_CHECK_STR(got, want);
    /* Whatever was rendered must be valid JSON. */
    json_t *parsed = json_loads(got, JSON_DECODE_ANY, NULL);
    MK_CHECK(parsed != NULL);
    json_decref(parsed);
    free(got);
}

static char *render_text(fixture_t *f, const char *text)
{
    mk_template_t *t = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_template_compile_text(mk_str_of(text), "header", &t, &err), 0);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    MK_CHECK_INT(mk_template_render(t, &f->env, &out, &err), 0);
    mk_template_free(t);
    return out.data ? mk_buf_take(&out) : strdup("");
}

static void test_static(void)
{
    json_t *v =
        json_loads("{\"a\":[1,true,null,\"x\"],\"b\":{\"c\":\"$.notAPlaceholder\"}}", 0, NULL);
    mk_template_t *t = NULL;
    MK_CHECK_INT(mk_template_compile_json(v, "payload", &t, NULL), 0);
    MK_CHECK(mk_template_is_static(t));
    MK_CHECK(!mk_template_uses_store(t));
    mk_str_t lit = mk_template_literal(t);
    char *s = mk_str_dup(lit);
    MK_CHECK_STR(s, "{\"a\":[1,true,null,\"x\"],\"b\":{\"c\":\"$.notAPlaceholder\"}}");
    free(s);
    mk_template_free(t);
    json_decref(v);
}

static void test_request_placeholders(void)
{
    fixture_t f;
    fixture_init(&f, "{\"count\":3,\"user\":{\"name\":\"Ann \\\"A\\\"\"},\"items\":[1,2]}");
    check_json(&f, "{\"id\":\"$.pathParam.id\"}", "{\"id\":\"42\"}");
    check_json(&f, "{\"q\":\"$.queryParam.q\",\"n\":\"$.queryParam.n\"}",
               "{\"q\":\"hello world\",\"n\":\"5\"}");
    check_json(&f, "\"$.req.count\"", "3");
    check_json(&f, "\"$.body.user\"", "{\"name\":\"Ann \\\"A\\\"\"}");
    check_json(&f, "\"$.req.items[1]\"", "2");
    check_json(&f, "\"$.req\"",
               "{\"count\":3,\"user\":{\"name\":\"Ann \\\"A\\\"\"},\"items\":[1,2]}");
    check_json(&f, "\"Hello $.req.user.name.\"", "\"Hello Ann \\\"A\\\".\"");
    check_json(&f, "\"Order $.pathParam.id created, $.req.count items\"",
               "\"Order 42 created, 3 items\"");
    check_json(&f, "\"$.reqHeader.x-TRACE[1]\"", "\"def\"");
    check_json(&f, "\"$.reqHeader.X-Trace\"", "[\"abc\",\"def\"]");
    check_json(&f, "\"auth=$.reqHeader.Authorization[0]\"", "\"auth=Bearer t0k\\\"en\"");
    /* Missing values: null when typed, nothing inside text. */
    check_json(&f, "{\"a\":\"$.pathParam.nope\",\"b\":\"x$.req.nope y\"}",
               "{\"a\":null,\"b\":\"x y\"}");
    check_json(&f, "\"$.reqHeader.X-Trace[5]\"", "null");
    /* Literal "$." that is no placeholder stays. */
    check_json(&f, "\"costs $.5 in $.USD; $.request\"", "\"costs $.5 in $.USD; $.request\"");
    mk_request_release(&f.req);
}

static void test_text_and_non_json_body(void)
{
    fixture_t f;
    fixture_init(&f, "plain \"text\"");
    char *s = render_text(&f, "id=$.pathParam.id body=$.req tok=$.reqHeader.Authorization[0]");
    MK_CHECK_STR(s, "id=42 body=plain \"text\" tok=Bearer t0k\"en");
    free(s);
    check_json(&f, "\"$.req\"", "\"plain \\\"text\\\"\"");
    mk_request_release(&f.req);
}

static void test_stores(void)
{
    fixture_t f;
    fixture_init(&f, "");
    check_json(&f, "{\"n\":\"$.gS.counter\",\"t\":\"$.cS.session.token\",\"p\":\"$.mS.profile\"}",
               "{\"n\":7,\"t\":\"s-\\\"1\\\"\",\"p\":{\"a\":1}}");
    check_json(&f, "\"token $.cS.session.token, n=$.gS.counter.\"", "\"token s-\\\"1\\\", n=7.\"");
    char *s = render_text(&f, "tok=$.cS.session.token p=$.mS.profile");
    MK_CHECK_STR(s, "tok=s-\"1\" p={\"a\":1}");
    free(s);
    check_json(&f, "\"$.gS.absent\"", "null");
    /* Increment: atomic through the store's incr; the template reports what it increments. */
    check_json(&f, "\"$.increment($.gS.counter)\"", "8");
    check_json(&f, "\"$.increment( $.gS.fresh )\"", "1");
    MK_CHECK_INT(f.store.incr_calls, 2);
    check_json(&f, "\"$.increment($.pathParam.id)\"", "43");
    json_t *v = json_string("$.increment($.gS.counter)");
    mk_template_t *t = NULL;
    MK_CHECK_INT(mk_template_compile_json(v, "x", &t, NULL), 0);
    mk_template_store_t which;
    mk_str_t key;
    MK_CHECK(mk_template_increments(t, &which, &key));
    MK_CHECK_INT(which, MK_TEMPLATE_GLOBAL);
    MK_CHECK(mk_str_eq_cstr(key, "counter"));
    MK_CHECK(mk_template_uses_store(t));
    mk_template_free(t);
    json_decref(v);
    /* A failing store aborts rendering with its error. */
    f.store.fail = MK_EUNAVAIL;
    v = json_string("$.gS.counter");
    MK_CHECK_INT(mk_template_compile_json(v, "x", &t, NULL), 0);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    mk_err_t err;
    MK_CHECK_INT(mk_template_render(t, &f.env, &out, &err), MK_EUNAVAIL);
    MK_CHECK_STR(err.msg, "store down");
    mk_buf_free(&out);
    mk_template_free(t);
    json_decref(v);
}

static void test_fakers(void)
{
    fixture_t f;
    fixture_init(&f, "");
    char *a = render_json(&f, "{\"id\":\"$.fake.UUID\",\"n\":\"$.fake.IntBetween(5, 7)\","
                              "\"t\":\"user $.fake.firstname!\"}");
    json_t *v = json_loads(a, 0, NULL);
    MK_CHECK(v != NULL);
    MK_CHECK(json_is_string(json_object_get(v, "id")));
    MK_CHECK_INT(strlen(json_string_value(json_object_get(v, "id"))), 36);
    json_int_t n = json_integer_value(json_object_get(v, "n"));
    MK_CHECK(json_is_integer(json_object_get(v, "n")) && n >= 5 && n <= 7);
    MK_CHECK(strncmp(json_string_value(json_object_get(v, "t")), "user ", 5) == 0);
    json_decref(v);
    /* Same seed, same output. */
    mk_faker_rng_seed(&f.rng, 99);
    char *b = render_json(&f, "{\"id\":\"$.fake.UUID\",\"n\":\"$.fake.IntBetween(5, 7)\","
                              "\"t\":\"user $.fake.firstname!\"}");
    MK_CHECK_STR(a, b);
    free(a);
    free(b);
}

static void expect_error(const char *def, const char *want_in_msg)
{
    json_t *v = json_loads(def, JSON_DECODE_ANY, NULL);
    MK_CHECK(v != NULL);
    mk_template_t *t = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_template_compile_json(v, "response.payload", &t, &err), MK_EINVAL);
    MK_CHECK(t == NULL);
    if (strstr(err.msg, want_in_msg) == NULL)
        fprintf(stderr, "message '%s' lacks '%s'\n", err.msg, want_in_msg);
    MK_CHECK(strstr(err.msg, want_in_msg) != NULL);
    json_decref(v);
}

static void test_errors(void)
{
    expect_error("{\"a\":[1,\"x $.fake.NoSuchThing\"]}", "response.payload.a[1]: unknown faker");
    expect_error("{\"a\":\"x $.fake.NoSuchThing\"}", "at 2");
    expect_error("\"$.fake.IntBetween(1,2\"", "unbalanced parentheses");
    expect_error("\"$.increment($.gS.n\"", "unbalanced parentheses");
    expect_error("\"$.increment(5)\"", "expects one placeholder");
    expect_error("\"$.fake.IntBetween(5,1)\"", "IntBetween");
    /* Nested deeper than allowed. */
    char deep[400] = "";
    for (int i = 0; i < MK_TEMPLATE_MAX_DEPTH + 2; i++)
        strcat(deep, "[");
    for (int i = 0; i < MK_TEMPLATE_MAX_DEPTH + 2; i++)
        strcat(deep, "]");
    expect_error(deep, "nested deeper than");
}

static void test_escape(void)
{
    mk_buf_t out;
    mk_buf_init(&out, 0);
    MK_CHECK_INT(mk_template_json_escape(&out, (mk_str_t){"a\"b\\c\n\x01\xc3\xa9", 9}), 0);
    MK_CHECK_STR(out.data, "a\\\"b\\\\c\\n\\u0001\xc3\xa9");
    mk_buf_free(&out);
    mk_buf_init(&out, 0);
    MK_CHECK_INT(mk_template_json_escape(&out, MK_STR_LIT("\r\t\b\f\x1f\x7f/")), 0);
    MK_CHECK_STR(out.data, "\\r\\t\\b\\f\\u001f\x7f/");
    mk_buf_free(&out);
    /* A bounded output refuses a large rendering cleanly. */
    fixture_t f;
    fixture_init(&f, "{\"big\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
    json_t *v = json_string("$.req.big");
    mk_template_t *t = NULL;
    MK_CHECK_INT(mk_template_compile_json(v, "x", &t, NULL), 0);
    mk_buf_init(&out, 16);
    mk_err_t err;
    MK_CHECK(mk_template_render(t, &f.env, &out, &err) != 0);
    mk_buf_free(&out);
    mk_template_free(t);
    json_decref(v);
    mk_request_release(&f.req);
}

/* head x n + mid + tail x m, NUL-terminated; caller frees. */
static char *repeat(const char *head, size_t n, const char *mid, const char *tail, size_t m)
{
    size_t lh = strlen(head), lm = strlen(mid), lt = strlen(tail);
    char *s = malloc(lh * n + lm + lt * m + 1), *p = s;
    for (size_t i = 0; i < n; i++, p += lh)
        memcpy(p, head, lh);
    memcpy(p, mid, lm);
    p += lm;
    for (size_t i = 0; i < m; i++, p += lt)
        memcpy(p, tail, lt);
    *p = '\0';
    return s;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Compiles text as a JSON string template; returns the code, err filled. */
static int compile_big(const char *text, mk_template_t **t, mk_err_t *err)
{
    json_t *v = json_string(text);
    MK_CHECK(v != NULL);
    int rc = mk_template_compile_json(v, "response.payload", t, err);
    json_decref(v);
    return rc;
}

static void test_nesting_limit(void)
{
    fixture_t f;
    fixture_init(&f, "");
    /* The deepest allowed nesting compiles and renders: counter 7, plus one per level. */
    char *s = repeat("$.increment(", MK_TEMPLATE_MAX_NESTING, "$.gS.counter", ")",
                     MK_TEMPLATE_MAX_NESTING);
    mk_template_t *t = NULL;
    mk_err_t err;
    MK_CHECK_INT(compile_big(s, &t, &err), 0);
    mk_buf_t out;
    mk_buf_init(&out, 0);
    MK_CHECK_INT(mk_template_render(t, &f.env, &out, &err), 0);
    char want[16];
    snprintf(want, sizeof want, "%d", 7 + MK_TEMPLATE_MAX_NESTING);
    MK_CHECK_STR(out.data, want);
    mk_buf_free(&out);
    mk_template_free(t);
    free(s);
    /* One level more is refused with the limit and the position of the offending placeholder. */
    s = repeat("$.increment(", MK_TEMPLATE_MAX_NESTING + 1, "$.gS.counter", ")",
               MK_TEMPLATE_MAX_NESTING + 1);
    t = NULL;
    MK_CHECK_INT(compile_big(s, &t, &err), MK_EINVAL);
    MK_CHECK(t == NULL);
    char msg[128];
    snprintf(msg, sizeof msg, "response.payload: placeholders nested deeper than %d at %d",
             MK_TEMPLATE_MAX_NESTING, 12 * MK_TEMPLATE_MAX_NESTING);
    MK_CHECK_STR(err.msg, msg);
    free(s);
    /* The 520 KB payload of issue 21, in a text template and inside a longer JSON string. */
    s = repeat("$.increment(", 40000, "$.gS.a", ")", 40000);
    MK_CHECK_INT(mk_template_compile_text(mk_str_of(s), "response.headers.X", &t, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "response.headers.X: placeholders nested deeper than") != NULL);
    s[0] = 'x';
    MK_CHECK_INT(compile_big(s, &t, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "nested deeper than") != NULL);
    free(s);
    mk_request_release(&f.req);
}

static void test_placeholder_limit(void)
{
    mk_template_t *t = NULL;
    mk_err_t err;
    char *s = repeat("$.req ", MK_TEMPLATE_MAX_PLACEHOLDERS, "", "", 0);
    MK_CHECK_INT(compile_big(s, &t, &err), 0);
    mk_template_free(t);
    free(s);
    s = repeat("$.req ", MK_TEMPLATE_MAX_PLACEHOLDERS + 1, "", "", 0);
    t = NULL;
    MK_CHECK_INT(compile_big(s, &t, &err), MK_EINVAL);
    char msg[128];
    snprintf(msg, sizeof msg, "response.payload: more than %d placeholders at %d",
             MK_TEMPLATE_MAX_PLACEHOLDERS, 6 * MK_TEMPLATE_MAX_PLACEHOLDERS);
    MK_CHECK_STR(err.msg, msg);
    free(s);
}

/* Pathological 1 MB templates compile (or are refused) in time linear in their length. The
 * quadratic compiler rescanned to the end for ']' or ')' at every "$.": 60 KB took 1.3 s under
 * the sanitizers, so 1 MB would take minutes. */
static void test_linear_compile(void)
{
    const size_t mb = 1u << 20;
    struct {
        const char *head, *mid, *tail;
        size_t n, m;
    } cases[] = {
        {"$.req[", "", "", mb / 6, 0},
        {"$.req['", "", "", mb / 7, 0},
        {"$.body[\"", "", "", mb / 8, 0},
        {"$.req[\"'", "", "", mb / 8, 0},
        {"$.increment(", "$.gS.a", ")", mb / 13, mb / 13},
        {"$.fake.UUID(", "", ")", mb / 13, mb / 13},
        {"x$.req[", "", "", 9000, 0},  /* under the placeholder limit... */
        {"$.req[", "", "a", 9000, mb}, /* ...and with a long tail to rescan */
        {"$.req.a", "", "", mb / 7, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = repeat(cases[i].head, cases[i].n, cases[i].mid, cases[i].tail, cases[i].m);
        mk_template_t *t = NULL;
        mk_err_t err;
        double t0 = seconds_now();
        int rc = compile_big(s, &t, &err);
        double took = seconds_now() - t0;
        if (took >= 1.0)
            fprintf(stderr, "case %zu (%s x %zu): %.2f s\n", i, cases[i].head, cases[i].n, took);
        MK_CHECK(took < 1.0);
        MK_CHECK(rc == 0 || rc == MK_EINVAL);
        mk_template_free(t);
        free(s);
    }
}

int main(void)
{
    MK_RUN(test_static);
    MK_RUN(test_request_placeholders);
    MK_RUN(test_text_and_non_json_body);
    MK_RUN(test_stores);
    MK_RUN(test_fakers);
    MK_RUN(test_errors);
    MK_RUN(test_escape);
    MK_RUN(test_nesting_limit);
    MK_RUN(test_placeholder_limit);
    MK_RUN(test_linear_compile);
    return mk_testing_done();
}
