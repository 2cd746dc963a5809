/* Tests for the request journal: byte bound, truncation, queries, verification patterns, the
 * unmatched aggregate and concurrent producers. */
#include "journal/journal.h"
#include "testing/testing.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

static mk_journal_rec_t rec_of(const char *ns, const char *mock, const char *method,
                               const char *path)
{
    return (mk_journal_rec_t){.ts_ms = 1700000000000,
                              .namespace_ = mk_str_of(ns),
                              .mock_id = mk_str_of(mock),
                              .method = mk_str_of(method),
                              .path = mk_str_of(path),
                              .status = 200,
                              .duration_ms = 1.5,
                              .request_id = MK_STR_LIT("req")};
}

/* Records, syncing and retrying while the ring is full (tests only; workers drop instead). */
static void put(mk_journal_t *j, unsigned producer, const mk_journal_rec_t *r)
{
    while (!mk_journal_record(j, producer, r))
        mk_journal_sync(j);
}

static const char *get_str(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

static void test_byte_bound_evicts_oldest(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 1);
    mk_journal_rec_t r = rec_of("ns", "m", "GET", "/0");
    MK_CHECK(mk_journal_record(j, 0, &r));
    size_t one = mk_journal_bytes(j);
    MK_CHECK(one > 0);
    MK_CHECK_INT(mk_journal_entries(j), 1);
    mk_journal_free(j);

    j = mk_journal_new(3 * one + one / 2, 1024, 1);
    char path[8];
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/%d", i);
        r = rec_of("ns", "m", "GET", path);
        MK_CHECK(mk_journal_record(j, 0, &r));
    }
    MK_CHECK_INT(mk_journal_entries(j), 3);
    MK_CHECK_INT(mk_journal_bytes(j), 3 * one);
    size_t total = 0;
    json_t *list = mk_journal_query(j, NULL, &total);
    MK_CHECK_INT(total, 3);
    MK_CHECK_INT(json_array_size(list), 3);
    MK_CHECK_STR(get_str(json_array_get(list, 0), "request", "path"), "/4");
    MK_CHECK_STR(get_str(json_array_get(list, 2), "request", "path"), "/2");
    /* Ids count every entry ever filed, evicted ones included. */
    MK_CHECK_STR(get_str(json_array_get(list, 0), "id", NULL), "5");
    MK_CHECK_STR(get_str(json_array_get(list, 2), "id", NULL), "3");
    json_decref(list);

    /* An entry larger than the whole bound is not kept. */
    char big[4096];
    memset(big, 'x', sizeof big);
    r = rec_of("ns", "m", "GET", "/big");
    r.body = (mk_str_t){big, sizeof big};
    mk_journal_t *small = mk_journal_new(one * 2, sizeof big, 1);
    MK_CHECK(mk_journal_record(small, 0, &r));
    MK_CHECK_INT(mk_journal_entries(small), 0);
    MK_CHECK_INT(mk_journal_bytes(small), 0);
    mk_journal_free(small);
    mk_journal_free(j);
}

static void test_body_truncation_and_json(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 8, 1);
    mk_journal_rec_t r = rec_of("ns", "m", "POST", "/t");
    r.body = MK_STR_LIT("{\"a\": 1, \"b\": 2}");
    MK_CHECK(mk_journal_record(j, 0, &r));
    r.body = MK_STR_LIT("{\"a\":1}");
    MK_CHECK(mk_journal_record(j, 0, &r));
    r.body = MK_STR_LIT("ab\xff"
                        "c");
    MK_CHECK(mk_journal_record(j, 0, &r));
    json_t *list = mk_journal_query(j, NULL, NULL);
    MK_CHECK_INT(json_array_size(list), 3);

    json_t *bin = json_object_get(json_array_get(list, 0), "request");
    MK_CHECK_STR(json_string_value(json_object_get(bin, "body")), "ab\xef\xbf\xbd"
                                                                  "c");
    MK_CHECK(json_object_get(bin, "json") == NULL);

    json_t *small = json_object_get(json_array_get(list, 1), "request");
    MK_CHECK_STR(json_string_value(json_object_get(small, "body")), "{\"a\":1}");
    MK_CHECK(json_is_false(json_object_get(small, "bodyTruncated")));
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(small, "json"), "a")), 1);

    json_t *cut = json_object_get(json_array_get(list, 2), "request");
    MK_CHECK_STR(json_string_value(json_object_get(cut, "body")), "{\"a\": 1,");
    MK_CHECK(json_is_true(json_object_get(cut, "bodyTruncated")));
    MK_CHECK(json_object_get(cut, "json") == NULL);
    json_decref(list);
    mk_journal_free(j);
}

