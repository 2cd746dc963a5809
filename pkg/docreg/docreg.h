/* A registry of repository documents of one kind, as serving reads them: an immutable snapshot
 * built from every document of the kind, re-read by a poller thread and swapped atomically
 * (readers never lock). A re-read rebuilds only when the documents changed (a hash of their ids,
 * update times and content), and an old snapshot is freed once no reader holds it and a grace
 * period has passed. GraphQL schemas and gRPC descriptor sets are served this way. */
#ifndef MK_DOCREG_H
#define MK_DOCREG_H

#include "err/err.h"
#include "repo/repo.h"

#include <jansson.h>

typedef struct mk_docreg mk_docreg_t;
typedef struct mk_docreg_snap mk_docreg_snap_t;

/* Adds doc (borrowed, valid during the call) to the snapshot being built: *data is what the
 * previous calls built (NULL before the first). A document that does not load is skipped
 * (return 0); a negative MK_E* code (out of memory) abandons the rebuild, which the next re-read
 * tries again. */
typedef int (*mk_docreg_add_cb)(void **data, const mk_repo_doc_t *doc);
/* Frees what add built; NULL is fine. */
typedef void (*mk_docreg_free_cb)(void *data);

typedef struct mk_docreg_opts {
    mk_repo_t *repo;  /* borrowed; must outlive the registry */
    const char *kind; /* the document kind; borrowed, must outlive the registry */
    int poll_ms;      /* re-read this often; 0: 1000 */
    int grace_ms;     /* keep a replaced snapshot at least this long; 0: 5000, <0: none */
    mk_docreg_add_cb add;
    mk_docreg_free_cb free;
} mk_docreg_opts_t;

/* Loads the documents (failing with the repository's error when they cannot be read) and starts
 * the poller. */
int mk_docreg_start(const mk_docreg_opts_t *opts, mk_docreg_t **out, mk_err_t *err);
void mk_docreg_free(mk_docreg_t *r); /* stops the poller, frees every snapshot; NULL is fine */
/* Re-reads now (the admin after a write; tests); keeps the current snapshot on failure. */
int mk_docreg_reload(mk_docreg_t *r, mk_err_t *err);
/* Re-reads every registry of kind in this process now, in the caller's thread (after a write,
 * so the write's API call answers once the document is served here); other processes see the
 * change at their next poll. */
void mk_docreg_notify(const char *kind);

/* Holds the current snapshot until mk_docreg_release (lock-free); NULL for a NULL registry. */
const mk_docreg_snap_t *mk_docreg_acquire(mk_docreg_t *r);
void mk_docreg_release(const mk_docreg_snap_t *snap); /* NULL is fine */
/* What add built for snap (borrowed from it), NULL when there was no document (or snap NULL). */
void *mk_docreg_data(const mk_docreg_snap_t *snap);

/* The admin's view of the same documents, whose ids are "<namespace>/...": each JSON document of
 * kind in namespace_ (NULL: every namespace) without its member drop (the bulky one: SDL,
 * descriptor bytes), in id order, as a new JSON array (*out, NULL on failure). A document that is
 * not JSON is left out. */
int mk_docreg_list(mk_repo_t *repo, const char *kind, const char *namespace_, const char *drop,
                   json_t **out, mk_err_t *err);

#endif
