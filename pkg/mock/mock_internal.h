/* Shared by the definition compilers of this module (mock.c and mock_<protocol>.c). Not a
 * public header. */
#ifndef MK_MOCK_INTERNAL_H
#define MK_MOCK_INTERNAL_H

#include "cond/cond.h"
#include "err/err.h"
#include "mock/mock.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* obj[key] as a string borrowed from obj in *out; absent or null gives NULL, or "<field>:
 * required" when required. Fails naming field when it is not a string. */
int mk_mock_get_string(const json_t *obj, const char *key, const char *field, bool required,
                       const char **out, mk_err_t *err);

/* A condition definition whose path loses the first of the n prefixes it starts with (followed
 * by '.', '[' or its end), behind a '$': with the prefix "$.body", "$.body.x" reads "$.x". A new
 * reference (def itself when no prefix applies); NULL when out of memory. */
json_t *mk_mock_cond_unprefix(const json_t *def, const char *const *prefixes, size_t n);

/* Compiles the condition array obj[key] (absent or null: none) of kind, appending to m's
 * conditions; each definition goes through adapt first when adapt is not NULL (a new reference,
 * NULL when out of memory). Errors name "<section>.<key>[i]". */
int mk_mock_compile_conds(mk_mock_t *m, const json_t *obj, const char *section, const char *key,
                          mk_cond_kind_t kind, json_t *(*adapt)(const json_t *def), mk_err_t *err);

/* Refuses (MK_EINVAL, naming the field) a compiled mock that extracts or reads stores when its
 * protocol's server renders without them (gRPC, WebSocket, SSE; see mock_stores.c). */
int mk_mock_stores_check(const mk_mock_t *m, mk_err_t *err);

#endif
