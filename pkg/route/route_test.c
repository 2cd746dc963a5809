/* Tests for the route index: matching rules, result order, validation, nearest, and that lookup
 * cost and memory stay flat as routes are added. */
#include "route/route.h"
#include "testing/testing.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
/* From the sanitizer runtime; declared here because GCC does not install its header. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define MAXM 64

/* Everything one lookup yields, with values as ints for easy comparison. */
struct result {
    size_t n;
    int ids[MAXM];
    mk_route_match_t m[MAXM];
};

static int ids[10000];

static void *id(int i)
{
    ids[i] = i;
    return &ids[i];
}

static void lookup(const mk_route_index_t *idx, const char *method, const char *path,
                   struct result *r)
{
    mk_route_iter_t it;
    mk_route_match_t m;
    r->n = 0;
    mk_route_lookup(idx, mk_str_of(method), mk_str_of(path), &it);
    while (mk_route_next(&it, &m)) {
        if (r->n < MAXM) {
            r->ids[r->n] = *(int *)m.value;
            r->m[r->n] = m;
        }
        r->n++;
    }
}

/* The ids of path's matches as "1,2,3" for one-line checks. */
static const char *order(const mk_route_index_t *idx, const char *method, const char *path)
{
    static char buf[512];
    struct result r;
    size_t off = 0;
    lookup(idx, method, path, &r);
    buf[0] = '\0';
    for (size_t i = 0; i < r.n && i < MAXM; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%d", i ? "," : "", r.ids[i]);
    return buf;
}

static bool str_is(mk_str_t s, const char *want)
{
    return mk_str_eq_cstr(s, want);
}

static void add(mk_route_builder_t *b, const char *method, const char *route, int i,
                int64_t priority, int64_t created_at)
{
    mk_err_t err = {0};
    int rc = mk_route_builder_add(b, method, route, id(i), priority, created_at, &err);
    MK_CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "add %s %s: %s\n", method, route, err.msg);
}

static void test_literal_param_wildcard(void)
{
    mk_route_builder_t *b = mk_route_builder_new();
    add(b, "GET", "/users", 1, 0, 0);
    add(b, "GET", "/users/:id", 2, 0, 0);
    add(b, "GET", "/users/:id/posts/:post", 3, 0, 0);
    add(b, "GET", "/files/*", 4, 0, 0);
    add(b, "GET", "/a/b/c", 5, 0, 0);
    mk_route_index_t *idx = mk_route_builder_build(b);
    MK_CHECK(idx != NULL);
    MK_CHECK_INT(mk_route_index_count(idx), 5);

    struct result r;
    const char *path = "/users/42/posts/7";
    lookup(idx, "GET", path, &r);
    MK_CHECK_INT(r.n, 1);
    MK_CHECK_INT(r.ids[0], 3);
    MK_CHECK_INT(r.m[0].nparams, 2);
    MK_CHECK(str_is(r.m[0].names[0], "id") && str_is(r.m[0].values[0], "42"));
    MK_CHECK(str_is(r.m[0].names[1], "post") && str_is(r.m[0].values[1], "7"));
    /* Captured values are slices of the looked-up path, not copies. */
    MK_CHECK(r.m[0].values[0].base == path + 7);
    MK_CHECK_INT(r.m[0].wildcard.len, 0);

    MK_CHECK_STR(order(idx, "GET", "/users"), "1");
    MK_CHECK_STR(order(idx, "GET", "/users/x"), "2");
    /* A parameter needs a non-empty segment; extra or missing segments do not match. */
    MK_CHECK_STR(order(idx, "GET", "/users//posts/7"), "");
    MK_CHECK_STR(order(idx, "GET", "/users/1/posts"), "");
    MK_CHECK_STR(order(idx, "GET", "/users/1/posts/2/3"), "");
    MK_CHECK_STR(order(idx, "GET", "/a/b"), "");
    MK_CHECK_STR(order(idx, "GET", "/a/b/c/d"), "");
    MK_CHECK_STR(order(idx, "POST", "/a/b/c"), "");
    MK_CHECK_STR(order(idx, "GET", "a/b/c"), "");

    /* The wildcard takes the rest, zero or more segments, without the leading '/'. */
    lookup(idx, "GET", "/files/x/y.txt", &r);
    MK_CHECK_INT(r.n, 1);
    MK_CHECK(str_is(r.m[0].wildcard, "x/y.txt"));
    MK_CHECK_INT(r.m[0].nparams, 0);
    lookup(idx, "GET", "/files", &r);
    MK_CHECK_INT(r.n, 1);
    MK_CHECK_INT(r.m[0].wildcard.len, 0);
    lookup(idx, "GET", "/files/", &r);
    MK_CHECK_INT(r.n, 1);
    MK_CHECK_INT(r.m[0].wildcard.len, 0);
    lookup(idx, "GET", "/files/a//b", &r);
    MK_CHECK(r.n == 1 && str_is(r.m[0].wildcard, "a//b"));
    MK_CHECK_STR(order(idx, "GET", "/filesx"), "");
    mk_route_index_free(idx);
}

