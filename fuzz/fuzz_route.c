/* Fuzzes route validation, the index build, lookup and nearest. Input: lines; up to the first
 * empty line each is "METHOD /route" (no space: method ANY) to add, after it "METHOD /path" to
 * look up. */
#include "fuzz.h"
#include "route/route.h"

#define MAX_LINES 512

static mk_str_t next_line(mk_str_t *rest)
{
    const char *nl = memchr(rest->base, '\n', rest->len);
    size_t n = nl ? (size_t)(nl - rest->base) : rest->len;
    mk_str_t line = {rest->base, n};
    rest->base += nl ? n + 1 : n;
    rest->len -= nl ? n + 1 : n;
    return line;
}

static void split_method(mk_str_t line, mk_str_t *method, mk_str_t *rest)
{
    const char *sp = memchr(line.base, ' ', line.len);
    if (sp == NULL) {
        *method = MK_STR_LIT("ANY");
        *rest = line;
        return;
    }
    *method = (mk_str_t){line.base, (size_t)(sp - line.base)};
    *rest = (mk_str_t){sp + 1, line.len - (size_t)(sp - line.base) - 1};
}

static void check_lookup(const mk_route_index_t *idx, mk_str_t method, mk_str_t path,
                         size_t nroutes)
{
    mk_route_iter_t it;
    mk_route_match_t m;
    mk_route_lookup(idx, method, path, &it);
    size_t n = 0;
    while (n < 4 * MAX_LINES && mk_route_next(&it, &m)) {
        uintptr_t v = (uintptr_t)m.value;
        FZ_ASSERT(v >= 1 && v <= nroutes);
        FZ_ASSERT(m.nparams <= MK_ROUTE_MAX_PARAMS);
        for (size_t i = 0; i < m.nparams; i++) {
            /* Captures are slices of the looked-up path. */
            FZ_ASSERT(m.values[i].base >= path.base &&
                      m.values[i].base + m.values[i].len <= path.base + path.len);
        }
        n++;
    }
    void *near[8];
    size_t k = mk_route_nearest(idx, method, path, near, 8);
    FZ_ASSERT(k <= 8);
    for (size_t i = 0; i < k; i++)
        FZ_ASSERT((uintptr_t)near[i] >= 1 && (uintptr_t)near[i] <= nroutes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_str_t rest = {(const char *)data, size};
    mk_route_builder_t *b = mk_route_builder_new();
    FZ_ASSERT(b != NULL);
    size_t added = 0, lines = 0;
    while (rest.len > 0 && lines++ < MAX_LINES) {
        mk_str_t line = next_line(&rest);
        if (line.len == 0)
            break;
        mk_str_t method, route;
        split_method(line, &method, &route);
        char *m = fz_cstr(method), *r = fz_cstr(route);
        mk_err_t err;
        int valid = mk_route_validate(r, &err);
        FZ_ASSERT(valid == 0 || (valid == MK_EINVAL && err.msg[0] != '\0'));
        int rc = mk_route_builder_add(b, m, r, (void *)(uintptr_t)(added + 1), (int64_t)(lines % 3),
                                      (int64_t)lines, &err);
        /* add validates the route as validate does (it may also refuse the method). */
        FZ_ASSERT(valid == 0 || rc != 0);
        if (rc == 0)
            added++;
        free(m);
        free(r);
    }
    mk_route_index_t *idx = mk_route_builder_build(b);
    FZ_ASSERT(idx != NULL);
    FZ_ASSERT(mk_route_index_count(idx) == added);
    while (rest.len > 0 && lines++ < 2 * MAX_LINES) {
        mk_str_t method, path;
        split_method(next_line(&rest), &method, &path);
        check_lookup(idx, method, path, added);
    }
    check_lookup(idx, MK_STR_LIT("GET"), MK_STR_LIT("/"), added);
    mk_route_index_free(idx);
    return 0;
}
