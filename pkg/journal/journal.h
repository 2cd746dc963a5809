/* The request journal: what the server answered, bounded by bytes (oldest dropped first), plus the
 * aggregate of requests no mock matched. Workers record without locks; a background thread files.
 */
#ifndef MK_JOURNAL_H
#define MK_JOURNAL_H

#include "err/err.h"
#include "request/request.h"
#include "store/store.h"
#include "str/str.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slots in each producer's ring. The drainer runs every 5 ms, and sooner when a producer finds
 * a quarter of its ring pending, so a ring overruns only when a worker outpaces the drainer
 * itself (measured at over 2 million records per second on the development machine). */
#define MK_JOURNAL_RING_SLOTS 4096
/* At most this many (namespace, method, path) groups of unmatched requests are kept; the least
 * recently seen group is evicted first. */
#define MK_JOURNAL_MAX_GROUPS 10000

typedef struct mk_journal mk_journal_t;

/* One served request. Every slice and the header array are borrowed for the duration of
 * mk_journal_record() only: the journal copies what it keeps. */
typedef struct mk_journal_rec {
    int64_t ts_ms; /* unix ms; 0 means "now" */
    mk_str_t namespace_, mock_id /* empty when unmatched */, method, path, query, body;
    const mk_header_t *headers;
    size_t nheaders;
    int status;
    double duration_ms;
    mk_str_t request_id;
    /* Protocol-level view, empty for plain HTTP: protocol "grpc", "graphql", "soap", "sse" or
     * "websocket"; operation what was called ("pkg.Svc/Method", "query user", the SOAP method,
     * the socket event); response a short summary of what was answered (cut at body_max). */
    mk_str_t protocol, operation, response;
} mk_journal_rec_t;

/* A journal keeping at most max_bytes of entries (each entry counts the size of its block), with
 * bodies cut at body_max bytes, fed by nproducers worker threads. Starts the background thread.
 * Returns NULL when nproducers is 0 or on allocation/thread failure. Free with mk_journal_free().
 */
mk_journal_t *mk_journal_new(size_t max_bytes, size_t body_max, unsigned nproducers);
/* Stops and joins the background thread, then releases everything. Accepts NULL. */
void mk_journal_free(mk_journal_t *j);

/* Hot path. Called only by the thread that owns producer (0..nproducers-1): copies rec into one
 * block and pushes it onto that producer's ring without locking. Returns false, and counts a
 * drop, when the ring is full, the allocation fails or producer is out of range. */
bool mk_journal_record(mk_journal_t *j, unsigned producer, const mk_journal_rec_t *rec);

/* Files every pending record, so that a request recorded before the call is visible to the
 * readers below (which all call it first). Thread-safe; not for the hot path. */
void mk_journal_sync(mk_journal_t *j);

/* Filter for mk_journal_query: NULL fields match anything; strings match exactly (method ignores
 * ASCII case; mock_id "" selects unmatched entries). limit 0 means no limit. */
typedef struct mk_journal_filter {
    const char *namespace_, *mock_id, *method, *path;
    const char *protocol; /* "http" selects entries recorded without a protocol */
    int status;           /* the response status; 0 matches any */
    size_t limit;
    size_t offset;
} mk_journal_filter_t;

/* New reference: a JSON array of matching entries, newest first, after skipping offset and
 * keeping at most limit. Each entry is
 *   {"id", "timestamp", "namespace", "mockId" (string or null),
 *    "request": {"method", "path", "query", "headers": {"Name": ["v", ...]}, "body",
 *                "bodyTruncated", "json" (only when the stored body is valid JSON)},
 *    "response": {"status", "body" (only when recorded)}, "durationMs", "requestId",
 *    "protocol" ("http" when recorded without one), "operation" (only when recorded)}.
 * Bytes of the body that are not UTF-8 are replaced by U+FFFD. f may be NULL (everything).
 * *total (optional) receives the number of matching entries before limit and offset.
 * Returns NULL only on allocation failure. */
json_t *mk_journal_query(mk_journal_t *j, const mk_journal_filter_t *f, size_t *total);

/* Live tail (GET /api/v1/requests/stream): the id of the newest entry filed on this node, read
 * without a lock, so a poller sees whether anything is new for the price of one load. */
uint64_t mk_journal_last_id(mk_journal_t *j);
/* The entries filed on this node after *after_id that match f (limit and offset ignored), oldest
 * first, as mk_journal_query shapes them, at most max (when more are new, the older ones are
 * passed over and counted in *skipped); *after_id becomes the newest id looked at. Never
 * blocks: MK_EUNAVAIL when the journal is busy filing (poll again later; nothing changed).
 * 0 with *out a new reference (an array, maybe empty), or MK_ENOMEM. */
int mk_journal_tail(mk_journal_t *j, const mk_journal_filter_t *f, uint64_t *after_id, size_t max,
                    json_t **out, size_t *skipped);

/* WireMock-style verification: counts the entries matching pattern (borrowed), whose keys are
 * all optional and must all hold:
 *   "method" (exact, ASCII case ignored; "ANY" matches all), "url" (path plus "?query"),
 *   "path" / "urlPath" (path without query), "urlPattern" (POSIX extended regex that must match
 *   the whole url), "pathPattern" / "urlPathPattern" (same, on the path), "mockId", "namespace",
 *   "headers": {"Name": "v" | {"equalTo": "v"} | {"contains": "v"} | {"matches": "re"}} (some
 *   value of the header, name case ignored), "bodyContains" (substring of the stored body),
 *   "protocol" (exact; "http" for entries recorded without one), "operation" (exact).
 * Returns 0 and sets *count, or MK_EINVAL naming the offending key (unknown key, wrong type, bad
 * regex) in err, or MK_ENOMEM. */
int mk_journal_count(mk_journal_t *j, const json_t *pattern, size_t *count, mk_err_t *err);

/* New reference: the unmatched-request groups as an array of {"id", "namespace", "method",
 * "path", "hitCount", "firstSeen", "lastSeen"} (unix ms), most hits first; "id" is a stable hex
 * key of (namespace, method, path). NULL on allocation failure. */
json_t *mk_journal_undefined(mk_journal_t *j);
/* Forgets the unmatched groups with these ids (every group when ids is NULL); returns how many
 * this node held. With a shared journal, groups rebuilt from other nodes' entries come back. */
size_t mk_journal_undefined_forget(mk_journal_t *j, const char *const *ids, size_t n);
/* Forgets this node's entries answered by mock_id; returns how many. */
size_t mk_journal_forget_mock(mk_journal_t *j, const char *mock_id);

/* Forgets every entry and every unmatched group (records still in flight are discarded too). */
void mk_journal_clear(mk_journal_t *j);

/* Bytes held by the stored entries, never more than max_bytes. */
size_t mk_journal_bytes(mk_journal_t *j);
/* Records refused by mk_journal_record since creation. */
uint64_t mk_journal_dropped(mk_journal_t *j);
/* Number of stored entries. */
size_t mk_journal_entries(mk_journal_t *j);

/* Shares the journal through the storage layer (when it is Redis): each entry is also appended to
 * its history table (view "_journal", kept for HISTORY_DURATION), and queries, counts and the
 * unmatched list read every node's entries from there. A memory layer changes nothing. store is
 * borrowed and must outlive the journal. */
void mk_journal_share(mk_journal_t *j, mk_store_t *store);

#endif
