/* Tests for request conditions: every action on every kind, type coercions, sortArray, missing
 * paths, explain text, JSON round trip and every validation message. */
#include "cond/cond.h"
#include "testing/testing.h"

#include <stdlib.h>
#include <time.h>

/* Under AddressSanitizer (the test build), a malloc hook counts allocations so the test can
 * check that evaluation allocates nothing. Without it the allocation checks are skipped. */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_MALLOC_HOOK 1
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
/* The hooks stay installed (ASan cannot remove them); they count only while counting is set. */
static volatile bool counting;
static volatile long mallocs;
static void count_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (counting)
        mallocs++;
}
static void ignore_free(const volatile void *p)
{
    (void)p;
}
#endif

/* A request with a JSON (or other) body, a raw query string and up to 4 headers. */
typedef struct treq {
    mk_request_t req;
    mk_header_t headers[4];
} treq_t;

static void treq_init(treq_t *t, const char *body, const char *query)
{
    memset(t, 0, sizeof *t);
    t->req.method = MK_STR_LIT("POST");
    t->req.path = MK_STR_LIT("/x");
    t->req.body = mk_str_of(body);
    t->req.query = mk_str_of(query);
    t->headers[0] = (mk_header_t){MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json")};
    t->headers[1] = (mk_header_t){MK_STR_LIT("X-Count"), MK_STR_LIT("5")};
    t->headers[2] = (mk_header_t){MK_STR_LIT("X-Empty"), MK_STR_LIT("")};
    t->headers[3] = (mk_header_t){MK_STR_LIT("X-Trace"), MK_STR_LIT("abc-123-def")};
    t->req.headers = t->headers;
    t->req.nheaders = 4;
    mk_request_init(&t->req);
}

static const char *BODY =
    "{\"user\": {\"id\": 42, \"name\": \"Ann Lee\", \"score\": 1.5, \"admin\": false,"
    " \"tags\": [\"a\", \"b\", \"c\"], \"email\": null},"
    " \"id\": 12345, \"real\": 5.0, \"num_str\": \"5\", \"bool_str\": \"true\","
    " \"ids\": [1, 2, 3], \"dups\": [1, 1, 2], \"strs\": [\"1\", \"2\"],"
    " \"nested\": [[1, 2], [3]], \"objs\": [{\"k\": [1, 2]}, {\"k\": [3]}],"
    " \"empty_s\": \"\", \"empty_a\": [], \"empty_o\": {}, \"zero\": 0, \"no\": false,"
    " \"big\": 9007199254740993, \"meta\": {\"x-key\": 1}}";

/* Like MK_CHECK_STR, with room in the detail for two full 512-byte messages. */
#define CHECK_MSG(got, want) check_msg((got), (want), __LINE__)
static void check_msg(const char *got, const char *want, int line)
{
    char d[1100];
    snprintf(d, sizeof d, "\"%s\" != \"%s\"", got, want);
    mk_testing_record(strcmp(got, want) == 0, __FILE__, line, "message", d);
}

static const char *QUERY = "page=5&q=hello+world&empty=&flag&f=1.50&t=true&neg=-3";

/* Compiles def (JSON text) for kind; a compile failure is recorded and yields NULL. */
static mk_cond_t *compile(const char *def, mk_cond_kind_t kind, int line)
{
    json_error_t jerr;
    json_t *j = json_loads(def, 0, &jerr);
    if (j == NULL) {
        mk_testing_record(false, __FILE__, line, def, jerr.text);
        return NULL;
    }
    mk_cond_t *c = NULL;
    mk_err_t err = {0};
    int rc = mk_cond_compile(j, kind, "c", &c, &err);
    json_decref(j);
    if (rc != 0) {
        mk_testing_record(false, __FILE__, line, def, err.msg);
        return NULL;
    }
    return c;
}

/* Evaluates def against a request with body and query; returns -1 when it did not compile. */
static int ev_with(const char *def, mk_cond_kind_t kind, const char *body, const char *query,
                   int line)
{
    mk_cond_t *c = compile(def, kind, line);
    if (c == NULL)
        return -1;
    treq_t t;
    treq_init(&t, body, query);
    int r = mk_cond_eval(c, &t.req) ? 1 : 0;
    mk_request_release(&t.req);
    mk_cond_free(c);
    return r;
}

#define BODY_T(def)   MK_CHECK_INT(ev_with(def, MK_COND_BODY, BODY, QUERY, __LINE__), 1)
#define BODY_F(def)   MK_CHECK_INT(ev_with(def, MK_COND_BODY, BODY, QUERY, __LINE__), 0)
#define QUERY_T(def)  MK_CHECK_INT(ev_with(def, MK_COND_QUERY, BODY, QUERY, __LINE__), 1)
#define QUERY_F(def)  MK_CHECK_INT(ev_with(def, MK_COND_QUERY, BODY, QUERY, __LINE__), 0)
#define HEADER_T(def) MK_CHECK_INT(ev_with(def, MK_COND_HEADER, BODY, QUERY, __LINE__), 1)
#define HEADER_F(def) MK_CHECK_INT(ev_with(def, MK_COND_HEADER, BODY, QUERY, __LINE__), 0)

static void test_equals_body(void)
{
    BODY_T("{\"path\": \"$.user.id\", \"assertAction\": \"equals\", \"value\": 42}");
    BODY_F("{\"path\": \"$.user.id\", \"assertAction\": \"equals\", \"value\": 41}");
    BODY_T("{\"path\": \"user.name\", \"assertAction\": \"equals\", \"value\": \"Ann Lee\"}");
    BODY_F("{\"path\": \"user.name\", \"assertAction\": \"equals\", \"value\": \"ann lee\"}");
    BODY_T("{\"path\": \"user.score\", \"value\": 1.5}");
    BODY_T("{\"path\": \"user.admin\", \"value\": false}");
    BODY_F("{\"path\": \"user.admin\", \"value\": 0}");
    BODY_F("{\"path\": \"user.admin\", \"value\": null}");
    BODY_T("{\"path\": \"user.email\", \"value\": null}");
    BODY_F("{\"path\": \"user.email\", \"value\": \"\"}");
    BODY_T("{\"path\": \"user.tags\", \"value\": [\"a\", \"b\", \"c\"]}");
    BODY_F("{\"path\": \"user.tags\", \"value\": [\"a\", \"b\"]}");
    BODY_T("{\"path\": \"meta\", \"value\": {\"x-key\": 1.0}}");
    BODY_F("{\"path\": \"meta\", \"value\": {\"x-key\": 1, \"y\": 2}}");
    BODY_F("{\"path\": \"meta\", \"value\": {\"y\": 1}}");
    BODY_T("{\"path\": \"user.tags[-1]\", \"value\": \"c\"}");
    /* A missing value compares as null. */
    BODY_T("{\"path\": \"user.email\"}");
    BODY_F("{\"path\": \"user.id\"}");
}

static void test_numbers(void)
{
    /* 1 == 1.0 both ways, at the top level and nested. */
    BODY_T("{\"path\": \"real\", \"value\": 5}");
    BODY_T("{\"path\": \"user.id\", \"value\": 42.0}");
    BODY_F("{\"path\": \"user.id\", \"value\": 42.5}");
    BODY_T("{\"path\": \"ids\", \"value\": [1.0, 2, 3e0]}");
    BODY_T("{\"path\": \"zero\", \"value\": -0.0}");
    /* 2^53 + 1 as an integer is not the double 2^53, even though (double) would round to it. */
    BODY_F("{\"path\": \"big\", \"value\": 9007199254740992.0}");
    BODY_T("{\"path\": \"big\", \"value\": 9007199254740993}");
    BODY_F("{\"path\": \"user.score\", \"value\": 1}");
}

static void test_text_coercion(void)
{
    /* A string on one side and a number or bool on the other compare as text. */
    BODY_T("{\"path\": \"num_str\", \"value\": 5}");
    BODY_T("{\"path\": \"num_str\", \"value\": 5.0}");
    BODY_F("{\"path\": \"num_str\", \"value\": 6}");
    BODY_T("{\"path\": \"user.id\", \"value\": \"42\"}");
    BODY_T("{\"path\": \"user.id\", \"value\": \"42.0\"}");
    BODY_F("{\"path\": \"user.id\", \"value\": \"042\"}");
    BODY_F("{\"path\": \"user.id\", \"value\": \" 42\"}");
    BODY_F("{\"path\": \"user.id\", \"value\": \"0x2a\"}");
    BODY_F("{\"path\": \"user.id\", \"value\": \"forty-two\"}");
    BODY_T("{\"path\": \"user.score\", \"value\": \"1.5\"}");
    BODY_T("{\"path\": \"user.score\", \"value\": \"15e-1\"}");
    BODY_T("{\"path\": \"bool_str\", \"value\": true}");
    BODY_F("{\"path\": \"bool_str\", \"value\": false}");
    BODY_T("{\"path\": \"user.admin\", \"value\": \"false\"}");
    BODY_F("{\"path\": \"user.admin\", \"value\": \"False\"}");
    /* Null is not coerced; nested values are not coerced either. */
    BODY_F("{\"path\": \"user.email\", \"value\": \"null\"}");
    BODY_F("{\"path\": \"strs\", \"value\": [1, 2]}");
}

static void test_not_equals(void)
{
    BODY_F("{\"path\": \"$.user.id\", \"assertAction\": \"not_equals\", \"value\": 42}");
    BODY_T("{\"path\": \"$.user.id\", \"assertAction\": \"not_equals\", \"value\": 41}");
    BODY_F("{\"path\": \"num_str\", \"assertAction\": \"not_equals\", \"value\": 5}");
    /* The exact negation of equals: a missing path is "not equal". */
    BODY_T("{\"path\": \"$.absent\", \"assertAction\": \"not_equals\", \"value\": 1}");
    QUERY_T("{\"path\": \"absent\", \"assertAction\": \"not_equals\", \"value\": \"1\"}");
    QUERY_F("{\"path\": \"page\", \"assertAction\": \"not_equals\", \"value\": 5}");
}

static void test_sort_array(void)
{
    BODY_F("{\"path\": \"ids\", \"value\": [3, 1, 2]}");
    BODY_F("{\"path\": \"ids\", \"value\": [3, 1, 2], \"sortArray\": false}");
    BODY_T("{\"path\": \"ids\", \"value\": [3, 1, 2], \"sortArray\": true}");
    BODY_T("{\"path\": \"ids\", \"value\": [3.0, 1, 2], \"sortArray\": true}");
    BODY_F("{\"path\": \"ids\", \"value\": [3, 1], \"sortArray\": true}");
    BODY_F("{\"path\": \"ids\", \"value\": [3, 1, 2, 2], \"sortArray\": true}");
    /* Multisets: the counts of duplicates matter. */
    BODY_T("{\"path\": \"dups\", \"value\": [2, 1, 1], \"sortArray\": true}");
    BODY_F("{\"path\": \"dups\", \"value\": [1, 2, 2], \"sortArray\": true}");
    /* Nested arrays, and arrays inside objects, also ignore order. */
    BODY_T("{\"path\": \"nested\", \"value\": [[3], [2, 1]], \"sortArray\": true}");
    BODY_F("{\"path\": \"nested\", \"value\": [[3], [2, 1]]}");
    BODY_T("{\"path\": \"objs\", \"value\": [{\"k\": [3]}, {\"k\": [2, 1]}], \"sortArray\": true}");
    BODY_F("{\"path\": \"objs\", \"value\": [{\"k\": [3]}, {\"k\": [2, 4]}], \"sortArray\": true}");
    BODY_F("{\"path\": \"nested\", \"value\": [3, [2, 1]], \"sortArray\": true}");
    BODY_F("{\"path\": \"ids\", \"assertAction\": \"not_equals\", \"value\": [2, 3, 1],"
           " \"sortArray\": true}");
    /* A null sortArray is false. */
    BODY_F("{\"path\": \"ids\", \"value\": [3, 1, 2], \"sortArray\": null}");
}

/* A body with 200 numbers and a condition with the same multiset reversed (one element changed
 * when bad); more than 64 elements takes the heap-allocated bitmap path. */
static int eval_large(bool bad)
{
    char body[4096], def[4096];
    size_t b = 0, d = 0;
    b += (size_t)snprintf(body + b, sizeof body - b, "{\"a\": [");
    d += (size_t)snprintf(def + d, sizeof def - d,
                          "{\"path\": \"a\", \"sortArray\": true, \"value\": [");
    for (int i = 0; i < 200; i++) {
        int v = (199 - i) % 150;
        if (bad && i == 100)
            v = 999;
        b += (size_t)snprintf(body + b, sizeof body - b, "%s%d", i ? "," : "", i % 150);
        d += (size_t)snprintf(def + d, sizeof def - d, "%s%d", i ? "," : "", v);
    }
    snprintf(body + b, sizeof body - b, "]}");
    snprintf(def + d, sizeof def - d, "]}");
    return ev_with(def, MK_COND_BODY, body, "", __LINE__);
}

static void test_sort_array_large(void)
{
    MK_CHECK_INT(eval_large(false), 1);
    MK_CHECK_INT(eval_large(true), 0);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A body {"a": [...]} of n numbers and a sortArray condition with the same multiset in reverse
 * order; when last_differs, the condition's last element is changed. */
static void build_huge(size_t n, bool last_differs, json_t **def, char **body)
{
    json_t *want = json_array(), *got = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(got, json_integer((json_int_t)i));
        size_t v = n - 1 - i;
        json_array_append_new(want, i + 1 == n && last_differs ? json_real(0.5)
                                                               : json_integer((json_int_t)v));
    }
    *def = json_pack("{s:s, s:o, s:b}", "path", "a", "value", want, "sortArray", 1);
    json_t *b = json_pack("{s:o}", "a", got);
    *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
}

/* 20,000 elements: the pairwise matching took 9.4 s (match) and 27.7 s (404 with explanation)
 * in a release build; sorted canonical forms take milliseconds. */
static void test_sort_array_huge(void)
{
    for (int differs = 0; differs <= 1; differs++) {
        json_t *def;
        char *body;
        build_huge(20000, differs, &def, &body);
        mk_cond_t *c = NULL;
        mk_err_t err;
        MK_CHECK_INT(mk_cond_compile(def, MK_COND_BODY, "c", &c, &err), 0);
        treq_t t;
        treq_init(&t, body, "");
        MK_CHECK(mk_request_json(&t.req) != NULL);
        double t0 = seconds_now();
        bool holds = c && mk_cond_eval(c, &t.req);
        char buf[256] = "";
        if (c != NULL)
            mk_cond_explain(c, &t.req, buf, sizeof buf);
        double took = seconds_now() - t0;
        MK_CHECK_INT(holds, !differs);
        MK_CHECK(strstr(buf, differs ? ", got [0,1,2," : "(holds)") != NULL);
        if (took >= 0.5)
            fprintf(stderr, "eval + explain of 20,000 elements took %.2f s\n", took);
        MK_CHECK(took < 0.5);
        mk_request_release(&t.req);
        mk_cond_free(c);
        json_decref(def);
        free(body);
    }
}

/* Arrays equal as multisets at every depth, however shuffled; one changed leaf breaks it. */
static json_t *random_value(unsigned *seed, int depth)
{
    int k = depth > 3 ? rand_r(seed) % 5 : rand_r(seed) % 7;
    switch (k) {
    case 0:
        return json_integer(rand_r(seed) % 4);
    case 1:
        return json_real((rand_r(seed) % 4) / 2.0); /* 0.0 and 1.0 equal 0 and 1 */
    case 2:
        return json_stringn("ab\0c", (size_t)(rand_r(seed) % 5));
    case 3:
        return json_null();
    case 4:
        return json_boolean(rand_r(seed) % 2);
    case 5: {
        json_t *a = json_array();
        for (int i = rand_r(seed) % 6; i > 0; i--)
            json_array_append_new(a, random_value(seed, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int i = rand_r(seed) % 4; i > 0; i--) {
            char key[4] = {(char)('a' + rand_r(seed) % 3), 0};
            json_object_set_new(o, key, random_value(seed, depth + 1));
        }
        return o;
    }
    }
}

/* A copy with every array shuffled and every 1 written as 1.0. */
static json_t *shuffled(const json_t *v, unsigned *seed)
{
    if (json_is_integer(v) && json_integer_value(v) == 1)
        return json_real(1.0);
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, shuffled(json_array_get(v, i), seed));
        for (size_t i = n; i > 1; i--) {
            size_t j = (size_t)rand_r(seed) % i;
            json_t *x = json_incref(json_array_get(a, i - 1));
            json_array_set(a, i - 1, json_array_get(a, j));
            json_array_set_new(a, j, x);
        }
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
            json_object_set_new(o, key, shuffled(child, seed));
        return o;
    }
    return json_deep_copy(v);
}

