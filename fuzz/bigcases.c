/* The generated big inputs of each harness, in the harness's input format (see each fuzz_*.c).
 * Sizes follow issue 21: the 520 KB $.increment nest, 1 MB runs of "$.req[", 20,000-element
 * sortArray, JSON nested to jansson's limit and past it. */
#include "bigcases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB (1u << 20)

typedef struct gen {
    char *data;
    size_t len, cap;
} gen_t;

static void put(gen_t *g, const void *p, size_t n)
{
    if (g->len + n > g->cap) {
        g->cap = (g->len + n) * 2;
        g->data = realloc(g->data, g->cap);
        if (g->data == NULL)
            abort();
    }
    memcpy(g->data + g->len, p, n);
    g->len += n;
}

static void puts_(gen_t *g, const char *s)
{
    put(g, s, strlen(s));
}

static void nul(gen_t *g)
{
    put(g, "", 1);
}

static void byte(gen_t *g, unsigned char c)
{
    put(g, &c, 1);
}

static void rep(gen_t *g, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        puts_(g, s);
}

static void putf(gen_t *g, const char *fmt, size_t v)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    puts_(g, buf);
}

/* A JSON array of n integers, ascending or descending; when odd_last, the last is 0.5. */
static void int_array(gen_t *g, size_t n, int desc, int odd_last)
{
    puts_(g, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            puts_(g, ",");
        if (odd_last && i + 1 == n)
            puts_(g, "0.5");
        else
            putf(g, "%zu", desc ? n - 1 - i : i);
    }
    puts_(g, "]");
}

typedef struct runner {
    mk_fuzz_case_fn run;
    void *ud;
    size_t count;
} runner_t;

static void emit(runner_t *r, gen_t *g, const char *label)
{
    r->run(r->ud, label, (const uint8_t *)g->data, g->len);
    r->count++;
    g->len = 0;
}

static void template_cases(runner_t *r, gen_t *g)
{
    byte(g, 0); /* text mode */
    rep(g, "$.increment(", 40000);
    puts_(g, "$.gS.a");
    rep(g, ")", 40000);
    emit(r, g, "text: $.increment( x 40000 (520 KB)");
    puts_(g, "\x01");
    rep(g, "$.increment(", 40000);
    puts_(g, "$.gS.a");
    rep(g, ")", 40000);
    emit(r, g, "json: $.increment( x 40000");
    puts_(g, "\x01");
    rep(g, "$.req[", MB / 6);
    nul(g);
    puts_(g, "{\"a\":[1,2]}");
    emit(r, g, "json: $.req[ x 1 MB");
    puts_(g, "\x01");
    rep(g, "$.body['", MB / 8);
    emit(r, g, "json: $.body[' x 1 MB");
    puts_(g, "\x01");
    rep(g, "$.fake.UUID(", MB / 12);
    rep(g, ")", MB / 12);
    emit(r, g, "json: $.fake.UUID( nest x 1 MB");
    puts_(g, "\x01\"");
    rep(g, "$.increment(", 32);
    puts_(g, "$.req.a");
    rep(g, ")", 32);
    puts_(g, "\"");
    nul(g);
    puts_(g, "{\"a\": 5}");
    emit(r, g, "json: deepest allowed $.increment nest, rendered");
    byte(g, 0);
    rep(g, "$.req ", 10000);
    nul(g);
    puts_(g, "{\"pad\":\"");
    rep(g, "x", 100000);
    puts_(g, "\"}");
    emit(r, g, "text: 10000 x $.req of a 100 KB body");
    puts_(g, "\x01");
    rep(g, "[", 2000);
    puts_(g, "\"$.req.a\"");
    rep(g, "]", 2000);
    emit(r, g, "json: payload nested 2000 deep");
    puts_(g, "\x01");
    rep(g, "[", 100000);
    rep(g, "]", 100000);
    emit(r, g, "json: payload nested 100000 deep (not JSON: a string)");
}

