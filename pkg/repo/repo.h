/* The repository: where mocks and namespaces persist. One interface, several backends (SQLite by
 * default, PostgreSQL later); callers see only this header. Every write is one transaction. */
#ifndef MK_REPO_H
#define MK_REPO_H

#include "err/err.h"

#include <stddef.h>
#include <stdint.h>

/* A stored mock. Strings are borrowed from whoever built the row. */
typedef struct mk_repo_mock {
    const char *id;
    const char *namespace_;
    const char *chain_id; /* may be NULL */
    const char *json;     /* the full definition, server-set fields included; NULL in a tombstone
                           * (a purged mock, as load_mocks reports it) */
    int64_t created_at;   /* unix ms */
    int64_t updated_at;   /* unix ms */
    int64_t closed_at;    /* unix ms; 0 while live (soft delete sets it) */
    int64_t uses;         /* times served */
    int64_t last_use;     /* unix ms; 0 never */
    int64_t seq;          /* change sequence number, assigned by the repository on write */
} mk_repo_mock_t;

/* Usage counters flushed periodically from memory. */
typedef struct mk_repo_usage {
    const char *id;
    int64_t uses;
    int64_t last_use;
} mk_repo_usage_t;

typedef struct mk_repo mk_repo_t;

/* Called for each row; returning non-zero stops the iteration and is returned by the caller. */
typedef int (*mk_repo_mock_cb)(void *ud, const mk_repo_mock_t *row);
/* A change notification: the write with sequence seq touched mock id. Called with id NULL and
 * seq 0 after every (re)connection of the change feed, when changes may have been missed and the
 * subscriber should resync with load_mocks(after its last applied seq). */
typedef void (*mk_repo_change_cb)(void *ud, int64_t seq, const char *id);
typedef int (*mk_repo_name_cb)(void *ud, const char *name, int64_t created_at);

/* A small JSON document of the admin's own: mock versions, folders, response templates, tags,
 * undefined-request marks. kind says which ("mock_version", "folder", "template", "tag", ...);
 * (kind, id) is the key. Strings are borrowed from whoever built it. */
typedef struct mk_repo_doc {
    const char *kind;
    const char *id;
    const char *namespace_; /* "" when the document belongs to no namespace */
    const char *json;       /* the document (any bytes; JSON by convention) */
    int64_t updated_at;     /* unix ms */
} mk_repo_doc_t;
typedef int (*mk_repo_doc_cb)(void *ud, const mk_repo_doc_t *doc);
/* Told the duration of every repository call, for db_query_duration_seconds. */
typedef void (*mk_repo_observer_cb)(void *ud, const char *operation, double seconds);

/* What a backend implements. The dispatch below checks arguments first (NULL rows, ids or
 * callbacks, a NULL id in delete_mocks or update_usage) and answers n == 0 itself, so backends see
 * neither. put_mocks writes each row's seq into rows[i].seq as it goes; when the call fails the
 * dispatch puts the old values back. A failing ping is reported as MK_EUNAVAIL. */
typedef struct mk_repo_ops {
    const char *name; /* "sqlite", "postgres" */
    int (*put_mocks)(mk_repo_t *r, mk_repo_mock_t *rows, size_t n, mk_err_t *err);
    int (*delete_mocks)(mk_repo_t *r, const char *const *ids, size_t n, mk_err_t *err);
    int (*load_mocks)(mk_repo_t *r, int64_t after_seq, mk_repo_mock_cb cb, void *ud, mk_err_t *err);
    int (*update_usage)(mk_repo_t *r, const mk_repo_usage_t *rows, size_t n, mk_err_t *err);
    int (*put_namespace)(mk_repo_t *r, const char *name, int64_t created_at, mk_err_t *err);
    int (*list_namespaces)(mk_repo_t *r, mk_repo_name_cb cb, void *ud, mk_err_t *err);
    int (*ping)(mk_repo_t *r, mk_err_t *err);
    int (*get_mock)(mk_repo_t *r, const char *id, mk_repo_mock_cb cb, void *ud, mk_err_t *err);
    int (*put_docs)(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err);
    int (*delete_docs)(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                       mk_err_t *err);
    int (*list_docs)(mk_repo_t *r, const char *kind, const char *id_prefix, mk_repo_doc_cb cb,
                     void *ud, mk_err_t *err);
    /* Optional (NULL when the backend has no change feed, e.g. SQLite). */
    int (*subscribe)(mk_repo_t *r, mk_repo_change_cb cb, void *ud, mk_err_t *err);
    void (*free)(mk_repo_t *r);
} mk_repo_ops_t;

