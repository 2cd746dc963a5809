/* Uploaded GraphQL schemas: SDL stored as repository documents (kind MK_GQL_DOC_KIND, id
 * "<namespace>/<endpoint path>"), so the admin and every resolver see the same; and the registry
 * that serving reads: an immutable snapshot of the built schemas, re-read by a poller thread and
 * swapped atomically (readers never lock). */
#ifndef MK_GRAPHQL_SCHEMA_DOCS_H
#define MK_GRAPHQL_SCHEMA_DOCS_H

#include "docreg/docreg.h"
#include "graphql/schema.h"
#include "repo/repo.h"

#include <jansson.h>

#define MK_GQL_DOC_KIND "graphql_schema"
#define MK_GQL_MAX_SDL  (4u << 20) /* largest schema accepted */
#define MK_GQL_MAX_PATH 512

/* Checks sdl as a schema and stores it for (namespace_, path) (the endpoint path, pathPrefix
 * included), replacing one there. *info (new reference; may be NULL): {"namespace", "path",
 * "size", "types", "queryType", "mutationType", "subscriptionType", "updatedAt"}. MK_EINVAL with
 * the problem and its line:column for a schema that does not build. */
int mk_gql_schema_put(mk_repo_t *repo, const char *namespace_, const char *path, const char *sdl,
                      size_t len, json_t **info, mk_err_t *err);
/* The summaries of a namespace's schemas (NULL: every namespace): a new JSON array. */
int mk_gql_schema_list(mk_repo_t *repo, const char *namespace_, json_t **out, mk_err_t *err);
/* The stored SDL of one (caller frees); MK_ENOTFOUND when there is none. */
int mk_gql_schema_get(mk_repo_t *repo, const char *namespace_, const char *path, char **sdl,
                      mk_err_t *err);
int mk_gql_schema_delete(mk_repo_t *repo, const char *namespace_, const char *path, mk_err_t *err);

/* --- the registry serving reads: a docreg (docreg/docreg.h) of the schema documents --- */

typedef mk_docreg_t mk_gql_registry_t;
typedef mk_docreg_snap_t mk_gql_reg_snap_t;

/* Loads the schemas of repo (borrowed; must outlive the registry) and starts a poller re-reading
 * them every poll_ms (0: 1000). */
int mk_gql_registry_start(mk_repo_t *repo, int poll_ms, mk_gql_registry_t **out, mk_err_t *err);
void mk_gql_registry_free(mk_gql_registry_t *r); /* stops; NULL is fine */
/* Re-reads now (the admin after a write; tests). */
int mk_gql_registry_reload(mk_gql_registry_t *r, mk_err_t *err);
/* Makes every registry of this process re-read now, before it returns (after a write). */
void mk_gql_registry_notify(void);

/* Holds the current snapshot until mk_gql_registry_release (cheap, lock-free). */
const mk_gql_reg_snap_t *mk_gql_registry_acquire(mk_gql_registry_t *r);
void mk_gql_registry_release(const mk_gql_reg_snap_t *snap);
/* The schema of an endpoint (borrowed from snap), or NULL. */
const mk_gql_schema_t *mk_gql_registry_find(const mk_gql_reg_snap_t *snap, const char *namespace_,
                                            const char *path, size_t path_len);

#endif
