/* API test collections: Postman Collection v2.1 parsing and export, a run (requests in order over
 * pkg/httpclient, pre-request and test scripts in the pkg/js sandbox with Postman's pm API), and
 * reports (JSON in Mockarty's TestRunResult shape, JUnit XML, self-contained HTML). Independent
 * of transport: the runner calls mk_apitest_run and forwards progress and the result. */
#ifndef MK_APITEST_H
#define MK_APITEST_H

#include <jansson.h>
#include <stddef.h>

#include "err/err.h"

/* Bounds on a collection: nesting of folders and number of requests. */
#define MK_APITEST_MAX_DEPTH    32
#define MK_APITEST_MAX_REQUESTS 10000

typedef struct mk_apitest_collection mk_apitest_collection_t;

/* Starts the script sandbox's fork server (pkg/js mk_js_init). A threaded program (the runner)
 * calls this first thing in main, before it starts threads; single-threaded tools may skip it. */
int mk_apitest_init(mk_err_t *err);

/* Parses a Postman collection (v2.1; v2.0 is accepted and converted). doc is borrowed: the
 * collection keeps its own normalised copy. MK_EINVAL with the JSON path of the fault
 * ("item[2].item[0].request.url: ...") for malformed input. */
int mk_apitest_collection_parse(const json_t *doc, mk_apitest_collection_t **out, mk_err_t *err);
/* The same from JSON text. */
int mk_apitest_collection_load(const char *text, size_t len, mk_apitest_collection_t **out,
                               mk_err_t *err);
void mk_apitest_collection_free(mk_apitest_collection_t *c);
/* info.name and info._postman_id ("" when absent); borrowed from c. */
const char *mk_apitest_collection_name(const mk_apitest_collection_t *c);
const char *mk_apitest_collection_id(const mk_apitest_collection_t *c);
/* How many requests the collection holds (folders excluded). */
size_t mk_apitest_collection_count(const mk_apitest_collection_t *c);
/* The collection as Postman v2.1 JSON (new reference): what was parsed, normalised to v2.1;
 * fields this engine does not use are kept, so import and export round-trip. */
json_t *mk_apitest_collection_export(const mk_apitest_collection_t *c);

typedef enum mk_apitest_event_type {
    MK_APITEST_REQUEST_START, /* about to run a request's pre-request scripts and send it */
    MK_APITEST_ASSERTION,     /* one pm.test (or legacy tests[...]) finished */
    MK_APITEST_REQUEST_DONE,  /* a request's TestResult is final */
} mk_apitest_event_type_t;

/* What the progress callback sees. Everything is borrowed for the duration of the call. */
typedef struct mk_apitest_event {
    mk_apitest_event_type_t type;
    size_t index;            /* 0-based position of this execution in the run */
    size_t total;            /* requests in the collection (setNextRequest may run more) */
    const char *folder;      /* "Users/Admin"; "" at the collection's root */
    const char *request;     /* the request's name */
    const json_t *assertion; /* MK_APITEST_ASSERTION: an Assertion object */
    const json_t *result;    /* MK_APITEST_REQUEST_DONE: the TestResult object */
} mk_apitest_event_t;

/* Return 0 to go on, nonzero to cancel the run (it stops before the next request and its
 * status becomes "cancelled"). */
typedef int (*mk_apitest_progress_fn)(void *ud, const mk_apitest_event_t *ev);

typedef struct mk_apitest_options {
    /* Variables, all borrowed. environment and globals take Postman's export shape
     * ({"name": ..., "values": [{"key", "value", "enabled"}]}) or a plain object; variables are
     * the run's own (Newman's --env-var is environment; these sit above every scope). */
    const json_t *environment;
    const json_t *globals;
    const json_t *variables;
    const char *run_id;        /* the TestRunResult's id; NULL: a random UUID */
    const char *collection_id; /* its collectionId; NULL: the collection's info._postman_id */
    long request_timeout_ms;   /* per request; 0: 30000 */
    long connect_timeout_ms;   /* 0: 10000 */
    int no_follow_redirects;   /* Postman follows by default; an item's
                                  protocolProfileBehavior.followRedirects overrides */
    long max_redirects;        /* 0: 10 */
    int insecure;              /* do not verify TLS certificates */
    long script_timeout_ms;    /* per script event; 0: 5000 */
    size_t script_max_heap;    /* per script event; 0: 32 MiB */
    size_t max_response_bytes; /* a response over this fails its request; 0: 16 MiB */
    size_t max_body_kept;      /* response body kept in the result; 0: 64 KiB */
    size_t max_executions;     /* cap on requests run (setNextRequest loops); 0: 10 * count */
    int bail;                  /* stop after the first request that fails */
    size_t iterations;         /* passes over the collection; 0: one per data row, or 1 */
    const json_t *data;        /* iteration data: a list of objects (pm.iterationData,
                                  {{name}} between local and environment); borrowed */
    mk_apitest_progress_fn progress;
    void *progress_ud;
} mk_apitest_options_t;

/* Runs c: requests in order (depth-first through folders; pm.execution.setNextRequest jumps),
 * each with the pre-request scripts of the collection, its folders and itself, variables
 * resolved ({{name}}: run > local > iteration data > environment > collection > globals; the
 * dynamic {{$guid}}, {{$timestamp}}, {{$randomInt}}, ...), auth (bearer, basic, apikey, inherited
 * from folders and collection), the body (raw, urlencoded, form-data, graphql), then the test
 * scripts. *result (new reference) is Mockarty's TestRunResult: one TestResult per executed
 * request, one Assertion per test; the shapes are described at the top of run.c. A failing test,
 * script or request is part of the result, not an error: only bad options return an error
 * (MK_EINVAL). o may be NULL. Blocking; safe to run several runs on different threads. The progress
 * callback runs on the calling thread; a cancel takes effect between requests (a request in flight
 * finishes or times out first). */
int mk_apitest_run(const mk_apitest_collection_t *c, const mk_apitest_options_t *o, json_t **result,
                   mk_err_t *err);

/* Reports rendered from a TestRunResult (as mk_apitest_run made it, or read back from storage).
 * *out is NUL-terminated; caller frees with free(). */
/* JUnit XML: one <testsuite> per folder (the root's requests in one named after the
 * collection), one <testcase> per executed request, a <failure> with each failed assertion's
 * expected and actual, an <error> when the request or a script could not run. */
int mk_apitest_report_junit(const json_t *result, char **out, mk_err_t *err);
/* One HTML page with inline CSS and no external references: summary, then each request with
 * its assertions, request and response. */
int mk_apitest_report_html(const json_t *result, char **out, mk_err_t *err);

#endif