static bool eval_pair(json_t *value, json_t *subject)
{
    json_t *def = json_pack("{s:s, s:O, s:b}", "path", "a", "value", value, "sortArray", 1);
    json_t *b = json_pack("{s:O}", "a", subject);
    char *body = json_dumps(b, JSON_COMPACT);
    mk_cond_t *c = NULL;
    MK_CHECK_INT(mk_cond_compile(def, MK_COND_BODY, "c", &c, NULL), 0);
    treq_t t;
    treq_init(&t, body, "");
    bool holds = c && mk_cond_eval(c, &t.req);
    mk_request_release(&t.req);
    mk_cond_free(c);
    free(body);
    json_decref(b);
    json_decref(def);
    return holds;
}

static void test_sort_array_random(void)
{
    unsigned seed = 21;
    for (int round = 0; round < 300; round++) {
        json_t *a = json_array();
        for (int i = rand_r(&seed) % 8; i >= 0; i--)
            json_array_append_new(a, random_value(&seed, 1));
        json_t *b = shuffled(a, &seed);
        MK_CHECK(eval_pair(a, b));
        /* One more element of a new kind cannot be matched. */
        json_array_append_new(b, json_string("extra"));
        json_array_append_new(a, json_string("other"));
        MK_CHECK(!eval_pair(a, b));
        json_decref(a);
        json_decref(b);
    }
}

