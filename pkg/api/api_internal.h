/* Private to the api module: the API object, the endpoint table's row type, the per-call context
 * and the request/reply helpers its endpoint files share. Each endpoint file (mocks_api.c,
 * journal_api.c, ...) contributes one table of rows; api.c compiles them into a route index. */
#ifndef MK_API_INTERNAL_H
#define MK_API_INTERNAL_H

#include "api/api.h"
#include "audit/audit.h"
#include "identity/identity.h"
#include "route/route.h"
#include "strmap/strmap.h"

#include <pthread.h>
#include <stdarg.h>

typedef struct ctx ctx_t;
typedef int (*mk_api_fn)(ctx_t *c);

/* Row flags. */
#define MK_API_PUBLIC       1u /* answered without a token (documentation of the API itself) */
#define MK_API_HEAVY        2u /* scans or exports: runs off the serving loop */
#define MK_API_NOAUDIT      4u /* a write the table does not audit (the handler audits it itself) */
#define MK_API_CLIENT_LIMIT 8u /* rate-limited per client address (RATE_LIMIT_LOGIN_PER_MINUTE) */
#define MK_API_STREAM       16u /* answers a live stream (Server-Sent Events) that stays open */

/* One row of the table: method and path pattern (`:name` parameters, as mock routes), the
 * handler, the permission the caller needs ("mocks:read", "mocks:write", "stores:read", ...,
 * "admin"), a one-line description. A table ends with a row whose method is NULL. */
typedef struct mk_api_endpoint {
    const char *method;
    const char *path;
    mk_api_fn fn;
    const char *permission;
    const char *summary;
    unsigned flags;
} mk_api_endpoint_t;

/* The families, one file each. */
extern const mk_api_endpoint_t mk_api_mock_endpoints[];        /* mocks_api.c */
extern const mk_api_endpoint_t mk_api_namespace_endpoints[];   /* namespaces_api.c */
extern const mk_api_endpoint_t mk_api_journal_endpoints[];     /* journal_api.c */
extern const mk_api_endpoint_t mk_api_store_endpoints[];       /* stores_api.c */
extern const mk_api_endpoint_t mk_api_library_endpoints[];     /* library_api.c: tags, folders,
                                                                   templates */
extern const mk_api_endpoint_t mk_api_meta_endpoints[];        /* meta_api.c */
extern const mk_api_endpoint_t mk_api_identity_endpoints[];    /* identity_api.c: login, users,
                                                                   tokens, members, audit,
                                                                   webhooks */
extern const mk_api_endpoint_t mk_api_generator_endpoints[];   /* generators_api.c: imports */
extern const mk_api_endpoint_t mk_api_grpc_endpoints[];        /* grpc_api.c: descriptor sets */
extern const mk_api_endpoint_t mk_api_graphql_endpoints[];     /* graphql_api.c: schemas */
extern const mk_api_endpoint_t mk_api_recorder_endpoints[];    /* recorder_api.c: recording
                                                                   sessions, fallback proxies */
extern const mk_api_endpoint_t mk_api_apitester_endpoints[];   /* apitester_api.c: collections,
                                                                   test runs, runners */
extern const mk_api_endpoint_t mk_api_perf_endpoints[];        /* perf_api.c: load tests */
extern const mk_api_endpoint_t mk_api_environment_endpoints[]; /* environments_api.c */
extern const mk_api_endpoint_t mk_api_schedule_endpoints[];    /* schedules_api.c: cron */
extern const mk_api_endpoint_t mk_api_soap_endpoints[];        /* soap_api.c: WSDL upload */
/* soap_api.c: one SOAP mock per operation of a WSDL text, options applied, appended to r->mocks
 * (the generators' "soap" kind). */
struct mk_import_opts;
struct mk_import_result;
int mk_api_soap_import(const char *text, size_t len, const struct mk_import_opts *o,
                       struct mk_import_result *r, mk_err_t *err);
