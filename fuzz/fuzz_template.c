/* Fuzzes the template compiler and renderer. Input: a mode byte (bit 0: JSON template, else
 * text), then the template, a NUL, and the request body it renders against. */
#include "fuzz.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    mk_str_t parts[2];
    fz_split(data + 1, size - 1, parts, 2);
    mk_template_t *t = NULL;
    mk_err_t err;
    int rc;
    if (data[0] & 1) {
        json_t *v = json_loadb(parts[0].base, parts[0].len, JSON_DECODE_ANY, NULL);
        if (v == NULL)
            v = json_stringn(parts[0].base, parts[0].len);
        if (v == NULL)
            return 0; /* not UTF-8: the API never hands such a string over */
        rc = mk_template_compile_json(v, "response.payload", &t, &err);
        json_decref(v);
    } else {
        rc = mk_template_compile_text(parts[0], "response.headers.X", &t, &err);
    }
    if (rc != 0) {
        FZ_ASSERT(rc == MK_EINVAL || rc == MK_ENOMEM);
        FZ_ASSERT(t == NULL && err.code == rc && err.msg[0] != '\0');
        return 0;
    }
    FZ_ASSERT(t != NULL);
    if (mk_template_is_static(t)) {
        mk_str_t lit = mk_template_literal(t);
        FZ_ASSERT(lit.base != NULL);
    }
    mk_template_store_t store;
    mk_str_t key;
    if (mk_template_increments(t, &store, &key))
        FZ_ASSERT(mk_template_uses_store(t));

    mk_route_match_t match = {.nparams = 1};
    match.names[0] = MK_STR_LIT("id");
    match.values[0] = MK_STR_LIT("42");
    fz_req_t r;
    fz_req_init(&r, MK_STR_LIT("POST"), MK_STR_LIT("/orders/42"), MK_STR_LIT("q=a%20b&n=5"),
                parts[1], MK_STR_LIT("v"));
    fz_render(t, &r.req, &match, 1u << 20);
    fz_render(t, &r.req, NULL, 16); /* a small output limit must fail cleanly */
    mk_request_release(&r.req);
    mk_template_free(t);
    return 0;
}
