/* Tests for the PCRE2 wrapper: search semantics, error messages, UTF handling, JIT, threads. */
#include "regex/regex.h"
#include "testing/testing.h"

#include <pthread.h>
#include <stdlib.h>

static bool m(const char *pattern, const char *subject)
{
    mk_regex_t *re = NULL;
    mk_err_t err = {0};
    if (mk_regex_compile(pattern, &re, &err) != 0) {
        mk_testing_record(false, __FILE__, __LINE__, pattern, err.msg);
        return false;
    }
    bool ok = mk_regex_match(re, mk_str_of(subject));
    mk_regex_free(re);
    return ok;
}

static const char *compile_error(const char *pattern)
{
    static mk_err_t err;
    mk_regex_t *re = NULL;
    mk_err_clear(&err);
    int rc = mk_regex_compile(pattern, &re, &err);
    mk_regex_free(re);
    if (rc == 0)
        return "";
    if (rc != MK_EINVAL || re != NULL)
        return "wrong code or non-NULL out";
    return err.msg;
}

static void test_search_semantics(void)
{
    MK_CHECK(m("abc", "xxabcxx")); /* unanchored, like Go's MatchString */
    MK_CHECK(!m("^abc", "xxabc"));
    MK_CHECK(m("^abc$", "abc"));
    MK_CHECK(!m("^abc$", "abcd"));
    MK_CHECK(m("^[a-z]+-\\d{3}$", "order-123"));
    MK_CHECK(!m("^[a-z]+-\\d{3}$", "order-12"));
    MK_CHECK(m("", "anything"));
    MK_CHECK(m("", ""));
    MK_CHECK(m("^$", ""));
    MK_CHECK(!m("x", ""));
    MK_CHECK(m("(?i)HELLO", "say hello"));
    MK_CHECK(m("(a)(b)(c)(d)(e)", "abcde")); /* more groups than the cached ovector holds */
    MK_CHECK(m("a|b", "b"));
}

static void test_slices_and_nul(void)
{
    mk_regex_t *re = NULL;
    MK_CHECK_INT(mk_regex_compile("^ab$", &re, NULL), 0);
    /* Only len bytes are the subject: "ab" out of "abc". */
    MK_CHECK(mk_regex_match(re, (mk_str_t){"abc", 2}));
    MK_CHECK(!mk_regex_match(re, (mk_str_t){"abc", 3}));
    MK_CHECK(!mk_regex_match(re, (mk_str_t){NULL, 0}));
    mk_regex_free(re);
    MK_CHECK_INT(mk_regex_compile("a\\x00b", &re, NULL), 0);
    MK_CHECK(mk_regex_match(re, (mk_str_t){"xa\0b", 4}));
    mk_regex_free(re);
    MK_CHECK_INT(mk_regex_compile("^$", &re, NULL), 0);
    MK_CHECK(mk_regex_match(re, (mk_str_t){NULL, 0}));
    mk_regex_free(re);
}

static void test_errors(void)
{
    MK_CHECK_STR(compile_error("(abc"), "missing closing parenthesis at offset 4");
    MK_CHECK_STR(compile_error("a[b"), "missing terminating ] for character class at offset 3");
    MK_CHECK_STR(compile_error("*a"), "quantifier does not follow a repeatable item at offset 0");
    MK_CHECK_STR(compile_error("a{2,1}"), "numbers out of order in {} quantifier at offset 5");
    MK_CHECK_STR(compile_error("abc)"), "unmatched closing parenthesis at offset 3");
    MK_CHECK_STR(compile_error("\\"), "\\ at end of pattern at offset 1");
    MK_CHECK_STR(compile_error(NULL), "no pattern");
    mk_regex_t *re = (mk_regex_t *)&re;
    MK_CHECK_INT(mk_regex_compile("(", &re, NULL), MK_EINVAL);
    MK_CHECK(re == NULL);
}