static void cond_cases(runner_t *r, gen_t *g)
{
    for (int differs = 0; differs <= 1; differs++) {
        byte(g, 0);
        puts_(g, "{\"path\":\"a\",\"sortArray\":true,\"value\":");
        int_array(g, 20000, 1, differs);
        puts_(g, "}");
        nul(g);
        puts_(g, "{\"a\":");
        int_array(g, 20000, 0, 0);
        puts_(g, "}");
        emit(r, g, differs ? "sortArray 20,000 elements, last differs" : "sortArray 20,000");
    }
    byte(g, 0);
    puts_(g, "{\"path\":\"a\",\"assertAction\":\"contains\",\"sortArray\":true,\"value\":[7,6]}");
    nul(g);
    puts_(g, "{\"a\":[");
    for (size_t i = 0; i < 20000; i++)
        putf(g, i ? ",[%zu,0]" : "[%zu,0]", i);
    puts_(g, "]}");
    emit(r, g, "contains with sortArray over 20,000 arrays");
    byte(g, 0);
    puts_(g, "{\"path\":\"$");
    rep(g, "[0]", 2000);
    puts_(g, "\",\"sortArray\":true,\"value\":[[[1]]]}");
    nul(g);
    rep(g, "[", 2040);
    rep(g, "]", 2040);
    emit(r, g, "body nested 2040 deep, path 2000 deep");
    byte(g, 0);
    puts_(g, "{\"path\":\"a\",\"sortArray\":true,\"value\":");
    rep(g, "[", 2000);
    rep(g, "]", 2000);
    puts_(g, "}");
    nul(g);
    puts_(g, "{\"a\":");
    rep(g, "[", 2000);
    rep(g, "]", 2000);
    puts_(g, "}");
    emit(r, g, "sortArray value and body nested 2000 deep");
    byte(g, 0);
    puts_(g, "{\"path\":\"s\",\"assertAction\":\"matches\",\"value\":\"(a+)+$\"}");
    nul(g);
    puts_(g, "{\"s\":\"");
    rep(g, "a", MB);
    puts_(g, "b\"}");
    emit(r, g, "matches (a+)+$ against 1 MB");
    puts_(g, "\x01{\"path\":\"q\",\"assertAction\":\"contains\",\"value\":\"");
    rep(g, "ab", 1000);
    puts_(g, "\"}");
    nul(g);
    nul(g);
    puts_(g, "q=");
    rep(g, "a%62", MB / 4);
    emit(r, g, "query contains over a 1 MB parameter");
    byte(g, 0);
    rep(g, "[", 100000);
    emit(r, g, "condition nested 100000 deep (not JSON)");
}

static void jsonpath_cases(runner_t *r, gen_t *g)
{
    puts_(g, "$");
    rep(g, ".a", MB / 2);
    nul(g);
    rep(g, "{\"a\":", 2000);
    puts_(g, "1");
    rep(g, "}", 2000);
    emit(r, g, "path .a x 512 Ki over a document 2000 deep");
    puts_(g, "$");
    rep(g, "[0]", 2000);
    nul(g);
    rep(g, "[", 2000);
    puts_(g, "true");
    rep(g, "]", 2000);
    emit(r, g, "path [0] x 2000 over arrays 2000 deep");
    puts_(g, "$['");
    rep(g, "x", MB);
    puts_(g, "']");
    emit(r, g, "quoted key of 1 MB");
    puts_(g, "$");
    rep(g, "[", MB);
    emit(r, g, "1 MB of '['");
    puts_(g, "$");
    rep(g, "[-999999999999999999]", 10000);
    emit(r, g, "10000 most negative indexes");
}

static void route_cases(runner_t *r, gen_t *g)
{
    puts_(g, "GET ");
    rep(g, "/a", 10000);
    puts_(g, "\n\nGET ");
    rep(g, "/a", 10000);
    emit(r, g, "route and path of 10000 segments");
    for (size_t i = 0; i < 500; i++) {
        putf(g, "ANY /p%zu", i % 7);
        putf(g, "/:x%zu/s/*\n", i);
    }
    puts_(g, "\nGET /p1/");
    rep(g, "y", MB);
    puts_(g, "/s/");
    rep(g, "z/", 1000);
    emit(r, g, "500 routes, lookup of a 1 MB segment");
    puts_(g, "POST /");
    for (size_t i = 0; i < 16; i++)
        putf(g, "/:v%zu", i);
    puts_(g, "\n\nPOST ");
    rep(g, "/w", 16);
    emit(r, g, "16 parameters");
}

