/* The sandbox: calls, isolation between calls, exceptions, the host function, and the limits
 * (an endless loop, a memory bomb, a huge result) failing cleanly and quickly. */
#include "js/js.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testing/testing.h"

static const char prelude[] = "var counter = 0;\n"
                              "function echo(s) { counter++; return 'got ' + s + ' ' + counter; }\n"
                              "function run(src) { return String(new Function(src)()); }\n"
                              "function host(s) { return __mk_host('upper', s); }\n";

static int host_fn(const void *ud, const char *name, const char *arg, size_t len, char **out,
                   size_t *out_len, mk_err_t *err)
{
    (void)ud;
    if (strcmp(name, "upper") != 0)
        return mk_err_set(err, MK_EINVAL, "no host function %s", name);
    if (strcmp(arg, "fail") == 0)
        return mk_err_set(err, MK_EUNAVAIL, "the host says no");
    *out = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        (*out)[i] = (char)(arg[i] >= 'a' && arg[i] <= 'z' ? arg[i] - 32 : arg[i]);
    (*out)[len] = '\0';
    *out_len = len;
    return 0;
}

static mk_js_t *engine(long timeout_ms, size_t heap)
{
    mk_js_limits_t lim = {.timeout_ms = timeout_ms, .max_heap_bytes = heap};
    mk_js_t *js = NULL;
    mk_err_t err = {0};
    int rc = mk_js_new(&lim, prelude, strlen(prelude), "prelude.js", host_fn, NULL, 0, &js, &err);
    if (rc < 0)
        fprintf(stderr, "mk_js_new: %s\n", err.msg);
    return js;
}

static int run(mk_js_t *js, const char *func, const char *arg, char **out, mk_err_t *err)
{
    return mk_js_call(js, func, arg, strlen(arg), out, NULL, err);
}