static void test_utf(void)
{
    mk_regex_t *re = NULL;
    /* Valid UTF-8 pattern: '.' is one code point. */
    MK_CHECK_INT(mk_regex_compile("^.$", &re, NULL), 0);
    MK_CHECK(mk_regex_is_utf(re));
    MK_CHECK(mk_regex_match(re, mk_str_of("é")));
    MK_CHECK(mk_regex_match(re, mk_str_of("€")));
    MK_CHECK(!mk_regex_match(re, mk_str_of("ab")));
    /* An invalid UTF-8 subject is not an error: it simply does not match where it is broken. */
    MK_CHECK(!mk_regex_match(re, mk_str_of("\xff")));
    mk_regex_free(re);

    MK_CHECK_INT(mk_regex_compile("ключ-\\d+", &re, NULL), 0);
    MK_CHECK(mk_regex_is_utf(re));
    MK_CHECK(mk_regex_match(re, mk_str_of("id ключ-42")));
    MK_CHECK(mk_regex_match(re, mk_str_of("\xff\xfe ключ-42")));
    MK_CHECK(!mk_regex_match(re, mk_str_of("ключ-x")));
    mk_regex_free(re);

    /* A pattern that is not valid UTF-8 is compiled byte-wise instead of being rejected. */
    MK_CHECK_INT(mk_regex_compile("^\xff.$", &re, NULL), 0);
    MK_CHECK(!mk_regex_is_utf(re));
    MK_CHECK(mk_regex_match(re, (mk_str_t){"\xff\xc3", 2}));
    MK_CHECK(!mk_regex_match(re, mk_str_of("\xff\xc3\xa9"))); /* two bytes, not one char */
    mk_regex_free(re);

    /* Overlong and surrogate encodings are not valid UTF-8 either. */
    MK_CHECK_INT(mk_regex_compile("\xc0\xaf", &re, NULL), 0);
    MK_CHECK(!mk_regex_is_utf(re));
    mk_regex_free(re);
    MK_CHECK_INT(mk_regex_compile("\xed\xa0\x80", &re, NULL), 0);
    MK_CHECK(!mk_regex_is_utf(re));
    mk_regex_free(re);
}

static void test_jit_and_limits(void)
{
    mk_regex_t *re = NULL;
    MK_CHECK_INT(mk_regex_compile("^(a+)+$", &re, NULL), 0);
    MK_CHECK(mk_regex_is_jit(re)); /* x86-64 and arm64 builds of PCRE2 have JIT */
    /* Catastrophic backtracking is cut off by the match limit instead of hanging. */
    char subject[64];
    memset(subject, 'a', sizeof subject - 2);
    subject[sizeof subject - 2] = 'b';
    subject[sizeof subject - 1] = '\0';
    MK_CHECK(!mk_regex_match(re, mk_str_of(subject)));
    MK_CHECK(mk_regex_match(re, mk_str_of("aaaa")));
    mk_regex_free(re);

    /* A legitimate repetition over a long subject stays within the limits. */
    size_t n = 200000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = i % 2 ? 'b' : 'a';
    big[n] = '\0';
    MK_CHECK_INT(mk_regex_compile("^(?:ab)*$", &re, NULL), 0);
    MK_CHECK(mk_regex_match(re, mk_str_of(big)));
    big[n - 1] = 'a';
    MK_CHECK(!mk_regex_match(re, mk_str_of(big)));
    mk_regex_free(re);
    free(big);
    mk_regex_free(NULL);
}

typedef struct worker {
    const mk_regex_t *re;
    int id;
    int wrong;
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    char buf[64];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(buf, sizeof buf, "user-%d-%d", w->id, i);
        bool want_match = i % 3 != 0;
        if (!want_match)
            buf[0] = 'U';
        if (mk_regex_match(w->re, (mk_str_t){buf, (size_t)n}) != want_match)
            w->wrong++;
    }
    return NULL;
}

/* One compiled expression matched from several threads at once; each thread's cached match data
 * is freed by the key destructor at thread exit (LeakSanitizer would report it otherwise). */
static void test_threads(void)
{
    mk_regex_t *re = NULL;
    MK_CHECK_INT(mk_regex_compile("^user-\\d+-\\d+$", &re, NULL), 0);
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){re, i, 0};
        MK_CHECK_INT(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        MK_CHECK_INT(w[i].wrong, 0);
    }
    mk_regex_free(re);
}

static void test_thread_release(void)
{
    mk_regex_thread_release();
    MK_CHECK(m("a", "a")); /* the cache is rebuilt on next use */
    mk_regex_thread_release();
    mk_regex_thread_release(); /* idempotent */
}

int main(void)
{
    MK_RUN(test_search_semantics);
    MK_RUN(test_slices_and_nul);
    MK_RUN(test_errors);
    MK_RUN(test_utf);
    MK_RUN(test_jit_and_limits);
    MK_RUN(test_threads);
    MK_RUN(test_thread_release);
    return mk_testing_done();
}