/* grpc_api.c: one gRPC mock per method of a descriptor set (binary, or .proto text compiled with
 * protoc), with an example answer of its output type (the generators' "grpc" kind); and what such
 * an import keeps besides its mocks: the set itself, stored as the namespace's descriptor set
 * named name (NULL: "default"), so the mocks can be called. */
int mk_api_grpc_import(const char *text, size_t len, const struct mk_import_opts *o,
                       struct mk_import_result *r, mk_err_t *err);
int mk_api_grpc_keep(mk_api_t *api, const char *ns, const char *name, const char *text, size_t len,
                     mk_err_t *err);
/* All of them, NULL-terminated (api.c). */
extern const mk_api_endpoint_t *const mk_api_families[];

typedef struct path_group path_group_t;

/* Retention of finished runs and results (retention.c): the settings, and what passes did. */
typedef struct mk_api_retention {
    int64_t run_max_age_ms, run_keep, perf_max_age_ms, perf_keep; /* max age 0: forever */
    int64_t last_pass_ms;                                         /* maintenance thread only */
    bool more;          /* the last pass left eligible documents: run again at the next tick */
    pthread_mutex_t mu; /* guards the rest (read by /health) */
    uint64_t pruned_runs, pruned_results;
    int64_t last_pass_done_ms, last_prune_ms, last_error_ms;
    char last_error[256];
} mk_api_retention_t;

struct mk_api {
    char *token;
    mk_catalog_t *catalog;
    mk_repo_t *repo;
    mk_journal_t *journal;
    /* Serializes admin writes so "does it exist?" and the write that follows are one step. */
    pthread_mutex_t write_lock;
    mk_strmap_t *namespaces; /* known namespace names (values unused); under write_lock */
    mk_store_t *store;       /* gS/cS stores; may be NULL (no store endpoints) */
    int64_t started_ms;
    /* The last failed write (for /health): when, and why; cleared by a successful write. */
    pthread_mutex_t fault_mu;
    int64_t write_fault_ms;
    char write_fault[512];
    /* The compiled table: by method, and by path alone (for 405 with Allow). */
    mk_route_index_t *by_method;
    mk_route_index_t *by_path;
    path_group_t *groups;
    size_t ngroups;
    /* Identity and access (identity_api.c, the checks in api.c). */
    mk_identity_t *identity; /* created by mk_api_load */
    mk_audit_t *audit;
    mk_identity_limiter_t *limiter;
    struct mk_api_hooks *hooks;       /* namespace webhooks (identity_api.c); may be NULL */
    struct mk_coord *coord;           /* runners' coordinator (apitester_api.c); may be NULL */
    struct mk_api_sched *sched;       /* cron schedules (schedules_api.c) */
    struct mk_api_perf *perf;         /* live load tests (perf_api.c); NULL until used */
    struct mk_api_recorder *recorder; /* recording sessions (recorder_api.c); NULL until used */
    bool auth_required;
    char *admin_password;
    char generated_password[33];
    int64_t session_ttl_ms, audit_retention_days, login_rate, token_rate, last_prune_ms;
    mk_api_retention_t retention;
};

/* What one API call knows about itself, the caller included. */
struct ctx {
    mk_api_t *api;
    mk_httpd_req_t *req;
    mk_request_t *view;
    const mk_api_endpoint_t *ep;
    mk_route_match_t match;
    mk_identity_principal_t who;
    bool via_cookie; /* the credential came in the session cookie (CSRF rules apply) */
    const char *ns;  /* the namespace the call was checked against (for the audit row) */
};

/* May the caller do perm in ns (NULL: in some namespace)? For handlers that filter lists. */
bool mk_api_may(ctx_t *c, const char *perm, const char *ns);
/* Checks the row's permission in ns, the namespace of an object the caller named indirectly
 * (a mock by id): 0 when allowed; MK_ENOTFOUND when the caller has no role there (the caller
 * answers 404 as for a missing object, revealing nothing); MK_EFORBIDDEN when the role is too
 * low (answered 403 here). */
