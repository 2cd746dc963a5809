/* Tests for slices and bounded buffers. */
#include "err/err.h"
#include "str/str.h"
#include "testing/testing.h"

#include <stdlib.h>

static void test_buf_refuses_past_max(void)
{
    mk_buf_t b;
    mk_buf_init(&b, 8);
    MK_CHECK_INT(mk_buf_append_str(&b, "12345"), 0);
    MK_CHECK_INT(mk_buf_append_str(&b, "6789"), MK_ETOOBIG);
    MK_CHECK_STR(b.data, "12345");
    MK_CHECK_INT(mk_buf_appendf(&b, "%d", 678), 0);
    MK_CHECK_STR(b.data, "12345678");
    mk_buf_free(&b);
}

static void test_url_decode(void)
{
    char out[32];
    MK_CHECK_INT(mk_str_url_decode(MK_STR_LIT("a%20b+c%zz%4"), out, true), 10);
    MK_CHECK_STR(out, "a b c%zz%4");
    mk_str_url_decode(MK_STR_LIT("a+b"), out, false);
    MK_CHECK_STR(out, "a+b");
}

static void test_hexval(void)
{
    MK_CHECK_INT(mk_str_hexval('0'), 0);
    MK_CHECK_INT(mk_str_hexval('9'), 9);
    MK_CHECK_INT(mk_str_hexval('a'), 10);
    MK_CHECK_INT(mk_str_hexval('F'), 15);
    MK_CHECK_INT(mk_str_hexval('g'), -1);
    MK_CHECK_INT(mk_str_hexval('/'), -1);
    MK_CHECK_INT(mk_str_hexval((char)0xe0), -1); /* a negative char is no digit */
}

static void test_slices(void)
{
    MK_CHECK(mk_str_caseeq(MK_STR_LIT("Content-Type"), MK_STR_LIT("content-type")));
    MK_CHECK(!mk_str_eq(MK_STR_LIT("ab"), MK_STR_LIT("abc")));
    MK_CHECK(mk_str_starts_with(MK_STR_LIT("/stubs/x"), "/stubs/"));
    char *d = mk_str_dup((mk_str_t){"hello", 3});
    MK_CHECK_STR(d, "hel");
    free(d);
}

int main(void)
{
    MK_RUN(test_buf_refuses_past_max);
    MK_RUN(test_url_decode);
    MK_RUN(test_hexval);
    MK_RUN(test_slices);
    return mk_testing_done();
}