static const char *explain(const char *def, mk_cond_kind_t kind, const char *body,
                           const char *query, size_t size);

/* The cost bound: a request's value is canonicalised only as far as the condition's own value
 * took, and a condition value over MK_COND_MAX_SORT_WORK is refused when the mock is saved. */
static void test_sort_array_bounds(void)
{
    const char *e = explain("{\"path\": \"ids\", \"value\": [1], \"sortArray\": true}",
                            MK_COND_BODY, "{\"ids\": [1, 2, 3, 4, 5, 6, 7, 8]}", "", 512);
    MK_CHECK(strstr(e, "(sortArray: larger than the value, compared no further)") != NULL);
    /* 1 MiB of string nested 70 arrays deep: each level moves the megabyte once more. */
    size_t big = 1u << 20;
    char *s = malloc(big + 1);
    memset(s, 'x', big);
    s[big] = '\0';
    json_t *v = json_string(s);
    for (int i = 0; i < 70; i++)
        v = json_pack("[o]", v);
    json_t *def = json_pack("{s:s, s:o, s:b}", "path", "a", "value", v, "sortArray", 1);
    mk_cond_t *c = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_cond_compile(def, MK_COND_BODY, "http.conditions[0]", &c, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "http.conditions[0].value: too large to compare with sortArray") !=
             NULL);
    mk_cond_free(c);
    c = NULL;
    /* Without sortArray the same value is fine. */
    json_object_set_new(def, "sortArray", json_false());
    MK_CHECK_INT(mk_cond_compile(def, MK_COND_BODY, "http.conditions[0]", &c, &err), 0);
    mk_cond_free(c);
    json_decref(def);
    free(s);
}