static void test_root_trailing_slash_and_bytes(void)
{
    mk_route_builder_t *b = mk_route_builder_new();
    add(b, "GET", "/", 1, 0, 0);
    add(b, "GET", "/a/b/", 2, 0, 0);
    add(b, "GET", "/x//y", 3, 0, 0);
    add(b, "GET", "/Case", 4, 0, 0);
    add(b, "GET", "/caf\xc3\xa9/:n", 5, 0, 0);
    add(b, "GET", "/v1/items:batch", 6, 0, 0);
    add(b, "GET", "/p//", 7, 0, 0);
    mk_route_index_t *idx = mk_route_builder_build(b);
    MK_CHECK_STR(order(idx, "GET", "/"), "1");
    MK_CHECK_STR(order(idx, "GET", ""), "1");
    MK_CHECK_STR(order(idx, "GET", "/a/b"), "2");
    MK_CHECK_STR(order(idx, "GET", "/a/b/"), "2");
    MK_CHECK_STR(order(idx, "GET", "/a/b//"), "");
    /* Repeated slashes are significant, not collapsed. */
    MK_CHECK_STR(order(idx, "GET", "/x//y"), "3");
    MK_CHECK_STR(order(idx, "GET", "/x/y"), "");
    MK_CHECK_STR(order(idx, "GET", "/a//b"), "");
    MK_CHECK_STR(order(idx, "GET", "/p//"), "7");
    MK_CHECK_STR(order(idx, "GET", "/p/"), "");
    /* Case-sensitive, bytes as received. */
    MK_CHECK_STR(order(idx, "GET", "/Case"), "4");
    MK_CHECK_STR(order(idx, "GET", "/case"), "");
    MK_CHECK_STR(order(idx, "GET", "/caf\xc3\xa9/1"), "5");
    MK_CHECK_STR(order(idx, "GET", "/cafe/1"), "");
    MK_CHECK_STR(order(idx, "GET", "/v1/items:batch"), "6");
    mk_route_index_free(idx);
}

