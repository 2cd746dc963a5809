/* A compiled JSONPath subset that selects one value: `$.user.id`, `$.items[0].sku`,
 * `$['odd key'].x`, `$.items[-1]` (from the end), `$` (the root). The leading `$.` is optional
 * (`user.id`). Compiled once when a mock is saved; evaluation allocates nothing. */
#ifndef MK_JSONPATH_H
#define MK_JSONPATH_H

#include "err/err.h"

#include <jansson.h>

typedef struct mk_jsonpath mk_jsonpath_t;

/* Compiles expr. On failure returns MK_EINVAL with a message naming the position
 * ("unexpected ']' at 7"). *out is owned by the caller: free with mk_jsonpath_free(). */
int mk_jsonpath_compile(const char *expr, mk_jsonpath_t **out, mk_err_t *err);
void mk_jsonpath_free(mk_jsonpath_t *path);

/* The selected value (borrowed from root), or NULL when the path does not exist. */
json_t *mk_jsonpath_eval(const mk_jsonpath_t *path, json_t *root);

/* The expression as given (borrowed). */
const char *mk_jsonpath_source(const mk_jsonpath_t *path);

#endif