static double ms_since(struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_calls_share_state(void)
{
    mk_js_t *js = engine(2000, 0);
    char *out = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(run(js, "echo", "a", &out, &err), 0);
    MK_CHECK_STR(out, "got a 1");
    free(out);
    MK_CHECK_INT(run(js, "echo", "b", &out, &err), 0);
    MK_CHECK_STR(out, "got b 2");
    free(out);
    /* a timeout replaces the worker: back to the prelude's state */
    mk_js_limits_t lim = {.timeout_ms = 300};
    mk_js_t *short_js = NULL;
    MK_CHECK_INT(mk_js_new(&lim, prelude, strlen(prelude), "p", NULL, NULL, 0, &short_js, &err), 0);
    MK_CHECK_INT(run(short_js, "echo", "c", &out, &err), 0);
    free(out);
    MK_CHECK_INT(run(short_js, "run", "for (;;) {}", &out, &err), MK_EUNAVAIL);
    MK_CHECK_INT(run(short_js, "echo", "d", &out, &err), 0);
    MK_CHECK_STR(out, "got d 1");
    free(out);
    mk_js_free(short_js);
    mk_js_free(js);
}

static void test_calls_are_isolated(void)
{
    mk_js_limits_t lim = {.timeout_ms = 2000, .isolate_calls = 1};
    mk_js_t *js = NULL;
    mk_err_t e0 = {0};
    MK_CHECK_INT(mk_js_new(&lim, prelude, strlen(prelude), "p", host_fn, NULL, 0, &js, &e0), 0);
    MK_CHECK(js != NULL);
    char *out = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(run(js, "echo", "a", &out, &err), 0);
    MK_CHECK_STR(out, "got a 1");
    free(out);
    /* the counter the first call raised is gone: each call starts from the prelude's state */
    MK_CHECK_INT(run(js, "echo", "b", &out, &err), 0);
    MK_CHECK_STR(out, "got b 1");
    free(out);
    MK_CHECK_INT(run(js, "run", "counter = 41; return counter + 1", &out, &err), 0);
    MK_CHECK_STR(out, "42");
    free(out);
    MK_CHECK_INT(run(js, "echo", "c", &out, &err), 0);
    MK_CHECK_STR(out, "got c 1");
    free(out);
    mk_js_free(js);
}

static void test_exceptions(void)
{
    mk_js_t *js = engine(2000, 0);
    char *out = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(run(js, "run", "null.x", &out, &err), MK_EINVAL);
    MK_CHECK_STR(err.cause, "exception");
    MK_CHECK(strstr(err.msg, "TypeError") != NULL);
    MK_CHECK_INT(run(js, "run", "throw new Error('boom')", &out, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "Error: boom") != NULL);
    MK_CHECK_INT(run(js, "run", "return (", &out, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "SyntaxError") != NULL);
    MK_CHECK_INT(run(js, "nosuch", "", &out, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "no function nosuch") != NULL);
    /* unbounded recursion is the engine's own RangeError, not a crash */
    MK_CHECK_INT(run(js, "run", "function f() { return f() + 1; } return f();", &out, &err),
                 MK_EINVAL);
    MK_CHECK(strstr(err.msg, "RangeError") != NULL);
    mk_js_free(js);

    mk_js_t *bad = NULL;
    MK_CHECK_INT(mk_js_new(NULL, "function (", 10, "bad.js", NULL, NULL, 0, &bad, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "bad.js") != NULL && strstr(err.msg, "SyntaxError") != NULL);
    MK_CHECK(bad == NULL);
}

static void test_no_io(void)
{
    mk_js_t *js = engine(2000, 0);
    char *out = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(run(js, "run",
                     "return [typeof require, typeof print, typeof alert, typeof XMLHttpRequest, "
                     "typeof process, typeof Duktape.modSearch].join(',')",
                     &out, &err),
                 0);
    MK_CHECK_STR(out, "undefined,undefined,undefined,undefined,undefined,undefined");
    free(out);
    mk_js_free(js);
}

static void test_host_function(void)
{
    mk_js_t *js = engine(2000, 0);
    char *out = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(run(js, "host", "abc", &out, &err), 0);
    MK_CHECK_STR(out, "ABC");
    free(out);
    MK_CHECK_INT(run(js, "host", "fail", &out, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "the host says no") != NULL);
    MK_CHECK_INT(run(js, "run",
                     "try { __mk_host('upper', 'fail') } catch (e) { return 'caught ' "
                     "+ e.message }",
                     &out, &err),
                 0);
    MK_CHECK_STR(out, "caught the host says no");
    free(out);
    mk_js_free(js);
}

static void test_endless_loop_times_out(void)
{
    mk_js_t *js = engine(300, 0);
    char *out = NULL;
    mk_err_t err = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    MK_CHECK_INT(run(js, "run", "for (;;) {}", &out, &err), MK_EUNAVAIL);
    double ms = ms_since(&t0);
    printf("  endless loop stopped after %.0f ms (limit 300)\n", ms);
    MK_CHECK(ms >= 290 && ms < 2000);
    MK_CHECK_STR(err.cause, "timeout");
    MK_CHECK(strstr(err.msg, "300 ms") != NULL);
    /* a catastrophic regular expression is stopped the same way */
    MK_CHECK_INT(run(js, "run", "return /^(a+)+$/.test(new Array(40).join('a') + 'b')", &out, &err),
                 MK_EUNAVAIL);
    /* the engine is still usable afterwards */
    MK_CHECK_INT(run(js, "echo", "x", &out, &err), 0);
    MK_CHECK_STR(out, "got x 1");
    free(out);
    mk_js_free(js);
}

static void test_memory_bomb(void)
{
    mk_js_t *js = engine(10000, (size_t)8 << 20);
    char *out = NULL;
    mk_err_t err = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    MK_CHECK_INT(run(js, "run",
                     "var a = [], s = 'x'; for (var i = 0; i < 17; i++) s += s; "
                     "for (;;) a.push(s + a.length)",
                     &out, &err),
                 MK_ETOOBIG);
    printf("  memory bomb stopped after %.0f ms: %s\n", ms_since(&t0), err.msg);
    MK_CHECK_STR(err.cause, "memory");
    MK_CHECK(strstr(err.msg, "memory") != NULL && strstr(err.msg, "8192 KiB") != NULL);
    /* a bomb that catches the engine's RangeError still fails */
    MK_CHECK_INT(run(js, "run",
                     "var s = 'x'; try { for (;;) s = s + s; } catch (e) { return 'survived' }",
                     &out, &err),
                 MK_ETOOBIG);
    /* many small objects rather than a few big strings */
    MK_CHECK_INT(
        run(js, "run", "var o = {}; for (var i = 0; ; i++) o['k' + i] = [i, {x: i}]", &out, &err),
        MK_ETOOBIG);
    /* a result over the output limit */
    mk_js_limits_t lim = {.max_output_bytes = 1000};
    mk_js_t *small = NULL;
    MK_CHECK_INT(mk_js_new(&lim, prelude, strlen(prelude), "p", NULL, NULL, 0, &small, &err), 0);
    MK_CHECK_INT(run(small, "run", "return new Array(2000).join('y')", &out, &err), MK_ETOOBIG);
    MK_CHECK(strstr(err.msg, "1000 byte") != NULL);
    mk_js_free(small);
    MK_CHECK_INT(run(js, "echo", "y", &out, &err), 0);
    MK_CHECK_STR(out, "got y 1");
    free(out);
    mk_js_free(js);
}

static void test_call_cost(void)
{
    mk_js_t *js = engine(2000, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = 50, ok = 0;
    for (int i = 0; i < n; i++) {
        char *out = NULL;
        mk_err_t err = {0};
        ok += run(js, "echo", "z", &out, &err) == 0;
        free(out);
    }
    MK_CHECK_INT(ok, n);
    printf("  %.2f ms per sandboxed call (a round trip to the worker and the call)\n",
           ms_since(&t0) / n);
    mk_js_free(js);
}

/* Two threads calling their own engines at once: workers from the fork server. */
static void *thread_calls(void *arg)
{
    int *ok = arg;
    mk_js_t *js = engine(5000, 0);
    for (int i = 0; i < 20 && js; i++) {
        char *out = NULL;
        mk_err_t err = {0};
        *ok += run(js, "echo", "t", &out, &err) == 0;
        free(out);
    }
    mk_js_free(js);
    return NULL;
}

static void test_threads_via_server(void)
{
    pthread_t t[3];
    int ok[3] = {0};
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, thread_calls, &ok[i]);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        MK_CHECK_INT(ok[i], 20);
    }
}

static void all(void)
{
    MK_RUN(test_calls_share_state);
    MK_RUN(test_calls_are_isolated);
    MK_RUN(test_exceptions);
    MK_RUN(test_no_io);
    MK_RUN(test_host_function);
    MK_RUN(test_endless_loop_times_out);
    MK_RUN(test_memory_bomb);
    MK_RUN(test_call_cost);
}

int main(void)
{
    /* workers forked straight from this (single-threaded) process, then from the fork server */
    all();
    mk_err_t err = {0};
    MK_CHECK_INT(mk_js_init(&err), 0);
    MK_CHECK_INT(mk_js_init(&err), 0);
    all();
    MK_RUN(test_threads_via_server);
    return mk_testing_done();
}