static void config_cases(runner_t *r, gen_t *g)
{
    rep(g, "[", 100000);
    emit(r, g, "flow sequence 100000 deep");
    rep(g, "- ", 20000);
    puts_(g, "x");
    emit(r, g, "block sequence 20000 deep");
    puts_(g, "STR: ");
    rep(g, "x", MB - 8);
    emit(r, g, "1 MB scalar");
    for (size_t i = 0; i < 20000; i++)
        putf(g, "k%zu: 1\n", i);
    emit(r, g, "20000 keys");
    puts_(g, "a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for (char c = 'b'; c <= 'j'; c++) {
        char line[64];
        snprintf(line, sizeof line, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", c, c,
                 c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
        puts_(g, line);
    }
    emit(r, g, "billion laughs (aliases share, never copy)");
}

static void mock_cases(runner_t *r, gen_t *g)
{
    puts_(g, "{\"http\":{\"route\":\"/i\"},\"response\":{\"payload\":\"");
    rep(g, "$.increment(", 40000);
    puts_(g, "$.gS.a");
    rep(g, ")", 40000);
    puts_(g, "\"}}");
    nul(g);
    puts_(g, "GET");
    nul(g);
    puts_(g, "/i");
    emit(r, g, "payload $.increment( x 40000 (issue 21 item 1)");
    puts_(g, "{\"http\":{\"route\":\"/r\"},\"response\":{\"payload\":{\"x\":\"");
    rep(g, "$.req[", MB / 6);
    puts_(g, "\"}}}");
    nul(g);
    puts_(g, "POST");
    nul(g);
    puts_(g, "/r");
    nul(g);
    puts_(g, "{\"a\":1}");
    emit(r, g, "payload $.req[ x 1 MB (issue 21 item 2)");
    puts_(g, "{\"http\":{\"route\":\"/s\",\"conditions\":[{\"path\":\"a\",\"sortArray\":true,"
             "\"value\":");
    int_array(g, 20000, 1, 0);
    puts_(g, "}]},\"response\":{\"payload\":{\"ok\":true}}}");
    nul(g);
    puts_(g, "POST");
    nul(g);
    puts_(g, "/s");
    nul(g);
    puts_(g, "{\"a\":");
    int_array(g, 20000, 0, 1);
    puts_(g, "}");
    emit(r, g, "sortArray 20,000 elements (issue 21 item 3)");
    puts_(g, "{\"http\":{\"route\":\"/d\"},\"response\":{\"payload\":");
    rep(g, "[", 2000);
    rep(g, "]", 2000);
    puts_(g, "}}");
    emit(r, g, "payload nested 2000 deep");
    puts_(g, "{\"http\":{\"route\":\"");
    rep(g, "/:p", 300);
    puts_(g, "\"},\"response\":{}}");
    emit(r, g, "route of 300 parameters");
    puts_(g, "{\"http\":{\"route\":\"/h\"},\"response\":{\"headers\":{");
    for (size_t i = 0; i < 10000; i++)
        putf(g, i ? ",\"H%zu\":\"$.req\"" : "\"H%zu\":\"$.req\"", i);
    puts_(g, "}}}");
    nul(g);
    puts_(g, "GET");
    nul(g);
    puts_(g, "/h");
    nul(g);
    rep(g, "b", 100000);
    emit(r, g, "10000 templated headers");
}

static const struct {
    const char *harness;
    void (*gen)(runner_t *r, gen_t *g);
} table[] = {
    {"template", template_cases}, {"cond", cond_cases},     {"jsonpath", jsonpath_cases},
    {"route", route_cases},       {"config", config_cases}, {"mock", mock_cases},
};

size_t mk_fuzz_big_cases(const char *harness, mk_fuzz_case_fn run, void *ud)
{
    runner_t r = {run, ud, 0};
    gen_t g = {NULL, 0, 0};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].harness, harness) == 0)
            table[i].gen(&r, &g);
    free(g.data);
    return r.count;
}
