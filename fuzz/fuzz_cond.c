/* Fuzzes request conditions: compile, eval, explain into small buffers, and the JSON round trip.
 * Input: a kind byte (body, query, header), then the condition JSON, a NUL, the request body, a
 * NUL, the query string, a NUL, the value of header X-Fuzz. */
#include "cond/cond.h"
#include "fuzz.h"

#include <jansson.h>

static void check_explain(const mk_cond_t *c, mk_request_t *req)
{
    static const size_t sizes[] = {1, 2, 9, 64, 600};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *buf = malloc(sizes[i]); /* exact size, so ASan sees any overrun */
        FZ_ASSERT(buf != NULL);
        mk_cond_explain(c, req, buf, sizes[i]);
        FZ_ASSERT(strlen(buf) < sizes[i]);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    mk_cond_kind_t kind = (mk_cond_kind_t)(data[0] % 3);
    mk_str_t parts[4];
    fz_split(data + 1, size - 1, parts, 4);
    json_t *def = json_loadb(parts[0].base, parts[0].len, JSON_DECODE_ANY, NULL);
    if (def == NULL)
        return 0;
    mk_cond_t *c = NULL, *again = NULL;
    mk_err_t err;
    int rc = mk_cond_compile(def, kind, "http.conditions[0]", &c, &err);
    json_decref(def);
    if (rc != 0) {
        FZ_ASSERT(c == NULL && err.code == rc && strstr(err.msg, "http.conditions[0]") != NULL);
        return 0;
    }
    FZ_ASSERT(mk_cond_kind(c) == kind);
    fz_req_t r;
    fz_req_init(&r, MK_STR_LIT("POST"), MK_STR_LIT("/x"), parts[2], parts[1], parts[3]);
    bool holds = mk_cond_eval(c, &r.req);
    FZ_ASSERT(mk_cond_eval(c, &r.req) == holds);
    check_explain(c, &r.req);
    /* What to_json writes compiles back to a condition that decides the same. */
    json_t *j = mk_cond_to_json(c);
    FZ_ASSERT(j != NULL);
    FZ_ASSERT(mk_cond_compile(j, kind, "again", &again, &err) == 0);
    FZ_ASSERT(mk_cond_eval(again, &r.req) == holds);
    json_decref(j);
    mk_cond_free(again);
    mk_request_release(&r.req);
    mk_cond_free(c);
    return 0;
}
