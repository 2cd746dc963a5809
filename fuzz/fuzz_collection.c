/* Fuzzes the Postman collection parser through pkg/apitest: load (validation and normalisation),
 * export and re-load (a fixed point: exporting what was loaded gives it back), and for every
 * request the working request and the HTTP request built from it (URL objects, path variables,
 * auth, bodies) with variables that resolve to themselves. No network: nothing is sent.
 * Input: the collection JSON. */
#include "fuzz.h"
#include "apitest/apitest.h"
#include "apitest/internal.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_apitest_collection_t *c = NULL;
    mk_err_t err = {0};
    if (mk_apitest_collection_load((const char *)data, size, &c, &err) < 0) {
        FZ_ASSERT(c == NULL && err.msg[0]);
        return 0;
    }
    json_t *ex = mk_apitest_collection_export(c);
    char *text = json_dumps(ex, 0);
    FZ_ASSERT(text != NULL);
    mk_apitest_collection_t *c2 = NULL;
    FZ_ASSERT(mk_apitest_collection_load(text, strlen(text), &c2, &err) == 0);
    json_t *ex2 = mk_apitest_collection_export(c2);
    FZ_ASSERT(json_equal(ex, ex2));
    FZ_ASSERT(mk_apitest_collection_count(c2) == mk_apitest_collection_count(c));
    free(text);
    json_decref(ex2);
    json_decref(ex);
    mk_apitest_collection_free(c2);

    json_t *vars = json_pack("{s:s, s:s}", "a", "{{b}}", "b", "x");
    mk_apitest_vars_t v = {vars, vars, vars, vars, vars};
    for (size_t i = 0; i < c->n; i++) {
        json_t *w = mk_apitest_working_request(c->entries[i].item);
        FZ_ASSERT(w != NULL);
        const json_t *auth =
            json_object_get(json_object_get(c->entries[i].item, "request"), "auth");
        mk_apitest_http_t h;
        if (mk_apitest_http_build(&v, w, auth, &h, &err) == 0) {
            FZ_ASSERT(h.method && h.url && strstr(h.url, "://"));
            FZ_ASSERT(h.body_len == 0 || h.body != NULL);
            mk_apitest_http_free(&h);
        }
        json_decref(w);
    }
    json_decref(vars);
    mk_apitest_collection_free(c);
    return 0;
}