static void test_ordering(void)
{
    mk_route_builder_t *b = mk_route_builder_new();
    /* Order ignores specificity: priority, then created_at, then insertion. */
    add(b, "GET", "/u/me", 1, 0, 100);
    add(b, "GET", "/u/:id", 2, 5, 100);
    add(b, "ANY", "/u/*", 3, 5, 200);
    add(b, "GET", "/*", 4, 1, 0);
    add(b, "ANY", "/u/:x", 5, 0, 100);
    add(b, "GET", "/u/me", 6, 0, 100);
    add(b, "GET", "/u/me/", 7, 0, 50);
    add(b, "POST", "/u/me", 8, 99, 0);
    add(b, "GET", "/u/*", 9, -3, 0);
    mk_route_index_t *idx = mk_route_builder_build(b);
    /* 3 (p5, t200) > 2 (p5, t100) > 4 (p1) > p0/t100 by insertion desc: 6, 5, 1 > 7 (t50) > 9. */
    MK_CHECK_STR(order(idx, "GET", "/u/me"), "3,2,4,6,5,1,7,9");
    MK_CHECK_STR(order(idx, "get", "/u/me"), "3,2,4,6,5,1,7,9");
    MK_CHECK_STR(order(idx, "GET", "/u/other"), "3,2,4,5,9");
    MK_CHECK_STR(order(idx, "POST", "/u/me"), "8,3,5");
    MK_CHECK_STR(order(idx, "DELETE", "/u/me"), "3,5");
    MK_CHECK_STR(order(idx, "BREW", "/u/me"), "3,5");
    MK_CHECK_STR(order(idx, "GET", "/u"), "3,4,9");
    MK_CHECK_STR(order(idx, "GET", "/"), "4");

    /* Each match reports its own captures. */
    struct result r;
    lookup(idx, "GET", "/u/other", &r);
    MK_CHECK(str_is(r.m[0].wildcard, "other") && r.m[0].nparams == 0);
    MK_CHECK(r.m[1].nparams == 1 && str_is(r.m[1].names[0], "id"));
    MK_CHECK(str_is(r.m[1].values[0], "other") && r.m[1].wildcard.len == 0);
    MK_CHECK(str_is(r.m[2].wildcard, "u/other"));
    MK_CHECK(r.m[3].nparams == 1 && str_is(r.m[3].names[0], "x"));
    mk_route_index_free(idx);
}

static void test_names_per_entry(void)
{
    mk_route_builder_t *b = mk_route_builder_new();
    add(b, "GET", "/u/:id", 1, 2, 0);
    add(b, "GET", "/u/:uid", 2, 1, 0);
    add(b, "GET", "/u/:a/:b", 3, 0, 0);
    add(b, "GET", "/u/:c/:d-e_F9", 4, 1, 0);
    mk_route_index_t *idx = mk_route_builder_build(b);
    struct result r;
    lookup(idx, "GET", "/u/7", &r);
    MK_CHECK_INT(r.n, 2);
    MK_CHECK(r.ids[0] == 1 && str_is(r.m[0].names[0], "id") && str_is(r.m[0].values[0], "7"));
    MK_CHECK(r.ids[1] == 2 && str_is(r.m[1].names[0], "uid") && str_is(r.m[1].values[0], "7"));
    lookup(idx, "GET", "/u/7/8/", &r);
    MK_CHECK_INT(r.n, 2);
    MK_CHECK(r.ids[0] == 4 && str_is(r.m[0].names[0], "c") && str_is(r.m[0].names[1], "d-e_F9"));
    MK_CHECK(str_is(r.m[0].values[0], "7") && str_is(r.m[0].values[1], "8"));
    MK_CHECK(r.ids[1] == 3 && str_is(r.m[1].names[0], "a") && str_is(r.m[1].names[1], "b"));
    mk_route_index_free(idx);
}

static void expect_invalid(const char *route, const char *fragment)
{
    mk_err_t err = {0};
    int rc = mk_route_validate(route, &err);
    MK_CHECK_INT(rc, MK_EINVAL);
    MK_CHECK(strstr(err.msg, fragment) != NULL);
    if (strstr(err.msg, fragment) == NULL)
        fprintf(stderr, "  message for %s: %s\n", route ? route : "NULL", err.msg);
}

