/* Tests for the request view's lazy accessors. */
#include "request/request.h"
#include "testing/testing.h"

static void test_query_and_headers(void)
{
    mk_header_t h[] = {{MK_STR_LIT("X-A"), MK_STR_LIT("1")}, {MK_STR_LIT("x-a"), MK_STR_LIT("2")}};
    mk_request_t r = {.method = MK_STR_LIT("GET"), .path = MK_STR_LIT("/x"),
                      .query = MK_STR_LIT("a=1&b=x%20y&&c&a=2"), .headers = h, .nheaders = 2};
    mk_request_init(&r);
    mk_str_t v;
    MK_CHECK(mk_request_query_param(&r, MK_STR_LIT("b"), &v) && mk_str_eq_cstr(v, "x y"));
    MK_CHECK(mk_request_query_param(&r, MK_STR_LIT("a"), &v) && mk_str_eq_cstr(v, "1"));
    MK_CHECK(mk_request_query_param(&r, MK_STR_LIT("c"), &v) && v.len == 0);
    MK_CHECK(!mk_request_query_param(&r, MK_STR_LIT("d"), &v));
    mk_str_t vals[4];
    MK_CHECK_INT(mk_request_header_values(&r, MK_STR_LIT("X-a"), vals, 4), 2);
    MK_CHECK(mk_str_eq_cstr(vals[1], "2"));
    MK_CHECK(mk_request_json(&r) == NULL);
    mk_request_release(&r);
}

static void test_json_body(void)
{
    mk_request_t r = {.body = MK_STR_LIT("{\"a\": [1, 2]}")};
    mk_request_init(&r);
    json_t *j = mk_request_json(&r);
    MK_CHECK(json_is_object(j));
    MK_CHECK(mk_request_json(&r) == j);
    mk_request_release(&r);
}

int main(void)
{
    MK_RUN(test_query_and_headers);
    MK_RUN(test_json_body);
    return mk_testing_done();
}