static void record_set(mk_journal_t *j)
{
    mk_header_t h[] = {{MK_STR_LIT("X-A"), MK_STR_LIT("1")},
                       {MK_STR_LIT("Accept"), MK_STR_LIT("text/html")},
                       {MK_STR_LIT("x-a"), MK_STR_LIT("2")}};
    mk_journal_rec_t r = rec_of("a", "m1", "GET", "/users");
    r.query = MK_STR_LIT("id=7");
    r.headers = h;
    r.nheaders = 3;
    r.body = MK_STR_LIT("hello world");
    r.request_id = MK_STR_LIT("rid-1");
    r.status = 201;
    r.duration_ms = 2.25;
    put(j, 0, &r); /* id 1 */
    r = rec_of("a", "", "POST", "/orders");
    r.body = MK_STR_LIT("{\"total\": 3}");
    put(j, 0, &r); /* id 2 */
    r = rec_of("b", "m2", "GET", "/users");
    put(j, 0, &r); /* id 3 */
    r = rec_of("b", "", "DELETE", "/users/1");
    put(j, 0, &r); /* id 4 */
    r = rec_of("a", "m1", "get", "/users");
    put(j, 0, &r); /* id 5 */
}

static void test_query_filters(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 1);
    record_set(j);
    size_t total = 0;
    json_t *all = mk_journal_query(j, NULL, &total);
    MK_CHECK_INT(total, 5);
    MK_CHECK_STR(get_str(json_array_get(all, 0), "id", NULL), "5");
    MK_CHECK_STR(get_str(json_array_get(all, 4), "id", NULL), "1");

    json_t *first = json_array_get(all, 4);
    MK_CHECK_STR(get_str(first, "namespace", NULL), "a");
    MK_CHECK_STR(get_str(first, "mockId", NULL), "m1");
    MK_CHECK_STR(get_str(first, "request", "query"), "id=7");
    MK_CHECK_STR(get_str(first, "request", "body"), "hello world");
    MK_CHECK_STR(get_str(first, "requestId", NULL), "rid-1");
    MK_CHECK_INT(json_integer_value(json_object_get(first, "timestamp")), 1700000000000);
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(first, "response"), "status")),
                 201);
    MK_CHECK(json_real_value(json_object_get(first, "durationMs")) == 2.25);
    json_t *hdrs = json_object_get(json_object_get(first, "request"), "headers");
    MK_CHECK_INT(json_object_size(hdrs), 2);
    json_t *xa = json_object_get(hdrs, "X-A");
    MK_CHECK_INT(json_array_size(xa), 2);
    MK_CHECK_STR(json_string_value(json_array_get(xa, 1)), "2");
    MK_CHECK_STR(json_string_value(json_array_get(json_object_get(hdrs, "Accept"), 0)),
                 "text/html");
    MK_CHECK(json_is_null(json_object_get(json_array_get(all, 1), "mockId")));
    json_decref(all);

    mk_journal_filter_t f = {.namespace_ = "a"};
    json_t *l = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 3);
    json_decref(l);

    f = (mk_journal_filter_t){.mock_id = ""};
    l = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 2);
    MK_CHECK_STR(get_str(json_array_get(l, 0), "request", "path"), "/users/1");
    json_decref(l);

    f = (mk_journal_filter_t){.method = "GET", .path = "/users"};
    l = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 3); /* ids 5 ("get"), 3, 1 */
    json_decref(l);

    f = (mk_journal_filter_t){.method = "GET", .limit = 1, .offset = 1};
    l = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 3);
    MK_CHECK_INT(json_array_size(l), 1);
    MK_CHECK_STR(get_str(json_array_get(l, 0), "id", NULL), "3");
    json_decref(l);

    f = (mk_journal_filter_t){.offset = 10};
    l = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 5);
    MK_CHECK_INT(json_array_size(l), 0);
    json_decref(l);

    f = (mk_journal_filter_t){.namespace_ = "b", .mock_id = "m2"};
    l = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 1);
    json_decref(l);
    mk_journal_free(j);
}

/* Count of pattern (a JSON text), or -1 with err filled. */
static long count_of(mk_journal_t *j, const char *pattern, mk_err_t *err)
{
    json_t *p = json_loads(pattern, 0, NULL);
    if (p == NULL)
        return -2;
    size_t n = 0;
    int rc = mk_journal_count(j, p, &n, err);
    json_decref(p);
    return rc == 0 ? (long)n : rc;
}

