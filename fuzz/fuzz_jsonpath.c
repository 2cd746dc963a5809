/* Fuzzes the JSONPath compiler and evaluator. Input: the path, a NUL, a JSON document. */
#include "fuzz.h"
#include "jsonpath/jsonpath.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_str_t parts[2];
    fz_split(data, size, parts, 2);
    char *expr = fz_cstr(parts[0]);
    mk_jsonpath_t *path = NULL;
    mk_err_t err;
    int rc = mk_jsonpath_compile(expr, &path, &err);
    if (rc != 0) {
        FZ_ASSERT(rc == MK_EINVAL || rc == MK_ENOMEM);
        FZ_ASSERT(path == NULL && strstr(err.msg, " at ") != NULL);
        goto out;
    }
    FZ_ASSERT(strcmp(mk_jsonpath_source(path), expr) == 0);
    json_t *doc = json_loadb(parts[1].base, parts[1].len, JSON_DECODE_ANY, NULL);
    if (doc != NULL) {
        json_t *v = mk_jsonpath_eval(path, doc);
        if (v != NULL) {
            char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            FZ_ASSERT(s != NULL);
            free(s);
        }
        json_decref(doc);
    }
out:
    mk_jsonpath_free(path);
    free(expr);
    return 0;
}
