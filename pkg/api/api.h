/* The admin REST API (/api/v1/...), Mockarty-compatible: mocks, namespaces, the request journal,
 * the global and chain stores, the faker list, tags, folders, templates, versions. Its endpoints
 * are one table (api_internal.h) compiled into a route index: only paths in the table are the
 * API's; every other request, /api/... included, is left to mock serving.
 * Writes are validated completely before anything is stored, go to the repository in one
 * transaction, then to the catalog, which republishes the route snapshot before the call returns.
 */
#ifndef MK_API_H
#define MK_API_H

#include "catalog/catalog.h"
#include "httpd/httpd.h"
#include "identity/identity.h"
#include "journal/journal.h"
#include "repo/repo.h"
#include "store/store.h"

#define MK_API_VERSION "0.3.0"

typedef struct mk_api mk_api_t;

typedef struct mk_api_config {
    const char *api_token;      /* the bootstrap administrator token; NULL or "": none */
    const char *admin_password; /* first start: the administrator's password (NULL: generated) */
    bool auth_required;         /* false: callers without valid credentials act as admin */
    int64_t session_ttl_ms;     /* 0: 12 h */
    int64_t audit_retention_days;  /* 0: keep forever */
    int64_t login_rate_per_minute; /* login attempts per client address; 0: no limit */
    int64_t token_rate_per_minute; /* calls per token unless the token sets one; 0: no limit */
    /* Finished test runs and load test results older than this are deleted, beyond the newest
     * *_keep of their collection or config; 0: kept forever. */
    int64_t test_run_retention_ms, test_run_keep;
    int64_t perf_result_retention_ms, perf_result_keep;
} mk_api_config_t;

/* All pointers are borrowed and must outlive the API; store may be NULL (no store endpoints). */
mk_api_t *mk_api_new(const mk_api_config_t *cfg, mk_catalog_t *catalog, mk_repo_t *repo,
                     mk_journal_t *journal, mk_store_t *store);
void mk_api_free(mk_api_t *api);

/* Loads identities (creating the first administrator on a first start) and every stored mock
 * and namespace into the catalog (at start). */
int mk_api_load(mk_api_t *api, mk_err_t *err);
/* After a first start without ADMIN_PASSWORD: copies the generated administrator password into
 * out (33 bytes), forgets it, and returns true; false otherwise. For main to print once. */
bool mk_api_take_generated_password(mk_api_t *api, char *out);
/* The identities behind the API (borrowed; NULL before mk_api_load): for the coordinator, which
 * authenticates runners' integration tokens with mk_identity_authenticate. */
mk_identity_t *mk_api_identity(mk_api_t *api);

/* The coordinator (borrowed; NULL detaches it) the API tester endpoints queue runs through. */
struct mk_coord;
void mk_api_set_coordinator(mk_api_t *api, struct mk_coord *co);
/* The recorder's sink for serving (mk_serve_set_recorder): one recorded exchange of session
 * (entry borrowed; kept, filtered and redacted by the session's rules). ud is the mk_api_t. */
void mk_api_recorder_record(void *ud, const char *session, json_t *entry);

/* The scheduler component of /health (new reference): status, schedules, fired, lastTickAt,
 * nextFireAt, lastError. */
json_t *mk_api_sched_status(mk_api_t *api);

/* Periodic work off the hot path: usage counters to the repository, snapshot reclamation. */
void mk_api_maintain(mk_api_t *api);

/* Answers req when its path is an endpoint of the table (405 with Allow when only the method
 * differs) and returns the status sent; returns 0, having sent nothing, when the path is not the
 * API's (the caller serves it as a mock request); returns MK_API_DEFERRED when a pool thread will
 * answer (rows that scan: journal queries, lists, exports). */
#define MK_API_DEFERRED 1
int mk_api_handle(mk_api_t *api, mk_httpd_req_t *req, mk_request_t *view);

/* Whether writes are failing: the last repository write failed less than
 * MK_API_WRITE_FAULT_MS ago and none succeeded since. When true, why is filled (NUL-terminated). */
#define MK_API_WRITE_FAULT_MS 30000
bool mk_api_writes_failing(mk_api_t *api, char *why, size_t size);

/* True when the caller of view could read mocks through the API (the token, when one is set):
 * the 404 diagnosis shows mock details only to such callers. */
bool mk_api_caller_may_read(mk_api_t *api, mk_request_t *view);

/* Sends the standard error body {"error","code","request_id"} for code (an MK_E* value). */
int mk_api_reply_error(mk_httpd_req_t *req, int code, const char *message);
/* Sends body (stolen reference) as JSON with status. */
int mk_api_reply_json(mk_httpd_req_t *req, int status, json_t *body);

#endif