/* Backends embed this as their first member. Calls are serialized by the backend as needed; the
 * interface is safe to call from several threads. */
struct mk_repo {
    const mk_repo_ops_t *ops;
    mk_repo_observer_cb observer;
    void *observer_ud;
};

void mk_repo_set_observer(mk_repo_t *r, mk_repo_observer_cb cb, void *ud);

/* --- shared by the SQL backends --- */

/* The columns of the mocks table in the order both backends select them. */
#define MK_REPO_MOCK_COLUMNS                                                                       \
    "id, namespace, chain_id, json, created_at, updated_at, closed_at, uses, last_use, seq"

/* The arguments of one write, as a backend passes them (through a void *) to the unit of work it
 * runs in a transaction: one struct for every write. Pointers are borrowed from the call. */
typedef struct mk_repo_batch {
    mk_repo_mock_t *mocks;        /* put_mocks */
    const mk_repo_usage_t *usage; /* update_usage */
    const mk_repo_doc_t *docs;    /* put_docs */
    const char *const *ids;       /* delete_mocks, delete_docs */
    const char *kind;             /* delete_docs */
    const char *name;             /* put_namespace */
    int64_t created_at;           /* put_namespace */
    size_t n;
} mk_repo_batch_t;

/* How a backend names row i of a batch in an error: put mock 2 (id "a"), put document 2
 * (template "a"). */
void mk_repo_what_mock(char *buf, size_t size, size_t i, const mk_repo_mock_t *m);
void mk_repo_what_doc(char *buf, size_t size, size_t i, const mk_repo_doc_t *d);
/* MK_ECONFLICT for a database whose schema version is above the known one. */
int mk_repo_newer_schema(mk_err_t *err, const char *backend, int64_t version, int known);
/* Wall-clock unix time in ms, as rows and migrations record it. */
int64_t mk_repo_now_ms(void);

/* Upserts rows (by id) in one transaction; each row's seq is assigned from the change sequence and
 * written back into rows[i].seq once committed (a failed call leaves them as they were). Backends
 * with a change feed publish each row's change on commit. */
int mk_repo_put_mocks(mk_repo_t *r, mk_repo_mock_t *rows, size_t n, mk_err_t *err);
/* Removes rows for good (purge), in one transaction, leaving a tombstone (id + a new seq) so a
 * node resyncing from an older seq learns of the removal. Missing ids are not an error. */
int mk_repo_delete_mocks(mk_repo_t *r, const char *const *ids, size_t n, mk_err_t *err);
/* Every row with seq > after_seq (0: all), soft-deleted included, in seq order; purged mocks come
 * as tombstones (json NULL) when after_seq > 0. */
int mk_repo_load_mocks(mk_repo_t *r, int64_t after_seq, mk_repo_mock_cb cb, void *ud,
                       mk_err_t *err);
int mk_repo_update_usage(mk_repo_t *r, const mk_repo_usage_t *rows, size_t n, mk_err_t *err);
/* Creates the namespace if it does not exist (not an error when it does). */
int mk_repo_put_namespace(mk_repo_t *r, const char *name, int64_t created_at, mk_err_t *err);
int mk_repo_list_namespaces(mk_repo_t *r, mk_repo_name_cb cb, void *ud, mk_err_t *err);
/* The live row of one mock (never a tombstone); MK_ENOTFOUND when absent or purged. */
int mk_repo_get_mock(mk_repo_t *r, const char *id, mk_repo_mock_cb cb, void *ud, mk_err_t *err);
/* Starts following the change feed: cb runs on a backend thread for every committed change (by
 * any process writing to the same database) and after every (re)connection. At most one
 * subscription per repository; it ends with mk_repo_free(). MK_EINVAL when unsupported. */
int mk_repo_subscribe(mk_repo_t *r, mk_repo_change_cb cb, void *ud, mk_err_t *err);
/* Documents: upsert n documents by (kind, id) in one transaction; remove some (missing ids are not
 * an error); list those of one kind whose id starts with id_prefix (NULL or "": all), ordered by
 * id. Documents are admin-only state: they have no change feed and no cache tier. */
int mk_repo_put_docs(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err);
int mk_repo_delete_docs(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                        mk_err_t *err);
int mk_repo_list_docs(mk_repo_t *r, const char *kind, const char *id_prefix, mk_repo_doc_cb cb,
                      void *ud, mk_err_t *err);
/* Checks the database answers; MK_EUNAVAIL when it does not. */
int mk_repo_ping(mk_repo_t *r, mk_err_t *err);
const char *mk_repo_backend(const mk_repo_t *r);
void mk_repo_free(mk_repo_t *r);

#endif
