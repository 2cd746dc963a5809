/* Shared pieces of the libFuzzer harnesses (one .c file each, LLVMFuzzerTestOneInput): splitting an
 * input into NUL-separated parts, a fixed request, and a template environment over a tiny fake
 * store. Header-only, so a harness links the same way under libFuzzer and under replay_main.c. */
#ifndef MK_FUZZ_H
#define MK_FUZZ_H

#include "err/err.h"
#include "faker/faker.h"
#include "request/request.h"
#include "str/str.h"
#include "template/template.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a finding: abort so libFuzzer (or the replay test) reports it. */
#define FZ_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Splits data at NUL bytes into at most max parts (the last takes the rest); missing parts are
 * empty. Returns how many parts the input had. */
static inline size_t fz_split(const uint8_t *data, size_t size, mk_str_t *parts, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i < max; i++)
        parts[i] = (mk_str_t){"", 0};
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || (data[i] == '\0' && n + 1 < max)) {
            parts[n++] = (mk_str_t){(const char *)data + start, i - start};
            start = i + 1;
        }
    }
    return n;
}

/* A NUL-terminated heap copy (the APIs that take C strings); caller frees. */
static inline char *fz_cstr(mk_str_t s)
{
    char *p = mk_str_dup(s);
    FZ_ASSERT(p != NULL);
    return p;
}

typedef struct fz_req {
    mk_request_t req;
    mk_header_t headers[3];
} fz_req_t;

static inline void fz_req_init(fz_req_t *r, mk_str_t method, mk_str_t path, mk_str_t query,
                               mk_str_t body, mk_str_t header_value)
{
    memset(r, 0, sizeof *r);
    mk_request_init(&r->req);
    r->headers[0] = (mk_header_t){MK_STR_LIT("Content-Type"), MK_STR_LIT("application/json")};
    r->headers[1] = (mk_header_t){MK_STR_LIT("X-Fuzz"), header_value};
    r->headers[2] = (mk_header_t){MK_STR_LIT("x-fuzz"), MK_STR_LIT("second")};
    r->req.method = method;
    r->req.path = path;
    r->req.query = query;
    r->req.headers = r->headers;
    r->req.nheaders = 3;
    r->req.body = body;
}

/* Store keys starting with 'a' hold 41, 's' a JSON string, 'o' an object; 'x' fails; others are
 * absent. */
static inline int fz_store_get(void *ud, mk_template_store_t store, mk_str_t key, mk_buf_t *out,
                               mk_err_t *err)
{
    (void)ud;
    (void)store;
    if (key.len == 0)
        return MK_ENOTFOUND;
    switch (key.base[0]) {
    case 'a':
        return mk_buf_append_str(out, "41");
    case 's':
        return mk_buf_append_str(out, "\"s\\\"q\\u0001\"");
    case 'o':
        return mk_buf_append_str(out, "{\"k\":[1,\"v\"]}");
    case 'x':
        return mk_err_set(err, MK_EUNAVAIL, "store down");
    default:
        return MK_ENOTFOUND;
    }
}

static inline int fz_store_incr(void *ud, mk_template_store_t store, mk_str_t key, int64_t by,
                                int64_t *result, mk_err_t *err)
{
    (void)ud;
    (void)store;
    if (key.len > 0 && key.base[0] == 'x')
        return mk_err_set(err, MK_EUNAVAIL, "store down");
    *result = 41 + by;
    return 0;
}

/* Renders t into a bounded buffer; a failure must come with a message. */
static inline void fz_render(const mk_template_t *t, mk_request_t *req,
                             const mk_route_match_t *match, size_t max)
{
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 7);
    mk_template_env_t env = {
        .req = req,
        .match = match,
        .rng = &rng,
        .now_ms = 1700000000000,
        .store_get = fz_store_get,
        .store_incr = fz_store_incr,
    };
    mk_buf_t out;
    mk_buf_init(&out, max);
    mk_err_t err;
    int rc = mk_template_render(t, &env, &out, &err);
    FZ_ASSERT(rc <= 0);
    FZ_ASSERT(rc == 0 || err.msg[0] != '\0');
    FZ_ASSERT(out.len <= max || max == 0);
    mk_buf_free(&out);
}

#endif