static void test_contains(void)
{
    const char *a = "\"assertAction\": \"contains\"";
    char def[256];
#define C_T(path, value)                                                                           \
    snprintf(def, sizeof def, "{\"path\": \"%s\", %s, \"value\": %s}", path, a, value);            \
    BODY_T(def)
#define C_F(path, value)                                                                           \
    snprintf(def, sizeof def, "{\"path\": \"%s\", %s, \"value\": %s}", path, a, value);            \
    BODY_F(def)
    C_T("user.name", "\"Ann\"");
    C_T("user.name", "\"n L\"");
    C_T("user.name", "\"\"");
    C_F("user.name", "\"ann\"");
    C_F("user.name", "\"Ann Lee!\"");
    C_T("user.tags", "\"b\"");
    C_F("user.tags", "\"d\"");
    C_F("user.tags", "\"\"");
    C_T("ids", "2");
    C_T("ids", "2.0");
    C_T("ids", "\"2\""); /* element and value compare with text coercion */
    C_T("strs", "2");
    C_F("ids", "[2]");
    C_T("nested", "[1, 2]");
    C_F("nested", "[2, 1]");
    C_T("meta", "\"x-key\"");
    C_F("meta", "\"x\"");
    C_F("meta", "1");
    C_T("id", "234"); /* a number contains the text of another */
    C_T("id", "\"345\"");
    C_F("id", "6");
    C_T("user.admin", "\"als\"");
    C_F("user.email", "\"\"");
    C_F("absent", "\"x\"");
#undef C_T
#undef C_F
    /* With sortArray, array elements are compared ignoring order too. */
    BODY_T("{\"path\": \"nested\", \"assertAction\": \"contains\", \"value\": [2, 1],"
           " \"sortArray\": true}");

    a = "\"assertAction\": \"not_contains\"";
    snprintf(def, sizeof def, "{\"path\": \"user.name\", %s, \"value\": \"Bob\"}", a);
    BODY_T(def);
    snprintf(def, sizeof def, "{\"path\": \"user.name\", %s, \"value\": \"Ann\"}", a);
    BODY_F(def);
    snprintf(def, sizeof def, "{\"path\": \"user.tags\", %s, \"value\": \"a\"}", a);
    BODY_F(def);
    snprintf(def, sizeof def, "{\"path\": \"absent\", %s, \"value\": \"a\"}", a);
    BODY_T(def);
}