int mk_api_guard_ns(ctx_t *c, const char *ns);
/* Remembers ns (copied into the request's memory) as the namespace of the call's audit row. */
void mk_api_note_ns(ctx_t *c, const char *ns);
/* After a mock write: announces each mock to its namespace's webhooks when stored (created,
 * updated or deleted, from its timestamps), and drops one reference to each. */
void mk_api_mock_events(mk_api_t *api, mk_mock_t **mocks, size_t n, bool stored);

/* identity_api.c: lifecycle of identities, audit and webhooks, and the audit row of a call. */
#define MK_API_SESSION_COOKIE "mockarty_session"
/* perf_api.c: live load tests' results stored once they end (every second), and the memory
 * of which are live. */
void mk_api_perf_maintain(mk_api_t *api);
void mk_api_perf_free(mk_api_t *api);
int mk_api_identity_start(mk_api_t *api, mk_err_t *err);
void mk_api_identity_maintain(mk_api_t *api);
void mk_api_identity_free(mk_api_t *api);
/* recorder_api.c: releases the recording sessions held in memory. */
void mk_api_recorder_free(mk_api_t *api);
/* Records the audit row of a successful write (not GET, not MK_API_NOAUDIT); returns status. */
int mk_api_audit_call(ctx_t *c, int status);
/* Namespace webhooks (identity_api.c): the sender's start and stop. */
int mk_api_hooks_start(mk_api_t *api, mk_err_t *err);
void mk_api_hooks_stop(mk_api_t *api);

