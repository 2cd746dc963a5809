/* gRPC mocks (issue 13): a gRPC server whose fallback handler answers every method from the
 * mocks of the catalog (the `grpc` context, indexed as GRPC /<service>/<method>), converting
 * messages with the namespace's uploaded descriptor sets (protodyn). Descriptor sets are
 * repository documents (kind MK_GRPCMOCK_DOC_KIND), so the admin and every resolver see the same.
 *
 * Threads: the server runs one event loop; it reads the catalog through one reader slot and
 * records into the journal through one producer slot, both given by the caller. */
#ifndef MK_GRPCMOCK_H
#define MK_GRPCMOCK_H

#include "catalog/catalog.h"
#include "err/err.h"
#include "grpc/grpc.h"
#include "journal/journal.h"
#include "metrics/metrics.h"
#include "repo/repo.h"

#include <jansson.h>

#define MK_GRPCMOCK_DOC_KIND "grpc_descriptor"
/* Largest descriptor set accepted by upload. */
#define MK_GRPCMOCK_MAX_DESCRIPTOR (8u << 20)

typedef struct mk_grpcmock mk_grpcmock_t;

typedef struct mk_grpcmock_opts {
    const char *host;              /* NULL: 0.0.0.0 */
    int port;                      /* 0: ephemeral (see mk_grpcmock_port) */
    const mk_grpc_tls_opts_t *tls; /* NULL: h2c */
    mk_catalog_t *catalog;         /* borrowed; must outlive the server */
    unsigned reader_slot;          /* the catalog reader slot of the server's loop thread */
    mk_journal_t *journal;         /* borrowed; may be NULL */
    unsigned journal_slot;
    mk_metrics_t *metrics; /* borrowed; may be NULL; its shard journal_slot is this server's */
    mk_repo_t *repo;       /* borrowed: where descriptor sets are read from */
    int poll_ms;           /* re-read descriptor sets this often (resolvers); 0: 1000 */
    /* Who sees the closest mocks and why a candidate failed in an UNIMPLEMENTED message (they
     * show what mocks expect), as NEAR_MISS_DETAILS for HTTP: TOKEN (callers sending api_token
     * as "authorization: Bearer ..." or "x-api-key" metadata; everyone when api_token is NULL),
     * PUBLIC or OFF. */
    enum { MK_GRPCMOCK_DETAILS_TOKEN, MK_GRPCMOCK_DETAILS_PUBLIC, MK_GRPCMOCK_DETAILS_OFF } details;
    const char *api_token; /* borrowed; must outlive the server */
} mk_grpcmock_opts_t;

/* Loads the descriptor sets, starts the server and the descriptor poller. */
int mk_grpcmock_start(const mk_grpcmock_opts_t *opts, mk_grpcmock_t **out, mk_err_t *err);
int mk_grpcmock_port(const mk_grpcmock_t *g);
/* Re-reads the descriptor sets now (the admin calls it after an upload or a delete). */
int mk_grpcmock_reload(mk_grpcmock_t *g, mk_err_t *err);
void mk_grpcmock_free(mk_grpcmock_t *g); /* stops; NULL is fine */
/* Makes every server of this process re-read the descriptor sets now, before it returns (after
 * a write). */
void mk_grpcmock_notify(void);

/* --- descriptor documents (the admin API) --- */

/* Checks data as a FileDescriptorSet and stores it under (namespace_, name), replacing one of
 * that name. *info (new reference; may be NULL) is the stored summary:
 * {"name", "namespace", "size", "services": [...], "methods": [{"path", "clientStreaming",
 * "serverStreaming"}], "updatedAt"}. MK_EINVAL with protodyn's message for a bad set. */
int mk_grpcmock_descriptor_put(mk_repo_t *repo, const char *namespace_, const char *name,
                               const uint8_t *data, size_t len, json_t **info, mk_err_t *err);
/* The summaries of a namespace's sets (NULL: every namespace): a new JSON array. */
int mk_grpcmock_descriptor_list(mk_repo_t *repo, const char *namespace_, json_t **out,
                                mk_err_t *err);
/* Removes one; MK_ENOTFOUND when there is none of that name. */
int mk_grpcmock_descriptor_delete(mk_repo_t *repo, const char *namespace_, const char *name,
                                  mk_err_t *err);
/* Compiles .proto text with Debian's protoc (--include_imports) into a descriptor set (*out,
 * caller frees with free()). MK_EUNAVAIL when protoc is not installed; MK_EINVAL with protoc's
 * message when the text does not compile. */
int mk_grpcmock_compile_proto(const char *text, size_t len, uint8_t **out, size_t *out_len,
                              mk_err_t *err);

#endif