static void test_validation(void)
{
    expect_invalid("users", "must start with '/'");
    expect_invalid("", "must start with '/'");
    expect_invalid(NULL, "must start with '/'");
    expect_invalid("/a/:", "empty parameter name at offset 3");
    expect_invalid("/a/:/b", "empty parameter name at offset 3");
    expect_invalid("/a/:x.y", "invalid character '.'");
    expect_invalid("/a/*/b", "'*' at offset 3 must be the last segment");
    expect_invalid("/*/*", "'*' at offset 1 must be the last segment");
    expect_invalid("/:a/:a", "duplicate parameter name ':a'");
    expect_invalid("/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p/:q", "more than 16");
    MK_CHECK_INT(mk_route_validate("/:a/:b/:c/:d/:e/:f/:g/:h/:i/:j/:k/:l/:m/:n/:o/:p", NULL), 0);
    char deep[2 * 257 + 1] = "";
    for (int i = 0; i < 256; i++)
        strcat(deep, "/a");
    MK_CHECK_INT(mk_route_validate(deep, NULL), 0);
    strcat(deep, "/a");
    expect_invalid(deep, "more than 256 segments");
    MK_CHECK_INT(mk_route_validate("/", NULL), 0);
    MK_CHECK_INT(mk_route_validate("/*", NULL), 0);
    MK_CHECK_INT(mk_route_validate("/a/*/", NULL), 0);
    MK_CHECK_INT(mk_route_validate("/a:b/x*y/*", NULL), 0);

    mk_route_builder_t *b = mk_route_builder_new();
    mk_err_t err = {0};
    MK_CHECK_INT(mk_route_builder_add(b, "GET", "nope", id(1), 0, 0, &err), MK_EINVAL);
    MK_CHECK_INT(mk_route_builder_add(b, "", "/a", id(1), 0, 0, &err), MK_EINVAL);
    MK_CHECK_INT(mk_route_builder_add(b, "GE T", "/a", id(1), 0, 0, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "method") != NULL);
    MK_CHECK_INT(mk_route_builder_add(b, NULL, "/a", id(1), 0, 0, NULL), MK_EINVAL);
    MK_CHECK_INT(mk_route_builder_add(b, "brew", "/a", id(2), 0, 0, &err), 0);
    mk_route_index_t *idx = mk_route_builder_build(b);
    MK_CHECK_INT(mk_route_index_count(idx), 1);
    MK_CHECK_STR(order(idx, "BREW", "/a"), "2");
    MK_CHECK_STR(order(idx, "GET", "/a"), "");
    mk_route_index_free(idx);

    /* NULL-safety of the free functions and of an index that was never built. */
    mk_route_builder_free(NULL);
    mk_route_index_free(NULL);
    mk_route_builder_free(mk_route_builder_new());
    MK_CHECK_STR(order(NULL, "GET", "/a"), "");
    idx = mk_route_builder_build(mk_route_builder_new());
    MK_CHECK_INT(mk_route_index_count(idx), 0);
    MK_CHECK_STR(order(idx, "GET", "/"), "");
    mk_route_index_free(idx);
}

/* More matching leaves than cursors: the best ones survive, in order. */
static void test_cursor_cap(void)
{
    mk_route_builder_t *b = mk_route_builder_new();
    /* Every mix of literal "a" and a parameter over 5 segments matches /a/a/a/a/a: 32 leaves. */
    for (int mask = 0; mask < 32; mask++) {
        char route[64];
        size_t off = 0;
        for (int d = 0; d < 5; d++) {
            if (mask & (1 << d))
                off += (size_t)snprintf(route + off, sizeof route - off, "/:p%d", d);
            else
                off += (size_t)snprintf(route + off, sizeof route - off, "/a");
        }
        /* Priorities scrambled relative to insertion and tree order. */
        add(b, "GET", route, mask, (mask * 7) % 32, 0);
    }
    mk_route_index_t *idx = mk_route_builder_build(b);
    struct result r;
    lookup(idx, "GET", "/a/a/a/a/a", &r);
    MK_CHECK_INT(r.n, MK_ROUTE_MAX_CURSORS);
    for (size_t i = 0; i < r.n && i < MAXM; i++) {
        int want_priority = 31 - (int)i;
        MK_CHECK_INT((r.ids[i] * 7) % 32, want_priority);
    }
    mk_route_index_free(idx);
}