static void test_any_empty(void)
{
    BODY_T("{\"path\": \"user.email\", \"assertAction\": \"any\"}"); /* null still exists */
    BODY_T("{\"path\": \"empty_s\", \"assertAction\": \"any\"}");
    BODY_F("{\"path\": \"absent\", \"assertAction\": \"any\"}");
    BODY_F("{\"path\": \"user.tags[3]\", \"assertAction\": \"any\"}");
    /* `value` is ignored for any/empty/notEmpty. */
    BODY_T("{\"path\": \"user.id\", \"assertAction\": \"any\", \"value\": \"ignored\"}");

    const char *empties[] = {"empty_s", "empty_a", "empty_o", "user.email", "absent"};
    const char *full[] = {"user.name", "ids", "meta", "zero", "no"};
    char def[128];
    for (size_t i = 0; i < 5; i++) {
        snprintf(def, sizeof def, "{\"path\": \"%s\", \"assertAction\": \"empty\"}", empties[i]);
        BODY_T(def);
        snprintf(def, sizeof def, "{\"path\": \"%s\", \"assertAction\": \"notEmpty\"}", empties[i]);
        BODY_F(def);
        snprintf(def, sizeof def, "{\"path\": \"%s\", \"assertAction\": \"empty\"}", full[i]);
        BODY_F(def);
        snprintf(def, sizeof def, "{\"path\": \"%s\", \"assertAction\": \"notEmpty\"}", full[i]);
        BODY_T(def);
    }
}

static void test_matches(void)
{
    BODY_T("{\"path\": \"user.name\", \"assertAction\": \"matches\", \"value\": \"^Ann\\\\s\"}");
    BODY_F("{\"path\": \"user.name\", \"assertAction\": \"matches\", \"value\": \"^Lee\"}");
    BODY_T("{\"path\": \"user.name\", \"assertAction\": \"matches\", \"value\": \"Lee\"}");
    BODY_T("{\"path\": \"id\", \"assertAction\": \"matches\", \"value\": \"^\\\\d{5}$\"}");
    BODY_T("{\"path\": \"user.score\", \"assertAction\": \"matches\", \"value\": \"^1\\\\.5$\"}");
    BODY_T("{\"path\": \"real\", \"assertAction\": \"matches\", \"value\": \"^5$\"}");
    BODY_T("{\"path\": \"user.admin\", \"assertAction\": \"matches\", \"value\": \"^false$\"}");
    BODY_F("{\"path\": \"user.email\", \"assertAction\": \"matches\", \"value\": \".*\"}");
    BODY_F("{\"path\": \"ids\", \"assertAction\": \"matches\", \"value\": \".*\"}");
    BODY_F("{\"path\": \"absent\", \"assertAction\": \"matches\", \"value\": \".*\"}");
    QUERY_T("{\"path\": \"q\", \"assertAction\": \"matches\", \"value\": \"^hello world$\"}");
    QUERY_T("{\"path\": \"empty\", \"assertAction\": \"matches\", \"value\": \"^$\"}");
    QUERY_F("{\"path\": \"absent\", \"assertAction\": \"matches\", \"value\": \"^$\"}");
    HEADER_T("{\"path\": \"x-trace\", \"assertAction\": \"matches\", \"value\": \"-\\\\d+-\"}");
    HEADER_F("{\"path\": \"x-trace\", \"assertAction\": \"matches\", \"value\": \"^\\\\d\"}");
}

static void test_query(void)
{
    QUERY_T("{\"path\": \"page\", \"value\": \"5\"}");
    QUERY_T("{\"path\": \"page\", \"value\": 5}");
    QUERY_T("{\"path\": \"page\", \"value\": 5.0}");
    QUERY_F("{\"path\": \"page\", \"value\": 6}");
    QUERY_T("{\"path\": \"f\", \"value\": 1.5}");     /* "1.50" is the number 1.5 */
    QUERY_F("{\"path\": \"f\", \"value\": \"1.5\"}"); /* but not the string "1.5" */
    QUERY_T("{\"path\": \"neg\", \"value\": -3}");
    QUERY_T("{\"path\": \"t\", \"value\": true}");
    QUERY_F("{\"path\": \"t\", \"value\": false}");
    QUERY_T("{\"path\": \"q\", \"value\": \"hello world\"}"); /* decoded */
    QUERY_F("{\"path\": \"Page\", \"value\": 5}");            /* names are case-sensitive */
    QUERY_F("{\"path\": \"absent\", \"value\": \"\"}");
    QUERY_T("{\"path\": \"empty\", \"value\": \"\"}");
    QUERY_F("{\"path\": \"page\", \"value\": null}");
    QUERY_F("{\"path\": \"page\", \"value\": [5]}");
    QUERY_T("{\"path\": \"q\", \"assertAction\": \"contains\", \"value\": \"o w\"}");
    QUERY_T("{\"path\": \"page\", \"assertAction\": \"contains\", \"value\": 5}");
    QUERY_F("{\"path\": \"q\", \"assertAction\": \"contains\", \"value\": \"xyz\"}");
    QUERY_F("{\"path\": \"q\", \"assertAction\": \"contains\", \"value\": null}");
    QUERY_T("{\"path\": \"q\", \"assertAction\": \"not_contains\", \"value\": \"xyz\"}");
    QUERY_T("{\"path\": \"flag\", \"assertAction\": \"any\"}");
    QUERY_T("{\"path\": \"empty\", \"assertAction\": \"any\"}");
    QUERY_F("{\"path\": \"absent\", \"assertAction\": \"any\"}");
    QUERY_T("{\"path\": \"empty\", \"assertAction\": \"empty\"}");
    QUERY_T("{\"path\": \"absent\", \"assertAction\": \"empty\"}");
    QUERY_F("{\"path\": \"page\", \"assertAction\": \"empty\"}");
    QUERY_T("{\"path\": \"page\", \"assertAction\": \"notEmpty\"}");
    QUERY_F("{\"path\": \"flag\", \"assertAction\": \"notEmpty\"}");
    /* A query path is a parameter name, not a JSONPath: dots and brackets are literal. */
    MK_CHECK_INT(ev_with("{\"path\": \"a.b[0]\", \"value\": \"x\"}", MK_COND_QUERY, "",
                         "a.b%5B0%5D=x", __LINE__),
                 1);
}

