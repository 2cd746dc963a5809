/* Request conditions of a mock: `{path, assertAction, value, sortArray}` compiled once when the
 * mock is saved and evaluated on the hot path without allocating (sortArray on values whose
 * canonical form exceeds a few hundred bytes takes scratch memory, bounded by the value's size).
 *
 * Kinds: a body condition's path is a JSONPath into the JSON body; a query or header condition's
 * path is the parameter or header name (headers case-insensitive).
 *
 * assertAction semantics (value is any JSON value):
 *   equals / not_equals   JSON equality of the selected value and `value`; when one side is a
 *                         string and the other a number or bool, they are compared as text
 *                         (query and header values are always text). With sortArray, arrays are
 *                         compared ignoring element order (as multisets, at every depth).
 *   contains / not_contains  string: substring; array: has an element equal to `value`;
 *                         object: has key `value`.
 *   any                   the path exists (any value, even null).
 *   notEmpty / empty      exists and is not "", [], {} or null / absent or one of those.
 *   matches               `value` is a regular expression (string), matched against the text of
 *                         the selected value; compiled at save time.
 */
#ifndef MK_COND_H
#define MK_COND_H

#include "err/err.h"
#include "request/request.h"

#include <jansson.h>
#include <stdbool.h>

/* sortArray compares canonical forms (elements sorted, O(n log n)). Building the form of a
 * condition's value may take at most this many bytes of work (bytes written plus bytes moved
 * when sorting); a bigger value is refused at compile. A request's value is then canonicalised
 * at most as far as the condition's own value took, so one evaluation costs no more than that. */
#define MK_COND_MAX_SORT_WORK (64u << 20)

typedef enum mk_cond_kind {
    MK_COND_BODY,
    MK_COND_QUERY,
    MK_COND_HEADER,
} mk_cond_kind_t;

typedef struct mk_cond mk_cond_t;

/* Compiles one condition object. `field` names it for error messages
 * ("http.conditions[1]"); a failure returns MK_EINVAL with a message that starts with the field
 * and the member, e.g. "http.conditions[1].value: invalid regular expression: ...".
 * Caller frees *out with mk_cond_free(). */
int mk_cond_compile(const json_t *def, mk_cond_kind_t kind, const char *field, mk_cond_t **out,
                    mk_err_t *err);
void mk_cond_free(mk_cond_t *cond);

/* True when the condition holds for req (the JSON body is parsed lazily through req). */
bool mk_cond_eval(const mk_cond_t *cond, mk_request_t *req);

/* A one-line human description of why the condition failed for req, for the 404 diagnosis
 * ("body $.user.id equals 42, got 41"). Writes into buf (NUL-terminated, truncated to size). */
void mk_cond_explain(const mk_cond_t *cond, mk_request_t *req, char *buf, size_t size);

/* The condition's kind, and its definition as JSON (new reference). */
mk_cond_kind_t mk_cond_kind(const mk_cond_t *cond);
json_t *mk_cond_to_json(const mk_cond_t *cond);

#endif