static void test_count_patterns(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 1);
    record_set(j);
    mk_err_t err = {0};
    MK_CHECK_INT(count_of(j, "{}", &err), 5);
    MK_CHECK_INT(count_of(j, "{\"method\": \"GET\"}", &err), 3);
    MK_CHECK_INT(count_of(j, "{\"method\": \"ANY\"}", &err), 5);
    MK_CHECK_INT(count_of(j, "{\"url\": \"/users?id=7\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"url\": \"/users\"}", &err), 2);
    MK_CHECK_INT(count_of(j, "{\"path\": \"/users\"}", &err), 3);
    MK_CHECK_INT(count_of(j, "{\"urlPath\": \"/users\"}", &err), 3);
    MK_CHECK_INT(count_of(j, "{\"urlPattern\": \"/users\\\\?id=[0-9]+\"}", &err), 1);
    /* The pattern must match the whole url, not a part of it. */
    MK_CHECK_INT(count_of(j, "{\"urlPattern\": \"/users\"}", &err), 2);
    MK_CHECK_INT(count_of(j, "{\"urlPattern\": \"/user\"}", &err), 0);
    MK_CHECK_INT(count_of(j, "{\"pathPattern\": \"/users|/users/[0-9]+\"}", &err), 4);
    MK_CHECK_INT(count_of(j, "{\"urlPathPattern\": \"/(orders|nothing)\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"mockId\": \"m1\"}", &err), 2);
    MK_CHECK_INT(count_of(j, "{\"namespace\": \"b\"}", &err), 2);
    MK_CHECK_INT(count_of(j, "{\"namespace\": \"b\", \"method\": \"DELETE\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"x-a\": \"2\"}}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"X-A\": {\"equalTo\": \"3\"}}}", &err), 0);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"accept\": {\"contains\": \"html\"}}}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"Accept\": {\"matches\": \"text/.*\"}}}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"Accept\": {\"matches\": \"text\"}}}", &err), 0);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"Missing\": \"x\"}}", &err), 0);
    MK_CHECK_INT(count_of(j, "{\"bodyContains\": \"world\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"bodyContains\": \"total\", \"method\": \"POST\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"bodyContains\": \"nothing\"}", &err), 0);

    mk_err_clear(&err);
    MK_CHECK_INT(count_of(j, "{\"urlPattern\": \"(unclosed\"}", &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "urlPattern") != NULL);
    mk_err_clear(&err);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"A\": {\"matches\": \"[z-a]\"}}}", &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "headers.A.matches") != NULL);
    mk_err_clear(&err);
    MK_CHECK_INT(count_of(j, "{\"method\": \"GET\", \"verb\": \"GET\"}", &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "verb") != NULL);
    mk_err_clear(&err);
    MK_CHECK_INT(count_of(j, "{\"headers\": {\"A\": {\"startsWith\": \"x\"}}}", &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "startsWith") != NULL);
    mk_err_clear(&err);
    MK_CHECK_INT(count_of(j, "{\"method\": 1}", &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "method") != NULL);
    MK_CHECK_INT(count_of(j, "[]", &err), MK_EINVAL);
    mk_journal_free(j);
}

/* Protocol calls keep their protocol, operation and response summary; plain HTTP reads "http". */
static void test_protocols(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 8, 1);
    mk_journal_rec_t http = rec_of("a", "m1", "GET", "/users");
    mk_journal_rec_t grpc = rec_of("a", "m2", "GRPC", "/shop.Cart/Get");
    grpc.protocol = MK_STR_LIT("grpc");
    grpc.operation = MK_STR_LIT("shop.Cart/Get");
    grpc.response = MK_STR_LIT("{\"items\": [1, 2, 3]}");
    put(j, 0, &http);
    put(j, 0, &grpc);
    mk_journal_sync(j);

    mk_journal_filter_t f = {.protocol = "grpc"};
    size_t total = 0;
    json_t *items = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 1);
    json_t *e = json_array_get(items, 0);
    MK_CHECK_STR(get_str(e, "protocol", NULL), "grpc");
    MK_CHECK_STR(get_str(e, "operation", NULL), "shop.Cart/Get");
    /* The summary is cut at body_max like a request body. */
    MK_CHECK_STR(get_str(e, "response", "body"), "{\"items\"");
    json_decref(items);

    f.protocol = "http";
    items = mk_journal_query(j, &f, &total);
    MK_CHECK_INT(total, 1);
    e = json_array_get(items, 0);
    MK_CHECK_STR(get_str(e, "protocol", NULL), "http");
    MK_CHECK(json_object_get(e, "operation") == NULL);
    MK_CHECK(json_object_get(json_object_get(e, "response"), "body") == NULL);
    json_decref(items);

    mk_err_t err = {0};
    MK_CHECK_INT(count_of(j, "{\"protocol\": \"grpc\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"protocol\": \"http\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"operation\": \"shop.Cart/Get\"}", &err), 1);
    MK_CHECK_INT(count_of(j, "{\"protocol\": \"soap\"}", &err), 0);
    mk_journal_free(j);
}

