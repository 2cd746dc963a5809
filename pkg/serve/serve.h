/* Mock serving, the hot path: find the mock for a request in the current route snapshot, check
 * its conditions, send its response, and record the exchange in the journal. No lock, no database
 * call, no parsing of definitions. */
#ifndef MK_SERVE_H
#define MK_SERVE_H

#include "catalog/catalog.h"
#include "httpd/httpd.h"
#include "journal/journal.h"
#include "request/request.h"
#include "store/store.h"
#include "webhook/webhook.h"

#include <jansson.h>

/* The outcome of resolving one request. */
typedef struct mk_serve_result {
    mk_mock_t *mock; /* borrowed from the snapshot; NULL when nothing matched */
    const mk_mock_response_t *response;
    mk_route_match_t match; /* route captures of the matched mock */
} mk_serve_result_t;

/* Finds the mock for req at path in namespace ns of snap and claims one use of it. Returns true
 * when one matched. Thread-safe; the result is valid while the snapshot is held. */
bool mk_serve_resolve(const mk_snapshot_t *snap, mk_str_t ns, mk_str_t path, mk_request_t *req,
                      int64_t now_ms, mk_faker_rng_t *rng, mk_serve_result_t *out);

/* The 404 diagnosis for a request nothing matched: the closest mocks (at most 3) and why each did
 * not match. A new JSON array. */
json_t *mk_serve_diagnose(const mk_snapshot_t *snap, mk_str_t ns, mk_str_t path, mk_request_t *req,
                          int64_t now_ms);

typedef struct mk_serve mk_serve_t;

/* Largest rendered response body; past it the answer is a 500 naming the limit. */
#define MK_SERVE_MAX_RENDERED_BYTES (64u << 20)

/* Who sees the 404 diagnosis ("closest": the mocks that came close and why), which tells what
 * the mocks expect (header values, body fields): everyone, only callers who could read the mocks
 * through the API, or no one. The journal records the request the same either way. */
typedef enum mk_serve_details {
    MK_SERVE_DETAILS_TOKEN, /* default */
    MK_SERVE_DETAILS_PUBLIC,
    MK_SERVE_DETAILS_OFF,
} mk_serve_details_t;
/* Whether the caller of view could read mocks through the API (called on a worker thread). */
typedef bool (*mk_serve_may_read_cb)(void *ud, mk_request_t *view);

/* catalog, journal and store are borrowed and must outlive the server. */
mk_serve_t *mk_serve_new(mk_catalog_t *catalog, mk_journal_t *journal, mk_store_t *store);
void mk_serve_free(mk_serve_t *s);
/* Per-mock webhooks (Mockarty's `webhooks`, HTTP kind) go through sender (borrowed). It must be
 * freed after mk_httpd_stop and before mk_httpd_free, so that no call is out when the worker
 * loops are disposed. Without one, webhooks are not sent. */
void mk_serve_set_webhooks(mk_serve_t *s, mk_webhook_sender_t *sender);
/* Sets who sees the diagnosis; in TOKEN mode may_read decides (NULL: no one). ud is borrowed. */
void mk_serve_set_details(mk_serve_t *s, mk_serve_details_t mode, mk_serve_may_read_cb may_read,
                          void *ud);

/* Serves req (view already filled) as a mock request for namespace ns at path: resolves the mock,
 * runs its store extraction, renders its response (templates, fakers; reproducible with the
 * X-Mockarty-Seed header) and answers, after its delay or with its fault. Returns the status
 * sent (503 when a store it uses is unavailable). */
int mk_serve_http(mk_serve_t *s, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                  mk_str_t path);

/* For the protocol servers of this module (serve_<proto>.c): what mk_serve_new was given, and
 * whether the caller of view may see the closest mocks of a near miss (NEAR_MISS_DETAILS). */
mk_catalog_t *mk_serve_catalog(mk_serve_t *s);
mk_journal_t *mk_serve_journal(mk_serve_t *s);
bool mk_serve_shows_details(mk_serve_t *s, mk_request_t *view);
/* Journals req as view shows it (method, path, query, headers, and the body unless rec has one)
 * with req's duration and id; rec gives the rest (namespace, mock, status, protocol summary).
 * Does nothing when j is NULL. */
void mk_serve_record(mk_journal_t *j, mk_httpd_req_t *req, const mk_request_t *view,
                     mk_journal_rec_t rec);

/* WebSocket mocks (serve_ws.c), tried when no HTTP mock matched: when req is a WebSocket
 * handshake on an endpoint of socket mocks in ns, upgrades it, sets *status (101) and returns
 * true; otherwise returns false at the cost of a header check (and an index probe for
 * handshakes). */
bool mk_serve_ws_try(mk_serve_t *s, const mk_snapshot_t *snap, mk_httpd_req_t *req,
                     mk_request_t *view, mk_str_t ns, mk_str_t path, int *status);

/* SOAP mocks (serve_soap.c), tried when no HTTP mock matched. For a POST with an XML
 * Content-Type or a SOAPAction header on an endpoint of SOAP mocks in ns: parses the envelope and
 * returns 1 with *out resolved (a use claimed; the answer is then rendered like an HTTP mock's,
 * the request's JSON view being the operation's content), or -1 after answering a SOAP fault
 * (malformed envelope, no mock matched; *status set). Returns 0 for other requests, at the cost
 * of a header check and an index probe. */
int mk_serve_soap_resolve(mk_serve_t *s, const mk_snapshot_t *snap, mk_httpd_req_t *req,
                          mk_request_t *view, mk_str_t ns, mk_str_t path, int64_t now_ms,
                          mk_faker_rng_t *rng, mk_serve_result_t *out, int *status);

#endif
