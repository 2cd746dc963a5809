/* The route index: an immutable tree over path segments (literals, `:name` parameters, a trailing
 * `*` wildcard) per HTTP method, built off the hot path and then only read. Lookup cost depends on
 * the path's depth, not on the number of routes.
 *
 * Ordering: lookup yields every entry whose method (or ANY) and route match, highest priority
 * first, then most recently created (larger created_at), then most recently added. */
#ifndef MK_ROUTE_H
#define MK_ROUTE_H

#include "err/err.h"
#include "str/str.h"

#include <stdint.h>

#define MK_ROUTE_MAX_PARAMS 16

typedef struct mk_route_builder mk_route_builder_t;
typedef struct mk_route_index mk_route_index_t;

mk_route_builder_t *mk_route_builder_new(void);
/* Frees a builder that was not built. */
void mk_route_builder_free(mk_route_builder_t *b);

/* Checks a route's syntax without adding it: starts with '/', `:name` spans a whole segment with a
 * non-empty name of [A-Za-z0-9_-], at most MK_ROUTE_MAX_PARAMS parameters, `*` only as the last
 * segment. MK_EINVAL with a message naming the problem and its position.
 * Also refused: a parameter name used twice in one route, more than 256 segments. A ':' inside a
 * segment (`/v1/items:batch`) and a '*' that is not a whole segment are literal bytes. */
int mk_route_validate(const char *route, mk_err_t *err);

/* Adds route for method ("GET", "POST", ..., case-insensitive, or "ANY"). value is borrowed and
 * returned by lookups. Validates as mk_route_validate(). */
int mk_route_builder_add(mk_route_builder_t *b, const char *method, const char *route, void *value,
                         int64_t priority, int64_t created_at, mk_err_t *err);

/* Consumes the builder (even on failure) and returns the index, or NULL when out of memory.
 * Caller frees with mk_route_index_free(). */
mk_route_index_t *mk_route_builder_build(mk_route_builder_t *b);
void mk_route_index_free(mk_route_index_t *idx);
size_t mk_route_index_count(const mk_route_index_t *idx);

/* One match: the entry's value and its captured parameters (slices into the looked-up path). */
typedef struct mk_route_match {
    void *value;
    size_t nparams;
    mk_str_t names[MK_ROUTE_MAX_PARAMS];
    mk_str_t values[MK_ROUTE_MAX_PARAMS];
    mk_str_t wildcard; /* what `*` matched, without the leading '/'; empty when none */
} mk_route_match_t;

/* Lookup state; lives on the caller's stack, needs no cleanup. Internals are private.
 * A cursor is one matched tree leaf (a route shape: literal, parameter or wildcard at each depth,
 * in the method's tree or ANY's). When a path matches more shapes than MK_ROUTE_MAX_CURSORS, the
 * shapes whose best entry ranks lowest are dropped: at least the first MK_ROUTE_MAX_CURSORS
 * matches are still exact, and only the tail of a very long candidate list can be missing. */
#define MK_ROUTE_MAX_CURSORS 16
typedef struct mk_route_iter {
    const mk_route_index_t *idx_;
    mk_str_t path_;
    size_t ncursors_;
    struct {
        const void *leaf;
        size_t pos;
        size_t nvalues;
        mk_str_t values[MK_ROUTE_MAX_PARAMS];
        mk_str_t wildcard;
    } cursors_[MK_ROUTE_MAX_CURSORS];
} mk_route_iter_t;

/* Starts a lookup of path (without query string; a trailing '/' is ignored, as on routes) for
 * method. The path slice must outlive the iteration. */
void mk_route_lookup(const mk_route_index_t *idx, mk_str_t method, mk_str_t path,
                     mk_route_iter_t *it);
/* Fills m with the next match in order; returns false when there are no more. */
bool mk_route_next(mk_route_iter_t *it, mk_route_match_t *m);

/* For the no-match diagnosis: up to max values of routes "closest" to path for method: the entries
 * under the deepest tree node that path's leading literal segments reach (same method or ANY
 * first, then any method). Returns the number written. */
size_t mk_route_nearest(const mk_route_index_t *idx, mk_str_t method, mk_str_t path, void **out,
                        size_t max);

#endif