static void test_undefined_aggregate(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 1);
    mk_journal_rec_t r = rec_of("a", "", "GET", "/x");
    r.ts_ms = 1000;
    put(j, 0, &r);
    r.ts_ms = 3000;
    put(j, 0, &r);
    r.ts_ms = 2000;
    put(j, 0, &r);
    r = rec_of("a", "", "POST", "/x"); /* another method: another group */
    r.ts_ms = 5000;
    put(j, 0, &r);
    r = rec_of("b", "", "GET", "/x"); /* another namespace */
    put(j, 0, &r);
    put(j, 0, &r);
    r = rec_of("a", "m", "GET", "/x"); /* matched: not counted */
    put(j, 0, &r);

    json_t *u = mk_journal_undefined(j);
    MK_CHECK_INT(json_array_size(u), 3);
    json_t *top = json_array_get(u, 0);
    MK_CHECK_STR(get_str(top, "namespace", NULL), "a");
    MK_CHECK_STR(get_str(top, "method", NULL), "GET");
    MK_CHECK_STR(get_str(top, "path", NULL), "/x");
    MK_CHECK_INT(json_integer_value(json_object_get(top, "hitCount")), 3);
    MK_CHECK_INT(json_integer_value(json_object_get(top, "firstSeen")), 1000);
    MK_CHECK_INT(json_integer_value(json_object_get(top, "lastSeen")), 3000);
    MK_CHECK_STR(get_str(json_array_get(u, 1), "namespace", NULL), "b");
    MK_CHECK_INT(json_integer_value(json_object_get(json_array_get(u, 1), "hitCount")), 2);
    MK_CHECK_INT(json_integer_value(json_object_get(json_array_get(u, 2), "hitCount")), 1);
    json_decref(u);

    /* Forgetting by id removes that group only; an unknown or malformed id removes nothing. */
    u = mk_journal_undefined(j);
    const char *ids[] = {get_str(json_array_get(u, 1), "id", NULL), "ffff", "zz"};
    MK_CHECK_INT(mk_journal_undefined_forget(j, ids, 3), 1);
    json_decref(u);
    u = mk_journal_undefined(j);
    MK_CHECK_INT(json_array_size(u), 2);
    for (size_t i = 0; i < json_array_size(u); i++)
        MK_CHECK_STR(get_str(json_array_get(u, i), "namespace", NULL), "a");
    json_decref(u);
    r = rec_of("b", "", "GET", "/x"); /* b's group again, as before the forget */
    put(j, 0, &r);
    put(j, 0, &r);

    /* Past the group bound the least recently seen group goes. Keep GET /x recent so that the
     * first evicted is POST /x, then b's group. */
    char path[32];
    for (int i = 0; i < MK_JOURNAL_MAX_GROUPS - 1; i++) {
        snprintf(path, sizeof path, "/g/%d", i);
        r = rec_of("c", "", "GET", path);
        put(j, 0, &r);
        if (i == 10) {
            r = rec_of("a", "", "GET", "/x");
            put(j, 0, &r);
        }
    }
    u = mk_journal_undefined(j);
    MK_CHECK_INT(json_array_size(u), MK_JOURNAL_MAX_GROUPS);
    bool has_post = false, has_b = false, has_a = false;
    for (size_t i = 0; i < json_array_size(u); i++) {
        json_t *g = json_array_get(u, i);
        if (strcmp(get_str(g, "path", NULL), "/x") != 0)
            continue;
        has_post |= strcmp(get_str(g, "method", NULL), "POST") == 0;
        has_b |= strcmp(get_str(g, "namespace", NULL), "b") == 0;
        has_a |= strcmp(get_str(g, "namespace", NULL), "a") == 0;
    }
    MK_CHECK(!has_post);
    MK_CHECK(!has_b);
    MK_CHECK(has_a);
    MK_CHECK_INT(json_integer_value(json_object_get(json_array_get(u, 0), "hitCount")), 4);
    json_decref(u);
    mk_journal_free(j);
}

