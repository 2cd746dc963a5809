/* The catalog: every mock this node knows (live and soft-deleted), and the compiled route snapshot
 * the hot path reads. Writers (the admin API, change followers) are serialized by a mutex; readers
 * (HTTP workers) take no lock: they read the current snapshot through an atomic pointer inside an
 * mk_catalog_enter()/mk_catalog_leave() pair, and a retired snapshot is freed only after every
 * reader has left the section it could have been seen in (quiescent-state reclamation). */
#ifndef MK_CATALOG_H
#define MK_CATALOG_H

#include "err/err.h"
#include "mock/mock.h"
#include "route/route.h"

#include <jansson.h>

typedef struct mk_catalog mk_catalog_t;
typedef struct mk_snapshot mk_snapshot_t;

/* nreaders: how many reader slots (one per HTTP worker thread, plus any other reading thread). */
mk_catalog_t *mk_catalog_new(unsigned nreaders);
void mk_catalog_free(mk_catalog_t *c);

/* --- writers --- */

/* Inserts or replaces mocks by id, taking over the caller's references, and publishes one new
 * snapshot. replaced[i] (when replaced is not NULL) is set to whether mocks[i] replaced one. */
int mk_catalog_put(mk_catalog_t *c, mk_mock_t **mocks, size_t n, bool *replaced, mk_err_t *err);
/* Removes mocks for good; returns how many existed. */
size_t mk_catalog_remove(mk_catalog_t *c, const char *const *ids, size_t n);

/* A new reference to the mock with id (soft-deleted included), or NULL. */
mk_mock_t *mk_catalog_get(mk_catalog_t *c, const char *id);

/* Calls fn for every mock (borrowed, valid during the call) under the writer lock, in creation
 * order; fn returns non-zero to stop. */
void mk_catalog_each(mk_catalog_t *c, int (*fn)(void *ud, mk_mock_t *m), void *ud);

/* Usage counters changed since the last call, for writing to the repository. */
typedef struct mk_catalog_usage {
    char *id; /* owned */
    int64_t uses;
    int64_t last_use;
} mk_catalog_usage_t;
size_t mk_catalog_take_usage(mk_catalog_t *c, mk_catalog_usage_t **out);
void mk_catalog_usage_free(mk_catalog_usage_t *u, size_t n);

/* Live mock count per namespace: a new JSON object {"ns": count}. */
json_t *mk_catalog_counts(mk_catalog_t *c);

/* Frees retired snapshots no reader can still see. Cheap; call periodically and after writes. */
void mk_catalog_reclaim(mk_catalog_t *c);

/* --- readers (hot path, no locks) --- */

const mk_snapshot_t *mk_catalog_enter(mk_catalog_t *c, unsigned reader);
void mk_catalog_leave(mk_catalog_t *c, unsigned reader);

/* The route index of a namespace in a snapshot, or NULL when it has no live mock. */
const mk_route_index_t *mk_snapshot_index(const mk_snapshot_t *s, mk_str_t namespace_);
size_t mk_snapshot_mock_count(const mk_snapshot_t *s);

#endif