static void test_nearest(void)
{
    mk_route_builder_t *b = mk_route_builder_new();
    add(b, "GET", "/api/users", 1, 0, 0);
    add(b, "GET", "/api/users/:id", 2, 0, 0);
    add(b, "POST", "/api/users/search", 3, 0, 0);
    add(b, "ANY", "/api/orders", 4, 0, 0);
    add(b, "GET", "/health", 5, 0, 0);
    add(b, "DELETE", "/api/users/:id/x", 6, 0, 0);
    mk_route_index_t *idx = mk_route_builder_build(b);
    void *out[16];
    size_t n;

    /* /api/users reached in GET, POST, DELETE; GET first (own method), shallow first. */
    n = mk_route_nearest(idx, MK_STR_LIT("GET"), MK_STR_LIT("/api/users/1/zzz/q"), out, 16);
    MK_CHECK_INT(n, 4);
    MK_CHECK(n == 4 && *(int *)out[0] == 1 && *(int *)out[1] == 2);
    MK_CHECK(n == 4 && (*(int *)out[2] == 3 || *(int *)out[2] == 6));
    MK_CHECK(n == 4 && (*(int *)out[3] == 3 || *(int *)out[3] == 6));

    /* Only POST reaches /api/users/search: wrong-method diagnosis. */
    n = mk_route_nearest(idx, MK_STR_LIT("GET"), MK_STR_LIT("/api/users/search"), out, 16);
    MK_CHECK(n == 1 && *(int *)out[0] == 3);

    /* Deepest is /api: ANY's entry comes with the method's own, before the others. */
    n = mk_route_nearest(idx, MK_STR_LIT("PUT"), MK_STR_LIT("/api/nothing"), out, 16);
    MK_CHECK_INT(n, 5);
    MK_CHECK(n == 5 && *(int *)out[0] == 4);

    n = mk_route_nearest(idx, MK_STR_LIT("GET"), MK_STR_LIT("/api/nothing"), out, 2);
    MK_CHECK_INT(n, 2);
    n = mk_route_nearest(idx, MK_STR_LIT("GET"), MK_STR_LIT("/api"), out, 0);
    MK_CHECK_INT(n, 0);
    n = mk_route_nearest(NULL, MK_STR_LIT("GET"), MK_STR_LIT("/api"), out, 4);
    MK_CHECK_INT(n, 0);
    /* Nothing shared: the whole index, ANY then the method's own, each shallowest first. */
    n = mk_route_nearest(idx, MK_STR_LIT("GET"), MK_STR_LIT("/zzz"), out, 16);
    MK_CHECK_INT(n, 6);
    MK_CHECK(n == 6 && *(int *)out[0] == 4 && *(int *)out[1] == 5 && *(int *)out[2] == 1);
    mk_route_index_free(idx);
}

/* ---- scale ---- */

#define LARGE 10000

static void route_for(int i, char *method, char *route, char *path, size_t cap)
{
    switch (i % 4) {
    case 0:
        strcpy(method, "GET");
        snprintf(route, cap, "/svc%d/users/:id", i);
        snprintf(path, cap, "/svc%d/users/u%d", i, i);
        break;
    case 1:
        strcpy(method, "POST");
        snprintf(route, cap, "/api/v%d/items%d/:item/parts/:part", i % 7, i);
        snprintf(path, cap, "/api/v%d/items%d/i%d/parts/p%d", i % 7, i, i, i);
        break;
    case 2:
        strcpy(method, "ANY");
        snprintf(route, cap, "/static%d/*", i);
        snprintf(path, cap, "/static%d/f/%d.css", i, i);
        break;
    default:
        strcpy(method, "GET");
        snprintf(route, cap, "/lit/%d/x", i);
        snprintf(path, cap, "/lit/%d/x", i);
        break;
    }
}