static void test_clear(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 2);
    record_set(j);
    mk_journal_rec_t r = rec_of("a", "", "GET", "/late");
    MK_CHECK(mk_journal_record(j, 1, &r));
    mk_journal_clear(j);
    MK_CHECK_INT(mk_journal_entries(j), 0);
    MK_CHECK_INT(mk_journal_bytes(j), 0);
    json_t *u = mk_journal_undefined(j);
    MK_CHECK_INT(json_array_size(u), 0);
    json_decref(u);
    MK_CHECK(mk_journal_record(j, 0, &r));
    size_t total = 0;
    json_t *l = mk_journal_query(j, NULL, &total);
    MK_CHECK_INT(total, 1);
    /* Ids keep increasing across a clear: 5 from record_set, 1 late, then this one. */
    MK_CHECK_STR(get_str(json_array_get(l, 0), "id", NULL), "7");
    json_decref(l);
    mk_journal_free(j);
}

static void test_drops_are_counted(void)
{
    mk_journal_t *j = mk_journal_new(64 << 20, 1024, 1);
    mk_journal_rec_t r = rec_of("a", "m", "GET", "/d");
    MK_CHECK(!mk_journal_record(j, 1, &r)); /* no such producer */
    MK_CHECK_INT(mk_journal_dropped(j), 1);
    /* Without pausing, the ring may overrun; whatever happens, nothing is lost silently. */
    long refused = 0, n = 3 * MK_JOURNAL_RING_SLOTS;
    for (long i = 0; i < n; i++)
        refused += !mk_journal_record(j, 0, &r);
    MK_CHECK_INT(mk_journal_dropped(j), refused + 1);
    MK_CHECK_INT(mk_journal_entries(j), n - refused);
    mk_journal_free(j);
}

/* A journal freed with records still in its rings releases them (LeakSanitizer checks). */
static void test_free_with_pending(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 2);
    mk_journal_rec_t r = rec_of("a", "", "GET", "/pending");
    MK_CHECK(mk_journal_record(j, 0, &r));
    MK_CHECK(mk_journal_record(j, 1, &r));
    mk_journal_free(j);
    mk_journal_free(NULL);
    MK_CHECK(mk_journal_new(1024, 16, 0) == NULL);
}

/* Rings are merged by arrival, not ring by ring. */
static void test_arrival_order_across_rings(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 3);
    char path[16];
    for (int i = 0; i < 300; i++) {
        snprintf(path, sizeof path, "/%d", i);
        mk_journal_rec_t r = rec_of("ns", "m", "GET", path);
        put(j, (unsigned)(i % 3), &r);
    }
    json_t *l = mk_journal_query(j, NULL, NULL);
    MK_CHECK_INT(json_array_size(l), 300);
    bool ordered = true;
    for (int i = 0; i < 300; i++) {
        snprintf(path, sizeof path, "/%d", 299 - i);
        const char *got = get_str(json_array_get(l, (size_t)i), "request", "path");
        ordered &= got && strcmp(got, path) == 0;
    }
    MK_CHECK(ordered);
    json_decref(l);
    mk_journal_free(j);
}

#define PER_THREAD 50000

typedef struct producer_arg {
    mk_journal_t *j;
    unsigned index;
    long refused;
} producer_arg_t;

static void *producer_main(void *p)
{
    producer_arg_t *a = p;
    char path[32];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(path, sizeof path, "/t/%u/%d", a->index, i);
        mk_journal_rec_t r = rec_of("ns", "m", "GET", path);
        while (!mk_journal_record(a->j, a->index, &r)) {
            a->refused++;
            sched_yield();
        }
    }
    return NULL;
}