static void test_header(void)
{
    HEADER_T("{\"path\": \"X-Count\", \"value\": 5}");
    HEADER_T("{\"path\": \"x-count\", \"value\": \"5\"}");
    HEADER_T("{\"path\": \"X-COUNT\", \"assertAction\": \"equals\", \"value\": 5}");
    HEADER_F("{\"path\": \"X-Count\", \"value\": 6}");
    HEADER_T("{\"path\": \"content-type\", \"assertAction\": \"contains\", \"value\": \"json\"}");
    HEADER_F("{\"path\": \"content-type\", \"assertAction\": \"contains\", \"value\": \"xml\"}");
    HEADER_T("{\"path\": \"x-empty\", \"assertAction\": \"any\"}");
    HEADER_T("{\"path\": \"x-empty\", \"assertAction\": \"empty\"}");
    HEADER_F("{\"path\": \"x-empty\", \"assertAction\": \"notEmpty\"}");
    HEADER_F("{\"path\": \"x-absent\", \"assertAction\": \"any\"}");
    HEADER_T("{\"path\": \"x-absent\", \"assertAction\": \"not_equals\", \"value\": \"1\"}");
}

static void test_body_not_json(void)
{
    const char *def = "{\"path\": \"$\", \"assertAction\": \"any\"}";
    MK_CHECK_INT(ev_with(def, MK_COND_BODY, "not json", "", __LINE__), 0);
    MK_CHECK_INT(ev_with(def, MK_COND_BODY, "", "", __LINE__), 0);
    MK_CHECK_INT(ev_with(def, MK_COND_BODY, "7", "", __LINE__), 1);
    def = "{\"path\": \"$.a\", \"assertAction\": \"empty\"}";
    MK_CHECK_INT(ev_with(def, MK_COND_BODY, "<xml/>", "", __LINE__), 1);
    def = "{\"path\": \"$\", \"value\": [1, 2]}";
    MK_CHECK_INT(ev_with(def, MK_COND_BODY, "[1, 2]", "", __LINE__), 1);
}

static void test_default_action(void)
{
    BODY_T("{\"path\": \"user.id\", \"value\": 42}");
    BODY_T("{\"path\": \"user.id\", \"assertAction\": \"\", \"value\": 42}");
    BODY_T("{\"path\": \"user.id\", \"assertAction\": null, \"value\": 42}");
    BODY_F("{\"path\": \"user.id\", \"value\": 43}");
}

/* The compile error message for def (static buffer), or "" when it compiled. */
static const char *compile_error(const char *def, mk_cond_kind_t kind)
{
    static mk_err_t err;
    mk_err_clear(&err);
    json_t *j = json_loads(def, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (j == NULL)
        return "bad test JSON";
    mk_cond_t *c = (mk_cond_t *)&c;
    int rc = mk_cond_compile(j, kind, "http.conditions[1]", &c, &err);
    json_decref(j);
    if (rc == 0) {
        mk_cond_free(c);
        return "";
    }
    if (rc != MK_EINVAL || c != NULL || err.code != MK_EINVAL)
        return "wrong code or non-NULL out";
    return err.msg;
}

static void test_errors(void)
{
    CHECK_MSG(compile_error("{\"value\": 1}", MK_COND_BODY), "http.conditions[1].path: required");
    CHECK_MSG(compile_error("{\"path\": null}", MK_COND_QUERY),
              "http.conditions[1].path: required");
    CHECK_MSG(compile_error("{\"path\": \"\"}", MK_COND_HEADER),
              "http.conditions[1].path: must not be empty");
    CHECK_MSG(compile_error("{\"path\": 5}", MK_COND_BODY),
              "http.conditions[1].path: must be a string, got number");
    CHECK_MSG(compile_error("[1]", MK_COND_BODY),
              "http.conditions[1]: must be an object, got array");
    CHECK_MSG(compile_error("\"x\"", MK_COND_BODY),
              "http.conditions[1]: must be an object, got string");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"eq\"}", MK_COND_BODY),
              "http.conditions[1].assertAction: unknown action 'eq' (allowed: equals, "
              "not_equals, contains, not_contains, any, notEmpty, empty, matches)");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"notEquals\"}", MK_COND_QUERY),
              "http.conditions[1].assertAction: unknown action 'notEquals' (allowed: equals, "
              "not_equals, contains, not_contains, any, notEmpty, empty, matches)");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"Equals\"}", MK_COND_QUERY),
              "http.conditions[1].assertAction: unknown action 'Equals' (allowed: equals, "
              "not_equals, contains, not_contains, any, notEmpty, empty, matches)");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": 1}", MK_COND_BODY),
              "http.conditions[1].assertAction: must be a string, got number");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"sortArray\": \"yes\"}", MK_COND_BODY),
              "http.conditions[1].sortArray: must be a boolean, got string");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"matches\", \"value\": "
                            "\"(abc\"}",
                            MK_COND_HEADER),
              "http.conditions[1].value: invalid regular expression: missing closing "
              "parenthesis at offset 4");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"matches\", \"value\": 5}",
                            MK_COND_BODY),
              "http.conditions[1].value: matches needs a regular expression string, got "
              "number");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"matches\"}", MK_COND_QUERY),
              "http.conditions[1].value: matches needs a regular expression string, got "
              "nothing");
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"matches\", \"value\": "
                            "null}",
                            MK_COND_QUERY),
              "http.conditions[1].value: matches needs a regular expression string, got null");
    CHECK_MSG(compile_error("{\"path\": \"$.items]\"}", MK_COND_BODY),
              "http.conditions[1].path: unexpected ']' at 7");
    CHECK_MSG(compile_error("{\"path\": \"$..a\", \"value\": 1}", MK_COND_BODY),
              "http.conditions[1].path: recursive descent '..' is not supported at 1");
    CHECK_MSG(compile_error("{\"path\": \"a\\u0000b\"}", MK_COND_QUERY),
              "http.conditions[1].path: must not contain NUL");
    /* The same text is a fine query or header name: no JSONPath compile for those kinds. */
    CHECK_MSG(compile_error("{\"path\": \"$.items]\"}", MK_COND_QUERY), "");
    CHECK_MSG(compile_error("{\"path\": \"X Weird]\"}", MK_COND_HEADER), "");
    /* any/empty/notEmpty need no value; unknown members are ignored. */
    CHECK_MSG(compile_error("{\"path\": \"a\", \"assertAction\": \"any\"}", MK_COND_BODY), "");
    MK_CHECK_STR(
        compile_error("{\"path\": \"a\", \"assertAction\": \"empty\", \"extra\": 1}", MK_COND_BODY),
        "");

    /* A NULL field still gives a message; a NULL err is allowed. */
    json_t *j = json_pack("{s:s}", "path", "");
    mk_cond_t *c = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_cond_compile(j, MK_COND_BODY, NULL, &c, &err), MK_EINVAL);
    CHECK_MSG(err.msg, "condition.path: must not be empty");
    MK_CHECK_INT(mk_cond_compile(j, MK_COND_BODY, "f", &c, NULL), MK_EINVAL);
    MK_CHECK(c == NULL);
    MK_CHECK_INT(mk_cond_compile(NULL, MK_COND_BODY, "f", &c, &err), MK_EINVAL);
    CHECK_MSG(err.msg, "f: must be an object, got nothing");
    json_decref(j);
}