static mk_route_index_t *build_n(int n)
{
    mk_route_builder_t *b = mk_route_builder_new();
    for (int i = 0; i < n; i++) {
        char method[8], route[96], path[96];
        route_for(i, method, route, path, sizeof route);
        add(b, method, route, i, i % 3, i);
    }
    return mk_route_builder_build(b);
}

static bool check_one(const mk_route_index_t *idx, int i)
{
    char method[8], route[96], path[96], want[32];
    struct result r;
    route_for(i, method, route, path, sizeof route);
    lookup(idx, strcmp(method, "ANY") == 0 ? "PUT" : method, path, &r);
    if (r.n != 1 || r.ids[0] != i)
        return false;
    switch (i % 4) {
    case 0:
        snprintf(want, sizeof want, "u%d", i);
        return r.m[0].nparams == 1 && str_is(r.m[0].names[0], "id") &&
               str_is(r.m[0].values[0], want);
    case 1:
        snprintf(want, sizeof want, "p%d", i);
        return r.m[0].nparams == 2 && str_is(r.m[0].names[1], "part") &&
               str_is(r.m[0].values[1], want);
    case 2:
        snprintf(want, sizeof want, "f/%d.css", i);
        return str_is(r.m[0].wildcard, want);
    default:
        return r.m[0].nparams == 0;
    }
}

static void test_large(void)
{
    mk_route_index_t *idx = build_n(LARGE);
    MK_CHECK(idx != NULL);
    MK_CHECK_INT(mk_route_index_count(idx), LARGE);
    int bad = 0;
    for (int i = 0; i < LARGE; i++) {
        if (!check_one(idx, i)) {
            if (bad++ < 5)
                fprintf(stderr, "  lookup of route %d wrong\n", i);
        }
    }
    MK_CHECK_INT(bad, 0);
    MK_CHECK_STR(order(idx, "GET", "/svc4/users"), "");
    MK_CHECK_STR(order(idx, "GET", "/lit/4/x"), "");
    MK_CHECK_STR(order(idx, "POST", "/svc4/users/1"), "");
    mk_route_index_free(idx);
}

