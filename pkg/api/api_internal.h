/* Private to the api module: the API object, the per-call context and the request/reply helpers
 * its endpoint files (api.c, stores_api.c) share. */
#ifndef MK_API_INTERNAL_H
#define MK_API_INTERNAL_H

#include "api/api.h"
#include "strmap/strmap.h"

#include <pthread.h>
#include <stdarg.h>

struct mk_api {
    char *token;
    mk_catalog_t *catalog;
    mk_repo_t *repo;
    mk_journal_t *journal;
    /* Serializes admin writes so "does it exist?" and the write that follows are one step. */
    pthread_mutex_t write_lock;
    mk_strmap_t *namespaces; /* known namespace names (values unused); under write_lock */
    mk_store_t *store;       /* gS/cS stores; may be NULL (no store endpoints) */
};

/* What one API call knows about itself; later issues add the principal (user, role). */
typedef struct ctx {
    mk_api_t *api;
    mk_httpd_req_t *req;
    mk_request_t *view;
    mk_str_t seg[8]; /* path segments after /api/v1/ */
    size_t nseg;
} ctx_t;

int mk_api_reply_err(ctx_t *c, const mk_err_t *err);
int mk_api_reply_fmt(ctx_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses the body as JSON into *out (new reference); on failure answers 400 and returns it. */
int mk_api_parse_body(ctx_t *c, json_t **out);
/* Namespace precedence: ?namespace=, the body's "namespace", X-Namespace, then sandbox. */
void mk_api_resolve_namespace(ctx_t *c, json_t *body, char *out, size_t size);
bool mk_api_query_str(ctx_t *c, const char *name, char *buf, size_t size);
size_t mk_api_query_size(ctx_t *c, const char *name, size_t def, size_t max);
/* Path segment i, percent-decoded, into buf. */
char *mk_api_seg_dup(ctx_t *c, size_t i, char *buf, size_t size);
bool mk_api_seg_is(mk_str_t s, const char *lit);

/* /api/v1/stores/... and /api/v1/fakers (stores_api.c); 0 when the path is not theirs. */
int mk_api_route_stores(ctx_t *c);
int mk_api_route_fakers(ctx_t *c);

#endif
