/* Tests for the JSONPath subset: what each form selects, and the positions errors name. */
#include "jsonpath/jsonpath.h"
#include "testing/testing.h"

static json_t *doc;

/* Compiles expr, evaluates it against doc and returns the selection (borrowed), or NULL. */
static json_t *sel(const char *expr)
{
    mk_jsonpath_t *p = NULL;
    mk_err_t err = {0};
    int rc = mk_jsonpath_compile(expr, &p, &err);
    if (rc != 0) {
        char d[600];
        snprintf(d, sizeof d, "compile '%s': %s", expr, err.msg);
        mk_testing_record(false, __FILE__, __LINE__, "compile", d);
        return NULL;
    }
    json_t *v = mk_jsonpath_eval(p, doc);
    mk_jsonpath_free(p);
    return v;
}

static bool sel_int(const char *expr, long long want)
{
    json_t *v = sel(expr);
    return json_is_integer(v) && json_integer_value(v) == want;
}

static bool sel_str(const char *expr, const char *want)
{
    json_t *v = sel(expr);
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* Returns the compile error message for expr (static buffer), or "" when it compiled. */
static const char *compile_error(const char *expr)
{
    static mk_err_t err;
    mk_jsonpath_t *p = NULL;
    mk_err_clear(&err);
    int rc = mk_jsonpath_compile(expr, &p, &err);
    mk_jsonpath_free(p);
    if (rc == 0)
        return "";
    if (rc != MK_EINVAL || p != NULL)
        return "wrong code or non-NULL out";
    return err.msg;
}

static void test_root_and_keys(void)
{
    MK_CHECK(sel("$") == doc);
    MK_CHECK(sel_int("$.user.id", 42));
    MK_CHECK(sel_int("user.id", 42));
    MK_CHECK(sel_int(".user.id", 42));
    MK_CHECK(sel_str("$.user.name", "Ann"));
    MK_CHECK(json_is_object(sel("$.user")));
    MK_CHECK(sel_int("$.user-id", 7));
    MK_CHECK(sel_int("$.k2", 2));
    MK_CHECK(sel_int("$.2k", 3));
    MK_CHECK(sel_int("$._x$y", 4));
    MK_CHECK(json_is_null(sel("$.nothing")));
    MK_CHECK(json_is_false(sel("$.flag")));
}

static void test_missing(void)
{
    MK_CHECK(sel("$.absent") == NULL);
    MK_CHECK(sel("$.user.absent") == NULL);
    MK_CHECK(sel("$.user.id.deeper") == NULL);
    MK_CHECK(sel("$.user[0]") == NULL);
    MK_CHECK(sel("$.items[3]") == NULL);
    MK_CHECK(sel("$.items[-4]") == NULL);
    MK_CHECK(sel("$.items.name") == NULL);
    MK_CHECK(sel("$.nothing.x") == NULL);
    MK_CHECK(sel("$['User']") == NULL); /* keys are case-sensitive */
}

static void test_indexes(void)
{
    MK_CHECK(sel_str("$.items[0].sku", "a"));
    MK_CHECK(sel_str("$.items[2].sku", "c"));
    MK_CHECK(sel_str("$.items[-1].sku", "c"));
    MK_CHECK(sel_str("$.items[-3].sku", "a"));
    MK_CHECK(sel_str("items[1].sku", "b"));
    MK_CHECK(sel_int("$.matrix[1][0]", 3));
    MK_CHECK(sel_int("$.matrix[-1][-1]", 4));
    /* A dotted all-digit key indexes an array (gjson style) and is a key on an object. */
    MK_CHECK(sel_str("$.items.1.sku", "b"));
    MK_CHECK(sel_str("$.num.0", "zero"));
    MK_CHECK(sel("$.items.-1") == NULL);
    /* A bracketed quoted key never indexes an array. */
    MK_CHECK(sel("$.items['0']") == NULL);
}

static void test_quoted_keys(void)
{
    MK_CHECK(sel_int("$['key with space']", 5));
    MK_CHECK(sel_int("$[\"key with space\"]", 5));
    MK_CHECK(sel_int("['key with space']", 5));
    MK_CHECK(sel_int("$['a.b']", 6));
    MK_CHECK(sel_int("$['it\\'s']", 8));
    MK_CHECK(sel_int("$[\"q\\\"uote\"]", 9));
    MK_CHECK(sel_int("$['']", 10));
    MK_CHECK(sel_str("$['user']['name']", "Ann"));
    MK_CHECK(sel_str("$.items[0]['sku']", "a"));
    MK_CHECK(sel_str("$['ключ']", "unicode"));
}

static void test_root_array(void)
{
    json_t *saved = doc;
    doc = json_pack("[{s:i}, {s:i}]", "a", 1, "a", 2);
    MK_CHECK(sel_int("$[1].a", 2));
    MK_CHECK(sel_int("[0].a", 1));
    MK_CHECK(sel_int("$[-1].a", 2));
    json_decref(doc);
    doc = saved;
}

static void test_source(void)
{
    mk_jsonpath_t *p = NULL;
    MK_CHECK_INT(mk_jsonpath_compile("user.id", &p, NULL), 0);
    MK_CHECK_STR(mk_jsonpath_source(p), "user.id");
    mk_jsonpath_free(p);
    mk_jsonpath_free(NULL);
}

static void test_errors(void)
{
    MK_CHECK_STR(compile_error("$.items]"), "unexpected ']' at 7");
    MK_CHECK_STR(compile_error(""), "empty path at 0");
    MK_CHECK_STR(compile_error(NULL), "empty path at 0");
    MK_CHECK_STR(compile_error("$."), "expected a name at 2");
    MK_CHECK_STR(compile_error("$.a."), "expected a name at 4");
    MK_CHECK_STR(compile_error("$.a.[0]"), "expected a name at 4");
    MK_CHECK_STR(compile_error("$..a"), "recursive descent '..' is not supported at 1");
    MK_CHECK_STR(compile_error("$.*"), "wildcard '*' is not supported at 2");
    MK_CHECK_STR(compile_error("$.a[*]"), "wildcard '*' is not supported at 4");
    MK_CHECK_STR(compile_error("$.a[?(@.x)]"), "filter expressions are not supported at 4");
    MK_CHECK_STR(compile_error("$.a[1:2]"), "slices are not supported at 5");
    MK_CHECK_STR(compile_error("$.a[1,2]"), "unions are not supported at 5");
    MK_CHECK_STR(compile_error("$.a[1"), "expected ']' at 5");
    MK_CHECK_STR(compile_error("$.a[]"), "unexpected ']' at 4");
    MK_CHECK_STR(compile_error("$.a[x]"), "unexpected 'x' at 4");
    MK_CHECK_STR(compile_error("$.a[-]"), "unexpected ']' at 5");
    MK_CHECK_STR(compile_error("$.a[1x]"), "unexpected 'x' at 5");
    MK_CHECK_STR(compile_error("$.a[1234567890123456789]"), "index too large at 4");
    MK_CHECK_STR(compile_error("$['abc"), "unterminated quoted key starting at 1");
    MK_CHECK_STR(compile_error("$['abc\\"), "unterminated quoted key starting at 1");
    MK_CHECK_STR(compile_error("$['abc'"), "expected ']' at 7");
    MK_CHECK_STR(compile_error("$['abc'x]"), "unexpected 'x' at 7");
    MK_CHECK_STR(compile_error("$a"), "unexpected 'a' at 1");
    MK_CHECK_STR(compile_error("$.first name"), "unexpected ' ' at 7");
    MK_CHECK_STR(compile_error("a b"), "unexpected ' ' at 1");
    MK_CHECK_STR(compile_error(" a"), "unexpected ' ' at 0");
    MK_CHECK_STR(compile_error("$.a\tb"), "unexpected control character 0x09 at 3");
    MK_CHECK_STR(compile_error("$.a'b"), "unexpected ''' at 3");
    MK_CHECK_STR(compile_error("]"), "unexpected ']' at 0");
    MK_CHECK_STR(compile_error("$$"), "unexpected '$' at 1");

    /* The out pointer is reset on failure. */
    mk_jsonpath_t *p = (mk_jsonpath_t *)&p;
    MK_CHECK_INT(mk_jsonpath_compile("$.[", &p, NULL), MK_EINVAL);
    MK_CHECK(p == NULL);
}

static void test_valid_forms_compile(void)
{
    const char *ok[] = {"$",           "a",
                        "$[0]",        "[0]",
                        "$.a-b.c_d",   "$.a.1",
                        "$[-1][2]",    "$['x']['y']",
                        "$[\"x\"].y",  ".a",
                        "a[0]",        "a.b[0].c",
                        "$.a1.2b.-c-", "$['with]bracket']"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *msg = compile_error(ok[i]);
        char d[600];
        snprintf(d, sizeof d, "'%s': %s", ok[i], msg);
        mk_testing_record(msg[0] == '\0', __FILE__, __LINE__, "valid form compiles", d);
    }
}

int main(void)
{
    json_error_t jerr;
    doc = json_loads("{\"user\": {\"id\": 42, \"name\": \"Ann\"}, \"user-id\": 7, \"k2\": 2,"
                     " \"2k\": 3, \"_x$y\": 4, \"key with space\": 5, \"a.b\": 6, \"it's\": 8,"
                     " \"q\\\"uote\": 9, \"\": 10, \"nothing\": null, \"flag\": false,"
                     " \"items\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}, {\"sku\": \"c\"}],"
                     " \"matrix\": [[1, 2], [3, 4]], \"num\": {\"0\": \"zero\"},"
                     " \"ключ\": \"unicode\", \"with]bracket\": 11}",
                     0, &jerr);
    if (doc == NULL) {
        fprintf(stderr, "fixture: %s\n", jerr.text);
        return 1;
    }
    MK_RUN(test_root_and_keys);
    MK_RUN(test_missing);
    MK_RUN(test_indexes);
    MK_RUN(test_quoted_keys);
    MK_RUN(test_root_array);
    MK_RUN(test_source);
    MK_RUN(test_errors);
    MK_RUN(test_valid_forms_compile);
    json_decref(doc);
    return mk_testing_done();
}