static size_t allocated_bytes(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

static void test_memory(void)
{
    size_t before = allocated_bytes();
    mk_route_index_t *idx = build_n(LARGE);
    size_t after = allocated_bytes();
    size_t used = after - before;
    if (before == 0 && after == 0) {
        /* A replaced allocator (valgrind) reports nothing; there is nothing to measure. */
        fprintf(stderr, "  allocator statistics unavailable, memory not measured\n");
        mk_route_index_free(idx);
        return;
    }
    fprintf(stderr, "  %d routes use %zu bytes (%zu per route)\n", LARGE, used, used / LARGE);
    MK_CHECK(used > 0);
    MK_CHECK(used < 6u * 1024 * 1024);
    mk_route_index_free(idx);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Best of 5 rounds of iters lookups cycling over the given paths. */
static double best_ns(const mk_route_index_t *idx, char paths[][96], char methods[][8], int npaths,
                      int iters)
{
    double best = 0;
    volatile size_t sink = 0;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        for (int k = 0; k < iters; k++) {
            mk_route_iter_t it;
            mk_route_match_t m;
            int p = k % npaths;
            mk_route_lookup(idx, mk_str_of(methods[p]), mk_str_of(paths[p]), &it);
            while (mk_route_next(&it, &m))
                sink += m.nparams;
        }
        double t = now_ns() - t0;
        if (round == 0 || t < best)
            best = t;
    }
    (void)sink;
    return best / iters;
}

static void test_lookup_cost_is_flat(void)
{
    char small_paths[10][96], large_paths[10][96], small_m[10][8], large_m[10][8];
    char route[96];
    mk_route_index_t *small = build_n(10);
    mk_route_index_t *large = build_n(LARGE);
    for (int k = 0; k < 10; k++) {
        /* The same shapes in both indexes; the large one's spread over all its routes. */
        route_for(k, small_m[k], route, small_paths[k], sizeof route);
        route_for(k * 997 + k % 4 - (k * 997) % 4, large_m[k], route, large_paths[k], sizeof route);
        if (strcmp(small_m[k], "ANY") == 0)
            strcpy(small_m[k], "GET");
        if (strcmp(large_m[k], "ANY") == 0)
            strcpy(large_m[k], "GET");
    }
    int iters = 200000;
    double s = best_ns(small, small_paths, small_m, 10, iters);
    double l = best_ns(large, large_paths, large_m, 10, iters);
    fprintf(stderr, "  lookup: 10 routes %.0f ns, %d routes %.0f ns (ratio %.2f)\n", s, LARGE, l,
            l / s);
    MK_CHECK(l <= 5 * s);
    mk_route_index_free(small);
    mk_route_index_free(large);
}

struct reader {
    const mk_route_index_t *idx;
    int start;
    int bad;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    for (int n = 0; n < 20000; n++) {
        if (!check_one(r->idx, (r->start + n * 13) % LARGE))
            r->bad++;
    }
    return NULL;
}

/* The built index is shared by readers with no locking. */
static void test_concurrent_readers(void)
{
    mk_route_index_t *idx = build_n(LARGE);
    pthread_t th[4];
    struct reader rd[4];
    for (int i = 0; i < 4; i++) {
        rd[i] = (struct reader){idx, i * 2500, 0};
        MK_CHECK_INT(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        MK_CHECK_INT(rd[i].bad, 0);
    }
    mk_route_index_free(idx);
}

/* One node with 40,000 literal children (a namespace of /x/<n> routes, rebuilt on every write)
 * builds in linear-ish time: inserting edges in order made it quadratic (seconds). */
static void test_wide_node_build_is_not_quadratic(void)
{
    enum { N = 40000 };
    static char routes[N][24];
    mk_route_builder_t *b = mk_route_builder_new();
    mk_err_t err;
    for (int i = 0; i < N; i++) {
        snprintf(routes[i], sizeof routes[i], "/x/%d", (i * 7919) % N);
        MK_CHECK_INT(mk_route_builder_add(b, "GET", routes[i], routes[i], 0, i, &err), 0);
    }
    double t0 = now_ns();
    mk_route_index_t *idx = mk_route_builder_build(b);
    double ms = (now_ns() - t0) / 1e6;
    printf("  build of %d siblings: %.1f ms\n", N, ms);
    MK_CHECK(idx != NULL);
    MK_CHECK(ms < 1000);
    mk_route_iter_t it;
    mk_route_match_t m;
    mk_route_lookup(idx, MK_STR_LIT("GET"), MK_STR_LIT("/x/123"), &it);
    MK_CHECK(mk_route_next(&it, &m) && strcmp(m.value, "/x/123") == 0);
    mk_route_lookup(idx, MK_STR_LIT("GET"), MK_STR_LIT("/x/40000"), &it);
    MK_CHECK(!mk_route_next(&it, &m));
    mk_route_index_free(idx);
}

int main(void)
{
    MK_RUN(test_wide_node_build_is_not_quadratic);
    MK_RUN(test_literal_param_wildcard);
    MK_RUN(test_root_trailing_slash_and_bytes);
    MK_RUN(test_ordering);
    MK_RUN(test_names_per_entry);
    MK_RUN(test_validation);
    MK_RUN(test_cursor_cap);
    MK_RUN(test_nearest);
    MK_RUN(test_large);
    MK_RUN(test_memory);
    MK_RUN(test_lookup_cost_is_flat);
    MK_RUN(test_concurrent_readers);
    return mk_testing_done();
}