static void test_to_json_and_kind(void)
{
    mk_cond_t *c = compile("{\"path\": \"$.user.id\", \"value\": 42, \"extra\": true}",
                           MK_COND_BODY, __LINE__);
    if (c == NULL)
        return;
    MK_CHECK_INT(mk_cond_kind(c), MK_COND_BODY);
    json_t *j = mk_cond_to_json(c);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    MK_CHECK_STR(s, "{\"assertAction\":\"equals\",\"path\":\"$.user.id\",\"sortArray\":false,"
                    "\"value\":42}");
    free(s);
    /* The JSON compiles back to an equivalent condition. */
    mk_cond_t *again = NULL;
    MK_CHECK_INT(mk_cond_compile(j, MK_COND_BODY, "x", &again, NULL), 0);
    json_t *j2 = mk_cond_to_json(again);
    MK_CHECK(json_equal(j, j2));
    json_decref(j2);
    mk_cond_free(again);
    json_decref(j);
    mk_cond_free(c);

    c = compile("{\"path\": \"X-A\", \"assertAction\": \"notEmpty\"}", MK_COND_HEADER, __LINE__);
    if (c == NULL)
        return;
    MK_CHECK_INT(mk_cond_kind(c), MK_COND_HEADER);
    j = mk_cond_to_json(c);
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    MK_CHECK_STR(s, "{\"assertAction\":\"notEmpty\",\"path\":\"X-A\",\"sortArray\":false}");
    free(s);
    json_decref(j);
    mk_cond_free(c);

    c = compile("{\"path\": \"ids\", \"value\": [1, {\"a\": null}], \"sortArray\": true, "
                "\"assertAction\": \"not_contains\"}",
                MK_COND_QUERY, __LINE__);
    if (c == NULL)
        return;
    MK_CHECK_INT(mk_cond_kind(c), MK_COND_QUERY);
    j = mk_cond_to_json(c);
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    MK_CHECK_STR(s, "{\"assertAction\":\"not_contains\",\"path\":\"ids\",\"sortArray\":true,"
                    "\"value\":[1,{\"a\":null}]}");
    free(s);
    json_decref(j);
    mk_cond_free(c);
    mk_cond_free(NULL);
}

/* The definition is copied: changing or freeing the caller's JSON does not affect the condition. */
static void test_copies_definition(void)
{
    json_t *def = json_pack("{s:s, s:[i,i]}", "path", "ids", "value", 1, 2);
    mk_cond_t *c = NULL;
    MK_CHECK_INT(mk_cond_compile(def, MK_COND_BODY, "c", &c, NULL), 0);
    json_array_set_new(json_object_get(def, "value"), 0, json_integer(9));
    json_object_set_new(def, "path", json_string("other"));
    json_decref(def);
    treq_t t;
    treq_init(&t, "{\"ids\": [1, 2]}", "");
    MK_CHECK(mk_cond_eval(c, &t.req));
    mk_request_release(&t.req);
    mk_cond_free(c);
}

static const char *explain(const char *def, mk_cond_kind_t kind, const char *body,
                           const char *query, size_t size)
{
    static char buf[512];
    strcpy(buf, "untouched");
    mk_cond_t *c = compile(def, kind, __LINE__);
    if (c == NULL)
        return "compile failed";
    treq_t t;
    treq_init(&t, body, query);
    mk_cond_explain(c, &t.req, buf, size);
    mk_request_release(&t.req);
    mk_cond_free(c);
    return buf;
}