static void test_concurrent_producers(void)
{
    mk_journal_t *j = mk_journal_new((size_t)256 << 20, 1024, 2);
    producer_arg_t args[2] = {{j, 0, 0}, {j, 1, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, producer_main, &args[i]);
    /* A reader running concurrently must not disturb the producers. */
    for (int i = 0; i < 20; i++) {
        mk_journal_filter_t f = {.limit = 5};
        json_decref(mk_journal_query(j, &f, NULL));
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);

    MK_CHECK_INT(mk_journal_entries(j), 2 * PER_THREAD);
    MK_CHECK_INT(mk_journal_dropped(j), args[0].refused + args[1].refused);
    mk_err_t err = {0};
    MK_CHECK_INT(count_of(j, "{\"pathPattern\": \"/t/0/[0-9]+\"}", &err), PER_THREAD);
    MK_CHECK_INT(count_of(j, "{\"pathPattern\": \"/t/1/[0-9]+\"}", &err), PER_THREAD);

    /* Each producer's records appear in the order it made them, each exactly once. */
    int next[2] = {PER_THREAD - 1, PER_THREAD - 1};
    bool in_order = true;
    unsigned long long prev_id = 0;
    for (size_t off = 0; off < 2 * PER_THREAD; off += 5000) {
        mk_journal_filter_t f = {.limit = 5000, .offset = off};
        json_t *page = mk_journal_query(j, &f, NULL);
        for (size_t i = 0; i < json_array_size(page); i++) {
            json_t *e = json_array_get(page, i);
            unsigned p = 0;
            int seq = -1;
            sscanf(get_str(e, "request", "path"), "/t/%u/%d", &p, &seq);
            unsigned long long id = strtoull(get_str(e, "id", NULL), NULL, 10);
            if (p > 1 || seq != next[p] || (prev_id && id >= prev_id))
                in_order = false;
            if (p <= 1)
                next[p]--;
            prev_id = id;
        }
        json_decref(page);
    }
    MK_CHECK(in_order);
    MK_CHECK_INT(next[0], -1);
    MK_CHECK_INT(next[1], -1);
    mk_journal_free(j);
}

/* The live tail: new entries only, oldest first, filtered (status too), the newest max of a
 * burst with the rest counted as skipped, and nothing again until something new is filed. */
static void test_tail(void)
{
    mk_journal_t *j = mk_journal_new(1 << 20, 1024, 1);
    mk_journal_rec_t r = rec_of("ns", "m", "GET", "/before");
    put(j, 0, &r);
    mk_journal_sync(j);
    uint64_t after = mk_journal_last_id(j);
    MK_CHECK(after > 0);
    char path[16];
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "/t%d", i);
        r = rec_of(i == 3 ? "other" : "ns", "m", "GET", path);
        r.status = i % 2 ? 404 : 200;
        put(j, 0, &r);
    }
    mk_journal_sync(j);
    MK_CHECK(mk_journal_last_id(j) == after + 6);
    mk_journal_filter_t f = {.namespace_ = "ns", .status = 200, .limit = 1, .offset = 5};
    json_t *out = NULL;
    size_t skipped = 9;
    uint64_t cursor = after;
    MK_CHECK_INT(mk_journal_tail(j, &f, &cursor, 100, &out, &skipped), 0);
    MK_CHECK_INT(json_array_size(out), 3); /* /t0 /t2 /t4; limit and offset do not apply */
    MK_CHECK_STR(get_str(json_array_get(out, 0), "request", "path"), "/t0");
    MK_CHECK_STR(get_str(json_array_get(out, 2), "request", "path"), "/t4");
    MK_CHECK_INT(skipped, 0);
    MK_CHECK(cursor == after + 6);
    json_decref(out);
    MK_CHECK_INT(mk_journal_tail(j, &f, &cursor, 100, &out, &skipped), 0);
    MK_CHECK_INT(json_array_size(out), 0);
    json_decref(out);
    cursor = after;
    MK_CHECK_INT(mk_journal_tail(j, NULL, &cursor, 2, &out, &skipped), 0);
    MK_CHECK_INT(json_array_size(out), 2);
    MK_CHECK_STR(get_str(json_array_get(out, 0), "request", "path"), "/t4");
    MK_CHECK_STR(get_str(json_array_get(out, 1), "request", "path"), "/t5");
    MK_CHECK_INT(skipped, 4);
    json_decref(out);
    size_t total = 0;
    json_t *list = mk_journal_query(j, &f, &total); /* the status filter holds for queries */
    MK_CHECK_INT(total, 4);
    json_decref(list);
    mk_journal_free(j);
}

int main(void)
{
    MK_RUN(test_tail);
    MK_RUN(test_byte_bound_evicts_oldest);
    MK_RUN(test_body_truncation_and_json);
    MK_RUN(test_query_filters);
    MK_RUN(test_count_patterns);
    MK_RUN(test_protocols);
    MK_RUN(test_undefined_aggregate);
    MK_RUN(test_clear);
    MK_RUN(test_drops_are_counted);
    MK_RUN(test_free_with_pending);
    MK_RUN(test_arrival_order_across_rings);
    MK_RUN(test_concurrent_producers);
    return mk_testing_done();
}
