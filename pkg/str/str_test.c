/* Tests for slices and bounded buffers. */
#include "err/err.h"
#include "str/str.h"
#include "testing/testing.h"

#include <stdlib.h>
#include <string.h>

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

static void test_to_i64(void)
{
    int64_t v = 0;
    MK_CHECK(mk_str_to_i64(MK_STR_LIT("-9223372036854775808"), &v) && v == INT64_MIN);
    MK_CHECK(mk_str_to_i64(MK_STR_LIT("9223372036854775807"), &v) && v == INT64_MAX);
    MK_CHECK(mk_str_to_i64(MK_STR_LIT("+007"), &v) && v == 7);
    MK_CHECK(!mk_str_to_i64(MK_STR_LIT("9223372036854775808"), &v));
    MK_CHECK(!mk_str_to_i64(MK_STR_LIT("-9223372036854775809"), &v));
    MK_CHECK(!mk_str_to_i64(MK_STR_LIT("-"), &v));
    MK_CHECK(!mk_str_to_i64(MK_STR_LIT(""), &v));
    MK_CHECK(!mk_str_to_i64(MK_STR_LIT("12a"), &v));
    MK_CHECK(!mk_str_to_i64(MK_STR_LIT(" 1"), &v));
}

static void test_utf8_seq(void)
{
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"a", 1},
        {"\xc3\xa9", 2},
        {"\xe2\x82\xac", 3},
        {"\xf0\x9f\x98\x80", 4},
        {"\xc1\xbf", 0},
        /* overlong */ {"\xe0\x9f\xbf", 0}, /* overlong */
        {"\xed\xa0\x80", 0},
        /* surrogate */ {"\xf4\x90\x80\x80", 0}, /* past U+10FFFF */
        {"\xe2\x82", 0},
        /* cut short */ {"\x80", 0},
        {"\xc3\x28", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        MK_CHECK_INT(mk_str_utf8_seq((const unsigned char *)cases[i].s, strlen(cases[i].s)),
                     cases[i].len);
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
    MK_RUN(test_to_i64);
    MK_RUN(test_utf8_seq);
    MK_RUN(test_slices);
    return mk_testing_done();
}