static void test_explain(void)
{
    CHECK_MSG(explain("{\"path\": \"$.user.id\", \"value\": 42}", MK_COND_BODY,
                      "{\"user\": {\"id\": 41}}", "", 512),
              "body $.user.id equals 42, got 41");
    CHECK_MSG(explain("{\"path\": \"$.user.id\", \"value\": 42}", MK_COND_BODY, "{\"user\": {}}",
                      "", 512),
              "body $.user.id equals 42, but the path does not exist");
    CHECK_MSG(explain("{\"path\": \"$.user.id\", \"value\": 42}", MK_COND_BODY, "oops", "", 512),
              "body $.user.id equals 42, but the body is not JSON");
    CHECK_MSG(explain("{\"path\": \"$.user.id\", \"value\": 42}", MK_COND_BODY, "", "", 512),
              "body $.user.id equals 42, but the body is empty");
    CHECK_MSG(explain("{\"path\": \"tags\", \"assertAction\": \"notEmpty\"}", MK_COND_BODY,
                      "{\"tags\": []}", "", 512),
              "body tags notEmpty, got []");
    CHECK_MSG(explain("{\"path\": \"page\", \"value\": 5}", MK_COND_QUERY, "", "page=6", 512),
              "query page equals 5, got \"6\"");
    CHECK_MSG(explain("{\"path\": \"page\", \"value\": \"5\"}", MK_COND_QUERY, "", "", 512),
              "query page equals \"5\", but it is absent");
    MK_CHECK_STR(
        explain("{\"path\": \"X-Env\", \"assertAction\": \"any\"}", MK_COND_HEADER, "", "", 512),
        "header X-Env any, but it is absent");
    CHECK_MSG(explain("{\"path\": \"q\", \"assertAction\": \"matches\", \"value\": \"^a\"}",
                      MK_COND_QUERY, "", "q=%22b%0A", 512),
              "query q matches \"^a\", got \"\\\"b\\x0a\"");
    /* A condition that holds says so. */
    CHECK_MSG(explain("{\"path\": \"x-count\", \"value\": 5}", MK_COND_HEADER, "", "", 512),
              "header x-count equals 5, got \"5\" (holds)");
    /* Long values are cut to one short line. */
    char body[400];
    snprintf(body, sizeof body, "{\"s\": \"%0200d\"}", 7);
    const char *e = explain("{\"path\": \"s\", \"value\": \"x\"}", MK_COND_BODY, body, "", 512);
    MK_CHECK(strlen(e) < 140);
    MK_CHECK(strstr(e, "...") != NULL);
    MK_CHECK(strncmp(e, "body s equals \"x\", got \"0000", 28) == 0);
    /* The output is truncated to the buffer and NUL-terminated. */
    CHECK_MSG(explain("{\"path\": \"$.user.id\", \"value\": 42}", MK_COND_BODY,
                      "{\"user\": {\"id\": 41}}", "", 10),
              "body $.us");
}

/* Once the request's lazy parts are built, evaluating scalar conditions allocates nothing. */
static void test_eval_does_not_allocate(void)
{
#ifdef HAVE_MALLOC_HOOK
    const struct {
        const char *def;
        mk_cond_kind_t kind;
    } cases[] = {
        {"{\"path\": \"$.user.id\", \"value\": 42}", MK_COND_BODY},
        {"{\"path\": \"user.id\", \"value\": 42.0}", MK_COND_BODY},
        {"{\"path\": \"user.name\", \"value\": \"Ann Lee\"}", MK_COND_BODY},
        {"{\"path\": \"num_str\", \"value\": 5}", MK_COND_BODY},
        {"{\"path\": \"user.tags\", \"value\": [\"a\", \"b\", \"c\"]}", MK_COND_BODY},
        {"{\"path\": \"ids\", \"value\": [3, 2, 1], \"sortArray\": true}", MK_COND_BODY},
        {"{\"path\": \"user.name\", \"assertAction\": \"contains\", \"value\": \"Lee\"}",
         MK_COND_BODY},
        {"{\"path\": \"id\", \"assertAction\": \"contains\", \"value\": 234}", MK_COND_BODY},
        {"{\"path\": \"user.score\", \"assertAction\": \"matches\", \"value\": \"^1\"}",
         MK_COND_BODY},
        {"{\"path\": \"absent\", \"assertAction\": \"empty\"}", MK_COND_BODY},
        {"{\"path\": \"page\", \"value\": 5}", MK_COND_QUERY},
        {"{\"path\": \"q\", \"assertAction\": \"matches\", \"value\": \"wor\"}", MK_COND_QUERY},
        {"{\"path\": \"x-count\", \"assertAction\": \"not_equals\", \"value\": 6}", MK_COND_HEADER},
    };
    /* Returns non-zero once installed; both hooks are required. */
    MK_CHECK(__sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free) != 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_cond_t *c = compile(cases[i].def, cases[i].kind, __LINE__);
        if (c == NULL)
            continue;
        treq_t t;
        treq_init(&t, BODY, QUERY);
        bool first = mk_cond_eval(c, &t.req); /* builds the lazy parts and thread caches */
        mallocs = 0;
        counting = true;
        bool same = true;
        for (int k = 0; k < 100; k++)
            same = same && mk_cond_eval(c, &t.req) == first;
        counting = false;
        long n = mallocs;
        MK_CHECK(first);
        MK_CHECK(same);
        char d[300];
        snprintf(d, sizeof d, "%ld allocations evaluating %s", n, cases[i].def);
        mk_testing_record(n == 0, __FILE__, __LINE__, "no allocation", d);
        mk_request_release(&t.req);
        mk_cond_free(c);
    }
#endif
}

int main(void)
{
    MK_RUN(test_equals_body);
    MK_RUN(test_numbers);
    MK_RUN(test_text_coercion);
    MK_RUN(test_not_equals);
    MK_RUN(test_sort_array);
    MK_RUN(test_sort_array_large);
    MK_RUN(test_sort_array_huge);
    MK_RUN(test_sort_array_random);
    MK_RUN(test_contains);
    MK_RUN(test_any_empty);
    MK_RUN(test_matches);
    MK_RUN(test_query);
    MK_RUN(test_header);
    MK_RUN(test_body_not_json);
    MK_RUN(test_default_action);
    MK_RUN(test_errors);
    MK_RUN(test_to_json_and_kind);
    MK_RUN(test_copies_definition);
    MK_RUN(test_explain);
    MK_RUN(test_sort_array_bounds);
    MK_RUN(test_eval_does_not_allocate);
    return mk_testing_done();
}