int mk_api_reply_err(ctx_t *c, const mk_err_t *err);
int mk_api_reply_fmt(ctx_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses the body as JSON into *out (new reference); on failure answers 400 and returns it. */
int mk_api_parse_body(ctx_t *c, json_t **out);
/* Namespace precedence: ?namespace=, the body's "namespace", X-Namespace, then sandbox. The name
 * is checked (1-64 of [A-Za-z0-9_.-]); on a bad one this answers 400 and returns NULL. The string
 * lives until the response is sent. */
const char *mk_api_namespace(ctx_t *c, json_t *body);
/* Query parameter, percent-decoded, NUL-terminated, living until the response is sent; NULL when
 * absent or empty. */
const char *mk_api_query(ctx_t *c, const char *name);
size_t mk_api_query_size(ctx_t *c, const char *name, size_t def, size_t max);
/* Path parameter `name` of the matched row, percent-decoded in full (never cut), living until the
 * response is sent. */
const char *mk_api_param(ctx_t *c, const char *name);

/* Shared by the endpoint files: mocks and their storage (mocks_api.c). */
#define MK_API_DEFAULT_LIMIT 100
#define MK_API_MAX_LIMIT     10000
/* The live mock (or, with allow_closed, a deleted one); replies 404 itself when absent. */
mk_mock_t *mk_api_find_mock(ctx_t *c, const char *id, bool allow_closed);
/* Validates and compiles def as a new or replacing mock of namespace ns; caller holds write_lock.
 * Keeps createdAt of a mock it replaces and resolves payloadTemplatePath. */
int mk_api_prepare_mock(ctx_t *c, json_t *def, const char *ns, int64_t now, mk_mock_t **out,
                        mk_err_t *err);
/* Stores then publishes mocks (references taken over), keeping the previous definition of each
 * replaced mock as a version. Caller holds write_lock. replaced may be NULL. */
int mk_api_commit_mocks(mk_api_t *api, mk_mock_t **mocks, size_t n, bool *replaced, mk_err_t *err);
/* Rewrites live mocks: edit(ud, def) changes a copy of each definition, which is recompiled and
 * committed in one transaction. ids (strings) name them; *missing gets the ids not found.
 * Caller holds write_lock. */
typedef int (*mk_api_edit_fn)(void *ud, json_t *def, mk_err_t *err);
int mk_api_edit_mocks(ctx_t *c, json_t *ids, mk_api_edit_fn edit, void *ud, json_t **missing,
                      size_t *edited, mk_err_t *err);
/* The value of a mock's definition field, as a new reference (NULL when absent). */
json_t *mk_api_mock_field(const mk_mock_t *m, const char *field);
/* Checks body["ids"] is an array of strings; answers 400 naming the problem otherwise. */
json_t *mk_api_body_ids(ctx_t *c, json_t *body, const char *key);

/* Copies the live mocks of source_ns (NULL: any) whose ids are listed (NULL: all) into target,
 * with new ids, and answers. Takes write_lock. */
int mk_api_copy_mocks(ctx_t *c, const char *source_ns, json_t *ids, const char *target);
/* body[key] as a checked namespace name; answers 400 itself and returns NULL otherwise. */
const char *mk_api_body_namespace(ctx_t *c, json_t *body, const char *key);

/* Every repository write of the API reports its outcome here (rc 0: success). */
void mk_api_note_write(mk_api_t *api, int rc, const mk_err_t *err);

/* Shared by the endpoint files: documents (repository) helpers. */
typedef struct mk_api_docs {
    json_t *items; /* parsed documents, in id order */
} mk_api_docs_t;
/* Every document of kind whose id starts with prefix, parsed as JSON (raw text when not JSON). */
int mk_api_docs_list(mk_api_t *api, const char *kind, const char *prefix, json_t **out,
                     mk_err_t *err);
int mk_api_doc_put(mk_api_t *api, const char *kind, const char *id, const char *ns,
                   const json_t *doc, mk_err_t *err);
/* The one document of kind with id, checked against the caller's namespaces; answers 404/403
 * itself ("<what> '<id>' not found") and returns NULL. New reference. */
json_t *mk_api_doc_get(ctx_t *c, const char *kind, const char *id, const char *what);
/* Documents of kind the caller may do perm on, in ?namespace= or every namespace it has; answers
 * the error itself and returns NULL. New reference (an array, in id order). */
json_t *mk_api_docs_visible(ctx_t *c, const char *kind, const char *perm);
/* Deletes the document of kind named by the row's :id (checked as mk_api_doc_get does) and
 * answers {"id", "deleted": true}, or the error. before (may be NULL) is called with the document
 * first, to stop and forget what still runs for it. */
typedef void (*mk_api_doc_hook_fn)(mk_api_t *api, const json_t *doc);
int mk_api_doc_delete(ctx_t *c, const char *kind, const char *what, mk_api_doc_hook_fn before);
/* The one delete path of documents (the API's and retention's): before (may be NULL) is called
 * with each of the n documents (borrowed, each with an "id"), then all are deleted in one
 * repository call, whose outcome goes to mk_api_note_write. */
int mk_api_docs_remove(mk_api_t *api, const char *kind, const json_t *const *docs, size_t n,
                       mk_api_doc_hook_fn before, mk_err_t *err);
/* Answers the document of kind named by the row's :id (checked as mk_api_doc_get does). */
int mk_api_doc_show(ctx_t *c, const char *kind, const char *what);
/* Stores doc (reference taken over) as the document of kind with its own "id" and "namespace"
 * when the caller may do perm in that namespace, and answers it with status; otherwise answers
 * the error (403 naming perm). */
int mk_api_doc_store(ctx_t *c, const char *kind, const char *perm, json_t *doc, int status);
/* Checks body as the document id, replacing old (NULL: a new one), stores it and answers. */
typedef int (*mk_api_doc_save_fn)(ctx_t *c, json_t *body, const char *id, const json_t *old);
/* The request body saved by save as a new document with a new id. */
int mk_api_doc_create(ctx_t *c, mk_api_doc_save_fn save);
/* The request body saved by save over the document of kind named by the row's :id (checked as
 * mk_api_doc_get does). */
int mk_api_doc_update(ctx_t *c, const char *kind, const char *what, mk_api_doc_save_fn save);

/* apitester_api.c: queues one run of the collection document col with a call's options (body:
 * environment, environmentId, variables, baseUrl, ...; may be NULL); the run document, or NULL
 * with err set. Without an environment of its own the run takes its namespace's active one. */
json_t *mk_api_run_collection(mk_api_t *api, const json_t *col, const json_t *body, mk_err_t *err);
/* environments_api.c: the environment a run of namespace ns uses, in Postman's export shape: the
 * one named env_id (MK_ENOTFOUND when it is not of ns), or the active one when env_id is NULL
 * (NULL with err->code 0 when there is none). */
json_t *mk_api_run_environment(mk_api_t *api, const char *ns, const char *env_id, mk_err_t *err);
/* apitester_api.c, for retention: the queue's task states by task id (new reference; NULL
 * without a coordinator), whether a run document is still queued or running by them (always
 * when states is NULL: nobody can tell), and the forget hook of DELETE on a run. */
json_t *mk_api_runs_prepare(mk_api_t *api);
bool mk_api_run_live(mk_api_t *api, const json_t *states, const json_t *doc);
void mk_api_run_forget(mk_api_t *api, const json_t *doc);
/* perf_api.c, for retention: whether a result document is still live (no final result stored
 * yet), and the forget hook of DELETE on a result. */
bool mk_api_perf_result_live(mk_api_t *api, const json_t *aux, const json_t *doc);
void mk_api_perf_result_forget(mk_api_t *api, const json_t *doc);

/* retention.c. One item per document: its group (collection or config), the time its age counts
 * from, and whether it still runs. Marks prune[i] (n entries) for at most limit items that are
 * not live, older than max_age_ms at now_ms, and not among the newest keep non-live items of
 * their group; past limit, the oldest are chosen. Returns how many were marked; max_age_ms 0
 * marks none. */
typedef struct mk_api_retention_item {
    const char *group;
    int64_t at_ms;
    bool live;
} mk_api_retention_item_t;
size_t mk_api_retention_select(const mk_api_retention_item_t *items, size_t n, int64_t now_ms,
                               int64_t max_age_ms, size_t keep, size_t limit, bool *prune);
/* One bounded pass when due (from mk_api_maintain), and the /health view (new reference). */
void mk_api_retention_maintain(mk_api_t *api, int64_t now_ms);
json_t *mk_api_retention_status(mk_api_t *api);

/* schedules_api.c: the scheduler's state, its tick (from mk_api_maintain) and /health view. */
struct mk_api_sched *mk_api_sched_new(void);
void mk_api_sched_free(struct mk_api_sched *s);
void mk_api_sched_tick(mk_api_t *api, int64_t now_ms);
/* sse.c: answers with a live Server-Sent Events stream. fn appends the events after *last (-1
 * before the first; it advances *last to the id of the last event it wrote) to out and returns
 * whether the thing is still live; it is called at once, then every 500 ms on the request's
 * loop until it returns false, and the stream ends. Last-Event-ID sets the first *last. */
typedef bool (*mk_api_sse_fn)(mk_api_t *api, const char *id, double *last, mk_buf_t *out);
int mk_api_sse(ctx_t *c, const char *id, mk_api_sse_fn fn);
/* The same for the document of kind named by the row's :id (checked as mk_api_doc_get does),
 * with its id. */
int mk_api_doc_sse(ctx_t *c, const char *kind, const char *what, mk_api_sse_fn fn);

/* The mock-shadowing check of create: true when an API endpoint takes (method, route) on the
 * admin, so the mock is served only by resolvers. */
bool mk_api_shadowed(mk_api_t *api, const char *method, const char *route);

#endif
