/* Mockarty response templates: strings in a payload, header value or extract value that hold
 * placeholders ($.pathParam.id, $.queryParam.q, $.reqHeader.Name[0], $.req, $.req.<jsonpath>,
 * $.body.<jsonpath>, $.gS.key, $.cS.key, $.mS.key, $.fake.Name, $.fake.Name(args),
 * $.increment(<placeholder>)). A template is compiled once, when the mock is saved, into a list of
 * literal byte runs and compiled placeholders; rendering walks that list and never parses the
 * definition again.
 *
 * Rendering modes: a JSON string that is exactly one placeholder takes the JSON type of its value
 * ("$.req.count" renders as 3); a placeholder inside a longer string is rendered as text, escaped
 * for JSON; in a text template (a header value, a text/plain body) values are written unescaped.
 * A missing value renders as null (whole-string JSON placeholder) or as nothing (inside text). */
#ifndef MK_TEMPLATE_H
#define MK_TEMPLATE_H

#include "err/err.h"
#include "faker/faker.h"
#include "request/request.h"
#include "route/route.h"
#include "str/str.h"

#include <jansson.h>
#include <stdbool.h>

/* Deepest JSON nesting a payload or extract value may have. */
#define MK_TEMPLATE_MAX_DEPTH 64
/* Deepest nesting of placeholders inside placeholders ($.increment($.increment(...))). Real
 * templates nest one or two levels; the bound keeps compile and render off the stack's edge. */
#define MK_TEMPLATE_MAX_NESTING 32
/* Most placeholders one template (a whole payload, header value or extract value) may hold: it
 * bounds the work and the store calls of one rendering. */
#define MK_TEMPLATE_MAX_PLACEHOLDERS 10000

typedef enum mk_template_store {
    MK_TEMPLATE_GLOBAL, /* gS */
    MK_TEMPLATE_CHAIN,  /* cS */
    MK_TEMPLATE_MOCK,   /* mS */
} mk_template_store_t;

/* What rendering reads beyond the template: the request, its route captures, a random state and
 * the stores. Store callbacks append the stored JSON text to out and return 0, MK_ENOTFOUND when
 * absent, or another MK_E code (MK_EUNAVAIL) that aborts rendering. */
typedef struct mk_template_env {
    mk_request_t *req;
    const mk_route_match_t *match; /* may be NULL */
    mk_faker_rng_t *rng;
    int64_t now_ms;
    int (*store_get)(void *ud, mk_template_store_t store, mk_str_t key, mk_buf_t *out,
                     mk_err_t *err);
    int (*store_incr)(void *ud, mk_template_store_t store, mk_str_t key, int64_t by,
                      int64_t *result, mk_err_t *err);
    void *store_ud;
} mk_template_env_t;

typedef struct mk_template mk_template_t;

/* Compiles a JSON value (payload or extract value) whose strings may hold placeholders. The
 * result renders JSON text. where names the field for error messages ("response.payload");
 * errors read "response.payload.items[2]: unknown faker 'Foo' at 9". MK_EINVAL also when
 * placeholders nest deeper than MK_TEMPLATE_MAX_NESTING or number more than
 * MK_TEMPLATE_MAX_PLACEHOLDERS ("response.payload: placeholders nested deeper than 32 at 396").
 * Compile time is linear in the length of the strings. Caller frees with mk_template_free(). */
int mk_template_compile_json(const json_t *value, const char *where, mk_template_t **out,
                             mk_err_t *err);
/* Compiles a text template (a header value, a text/plain body). */
int mk_template_compile_text(mk_str_t text, const char *where, mk_template_t **out, mk_err_t *err);
void mk_template_free(mk_template_t *t);

/* True when the template has no placeholder: its output is constant (see mk_template_literal). */
bool mk_template_is_static(const mk_template_t *t);
/* The constant output of a static template (borrowed). */
mk_str_t mk_template_literal(const mk_template_t *t);
/* True when any placeholder reads a store or uses $.increment. */
bool mk_template_uses_store(const mk_template_t *t);

/* When the template is exactly `$.increment($.xS.key)` (a whole-string JSON template), reports
 * which store and key it increments (key borrowed), so extraction does not write the counter
 * back over a newer value. */
bool mk_template_increments(const mk_template_t *t, mk_template_store_t *store, mk_str_t *key);

/* Appends the rendered output to out. Fails only when a store callback fails (its error) or out
 * refuses the bytes (MK_ETOOBIG). */
int mk_template_render(const mk_template_t *t, mk_template_env_t *env, mk_buf_t *out,
                       mk_err_t *err);

/* Appends s escaped for the inside of a JSON string (no quotes added). */
int mk_template_json_escape(mk_buf_t *out, mk_str_t s);

#endif
